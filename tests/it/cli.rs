//! The command line as a new user meets it: bad input, gates, formats, exit codes.

use crate::support::{Project, code, json_runs, replay_suite, stderr, stdout};

const GOOD: &str = "suite: s\nproviders:\n  - id: e\n    type: echo\nprompt: \"Say {{ word }}\"\ncases:\n  - id: a\n    vars: {word: hello}\n    expected: hello\n";

#[test]
fn validate_reports_every_error_with_its_location() {
    let p = Project::new();
    p.write(
        "suites/bad.yaml",
        "suite: bad\nproviders: [nope]\nprompt: \"{{ q }}\"\ncases:\n  - id: a\n    vars: {q: x}\n    expected: x\n    asert: []\n  - id: a\n    vars: {q: y}\n    expected: y\n    assert:\n      - type: regex\n        value: \"(unclosed\"\n      - type: icontain\n",
    );
    let out = p.run(&["validate"]);
    assert_eq!(code(&out), 2);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("bad.yaml:")).collect();
    assert!(
        lines.len() >= 5,
        "expected every error at once, got:\n{text}"
    );
    for needle in ["nope", "asert", "assert", "duplicate", "regex", "icontains"] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }
    // Each line is file:line:col: message.
    let re = regex::Regex::new(r"bad\.yaml:\d+:\d+: ").expect("regex");
    assert!(lines.iter().all(|l| re.is_match(l)), "{text}");
    assert!(
        text.contains("bad.yaml:8:"),
        "the misspelt `asert` is on line 8:\n{text}"
    );
}

#[test]
fn bad_input_gets_a_located_error_never_a_panic() {
    let cases: &[(&str, &[u8], &str)] = &[
        ("tabs", b"suite: t\nproviders:\n\t- echo\n", "t.yaml:3"),
        ("wrong type", b"suite: t\nproviders:\n  - id: e\n    type: echo\nprompt: x\nrepeat: many\ncases:\n  - {id: a, expected: x}\n", "t.yaml:6"),
        ("missing include", b"suite: t\nproviders:\n  - id: e\n    type: echo\nprompt: x\ncases:\n  - include: cases/none.jsonl\n", "none.jsonl"),
        ("empty file", b"", "empty"),
        ("invalid utf-8", b"suite: t\nprompt: \"\xff\xfe\"\n", "t.yaml"),
        ("garbage", b"\x00\x01{{{[[[:::", "t.yaml"),
    ];
    for (what, bytes, needle) in cases {
        let p = Project::new();
        std::fs::create_dir_all(p.path().join("suites")).expect("mkdir");
        std::fs::write(p.path().join("suites/t.yaml"), bytes).expect("write");
        for cmd in [&["validate"][..], &["run"][..]] {
            let out = p.run(cmd);
            assert_eq!(
                code(&out),
                2,
                "{what} via {cmd:?}: {}{}",
                stdout(&out),
                stderr(&out)
            );
            let all = format!("{}{}", stdout(&out), stderr(&out));
            assert!(
                all.contains(needle),
                "{what}: expected `{needle}` in:\n{all}"
            );
        }
        assert!(
            !p.db().exists(),
            "{what}: nothing may be stored for an invalid suite"
        );
    }
}

