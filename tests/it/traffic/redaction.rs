//! A source's `redact:` applies to every text value that is stored or shown: labels and error
//! kinds as well as the text, and the messages about malformed records.

use super::ingest::{dump, ingest, json, recent_start};
use crate::support::{Project, code, stderr, stdout};

const KEY: &str = "sk-proj-abcdefghijklmnopqrstuvwx1234567890";

fn config() -> String {
    "traffic:
  - id: app
    path: logs/a.jsonl
    fields: {time: /ts, trace_id: /tid, latency_ms: /ms, tokens_in: /tin, input: /q, feature: /feat, segment: /seg, model: /model, region: /region, error: /err, error_kind: /err/type, user: /user}
    sample: 100%
    store_text: all
    redact: [email, phone, secret]
"
    .to_owned()
}

/// Everything stored for the project, as text: the store's traffic tables.
fn store_text(p: &Project) -> String {
    dump(p)
}

#[test]
fn labels_and_error_kinds_are_redacted_in_the_store_and_the_traffic_output() {
    let p = Project::new();
    p.write("evalwatch.yaml", &config());
    let t = recent_start();
    p.write(
        "logs/a.jsonl",
        &format!(
            r#"{{"ts":{t},"tid":"r1","ms":10,"q":"my key {KEY}","feat":"dave@example.com","seg":"{KEY}","model":"m","region":"+1 415 555 0132","err":{{"type":"auth failed for eve@example.com"}},"user":"user-42"}}
"#
        ),
    );
    let out = ingest(&p, &[]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let stored = store_text(&p);
    for raw in ["dave@example.com", KEY, "555 0132", "eve@example.com"] {
        assert!(!stored.contains(raw), "`{raw}` is in the store:\n{stored}");
    }
    for mark in [
        "[redacted:email]",
        "[redacted:secret]",
        "[redacted:phone]",
        "auth failed for [redacted:email]",
    ] {
        assert!(stored.contains(mark), "no `{mark}` in the store:\n{stored}");
    }
    let out = p.run(&["traffic", "--by", "segment"]);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!text.contains(KEY), "{text}");
    assert!(text.contains("[redacted:secret]"), "{text}");
    let out = p.run(&["traffic", "--format", "json"]);
    let j = json(&out);
    assert_eq!(
        j["current"]["errors_by_kind"],
        serde_json::json!({"auth failed for [redacted:email]": 1}),
        "{j}"
    );
    assert_eq!(
        j["usage"]["by_feature"],
        serde_json::json!({"[redacted:email]": 1}),
        "{j}"
    );
    assert!(!j.to_string().contains("example.com"), "{j}");
}

/// An OTLP span's status message becomes its error kind: redacted too (`collect` maps spans
/// through the same stage as a file of spans).
#[test]
fn an_otlp_status_message_is_redacted_as_an_error_kind() {
    let p = Project::new();
    p.write(
        "evalwatch.yaml",
        "traffic:\n  - id: spans\n    format: otlp\n    path: otel/spans.jsonl\n    redact: [secret]\n",
    );
    let t = recent_start();
    let span = format!(
        r#"{{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"chat","kind":3,"startTimeUnixNano":"{t}000000000","endTimeUnixNano":"{t}250000000","attributes":[{{"key":"gen_ai.request.model","value":{{"stringValue":"gpt-4o"}}}}],"status":{{"code":2,"message":"rate limited {KEY}"}}}}"#
    );
    p.write(
        "otel/spans.jsonl",
        &format!("{{\"resourceSpans\":[{{\"scopeSpans\":[{{\"spans\":[{span}]}}]}}]}}\n"),
    );
    let out = p.run(&["ingest", "--format", "json"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(!store_text(&p).contains(KEY), "{}", store_text(&p));
    let j = json(&p.run(&["traffic", "--format", "json"]));
    assert_eq!(
        j["current"]["errors_by_kind"],
        serde_json::json!({"rate limited [redacted:secret]": 1}),
        "{j}"
    );
}

/// A malformed record's message quotes what was found with the source's redaction applied
/// (a secret cut at 40 characters would still leak most of it), and never quotes a user id.
#[test]
fn messages_about_malformed_records_carry_no_secret_and_no_user_id() {
    let t = recent_start();
    let log = format!(
        r#"{{"ts":{t},"tid":"r1","ms":"{KEY}"}}
{{"ts":{t},"tid":"r2","ms":1,"tin":"grace@example.com"}}
{{"ts":{t},"tid":"r3","ms":1,"user":{{"id":"user-46@example.com"}}}}
{{"ts":{t},"tid":"r4","ms":1,"user":["user-47"]}}
"#
    );
    // `--format json`'s errors, then stderr of a text ingest.
    for format in ["json", "text"] {
        let p = Project::new();
        p.write("evalwatch.yaml", &config());
        p.write("logs/a.jsonl", &log);
        let out = p
            .cmd()
            .env("EVALWATCH_TRAFFIC_SALT", "salt")
            .args(["ingest", "--format", format])
            .output()
            .unwrap();
        assert_eq!(code(&out), 3, "{}{}", stdout(&out), stderr(&out));
        let said = if format == "json" {
            json(&out)["errors"].to_string()
        } else {
            stderr(&out)
        };
        for raw in ["sk-proj-abcdef", "grace@", "user-46", "user-47"] {
            assert!(!said.contains(raw), "`{raw}` is echoed: {said}");
        }
        for want in [
            "[redacted:secret]",
            "[redacted:email]",
            "field `user` (/user): an object",
            "field `user` (/user): a list",
        ] {
            assert!(said.contains(want), "no `{want}` in: {said}");
        }
    }
}
