//! Traffic alert rules end to end: generated logs with a planted error spike or p95 rise are
//! ingested by the real binary; a loopback webhook receives each alert and its recovery
//! exactly once, with the spec's context; no data never fires.

use std::fmt::Write as _;

use chrono::{SecondsFormat, TimeZone, Utc};

use super::ingest::SALT;
use crate::alerts::{Receiver, SECRET, verify};
use crate::support::{Project, code, stderr, stdout};

/// Fifteen minutes.
const W: i64 = 900;

/// A source over `logs/*.jsonl` with `rules`, and a webhook sink.
pub(super) fn project(rules: &str) -> Project {
    let p = Project::new();
    p.write(
        "evalwatch.yaml",
        &format!(
            "sinks:
  - {{id: hook, type: webhook, url_env: EW_TEST_HOOK_URL, secret_env: EW_TEST_HOOK_SECRET, retries: 1}}
traffic:
  - id: bot
    path: logs/*.jsonl
    fields:
      time: /ts
      model: /model
      feature: /feature
      trace_id: /trace
      latency_ms: /ms
      error: /error
      error_kind: /error/type
      feedback: /feedback
    sample: 0%
    alerts:
{rules}"
        ),
    );
    p
}

/// Six hours ago, on an hour boundary: window k of 15 minutes starts at `base + k * W`.
fn base() -> i64 {
    (Utc::now().timestamp() / 3600) * 3600 - 6 * 3600
}

pub(super) fn rfc(unix: i64) -> String {
    Utc.timestamp_opt(unix, 0)
        .unwrap()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// What goes wrong in the spike windows.
#[derive(Clone, Copy)]
enum Spike {
    /// 9 more errors per window, all in `summarise`: 8% instead of 2%.
    Errors,
    /// `summarise` answers in 900+ ms instead of 100-190 ms.
    Latency,
}

/// Ten requests a minute over the minutes `[from, to)` after `base` (j even: `chat`, odd:
/// `summarise`, latency 100 + 10j ms); one error every five minutes (2%); in windows 8 and
/// 9 the spike.
fn log(base: i64, from: i64, to: i64, spike: Spike) -> String {
    let mut out = String::new();
    for minute in from..to {
        let in_spike = (8 * 15..10 * 15).contains(&minute);
        for j in 0..10_i64 {
            let feature = if j % 2 == 0 { "chat" } else { "summarise" };
            let mut error = j == 0 && minute % 5 == 0;
            let mut ms = 100 + 10 * j;
            if in_spike {
                match spike {
                    Spike::Errors => error |= j == 1 && minute % 15 < 9,
                    Spike::Latency if j % 2 == 1 => ms += 800,
                    Spike::Latency => {}
                }
            }
            let err = if error {
                r#", "error": {"type": "upstream"}"#
            } else {
                ""
            };
            let _ = writeln!(
                out,
                r#"{{"ts": "{}", "trace": "t{minute}-{j}", "model": "m1", "feature": "{feature}", "ms": {ms}{err}}}"#,
                rfc(base + minute * 60 + j),
            );
        }
    }
    out
}

pub(super) fn ingest(p: &Project, hook: &Receiver) -> std::process::Output {
    p.cmd()
        .env("EVALWATCH_TRAFFIC_SALT", SALT)
        .env("EW_TEST_HOOK_URL", &hook.url)
        .env("EW_TEST_HOOK_SECRET", SECRET)
        .args(["-v", "ingest"])
        .output()
        .expect("run evalwatch")
}

pub(super) const SATISFACTION: &str = "      - {metric: traffic.satisfaction, drop: 0.10, relative: true, baseline: same_window_last_week, window: 7d, severity: warning}\n";

/// Ingest windows 0-9 (the spike in 8 and 9) and the first minute of window 10: one alert;
/// then the rest of window 10 and windows 11-12: one resolved notice; then `alerts check`:
/// nothing more. Returns the two notices' JSON.
/// `evalwatch report`, then the source's traffic page.
pub(super) fn traffic_page(p: &Project) -> String {
    let out = p
        .cmd()
        .env("EVALWATCH_TRAFFIC_SALT", SALT)
        .args(["report"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    std::fs::read_to_string(p.path().join("reports/traffic-bot.html")).expect("traffic page")
}

fn spike_and_recovery(
    rule: &str,
    spike: Spike,
    mark: bool,
) -> (serde_json::Value, serde_json::Value, String) {
    let hook = Receiver::start();
    let p = project(&format!("{rule}{SATISFACTION}"));
    let base = base();
    if mark {
        let out = p.run(&[
            "mark",
            "deploy",
            "v2.3 rollout",
            "--at",
            &rfc(base + 8 * W - 600),
        ]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        // A change narrowed to another feature than the one the spike concentrates in: not
        // cited (docs/marks.md).
        let out = p.run(&[
            "mark",
            "prompt",
            "chat prompt: shorter greeting",
            "--at",
            &rfc(base + 8 * W - 300),
            "--feature",
            "chat",
        ]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    p.write("logs/a.jsonl", &log(base, 0, 10 * 15 + 1, spike));
    let out = ingest(&p, &hook);
    let err = stderr(&out);
    assert_eq!(code(&out), 1, "an alert opened: {}{err}", stdout(&out));
    // The satisfaction rule has no rated request to judge: it says so and stays quiet.
    assert!(
        err.contains("traffic.satisfaction drop 0.1 relative vs same_window_last_week over 7d")
            && err.contains("no data"),
        "{err}"
    );
    let got = hook.received();
    assert_eq!(got.len(), 1, "{got:?}");
    verify(&got[0]);
    assert_eq!(got[0].event.as_deref(), Some("alert"));
    let alert = got[0].json();
    // The traffic page lists the open alert.
    let page = traffic_page(&p);
    assert!(page.contains("open since"), "the open alert is on the page");

    p.write("logs/b.jsonl", &log(base, 10 * 15 + 1, 13 * 15 + 1, spike));
    let out = ingest(&p, &hook);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let got = hook.received();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1].event.as_deref(), Some("resolved"));
    let resolved = got[1].json();
    assert_eq!(resolved["alert_id"], alert["alert_id"]);
    assert_eq!(resolved["resolved_at"], rfc(base + 11 * W));
    assert!(
        !traffic_page(&p).contains("open since"),
        "a resolved alert leaves the page"
    );

    // Judged again, and the same files read again: nothing new is sent.
    let out = p
        .cmd()
        .env("EVALWATCH_TRAFFIC_SALT", SALT)
        .env("EW_TEST_HOOK_URL", &hook.url)
        .env("EW_TEST_HOOK_SECRET", SECRET)
        .args(["alerts", "check"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains("traffic:bot: no open alerts")
            || stdout(&out).contains("traffic:bot: no open alerts"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(code(&ingest(&p, &hook)), 0);
    assert_eq!(hook.received().len(), 2);
    (alert, resolved, rfc(base + 8 * W))
}

#[test]
fn a_planted_error_spike_alerts_once_with_its_context_and_resolves_once() {
    let (alert, resolved, started) = spike_and_recovery(
        "      - {metric: traffic.error_rate, max: 0.05, window: 15m, severity: critical, runbook: https://runbooks.example/errors}\n",
        Spike::Errors,
        true,
    );
    assert_eq!(alert["metric"], "traffic.error_rate");
    assert_eq!(alert["severity"], "critical");
    assert_eq!(alert["window"], "15m");
    let cx = &alert["context"];
    assert_eq!(cx["value"], 0.08);
    assert_eq!(cx["normal"], 0.02);
    assert_eq!(cx["started_at"], started);
    assert_eq!(cx["concentrated"]["by"], "feature");
    assert_eq!(cx["concentrated"]["label"], "summarise");
    assert_eq!(cx["marks"][0]["text"], "v2.3 rollout");
    assert_eq!(cx["marks"].as_array().map(Vec::len), Some(1), "{cx}");
    let message = alert["message"].as_str().unwrap();
    // The deployment, 10 minutes before the spike, is shown by its time of day, with its
    // date when it fell on the day before (a spike that starts just after midnight UTC).
    let deploy = rfc(chrono::DateTime::parse_from_rfc3339(&started)
        .unwrap()
        .timestamp()
        - 600);
    let deploy_at = if deploy[..10] == started[..10] {
        deploy[11..16].to_owned()
    } else {
        format!("{} {}", &deploy[..10], &deploy[11..16])
    };
    for part in [
        "Error rate is 8.0% (normally 2.0%), started ",
        "concentrated in the summarise feature (83% of the excess)",
        &format!("possibly related to the deployment at {deploy_at} (v2.3 rollout)."),
    ] {
        assert!(message.contains(part), "{part:?} in {message}");
    }
    assert!(
        alert["text"]
            .as_str()
            .unwrap()
            .contains("runbook: https://runbooks.example/errors")
    );
    assert_eq!(resolved["value"], 0.02);
}

#[test]
fn a_planted_p95_rise_alerts_once_against_the_trailing_week_and_resolves_once() {
    let (alert, resolved, started) = spike_and_recovery(
        "      - {metric: traffic.latency_p95_ms, ratio: 3, baseline: trailing:7d, window: 15m, severity: warning}\n",
        Spike::Latency,
        false,
    );
    assert_eq!(alert["metric"], "traffic.latency_p95_ms");
    assert_eq!(alert["baseline"], "trailing:7d");
    let cx = &alert["context"];
    let (value, normal) = (
        cx["value"].as_f64().unwrap(),
        cx["normal"].as_f64().unwrap(),
    );
    // Within the sketch's 1% relative error of the true p95s (990 ms and 190 ms).
    assert!((value - 990.0).abs() <= 9.9, "{cx}");
    assert!((normal - 190.0).abs() <= 1.9, "{cx}");
    assert_eq!(cx["started_at"], started);
    assert_eq!(cx["concentrated"]["label"], "summarise");
    assert!(cx["marks"].as_array().unwrap().is_empty());
    assert!(
        alert["message"]
            .as_str()
            .unwrap()
            .contains("p95 latency is ")
    );
    assert!(resolved["value"].as_f64().unwrap() < 200.0, "{resolved}");
}

#[test]
fn no_data_never_fires_and_validate_locates_bad_rules() {
    let hook = Receiver::start();
    let p = project(&format!(
        "      - {{metric: traffic.error_rate, max: 0.0, window: 15m, by: feature}}\n{SATISFACTION}"
    ));
    // No traffic at all: nothing to judge, nothing sent.
    let out = p
        .cmd()
        .env("EW_TEST_HOOK_URL", &hook.url)
        .args(["-v", "alerts", "check"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains("no traffic stored yet"),
        "{}",
        stderr(&out)
    );
    // Traffic without feedback: the satisfaction rule has no data and stays quiet, while
    // the error rule (any error at all, per feature) fires for `chat` only.
    p.write("logs/a.jsonl", &log(base(), 0, 31, Spike::Errors));
    let out = ingest(&p, &hook);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let got = hook.received();
    assert_eq!(got.len(), 1, "{got:?}");
    let a = got[0].json();
    assert_eq!(
        a["split"],
        serde_json::json!({"by": "feature", "label": "chat"})
    );
    assert!(a["rule"].as_str().unwrap().ends_with("by feature"));

    let bad = Project::new();
    bad.write(
        "evalwatch.yaml",
        "traffic:
  - id: bot
    path: logs/*.jsonl
    fields: {time: /ts}
    alerts:
      - {metric: traffic.eror_rate, max: 0.05, window: 10m}
      - {metric: traffic.error_rate, max: 0.05, windw: 15m, baseline: trailing:7d}
      - {metric: traffic.error_rate, max: 0.05, min_requests: -3}
",
    );
    let out = bad.run(&["validate"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    for line in [
        "evalwatch.yaml:6:18: unknown traffic metric `traffic.eror_rate`; did you mean `traffic.error_rate`?",
        "evalwatch.yaml:6:56: `window` must be one of 5m, 15m, 1h, 1d, 7d, found \"10m\"",
        "evalwatch.yaml:7:49: unknown key `windw` in a traffic alert rule; did you mean `window`?",
        "evalwatch.yaml:7:71: `baseline` has no effect with `min` or `max`",
        "evalwatch.yaml:8:63: `min_requests` must be a whole number of requests (0 or more), found -3",
    ] {
        assert!(err.contains(line), "{line}\n{err}");
    }
}

#[test]
fn a_window_of_one_request_is_not_judged_and_says_why() {
    let hook = Receiver::start();
    let p = project(
        "      - {metric: traffic.error_rate, max: 0.05, window: 15m, severity: critical}\n",
    );
    // One failed request in window 0, one in window 1 (which closes window 0): a 100%
    // error rate over one request each.
    let base = base();
    let line = |t: i64, id: &str| {
        format!(
            r#"{{"ts": "{}", "trace": "{id}", "model": "m1", "feature": "chat", "ms": 120, "error": {{"type": "upstream"}}}}"#,
            rfc(t)
        )
    };
    p.write(
        "logs/a.jsonl",
        &format!("{}\n{}\n", line(base + 60, "a"), line(base + W + 60, "b")),
    );
    let out = ingest(&p, &hook);
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "no alert opens: {}{err}", stdout(&out));
    assert!(
        err.contains(&format!(
            "window {}..{}: not judged: 15m window holds 1 request, needs 20 (min_requests); state kept",
            rfc(base),
            rfc(base + W)
        )),
        "{err}"
    );
    assert!(hook.received().is_empty());
    // `alerts list` and the traffic page say the rule is not judging, not a silent gap.
    let out = p.run(&["alerts", "list"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out)
            .contains("traffic:bot: rule `traffic.error_rate max 0.05 over 15m`, last window ")
            && stdout(&out).contains("not judged: 15m window holds 1 request, needs 20"),
        "{}",
        stdout(&out)
    );
    let page = traffic_page(&p);
    assert!(
        page.contains("not judged: 15m window holds 1 request"),
        "{page}"
    );

    // The same rule with `min_requests: 1` judges that window and fires.
    let p2 =
        project("      - {metric: traffic.error_rate, max: 0.05, window: 15m, min_requests: 1}\n");
    p2.write(
        "logs/a.jsonl",
        &format!("{}\n{}\n", line(base + 60, "a"), line(base + W + 60, "b")),
    );
    let out = ingest(&p2, &hook);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(hook.received().len(), 1);
}
