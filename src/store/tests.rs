//! Tests of the store against real `SQLite` files in a temporary directory.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::*;
use crate::model::{
    AssertionOutcome, Case, CaseStatus, ErrorKind, Job, LabelPair, Location, Metrics,
    PromptTemplate, ResultRecord,
};

fn case(id: &str, hash: &str, tags: &[&str]) -> Case {
    Case {
        id: id.to_owned(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        vars: crate::model::Vars::new(),
        expected: None,
        context: Vec::new(),
        asserts: Vec::new(),
        threshold: None,
        repeat_policy: None,
        hash: hash.to_owned(),
        location: Location::default(),
    }
}

fn suite(name: &str, cases: Vec<Case>) -> Suite {
    Suite {
        name: name.to_owned(),
        description: Some(format!("{name} suite")),
        tags: Vec::new(),
        schedule: None,
        timezone: None,
        catch_up: None,
        jitter: None,
        source: PathBuf::from(format!("suites/{name}.yaml")),
        providers: Vec::new(),
        system: None,
        prompt: PromptTemplate::Text("Q: {{ q }}".to_owned()),
        repeat: 1,
        repeat_policy: crate::model::RepeatPolicy::All,
        cases,
        gates: Vec::new(),
        alerts: Vec::new(),
        review: None,
        hash: format!("{name}-hash"),
        named_metrics: std::collections::BTreeSet::new(),
        settings: std::collections::BTreeMap::new(),
    }
}

fn default_suite() -> Suite {
    suite(
        "faq",
        vec![
            case("c0", "h0", &["billing"]),
            case("c1", "h1", &[]),
            case("c2", "h2", &["billing", "eu"]),
        ],
    )
}

fn info(run_id: &str, suite: &str, started_at: &str) -> RunInfo {
    RunInfo {
        run_id: run_id.to_owned(),
        suite: suite.to_owned(),
        suite_hash: format!("{suite}-hash"),
        started_at: started_at.to_owned(),
        finished_at: None,
        status: RunStatus::Running,
        providers: vec!["p-a".to_owned(), "p-b".to_owned()],
        planned: 12,
        filter: None,
    }
}

fn assertion(type_name: &str, pass: bool) -> AssertionOutcome {
    AssertionOutcome {
        type_name: type_name.to_owned(),
        pass,
        score: if pass { 1.0 } else { 0.25 },
        reason: format!("{type_name} {}", if pass { "matched" } else { "missed" }),
        details: serde_json::Value::Null,
        weight: 1.0,
        metric: None,
        unscorable: false,
    }
}

/// A simple passing record of case `c{seq % 3}` (hash `h..`, tags as in `default_suite`).
fn record(seq: usize) -> ResultRecord {
    let s = default_suite();
    let c = &s.cases[seq % 3];
    ResultRecord {
        job: Job {
            seq,
            case_index: seq % 3,
            case_id: c.id.clone(),
            provider_index: 0,
            provider_id: "p-a".to_owned(),
            sample: 0,
            case: crate::model::CaseRef::default(),
        },
        case_hash: c.hash.clone(),
        tags: c.tags.clone(),
        prompt: format!("prompt of {}", c.id),
        status: CaseStatus::Passed,
        score: Some(1.0),
        output: Some(format!("output {seq}")),
        error: None,
        error_kind: None,
        latency_ms: Some(12.5),
        tokens_in: Some(10),
        tokens_out: Some(20),
        cost_usd: Some(0.001),
        finish_reason: Some("stop".to_owned()),
        output_bytes: None,
        truncated: false,
        attempts: 1,
        assertions: vec![assertion("contains", true)],
        label: None,
        reported: None,
    }
}

fn begun(path: &Path, run_id: &str) -> Store {
    let mut store = Store::open(path).unwrap();
    store
        .begin_run(
            &info(run_id, "faq", "2024-05-01T06:00:00Z"),
            &default_suite(),
            4242,
            "host-a",
        )
        .unwrap();
    store
}

fn collect(store: &Store, run_id: &str) -> Vec<ResultRecord> {
    let mut out = Vec::new();
    store
        .for_each_result(run_id, |r| {
            out.push(r);
            Ok(())
        })
        .unwrap();
    out
}

fn count(path: &Path, sql: &str) -> i64 {
    let conn = Connection::open(path).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn a_version_1_database_with_data_is_migrated_and_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let conn = schema::connect_at(&path, 1).unwrap();
    conn.execute_batch(
        "INSERT INTO suites (id, name, description, first_seen, last_seen)
             VALUES (1, 'old', NULL, '2023-01-01T00:00:00Z', '2023-01-01T00:00:00Z');
         INSERT INTO cases (id, suite_ref, case_id, hash, tags, first_seen)
             VALUES (1, 1, 'k1', 'hk1', '[\"t\"]', '2023-01-01T00:00:00Z');
         INSERT INTO runs (id, run_id, suite_ref, suite_hash, started_at, finished_at, status,
                           providers, planned, pid, host, evalwatch_version)
             VALUES (1, 'old-run', 1, 'sh', '2023-01-01T00:00:00Z', '2023-01-01T00:01:00Z',
                     'complete', '[\"p\"]', 1, 1, 'h', '0.0.1');
         INSERT INTO prompts (id, hash, text) VALUES (1, x'00', 'the old prompt');
         INSERT INTO results (id, run_ref, seq, case_ref, case_index, provider, provider_index,
                              sample, status, score, attempts, prompt_ref, assertions, output)
             VALUES (4294967296, 1, 0, 1, 0, 'p', 0, 0, 'failed', 0.5, 2, 1,
                     '[{\"type\":\"equals\",\"pass\":false,\"score\":0.5,\"reason\":\"differs\",\"details\":{\"d\":1}}]',
                     'old output');",
    )
    .unwrap();
    drop(conn);

    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    let run = store.run("old-run").unwrap().expect("run kept");
    assert_eq!(run.status, RunStatus::Complete);
    assert_eq!(run.suite, "old");
    assert_eq!(run.providers, vec!["p".to_owned()]);
    let results = collect(&store, "old-run");
    assert_eq!(results.len(), 1);
    let r = &results[0];
    assert_eq!(r.job.case_id, "k1");
    assert_eq!(r.tags, vec!["t".to_owned()]);
    assert_eq!(r.prompt, "the old prompt");
    assert_eq!(r.status, CaseStatus::Failed);
    assert_eq!(r.output.as_deref(), Some("old output"));
    assert_eq!(r.attempts, 2);
    assert_eq!(r.assertions.len(), 1);
    assert_eq!(r.assertions[0].details, serde_json::json!({"d": 1}));
    // The views of migration 2 see the old data.
    assert_eq!(count(&path, "SELECT count(*) FROM result_rows"), 1);
    assert_eq!(
        count(
            &path,
            "SELECT count(*) FROM assertion_rows WHERE type = 'equals' AND pass = 0 \
             AND reason = 'differs' AND weight = 1.0"
        ),
        1
    );
    assert_eq!(store.runs(Some("old"), 0).unwrap().len(), 1);
    // Migration 0023 gave the old run its start in milliseconds.
    assert_eq!(
        count(
            &path,
            "SELECT started_ms FROM runs WHERE run_id = 'old-run'"
        ),
        1_672_531_200_000
    );
}

/// Version counts stored before migration 0024 (added when a run ended) are read as before.
#[test]
fn version_counts_of_a_version_23_store_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let conn = schema::connect_at(&path, 23).unwrap();
    conn.execute_batch(
        "INSERT INTO suites (id, name, first_seen, last_seen) VALUES (1, 's', 't', 't');
         INSERT INTO runs (id, run_id, suite_ref, suite_hash, started_at, status, planned,
                           evalwatch_version, started_ms)
             VALUES (1, 'old', 1, 'h', '2026-01-01T00:00:00Z', 'complete', 3, 'x', 0);
         INSERT INTO run_versions (run_ref, provider, model, fingerprint, answers)
             VALUES (1, 'gpt', 'gpt-4o-2024-08-06', 'fp_abc', 2),
                    (1, 'gpt', 'gpt-4o-2024-11-20', '', 1);",
    )
    .unwrap();
    drop(conn);
    let store = Store::open(&path).unwrap();
    let got: Vec<(String, Option<String>, u64)> = store
        .run_versions("old")
        .unwrap()
        .into_iter()
        .map(|c| (c.version.model, c.version.fingerprint, c.answers))
        .collect();
    assert_eq!(
        got,
        [
            ("gpt-4o-2024-08-06".to_owned(), Some("fp_abc".to_owned()), 2),
            ("gpt-4o-2024-11-20".to_owned(), None, 1),
        ]
    );
}

