//! Scheduling: cron parsing and next-fire computation (pure), and the daemon loop.
//!
//! Everything here takes the time as an argument: nothing reads the clock, so the
//! arithmetic (cron edge cases, time zones across daylight-saving changes, catch-up and
//! skip) is tested with an injected clock. The loop in [`daemon`] drives a [`daemon::Host`]
//! that the app implements with the real clock, store and runner.
//!
//! ## When is a suite due?
//!
//! A *window* is a fire time of the suite's cron expression, in its time zone. A window is
//! *handled* once a fire record says so (ran, missed, skipped, busy, failed) or a run of the
//! suite (any run, manual ones included, except an interrupted one) started at or after it.
//! At a given `now`, the windows after the last handled one up to `now` are pending: all but
//! the latest are *missed* (recorded, never run), and the latest is run, unless it is late
//! by more than the grace period and the catch-up policy is `skip`, in which case it is
//! recorded as skipped. A suite the scheduler has never seen has one pending window at
//! most: the latest one.

pub mod daemon;

use std::fmt::{self, Write as _};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// At most this many missed windows are listed one by one; more are only counted.
pub const MAX_LISTED_WINDOWS: usize = 1000;

/// Failures of schedule parsing. Messages read after "failed to ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "read schedule `{expr}`: {reason}; use 5 cron fields (`0 6 * * *`) or @hourly, @daily, @weekly, @monthly, @yearly"
    )]
    Cron { expr: String, reason: String },
    #[error("read timezone `{0}`: not an IANA time zone name (like `Europe/Berlin` or `UTC`)")]
    Timezone(String),
    #[error("read duration `{0}`: use a number with a unit, like `90s`, `5m`, `1h` or `1h30m`")]
    Duration(String),
    #[error("read catch-up policy `{0}`: use `once` or `skip`")]
    CatchUp(String),
}

/// The five cron fields: name and range of their numbers.
const FIELDS: [(&str, u32, u32); 5] = [
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
];

/// Numbers of one cron field within its range (`*`, lists, ranges, steps; names such as
/// `mon` or `jan` are left to the cron parser), said in our words: "minute 99 is out of
/// range 0-59".
fn check_field(text: &str, name: &str, lo: u32, hi: u32) -> Result<(), String> {
    for item in text.split(',') {
        // Names (`mon`, `jan`) and croner's `L`, `W` and `#` are the parser's to judge.
        if !item
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '*' | '?' | '-' | '/'))
        {
            continue;
        }
        let (span, step) = match item.split_once('/') {
            Some((span, step)) => (span, Some(step)),
            None => (item, None),
        };
        if let Some(step) = step {
            match step.parse::<u32>() {
                Ok(0) => return Err(format!("the {name} step in `{item}` is 0")),
                Ok(_) => {}
                Err(_) => {
                    return Err(format!("the {name} step in `{item}` is not a whole number"));
                }
            }
        }
        let bounds: Vec<&str> = match span {
            "*" | "?" => Vec::new(),
            s => s.split('-').collect(),
        };
        if bounds.len() > 2 || bounds.iter().any(|b| b.is_empty()) {
            return Err(format!(
                "the {name} field `{text}` is not a value, a range or a list"
            ));
        }
        let mut numbers = Vec::new();
        for b in &bounds {
            match b.parse::<u32>() {
                Ok(n) if (lo..=hi).contains(&n) => numbers.push(n),
                Ok(_) => return Err(format!("{name} {b} is out of range {lo}-{hi}")),
                Err(_) => {
                    return Err(format!(
                        "the {name} field `{text}` holds `{b}`, not a number"
                    ));
                }
            }
        }
        if let [from, to] = numbers[..]
            && from > to
        {
            return Err(format!("the {name} range {from}-{to} runs backwards"));
        }
    }
    Ok(())
}

/// A suite's cron expression in its time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    expr: String,
    tz: Tz,
    cron: Cron,
}

