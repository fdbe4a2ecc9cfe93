//! Alert rules over traffic metrics (`traffic:` sources' `alerts:`): the suite rule grammar
//! (`metric`, `drop`/`rise`/`ratio`/`min`/`max`, `severity`, `runbook`, `name`) plus
//! `window`, `by`, `relative`, `min_requests` and the calendar baselines `previous` (the
//! window before), `trailing:7d` and `same_window_last_week`. Pure: judging a rule and
//! deciding a condition.

use std::fmt::Write as _;

use serde_json::Value;

use super::rule::{Condition, MetricScope, Rule, RuleProblem, did_you_mean, judge_rule};

/// The keys of a traffic rule.
pub const KEYS: [&str; 14] = [
    "metric",
    "drop",
    "rise",
    "ratio",
    "min",
    "max",
    "relative",
    "baseline",
    "window",
    "by",
    "min_requests",
    "severity",
    "runbook",
    "name",
];

/// The keys the suite grammar judges (the others are the traffic rule's own).
const SUITE_KEYS: [&str; 9] = [
    "metric", "drop", "rise", "ratio", "min", "max", "severity", "runbook", "name",
];

/// The windows a rule may take, in seconds.
pub const WINDOWS: [(&str, i64); 5] = [
    ("5m", 300),
    ("15m", 900),
    ("1h", 3_600),
    ("1d", 86_400),
    ("7d", 604_800),
];

/// The window of a rule that names none.
pub const DEFAULT_WINDOW: i64 = 3_600;

/// A week, in seconds.
pub const WEEK: i64 = 604_800;

/// What a traffic rule compares its window with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrafficBaseline {
    /// The window just before.
    Previous,
    /// The seven days before the window (additive metrics scaled to the window's length).
    Trailing7d,
    /// The same window one week earlier.
    SameWindowLastWeek,
}

/// A traffic rule's `baseline:` key: `default` when absent. An unknown name is a located
/// problem with a did-you-mean, saying "use " and `choices` (each rule kind words its own
/// default), and reads as `default` so that the other keys are still judged.
pub(crate) fn baseline_field(
    map: &serde_json::Map<String, Value>,
    default: TrafficBaseline,
    choices: &str,
    errors: &mut Vec<RuleProblem>,
) -> TrafficBaseline {
    let Some(v) = map.get("baseline") else {
        return default;
    };
    let s = v.as_str().unwrap_or_default();
    TrafficBaseline::parse(s).unwrap_or_else(|| {
        let hint = did_you_mean(s, TrafficBaseline::NAMES);
        errors.push(RuleProblem::at(
            "baseline",
            format!("unknown traffic baseline {v}{hint}; use {choices}"),
        ));
        default
    })
}

impl TrafficBaseline {
    const NAMES: [&str; 3] = ["previous", "trailing:7d", "same_window_last_week"];

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "previous" => Some(Self::Previous),
            "trailing:7d" => Some(Self::Trailing7d),
            "same_window_last_week" => Some(Self::SameWindowLastWeek),
            _ => None,
        }
    }

    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Previous => "previous",
            Self::Trailing7d => "trailing:7d",
            Self::SameWindowLastWeek => "same_window_last_week",
        }
    }
}

/// The label a rule splits by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Split {
    Feature,
    Model,
    Segment,
    Region,
}

impl Split {
    pub const ALL: [Self; 4] = [Self::Feature, Self::Model, Self::Segment, Self::Region];

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Feature => "feature",
            Self::Model => "model",
            Self::Segment => "segment",
            Self::Region => "region",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.name() == s)
    }
}

/// What a metric is computed over, and so what `min_requests` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Requests in the window.
    Requests,
    /// Sampled records the monitor's assertion decided (`pass_rate`, `hallucination_rate`,
    /// `refusal_rate`).
    Scored,
    /// Requests with a rating (`satisfaction`, `thumbs_down_rate`).
    Rated,
}

impl Counted {
    /// What one of them is called: `request`, `scored record`, `rated request`.
    #[must_use]
    pub fn noun(self) -> &'static str {
        match self {
            Self::Requests => "request",
            Self::Scored => "scored record",
            Self::Rated => "rated request",
        }
    }

    /// What `metric` is computed over.
    #[must_use]
    pub fn of(metric: &str) -> Self {
        match metric.strip_prefix("traffic.").unwrap_or(metric) {
            "pass_rate" | "hallucination_rate" | "refusal_rate" => Self::Scored,
            "satisfaction" | "thumbs_down_rate" => Self::Rated,
            _ => Self::Requests,
        }
    }
}

