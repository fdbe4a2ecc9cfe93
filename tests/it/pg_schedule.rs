//! The scheduler and alerts on a PostgreSQL store shared by several hosts: three
//! schedulers with distinct host ids over many simulated windows (`schedule --once --now`),
//! a lease holder killed mid-run, and the alert scenarios on both backends with the same
//! outputs.

use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::alerts::{HOOK_SINK, Receiver, SECRET, answers, project, run};
use crate::pgdb::{Backend, PgDb, fresh_db};
use crate::support::{Project, code, signal, stderr, stdout};

/// `evalwatch ARGS` in `p` as host `host` (with the lease time `ttl` when given), started,
/// not waited for.
fn spawn_as(p: &Project, hook: &Receiver, host: &str, ttl: Option<&str>, args: &[&str]) -> Child {
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("evalwatch"));
    if let Some(ttl) = ttl {
        c.env("EVALWATCH_LEASE_TTL", ttl);
    }
    c.current_dir(p.path())
        .args(args)
        .env_remove("EVALWATCH_DB")
        .env_remove("EVALWATCH_CONFIG")
        .env("NO_COLOR", "1")
        .env("EVALWATCH_HOST_ID", host)
        .env("EW_TEST_HOOK_URL", &hook.url)
        .env("EW_TEST_HOOK_SECRET", SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some((url, password)) = &p.pg {
        c.env("EVALWATCH_DB", url).env("PGPASSWORD", password);
    }
    c.spawn().expect("spawn evalwatch")
}

