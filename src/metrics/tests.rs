//! Metrics tests on hand-built result records.

use serde_json::{Value, json};

use super::{RunAccumulator, compute, compute_with, evaluate_gates, percentile_nearest_rank};
use crate::model::{
    AssertionOutcome, CaseStatus, ErrorKind, Gate, Job, LabelPair, Metrics, RepeatPolicy,
    ResultRecord,
};

fn rec(provider: &str, case: &str, status: CaseStatus) -> ResultRecord {
    ResultRecord {
        case_hash: "h".into(),
        score: match status {
            CaseStatus::Passed => Some(1.0),
            CaseStatus::Failed => Some(0.0),
            _ => None,
        },
        ..ResultRecord::new(Job::of(case, provider, 0), status)
    }
}

fn outcome(type_name: &str, pass: bool, score: f64, details: Value) -> AssertionOutcome {
    AssertionOutcome {
        type_name: type_name.to_owned(),
        pass,
        score,
        reason: String::new(),
        details,
        weight: 1.0,
        metric: None,
        unscorable: false,
    }
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-12)
}

#[test]
fn percentiles_by_nearest_rank() {
    let p = |v: &[f64], q: f64| percentile_nearest_rank(v, q);
    assert_eq!(p(&[], 50.0), None);
    assert_eq!(p(&[7.0], 50.0), Some(7.0));
    assert_eq!(p(&[7.0], 95.0), Some(7.0));
    assert_eq!(p(&[7.0], 99.0), Some(7.0));
    let two = [1.0, 2.0];
    assert_eq!(p(&two, 50.0), Some(1.0));
    assert_eq!(p(&two, 95.0), Some(2.0));
    assert_eq!(p(&two, 99.0), Some(2.0));
    let ten: Vec<f64> = (1..=10).map(f64::from).collect();
    assert_eq!(p(&ten, 50.0), Some(5.0));
    assert_eq!(p(&ten, 95.0), Some(10.0));
    assert_eq!(p(&ten, 99.0), Some(10.0));
    assert_eq!(p(&ten, 10.0), Some(1.0));
    assert_eq!(p(&ten, 11.0), Some(2.0));
    let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
    assert_eq!(p(&hundred, 50.0), Some(50.0));
    assert_eq!(p(&hundred, 95.0), Some(95.0));
    assert_eq!(p(&hundred, 99.0), Some(99.0));
    assert_eq!(p(&hundred, 100.0), Some(100.0));
    // 0.07 * 100 is 7.000000000000001 in floating point: the rank must still be 7.
    assert_eq!(p(&hundred, 7.0), Some(7.0));
    assert_eq!(p(&hundred, 0.0), Some(1.0));
    assert_eq!(p(&hundred, f64::NAN), None);
}

#[test]
fn empty_run_has_no_rates() {
    let m = compute(&[], Some(10.0));
    assert_eq!(m.cases, 0);
    assert_eq!(m.pass_rate, None);
    assert_eq!(m.error_rate, None);
    assert_eq!(m.mean_score, None);
    assert_eq!(m.hallucination_rate, None);
    assert_eq!(m.latency_p50_ms, None);
    assert_eq!(m.latency_max_ms, None);
    assert_eq!(m.cost_per_case_usd, None);
    assert!(close(m.throughput_per_s, 0.0));
    assert!(m.flaky_cases.is_empty());
    assert!(m.labels.is_empty());
}

#[test]
fn all_errors_have_no_pass_rate() {
    let mut a = rec("p", "a", CaseStatus::Error);
    a.error_kind = Some(ErrorKind::Timeout);
    a.latency_ms = Some(60_000.0);
    let mut b = rec("p", "b", CaseStatus::Error);
    b.error_kind = Some(ErrorKind::Timeout);
    let c = rec("p", "c", CaseStatus::Error);
    let m = compute(&[a, b, c], None);
    assert_eq!(m.pass_rate, None);
    assert!(close(m.error_rate, 1.0));
    assert_eq!(m.mean_score, None);
    // Latencies of failed calls do not count.
    assert_eq!(m.latency_p50_ms, None);
    assert_eq!(m.throughput_per_s, None);
    assert_eq!(m.errors_by_kind.get("timeout"), Some(&2));
    assert_eq!(m.errors_by_kind.get("unknown"), Some(&1));
}

