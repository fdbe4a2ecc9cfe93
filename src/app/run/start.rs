//! The start of `run`, shared by its suites: the first suite's feed begins at once (a
//! problem met before its first case stops everything before a new store is even created)
//! while a store that exists is opened beside it; then every suite file becomes a source of
//! jobs, or the resumed run its one.

use std::path::PathBuf;
use std::sync::Arc;

use crate::store::Store;

use super::{RunEnv, Source, check, feed, resume};

/// The sources of the suites' runs, and the store when it exists already (a new one is
/// made once the first calls are out).
pub(super) fn start(
    env: &RunEnv<'_>,
    files: &[PathBuf],
) -> anyhow::Result<(Vec<Source>, Option<Store>)> {
    let (mut first, store) = first_and_store(env, files)?;
    let sources = match &env.settings.resume {
        None => files
            .iter()
            .enumerate()
            .map(|(index, file)| Source::Feed {
                file: file.clone(),
                index,
                fed: if index == 0 { first.take() } else { None },
            })
            .collect(),
        Some(id) => {
            let suites = check::load_whole(env.ctx, files, env.project)?;
            let opened = store
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("resume: the store is not open"))?;
            let (suite, resume) = resume::select(opened, suites, id)?;
            vec![Source::Resume {
                suite: Arc::new(suite),
                resume,
            }]
        }
    };
    Ok((sources, store))
}

/// The first suite's feed, begun while the store (if it exists) opens on another thread.
fn first_and_store(
    env: &RunEnv<'_>,
    files: &[PathBuf],
) -> anyhow::Result<(Option<feed::Fed>, Option<Store>)> {
    let (ctx, db) = (env.ctx, env.db);
    std::thread::scope(|scope| {
        let opening = db.is_file().then(|| {
            scope.spawn(|| {
                let store = Store::open(db);
                crate::phase::phase("store open");
                store
            })
        });
        let first = match (&env.settings.resume, files.first()) {
            (None, Some(file)) => {
                let fed = feed::feed(
                    file.clone(),
                    env.project.clone(),
                    env.settings.filters.clone(),
                )?;
                if fed.is_none() {
                    let checked = env.runtime.block_on(env.checker()?.wait())?;
                    return Err(check::invalid(ctx, &checked.diags));
                }
                fed
            }
            _ => None,
        };
        crate::phase::phase("first fed");
        let store = if let Some(opening) = opening {
            let mut store = opening
                .join()
                .map_err(|_| anyhow::anyhow!("open the store: the thread panicked"))??;
            super::super::reap_dead_runs(&mut store, ctx.printer)?;
            Some(store)
        } else if env.settings.resume.is_some() {
            Some(ctx.open_store(db)?)
        } else {
            // A new store is made once the first calls are out (`suite::run_suite`).
            None
        };
        Ok((first, store))
    })
}
