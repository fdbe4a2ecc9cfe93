//! Tests of the whole loading path, on files written to a temporary folder.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::*;
use crate::model::{
    Check, LengthUnit, Normalize, PromptTemplate, ProviderKind, ProviderSpec, RepeatPolicy,
    SimilarityAlgo, Tolerance,
};

fn write(dir: &Path, name: &str, text: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(&path, text).expect("write");
    path
}

fn project() -> ProjectConfig {
    ProjectConfig {
        providers: vec![
            ProviderSpec::new("bot", ProviderKind::Echo),
            ProviderSpec::new("prod-gpt", ProviderKind::Echo),
        ],
        ..ProjectConfig::default()
    }
}

/// Load one suite file's text; diagnostics as `line:col: message` (file name stripped).
fn load_text(text: impl AsRef<[u8]>) -> (Option<Suite>, Vec<String>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "s.yaml", text);
    let (mut suites, diags) = load_suites(std::slice::from_ref(&path), &project());
    let prefix = format!("{}:", path.display());
    let msgs = diags
        .0
        .iter()
        .map(|d| d.to_string().trim_start_matches(&prefix).to_owned())
        .collect();
    (suites.pop(), msgs)
}

const HEAD: &str = "suite: demo\nproviders: [bot]\nprompt: \"Q: {{ question }}\"\n";

fn with_cases(cases: &str) -> String {
    format!("{HEAD}cases:\n{cases}")
}

#[test]
fn a_complete_suite_loads() {
    let text = r#"suite: support-faq
description: FAQ answers
tags: [support]
schedule: "0 6 * * *"
timezone: Europe/Paris
providers:
  - bot
  - {id: local, type: echo}
system: You are the support assistant of {{ company }}.
prompt: |
  Answer in one sentence. Question: {{ question }}
repeat: 3
defaults:
  vars: {company: Acme}
cases:
  - id: refund-window
    tags: [billing]
    vars: {question: "How long do I have to return an item?"}
    expected: "30 days"
    context: "Items can be returned within 30 days of delivery."
    assert:
      - type: icontains
      - type: not-contains
        value: sorry
        weight: 2
      - type: similarity
        metric: jaro-winkler
        threshold: 0.7
      - type: levenshtein
        threshold: 3
      - type: numeric
        value: 30
        tolerance: {rel: 0.1}
      - type: length
        max: 40
        unit: words
      - type: contains-any
        value: [days, weeks]
      - type: classification
        labels: [30 days, 60 days]
        metric: label_acc
      - {type: latency, max: 3000}
      - {type: cost, max: 0.01}
      - {type: is-json, schema: {type: object}}
      - {type: json-path, path: "$.a[0]", value: {x: 1}}
      - {type: regex, value: "\\d+ days", normalize: [lowercase, trim]}
      - type: is-refusal
gates:
  pass_rate: {min: 0.9}
  label_acc: {min: 0.5}
alerts:
  - {metric: pass_rate, drop: 0.05, baseline: "trailing:7", severity: critical}
review: {sample: 20, seed: 7}
"#;
    let (suite, diags) = load_text(text);
    assert!(diags.is_empty(), "{diags:#?}");
    let suite = suite.expect("suite");
    assert_eq!(suite.name, "support-faq");
    assert_eq!(suite.repeat, 3);
    assert_eq!(suite.providers.len(), 2);
    assert_eq!(suite.providers[1].id, "local");
    assert_eq!(suite.schedule.as_deref(), Some("0 6 * * *"));
    assert!(matches!(&suite.prompt, PromptTemplate::Text(t) if t.contains("{{ question }}")));
    assert_eq!(suite.gates.len(), 2);
    assert_eq!(suite.alerts[0]["drop"], serde_json::json!(0.05));
    assert_eq!(
        suite.review.as_ref().map(|r| (r.sample, r.seed)),
        Some((20, 7))
    );
    assert_eq!(suite.hash.len(), 16);
    let case = &suite.cases[0];
    assert_eq!(case.vars.get("company"), Some(&serde_json::json!("Acme")));
    assert_eq!(
        case.context,
        vec!["Items can be returned within 30 days of delivery."]
    );
    assert_eq!((case.location.line, case.location.col), (16, 5));
    let a = &case.asserts;
    assert_eq!(a.len(), 14);
    assert_eq!(
        a[0].check,
        Check::IContains {
            value: "30 days".into()
        }
    );
    assert!(a[1].negate);
    assert_eq!(a[1].type_name, "not-contains");
    assert!((a[1].weight - 2.0).abs() < f64::EPSILON);
    assert_eq!(
        a[2].check,
        Check::Similarity {
            algorithm: SimilarityAlgo::JaroWinkler,
            value: "30 days".into(),
            threshold: 0.7
        }
    );
    assert_eq!(a[2].metric, None);
    assert_eq!(
        a[3].check,
        Check::Levenshtein {
            value: "30 days".into(),
            max_distance: 3
        }
    );
    assert_eq!(
        a[4].check,
        Check::Numeric {
            value: 30.0,
            pattern: None,
            tolerance: Tolerance::Relative(0.1)
        }
    );
    assert_eq!(
        a[5].check,
        Check::Length {
            min: None,
            max: Some(40),
            unit: LengthUnit::Words
        }
    );
    assert_eq!(
        a[6].check,
        Check::ContainsAny {
            values: vec!["days".into(), "weeks".into()]
        }
    );
    assert_eq!(a[7].metric.as_deref(), Some("label_acc"));
    assert_eq!(a[8].check, Check::Latency { max_ms: 3000.0 });
    assert_eq!(
        a[10].check,
        Check::IsJson {
            schema: Some(serde_json::json!({"type": "object"}))
        }
    );
    assert_eq!(a[12].normalize, vec![Normalize::Lowercase, Normalize::Trim]);
    assert_eq!(a[13].check, Check::IsRefusal);
    assert_eq!((a[1].location.line, a[1].location.col), (23, 9));
}

#[test]
fn three_errors_give_three_diagnostics() {
    let text = with_cases(
        "  - id: a\n    expected: x\n    asert: []\n    vars: {question: q}\n  - id: b\n    expected: y\n    vars: {question: q}\n    assert:\n      - type: regex\n        value: \"(unclosed\"\n  - expected: z\n",
    );
    let (suite, diags) = load_text(text);
    assert!(suite.is_none());
    assert_eq!(
        diags,
        vec![
            "7:5: unknown field `asert` in case `a`; did you mean `assert`?",
            "14:16: invalid regex: regex parse error: (unclosed ^ error: unclosed group",
            "15:5: case has no `id`; every case needs a stable `id` (history follows it)",
        ]
    );
}

#[test]
fn suite_level_errors_are_located() {
    let (_, diags) =
        load_text("suite: Bad Name\nprovders: [bot]\nrepeat: 0\nprompt: hi\ncases: []\n");
    assert_eq!(
        diags,
        vec![
            "1:1: missing `providers:` (ids from evalwatch.yaml or inline definitions)",
            "1:8: invalid suite name `Bad Name`: use lowercase letters, digits, `-` and `_`, starting with a letter or digit",
            "2:1: unknown field `provders` in the suite; did you mean `providers`?",
            "3:9: repeat must be at least 1",
            "5:8: `cases` must not be empty",
        ]
    );
    let (_, diags) = load_text("suite: s\nproviders: [bot]\nprompt: hi\ncases:\n");
    assert_eq!(diags, vec!["4:1: `cases` must not be empty"]);
    let (_, diags) = load_text("providers: [bot]\nprompt: hi\ncases:\n  - {id: a, expected: b}\n");
    assert_eq!(
        diags,
        vec!["1:1: missing `suite:` (the suite's stable name)"]
    );
    let (_, diags) = load_text("suite: s\nproviders: [bot]\ncases:\n  - {id: a, expected: b}\n");
    assert_eq!(
        diags,
        vec!["1:1: missing `prompt:` (or `messages:`): the suite has nothing to ask"]
    );
}

#[test]
fn wrong_types_are_located() {
    let (_, diags) = load_text(format!(
        "{HEAD}repeat: many\ntags: solo\ncases:\n  - id: a\n    expected: b\n    vars: [1]\n"
    ));
    assert_eq!(
        diags,
        vec![
            "4:9: `repeat`: invalid type: string \"many\", expected a non-negative integer",
            "5:7: `tags`: invalid type: string \"solo\", expected a sequence",
            "9:11: case `a` (at `vars`): invalid type: sequence, expected a map",
        ]
    );
}

