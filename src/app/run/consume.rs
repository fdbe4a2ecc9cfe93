//! The consumer: the one thread that takes the executor's events, scores each result,
//! redacts secrets (the one point where outputs and errors enter the store and the pages),
//! accumulates metrics, feeds the store's writer and the run's pages, and drives the
//! progress bar.

use std::collections::HashSet;

use tokio::sync::mpsc;

use crate::exec::{Event, Finished};
use crate::metrics::RunAccumulator;
use crate::model::{
    AssertionOutcome, CaseStatus, ErrorKind, JudgeSignature, ProjectConfig, ResultRecord, Suite,
};
use crate::output::Printer;
use crate::provider::common::Secrets;
use crate::report::terminal;
use crate::score::{ScoreInput, Scorer};
use crate::store::Writer;

use super::pages::Pages;

/// Failures listed after the run; the rest are counted.
const SHOWN_FAILURES: usize = 10;

/// How often the consumer looks for events while they come, and for how many looks it keeps
/// looking when none came: waking it for each event takes the CPU the calls need
/// (docs/performance.md).
const CONSUME_POLL: std::time::Duration = std::time::Duration::from_millis(2);
const CONSUME_IDLE_POLLS: u32 = 25;

/// What the consumer thread hands back.
pub(super) struct Consumed {
    pub(super) acc: RunAccumulator,
    pub(super) pages: Pages,
    pub(super) cancelled: bool,
    pub(super) finished: u64,
    pub(super) failures: Vec<String>,
    pub(super) more_failures: usize,
}

/// The consumer's own state: what it hands back, and what it keeps to score.
struct Consumer<'a> {
    out: Consumed,
    writer: &'a Writer,
    printer: Printer,
    bar: &'a indicatif::ProgressBar,
    secrets: &'a Secrets,
    /// Assertions are prepared as their cases come (the checker reported any that cannot be).
    scorer: Scorer,
    /// Judges and rubrics already recorded for this run (a handful: one per assertion type).
    signatures: HashSet<JudgeSignature>,
}

/// The single consumer of executor events, until the run finishes or the channel closes.
pub(super) fn consume(
    mut rx: mpsc::Receiver<Event>,
    writer: &Writer,
    printer: Printer,
    bar: &indicatif::ProgressBar,
    (acc, pages): (RunAccumulator, Pages),
    secrets: &Secrets,
) -> anyhow::Result<Consumed> {
    let mut c = Consumer {
        out: Consumed {
            acc,
            pages,
            cancelled: false,
            finished: 0,
            failures: Vec::new(),
            more_failures: 0,
        },
        writer,
        printer,
        bar,
        secrets,
        scorer: Scorer::empty(),
        signatures: HashSet::new(),
    };
    // Events are taken every few milliseconds while they come; once none came for a while,
    // it sleeps until the next.
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
        if c.event(event)? {
            break;
        }
    }
    Ok(c.out)
}

impl Consumer<'_> {
    /// Take one event; true once the run finished.
    fn event(&mut self, event: Event) -> anyhow::Result<bool> {
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
                self.printer.detail(&self.secrets.redact(&format!(
                    "[{provider_id}] attempt {attempt} failed ({}): {error}; {next}",
                    error.kind.as_str()
                )));
            }
            Event::JobFinished(finished) => self.finished(*finished)?,
            Event::CircuitOpened {
                provider_id: _,
                reason,
            } => self.printer.warn(&format!(
                "{reason}; its remaining cases are stored as `circuit_open` errors"
            )),
            Event::BudgetSpent { reason } => self.printer.warn(&format!(
                "{reason}; the remaining cases are stored as `circuit_open` errors"
            )),
            Event::RunFinished { cancelled } => {
                self.out.cancelled = cancelled;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// One finished job: scored, redacted, counted, shown on the pages, stored.
    fn finished(&mut self, mut finished: Finished) -> anyhow::Result<()> {
        let out = &mut self.out;
        let judged = finished.judged.take().unwrap_or_default();
        if let Some(case) = finished.job.case.get() {
            let _ = self.scorer.prepare_case(case);
            if let Some(p) = case.repeat_policy {
                out.acc.add_policy(&case.id, p);
            }
        }
        // The model version the provider reported goes to the writer with the result,
        // which counts it in the same transaction (a run killed and resumed keeps its counts).
        let reported = finished
            .result
            .as_mut()
            .ok()
            .and_then(|c| c.reported.take());
        // The case gives the run page its expected answer.
        let case = out.pages.wants_case().then(|| finished.job.case.clone());
        let mut record = record(&self.scorer, finished, &judged.outcomes);
        record.reported = reported;
        // The one point where outputs and errors enter the store (and the pages).
        super::super::secrets::redact_record(self.secrets, &mut record);
        out.pages.add(
            &record,
            case.as_ref().and_then(crate::model::CaseRef::get),
            self.secrets,
        );
        let new: Vec<JudgeSignature> = record
            .assertions
            .iter()
            .filter_map(signature_of)
            .filter(|s| self.signatures.insert(s.clone()))
            .collect();
        self.writer.send_judge(judged.cache, new)?;
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
        self.bar.inc(1);
        self.writer.send(record)?;
        Ok(())
    }
}

/// The secret values of a run of `suite` (see [`super::super::secrets`]).
pub(super) fn run_secrets(project: &ProjectConfig, suite: &Suite) -> Secrets {
    super::super::secrets::of_suites(project, [suite])
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
