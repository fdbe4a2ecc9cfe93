//! The run's output: the chosen format (text, json, junit) for every run, printed or
//! written to `--out`, results read back from the store (never held in memory); and the
//! output of a dry run.

use std::io::Write;

use anyhow::Context as _;

use crate::model::{CaseStatus, Suite};
use crate::plan;
use crate::report::junit::JunitWriter;
use crate::report::machine::{JsonRunWriter, header};
use crate::report::{self, RunView, terminal};
use crate::store::Store;
use crate::suite::Renderer;

use super::super::{Ctx, Failure, exit};
use super::Done;
use super::settings::{Output, RunSettings};

/// Print or write the chosen format for every run.
pub(super) fn emit(
    ctx: &Ctx,
    store: &Store,
    settings: &RunSettings,
    runs: &[Done],
) -> anyhow::Result<()> {
    if settings.output == Output::Text && settings.out.is_none() {
        return text(ctx, store, runs);
    }
    let mut sink: Box<dyn Write> = match &settings.out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?,
        )),
        None => Box::new(crate::output::stdout_writer()),
    };
    write_format(&mut sink, store, settings.output, runs)?;
    sink.flush()?;
    drop(sink);
    if settings.out.is_some() {
        text(ctx, store, runs)?;
    }
    Ok(())
}

/// `--out PATH` can be written, checked before anything runs (a usage error, exit 2): an
/// existing file is opened for appending (left as it is), a new one created and removed.
pub(super) fn check_out(path: &std::path::Path) -> anyhow::Result<()> {
    let refuse = |why: String| {
        Failure::invalid(format!(
            "--out {}: {why}; nothing was run (give a file in a directory that exists and can be written)",
            path.display()
        ))
    };
    if path.is_dir() {
        return Err(refuse("it is a directory".into()));
    }
    let opened = if path.exists() {
        std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map(drop)
    } else {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .and_then(|f| {
                drop(f);
                std::fs::remove_file(path)
            })
    };
    opened.map_err(|e| refuse(format!("cannot create it: {e}")))
}

/// The text output: a summary per run and what did not pass (-q: one verdict line per run).
fn text(ctx: &Ctx, store: &Store, runs: &[Done]) -> anyhow::Result<()> {
    let verbosity = ctx.printer.verbosity;
    for d in runs {
        let view = view_of(d);
        // -q: one verdict line per run; problems (warnings, errors) still go to stderr.
        if verbosity == crate::output::Verbosity::Quiet {
            ctx.printer.result(&verdict_line(d, &view));
            continue;
        }
        ctx.printer.result(
            terminal::summary(&view, verbosity == crate::output::Verbosity::Verbose).trim_end(),
        );
        if d.failures.is_empty() {
            continue;
        }
        ctx.printer.info(&format!(
            "not passed ({}):",
            d.failures.len() + d.more_failures
        ));
        if verbosity == crate::output::Verbosity::Verbose && d.more_failures > 0 {
            // -v lists every one, read back from the store (never held in memory).
            store.for_each_result(&d.info.run_id, |rec| {
                if rec.status != CaseStatus::Passed {
                    ctx.printer.info(&terminal::failure_line(&rec));
                }
                Ok(())
            })?;
            continue;
        }
        for f in &d.failures {
            ctx.printer.info(f);
        }
        if d.more_failures > 0 {
            ctx.printer.info(&format!(
                "  ... and {} more: `evalwatch show {}` (or -v) lists them",
                d.more_failures, d.info.run_id
            ));
        }
    }
    Ok(())
}

/// A run's verdict with the alerts it fired, on one line.
fn verdict_line(d: &Done, view: &RunView<'_>) -> String {
    let mut line = terminal::verdict_line(view);
    if let Some(filter) = &d.info.filter {
        line = format!("{line}; filtered ({filter}): no alert rule evaluated");
    }
    for a in &d.alerts {
        line = format!(
            "{line}; alert {} ({}, {})",
            a["rule"].as_str().unwrap_or("?"),
            a["severity"].as_str().unwrap_or("?"),
            if a["new"].as_bool() == Some(true) {
                "new"
            } else {
                "still open"
            }
        );
    }
    line
}

