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
