#![allow(
    clippy::float_cmp,
    clippy::needless_pass_by_value,
    clippy::many_single_char_names
)]

use std::collections::{BTreeSet, HashMap};

use serde_json::json;

use super::*;
use crate::alert::rule::parse_rule;
use crate::model::Metrics;

fn rule(v: serde_json::Value) -> Rule {
    parse_rule(&v, &BTreeSet::new()).unwrap()
}

/// A run of provider `p` whose case `c{i}` passes when `pass[i]`.
fn run(id: &str, pass: &[bool]) -> RunSnapshot {
    let passed = pass.iter().filter(|&&b| b).count() as u64;
    let failed = pass.len() as u64 - passed;
    let metrics = Metrics {
        cases: pass.len() as u64,
        passed,
        failed,
        pass_rate: Some(passed as f64 / pass.len().max(1) as f64),
        ..Metrics::default()
    };
    RunSnapshot {
        run_id: id.into(),
        started_at: "2025-01-01T00:00:00Z".into(),
        metrics: vec![ProviderMetrics {
            provider: "p".into(),
            tag: None,
            metrics,
        }],
        statuses: pass
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                (
                    format!("c{i:03}"),
                    "p".to_owned(),
                    0,
                    if b {
                        CaseStatus::Passed
                    } else {
                        CaseStatus::Failed
                    },
                )
            })
            .collect(),
        samples: Vec::new(),
    }
}

fn eval(r: &Rule, cur: &RunSnapshot, base: &[RunSnapshot], window: &[RunSnapshot]) -> Finding {
    let tags = HashMap::new();
    evaluate(
        r,
        "p",
        &EvalInput {
            current: cur,
            baseline: base,
            window,
            case_tags: &tags,
        },
    )
}

#[test]
fn a_large_paired_drop_fires_with_mcnemar_and_lists_flips() {
    let base: Vec<bool> = (0..200).map(|i| i % 10 != 0).collect(); // 90%
    let mut now = base.clone();
    for (i, b) in now.iter_mut().enumerate().take(40) {
        if i % 10 != 0 {
            *b = false; // 36 stable cases fail now: -18 points
        }
    }
    let r = rule(json!({"metric": "pass_rate", "drop": 0.05}));
    let b = [run("b", &base)];
    let f = eval(&r, &run("c", &now), &b, &b);
    assert_eq!(f.verdict, Verdict::Firing, "{}", f.detail);
    let t = f.test.as_ref().unwrap();
    assert_eq!(t.name, "mcnemar");
    assert_eq!(t.n, 200);
    assert!(t.p_value < 1e-9);
    assert_eq!(f.flipped_total, 36);
    assert_eq!(
        f.flipped.len(),
        36,
        "every one, not only the first {TOP_FLIPS}"
    );
    assert_eq!(f.flipped[0].case_id, "c001");
    assert_eq!((f.flipped[0].from, f.flipped[0].to), ("passed", "failed"));
    assert!((f.value.unwrap() - 0.72).abs() < 1e-12);
    assert!((f.baseline_value.unwrap() - 0.9).abs() < 1e-12);
}

#[test]
fn the_bound_of_a_drop_is_said_at_most_100_points() {
    // 12 of 12 passed, then none: the normal bound passes 100 points.
    let r = rule(json!({"metric": "pass_rate", "drop": 0.05}));
    let b = [run("b", &[true; 12])];
    let f = eval(&r, &run("c", &[false; 12]), &b, &b);
    assert_eq!(f.verdict, Verdict::Firing, "{}", f.detail);
    assert!(
        f.detail.contains("could reach the limit (100.0 points"),
        "{}",
        f.detail
    );
}

#[test]
fn a_small_drop_is_not_significant() {
    // b = 10, c = 2 on 500 cases: one-sided McNemar p = 0.019 > 0.01.
    let base: Vec<bool> = (0..500).map(|i| (2..490).contains(&i)).collect();
    let mut now = base.clone();
    now[0] = true;
    now[1] = true;
    for b in now.iter_mut().skip(100).take(10) {
        *b = false;
    }
    let r = rule(json!({"metric": "pass_rate", "drop": 0.0}));
    let b = [run("b", &base)];
    let f = eval(&r, &run("c", &now), &b, &b);
    assert_eq!(f.verdict, Verdict::Clear, "{}", f.detail);
    let p = f.test.unwrap().p_value;
    assert!((p - 79.0 / 4096.0).abs() < 1e-12, "{p}");
    // With alpha 0.05 the same data fires.
    let r = rule(json!({"metric": "pass_rate", "drop": 0.0, "alpha": 0.05}));
    assert_eq!(eval(&r, &run("c", &now), &b, &b).verdict, Verdict::Firing);
}

