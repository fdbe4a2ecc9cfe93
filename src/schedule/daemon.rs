//! The scheduler loop, over a [`Host`] that owns the clock, the store and the runner.
//!
//! [`tick`] looks at every suite once: records missed and skipped windows, runs what is due
//! (one suite after another: the decisions are all taken when the tick starts, so a long
//! run does not make the next suite "late"), and says when to look again. [`daemon`] loops
//! ticks, re-reading the suites when they change, until the host is asked to stop.
//!
//! Several schedulers may share one store (daemons and `--once` on many hosts, on a
//! PostgreSQL store): each window is claimed ([`Host::claim`]) before it is run or recorded,
//! and only the scheduler whose claim wins handles it; the others log `window_claimed`.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::{Action, Policy, Schedule, decide};

/// One scheduled suite.
#[derive(Debug, Clone)]
pub struct Entry {
    pub suite: String,
    pub file: PathBuf,
    pub schedule: Schedule,
    /// The suite's own `catch_up:`, over the scheduler's.
    pub catch_up: Option<super::CatchUp>,
    /// The suite's own `jitter:`, over the scheduler's (the daemon's entries only: `--once`
    /// starts due suites at once).
    pub jitter: Option<Duration>,
}

impl Entry {
    /// The policy for this suite: the scheduler's, with the suite's own settings over it.
    #[must_use]
    pub fn policy(&self, base: &Policy) -> Policy {
        Policy {
            catch_up: self.catch_up.unwrap_or(base.catch_up),
            jitter: self.jitter.unwrap_or(base.jitter),
            ..*base
        }
    }
}

/// How a window was handled, as recorded in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The suite ran for this window (whatever its result).
    Ran,
    /// The window passed with no run (the scheduler was down or busy); a later window ran
    /// or was skipped instead.
    Missed,
    /// The window was late and the policy is `skip`.
    Skipped,
    /// The suite was already running (another daemon or a manual `run` held its lease).
    Busy,
    /// The run could not start (invalid suite or config, store failure).
    Failed,
    /// The run was interrupted (SIGTERM, Ctrl-C); the window stays pending.
    Interrupted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ran => "ran",
            Self::Missed => "missed",
            Self::Skipped => "skipped",
            Self::Busy => "busy",
            Self::Failed => "failed",
            Self::Interrupted => "interrupted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ran" => Self::Ran,
            "missed" => Self::Missed,
            "skipped" => Self::Skipped,
            "busy" => Self::Busy,
            "failed" => Self::Failed,
            "interrupted" => Self::Interrupted,
            _ => return None,
        })
    }

    /// Whether a window with this outcome is done with (an interrupted one is retried).
    pub fn handles_window(self) -> bool {
        self != Self::Interrupted
    }
}

/// A fire record: what happened to one window of one suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fire {
    pub suite: String,
    pub window: DateTime<Utc>,
    pub fired_at: DateTime<Utc>,
    pub outcome: Outcome,
    pub run_id: Option<String>,
    pub detail: Option<String>,
}

/// What running a suite came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    pub outcome: Outcome,
    /// The process exit code the run would have had (0, 1, 2, 3, 130).
    pub code: u8,
    pub run_id: Option<String>,
    pub detail: Option<String>,
}

/// One structured event (one JSON log line).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event: &'static str,
    pub suite: Option<String>,
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl Event {
    pub fn new(event: &'static str) -> Self {
        Self {
            event,
            suite: None,
            fields: serde_json::Map::new(),
        }
    }

    #[must_use]
    pub fn suite(mut self, suite: &str) -> Self {
        self.suite = Some(suite.to_owned());
        self
    }

    #[must_use]
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.fields.insert(key.to_owned(), value.into());
        self
    }

    #[must_use]
    pub fn at(self, key: &str, t: DateTime<Utc>) -> Self {
        self.with(key, rfc3339(t))
    }

    /// The JSON line: `ts`, `level`, `event`, `suite`, then the fields.
    pub fn to_json(&self, ts: DateTime<Utc>) -> String {
        let mut m = serde_json::Map::new();
        m.insert("ts".into(), rfc3339(ts).into());
        m.insert("level".into(), self.level().into());
        m.insert("event".into(), self.event.into());
        if let Some(s) = &self.suite {
            m.insert("suite".into(), s.clone().into());
        }
        for (k, v) in &self.fields {
            m.insert(k.clone(), v.clone());
        }
        serde_json::Value::Object(m).to_string()
    }

    fn level(&self) -> &'static str {
        match self.event {
            "error" | "run_failed" | "suites_invalid" | "suite_invalid" => "error",
            "window_missed" | "window_skipped" | "busy" => "warn",
            _ => "info",
        }
    }
}

