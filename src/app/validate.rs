//! `evalwatch validate`: every error of every file at once.

use super::{Ctx, Failure, exit, suite_files};
use crate::cli::ValidateArgs;
use crate::suite;

pub fn run(ctx: &Ctx, args: &ValidateArgs) -> anyhow::Result<u8> {
    let project = ctx.project()?;
    let files = suite_files(ctx, &project, &args.paths)?;
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
    // What only other stages can tell: every assertion builds, every case renders.
    let mut problems = Vec::new();
    for suite in &suites {
        if let Some(expr) = &suite.schedule
            && let Err(e) = crate::schedule::Schedule::parse(expr, suite.timezone.as_deref())
        {
            problems.push(format!(
                    "{}: suite `{}`: failed to {e}; fix `schedule:`/`timezone:` (see docs/scheduling.md)",
                    suite.source.display(),
                    suite.name
                ));
        }
        if let Err(e) = super::build_scorer(ctx, suite) {
            problems.push(e.to_string());
        }
        match crate::suite::Renderer::new(suite) {
            Err(d) => problems.push(super::render_diagnostics(ctx, &d)),
            Ok(renderer) => {
                let diags: Vec<crate::suite::Diagnostic> = suite
                    .cases
                    .iter()
                    .filter_map(|case| {
                        renderer
                            .render(case, 0)
                            .err()
                            .map(|message| crate::suite::Diagnostic {
                                location: case.location.clone(),
                                message: format!("case `{}` does not render: {message}", case.id),
                            })
                    })
                    .collect();
                if !diags.is_empty() {
                    problems.push(super::render_diagnostics(
                        ctx,
                        &crate::suite::Diagnostics(diags),
                    ));
                }
            }
        }
    }
    if !problems.is_empty() {
        ctx.printer.result(&problems.join("\n"));
        return Err(Failure::invalid(
            "validate: the suites load, but the problems above stop them from running",
        ));
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