impl Schedule {
    /// Parse 5 cron fields (minute hour day-of-month month day-of-week, as Vixie cron: when
    /// both day fields are restricted, either matches) or a nickname (`@hourly`, `@daily`,
    /// `@midnight`, `@weekly`, `@monthly`, `@yearly`, `@annually`), in `timezone` (an IANA
    /// name; default UTC).
    pub fn parse(expr: &str, timezone: Option<&str>) -> Result<Self, ScheduleError> {
        let tz = match timezone.map(str::trim) {
            None | Some("") => Tz::UTC,
            Some(name) => name
                .parse::<Tz>()
                .map_err(|_| ScheduleError::Timezone(name.to_owned()))?,
        };
        let trimmed = expr.trim();
        let err = |reason: String| ScheduleError::Cron {
            expr: expr.to_owned(),
            reason,
        };
        let pattern = if trimmed.starts_with('@') {
            match trimmed.to_ascii_lowercase().as_str() {
                "@midnight" => "@daily".to_owned(),
                n @ ("@hourly" | "@daily" | "@weekly" | "@monthly" | "@yearly" | "@annually") => {
                    n.to_owned()
                }
                _ => return Err(err("unknown nickname".into())),
            }
        } else {
            let fields: Vec<&str> = trimmed.split_whitespace().collect();
            if fields.len() != 5 {
                return Err(err(format!("it has {} fields, not 5", fields.len())));
            }
            for (text, (name, lo, hi)) in fields.iter().zip(FIELDS) {
                check_field(text, name, lo, hi).map_err(&err)?;
            }
            trimmed.to_owned()
        };
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(&pattern)
            .map_err(|e| {
                err(e
                    .to_string()
                    .to_lowercase()
                    .trim_end_matches('.')
                    .to_owned())
            })?;
        let schedule = Self {
            expr: trimmed.to_owned(),
            tz,
            cron,
        };
        // A date no month has (`31 2`, `30 2`, `31 4`) parses, and would never be scheduled
        // without a word: croner looks years ahead and finds nothing.
        if schedule.next_after(Utc::now()).is_none() {
            return Err(err(
                "it never fires: no date matches its day and month fields (February has no 30th or 31st; April, June, September and November no 31st)".into(),
            ));
        }
        Ok(schedule)
    }

    /// The expression as written (trimmed).
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The time zone the expression is read in.
    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The first fire time strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&t.with_timezone(&self.tz), false)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// The latest fire time at or before `t`.
    pub fn latest_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_previous_occurrence(&t.with_timezone(&self.tz), true)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// The next `n` fire times strictly after `t`.
    pub fn upcoming(&self, t: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n);
        let mut at = t;
        while out.len() < n {
            match self.next_after(at) {
                Some(next) => {
                    out.push(next);
                    at = next;
                }
                None => break,
            }
        }
        out
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.expr, self.tz.name())
    }
}

pub use crate::model::CatchUp;

impl FromStr for CatchUp {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "once" => Ok(Self::Once),
            "skip" => Ok(Self::Skip),
            other => Err(ScheduleError::CatchUp(other.to_owned())),
        }
    }
}

/// How the scheduler treats due and late windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub catch_up: CatchUp,
    /// A window started later than this after its fire time (plus jitter) is late.
    pub grace: Duration,
    /// Each window of a suite starts up to this much after its fire time (a stable offset
    /// per suite and window, so that suites on the same cron do not all start at once).
    pub jitter: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            catch_up: CatchUp::Once,
            grace: Duration::from_secs(15 * 60),
            jitter: Duration::ZERO,
        }
    }
}

/// `90s`, `5m`, `1h`, `1h30m`, `1.5h`, `2d`, `0` (every form of [`crate::model::duration`]), in
/// whole seconds: a fraction of a second is dropped.
pub fn parse_duration(s: &str) -> Result<Duration, ScheduleError> {
    crate::model::duration::parse(s)
        .map(|d| Duration::from_secs(d.as_secs()))
        .ok_or_else(|| ScheduleError::Duration(s.to_owned()))
}

/// A duration as `parse_duration` reads it back (`1h30m`, `45s`, `0s`).
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            let _ = write!(out, "{}{unit}", secs / size);
            secs %= size;
        }
    }
    out
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// The jitter offset of one window of one suite: stable (a hash of both), in `[0, max)`,
/// whole seconds. Two daemons compute the same offset.
pub fn jitter_offset(suite: &str, window: DateTime<Utc>, max: Duration) -> Duration {
    let max = max.as_secs();
    if max == 0 {
        return Duration::ZERO;
    }
    // FNV-1a over the suite name and the window's timestamp.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in suite
        .as_bytes()
        .iter()
        .chain(window.timestamp().to_le_bytes().iter())
    {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    Duration::from_secs(h % max)
}

/// When a window starts: its fire time plus the suite's jitter offset.
pub fn start_time(suite: &str, window: DateTime<Utc>, policy: &Policy) -> DateTime<Utc> {
    window + delta(jitter_offset(suite, window, policy.jitter))
}

/// What to do about a suite now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing pending.
    Idle,
    /// A window is pending but its jittered start lies ahead.
    Wait {
        window: DateTime<Utc>,
        until: DateTime<Utc>,
    },
    /// Run for `window`; `late` when it starts after the grace period (a catch-up).
    Run { window: DateTime<Utc>, late: bool },
    /// The window is late and the policy is `skip`: record it, run nothing.
    Skip { window: DateTime<Utc> },
}

