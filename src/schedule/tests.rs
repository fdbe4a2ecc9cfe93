use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::daemon::{self, Entry, Event, Fire, Host, Outcome, RunReport, Stop};
use super::*;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("bad time {s}: {e}"))
        .with_timezone(&Utc)
}

fn sched(expr: &str, tz: Option<&str>) -> Schedule {
    Schedule::parse(expr, tz).unwrap_or_else(|e| panic!("{expr}: {e}"))
}

fn fmt(ts: &[DateTime<Utc>]) -> Vec<String> {
    ts.iter().map(|t| daemon::rfc3339(*t)).collect()
}

// ---- parsing --------------------------------------------------------------------------

#[test]
fn five_fields_and_nicknames_parse() {
    for ok in [
        "0 6 * * *",
        "*/15 * * * *",
        "0 9-17 * * MON-FRI",
        "0 0 1,15 * *",
        "@hourly",
        "@daily",
        "@midnight",
        "@weekly",
        "@monthly",
        "@yearly",
        "@annually",
        " @DAILY ",
    ] {
        assert!(Schedule::parse(ok, None).is_ok(), "{ok}");
    }
}

#[test]
fn malformed_expressions_are_rejected_with_the_reason() {
    for (bad, needle) in [
        ("", "0 fields"),
        ("0 6 * *", "4 fields"),
        ("0 0 6 * * *", "6 fields"),
        ("0 0 6 * * * 2030", "7 fields"),
        ("61 * * * *", "read schedule `61 * * * *`"),
        ("0 24 * * *", "read schedule"),
        ("0 0 32 * *", "read schedule"),
        ("0 0 * 13 *", "read schedule"),
        ("x y z w v", "read schedule"),
        ("@every 5m", "unknown nickname"),
        ("@reboot", "unknown nickname"),
        ("0 6 31 2 *", "never fires"),
        ("0 6 30 2 *", "never fires"),
        ("0 6 31 4,6 *", "never fires"),
    ] {
        let err = Schedule::parse(bad, None).expect_err(bad).to_string();
        assert!(err.contains(needle), "{bad}: {err}");
        assert!(err.contains("5 cron fields"), "{err}");
    }
}

#[test]
fn unknown_timezones_are_rejected() {
    let err = Schedule::parse("0 6 * * *", Some("Mars/Olympus")).expect_err("tz");
    assert_eq!(err, ScheduleError::Timezone("Mars/Olympus".into()));
    assert_eq!(sched("0 6 * * *", Some("")).timezone(), chrono_tz::Tz::UTC);
    assert_eq!(sched("0 6 * * *", None).timezone(), chrono_tz::Tz::UTC);
    assert_eq!(
        sched("0 6 * * *", Some("Europe/Berlin")).timezone(),
        chrono_tz::Tz::Europe__Berlin
    );
}

// ---- cron arithmetic ------------------------------------------------------------------

#[test]
fn next_is_strictly_after_and_latest_is_inclusive() {
    let s = sched("*/15 * * * *", None);
    let t = utc("2030-01-01T10:15:00Z");
    assert_eq!(s.next_after(t), Some(utc("2030-01-01T10:30:00Z")));
    assert_eq!(s.latest_at_or_before(t), Some(t));
    let t2 = utc("2030-01-01T10:14:59Z");
    assert_eq!(s.next_after(t2), Some(utc("2030-01-01T10:15:00Z")));
    assert_eq!(s.latest_at_or_before(t2), Some(utc("2030-01-01T10:00:00Z")));
}

#[test]
fn day_31_skips_short_months() {
    let s = sched("0 0 31 * *", None);
    assert_eq!(
        fmt(&s.upcoming(utc("2030-01-31T00:00:00Z"), 3)),
        [
            "2030-03-31T00:00:00Z",
            "2030-05-31T00:00:00Z",
            "2030-07-31T00:00:00Z"
        ]
    );
}

#[test]
fn a_date_some_month_has_is_accepted_with_the_short_months_skipped() {
    // Vixie cron: a restricted weekday makes `31 2` fire on February's Mondays.
    for ok in ["0 6 31 1-2 *", "0 6 31 2 mon", "0 6 29 2 *", "0 6 L 2 *"] {
        assert!(
            !sched(ok, None)
                .upcoming(utc("2030-01-01T00:00:00Z"), 2)
                .is_empty(),
            "{ok}"
        );
    }
}

