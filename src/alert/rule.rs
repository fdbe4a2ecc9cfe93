//! Alert rules: parsed and validated from the raw JSON the loader keeps.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::Duration;

use serde_json::Value;

use crate::model::Metrics;
use crate::model::Severity;

/// Default significance level of the exact tests.
pub const DEFAULT_ALPHA: f64 = 0.01;
/// The dead-man switch metric.
pub const MISSED_RUN: &str = "missed_run";
/// Longest trailing window.
pub const MAX_TRAILING: u32 = 100;

const KEYS: [&str; 15] = [
    "metric", "drop", "rise", "ratio", "min", "max", "after", "baseline", "severity", "runbook",
    "tag", "provider", "alpha", "test", "name",
];

/// What the rule compares its metric with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaselineKind {
    /// The last complete run before this one.
    Previous,
    /// The last N complete runs before this one.
    Trailing(u32),
    /// The run pinned with `evalwatch baseline pin`.
    Pinned,
}

impl BaselineKind {
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "previous" => Some(Self::Previous),
            "pinned" => Some(Self::Pinned),
            other => {
                let n: u32 = other.strip_prefix("trailing:")?.trim().parse().ok()?;
                (1..=MAX_TRAILING).contains(&n).then_some(Self::Trailing(n))
            }
        }
    }

    #[must_use]
    pub fn label(self) -> String {
        match self {
            Self::Previous => "previous".into(),
            Self::Pinned => "pinned".into(),
            Self::Trailing(n) => format!("trailing:{n}"),
        }
    }
}

/// When a rule fires.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Condition {
    /// The value fell by at least this much (absolute) below the baseline.
    Drop(f64),
    /// The value rose by at least this much above the baseline.
    Rise(f64),
    /// value >= ratio x baseline (ratio >= 1), or value <= ratio x baseline (ratio < 1).
    Ratio(f64),
    /// The value is below this floor (no baseline).
    Min(f64),
    /// The value is above this ceiling (no baseline).
    Max(f64),
    /// `missed_run`: no complete run within this long.
    After(Duration),
}

impl Condition {
    #[must_use]
    pub fn uses_baseline(self) -> bool {
        matches!(self, Self::Drop(_) | Self::Rise(_) | Self::Ratio(_))
    }

    pub(crate) fn label(self) -> String {
        match self {
            Self::Drop(v) => format!("drop {v}"),
            Self::Rise(v) => format!("rise {v}"),
            Self::Ratio(v) => format!("ratio {v}"),
            Self::Min(v) => format!("min {v}"),
            Self::Max(v) => format!("max {v}"),
            Self::After(d) => format!("after {}", fmt_duration(d)),
        }
    }
}

/// Which statistical test must agree before a baseline rule fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestKind {
    /// `pass_rate`: exact McNemar or Fisher; other metrics: none.
    Auto,
    /// The threshold alone decides.
    None,
    /// Two-sample Kolmogorov-Smirnov on the per-result values behind the metric
    /// (latency for `latency_*`, score for `mean_score`, output length for `output_chars`).
    Ks,
    /// Chi-square on the predicted-label distribution (`label_distribution`).
    ChiSquare,
}

/// A validated alert rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Stable name: the alert state key (explicit `name:` or derived from the rule).
    pub name: String,
    pub metric: String,
    pub condition: Condition,
    pub baseline: BaselineKind,
    pub severity: Severity,
    pub runbook: Option<String>,
    pub tag: Option<String>,
    pub provider: Option<String>,
    pub alpha: f64,
    pub test: TestKind,
}

impl Rule {
    /// The `after` of a `missed_run` rule (zero for other rules).
    #[must_use]
    pub fn condition_after(&self) -> Duration {
        match self.condition {
            Condition::After(d) => d,
            _ => Duration::ZERO,
        }
    }
}

/// Metrics whose values come from per-result distributions and so support `test: ks`.
pub const KS_METRICS: [&str; 6] = [
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "latency_max_ms",
    "mean_score",
    OUTPUT_CHARS,
];

/// Pseudo-metric: mean output length in characters of the successful results.
pub const OUTPUT_CHARS: &str = "output_chars";
/// Pseudo-metric: the distribution of predicted labels (`classification`), value = chi-square
/// statistic against the baseline; only `test: chi2` with `max`-less drift semantics.
pub const LABEL_DISTRIBUTION: &str = "label_distribution";
/// Mean human quality score (1-5) of a run's graded results (`evalwatch review`); a rule on
/// it judges the newest run that has grades.
pub const HUMAN_SCORE: &str = "human_score";