#[test]
fn duplicate_ids_point_at_the_second_and_name_the_first() {
    let (_, diags) = load_text(with_cases(
        "  - {id: a, expected: x, vars: {question: q}}\n  - {id: b, expected: x, vars: {question: q}}\n  - {id: a, expected: y, vars: {question: q}}\n",
    ));
    assert_eq!(
        diags,
        vec!["7:5: duplicate case id `a`; first defined at line 5"]
    );
}

#[test]
fn unknown_provider_ids_are_suggested() {
    let (_, diags) = load_text(
        "suite: s\nproviders: [bot, prod-gtp]\nprompt: hi\ncases:\n  - {id: a, expected: b}\n",
    );
    assert_eq!(
        diags,
        vec!["2:18: unknown provider `prod-gtp`; did you mean `prod-gpt`?"]
    );
    let (_, diags) = load_text(
        "suite: s\nproviders:\n  - {id: x, type: ecko}\nprompt: hi\ncases:\n  - {id: a, expected: b}\n",
    );
    assert_eq!(
        diags,
        vec!["3:19: unknown provider type `ecko` in provider `x`; did you mean `echo`?"]
    );
    let (_, diags) = load_text(
        "suite: s\nproviders: [bot, bot]\nprompt: hi\ncases:\n  - {id: a, expected: b}\n",
    );
    assert_eq!(
        diags,
        vec!["2:18: duplicate provider `bot`; first listed at line 2"]
    );
    let (_, diags) =
        load_text("suite: s\nproviders: []\nprompt: hi\ncases:\n  - {id: a, expected: b}\n");
    assert_eq!(
        diags,
        vec!["2:12: `providers` must list at least one provider"]
    );
}

#[test]
fn assertion_errors_and_suggestions() {
    let (_, diags) = load_text(with_cases(
        r#"  - id: a
    expected: "12"
    vars: {question: q}
    assert:
      - type: contians
      - {type: contains, normalize: [lowercase, colapse_whitespace]}
      - {type: similarity, metric: levenstein}
      - {type: similarity, algorithm: jaro-winker}
      - {type: similarity, threshold: 1.5}
      - {type: contains, weight: -1}
      - {type: length, min: 10, max: 2}
      - {type: is-json, schema: {type: 12}}
      - {type: contains, labels: [a]}
      - {type: classification}
      - {type: numeric, pattern: "\\d+"}
"#,
    ));
    assert_eq!(
        diags,
        vec![
            "9:15: unknown assertion type `contians`; did you mean `contains`?",
            "10:49: unknown normalize `colapse_whitespace`; did you mean `collapse_whitespace`?",
            "11:36: unknown similarity metric `levenstein`; did you mean `levenshtein`? (to name a run metric instead, give the algorithm with `algorithm:`)",
            "12:39: unknown similarity algorithm `jaro-winker`; did you mean `jaro-winkler`?",
            "13:39: threshold must be between 0 and 1, got 1.5",
            "14:34: weight must be a non-negative number, got -1",
            "15:29: min (10) is greater than max (2)",
            "16:33: invalid JSON schema: 12 is not valid under any of the schemas listed in the 'anyOf' keyword",
            "17:26: field `labels` does not apply to assertion type `contains`",
            "18:9: assertion type `classification` needs a non-empty `labels` list",
            "19:34: pattern needs a capture group `( )` around the number",
        ]
    );
}

#[test]
fn values_default_to_expected_or_are_required() {
    let (_, diags) = load_text(with_cases(
        "  - id: a\n    vars: {question: q}\n    assert:\n      - type: equals\n  - id: b\n    expected: not a number\n    vars: {question: q}\n    assert: [{type: numeric}]\n  - id: c\n    expected: cat\n    vars: {question: q}\n    assert: [{type: classification, labels: [dog, bird]}]\n",
    ));
    assert_eq!(
        diags,
        vec![
            "8:9: case `a`: assertion `equals` needs a `value`, and the case has no `expected`",
            "12:14: case `b`: assertion `numeric` has no `value` and the case's `expected` (`not a number`) is not a number",
            "16:14: case `c`: expected label `cat` of `classification` is not one of its labels (dog, bird)",
        ]
    );
}

#[test]
fn model_assisted_assertions_are_validated_with_their_judge() {
    // Lexical hallucination needs no judge.
    let (suite, diags) = load_text(with_cases(
        "  - id: a\n    expected: x\n    vars: {question: q}\n    assert:\n      - type: hallucination\n        max: 0.2\n",
    ));
    assert!(diags.is_empty(), "{diags:?}");
    assert!(suite.is_some());
    // Judge-needing assertions without a judge, with an unknown one, and bad params.
    let (_, diags) = load_text(with_cases(
        "  - id: a\n    expected: x\n    vars: {question: q}\n    assert:\n      - type: factuality\n      - type: llm-rubric\n        provider: nobody\n        rubric: polite\n      - type: hallucination\n        method: vibes\n        max: 2\n      - type: llm-rubric\n      - type: factuality\n        provider: echo\n        scores: {sorta: 1}\n      - type: hallucination\n        threshold: 0.5\n",
    ));
    let text = diags.join("\n");
    assert!(text.contains("9:9: `factuality` needs a judge"), "{text}");
    assert!(
        text.contains("10:9: judge provider `nobody` of `llm-rubric` is not defined"),
        "{text}"
    );
    assert!(text.contains("14:17: unknown method `vibes`"), "{text}");
    assert!(text.contains("15:14: max is the largest share"), "{text}");
    assert!(
        text.contains("16:9: assertion type `llm-rubric` needs a `rubric`"),
        "{text}"
    );
    assert!(
        text.contains("unknown factuality category `sorta`"),
        "{text}"
    );
    assert!(text.contains("passes by `max`"), "{text}");
}

#[test]
fn hallucination_support_and_judge_share_are_validated_where_written() {
    let (suite, diags) = load_text(with_cases(
        "  - id: a\n    expected: x\n    vars: {question: q}\n    assert:\n      - type: hallucination\n        support: [expected, context, prompt]\n      - type: hallucination\n        support: context\n",
    ));
    assert!(diags.is_empty(), "{diags:?}");
    assert!(suite.is_some());
    let (_, diags) = load_text(with_cases(
        "  - id: a\n    expected: x\n    vars: {question: q}\n    assert:\n      - type: hallucination\n        support: [expected, contxt, expected]\n      - type: hallucination\n        support: []\n      - type: hallucination\n        support: [3]\n      - type: hallucination\n        judge_share: 0.3\n      - type: hallucination\n        method: both\n        judge_share: 1.5\n      - type: equals\n        support: [prompt]\n",
    ));
    let text = diags.join("\n");
    assert!(
        text.contains("10:29: unknown support source `contxt`; use expected, context, prompt; did you mean `context`?"),
        "{text}"
    );
    assert!(
        text.contains("10:37: support source `expected` is listed twice"),
        "{text}"
    );
    assert!(
        text.contains("12:18: `support` must name at least one of"),
        "{text}"
    );
    assert!(
        text.contains("14:19: `support` lists sources by name"),
        "{text}"
    );
    assert!(
        text.contains("16:22: `judge_share` applies to `method: both` only"),
        "{text}"
    );
    assert!(text.contains("19:22: judge_share is the share"), "{text}");
    assert!(
        text.contains("field `support` does not apply to assertion type `equals`"),
        "{text}"
    );
}

#[test]
fn similarity_defaults_to_soft_tokens() {
    let (suite, diags) = load_text(with_cases(
        "  - id: a\n    expected: Use the Forgot password link.\n    vars: {question: q}\n    assert:\n      - type: similarity\n",
    ));
    assert!(diags.is_empty(), "{diags:?}");
    let suite = suite.expect("suite");
    assert_eq!(
        suite.cases[0].asserts[0].check,
        Check::Similarity {
            algorithm: SimilarityAlgo::SoftTokens,
            value: "Use the Forgot password link.".into(),
            threshold: 0.8
        }
    );
}