#[test]
fn a_newer_database_is_refused_by_store_and_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    drop(begun(&path, "r1"));
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
    assert!(err.to_string().contains("upgrade evalwatch"), "{err}");
    let err = Writer::spawn(&path, "r1", 10).unwrap_err();
    assert!(matches!(err, StoreError::TooNew { .. }), "{err}");
}

#[test]
fn begin_and_finish_run_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let mut store = begun(&path, "r1");
    let run = store.run("r1").unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Running);
    assert_eq!(run.finished_at, None);
    assert_eq!(run.suite, "faq");
    assert_eq!(run.suite_hash, "faq-hash");
    assert_eq!(run.providers, vec!["p-a".to_owned(), "p-b".to_owned()]);
    assert_eq!(run.planned, 12);
    assert_eq!(count(&path, "SELECT count(*) FROM cases"), 3);

    let overall = Metrics {
        cases: 6,
        passed: 5,
        failed: 1,
        pass_rate: Some(5.0 / 6.0),
        mean_score: Some(0.9),
        latency_p95_ms: Some(120.0),
        cost_usd: 0.25,
        hallucination_rate: Some(0.1),
        flaky_cases: vec!["c1".to_owned()],
        ..Metrics::default()
    };
    let tagged = Metrics {
        cases: 2,
        passed: 2,
        pass_rate: Some(1.0),
        ..Metrics::default()
    };
    let metrics = vec![
        ProviderMetrics {
            provider: "p-a".to_owned(),
            tag: None,
            metrics: overall.clone(),
        },
        ProviderMetrics {
            provider: "p-a".to_owned(),
            tag: Some("billing".to_owned()),
            metrics: tagged,
        },
    ];
    let gates = vec![
        GateResult {
            metric: "pass_rate".to_owned(),
            provider: "p-a".to_owned(),
            limit: ">= 0.9".to_owned(),
            value: Some(5.0 / 6.0),
            ok: false,
        },
        GateResult {
            metric: "error_rate".to_owned(),
            provider: "p-a".to_owned(),
            limit: "<= 0.1".to_owned(),
            value: None,
            ok: true,
        },
    ];
    store
        .finish_run(
            "r1",
            RunStatus::Complete,
            "2024-05-01T06:05:00Z",
            &metrics,
            &gates,
        )
        .unwrap();
    let run = store.run("r1").unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Complete);
    assert_eq!(run.finished_at.as_deref(), Some("2024-05-01T06:05:00Z"));
    assert_eq!(store.run_metrics("r1").unwrap(), metrics);
    assert_eq!(store.run_gates("r1").unwrap(), gates);
    let rows = store.runs(None, 10).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].metrics, metrics[..1].to_vec());
    // Headline columns for trend queries.
    let conn = Connection::open(&path).unwrap();
    let (pass_rate, p95, cost): (f64, f64, f64) = conn
        .query_row(
            "SELECT pass_rate, latency_p95_ms, cost_usd FROM run_headlines WHERE run_id = 'r1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert!((pass_rate - 5.0 / 6.0).abs() < 1e-12);
    assert!((p95 - 120.0).abs() < 1e-12);
    assert!((cost - 0.25).abs() < 1e-12);

    // Finishing again replaces metrics and gates instead of adding to them.
    store
        .finish_run(
            "r1",
            RunStatus::Failed,
            "2024-05-01T06:06:00Z",
            &metrics[..1],
            &[],
        )
        .unwrap();
    assert_eq!(store.run_metrics("r1").unwrap().len(), 1);
    assert!(store.run_gates("r1").unwrap().is_empty());
    assert_eq!(store.run("r1").unwrap().unwrap().status, RunStatus::Failed);

    let err = store
        .finish_run(
            "nope",
            RunStatus::Complete,
            "2024-05-01T06:06:00Z",
            &[],
            &[],
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownRun { .. }), "{err}");
    assert!(matches!(
        store.run_metrics("nope"),
        Err(StoreError::UnknownRun { .. })
    ));
}

