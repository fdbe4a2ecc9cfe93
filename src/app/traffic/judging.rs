//! Judge monitors on traffic: sampled records waiting for the judge (see
//! [`super::monitor`]) are judged on a thread of their own, after each batch commits, through
//! the judge engine and its cache (the suite's: no second implementation), then scored whole
//! by the suite scorer and counted into their buckets. Reading never waits for a judge.
//!
//! A judge that fails (down, out of retries) leaves the records waiting, with why; a
//! one-shot `ingest` asks no more (one failure would repeat for every record), and the next
//! `ingest` or `collect` of the source judges them. A command that keeps running (`collect`,
//! `ingest --follow`) says so at once and asks again after a pause that doubles while the
//! judge keeps failing (docs/traffic.md).

use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::judge::{self, Engine};
use crate::model::{
    Case, CaseRef, CaseStatus, ChatMessage, Job, JudgeCacheEntry, ProjectConfig, Request,
    TrafficSource,
};
use crate::score::{ScoreInput, Scorer};
use crate::store::{Awaiting, Quality, Store, TrafficJudged};

/// Records judged per transaction.
const CHUNK: usize = 64;

/// The first pause after a judge failure in a command that keeps running, unless
/// `EVALWATCH_JUDGE_RETRY` says otherwise; it doubles while the judge keeps failing, up to
/// [`RETRY_MAX_FACTOR`] times.
pub const RETRY_PAUSE: Duration = Duration::from_secs(60);
const RETRY_MAX_FACTOR: u32 = 16;

/// The first pause before a failed judge is asked again: `EVALWATCH_JUDGE_RETRY` (whole
/// seconds), else [`RETRY_PAUSE`].
pub fn retry_pause() -> anyhow::Result<Duration> {
    crate::app::env_seconds("EVALWATCH_JUDGE_RETRY", RETRY_PAUSE, 1)
}

/// How a command that keeps running retries a judge that failed.
struct Retry {
    /// The first pause.
    first: Duration,
    /// The pause after the next failure.
    next: Duration,
    /// When to ask the judge again, while it is failing.
    at: Option<Instant>,
    /// Told when judging pauses and when it resumes (a line for stderr).
    notice: Box<dyn Fn(&str) + Send>,
}

/// What judging did during one command.
#[derive(Debug, Clone, Default)]
pub struct JudgeReport {
    /// Records given their final verdict.
    pub judged: u64,
    /// Judge calls made (not answered by the cache).
    pub calls: u64,
    /// Judged assertions answered by the cache.
    pub cached: u64,
    /// The calls' cost, from the judge provider's `pricing`.
    pub cost_usd: f64,
    /// Why judging stopped (the judge failed), when it did: the records it left wait.
    pub stopped: Option<String>,
}

/// The source's judge monitors: its monitor as a case, the scorer, the engine and a runtime.
pub struct Judging {
    source: String,
    case: Case,
    scorer: Scorer,
    engine: Arc<Engine>,
    runtime: tokio::runtime::Runtime,
    report: JudgeReport,
    retry: Option<Retry>,
}

impl Judging {
    /// The judging of `source`, or None when its monitor calls no judge.
    pub fn new(
        project: &ProjectConfig,
        source: &TrafficSource,
        db: &std::path::Path,
    ) -> anyhow::Result<Option<Self>> {
        let case = source.monitor_case();
        if !Engine::wants(&case) {
            return Ok(None);
        }
        let mut ids = Vec::new();
        Engine::add_judge_ids(&case, project.judge.as_deref(), &mut ids);
        let client = crate::provider::http_client()?;
        let mut judges = Vec::new();
        for id in &ids {
            // `validate` reports a judge that is not a provider; its assertion stays unscorable.
            if let Some(spec) = project.providers.iter().find(|p| &p.id == id) {
                let limiter = Arc::new(crate::exec::Limiter::new(spec.rate_limit));
                judges.push(crate::app::run::build_judge(&client, spec, limiter)?);
            }
        }
        let cache = crate::store::JudgeCache::open(db)
            .with_context(|| format!("open the judge cache in {}", crate::store::shown(db)))?;
        let lookup: judge::CacheLookup = Arc::new(move |key| cache.get(key).ok().flatten());
        let engine = Engine::new(
            judges,
            project.judge.clone(),
            Some(lookup),
            CancellationToken::new(),
        );
        let mut scorer = Scorer::empty();
        scorer
            .prepare_case(&case)
            .map_err(|e| anyhow::anyhow!("{}: monitor of `{}`: {e}", source.location, source.id))?;
        Ok(Some(Self {
            source: source.id.clone(),
            case,
            scorer,
            engine: Arc::new(engine),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("start the judge's runtime")?,
            report: JudgeReport::default(),
            retry: None,
        }))
    }

