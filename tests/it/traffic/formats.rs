//! `ingest` reads OTLP/JSON files (the Collector's file exporter), CSV, standard input, and
//! with `--follow` growing and rotated files.

use std::io::Write as _;

use super::ingest::{error_lines, recent_start, records_counted, spawn_ingest};
use crate::support::{Project, code, signal, stderr, stdout};

fn json_out(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(stdout(out).trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", stdout(out), stderr(out)))
}

fn span(trace: &str, s: i64, attrs: &str, status: &str) -> String {
    format!(
        r#"{{"traceId":"{trace}","spanId":"eee19b7ec3c1b174","name":"chat","kind":3,"startTimeUnixNano":"{s}000000000","endTimeUnixNano":"{s}250000000","attributes":[{attrs}],"status":{status}}}"#
    )
}

#[test]
fn otlp_json_lines_are_read_and_spans_that_are_not_model_calls_counted() {
    let p = Project::new();
    p.write(
        "evalwatch.yaml",
        "traffic:\n  - id: spans\n    format: otlp\n    path: otel/spans.jsonl\n    fields: {feature: \"attr:app.feature\", region: \"resource:cloud.region\"}\n",
    );
    let t = recent_start();
    let genai = span(
        "5b8efff798038103d269b633813fc60c",
        t,
        r#"{"key":"gen_ai.request.model","value":{"stringValue":"gpt-4o"}},{"key":"gen_ai.usage.input_tokens","value":{"intValue":"42"}},{"key":"app.feature","value":{"stringValue":"search"}}"#,
        r#"{"code":2,"message":"rate limited"}"#,
    );
    let plain = span(
        "6b8efff798038103d269b633813fc60c",
        t,
        r#"{"key":"http.method","value":{"stringValue":"GET"}}"#,
        "{}",
    );
    let line = format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"cloud.region","value":{{"stringValue":"eu-west-1"}}}}]}},"scopeSpans":[{{"spans":[{genai},{plain}]}}]}}]}}"#
    );
    p.write("otel/spans.jsonl", &format!("{line}\n{{\"ts\": 1}}\n"));
    let out = p.run(&["ingest", "--format", "json"]);
    assert_eq!(code(&out), 3, "{}{}", stdout(&out), stderr(&out));
    let j = json_out(&out);
    assert_eq!(
        (
            j["new"].as_u64(),
            j["skipped_spans"].as_u64(),
            j["malformed"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{j}"
    );
    assert!(
        j["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("not an OTLP/JSON trace export"),
        "{j}"
    );
    let out = p.run(&["traffic", "--format", "json"]);
    let t = json_out(&out);
    let c = &t["current"];
    assert_eq!(
        (c["volume"].as_u64(), c["tokens_in"].as_u64()),
        (Some(1), Some(42)),
        "{t}"
    );
    assert_eq!(c["errors_by_kind"], serde_json::json!({"rate limited": 1}));
    assert_eq!(t["usage"]["by_model"], serde_json::json!({"gpt-4o": 1}));
    assert_eq!(t["usage"]["by_feature"], serde_json::json!({"search": 1}));
    assert_eq!(t["usage"]["by_region"], serde_json::json!({"eu-west-1": 1}));
}

#[test]
fn csv_from_standard_input_is_read_and_priced_from_the_providers_table() {
    let p = Project::new();
    p.write(
        "evalwatch.yaml",
        "providers:\n  - {id: prod, type: openai, model: m1, pricing: {input_per_mtok: 1.0, output_per_mtok: 2.0}}\ntraffic:\n  - id: rows\n    format: csv\n    fields: {time: ts, model: model, latency_ms: ms, tokens_in: tin, tokens_out: tout}\n",
    );
    let t = recent_start();
    let body = format!(
        "ts,model,ms,tin,tout\n{t},m1,120,1000,500\n{},m1,80,1000,500\n{},m1,slow,1,1\n",
        t + 1,
        t + 2
    );
    let out = p
        .cmd()
        .args(["ingest", "rows", "-", "--format", "json"])
        .write_stdin(body)
        .output()
        .unwrap();
    assert_eq!(code(&out), 3, "{}{}", stdout(&out), stderr(&out));
    let j = json_out(&out);
    assert_eq!(
        (j["new"].as_u64(), j["malformed"].as_u64()),
        (Some(2), Some(1)),
        "{j}"
    );
    assert!(j["errors"][0]["at"] == "stdin:4", "{j}");
    let t = json_out(&p.run(&["traffic", "--format", "json"]));
    // 2 x (1000 in at $1/M + 500 out at $2/M) = $0.004.
    let cost = t["current"]["cost_usd"].as_f64().unwrap();
    assert!((cost - 0.004).abs() < 1e-12, "{t}");
}

#[test]
fn follow_reads_lines_as_they_are_written_and_a_rotated_file_from_its_start() {
    let p = Project::new();
    p.write(
        "evalwatch.yaml",
        "traffic:\n  - id: live\n    path: logs/app.jsonl\n    fields: {time: /ts, trace_id: /id}\n",
    );
    let t = recent_start();
    let line = |id: &str| format!("{{\"ts\": {t}, \"id\": \"{id}\"}}\n");
    p.write("logs/app.jsonl", &line("a"));
    let mut child = spawn_ingest(&p, &["--follow"]);
    let wait_for = |n: i64, child: &mut std::process::Child| {
        while records_counted(&p) < n {
            assert!(child.try_wait().unwrap().is_none(), "--follow ended");
            std::thread::yield_now();
        }
    };
    wait_for(1, &mut child);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(p.path().join("logs/app.jsonl"))
        .unwrap();
    f.write_all(line("b").as_bytes()).unwrap();
    wait_for(2, &mut child);
    // Rotated: the old file moves away, a new one takes its name.
    std::fs::rename(
        p.path().join("logs/app.jsonl"),
        p.path().join("logs/app.jsonl.1"),
    )
    .unwrap();
    p.write("logs/app.jsonl", &line("c"));
    wait_for(3, &mut child);
    signal(child.id(), "-TERM");
    child.wait().unwrap();
    assert_eq!(records_counted(&p), 3);
}

/// Standard input has no next ingest: its last line is read without its newline (as
/// `printf` and some exporters end), plain and gzip alike.
#[test]
fn the_last_line_of_standard_input_is_read_without_its_newline() {
    let p = Project::new();
    p.write(
        "evalwatch.yaml",
        "traffic:\n  - id: app\n    fields: {time: /ts, trace_id: /tid, latency_ms: /ms}\n",
    );
    let t = recent_start();
    let body = format!(
        "{{\"ts\": {t}, \"tid\": \"s1\", \"ms\": 10}}\n{{\"ts\": {t}, \"tid\": \"s2\", \"ms\": 10}}"
    );
    let out = p
        .cmd()
        .args(["ingest", "app", "-", "--format", "json"])
        .write_stdin(body)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let j = json_out(&out);
    assert_eq!(
        (j["records"].as_u64(), j["new"].as_u64()),
        (Some(2), Some(2)),
        "{j}"
    );
    assert_eq!(j["unfinished"], serde_json::json!([]), "{j}");
    assert_eq!(records_counted(&p), 2);
    // gzip on standard input, its text without a final newline.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(format!("{{\"ts\": {t}, \"tid\": \"s3\", \"ms\": 10}}").as_bytes())
        .unwrap();
    let out = p
        .cmd()
        .args(["ingest", "app", "-", "--format", "json"])
        .write_stdin(gz.finish().unwrap())
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert_eq!(json_out(&out)["new"].as_u64(), Some(1), "{}", stdout(&out));
}

/// A CSV row that is not a row of its file (a quote left open, fewer or more cells than the
/// header) is malformed, located and explained like a bad JSON line; the rest is stored.
#[test]
fn csv_rows_with_an_open_quote_or_the_wrong_cell_count_are_malformed() {
    let p = Project::new();
    p.write(
        "evalwatch.yaml",
        "traffic:\n  - id: rows\n    format: csv\n    path: logs/a.csv\n    fields: {time: ts, trace_id: tid, input: q, latency_ms: ms, error: err}\n",
    );
    let t = recent_start();
    p.write(
        "logs/a.csv",
        &format!(
            "ts,tid,q,ms,err\n\
             {t},c1,\"a, \"\"quoted\"\" cell\",100,\n\
             {t},c2,\"unterminated,100,\n\
             {t},c3,q,100\n\
             {t},c4,q,100,,extra\n\
             {t},c5,q\"inside,100,false\n"
        ),
    );
    let out = p.run(&["ingest", "--format", "json"]);
    assert_eq!(code(&out), 3, "{}{}", stdout(&out), stderr(&out));
    let j = json_out(&out);
    assert_eq!(
        (j["new"].as_u64(), j["malformed"].as_u64()),
        (Some(2), Some(3)),
        "{j}"
    );
    let errors = error_lines(&j);
    assert!(
        errors[0].starts_with("logs/a.csv:3: not CSV: the quote opened"),
        "{errors:#?}"
    );
    assert!(
        errors[0].contains("a quoted cell cannot span lines"),
        "{errors:#?}"
    );
    assert!(
        errors[1].starts_with(
            "logs/a.csv:4: not a row of this file: 4 cells where the header names 5 columns"
        ),
        "{errors:#?}"
    );
    assert!(
        errors[2].starts_with("logs/a.csv:5: not a row of this file: 6 cells"),
        "{errors:#?}"
    );
    // The text ingest says the same on stderr, file:line first.
    let p2 = Project::new();
    p2.write(
        "evalwatch.yaml",
        &std::fs::read_to_string(p.path().join("evalwatch.yaml")).unwrap(),
    );
    p2.write(
        "logs/a.csv",
        &std::fs::read_to_string(p.path().join("logs/a.csv")).unwrap(),
    );
    let out = p2.run(&["ingest"]);
    assert_eq!(code(&out), 3);
    assert!(
        stderr(&out).contains("logs/a.csv:4: not a row of this file"),
        "{}",
        stderr(&out)
    );
    let t = json_out(&p.run(&["traffic", "--format", "json"]));
    assert_eq!(t["current"]["volume"].as_u64(), Some(2), "{t}");
}

/// `ingest --follow` says each malformed record as it reads it (`file:line: reason` on
/// stderr), and Ctrl-C or SIGTERM ends it with the summary of what it read and stored, as an
/// ingest without `--follow` ends (exit 3: some records were unreadable); `--format json`
/// prints its one object.
#[test]
fn follow_says_malformed_records_as_it_reads_them_and_its_summary_at_a_signal() {
    use std::io::Read as _;
    for (format, sig) in [("text", "-TERM"), ("json", "-INT")] {
        let p = Project::new();
        p.write(
            "evalwatch.yaml",
            "traffic:\n  - id: live\n    path: logs/app.jsonl*\n    fields: {time: /ts, trace_id: /tid, latency_ms: /ms}\n",
        );
        let t = recent_start();
        p.write(
            "logs/app.jsonl",
            &format!(
                "{{\"ts\": {t}, \"tid\": \"a\", \"ms\": 1}}\nbroken line\n{{\"ts\": {t}, \"tid\": \"b\", \"ms\": \"slow\"}}\n"
            ),
        );
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("evalwatch"))
            .current_dir(p.path())
            .env_remove("EVALWATCH_DB")
            .env_remove("EVALWATCH_CONFIG")
            .args(["ingest", "--follow", "--format", format])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        // stderr, read as it comes, line by line.
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let mut err = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut all = String::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                all.push_str(&String::from_utf8_lossy(&buf[..n]));
                let _ = tx.send(all.clone());
            }
            all
        });
        let mut said = String::new();
        let mut wait_for = |want: &str| {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while !said.contains(want) {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                said = rx
                    .recv_timeout(left)
                    .unwrap_or_else(|_| panic!("`{want}` not said while following: {said}"));
            }
        };
        wait_for("logs/app.jsonl:2: not JSON");
        wait_for("logs/app.jsonl:3: field `latency_ms` (/ms)");
        // A bad line appended while following is said too.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(p.path().join("logs/app.jsonl"))
            .unwrap();
        f.write_all(b"{\"ts\": \"later\"}\n").unwrap();
        wait_for("logs/app.jsonl:4: field `time` (/ts)");
        assert_eq!(records_counted(&p), 1);
        signal(child.id(), sig);
        let status = child.wait().unwrap();
        let stderr_all = reader.join().unwrap();
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(status.code(), Some(3), "{out}{stderr_all}");
        assert!(
            !stderr_all.contains("nothing was run or stored"),
            "{stderr_all}"
        );
        // Each bad line said once.
        assert_eq!(
            stderr_all.matches("logs/app.jsonl:2:").count(),
            1,
            "{stderr_all}"
        );
        if format == "text" {
            assert!(stderr_all.contains("stopped by a signal"), "{stderr_all}");
            assert!(
                out.contains("ingest live: 1 record read from 1 file: 1 new, 0 seen before")
                    && out.contains("; 3 malformed"),
                "{out}"
            );
        } else {
            let j: serde_json::Value = serde_json::from_str(out.trim())
                .unwrap_or_else(|e| panic!("not JSON ({e}): {out}{stderr_all}"));
            assert_eq!(
                (
                    j["records"].as_u64(),
                    j["new"].as_u64(),
                    j["malformed"].as_u64(),
                    j["files"].as_u64()
                ),
                (Some(1), Some(1), Some(3), Some(1)),
                "{j}"
            );
            assert_eq!(j["errors"][2]["at"], "logs/app.jsonl:4", "{j}");
        }
    }
}

