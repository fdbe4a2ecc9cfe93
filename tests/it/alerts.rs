//! Alerts end to end: the real binary on replay suites, notices sent to a loopback webhook
//! receiver whose requests are asserted exactly.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;

use super::support::{Project, code, json_runs, replay_suite, stderr, stdout};

pub(crate) const SECRET: &str = "s3cret-hmac-key";

/// One request the receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    signature: Option<String>,
    pub(crate) event: Option<String>,
    delivery: Option<String>,
    body: String,
}

impl Received {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("JSON body")
    }
}

/// A loopback webhook receiver: records every request; answers 503 while `down`.
pub(crate) struct Receiver {
    pub(crate) url: String,
    got: Arc<Mutex<Vec<Received>>>,
    pub(crate) down: Arc<AtomicBool>,
    /// How long the receiver takes to answer (a slow receiver), in ms.
    delay_ms: Arc<AtomicU64>,
    _rt: tokio::runtime::Runtime,
}

impl Receiver {
    pub(crate) fn start() -> Self {
        use axum::http::{HeaderMap, StatusCode};
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let down = Arc::new(AtomicBool::new(false));
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let delay_ms = Arc::new(AtomicU64::new(0));
        let (g, d, w) = (got.clone(), down.clone(), delay_ms.clone());
        let app = axum::Router::new().route(
            "/hook/{token}",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let (g, d, w) = (g.clone(), d.clone(), w.clone());
                async move {
                    if d.load(Ordering::SeqCst) {
                        return StatusCode::SERVICE_UNAVAILABLE;
                    }
                    let h = |k: &str| {
                        headers
                            .get(k)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned)
                    };
                    g.lock().expect("lock").push(Received {
                        signature: h("x-evalwatch-signature"),
                        event: h("x-evalwatch-event"),
                        delivery: h("x-evalwatch-delivery"),
                        body,
                    });
                    // Recorded on arrival: a sender that gives up waiting still sent it.
                    let wait = w.load(Ordering::SeqCst);
                    if wait > 0 {
                        tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                    }
                    StatusCode::OK
                }
            }),
        );
        rt.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://127.0.0.1:{port}/hook/TOKEN-IN-URL"),
            got,
            down,
            delay_ms,
            _rt: rt,
        }
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }
}

pub(crate) fn verify(r: &Received) {
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(r.body.as_bytes());
    let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(r.signature.as_deref(), Some(want.as_str()), "signature");
}

/// Rewrite the replay recordings of suite `name`: the cases in `wrong` answer wrongly.
pub(crate) fn answers(p: &Project, name: &str, n: usize, wrong: &[usize]) {
    let mut rec = String::new();
    for i in 0..n {
        let answer = if wrong.contains(&i) { "wrong" } else { "right" };
        let _ = writeln!(
            rec,
            "{{\"case_id\": \"c{i}\", \"output\": \"the answer is {answer}\", \"latency_ms\": {}}}",
            100 + i % 50
        );
    }
    p.write(&format!("suites/{name}.jsonl"), &rec);
}

/// A project with a webhook sink and a suite of `n` replayed cases with `rules` appended.
pub(crate) fn project(n: usize, rules: &str, sinks: &str) -> Project {
    let p = Project::new();
    let path = replay_suite(&p, "faq", n, 0);
    let mut yaml = std::fs::read_to_string(&path).unwrap();
    yaml.push_str("alerts:\n");
    yaml.push_str(rules);
    std::fs::write(&path, yaml).unwrap();
    p.write("evalwatch.yaml", &format!("sinks:\n{sinks}"));
    p
}

pub(crate) const HOOK_SINK: &str = "  - {id: hook, type: webhook, url_env: EW_TEST_HOOK_URL, secret_env: EW_TEST_HOOK_SECRET, retries: 1}\n";

pub(crate) fn run(p: &Project, hook: &Receiver, args: &[&str]) -> std::process::Output {
    p.cmd()
        .args(args)
        .env("EW_TEST_HOOK_URL", &hook.url)
        .env("EW_TEST_HOOK_SECRET", SECRET)
        .output()
        .expect("run evalwatch")
}

