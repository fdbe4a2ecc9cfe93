//! The results writer on PostgreSQL: a run stored in batches gives the same history as on
//! SQLite, and a run whose database goes away mid-run (the server stopped, then started
//! again) waits for it and loses nothing, or, past `EVALWATCH_STORE_WAIT`, ends incomplete
//! with what it stored kept, and `--resume` completes it.
//!
//! The outage tests start and stop a PostgreSQL server of their own (initdb and pg_ctl in a
//! temp dir, as `scripts/with-pg` does), so that stopping it touches no other test. They skip
//! when PostgreSQL is not installed, saying so, except under `CI=true`, where that fails.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use axum::response::IntoResponse;

use crate::pgdb::Backend;
use crate::support::{Project, code, question_cases, replay_suite, serve_on_loopback, stderr};

/// Cases of the outage suite, and how many are answered before the server is stopped.
const CASES: usize = 60;
const BEFORE: usize = 20;

/// A PostgreSQL cluster of the test's own, on a free loopback port.
struct Server {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    password: String,
    /// `runuser -u nobody --` when the tests run as root (PostgreSQL refuses root).
    owner: Vec<String>,
}

impl Server {
    /// A new cluster, started; `None` (said why) when PostgreSQL is not installed.
    fn start(test: &str) -> Option<Self> {
        let Some(bin) = pg_bin() else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "PostgreSQL is not installed under CI (apt-get install postgresql)"
            );
            eprintln!("skipped {test}: PostgreSQL is not installed (no /usr/lib/postgresql/*/bin)");
            return None;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let root = run_out("id", &["-u"]).trim() == "0";
        let owner: Vec<String> = if root {
            let out = run_out("chown", &["nobody", &dir.path().display().to_string()]);
            assert!(out.is_empty(), "chown: {out}");
            ["runuser", "-u", "nobody", "--"]
                .map(str::to_owned)
                .to_vec()
        } else {
            Vec::new()
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let password = format!("pw{}x{port}", std::process::id());
        let server = Self {
            bin,
            dir,
            port,
            password,
            owner,
        };
        let pwfile = server.dir.path().join("pw");
        std::fs::write(&pwfile, &server.password).expect("write the password file");
        if root {
            run_out("chown", &["nobody", &pwfile.display().to_string()]);
        }
        server.pg(
            "initdb",
            &[
                "-D",
                &server.data(),
                "-U",
                "evalwatch",
                &format!("--pwfile={}", pwfile.display()),
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
        );
        server.up();
        Some(server)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// Run one of the server's programs as its owner, from its dir; panics on failure.
    fn pg(&self, program: &str, args: &[&str]) {
        let exe = self.bin.join(program).display().to_string();
        let mut all: Vec<&str> = self.owner.iter().map(String::as_str).collect();
        all.push(&exe);
        all.extend_from_slice(args);
        let out = Command::new(all[0])
            .args(&all[1..])
            .current_dir(self.dir.path())
            .output()
            .expect("start a PostgreSQL program");
        assert!(
            out.status.success(),
            "{program} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Start the server (again), and wait until it accepts connections.
    fn up(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        self.pg(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-w",
                "-o",
                &options,
                "start",
            ],
        );
    }

    /// Stop the server (fast: open connections are closed).
    fn down(&self) {
        self.pg("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }

    fn url(&self) -> String {
        format!("postgres://evalwatch@127.0.0.1:{}/postgres", self.port)
    }

    /// One number from the store, asked on a connection of its own.
    fn count(&self, sql: &str) -> usize {
        let url = format!(
            "postgres://evalwatch:{}@127.0.0.1:{}/postgres",
            self.password, self.port
        );
        let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
        let n: i64 = client.query_one(sql, &[]).expect("query").get(0);
        usize::try_from(n).expect("a count")
    }

    fn text(&self, sql: &str) -> String {
        let url = format!(
            "postgres://evalwatch:{}@127.0.0.1:{}/postgres",
            self.password, self.port
        );
        let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
        client.query_one(sql, &[]).expect("query").get(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let exe = self.bin.join("pg_ctl").display().to_string();
        let mut all: Vec<String> = self.owner.clone();
        all.extend([
            exe,
            "-D".into(),
            self.data(),
            "-m".into(),
            "immediate".into(),
            "stop".into(),
        ]);
        let _ = Command::new(&all[0])
            .args(&all[1..])
            .current_dir(self.dir.path())
            .output();
    }
}

fn pg_bin() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"))
        .filter(|d| d.join("initdb").exists() && d.join("pg_ctl").exists())
        .collect();
    dirs.sort();
    dirs.pop()
}

fn run_out(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().expect(program);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Gates of the loopback model: requests from `BEFORE` on wait for the first, the last
/// request for the second.
#[derive(Clone, Default)]
struct Gates {
    rest: Arc<AtomicBool>,
    last: Arc<AtomicBool>,
}

impl Gates {
    fn open_all(&self) {
        self.rest.store(true, Ordering::SeqCst);
        self.last.store(true, Ordering::SeqCst);
    }
}

/// An OpenAI-compatible server (called one request at a time) that answers the first
/// `BEFORE` requests at once and holds the others at their gates.
fn gated_server() -> (String, Gates, Arc<AtomicUsize>) {
    let gates = Gates::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let (g, c) = (gates.clone(), Arc::clone(&calls));
    let chat = move || {
        let (gates, calls) = (g.clone(), Arc::clone(&c));
        async move {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            let gate = if n + 1 == CASES {
                Some(&gates.last)
            } else if n >= BEFORE {
                Some(&gates.rest)
            } else {
                None
            };
            while gate.is_some_and(|g| !g.load(Ordering::SeqCst)) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            // No `model`: the run records no model version (not what is tested here).
            let body = serde_json::json!({
                "id": "c", "object": "chat.completion", "created": 1,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
            });
            ([("content-type", "application/json")], body.to_string()).into_response()
        }
    };
    let app = axum::Router::new().route("/v1/chat/completions", axum::routing::post(chat));
    (
        format!("http://{}/v1", serve_on_loopback(app)),
        gates,
        calls,
    )
}

fn outage_project(base: &str) -> Project {
    let p = Project::new();
    let cases = question_cases(CASES, "x");
    p.write(
        "suites/slow.yaml",
        &format!(
            "suite: slow\nproviders:\n  - id: gpt\n    type: openai\n    model: m\n    base_url: {base}\n    concurrency: 1\n    retries: {{max: 0}}\nprompt: \"{{{{ q }}}}\"\ncases:\n{cases}"
        ),
    );
    p
}

/// `evalwatch` in `p` on the server's store, its stderr lines sent to the receiver.
fn spawn_run(
    p: &Project,
    server: &Server,
    wait: &str,
    args: &[&str],
) -> (Child, mpsc::Receiver<String>) {
    spawn_run_with(p, server, wait, &[], args)
}

/// [`spawn_run`] with more environment variables.
fn spawn_run_with(
    p: &Project,
    server: &Server,
    wait: &str,
    envs: &[(&str, &str)],
    args: &[&str],
) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("evalwatch"))
        .current_dir(p.path())
        .envs(envs.iter().copied())
        .env_remove("EVALWATCH_CONFIG")
        .env("NO_COLOR", "1")
        .env("EVALWATCH_DB", server.url())
        .env("PGPASSWORD", &server.password)
        .env("OPENAI_API_KEY", "sk-test-outage")
        .env("EVALWATCH_STORE_WAIT", wait)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start evalwatch");
    let err = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Wait for a stderr line containing `text`; every line seen is kept in `seen`.
fn wait_for_line(rx: &mpsc::Receiver<String>, text: &str, seen: &mut Vec<String>) {
    for line in rx {
        seen.push(line.clone());
        if line.contains(text) {
            return;
        }
    }
    panic!(
        "evalwatch ended without saying `{text}`:\n{}",
        seen.join("\n")
    );
}

/// Wait until the store holds `n` results (the run has written them).
fn wait_for_results(server: &Server, n: usize) {
    // The store is made once the first calls are out.
    while server.count("SELECT count(*) FROM pg_class WHERE relname = 'results'") == 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
    while server.count("SELECT count(*) FROM results") < n {
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn pg_outage_a_run_waits_for_the_server_and_stores_every_result_once() {
    let Some(server) = Server::start("pg_outage_waits") else {
        return;
    };
    let (base, gates, calls) = gated_server();
    let p = outage_project(&base);
    let (child, rx) = spawn_run(&p, &server, "600", &["run", "--no-reports"]);
    wait_for_results(&server, BEFORE);
    // Down while the run is calling: the results that come meanwhile wait in the writer.
    server.down();
    gates.rest.store(true, Ordering::SeqCst);
    let mut seen = Vec::new();
    wait_for_line(&rx, "store unreachable, retrying", &mut seen);
    server.up();
    gates.last.store(true, Ordering::SeqCst);
    let out = child.wait_with_output().expect("wait");
    seen.extend(rx.iter());
    let err = seen.join("\n");
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("reachable again"), "{err}");
    assert!(
        err.contains(&server.url()) && !err.contains(&server.password),
        "the store shown, its password not: {err}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), CASES, "each case called once");
    assert_eq!(server.count("SELECT count(*) FROM results"), CASES);
    assert_eq!(
        server.count("SELECT count(DISTINCT seq) FROM results"),
        CASES,
        "each result stored once"
    );
    assert_eq!(server.text("SELECT status FROM runs"), "complete");
}

#[test]
fn pg_outage_past_the_wait_ends_incomplete_and_resume_completes_it() {
    let Some(server) = Server::start("pg_outage_resume") else {
        return;
    };
    let (base, gates, _calls) = gated_server();
    let p = outage_project(&base);
    // The run cannot record its end while the server is away, nor give its lease back: on
    // PostgreSQL a run is judged by its suite's lease, not by a pid, so it is marked
    // incomplete once the lease expires. A short lease time keeps the test short.
    let ttl = [("EVALWATCH_LEASE_TTL", "2s")];
    let (child, rx) = spawn_run_with(&p, &server, "1", &ttl, &["run", "--no-reports"]);
    wait_for_results(&server, BEFORE);
    let run_id = server.text("SELECT run_id FROM runs");
    server.down();
    gates.open_all();
    let out = child.wait_with_output().expect("wait");
    let err: Vec<String> = rx.iter().collect();
    let err = err.join("\n");
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("store unreachable, retrying"), "{err}");
    assert!(
        err.contains("was unreachable for 1 s") && err.contains(&format!("--resume {run_id}")),
        "{err}"
    );
    assert!(!err.contains(&server.password), "{err}");

    server.up();
    assert_eq!(
        server.count("SELECT count(*) FROM results"),
        BEFORE,
        "what was stored before the outage is kept"
    );
    // Before the lease expired: refused, saying why and when it will not be.
    let started = std::time::Instant::now();
    assert_eq!(server.text("SELECT status FROM runs"), "running");
    {
        let (child, rx) = spawn_run_with(
            &p,
            &server,
            "1",
            &[("EVALWATCH_LEASE_TTL", "1h")],
            &["run", "--no-reports", "--resume", &run_id],
        );
        let out = child.wait_with_output().expect("wait");
        let err = rx.iter().collect::<Vec<_>>().join("\n");
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("still running") && err.contains("lease expires"),
            "{err}"
        );
    }
    std::thread::sleep(Duration::from_secs(3).saturating_sub(started.elapsed()));
    let (child, rx) = spawn_run_with(
        &p,
        &server,
        "1",
        &ttl,
        &["run", "--no-reports", "--resume", &run_id],
    );
    let out = child.wait_with_output().expect("wait");
    let err: Vec<String> = rx.iter().collect();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        err.join("\n")
    );
    assert_eq!(server.count("SELECT count(*) FROM results"), CASES);
    assert_eq!(
        server.count("SELECT count(DISTINCT seq) FROM results"),
        CASES
    );
    assert_eq!(server.text("SELECT status FROM runs"), "complete");
}

/// What a run's results hold, a line a result in plan order, as stored.
const RESULT_ROWS: &str = "SELECT r.seq || ' ' || c.case_id || ' ' || r.provider || ' ' || r.status || ' '
        || COALESCE(CAST(CAST(ROUND(r.score * 1000) AS INTEGER) AS TEXT), '-') || ' ' || COALESCE(r.output, '-') || ' '
        || COALESCE(p.text, '-') || ' ' || COALESCE(r.tags, '-') || ' ' || COALESCE(r.assertions, '-')
    FROM results r JOIN cases c ON c.id = r.case_ref LEFT JOIN prompts p ON p.id = r.prompt_ref
    ORDER BY r.seq";

/// The same replay run, stored in batches on each backend, reads back the same.
#[test]
fn pg_writer_stores_a_run_as_the_sqlite_writer_does() {
    let mut shown = Vec::new();
    for backend in Backend::all("pg_writer_batches") {
        let p = backend.project(Project::new());
        replay_suite(&p, "many", 2500, 7);
        let run = p.run(&["run", "--no-reports"]);
        let rows: Vec<String> = match &backend {
            Backend::Sqlite => {
                let conn = rusqlite::Connection::open(p.db()).expect("open");
                let mut st = conn.prepare(RESULT_ROWS).expect("prepare");
                st.query_map([], |r| r.get(0))
                    .expect("query")
                    .collect::<Result<_, _>>()
                    .expect("rows")
            }
            Backend::Pg(db) => db
                .client()
                .query(RESULT_ROWS, &[])
                .expect("query")
                .iter()
                .map(|r| r.get(0))
                .collect(),
        };
        shown.push((backend.name(), code(&run), stderr(&run), rows));
    }
    let (first, first_code, err, rows) = &shown[0];
    assert_eq!(*first_code, 0, "{first}: {err}");
    assert_eq!(rows.len(), 2500, "{first}: a row a result");
    for (name, other_code, err, other) in &shown[1..] {
        assert_eq!(
            first_code, other_code,
            "{first} and {name} exit differently: {err}"
        );
        assert_eq!(rows.len(), other.len(), "{first} and {name}: results");
        for (a, b) in rows.iter().zip(other) {
            assert_eq!(a, b, "{first} and {name} differ");
        }
    }
}
