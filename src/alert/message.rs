//! Notices: the JSON payload every sink receives (documented in docs/alerts.md) and its
//! human text.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::eval::{Finding, TOP_FLIPS, fmt_value};
use super::rule::{Condition, Rule, severity_str};

/// Where a notice comes from.
#[derive(Debug, Clone, Copy)]
pub struct NoticeContext<'a> {
    pub suite: &'a str,
    /// The run evaluated (None for a missed-run check with no run).
    pub run_id: Option<&'a str>,
    /// The run the episode started with (for an alert: this run).
    pub since_run: Option<&'a str>,
    pub opened_at: &'a str,
    /// RFC 3339 now.
    pub at: &'a str,
    /// The project's reports folder as configured (for links).
    pub reports: &'a str,
    /// The change markers of the hours before the alert started ([`super::changes`]).
    pub marks: &'a [crate::model::Mark],
}

fn headline(rule: &Rule, f: &Finding, suite: &str) -> String {
    let mut place = suite.to_owned();
    if f.provider != "*" {
        place.push('/');
        place.push_str(&f.provider);
    }
    if let Some(t) = &f.tag {
        let _ = write!(place, " [tag {t}]");
    }
    format!("{place}: {}", rule.name)
}

fn links(ctx: &NoticeContext<'_>) -> Value {
    let reports = ctx.reports.trim_end_matches('/');
    json!({
        "run": ctx.run_id.map(|r| format!("{reports}/runs/{r}.html")),
        "trend": format!("{reports}/{}.html", ctx.suite),
    })
}

/// The payload of an `alert` notice. `alert_id` is the store's id of the episode.
#[must_use]
pub fn alert_payload(rule: &Rule, f: &Finding, ctx: &NoticeContext<'_>, alert_id: i64) -> Value {
    let sev = severity_str(rule.severity);
    let head = headline(rule, f, ctx.suite);
    let message = format!("{head}: {}{}", f.detail, related(ctx));
    let mut text = vec![format!("[{}] {message}", sev.to_uppercase())];
    if let Some(r) = ctx.run_id {
        text.push(format!("run {r}"));
    }
    if f.flipped_total > 0 {
        let ids: Vec<String> = f.flipped.iter().take(TOP_FLIPS).map(flip_text).collect();
        let more = f.flipped_total.saturating_sub(ids.len());
        text.push(format!(
            "flipped ({}): {}{}",
            f.flipped_total,
            ids.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ));
    }
    if f.flaky_flipped_total > 0 {
        let ids: Vec<String> = f
            .flaky_flipped
            .iter()
            .take(TOP_FLIPS)
            .map(flip_text)
            .collect();
        let more = f.flaky_flipped_total.saturating_sub(ids.len());
        text.push(format!(
            "known-flaky, not counted ({}): {}{}",
            f.flaky_flipped_total,
            ids.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ));
    }
    if !f.concentration.is_empty() {
        let parts: Vec<String> = f
            .concentration
            .iter()
            .map(|c| {
                format!(
                    "{} {} {} (baseline {})",
                    c.kind,
                    c.name,
                    fmt_value(&rule.metric, c.value),
                    fmt_value(&rule.metric, c.baseline)
                )
            })
            .collect();
        text.push(format!("concentrated in: {}", parts.join("; ")));
    }
    if let Some(rb) = &rule.runbook {
        text.push(format!("runbook: {rb}"));
    }
    let links = links(ctx);
    json!({
        "event": "alert",
        "alert_id": alert_id,
        "suite": ctx.suite,
        "rule": rule.name,
        "metric": rule.metric,
        "condition": condition_json(rule.condition),
        "provider": f.provider,
        "tag": f.tag,
        "severity": sev,
        "baseline": rule.baseline.label(),
        "value": f.value,
        "baseline_value": f.baseline_value,
        "run_id": ctx.run_id,
        "since_run": ctx.since_run,
        "opened_at": ctx.opened_at,
        "at": ctx.at,
        "message": message,
        "text": text.join("\n"),
        "test": f.test,
        "flipped": {"total": f.flipped_total, "cases": f.flipped},
        "flaky_flipped": {"total": f.flaky_flipped_total, "cases": f.flaky_flipped},
        "concentration": f.concentration,
        "marks": super::changes::marks_json(ctx.marks),
        "runbook": rule.runbook,
        "links": links,
    })
}

/// What changed before the alert (`, possibly related to ...`), from its opening time.
#[must_use]
pub fn related(ctx: &NoticeContext<'_>) -> String {
    let started = chrono::DateTime::parse_from_rfc3339(ctx.opened_at)
        .map_or_else(|_| chrono::Utc::now(), |t| t.with_timezone(&chrono::Utc));
    super::changes::related(ctx.marks, started)
}

