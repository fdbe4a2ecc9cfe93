//! Runs in the store: concurrent processes, interruption, crashes.

use std::time::{Duration, Instant};

use evalwatch::model::RunStatus;
use evalwatch::store::Store;

use crate::support::{Project, code, json_runs, replay_suite, signal, stderr, stdout};

#[test]
fn two_processes_on_one_store_both_complete_with_nothing_lost() {
    let p = Project::new();
    replay_suite(&p, "one", 3000, 7);
    replay_suite(&p, "two", 3000, 11);
    let spawn = |suite: &str| {
        p.cmd()
            .args(["run", "--format", "json", &format!("suites/{suite}.yaml")])
            .timeout(Duration::from_secs(300))
            .output()
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| spawn("one"));
        let b = s.spawn(|| spawn("two"));
        (
            a.join().expect("thread").expect("run one"),
            b.join().expect("thread").expect("run two"),
        )
    });
    assert_eq!(code(&a), 0, "{}", stderr(&a));
    assert_eq!(code(&b), 0, "{}", stderr(&b));
    let store = Store::open(&p.db()).expect("open store");
    for (out, n_fail) in [(&a, 3000 / 7 + 1), (&b, 3000 / 11 + 1)] {
        let run = &json_runs(out)[0];
        let id = run["run_id"].as_str().expect("id");
        let mut seen = 0u64;
        let mut failed = 0u64;
        store
            .for_each_result(id, |r| {
                seen += 1;
                if r.status == evalwatch::model::CaseStatus::Failed {
                    failed += 1;
                }
                Ok(())
            })
            .expect("read results");
        assert_eq!(seen, 3000, "every result of run {id} stored");
        assert_eq!(failed, n_fail as u64);
        assert_eq!(
            store.run(id).expect("run").expect("exists").status,
            RunStatus::Complete
        );
    }
}

/// A suite whose provider takes `secs` per call, one at a time.
pub(crate) fn slow_suite(p: &Project, n: usize, secs: &str) {
    use std::fmt::Write as _;
    let mut cases = String::new();
    for i in 0..n {
        let _ = writeln!(cases, "  - {{id: c{i}, vars: {{q: q{i}}}, expected: Q{i}}}");
    }
    p.write(
        "suites/slow.yaml",
        &format!(
            "suite: slow\nproviders:\n  - id: x\n    type: exec\n    concurrency: 1\n    command: [sh, -c, 'sleep {secs}; tr a-z A-Z']\nprompt: \"{{{{ q }}}}\"\ncases:\n{cases}"
        ),
    );
}

/// Wait until the store holds at least `n` results of the only run; returns the run id.
/// `evalwatch run` in the background, its output discarded.
fn spawn_quiet_run(p: &Project) -> std::process::Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("evalwatch"))
        .current_dir(p.path())
        .args(["run"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn")
}

pub(crate) fn wait_for_results(p: &Project, n: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "no progress in the store");
        std::thread::sleep(Duration::from_millis(200));
        if !p.db().exists() {
            continue;
        }
        let Ok(store) = Store::open(&p.db()) else {
            continue;
        };
        let Ok(rows) = store.runs(Some("slow"), 1) else {
            continue;
        };
        let Some(row) = rows.first() else { continue };
        let mut count = 0;
        if store
            .for_each_result(&row.info.run_id, |_| {
                count += 1;
                Ok(())
            })
            .is_ok()
            && count >= n
        {
            return row.info.run_id.clone();
        }
    }
}

#[test]
fn ctrl_c_keeps_finished_results_and_marks_the_run_incomplete() {
    let p = Project::new();
    slow_suite(&p, 200, "0.05");
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("evalwatch"))
        .current_dir(p.path())
        .args(["run", "--format", "json"])
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let run_id = wait_for_results(&p, 3);
    signal(child.id(), "-INT");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = Store::open(&p.db()).expect("open");
    let info = store.run(&run_id).expect("query").expect("run kept");
    assert_eq!(info.status, RunStatus::Incomplete);
    let mut kept = 0u64;
    store
        .for_each_result(&run_id, |r| {
            assert_eq!(
                r.status,
                evalwatch::model::CaseStatus::Passed,
                "only finished results are kept"
            );
            kept += 1;
            Ok(())
        })
        .expect("results");
    assert!((3..200).contains(&kept), "kept {kept}");
    let json = json_runs(&out);
    assert_eq!(json[0]["status"], "incomplete");
}

