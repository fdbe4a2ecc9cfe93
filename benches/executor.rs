//! End-to-end throughput of `evalwatch run` against a local OpenAI-compatible mock endpoint of
//! fixed latency: the physical limit of a run is cases x latency / concurrency.
//!
//! Run: `cargo bench --bench executor` (optionally `-- CASES LATENCY_MS CONCURRENCY`, several
//! triples allowed, `--history=N` for N more runs stored before the repeat run, as after N
//! days of daily runs, and options for `evalwatch run` such as `--no-reports`). For each
//! configuration it prints wall time against the limit, the client's CPU per case (user +
//! system time of the evalwatch process, which includes scoring and storage), its peak RSS,
//! how long after spawning it the first request reached the server, and how long the calls
//! themselves took (first request to last answer). The mock (`support/mock.rs`) answers each
//! request `LATENCY_MS` after it arrived and reports the latency it really served. It runs in
//! this process, so its CPU is not counted against the client. `-- --serve` runs only the
//! mock (20 ms), for other clients (`benches/client_floor.rs`, wrk).

use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[path = "support/child.rs"]
mod child;
#[path = "support/mock.rs"]
mod mock;

use mock::start_mock;

fn write_suite(dir: &Path, base_url: &str, cases: usize, concurrency: usize) {
    let mut jsonl = String::with_capacity(cases * 90);
    for i in 0..cases {
        let _ = writeln!(
            jsonl,
            "{{\"id\": \"case-{i}\", \"vars\": {{\"question\": \"What is the return window for order {i}?\"}}, \"expected\": \"right\"}}"
        );
    }
    std::fs::create_dir_all(dir.join("cases")).expect("mkdir");
    std::fs::write(dir.join("cases/bench.jsonl"), jsonl).expect("write cases");
    std::fs::write(
        dir.join("bench.yaml"),
        format!(
            "suite: bench\nproviders:\n  - id: mock\n    type: openai\n    model: mock\n    base_url: {base_url}\n    concurrency: {concurrency}\n    timeout: 30s\n    pricing: {{input_per_mtok: 0.15, output_per_mtok: 0.6}}\nprompt: \"Answer briefly. {{{{ question }}}}\"\ndefaults:\n  assert:\n    - type: icontains\n    - type: length\n      max: 500\ncases:\n  - include: cases/bench.jsonl\n"
        ),
    )
    .expect("write suite");
}

