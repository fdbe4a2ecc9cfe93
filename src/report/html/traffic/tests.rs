use super::*;

fn page(source: &str, feature: &str) -> TrafficPage {
    let figures = |volume: u64| TrafficFigures {
        volume,
        error_rate: Some(0.25),
        latency_p50_ms: Some(120.0),
        latency_p95_ms: Some(900.0),
        latency_p99_ms: Some(1500.0),
        cost_usd: 1.5,
        sampled: 4,
        scored: 4,
        pass_rate: Some(0.75),
        hallucination_rate: Some(0.5),
        refusal_rate: None,
    };
    let t0 = 1_700_000_000 / 3600 * 3600;
    TrafficPage {
        source: source.into(),
        generated: DateTime::from_timestamp(t0 + 7200, 0).expect("time"),
        quiet: None,
        rules: Vec::new(),
        windows: vec![TrafficWindow {
            label: "24h".into(),
            bucket: "hour".into(),
            bucket_secs: 3600,
            current: figures(40),
            previous: TrafficFigures::default(),
            points: vec![
                TrafficPoint {
                    t: t0,
                    figures: figures(10),
                },
                TrafficPoint {
                    t: t0 + 3600,
                    figures: figures(30),
                },
            ],
            cost_by_feature: BTreeMap::from([(feature.to_string(), vec![(t0, 1.5)])]),
            cost_by_model: BTreeMap::from([("gpt-x".to_string(), vec![(t0, 1.5)])]),
            usage: TrafficUsage {
                by_hour: Some(BTreeMap::from([(3, 40)])),
                by_feature: BTreeMap::from([(feature.to_string(), 30), (String::new(), 10)]),
                ..TrafficUsage::default()
            },
            judge: None,
        }],
        markers: vec![TrafficMarker {
            t: t0 + 1800,
            text: "deploy <b>v2</b>".into(),
        }],
        alerts: vec![],
        drift: DriftHistory::default(),
        confidence: None,
    }
}

#[test]
fn names_from_traffic_are_escaped_everywhere() {
    let html =
        render_traffic(&page("<script>alert(1)</script>", "<script>f</script>")).expect("render");
    assert!(!html.contains("<script>"), "raw script tag in the page");
    assert!(
        html.contains("Traffic: &lt;script&gt;alert(1)"),
        "source shown escaped"
    );
    assert!(html.contains("&lt;script&gt;f"), "feature shown escaped");
    assert!(!html.contains("<b>v2</b>"), "marker text escaped");
}

#[test]
fn shows_figures_beside_the_window_before_and_markers() {
    let html = render_traffic(&page("bot", "summarise")).expect("render");
    assert!(html.contains("25.0%"), "error rate");
    assert!(html.contains("<b>900 ms</b>") && html.contains("<b>1500 ms</b>"));
    assert!(
        html.contains("before: n/a"),
        "the window before had no traffic"
    );
    // The marker is a line on the charts (with its text on hover) and in the list.
    assert!(html.contains("class=\"marker change\""), "marker drawn");
    assert!(
        html.contains("deploy &lt;b&gt;v2"),
        "marker text listed, escaped"
    );
    assert!(html.contains("(none)"), "an empty label reads (none)");
    assert!(html.contains("requests by hour of day"));
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "no network"
    );
}

#[test]
fn cost_series_folds_the_smallest_labels_into_other() {
    let by: BTreeMap<String, Vec<(i64, f64)>> = (0..10)
        .map(|i| (format!("f{i}"), vec![(0, f64::from(i))]))
        .collect();
    let s = cost_series(&by);
    assert_eq!(s.len(), TRAFFIC_SERIES);
    assert_eq!(s[0].name, "f9");
    let other = s.last().expect("other");
    assert_eq!(other.name, "other");
    // f0..f4 summed: 0+1+2+3+4.
    assert_eq!(other.samples[0].value, Some(10.0));
}

#[test]
fn href_is_a_plain_file_name() {
    assert_eq!(traffic_href("support-bot"), "traffic-support-bot.html");
    let odd = traffic_href("../x y");
    assert!(odd.starts_with("traffic-") && !odd.contains('/') && !odd.contains(' '));
}

#[test]
fn the_confidence_section_shows_each_day_only_when_records_carry_one() {
    let mut p = page("bot", "summarise");
    let html = render_traffic(&p).expect("render");
    assert!(
        !html.contains("id=\"confidence\""),
        "no confidence, no section"
    );
    p.confidence = Some(ConfidenceHistory {
        threshold: 0.5,
        days: vec![ConfidenceDay {
            day: 1_700_006_400,
            n: 40,
            low: 30,
            median: 0.3,
        }],
    });
    let html = render_traffic(&p).expect("render");
    assert!(html.contains("id=\"confidence\""), "{html}");
    assert!(
        html.contains("<td>2023-11-15</td><td>75.0%</td><td>30/40</td><td>0.300</td>"),
        "{html}"
    );
    assert!(html.contains("threshold (0.5)"), "the threshold is named");
}