#[test]
fn counts_scores_latency_tokens_cost() {
    let mut rs = Vec::new();
    for (i, status) in [
        CaseStatus::Passed,
        CaseStatus::Passed,
        CaseStatus::Failed,
        CaseStatus::Unscorable,
        CaseStatus::Error,
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = rec("p", &format!("c{i}"), status);
        r.latency_ms = Some(100.0 * (i as f64 + 1.0));
        r.tokens_in = Some(10);
        r.tokens_out = Some(5);
        r.cost_usd = Some(0.01);
        rs.push(r);
    }
    rs[3].score = Some(0.5);
    let m = compute(&rs, Some(2.0));
    assert_eq!(
        (m.cases, m.passed, m.failed, m.unscorable, m.errors),
        (5, 2, 1, 1, 1)
    );
    assert!(close(m.pass_rate, 2.0 / 3.0));
    assert!(close(m.error_rate, 0.2));
    // Scores 1, 1, 0, 0.5.
    assert!(close(m.mean_score, 0.625));
    // Successful latencies 100..400; the errored 500 is excluded.
    assert!(close(m.latency_p50_ms, 200.0));
    assert!(close(m.latency_p95_ms, 400.0));
    assert!(close(m.latency_max_ms, 400.0));
    assert_eq!((m.tokens_in, m.tokens_out), (50, 25));
    assert!((m.cost_usd - 0.05).abs() < 1e-12);
    assert!(close(m.cost_per_case_usd, 0.01));
    assert!(close(m.throughput_per_s, 2.5));
}

#[test]
fn hallucination_rates() {
    let mut rs = Vec::new();
    let mut r = rec("p", "a", CaseStatus::Failed);
    r.assertions = vec![outcome(
        "hallucination",
        false,
        0.4,
        json!({"category": "contradiction", "unsupported": []}),
    )];
    rs.push(r);
    let mut r = rec("p", "b", CaseStatus::Failed);
    r.assertions = vec![outcome(
        "hallucination",
        false,
        0.5,
        json!({"unsupported": ["the moon is cheese"]}),
    )];
    rs.push(r);
    let mut r = rec("p", "c", CaseStatus::Passed);
    r.assertions = vec![outcome(
        "hallucination",
        true,
        0.0,
        json!({"unsupported": [], "contradiction": []}),
    )];
    rs.push(r);
    // No hallucination assertion: not counted.
    rs.push(rec("p", "d", CaseStatus::Passed));
    // An undecided one: not counted either.
    let mut r = rec("p", "e", CaseStatus::Unscorable);
    let mut o = outcome("hallucination", false, 0.0, Value::Null);
    o.unscorable = true;
    r.assertions = vec![o];
    rs.push(r);
    let m = compute(&rs, None);
    assert!(close(m.hallucination_rate, 2.0 / 3.0));
    assert!(close(m.contradiction_rate, 1.0 / 3.0));
    assert!(close(m.unsupported_rate, 1.0 / 3.0));

    let m = compute(&rs[3..], None);
    assert_eq!(m.hallucination_rate, None);
    assert_eq!(m.contradiction_rate, None);
    assert_eq!(m.unsupported_rate, None);
}

#[test]
fn flaky_cases_per_provider() {
    let rs = vec![
        rec("p1", "z", CaseStatus::Passed),
        rec("p1", "z", CaseStatus::Failed),
        rec("p1", "a", CaseStatus::Failed),
        rec("p1", "a", CaseStatus::Passed),
        rec("p1", "a", CaseStatus::Passed),
        // Mixed only across providers: not flaky.
        rec("p1", "b", CaseStatus::Passed),
        rec("p2", "b", CaseStatus::Failed),
        // An error is not an outcome.
        rec("p1", "c", CaseStatus::Passed),
        rec("p1", "c", CaseStatus::Error),
        rec("p1", "d", CaseStatus::Failed),
        rec("p1", "d", CaseStatus::Failed),
    ];
    assert_eq!(compute(&rs, None).flaky_cases, vec!["a", "z"]);
}

#[test]
fn named_metrics() {
    let mut r1 = rec("p", "a", CaseStatus::Passed);
    let mut o = outcome("contains", true, 1.0, Value::Null);
    o.metric = Some("accuracy".into());
    let mut o2 = outcome("similarity", true, 0.5, Value::Null);
    o2.metric = Some("closeness".into());
    r1.assertions = vec![o.clone(), o2];
    let mut r2 = rec("p", "b", CaseStatus::Failed);
    let mut o3 = o.clone();
    o3.score = 0.0;
    let mut undecided = o;
    undecided.unscorable = true;
    r2.assertions = vec![o3, undecided];
    let m = compute(&[r1, r2], None);
    assert_eq!(m.named.len(), 2);
    assert!(close(m.named.get("accuracy").copied(), 0.5));
    assert!(close(m.named.get("closeness").copied(), 0.5));
    assert!(close(m.get("accuracy"), 0.5));
}

