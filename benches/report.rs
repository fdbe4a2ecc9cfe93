//! Report generation over a long history: 365 daily runs x 10 suites x 2 providers x 500 cases.
#![allow(clippy::cast_possible_wrap)] // day and suite counts are small
//!
//! Run: `cargo bench --bench report` (optionally `-- DAYS SUITES CASES`). It writes the history
//! through the store's public API (the same writer `run` uses, and the metrics `run` computes),
//! then times `evalwatch report --since all` as a child process and reads that child's own
//! CPU time and peak RSS (`wait4`). Generating the history takes most of the bench's time.

use std::path::Path;
use std::time::Instant;

#[path = "support/child.rs"]
pub mod child;

use evalwatch::metrics::RunAccumulator;
use evalwatch::model::{
    AssertionOutcome, Case, CaseStatus, Job, Location, PromptTemplate, ProviderKind, ProviderSpec,
    ResultRecord, RunInfo, RunStatus, Suite,
};
use evalwatch::store::{Store, Writer};

const PROVIDERS: [&str; 2] = ["prod-gpt", "prod-claude"];

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn suite(s: usize, cases: usize, version: u64) -> Suite {
    let cases = (0..cases)
        .map(|i| Case {
            id: format!("case-{i:03}"),
            tags: vec![["billing", "shipping", "account"][i % 3].to_owned()],
            vars: evalwatch::model::Vars::new(),
            expected: Some("30 days".to_owned()),
            context: Vec::new(),
            asserts: Vec::new(),
            threshold: None,
            repeat_policy: None,
            // One case in fifty is edited every 90 days: content-change markers in the report.
            hash: format!(
                "{:016x}",
                splitmix((i as u64) << 8 | if i % 50 == 0 { version } else { 0 })
            ),
            location: Location::default(),
        })
        .collect();
    Suite {
        name: format!("suite-{s:02}"),
        description: Some(format!("Generated suite {s}")),
        tags: Vec::new(),
        schedule: Some("0 6 * * *".to_owned()),
        timezone: None,
        catch_up: None,
        jitter: None,
        source: format!("suites/suite-{s:02}.yaml").into(),
        providers: PROVIDERS
            .iter()
            .map(|p| ProviderSpec::new(*p, ProviderKind::Echo))
            .collect(),
        system: None,
        prompt: PromptTemplate::Text("{{ q }}".to_owned()),
        repeat: 1,
        repeat_policy: evalwatch::model::RepeatPolicy::All,
        cases,
        gates: Vec::new(),
        alerts: Vec::new(),
        review: None,
        hash: format!("suite-{s:02}-v{version}"),
        named_metrics: std::collections::BTreeSet::new(),
        settings: std::collections::BTreeMap::new(),
    }
}

fn record(suite: &Suite, day: usize, seq: usize) -> ResultRecord {
    let case_index = seq / PROVIDERS.len();
    let provider_index = seq % PROVIDERS.len();
    let case = &suite.cases[case_index];
    let r = splitmix((day as u64) << 32 | seq as u64);
    // A slow drift: the pass rate sags over the year, plus per-day noise.
    let fail_per_mille = 60 + (day as u64 * 40 / 365) + r % 20;
    let passed = (r >> 16) % 1000 >= fail_per_mille;
    let latency = 400.0 + ((r >> 24) % 900) as f64;
    ResultRecord {
        job: Job {
            seq,
            case_index,
            case_id: case.id.clone(),
            provider_index,
            provider_id: PROVIDERS[provider_index].to_owned(),
            sample: 0,
            case: evalwatch::model::CaseRef::default(),
        },
        case_hash: case.hash.clone(),
        tags: case.tags.clone(),
        prompt: format!(
            "Answer in one sentence. Question {case_index}: how long is the return window?"
        ),
        status: if passed {
            CaseStatus::Passed
        } else {
            CaseStatus::Failed
        },
        score: Some(if passed { 1.0 } else { 0.0 }),
        output: Some(if passed {
            "You can return any item within 30 days of delivery for a full refund.".to_owned()
        } else {
            "Returns are accepted within 90 days of purchase.".to_owned()
        }),
        error: None,
        error_kind: None,
        latency_ms: Some(latency),
        tokens_in: Some(60),
        tokens_out: Some(18),
        cost_usd: Some(0.000_02),
        finish_reason: Some("stop".to_owned()),
        output_bytes: None,
        truncated: false,
        attempts: 1,
        assertions: vec![AssertionOutcome {
            type_name: "icontains".to_owned(),
            pass: passed,
            score: if passed { 1.0 } else { 0.0 },
            reason: if passed {
                "output contains \"30 days\""
            } else {
                "output does not contain \"30 days\""
            }
            .to_owned(),
            details: serde_json::Value::Null,
            weight: 1.0,
            metric: None,
            unscorable: false,
        }],
        label: None,
        reported: None,
    }
}