#[test]
fn begin_run_records_case_versions_and_guards_run_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let mut store = begun(&path, "r1");
    // c1 edited (new hash), c0 unchanged, c3 new.
    let mut edited = suite(
        "faq",
        vec![
            case("c0", "h0", &["billing"]),
            case("c1", "h1-edited", &[]),
            case("c3", "h3", &[]),
        ],
    );
    // The suite's content hash covers its cases' hashes: an edit changes it.
    edited.hash = "faq-edited-hash".into();
    store
        .begin_run(&info("r2", "faq", "2024-05-02T06:00:00Z"), &edited, 1, "h")
        .unwrap();
    assert_eq!(count(&path, "SELECT count(*) FROM cases"), 5);
    assert_eq!(
        count(&path, "SELECT count(*) FROM cases WHERE case_id = 'c1'"),
        2
    );
    assert_eq!(count(&path, "SELECT count(*) FROM suites"), 1);

    // Resuming a finished run marks it running again.
    store
        .finish_run(
            "r1",
            RunStatus::Incomplete,
            "2024-05-01T07:00:00Z",
            &[],
            &[],
        )
        .unwrap();
    store
        .begin_run(
            &info("r1", "faq", "2024-05-01T06:00:00Z"),
            &default_suite(),
            7,
            "host-b",
        )
        .unwrap();
    let run = store.run("r1").unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Running);
    assert_eq!(run.finished_at, None);
    assert!(
        store
            .running_runs()
            .unwrap()
            .contains(&("r1".to_owned(), 7, "host-b".to_owned()))
    );

    // The same id for another suite is refused; so is a run naming another suite.
    let other = suite("other", vec![case("x", "hx", &[])]);
    let err = store
        .begin_run(&info("r1", "other", "2024-05-03T06:00:00Z"), &other, 1, "h")
        .unwrap_err();
    assert!(err.to_string().contains("another suite"), "{err}");
    let err = store
        .begin_run(&info("r9", "faq", "2024-05-03T06:00:00Z"), &other, 1, "h")
        .unwrap_err();
    assert!(err.to_string().contains("names suite faq"), "{err}");
    assert!(store.run("r9").unwrap().is_none());
}

