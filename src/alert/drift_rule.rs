//! Drift rules on a traffic source's `alerts:` (`metric: drift.*`): the traffic rule grammar's
//! `metric`, `window`, `baseline`, `severity`, `runbook` and `name`, with the test's own
//! condition in place of `drop`/`rise`/`ratio`/`min`/`max`:
//!
//! - `max_p` (default 0.001): fires when the test's p-value of the window against its
//!   baseline is below it;
//! - `min_records` (default [`MIN_RECORDS`]): fewer records in either window decide nothing
//!   ("not enough data: n=12, needs 50").
//!
//! The baseline defaults to `same_window_last_week`, so that a daily or weekly rhythm of
//! inputs is not drift. Pure: judging a rule.

use std::fmt::Write as _;

use serde_json::Value;

use super::drift::{MIX, NUMERIC};
use super::rule::{RuleProblem, did_you_mean, severity_parse};
use super::traffic::{TrafficBaseline, baseline_field, window_label, window_of};
use crate::model::Severity;

/// The keys of a drift rule.
pub const KEYS: [&str; 8] = [
    "metric",
    "max_p",
    "min_records",
    "window",
    "baseline",
    "severity",
    "runbook",
    "name",
];

/// The p-value under which a drift rule fires when it names none.
pub const DEFAULT_MAX_P: f64 = 0.001;

/// The fewest records each window needs for a test (`min_records`).
pub const MIN_RECORDS: u64 = 50;

/// The window of a drift rule that names none: a day.
pub const DEFAULT_WINDOW: i64 = 86_400;

/// A validated drift rule.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftRule {
    /// The alert state key (explicit `name:` or derived from the rule).
    pub name: String,
    pub metric: String,
    pub max_p: f64,
    pub min_records: u64,
    /// Window length in seconds (one of the traffic [`super::traffic::WINDOWS`]).
    pub window: i64,
    pub baseline: TrafficBaseline,
    pub severity: Severity,
    pub runbook: Option<String>,
}

impl DriftRule {
    /// The window as written (`1d`).
    #[must_use]
    pub fn window_label(&self) -> &'static str {
        window_label(self.window)
    }
}

/// Every drift metric's name.
pub fn metrics() -> impl Iterator<Item = &'static str> {
    NUMERIC.iter().map(|m| m.0).chain(MIX.iter().map(|m| m.0))
}

/// Whether a raw traffic rule is a drift rule (its `metric` starts with `drift.`): judged by
/// [`judge_drift_rule`] rather than the traffic rule grammar.
#[must_use]
pub fn is_drift_rule(raw: &Value) -> bool {
    raw.get("metric")
        .and_then(Value::as_str)
        .is_some_and(|m| m.trim().starts_with("drift."))
}

