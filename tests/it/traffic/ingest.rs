//! `ingest`: every record counted once (re-reading, crashing and restarting), bad records
//! counted and explained without stopping the stream, secrets and user ids never stored raw.

use std::fmt::Write as _;

use crate::support::{Project, code, signal, stderr, stdout};

/// A source over `logs/*.jsonl`, sampling `sample`.
pub fn source_config(sample: &str) -> String {
    format!(
        "traffic:
  - id: bot
    path: logs/*.jsonl
    fields:
      time: /ts
      input: /q
      output: /a
      context: /ctx
      model: /model
      feature: /feature
      region: /region
      user: /user
      trace_id: /trace
      latency_ms: /ms
      tokens_in: /tin
      tokens_out: /tout
      cost_usd: /cost
      error: /error
      error_kind: /error/type
    sample: {sample}
    redact: [email, secret]
    monitor:
      - type: hallucination
      - type: not-is-refusal
"
    )
}

/// The salt every test ingests with.
pub const SALT: &str = "test-salt-3f9a";

/// `n` records, one every 500 ms from `start`: every 20th failed (a timeout), the others
/// with latency 100 + 10 * (i % 100) ms; 100 tokens in, 50 out, $0.001 each; 50 users;
/// features `chat` (even) and `summarise` (odd).
pub fn generated_log(start: i64, n: i64) -> String {
    let mut out = String::new();
    for i in 0..n {
        let ts = start * 1000 + i * 500;
        let feature = if i % 2 == 0 { "chat" } else { "summarise" };
        let error = if i % 20 == 0 {
            r#", "error": {"type": "timeout"}"#
        } else {
            ""
        };
        let _ = writeln!(
            out,
            r#"{{"ts": {ts}, "trace": "t{i}", "q": "Refunds? mail jane{i}@example.com", "a": "Refunds take 30 days. key sk-abcdefghijklmnopqrstuvwx", "ctx": "Refunds take 30 days.", "model": "m1", "feature": "{feature}", "region": "fr", "user": "user-{u}", "ms": {ms}, "tin": 100, "tout": 50, "cost": 0.001{error}}}"#,
            u = i % 50,
            ms = 100 + 10 * (i % 100),
        );
    }
    out
}

/// An hour and a half ago, on a minute boundary.
pub fn recent_start() -> i64 {
    let now = chrono::Utc::now().timestamp();
    (now - 5400) / 60 * 60
}

pub fn ingest(p: &Project, extra: &[&str]) -> std::process::Output {
    p.cmd()
        .env("EVALWATCH_TRAFFIC_SALT", SALT)
        .args(["ingest", "--format", "json"])
        .args(extra)
        .output()
        .expect("run evalwatch")
}

/// `ingest` with `args`, running on its own (stdout and stderr dropped).
pub fn spawn_ingest(p: &Project, args: &[&str]) -> std::process::Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("evalwatch"))
        .current_dir(p.path())
        .env("EVALWATCH_TRAFFIC_SALT", SALT)
        .env_remove("EVALWATCH_DB")
        .env_remove("EVALWATCH_CONFIG")
        .arg("ingest")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn")
}

/// Records counted in minute buckets so far, by committed batches (0 before the store exists).
pub fn records_counted(p: &Project) -> i64 {
    rusqlite::Connection::open(p.db())
        .and_then(|c| {
            c.query_row(
                "SELECT coalesce(sum(requests), 0) FROM traffic_buckets WHERE resolution = 'minute'",
                [],
                |r| r.get(0),
            )
        })
        .unwrap_or(0)
}

/// The texts of a list field of an `ingest --format json` output (`unfinished`, `rotated`),
/// one a line.
pub fn listed(out: &serde_json::Value, field: &str) -> String {
    out[field]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// The `errors` of `ingest --format json`, each as `at: reason`.
pub fn error_lines(j: &serde_json::Value) -> Vec<String> {
    j["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            format!(
                "{}: {}",
                e["at"].as_str().unwrap(),
                e["reason"].as_str().unwrap()
            )
        })
        .collect()
}

pub fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(stdout(out).trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", stdout(out), stderr(out)))
}

/// Every table of the store's traffic, as text, in a stable order.
pub fn dump(p: &Project) -> String {
    let conn = rusqlite::Connection::open(p.db()).expect("open store");
    let mut out = String::new();
    let all = |table: &str, order: &str| format!("SELECT * FROM {table} ORDER BY {order}");
    for (table, query) in [
        (
            "traffic_buckets",
            all(
                "traffic_buckets",
                "source, resolution, start, model, feature, segment, region",
            ),
        ),
        ("traffic_records", all("traffic_records", "source, key")),
        ("traffic_keys", all("traffic_keys", "source, key")),
        // The trace index with its source and labels (not their ids, which are the store's).
        (
            "traffic_trace_keys",
            "SELECT s.source, t.key, t.start, l.model, l.feature, l.segment, l.region
             FROM traffic_trace_keys t JOIN traffic_sources s ON s.id = t.source
             JOIN traffic_label_sets l ON l.id = t.labels
             ORDER BY s.source, t.key"
                .to_owned(),
        ),
    ] {
        let mut stmt = conn.prepare(&query).expect("query");
        let cols = stmt.column_count();
        let mut rows = stmt.query([]).expect("rows");
        while let Some(r) = rows.next().expect("row") {
            let _ = write!(out, "{table}:");
            for c in 0..cols {
                let v: rusqlite::types::Value = r.get(c).expect("value");
                let _ = write!(out, " {v:?}");
            }
            out.push('\n');
        }
    }
    out
}

/// A batch's records known by their trace id are claimed in the trace index's key order, not
/// the file's (random ids would otherwise scatter the inserts). What counts stays the file's
/// order: of two records with one trace, the first is new; and a record known by its trace
/// alone after a span of that trace (its key is trace and span) counts as seen.
#[test]
fn claims_in_the_index_s_order_keep_the_file_s_order_of_what_counts() {
    let p = Project::new();
    p.write("evalwatch.yaml", &source_config("0%"));
    let t = recent_start() * 1000;
    // Ids out of order; `ff..` twice, first without an error and then with one.
    let mut log = String::new();
    for (i, trace) in (0_i64..).zip(["ff", "0a", "7c", "ff", "01"]) {
        let error = if i == 3 {
            r#", "error": {"type": "timeout"}"#
        } else {
            ""
        };
        let _ = writeln!(
            log,
            r#"{{"ts": {}, "trace": "{}", "model": "m1"{error}}}"#,
            t + i * 1000,
            trace.repeat(16)
        );
    }
    p.write("logs/a.jsonl", &log);
    let out = json(&ingest(&p, &[]));
    assert_eq!(
        (out["new"].as_u64(), out["seen_before"].as_u64()),
        (Some(4), Some(1)),
        "{out}"
    );
    let traffic = p
        .cmd()
        .args(["traffic", "--window", "24h", "--format", "json"])
        .output()
        .expect("run evalwatch");
    let figures = json(&traffic);
    assert_eq!(figures["current"]["volume"], 4, "{figures}");
    assert_eq!(
        figures["current"]["errors_by_kind"],
        serde_json::json!({}),
        "the first `ff` counted, not the timeout after it: {figures}"
    );
    // A span of a trace, then a record known by that trace alone, in one batch.
    let trace = "ab".repeat(16);
    p.write(
        "logs/b.jsonl",
        &format!(
            "{{\"ts\": {t}, \"trace\": \"{trace}\", \"span_id\": \"s1\"}}\n{{\"ts\": {t}, \"trace\": \"{trace}\"}}\n"
        ),
    );
    let out = json(&ingest(&p, &[]));
    assert_eq!(
        (out["new"].as_u64(), out["seen_before"].as_u64()),
        (Some(1), Some(1)),
        "{out}"
    );
}

#[test]
fn reingesting_adds_nothing_and_a_new_line_is_read_once() {
    let p = Project::new();
    p.write("evalwatch.yaml", &source_config("10%"));
    let log = generated_log(recent_start(), 500);
    // Nothing to read yet is said, not silent.
    let out = ingest(&p, &[]);
    assert!(
        stderr(&out).contains("ingest `bot`: no file matches the source's `path`"),
        "{}",
        stderr(&out)
    );
    p.write("logs/a.jsonl", &log);
    let out = ingest(&p, &[]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let first = json(&out);
    assert_eq!(
        (first["records"].as_u64(), first["new"].as_u64()),
        (Some(500), Some(500))
    );
    // Each record is known by its trace id: claimed through the trace index, with no second
    // key of its own.
    let conn = rusqlite::Connection::open(p.db()).expect("open store");
    let count = |table: &str| -> i64 {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .expect("count")
    };
    assert_eq!(
        (count("traffic_trace_keys"), count("traffic_keys")),
        (500, 0)
    );
    let before = dump(&p);
    // The same file again: its offset says it was read.
    let again = json(&ingest(&p, &[]));
    assert_eq!(
        (again["records"].as_u64(), again["new"].as_u64()),
        (Some(0), Some(0))
    );
    // A copy of it under another name: every record is known by its trace id.
    p.write("logs/b.jsonl", &log);
    let copy = json(&ingest(&p, &[]));
    assert_eq!(
        (
            copy["records"].as_u64(),
            copy["new"].as_u64(),
            copy["seen_before"].as_u64()
        ),
        (Some(500), Some(0), Some(500))
    );
    assert_eq!(dump(&p), before);
    // A line appended: read, and only it.
    let extra = generated_log(recent_start() + 3600, 1).replace("\"t0\"", "\"t-extra\"");
    std::fs::write(p.path().join("logs/a.jsonl"), format!("{log}{extra}")).unwrap();
    let grown = json(&ingest(&p, &[]));
    assert_eq!(
        (grown["records"].as_u64(), grown["new"].as_u64()),
        (Some(1), Some(1))
    );
}

#[test]
fn kill_9_mid_ingest_and_a_restart_give_the_store_of_one_clean_ingest() {
    let n = 60_000;
    let log = generated_log(recent_start() - 86_400, n);
    let clean = Project::new();
    clean.write("evalwatch.yaml", &source_config("10%"));
    clean.write("logs/a.jsonl", &log);
    let out = ingest(&clean, &[]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));

    let p = Project::new();
    p.write("evalwatch.yaml", &source_config("10%"));
    p.write("logs/a.jsonl", &log);
    let mut child = spawn_ingest(&p, &["--format", "json"]);
    // Wait for the first committed batch, then kill the process without warning.
    while records_counted(&p) == 0 {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "ingest ended before a batch was seen"
        );
        std::thread::yield_now();
    }
    assert!(
        child.try_wait().expect("wait").is_none(),
        "ingest ended before it was killed"
    );
    signal(child.id(), "-KILL");
    child.wait().expect("wait");
    let partial = records_counted(&p);
    assert!(partial > 0 && partial < n, "killed after {partial} of {n}");
    let out = ingest(&p, &[]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert_eq!(json(&out)["new"].as_i64(), Some(n - partial));
    let (restarted, clean) = (dump(&p), dump(&clean));
    // Not assert_eq: the dumps are megabytes; the first rows that differ say why.
    let differ: Vec<(&str, &str)> = restarted
        .lines()
        .zip(clean.lines())
        .filter(|(a, b)| a != b)
        .take(3)
        .collect();
    assert!(
        restarted == clean,
        "the restarted store differs from a clean ingest ({} lines against {}); first rows that differ (restarted, clean): {differ:#?}",
        restarted.lines().count(),
        clean.lines().count()
    );
}

/// An hour's and a day's sums are those of their minutes added in time order, to the last
/// bit: here a minute of cost 1.0 and then 59 minutes of 1e-16 each, which 1.0 absorbs one
/// by one (added the other way round, the small ones would first sum to ~6e-15 and show).
/// They used to be added in the order of a hash map, which differs from process to
/// process: an ingest cut short and resumed could then store other bits than a clean one.
#[test]
fn an_hours_and_a_days_sums_add_their_minutes_in_time_order() {
    let p = Project::new();
    p.write("evalwatch.yaml", &source_config("10%"));
    let now = chrono::Utc::now().timestamp();
    let hour = (now - 3 * 3600) / 3600 * 3600;
    let mut log = String::new();
    for m in 0..60_i64 {
        let cost = if m == 0 { "1.0" } else { "1e-16" };
        let _ = writeln!(
            log,
            r#"{{"ts": {ts}, "trace": "t{m}", "q": "Refunds?", "a": "In 30 days.", "model": "m1", "feature": "chat", "region": "fr", "ms": 100, "tin": 1, "tout": 1, "cost": {cost}}}"#,
            ts = (hour + m * 60) * 1000,
        );
    }
    p.write("logs/a.jsonl", &log);
    let out = ingest(&p, &[]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert_eq!(json(&out)["new"].as_i64(), Some(60));
    let conn = rusqlite::Connection::open(p.db()).expect("open store");
    let cost = |resolution: &str| -> f64 {
        conn.query_row(
            "SELECT cost_usd FROM traffic_buckets WHERE resolution = ?1",
            [resolution],
            |r| r.get(0),
        )
        .expect("one bucket")
    };
    let in_order = (1..60).fold(1.0_f64, |sum, _| sum + 1e-16);
    assert_eq!(in_order.to_bits(), 1.0_f64.to_bits());
    assert_eq!(
        cost("hour").to_bits(),
        in_order.to_bits(),
        "{}",
        cost("hour")
    );
    assert_eq!(cost("day").to_bits(), in_order.to_bits(), "{}", cost("day"));
}

#[test]
fn bad_records_are_counted_and_explained_and_never_stop_the_stream() {
    let p = Project::new();
    p.write("evalwatch.yaml", &source_config("100%"));
    let start = recent_start();
    let good = generated_log(start, 3);
    let mut lines: Vec<String> = good.lines().map(str::to_owned).collect();
    let future = chrono::Utc::now().timestamp() + 86_400;
    lines.insert(1, "{not json".into());
    lines.insert(2, format!(r#"{{"ts": {start}, "tin": "many"}}"#));
    lines.insert(3, format!(r#"{{"ts": {future}, "trace": "later"}}"#));
    lines.insert(
        4,
        format!(r#"{{"ts": {start}, "q": "{}"}}"#, "x".repeat(10 << 20)),
    );
    // Out of order: an hour earlier than the line before it; counted in its own minute.
    lines.push(
        generated_log(start - 3600, 1)
            .trim_end()
            .replace("\"t0\"", "\"early\""),
    );
    let mut bytes = lines.join("\n").into_bytes();
    bytes.extend_from_slice(b"\n{\"ts\": 1, \"q\": \"\xff\xfe\"}\n");
    // The last line is still being written.
    bytes.extend_from_slice(format!(r#"{{"ts": {start}, "trace": "unfini"#).as_bytes());
    std::fs::create_dir_all(p.path().join("logs")).unwrap();
    std::fs::write(p.path().join("logs/a.jsonl"), &bytes).unwrap();
    let out = ingest(&p, &[]);
    assert_eq!(code(&out), 3, "{}{}", stdout(&out), stderr(&out));
    let j = json(&out);
    assert_eq!(
        (j["new"].as_u64(), j["malformed"].as_u64()),
        (Some(4), Some(5)),
        "{j}"
    );
    assert_eq!(j["out_of_order"].as_u64(), Some(1), "{j}");
    let errors = error_lines(&j);
    let expect = [
        "logs/a.jsonl:2: not JSON",
        "logs/a.jsonl:3: field `tokens_in` (/tin): ",
        "logs/a.jsonl:4: field `time`: ",
        "logs/a.jsonl:5: record of 10485",
        "logs/a.jsonl:9: record is not valid UTF-8",
    ];
    for (e, want) in errors.iter().zip(expect) {
        assert!(
            e.starts_with(want),
            "`{e}` is not `{want}...`; all: {errors:#?}"
        );
    }
    assert!(errors[2].contains("in the future"), "{errors:#?}");
    assert!(
        j["unfinished"][0]
            .as_str()
            .is_some_and(|u| u.starts_with("logs/a.jsonl:10: the last line has no newline")),
        "{j}"
    );
    // Once the line is finished, the next ingest reads it (and only it).
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(p.path().join("logs/a.jsonl"))
        .unwrap();
    std::io::Write::write_all(&mut f, b"shed\"}\n").unwrap();
    let next = json(&ingest(&p, &[]));
    assert_eq!(
        (next["new"].as_u64(), next["malformed"].as_u64()),
        (Some(1), Some(0)),
        "{next}"
    );
}

#[test]
fn secrets_and_user_ids_never_reach_the_store_unredacted() {
    let p = Project::new();
    p.write("evalwatch.yaml", &source_config("100%"));
    p.write("logs/a.jsonl", &generated_log(recent_start(), 40));
    let out = ingest(&p, &[]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let conn = rusqlite::Connection::open(p.db()).unwrap();
    let (kept, with_text): (i64, i64) = conn
        .query_row(
            "SELECT count(*), count(input) FROM traffic_records WHERE input LIKE '%[redacted:email]%' AND output LIKE '%[redacted:secret]%'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((kept, with_text), (40, 40));
    drop(conn);
    // Checkpoint the WAL so the file holds everything, then grep the raw bytes.
    p.run(&["runs"]);
    let mut bytes = std::fs::read(p.db()).unwrap();
    if let Ok(wal) = std::fs::read(p.path().join("evalwatch.db-wal")) {
        bytes.extend(wal);
    }
    let text = String::from_utf8_lossy(&bytes);
    for secret in [
        "@example.com",
        "sk-abcdefghijklmnopqrstuvwx",
        "user-7",
        SALT,
    ] {
        assert!(!text.contains(secret), "`{secret}` is in the store file");
    }
    // Without the salt, a source that maps `user` refuses to read (exit 2), storing nothing.
    let out = p
        .cmd()
        .env_remove("EVALWATCH_TRAFFIC_SALT")
        .args(["ingest"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("set EVALWATCH_TRAFFIC_SALT"),
        "{}",
        stderr(&out)
    );
}
