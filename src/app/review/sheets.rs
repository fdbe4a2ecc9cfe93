//! `review list`, `review show` (and `--html`, the page written again).

use std::collections::HashSet;
use std::fmt::Write as _;

use serde_json::json;

use super::{reports_dir, stored_grades, stored_items, write_page};
use crate::app::{Ctx, Failure, exit};
use crate::cli::ReadFormat;
use crate::model::ProjectConfig;
use crate::report::terminal;
use crate::review::sheet::{self, SheetData};
use crate::store::{Store, traffic_item_id};

/// `review show SHEET --html`: the sheet's page written again from the store (after a failed
/// write, a lost file, or a new evalwatch's sheet template).
pub(super) fn rewrite_page(
    ctx: &Ctx,
    project: &ProjectConfig,
    store: &Store,
    sheet_id: &str,
) -> anyhow::Result<u8> {
    let Some(row) = store.sheet(sheet_id)? else {
        return Err(Failure::invalid(format!(
            "show review sheet {sheet_id}: no such sheet (`evalwatch review list --all` shows them)"
        )));
    };
    let items = stored_items(&row)?;
    // The team's grades so far, when there are any (a page from disk is not updated later).
    let grades = stored_grades(store, &row.sheet_id)?;
    let page = sheet::render(&SheetData {
        sheet_id: &row.sheet_id,
        created_at: &row.created_at,
        mac: &row.mac,
        items: &items,
        submit: None,
        grades: (!grades.is_empty()).then_some(grades.as_slice()),
        closed: !row.open,
    });
    let path = reports_dir(project)
        .join("review")
        .join(format!("{}.html", row.sheet_id));
    write_page(&path, &page)?;
    ctx.printer.result(&format!(
        "review sheet {} ({}, {} item(s)): wrote {}",
        row.sheet_id,
        if row.open { "open" } else { "closed" },
        items.len(),
        path.display()
    ));
    Ok(exit::OK)
}

pub(super) fn list(ctx: &Ctx, store: &Store, all: bool, format: ReadFormat) -> anyhow::Result<u8> {
    let sheets = store.sheets(!all)?;
    if format == ReadFormat::Json {
        let v: Vec<serde_json::Value> = sheets
            .iter()
            .map(|s| json!({"sheet_id": s.sheet_id, "created_at": s.created_at,
                            "status": if s.open {"open"} else {"closed"}, "items": s.items, "graded": s.graded}))
            .collect();
        ctx.printer.result(&serde_json::to_string_pretty(&v)?);
        return Ok(exit::OK);
    }
    if sheets.is_empty() {
        ctx.printer.result(if all {
            "no review sheets yet"
        } else {
            "no open review sheets (`--all` shows closed ones)"
        });
        return Ok(exit::OK);
    }
    let mut t = vec![
        ["sheet_id", "created_at", "status", "graded"]
            .map(String::from)
            .to_vec(),
    ];
    for s in &sheets {
        t.push(vec![
            s.sheet_id.clone(),
            s.created_at.clone(),
            if s.open { "open" } else { "closed" }.to_owned(),
            format!("{}/{}", s.graded, s.items),
        ]);
    }
    ctx.printer.result(terminal::table_with(&t, 3).trim_end());
    Ok(exit::OK)
}

pub(super) fn show(
    ctx: &Ctx,
    store: &Store,
    sheet_id: &str,
    format: ReadFormat,
) -> anyhow::Result<u8> {
    let Some(sheet) = store.sheet(sheet_id)? else {
        return Err(Failure::invalid(format!(
            "show review sheet {sheet_id}: no such sheet (`evalwatch review list --all` shows them)"
        )));
    };
    let mut graded = Vec::new();
    store.for_each_graded(None, Some(sheet_id), |g| {
        graded.push(g);
        Ok(())
    })?;
    let traffic = store.traffic_grades(None, Some(sheet_id))?;
    if format == ReadFormat::Json {
        let mut grades: Vec<serde_json::Value> = graded
            .iter()
            .map(|g| {
                json!({
                    "result_id": g.result_id.to_string(), "case_id": g.case_id, "provider": g.provider,
                    "run_id": g.run_id, "reviewer": g.reviewer, "graded_at": g.graded_at,
                    "verdict": if g.grade.pass {"pass"} else {"fail"}, "quality": g.grade.quality,
                    "hallucination": g.grade.hallucination, "note": g.grade.note,
                    "auto_status": g.auto_status, "superseded": g.superseded,
                })
            })
            .collect();
        grades.extend(traffic.iter().map(|g| {
            json!({
                "result_id": traffic_item_id(&g.source, &g.key).to_string(),
                "source": g.source, "key": g.key, "feature": g.feature,
                "reviewer": g.reviewer, "graded_at": g.graded_at,
                "verdict": if g.pass {"pass"} else {"fail"}, "quality": g.quality,
                "hallucination": g.hallucination, "note": g.note,
                "user_vote": g.vote, "user_comment": g.comment, "superseded": g.superseded,
            })
        }));
        ctx.printer.result(&serde_json::to_string_pretty(&json!({
            "sheet_id": sheet.sheet_id, "created_at": sheet.created_at,
            "status": if sheet.open {"open"} else {"closed"}, "items": sheet.items.len(),
            "grades": grades,
        }))?);
        return Ok(exit::OK);
    }
    let done: HashSet<i64> = graded
        .iter()
        .map(|g| g.result_id)
        .chain(traffic.iter().map(|g| traffic_item_id(&g.source, &g.key)))
        .collect();
    ctx.printer.result(&format!(
        "review sheet {} ({}): {}/{} item(s) graded",
        sheet.sheet_id,
        if sheet.open { "open" } else { "closed" },
        sheet
            .items
            .iter()
            .filter(|(id, _, _)| done.contains(id))
            .count(),
        sheet.items.len()
    ));
    for g in &graded {
        let mut line = format!(
            "  {} [{}] run {}: {} (auto {})",
            g.case_id,
            g.provider,
            g.run_id,
            if g.grade.pass { "pass" } else { "fail" },
            g.auto_status.as_str()
        );
        if let Some(q) = g.grade.quality {
            let _ = write!(line, ", quality {q}");
        }
        if let Some(h) = g.grade.hallucination {
            line.push_str(if h {
                ", hallucination"
            } else {
                ", no hallucination"
            });
        }
        let _ = write!(line, " by {}", g.reviewer);
        if g.superseded > 0 {
            let _ = write!(line, " ({} earlier grade(s) kept)", g.superseded);
        }
        if !g.grade.note.is_empty() {
            let _ = write!(line, ": {}", g.grade.note.replace('\n', " "));
        }
        ctx.printer.result(&line);
    }
    for g in &traffic {
        let mut line = format!(
            "  record {} of {}: {} (user {})",
            g.key,
            g.source,
            if g.pass { "pass" } else { "fail" },
            g.vote.as_deref().unwrap_or("gave no vote")
        );
        if let Some(q) = g.quality {
            let _ = write!(line, ", quality {q}");
        }
        let _ = write!(line, " by {}", g.reviewer);
        if !g.note.is_empty() {
            let _ = write!(line, ": {}", g.note.replace('\n', " "));
        }
        ctx.printer.result(&line);
    }
    Ok(exit::OK)
}
