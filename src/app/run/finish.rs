//! The end of a suite's run: what the check made of the suite settles the run's row (a
//! suite with problems, or one with no case selected, leaves nothing), then its status
//! (complete, failed over the error budget, incomplete), gates, the writer's last batch and
//! the run's end in the store, its alerts, and what the output needs ([`Done`]).

use anyhow::Context as _;

use crate::metrics::evaluate_gates;
use crate::model::{GateResult, ProviderMetrics, RunInfo, RunStatus, Suite};
use crate::report::html::{HeatFeed, live::EarlyPages};
use crate::store::{Checkpointer, Store, Writer};

use super::DEFAULT_ERROR_BUDGET;
use super::consume::Consumed;
use super::pages::{self, Rendered};
use super::suite::{Scored, SuiteRun, Whole};
use crate::app::lease::Lease;

/// One finished run, as the formatters need it.
pub(super) struct Done {
    pub(super) info: RunInfo,
    /// The suite as checked, without its cases (its name and description for the reports).
    pub(super) suite: Suite,
    /// Its run pages, written from the rows rendered as its results were scored (unless
    /// `--no-reports`, or the rows cannot be used: the refresh writes them from the store).
    pub(super) pages: Option<EarlyPages>,
    /// The statuses its heat map shows: of the runs before it, read while it ran, and its
    /// own as they were scored.
    pub(super) heat: Option<HeatFeed>,
    /// Alerts this run fired (machine-output objects).
    pub(super) alerts: Vec<serde_json::Value>,
    /// An alert at or above `--fail-on` fired.
    pub(super) alert_fail: bool,
    pub(super) metrics: Vec<ProviderMetrics>,
    pub(super) gates: Vec<GateResult>,
    pub(super) wall_secs: f64,
    pub(super) failures: Vec<String>,
    pub(super) more_failures: usize,
    /// Its writer's checkpointer, copying what the run stored into the database file while
    /// the reports are written; dropped (waited for) before the store closes.
    checkpointer: Checkpointer,
}

/// The checkpoints asked for as the runs ended (made while the reports were written) are
/// waited for before the store closes: the last connection, its close then has little left
/// to copy before it removes the log.
pub(super) fn close(runs: Vec<Done>) {
    for done in runs {
        drop(done.checkpointer);
    }
    crate::phase::phase("checkpointed");
}

pub(super) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A run's verdict: its status and the gates checked (only for a complete run).
struct Verdict {
    status: RunStatus,
    gates: Vec<GateResult>,
    errors: u64,
    results: u64,
    budget: f64,
}

