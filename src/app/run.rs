//! `evalwatch run`: load, plan, execute, score, store, gate, report.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Ctx, Failure, exit, host_name, suite_files};
use crate::cli::{RunArgs, RunFormat};
use crate::exec::{self, Event, Finished, Slot};
use crate::metrics::{RunAccumulator, evaluate_gates};
use crate::model::{
    AssertionOutcome, CaseStatus, ErrorKind, GateResult, JudgeSignature, ProjectConfig,
    ProviderMetrics, ResultRecord, RunInfo, RunStatus, Suite,
};
use crate::plan::{self, Filters};
use crate::report::junit::JunitWriter;
use crate::report::machine::{JsonRunWriter, header};
use crate::report::{RunView, terminal};
use crate::score::{ScoreInput, Scorer};

use crate::store::{Store, Writer};
use crate::suite::{self, Renderer};
use crate::{judge, provider, report};

/// Default share of errored results above which a run cannot count as complete (exit 3).
pub const DEFAULT_ERROR_BUDGET: f64 = 0.5;
/// Default cap on calls in flight across all providers.
pub const DEFAULT_CONCURRENCY: usize = 64;
/// Results per store transaction.
const BATCH: usize = 1000;

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
    /// Alerts this run fired (machine-output objects).
    alerts: Vec<serde_json::Value>,
    /// An alert at or above `--fail-on` fired.
    alert_fail: bool,
    metrics: Vec<ProviderMetrics>,
    gates: Vec<GateResult>,
    wall_secs: f64,
    failures: Vec<String>,
    more_failures: usize,
}

