//! `evalwatch run`: load, plan, execute, score, store, gate, report, as stages.
//!
//! Cases stream: a suite's cases go to the executor as they are built (the first call goes
//! out while the rest of the file is still being read), and every suite is checked in full
//! on a thread of its own meanwhile. A problem found there stops the run and removes what it
//! stored (exit 2), as if it had been found before the first call; a run never finishes
//! before its suites were checked.
//!
//! The stages, one file each (docs/architecture.md draws them):
//! - [`settings`]: the command line resolved into [`RunSettings`];
//! - [`start`]: what every suite's run shares, begun at once (runtime, first feed, store);
//! - [`feed`] / [`resume`]: where a suite's jobs come from (its file streamed, or a run's
//!   missing jobs); [`check`]: the whole suite checked beside the calls;
//! - [`calls`]: the executor and what it is given; [`judging`]: the hook after each call;
//! - [`suite`]: one suite's run as its list of phases ([`suite::run_suite`]);
//! - [`consume`]: the one consumer of the executor's events (score, redact, store, count);
//! - [`pages`]: the run's HTML pages, live and after; [`finish`]: status, gates, alerts;
//! - [`emit`]: the chosen output of every run.

mod calls;
mod check;
mod consume;
mod emit;
mod feed;
mod finish;
mod judging;
mod pages;
mod resume;
mod settings;
mod start;
mod suite;
mod versions;

use std::path::Path;

use tokio_util::sync::CancellationToken;

use crate::cli::RunArgs;
use crate::exec::Feed;
use crate::model::{ProjectConfig, RunStatus, Suite};
use crate::store::Store;

use super::{Ctx, exit, suite_files};
use calls::LazyClient;
use check::Checker;
use finish::Done;

pub(crate) use judging::build_judge;
pub use settings::{DEFAULT_CONCURRENCY, Output, RunSettings, parse_label};

/// Default share of errored results above which a run cannot count as complete (exit 3).
pub const DEFAULT_ERROR_BUDGET: f64 = 0.5;

/// `evalwatch run` with the command line's arguments.
pub fn run(ctx: &Ctx, args: &RunArgs) -> anyhow::Result<u8> {
    execute(ctx, &RunSettings::from_args(args)?)
}

/// Run the suites `settings` name, one run each; returns the exit code.
pub fn execute(ctx: &Ctx, settings: &RunSettings) -> anyhow::Result<u8> {
    crate::phase::phase("start");
    // The HTTP client is built on its own thread, while the suites load.
    let client = LazyClient::start();
    let project = ctx.project()?;
    let files = suite_files(ctx, &project, &settings.paths)?;
    if settings.dry_run {
        let suites = check::load_whole(ctx, &files, &project)?;
        return emit::dry_run(ctx, &suites, settings);
    }
    if let Some(path) = &settings.out {
        emit::check_out(path)?;
    }
    let checker = settings
        .resume
        .is_none()
        .then(|| Checker::new(files.clone(), project.clone(), settings.filters.clone()));
    let runtime = calls::runtime()?;
    let db = ctx.db_path(&project);
    let cancel = CancellationToken::new();
    let env = RunEnv {
        ctx,
        project: &project,
        runtime: &runtime,
        client: &client,
        db: &db,
        settings,
        cancel: &cancel,
        checker: checker.as_ref(),
    };
    let (sources, store) = start::start(&env, &files)?;
    calls::cancel_on_signal(&runtime, cancel.clone())?;
    ctx.machine_stdout.set(settings.machine_stdout());
    let (code, mut done, store) = run_all(&env, store, sources)?;
    if settings.reports {
        pages::refresh(&env, &store, &mut done);
    }
    crate::phase::phase("reports");
    if let Err(e) = emit::emit(ctx, &store, settings, &done) {
        // The run is stored and its verdict stands: a gate breach or an alert (1), a failed
        // run (3) keeps its code, the output's failure said beside it. A run that passed
        // exits 3: its output, which a script waits for, is missing.
        if code == exit::OK {
            return Err(e);
        }
        ctx.printer.warn(&format!(
            "write the run's output: {e:#}; the exit code stays {code}, the run's own"
        ));
    }
    crate::phase::phase("emitted");
    finish::close(done);
    runtime.shutdown_background();
    crate::phase::phase("shutdown");
    Ok(code)
}

/// Run every suite in turn (an interrupted one stops the rest); the exit code, the runs
/// done and the store (made now if no run made it: no case matched the filters).
fn run_all(
    env: &RunEnv<'_>,
    mut store: Option<Store>,
    sources: Vec<Source>,
) -> anyhow::Result<(u8, Vec<Done>, Store)> {
    let mut code = exit::OK;
    let mut done_runs = Vec::new();
    for source in sources {
        let Some(done) = suite::run_suite(env, &mut store, source)? else {
            continue;
        };
        let breached = done.gates.iter().any(|g| !g.ok) || done.alert_fail;
        let status = done.info.status;
        done_runs.push(done);
        if status == RunStatus::Incomplete {
            code = exit::INTERRUPTED;
            break;
        }
        if status == RunStatus::Failed {
            code = code.max(exit::INCOMPLETE);
        } else if breached && code == exit::OK {
            code = exit::GATE;
        }
    }
    let store = match store {
        Some(store) => store,
        None => env.ctx.open_store(env.db)?,
    };
    Ok((code, done_runs, store))
}

/// What every suite's run shares.
pub(super) struct RunEnv<'a> {
    ctx: &'a Ctx,
    project: &'a ProjectConfig,
    runtime: &'a tokio::runtime::Runtime,
    client: &'a LazyClient,
    db: &'a Path,
    settings: &'a RunSettings,
    cancel: &'a CancellationToken,
    checker: Option<&'a Checker>,
}

impl<'a> RunEnv<'a> {
    /// The checker of a streamed run (a resumed one has none).
    fn checker(&self) -> anyhow::Result<&'a Checker> {
        self.checker
            .ok_or_else(|| anyhow::anyhow!("run a streamed suite: no checker"))
    }
}

/// What one suite's run takes its jobs from. One per suite file, moved a few times: the
/// size of a fed suite's head (with its settings) inline costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
enum Source {
    /// A suite file whose cases stream in (the `index`-th file the checker checks), its
    /// feed started already or not.
    Feed {
        file: std::path::PathBuf,
        index: usize,
        fed: Option<feed::Fed>,
    },
    /// A resumed run: the jobs it has no result for.
    Resume {
        suite: std::sync::Arc<Suite>,
        resume: resume::Resume,
    },
}

/// A suite's run's head: its suite (a streamed one without its cases), the providers'
/// queues its jobs come on, and for a resumed run, what it stored before.
struct Head {
    suite: std::sync::Arc<Suite>,
    feeds: Vec<Feed>,
    resume: Option<resume::Resume>,
    /// The suite file's place among the checked ones (a streamed run).
    file_index: Option<usize>,
}

impl Head {
    fn of(env: &RunEnv<'_>, source: Source) -> anyhow::Result<Self> {
        match source {
            Source::Feed { file, index, fed } => feed::head(env, file, index, fed),
            Source::Resume { suite, resume } => resume::head(env, suite, resume),
        }
    }
}
