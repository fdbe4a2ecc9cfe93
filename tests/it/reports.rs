//! `report`, `compare` and `export` against a real store; the pages rendered in headless
//! Chromium (no console error, no network request, charts on screen at desktop and phone
//! widths).

use std::path::Path;
use std::process::Command;

use crate::support::{Project, code, json_runs, replay_suite, stderr, stdout};

/// Two runs of a suite where c2 regresses and one output carries markup.
fn history() -> (Project, String, String) {
    let p = Project::new();
    replay_suite(&p, "h", 6, 0);
    let rec = p.path().join("suites/h.jsonl");
    let text = std::fs::read_to_string(&rec).expect("read").replace(
        "\"case_id\": \"c1\", \"output\": \"the answer is right\"",
        "\"case_id\": \"c1\", \"output\": \"the answer is right <script>alert(1)</script>\"",
    );
    std::fs::write(&rec, text).expect("write");
    let first = p.run(&["run", "--format", "json"]);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    let text = std::fs::read_to_string(&rec).expect("read").replace(
        "\"case_id\": \"c2\", \"output\": \"the answer is right\"",
        "\"case_id\": \"c2\", \"output\": \"no idea\"",
    );
    std::fs::write(&rec, text).expect("write");
    let second = p.run(&["run", "--format", "json"]);
    let id = |o: &std::process::Output| json_runs(o)[0]["run_id"].as_str().expect("id").to_string();
    (p, id(&first), id(&second))
}

