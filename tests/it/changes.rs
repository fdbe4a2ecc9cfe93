//! What changed: run labels, the model versions providers report (automatic markers), and
//! the markers alerts and trend charts show.

use crate::support::{Project, code, json_runs, replay_suite, stderr, stdout};

#[test]
fn labels_round_trip_to_history_show_and_pages() {
    let p = Project::new();
    replay_suite(&p, "lab", 4, 0);
    let out = p.run(&[
        "run",
        "--label",
        "release=v1",
        "--format",
        "json",
        "suites/lab.yaml",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let first = json_runs(&out)[0]["run_id"]
        .as_str()
        .expect("run id")
        .to_owned();
    let out = p.run(&[
        "run",
        "--label",
        "release=v2<b>",
        "--label",
        "branch=main",
        "--format",
        "json",
        "suites/lab.yaml",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let second = json_runs(&out)[0]["run_id"]
        .as_str()
        .expect("run id")
        .to_owned();

    // `runs`: json carries the labels, text a labels column, --label filters.
    let out = p.run(&["runs", "--format", "json"]);
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(runs[0]["run_id"], second.as_str());
    assert_eq!(runs[0]["labels"]["release"], "v2<b>");
    assert_eq!(runs[0]["labels"]["branch"], "main");
    assert_eq!(runs[1]["labels"]["release"], "v1");
    let text = stdout(&p.run(&["runs"]));
    assert!(text.contains("labels"), "{text}");
    assert!(text.contains("branch=main, release=v2<b>"), "{text}");
    let out = p.run(&["runs", "--label", "release=v1", "--format", "json"]);
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let ids: Vec<&str> = runs
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["run_id"].as_str())
        .collect();
    assert_eq!(ids, [first.as_str()]);
    let out = p.run(&["runs", "--label", "release=v9"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("no runs with that label"));

    // `show`: text and json.
    let text = stdout(&p.run(&["show", &second]));
    assert!(
        text.contains("labels: branch=main, release=v2<b>"),
        "{text}"
    );
    let out = p.run(&["show", &second, "--format", "json"]);
    let head: serde_json::Value =
        serde_json::from_str(stdout(&out).lines().next().expect("a header line")).expect("json");
    assert_eq!(head["labels"]["release"], "v2<b>", "{head}");

    // Pages: the run page lists them (escaped), the trend page shows them on hover and
    // marks the change of labels.
    let run_page = std::fs::read_to_string(p.path().join(format!("reports/runs/{second}.html")))
        .expect("run page");
    assert!(
        run_page.contains("<code>release=v2&lt;b&gt;</code>"),
        "labels on the run page"
    );
    assert!(!run_page.contains("v2<b>"), "escaped");
    let trend = std::fs::read_to_string(p.path().join("reports/lab.html")).expect("trend page");
    assert!(
        trend.contains(&format!("({second}) [branch=main, release=v2&lt;b&gt;]")),
        "labels in the points' hover text"
    );
    assert!(
        trend.contains("run labels: branch=main, release=v2&lt;b&gt;"),
        "the change of labels is a marker"
    );
}

#[test]
fn bad_labels_exit_2_with_the_reason() {
    let p = Project::new();
    replay_suite(&p, "lab", 2, 0);
    for (args, why) in [
        (&["--label", "release"][..], "expected KEY=VALUE"),
        (&["--label", "rel ease=v1"][..], "a key is letters, digits"),
        (
            &["--label", "release="][..],
            "the value of `release` is empty",
        ),
        (&["--label", "a=1", "--label", "a=2"][..], "given twice"),
    ] {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        all.push("suites/lab.yaml");
        let out = p.run(&all);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(why), "{args:?}: {}", stderr(&out));
    }
    assert!(!p.db().exists(), "nothing ran, nothing stored");
    let out = p.run(&["runs", "--label", "=x"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
}
