//! `traffic:` sources are checked by `validate` like suites: every problem located.

use crate::support::{Project, code, stderr, stdout};

const SUITE: &str =
    "suite: a\nproviders: [{id: e, type: echo}]\nprompt: hi\ncases:\n  - {id: c, expected: hi}\n";

#[test]
fn every_bad_field_of_a_source_is_reported_where_it_is_written() {
    let p = Project::new();
    p.write("suites/a.yaml", SUITE);
    p.write(
        "evalwatch.yaml",
        "traffic:
  - id: Bad Id
    formt: jsonl
  - id: bot
    format: jsnl
    fields: {time: ts, ouput: /a, model: /m~2}
    sample: 150%
    store_text: some
    redact: [emial, {regex: \"(\"}]
    retention: {records: 30x, minut: 1d}
    monitor:
      - type: llm-rubric
        rubric: polite
      - type: icontans
        value: x
    alerts:
      - {metric: traffic.eror_rate, max: 0.05}
  - id: csv-src
    format: csv
    fields: {model: m}
",
    );
    let out = p.run(&["validate"]);
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    let err = stderr(&out);
    for line in [
        "evalwatch.yaml:2:9: invalid traffic source id `Bad Id`",
        "evalwatch.yaml:3:5: unknown field `formt` in a traffic source; did you mean `format`?",
        "evalwatch.yaml:5:13: unknown traffic format `jsnl`: use jsonl, csv, otlp; did you mean `jsonl`?",
        "evalwatch.yaml:6:20: `fields.time`: `ts` is not a JSON pointer: it must start with `/` (did you mean `/ts`?)",
        "evalwatch.yaml:6:24: unknown field `ouput` in `fields`; did you mean `output`?",
        "evalwatch.yaml:6:42: `fields.model`: `/m~2` is not a JSON pointer",
        "evalwatch.yaml:7:13: `sample`: `150%` is not between 0% and 100%",
        "evalwatch.yaml:8:17: `store_text` must be none, sampled or all, got `some`",
        "evalwatch.yaml:9:14: unknown redaction `emial`",
        "evalwatch.yaml:9:29: redact regex `(` does not compile: unclosed group\n",
        "evalwatch.yaml:10:26: `retention.records` must be a duration",
        "evalwatch.yaml:10:31: unknown field `minut` in `retention`; did you mean `minute`?",
        "evalwatch.yaml:14:15: unknown assertion type `icontans`; did you mean `icontains`?",
        "evalwatch.yaml:17:18: unknown traffic metric `traffic.eror_rate`; did you mean `traffic.error_rate`?",
        "evalwatch.yaml:20:13: traffic source `csv-src`: `fields` needs `time`",
    ] {
        assert!(err.contains(line), "missing `{line}` in:\n{err}");
    }
    // Judge monitors are accepted (tests/it/traffic/judge.rs checks their judges).
    assert!(!err.contains("llm-rubric"), "{err}");
    // A `time` written with a bad pointer is not also reported missing.
    assert!(!err.contains("`bot`: `fields` needs `time`"), "{err}");
}

#[test]
fn a_pointer_that_matches_nothing_in_the_first_records_is_a_warning() {
    let p = Project::new();
    p.write("suites/a.yaml", SUITE);
    p.write(
        "logs/app.jsonl",
        "{\"ts\": 1765000000, \"model\": \"m\", \"latency_ms\": 5}\n",
    );
    p.write(
        "evalwatch.yaml",
        "traffic:
  - id: bot
    path: logs/*.jsonl
    fields: {time: /ts, model: /model, latency_ms: /latncy_ms}
",
    );
    let out = p.run(&["validate"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("evalwatch.yaml:4:52: `fields.latency_ms` (`/latncy_ms`) matches nothing in the first 1 records of logs/app.jsonl"),
        "{err}"
    );
    assert!(!err.contains("fields.model"), "{err}");
}

#[test]
fn validate_on_a_traffic_only_project_checks_its_sources() {
    let p = Project::new();
    p.write(
        "evalwatch.yaml",
        "traffic:
  - id: bot
    path: logs/*.jsonl
    fields: {time: /ts, model: /model, error: /error}
    monitor:
      - type: not-is-refusal
    alerts:
      - {metric: traffic.error_rate, max: 0.05, window: 15m}
",
    );
    let out = p.run(&["-v", "validate"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains(
            "ok: no suites (no suites/ folder); 1 traffic source (1 monitor assertion, 1 alert rule)"
        ),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("evalwatch.yaml:2:")
            && stderr(&out).contains("traffic source `bot`: ok"),
        "{}",
        stderr(&out)
    );
    // The sources are still judged: a bad rule in a traffic-only project is exit 2.
    p.write(
        "evalwatch.yaml",
        "traffic:\n  - id: bot\n    fields: {time: /ts}\n    alerts:\n      - {metric: traffic.error_rate, max: 0.05, min_requests: many}\n",
    );
    let out = p.run(&["validate"]);
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains("evalwatch.yaml:5:63: `min_requests` must be a whole number"),
        "{}",
        stderr(&out)
    );
}

/// `ingest` with a mistyped source name says which source was meant, as `traffic` and
/// `collect` do, with several sources or one; a path that exists is still read as a path.
#[test]
fn ingest_with_a_mistyped_source_says_did_you_mean() {
    let p = Project::new();
    let two = "traffic:\n  - id: app-one\n    path: logs/a.jsonl\n    fields: {time: /ts}\n  - id: app-two\n    path: logs/b.jsonl\n    fields: {time: /ts}\n";
    p.write("evalwatch.yaml", two);
    p.write("logs/a.jsonl", "");
    for args in [
        &["ingest", "app-on"][..],
        &["ingest", "app-on", "logs/a.jsonl"],
    ] {
        let out = p.run(args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("no such source in evalwatch.yaml; did you mean `app-one`?"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    // Paths alone with several sources: the source still has to be named.
    let out = p.run(&["ingest", "logs/a.jsonl"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("name one"), "{}", stderr(&out));
    // One source: a near miss of its name is said as one, a path is read as a path.
    p.write(
        "evalwatch.yaml",
        "traffic:\n  - id: app-one\n    path: logs/a.jsonl\n    fields: {time: /ts}\n",
    );
    let out = p.run(&["ingest", "app-on"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("did you mean `app-one`?"),
        "{}",
        stderr(&out)
    );
    let out = p.run(&["ingest", "logs/a.jsonl"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}
