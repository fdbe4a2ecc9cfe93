//! The `unschedulable` alert: a suite the scheduler cannot schedule misses every window, so
//! it pages once (critical) until it is fixed, and resolves once when it is.

use chrono::Utc;

use super::judge::{Judgement, Unschedulable};
use crate::alert::rule::severity_str;
use crate::app::Ctx;
use crate::app::alerts::{flush_queue, reports_dir, usable_sinks};
use crate::model::Severity as Level;
use crate::store::{AlertRow, NewAlert, Store};

/// The rule name (and metric) of the alert a suite that cannot be scheduled raises.
pub const UNSCHEDULABLE: &str = "unschedulable";

/// Open an `unschedulable` alert (critical: every window it misses is a missed run) for each
/// invalid suite that has none open, and resolve those of suites that are valid again; the
/// notices go to the project's sinks at once (and stay queued when a sink is down). Returns
/// the suites that recovered.
pub(super) fn sync_unschedulable(
    ctx: &Ctx,
    store: &mut Store,
    judged: &Judgement,
) -> anyhow::Result<Vec<String>> {
    let open: Vec<AlertRow> = store
        .open_alerts(None)?
        .into_iter()
        .filter(|a| a.rule == UNSCHEDULABLE)
        .collect();
    let recovering: Vec<&AlertRow> = open
        .iter()
        .filter(|a| {
            judged.valid.contains(&a.suite) && !judged.invalid.iter().any(|b| b.suite == a.suite)
        })
        .collect();
    let opening: Vec<&Unschedulable> = judged
        .invalid
        .iter()
        .filter(|b| !open.iter().any(|a| a.suite == b.suite))
        .collect();
    if recovering.is_empty() && opening.is_empty() {
        return Ok(Vec::new());
    }
    let project = ctx.project()?;
    let sinks = usable_sinks(ctx, &project);
    let notices = Notices {
        ctx,
        to: sinks
            .iter()
            .filter(|s| s.accepts(Level::Critical))
            .map(|s| s.id.clone())
            .collect(),
        now: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        reports: reports_dir(&project),
    };
    for bad in opening {
        notices.open(store, bad)?;
    }
    let mut recovered = Vec::new();
    for a in recovering {
        notices.resolve(store, a)?;
        recovered.push(a.suite.clone());
    }
    let env = |name: &str| std::env::var(name).ok();
    if let Err(e) = flush_queue(ctx, store, &sinks, &env, false) {
        ctx.printer
            .warn(&format!("deliver alerts: {e}; notices stay queued"));
    }
    Ok(recovered)
}

/// Opens and resolves `unschedulable` alerts, queueing a notice per sink.
struct Notices<'a> {
    ctx: &'a Ctx,
    /// The sinks that take critical alerts.
    to: Vec<String>,
    now: String,
    /// The reports folder, for the trend page's link.
    reports: String,
}

impl Notices<'_> {
    fn trend(&self, suite: &str) -> String {
        format!("{}/{suite}.html", self.reports.trim_end_matches('/'))
    }

    fn open(&self, store: &mut Store, bad: &Unschedulable) -> anyhow::Result<()> {
        let severity = severity_str(Level::Critical);
        let now = &self.now;
        let message = format!(
            "{}: {UNSCHEDULABLE}: the suite cannot be scheduled, so none of its windows run until it is fixed (`evalwatch validate {}`)",
            bad.suite, bad.file
        );
        let opened = store.open_new_alert(
            &NewAlert {
                suite: &bad.suite,
                rule: UNSCHEDULABLE,
                metric: UNSCHEDULABLE,
                provider: "*",
                tag: None,
                severity,
                run_id: None,
                at: now,
                value: None,
                baseline_value: None,
                message: &message,
            },
            |id| {
                serde_json::json!({
                    "event": "alert",
                    "alert_id": id,
                    "suite": bad.suite,
                    "rule": UNSCHEDULABLE,
                    "metric": UNSCHEDULABLE,
                    "condition": null,
                    "provider": "*",
                    "tag": null,
                    "severity": severity,
                    "baseline": null,
                    "value": null,
                    "baseline_value": null,
                    "run_id": null,
                    "since_run": null,
                    "opened_at": now,
                    "at": now,
                    "message": message,
                    "text": format!("[{}] {message}\n{}", severity.to_uppercase(), bad.problems),
                    "file": bad.file,
                    "problems": bad.problems,
                    "links": {"run": null, "trend": self.trend(&bad.suite)},
                })
                .to_string()
            },
            &self.to,
        )?;
        // None: another scheduler on the store opened it meanwhile, and sends its notice.
        if opened.is_some() {
            self.ctx
                .printer
                .warn(&format!("alert [{severity}] {message}"));
        }
        Ok(())
    }

    fn resolve(&self, store: &mut Store, a: &AlertRow) -> anyhow::Result<()> {
        let message = format!(
            "{}: {UNSCHEDULABLE}: resolved: the suite can be scheduled again",
            a.suite
        );
        let payload = serde_json::json!({
            "event": "resolved",
            "alert_id": a.id,
            "suite": a.suite,
            "rule": UNSCHEDULABLE,
            "metric": UNSCHEDULABLE,
            "condition": null,
            "provider": "*",
            "tag": null,
            "severity": a.severity,
            "baseline": null,
            "value": null,
            "baseline_value": null,
            "run_id": null,
            "since_run": null,
            "opened_at": a.opened_at,
            "at": self.now,
            "message": message,
            "text": format!("[RESOLVED] {message} (open since {})", a.opened_at),
            "links": {"run": null, "trend": self.trend(&a.suite)},
        })
        .to_string();
        store.resolve_alert(a.id, None, &self.now, &payload, &self.to)?;
        self.ctx
            .printer
            .note(&format!("resolved [{}] {message}", a.severity));
        Ok(())
    }
}
