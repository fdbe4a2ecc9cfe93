//! Drift on traffic end to end: eight simulated weeks of generated logs (seeded, so every run
//! is the same) are ingested by the real binary; a planted language shift opens exactly one
//! drift alert naming the language and its shares, a stable stream opens none, too little
//! data says so instead of a p-value, and a confidence drop raises `drift.confidence` and
//! `traffic.low_confidence_rate`.

use std::fmt::Write as _;

use chrono::{SecondsFormat, TimeZone, Utc};

use super::ingest::SALT;
use crate::alerts::{Receiver, SECRET, verify};
use crate::support::{Project, code, stderr, stdout};

const DAY: i64 = 86_400;

/// Days of traffic before the last closed day ends: eight weeks.
const DAYS: i64 = 56;

const ENGLISH: [&str; 4] = [
    "Where is my order? I bought a pair of shoes last week and nothing arrived yet.",
    "How do I change the delivery address on an order that has already shipped?",
    "Can you explain why my card was charged twice for the same subscription this month?",
    "I would like to return a jacket that does not fit, what is the process for that?",
];

const SPANISH: [&str; 3] = [
    "¿Dónde está mi pedido? Compré unos zapatos la semana pasada y no ha llegado nada.",
    "¿Cómo puedo cambiar la dirección de entrega de un pedido que ya fue enviado?",
    "Quiero devolver una chaqueta que no me queda bien, ¿cuál es el proceso para hacerlo?",
];

/// A small deterministic generator (64-bit LCG), so that the logs are the same every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1_u64 << 53) as f64
    }
}

/// The start of today (UTC), the end of the last closed day, after which the closing records
/// go (in the past: see [`log`]). In the first half minute of a day this waits for the
/// second half: yesterday would otherwise be the last closed day, holding only the closing
/// records (it was two hours back from now, which failed every night from 00:00 to 02:00).
/// In the last two minutes of a day it waits for the next day's first half minute to pass:
/// a test that wrote its log before midnight and reported after it would find today's
/// closing records alone in the last closed day.
fn end_day() -> i64 {
    const LAST: i64 = 120;
    let now = Utc::now().timestamp();
    let into_day = now.rem_euclid(DAY);
    let wait = if into_day < 30 {
        30 - into_day
    } else if into_day >= DAY - LAST {
        DAY - into_day + 30
    } else {
        0
    };
    if wait > 0 {
        std::thread::sleep(std::time::Duration::from_secs(wait.unsigned_abs()));
    }
    Utc::now().timestamp().div_euclid(DAY) * DAY
}

fn rfc(unix: i64) -> String {
    Utc.timestamp_opt(unix, 0)
        .unwrap()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// How the planted days differ from the rest.
#[derive(Clone, Copy, PartialEq)]
enum Plant {
    None,
    /// Spanish 21% of inputs instead of about 3%.
    Spanish,
    /// Confidence around 0.45 instead of around 0.85.
    LowConfidence,
}

/// `per_day` requests a day for [`DAYS`] days up to [`end_day`], the last two days planted,
/// and a few closing requests after the last day (so that it counts as closed), today.
fn log(per_day: u32, plant: Plant, seed: u64) -> String {
    let mut rng = Lcg(seed);
    let end = end_day();
    let mut out = String::new();
    let mut line = |t: i64, i: String, r: &mut Lcg, planted: bool| {
        let spanish_share = if planted && plant == Plant::Spanish {
            0.21
        } else {
            0.03
        };
        let input = if r.next() < spanish_share {
            SPANISH[(r.next() * 3.0) as usize % 3]
        } else {
            ENGLISH[(r.next() * 4.0) as usize % 4]
        };
        let confidence = if planted && plant == Plant::LowConfidence {
            0.3 + 0.3 * r.next()
        } else {
            0.7 + 0.3 * r.next()
        };
        let output = "Thanks for asking. ".repeat(1 + (r.next() * 6.0) as usize);
        let ms = 200 + (r.next() * 300.0) as i64;
        let feature = if r.next() < 0.5 { "orders" } else { "billing" };
        let _ = writeln!(
            out,
            r#"{{"ts": "{}", "trace": "{i}", "feature": "{feature}", "model": "m1", "ms": {ms}, "q": "{input}", "a": "{output}", "conf": {confidence:.3}}}"#,
            rfc(t)
        );
    };
    for d in 0..DAYS {
        let day = end - (DAYS - d) * DAY;
        let planted = d >= DAYS - 2;
        for k in 0..per_day {
            let t = day + i64::from(k) * (DAY / i64::from(per_day));
            line(t, format!("d{d}-{k}"), &mut rng, planted);
        }
    }
    // Between the end and now, at most ten minutes after the end: never in the future.
    let after = ((Utc::now().timestamp() - end) / 2).min(600);
    for k in 0..3 {
        line(end + after + k, format!("close-{k}"), &mut rng, false);
    }
    out
}

fn project(rules: &str) -> Project {
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
      input: /q
      output: /a
      confidence: /conf
    sample: 100%
    store_text: none
    alerts:
{rules}"
        ),
    );
    p
}