#[test]
fn a_significant_but_tiny_drop_stays_quiet() {
    // 10_000 cases, 1.5 points down, every flip one way: significant, far below 5 points.
    let base = vec![true; 10_000];
    let mut now = base.clone();
    for b in now.iter_mut().take(150) {
        *b = false;
    }
    let r = rule(json!({"metric": "pass_rate", "drop": 0.05}));
    let b = [run("b", &base)];
    let f = eval(&r, &run("c", &now), &b, &b);
    assert!(f.test.as_ref().unwrap().p_value < 1e-9);
    assert_eq!(f.verdict, Verdict::Clear, "{}", f.detail);
}

#[test]
fn flaky_cases_are_reported_apart_and_do_not_fire_alone() {
    // Cases c000..c029 flip in the window: they fail now, nothing else moves.
    let stable: Vec<bool> = vec![true; 100];
    let mut odd = stable.clone();
    for b in odd.iter_mut().take(30) {
        *b = false;
    }
    // Newest first: the cases failed, passed, failed, passed: two changes or more.
    let window = [
        run("w1", &stable),
        run("w2", &odd),
        run("w3", &stable),
        run("w4", &odd),
    ];
    let r = rule(json!({"metric": "pass_rate", "drop": 0.05}));
    let f = eval(&r, &run("c", &odd), &window[..1], &window);
    assert_eq!(f.verdict, Verdict::Clear, "{}", f.detail);
    assert_eq!(f.flipped_total, 0);
    assert_eq!(f.flaky_flipped_total, 30);
    assert!(f.detail.contains("30 known-flaky"), "{}", f.detail);
    // Without the window they are not known to be flaky, and the drop fires.
    let f = eval(&r, &run("c", &odd), &window[..1], &window[..1]);
    assert_eq!(f.verdict, Verdict::Firing, "{}", f.detail);
    // One change that stayed (passed, passed, failed, failed) is a step, not flakiness.
    let step = [
        run("w1", &odd),
        run("w2", &odd),
        run("w3", &stable),
        run("w4", &stable),
    ];
    let f = eval(&r, &run("c", &odd), &window[..1], &step);
    assert_eq!(f.flaky_flipped_total, 0);
    assert_eq!(f.flipped_total, 30);
    assert_eq!(f.verdict, Verdict::Firing, "{}", f.detail);
}

#[test]
fn disjoint_case_sets_use_fisher_on_pooled_trailing_counts() {
    let base: Vec<bool> = (0..100).map(|i| i % 10 != 0).collect();
    let mut now = run("c", &(0..120).map(|i| i % 2 == 0).collect::<Vec<_>>());
    for s in &mut now.statuses {
        s.0 = format!("new-{}", s.0);
    }
    let r = rule(json!({"metric": "pass_rate", "drop": 0.1, "baseline": "trailing:3"}));
    let b = [run("b1", &base), run("b2", &base), run("b3", &base)];
    let f = eval(&r, &now, &b, &b);
    assert_eq!(f.test.as_ref().unwrap().name, "fisher");
    assert_eq!(f.test.as_ref().unwrap().n, 420);
    assert_eq!(f.verdict, Verdict::Firing, "{}", f.detail);
    // A rise rule is quiet on a drop.
    let r = rule(json!({"metric": "pass_rate", "rise": 0.1, "baseline": "trailing:3"}));
    assert_eq!(eval(&r, &now, &b, &b).verdict, Verdict::Clear);
}

#[test]
fn trailing_window_uses_the_exact_permutation_test() {
    // Three baseline runs; 20 of 200 cases that always passed fail now.
    let base: Vec<bool> = (0..200).map(|i| i % 10 != 0).collect();
    let mut now = base.clone();
    for (i, b) in now.iter_mut().enumerate().take(40) {
        if i % 2 == 1 {
            *b = false;
        }
    }
    let r = rule(json!({"metric": "pass_rate", "drop": 0.05, "baseline": "trailing:3"}));
    let b = [run("b1", &base), run("b2", &base), run("b3", &base)];
    let f = eval(&r, &run("c", &now), &b, &b);
    let t = f.test.as_ref().unwrap();
    assert_eq!(t.name, "permutation");
    // Each changed case passed 3 of 3 times before: it passes now with probability 3/4
    // under "no change"; all 20 failing has probability (1/4)^20.
    assert!(
        (t.p_value - 0.25f64.powi(20)).abs() < 1e-20,
        "{}",
        t.p_value
    );
    assert_eq!(f.verdict, Verdict::Firing, "{}", f.detail);
    // The same run is no regression against itself.
    let same = [run("b1", &now), run("b2", &now), run("b3", &now)];
    let f = eval(&r, &run("c", &now), &same, &same);
    assert_eq!(f.verdict, Verdict::Clear, "{}", f.detail);
    assert_eq!(f.test.unwrap().p_value, 1.0);
}

