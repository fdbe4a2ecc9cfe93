//! `evalwatch validate`: every error of every file at once, and the one judgement of a suite
//! that `run`, `schedule` and `alerts check` share.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::{Ctx, Failure, exit, suite_files_if_any};
use crate::cli::validate::ValidateArgs;
use crate::model::{ProjectConfig, Suite};
use crate::suite;

/// One suite file, judged.
pub(crate) struct Judged {
    pub file: PathBuf,
    /// The suite, or every problem with it, one per line as `file:line:col: message` with
    /// paths shown as given (relative to the working directory).
    pub suite: Result<Suite, String>,
}

/// Judge each suite file on its own, as `validate` does: the loader's checks (fields,
/// includes, templates, alert rules, schedule and time zone, against the project config),
/// then what only the scorer and the renderer can tell (every assertion builds, every case
/// renders). One bad file never hides the others: the scheduler runs the good ones and
/// reports the rest.
pub(crate) fn judge(ctx: &Ctx, project: &ProjectConfig, files: &[PathBuf]) -> Vec<Judged> {
    suite::load_each(files, project)
        .into_iter()
        .map(
            |suite::Judged {
                 file,
                 suite: loaded,
             }| {
                let suite = match loaded {
                    Err(diags) => Err(super::render_diagnostics(ctx, &diags)),
                    Ok(suite) => match runnable(ctx, &suite) {
                        Some(problems) => Err(problems),
                        None => Ok(suite),
                    },
                };
                Judged { file, suite }
            },
        )
        .collect()
}

/// What stops a loaded suite from running, rendered; None when nothing does.
fn runnable(ctx: &Ctx, suite: &Suite) -> Option<String> {
    let mut problems = Vec::new();
    if let Err(e) = super::build_scorer(ctx, suite) {
        problems.push(e.to_string());
    }
    match suite::Renderer::new(suite) {
        Err(d) => problems.push(super::render_diagnostics(ctx, &d)),
        Ok(renderer) => {
            let diags: Vec<suite::Diagnostic> = suite
                .cases
                .iter()
                .filter_map(|case| {
                    renderer
                        .render(case, 0)
                        .err()
                        .map(|message| suite::Diagnostic {
                            location: case.location.clone(),
                            message: format!("case `{}` does not render: {message}", case.id),
                        })
                })
                .collect();
            if !diags.is_empty() {
                problems.push(super::render_diagnostics(ctx, &suite::Diagnostics(diags)));
            }
        }
    }
    (!problems.is_empty()).then(|| problems.join("\n"))
}

pub fn run(ctx: &Ctx, args: &ValidateArgs) -> anyhow::Result<u8> {
    let project = ctx.project()?;
    // A project that only watches traffic has no suites: its sources were judged with the
    // project config above (fields, formats, redaction, monitor, alert rules).
    let files = suite_files_if_any(ctx, &project, &args.paths)?;
    let judged = judge(ctx, &project, &files);
    // Valid as written, but not runnable here yet: said, without failing.
    let mut warnings = suite::env_warnings(&files, &project);
    warnings.extend(super::traffic::pointer_warnings(&project));
    for line in super::render_diagnostics(ctx, &suite::Diagnostics(warnings)).lines() {
        ctx.printer.warn(line);
    }
    let problems: Vec<&str> = judged
        .iter()
        .filter_map(|j| j.suite.as_ref().err().map(String::as_str))
        .collect();
    if !problems.is_empty() {
        let text = problems.join("\n");
        ctx.printer.result(&text);
        let n = text.lines().filter(|l| !l.trim().is_empty()).count();
        let bad = problems.len();
        return Err(Failure::invalid(format!(
            "validate: {n} problem{} in {bad} of {} file{}",
            if n == 1 { "" } else { "s" },
            files.len(),
            if files.len() == 1 { "" } else { "s" }
        )));
    }
    for j in &judged {
        ctx.printer.detail(&format!("{}: ok", ctx.shown(&j.file)));
    }
    let suites: Vec<&Suite> = judged
        .iter()
        .filter_map(|j| j.suite.as_ref().ok())
        .collect();
    let cases: usize = suites.iter().map(|s| s.cases.len()).sum();
    let providers: std::collections::BTreeSet<&str> = suites
        .iter()
        .flat_map(|s| s.providers.iter().map(|p| p.id.as_str()))
        .collect();
    let plural = |n: usize, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
    let mut said = if files.is_empty() {
        "ok: no suites (no suites/ folder)".to_owned()
    } else {
        format!(
            "ok: {}, {}, {}",
            plural(suites.len(), "suite"),
            plural(cases, "case"),
            plural(providers.len(), "provider")
        )
    };
    if !project.traffic.is_empty() {
        let monitors: usize = project.traffic.iter().map(|s| s.monitor.len()).sum();
        let rules: usize = project.traffic.iter().map(|s| s.alerts.len()).sum();
        let _ = write!(
            said,
            "; {} ({}, {})",
            plural(project.traffic.len(), "traffic source"),
            plural(monitors, "monitor assertion"),
            plural(rules, "alert rule")
        );
        for s in &project.traffic {
            ctx.printer
                .detail(&format!("{}: traffic source `{}`: ok", s.location, s.id));
        }
    }
    ctx.printer.result(&said);
    Ok(exit::OK)
}