#[test]
fn february_29_waits_for_a_leap_year() {
    let s = sched("0 12 29 2 *", None);
    assert_eq!(
        s.next_after(utc("2030-03-01T00:00:00Z")),
        Some(utc("2032-02-29T12:00:00Z"))
    );
}

#[test]
fn restricted_day_of_month_and_weekday_match_either_as_vixie_cron() {
    // Fridays, and the 13th (2030-10-13 is a Sunday).
    let s = sched("0 0 13 * 5", None);
    assert_eq!(
        fmt(&s.upcoming(utc("2030-10-05T00:00:00Z"), 3)),
        [
            "2030-10-11T00:00:00Z",
            "2030-10-13T00:00:00Z",
            "2030-10-18T00:00:00Z"
        ]
    );
}

#[test]
fn nicknames_mean_what_cron_means() {
    let t = utc("2030-05-15T10:20:00Z");
    assert_eq!(
        sched("@hourly", None).next_after(t),
        Some(utc("2030-05-15T11:00:00Z"))
    );
    assert_eq!(
        sched("@daily", None).next_after(t),
        Some(utc("2030-05-16T00:00:00Z"))
    );
    assert_eq!(
        sched("@midnight", None).next_after(t),
        Some(utc("2030-05-16T00:00:00Z"))
    );
    // 2030-05-19 is a Sunday.
    assert_eq!(
        sched("@weekly", None).next_after(t),
        Some(utc("2030-05-19T00:00:00Z"))
    );
    assert_eq!(
        sched("@monthly", None).next_after(t),
        Some(utc("2030-06-01T00:00:00Z"))
    );
    assert_eq!(
        sched("@yearly", None).next_after(t),
        Some(utc("2031-01-01T00:00:00Z"))
    );
}

#[test]
fn a_daily_time_in_berlin_follows_summer_time() {
    let s = sched("0 6 * * *", Some("Europe/Berlin"));
    // 06:00 CET is 05:00 UTC; 06:00 CEST is 04:00 UTC. Summer time starts 2030-03-31.
    assert_eq!(
        fmt(&s.upcoming(utc("2030-03-29T12:00:00Z"), 3)),
        [
            "2030-03-30T05:00:00Z",
            "2030-03-31T04:00:00Z",
            "2030-04-01T04:00:00Z"
        ]
    );
}

#[test]
fn berlin_spring_forward_runs_a_0230_job_once_right_after_the_gap() {
    // 2030-03-31 02:00 CET jumps to 03:00 CEST: 02:30 does not exist that day.
    let s = sched("30 2 * * *", Some("Europe/Berlin"));
    let fires = s.upcoming(utc("2030-03-30T00:00:00Z"), 3);
    assert_eq!(fires[0], utc("2030-03-30T01:30:00Z"), "02:30 CET");
    // The first valid minute after the gap: 03:00 CEST = 01:00 UTC, exactly once.
    assert_eq!(fires[1], utc("2030-03-31T01:00:00Z"));
    assert_eq!(fires[2], utc("2030-04-01T00:30:00Z"), "02:30 CEST");
}

#[test]
fn berlin_fall_back_runs_a_0230_job_once_not_twice() {
    // 2030-10-27 03:00 CEST falls back to 02:00 CET: 02:30 happens twice.
    let s = sched("30 2 * * *", Some("Europe/Berlin"));
    let fires = s.upcoming(utc("2030-10-26T12:00:00Z"), 2);
    assert_eq!(
        fmt(&fires),
        ["2030-10-27T00:30:00Z", "2030-10-28T01:30:00Z"],
        "the first 02:30 (CEST) only, then 02:30 CET"
    );
    // From inside the repeated hour, the second 02:30 is not a fire either.
    assert_eq!(
        s.next_after(utc("2030-10-27T00:45:00Z")),
        Some(utc("2030-10-28T01:30:00Z"))
    );
}

#[test]
fn berlin_fall_back_interval_jobs_fire_in_both_passes_of_the_hour() {
    let s = sched("*/30 * * * *", Some("Europe/Berlin"));
    // 00:00..02:00 UTC covers 02:00-03:00 CEST and 02:00-03:00 CET.
    let fires: Vec<_> = s
        .upcoming(utc("2030-10-26T23:59:00Z"), 5)
        .into_iter()
        .collect();
    assert_eq!(
        fmt(&fires),
        [
            "2030-10-27T00:00:00Z",
            "2030-10-27T00:30:00Z",
            "2030-10-27T01:00:00Z",
            "2030-10-27T01:30:00Z",
            "2030-10-27T02:00:00Z"
        ]
    );
}

