//! Confidence in `evalwatch traffic` and on the traffic page: a generated log whose
//! confidence drops in the last day shows the rise in the low-confidence share (exact counts)
//! and the spread; a log without confidence shows neither.

use std::fmt::Write as _;

use chrono::{SecondsFormat, TimeZone, Utc};

use super::ingest::{SALT, source_config};
use crate::support::{Project, code, stderr, stdout};

const DAY: i64 = 86_400;

/// The shared test source (every record sampled), with `confidence: /conf` when asked.
fn config(confidence: bool) -> String {
    let c = source_config("100%");
    if confidence {
        c.replace(
            "      error: /error\n",
            "      error: /error\n      confidence: /conf\n",
        )
    } else {
        c
    }
}

/// The start of the current records: inside the last 24 hours and on one UTC day with the
/// 40 seconds after it (today, or yesterday evening in the first two hours of a day).
fn current_start() -> i64 {
    let now = Utc::now().timestamp();
    let today = now.div_euclid(DAY) * DAY;
    if now - today >= 2 * 3_600 {
        today + 60
    } else {
        today - 3 * 3_600
    }
}

/// 40 records from `start` (`current_start()`), 30 of them at confidence 0.3 and 10 at 0.9,
/// and 40 a day earlier, 4 at 0.3 and 36 at 0.9.
fn log(confidence: bool, start: i64) -> String {
    let mut out = String::new();
    for (day, low) in [(start - DAY, 4), (start, 30)] {
        for k in 0..40 {
            let t = Utc.timestamp_opt(day + k, 0).unwrap();
            let conf = if k < low { 0.3 } else { 0.9 };
            let conf = if confidence {
                format!(", \"conf\": {conf}")
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                r#"{{"ts": "{}", "trace": "{day}-{k}", "q": "where is my order?", "a": "on its way"{conf}}}"#,
                t.to_rfc3339_opts(SecondsFormat::Secs, true)
            );
        }
    }
    out
}

/// The project with its log ingested, and the start of the log's current records (taken
/// once: the page's rows are checked against the days the records went to, and a second
/// `current_start()` after 02:00 would name other days than one taken before it).
fn setup(confidence: bool) -> (Project, i64) {
    let p = Project::new();
    let start = current_start();
    p.write("evalwatch.yaml", &config(confidence));
    p.write("logs/a.jsonl", &log(confidence, start));
    let out = p
        .cmd()
        .env("EVALWATCH_TRAFFIC_SALT", SALT)
        .arg("ingest")
        .output()
        .expect("run evalwatch");
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    (p, start)
}

fn traffic(p: &Project, format: &str) -> String {
    let out = p.run(&["traffic", "--window", "24h", "--format", format]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    stdout(&out)
}

#[test]
fn a_confidence_drop_shows_in_traffic_and_on_the_page() {
    let (p, start) = setup(true);
    let body: serde_json::Value = serde_json::from_str(&traffic(&p, "json")).unwrap();
    let c = &body["confidence"];
    assert_eq!(c["threshold"], 0.5, "{c}");
    assert_eq!(
        (&c["current"]["low"], &c["current"]["n"]),
        (&30.into(), &40.into()),
        "{c}"
    );
    assert_eq!(
        (&c["previous"]["low"], &c["previous"]["n"]),
        (&4.into(), &40.into()),
        "{c}"
    );
    assert_eq!(c["current"]["low_confidence_rate"], 0.75, "{c}");
    assert_eq!(c["previous"]["low_confidence_rate"], 0.1, "{c}");
    let spread = |w: &str| serde_json::json!([c[w]["p10"], c[w]["p50"], c[w]["p90"]]);
    assert_eq!(spread("current"), serde_json::json!([0.3, 0.3, 0.9]), "{c}");
    assert_eq!(
        spread("previous"),
        serde_json::json!([0.3, 0.9, 0.9]),
        "{c}"
    );
    let text = traffic(&p, "text");
    assert!(
        text.contains("confidence (sampled records carrying one; low = below 0.5)"),
        "{text}"
    );
    let row =
        regex::Regex::new(r"low_confidence_rate +75\.00% \(30/40\) +10\.00% \(4/40\)").unwrap();
    assert!(row.is_match(&text), "{text}");
    let row = regex::Regex::new(r"confidence p50 +0\.300 +0\.900").unwrap();
    assert!(row.is_match(&text), "{text}");

    let out = p.run(&["report"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let dir = p.path().join("reports");
    let page = std::fs::read_to_string(dir.join("traffic-bot.html")).expect("traffic page");
    let day = |t: i64| {
        Utc.timestamp_opt(t, 0)
            .unwrap()
            .format("%Y-%m-%d")
            .to_string()
    };
    assert!(
        page.contains("<h2 id=\"confidence\">Confidence</h2>"),
        "{page}"
    );
    assert!(page.contains("threshold (0.5)"), "the threshold is named");
    for (d, row) in [
        (start - DAY, "<td>10.0%</td><td>4/40</td><td>0.900</td>"),
        (start, "<td>75.0%</td><td>30/40</td><td>0.300</td>"),
    ] {
        assert!(
            page.contains(&format!("<tr><td>{}</td>{row}</tr>", day(d))),
            "{page}"
        );
    }
    crate::pages::assert_fits(&dir, "traffic-bot.html");
}

#[test]
fn records_without_confidence_show_no_confidence() {
    let (p, _) = setup(false);
    let body: serde_json::Value = serde_json::from_str(&traffic(&p, "json")).unwrap();
    assert!(body["confidence"].is_null(), "{body}");
    assert!(!traffic(&p, "text").contains("low_confidence_rate"));
    let out = p.run(&["report"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let page = std::fs::read_to_string(p.path().join("reports/traffic-bot.html")).unwrap();
    assert!(page.contains("id=\"sec-24h\""), "the page is written");
    assert!(!page.contains("id=\"confidence\""), "{page}");
}
