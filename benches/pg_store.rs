//! The store on PostgreSQL against SQLite, measured: results written per second by the
//! run's writer (`store::Writer`, batches of 1,000, as `evalwatch run` writes them), the peak
//! memory of the writing process, and the time of `evalwatch report --since all` over a
//! year of daily runs, on each engine.
//!
//! Run with `scripts/with-pg cargo bench --bench pg_store` (release build; the script starts
//! a throwaway server on loopback and passes its URL in `EVALWATCH_TEST_PG`). Each figure is
//! taken `REPS` times (default 5), one engine after the other, and printed as the median and
//! the range; the load average is printed before and after (the machine may be shared).
//!
//! The results are those of `benches/store.rs` (a ~400-character output, a ~300-character
//! prompt shared by 3 results, two assertions, latency, tokens and cost). Optional
//! arguments: the results a write pass writes (default 100000), then the days and cases of
//! the history (default `365 200`: daily runs of 200 cases x 2 providers, the history of
//! `benches/report.rs`, written through the same writer on each engine). With `PG_ONLY=1`
//! only the PostgreSQL write passes run (for profiling the server and the writer alone);
//! with `REPORT_ONLY=1` only the history and its reports. `EVALWATCH_BINS=a:b` times the
//! reports of those `evalwatch` binaries instead of this build's, alternated rep by rep on
//! the same history (an A/B of two builds); report times are printed in milliseconds.
//! `KEEP_HISTORY=1` keeps the history (the SQLite file and the PostgreSQL database, both
//! printed) for looking at one report by hand. `SSLMODE` is the databases' `sslmode`
//! (default `disable`: plain TCP on loopback, as measured before the test server offered TLS;
//! `require` measures the same over TLS).
#![allow(clippy::cast_precision_loss)] // counts and times shown as rates

use std::path::{Path, PathBuf};
use std::time::Instant;

#[path = "report.rs"]
#[allow(dead_code, unreachable_pub)] // its own `main` is not used here
mod history;
#[path = "store.rs"]
#[allow(dead_code, unreachable_pub)] // its own `main` and `bench` are not used here
mod results;

use evalwatch::store::pg::PgTarget;
use results::{Corpus, proc_status_kb, reset_peak_rss};

/// The throwaway server: its URL with the password, for making databases.
struct Server {
    url: String,
    password: String,
    /// The `sslmode` of the databases' URLs.
    sslmode: String,
}

impl Server {
    /// A new database; its URL, with the password.
    fn fresh(&self, name: &str) -> String {
        let admin = PgTarget::parse(&self.with_pw(&self.url)).expect("URL");
        let mut client = admin.connect().expect("connect");
        // One statement a call: two in one text run as one transaction, where neither may.
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .expect("drop database");
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        let base = self.url.rsplit_once('/').expect("URL with a database").0;
        self.with_pw(&format!("{base}/{name}?sslmode={}", self.sslmode))
    }

    /// Drop a database [`Self::fresh`] made (a pass leaves ~100 MB; on a server that keeps
    /// running between benches they would pile up).
    fn drop_db(&self, name: &str) {
        let admin = PgTarget::parse(&self.with_pw(&self.url)).expect("URL");
        let mut client = admin.connect().expect("connect");
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .expect("drop database");
    }

