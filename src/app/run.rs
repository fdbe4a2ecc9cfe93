//! `evalwatch run`: load, plan, execute, score, store, gate, report.
//!
//! Cases stream: a suite's cases go to the executor as they are built (the first call goes
//! out while the rest of the file is still being read), and every suite is checked in full
//! on a thread of its own meanwhile. A problem found there stops the run and removes what it
//! stored (exit 2), as if it had been found before the first call; a run never finishes
//! before its suites were checked.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::provider::common::Secrets;

use super::{Ctx, Failure, exit, host_name, suite_files};
use crate::cli::{RunArgs, RunFormat};
use crate::exec::{self, Event, Feed, Finished, Slot};
use crate::metrics::{RunAccumulator, evaluate_gates};
use crate::model::{
    AssertionOutcome, Case, CaseRef, CaseStatus, ErrorKind, GateResult, Job, JudgeSignature,
    ProjectConfig, ProviderMetrics, ProviderSpec, ResultRecord, RunInfo, RunStatus, Suite,
};
use crate::plan::{self, Filters};
use crate::report::html::live::{EarlyPages, LivePages};
use crate::report::html::{HeatFeed, HeatHistory};
use crate::report::junit::JunitWriter;
use crate::report::machine::{JsonRunWriter, header};
use crate::report::{RunView, terminal};
use crate::score::{ScoreError, ScoreInput, Scorer};

use crate::store::{Store, Writer};
use crate::suite::{self, Diagnostic, Diagnostics, Renderer};
use crate::{judge, provider, report};

/// Default share of errored results above which a run cannot count as complete (exit 3).
pub const DEFAULT_ERROR_BUDGET: f64 = 0.5;
/// Default cap on calls in flight across all providers.
pub const DEFAULT_CONCURRENCY: usize = 64;
/// Results per store transaction.
const BATCH: usize = 1000;
/// Jobs waiting in a provider's queue ahead of its workers: enough that a slow provider
/// does not hold a fast one back for long, few enough that memory stays flat.
const QUEUED_JOBS: usize = 256;

/// Tasks a runtime worker runs between two looks at the sockets (tokio's default: 61). The
/// first calls are 64 tasks at once: with the default, the first connection's request waited
/// until most of them had rendered and connected.
const EVENT_INTERVAL: u32 = 8;

/// How often the case feed looks again at a full queue of jobs: 256 jobs last 2 ms at
/// 128,000 calls a second.
const FEED_POLL: std::time::Duration = std::time::Duration::from_millis(2);