#[must_use]
pub fn severity_str(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

#[must_use]
pub fn severity_parse(s: &str) -> Option<Severity> {
    match s {
        "info" => Some(Severity::Info),
        "warning" => Some(Severity::Warning),
        "critical" => Some(Severity::Critical),
        _ => None,
    }
}

/// A positive duration (`26h`, `90m`, `2d`, `1h30m`, `45s`: every form of
/// [`crate::model::duration`]); `None` for no time or text that is not a duration.
#[must_use]
pub fn parse_duration(s: &str) -> Option<Duration> {
    crate::model::duration::parse(s).filter(|d| !d.is_zero())
}

/// A duration as the shortest of `2d`, `26h`, `90m`, `45s`.
#[must_use]
pub fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s > 0 && s.is_multiple_of(86_400) {
        format!("{}d", s / 86_400)
    } else if s > 0 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s > 0 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// ` ; did you mean `x`?` when a candidate is a plausible misspelling, else empty.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    let lower = word.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (c, strsim::jaro_winkler(&lower, c)))
        .filter(|(c, score)| {
            (*score >= 0.85 && lower.chars().count() >= 3)
                || strsim::levenshtein(&lower, c) * 2 < lower.chars().count()
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map_or_else(String::new, |(c, _)| format!("; did you mean `{c}`?"))
}

fn number(v: &Value, key: &str) -> Result<f64, String> {
    v.as_f64()
        .filter(|x| x.is_finite())
        .ok_or_else(|| format!("`{key}` must be a number, found {v}"))
}

fn text<'a>(v: &'a Value, key: &str) -> Result<&'a str, String> {
    v.as_str()
        .ok_or_else(|| format!("`{key}` must be a string, found {v}"))
}

/// Whether `metric` can be alerted on: a run metric, a named metric of the suite, or one of
/// the alert stage's own (`missed_run`, `output_chars`, `label_distribution`).
#[must_use]
pub fn known_metric(metric: &str, named: &BTreeSet<String>) -> bool {
    Metrics::NAMES.contains(&metric)
        || metric == MISSED_RUN
        || metric == OUTPUT_CHARS
        || metric == LABEL_DISTRIBUTION
        || metric == HUMAN_SCORE
        || named.contains(metric)
}

/// The most a metric can change between two runs and how its scale reads, for the metrics
/// whose scale is bounded: the rates, `mean_score`, `agreement` and named metrics (means of
/// scores) are fractions from 0 to 1, so a `drop` or `rise` above 1 (100 points) can never
/// fire; `human_score` is a mean grade from 1 to 5.
fn change_bound(metric: &str, named: &BTreeSet<String>) -> Option<(f64, &'static str)> {
    const FRACTIONS: [&str; 8] = [
        "pass_rate",
        "error_rate",
        "mean_score",
        "hallucination_rate",
        "contradiction_rate",
        "unsupported_rate",
        "case_pass_rate",
        "agreement",
    ];
    if FRACTIONS.contains(&metric) || named.contains(metric) {
        Some((1.0, "a fraction from 0 to 1"))
    } else if metric == HUMAN_SCORE {
        Some((4.0, "a mean grade from 1 to 5"))
    } else {
        None
    }
}

/// The traffic metrics that are fractions from 0 to 1 (shares of requests, of scored records
/// or of rated requests).
const TRAFFIC_FRACTIONS: [&str; 9] = [
    "traffic.error_rate",
    "traffic.availability",
    "traffic.pass_rate",
    "traffic.hallucination_rate",
    "traffic.refusal_rate",
    "traffic.low_confidence_rate",
    "traffic.satisfaction",
    "traffic.thumbs_down_rate",
    "traffic.feedback_rate",
];

/// The range a bounded metric's value lies in, and how it reads, for judging `min`/`max`:
/// the metrics of [`change_bound`] and the traffic rates.
fn value_range(metric: &str, named: &BTreeSet<String>) -> Option<(f64, f64, &'static str)> {
    if TRAFFIC_FRACTIONS.contains(&metric) {
        return Some((0.0, 1.0, "a fraction from 0 to 1"));
    }
    change_bound(metric, named).map(|(most, scale)| {
        let low = if metric == HUMAN_SCORE { 1.0 } else { 0.0 };
        (low, low + most, scale)
    })
}

