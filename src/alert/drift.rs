//! Drift on traffic: each drift metric is a test of the current window against a baseline
//! window, with its statistic, p-value and a plain sentence of what moved.
//!
//! Numeric metrics (`drift.input_length`, `drift.output_length`, `drift.latency`,
//! `drift.confidence`) use the two-sample Kolmogorov-Smirnov test; mixes
//! (`drift.feature_mix`, `drift.language_mix`, `drift.model_mix`, `drift.region_mix`) the
//! chi-square test of homogeneity. Both come from [`super::stats`].

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::stats;
use crate::metrics::percentile_nearest_rank;

/// Which test a drift figure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftTest {
    Ks,
    ChiSquare,
}

/// One drift metric of one window against its baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Drift {
    pub metric: String,
    pub test: DriftTest,
    /// KS: sup |F_current - F_baseline|; chi-square: the statistic.
    pub statistic: f64,
    pub p_value: f64,
    /// Chi-square degrees of freedom (0 for KS).
    pub df: u64,
    pub current_n: u64,
    pub baseline_n: u64,
    /// What moved most, in words, largest first ("Spanish 3% -> 21% of inputs").
    pub moved: Vec<String>,
}

/// The numeric drift metrics: (metric, what is measured, unit).
pub const NUMERIC: [(&str, &str, &str); 4] = [
    ("drift.input_length", "inputs", "characters"),
    ("drift.output_length", "outputs", "characters"),
    ("drift.latency", "latency", "ms"),
    ("drift.confidence", "confidence", ""),
];

/// The mix drift metrics: (metric, what the shares are of).
pub const MIX: [(&str, &str); 4] = [
    ("drift.feature_mix", "requests"),
    ("drift.language_mix", "inputs"),
    ("drift.model_mix", "requests"),
    ("drift.region_mix", "requests"),
];

/// How many moved categories a mix reports.
const MOVED_SHOWN: usize = 3;

/// A numeric drift metric: KS of `current` against `baseline`, and how the median (and the
/// 95th percentile, when it moved otherwise) changed, by nearest rank as `p50`/`p95` are
/// everywhere else. `what` names the quantity ("inputs"),
/// `unit` its unit ("characters"; empty for none).
#[must_use]
pub fn numeric(metric: &str, what: &str, unit: &str, current: &[f64], baseline: &[f64]) -> Drift {
    let ks = stats::ks_two_sample(current, baseline);
    let cur = sorted(current);
    let base = sorted(baseline);
    let mut moved = Vec::new();
    if let (Some(c50), Some(b50)) = (
        percentile_nearest_rank(&cur, 50.0),
        percentile_nearest_rank(&base, 50.0),
    ) {
        moved.push(change_at(what, unit, "the median", c50, b50));
        if let (Some(c95), Some(b95)) = (
            percentile_nearest_rank(&cur, 95.0),
            percentile_nearest_rank(&base, 95.0),
        ) {
            let p95 = change_at(what, unit, "p95", c95, b95);
            if relative(c95, b95).abs() > relative(c50, b50).abs() + 0.05 {
                moved.insert(0, p95);
            } else {
                moved.push(p95);
            }
        }
    }
    Drift {
        metric: metric.to_owned(),
        test: DriftTest::Ks,
        statistic: ks.statistic,
        p_value: ks.p_value,
        df: 0,
        current_n: cur.len() as u64,
        baseline_n: base.len() as u64,
        moved,
    }
}