#[test]
fn no_baseline_is_unknown_not_clear() {
    let r = rule(json!({"metric": "pass_rate", "drop": 0.05}));
    let f = eval(&r, &run("c", &[true, false]), &[], &[]);
    assert_eq!(f.verdict, Verdict::Unknown);
    let r = rule(json!({"metric": "cost_usd", "ratio": 1.2}));
    assert_eq!(
        eval(&r, &run("c", &[true]), &[], &[]).verdict,
        Verdict::Unknown
    );
}

fn with_metric(mut r: RunSnapshot, f: impl Fn(&mut Metrics)) -> RunSnapshot {
    f(&mut r.metrics[0].metrics);
    r
}

#[test]
fn threshold_rules_ratio_min_max_and_median_baseline() {
    let lat = |v: f64| with_metric(run("x", &[true]), move |m| m.latency_p95_ms = Some(v));
    let r = rule(json!({"metric": "latency_p95_ms", "ratio": 3.0, "baseline": "trailing:3"}));
    // Median of 100, 110, 900 is 110: 320 is below 3x, 340 above.
    let b = [lat(100.0), lat(900.0), lat(110.0)];
    assert_eq!(eval(&r, &lat(320.0), &b, &b).verdict, Verdict::Clear);
    let f = eval(&r, &lat(340.0), &b, &b);
    assert_eq!(f.verdict, Verdict::Firing);
    assert_eq!(f.baseline_value, Some(110.0));
    let r = rule(json!({"metric": "pass_rate", "min": 0.9}));
    assert_eq!(
        eval(&r, &run("c", &[true, false]), &[], &[]).verdict,
        Verdict::Firing
    );
    assert_eq!(
        eval(&r, &run("c", &[true]), &[], &[]).verdict,
        Verdict::Clear
    );
    let r = rule(json!({"metric": "cost_usd", "max": 1.0}));
    let c = with_metric(run("c", &[true]), |m| m.cost_usd = 1.5);
    assert_eq!(eval(&r, &c, &[], &[]).verdict, Verdict::Firing);
    let r = rule(json!({"metric": "error_rate", "rise": 0.1}));
    let e = |v: f64| with_metric(run("x", &[true]), move |m| m.error_rate = Some(v));
    assert_eq!(eval(&r, &e(0.25), &[e(0.1)], &[]).verdict, Verdict::Firing);
    assert_eq!(eval(&r, &e(0.15), &[e(0.1)], &[]).verdict, Verdict::Clear);
    let r = rule(json!({"metric": "pass_rate", "drop": 0.1, "test": "none"}));
    assert_eq!(
        eval(
            &r,
            &run("c", &[true, false]),
            &[run("b", &[true, true])],
            &[]
        )
        .verdict,
        Verdict::Firing
    );
}

fn with_latencies(mut r: RunSnapshot, lats: &[f64]) -> RunSnapshot {
    r.samples = lats
        .iter()
        .enumerate()
        .map(|(i, &l)| ResultSample {
            case_id: format!("c{i:03}"),
            provider: "p".into(),
            latency_ms: Some(l),
            ..ResultSample::default()
        })
        .collect();
    r
}

#[test]
fn ks_confirms_a_latency_shift_and_vetoes_one_outlier() {
    let r = rule(json!({"metric": "latency_p95_ms", "ratio": 2.0, "test": "ks"}));
    let base_l: Vec<f64> = (0..200).map(|i| 100.0 + f64::from(i % 20)).collect();
    let base = with_latencies(
        with_metric(run("b", &[true]), |m| m.latency_p95_ms = Some(119.0)),
        &base_l,
    );
    let slow: Vec<f64> = base_l.iter().map(|v| v * 3.0).collect();
    let cur = with_latencies(
        with_metric(run("c", &[true]), |m| m.latency_p95_ms = Some(357.0)),
        &slow,
    );
    let f = eval(&r, &cur, std::slice::from_ref(&base), &[]);
    assert_eq!(f.verdict, Verdict::Firing, "{}", f.detail);
    assert_eq!(f.test.as_ref().unwrap().name, "ks");
    // The p95 tripled because of a handful of slow calls; the distribution did not move.
    let mut few = base_l.clone();
    for v in few.iter_mut().take(12) {
        *v = 1000.0;
    }
    let cur = with_latencies(
        with_metric(run("c", &[true]), |m| m.latency_p95_ms = Some(1000.0)),
        &few,
    );
    let f = eval(&r, &cur, std::slice::from_ref(&base), &[]);
    assert_eq!(f.verdict, Verdict::Clear, "{}", f.detail);
    assert!(f.detail.contains("not significant"), "{}", f.detail);
}