/// A `min`/`max` bound outside the range of its metric's values: such a bound is never
/// crossed (a `max: 5` meant as 5% on a rate is the mistake this catches, and the silent one)
/// or crossed by every value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OutsideValues {
    /// Whether no value can cross it (else every value does).
    pub never: bool,
    /// "`max: 5` is outside `error_rate`'s values, a fraction from 0 to 1".
    pub what: String,
    /// What a percentage written as a whole number meant ("`max: 0.05` is 5%"), or empty.
    pub meant: String,
}

impl OutsideValues {
    /// `key: x` (`min` or `max`) on `metric` (a named metric of the suite when in `named`),
    /// when it lies outside the metric's values.
    pub(crate) fn of(key: &str, x: f64, metric: &str, named: &BTreeSet<String>) -> Option<Self> {
        let (low, high, scale) = value_range(metric, named)?;
        if (low..=high).contains(&x) {
            return None;
        }
        let meant = if high <= 1.0 && x > high && x <= 100.0 {
            format!(" (`{key}: {}` is {x}%)", x / 100.0)
        } else {
            String::new()
        };
        Some(Self {
            never: (key == "max") == (x > high),
            what: format!("`{key}: {x}` is outside `{metric}`'s values, {scale}"),
            meant,
        })
    }
}

/// The problem of a rule's `min`/`max` outside its metric's values ([`OutsideValues`]).
fn bound_outside(key: &str, x: f64, metric: &str, named: &BTreeSet<String>) -> Option<RuleProblem> {
    let o = OutsideValues::of(key, x, metric, named)?;
    let outcome = if o.never {
        "it can never fire"
    } else {
        "it would fire on every value"
    };
    Some(RuleProblem::at(
        key,
        format!("{}: {outcome}{}", o.what, o.meant),
    ))
}

/// One problem of a raw rule, with the key it is about so that the loader can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleProblem {
    /// The rule's key the problem is about; None: the rule as a whole.
    pub key: Option<String>,
    /// Point at the key itself (an unknown key) rather than its value.
    pub on_key: bool,
    pub message: String,
}

impl RuleProblem {
    pub(crate) fn at(key: &str, message: impl Into<String>) -> Self {
        Self {
            key: Some(key.to_owned()),
            on_key: false,
            message: message.into(),
        }
    }

    pub(crate) fn whole(message: impl Into<String>) -> Self {
        Self {
            key: None,
            on_key: false,
            message: message.into(),
        }
    }
}

/// Which metrics a rule may name.
#[derive(Debug, Clone, Copy)]
pub enum MetricScope<'a> {
    /// A suite's rule: a run metric, one of the alert stage's own, or a named metric of the
    /// suite.
    Suite(&'a BTreeSet<String>),
    /// A project default rule (`evalwatch.yaml`), judged before any suite is known: a name
    /// that is a near miss of a run metric is an error; any other name may be a suite's
    /// named metric and is judged per suite.
    Project,
    /// A traffic source's rule (`alert::traffic`): one of the listed traffic metrics.
    Traffic(&'a [&'a str]),
}

/// Every metric name a rule may take, `named` included.
fn metric_names(named: &BTreeSet<String>) -> Vec<&str> {
    let mut all: Vec<&str> = Metrics::NAMES.to_vec();
    all.extend([MISSED_RUN, OUTPUT_CHARS, LABEL_DISTRIBUTION, HUMAN_SCORE]);
    all.extend(named.iter().map(String::as_str));
    all
}

/// The message for a metric no rule may name.
#[must_use]
pub fn unknown_metric(metric: &str, named: &BTreeSet<String>) -> String {
    let hint = did_you_mean(metric, metric_names(named));
    format!(
        "unknown metric `{metric}`{hint} (a run metric, a named `metric:` of an assertion, `missed_run`, `output_chars`, `label_distribution` or `human_score`)"
    )
}

