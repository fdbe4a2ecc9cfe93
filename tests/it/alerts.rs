//! Alerts end to end: the real binary on replay suites, notices sent to a loopback webhook
//! receiver whose requests are asserted exactly.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;

use super::support::{Project, code, json_runs, replay_suite, stderr, stdout};

const SECRET: &str = "s3cret-hmac-key";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    signature: Option<String>,
    event: Option<String>,
    delivery: Option<String>,
    body: String,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("JSON body")
    }
}

/// A loopback webhook receiver: records every request; answers 503 while `down`.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    down: Arc<AtomicBool>,
    _rt: tokio::runtime::Runtime,
}

impl Receiver {
    fn start() -> Self {
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
        let (g, d) = (got.clone(), down.clone());
        let app = axum::Router::new().route(
            "/hook/{token}",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let (g, d) = (g.clone(), d.clone());
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
            _rt: rt,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }
}

fn verify(r: &Received) {
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(r.body.as_bytes());
    let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(r.signature.as_deref(), Some(want.as_str()), "signature");
}

/// Rewrite the replay recordings of suite `name`: the cases in `wrong` answer wrongly.
fn answers(p: &Project, name: &str, n: usize, wrong: &[usize]) {
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
fn project(n: usize, rules: &str, sinks: &str) -> Project {
    let p = Project::new();
    let path = replay_suite(&p, "faq", n, 0);
    let mut yaml = std::fs::read_to_string(&path).unwrap();
    yaml.push_str("alerts:\n");
    yaml.push_str(rules);
    std::fs::write(&path, yaml).unwrap();
    p.write("evalwatch.yaml", &format!("sinks:\n{sinks}"));
    p
}

const HOOK_SINK: &str = "  - {id: hook, type: webhook, url_env: EW_TEST_HOOK_URL, secret_env: EW_TEST_HOOK_SECRET, retries: 1}\n";

fn run(p: &Project, hook: &Receiver, args: &[&str]) -> std::process::Output {
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
    assert_eq!(body["flipped"]["cases"].as_array().unwrap().len(), 10);
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
    let o = p.run(&["run", "--format", "json"]);
    // The critical regression is still open: `run` keeps exiting 1 (`--fail-on critical`).
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let alerts = json_runs(&o)[0]["alerts"].as_array().unwrap().clone();
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