    /// For a command that keeps running: after a judge failure, say so through `notice` at
    /// once and ask the judge again after `pause`, doubled after each failure in a row (up
    /// to 16 times); say when it answers again.
    #[must_use]
    pub fn retrying(mut self, pause: Duration, notice: Box<dyn Fn(&str) + Send>) -> Self {
        self.retry = Some(Retry {
            first: pause,
            next: pause,
            at: None,
            notice,
        });
        self
    }

    /// How long until the judge is to be asked again, when it failed and is retried.
    fn retry_in(&self) -> Option<Duration> {
        let at = self.retry.as_ref()?.at?;
        Some(at.saturating_duration_since(Instant::now()))
    }

    /// Judges what waits, oldest first, until nothing does or the judge fails. After a
    /// failure, nothing more is asked; when retrying, until the pause is over.
    pub fn pass(&mut self, store: &mut Store) -> anyhow::Result<()> {
        let retried = match &self.retry {
            Some(r) if self.report.stopped.is_some() => {
                if r.at.is_some_and(|at| Instant::now() < at) {
                    return Ok(());
                }
                self.report.stopped = None;
                true
            }
            _ => false,
        };
        self.judge_waiting(store)?;
        if let Some(r) = &mut self.retry {
            if let Some(why) = &self.report.stopped {
                let pause = r.next;
                r.at = Some(Instant::now() + pause);
                r.next = (pause * 2).min(r.first * RETRY_MAX_FACTOR);
                (r.notice)(&format!(
                    "judge monitors paused: {}; the records wait, and the judge is asked again in {} s",
                    why.trim_start_matches("awaiting the judge: "),
                    pause.as_secs()
                ));
            } else if retried {
                r.at = None;
                r.next = r.first;
                (r.notice)(
                    "judge monitors resumed: the judge answers again, and the records that waited are judged",
                );
            }
        }
        Ok(())
    }

    fn judge_waiting(&mut self, store: &mut Store) -> anyhow::Result<()> {
        while self.report.stopped.is_none() {
            let waiting = store.traffic_awaiting_judge(&self.source, CHUNK)?;
            if waiting.is_empty() {
                break;
            }
            let (judged, cache) = self.judge_chunk(waiting);
            store.put_traffic_judged(&self.source, &judged, &cache)?;
            if judged.len() < CHUNK {
                break;
            }
        }
        Ok(())
    }

    /// Judges a chunk of records at once (each judge's `concurrency` bounds its calls): their
    /// verdicts, and the answers to cache. A record whose judge failed stays waiting, with why.
    fn judge_chunk(
        &mut self,
        waiting: Vec<Awaiting>,
    ) -> (Vec<TrafficJudged>, Vec<JudgeCacheEntry>) {
        let engine = Arc::clone(&self.engine);
        let cases: Vec<(Awaiting, Case, Job, Request)> = waiting
            .into_iter()
            .map(|w| {
                let mut case = self.case.clone();
                case.context.clone_from(&w.context);
                let job = Job {
                    seq: 0,
                    case_index: 0,
                    case_id: w.key.clone(),
                    provider_index: 0,
                    provider_id: self.source.clone(),
                    sample: 0,
                    case: CaseRef::default(),
                };
                let request = Request {
                    case_id: w.key.clone(),
                    sample: 0,
                    system: None,
                    messages: vec![ChatMessage {
                        role: "user".into(),
                        content: w.input.clone().unwrap_or_default(),
                    }],
                    vars: std::collections::BTreeMap::new(),
                };
                (w, case, job, request)
            })
            .collect();
        let answers = self
            .runtime
            .block_on(futures::future::join_all(cases.iter().map(
                |(w, case, job, request)| {
                    engine.judge(case, job, request, w.output.as_deref().unwrap_or(""))
                },
            )));
        let mut out = Vec::with_capacity(cases.len());
        let mut cache = Vec::new();
        for ((w, case, _, _), judged) in cases.into_iter().zip(answers) {
            let failed = judged.outcomes.iter().find_map(|(_, o)| {
                (o.details.get("call_failed") == Some(&serde_json::Value::Bool(true)))
                    .then(|| o.reason.clone())
            });
            cache.extend(judged.cache);
            let input = ScoreInput {
                output: w.output.as_deref().unwrap_or(""),
                prompt: w.input.as_deref().unwrap_or(""),
                latency_ms: w.latency_ms,
                cost_usd: w.cost_usd,
            };
            let mut outcomes = judged.outcomes;
            let waits = failed.is_some();
            if let Some(why) = failed {
                // Still waiting: every judged assertion pending, saying why.
                let why = format!("awaiting the judge: {why}");
                for (i, o) in &mut outcomes {
                    *o = super::monitor::waiting_outcome(&case.asserts[*i], &why);
                }
                self.report.stopped.get_or_insert(why);
            }
            for (_, o) in &outcomes {
                let d = &o.details;
                if d.get("cached") == Some(&serde_json::Value::Bool(true)) {
                    self.report.cached += 1;
                }
                if let Some(u) = d.get("usage") {
                    self.report.calls += 1;
                    self.report.cost_usd += u
                        .get("cost_usd")
                        .and_then(serde_json::Value::as_f64)
                        .unwrap_or(0.0);
                }
            }
            let mut score = self.scorer.score_with(0, &case, &input, &outcomes);
            let mut q = Quality::default();
            if waits {
                score.status = CaseStatus::Unscorable;
                score.score = None;
            } else {
                self.report.judged += 1;
                super::write::count_quality(&mut q, &score);
            }
            out.push(TrafficJudged {
                key: w.key,
                minute: w.minute,
                score,
                quality: q,
            });
        }
        (out, cache)
    }

