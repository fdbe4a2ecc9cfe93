//! `runs` and `show`: history, prefixes, flips against the previous complete run.

use crate::support::{Project, code, json_runs, replay_suite, stderr, stdout};

#[test]
fn runs_lists_newest_first_and_show_reports_flips() {
    let p = Project::new();
    replay_suite(&p, "h", 6, 0);
    let first = p.run(&["run", "--format", "json"]);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    let first_id = json_runs(&first)[0]["run_id"]
        .as_str()
        .expect("id")
        .to_string();
    // The model regresses on c2 and recovers nothing else.
    let rec = p.path().join("suites/h.jsonl");
    let text = std::fs::read_to_string(&rec).expect("read").replace(
        "\"case_id\": \"c2\", \"output\": \"the answer is right\"",
        "\"case_id\": \"c2\", \"output\": \"no idea\"",
    );
    std::fs::write(&rec, text).expect("write");
    let second = p.run(&["run", "--format", "json"]);
    let second_id = json_runs(&second)[0]["run_id"]
        .as_str()
        .expect("id")
        .to_string();

    let out = p.run(&["runs", "--format", "json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let ids: Vec<&str> = rows
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["run_id"].as_str())
        .collect();
    assert_eq!(ids, [second_id.as_str(), first_id.as_str()]);

    let out = p.run(&["show", &second_id, "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(shown["baseline_run_id"], first_id.as_str());
    let flips = shown["flips"].as_array().expect("flips");
    assert_eq!(flips.len(), 1);
    assert_eq!(flips[0]["case_id"], "c2");
    assert_eq!(
        (flips[0]["from"].as_str(), flips[0]["to"].as_str()),
        (Some("passed"), Some("failed"))
    );
    assert_eq!(shown["cases"].as_array().map(Vec::len), Some(6));

    let out = p.run(&["show", &second_id]);
    let text = stdout(&out);
    assert!(text.contains("c2 [rec]: passed -> failed"), "{text}");
    assert!(text.contains("not passed (1)"), "{text}");

    let text = stdout(&p.run(&["runs"]));
    assert!(
        text.lines().count() >= 3 && text.contains(&first_id),
        "{text}"
    );
}

#[test]
fn show_accepts_a_unique_prefix_and_explains_unknown_ids() {
    let p = Project::new();
    replay_suite(&p, "h", 2, 0);
    let out = p.run(&["run", "--format", "json"]);
    let id = json_runs(&out)[0]["run_id"]
        .as_str()
        .expect("id")
        .to_string();
    let prefix = &id[..id.len() - 2];
    let out = p.run(&["show", prefix, "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(shown["run_id"], id.as_str());
    let out = p.run(&["show", "nope"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("evalwatch runs"), "{}", stderr(&out));
}

#[test]
fn history_without_a_store_says_how_to_get_one() {
    let p = Project::new();
    let out = p.run(&["runs"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("evalwatch run"), "{}", stderr(&out));
}
