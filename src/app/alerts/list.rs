//! `alerts list`: open and recent alerts, and what is still queued per sink.

use chrono::Utc;
use serde_json::{Value, json};

use super::now_rfc3339;
use crate::app::{Ctx, exit};
use crate::cli::ReadFormat;
use crate::store::AlertRow;

/// How far back `alerts list` shows resolved alerts.
const RECENT_DAYS: i64 = 7;

fn row_json(a: &AlertRow) -> Value {
    json!({
        "alert_id": a.id, "suite": a.suite, "rule": a.rule, "metric": a.metric,
        "provider": a.provider, "tag": a.tag, "severity": a.severity,
        "state": if a.resolved_at.is_some() { "resolved" } else { "open" },
        "opened_at": a.opened_at, "opened_run": a.opened_run, "last_seen_at": a.last_seen_at,
        "last_run": a.last_run, "value": a.value, "baseline_value": a.baseline_value,
        "message": a.message, "resolved_at": a.resolved_at, "resolved_run": a.resolved_run,
    })
}

pub(super) fn list(ctx: &Ctx, format: ReadFormat) -> anyhow::Result<u8> {
    let project = ctx.project()?;
    let store = ctx.existing_store(&project, "list alerts")?;
    let since = now_rfc3339(Utc::now() - chrono::Duration::days(RECENT_DAYS));
    let rows = store.recent_alerts(&since, 200)?;
    let pending = store.pending_by_sink()?;
    // What each traffic rule made of its last window: a rule that is not judging (too
    // little data) is said, not left as a silent gap.
    let mut verdicts = Vec::new();
    for source in &project.traffic {
        for (rule, until, verdict) in store.traffic_alert_verdicts(&source.id)? {
            verdicts.push((
                super::traffic::alert_suite(&source.id),
                rule,
                until,
                verdict,
            ));
        }
    }
    if format == ReadFormat::Json {
        let out = json!({
            "alerts": rows.iter().map(row_json).collect::<Vec<_>>(),
            "pending": pending.iter().map(|b| json!({
                "sink": b.sink, "notices": b.notices, "last_error": b.last_error,
                "next_attempt_at": b.next_attempt_at,
            })).collect::<Vec<_>>(),
            "traffic_rules": verdicts.iter().map(|(suite, rule, until, verdict)| json!({
                "suite": suite, "rule": rule, "judged_until": until, "last_window": verdict,
            })).collect::<Vec<_>>(),
        });
        ctx.printer.result(&serde_json::to_string_pretty(&out)?);
        return Ok(exit::OK);
    }
    if rows.is_empty() {
        ctx.printer.result(&format!(
            "no open alerts, none in the last {RECENT_DAYS} days"
        ));
    }
    for a in &rows {
        let state = match (&a.resolved_at, &a.resolved_run) {
            (None, _) => format!("OPEN since {}", a.opened_at),
            (Some(t), Some(r)) => format!("resolved {t} (run {r})"),
            (Some(t), None) => format!("resolved {t}"),
        };
        ctx.printer.result(&format!(
            "[{}] {} — {state}\n    {}",
            a.severity, a.rule, a.message
        ));
    }
    for (suite, rule, _, verdict) in &verdicts {
        ctx.printer
            .result(&format!("{suite}: rule `{rule}`, last {verdict}"));
    }
    for b in &pending {
        let why = b
            .last_error
            .as_deref()
            .map_or_else(String::new, |e| format!("; last error: {e}"));
        let when = b.next_attempt_at.as_deref().map_or_else(
            || "the next `run` or `alerts check`".to_owned(),
            |t| format!("`run` from {t}, `alerts check` at once"),
        );
        ctx.printer.result(&format!(
            "sink `{}`: {} notice(s) not yet delivered{why} (retried by {when})",
            b.sink, b.notices
        ));
    }
    Ok(exit::OK)
}