/// The least data a window (and its baseline) must hold before a rule on `metric` is
/// judged, when the rule names no `min_requests`: 20 of what the metric is computed over
/// (requests, scored records, rated requests: below that one request moves a rate by 5
/// points or more, and a p95 is a single request), and 0 for the counts themselves
/// (`volume`, `throughput_rps`, `users`), whose low value is what a rule looks for.
#[must_use]
pub fn default_min_requests(metric: &str) -> u64 {
    match metric.strip_prefix("traffic.").unwrap_or(metric) {
        "volume" | "throughput_rps" | "users" => 0,
        _ => 20,
    }
}

/// A validated traffic rule.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficRule {
    /// The suite grammar's part: name, metric, condition, severity, runbook.
    pub rule: Rule,
    /// Window length in seconds (one of [`WINDOWS`]).
    pub window: i64,
    pub by: Option<Split>,
    pub baseline: TrafficBaseline,
    /// `drop`/`rise` as a share of the baseline (0.10: ten percent) rather than absolute.
    pub relative: bool,
    /// The least a window, and a baseline, must hold (of [`Counted::of`] the metric) to be
    /// judged; fewer leaves the alert state as it is.
    pub min_requests: u64,
}

impl TrafficRule {
    /// The window as written (`15m`).
    #[must_use]
    pub fn window_label(&self) -> &'static str {
        window_label(self.window)
    }

    /// Whether the value fires against `baseline` (None when the condition needs one and
    /// there is none: undecided).
    #[must_use]
    pub fn fires(&self, value: f64, baseline: Option<f64>) -> Option<bool> {
        let rel = |x: f64, b: f64| if self.relative { x * b.abs() } else { x };
        Some(match self.rule.condition {
            Condition::Min(m) => value < m,
            Condition::Max(m) => value > m,
            Condition::Drop(x) => {
                let b = baseline?;
                value <= b - rel(x, b) && value < b
            }
            Condition::Rise(x) => {
                let b = baseline?;
                value >= b + rel(x, b) && value > b
            }
            Condition::Ratio(r) => {
                let b = baseline?;
                if b <= 0.0 {
                    return None;
                }
                if r >= 1.0 {
                    value >= r * b
                } else {
                    value <= r * b
                }
            }
            Condition::After(_) => return None,
        })
    }
}

/// `15m` for 900 seconds.
#[must_use]
pub fn window_label(secs: i64) -> &'static str {
    WINDOWS
        .iter()
        .find(|(_, s)| *s == secs)
        .map_or("1h", |(l, _)| l)
}

/// The seconds of a rule's `window:` (one of [`WINDOWS`]), or the problem with it.
pub(crate) fn window_of(v: &Value) -> Result<i64, RuleProblem> {
    let s = v.as_str().unwrap_or_default();
    WINDOWS.iter().find(|(l, _)| *l == s).map_or_else(
        || {
            let hint = did_you_mean(s, WINDOWS.iter().map(|(l, _)| *l));
            Err(RuleProblem::at(
                "window",
                format!("`window` must be one of 5m, 15m, 1h, 1d, 7d, found {v}{hint}"),
            ))
        },
        |(_, secs)| Ok(*secs),
    )
}

