use serde_json::json;

use super::*;

fn parse(v: &Value) -> Result<Rule, String> {
    parse_rule(v, &BTreeSet::from(["tone".to_owned()]))
}

#[test]
fn spec_examples_parse() {
    let r = parse(&json!({"metric": "pass_rate", "drop": 0.05, "baseline": "trailing:7", "severity": "critical"})).unwrap();
    assert_eq!(r.condition, Condition::Drop(0.05));
    assert_eq!(r.baseline, BaselineKind::Trailing(7));
    assert_eq!(r.severity, Severity::Critical);
    assert_eq!(r.alpha, DEFAULT_ALPHA);
    assert_eq!(r.name, "pass_rate drop 0.05 vs trailing:7");
    let r =
        parse(&json!({"metric": "latency_p95_ms", "ratio": 3.0, "severity": "warning"})).unwrap();
    assert_eq!(r.baseline, BaselineKind::Previous);
    assert_eq!(r.condition, Condition::Ratio(3.0));
    let r =
        parse(&json!({"metric": "missed_run", "after": "26h", "severity": "critical"})).unwrap();
    assert_eq!(
        r.condition,
        Condition::After(Duration::from_secs(26 * 3600))
    );
    assert_eq!(r.name, "missed_run after 26h");
    let r =
        parse(&json!({"metric": "tone", "min": 0.5, "tag": "billing", "runbook": "https://x/rb"}))
            .unwrap();
    assert_eq!(r.tag.as_deref(), Some("billing"));
    assert_eq!(r.severity, Severity::Warning);
    assert_eq!(r.name, "tone min 0.5 [tag billing]");
    let r = parse(&json!({"metric": "latency_p95_ms", "ratio": 1.5, "test": "ks", "alpha": 0.05}))
        .unwrap();
    assert_eq!(r.test, TestKind::Ks);
    assert_eq!(r.alpha, 0.05);
}

#[test]
fn bad_rules_say_why() {
    let cases = [
        (json!({"metric": "pass_rate"}), "needs one of"),
        (
            json!({"metric": "pass_rate", "drop": 0.1, "rise": 0.1}),
            "one rule per condition",
        ),
        (
            json!({"metric": "pass_rte", "drop": 0.1}),
            "did you mean `pass_rate`",
        ),
        (
            json!({"metric": "pass_rate", "drp": 0.1}),
            "unknown key `drp`",
        ),
        (
            json!({"metric": "pass_rate", "drop": 0.1, "baseline": "trailing:0"}),
            "must hold 1 to 100 runs, found 0",
        ),
        (
            json!({"metric": "pass_rate", "drop": 0.1, "baseline": "last"}),
            "unknown baseline `last`",
        ),
        (
            json!({"metric": "pass_rate", "drop": 0.1, "severity": "high"}),
            "unknown severity `high`; use `info`, `warning` or `critical`",
        ),
        (json!({"metric": "pass_rate", "drop": -0.1}), "zero or more"),
        (
            json!({"metric": "pass_rate", "drop": "5%"}),
            "must be a number",
        ),
        (
            json!({"metric": "pass_rate", "drop": 0.1, "alpha": 2}),
            "between 0 and 1",
        ),
        (json!({"metric": "latency_p95_ms", "ratio": 1}), "not 1"),
        (json!({"metric": "missed_run", "after": "soon"}), "duration"),
        (json!({"metric": "missed_run", "max": 3}), "takes `after`"),
        (
            json!({"metric": "pass_rate", "after": "1h"}),
            "only applies to",
        ),
        (
            json!({"metric": "pass_rate", "drop": 0.1, "test": "ks"}),
            "`test: ks`",
        ),
        (
            json!({"metric": "pass_rate", "drop": 0.1, "test": "t"}),
            "`test` must be",
        ),
        (
            json!({"metric": "pass_rate", "min": 0.9, "baseline": "previous"}),
            "no effect",
        ),
        (json!(["metric"]), "must be a mapping"),
        (json!({"drop": 0.1}), "needs a `metric`"),
    ];
    for (raw, want) in cases {
        let err = parse(&raw).expect_err(&raw.to_string());
        assert!(err.contains(want), "{raw}: {err}");
    }
}

