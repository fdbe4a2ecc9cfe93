//! The pure part of traffic ingestion, measured: JSONL lines of ~500 bytes through the line
//! reader, JSON parsing, field mapping, redaction (email, phone, card, secret), the sample
//! decision and minute buckets with their latency sketch. Nothing is scored or stored: this is
//! the ceiling the wired `ingest` (issue #20) starts from, not the `ingest` figure itself.
//!
//! Run with `cargo bench --bench traffic_core [-- RECORDS [RUNS]]` (default 1,000,000 records,
//! 5 runs). Prints records/s per run, then the median and range.

use std::io::{BufReader, Cursor};
use std::time::Instant;

use evalwatch::traffic::ingest::{Ingestor, SourceRules, StoreText};
use evalwatch::traffic::mapping::{FieldMap, FieldRef, Mapping, UserHasher};
use evalwatch::traffic::reader::LineReader;
use evalwatch::traffic::{Aggregator, RedactRule, Redactor, SampleRate};

#[path = "support/traffic_log.rs"]
#[allow(dead_code)] // each bench uses part of it
mod traffic_log;

fn main() {
    let args = traffic_log::numbers();
    let records = args.first().copied().unwrap_or(1_000_000);
    let runs = args.get(1).copied().unwrap_or(5);
    let log = traffic_log::generate(records, 1_765_000_000, false);
    println!(
        "{records} records, {:.0} bytes each on average, {} MB",
        log.len() as f64 / records as f64,
        log.len() / 1_000_000
    );
    let rules = rules();
    let mut rates = Vec::new();
    for run in 1..=runs {
        let start = Instant::now();
        let mut ing = Ingestor::new(&rules);
        let mut reader = LineReader::new(BufReader::new(Cursor::new(&log)), 0, 0, 1 << 20);
        let mut buckets = Aggregator::default();
        let mut kept = 0usize;
        while let Some(line) = reader.next_line().expect("in-memory read") {
            if let Ok(text) = line.text
                && let Some(k) = ing.json_line(text, String::new)
            {
                buckets.add(&k.record, k.sampled);
                kept += usize::from(k.keep);
            }
        }
        let buckets = buckets.close_all().len();
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(ing.counts.records as usize, records);
        let rate = records as f64 / secs;
        println!(
            "run {run}: {rate:>10.0} records/s  ({secs:.3} s, {kept} kept in the 10% sample, {buckets} minute buckets)"
        );
        rates.push(rate);
    }
    println!("{}", traffic_log::median_range(rates, "records/s"));
}

fn rules() -> SourceRules {
    let p = |s: &str| Some(FieldRef::pointer(s).expect("pointer"));
    let mut f = FieldMap::new(FieldRef::pointer("/ts").expect("pointer"));
    f.input = p("/request/messages");
    f.output = p("/response/text");
    f.model = p("/model");
    f.feature = p("/meta/feature");
    f.segment = p("/user/plan");
    f.region = p("/geo/country");
    f.user = p("/user/id");
    f.trace_id = p("/trace_id");
    f.latency_ms = p("/latency_ms");
    f.tokens_in = p("/usage/prompt_tokens");
    f.tokens_out = p("/usage/completion_tokens");
    f.cost_usd = p("/cost");
    f.error = p("/error");
    SourceRules {
        mapping: Mapping {
            fields: f,
            users: UserHasher::new(b"bench-salt"),
        },
        redactor: Redactor::new(&[
            RedactRule::Email,
            RedactRule::Phone,
            RedactRule::Card,
            RedactRule::Secret,
        ])
        .expect("built-in rules"),
        sample: SampleRate::parse("10%").expect("share"),
        store_text: StoreText::Sampled,
    }
}
