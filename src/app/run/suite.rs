//! One suite's run, as its list of phases: take its head (fed or resumed), prepare what the
//! calls need, start the calls, begin the run in the store (lease, row, writer) while they
//! go, start the consumer, check the suite whole beside the calls, take what the consumer
//! scored, and finish. [`SuiteRun`] holds what the phases share; each phase is one method.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use tokio::sync::{Notify, mpsc, watch};

use crate::exec::{self, Event};
use crate::judge;
use crate::metrics::RunAccumulator;
use crate::model::{RunInfo, RunStatus, Suite};
use crate::plan;
use crate::provider::common::Secrets;
use crate::store::{Outage, Store, Writer};
use crate::suite::Renderer;

use super::super::{Failure, host_name};
use super::calls::{Calls, Launch, Limiters, build_slots, render_fn};
use super::check::{FileTally, invalid};
use super::consume::{Consumed, consume, run_secrets};
use super::finish::Done;
use super::judging::{Stage, after_hook, judging};
use super::pages::Pages;
use super::resume::{self, Resume};
use super::{DEFAULT_ERROR_BUDGET, Head, RunEnv, Source};
use crate::app::lease::{self, Lease};

/// Results per store transaction.
const BATCH: usize = 1000;
/// Events waiting for the consumer.
const EVENTS: usize = 1024;
/// The check starts once the first call is out, or after this anyway (a suite may select
/// no case at all): on two cores it would hold the first call back (docs/performance.md).
const CHECK_DELAY: std::time::Duration = std::time::Duration::from_millis(50);

/// Run one suite. None when there was nothing to run (no case matches the filters).
/// `store` is None when it does not exist yet: it is made once the first calls are out.
pub(super) fn run_suite(
    env: &RunEnv<'_>,
    store: &mut Option<Store>,
    source: Source,
) -> anyhow::Result<Option<Done>> {
    let head = Head::of(env, source)?;
    crate::phase::phase("head");
    let (mut run, launch, scoring) = SuiteRun::prepare(env, store.as_ref(), head)?;
    let calls = Calls::start(env, launch);
    let (store, lease, writer, calls) = run.begin(store, calls)?;
    let consumer = run.spawn_consumer(scoring, writer);
    let checked = run.check_while_calling(store, calls);
    let scored = run.join_consumer(store, consumer)?;
    run.finish(store, lease, checked, scored)
}

/// What the phases of one suite's run share.
pub(super) struct SuiteRun<'e, 'a> {
    pub(super) env: &'e RunEnv<'a>,
    /// The suite as its run began (a streamed one: its head, without its cases).
    pub(super) head: Arc<Suite>,
    file_index: Option<usize>,
    pub(super) resume: Option<Resume>,
    /// The run's row as begun.
    pub(super) info: RunInfo,
    limiters: Limiters,
    budget: Arc<exec::ErrorBudget>,
    bar: indicatif::ProgressBar,
    started: Instant,
    /// The judging stage, as the executor's hook waits for it.
    engine: watch::Sender<Stage>,
    /// For the judges' retry notes, until the check set them up.
    events: Option<mpsc::Sender<Event>>,
    /// Told when the first job is rendered, right before its call.
    first_call: Arc<Notify>,
    /// How many results the run will have, once the check is through the suite.
    results_planned: Arc<AtomicUsize>,
}

/// What the consumer is given: the events, the metrics so far, the secrets to redact.
pub(super) struct Scoring {
    rx: mpsc::Receiver<Event>,
    acc: RunAccumulator,
    secrets: Secrets,
}

/// What the check made of the suite.
pub(super) enum Whole {
    /// A resumed run's suite was loaded whole: its head is the suite.
    Loaded,
    /// Interrupted before the suite was checked whole: the head.
    Interrupted(Suite),
    /// Checked: the whole suite and how many results the run plans.
    Checked(Suite, u64),
}

/// What the consumer hands back once the calls are done.
pub(super) struct Scored {
    pub(super) consumed: Consumed,
    pub(super) writer: Writer,
    pub(super) wall_secs: f64,
}