/// A new run id: UTC time plus random hex, sortable and easy to type a prefix of.
fn new_run_id() -> String {
    format!(
        "{}-{:04x}",
        chrono::Utc::now().format("%Y%m%d-%H%M%S"),
        rand::random::<u16>()
    )
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One finished run, as the formatters need it.
struct Done {
    info: RunInfo,
    /// The suite as checked, without its cases (its name and description for the reports).
    suite: Suite,
    /// Its run pages, written from the rows rendered as its results were scored (unless
    /// `--no-reports`, or the rows cannot be used: the refresh writes them from the store).
    pages: Option<EarlyPages>,
    /// The statuses its heat map shows: of the runs before it, read while it ran, and its
    /// own as they were scored.
    heat: Option<HeatFeed>,
    /// Alerts this run fired (machine-output objects).
    alerts: Vec<serde_json::Value>,
    /// An alert at or above `--fail-on` fired.
    alert_fail: bool,
    metrics: Vec<ProviderMetrics>,
    gates: Vec<GateResult>,
    wall_secs: f64,
    failures: Vec<String>,
    more_failures: usize,
    /// Its writer's checkpointer, copying what the run stored into the database file while
    /// the reports are written; dropped (waited for) before the store closes.
    checkpointer: crate::store::Checkpointer,
}

/// What the whole check of the suites found.
struct Checked {
    /// The suites without problems, without their cases (hashes and checks cover them).
    suites: Vec<Suite>,
    diags: Diagnostics,
    /// Per suite file: what its run needs to know of all its cases.
    files: Vec<FileTally>,
}

#[derive(Default, Clone)]
struct FileTally {
    /// Cases the filters select.
    selected: u64,
    /// Judges its assertions may call.
    judges: Vec<String>,
}

/// Checks every suite file in full on its own thread (see the module's doc), started once
/// the first call is out: on two cores, it would otherwise hold that call back.
struct Checker {
    todo: std::sync::Mutex<Option<(Vec<PathBuf>, ProjectConfig, Filters)>>,
    rx: watch::Receiver<Option<Arc<Checked>>>,
    tx: watch::Sender<Option<Arc<Checked>>>,
}

impl Checker {
    fn new(files: Vec<PathBuf>, project: ProjectConfig, filters: Filters) -> Self {
        let (tx, rx) = watch::channel(None);
        Self {
            todo: std::sync::Mutex::new(Some((files, project, filters))),
            rx,
            tx,
        }
    }

    /// Start checking, unless it started already.
    fn start(&self) -> anyhow::Result<()> {
        let todo = self
            .todo
            .lock()
            .map_err(|_| anyhow::anyhow!("check the suites: a thread panicked"))?
            .take();
        let Some((files, project, filters)) = todo else {
            return Ok(());
        };
        let tx = self.tx.clone();
        std::thread::Builder::new()
            .name("evalwatch-check".to_owned())
            .spawn(move || {
                let mut tallies = vec![FileTally::default(); files.len()];
                // Assertions the scorer cannot build are problems of the suite too, and so
                // are cases that do not render: `validate` refuses both, and so does `run`.
                let mut scorer = Scorer::empty();
                let mut problems = Vec::new();
                let renderers: Vec<Option<Renderer>> = files
                    .iter()
                    .map(|f| suite::suite_head(f, &project).and_then(|h| Renderer::new(&h).ok()))
                    .collect();
                let (suites, mut diags) = suite::check_suites(&files, &project, &mut |i, case| {
                    if let Some(Some(renderer)) = renderers.get(i)
                        && let Err(message) = renderer.render(&case, 0)
                    {
                        problems.push(Diagnostic {
                            location: case.location.clone(),
                            message: format!("case `{}` does not render: {message}", case.id),
                        });
                    }
                    if let Some(t) = tallies.get_mut(i) {
                        t.selected += u64::from(filters.selects(&case));
                        judge::Engine::add_judge_ids(
                            &case,
                            project.judge.as_deref(),
                            &mut t.judges,
                        );
                    }
                    if let Err(e) = scorer.prepare_case(&case) {
                        problems.push(scorer_problem(&case, &e));
                    }
                });
                diags.0.extend(problems);
                let _ = tx.send(Some(Arc::new(Checked {
                    suites,
                    diags,
                    files: tallies,
                })));
            })
            .context("start the suite check")?;
        Ok(())
    }

    /// What the check found, once it is done (starting it if need be).
    async fn wait(&self) -> anyhow::Result<Arc<Checked>> {
        self.start()?;
        let mut rx = self.rx.clone();
        let done = rx
            .wait_for(Option::is_some)
            .await
            .map_err(|_| anyhow::anyhow!("check the suites: the checking thread stopped"))?;
        done.clone()
            .ok_or_else(|| anyhow::anyhow!("check the suites: no result"))
    }
}

/// An assertion of `case` the scorer cannot build, located where it is written.
fn scorer_problem(case: &Case, e: &ScoreError) -> Diagnostic {
    let ScoreError::Assertion {
        case_id,
        index,
        message,
    } = e;
    Diagnostic {
        location: case
            .asserts
            .get(*index)
            .map_or_else(|| case.location.clone(), |a| a.location.clone()),
        message: format!("assertion of case `{case_id}`: {message}"),
    }
}

fn invalid(ctx: &Ctx, diags: &Diagnostics) -> anyhow::Error {
    if diags.is_empty() {
        return Failure::invalid(
            "a suite could not be read, though no problem was found in it; run `evalwatch validate`",
        );
    }
    Failure::invalid(format!(
        "{}\nnothing was run: fix the problems above (`evalwatch validate` lists them)",
        super::render_diagnostics(ctx, diags)
    ))
}

/// Load every suite whole (a dry run, a resumed run).
fn load_whole(ctx: &Ctx, files: &[PathBuf], project: &ProjectConfig) -> anyhow::Result<Vec<Suite>> {
    let (suites, diags) = suite::load_suites(files, project);
    if !diags.is_empty() {
        return Err(invalid(ctx, &diags));
    }
    for suite in &suites {
        super::build_scorer(ctx, suite)?;
    }
    Ok(suites)
}

/// What one suite's run takes its jobs from. One per suite file, moved a few times: the
/// size of a fed suite's head (with its settings) inline costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
enum Source {
    /// A suite file whose cases stream in (the `index`-th file the checker checks), its
    /// feed started already or not.
    Feed {
        file: PathBuf,
        index: usize,
        fed: Option<Fed>,
    },
    /// A resumed run: the jobs it has no result for.
    Resume { suite: Arc<Suite>, resume: Resume },
}

pub fn run(ctx: &Ctx, args: &RunArgs) -> anyhow::Result<u8> {
    crate::phase::phase("start");
    // The HTTP client is built on its own thread, while the suites load.
    let client = LazyClient::start();
    let project = ctx.project()?;
    let files = suite_files(ctx, &project, &args.paths)?;
    let filters = Filters {
        providers: args.providers.clone(),
        cases: args
            .cases
            .iter()
            .map(|g| {
                glob::Pattern::new(g)
                    .map_err(|e| Failure::invalid(format!("read --case `{g}`: {e}")))
            })
            .collect::<Result<_, _>>()?,
        tags: args.tags.clone(),
        repeat: args.repeat,
    };
    if args.concurrency == Some(0) {
        return Err(Failure::invalid("read --concurrency: must be at least 1"));
    }
    if args.dry_run {
        let suites = load_whole(ctx, &files, &project)?;
        return dry_run(ctx, &suites, &filters);
    }
    let checker = match args.resume {
        None => Some(Checker::new(
            files.clone(),
            project.clone(),
            filters.clone(),
        )),
        Some(_) => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .event_interval(EVENT_INTERVAL)
        .build()
        .context("start the async runtime")?;
    // The first suite's feed starts at once; a problem met before its first case stops
    // everything before a new store is even created. A store that exists is opened while
    // the feed reads the suite's head.
    let db = ctx.db_path(&project);
    let (first, store) = std::thread::scope(|scope| {
        let opening = db.is_file().then(|| {
            scope.spawn(|| {
                let store = Store::open(&db);
                crate::phase::phase("store open");
                store
            })
        });
        let first = match (&args.resume, files.first()) {
            (None, Some(file)) => {
                let fed = feed(file.clone(), project.clone(), filters.clone())?;
                if fed.is_none()
                    && let Some(checker) = &checker
                {
                    let checked = runtime.block_on(checker.wait())?;
                    return Err(invalid(ctx, &checked.diags));
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
            super::reap_dead_runs(&mut store, ctx.printer)?;
            Some(store)
        } else if args.resume.is_some() {
            Some(ctx.open_store(&db)?)
        } else {
            // A new store is made once the first calls are out (`run_suite`).
            None
        };
        Ok((first, store))
    })?;
    let mut store = store;
    let mut first = first;
    let sources = match &args.resume {
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
            let suites = load_whole(ctx, &files, &project)?;
            let opened = store
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("resume: the store is not open"))?;
            let (suite, resume) = select_resume(opened, suites, id)?;
            vec![Source::Resume {
                suite: Arc::new(suite),
                resume,
            }]
        }
    };
    let cancel = CancellationToken::new();
    cancel_on_signal(&runtime, cancel.clone())?;
    ctx.machine_stdout
        .set(args.format != RunFormat::Text && args.out.is_none());
    let env = RunEnv {
        ctx,
        project: &project,
        runtime: &runtime,
        client: &client,
        db: &db,
        args,
        filters: &filters,
        cancel: &cancel,
        checker: checker.as_ref(),
    };
    let mut code = exit::OK;
    let mut done_runs = Vec::new();
    for source in sources {
        let Some(done) = run_suite(&env, &mut store, source)? else {
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
    // Made now if no run made it (no case matched the filters).
    if store.is_none() {
        store = Some(ctx.open_store(&db)?);
    }
    let Some(store) = store.as_ref() else {
        return Err(anyhow::anyhow!("open the store {}", db.display()));
    };
    if !args.no_reports {
        let mut prepared = report::html::Prepared::default();
        for d in &mut done_runs {
            if let Some(pages) = d.pages.take() {
                prepared.early.insert(d.info.run_id.clone(), pages);
            }
            if let Some(heat) = d.heat.take().and_then(|h| h.finish(&d.info)) {
                prepared.heat.insert(d.info.suite.clone(), heat);
            }
        }
        let ran: Vec<&Suite> = done_runs.iter().map(|d| &d.suite).collect();
        if let Err(e) = super::report::after_run(ctx, store, &project, &ran, prepared) {
            // Reports are a view of stored history: failing to refresh them never fails a run.
            ctx.printer
                .warn(&format!("refresh the reports: {}", super::error_text(&e)));
        }
    }
    crate::phase::phase("reports");
    emit(ctx, store, args, &done_runs)?;
    crate::phase::phase("emitted");
    // The checkpoints asked for as the runs ended (made while the reports were written) are
    // waited for before the store closes: the last connection, its close then has little
    // left to copy before it removes the log.
    for done in done_runs {
        drop(done.checkpointer);
    }
    crate::phase::phase("checkpointed");
    runtime.shutdown_background();
    crate::phase::phase("shutdown");
    Ok(code)
}

/// What every suite's run shares.
struct RunEnv<'a> {
    ctx: &'a Ctx,
    project: &'a ProjectConfig,
    runtime: &'a tokio::runtime::Runtime,
    client: &'a LazyClient,
    db: &'a std::path::Path,
    args: &'a RunArgs,
    filters: &'a Filters,
    cancel: &'a CancellationToken,
    checker: Option<&'a Checker>,
}

/// A run being resumed: its header and the jobs it already has results for.
struct Resume {
    info: RunInfo,
    /// (case id, provider, sample) of every stored result.
    done: std::collections::HashSet<(String, String, u32)>,
    /// Plan positions already used.
    seqs: std::collections::HashSet<usize>,
}

/// `--resume RUN_ID`: the run, and the one suite of the loaded ones it belongs to.
fn select_resume(store: &Store, suites: Vec<Suite>, id: &str) -> anyhow::Result<(Suite, Resume)> {
    let info = store.run(id)?.ok_or_else(|| {
        Failure::invalid(format!(
            "resume run `{id}`: no such run; `evalwatch runs` lists them"
        ))
    })?;
    if info.status == RunStatus::Running {
        return Err(Failure::invalid(format!(
            "resume run {}: it is still running (another process is writing it); wait for it or stop it first",
            info.run_id
        )));
    }
    let names: Vec<String> = suites.iter().map(|s| s.name.clone()).collect();
    let Some(suite) = suites.into_iter().find(|s| s.name == info.suite) else {
        return Err(Failure::invalid(format!(
            "resume run {}: it belongs to suite `{}`, which is not among the suites loaded ({}); name its file",
            info.run_id,
            info.suite,
            names.join(", ")
        )));
    };
    let mut done = std::collections::HashSet::new();
    let mut seqs = std::collections::HashSet::new();
    store.for_each_result(&info.run_id, |rec| {
        seqs.insert(rec.job.seq);
        done.insert((rec.job.case_id, rec.job.provider_id, rec.job.sample));
        Ok(())
    })?;
    Ok((suite, Resume { info, done, seqs }))
}

/// Cancel `cancel` on Ctrl-C or SIGTERM. The handlers are installed before this returns, so a
/// signal that arrives while the run is starting is not lost.
fn cancel_on_signal(
    runtime: &tokio::runtime::Runtime,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let _entered = runtime.enter();
    // `run` as a command listens from its start (a signal while the suites load ends it at
    // once); a run started by the scheduler listens from here.
    if let Some(token) = super::interrupt::token() {
        runtime.spawn(async move {
            token.cancelled().await;
            cancel.cancel();
        });
        return Ok(());
    }
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).context("listen for Ctrl-C")?;
        let mut terminate = signal(SignalKind::terminate()).context("listen for SIGTERM")?;
        runtime.spawn(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            cancel.cancel();
        });
    }
    #[cfg(not(unix))]
    runtime.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel.cancel();
        }
    });
    Ok(())
}

