//! Drift rules (`metric: drift.*`, [`crate::alert::drift_rule`]): each walks its source's
//! closed windows from its cursor, as the other traffic rules do, and tests each window
//! against its baseline window. A p-value under `max_p` opens one alert (touched while the
//! drift lasts, resolved once a window tests clean); too few records decide nothing. The
//! alert says what moved and which runbook step applies (prompt update or retraining).

use std::fmt::Write as _;

use serde_json::json;

use super::context::{marks_before, started_words};
use super::drift::{Figure, figure, load, p_value};
use super::{Pending, TrafficOutcome, at, instant};
use crate::alert::changes::{marks_json, related};
use crate::alert::drift::runbook_step;
use crate::alert::drift_rule::{DriftRule, is_drift_rule, judge_drift_rule};
use crate::alert::rule::severity_str;
use crate::alert::sink::Sink;
use crate::alert::traffic::{TrafficBaseline, WEEK};
use crate::app::Ctx;
use crate::model::TrafficSource;
use crate::store::{NewAlert, Store};

/// The drift rules of `source` (judged at load already; one that fails here is skipped).
fn rules(ctx: &Ctx, source: &TrafficSource) -> Vec<DriftRule> {
    let mut out: Vec<DriftRule> = Vec::new();
    for (i, raw) in source.alerts.iter().enumerate() {
        if !is_drift_rule(raw) {
            continue;
        }
        match judge_drift_rule(raw) {
            Ok(r) if out.iter().any(|o| o.name == r.name) => ctx.printer.warn(&format!(
                "traffic source `{}`: alert rule {}: a rule named `{}` comes earlier; give one a `name`; the rule is skipped",
                source.id,
                i + 1,
                r.name
            )),
            Ok(r) => out.push(r),
            Err(p) => super::skipped(ctx, source, i, p),
        }
    }
    out
}

/// The baseline window of the window `[start, end)`.
#[must_use]
pub(crate) fn baseline_of(baseline: TrafficBaseline, start: i64, end: i64) -> (i64, i64) {
    match baseline {
        TrafficBaseline::Previous => (2 * start - end, start),
        TrafficBaseline::SameWindowLastWeek => (start - WEEK, end - WEEK),
        TrafficBaseline::Trailing7d => (start - WEEK, start),
    }
}

/// `Language mix`, `Input length`.
fn words(metric: &str) -> String {
    let m = metric
        .strip_prefix("drift.")
        .unwrap_or(metric)
        .replace('_', " ");
    let mut c = m.chars();
    c.next()
        .map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
}

/// Judge the closed windows of every drift rule of `source`; adds the alerts it opened.
pub(super) fn judge(
    ctx: &Ctx,
    store: &mut Store,
    sinks: &[Sink],
    source: &TrafficSource,
    latest: i64,
    now: chrono::DateTime<chrono::Utc>,
    outcome: &mut TrafficOutcome,
) -> anyhow::Result<()> {
    let suite = super::alert_suite(&source.id);
    for rule in rules(ctx, source) {
        let pending = Pending::of(ctx, store, &source.id, &rule.name, rule.window, latest, now)?;
        let mut judge = Window {
            ctx,
            store: &mut *store,
            sinks,
            source,
            suite: &suite,
            rule: &rule,
            now,
        };
        for end in pending.ends() {
            let line = judge.window(end, outcome)?;
            ctx.printer.detail(&line);
        }
        pending.done(store, &source.id, &rule.name)?;
    }
    Ok(())
}

/// One drift rule of one source, judging windows.
struct Window<'a> {
    ctx: &'a Ctx,
    store: &'a mut Store,
    sinks: &'a [Sink],
    source: &'a TrafficSource,
    suite: &'a str,
    rule: &'a DriftRule,
    now: chrono::DateTime<chrono::Utc>,
}