#[test]
fn berlin_spring_forward_interval_jobs_skip_the_gap() {
    let s = sched("*/30 * * * *", Some("Europe/Berlin"));
    // 01:30 CET = 00:30 UTC, then 03:00 CEST = 01:00 UTC: nothing in between.
    assert_eq!(
        fmt(&s.upcoming(utc("2030-03-31T00:15:00Z"), 3)),
        [
            "2030-03-31T00:30:00Z",
            "2030-03-31T01:00:00Z",
            "2030-03-31T01:30:00Z"
        ]
    );
}

#[test]
fn latest_fire_across_a_dst_change_in_new_york() {
    // 2030-03-10 02:00 EST jumps to 03:00 EDT. A 09:00 job: 14:00 UTC before, 13:00 after.
    let s = sched("0 9 * * *", Some("America/New_York"));
    assert_eq!(
        s.latest_at_or_before(utc("2030-03-10T12:00:00Z")),
        Some(utc("2030-03-09T14:00:00Z"))
    );
    assert_eq!(
        s.latest_at_or_before(utc("2030-03-10T13:00:00Z")),
        Some(utc("2030-03-10T13:00:00Z"))
    );
}

// ---- durations and jitter -------------------------------------------------------------

#[test]
fn durations_parse_and_print_back() {
    assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
    assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
    assert_eq!(parse_duration("1500ms"), Ok(Duration::from_secs(1)));
    assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse_duration("2 hours"), Ok(Duration::from_secs(7200)));
    for bad in ["", "5", "m", "5x", "-5m", "h5", "99999999999999999999d"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
    assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
    assert_eq!(format_duration(Duration::ZERO), "0s");
    assert_eq!(format_duration(Duration::from_secs(90_061)), "1d1h1m1s");
    assert_eq!(
        parse_duration(&format_duration(Duration::from_secs(93_784))),
        Ok(Duration::from_secs(93_784))
    );
}

#[test]
fn catch_up_policies_parse() {
    assert_eq!("once".parse::<CatchUp>(), Ok(CatchUp::Once));
    assert_eq!("skip".parse::<CatchUp>(), Ok(CatchUp::Skip));
    assert!("always".parse::<CatchUp>().is_err());
}

#[test]
fn jitter_is_stable_bounded_and_spread() {
    let w = utc("2030-01-01T06:00:00Z");
    let max = Duration::from_secs(600);
    assert_eq!(jitter_offset("a", w, Duration::ZERO), Duration::ZERO);
    assert_eq!(jitter_offset("a", w, max), jitter_offset("a", w, max));
    let offsets: std::collections::HashSet<u64> = (0..50)
        .map(|i| jitter_offset(&format!("suite-{i}"), w, max).as_secs())
        .collect();
    assert!(offsets.iter().all(|o| *o < 600));
    assert!(offsets.len() > 30, "spread: {offsets:?}");
}

// ---- decide ---------------------------------------------------------------------------

fn policy(catch_up: CatchUp) -> Policy {
    Policy {
        catch_up,
        grace: Duration::from_secs(600),
        jitter: Duration::ZERO,
    }
}

#[test]
fn a_window_that_just_passed_runs_on_time() {
    let s = sched("0 6 * * *", None);
    let d = decide(
        "s",
        &s,
        Some(utc("2030-01-01T06:00:00Z")),
        utc("2030-01-02T06:00:30Z"),
        &policy(CatchUp::Skip),
    );
    assert_eq!(
        d.action,
        Action::Run {
            window: utc("2030-01-02T06:00:00Z"),
            late: false
        }
    );
    assert!(d.missed.is_empty());
    assert_eq!(d.next, Some(utc("2030-01-03T06:00:00Z")));
}

#[test]
fn a_handled_window_is_not_run_again() {
    let s = sched("0 6 * * *", None);
    let now = utc("2030-01-02T07:00:00Z");
    for handled in ["2030-01-02T06:00:00Z", "2030-01-02T06:00:01Z"] {
        let d = decide("s", &s, Some(utc(handled)), now, &policy(CatchUp::Once));
        assert_eq!(d.action, Action::Idle, "{handled}");
        assert_eq!(
            d.wake_at("s", &policy(CatchUp::Once)),
            Some(utc("2030-01-03T06:00:00Z"))
        );
    }
    // A run that started a second before the window does not count for it.
    let d = decide(
        "s",
        &s,
        Some(utc("2030-01-02T05:59:59Z")),
        now,
        &policy(CatchUp::Once),
    );
    assert!(matches!(d.action, Action::Run { .. }), "{d:?}");
}

