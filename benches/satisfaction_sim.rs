//! Simulation of the satisfaction rule of the spec (docs/feedback.md): does a stable stream of
//! votes page anyone, and how many days does a real drop take to open an alert?
//!
//! Users vote on `VOLUME` requests a day; each vote is positive with the day's true
//! satisfaction, independently (0.9, with a weekday pattern of +-2 points that repeats every
//! week, as real traffic does). The rule is the one users write, judged by the same code as
//! `ingest` (`alert::traffic::judge_traffic_rule`, `TrafficRule::fires`, `Bucket::satisfaction`),
//! as `ingest` walks it: a 7-day window ending at every day boundary, against the same window a
//! week earlier, with alert state (an episode opens once, stays open while it fires, resolves
//! when a window is back within the limit; a window without a baseline decides nothing).
//!
//! - Stable: 8 weeks per seed, nothing changes; every episode that opens is a false alarm.
//! - Shift: 4 stable weeks, then satisfaction falls by a share of itself (10% of 0.9 = 0.81);
//!   the delay is the days from the shift to the day boundary whose window opens the alert
//!   (not detected within 28 days counts as missed).
//!
//! Run: `cargo bench --bench satisfaction_sim` (or `cargo test --bench satisfaction_sim` for a
//! debug build; the simulation is deterministic, so both print the same figures). Optional
//! arguments: stable seeds, shift seeds.

use evalwatch::alert::traffic::{TrafficRule, judge_traffic_rule};
use evalwatch::suite::TRAFFIC_METRICS;
use evalwatch::traffic::Bucket;

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

/// True satisfaction of a stable stream.
const SATISFACTION: f64 = 0.9;
/// The weekday pattern (points of satisfaction, Monday first), the same every week.
const WEEKDAY: [f64; 7] = [0.02, 0.01, 0.0, 0.0, -0.01, -0.02, 0.0];
const STABLE_DAYS: usize = 56;
/// Stable days before a shift.
const BEFORE_SHIFT: usize = 28;
/// Days after a shift within which an alert counts as detection.
const WATCH: usize = 28;
const WINDOW_DAYS: usize = 7;
/// Rated requests a day.
const VOLUMES: [u64; 4] = [30, 100, 300, 1000];
/// Relative drops of satisfaction after the shift.
const SHIFTS: [f64; 5] = [0.05, 0.10, 0.15, 0.20, 0.30];

/// One day's votes: (positive, negative).
fn day(volume: u64, p: f64, rng: &mut Rng) -> (u64, u64) {
    let positive = (0..volume).filter(|_| rng.unit() < p).count() as u64;
    (positive, volume - positive)
}

/// The 7-day window ending before day `end` (exclusive), as the bucket `ingest` reads.
fn window(days: &[(u64, u64)], end: usize) -> Option<Bucket> {
    let from = end.checked_sub(WINDOW_DAYS)?;
    let mut b = Bucket::default();
    for &(pos, neg) in days.get(from..end)? {
        b.feedback_positive += pos;
        b.feedback_negative += neg;
        b.requests += pos + neg;
    }
    Some(b)
}

/// Walks the day boundaries as `ingest` does; returns the boundaries (days since the start)
/// whose window opened an alert.
fn opened(rule: &TrafficRule, days: &[(u64, u64)]) -> Vec<usize> {
    let mut open = false;
    let mut out = Vec::new();
    for end in WINDOW_DAYS..=days.len() {
        let Some(value) = window(days, end).and_then(|b| b.satisfaction()) else {
            continue;
        };
        let baseline = end
            .checked_sub(WINDOW_DAYS)
            .and_then(|e| window(days, e))
            .and_then(|b| b.satisfaction());
        match rule.fires(value, baseline) {
            Some(true) if !open => {
                open = true;
                out.push(end);
            }
            Some(false) => open = false,
            _ => {}
        }
    }
    out
}

