//! `schedule --once`: run whatever is due now and exit (cron, Kubernetes CronJob, CI).

use chrono::{DateTime, Utc};

use super::Settings;
use super::daemon::AppHost;
use super::judge::Unschedulable;
use crate::app::{Ctx, Failure, exit};
use crate::schedule::daemon::{self, Entry, Event, Host};

/// Run whatever is due now, then exit.
pub(super) fn once(ctx: &Ctx, settings: &Settings) -> anyhow::Result<u8> {
    let mut host = AppHost::new(ctx, &settings.paths, settings.now)?;
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
    let report = daemon::tick(&mut host, &entries, &settings.policy_now());
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
    Err(Failure {
        code,
        message: format!(
            "schedule --once: {} and did not run (the others did): {}",
            Unschedulable::count(&invalid),
            Unschedulable::fix(&invalid)
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