/// A mix drift metric: chi-square of the category counts of `current` against `baseline`,
/// and the categories whose share moved most. `of` names what the shares are of ("inputs").
#[must_use]
pub fn mix(
    metric: &str,
    of: &str,
    current: &BTreeMap<String, u64>,
    baseline: &BTreeMap<String, u64>,
) -> Drift {
    let names: BTreeSet<&String> = current.keys().chain(baseline.keys()).collect();
    let get = |m: &BTreeMap<String, u64>, k: &String| m.get(k).copied().unwrap_or(0);
    let cur: Vec<u64> = names.iter().map(|k| get(current, k)).collect();
    let base: Vec<u64> = names.iter().map(|k| get(baseline, k)).collect();
    let chi = stats::chi_square_homogeneity(&cur, &base);
    let (n_cur, n_base) = (cur.iter().sum::<u64>(), base.iter().sum::<u64>());
    let share = |x: u64, n: u64| if n == 0 { 0.0 } else { x as f64 / n as f64 };
    // Largest change of share first (to 1e-9: a two-way mix moves both by the same), a
    // category that grew before one that shrank, then by name.
    let mut shifts: Vec<(i64, bool, String)> = names
        .iter()
        .zip(cur.iter().zip(&base))
        .map(|(name, (&c, &b))| {
            let (sc, sb) = (share(c, n_cur), share(b, n_base));
            (
                ((sc - sb).abs() * 1e9).round() as i64,
                sc > sb,
                format!("{name} {} -> {} of {of}", percent(sb), percent(sc)),
            )
        })
        .filter(|(d, _, _)| *d > 0)
        .collect();
    shifts.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then(b.1.cmp(&a.1))
            .then_with(|| a.2.cmp(&b.2))
    });
    Drift {
        metric: metric.to_owned(),
        test: DriftTest::ChiSquare,
        statistic: chi.statistic,
        p_value: chi.p_value,
        df: chi.df,
        current_n: n_cur,
        baseline_n: n_base,
        moved: shifts
            .into_iter()
            .take(MOVED_SHOWN)
            .map(|(_, _, s)| s)
            .collect(),
    }
}

/// A category seen fewer times than this in both windows together is pooled into
/// `(other)`: the chi-square approximation needs expected counts of about five per cell.
pub const POOL_BELOW: u64 = 10;

/// The counts of two windows with the categories seen fewer than [`POOL_BELOW`] times in
/// both together summed as `(other)`; `unknown` (a text too short to tell) stays itself.
#[must_use]
pub fn pooled(
    cur: &BTreeMap<String, u64>,
    base: &BTreeMap<String, u64>,
) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let total = |k: &str| cur.get(k).copied().unwrap_or(0) + base.get(k).copied().unwrap_or(0);
    let pool = |m: &BTreeMap<String, u64>| {
        let mut out: BTreeMap<String, u64> = BTreeMap::new();
        for (k, n) in m {
            let name = if total(k) < POOL_BELOW && k != "unknown" {
                "(other)"
            } else {
                k.as_str()
            };
            *out.entry(name.to_owned()).or_default() += n;
        }
        out
    };
    (pool(cur), pool(base))
}

/// Which runbook step a drift metric points at, as the monitoring guide puts it: inputs that
/// changed call for a prompt update (and new cases); a model that behaves differently on the
/// same kind of input calls for retraining or a model change.
#[must_use]
pub fn runbook_step(metric: &str) -> &'static str {
    match metric {
        "drift.input_length" | "drift.feature_mix" | "drift.language_mix" | "drift.region_mix" => {
            "the inputs changed: update the prompt for the new inputs and add suite cases like them (prompt update)"
        }
        _ => {
            "the model's behaviour changed on similar inputs: check the model version and markers, re-evaluate and retrain or switch back (retraining)"
        }
    }
}

fn sorted(xs: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v
}

fn relative(now: f64, before: f64) -> f64 {
    if before == 0.0 {
        if now == 0.0 { 0.0 } else { f64::INFINITY }
    } else {
        (now - before) / before.abs()
    }
}

fn change_at(what: &str, unit: &str, at: &str, now: f64, before: f64) -> String {
    let unit = if unit.is_empty() {
        String::new()
    } else {
        format!(" {unit}")
    };
    let figures = format!("{} -> {}{unit}", figure(before), figure(now));
    let r = relative(now, before);
    if r == 0.0 {
        return format!("{what} unchanged at {at} ({figures})");
    }
    let (more, less) = match what {
        "inputs" | "outputs" => ("longer", "shorter"),
        "latency" => ("slower", "faster"),
        _ => ("higher", "lower"),
    };
    let word = if r > 0.0 { more } else { less };
    if r.is_infinite() {
        format!("{what} {word} at {at} ({figures})")
    } else {
        format!("{what} {:.0}% {word} at {at} ({figures})", r.abs() * 100.0)
    }
}

