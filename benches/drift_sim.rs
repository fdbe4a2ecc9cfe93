//! Simulation of the drift rules on traffic (docs/alerts.md, "Drift rules"): how often does a
//! stable stream open a drift alert, and how soon is a real shift caught?
//!
//! A day of traffic is `N` sampled records. Each record has a language (English 90%,
//! Spanish 3%, German 2%, French 2%, `unknown` 3%), an input length (log-normal, median 200
//! characters, sigma 0.6, whole characters) and a confidence (Beta-like: the mean of two
//! uniforms on 0.6..1.0). Days are independent draws from the same distribution unless
//! shifted. The rules are the shipped defaults (`evalwatch::alert::drift_rule`: 1d windows
//! against `same_window_last_week`, `max_p` 0.001, `min_records` 50), judged with the same
//! tests (`evalwatch::alert::drift`) and the same alert state as `ingest`: an alert opens on
//! a firing window when none is open and resolves on a quiet one.
//!
//! - Stable: 8 weeks per seed (the first week has no baseline: 49 judged days per rule).
//!   Counts: firing days, and seeds (8-week streams) that opened at least one alert.
//! - Shift: 4 stable weeks, then from day 28 on the Spanish share (language) or the input
//!   length is shifted; delay = days until the first firing window (1 = the first shifted
//!   day), within the 7 days that the same-window-last-week baseline still sees the old
//!   inputs; "missed" otherwise.
//!
//! Run: `cargo bench --bench drift_sim` (or `cargo test --bench drift_sim` for a debug
//! build; the counts are the same). Optional arguments: stable seeds, shift seeds, N.

use std::collections::BTreeMap;

use evalwatch::alert::drift::{MIX, NUMERIC, mix, numeric, pooled};
use evalwatch::alert::drift_rule::{DriftRule, judge_drift_rule};

const WEEKS: usize = 8;
const SHIFT_DAY: usize = 28;

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut Rng) -> f64 {
    let u = rng.unit().max(1e-300);
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * rng.unit()).cos()
}

/// How a day differs from the stable stream.
#[derive(Clone, Copy)]
struct Shift {
    /// Spanish share of inputs (taken from English).
    spanish: f64,
    /// Factor on input lengths.
    length: f64,
}

const STABLE: Shift = Shift {
    spanish: 0.03,
    length: 1.0,
};

/// One day of `n` sampled records.
struct Day {
    languages: BTreeMap<String, u64>,
    input_length: Vec<f64>,
    confidence: Vec<f64>,
}

fn day(rng: &mut Rng, n: usize, s: Shift) -> Day {
    let mut languages: BTreeMap<String, u64> = BTreeMap::new();
    let mut input_length = Vec::with_capacity(n);
    let mut confidence = Vec::with_capacity(n);
    for _ in 0..n {
        let u = rng.unit();
        let lang = if u < s.spanish {
            "Spanish"
        } else if u < s.spanish + 0.02 {
            "German"
        } else if u < s.spanish + 0.04 {
            "French"
        } else if u < s.spanish + 0.07 {
            "unknown"
        } else {
            "English"
        };
        *languages.entry(lang.to_owned()).or_default() += 1;
        input_length.push((200.0 * (0.6 * normal(rng)).exp() * s.length).round());
        confidence.push(0.6 + 0.2 * (rng.unit() + rng.unit()));
    }
    Day {
        languages,
        input_length,
        confidence,
    }
}

/// Whether `rule` fires on `cur` against `base` (`None`: not enough data).
fn fires(rule: &DriftRule, cur: &Day, base: &Day) -> Option<bool> {
    let min = rule.min_records as usize;
    let p = match rule.metric.as_str() {
        "drift.language_mix" => {
            let (c, b) = pooled(&cur.languages, &base.languages);
            if c.values().sum::<u64>() < min as u64 || b.values().sum::<u64>() < min as u64 {
                return None;
            }
            mix(&rule.metric, MIX[1].1, &c, &b).p_value
        }
        m => {
            let (c, b) = if m == "drift.confidence" {
                (&cur.confidence, &base.confidence)
            } else {
                (&cur.input_length, &base.input_length)
            };
            if c.len() < min || b.len() < min {
                return None;
            }
            let (_, what, unit) = NUMERIC.iter().find(|x| x.0 == m)?;
            numeric(m, what, unit, c, b).p_value
        }
    };
    Some(p < rule.max_p)
}