pub fn run(ctx: &Ctx, args: &RunArgs) -> anyhow::Result<u8> {
    // Building the HTTP client loads the TLS roots (milliseconds): on its own thread, while
    // the suites load.
    let client = std::thread::spawn(provider::http_client);
    let project = ctx.project()?;
    let files = suite_files(ctx, &project, &args.paths)?;
    let (suites, diags) = suite::load_suites(&files, &project);
    if !diags.is_empty() {
        return Err(Failure::invalid(format!(
            "{}\nnothing was run: fix the problems above (`evalwatch validate` lists them)",
            super::render_diagnostics(ctx, &diags)
        )));
    }
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    if args.dry_run {
        return dry_run(ctx, &suites, &filters);
    }
    let db = ctx.db_path(&project);
    let mut store = ctx.open_store(&db)?;
    let (suites, resume) = match &args.resume {
        None => (suites, None),
        Some(id) => select_resume(&store, suites, id)?,
    };
    let cancel = CancellationToken::new();
    cancel_on_signal(&runtime, cancel.clone())?;
    ctx.machine_stdout
        .set(args.format != RunFormat::Text && args.out.is_none());
    let client = client
        .join()
        .map_err(|_| anyhow::anyhow!("build the HTTP client: the thread panicked"))??;
    let mut code = exit::OK;
    let mut done_runs = Vec::new();
    for suite in suites {
        let suite = Arc::new(suite);
        let jobs = plan::plan(&suite, &filters).map_err(|e| Failure::invalid(e.to_string()))?;
        if jobs.is_empty() {
            ctx.printer.warn(&format!(
                "suite `{}`: no case matches the filters; nothing run",
                suite.name
            ));
            continue;
        }
        let resumed = resume.as_ref().filter(|r| r.info.suite == suite.name);
        let done = run_suite(
            ctx, &project, &runtime, &client, &mut store, &db, &suite, jobs, args, &cancel, resumed,
        )?;
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
    if !args.no_reports {
        let ran: Vec<String> = done_runs.iter().map(|d| d.info.suite.clone()).collect();
        if let Err(e) = super::report::after_run(ctx, &store, &project, &ran) {
            // Reports are a view of stored history: failing to refresh them never fails a run.
            ctx.printer.warn(&format!("refresh the reports: {e:#}"));
        }
    }
    emit(ctx, &store, args, &done_runs)?;
    runtime.shutdown_background();
    Ok(code)
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
fn select_resume(
    store: &Store,
    suites: Vec<Suite>,
    id: &str,
) -> anyhow::Result<(Vec<Suite>, Option<Resume>)> {
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
    Ok((vec![suite], Some(Resume { info, done, seqs })))
}

/// Cancel `cancel` on Ctrl-C or SIGTERM. The handlers are installed before this returns, so a
/// signal that arrives while the run is starting is not lost.
fn cancel_on_signal(
    runtime: &tokio::runtime::Runtime,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let _entered = runtime.enter();
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

#[allow(clippy::too_many_arguments)]
fn run_suite(
    ctx: &Ctx,
    project: &ProjectConfig,
    runtime: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    store: &mut Store,
    db: &std::path::Path,
    suite: &Arc<Suite>,
    jobs: Vec<crate::model::Job>,
    args: &RunArgs,
    cancel: &CancellationToken,
    resume: Option<&Resume>,
) -> anyhow::Result<Done> {
    // One rate limiter per provider id, shared by its calls as a provider and as a judge.
    let mut limiters: std::collections::HashMap<String, Arc<exec::Limiter>> =
        std::collections::HashMap::new();
    let mut slots = Vec::with_capacity(suite.providers.len());
    for spec in &suite.providers {
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
        });
    }
    let (tx, rx) = mpsc::channel::<Event>(1024);
    let after = judging(project, client, db, suite, &mut limiters, cancel, &tx)?;
    let renderer = Arc::new(
        Renderer::new(suite).map_err(|d| Failure::invalid(super::render_diagnostics(ctx, &d)))?,
    );
    let scorer = super::build_scorer(ctx, suite)?;
    let mut acc = RunAccumulator::for_suite(suite);
    let (info, jobs) = match resume {
        None => (
            RunInfo {
                run_id: new_run_id(),
                suite: suite.name.clone(),
                suite_hash: suite.hash.clone(),
                started_at: now_rfc3339(),
                finished_at: None,
                status: RunStatus::Running,
                providers: suite.providers.iter().map(|p| p.id.clone()).collect(),
                planned: jobs.len() as u64,
            },
            jobs,
        ),
        Some(r) => {
            let jobs = missing_jobs(jobs, r);
            // Metrics cover the whole run: what was stored before and what runs now.
            store.for_each_result(&r.info.run_id, |rec| {
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
                jobs.len(),
                if jobs.len() == 1 { "" } else { "s" }
            ));
            let info = RunInfo {
                status: RunStatus::Running,
                finished_at: None,
                planned: r.done.len() as u64 + jobs.len() as u64,
                ..r.info.clone()
            };
            (info, jobs)
        }
    };
    // Held until the run is stored: the same suite never runs twice at once on one store.
    let lease = super::schedule::lease(ctx, store, suite)?;
    // A first run of this suite content registers its case versions: the writer does it on
    // its thread before storing the first result, so that calls start at once.
    let register = store.begin_run_deferred(&info, suite, std::process::id(), &host_name())?;
    let writer = Writer::spawn_registering(
        db,
        &info.run_id,
        BATCH,
        register.then(|| (Arc::clone(suite), info.started_at.clone())),
    )?;
    let bar = ctx.printer.progress(jobs.len() as u64, &suite.name);
    let started = Instant::now();
    let consumer = {
        let suite = Arc::clone(suite);
        let printer = ctx.printer;
        let bar = bar.clone();
        std::thread::spawn(move || {
            consume(rx, &suite, &scorer, &writer, printer, &bar, acc).map(|c| (c, writer))
        })
    };
    let render: exec::RenderFn = {
        let suite = Arc::clone(suite);
        let renderer = Arc::clone(&renderer);
        Arc::new(move |job| renderer.render(&suite.cases[job.case_index], job.sample))
    };
    let global = args.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
    runtime.block_on(exec::execute(
        jobs,
        slots,
        global,
        render,
        after,
        cancel.clone(),
        tx,
    ));
    let joined = consumer
        .join()
        .map_err(|_| anyhow::anyhow!("score results: the scoring thread panicked"))?;
    bar.finish_and_clear();
    let wall_secs = started.elapsed().as_secs_f64();
    let (consumed, writer) = match joined {
        Ok(v) => v,
        Err(e) => {
            let _ = store.set_run_status(&info.run_id, RunStatus::Incomplete);
            return Err(e.context(format!("store results of run {}", info.run_id)));
        }
    };
    writer
        .finish()
        .with_context(|| format!("store results of run {}", info.run_id))?;
    let metrics = consumed.acc.finish(Some(wall_secs));
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
    let budget = project.error_budget.unwrap_or(DEFAULT_ERROR_BUDGET);
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
    store.finish_run(&info.run_id, status, &finished_at, &metrics, &gates)?;
    lease.release();
    let finished_info = RunInfo {
        finished_at: Some(finished_at.clone()),
        status,
        ..info.clone()
    };
    let alerts = if args.no_alerts || status != RunStatus::Complete {
        super::alerts::AlertOutcome::default()
    } else {
        super::alerts::after_run(
            ctx,
            store,
            project,
            suite,
            &finished_info,
            &metrics,
            args.fail_on,
        )?
    };
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
    Ok(Done {
        info: finished_info,
        alerts: alerts.alerts,
        alert_fail: alerts.fail,
        metrics,
        gates,
        wall_secs,
        failures: consumed.failures,
        more_failures: consumed.more_failures,
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
    cancelled: bool,
    finished: u64,
    failures: Vec<String>,
    more_failures: usize,
}

const SHOWN_FAILURES: usize = 10;

/// The single consumer of executor events: scores, accumulates metrics, feeds the writer,
/// drives the progress bar.
fn consume(
    mut rx: mpsc::Receiver<Event>,
    suite: &Suite,
    scorer: &Scorer,
    writer: &Writer,
    printer: crate::output::Printer,
    bar: &indicatif::ProgressBar,
    acc: RunAccumulator,
) -> anyhow::Result<Consumed> {
    let mut out = Consumed {
        acc,
        cancelled: false,
        finished: 0,
        failures: Vec::new(),
        more_failures: 0,
    };
    // Judges and rubrics already recorded for this run (a handful: one per assertion type).
    let mut signatures: std::collections::HashSet<JudgeSignature> =
        std::collections::HashSet::new();
    while let Some(event) = rx.blocking_recv() {
        match event {
            Event::JobStarted { .. } => {}
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
                printer.detail(&format!(
                    "[{provider_id}] attempt {attempt} failed ({}): {error}; {next}",
                    error.kind.as_str()
                ));
            }
            Event::JobFinished(mut finished) => {
                let judged = finished.judged.take().unwrap_or_default();
                let record = record(suite, scorer, *finished, &judged.outcomes);
                let new: Vec<JudgeSignature> = record
                    .assertions
                    .iter()
                    .filter_map(signature_of)
                    .filter(|s| signatures.insert(s.clone()))
                    .collect();
                writer.send_judge(judged.cache, new)?;
                out.acc.add(&record);
                out.finished += 1;
                if record.status != CaseStatus::Passed {
                    if out.failures.len() < SHOWN_FAILURES {
                        out.failures.push(terminal::failure_line(&record));
                    } else {
                        out.more_failures += 1;
                    }
                    printer.detail(&terminal::failure_line(&record));
                }
                bar.inc(1);
                writer.send(record)?;
            }
            Event::RunFinished { cancelled } => {
                out.cancelled = cancelled;
                break;
            }
        }
    }
    Ok(out)
}

/// Score a finished job into the record the store keeps.
fn record(
    suite: &Suite,
    scorer: &Scorer,
    f: Finished,
    judged: &[(usize, AssertionOutcome)],
) -> ResultRecord {
    let case = &suite.cases[f.job.case_index];
    let prompt = f
        .request
        .as_ref()
        .map(crate::model::Request::prompt_text)
        .unwrap_or_default();
    let mut rec = ResultRecord {
        case_hash: case.hash.clone(),
        tags: case.tags.clone(),
        prompt,
        attempts: f.attempts,
        ..ResultRecord::new(f.job, CaseStatus::Error)
    };

    match f.result {
        Ok(c) => {
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
            rec.output = Some(c.output);
            rec.latency_ms = Some(c.latency_ms);
            rec.tokens_in = c.tokens_in;
            rec.tokens_out = c.tokens_out;
            rec.cost_usd = c.cost_usd;
            rec.finish_reason = c.finish_reason;
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

/// The judging stage of a suite's run, when any of its assertions may call a judge: the
/// judge providers (temperature 0 unless their `params` set one; rate limits shared with
/// the same provider under test), the judge cache, and the hook the executor runs after
/// each call.
fn judging(
    project: &ProjectConfig,
    client: &reqwest::Client,
    db: &std::path::Path,
    suite: &Arc<Suite>,
    limiters: &mut std::collections::HashMap<String, Arc<exec::Limiter>>,
    cancel: &CancellationToken,
    events: &mpsc::Sender<Event>,
) -> anyhow::Result<Option<exec::AfterFn>> {
    if !judge::Engine::needed(suite) {
        return Ok(None);
    }
    let mut judges = Vec::new();
    for id in judge::Engine::judge_ids(suite, project.judge.as_deref()) {
        let Some(spec) = suite
            .providers
            .iter()
            .chain(&project.providers)
            .find(|p| p.id == id)
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
        judge::Engine::new(
            Arc::clone(suite),
            judges,
            project.judge.clone(),
            Some(lookup),
            cancel.clone(),
        )
        .with_retry_note(note),
    );
    Ok(Some(Arc::new(move |job, request, completion| {
        if !engine.wants(job.case_index) {
            return Box::pin(std::future::ready(crate::model::Judged::default()));
        }
        let engine = Arc::clone(&engine);
        let (job, request, output) = (job.clone(), request.clone(), completion.output.clone());
        Box::pin(async move { engine.judge(&job, &request, &output).await })
    })))
}

/// Print or write the chosen format for every run.
fn emit(ctx: &Ctx, store: &Store, args: &RunArgs, runs: &[Done]) -> anyhow::Result<()> {
    let text = || {
        for d in runs {
            let view = view_of(d);
            ctx.printer.result(
                terminal::summary(
                    &view,
                    ctx.printer.verbosity == crate::output::Verbosity::Verbose,
                )
                .trim_end(),
            );
            if !d.failures.is_empty() {
                ctx.printer.info(&format!(
                    "not passed ({}):",
                    d.failures.len() + d.more_failures
                ));
                for f in &d.failures {
                    ctx.printer.info(f);
                }
                if d.more_failures > 0 {
                    ctx.printer.info(&format!(
                        "  ... and {} more: `evalwatch show {}`",
                        d.more_failures, d.info.run_id
                    ));
                }
            }
        }
    };
    if args.format == RunFormat::Text && args.out.is_none() {
        text();
        return Ok(());
    }
    let mut sink: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
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
        text();
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