/// The JSON events of a scheduler's stderr.
fn events(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn has_event(text: &str, event: &str) -> bool {
    events(text).iter().any(|e| e["event"] == event)
}

/// A PostgreSQL project: the alerting suite `faq` (hourly, `n` replayed cases, a pass-rate
/// rule) and a suite that cannot be scheduled, both alerting to the webhook.
fn hourly_project(db: &PgDb, n: usize) -> Project {
    let mut p = project(
        n,
        "  - {metric: pass_rate, drop: 0.05, severity: warning}\n",
        HOOK_SINK,
    );
    let path = p.path().join("suites/faq.yaml");
    let yaml = std::fs::read_to_string(&path).expect("read");
    std::fs::write(
        &path,
        yaml.replacen("suite: faq\n", "suite: faq\nschedule: \"@hourly\"\n", 1),
    )
    .expect("write");
    p.write(
        "suites/broken.yaml",
        "suite: broken\nschedule: \"99 * * * *\"\nproviders:\n  - {id: e, type: echo}\nprompt: \"{{ q }}\"\ncases:\n  - {id: c1, vars: {q: hi}, expected: hi}\n",
    );
    p.pg = Some((db.url.clone(), db.password.clone()));
    p
}

#[test]
fn three_hosts_run_each_window_once_send_each_alert_once_and_lose_no_result() {
    let Some(db) = fresh_db("three_hosts") else {
        return;
    };
    let hook = Receiver::start();
    let n = 40;
    let p = hourly_project(&db, n);
    let windows = 12;
    for w in 0..windows {
        // Windows 4 to 6 answer 10 cases wrongly: the alert opens at 4, resolves at 7.
        let wrong: Vec<usize> = if (4..7).contains(&w) {
            (0..10).collect()
        } else {
            Vec::new()
        };
        answers(&p, "faq", n, &wrong);
        let now = format!("2030-01-01T{w:02}:00:10Z");
        let children: Vec<Child> = ["host-a", "host-b", "host-c"]
            .iter()
            .map(|h| spawn_as(&p, &hook, h, None, &["schedule", "--once", "--now", &now]))
            .collect();
        let mut ran_here = 0;
        for c in children {
            let o = c.wait_with_output().expect("wait");
            let err = stderr(&o);
            // 2: `broken` cannot be scheduled (said by every host); 1 where a run alerted.
            assert!(
                [1, 2].contains(&code(&o)),
                "window {w}: exit {}\n{err}",
                code(&o)
            );
            assert!(!has_event(&err, "busy"), "window {w}: {err}");
            assert!(!has_event(&err, "error"), "window {w}: {err}");
            if has_event(&err, "run_started") {
                ran_here += 1;
            } else {
                assert!(has_event(&err, "window_claimed"), "window {w}: {err}");
            }
        }
        assert_eq!(ran_here, 1, "window {w} ran on exactly one host");
    }
    let mut c = db.client();
    // Each window: one fire record, `ran`, and one complete run with every result.
    let fires: Vec<(String, String)> = c
        .query(
            "SELECT scheduled_for, outcome FROM schedule_fires WHERE suite = 'faq' ORDER BY id",
            &[],
        )
        .expect("fires")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let expected: Vec<(String, String)> = (0..windows)
        .map(|w| (format!("2030-01-01T{w:02}:00:00.000Z"), "ran".to_owned()))
        .collect();
    assert_eq!(fires, expected);
    let runs: Vec<(String, String, i64)> = c
        .query(
            "SELECT r.status, r.host, (SELECT count(*) FROM results x WHERE x.run_ref = r.id)
             FROM runs r ORDER BY r.id",
            &[],
        )
        .expect("runs")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(runs.len(), windows, "{runs:?}");
    for (status, _, results) in &runs {
        assert_eq!(status, "complete", "{runs:?}");
        assert_eq!(*results, i64::try_from(n).unwrap(), "{runs:?}");
    }
    let hosts: std::collections::BTreeSet<&str> = runs.iter().map(|r| r.1.as_str()).collect();
    assert!(
        hosts.iter().all(|h| h.starts_with("host-")),
        "runs are stored with the host id: {hosts:?}"
    );
    // Each notice sent once: the unschedulable alert, the pass-rate alert and its
    // resolution; none pending.
    let mut got: Vec<(String, String)> = hook
        .received()
        .iter()
        .map(|r| {
            let b = r.json();
            (
                b["event"].as_str().unwrap_or_default().to_owned(),
                format!(
                    "{}/{}",
                    b["suite"].as_str().unwrap_or_default(),
                    b["metric"]
                ),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("alert".to_owned(), "broken/\"unschedulable\"".to_owned()),
            ("alert".to_owned(), "faq/\"pass_rate\"".to_owned()),
            ("resolved".to_owned(), "faq/\"pass_rate\"".to_owned()),
        ]
    );
    let pending: i64 = c
        .query_one(
            "SELECT count(*) FROM alert_deliveries WHERE delivered_at IS NULL",
            &[],
        )
        .expect("pending")
        .get(0);
    assert_eq!(pending, 0);
    let leases: i64 = c
        .query_one("SELECT count(*) FROM schedule_leases", &[])
        .expect("leases")
        .get(0);
    assert_eq!(leases, 0, "every lease released");
}

/// A suite whose exec provider takes `secs` per call, one at a time, yearly: its latest
/// window is late, so catch-up runs it at once (on the real clock: the killed run's start
/// and the windows must be on one clock).
fn slow_suite(p: &Project, n: usize, secs: &str) {
    use std::fmt::Write as _;
    let mut cases = String::new();
    for i in 0..n {
        let _ = writeln!(cases, "  - {{id: c{i}, vars: {{q: q{i}}}, expected: Q{i}}}");
    }
    p.write(
        "suites/slow.yaml",
        &format!(
            "suite: slow\nschedule: \"@yearly\"\nproviders:\n  - id: x\n    type: exec\n    concurrency: 1\n    command: [sh, -c, 'sleep {secs}; tr a-z A-Z']\nprompt: \"{{{{ q }}}}\"\ncases:\n{cases}"
        ),
    );
}

/// The lease time of the kill test: short, so that the takeover comes soon.
const TTL: &str = "3s";

#[test]
fn a_killed_lease_holder_on_one_host_is_taken_over_by_another_after_the_lease_time() {
    let Some(db) = fresh_db("killed_holder") else {
        return;
    };
    let hook = Receiver::start();
    let mut p = Project::new();
    p.pg = Some((db.url.clone(), db.password.clone()));
    slow_suite(&p, 400, "0.05");
    let once = ["schedule", "--once"];
    let mut a = spawn_as(&p, &hook, "host-a", Some(TTL), &once);
    let mut c = db.client();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(
            Instant::now() < deadline,
            "host-a never took the lease and began its run"
        );
        // An error until host-a made the store's tables. Its run's row is written with its
        // first results.
        let held = c.query_opt(
            "SELECT l.host FROM schedule_leases l, runs r
             WHERE l.suite = 'slow' AND l.host = 'host-a' AND r.host = 'host-a'",
            &[],
        );
        if matches!(held, Ok(Some(_))) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    signal(a.id(), "-KILL");
    let _ = a.wait();
    // Its last lease and claim stay behind, with no heartbeat from now on.
    let dead_until: String = c
        .query_one(
            "SELECT expires_at FROM schedule_leases WHERE suite = 'slow'",
            &[],
        )
        .expect("the dead lease")
        .get(0);
    slow_suite(&p, 2, "0");
    // Host b tries the same window until it takes it over.
    let mut tries = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "host-b never took over: {tries:#?}"
        );
        let o = spawn_as(&p, &hook, "host-b", Some(TTL), &once)
            .wait_with_output()
            .expect("wait");
        let err = stderr(&o);
        assert_eq!(code(&o), 0, "{err}");
        assert!(!has_event(&err, "busy"), "{err}");
        if has_event(&err, "run_started") {
            assert!(has_event(&err, "window_taken_over"), "{err}");
            break;
        }
        // Until then the killed run counts as running: nothing is due.
        tries.push(err);
        std::thread::sleep(Duration::from_millis(500));
    }
    // Taken over no earlier than the dead lease's expiry (the server's clock, both).
    let claims: Vec<(String, String, String, i64)> = c
        .query(
            "SELECT scheduled_for, host, claimed_at, done FROM schedule_claims",
            &[],
        )
        .expect("claims")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(claims.len(), 1, "{claims:?}");
    let (window, claim_host, claimed_at, done) = claims.into_iter().next().expect("a claim");
    assert_eq!((claim_host.as_str(), done), ("host-b", 1));
    assert!(claimed_at >= dead_until, "{claimed_at} < {dead_until}");
    let runs: Vec<(String, String)> = c
        .query("SELECT host, status FROM runs ORDER BY id", &[])
        .expect("runs")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        runs,
        [
            ("host-a".to_owned(), "incomplete".to_owned()),
            ("host-b".to_owned(), "complete".to_owned())
        ]
    );
    let fires: Vec<(String, String)> = c
        .query("SELECT scheduled_for, outcome FROM schedule_fires", &[])
        .expect("fires")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(fires, [(window, "ran".to_owned())]);
    // The window is done with: a third host does nothing.
    let o = spawn_as(&p, &hook, "host-c", Some(TTL), &once)
        .wait_with_output()
        .expect("wait");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!has_event(&stderr(&o), "run_started"), "{}", stderr(&o));
}