fn dry_run(ctx: &Ctx, suites: &[Suite], filters: &Filters) -> anyhow::Result<u8> {
    for suite in suites {
        let jobs = plan::plan(suite, filters).map_err(|e| Failure::invalid(e.to_string()))?;
        let renderer = Renderer::new(suite)
            .map_err(|d| Failure::invalid(super::render_diagnostics(ctx, &d)))?;
        let mut rendered = 0usize;
        let mut first = None;
        for job in &jobs {
            let request = renderer
                .render(&suite.cases[job.case_index], job.sample)
                .map_err(|e| Failure::invalid(format!("render case `{}`: {e}", job.case_id)))?;
            rendered += 1;
            if first.is_none() {
                first = Some(request.prompt_text());
            }
        }
        let providers: Vec<&str> = suite.providers.iter().map(|p| p.id.as_str()).collect();
        ctx.printer.result(&format!(
            "{}: {} job{} ({} case{} x providers [{}]); every prompt rendered, nothing called or stored",
            suite.name,
            rendered,
            if rendered == 1 { "" } else { "s" },
            suite.cases.len(),
            if suite.cases.len() == 1 { "" } else { "s" },
            providers.join(", ")
        ));
        if let (Some(p), Some(job)) = (first, jobs.first()) {
            ctx.printer
                .info(&format!("first prompt ({}):\n{p}", job.case_id));
        }
    }
    Ok(exit::OK)
}

/// A streamed suite's head and its providers' job queues.
type Fed = (Suite, Vec<Feed>);

/// The planner of a streamed suite: builds the suite's cases on its own thread and turns
/// each selected case into its jobs on the providers' queues. Returns once the first job is
/// queued (or the file is done): the suite's head and the queues, or None when the suite
/// met a problem before that (the checker says which; nothing need be opened or begun).
fn feed(file: PathBuf, project: ProjectConfig, filters: Filters) -> anyhow::Result<Option<Fed>> {
    let (head_tx, head_rx) = std::sync::mpsc::sync_channel::<Fed>(1);
    std::thread::Builder::new()
        .name("evalwatch-feed".to_owned())
        .spawn(move || {
            // The head and queues, until handed over with the first job.
            let waiting = std::cell::RefCell::new(None::<Fed>);
            let hand_over = || {
                if let Some(fed) = waiting.borrow_mut().take() {
                    let _ = head_tx.send(fed);
                }
            };
            // Set from the head: the providers' queues, the providers the filters keep, the
            // samples per case.
            let plan = std::cell::RefCell::new(
                None::<(Vec<mpsc::Sender<Job>>, Vec<(usize, String)>, u32)>,
            );
            let mut case_index = 0usize;
            let mut seq = 0usize;
            let clean = suite::feed_suite(
                &file,
                &project,
                &mut |head| {
                    let (Ok(providers), Ok(repeat)) = (
                        plan::providers(head, &filters),
                        plan::repeat(head, &filters),
                    ) else {
                        // `run` reports the filters' problem from the head it gets.
                        *waiting.borrow_mut() = Some((head.clone(), Vec::new()));
                        return;
                    };
                    let (senders, feeds): (Vec<_>, Vec<_>) = head
                        .providers
                        .iter()
                        .map(|_| {
                            let (s, r) = mpsc::channel(QUEUED_JOBS);
                            (s, Feed::Bounded(r))
                        })
                        .unzip();
                    *plan.borrow_mut() = Some((senders, providers, repeat));
                    *waiting.borrow_mut() = Some((head.clone(), feeds));
                },
                &mut |case| {
                    let index = case_index;
                    case_index += 1;
                    let mut plan = plan.borrow_mut();
                    let Some((senders, providers, repeat)) = plan.as_mut() else {
                        return;
                    };
                    if senders.is_empty() || !filters.selects(&case) {
                        return;
                    }
                    let case = Arc::new(case);
                    for job in plan::case_jobs(&case, index, *repeat, providers, &mut seq) {
                        let to = job.provider_index;
                        let mut job = job;
                        let sent = loop {
                            match senders[to].try_send(job) {
                                Ok(()) => break Ok(()),
                                Err(mpsc::error::TrySendError::Full(back)) => {
                                    hand_over();
                                    // Polled rather than woken: a sender waiting on a full
                                    // queue is woken for every job taken (thousands of
                                    // context switches a second); the queue lasts far longer.
                                    job = back;
                                    std::thread::sleep(FEED_POLL);
                                }
                                Err(mpsc::error::TrySendError::Closed(_)) => break Err(()),
                            }
                        };
                        if sent.is_err() {
                            // A closed queue: the run stopped; the rest is not needed.
                            senders.clear();
                            return;
                        }
                    }
                    hand_over();
                },
            );
            if clean {
                hand_over();
            }
        })
        .context("start the case feed")?;
    Ok(head_rx.recv().ok())
}

