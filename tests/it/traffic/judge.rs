//! Judge monitors on traffic: sampled records judged through the judge engine and its cache
//! by a loopback judge speaking the OpenAI chat wire format; the judge's cost apart from the
//! traffic's; an outage leaves the records waiting (with why) and the next ingest judges them.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::alerts::traffic_page;
use super::ingest::{SALT, json, recent_start};
use crate::collect::{start_collect, stop};
use crate::support::{Project, code, serve_on_loopback, stderr, stdout};

#[derive(Default)]
pub(crate) struct Judge {
    /// Every chat request body.
    chats: Mutex<Vec<String>>,
    /// Answer 500 to everything.
    down: AtomicBool,
}

impl Judge {
    pub(crate) fn calls(&self) -> usize {
        self.chats.lock().expect("lock").len()
    }
}

async fn chat(
    axum::extract::State(judge): axum::extract::State<Arc<Judge>>,
    body: String,
) -> Response {
    if judge.down.load(Ordering::SeqCst) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"error":{"message":"judge exploded"}}"#,
        )
            .into_response();
    }
    judge.chats.lock().expect("lock").push(body.clone());
    // The answer graded is inside the judge prompt: GOOD passes, anything else fails.
    let grade = if body.contains("GOOD") {
        r#"{"reason": "polite", "score": 9, "pass": true}"#
    } else {
        r#"{"reason": "rude", "score": 2, "pass": false}"#
    };
    let body = json!({
        "id": "chatcmpl-j", "object": "chat.completion", "created": 1, "model": "judge-1",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": grade}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    });
    ([("content-type", "application/json")], body.to_string()).into_response()
}

pub(crate) fn serve() -> (String, Arc<Judge>) {
    let judge = Arc::new(Judge::default());
    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .with_state(Arc::clone(&judge));
    (format!("http://{}/v1", serve_on_loopback(app)), judge)
}

/// A project whose source samples every record and monitors it with an `llm-rubric` judged
/// by the loopback judge at `base` ($1 / $2 per million tokens in / out).
pub(crate) fn project(base: &str) -> Project {
    let p = Project::new();
    p.write(
        "evalwatch.yaml",
        &format!(
            "{}traffic:
  - id: bot
    path: logs/*.jsonl
    fields: {{time: /ts, input: /q, output: /a, feature: /feature, trace_id: /trace, cost_usd: /cost}}
    sample: 100%
    redact: [email]
    monitor:
      - type: llm-rubric
        value: Answers politely.
",
            judge_provider(base)
        ),
    );
    p
}

/// The loopback judge at `base` as the project's judge (one retry, $1 / $2 per million
/// tokens in / out), as the top of an evalwatch.yaml.
fn judge_provider(base: &str) -> String {
    format!(
        "providers:
  - id: judge
    type: openai
    model: judge-1
    base_url: {base}
    retries: {{max: 1, base_delay: 10ms, max_delay: 20ms}}
    pricing: {{input_per_mtok: 1.0, output_per_mtok: 2.0}}
judge: judge
"
    )
}

/// Records `from..to` (trace ids `prefix{i}`), one a second from `start`: even ones GOOD,
/// odd ones BAD, each answer with a user's e-mail address in it; the text depends on
/// `i % 6` only, so that two files with the same range of `i % 6` hold the same texts.
pub(crate) fn log(start: i64, prefix: &str, from: i64, to: i64) -> String {
    let mut out = String::new();
    for i in from..to {
        let verdict = if i % 2 == 0 { "GOOD" } else { "BAD" };
        let _ = writeln!(
            out,
            r#"{{"ts": {}, "trace": "{prefix}{i}", "q": "question {}", "a": "{verdict} answer {}, write to jane{}@example.com", "feature": "chat", "cost": 0.001}}"#,
            start + i,
            i % 6,
            i % 6,
            i % 6,
        );
    }
    out
}

pub(crate) fn ingest(p: &Project) -> std::process::Output {
    p.cmd()
        .env("EVALWATCH_TRAFFIC_SALT", SALT)
        .env("OPENAI_API_KEY", "sk-test")
        .args(["ingest", "--format", "json"])
        .output()
        .expect("run evalwatch")
}

fn traffic(p: &Project) -> Value {
    let out = p
        .cmd()
        .args(["traffic", "--window", "24h", "--format", "json"])
        .output()
        .expect("run evalwatch");
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    json(&out)
}

/// (status, count) of the stored records.
fn statuses(p: &Project) -> Vec<(String, i64)> {
    let conn = rusqlite::Connection::open(p.db()).expect("open store");
    let mut st = conn
        .prepare("SELECT status, count(*) FROM traffic_records GROUP BY status ORDER BY status")
        .expect("query");
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("read")
}

#[test]
fn judge_monitors_judge_the_sample_through_the_engine_and_its_cache_and_count_their_cost() {
    let (base, judge) = serve();
    let p = project(&base);
    let start = recent_start();
    p.write("logs/a.jsonl", &log(start, "a", 0, 6));
    let out = ingest(&p);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let j = json(&out);
    assert_eq!(j["new"], 6, "{j}");
    // Read, each record waits for the judge: none is decided as it is read.
    assert_eq!(
        (&j["scored"], &j["awaiting_judge"]),
        (&json!(0), &json!(6)),
        "{j}"
    );
    assert_eq!(j["judge"]["judged"], 6, "{j}");
    assert_eq!(j["judge"]["calls"], 6, "{j}");
    assert_eq!(j["judge"]["stopped"], Value::Null, "{j}");
    assert_eq!(judge.calls(), 6);
    // The judge saw the stored text: redacted.
    let bodies = judge.chats.lock().expect("lock").join("\n");
    assert!(bodies.contains("GOOD answer 0"), "{bodies}");
    assert!(!bodies.contains("@example.com"), "{bodies}");
    assert_eq!(
        statuses(&p),
        vec![("failed".to_owned(), 3), ("passed".to_owned(), 3)]
    );

    // Other records with the same texts: the cache answers, no judge call.
    p.write("logs/b.jsonl", &log(start + 100, "b", 0, 6));
    let out = ingest(&p);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let j = json(&out);
    assert_eq!(j["new"], 6, "{j}");
    assert_eq!(j["judge"]["judged"], 6, "{j}");
    assert_eq!(j["judge"]["calls"], 0, "{j}");
    assert_eq!(j["judge"]["cached"], 6, "{j}");
    assert_eq!(judge.calls(), 6, "the cache answered");

    let t = traffic(&p);
    let cur = &t["current"];
    assert_eq!(cur["volume"], 12, "{t}");
    assert_eq!(cur["scored"], 12, "{t}");
    assert_eq!(cur["pass_rate"], 0.5, "{t}");
    // Traffic cost is the records'; the judge's is apart: 6 calls of 10 + 5 tokens.
    assert!(
        (cur["cost_usd"].as_f64().expect("cost") - 0.012).abs() < 1e-9,
        "{t}"
    );
    let jc = &t["judge"]["current"];
    assert_eq!(jc["calls"], 6, "{t}");
    assert_eq!(jc["cached"], 6, "{t}");
    assert_eq!(jc["pending"], 0, "{t}");
    let per_call = (10.0 * 1.0 + 5.0 * 2.0) / 1e6;
    assert!(
        (jc["cost_usd"].as_f64().expect("judge cost") - 6.0 * per_call).abs() < 1e-12,
        "{t}"
    );
}

#[test]
fn a_judge_outage_never_stops_ingest_and_the_next_ingest_judges_what_waited() {
    let (base, judge) = serve();
    let p = project(&base);
    let start = recent_start();
    p.write("logs/a.jsonl", &log(start, "a", 0, 6));
    judge.down.store(true, Ordering::SeqCst);
    let out = p
        .cmd()
        .env("EVALWATCH_TRAFFIC_SALT", SALT)
        .env("OPENAI_API_KEY", "sk-test")
        .arg("ingest")
        .output()
        .expect("run evalwatch");
    // Every record is read and counted; the judge's failure is a warning.
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("judge monitors stopped: judge `judge` failed after 2 attempts"),
        "{err}"
    );
    assert!(
        stdout(&out).contains("6 sampled (0 scored, 6 left to the judge)"),
        "{}",
        stdout(&out)
    );
    assert!(
        err.contains("the next ingest of the source judges them"),
        "{err}"
    );
    assert_eq!(statuses(&p), vec![("unscorable".to_owned(), 6)]);

    let t = traffic(&p);
    assert_eq!(t["current"]["volume"], 6, "{t}");
    assert_eq!(t["current"]["scored"], 0, "{t}");
    assert_eq!(t["judge"]["current"]["pending"], 6, "{t}");
    let why = t["judge"]["current"]["pending_why"].as_str().unwrap_or("");
    assert!(
        why.starts_with("awaiting the judge: judge `judge` failed"),
        "{t}"
    );
    let text = p
        .cmd()
        .args(["traffic", "--window", "24h"])
        .output()
        .expect("run evalwatch");
    assert!(
        stdout(&text).contains("awaiting the judge: judge `judge` failed"),
        "{}",
        stdout(&text)
    );

    // The page says it too, beside the judge's calls and cost.
    let page = traffic_page(&p);
    assert!(page.contains("awaiting the judge"), "figure on the page");
    assert!(
        page.contains("awaiting the judge: judge `judge` failed after 2 attempts"),
        "why on the page"
    );

    // The judge is back: the next ingest (nothing new to read) judges the six.
    judge.down.store(false, Ordering::SeqCst);
    let out = ingest(&p);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let j = json(&out);
    assert_eq!(j["new"], 0, "{j}");
    assert_eq!(j["judge"]["judged"], 6, "{j}");
    assert_eq!(
        statuses(&p),
        vec![("failed".to_owned(), 3), ("passed".to_owned(), 3)]
    );
    let t = traffic(&p);
    assert_eq!(t["current"]["scored"], 6, "{t}");
    assert_eq!(t["current"]["pass_rate"], 0.5, "{t}");
    assert_eq!(t["judge"]["current"]["pending"], 0, "{t}");
    let page = traffic_page(&p);
    assert!(page.contains("judge calls"), "judge figures on the page");
    assert!(
        !page.contains("awaiting the judge: "),
        "no one waits any more"
    );
}

#[test]
fn validate_locates_a_judge_monitor_without_a_judge_or_without_stored_text() {
    let p = Project::new();
    p.write(
        "suites/a.yaml",
        "suite: a\nproviders: [judge]\nprompt: hi\ncases:\n  - {id: c, expected: hi}\n",
    );
    p.write(
        "evalwatch.yaml",
        "providers:
  - {id: judge, type: echo}
traffic:
  - id: bot
    fields: {time: /ts, output: /a}
    monitor:
      - type: llm-rubric
        value: Polite.
        provider: juge
  - id: quiet
    fields: {time: /ts, output: /a}
    store_text: none
    monitor:
      - type: factuality
        value: Paris.
        provider: judge
  - id: fine
    fields: {time: /ts, output: /a}
    monitor:
      - type: llm-rubric
        value: Polite.
",
    );
    let out = p.run(&["validate"]);
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    let err = stderr(&out);
    for line in [
        "evalwatch.yaml:7:9: judge provider `juge` of `llm-rubric` is not defined in evalwatch.yaml or the suite's `providers`; did you mean `judge`?",
        "evalwatch.yaml:14:9: assertion `factuality` needs a judge, and judges read the sampled records' stored text: traffic source `quiet` has `store_text: none`",
        "evalwatch.yaml:20:9: `llm-rubric` needs a judge: give it `provider: ID` or set `judge: ID` in evalwatch.yaml",
    ] {
        assert!(err.contains(line), "missing `{line}` in:\n{err}");
    }
}

/// Sends `collect` at `url` one GenAI span (trace and span id `id`, ten minutes ago) with a
/// GOOD answer, as OTLP/JSON.
async fn send_span(url: &str, id: u64) {
    let start = (chrono::Utc::now().timestamp() - 600) * 1_000_000_000;
    let export = format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[
          {{"traceId":"{id:032x}","spanId":"{id:016x}","name":"chat","startTimeUnixNano":"{start}",
           "endTimeUnixNano":"{}","attributes":[{{"key":"gen_ai.request.model","value":{{"stringValue":"m"}}}},
             {{"key":"input.value","value":{{"stringValue":"question"}}}},
             {{"key":"output.value","value":{{"stringValue":"GOOD answer"}}}}]}}]}}]}}]}}"#,
        start + 5_000_000
    );
    let r = evalwatch::provider::http_client()
        .expect("client")
        .post(url)
        .header("content-type", "application/json")
        .body(export)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
}

/// A project whose OTLP source (for `collect`) samples every span and monitors it with an
/// `llm-rubric` judged by the loopback judge at `base`.
fn otlp_project(base: &str) -> Project {
    let p = Project::new();
    p.write(
        "evalwatch.yaml",
        &format!(
            "{}traffic:
  - id: app
    format: otlp
    sample: 100%
    monitor:
      - type: llm-rubric
        value: Answers politely.
",
            judge_provider(base)
        ),
    );
    p
}

#[tokio::test]
async fn collect_judges_the_spans_it_stores_beside_the_receiving() {
    let (base, judge) = serve();
    let p = otlp_project(&base);
    let (child, url) = start_collect(&p, &[], &[("OPENAI_API_KEY", "sk-test")]);
    send_span(&url, 7).await;
    // Stopped, the receiver judges what waits before it exits.
    let (status, err) = stop(child);
    assert_eq!(status, 0, "{err}");
    assert!(
        err.contains("judge monitors: 1 record judged, 1 judge call"),
        "{err}"
    );
    assert_eq!(judge.calls(), 1);
    assert_eq!(statuses(&p), vec![("passed".to_owned(), 1)]);
}

#[tokio::test]
async fn collect_asks_a_failed_judge_again_after_a_pause_and_says_so_at_once() {
    let (base, judge) = serve();
    let p = otlp_project(&base);
    judge.down.store(true, Ordering::SeqCst);
    let (child, url) = start_collect(
        &p,
        &[],
        &[
            ("OPENAI_API_KEY", "sk-test"),
            ("EVALWATCH_JUDGE_RETRY", "1"),
        ],
    );
    send_span(&url, 9).await;
    // Waits (bounded, so that a failure cannot hang) for one record matching `sql`.
    let waited = |sql: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let now = rusqlite::Connection::open(p.db())
                .and_then(|c| {
                    c.query_row(
                        &format!("SELECT count(*) FROM traffic_records WHERE {sql}"),
                        [],
                        |r| r.get::<_, i64>(0),
                    )
                })
                .unwrap_or(0);
            if now == 1 {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no record became {sql}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    // The record waits for the judge, which failed.
    waited(
        "status = 'unscorable' AND assertions LIKE '%awaiting the judge: judge `judge` failed%'",
    );
    // The judge is back: without a new span or a restart, the receiver asks it again.
    judge.down.store(false, Ordering::SeqCst);
    waited("status = 'passed'");
    let (status, err) = stop(child);
    assert_eq!(status, 0, "{err}");
    assert!(
        err.contains("judge monitors paused: judge `judge` failed after 2 attempts")
            && err.contains("the judge is asked again in 1 s"),
        "{err}"
    );
    assert!(err.contains("judge monitors resumed"), "{err}");
    assert!(
        err.contains("judge monitors: 1 record judged, 1 judge call"),
        "{err}"
    );
    assert!(!err.contains("judge monitors stopped"), "{err}");
    assert_eq!(judge.calls(), 1);
}

#[test]
fn a_retry_pause_that_is_not_whole_seconds_is_refused_before_following() {
    let (base, _judge) = serve();
    let p = project(&base);
    p.write("logs/a.jsonl", &log(recent_start(), "a", 0, 2));
    for bad in ["0", "ten", "1.5s"] {
        let out = p
            .cmd()
            .env("EVALWATCH_TRAFFIC_SALT", SALT)
            .env("OPENAI_API_KEY", "sk-test")
            .env("EVALWATCH_JUDGE_RETRY", bad)
            .args(["ingest", "--follow"])
            .output()
            .expect("run evalwatch");
        assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
        assert!(
            stderr(&out).contains(&format!(
                "read EVALWATCH_JUDGE_RETRY `{bad}`: expected whole seconds above 0"
            )),
            "{}",
            stderr(&out)
        );
    }
}