#[test]
fn down_for_three_days_catch_up_once_runs_once_and_records_the_rest_missed() {
    let s = sched("0 6 * * *", None);
    let d = decide(
        "s",
        &s,
        Some(utc("2030-01-01T06:00:00Z")),
        utc("2030-01-04T09:00:00Z"),
        &policy(CatchUp::Once),
    );
    assert_eq!(
        d.action,
        Action::Run {
            window: utc("2030-01-04T06:00:00Z"),
            late: true
        }
    );
    assert_eq!(
        fmt(&d.missed),
        ["2030-01-02T06:00:00Z", "2030-01-03T06:00:00Z"]
    );
    assert_eq!(d.more_missed, 0);
}

#[test]
fn down_for_three_days_skip_runs_nothing_and_records_everything() {
    let s = sched("0 6 * * *", None);
    let d = decide(
        "s",
        &s,
        Some(utc("2030-01-01T06:00:00Z")),
        utc("2030-01-04T09:00:00Z"),
        &policy(CatchUp::Skip),
    );
    assert_eq!(
        d.action,
        Action::Skip {
            window: utc("2030-01-04T06:00:00Z")
        }
    );
    assert_eq!(d.missed.len(), 2);
}

#[test]
fn the_grace_period_is_inclusive() {
    let s = sched("0 6 * * *", None);
    let h = Some(utc("2030-01-01T06:00:00Z"));
    let p = policy(CatchUp::Skip);
    let on_time = decide("s", &s, h, utc("2030-01-02T06:10:00Z"), &p);
    assert!(matches!(on_time.action, Action::Run { late: false, .. }));
    let late = decide("s", &s, h, utc("2030-01-02T06:10:01Z"), &p);
    assert!(matches!(late.action, Action::Skip { .. }));
}

#[test]
fn a_suite_never_seen_has_only_its_latest_window_pending() {
    let s = sched("0 * * * *", None);
    let once = decide(
        "s",
        &s,
        None,
        utc("2030-01-02T10:30:00Z"),
        &policy(CatchUp::Once),
    );
    assert_eq!(
        once.action,
        Action::Run {
            window: utc("2030-01-02T10:00:00Z"),
            late: true
        }
    );
    assert!(once.missed.is_empty());
    let skip = decide(
        "s",
        &s,
        None,
        utc("2030-01-02T10:30:00Z"),
        &policy(CatchUp::Skip),
    );
    assert!(matches!(skip.action, Action::Skip { .. }));
}

#[test]
fn a_year_of_minutely_windows_is_listed_up_to_a_bound_and_counted() {
    let s = sched("* * * * *", None);
    let d = decide(
        "s",
        &s,
        Some(utc("2030-01-01T00:00:00Z")),
        utc("2031-01-01T00:00:00Z"),
        &policy(CatchUp::Once),
    );
    assert_eq!(d.missed.len(), MAX_LISTED_WINDOWS);
    // 525600 minutes in the year; one runs, 1000 are listed.
    let total = d.missed.len() as u64 + d.more_missed;
    assert!((525_000..=525_700).contains(&total), "{total}");
}

#[test]
fn jitter_delays_the_start_and_the_grace_counts_from_it() {
    let s = sched("0 6 * * *", None);
    let p = Policy {
        catch_up: CatchUp::Skip,
        grace: Duration::from_secs(60),
        jitter: Duration::from_secs(3600),
    };
    let w = utc("2030-01-02T06:00:00Z");
    let start = start_time("jittery", w, &p);
    assert!(start >= w && start < w + chrono::TimeDelta::hours(1));
    let handled = Some(utc("2030-01-01T06:00:00Z"));
    if start > w {
        let d = decide("jittery", &s, handled, w, &p);
        assert_eq!(
            d.action,
            Action::Wait {
                window: w,
                until: start
            }
        );
        assert_eq!(d.wake_at("jittery", &p), Some(start));
    }
    let d = decide("jittery", &s, handled, start, &p);
    assert_eq!(
        d.action,
        Action::Run {
            window: w,
            late: false
        }
    );
    let d = decide(
        "jittery",
        &s,
        handled,
        start + chrono::TimeDelta::seconds(61),
        &p,
    );
    assert_eq!(d.action, Action::Skip { window: w });
}