#[test]
fn model_assisted_params_are_carried() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = yaml::parse("type: llm-rubric\nrubric: polite\nweight: 2\nprovider: judge\n")
        .expect("yaml")
        .expect("doc");
    let mut ctx = decode::Ctx::new(&dir.path().join("x.yaml"), false);
    let pending = assertion::decode(&mut ctx, &node, "case `a`", dir.path()).expect("valid");
    assert!(ctx.diags.is_empty(), "{:?}", ctx.diags);
    let a = pending.resolve(None).expect("resolves");
    let crate::model::Check::Model { kind, params } = &a.check else {
        panic!("not a model check: {:?}", a.check)
    };
    assert_eq!(kind, "llm-rubric");
    assert_eq!(params["rubric"], "polite");
    assert_eq!(params["provider"], "judge");
    assert!((a.weight - 2.0).abs() < 1e-12);
    // A field of another type is refused.
    let node = yaml::parse("type: semantic\nrubric: polite\n")
        .expect("yaml")
        .expect("doc");
    let mut ctx = decode::Ctx::new(&dir.path().join("x.yaml"), false);
    assert!(assertion::decode(&mut ctx, &node, "case `a`", dir.path()).is_none());
    assert!(
        ctx.diags[0].message.contains("does not apply"),
        "{:?}",
        ctx.diags
    );
}

#[test]
fn case_without_expected_or_assert_and_undeclared_variables() {
    let (_, diags) = load_text(with_cases(
        "  - id: a\n    vars: {question: q}\n  - id: b\n    expected: x\n",
    ));
    assert_eq!(
        diags,
        vec![
            "5:5: case `a` has no `expected` and no `assert`; give it an `expected` answer or assertions",
            "7:5: case `b` does not define `question`, used by the prompt",
        ]
    );
}

#[test]
fn template_syntax_errors_are_located_at_the_key() {
    let (_, diags) = load_text(
        "suite: s\nproviders: [bot]\nprompt: |\n  line one\n  {{ broken\ncases:\n  - {id: a, expected: b}\n",
    );
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert!(
        diags[0].starts_with("3:1: template syntax error in the prompt (template line 2): "),
        "{diags:?}"
    );
}

#[test]
fn defaults_are_merged() {
    let (suite, diags) = load_text(format!(
        "{HEAD}defaults:\n  vars: {{question: dq, lang: en}}\n  assert: [{{type: icontains}}]\n  threshold: 0.5\ncases:\n  - id: a\n    expected: yes\n    vars: {{question: own}}\n    assert: [{{type: starts-with, value: Y}}]\n  - id: b\n    expected: no\n    threshold: 0.9\n"
    ));
    assert!(diags.is_empty(), "{diags:?}");
    let suite = suite.expect("suite");
    let a = &suite.cases[0];
    assert_eq!(a.vars.get("question"), Some(&serde_json::json!("own")));
    assert_eq!(a.vars.get("lang"), Some(&serde_json::json!("en")));
    assert_eq!(a.threshold, Some(0.5));
    assert_eq!(a.asserts.len(), 2);
    assert_eq!(
        a.asserts[0].check,
        Check::IContains {
            value: "yes".into()
        }
    );
    assert_eq!(a.asserts[1].check, Check::StartsWith { value: "Y".into() });
    let b = &suite.cases[1];
    assert_eq!(b.threshold, Some(0.9));
    assert_eq!(b.asserts[0].check, Check::IContains { value: "no".into() });
}

#[test]
fn default_values_from_defaults_need_expected() {
    let (_, diags) = load_text(format!(
        "{HEAD}defaults:\n  assert: [{{type: equals}}]\ncases:\n  - id: a\n    vars: {{question: q}}\n"
    ));
    assert_eq!(
        diags,
        vec![
            "7:5: case `a`: assertion `equals` needs a `value`, and the case has no `expected` (assertion `equals` from `defaults`)"
        ]
    );
}

#[test]
fn default_rule_drops_only_trailing_punctuation_of_expected() {
    let (suite, diags) = load_text(with_cases(
        "  - {id: a, expected: \"3.5 %.\", vars: {question: q}}\n",
    ));
    assert!(diags.is_empty(), "{diags:?}");
    let rule = &suite.expect("suite").cases[0].asserts[0];
    assert_eq!(
        rule.check,
        Check::Contains {
            value: "3.5 %".into()
        }
    );
}

#[test]
fn threshold_only_where_it_acts_and_json_path_null() {
    let (_, diags) = load_text(with_cases(
        "  - id: a\n    expected: x\n    vars: {question: q}\n    assert:\n      - {type: icontains, threshold: 0.5}\n",
    ));
    assert!(
        diags
            .iter()
            .any(|d| d.contains("`threshold` has no effect on `icontains`")),
        "{diags:?}"
    );
    let (suite, diags) = load_text(with_cases(
        "  - id: a\n    expected: x\n    vars: {question: q}\n    assert:\n      - {type: json-path, path: $.total, value: null}\n      - {type: json-path, path: $.total}\n",
    ));
    assert!(diags.is_empty(), "{diags:?}");
    let asserts = &suite.expect("suite").cases[0].asserts;
    assert_eq!(
        asserts[0].check,
        Check::JsonPath {
            path: "$.total".into(),
            value: Some(serde_json::Value::Null)
        }
    );
    assert_eq!(
        asserts[1].check,
        Check::JsonPath {
            path: "$.total".into(),
            value: None
        }
    );
}

#[test]
fn context_items_must_be_text_and_provider_fields_must_fit_the_type() {
    let (_, diags) = load_text(with_cases(
        "  - {id: a, expected: x, vars: {question: q}, context: [fine, {a: 1}]}\n",
    ));
    assert!(
        diags
            .iter()
            .any(|d| d.contains("every item of `context` must be a string")),
        "{diags:?}"
    );
    let (_, diags) = load_text(
        "suite: s\nproviders:\n  - {id: p, type: openai, model: m, file: x.jsonl}\nprompt: hi\ncases:\n  - {id: a, expected: x}\n",
    );
    assert_eq!(
        diags,
        [
            "3:37: `file` does not apply to provider `p` of type `openai`; remove it or change `type`"
        ]
    );
}

#[test]
fn default_contains_rule() {
    let (suite, diags) = load_text(with_cases(
        "  - {id: a, expected: 30 days, vars: {question: q}}\n",
    ));
    assert!(diags.is_empty(), "{diags:?}");
    let case = &suite.expect("suite").cases[0];
    assert_eq!(case.asserts.len(), 1);
    let rule = &case.asserts[0];
    assert_eq!(rule.type_name, "contains");
    assert_eq!(
        rule.check,
        Check::Contains {
            value: "30 days".into()
        }
    );
    assert_eq!(
        rule.normalize,
        vec![
            Normalize::Lowercase,
            Normalize::CollapseWhitespace,
            Normalize::Trim,
        ]
    );
}

#[test]
fn env_expansion_in_values() {
    let path = std::env::var("PATH").expect("PATH");
    let (suite, diags) = load_text(with_cases(
        "  - id: a\n    expected: \"${PATH}\"\n    vars: {question: \"${EVALWATCH_T_SUITE_UNSET_A:-fallback}\"}\n",
    ));
    assert!(diags.is_empty(), "{diags:?}");
    let case = &suite.expect("suite").cases[0];
    assert_eq!(case.expected.as_deref(), Some(path.as_str()));
    assert_eq!(
        case.vars.get("question"),
        Some(&serde_json::json!("fallback"))
    );
    let (_, diags) = load_text(with_cases(
        "  - id: a\n    expected: \"${EVALWATCH_T_SUITE_UNSET_B}\"\n    vars: {question: q}\n",
    ));
    assert_eq!(
        diags,
        vec![
            "6:15: environment variable `EVALWATCH_T_SUITE_UNSET_B` is not set; set it or use `${EVALWATCH_T_SUITE_UNSET_B:-default}`"
        ]
    );
}

