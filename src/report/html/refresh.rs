//! Writing the reports: the run pages of one run, and the whole refresh (trend pages and
//! index on this thread, run pages on a second one); what a run resumed or discarded leaves.

use std::collections::HashMap;
use std::path::Path;
use std::path::PathBuf;

use super::heat::{Ahead, HeatAhead};
use super::index::build_alerts;
use super::index::build_index;
use super::suite_page::build_suite;
use super::{
    Expected, HEAT_RUNS, HtmlError, LazyExpected, Options, Prepared, RECENT_RUNS, RUN_TEMPLATE,
    TREND_TEMPLATES, Written, engine, engine_of, file_stem, live, run_file, run_page, suite_href,
    write,
};
use super::{OpenSource, ReadError, Source};
use crate::model::{RunStatus, TrendRow};

/// Write the pages of one run (`runs/<run>.html`, then `-p2`, `-p3`... of
/// [`RESULTS_PER_PAGE`] results each).
pub fn write_run_pages(
    store: &dyn Source,
    dir: &Path,
    run_id: &str,
    expected: &Expected,
    out: &mut Written,
) -> Result<(), HtmlError> {
    let t = engine()?;
    let expected = LazyExpected::ready(expected.clone());
    run_page::write_run(store, &t, dir, run_id, &expected, None, out)
}

// ---------------------------------------------------------------------------------------
// Entry point

/// Write `index.html`, the trend page of each suite in `only` (every suite with runs when
/// None) and the run pages of their newest runs, into `dir`.
#[allow(clippy::implicit_hasher)]
pub fn write_reports(
    store: &dyn Source,
    dir: &Path,
    only: Option<&[String]>,
    descriptions: &HashMap<String, String>,
    expected: &Expected,
    opts: &Options,
) -> Result<Written, HtmlError> {
    write_reports_with(
        store,
        dir,
        only,
        descriptions,
        &LazyExpected::ready(expected.clone()),
        opts,
        Prepared::default(),
        || None,
    )
}

