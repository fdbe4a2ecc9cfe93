//! `evalwatch feedback import FILE [--source ID]`: users' feedback given after the fact, read
//! (pure, `traffic::feedback`), its comments redacted and its users hashed as `ingest` does,
//! then stored in one transaction and counted in its records' buckets (`store::feedback`).

use anyhow::Context as _;
use serde_json::json;

use super::traffic::{SALT_ENV, pick_source, rules};
use super::{Ctx, Failure, exit};
use crate::cli::ReadFormat;
use crate::cli::feedback::{FeedbackArgs, FeedbackCommand, ImportFeedbackArgs};
use crate::store::NewFeedback;
use crate::traffic::UserHasher;
use crate::traffic::feedback::{read_csv, read_jsonl};

/// How many unreadable rows are shown one by one (all are counted).
const SHOWN_ERRORS: usize = 10;

pub fn run(ctx: &Ctx, args: &FeedbackArgs) -> anyhow::Result<u8> {
    match &args.command {
        FeedbackCommand::Import(a) => import(ctx, a),
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
    let read = if is_csv {
        read_csv(&bytes).map_err(|e| Failure::invalid(format!("{shown}:1: {e}")))?
    } else {
        read_jsonl(&bytes)
    };
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
    let unmatched = store.feedback_unmatched(&source.id)?;
    let bad = read.errors.len();
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
        ctx.printer.result(&format!(
            "feedback import `{}`: {} read, {} new ({} already imported); {} counted, {} replaced an earlier vote, {} older than the vote that counts, {} waiting for their record; {unmatched} records of this source not ingested yet have feedback; {bad} unreadable",
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
    Ok(if bad > 0 { exit::INCOMPLETE } else { exit::OK })
}