/// A stream of `n` days: satisfaction `SATISFACTION` (with the weekday pattern) scaled by
/// `1 - drop` from day `shift_at` on.
fn stream(volume: u64, n: usize, shift_at: usize, drop: f64, rng: &mut Rng) -> Vec<(u64, u64)> {
    (0..n)
        .map(|d| {
            let mut p = SATISFACTION + WEEKDAY[d % 7];
            if d >= shift_at {
                p *= 1.0 - drop;
            }
            day(volume, p, rng)
        })
        .collect()
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let stable_seeds = args.first().copied().unwrap_or(500);
    let shift_seeds = args.get(1).copied().unwrap_or(500);
    let raw = serde_json::json!({
        "metric": "traffic.satisfaction", "drop": 0.10, "relative": true,
        "baseline": "same_window_last_week", "window": "7d", "severity": "warning"
    });
    let rule = match judge_traffic_rule(&raw, &TRAFFIC_METRICS) {
        Ok(r) => r,
        Err(p) => panic!("the spec's rule does not load: {p:?}"),
    };
    println!(
        "satisfaction simulation: {{metric: traffic.satisfaction, drop: 0.10, relative: true, baseline: same_window_last_week, window: 7d}}"
    );
    println!(
        "true satisfaction {SATISFACTION} (weekday pattern +-2 points), votes independent; 7d windows judged at every day boundary"
    );
    println!(
        "\nstable: {stable_seeds} seeds x {STABLE_DAYS} days ({} windows with a baseline each)",
        STABLE_DAYS - 2 * WINDOW_DAYS + 1
    );
    println!(
        "{:>14}  {:>22}  {:>18}",
        "rated / day", "seeds with any alert", "alerts per week"
    );
    for (v, volume) in VOLUMES.into_iter().enumerate() {
        let mut seeds_alerted = 0u64;
        let mut alerts = 0usize;
        for seed in 0..stable_seeds {
            let mut rng = Rng(seed * 7919 + v as u64);
            let days = stream(volume, STABLE_DAYS, usize::MAX, 0.0, &mut rng);
            let n = opened(&rule, &days).len();
            alerts += n;
            seeds_alerted += u64::from(n > 0);
        }
        let weeks = stable_seeds as f64 * (STABLE_DAYS - 2 * WINDOW_DAYS + 1) as f64 / 7.0;
        println!(
            "{volume:>14}  {seeds_alerted:>10} ({:>6.2}%)  {:>18.4}",
            100.0 * seeds_alerted as f64 / stable_seeds as f64,
            alerts as f64 / weeks
        );
    }
    println!(
        "\nshift: {shift_seeds} seeds; {BEFORE_SHIFT} stable days, then satisfaction x (1 - drop); detected = an alert within {WATCH} days"
    );
    println!(
        "{:>14}  {:>6}  {:>16}  {:>12}  {:>12}  {:>12}",
        "rated / day", "drop", "detected", "median days", "p90 days", "early alarm"
    );
    for (v, volume) in VOLUMES.into_iter().enumerate() {
        for (s, drop) in SHIFTS.into_iter().enumerate() {
            let mut delays = Vec::new();
            let mut early = 0u64;
            for seed in 0..shift_seeds {
                let mut rng = Rng(1_000_003 * (seed + 1) + 31 * v as u64 + s as u64);
                let days = stream(volume, BEFORE_SHIFT + WATCH, BEFORE_SHIFT, drop, &mut rng);
                let at = opened(&rule, &days);
                // An alert before the shift is a false alarm, not a detection.
                early += u64::from(at.iter().any(|&d| d <= BEFORE_SHIFT));
                if let Some(&d) = at.iter().find(|&&d| d > BEFORE_SHIFT) {
                    delays.push(d - BEFORE_SHIFT);
                }
            }
            delays.sort_unstable();
            let pct = |q: f64| -> String {
                if delays.is_empty() {
                    "-".to_owned()
                } else {
                    let i = ((delays.len() - 1) as f64 * q).round() as usize;
                    delays[i].to_string()
                }
            };
            println!(
                "{volume:>14}  {:>5.0}%  {:>6} ({:>6.2}%)  {:>12}  {:>12}  {:>12}",
                drop * 100.0,
                delays.len(),
                100.0 * delays.len() as f64 / shift_seeds as f64,
                pct(0.5),
                pct(0.9),
                early
            );
        }
    }
}
