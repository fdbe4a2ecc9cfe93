//! `evalwatch schedule`, and the lease that keeps a suite from overlapping itself.
//!
//! - `schedule` (no flag): the daemon. Sleeps until the next due window, runs due suites
//!   through the same path as `run` (alerts included), re-reads suite files when they
//!   change, logs one JSON line per event on stderr. SIGTERM or Ctrl-C: idle, it exits 0;
//!   during a run, the run keeps its results and is marked incomplete (by `run`), and the
//!   daemon exits 130.
//! - `schedule --once`: run whatever is due now and exit (cron, Kubernetes, CI).
//! - `schedule --list`, `schedule status`: next fires, last runs, overdue suites.
//! - `schedule emit systemd|cron|kubernetes|github-actions`: ready-to-use files.
//!
//! The lease: a row per suite in the store, taken in an immediate transaction by every run
//! (manual or scheduled), renewed by a heartbeat thread, released when the run is stored
//! (or the lease dropped), and taken over when its holder died (its pid is gone from this
//! host, or its heartbeat expired). A live holder makes `lease` fail with [`LeaseHeld`]:
//! exit code 3, and the daemon records the window as `busy`.
//!
//! `--now` (hidden) fixes the clock of `--once`, `--list` and `status`: for tests only.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};

use super::{Ctx, Failure, exit, host_name};
use crate::cli::ReadFormat;
use crate::model::Suite;
use crate::schedule::daemon::{self, Entry, Event, Fire, Host, Outcome, RunReport, Stop};
use crate::schedule::{self as sched, CatchUp, Policy, Schedule};
use crate::store::{LeaseRow, Store};
use crate::suite;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ScheduleArgs {
    #[command(subcommand)]
    pub command: Option<ScheduleCommand>,
    /// Suite files or folders [default: suites/]
    pub paths: Vec<PathBuf>,
    /// Run whatever is due now and exit (for cron, Kubernetes CronJob or CI)
    #[arg(long)]
    pub once: bool,
    /// Each suite's next fire times and last run
    #[arg(long, conflicts_with = "once")]
    pub list: bool,
    /// How many next fire times `--list` shows
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub count: usize,
    /// A window missed by more than the grace period (the scheduler was down): run it once
    /// now, or skip it. Recorded either way
    #[arg(long, value_parser = parse_catch_up, default_value = "once", value_name = "once|skip")]
    pub catch_up: CatchUp,
    /// How late a window may start and still count as on time
    #[arg(long, value_parser = parse_duration, default_value = "15m", value_name = "DURATION")]
    pub grace: Duration,
    /// Start each window up to this much later (a stable offset per suite and window), so
    /// that suites on the same cron do not all start at once. The daemon only
    #[arg(long, value_parser = parse_duration, default_value = "0", value_name = "DURATION")]
    pub jitter: Duration,
    /// How often the daemon looks for changed suite files
    #[arg(long, value_parser = parse_duration, default_value = "30s", value_name = "DURATION")]
    pub poll: Duration,
    /// Output format of `--list`
    #[arg(long, value_enum, default_value_t = ReadFormat::Text)]
    pub format: ReadFormat,
    /// For tests: take this RFC 3339 instant as the current time (`--once`, `--list`)
    #[arg(long, hide = true, value_parser = parse_now, value_name = "RFC3339")]
    pub now: Option<DateTime<Utc>>,
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Last and next run of each suite; overdue suites are marked (exit 2 when a suite cannot
    /// be scheduled, 0 otherwise)
    Status {
        /// Suite files or folders [default: suites/]
        paths: Vec<PathBuf>,
        /// How late a window may be before its suite counts as overdue
        #[arg(long, value_parser = parse_duration, default_value = "15m", value_name = "DURATION")]
        grace: Duration,
        #[arg(long, value_enum, default_value_t = ReadFormat::Text)]
        format: ReadFormat,
        /// For tests: take this RFC 3339 instant as the current time
        #[arg(long, hide = true, value_parser = parse_now, value_name = "RFC3339")]
        now: Option<DateTime<Utc>>,
    },
    /// Print ready-to-use files that call `evalwatch schedule --once` on a tick
    Emit {
        #[arg(value_enum)]
        target: EmitTarget,
        /// Suite files or folders to pass on [default: suites/]
        paths: Vec<PathBuf>,
        /// How often to look for due suites (as fine as your finest schedule): 1m, 5m, 15m,
        /// 30m, 1h, 2h, 6h, 12h, 1d
        #[arg(long, default_value = "5m", value_name = "DURATION")]
        every: String,
        /// Write the files into this folder instead of printing them
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EmitTarget {
    Systemd,
    Cron,
    Kubernetes,
    GithubActions,
}

fn parse_catch_up(s: &str) -> Result<CatchUp, String> {
    s.parse().map_err(|e: sched::ScheduleError| e.to_string())
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    sched::parse_duration(s).map_err(|e| e.to_string())
}

fn parse_now(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("read `{s}`: not an RFC 3339 time ({e})"))
}

// ---- the lease ------------------------------------------------------------------------

/// A lease lives this long without a heartbeat.
pub const LEASE_TTL: Duration = Duration::from_secs(90);
/// How often a holder renews its lease.
pub const HEARTBEAT: Duration = Duration::from_secs(30);

/// The suite is already running: another process holds its lease. Exit code 3.
#[derive(Debug, thiserror::Error)]
#[error(
    "run suite `{suite}`: it is already running (pid {pid} on {host}, since {since}); a suite never runs twice at once on one store, wait for it to finish"
)]
pub struct LeaseHeld {
    pub suite: String,
    pub pid: u32,
    pub host: String,
    pub since: String,
}

/// Held while a suite runs; released on drop (and recovered when its holder died).
#[derive(Debug)]
pub struct Lease {
    suite: String,
    stop: Option<std::sync::mpsc::Sender<()>>,
    heartbeat: Option<std::thread::JoinHandle<()>>,
}

impl Lease {
    /// Give the lease back (the run is stored).
    pub fn release(mut self) {
        self.finish();
    }

    /// The suite this lease is for.
    pub fn suite(&self) -> &str {
        &self.suite
    }

