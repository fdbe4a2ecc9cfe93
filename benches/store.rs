//! Store write benchmark: realistic results through `Writer` into a fresh `SQLite` file.
//!
//! Run with `cargo bench --bench store` (release build). Prints, per run size, the write rate
//! (first send to `finish` returning, final commit included), the bytes stored per result
//! (file size after a WAL checkpoint, divided by the results) and the peak resident memory of
//! the process while writing (`VmHWM`, reset before each pass through `/proc/self/clear_refs`).
//!
//! A realistic result: a ~400-character output, a ~300-character prompt shared by 3 results
//! (the samples of a case), two assertions with short reasons, latency, tokens and cost.
//! Optional arguments: run sizes (default `100000 1000000`); `BATCH` sets the writer batch.
//! `benches/pg_store.rs` writes the same results (this file's `Corpus`) to PostgreSQL.

use std::path::Path;
use std::time::Instant;

use evalwatch::model::{
    AssertionOutcome, Case, CaseStatus, Job, Location, PromptTemplate, ResultRecord, RunInfo,
    RunStatus, Suite,
};
use evalwatch::store::{Store, Writer, WriterStats};

/// Cases in the suite; results cycle over them, so the writer's case map stays the same size
/// whatever the run size (memory must not grow with the run).
pub const CASES: usize = 20_000;
/// Results that share one prompt.
pub const PER_PROMPT: usize = 3;

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-')) // cargo bench passes `--bench`
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100_000, 1_000_000]
    } else {
        sizes
    };
    let batch: usize = std::env::var("BATCH")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir().expect("temp dir");
    let corpus = Corpus::new();
    println!("store bench: batch {batch}, {CASES} cases, one prompt per {PER_PROMPT} results");
    for (i, &n) in sizes.iter().enumerate() {
        let path = dir.path().join(format!("bench-{i}.db"));
        bench(&path, n, batch, &corpus);
    }
}

/// A run of `n` results of [`suite`] begun in the store at `path`, as `evalwatch run`
/// begins one; the store stays open with it.
pub fn begin(path: &Path, n: usize) -> (Store, RunInfo) {
    let suite = suite();
    let run = RunInfo {
        run_id: format!("bench-{n}"),
        suite: suite.name.clone(),
        suite_hash: suite.hash.clone(),
        started_at: "2024-05-01T06:00:00Z".to_owned(),
        finished_at: None,
        status: RunStatus::Running,
        providers: vec!["prod-gpt".to_owned()],
        planned: n as u64,
        filter: None,
    };
    let mut store = Store::open(path).expect("open store");
    store
        .begin_run(&run, &suite, std::process::id(), "bench")
        .expect("begin run");
    (store, run)
}

/// The run's `n` results of the corpus through a writer of `batch`: seconds from the first
/// result sent to the last commit, and the writer's figures.
pub fn write_all(
    path: &Path,
    run: &RunInfo,
    n: usize,
    batch: usize,
    corpus: &Corpus,
) -> (f64, WriterStats) {
    let start = Instant::now();
    let writer = Writer::spawn(path, &run.run_id, batch).expect("spawn writer");
    for seq in 0..n {
        writer.send(corpus.record(seq)).expect("send");
    }
    let stats = writer.finish().expect("finish");
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(stats.written, n as u64, "every result written");
    (secs, stats)
}

fn bench(path: &Path, n: usize, batch: usize, corpus: &Corpus) {
    let (store, run) = begin(path, n);
    reset_peak_rss();
    let rss_before = proc_status_kb("VmRSS");
    let (secs, stats) = write_all(path, &run, n, batch, corpus);
    let peak = proc_status_kb("VmHWM");

    // Fold the WAL into the main file so that its size is the stored size.
    let conn = rusqlite::Connection::open(path).expect("reopen");
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .expect("checkpoint");
    drop(conn);
    let bytes = std::fs::metadata(path).expect("file size").len();

    let read_start = Instant::now();
    let mut read = 0u64;
    store
        .for_each_result(&run.run_id, |_| {
            read += 1;
            Ok(())
        })
        .expect("read back");
    let read_secs = read_start.elapsed().as_secs_f64();
    assert_eq!(read, n as u64);

    println!(
        "{n:>9} results: write {:>8.0} results/s ({secs:.3} s, {} batches), {:.0} bytes/result \
         ({:.1} MB file), peak RSS {} MB (before {} MB), read back {:.0} results/s",
        n as f64 / secs,
        stats.batches,
        bytes as f64 / n as f64,
        bytes as f64 / 1e6,
        peak / 1024,
        rss_before / 1024,
        n as f64 / read_secs,
    );
}

