//! Production traffic on both backends (SQLite and PostgreSQL, `crate::pgdb::Backend`): the
//! same generated log ingested, re-ingested, given feedback, shown, paged, reviewed, alerted
//! on and pruned gives the same outputs and exit codes; and on PostgreSQL, several `ingest`
//! and `collect` processes writing one source at once lose no count.

use std::fmt::Write as _;
use std::process::{Child, Output, Stdio};

use crate::pgdb::{Backend, PgDb, fresh_db};
use crate::support::{Project, code, signal, stderr, stdout};
use crate::traffic::ingest::{SALT, generated_log, recent_start, source_config};

/// The source of `crate::traffic::ingest` with an error-rate rule that the generated log
/// (5% failed) breaks, and a retention that `prune` applies to a log of three days ago.
fn config() -> String {
    source_config("10%").replace(
        "    monitor:",
        "    retention: {records: 1d, minute: 2d, hour: 30d, day: forever}
    alerts:
      - {metric: traffic.error_rate, max: 0.01, window: 15m, severity: critical}
      - {metric: traffic.thumbs_down_rate, max: 0.01, window: 1h, severity: warning}
    monitor:",
    )
}

/// `text` with what differs between two projects run a moment apart replaced: the project's
/// folder, sheet ids, and times.
fn normalise(p: &Project, text: &str) -> String {
    let folder = p.path().display().to_string();
    let out = text.replace(&folder, "PROJECT");
    // A sheet id (its day, its time, a random part), and how long ago the log went quiet.
    let sheet = regex::Regex::new(r"\b\d{8}-\d{6}-[0-9a-z]+\b").expect("regex");
    let out = sheet.replace_all(&out, "SHEET");
    // Both, and how long ago an alert started, can cross a unit (119 minutes, then 2 hours)
    // between the two backends' passes.
    let ago = regex::Regex::new(r"\b\d+ (minute|hour|day)s? ago").expect("regex");
    let out = ago.replace_all(&out, "N units ago");
    let time = regex::Regex::new(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)?")
        .expect("regex");
    time.replace_all(&out, "TIME").into_owned()
}