    fn finish(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(h) = self.heartbeat.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Whether process `pid` of this host is gone. Off Linux we cannot tell: never gone (the
/// heartbeat expiry still frees the lease).
fn process_gone(pid: u32) -> bool {
    if !cfg!(target_os = "linux") {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // A zombie (killed, not yet reaped) is gone too: the state follows the last `)`.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
        Err(_) => !Path::new(&format!("/proc/{pid}")).exists(),
    }
}

/// Whether the holder of a lease is a process of this host (not this one) that is gone.
fn holder_gone(row: &LeaseRow, host: &str) -> bool {
    row.host == host && row.pid != std::process::id() && process_gone(row.pid)
}

fn lease_held(suite: &Suite, holder: LeaseRow) -> anyhow::Error {
    LeaseHeld {
        suite: suite.name.clone(),
        pid: holder.pid,
        host: holder.host,
        since: daemon::rfc3339(holder.acquired_at),
    }
    .into()
}

/// Fail with [`LeaseHeld`] (exit 3) when a live process holds the lease of `suite`, as
/// [`lease`] would, with a read only: a run checks this before its first calls, and takes
/// the lease while they go out. Only a process that takes it in between makes the run stop,
/// its first calls wasted.
pub fn check_lease(store: &Store, suite: &Suite) -> anyhow::Result<()> {
    let host = host_name();
    let now = Utc::now();
    match store
        .leases()?
        .into_iter()
        .find(|row| row.suite == suite.name)
    {
        Some(row) if row.expires_at > now && !holder_gone(&row, &host) => {
            Err(lease_held(suite, row))
        }
        _ => Ok(()),
    }
}

/// Take the lease of `suite` on this store for a run, or fail with [`LeaseHeld`] (exit 3)
/// when a live process holds it.
pub fn lease(ctx: &Ctx, store: &mut Store, suite: &Suite) -> anyhow::Result<Lease> {
    let token = format!("{:016x}", rand::random::<u64>());
    let pid = std::process::id();
    let host = host_name();
    let taken = store.take_lease(
        &suite.name,
        &token,
        pid,
        &host,
        Utc::now(),
        LEASE_TTL,
        |row| holder_gone(row, &host),
    )?;
    let replaced = match taken {
        Ok(replaced) => replaced,
        Err(holder) => return Err(lease_held(suite, holder)),
    };
    if let Some(old) = replaced {
        ctx.printer.detail(&format!(
            "suite `{}`: took over the lease of pid {} on {}, which is gone or stopped its heartbeat",
            suite.name, old.pid, old.host
        ));
    }
    let mut beat = match Store::open(store.path()) {
        Ok(s) => s,
        Err(e) => {
            let _ = store.release_lease(&suite.name, &token);
            return Err(e.into());
        }
    };
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let name = suite.name.clone();
    let heartbeat = std::thread::Builder::new()
        .name("evalwatch-lease".into())
        .spawn(move || {
            loop {
                if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(HEARTBEAT)
                {
                    // A lost lease (expired and taken over) stays lost; a store error is
                    // retried at the next beat.
                    let _ = beat.renew_lease(&name, &token, Utc::now(), LEASE_TTL);
                } else {
                    let _ = beat.release_lease(&name, &token);
                    return;
                }
            }
        })?;
    Ok(Lease {
        suite: suite.name.clone(),
        stop: Some(tx),
        heartbeat: Some(heartbeat),
    })
}

// ---- the command ----------------------------------------------------------------------

pub fn run(ctx: &Ctx, args: &ScheduleArgs) -> anyhow::Result<u8> {
    match &args.command {
        Some(ScheduleCommand::Status {
            paths,
            grace,
            format,
            now,
        }) => status(ctx, paths, *grace, *format, *now),
        Some(ScheduleCommand::Emit {
            target,
            paths,
            every,
            out,
        }) => emit(ctx, *target, paths, every, out.as_deref()),
        None if args.list => list(ctx, args),
        None if args.once => once(ctx, args),
        None => {
            if args.now.is_some() {
                return Err(Failure::invalid(
                    "read --now: only `--once`, `--list` and `status` take it (it is for tests)",
                ));
            }
            run_daemon(ctx, args)
        }
    }
}

fn policy(args: &ScheduleArgs, jitter: bool) -> Policy {
    Policy {
        catch_up: args.catch_up,
        grace: args.grace,
        jitter: if jitter { args.jitter } else { Duration::ZERO },
    }
}

fn once(ctx: &Ctx, args: &ScheduleArgs) -> anyhow::Result<u8> {
    let mut host = AppHost::new(ctx, &args.paths, args.now)?;
    // One bad suite never stops the others: it is reported and alerted on, the valid ones
    // run, and the exit code says so at the end.
    let (entries, invalid) = host.load_judged()?;
    // `--once` starts what is due at once: no suite's jitter applies.
    let entries: Vec<Entry> = entries
        .into_iter()
        .map(|e| Entry { jitter: None, ..e })
        .collect();
    host.log(
        Event::new("once")
            .with("suites", entries.len())
            .with("invalid", invalid.len()),
    );
    let report = daemon::tick(&mut host, &entries, &policy(args, false));
    let runs = report.exit_code();
    // An invalid suite makes the exit code at least 2 (an interruption stays 130).
    let code = if invalid.is_empty() || runs == exit::INTERRUPTED {
        runs
    } else {
        runs.max(exit::INVALID)
    };
    host.log(
        Event::new("once_finished")
            .with("ran", report.runs.len())
            .with("invalid", invalid.len())
            .with("exit_code", code),
    );
    if report.runs.is_empty() && !report.stopped {
        ctx.printer
            .info(&nothing_due(&entries, host.now(), invalid.len()));
    }
    if invalid.is_empty() || runs == exit::INTERRUPTED {
        return Ok(code);
    }
    let n = invalid.len();
    let problems: Vec<&str> = invalid.iter().map(|b| b.problems.as_str()).collect();
    Err(Failure {
        code,
        message: format!(
            "schedule --once: {n} suite{} cannot be scheduled and did not run (the others did): fix {} (`evalwatch validate` lists every problem):\n{}",
            if n == 1 { "" } else { "s" },
            if n == 1 { "it" } else { "them" },
            problems.join("\n")
        ),
    }
    .into())
}

/// The line `--once` prints when it ran nothing: which suites are scheduled, and when each
/// is next due.
fn nothing_due(entries: &[Entry], now: DateTime<Utc>, invalid: usize) -> String {
    let at = daemon::rfc3339(now);
    if entries.is_empty() {
        return if invalid > 0 {
            format!("nothing due at {at}: no valid suite has a schedule")
        } else {
            format!("nothing due at {at}: no suite has a `schedule:`")
        };
    }
    let mut next: Vec<(Option<DateTime<Utc>>, &str)> = entries
        .iter()
        .map(|e| (e.schedule.next_after(now), e.suite.as_str()))
        .collect();
    next.sort();
    let parts: Vec<String> = next
        .iter()
        .map(|(t, s)| match t {
            Some(t) => format!("{s} at {}", daemon::rfc3339(*t)),
            None => format!("{s} never again"),
        })
        .collect();
    format!("nothing due at {at}; next: {}", parts.join(", "))
}

fn run_daemon(ctx: &Ctx, args: &ScheduleArgs) -> anyhow::Result<u8> {
    let mut host = AppHost::new(ctx, &args.paths, None)?;
    // Fail fast on a broken project (config, paths) at start; a bad suite is reported and
    // alerted on by the first load, and the others are scheduled. Later breakage of the
    // project is logged and survived.
    let project = ctx.project()?;
    super::suite_files(ctx, &project, &args.paths)?;
    host.watch_signals()?;
    let stop = daemon::daemon(&mut host, &policy(args, true), args.poll);
    Ok(match stop {
        Stop::Requested => exit::OK,
        Stop::Interrupted => exit::INTERRUPTED,
    })
}

/// The real world: the store, the clock (or `--now`), signals, suite files, `run`.
struct AppHost<'a> {
    ctx: &'a Ctx,
    paths: Vec<PathBuf>,
    store: Store,
    fixed_now: Option<DateTime<Utc>>,
    /// Suite files and their mtimes at the last load (and the config's).
    signature: Option<Vec<(PathBuf, Option<SystemTime>)>>,
    stop: Arc<AtomicBool>,
    wake: Arc<tokio::sync::Notify>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl<'a> AppHost<'a> {
    fn new(ctx: &'a Ctx, paths: &[PathBuf], now: Option<DateTime<Utc>>) -> anyhow::Result<Self> {
        let project = ctx.project()?;
        let store = ctx.open_store(&ctx.db_path(&project))?;
        Ok(Self {
            ctx,
            paths: paths.to_vec(),
            store,
            fixed_now: now,
            signature: None,
            stop: Arc::new(AtomicBool::new(false)),
            wake: Arc::new(tokio::sync::Notify::new()),
            runtime: None,
        })
    }

    /// Listen for SIGTERM and Ctrl-C: set the stop flag and cut a sleep short. The handlers
    /// are in place when this returns (a signal that comes early is not lost).
    fn watch_signals(&mut self) -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let stop = Arc::clone(&self.stop);
        let wake = Arc::clone(&self.wake);
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let (mut term, mut int) = runtime.block_on(async {
                Ok::<_, std::io::Error>((
                    signal(SignalKind::terminate())?,
                    signal(SignalKind::interrupt())?,
                ))
            })?;
            runtime.spawn(async move {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                stop.store(true, Ordering::SeqCst);
                wake.notify_one();
            });
        }
        #[cfg(not(unix))]
        runtime.spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            stop.store(true, Ordering::SeqCst);
            wake.notify_one();
        });
        self.runtime = Some(runtime);
        Ok(())
    }

    /// Judge the suites: the scheduled ones to act on, and the ones that cannot be
    /// scheduled, reported (one JSON event each) and alerted on (see [`sync_unschedulable`]).
    /// An error here is the project's (config, paths), not one suite's.
    fn load_judged(&mut self) -> anyhow::Result<(Vec<Entry>, Vec<Unschedulable>)> {
        let judged = load_entries(self.ctx, &self.paths)?;
        self.signature = Some(signature(self.ctx, &self.paths));
        self.report_unschedulable(&judged);
        Ok((judged.entries, judged.invalid))
    }

    /// Log each suite that cannot be scheduled and each that recovered, and keep their
    /// `unschedulable` alerts in step (opened once, resolved once, notices delivered).
    fn report_unschedulable(&mut self, judged: &Judgement) {
        for bad in &judged.invalid {
            self.log(
                Event::new("suite_invalid")
                    .suite(&bad.suite)
                    .with("file", bad.file.clone())
                    .with("message", bad.problems.clone())
                    .with("action", "not scheduled until fixed; the other suites are"),
            );
        }
        match sync_unschedulable(self.ctx, &mut self.store, judged) {
            Ok(recovered) => {
                for suite in recovered {
                    self.log(Event::new("suite_recovered").suite(&suite).with(
                        "message",
                        "the suite can be scheduled again; its `unschedulable` alert is resolved",
                    ));
                }
            }
            Err(e) => self.log(Event::new("error").with(
                "message",
                format!("failed to record the `unschedulable` alerts: {e:#}"),
            )),
        }
    }
}

