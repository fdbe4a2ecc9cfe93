//! The store and a run under faults: another application's database given as `--db`,
//! several processes creating one store at once, a provider answering without end, a key
//! echoed back by a server, a dead endpoint.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::support::{Project, code, question_cases, stderr};

const ECHO: &str = "suite: s\nproviders:\n  - id: e\n    type: echo\nprompt: \"Say {{ word }}\"\ncases:\n  - id: a\n    vars: {word: hello}\n    expected: hello\n";

fn file_hash(path: &Path) -> Vec<u8> {
    Sha256::digest(std::fs::read(path).expect("read")).to_vec()
}

/// Every file in `dir`, by name (a WAL or journal file appearing counts as a write).
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn another_applications_database_is_refused_before_a_byte_is_written() {
    let p = Project::new();
    let other = p.path().join("data/other.sqlite");
    std::fs::create_dir_all(other.parent().expect("parent")).expect("mkdir");
    {
        let conn = rusqlite::Connection::open(&other).expect("open");
        conn.execute_batch(
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);
             INSERT INTO customers (name) VALUES ('ada'), ('grace');
             PRAGMA user_version = 3;",
        )
        .expect("seed");
    }
    let before = file_hash(&other);
    let files_before = names_in(other.parent().expect("parent"));
    p.write("suites/s.yaml", ECHO);
    let out = p.run(&["--db", "data/other.sqlite", "run"]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("other.sqlite"), "{err}");
    assert!(err.contains("not an evalwatch store"), "{err}");
    assert!(err.contains("customers"), "names what it holds: {err}");
    assert_eq!(file_hash(&other), before, "the file was changed");
    assert_eq!(names_in(other.parent().expect("parent")), files_before);
    let conn = rusqlite::Connection::open(&other).expect("open");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("mode");
    assert_eq!(mode, "delete");
}

#[test]
fn a_store_newer_than_this_evalwatch_is_refused_before_a_byte_is_written() {
    let p = Project::new();
    p.write("suites/s.yaml", ECHO);
    assert_eq!(code(&p.run(&["run"])), 0);
    let db = p.db();
    {
        let conn = rusqlite::Connection::open(&db).expect("open");
        // Back to a rollback journal, so that a WAL switch would show in the header.
        let _: String = conn
            .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
            .expect("mode");
        conn.pragma_update(None, "user_version", 999)
            .expect("version");
    }
    let before = file_hash(&db);
    let out = p.run(&["run"]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("newer than this evalwatch knows"),
        "{}",
        stderr(&out)
    );
    assert_eq!(file_hash(&db), before, "the file was changed");
}