/// What `alerts list --format json` says, without ids and times.
fn alert_list(p: &Project, hook: &Receiver) -> Value {
    let o = run(p, hook, &["alerts", "list", "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let list: Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    let keep = |a: &Value| {
        let mut m = serde_json::Map::new();
        for k in ["suite", "rule", "metric", "provider", "severity", "state"] {
            m.insert(k.into(), a[k].clone());
        }
        Value::Object(m)
    };
    serde_json::json!({
        "alerts": list["alerts"].as_array().expect("alerts").iter().map(keep).collect::<Vec<_>>(),
        "pending": list["pending"].as_array().expect("pending").len(),
    })
}

/// The alert scenario on one backend: what each step exited with and showed.
fn alert_scenario(backend: &Backend) -> BTreeMap<String, Value> {
    let hook = Receiver::start();
    let p = backend.project(project(
        100,
        "  - {metric: pass_rate, drop: 0.05, severity: critical}\n",
        HOOK_SINK,
    ));
    let mut seen = BTreeMap::new();
    let o = run(&p, &hook, &["run"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = run(&p, &hook, &["alerts", "check"]);
    seen.insert("1 check healthy".into(), code(&o).into());
    // The sink is down when the regression comes: the notice waits in the queue.
    hook.down.store(true, Ordering::SeqCst);
    answers(&p, "faq", 100, &(0..20).collect::<Vec<_>>());
    let o = run(&p, &hook, &["run"]);
    seen.insert("2 run broken".into(), code(&o).into());
    seen.insert("3 list queued".into(), alert_list(&p, &hook));
    // Back up: three concurrent checks send the notice once.
    hook.down.store(false, Ordering::SeqCst);
    let children: Vec<Child> = ["host-a", "host-b", "host-c"]
        .iter()
        .map(|h| spawn_as(&p, &hook, h, None, &["alerts", "check"]))
        .collect();
    let codes: Vec<i32> = children
        .into_iter()
        .map(|c| code(&c.wait_with_output().expect("wait")))
        .collect();
    seen.insert("4 concurrent checks".into(), codes.into());
    let sent: Vec<Value> = hook
        .received()
        .iter()
        .map(|r| {
            let b = r.json();
            serde_json::json!([b["event"], b["suite"], b["metric"], b["severity"]])
        })
        .collect();
    seen.insert("5 sent".into(), sent.into());
    seen.insert("6 list open".into(), alert_list(&p, &hook));
    answers(&p, "faq", 100, &[]);
    let o = run(&p, &hook, &["run"]);
    seen.insert("7 run fixed".into(), code(&o).into());
    seen.insert("8 list resolved".into(), alert_list(&p, &hook));
    seen.insert("9 notices".into(), hook.received().len().into());
    seen
}

#[test]
fn alerts_check_list_and_deliveries_are_the_same_on_both_backends() {
    let mut outcomes = Vec::new();
    for backend in Backend::all("alerts_both") {
        let seen = alert_scenario(&backend);
        outcomes.push((backend.name(), seen));
    }
    let (_, sqlite) = &outcomes[0];
    // The scenario itself, as SQLite says it.
    assert_eq!(sqlite["1 check healthy"], 0);
    assert_eq!(sqlite["2 run broken"], 1);
    assert_eq!(sqlite["3 list queued"]["pending"], 1);
    assert_eq!(sqlite["4 concurrent checks"], serde_json::json!([1, 1, 1]));
    assert_eq!(
        sqlite["5 sent"],
        serde_json::json!([["alert", "faq", "pass_rate", "critical"]])
    );
    assert_eq!(sqlite["6 list open"]["alerts"][0]["state"], "open");
    assert_eq!(sqlite["6 list open"]["pending"], 0);
    assert_eq!(sqlite["7 run fixed"], 0);
    assert_eq!(sqlite["8 list resolved"]["alerts"][0]["state"], "resolved");
    assert_eq!(sqlite["9 notices"], 2);
    for (name, seen) in &outcomes[1..] {
        assert_eq!(seen, sqlite, "{name} differs from sqlite");
    }
}