/// A suite file the scheduler cannot schedule.
#[derive(Debug, Clone)]
struct Unschedulable {
    /// The suite's name, or its file's stem when the name cannot be read.
    suite: String,
    /// The file as shown (relative to the working directory).
    file: String,
    /// Every problem, rendered (`file:line:col: message` lines).
    problems: String,
}

/// What the scheduler makes of the suites of `paths`.
struct Judgement {
    /// The scheduled suites that are valid.
    entries: Vec<Entry>,
    /// Every suite that cannot be scheduled (invalid, or its schedule is).
    invalid: Vec<Unschedulable>,
    /// Names (and file stems) of the valid suites: their `unschedulable` alerts resolve.
    valid: Vec<String>,
}

/// The one place where the scheduler judges suites, each on its own: the loader's verdict
/// per file (what `validate` reports) and the schedule check `validate` makes. One bad suite
/// never hides the others. Returns every suite (scheduled or not) that is valid, and the
/// invalid ones.
fn judge(ctx: &Ctx, paths: &[PathBuf]) -> anyhow::Result<(Vec<Suite>, Vec<Unschedulable>)> {
    let project = ctx.project()?;
    let files = super::suite_files(ctx, &project, paths)?;
    let mut suites = Vec::new();
    let mut invalid = Vec::new();
    for judged in super::validate::judge(ctx, &project, &files) {
        let stem = || {
            judged
                .file
                .file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
        };
        match judged.suite {
            Ok(s) => {
                if let Some(expr) = &s.schedule
                    && let Err(e) = Schedule::parse(expr, s.timezone.as_deref())
                {
                    invalid.push(Unschedulable {
                        suite: s.name.clone(),
                        file: shown_path(ctx, &s.source),
                        problems: format!(
                            "{}: suite `{}`: failed to {e}; fix `schedule:`/`timezone:` (see docs/scheduling.md)",
                            shown_path(ctx, &s.source),
                            s.name
                        ),
                    });
                } else {
                    suites.push(s);
                }
            }
            Err(problems) => invalid.push(Unschedulable {
                suite: suite::suite_head(&judged.file, &project).map_or_else(stem, |h| h.name),
                file: shown_path(ctx, &judged.file),
                problems,
            }),
        }
    }
    Ok((suites, invalid))
}