impl<'e, 'a> SuiteRun<'e, 'a> {
    /// Everything the calls need, built before the first one: renderer, metrics, the run's
    /// row, providers with their limits and the run's error budget, the progress bar.
    fn prepare(
        env: &'e RunEnv<'a>,
        store: Option<&Store>,
        head: Head,
    ) -> anyhow::Result<(Self, Launch, Scoring)> {
        let Head {
            suite,
            feeds,
            resume,
            file_index,
        } = head;
        let secrets = run_secrets(env.project, &suite);
        let mut limiters = Limiters::new();
        // A resumed run must not be touched by a provider that cannot be built: built first.
        // A new run's providers are built once it is begun, while the HTTP client is built.
        let built = match &resume {
            Some(_) => Some(build_slots(env, &suite, &mut limiters)?),
            None => None,
        };
        let (tx, rx) = mpsc::channel::<Event>(EVENTS);
        let renderer = Arc::new(
            Renderer::new(&suite)
                .map_err(|d| Failure::invalid(super::super::render_diagnostics(env.ctx, &d)))?,
        );
        let mut acc = accumulator(env, &suite, resume.as_ref())?;
        let info = match &resume {
            None => new_info(&suite, &env.settings.filters),
            Some(r) => resume::info(env.ctx, store, &suite, r, &mut acc)?,
        };
        // Held until the run is stored: the same suite never runs twice at once on one
        // store. Checked here with a read; taken once the first calls are out. A store
        // that does not exist yet holds no lease.
        if let Some(store) = store {
            lease::check_lease(store, &suite)?;
        }
        let mut slots = match built {
            Some(slots) => slots,
            None => build_slots(env, &suite, &mut limiters)?,
        };
        // One budget for the run: once it cannot be met, no provider is called again. A
        // resumed run's stored errors are not counted (it stops no earlier than it should).
        let budget = Arc::new(exec::ErrorBudget::new(
            env.project.error_budget.unwrap_or(DEFAULT_ERROR_BUDGET),
            info.planned,
            0,
        ));
        for slot in &mut slots {
            slot.budget = Some(Arc::clone(&budget));
        }
        crate::phase::phase("providers");
        let stored = resume.as_ref().map_or(0, |r| r.done.len() as u64);
        let bar = (env.ctx.printer).progress(info.planned.saturating_sub(stored), &suite.name);
        let first_call = Arc::new(Notify::new());
        let (engine, engine_rx) = watch::channel(Stage::Pending);
        let launch = Launch {
            feeds,
            slots,
            render: render_fn(renderer, Arc::clone(&first_call)),
            after: after_hook(engine_rx),
            events: tx.clone(),
        };
        let mut run = Self {
            env,
            head: suite,
            file_index,
            resume,
            info,
            limiters,
            budget,
            bar,
            started: Instant::now(),
            engine,
            events: Some(tx),
            first_call,
            results_planned: Arc::new(AtomicUsize::new(0)),
        };
        run.judge_resumed()?;
        Ok((run, launch, Scoring { rx, acc, secrets }))
    }

    /// The judging stage of a resumed run: set up at once (its suite is loaded whole). A
    /// streamed one's waits for the check (a case that needs it waits, a few milliseconds).
    fn judge_resumed(&mut self) -> anyhow::Result<()> {
        let (Some(_), Some(events)) = (&self.resume, &self.events) else {
            return Ok(());
        };
        let ids = judge::Engine::judge_ids(&self.head, self.env.project.judge.as_deref());
        let engine = judging(self.env, &self.head, &ids, &mut self.limiters, events)?;
        let _ = self.engine.send(Stage::Ready(engine));
        Ok(())
    }

