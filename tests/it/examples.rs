//! The shipped example suites run offline and give the numbers their recordings imply.

use crate::support::{Project, code, json_runs, stderr, stdout};

fn by_suite<'a>(runs: &'a [serde_json::Value], suite: &str) -> &'a serde_json::Value {
    runs.iter()
        .find(|r| r["suite"] == suite)
        .unwrap_or_else(|| panic!("no run of {suite}"))
}

#[test]
fn shipped_examples_run_offline_with_the_expected_verdicts() {
    let p = Project::examples();
    let out = p.run(&["run", "--format", "json"]);
    assert_eq!(code(&out), 0, "stderr:\n{}", stderr(&out));
    let runs = json_runs(&out);
    assert_eq!(runs.len(), 3, "{}", stdout(&out));

    let faq = by_suite(&runs, "support-faq");
    assert_eq!(faq["status"], "complete");
    let m = &faq["providers"][0]["metrics"];
    assert_eq!(faq["providers"][0]["provider"], "support-bot");
    assert_eq!(m["cases"], 11);
    assert_eq!(m["passed"], 10);
    assert_eq!(m["failed"], 1);
    assert_eq!(m["errors"], 0);
    assert_eq!(
        m["latency_p95_ms"], 3020.0,
        "nearest rank of 11 latencies at p95 is the largest"
    );
    let cases = faq["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 11);
    let failed: Vec<&str> = cases
        .iter()
        .filter(|c| c["status"] == "failed")
        .map(|c| c["case_id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(failed, ["store-location"]);
    // Included cases from JSONL and CSV ran too.
    for id in ["gift-cards", "warranty", "order-tracking", "cancel-order"] {
        assert!(
            cases.iter().any(|c| c["case_id"] == id),
            "missing included case {id}"
        );
    }
    assert!(
        faq["gates"]
            .as_array()
            .expect("gates")
            .iter()
            .all(|g| g["ok"] == true)
    );

    let inv = by_suite(&runs, "invoice-extraction");
    let m = &inv["providers"][0]["metrics"];
    assert_eq!(
        (m["passed"].as_u64(), m["failed"].as_u64()),
        (Some(3), Some(1))
    );
    let failed = inv["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| c["status"] == "failed")
        .expect("one failure");
    assert_eq!(failed["case_id"], "initech-date");

    let route = by_suite(&runs, "ticket-routing");
    let m = &route["providers"][0]["metrics"];
    assert_eq!(
        (m["passed"].as_u64(), m["failed"].as_u64()),
        (Some(11), Some(1))
    );
    let labels = m["labels"].as_array().expect("labels");
    let billing = labels
        .iter()
        .find(|l| l["label"] == "billing")
        .expect("billing label");
    // 4 billing tickets, t-012 predicted technical: recall 3/4, precision 3/3.
    assert_eq!(billing["recall"], 0.75);
    assert_eq!(billing["precision"], 1.0);
    let technical = labels
        .iter()
        .find(|l| l["label"] == "technical")
        .expect("technical label");
    assert_eq!(technical["precision"], 0.75);
}

#[test]
fn text_summary_is_a_table_and_names_the_failure() {
    let p = Project::examples();
    let out = p.run(&["run", "suites/support-faq.yaml"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("provider"), "{text}");
    assert!(text.contains("support-bot"), "{text}");
    assert!(text.contains("90.9%"), "pass rate 10/11: {text}");
    assert!(text.contains("store-location"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "no colour when not a terminal: {text}"
    );
}

#[test]
fn validate_accepts_the_examples() {
    let p = Project::examples();
    let out = p.run(&["validate"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("ok: 3 suites, 27 cases, 3 providers"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn init_scaffolds_a_project_that_runs_and_refuses_to_overwrite() {
    let p = Project::new();
    let out = p.run(&["init"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(p.path().join("evalwatch.yaml").exists());
    let out = p.run(&["run", "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let runs = json_runs(&out);
    assert_eq!(runs[0]["providers"][0]["metrics"]["passed"], 3);
    let again = p.run(&["init"]);
    assert_eq!(code(&again), 2);
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
}

/// The README's first command (`ingest && run`) on the shipped project, offline: the suites
/// run, the recorded traffic log is read without an alert, and reports/ holds a traffic page
/// linked from the index, its windows ending at the log's last record and saying so.
#[test]
fn the_first_command_shows_a_traffic_page() {
    let p = Project::examples();
    let out = p.run(&["-v", "ingest"]);
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "{}{err}", stdout(&out));
    assert!(!err.contains("alert ["), "{err}");
    assert!(stdout(&out).contains("397 new"), "{}", stdout(&out));
    assert!(
        err.contains("over 1d` on traffic:support-bot-prod, window 2026-11-30T00:00:00Z..2026-12-01T00:00:00Z: ")
            && err.contains(": quiet"),
        "the daily cost rule judges the last whole day: {err}"
    );
    let out = p.run(&["run"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let index = std::fs::read_to_string(p.path().join("reports/index.html")).expect("index");
    assert!(
        index.contains("href=\"traffic-support-bot-prod.html\""),
        "the index links the traffic page"
    );
    let page = std::fs::read_to_string(p.path().join("reports/traffic-support-bot-prod.html"))
        .expect("traffic page");
    assert!(
        page.contains("no records since 2026-12-01 13:56 UTC (")
            && page.contains("; windows end at the last record"),
        "a quiet source is said"
    );
    // Every window holds traffic: all 397 records in the 7d and 30d windows.
    assert_eq!(page.matches("<b>397</b>").count(), 2, "7d and 30d volumes");
    assert!(!page.contains("No traffic stored in this window"));
    for feature in ["support-chat", "order-summary", "product-search"] {
        assert!(page.contains(&format!("<td>{feature}</td>")), "{feature}");
    }
    // `traffic` anchors its window the same way.
    let out = p.run(&["traffic", "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        json["quiet"]
            .as_str()
            .is_some_and(|q| q.starts_with("no records since 2026-12-01 13:56 UTC")),
        "{json}"
    );
    assert!(
        json["current"]["volume"].as_u64().unwrap_or(0) > 100,
        "{json}"
    );
}