#[test]
fn label_distribution_uses_chi_square() {
    let labels = |id: &str, l: &[(&str, usize)]| {
        let mut r = run(id, &[true]);
        let mut i = 0;
        for (name, n) in l {
            for _ in 0..*n {
                r.samples.push(ResultSample {
                    case_id: format!("c{i}"),
                    provider: "p".into(),
                    label: Some((*name).into()),
                    ..ResultSample::default()
                });
                i += 1;
            }
        }
        r
    };
    let r = rule(json!({"metric": "label_distribution", "max": 0}));
    let base = [labels("b", &[("a", 50), ("b", 50)])];
    let f = eval(&r, &labels("c", &[("a", 90), ("b", 10)]), &base, &[]);
    assert_eq!(f.verdict, Verdict::Firing, "{}", f.detail);
    assert_eq!(f.test.unwrap().name, "chi2");
    let f = eval(&r, &labels("c", &[("a", 52), ("b", 48)]), &base, &[]);
    assert_eq!(f.verdict, Verdict::Clear, "{}", f.detail);
}

#[test]
fn missed_run_after_the_limit() {
    use chrono::{TimeZone, Utc};
    let r = rule(json!({"metric": "missed_run", "after": "26h"}));
    let t0 = Utc.with_ymd_and_hms(2025, 1, 1, 6, 0, 0).unwrap();
    let f = missed_run(&r, Some(t0), Some(t0), t0 + chrono::Duration::hours(25));
    assert_eq!(f.verdict, Verdict::Clear);
    let f = missed_run(&r, Some(t0), Some(t0), t0 + chrono::Duration::hours(27));
    assert_eq!(f.verdict, Verdict::Firing);
    assert!(f.detail.contains("27.0h"), "{}", f.detail);
    let f = missed_run(&r, None, None, t0);
    assert_eq!(f.verdict, Verdict::Unknown);
    // Under an hour, in minutes (it read "0.0h").
    let r2 = rule(json!({"metric": "missed_run", "after": "2m"}));
    let f = missed_run(&r2, Some(t0), Some(t0), t0 + chrono::Duration::minutes(3));
    assert!(f.detail.contains("no complete run for 3m"), "{}", f.detail);
    let f = missed_run(&r, None, Some(t0), t0 + chrono::Duration::hours(30));
    assert_eq!(f.verdict, Verdict::Firing);
}

#[test]
fn concentration_names_the_worst_tag() {
    let mut cur = run("c", &[true]);
    let mut base = run("b", &[true]);
    for (tag, now, before) in [("billing", 0.5, 0.9), ("shipping", 0.88, 0.9)] {
        cur.metrics.push(ProviderMetrics {
            provider: "p".into(),
            tag: Some(tag.into()),
            metrics: Metrics {
                mean_score: Some(now),
                ..Metrics::default()
            },
        });
        base.metrics.push(ProviderMetrics {
            provider: "p".into(),
            tag: Some(tag.into()),
            metrics: Metrics {
                mean_score: Some(before),
                ..Metrics::default()
            },
        });
    }
    cur.metrics[0].metrics.mean_score = Some(0.6);
    base.metrics[0].metrics.mean_score = Some(0.9);
    let r = rule(json!({"metric": "mean_score", "drop": 0.1}));
    let f = eval(&r, &cur, &[base], &[]);
    assert_eq!(f.verdict, Verdict::Firing);
    assert_eq!(f.concentration[0].name, "billing");
    assert!((f.concentration[0].worse_by - 0.4).abs() < 1e-12);
    assert_eq!(f.concentration.len(), 2);
}

/// 30 cases; `passing` of them pass.
fn rate_run(id: &str, passing: usize) -> RunSnapshot {
    run(id, &(0..30).map(|i| i < passing).collect::<Vec<_>>())
}

