//! The tear-down work of `evalwatch run` after its last model call: the report refresh
//! (`app::report::after_run`) and the alert step (`app::alerts::after_run`), timed in process.
//!
//! Run: `cargo bench --bench after_run` (optionally `-- CASES RUNS ITERATIONS`, default
//! 10000 3 15). It lays out a project in a temp folder (`suites/bench.yaml` with CASES cases of
//! the echo provider, every case failing its `icontains`), runs the real binary
//! `evalwatch run --no-reports` RUNS times, then times, ITERATIONS times each:
//!
//! - `report`: `after_run` of the report step as `run` calls it, with the newest run's pages
//!   removed first (as after a fresh run: its pages do not exist yet; the older runs' do);
//! - `report (suite given)`: the same with the run's loaded suite handed over, as `run` does;
//! - `report (read ahead)`: `Refresh::finish`, after a `Refresh::begin` made while the newest
//!   run was still `running` (its read-ahead done, as it is long before a run ends);
//! - `report (ahead + fed)`: the same, the newest run's results also fed as they were scored
//!   (`Refresh::feed`, in reverse order);
//! - `alerts, no rules` and `alerts, 3 rules`: `after_run` of the alert step for the newest
//!   run, without rules, then with a pass-rate (trailing:3), a latency ratio and a
//!   missed-run rule (state is kept between iterations: the first opens, later ones touch);
//!   `alerts, 3 rules, read ahead`: `after_run_ahead` with the statuses of that `Refresh`.
//!
//! It prints min / median / max of each, in milliseconds.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use evalwatch::app::Ctx;
use evalwatch::app::report::Refresh;
use evalwatch::model::RunStatus;
use evalwatch::output::{Printer, Verbosity};

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
    let names = vec!["bench".to_owned()];
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
    // The first refresh writes the older runs' pages too: not part of a run's tear-down.
    evalwatch::app::report::after_run(&ctx, &store, &project, &names).expect("warm-up");

    let mut t_report = Vec::new();
    let mut t_given = Vec::new();
    for _ in 0..iterations {
        remove_newest();
        t_report.push(timed(|| {
            evalwatch::app::report::after_run(&ctx, &store, &project, &names).expect("report");
        }));
        remove_newest();
        t_given.push(timed(|| {
            evalwatch::app::report::after_run_with_suites(
                &ctx,
                &store,
                &project,
                &names,
                &[&suite],
            )
            .expect("report");
        }));
    }
    let pages = std::fs::read_dir(&runs_dir).map_or(0, Iterator::count);
    println!(
        "{cases} cases, {runs} stored runs, {pages} run pages in the folder, newest run {}",
        info.run_id
    );
    // As `run` with a `Refresh`: begun while the newest run is running, finished after it.
    let db = dir.join("b.db");
    let arcs = vec![std::sync::Arc::new(suite.clone())];
    let begin = |store: &mut evalwatch::store::Store| {
        store
            .set_run_status(&info.run_id, RunStatus::Running)
            .expect("status");
        let mut refresh = Refresh::begin(&ctx, &project, &db, &arcs);
        let _ = refresh.statuses();
        store
            .set_run_status(&info.run_id, info.status)
            .expect("status");
        refresh
    };
    let mut t_ahead = Vec::new();
    for _ in 0..iterations {
        remove_newest();
        let refresh = begin(&mut store);
        t_ahead.push(timed(|| {
            refresh
                .finish(&ctx, &store, &project, &names)
                .expect("report");
        }));
    }
    // And the newest run's results fed as they were scored (`Refresh::feed`), in reverse.
    let mut records = Vec::new();
    store
        .for_each_result(&info.run_id, |r| {
            records.push(r);
            Ok(())
        })
        .expect("results");
    records.reverse();
    let mut t_fed = Vec::new();
    for _ in 0..iterations {
        remove_newest();
        store
            .set_run_status(&info.run_id, RunStatus::Running)
            .expect("status");
        let mut refresh = Refresh::begin(&ctx, &project, &db, &arcs);
        let running = store.run(&info.run_id).expect("read").expect("run");
        let mut feed = refresh.feed(&running);
        for r in &records {
            feed.add(r);
        }
        let _ = refresh.statuses();
        store
            .set_run_status(&info.run_id, info.status)
            .expect("status");
        refresh.fed(feed);
        t_fed.push(timed(|| {
            refresh
                .finish(&ctx, &store, &project, &names)
                .expect("report");
        }));
    }
    stats("report", t_report);
    stats("report (suite given)", t_given);
    stats("report (read ahead)", t_ahead);
    stats("report (ahead + fed)", t_fed);
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
    let mut times = Vec::new();
    for _ in 0..iterations {
        let mut refresh = begin(&mut store);
        let ahead = refresh.statuses();
        times.push(timed(|| {
            evalwatch::app::alerts::after_run_ahead(
                &ctx,
                &mut store,
                &project,
                &suite,
                &info,
                &metrics,
                evalwatch::cli::Severity::Critical,
                ahead,
            )
            .expect("alerts");
        }));
    }
    stats("alerts, 3 rules, ahead", times);
}
