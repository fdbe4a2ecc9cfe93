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
//!
//! The lease itself is `app::lease`, shared with `run` (which takes it). The files: `judge`
//! (which suites can be scheduled) and
//! `unschedulable` (the alert of those that cannot), `daemon` (the long-running loop, and the
//! real world that it and `--once` act on), `once`, `list` (`--list` and `status`), `emit`.

mod daemon;
mod emit;
mod judge;
mod list;
mod once;
mod unschedulable;

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};

pub use self::unschedulable::UNSCHEDULABLE;
pub use super::lease::{LEASE_TTL, Lease, LeaseHeld, check_lease, lease};
use super::{Ctx, Failure};
use crate::cli::ReadFormat;
use crate::cli::schedule::{ScheduleArgs, ScheduleCommand};
use crate::schedule::{CatchUp, Policy};

/// What `schedule` (the daemon, `--once`, `--list`) and `schedule status` were asked,
/// resolved from the command line once.
#[derive(Debug, Clone)]
struct Settings {
    /// Suite files or folders (empty: the project's `suites/`).
    paths: Vec<PathBuf>,
    /// Catch-up, grace and jitter (the jitter applies to the daemon only).
    policy: Policy,
    /// How many next fire times `--list` shows.
    count: usize,
    /// How often the daemon looks for changed suite files.
    poll: Duration,
    format: ReadFormat,
    /// The fixed clock of `--once`, `--list` and `status` (tests).
    now: Option<DateTime<Utc>>,
}

impl Settings {
    fn from_args(args: &ScheduleArgs) -> Self {
        Self {
            paths: args.paths.clone(),
            policy: Policy {
                catch_up: args.catch_up,
                grace: args.grace,
                jitter: args.jitter,
            },
            count: args.count,
            poll: args.poll,
            format: args.format,
            now: args.now,
        }
    }

    /// `schedule status`: the next fire only, and a missed window counts as due once.
    fn status(
        paths: &[PathBuf],
        grace: Duration,
        format: ReadFormat,
        now: Option<DateTime<Utc>>,
    ) -> Self {
        Self {
            paths: paths.to_vec(),
            policy: Policy {
                catch_up: CatchUp::Once,
                grace,
                jitter: Duration::ZERO,
            },
            count: 1,
            poll: Duration::ZERO,
            format,
            now,
        }
    }

    /// The policy without jitter: `--once`, `--list` and `status` start or show what is
    /// due at once.
    fn policy_now(&self) -> Policy {
        Policy {
            jitter: Duration::ZERO,
            ..self.policy
        }
    }
}

pub fn run(ctx: &Ctx, args: &ScheduleArgs) -> anyhow::Result<u8> {
    match &args.command {
        Some(ScheduleCommand::Status {
            paths,
            grace,
            format,
            now,
        }) => list::status(ctx, &Settings::status(paths, *grace, *format, *now)),
        Some(ScheduleCommand::Emit {
            target,
            paths,
            every,
            release_url,
            out,
        }) => emit::emit(
            ctx,
            *target,
            paths,
            every,
            release_url.as_deref(),
            out.as_deref(),
        ),
        None if args.list => list::list(ctx, &Settings::from_args(args)),
        None if args.once => once::once(ctx, &Settings::from_args(args)),
        None => {
            if args.now.is_some() {
                return Err(Failure::invalid(
                    "read --now: only `--once`, `--list` and `status` take it (it is for tests)",
                ));
            }
            daemon::run_daemon(ctx, &Settings::from_args(args))
        }
    }
}
