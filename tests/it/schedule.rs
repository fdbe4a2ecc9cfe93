//! The scheduler: `--once` against a fixed clock, leases across real processes, the daemon
//! and its signals, the emitted files.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use evalwatch::model::RunStatus;
use evalwatch::store::Store;

use crate::support::{Project, code, signal, stderr, stdout};

/// A suite answered by `echo`, with an optional schedule.
fn echo_suite(p: &Project, name: &str, schedule: Option<&str>) {
    let sched = schedule.map_or(String::new(), |s| format!("schedule: \"{s}\"\n"));
    p.write(
        &format!("suites/{name}.yaml"),
        &format!(
            "suite: {name}\n{sched}providers:\n  - id: e\n    type: echo\nprompt: \"{{{{ q }}}}\"\ncases:\n  - {{id: c1, vars: {{q: hello}}, expected: hello}}\n"
        ),
    );
}

/// A suite whose provider takes `secs` per call, one at a time.
fn slow_suite(p: &Project, name: &str, n: usize, secs: &str, schedule: Option<&str>) {
    use std::fmt::Write as _;
    let mut cases = String::new();
    for i in 0..n {
        let _ = writeln!(cases, "  - {{id: c{i}, vars: {{q: q{i}}}, expected: Q{i}}}");
    }
    let sched = schedule.map_or(String::new(), |s| format!("schedule: \"{s}\"\n"));
    p.write(
        &format!("suites/{name}.yaml"),
        &format!(
            "suite: {name}\n{sched}providers:\n  - id: x\n    type: exec\n    concurrency: 1\n    command: [sh, -c, 'if [ -n \"$CALLS_LOG\" ]; then echo call >> \"$CALLS_LOG\"; fi; sleep {secs}; tr a-z A-Z']\nprompt: \"{{{{ q }}}}\"\ncases:\n{cases}"
        ),
    );
}

fn runs_of(p: &Project, suite: &str) -> Vec<evalwatch::store::RunRow> {
    Store::open(&p.db())
        .expect("open")
        .runs(Some(suite), 0)
        .expect("runs")
}

