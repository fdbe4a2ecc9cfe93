//! `feedback import`: users' votes linked to traffic records by trace id, counted once, in the
//! buckets of their record's minute even when the record was not sampled; a late record
//! finds the feedback that waited for it; a changed vote replaces the earlier one.

use std::fmt::Write as _;

use super::ingest::{SALT, dump, generated_log, ingest, json, recent_start, source_config};
use crate::support::{Project, code, stderr, stdout};

fn import(p: &Project, file: &str) -> std::process::Output {
    p.cmd()
        .env("EVALWATCH_TRAFFIC_SALT", SALT)
        .args(["feedback", "import", file, "--format", "json"])
        .output()
        .expect("run evalwatch")
}

/// A project whose source (sampling `sample`) has ingested `n` generated records, and when
/// they start.
fn ingested(sample: &str, n: i64) -> (Project, i64) {
    let p = Project::new();
    p.write("evalwatch.yaml", &source_config(sample));
    let start = recent_start();
    p.write("logs/a.jsonl", &generated_log(start, n));
    let out = ingest(&p, &[]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    (p, start)
}

/// `feedback import FILE` in text, with the salt unless `salt` is false.
fn import_text(p: &Project, file: &str, salt: bool) -> std::process::Output {
    let mut cmd = p.cmd();
    if salt {
        cmd.env("EVALWATCH_TRAFFIC_SALT", SALT);
    } else {
        cmd.env_remove("EVALWATCH_TRAFFIC_SALT");
    }
    cmd.args(["feedback", "import", file])
        .output()
        .expect("run evalwatch")
}

/// (positive, negative, neutral) summed over the minute buckets, then over the day buckets.
fn votes(p: &Project) -> [(i64, i64, i64); 2] {
    let conn = rusqlite::Connection::open(p.db()).expect("open store");
    ["minute", "day"].map(|res| {
        conn.query_row(
            "SELECT coalesce(sum(feedback_positive), 0), coalesce(sum(feedback_negative), 0),
                coalesce(sum(feedback_neutral), 0) FROM traffic_buckets WHERE resolution = ?1",
            [res],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("sum")
    })
}

/// JSONL feedback: `(trace, seconds after start, value, comment)`.
fn feedback_file(start: i64, rows: &[(&str, i64, &str, &str)]) -> String {
    let mut out = String::new();
    for (trace, after, value, comment) in rows {
        let _ = writeln!(
            out,
            r#"{{"trace_id": "{trace}", "time": {}, "value": {value}, "comment": "{comment}", "user": "user-1"}}"#,
            start + after
        );
    }
    out
}

#[test]
fn feedback_imported_twice_changes_nothing_and_counts_for_unsampled_records() {
    let (p, start) = ingested("10%", 200);
    let rows: Vec<(String, i64, &str, &str)> = (0..40)
        .map(|i| {
            let value = if i < 30 { r#""down""# } else { "5" };
            (format!("t{i}"), 600 + i, value, "wrong refund policy")
        })
        .collect();
    let rows: Vec<_> = rows
        .iter()
        .map(|(t, a, v, c)| (t.as_str(), *a, *v, *c))
        .collect();
    p.write("fb.jsonl", &feedback_file(start, &rows));
    let out = import(&p, "fb.jsonl");
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let first = json(&out);
    assert_eq!(
        (
            first["added"].as_u64(),
            first["counted"].as_u64(),
            first["unmatched"].as_u64()
        ),
        (Some(40), Some(40), Some(0))
    );
    // With a 10% sample most of these records were not kept whole: all 40 votes count.
    assert_eq!(votes(&p), [(10, 30, 0), (10, 30, 0)]);
    let before = dump(&p);
    let again = json(&import(&p, "fb.jsonl"));
    assert_eq!(
        (again["added"].as_u64(), again["repeated"].as_u64()),
        (Some(0), Some(40))
    );
    assert_eq!(dump(&p), before);
    assert_eq!(votes(&p), [(10, 30, 0), (10, 30, 0)]);
    // Users are stored hashed, never as given.
    let conn = rusqlite::Connection::open(p.db()).unwrap();
    let raw_users: i64 = conn
        .query_row(
            "SELECT count(*) FROM traffic_feedback WHERE user_hash LIKE '%user-%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(raw_users, 0);
}

#[test]
fn a_late_record_finds_the_feedback_waiting_for_it() {
    let p = Project::new();
    p.write("evalwatch.yaml", &source_config("10%"));
    let start = recent_start();
    p.write(
        "fb.jsonl",
        &feedback_file(start, &[("t3", 60, r#""thumbs_down""#, "slow")]),
    );
    let first = json(&import(&p, "fb.jsonl"));
    assert_eq!(
        (first["waiting"].as_u64(), first["unmatched"].as_u64()),
        (Some(1), Some(1))
    );
    let out = import_text(&p, "fb.jsonl", true);
    assert!(
        stdout(&out).contains("1 records of this source not ingested yet have feedback"),
        "{}",
        stdout(&out)
    );
    p.write("logs/a.jsonl", &generated_log(start, 20));
    let out = ingest(&p, &[]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert_eq!(votes(&p), [(0, 1, 0), (0, 1, 0)]);
    let after = json(&import(&p, "fb.jsonl"));
    assert_eq!(
        (after["repeated"].as_u64(), after["unmatched"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(votes(&p), [(0, 1, 0), (0, 1, 0)]);
}

#[test]
fn a_changed_vote_replaces_the_earlier_one_and_both_are_kept() {
    let (p, start) = ingested("100%", 10);
    p.write("a.jsonl", &feedback_file(start, &[("t2", 100, "1", "")]));
    assert_eq!(json(&import(&p, "a.jsonl"))["counted"], 1);
    assert_eq!(votes(&p), [(0, 1, 0), (0, 1, 0)]);
    // Later: the user changed their mind (CSV this time).
    p.write(
        "b.csv",
        &format!(
            "trace_id,time,value,comment\nt2,{},up,\"fixed, thanks\"\n",
            start + 200
        ),
    );
    let out = import(&p, "b.csv");
    assert_eq!(json(&out)["replaced"], 1, "{}", stderr(&out));
    assert_eq!(votes(&p), [(1, 0, 0), (1, 0, 0)]);
    // An older vote arriving late is kept in history but does not count.
    p.write(
        "c.jsonl",
        &feedback_file(start, &[("t2", 50, r#""down""#, "")]),
    );
    assert_eq!(json(&import(&p, "c.jsonl"))["superseded"], 1);
    assert_eq!(votes(&p), [(1, 0, 0), (1, 0, 0)]);
    let conn = rusqlite::Connection::open(p.db()).unwrap();
    let (history, vote): (i64, String) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM traffic_feedback WHERE trace_id = 't2'),
                feedback_vote FROM traffic_records WHERE trace_id = 't2'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((history, vote.as_str()), (3, "positive"));
}

#[test]
fn values_outside_the_scale_are_located_and_do_not_stop_the_import() {
    let (p, start) = ingested("10%", 10);
    p.write(
        "fb.jsonl",
        &feedback_file(
            start,
            &[
                ("t1", 1, "7", ""),
                ("t2", 1, r#""down""#, ""),
                ("t3", 1, r#""meh""#, ""),
            ],
        ),
    );
    let out = import_text(&p, "fb.jsonl", true);
    assert_eq!(code(&out), 3, "{}{}", stdout(&out), stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("fb.jsonl:1: `value` 7 is not feedback"),
        "{err}"
    );
    assert!(
        err.contains("fb.jsonl:3: `value` \"meh\" is not feedback"),
        "{err}"
    );
    assert_eq!(votes(&p), [(0, 1, 0), (0, 1, 0)]);
    // A user id without the salt: nothing imported, exit 2.
    let out = import_text(&p, "fb.jsonl", false);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
}

#[test]
fn a_rise_in_thumbs_down_on_one_feature_shows_in_traffic_by_feature() {
    let (p, start) = ingested("10%", 200);
    // Even traces are `chat`, odd ones `summarise`: 20 chat answers voted down, 10 summaries up.
    let traces: Vec<(String, &str)> = (0..20)
        .map(|i| (format!("t{}", 2 * i), r#""down""#))
        .chain((0..10).map(|i| (format!("t{}", 2 * i + 1), "true")))
        .collect();
    let rows: Vec<_> = traces
        .iter()
        .map(|(t, v)| (t.as_str(), 900, *v, ""))
        .collect();
    p.write("fb.jsonl", &feedback_file(start, &rows));
    assert_eq!(code(&import(&p, "fb.jsonl")), 0);
    let out = p
        .cmd()
        .args(["traffic", "--by", "feature", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let t = json(&out);
    let c = &t["current"];
    assert_eq!(
        (c["rated"].as_u64(), c["satisfaction"].as_f64()),
        (Some(30), Some(10.0 / 30.0))
    );
    assert_eq!(c["thumbs_down_rate"].as_f64(), Some(0.1));
    assert_eq!(c["feedback_rate"].as_f64(), Some(0.15));
    let of = |v: &str| {
        t["by"]["values"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["value"] == v)
            .unwrap()["current"]
            .clone()
    };
    let (chat, summarise) = (of("chat"), of("summarise"));
    assert_eq!(
        (
            chat["thumbs_down_rate"].as_f64(),
            chat["satisfaction"].as_f64()
        ),
        (Some(0.2), Some(0.0))
    );
    assert_eq!(
        (
            summarise["thumbs_down_rate"].as_f64(),
            summarise["satisfaction"].as_f64()
        ),
        (Some(0.0), Some(1.0))
    );
    let text = p
        .cmd()
        .args(["traffic", "--by", "feature"])
        .output()
        .unwrap();
    let text = stdout(&text);
    assert!(
        text.lines()
            .any(|l| l.contains("thumbs-down rate") && l.contains("20.00%")),
        "{text}"
    );
}

#[test]
fn the_digest_names_the_feature_and_its_top_terms() {
    let (p, start) = ingested("10%", 40);
    p.write(
        "fb.jsonl",
        &feedback_file(
            start,
            &[
                ("t0", 900, r#""down""#, "The refund policy is made up"),
                ("t2", 900, r#""down""#, "wrong refund policy"),
                ("t4", 900, r#""down""#, "refund amount wrong"),
                ("t1", 900, r#""down""#, "summary too long"),
                ("t3", 900, r#""up""#, "great summary"),
            ],
        ),
    );
    assert_eq!(code(&import(&p, "fb.jsonl")), 0);
    let out = p
        .cmd()
        .args(["feedback", "digest", "--week", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let d = json(&out);
    assert_eq!(d["negative"], 4);
    let first = &d["features"][0];
    assert_eq!(
        (first["feature"].as_str(), first["negative"].as_u64()),
        (Some("chat"), Some(3))
    );
    assert_eq!(
        first["terms"][0],
        serde_json::json!({"term": "refund", "count": 3})
    );
    assert_eq!(
        first["terms"][1],
        serde_json::json!({"term": "policy", "count": 2})
    );
    let traces: Vec<&str> = first["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["trace_id"].as_str().unwrap())
        .collect();
    assert_eq!(traces, ["t0", "t2", "t4"]);
    assert_eq!(d["features"][1]["feature"], "summarise");
    assert_eq!(d["features"][1]["negative"], 1);
    let text = p
        .cmd()
        .args(["feedback", "digest", "--week"])
        .output()
        .unwrap();
    let text = stdout(&text);
    assert!(text.contains("chat : 3 negative"), "{text}");
    assert!(text.contains("terms: refund (3), policy (2)"), "{text}");
}

/// Audit D1: a trace id in records of two hours; a thumbs-down counted in the first record's
/// hour, then a later thumbs-up counted in the second's. The later vote takes the earlier one
/// out of the bucket it was counted in (not the bucket of the record the new vote goes to), in
/// one import and in two: the counts are the one vote stored.
#[test]
fn a_later_vote_on_a_trace_of_two_hours_takes_the_earlier_out_of_its_own_bucket() {
    for separate in [false, true] {
        let p = Project::new();
        p.write(
            "evalwatch.yaml",
            "traffic:\n  - id: app\n    path: app.jsonl\n    fields: {time: /ts, trace_id: /trace_id, feature: /feature}\n",
        );
        // Records at 0:05 and 3:05 of an hour ten hours ago; votes at 2:00 (down, counted in
        // the first record's hour) and 4:00 (up, counted in the second's).
        let base = (chrono::Utc::now().timestamp() - 10 * 3600) / 3600 * 3600;
        p.write(
            "app.jsonl",
            &format!(
                "{{\"ts\":{},\"trace_id\":\"dup\",\"feature\":\"a\"}}\n{{\"ts\":{},\"trace_id\":\"dup\",\"feature\":\"b\"}}\n",
                base + 300,
                base + 3 * 3600 + 300
            ),
        );
        let out = p.run(&["ingest"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let down = format!(
            "{{\"trace_id\":\"dup\",\"time\":{},\"value\":\"down\"}}\n",
            base + 2 * 3600
        );
        let up = format!(
            "{{\"trace_id\":\"dup\",\"time\":{},\"value\":\"up\"}}\n",
            base + 4 * 3600
        );
        if separate {
            p.write("down.jsonl", &down);
            p.write("up.jsonl", &up);
            assert_eq!(json(&import(&p, "down.jsonl"))["counted"], 1);
            assert_eq!(votes(&p), [(0, 1, 0), (0, 1, 0)]);
            assert_eq!(json(&import(&p, "up.jsonl"))["replaced"], 1);
        } else {
            p.write("fb.jsonl", &(down + &up));
            let j = json(&import(&p, "fb.jsonl"));
            assert_eq!(
                (j["counted"].as_u64(), j["replaced"].as_u64()),
                (Some(1), Some(1)),
                "{j}"
            );
        }
        assert_eq!(
            votes(&p),
            [(1, 0, 0), (1, 0, 0)],
            "separate imports: {separate}"
        );
        let conn = rusqlite::Connection::open(p.db()).unwrap();
        let hours: Vec<(i64, i64, i64)> = conn
            .prepare(
                "SELECT start, feedback_positive, feedback_negative FROM traffic_buckets
                 WHERE resolution = 'hour' ORDER BY start",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(hours, [(base, 0, 0), (base + 3 * 3600, 1, 0)]);
        let t = json(&p.run(&["traffic", "--window", "24h", "--format", "json"]));
        let c = &t["current"];
        assert_eq!(
            (
                c["rated"].as_u64(),
                c["thumbs_down_rate"].as_f64(),
                c["satisfaction"].as_f64()
            ),
            (Some(1), Some(0.0), Some(1.0)),
            "{t}"
        );
    }
}

/// Audit D2: a vote timed more than 5 minutes ahead of the clock is an unreadable row (as a
/// traffic record timed so is), so that it cannot count over every real vote after it.
#[test]
fn a_vote_from_the_future_is_refused_as_an_unreadable_row() {
    let (p, start) = ingested("100%", 10);
    let soon = chrono::Utc::now().timestamp() + 120 - start;
    p.write(
        "fb.jsonl",
        &(feedback_file(start, &[("t1", 100, r#""up""#, "")])
            + r#"{"trace_id": "t2", "time": "2099-01-01T00:00:00Z", "value": "down"}"#
            + "\n"
            + &feedback_file(start, &[("t3", soon, r#""down""#, "")])),
    );
    let out = import(&p, "fb.jsonl");
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let j = json(&out);
    assert_eq!(
        (
            j["read"].as_u64(),
            j["counted"].as_u64(),
            j["unreadable"].as_u64()
        ),
        (Some(2), Some(2), Some(1)),
        "{j}"
    );
    assert_eq!(j["errors"][0]["at"], "fb.jsonl:2", "{j}");
    assert!(
        j["errors"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("`time` 2099-01-01T00:00:00Z is in the future")),
        "{j}"
    );
    assert_eq!(votes(&p), [(1, 1, 0), (1, 1, 0)]);
    let text = import_text(&p, "fb.jsonl", true);
    assert!(
        stderr(&text).contains("fb.jsonl:2: `time` 2099-01-01T00:00:00Z is in the future"),
        "{}",
        stderr(&text)
    );
}

/// A feedback file that starts with a UTF-8 byte order mark keeps its first row, JSONL as CSV.
#[test]
fn a_feedback_file_with_a_byte_order_mark_keeps_its_first_row() {
    let (p, start) = ingested("100%", 10);
    p.write(
        "fb.jsonl",
        &format!(
            "\u{feff}{}",
            feedback_file(start, &[("t1", 60, r#""down""#, ""), ("t2", 60, "5", "")])
        ),
    );
    let out = import(&p, "fb.jsonl");
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert_eq!(json(&out)["counted"], 2);
    p.write(
        "fb.csv",
        &format!("\u{feff}trace_id,time,value\nt3,{},down\n", start + 60),
    );
    let out = import(&p, "fb.csv");
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert_eq!(votes(&p), [(1, 2, 0), (1, 2, 0)]);
}

/// Inline votes follow the rule of imported ones: a trace counts one vote, the latest by time.
/// Two records of one trace (a duplicate, seen before, or records of two hours) with a vote
/// each count the later vote only, whatever the order they are read in; a vote on a record
/// read again changes nothing; an imported vote then replaces or loses to it by time.
#[test]
fn inline_votes_on_one_trace_count_once_and_the_latest_wins() {
    let p = Project::new();
    p.write(
        "evalwatch.yaml",
        "traffic:\n  - id: bot\n    path: logs/*.jsonl\n    fields: {time: /ts, trace_id: /trace, feedback: /fb}\n",
    );
    let t = recent_start();
    let line = |trace: &str, at: i64, fb: Option<&str>| {
        let fb = fb.map(|v| format!(r#", "fb": "{v}""#)).unwrap_or_default();
        format!("{{\"ts\": {at}, \"trace\": \"{trace}\"{fb}}}\n")
    };
    let log = [
        // A duplicate (seen before) with a later vote: the later one counts.
        line("t1", t, Some("up")),
        line("t1", t + 60, Some("down")),
        // Records two hours apart (two records of one trace): the later vote counts, once.
        line("t2", t - 7200, Some("down")),
        line("t2", t, Some("up")),
        // A vote on the duplicate only.
        line("t3", t, None),
        line("t3", t + 30, Some("down")),
        // An earlier vote read later: the later vote keeps counting.
        line("t4", t + 120, Some("down")),
        line("t4", t + 60, Some("up")),
        // Its record brings a vote later than the imported one waiting for it.
        line("t5", t, Some("down")),
    ]
    .concat();
    p.write(
        "t5.jsonl",
        r#"{"trace_id": "t5", "time": 1, "value": "up"}"#,
    );
    let waiting = json(&import(&p, "t5.jsonl"));
    assert_eq!(waiting["waiting"], 1, "{waiting}");
    p.write("logs/a.jsonl", &log);
    let out = ingest(&p, &[]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert_eq!(votes(&p), [(1, 4, 0), (1, 4, 0)]);
    // The waiting vote found its record (and lost to its later vote): nothing waits.
    assert_eq!(json(&import(&p, "t5.jsonl"))["unmatched"], 0);
    // Read again (a copy): nothing changes.
    p.write("logs/b.jsonl", &log);
    let out = ingest(&p, &[]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert_eq!(votes(&p), [(1, 4, 0), (1, 4, 0)]);
    // Imported votes: older than t1's inline vote, superseded; later, replacing it.
    let row = |at: i64, value: &str| {
        format!("{{\"trace_id\": \"t1\", \"time\": {at}, \"value\": \"{value}\"}}\n")
    };
    p.write("old.jsonl", &row(t + 30, "up"));
    assert_eq!(json(&import(&p, "old.jsonl"))["superseded"], 1);
    assert_eq!(votes(&p), [(1, 4, 0), (1, 4, 0)]);
    p.write("new.jsonl", &row(t + 600, "up"));
    assert_eq!(json(&import(&p, "new.jsonl"))["replaced"], 1);
    assert_eq!(votes(&p), [(2, 3, 0), (2, 3, 0)]);
    // An inline vote later than the imported one, on a record read after it, wins again.
    p.write("logs/c.jsonl", &line("t1", t + 900, Some("down")));
    let out = ingest(&p, &[]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert_eq!(votes(&p), [(1, 4, 0), (1, 4, 0)]);
}

/// `feedback import FILE --from TOOL ARGS` in json, with the salt.
fn import_from(p: &Project, file: &str, tool: &str, args: &[&str]) -> std::process::Output {
    p.cmd()
        .env("EVALWATCH_TRAFFIC_SALT", SALT)
        .args([
            "feedback", "import", file, "--from", tool, "--format", "json",
        ])
        .args(args)
        .output()
        .expect("run evalwatch")
}

/// `traffic --format json`: (rated, satisfaction, thumbs_down_rate) of the current window.
fn figures(p: &Project) -> (Option<u64>, Option<f64>, Option<f64>) {
    let out = p
        .cmd()
        .args(["traffic", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let t = json(&out);
    let c = &t["current"];
    (
        c["rated"].as_u64(),
        c["satisfaction"].as_f64(),
        c["thumbs_down_rate"].as_f64(),
    )
}

#[test]
fn langfuse_and_langsmith_exports_count_thumbs_as_votes_and_skip_other_scores() {
    let (p, start) = ingested("10%", 200);
    let at = |s: i64| {
        chrono::DateTime::from_timestamp(start + s, 123_000_000)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    // Langfuse: t0-t11 up (1, or BOOLEAN 1 "True"), t12-t19 down (0, or BOOLEAN 0 "False"),
    // and an LLM judge's scores on t0-t6, which are not users' votes.
    let mut langfuse = String::new();
    for i in 0..20 {
        let up = i < 12;
        let (value, string, kind) = match (i % 4 == 0, up) {
            (true, true) => ("1", r#""True""#, "BOOLEAN"),
            (true, false) => ("0", r#""False""#, "BOOLEAN"),
            (false, true) => ("1", "null", "NUMERIC"),
            (false, false) => ("0", "null", "NUMERIC"),
        };
        let _ = writeln!(
            langfuse,
            r#"{{"id": "s{i}", "traceId": "t{i}", "observationId": null, "name": "user-feedback", "source": "API", "timestamp": "{}", "createdAt": "{}", "value": {value}, "stringValue": {string}, "dataType": "{kind}", "comment": "mail me at jane{i}@example.com"}}"#,
            at(600 + i),
            at(601 + i)
        );
    }
    for i in 0..7 {
        let _ = writeln!(
            langfuse,
            r#"{{"id": "j{i}", "traceId": "t{i}", "name": "hallucination", "source": "EVAL", "timestamp": "{}", "value": 0.8, "dataType": "NUMERIC", "comment": null}}"#,
            at(700 + i)
        );
    }
    p.write("langfuse.jsonl", &langfuse);
    // Two names and no --name: refused, the names counted, nothing imported.
    let out = import_from(&p, "langfuse.jsonl", "langfuse", &[]);
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("user-feedback (20)") && err.contains("hallucination (7)"),
        "{err}"
    );
    assert_eq!(votes(&p), [(0, 0, 0), (0, 0, 0)]);
    let out = import_from(
        &p,
        "langfuse.jsonl",
        "langfuse",
        &["--name", "user-feedback"],
    );
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let got = json(&out);
    assert_eq!(
        (
            got["read"].as_u64(),
            got["counted"].as_u64(),
            got["skipped_other_scores"].as_u64(),
            got["score_name"].as_str()
        ),
        (Some(20), Some(20), Some(7), Some("user-feedback"))
    );
    assert_eq!(figures(&p), (Some(20), Some(0.6), Some(8.0 / 200.0)));
    // Comments are redacted as `ingest` redacts.
    let conn = rusqlite::Connection::open(p.db()).unwrap();
    let leaked: i64 = conn
        .query_row(
            "SELECT count(*) FROM traffic_feedback WHERE comment LIKE '%example.com%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(leaked, 0);

    // LangSmith: one name only, so no --name needed. t20-t24 up (score 1, a naive UTC time),
    // t25-t27 down (0), t28 down (false), t29 up (true, only a run_id); 0.5 on t30 is no vote.
    let naive = |s: i64| {
        chrono::DateTime::from_timestamp(start + s, 123_456_000)
            .unwrap()
            .naive_utc()
            .format("%Y-%m-%dT%H:%M:%S%.6f")
            .to_string()
    };
    let mut langsmith = String::new();
    for i in 20..31 {
        let (score, time) = match i {
            20..=24 => ("1".to_owned(), naive(600 + i)),
            25..=27 => ("0".to_owned(), format!("{}+00:00", naive(600 + i))),
            28 => ("false".to_owned(), naive(600 + i)),
            29 => ("true".to_owned(), naive(600 + i)),
            _ => ("0.5".to_owned(), naive(600 + i)),
        };
        let trace = if i == 29 {
            String::new()
        } else {
            format!(r#""trace_id": "t{i}", "#)
        };
        let _ = writeln!(
            langsmith,
            r#"{{"id": "f{i}", "run_id": "t{i}", {trace}"key": "user_score", "score": {score}, "value": null, "comment": null, "created_at": "{time}", "modified_at": "{time}", "feedback_source": {{"type": "api"}}}}"#
        );
    }
    p.write("langsmith.jsonl", &langsmith);
    let out = import_from(&p, "langsmith.jsonl", "langsmith", &[]);
    assert_eq!(code(&out), 3, "{}{}", stdout(&out), stderr(&out));
    let got = json(&out);
    assert_eq!(
        (
            got["read"].as_u64(),
            got["counted"].as_u64(),
            got["unreadable"].as_u64(),
            got["skipped_other_scores"].as_u64(),
            got["score_name"].as_str()
        ),
        (Some(10), Some(10), Some(1), Some(0), Some("user_score"))
    );
    assert!(
        got["errors"][0]["at"] == "langsmith.jsonl:11"
            && got["errors"][0]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("0.5")),
        "{got}"
    );
    // 12 + 6 up, 8 + 4 down, of 200 requests.
    assert_eq!(figures(&p), (Some(30), Some(0.6), Some(12.0 / 200.0)));
}