/// [`write_reports`] where the descriptions the index shows may still be loading:
/// `index_descriptions` is called once, right before the index (the last page) is built, and
/// what it returns, when Some, replaces `descriptions` there. `descriptions` must then hold
/// those of the suites in `only` (their trend pages come first). `prepared` is work done
/// while the runs went (`run`); `expected` is read only for run pages written from the store.
#[allow(clippy::implicit_hasher, clippy::too_many_arguments)]
pub fn write_reports_with(
    store: &dyn Source,
    dir: &Path,
    only: Option<&[String]>,
    descriptions: &HashMap<String, String>,
    expected: &LazyExpected<'_>,
    opts: &Options,
    prepared: Prepared,
    index_descriptions: impl FnOnce() -> Option<HashMap<String, String>>,
) -> Result<Written, HtmlError> {
    let mut out = Written::default();
    let suites = store.suite_names()?;
    let chosen: Vec<String> = match only {
        None => suites.clone(),
        Some(list) => suites
            .iter()
            .filter(|s| list.contains(s))
            .cloned()
            .collect(),
    };
    // Which run pages exist (or will), so that the trend pages link only to those.
    let mut with_pages: HashMap<String, bool> = HashMap::new();
    let mut to_write: Vec<String> = Vec::new();
    let runs_dir = dir.join("runs");
    for name in &suites {
        let newest = store.run_infos(Some(name), None, RECENT_RUNS.max(HEAT_RUNS))?;
        for (i, r) in newest.iter().rev().enumerate() {
            // A finished run's page does not change: write it once, not on every report
            // (again only when the run finished after the page was written: a resumed run).
            let page = runs_dir.join(run_file(&r.run_id, 1));
            let exists = page.exists();
            // Pages being written now are taken as they are (or written from the store
            // when they could not be), whatever the folder holds meanwhile.
            let current = exists
                && !prepared.early.contains_key(&r.run_id)
                && page_newer_than(&page, r.finished_at.as_deref());
            let refresh = chosen.contains(name)
                && i < opts.run_pages
                && r.status != RunStatus::Running
                && !current;
            if refresh {
                to_write.push(r.run_id.clone());
            }
            if refresh || exists {
                with_pages.insert(r.run_id.clone(), true);
            }
        }
    }
    crate::phase::phase("reports: pages chosen");
    // Run pages on a second thread with its own connection and template (SQLite readers run
    // side by side), while this one builds the trend pages and the index. That thread first
    // reads the heat maps' statuses the trend pages will need next (those not read while the
    // runs went), and again between its pages.
    let open_own = store.another();
    let Prepared {
        live,
        heat,
        mut early,
    } = prepared;
    let ahead = HeatAhead::new(
        chosen
            .iter()
            .filter(|name| !heat.contains_key(*name))
            .cloned()
            .collect(),
    );
    let (to_write, live, ahead) = (&to_write, &live, &ahead);
    let done = std::thread::scope(|scope| -> Result<(), HtmlError> {
        let pages = scope.spawn(move || -> Result<Written, HtmlError> {
            let mut written = Written::default();
            // A connection that cannot be opened for the statuses alone is not an error
            // (the trend pages read them themselves); it is one when pages need it.
            let own = if ahead.is_empty() {
                Own::Later(open_own)
            } else {
                let opened = open_own();
                if let Ok(own) = &opened {
                    ahead.read_next(own.as_ref());
                }
                Own::Opened(opened)
            };
            let mut from_store = Vec::new();
            let mut early_done = Vec::new();
            for run_id in to_write {
                match early.remove(run_id).map(live::EarlyPages::join) {
                    Some(Ok(Some(w))) => early_done.push((run_id, w)),
                    Some(Err(e)) => return Err(e),
                    Some(Ok(None)) | None => from_store.push(run_id),
                }
            }
            // Pages being written for runs not refreshed here are waited for too.
            drop(early);
            if from_store.is_empty() && early_done.is_empty() {
                return Ok(written);
            }
            let own = own.get()?;
            let own = own.as_ref();
            // Pages written as the run ended were written before its alerts were decided,
            // and without its labels: those of a run that opened or resolved one, or has
            // labels, are written again, with them.
            for (run_id, w) in early_done {
                if own.alerts_of_run(run_id)?.is_empty() && own.run_labels(run_id)?.is_empty() {
                    written.files.extend(w.files);
                } else {
                    from_store.push(run_id);
                }
            }
            if from_store.is_empty() {
                return Ok(written);
            }
            let t = engine_of(&[RUN_TEMPLATE])?;
            for run_id in from_store {
                let live = live.get(run_id).map(|l| l as &dyn run_page::RenderedRows);
                run_page::write_run(own, &t, dir, run_id, expected, live, &mut written)?;
                ahead.read_next(own);
            }
            crate::phase::phase("reports: run pages");
            Ok(written)
        });
        let t = engine_of(&TREND_TEMPLATES)?;
        let mut read = HashMap::new();
        for name in &chosen {
            ahead.at(name);
            let held = heat.get(name);
            let (html, overall) = build_suite(
                store,
                &t,
                name,
                descriptions.get(name).cloned(),
                opts,
                &with_pages,
                if held.is_some() {
                    Ahead::Held(held)
                } else {
                    Ahead::Coming(ahead)
                },
            )?;
            write(&dir.join(suite_href(name)), &html, &mut out)?;
            // The index needs the headline figures, not each run's whole metrics.
            let headline = overall.into_iter().map(|r| TrendRow { metrics: None, ..r });
            read.insert(name.clone(), headline.collect::<Vec<_>>());
        }
        crate::phase::phase("reports: trend pages");
        let late = index_descriptions();
        let html = build_index(
            store,
            &t,
            &suites,
            late.as_ref().unwrap_or(descriptions),
            opts,
            &with_pages,
            &read,
        )?;
        write(&dir.join("index.html"), &html, &mut out)?;
        let html = build_alerts(store, &t, opts, &with_pages)?;
        write(&dir.join("alerts.html"), &html, &mut out)?;
        crate::phase::phase("reports: index");
        let written = pages.join().map_err(|_| HtmlError::Template {
            page: "run".to_string(),
            message: "the thread writing run pages panicked".to_string(),
        })??;
        out.files.extend(written.files);
        Ok(())
    });
    done?;
    Ok(out)
}