/// The scheduled suites of `paths`, and those that cannot be scheduled.
fn load_entries(ctx: &Ctx, paths: &[PathBuf]) -> anyhow::Result<Judgement> {
    let (suites, invalid) = judge(ctx, paths)?;
    let mut entries = Vec::new();
    let mut valid = Vec::new();
    for s in suites {
        valid.push(s.name.clone());
        if let Some(stem) = s.source.file_stem() {
            valid.push(stem.to_string_lossy().into_owned());
        }
        let Some(expr) = &s.schedule else { continue };
        // `judge` parsed it already.
        if let Ok(schedule) = Schedule::parse(expr, s.timezone.as_deref()) {
            entries.push(Entry {
                suite: s.name.clone(),
                file: s.source.clone(),
                schedule,
                catch_up: s.catch_up,
                jitter: s.jitter,
            });
        }
    }
    Ok(Judgement {
        entries,
        invalid,
        valid,
    })
}

/// The rule name (and metric) of the alert a suite that cannot be scheduled raises.
pub const UNSCHEDULABLE: &str = "unschedulable";

/// Open an `unschedulable` alert (critical: every window it misses is a missed run) for each
/// invalid suite that has none open, and resolve those of suites that are valid again; the
/// notices go to the project's sinks at once (and stay queued when a sink is down). Returns
/// the suites that recovered.
fn sync_unschedulable(
    ctx: &Ctx,
    store: &mut Store,
    judged: &Judgement,
) -> anyhow::Result<Vec<String>> {
    use crate::alert::rule::severity_str;
    use crate::model::Severity as Level;
    let open: Vec<crate::store::AlertRow> = store
        .open_alerts(None)?
        .into_iter()
        .filter(|a| a.rule == UNSCHEDULABLE)
        .collect();
    let recovering: Vec<&crate::store::AlertRow> = open
        .iter()
        .filter(|a| {
            judged.valid.contains(&a.suite) && !judged.invalid.iter().any(|b| b.suite == a.suite)
        })
        .collect();
    let opening: Vec<&Unschedulable> = judged
        .invalid
        .iter()
        .filter(|b| !open.iter().any(|a| a.suite == b.suite))
        .collect();
    if recovering.is_empty() && opening.is_empty() {
        return Ok(Vec::new());
    }
    let project = ctx.project()?;
    let sinks = super::alerts::usable_sinks(ctx, &project);
    let to: Vec<String> = sinks
        .iter()
        .filter(|s| s.accepts(Level::Critical))
        .map(|s| s.id.clone())
        .collect();
    let severity = severity_str(Level::Critical);
    let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let reports = project
        .reports
        .as_ref()
        .map_or_else(|| "reports".into(), |p| p.display().to_string());
    let trend = |suite: &str| format!("{}/{suite}.html", reports.trim_end_matches('/'));
    for bad in opening {
        let message = format!(
            "{}: {UNSCHEDULABLE}: the suite cannot be scheduled, so none of its windows run until it is fixed (`evalwatch validate {}`)",
            bad.suite, bad.file
        );
        store.open_new_alert(
            &crate::store::NewAlert {
                suite: &bad.suite,
                rule: UNSCHEDULABLE,
                metric: UNSCHEDULABLE,
                provider: "*",
                tag: None,
                severity,
                run_id: None,
                at: &now,
                value: None,
                baseline_value: None,
                message: &message,
            },
            |id| {
                serde_json::json!({
                    "event": "alert",
                    "alert_id": id,
                    "suite": bad.suite,
                    "rule": UNSCHEDULABLE,
                    "metric": UNSCHEDULABLE,
                    "condition": null,
                    "provider": "*",
                    "tag": null,
                    "severity": severity,
                    "baseline": null,
                    "value": null,
                    "baseline_value": null,
                    "run_id": null,
                    "since_run": null,
                    "opened_at": now,
                    "at": now,
                    "message": message,
                    "text": format!("[{}] {message}\n{}", severity.to_uppercase(), bad.problems),
                    "file": bad.file,
                    "problems": bad.problems,
                    "links": {"run": null, "trend": trend(&bad.suite)},
                })
                .to_string()
            },
            &to,
        )?;
        ctx.printer.warn(&format!("alert [{severity}] {message}"));
    }
    let mut recovered = Vec::new();
    for a in recovering {
        let message = format!(
            "{}: {UNSCHEDULABLE}: resolved: the suite can be scheduled again",
            a.suite
        );
        let payload = serde_json::json!({
            "event": "resolved",
            "alert_id": a.id,
            "suite": a.suite,
            "rule": UNSCHEDULABLE,
            "metric": UNSCHEDULABLE,
            "condition": null,
            "provider": "*",
            "tag": null,
            "severity": a.severity,
            "baseline": null,
            "value": null,
            "baseline_value": null,
            "run_id": null,
            "since_run": null,
            "opened_at": a.opened_at,
            "at": now,
            "message": message,
            "text": format!("[RESOLVED] {message} (open since {})", a.opened_at),
            "links": {"run": null, "trend": trend(&a.suite)},
        })
        .to_string();
        store.resolve_alert(a.id, None, &now, &payload, &to)?;
        ctx.printer
            .note(&format!("resolved [{}] {message}", a.severity));
        recovered.push(a.suite.clone());
    }
    let env = |name: &str| std::env::var(name).ok();
    if let Err(e) = super::alerts::flush_queue(ctx, store, &sinks, &env, false) {
        ctx.printer
            .warn(&format!("deliver alerts: {e}; notices stay queued"));
    }
    Ok(recovered)
}

