//! `evalwatch review`: sample results into a sheet, import the grades a sheet exports, serve
//! open sheets on loopback, and show agreement of human and automatic verdicts.
//!
//! The files: `sample`, `grades` (import, and what `serve` receives), `serve`, `stats`,
//! `sheets` (list, show), `traffic` (`sample --from traffic:ID`).

mod grades;
mod sample;
mod serve;
mod sheets;
mod stats;
mod traffic;

use std::path::{Path, PathBuf};

use super::{Ctx, Failure, exit};
use crate::cli::review::{ReviewArgs, ReviewCommand};
use crate::model::ProjectConfig;
use crate::review::ReviewError;
use crate::review::sheet::{SheetItem, StoredGrade};
use crate::store::Store;

/// The full id of the sheet a (prefix of an) id names, or exit 2.
fn resolve_sheet(store: &Store, verb: &str, id: &str) -> anyhow::Result<String> {
    store.resolve_sheet(id)?.ok_or_else(|| {
        Failure::invalid(format!(
            "{verb} review sheet {id}: no such sheet (`evalwatch review list --all` shows them)"
        ))
    })
}

/// The items of a stored sheet, as its page shows them.
fn stored_items(row: &crate::store::SheetRow) -> anyhow::Result<Vec<SheetItem>> {
    let mut items = Vec::with_capacity(row.items.len());
    for (id, _, json) in &row.items {
        items.push(serde_json::from_str::<SheetItem>(json).map_err(|e| {
            anyhow::anyhow!(
                "read item {id} of review sheet {}: it is not valid: {e}",
                row.sheet_id
            )
        })?);
    }
    Ok(items)
}

/// Every reviewer's current grade of a sheet's items, as its page shows them.
fn stored_grades(store: &Store, sheet_id: &str) -> anyhow::Result<Vec<StoredGrade>> {
    Ok(store
        .sheet_grades(sheet_id)?
        .into_iter()
        .map(|g| StoredGrade {
            result_id: g.grade.result_id.to_string(),
            reviewer: g.reviewer,
            graded_at: g.graded_at,
            verdict: if g.grade.pass { "pass" } else { "fail" },
            quality: g.grade.quality,
            hallucination: g.grade.hallucination,
            note: g.grade.note,
        })
        .collect())
}

/// `evalwatch review`.
pub fn run(ctx: &Ctx, args: &ReviewArgs) -> anyhow::Result<u8> {
    let project = ctx.project()?;
    let mut store = ctx.existing_store(&project, "read history")?;
    match &args.command {
        ReviewCommand::Sample {
            from: Some(from),
            since,
            window,
            n,
            seed,
            ..
        } => traffic::sample(
            ctx,
            &project,
            &mut store,
            &traffic::TrafficSampleSettings {
                from,
                since: since.as_deref().or(window.as_deref()),
                n: *n,
                seed: *seed,
            },
        ),
        ReviewCommand::Sample {
            run,
            since,
            window,
            suite,
            n,
            seed,
            from: None,
        } => {
            if let Some(suite) = suite {
                crate::app::report::suite_in_history(&store, suite, "review sample")?;
            }
            sample::sample(
                ctx,
                &project,
                &mut store,
                &sample::SampleSettings {
                    run: run.as_deref(),
                    since: since.as_deref().or(window.as_deref()),
                    suite: suite.as_deref(),
                    n: *n,
                    seed: *seed,
                },
            )
        }
        ReviewCommand::Import { file } => grades::import(ctx, &mut store, file),
        ReviewCommand::Serve { addr } => serve::serve_sheets(ctx, store, addr),
        ReviewCommand::Stats {
            suite,
            from,
            format,
        } => {
            if let Some(from) = from {
                let source = traffic::source_of(&project, from)?;
                return stats::stats(ctx, &store, &stats::Only::Traffic(&source.id), *format);
            }
            if let Some(suite) = suite {
                crate::app::report::suite_in_history(&store, suite, "review stats")?;
            }
            stats::stats(ctx, &store, &stats::Only::Suite(suite.as_deref()), *format)
        }
        ReviewCommand::List { all, format } => sheets::list(ctx, &store, *all, *format),
        ReviewCommand::Show {
            sheet_id,
            format,
            html,
        } => {
            let sheet_id = resolve_sheet(&store, "show", sheet_id)?;
            if *html {
                sheets::rewrite_page(ctx, &project, &store, &sheet_id)
            } else {
                sheets::show(ctx, &store, &sheet_id, *format)
            }
        }
        ReviewCommand::Close { sheet_id } => {
            let sheet_id = resolve_sheet(&store, "close", sheet_id)?;
            if !store.close_sheet(&sheet_id)? {
                return Err(Failure::invalid(format!(
                    "close review sheet {sheet_id}: no such sheet (`evalwatch review list --all` shows them)"
                )));
            }
            ctx.printer
                .result(&format!("closed review sheet {sheet_id}"));
            Ok(exit::OK)
        }
    }
}

/// The reports folder, where sheets are written (under `review/`).
fn reports_dir(project: &ProjectConfig) -> PathBuf {
    match &project.reports {
        Some(p) if p.is_absolute() => p.clone(),
        Some(p) => project.root.join(p),
        None => project.root.join("reports"),
    }
}

/// Write a sheet's page, whole or not at all.
fn write_page(path: &Path, page: &str) -> Result<(), ReviewError> {
    let err = |source| ReviewError::Write {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    // Whole or not at all: a page cut short by a full disk would lose grades typed into it.
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(path.file_name().unwrap_or_default());
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    std::fs::write(&tmp, page)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            err(e)
        })
}
