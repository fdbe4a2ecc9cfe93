//! `ingest` of OTLP/JSON files: spans whose timing or ids cannot be read, and errors that name
//! the span of the line they are about.

use super::ingest::{error_lines, json, recent_start};
use crate::support::{Project, code, stderr, stdout};

/// One span: trace id, span id, start and end (unix nanoseconds, as OTLP/JSON writes them),
/// and its attributes after the model's.
fn span(trace: &str, id: &str, start: &str, end: &str, attrs: &str) -> String {
    format!(
        r#"{{"traceId":"{trace}","spanId":"{id}","name":"chat","startTimeUnixNano":"{start}","endTimeUnixNano":"{end}","attributes":[{{"key":"gen_ai.request.model","value":{{"stringValue":"m"}}}}{attrs}]}}"#
    )
}

fn line(spans: &[String]) -> String {
    format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
        spans.join(",")
    )
}

#[test]
fn spans_with_broken_timing_or_ids_and_bad_numbers_are_malformed_and_named() {
    let p = Project::new();
    p.write(
        "evalwatch.yaml",
        "traffic:\n  - id: spans\n    format: otlp\n    path: otel/spans.jsonl\n    sample: 100%\n",
    );
    let t = recent_start();
    let (start, end) = (format!("{t}000000000"), format!("{t}250000000"));
    let trace = "5b8efff798038103d269b633813fc60c";
    let tokens = |n: &str| {
        format!(r#",{{"key":"gen_ai.usage.output_tokens","value":{{"intValue":"{n}"}}}}"#)
    };
    let first = line(&[
        span(trace, "eee19b7ec3c1b171", &start, &end, &tokens("9")),
        span(trace, "eee19b7ec3c1b172", &end, &start, ""),
        span(trace, "eee19b7ec3c1b173", "0", &end, ""),
        span(&trace[..30], "eee19b7ec3c1b174", &start, &end, ""),
    ]);
    // An intValue past i64 is refused by OTLP/JSON itself; a string attribute carries it.
    let huge =
        r#",{"key":"gen_ai.usage.output_tokens","value":{"stringValue":"18446744073709551615"}}"#;
    let second = line(&[
        span(trace, "eee19b7ec3c1b175", &start, &end, huge),
        span(trace, "eee19b7ec3c1b176", &start, &end, &tokens("3")),
    ]);
    p.write("otel/spans.jsonl", &format!("{first}\n{second}\n"));
    let out = p.run(&["ingest", "--format", "json"]);
    assert_eq!(code(&out), 3, "{}{}", stdout(&out), stderr(&out));
    let j = json(&out);
    assert_eq!(
        (j["new"].as_u64(), j["malformed"].as_u64()),
        (Some(2), Some(4)),
        "{j}"
    );
    assert_eq!(
        error_lines(&j),
        [
            format!(
                "otel/spans.jsonl:1: span {trace}:eee19b7ec3c1b172: it ends 250 ms before it starts (endTimeUnixNano < startTimeUnixNano)"
            ),
            format!(
                "otel/spans.jsonl:1: span {trace}:eee19b7ec3c1b173: startTimeUnixNano is 0 (unset): the span has no start time"
            ),
            format!(
                "otel/spans.jsonl:1: span {}:eee19b7ec3c1b174: its trace id is 15 bytes: OTLP trace ids are 16",
                &trace[..30]
            ),
            format!(
                "otel/spans.jsonl:2: span {trace}:eee19b7ec3c1b175: field `tokens_out` (/genai/tokens_out): 18446744073709551615 is too large: a count up to 9223372036854775807 was expected"
            ),
        ]
    );
    // Only the two whole spans are stored, with their own figures.
    let db = rusqlite::Connection::open(p.db()).expect("open store");
    let rows: Vec<(String, i64, Option<i64>)> = db
        .prepare("SELECT trace_id, time_ms, tokens_out FROM traffic_records ORDER BY tokens_out")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        rows,
        [
            (trace.to_owned(), t * 1000, Some(3)),
            (trace.to_owned(), t * 1000, Some(9)),
        ]
    );
}