/// The suite files and config with their modification times: a change means reload.
fn signature(ctx: &Ctx, paths: &[PathBuf]) -> Vec<(PathBuf, Option<SystemTime>)> {
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut sig = Vec::new();
    if let Ok(project) = ctx.project() {
        if let Some(src) = &project.source {
            sig.push((src.clone(), mtime(src)));
        }
        if let Ok(files) = super::suite_files(ctx, &project, paths) {
            for f in files {
                let m = mtime(&f);
                sig.push((f, m));
            }
        }
    }
    sig
}

/// The latest handled instant of a suite: its latest handled window or the start of its
/// latest run that counts, whichever is later.
fn handled_in(store: &Store, suite: &str) -> Result<Option<DateTime<Utc>>, String> {
    let fire = store
        .last_handled_fire(suite)
        .map_err(|e| e.to_string())?
        .map(|f| f.scheduled_for);
    let run = store
        .last_run_start(suite, true)
        .map_err(|e| e.to_string())?
        .map(|r| r.started_at);
    Ok(fire.max(run))
}

impl Host for AppHost<'_> {
    fn now(&mut self) -> DateTime<Utc> {
        self.fixed_now.unwrap_or_else(Utc::now)
    }

    fn stop_requested(&mut self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn sleep_until(&mut self, until: DateTime<Utc>) {
        let wait = (until - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        if wait.is_zero() {
            return;
        }
        match &self.runtime {
            Some(rt) => {
                let wake = Arc::clone(&self.wake);
                let stop = Arc::clone(&self.stop);
                rt.block_on(async move {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = wake.notified() => {}
                    }
                });
            }
            None => std::thread::sleep(wait),
        }
    }

    fn reload(&mut self) -> Option<Vec<Entry>> {
        let sig = signature(self.ctx, &self.paths);
        if self.signature.as_ref() == Some(&sig) {
            return None;
        }
        let first = self.signature.is_none();
        self.signature = Some(sig);
        match load_entries(self.ctx, &self.paths) {
            Ok(judged) => {
                if !first {
                    self.log(Event::new("suites_changed"));
                }
                self.report_unschedulable(&judged);
                Some(judged.entries)
            }
            Err(e) => {
                self.log(
                    Event::new("suites_invalid")
                        .with("message", format!("{e:#}"))
                        .with("action", "kept the suites loaded before"),
                );
                None
            }
        }
    }

    fn handled(&mut self, suite: &str) -> Result<Option<DateTime<Utc>>, String> {
        handled_in(&self.store, suite)
    }

    fn record(&mut self, fire: &Fire) -> Result<(), String> {
        self.store
            .record_fire(
                &fire.suite,
                fire.window,
                fire.fired_at,
                fire.outcome.as_str(),
                fire.run_id.as_deref(),
                fire.detail.as_deref(),
            )
            .map_err(|e| e.to_string())
    }

    fn run(&mut self, entry: &Entry, _window: DateTime<Utc>) -> RunReport {
        let settings = super::run::RunSettings::suite_file(entry.file.clone());
        let started = Utc::now() - chrono::TimeDelta::seconds(1);
        let result = super::run::execute(self.ctx, &settings);
        let run_id = self
            .store
            .last_run_start(&entry.suite, false)
            .ok()
            .flatten()
            .filter(|r| r.started_at >= started)
            .map(|r| r.run_id);
        match result {
            Ok(code) => RunReport {
                outcome: match code {
                    exit::INTERRUPTED => Outcome::Interrupted,
                    exit::INVALID => Outcome::Failed,
                    _ => Outcome::Ran,
                },
                code,
                run_id,
                detail: match code {
                    exit::GATE => Some("a gate was breached or an alert fired".into()),
                    exit::INCOMPLETE => Some("the run failed (over its error budget)".into()),
                    _ => None,
                },
            },
            Err(e) => {
                let busy = e.downcast_ref::<LeaseHeld>().is_some();
                RunReport {
                    outcome: if busy { Outcome::Busy } else { Outcome::Failed },
                    code: super::exit_code(&e),
                    run_id: None,
                    detail: Some(format!("{e:#}")),
                }
            }
        }
    }

    fn log(&mut self, event: Event) {
        crate::output::err(&event.to_json(self.now()));
    }
}

// ---- list and status ------------------------------------------------------------------

