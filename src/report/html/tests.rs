use super::chart::{Sample, SeriesIn, Unit, line_chart};
use super::suite_page::windows_for;
use super::*;

#[test]
fn file_stems_never_escape_the_folder_and_never_collide() {
    assert_eq!(file_stem("smoke-1.2_x"), "smoke-1.2_x");
    let odd = file_stem("../etc/passwd");
    assert!(!odd.contains('/') && !odd.starts_with('.'), "{odd}");
    assert_ne!(file_stem("a b"), file_stem("a_b"));
    assert_ne!(
        file_stem("index"),
        "index",
        "a suite named index keeps index.html free"
    );
    assert!(!file_stem("").is_empty());
}

#[test]
fn windows_parse() {
    assert_eq!(
        Window::parse("24h").and_then(|w| w.span),
        Some(chrono::Duration::hours(24))
    );
    assert_eq!(
        Window::parse("2w").and_then(|w| w.span),
        Some(chrono::Duration::days(14))
    );
    assert_eq!(Window::parse("all").map(|w| w.span), Some(None));
    // Every form of a duration (model::duration), at least a minute.
    let one_and_a_half_days = Window::parse("1d 12h").expect("1d 12h");
    assert_eq!(one_and_a_half_days.span, Some(chrono::Duration::hours(36)));
    assert_eq!(one_and_a_half_days.label, "1d12h");
    assert_eq!(
        Window::parse("90m").and_then(|w| w.span),
        Some(chrono::Duration::minutes(90))
    );
    for bad in ["", "d", "0d", "7", "7y", "x7d", "30s", "100001w"] {
        assert!(Window::parse(bad).is_none(), "{bad}");
    }
    let w = windows_for(&Window::parse("14d").expect("14d"));
    let labels: Vec<&str> = w.iter().map(|w| w.label.as_str()).collect();
    assert_eq!(labels, ["24h", "7d", "14d", "30d", "90d", "all"]);
}

#[test]
fn expected_answers_follow_the_case_version() {
    let mut e = Expected::default();
    e.add("s", "c1", "h1", Some("yes"));
    e.add("s", "c2", "h2", None);
    assert_eq!(e.lookup("s", "c1", "h1"), Ok("yes"));
    assert!(e.lookup("s", "c1", "old").unwrap_err().contains("edited"));
    assert!(
        e.lookup("s", "c2", "h2")
            .unwrap_err()
            .contains("no expected")
    );
    assert!(e.lookup("s", "zz", "h").is_err());
}

#[test]
fn long_text_is_clipped_with_a_note() {
    let long = "é".repeat(MAX_TEXT + 10);
    let c = clip(&long);
    assert!(
        c.ends_with("[10 more characters not shown]"),
        "{}",
        &c[c.len() - 40..]
    );
    assert_eq!(clip("short"), "short");
}

#[test]
#[allow(clippy::items_after_statements)]
fn templates_escape_suite_and_output_strings() {
    let t = engine().expect("templates");
    let c = line_chart(
        "<b>x</b>",
        Unit::Rate,
        &[SeriesIn {
            name: "<script>".into(),
            samples: vec![Sample {
                t: 0.0,
                value: Some(0.5),
                label: "\"run\"".into(),
            }],
        }],
        &[],
        &[],
        (600.0, 200.0),
    );
    #[derive(Serialize)]
    struct V {
        c: chart::Chart,
    }
    let html = render(&t, "chart.html", &V { c }).expect("render");
    assert!(
        !html.contains("<script>") && !html.contains("<b>x"),
        "{html}"
    );
    assert!(html.contains("&lt;script&gt;"), "{html}");
}
