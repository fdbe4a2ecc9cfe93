//! The traffic page of one source over 30 days of 1,000,000 records a day, measured: the
//! composer's reads of stored buckets (hour buckets of 14 days, day buckets of 60, change
//! markers), the figures merged from them, and the page rendered and written.
//!
//! The store is filled through the store API directly (minute buckets that roll up to hour and
//! day, as `ingest` writes them), not by ingesting 30 M records: 12 label combinations (3
//! features x 2 models x 2 segments) x 1,440 minutes x 30 days, each minute bucket holding its
//! share of 1 M records a day (about 58 requests, with their latency sketch).
//!
//! Run with `cargo bench --bench traffic_page [-- DAYS [RUNS]]` (default 30 days, 5 runs).
//! Prints the time of each run, then the median and range.

use std::time::Instant;

use evalwatch::app::report::traffic::traffic_page;
use evalwatch::report::html::Written;
use evalwatch::report::html::traffic::write_traffic;
use evalwatch::store::{BucketRow, Store};
use evalwatch::traffic::{BucketKey, Resolution};

const PER_DAY: u64 = 1_000_000;
const FEATURES: [&str; 3] = ["chat", "summarise", "search"];
const MODELS: [&str; 2] = ["gpt-4o-mini", "claude-3-5-haiku"];
const SEGMENTS: [&str; 2] = ["free", "pro"];

fn main() {
    let args: Vec<i64> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .filter_map(|a| a.parse().ok())
        .collect();
    let days = args.first().copied().unwrap_or(30);
    let runs = usize::try_from(args.get(1).copied().unwrap_or(5)).unwrap_or(5);
    let dir = tempfile::tempdir().expect("tmp");
    let mut store = Store::open(&dir.path().join("t.db")).expect("store");
    let now = chrono::Utc::now();
    let end = Resolution::Minute.floor(now.timestamp());
    let combos = (FEATURES.len() * MODELS.len() * SEGMENTS.len()) as u64;
    let per_bucket = PER_DAY / 1440 / combos;
    let fill = Instant::now();
    let mut seed: u64 = 7;
    let mut records = 0u64;
    for day in 0..days {
        let tx = store.begin_traffic("bot").expect("tx");
        for minute in 0..1440 {
            let start = end - (days - day) * 86_400 + minute * 60;
            for feature in FEATURES {
                for model in MODELS {
                    for segment in SEGMENTS {
                        let key = BucketKey {
                            start,
                            resolution: Resolution::Minute,
                            model: model.into(),
                            feature: feature.into(),
                            segment: segment.into(),
                            region: "FR".into(),
                        };
                        let mut row = BucketRow::default();
                        let b = &mut row.bucket;
                        b.requests = per_bucket;
                        b.errors = per_bucket / 30;
                        for _ in 0..per_bucket - b.errors {
                            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                            b.latency.add(200.0 + ((seed >> 40) % 1800) as f64);
                        }
                        b.tokens_in = per_bucket * 400;
                        b.tokens_out = per_bucket * 120;
                        b.cost_usd = per_bucket as f64 * 0.0004;
                        b.costed = per_bucket;
                        b.sampled = per_bucket / 10;
                        row.quality.scored = b.sampled;
                        row.quality.passed = b.sampled - 1;
                        row.quality.hallucination_checked = b.sampled;
                        row.quality.hallucinated = 1;
                        records += per_bucket;
                        tx.merge_bucket(&key, &row).expect("bucket");
                    }
                }
            }
        }
        tx.commit().expect("commit");
    }
    let db_bytes = std::fs::metadata(dir.path().join("t.db")).map_or(0, |m| m.len());
    println!(
        "filled {days} days, {records} records in {combos} label combinations, in {:.1} s; store {} MB",
        fill.elapsed().as_secs_f64(),
        db_bytes / 1_000_000
    );
    let out_dir = dir.path().join("reports");
    let mut times = Vec::new();
    for run in 1..=runs {
        let start = Instant::now();
        let page = traffic_page(&store, "bot", now).expect("page");
        let mut written = Written::default();
        write_traffic(&out_dir, &page, &mut written).expect("write");
        let secs = start.elapsed().as_secs_f64();
        let volume = page.windows.last().map_or(0, |w| w.current.volume);
        println!("run {run}: {secs:.3} s (30d volume {volume})");
        times.push(secs);
    }
    times.sort_by(f64::total_cmp);
    if let (Some(lo), Some(hi)) = (times.first(), times.last()) {
        println!(
            "median {:.3} s (range {lo:.3}-{hi:.3} s) over {runs} runs",
            times[times.len() / 2]
        );
    }
}
