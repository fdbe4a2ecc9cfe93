//! `evalwatch ingest` measured whole: the real release binary reading a generated JSONL log
//! (~580 bytes a record) into a fresh store, every stage included (read, parse, map, redact,
//! user HMAC, sample, buckets, de-duplication keys, trace index, sampled records, commit).
//!
//! `cargo bench --bench traffic_ingest -- MODE [ARGS]`:
//! - `rate [RECORDS [RUNS]]` (default 1,000,000 records, 5 runs): records/s of one `ingest`
//!   of a file, without a monitor, and with the `hallucination` monitor scoring the 10% sample
//!   (records then carry two retrieved passages, ~730 bytes). Runs of the two alternate.
//! - `memory [RECORDS...]` (default 1,000,000 and 10,000,000): peak RSS of `ingest -` fed on
//!   stdin by a generator (nothing on disk but the store).
//! - `bytes [RECORDS]` (default 1,000,000): what the store holds per record, table by table
//!   (SQLite's `dbstat`), after the ingest and after `prune` has applied the default retention
//!   to a day of traffic 40 days old (sample and keys gone, minute buckets rolled up).
//!
//! - `project DIR [RECORDS]` (default 1,000,000): writes the project `rate` measures into DIR
//!   (`evalwatch.yaml` without a monitor, `plain.jsonl`) and leaves it there, so that
//!   `evalwatch ingest app plain.jsonl` can be profiled by hand (`perf record`).
//!
//! Each run prints its figures; `rate` ends with the median and range of each kind.
//!
//! The log's trace ids are the records' numbers (they grow with time, and the trace index is
//! appended to); `TRACE_IDS=random` scrambles them into random-looking W3C ids, as
//! OpenTelemetry makes them (see `support/traffic_log.rs`).

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

#[path = "support/child.rs"]
mod child;
#[path = "support/traffic_log.rs"]
#[allow(dead_code)] // each bench uses part of it
mod traffic_log;

const SALT: (&str, &str) = ("EVALWATCH_TRAFFIC_SALT", "bench-salt");

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let nums: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let day = day_start();
    match args.first().map(String::as_str) {
        Some("memory") => {
            let sizes = if nums.is_empty() {
                vec![1_000_000, 10_000_000]
            } else {
                nums
            };
            for n in sizes {
                memory(n, day);
            }
        }
        Some("bytes") => bytes(nums.first().copied().unwrap_or(1_000_000), day),
        Some("project") => {
            let dir = Path::new(args.get(1).expect("project DIR [RECORDS]"));
            std::fs::create_dir_all(dir).expect("create the project's folder");
            project(dir, false);
            let n = nums.first().copied().unwrap_or(1_000_000);
            traffic_log::write(&dir.join("plain.jsonl"), n, day, false);
            println!(
                "{}: evalwatch.yaml and plain.jsonl ({n} records)",
                dir.display()
            );
        }
        _ => rate(
            nums.first().copied().unwrap_or(1_000_000),
            nums.get(1).copied().unwrap_or(5),
            day,
        ),
    }
}

/// The start of the day 40 days ago (UTC): old enough for `prune`'s default retention of
/// records (30d) and minute buckets (14d), young enough for hour buckets (180d).
fn day_start() -> i64 {
    let now = chrono::Utc::now().timestamp();
    (now - 40 * 86_400).div_euclid(86_400) * 86_400
}

/// A project of one source `app` reading the generated log; `monitor`: the hallucination
/// check on the sample.
fn project(dir: &Path, monitor: bool) {
    let mut yaml = String::from(
        "store: evalwatch.db
traffic:
  - id: app
    format: jsonl
    fields:
      time: /ts
      input: /request/messages
      output: /response/text
      context: /retrieval/passages
      model: /model
      feature: /meta/feature
      segment: /user/plan
      region: /geo/country
      user: /user/id
      trace_id: /trace_id
      latency_ms: /latency_ms
      tokens_in: /usage/prompt_tokens
      tokens_out: /usage/completion_tokens
      cost_usd: /cost
      error: /error
      error_kind: /error/type
    sample: 10%
    redact: [email, phone, card, secret]
",
    );
    if monitor {
        yaml.push_str("    monitor:\n      - type: hallucination\n");
    }
    std::fs::write(dir.join("evalwatch.yaml"), yaml).expect("write config");
}

/// What one `ingest` did and cost.
struct Ran {
    secs: f64,
    cpu_secs: f64,
    rss_mib: f64,
    report: serde_json::Value,
}