/// Run one suite. None when there was nothing to run (no case matches the filters).
/// `store` is None when it does not exist yet: it is made once the first calls are out.
#[allow(clippy::too_many_lines)]
fn run_suite(
    env: &RunEnv<'_>,
    store: &mut Option<Store>,
    source: Source,
) -> anyhow::Result<Option<Done>> {
    let ctx = env.ctx;
    let args = env.args;
    let (head, feeds, resume, file_index) = match source {
        Source::Feed { file, index, fed } => {
            let fed = match fed {
                Some(fed) => Some(fed),
                None => feed(file, env.project.clone(), env.filters.clone())?,
            };
            let Some((head, feeds)) = fed else {
                // The head has a problem: the checker says which.
                let checked = env.runtime.block_on(checker(env)?.wait())?;
                return Err(invalid(ctx, &checked.diags));
            };
            plan::providers(&head, env.filters).map_err(|e| Failure::invalid(e.to_string()))?;
            plan::repeat(&head, env.filters).map_err(|e| Failure::invalid(e.to_string()))?;
            (Arc::new(head), feeds, None, Some(index))
        }
        Source::Resume { suite, resume } => {
            let jobs =
                plan::plan(&suite, env.filters).map_err(|e| Failure::invalid(e.to_string()))?;
            let mut jobs = missing_jobs(jobs, &resume);
            let jobs_left = jobs.len();
            let cases: Vec<Arc<Case>> = suite.cases.iter().cloned().map(Arc::new).collect();
            let jobs = jobs
                .drain(..)
                .map(|job| Job {
                    case: CaseRef(cases.get(job.case_index).cloned()),
                    ..job
                })
                .collect();
            let feeds = Feed::all_of(jobs, suite.providers.len());
            let left = jobs_left;
            (suite, feeds, Some((resume, left)), None)
        }
    };
    crate::phase::phase("head");
    let suite = &head;
    let secrets = run_secrets(env.project, suite);
    // One rate limiter per provider id, shared by its calls as a provider and as a judge.
    let mut limiters: std::collections::HashMap<String, Arc<exec::Limiter>> =
        std::collections::HashMap::new();
    // A resumed run must not be touched by a provider that cannot be built: built first. A
    // new run's providers are built once it is begun, while the HTTP client is built.
    let mut slots = match &resume {
        Some(_) => Some(build_slots(env, suite, &mut limiters)?),
        None => None,
    };
    let (tx, rx) = mpsc::channel::<Event>(1024);
    let renderer = Arc::new(
        Renderer::new(suite).map_err(|d| Failure::invalid(super::render_diagnostics(ctx, &d)))?,
    );
    // A streamed suite's cases tell their own policies as they come; a resumed one has them.
    let mut acc = if resume.is_some() {
        RunAccumulator::for_suite(suite)
    } else {
        RunAccumulator::with_policies(suite.repeat_policy, [])
    };
    // Samples per case and provider, so that a case's verdict is settled (and its counts let
    // go) with its last sample: a resumed run may have stored more samples than it now plans.
    let stored_samples = resume.as_ref().map_or(0, |(r, _)| {
        r.done.iter().map(|(_, _, s)| s + 1).max().unwrap_or(0)
    });
    acc.expect_samples(plan::repeat(suite, env.filters)?.max(stored_samples));
    let (info, stored) = match &resume {
        None => (
            RunInfo {
                run_id: new_run_id(),
                suite: suite.name.clone(),
                // Both known once the checker is through the whole suite.
                suite_hash: String::new(),
                started_at: now_rfc3339(),
                finished_at: None,
                status: RunStatus::Running,
                providers: suite.providers.iter().map(|p| p.id.clone()).collect(),
                planned: 0,
            },
            0,
        ),
        Some((r, left)) => {
            let left = *left;
            // Metrics cover the whole run: what was stored before and what runs now.
            let opened = store
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("resume: the store is not open"))?;
            opened.for_each_result(&r.info.run_id, |rec| {
                acc.add(&rec);
                Ok(())
            })?;
            if suite.hash != r.info.suite_hash {
                ctx.printer.warn(&format!(
                    "run {}: suite `{}` changed since the run started; the remaining jobs run with its current content",
                    r.info.run_id, suite.name
                ));
            }
            ctx.printer.note(&format!(
                "resuming run {}: {} result{} stored, {} job{} to run",
                r.info.run_id,
                r.done.len(),
                if r.done.len() == 1 { "" } else { "s" },
                left,
                if left == 1 { "" } else { "s" }
            ));
            let info = RunInfo {
                status: RunStatus::Running,
                finished_at: None,
                planned: r.done.len() as u64 + left as u64,
                ..r.info.clone()
            };
            (info, r.done.len())
        }
    };
    // Held until the run is stored: the same suite never runs twice at once on one store.
    // Checked here with a read; taken once the first calls are out (below). A store that
    // does not exist yet holds no lease.
    if let Some(store) = store.as_ref() {
        super::schedule::check_lease(store, suite)?;
    }
    let mut slots = match slots.take() {
        Some(slots) => slots,
        None => build_slots(env, suite, &mut limiters)?,
    };
    // One budget for the run: once it cannot be met, no provider is called again. A resumed
    // run's stored errors are not counted (it stops no earlier than it should).
    let budget = Arc::new(exec::ErrorBudget::new(
        env.project.error_budget.unwrap_or(DEFAULT_ERROR_BUDGET),
        info.planned,
        0,
    ));
    for slot in &mut slots {
        slot.budget = Some(Arc::clone(&budget));
    }
    crate::phase::phase("providers");
    let bar = ctx
        .printer
        .progress(info.planned.saturating_sub(stored as u64), &suite.name);
    let started = Instant::now();
    // The judging stage: set up at once for a resumed run; for a streamed one, once the
    // checker knows which judges the suite's assertions call (a case that needs one waits
    // for it, a few milliseconds at most).
    let (engine_tx, engine_rx) = watch::channel(Stage::Pending);
    if resume.is_some() {
        let ids = judge::Engine::judge_ids(suite, env.project.judge.as_deref());
        let engine = judging(env, suite, &ids, &mut limiters, &tx)?;
        let _ = engine_tx.send(Stage::Ready(engine));
    }
    let after = Some(after_hook(engine_rx));
    // Told when the first job is rendered, right before its call.
    let first_call = Arc::new(tokio::sync::Notify::new());
    let render: exec::RenderFn = {
        let renderer = Arc::clone(&renderer);
        let first_call = Arc::clone(&first_call);
        let told = std::sync::atomic::AtomicBool::new(false);
        Arc::new(move |job| {
            if !told.swap(true, std::sync::atomic::Ordering::Relaxed) {
                crate::phase::phase("first render");
                first_call.notify_one();
            }
            match job.case.get() {
                Some(case) => renderer.render(case, job.sample),
                None => Err(format!("case `{}` is not loaded", job.case_id)),
            }
        })
    };
    let global = args.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
    let events = tx.clone();
    // The calls start now, on the runtime's threads. Their results wait in the channel
    // until the consumer below takes them (the first come back after a call's latency).
    let calls_cancel = env.cancel.child_token();
    let calls = env.runtime.spawn(exec::execute_feeds(
        feeds,
        slots,
        global,
        render,
        after,
        calls_cancel.clone(),
        tx,
    ));
    // Meanwhile: the lease, the run's row and the writer. Should one fail (a process took
    // the lease since the check), the calls stop and their answers are dropped.
    let stop_calls = |calls: tokio::task::JoinHandle<()>, e: anyhow::Error| {
        calls_cancel.cancel();
        let _ = env.runtime.block_on(calls);
        e
    };
    // From here on something is written: a signal cancels the run rather than ending the
    // process (`interrupt`).
    super::interrupt::begun();
    if store.is_none() {
        match ctx.open_store(env.db) {
            Ok(opened) => *store = Some(opened),
            Err(e) => return Err(stop_calls(calls, e)),
        }
        crate::phase::phase("store open");
    }
    let Some(store) = store.as_mut() else {
        return Err(stop_calls(calls, anyhow::anyhow!("open the store")));
    };
    let lease = match super::schedule::lease(ctx, store, suite) {
        Ok(lease) => lease,
        Err(e) => return Err(stop_calls(calls, e)),
    };
    crate::phase::phase("lease");
    // Case versions are registered by the writer as their first result is stored.
    if let Err(e) = store.begin_run_deferred(&info, suite, std::process::id(), &host_name()) {
        lease.release();
        return Err(stop_calls(calls, e.into()));
    }
    if resume.is_some() {
        let reports = super::report::reports_dir(env.project);
        if let Err(e) = report::html::run_resumed(&reports, &info.run_id) {
            ctx.printer.warn(&format!(
                "run {}: remove its out-of-date page in {}: {e}; `evalwatch report` may show it as it was before this resume until the run finishes",
                info.run_id,
                reports.join("runs").display()
            ));
        }
    }
    crate::phase::phase("begun");
    let writer = match Writer::spawn(env.db, &info.run_id, BATCH) {
        Ok(writer) => writer,
        Err(e) => {
            let e = stop_calls(calls, e.into());
            // A new run leaves nothing; a resumed one keeps what it stored before.
            if resume.is_none() {
                let _ = store.discard_run(&info.run_id);
            } else {
                let _ = store.set_run_status(&info.run_id, RunStatus::Incomplete);
            }
            lease.release();
            return Err(e);
        }
    };
    crate::phase::phase("writer");
    // How many results the run will have, once the checker is through the suite: its run
    // pages after the first are written as their results come from then on.
    let results_planned = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let consumer = {
        let printer = ctx.printer;
        let bar = bar.clone();
        let secrets = secrets.clone();
        // The run pages are written as the results come, unless the run is resumed (its
        // pages are written from the store, with the results stored before).
        let live = (!env.args.no_reports && resume.is_none()).then(|| {
            LivePages::new(
                &info,
                super::report::live_baseline_reader(env.db, &info),
                &super::report::reports_dir(env.project),
            )
            .with_total(Arc::clone(&results_planned))
        });
        // And the heat map's statuses of the runs before, read once the first calls are out;
        // its own are taken as they are scored (but for a resumed run: those stored before).
        // Should its thread not start, the reports read the heat map from the store.
        let heat = (!env.args.no_reports)
            .then(|| {
                let (db, name) = (env.db.to_path_buf(), suite.name.clone());
                let reports = super::report::reports_dir(env.project);
                let reading = std::thread::Builder::new()
                    .name("evalwatch-heat".to_owned())
                    .spawn(move || {
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        let store = Store::open_for_scan(&db).ok()?;
                        let history = HeatHistory::read(&store, &name).ok();
                        // Meanwhile, rows that runs killed while they went left behind.
                        let _ = super::report::remove_leftovers(&store, &reports);
                        history
                    })
                    .ok()?;
                Some(HeatFeed::new(reading, resume.is_none()))
            })
            .flatten();
        std::thread::Builder::new()
            .name("evalwatch-score".to_owned())
            .spawn(move || {
                let mut writer = writer;
                let consumed = consume(rx, &writer, printer, &bar, acc, live, heat, &secrets);
                // Nothing more comes: the writer commits its last batch while the run's end is
                // worked out.
                writer.close_input();
                consumed.map(|c| (c, writer))
            })
            .expect("start the scoring thread")
    };
    let checking = async {
        let Some(index) = file_index else {
            return Ok(None);
        };
        // The check starts once the first call is out (or soon anyway: a suite may select
        // no case at all).
        tokio::select! {
            () = first_call.notified() => {}
            () = tokio::time::sleep(std::time::Duration::from_millis(50)) => {}
        }
        // A signal before the whole suite is checked stops the wait (reading a large case
        // file can take seconds): the run is kept as far as it went, incomplete; the planned
        // count is what it finished (`run --resume` loads and judges the suite whole).
        let checked = tokio::select! {
            checked = checker(env)?.wait() => checked?,
            () = env.cancel.cancelled() => return Ok(Some((head.as_ref().clone(), None))),
        };
        if !checked.diags.is_empty() {
            env.cancel.cancel();
            return Err(invalid(ctx, &checked.diags));
        }
        let whole = checked
            .suites
            .iter()
            .find(|s| s.source == suite.source)
            .cloned()
            .ok_or_else(|| {
                anyhow::anyhow!("check suite `{}`: not among the suites checked", suite.name)
            })?;
        let tally = checked.files.get(index).cloned().unwrap_or_default();
        let providers = plan::providers(&whole, env.filters)?.len() as u64;
        let repeat = u64::from(plan::repeat(&whole, env.filters)?);
        let planned = tally.selected * repeat * providers;
        bar.set_length(planned);
        results_planned.store(
            usize::try_from(planned).unwrap_or(usize::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
        budget.set_planned(planned);
        // On the runtime's own thread, between polls: a one-row update.
        store.set_run_plan(&info.run_id, &whole.hash, planned)?;
        store.record_run_settings(&info.run_id, &whole.settings)?;
        let engine = judging(
            env,
            &Arc::new(whole.clone()),
            &tally.judges,
            &mut limiters,
            &events,
        )
        .inspect_err(|_| env.cancel.cancel())?;
        let _ = engine_tx.send(Stage::Ready(engine));
        anyhow::Ok(Some((whole, Some(planned))))
    };
    let (checked, calls) = env
        .runtime
        .block_on(async { tokio::join!(checking, calls) });
    if let Err(e) = calls
        && e.is_panic()
    {
        std::panic::resume_unwind(e.into_panic());
    }
    crate::phase::phase("calls done");
    // The last events are in: taken now rather than at the consumer's next look.
    consumer.thread().unpark();
    let joined = consumer
        .join()
        .map_err(|_| anyhow::anyhow!("score results: the scoring thread panicked"))?;
    crate::phase::phase("consumer joined");
    bar.finish_and_clear();
    let wall_secs = started.elapsed().as_secs_f64();
    let (consumed, writer) = match joined {
        Ok(v) => v,
        Err(e) => {
            let _ = store.set_run_status(&info.run_id, RunStatus::Incomplete);
            return Err(e.context(format!("store results of run {}", info.run_id)));
        }
    };
    let run_id = info.run_id.clone();
    let finish_writer = |writer: Writer| {
        let done = writer
            .finish()
            .with_context(|| format!("store results of run {run_id}"));
        crate::phase::phase("writer finished");
        done
    };
    let mut consumed = consumed;
    let finished = usize::try_from(consumed.finished).unwrap_or(usize::MAX);
    let live = consumed.live.take().map(|pages| {
        let rows = pages.finish(finished);
        if let Some(why) = rows.broken() {
            let line = format!(
                "run {}: its pages are written from the store ({why})",
                info.run_id
            );
            crate::phase::phase(&line);
            ctx.printer.detail(&line);
        }
        rows
    });
    // The suite as checked in full (its hash, gates, alerts), and how many jobs it planned.
    let (suite, info) = match checked {
        Err(e) => {
            finish_writer(writer)?;
            // What was asked of a suite with a problem is not kept.
            store
                .discard_run(&info.run_id)
                .with_context(|| format!("remove run {} of a suite with problems", info.run_id))?;
            lease.release();
            // Nor are the pages written as its results came.
            if live.is_some() {
                let reports = super::report::reports_dir(env.project);
                let _ = report::html::run_discarded(&reports, &info.run_id);
            }
            return Err(e);
        }
        Ok(None) => (head.as_ref().clone(), info),
        Ok(Some((head, None))) => {
            // Interrupted before the suite was checked whole.
            // Kept as far as it went (even with no result: the run's row says it was
            // interrupted), as any interrupted run.
            let kept = consumed.finished;
            store.set_run_plan(&info.run_id, &head.hash, kept)?;
            let info = RunInfo {
                suite_hash: head.hash.clone(),
                planned: kept,
                ..info
            };
            (head, info)
        }
        Ok(Some((whole, Some(planned)))) => {
            let info = RunInfo {
                suite_hash: whole.hash.clone(),
                planned,
                ..info
            };
            (whole, info)
        }
    };
    if resume.is_some() {
        // Kept if its first part recorded them (a run begun before they were recorded gets
        // the suite's current ones, which its remaining jobs run with).
        store
            .record_run_settings(&info.run_id, &suite.settings)
            .with_context(|| format!("record the settings of run {}", info.run_id))?;
    }
    if info.planned == 0 && resume.is_none() && !consumed.cancelled {
        finish_writer(writer)?;
        store.discard_run(&info.run_id)?;
        lease.release();
        ctx.printer.warn(&format!(
            "suite `{}`: no case matches the filters; nothing run",
            suite.name
        ));
        return Ok(None);
    }
    let metrics = consumed.acc.finish(Some(wall_secs));
    crate::phase::phase("metrics");
    let errors: u64 = metrics
        .iter()
        .filter(|m| m.tag.is_none())
        .map(|m| m.metrics.errors)
        .sum();
    let results: u64 = metrics
        .iter()
        .filter(|m| m.tag.is_none())
        .map(|m| m.metrics.cases)
        .sum();
    let budget = env.project.error_budget.unwrap_or(DEFAULT_ERROR_BUDGET);
    let status = if consumed.cancelled {
        RunStatus::Incomplete
    } else if results > 0 && errors as f64 / results as f64 > budget {
        RunStatus::Failed
    } else {
        RunStatus::Complete
    };
    let gates: Vec<GateResult> = if status == RunStatus::Complete {
        metrics
            .iter()
            .filter(|m| m.tag.is_none())
            .flat_map(|m| evaluate_gates(&suite.gates, &m.provider, &m.metrics))
            .collect()
    } else {
        Vec::new()
    };
    let finished_at = now_rfc3339();
    let finished_info = RunInfo {
        finished_at: Some(finished_at.clone()),
        status,
        ..info.clone()
    };
    // The run's pages are written from its rows while the store takes its last results and
    // its end: everything above the rows is known now.
    let pages = live.and_then(|live| {
        EarlyPages::start(
            super::report::early_baseline_reader(env.db, &finished_info),
            &super::report::reports_dir(env.project),
            finished_info.clone(),
            metrics.clone(),
            gates.clone(),
            live,
        )
    });
    let stored = writer
        .finish_keeping_checkpointer()
        .with_context(|| format!("store results of run {run_id}"))
        .and_then(|(_, checkpointer)| {
            crate::phase::phase("writer finished");
            store.finish_run(&info.run_id, status, &finished_at, &metrics, &gates)?;
            Ok(checkpointer)
        });
    let checkpointer = match stored {
        Ok(checkpointer) => checkpointer,
        Err(e) => {
            // The pages would show a run the store does not have as they say.
            if let Some(p) = pages {
                p.discard();
            }
            return Err(e);
        }
    };
    lease.release();
    crate::phase::phase("finish_run");
    let alerts = if args.no_alerts || status != RunStatus::Complete {
        super::alerts::AlertOutcome::default()
    } else {
        super::alerts::after_run(
            ctx,
            store,
            env.project,
            &suite,
            &finished_info,
            &metrics,
            args.fail_on,
        )?
    };
    crate::phase::phase("alerts");
    // What the run stored is copied into the database file while the reports are written,
    // so that the store's close has little left to do.
    checkpointer.nudge();
    if status == RunStatus::Failed {
        ctx.printer.warn(&format!(
            "run {}: {errors} of {results} results are errors, over the error budget of {:.0}%; the run is marked failed",
            info.run_id,
            budget * 100.0
        ));
    }
    if status == RunStatus::Incomplete {
        ctx.printer.warn(&format!(
            "run {} interrupted: {} of {} results kept, marked incomplete",
            info.run_id, consumed.finished, info.planned
        ));
    }
    Ok(Some(Done {
        info: finished_info,
        suite: Suite {
            cases: Vec::new(),
            ..suite
        },
        pages,
        heat: consumed.heat.take(),
        alerts: alerts.alerts,
        alert_fail: alerts.fail,
        metrics,
        gates,
        wall_secs,
        failures: consumed.failures,
        more_failures: consumed.more_failures,
        checkpointer,
    }))
}

/// The providers of `suite` with the limits the executor enforces.
fn build_slots(
    env: &RunEnv<'_>,
    suite: &Suite,
    limiters: &mut std::collections::HashMap<String, Arc<exec::Limiter>>,
) -> anyhow::Result<Vec<Slot>> {
    let client = env.client.get()?;
    let mut slots = Vec::with_capacity(suite.providers.len());
    for spec in &suite.providers {
        // evalwatch.yaml's `max_output_bytes` for a provider without its own.
        let with_cap;
        let spec = if spec.max_output_bytes.is_none() && env.project.max_output_bytes.is_some() {
            with_cap = ProviderSpec {
                max_output_bytes: env.project.max_output_bytes,
                ..spec.clone()
            };
            &with_cap
        } else {
            spec
        };
        let provider =
            provider::build(spec, client).map_err(|e| Failure::invalid(e.to_string()))?;
        let limiter = Arc::clone(
            limiters
                .entry(spec.id.clone())
                .or_insert_with(|| Arc::new(exec::Limiter::new(spec.rate_limit))),
        );
        slots.push(Slot {
            provider,
            concurrency: spec.concurrency,
            timeout: spec.timeout,
            retries: spec.retries,
            pricing: spec.pricing,
            rate_limit: spec.rate_limit,
            limiter: Some(limiter),
            breaker_after: env.project.circuit_breaker.unwrap_or(exec::BREAKER_AFTER),
            max_output_bytes: spec.output_cap(),
            budget: None,
        });
    }
    Ok(slots)
}

/// The HTTP client, built on its own thread (under a millisecond, off the main thread) and
/// waited for where it is first needed.
struct LazyClient {
    thread: std::sync::Mutex<
        Option<std::thread::JoinHandle<Result<reqwest::Client, provider::ProviderError>>>,
    >,
    client: std::sync::OnceLock<reqwest::Client>,
}

impl LazyClient {
    fn start() -> Self {
        Self {
            // Without a thread, it is built where first needed.
            thread: std::sync::Mutex::new(
                std::thread::Builder::new()
                    .name("evalwatch-http".to_owned())
                    .spawn(provider::http_client)
                    .ok(),
            ),
            client: std::sync::OnceLock::new(),
        }
    }

    fn get(&self) -> anyhow::Result<&reqwest::Client> {
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        // Held while the thread is joined: a second caller waits for its client.
        let mut thread = self
            .thread
            .lock()
            .map_err(|_| anyhow::anyhow!("build the HTTP client: a thread panicked"))?;
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        let client = match thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| anyhow::anyhow!("build the HTTP client: the thread panicked"))??,
            // Not started, or it failed before: built here (again).
            None => provider::http_client()?,
        };
        Ok(self.client.get_or_init(|| client))
    }
}

