//! Quiet sources: a source silent for longer than the window has its windows end with the
//! minute, hour or day bucket that holds its last record (not one bucket later). The logs and
//! the figures are the audit's, counted by hand.

use crate::support::{Project, code, stderr, stdout};

/// A project with one source reading `log` (time, trace id, latency), ingested.
fn ingested(log: &[&str]) -> Project {
    let p = Project::new();
    p.write(
        "evalwatch.yaml",
        "traffic:\n  - id: app\n    path: logs/a.jsonl\n    fields: {time: /ts, trace_id: /tid, latency_ms: /ms}\n",
    );
    p.write("logs/a.jsonl", &(log.join("\n") + "\n"));
    let out = p.run(&["ingest"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    p
}

/// `traffic --window W --format json`: from, to, the current and the previous volume.
fn window(p: &Project, w: &str) -> (String, String, u64, u64) {
    let out = p.run(&["traffic", "--window", w, "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let j: serde_json::Value = serde_json::from_str(stdout(&out).trim()).expect("json");
    assert!(j["quiet"].is_string(), "the source is quiet: {j}");
    (
        j["from"].as_str().unwrap_or_default().to_owned(),
        j["to"].as_str().unwrap_or_default().to_owned(),
        j["current"]["volume"].as_u64().unwrap_or(u64::MAX),
        j["previous"]["volume"].as_u64().unwrap_or(u64::MAX),
    )
}

#[test]
fn a_quiet_sources_hour_ends_with_the_minute_of_its_last_record() {
    // The last record is in the minute 13:56-13:57: the hour is 12:57-13:57, which holds
    // q1 (13:56:30), q2 (13:50:30) and q4 (12:57:30); q3 (12:50:30) is in the hour before.
    let p = ingested(&[
        r#"{"ts":"2026-12-04T13:56:30Z","tid":"q1","ms":5}"#,
        r#"{"ts":"2026-12-04T13:50:30Z","tid":"q2","ms":5}"#,
        r#"{"ts":"2026-12-04T12:50:30Z","tid":"q3","ms":5}"#,
        r#"{"ts":"2026-12-04T12:57:30Z","tid":"q4","ms":5}"#,
    ]);
    assert_eq!(
        window(&p, "1h"),
        (
            "2026-12-04T12:57:00+00:00".to_owned(),
            "2026-12-04T13:57:00+00:00".to_owned(),
            3,
            1
        )
    );
    let text = stdout(&p.run(&["traffic", "--window", "1h"]));
    assert!(
        text.contains("(2026-12-04 12:57 UTC to 2026-12-04 13:57 UTC)"),
        "{text}"
    );
    assert!(
        text.contains("quiet source: no records since 2026-12-04 13:56 UTC"),
        "{text}"
    );
}

#[test]
fn a_quiet_sources_week_ends_with_the_hour_of_its_last_record_on_the_cli_and_the_page() {
    // The last record is in the hour 13:00-14:00 of 11-29: the week is 11-22 14:00 to 11-29
    // 14:00, which holds both records (11-22 14:10 and 11-29 13:59:30); none is before it.
    let p = ingested(&[
        r#"{"ts":"2026-11-22T14:10:00Z","tid":"h1","ms":5}"#,
        r#"{"ts":"2026-11-29T13:59:30Z","tid":"h2","ms":5}"#,
    ]);
    assert_eq!(
        window(&p, "7d"),
        (
            "2026-11-22T14:00:00+00:00".to_owned(),
            "2026-11-29T14:00:00+00:00".to_owned(),
            2,
            0
        )
    );
    // The traffic page anchors its windows the same way: 24h holds h2 only (the day before
    // it ends at 11-28 14:00), 7d both, and nothing is before either.
    let out = p.run(&["report"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let page = std::fs::read_to_string(p.path().join("reports/traffic-app.html")).expect("page");
    let volume = |label: &str| -> String {
        let section = page
            .split(&format!("<h2>Last {label}</h2>"))
            .nth(1)
            .and_then(|s| s.split("</section>").next())
            .unwrap_or_else(|| panic!("no {label} window: {page}"));
        let figure = section
            .split("requests</span><b>")
            .nth(1)
            .unwrap_or_else(|| panic!("no requests figure in {label}: {section}"));
        figure
            .split("</span></div>")
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(volume("24h"), "1</b><span class=\"muted small\">before: 0");
    assert_eq!(volume("7d"), "2</b><span class=\"muted small\">before: 0");
}

#[test]
fn a_quiet_sources_month_ends_with_the_day_of_its_last_record() {
    // The last record is on 10-31: the 30 days are 10-02 to 11-01, which hold both records
    // (10-02 00:30 and 10-31 23:59:30).
    let p = ingested(&[
        r#"{"ts":"2026-10-02T00:30:00Z","tid":"d1","ms":5}"#,
        r#"{"ts":"2026-10-31T23:59:30Z","tid":"d2","ms":5}"#,
    ]);
    assert_eq!(
        window(&p, "30d"),
        (
            "2026-10-02T00:00:00+00:00".to_owned(),
            "2026-11-01T00:00:00+00:00".to_owned(),
            2,
            0
        )
    );
}