#[test]
fn includes_of_all_three_formats() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "cases/a.jsonl",
        "{\"id\": \"j1\", \"expected\": \"x\", \"vars\": {\"question\": \"q1\"}}\n\n{\"id\": \"j2\", \"vars\": {\"question\": \"q2\"}, \"assert\": [{\"type\": \"contains\", \"value\": \"y\"}]}\n",
    );
    write(
        dir.path(),
        "cases/b.csv",
        "id,question,expected,tags,context\nc1,\"what, really?\",yes,a;b,ctx\nc2,q2,no,,\n",
    );
    write(
        dir.path(),
        "cases/c.yaml",
        "- id: y1\n  expected: z\n  vars: {question: q}\n",
    );
    let suite_path = write(
        dir.path(),
        "s.yaml",
        format!(
            "{HEAD}cases:\n  - include: cases/a.jsonl\n  - include: cases/b.csv\n  - include: cases/c.yaml\n"
        ),
    );
    let (suites, diags) = load_suites(&[suite_path], &project());
    assert!(diags.is_empty(), "{diags}");
    let cases = &suites[0].cases;
    let ids: Vec<&str> = cases.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, vec!["j1", "j2", "c1", "c2", "y1"]);
    let at = |i: usize| {
        (
            cases[i]
                .location
                .file
                .file_name()
                .map(|f| f.to_string_lossy().into_owned()),
            cases[i].location.line,
        )
    };
    assert_eq!(at(0), (Some("a.jsonl".into()), 1));
    assert_eq!(at(1), (Some("a.jsonl".into()), 3));
    assert_eq!(at(2), (Some("b.csv".into()), 2));
    assert_eq!(at(3), (Some("b.csv".into()), 3));
    assert_eq!(at(4), (Some("c.yaml".into()), 1));
    assert_eq!(
        cases[1].asserts[0].check,
        Check::Contains { value: "y".into() }
    );
    assert_eq!(
        cases[2].vars.get("question"),
        Some(&serde_json::json!("what, really?"))
    );
    assert_eq!(cases[2].tags, vec!["a", "b"]);
    assert_eq!(cases[2].context, vec!["ctx"]);
    assert_eq!(cases[3].expected.as_deref(), Some("no"));
    assert!(cases[3].tags.is_empty());
}

#[test]
fn include_errors_point_into_the_included_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "a.jsonl",
        "{\"id\": \"j1\", \"expected\": \"x\", \"vars\": {\"question\": \"q\"}}\n{\"id\": \"j1\", \"expectd\": \"x\"}\nnot json\n",
    );
    write(dir.path(), "b.csv", "id,question\n,q\n");
    let suite_path = write(
        dir.path(),
        "s.yaml",
        format!(
            "{HEAD}cases:\n  - include: a.jsonl\n  - include: b.csv\n  - include: missing.jsonl\n"
        ),
    );
    let (suites, diags) = load_suites(&[suite_path], &project());
    assert!(suites.is_empty());
    let msgs: Vec<String> = diags
        .0
        .iter()
        .map(|d| {
            format!(
                "{}:{}:{}: {}",
                d.location
                    .file
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                d.location.line,
                d.location.col,
                d.message
            )
        })
        .collect();
    assert_eq!(
        msgs,
        vec![
            "s.yaml:7:14: included file `missing.jsonl` not found (looked for ".to_owned()
                + &dir.path().join("missing.jsonl").display().to_string()
                + ")",
            "a.jsonl:2:1: unknown field `expectd` in case `j1`; did you mean `expected`?"
                .to_owned(),
            "a.jsonl:2:1: duplicate case id `j1`; first defined at line 1".to_owned(),
            "a.jsonl:2:1: case `j1` does not define `question`, used by the prompt".to_owned(),
            "a.jsonl:3:2: invalid JSON: expected ident at line 1 column 2".to_owned(),
            "b.csv:2:1: case has no `id`; every case needs a stable `id` (history follows it)"
                .to_owned(),
        ]
    );
}

#[test]
fn rendering_prompt_system_and_messages() {
    let (suite, diags) = load_text(
        "suite: s\nproviders: [bot]\nsystem: You work for {{ company }}.\nprompt: \"Q: {{ question }} ({{ n + 1 }})\"\ncases:\n  - {id: a, expected: x, vars: {company: Acme, question: why, n: 1}}\n",
    );
    assert!(diags.is_empty(), "{diags:?}");
    let suite = suite.expect("suite");
    let renderer = Renderer::new(&suite).expect("renderer");
    let req = renderer.render(&suite.cases[0], 2).expect("render");
    assert_eq!(req.case_id, "a");
    assert_eq!(req.sample, 2);
    assert_eq!(req.system.as_deref(), Some("You work for Acme."));
    assert_eq!(req.messages.len(), 1);
    assert_eq!(req.messages[0].role, "user");
    assert_eq!(req.messages[0].content, "Q: why (2)");

    let (suite, diags) = load_text(
        "suite: s\nproviders: [bot]\nmessages:\n  - {role: user, content: \"Hi {{ name }}\"}\n  - {role: assistant, content: Hello}\n  - {role: user, content: \"{{ question }}\"}\ncases:\n  - {id: a, expected: x, vars: {name: Ann, question: why}}\n",
    );
    assert!(diags.is_empty(), "{diags:?}");
    let suite = suite.expect("suite");
    let req = Renderer::new(&suite)
        .expect("renderer")
        .render(&suite.cases[0], 0)
        .expect("render");
    let got: Vec<(&str, &str)> = req
        .messages
        .iter()
        .map(|m| (m.role.as_str(), m.content.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![("user", "Hi Ann"), ("assistant", "Hello"), ("user", "why")]
    );
    assert_eq!(req.system, None);
}

#[test]
fn rendering_is_strict_about_undefined_attributes() {
    let (suite, diags) = load_text(
        "suite: s\nproviders: [bot]\nprompt: \"{{ user.name }}\"\ncases:\n  - {id: a, expected: x, vars: {user: {age: 3}}}\n",
    );
    assert!(diags.is_empty(), "{diags:?}");
    let suite = suite.expect("suite");
    assert!(
        Renderer::new(&suite)
            .expect("renderer")
            .render(&suite.cases[0], 0)
            .is_err()
    );
}

#[test]
fn messages_roles_are_checked() {
    let (_, diags) = load_text(
        "suite: s\nproviders: [bot]\nmessages:\n  - {role: usr, content: hi}\ncases:\n  - {id: a, expected: b}\n",
    );
    assert_eq!(
        diags,
        vec!["4:12: unknown role `usr`; use system, user or assistant; did you mean `user`?"]
    );
}

#[test]
fn hashes_survive_reformatting_but_not_edits() {
    let a = load_text(with_cases(
        "  - {id: a, expected: x, vars: {question: q, lang: en}}\n",
    ))
    .0
    .expect("a");
    let b = load_text(
        "# reformatted\nsuite:   demo\nproviders:\n  - bot\nprompt: 'Q: {{ question }}'\ncases:\n  -   id: a\n      vars:\n        lang: en\n        question: q\n      expected: \"x\"\n",
    )
    .0
    .expect("b");
    let c = load_text(with_cases(
        "  - {id: a, expected: y, vars: {question: q, lang: en}}\n",
    ))
    .0
    .expect("c");
    assert_eq!(a.cases[0].hash, b.cases[0].hash);
    assert_eq!(a.hash, b.hash);
    assert_ne!(a.cases[0].hash, c.cases[0].hash);
    assert_ne!(a.hash, c.hash);
}

#[test]
fn gates_are_checked() {
    let (_, diags) = load_text(with_cases(
        "  - {id: a, expected: x, vars: {question: q}}\ngates:\n  pass_rte: {min: 0.9}\n  error_rate: {min: 0.5, max: 0.1}\n  cost_usd: {}\n",
    ));
    assert_eq!(
        diags,
        vec![
            "7:3: unknown gate metric `pass_rte`; did you mean `pass_rate`?",
            "8:15: gate `error_rate`: min (0.5) is greater than max (0.1)",
            "9:13: gate `cost_usd` needs `min` or `max`",
        ]
    );
}

/// A gate bound outside its metric's values is never crossed (silent) or crossed by every run.
#[test]
fn a_gate_bound_outside_the_metric_values_is_refused() {
    let (suite, diags) = load_text(with_cases(
        "  - {id: a, expected: x, vars: {question: q}}\ngates:\n  error_rate: {max: 5}\n  pass_rate: {min: 95}\n  latency_p95_ms: {max: 1500}\n  mean_score: {min: 0.0, max: 1.0}\n",
    ));
    assert_eq!(
        diags,
        vec![
            "7:15: gate `error_rate`: `max: 5` is outside `error_rate`'s values, a fraction from 0 to 1: the gate can never fail (`max: 0.05` is 5%)",
            "8:14: gate `pass_rate`: `min: 95` is outside `pass_rate`'s values, a fraction from 0 to 1: the gate fails every run (`min: 0.95` is 95%)",
        ]
    );
    assert!(suite.is_none());
}

#[test]
fn schedule_and_alerts_light_checks() {
    let (_, diags) = load_text(format!(
        "{HEAD}schedule: every day\nalerts:\n  - {{drop: 0.1}}\ncases:\n  - {{id: a, expected: x, vars: {{question: q}}}}\n"
    ));
    assert_eq!(
        diags,
        vec![
            "4:11: schedule `every day` has 2 fields, not 5; use 5 cron fields (minute hour day-of-month month day-of-week, like `0 6 * * *`) or @hourly, @daily, @weekly, @monthly, @yearly",
            "6:5: an alert rule needs a `metric` (e.g. `metric: pass_rate`)",
        ]
    );
    let (suite, diags) = load_text(format!(
        "{HEAD}schedule: '@daily'\ncases:\n  - {{id: a, expected: x, vars: {{question: q}}}}\n"
    ));
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(suite.expect("suite").schedule.as_deref(), Some("@daily"));
}

#[test]
fn empty_file_tabs_and_invalid_utf8() {
    let (_, diags) = load_text("");
    assert_eq!(
        diags,
        vec!["1:1: file is empty; a suite needs at least `suite:` and `cases:`"]
    );
    let (_, diags) = load_text("# only a comment\n");
    assert_eq!(
        diags,
        vec!["1:1: file is empty; a suite needs at least `suite:` and `cases:`"]
    );
    let (_, diags) = load_text("suite: s\ncases:\n\t- id: a\n");
    assert_eq!(
        diags,
        vec!["3:1: invalid YAML: tabs disallowed within this context (block indentation)"]
    );
    let (_, diags) = load_text(b"suite: s\nprompt: caf\xe9\n");
    assert_eq!(
        diags,
        vec!["2:12: invalid UTF-8: the file must be UTF-8 text"]
    );
}

#[test]
fn garbage_and_truncated_input_never_panic() {
    let full = with_cases(
        "  - id: a\n    expected: x\n    vars: {question: q}\n    assert:\n      - {type: regex, value: \"a+\"}\n",
    );
    let (suite, diags) = load_text(&full);
    assert!(diags.is_empty(), "{diags:?}");
    assert!(suite.is_some());
    for cut in 0..full.len() {
        let (suite, diags) = load_text(&full[..cut]);
        assert!(suite.is_some() || !diags.is_empty(), "cut at {cut}");
    }
    // Deterministic pseudo-random bytes (xorshift), biased towards YAML punctuation.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let alphabet = b"- :{}[]\"'\n\t#&*!|>%@`,?abc123\\\xff\xc3";
    for _ in 0..200 {
        let mut bytes = Vec::new();
        for _ in 0..(state % 300) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            bytes.push(alphabet[(state % alphabet.len() as u64) as usize]);
        }
        let (suite, diags) = load_text(&bytes);
        assert!(suite.is_none() && !diags.is_empty());
    }
}