    /// While the first calls go: the store (made if need be), the lease, the run's row and
    /// the writer. Should one fail (a process took the lease since the check), the calls
    /// stop and their answers are dropped.
    fn begin<'s>(
        &self,
        store: &'s mut Option<Store>,
        calls: Calls,
    ) -> anyhow::Result<(&'s mut Store, Lease, Writer, Calls)> {
        // From here on something is written: a signal cancels the run rather than ending
        // the process (`interrupt`).
        super::super::interrupt::begun();
        let (store, lease) = match self.lease(store) {
            Ok(begun) => begun,
            Err(e) => return Err(calls.stop(self.env, e)),
        };
        let printer = self.env.ctx.printer;
        let spawned = store_wait().and_then(|wait| {
            let outage = Outage {
                wait,
                notice: Box::new(move |text| printer.warn(text)),
            };
            Ok(Writer::spawn_with(
                self.env.db,
                &self.info.run_id,
                BATCH,
                outage,
            )?)
        });
        let writer = match spawned {
            Ok(writer) => writer,
            Err(e) => {
                let e = calls.stop(self.env, e);
                // A new run leaves nothing; a resumed one keeps what it stored before.
                if self.resume.is_none() {
                    let _ = store.discard_run(&self.info.run_id);
                } else {
                    let _ = store.set_run_status(&self.info.run_id, RunStatus::Incomplete);
                }
                lease.release();
                return Err(e);
            }
        };
        crate::phase::phase("writer");
        Ok((store, lease, writer, calls))
    }

    /// The store (made now if it does not exist), the suite's lease, and the run's row.
    fn lease<'s>(&self, store: &'s mut Option<Store>) -> anyhow::Result<(&'s mut Store, Lease)> {
        let (ctx, info) = (self.env.ctx, &self.info);
        if store.is_none() {
            *store = Some(ctx.open_store(self.env.db)?);
            crate::phase::phase("store open");
        }
        let store = store
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("open the store"))?;
        let lease = lease::lease(ctx, store, &self.head)?;
        crate::phase::phase("lease");
        // Case versions are registered by the writer as their first result is stored.
        if let Err(e) = store.begin_run_deferred(info, &self.head, std::process::id(), &host_name())
        {
            lease.release();
            return Err(e.into());
        }
        if let Err(e) = store.set_run_labels(&info.run_id, &self.env.settings.labels) {
            let _ = store.discard_run(&info.run_id);
            lease.release();
            return Err(e.into());
        }
        if self.resume.is_some() {
            super::pages::remove_resumed(self.env, &info.run_id);
        }
        crate::phase::phase("begun");
        Ok((store, lease))
    }

    /// The consumer, on a thread of its own: scores and stores each result as it comes.
    fn spawn_consumer(
        &self,
        scoring: Scoring,
        writer: Writer,
    ) -> std::thread::JoinHandle<anyhow::Result<(Consumed, Writer)>> {
        let pages = Pages::start(
            self.env,
            &self.info,
            self.resume.is_some(),
            &self.results_planned,
        );
        let (printer, bar) = (self.env.ctx.printer, self.bar.clone());
        std::thread::Builder::new()
            .name("evalwatch-score".to_owned())
            .spawn(move || {
                let Scoring { rx, acc, secrets } = scoring;
                let mut writer = writer;
                let consumed = consume(rx, &writer, printer, &bar, (acc, pages), &secrets);
                // Nothing more comes: the writer commits its last batch while the run's end
                // is worked out.
                writer.close_input();
                consumed.map(|c| (c, writer))
            })
            .expect("start the scoring thread")
    }

    /// Check the suite whole while the calls go, until both are done.
    fn check_while_calling(&mut self, store: &mut Store, calls: Calls) -> anyhow::Result<Whole> {
        let runtime = self.env.runtime;
        let events = self.events.take();
        let (checked, joined) =
            runtime.block_on(async { tokio::join!(self.check(store, events), calls.task) });
        if let Err(e) = joined
            && e.is_panic()
        {
            std::panic::resume_unwind(e.into_panic());
        }
        crate::phase::phase("calls done");
        checked
    }

    /// The check of a streamed suite: once through, the run knows its planned count, its
    /// hash and settings, and its judging stage is set up.
    async fn check(
        &mut self,
        store: &mut Store,
        events: Option<mpsc::Sender<Event>>,
    ) -> anyhow::Result<Whole> {
        let (Some(index), Some(events)) = (self.file_index, events) else {
            return Ok(Whole::Loaded);
        };
        let env = self.env;
        tokio::select! {
            () = self.first_call.notified() => {}
            () = tokio::time::sleep(CHECK_DELAY) => {}
        }
        // A signal before the whole suite is checked stops the wait (reading a large case
        // file can take seconds): the run is kept as far as it went, incomplete; the planned
        // count is what it finished (`run --resume` loads and judges the suite whole).
        let checked = tokio::select! {
            checked = env.checker()?.wait() => checked?,
            () = env.cancel.cancelled() => return Ok(Whole::Interrupted(self.head.as_ref().clone())),
        };
        if !checked.diags.is_empty() {
            env.cancel.cancel();
            return Err(invalid(env.ctx, &checked.diags));
        }
        let whole = checked
            .suites
            .iter()
            .find(|s| s.source == self.head.source)
            .cloned()
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "check suite `{}`: not among the suites checked",
                    self.head.name
                )
            })?;
        let tally = checked.files.get(index).cloned().unwrap_or_default();
        let planned = self.plan(&whole, &tally)?;
        // On the runtime's own thread, between polls: a one-row update.
        store.set_run_plan(&self.info.run_id, &whole.hash, planned)?;
        store.record_run_settings(&self.info.run_id, &whole.settings)?;
        let engine = judging(env, &whole, &tally.judges, &mut self.limiters, &events)
            .inspect_err(|_| env.cancel.cancel())?;
        let _ = self.engine.send(Stage::Ready(engine));
        Ok(Whole::Checked(whole, planned))
    }

    /// The results the checked suite plans, told to the bar, the pages and the budget.
    fn plan(&self, whole: &Suite, tally: &FileTally) -> anyhow::Result<u64> {
        let filters = &self.env.settings.filters;
        let providers = plan::providers(whole, filters)?.len() as u64;
        let repeat = u64::from(plan::repeat(whole, filters)?);
        let planned = tally.selected * repeat * providers;
        self.bar.set_length(planned);
        self.results_planned.store(
            usize::try_from(planned).unwrap_or(usize::MAX),
            Ordering::Relaxed,
        );
        self.budget.set_planned(planned);
        Ok(planned)
    }

    /// The consumer's work, once the calls are done (a run it could not store is marked
    /// incomplete).
    fn join_consumer(
        &self,
        store: &mut Store,
        consumer: std::thread::JoinHandle<anyhow::Result<(Consumed, Writer)>>,
    ) -> anyhow::Result<Scored> {
        // The last events are in: taken now rather than at the consumer's next look.
        consumer.thread().unpark();
        let joined = consumer
            .join()
            .map_err(|_| anyhow::anyhow!("score results: the scoring thread panicked"))?;
        crate::phase::phase("consumer joined");
        self.bar.finish_and_clear();
        let wall_secs = self.started.elapsed().as_secs_f64();
        match joined {
            Ok((consumed, writer)) => Ok(Scored {
                consumed,
                writer,
                wall_secs,
            }),
            Err(e) => {
                let _ = store.set_run_status(&self.info.run_id, RunStatus::Incomplete);
                Err(e.context(format!("store results of run {}", self.info.run_id)))
            }
        }
    }
}