impl SuiteRun<'_, '_> {
    /// Settle and end the run. None when it is not kept (no case matched the filters).
    pub(super) fn finish(
        &self,
        store: &mut Store,
        lease: Lease,
        checked: anyhow::Result<Whole>,
        scored: Scored,
    ) -> anyhow::Result<Option<Done>> {
        let Scored {
            consumed,
            writer,
            wall_secs,
        } = scored;
        let Consumed {
            acc,
            pages,
            cancelled,
            finished,
            failures,
            more_failures,
        } = consumed;
        let rendered = pages.finish(self.env.ctx, &self.info.run_id, finished);
        let whole = match checked {
            Ok(whole) => whole,
            Err(e) => return Err(self.discard(store, lease, writer, &rendered, e)),
        };
        let (suite, info) = self.settle(store, whole, finished)?;
        if info.planned == 0 && self.resume.is_none() && !cancelled {
            self.nothing_run(store, lease, writer, &suite)?;
            return Ok(None);
        }
        let finished_at = now_rfc3339();
        // A resumed run's wall-clock is from its first start to its end, the pause included
        // (what `show` gives as `wall_secs`): its throughput is all its results over that.
        let wall_secs = match &self.resume {
            Some(_) => crate::model::wall_secs(&info.started_at, &finished_at)
                .filter(|s| *s > 0.0)
                .unwrap_or(wall_secs),
            None => wall_secs,
        };
        let metrics = acc.finish(Some(wall_secs));
        crate::phase::phase("metrics");
        let verdict = verdict(self.env.project.error_budget, &suite, &metrics, cancelled);
        let info = RunInfo {
            finished_at: Some(finished_at.clone()),
            status: verdict.status,
            ..info
        };
        // The run's pages are written from its rows while the store takes its last results
        // and its end: everything above the rows is known now.
        let pages = pages::start_early(self.env, &info, &metrics, &verdict.gates, rendered.live);
        let stored = store_end(store, writer, &info, &finished_at, &metrics, &verdict.gates);
        let checkpointer = match stored {
            Ok(checkpointer) => checkpointer,
            Err(e) => {
                // The pages would show a run the store does not have as they say.
                pages::discard_early(pages);
                return Err(e);
            }
        };
        lease.release();
        crate::phase::phase("finish_run");
        // Before the alerts: a change of model version is among what they name.
        for text in super::versions::record(store, &info)
            .with_context(|| format!("record the model versions of run {}", info.run_id))?
        {
            self.env
                .ctx
                .printer
                .note(&format!("model version changed: {text} (marked)"));
        }
        let alerts = self.alerts(store, &suite, &info, &metrics)?;
        crate::phase::phase("alerts");
        // What the run stored is copied into the database file while the reports are
        // written, so that the store's close has little left to do.
        checkpointer.nudge();
        warn(self.env.ctx, &info, &verdict, finished);
        Ok(Some(Done {
            info,
            suite: Suite {
                cases: Vec::new(),
                ..suite
            },
            pages,
            heat: rendered.heat,
            alerts: alerts.alerts,
            alert_fail: alerts.fail,
            metrics,
            gates: verdict.gates,
            wall_secs,
            failures,
            more_failures,
            checkpointer,
        }))
    }

    /// A suite with problems: what was asked of it is not kept, nor are the pages written
    /// as its results came.
    fn discard(
        &self,
        store: &mut Store,
        lease: Lease,
        writer: Writer,
        rendered: &Rendered,
        e: anyhow::Error,
    ) -> anyhow::Error {
        let run_id = &self.info.run_id;
        if let Err(stored) = self.finish_writer(writer) {
            return stored;
        }
        if let Err(removed) = store
            .discard_run(run_id)
            .with_context(|| format!("remove run {run_id} of a suite with problems"))
        {
            return removed;
        }
        lease.release();
        pages::discard(self.env, run_id, rendered);
        e
    }

    /// The suite as checked in full (its hash, gates, alerts), and the run's row with how
    /// many results it planned.
    fn settle(
        &self,
        store: &mut Store,
        whole: Whole,
        finished: u64,
    ) -> anyhow::Result<(Suite, RunInfo)> {
        let info = self.info.clone();
        let (suite, info) = match whole {
            Whole::Loaded => (self.head.as_ref().clone(), info),
            Whole::Interrupted(head) => {
                // Kept as far as it went (even with no result: the run's row says it was
                // interrupted), as any interrupted run.
                store.set_run_plan(&info.run_id, &head.hash, finished)?;
                let info = RunInfo {
                    suite_hash: head.hash.clone(),
                    planned: finished,
                    ..info
                };
                (head, info)
            }
            Whole::Checked(whole, planned) => {
                let info = RunInfo {
                    suite_hash: whole.hash.clone(),
                    planned,
                    ..info
                };
                (whole, info)
            }
        };
        if self.resume.is_some() {
            // Kept if its first part recorded them (a run begun before they were recorded
            // gets the suite's current ones, which its remaining jobs run with).
            store
                .record_run_settings(&info.run_id, &suite.settings)
                .with_context(|| format!("record the settings of run {}", info.run_id))?;
        }
        Ok((suite, info))
    }

    /// No case matched the filters: the run is not kept.
    fn nothing_run(
        &self,
        store: &mut Store,
        lease: Lease,
        writer: Writer,
        suite: &Suite,
    ) -> anyhow::Result<()> {
        self.finish_writer(writer)?;
        store.discard_run(&self.info.run_id)?;
        lease.release();
        self.env.ctx.printer.warn(&format!(
            "suite `{}`: no case matches the filters; nothing run",
            suite.name
        ));
        Ok(())
    }