/// Parse one raw rule. `named` holds the suite's named metrics.
pub fn parse_rule(raw: &Value, named: &BTreeSet<String>) -> Result<Rule, String> {
    judge_rule(raw, MetricScope::Suite(named)).map_err(|problems| {
        problems
            .iter()
            .map(|p| p.message.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// Judge one raw rule: the rule, or every problem with it, each tied to the key it is about.
/// This is the one judgement of the rule grammar: the suite loader (and so `validate`,
/// `run`, `schedule` and `alerts check`) calls it.
#[allow(clippy::too_many_lines)]
pub fn judge_rule(raw: &Value, metrics: MetricScope<'_>) -> Result<Rule, Vec<RuleProblem>> {
    let Some(map) = raw.as_object() else {
        return Err(vec![RuleProblem::whole(format!(
            "an alert rule must be a mapping, found {raw}"
        ))]);
    };
    let no_names = BTreeSet::new();
    let named = match metrics {
        MetricScope::Suite(n) => n,
        MetricScope::Project | MetricScope::Traffic(_) => &no_names,
    };
    let mut errors: Vec<RuleProblem> = Vec::new();
    let mut hinted_metric = false;
    for key in map.keys() {
        if !KEYS.contains(&key.as_str()) {
            let hint = did_you_mean(key, KEYS.iter().copied());
            hinted_metric |= hint.contains("`metric`");
            errors.push(RuleProblem {
                key: Some(key.clone()),
                on_key: true,
                message: format!("unknown key `{key}` in an alert rule{hint}"),
            });
        }
    }
    let metric = match map.get("metric").map(|v| text(v, "metric")) {
        Some(Ok(m)) => m.to_owned(),
        Some(Err(e)) => {
            errors.push(RuleProblem::at("metric", e));
            return Err(errors);
        }
        None => {
            if !hinted_metric {
                errors.push(RuleProblem::whole(
                    "an alert rule needs a `metric` (e.g. `metric: pass_rate`)",
                ));
            }
            return Err(errors);
        }
    };
    let metric_ok = match metrics {
        MetricScope::Suite(named) => known_metric(&metric, named),
        MetricScope::Project => {
            known_metric(&metric, &no_names)
                || did_you_mean(&metric, metric_names(&no_names)).is_empty()
        }
        MetricScope::Traffic(list) => list.contains(&metric.as_str()),
    };
    if !metric_ok {
        let message = match metrics {
            MetricScope::Traffic(list) => format!(
                "unknown traffic metric `{metric}`{}",
                did_you_mean(&metric, list.iter().copied())
            ),
            _ => unknown_metric(&metric, named),
        };
        errors.push(RuleProblem::at("metric", message));
    }
    // Each condition with the key it is written under.
    let mut conditions: Vec<(&str, Condition)> = Vec::new();
    for key in ["drop", "rise", "ratio", "min", "max"] {
        if let Some(v) = map.get(key) {
            match number(v, key) {
                Ok(x) => {
                    let c = match key {
                        "drop" => Condition::Drop(x),
                        "rise" => Condition::Rise(x),
                        "ratio" => Condition::Ratio(x),
                        "min" => Condition::Min(x),
                        _ => Condition::Max(x),
                    };
                    if matches!(key, "drop" | "rise") && x < 0.0 {
                        errors.push(RuleProblem::at(
                            key,
                            format!("`{key}` must be zero or more, found {x}"),
                        ));
                    }
                    if let Some((most, scale)) = change_bound(&metric, named)
                        && matches!(key, "drop" | "rise")
                        && x > most
                    {
                        let (verb, example) = if key == "drop" {
                            ("fall", " (`drop: 0.05` is 5 points)")
                        } else {
                            ("rise", " (`rise: 0.05` is 5 points)")
                        };
                        let example = if most > 1.0 { "" } else { example };
                        errors.push(RuleProblem::at(
                            key,
                            format!(
                                "`{key}: {x}` can never fire: `{metric}` is {scale}, so it can {verb} by {most} at most{example}"
                            ),
                        ));
                    }
                    if matches!(key, "min" | "max")
                        && let Some(problem) = bound_outside(key, x, &metric, named)
                    {
                        errors.push(problem);
                    }
                    if key == "ratio" && (x <= 0.0 || (x - 1.0).abs() < f64::EPSILON) {
                        errors.push(RuleProblem::at(key, format!(
                            "`ratio` must be above 0 and not 1 (3.0: three times the baseline; 0.5: half of it), found {x}"
                        )));
                    }
                    conditions.push((key, c));
                }
                Err(e) => errors.push(RuleProblem::at(key, e)),
            }
        }
    }
    if let Some(v) = map.get("after") {
        match text(v, "after").and_then(|s| {
            parse_duration(s).ok_or_else(|| {
                format!("`after` must be a duration like `26h`, `90m` or `2d`, found `{s}`")
            })
        }) {
            Ok(d) => conditions.push(("after", Condition::After(d))),
            Err(e) => errors.push(RuleProblem::at("after", e)),
        }
    }
    let condition = if metric == MISSED_RUN {
        if let [(_, Condition::After(d))] = conditions.as_slice() {
            Some(Condition::After(*d))
        } else {
            let other = conditions.iter().find(|(k, _)| *k != "after");
            let message =
                "a `missed_run` rule takes `after` (e.g. `after: 26h`) and no other condition";
            errors.push(match other {
                Some((k, _)) => RuleProblem::at(k, message),
                // A bad `after` was reported already.
                None if map.contains_key("after") => return Err(errors),
                None => RuleProblem::whole(message),
            });
            None
        }
    } else {
        match conditions.as_slice() {
            [(_, Condition::After(_))] => {
                errors.push(RuleProblem::at(
                    "after",
                    "`after` only applies to `metric: missed_run`",
                ));
                None
            }
            [(_, c)] => Some(*c),
            [] => {
                if !map
                    .keys()
                    .any(|k| ["drop", "rise", "ratio", "min", "max", "after"].contains(&k.as_str()))
                {
                    errors.push(RuleProblem::whole(
                        "an alert rule needs one of `drop`, `rise`, `ratio`, `min` or `max`",
                    ));
                }
                None
            }
            [(first, _), rest @ ..] => {
                for (key, _) in rest {
                    errors.push(RuleProblem::at(key, format!(
                        "`{key}` conflicts with `{first}`: an alert rule takes one of `drop`, `rise`, `ratio`, `min`, `max`; write one rule per condition"
                    )));
                }
                None
            }
        }
    };
    let baseline = match map.get("baseline") {
        None => BaselineKind::Previous,
        Some(v) => match text(v, "baseline") {
            Ok(s) => BaselineKind::parse(s).unwrap_or_else(|| {
                errors.push(RuleProblem::at("baseline", bad_baseline(s)));
                BaselineKind::Previous
            }),
            Err(e) => {
                errors.push(RuleProblem::at("baseline", e));
                BaselineKind::Previous
            }
        },
    };
    let severity = match map.get("severity") {
        None => Severity::Warning,
        Some(v) => {
            if let Ok(Some(s)) = text(v, "severity").map(severity_parse) {
                s
            } else {
                let (found, hint) = v.as_str().map_or_else(
                    || (v.to_string(), String::new()),
                    |s| {
                        (
                            format!("`{s}`"),
                            did_you_mean(s, ["info", "warning", "critical"]),
                        )
                    },
                );
                errors.push(RuleProblem::at(
                    "severity",
                    format!("unknown severity {found}{hint}; use `info`, `warning` or `critical`"),
                ));
                Severity::Warning
            }
        }
    };
    let mut opt_text = |key: &str| match map.get(key) {
        None | Some(Value::Null) => None,
        Some(v) => match text(v, key) {
            Ok(s) => Some(s.to_owned()),
            Err(e) => {
                errors.push(RuleProblem::at(key, e));
                None
            }
        },
    };
    let runbook = opt_text("runbook");
    let tag = opt_text("tag");
    let provider = opt_text("provider");
    let name = opt_text("name");
    let test_name = opt_text("test");
    let alpha = match map.get("alpha") {
        None => DEFAULT_ALPHA,
        Some(v) => match number(v, "alpha") {
            Ok(a) if a > 0.0 && a < 1.0 => a,
            Ok(a) => {
                errors.push(RuleProblem::at(
                    "alpha",
                    format!("`alpha` must be between 0 and 1, found {a}"),
                ));
                DEFAULT_ALPHA
            }
            Err(e) => {
                errors.push(RuleProblem::at("alpha", e));
                DEFAULT_ALPHA
            }
        },
    };
    let test = match test_name.as_deref() {
        None | Some("auto") => TestKind::Auto,
        Some("none") => TestKind::None,
        Some("ks") => TestKind::Ks,
        Some("chi2" | "chi-square") => TestKind::ChiSquare,
        Some(other) => {
            let hint = did_you_mean(other, ["auto", "none", "ks", "chi2", "chi-square"]);
            errors.push(RuleProblem::at(
                "test",
                format!("`test` must be `auto`, `none`, `ks` or `chi2`, found `{other}`{hint}"),
            ));
            TestKind::Auto
        }
    };
    if test == TestKind::Ks && !KS_METRICS.contains(&metric.as_str()) {
        errors.push(RuleProblem::at(
            "test",
            format!(
                "`test: ks` compares per-result distributions; it applies to {}, not `{metric}`",
                KS_METRICS.join(", ")
            ),
        ));
    }
    if metric == LABEL_DISTRIBUTION {
        if !matches!(test, TestKind::Auto | TestKind::ChiSquare) {
            errors.push(RuleProblem::at(
                "test",
                "`label_distribution` is tested with chi-square only (`test: chi2`)",
            ));
        }
        if !matches!(condition, Some(Condition::Max(_)) | None) {
            let key = conditions.first().map_or("metric", |(k, _)| *k);
            errors.push(RuleProblem::at(key, "`label_distribution` takes `max`: the largest chi-square statistic tolerated (0 alerts on any significant shift)"));
        }
    } else if test == TestKind::ChiSquare {
        errors.push(RuleProblem::at(
            "test",
            "`test: chi2` applies to `metric: label_distribution` only",
        ));
    }
    if let Some(c) = condition
        && !c.uses_baseline()
        && map.contains_key("baseline")
        && metric != LABEL_DISTRIBUTION
    {
        errors.push(RuleProblem::at(
            "baseline",
            format!(
                "`baseline` has no effect with `{}`: it compares with a fixed value",
                c.label().split(' ').next().unwrap_or("")
            ),
        ));
    }
    let Some(condition) = condition else {
        return Err(errors);
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let test = if metric == LABEL_DISTRIBUTION {
        TestKind::ChiSquare
    } else {
        test
    };
    let name = name.unwrap_or_else(|| {
        let mut n = format!("{metric} {}", condition.label());
        if condition.uses_baseline() || metric == LABEL_DISTRIBUTION {
            let _ = write!(n, " vs {}", baseline.label());
        }
        if let Some(t) = &tag {
            let _ = write!(n, " [tag {t}]");
        }
        n
    });
    Ok(Rule {
        name,
        metric,
        condition,
        baseline,
        severity,
        runbook,
        tag,
        provider,
        alpha,
        test,
    })
}

/// Why `s` is not a baseline, as precisely as can be told.
fn bad_baseline(s: &str) -> String {
    let usage = format!("use `previous`, `pinned` or `trailing:N` with N from 1 to {MAX_TRAILING}");
    if let Some(n) = s.trim().strip_prefix("trailing:") {
        let n = n.trim();
        return match n.parse::<u64>() {
            Ok(k) => format!(
                "`baseline: {s}`: the trailing window must hold 1 to {MAX_TRAILING} runs, found {k}"
            ),
            Err(_) => format!(
                "`baseline: {s}`: `{n}` is not a number of runs; {usage} (e.g. `trailing:7`)"
            ),
        };
    }
    let hint = did_you_mean(s, ["previous", "pinned", "trailing:7"]);
    format!("unknown baseline `{s}`{hint}; {usage}")
}

/// A rule that did not parse: where it came from and why.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleError {
    /// `suite` or `project`.
    pub origin: &'static str,
    /// 0-based position in its `alerts:` list.
    pub index: usize,
    pub message: String,
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "alert rule {} of the {}: {}",
            self.index + 1,
            self.origin,
            self.message
        )
    }
}

/// The rules of a suite: its own, then the project's defaults for metrics the suite does
/// not alert on itself (a suite rule on a metric replaces the project's rules on it).
pub fn rules_for(
    suite_rules: &[Value],
    project_rules: &[Value],
    named: &BTreeSet<String>,
) -> (Vec<Rule>, Vec<RuleError>) {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    for (index, raw) in suite_rules.iter().enumerate() {
        match parse_rule(raw, named) {
            Ok(r) => rules.push(r),
            Err(message) => errors.push(RuleError {
                origin: "suite",
                index,
                message,
            }),
        }
    }
    let suite_metrics: BTreeSet<String> = suite_rules
        .iter()
        .filter_map(|r| r.get("metric").and_then(Value::as_str).map(str::to_owned))
        .collect();
    for (index, raw) in project_rules.iter().enumerate() {
        match parse_rule(raw, named) {
            Ok(r) if suite_metrics.contains(&r.metric) => {}
            Ok(r) => rules.push(r),
            Err(message) => errors.push(RuleError {
                origin: "project config",
                index,
                message,
            }),
        }
    }
    // Two rules with one name would share alert state: number the later ones.
    let mut seen = BTreeSet::new();
    for r in &mut rules {
        let base = r.name.clone();
        let mut k = 2;
        while !seen.insert(r.name.clone()) {
            r.name = format!("{base} #{k}");
            k += 1;
        }
    }
    (rules, errors)
}

#[cfg(test)]
#[allow(clippy::float_cmp)]
mod tests;
