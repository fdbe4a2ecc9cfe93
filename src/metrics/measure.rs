//! Timings of [`RunAccumulator`] on synthetic runs: ignored tests that print figures.
//!
//! ```text
//! cargo test --release --lib metrics::measure -- --ignored --nocapture --test-threads 1
//! ```
//!
//! `EVALWATCH_MEASURE=<results>:<repeat>` runs one shape only (for `heaptrack`),
//! `EVALWATCH_MEASURE_EXPECT=0` leaves `expect_samples` out, and
//! `EVALWATCH_MEASURE_OUT=<file>` writes the metrics as JSON, to compare two builds.

use std::time::Instant;

use serde_json::json;

use super::RunAccumulator;
use crate::model::{AssertionOutcome, CaseStatus, Job, RepeatPolicy, ResultRecord};

const TAGS: [&str; 5] = ["billing", "faq", "refunds", "smoke", "long"];

/// The record of job `i` of a run of `cases` cases with `repeat` samples on two providers,
/// in plan order (case, sample, provider).
fn record(i: usize, repeat: usize) -> ResultRecord {
    let providers = ["openai-prod", "local-llama"];
    let provider = providers[i % 2];
    let sample = (i / 2) % repeat;
    let case = i / 2 / repeat;
    // Pseudo-random but fixed outcome and latency.
    let h = (case as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(sample as u64 * 31 + (i % 2) as u64)
        .rotate_left(17);
    let status = match h % 20 {
        0 => CaseStatus::Error,
        1 => CaseStatus::Unscorable,
        2..=5 => CaseStatus::Failed,
        _ => CaseStatus::Passed,
    };
    let mut r = ResultRecord::new(
        Job::of(&format!("case-{case:06}"), provider, sample as u32),
        status,
    );
    r.tags = vec![
        TAGS[case % TAGS.len()].to_owned(),
        TAGS[(case / 7 + 1) % TAGS.len()].to_owned(),
    ];
    r.score = match status {
        CaseStatus::Passed => Some(1.0),
        CaseStatus::Failed => Some(0.0),
        _ => None,
    };
    if status != CaseStatus::Error {
        r.latency_ms = Some(200.0 + (h % 5000) as f64 / 7.0);
    }
    r.tokens_in = Some(120);
    r.tokens_out = Some(40);
    r.cost_usd = Some(0.0004);
    r.assertions = vec![AssertionOutcome {
        type_name: "contains".into(),
        pass: status == CaseStatus::Passed,
        score: if status == CaseStatus::Passed {
            1.0
        } else {
            0.0
        },
        reason: String::new(),
        details: serde_json::Value::Null,
        weight: 1.0,
        metric: Some("accuracy".into()),
        unscorable: false,
    }];
    r
}

fn rss_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn accumulator(cases: usize) -> RunAccumulator {
    // Every 10th case has its own policy.
    let own: Vec<String> = (0..cases)
        .step_by(10)
        .map(|c| format!("case-{c:06}"))
        .collect();
    RunAccumulator::with_policies(
        RepeatPolicy::Majority,
        own.iter().map(|c| (c.as_str(), RepeatPolicy::Any)),
    )
}

/// Feeds `results` results with `repeat` samples per case, reversed in windows of 16 (results
/// finish out of order), and prints the time of `add` and of `finish`.
fn run(results: usize, repeat: usize) {
    let cases = results / 2 / repeat;
    let results = cases * 2 * repeat;
    let mut acc = accumulator(cases);
    let expect = std::env::var("EVALWATCH_MEASURE_EXPECT").map_or(true, |v| v != "0");
    if expect {
        acc.expect_samples(repeat as u32);
    }
    let rss0 = rss_kb("VmRSS:");
    let t = Instant::now();
    for w in (0..results).step_by(16) {
        for i in (w..(w + 16).min(results)).rev() {
            acc.add(&record(i, repeat));
        }
    }
    let add = t.elapsed();
    let rss1 = rss_kb("VmRSS:");
    let t = Instant::now();
    let rows = acc.finish(Some(60.0));
    let finish = t.elapsed();
    let rss2 = rss_kb("VmRSS:");
    println!(
        "results {results} (cases {cases}, repeat {repeat}, 2 providers, 2 tags each, expect_samples {expect}): add {:.1} ms, finish {:.2} ms, rows {}, VmRSS {rss0} -> {rss1} -> {rss2} kB, VmHWM {} kB",
        add.as_secs_f64() * 1e3,
        finish.as_secs_f64() * 1e3,
        rows.len(),
        rss_kb("VmHWM:"),
    );
    if let Ok(path) = std::env::var("EVALWATCH_MEASURE_OUT") {
        let path = format!("{path}.{results}x{repeat}.json");
        std::fs::write(&path, serde_json::to_string_pretty(&json!(rows)).unwrap()).unwrap();
    }
}

#[test]
#[ignore = "prints timings; run with --release --ignored --nocapture"]
fn accumulator_timings() {
    if let Ok(shape) = std::env::var("EVALWATCH_MEASURE") {
        let (n, r) = shape.split_once(':').expect("<results>:<repeat>");
        run(n.parse().unwrap(), r.parse().unwrap());
        return;
    }
    for (n, r) in [(10_000, 1), (100_000, 1), (10_000, 5), (100_000, 5)] {
        run(n, r);
    }
}