fn main() {
    // `--serve`: only the mock (20 ms), for another client (wrk, `benches/client_floor.rs`).
    if std::env::args().any(|a| a == "--serve") {
        mock::serve(Duration::from_millis(20));
    }
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    // Other options are passed on to `evalwatch run` (`--no-reports`); cargo adds `--bench`.
    let extra: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a.starts_with("--") && a != "--bench" && !a.starts_with("--history="))
        .collect();
    // `--history=N`: before the repeat run, N more runs of the suite (against a mock without
    // latency, reports refreshed as usual), as after N days of daily runs.
    let history: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.strip_prefix("--history=").and_then(|n| n.parse().ok()))
        .unwrap_or(0);
    let configs: Vec<(usize, u64, usize)> = if args.len() >= 3 {
        args.chunks(3)
            .filter(|c| c.len() == 3)
            .map(|c| (c[0], c[1] as u64, c[2]))
            .collect()
    } else {
        vec![(10_000, 20, 64), (100_000, 20, 64)]
    };
    let bin = env!("CARGO_BIN_EXE_evalwatch");
    println!(
        "| cases | latency | concurrency | store | limit s (nominal) | served latency ms | limit s (served) | wall s | wall / nominal limit | wall / served limit | calls s (first request to last answer) | calls / nominal limit | calls / served limit | client CPU ms/case | peak RSS MiB | first request after spawn ms | last answer to exit ms | client turnaround ms (mean / p90 / p99) |"
    );
    println!(
        "| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    // Every configuration's folder is kept until the end: removing hundreds of files makes
    // the next files created slower for a while on some filesystems (ext4 without a journal
    // skips inodes freed in the last minute), and the next run would pay for this bench's
    // cleaning. Their writes are flushed before each measured run instead.
    let mut folders = Vec::new();
    for (cases, latency_ms, concurrency) in configs {
        let dir = tempfile::tempdir().expect("tempdir");
        // The same suite twice on one store: a first run registers its cases, a repeat run
        // (the daily case) finds them.
        for store in ["fresh", "repeat"] {
            if store == "repeat" && history > 0 {
                let (base_url, _) = start_mock(Duration::ZERO);
                write_suite(dir.path(), &base_url, cases, concurrency);
                for _ in 0..history {
                    let status = std::process::Command::new(bin)
                        .current_dir(dir.path())
                        .env("OPENAI_API_KEY", "sk-bench-not-a-secret")
                        .args(["--quiet", "--db", "bench.db", "run", "bench.yaml"])
                        .stdout(std::process::Stdio::null())
                        .status()
                        .expect("run evalwatch");
                    assert!(status.success(), "a history run failed");
                }
            }
            let store = if store == "repeat" && history > 0 {
                format!("after {} runs", history + 1)
            } else {
                store.to_owned()
            };
            let (base_url, seen) = start_mock(Duration::from_millis(latency_ms));
            write_suite(dir.path(), &base_url, cases, concurrency);
            // What earlier runs left to write back is written now, not during this run (it
            // would be after 30 s: the kernel's default expiry of dirty pages).
            rustix::fs::sync();
            let started = Instant::now();
            // Reaped by `child::wait` (wait4), which also reads its resource usage.
            #[allow(clippy::zombie_processes)]
            let child = std::process::Command::new(bin)
                .current_dir(dir.path())
                .env("OPENAI_API_KEY", "sk-bench-not-a-secret")
                .args([
                    "--quiet",
                    "--db",
                    "bench.db",
                    "run",
                    "bench.yaml",
                    "--concurrency",
                    &concurrency.to_string(),
                ])
                .args(&extra)
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("run evalwatch");
            let usage = child::wait(child.id());
            let exited = Instant::now();
            let wall = exited.duration_since(started);
            assert_eq!(usage.exit_code, 0, "evalwatch failed");
            let n = seen.requests.load(Ordering::SeqCst);
            assert_eq!(n, cases as u64, "every case reached the server once");
            let served_ms = seen.served_us.load(Ordering::SeqCst) as f64 / n as f64 / 1000.0;
            let nominal = cases as f64 * latency_ms as f64 / 1000.0 / concurrency as f64;
            let served = cases as f64 * served_ms / 1000.0 / concurrency as f64;
            let first_at = *seen.first.lock().expect("lock");
            let last_at = *seen.last.lock().expect("lock");
            let first = first_at.map(|t| t.duration_since(started));
            let calls = match (first_at, last_at) {
                (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
                _ => f64::NAN,
            };
            let turnaround = seen.turnaround_ms();
            println!(
                "| {cases} | {latency_ms} ms | {concurrency} | {store} | {nominal:.3} | {served_ms:.2} | {served:.3} | {:.3} | {:.3} | {:.3} | {calls:.3} | {:.3} | {:.3} | {:.3} | {:.1} | {} | {} | {:.3} / {:.3} / {:.3} |",
                wall.as_secs_f64(),
                wall.as_secs_f64() / nominal,
                wall.as_secs_f64() / served,
                calls / nominal,
                calls / served,
                usage.cpu.as_secs_f64() * 1000.0 / cases as f64,
                usage.max_rss_kib as f64 / 1024.0,
                first.map_or_else(
                    || "n/a".into(),
                    |d| format!("{:.1}", d.as_secs_f64() * 1000.0)
                ),
                last_at.map_or_else(
                    || "n/a".into(),
                    |t| format!("{:.1}", exited.duration_since(t).as_secs_f64() * 1000.0)
                ),
                turnaround.0,
                turnaround.1,
                turnaround.2,
            );
        }
        folders.push(dir);
    }
}