#[test]
fn report_writes_escaped_self_contained_pages() {
    let (p, first, second) = history();
    let out = p.run(&["report", "--since", "7d"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let dir = p.path().join("reports");
    let index = std::fs::read_to_string(dir.join("index.html")).expect("index");
    assert!(index.contains("href=\"h.html\""), "{index}");
    assert!(index.contains("<svg class=\"spark\""));
    let suite = std::fs::read_to_string(dir.join("h.html")).expect("suite page");
    assert!(suite.contains("Pass rate · rec"));
    assert!(suite.contains("<title>"), "hover values");
    // The heat map lists the flipped case.
    assert!(suite.contains("<code>c2</code>"), "{suite}");
    let run = std::fs::read_to_string(dir.join(format!("runs/{second}.html"))).expect("run page");
    assert!(run.contains("flip: passed -&gt; failed"), "{run}");
    assert!(
        run.contains(&format!("<code>{first}</code>")),
        "baseline named"
    );
    // Expected answers come from the suite files.
    assert!(run.contains("<pre>right</pre>"));
    for page in [&index, &suite, &run] {
        assert!(
            !page.contains("<script"),
            "no script, and model output escaped"
        );
        let bare = page.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        assert!(
            !bare.contains("http://") && !bare.contains("https://"),
            "no external link"
        );
        assert!(!page.contains("src="), "no external resource");
    }
    assert!(
        run.contains("&lt;script&gt;alert(1)&lt;"),
        "output shown escaped"
    );

    let bad = p.run(&["report", "--since", "soon"]);
    assert_eq!(code(&bad), 2, "{}", stderr(&bad));
    // Too short a window says how long one must be.
    let bad = p.run(&["report", "--since", "30s"]);
    assert_eq!(code(&bad), 2, "{}", stderr(&bad));
    assert!(
        stderr(&bad).contains("at least a minute"),
        "{}",
        stderr(&bad)
    );
}

/// Audit suites L2 (C8): windows holding the same runs show their charts once, in the window
/// the page opens on (30d by default); the others say which window holds them.
#[test]
fn windows_with_the_same_runs_draw_their_charts_once() {
    let (p, _, _) = history();
    for (since, holder) in [(None, "30d"), (Some("7d"), "7d")] {
        let mut args = vec!["report"];
        args.extend(since.iter().flat_map(|s| ["--since", *s]));
        let out = p.run(&args);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let suite = std::fs::read_to_string(p.path().join("reports/h.html")).expect("suite page");
        assert_eq!(
            suite.matches("<h3>rec</h3><div class=\"grid\">").count(),
            1,
            "{since:?}: the charts once:\n{suite}"
        );
        let note = format!("The same runs as the {holder} window.");
        assert_eq!(suite.matches(&note).count(), 4, "{since:?}: {suite}");
    }
}

#[test]
fn compare_reports_flips_and_significance() {
    let (p, first, second) = history();
    let out = p.run(&["compare", &first, &second, "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["paired"], 6);
    assert_eq!(v["pass_to_fail"][0]["case_id"], "c2");
    assert_eq!(v["fail_to_pass"].as_array().map(Vec::len), Some(0));
    assert!((v["mcnemar_p"].as_f64().expect("p") - 1.0).abs() < 1e-9);
    assert_eq!(v["significant"], false);
    let text = stdout(&p.run(&["compare", &first, &second]));
    assert!(text.contains("pass->fail 1"), "{text}");
    assert!(text.contains("c2 [rec]"), "{text}");
    let missing = p.run(&["compare", &first, "nope"]);
    assert_eq!(code(&missing), 2);
}

#[test]
fn export_writes_every_format() {
    let (p, _first, second) = history();
    let prom = stdout(&p.run(&["export", "--format", "prometheus"]));
    assert!(prom.contains("# TYPE evalwatch_pass_ratio gauge"), "{prom}");
    assert!(
        prom.contains("evalwatch_pass_ratio{suite=\"h\",provider=\"rec\"} 0.8333"),
        "{prom}"
    );
    assert!(
        prom.contains(&format!(
            "evalwatch_run_info{{suite=\"h\",provider=\"rec\",run_id=\"{second}\",status=\"complete\"}} 1"
        )),
        "{prom}"
    );
    let json = p.run(&["export", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json export");
    let runs = v["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1]["results"].as_array().map(Vec::len), Some(6));
    let out = p.path().join("x.csv");
    let o = p.run(&[
        "export", "--format", "csv", "--out", "x.csv", "--suite", "h",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let csv = std::fs::read_to_string(out).expect("csv");
    assert_eq!(csv.lines().count(), 1 + 12, "{csv}");
    assert!(csv.starts_with("run_id,suite,"));
    let junit = stdout(&p.run(&["export", "--format", "junit"]));
    assert!(junit.contains("<testsuite name=\"h\""), "{junit}");
    assert_eq!(junit.matches("<testcase").count(), 6, "newest run only");
    assert_eq!(code(&p.run(&["export", "--format", "yaml"])), 2);
}

const CHROMIUM: &str = "/usr/bin/chromium";

fn chromium(profile: &Path, args: &[&str], url: &str) -> std::process::Output {
    assert!(
        Path::new(CHROMIUM).exists(),
        "headless Chromium is required for the report tests: apt-get install -y chromium"
    );
    Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--no-pings",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .expect("run chromium")
}

/// URLs the browser requested, from a net log; browser-service requests (update, account,
/// time checks of Google hosts that Chromium makes whatever the page) are left out.
fn requested(netlog: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(netlog).expect("netlog");
    // A net log cut short by the exit lacks its closing brackets.
    let v: serde_json::Value = serde_json::from_str(&text)
        .or_else(|_| serde_json::from_str(&format!("{}]}}", text.trim_end().trim_end_matches(','))))
        .expect("netlog json");
    let mut out = Vec::new();
    for e in v["events"].as_array().into_iter().flatten() {
        if let Some(u) = e["params"]["url"].as_str() {
            let service = ["google.com/", "googleapis.com/", "gvt1.com/"]
                .iter()
                .any(|h| u.contains(h));
            if !service && !out.iter().any(|x: &String| x == u) {
                out.push(u.to_string());
            }
        }
    }
    out
}

#[test]
fn pages_render_in_headless_chromium_without_errors_or_requests() {
    let (p, _first, second) = history();
    assert_eq!(code(&p.run(&["report"])), 0);
    let dir = p.path().join("reports");
    let tmp = tempfile::tempdir().expect("tmp");
    for (page, charts) in [
        ("h.html", true),
        (&format!("runs/{second}.html") as &str, false),
        ("index.html", true),
    ] {
        let url = format!("file://{}", dir.join(page).display());
        let dom = chromium(&tmp.path().join("p1"), &["--dump-dom"], &url);
        let dom_text = stdout(&dom);
        if charts {
            assert!(
                dom_text.contains("<svg") && dom_text.contains("<circle"),
                "{page}: no chart in the DOM"
            );
        }
        assert!(dom_text.contains("evalwatch"), "{page}: not rendered");
        let log = String::from_utf8_lossy(&dom.stderr).into_owned();
        let console: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE")).collect();
        assert!(console.is_empty(), "{page}: console output {console:?}");
        for (w, h) in [(1280, 900), (390, 844)] {
            let png = tmp
                .path()
                .join(format!("{}-{w}.png", page.replace('/', "_")));
            let netlog = tmp
                .path()
                .join(format!("{}-{w}.json", page.replace('/', "_")));
            let out = chromium(
                &tmp.path().join(format!("p{w}")),
                &[
                    &format!("--screenshot={}", png.display()),
                    &format!("--window-size={w},{h}"),
                    &format!("--log-net-log={}", netlog.display()),
                ],
                &url,
            );
            assert!(out.status.success(), "{page}: {}", stderr(&out));
            let bytes = std::fs::read(&png).expect("screenshot written");
            assert!(bytes.starts_with(b"\x89PNG"), "{page}: not a PNG");
            // A blank page compresses to a few hundred bytes; charts and tables do not.
            assert!(
                bytes.len() > 8_000,
                "{page} at {w}px: screenshot looks blank ({} bytes)",
                bytes.len()
            );
            let urls = requested(&netlog);
            assert!(
                urls.iter().all(|u| u.starts_with("file://")),
                "{page}: requests other than the page: {urls:?}"
            );
        }
    }
}

#[test]
fn the_index_shows_an_open_regression_alert() {
    let p = Project::new();
    let suite = replay_suite(&p, "r", 50, 0);
    let mut yaml = std::fs::read_to_string(&suite).expect("read");
    yaml.push_str(
        "alerts:\n  - {metric: pass_rate, drop: 0.1, baseline: previous, severity: critical}\n",
    );
    std::fs::write(&suite, yaml).expect("write");
    let out = p.run(&["run"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let index = std::fs::read_to_string(p.path().join("reports/index.html")).expect("index");
    assert!(!index.contains("alert (critical)"), "no alert yet");
    // 30 of 50 answers go wrong: a significant drop against the previous run.
    let rec = p.path().join("suites/r.jsonl");
    let text: String = std::fs::read_to_string(&rec)
        .expect("read")
        .lines()
        .enumerate()
        .map(|(i, l)| if i < 30 { l.replace("is right", "is wrong") } else { l.to_string() } + "\n")
        .collect();
    std::fs::write(&rec, text).expect("write");
    let out = p.run(&["run"]);
    assert_eq!(
        code(&out),
        1,
        "a critical alert fails the run: {}",
        stderr(&out)
    );
    let index = std::fs::read_to_string(p.path().join("reports/index.html")).expect("index");
    assert!(
        index.contains("1 alert (critical)"),
        "the refreshed index shows the open alert"
    );
}

#[test]
fn heat_map_columns_of_runs_without_a_page_point_at_their_row() {
    let p = Project::new();
    replay_suite(&p, "h", 3, 0);
    // More runs than get a run page (the newest five do), with c1 flipping every run so the
    // heat map has a row.
    let rec = p.path().join("suites/h.jsonl");
    let right = std::fs::read_to_string(&rec).expect("read");
    let wrong = right.replace(
        "\"case_id\": \"c1\", \"output\": \"the answer is right\"",
        "\"case_id\": \"c1\", \"output\": \"no idea\"",
    );
    assert_ne!(right, wrong);
    for i in 0..7 {
        std::fs::write(&rec, if i % 2 == 0 { &right } else { &wrong }).expect("write");
        let o = p.run(&["run", "--no-reports"]);
        assert!(code(&o) <= 1, "{}", stderr(&o));
    }
    let out = p.run(&["report"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let suite = std::fs::read_to_string(p.path().join("reports/h.html")).expect("suite page");
    let anchors: Vec<&str> = suite
        .split("href=\"#")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert!(
        anchors.len() >= 2,
        "the two oldest runs have no page: {anchors:?}"
    );
    for a in anchors {
        assert!(
            suite.contains(&format!("id=\"{a}\"")),
            "link to #{a} has no target"
        );
    }
}

/// The pages of `run`'s run under `runs/`, "Generated ..." stamps cut out.
fn run_pages(dir: &Path, run_id: &str) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    for e in std::fs::read_dir(dir.join("runs"))
        .expect("runs dir")
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(run_id) {
            let text = std::fs::read_to_string(e.path()).expect("read page");
            let text = match text.find("Generated ") {
                Some(at) => format!("{}{}", &text[..at], &text[at + 30..]),
                None => text,
            };
            out.insert(name, text);
        }
    }
    out
}

#[test]
fn run_pages_written_as_the_run_goes_are_those_written_from_the_store() {
    let p = Project::new();
    // Gates too: the part above the results is written before the store has the run's end.
    let with_gates = |p: &Project| {
        let yaml = replay_suite(p, "big", 250, 7);
        let text = std::fs::read_to_string(&yaml).expect("suite");
        std::fs::write(
            &yaml,
            format!("{text}gates:\n  pass_rate: {{min: 0.5}}\n  latency_p95_ms: {{max: 4000}}\n"),
        )
        .expect("gates");
    };
    replay_suite(&p, "big", 250, 5);
    let first = p.run(&["run", "--format", "json"]);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    // Other cases fail now: flips against the first run.
    with_gates(&p);
    let second = p.run(&["run", "--format", "json"]);
    assert_eq!(code(&second), 0, "{}", stderr(&second));
    let id = json_runs(&second)[0]["run_id"]
        .as_str()
        .expect("id")
        .to_string();
    let dir = p.path().join("reports");
    let live = run_pages(&dir, &id);
    assert_eq!(live.len(), 3, "250 results make 3 pages: {:?}", live.keys());
    let names: Vec<String> = std::fs::read_dir(dir.join("runs"))
        .expect("runs dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with('.') || n.contains(".html.tmp")),
        "no file of rows, no page's file made ahead left behind: {names:?}"
    );
    let page = &live[&format!("{id}.html")];
    assert!(page.contains("<pre>right</pre>"), "expected answers shown");
    assert!(
        page.contains("<td>latency_p95_ms</td>") && page.contains("<td>pass_rate</td>"),
        "gates shown"
    );
    assert!(page.contains("flip: passed -&gt; failed"), "flips marked");
    assert!(page.contains("flip: failed -&gt; passed"), "flips marked");
    let last = &live[&format!("{id}-p3.html")];
    assert!(
        last.contains("<code>c249</code>"),
        "the last result on the last page"
    );

    // The same pages written from the store.
    for name in live.keys() {
        std::fs::remove_file(dir.join("runs").join(name)).expect("remove page");
    }
    let out = p.run(&["report"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(run_pages(&dir, &id), live);
}
