//! The lease that keeps a suite from overlapping itself: a row per suite in the store,
//! taken by every run (manual or scheduled), renewed by a heartbeat thread, released when
//! the run is stored (or the lease dropped), and taken over when its holder died: its
//! heartbeat expired, or (SQLite only) its pid is gone from this host.
//!
//! On PostgreSQL the store is shared by many hosts: times are the database server's, and a
//! dead holder is recovered by time alone (a pid means nothing on another machine, nor in
//! another container of the same name). A host is named by [`host_name`]
//! (`EVALWATCH_HOST_ID`, else the machine's name). The lease time is 90 s, or
//! `EVALWATCH_LEASE_TTL` (a duration: `30s`, `2m`); the heartbeat beats at a third of it.

use std::path::Path;
use std::time::Duration;

use chrono::{TimeDelta, Utc};

use crate::app::{Ctx, Failure, host_name};
use crate::model::Suite;
use crate::output::Printer;
use crate::schedule::daemon;
use crate::store::{LeaseRow, Store};

/// A lease lives this long without a heartbeat, unless `EVALWATCH_LEASE_TTL` says otherwise.
pub const LEASE_TTL: Duration = Duration::from_secs(90);

/// The lease time: `EVALWATCH_LEASE_TTL` (at least a second), else [`LEASE_TTL`]; a value
/// that is not a duration is an error (exit 2).
pub fn lease_ttl() -> anyhow::Result<Duration> {
    match std::env::var("EVALWATCH_LEASE_TTL") {
        Err(_) => Ok(LEASE_TTL),
        Ok(v) => match crate::schedule::parse_duration(&v) {
            Ok(d) if d >= Duration::from_secs(1) => Ok(d),
            _ => Err(Failure::invalid(format!(
                "read EVALWATCH_LEASE_TTL: `{v}` is not a lease time; give a duration of at least a second such as `90s` or `2m`"
            ))),
        },
    }
}

/// How often a holder renews a lease of time `ttl`: three beats before it expires.
fn heartbeat(ttl: Duration) -> Duration {
    ttl / 3
}

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

/// Whether the holder of a lease is gone, as far as this host can tell by its pid.
/// Never on PostgreSQL: there a dead holder is recovered by time alone.
fn holder_gone(store: &Store, row: &LeaseRow, host: &str) -> bool {
    !store.is_pg() && holder_gone_here(row, host)
}

/// Whether the holder of a lease is a process of this host (not this one) that is gone.
fn holder_gone_here(row: &LeaseRow, host: &str) -> bool {
    row.host == host && row.pid != std::process::id() && process_gone(row.pid)
}

/// Mark incomplete the runs left `running` by a process that died holding its suite's lease
/// (on any host): their suite's lease expired, or is gone, a lease time ago. This is how a
/// run killed on another host is recovered; those of this host's dead pids are found sooner
/// by `reap_dead_runs` (SQLite).
pub(crate) fn reap_leaseless_runs(store: &mut Store, printer: Printer) -> anyhow::Result<()> {
    // Most opens find nothing running: they write nothing.
    if store.running_runs()?.is_empty() {
        return Ok(());
    }
    let now = store.clock_now()?;
    let stale = now - TimeDelta::from_std(lease_ttl()?).unwrap_or(TimeDelta::seconds(90));
    for (run_id, pid, host) in store.reap_leaseless_runs(now, stale)? {
        printer.detail(&format!(
            "run {run_id} (pid {pid} on {host}) was left running and its lease expired: marked incomplete"
        ));
    }
    Ok(())
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
    let now = store.clock_now()?;
    match store
        .leases()?
        .into_iter()
        .find(|row| row.suite == suite.name)
    {
        Some(row) if row.expires_at > now && !holder_gone(store, &row, &host) => {
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
    let ttl = lease_ttl()?;
    let now = store.clock_now()?;
    let pid_check = !store.is_pg();
    let taken = store.take_lease(&suite.name, &token, pid, &host, now, ttl, |row| {
        pid_check && holder_gone_here(row, &host)
    })?;
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
                if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    rx.recv_timeout(heartbeat(ttl))
                {
                    // A lost lease (expired and taken over) stays lost; a store error is
                    // retried at the next beat.
                    let now = beat.clock_now().unwrap_or_else(|_| Utc::now());
                    let _ = beat.renew_lease(&name, &token, now, ttl);
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