#[test]
fn overdue_counts_from_the_first_window_without_a_run() {
    let s = sched("0 6 * * *", None);
    let grace = Duration::from_secs(3600);
    // Ran at the last window: on time.
    assert_eq!(
        overdue_since(
            &s,
            Some(utc("2030-01-03T06:00:05Z")),
            utc("2030-01-03T12:00:00Z"),
            grace
        ),
        None
    );
    // Last ran two days ago: overdue since the first window after it.
    assert_eq!(
        overdue_since(
            &s,
            Some(utc("2030-01-01T06:00:05Z")),
            utc("2030-01-03T12:00:00Z"),
            grace
        ),
        Some(utc("2030-01-02T06:00:00Z"))
    );
    // The window just passed, still within the grace period.
    assert_eq!(
        overdue_since(
            &s,
            Some(utc("2030-01-02T06:00:05Z")),
            utc("2030-01-03T06:30:00Z"),
            grace
        ),
        None
    );
    // Never ran.
    assert_eq!(
        overdue_since(&s, None, utc("2030-01-03T12:00:00Z"), grace),
        Some(utc("2030-01-03T06:00:00Z"))
    );
}

// ---- the loop, with a virtual clock ---------------------------------------------------

/// A host with a virtual clock: sleeping moves the clock; runs take `run_secs`.
struct Fake {
    now: DateTime<Utc>,
    entries: Vec<Entry>,
    /// Entries to switch to at this instant (a changed suite file).
    swap: Option<(DateTime<Utc>, Vec<Entry>)>,
    loaded: bool,
    fires: Vec<Fire>,
    /// (suite, window, start) of every run.
    runs: Vec<(String, DateTime<Utc>, DateTime<Utc>)>,
    run_secs: i64,
    /// Stop when the clock passes this.
    stop_at: DateTime<Utc>,
    /// Report these outcomes for these suites instead of running.
    canned: HashMap<String, Outcome>,
    events: Vec<String>,
    sleeps: u32,
    /// Windows another scheduler claimed.
    elsewhere: Vec<DateTime<Utc>>,
}

impl Fake {
    fn new(now: &str, stop_at: &str, entries: Vec<Entry>) -> Self {
        Self {
            now: utc(now),
            entries,
            swap: None,
            loaded: false,
            fires: Vec::new(),
            runs: Vec::new(),
            run_secs: 60,
            stop_at: utc(stop_at),
            canned: HashMap::new(),
            events: Vec::new(),
            sleeps: 0,
            elsewhere: Vec::new(),
        }
    }

    fn windows(&self, suite: &str, outcome: Outcome) -> Vec<String> {
        self.fires
            .iter()
            .filter(|f| f.suite == suite && f.outcome == outcome)
            .map(|f| daemon::rfc3339(f.window))
            .collect()
    }
}

impl Host for Fake {
    fn now(&mut self) -> DateTime<Utc> {
        self.now
    }
    fn stop_requested(&mut self) -> bool {
        self.now >= self.stop_at
    }
    fn sleep_until(&mut self, until: DateTime<Utc>) {
        self.sleeps += 1;
        assert!(self.sleeps < 100_000, "the loop spins");
        assert!(until >= self.now, "sleep into the past");
        self.now = until;
    }
    fn reload(&mut self) -> Option<Vec<Entry>> {
        if let Some((at, _)) = &self.swap
            && self.now >= *at
        {
            let (_, new) = self.swap.take()?;
            self.entries = new;
            return Some(self.entries.clone());
        }
        if self.loaded {
            None
        } else {
            self.loaded = true;
            Some(self.entries.clone())
        }
    }
    fn handled(&mut self, suite: &str) -> Result<Option<DateTime<Utc>>, String> {
        let fire = self
            .fires
            .iter()
            .filter(|f| f.suite == suite && f.outcome.handles_window())
            .map(|f| f.window)
            .max();
        let run = self.runs.iter().filter(|r| r.0 == suite).map(|r| r.2).max();
        Ok(fire.max(run))
    }
    fn claim(&mut self, _suite: &str, window: DateTime<Utc>) -> Result<daemon::Claim, String> {
        Ok(if self.elsewhere.contains(&window) {
            daemon::Claim::Elsewhere {
                host: "b".into(),
                done: false,
            }
        } else {
            daemon::Claim::Ours
        })
    }
    fn record(&mut self, fire: &Fire) -> Result<(), String> {
        self.fires.push(fire.clone());
        Ok(())
    }
    fn run(&mut self, entry: &Entry, window: DateTime<Utc>) -> RunReport {
        if let Some(outcome) = self.canned.get(&entry.suite) {
            return RunReport {
                outcome: *outcome,
                code: if *outcome == Outcome::Interrupted {
                    130
                } else {
                    3
                },
                run_id: None,
                detail: None,
            };
        }
        self.runs.push((entry.suite.clone(), window, self.now));
        self.now += chrono::TimeDelta::seconds(self.run_secs);
        RunReport {
            outcome: Outcome::Ran,
            code: 0,
            run_id: Some(format!("run-{}", self.runs.len())),
            detail: None,
        }
    }
    fn log(&mut self, event: Event) {
        let line = event.to_json(self.now);
        let v: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
        assert!(v["ts"].is_string() && v["level"].is_string());
        self.events.push(event.event.to_owned());
    }
}