/// Write the history (also used by `benches/pg_store.rs`, on both engines).
pub fn generate(db: &Path, days: usize, suites: usize, cases: usize) {
    let mut store = Store::open(db).expect("open store");
    let start = chrono::Utc::now() - chrono::TimeDelta::days(days as i64);
    for day in 0..days {
        for s in 0..suites {
            let suite = suite(s, cases, (day / 90) as u64);
            let started =
                start + chrono::TimeDelta::days(day as i64) + chrono::TimeDelta::minutes(s as i64);
            let info = RunInfo {
                run_id: format!("{}-s{s:02}", started.format("%Y%m%d-%H%M%S")),
                suite: suite.name.clone(),
                suite_hash: suite.hash.clone(),
                started_at: started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                finished_at: None,
                status: RunStatus::Running,
                providers: PROVIDERS.iter().map(|p| (*p).to_owned()).collect(),
                planned: (cases * PROVIDERS.len()) as u64,
                filter: None,
            };
            store
                .begin_run(&info, &suite, 1, "bench")
                .expect("begin run");
            let writer = Writer::spawn(db, &info.run_id, 1000).expect("writer");
            let mut acc = RunAccumulator::new();
            for seq in 0..cases * PROVIDERS.len() {
                let rec = record(&suite, day, seq);
                acc.add(&rec);
                writer.send(rec).expect("send");
            }
            writer.finish().expect("finish writer");
            let finished = (started + chrono::TimeDelta::seconds(90))
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            store
                .finish_run(
                    &info.run_id,
                    RunStatus::Complete,
                    &finished,
                    &acc.finish(Some(90.0)),
                    &[],
                )
                .expect("finish run");
        }
    }
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (days, suites, cases) = match args.as_slice() {
        [d, s, c, ..] => (*d, *s, *c),
        _ => (365, 10, 500),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("history.db");
    // `KEEP=1` keeps the generated history (for profiling `report` on it) and prints where.
    let dir = if std::env::var_os("KEEP").is_some() {
        let kept = dir.keep();
        println!("history kept in {}", kept.display());
        tempfile::TempDir::new_in(&kept).expect("scratch")
    } else {
        dir
    };
    let t = Instant::now();
    generate(&db, days, suites, cases);
    let results = days * suites * cases * PROVIDERS.len();
    let size = std::fs::metadata(&db).map_or(0, |m| m.len());
    println!(
        "history: {days} days x {suites} suites x {} providers x {cases} cases = {results} results, {} runs, {:.1} MB, generated in {:.1} s",
        PROVIDERS.len(),
        days * suites,
        size as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let bin = env!("CARGO_BIN_EXE_evalwatch");
    // A first report writes every page (run pages included); later ones rewrite the trend
    // pages and only the run pages of runs that finished since.
    let out = dir.path().join("reports");
    for (label, window) in [("first", "all"), ("refresh", "all"), ("refresh", "30d")] {
        let started = Instant::now();
        // Reaped by `child::wait` (wait4), which also reads its resource usage.
        #[allow(clippy::zombie_processes)]
        let child = std::process::Command::new(bin)
            .current_dir(dir.path())
            .args([
                "--quiet",
                "--db",
                "history.db",
                "report",
                "--since",
                window,
                "--out",
            ])
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("run evalwatch report");
        let usage = child::wait(child.id());
        let (cpu, rss_kib, code) = (usage.cpu, usage.max_rss_kib, usage.exit_code);
        let wall = started.elapsed();
        assert_eq!(code, 0, "evalwatch report failed");
        let pages = walk(&out);
        println!(
            "report --since {window} ({label}): wall {:.3} s, CPU {:.3} s, peak RSS {:.1} MiB, {} pages in the folder, {:.1} MB",
            wall.as_secs_f64(),
            cpu.as_secs_f64(),
            rss_kib as f64 / 1024.0,
            pages.0,
            pages.1 as f64 / 1e6
        );
    }
}

/// Pages written and their total size.
fn walk(dir: &Path) -> (usize, u64) {
    let mut n = 0;
    let mut bytes = 0;
    for entry in std::fs::read_dir(dir).expect("read reports dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            let (a, b) = walk(&path);
            n += a;
            bytes += b;
        } else {
            n += 1;
            bytes += entry.metadata().map_or(0, |m| m.len());
        }
    }
    (n, bytes)
}
