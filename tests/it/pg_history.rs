//! The suite-history commands on both backends (issue #22): the same scenario, run on SQLite
//! and on PostgreSQL (when the test server is up, see `crate::pgdb`), must print the same
//! outputs, write the same pages and exit with the same codes, once run ids, times and
//! durations are replaced by placeholders.

use std::collections::BTreeMap;
use std::process::Output;
use std::sync::LazyLock;

use regex::Regex;

use crate::pgdb::Backend;
use crate::support::{Project, code, replay_suite, signal, stderr, stdout};

/// One command of a scenario: its arguments, exit code, and stdout and stderr with the
/// volatile parts replaced.
type Step = (String, i32, String);

/// A scenario on one backend: its project, and what each command printed.
struct Session {
    backend: &'static str,
    p: Project,
    /// Whether latencies are measured (an `exec` provider), not recorded: then replaced too.
    timed: bool,
    steps: Vec<Step>,
}

impl Session {
    fn new(backend: &Backend, p: Project) -> Self {
        Self {
            backend: backend.name(),
            p: backend.project(p),
            timed: false,
            steps: Vec::new(),
        }
    }

    /// Run `args`, record the step, and return the raw output.
    fn run(&mut self, args: &[&str]) -> Output {
        let out = self.p.run(args);
        let _ = code(&out);
        self.steps.push((
            args.join(" "),
            out.status.code().unwrap_or(-1),
            format!("{}\n--- stderr\n{}", stdout(&out), stderr(&out)),
        ));
        out
    }

    /// Run `args`, asserting its exit code.
    fn expect(&mut self, args: &[&str], want: i32) -> Output {
        let out = self.run(args);
        assert_eq!(
            code(&out),
            want,
            "{args:?}:\n{}{}",
            stdout(&out),
            stderr(&out)
        );
        out
    }

    /// [`Session::expect`] for a command whose lines come in the order its calls finished
    /// (`run`'s list of what did not pass): recorded sorted.
    fn expect_unordered(&mut self, args: &[&str], want: i32) {
        self.expect(args, want);
        if let Some(step) = self.steps.last_mut() {
            let mut lines: Vec<&str> = step.2.lines().collect();
            lines.sort_unstable();
            step.2 = lines.join("\n");
        }
    }