/// Runs `args` with the salt; keeps its exit code and normalised output in `log`.
fn step(p: &Project, log: &mut Vec<String>, args: &[&str]) -> Output {
    let out = p
        .cmd()
        .env("EVALWATCH_TRAFFIC_SALT", SALT)
        .args(args)
        .output()
        .expect("run evalwatch");
    log.push(format!(
        "$ {}: exit {}\n{}{}",
        normalise(p, &args.join(" ")),
        code(&out),
        normalise(p, &stdout(&out)),
        normalise(p, &stderr(&out))
    ));
    out
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(stdout(out).trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", stdout(out), stderr(out)))
}

/// JSONL feedback on traces `t0`..`t39`: 30 thumbs down, then 10 fives; `t5` changes its mind;
/// and a thumbs down for `old5`, a record read later.
fn feedback_file(start: i64) -> String {
    let mut out = String::new();
    for i in 0..40 {
        let value = if i < 30 { r#""down""# } else { "5" };
        let _ = writeln!(
            out,
            r#"{{"trace_id": "t{i}", "time": {}, "value": {value}, "comment": "wrong refund policy", "user": "user-1"}}"#,
            start + 600 + i
        );
    }
    let _ = writeln!(
        out,
        r#"{{"trace_id": "t5", "time": {}, "value": "up", "user": "user-1"}}"#,
        start + 900
    );
    // For a record not ingested yet: it waits for it.
    let _ = writeln!(
        out,
        r#"{{"trace_id": "old5", "time": {}, "value": "down", "user": "user-1"}}"#,
        start + 950
    );
    out
}

/// The whole scenario on `backend`, from `start`: its transcript.
fn transcript(backend: &Backend, start: i64, old: i64) -> Vec<String> {
    let p = backend.project(Project::new());
    let name = backend.name();
    let mut log = Vec::new();
    p.write("evalwatch.yaml", &config());
    p.write("logs/a.jsonl", &generated_log(start, 2000));
    // Ingested: 2000 records, and the error-rate rule opens an alert (exit 1).
    let out = step(&p, &mut log, &["ingest", "--format", "json"]);
    assert_eq!(code(&out), 1, "{name}: {}{}", stdout(&out), stderr(&out));
    let first = json(&out);
    assert_eq!(
        (first["records"].as_u64(), first["new"].as_u64()),
        (Some(2000), Some(2000)),
        "{name}"
    );
    // Again, and a copy under another name: nothing new.
    let out = step(&p, &mut log, &["ingest", "--format", "json"]);
    assert_eq!(json(&out)["new"], 0, "{name}");
    p.write("logs/b.jsonl", &generated_log(start, 2000));
    let out = step(&p, &mut log, &["ingest", "--format", "json"]);
    let copy = json(&out);
    assert_eq!(
        (copy["new"].as_u64(), copy["seen_before"].as_u64()),
        (Some(0), Some(2000)),
        "{name}"
    );
    let out = step(&p, &mut log, &["traffic", "--format", "json"]);
    assert_eq!(code(&out), 0, "{name}: {}", stderr(&out));
    assert_eq!(json(&out)["current"]["volume"], 2000, "{name}");
    // Feedback: counted once, imported twice; a changed vote replaces the earlier one.
    let file = p.write("fb.jsonl", &feedback_file(start));
    let file = file.display().to_string();
    let out = step(
        &p,
        &mut log,
        &["feedback", "import", &file, "--format", "json"],
    );
    assert_eq!(code(&out), 0, "{name}: {}", stderr(&out));
    let imported = json(&out);
    assert_eq!(
        (
            &imported["counted"],
            &imported["replaced"],
            &imported["waiting"]
        ),
        (
            &serde_json::json!(40),
            &serde_json::json!(1),
            &serde_json::json!(1)
        ),
        "{name}: {imported}"
    );
    let out = step(
        &p,
        &mut log,
        &["feedback", "import", &file, "--format", "json"],
    );
    assert_eq!(code(&out), 0, "{name}: {}", stderr(&out));
    assert_eq!(json(&out)["repeated"], 42, "{name}");
    // The digest of negative feedback: each record's feature found by its trace.
    let out = step(&p, &mut log, &["feedback", "digest", "--format", "json"]);
    assert_eq!(code(&out), 0, "{name}: {}", stderr(&out));
    assert!(stdout(&out).contains("chat"), "{name}: {}", stdout(&out));
    step(&p, &mut log, &["feedback", "digest"]);
    for args in [
        &["traffic", "--format", "json"][..],
        &["traffic"],
        &["traffic", "--window", "1h", "--format", "json"],
        &["traffic", "--window", "7d"],
        &["alerts", "check"],
    ] {
        step(&p, &mut log, args);
    }
    // Users' votes in the buckets: 29 down, 11 up (t5 changed its mind), in minutes and days.
    let out = step(
        &p,
        &mut log,
        &["traffic", "--window", "24h", "--format", "json"],
    );
    let t = json(&out);
    log.push(format!("figures: {}", t["current"]));
    // The traffic page, with the open alert.
    let out = step(&p, &mut log, &["report"]);
    assert_eq!(code(&out), 0, "{name}: {}", stderr(&out));
    let page =
        std::fs::read_to_string(p.path().join("reports/traffic-bot.html")).expect("traffic page");
    assert!(page.contains("<b>2000</b>"), "{name}: volume shown");
    assert!(page.contains("<b>5.0%</b>"), "{name}: error rate shown");
    assert!(page.contains("open since"), "{name}: the open alert shown");
    log.push(format!("page: {}", normalise(&p, &page_text(&page))));
    // A review sheet of the traffic.
    let out = step(
        &p,
        &mut log,
        &["review", "sample", "--from", "traffic:bot", "--n", "5"],
    );
    assert_eq!(code(&out), 0, "{name}: {}{}", stdout(&out), stderr(&out));
    // Graded (a pass, two fails), then compared with the users' votes.
    let sheet_id = stdout(&out)
        .lines()
        .find_map(|l| l.strip_prefix("review sheet "))
        .and_then(|l| l.split(':').next())
        .expect("a sheet id")
        .to_owned();
    let page = std::fs::read_to_string(p.path().join(format!("reports/review/{sheet_id}.html")))
        .expect("sheet page");
    let sheet = crate::review::sheet_json(&page);
    let items = sheet["items"].as_array().expect("items");
    let grades: Vec<serde_json::Value> = items
        .iter()
        .take(3)
        .enumerate()
        .map(|(i, item)| {
            serde_json::json!({"result_id": item["result_id"],
                "verdict": if i == 0 { "pass" } else { "fail" }, "quality": 2 + i,
                "hallucination": null, "note": format!("note {i}")})
        })
        .collect();
    let grades = serde_json::json!({
        "sheet_id": sheet["sheet_id"], "reviewer": "Ann", "exported_at": "2026-01-01T10:00:00Z",
        "sheet_mac": sheet["mac"], "grades": grades,
    });
    let graded = p.write("grades.json", &grades.to_string());
    let out = step(
        &p,
        &mut log,
        &["review", "import", &graded.display().to_string()],
    );
    assert_eq!(code(&out), 0, "{name}: {}{}", stdout(&out), stderr(&out));
    step(
        &p,
        &mut log,
        &["review", "show", &sheet_id, "--format", "json"],
    );
    step(&p, &mut log, &["review", "stats", "--format", "json"]);
    step(&p, &mut log, &["review", "list", "--format", "json"]);
    // Three days ago: pruned by retention, its hours kept.
    p.write(
        "logs/old.jsonl",
        &generated_log(old, 200).replace("\"trace\": \"t", "\"trace\": \"old"),
    );
    let out = step(
        &p,
        &mut log,
        &["ingest", "logs/old.jsonl", "--format", "json"],
    );
    assert_eq!(json(&out)["new"], 200, "{name}");
    // The feedback that waited for `old5` is counted now: none waits any more.
    let out = step(
        &p,
        &mut log,
        &["feedback", "import", &file, "--format", "json"],
    );
    assert_eq!(json(&out)["unmatched"], 0, "{name}");
    let out = step(&p, &mut log, &["prune", "--dry-run", "--format", "json"]);
    assert_eq!(code(&out), 0, "{name}: {}", stderr(&out));
    let out = step(&p, &mut log, &["prune", "--format", "json"]);
    // Every key of the 200 old records goes, and the sampled ones kept whole.
    let pruned = json(&out);
    assert_eq!(pruned["sources"][0]["keys"], 200, "{name}: {pruned}");
    assert!(
        pruned["sources"][0]["records"].as_u64() > Some(0),
        "{name}: {pruned}"
    );
    let out = step(&p, &mut log, &["prune", "--format", "json"]);
    assert_eq!(json(&out)["sources"][0]["keys"], 0, "{name}");
    let out = step(
        &p,
        &mut log,
        &["traffic", "--window", "7d", "--format", "json"],
    );
    assert_eq!(json(&out)["current"]["volume"], 2200, "{name}");
    log
}

/// The visible text of a page, tags and the charts' coordinates aside.
fn page_text(page: &str) -> String {
    let no_svg = regex::Regex::new(r"(?s)<svg.*?</svg>").expect("regex");
    let tags = regex::Regex::new(r"(?s)<[^>]*>").expect("regex");
    let no_charts = no_svg.replace_all(page, "");
    let text = tags.replace_all(&no_charts, " ");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A start two to three hours ago, five minutes past an hour: the scenario's 20 minutes of
/// records and its feedback stay inside one hour, which their last record never closes, so
/// the 1-hour thumbs-down rule is never judged whatever the time the test runs (a start
/// that let the records cross an hour closed that hour, and the rule opened an alert), while
/// 15-minute windows close and the error-rate rule opens its alert.
fn start_within_an_hour() -> i64 {
    (chrono::Utc::now().timestamp() - 7200) / 3600 * 3600 + 300
}

#[test]
fn pg_traffic_gives_the_same_figures_pages_and_exit_codes_on_both_backends() {
    let backends = Backend::all("traffic_same");
    let start = start_within_an_hour();
    // Taken once, as `start` is: an hour that began between the two backends' passes would
    // otherwise put the old records in different hours (`usage.by_hour`).
    let old = (chrono::Utc::now().timestamp() - 3 * 86_400) / 3600 * 3600;
    let logs: Vec<(String, Vec<String>)> = backends
        .iter()
        .map(|b| (b.name().to_owned(), transcript(b, start, old)))
        .collect();
    if let [(_, sqlite), (_, pg)] = &logs[..] {
        assert_eq!(sqlite.len(), pg.len());
        for (a, b) in sqlite.iter().zip(pg) {
            assert_eq!(a, b, "SQLite and PostgreSQL differ");
        }
    }
}

/// Minute, hour and day requests summed over the PostgreSQL store.
fn pg_counts(db: &PgDb, source: &str) -> Vec<(String, i64)> {
    db.client()
        .query(
            "SELECT resolution, sum(requests)::bigint FROM traffic_buckets WHERE source = $1
             GROUP BY resolution ORDER BY resolution",
            &[&source],
        )
        .expect("sum")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// `n` records of traces `{tag}-{i}`, one every 600 ms from `start`, over 40 features: many
/// buckets to merge, the same ones in every log.
fn race_log(tag: &str, start: i64, n: i64) -> String {
    let mut out = String::new();
    for i in 0..n {
        let _ = writeln!(
            out,
            r#"{{"ts": {}, "trace": "{tag}-{i}", "model": "m1", "feature": "f{}", "region": "fr", "ms": {}, "tin": 10, "tout": 5}}"#,
            start * 1000 + i * 600,
            i % 40,
            100 + i % 50,
        );
    }
    out
}

#[test]
fn pg_concurrent_ingests_into_one_store_lose_no_count() {
    let Some(db) = fresh_db("traffic_race") else {
        return;
    };
    let p = on(&db);
    p.write("evalwatch.yaml", &source_config("0%"));
    let start = recent_start();
    // The buckets and label sets there already, as after a day of traffic (the processes
    // then do not wait for each other to add them).
    p.write("seed/s.jsonl", &race_log("seed", start, 400));
    let ingest = |file: &str| {
        p.std_cmd()
            .env("EVALWATCH_TRAFFIC_SALT", SALT)
            .args(["ingest", "bot", file])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let wait = |children: Vec<Child>| {
        for c in children {
            let out = c.wait_with_output().expect("wait");
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        }
    };
    wait(vec![ingest("seed/s.jsonl")]);
    // Four logs of the same minutes and features, each record its own trace, read at once:
    // four processes merge into the same minute, hour and day buckets.
    let n = 3000;
    for k in 0..4 {
        p.write(
            &format!("logs/{k}.jsonl"),
            &race_log(&format!("p{k}"), start, n),
        );
    }
    let files: Vec<String> = (0..4).map(|k| format!("logs/{k}.jsonl")).collect();
    wait(files.iter().map(|f| ingest(f)).collect());
    let want = 4 * n + 400;
    assert_eq!(
        pg_counts(&db, "bot"),
        [
            ("day".to_owned(), want),
            ("hour".to_owned(), want),
            ("minute".to_owned(), want)
        ]
    );
    // Read again, all at once: nothing more is counted.
    wait(files.iter().map(|f| ingest(f)).collect());
    assert_eq!(pg_counts(&db, "bot")[2], ("minute".to_owned(), want));
    let out = p.run(&["traffic", "--window", "24h", "--format", "json"]);
    assert_eq!(json(&out)["current"]["volume"], want);
}

/// Whether the trace index has been analysed by hand, and whether by autovacuum.
fn trace_index_analysed(db: &PgDb) -> (bool, bool) {
    let row = db
        .client()
        .query_one(
            "SELECT last_analyze IS NOT NULL, last_autoanalyze IS NOT NULL
             FROM pg_stat_user_tables WHERE relid = 'traffic_trace_keys'::regclass",
            &[],
        )
        .expect("the trace index's statistics");
    (row.get(0), row.get(1))
}

#[test]
fn pg_ingest_gives_a_fresh_trace_index_its_statistics_once_it_has_traces() {
    let Some(db) = fresh_db("traffic_analyse") else {
        return;
    };
    let p = on(&db);
    p.write("evalwatch.yaml", &source_config("0%"));
    let start = recent_start();
    p.write("logs/a.jsonl", &race_log("a", start, 300));
    p.write("logs/b.jsonl", &race_log("b", start, 300));
    let ingest = |file: &str| {
        let out = p
            .std_cmd()
            .env("EVALWATCH_TRAFFIC_SALT", SALT)
            .args(["ingest", "bot", file])
            .output()
            .expect("ingest");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    };
    // An empty log makes the store's tables; autovacuum is then turned off on the trace
    // index before it holds a row, so that only this store's own analyse can give it
    // statistics (turned off after the first ingest, autovacuum sometimes analysed it first).
    p.write("logs/empty.jsonl", "");
    ingest("logs/empty.jsonl");
    db.client()
        .batch_execute("ALTER TABLE traffic_trace_keys SET (autovacuum_enabled = false)")
        .expect("autovacuum off");
    ingest("logs/a.jsonl");
    // The first ingest with traces began with an empty index: nothing to analyse.
    assert_eq!(trace_index_analysed(&db), (false, false));
    ingest("logs/b.jsonl");
    assert_eq!(trace_index_analysed(&db), (true, false));
    let out = p.run(&["traffic", "--window", "24h", "--format", "json"]);
    assert_eq!(json(&out)["current"]["volume"], 600);
}

/// A new project whose store is `db`.
fn on(db: &PgDb) -> Project {
    let mut p = Project::new();
    p.pg = Some((db.url.clone(), db.password.clone()));
    p
}

/// One JSON export of model-call spans `from..to`, each its own trace, in the same minutes.
fn export(collector: u32, from: u32, to: u32, at: i64) -> String {
    let spans: Vec<String> = (from..to)
        .map(|i| {
            let start = (at + i64::from(i % 600)) * 1_000_000_000;
            // Ids from 1: all zeros is no OTLP id (such a span is rejected).
            let id = i + 1;
            format!(
                r#"{{"traceId":"{c:08x}{id:024x}","spanId":"{id:016x}","name":"chat","startTimeUnixNano":"{start}",
                 "endTimeUnixNano":"{end}","attributes":[{{"key":"gen_ai.request.model","value":{{"stringValue":"m"}}}},
                 {{"key":"gen_ai.usage.input_tokens","value":{{"intValue":"7"}}}}]}}"#,
                c = collector,
                end = start + 5_000_000,
            )
        })
        .collect();
    format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
        spans.join(",")
    )
}

#[test]
fn pg_concurrent_collects_into_one_store_lose_no_count() {
    let Some(db) = fresh_db("collect_race") else {
        return;
    };
    let p = on(&db);
    p.write(
        "evalwatch.yaml",
        "traffic:\n  - id: app\n    format: otlp\n    sample: 0%\n",
    );
    let collectors: Vec<(Child, String)> = (0..2)
        .map(|_| crate::collect::start_collect(&p, &[], &[]))
        .collect();
    let client = evalwatch::provider::http_client().expect("client");
    let at = (chrono::Utc::now().timestamp() - 1800) / 60 * 60;
    // Each collector is sent 20 exports of 50 spans, the two at once.
    let sends = collectors.iter().enumerate().map(|(c, (_, url))| {
        let client = client.clone();
        let url = url.clone();
        async move {
            for e in 0..20u32 {
                let body = export(u32::try_from(c).expect("small"), e * 50, e * 50 + 50, at);
                let r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("send");
                assert_eq!(r.status(), 200);
            }
        }
    });
    // A runtime of its own: the test's PostgreSQL client blocks, and may not run in one.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(futures::future::join_all(sends));
    for (child, _) in collectors {
        signal(child.id(), "-TERM");
        let out = child.wait_with_output().expect("wait");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    assert_eq!(
        pg_counts(&db, "app"),
        [
            ("day".to_owned(), 2000),
            ("hour".to_owned(), 2000),
            ("minute".to_owned(), 2000)
        ]
    );
}

/// Requires each backend's transcript to be the same as the first's.
fn same_on_all(logs: &[(&'static str, Vec<String>)]) {
    if let [(_, first), rest @ ..] = logs {
        for (name, log) in rest {
            assert_eq!(first.len(), log.len(), "{name}");
            for (a, b) in first.iter().zip(log) {
                assert_eq!(a, b, "SQLite and {name} differ");
            }
        }
    }
}

/// A CSV log (one malformed row) and an OTLP/JSON file (one span not a model call, one line
/// not an export) on `backend`: the transcript of `ingest` and `traffic` of each source.
fn formats_transcript(backend: &Backend, t: i64) -> Vec<String> {
    let p = backend.project(Project::new());
    let name = backend.name();
    p.write(
        "evalwatch.yaml",
        "providers:\n  - {id: prod, type: openai, model: m1, pricing: {input_per_mtok: 1.0, output_per_mtok: 2.0}}
traffic:
  - id: rows
    format: csv
    path: rows/*.csv
    fields: {time: ts, model: model, latency_ms: ms, tokens_in: tin, tokens_out: tout}
  - id: spans
    format: otlp
    path: otel/*.jsonl
    fields: {feature: \"attr:app.feature\", region: \"resource:cloud.region\"}
",
    );
    p.write(
        "rows/a.csv",
        &format!(
            "ts,model,ms,tin,tout\n{t},m1,120,1000,500\n{},m1,80,1000,500\n{},m1,slow,1,1\n",
            t + 1,
            t + 2
        ),
    );
    let span = |trace: &str, attrs: &str| {
        format!(
            r#"{{"traceId":"{trace}","spanId":"eee19b7ec3c1b174","name":"chat","kind":3,"startTimeUnixNano":"{t}000000000","endTimeUnixNano":"{t}250000000","attributes":[{attrs}],"status":{{}}}}"#
        )
    };
    let genai = span(
        "5b8efff798038103d269b633813fc60c",
        r#"{"key":"gen_ai.request.model","value":{"stringValue":"gpt-4o"}},{"key":"gen_ai.usage.input_tokens","value":{"intValue":"42"}},{"key":"app.feature","value":{"stringValue":"search"}}"#,
    );
    let plain = span(
        "6b8efff798038103d269b633813fc60c",
        r#"{"key":"http.method","value":{"stringValue":"GET"}}"#,
    );
    p.write(
        "otel/spans.jsonl",
        &format!(
            r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"cloud.region","value":{{"stringValue":"eu-west-1"}}}}]}},"scopeSpans":[{{"spans":[{genai},{plain}]}}]}}]}}
{{"ts": 1}}
"#
        ),
    );
    let mut log = Vec::new();
    for source in ["rows", "spans"] {
        // One bad line each: counted, located, exit 3; the rest stored.
        let out = step(&p, &mut log, &["ingest", source, "--format", "json"]);
        assert_eq!(code(&out), 3, "{name}: {}{}", stdout(&out), stderr(&out));
        let again = step(&p, &mut log, &["ingest", source, "--format", "json"]);
        assert_eq!(json(&again)["new"], 0, "{name}");
        let out = step(&p, &mut log, &["traffic", source, "--format", "json"]);
        assert_eq!(code(&out), 0, "{name}: {}", stderr(&out));
    }
    log
}

#[test]
fn pg_csv_and_otlp_files_give_the_same_results_on_both_backends() {
    let t = recent_start();
    let logs: Vec<_> = Backend::all("traffic_formats")
        .iter()
        .map(|b| (b.name(), formats_transcript(b, t)))
        .collect();
    let rows = logs[0].1.join("\n");
    assert!(
        rows.contains("\"new\":2") && rows.contains("\"new\":1"),
        "{rows}"
    );
    same_on_all(&logs);
}

/// The judge monitor of `crate::traffic::judge` on `backend`: verdicts through a loopback
/// judge, then the same texts again answered from the judge cache.
fn judge_transcript(backend: &Backend, start: i64) -> Vec<String> {
    use crate::traffic::judge::{log as judged_log, project, serve};
    let (base, judge) = serve();
    let mut p = project(&base);
    p.pg = backend.project(Project::new()).pg;
    let name = backend.name();
    let mut log = Vec::new();
    let env = |p: &Project, log: &mut Vec<String>, args: &[&str]| {
        let out = p
            .std_cmd()
            .env("EVALWATCH_TRAFFIC_SALT", SALT)
            .env("OPENAI_API_KEY", "sk-test")
            .args(args)
            .output()
            .expect("run evalwatch");
        log.push(format!(
            "$ {}: exit {}\n{}{}",
            args.join(" "),
            code(&out),
            normalise(p, &stdout(&out)),
            normalise(p, &stderr(&out))
        ));
        out
    };
    p.write("logs/a.jsonl", &judged_log(start, "a", 0, 6));
    let out = env(&p, &mut log, &["ingest", "--format", "json"]);
    assert_eq!(json(&out)["judge"]["judged"], 6, "{name}");
    p.write("logs/b.jsonl", &judged_log(start + 100, "b", 0, 6));
    let out = env(&p, &mut log, &["ingest", "--format", "json"]);
    assert_eq!(json(&out)["judge"]["cached"], 6, "{name}");
    assert_eq!(judge.calls(), 6, "{name}: the cache answered");
    let out = env(&p, &mut log, &["traffic", "--format", "json"]);
    let t = json(&out);
    assert_eq!(
        (&t["current"]["scored"], &t["current"]["pass_rate"]),
        (&serde_json::json!(12), &serde_json::json!(0.5)),
        "{name}: {t}"
    );
    log
}

#[test]
fn pg_judge_monitors_give_the_same_verdicts_on_both_backends() {
    let start = recent_start();
    let logs: Vec<_> = Backend::all("traffic_judge")
        .iter()
        .map(|b| (b.name(), judge_transcript(b, start)))
        .collect();
    same_on_all(&logs);
}

/// `collect` on `backend`: two exports received (one sent twice, as an exporter's retry), then
/// the source shown.
fn collect_transcript(backend: &Backend, at: i64) -> Vec<String> {
    let p = backend.project(Project::new());
    let name = backend.name();
    p.write(
        "evalwatch.yaml",
        "traffic:\n  - id: app\n    format: otlp\n    sample: 100%\n",
    );
    let (child, url) = crate::collect::start_collect(&p, &[], &[]);
    let client = evalwatch::provider::http_client().expect("client");
    let mut log = Vec::new();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            for (from, to) in [(0, 30), (30, 60), (30, 60)] {
                let r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(export(7, from, to, at))
                    .send()
                    .await
                    .expect("send");
                log.push(format!("export {from}..{to}: {}", r.status()));
            }
        });
    signal(child.id(), "-TERM");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
    let out = step(&p, &mut log, &["traffic", "--format", "json"]);
    assert_eq!(json(&out)["current"]["volume"], 60, "{name}");
    log
}

#[test]
fn pg_collect_gives_the_same_figures_on_both_backends() {
    let at = (chrono::Utc::now().timestamp() - 1800) / 60 * 60;
    let logs: Vec<_> = Backend::all("collect_same")
        .iter()
        .map(|b| (b.name(), collect_transcript(b, at)))
        .collect();
    same_on_all(&logs);
}

/// A log of 1,200 records a half minute apart (ten hours) from `start`, traces `t0`..`t1199`,
/// features alternating.
fn hours_log(start: i64) -> String {
    let mut out = String::new();
    for i in 0..1200 {
        let feature = if i % 2 == 0 { "chat" } else { "search" };
        let _ = writeln!(
            out,
            r#"{{"ts": {}, "trace": "t{i}", "q": "q", "a": "a", "model": "m1", "feature": "{feature}", "ms": 100, "tin": 1, "tout": 1, "cost": 0.001}}"#,
            (start + 30 * i) * 1000
        );
    }
    out
}

/// Votes on every record of [`hours_log`] five minutes after it (down on the first five hours'
/// `chat` records, up on the rest), and on 100 traces not ingested yet: more traces than an
/// import looks up one by one, so the store finds them in one pass over its trace index.
fn many_votes(start: i64) -> String {
    let mut out = String::new();
    for i in 0..1200 {
        let value = if i % 2 == 0 && i < 600 { "down" } else { "up" };
        let _ = writeln!(
            out,
            r#"{{"trace_id": "t{i}", "time": {}, "value": "{value}"}}"#,
            start + 30 * i + 300
        );
    }
    for i in 0..100 {
        let _ = writeln!(
            out,
            r#"{{"trace_id": "later{i}", "time": {}, "value": "down"}}"#,
            start + 36_000
        );
    }
    out
}

/// The large feedback import on `backend`, then the satisfaction figures over the ten hours.
fn many_votes_transcript(backend: &Backend, start: i64) -> Vec<String> {
    let p = backend.project(Project::new());
    let name = backend.name();
    let mut log = Vec::new();
    p.write("evalwatch.yaml", &source_config("10%"));
    p.write("logs/a.jsonl", &hours_log(start));
    let out = step(&p, &mut log, &["ingest", "--format", "json"]);
    assert_eq!(json(&out)["new"], 1200, "{name}: {}", stderr(&out));
    let file = p.write("fb.jsonl", &many_votes(start));
    let file = file.display().to_string();
    let out = step(
        &p,
        &mut log,
        &["feedback", "import", &file, "--format", "json"],
    );
    let imported = json(&out);
    assert_eq!(
        (&imported["counted"], &imported["waiting"]),
        (&serde_json::json!(1200), &serde_json::json!(100)),
        "{name}: {imported}"
    );
    let out = step(
        &p,
        &mut log,
        &[
            "traffic", "--window", "24h", "--by", "feature", "--format", "json",
        ],
    );
    assert_eq!(code(&out), 0, "{name}: {}", stderr(&out));
    // Each vote in its own record's bucket: every record rated once, the downs all `chat`.
    let figures = json(&out);
    assert_eq!(figures["current"]["rated"], 1200, "{name}: {figures}");
    let by: Vec<_> = figures["by"]["values"]
        .as_array()
        .unwrap_or_else(|| panic!("{name}: {figures}"))
        .iter()
        .map(|v| {
            (
                v["value"].as_str().unwrap_or_default().to_owned(),
                v["current"]["rated"].as_u64(),
                v["current"]["thumbs_down_rate"].as_f64(),
            )
        })
        .collect();
    assert_eq!(
        by,
        [
            ("chat".to_owned(), Some(600), Some(0.5)),
            ("search".to_owned(), Some(600), Some(0.0))
        ],
        "{name}"
    );
    log
}

#[test]
fn pg_a_large_feedback_import_counts_each_vote_in_its_records_bucket_on_both_backends() {
    // Twelve hours ago, on an hour: the ten hours of records end two hours ago.
    let now = chrono::Utc::now().timestamp();
    let start = (now - 12 * 3600) / 3600 * 3600;
    let logs: Vec<_> = Backend::all("traffic_many_votes")
        .iter()
        .map(|b| (b.name(), many_votes_transcript(b, start)))
        .collect();
    same_on_all(&logs);
}
