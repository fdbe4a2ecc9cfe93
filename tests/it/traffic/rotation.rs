//! Logs rotated between two ingests (`logrotate` renames the log and creates it anew, or
//! copies and truncates it): the old file is followed to its new name when the source's path
//! takes it, and what cannot be read is said, never lost silently.

use super::ingest::{
    generated_log, ingest, json, listed, recent_start, records_counted, source_config,
};
use crate::support::{Project, code, stderr, stdout};

/// Lines `from..to` (0-based) of the test log of 400 records.
fn lines(log: &str, from: usize, to: usize) -> String {
    let mut out = String::new();
    for l in log.lines().skip(from).take(to - from) {
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// A project over `path`, its log's first 100 records ingested into `logs/app.jsonl`, then
/// 20 more appended and the file rotated to `logs/app.jsonl.1`, and a new `logs/app.jsonl`
/// of 30 records.
fn rotated_project(path: &str, log: &str) -> Project {
    let p = Project::new();
    p.write(
        "evalwatch.yaml",
        &source_config("10%").replace("logs/*.jsonl", path),
    );
    p.write("logs/app.jsonl", &lines(log, 0, 100));
    let out = ingest(&p, &[]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert_eq!(json(&out)["new"].as_u64(), Some(100));
    let live = p.path().join("logs/app.jsonl");
    std::fs::write(
        &live,
        format!("{}{}", lines(log, 0, 100), lines(log, 100, 120)),
    )
    .unwrap();
    std::fs::rename(&live, p.path().join("logs/app.jsonl.1")).unwrap();
    p.write("logs/app.jsonl", &lines(log, 120, 150));
    p
}

#[test]
fn a_rotated_log_is_read_on_under_its_new_name_when_the_path_takes_it() {
    let log = generated_log(recent_start(), 400);
    let p = rotated_project("logs/app.jsonl*", &log);
    let out = ingest(&p, &[]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let read = json(&out);
    // The 20 lines the old file got after the last ingest, and the new file's 30: not the
    // old file's first 100 again.
    assert_eq!(
        (
            read["records"].as_u64(),
            read["new"].as_u64(),
            read["seen_before"].as_u64()
        ),
        (Some(50), Some(50), Some(0)),
        "{read}"
    );
    assert!(
        listed_rotated(&read).contains(
            "logs/app.jsonl was rotated since the last ingest: its old file, now logs/app.jsonl.1, is read on from line 101"
        ),
        "{read}"
    );
    assert_eq!(records_counted(&p), 150);
    // Rotated again: the older copy, unchanged, is not read again, and nothing is said of it.
    let live = p.path().join("logs/app.jsonl");
    std::fs::rename(
        p.path().join("logs/app.jsonl.1"),
        p.path().join("logs/app.jsonl.2"),
    )
    .unwrap();
    std::fs::write(
        &live,
        format!("{}{}", lines(&log, 120, 150), lines(&log, 150, 160)),
    )
    .unwrap();
    std::fs::rename(&live, p.path().join("logs/app.jsonl.1")).unwrap();
    p.write("logs/app.jsonl", &lines(&log, 160, 170));
    let again = json(&ingest(&p, &[]));
    assert_eq!(
        (again["records"].as_u64(), again["new"].as_u64()),
        (Some(20), Some(20)),
        "{again}"
    );
    assert_eq!(listed_rotated(&again).lines().count(), 1, "{again}");
    assert_eq!(records_counted(&p), 170);
}

#[test]
fn a_rotated_log_outside_the_path_is_said_with_what_is_not_read() {
    let log = generated_log(recent_start(), 400);
    let p = rotated_project("logs/app.jsonl", &log);
    let out = ingest(&p, &[]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let read = json(&out);
    assert_eq!(read["new"].as_u64(), Some(30), "{read}");
    let unread = lines(&log, 100, 120).len();
    let said = format!(
        "logs/app.jsonl was rotated since the last ingest: its old file, now logs/app.jsonl.1, has {unread} bytes after line 100, where that ingest stopped, which are not read: the source's path does not take it (a glob such as `logs/app.jsonl*` would)"
    );
    assert!(listed_rotated(&read).contains(&said), "{read}");
    // The file named on the command line: the message names what was given.
    let p = rotated_project("logs/app.jsonl", &log);
    let read = json(&ingest(&p, &["bot", "logs/app.jsonl"]));
    assert_eq!(read["new"].as_u64(), Some(30), "{read}");
    assert!(
        listed_rotated(&read).contains(&said.replace(
            "the source's path does not take it",
            "the paths given do not take it"
        )),
        "{read}"
    );
    // In text, a warning (kept by --quiet).
    let p = rotated_project("logs/app.jsonl", &log);
    let out = p
        .cmd()
        .env("EVALWATCH_TRAFFIC_SALT", super::ingest::SALT)
        .args(["--quiet", "ingest"])
        .output()
        .expect("ingest");
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains(&format!("warning: {said}")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_log_truncated_in_place_is_read_from_its_start_and_said() {
    let log = generated_log(recent_start(), 400);
    let p = Project::new();
    p.write("evalwatch.yaml", &source_config("10%"));
    p.write("logs/app.jsonl", &lines(&log, 0, 100));
    assert_eq!(json(&ingest(&p, &[]))["new"].as_u64(), Some(100));
    // `copytruncate`: the same file, emptied, then written again.
    p.write("logs/app.jsonl", &lines(&log, 100, 110));
    let read = json(&ingest(&p, &[]));
    assert_eq!(
        (read["records"].as_u64(), read["new"].as_u64()),
        (Some(10), Some(10)),
        "{read}"
    );
    assert!(
        listed_rotated(&read).contains(
            "logs/app.jsonl is shorter than where the last ingest stopped (truncated, as logrotate's `copytruncate` does): read from its start"
        ),
        "{read}"
    );
}

/// The `rotated` notes of an `ingest --format json`.
fn listed_rotated(out: &serde_json::Value) -> String {
    listed(out, "rotated")
}
