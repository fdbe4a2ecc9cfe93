//! One rule against the current run and its baseline runs: a pure function of data the app
//! reads from the store.
//!
//! Decisions (documented in docs/alerts.md):
//! - `pass_rate` with `drop`/`rise` (test `auto`) fires only when an exact test says the
//!   change is unlikely to be chance (one-sided p < `alpha`) *and* the change could be as
//!   large as the threshold: `observed + z(1 - alpha/2) x SE >= threshold`. The test is a
//!   paired exact McNemar when the baseline is one run covering the same (case, sample)
//!   results, Fisher's exact test on pooled counts otherwise. Known-flaky cases (mixed
//!   outcomes within the flakiness window or within a run's samples) are left out of the
//!   test and listed apart.
//! - Other baseline rules compare the value with the baseline value (one run's, or the
//!   median over a trailing window); `test: ks` adds a two-sample KS test on the per-result
//!   values behind the metric; `label_distribution` is a chi-square test.
//!
//! This file holds the inputs, the finding and the threshold, KS and label rules;
//! `pass_rate.rs` the pass-rate change test; `text.rs` the human text of values and changes.

mod pass_rate;
mod text;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use super::rule::{BaselineKind, Condition, LABEL_DISTRIBUTION, OUTPUT_CHARS, Rule, TestKind};
use super::stats;
use crate::model::{CaseStatus, ProviderMetrics};
use pass_rate::pass_rate_change;
use text::describe_threshold;
pub use text::{fmt_amount, fmt_change, fmt_p, fmt_value};

/// Flipped cases named in a notice's text.
pub const TOP_FLIPS: usize = 10;
/// Flipped cases listed in a notice's JSON payload (`flipped.cases`; `total` counts all).
pub const MAX_FLIPS: usize = 1000;
/// Tags and providers listed where a change concentrates.
pub const TOP_CONCENTRATION: usize = 3;

/// The per-result values KS and chi-square need (loaded only for rules that use them).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResultSample {
    pub case_id: String,
    pub provider: String,
    pub latency_ms: Option<f64>,
    pub score: Option<f64>,
    pub output_chars: Option<f64>,
    pub label: Option<String>,
}

/// What evaluation needs of one stored run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunSnapshot {
    pub run_id: String,
    pub started_at: String,
    pub metrics: Vec<ProviderMetrics>,
    /// (case id, provider, sample, status), as `Store::result_statuses` gives them.
    pub statuses: Vec<(String, String, u32, CaseStatus)>,
    /// Per-result values; empty unless a rule needs them.
    pub samples: Vec<ResultSample>,
}

impl RunSnapshot {
    fn metric(&self, provider: &str, tag: Option<&str>, metric: &str) -> Option<f64> {
        if metric == OUTPUT_CHARS {
            return None;
        }
        self.metrics
            .iter()
            .find(|m| m.provider == provider && m.tag.as_deref() == tag)
            .and_then(|m| m.metrics.get(metric))
            .filter(|v| v.is_finite())
    }
}

/// Everything a rule is evaluated against.
#[derive(Debug, Clone, Copy)]
pub struct EvalInput<'a> {
    pub current: &'a RunSnapshot,
    /// The baseline runs, newest first (empty when there is none yet).
    pub baseline: &'a [RunSnapshot],
    /// Recent complete runs before the current one, newest first, for flakiness.
    pub window: &'a [RunSnapshot],
    /// Tags of each case id (from the suite).
    pub case_tags: &'a HashMap<String, Vec<String>>,
}

/// The outcome of a rule on one provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Firing,
    Clear,
    /// Could not be decided (no baseline yet, metric without a value): state is left as is.
    Unknown,
}

/// The statistical test that decided, if any.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TestResult {
    /// `mcnemar`, `fisher`, `ks` or `chi2`.
    pub name: &'static str,
    pub p_value: f64,
    pub statistic: Option<f64>,
    /// Pairs/results the test used.
    pub n: u64,
}

/// A case whose outcome went the bad way against the baseline: for a drop, it fails now and
/// passed in most of the baseline runs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Flip {
    pub case_id: String,
    pub sample: u32,
    pub from: &'static str,
    pub to: &'static str,
}

