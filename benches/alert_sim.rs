//! Simulation of the pass-rate alert rules (docs/alerts.md): does noise page anyone, and is
//! a real drop caught on its first run?
//!
//! A "model" has 500 cases; each case has a true outcome (pass with probability 0.9, drawn
//! once per seed). Every run observes each case's true outcome flipped with probability 3%,
//! independently. The rules are evaluated exactly as `run` does (`evalwatch::alert::eval`),
//! each run against the runs before it.
//!
//! - Stable: 100 runs per seed, nothing changes. Every run whose evaluation fires counts
//!   (no alert state: an upper bound on pages).
//! - Drop: 10 stable runs, then 25 truly passing cases (5 points of 500) start failing;
//!   caught = the rule fires on that first regressed run.
//!
//! Run: `cargo bench --bench alert_sim` (or `cargo test --bench alert_sim` for a debug build).
//! Optional arguments: stable seeds, drop seeds.

use std::collections::{BTreeSet, HashMap};

use evalwatch::alert::eval::{EvalInput, RunSnapshot, Verdict, evaluate};
use evalwatch::alert::rule::{Rule, parse_rule};
use evalwatch::model::{CaseStatus, Metrics, ProviderMetrics};

const CASES: usize = 500;
const FLIP: f64 = 0.03;
const TRUE_PASS: f64 = 0.9;
const STABLE_RUNS: usize = 100;
const WARMUP: usize = 10;
const DROPPED: usize = 25;
/// As `run`: the flakiness window is at least 5 runs.
const WINDOW: usize = 7;

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

fn snapshot(id: usize, outcomes: &[bool]) -> RunSnapshot {
    let passed = outcomes.iter().filter(|&&b| b).count() as u64;
    RunSnapshot {
        run_id: format!("r{id}"),
        started_at: String::new(),
        metrics: vec![ProviderMetrics {
            provider: "m".into(),
            tag: None,
            metrics: Metrics {
                cases: outcomes.len() as u64,
                passed,
                failed: outcomes.len() as u64 - passed,
                pass_rate: Some(passed as f64 / outcomes.len() as f64),
                ..Metrics::default()
            },
        }],
        statuses: outcomes
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                let s = if b {
                    CaseStatus::Passed
                } else {
                    CaseStatus::Failed
                };
                (format!("c{i}"), "m".to_owned(), 0, s)
            })
            .collect(),
        samples: Vec::new(),
    }
}

fn observe(truth: &[bool], rng: &mut Rng) -> Vec<bool> {
    truth
        .iter()
        .map(|&t| if rng.unit() < FLIP { !t } else { t })
        .collect()
}

/// Whether `rule` fires on `current` given the runs before it (newest first).
fn fires(
    rule: &Rule,
    current: &RunSnapshot,
    history: &[RunSnapshot],
    tags: &HashMap<String, Vec<String>>,
) -> bool {
    let n = match rule.baseline {
        evalwatch::alert::rule::BaselineKind::Trailing(n) => n as usize,
        _ => 1,
    };
    let window = &history[..history.len().min(WINDOW.max(n))];
    let baseline = &history[..history.len().min(n)];
    let input = EvalInput {
        current,
        baseline,
        window,
        case_tags: tags,
    };
    evaluate(rule, "m", &input).verdict == Verdict::Firing
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let stable_seeds = args.first().copied().unwrap_or(200);
    let drop_seeds = args.get(1).copied().unwrap_or(1000);
    let named = BTreeSet::new();
    let rules: Vec<(&str, Rule)> = [
        ("drop 0.05 vs previous (exact McNemar)", serde_json::json!({"metric": "pass_rate", "drop": 0.05, "severity": "critical"})),
        ("drop 0.05 vs trailing:7 (exact permutation)", serde_json::json!({"metric": "pass_rate", "drop": 0.05, "baseline": "trailing:7", "severity": "critical"})),
        ("drop 0.02 vs previous, no test (naive)", serde_json::json!({"metric": "pass_rate", "drop": 0.02, "test": "none", "severity": "critical"})),
        ("drop 0.05 vs previous, no test (naive)", serde_json::json!({"metric": "pass_rate", "drop": 0.05, "test": "none", "severity": "critical"})),
    ]
    .into_iter()
    .map(|(name, raw)| (name, parse_rule(&raw, &named).expect("rule")))
    .collect();
    let tags = HashMap::new();

    let mut false_fires = vec![0usize; rules.len()];
    let mut seeds_with_fire = vec![0usize; rules.len()];
    let mut evaluations = 0usize;
    for seed in 0..stable_seeds {
        let mut rng = Rng(seed as u64 * 7919 + 1);
        let truth: Vec<bool> = (0..CASES).map(|_| rng.unit() < TRUE_PASS).collect();
        let mut history: Vec<RunSnapshot> = Vec::new();
        let mut fired_this_seed = vec![false; rules.len()];
        for r in 0..STABLE_RUNS {
            let cur = snapshot(r, &observe(&truth, &mut rng));
            if !history.is_empty() {
                evaluations += 1;
                for (k, (_, rule)) in rules.iter().enumerate() {
                    if fires(rule, &cur, &history, &tags) {
                        false_fires[k] += 1;
                        fired_this_seed[k] = true;
                    }
                }
            }
            history.insert(0, cur);
            history.truncate(WINDOW);
        }
        for (k, f) in fired_this_seed.iter().enumerate() {
            seeds_with_fire[k] += usize::from(*f);
        }
    }

    let mut caught = vec![0usize; rules.len()];
    for seed in 0..drop_seeds {
        let mut rng = Rng(seed as u64 * 104_729 + 17);
        let mut truth: Vec<bool> = (0..CASES).map(|_| rng.unit() < TRUE_PASS).collect();
        let mut history: Vec<RunSnapshot> = Vec::new();
        for r in 0..WARMUP {
            history.insert(0, snapshot(r, &observe(&truth, &mut rng)));
        }
        history.truncate(WINDOW);
        // 25 truly passing cases, chosen at random, now fail.
        let mut passing: Vec<usize> = (0..CASES).filter(|&i| truth[i]).collect();
        for _ in 0..DROPPED {
            let j = (rng.next_u64() % passing.len() as u64) as usize;
            truth[passing.swap_remove(j)] = false;
        }
        let cur = snapshot(WARMUP, &observe(&truth, &mut rng));
        for (k, (_, rule)) in rules.iter().enumerate() {
            if fires(rule, &cur, &history, &tags) {
                caught[k] += 1;
            }
        }
    }

    println!(
        "alert simulation: {CASES} cases, true pass rate {TRUE_PASS}, each outcome flipped with p = {FLIP} per run"
    );
    println!(
        "stable: {stable_seeds} seeds x {STABLE_RUNS} runs ({evaluations} evaluations); drop: {drop_seeds} seeds, {DROPPED} cases (5 points) start failing after {WARMUP} runs"
    );
    println!(
        "{:<42} {:>22} {:>22} {:>22}",
        "rule", "fires on stable runs", "stable seeds with any", "drop caught 1st run"
    );
    for (k, (name, _)) in rules.iter().enumerate() {
        println!(
            "{:<42} {:>12} ({:>6.3}%) {:>12} ({:>6.2}%) {:>12} ({:>6.2}%)",
            name,
            false_fires[k],
            100.0 * false_fires[k] as f64 / evaluations.max(1) as f64,
            seeds_with_fire[k],
            100.0 * seeds_with_fire[k] as f64 / stable_seeds.max(1) as f64,
            caught[k],
            100.0 * caught[k] as f64 / drop_seeds.max(1) as f64,
        );
    }
}
