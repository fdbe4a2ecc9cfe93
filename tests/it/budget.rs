//! The run's error budget and the circuit breaker's setting: a run that can no longer meet
//! its error budget stops calling, says why, stores why and exits 3; `circuit_breaker:` in
//! evalwatch.yaml sets or switches off the consecutive-failure breaker, judged by validate.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::support::{Project, code, question_cases, serve_on_loopback, stderr, stdout};

/// An OpenAI-compatible server that answers one request in five and fails the rest with a
/// 500 (an answer, so the consecutive-failure breaker never opens); counts the requests.
///
/// With `plan_in`, the first answer waits until the run's row in that store has its planned
/// count: the budget counts once the suite's full check is through, which the run starts
/// once its store is open, while its calls have already begun (docs/reliability.md). A
/// server answering at once (~0.1 ms a call in a release build) was called 400 times before
/// that; no provider answers that fast, and the wait keeps the test from racing the check.
fn mostly_failing_server(plan_in: Option<std::path::PathBuf>) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let chat = move || {
        let counter = Arc::clone(&counter);
        let plan_in = plan_in.clone();
        async move {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            if n == 0
                && let Some(db) = plan_in
            {
                wait_for_plan(&db).await;
            }
            if n % 5 != 4 {
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    r#"{"error":{"message":"upstream exploded"}}"#,
                )
                    .into_response();
            }
            let body = serde_json::json!({
                "id": "c", "object": "chat.completion", "created": 1, "model": "m",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
            });
            let r: Response =
                ([("content-type", "application/json")], body.to_string()).into_response();
            r
        }
    };
    let app = axum::Router::new().route("/v1/chat/completions", axum::routing::post(chat));
    (format!("http://{}/v1", serve_on_loopback(app)), calls)
}

/// Wait (at most 60 s) until the run in the store `db` knows how many results it plans.
async fn wait_for_plan(db: &std::path::Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        let planned = rusqlite::Connection::open(db).ok().and_then(|c| {
            c.query_row("SELECT max(planned) FROM runs", [], |r| {
                r.get::<_, Option<i64>>(0)
            })
            .ok()
            .flatten()
        });
        if planned.unwrap_or(0) > 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("the run never stored its planned count in {}", db.display());
}

/// A suite `name` of one openai provider at `base_url` (one call at a time, no retries) and
/// `n` cases.
fn openai_suite(name: &str, base_url: &str, n: usize) -> String {
    format!(
        "suite: {name}\nproviders:\n  - id: gpt\n    type: openai\n    model: m\n    base_url: {base_url}\n    concurrency: 1\n    retries: {{max: 0}}\nprompt: \"{{{{ q }}}}\"\ncases:\n{}",
        question_cases(n, "x")
    )
}

const CASES: i64 = 400;

#[test]
fn a_run_that_cannot_meet_its_error_budget_stops_calling_and_says_why() {
    let p = Project::new();
    let (base, calls) = mostly_failing_server(Some(p.db()));
    p.write("suites/flaky.yaml", &openai_suite("flaky", &base, 400));
    let out = p
        .cmd()
        .env("OPENAI_API_KEY", "sk-test-budget-key")
        .args(["run", "--no-reports"])
        .output()
        .expect("run");
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("error budget of 50% cannot be met:")
            && err.contains(&format!("of {CASES} results already errored")),
        "the reason is printed: {err}"
    );
    let made = i64::try_from(calls.load(Ordering::SeqCst)).expect("count");
    eprintln!("calls made: {made} of {CASES}");
    // Four calls in five fail: the budget (200 errors of 400) is spent after about 250
    // calls, and no call is made after that (concurrency 1: none in flight).
    assert!(made < CASES, "the run called every case: {made} calls");
    let conn = rusqlite::Connection::open(p.db()).expect("open");
    let (results, attempts, skipped, errors): (i64, i64, i64, i64) = conn
        .query_row(
            "SELECT count(*), sum(attempts), sum(error_kind = 'circuit_open'), sum(status = 'error') FROM results",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .expect("counts");
    assert_eq!(results, CASES, "every case is stored");
    assert_eq!(attempts, made, "calls the store knows of");
    assert_eq!(skipped, CASES - made, "the rest were not called");
    assert!(errors > CASES / 2, "{errors}");
    let reason: String = conn
        .query_row(
            "SELECT error FROM results WHERE error_kind = 'circuit_open' LIMIT 1",
            [],
            |r| r.get(0),
        )
        .expect("reason");
    assert!(
        reason.contains("error budget of 50% cannot be met"),
        "stored: {reason}"
    );
    let status: String = conn
        .query_row("SELECT status FROM runs", [], |r| r.get(0))
        .expect("status");
    assert_eq!(status, "failed");
}