/// A slow run of 200 cases, killed (SIGKILL) once it stored 3 results: its id.
fn killed_run(p: &Project) -> String {
    slow_suite(p, 200, "0.05");
    let mut child = spawn_quiet_run(p);
    let run_id = wait_for_results(p, 3);
    signal(child.id(), "-KILL");
    let _ = child.wait();
    run_id
}

#[test]
fn a_killed_run_is_marked_incomplete_when_the_store_is_next_opened() {
    let p = Project::new();
    let run_id = killed_run(&p);
    let out = p.run(&["runs", "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let row = rows
        .as_array()
        .expect("array")
        .iter()
        .find(|r| r["run_id"] == run_id.as_str())
        .expect("run listed");
    assert_eq!(row["status"], "incomplete");
}

/// The time a run's first page was last written.
fn page_written(p: &Project, run_id: &str) -> std::time::SystemTime {
    let page = p.path().join("reports/runs").join(format!("{run_id}.html"));
    std::fs::metadata(&page)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{}: {e}", page.display()))
}

/// Results stored for a run.
fn results_of(p: &Project, run_id: &str) -> u64 {
    let store = Store::open(&p.db()).expect("open");
    let mut n = 0;
    store
        .for_each_result(run_id, |_| {
            n += 1;
            Ok(())
        })
        .expect("results");
    n
}

/// A killed run has no finish time: its pages are written once, not on every refresh, and
/// again once a resume of it (killed too) stored more.
#[test]
fn a_killed_runs_pages_are_written_once_and_again_after_a_resume() {
    let p = Project::new();
    let run_id = killed_run(&p);
    let report = || {
        let out = p.run(&["report"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    };
    // Another refresh leaves the page as it is. File times are coarse: whatever a second
    // refresh wrote would be later than the wait.
    let refresh_keeps = |written| {
        std::thread::sleep(Duration::from_millis(50));
        report();
        assert_eq!(
            page_written(&p, &run_id),
            written,
            "written again by a refresh"
        );
    };
    report();
    let first = page_written(&p, &run_id);
    refresh_keeps(first);

    let before = results_of(&p, &run_id);
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("evalwatch"))
        .current_dir(p.path())
        .args(["run", "--resume", &run_id])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(120);
    while results_of(&p, &run_id) < before + 3 {
        assert!(Instant::now() < deadline, "the resume made no progress");
        std::thread::sleep(Duration::from_millis(100));
    }
    signal(child.id(), "-KILL");
    let _ = child.wait();
    report();
    let resumed = page_written(&p, &run_id);
    assert!(resumed > first, "the resume's results are on the page");
    refresh_keeps(resumed);
}

#[test]
fn resume_runs_only_what_is_missing_into_the_same_run() {
    let p = Project::new();
    slow_suite(&p, 40, "0.05");
    let child = spawn_quiet_run(&p);
    let run_id = wait_for_results(&p, 3);
    signal(child.id(), "-INT");
    let _ = child.wait_with_output();
    let store = Store::open(&p.db()).expect("open");
    let mut before = 0u64;
    store
        .for_each_result(&run_id, |_| {
            before += 1;
            Ok(())
        })
        .expect("results");
    assert!(before < 40, "interrupted early: {before}");
    drop(store);

    // The provider got faster; the run picks up where it stopped.
    slow_suite(&p, 40, "0");
    let out = p.run(&[
        "run",
        "--resume",
        &run_id[..run_id.len() - 1],
        "--format",
        "json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let run = &json_runs(&out)[0];
    assert_eq!(run["run_id"], run_id.as_str(), "same run");
    assert_eq!(run["status"], "complete");
    assert_eq!(
        run["providers"][0]["metrics"]["cases"], 40,
        "metrics cover the whole run"
    );
    assert_eq!(run["providers"][0]["metrics"]["passed"], 40);
    let mut ids: Vec<&str> = run["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter_map(|c| c["case_id"].as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 40, "every case exactly once");
    assert_eq!(run["cases"].as_array().map(Vec::len), Some(40));

    // Audit M2: the wall-clock of a resumed run is from its first start to its end (the
    // pause included), as `show` has it, and throughput is all its results over that.
    let wall = run["wall_secs"].as_f64().expect("wall_secs");
    let throughput = run["providers"][0]["metrics"]["throughput_per_s"]
        .as_f64()
        .expect("throughput");
    assert!(
        (throughput * wall - 40.0).abs() < 0.5,
        "{throughput} x {wall}"
    );
    let shown = |p: &Project| {
        let o = p.run(&["show", &run_id, "--format", "json"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let v = json_runs(&o).remove(0);
        (
            v["finished_at"].clone(),
            v["wall_secs"].clone(),
            v["providers"][0]["metrics"]["throughput_per_s"].clone(),
        )
    };
    let before = shown(&p);
    let shown_wall = before.1.as_f64().expect("wall_secs");
    assert!((shown_wall - wall).abs() < 0.01, "{shown_wall} vs {wall}");

    // Resuming a complete run is refused (exit 2) and changes nothing.
    let again = p.run(&["run", "--resume", &run_id, "--format", "json"]);
    assert_eq!(code(&again), 2, "{}", stderr(&again));
    assert!(
        stderr(&again).contains("it is complete") && stdout(&again).is_empty(),
        "{}",
        stderr(&again)
    );
    assert_eq!(shown(&p), before);
    let wrong = p.run(&["run", "--resume", "nope"]);
    assert_eq!(code(&wrong), 2);
}

/// `repeat: 3` on a replay whose answers differ per sample: one verdict per case by the
/// suite's `repeat_policy` (and a case's own), agreement, flaky cases, a gate on
/// `case_pass_rate`; `show` reads the same back from the store.
#[test]
fn repeated_samples_make_case_verdicts_by_policy() {
    use std::fmt::Write as _;
    let p = Project::new();
    // Per case, the answers of samples 0, 1, 2.
    let answers = [
        ("a", ["right", "right", "right"]),
        ("b", ["right", "wrong", "right"]),
        ("c", ["wrong", "wrong", "right"]),
        ("d", ["wrong", "right", "wrong"]),
    ];
    let mut rec = String::new();
    for (case, outs) in answers {
        for (sample, out) in outs.iter().enumerate() {
            let _ = writeln!(
                rec,
                "{{\"case_id\": \"{case}\", \"sample\": {sample}, \"output\": \"the answer is {out}\"}}"
            );
        }
    }
    p.write("suites/rep.jsonl", &rec);
    p.write(
        "suites/rep.yaml",
        "suite: rep\nproviders:\n  - id: rec\n    type: replay\n    file: rep.jsonl\nprompt: \"Q: {{ q }}\"\nrepeat: 3\nrepeat_policy: majority\ncases:\n  - {id: a, vars: {q: x}, expected: right}\n  - {id: b, vars: {q: x}, expected: right}\n  - {id: c, vars: {q: x}, expected: right, repeat_policy: any}\n  - {id: d, vars: {q: x}, expected: right}\ngates:\n  case_pass_rate: {min: 0.8}\n  agreement: {min: 0.7}\n",
    );
    let out = p.run(&["run", "--format", "json"]);
    assert_eq!(
        code(&out),
        1,
        "the case_pass_rate gate is breached\n{}",
        stderr(&out)
    );
    let run = &json_runs(&out)[0];
    assert_eq!(
        run["cases"].as_array().map(Vec::len),
        Some(12),
        "every sample stored"
    );
    assert_eq!(run["repeat_policy"], "majority");
    let verdicts: Vec<(&str, &str, u64, u64, bool, &str)> = run["case_verdicts"]
        .as_array()
        .expect("case_verdicts")
        .iter()
        .map(|v| {
            assert_eq!(v["provider"], "rec");
            (
                v["case_id"].as_str().unwrap_or_default(),
                v["verdict"].as_str().unwrap_or_default(),
                v["samples"].as_u64().unwrap_or_default(),
                v["passed"].as_u64().unwrap_or_default(),
                v["flaky"].as_bool().unwrap_or_default(),
                v["policy"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        vec![
            ("a", "passed", 3, 3, false, "majority"),
            ("b", "passed", 3, 2, true, "majority"),
            ("c", "passed", 3, 1, true, "any"),
            ("d", "failed", 3, 1, true, "majority"),
        ]
    );
    let agreement: Vec<f64> = run["case_verdicts"]
        .as_array()
        .expect("case_verdicts")
        .iter()
        .filter_map(|v| v["agreement"].as_f64())
        .collect();
    assert_eq!(agreement.len(), 4);
    assert!((agreement[0] - 1.0).abs() < 1e-9);
    for a in &agreement[1..] {
        assert!((a - 2.0 / 3.0).abs() < 1e-9, "{agreement:?}");
    }
    let m = &run["providers"][0]["metrics"];
    assert_eq!(m["flaky_cases"], serde_json::json!(["b", "c", "d"]));
    assert!((m["case_pass_rate"].as_f64().expect("case_pass_rate") - 0.75).abs() < 1e-9);
    assert!((m["agreement"].as_f64().expect("agreement") - 0.75).abs() < 1e-9);
    assert!((m["pass_rate"].as_f64().expect("pass_rate") - 7.0 / 12.0).abs() < 1e-9);
    let gates: Vec<(&str, bool)> = run["gates"]
        .as_array()
        .expect("gates")
        .iter()
        .map(|g| (g["metric"].as_str().unwrap_or_default(), g["ok"] == true))
        .collect();
    assert_eq!(gates, vec![("case_pass_rate", false), ("agreement", true)]);

    // `show` reads the verdicts and metrics back from the store.
    let run_id = run["run_id"].as_str().expect("run id");
    let shown = p.run(&["show", run_id, "--format", "json"]);
    assert_eq!(code(&shown), 0, "{}", stderr(&shown));
    let back = &json_runs(&shown)[0];
    assert_eq!(back["case_verdicts"], run["case_verdicts"]);
    assert_eq!(
        back["providers"][0]["metrics"]["case_pass_rate"],
        m["case_pass_rate"]
    );
    let text = p.run(&["show", run_id]);
    let text = crate::support::stdout(&text);
    assert!(
        text.contains("samples on rec: policy majority (1 with their own); case_pass_rate 75.0% (3 of 4 cases); agreement 75.0%"),
        "{text}"
    );
    assert!(
        text.contains("case verdicts on rec: d failed (1 of 3 passed)"),
        "{text}"
    );
    assert!(text.contains("flaky on rec: b, c, d"), "{text}");
}

/// Cases stream into the run while the whole suite is checked beside it. A problem the check
/// finds after the first calls went out still stops the run with exit 2, located, and what
/// the run stored is removed: history only holds runs of valid suites.
#[test]
fn a_problem_found_after_calls_began_stops_the_run_and_keeps_nothing() {
    let p = Project::new();
    let n = 3000;
    replay_suite(&p, "late", n, 0);
    let path = p.path().join("suites/cases/late.jsonl");
    let mut cases = std::fs::read_to_string(&path).expect("cases");
    cases.push_str("{\"id\": \"bad\", \"vars\": {\"q\": \"x\"}, \"expectd\": \"right\"}\n");
    std::fs::write(&path, cases).expect("write");
    let out = p.run(&["run"]);
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("late.jsonl:{}:1", n + 1)) && err.contains("expectd"),
        "the problem is located:\n{err}"
    );
    assert!(err.contains("nothing was run"), "{err}");
    // The first case was valid: the run began (the store exists) before the problem was met.
    let store = Store::open(&p.db()).expect("the run began");
    assert!(
        store.runs(None, 10).expect("runs").is_empty(),
        "no run of the invalid suite is kept"
    );
    drop(store);
    let pages: Vec<_> = std::fs::read_dir(p.path().join("reports/runs"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(pages.is_empty(), "no page of it either: {pages:?}");

    // The same suite fixed: the run row gets the hash and planned count of the whole suite,
    // the same as a whole load gives.
    replay_suite(&p, "late", n, 0);
    let out = p.run(&["run", "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let run_id = json_runs(&out)[0]["run_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let project = evalwatch::model::ProjectConfig::default();
    let (suites, diags) =
        evalwatch::suite::load_suites(&[p.path().join("suites/late.yaml")], &project);
    assert!(diags.is_empty(), "{diags}");
    let store = Store::open(&p.db()).expect("open");
    let info = store.run(&run_id).expect("read").expect("run");
    assert_eq!(info.suite_hash, suites[0].hash);
    assert_eq!(info.planned, n as u64);

    // Filters that select nothing: a warning, no run.
    let none = p.run(&["run", "--case", "nothing-*"]);
    assert_eq!(code(&none), 0, "{}", stderr(&none));
    assert!(
        stderr(&none).contains("no case matches the filters"),
        "{}",
        stderr(&none)
    );
    assert_eq!(store.runs(None, 10).expect("runs").len(), 1);
}