#[test]
fn a_50_mb_jsonl_file_loads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
    let filler = "lorem ipsum dolor sit amet ".repeat(74);
    let mut written = 0usize;
    let mut n = 0usize;
    while written < 50 * 1024 * 1024 {
        let line = format!(
            "{{\"id\": \"case-{n}\", \"expected\": \"x\", \"vars\": {{\"question\": \"{filler}\"}}}}\n"
        );
        file.write_all(line.as_bytes()).expect("write");
        written += line.len();
        n += 1;
    }
    file.flush().expect("flush");
    drop(file);
    let suite_path = write(
        dir.path(),
        "s.yaml",
        format!("{HEAD}cases:\n  - include: big.jsonl\n"),
    );
    let (suites, diags) = load_suites(&[suite_path], &project());
    assert!(
        diags.is_empty(),
        "{}",
        diags
            .0
            .iter()
            .take(3)
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(suites[0].cases.len(), n);
    assert_eq!(suites[0].cases[n - 1].location.line, n);
}

#[test]
fn project_config_loads_and_is_validated() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "evalwatch.yaml",
        "store: data/evalwatch.db\nreports: out\nproviders:\n  - id: prod-gpt\n    type: openai\n    model: gpt-4o-mini\n    params: {temperature: 0}\n    pricing: {input_per_mtok: 0.15, output_per_mtok: 0.60}\n    rate_limit: {rpm: 500}\njudge: prod-gpt\nsinks:\n  - id: oncall\n    type: slack\n    url_env: SLACK_WEBHOOK_URL\n    min_severity: warning\n    headers: {X-Key: '${EVALWATCH_T_SINK_KEY}'}\nalerts:\n  - {metric: pass_rate, drop: 0.05}\nerror_budget: 0.25\n",
    );
    let config = load_project(None, dir.path()).expect("config");
    assert_eq!(config.root, dir.path());
    assert_eq!(config.store, Some(dir.path().join("data/evalwatch.db")));
    assert_eq!(config.reports, Some(dir.path().join("out")));
    assert_eq!(config.providers[0].params["temperature"], 0);
    assert_eq!(config.providers[0].rate_limit.rpm, Some(500));
    assert_eq!(config.judge.as_deref(), Some("prod-gpt"));
    assert_eq!(config.sinks[0].kind, "slack");
    assert_eq!(config.sinks[0].settings["url_env"], "SLACK_WEBHOOK_URL");
    assert_eq!(
        config.sinks[0].settings["headers"]["X-Key"],
        "${EVALWATCH_T_SINK_KEY}"
    );
    assert_eq!(config.alerts.len(), 1);
    assert_eq!(config.error_budget, Some(0.25));

    let bad = tempfile::tempdir().expect("tempdir");
    let path = write(
        bad.path(),
        "evalwatch.yaml",
        "providers:\n  - {id: a, type: echo}\n  - {id: a, type: echo}\njudge: b\nsinks:\n  - {id: s, type: slak}\nerror_budget: 2\nstroe: x\n",
    );
    let msgs = project_errors(&path);
    assert_eq!(
        msgs,
        vec![
            "3:5: duplicate provider id `a`; first defined at line 2",
            "4:8: judge `b` is not a provider defined in evalwatch.yaml",
            "6:19: unknown sink type `slak`; did you mean `slack`?",
            "7:15: error_budget must be between 0 and 1, got 2",
            "8:1: unknown field `stroe` in evalwatch.yaml; did you mean `store`?",
        ]
    );
}

/// The problems of the evalwatch.yaml at `path`, each as `line:col: message`.
fn project_errors(path: &Path) -> Vec<String> {
    let err = load_project(Some(path), Path::new("/")).expect_err("invalid");
    err.0
        .iter()
        .map(|d| format!("{}:{}: {}", d.location.line, d.location.col, d.message))
        .collect()
}

/// Audit M4: a second sink with an id already used is an error located at it, as a second
/// provider is (the second sink would never get a notice).
#[test]
fn duplicate_sink_ids_are_located_errors() {
    let bad = tempfile::tempdir().expect("tempdir");
    let path = write(
        bad.path(),
        "evalwatch.yaml",
        "sinks:\n  - {id: f, type: file, path: one.jsonl}\n  - {id: f, type: file, path: two.jsonl}\n  - {id: g, type: stdout}\n",
    );
    let msgs = project_errors(&path);
    assert_eq!(
        msgs,
        vec!["3:5: duplicate sink id `f`; first defined at line 2"]
    );
}

#[test]
fn project_defaults_when_absent_and_missing_explicit_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = load_project(None, dir.path()).expect("defaults");
    assert_eq!(config.root, dir.path());
    assert!(config.source.is_none());
    assert!(config.providers.is_empty());
    let err = load_project(Some(Path::new("nope.yaml")), dir.path()).expect_err("missing");
    assert_eq!(err.to_string(), "nope.yaml: config file not found");
}

#[test]
fn discovering_suite_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "b.yaml", "x");
    write(dir.path(), "a.yml", "x");
    write(dir.path(), "notes.txt", "x");
    write(dir.path(), "cases/c.yaml", "x");
    let files = discover_suite_files(&[dir.path().to_path_buf()]).expect("files");
    assert_eq!(
        files,
        vec![dir.path().join("a.yml"), dir.path().join("b.yaml")]
    );
    let single = dir.path().join("notes.txt");
    assert_eq!(
        discover_suite_files(std::slice::from_ref(&single)).expect("file"),
        vec![single]
    );
    let missing = dir.path().join("missing");
    let err = discover_suite_files(&[missing]).expect_err("missing");
    assert!(
        err.to_string().ends_with("missing: no such file or folder"),
        "{err}"
    );
}

#[test]
fn duplicate_suite_names_across_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = with_cases("  - {id: a, expected: x, vars: {question: q}}\n");
    let a = write(dir.path(), "a.yaml", &text);
    let b = write(dir.path(), "b.yaml", &text);
    let (suites, diags) = load_suites(&[a, b], &project());
    assert_eq!(suites.len(), 1);
    assert_eq!(diags.0.len(), 1);
    assert!(
        diags.0[0]
            .message
            .contains("suite name `demo` is also used by")
    );
}