#[test]
fn writer_commits_in_batches_of_at_most_the_batch_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let store = begun(&path, "r1");
    let writer = Writer::spawn(&path, "r1", 10).unwrap();
    for seq in 0..25 {
        writer.send(record(seq)).unwrap();
    }
    let stats = writer.finish().unwrap();
    assert_eq!(stats.written, 25);
    assert!(stats.batches >= 3, "25 results in batches of 10: {stats:?}");
    let seqs: Vec<usize> = collect(&store, "r1").iter().map(|r| r.job.seq).collect();
    assert_eq!(seqs, (0..25).collect::<Vec<_>>());
}

/// The model versions results reported are stored by the writer with their batch, before
/// the run ends (a run killed after some batches keeps their counts); a writer of the same
/// run started again (a resume) adds to them; a result that reported none counts nowhere.
#[test]
fn writer_stores_the_reported_model_versions_with_each_batch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let store = begun(&path, "r1");
    let version = |fp: &str| crate::model::ReportedModel {
        model: "gpt-4o-2024-11-20".to_owned(),
        fingerprint: Some(fp.to_owned()).filter(|f| !f.is_empty()),
    };
    let send = |seqs: std::ops::Range<usize>| {
        let writer = Writer::spawn(&path, "r1", 10).unwrap();
        for seq in seqs {
            let mut rec = record(seq);
            rec.reported = match seq % 5 {
                0 => None,
                1 => Some(version("")),
                _ => Some(version("fp_a")),
            };
            writer.send(rec).unwrap();
        }
        writer.finish().unwrap();
    };
    send(0..25);
    let counts = |store: &Store| -> Vec<(Option<String>, u64)> {
        store
            .run_versions("r1")
            .unwrap()
            .into_iter()
            .map(|c| (c.version.fingerprint, c.answers))
            .collect()
    };
    // Of 25 results: 5 reported nothing, 5 no fingerprint, 15 fp_a; most answered first.
    assert_eq!(counts(&store), [(Some("fp_a".to_owned()), 15), (None, 5)]);
    send(25..40);
    assert_eq!(counts(&store), [(Some("fp_a".to_owned()), 24), (None, 8)]);
}

#[test]
fn writer_commits_a_lone_result_without_waiting_for_a_full_batch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let _store = begun(&path, "r1");
    let writer = Writer::spawn(&path, "r1", 1000).unwrap();
    writer.send(record(0)).unwrap();
    // The batch is far from full, so only the time-based flush can commit it.
    while count(&path, "SELECT count(*) FROM results") == 0 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let stats = writer.finish().unwrap();
    assert_eq!((stats.written, stats.batches), (1, 1));
}