/// Judge one raw drift rule: the rule, or every problem with it, each tied to its key.
pub fn judge_drift_rule(raw: &Value) -> Result<DriftRule, Vec<RuleProblem>> {
    let Some(map) = raw.as_object() else {
        return Err(vec![RuleProblem::whole(format!(
            "a drift rule must be a mapping, found {raw}"
        ))]);
    };
    let mut errors = Vec::new();
    for key in map.keys() {
        if KEYS.contains(&key.as_str()) {
            continue;
        }
        let message = if ["drop", "rise", "ratio", "min", "max", "relative"].contains(&key.as_str())
        {
            format!(
                "`{key}` does not apply to a drift rule: it fires on its test's p-value (`max_p`, default {DEFAULT_MAX_P})"
            )
        } else if key == "by" {
            "`by` does not apply to a drift rule: a drift test compares the whole source's windows (the mixes are the splits)".to_owned()
        } else {
            format!(
                "unknown key `{key}` in a drift rule{}",
                did_you_mean(key, KEYS.iter().copied())
            )
        };
        errors.push(RuleProblem {
            key: Some(key.clone()),
            on_key: true,
            message,
        });
    }
    let metric = map
        .get("metric")
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or_default();
    if !metrics().any(|m| m == metric) {
        errors.push(RuleProblem::at(
            "metric",
            format!(
                "unknown drift metric `{metric}`{}; drift metrics are {}",
                did_you_mean(metric, metrics()),
                metrics().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    let max_p = match map.get("max_p") {
        None => DEFAULT_MAX_P,
        Some(v) => match v.as_f64() {
            Some(p) if p > 0.0 && p < 1.0 => p,
            _ => {
                errors.push(RuleProblem::at(
                    "max_p",
                    format!("`max_p` must be a number between 0 and 1 (a p-value), found {v}"),
                ));
                DEFAULT_MAX_P
            }
        },
    };
    let min_records = match map.get("min_records") {
        None => MIN_RECORDS,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 2 => n,
            _ => {
                errors.push(RuleProblem::at(
                    "min_records",
                    format!("`min_records` must be a whole number of at least 2, found {v}"),
                ));
                MIN_RECORDS
            }
        },
    };
    let window = map
        .get("window")
        .map_or(Ok(DEFAULT_WINDOW), window_of)
        .unwrap_or_else(|p| {
            errors.push(p);
            DEFAULT_WINDOW
        });
    let baseline = baseline_field(
        map,
        TrafficBaseline::SameWindowLastWeek,
        "`same_window_last_week` (the default), `previous` (the window before) or `trailing:7d`",
        &mut errors,
    );
    let severity = match map.get("severity") {
        None => Severity::Warning,
        Some(v) => v.as_str().and_then(severity_parse).unwrap_or_else(|| {
            let hint = did_you_mean(
                v.as_str().unwrap_or_default(),
                ["info", "warning", "critical"],
            );
            errors.push(RuleProblem::at(
                "severity",
                format!("unknown severity {v}{hint}; use `info`, `warning` or `critical`"),
            ));
            Severity::Warning
        }),
    };
    let mut text = |key: &str| match map.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => {
            errors.push(RuleProblem::at(
                key,
                format!("`{key}` must be a string, found {v}"),
            ));
            None
        }
    };
    let runbook = text("runbook");
    let name = text("name");
    if !errors.is_empty() {
        return Err(errors);
    }
    let name = name.unwrap_or_else(|| {
        let mut n = format!("{metric} p<{max_p} vs {}", baseline.label());
        let _ = write!(n, " over {}", window_label(window));
        n
    });
    Ok(DriftRule {
        name,
        metric: metric.to_owned(),
        max_p,
        min_records,
        window,
        baseline,
        severity,
        runbook,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problems(v: &Value) -> Vec<String> {
        judge_drift_rule(v)
            .unwrap_err()
            .into_iter()
            .map(|p| p.message)
            .collect()
    }

    #[test]
    fn a_drift_rule_takes_defaults_and_a_derived_name() {
        let raw = json!({"metric": "drift.language_mix", "severity": "warning"});
        assert!(is_drift_rule(&raw));
        assert!(!is_drift_rule(&json!({"metric": "traffic.error_rate"})));
        let r = judge_drift_rule(&raw).unwrap();
        assert_eq!(
            r.name,
            "drift.language_mix p<0.001 vs same_window_last_week over 1d"
        );
        assert_eq!(
            (r.max_p, r.min_records, r.window, r.baseline),
            (0.001, 50, 86_400, TrafficBaseline::SameWindowLastWeek)
        );
        let r = judge_drift_rule(&json!({"metric": "drift.confidence", "max_p": 0.01, "min_records": 200, "window": "7d", "baseline": "previous", "severity": "critical", "runbook": "https://r"})).unwrap();
        assert_eq!((r.max_p, r.min_records, r.window), (0.01, 200, 604_800));
        assert_eq!(r.severity, Severity::Critical);
    }

    #[test]
    fn every_problem_is_named_with_a_hint() {
        let all = problems(&json!({"metric": "drift.langauge_mix", "max": 0.1, "windw": "1d", "by": "feature", "max_p": 2, "min_records": 1, "baseline": "same_window_last_wek", "severity": "warn"})).join("\n");
        for want in [
            "unknown drift metric `drift.langauge_mix`; did you mean `drift.language_mix`?",
            "`max` does not apply to a drift rule",
            "unknown key `windw` in a drift rule; did you mean `window`?",
            "`by` does not apply to a drift rule",
            "`max_p` must be a number between 0 and 1 (a p-value), found 2",
            "`min_records` must be a whole number of at least 2, found 1",
            "did you mean `same_window_last_week`?",
            "unknown severity \"warn\"; did you mean `warning`?",
        ] {
            assert!(all.contains(want), "missing {want:?} in:\n{all}");
        }
    }
}