fn figure(x: f64) -> String {
    if x.abs() >= 100.0 || x.fract() == 0.0 {
        format!("{x:.0}")
    } else if x.abs() >= 1.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn percent(share: f64) -> String {
    let p = share * 100.0;
    if p > 0.0 && p < 1.0 {
        format!("{p:.1}%")
    } else {
        format!("{p:.0}%")
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // degenerate input gives exactly D = 0 and p = 1
mod tests {
    use super::*;

    fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    #[test]
    fn a_language_shift_names_the_language_that_moved() {
        let base = counts(&[("English", 970), ("Spanish", 30)]);
        let cur = counts(&[("English", 790), ("Spanish", 210)]);
        let d = mix("drift.language_mix", "inputs", &cur, &base);
        assert_eq!(d.test, DriftTest::ChiSquare);
        assert_eq!(d.df, 1);
        assert!(d.p_value < 1e-20, "{d:?}");
        assert_eq!(d.moved[0], "Spanish 3% -> 21% of inputs");
        assert_eq!(d.moved[1], "English 97% -> 79% of inputs");
        assert_eq!((d.current_n, d.baseline_n), (1000, 1000));
    }

    #[test]
    fn a_steady_mix_is_not_drift() {
        let base = counts(&[("chat", 500), ("search", 300), ("summarise", 200)]);
        let cur = counts(&[("chat", 495), ("search", 306), ("summarise", 199)]);
        let d = mix("drift.feature_mix", "requests", &cur, &base);
        assert!(d.p_value > 0.5, "{d:?}");
        // A category new in this window counts, from 0%.
        let cur = counts(&[
            ("chat", 400),
            ("search", 300),
            ("summarise", 200),
            ("translate", 100),
        ]);
        let d = mix("drift.feature_mix", "requests", &cur, &base);
        assert!(d.p_value < 1e-10, "{d:?}");
        assert!(
            d.moved
                .contains(&"translate 0% -> 10% of requests".to_owned()),
            "{:?}",
            d.moved
        );
    }

    #[test]
    fn longer_inputs_are_told_at_the_median() {
        let base: Vec<f64> = (0..500).map(|i| 200.0 + f64::from(i % 201)).collect();
        let cur: Vec<f64> = base.iter().map(|x| x * 1.4).collect();
        let d = numeric("drift.input_length", "inputs", "characters", &cur, &base);
        assert_eq!(d.test, DriftTest::Ks);
        assert!(d.p_value < 1e-10, "{d:?}");
        assert!(
            d.moved[0].starts_with("inputs 40% longer at the median"),
            "{:?}",
            d.moved
        );
        // The same distribution is no drift.
        let d = numeric("drift.input_length", "inputs", "characters", &base, &base);
        assert_eq!(d.statistic, 0.0);
        assert_eq!(d.p_value, 1.0);
        assert!(
            d.moved[0].starts_with("inputs unchanged at the median"),
            "{:?}",
            d.moved
        );
    }

    #[test]
    fn a_tail_that_moves_alone_is_said_first() {
        // Same median, the slowest 10% three times slower.
        let base: Vec<f64> = (0..1000).map(|i| 100.0 + f64::from(i % 100)).collect();
        let cur: Vec<f64> = base
            .iter()
            .enumerate()
            .map(|(i, x)| if i % 10 == 9 { x * 3.0 } else { *x })
            .collect();
        let d = numeric("drift.latency", "latency", "ms", &cur, &base);
        assert!(d.moved[0].contains("slower at p95"), "{:?}", d.moved);
    }

    #[test]
    fn empty_windows_give_no_evidence() {
        let d = numeric("drift.confidence", "confidence", "", &[], &[0.5, 0.6]);
        assert_eq!(d.p_value, 1.0);
        assert!(d.moved.is_empty());
        let d = mix(
            "drift.model_mix",
            "requests",
            &BTreeMap::new(),
            &counts(&[("a", 3)]),
        );
        assert_eq!(d.p_value, 1.0);
    }

    #[test]
    fn input_drift_points_at_the_prompt_and_model_drift_at_retraining() {
        assert!(runbook_step("drift.language_mix").contains("prompt update"));
        assert!(runbook_step("drift.input_length").contains("prompt update"));
        assert!(runbook_step("drift.output_length").contains("retraining"));
        assert!(runbook_step("drift.confidence").contains("retraining"));
    }
}