/// The run pages' thread's connection: opened at once (to read heat maps' statuses
/// ahead), or only when a page needs it.
enum Own {
    Later(OpenSource),
    Opened(Result<Box<dyn Source>, ReadError>),
}

impl Own {
    fn get(self) -> Result<Box<dyn Source>, ReadError> {
        match self {
            Self::Later(open) => open(),
            Self::Opened(opened) => opened,
        }
    }
}

/// Drop `value` on a thread of its own: freeing a large value (millions of strings) takes
/// milliseconds that the caller need not wait for.
pub fn drop_later<T: Send + 'static>(value: T) {
    // When no thread can be started, the closure, and the value with it, is dropped here.
    let _ = std::thread::Builder::new()
        .name("evalwatch-free".into())
        .spawn(move || drop(value));
}

/// Whether a run's page is current: written after the run finished (a resumed run finishes
/// again). A run that never finished (killed) has not changed since it stopped: its page, once
/// written, is current, unless the run is resumed, which removes it ([`run_resumed`]).
fn page_newer_than(page: &Path, finished_at: Option<&str>) -> bool {
    let Some(finished) = finished_at else {
        return true;
    };
    let Ok(finished) = chrono::DateTime::parse_from_rfc3339(finished) else {
        return false;
    };
    std::fs::metadata(page)
        .and_then(|m| m.modified())
        .is_ok_and(|t| chrono::DateTime::<chrono::Utc>::from(t) > finished)
}

/// A run is being resumed: its pages in `dir` are out of date from now on. Its first page is
/// removed, so that the next refresh writes them again, even if the run is killed before it
/// finishes (and has no finish time to tell). So are the file of rows and the empty page
/// files the killed run left behind: the resumed run writes its pages from the store, and
/// while it runs no clean-up takes them (they belong to a running run).
pub fn run_resumed(dir: &Path, run_id: &str) -> std::io::Result<()> {
    let runs = dir.join("runs");
    let gone = |path: PathBuf| match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    };
    gone(runs.join(run_file(run_id, 1)))?;
    gone(live::rows_path(&runs, run_id))?;
    let stem = file_stem(run_id);
    if let Ok(entries) = std::fs::read_dir(&runs) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(page) = name.strip_suffix(".html.tmp") else {
                continue;
            };
            let of_run = page == stem
                || page
                    .strip_prefix(stem.as_str())
                    .and_then(|rest| rest.strip_prefix("-p"))
                    .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
            if of_run && entry.metadata().is_ok_and(|m| m.len() == 0) {
                gone(entry.path())?;
            }
        }
    }
    Ok(())
}

/// A run was discarded (its suite was not judged whole): every page written for it as its
/// results came, and its file of rows, are removed from `dir`.
pub fn run_discarded(dir: &Path, run_id: &str) -> std::io::Result<()> {
    let runs = dir.join("runs");
    let stem = file_stem(run_id);
    match std::fs::remove_file(live::rows_path(&runs, run_id)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let Ok(entries) = std::fs::read_dir(&runs) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(page) = name
            .strip_suffix(".html")
            .or_else(|| name.strip_suffix(".html.tmp"))
        else {
            continue;
        };
        let of_run = page == stem
            || page
                .strip_prefix(stem.as_str())
                .and_then(|rest| rest.strip_prefix("-p"))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if of_run {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}