fn checker<'a>(env: &RunEnv<'a>) -> anyhow::Result<&'a Checker> {
    env.checker
        .ok_or_else(|| anyhow::anyhow!("run a streamed suite: no checker"))
}

/// The judging stage of a run, as the executor's hook sees it.
#[derive(Clone)]
enum Stage {
    /// Not set up yet (the check has not said which judges the suite calls).
    Pending,
    /// Set up: the engine, or None when no assertion of the suite calls a judge.
    Ready(Option<Arc<judge::Engine>>),
}

/// The hook the executor runs after each call: judging, for cases whose assertions may call
/// a judge, once the judging stage is set up.
fn after_hook(engine: watch::Receiver<Stage>) -> exec::AfterFn {
    Arc::new(move |job, request, completion| {
        let Some(case) = job.case.0.clone() else {
            return Box::pin(std::future::ready(crate::model::Judged::default()));
        };
        if !judge::Engine::wants(&case) {
            return Box::pin(std::future::ready(crate::model::Judged::default()));
        }
        let mut engine = engine.clone();
        let (job, request, output) = (job.clone(), request.clone(), completion.output.clone());
        Box::pin(async move {
            let stage = engine
                .wait_for(|s| matches!(s, Stage::Ready(_)))
                .await
                .map(|s| s.clone());
            match stage {
                Ok(Stage::Ready(Some(engine))) => {
                    engine.judge(&case, &job, &request, &output).await
                }
                _ => crate::model::Judged::default(),
            }
        })
    })
}