#[test]
fn a_breached_gate_exits_1_and_says_so() {
    let p = Project::new();
    replay_suite(&p, "g", 10, 2);
    let suite = p.path().join("suites/g.yaml");
    let mut text = std::fs::read_to_string(&suite).expect("read");
    text.push_str("gates:\n  pass_rate: {min: 0.9}\n");
    std::fs::write(&suite, text).expect("write");
    let out = p.run(&["run", "--format", "json"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let run = &json_runs(&out)[0];
    assert_eq!(run["providers"][0]["metrics"]["pass_rate"], 0.5);
    assert_eq!(run["gates"][0]["metric"], "pass_rate");
    assert_eq!(run["gates"][0]["ok"], false);
    assert_eq!(run["gates"][0]["value"], 0.5);
}

#[test]
fn errors_over_the_budget_exit_3_and_mark_the_run_failed() {
    let p = Project::new();
    replay_suite(&p, "b", 4, 0);
    // Remove three recordings: those cases become error outcomes.
    let rec = p.path().join("suites/b.jsonl");
    let first = std::fs::read_to_string(&rec)
        .expect("read")
        .lines()
        .next()
        .map(str::to_string)
        .expect("a line");
    let kept = format!("{first}\n");
    std::fs::write(&rec, kept).expect("write");
    let out = p.run(&["run", "--format", "json"]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let run = &json_runs(&out)[0];
    assert_eq!(run["status"], "failed");
    let m = &run["providers"][0]["metrics"];
    assert_eq!(m["errors"], 3);
    assert_eq!(m["error_rate"], 0.75);
    assert_eq!(m["errors_by_kind"]["missing"], 3);
    let err = run["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| c["status"] == "error")
        .expect("an error");
    assert!(
        err["error"]
            .as_str()
            .unwrap_or_default()
            .contains("no recording"),
        "{err}"
    );
}

#[test]
fn dry_run_renders_every_prompt_and_stores_nothing() {
    let p = Project::new();
    p.write("suites/s.yaml", GOOD);
    let out = p.run(&["run", "--dry-run"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("Say hello"), "{}", stdout(&out));
    assert!(!p.db().exists());
}

/// Audit suites L2 (C6): `--dry-run --format json` prints the plan as JSON, one object per
/// suite (to `--out` when given, the text plan then on stdout); JUnit has no form for a plan.
#[test]
fn dry_run_prints_a_json_plan() {
    let p = Project::new();
    p.write(
        "suites/s.yaml",
        "suite: s\nproviders: [{id: e, type: echo}, {id: f, type: echo}]\nprompt: \"Say {{ word }}\"\nrepeat: 2\ncases:\n  - {id: a, vars: {word: hello}, expected: hello}\n  - {id: b, vars: {word: bye}, expected: bye}\n",
    );
    let out = p.run(&["run", "--dry-run", "--format", "json", "--provider", "f"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let plan: serde_json::Value = serde_json::from_str(text.trim()).expect(&text);
    assert_eq!(plan["suite"], "s", "{plan}");
    assert_eq!(plan["dry_run"], true, "{plan}");
    assert_eq!(plan["cases"], 2, "{plan}");
    assert_eq!(plan["providers"], serde_json::json!(["f"]), "{plan}");
    let jobs = plan["jobs"].as_array().expect("jobs");
    assert_eq!(jobs.len(), 4, "{plan}");
    assert_eq!(
        jobs[0],
        serde_json::json!({"case_id": "a", "provider": "f", "sample": 0})
    );
    assert_eq!(plan["first_prompt"]["prompt"], "Say hello", "{plan}");
    assert!(!p.db().exists());

    let out = p.run(&["run", "--dry-run", "--format", "json", "--out", "plan.json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("every prompt rendered"),
        "{}",
        stdout(&out)
    );
    let written = std::fs::read_to_string(p.path().join("plan.json")).expect("plan.json");
    let plan: serde_json::Value = serde_json::from_str(written.trim()).expect(&written);
    assert_eq!(plan["jobs"].as_array().map(Vec::len), Some(8), "{plan}");

    let out = p.run(&["run", "--dry-run", "--format", "junit"]);
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains("a dry run prints its plan as text or json"),
        "{}",
        stderr(&out)
    );
    let out = p.run(&["run", "--dry-run", "--out", "plan.txt"]);
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    assert!(!p.path().join("plan.txt").exists());
}

#[test]
fn echo_exec_and_filters() {
    let p = Project::new();
    p.write(
        "suites/s.yaml",
        "suite: s\nproviders:\n  - id: e\n    type: echo\n  - id: x\n    type: exec\n    command: [sh, -c, 'tr a-z A-Z']\nprompt: \"say {{ word }}\"\ncases:\n  - {id: a-1, tags: [t1], vars: {word: hello}, expected: hello}\n  - {id: a-2, tags: [t2], vars: {word: bye}, expected: bye}\n  - {id: b-1, tags: [t1], vars: {word: moon}, expected: moon}\n",
    );
    let out = p.run(&["run", "--format", "json", "--case", "a-*", "--tag", "t1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let run = &json_runs(&out)[0];
    let cases = run["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 2, "one case on two providers: {run}");
    let x = cases
        .iter()
        .find(|c| c["provider"] == "x")
        .expect("exec result");
    assert_eq!(
        x["output"], "SAY HELLO",
        "the prompt reached the command on stdin"
    );
    assert_eq!(
        x["status"], "passed",
        "default contains rule is case-insensitive"
    );
    let out = p.run(&[
        "run",
        "--format",
        "json",
        "--provider",
        "e",
        "--repeat",
        "3",
    ]);
    let run = &json_runs(&out)[0];
    assert_eq!(run["cases"].as_array().map(Vec::len), Some(9));
    let out = p.run(&["run", "--provider", "ee"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("did you mean `e`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn exec_nonzero_exit_is_an_error_outcome() {
    let p = Project::new();
    p.write(
        "suites/s.yaml",
        "suite: s\nproviders:\n  - id: x\n    type: exec\n    command: [sh, -c, 'echo boom >&2; exit 7']\nprompt: hi\ncases:\n  - {id: a, expected: x}\n  - {id: b, expected: y}\n",
    );
    let out = p.run(&["run", "--format", "json"]);
    assert_eq!(code(&out), 3, "every result errored: {}", stderr(&out));
    let run = &json_runs(&out)[0];
    let c = &run["cases"][0];
    assert_eq!(c["status"], "error");
    assert_eq!(c["error_kind"], "exec");
    let msg = c["error"].as_str().unwrap_or_default();
    assert!(msg.contains("boom") && msg.contains('7'), "{msg}");
}

#[test]
fn junit_and_out_file() {
    let p = Project::new();
    replay_suite(&p, "j", 5, 5);
    let out = p.run(&["run", "--format", "junit", "--out", "report.xml"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let xml = std::fs::read_to_string(p.path().join("report.xml")).expect("junit written");
    assert!(xml.contains("<testsuite name=\"j\""), "{xml}");
    assert!(xml.contains("tests=\"5\" failures=\"1\""), "{xml}");
    assert_eq!(xml.matches("<testcase ").count(), 5);
    assert_eq!(xml.matches("<failure ").count(), 1);
    assert!(
        stdout(&out).contains("pass_rate"),
        "text summary still printed: {}",
        stdout(&out)
    );
}

/// Audit M5: an `--out` file that cannot be created is a usage error found before anything
/// runs (exit 2, no run stored), not an exit 3 after the run that hides its gates.
#[test]
fn an_out_file_that_cannot_be_created_is_refused_before_the_run() {
    let p = Project::new();
    replay_suite(&p, "j", 5, 5);
    for (path, why) in [
        ("no/such/dir/x.json", "No such file"),
        (".", "is a directory"),
    ] {
        let out = p.run(&["run", "--format", "json", "-q", "--out", path]);
        assert_eq!(code(&out), 2, "{path}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("--out {path}"))
                && err.contains(why)
                && err.contains("nothing was run"),
            "{path}: {err}"
        );
        assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    }
    let runs = p.run(&["runs"]);
    assert!(
        stdout(&runs).contains("no runs yet") || !p.db().exists(),
        "{}",
        stdout(&runs)
    );
    // A file that exists is kept as it is until the run's output replaces it.
    p.write("keep.json", "old");
    let out = p.run(&["run", "--format", "json", "-q", "--out", "keep.json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let written = std::fs::read_to_string(p.path().join("keep.json")).unwrap();
    assert!(written.starts_with('{'), "{written}");
}

#[test]
fn validate_catches_what_only_running_would_show() {
    let p = Project::new();
    p.write(
        "suites/t.yaml",
        "suite: t\nproviders: [{id: e, type: echo}]\nprompt: \"{{ user.nmae }}\"\ncases:\n  - id: a\n    vars: {user: {name: x}}\n    expected: x\n    assert:\n      - {type: json-path, path: \"$..a\", value: 1}\n",
    );
    let out = p.run(&["validate"]);
    assert_eq!(code(&out), 2);
    let text = stdout(&out);
    assert!(
        text.contains("suites/t.yaml:9:9: assertion of case `a`: unsupported JSON path"),
        "{text}"
    );
    assert!(
        text.contains("suites/t.yaml:5:5: case `a` does not render"),
        "{text}"
    );
    assert!(text.contains("user.nmae"), "{text}");
    // `run` refuses the unbuildable assertion before storing anything.
    let out = p.run(&["run"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("suites/t.yaml:9:9"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn validate_checks_cron_fields_and_time_zones() {
    let p = Project::new();
    let suite = |schedule: &str, tz: &str| {
        format!(
            "suite: t\nschedule: \"{schedule}\"\ntimezone: {tz}\nproviders: [{{id: e, type: echo}}]\nprompt: \"hi\"\ncases:\n  - {{id: a, expected: hi}}\n"
        )
    };
    p.write("suites/t.yaml", &suite("0 25 * * *", "UTC"));
    let out = p.run(&["validate"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("suites/t.yaml:2:11: hour 25 is out of range 0-23"),
        "{text}"
    );

    p.write("suites/t.yaml", &suite("0 6 * * *", "Mars/Olympus"));
    let out = p.run(&["validate"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stdout(&out).contains("Mars/Olympus"), "{}", stdout(&out));

    p.write("suites/t.yaml", &suite("0 6 * * *", "Europe/Berlin"));
    let out = p.run(&["validate"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
}

/// Audit D3: `--db` serves the traffic commands too (docs/store.md), and its help says so.
#[test]
fn the_db_flag_help_says_it_serves_every_command() {
    let p = Project::new();
    for args in [
        vec!["--help"],
        vec!["traffic", "--help"],
        vec!["ingest", "--help"],
    ] {
        let out = p.run(&args);
        assert_eq!(code(&out), 0, "{args:?}");
        let help = stdout(&out)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            !help.contains("not for the traffic commands"),
            "{args:?}: {help}"
        );
        assert!(
            help.contains("The store of every command, traffic included"),
            "{args:?}: {help}"
        );
    }
}