#[test]
fn repeat_policy_of_the_suite_and_of_cases() {
    let case = "  - {id: a, expected: x, vars: {question: q}}\n";
    let (suite, diags) = load_text(with_cases(case));
    assert_eq!(diags, Vec::<String>::new());
    let plain = suite.expect("loads");
    assert_eq!(
        plain.repeat_policy,
        RepeatPolicy::All,
        "the default is `all`"
    );
    assert_eq!(plain.cases[0].repeat_policy, None);

    let (suite, diags) = load_text(format!(
        "{HEAD}repeat: 5\nrepeat_policy: majority\ncases:\n{case}  - id: b\n    expected: y\n    vars: {{question: q}}\n    repeat_policy: 0.8\n  - {{id: c, expected: z, vars: {{question: q}}, repeat_policy: any}}\n"
    ));
    assert_eq!(diags, Vec::<String>::new());
    let suite = suite.expect("loads");
    assert_eq!(suite.repeat, 5);
    assert_eq!(suite.repeat_policy, RepeatPolicy::Majority);
    let policies: Vec<Option<RepeatPolicy>> = suite.cases.iter().map(|c| c.repeat_policy).collect();
    assert_eq!(
        policies,
        vec![
            None,
            Some(RepeatPolicy::MinRate(0.8)),
            Some(RepeatPolicy::Any)
        ]
    );
    // A policy changes the suite's hash, not the cases' (their history goes on).
    assert_ne!(suite.hash, plain.hash);
    assert_eq!(suite.cases[0].hash, plain.cases[0].hash);
    // An explicit default is the same suite as none at all.
    let (explicit, _) = load_text(format!("{HEAD}repeat_policy: all\ncases:\n{case}"));
    assert_eq!(explicit.expect("loads").hash, plain.hash);
    let (rate, _) = load_text(format!("{HEAD}repeat_policy: 1\ncases:\n{case}"));
    assert_eq!(
        rate.expect("loads").repeat_policy,
        RepeatPolicy::MinRate(1.0)
    );
}

#[test]
fn invalid_repeat_policies_are_located() {
    let case = "  - {id: a, expected: x, vars: {question: q}}\n";
    let cases = [
        (
            "repeat_policy: most",
            "4:16: `repeat_policy` is `all`, `majority`, `any` or a minimum pass rate in (0, 1] such as 0.8, got `most`",
        ),
        (
            "repeat_policy: majorty",
            "4:16: `repeat_policy` is `all`, `majority`, `any` or a minimum pass rate in (0, 1] such as 0.8, got `majorty`; did you mean `majority`?",
        ),
        (
            "repeat_policy: 1.5",
            "4:16: `repeat_policy` is `all`, `majority`, `any` or a minimum pass rate in (0, 1] such as 0.8; the rate must be above 0 and at most 1, got 1.5",
        ),
        (
            "repeat_policy: 0",
            "4:16: `repeat_policy` is `all`, `majority`, `any` or a minimum pass rate in (0, 1] such as 0.8; the rate must be above 0 and at most 1, got 0",
        ),
        (
            "repeat_policy: 80%",
            "4:16: `repeat_policy` is `all`, `majority`, `any` or a minimum pass rate in (0, 1] such as 0.8; write `80%` as a rate: 0.8",
        ),
        (
            "repeat_policy: [all]",
            "4:16: `repeat_policy` is `all`, `majority`, `any` or a minimum pass rate in (0, 1] such as 0.8, found a list",
        ),
    ];
    for (line, want) in cases {
        let (suite, diags) = load_text(format!("{HEAD}{line}\ncases:\n{case}"));
        assert!(suite.is_none(), "{line}");
        assert_eq!(diags, vec![want.to_owned()], "{line}");
    }
    // In a case, inline and in an included JSONL file.
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "cases/r.jsonl",
        "{\"id\": \"j\", \"expected\": \"x\", \"vars\": {\"question\": \"q\"}, \"repeat_policy\": -1}\n",
    );
    let path = write(
        dir.path(),
        "s.yaml",
        format!(
            "{HEAD}cases:\n  - id: a\n    expected: x\n    vars: {{question: q}}\n    repeat_policy: sometimes\n  - include: cases/r.jsonl\n"
        ),
    );
    let (suites, diags) = load_suites(std::slice::from_ref(&path), &project());
    assert!(suites.is_empty());
    let msgs: Vec<String> = diags.0.iter().map(ToString::to_string).collect();
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert!(
        msgs[0].ends_with("s.yaml:8:20: `repeat_policy` is `all`, `majority`, `any` or a minimum pass rate in (0, 1] such as 0.8, got `sometimes`"),
        "{msgs:?}"
    );
    assert!(
        msgs[1].contains("r.jsonl:1:")
            && msgs[1].ends_with("the rate must be above 0 and at most 1, got -1"),
        "{msgs:?}"
    );
}

/// Case and suite hashes pinned to the values computed before the compact case
/// representation (shared default assertions, vars as a sorted list, shared locations):
/// history follows them, so the same content must keep the same hashes.
#[test]
fn hashes_are_pinned_across_representation_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "cases/more.jsonl",
        "{\"id\": \"j1\", \"vars\": {\"question\": \"Q1?\", \"n\": 3, \"z\": [1, {\"b\": 2, \"a\": 1}]}, \"expected\": \"right\"}\n\
         {\"id\": \"j2\", \"vars\": {\"question\": \"Q2?\"}, \"expected\": \"left\", \"assert\": [{\"type\": \"contains\", \"value\": \"x\"}]}\n",
    );
    let path = write(
        dir.path(),
        "s.yaml",
        "suite: pinned\nproviders: [bot]\nprompt: \"Q: {{ question }}\"\n\
         defaults:\n  vars: {lang: en}\n  assert:\n    - type: icontains\n    - type: length\n      max: 500\n\
         cases:\n  - id: y1\n    vars: {question: \"Capital?\"}\n    expected: Paris\n\
         \x20 - id: y2\n    vars: {question: \"Sum?\", lang: fr}\n    expected: \"4\"\n    threshold: 0.5\n    tags: [math]\n\
         \x20 - include: cases/more.jsonl\n",
    );
    let (mut suites, diags) = load_suites(std::slice::from_ref(&path), &project());
    assert!(diags.is_empty(), "{diags}");
    let suite = suites.pop().expect("suite");
    let hashes: Vec<(&str, &str)> = suite
        .cases
        .iter()
        .map(|c| (c.id.as_str(), c.hash.as_str()))
        .collect();
    assert_eq!(hashes, PINNED_CASES);
    assert_eq!(suite.hash, PINNED_SUITE);
}

const PINNED_CASES: [(&str, &str); 4] = [
    ("y1", "a9e19060094e202e"),
    ("y2", "f049943bc203ee69"),
    ("j1", "b3ed10fe1c6a7e9d"),
    ("j2", "3e00d6c6a8273a40"),
];
const PINNED_SUITE: &str = "5bb63c23b126f762";

#[test]
fn default_assertions_are_shared_where_they_resolve_the_same() {
    let (suite, diags) = load_text(with_cases(
        "  - {id: a, vars: {question: q}, expected: right}\n\
         \x20 - {id: b, vars: {question: q}, expected: right}\n\
         \x20 - {id: c, vars: {question: q}, expected: left, assert: [{type: contains, value: x}]}\n",
    ).replace("cases:\n", "defaults:\n  assert:\n    - type: icontains\n    - type: length\n      max: 9\ncases:\n"));
    assert!(diags.is_empty(), "{diags:?}");
    let cases = suite.expect("suite").cases;
    let [a, b, c] = &cases[..] else {
        panic!("three cases");
    };
    // Same resolution, one assertion: `icontains right` for a and b, `length` for all.
    assert!(std::sync::Arc::ptr_eq(&a.asserts[0], &b.asserts[0]));
    assert!(std::sync::Arc::ptr_eq(&a.asserts[1], &b.asserts[1]));
    assert!(std::sync::Arc::ptr_eq(&a.asserts[1], &c.asserts[1]));
    // A different `expected` resolves the default to its own value; own assertions follow.
    assert_eq!(
        a.asserts[0].check,
        Check::IContains {
            value: "right".into()
        }
    );
    assert_eq!(
        c.asserts[0].check,
        Check::IContains {
            value: "left".into()
        }
    );
    assert!(!std::sync::Arc::ptr_eq(&a.asserts[0], &c.asserts[0]));
    assert_eq!(c.asserts.len(), 3);
    assert_eq!(c.asserts[2].check, Check::Contains { value: "x".into() });
    assert_eq!(
        c.asserts[1].check,
        Check::Length {
            min: None,
            max: Some(9),
            unit: LengthUnit::Chars
        }
    );
}