#[test]
fn every_result_field_round_trips_in_plan_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let store = begun(&path, "r1");

    let full = ResultRecord {
        job: Job {
            seq: 2,
            case_index: 2,
            case_id: "c2".to_owned(),
            provider_index: 1,
            provider_id: "p-b".to_owned(),
            sample: 3,
            case: crate::model::CaseRef::default(),
        },
        case_hash: "h2".to_owned(),
        tags: vec!["billing".to_owned(), "eu".to_owned()],
        prompt: "system\n\nuser: hello ünïcode".to_owned(),
        status: CaseStatus::Failed,
        score: Some(0.375),
        output: Some("an output with 'quotes' and \"dq\"".to_owned()),
        error: None,
        error_kind: None,
        latency_ms: Some(1234.5),
        tokens_in: Some(u64::from(u32::MAX) + 7),
        tokens_out: Some(0),
        cost_usd: Some(0.000_123),
        finish_reason: Some("length".to_owned()),
        output_bytes: Some(5000),
        truncated: true,
        attempts: 3,
        assertions: vec![
            AssertionOutcome {
                type_name: "hallucination".to_owned(),
                pass: false,
                score: 0.25,
                reason: "2 unsupported spans".to_owned(),
                details: serde_json::json!({"score": 0.25, "unsupported": ["a", "b"]}),
                weight: 2.0,
                metric: Some("grounded".to_owned()),
                unscorable: false,
            },
            AssertionOutcome {
                type_name: "classification".to_owned(),
                pass: true,
                score: 1.0,
                reason: String::new(),
                details: serde_json::Value::Null,
                weight: 0.5,
                metric: None,
                unscorable: true,
            },
        ],
        label: Some(LabelPair {
            expected: "refund".to_owned(),
            predicted: None,
        }),
        reported: None,
    };
    let errored = ResultRecord {
        job: Job {
            seq: 0,
            case_index: 0,
            case_id: "c0".to_owned(),
            provider_index: 0,
            provider_id: "p-a".to_owned(),
            sample: 0,
            case: crate::model::CaseRef::default(),
        },
        case_hash: "h0".to_owned(),
        // Differs from the case row's tags: stored on the result.
        tags: vec!["other-tag".to_owned()],
        prompt: String::new(),
        status: CaseStatus::Error,
        score: None,
        output: None,
        error: Some("HTTP 503 from p-a".to_owned()),
        error_kind: Some(ErrorKind::Server),
        latency_ms: None,
        tokens_in: None,
        tokens_out: None,
        cost_usd: None,
        finish_reason: None,
        output_bytes: None,
        truncated: false,
        attempts: 5,
        assertions: Vec::new(),
        label: Some(LabelPair {
            expected: "a".to_owned(),
            predicted: Some("b".to_owned()),
        }),
        reported: None,
    };
    // A case version begin_run did not know is added by the writer.
    let mut unknown_case = record(1);
    unknown_case.job.case_id = "c-new".to_owned();
    unknown_case.case_hash = "h-new".to_owned();
    unknown_case.tags = vec!["fresh".to_owned()];
    unknown_case.status = CaseStatus::Unscorable;

    let writer = Writer::spawn(&path, "r1", 2).unwrap();
    // Sent out of plan order: read back in plan order.
    writer.send(full.clone()).unwrap();
    writer.send(errored.clone()).unwrap();
    writer.send(unknown_case.clone()).unwrap();
    writer.finish().unwrap();

    let got = collect(&store, "r1");
    assert_eq!(got, vec![errored, unknown_case, full]);
    assert_eq!(
        store.result_statuses("r1").unwrap(),
        vec![
            ("c0".to_owned(), "p-a".to_owned(), 0, CaseStatus::Error),
            (
                "c-new".to_owned(),
                "p-a".to_owned(),
                0,
                CaseStatus::Unscorable
            ),
            ("c2".to_owned(), "p-b".to_owned(), 3, CaseStatus::Failed),
        ]
    );
    // Tags are stored on the result only when they differ from the case row.
    assert_eq!(
        count(&path, "SELECT count(*) FROM results WHERE tags IS NOT NULL"),
        1
    );
}

#[test]
fn a_nan_score_is_stored_as_null_and_does_not_stop_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let store = begun(&path, "r1");
    let mut rec = record(0);
    rec.score = Some(f64::NAN);
    rec.assertions[0].score = f64::NAN;
    rec.assertions[0].weight = f64::NAN;
    let writer = Writer::spawn(&path, "r1", 10).unwrap();
    writer.send(rec).unwrap();
    writer.send(record(1)).unwrap();
    assert_eq!(writer.finish().unwrap().written, 2);
    let got = collect(&store, "r1");
    assert_eq!(got[0].score, None);
    assert!(got[0].assertions[0].score.is_nan());
    assert!(got[0].assertions[0].weight.is_nan());
    assert_eq!(got[1], record(1));
}

#[test]
fn a_callback_error_stops_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let store = begun(&path, "r1");
    let writer = Writer::spawn(&path, "r1", 10).unwrap();
    for seq in 0..5 {
        writer.send(record(seq)).unwrap();
    }
    writer.finish().unwrap();
    let mut calls = 0;
    let err = store
        .for_each_result("r1", |_| {
            calls += 1;
            Err(StoreError::Other("stop here".to_owned()))
        })
        .unwrap_err();
    assert_eq!(calls, 1);
    assert!(err.to_string().contains("stop here"));
    assert!(matches!(
        store.for_each_result("nope", |_| Ok(())),
        Err(StoreError::UnknownRun { .. })
    ));
}

#[test]
fn the_same_prompt_is_stored_once_across_results_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let mut store = begun(&path, "r1");
    let mut a = record(0);
    let mut b = record(1);
    a.prompt = "shared prompt".to_owned();
    b.prompt = "shared prompt".to_owned();
    b.job.sample = 1;
    let mut c = record(2);
    c.prompt = "another prompt".to_owned();
    let writer = Writer::spawn(&path, "r1", 10).unwrap();
    for r in [a.clone(), b, c] {
        writer.send(r).unwrap();
    }
    writer.finish().unwrap();
    assert_eq!(count(&path, "SELECT count(*) FROM prompts"), 2);
    assert_eq!(
        count(&path, "SELECT count(DISTINCT prompt_ref) FROM results"),
        2
    );

    // A second run (a new writer, cold cache) reuses the stored prompt.
    store
        .begin_run(
            &info("r2", "faq", "2024-05-02T06:00:00Z"),
            &default_suite(),
            1,
            "h",
        )
        .unwrap();
    let writer = Writer::spawn(&path, "r2", 10).unwrap();
    writer.send(a).unwrap();
    writer.finish().unwrap();
    assert_eq!(count(&path, "SELECT count(*) FROM prompts"), 2);
    let got = collect(&store, "r2");
    assert_eq!(got[0].prompt, "shared prompt");
}