    /// Every run in the store, oldest first: (suite, run id).
    fn runs(&self) -> Vec<(String, String)> {
        let out = self.p.run(&["runs", "--limit", "0", "--format", "json"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("runs json");
        let mut rows: Vec<(String, String, String)> = rows
            .as_array()
            .expect("an array")
            .iter()
            .map(|r| {
                let s = |k: &str| r[k].as_str().expect(k).to_owned();
                (s("started_at"), s("suite"), s("run_id"))
            })
            .collect();
        rows.sort();
        rows.into_iter().map(|(_, s, id)| (s, id)).collect()
    }

    /// The id of the `n`th run (from 1) of `suite`.
    fn run_id(&self, suite: &str, n: usize) -> String {
        self.runs()
            .into_iter()
            .filter(|(s, _)| s == suite)
            .nth(n - 1)
            .unwrap_or_else(|| panic!("no run {n} of {suite}"))
            .1
    }

    /// Placeholders for the run ids: `<suite#n>`, the `n`th run of the suite.
    fn names(&self) -> Vec<(String, String)> {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut names: Vec<(String, String)> = self
            .runs()
            .into_iter()
            .map(|(suite, id)| {
                let n = seen.entry(suite.clone()).or_default();
                *n += 1;
                (id, format!("<{suite}#{n}>"))
            })
            .collect();
        // Longer ids first, so that no id is replaced inside another.
        names.sort_by_key(|(id, _)| std::cmp::Reverse(id.len()));
        names
    }

    /// The steps with run ids, times and durations replaced.
    fn normalised(&self) -> Vec<Step> {
        static LATENCY: LazyLock<Regex> =
            LazyLock::new(|| Regex::new(r#"("latency_[a-z0-9_]*ms"): ?[0-9.e-]+"#).expect("regex"));
        let names = self.names();
        self.steps
            .iter()
            .map(|(args, c, text)| {
                let mut text = normalise(text, &names, &self.p);
                if self.timed {
                    text = LATENCY.replace_all(&text, "$1:<ms>").into_owned();
                }
                (normalise(args, &names, &self.p), *c, text)
            })
            .collect()
    }

    /// A page under reports/, normalised; its charts' geometry too (where a point sits
    /// follows when the run started), and the clock times of their axes and where those
    /// are anchored.
    fn page(&self, rel: &str) -> String {
        static GEOMETRY: LazyLock<Vec<(Regex, &str)>> = LazyLock::new(|| {
            [
                (
                    r#"\b(x|y|x1|x2|y1|y2|cx|cy|width|height)="-?[0-9.]+""#,
                    "$1=\"<n>\"",
                ),
                (r#"\b(d|points)="[^"]*""#, "$1=\"<path>\""),
                // An axis across midnight names the day too (`12-07 00:00`): one backend's two
                // runs may straddle it and the other's not.
                (r">(\d{2}-\d{2} )?\d{1,2}:\d{2}<", "><hh:mm><"),
                // A time label near the axis's end is anchored at its edge.
                (
                    r#"text-anchor="(start|middle|end)""#,
                    "text-anchor=\"<anchor>\"",
                ),
            ]
            .into_iter()
            .map(|(re, to)| (Regex::new(re).expect("regex"), to))
            .collect()
        });
        let path = self.p.path().join("reports").join(rel);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut text = normalise(&text, &self.names(), &self.p);
        for (re, to) in GEOMETRY.iter() {
            text = re.replace_all(&text, *to).into_owned();
        }
        text
    }
}

/// `text` with run ids named, and times, durations, rates and the project folder replaced.
fn normalise(text: &str, names: &[(String, String)], p: &Project) -> String {
    static VOLATILE: LazyLock<Vec<(Regex, &str)>> = LazyLock::new(|| {
        [
            // RFC 3339 and the tables' "2026-12-06 13:06:47".
            (
                r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?",
                "<time>",
            ),
            // A run's wall time ("complete  2.62s", `"wall_secs":1.68`, junit's time="1.681"
            // of a suite) and throughput.
            (r"\b\d+(\.\d+)?s\b", "<secs>"),
            (r#"("wall_secs"|"throughput_per_s"): ?[0-9.e-]+"#, "$1:<n>"),
            (r#"(<testsuite [^\n]*?)time="[0-9.]+""#, "${1}time=\"<n>\""),
            (
                r"(evalwatch_[a-z_]*seconds(\{[^}]*\})?) [0-9.e+-]+",
                "$1 <n>",
            ),
        ]
        .into_iter()
        .map(|(re, to)| (Regex::new(re).expect("regex"), to))
        .collect()
    });
    let mut out = text.to_owned();
    for (id, name) in names {
        out = out.replace(id.as_str(), name);
    }
    out = out.replace(&p.path().display().to_string(), "<project>");
    for (re, to) in VOLATILE.iter() {
        out = re.replace_all(&out, *to).into_owned();
    }
    out
}

/// The scenario on each backend; the first (SQLite) is the reference the others must match.
fn on_both_backends(test: &str, scenario: impl Fn(&Backend) -> Session) -> Vec<Session> {
    let sessions: Vec<Session> = Backend::all(test).iter().map(&scenario).collect();
    let reference = sessions[0].normalised();
    for s in &sessions[1..] {
        let name = s.backend;
        let got = s.normalised();
        assert_eq!(
            got.len(),
            reference.len(),
            "{name}: another number of steps"
        );
        for (want, got) in reference.iter().zip(&got) {
            assert_eq!(
                want, got,
                "{name} differs from sqlite at `evalwatch {}`",
                want.0
            );
        }
    }
    sessions
}

/// The shipped examples and a replay suite with failures (5 of 20), run twice (the first
/// labelled), then every reading command; the pages of `report` too.
#[test]
fn pg_history_commands_print_the_same_on_both_backends() {
    let sessions = on_both_backends("history", |backend| {
        let mut s = Session::new(backend, Project::examples());
        replay_suite(&s.p, "flaky", 20, 4);
        s.expect_unordered(&["run", "--label", "env=ci", "--label", "team=search"], 0);
        s.expect_unordered(&["run"], 0);
        let (f1, f2) = (s.run_id("flaky", 1), s.run_id("flaky", 2));

        s.expect(&["runs"], 0);
        s.expect(&["runs", "--format", "json"], 0);
        s.expect(&["runs", "--suite", "flaky", "--limit", "1"], 0);
        s.expect(&["runs", "--label", "env=ci", "--format", "json"], 0);
        s.expect(&["runs", "--label", "env=prod"], 0);
        s.expect(&["runs", "--label", "nonsense"], 2);
        s.expect(&["show", &f2], 0);
        s.expect(&["show", &f2, "--format", "json"], 0);
        s.expect(&["show", &f1, "--failures", "2"], 0);
        s.expect(&["show", "nope"], 2);
        s.expect(&["compare", &f1, &f2], 0);
        s.expect(&["compare", &f1, &f2, "--format", "json"], 0);
        s.expect(&["compare", &f1, "nope"], 2);
        for format in ["json", "csv", "junit", "prometheus"] {
            s.expect(&["export", "--format", format], 0);
        }
        s.expect(
            &[
                "export", "--format", "csv", "--suite", "flaky", "--since", "all",
            ],
            0,
        );
        s.expect(&["export", "--format", "json", "--suite", "nope"], 2);
        s.expect(&["baseline", "pin", &f1], 0);
        s.expect(&["baseline", "pin", "nope"], 2);
        s.expect(&["show", &f2], 0);
        s.expect(&["mark", "deploy", "v1.2.3"], 0);
        s.expect(&["mark", "note", "a note", "--feature", "billing"], 0);
        s.expect(&["mark", "list"], 0);
        s.expect(&["report", "--since", "all", "--run", &f1], 0);
        s
    });

    // What the scenario shows, on SQLite (the others printed the same).
    let s = &sessions[0];
    let step = |args: &str| -> &str {
        &s.steps
            .iter()
            .find(|(a, _, _)| a.starts_with(args))
            .unwrap_or_else(|| panic!("no step {args}"))
            .2
    };
    let runs: serde_json::Value = serde_json::from_str(
        step("runs --format json")
            .split("\n--- stderr")
            .next()
            .unwrap_or(""),
    )
    .expect("json");
    assert_eq!(runs.as_array().map(Vec::len), Some(8), "4 suites run twice");
    let labelled = step("runs --label env=ci");
    assert_eq!(labelled.matches("\"run_id\"").count(), 4, "{labelled}");
    assert!(labelled.contains("\"team\": \"search\""), "{labelled}");
    assert!(!step("runs --label env=prod").contains("flaky"));
    let show = step(&format!("show {}", s.run_id("flaky", 2)));
    assert!(show.contains("rec ") && show.contains("75.0%"), "{show}");
    let compare = step("compare");
    assert!(compare.contains("pass->fail 0, fail->pass 0"), "{compare}");
    let csv = step("export --format csv --suite flaky");
    assert_eq!(csv.matches(",flaky,").count(), 40, "{csv}");
    assert_eq!(csv.matches(",failed,").count(), 10, "{csv}");
    assert!(step("export --format prometheus").contains("evalwatch_pass_ratio{suite=\"flaky\""));
    assert!(step("mark list").contains("deploy v1.2.3"));

    // The pages: the same files, the same text.
    let files = pages(s);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"index.html"), "{names:?}");
    assert!(names.contains(&"runs/<flaky#1>.html"), "{names:?}");
    assert!(s.page("index.html").contains("flaky"));
    for other in &sessions[1..] {
        let theirs = pages(other);
        let their_names: Vec<&str> = theirs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(their_names, names, "{}: other pages", other.backend);
        for ((name, mine), (_, their)) in files.iter().zip(&theirs) {
            assert_eq!(
                s.page(mine),
                other.page(their),
                "{}: {name} differs from sqlite",
                other.backend
            );
        }
    }
}

/// The files under reports/: (normalised path, path), sorted.
fn pages(s: &Session) -> Vec<(String, String)> {
    let root = s.p.path().join("reports");
    let names = s.names();
    let mut out = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("read reports") {
            let path = e.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let rel = path
                    .strip_prefix(&root)
                    .expect("under reports")
                    .display()
                    .to_string();
                out.push((normalise(&rel, &names, &s.p), rel));
            }
        }
    }
    out.sort();
    out
}

/// `evalwatch ARGS` in the background on the project's store, its output piped.
fn spawn(p: &Project, args: &[&str]) -> std::process::Child {
    p.std_cmd()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn evalwatch")
}

/// A suite of six cases answered one at a time by a command; the fourth stalls (after
/// touching `started`) until the file `go` exists.
fn stalling_suite(p: &Project) {
    use std::fmt::Write as _;
    let dir = p.path().display().to_string();
    let mut cases = String::new();
    for i in 0..6 {
        let _ = writeln!(cases, "  - {{id: c{i}, vars: {{q: q{i}}}, expected: Q{i}}}");
    }
    p.write(
        "suites/stall.yaml",
        &format!(
            "suite: stall\nproviders:\n  - id: x\n    type: exec\n    concurrency: 1\n    command: [sh, -c, 'if [ \"$EVALWATCH_CASE_ID\" = c3 ] && [ ! -f {dir}/go ]; then touch {dir}/started; exec sleep 600; fi; tr a-z A-Z']\nprompt: \"{{{{ q }}}}\"\ncases:\n{cases}"
        ),
    );
}

/// A run interrupted (SIGINT) while its fourth case is in flight keeps the three before it,
/// is listed incomplete, and `run --resume` completes it with the three after: the same on
/// both backends.
#[test]
fn pg_history_resume_completes_an_interrupted_run_on_both_backends() {
    let sessions = on_both_backends("resume", |backend| {
        let mut s = Session::new(backend, Project::new());
        s.timed = true;
        stalling_suite(&s.p);
        let mut child = spawn(&s.p, &["run", "suites/stall.yaml"]);
        // No time limit: the stalled case waits for us, and a run that ends early fails.
        // Interrupted once the fourth case is in flight and the run knows its whole plan
        // (the suite is checked beside the first calls).
        let planned = |s: &Session| -> Option<u64> {
            let out = s.p.run(&["runs", "--format", "json"]);
            let rows: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            rows[0]["planned"].as_u64()
        };
        while !s.p.path().join("started").exists() || planned(&s) != Some(6) {
            if let Some(status) = child.try_wait().expect("wait") {
                let out = child.wait_with_output().expect("output");
                panic!(
                    "the run ended ({status}) before its fourth case: {}",
                    stderr(&out)
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        signal(child.id(), "-INT");
        let out = child.wait_with_output().expect("wait");
        assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
        let id = s.run_id("stall", 1);
        s.expect(&["runs", "--format", "json"], 0);
        s.expect(&["show", &id, "--format", "json"], 0);
        std::fs::write(s.p.path().join("go"), "").expect("write go");
        s.expect(&["run", "--resume", &id, "--format", "json"], 0);
        s.expect(&["runs", "--format", "json"], 0);
        s.expect(&["show", &id, "--format", "json"], 0);
        s.expect(&["run", "--resume", "nope"], 2);
        s
    });
    let s = &sessions[0];
    let text = |i: usize| s.steps[i].2.split("\n--- stderr").next().unwrap_or("");
    let status = |i: usize| -> String {
        let rows: serde_json::Value = serde_json::from_str(text(i)).expect("runs json");
        rows[0]["status"].as_str().expect("status").to_owned()
    };
    assert_eq!(status(0), "incomplete");
    let shown: serde_json::Value = serde_json::from_str(text(1)).expect("show json");
    assert_eq!(shown["status"], "incomplete");
    assert_eq!(shown["planned"], 6);
    assert_eq!(
        shown["cases"].as_array().map(Vec::len),
        Some(3),
        "c0..c2 kept"
    );
    assert_eq!(status(3), "complete");
    let run: serde_json::Value = serde_json::from_str(text(4)).expect("show json");
    let cases: Vec<&str> = run["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter_map(|c| c["case_id"].as_str())
        .collect();
    assert_eq!(
        cases,
        ["c0", "c1", "c2", "c3", "c4", "c5"],
        "each case once"
    );
    assert_eq!(run["providers"][0]["metrics"]["passed"], 6);
}