/// What `--list` and `status` show about each suite (scheduled or not), as JSON objects:
/// `suite`, `file`, `schedule`, `timezone`, `error`, `next`, `last_run`, `last_fire`,
/// `running`, `due`, `overdue`, `overdue_since`.
fn suite_rows(
    ctx: &Ctx,
    paths: &[PathBuf],
    now: DateTime<Utc>,
    grace: Duration,
    count: usize,
    catch_up: CatchUp,
) -> anyhow::Result<(Vec<serde_json::Value>, Vec<Unschedulable>)> {
    use serde_json::{Value, json};
    let (suites, invalid) = judge(ctx, paths)?;
    let project = ctx.project()?;
    let store = ctx.open_store(&ctx.db_path(&project))?;
    let leases = store.leases()?;
    let policy = Policy {
        catch_up,
        grace,
        jitter: Duration::ZERO,
    };
    let mut rows = Vec::new();
    for s in &suites {
        let parsed = s
            .schedule
            .as_deref()
            .map(|e| Schedule::parse(e, s.timezone.as_deref()));
        let last_run = store.last_run_start(&s.name, false)?;
        let counted = store.last_run_start(&s.name, true)?;
        let last_fire = store.fires(Some(&s.name), 1)?.into_iter().next();
        let running = leases
            .iter()
            .find(|l| l.suite == s.name && l.expires_at > Utc::now())
            .map(
                |l| json!({"pid": l.pid, "host": l.host, "since": daemon::rfc3339(l.acquired_at)}),
            );
        let mut row = json!({
            "suite": s.name,
            "file": shown_path(ctx, &s.source),
            "schedule": s.schedule,
            "timezone": s.timezone.clone().unwrap_or_else(|| "UTC".into()),
            "error": Value::Null,
            "next": [],
            "last_run": last_run.as_ref().map(|r| json!({
                "run_id": r.run_id,
                "started_at": daemon::rfc3339(r.started_at),
                "status": r.status.as_str(),
            })),
            "last_fire": last_fire.as_ref().map(|f| json!({
                "window": daemon::rfc3339(f.scheduled_for),
                "fired_at": daemon::rfc3339(f.fired_at),
                "outcome": f.outcome,
                "run_id": f.run_id,
            })),
            "running": running,
            "due": false,
            "overdue": false,
            "overdue_since": Value::Null,
        });
        match parsed {
            None => {}
            Some(Err(e)) => row["error"] = e.to_string().into(),
            Some(Ok(schedule)) => {
                row["next"] = schedule
                    .upcoming(now, count.max(1))
                    .into_iter()
                    .map(|t| Value::from(daemon::rfc3339(t)))
                    .collect();
                let handled = handled_in(&store, &s.name).map_err(anyhow::Error::msg)?;
                let own = Policy {
                    catch_up: s.catch_up.unwrap_or(policy.catch_up),
                    ..policy
                };
                let d = sched::decide(&s.name, &schedule, handled, now, &own);
                row["due"] = matches!(d.action, sched::Action::Run { .. }).into();
                // A run counts from its start, or from the window it ran for.
                let ran = store
                    .last_fire_with(&s.name, Outcome::Ran.as_str())?
                    .map(|f| f.scheduled_for);
                let last = counted.map(|r| r.started_at).max(ran);
                let since = sched::overdue_since(&schedule, last, now, grace);
                row["overdue"] = since.is_some().into();
                row["overdue_since"] = since.map(daemon::rfc3339).into();
            }
        }
        rows.push(row);
    }
    for bad in &invalid {
        rows.push(json!({
            "suite": bad.suite,
            "file": bad.file,
            "valid": false,
            "schedule": Value::Null,
            "timezone": Value::Null,
            "error": bad.problems,
            "next": [],
            "last_run": Value::Null,
            "last_fire": Value::Null,
            "running": Value::Null,
            "due": false,
            "overdue": false,
            "overdue_since": Value::Null,
        }));
    }
    Ok((rows, invalid))
}

fn shown_path(ctx: &Ctx, p: &Path) -> String {
    p.strip_prefix(&ctx.cwd).unwrap_or(p).display().to_string()
}

/// An instant in a suite's time zone, for people.
fn local(t: &str, tz: &str) -> String {
    let Ok(at) = DateTime::parse_from_rfc3339(t) else {
        return t.to_owned();
    };
    match tz.parse::<chrono_tz::Tz>() {
        Ok(tz) => at
            .with_timezone(&tz)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string(),
        Err(_) => t.to_owned(),
    }
}

fn last_run_text(row: &serde_json::Value) -> String {
    let r = &row["last_run"];
    if r.is_null() {
        return "never".into();
    }
    format!(
        "{} {} ({})",
        r["started_at"].as_str().unwrap_or(""),
        r["status"].as_str().unwrap_or(""),
        r["run_id"].as_str().unwrap_or("")
    )
}

/// After `--list` or `status` showed the valid suites: exit 2 naming every suite that
/// cannot be scheduled, with its located problems.
fn invalid_exit(what: &str, invalid: &[Unschedulable]) -> anyhow::Result<u8> {
    if invalid.is_empty() {
        return Ok(exit::OK);
    }
    let n = invalid.len();
    let problems: Vec<&str> = invalid.iter().map(|b| b.problems.as_str()).collect();
    Err(Failure::invalid(format!(
        "{what}: {n} suite{} cannot be scheduled (the others are listed): fix {} (`evalwatch validate` lists every problem):\n{}",
        if n == 1 { "" } else { "s" },
        if n == 1 { "it" } else { "them" },
        problems.join("\n")
    )))
}

fn list(ctx: &Ctx, args: &ScheduleArgs) -> anyhow::Result<u8> {
    let now = args.now.unwrap_or_else(Utc::now);
    let (rows, invalid) = suite_rows(ctx, &args.paths, now, args.grace, args.count, args.catch_up)?;
    if args.format == ReadFormat::Json {
        ctx.printer
            .result(&serde_json::Value::Array(rows).to_string());
        return invalid_exit("schedule --list", &invalid);
    }
    if rows.is_empty() {
        ctx.printer.result("no suites found");
    }
    for row in &rows {
        let name = row["suite"].as_str().unwrap_or("");
        if row["valid"] == false {
            ctx.printer.result(&format!(
                "{name}: cannot be scheduled ({}): see the errors below",
                row["file"].as_str().unwrap_or("")
            ));
            continue;
        }
        let tz = row["timezone"].as_str().unwrap_or("UTC");
        let Some(expr) = row["schedule"].as_str() else {
            ctx.printer
                .result(&format!("{name}: no schedule (run by hand or by `run`)"));
            continue;
        };
        ctx.printer.result(&format!("{name}: {expr} ({tz})"));
        if let Some(e) = row["error"].as_str() {
            ctx.printer.result(&format!("  error: {e}"));
            continue;
        }
        let next: Vec<String> = row["next"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str())
                    .map(|t| local(t, tz))
                    .collect()
            })
            .unwrap_or_default();
        ctx.printer.result(&format!("  next: {}", next.join(", ")));
        ctx.printer
            .result(&format!("  last run: {}", last_run_text(row)));
        if row["due"] == true {
            ctx.printer.result("  due now");
        }
    }
    invalid_exit("schedule --list", &invalid)
}