/// Where a change is largest: a tag of this provider, or another provider.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Concentration {
    /// `tag` or `provider`.
    pub kind: &'static str,
    pub name: String,
    pub value: f64,
    pub baseline: f64,
    /// Change in the bad direction (positive = worse).
    pub worse_by: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub verdict: Verdict,
    pub provider: String,
    pub tag: Option<String>,
    pub value: Option<f64>,
    pub baseline_value: Option<f64>,
    pub test: Option<TestResult>,
    /// Flips of stable cases (top N) and how many there were.
    pub flipped: Vec<Flip>,
    pub flipped_total: usize,
    /// Flips of known-flaky cases, reported apart.
    pub flaky_flipped: Vec<Flip>,
    pub flaky_flipped_total: usize,
    pub concentration: Vec<Concentration>,
    /// The cases counted as known-flaky (the pass-rate test only): they cannot trigger an
    /// alert alone.
    pub known_flaky: Vec<String>,
    /// One line: why it fired, or why not.
    pub detail: String,
}

impl Finding {
    fn new(provider: &str, tag: Option<&str>) -> Self {
        Self {
            verdict: Verdict::Unknown,
            provider: provider.to_owned(),
            tag: tag.map(str::to_owned),
            value: None,
            baseline_value: None,
            test: None,
            flipped: Vec::new(),
            flipped_total: 0,
            flaky_flipped: Vec::new(),
            flaky_flipped_total: 0,
            concentration: Vec::new(),
            known_flaky: Vec::new(),
            detail: String::new(),
        }
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        f64::midpoint(v[n / 2 - 1], v[n / 2])
    })
}

/// The baseline value of a metric: the one baseline run's, or the median over the window.
fn baseline_value(rule: &Rule, provider: &str, input: &EvalInput<'_>) -> Option<f64> {
    median(
        input
            .baseline
            .iter()
            .filter_map(|r| r.metric(provider, rule.tag.as_deref(), &rule.metric))
            .collect(),
    )
}

fn has_tag(case_tags: &HashMap<String, Vec<String>>, case: &str, tag: Option<&str>) -> bool {
    tag.is_none_or(|t| {
        case_tags
            .get(case)
            .is_some_and(|ts| ts.iter().any(|x| x == t))
    })
}

/// Whether evaluating `rule` reads the per-result statuses of the runs
/// ([`RunSnapshot::statuses`]): the pass-rate change test does, nothing else.
#[must_use]
pub fn needs_statuses(rule: &Rule) -> bool {
    rule.metric == "pass_rate"
        && rule.test == TestKind::Auto
        && matches!(rule.condition, Condition::Drop(_) | Condition::Rise(_))
}

/// Whether evaluating `rule` reads the per-result values of the runs
/// ([`RunSnapshot::samples`]): KS tests, `label_distribution` and `output_chars`.
#[must_use]
pub fn needs_samples(rule: &Rule) -> bool {
    rule.test == TestKind::Ks || rule.metric == LABEL_DISTRIBUTION || rule.metric == OUTPUT_CHARS
}