/// RFC 3339 in UTC, whole seconds.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The world the scheduler acts on.
pub trait Host {
    fn now(&mut self) -> DateTime<Utc>;
    /// Whether a stop was asked for (SIGTERM, Ctrl-C).
    fn stop_requested(&mut self) -> bool;
    /// Wait until `until`, or less when a stop is asked for.
    fn sleep_until(&mut self, until: DateTime<Utc>);
    /// The suites, when they changed since the last call (`None`: unchanged or unreadable,
    /// keep the ones you have; the host logs why).
    fn reload(&mut self) -> Option<Vec<Entry>>;
    /// The latest handled instant of a suite (see the module docs).
    fn handled(&mut self, suite: &str) -> Result<Option<DateTime<Utc>>, String>;
    /// Claim a window before handling it (running it, or recording it missed or skipped):
    /// of several schedulers on one store, one handles each window. The claim is done (or
    /// given back, for an interrupted run) when the window's fire is recorded.
    fn claim(&mut self, _suite: &str, _window: DateTime<Utc>) -> Result<Claim, String> {
        Ok(Claim::Ours)
    }
    fn record(&mut self, fire: &Fire) -> Result<(), String>;
    fn run(&mut self, entry: &Entry, window: DateTime<Utc>) -> RunReport;
    fn log(&mut self, event: Event);
}

/// Who handles a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This scheduler: it runs or records the window.
    Ours,
    /// Another scheduler (`host`) has it, or had it and recorded it.
    Elsewhere { host: String, done: bool },
}

/// Whether this scheduler handles `window` of `suite`; a store error is logged and the
/// window left for a later tick.
fn claimed(host: &mut impl Host, suite: &str, window: DateTime<Utc>) -> Option<Claim> {
    match host.claim(suite, window) {
        Ok(c) => Some(c),
        Err(e) => {
            host.log(
                Event::new("error")
                    .suite(suite)
                    .at("window", window)
                    .with("message", format!("failed to claim the window: {e}")),
            );
            None
        }
    }
}

/// What a tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// (suite, report) of each run started.
    pub runs: Vec<(String, RunReport)>,
    /// When to look again (the earliest wake of any suite).
    pub wake_at: Option<DateTime<Utc>>,
    /// A run was interrupted or a stop was asked for: do not start anything else.
    pub stopped: bool,
}

impl TickReport {
    /// The exit code of `--once`: 130 when interrupted, else the worst run's code
    /// (3 over 2 over 1 over 0); busy suites count as 0.
    pub fn exit_code(&self) -> u8 {
        if self.stopped
            && self
                .runs
                .iter()
                .any(|(_, r)| r.outcome == Outcome::Interrupted)
        {
            return 130;
        }
        self.runs
            .iter()
            .map(|(_, r)| {
                if r.outcome == Outcome::Busy {
                    0
                } else {
                    r.code
                }
            })
            .max()
            .unwrap_or(0)
    }
}

fn record_or_log(host: &mut impl Host, fire: &Fire) {
    if let Err(e) = host.record(fire) {
        host.log(
            Event::new("error")
                .suite(&fire.suite)
                .with("message", format!("failed to record a fire: {e}")),
        );
    }
}