#[test]
fn label_precision_recall_f1() {
    let table: &[(&str, Option<&str>, usize)] = &[
        ("cat", Some("cat"), 3),
        ("cat", Some("dog"), 1),
        ("dog", Some("dog"), 2),
        ("dog", Some("cat"), 1),
        ("dog", None, 1),
        ("bird", None, 1),
    ];
    let mut rs = Vec::new();
    for (expected, predicted, n) in table {
        for _ in 0..*n {
            let mut r = rec("p", "x", CaseStatus::Passed);
            r.label = Some(LabelPair {
                expected: (*expected).to_owned(),
                predicted: predicted.map(str::to_owned),
            });
            rs.push(r);
        }
    }
    let m = compute(&rs, None);
    let names: Vec<&str> = m.labels.iter().map(|l| l.label.as_str()).collect();
    assert_eq!(names, vec!["bird", "cat", "dog"]);
    let bird = &m.labels[0];
    assert_eq!(bird.support, 1);
    assert_eq!(bird.precision, None);
    assert!(close(bird.recall, 0.0));
    assert!(close(bird.f1, 0.0));
    let cat = &m.labels[1];
    assert_eq!(cat.support, 4);
    assert!(close(cat.precision, 0.75));
    assert!(close(cat.recall, 0.75));
    assert!(close(cat.f1, 0.75));
    let dog = &m.labels[2];
    assert_eq!(dog.support, 4);
    assert!(close(dog.precision, 2.0 / 3.0));
    assert!(close(dog.recall, 0.5));
    assert!(close(dog.f1, 4.0 / 7.0));
}

fn tagged(
    provider: &str,
    case: &str,
    status: CaseStatus,
    tags: &[&str],
    latency: f64,
) -> ResultRecord {
    let mut r = rec(provider, case, status);
    r.tags = tags.iter().map(|t| (*t).to_owned()).collect();
    r.latency_ms = Some(latency);
    r
}

#[test]
fn accumulator_rows_per_provider_and_tag() {
    let rs = vec![
        tagged("zeta", "a", CaseStatus::Passed, &["billing"], 10.0),
        tagged(
            "alpha",
            "a",
            CaseStatus::Passed,
            &["billing", "faq", "billing"],
            20.0,
        ),
        tagged("alpha", "b", CaseStatus::Failed, &["faq"], 30.0),
        tagged("alpha", "a", CaseStatus::Failed, &["billing", "faq"], 40.0),
        tagged("alpha", "c", CaseStatus::Error, &[], 50.0),
    ];
    let mut acc = RunAccumulator::new();
    for r in &rs {
        acc.add(r);
    }
    let rows = acc.finish(Some(5.0));
    let keys: Vec<(&str, Option<&str>)> = rows
        .iter()
        .map(|r| (r.provider.as_str(), r.tag.as_deref()))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("alpha", None),
            ("alpha", Some("billing")),
            ("alpha", Some("faq")),
            ("zeta", None),
            ("zeta", Some("billing")),
        ]
    );
    // Each row equals `compute` over its slice.
    let slice = |p: &str, tag: Option<&str>| -> Vec<ResultRecord> {
        rs.iter()
            .filter(|r| r.job.provider_id == p && tag.is_none_or(|t| r.tags.iter().any(|x| x == t)))
            .cloned()
            .collect()
    };
    for row in &rows {
        let mut expected: Metrics = compute(&slice(&row.provider, row.tag.as_deref()), Some(5.0));
        if row.tag.is_some() {
            // Per-case verdicts are listed on the overall row only.
            expected.case_verdicts.clear();
        }
        assert_eq!(row.metrics, expected, "{} {:?}", row.provider, row.tag);
    }
    let alpha = &rows[0].metrics;
    assert_eq!(
        (alpha.cases, alpha.passed, alpha.failed, alpha.errors),
        (4, 1, 2, 1)
    );
    assert_eq!(alpha.flaky_cases, vec!["a"]);
    // A duplicated tag counts the result once.
    assert_eq!(rows[1].metrics.cases, 2);
    assert!(close(rows[2].metrics.pass_rate, 1.0 / 3.0));
    assert!(close(rows[3].metrics.throughput_per_s, 0.2));
}

fn gate(metric: &str, min: Option<f64>, max: Option<f64>) -> Gate {
    Gate {
        metric: metric.to_owned(),
        min,
        max,
    }
}