/// Evaluate a (non-`missed_run`) rule on one provider.
#[must_use]
pub fn evaluate(rule: &Rule, provider: &str, input: &EvalInput<'_>) -> Finding {
    let tag = rule.tag.as_deref();
    let mut f = Finding::new(provider, tag);
    f.value = if rule.metric == OUTPUT_CHARS {
        mean(&values(
            input.current,
            provider,
            tag,
            input.case_tags,
            |s| s.output_chars,
        ))
    } else {
        input.current.metric(provider, tag, &rule.metric)
    };
    if let BaselineKind::Trailing(n) = rule.baseline
        && (rule.condition.uses_baseline() || rule.metric == LABEL_DISTRIBUTION)
        && input.baseline.len() < n as usize
    {
        f.detail = format!(
            "no baseline yet: {} of {n} trailing runs (trailing:{n} waits for {n} complete runs before this one)",
            input.baseline.len()
        );
        return f;
    }
    if rule.metric == LABEL_DISTRIBUTION {
        return label_shift(rule, provider, input, f);
    }
    if rule.metric == OUTPUT_CHARS {
        f.baseline_value = median(
            input
                .baseline
                .iter()
                .filter_map(|r| {
                    mean(&values(r, provider, tag, input.case_tags, |s| {
                        s.output_chars
                    }))
                })
                .collect(),
        );
    } else if rule.condition.uses_baseline() {
        f.baseline_value = baseline_value(rule, provider, input);
    }
    let Some(value) = f.value else {
        f.detail = format!("`{}` has no value in this run", rule.metric);
        return f;
    };
    if rule.metric == "pass_rate"
        && rule.test == TestKind::Auto
        && matches!(rule.condition, Condition::Drop(_) | Condition::Rise(_))
    {
        return pass_rate_change(rule, provider, input, f);
    }
    let breached = match rule.condition {
        Condition::Min(m) => value < m,
        Condition::Max(m) => value > m,
        Condition::After(_) => false,
        Condition::Drop(_) | Condition::Rise(_) | Condition::Ratio(_) => {
            let Some(base) = f.baseline_value else {
                f.detail = format!("no baseline value of `{}` yet", rule.metric);
                return f;
            };
            match rule.condition {
                Condition::Drop(d) => base - value >= d && value < base,
                Condition::Rise(d) => value - base >= d && value > base,
                Condition::Ratio(r) if r >= 1.0 => base > 0.0 && value >= r * base,
                Condition::Ratio(r) => base > 0.0 && value <= r * base,
                _ => false,
            }
        }
    };
    let worse_up = worse_is_up(rule.condition);
    if rule.condition.uses_baseline() {
        f.concentration = concentration(rule, provider, input, worse_up);
    }
    let mut detail = describe_threshold(rule, value, f.baseline_value, breached);
    let mut confirmed = true;
    if breached && rule.test == TestKind::Ks {
        let pick = ks_field(&rule.metric);
        let cur = values(input.current, provider, tag, input.case_tags, pick);
        let base: Vec<f64> = input
            .baseline
            .iter()
            .flat_map(|r| values(r, provider, tag, input.case_tags, pick))
            .collect();
        let ks = stats::ks_two_sample(&cur, &base);
        confirmed = ks.p_value < rule.alpha;
        let _ = write!(
            detail,
            "; KS D = {:.3}, p = {} over {} vs {} results{}",
            ks.statistic,
            fmt_p(ks.p_value),
            cur.len(),
            base.len(),
            if confirmed {
                ""
            } else {
                " (not significant: no alert)"
            }
        );
        f.test = Some(TestResult {
            name: "ks",
            p_value: ks.p_value,
            statistic: Some(ks.statistic),
            n: (cur.len() + base.len()) as u64,
        });
    }
    f.verdict = if breached && confirmed {
        Verdict::Firing
    } else {
        Verdict::Clear
    };
    f.detail = detail;
    f
}

fn worse_is_up(c: Condition) -> bool {
    match c {
        Condition::Drop(_) | Condition::Min(_) => false,
        Condition::Ratio(r) => r >= 1.0,
        _ => true,
    }
}

fn ks_field(metric: &str) -> fn(&ResultSample) -> Option<f64> {
    match metric {
        "mean_score" => |s| s.score,
        OUTPUT_CHARS => |s| s.output_chars,
        _ => |s| s.latency_ms,
    }
}

