//! Findings into alert state: open once, touch while firing, resolve once, each with a
//! notice queued per sink in the same transaction.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::alert::eval::{self, Finding, Verdict};
use crate::alert::message::{self, NoticeContext};
use crate::alert::rule::{Rule, severity_str};
use crate::alert::sink::Sink;
use crate::app::Ctx;
use crate::model::{Mark, Severity, Suite};
use crate::store::{AlertRow, MarkQuery, NewAlert, Store};

/// Turns findings into state and notices.
pub(super) struct Apply<'a> {
    pub(super) ctx: &'a Ctx,
    pub(super) sinks: &'a [Sink],
    pub(super) reports: String,
    pub(super) now: String,
}

impl Apply<'_> {
    /// Record the findings of one suite; returns the firing ones as machine-output objects.
    pub(super) fn apply(
        &self,
        store: &mut Store,
        suite: &Suite,
        rules: &[Rule],
        findings: &[(usize, Finding)],
        run_id: Option<&str>,
    ) -> anyhow::Result<Vec<(Severity, Value)>> {
        let mut fired = Vec::new();
        for (i, f) in findings {
            let Some(rule) = rules.get(*i) else { continue };
            let open = store.open_alert(&suite.name, &rule.name, &f.provider, f.tag.as_deref())?;
            // -v: every rule, what was tested and why it did or did not fire (a rule that
            // fires or resolves says it in its own line, printed without -v too).
            let said =
                f.verdict == Verdict::Firing || (f.verdict == Verdict::Clear && open.is_some());
            if !said {
                self.ctx.printer.detail(&quiet_line(&suite.name, rule, f));
            }
            if let Some(machine) = self.record(store, suite, rule, f, open, run_id)? {
                fired.push((rule.severity, machine));
            }
        }
        Ok(fired)
    }

    /// One finding into state: open an alert, touch the open one, or resolve it. Returns the
    /// machine-output object of a firing alert.
    fn record(
        &self,
        store: &mut Store,
        suite: &Suite,
        rule: &Rule,
        f: &Finding,
        open: Option<AlertRow>,
        run_id: Option<&str>,
    ) -> anyhow::Result<Option<Value>> {
        let sinks = super::sink_ids(self.sinks, rule.severity);
        let severity = severity_str(rule.severity);
        // What changed before an alert opens: read only then.
        let marks = if f.verdict == Verdict::Firing && open.is_none() {
            self.marks_before(store)?
        } else {
            Vec::new()
        };
        let mut ctx = NoticeContext {
            suite: &suite.name,
            run_id,
            since_run: run_id,
            opened_at: &self.now,
            at: &self.now,
            reports: &self.reports,
            marks: &marks,
        };
        let headline = format!(
            "{}{}: {}: {}{}",
            suite.name,
            provider_suffix(f),
            rule.name,
            f.detail,
            message::related(&ctx)
        );
        // An alert already open that fires again keeps this firing's numbers (and, from a
        // suite's run, its message).
        let touch = |store: &mut Store, id| {
            store.touch_alert(
                id,
                run_id,
                &self.now,
                (f.value, f.baseline_value),
                run_id.map(|_| headline.as_str()),
            )
        };
        match (f.verdict, open) {
            (Verdict::Firing, None) => {
                let opened = store.open_new_alert(
                    &NewAlert {
                        suite: &suite.name,
                        rule: &rule.name,
                        metric: &rule.metric,
                        provider: &f.provider,
                        tag: f.tag.as_deref(),
                        severity,
                        run_id,
                        at: &self.now,
                        value: f.value,
                        baseline_value: f.baseline_value,
                        message: &headline,
                    },
                    |id| message::alert_payload(rule, f, &ctx, id).to_string(),
                    &sinks,
                )?;
                let Some(id) = opened else {
                    // Opened meanwhile by another process: it sent the notice.
                    let Some(a) =
                        store.open_alert(&suite.name, &rule.name, &f.provider, f.tag.as_deref())?
                    else {
                        return Ok(None);
                    };
                    touch(store, a.id)?;
                    return Ok(Some(machine(rule, f, &headline, false, a.id)));
                };
                self.ctx
                    .printer
                    .warn(&format!("alert [{severity}] {headline}"));
                Ok(Some(machine(rule, f, &headline, true, id)))
            }
            (Verdict::Firing, Some(a)) => {
                touch(store, a.id)?;
                self.ctx.printer.note(&format!(
                    "alert [{severity}] still open since {}: {headline}",
                    a.opened_run.as_deref().unwrap_or(&a.opened_at)
                ));
                Ok(Some(machine(rule, f, &headline, false, a.id)))
            }
            (Verdict::Clear, Some(a)) => {
                ctx.since_run = a.opened_run.as_deref();
                ctx.opened_at = &a.opened_at;
                let payload = message::resolved_payload(rule, f, &ctx, a.id).to_string();
                store.resolve_alert(a.id, run_id, &self.now, &payload, &sinks)?;
                self.ctx
                    .printer
                    .note(&format!("resolved [{severity}] {headline}"));
                Ok(None)
            }
            (Verdict::Clear | Verdict::Unknown, None) | (Verdict::Unknown, Some(_)) => Ok(None),
        }
    }
}