    fn with_pw(&self, url: &str) -> String {
        url.replacen(
            "://evalwatch@",
            &format!("://evalwatch:{}@", self.password),
            1,
        )
    }
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(100_000);
    let days = args.get(1).copied().unwrap_or(365);
    let cases = args.get(2).copied().unwrap_or(200);
    let reps: usize = std::env::var("REPS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let Ok(url) = std::env::var("EVALWATCH_TEST_PG") else {
        eprintln!(
            "pg_store bench: EVALWATCH_TEST_PG is unset; run it as `scripts/with-pg cargo bench --bench pg_store`"
        );
        std::process::exit(2);
    };
    let password = std::env::var("EVALWATCH_TEST_PGPASSWORD").unwrap_or_default();
    let sslmode = std::env::var("SSLMODE").unwrap_or_else(|_| "disable".to_owned());
    let server = Server {
        url,
        password,
        sslmode,
    };
    println!(
        "pg_store bench: load average {} (PostgreSQL sslmode={})",
        load(),
        server.sslmode
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let corpus = Corpus::new();

    let report_only = std::env::var_os("REPORT_ONLY").is_some();
    if !report_only {
        println!("writes: {n} results a pass, {reps} passes an engine, batches of 1000");
    }
    let (mut sqlite, mut pg) = (Vec::new(), Vec::new());
    for rep in (0..reps).filter(|_| !report_only) {
        let file = dir.path().join(format!("write-{rep}.db"));
        if std::env::var_os("PG_ONLY").is_none() {
            sqlite.push(write(&file, n, &corpus));
        }
        let name = format!("bench_write_{}_{rep}", std::process::id());
        let db = server.fresh(&name);
        pg.push(write(Path::new(&db), n, &corpus));
        server.drop_db(&name);
    }
    for (name, passes) in [("sqlite", &sqlite), ("postgres", &pg)]
        .into_iter()
        .filter(|_| !report_only)
    {
        let rates: Vec<f64> = passes.iter().map(|p| p.0).collect();
        let peaks: Vec<f64> = passes.iter().map(|p| p.1).collect();
        println!(
            "  {name:>8}: {} results/s, peak RSS {} MiB",
            spread(&rates, 0),
            spread(&peaks, 0)
        );
    }

    if std::env::var_os("PG_ONLY").is_some() {
        return;
    }
    println!("history (benches/report.rs's): {days} daily runs x {cases} cases x 2 providers");
    let file = dir.path().join("history.db");
    let history = format!("bench_history_{}", std::process::id());
    let db = server.fresh(&history);
    for (name, store) in [("sqlite", file.clone()), ("postgres", PathBuf::from(&db))] {
        let t = Instant::now();
        history::generate(&store, days, 1, cases);
        println!("  {name:>8}: written in {:.1} s", t.elapsed().as_secs_f64());
    }
    let bins: Vec<PathBuf> = match std::env::var("EVALWATCH_BINS") {
        Ok(list) => list.split(':').map(PathBuf::from).collect(),
        Err(_) => vec![PathBuf::from(env!("CARGO_BIN_EXE_evalwatch"))],
    };
    for (name, store) in [("sqlite", file), ("postgres", PathBuf::from(&db))] {
        let mut walls = vec![Vec::new(); bins.len()];
        let mut cpus = vec![Vec::new(); bins.len()];
        let mut failed = None;
        'reps: for rep in 0..reps {
            for (b, bin) in bins.iter().enumerate() {
                let out = dir.path().join(format!("reports-{name}-{rep}-{b}"));
                let started = Instant::now();
                #[allow(clippy::zombie_processes)] // reaped by `child::wait`
                let child = report_command(bin, dir.path(), &store, &out)
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("run evalwatch report");
                let usage = history::child::wait(child.id());
                if usage.exit_code != 0 {
                    failed = Some(usage.exit_code);
                    break 'reps;
                }
                walls[b].push(started.elapsed().as_secs_f64() * 1000.0);
                cpus[b].push(usage.cpu.as_secs_f64() * 1000.0);
            }
        }
        if let Some(code) = failed {
            println!("  {name:>8}: report failed (exit {code})");
            continue;
        }
        for (b, bin) in bins.iter().enumerate() {
            let which = if bins.len() > 1 {
                format!(" [{}]", bin.display())
            } else {
                String::new()
            };
            // The peak RSS from a run of its own, untimed: `wait4` gives this process's own
            // high-water mark for a child spawned from it, not the report's, so the report
            // says its own (`EVALWATCH_PHASES`, read from /proc/self/status as it exits).
            let out = dir.path().join(format!("reports-{name}-peak-{b}"));
            let peak = report_peak_mib(bin, dir.path(), &store, &out)
                .map_or_else(|| "unknown".to_owned(), |p| format!("{p:.1} MiB"));
            println!(
                "  {name:>8}: report --since all (every page) wall {} ms, CPU {} ms, peak RSS {peak}{which}",
                spread(&walls[b], 0),
                spread(&cpus[b], 0)
            );
        }
    }
    if std::env::var_os("KEEP_HISTORY").is_some() {
        // The URL without the password (it comes from EVALWATCH_TEST_PGPASSWORD).
        let base = server.url.rsplit_once('/').map_or("", |(b, _)| b);
        println!(
            "history kept: {} and {base}/{history}",
            dir.keep().join("history.db").display()
        );
    } else {
        server.drop_db(&history);
    }
    println!("pg_store bench: load average {}", load());
}

/// `bin --quiet --db store report --since all --out out`, run in `dir`, its output dropped.
fn report_command(bin: &Path, dir: &Path, store: &Path, out: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(bin);
    c.current_dir(dir)
        .arg("--quiet")
        .arg("--db")
        .arg(store)
        .args(["report", "--since", "all", "--out"])
        .arg(out)
        .stdout(std::process::Stdio::null());
    c
}

/// The peak RSS of one `evalwatch report --since all` of `store` by `bin`, in MiB, as the
/// report itself reads it when it exits (`EVALWATCH_PHASES=1`: its last line, `exit`, says
/// `peak N kB`); `None` when it failed or did not say.
fn report_peak_mib(bin: &Path, dir: &Path, store: &Path, out: &Path) -> Option<f64> {
    let done = report_command(bin, dir, store, out)
        .env("EVALWATCH_PHASES", "1")
        .output()
        .ok()?;
    if !done.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&done.stderr);
    let exit = text.lines().rev().find(|l| l.contains(" ms exit "))?;
    let kb: f64 = exit
        .split("peak ")
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// One pass of the writer: results/s and the peak RSS of this process, in MiB.
fn write(store_at: &Path, n: usize, corpus: &Corpus) -> (f64, f64) {
    let (_store, run) = results::begin(store_at, n);
    reset_peak_rss();
    let (secs, _) = results::write_all(store_at, &run, n, 1000, corpus);
    (n as f64 / secs, proc_status_kb("VmHWM") as f64 / 1024.0)
}

/// `median [min..max]` of some figures.
fn spread(values: &[f64], decimals: usize) -> String {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let median = if v.is_empty() {
        0.0
    } else if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        f64::midpoint(v[v.len() / 2 - 1], v[v.len() / 2])
    };
    format!(
        "{median:.decimals$} [{:.decimals$}..{:.decimals$}]",
        v.first().copied().unwrap_or(0.0),
        v.last().copied().unwrap_or(0.0)
    )
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
