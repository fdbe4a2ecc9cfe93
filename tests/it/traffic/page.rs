//! The traffic page of `report`: written per source, linked from the index, escaped, marked
//! with change markers, and laid out within phone and desktop widths in headless Chromium.

use super::ingest::{generated_log, ingest, recent_start, source_config};
use crate::support::{Project, code, stderr, stdout};

#[test]
fn report_writes_a_traffic_page_per_source_linked_from_the_index() {
    let p = Project::new();
    p.write("evalwatch.yaml", &source_config("10%"));
    let start = recent_start();
    // A feature name that would run as script if it were not escaped.
    let log = generated_log(start, 2000).replace("summarise", "<script>s</script>");
    p.write("logs/a.jsonl", &log);
    let out = ingest(&p, &[]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let at = chrono::DateTime::from_timestamp(start + 600, 0)
        .expect("time")
        .to_rfc3339();
    let out = p.run(&[
        "mark",
        "deploy",
        "deploy <b>v2</b>",
        "--at",
        &at,
        "--source",
        "bot",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = p.run(&["report"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let dir = p.path().join("reports");
    let page = std::fs::read_to_string(dir.join("traffic-bot.html")).expect("traffic page");
    let index = std::fs::read_to_string(dir.join("index.html")).expect("index");
    assert!(
        index.contains("href=\"traffic-bot.html\""),
        "index links the page"
    );
    // 2000 records, every 20th failed: the figures of the generated log.
    assert!(page.contains("<b>2000</b>"), "volume shown");
    assert!(page.contains("<b>5.0%</b>"), "error rate shown");
    assert!(!page.contains("<script>"), "a feature name runs as script");
    assert!(
        page.contains("&lt;script&gt;s"),
        "the feature is shown, escaped"
    );
    assert!(
        page.contains("class=\"marker change\""),
        "the marker is drawn"
    );
    assert!(
        page.contains("deploy &lt;b&gt;v2"),
        "the marker is listed, escaped"
    );
    for w in ["24h", "7d", "30d"] {
        assert!(page.contains(&format!("id=\"sec-{w}\"")), "window {w}");
    }
    for chart in [
        "latency p50 / p95 / p99",
        "daily cost by feature",
        "daily cost by model",
        "quality on the sample",
        "requests by hour of day",
    ] {
        assert!(page.contains(chart), "chart {chart}");
    }
    assert!(
        !page.contains("src=\"http") && !page.contains("href=\"http"),
        "the page loads nothing from the network"
    );
    crate::pages::assert_fits(&dir, "traffic-bot.html");
}

/// `init` scaffolds a traffic source with a recorded log of the last days and the spec's four
/// starting rules, live: it validates, ingests with exit 0 and no alert (the 15-minute rules
/// say their windows hold too few requests, the daily cost rule judges whole days, the weekly
/// satisfaction rule has no week before to compare with), and `report` shows it on a traffic
/// page.
#[test]
fn init_writes_an_example_traffic_source_that_ingests_and_shows_a_page() {
    let p = Project::new();
    let out = p.run(&["init"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let config = std::fs::read_to_string(p.path().join("evalwatch.yaml")).expect("config");
    for rule in [
        "metric: traffic.error_rate, max: 0.05, window: 15m",
        "metric: traffic.latency_p95_ms, ratio: 3, baseline: \"trailing:7d\", window: 15m",
        "metric: traffic.cost_usd, ratio: 1.2, baseline: \"trailing:7d\", window: 1d",
        "metric: traffic.satisfaction, drop: 0.10, relative: true, baseline: same_window_last_week, window: 7d",
    ] {
        assert!(
            config.contains("\n    alerts:\n") && config.contains(&format!("\n      - {{{rule}")),
            "rule `{rule}` live in {config}"
        );
    }
    let out = p.run(&["validate"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("4 alert rules"), "{}", stdout(&out));
    let out = ingest(&p, &["-v"]);
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "no alert opens: {}{err}", stdout(&out));
    assert!(!err.contains("alert ["), "{err}");
    for rule in [
        "traffic.error_rate max 0.05 over 15m",
        "traffic.latency_p95_ms ratio 3 vs trailing:7d over 15m",
    ] {
        assert!(
            err.lines()
                .any(|l| l.contains(&format!("alert rule `{rule}`"))
                    && (l.contains("not judged: 15m window holds") || l.contains("no data"))),
            "{rule}: {err}"
        );
    }
    assert!(
        err.lines().any(|l| l
            .contains("alert rule `traffic.cost_usd ratio 1.2 vs trailing:7d over 1d`")
            && l.contains(": quiet")),
        "the daily cost rule judges a whole day: {err}"
    );
    assert!(
        err.lines().any(|l| l.contains(
            "alert rule `traffic.satisfaction drop 0.1 relative vs same_window_last_week over 7d`"
        ) && l.contains("same_window_last_week has no data")),
        "the example's votes reach the satisfaction rule, which has no week before: {err}"
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["new"], 360, "{json}");
    // Ingesting again adds nothing.
    let again: serde_json::Value = serde_json::from_slice(&ingest(&p, &[]).stdout).expect("json");
    assert_eq!(again["new"], 0, "{again}");
    let out = p.run(&["report"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let page = std::fs::read_to_string(p.path().join("reports/traffic-example-app.html"))
        .expect("traffic page");
    // All 360 records fall in the 7d and 30d windows; some in the last 24h.
    assert_eq!(page.matches("<b>360</b>").count(), 2, "7d and 30d volumes");
    for feature in ["chat", "summarise", "search"] {
        assert!(page.contains(&format!("<td>{feature}</td>")), "{feature}");
    }
    assert!(!page.contains("<b>0</b>"), "the last 24h holds traffic too");
    let out = p.run(&["init"]);
    assert_eq!(code(&out), 2, "init refuses to overwrite");
}
