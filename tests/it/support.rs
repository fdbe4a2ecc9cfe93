//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

/// A scratch project folder.
pub struct Project {
    pub dir: tempfile::TempDir,
    /// A PostgreSQL store every command is given (`EVALWATCH_DB`, and its password in
    /// `PGPASSWORD`), instead of the folder's SQLite file: see `crate::pgdb::Backend`.
    pub pg: Option<(String, String)>,
}

impl Project {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            pg: None,
        }
    }

    /// A copy of the repository's shipped examples (evalwatch.yaml and suites/).
    pub fn examples() -> Self {
        let p = Self::new();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        copy_dir(&root.join("suites"), &p.path().join("suites"));
        std::fs::copy(root.join("evalwatch.yaml"), p.path().join("evalwatch.yaml"))
            .expect("copy config");
        p
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn db(&self) -> PathBuf {
        self.path().join("evalwatch.db")
    }

    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.path().join(rel);
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        std::fs::write(&path, text).expect("write");
        path
    }

    pub fn cmd(&self) -> Command {
        Command::from_std(self.std_cmd())
    }

    /// [`Project::cmd`] as a `std::process::Command`, for a process to spawn and signal.
    pub fn std_cmd(&self) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("evalwatch"));
        c.current_dir(self.path())
            .env_remove("EVALWATCH_DB")
            .env_remove("EVALWATCH_CONFIG")
            .env("NO_COLOR", "1");
        if let Some((url, password)) = &self.pg {
            c.env("EVALWATCH_DB", url).env("PGPASSWORD", password);
        }
        c
    }

    /// Run with arguments; returns the output (never panics on a non-zero exit).
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run evalwatch")
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Parse `run --format json` output: one JSON object per suite run (JSON Lines).
pub fn json_runs(o: &Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The exit code, asserting the process was not killed by a panic (101) or signal.
pub fn code(o: &Output) -> i32 {
    let c = o.status.code().expect("exited normally");
    assert_ne!(c, 101, "evalwatch panicked:\n{}", stderr(o));
    c
}

/// A suite of `n` cases answered by a replay file; every `fail_every`-th answer is wrong.
pub fn replay_suite(p: &Project, name: &str, n: usize, fail_every: usize) -> PathBuf {
    use std::fmt::Write as _;
    let mut rec = String::new();
    let mut cases = String::new();
    for i in 0..n {
        let answer = if fail_every > 0 && i % fail_every == 0 {
            "wrong"
        } else {
            "right"
        };
        let _ = writeln!(
            rec,
            "{{\"case_id\": \"c{i}\", \"output\": \"the answer is {answer}\", \"latency_ms\": {}}}",
            100 + i % 50
        );
        let _ = writeln!(
            cases,
            "{{\"id\": \"c{i}\", \"vars\": {{\"q\": \"question {i}\"}}, \"expected\": \"right\"}}"
        );
    }
    p.write(&format!("suites/{name}.jsonl"), &rec);
    p.write(&format!("suites/cases/{name}.jsonl"), &cases);
    p.write(
        &format!("suites/{name}.yaml"),
        &format!(
            "suite: {name}\nproviders:\n  - id: rec\n    type: replay\n    file: {name}.jsonl\nprompt: \"Q: {{{{ q }}}}\"\ncases:\n  - include: cases/{name}.jsonl\n"
        ),
    )
}

/// The `cases:` lines of a suite of `n` cases `c0`, `c1`, ... asking `question {i}` (as
/// `q`), each expecting `expected`.
pub fn question_cases(n: usize, expected: &str) -> String {
    use std::fmt::Write as _;
    let mut cases = String::new();
    for i in 0..n {
        let _ = writeln!(
            cases,
            "  - {{id: c{i}, vars: {{q: question {i}}}, expected: {expected}}}"
        );
    }
    cases
}

/// Send a signal (`-INT`, `-TERM`, `-KILL`) to a process.
pub fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
}

/// Serve `app` on a free loopback port from a thread of its own (for the life of the test
/// process); returns the address.
pub fn serve_on_loopback(app: axum::Router) -> std::net::SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            tx.send(listener.local_addr().expect("addr")).expect("send");
            axum::serve(listener, app).await.expect("serve");
        });
    });
    rx.recv().expect("addr")
}