pub fn suite() -> Suite {
    let cases = (0..CASES)
        .map(|i| Case {
            id: format!("case-{i:05}"),
            tags: vec!["support".to_owned()],
            vars: evalwatch::model::Vars::new(),
            expected: None,
            context: Vec::new(),
            asserts: Vec::new(),
            threshold: None,
            repeat_policy: None,
            hash: format!("{:016x}", splitmix(i as u64)),
            location: Location::default(),
        })
        .collect();
    Suite {
        name: "bench".to_owned(),
        description: None,
        tags: Vec::new(),
        schedule: None,
        timezone: None,
        catch_up: None,
        jitter: None,
        source: "suites/bench.yaml".into(),
        providers: Vec::new(),
        system: None,
        prompt: PromptTemplate::Text("{{ q }}".to_owned()),
        repeat: PER_PROMPT as u32,
        repeat_policy: evalwatch::model::RepeatPolicy::All,
        cases,
        gates: Vec::new(),
        alerts: Vec::new(),
        review: None,
        hash: "bench-suite".to_owned(),
        named_metrics: std::collections::BTreeSet::new(),
        settings: std::collections::BTreeMap::new(),
    }
}

/// Pseudo-random English-like text to cut outputs and prompts from (so that rows differ).
pub struct Corpus {
    text: String,
    hashes: Vec<String>,
}

impl Corpus {
    #[allow(clippy::new_without_default)] // shared with benches/pg_store.rs
    pub fn new() -> Self {
        const WORDS: [&str; 24] = [
            "the",
            "refund",
            "window",
            "is",
            "thirty",
            "days",
            "from",
            "delivery",
            "and",
            "customers",
            "can",
            "return",
            "items",
            "in",
            "original",
            "packaging",
            "for",
            "a",
            "full",
            "credit",
            "unless",
            "marked",
            "final",
            "sale",
        ];
        let mut text = String::with_capacity(1 << 20);
        let mut x = 7u64;
        while text.len() < (1 << 20) {
            x = splitmix(x);
            text.push_str(WORDS[(x % WORDS.len() as u64) as usize]);
            text.push(' ');
        }
        let hashes = (0..CASES)
            .map(|i| format!("{:016x}", splitmix(i as u64)))
            .collect();
        Self { text, hashes }
    }

    fn slice(&self, seed: u64, len: usize) -> String {
        let start = (splitmix(seed) % (self.text.len() - len) as u64) as usize;
        self.text[start..start + len].to_owned()
    }

    pub fn record(&self, seq: usize) -> ResultRecord {
        let group = seq / PER_PROMPT;
        let case = group % CASES;
        let passed = splitmix(seq as u64) % 10 < 8;
        let mut prompt = format!("You are the support assistant of Acme. Question {group}: ");
        prompt.push_str(&self.slice(group as u64, 300 - prompt.len()));
        let assertion = |type_name: &str, pass: bool, reason: &str| AssertionOutcome {
            type_name: type_name.to_owned(),
            pass,
            score: if pass { 1.0 } else { 0.0 },
            reason: reason.to_owned(),
            details: serde_json::Value::Null,
            weight: 1.0,
            metric: None,
            unscorable: false,
        };
        ResultRecord {
            job: Job {
                seq,
                case_index: case,
                case_id: format!("case-{case:05}"),
                provider_index: 0,
                provider_id: "prod-gpt".to_owned(),
                sample: (seq % PER_PROMPT) as u32,
                case: evalwatch::model::CaseRef::default(),
            },
            case_hash: self.hashes[case].clone(),
            tags: vec!["support".to_owned()],
            prompt,
            status: if passed {
                CaseStatus::Passed
            } else {
                CaseStatus::Failed
            },
            score: Some(if passed { 1.0 } else { 0.5 }),
            output: Some(self.slice(seq as u64 ^ 0xabcd, 400)),
            error: None,
            error_kind: None,
            latency_ms: Some(300.0 + (seq % 700) as f64),
            tokens_in: Some(80),
            tokens_out: Some(110),
            cost_usd: Some(0.000_078),
            finish_reason: Some("stop".to_owned()),
            output_bytes: None,
            truncated: false,
            attempts: 1,
            assertions: vec![
                assertion("icontains", true, "found \"30 days\""),
                assertion(
                    "length",
                    passed,
                    if passed {
                        "412 chars <= 500"
                    } else {
                        "612 chars > 500"
                    },
                ),
            ],
            label: None,
            // As OpenAI reports it with every answer: counted by the writer, a batch at once.
            reported: Some(evalwatch::model::ReportedModel {
                model: "gpt-4o-2024-11-20".to_owned(),
                fingerprint: Some("fp_7a1b2c3d4e".to_owned()),
            }),
        }
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A field of `/proc/self/status` in kB (0 where unavailable).
pub fn proc_status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Reset `VmHWM` to the current RSS (Linux >= 4.0), so that each pass reports its own peak.
pub fn reset_peak_rss() {
    if std::fs::write("/proc/self/clear_refs", "5").is_err() {
        eprintln!("note: could not reset VmHWM; peak RSS is the whole process's");
    }
}
