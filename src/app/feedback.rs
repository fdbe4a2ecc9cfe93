//! `evalwatch feedback import FILE [--source ID] [--from TOOL]`: users' feedback given after
//! the fact, read (pure, `traffic::feedback`, or `traffic::feedback_export` for a Langfuse or
//! LangSmith export), its comments redacted and its users hashed as `ingest` does,
//! then stored in one transaction and counted in its records' buckets (`store::feedback`).

use std::fmt::Write as _;

use anyhow::Context as _;
use serde_json::json;

use super::traffic::ingest::FUTURE_SLACK_SECS;
use super::traffic::{SALT_ENV, pick_source, rules};
use super::{Ctx, Failure, exit};
use crate::cli::ReadFormat;
use crate::cli::feedback::{
    DigestArgs, FeedbackArgs, FeedbackCommand, ImportFeedbackArgs, ScoreScale, ScoreTool,
};
use crate::store::NewFeedback;
use crate::traffic::feedback::{FeedbackError, FeedbackRead, read_csv, read_jsonl, top_terms};
use crate::traffic::feedback_export::{Scale, Tool, read_export};
use crate::traffic::{UserHasher, Vote};

/// How many unreadable rows are shown one by one (all are counted).
const SHOWN_ERRORS: usize = 10;

pub fn run(ctx: &Ctx, args: &FeedbackArgs) -> anyhow::Result<u8> {
    match &args.command {
        FeedbackCommand::Import(a) => import(ctx, a),
        FeedbackCommand::Digest(a) => digest(ctx, a),
    }
}

fn import(ctx: &Ctx, a: &ImportFeedbackArgs) -> anyhow::Result<u8> {
    let project = ctx.project()?;
    let source = pick_source(&project, a.source.as_deref())?;
    let rules = rules(source)?;
    let shown = ctx.shown(&a.file);
    let bytes = std::fs::read(&a.file)
        .map_err(|e| Failure::invalid(format!("feedback import: read {shown}: {e}")))?;
    let is_csv = a
        .file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let mut export = None;
    let mut read = match a.from {
        Some(tool) => {
            let tool = match tool {
                ScoreTool::Langfuse => Tool::Langfuse,
                ScoreTool::Langsmith => Tool::Langsmith,
            };
            if is_csv {
                return Err(Failure::invalid(format!(
                    "feedback import: {shown}: --from {} reads JSONL (one score a line), not CSV",
                    tool.as_str()
                )));
            }
            let scale = match a.scale {
                None | Some(ScoreScale::Thumbs) => Scale::Thumbs,
                Some(ScoreScale::Stars) => Scale::Stars,
            };
            let e = read_export(&bytes, tool, scale, a.name.as_deref(), &rules.redactor).map_err(
                |e| {
                    Failure::invalid(format!(
                        "feedback import: {shown} (a {} export): {e}",
                        tool.as_str()
                    ))
                },
            )?;
            export = Some((tool, e.name, e.skipped_other));
            e.read
        }
        None if is_csv => read_csv(&bytes, &rules.redactor)
            .map_err(|e| Failure::invalid(format!("{shown}:1: {e}")))?,
        None => read_jsonl(&bytes, &rules.redactor),
    };
    refuse_future(&mut read, chrono::Utc::now());
    let users = match rules.mapping.users {
        Some(h) => Some(h),
        None => UserHasher::new(std::env::var(SALT_ENV).unwrap_or_default().as_bytes()),
    };
    if users.is_none()
        && let Some(r) = read.rows.iter().find(|r| r.user.is_some())
    {
        return Err(Failure::invalid(format!(
            "{shown}:{}: `user` is given, and user ids are stored only as salted hashes: set {SALT_ENV} to the salt `ingest` uses; nothing was imported",
            r.line
        )));
    }
    let prepared: Vec<_> = read
        .rows
        .iter()
        .map(|r| {
            (
                r,
                r.comment
                    .as_deref()
                    .map(|c| rules.redactor.apply(c).into_owned()),
                r.user
                    .as_deref()
                    .zip(users.as_ref())
                    .map(|(u, h)| h.hash(u)),
            )
        })
        .collect();
    let rows: Vec<NewFeedback<'_>> = prepared
        .iter()
        .map(|(r, comment, user)| NewFeedback {
            trace_id: &r.trace_id,
            time_ms: r.time.timestamp_millis(),
            raw: &r.feedback.raw,
            vote: r.feedback.vote,
            comment: comment.as_deref(),
            feature: r.feature.as_deref(),
            user_hash: user.as_deref(),
        })
        .collect();
    let mut store = ctx.open_store(&ctx.db_path(&project))?;
    let done = store
        .import_feedback(&source.id, &rows)
        .context("feedback import: store the feedback")?;
    // Votes change windows the source's rules have judged: they judge them again.
    let opened = if done.counted + done.replaced > 0 {
        crate::app::alerts::traffic::evaluate_after_feedback(
            ctx,
            &mut store,
            &project,
            source,
            chrono::Utc::now(),
        )?
        .opened
    } else {
        0
    };
    let unmatched = store.feedback_unmatched(&source.id)?;
    let bad = read.errors.len();
    let skipped_other = export.as_ref().map_or(0, |(_, _, n)| *n);
    if a.format == ReadFormat::Json {
        let errors: Vec<_> = read
            .errors
            .iter()
            .take(SHOWN_ERRORS)
            .map(|e| json!({"at": format!("{shown}:{}", e.line), "reason": e.reason}))
            .collect();
        crate::output::out(
            &json!({
                "source": source.id, "read": rows.len(), "added": done.added,
                "repeated": done.repeated, "counted": done.counted, "replaced": done.replaced,
                "superseded": done.superseded, "waiting": done.waiting,
                "unmatched": unmatched, "unreadable": bad, "errors": errors,
                "from": export.as_ref().map_or("evalwatch", |(t, _, _)| t.as_str()),
                "score_name": export.as_ref().and_then(|(_, n, _)| n.as_deref()),
                "skipped_other_scores": skipped_other,
            })
            .to_string(),
        );
    } else {
        for e in read.errors.iter().take(SHOWN_ERRORS) {
            ctx.printer
                .warn(&format!("{shown}:{}: {}; row skipped", e.line, e.reason));
        }
        if bad > SHOWN_ERRORS {
            ctx.printer.warn(&format!(
                "{shown}: {} more unreadable rows not shown",
                bad - SHOWN_ERRORS
            ));
        }
        let scores = match &export {
            Some((tool, name, _)) => format!(
                " ({} scores{}; {skipped_other} of other names skipped)",
                tool.as_str(),
                name.as_deref()
                    .map_or(String::new(), |n| format!(" named `{n}`"))
            ),
            None => String::new(),
        };
        ctx.printer.result(&format!(
            "feedback import `{}`{scores}: {} read, {} new ({} already imported); {} counted, {} replaced an earlier vote, {} older than the vote that counts, {} waiting for their record; {unmatched} records of this source not ingested yet have feedback; {bad} unreadable",
            source.id,
            rows.len(),
            done.added,
            done.repeated,
            done.counted,
            done.replaced,
            done.superseded,
            done.waiting,
        ));
    }
    Ok(if bad > 0 {
        exit::INCOMPLETE
    } else if opened > 0 {
        exit::GATE
    } else {
        exit::OK
    })
}