/// Days of one stream, judged as `ingest` does: (firing days, alerts opened, first firing day
/// at or after `from`).
fn judge(rule: &DriftRule, days: &[Day], from: usize) -> (usize, usize, Option<usize>) {
    let (mut firing, mut opened, mut first) = (0, 0, None);
    let mut open = false;
    for d in 7..days.len() {
        match fires(rule, &days[d], &days[d - 7]) {
            Some(true) => {
                firing += 1;
                if !open {
                    opened += 1;
                    open = true;
                }
                if d >= from && first.is_none() {
                    first = Some(d);
                }
            }
            Some(false) => open = false,
            None => {}
        }
    }
    (firing, opened, first)
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let stable_seeds = args.first().copied().unwrap_or(1000);
    let shift_seeds = args.get(1).copied().unwrap_or(200);
    let n = args.get(2).copied().unwrap_or(200);
    let rules: Vec<DriftRule> = [
        "drift.language_mix",
        "drift.input_length",
        "drift.confidence",
    ]
    .into_iter()
    .map(|m| judge_drift_rule(&serde_json::json!({"metric": m})).expect("rule"))
    .collect();

    println!(
        "drift simulation: {n} sampled records a day, 1d windows against same_window_last_week, max_p {}, min_records {}",
        rules[0].max_p, rules[0].min_records
    );
    println!(
        "stable: {stable_seeds} seeds x {WEEKS} weeks ({} judged days per rule)",
        WEEKS * 7 - 7
    );
    println!(
        "{:<22} {:>24} {:>26}",
        "rule", "firing days", "streams with an alert"
    );
    let mut any_alert = 0;
    let mut per_rule = vec![(0usize, 0usize); rules.len()];
    for seed in 0..stable_seeds {
        let mut rng = Rng(seed as u64 * 7919 + 1);
        let days: Vec<Day> = (0..WEEKS * 7).map(|_| day(&mut rng, n, STABLE)).collect();
        let mut any = false;
        for (k, rule) in rules.iter().enumerate() {
            let (firing, opened, _) = judge(rule, &days, 0);
            per_rule[k].0 += firing;
            per_rule[k].1 += usize::from(opened > 0);
            any |= opened > 0;
        }
        any_alert += usize::from(any);
    }
    let judged = stable_seeds * (WEEKS * 7 - 7);
    for (rule, (firing, streams)) in rules.iter().zip(&per_rule) {
        println!(
            "{:<22} {:>10} ({:>7.4}%) {:>12} ({:>6.2}%)",
            rule.metric,
            firing,
            100.0 * *firing as f64 / judged as f64,
            streams,
            100.0 * *streams as f64 / stable_seeds as f64
        );
    }
    println!(
        "{:<22} {:>24} {:>12} ({:>6.2}%)",
        "all three",
        "",
        any_alert,
        100.0 * any_alert as f64 / stable_seeds as f64
    );

    println!(
        "shift from day {SHIFT_DAY}: {shift_seeds} seeds each; delay in days (1 = caught on the first shifted day)"
    );
    println!(
        "{:<34} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "shift", "day 1", "day 2", "day 3-7", "missed", "median"
    );
    let shifts: [(&str, usize, Shift); 6] = [
        (
            "Spanish 3% -> 5%",
            0,
            Shift {
                spanish: 0.05,
                length: 1.0,
            },
        ),
        (
            "Spanish 3% -> 8%",
            0,
            Shift {
                spanish: 0.08,
                length: 1.0,
            },
        ),
        (
            "Spanish 3% -> 21%",
            0,
            Shift {
                spanish: 0.21,
                length: 1.0,
            },
        ),
        (
            "inputs 10% longer",
            1,
            Shift {
                spanish: 0.03,
                length: 1.1,
            },
        ),
        (
            "inputs 20% longer",
            1,
            Shift {
                spanish: 0.03,
                length: 1.2,
            },
        ),
        (
            "inputs 40% longer",
            1,
            Shift {
                spanish: 0.03,
                length: 1.4,
            },
        ),
    ];
    for (name, k, shift) in shifts {
        let mut delays: Vec<usize> = Vec::new();
        let mut missed = 0;
        for seed in 0..shift_seeds {
            let mut rng = Rng(seed as u64 * 104_729 + 17);
            let days: Vec<Day> = (0..SHIFT_DAY + 7)
                .map(|d| day(&mut rng, n, if d < SHIFT_DAY { STABLE } else { shift }))
                .collect();
            match judge(&rules[k], &days, SHIFT_DAY).2 {
                Some(d) => delays.push(d - SHIFT_DAY + 1),
                None => missed += 1,
            }
        }
        delays.sort_unstable();
        let count = |lo: usize, hi: usize| delays.iter().filter(|d| (lo..=hi).contains(*d)).count();
        let median = if delays.len() * 2 > shift_seeds {
            delays[shift_seeds / 2].to_string()
        } else {
            "missed".into()
        };
        println!(
            "{:<34} {:>8} {:>8} {:>8} {:>8} {:>8}",
            format!("{name} ({})", rules[k].metric),
            count(1, 1),
            count(2, 2),
            count(3, 7),
            missed,
            median
        );
    }
}