/// The JSON log lines of stderr.
fn events(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn once(p: &Project, now: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["schedule", "--once", "--now", now];
    args.extend_from_slice(extra);
    p.run(&args)
}

#[test]
fn once_runs_exactly_the_due_suites_and_each_window_once() {
    let p = Project::new();
    echo_suite(&p, "daily", Some("0 6 * * *"));
    echo_suite(&p, "hourly", Some("@hourly"));
    echo_suite(&p, "manual", None);
    // First look at 06:00:30: both windows (06:00) just passed.
    let out = once(&p, "2030-01-01T06:00:30Z", &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(runs_of(&p, "daily").len(), 1);
    assert_eq!(runs_of(&p, "hourly").len(), 1);
    assert!(runs_of(&p, "manual").is_empty(), "no schedule, never run");
    let ev = events(&stderr(&out));
    let started: Vec<&str> = ev
        .iter()
        .filter(|e| e["event"] == "run_started")
        .filter_map(|e| e["suite"].as_str())
        .collect();
    assert_eq!(started, ["daily", "hourly"]);
    // Same window again: nothing is due.
    let out = once(&p, "2030-01-01T06:20:00Z", &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(runs_of(&p, "daily").len(), 1);
    assert_eq!(runs_of(&p, "hourly").len(), 1);
    // 07:00:10: only the hourly one.
    let out = once(&p, "2030-01-01T07:00:10Z", &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(runs_of(&p, "daily").len(), 1);
    assert_eq!(runs_of(&p, "hourly").len(), 2);
    // The fire records say which run served which window.
    let store = Store::open(&p.db()).expect("open");
    let fires = store.fires(Some("hourly"), 0).expect("fires");
    assert_eq!(fires.len(), 2);
    assert!(
        fires
            .iter()
            .all(|f| f.outcome == "ran" && f.run_id.is_some())
    );
}

#[test]
fn once_after_downtime_catches_up_once_or_skips_and_records_either_way() {
    let p = Project::new();
    echo_suite(&p, "daily", Some("0 6 * * *"));
    let out = once(&p, "2030-01-01T06:00:30Z", &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Three days later, at noon: one catch-up run, two missed windows recorded.
    let out = once(&p, "2030-01-04T12:00:00Z", &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(runs_of(&p, "daily").len(), 2);
    let ev = events(&stderr(&out));
    assert_eq!(
        ev.iter().filter(|e| e["event"] == "window_missed").count(),
        2
    );
    assert!(
        ev.iter()
            .any(|e| e["event"] == "run_started" && e["late"] == true)
    );
    // Four days later with --catch-up skip: nothing runs, everything is recorded.
    let out = once(&p, "2030-01-08T12:00:00Z", &["--catch-up", "skip"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(runs_of(&p, "daily").len(), 2, "skip runs nothing");
    let store = Store::open(&p.db()).expect("open");
    let outcomes: Vec<String> = store
        .fires(Some("daily"), 0)
        .expect("fires")
        .into_iter()
        .map(|f| f.outcome)
        .collect();
    assert_eq!(
        outcomes,
        [
            "skipped", "missed", "missed", "missed", "ran", "missed", "missed", "ran"
        ]
    );
}

#[test]
fn list_and_status_show_next_fires_last_runs_and_overdue_suites() {
    let p = Project::new();
    p.write(
        "suites/berlin.yaml",
        "suite: berlin\nschedule: \"30 2 * * *\"\ntimezone: Europe/Berlin\nproviders:\n  - id: e\n    type: echo\nprompt: \"{{ q }}\"\ncases:\n  - {id: c1, vars: {q: hello}, expected: hello}\n",
    );
    echo_suite(&p, "manual", None);
    let out = p.run(&[
        "schedule",
        "--list",
        "--format",
        "json",
        "--count",
        "3",
        "--now",
        "2030-03-30T00:00:00Z",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rows: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    let berlin = &rows[0];
    assert_eq!(berlin["suite"], "berlin");
    assert_eq!(berlin["timezone"], "Europe/Berlin");
    // Across the spring-forward night: 02:30 CET, 03:00 CEST (the gap), 02:30 CEST.
    assert_eq!(
        berlin["next"],
        serde_json::json!([
            "2030-03-30T01:30:00Z",
            "2030-03-31T01:00:00Z",
            "2030-04-01T00:30:00Z"
        ])
    );
    assert!(berlin["last_run"].is_null());
    assert_eq!(rows[1]["suite"], "manual");
    assert!(rows[1]["schedule"].is_null());
    let text = p.run(&["schedule", "--list", "--now", "2030-03-30T00:00:00Z"]);
    assert!(
        stdout(&text).contains("2030-03-31 03:00 CEST"),
        "{}",
        stdout(&text)
    );

    // Run it at its window, then ask at later times.
    let out = once(&p, "2030-03-30T01:30:05Z", &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let status = |now: &str| {
        let out = p.run(&["schedule", "status", "--format", "json", "--now", now]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        serde_json::from_str::<serde_json::Value>(&stdout(&out)).expect("json")
    };
    let on_time = status("2030-03-30T12:00:00Z");
    assert_eq!(on_time[0]["overdue"], false);
    assert_eq!(on_time[0]["last_fire"]["outcome"], "ran");
    assert!(on_time[0]["last_run"]["run_id"].is_string());
    let late = status("2030-04-02T12:00:00Z");
    assert_eq!(late[0]["overdue"], true);
    assert_eq!(late[0]["overdue_since"], "2030-03-31T01:00:00Z");
    let text = p.run(&["schedule", "status", "--now", "2030-04-02T12:00:00Z"]);
    assert!(stdout(&text).contains("OVERDUE since 2030-03-31T01:00:00Z"));
    assert!(stdout(&text).contains("manual"));
}

/// Spawn the binary in the project; stderr is read line by line into a channel.
/// A daemon that skips what is late, looking for changed suites every second. `--grace 0`:
/// an `@yearly` window is late even on 1 January before 00:15 (within the default grace it
/// would be on time and run, not be skipped).
const SKIP_LATE: &[&str] = &[
    "schedule",
    "--catch-up",
    "skip",
    "--grace",
    "0",
    "--poll",
    "1s",
];

fn spawn(p: &Project, args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("evalwatch"))
        .current_dir(p.path())
        .args(args)
        .env_remove("EVALWATCH_DB")
        .env_remove("EVALWATCH_CONFIG")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Wait for a stderr line containing `needle`; returns every line seen so far.
fn wait_line(rx: &mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let hit = line.contains(needle);
                seen.push(line);
                if hit {
                    return;
                }
            }
            Err(e) => panic!("no `{needle}` on stderr ({e}); saw:\n{}", seen.join("\n")),
        }
    }
}

/// Wait until the suite's lease is held by `pid`.
fn wait_lease(p: &Project, suite: &str, pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "the lease was never taken");
        if let Ok(store) = Store::open(&p.db())
            && let Ok(leases) = store.leases()
            && leases.iter().any(|l| l.suite == suite && l.pid == pid)
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_suite_never_overlaps_itself_across_processes_but_others_run() {
    let p = Project::new();
    slow_suite(&p, "slow", 200, "0.05", None);
    echo_suite(&p, "quick", Some("0 6 * * *"));
    let (mut first, _rx) = spawn(&p, &["run", "suites/slow.yaml"]);
    wait_lease(&p, "slow", first.id());

    // The same suite from a second process is refused, with the holder named, before it
    // made any call (its calls would log themselves).
    let calls = p.path().join("second-calls.log");
    let second = p
        .cmd()
        .env("CALLS_LOG", &calls)
        .args(["run", "suites/slow.yaml"])
        .output()
        .expect("run evalwatch");
    assert_eq!(code(&second), 3, "{}", stderr(&second));
    assert!(!calls.exists(), "the refused run made no call");
    let err = stderr(&second);
    assert!(err.contains("already running"), "{err}");
    assert!(err.contains(&format!("pid {}", first.id())), "{err}");

    // Another suite is not blocked.
    let other = p.run(&["run", "suites/quick.yaml"]);
    assert_eq!(code(&other), 0, "{}", stderr(&other));

    // The scheduler finds the slow suite busy and records it, without running it.
    p.write(
        "suites/slow.yaml",
        &std::fs::read_to_string(p.path().join("suites/slow.yaml"))
            .expect("read")
            .replace("suite: slow\n", "suite: slow\nschedule: \"@hourly\"\n"),
    );
    let out = once(&p, "2030-01-01T06:00:10Z", &["suites/slow.yaml"]);
    assert_eq!(code(&out), 0, "busy is not a failure: {}", stderr(&out));
    assert!(
        events(&stderr(&out)).iter().any(|e| e["event"] == "busy"),
        "{}",
        stderr(&out)
    );
    let store = Store::open(&p.db()).expect("open");
    assert_eq!(
        store.fires(Some("slow"), 0).expect("fires")[0].outcome,
        "busy"
    );
    drop(store);
    assert_eq!(runs_of(&p, "slow").len(), 1, "only the first run");

    signal(first.id(), "-INT");
    let _ = first.wait();
    // Released: a new run proceeds.
    slow_suite(&p, "slow", 2, "0", None);
    let after = p.run(&["run", "suites/slow.yaml"]);
    assert_eq!(code(&after), 0, "{}", stderr(&after));
    let store = Store::open(&p.db()).expect("open");
    assert!(
        store.leases().expect("leases").is_empty(),
        "every lease released"
    );
}

#[test]
fn a_killed_holders_lease_is_recovered() {
    let p = Project::new();
    slow_suite(&p, "slow", 200, "0.05", None);
    let (mut holder, _rx) = spawn(&p, &["run", "suites/slow.yaml"]);
    wait_lease(&p, "slow", holder.id());
    signal(holder.id(), "-KILL");
    let _ = holder.wait();
    // The lease row is still there, but its holder is gone: a new run takes it over.
    slow_suite(&p, "slow", 2, "0", None);
    let out = p.run(&["run", "suites/slow.yaml", "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let runs = runs_of(&p, "slow");
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].info.status, RunStatus::Complete);
    assert_eq!(runs[1].info.status, RunStatus::Incomplete, "the killed run");
}

#[test]
fn a_killed_daemons_lease_is_recovered() {
    let p = Project::new();
    // Never seen and @yearly: the latest window is late, so catch-up runs it at once.
    slow_suite(&p, "slow", 200, "0.05", Some("@yearly"));
    let (mut daemon, rx) = spawn(&p, &["schedule"]);
    let mut seen = Vec::new();
    wait_line(&rx, "\"run_started\"", &mut seen);
    wait_lease(&p, "slow", daemon.id());
    signal(daemon.id(), "-KILL");
    let _ = daemon.wait();
    slow_suite(&p, "slow", 2, "0", Some("@yearly"));
    let out = p.run(&["run", "suites/slow.yaml"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn sigterm_stops_an_idle_daemon_cleanly() {
    let p = Project::new();
    echo_suite(&p, "yearly", Some("@yearly"));
    let (mut daemon, rx) = spawn(&p, SKIP_LATE);
    let mut seen = Vec::new();
    wait_line(&rx, "\"suites_loaded\"", &mut seen);
    wait_line(&rx, "\"window_skipped\"", &mut seen);
    signal(daemon.id(), "-TERM");
    let status = daemon.wait().expect("wait");
    for line in &rx {
        seen.push(line);
    }
    assert_eq!(status.code(), Some(0), "{}", seen.join("\n"));
    let ev = events(&seen.join("\n"));
    assert_eq!(ev[0]["event"], "daemon_started");
    assert_eq!(ev.last().expect("events")["event"], "daemon_stopped");
    assert!(runs_of(&p, "yearly").is_empty(), "skip runs nothing");
}

#[test]
fn sigterm_during_a_run_keeps_it_incomplete_and_the_daemon_exits_130() {
    let p = Project::new();
    slow_suite(&p, "slow", 200, "0.05", Some("@yearly"));
    let (mut daemon, rx) = spawn(&p, &["schedule"]);
    let mut seen = Vec::new();
    wait_line(&rx, "\"run_started\"", &mut seen);
    wait_lease(&p, "slow", daemon.id());
    signal(daemon.id(), "-TERM");
    let status = daemon.wait().expect("wait");
    for line in &rx {
        seen.push(line);
    }
    assert_eq!(status.code(), Some(130), "{}", seen.join("\n"));
    let runs = runs_of(&p, "slow");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].info.status, RunStatus::Incomplete);
    let store = Store::open(&p.db()).expect("open");
    assert_eq!(
        store.fires(Some("slow"), 0).expect("fires")[0].outcome,
        "interrupted"
    );
    assert!(store.leases().expect("leases").is_empty(), "released");
}

#[test]
fn the_daemon_rereads_a_changed_suite_file() {
    let p = Project::new();
    echo_suite(&p, "a", Some("@yearly"));
    let (mut daemon, rx) = spawn(&p, SKIP_LATE);
    let mut seen = Vec::new();
    wait_line(&rx, "\"window_skipped\"", &mut seen);
    // A new suite appears and an old one changes: both are picked up by the poll.
    echo_suite(&p, "b", Some("@monthly"));
    wait_line(&rx, "\"suites_changed\"", &mut seen);
    wait_line(&rx, "\"suite\":\"b\"", &mut seen);
    signal(daemon.id(), "-TERM");
    let status = daemon.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "{}", seen.join("\n"));
}

#[test]
fn emitted_files_call_once_and_parse() {
    let p = Project::new();
    p.write(
        "evalwatch.yaml",
        "providers:\n  - id: gpt\n    type: openai\n    model: gpt-4o-mini\n    api_key_env: OPENAI_API_KEY\n",
    );
    echo_suite(&p, "a", Some("0 6 * * *"));
    for (target, must) in [
        ("systemd", "OnCalendar=*-*-* *:00/5:00"),
        ("cron", "*/5 * * * * cd "),
        ("kubernetes", "concurrencyPolicy: Forbid"),
        (
            "github-actions",
            "OPENAI_API_KEY: ${{ secrets.OPENAI_API_KEY }}",
        ),
    ] {
        let mut args = vec!["schedule", "emit", target];
        if target == "github-actions" {
            args.extend(["--release-url", "https://github.com/acme/evalwatch"]);
        }
        let out = p.run(&args);
        assert_eq!(code(&out), 0, "{target}: {}", stderr(&out));
        let text = stdout(&out);
        assert!(
            text.contains("schedule --once") || text.contains("\"--once\""),
            "{text}"
        );
        assert!(text.contains(must), "{target}:\n{text}");
        if target == "kubernetes" || target == "github-actions" {
            let docs = yaml_rust2::YamlLoader::load_from_str(&text).expect("valid YAML");
            assert_eq!(docs.len(), 1);
        }
    }
    let hourly = p.run(&["schedule", "emit", "kubernetes", "--every", "2h"]);
    assert!(stdout(&hourly).contains("schedule: \"0 */2 * * *\""));
    let bad = p.run(&["schedule", "emit", "cron", "--every", "7m"]);
    assert_eq!(code(&bad), 2);
    let out = p.run(&["schedule", "emit", "systemd", "--out", "units"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    for f in [
        "evalwatch-schedule.service",
        "evalwatch-schedule.timer",
        "evalwatch-daemon.service",
    ] {
        assert!(p.path().join("units").join(f).exists(), "{f}");
    }
}

#[test]
fn bad_flags_and_schedules_are_usage_errors() {
    let p = Project::new();
    echo_suite(&p, "a", Some("0 6 * * *"));
    assert_eq!(
        code(&p.run(&["schedule", "--catch-up", "always", "--once"])),
        2
    );
    assert_eq!(code(&p.run(&["schedule", "--grace", "soon", "--once"])), 2);
    assert_eq!(
        code(&p.run(&["schedule", "--now", "2030-01-01T00:00:00Z"])),
        2
    );
    p.write(
        "suites/tz.yaml",
        "suite: tz\nschedule: \"0 6 * * *\"\ntimezone: Mars/Olympus\nproviders:\n  - id: e\n    type: echo\nprompt: \"{{ q }}\"\ncases:\n  - {id: c1, vars: {q: hello}, expected: hello}\n",
    );
    let out = once(&p, "2030-01-01T06:00:10Z", &[]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("Mars/Olympus"), "{}", stderr(&out));
    assert_eq!(runs_of(&p, "a").len(), 1, "the valid suite still ran");
}

/// A project whose alerts go to `alerts.jsonl`.
fn with_file_sink(p: &Project) {
    p.write(
        "evalwatch.yaml",
        "sinks:\n  - {id: log, type: file, path: alerts.jsonl}\n",
    );
}

/// The notices the file sink received, as (event, suite, rule).
fn notices(p: &Project) -> Vec<(String, String, String)> {
    std::fs::read_to_string(p.path().join("alerts.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON notice");
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            (s("event"), s("suite"), s("rule"))
        })
        .collect()
}

fn unschedulable(event: &str, suite: &str) -> (String, String, String) {
    (event.into(), suite.into(), "unschedulable".into())
}

#[test]
fn once_runs_the_valid_suites_reports_each_invalid_one_and_alerts_once() {
    let p = Project::new();
    with_file_sink(&p);
    echo_suite(&p, "good", Some("0 6 * * *"));
    echo_suite(&p, "badcron", Some("99 6 * * *"));
    echo_suite(&p, "badcase", Some("0 6 * * *"));
    let path = p.path().join("suites/badcase.yaml");
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(&path, text.replace("expected: hello", "expectd: hello")).expect("write");
    let out = once(&p, "2030-01-01T06:00:30Z", &[]);
    let err = stderr(&out);
    assert_eq!(code(&out), 2, "{err}");
    assert_eq!(runs_of(&p, "good").len(), 1, "the valid suite ran: {err}");
    assert!(runs_of(&p, "badcase").is_empty());
    // Each invalid suite is reported, located, as an event and in the final error.
    let ev = events(&err);
    let invalid: Vec<&str> = ev
        .iter()
        .filter(|e| e["event"] == "suite_invalid" && e["level"] == "error")
        .filter_map(|e| e["suite"].as_str())
        .collect();
    assert_eq!(invalid, ["badcase", "badcron"], "{err}");
    assert!(err.contains("suites/badcase.yaml:8:"), "{err}");
    assert!(err.contains("did you mean `expected`"), "{err}");
    assert!(err.contains("suites/badcron.yaml"), "{err}");
    assert!(err.contains("2 suites cannot be scheduled"), "{err}");
    assert!(err.contains("minute 99 is out of range 0-59"), "{err}");
    let finished = ev
        .iter()
        .find(|e| e["event"] == "once_finished")
        .expect("once_finished");
    assert_eq!(
        finished["exit_code"], 2,
        "the event says what the process exits with"
    );
    // ... and alerted on: a suite that cannot be scheduled misses every window.
    assert_eq!(
        notices(&p),
        [
            unschedulable("alert", "badcase"),
            unschedulable("alert", "badcron")
        ]
    );
    // Still broken an hour later: reported again, but the alert is not sent twice.
    let out = once(&p, "2030-01-01T07:00:30Z", &[]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(notices(&p).len(), 2);
    // Fixed: the alert resolves once, and the suite runs at its next window.
    echo_suite(&p, "badcron", Some("0 6 * * *"));
    let out = once(&p, "2030-01-02T06:00:30Z", &[]);
    assert_eq!(code(&out), 2, "badcase is still broken: {}", stderr(&out));
    assert_eq!(runs_of(&p, "badcron").len(), 1);
    assert_eq!(notices(&p)[2], unschedulable("resolved", "badcron"));
    echo_suite(&p, "badcase", Some("0 6 * * *"));
    let out = once(&p, "2030-01-03T06:00:30Z", &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(notices(&p).len(), 4);
    assert_eq!(notices(&p)[3], unschedulable("resolved", "badcase"));
}

#[test]
fn once_with_nothing_due_says_so_and_when_each_suite_is_next_due() {
    let p = Project::new();
    echo_suite(&p, "daily", Some("0 6 * * *"));
    echo_suite(&p, "hourly", Some("@hourly"));
    let out = once(&p, "2030-01-01T06:00:30Z", &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stdout(&out).contains("nothing due"), "{}", stdout(&out));
    let out = once(&p, "2030-01-01T06:20:00Z", &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        "nothing due at 2030-01-01T06:20:00Z; next: hourly at 2030-01-01T07:00:00Z, daily at 2030-01-02T06:00:00Z"
    );
}

#[test]
fn list_and_status_exit_2_on_an_unknown_time_zone_and_still_show_the_valid_suites() {
    let p = Project::new();
    echo_suite(&p, "a", Some("0 6 * * *"));
    p.write(
        "suites/tz.yaml",
        "suite: tz\nschedule: \"0 6 * * *\"\ntimezone: Mars/Olympus\nproviders:\n  - id: e\n    type: echo\nprompt: \"{{ q }}\"\ncases:\n  - {id: c1, vars: {q: hello}, expected: hello}\n",
    );
    let out = p.run(&["schedule", "--list", "--now", "2030-01-01T05:00:00Z"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("a: 0 6 * * * (UTC)"), "{text}");
    assert!(text.contains("next: 2030-01-01 06:00 UTC"), "{text}");
    assert!(
        text.contains("tz: cannot be scheduled (suites/tz.yaml)"),
        "{text}"
    );
    let err = stderr(&out);
    assert!(err.contains("suites/tz.yaml"), "{err}");
    assert!(err.contains("Mars/Olympus"), "{err}");
    let out = p.run(&["schedule", "--list", "--format", "json"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let rows: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(rows.as_array().map(Vec::len), Some(2), "{rows}");
    assert_eq!(rows[1]["suite"], "tz");
    assert_eq!(rows[1]["valid"], false);
    let out = p.run(&["schedule", "status"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stdout(&out).contains("tz  last: never"), "{}", stdout(&out));
}

#[test]
fn the_daemon_starts_despite_a_bad_suite_and_reports_one_that_breaks_until_fixed() {
    let p = Project::new();
    with_file_sink(&p);
    echo_suite(&p, "good", Some("@yearly"));
    echo_suite(&p, "bad", Some("99 6 * * *"));
    let (mut daemon, rx) = spawn(&p, SKIP_LATE);
    let mut seen = Vec::new();
    wait_line(&rx, "\"suite_invalid\"", &mut seen);
    wait_line(&rx, "\"window_skipped\"", &mut seen);
    assert!(
        seen.iter()
            .any(|l| l.contains("\"suite_invalid\"") && l.contains("\"suite\":\"bad\"")),
        "{}",
        seen.join("\n")
    );
    // `good` breaks while the daemon runs: reported and alerted on, not just dropped.
    echo_suite(&p, "good", Some("0 6 * * * *"));
    wait_line(&rx, "\"suite\":\"good\"", &mut seen);
    assert!(
        seen.last().is_some_and(|l| l.contains("\"suite_invalid\"")),
        "{}",
        seen.join("\n")
    );
    // Both fixed: both recover.
    echo_suite(&p, "good", Some("@yearly"));
    echo_suite(&p, "bad", Some("@yearly"));
    wait_line(&rx, "\"suite_recovered\"", &mut seen);
    wait_line(&rx, "\"suite_recovered\"", &mut seen);
    signal(daemon.id(), "-TERM");
    let status = daemon.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "{}", seen.join("\n"));
    let mut got = notices(&p);
    got.sort();
    assert_eq!(
        got,
        [
            unschedulable("alert", "bad"),
            unschedulable("alert", "good"),
            unschedulable("resolved", "bad"),
            unschedulable("resolved", "good"),
        ]
    );
}

#[test]
fn a_suite_s_own_catch_up_overrides_the_scheduler_s() {
    let p = Project::new();
    echo_suite(&p, "strict", Some("0 6 * * *"));
    echo_suite(&p, "lenient", Some("0 6 * * *"));
    // `strict` skips windows missed beyond the grace period, whatever the scheduler says.
    let path = p.path().join("suites/strict.yaml");
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(
        &path,
        text.replace("schedule:", "catch_up: skip\njitter: 5m\nschedule:"),
    )
    .expect("write");
    let out = once(&p, "2030-01-01T06:00:30Z", &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        runs_of(&p, "strict").len(),
        1,
        "on time: runs, and --once ignores jitter"
    );
    // Two days later at noon: the default `once` catches `lenient` up; `strict` skips.
    let out = once(&p, "2030-01-03T12:00:00Z", &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(runs_of(&p, "lenient").len(), 2);
    assert_eq!(runs_of(&p, "strict").len(), 1);
    let bad = p.path().join("suites/strict.yaml");
    let text = std::fs::read_to_string(&bad).expect("read");
    std::fs::write(&bad, text.replace("catch_up: skip", "catch_up: skp")).expect("write");
    let out = p.run(&["validate"]);
    assert_eq!(code(&out), 2);
    assert!(
        stdout(&out).contains("did you mean `skip`"),
        "{}",
        stdout(&out)
    );
}