    /// What judging did so far.
    #[must_use]
    pub fn report(&self) -> &JudgeReport {
        &self.report
    }

    /// Judging on a thread of its own, with its own connection to the store at `db`: told
    /// after each commit, it judges what waits; [`Background::finish`] makes a last pass.
    pub fn spawn(mut self, mut store: Store) -> anyhow::Result<Background> {
        let (tx, rx) = mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name("evalwatch-traffic-judge".into())
            .spawn(move || -> anyhow::Result<JudgeReport> {
                loop {
                    // Woken by a commit, or when a failed judge is to be asked again.
                    let woken = match self.retry_in() {
                        Some(wait) => match rx.recv_timeout(wait) {
                            Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) => true,
                            Err(mpsc::RecvTimeoutError::Disconnected) => false,
                        },
                        None => rx.recv().is_ok(),
                    };
                    if !woken {
                        break;
                    }
                    while rx.try_recv().is_ok() {}
                    self.pass(&mut store)?;
                }
                // The sender is gone: everything read is committed; a last pass.
                self.pass(&mut store)?;
                Ok(self.report)
            })?;
        Ok(Background {
            tell: Some(tx),
            handle,
        })
    }
}

/// Tells a [`Background`] that a batch committed (from the thread that commits).
#[derive(Clone, Default)]
pub struct Committed(Option<mpsc::Sender<()>>);

impl Committed {
    pub fn tell(&self) {
        if let Some(t) = &self.0 {
            let _ = t.send(());
        }
    }
}

/// Judging running beside reading.
pub struct Background {
    tell: Option<mpsc::Sender<()>>,
    handle: JoinHandle<anyhow::Result<JudgeReport>>,
}

impl Background {
    /// A batch committed: there may be records to judge.
    pub fn committed(&self) {
        if let Some(t) = &self.tell {
            let _ = t.send(());
        }
    }

    /// A handle another thread tells commits with.
    #[must_use]
    pub fn notifier(&self) -> Committed {
        Committed(self.tell.clone())
    }

    /// Judges what is left and returns what judging did.
    pub fn finish(mut self) -> anyhow::Result<JudgeReport> {
        self.tell = None;
        self.handle.join().map_err(|_| {
            anyhow::anyhow!("judge traffic: the judging thread stopped unexpectedly")
        })?
    }
}

/// What judging did, for `--format json`.
#[must_use]
pub fn report_json(r: &JudgeReport) -> serde_json::Value {
    serde_json::json!({
        "judged": r.judged,
        "calls": r.calls,
        "cached": r.cached,
        "cost_usd": r.cost_usd,
        "stopped": r.stopped,
    })
}

/// What judging did, as the command's notes: a judge failure is a warning, never an error.
pub fn print_report(ctx: &crate::app::Ctx, r: &JudgeReport) {
    if let Some(why) = &r.stopped {
        ctx.printer.warn(&format!(
            "judge monitors stopped: {}; the records left wait, and the next ingest of the source judges them",
            why.trim_start_matches("awaiting the judge: ")
        ));
    }
    ctx.printer.note(&format!(
        "judge monitors: {} record{} judged, {} judge call{} (${:.4}), {} answer{} from the cache",
        r.judged,
        if r.judged == 1 { "" } else { "s" },
        r.calls,
        if r.calls == 1 { "" } else { "s" },
        r.cost_usd,
        r.cached,
        if r.cached == 1 { "" } else { "s" },
    ));
}