#[test]
fn two_writers_on_one_file_both_complete() {
    const N: usize = 3000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    drop(Store::open(&path).unwrap());
    let handles: Vec<_> = ["ra", "rb"]
        .into_iter()
        .map(|run_id| {
            let path = path.clone();
            std::thread::spawn(move || -> Result<WriterStats, StoreError> {
                let mut store = Store::open(&path)?;
                store.begin_run(
                    &info(run_id, "faq", "2024-05-01T06:00:00Z"),
                    &default_suite(),
                    1,
                    "h",
                )?;
                let writer = Writer::spawn(&path, run_id, 50)?;
                for seq in 0..N {
                    let mut r = record(seq);
                    r.output = Some(format!("{run_id} output {seq}"));
                    writer.send(r)?;
                }
                writer.finish()
            })
        })
        .collect();
    for h in handles {
        let stats = h.join().unwrap().unwrap();
        assert_eq!(stats.written, N as u64);
    }
    let store = Store::open(&path).unwrap();
    for run_id in ["ra", "rb"] {
        let got = collect(&store, run_id);
        assert_eq!(got.len(), N);
        assert!(got.iter().enumerate().all(|(i, r)| r.job.seq == i
            && r.output.as_deref() == Some(&*format!("{run_id} output {i}"))));
    }
    assert_eq!(count(&path, "SELECT count(*) FROM prompts"), 3);
}

#[test]
fn an_interrupted_run_keeps_its_results_and_can_be_marked_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let mut store = begun(&path, "r1");
    let writer = Writer::spawn(&path, "r1", 7).unwrap();
    for seq in 0..20 {
        writer.send(record(seq)).unwrap();
    }
    drop(writer); // no finish: what was sent is still written.
    let mut seen = 0;
    store
        .for_each_result("r1", |r| {
            assert_eq!(r, record(seen));
            seen += 1;
            Ok(())
        })
        .unwrap();
    assert_eq!(seen, 20);
    assert_eq!(
        store.running_runs().unwrap(),
        vec![("r1".to_owned(), 4242, "host-a".to_owned())]
    );
    store.set_run_status("r1", RunStatus::Incomplete).unwrap();
    assert!(store.running_runs().unwrap().is_empty());
    assert_eq!(
        store.run("r1").unwrap().unwrap().status,
        RunStatus::Incomplete
    );
    assert!(matches!(
        store.set_run_status("nope", RunStatus::Incomplete),
        Err(StoreError::UnknownRun { .. })
    ));
}

#[test]
fn writer_errors_surface_from_send_and_finish_with_context() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let _store = begun(&path, "r1");
    assert!(matches!(
        Writer::spawn(&path, "nope", 10),
        Err(StoreError::UnknownRun { .. })
    ));

    // The same plan position twice violates (run, seq) uniqueness.
    let writer = Writer::spawn(&path, "r1", 1).unwrap();
    writer.send(record(0)).unwrap();
    let mut send_err = None;
    for _ in 0..1_000_000 {
        if let Err(e) = writer.send(record(0)) {
            send_err = Some(e);
            break;
        }
    }
    let send_err = send_err.expect("send fails once the writer thread failed");
    let text = send_err.to_string();
    assert!(text.contains("run r1"), "{text}");
    assert!(text.contains("UNIQUE"), "{text}");
    let err = writer.finish().unwrap_err();
    assert!(matches!(err, StoreError::Writer { .. }), "{err}");
    assert!(err.to_string().contains("UNIQUE"), "{err}");
    // The first result was committed before the failure.
    assert_eq!(count(&path, "SELECT count(*) FROM results"), 1);
}

#[test]
fn run_accepts_a_unique_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let mut store = Store::open(&path).unwrap();
    for id in ["20240501-a1", "20240501-a2", "20240501-b1", "r1", "r10"] {
        store
            .begin_run(
                &info(id, "faq", "2024-05-01T06:00:00Z"),
                &default_suite(),
                1,
                "h",
            )
            .unwrap();
    }
    assert_eq!(
        store.run("20240501-b").unwrap().unwrap().run_id,
        "20240501-b1"
    );
    assert_eq!(
        store.run("20240501-a2").unwrap().unwrap().run_id,
        "20240501-a2"
    );
    // An exact id wins over the longer ids it prefixes.
    assert_eq!(store.run("r1").unwrap().unwrap().run_id, "r1");
    match store.run("20240501-a") {
        Err(StoreError::AmbiguousRun { prefix, matches }) => {
            assert_eq!(prefix, "20240501-a");
            assert_eq!(matches, vec!["20240501-a1", "20240501-a2"]);
        }
        other => panic!("expected an ambiguous prefix, got {other:?}"),
    }
    let err = store.run("2024").unwrap_err();
    assert!(err.to_string().contains("ambiguous"), "{err}");
    assert!(store.run("zzz").unwrap().is_none());
    assert!(store.run("").unwrap().is_none());
}