#[test]
fn problems_name_their_key_and_suggest_a_fix() {
    let judge =
        |v: Value| judge_rule(&v, MetricScope::Suite(&BTreeSet::new())).expect_err(&v.to_string());
    let p = judge(json!({"metrc": "pass_rate", "drop": 0.1}));
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].key.as_deref(), Some("metrc"));
    assert!(p[0].on_key);
    assert!(p[0].message.contains("did you mean `metric`?"), "{p:?}");
    let p = judge(json!({"metric": "pass_rate", "drop": 0.1, "severity": "critcal"}));
    assert_eq!(p[0].key.as_deref(), Some("severity"));
    assert!(p[0].message.contains("did you mean `critical`?"), "{p:?}");
    let p = judge(json!({"metric": "pass_rate", "drop": 0.1, "baseline": "trailing:x"}));
    assert_eq!(p[0].key.as_deref(), Some("baseline"));
    assert!(
        p[0].message.contains("`x` is not a number of runs"),
        "{p:?}"
    );
    let p = judge(json!({"metric": "pass_rate", "drop": 0.1, "baseline": "previos"}));
    assert!(p[0].message.contains("did you mean `previous`?"), "{p:?}");
    let p = judge(json!({"metric": "pass_rate", "drop": 0.1, "max": 0.5}));
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].key.as_deref(), Some("max"));
    assert!(
        p[0].message.starts_with("`max` conflicts with `drop`"),
        "{p:?}"
    );
    let p = judge(json!({"metric": "pass_rte", "drop": 0.1}));
    assert_eq!(p[0].key.as_deref(), Some("metric"));
    let p = judge(json!({"metric": "missed_run", "after": "soon"}));
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].key.as_deref(), Some("after"));
}

#[test]
fn project_rules_defer_unknown_names_but_not_near_misses() {
    let ok = judge_rule(&json!({"metric": "tone", "min": 0.5}), MetricScope::Project);
    assert!(ok.is_ok(), "{ok:?}");
    let err = judge_rule(
        &json!({"metric": "pass_rte", "min": 0.5}),
        MetricScope::Project,
    )
    .expect_err("near miss");
    assert!(
        err[0].message.contains("did you mean `pass_rate`?"),
        "{err:?}"
    );
}

#[test]
fn durations() {
    assert_eq!(parse_duration("26h"), Some(Duration::from_secs(93_600)));
    assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
    assert_eq!(parse_duration("2d"), Some(Duration::from_secs(172_800)));
    assert_eq!(parse_duration(""), None);
    assert_eq!(parse_duration("0h"), None);
    assert_eq!(parse_duration("3 fortnights"), None);
    assert_eq!(fmt_duration(Duration::from_secs(93_600)), "26h");
    assert_eq!(fmt_duration(Duration::from_secs(90)), "90s");
}

#[test]
fn suite_rules_replace_project_defaults_per_metric() {
    let suite = [json!({"metric": "pass_rate", "drop": 0.1})];
    let project = [
        json!({"metric": "pass_rate", "drop": 0.05}),
        json!({"metric": "cost_usd", "ratio": 1.2}),
        json!({"metric": "cost_usd", "ratio": 1.2}),
        json!({"metric": "nope", "max": 1}),
    ];
    let (rules, errors) = rules_for(&suite, &project, &BTreeSet::new());
    let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "pass_rate drop 0.1 vs previous",
            "cost_usd ratio 1.2 vs previous",
            "cost_usd ratio 1.2 vs previous #2"
        ]
    );
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].index, 3);
    assert!(
        errors[0]
            .to_string()
            .starts_with("alert rule 4 of the project config: unknown metric")
    );
}