#[test]
fn a_planted_regression_alerts_once_and_resolves_once() {
    let hook = Receiver::start();
    let p = project(
        200,
        "  - {metric: pass_rate, drop: 0.05, severity: critical, runbook: 'https://wiki.example/rb'}\n",
        HOOK_SINK,
    );
    let go = |args: &[&str]| run(&p, &hook, args);
    // Two healthy runs: nothing to say.
    for _ in 0..2 {
        let o = go(&["run", "--format", "json"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert_eq!(json_runs(&o)[0]["alerts"], Value::Array(vec![]));
    }
    assert!(hook.received().is_empty());
    // 30 cases break: -15 points.
    let broken: Vec<usize> = (0..30).map(|i| i * 5).collect();
    answers(&p, "faq", 200, &broken);
    let o = go(&["run", "--format", "json"]);
    assert_eq!(
        code(&o),
        1,
        "a critical alert fails the run\n{}",
        stderr(&o)
    );
    let out = json_runs(&o);
    let alerts = out[0]["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["metric"], "pass_rate");
    assert_eq!(alerts[0]["severity"], "critical");
    assert_eq!(alerts[0]["baseline"], "previous");
    assert_eq!(alerts[0]["new"], true);
    assert!((alerts[0]["value"].as_f64().unwrap() - 0.85).abs() < 1e-9);
    let got = hook.received();
    assert_eq!(got.len(), 1, "exactly one alert: {got:?}");
    verify(&got[0]);
    assert_eq!(got[0].event.as_deref(), Some("alert"));
    assert!(got[0].delivery.is_some());
    let body = got[0].json();
    assert_eq!(body["event"], "alert");
    assert_eq!(body["suite"], "faq");
    assert_eq!(body["provider"], "rec");
    assert_eq!(body["rule"], "pass_rate drop 0.05 vs previous");
    assert_eq!(body["severity"], "critical");
    assert_eq!(body["run_id"], out[0]["run_id"]);
    assert_eq!(body["since_run"], out[0]["run_id"]);
    assert!((body["value"].as_f64().unwrap() - 0.85).abs() < 1e-9);
    assert!((body["baseline_value"].as_f64().unwrap() - 1.0).abs() < 1e-9);
    assert_eq!(body["test"]["name"], "mcnemar");
    assert!(body["test"]["p_value"].as_f64().unwrap() < 1e-6);
    assert_eq!(body["flipped"]["total"], 30);
    assert_eq!(body["flipped"]["cases"][0]["case_id"], "c0");
    // Every case failing against the baseline is in the payload; the text names 10.
    assert_eq!(body["flipped"]["cases"].as_array().unwrap().len(), 30);
    assert!(
        body["text"].as_str().unwrap().contains("and 20 more"),
        "{}",
        body["text"]
    );
    assert_eq!(body["runbook"], "https://wiki.example/rb");
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .contains("runbook: https://wiki.example/rb")
    );
    // The secret and the URL's token appear nowhere.
    assert!(!got[0].body.contains(SECRET) && !got[0].body.contains("TOKEN-IN-URL"));
    // Still broken: the alert stays open (the run still fails), no second notice.
    let o = go(&["run", "--format", "json"]);
    assert_eq!(code(&o), 1);
    assert_eq!(json_runs(&o)[0]["alerts"][0]["new"], false);
    assert_eq!(hook.received().len(), 1);
    // Fixed: one resolved notice.
    answers(&p, "faq", 200, &[]);
    let o = go(&["run", "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(json_runs(&o)[0]["alerts"], Value::Array(vec![]));
    let got = hook.received();
    assert_eq!(got.len(), 2, "{got:?}");
    verify(&got[1]);
    let body = got[1].json();
    assert_eq!(body["event"], "resolved");
    assert_eq!(got[1].event.as_deref(), Some("resolved"));
    assert_eq!(body["alert_id"], got[0].json()["alert_id"]);
    assert_eq!(body["since_run"], got[0].json()["run_id"]);
    // Healthy again: silence.
    let o = go(&["run"]);
    assert_eq!(code(&o), 0);
    assert_eq!(hook.received().len(), 2);
    // `alerts list` shows the resolved episode.
    let o = go(&["alerts", "list", "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let list: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(list["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(list["alerts"][0]["state"], "resolved");
    assert_eq!(list["pending"], Value::Array(vec![]));
}

#[test]
fn a_sink_outage_delays_the_notice_but_never_loses_it_or_fails_the_run() {
    let hook = Receiver::start();
    let p = project(
        100,
        "  - {metric: pass_rate, drop: 0.05, severity: warning}\n",
        HOOK_SINK,
    );
    let go = |args: &[&str]| run(&p, &hook, args);
    assert_eq!(code(&go(&["run"])), 0);
    answers(&p, "faq", 100, &(0..20).collect::<Vec<_>>());
    hook.down.store(true, Ordering::SeqCst);
    let o = go(&["run", "--format", "json"]);
    // A warning alert does not fail the run (default --fail-on critical), and nor does the sink.
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(json_runs(&o)[0]["alerts"].as_array().unwrap().len(), 1);
    assert!(stderr(&o).contains("stay queued"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("TOKEN-IN-URL"), "{}", stderr(&o));
    assert!(hook.received().is_empty());
    let o = go(&["alerts", "list"]);
    assert!(
        stdout(&o).contains("sink `hook`: 1 notice(s) not yet delivered"),
        "{}",
        stdout(&o)
    );
    // --fail-on warning makes the same open alert fail a check.
    hook.down.store(false, Ordering::SeqCst);
    let o = go(&["alerts", "check", "--fail-on", "warning"]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let got = hook.received();
    assert_eq!(got.len(), 1, "delivered once after the outage: {got:?}");
    verify(&got[0]);
    assert_eq!(got[0].json()["event"], "alert");
    assert_eq!(got[0].json()["severity"], "warning");
    // Nothing left to send.
    assert_eq!(code(&go(&["alerts", "check"])), 0);
    assert_eq!(hook.received().len(), 1);
}

#[test]
fn stable_noise_does_not_fire() {
    let hook = Receiver::start();
    let p = project(
        200,
        "  - {metric: pass_rate, drop: 0.02, severity: critical}\n  - {metric: pass_rate, drop: 0.02, baseline: 'trailing:3', severity: critical}\n",
        HOOK_SINK,
    );
    // ~10% of cases fail; each run 3 different cases wobble.
    let base: Vec<usize> = (0..20).map(|i| i * 10).collect();
    for k in 0..6usize {
        let mut wrong = base.clone();
        wrong.retain(|&i| i != (k * 30) % 200);
        wrong.extend([(k * 37 + 1) % 200, (k * 53 + 2) % 200]);
        answers(&p, "faq", 200, &wrong);
        let o = run(&p, &hook, &["run", "--format", "json"]);
        assert_eq!(code(&o), 0, "run {k}: {}", stderr(&o));
        assert_eq!(json_runs(&o)[0]["alerts"], Value::Array(vec![]), "run {k}");
    }
    assert!(hook.received().is_empty());
}

#[test]
fn file_sink_and_threshold_rules_with_pinned_baseline() {
    let p = project(
        50,
        "  - {metric: pass_rate, drop: 0.1, baseline: pinned, severity: critical}\n  - {metric: pass_rate, min: 0.5, severity: info}\n",
        "  - {id: log, type: file, path: alerts.jsonl}\n  - {id: pager, type: command, command: [sh, -c, 'cat >> paged.jsonl'], min_severity: critical}\n",
    );
    let o = p.run(&["run", "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let first = json_runs(&o)[0]["run_id"].as_str().unwrap().to_owned();
    let o = p.run(&["baseline", "pin", &first[..first.len() - 2]]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains(&first));
    // Degrade a little at a time: 4 points per run never trips `previous`, but does trip
    // the pinned baseline once the total passes 10 points.
    let mut fired_at = None;
    for k in 1..=4usize {
        answers(&p, "faq", 50, &(0..2 * k).collect::<Vec<_>>());
        let o = p.run(&["run", "--format", "json"]);
        let alerts = json_runs(&o)[0]["alerts"].as_array().unwrap().clone();
        if !alerts.is_empty() && fired_at.is_none() {
            fired_at = Some(k);
            assert_eq!(alerts[0]["baseline"], "pinned");
            assert_eq!(code(&o), 1);
        }
    }
    assert!(fired_at.is_some_and(|k| k >= 3), "{fired_at:?}");
    let log = std::fs::read_to_string(p.path().join("alerts.jsonl")).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert_eq!(lines[0]["baseline"], "pinned");
    let paged = std::fs::read_to_string(p.path().join("paged.jsonl")).unwrap();
    assert_eq!(paged.lines().count(), 1);
    // Below the floor: an info alert, which the critical-only command sink does not get.
    answers(&p, "faq", 50, &(0..30).collect::<Vec<_>>());
    // The critical regression is still open: `run` keeps exiting 1 (`--fail-on critical`).
    let (_, alerts) = run_alerts(&p, 1);
    assert!(
        alerts
            .iter()
            .any(|a| a["rule"] == "pass_rate min 0.5" && a["severity"] == "info")
    );
    let paged = std::fs::read_to_string(p.path().join("paged.jsonl")).unwrap();
    assert_eq!(paged.lines().count(), 1);
    let log = std::fs::read_to_string(p.path().join("alerts.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 2);
}

#[test]
fn missed_run_is_the_dead_man_switch() {
    let p = project(
        5,
        "  - {metric: missed_run, after: 1s, severity: critical}\n",
        "  - {id: log, type: file, path: alerts.jsonl}\n",
    );
    // Never run: nothing to miss.
    assert_eq!(code(&p.run(&["alerts", "check"])), 0);
    assert_eq!(code(&p.run(&["run"])), 0);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let o = p.run(&["alerts", "check"]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("no complete run for"), "{}", stdout(&o));
    let o = p.run(&["alerts", "check"]);
    assert_eq!(code(&o), 1, "still open");
    // A run resolves it.
    assert_eq!(code(&p.run(&["run"])), 0);
    let log = std::fs::read_to_string(p.path().join("alerts.jsonl")).unwrap();
    let events: Vec<String> = log
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(events, ["alert", "resolved"]);
}

#[test]
fn bad_rules_are_located_errors_for_check_and_run() {
    let p = project(
        5,
        "  - {metric: pass_rte, drop: 0.05}\n",
        "  - {id: out, type: stdout}\n",
    );
    // `alerts check` and `run` judge rules as `validate` does: a located error, exit 2
    // (a typo must never quietly disarm alerting).
    let re = regex::Regex::new(
        r"faq\.yaml:\d+:\d+: unknown metric `pass_rte`; did you mean `pass_rate`\?",
    )
    .expect("regex");
    for cmd in [&["alerts", "check"][..], &["run"][..]] {
        let o = p.run(cmd);
        assert_eq!(code(&o), 2, "{cmd:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(re.is_match(&err), "{cmd:?}: {err}");
    }
    let o = p.run(&["baseline", "pin", "nope"]);
    assert_eq!(code(&o), 2);
}

#[test]
fn a_stdout_sink_never_corrupts_machine_output() {
    let p = project(
        50,
        "  - {metric: pass_rate, drop: 0.1, baseline: previous, severity: warning}\n",
        "  - {id: screen, type: stdout}\n",
    );
    let o = p.run(&["run", "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    answers(&p, "faq", 50, &(0..30).collect::<Vec<_>>());
    let o = p.run(&["run", "--format", "json"]);
    assert_eq!(
        code(&o),
        0,
        "a warning does not fail the run: {}",
        stderr(&o)
    );
    // Every stdout line is JSON (json_runs panics otherwise), and the alert is in it.
    let runs = json_runs(&o);
    assert_eq!(runs.len(), 1, "{}", stdout(&o));
    assert_eq!(runs[0]["alerts"][0]["metric"], "pass_rate");
    assert!(
        stderr(&o).contains("pass_rate"),
        "the notice went to stderr: {}",
        stderr(&o)
    );
    // In a text run the sink prints on stdout, as configured: here the recovery notice.
    answers(&p, "faq", 50, &[]);
    let o = p.run(&["run"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).to_lowercase().contains("resolved"),
        "{}",
        stdout(&o)
    );
}

/// `run` streams its cases, so the alert step gets a suite without them: rules on a named
/// metric (`metric:` of an assertion) are still known, and a rule on a tag still sees the
/// tagged cases (their tags come from the store).
#[test]
fn named_metric_and_tag_rules_work_on_a_streamed_run() {
    let hook = Receiver::start();
    let n = 100;
    let p = project(
        n,
        "  - {metric: correct, min: 0.5, severity: warning}\n  - {metric: pass_rate, drop: 0.05, tag: billing, severity: critical}\n",
        HOOK_SINK,
    );
    let mut cases = String::new();
    for i in 0..n {
        let tags = if i % 2 == 0 { "[\"billing\"]" } else { "[]" };
        let _ = writeln!(
            cases,
            "{{\"id\": \"c{i}\", \"tags\": {tags}, \"vars\": {{\"q\": \"question {i}\"}}, \"expected\": \"right\", \"assert\": [{{\"type\": \"icontains\", \"value\": \"right\", \"metric\": \"correct\"}}]}}"
        );
    }
    p.write("suites/cases/faq.jsonl", &cases);
    let go = |args: &[&str]| run(&p, &hook, args);
    for _ in 0..2 {
        let o = go(&["run", "--format", "json"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert_eq!(
            json_runs(&o)[0]["alerts"],
            Value::Array(vec![]),
            "{}",
            stderr(&o)
        );
    }
    // 10 billing cases break: -20 points on the tag, -10 overall.
    let broken: Vec<usize> = (0..10).map(|i| i * 2).collect();
    answers(&p, "faq", n, &broken);
    let o = go(&["run", "--format", "json"]);
    assert_eq!(code(&o), 1, "the tag rule fires\n{}", stderr(&o));
    let alerts = json_runs(&o)[0]["alerts"].clone();
    let fired: Vec<&Value> = alerts.as_array().expect("alerts").iter().collect();
    assert_eq!(fired.len(), 1, "{alerts}");
    assert_eq!(fired[0]["tag"], "billing", "{alerts}");
    assert_eq!(fired[0]["metric"], "pass_rate");
}

/// Run evalwatch with stdout and stderr on a pipe whose reader has already gone, as in
/// `evalwatch run 2>&1 | head -2` once `head` has its two lines.
fn run_into_closed_pipe(p: &Project, hook: &Receiver, args: &[&str]) -> std::process::Output {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("evalwatch"));
    cmd.current_dir(p.path())
        .args(args)
        .env_remove("EVALWATCH_DB")
        .env_remove("EVALWATCH_CONFIG")
        .env("NO_COLOR", "1")
        .env("EW_TEST_HOOK_URL", &hook.url)
        .env("EW_TEST_HOOK_SECRET", SECRET)
        .stdout(writer.try_clone().expect("clone"))
        .stderr(writer);
    let status = cmd.status().expect("run evalwatch");
    std::process::Output {
        status,
        stdout: Vec::new(),
        stderr: Vec::new(),
    }
}

#[test]
fn a_closed_pipe_never_panics_nor_costs_a_notice() {
    let hook = Receiver::start();
    let p = project(
        100,
        "  - {metric: pass_rate, drop: 0.05, severity: warning}\n",
        &format!("{HOOK_SINK}  - {{id: screen, type: stdout}}\n"),
    );
    assert_eq!(code(&run(&p, &hook, &["run"])), 0);
    answers(&p, "faq", 100, &(0..20).collect::<Vec<_>>());
    let o = run(&p, &hook, &["run"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(hook.received().len(), 1, "the alert");
    // Fixed, and the run that resolves the alert prints into a closed pipe.
    answers(&p, "faq", 100, &[]);
    for args in [&["run", "-v"][..], &["run", "--format", "json"][..]] {
        let o = run_into_closed_pipe(&p, &hook, args);
        assert_eq!(code(&o), 0, "{args:?}: no panic (101), no error");
    }
    let got = hook.received();
    assert_eq!(got.len(), 2, "the resolved notice, once: {got:?}");
    assert_eq!(got[1].json()["event"], "resolved");
    // Later runs and checks send nothing again; the stdout sink's notice that met the
    // closed pipe is still queued, and printed once stdout is back.
    let o = run(&p, &hook, &["alerts", "check"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stdout(&o).matches("[RESOLVED]").count(),
        1,
        "{}",
        stdout(&o)
    );
    let o = run(&p, &hook, &["alerts", "check"]);
    assert_eq!(
        stdout(&o).matches("[RESOLVED]").count(),
        0,
        "{}",
        stdout(&o)
    );
    assert_eq!(hook.received().len(), 2);
    let o = run(&p, &hook, &["alerts", "list", "--format", "json"]);
    let list: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(list["pending"], Value::Array(vec![]), "{list}");
}

/// Two rules that fire on the same broken run, their notices queued while the receiver is
/// down: (project, receiver).
fn queued_notices(sinks: &str) -> (Project, Receiver) {
    let hook = Receiver::start();
    let p = project(
        100,
        "  - {metric: pass_rate, drop: 0.05, severity: warning}\n  - {metric: pass_rate, min: 0.9, severity: critical}\n",
        sinks,
    );
    assert_eq!(code(&run(&p, &hook, &["run"])), 0);
    answers(&p, "faq", 100, &(0..20).collect::<Vec<_>>());
    hook.down.store(true, Ordering::SeqCst);
    let o = run(&p, &hook, &["run", "--format", "json"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert_eq!(json_runs(&o)[0]["alerts"].as_array().unwrap().len(), 2);
    assert!(hook.received().is_empty());
    hook.down.store(false, Ordering::SeqCst);
    (p, hook)
}

#[test]
fn concurrent_senders_never_send_a_notice_twice() {
    let (p, hook) = queued_notices(HOOK_SINK);
    // A receiver that takes a while, so that the senders overlap.
    hook.delay_ms.store(300, Ordering::SeqCst);
    let children: Vec<std::process::Child> = (0..3)
        .map(|_| {
            std::process::Command::new(assert_cmd::cargo::cargo_bin("evalwatch"))
                .current_dir(p.path())
                .args(["alerts", "check"])
                .env_remove("EVALWATCH_DB")
                .env_remove("EVALWATCH_CONFIG")
                .env("NO_COLOR", "1")
                .env("EW_TEST_HOOK_URL", &hook.url)
                .env("EW_TEST_HOOK_SECRET", SECRET)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().expect("wait");
        // The critical alert is open: exit 1, not a crash or a store error.
        assert_eq!(code(&o), 1, "{}", stderr(&o));
    }
    let got = hook.received();
    let mut ids: Vec<String> = got.iter().filter_map(|r| r.delivery.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(got.len(), 2, "each notice once: {got:?}");
    assert_eq!(ids.len(), 2, "{got:?}");
    let o = run(&p, &hook, &["alerts", "list", "--format", "json"]);
    let list: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(list["pending"], Value::Array(vec![]), "{list}");
}

#[test]
fn a_slow_receiver_gets_one_post_per_round_and_is_told_about() {
    let hook = Receiver::start();
    let p = project(
        100,
        "  - {metric: pass_rate, drop: 0.05, severity: warning}\n",
        "  - {id: hook, type: webhook, url_env: EW_TEST_HOOK_URL, retries: 2, timeout: 1s}\n",
    );
    assert_eq!(code(&run(&p, &hook, &["run"])), 0);
    answers(&p, "faq", 100, &(0..20).collect::<Vec<_>>());
    // Slower than the sink's timeout: every POST times out (but arrives).
    hook.delay_ms.store(2500, Ordering::SeqCst);
    let o = run(&p, &hook, &["run"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("sink `hook`") && err.contains("timed out after 1s"),
        "{err}"
    );
    assert!(
        err.contains("by `run` from"),
        "the next attempt is said: {err}"
    );
    hook.delay_ms.store(0, Ordering::SeqCst);
    assert_eq!(hook.received().len(), 1, "one POST, not one per retry");
    // The next `run` respects the backoff: no second POST yet, and says so.
    let o = run(&p, &hook, &["run"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(hook.received().len(), 1, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("sink `hook` failed before and is not tried again until")
            && err.contains("1 notice(s) for this sink stay queued"),
        "{err}"
    );
    let o = run(&p, &hook, &["alerts", "list"]);
    let out = stdout(&o);
    assert!(
        out.contains("sink `hook`: 1 notice(s) not yet delivered; last error: timed out after 1s"),
        "{out}"
    );
    let o = run(&p, &hook, &["alerts", "list", "--format", "json"]);
    let list: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(list["pending"][0]["next_attempt_at"].is_string(), "{list}");
    // `alerts check` sends it at once; the same delivery id as the POST that timed out.
    let o = run(&p, &hook, &["alerts", "check"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let got = hook.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].delivery, got[1].delivery);
}

#[test]
fn each_sink_reports_its_own_queue() {
    let (p, hook) = queued_notices(&format!(
        "{HOOK_SINK}  - {{id: pager, type: command, command: [sh, -c, 'exit 3'], retries: 0, min_severity: critical}}\n"
    ));
    hook.down.store(true, Ordering::SeqCst);
    let o = run(&p, &hook, &["alerts", "check"]);
    let err = stderr(&o);
    assert!(
        err.contains("sink `hook`") && err.contains("2 notice(s) for this sink stay queued"),
        "{err}"
    );
    assert!(
        err.contains("sink `pager`") && err.contains("1 notice(s) for this sink stay queued"),
        "{err}"
    );
}

#[test]
fn slack_posts_carry_the_delivery_id() {
    // (X-Evalwatch-Delivery, body) of each POST.
    type Posts = Arc<Mutex<Vec<(Option<String>, Value)>>>;
    let got: Posts = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/services/{token}",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, axum::Json(body): axum::Json<Value>| {
                let g = g.clone();
                async move {
                    let id = headers
                        .get("x-evalwatch-delivery")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    g.lock().expect("lock").push((id, body));
                    "ok"
                }
            },
        ),
    );
    let addr = super::support::serve_on_loopback(app);
    let p = project(
        50,
        "  - {metric: pass_rate, min: 0.9, severity: critical}\n",
        "  - {id: chat, type: slack, url_env: EW_TEST_SLACK_URL}\n",
    );
    answers(&p, "faq", 50, &(0..10).collect::<Vec<_>>());
    let o = p
        .cmd()
        .args(["run"])
        .env("EW_TEST_SLACK_URL", format!("http://{addr}/services/T0KEN"))
        .output()
        .expect("run");
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let got = got.lock().expect("lock").clone();
    assert_eq!(got.len(), 1, "{got:?}");
    let id = got[0].0.clone().expect("delivery header");
    let text = got[0].1["text"].as_str().expect("text");
    assert!(text.contains(&format!("evalwatch delivery {id}")), "{text}");
}

#[test]
fn verbose_says_for_each_rule_what_was_tested_and_why() {
    let hook = Receiver::start();
    let p = project(
        10,
        "  - {metric: pass_rate, drop: 0.05, severity: warning}\n  - {metric: pass_rate, drop: 0.05, baseline: 'trailing:7', severity: critical}\n  - {metric: latency_p95_ms, ratio: 3.0}\n",
        HOOK_SINK,
    );
    answers(&p, "faq", 10, &[0]);
    assert_eq!(code(&run(&p, &hook, &["run"])), 0);
    // 2 more of 10 fail: 90% -> 70%, not significant on 10 cases.
    answers(&p, "faq", 10, &[0, 1, 2]);
    let o = run(&p, &hook, &["run", "-v"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("alert rule `pass_rate drop 0.05 vs previous` on faq/rec: quiet: pass_rate 70.0% vs baseline 90.0%: down 20.0 points (-22.2%)"),
        "{err}"
    );
    assert!(
        err.contains("p = 0.2500 >= alpha 0.01: not significant"),
        "{err}"
    );
    assert!(
        err.contains("on faq/rec: undecided, state kept: no baseline yet: 1 of 7 trailing runs"),
        "{err}"
    );
    assert!(err.contains("ratio 1.00 < limit 3"), "{err}");
    // `alerts check -v` says the same of the latest run.
    let o = run(&p, &hook, &["alerts", "check", "-v"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("p = 0.2500 >= alpha 0.01: not significant"),
        "{}",
        stderr(&o)
    );
    // Without -v, nothing of it.
    let o = run(&p, &hook, &["alerts", "check"]);
    assert!(!stderr(&o).contains("not significant"), "{}", stderr(&o));
}

#[test]
fn the_same_regression_alerts_again_after_it_was_fixed() {
    let hook = Receiver::start();
    let p = project(
        100,
        "  - {metric: pass_rate, drop: 0.05, severity: critical}\n",
        HOOK_SINK,
    );
    let good: Vec<usize> = (0..10).collect(); // 90%
    let bad: Vec<usize> = (0..70).collect(); // 30%
    let go = |wrong: &[usize]| {
        answers(&p, "faq", 100, wrong);
        let o = run(&p, &hook, &["run", "--format", "json"]);
        (
            code(&o),
            json_runs(&o)[0]["alerts"].as_array().unwrap().len(),
        )
    };
    for _ in 0..3 {
        assert_eq!(go(&good), (0, 0));
    }
    assert_eq!(go(&bad), (1, 1), "the regression alerts");
    assert_eq!(go(&good), (0, 0), "fixed: resolved");
    assert_eq!(go(&bad), (1, 1), "the same regression alerts again");
    let got = hook.received();
    let events: Vec<String> = got
        .iter()
        .map(|r| r.json()["event"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(events, ["alert", "resolved", "alert"]);
    // The cases that broke twice are not known-flaky: they are all counted.
    assert_eq!(got[2].json()["flipped"]["total"], 60, "{}", got[2].body);
    assert_eq!(
        got[2].json()["flaky_flipped"]["total"],
        0,
        "{}",
        got[2].body
    );
}

#[test]
fn cases_discounted_as_known_flaky_are_listed_on_the_trend_page() {
    let hook = Receiver::start();
    let p = project(
        100,
        "  - {metric: pass_rate, drop: 0.05, severity: warning}\n",
        HOOK_SINK,
    );
    // c7 fails, passes, fails, passes: an outcome that changed twice is known-flaky.
    for k in 0..4 {
        let wrong: Vec<usize> = if k % 2 == 0 { vec![7] } else { vec![] };
        answers(&p, "faq", 100, &wrong);
        let o = run(&p, &hook, &["run", "-v"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
    let page = std::fs::read_to_string(p.path().join("reports/faq.html")).expect("trend page");
    let start = page.find("<h2>Flaky cases").expect("flaky section");
    let section = &page[start..];
    let section = &section[..section[4..].find("<h2>").map_or(section.len(), |e| e + 4)];
    assert!(!section.contains("None."), "{section}");
    assert!(section.contains("<code>c7</code>"), "{section}");
    assert!(section.contains("not counted alone"), "{section}");
    assert!(!section.contains("<code>c8</code>"), "{section}");
}

/// `run --format json`, which must exit `want`: the run's JSON and its alerts.
fn run_alerts(p: &Project, want: i32) -> (Value, Vec<Value>) {
    let o = p.run(&["run", "--format", "json"]);
    assert_eq!(code(&o), want, "{}", stderr(&o));
    let run = json_runs(&o)[0].clone();
    let alerts = run["alerts"].as_array().unwrap().clone();
    (run, alerts)
}

/// 30 cases, a critical drop rule and a warning floor, notices to alerts.jsonl.
fn critical_drop_and_floor() -> Project {
    project(
        30,
        "  - {metric: pass_rate, drop: 0.05, severity: critical}\n  - {metric: pass_rate, min: 0.5, severity: warning, name: floor}\n",
        "  - {id: log, type: file, path: alerts.jsonl}\n",
    )
}

/// Audit H2: a run filtered with `--case`/`--tag` is a spot check, not a history point. It is
/// stored marked as filtered, is never the `previous` baseline, evaluates no alert rule, and
/// `runs`/`show` say so.
#[test]
fn a_filtered_run_is_no_baseline_and_fires_nothing() {
    let p = critical_drop_and_floor();
    let o = p.run(&["run", "-q"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // A spot check of one case (and one of a tag), each wrong: no rule fires on it.
    answers(&p, "faq", 30, &[1]);
    let o = p.run(&["run", "--format", "json", "--case", "c1"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let spot = &json_runs(&o)[0];
    assert_eq!(spot["alerts"], Value::Array(vec![]), "{spot}");
    assert_eq!(spot["filter"], "--case c1", "{spot}");
    assert!(
        stderr(&o).contains("filtered (--case c1)") && stderr(&o).contains("not evaluated"),
        "{}",
        stderr(&o)
    );
    let spot_id = spot["run_id"].as_str().unwrap().to_owned();
    // -q says it on the verdict line.
    let o = p.run(&["run", "-q", "--case", "c1"]);
    assert!(
        stdout(&o).contains("filtered (--case c1): no alert rule evaluated"),
        "{}",
        stdout(&o)
    );
    assert!(!p.path().join("alerts.jsonl").exists());
    // `runs` and `show` say it is filtered.
    let o = p.run(&["runs"]);
    assert!(stdout(&o).contains("filtered: --case c1"), "{}", stdout(&o));
    let o = p.run(&["show", &spot_id]);
    assert!(stdout(&o).contains("filtered: --case c1"), "{}", stdout(&o));
    let o = p.run(&["show", &spot_id, "--format", "json"]);
    assert_eq!(json_runs(&o)[0]["filter"], "--case c1", "{}", stdout(&o));
    // A filtered run cannot be pinned as the baseline.
    let o = p.run(&["baseline", "pin", &spot_id]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("filtered"), "{}", stderr(&o));
    // The next full run regresses by 20 of 30 cases: compared with the last full run, the
    // critical alert fires and the run exits 1.
    answers(&p, "faq", 30, &(0..20).collect::<Vec<_>>());
    let (run, alerts) = run_alerts(&p, 1);
    assert!(
        alerts
            .iter()
            .any(|a| a["severity"] == "critical" && a["baseline"] == "previous"),
        "{alerts:?}"
    );
    assert!(run.get("filter").is_none_or(Value::is_null), "{run}");
    let log = std::fs::read_to_string(p.path().join("alerts.jsonl")).unwrap();
    assert!(log.contains("critical"), "{log}");
}

/// Audit suites (C7): a run restricted with `--provider` is filtered like a `--case` run: it
/// is never the `previous` baseline of the next full run (whose other providers would then have
/// no baseline and no alert could fire for them), and it evaluates no rule.
#[test]
fn a_provider_restricted_run_is_no_baseline() {
    let p = critical_drop_and_floor();
    let suite = p.path().join("suites/faq.yaml");
    let yaml = std::fs::read_to_string(&suite).unwrap().replace(
        "providers:\n",
        "providers:\n  - id: two\n    type: replay\n    file: two.jsonl\n",
    );
    std::fs::write(&suite, yaml).unwrap();
    let two = |wrong: &[usize]| {
        answers(&p, "faq", 30, wrong);
        std::fs::copy(
            p.path().join("suites/faq.jsonl"),
            p.path().join("suites/two.jsonl"),
        )
        .unwrap();
        answers(&p, "faq", 30, &[]);
    };
    two(&[]);
    let o = p.run(&["run", "-q"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = p.run(&["run", "--format", "json", "--provider", "rec"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let only = &json_runs(&o)[0];
    assert_eq!(only["filter"], "--provider rec", "{only}");
    assert!(
        stderr(&o).contains("filtered (--provider rec)"),
        "{}",
        stderr(&o)
    );
    // `two` regresses by 20 of 30 cases: compared with the last full run, the alert fires.
    two(&(0..20).collect::<Vec<_>>());
    let (_, alerts) = run_alerts(&p, 1);
    assert!(
        alerts
            .iter()
            .any(|a| a["provider"] == "two" && a["severity"] == "critical"),
        "{alerts:?}"
    );
}

/// Audit M1: `show RUN --format json` carries each alert with the fields and names of
/// `run --format json` (the spec's `rule`, `metric`, `severity`, `baseline`, `value`,
/// `message`, and `alert_id`), for the run that opened it, saw it still open and resolved it.
#[test]
fn show_json_alerts_carry_the_fields_of_run_json() {
    let p = critical_drop_and_floor();
    let o = p.run(&["run", "-q"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let fields = [
        "rule",
        "metric",
        "severity",
        "baseline",
        "value",
        "message",
        "provider",
        "tag",
        "baseline_value",
        "alert_id",
        "runbook",
    ];
    let show = |run: &Value| {
        let id = run["run_id"].as_str().unwrap();
        let o = p.run(&["show", id, "--format", "json"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        json_runs(&o)[0]["alerts"].as_array().unwrap().clone()
    };
    let same = |ran: &[Value], shown: &[Value], state: &str| {
        assert_eq!(ran.len(), shown.len(), "{ran:?}\n{shown:?}");
        for a in ran {
            let s = shown
                .iter()
                .find(|s| s["alert_id"] == a["alert_id"])
                .unwrap_or_else(|| panic!("{a} not in {shown:?}"));
            for f in fields {
                assert!(s.get(f).is_some(), "show lacks `{f}`: {s}");
                assert_eq!(s[f], a[f], "`{f}`: run {a}\nshow {s}");
            }
            assert!(s.get("id").is_none(), "{s}");
            assert_eq!(s["state"], state, "{s}");
        }
    };
    // Opened: 20 of 30 wrong trips both rules.
    answers(&p, "faq", 30, &(0..20).collect::<Vec<_>>());
    let o = p.run(&["run", "--format", "json"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let opened = json_runs(&o)[0].clone();
    let ran = opened["alerts"].as_array().unwrap().clone();
    assert_eq!(ran.len(), 2, "{ran:?}");
    assert!(ran.iter().any(|a| a["baseline"] == "previous"));
    assert!(ran.iter().any(|a| a["baseline"].is_null()));
    same(&ran, &show(&opened), "opened");
    // Still open, at another value: 21 wrong.
    answers(&p, "faq", 30, &(0..21).collect::<Vec<_>>());
    let o = p.run(&["run", "--format", "json"]);
    let again = json_runs(&o)[0].clone();
    let ran = again["alerts"].as_array().unwrap().clone();
    same(&ran, &show(&again), "still open");
    // The run that opened them still shows the values it saw.
    same(
        opened["alerts"].as_array().unwrap(),
        &show(&opened),
        "opened",
    );
}