    fn finish_writer(&self, writer: Writer) -> anyhow::Result<()> {
        let done = writer
            .finish()
            .with_context(|| format!("store results of run {}", self.info.run_id));
        crate::phase::phase("writer finished");
        done.map(drop)
    }

    /// The suite's alert rules, for a complete run (unless `--no-alerts`).
    fn alerts(
        &self,
        store: &mut Store,
        suite: &Suite,
        info: &RunInfo,
        metrics: &[ProviderMetrics],
    ) -> anyhow::Result<super::super::alerts::AlertOutcome> {
        let settings = self.env.settings;
        if !settings.alerts || info.status != RunStatus::Complete {
            return Ok(super::super::alerts::AlertOutcome::default());
        }
        if let Some(filter) = &info.filter {
            // A spot check of some cases or providers says nothing of the suite: its rules would judge a
            // subset against the whole (or resolve an alert the whole suite still has).
            self.env.ctx.printer.note(&format!(
                "run {} is filtered ({filter}): alert rules are not evaluated, and it is no baseline or trend point for later runs",
                info.run_id
            ));
            return Ok(super::super::alerts::AlertOutcome::default());
        }
        super::super::alerts::after_run_with(
            self.env.ctx,
            store,
            self.env.project,
            suite,
            info,
            metrics,
            settings.fail_on,
            &|name| std::env::var(name).ok(),
        )
    }
}

/// The writer's last batch and the run's end in the store; the writer's checkpointer.
fn store_end(
    store: &mut Store,
    writer: Writer,
    info: &RunInfo,
    finished_at: &str,
    metrics: &[ProviderMetrics],
    gates: &[GateResult],
) -> anyhow::Result<Checkpointer> {
    let (_, checkpointer) = writer
        .finish_keeping_checkpointer()
        .with_context(|| format!("store results of run {}", info.run_id))?;
    crate::phase::phase("writer finished");
    store.finish_run(&info.run_id, info.status, finished_at, metrics, gates)?;
    Ok(checkpointer)
}

/// Complete, failed (errors over the budget) or incomplete (interrupted); the gates of a
/// complete run.
fn verdict(
    budget: Option<f64>,
    suite: &Suite,
    metrics: &[ProviderMetrics],
    cancelled: bool,
) -> Verdict {
    let overall = || metrics.iter().filter(|m| m.tag.is_none());
    let errors: u64 = overall().map(|m| m.metrics.errors).sum();
    let results: u64 = overall().map(|m| m.metrics.cases).sum();
    let budget = budget.unwrap_or(DEFAULT_ERROR_BUDGET);
    #[allow(clippy::cast_precision_loss)]
    let status = if cancelled {
        RunStatus::Incomplete
    } else if results > 0 && errors as f64 / results as f64 > budget {
        RunStatus::Failed
    } else {
        RunStatus::Complete
    };
    let gates = if status == RunStatus::Complete {
        overall()
            .flat_map(|m| evaluate_gates(&suite.gates, &m.provider, &m.metrics))
            .collect()
    } else {
        Vec::new()
    };
    Verdict {
        status,
        gates,
        errors,
        results,
        budget,
    }
}

/// Say why a run is failed or incomplete.
fn warn(ctx: &super::super::Ctx, info: &RunInfo, v: &Verdict, finished: u64) {
    if v.status == RunStatus::Failed {
        ctx.printer.warn(&format!(
            "run {}: {} of {} results are errors, over the error budget of {:.0}%; the run is marked failed",
            info.run_id,
            v.errors,
            v.results,
            v.budget * 100.0
        ));
    }
    if v.status == RunStatus::Incomplete {
        ctx.printer.warn(&format!(
            "run {} interrupted: {} of {} results kept, marked incomplete",
            info.run_id, finished, info.planned
        ));
    }
}