/// Judge one raw traffic rule: the rule, or every problem with it, each tied to its key.
/// `metrics` lists the traffic metrics a rule may name. This is the one judgement of the
/// traffic rule grammar: `validate` (through the config loader), `ingest`, `collect` and
/// `alerts check` all call it.
pub fn judge_traffic_rule(raw: &Value, metrics: &[&str]) -> Result<TrafficRule, Vec<RuleProblem>> {
    let Some(map) = raw.as_object() else {
        return Err(vec![RuleProblem::whole(format!(
            "a traffic alert rule must be a mapping, found {raw}"
        ))]);
    };
    let mut errors = Vec::new();
    for key in map.keys() {
        if !KEYS.contains(&key.as_str()) {
            let hint = did_you_mean(key, KEYS.iter().copied());
            let suite_only = ["after", "tag", "provider", "alpha", "test"].contains(&key.as_str());
            errors.push(RuleProblem {
                key: Some(key.clone()),
                on_key: true,
                message: if suite_only {
                    format!("`{key}` applies to suite rules, not to a traffic alert rule")
                } else {
                    format!("unknown key `{key}` in a traffic alert rule{hint}")
                },
            });
        }
    }
    let suite_part: serde_json::Map<String, Value> = map
        .iter()
        .filter(|(k, _)| SUITE_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let base = judge_rule(&Value::Object(suite_part), MetricScope::Traffic(metrics));
    let base = match base {
        Ok(r) => Some(r),
        Err(problems) => {
            // A missing `metric` was reported as a hint on a misspelt key already.
            let hinted = errors.iter().any(|p| p.message.contains("`metric`"));
            errors.extend(
                problems
                    .into_iter()
                    .filter(|p| !(hinted && p.key.is_none() && p.message.contains("`metric`"))),
            );
            None
        }
    };
    let window = map
        .get("window")
        .map_or(Ok(DEFAULT_WINDOW), window_of)
        .unwrap_or_else(|p| {
            errors.push(p);
            DEFAULT_WINDOW
        });
    let by = map.get("by").and_then(|v| {
        let s = v.as_str().unwrap_or_default();
        let split = Split::parse(s);
        if split.is_none() {
            let hint = did_you_mean(s, Split::ALL.iter().map(|x| x.name()));
            errors.push(RuleProblem::at(
                "by",
                format!("`by` must be feature, model, segment or region, found {v}{hint}"),
            ));
        }
        split
    });
    let baseline = baseline_field(
        map,
        TrafficBaseline::Previous,
        "`previous` (the window before), `trailing:7d` or `same_window_last_week`",
        &mut errors,
    );
    let min_requests = match map.get("min_requests") {
        None => None,
        Some(v) => v.as_u64().or_else(|| {
            errors.push(RuleProblem::at(
                "min_requests",
                format!("`min_requests` must be a whole number of requests (0 or more), found {v}"),
            ));
            None
        }),
    };
    let relative = match map.get("relative") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => {
            errors.push(RuleProblem::at(
                "relative",
                format!("`relative` must be true or false, found {v}"),
            ));
            false
        }
    };
    if let Some(r) = &base {
        if relative && !matches!(r.condition, Condition::Drop(_) | Condition::Rise(_)) {
            errors.push(RuleProblem::at(
                "relative",
                "`relative` applies to `drop` and `rise` (a share of the baseline)",
            ));
        }
        if !r.condition.uses_baseline() && map.contains_key("baseline") {
            errors.push(RuleProblem::at(
                "baseline",
                "`baseline` has no effect with `min` or `max`: they compare with a fixed value",
            ));
        }
    }
    let Some(mut rule) = base else {
        return Err(errors);
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    if !map.contains_key("name") {
        let mut n = format!("{} {}", rule.metric, rule.condition.label());
        if relative {
            n.push_str(" relative");
        }
        if rule.condition.uses_baseline() {
            let _ = write!(n, " vs {}", baseline.label());
        }
        let _ = write!(n, " over {}", window_label(window));
        if let Some(s) = by {
            let _ = write!(n, " by {}", s.name());
        }
        rule.name = n;
    }
    let min_requests = min_requests.unwrap_or_else(|| default_min_requests(&rule.metric));
    Ok(TrafficRule {
        rule,
        window,
        by,
        baseline,
        relative,
        min_requests,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const METRICS: [&str; 5] = [
        "traffic.volume",
        "traffic.error_rate",
        "traffic.latency_p95_ms",
        "traffic.cost_usd",
        "traffic.satisfaction",
    ];

    fn judge(v: &Value) -> Result<TrafficRule, Vec<String>> {
        judge_traffic_rule(v, &METRICS).map_err(|p| p.into_iter().map(|p| p.message).collect())
    }

    #[test]
    fn the_four_starting_rules_are_valid() {
        for raw in [
            json!({"metric": "traffic.error_rate", "max": 0.05, "window": "15m", "severity": "critical", "runbook": "https://r"}),
            json!({"metric": "traffic.latency_p95_ms", "ratio": 3, "baseline": "trailing:7d", "window": "15m", "severity": "warning"}),
            json!({"metric": "traffic.cost_usd", "ratio": 1.2, "baseline": "trailing:7d", "window": "1d", "severity": "warning"}),
            json!({"metric": "traffic.satisfaction", "drop": 0.10, "relative": true, "baseline": "same_window_last_week", "window": "7d", "severity": "warning"}),
        ] {
            judge(&raw).unwrap_or_else(|e| panic!("{raw}: {e:?}"));
        }
        let r = judge(
            &json!({"metric": "traffic.error_rate", "max": 0.05, "window": "15m", "by": "feature"}),
        )
        .unwrap();
        assert_eq!(
            r.rule.name,
            "traffic.error_rate max 0.05 over 15m by feature"
        );
        assert_eq!((r.window, r.by), (900, Some(Split::Feature)));
        assert_eq!(r.min_requests, 20);
    }

    #[test]
    fn min_requests_defaults_per_metric_family_and_is_checked() {
        let r = |v: Value| judge(&v).unwrap();
        assert_eq!(
            r(json!({"metric": "traffic.volume", "min": 10})).min_requests,
            0
        );
        assert_eq!(
            r(json!({"metric": "traffic.satisfaction", "min": 0.5})).min_requests,
            20
        );
        assert_eq!(
            r(json!({"metric": "traffic.error_rate", "max": 0.05, "min_requests": 5})).min_requests,
            5
        );
        assert_eq!(Counted::of("traffic.satisfaction"), Counted::Rated);
        assert_eq!(Counted::of("traffic.pass_rate"), Counted::Scored);
        assert_eq!(Counted::of("traffic.latency_p95_ms"), Counted::Requests);
        for bad in [json!(-1), json!(2.5), json!("20")] {
            let e =
                judge(&json!({"metric": "traffic.error_rate", "max": 0.05, "min_requests": bad}))
                    .unwrap_err();
            assert_eq!(
                e,
                vec![format!(
                    "`min_requests` must be a whole number of requests (0 or more), found {bad}"
                )]
            );
        }
    }

    #[test]
    fn every_problem_is_named_with_a_hint() {
        let e = judge(&json!({"metric": "traffic.eror_rate", "max": 0.05, "windw": "15m", "by": "featur", "baseline": "trailing:7", "relative": true})).unwrap_err();
        let all = e.join("\n");
        assert!(
            all.contains(
                "unknown traffic metric `traffic.eror_rate`; did you mean `traffic.error_rate`?"
            ),
            "{all}"
        );
        assert!(
            all.contains("unknown key `windw` in a traffic alert rule; did you mean `window`?"),
            "{all}"
        );
        assert!(all.contains("did you mean `feature`?"), "{all}");
        assert!(
            all.contains("unknown traffic baseline \"trailing:7\"; did you mean `trailing:7d`?"),
            "{all}"
        );
        let e = judge(
            &json!({"metric": "traffic.error_rate", "max": 0.05, "window": "10m", "tag": "x"}),
        )
        .unwrap_err();
        assert!(
            e.iter().any(
                |m| m.starts_with("`window` must be one of 5m, 15m, 1h, 1d, 7d, found \"10m\"")
            ),
            "{e:?}"
        );
        assert!(
            e.iter().any(|m| m.contains("`tag` applies to suite rules")),
            "{e:?}"
        );
        let e = judge(&json!({"metric": "traffic.error_rate", "max": 0.05, "relative": true, "baseline": "trailing:7d"})).unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
    }

    /// `max: 5` meant as 5% on a rate never fires, silently: refused, with what was meant.
    #[test]
    fn bounds_outside_a_rate_are_refused_with_what_was_meant() {
        assert_eq!(
            judge(&json!({"metric": "traffic.error_rate", "max": 5})).unwrap_err(),
            vec![
                "`max: 5` is outside `traffic.error_rate`'s values, a fraction from 0 to 1: it can never fire (`max: 0.05` is 5%)"
            ]
        );
        assert_eq!(
            judge(&json!({"metric": "traffic.satisfaction", "min": 80})).unwrap_err(),
            vec![
                "`min: 80` is outside `traffic.satisfaction`'s values, a fraction from 0 to 1: it would fire on every value (`min: 0.8` is 80%)"
            ]
        );
        // Within the range, and metrics without one (latency, cost, volume), pass.
        for ok in [
            json!({"metric": "traffic.error_rate", "max": 1}),
            json!({"metric": "traffic.satisfaction", "min": 0}),
            json!({"metric": "traffic.latency_p95_ms", "max": 5000}),
            json!({"metric": "traffic.volume", "min": 10}),
        ] {
            assert!(judge(&ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn conditions_decide_and_need_their_baseline() {
        let r = |v: Value| judge(&v).unwrap();
        let max = r(json!({"metric": "traffic.error_rate", "max": 0.05}));
        assert_eq!(max.fires(0.08, None), Some(true));
        assert_eq!(max.fires(0.05, None), Some(false));
        let ratio =
            r(json!({"metric": "traffic.latency_p95_ms", "ratio": 3, "baseline": "trailing:7d"}));
        assert_eq!(ratio.fires(900.0, None), None);
        assert_eq!(ratio.fires(900.0, Some(0.0)), None);
        assert_eq!(ratio.fires(900.0, Some(300.0)), Some(true));
        assert_eq!(ratio.fires(899.0, Some(300.0)), Some(false));
        let drop = r(
            json!({"metric": "traffic.satisfaction", "drop": 0.1, "relative": true, "baseline": "same_window_last_week"}),
        );
        assert_eq!(drop.fires(0.71, Some(0.8)), Some(true));
        assert_eq!(drop.fires(0.73, Some(0.8)), Some(false));
    }
}