#[test]
fn runs_are_listed_newest_first_by_suite_with_a_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let mut store = Store::open(&path).unwrap();
    let other = suite("other", vec![case("x", "hx", &[])]);
    // Mixed precision: lexical order would put "06:00:00.5Z" before "06:00:00Z".
    let plan = [
        ("a", "faq", "2024-05-01T06:00:00Z"),
        ("b", "faq", "2024-05-01T06:00:00.5Z"),
        ("c", "other", "2024-05-02T06:00:00Z"),
        ("d", "faq", "2024-05-01T08:00:00+01:00"),
    ];
    for (id, s, at) in plan {
        let st = if s == "faq" {
            default_suite()
        } else {
            other.clone()
        };
        store.begin_run(&info(id, s, at), &st, 1, "h").unwrap();
    }
    let ids = |rows: Vec<RunRow>| rows.into_iter().map(|r| r.info.run_id).collect::<Vec<_>>();
    assert_eq!(ids(store.runs(None, 0).unwrap()), vec!["c", "d", "b", "a"]);
    assert_eq!(
        ids(store.runs(Some("faq"), 0).unwrap()),
        vec!["d", "b", "a"]
    );
    assert_eq!(ids(store.runs(Some("faq"), 2).unwrap()), vec!["d", "b"]);
    assert!(store.runs(Some("missing"), 0).unwrap().is_empty());
}

/// Audit H2: a filtered run (`--case`, `--tag`) keeps its filters and is no baseline, no
/// latest run and no trend point.
#[test]
fn filtered_runs_are_kept_marked_and_never_chosen_as_history() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("h.db")).unwrap();
    let metrics = vec![ProviderMetrics {
        provider: "p-a".to_owned(),
        tag: None,
        metrics: Metrics {
            pass_rate: Some(1.0),
            ..Metrics::default()
        },
    }];
    for (id, at, filter) in [
        ("full", "2024-05-01T06:00:00Z", None),
        (
            "spot",
            "2024-05-02T06:00:00Z",
            Some("--case c1 --tag smoke"),
        ),
    ] {
        let run = RunInfo {
            filter: filter.map(str::to_owned),
            ..info(id, "faq", at)
        };
        store.begin_run(&run, &default_suite(), 1, "h").unwrap();
        store
            .finish_run(id, RunStatus::Complete, at, &metrics, &[])
            .unwrap();
    }
    let spot = store.run("spot").unwrap().unwrap();
    assert_eq!(spot.filter.as_deref(), Some("--case c1 --tag smoke"));
    assert_eq!(store.run("full").unwrap().unwrap().filter, None);
    let later = "2024-05-09T00:00:00Z";
    let id = |r: Option<RunInfo>| r.map(|r| r.run_id);
    assert_eq!(
        id(store.previous_complete_run("faq", later).unwrap()).as_deref(),
        Some("full")
    );
    assert_eq!(
        id(store.latest_complete_run("faq").unwrap()).as_deref(),
        Some("full")
    );
    let window: Vec<String> = store
        .complete_runs_before("faq", later, 10)
        .unwrap()
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    assert_eq!(window, ["full"]);
    let trend = store
        .trend(&crate::model::TrendQuery {
            suite: "faq",
            since: None,
            tags: false,
            full: false,
        })
        .unwrap();
    assert!(!trend.is_empty() && trend.iter().all(|t| t.run_id == "full"));
    // `runs` lists it, filter and all.
    let runs = store.runs(Some("faq"), 0).unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(
        runs[0].info.filter.as_deref(),
        Some("--case c1 --tag smoke")
    );
}

#[test]
fn previous_complete_run_skips_other_statuses_suites_and_later_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let mut store = Store::open(&path).unwrap();
    let other = suite("other", vec![case("x", "hx", &[])]);
    let plan = [
        ("t1", "faq", "2024-05-01T06:00:00Z", RunStatus::Complete),
        ("t2", "faq", "2024-05-02T06:00:00Z", RunStatus::Incomplete),
        ("o1", "other", "2024-05-02T12:00:00Z", RunStatus::Complete),
        ("t3", "faq", "2024-05-03T06:00:00.250Z", RunStatus::Complete),
    ];
    for (id, s, at, status) in plan {
        let st = if s == "faq" {
            default_suite()
        } else {
            other.clone()
        };
        store.begin_run(&info(id, s, at), &st, 1, "h").unwrap();
        store
            .finish_run(id, status, "2024-06-01T00:00:00Z", &[], &[])
            .unwrap();
    }
    let prev = |before: &str| {
        store
            .previous_complete_run("faq", before)
            .unwrap()
            .map(|r| r.run_id)
    };
    assert_eq!(prev("2024-05-03T06:00:00.250Z").as_deref(), Some("t1"));
    assert_eq!(prev("2024-05-03T06:00:00.300Z").as_deref(), Some("t3"));
    assert_eq!(prev("2024-05-09T00:00:00Z").as_deref(), Some("t3"));
    assert_eq!(prev("2024-05-01T06:00:00Z"), None);
    assert_eq!(
        store
            .previous_complete_run("other", "2024-05-09T00:00:00Z")
            .unwrap()
            .map(|r| r.run_id)
            .as_deref(),
        Some("o1")
    );
    assert!(store.previous_complete_run("faq", "yesterday").is_err());
}