impl Window<'_> {
    /// Judge the window ending at `end`; returns what -v says of it.
    fn window(&mut self, end: i64, outcome: &mut TrafficOutcome) -> anyhow::Result<String> {
        let rule = self.rule;
        let start = end - rule.window;
        let (bf, bt) = baseline_of(rule.baseline, start, end);
        let cur = load(self.store, &self.source.id, start, end)?;
        let base = load(self.store, &self.source.id, bf, bt)?;
        let metric = crate::alert::drift_rule::metrics()
            .find(|m| *m == rule.metric)
            .unwrap_or("drift.input_length");
        let fig = figure(metric, &cur, &base, rule.min_records);
        let what = format!(
            "alert rule `{}` on {}, window {}..{} against {}",
            rule.name,
            self.suite,
            at(start),
            at(end),
            rule.baseline.label()
        );
        let Ok(d) = &fig.result else {
            return Ok(format!(
                "{what}: {}; undecided, state kept",
                fig.test_words()
            ));
        };
        let fires = fig.drifted(rule.max_p);
        let open = self.store.open_alert(self.suite, &rule.name, "*", None)?;
        match (fires, open) {
            (true, None) => {
                self.open(&fig, start, end)?;
                outcome.opened += 1;
            }
            (true, Some(a)) => {
                self.store
                    .touch_alert(a.id, None, &at(end), (Some(d.p_value), None), None)?;
            }
            (false, Some(a)) => {
                let message = format!(
                    "{}: {}: resolved: {} no longer drifts ({} against {})",
                    self.suite,
                    rule.name,
                    words(&rule.metric).to_lowercase(),
                    fig.test_words(),
                    rule.baseline.label()
                );
                let payload = json!({
                    "event": "resolved",
                    "alert_id": a.id,
                    "source": self.source.id,
                    "rule": rule.name,
                    "metric": rule.metric,
                    "severity": a.severity,
                    "window": rule.window_label(),
                    "drift": fig.json(),
                    "opened_at": a.opened_at,
                    "resolved_at": at(end),
                    "message": message,
                    "text": message,
                });
                let sinks = super::sink_ids(self.sinks, rule.severity);
                self.store
                    .resolve_alert(a.id, None, &at(end), &payload.to_string(), &sinks)?;
                self.ctx
                    .printer
                    .note(&format!("resolved [{}] {message}", a.severity));
            }
            (false, None) => {}
        }
        Ok(format!(
            "{what}: {}: {}",
            fig.test_words(),
            if fires { "fires" } else { "quiet" }
        ))
    }

    /// The alert's sentence: what moved, the test, when it started and the markers before it.
    fn sentence(&self, fig: &Figure, start: i64, marks: &[crate::model::Mark]) -> String {
        let rule = self.rule;
        let mut s = format!("{} drifted", words(&rule.metric));
        if let Ok(d) = &fig.result {
            if !d.moved.is_empty() {
                s.push_str(": ");
                s.push_str(&d.moved.join(", "));
            }
            let _ = write!(
                s,
                " ({} < {}; n = {} against {} in {})",
                fig.test_words(),
                p_value(rule.max_p),
                d.current_n,
                d.baseline_n,
                rule.baseline.label()
            );
        }
        let started = instant(start);
        s.push_str(&started_words(started, self.now));
        s.push_str(&related(marks, started));
        s.push('.');
        s
    }

    /// Open an alert with its notice queued per sink.
    fn open(&mut self, fig: &Figure, start: i64, end: i64) -> anyhow::Result<()> {
        let rule = self.rule;
        // A drift alert concentrates in no feature: markers for no feature only.
        let marks = marks_before(self.store, &self.source.id, None, start, end)?;
        let until = at(end);
        let severity = severity_str(rule.severity);
        let headline = format!(
            "{}: {}: {}",
            self.suite,
            rule.name,
            self.sentence(fig, start, &marks)
        );
        let step = runbook_step(&rule.metric);
        let sinks = super::sink_ids(self.sinks, rule.severity);
        let p = fig.result.as_ref().ok().map(|d| d.p_value);
        let payload = |id: i64| -> String {
            let mut text = vec![
                format!("[{}] {headline}", severity.to_uppercase()),
                format!("runbook step: {step}"),
            ];
            if let Some(r) = &rule.runbook {
                text.push(format!("runbook: {r}"));
            }
            json!({
                "event": "alert",
                "alert_id": id,
                "source": self.source.id,
                "rule": rule.name,
                "metric": rule.metric,
                "severity": severity,
                "window": rule.window_label(),
                "baseline": rule.baseline.label(),
                "split": null,
                "drift": fig.json(),
                "max_p": rule.max_p,
                "context": {
                    "started_at": at(start),
                    "marks": marks_json(&marks),
                },
                "runbook_step": step,
                "runbook": rule.runbook,
                "opened_at": until,
                "message": headline,
                "text": text.join("\n"),
            })
            .to_string()
        };
        let opened = self.store.open_new_alert(
            &NewAlert {
                suite: self.suite,
                rule: &rule.name,
                metric: &rule.metric,
                provider: "*",
                tag: None,
                severity,
                run_id: None,
                at: &until,
                value: p,
                baseline_value: None,
                message: &headline,
            },
            payload,
            &sinks,
        )?;
        // None: opened meanwhile by another process, which said so.
        if opened.is_some() {
            self.ctx
                .printer
                .warn(&format!("alert [{severity}] {headline}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baselines_are_windows_of_the_same_length_or_the_week_before() {
        let (s, e) = (10 * WEEK, 10 * WEEK + 86_400);
        assert_eq!(
            baseline_of(TrafficBaseline::Previous, s, e),
            (s - 86_400, s)
        );
        assert_eq!(
            baseline_of(TrafficBaseline::SameWindowLastWeek, s, e),
            (s - WEEK, e - WEEK)
        );
        assert_eq!(
            baseline_of(TrafficBaseline::Trailing7d, s, e),
            (s - WEEK, s)
        );
        assert_eq!(words("drift.language_mix"), "Language mix");
    }
}