impl Apply<'_> {
    /// The change markers of the hours before now that concern every traffic source (a
    /// suite is none of them), newest last.
    fn marks_before(&self, store: &Store) -> anyhow::Result<Vec<Mark>> {
        let Ok(now) = chrono::DateTime::parse_from_rfc3339(&self.now) else {
            return Ok(Vec::new());
        };
        let since = crate::schedule::daemon::rfc3339(
            now.with_timezone(&chrono::Utc)
                - chrono::Duration::seconds(crate::alert::changes::MARKS_BEFORE_SECS),
        );
        let mut marks = store.marks(&MarkQuery {
            since: Some(&since),
            until: None,
            feature: None,
            source: None,
            limit: Some(20),
        })?;
        marks.retain(|m| m.source.is_none());
        // The newest first: those nearest the alert are named.
        marks.reverse();
        marks.truncate(5);
        Ok(marks)
    }
}

/// `/provider` after the suite's name, or nothing for a suite-wide finding.
fn provider_suffix(f: &Finding) -> String {
    if f.provider == "*" {
        String::new()
    } else {
        format!("/{}", f.provider)
    }
}

/// What -v says of a rule that neither fires nor resolves.
fn quiet_line(suite: &str, rule: &Rule, f: &Finding) -> String {
    format!(
        "alert rule `{}` on {suite}{}{}: {}: {}",
        rule.name,
        provider_suffix(f),
        f.tag
            .as_deref()
            .map_or_else(String::new, |t| format!(" [tag {t}]")),
        match f.verdict {
            Verdict::Firing => "fires",
            Verdict::Clear => "quiet",
            Verdict::Unknown => "undecided, state kept",
        },
        f.detail
    )
}

/// The spec's machine-output object of a firing alert, with extra context fields.
fn machine(rule: &Rule, f: &Finding, message: &str, new: bool, id: i64) -> Value {
    json!({
        "rule": rule.name,
        "metric": rule.metric,
        "severity": severity_str(rule.severity),
        "baseline": if rule.condition.uses_baseline() { Some(rule.baseline.label()) } else { None },
        "value": f.value,
        "message": message,
        "provider": f.provider,
        "tag": f.tag,
        "baseline_value": f.baseline_value,
        "test": f.test,
        "flipped": f.flipped_total,
        "new": new,
        "alert_id": id,
        "runbook": rule.runbook,
    })
}

/// Remember the cases the pass-rate rules of `suite` counted as known-flaky on run `run_id`
/// (the trend page lists them with the flaky cases).
pub(super) fn record_known_flaky(
    store: &mut Store,
    suite: &str,
    run_id: &str,
    rules: &[Rule],
    findings: &[(usize, Finding)],
) -> anyhow::Result<()> {
    if !rules.iter().any(eval::needs_statuses) {
        return Ok(());
    }
    let cases: BTreeSet<(String, String)> = findings
        .iter()
        .filter(|(i, _)| rules.get(*i).is_some_and(eval::needs_statuses))
        .flat_map(|(_, f)| {
            f.known_flaky
                .iter()
                .map(|c| (f.provider.clone(), c.clone()))
        })
        .collect();
    store.set_known_flaky(suite, run_id, &cases.into_iter().collect::<Vec<_>>())?;
    Ok(())
}