/// The metrics of a suite's run: a streamed suite's cases tell their own policies as they
/// come; a resumed one has them. A case's verdict is settled (and its counts let go) with
/// its last sample.
fn accumulator(
    env: &RunEnv<'_>,
    suite: &Suite,
    resume: Option<&Resume>,
) -> anyhow::Result<RunAccumulator> {
    let mut acc = match resume {
        Some(_) => RunAccumulator::for_suite(suite),
        None => RunAccumulator::with_policies(suite.repeat_policy, []),
    };
    let stored = resume.map_or(0, resume::stored_samples);
    acc.expect_samples(plan::repeat(suite, &env.settings.filters)?.max(stored));
    Ok(acc)
}

/// How long the writer waits for a PostgreSQL store that went away: `EVALWATCH_STORE_WAIT`
/// seconds (docs/store.md), else a minute.
fn store_wait() -> anyhow::Result<std::time::Duration> {
    crate::app::env_seconds("EVALWATCH_STORE_WAIT", crate::store::OUTAGE_WAIT, 0)
}

/// A new run's row: its hash and planned count are known once the check is through.
fn new_info(suite: &Suite, filters: &crate::plan::Filters) -> RunInfo {
    RunInfo {
        run_id: new_run_id(),
        suite: suite.name.clone(),
        suite_hash: String::new(),
        started_at: super::finish::now_rfc3339(),
        finished_at: None,
        status: RunStatus::Running,
        providers: suite.providers.iter().map(|p| p.id.clone()).collect(),
        planned: 0,
        filter: filters.run_filter(),
    }
}

/// A new run id: UTC time plus random hex, sortable and easy to type a prefix of.
fn new_run_id() -> String {
    format!(
        "{}-{:04x}",
        chrono::Utc::now().format("%Y%m%d-%H%M%S"),
        rand::random::<u16>()
    )
}
