//! `evalwatch validate`: every error of every file at once.

use super::{Ctx, Failure, exit, suite_files};
use crate::cli::ValidateArgs;
use crate::suite;

pub fn run(ctx: &Ctx, args: &ValidateArgs) -> anyhow::Result<u8> {
    let project = ctx.project()?;
    let files = suite_files(ctx, &project, &args.paths)?;
    if files.is_empty() {
        return Err(Failure::invalid(
            "find suites: no *.yaml files in the given paths; create one with `evalwatch init` or name a suite file",
        ));
    }
    let (suites, diags) = suite::load_suites(&files, &project);
    if !diags.is_empty() {
        ctx.printer.result(&super::render_diagnostics(ctx, &diags));
        let n = diags.0.len();
        return Err(Failure::invalid(format!(
            "validate: {n} problem{} in {} file{}",
            if n == 1 { "" } else { "s" },
            files.len(),
            if files.len() == 1 { "" } else { "s" }
        )));
    }
    let cases: usize = suites.iter().map(|s| s.cases.len()).sum();
    let providers: std::collections::BTreeSet<&str> = suites
        .iter()
        .flat_map(|s| s.providers.iter().map(|p| p.id.as_str()))
        .collect();
    ctx.printer.result(&format!(
        "ok: {} suite{}, {cases} case{}, {} provider{}",
        suites.len(),
        if suites.len() == 1 { "" } else { "s" },
        if cases == 1 { "" } else { "s" },
        providers.len(),
        if providers.len() == 1 { "" } else { "s" },
    ));
    Ok(exit::OK)
}