/// Look at every suite once at the host's `now`: record missed and skipped windows, run the
/// due suites, and compute the next wake.
pub fn tick(host: &mut impl Host, entries: &[Entry], policy: &Policy) -> TickReport {
    let now = host.now();
    let mut report = TickReport::default();
    let mut due = Vec::new();
    for entry in entries {
        let policy = &entry.policy(policy);
        let handled = match host.handled(&entry.suite) {
            Ok(h) => h,
            Err(e) => {
                host.log(
                    Event::new("error")
                        .suite(&entry.suite)
                        .with("message", format!("failed to read its history: {e}")),
                );
                continue;
            }
        };
        let decision = decide(&entry.suite, &entry.schedule, handled, now, policy);
        for w in &decision.missed {
            if claimed(host, &entry.suite, *w) != Some(Claim::Ours) {
                continue;
            }
            host.log(
                Event::new("window_missed")
                    .suite(&entry.suite)
                    .at("window", *w),
            );
            record_or_log(
                host,
                &Fire {
                    suite: entry.suite.clone(),
                    window: *w,
                    fired_at: now,
                    outcome: Outcome::Missed,
                    run_id: None,
                    detail: None,
                },
            );
        }
        if decision.more_missed > 0 {
            host.log(
                Event::new("window_missed")
                    .suite(&entry.suite)
                    .with("more", decision.more_missed)
                    .with("message", "more missed windows, not recorded one by one"),
            );
        }
        match decision.action {
            Action::Idle | Action::Wait { .. } => {}
            Action::Skip { window } if claimed(host, &entry.suite, window) != Some(Claim::Ours) => {
            }
            Action::Skip { window } => {
                host.log(
                    Event::new("window_skipped")
                        .suite(&entry.suite)
                        .at("window", window)
                        .with("catch_up", policy.catch_up.as_str()),
                );
                record_or_log(
                    host,
                    &Fire {
                        suite: entry.suite.clone(),
                        window,
                        fired_at: now,
                        outcome: Outcome::Skipped,
                        run_id: None,
                        detail: Some(format!(
                            "late by more than the grace period of {}",
                            super::format_duration(policy.grace)
                        )),
                    },
                );
            }
            Action::Run { window, late } => due.push((entry, window, late)),
        }
        // After a run or a skip the next wake is that of the next window.
        let wake = match decision.action {
            Action::Wait { until, .. } => Some(until),
            _ => decision
                .next
                .map(|n| super::start_time(&entry.suite, n, policy)),
        };
        report.wake_at = earliest(report.wake_at, wake);
    }
    for (entry, window, late) in due {
        if host.stop_requested() {
            report.stopped = true;
            break;
        }
        match claimed(host, &entry.suite, window) {
            Some(Claim::Ours) => {}
            Some(Claim::Elsewhere { host: by, done }) => {
                host.log(
                    Event::new("window_claimed")
                        .suite(&entry.suite)
                        .at("window", window)
                        .with("host", by)
                        .with("done", done)
                        .with("message", "another scheduler handles this window"),
                );
                continue;
            }
            None => continue,
        }
        host.log(
            Event::new("run_started")
                .suite(&entry.suite)
                .at("window", window)
                .with("late", late)
                .with("file", entry.file.display().to_string()),
        );
        let run = host.run(entry, window);
        let fired_at = host.now();
        let mut ev = Event::new(match run.outcome {
            Outcome::Busy => "busy",
            Outcome::Failed => "run_failed",
            Outcome::Interrupted => "run_interrupted",
            _ => "run_finished",
        })
        .suite(&entry.suite)
        .at("window", window)
        .with("exit_code", run.code);
        if let Some(id) = &run.run_id {
            ev = ev.with("run_id", id.clone());
        }
        if let Some(d) = &run.detail {
            ev = ev.with("message", d.clone());
        }
        host.log(ev);
        record_or_log(
            host,
            &Fire {
                suite: entry.suite.clone(),
                window,
                fired_at,
                outcome: run.outcome,
                run_id: run.run_id.clone(),
                detail: run.detail.clone(),
            },
        );
        let interrupted = run.outcome == Outcome::Interrupted;
        report.runs.push((entry.suite.clone(), run));
        if interrupted {
            report.stopped = true;
            break;
        }
    }
    if host.stop_requested() {
        report.stopped = true;
    }
    report
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// How the daemon ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// A stop was asked for while idle.
    Requested,
    /// A stop was asked for during a run, which was kept and marked incomplete.
    Interrupted,
}

/// The daemon: tick, sleep until the next wake (at most `poll`, to notice changed suite
/// files), repeat, until a stop is asked for.
pub fn daemon(host: &mut impl Host, policy: &Policy, poll: Duration) -> Stop {
    let poll =
        TimeDelta::from_std(poll.max(Duration::from_secs(1))).unwrap_or(TimeDelta::seconds(30));
    let mut entries: Vec<Entry> = Vec::new();
    host.log(
        Event::new("daemon_started")
            .with("catch_up", policy.catch_up.as_str())
            .with("grace", super::format_duration(policy.grace))
            .with("jitter", super::format_duration(policy.jitter)),
    );
    loop {
        if host.stop_requested() {
            host.log(Event::new("daemon_stopped").with("reason", "signal"));
            return Stop::Requested;
        }
        if let Some(new) = host.reload() {
            host.log(
                Event::new("suites_loaded")
                    .with(
                        "suites",
                        new.iter()
                            .map(|e| serde_json::Value::from(e.suite.clone()))
                            .collect::<Vec<_>>(),
                    )
                    .with("count", new.len()),
            );
            entries = new;
        }
        let report = tick(host, &entries, policy);
        if report.stopped {
            let interrupted = report
                .runs
                .iter()
                .any(|(_, r)| r.outcome == Outcome::Interrupted);
            host.log(Event::new("daemon_stopped").with(
                "reason",
                if interrupted {
                    "signal during a run (kept, marked incomplete)"
                } else {
                    "signal"
                },
            ));
            return if interrupted {
                Stop::Interrupted
            } else {
                Stop::Requested
            };
        }
        let now = host.now();
        let until = report
            .wake_at
            .map_or(now + poll, |w| w.min(now + poll))
            .max(now);
        if let Some(w) = report.wake_at.filter(|w| *w <= now + poll) {
            host.log(Event::new("sleeping").at("until", w));
        }
        host.sleep_until(until);
    }
}