fn status(
    ctx: &Ctx,
    paths: &[PathBuf],
    grace: Duration,
    format: ReadFormat,
    now: Option<DateTime<Utc>>,
) -> anyhow::Result<u8> {
    let now = now.unwrap_or_else(Utc::now);
    let (rows, invalid) = suite_rows(ctx, paths, now, grace, 1, CatchUp::Once)?;
    if format == ReadFormat::Json {
        ctx.printer
            .result(&serde_json::Value::Array(rows).to_string());
        return invalid_exit("schedule status", &invalid);
    }
    if rows.is_empty() {
        ctx.printer.result("no suites found");
    }
    for row in &rows {
        let name = row["suite"].as_str().unwrap_or("");
        let state = if row["valid"] == false {
            "CANNOT BE SCHEDULED: see the errors below".to_owned()
        } else if row["schedule"].is_null() {
            "unscheduled".to_owned()
        } else if let Some(e) = row["error"].as_str() {
            format!("invalid schedule: {e}")
        } else if !row["running"].is_null() {
            format!(
                "running (pid {} on {})",
                row["running"]["pid"],
                row["running"]["host"].as_str().unwrap_or("")
            )
        } else if let Some(since) = row["overdue_since"].as_str() {
            format!("OVERDUE since {since}")
        } else if row["due"] == true {
            "due".to_owned()
        } else {
            "ok".to_owned()
        };
        let next = row["next"][0].as_str().unwrap_or("-");
        ctx.printer.result(&format!(
            "{name}  last: {}  next: {next}  {state}",
            last_run_text(row)
        ));
    }
    invalid_exit("schedule status", &invalid)
}

// ---- emit -----------------------------------------------------------------------------

/// The tick as a cron expression and as a systemd `OnCalendar=`.
fn tick_specs(every: &str) -> anyhow::Result<(String, String)> {
    let d = sched::parse_duration(every).map_err(|e| Failure::invalid(e.to_string()))?;
    let mins = d.as_secs() / 60;
    let bad = || {
        Failure::invalid(format!(
            "read --every `{every}`: use whole minutes that divide an hour (1m, 5m, 15m, 30m), hours that divide a day (1h, 2h, 6h, 12h) or 1d"
        ))
    };
    if d.as_secs() % 60 != 0 || mins == 0 {
        return Err(bad());
    }
    if mins < 60 && 60 % mins == 0 {
        let cron = if mins == 1 {
            "* * * * *".to_owned()
        } else {
            format!("*/{mins} * * * *")
        };
        return Ok((cron, format!("*-*-* *:00/{mins}:00")));
    }
    if mins % 60 == 0 && mins < 1440 && 1440 % mins == 0 {
        let h = mins / 60;
        let cron = if h == 1 {
            "0 * * * *".to_owned()
        } else {
            format!("0 */{h} * * *")
        };
        return Ok((cron, format!("*-*-* 00/{h}:00:00")));
    }
    if mins == 1440 {
        return Ok(("0 0 * * *".into(), "*-*-* 00:00:00".into()));
    }
    Err(bad())
}

fn quote(s: &str) -> String {
    shlex::try_quote(s).map_or_else(|_| format!("'{s}'"), std::borrow::Cow::into_owned)
}

