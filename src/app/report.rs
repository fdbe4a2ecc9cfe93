//! `evalwatch report`, `compare` and `export`, and the report refresh at the end of `run`.

use clap::Args;

use super::{Ctx, Failure};
use crate::model::ProjectConfig;
use crate::store::Store;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Window of history to chart (e.g. 24h, 7d, 30d, 90d, all)
    #[arg(long, default_value = "30d")]
    pub since: String,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The earlier run (a unique prefix is enough)
    pub run_a: String,
    /// The later run
    pub run_b: String,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// json, csv, junit or prometheus
    #[arg(long)]
    pub format: String,
}

/// Refresh the reports of the suites `run` just ran (unless `--no-reports`).
pub fn after_run(
    ctx: &Ctx,
    store: &Store,
    project: &ProjectConfig,
    suites: &[String],
) -> anyhow::Result<()> {
    let _ = (ctx, store, project, suites);
    Ok(())
}

pub fn report(ctx: &Ctx, args: &ReportArgs) -> anyhow::Result<u8> {
    let _ = (ctx, args);
    Err(Failure::invalid(
        "report: not available in this version yet",
    ))
}

pub fn compare(ctx: &Ctx, args: &CompareArgs) -> anyhow::Result<u8> {
    let _ = (ctx, args);
    Err(Failure::invalid(
        "compare: not available in this version yet",
    ))
}

pub fn export(ctx: &Ctx, args: &ExportArgs) -> anyhow::Result<u8> {
    let _ = (ctx, args);
    Err(Failure::invalid(
        "export: not available in this version yet",
    ))
}
