//! SIGTERM and Ctrl-C while the suites load: a large case file takes seconds to read, and a
//! signal meanwhile must stop the command at once (exit 130) with nothing stored.

use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::support::{Project, signal};

/// Cases in the large file: about 150 MB of JSONL (each line about 1 KB; the four tests at
/// once stay under 1 GB of disk).
const CASES: usize = 150_000;

/// A suite whose cases come from a large JSONL file, whose last line is broken: a command
/// that reads the file to its end reports that line (exit 2); one stopped while reading
/// never gets there.
fn large_suite(p: &Project) -> std::path::PathBuf {
    let cases = p.path().join("suites/cases/large.jsonl");
    std::fs::create_dir_all(cases.parent().expect("parent")).expect("mkdir");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&cases).expect("create"));
    let pad = "x".repeat(1000);
    for i in 0..CASES {
        writeln!(
            out,
            "{{\"id\": \"c{i}\", \"vars\": {{\"q\": \"question {i} {pad}\"}}, \"expected\": \"question\"}}"
        )
        .expect("write");
    }
    writeln!(out, "this last line is not JSON").expect("write");
    out.flush().expect("flush");
    drop(out);
    p.write(
        "suites/large.yaml",
        "suite: large\nproviders:\n  - id: echo\n    type: echo\nprompt: \"Q: {{ q }}\"\ncases:\n  - include: cases/large.jsonl\n",
    );
    cases
}

/// Spawn `evalwatch ARGS` in the project.
fn spawn(p: &Project, args: &[&str]) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin("evalwatch"))
        .current_dir(p.path())
        .args(args)
        .env_remove("EVALWATCH_DB")
        .env_remove("EVALWATCH_CONFIG")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn")
}

/// Wait until process `pid` has `file` open (its /proc/PID/fd links to it): it is loading.
/// No clock: it polls until then (the test's own harness bounds a hung test).
fn wait_until_open(child: &mut Child, file: &Path) {
    let file = std::fs::canonicalize(file).expect("canonical");
    let fds = format!("/proc/{}/fd", child.id());
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!(
                "evalwatch ended ({status}) before it opened {}",
                file.display()
            );
        }
        let open = std::fs::read_dir(&fds).is_ok_and(|dir| {
            dir.flatten()
                .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == file))
        });
        if open {
            return;
        }
        std::thread::yield_now();
    }
}

/// Results stored so far, read without writing (None while there is no store or run yet).
fn stored_results(p: &Project) -> Option<i64> {
    let conn =
        rusqlite::Connection::open_with_flags(p.db(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .ok()?;
    conn.query_row("SELECT count(*) FROM results", [], |r| r.get(0))
        .ok()
}

/// (runs, results) in the store; (0, 0) when there is none.
fn stored(p: &Project) -> (i64, i64) {
    if !p.db().exists() {
        return (0, 0);
    }
    let conn = rusqlite::Connection::open(p.db()).expect("open");
    let count = |table: &str| {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap_or(0)
    };
    (count("runs"), count("results"))
}

/// Signal `evalwatch ARGS` once it reads the large case file (and, with `after_results`,
/// once it stored a result): its output, the large file removed. Exit 130 and the file's
/// broken last line never reached (it stopped while reading) are checked.
fn interrupted(p: &Project, args: &[&str], sig: &str, after_results: bool) -> String {
    let cases = large_suite(p);
    let mut child = spawn(p, args);
    wait_until_open(&mut child, &cases);
    if after_results {
        while stored_results(p).unwrap_or(0) == 0 {
            assert!(child.try_wait().expect("try_wait").is_none(), "it ended");
            std::thread::yield_now();
        }
    }
    signal(child.id(), sig);
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    // The large file goes before anything can fail an assertion.
    let _ = std::fs::remove_file(&cases);
    assert_eq!(out.status.code(), Some(130), "{}: {err}", out.status);
    assert!(err.contains("interrupted"), "{err}");
    assert!(
        !err.contains("not JSON") && !err.contains("invalid JSON"),
        "it read the file to its end before it stopped: {err}"
    );
    err
}

/// Nothing stored and no page written.
fn nothing_stored(p: &Project) {
    assert_eq!(stored(p), (0, 0), "nothing is stored");
    let pages = std::fs::read_dir(p.path().join("reports/runs"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
        .unwrap_or_default();
    assert!(pages.is_empty(), "no page of a run not kept: {pages:?}");
}

/// `--case` picks the file's last good case: nothing can begin before the file is read.
#[test]
fn sigterm_while_run_loads_a_large_case_file_exits_130_and_stores_nothing() {
    let p = Project::new();
    let err = interrupted(
        &p,
        &["run", "--case", "c149999", "suites/large.yaml"],
        "-TERM",
        false,
    );
    assert!(err.contains("nothing was run or stored"), "{err}");
    nothing_stored(&p);
}

#[test]
fn ctrl_c_while_run_loads_a_large_case_file_exits_130_and_stores_nothing() {
    let p = Project::new();
    interrupted(
        &p,
        &["run", "--case", "c149999", "suites/large.yaml"],
        "-INT",
        false,
    );
    nothing_stored(&p);
}

/// The cases stream in: the run begins with the first ones while the rest of the file is
/// still read and checked. A signal then keeps what finished, the run incomplete, without
/// waiting for the reading to end.
#[test]
fn sigterm_while_a_streamed_suite_is_still_read_keeps_the_finished_results_incomplete() {
    let p = Project::new();
    let err = interrupted(&p, &["run", "suites/large.yaml"], "-TERM", true);
    let (runs, results) = stored(&p);
    assert_eq!(runs, 1, "{err}");
    assert!(results > 0, "{err}");
    let conn = rusqlite::Connection::open(p.db()).expect("open");
    let (status, planned): (String, i64) = conn
        .query_row("SELECT status, planned FROM runs", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("run");
    assert_eq!(status, "incomplete", "{err}");
    assert_eq!(planned, results, "the plan is what it finished: {err}");
    assert!(err.contains("marked incomplete"), "{err}");
}

#[test]
fn sigterm_while_validate_loads_a_large_case_file_exits_130() {
    let p = Project::new();
    interrupted(&p, &["validate", "suites/large.yaml"], "-TERM", false);
    nothing_stored(&p);
}