/// The jobs of `plan` a resumed run has no result for. They keep their plan position unless
/// it is taken (the suite changed since), in which case they go after the highest one used.
fn missing_jobs(plan: Vec<crate::model::Job>, resume: &Resume) -> Vec<crate::model::Job> {
    let mut next = resume.seqs.iter().max().map_or(0, |m| m + 1);
    plan.into_iter()
        .filter(|j| {
            !resume
                .done
                .contains(&(j.case_id.clone(), j.provider_id.clone(), j.sample))
        })
        .map(|mut j| {
            if resume.seqs.contains(&j.seq) {
                j.seq = next;
                next += 1;
            }
            j
        })
        .collect()
}

/// What the consumer thread hands back.
struct Consumed {
    acc: RunAccumulator,
    live: Option<LivePages>,
    heat: Option<HeatFeed>,
    cancelled: bool,
    finished: u64,
    failures: Vec<String>,
    more_failures: usize,
}

const SHOWN_FAILURES: usize = 10;

/// How often the consumer looks for events while they come, and for how many looks it keeps
/// looking when none came.
const CONSUME_POLL: std::time::Duration = std::time::Duration::from_millis(2);
const CONSUME_IDLE_POLLS: u32 = 25;

/// The single consumer of executor events: scores, accumulates metrics, feeds the writer,
/// drives the progress bar.
// Each argument is a distinct piece the scoring thread owns or borrows; a struct of them
// would only be built to be taken apart here.
#[allow(clippy::too_many_arguments)]
fn consume(
    mut rx: mpsc::Receiver<Event>,
    writer: &Writer,
    printer: crate::output::Printer,
    bar: &indicatif::ProgressBar,
    acc: RunAccumulator,
    live: Option<LivePages>,
    heat: Option<HeatFeed>,
    secrets: &Secrets,
) -> anyhow::Result<Consumed> {
    let mut out = Consumed {
        acc,
        live,
        heat,
        cancelled: false,
        finished: 0,
        failures: Vec::new(),
        more_failures: 0,
    };
    // Assertions are prepared as their cases come (the checker reported any that cannot be).
    let mut scorer = Scorer::empty();
    // Judges and rubrics already recorded for this run (a handful: one per assertion type).
    let mut signatures: std::collections::HashSet<JudgeSignature> =
        std::collections::HashSet::new();
    // Events are taken every few milliseconds while they come (a few thousand a second at
    // speed): waking this thread for each one takes the CPU the model calls need. Once none
    // came for a while, it sleeps until the next.
    let mut idle = 0u32;
    loop {
        let event = match rx.try_recv() {
            Ok(event) => event,
            Err(mpsc::error::TryRecvError::Disconnected) => break,
            Err(mpsc::error::TryRecvError::Empty) if idle < CONSUME_IDLE_POLLS => {
                idle += 1;
                // `run` unparks it once the calls are done.
                std::thread::park_timeout(CONSUME_POLL);
                continue;
            }
            Err(mpsc::error::TryRecvError::Empty) => match rx.blocking_recv() {
                Some(event) => event,
                None => break,
            },
        };
        idle = 0;
        match event {
            Event::AttemptFailed {
                seq: _,
                provider_id,
                attempt,
                error,
                retry_in,
            } => {
                let next = retry_in.map_or_else(
                    || "giving up".to_string(),
                    |d| format!("retrying in {d:.1?}"),
                );
                printer.detail(&secrets.redact(&format!(
                    "[{provider_id}] attempt {attempt} failed ({}): {error}; {next}",
                    error.kind.as_str()
                )));
            }
            Event::JobFinished(mut finished) => {
                let judged = finished.judged.take().unwrap_or_default();
                if let Some(case) = finished.job.case.get() {
                    let _ = scorer.prepare_case(case);
                    if let Some(p) = case.repeat_policy {
                        out.acc.add_policy(&case.id, p);
                    }
                }
                // The case gives the run page its expected answer.
                let case = out.live.as_ref().map(|_| finished.job.case.clone());
                let mut record = record(&scorer, *finished, &judged.outcomes);
                // The one point where outputs and errors enter the store (and the pages).
                super::secrets::redact_record(secrets, &mut record);
                if let Some(live) = out.live.as_mut() {
                    let case = case.as_ref().and_then(|c| c.get());
                    let expected = case.and_then(|c| c.expected.as_deref());
                    live.add(
                        &record,
                        expected,
                        case.map_or(&[], |c| c.context.as_slice()),
                    );
                }
                if let Some(heat) = out.heat.as_mut() {
                    let job = &record.job;
                    heat.add(&job.case_id, &job.provider_id, job.sample, record.status);
                }
                let new: Vec<JudgeSignature> = record
                    .assertions
                    .iter()
                    .filter_map(signature_of)
                    .filter(|s| signatures.insert(s.clone()))
                    .collect();
                writer.send_judge(judged.cache, new)?;
                out.acc.add(&record);
                out.finished += 1;
                // Listed once, after the run (all of them with -v, read back from the store).
                if record.status != CaseStatus::Passed {
                    if out.failures.len() < SHOWN_FAILURES {
                        out.failures.push(terminal::failure_line(&record));
                    } else {
                        out.more_failures += 1;
                    }
                }
                bar.inc(1);
                writer.send(record)?;
            }
            Event::CircuitOpened {
                provider_id: _,
                reason,
            } => printer.warn(&format!(
                "{reason}; its remaining cases are stored as `circuit_open` errors"
            )),
            Event::BudgetSpent { reason } => printer.warn(&format!(
                "{reason}; the remaining cases are stored as `circuit_open` errors"
            )),
            Event::RunFinished { cancelled } => {
                out.cancelled = cancelled;
                break;
            }
        }
    }
    Ok(out)
}