/// Runs `evalwatch ingest app <from> --format json` in `dir`; `feed`: the records to write to
/// its stdin (`from` is then `-`).
fn ingest(dir: &Path, from: &str, feed: Option<(usize, i64)>) -> Ran {
    let start = Instant::now();
    // Waited for by `child::wait` (wait4), which reads its own resource usage.
    #[allow(clippy::zombie_processes)]
    let mut c = Command::new(env!("CARGO_BIN_EXE_evalwatch"))
        .current_dir(dir)
        .env_remove("EVALWATCH_DB")
        .env_remove("EVALWATCH_CONFIG")
        .env(SALT.0, SALT.1)
        .args(["ingest", "app", from, "--format", "json"])
        .stdin(if feed.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn evalwatch");
    let writer = feed.map(|(n, day)| {
        let mut stdin = c.stdin.take().expect("stdin");
        std::thread::spawn(move || {
            let mut buf = Vec::with_capacity(1 << 20);
            for i in 0..n {
                traffic_log::record(&mut buf, i, n, day, false);
                if buf.len() >= 1 << 20 {
                    stdin.write_all(&buf).expect("feed");
                    buf.clear();
                }
            }
            stdin.write_all(&buf).expect("feed");
        })
    });
    let mut out = String::new();
    c.stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read report");
    if let Some(w) = writer {
        w.join().expect("generator");
    }
    let usage = child::wait(c.id());
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(usage.exit_code, 0, "ingest failed: {out}");
    Ran {
        secs,
        cpu_secs: usage.cpu.as_secs_f64(),
        rss_mib: usage.max_rss_kib as f64 / 1024.0,
        report: serde_json::from_str(&out).expect("json report"),
    }
}

fn rate(n: usize, runs: usize, day: i64) {
    let tmp = tempfile::tempdir().expect("tmp");
    let plain = tmp.path().join("plain.jsonl");
    let with_context = tmp.path().join("context.jsonl");
    traffic_log::write(&plain, n, day, false);
    traffic_log::write(&with_context, n, day, true);
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len()) as f64 / n as f64;
    println!(
        "{n} records: {:.0} bytes each without passages, {:.0} with",
        size(&plain),
        size(&with_context)
    );
    let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for run in 1..=runs {
        for (kind, monitor) in [false, true].into_iter().enumerate() {
            let dir = tempfile::tempdir().expect("tmp");
            project(dir.path(), monitor);
            let log = if monitor { &with_context } else { &plain };
            let ran = ingest(dir.path(), &log.display().to_string(), None);
            let r = &ran.report;
            assert_eq!(r["new"].as_u64(), Some(n as u64), "{r}");
            let scored = r["scored"].as_u64().unwrap_or(0);
            assert_eq!(scored > 0, monitor, "{r}");
            let rate = n as f64 / ran.secs;
            println!(
                "run {run} {}: {rate:>9.0} records/s ({:.2} s, CPU {:.2} s, peak RSS {:.1} MiB, {} sampled, {scored} scored)",
                if monitor { "scored" } else { "plain " },
                ran.secs,
                ran.cpu_secs,
                ran.rss_mib,
                r["sampled"],
            );
            rates[kind].push(rate);
        }
    }
    for (name, r) in ["without a monitor", "10% scored by hallucination"]
        .into_iter()
        .zip(rates)
    {
        println!("{name}: {}", traffic_log::median_range(r, "records/s"));
    }
}

fn memory(n: usize, day: i64) {
    let dir = tempfile::tempdir().expect("tmp");
    project(dir.path(), false);
    let ran = ingest(dir.path(), "-", Some((n, day)));
    assert_eq!(ran.report["new"].as_u64(), Some(n as u64), "{}", ran.report);
    println!(
        "{n} records on stdin: peak RSS {:.1} MiB, {:.0} records/s ({:.1} s, CPU {:.1} s)",
        ran.rss_mib,
        n as f64 / ran.secs,
        ran.secs,
        ran.cpu_secs
    );
}

fn bytes(n: usize, day: i64) {
    let dir = tempfile::tempdir().expect("tmp");
    project(dir.path(), false);
    let log = dir.path().join("app.jsonl");
    traffic_log::write(&log, n, day, false);
    let ran = ingest(dir.path(), "app.jsonl", None);
    assert_eq!(ran.report["new"].as_u64(), Some(n as u64), "{}", ran.report);
    std::fs::remove_file(&log).expect("remove log");
    let db = dir.path().join("evalwatch.db");
    tables(&db, n, "after ingest");
    let out = Command::new(env!("CARGO_BIN_EXE_evalwatch"))
        .current_dir(dir.path())
        .args(["prune"])
        .output()
        .expect("prune");
    assert!(out.status.success(), "{out:?}");
    tables(
        &db,
        n,
        "after prune (default retention, traffic 40 days old)",
    );
}

/// Bytes of the store by table (with its indexes), per record read.
fn tables(db: &Path, n: usize, when: &str) {
    let conn = rusqlite::Connection::open(db).expect("open store");
    // Rewritten compact, and the WAL folded into the file, so that its size is what it holds.
    conn.execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("vacuum");
    let mut q = conn
        .prepare(
            "SELECT coalesce(m.tbl_name, d.name), sum(d.pgsize) FROM dbstat d
             LEFT JOIN sqlite_schema m ON m.name = d.name
             GROUP BY 1 HAVING sum(d.pgsize) > 4096 ORDER BY 2 DESC",
        )
        .expect("dbstat");
    let rows: Vec<(String, i64)> = q
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("rows")
        .map(|r| r.expect("row"))
        .collect();
    let total = std::fs::metadata(db).map_or(0, |m| m.len());
    println!(
        "{when}: store {:.1} MB, {:.1} bytes per record",
        total as f64 / 1e6,
        total as f64 / n as f64
    );
    for (table, bytes) in rows {
        println!(
            "  {table:<28} {:>12} bytes  {:>7.1} per record",
            bytes,
            bytes as f64 / n as f64
        );
    }
}
