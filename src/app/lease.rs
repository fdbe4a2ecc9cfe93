//! The lease that keeps a suite from overlapping itself: a row per suite in the store,
//! taken in an immediate transaction by every run (manual or scheduled), renewed by a
//! heartbeat thread, released when the run is stored (or the lease dropped), and taken over
//! when its holder died (its pid is gone from this host, or its heartbeat expired).

use std::path::Path;
use std::time::Duration;

use chrono::Utc;

use crate::app::{Ctx, host_name};
use crate::model::Suite;
use crate::schedule::daemon;
use crate::store::{LeaseRow, Store};

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