/// The payload of a `resolved` notice for an episode opened at `ctx.since_run`.
#[must_use]
pub fn resolved_payload(rule: &Rule, f: &Finding, ctx: &NoticeContext<'_>, alert_id: i64) -> Value {
    let head = headline(rule, f, ctx.suite);
    let message = format!("{head}: resolved: {}", f.detail);
    let since = ctx.since_run.map_or_else(String::new, |r| {
        format!(" (open since run {r}, {})", ctx.opened_at)
    });
    json!({
        "event": "resolved",
        "alert_id": alert_id,
        "suite": ctx.suite,
        "rule": rule.name,
        "metric": rule.metric,
        "condition": condition_json(rule.condition),
        "provider": f.provider,
        "tag": f.tag,
        "severity": severity_str(rule.severity),
        "baseline": rule.baseline.label(),
        "value": f.value,
        "baseline_value": f.baseline_value,
        "run_id": ctx.run_id,
        "since_run": ctx.since_run,
        "opened_at": ctx.opened_at,
        "at": ctx.at,
        "message": message,
        "text": format!("[RESOLVED] {message}{since}"),
        "runbook": rule.runbook,
        "links": links(ctx),
    })
}

fn flip_text(f: &super::eval::Flip) -> String {
    if f.sample == 0 {
        f.case_id.clone()
    } else {
        format!("{}#{}", f.case_id, f.sample)
    }
}

fn condition_json(c: Condition) -> Value {
    match c {
        Condition::Drop(v) => json!({"drop": v}),
        Condition::Rise(v) => json!({"rise": v}),
        Condition::Ratio(v) => json!({"ratio": v}),
        Condition::Min(v) => json!({"min": v}),
        Condition::Max(v) => json!({"max": v}),
        Condition::After(d) => json!({"after": super::rule::fmt_duration(d)}),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::alert::eval::{Concentration, Flip, Verdict};
    use crate::alert::rule::parse_rule;

    #[test]
    fn alert_payload_carries_context() {
        let rule = parse_rule(
            &json!({"metric": "pass_rate", "drop": 0.05, "severity": "critical", "runbook": "https://wiki/rb"}),
            &BTreeSet::new(),
        )
        .unwrap();
        let f = Finding {
            verdict: Verdict::Firing,
            provider: "gpt".into(),
            tag: None,
            value: Some(0.8),
            baseline_value: Some(0.9),
            test: None,
            flipped: vec![Flip {
                case_id: "refund".into(),
                sample: 0,
                from: "passed",
                to: "failed",
            }],
            flipped_total: 12,
            flaky_flipped: Vec::new(),
            flaky_flipped_total: 0,
            concentration: vec![Concentration {
                kind: "tag",
                name: "billing".into(),
                value: 0.5,
                baseline: 0.9,
                worse_by: 0.4,
            }],
            known_flaky: Vec::new(),
            detail: "pass_rate 80.0% vs baseline 90.0%".into(),
        };
        let ctx = NoticeContext {
            suite: "faq",
            run_id: Some("r2"),
            since_run: Some("r2"),
            opened_at: "2026-03-02T14:45:00Z",
            at: "2026-03-02T14:45:00Z",
            reports: "reports/",
            marks: &[crate::model::Mark {
                id: 1,
                kind: crate::model::MarkKind::Model,
                text: "gpt a -> b".into(),
                at: "2026-03-02T14:30:00Z".into(),
                feature: None,
                source: None,
                origin: crate::model::MarkOrigin::Auto,
                created_at: "t".into(),
            }],
        };
        let p = alert_payload(&rule, &f, &ctx, 7);
        assert_eq!(p["event"], "alert");
        assert_eq!(p["alert_id"], 7);
        assert_eq!(p["severity"], "critical");
        assert_eq!(p["condition"]["drop"], 0.05);
        assert_eq!(p["flipped"]["total"], 12);
        assert_eq!(p["links"]["run"], "reports/runs/r2.html");
        assert_eq!(p["links"]["trend"], "reports/faq.html");
        let text = p["text"].as_str().unwrap();
        assert!(
            text.starts_with(
                "[CRITICAL] faq/gpt: pass_rate drop 0.05 vs previous: pass_rate 80.0%"
            ),
            "{text}"
        );
        assert!(text.contains("flipped (12): refund and 11 more"), "{text}");
        assert!(
            text.contains("concentrated in: tag billing 50.0% (baseline 90.0%)"),
            "{text}"
        );
        assert!(text.contains("runbook: https://wiki/rb"), "{text}");
        assert!(
            p["message"]
                .as_str()
                .unwrap()
                .ends_with(", possibly related to the model change at 14:30 (gpt a -> b)"),
            "{p}"
        );
        assert_eq!(p["marks"][0]["text"], "gpt a -> b");
        let r = resolved_payload(&rule, &f, &ctx, 7);
        assert_eq!(r["event"], "resolved");
        assert!(
            r["text"]
                .as_str()
                .unwrap()
                .starts_with("[RESOLVED] faq/gpt")
        );
        assert!(r["text"].as_str().unwrap().contains("open since run r2"));
    }
}
