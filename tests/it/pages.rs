//! What the pages show and leave behind: run pages (context, flagged spans, alerts, control
//! bytes), the files a resumed run leaves, the alert history, and the layout at phone and
//! desktop widths in headless Chromium.

use std::path::Path;

use crate::runs::{slow_suite, wait_for_results};
use crate::support::{Project, code, json_runs, signal, stderr};

fn names_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A killed run leaves its file of rows; resuming it to its end removes it then, not at the
/// next `report`.
#[test]
fn a_resumed_run_leaves_no_file_of_rows_behind() {
    let p = Project::new();
    slow_suite(&p, 12, "0.1");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("evalwatch"))
        .current_dir(p.path())
        .args(["run"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let run_id = wait_for_results(&p, 3);
    signal(child.id(), "-KILL");
    let _ = child.wait();
    let runs = p.path().join("reports/runs");
    assert!(
        names_in(&runs).iter().any(|n| n.contains(".rows")),
        "the killed run left its rows: {:?}",
        names_in(&runs)
    );
    let out = p.run(&["run", "--resume", &run_id, "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json_runs(&out)[0]["status"], "complete");
    let left: Vec<String> = names_in(&runs)
        .into_iter()
        .filter(|n| n.starts_with('.') || n.contains(".tmp"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(
        runs.join(format!("{run_id}.html")).exists(),
        "the resumed run's page"
    );
}

/// Rewrite the replay answers of suite `name`: the cases in `wrong` answer wrongly.
fn answers(p: &Project, name: &str, n: usize, wrong: &[usize]) {
    use std::fmt::Write as _;
    let mut rec = String::new();
    for i in 0..n {
        let answer = if wrong.contains(&i) { "wrong" } else { "right" };
        let _ = writeln!(
            rec,
            "{{\"case_id\": \"c{i}\", \"output\": \"the answer is {answer}\", \"latency_ms\": {}}}",
            100 + i % 50
        );
    }
    p.write(&format!("suites/{name}.jsonl"), &rec);
}

fn run_id(o: &std::process::Output) -> String {
    json_runs(o)[0]["run_id"].as_str().expect("id").to_string()
}

fn read(p: &Project, rel: &str) -> String {
    std::fs::read_to_string(p.path().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// A project whose suite `faq` of 40 cases has a pass-rate gate and a drop alert; two
/// healthy runs, then one where 20 cases break (the alert opens), then one where they are
/// fixed (it resolves). Returns the project and the ids of the last two runs.
fn alerted() -> (Project, String, String) {
    let p = Project::new();
    let path = crate::support::replay_suite(&p, "faq", 40, 0);
    let mut yaml = std::fs::read_to_string(&path).expect("suite");
    yaml.push_str("gates:\n  pass_rate: {min: 0.9}\nalerts:\n  - {metric: pass_rate, drop: 0.05, severity: critical}\n");
    std::fs::write(&path, yaml).expect("write");
    for _ in 0..2 {
        let o = p.run(&["run", "--format", "json"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
    answers(&p, "faq", 40, &(0..20).collect::<Vec<_>>());
    let bad = p.run(&["run", "--format", "json"]);
    assert_eq!(code(&bad), 1, "{}", stderr(&bad));
    (p, run_id(&bad), String::new())
}

/// The run page and `show` name the alert a run opened and the one it resolved; the alert
/// history page lists it, the index's badge links to it; the charts draw the gate's limit and
/// mark the alert.
#[test]
fn pages_show_the_alerts_a_run_opened_and_resolved() {
    let (p, bad, _) = alerted();
    let index = read(&p, "reports/index.html");
    let history = read(&p, "reports/alerts.html");
    let id_at = history.find("id=\"alert-").expect("an alert listed") + 10;
    let alert_id: String = history[id_at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert!(
        index.contains(&format!("href=\"alerts.html#alert-{alert_id}\"")),
        "the index badge links to the open alert"
    );
    assert!(history.contains(">open</span>"), "open while it fires");
    let page = read(&p, &format!("reports/runs/{bad}.html"));
    let alerts_at = page.find("<h2>Alerts</h2>").expect("an Alerts section");
    let section = &page[alerts_at..page.find("<h2>Against the baseline").expect("baseline")];
    assert!(section.contains(">opened</span>"), "{section}");
    assert!(
        section.contains(&format!("alerts.html#alert-{alert_id}")),
        "{section}"
    );
    let show = p.run(&["show", &bad]);
    assert_eq!(code(&show), 0, "{}", stderr(&show));
    assert!(
        crate::support::stdout(&show).contains("alert opened by this run: critical"),
        "{}",
        crate::support::stdout(&show)
    );
    let suite = read(&p, "reports/faq.html");
    assert!(
        suite.contains("<g class=\"marker alert\">"),
        "alert marked on the charts"
    );
    assert!(
        suite.contains("<g class=\"threshold\">") && suite.contains("gate pass_rate &gt;= 0.9"),
        "the gate's limit drawn"
    );

    answers(&p, "faq", 40, &[]);
    let good = p.run(&["run", "--format", "json"]);
    assert_eq!(code(&good), 0, "{}", stderr(&good));
    let good = run_id(&good);
    let page = read(&p, &format!("reports/runs/{good}.html"));
    assert!(
        page.contains(">resolved</span>"),
        "the resolving run says so"
    );
    let history = read(&p, "reports/alerts.html");
    assert!(
        history.contains(&format!("href=\"runs/{bad}.html\""))
            && history.contains(&format!("href=\"runs/{good}.html\"")),
        "opened and resolved by, linked"
    );
    assert!(!history.contains(">open</span>"), "resolved now");
    let suite = read(&p, "reports/faq.html");
    assert!(suite.contains("<g class=\"marker resolved\">"));
    let show = p.run(&["show", &good]);
    assert!(crate::support::stdout(&show).contains("alert resolved by this run"));
}

/// A grounded case whose answer adds a fact: its run page shows the case's context and
/// expected answer, and marks the words the hallucination check flagged in the output; raw
/// control bytes in the output are shown as symbols.
#[test]
fn a_hallucination_can_be_judged_from_the_run_page() {
    let p = Project::new();
    p.write(
        "suites/g.jsonl",
        "{\"case_id\": \"refund\", \"output\": \"Items can be returned within 30 days for a full refund via Zelle.\\u001b[31m\\u0007\", \"latency_ms\": 5}\n",
    );
    p.write(
        "suites/g.yaml",
        "suite: g\nproviders:\n  - id: rec\n    type: replay\n    file: g.jsonl\nprompt: \"Q: {{ q }}\"\ncases:\n  - id: refund\n    vars: {q: How long do I have to return an item?}\n    expected: \"30 days\"\n    context: \"Items can be returned within 30 days of delivery.\"\n    assert:\n      - {type: hallucination, method: lexical, max: 0.1}\n",
    );
    let out = p.run(&["run", "--format", "json"]);
    assert!(code(&out) <= 1, "{}", stderr(&out));
    let id = run_id(&out);
    let check = |page: &str| {
        assert!(
            page.contains("<h4>Context</h4><pre class=\"context\">Items can be returned within 30 days of delivery.</pre>"),
            "context shown"
        );
        assert!(page.contains("<pre>30 days</pre>"), "expected shown");
        let marks: Vec<&str> = page
            .split("<mark class=\"unsupported\" title=\"unsupported\">")
            .skip(1)
            .filter_map(|m| m.split("</mark>").next())
            .collect();
        assert!(
            marks.iter().any(|m| m.contains("Zelle")),
            "the unsupported words marked: {marks:?}"
        );
        assert!(
            marks.iter().all(|m| !m.contains("30 days")),
            "supported words unmarked: {marks:?}"
        );
        assert!(
            page.contains("\u{241b}[") && page.contains("\u{2407}"),
            "control bytes shown"
        );
        assert!(!page.contains('\u{1b}') && !page.contains('\u{7}'));
    };
    // Written as the run went, then again from the store.
    let path = p.path().join(format!("reports/runs/{id}.html"));
    let live = std::fs::read_to_string(&path).expect("page");
    check(&live);
    std::fs::remove_file(&path).expect("remove");
    let again = p.run(&["report"]);
    assert_eq!(code(&again), 0, "{}", stderr(&again));
    check(&std::fs::read_to_string(&path).expect("page"));
}

/// Measures the layout of the page in the iframe `f` once it has loaded, and writes it into
/// the DOM as JSON (`<pre id="measure">`), for `--dump-dom` to carry out. (Headless Chromium
/// will not make a window narrower than 500 px: the page is laid out in an iframe of the
/// width under test instead.)
const MEASURE: &str = r#"<script>
document.getElementById('f').addEventListener('load', () => {
const doc = document.getElementById('f').contentDocument;
const vw = doc.documentElement.clientWidth;
const r = {vw: vw, page_overflow: doc.documentElement.scrollWidth - vw, cut: [], title_overlaps: 0};
for (const t of doc.querySelectorAll('table')) {
  if (t.getClientRects().length === 0) continue;
  const sc = t.closest('.scroll');
  const box = (sc || t).getBoundingClientRect();
  if (box.right > vw + 1 || box.left < -1) r.cut.push((t.className || 'table') + ': ' + box.left + '..' + box.right);
}
const heat = doc.querySelector('table.heat');
if (heat) {
  const s = heat.closest('.scroll').getBoundingClientRect();
  const cols = heat.querySelectorAll('thead th.rot');
  const newest = cols[cols.length - 1].getBoundingClientRect();
  r.heat_scrolls = heat.closest('.scroll').scrollWidth > heat.closest('.scroll').clientWidth;
  r.newest_visible = newest.right <= s.right + 1 && newest.left >= s.left - 1;
  const pin = heat.querySelector('tbody td.pin').getBoundingClientRect();
  r.case_visible = pin.left >= s.left - 1 && pin.right <= s.right + 1;
}
const idx = doc.querySelector('table.index');
if (idx) { const sc = idx.closest('.scroll'); r.index_fits = sc.scrollWidth <= sc.clientWidth + 1; }
for (const svg of doc.querySelectorAll('figure.chart svg')) {
  if (svg.getClientRects().length === 0) continue;
  const title = svg.querySelector('text.axis-title').getBoundingClientRect();
  for (const t of svg.querySelectorAll('text.tick')) {
    const b = t.getBoundingClientRect();
    if (b.left < title.right && title.left < b.right && b.top < title.bottom && title.top < b.bottom) r.title_overlaps++;
  }
}
document.body.insertAdjacentHTML('beforeend', '<pre id="measure">' + JSON.stringify(r) + '</pre>');
});
</script>"#;

/// `page` (relative to the reports folder `dir`) fits phone (390 px) and desktop (1280 px)
/// widths in headless Chromium: no page overflow, nothing cut, no overlapping titles.
pub(crate) fn assert_fits(dir: &Path, page: &str) {
    let tmp = tempfile::tempdir().expect("tmp");
    for width in [390, 1280] {
        let m = measure(dir, page, width, &tmp.path().join(format!("p{width}")));
        assert!(
            m["page_overflow"].as_f64().expect("overflow") <= 1.0,
            "{page} at {width}px is wider than the screen: {m}"
        );
        assert_eq!(m["cut"], serde_json::json!([]), "{page} at {width}px: {m}");
        assert_eq!(m["title_overlaps"], 0, "{page} at {width}px: {m}");
    }
}

/// The layout of `page` (relative to the reports folder) at `width` px, measured in headless
/// Chromium.
pub(crate) fn measure(dir: &Path, page: &str, width: u32, profile: &Path) -> serde_json::Value {
    measure_with(dir, page, width, profile, MEASURE)
}

/// [`measure`] with another script: one that writes its JSON into `<pre id="measure">`.
pub(crate) fn measure_with(
    dir: &Path,
    page: &str,
    width: u32,
    profile: &Path,
    script: &str,
) -> serde_json::Value {
    let probe = dir.join(format!("measure-{width}.html"));
    std::fs::write(
        &probe,
        format!(
            "<!DOCTYPE html><html><body style=\"margin:0\"><iframe id=\"f\" src=\"{page}\" style=\"width:{width}px;height:900px;border:0\"></iframe>{script}</body></html>"
        ),
    )
    .expect("probe");
    let out = std::process::Command::new("/usr/bin/chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--allow-file-access-from-files",
            &format!("--window-size={},1000", width + 40),
            &format!("--user-data-dir={}", profile.display()),
            "--dump-dom",
        ])
        .arg(format!("file://{}", probe.display()))
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&out.stdout);
    let start = dom.rfind("<pre id=\"measure\">").unwrap_or_else(|| {
        panic!(
            "{page}: no measurement: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    }) + 18;
    let end = start + dom[start..].find("</pre>").expect("end");
    let text = dom[start..end]
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    let m: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{page}: {e}: {text}"));
    assert_eq!(m["vw"], width, "{page}: laid out at {width}px");
    m
}

/// At phone (390 px) and desktop (1280 px) widths: no page is wider than the screen, every
/// table fits or scrolls in a container that does, the index stacks to fit, chart unit titles
/// overlap no tick, and a wide flips grid shows the newest run and the case names first.
#[test]
fn pages_fit_phone_and_desktop_widths_in_chromium() {
    let p = Project::new();
    crate::support::replay_suite(&p, "wide-suite-name-for-layout", 12, 0);
    for i in 0..15 {
        // Every run flips four cases, so the flips grid has a column per run.
        let wrong: Vec<usize> = (0..4).map(|k| (i + k) % 12).collect();
        answers(&p, "wide-suite-name-for-layout", 12, &wrong);
        let o = p.run(&["run", "--no-reports"]);
        assert!(code(&o) <= 1, "{}", stderr(&o));
    }
    let o = p.run(&["report"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let dir = p.path().join("reports");
    let newest = std::fs::read_dir(dir.join("runs"))
        .expect("runs")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.contains("-p"))
        .max()
        .expect("a run page");
    let tmp = tempfile::tempdir().expect("tmp");
    for width in [390, 1280] {
        for page in [
            "index.html".to_string(),
            "wide-suite-name-for-layout.html".to_string(),
            format!("runs/{newest}"),
            "alerts.html".to_string(),
        ] {
            let m = measure(&dir, &page, width, &tmp.path().join(format!("p{width}")));
            assert!(
                m["page_overflow"].as_f64().expect("overflow") <= 1.0,
                "{page} at {width}px is wider than the screen: {m}"
            );
            assert_eq!(m["cut"], serde_json::json!([]), "{page} at {width}px: {m}");
            assert_eq!(m["title_overlaps"], 0, "{page} at {width}px: {m}");
            if page == "index.html" {
                assert_eq!(m["index_fits"], true, "{page} at {width}px: {m}");
            }
            if page.starts_with("wide") {
                assert_eq!(m["newest_visible"], true, "{page} at {width}px: {m}");
                assert_eq!(m["case_visible"], true, "{page} at {width}px: {m}");
                if width == 1280 {
                    assert_eq!(
                        m["heat_scrolls"], true,
                        "15 runs are wider than 1280px: {m}"
                    );
                }
            }
        }
    }
}
