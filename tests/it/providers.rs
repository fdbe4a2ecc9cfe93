//! The binary against a loopback OpenAI-compatible server: requests as sent, retries, errors by
//! kind, costs, and secrets that never reach the store or the output.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::support::{Project, code, json_runs, serve_on_loopback, stderr, stdout};

const SECRET: &str = "sk-test-DO-NOT-LEAK-8f3a1c";

#[derive(Default)]
struct State {
    /// Authorization header and body of every request.
    requests: Mutex<Vec<(Option<String>, serde_json::Value)>>,
    /// Calls per question, to script first-attempt failures.
    calls: Mutex<HashMap<String, u32>>,
}

async fn chat(
    axum::extract::State(state): axum::extract::State<Arc<State>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    state
        .requests
        .lock()
        .expect("lock")
        .push((auth, json.clone()));
    let question = json["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string();
    let n = {
        let mut calls = state.calls.lock().expect("lock");
        let n = calls.entry(question.clone()).or_insert(0);
        *n += 1;
        *n
    };
    if question.contains("throttle") && n == 1 {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "0")],
            r#"{"error":{"message":"Rate limit reached","type":"requests"}}"#,
        )
            .into_response();
    }
    if question.contains("broken") {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"error":{"message":"upstream exploded"}}"#,
        )
            .into_response();
    }
    if question.contains("badkey") {
        let msg = format!(r#"{{"error":{{"message":"Incorrect API key provided: {SECRET}"}}}}"#);
        return (StatusCode::UNAUTHORIZED, msg).into_response();
    }
    if question.contains("slow") {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let body = serde_json::json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": json["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": format!("You asked: {question}. Answer: 30 days.")}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 2000, "total_tokens": 3000}
    });
    ([("content-type", "application/json")], body.to_string()).into_response()
}

fn serve() -> (String, Arc<State>) {
    let state = Arc::new(State::default());
    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .with_state(Arc::clone(&state));
    (format!("http://{}/v1", serve_on_loopback(app)), state)
}

#[test]
fn openai_run_retries_counts_errors_prices_and_never_leaks_the_key() {
    let (base, state) = serve();
    let p = Project::new();
    p.write(
        "suites/live.yaml",
        &format!(
            "suite: live\nproviders:\n  - id: gpt\n    type: openai\n    model: gpt-test\n    base_url: {base}\n    params: {{temperature: 0, max_tokens: 64}}\n    pricing: {{input_per_mtok: 1.0, output_per_mtok: 2.0}}\n    timeout: 500ms\n    retries: {{max: 1, base_delay: 10ms, max_delay: 20ms}}\nsystem: Be brief.\nprompt: \"{{{{ q }}}}\"\ncases:\n  - {{id: ok, vars: {{q: refund window}}, expected: 30 days}}\n  - {{id: throttled, vars: {{q: throttle me}}, expected: 30 days}}\n  - {{id: broken, vars: {{q: broken}}, expected: 30 days}}\n  - {{id: slow, vars: {{q: slow}}, expected: 30 days}}\n  - {{id: badkey, vars: {{q: badkey}}, expected: 30 days}}\n  - {{id: ok2, vars: {{q: other}}, expected: 30 days}}\n"
        ),
    );
    let out = p
        .cmd()
        .env("OPENAI_API_KEY", SECRET)
        .args(["run", "--format", "json"])
        .output()
        .expect("run");
    // 3 of 6 errored: under the default budget of one half, so the run completes.
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let run = &json_runs(&out)[0];
    let by_id = |id: &str| {
        run["cases"]
            .as_array()
            .expect("cases")
            .iter()
            .find(|c| c["case_id"] == id)
            .cloned()
            .expect("case")
    };
    assert_eq!(by_id("ok")["status"], "passed");
    assert_eq!(
        by_id("ok")["cost_usd"],
        0.005,
        "1000 in at $1/M + 2000 out at $2/M"
    );
    let throttled = by_id("throttled");
    assert_eq!(throttled["status"], "passed");
    assert_eq!(throttled["attempts"], 2, "429 then success");
    assert_eq!(by_id("broken")["error_kind"], "server");
    assert_eq!(by_id("broken")["attempts"], 2, "one retry");
    assert_eq!(by_id("slow")["error_kind"], "timeout");
    assert_eq!(by_id("badkey")["error_kind"], "client");
    assert_eq!(by_id("badkey")["attempts"], 1, "401 is not retried");
    let m = &run["providers"][0]["metrics"];
    assert_eq!(m["errors"], 3);
    assert_eq!(m["errors_by_kind"]["server"], 1);
    assert_eq!(m["errors_by_kind"]["timeout"], 1);
    assert_eq!(m["errors_by_kind"]["client"], 1);
    assert_eq!(m["tokens_in"], 3000);

    // The request as the API expects it.
    let requests = state.requests.lock().expect("lock");
    let (auth, body) = requests
        .iter()
        .find(|(_, b)| b["messages"][1]["content"] == "refund window")
        .expect("request");
    assert_eq!(auth.as_deref(), Some(format!("Bearer {SECRET}").as_str()));
    assert_eq!(body["model"], "gpt-test");
    assert_eq!(body["temperature"], 0);
    assert_eq!(body["max_tokens"], 64);
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["messages"][0]["content"], "Be brief.");
    assert_eq!(body["messages"][1]["role"], "user");
    drop(requests);

    // The key never reaches the output, the terminal or the database (WAL included).
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!all.contains(SECRET), "key leaked to the output");
    let text = p.run(&[
        "show",
        run["run_id"].as_str().expect("id"),
        "--format",
        "json",
    ]);
    assert!(!stdout(&text).contains(SECRET), "key leaked to show");
    for entry in std::fs::read_dir(p.path()).expect("dir") {
        let path = entry.expect("entry").path();
        if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("evalwatch.db"))
        {
            let bytes = std::fs::read(&path).expect("read db");
            assert!(
                !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
                "key stored in {}",
                path.display()
            );
        }
    }
}

#[test]
fn a_missing_api_key_is_a_clear_error_before_any_call() {
    let (base, state) = serve();
    let p = Project::new();
    p.write(
        "suites/live.yaml",
        &format!("suite: live\nproviders:\n  - id: gpt\n    type: openai\n    model: m\n    base_url: {base}\n    api_key_env: EVALWATCH_TEST_KEY_THAT_IS_UNSET\nprompt: hi\ncases:\n  - {{id: a, expected: x}}\n"),
    );
    let out = p
        .cmd()
        .env_remove("EVALWATCH_TEST_KEY_THAT_IS_UNSET")
        .args(["run"])
        .output()
        .expect("run");
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("EVALWATCH_TEST_KEY_THAT_IS_UNSET"),
        "{}",
        stderr(&out)
    );
    assert!(state.requests.lock().expect("lock").is_empty());
}