#[test]
fn a_run_within_its_error_budget_calls_every_case() {
    let (base, calls) = mostly_failing_server(None);
    let p = Project::new();
    p.write("evalwatch.yaml", "error_budget: 0.9\n");
    p.write("suites/flaky.yaml", &openai_suite("flaky", &base, 50));
    let out = p
        .cmd()
        .env("OPENAI_API_KEY", "sk-test-budget-key")
        .args(["run", "--no-reports"])
        .output()
        .expect("run");
    // 40 of 50 errored: 80%, within a budget of 90%.
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(calls.load(Ordering::SeqCst), 50);
    assert!(!stderr(&out).contains("error budget"), "{}", stderr(&out));
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Run 30 cases against a dead endpoint with `config` as evalwatch.yaml; returns (calls
/// made, `circuit_open` results, stderr).
fn dead_run(config: &str) -> (i64, i64, String) {
    let port = closed_port();
    let p = Project::new();
    p.write("evalwatch.yaml", config);
    p.write(
        "suites/dead.yaml",
        &openai_suite("dead", &format!("http://127.0.0.1:{port}/v1"), 30),
    );
    let out = p
        .cmd()
        .env("OPENAI_API_KEY", "sk-test-budget-key")
        .args(["run", "--no-reports"])
        .output()
        .expect("run");
    // Every result errored, but a budget of 100% is never over: the run is not failed.
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let conn = rusqlite::Connection::open(p.db()).expect("open");
    let (attempts, skipped): (i64, i64) = conn
        .query_row(
            "SELECT sum(attempts), sum(error_kind = 'circuit_open') FROM results",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("counts");
    (attempts, skipped, stderr(&out))
}

#[test]
fn circuit_breaker_after_sets_the_consecutive_failures_that_open_it() {
    // A budget of 100% is never spent: only the breaker stops calls here.
    let (attempts, skipped, err) = dead_run("error_budget: 1\ncircuit_breaker: {after: 3}\n");
    assert_eq!(attempts, 3, "{err}");
    assert_eq!(skipped, 27);
    assert!(err.contains("gave no answer to 3 calls in a row"), "{err}");
}

#[test]
fn circuit_breaker_off_calls_every_case() {
    let (attempts, skipped, err) = dead_run("error_budget: 1\ncircuit_breaker: off\n");
    assert_eq!(attempts, 30, "{err}");
    assert_eq!(skipped, 0);
    assert!(!err.contains("circuit breaker"), "{err}");
}

#[test]
fn a_bad_circuit_breaker_setting_is_refused_by_validate_located() {
    let p = Project::new();
    p.write(
        "suites/s.yaml",
        "suite: s\nproviders:\n  - {id: e, type: echo}\nprompt: hi\ncases:\n  - {id: a}\n",
    );
    for (config, expected) in [
        (
            "circuit_breaker: {aftr: 3}\n",
            "evalwatch.yaml:1:18: unknown field `aftr` in `circuit_breaker`; did you mean `after`?",
        ),
        (
            "circuit_breaker: {after: 0}\n",
            "evalwatch.yaml:1:18: circuit_breaker.after must be a whole number between 1 and 1000000, got 0",
        ),
        (
            "store: x.db\ncircuit_breaker: sometimes\n",
            "evalwatch.yaml:2:18: `circuit_breaker` cannot be \"sometimes\"",
        ),
        (
            "circuit_braker: off\n",
            "evalwatch.yaml:1:1: unknown field `circuit_braker` in evalwatch.yaml; did you mean `circuit_breaker`?",
        ),
    ] {
        p.write("evalwatch.yaml", config);
        let out = p.run(&["validate"]);
        assert_eq!(code(&out), 2, "{config}: {}", stdout(&out));
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert!(text.contains(expected), "{config}: {text}");
        // run agrees with validate.
        let out = p.run(&["run", "--no-reports"]);
        assert_eq!(code(&out), 2, "{config}: {}", stderr(&out));
    }
}
