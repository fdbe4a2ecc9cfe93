//! What changed: run labels, the model versions providers report (automatic markers), and
//! the markers alerts and trend charts show.

use crate::support::{Project, code, json_runs, question_cases, replay_suite, stderr, stdout};

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

/// What the loopback model server answers with: the versions it reports, and whether its
/// answers are right.
struct Served {
    openai: (&'static str, &'static str),
    anthropic: &'static str,
    right: bool,
}

/// A loopback server speaking OpenAI's Chat Completions and Anthropic's Messages wire
/// formats, reporting the versions `state` holds.
fn model_server() -> (String, std::sync::Arc<std::sync::Mutex<Served>>) {
    use axum::extract::State;
    use axum::routing::post;
    type Shared = std::sync::Arc<std::sync::Mutex<Served>>;
    fn answer(right: bool) -> &'static str {
        if right {
            "Answer: 30 days."
        } else {
            "I am not sure."
        }
    }
    async fn chat(State(s): State<Shared>) -> axum::Json<serde_json::Value> {
        let (model, fp, right) = {
            let s = s.lock().unwrap();
            (s.openai.0, s.openai.1, s.right)
        };
        axum::Json(serde_json::json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
            "system_fingerprint": fp,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer(right)}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        }))
    }
    async fn messages(State(s): State<Shared>) -> axum::Json<serde_json::Value> {
        let (model, right) = {
            let s = s.lock().unwrap();
            (s.anthropic, s.right)
        };
        axum::Json(serde_json::json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": answer(right)}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 10, "output_tokens": 5}
        }))
    }
    let state: Shared = std::sync::Arc::new(std::sync::Mutex::new(Served {
        openai: ("gpt-4o-2024-08-06", "fp_abc"),
        anthropic: "claude-sonnet-4-20250514",
        right: true,
    }));
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/messages", post(messages))
        .with_state(std::sync::Arc::clone(&state));
    (
        format!("http://{}", crate::support::serve_on_loopback(app)),
        state,
    )
}