fn entry(suite: &str, expr: &str, tz: Option<&str>) -> Entry {
    Entry {
        suite: suite.into(),
        file: PathBuf::from(format!("suites/{suite}.yaml")),
        schedule: sched(expr, tz),
        catch_up: None,
        jitter: None,
    }
}

#[test]
fn the_daemon_runs_each_window_once_for_days() {
    let mut host = Fake::new(
        "2030-01-01T00:00:00Z",
        "2030-01-04T00:00:00Z",
        vec![
            entry("daily", "0 6 * * *", Some("Europe/Berlin")),
            entry("sixhourly", "0 */6 * * *", None),
        ],
    );
    // Both suites have history, so nothing from before the start is pending.
    host.fires.push(Fire {
        suite: "daily".into(),
        window: utc("2029-12-31T05:00:00Z"),
        fired_at: utc("2029-12-31T05:00:00Z"),
        outcome: Outcome::Ran,
        run_id: None,
        detail: None,
    });
    host.fires.push(Fire {
        window: utc("2030-01-01T00:00:00Z"),
        suite: "sixhourly".into(),
        ..host.fires[0].clone()
    });
    let stop = daemon::daemon(&mut host, &Policy::default(), Duration::from_secs(30));
    assert_eq!(stop, Stop::Requested);
    let daily: Vec<String> = host
        .runs
        .iter()
        .filter(|r| r.0 == "daily")
        .map(|r| daemon::rfc3339(r.2))
        .collect();
    assert_eq!(
        daily,
        [
            "2030-01-01T05:00:00Z",
            "2030-01-02T05:00:00Z",
            "2030-01-03T05:00:00Z"
        ]
    );
    let six = host.runs.iter().filter(|r| r.0 == "sixhourly").count();
    assert_eq!(six, 11, "06, 12, 18 on day one, then four a day");
    assert!(host.windows("daily", Outcome::Missed).is_empty());
    assert_eq!(host.windows("daily", Outcome::Ran).len(), 4);
    assert_eq!(
        host.events.first().map(String::as_str),
        Some("daemon_started")
    );
    assert_eq!(
        host.events.last().map(String::as_str),
        Some("daemon_stopped")
    );
}

#[test]
fn the_daemon_catches_up_once_after_downtime_and_records_the_missed_windows() {
    let mut host = Fake::new(
        "2030-01-05T09:00:00Z",
        "2030-01-05T12:00:00Z",
        vec![entry("daily", "0 6 * * *", None)],
    );
    host.fires.push(Fire {
        suite: "daily".into(),
        window: utc("2030-01-01T06:00:00Z"),
        fired_at: utc("2030-01-01T06:00:00Z"),
        outcome: Outcome::Ran,
        run_id: None,
        detail: None,
    });
    daemon::daemon(&mut host, &Policy::default(), Duration::from_secs(60));
    assert_eq!(host.runs.len(), 1);
    assert_eq!(host.runs[0].1, utc("2030-01-05T06:00:00Z"));
    assert_eq!(
        host.windows("daily", Outcome::Missed),
        [
            "2030-01-02T06:00:00Z",
            "2030-01-03T06:00:00Z",
            "2030-01-04T06:00:00Z"
        ]
    );
    assert!(host.events.iter().any(|e| e == "window_missed"));
}

