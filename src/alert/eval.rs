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

use std::collections::{BTreeMap, BTreeSet, HashMap};

use fnv::FnvHashMap;
use std::fmt::Write as _;

use super::rule::{BaselineKind, Condition, LABEL_DISTRIBUTION, OUTPUT_CHARS, Rule, TestKind};
use super::stats;
use crate::model::{CaseStatus, ProviderMetrics};

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

type Key<'r> = (&'r str, u32);

/// Pass/fail of each (case, sample) of one provider (errors and unscorable left out), in key
/// order, each key once (its last result).
fn outcomes<'r>(
    run: &'r RunSnapshot,
    provider: &str,
    tag: Option<&str>,
    case_tags: &HashMap<String, Vec<String>>,
) -> Vec<(Key<'r>, bool)> {
    let mut decided: Vec<(Key<'r>, bool)> = Vec::with_capacity(run.statuses.len());
    for (case, p, sample, status) in &run.statuses {
        if p != provider || !has_tag(case_tags, case, tag) {
            continue;
        }
        match status {
            CaseStatus::Passed => decided.push(((case.as_str(), *sample), true)),
            CaseStatus::Failed => decided.push(((case.as_str(), *sample), false)),
            CaseStatus::Error | CaseStatus::Unscorable => {}
        }
    }
    // Stable: of equal keys, the last one read stays last, and is the one kept.
    decided.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<(Key<'r>, bool)> = Vec::with_capacity(decided.len());
    for item in decided {
        match out.last_mut() {
            Some(last) if last.0 == item.0 => *last = item,
            _ => out.push(item),
        }
    }
    out
}

/// [`outcomes`] for lookups.
fn outcome_map<'r>(o: &[(Key<'r>, bool)]) -> FnvHashMap<Key<'r>, bool> {
    o.iter().copied().collect()
}

/// Known-flaky cases: mixed pass/fail outcomes among the samples of one run (a window run
/// or the current one), or an outcome that changed at least twice across the window runs
/// (pass -> fail -> pass). A single change that stays is a step, not flakiness.
fn flaky_cases(provider: &str, tag: Option<&str>, input: &EvalInput<'_>) -> BTreeSet<String> {
    let mut flaky = BTreeSet::new();
    // case -> (last outcome seen, changes), walking the window oldest first.
    let mut seq: FnvHashMap<&str, (bool, u32)> = FnvHashMap::default();
    let runs = input
        .window
        .iter()
        .rev()
        .chain(std::iter::once(input.current));
    let n_window = input.window.len();
    for (i, run) in runs.enumerate() {
        let mut per_case: FnvHashMap<&str, (bool, bool)> = FnvHashMap::default();
        for (case, p, _, status) in &run.statuses {
            if p != provider || !has_tag(input.case_tags, case, tag) {
                continue;
            }
            let e = per_case.entry(case.as_str()).or_default();
            match status {
                CaseStatus::Passed => e.0 = true,
                CaseStatus::Failed => e.1 = true,
                CaseStatus::Error | CaseStatus::Unscorable => {}
            }
        }
        for (case, (passed, failed)) in per_case {
            if passed && failed {
                flaky.insert(case.to_owned());
                continue;
            }
            if i >= n_window || !(passed || failed) {
                continue; // the current run counts for mixed samples only
            }
            match seq.get_mut(case) {
                Some((last, changes)) => {
                    if *last != passed {
                        *changes += 1;
                        *last = passed;
                    }
                }
                None => {
                    seq.insert(case, (passed, 0));
                }
            }
        }
    }
    flaky.extend(
        seq.into_iter()
            .filter(|(_, (_, changes))| *changes >= 2)
            .map(|(c, _)| c.to_owned()),
    );
    flaky
}

fn status_word(pass: bool) -> &'static str {
    if pass { "passed" } else { "failed" }
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

/// A p-value for humans: `0.0312`, `< 1e-6`.
#[must_use]
pub fn fmt_p(p: f64) -> String {
    if p < 1e-6 {
        "< 1e-6".to_owned()
    } else if p < 0.001 {
        format!("{p:.1e}")
    } else {
        format!("{p:.4}")
    }
}

/// `= 0.0312`, `< 1e-6`: a p-value after its `p`.
fn p_text(p: f64) -> String {
    let s = fmt_p(p);
    if s.starts_with('<') {
        s
    } else {
        format!("= {s}")
    }
}

