//! The trend page names what changed in a suite's settings between two runs, from the
//! settings recorded with each run.

use axum::Json;
use axum::routing::post;
use serde_json::{Value, json};

use crate::support::{Project, code, serve_on_loopback, stderr};

/// A loopback Ollama that answers every chat with its last message.
fn ollama() -> String {
    let app = axum::Router::new().route(
        "/api/chat",
        post(|Json(body): Json<Value>| async move {
            let said = body["messages"]
                .as_array()
                .and_then(|m| m.last())
                .and_then(|m| m["content"].as_str())
                .unwrap_or_default()
                .to_owned();
            Json(json!({
                "message": {"role": "assistant", "content": said},
                "done": true, "prompt_eval_count": 3, "eval_count": 2
            }))
        }),
    );
    format!("http://{}", serve_on_loopback(app))
}

fn suite(asserts: &str, model: &str, url: &str) -> String {
    format!(
        "suite: changes\nproviders:\n  - id: local\n    type: ollama\n    base_url: {url}\n    model: {model}\nprompt: \"Say {{{{ word }}}}\"\ndefaults:\n  assert:\n{asserts}cases:\n  - id: a\n    vars: {{word: hello}}\n    expected: hello\n  - id: b\n    vars: {{word: world}}\n    expected: world\n"
    )
}

const TWO: &str = "    - type: icontains\n    - type: not-is-refusal\n";
const ONE: &str = "    - type: icontains\n";

fn trend_page(p: &Project) -> String {
    let out = p.run(&["report"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    std::fs::read_to_string(p.path().join("reports/changes.html")).expect("trend page")
}

#[test]
fn the_trend_page_names_the_settings_that_changed() {
    let p = Project::new();
    let url = ollama();
    p.write("suites/changes.yaml", &suite(TWO, "small-1", &url));
    let first = p.run(&["run"]);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    // A default assertion removed and the provider's model changed.
    p.write("suites/changes.yaml", &suite(ONE, "small-2", &url));
    let second = p.run(&["run"]);
    assert_eq!(code(&second), 0, "{}", stderr(&second));
    let page = trend_page(&p);
    assert!(
        page.contains("defaults.assert changed (2 → 1 assertion: not-is-refusal removed)"),
        "the removal of a default assertion is not named:\n{page}"
    );
    assert!(
        page.contains("provider local: model small-1 → small-2"),
        "the model change is not named:\n{page}"
    );
    assert!(
        !page.contains("providers, prompt, judge, rubric or gates"),
        "the page still guesses what changed"
    );
    // A run with the same settings and cases adds no marker: one row in "What changed".
    let third = p.run(&["run"]);
    assert_eq!(code(&third), 0, "{}", stderr(&third));
    let page = trend_page(&p);
    let changes = page
        .split_once("What changed</th>")
        .and_then(|(_, rest)| rest.split_once("</tbody>"))
        .map_or_else(
            || panic!("no table of changes:\n{page}"),
            |(table, _)| table.to_owned(),
        );
    assert_eq!(changes.matches("<tr>").count(), 1, "{changes}");
    assert!(changes.contains("defaults.assert changed"), "{changes}");
}

#[test]
fn runs_stored_without_settings_say_so_rather_than_guess() {
    let p = Project::new();
    let url = ollama();
    p.write("suites/changes.yaml", &suite(TWO, "small-1", &url));
    let first = p.run(&["run"]);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    // As a store of an evalwatch before the settings were recorded has it.
    let conn = rusqlite::Connection::open(p.db()).expect("open store");
    let gone = conn
        .execute("DELETE FROM run_settings", [])
        .expect("remove the settings");
    assert_eq!(gone, 1);
    drop(conn);
    p.write("suites/changes.yaml", &suite(ONE, "small-2", &url));
    let second = p.run(&["run"]);
    assert_eq!(code(&second), 0, "{}", stderr(&second));
    let page = trend_page(&p);
    assert!(
        page.contains("suite settings changed (not recorded for runs before this version)"),
        "{page}"
    );
    assert!(!page.contains("defaults.assert changed"), "{page}");
}
