//! The scheduler daemon, and [`AppHost`]: the real world (store, clock, signals, suite
//! files, `run`) that the pure loop in [`crate::schedule::daemon`] acts on, here and in
//! `--once`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use super::Settings;
use super::judge::{Judgement, Unschedulable, load_entries};
use super::unschedulable::sync_unschedulable;
use crate::app::host_name;
use crate::app::lease::{LeaseHeld, lease_ttl, reap_leaseless_runs};
use crate::app::run::RunSettings;
use crate::app::{Ctx, exit};
use crate::schedule::daemon::{self, Claim, Entry, Event, Fire, Host, Outcome, RunReport, Stop};
use crate::store::Store;

/// The daemon: runs due suites until SIGTERM or Ctrl-C.
pub(super) fn run_daemon(ctx: &Ctx, settings: &Settings) -> anyhow::Result<u8> {
    let mut host = AppHost::new(ctx, &settings.paths, None)?;
    // Fail fast on a broken project (config, paths) at start; a bad suite is reported and
    // alerted on by the first load, and the others are scheduled. Later breakage of the
    // project is logged and survived.
    let project = ctx.project()?;
    crate::app::suite_files(ctx, &project, &settings.paths)?;
    host.watch_signals()?;
    let stop = daemon::daemon(&mut host, &settings.policy, settings.poll);
    Ok(match stop {
        Stop::Requested => exit::OK,
        Stop::Interrupted => exit::INTERRUPTED,
    })
}

/// The real world: the store, the clock (or `--now`), signals, suite files, `run`.
pub(super) struct AppHost<'a> {
    ctx: &'a Ctx,
    paths: Vec<PathBuf>,
    store: Store,
    fixed_now: Option<DateTime<Utc>>,
    /// Suite files and their mtimes at the last load (and the config's).
    signature: Option<Vec<(PathBuf, Option<SystemTime>)>>,
    stop: Arc<AtomicBool>,
    wake: Arc<tokio::sync::Notify>,
    runtime: Option<tokio::runtime::Runtime>,
    /// This scheduler's window claims are taken with this token.
    claim_token: String,
}

impl<'a> AppHost<'a> {
    pub(super) fn new(
        ctx: &'a Ctx,
        paths: &[PathBuf],
        now: Option<DateTime<Utc>>,
    ) -> anyhow::Result<Self> {
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
            claim_token: format!("{:016x}", rand::random::<u64>()),
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
    pub(super) fn load_judged(&mut self) -> anyhow::Result<(Vec<Entry>, Vec<Unschedulable>)> {
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

/// The suite files and config with their modification times: a change means reload.
fn signature(ctx: &Ctx, paths: &[PathBuf]) -> Vec<(PathBuf, Option<SystemTime>)> {
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut sig = Vec::new();
    if let Ok(project) = ctx.project() {
        if let Some(src) = &project.source {
            sig.push((src.clone(), mtime(src)));
        }
        if let Ok(files) = crate::app::suite_files(ctx, &project, paths) {
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
pub(super) fn handled_in(store: &Store, suite: &str) -> Result<Option<DateTime<Utc>>, String> {
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
        // A run whose process died on another host (its lease expired) does not count:
        // marked incomplete first, so that its window runs again here.
        if let Err(e) = reap_leaseless_runs(&mut self.store, self.ctx.printer) {
            self.log(Event::new("error").with(
                "message",
                format!("failed to look for runs left running: {e:#}"),
            ));
        }
        handled_in(&self.store, suite)
    }

    fn claim(&mut self, suite: &str, window: DateTime<Utc>) -> Result<Claim, String> {
        let ttl = lease_ttl().map_err(|e| format!("{e:#}"))?;
        let now = self.store.clock_now().map_err(|e| e.to_string())?;
        let taken = self
            .store
            .claim_window(
                suite,
                window,
                &self.claim_token,
                std::process::id(),
                &host_name(),
                now,
                ttl,
            )
            .map_err(|e| e.to_string())?;
        Ok(match taken {
            Ok(None) => Claim::Ours,
            Ok(Some(dead)) => {
                self.log(
                    Event::new("window_taken_over")
                        .suite(suite)
                        .at("window", window)
                        .with("host", dead.host)
                        .with("pid", dead.pid)
                        .with("message", "its claimant died before recording it"),
                );
                Claim::Ours
            }
            Err(held) => Claim::Elsewhere {
                host: held.host,
                done: held.done,
            },
        })
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
            .map_err(|e| e.to_string())?;
        // Done with, or (interrupted) given back to be run again.
        self.store
            .finish_claim(
                &fire.suite,
                fire.window,
                &self.claim_token,
                fire.outcome.handles_window(),
            )
            .map_err(|e| e.to_string())
    }

    fn run(&mut self, entry: &Entry, _window: DateTime<Utc>) -> RunReport {
        let args = run_settings_for(entry);
        let started = Utc::now() - chrono::TimeDelta::seconds(1);
        let result = crate::app::run::execute(self.ctx, &args);
        let run_id = self
            .store
            .last_run_start(&entry.suite, false)
            .ok()
            .flatten()
            .filter(|r| r.started_at >= started)
            .map(|r| r.run_id);
        run_report(result, run_id)
    }

    fn log(&mut self, event: Event) {
        crate::output::err(&event.to_json(self.now()));
    }
}

/// What a due suite runs with: `evalwatch run FILE` and its defaults (alerts, reports, the
/// critical gate), whatever the scheduler's own flags. The one place the scheduler builds a
/// run's settings.
fn run_settings_for(entry: &Entry) -> RunSettings {
    RunSettings::suite_file(entry.file.clone())
}

/// What the window's record says of a run: its outcome, exit code and why.
fn run_report(result: anyhow::Result<u8>, run_id: Option<String>) -> RunReport {
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
                code: crate::app::exit_code(&e),
                run_id: None,
                detail: Some(format!("{e:#}")),
            }
        }
    }
}
