//! The store and a run under faults: another application's database given as `--db`,
//! several processes creating one store at once, a provider answering without end, a key
//! echoed back by a server, a dead endpoint.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::support::{Project, code, stderr};

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
    use std::fmt::Write as _;
    let port = closed_port();
    let p = Project::new();
    let mut cases = String::new();
    for i in 0..300 {
        let _ = writeln!(
            cases,
            "  - {{id: c{i}, vars: {{q: question {i}}}, expected: x}}"
        );
    }
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