#[test]
fn empty_files_and_stores_of_earlier_versions_are_used() {
    let p = Project::new();
    p.write("suites/s.yaml", ECHO);
    // A 0-byte file (made by `touch`) becomes a store.
    std::fs::write(p.db(), b"").expect("touch");
    let out = p.run(&["run"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // A store made before stores were marked (no application_id) is still recognised.
    let conn = rusqlite::Connection::open(p.db()).expect("open");
    let id: i64 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .expect("id");
    assert_ne!(id, 0, "a new store is marked as evalwatch's");
    conn.pragma_update(None, "application_id", 0)
        .expect("unmark");
    drop(conn);
    let out = p.run(&["run"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = p.run(&["runs"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(crate::support::stdout(&out).matches("complete").count(), 2);
}

#[test]
fn processes_creating_one_new_store_at_once_all_succeed() {
    // 40 rounds of 4 processes opening one new file at once (the fault test saw 4 failures
    // in 360 starts); every start must succeed.
    let p = Project::new();
    for i in 0..4 {
        p.write(
            &format!("suites/s{i}.yaml"),
            &ECHO.replace("suite: s", &format!("suite: s{i}")),
        );
    }
    for round in 0..40 {
        let db = p.path().join(format!("new-{round}.db"));
        let children: Vec<_> = (0..4)
            .map(|i| {
                std::process::Command::new(assert_cmd::cargo::cargo_bin("evalwatch"))
                    .current_dir(p.path())
                    .env_remove("EVALWATCH_DB")
                    .env_remove("EVALWATCH_CONFIG")
                    .arg("--db")
                    .arg(&db)
                    .args(["run", "--no-reports"])
                    .arg(format!("suites/s{i}.yaml"))
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("spawn")
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().expect("wait");
            assert_eq!(code(&out), 0, "round {round}: {}", stderr(&out));
        }
    }
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

#[test]
fn a_dead_endpoint_opens_the_circuit_breaker_and_the_run_stops_calling_it() {
    let port = closed_port();
    let p = Project::new();
    let cases = question_cases(300, "x");
    p.write(
        "suites/dead.yaml",
        &format!(
            "suite: dead\nproviders:\n  - id: gpt\n    type: openai\n    model: m\n    base_url: http://127.0.0.1:{port}/v1\n    concurrency: 1\n    retries: {{max: 2, base_delay: 1ms, max_delay: 2ms}}\nprompt: \"{{{{ q }}}}\"\ncases:\n{cases}"
        ),
    );
    let out = p
        .cmd()
        .env("OPENAI_API_KEY", "k")
        .arg("run")
        .output()
        .expect("run");
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("circuit breaker"),
        "the reason is printed: {err}"
    );
    let conn = rusqlite::Connection::open(p.db()).expect("open");
    let (results, attempts, skipped): (i64, i64, i64) = conn
        .query_row(
            "SELECT count(*), sum(attempts), sum(error_kind = 'circuit_open') FROM results",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("counts");
    assert_eq!(results, 300, "every case is stored");
    // Ten cases of three attempts each were tried; the rest were not called.
    assert_eq!(attempts, 30, "calls made");
    assert_eq!(skipped, 290);
    let reason: String = conn
        .query_row(
            "SELECT error FROM results WHERE error_kind = 'circuit_open' LIMIT 1",
            [],
            |r| r.get(0),
        )
        .expect("reason");
    assert!(reason.contains("circuit breaker"), "{reason}");
    assert!(reason.contains(&format!("127.0.0.1:{port}")), "{reason}");
}

const ECHOED_KEY: &str = "sk-echoed-key-0f9e8d7c6b5a";
const URL_TOKEN: &str = "tok-in-the-url-4c3b2a1909";

/// An OpenAI-compatible answer that quotes the request's key, and an `http` endpoint that
/// fails with an error body quoting its query string (where a `${VAR}` put a token).
fn echoing_server() -> String {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::{get, post};
    let chat = |headers: HeaderMap| async move {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = serde_json::json!({
            "choices": [{"index": 0, "message": {"role": "assistant", "content": format!("Sure. You sent `{auth}`.")}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1}
        });
        ([("content-type", "application/json")], body.to_string())
    };
    let app_endpoint = |uri: axum::http::Uri| async move {
        let msg = format!(
            r#"{{"error":{{"message":"bad request to {}"}}}}"#,
            uri.query().unwrap_or_default()
        );
        (StatusCode::BAD_REQUEST, msg).into_response()
    };
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/app", get(app_endpoint).post(app_endpoint));
    format!("http://{}", crate::support::serve_on_loopback(app))
}

#[test]
fn a_key_echoed_by_a_server_reaches_no_row_page_or_export() {
    let base = echoing_server();
    let p = Project::new();
    p.write(
        "suites/echo.yaml",
        &format!(
            "suite: echo\nproviders:\n  - id: gpt\n    type: openai\n    model: m\n    base_url: {base}/v1\n    api_key_env: EVALWATCH_T_ECHO_KEY\n    retries: {{max: 0}}\n  - id: app\n    type: http\n    url: \"{base}/app?token=${{EVALWATCH_T_URL_TOKEN}}\"\n    body: {{q: '{{{{ q }}}}'}}\n    output: /answer\n    retries: {{max: 0}}\nprompt: \"{{{{ q }}}}\"\ncases:\n  - {{id: a, vars: {{q: hello}}, expected: Sure}}\n"
        ),
    );
    let out = p
        .cmd()
        .env("EVALWATCH_T_ECHO_KEY", ECHOED_KEY)
        .env("EVALWATCH_T_URL_TOKEN", URL_TOKEN)
        .args(["-v", "run"])
        .output()
        .expect("run");
    // One of two results errored: not over the default error budget of a half.
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let all_out = format!("{}{}", crate::support::stdout(&out), stderr(&out));
    for secret in [ECHOED_KEY, URL_TOKEN] {
        assert!(!all_out.contains(secret), "printed: {all_out}");
    }
    let conn = rusqlite::Connection::open(p.db()).expect("open");
    let rows: Vec<(String, Option<String>, Option<String>)> = conn
        .prepare("SELECT provider, output, error FROM results ORDER BY provider")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(rows.len(), 2, "{rows:?}");
    let (app, gpt) = (&rows[0], &rows[1]);
    let gpt_output = gpt.1.clone().expect("gpt answered");
    assert!(
        gpt_output.contains("Sure. You sent `Bearer [redacted]`"),
        "{gpt_output}"
    );
    let app_error = app.2.clone().expect("app failed");
    assert!(
        app_error.contains("bad request to token=[redacted]"),
        "{app_error}"
    );
    drop(conn);
    // Exports and pages read the store; the store files themselves hold no copy.
    let csv = p.run(&["export", "--format", "csv"]);
    let json = p.run(&["export", "--format", "json"]);
    let mut everything = Vec::new();
    everything.extend_from_slice(&csv.stdout);
    everything.extend_from_slice(&json.stdout);
    let mut pages = 0;
    for entry in walk(&p.path().join("reports")) {
        everything.extend(std::fs::read(&entry).expect("read"));
        pages += 1;
    }
    assert!(pages > 0, "run pages were written");
    for name in names_in(p.path()) {
        if name.starts_with("evalwatch.db") {
            everything.extend(std::fs::read(p.path().join(name)).expect("read"));
        }
    }
    let text = String::from_utf8_lossy(&everything);
    assert!(
        text.contains("[redacted]"),
        "the exports show the redaction"
    );
    for secret in [ECHOED_KEY, URL_TOKEN] {
        assert!(!text.contains(secret), "{secret} leaked");
    }
}

#[test]
fn a_secret_expanded_into_a_cases_expected_answer_or_context_reaches_no_page_or_sheet() {
    const TOKEN: &str = "tok-SECRETVAR-11223344";
    let p = Project::new();
    p.write(
        "suites/s.yaml",
        "suite: s\nproviders:\n  - {id: e, type: echo}\nprompt: \"{{ q }}\"\ncases:\n  - {id: c1, vars: {q: \"ECHOKEY ${MYTOKEN}\"}, expected: \"ECHOKEY ${MYTOKEN}\", context: \"the token ${MYTOKEN}\"}\n  - {id: c2, vars: {q: plain}, expected: plain, context: \"no token here\"}\n",
    );
    let with_token = |args: &[&str]| {
        let out = p
            .cmd()
            .env("MYTOKEN", TOKEN)
            .args(args)
            .output()
            .expect("run evalwatch");
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
    };
    // The run's pages are written as it goes, `report` writes them again from the suite
    // files, and the review sheet reads its expected answers and context from them too.
    with_token(&["run"]);
    let live: Vec<u8> = walk(&p.path().join("reports"))
        .iter()
        .flat_map(|f| std::fs::read(f).expect("read"))
        .collect();
    with_token(&["report"]);
    with_token(&["review", "sample", "--n", "2"]);
    let mut everything = live;
    let mut files = 0;
    for f in walk(&p.path().join("reports")) {
        everything.extend(std::fs::read(&f).expect("read"));
        files += 1;
    }
    let text = String::from_utf8_lossy(&everything);
    assert!(files > 2, "pages and a sheet were written");
    assert!(!text.contains(TOKEN), "the token leaked");
    // What is hidden is the secret alone: the rest of the expected answer and context show.
    assert!(text.contains("ECHOKEY [redacted]"), "expected answer shown");
    assert!(text.contains("the token [redacted]"), "context shown");
    assert!(text.contains("no token here"), "plain context shown");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries {
        let path = e.expect("entry").path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// An OpenAI-compatible endpoint whose answer never ends (generated as it is sent, never
/// held); returns its address and the bytes it managed to send.
fn endless_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let sent = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&sent);
    let chat = move || {
        let counter = Arc::clone(&counter);
        async move {
            let head = futures::stream::once(async {
                Ok::<_, std::io::Error>(axum::body::Bytes::from_static(
                    br#"{"choices": [{"index": 0, "message": {"role": "assistant", "content": ""#,
                ))
            });
            let chunk = axum::body::Bytes::from(vec![b'a'; 65536]);
            let endless = futures::stream::repeat_with(move || {
                counter.fetch_add(65536, Ordering::SeqCst);
                Ok(chunk.clone())
            });
            (
                [("content-type", "application/json")],
                axum::body::Body::from_stream(futures::StreamExt::chain(head, endless)),
            )
        }
    };
    let app = axum::Router::new().route("/v1/chat/completions", axum::routing::post(chat));
    (
        format!("http://{}/v1", crate::support::serve_on_loopback(app)),
        sent,
    )
}

#[test]
fn an_endless_answer_is_read_up_to_max_output_bytes_and_marked() {
    let (base, sent) = endless_server();
    let p = Project::new();
    p.write(
        "suites/big.yaml",
        &format!(
            "suite: big\nproviders:\n  - id: gpt\n    type: openai\n    model: m\n    base_url: {base}\n    max_output_bytes: 64KiB\n    timeout: 20s\n    retries: {{max: 0}}\n  - id: cmd\n    type: exec\n    command: [sh, -c, 'yes evalwatch']\n    max_output_bytes: 100KB\nprompt: \"{{{{ q }}}}\"\ncases:\n  - {{id: a, vars: {{q: hello}}, expected: evalwatch}}\n"
        ),
    );
    let out = p
        .cmd()
        .env("OPENAI_API_KEY", "k")
        .args(["run", "--format", "json"])
        .output()
        .expect("run");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // The endless body was not read on: what was sent is bounded by the socket buffers.
    let served = sent.load(std::sync::atomic::Ordering::SeqCst);
    assert!(served < 64 << 20, "the client read on: {served} bytes sent");
    let conn = rusqlite::Connection::open(p.db()).expect("open");
    let row = |provider: &str| -> (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    ) {
        conn.query_row(
            "SELECT output, error, error_kind, finish_reason FROM results WHERE provider = ?1",
            [provider],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .expect("row")
    };
    let (_, error, kind, _) = row("gpt");
    let error = error.expect("the JSON answer cannot be parsed once cut");
    assert_eq!(kind.as_deref(), Some("bad_response"));
    assert!(
        error.contains("larger than `max_output_bytes` allows (evalwatch reads 131072 bytes"),
        "{error}"
    );
    assert!(error.contains("read 131072 bytes"), "{error}");
    assert!(error.len() < 1000, "the error does not carry the body");
    let (output, _, _, finish) = row("cmd");
    let output = output.expect("the command's answer is kept, truncated");
    assert_eq!(finish.as_deref(), Some("truncated"));
    assert!(
        output.ends_with("[evalwatch: output truncated at max_output_bytes = 100000 bytes; the answer was longer]"),
        "{}",
        &output[output.len().saturating_sub(200)..]
    );
    assert!(
        output.len() < 100_000 + 200,
        "{} bytes stored",
        output.len()
    );
    assert!(output.starts_with("evalwatch\nevalwatch\n"));
    // The JSON output shows the mark too.
    let text = crate::support::stdout(&out);
    assert!(
        text.contains("output truncated at max_output_bytes"),
        "{}",
        &text[..text.len().min(2000)]
    );
}

#[test]
fn evalwatch_yaml_sets_max_output_bytes_for_providers_without_their_own() {
    let p = Project::new();
    p.write("evalwatch.yaml", "max_output_bytes: 50KB\n");
    p.write(
        "suites/big.yaml",
        "suite: big\nproviders:\n  - id: wide\n    type: exec\n    command: [sh, -c, 'yes evalwatch']\n  - id: own\n    type: exec\n    command: [sh, -c, 'yes evalwatch']\n    max_output_bytes: 2KiB\nprompt: \"{{ q }}\"\ncases:\n  - {id: a, vars: {q: hello}, expected: evalwatch}\n",
    );
    let out = p.run(&["run", "--no-reports"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let conn = rusqlite::Connection::open(p.db()).expect("open");
    let output = |provider: &str| -> String {
        conn.query_row(
            "SELECT output FROM results WHERE provider = ?1",
            [provider],
            |r| r.get(0),
        )
        .expect("row")
    };
    assert!(output("wide").ends_with("max_output_bytes = 50000 bytes; the answer was longer]"));
    assert!(output("own").ends_with("max_output_bytes = 2048 bytes; the answer was longer]"));
    // A bad size is a located error.
    p.write("evalwatch.yaml", "max_output_bytes: lots\n");
    let out = p.run(&["validate"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("evalwatch.yaml:1:19: max_output_bytes must be a size"),
        "{}",
        stderr(&out)
    );
}