#[test]
fn a_model_version_change_is_marked_and_named_by_the_next_alert() {
    let (base, state) = model_server();
    let p = Project::new();
    let cases = question_cases(20, "30 days");
    p.write(
        "suites/faq.yaml",
        &format!(
            "suite: faq\nproviders:\n  - id: gpt\n    type: openai\n    model: gpt-4o\n    base_url: {base}/v1\n    api_key_env: EW_T_MODEL_KEY\n    retries: {{max: 0}}\n  - id: claude\n    type: anthropic\n    model: claude-sonnet-4-0\n    base_url: {base}\n    api_key_env: EW_T_MODEL_KEY\n    retries: {{max: 0}}\nprompt: \"{{{{ q }}}}\"\ncases:\n{cases}alerts:\n  - {{metric: pass_rate, drop: 0.05, severity: warning}}\n"
        ),
    );
    let run = |args: &[&str]| with_key(&p, args);
    let out = run(&["run", "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let first = json_runs(&out)[0]["run_id"]
        .as_str()
        .expect("run id")
        .to_owned();
    // The same versions again: nothing marked.
    let out = run(&["run"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("model version changed"),
        "{}",
        stderr(&out)
    );
    let marks = stdout(&run(&["mark", "list"]));
    assert_eq!(marks.trim(), "no markers");

    // The provider rolls out a new snapshot, and the answers get worse.
    {
        let mut s = state.lock().unwrap();
        s.openai = ("gpt-4o-2024-11-20", "fp_def");
        s.anthropic = "claude-sonnet-4-20250601";
        s.right = false;
    }
    let out = run(&["run", "--format", "json"]);
    assert_eq!(
        code(&out),
        0,
        "warnings do not fail the run: {}",
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(
        err.contains(
            "model version changed: gpt gpt-4o-2024-08-06 -> gpt-4o-2024-11-20 (fp_abc -> fp_def), seen by suite faq"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "claude claude-sonnet-4-20250514 -> claude-sonnet-4-20250601, seen by suite faq"
        ),
        "{err}"
    );
    let third = json_runs(&out)[0]["run_id"]
        .as_str()
        .expect("run id")
        .to_owned();

    // The markers, automatic, in `mark list`.
    let out = run(&["mark", "list", "--format", "json"]);
    let marks: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let marks = marks.as_array().expect("array");
    assert_eq!(marks.len(), 2, "{marks:?}");
    assert!(
        marks
            .iter()
            .all(|m| m["kind"] == "model" && m["origin"] == "auto")
    );

    // Each alert the run opened names the change.
    let out = run(&["alerts", "list", "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let alerts: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let alerts = alerts["alerts"].as_array().expect("array");
    assert_eq!(alerts.len(), 2, "one per provider: {alerts:?}");
    for a in alerts {
        let message = a["message"].as_str().expect("message");
        assert!(
            message.contains(", possibly related to the model change at "),
            "{message}"
        );
    }
    assert!(
        alerts.iter().any(|a| a["message"]
            .as_str()
            .unwrap_or_default()
            .contains("(gpt gpt-4o-2024-08-06 -> gpt-4o-2024-11-20 (fp_abc -> fp_def)")),
        "{alerts:?}"
    );

    // The versions are stored per run: `show` lists them.
    let text = stdout(&run(&["show", &first]));
    assert!(
        text.contains("model version reported by gpt: gpt-4o-2024-08-06 (fp_abc) (20 answers)"),
        "{text}"
    );
    let out = run(&["show", &third, "--format", "json"]);
    let head: serde_json::Value =
        serde_json::from_str(stdout(&out).lines().next().expect("a header line")).expect("json");
    let versions = head["model_versions"].as_array().expect("versions");
    assert!(
        versions.iter().any(|v| v["provider"] == "claude"
            && v["model"] == "claude-sonnet-4-20250601"
            && v["fingerprint"].is_null()
            && v["answers"] == 20),
        "{versions:?}"
    );
}

/// `evalwatch ARGS` in `p` with the loopback model server's key in the environment.
fn with_key(p: &Project, args: &[&str]) -> std::process::Output {
    p.cmd()
        .args(args)
        .env("EW_T_MODEL_KEY", "sk-test")
        .output()
        .expect("run evalwatch")
}

/// A loopback OpenAI server that reports one model version and takes 50 ms an answer.
fn slow_model_server() -> String {
    use axum::routing::post;
    async fn chat() -> axum::Json<serde_json::Value> {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        axum::Json(serde_json::json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1,
            "model": "gpt-4o-2024-08-06", "system_fingerprint": "fp_abc",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Answer: 30 days."}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        }))
    }
    let app = axum::Router::new().route("/v1/chat/completions", post(chat));
    format!("http://{}", crate::support::serve_on_loopback(app))
}

/// A run killed (`kill -9`) mid-way keeps the model versions of the results it stored, and
/// its resume adds those of the rest: every answer is counted once.
#[test]
fn a_run_killed_and_resumed_counts_the_model_version_of_every_answer_once() {
    const CASES: usize = 80;
    let base = slow_model_server();
    let p = Project::new();
    let cases = question_cases(CASES, "30 days");
    p.write(
        "suites/faq.yaml",
        &format!(
            "suite: faq\nproviders:\n  - id: gpt\n    type: openai\n    model: gpt-4o\n    base_url: {base}/v1\n    api_key_env: EW_T_MODEL_KEY\n    concurrency: 2\n    retries: {{max: 0}}\nprompt: \"{{{{ q }}}}\"\ncases:\n{cases}"
        ),
    );
    let stored = || -> usize {
        rusqlite::Connection::open(p.db())
            .and_then(|c| c.query_row("SELECT count(*) FROM results", [], |r| r.get(0)))
            .map_or(0, |n: i64| usize::try_from(n).unwrap_or(0))
    };
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("evalwatch"))
        .current_dir(p.path())
        .env("EW_T_MODEL_KEY", "sk-test")
        .args(["run", "--no-reports"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while stored() < 10 {
        assert!(
            std::time::Instant::now() < deadline,
            "the run stored nothing"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    crate::support::signal(child.id(), "-KILL");
    let _ = child.wait();
    let killed_at = stored();
    assert!(killed_at < CASES, "killed mid-run ({killed_at} of {CASES})");
    let run_id: String = rusqlite::Connection::open(p.db())
        .and_then(|c| c.query_row("SELECT run_id FROM runs", [], |r| r.get(0)))
        .expect("the run");
    let run = |args: &[&str]| with_key(&p, args);
    let out = run(&["run", "--resume", &run_id, "--no-reports"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stored(), CASES);
    let out = run(&["show", &run_id, "--format", "json"]);
    let head: serde_json::Value =
        serde_json::from_str(stdout(&out).lines().next().expect("a header line")).expect("json");
    let versions = head["model_versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 1, "{versions:?}");
    assert_eq!(versions[0]["model"], "gpt-4o-2024-08-06", "{versions:?}");
    assert_eq!(versions[0]["answers"], CASES, "{versions:?}");
}

/// Reads, in the page of iframe `f`, the change markers of the first chart shown: their
/// lines, hover titles, and the list under the chart (laid out within the screen).
const MARKERS: &str = r#"<script>
document.getElementById('f').addEventListener('load', () => {
const doc = document.getElementById('f').contentDocument;
const vw = doc.documentElement.clientWidth;
const r = {vw: vw, page_overflow: doc.documentElement.scrollWidth - vw};
const fig = [...doc.querySelectorAll('figure.chart')].find(f => f.getClientRects().length > 0);
const svg = fig.querySelector('svg').getBoundingClientRect();
r.lines = [...fig.querySelectorAll('g.marker.mark')].map(g => {
  const l = g.querySelector('line').getBoundingClientRect();
  return {title: g.querySelector('title').textContent, inside: l.left >= svg.left && l.right <= svg.right};
});
r.listed = [...fig.querySelectorAll('ul.markers li.mark')].map(li => {
  const b = li.getBoundingClientRect();
  return {text: li.textContent, shown: b.width > 0 && b.height > 0 && b.right <= vw + 1};
});
document.body.insertAdjacentHTML('beforeend', '<pre id="measure">' + JSON.stringify(r) + '</pre>');
});
</script>"#;

#[test]
fn trend_charts_draw_markers_with_their_text_at_phone_and_desktop_widths() {
    let p = Project::new();
    replay_suite(&p, "marked", 6, 0);
    let out = p.run(&["run", "--no-reports"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = p.run(&["mark", "deploy", "v<2> & new index"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = p.run(&["run"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let dir = p.path().join("reports");
    let html = std::fs::read_to_string(dir.join("marked.html")).expect("trend page");
    assert!(
        html.contains("deploy v&lt;2&gt; &amp; new index</title>"),
        "escaped in the hover title"
    );
    assert!(!html.contains("v<2>"), "never raw");
    let tmp = tempfile::tempdir().expect("tmp");
    for width in [390, 1280] {
        let m = crate::pages::measure_with(
            &dir,
            "marked.html",
            width,
            &tmp.path().join(format!("p{width}")),
            MARKERS,
        );
        assert!(
            m["page_overflow"].as_f64().expect("overflow") <= 1.0,
            "{width}px: {m}"
        );
        let lines = m["lines"].as_array().expect("lines");
        assert_eq!(lines.len(), 1, "{width}px: one marker line: {m}");
        // The dump of the DOM escapes `<` and `>` in the measurement (`measure_with` reads
        // back `&amp;` and `&quot;` only).
        let title = lines[0]["title"].as_str().expect("title");
        let shown = title.replace("&lt;", "<").replace("&gt;", ">");
        assert!(shown.ends_with("deploy v<2> & new index"), "{width}px: {m}");
        assert_eq!(lines[0]["inside"], true, "{width}px: within the chart: {m}");
        let listed = m["listed"].as_array().expect("listed");
        assert_eq!(listed.len(), 1, "{width}px: listed under the chart: {m}");
        assert_eq!(listed[0]["text"].as_str(), Some(title), "{width}px: {m}");
        assert_eq!(listed[0]["shown"], true, "{width}px: {m}");
    }
}

#[test]
fn a_new_model_in_traffic_is_marked_once_for_its_source() {
    use std::fmt::Write as _;
    let p = Project::new();
    p.write(
        "evalwatch.yaml",
        "traffic:\n  - id: bot\n    path: logs/*.jsonl\n    fields:\n      time: /ts\n      model: /model\n      latency_ms: /ms\n    sample: 0%\n",
    );
    // Three hours of traffic, a request every three minutes; the switch two hours in (past the
    // first hour, whose models are the source's starting mix).
    let base = (chrono::Utc::now().timestamp() / 3600) * 3600 - 4 * 3600;
    let at = |s: i64| {
        chrono::DateTime::from_timestamp(s, 0)
            .expect("time")
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let mut log = String::new();
    for minute in 0..60 {
        let model = if minute < 40 {
            "gpt-4o-2024-08-06"
        } else {
            "gpt-4o-2024-11-20"
        };
        let _ = writeln!(
            log,
            r#"{{"ts": "{}", "model": "{model}", "ms": 120}}"#,
            at(base + minute * 180)
        );
    }
    p.write("logs/a.jsonl", &log);
    let ingest = || {
        p.cmd()
            .env("EVALWATCH_TRAFFIC_SALT", "salt-for-tests")
            .args(["ingest"])
            .output()
            .expect("run evalwatch")
    };
    let out = ingest();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("new model seen in traffic: bot gpt-4o-2024-08-06 -> gpt-4o-2024-11-20"),
        "{}",
        stderr(&out)
    );
    // Read again (nothing new): marked once.
    let out = ingest();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("new model seen"), "{}", stderr(&out));
    let out = p.run(&["mark", "list", "--format", "json"]);
    let marks: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let marks = marks.as_array().expect("array");
    assert_eq!(marks.len(), 1, "{marks:?}");
    assert_eq!(marks[0]["kind"], "model");
    assert_eq!(marks[0]["origin"], "auto");
    assert_eq!(marks[0]["source"], "bot");
    assert_eq!(marks[0]["at"], at(base + 40 * 180).as_str());
    assert_eq!(
        marks[0]["text"],
        "bot gpt-4o-2024-08-06 -> gpt-4o-2024-11-20"
    );
}

/// Two models taking turns from a source's first request are its starting mix: no marker.
#[test]
fn models_of_a_sources_first_hour_are_its_starting_mix_not_a_change() {
    use std::fmt::Write as _;
    let p = Project::new();
    p.write(
        "evalwatch.yaml",
        "traffic:\n  - id: bot\n    path: logs/*.jsonl\n    fields:\n      time: /ts\n      model: /model\n      latency_ms: /ms\n    sample: 0%\n",
    );
    let base = (chrono::Utc::now().timestamp() / 3600) * 3600 - 4 * 3600;
    let mut log = String::new();
    for i in 0..60_i64 {
        let model = if i % 2 == 0 {
            "claude-3-5-haiku"
        } else {
            "gpt-4o-mini"
        };
        let ts = chrono::DateTime::from_timestamp(base + i * 180, 0)
            .expect("time")
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let _ = writeln!(log, r#"{{"ts": "{ts}", "model": "{model}", "ms": 120}}"#);
    }
    p.write("logs/a.jsonl", &log);
    let out = p
        .cmd()
        .env("EVALWATCH_TRAFFIC_SALT", "salt-for-tests")
        .args(["ingest"])
        .output()
        .expect("run evalwatch");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("new model seen"), "{}", stderr(&out));
    let out = p.run(&["mark", "list", "--format", "json"]);
    let marks: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(marks, serde_json::json!([]), "no marker");
}
