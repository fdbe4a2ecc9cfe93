//! The alert step of `run`.

use chrono::Utc;

use super::apply::{Apply, record_known_flaky};
use super::evaluate::SuiteEval;
use super::{
    AlertOutcome, flush_queue, now_rfc3339, process_env, reports_dir, suite_rules, usable_sinks,
};
use crate::alert::sink::{Env, Sink};
use crate::app::Ctx;
use crate::model::{ProjectConfig, ProviderMetrics, RunInfo, Severity, Suite};
use crate::store::Store;

/// The alert step of `run`, after the run is stored: evaluate the suite's rules against its
/// baselines, record state, notify sinks (queueing what cannot be delivered). `fail_on` is a
/// model severity, or the command line's `--fail-on` as it is.
pub fn after_run(
    ctx: &Ctx,
    store: &mut Store,
    project: &ProjectConfig,
    suite: &Suite,
    info: &RunInfo,
    metrics: &[ProviderMetrics],
    fail_on: impl Into<Severity>,
) -> anyhow::Result<AlertOutcome> {
    after_run_with(
        ctx,
        store,
        project,
        suite,
        info,
        metrics,
        fail_on.into(),
        &process_env,
    )
}

/// [`after_run`] with an injected environment lookup.
#[allow(clippy::too_many_arguments)]
pub fn after_run_with(
    ctx: &Ctx,
    store: &mut Store,
    project: &ProjectConfig,
    suite: &Suite,
    info: &RunInfo,
    metrics: &[ProviderMetrics],
    fail_on: Severity,
    env: Env<'_>,
) -> anyhow::Result<AlertOutcome> {
    // The run is stored already: problems with rules or sinks are warnings here (and errors
    // for `alerts check`), so that they never cost the run its output.
    let rules = suite_rules(ctx, project, suite).unwrap_or_else(|errors| {
        for e in errors {
            ctx.printer.warn(&format!("{e}; the rule is skipped"));
        }
        Vec::new()
    });
    let sinks: Vec<Sink> = usable_sinks(ctx, project)
        .into_iter()
        .map(|s| {
            if ctx.machine_stdout.get() {
                s.off_stdout()
            } else {
                s
            }
        })
        .collect();
    let now = Utc::now();
    let mut eval = SuiteEval::new(suite, &rules, store);
    let findings = eval.findings(store, Some((info, metrics)), now);
    // The runs read (per-result rows of up to the last five, or more) are freed off the
    // run's path.
    if !eval.cache.is_empty() || !eval.windows.is_empty() {
        crate::report::html::drop_later((
            std::mem::take(&mut eval.cache),
            std::mem::take(&mut eval.windows),
        ));
    }
    let findings = findings?;
    let apply = Apply {
        ctx,
        sinks: &sinks,
        reports: reports_dir(project),
        now: now_rfc3339(now),
    };
    let fired = apply.apply(store, suite, &rules, &findings, Some(&info.run_id))?;
    record_known_flaky(store, &suite.name, &info.run_id, &rules, &findings)?;
    if let Err(e) = flush_queue(ctx, store, &sinks, env, false) {
        ctx.printer
            .warn(&format!("deliver alerts: {e}; notices stay queued"));
    }
    Ok(AlertOutcome {
        fail: fired.iter().any(|(s, _)| *s >= fail_on),
        alerts: fired.into_iter().map(|(_, v)| v).collect(),
    })
}