/// The scheduler's verdict for one suite at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    /// Windows that passed with no run, before the one acted on: to record as missed.
    pub missed: Vec<DateTime<Utc>>,
    /// Missed windows beyond [`MAX_LISTED_WINDOWS`], counted only.
    pub more_missed: u64,
    /// The first fire time strictly after `now`.
    pub next: Option<DateTime<Utc>>,
}

impl Decision {
    /// When the daemon must look at this suite again: the pending start, or the jittered
    /// start of the next window.
    pub fn wake_at(&self, suite: &str, policy: &Policy) -> Option<DateTime<Utc>> {
        match self.action {
            Action::Wait { until, .. } => Some(until),
            _ => self.next.map(|n| start_time(suite, n, policy)),
        }
    }
}

/// Decide what to do about `suite` at `now`, given the latest handled instant (the latest
/// handled window, or the start of the latest run that counts).
pub fn decide(
    suite: &str,
    schedule: &Schedule,
    handled: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Decision {
    let next = schedule.next_after(now);
    let idle = Decision {
        action: Action::Idle,
        missed: Vec::new(),
        more_missed: 0,
        next,
    };
    let Some(latest) = schedule.latest_at_or_before(now) else {
        return idle;
    };
    if handled.is_some_and(|h| h >= latest) {
        return idle;
    }
    let mut missed = Vec::new();
    let mut more_missed = 0u64;
    if let Some(h) = handled {
        let mut at = h;
        while let Some(w) = schedule.next_after(at) {
            if w >= latest {
                break;
            }
            if missed.len() < MAX_LISTED_WINDOWS {
                missed.push(w);
                at = w;
            } else {
                // Too many to list: count the rest without walking them one by one when
                // the gap is huge (a minutely cron down for a year).
                more_missed = count_between(schedule, w, latest);
                break;
            }
        }
    }
    let start = start_time(suite, latest, policy);
    let action = if now < start {
        Action::Wait {
            window: latest,
            until: start,
        }
    } else if now - start <= delta(policy.grace) {
        Action::Run {
            window: latest,
            late: false,
        }
    } else {
        match policy.catch_up {
            CatchUp::Once => Action::Run {
                window: latest,
                late: true,
            },
            CatchUp::Skip => Action::Skip { window: latest },
        }
    };
    Decision {
        action,
        missed,
        more_missed,
        next,
    }
}

/// Windows in `[from, before)`, counted up to a bound (then estimated from the spacing of
/// the first ones).
fn count_between(schedule: &Schedule, from: DateTime<Utc>, before: DateTime<Utc>) -> u64 {
    const WALK: u64 = 10_000;
    let mut n = 0u64;
    let mut at = from;
    while at < before {
        n += 1;
        if n == WALK {
            let span = (at - from).num_seconds().max(1);
            let rest = (before - at).num_seconds().max(0);
            let per = span as f64 / (WALK - 1) as f64;
            return n + (rest as f64 / per.max(1.0)) as u64;
        }
        match schedule.next_after(at) {
            Some(w) => at = w,
            None => break,
        }
    }
    n
}

/// The first window that passed with no run since `last_run` (the start of the latest run
/// that counts) and is now later than `grace`: the suite is overdue since then. `None`
/// when the suite is on time. Feeds `schedule status` and the `missed_run` alert.
pub fn overdue_since(
    schedule: &Schedule,
    last_run: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    grace: Duration,
) -> Option<DateTime<Utc>> {
    let latest = schedule.latest_at_or_before(now)?;
    let first_unrun = match last_run {
        Some(r) if r >= latest => return None,
        Some(r) => schedule.next_after(r).filter(|w| *w <= latest)?,
        None => latest,
    };
    (now - first_unrun > delta(grace)).then_some(first_unrun)
}

#[cfg(test)]
mod tests;