fn emit(
    ctx: &Ctx,
    target: EmitTarget,
    paths: &[PathBuf],
    every: &str,
    out: Option<&Path>,
) -> anyhow::Result<u8> {
    let (cron, calendar) = tick_specs(every)?;
    let project = ctx.project()?;
    let root = project.root.clone();
    let exe = std::env::current_exe()
        .map_or_else(|_| "evalwatch".to_owned(), |p| p.display().to_string());
    let path_args: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let once_cmd = |bin: &str| {
        let mut words = vec![quote(bin), "schedule".into(), "--once".into()];
        words.extend(path_args.iter().map(|p| quote(p)));
        words.join(" ")
    };
    // Secrets the suites need, for the env sections.
    let mut secrets: Vec<String> = project
        .providers
        .iter()
        .filter_map(|p| p.api_key_env.clone())
        .collect();
    if let Ok((suites, _)) = judge(ctx, paths) {
        for s in suites {
            secrets.extend(s.providers.iter().filter_map(|p| p.api_key_env.clone()));
        }
    }
    secrets.sort();
    secrets.dedup();
    let db = ctx.db_path(&project);
    let db_rel = db
        .strip_prefix(&root)
        .map_or_else(|_| db.display().to_string(), |p| p.display().to_string());
    let root_s = root.display().to_string();
    let files: Vec<(&str, String)> = match target {
        EmitTarget::Systemd => {
            let env_lines = if secrets.is_empty() {
                "# EnvironmentFile=/etc/evalwatch.env\n".to_owned()
            } else {
                format!(
                    "# Secrets ({}) as KEY=value lines, readable by root only:\nEnvironmentFile=/etc/evalwatch.env\n",
                    secrets.join(", ")
                )
            };
            vec![
                (
                    "evalwatch-schedule.service",
                    format!(
                        "[Unit]\nDescription=evalwatch: run the eval suites that are due\nWants=network-online.target\nAfter=network-online.target\n\n[Service]\nType=oneshot\nWorkingDirectory={root_s}\nExecStart={}\n{env_lines}# SIGTERM keeps a run's results and marks it incomplete\nTimeoutStopSec=60\n",
                        once_cmd(&exe)
                    ),
                ),
                (
                    "evalwatch-schedule.timer",
                    format!(
                        "[Unit]\nDescription=evalwatch: look for due suites ({every})\n\n[Timer]\nOnCalendar={calendar}\n# Run once at boot when a tick was missed while the machine was off\nPersistent=true\nUnit=evalwatch-schedule.service\n\n[Install]\nWantedBy=timers.target\n"
                    ),
                ),
                (
                    "evalwatch-daemon.service",
                    format!(
                        "# Alternative to the timer: evalwatch's own long-running scheduler.\n# Enable this OR the timer, not both (both would be safe, a suite never overlaps itself).\n[Unit]\nDescription=evalwatch scheduler daemon\nWants=network-online.target\nAfter=network-online.target\n\n[Service]\nType=simple\nWorkingDirectory={root_s}\nExecStart={} schedule{}\n{env_lines}Restart=on-failure\nRestartSec=30\nKillSignal=SIGTERM\nTimeoutStopSec=60\n\n[Install]\nWantedBy=multi-user.target\n",
                        quote(&exe),
                        path_args.iter().fold(String::new(), |mut acc, p| {
                            let _ = write!(acc, " {}", quote(p));
                            acc
                        })
                    ),
                ),
            ]
        }
        EmitTarget::Cron => {
            let envs = if secrets.is_empty() {
                String::new()
            } else {
                format!(
                    "# The suites need {}: set them above this line (KEY=value) or source a file in the command.\n",
                    secrets.join(", ")
                )
            };
            vec![(
                "evalwatch.crontab",
                format!(
                    "# evalwatch: every {every}, run the suites that are due (each suite's own cron and timezone decide).\n# Install: (crontab -l 2>/dev/null; cat evalwatch.crontab) | crontab -\n{envs}{cron} cd {} && {} >> {} 2>&1\n",
                    quote(&root_s),
                    once_cmd(&exe),
                    quote(&format!("{root_s}/evalwatch-schedule.log"))
                ),
            )]
        }
        EmitTarget::Kubernetes => {
            let mut env = format!(
                "                - name: EVALWATCH_DB\n                  value: /data/{}\n",
                db.file_name().map_or_else(
                    || "evalwatch.db".into(),
                    |n| n.to_string_lossy().into_owned()
                )
            );
            for s in &secrets {
                let _ = write!(
                    env,
                    "                - name: {s}\n                  valueFrom:\n                    secretKeyRef: {{name: evalwatch-secrets, key: {s}}}\n"
                );
            }
            let args: Vec<String> = ["schedule", "--once"]
                .iter()
                .map(|a| format!("\"{a}\""))
                .chain(
                    path_args
                        .iter()
                        .map(|p| serde_json::Value::from(p.as_str()).to_string()),
                )
                .collect();
            vec![(
                "evalwatch-cronjob.yaml",
                format!(
                    "# evalwatch: every {every}, run the suites that are due. The image holds evalwatch and the\n# project (evalwatch.yaml, suites/); the history lives on a volume so that runs build on it.\napiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: evalwatch-schedule\nspec:\n  schedule: \"{cron}\"\n  concurrencyPolicy: Forbid\n  startingDeadlineSeconds: 300\n  successfulJobsHistoryLimit: 3\n  failedJobsHistoryLimit: 3\n  jobTemplate:\n    spec:\n      backoffLimit: 0\n      template:\n        spec:\n          restartPolicy: Never\n          terminationGracePeriodSeconds: 60\n          containers:\n            - name: evalwatch\n              image: registry.example.com/evalwatch-project:latest\n              workingDir: /project\n              command: [\"evalwatch\"]\n              args: [{}]\n              env:\n{env}              volumeMounts:\n                - name: history\n                  mountPath: /data\n          volumes:\n            - name: history\n              persistentVolumeClaim:\n                claimName: evalwatch-history\n",
                    args.join(", ")
                ),
            )]
        }
        EmitTarget::GithubActions => {
            let mut env = format!("          EVALWATCH_DB: {db_rel}\n");
            for s in &secrets {
                let _ = writeln!(env, "          {s}: ${{{{ secrets.{s} }}}}");
            }
            vec![(
                "evalwatch.yml",
                format!(
                    "# evalwatch: every {every}, run the suites that are due. Save as .github/workflows/evalwatch.yml.\n# GitHub runs scheduled workflows in UTC and sometimes late: catch-up runs a late window once.\n# The history is carried from run to run in the Actions cache.\nname: evalwatch\non:\n  schedule:\n    - cron: \"{cron}\"\n  workflow_dispatch: {{}}\nconcurrency:\n  group: evalwatch\n  cancel-in-progress: false\njobs:\n  evals:\n    runs-on: ubuntu-latest\n    timeout-minutes: 120\n    steps:\n      - uses: actions/checkout@v4\n      - name: Restore the history\n        uses: actions/cache/restore@v4\n        with:\n          path: {db_rel}\n          key: evalwatch-db-${{{{ github.run_id }}}}\n          restore-keys: evalwatch-db-\n      - name: Install evalwatch\n        run: cargo install evalwatch --locked\n      - name: Run the suites that are due\n        run: {}\n        env:\n{env}      - name: Save the history\n        if: always()\n        uses: actions/cache/save@v4\n        with:\n          path: {db_rel}\n          key: evalwatch-db-${{{{ github.run_id }}}}\n      - name: Keep the reports\n        if: always()\n        uses: actions/upload-artifact@v4\n        with:\n          name: evalwatch-reports\n          path: reports/\n          if-no-files-found: ignore\n",
                    once_cmd("evalwatch")
                ),
            )]
        }
    };
    match out {
        Some(dir) => {
            let dir = if dir.is_absolute() {
                dir.to_path_buf()
            } else {
                ctx.cwd.join(dir)
            };
            std::fs::create_dir_all(&dir)
                .map_err(|e| Failure::invalid(format!("create {}: {e}", dir.display())))?;
            for (name, text) in &files {
                let path = dir.join(name);
                std::fs::write(&path, text)
                    .map_err(|e| Failure::invalid(format!("write {}: {e}", path.display())))?;
                ctx.printer
                    .result(&format!("wrote {}", shown_path(ctx, &path)));
            }
        }
        None if files.len() == 1 => {
            for (_, text) in &files {
                crate::output::out_raw(text);
            }
        }
        None => {
            for (i, (name, text)) in files.iter().enumerate() {
                if i > 0 {
                    crate::output::out("");
                }
                crate::output::out(&format!("# ==> {name} <=="));
                crate::output::out_raw(text);
            }
        }
    }
    Ok(exit::OK)
}