/// A metric value for humans: rates as percentages, the rest with few digits.
#[must_use]
pub fn fmt_value(metric: &str, v: f64) -> String {
    if metric.ends_with("_rate") {
        format!("{:.1}%", v * 100.0)
    } else if metric.ends_with("_usd") {
        format!("${v:.4}")
    } else if metric.ends_with("_ms") {
        format!("{v:.0} ms")
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// An amount of a metric: points for a rate (`0.05` is 5.0 points), the metric's unit
/// otherwise.
#[must_use]
pub fn fmt_amount(metric: &str, v: f64) -> String {
    if metric.ends_with("_rate") {
        format!("{:.1} points", v * 100.0)
    } else {
        fmt_value(metric, v)
    }
}

/// The change from `base` to `value`: its absolute size (points for a rate) and its
/// relative size in percent: `down 60.0 points (-66.7%)`, `up 100 ms (+9.1%)`, `unchanged`.
#[must_use]
pub fn fmt_change(metric: &str, value: f64, base: f64) -> String {
    let diff = value - base;
    if diff == 0.0 {
        return "unchanged".into();
    }
    let dir = if diff < 0.0 { "down" } else { "up" };
    let rel = if base == 0.0 {
        String::new()
    } else {
        format!(" ({:+.1}%)", diff / base.abs() * 100.0)
    };
    format!("{dir} {}{rel}", fmt_amount(metric, diff.abs()))
}

fn describe_threshold(rule: &Rule, value: f64, base: Option<f64>, breached: bool) -> String {
    let m = &rule.metric;
    let v = fmt_value(m, value);
    let (text, verdict) = match (rule.condition, base) {
        (Condition::Min(x), _) => (
            format!("{m} {v}, floor {}", fmt_value(m, x)),
            if breached {
                "below the floor"
            } else {
                "not below the floor"
            },
        ),
        (Condition::Max(x), _) => (
            format!("{m} {v}, ceiling {}", fmt_value(m, x)),
            if breached {
                "above the ceiling"
            } else {
                "not above the ceiling"
            },
        ),
        (Condition::Ratio(r), Some(b)) if b > 0.0 => {
            let ratio = value / b;
            let cmp = match (r >= 1.0, breached) {
                (true, true) => ">=",
                (true, false) => "<",
                (false, true) => "<=",
                (false, false) => ">",
            };
            (
                format!(
                    "{m} {v} vs baseline {}: ratio {ratio:.2} {cmp} limit {r}",
                    fmt_value(m, b)
                ),
                if breached {
                    "breached"
                } else {
                    "within limits"
                },
            )
        }
        (Condition::Ratio(_), Some(b)) => (
            format!(
                "{m} {v} vs baseline {}: no ratio to a zero baseline",
                fmt_value(m, b)
            ),
            "not judged",
        ),
        (Condition::Drop(d) | Condition::Rise(d), Some(b)) => {
            let want = if matches!(rule.condition, Condition::Drop(_)) {
                "drop"
            } else {
                "rise"
            };
            (
                format!(
                    "{m} {v} vs baseline {}: {}, limit a {want} of {}",
                    fmt_value(m, b),
                    fmt_change(m, value, b),
                    fmt_amount(m, d)
                ),
                if breached {
                    "breached"
                } else {
                    "within limits"
                },
            )
        }
        (_, Some(b)) => (format!("{m} {v} vs baseline {}", fmt_value(m, b)), ""),
        (_, None) => (format!("{m} {v}"), ""),
    };
    if verdict.is_empty() {
        text
    } else {
        format!("{text}: {verdict}")
    }
}

/// The pass-rate change test.
fn pass_rate_change(rule: &Rule, provider: &str, input: &EvalInput<'_>, mut f: Finding) -> Finding {
    let tag = rule.tag.as_deref();
    if input.baseline.is_empty() {
        f.detail = format!("no {} baseline run yet", rule.baseline.label());
        return f;
    }
    let (drop, threshold) = match rule.condition {
        Condition::Drop(d) => (true, d),
        Condition::Rise(d) => (false, d),
        _ => return f,
    };
    let flaky = flaky_cases(provider, tag, input);
    let cur = outcomes(input.current, provider, tag, input.case_tags);
    // The baseline runs' outcomes, newest first: the first is the latest run.
    let base_maps: Vec<FnvHashMap<Key<'_>, bool>> = input
        .baseline
        .iter()
        .map(|run| outcome_map(&outcomes(run, provider, tag, input.case_tags)))
        .collect();
    // Every case that went the bad way against the baseline (for a drop: fails now,
    // passed in most of the baseline runs where it has an outcome; not only the flips since
    // the latest run), stable and flaky apart.
    let mut flips = Vec::new();
    let mut flaky_flips = Vec::new();
    for &(key, now) in &cur {
        let (mut n, mut t) = (0u32, 0u32);
        for b in &base_maps {
            if let Some(&pass) = b.get(&key) {
                n += 1;
                t += u32::from(pass);
            }
        }
        let before = match (2 * t).cmp(&n) {
            std::cmp::Ordering::Greater => Some(true),
            std::cmp::Ordering::Less => Some(false),
            // No baseline outcome, or as often passed as failed.
            std::cmp::Ordering::Equal => None,
        };
        if let Some(before) = before
            && before != now
            && before == drop
        {
            let flip = Flip {
                case_id: key.0.to_owned(),
                sample: key.1,
                from: status_word(before),
                to: status_word(now),
            };
            if flaky.contains(key.0) {
                flaky_flips.push(flip);
            } else {
                flips.push(flip);
            }
        }
    }
    f.flipped_total = flips.len();
    f.flaky_flipped_total = flaky_flips.len();
    flips.truncate(MAX_FLIPS);
    flaky_flips.truncate(MAX_FLIPS);
    f.flipped = flips;
    f.flaky_flipped = flaky_flips;

    let all = paired_test(&cur, &base_maps, drop, |_| true);
    let stable = paired_test(&cur, &base_maps, drop, |k| !flaky.contains(k.0));
    let (worse, se, test, stable_p) = if let Some(all) = all {
        // Known-flaky cases do not trigger alone: the test without them must agree (p = 1
        // when every case with a baseline is flaky).
        let stable_p = stable.map_or(1.0, |s| s.test.p_value);
        (all.worse, all.se, all.test, Some(stable_p))
    } else {
        // No case in common with the baseline: compare pooled counts (unpaired).
        let count = |o: &mut dyn Iterator<Item = bool>| {
            o.fold(
                (0u64, 0u64),
                |(p, q), pass| {
                    if pass { (p + 1, q) } else { (p, q + 1) }
                },
            )
        };
        let (mut pb, mut fb) = (0, 0);
        for o in &base_maps {
            let (p, q) = count(&mut o.values().copied());
            pb += p;
            fb += q;
        }
        let (pc, fc) = count(&mut cur.iter().map(|(_, pass)| *pass));
        let (nb, nc) = ((pb + fb) as f64, (pc + fc) as f64);
        if nb == 0.0 || nc == 0.0 {
            f.detail = "no passed or failed results to compare with the baseline".into();
            return f;
        }
        let fisher = stats::fisher_exact(pb, fb, pc, fc);
        let (rb, rc) = (pb as f64 / nb, pc as f64 / nc);
        let se = (rb * (1.0 - rb) / nb + rc * (1.0 - rc) / nc).sqrt();
        (
            if drop { rb - rc } else { rc - rb },
            se,
            TestResult {
                name: "fisher",
                p_value: if drop {
                    fisher.p_greater
                } else {
                    fisher.p_less
                },
                statistic: None,
                n: pb + fb + pc + fc,
            },
            None,
        )
    };
    // Both questions at `alpha`: "no change" is rejected, and "a change of at least the
    // threshold" is not (the one-sided upper confidence bound reaches it).
    let z = stats::normal_quantile(1.0 - rule.alpha);
    let upper = worse + z * se;
    let stable_ok = stable_p.is_none_or(|p| p < rule.alpha);
    let significant = test.p_value < rule.alpha && stable_ok;
    let large_enough = worse > 0.0 && upper >= threshold;
    let word = if drop { "drop" } else { "rise" };
    let value = f.value.unwrap_or(0.0);
    let pct = |x: f64| format!("{:.1}", x * 100.0);
    let conf = format!("{:.0}%", (1.0 - rule.alpha) * 100.0);
    // The change between the two numbers shown, in points (absolute) and percent
    // (relative); the test's paired estimate is said apart when it differs (it counts only
    // the cases with a baseline outcome, and averages the trailing runs case by case).
    let mut detail = match f.baseline_value {
        Some(b) => format!(
            "pass_rate {} vs baseline {}: {}",
            fmt_value("pass_rate", value),
            fmt_value("pass_rate", b),
            fmt_change("pass_rate", value, b)
        ),
        None => format!("pass_rate {}", fmt_value("pass_rate", value)),
    };
    let shown_worse = f
        .baseline_value
        .map(|b| if drop { b - value } else { value - b });
    if shown_worse.is_none_or(|w| (w - worse).abs() >= 0.0005) {
        let paired = if drop { -worse } else { worse };
        let _ = write!(
            detail,
            "; case by case over {} result(s) with a baseline outcome: {}",
            test.n,
            if paired == 0.0 {
                "unchanged".to_owned()
            } else {
                format!(
                    "{} {} points",
                    if paired < 0.0 { "down" } else { "up" },
                    pct(paired.abs())
                )
            }
        );
    }
    let _ = write!(
        detail,
        "; {} p {} {} alpha {}",
        test.name,
        p_text(test.p_value),
        if test.p_value < rule.alpha { "<" } else { ">=" },
        rule.alpha
    );
    if let Some(p) = stable_p
        && !flaky.is_empty()
    {
        let _ = write!(
            detail,
            "; without the {} known-flaky case(s) p = {}",
            flaky.len(),
            fmt_p(p)
        );
    }
    let why = if worse <= 0.0 {
        format!("no {word}: does not fire")
    } else if test.p_value >= rule.alpha {
        "not significant: does not fire".to_owned()
    } else if !stable_ok {
        "the change rests on known-flaky cases: does not fire".to_owned()
    } else if !large_enough {
        format!(
            "significant, but the {word} is at most {} points at {conf} confidence, under the limit of {} points: does not fire",
            pct(upper),
            pct(threshold)
        )
    } else {
        format!(
            "the {word} could reach the limit ({} points at {conf} confidence >= {} points): fires",
            pct(upper),
            pct(threshold)
        )
    };
    let _ = write!(detail, ": {why}");
    f.detail = detail;
    f.known_flaky = flaky.iter().take(MAX_FLIPS).cloned().collect();
    f.test = Some(test);
    f.verdict = if significant && large_enough {
        Verdict::Firing
    } else {
        Verdict::Clear
    };
    f.concentration = concentration(rule, provider, input, !drop);
    f
}

/// The outcome of [`paired_test`].
struct Paired {
    /// Estimated worsening of the pass rate (positive = worse).
    worse: f64,
    se: f64,
    test: TestResult,
}

/// Exact conditional (permutation) test of the current run against its baseline runs, case
/// by case. Under "nothing changed", the current outcome of a case is exchangeable with its
/// outcomes in the N baseline runs, so given t passes among the N + 1, the current run
/// passes with probability t / (N + 1), independently across cases; the number of current
/// passes is then Poisson-binomial, and its tail is the p-value. With one baseline run this
/// is exactly McNemar's exact test (only discordant pairs carry probability 1/2). Cases
/// without a baseline outcome carry no information and are left out. None when no case
/// (after `keep`) has one.
fn paired_test(
    cur: &[(Key<'_>, bool)],
    baseline: &[FnvHashMap<Key<'_>, bool>],
    drop: bool,
    keep: impl Fn(&Key<'_>) -> bool,
) -> Option<Paired> {
    let mut probs = Vec::new();
    let (mut passes, mut worse_sum, mut var, mut used) = (0u64, 0.0, 0.0, 0u64);
    let mut single = true;
    for (key, now) in cur {
        if !keep(key) {
            continue;
        }
        let now = *now;
        let (mut n, mut t) = (0u64, 0u64);
        for b in baseline {
            if let Some(&pass) = b.get(key) {
                n += 1;
                t += u64::from(pass);
            }
        }
        if n == 0 {
            continue;
        }
        single &= n == 1;
        used += 1;
        let x = u64::from(now);
        let nf = n as f64;
        let pi = (t + x) as f64 / (nf + 1.0);
        probs.push(pi);
        passes += x;
        worse_sum += t as f64 / nf - x as f64;
        var += ((nf + 1.0) / nf).powi(2) * pi * (1.0 - pi);
    }
    if used == 0 {
        return None;
    }
    let (lo, hi) = stats::poisson_binomial_tails(&probs, passes);
    let n = used as f64;
    let worse = if drop { worse_sum / n } else { -worse_sum / n };
    Some(Paired {
        worse,
        se: var.sqrt() / n,
        test: TestResult {
            name: if single { "mcnemar" } else { "permutation" },
            p_value: if drop { lo } else { hi },
            statistic: Some(worse_sum),
            n: used,
        },
    })
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
    let hours = age.num_minutes() as f64 / 60.0;
    if age > after {
        f.verdict = Verdict::Firing;
        f.detail = match last_complete {
            Some(t) => format!(
                "no complete run for {hours:.1}h (last one started {}; limit {})",
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                super::rule::fmt_duration(rule.condition_after())
            ),
            None => format!(
                "no complete run ever, {hours:.1}h after the suite was first seen (limit {})",
                super::rule::fmt_duration(rule.condition_after())
            ),
        };
    } else {
        f.verdict = Verdict::Clear;
        f.detail = format!(
            "last complete run {hours:.1}h ago, limit {}: within limits",
            super::rule::fmt_duration(rule.condition_after())
        );
    }
    f
}

#[cfg(test)]
mod tests;
