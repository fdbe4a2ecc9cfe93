//! The tear-down work of `evalwatch run` after its last model call: the report refresh
//! (`app::report::after_run`) and the alert step (`app::alerts::after_run`), timed in process.
//!
//! Run: `cargo bench --bench after_run` (optionally `-- CASES RUNS ITERATIONS`, default
//! 10000 3 15). It lays out a project in a temp folder (`suites/bench.yaml` with CASES cases of
//! the echo provider, every case failing its `icontains`), runs the real binary
//! `evalwatch run --no-reports` RUNS times, then times, ITERATIONS times each:
//!
//! - `report (from the store)`: `after_run` of the report step with the newest run's pages
//!   removed first and no rows rendered during the run (a resumed run: its pages are written
//!   from the store, the expected answers read from the suite files);
//! - `report (rendered as scored)`: `after_run` as `run` calls it, the newest run's results
//!   having been rendered as they were scored (`LivePages`, fed in reverse order) and the heat
//!   map's statuses of the runs before read while it ran (`HeatHistory`); neither is timed;
//! - `alerts, no rules` and `alerts, 3 rules`: `after_run` of the alert step for the newest
//!   run, without rules, then with a pass-rate (trailing:3), a latency ratio and a
//!   missed-run rule (state is kept between iterations: the first opens, later ones touch).
//!
//! It prints min / median / max of each, in milliseconds.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use evalwatch::app::Ctx;
use evalwatch::model::{RunStatus, Suite};
use evalwatch::output::{Printer, Verbosity};
use evalwatch::report::html::{self, live::LivePages};

fn layout(dir: &Path, cases: usize) {
    let suites = dir.join("suites");
    std::fs::create_dir_all(suites.join("cases")).expect("mkdir");
    let mut jsonl = String::new();
    for i in 1..=cases {
        let _ = writeln!(
            jsonl,
            "{{\"id\": \"case-{i}\", \"vars\": {{\"question\": \"What is the return window for order {i}?\"}}, \"expected\": \"right\"}}"
        );
    }
    std::fs::write(suites.join("cases/bench.jsonl"), jsonl).expect("write cases");
    std::fs::write(
        suites.join("bench.yaml"),
        "suite: bench
providers:
  - id: mock
    type: echo
prompt: \"Answer briefly. {{ question }}\"
defaults:
  assert:
    - type: icontains
    - type: length
      max: 500
cases:
  - include: cases/bench.jsonl
",
    )
    .expect("write suite");
}

