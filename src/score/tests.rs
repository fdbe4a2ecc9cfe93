//! Scorer tests: every assertion type through `Scorer`, negation, normalisation, weights,
//! thresholds and the unscorable paths.

use serde_json::json;

use super::testutil::{assertion, case, contains, suite, with_normalize, with_weight};
use super::{ScoreError, ScoreInput, Scorer};
use crate::model::{
    Assertion, Case, CaseStatus, Check, LengthUnit, Normalize, Score, SimilarityAlgo, Tolerance,
};

fn input(output: &str) -> ScoreInput<'_> {
    ScoreInput {
        output,
        prompt: "prompt",
        latency_ms: Some(100.0),
        cost_usd: Some(0.001),
    }
}

fn score_with(c: &Case, inp: &ScoreInput<'_>) -> Score {
    let s = suite(vec![c.clone()]);
    let scorer = Scorer::new(&s).unwrap();
    scorer.score(0, c, inp)
}

fn run(a: Assertion, output: &str) -> Score {
    score_with(&case("c", vec![a]), &input(output))
}

/// Pass/fail of a single assertion on an output.
fn passes(a: Assertion, output: &str) -> bool {
    let s = run(a, output);
    assert_eq!(s.assertions.len(), 1);
    let o = &s.assertions[0];
    assert!(!o.unscorable, "unexpectedly unscorable: {}", o.reason);
    assert_eq!(s.status == CaseStatus::Passed, o.pass);
    o.pass
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn every_type_positive_and_negative() {
    let cases: Vec<(Check, &str, &str)> = vec![
        (
            Check::Equals {
                value: "yes".into(),
            },
            "yes",
            "yes!",
        ),
        (contains("30 days"), "within 30 days", "within 30 Days"),
        (
            Check::IContains {
                value: "30 DAYS".into(),
            },
            "within 30 days",
            "within 31 days",
        ),
        (
            Check::ContainsAny {
                values: strings(&["a1", "b2"]),
            },
            "x b2",
            "x c3",
        ),
        (
            Check::ContainsAll {
                values: strings(&["a1", "b2"]),
            },
            "a1 b2",
            "a1 only",
        ),
        (
            Check::IContainsAny {
                values: strings(&["RED", "Blue"]),
            },
            "a blue car",
            "a green car",
        ),
        (
            Check::IContainsAll {
                values: strings(&["RED", "Blue"]),
            },
            "Red and BLUE",
            "red only",
        ),
        (
            Check::StartsWith {
                value: "Yes".into(),
            },
            "Yes, sure",
            "No, sorry",
        ),
        (
            Check::EndsWith {
                value: "done".into(),
            },
            "all done",
            "done yet?",
        ),
        (
            Check::Regex {
                pattern: r"^\d{4}$".into(),
            },
            "2024",
            "year 2024",
        ),
        (Check::IsJson { schema: None }, "{\"a\": 1}", "{a: 1}"),
        (
            Check::JsonPath {
                path: "$.a[1]".into(),
                value: Some(json!(2)),
            },
            "{\"a\": [1, 2]}",
            "{\"a\": [1, 3]}",
        ),
        (
            Check::JsonPath {
                path: "/a".into(),
                value: None,
            },
            "{\"a\": null}",
            "{\"b\": 1}",
        ),
        (
            Check::Numeric {
                value: 1234.5,
                pattern: None,
                tolerance: Tolerance::Absolute(0.01),
            },
            "Total: $1,234.50",
            "Total: $1,334.50",
        ),
        (
            Check::Similarity {
                algorithm: SimilarityAlgo::JaroWinkler,
                value: "martha".into(),
                threshold: 0.9,
            },
            "marhta",
            "xyz",
        ),
        (
            Check::Levenshtein {
                value: "kitten".into(),
                max_distance: 1,
            },
            "kitten!",
            "sitting",
        ),
        (
            Check::Length {
                min: Some(2),
                max: Some(3),
                unit: LengthUnit::Words,
            },
            "two words",
            "one",
        ),
        (Check::Latency { max_ms: 150.0 }, "x", "x"),
        (Check::IsRefusal, "I'm sorry, but I can't.", "Sure."),
        (
            Check::Classification {
                labels: strings(&["spam", "ham"]),
                value: "spam".into(),
            },
            "spam",
            "ham",
        ),
    ];
    for (check, good, bad) in cases {
        let name = format!("{check:?}");
        assert!(
            passes(assertion("t", check.clone()), good),
            "{name} should pass on {good:?}"
        );
        if matches!(check, Check::Latency { .. }) {
            let c = case("c", vec![assertion("latency", check)]);
            let mut slow = input(bad);
            slow.latency_ms = Some(500.0);
            assert_eq!(score_with(&c, &slow).status, CaseStatus::Failed);
            continue;
        }
        assert!(
            !passes(assertion("t", check), bad),
            "{name} should fail on {bad:?}"
        );
    }
}

#[test]
fn cost_check_both_ways_and_unknown() {
    let c = case("c", vec![assertion("cost", Check::Cost { max_usd: 0.01 })]);
    assert_eq!(score_with(&c, &input("x")).status, CaseStatus::Passed);
    let mut dear = input("x");
    dear.cost_usd = Some(0.5);
    assert_eq!(score_with(&c, &dear).status, CaseStatus::Failed);
    let mut unknown = input("x");
    unknown.cost_usd = None;
    let s = score_with(&c, &unknown);
    assert_eq!(s.status, CaseStatus::Unscorable);
    assert_eq!(s.score, None);
    assert_eq!(
        s.assertions[0].reason,
        "no cost known: set `pricing` on the provider"
    );
    assert!(s.assertions[0].unscorable);
}

#[test]
fn latency_unknown_is_unscorable() {
    let c = case(
        "c",
        vec![assertion("latency", Check::Latency { max_ms: 10.0 })],
    );
    let mut i = input("x");
    i.latency_ms = None;
    assert_eq!(score_with(&c, &i).status, CaseStatus::Unscorable);
}

#[test]
fn negation_flips_pass_score_and_reason() {
    let s = run(
        assertion("not-contains", contains("refund")),
        "no money back",
    );
    let o = &s.assertions[0];
    assert!(o.pass);
    assert!((o.score - 1.0).abs() < f64::EPSILON);
    assert_eq!(o.reason, "negated: output does not contain \"refund\"");
    assert_eq!(o.type_name, "not-contains");
    assert_eq!(s.status, CaseStatus::Passed);

    let s = run(assertion("not-contains", contains("refund")), "a refund");
    assert!(!s.assertions[0].pass);
    assert_eq!(s.status, CaseStatus::Failed);

    // Graded scores are complemented.
    let s = run(
        assertion(
            "not-icontains-all",
            Check::IContainsAll {
                values: strings(&["a", "b", "c", "d"]),
            },
        ),
        "a b c",
    );
    assert!((s.assertions[0].score - 0.25).abs() < 1e-12);
    assert!(s.assertions[0].pass);
    assert!(passes(
        assertion("not-is-refusal", Check::IsRefusal),
        "Sure, here it is."
    ));
    assert!(!passes(
        assertion("not-is-json", Check::IsJson { schema: None }),
        "[]"
    ));
}

#[test]
fn negation_keeps_unscorable() {
    let c = case(
        "c",
        vec![assertion("not-cost", Check::Cost { max_usd: 1.0 })],
    );
    let mut i = input("x");
    i.cost_usd = None;
    let s = score_with(&c, &i);
    assert!(s.assertions[0].unscorable);
    assert!(!s.assertions[0].pass);
    assert_eq!(s.status, CaseStatus::Unscorable);
}

#[test]
fn normalize_applies_to_output_and_value() {
    let eq = |n: &[Normalize]| {
        with_normalize(
            assertion(
                "equals",
                Check::Equals {
                    value: "Hello, World".into(),
                },
            ),
            n,
        )
    };
    let out = "  hello   world! ";
    assert!(!passes(eq(&[]), out));
    assert!(!passes(eq(&[Normalize::Lowercase, Normalize::Trim]), out));
    assert!(passes(
        eq(&[
            Normalize::Lowercase,
            Normalize::Trim,
            Normalize::CollapseWhitespace,
            Normalize::StripPunctuation
        ]),
        out
    ));
    let sw = with_normalize(
        assertion(
            "starts-with",
            Check::StartsWith {
                value: "yes".into(),
            },
        ),
        &[Normalize::Trim, Normalize::Lowercase],
    );
    assert!(passes(sw, "  YES, of course"));
    // json-path compares string values normalised.
    let jp = with_normalize(
        assertion(
            "json-path",
            Check::JsonPath {
                path: "$.city".into(),
                value: Some(json!("paris")),
            },
        ),
        &[Normalize::Lowercase],
    );
    assert!(passes(jp, "{\"city\": \"Paris\"}"));
    // Numbers are read from the raw output: strip_punctuation does not break them.
    let num = with_normalize(
        assertion(
            "numeric",
            Check::Numeric {
                value: 1234.5,
                pattern: None,
                tolerance: Tolerance::Absolute(0.0),
            },
        ),
        &[Normalize::StripPunctuation],
    );
    assert!(passes(num, "1,234.5"));
}

#[test]
fn weights_metric_and_case_threshold() {
    let mut a = with_weight(assertion("contains", contains("alpha")), 3.0);
    a.metric = Some("accuracy".into());
    let b = assertion("contains", contains("beta"));
    let mut c = case("c", vec![a, b]);
    let s = score_with(&c, &input("alpha only"));
    assert_eq!(s.status, CaseStatus::Failed);
    assert!((s.score.unwrap() - 0.75).abs() < 1e-12);
    assert_eq!(s.assertions[0].metric.as_deref(), Some("accuracy"));
    assert!((s.assertions[0].weight - 3.0).abs() < f64::EPSILON);

    c.threshold = Some(0.7);
    assert_eq!(
        score_with(&c, &input("alpha only")).status,
        CaseStatus::Passed
    );
    c.threshold = Some(0.8);
    assert_eq!(
        score_with(&c, &input("alpha only")).status,
        CaseStatus::Failed
    );
}

#[test]
fn weight_zero_is_informative() {
    let c = case(
        "c",
        vec![
            assertion("contains", contains("a")),
            with_weight(assertion("contains", contains("zzz")), 0.0),
        ],
    );
    let s = score_with(&c, &input("a"));
    assert_eq!(s.status, CaseStatus::Passed);
    assert_eq!(s.score, Some(1.0));
    assert!(!s.assertions[1].pass);
}

#[test]
fn model_assisted_unscorable_but_threshold_decides() {
    let model = assertion(
        "llm-rubric",
        Check::Model {
            kind: "llm-rubric".into(),
            params: serde_json::Map::new(),
        },
    );
    let mut c = case("c", vec![assertion("contains", contains("a")), model]);
    let s = score_with(&c, &input("a"));
    assert_eq!(s.status, CaseStatus::Unscorable);
    assert!(s.assertions[1].unscorable);
    assert_eq!(s.score, Some(1.0));
    c.threshold = Some(0.5);
    assert_eq!(score_with(&c, &input("a")).status, CaseStatus::Passed);
}

#[test]
fn classification_fills_label() {
    let c = case(
        "c",
        vec![assertion(
            "classification",
            Check::Classification {
                labels: strings(&["spam", "ham"]),
                value: "ham".into(),
            },
        )],
    );
    let s = score_with(&c, &input("This is spam."));
    assert_eq!(s.status, CaseStatus::Failed);
    let label = s.label.unwrap();
    assert_eq!(label.expected, "ham");
    assert_eq!(label.predicted.as_deref(), Some("spam"));
    // No label on a case without a classification assertion.
    assert_eq!(run(assertion("contains", contains("x")), "x").label, None);
}

#[test]
fn a_case_with_no_assertion_is_unscorable() {
    // The loader gives a case written without `assert` its default rule; a case that still
    // has no assertion has nothing to check, even with an `expected`.
    let mut bare = case("c", Vec::new());
    bare.expected = Some("x".into());
    let s = score_with(&bare, &input("x"));
    assert_eq!(s.status, CaseStatus::Unscorable);
    assert!(s.assertions.is_empty());
}

#[test]
fn schema_compiled_once_and_checked() {
    let schema = json!({"type": "object", "required": ["id"]});
    let a = assertion(
        "is-json",
        Check::IsJson {
            schema: Some(schema),
        },
    );
    assert!(passes(a.clone(), "```json\n{\"id\": 1}\n```"));
    assert!(!passes(a, "{\"name\": 1}"));
}

#[test]
fn invalid_assertions_fail_to_build() {
    let bad = [
        Check::Regex {
            pattern: "(".into(),
        },
        Check::IsJson {
            schema: Some(json!({"type": 12})),
        },
        Check::JsonPath {
            path: "$.a[*]".into(),
            value: None,
        },
        Check::Numeric {
            value: 1.0,
            pattern: Some("[".into()),
            tolerance: Tolerance::Absolute(0.0),
        },
    ];
    for check in bad {
        let s = suite(vec![
            case("ok", vec![]),
            case(
                "bad",
                vec![
                    assertion("contains", contains("x")),
                    assertion("t", check.clone()),
                ],
            ),
        ]);
        match Scorer::new(&s) {
            Err(ScoreError::Assertion {
                case_id,
                index,
                message,
            }) => {
                assert_eq!(case_id, "bad");
                assert_eq!(index, 1);
                assert!(!message.is_empty());
            }
            Ok(_) => panic!("{check:?} should not build"),
        }
    }
}

#[test]
fn unknown_case_is_prepared_on_the_fly() {
    let s = suite(vec![case("a", vec![assertion("contains", contains("x"))])]);
    let scorer = Scorer::new(&s).unwrap();
    let other = case(
        "b",
        vec![assertion(
            "regex",
            Check::Regex {
                pattern: "^y+$".into(),
            },
        )],
    );
    assert_eq!(
        scorer.score(0, &other, &input("yyy")).status,
        CaseStatus::Passed
    );
    assert_eq!(
        scorer.score(7, &other, &input("x")).status,
        CaseStatus::Failed
    );
    // An assertion that cannot be built is unscorable, not a panic.
    let broken = case(
        "z",
        vec![assertion(
            "regex",
            Check::Regex {
                pattern: "(".into(),
            },
        )],
    );
    let out = scorer.score(0, &broken, &input("x"));
    assert_eq!(out.status, CaseStatus::Unscorable);
    assert!(out.assertions[0].reason.contains("invalid regex"));
}

#[test]
fn shared_normalisation_slots() {
    // Several assertions with different normalisations on one case each see their own view.
    let c = case(
        "c",
        vec![
            assertion("contains", contains("Hello")),
            with_normalize(
                assertion("contains", contains("hello")),
                &[Normalize::Lowercase],
            ),
            assertion(
                "icontains",
                Check::IContains {
                    value: "HELLO".into(),
                },
            ),
            with_normalize(
                assertion(
                    "equals",
                    Check::Equals {
                        value: "hello world".into(),
                    },
                ),
                &[Normalize::Lowercase, Normalize::StripPunctuation],
            ),
        ],
    );
    let s = score_with(&c, &input("Hello, world"));
    assert!(s.assertions.iter().all(|o| o.pass), "{:?}", s.assertions);
}

#[test]
fn scorer_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Scorer>();
}