#[test]
fn windows_another_scheduler_claimed_are_neither_run_nor_recorded() {
    let mut host = Fake::new(
        "2030-01-05T09:00:00Z",
        "2030-01-05T12:00:00Z",
        vec![entry("daily", "0 6 * * *", None)],
    );
    host.fires.push(Fire {
        suite: "daily".into(),
        window: utc("2030-01-01T06:00:00Z"),
        fired_at: utc("2030-01-01T06:00:00Z"),
        outcome: Outcome::Ran,
        run_id: None,
        detail: None,
    });
    host.elsewhere = vec![utc("2030-01-02T06:00:00Z"), utc("2030-01-05T06:00:00Z")];
    let entries = host.entries.clone();
    let report = daemon::tick(&mut host, &entries, &Policy::default());
    assert!(report.runs.is_empty(), "{report:?}");
    assert!(host.runs.is_empty());
    assert_eq!(
        host.windows("daily", Outcome::Missed),
        ["2030-01-03T06:00:00Z", "2030-01-04T06:00:00Z"]
    );
    assert!(host.events.iter().any(|e| e == "window_claimed"));
    assert_eq!(report.exit_code(), 0);
}

#[test]
fn the_daemon_with_skip_records_the_late_window_and_waits_for_the_next() {
    let mut host = Fake::new(
        "2030-01-05T09:00:00Z",
        "2030-01-06T12:00:00Z",
        vec![entry("daily", "0 6 * * *", None)],
    );
    host.fires.push(Fire {
        suite: "daily".into(),
        window: utc("2030-01-03T06:00:00Z"),
        fired_at: utc("2030-01-03T06:00:00Z"),
        outcome: Outcome::Ran,
        run_id: None,
        detail: None,
    });
    daemon::daemon(&mut host, &policy(CatchUp::Skip), Duration::from_secs(60));
    assert_eq!(
        host.windows("daily", Outcome::Missed),
        ["2030-01-04T06:00:00Z"]
    );
    assert_eq!(
        host.windows("daily", Outcome::Skipped),
        ["2030-01-05T06:00:00Z"]
    );
    assert_eq!(host.runs.len(), 1, "only the next day's window ran");
    assert_eq!(host.runs[0].2, utc("2030-01-06T06:00:00Z"));
}

#[test]
fn the_daemon_follows_a_changed_suite_file() {
    let mut host = Fake::new(
        "2030-01-01T00:00:00Z",
        "2030-01-02T00:00:00Z",
        vec![entry("s", "0 6 * * *", None)],
    );
    host.fires.push(Fire {
        suite: "s".into(),
        window: utc("2029-12-31T06:00:00Z"),
        fired_at: utc("2029-12-31T06:00:00Z"),
        outcome: Outcome::Ran,
        run_id: None,
        detail: None,
    });
    // At 07:00 the file changes to 18:00; the poll notices within a minute.
    host.swap = Some((
        utc("2030-01-01T07:00:00Z"),
        vec![entry("s", "0 18 * * *", None)],
    ));
    daemon::daemon(&mut host, &Policy::default(), Duration::from_secs(60));
    let starts: Vec<String> = host.runs.iter().map(|r| daemon::rfc3339(r.1)).collect();
    assert_eq!(starts, ["2030-01-01T06:00:00Z", "2030-01-01T18:00:00Z"]);
    assert_eq!(
        host.events.iter().filter(|e| *e == "suites_loaded").count(),
        2
    );
}

#[test]
fn a_busy_suite_is_recorded_and_not_retried_for_that_window() {
    let mut host = Fake::new(
        "2030-01-01T05:59:00Z",
        "2030-01-01T08:00:00Z",
        vec![entry("s", "0 6 * * *", None)],
    );
    host.fires.push(Fire {
        suite: "s".into(),
        window: utc("2029-12-31T06:00:00Z"),
        fired_at: utc("2029-12-31T06:00:00Z"),
        outcome: Outcome::Ran,
        run_id: None,
        detail: None,
    });
    host.canned.insert("s".into(), Outcome::Busy);
    daemon::daemon(&mut host, &Policy::default(), Duration::from_secs(60));
    assert_eq!(host.windows("s", Outcome::Busy), ["2030-01-01T06:00:00Z"]);
    assert!(host.events.iter().any(|e| e == "busy"));
}