/// A JSONL file that starts with a UTF-8 byte order mark (as Windows tools write it) loses no
/// record: not the first, not when the file grows and is read on from its offset, not on
/// standard input, not gzip-compressed.
#[test]
fn a_jsonl_file_with_a_byte_order_mark_keeps_its_first_record() {
    let p = Project::new();
    p.write(
        "evalwatch.yaml",
        "traffic:\n  - id: app\n    path: logs/*.jsonl\n    fields: {time: /ts, trace_id: /trace}\n",
    );
    let t = recent_start();
    let line = |i: i64| format!("{{\"ts\": {}, \"trace\": \"t{i}\"}}\n", t + i);
    let mut log = format!("\u{feff}{}{}", line(0), line(1));
    p.write("logs/a.jsonl", &log);
    let run = |p: &Project, args: &[&str], stdin: Option<Vec<u8>>| {
        let mut cmd = p.cmd();
        cmd.arg("ingest").args(args).args(["--format", "json"]);
        if let Some(body) = stdin {
            cmd.write_stdin(body);
        }
        let out = cmd.output().unwrap();
        assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
        let j = json_out(&out);
        (j["records"].as_u64().unwrap(), j["new"].as_u64().unwrap())
    };
    assert_eq!(run(&p, &[], None), (2, 2));
    // Grown: read on from the offset (which counts the mark), the new line once.
    log.push_str(&line(2));
    p.write("logs/a.jsonl", &log);
    assert_eq!(run(&p, &[], None), (1, 1));
    assert_eq!(run(&p, &[], None), (0, 0));
    assert_eq!(records_counted(&p), 3);
    // The same text on standard input, plain and gzip-compressed: all known, none lost.
    assert_eq!(
        run(&p, &["app", "-"], Some(log.clone().into_bytes())),
        (3, 0)
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(format!("{log}{}", line(3)).as_bytes())
        .unwrap();
    assert_eq!(run(&p, &["app", "-"], Some(gz.finish().unwrap())), (4, 1));
    assert_eq!(records_counted(&p), 4);
}

/// A signal during `--follow`'s first pass over a large file stops it at the next batch (it
/// does not read the file to its end first): what was read is stored with the offset after
/// it, and the next ingest reads the rest, every record counted once.
#[test]
fn follow_stops_within_its_first_pass_at_a_signal_and_the_next_ingest_reads_the_rest() {
    use std::fmt::Write as _;
    let p = Project::new();
    p.write(
        "evalwatch.yaml",
        "traffic:\n  - id: big\n    path: logs/app.jsonl\n    fields: {time: /ts}\n",
    );
    let t = recent_start();
    let n: i64 = 300_000;
    let mut log = String::new();
    for i in 0..n {
        let _ = writeln!(log, "{{\"ts\": {}}}", t * 1000 + i);
    }
    p.write("logs/app.jsonl", &log);
    let mut child = spawn_ingest(&p, &["--follow"]);
    // The first chunk is stored: the pass is under way.
    while records_counted(&p) == 0 {
        assert!(child.try_wait().unwrap().is_none(), "--follow ended");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    signal(child.id(), "-INT");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let counted = records_counted(&p);
    assert!(counted < n, "the first pass ran to its end: {counted}");
    let out = p
        .cmd()
        .args(["ingest", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let j = json_out(&out);
    assert_eq!(j["new"].as_i64(), Some(n - counted), "{j}");
    assert_eq!(records_counted(&p), n);
}