fn values(
    run: &RunSnapshot,
    provider: &str,
    tag: Option<&str>,
    case_tags: &HashMap<String, Vec<String>>,
    pick: fn(&ResultSample) -> Option<f64>,
) -> Vec<f64> {
    run.samples
        .iter()
        .filter(|s| s.provider == provider && has_tag(case_tags, &s.case_id, tag))
        .filter_map(pick)
        .filter(|v| v.is_finite())
        .collect()
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Where the change of the rule's metric is largest: across this provider's tags (for a rule
/// without a tag) and across the run's other providers.
fn concentration(
    rule: &Rule,
    provider: &str,
    input: &EvalInput<'_>,
    worse_up: bool,
) -> Vec<Concentration> {
    let base_of = |p: &str, t: Option<&str>| {
        median(
            input
                .baseline
                .iter()
                .filter_map(|r| r.metric(p, t, &rule.metric))
                .collect(),
        )
    };
    let mut out = Vec::new();
    let mut push = |kind: &'static str, name: &str, p: &str, t: Option<&str>| {
        if let (Some(v), Some(b)) = (input.current.metric(p, t, &rule.metric), base_of(p, t)) {
            let worse_by = if worse_up { v - b } else { b - v };
            if worse_by > 0.0 {
                out.push(Concentration {
                    kind,
                    name: name.to_owned(),
                    value: v,
                    baseline: b,
                    worse_by,
                });
            }
        }
    };
    if rule.tag.is_none() {
        for m in &input.current.metrics {
            if m.provider == provider
                && let Some(t) = &m.tag
            {
                push("tag", t, provider, Some(t));
            }
        }
    }
    let others: BTreeSet<&str> = input
        .current
        .metrics
        .iter()
        .map(|m| m.provider.as_str())
        .filter(|p| *p != provider)
        .collect();
    for p in others {
        push("provider", p, p, rule.tag.as_deref());
    }
    out.sort_by(|a, b| b.worse_by.total_cmp(&a.worse_by));
    let mut tags: Vec<Concentration> = out
        .iter()
        .filter(|c| c.kind == "tag")
        .take(TOP_CONCENTRATION)
        .cloned()
        .collect();
    tags.extend(
        out.into_iter()
            .filter(|c| c.kind == "provider")
            .take(TOP_CONCENTRATION),
    );
    tags
}

/// `label_distribution`: chi-square of predicted labels against the pooled baseline.
fn label_shift(rule: &Rule, provider: &str, input: &EvalInput<'_>, mut f: Finding) -> Finding {
    let tag = rule.tag.as_deref();
    let count = |run: &RunSnapshot, into: &mut BTreeMap<String, (u64, u64)>, first: bool| {
        for s in &run.samples {
            if s.provider != provider || !has_tag(input.case_tags, &s.case_id, tag) {
                continue;
            }
            let Some(label) = &s.label else { continue };
            let e = into.entry(label.clone()).or_default();
            if first {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
        }
    };
    let mut table = BTreeMap::new();
    count(input.current, &mut table, true);
    for run in input.baseline {
        count(run, &mut table, false);
    }
    if input.baseline.is_empty() {
        f.detail = format!("no {} baseline run yet", rule.baseline.label());
        return f;
    }
    let cur: Vec<u64> = table.values().map(|c| c.0).collect();
    let base: Vec<u64> = table.values().map(|c| c.1).collect();
    if cur.iter().sum::<u64>() == 0 || base.iter().sum::<u64>() == 0 {
        f.detail = "no classification labels to compare".into();
        return f;
    }
    let chi = stats::chi_square_homogeneity(&cur, &base);
    let max = match rule.condition {
        Condition::Max(m) => m,
        _ => 0.0,
    };
    f.value = Some(chi.statistic);
    f.test = Some(TestResult {
        name: "chi2",
        p_value: chi.p_value,
        statistic: Some(chi.statistic),
        n: cur.iter().chain(&base).sum(),
    });
    let firing = chi.p_value < rule.alpha && chi.statistic > max;
    f.detail = format!(
        "predicted labels: chi-square {:.2} (df {}), p = {}{}",
        chi.statistic,
        chi.df,
        fmt_p(chi.p_value),
        if firing { "" } else { ": no significant shift" }
    );
    f.verdict = if firing {
        Verdict::Firing
    } else {
        Verdict::Clear
    };
    f
}

/// The dead-man switch: `last_complete` is the start time of the newest complete run (or
/// None), `first_seen` when the suite first appeared in history (None: never run).
#[must_use]
pub fn missed_run(
    rule: &Rule,
    last_complete: Option<chrono::DateTime<chrono::Utc>>,
    first_seen: Option<chrono::DateTime<chrono::Utc>>,
    now: chrono::DateTime<chrono::Utc>,
) -> Finding {
    let mut f = Finding::new("*", None);
    let Condition::After(after) = rule.condition else {
        return f;
    };
    let after = chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX);
    let Some(since) = last_complete.or(first_seen) else {
        f.detail = "the suite has never run: nothing to miss yet".into();
        return f;
    };
    let age = now.signed_duration_since(since);
    f.value = Some(age.num_seconds() as f64 / 3600.0);
    // Said in minutes under an hour (a `missed_run` of `after: 2m` read "0.0h").
    let hours = if age < chrono::Duration::hours(1) {
        format!("{}m", age.num_minutes())
    } else {
        format!("{:.1}h", age.num_minutes() as f64 / 60.0)
    };
    if age > after {
        f.verdict = Verdict::Firing;
        f.detail = match last_complete {
            Some(t) => format!(
                "no complete run for {hours} (last one started {}; limit {})",
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                super::rule::fmt_duration(rule.condition_after())
            ),
            None => format!(
                "no complete run ever, {hours} after the suite was first seen (limit {})",
                super::rule::fmt_duration(rule.condition_after())
            ),
        };
    } else {
        f.verdict = Verdict::Clear;
        f.detail = format!(
            "last complete run {hours} ago, limit {}: within limits",
            super::rule::fmt_duration(rule.condition_after())
        );
    }
    f
}

#[cfg(test)]
mod tests;