/// CPU time of this process so far (every thread, user and system).
#[allow(unsafe_code)]
fn cpu() -> Duration {
    // SAFETY: getrusage writes the usage into the value we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &raw mut ru) };
    assert_eq!(rc, 0, "getrusage");
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Wall and CPU time of `f`. The CPU time is the process's: it includes what earlier calls
/// left to other threads (freeing what they read) when that overlaps.
fn timed(f: impl FnOnce()) -> (Duration, Duration) {
    let (t, c) = (Instant::now(), cpu());
    f();
    (t.elapsed(), cpu().saturating_sub(c))
}

fn stats(label: &str, times: Vec<(Duration, Duration)>) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (mut wall, mut cpu): (Vec<Duration>, Vec<Duration>) = times.into_iter().unzip();
    wall.sort();
    cpu.sort();
    println!(
        "{label:<24} wall min {:>7.2} median {:>7.2} max {:>7.2} ms | CPU median {:>7.2} ms (n={})",
        ms(wall[0]),
        ms(wall[wall.len() / 2]),
        ms(wall[wall.len() - 1]),
        ms(cpu[cpu.len() / 2]),
        wall.len()
    );
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let cases = args.first().copied().unwrap_or(10_000);
    let runs = args.get(1).copied().unwrap_or(3).max(1);
    let iterations = args.get(2).copied().unwrap_or(15).max(1);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = if std::env::var_os("KEEP").is_some() {
        let kept = tmp.keep();
        println!("project kept in {}", kept.display());
        kept
    } else {
        tmp.path().to_path_buf()
    };
    layout(&dir, cases);
    let bin = env!("CARGO_BIN_EXE_evalwatch");
    for _ in 0..runs {
        let st = std::process::Command::new(bin)
            .current_dir(&dir)
            .args([
                "--quiet",
                "--db",
                "b.db",
                "run",
                "--no-reports",
                "--no-alerts",
            ])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run evalwatch");
        // Exit 1: every case fails its assertion (no gate); anything else is a real failure.
        assert!(matches!(st.code(), Some(0 | 1)), "evalwatch run: {st}");
    }
    let ctx = Ctx {
        machine_stdout: std::cell::Cell::new(false),
        printer: Printer::new(Verbosity::Quiet, true),
        db: Some(dir.join("b.db")),
        config: None,
        cwd: dir.clone(),
    };
    let project = ctx.project().expect("project");
    let mut store = ctx.open_store(&dir.join("b.db")).expect("store");
    let newest = store.runs(Some("bench"), 1).expect("runs").remove(0);
    let info = newest.info;
    let metrics = store.run_metrics(&info.run_id).expect("metrics");
    let files = evalwatch::app::suite_files(&ctx, &project, &[]).expect("files");
    let (mut suites, diags) = evalwatch::suite::load_suites(&files, &project);
    assert!(diags.is_empty(), "suite diagnostics");
    let mut suite = suites.remove(0);
    let head = Suite {
        cases: Vec::new(),
        ..suite.clone()
    };
    let ran = vec![&head];
    let runs_dir = dir.join("reports/runs");
    let remove_newest = || {
        if let Ok(rd) = std::fs::read_dir(&runs_dir) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(&info.run_id) {
                    std::fs::remove_file(e.path()).expect("remove page");
                }
            }
        }
    };
    let refresh = |store: &evalwatch::store::Store, prepared: html::Prepared| {
        evalwatch::app::report::after_run(&ctx, store, &project, &ran, prepared).expect("report");
    };
    // The first refresh writes the older runs' pages too: not part of a run's tear-down.
    refresh(&store, html::Prepared::default());

    let mut records = Vec::new();
    store
        .for_each_result(&info.run_id, |r| {
            records.push(r);
            Ok(())
        })
        .expect("results");
    records.reverse();
    let expected: std::collections::HashMap<&str, Option<&str>> = suite
        .cases
        .iter()
        .map(|c| (c.id.as_str(), c.expected.as_deref()))
        .collect();
    let db = dir.join("b.db");
    let mut t_report = Vec::new();
    let mut t_live = Vec::new();
    for _ in 0..iterations {
        remove_newest();
        t_report.push(timed(|| refresh(&store, html::Prepared::default())));
        remove_newest();
        store
            .set_run_status(&info.run_id, RunStatus::Running)
            .expect("status");
        let running = store.run(&info.run_id).expect("read").expect("run");
        let read_baseline = evalwatch::app::report::live_baseline_reader(&db, &running);
        let mut live = LivePages::new(&running, read_baseline, &dir.join("reports"));
        for r in &records {
            live.add(
                r,
                expected.get(r.job.case_id.as_str()).copied().flatten(),
                &[],
            );
        }
        // And the heat map's statuses of the runs before, read while the newest runs.
        let heat = html::HeatHistory::read(&store, "bench").expect("history");
        store
            .set_run_status(&info.run_id, info.status)
            .expect("status");
        let mut prepared = html::Prepared::default();
        prepared
            .live
            .insert(info.run_id.clone(), live.finish(records.len()));
        prepared.heat.insert("bench".to_owned(), heat);
        t_live.push(timed(|| refresh(&store, prepared)));
    }
    drop(records);
    let pages = std::fs::read_dir(&runs_dir).map_or(0, Iterator::count);
    println!(
        "{cases} cases, {runs} stored runs, {pages} run pages in the folder, newest run {}",
        info.run_id
    );
    stats("report (from the store)", t_report);
    stats("report (rendered as scored)", t_live);
    // What one read of a run's statuses costs (the heat map reads one per run it shows,
    // the pass-rate alert test one per run of its window).
    let mut t_statuses = Vec::new();
    for _ in 0..iterations {
        t_statuses.push(timed(|| {
            let rows = store.result_statuses(&info.run_id).expect("statuses");
            assert_eq!(rows.len(), cases);
        }));
    }
    stats("one run's statuses", t_statuses);

    for (label, rules) in [
        ("alerts, no rules", Vec::new()),
        (
            "alerts, 3 rules",
            vec![
                serde_json::json!({"metric": "pass_rate", "drop": 0.05, "baseline": "trailing:3", "severity": "critical"}),
                serde_json::json!({"metric": "latency_p95_ms", "ratio": 3.0, "severity": "warning"}),
                serde_json::json!({"metric": "missed_run", "after": "26h", "severity": "critical"}),
            ],
        ),
    ] {
        suite.alerts = rules;
        let mut times = Vec::new();
        for _ in 0..iterations {
            times.push(timed(|| {
                evalwatch::app::alerts::after_run(
                    &ctx,
                    &mut store,
                    &project,
                    &suite,
                    &info,
                    &metrics,
                    evalwatch::cli::Severity::Critical,
                )
                .expect("alerts");
            }));
        }
        stats(label, times);
    }
}