#[test]
fn gates_limits_and_none_values() {
    let mut m = Metrics {
        cases: 10,
        pass_rate: Some(0.9),
        error_rate: Some(0.1),
        latency_p95_ms: Some(1200.0),
        ..Metrics::default()
    };
    m.named.insert("accuracy".into(), 0.6);
    let gates = [
        gate("pass_rate", Some(0.9), None),
        gate("error_rate", None, Some(0.05)),
        gate("latency_p95_ms", Some(100.0), Some(4000.0)),
        gate("hallucination_rate", None, Some(0.05)),
        gate("accuracy", Some(0.5), Some(0.9)),
        gate("no_such_metric", Some(0.0), None),
        gate("cases", None, None),
    ];
    let res = evaluate_gates(&gates, "prod", &m);
    let view: Vec<(&str, &str, Option<f64>, bool)> = res
        .iter()
        .map(|g| (g.metric.as_str(), g.limit.as_str(), g.value, g.ok))
        .collect();
    assert_eq!(
        view,
        vec![
            ("pass_rate", ">= 0.9", Some(0.9), true),
            ("error_rate", "<= 0.05", Some(0.1), false),
            ("latency_p95_ms", "100..4000", Some(1200.0), true),
            ("hallucination_rate", "<= 0.05", None, false),
            ("accuracy", "0.5..0.9", Some(0.6), true),
            ("no_such_metric", ">= 0", None, false),
            ("cases", "any", Some(10.0), true),
        ]
    );
    assert!(res.iter().all(|g| g.provider == "prod"));
    // Bounds are inclusive on both ends.
    let res = evaluate_gates(&[gate("error_rate", Some(0.1), Some(0.1))], "p", &m);
    assert!(res[0].ok);
    assert!(evaluate_gates(&[], "p", &m).is_empty());
}

#[test]
fn gates_allow_for_rounding_at_an_inclusive_limit() {
    // Three cases scoring exactly 0.7: the mean is 0.6999999999999998 (audit H1).
    let mean = (0.7 + 0.7 + 0.7) / 3.0;
    assert!(mean < 0.7);
    // Two replay results costing 0.1 and 0.2: 0.30000000000000004.
    let cost = 0.1 + 0.2;
    assert!(cost > 0.3);
    let mut m = Metrics {
        mean_score: Some(mean),
        cost_usd: cost,
        ..Metrics::default()
    };
    m.named.insert("tokens".into(), 1e12 + 0.5);
    let res = evaluate_gates(
        &[
            gate("mean_score", Some(0.7), None),
            gate("cost_usd", None, Some(0.3)),
            gate("cost_usd", Some(0.3), Some(0.3)),
            // The allowance is relative to the limit's magnitude: 1e-9 of 1e12 is 1000.
            gate("tokens", None, Some(1e12)),
        ],
        "p",
        &m,
    );
    assert!(res.iter().all(|g| g.ok), "{res:?}");
    // A real miss is still a breach: the allowance is rounding, not slack.
    let res = evaluate_gates(
        &[
            gate("mean_score", Some(0.7 + 1e-8), None),
            gate("cost_usd", None, Some(0.3 - 1e-8)),
            gate("tokens", None, Some(1e12 - 1e4)),
        ],
        "p",
        &m,
    );
    assert!(res.iter().all(|g| !g.ok), "{res:?}");
}

/// Samples of several cases on provider `p`: (case, statuses), in order.
fn samples(cases: &[(&str, &[CaseStatus])]) -> Vec<ResultRecord> {
    let mut out = Vec::new();
    for (case, statuses) in cases {
        for (i, s) in statuses.iter().enumerate() {
            let mut r = rec("p", case, *s);
            r.job.sample = u32::try_from(i).unwrap();
            out.push(r);
        }
    }
    out
}

