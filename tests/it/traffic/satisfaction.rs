//! The satisfaction rule of the spec end to end, with rated data: a planted rise in
//! thumbs-down on one feature opens exactly one alert naming that feature, whether the votes
//! came inline in the records or by `feedback import` after the fact; feedback imported twice
//! changes nothing; a stable stream over eight weeks opens none.

use std::fmt::Write as _;
use std::process::Output;

use chrono::Utc;

use super::alerts::{SATISFACTION, ingest, project, rfc};
use super::ingest::SALT;
use crate::alerts::{Receiver, SECRET, verify};
use crate::support::{Project, code, stderr, stdout};

const DAY: i64 = 86_400;

/// The start (UTC) of the day `days_ago` days ago.
fn day(days_ago: i64) -> i64 {
    (Utc::now().timestamp().div_euclid(DAY) - days_ago) * DAY
}

/// How the votes reach the store.
#[derive(Clone, Copy, PartialEq)]
enum Votes {
    /// In the records (`fields.feedback`).
    Inline,
    /// Not in the records: [`votes_file`] holds them.
    Imported,
}

/// Whether record `j` (0-19) of `feature` on day `d` (days ago) is voted down. Normally
/// 1-3 in 20 (the count cycles by day: satisfaction 85-95% a day, 90% a week); with
/// `planted`, `summarise` from 8 days ago gets 10 in 20.
fn down(d: i64, feature: &str, j: i64, planted: bool) -> bool {
    if planted && feature == "summarise" && d <= 8 {
        return j % 2 == 0;
    }
    j < 1 + d.rem_euclid(3)
}

/// Records (and their votes) from `from` days ago to 2 days ago, 20 per feature a day, plus
/// a few on the day before today (so that the window ending yesterday has closed).
fn traffic(from: i64, planted: bool, votes: Votes) -> (String, String) {
    let mut log = String::new();
    let mut file = String::new();
    for d in (1..=from).rev() {
        let per_feature = if d == 1 { 2 } else { 20 };
        for j in 0..per_feature {
            for (offset, feature) in [(0, "chat"), (600, "summarise")] {
                let t = day(d) + j * 1200 + offset;
                let trace = format!("d{d}-{feature}-{j}");
                let value = if down(d, feature, j, planted) {
                    "down"
                } else {
                    "up"
                };
                let inline = if votes == Votes::Inline {
                    format!(r#", "feedback": "{value}""#)
                } else {
                    String::new()
                };
                let _ = writeln!(
                    log,
                    r#"{{"ts": "{}", "trace": "{trace}", "model": "m1", "feature": "{feature}", "ms": 120{inline}}}"#,
                    rfc(t)
                );
                let _ = writeln!(
                    file,
                    r#"{{"trace_id": "{trace}", "time": "{}", "value": "{value}"}}"#,
                    rfc(t + 60)
                );
            }
        }
    }
    (log, file)
}

fn import(p: &Project, hook: &Receiver) -> Output {
    p.cmd()
        .env("EVALWATCH_TRAFFIC_SALT", SALT)
        .env("EW_TEST_HOOK_URL", &hook.url)
        .env("EW_TEST_HOOK_SECRET", SECRET)
        .args(["-v", "feedback", "import", "votes.jsonl"])
        .output()
        .expect("run evalwatch")
}

/// The one alert received: the satisfaction rule's, naming `summarise`.
fn assert_one_satisfaction_alert(hook: &Receiver) {
    let got = hook.received();
    assert_eq!(got.len(), 1, "{got:?}");
    verify(&got[0]);
    assert_eq!(got[0].event.as_deref(), Some("alert"));
    let alert = got[0].json();
    assert_eq!(alert["metric"], "traffic.satisfaction", "{alert}");
    assert_eq!(alert["severity"], "warning", "{alert}");
    assert_eq!(alert["window"], "7d", "{alert}");
    let cx = &alert["context"];
    assert_eq!(cx["concentrated"]["by"], "feature", "{alert}");
    assert_eq!(cx["concentrated"]["label"], "summarise", "{alert}");
    let normal = cx["normal"].as_f64().expect("normal");
    let value = cx["value"].as_f64().expect("value");
    assert!((normal - 0.9).abs() < 0.02, "{alert}");
    assert!(value < normal * 0.9, "{alert}");
    let message = alert["message"].as_str().expect("message");
    assert!(
        message.contains("concentrated in the summarise feature"),
        "{message}"
    );
}

/// A project with the satisfaction rule that has ingested `days` days of traffic (with the
/// planted rise or not, votes inline or not): the webhook, the project, what `ingest` gave
/// and the votes as a file for `feedback import`.
fn ingested(days: i64, planted: bool, votes: Votes) -> (Receiver, Project, Output, String) {
    let hook = Receiver::start();
    let p = project(SATISFACTION);
    let (log, file) = traffic(days, planted, votes);
    p.write("logs/a.jsonl", &log);
    let out = ingest(&p, &hook);
    (hook, p, out, file)
}

/// The command exited 1: an alert opened.
fn assert_opened(out: &Output) {
    assert_eq!(
        code(out),
        1,
        "an alert opened: {}{}",
        stdout(out),
        stderr(out)
    );
}

#[test]
fn a_planted_rise_in_thumbs_down_on_one_feature_opens_one_satisfaction_alert() {
    let (hook, p, out, _) = ingested(16, true, Votes::Inline);
    assert_opened(&out);
    assert_one_satisfaction_alert(&hook);
    // Read again and judged again: nothing more.
    assert_eq!(code(&ingest(&p, &hook)), 0);
    assert_eq!(hook.received().len(), 1);
}

#[test]
fn votes_imported_after_the_fact_open_it_too_and_importing_them_twice_changes_nothing() {
    let (hook, p, out, votes) = ingested(16, true, Votes::Imported);
    // No vote yet: the rule has nothing to judge.
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(hook.received().is_empty());
    p.write("votes.jsonl", &votes);
    assert_opened(&import(&p, &hook));
    assert_one_satisfaction_alert(&hook);
    // 30d, not 7d: the 7d window ends with the current hour, so an hour that began between
    // the two calls would move its start past some of the records (those of 00:00-06:30 on
    // the day 7 days back); all 16 days stay inside 30d whatever the hour.
    let figures = |p: &Project| {
        let out = p
            .cmd()
            .args([
                "traffic", "--window", "30d", "--by", "feature", "--format", "json",
            ])
            .output()
            .expect("run evalwatch");
        super::ingest::json(&out)
    };
    let before = figures(&p);
    let out = import(&p, &hook);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("604 read, 0 new"), "{}", stdout(&out));
    assert_eq!(hook.received().len(), 1);
    let mut after = figures(&p);
    after["from"] = before["from"].clone();
    after["to"] = before["to"].clone();
    assert_eq!(after["by"], before["by"]);
    assert_eq!(after["current"], before["current"]);
}

#[test]
fn a_stable_stream_over_eight_weeks_opens_no_satisfaction_alert() {
    let (hook, _p, out, _) = ingested(57, false, Votes::Inline);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let err = stderr(&out);
    // The rule did judge windows (it is not quiet for want of data).
    assert!(
        err.contains("traffic.satisfaction drop 0.1 relative vs same_window_last_week over 7d"),
        "{err}"
    );
    assert!(hook.received().is_empty(), "{:?}", hook.received());
}