#[test]
fn an_interrupted_run_stops_the_daemon_and_leaves_the_window_pending() {
    let mut host = Fake::new(
        "2030-01-01T06:00:00Z",
        "2030-01-09T00:00:00Z",
        vec![entry("a", "0 6 * * *", None), entry("b", "0 6 * * *", None)],
    );
    host.canned.insert("a".into(), Outcome::Interrupted);
    let stop = daemon::daemon(&mut host, &Policy::default(), Duration::from_secs(60));
    assert_eq!(stop, Stop::Interrupted);
    assert!(
        host.runs.is_empty(),
        "b is not started after the interruption"
    );
    assert_eq!(
        host.windows("a", Outcome::Interrupted),
        ["2030-01-01T06:00:00Z"]
    );
    assert_eq!(host.handled("a"), Ok(None), "the window stays pending");
}

#[test]
fn a_tick_reports_the_worst_exit_code() {
    let mut host = Fake::new(
        "2030-01-01T06:00:10Z",
        "2031-01-01T00:00:00Z",
        vec![
            entry("ok", "0 6 * * *", None),
            entry("bad", "0 6 * * *", None),
            entry("later", "0 7 * * *", None),
        ],
    );
    for (s, w) in [
        ("ok", "2029-12-31T06:00:00Z"),
        ("bad", "2029-12-31T06:00:00Z"),
        ("later", "2029-12-31T07:00:00Z"),
    ] {
        host.fires.push(Fire {
            suite: s.into(),
            window: utc(w),
            fired_at: utc("2029-12-31T06:00:00Z"),
            outcome: Outcome::Ran,
            run_id: None,
            detail: None,
        });
    }
    host.canned.insert("bad".into(), Outcome::Failed);
    let entries = host.entries.clone();
    let report = daemon::tick(&mut host, &entries, &Policy::default());
    assert_eq!(report.runs.len(), 2, "`later` is not due");
    assert_eq!(report.exit_code(), 3);
    assert_eq!(report.wake_at, Some(utc("2030-01-01T07:00:00Z")));
    assert!(!report.stopped);
    // Again at the same instant: nothing is due any more.
    let again = daemon::tick(&mut host, &entries, &Policy::default());
    assert!(again.runs.is_empty());
    assert_eq!(again.exit_code(), 0);
}

#[test]
fn events_are_one_json_object_per_line() {
    let line = Event::new("run_finished")
        .suite("faq")
        .at("window", Utc.with_ymd_and_hms(2030, 1, 1, 6, 0, 0).unwrap())
        .with("exit_code", 0)
        .with("message", "a \"quoted\"\nline")
        .to_json(utc("2030-01-01T06:01:00Z"));
    assert!(!line.contains('\n'));
    let v: serde_json::Value = serde_json::from_str(&line).expect("json");
    assert_eq!(v["event"], "run_finished");
    assert_eq!(v["suite"], "faq");
    assert_eq!(v["level"], "info");
    assert_eq!(v["window"], "2030-01-01T06:00:00Z");
    assert_eq!(v["ts"], "2030-01-01T06:01:00Z");
    let missed = Event::new("window_missed").to_json(utc("2030-01-01T06:01:00Z"));
    assert!(missed.contains("\"level\":\"warn\""));
}

#[test]
fn out_of_range_fields_are_said_in_our_words() {
    let msg = |expr: &str| match Schedule::parse(expr, None) {
        Err(ScheduleError::Cron { reason, .. }) => reason,
        other => panic!("{expr}: {other:?}"),
    };
    assert_eq!(msg("99 6 * * *"), "minute 99 is out of range 0-59");
    assert_eq!(msg("0 24 * * *"), "hour 24 is out of range 0-23");
    assert_eq!(msg("0 6 0 * *"), "day of month 0 is out of range 1-31");
    assert_eq!(msg("0 6 * 1-13 *"), "month 13 is out of range 1-12");
    assert_eq!(msg("0 6 * * 8"), "day of week 8 is out of range 0-7");
    assert_eq!(msg("*/0 6 * * *"), "the minute step in `*/0` is 0");
    assert_eq!(
        msg("30-10 6 * * *"),
        "the minute range 30-10 runs backwards"
    );
    assert_eq!(
        msg("0 6 * * 1-*"),
        "the day of week field `1-*` holds `*`, not a number"
    );
    for ok in [
        "*/15 6-18 1,15 jan-mar mon-fri",
        "0 0 * * 7",
        "5 4 * * sun",
        "0 */2 * * *",
        "0 6 L * *",
        "0 6 15W * *",
        "0 6 * * 5#3",
        "0 6 * * 5L",
    ] {
        assert!(Schedule::parse(ok, None).is_ok(), "{ok}");
    }
}
