//! `evalwatch alerts` and `evalwatch baseline`, and the alert step of `run`.

use clap::{Args, Subcommand};

use super::{Ctx, Failure};
use crate::cli::Severity;
use crate::model::{ProjectConfig, ProviderMetrics, RunInfo, Suite};
use crate::store::Store;

#[derive(Debug, Args)]
pub struct AlertsArgs {
    #[command(subcommand)]
    pub command: AlertsCommand,
}

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Evaluate every suite's alert rules (missed runs included) and notify the sinks
    Check {
        /// Suite files or folders [default: suites/]
        paths: Vec<std::path::PathBuf>,
        /// Exit 1 when an alert at or above this severity is open
        #[arg(long, value_enum, default_value_t = Severity::Critical)]
        fail_on: Severity,
    },
    /// Open and recent alerts
    List,
}

#[derive(Debug, Args)]
pub struct BaselineArgs {
    #[command(subcommand)]
    pub command: BaselineCommand,
}

#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// Bless a run as the baseline of its suite
    Pin {
        /// Run id (a unique prefix is enough)
        run_id: String,
    },
}

/// What the alert step of `run` found, for the machine output and the exit code.
#[derive(Debug, Default)]
pub struct AlertOutcome {
    /// Alerts fired by this run, as the spec's machine-output objects.
    pub alerts: Vec<serde_json::Value>,
    /// Whether one is at or above `--fail-on`.
    pub fail: bool,
}

/// The alert step of `run`, after the run is stored: evaluate the suite's rules against its
/// baselines, record state, notify sinks (queueing what cannot be delivered).
pub fn after_run(
    ctx: &Ctx,
    store: &mut Store,
    project: &ProjectConfig,
    suite: &Suite,
    info: &RunInfo,
    metrics: &[ProviderMetrics],
    fail_on: Severity,
) -> anyhow::Result<AlertOutcome> {
    let _ = (ctx, store, project, suite, info, metrics, fail_on);
    Ok(AlertOutcome::default())
}

pub fn run(ctx: &Ctx, args: &AlertsArgs) -> anyhow::Result<u8> {
    let _ = (ctx, args);
    Err(Failure::invalid(
        "alerts: not available in this version yet",
    ))
}

pub fn baseline(ctx: &Ctx, args: &BaselineArgs) -> anyhow::Result<u8> {
    let _ = (ctx, args);
    Err(Failure::invalid(
        "baseline: not available in this version yet",
    ))
}