/// Write `output` for every run into `sink`.
fn write_format(
    sink: &mut dyn Write,
    store: &Store,
    output: Output,
    runs: &[Done],
) -> anyhow::Result<()> {
    let output_error =
        |e: std::io::Error| crate::store::StoreError::Other(format!("write output: {e}"));
    match output {
        Output::Text => {
            for d in runs {
                writeln!(sink, "{}", terminal::summary(&view_of(d), true).trim_end())?;
                for f in &d.failures {
                    writeln!(sink, "{f}")?;
                }
            }
        }
        Output::Json => {
            for d in runs {
                let view = view_of(d);
                let mut w = JsonRunWriter::begin(&mut *sink, &header(&view, &d.alerts))?;
                store.for_each_result(&d.info.run_id, |rec| w.case(&rec).map_err(output_error))?;
                w.end()?;
            }
        }
        Output::Junit => {
            let mut w = JunitWriter::begin(&mut *sink)?;
            for d in runs {
                w.suite(&view_of(d))?;
                store.for_each_result(&d.info.run_id, |rec| {
                    w.case(&d.info.suite, &rec).map_err(output_error)
                })?;
                w.end_suite()?;
            }
            w.end()?;
        }
    }
    Ok(())
}

fn view_of(d: &Done) -> RunView<'_> {
    report::RunView {
        info: &d.info,
        metrics: &d.metrics,
        gates: &d.gates,
        wall_secs: Some(d.wall_secs),
    }
}

/// Plan and render every job of `suites`, call nothing, store nothing. The plan is printed as
/// text, or with `--format json` as one object per suite (to `--out` when given, the text then
/// on stdout).
pub(super) fn dry_run(ctx: &Ctx, suites: &[Suite], settings: &RunSettings) -> anyhow::Result<u8> {
    if settings.output == Output::Junit {
        return Err(Failure::invalid(
            "a dry run prints its plan as text or json (`--format text|json`); JUnit has no form for a plan",
        ));
    }
    let json = settings.output == Output::Json;
    if settings.out.is_some() && !json {
        return Err(Failure::invalid(
            "a dry run writes to `--out` only its json plan: add `--format json`, or drop `--out`",
        ));
    }
    let mut sink: Option<Box<dyn Write>> = match (&settings.out, json) {
        (Some(path), true) => Some(Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?,
        ))),
        (None, true) => Some(Box::new(crate::output::stdout_writer())),
        _ => None,
    };
    for suite in suites {
        let jobs =
            plan::plan(suite, &settings.filters).map_err(|e| Failure::invalid(e.to_string()))?;
        let renderer = Renderer::new(suite)
            .map_err(|d| Failure::invalid(super::super::render_diagnostics(ctx, &d)))?;
        let mut first = None;
        for job in &jobs {
            let request = renderer
                .render(&suite.cases[job.case_index], job.sample)
                .map_err(|e| Failure::invalid(format!("render case `{}`: {e}", job.case_id)))?;
            if first.is_none() {
                first = Some(request.prompt_text());
            }
        }
        // What the plan holds, in plan order: the filters may leave some cases and providers out.
        let mut cases: Vec<&str> = Vec::new();
        let mut providers: Vec<&str> = Vec::new();
        for job in &jobs {
            if !cases.contains(&job.case_id.as_str()) {
                cases.push(&job.case_id);
            }
            if !providers.contains(&job.provider_id.as_str()) {
                providers.push(&job.provider_id);
            }
        }
        if let Some(out) = sink.as_mut() {
            let plan = serde_json::json!({
                "suite": suite.name,
                "dry_run": true,
                "cases": cases.len(),
                "providers": providers,
                "jobs": jobs
                    .iter()
                    .map(|j| serde_json::json!({
                        "case_id": j.case_id,
                        "provider": j.provider_id,
                        "sample": j.sample,
                    }))
                    .collect::<Vec<_>>(),
                "first_prompt": jobs.first().zip(first.as_ref()).map(|(j, p)| serde_json::json!({
                    "case_id": j.case_id,
                    "provider": j.provider_id,
                    "prompt": p,
                })),
            });
            writeln!(out, "{plan}")?;
            if settings.out.is_none() {
                continue;
            }
        }
        ctx.printer.result(&format!(
            "{}: {} job{} ({} case{} x providers [{}]); every prompt rendered, nothing called or stored",
            suite.name,
            jobs.len(),
            if jobs.len() == 1 { "" } else { "s" },
            cases.len(),
            if cases.len() == 1 { "" } else { "s" },
            providers.join(", ")
        ));
        if let (Some(p), Some(job)) = (first, jobs.first()) {
            ctx.printer
                .info(&format!("first prompt ({}):\n{p}", job.case_id));
        }
    }
    if let Some(mut out) = sink {
        out.flush()?;
    }
    Ok(exit::OK)
}
