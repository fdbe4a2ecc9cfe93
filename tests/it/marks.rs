//! `evalwatch mark`: change markers are stored once, listed, and bad input is exit 2.

use crate::support::{Project, code, stderr, stdout};

#[test]
fn markers_are_stored_once_listed_and_filtered() {
    let p = Project::new();
    p.write(
        "evalwatch.yaml",
        "traffic:\n  - id: bot\n    path: logs/a.jsonl\n    fields: {time: /ts}\n",
    );
    let out = p.run(&[
        "mark",
        "deploy",
        "v2.3.1: new retrieval index",
        "--at",
        "2026-12-01 14:30",
        "--feature",
        "summarise",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("marked deploy at 2026-12-01T14:30:00Z [feature summarise]: v2.3.1"),
        "{}",
        stdout(&out)
    );
    // The same marker again (a re-run deploy job) is kept once.
    let again = p.run(&[
        "mark",
        "deploy",
        "v2.3.1: new retrieval index",
        "--at",
        "2026-12-01T15:30:00+01:00",
        "--feature",
        "summarise",
    ]);
    assert_eq!(code(&again), 0, "{}", stderr(&again));
    assert!(
        stdout(&again).contains("already marked"),
        "{}",
        stdout(&again)
    );
    let out = p.run(&["mark", "model", "gpt-4o-2024-11-20", "--at", "2026-12-02"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = p.run(&["mark", "note", "holiday traffic", "--source", "bot"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let out = p.run(&["mark", "list", "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let marks: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let kinds: Vec<&str> = marks
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|m| m["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        ["deploy", "model", "note"],
        "oldest first, one deploy"
    );
    assert_eq!(marks[0]["feature"], "summarise");
    assert_eq!(marks[0]["origin"], "user");
    assert_eq!(marks[2]["source"], "bot");

    // A feature filter keeps that feature's markers and those for every feature.
    let out = p.run(&["mark", "list", "--feature", "chat", "--format", "json"]);
    let marks: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let texts: Vec<&str> = marks
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert_eq!(texts, ["gpt-4o-2024-11-20", "holiday traffic"]);

    // --since a duration leaves out the old ones; text output names each marker.
    let out = p.run(&["mark", "list", "--since", "1h"]);
    let text = stdout(&out);
    assert!(
        text.contains("note") && text.contains("holiday traffic [source bot]"),
        "{text}"
    );
    assert!(!text.contains("v2.3.1"), "{text}");
}

#[test]
fn bad_markers_are_refused_with_the_reason() {
    let p = Project::new();
    p.write(
        "evalwatch.yaml",
        "traffic:\n  - id: bot\n    path: logs/a.jsonl\n    fields: {time: /ts}\n",
    );
    let long = "a".repeat(501);
    for (args, want) in [
        (
            vec!["mark", "deploy", "v1", "--at", "yesterday"],
            "\"yesterday\" is not a time",
        ),
        (
            vec!["mark", "deploy", "v1", "--at", "2999-01-01"],
            "is in the future",
        ),
        (vec!["mark", "note", "  "], "the text is empty"),
        (
            vec!["mark", "note", "x", "--feature", ""],
            "--feature is empty",
        ),
        (
            vec!["mark", "list", "--since", "soon"],
            "neither a duration",
        ),
        (
            vec!["mark", "note", "line1\nline2\u{1b}[31mred"],
            "the text holds a control character",
        ),
        (
            vec!["mark", "note", long.as_str()],
            "the text has 501 characters, more than 500",
        ),
        (
            vec!["mark", "note", "x", "--source", "bott"],
            "no such source in evalwatch.yaml; did you mean `bot`?",
        ),
        (
            vec!["mark", "list", "--limit", "0"],
            "--limit 0 would list nothing",
        ),
    ] {
        let out = p.run(&args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    }
    // Nothing refused made a store, and `mark list` says there is none (not "no markers").
    let out = p.run(&["mark", "list"]);
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    assert!(
        stderr(&out).contains("mark list: no store at"),
        "{}",
        stderr(&out)
    );
    assert!(!p.db().exists());
}