#[test]
fn case_verdicts_follow_the_policy_over_scored_samples() {
    use CaseStatus::{Error as E, Failed as F, Passed as P, Unscorable as U};
    let rs = samples(&[
        ("a", &[P, P, F]),
        ("b", &[P, F, F]),
        ("c", &[P, P, P]),
        ("d", &[F, F, F]),
        ("e", &[E, E, E]),
        ("f", &[U, P, E]),
        ("g", &[P, F, P, F]),
        ("h", &[U, U]),
    ]);
    let verdicts = |policy| -> (String, Option<f64>) {
        let m = compute_with(&rs, None, policy);
        let text: String = m
            .case_verdicts
            .iter()
            .map(|v| match v.verdict {
                P => 'P',
                F => 'F',
                E => 'E',
                U => 'U',
            })
            .collect();
        (text, m.case_pass_rate)
    };
    // Cases a..h; `e` has only errors, `h` only unscorable samples: no vote either way.
    let (all, rate) = verdicts(RepeatPolicy::All);
    assert_eq!(all, "FFPFEPFU");
    assert!(close(rate, 2.0 / 6.0));
    let (majority, rate) = verdicts(RepeatPolicy::Majority);
    assert_eq!(majority, "PFPFEPFU", "a tie (g: 2 of 4) is not a majority");
    assert!(close(rate, 3.0 / 6.0));
    let (any, rate) = verdicts(RepeatPolicy::Any);
    assert_eq!(any, "PPPFEPPU");
    assert!(close(rate, 5.0 / 6.0));
    let (half, rate) = verdicts(RepeatPolicy::MinRate(0.5));
    assert_eq!(half, "PFPFEPPU", "a minimum rate of 0.5 passes a tie");
    assert!(close(rate, 4.0 / 6.0));
    let (strict, _) = verdicts(RepeatPolicy::MinRate(0.7));
    assert_eq!(strict, "FFPFEPFU");

    let m = compute_with(&rs, None, RepeatPolicy::Majority);
    assert_eq!(m.repeat_policy, Some(RepeatPolicy::Majority));
    assert_eq!(m.flaky_cases, vec!["a", "b", "g"]);
    let by_id = |id: &str| m.case_verdicts.iter().find(|v| v.case_id == id).unwrap();
    let f = by_id("f");
    assert_eq!(
        (f.samples, f.passed, f.failed, f.errors, f.unscorable),
        (3, 1, 0, 1, 1)
    );
    assert!(close(f.agreement, 1.0));
    assert!(!f.flaky);
    assert_eq!(by_id("e").agreement, None);
    assert!(close(by_id("a").agreement, 2.0 / 3.0));
    assert!(close(by_id("g").agreement, 0.5));
    assert!(by_id("g").flaky);
    assert_eq!(by_id("g").provider, "p");
    assert_eq!(by_id("g").policy, RepeatPolicy::Majority);
    // Mean over the pairs with at least two scored samples: a, b, c, d, g (not f: one vote).
    let mean = (2.0 / 3.0 + 2.0 / 3.0 + 1.0 + 1.0 + 0.5) / 5.0;
    assert!(close(m.agreement, mean), "{:?}", m.agreement);
    assert!(close(m.get("agreement"), mean));
    assert!(close(m.get("case_pass_rate"), 0.5));
    // The per-result rates are unchanged by the policy.
    assert!(close(m.pass_rate, 9.0 / 17.0));
}

#[test]
fn single_samples_have_no_verdict_list_and_no_agreement() {
    let rs = vec![
        rec("p", "a", CaseStatus::Passed),
        rec("p", "b", CaseStatus::Failed),
        rec("p", "c", CaseStatus::Error),
    ];
    let m = compute_with(&rs, None, RepeatPolicy::Majority);
    assert!(m.case_verdicts.is_empty());
    assert_eq!(m.repeat_policy, None);
    assert_eq!(m.agreement, None);
    // One sample per case: the case verdict is the sample's outcome.
    assert!(close(m.case_pass_rate, 0.5));
    assert_eq!(m.case_pass_rate, m.pass_rate);
    // An older stored metrics object without the new fields still reads.
    let mut old = serde_json::to_value(&m).unwrap();
    let obj = old.as_object_mut().unwrap();
    obj.remove("case_pass_rate");
    obj.remove("agreement");
    let back: Metrics = serde_json::from_value(old).unwrap();
    assert_eq!(back.case_pass_rate, None);
    assert!(back.case_verdicts.is_empty());
}

