use super::*;
use crate::model::{AssertionOutcome, Job};
use serde_json::json;

fn rec(outcomes: Vec<AssertionOutcome>) -> ResultRecord {
    ResultRecord {
        assertions: outcomes,
        ..ResultRecord::new(Job::of("c", "p", 0), CaseStatus::Passed)
    }
}

fn o(kind: &str, pass: bool, details: Value) -> AssertionOutcome {
    AssertionOutcome {
        type_name: kind.into(),
        pass,
        score: 0.0,
        reason: String::new(),
        details,
        weight: 1.0,
        metric: None,
        unscorable: false,
    }
}

#[test]
fn factuality_and_judged_hallucination_feed_the_rates() {
    let mut acc = Acc::default();
    let names = Interner::default();
    let policies = Policies::default();
    let env = Env {
        expect: None,
        policies: &policies,
        providers: &names,
    };
    for r in [
        rec(vec![o("factuality", true, json!({"category": "superset"}))]),
        rec(vec![o(
            "factuality",
            false,
            json!({"category": "contradiction"}),
        )]),
        rec(vec![o("factuality", true, json!({"category": "same"}))]),
        // A passing check with flagged spans under its max is not a hallucination.
        rec(vec![o(
            "hallucination",
            true,
            json!({"unsupported": [{"text": "x"}]}),
        )]),
        rec(vec![o(
            "hallucination",
            false,
            json!({"category": "contradiction", "contradictions": [{"text": "y"}], "unsupported": []}),
        )]),
    ] {
        acc.add(&r, 0, &env, None);
    }
    let (m, _) = acc.finish(None, &env, None);
    assert_eq!(m.hallucination_rate, Some(3.0 / 5.0));
    assert_eq!((m.hallucinated, m.hallucination_checked), (3, 5));
    assert_eq!(m.contradiction_rate, Some(2.0 / 5.0));
    assert_eq!(m.unsupported_rate, Some(1.0 / 5.0));
}

fn pending(acc: &Acc) -> usize {
    acc.verdicts.pending.iter().map(|(_, m)| m.len()).sum()
}

#[test]
fn only_incomplete_cases_keep_state() {
    let names = Interner::default();
    let policies = Policies::default();
    let sample = |case: &str, i: u32, status| {
        let mut r = ResultRecord::new(Job::of(case, "p", i), status);
        r.latency_ms = Some(1.0);
        r
    };
    // One sample each: nothing per case, not even listed.
    let env = Env {
        expect: Some(1),
        policies: &policies,
        providers: &names,
    };
    let mut acc = Acc::listing();
    for i in 0..100 {
        acc.add(
            &sample(&format!("c{i}"), 0, CaseStatus::Passed),
            0,
            &env,
            None,
        );
        assert_eq!(pending(&acc), 0);
    }
    assert!(acc.verdicts.listed.is_empty());
    let (m, _) = acc.finish(None, &env, None);
    assert_eq!((m.case_pass_rate, m.cases), (Some(1.0), 100));

    // Three samples, interleaved two cases at a time: two cases wait at most; a tag
    // group keeps no list, only the positions of the pairs it averages.
    let env = Env {
        expect: Some(3),
        ..env
    };
    let (mut all, mut tag) = (Acc::listing(), Acc::default());
    for pair in 0..50 {
        for i in 0..3 {
            for case in [format!("c{}", 2 * pair), format!("c{}", 2 * pair + 1)] {
                let status = if i == 1 {
                    CaseStatus::Failed
                } else {
                    CaseStatus::Passed
                };
                let r = sample(&case, i, status);
                let at = all.add(&r, 0, &env, None);
                tag.add(&r, 0, &env, at);
                assert!(pending(&all) <= 2 && pending(&tag) <= 2);
            }
        }
    }
    assert_eq!((pending(&all), pending(&tag)), (0, 0));
    assert_eq!(all.verdicts.listed.len(), 100);
    assert!(tag.verdicts.listed.is_empty() && tag.verdicts.agree_named.is_empty());
    assert_eq!(tag.verdicts.agree_at.len(), 100);
    let (m, rank) = all.finish(None, &env, None);
    let peer = Peer {
        verdicts: &m.case_verdicts,
        rank: &rank,
        index: None,
    };
    let (t, _) = tag.finish(None, &env, Some(&peer));
    assert_eq!(t.agreement, m.agreement);
    assert_eq!(t.flaky_cases.len(), 100);
    assert!(t.case_verdicts.is_empty());
}
