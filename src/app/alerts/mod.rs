//! `evalwatch alerts` and `evalwatch baseline`, and the alert step of `run`.
//!
//! The flow: parse the suite's rules (plus the project's defaults), read the baseline runs
//! from the store, evaluate each rule per provider ([`crate::alert::eval`]), turn the
//! findings into state (open once, touch while firing, resolve once), queue a notice per
//! sink in the same transaction, then deliver everything pending. A sink that is down never
//! fails the run: its notices stay queued for the next `run` or `alerts check`.
//!
//! The files: `evaluate` (rules against baselines, store reads cached), `apply` (findings
//! into alert state and queued notices), `deliver` (the queue to the sinks), `after_run`
//! (the step of `run`), and the commands `check`, `list` and `baseline`.

mod after_run;
mod apply;
mod baseline;
mod check;
mod deliver;
mod evaluate;
mod list;
#[cfg(test)]
mod tests;
pub mod traffic;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

pub use self::after_run::{after_run, after_run_with};
pub use self::baseline::baseline;
pub use self::deliver::flush_queue;
use super::Ctx;
use crate::alert::rule::{Rule, rules_for};
use crate::alert::sink::{self, Env, Sink};
use crate::cli::alerts::{AlertsArgs, AlertsCommand};
use crate::model::{ProjectConfig, Suite};

/// Complete runs looked at for known-flaky cases, at least.
pub const FLAKY_WINDOW: usize = 5;

/// What the alert step of `run` found, for the machine output and the exit code.
#[derive(Debug, Default)]
pub struct AlertOutcome {
    /// Alerts fired by this run, as the spec's machine-output objects.
    pub alerts: Vec<serde_json::Value>,
    /// Whether one is at or above `--fail-on`.
    pub fail: bool,
}

/// The environment, where sinks read their secrets.
fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// An instant as the store and the notices keep it.
fn now_rfc3339(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The suite's rules, or every problem with them, located in the files they come from.
pub fn suite_rules(
    ctx: &Ctx,
    project: &ProjectConfig,
    suite: &Suite,
) -> Result<Vec<Rule>, Vec<String>> {
    let named: BTreeSet<String> = suite
        .named_metrics
        .iter()
        .cloned()
        .chain(
            suite
                .cases
                .iter()
                .flat_map(|c| c.asserts.iter().filter_map(|a| a.metric.clone())),
        )
        .collect();
    let (rules, errors) = rules_for(&suite.alerts, &project.alerts, &named);
    if errors.is_empty() {
        return Ok(rules);
    }
    Err(errors
        .iter()
        .map(|e| {
            let file = if e.origin == "suite" {
                ctx.shown(&suite.source)
            } else {
                project
                    .source
                    .as_deref()
                    .map_or_else(|| "evalwatch.yaml".into(), |p| ctx.shown(p))
            };
            format!("{file}: suite `{}`: {e}", suite.name)
        })
        .collect())
}

/// The configured sinks, or every problem with them.
pub fn project_sinks(project: &ProjectConfig) -> Result<Vec<Sink>, Vec<String>> {
    let mut sinks = Vec::new();
    let mut errors = Vec::new();
    for spec in &project.sinks {
        match sink::parse_sink(spec, &project.root) {
            Ok(s) => sinks.push(s),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(sinks)
    } else {
        Err(errors)
    }
}

/// The project's sinks that parse; each one that does not is a warning (its notices stay
/// queued in the store until it is fixed), never a lost run or a lost alert.
pub(super) fn usable_sinks(ctx: &Ctx, project: &ProjectConfig) -> Vec<Sink> {
    project_sinks(project).unwrap_or_else(|errors| {
        for e in errors {
            ctx.printer.warn(&format!(
                "{e}; alerts are kept in the store until the sink is fixed"
            ));
        }
        project
            .sinks
            .iter()
            .filter_map(|s| sink::parse_sink(s, &project.root).ok())
            .collect()
    })
}

/// The ids of the sinks that take notices of `severity`.
pub(super) fn sink_ids(sinks: &[Sink], severity: crate::model::Severity) -> Vec<String> {
    sinks
        .iter()
        .filter(|s| s.accepts(severity))
        .map(|s| s.id.clone())
        .collect()
}

/// The reports folder as the notices' links give it.
pub(super) fn reports_dir(project: &ProjectConfig) -> String {
    project
        .reports
        .as_ref()
        .map_or_else(|| "reports".into(), |p| p.display().to_string())
}

/// `evalwatch alerts`.
pub fn run(ctx: &Ctx, args: &AlertsArgs) -> anyhow::Result<u8> {
    run_with(ctx, args, &process_env)
}

/// [`run`] with an injected environment lookup.
pub fn run_with(ctx: &Ctx, args: &AlertsArgs, env: Env<'_>) -> anyhow::Result<u8> {
    match &args.command {
        AlertsCommand::Check { paths, fail_on } => check::check(ctx, paths, (*fail_on).into(), env),
        AlertsCommand::List { format } => list::list(ctx, *format),
    }
}