#[test]
fn case_policies_override_the_suite_and_verdicts_are_per_provider() {
    use CaseStatus::{Failed as F, Passed as P};
    let mut rs = Vec::new();
    for (provider, case, statuses) in [
        ("p1", "a", [P, F, F]),
        ("p1", "b", [P, P, F]),
        ("p2", "a", [P, P, P]),
        ("p2", "b", [F, F, F]),
    ] {
        for (i, s) in statuses.into_iter().enumerate() {
            let mut r = rec(provider, case, s);
            r.job.sample = u32::try_from(i).unwrap();
            r.tags = vec!["t".into()];
            rs.push(r);
        }
    }
    let mut acc = RunAccumulator::with_policies(RepeatPolicy::All, [("a", RepeatPolicy::Any)]);
    for r in &rs {
        acc.add(r);
    }
    let rows = acc.finish(None);
    let row = |p: &str, tag: Option<&str>| {
        &rows
            .iter()
            .find(|r| r.provider == p && r.tag.as_deref() == tag)
            .unwrap()
            .metrics
    };
    let p1 = row("p1", None);
    let got: Vec<(&str, &str, CaseStatus, RepeatPolicy)> = p1
        .case_verdicts
        .iter()
        .map(|v| (v.case_id.as_str(), v.provider.as_str(), v.verdict, v.policy))
        .collect();
    assert_eq!(
        got,
        vec![
            ("a", "p1", P, RepeatPolicy::Any),
            ("b", "p1", F, RepeatPolicy::All),
        ]
    );
    assert!(close(p1.case_pass_rate, 0.5));
    assert_eq!(p1.repeat_policy, Some(RepeatPolicy::All));
    assert_eq!(p1.flaky_cases, vec!["a", "b"]);
    let p2 = row("p2", None);
    assert!(close(p2.case_pass_rate, 0.5));
    assert!(close(p2.agreement, 1.0));
    assert!(p2.flaky_cases.is_empty());
    // A tag row has the case metrics but not the verdict list.
    let tagged = row("p1", Some("t"));
    assert!(tagged.case_verdicts.is_empty());
    assert!(close(tagged.case_pass_rate, 0.5));
    // Gateable by name.
    let gates = evaluate_gates(
        &[Gate {
            metric: "case_pass_rate".into(),
            min: Some(0.6),
            max: None,
        }],
        "p1",
        p1,
    );
    assert!(!gates[0].ok);
    assert!(close(gates[0].value, 0.5));
}

/// A small deterministic generator for the interleaving tests.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// `repeat` samples of `cases` cases on providers p1 and p2, in plan order (case, sample,
/// provider), with mixed outcomes, tags and latencies.
fn plan(cases: usize, repeat: u32, rng: &mut Lcg) -> Vec<ResultRecord> {
    use CaseStatus::{Error as E, Failed as F, Passed as P, Unscorable as U};
    let mut out = Vec::new();
    for c in 0..cases {
        let tags: Vec<String> = ["x", "y", "z"]
            .iter()
            .filter(|_| rng.next(2) == 0)
            .map(|t| (*t).to_owned())
            .collect();
        for sample in 0..repeat {
            for provider in ["p2", "p1"] {
                let status = [P, P, P, F, F, E, U][rng.next(7)];
                let mut r = rec(provider, &format!("case-{c:03}"), status);
                r.job.sample = sample;
                r.tags.clone_from(&tags);
                r.latency_ms = Some(rng.next(1000) as f64 / 3.0);
                out.push(r);
            }
        }
    }
    out
}

/// Results in the order they finish: the plan shuffled within windows of `window`, so that
/// samples of neighbouring cases interleave.
fn interleave(mut rs: Vec<ResultRecord>, window: usize, rng: &mut Lcg) -> Vec<ResultRecord> {
    for chunk in rs.chunks_mut(window) {
        for i in (1..chunk.len()).rev() {
            chunk.swap(i, rng.next(i + 1));
        }
    }
    rs
}

/// The rows of a run fed `rs`, with `expect` samples announced (None: not announced).
fn rows_of(
    rs: &[ResultRecord],
    expect: Option<u32>,
    policies: &[(&str, RepeatPolicy)],
) -> Vec<crate::model::ProviderMetrics> {
    let mut acc = RunAccumulator::with_policies(RepeatPolicy::Majority, policies.iter().copied());
    if let Some(n) = expect {
        acc.expect_samples(n);
    }
    for r in rs {
        acc.add(r);
    }
    acc.finish(Some(2.0))
}

/// Every row equals the metrics computed from scratch over its results (the verdict list on
/// overall rows only), to the bit: counts, rates, agreement (summed in case order), flaky
/// cases, verdicts.
fn assert_rows_match(
    rows: &[crate::model::ProviderMetrics],
    rs: &[ResultRecord],
    policies: &[(&str, RepeatPolicy)],
) {
    let mut keys = Vec::new();
    for r in rs {
        keys.push((r.job.provider_id.clone(), None));
        for t in &r.tags {
            keys.push((r.job.provider_id.clone(), Some(t.clone())));
        }
    }
    keys.sort();
    keys.dedup();
    let got: Vec<(String, Option<String>)> = rows
        .iter()
        .map(|r| (r.provider.clone(), r.tag.clone()))
        .collect();
    assert_eq!(got, keys);
    for row in rows {
        let slice: Vec<ResultRecord> = rs
            .iter()
            .filter(|r| {
                r.job.provider_id == row.provider
                    && row
                        .tag
                        .as_ref()
                        .is_none_or(|t| r.tags.iter().any(|x| x == t))
            })
            .cloned()
            .collect();
        let mut expected = compute_with(&slice, Some(2.0), RepeatPolicy::Majority);
        // `compute_with` knows one policy: redo the verdicts of the cases with their own.
        let mut acc =
            RunAccumulator::with_policies(RepeatPolicy::Majority, policies.iter().copied());
        for r in &slice {
            let mut r = r.clone();
            r.tags.clear();
            acc.add(&r);
        }
        let own = acc.finish(Some(2.0)).remove(0).metrics;
        expected.case_verdicts = own.case_verdicts;
        expected.case_pass_rate = own.case_pass_rate;
        if row.tag.is_some() {
            expected.case_verdicts.clear();
        }
        assert_eq!(row.metrics, expected, "{} {:?}", row.provider, row.tag);
    }
}

