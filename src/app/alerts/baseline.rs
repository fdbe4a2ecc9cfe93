//! `evalwatch baseline pin`.

use chrono::Utc;

use super::now_rfc3339;
use crate::app::{Ctx, Failure, exit};
use crate::cli::alerts::{BaselineArgs, BaselineCommand};
use crate::model::RunStatus;

/// `evalwatch baseline pin RUN`: bless a complete run as its suite's baseline.
pub fn baseline(ctx: &Ctx, args: &BaselineArgs) -> anyhow::Result<u8> {
    let BaselineCommand::Pin { run_id } = &args.command;
    let project = ctx.project()?;
    let mut store = ctx.existing_store(&project, "pin a baseline")?;
    let info = store
        .run(run_id)
        .map_err(|e| Failure::invalid(e.to_string()))?
        .ok_or_else(|| {
            Failure::invalid(format!(
                "pin run {run_id}: no such run; `evalwatch runs` lists them"
            ))
        })?;
    if info.status != RunStatus::Complete {
        return Err(Failure::invalid(format!(
            "pin run {}: it is {}, only a complete run can be a baseline",
            info.run_id,
            info.status.as_str()
        )));
    }
    if let Some(filter) = &info.filter {
        return Err(Failure::invalid(format!(
            "pin run {}: it is filtered ({filter}), a spot check of part of the suite; pin a run of the whole suite",
            info.run_id
        )));
    }
    store.pin_baseline(&info.suite, &info.run_id, &now_rfc3339(Utc::now()))?;
    ctx.printer.result(&format!(
        "run {} is now the pinned baseline of suite `{}` (rules with `baseline: pinned`)",
        info.run_id, info.suite
    ));
    Ok(exit::OK)
}