fn ingest(p: &Project, hook: &Receiver) -> std::process::Output {
    p.cmd()
        .env("EVALWATCH_TRAFFIC_SALT", SALT)
        .env("EW_TEST_HOOK_URL", &hook.url)
        .env("EW_TEST_HOOK_SECRET", SECRET)
        .args(["-v", "ingest"])
        .output()
        .expect("run evalwatch")
}

const LANGUAGE: &str = "      - {metric: drift.language_mix, window: 1d, severity: warning}\n";
const LENGTHS: &str = "      - {metric: drift.input_length, window: 1d}\n      - {metric: drift.output_length, window: 1d}\n      - {metric: drift.latency, window: 1d}\n";
const MIXES: &str = "      - {metric: drift.feature_mix, window: 1d}\n      - {metric: drift.model_mix, window: 1d}\n";
const CONFIDENCE: &str = "      - {metric: drift.confidence, window: 1d}\n      - {metric: traffic.low_confidence_rate, max: 0.2, window: 1d, severity: warning}\n";

#[test]
fn a_planted_language_shift_opens_exactly_one_drift_alert_naming_the_language() {
    let hook = Receiver::start();
    let p = project(LANGUAGE);
    p.write("logs/a.jsonl", &log(100, Plant::Spanish, 7));
    let out = ingest(&p, &hook);
    let err = stderr(&out);
    assert_eq!(code(&out), 1, "an alert opened: {}{err}", stdout(&out));
    let got = hook.received();
    assert_eq!(got.len(), 1, "{got:?}\n{err}");
    verify(&got[0]);
    let alert = got[0].json();
    assert_eq!(alert["metric"], "drift.language_mix");
    assert_eq!(alert["baseline"], "same_window_last_week");
    let message = alert["message"].as_str().unwrap();
    let spanish = regex::Regex::new(r"Spanish \d+% -> 2\d% of inputs").unwrap();
    assert!(spanish.is_match(message), "{message}");
    assert!(message.contains("chi-square"), "{message}");
    assert!(
        alert["text"]
            .as_str()
            .unwrap()
            .contains("runbook step: the inputs changed")
            && alert["runbook_step"]
                .as_str()
                .unwrap()
                .ends_with("(prompt update)"),
        "{alert}"
    );
    assert!(
        alert["drift"]["p_value"].as_f64().unwrap() < 0.001,
        "{alert}"
    );
    // Judged again: the open alert is not sent again (and nothing new opened: exit 0).
    assert_eq!(code(&ingest(&p, &hook)), 0);
    assert_eq!(hook.received().len(), 1);
    // `evalwatch traffic` shows the drift against the day before, flagged.
    let out = p
        .cmd()
        .args(["traffic", "--window", "24h", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let body: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let metrics: Vec<&str> = body["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["metric"].as_str().unwrap())
        .collect();
    assert_eq!(metrics.len(), 8, "{metrics:?}");
    drift_on_the_page(&p);
}

/// The traffic page shows drift per day: the planted days flagged with what moved, escaped,
/// self-contained, and laid out within phone and desktop widths in headless Chromium.
fn drift_on_the_page(p: &Project) {
    let out = p.run(&["report"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let dir = p.path().join("reports");
    let page = std::fs::read_to_string(dir.join("traffic-bot.html")).expect("traffic page");
    let section = &page[page.find("<h2 id=\"drift\">").expect("drift section")..];
    let row = &section[section
        .find("<code>drift.language_mix</code>")
        .expect("language row")..];
    let row = &row[..row.find("</tr>").expect("row end")];
    // The last two of the fourteen days are the planted ones.
    assert_eq!(row.matches("class=\"cell failed\"").count(), 2, "{row}");
    assert_eq!(row.matches("class=\"cell passed\"").count(), 12, "{row}");
    let moved =
        regex::Regex::new(r"<code>drift.language_mix</code>: Spanish \d+% -&gt; 2\d% of inputs")
            .unwrap();
    assert!(moved.is_match(section), "{section}");
    assert!(
        !page.contains("src=\"http") && !page.contains("href=\"http"),
        "the page loads nothing from the network"
    );
    crate::pages::assert_fits(&dir, "traffic-bot.html");
}

#[test]
fn a_stable_stream_over_eight_weeks_opens_no_drift_alert() {
    let hook = Receiver::start();
    let p = project(&format!("{LANGUAGE}{LENGTHS}{MIXES}{CONFIDENCE}"));
    p.write("logs/a.jsonl", &log(100, Plant::None, 11));
    let out = ingest(&p, &hook);
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "{}{err}", stdout(&out));
    assert!(hook.received().is_empty(), "{:?}", hook.received());
    // The rules did judge the weeks: tests ran and were quiet (the first week has no
    // baseline a week earlier: not enough data there).
    let quiet = err
        .lines()
        .filter(|l| l.contains("drift.language_mix p<0.001") && l.ends_with(": quiet"))
        .count();
    assert!(quiet >= 7 * 7, "{quiet} quiet windows:\n{err}");
    assert!(
        err.contains("not enough data: n=0, needs 50 (baseline window)"),
        "{err}"
    );
}

#[test]
fn too_little_data_says_not_enough_data_instead_of_a_p_value() {
    let hook = Receiver::start();
    let p = project(LANGUAGE);
    p.write("logs/a.jsonl", &log(12, Plant::Spanish, 3));
    let out = ingest(&p, &hook);
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "{}{err}", stdout(&out));
    assert!(hook.received().is_empty());
    assert!(
        err.contains("not enough data: n=12, needs 50 (this window); undecided, state kept"),
        "{err}"
    );
    let out = p
        .cmd()
        .args(["traffic", "--window", "24h"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("drift.language_mix") && text.contains("not enough data: n="),
        "{text}"
    );
}

#[test]
fn a_confidence_drop_raises_drift_confidence_and_the_low_confidence_rate() {
    let hook = Receiver::start();
    let p = project(CONFIDENCE);
    p.write("logs/a.jsonl", &log(100, Plant::LowConfidence, 5));
    let out = ingest(&p, &hook);
    let err = stderr(&out);
    assert_eq!(code(&out), 1, "{}{err}", stdout(&out));
    let got = hook.received();
    assert_eq!(got.len(), 2, "{got:?}\n{err}");
    let by_metric = |m: &str| {
        got.iter()
            .map(crate::alerts::Received::json)
            .find(|a| a["metric"] == m)
            .unwrap_or_else(|| panic!("no {m} alert in {got:?}"))
    };
    let drift = by_metric("drift.confidence");
    let message = drift["message"].as_str().unwrap();
    assert!(
        message.contains("Confidence drifted: confidence")
            && message.contains("lower at the median"),
        "{message}"
    );
    assert!(
        drift["runbook_step"]
            .as_str()
            .unwrap()
            .ends_with("(retraining)")
    );
    let low = by_metric("traffic.low_confidence_rate");
    let message = low["message"].as_str().unwrap();
    // Two thirds of the planted confidences (0.3..0.6) are under the default 0.5.
    let rate =
        regex::Regex::new(r"Low confidence rate is (6\d|7\d)\.\d% \(normally 0\.0%\)").unwrap();
    assert!(rate.is_match(message), "{message}");
}