#[test]
fn deferred_registration_is_done_by_the_writer_before_its_first_result() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let suite = std::sync::Arc::new(default_suite());
    let mut store = Store::open(&path).unwrap();
    let first = info("r1", "faq", "2024-05-01T06:00:00Z");
    // Nothing ran with this content: the cases need registering, and begin leaves them.
    assert!(store.begin_run_deferred(&first, &suite, 1, "h").unwrap());
    assert_eq!(count(&path, "SELECT count(*) FROM cases"), 0);
    // A second run of the same content before the first stored anything still registers.
    let early = info("r0", "faq", "2024-05-01T05:00:00Z");
    assert!(store.begin_run_deferred(&early, &suite, 1, "h").unwrap());
    let writer = Writer::spawn_registering(
        &path,
        "r1",
        10,
        Some((std::sync::Arc::clone(&suite), first.started_at.clone())),
    )
    .unwrap();
    writer.send(record(0)).unwrap();
    writer.finish().unwrap();
    assert_eq!(count(&path, "SELECT count(*) FROM cases"), 3);
    assert_eq!(
        count(
            &path,
            "SELECT count(*) FROM cases WHERE first_seen = '2024-05-01T06:00:00Z'"
        ),
        3
    );
    // Now a run of this content has a result: the next one has nothing to register.
    let next = info("r2", "faq", "2024-05-02T06:00:00Z");
    assert!(!store.begin_run_deferred(&next, &suite, 1, "h").unwrap());
    // Another content registers again.
    let mut edited = default_suite();
    edited.hash = "faq-hash-2".into();
    edited.cases[0].hash = "h0b".into();
    let third = RunInfo {
        suite_hash: edited.hash.clone(),
        ..info("r3", "faq", "2024-05-03T06:00:00Z")
    };
    assert!(store.begin_run_deferred(&third, &edited, 1, "h").unwrap());
    store.begin_run(&third, &edited, 1, "h").unwrap();
    assert_eq!(count(&path, "SELECT count(*) FROM cases"), 4);
}

/// Every order by a time that can be NULL says where NULL goes, SQLite's place on both
/// engines (PostgreSQL puts NULL the other way unless told): `started_ms` (NULL for a start
/// that is not a time) and `julianday(...)` (NULL for text that is not a time), `NULLS FIRST`
/// ascending and `NULLS LAST` descending (docs/store.md, "The schema on PostgreSQL").
#[test]
fn every_order_by_a_time_that_can_be_null_says_where_null_goes() {
    macro_rules! sources {
        ($($file:literal),+ $(,)?) => { [$(($file, include_str!($file))),+] };
    }
    let sources = sources![
        "alerts.rs",
        "codec.rs",
        "db.rs",
        "drift.rs",
        "feedback.rs",
        "judge.rs",
        "labels.rs",
        "marks.rs",
        "mod.rs",
        "read.rs",
        "review.rs",
        "review_traffic.rs",
        "schedule.rs",
        "schema.rs",
        "settings.rs",
        "traffic.rs",
        "traffic_alerts.rs",
        "traffic_judge.rs",
        "trends.rs",
        "versions.rs",
        "writer.rs",
        "pg/copy.rs",
        "pg/lease.rs",
        "pg/mod.rs",
        "pg/read.rs",
        "pg/results.rs",
        "pg/schema.rs",
    ];
    let mut orders = 0;
    let mut missing = Vec::new();
    for (file, text) in sources {
        for (at, _) in text.match_indices("ORDER BY ") {
            // The clause: to the end of the string literal or a LIMIT.
            let rest = &text[at + "ORDER BY ".len()..];
            let mut clause = &rest[..rest.find('"').unwrap_or(rest.len())];
            if let Some(limit) = clause.find("LIMIT") {
                clause = &clause[..limit];
            }
            for term in clause.split(',') {
                if term.contains("julianday(") || term.contains("started_ms") {
                    orders += 1;
                    if !term.contains("NULLS") {
                        missing.push(format!("{file}: ORDER BY ...{}", term.trim()));
                    }
                }
            }
        }
    }
    assert!(missing.is_empty(), "orders without NULLS: {missing:#?}");
    assert!(orders >= 23, "the orders by a time were found: {orders}");
}
