//! Human review of production traffic: `review sample --from traffic:ID` over a store built by
//! `ingest` from a generated log with users' feedback (inline and imported), graded by import
//! and in headless Chromium, and `review stats` comparing the grades with the users' votes.

use std::fmt::Write as _;

use fantoccini::Locator;
use serde_json::{Value, json};

use crate::review::{browser, chromedriver, downloaded, keys, sample, sheet_json, text_of};
use crate::support::{Project, code, stderr, stdout};

const SALT: &str = "review-salt-7c1e";

/// Two sources over the same kind of log: `bot` keeps every record whole, `quiet` keeps no
/// text (`store_text: none`).
const CONFIG: &str = "traffic:
  - id: bot
    path: logs/bot.jsonl
    fields: &fields
      time: /ts
      input: /q
      output: /a
      context: /ctx
      model: /model
      feature: /feature
      segment: /plan
      region: /region
      trace_id: /trace
      latency_ms: /ms
      error: /error
      error_kind: /error/type
      confidence: /conf
      feedback: /fb
    sample: 100%
    monitor:
      - type: hallucination
      - type: contains
        value: Refunds
  - id: quiet
    path: logs/quiet.jsonl
    fields: *fields
    sample: 100%
    store_text: none
";

/// An hour and a half ago, on a minute boundary.
fn recent_start() -> i64 {
    (chrono::Utc::now().timestamp() - 5400) / 60 * 60
}