/// The secret values of a run of `suite` (see [`super::secrets`]).
fn run_secrets(project: &ProjectConfig, suite: &Suite) -> Secrets {
    let mut set = super::secrets::SecretSet::new(crate::provider::common::process_env());
    set.providers(project.providers.iter().chain(&suite.providers));
    for sink in &project.sinks {
        if let Some(var) = sink.settings.get("url_env").and_then(|v| v.as_str()) {
            set.named(var);
        }
    }
    if let Some(config) = &project.source {
        set.expanded_in_file(config);
    }
    set.expanded_in_file(&suite.source);
    set.secrets().clone()
}

/// Score a finished job into the record the store keeps.
fn record(scorer: &Scorer, mut f: Finished, judged: &[(usize, AssertionOutcome)]) -> ResultRecord {
    // The record does not keep the case: it is let go once its jobs are stored.
    let case = std::mem::take(&mut f.job.case);
    let prompt = f
        .request
        .as_ref()
        .map(crate::model::Request::prompt_text)
        .unwrap_or_default();
    let mut rec = ResultRecord {
        case_hash: case.get().map(|c| c.hash.clone()).unwrap_or_default(),
        tags: case.get().map(|c| c.tags.clone()).unwrap_or_default(),
        prompt,
        attempts: f.attempts,
        ..ResultRecord::new(f.job, CaseStatus::Error)
    };

    match f.result {
        Ok(c) => {
            if let Some(case) = case.get() {
                let score = scorer.score_with(
                    rec.job.case_index,
                    case,
                    &ScoreInput {
                        output: &c.output,
                        prompt: &rec.prompt,
                        latency_ms: Some(c.latency_ms),
                        cost_usd: c.cost_usd,
                    },
                    judged,
                );
                rec.status = score.status;
                rec.score = score.score;
                rec.assertions = score.assertions;
                rec.label = score.label;
            }
            rec.output = Some(c.output);
            rec.latency_ms = Some(c.latency_ms);
            rec.tokens_in = c.tokens_in;
            rec.tokens_out = c.tokens_out;
            rec.cost_usd = c.cost_usd;
            rec.finish_reason = c.finish_reason;
            rec.output_bytes = c.output_bytes;
            rec.truncated = c.truncated;
        }
        Err(e) => {
            rec.error_kind = Some(e.kind);
            rec.error = Some(e.message);
            if e.kind == ErrorKind::Cancelled {
                rec.status = CaseStatus::Error;
            }
        }
    }
    rec
}