/// Rows timed more than [`FUTURE_SLACK_SECS`] after `now` become unreadable rows, as traffic
/// records timed so are: a vote from a clock that is off would count over every real vote
/// after it.
fn refuse_future(read: &mut FeedbackRead, now: chrono::DateTime<chrono::Utc>) {
    let limit = now.timestamp() + FUTURE_SLACK_SECS;
    let (future, rows): (Vec<_>, Vec<_>) = std::mem::take(&mut read.rows)
        .into_iter()
        .partition(|r| r.time.timestamp() > limit);
    read.rows = rows;
    if future.is_empty() {
        return;
    }
    read.errors
        .extend(future.into_iter().map(|r| FeedbackError {
            line: r.line,
            reason: format!(
                "`time` {} is in the future (now is {}; a clock that is off?)",
                r.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        }));
    read.errors.sort_by_key(|e| e.line);
}

/// How many terms and trace ids a digest shows per feature.
const DIGEST_TERMS: usize = 8;
const DIGEST_TRACES: usize = 20;

/// The week's negative feedback (each record's latest vote), grouped by feature, the features
/// with the most complaints first.
fn digest(ctx: &Ctx, a: &DigestArgs) -> anyhow::Result<u8> {
    let project = ctx.project()?;
    let source = pick_source(&project, a.source.as_deref())?;
    let store = ctx.existing_store(&project, "feedback digest")?;
    let now = chrono::Utc::now().timestamp_millis();
    let from = now - 7 * 86_400_000;
    let rows = store.feedback_with_vote(&source.id, Vote::Negative, from, now + 1)?;
    let mut groups: std::collections::BTreeMap<String, Vec<&crate::store::FeedbackRow>> =
        std::collections::BTreeMap::new();
    for r in &rows {
        groups
            .entry(r.feature.clone().unwrap_or_default())
            .or_default()
            .push(r);
    }
    let mut groups: Vec<_> = groups.into_iter().collect();
    groups.sort_by(|x, y| y.1.len().cmp(&x.1.len()).then_with(|| x.0.cmp(&y.0)));
    let shown = |f: &str| {
        if f.is_empty() {
            "(none)".to_owned()
        } else {
            f.to_owned()
        }
    };
    let digested: Vec<_> = groups
        .iter()
        .map(|(feature, rs)| {
            let terms = top_terms(rs.iter().filter_map(|r| r.comment.as_deref()), DIGEST_TERMS);
            (feature, rs, terms)
        })
        .collect();
    if a.format == ReadFormat::Json {
        let features: Vec<_> = digested
            .iter()
            .map(|(feature, rs, terms)| {
                json!({
                    "feature": feature, "negative": rs.len(),
                    "terms": terms.iter().map(|(t, n)| json!({"term": t, "count": n})).collect::<Vec<_>>(),
                    "records": rs.iter().map(|r| json!({
                        "trace_id": r.trace_id, "record_key": r.record_key,
                        "value": r.raw, "comment": r.comment,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        crate::output::out(
            &json!({"source": source.id, "period": "7d", "negative": rows.len(), "features": features})
                .to_string(),
        );
        return Ok(exit::OK);
    }
    let mut out = format!(
        "feedback digest `{}`, last 7 days: {} negative votes\n",
        source.id,
        rows.len()
    );
    for (feature, rs, terms) in &digested {
        let terms: Vec<String> = terms.iter().map(|(t, n)| format!("{t} ({n})")).collect();
        let traces: Vec<&str> = rs
            .iter()
            .take(DIGEST_TRACES)
            .map(|r| r.trace_id.as_str())
            .collect();
        let more = rs.len().saturating_sub(DIGEST_TRACES);
        let _ = write!(
            out,
            "\n{} : {} negative\n  terms: {}\n  traces: {}{}\n",
            shown(feature),
            rs.len(),
            if terms.is_empty() {
                "-".to_owned()
            } else {
                terms.join(", ")
            },
            traces.join(" "),
            if more > 0 {
                format!(" (+{more} more)")
            } else {
                String::new()
            }
        );
    }
    ctx.printer.result(out.trim_end());
    Ok(exit::OK)
}