/// `n` records, one every 30 s from `start`, planted by `i % 10`: 0 thumbs-down inline,
/// 1 a hallucinated answer, 2 the lowest confidences, 3 an answer the `contains` monitor
/// fails, 4 a failed request, 5 thumbs-up inline; the rest plain.
fn generated_log(start: i64, n: i64) -> String {
    let mut out = String::new();
    for i in 0..n {
        let ts = start * 1000 + i * 30_000;
        let feature = if i % 2 == 0 { "chat" } else { "summarise" };
        let mut answer = "Refunds take 30 days.".to_owned();
        let mut extra = String::new();
        let conf = match i % 10 {
            2 => -3.0 - (i as f64) / 1000.0,
            _ => -0.1 - ((i % 7) as f64) / 100.0,
        };
        match i % 10 {
            0 => extra.push_str(r#", "fb": "down""#),
            1 => answer = "Refunds are paid in gold coins at our Munich castle on Sundays.".into(),
            3 => answer = "It takes 30 days.".into(),
            4 => extra.push_str(r#", "error": {"type": "timeout"}"#),
            5 => extra.push_str(r#", "fb": "up""#),
            _ => {}
        }
        let a = if i % 10 == 4 {
            String::new()
        } else {
            format!(r#", "a": "{answer}""#)
        };
        let _ = writeln!(
            out,
            r#"{{"ts": {ts}, "trace": "t{i}", "q": "How long do refunds take? ({i})"{a}, "ctx": "Refunds take 30 days.", "model": "m1", "feature": "{feature}", "plan": "pro", "region": "fr", "ms": 120, "conf": {conf}{extra}}}"#
        );
    }
    out
}

/// A project whose two sources have ingested 120 and 20 records, with feedback imported
/// after the fact: thumbs-down on t6, t16, t26.
fn ingested() -> Project {
    let p = Project::new();
    p.write("evalwatch.yaml", CONFIG);
    let start = recent_start();
    p.write("logs/bot.jsonl", &generated_log(start, 120));
    p.write("logs/quiet.jsonl", &generated_log(start, 20));
    for source in ["bot", "quiet"] {
        salted(&p, &["ingest", source]);
    }
    let mut fb = String::new();
    for i in [6, 16, 26] {
        let _ = writeln!(
            fb,
            r#"{{"trace_id": "t{i}", "time": {}, "value": "down", "comment": "made up policy {i}"}}"#,
            start + i * 30 + 60
        );
    }
    p.write("fb.jsonl", &fb);
    salted(&p, &["feedback", "import", "fb.jsonl", "--source", "bot"]);
    p
}

/// `evalwatch ARGS` with the salt user ids are hashed with; it must succeed.
fn salted(p: &Project, args: &[&str]) {
    let out = p
        .cmd()
        .env("EVALWATCH_TRAFFIC_SALT", SALT)
        .args(args)
        .output()
        .expect("run evalwatch");
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
}

/// `review stats --from traffic:bot --format json`.
fn bot_stats(p: &Project) -> Value {
    let out = p.run(&[
        "review",
        "stats",
        "--from",
        "traffic:bot",
        "--format",
        "json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("json")
}

fn items_of(p: &Project, args: &[&str]) -> (String, Value) {
    let (id, page) = sample(p, args);
    let html = std::fs::read_to_string(&page).expect("page");
    (id, sheet_json(&html))
}

/// The record number `i` of a generated record's key-independent trace id.
fn trace_no(item: &Value) -> i64 {
    item["traffic"]["trace_id"]
        .as_str()
        .and_then(|t| t.strip_prefix('t'))
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no trace id in {item}"))
}

#[test]
fn thumbs_down_records_come_first_and_every_stratum_is_filled() {
    let p = ingested();
    let out = p.run(&[
        "review",
        "sample",
        "--from",
        "traffic:bot",
        "--n",
        "30",
        "--seed",
        "3",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    // 12 inline thumbs-down and 3 imported; 12 of each planted kind; 12 lowest confidences.
    for want in [
        "thumbs_down 5/15",
        "hallucination 5/12",
        "low_confidence 5/12",
        "monitor_fail 5/12",
        "error 4/12",
        "random 6/57",
    ] {
        assert!(text.contains(want), "{want} in {text}");
    }
    let (_, data) = {
        let id = text
            .lines()
            .find_map(|l| l.strip_prefix("review sheet "))
            .and_then(|l| l.split(':').next())
            .expect("sheet id")
            .to_owned();
        let html = std::fs::read_to_string(p.path().join(format!("reports/review/{id}.html")))
            .expect("page");
        (id, sheet_json(&html))
    };
    let items = data["items"].as_array().expect("items");
    assert_eq!(items.len(), 30);
    let strata: Vec<&str> = items
        .iter()
        .map(|i| i["stratum"].as_str().unwrap_or_default())
        .collect();
    assert!(
        strata[..5].iter().all(|s| *s == "thumbs_down") && !strata[5..].contains(&"thumbs_down"),
        "thumbs-down first: {strata:?}"
    );
    for item in items {
        let i = trace_no(item);
        let t = &item["traffic"];
        assert_eq!(t["source"], "bot");
        assert_eq!(item["run_id"], "bot");
        assert_eq!(t["model"], "m1");
        assert_eq!(t["segment"], "pro");
        assert!(t["time"].as_str().is_some_and(|s| s.ends_with('Z')), "{t}");
        let want = match (i % 10, i) {
            (0, _) | (6, 6 | 16 | 26) => "thumbs_down",
            (1, _) => "hallucination",
            (2, _) => "low_confidence",
            (3, _) => "monitor_fail",
            (4, _) => "error",
            _ => "random",
        };
        assert_eq!(item["stratum"], want, "record t{i}: {item}");
        assert_eq!(
            item["prompt"],
            format!("How long do refunds take? ({i})"),
            "the input is shown"
        );
        match want {
            "thumbs_down" => {
                assert_eq!(t["vote"], "negative", "{item}");
                if i % 10 == 6 {
                    assert_eq!(t["comment"], format!("made up policy {i}"));
                }
            }
            "hallucination" => {
                let failed: Vec<&Value> = item["auto"]["assertions"]
                    .as_array()
                    .expect("monitor verdicts")
                    .iter()
                    .filter(|a| a["type"] == "hallucination" && a["pass"] == false)
                    .collect();
                assert_eq!(failed.len(), 1, "{item}");
            }
            "error" => assert_eq!(t["error"], "timeout"),
            _ => {}
        }
        assert_eq!(item["context"], json!(["Refunds take 30 days."]));
    }
    // The same seed over the same records gives the same sheet (once the first is closed).
    let first: Vec<&Value> = items.iter().map(|i| &i["result_id"]).collect();
    let id = data["sheet_id"].as_str().expect("sheet id");
    assert_eq!(code(&p.run(&["review", "close", id])), 0);
    let (_, again) = items_of(&p, &["--from", "traffic:bot", "--n", "30", "--seed", "3"]);
    let second: Vec<&Value> = again["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| &i["result_id"])
        .collect();
    assert_eq!(first, second);
    // An open sheet holds its records: another sample leaves them out.
    let (_, third) = items_of(
        &p,
        &["--from", "traffic:bot", "--window", "24h", "--n", "200"],
    );
    let third: Vec<&Value> = third["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| &i["result_id"])
        .collect();
    assert_eq!(third.len(), 90, "120 records, 30 in the open sheet");
    assert!(second.iter().all(|id| !third.contains(id)));
}

#[test]
fn records_without_text_are_counted_and_bad_sources_are_refused() {
    let p = ingested();
    let out = p.run(&["review", "sample", "--from", "traffic:quiet"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        all.contains("20 record(s) have no stored text and cannot be reviewed (the source sets `store_text: none`)"),
        "{all}"
    );
    // Audit review D8 (C9): said once, with the advice that fits a source that keeps no text.
    assert!(
        all.contains("nothing to sample: the 20 stored record(s) of source quiet over the last 7d have no text to review: the source sets `store_text: none`; set `store_text: sampled` in evalwatch.yaml to keep the text of the records ingested from then on"),
        "{all}"
    );
    assert!(
        !all.contains("nothing to sample: nothing to sample"),
        "{all}"
    );
    assert!(!all.contains("close a sheet"), "{all}");
    let out = p.run(&["review", "sample", "--from", "traffic:bto"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("no such source") && stderr(&out).contains("`bot`"),
        "did you mean: {}",
        stderr(&out)
    );
    let out = p.run(&["review", "sample", "--from", "bot"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("traffic:SOURCE_ID"),
        "{}",
        stderr(&out)
    );
    let out = p.run(&[
        "review",
        "sample",
        "--from",
        "traffic:bot",
        "--window",
        "soon",
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("read the window `soon`: give one such as 24h"),
        "{}",
        stderr(&out)
    );
    let out = p.run(&["review", "stats", "--from", "traffic:bot"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("no grades of traffic source bot yet"),
        "{}",
        stdout(&out)
    );
    let out = p.run(&["review", "stats", "--from", "traffic:nope"]);
    assert_eq!(code(&out), 2, "an unknown source: {}", stderr(&out));
}

#[test]
fn a_window_without_records_and_a_source_without_feedback_are_said() {
    let p = Project::new();
    p.write("evalwatch.yaml", CONFIG);
    // Records of three days ago only: none in the last 24h.
    let start = chrono::Utc::now().timestamp() / 60 * 60 - 3 * 86_400;
    let log: String = generated_log(start, 40)
        .lines()
        .filter(|l| !l.contains(r#""fb""#))
        .fold(String::new(), |mut s, l| {
            s.push_str(l);
            s.push('\n');
            s
        });
    p.write("logs/bot.jsonl", &log);
    salted(&p, &["ingest", "bot"]);
    let out = p.run(&[
        "review",
        "sample",
        "--from",
        "traffic:bot",
        "--window",
        "24h",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out)
            .contains("nothing to sample: no stored records of source bot over the last 24h"),
        "{}",
        stdout(&out)
    );
    assert!(!p.path().join("reports/review").exists(), "no sheet");
    let out = p.run(&["review", "sample", "--from", "traffic:bot", "--n", "10"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(all.contains("thumbs_down 0/0"), "{all}");
    assert!(
        all.contains("thumbs_down: empty: no record of the window has a user's thumbs-down"),
        "{all}"
    );
}

/// A grades file failing the thumbs-down and hallucination items and passing the rest.
fn grades_for(sheet: &Value, reviewer: &str) -> Value {
    let grades: Vec<Value> = sheet["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            let fail = i["stratum"] == "thumbs_down" || i["stratum"] == "hallucination";
            json!({"result_id": i["result_id"], "verdict": if fail {"fail"} else {"pass"},
                   "quality": if fail {2} else {4}, "note": if fail {"wrong"} else {""}})
        })
        .collect();
    json!({"sheet_id": sheet["sheet_id"], "reviewer": reviewer,
           "exported_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true), "sheet_mac": sheet["mac"],
           "grades": grades})
}

#[test]
fn review_stats_compares_reviewers_with_users_votes() {
    let p = ingested();
    let (sheet_id, sheet) = items_of(&p, &["--from", "traffic:bot", "--n", "30", "--seed", "3"]);
    let items = sheet["items"].as_array().expect("items");
    p.write("grades.json", &grades_for(&sheet, "Ann").to_string());
    let out = p.run(&["review", "import", "grades.json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("30 new"), "{}", stdout(&out));
    // One user changes their mind after the sheet was made: a thumbs-down becomes a thumbs-up.
    let changed = items
        .iter()
        .find(|i| i["stratum"] == "thumbs_down")
        .expect("a thumbs-down item");
    let trace = changed["traffic"]["trace_id"].as_str().expect("trace");
    let start = recent_start();
    p.write(
        "late.jsonl",
        &format!(
            "{{\"trace_id\": \"{trace}\", \"time\": {}, \"value\": \"up\", \"comment\": \"fine after all\"}}\n",
            start + 5000
        ),
    );
    salted(&p, &["feedback", "import", "late.jsonl", "--source", "bot"]);

    // Expected from the sheet: reviewer verdict by stratum, user vote as now stored.
    let (mut table, mut unrated) = ([[0u64; 2]; 2], 0u64);
    for i in items {
        let pass = !(i["stratum"] == "thumbs_down" || i["stratum"] == "hallucination");
        let vote = if i["result_id"] == changed["result_id"] {
            Some("positive")
        } else {
            i["traffic"]["vote"].as_str()
        };
        match vote {
            Some("positive") => table[usize::from(!pass)][0] += 1,
            Some("negative") => table[usize::from(!pass)][1] += 1,
            _ => unrated += 1,
        }
    }
    assert!(table[0][0] > 0 && table[1][1] > 0, "{table:?}");
    assert_eq!(table[1][0], 1, "the changed vote is the one disagreement");
    let stats = bot_stats(&p);
    let t = &stats["traffic"][0];
    assert_eq!(t["source"], "bot");
    assert_eq!(
        t["confusion"],
        json!({"reviewer_pass_user_up": table[0][0], "reviewer_pass_user_down": table[0][1],
               "reviewer_fail_user_up": table[1][0], "reviewer_fail_user_down": table[1][1]})
    );
    assert_eq!(t["unrated"], unrated);
    let n = table.iter().flatten().sum::<u64>();
    assert_eq!(t["n"], n);
    let agree = (table[0][0] + table[1][1]) as f64 / n as f64;
    assert!(
        (t["agreement"].as_f64().expect("agreement") - agree).abs() < 1e-12,
        "{t}"
    );
    assert!(t["kappa"].as_f64().is_some(), "{t}");
    let dis = t["disagreements"].as_array().expect("disagreements");
    assert_eq!(dis.len(), 1, "{t}");
    assert_eq!(dis[0]["key"], changed["traffic"]["key"]);
    assert_eq!(dis[0]["verdict"], "fail");
    assert_eq!(dis[0]["vote"], "positive");
    assert_eq!(dis[0]["comment"], "fine after all");
    assert_eq!(stats["agreement"], json!([]), "no suite grades with --from");

    let text = stdout(&p.run(&["review", "stats"]));
    assert!(
        text.contains(
            "reviewers against users' votes: 30 current grade(s) of traffic records by Ann"
        ),
        "{text}"
    );
    assert!(
        text.contains("user up") && text.contains("reviewer fail"),
        "{text}"
    );
    assert!(text.contains("disagreements (1):"), "{text}");
    assert!(text.contains("\"fine after all\""), "{text}");
    // `review show` lists the traffic grades, and the sheet is done.
    let shown = p.run(&["review", "show", &sheet_id, "--format", "json"]);
    let shown: Value = serde_json::from_slice(&shown.stdout).expect("json");
    assert_eq!(shown["grades"].as_array().map(Vec::len), Some(30));
    assert_eq!(shown["status"], "closed");
    let text = stdout(&p.run(&["review", "show", &sheet_id]));
    assert!(text.contains("30/30 item(s) graded"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traffic_sheet_is_graded_in_chromium_and_stats_compare_it_with_votes() {
    let p = ingested();
    let (sheet_id, page) = sample(&p, &["--from", "traffic:bot", "--n", "6", "--seed", "1"]);
    let data = sheet_json(&std::fs::read_to_string(&page).expect("page"));
    let items = data["items"].as_array().expect("items").clone();
    assert_eq!(items[0]["stratum"], "thumbs_down", "{items:?}");

    let tmp = tempfile::tempdir().expect("tmp");
    let downloads = tmp.path().join("downloads");
    std::fs::create_dir_all(&downloads).expect("mkdir");
    let driver = chromedriver();
    let c = browser(&driver, &tmp.path().join("profile"), &downloads).await;
    c.goto(&format!("file://{}", page.display()))
        .await
        .expect("open sheet");
    assert_eq!(text_of(&c, "#progress").await, "0 / 6 graded");
    let reviewer = c.find(Locator::Css("#reviewer")).await.expect("reviewer");
    reviewer.send_keys("Ann Lee").await.expect("type name");
    keys(&c, "\u{e00c}").await;
    // The record's labels and its input are shown; the user's vote waits (blind mode).
    let meta = text_of(&c, "#item .meta").await;
    assert!(
        meta.contains("source bot") && meta.contains("model m1") && meta.contains("segment pro"),
        "{meta}"
    );
    let input = items[0]["prompt"].as_str().expect("input");
    assert!(text_of(&c, "#item").await.contains(input));
    assert!(
        text_of(&c, "#feedback")
            .await
            .contains("Hidden until you grade"),
        "blind mode hides the vote"
    );
    // Fail the thumbs-down item: its vote shows once graded.
    keys(&c, "f").await;
    keys(&c, "2").await;
    let feedback = text_of(&c, "#feedback").await;
    assert!(feedback.contains("negative"), "{feedback}");
    assert!(!text_of(&c, "#auto").await.contains("Hidden"));
    keys(&c, "j").await;
    keys(&c, "p").await;
    keys(&c, "4").await;
    assert_eq!(text_of(&c, "#progress").await, "2 / 6 graded");
    // Saved: a reload keeps both grades.
    assert_eq!(
        crate::review::reload_until(&c, "#progress", "2 / 6 graded").await,
        "2 / 6 graded"
    );
    keys(&c, "e").await;
    let file = downloaded(&downloads);
    c.close().await.expect("close browser");
    drop(driver);

    let exported: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("grades")).expect("json");
    assert_eq!(exported["sheet_id"], sheet_id.as_str());
    let grades = exported["grades"].as_array().expect("grades");
    assert_eq!(grades.len(), 2);
    assert_eq!(grades[0]["result_id"], items[0]["result_id"]);
    assert_eq!(grades[0]["verdict"], "fail");
    let out = p.run(&["review", "import", &file.display().to_string()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("2 new"), "{}", stdout(&out));
    let stats = bot_stats(&p);
    let t = &stats["traffic"][0];
    // The thumbs-down item failed: agreement on a user's down vote.
    assert_eq!(t["confusion"]["reviewer_fail_user_down"], 1, "{t}");
    let second = items[1]["traffic"]["vote"].as_str();
    let n = 1 + u64::from(matches!(second, Some("positive" | "negative")));
    assert_eq!(t["n"], n, "{t}");
}