#[test]
fn classification_with_mismatched_keys_does_not_panic() {
    let labels = strings(&["a", "b"]);
    let (v, pair) =
        super::misc::classification("a", &labels, "a", &strings(&["a", "b", "c", "d", "e"]));
    assert!(!v.unscorable);
    assert_eq!(pair.predicted.as_deref(), Some("a"));
}

#[test]
fn odd_outputs_never_panic_and_scores_stay_in_range() {
    let checks = vec![
        Check::Equals { value: "é".into() },
        Check::ContainsAll {
            values: strings(&["ü", ""]),
        },
        Check::IContainsAny {
            values: strings(&["ß"]),
        },
        Check::StartsWith {
            value: "日本".into(),
        },
        Check::EndsWith {
            value: "語".into()
        },
        Check::Regex {
            pattern: r"\p{Han}+".into(),
        },
        Check::IsJson {
            schema: Some(json!({"type": "array"})),
        },
        Check::JsonPath {
            path: "$[-1]".into(),
            value: Some(json!("1")),
        },
        Check::Numeric {
            value: 0.0,
            pattern: Some(r"(\d*)".into()),
            tolerance: Tolerance::Relative(0.1),
        },
        Check::Numeric {
            value: 1e300,
            pattern: None,
            tolerance: Tolerance::Absolute(1.0),
        },
        Check::Similarity {
            algorithm: SimilarityAlgo::Damerau,
            value: "x".into(),
            threshold: 0.5,
        },
        Check::Similarity {
            algorithm: SimilarityAlgo::SorensenDice,
            value: String::new(),
            threshold: 0.5,
        },
        Check::Levenshtein {
            value: "日本語".into(),
            max_distance: 0,
        },
        Check::Length {
            min: Some(1),
            max: None,
            unit: LengthUnit::Chars,
        },
        Check::IsRefusal,
        Check::Classification {
            labels: strings(&["日本", "x"]),
            value: "x".into(),
        },
    ];
    let outputs = [
        "",
        " ",
        "```json\n",
        "```json\n[1, \"2\"]\n```",
        "日本語 ü ß é",
        "1e999 and -1e999",
        "$,,,1,,2..3%%",
        "\u{2212}\u{2212}5",
        "{\"a\": [",
        "[\"1\"]",
    ];
    for check in &checks {
        for negate in [false, true] {
            let name = if negate { "not-t" } else { "t" };
            let c = case("c", vec![assertion(name, check.clone())]);
            for out in outputs {
                let s = score_with(&c, &input(out));
                let o = &s.assertions[0];
                assert!(
                    (0.0..=1.0).contains(&o.score),
                    "{check:?} on {out:?}: {}",
                    o.score
                );
                assert!(!o.reason.is_empty());
                if let Some(score) = s.score {
                    assert!((0.0..=1.0).contains(&score));
                }
            }
        }
    }
}

#[test]
fn shared_assertions_are_prepared_once() {
    let shared = std::sync::Arc::new(with_normalize(
        assertion("contains", contains("HI")),
        &[Normalize::Lowercase],
    ));
    let mut a = case("a", vec![]);
    a.asserts = vec![std::sync::Arc::clone(&shared)];
    let mut b = case("b", vec![assertion("contains", contains("there"))]);
    b.asserts.insert(0, std::sync::Arc::clone(&shared));
    let s = suite(vec![a.clone(), b.clone()]);
    let scorer = Scorer::new(&s).unwrap();
    // One preparation for the shared assertion, one for b's own.
    assert_eq!(scorer.prepared.len(), 2);
    assert_eq!(
        scorer.score(0, &a, &input("Hi you")).status,
        CaseStatus::Passed
    );
    assert_eq!(
        scorer.score(1, &b, &input("hi you")).status,
        CaseStatus::Failed
    );
    assert_eq!(
        scorer.score(1, &b, &input("hi there")).status,
        CaseStatus::Passed
    );
}