/// Plain JSONL lines take a direct decoding path; lines with anything unusual take the
/// general one. Both build the same cases, with the same hashes, as the YAML form.
#[test]
fn plain_jsonl_cases_equal_their_general_and_yaml_forms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lines = [
        r#"{"id": "p1", "vars": {"question": "Q?", "n": 3, "f": 1.5, "l": [1, {"b": null}]}, "expected": "Yes."}"#,
        r#"{"id": "p2", "vars": {"question": "Q2?"}, "expected": 42, "context": ["a", "b"], "tags": ["t"], "threshold": 0.5, "description": "d"}"#,
        r#"{"id": "p3", "vars": {"question": "Q3?"}, "expected": "x", "context": "one"}"#,
        // General path: own assertions, a policy, a huge integer.
        r#"{"id": "g1", "vars": {"question": "Q?"}, "expected": "y", "assert": [{"type": "equals"}]}"#,
        r#"{"id": "g2", "vars": {"question": "Q?"}, "expected": "y", "repeat_policy": "any"}"#,
        r#"{"id": "g3", "vars": {"question": "Q?", "big": 18446744073709551615}, "expected": "z"}"#,
    ];
    write(dir.path(), "c.jsonl", lines.join("\n") + "\n");
    let head = "suite: demo\nproviders: [bot]\nprompt: \"Q: {{ question }}\"\n";
    let jsonl = write(
        dir.path(),
        "a.yaml",
        format!("{head}cases:\n  - include: c.jsonl\n"),
    );
    let yaml_cases = lines.iter().fold(String::new(), |mut out, l| {
        out.push_str("  - ");
        out.push_str(l);
        out.push('\n');
        out
    });
    let yaml = write(dir.path(), "b.yaml", format!("{head}cases:\n{yaml_cases}"));
    let load = |path: PathBuf| {
        let (mut suites, diags) = load_suites(&[path], &project());
        assert!(diags.is_empty(), "{diags}");
        suites.pop().expect("suite")
    };
    let (a, b) = (&load(jsonl), &load(yaml));
    assert_eq!(a.cases.len(), 6);
    for (x, y) in a.cases.iter().zip(&b.cases) {
        assert_eq!(x.id, y.id);
        assert_eq!(x.hash, y.hash, "{}", x.id);
        assert_eq!(x.vars, y.vars, "{}", x.id);
        assert_eq!(x.expected, y.expected);
        assert_eq!(x.context, y.context);
        assert_eq!(x.tags, y.tags);
        assert_eq!(x.threshold, y.threshold);
        assert_eq!(x.repeat_policy, y.repeat_policy);
        let checks = |c: &crate::model::Case| -> Vec<Check> {
            c.asserts.iter().map(|a| a.check.clone()).collect()
        };
        assert_eq!(checks(x), checks(y), "{}", x.id);
        assert_eq!(
            x.location.line,
            lines
                .iter()
                .position(|l| l.contains(&format!("\"{}\"", x.id)))
                .unwrap()
                + 1
        );
    }
    assert_eq!(
        a.cases[0].asserts[0].check,
        Check::Contains {
            value: "Yes".into()
        }
    );
    assert_eq!(a.cases[1].expected.as_deref(), Some("42"));
    assert_eq!(a.cases[4].repeat_policy, Some(RepeatPolicy::Any));
    assert_eq!(a.hash, b.hash);
}

#[test]
fn jsonl_lines_with_errors_are_still_located() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "c.jsonl",
        "{\"id\": \"a\", \"vars\": {\"question\": \"q\"}, \"expected\": \"x\"}\n\
         {\"id\": \"a\", \"vars\": {\"question\": \"q\"}, \"expected\": \"x\"}\n\
         {\"id\": \"b\", \"vars\": {}, \"expected\": \"x\"}\n\
         {\"id\": \"c\", \"vars\": {\"question\": \"q\"}, \"expected\": [1]}\n\
         {\"id\": \"d\", \"vars\": {\"question\": \"q\"}, \"expected\": \"x\", \"threshold\": 2}\n\
         {\"id\": \"e\", \"vars\": {\"question\": \"q\"}, \"expexted\": \"x\"}\n",
    );
    let path = write(
        dir.path(),
        "s.yaml",
        "suite: demo\nproviders: [bot]\nprompt: \"Q: {{ question }}\"\ncases:\n  - include: c.jsonl\n",
    );
    let (suites, diags) = load_suites(std::slice::from_ref(&path), &project());
    assert!(suites.is_empty());
    let lines: Vec<usize> = diags.0.iter().map(|d| d.location.line).collect();
    assert_eq!(lines, [2, 3, 4, 5, 6], "{diags}");
    let text = diags.render();
    assert!(text.contains("duplicate case id `a`"), "{text}");
    assert!(text.contains("does not define `question`"), "{text}");
    assert!(text.contains("did you mean `expected`?"), "{text}");
}

/// Both streaming passes against the whole load: `check_suites` finds the same problems and
/// the same hash, `feed_suite` hands on the same cases, in order, after the head.
#[test]
fn streaming_passes_match_the_whole_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "cases/a.jsonl",
        "{\"id\": \"a1\", \"vars\": {\"question\": \"q1\"}, \"expected\": \"x\"}\n\
         {\"id\": \"a2\", \"vars\": {\"question\": \"q2\"}, \"expected\": \"y\", \"repeat_policy\": \"any\"}\n\
         {\"id\": \"a3\", \"vars\": {\"question\": \"q3\"}, \"assert\": [{\"type\": \"contains\", \"value\": \"z\"}]}\n",
    );
    let good = write(
        dir.path(),
        "good.yaml",
        format!(
            "{HEAD}repeat: 2\ngates:\n  pass_rate: {{min: 0.5}}\ncases:\n  - {{id: inline, expected: w, vars: {{question: q0}}}}\n  - include: cases/a.jsonl\n"
        ),
    );
    let files = vec![good.clone()];
    let (whole, diags) = load_suites(&files, &project());
    assert!(diags.is_empty(), "{diags}");
    let whole = &whole[0];
    assert_eq!(whole.cases.len(), 4);

    let mut checked_cases = Vec::new();
    let (checked, diags) = check_suites(&files, &project(), &mut |i, c| {
        checked_cases.push((i, c.id.clone(), c.hash.clone()));
    });
    assert!(diags.is_empty(), "{diags}");
    assert_eq!(checked.len(), 1);
    assert!(checked[0].cases.is_empty(), "a checked suite keeps no case");
    assert_eq!(checked[0].hash, whole.hash, "same suite hash");
    assert_eq!(checked[0].gates, whole.gates);
    let expected: Vec<_> = whole
        .cases
        .iter()
        .map(|c| (0, c.id.clone(), c.hash.clone()))
        .collect();
    assert_eq!(checked_cases, expected);

    let order = std::cell::RefCell::new(Vec::new());
    let mut fed = Vec::new();
    feed_suite(
        &good,
        &project(),
        &mut |h| order.borrow_mut().push(format!("head {}", h.name)),
        &mut |c| {
            order.borrow_mut().push(c.id.clone());
            fed.push(c);
        },
    );
    assert_eq!(
        order.into_inner(),
        ["head demo", "inline", "a1", "a2", "a3"]
    );
    assert_eq!(fed, whole.cases, "the fed cases are the loaded ones");

    // A problem late in an include: the check reports what the whole load reports; the feed
    // skips that case and hands on the others.
    std::fs::write(
        dir.path().join("cases/a.jsonl"),
        "{\"id\": \"a1\", \"vars\": {\"question\": \"q1\"}, \"expected\": \"x\"}\n\
         {\"id\": \"a1\", \"vars\": {\"question\": \"q2\"}, \"expected\": \"y\"}\n\
         {\"id\": \"a3\", \"vars\": {\"question\": \"q3\"}, \"assert\": [{\"type\": \"containz\", \"value\": \"z\"}]}\n",
    )
    .expect("rewrite");
    let (_, whole_diags) = load_suites(&files, &project());
    let (checked, diags) = check_suites(&files, &project(), &mut |_, _| {});
    assert!(checked.is_empty());
    assert_eq!(diags, whole_diags);
    assert_eq!(diags.0.len(), 2, "{diags}");
    let mut fed = Vec::new();
    feed_suite(&good, &project(), &mut |_| {}, &mut |c| fed.push(c.id));
    assert_eq!(
        fed,
        ["inline", "a1", "a1"],
        "unchecked: the duplicate is fed, the bad case is not"
    );

    // A problem in the head: nothing is fed at all.
    let bad = write(
        dir.path(),
        "bad.yaml",
        format!("{HEAD}repeet: 2\ncases:\n  - {{id: i, expected: w, vars: {{question: q}}}}\n"),
    );
    let mut heads = 0;
    let mut fed = 0;
    feed_suite(&bad, &project(), &mut |_| heads += 1, &mut |_| fed += 1);
    assert_eq!((heads, fed), (0, 0));
}