/// The judge and rubric of a judged assertion outcome (`details.judge`), if it has one.
fn signature_of(o: &AssertionOutcome) -> Option<JudgeSignature> {
    let j = o.details.get("judge")?;
    let text = |k: &str| {
        j.get(k)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    Some(JudgeSignature {
        assertion: o
            .type_name
            .strip_prefix("not-")
            .unwrap_or(&o.type_name)
            .to_owned(),
        provider: text("provider")?,
        model: text("model")?,
        rubric_version: text("rubric_version")?,
        rubric_hash: text("rubric_hash")?,
    })
}

/// The embeddings endpoint of an `openai`-type provider, for `semantic`.
struct OpenAiEmbedder(provider::openai::OpenAiProvider);

#[async_trait::async_trait]
impl judge::Embedder for OpenAiEmbedder {
    async fn embed(&self, inputs: &[String]) -> Result<Vec<Vec<f64>>, crate::model::CallError> {
        self.0.embed(inputs).await.map(|e| e.vectors)
    }
}

/// The judging stage of a suite's run, when its assertions may call judges (`ids`): the
/// judge providers (temperature 0 unless their `params` set one; rate limits shared with
/// the same provider under test), the judge cache, and the hook the executor runs after
/// each call.
fn judging(
    env: &RunEnv<'_>,
    suite: &Arc<Suite>,
    ids: &[String],
    limiters: &mut std::collections::HashMap<String, Arc<exec::Limiter>>,
    events: &mpsc::Sender<Event>,
) -> anyhow::Result<Option<Arc<judge::Engine>>> {
    if ids.is_empty() {
        return Ok(None);
    }
    let (project, client, db, cancel) = (env.project, env.client.get()?, env.db, env.cancel);
    let mut judges = Vec::new();
    for id in ids {
        let Some(spec) = suite
            .providers
            .iter()
            .chain(&project.providers)
            .find(|p| &p.id == id)
        else {
            // The loader reports this at the assertion; here the assertion stays unscorable.
            continue;
        };
        let mut spec = spec.clone();
        spec.params
            .entry("temperature")
            .or_insert(serde_json::json!(0));
        let built = provider::build(&spec, client).map_err(|e| Failure::invalid(e.to_string()))?;
        let embedder: Option<Arc<dyn judge::Embedder>> =
            if spec.kind == crate::model::ProviderKind::Openai {
                Some(Arc::new(OpenAiEmbedder(
                    provider::openai::OpenAiProvider::new(&spec, client.clone())
                        .map_err(|e| Failure::invalid(e.to_string()))?,
                )))
            } else {
                None
            };
        let limiter = Arc::clone(
            limiters
                .entry(spec.id.clone())
                .or_insert_with(|| Arc::new(exec::Limiter::new(spec.rate_limit))),
        );
        judges.push(judge::JudgeProvider {
            model: spec
                .model
                .clone()
                .unwrap_or_else(|| spec.kind.as_str().to_owned()),
            id: spec.id.clone(),
            provider: built,
            embedder,
            limiter,
            concurrency: Arc::new(tokio::sync::Semaphore::new(spec.concurrency.max(1))),
            timeout: spec.timeout,
            retries: spec.retries,
            pricing: spec.pricing,
        });
    }
    let cache = crate::store::JudgeCache::open(db)
        .with_context(|| format!("open the judge cache in {}", db.display()))?;
    let lookup: judge::CacheLookup = Arc::new(move |key| cache.get(key).ok().flatten());
    // Failed judge attempts show like the provider's ("[judge ID] attempt 1 failed ...");
    // a full channel drops the line rather than wait.
    let events = events.clone();
    let note: judge::RetryNote = Arc::new(move |seq, id, attempt, error, retry_in| {
        let _ = events.try_send(Event::AttemptFailed {
            seq,
            provider_id: format!("judge {id}"),
            attempt,
            error: error.clone(),
            retry_in,
        });
    });
    let engine = Arc::new(
        judge::Engine::new(judges, project.judge.clone(), Some(lookup), cancel.clone())
            .with_retry_note(note),
    );
    Ok(Some(engine))
}

/// Print or write the chosen format for every run.
fn emit(ctx: &Ctx, store: &Store, args: &RunArgs, runs: &[Done]) -> anyhow::Result<()> {
    let text = || -> anyhow::Result<()> {
        let verbosity = ctx.printer.verbosity;
        for d in runs {
            let view = view_of(d);
            // -q: one verdict line per run; problems (warnings, errors) still go to stderr.
            if verbosity == crate::output::Verbosity::Quiet {
                let mut line = terminal::verdict_line(&view);
                for a in &d.alerts {
                    line = format!(
                        "{line}; alert {} ({}, {})",
                        a["rule"].as_str().unwrap_or("?"),
                        a["severity"].as_str().unwrap_or("?"),
                        if a["new"].as_bool() == Some(true) {
                            "new"
                        } else {
                            "still open"
                        }
                    );
                }
                ctx.printer.result(&line);
                continue;
            }
            ctx.printer.result(
                terminal::summary(&view, verbosity == crate::output::Verbosity::Verbose).trim_end(),
            );
            if d.failures.is_empty() {
                continue;
            }
            ctx.printer.info(&format!(
                "not passed ({}):",
                d.failures.len() + d.more_failures
            ));
            if verbosity == crate::output::Verbosity::Verbose && d.more_failures > 0 {
                // -v lists every one, read back from the store (never held in memory).
                store.for_each_result(&d.info.run_id, |rec| {
                    if rec.status != CaseStatus::Passed {
                        ctx.printer.info(&terminal::failure_line(&rec));
                    }
                    Ok(())
                })?;
                continue;
            }
            for f in &d.failures {
                ctx.printer.info(f);
            }
            if d.more_failures > 0 {
                ctx.printer.info(&format!(
                    "  ... and {} more: `evalwatch show {}` (or -v) lists them",
                    d.more_failures, d.info.run_id
                ));
            }
        }
        Ok(())
    };
    if args.format == RunFormat::Text && args.out.is_none() {
        return text();
    }
    let mut sink: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?,
        )),
        None => Box::new(crate::output::stdout_writer()),
    };
    match args.format {
        RunFormat::Text => {
            for d in runs {
                writeln!(sink, "{}", terminal::summary(&view_of(d), true).trim_end())?;
                for f in &d.failures {
                    writeln!(sink, "{f}")?;
                }
            }
        }
        RunFormat::Json => {
            for d in runs {
                let view = view_of(d);
                let mut w = JsonRunWriter::begin(&mut sink, &header(&view, &d.alerts))?;
                store.for_each_result(&d.info.run_id, |rec| {
                    w.case(&rec)
                        .map_err(|e| crate::store::StoreError::Other(format!("write output: {e}")))
                })?;
                w.end()?;
            }
        }
        RunFormat::Junit => {
            let mut w = JunitWriter::begin(&mut sink)?;
            for d in runs {
                w.suite(&view_of(d))?;
                store.for_each_result(&d.info.run_id, |rec| {
                    w.case(&d.info.suite, &rec)
                        .map_err(|e| crate::store::StoreError::Other(format!("write output: {e}")))
                })?;
                w.end_suite()?;
            }
            w.end()?;
        }
    }
    sink.flush()?;
    drop(sink);
    if args.out.is_some() {
        text()?;
    }
    Ok(())
}

fn view_of(d: &Done) -> RunView<'_> {
    report::RunView {
        info: &d.info,
        metrics: &d.metrics,
        gates: &d.gates,
        wall_secs: Some(d.wall_secs),
    }
}