#[test]
fn the_drop_is_said_in_points_and_percent_between_the_numbers_shown() {
    // Trailing runs at 90%, 90% and 70%: the baseline (median) is 90%; now 30%.
    let r = rule(json!({"metric": "pass_rate", "drop": 0.05, "baseline": "trailing:3"}));
    let b = [rate_run("b1", 27), rate_run("b2", 27), rate_run("b3", 21)];
    let f = eval(&r, &rate_run("c", 9), &b, &b);
    assert_eq!(f.verdict, Verdict::Firing, "{}", f.detail);
    assert!(
        f.detail
            .starts_with("pass_rate 30.0% vs baseline 90.0%: down 60.0 points (-66.7%)"),
        "{}",
        f.detail
    );
    // The test's own case-by-case estimate (averaging the three runs) is said apart.
    assert!(
        f.detail.contains("case by case over 30 result(s)"),
        "{}",
        f.detail
    );
    assert!(f.detail.contains("down 53.3 points"), "{}", f.detail);
    assert!(f.detail.ends_with(": fires"), "{}", f.detail);
    // A value that rose is not a negative drop.
    let r = rule(json!({"metric": "pass_rate", "drop": 0.05}));
    let f = eval(&r, &rate_run("c", 29), &b[..1], &b[..1]);
    assert_eq!(f.verdict, Verdict::Clear, "{}", f.detail);
    assert!(
        f.detail
            .starts_with("pass_rate 96.7% vs baseline 90.0%: up 6.7 points (+7.4%)"),
        "{}",
        f.detail
    );
    assert!(f.detail.ends_with("no drop: does not fire"), "{}", f.detail);
    assert!(!f.detail.contains("-6.7"), "{}", f.detail);
    // Other metrics: the change in their unit and in percent.
    let r = rule(json!({"metric": "latency_p95_ms", "rise": 500}));
    let base = with_metric(rate_run("b", 27), |m| m.latency_p95_ms = Some(1100.0));
    let now = with_metric(rate_run("c", 27), |m| m.latency_p95_ms = Some(1200.0));
    let f = eval(
        &r,
        &now,
        std::slice::from_ref(&base),
        std::slice::from_ref(&base),
    );
    assert_eq!(
        f.detail,
        "latency_p95_ms 1200 ms vs baseline 1100 ms: up 100 ms (+9.1%), limit a rise of 500 ms: within limits"
    );
}

#[test]
fn the_detail_says_why_a_rule_did_not_fire() {
    // 2 of 10 stable cases fail now: McNemar one-sided p = 0.25.
    let r = rule(json!({"metric": "pass_rate", "drop": 0.05}));
    let base: Vec<bool> = (0..10).map(|i| i != 0).collect();
    let now: Vec<bool> = (0..10).map(|i| i > 2).collect();
    let b = [run("b", &base)];
    let f = eval(&r, &run("c", &now), &b, &b);
    assert_eq!(f.verdict, Verdict::Clear, "{}", f.detail);
    assert!(
        f.detail
            .contains("mcnemar p = 0.2500 >= alpha 0.01: not significant"),
        "{}",
        f.detail
    );
    // Significant but too small to reach the limit.
    let base = vec![true; 10_000];
    let mut now = base.clone();
    for b in now.iter_mut().take(150) {
        *b = false;
    }
    let b = [run("b", &base)];
    let f = eval(&r, &run("c", &now), &b, &b);
    assert!(
        f.detail.contains("significant, but the drop is at most")
            && f.detail.contains("under the limit of 5.0 points"),
        "{}",
        f.detail
    );
    // A ratio rule gives the ratio and the limit.
    let r = rule(json!({"metric": "latency_p95_ms", "ratio": 3.0}));
    let base = with_metric(rate_run("b", 27), |m| m.latency_p95_ms = Some(1100.0));
    let now = with_metric(rate_run("c", 27), |m| m.latency_p95_ms = Some(1200.0));
    let f = eval(
        &r,
        &now,
        std::slice::from_ref(&base),
        std::slice::from_ref(&base),
    );
    assert!(f.detail.contains("ratio 1.09 < limit 3"), "{}", f.detail);
}

#[test]
fn every_case_failing_against_the_baseline_is_listed() {
    // c005 passed in the two older baseline runs, failed in the latest and fails now: it
    // fails against the baseline, though it did not flip since the latest run.
    let all = vec![true; 30];
    let mut latest = all.clone();
    latest[5] = false;
    let mut now = latest.clone();
    for b in now.iter_mut().skip(10).take(10) {
        *b = false;
    }
    let r = rule(json!({"metric": "pass_rate", "drop": 0.05, "baseline": "trailing:3"}));
    let b = [run("b3", &latest), run("b2", &all), run("b1", &all)];
    let f = eval(&r, &run("c", &now), &b, &b);
    assert_eq!(f.flipped_total, 11, "{:?}", f.flipped);
    assert!(
        f.flipped.iter().any(|x| x.case_id == "c005"),
        "{:?}",
        f.flipped
    );
}