#[test]
fn verdicts_decided_as_samples_complete_match_those_decided_at_the_end() {
    let mut rng = Lcg(7);
    let policies = [
        ("case-003", RepeatPolicy::Any),
        ("case-010", RepeatPolicy::All),
    ];
    for (repeat, window) in [(1, 1), (1, 9), (3, 1), (3, 7), (3, 150), (5, 40)] {
        let rs = interleave(plan(30, repeat, &mut rng), window, &mut rng);
        let late = rows_of(&rs, None, &policies);
        let early = rows_of(&rs, Some(repeat), &policies);
        assert_eq!(early, late, "repeat {repeat}, window {window}");
        assert_rows_match(&early, &rs, &policies);
        // Interrupted: the cases started last have only some of their samples.
        let cut = &rs[..rs.len() * 2 / 3];
        let early_cut = rows_of(cut, Some(repeat), &policies);
        assert_eq!(early_cut, rows_of(cut, None, &policies));
        assert_rows_match(&early_cut, cut, &policies);
        let overall = &early[0].metrics;
        if repeat > 1 {
            // Two providers' verdicts are listed on their own rows: 30 cases each.
            assert_eq!(overall.case_verdicts.len(), 30);
            assert!(overall.agreement.is_some());
            assert!(!overall.flaky_cases.is_empty());
            assert_eq!(overall.repeat_policy, Some(RepeatPolicy::Majority));
        } else {
            assert!(overall.case_verdicts.is_empty());
            assert_eq!(overall.agreement, None);
            assert_eq!(overall.repeat_policy, None);
        }
    }
}

#[test]
fn case_policies_added_as_cases_stream_in() {
    let mut rng = Lcg(11);
    let rs = interleave(plan(20, 3, &mut rng), 6, &mut rng);
    let own = [
        ("case-001", RepeatPolicy::Any),
        ("case-004", RepeatPolicy::All),
        ("case-009", RepeatPolicy::MinRate(0.3)),
        // The suite's policy: not an override.
        ("case-012", RepeatPolicy::Majority),
    ];
    let mut acc = RunAccumulator::with_policies(RepeatPolicy::Majority, []);
    acc.expect_samples(3);
    for r in &rs {
        // A case registers before its first result.
        if r.job.sample == 0
            && let Some((id, p)) = own.iter().find(|(id, _)| *id == r.job.case_id)
        {
            acc.add_policy(id, *p);
        }
        acc.add(r);
    }
    let streamed = acc.finish(Some(2.0));
    assert_eq!(streamed, rows_of(&rs, None, &own));
    assert_rows_match(&streamed, &rs, &own);
    let policy_of = |id: &str| {
        streamed[0]
            .metrics
            .case_verdicts
            .iter()
            .find(|v| v.case_id == id)
            .unwrap()
            .policy
    };
    assert_eq!(policy_of("case-001"), RepeatPolicy::Any);
    assert_eq!(policy_of("case-009"), RepeatPolicy::MinRate(0.3));
    assert_eq!(policy_of("case-012"), RepeatPolicy::Majority);
    assert_eq!(policy_of("case-013"), RepeatPolicy::Majority);
}