#[test]
fn settings_name_each_top_level_setting_without_secrets() {
    let text = format!(
        "{HEAD}system: \"You are terse.\"\ndefaults:\n  vars: {{question: \"${{SETTINGS_TEST_SECRET:-s3cr3t-value}}\"}}\n  assert:\n    - type: icontains\n      value: a\n    - type: not-is-refusal\n  threshold: 0.7\nrepeat: 2\ngates:\n  pass_rate: {{min: 0.9}}\nalerts:\n  - name: drop\n    metric: pass_rate\n    drop: 0.1\ncases:\n  - id: a\n"
    );
    let (suite, errs) = load_text(&text);
    assert!(errs.is_empty(), "{errs:?}");
    let s = suite.expect("suite").settings;
    let shown = |k: &str| s.get(k).map(|v| v.shown.clone());
    assert_eq!(shown("provider.bot.type").as_deref(), Some("echo"));
    assert_eq!(
        shown("defaults.assert").as_deref(),
        Some("icontains, not-is-refusal")
    );
    assert_eq!(shown("defaults.threshold").as_deref(), Some("0.7"));
    assert_eq!(shown("repeat").as_deref(), Some("2"));
    assert_eq!(shown("gates.pass_rate").as_deref(), Some("min 0.9"));
    assert_eq!(shown("alerts.drop").as_deref(), Some("pass_rate"));
    assert_eq!(shown("system").as_deref(), Some(""));
    assert_eq!(shown("defaults.vars.question").as_deref(), Some(""));
    assert!(s.contains_key("prompt"));
    let all = serde_json::to_string(&s).expect("json");
    assert!(!all.contains("s3cr3t"), "{all}");
    assert!(!all.contains("terse"), "{all}");
    // One default assertion fewer: that setting alone changes.
    let fewer = text.replace("    - type: not-is-refusal\n", "");
    let (suite, errs) = load_text(&fewer);
    assert!(errs.is_empty(), "{errs:?}");
    let t = suite.expect("suite").settings;
    let differ: Vec<&String> = s
        .keys()
        .filter(|k| s.get(*k).map(|v| &v.digest) != t.get(*k).map(|v| &v.digest))
        .collect();
    assert_eq!(differ, vec!["defaults.assert"]);
}

/// Audit traffic 11 (C2): a coarser tier kept shorter than a finer one, or a tier kept shorter
/// than the windows read from it need, is refused where it is written.
#[test]
fn retention_keeps_coarser_tiers_at_least_as_long_as_finer_ones() {
    let bad = tempfile::tempdir().expect("tempdir");
    let source = |retention: &str| {
        format!(
            "traffic:\n  - id: bot\n    path: logs/*.jsonl\n    fields: {{time: /ts}}\n    retention: {retention}\n"
        )
    };
    let path = write(
        bad.path(),
        "evalwatch.yaml",
        source("{minute: 30d, hour: 1h, day: 1d}"),
    );
    assert_eq!(
        project_errors(&path),
        vec![
            "5:36: `retention.hour` (1h) is shorter than `retention.minute` (30d): keep each tier at least as long as the finer ones, or the longer windows lose what the finer buckets still hold",
            "5:45: `retention.day` (1d) is shorter than `retention.minute` (30d): keep each tier at least as long as the finer ones, or the longer windows lose what the finer buckets still hold",
        ]
    );
    let path = write(bad.path(), "evalwatch.yaml", source("{minute: 200d}"));
    assert_eq!(
        project_errors(&path),
        vec![
            "5:25: `retention.hour` (180d, the default) is shorter than `retention.minute` (200d): keep each tier at least as long as the finer ones, or the longer windows lose what the finer buckets still hold",
        ]
    );
    let path = write(
        bad.path(),
        "evalwatch.yaml",
        source("{minute: 1d, hour: 7d, day: 30d}"),
    );
    assert_eq!(
        project_errors(&path),
        vec![
            "5:25: `retention.minute` (1d) is shorter than the 2d that the 24h window and the one before it read from minute buckets",
            "5:35: `retention.hour` (7d) is shorter than the 14d that the 7d window and the one before it read from hour buckets",
            "5:44: `retention.day` (30d) is shorter than the 60d that the 30d window and the one before it read from day buckets",
        ]
    );
    for good in [
        "{minute: 2d, hour: 14d, day: 60d}",
        "{records: 1d, minute: 2d, hour: 30d, day: forever}",
        "{minute: forever, hour: forever, day: forever}",
    ] {
        let path = write(bad.path(), "evalwatch.yaml", source(good));
        let config = load_project(Some(&path), bad.path()).map_err(|e| e.to_string());
        assert!(config.is_ok(), "{good}: {config:?}");
    }
}

/// Audit suites L2 (C3): a `drop` or `rise` larger than the metric's whole scale can never fire
/// (`drop: 0.05` is 5 points of a rate, so 1.5 is 150 points): refused where it is written.
#[test]
fn a_drop_beyond_the_metric_scale_is_refused_where_written() {
    let (_, diags) = load_text(format!(
        "{HEAD}alerts:\n  - {{metric: pass_rate, drop: 1.5}}\n  - {{metric: human_score, rise: 4.5}}\n  - {{metric: pass_rate, drop: 1.0}}\n  - {{metric: latency_p95_ms, rise: 1500}}\ncases:\n  - {{id: a, expected: x, vars: {{question: q}}}}\n"
    ));
    assert_eq!(
        diags,
        vec![
            "5:31: `drop: 1.5` can never fire: `pass_rate` is a fraction from 0 to 1, so it can fall by 1 at most (`drop: 0.05` is 5 points)",
            "6:33: `rise: 4.5` can never fire: `human_score` is a mean grade from 1 to 5, so it can rise by 4 at most",
        ]
    );
}

/// Audit suites L2 (C4): a sink with two bad settings reports both, each at its value.
#[test]
fn every_bad_setting_of_a_sink_is_reported_at_once() {
    let bad = tempfile::tempdir().expect("tempdir");
    let path = write(
        bad.path(),
        "evalwatch.yaml",
        "sinks:\n  - {id: f, type: file, path: a.jsonl, timeout: 0s, retries: 11}\n  - {id: g, type: command, min_severity: loud}\n",
    );
    assert_eq!(
        project_errors(&path),
        vec![
            "2:49: sink `f`: `timeout` must be a duration from 1s to 5m (`10s`, `2m`), found \"0s\"",
            "2:62: sink `f`: `retries` must be a whole number 0..=10, found 11",
            "3:5: sink `g`: a command sink needs `command`",
            "3:42: sink `g`: `min_severity` must be `info`, `warning` or `critical`, found \"loud\"",
        ]
    );
}

/// A `min`/`max` outside a bounded metric's values never fires or fires on every run: refused
/// where written (a `max: 5` meant as 5% on a rate would watch nothing).
#[test]
fn a_bound_outside_the_metric_values_is_refused_where_written() {
    let (_, diags) = load_text(format!(
        "{HEAD}alerts:\n  - {{metric: error_rate, max: 5}}\n  - {{metric: human_score, min: 0.8}}\n  - {{metric: pass_rate, min: 1.0}}\n  - {{metric: latency_p95_ms, max: 1500}}\ncases:\n  - {{id: a, expected: x, vars: {{question: q}}}}\n"
    ));
    assert_eq!(
        diags,
        vec![
            "5:31: `max: 5` is outside `error_rate`'s values, a fraction from 0 to 1: it can never fire (`max: 0.05` is 5%)",
            "6:32: `min: 0.8` is outside `human_score`'s values, a mean grade from 1 to 5: it can never fire",
        ]
    );
}