#[test]
fn a_resumed_run_feeds_stored_results_then_new_ones() {
    let mut rng = Lcg(3);
    let policies = [("case-002", RepeatPolicy::Any)];
    // Interrupted after 100 of 180 results: some cases complete, one partly, the rest not
    // started. Stored results come back in plan order, then the rest run out of order.
    let all = plan(30, 3, &mut rng);
    let (stored, rest) = all.split_at(100);
    let mut fed = stored.to_vec();
    fed.extend(interleave(rest.to_vec(), 8, &mut rng));
    let rows = rows_of(&fed, Some(3), &policies);
    assert_eq!(rows, rows_of(&fed, None, &policies));
    assert_rows_match(&rows, &fed, &policies);
    // Announcing the samples after the stored results decides the complete cases then.
    let mut acc = RunAccumulator::with_policies(RepeatPolicy::Majority, policies);
    for r in stored {
        acc.add(r);
    }
    acc.expect_samples(3);
    for r in &fed[stored.len()..] {
        acc.add(r);
    }
    assert_eq!(acc.finish(Some(2.0)), rows);

    // A run of single samples resumed with `--repeat 3`: the stored sample 0 of every case
    // waits for samples 1 and 2.
    let single: Vec<ResultRecord> = all.iter().filter(|r| r.job.sample == 0).cloned().collect();
    let mut fed = single.clone();
    fed.extend(interleave(
        all.iter().filter(|r| r.job.sample > 0).cloned().collect(),
        10,
        &mut rng,
    ));
    let rows = rows_of(&fed, Some(3), &policies);
    assert_eq!(rows, rows_of(&fed, None, &policies));
    assert_eq!(rows[0].metrics.case_verdicts.len(), 30);

    // Resumed with a smaller `--repeat`: announcing the highest stored sample + 1 (3, not 1)
    // keeps the stored samples of each case together.
    let mut fed = stored.to_vec();
    fed.extend(
        rest.iter()
            .filter(|r| r.job.sample == 0)
            .cloned()
            .collect::<Vec<_>>(),
    );
    let rows = rows_of(&fed, Some(3), &policies);
    assert_eq!(rows, rows_of(&fed, None, &policies));
    assert_rows_match(&rows, &fed, &policies);
}

#[test]
fn cases_incomplete_at_finish_are_decided_on_the_samples_in() {
    use CaseStatus::{Failed as F, Passed as P};
    // `repeat: 3`, interrupted: `b` has two samples, `c` one; `a` is complete.
    let rs = samples(&[("a", &[P, F, F]), ("b", &[P, F]), ("c", &[F])]);
    let mut acc = RunAccumulator::with_policies(RepeatPolicy::Majority, []);
    acc.expect_samples(3);
    for r in &rs {
        acc.add(r);
    }
    let rows = acc.finish(None);
    let m = &rows[0].metrics;
    let got: Vec<(&str, u64, CaseStatus, bool)> = m
        .case_verdicts
        .iter()
        .map(|v| (v.case_id.as_str(), v.samples, v.verdict, v.flaky))
        .collect();
    assert_eq!(
        got,
        vec![("a", 3, F, true), ("b", 2, F, true), ("c", 1, F, false)],
        "a tie (b: 1 of 2) is not a majority"
    );
    assert_eq!(m.case_pass_rate, Some(0.0));
    assert_eq!(m.flaky_cases, vec!["a", "b"]);
    // Pairs with two scored samples: a (2 of 3) and b (1 of 2).
    assert!(close(m.agreement, f64::midpoint(2.0 / 3.0, 0.5)));
    assert_eq!(*m, compute_with(&rs, None, RepeatPolicy::Majority));

    // Interrupted after the first sample of every case: nothing is repeated.
    let firsts: Vec<ResultRecord> = rs.iter().filter(|r| r.job.sample == 0).cloned().collect();
    let mut acc = RunAccumulator::with_policies(RepeatPolicy::Majority, []);
    acc.expect_samples(3);
    for r in &firsts {
        acc.add(r);
    }
    let m = acc.finish(None).remove(0).metrics;
    assert!(m.case_verdicts.is_empty());
    assert_eq!(m.repeat_policy, None);
    assert_eq!(m.case_pass_rate, Some(2.0 / 3.0));
}

#[test]
fn a_tag_that_some_samples_lack_is_decided_at_finish() {
    use CaseStatus::{Failed as F, Passed as P};
    // The suite changed between a run and its resumption: case `b` lost tag `t` after two
    // samples, so its `t` pair has two samples of three.
    let mut rs = samples(&[("a", &[P, F, F]), ("b", &[P, P, F]), ("c", &[F, F, P])]);
    for r in &mut rs {
        if !(r.job.case_id == "b" && r.job.sample == 2) {
            r.tags = vec!["t".into()];
        }
    }
    // Out of order, so that `t`'s agreement sums pairs decided early and late.
    rs.swap(1, 7);
    let rows = rows_of(&rs, Some(3), &[]);
    assert_eq!(rows, rows_of(&rs, None, &[]));
    assert_rows_match(&rows, &rs, &[]);
    let t = &rows[1].metrics;
    assert_eq!(t.flaky_cases, vec!["a", "c"]);
    assert!(close(t.agreement, (2.0 / 3.0 + 1.0 + 2.0 / 3.0) / 3.0));
}
