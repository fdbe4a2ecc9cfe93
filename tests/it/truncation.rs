//! An answer longer than `max_output_bytes` is kept cut at the cap and marked, its length
//! and a truncated flag stored, and `show`, `--format json` and the run page say so.

use crate::support::{Project, code, json_runs, serve_on_loopback, stderr, stdout};

const LONG: usize = 3000;
const CAP: u64 = 1000;

/// An OpenAI-compatible server whose answer's text is `LONG` bytes ("ab" repeated): its
/// body is well under what evalwatch reads, its text over the cap.
fn long_answer_server() -> String {
    let chat = || async {
        let content = "ab".repeat(LONG / 2);
        let body = serde_json::json!({
            "id": "c", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        });
        ([("content-type", "application/json")], body.to_string())
    };
    let app = axum::Router::new().route("/v1/chat/completions", axum::routing::post(chat));
    format!("http://{}/v1", serve_on_loopback(app))
}

#[test]
fn a_long_answer_is_stored_cut_with_its_length_and_flag_and_shown_as_such() {
    let base = long_answer_server();
    let p = Project::new();
    p.write(
        "suites/long.yaml",
        &format!(
            "suite: long\nproviders:\n  - id: gpt\n    type: openai\n    model: m\n    base_url: {base}\n    max_output_bytes: {CAP}\n    retries: {{max: 0}}\n  - id: cmd\n    type: exec\n    command: [sh, -c, 'yes evalwatch']\n    max_output_bytes: {CAP}\n  - id: short\n    type: echo\nprompt: \"{{{{ q }}}}\"\ncases:\n  - {{id: a, vars: {{q: hello}}, expected: ab}}\n"
        ),
    );
    let out = p
        .cmd()
        .env("OPENAI_API_KEY", "sk-test-truncation-key")
        .args(["run", "--format", "json"])
        .output()
        .expect("run");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let conn = rusqlite::Connection::open(p.db()).expect("open");
    let row = |provider: &str| -> (Option<String>, Option<String>, Option<i64>, i64) {
        conn.query_row(
            "SELECT output, error, output_bytes, truncated FROM results WHERE provider = ?1",
            [provider],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .expect("row")
    };
    // The JSON provider: no error, the text cut at the cap, the whole length kept.
    let (output, error, bytes, truncated) = row("gpt");
    assert_eq!(error, None, "an over-cap text is not an error");
    let output = output.expect("output");
    assert!(output.starts_with("abab"), "{output}");
    assert!(
        output.ends_with(
            "[evalwatch: output truncated at max_output_bytes = 1000 bytes; the answer was longer]"
        ),
        "{output}"
    );
    assert_eq!(output.find("\n[evalwatch"), Some(1000), "cut at the cap");
    assert_eq!(bytes, Some(3000), "the answer's whole length is stored");
    assert_eq!(truncated, 1);
    // The exec provider: stopped at the cap; the bytes read are stored.
    let (output, _, bytes, truncated) = row("cmd");
    assert!(output.expect("output").starts_with("evalwatch\n"));
    assert_eq!(truncated, 1);
    assert!(bytes.is_some_and(|b| b >= 1000), "{bytes:?}");
    // An answer under the cap: its length, not truncated.
    let (output, _, bytes, truncated) = row("short");
    assert_eq!(
        bytes,
        Some(i64::try_from(output.expect("output").len()).expect("len"))
    );
    assert_eq!(truncated, 0);

    // --format json: the two fields, on every result.
    let run = &json_runs(&out)[0];
    let case = |provider: &str| {
        run["cases"]
            .as_array()
            .expect("cases")
            .iter()
            .find(|c| c["provider"] == provider)
            .cloned()
            .expect("case")
    };
    assert_eq!(case("gpt")["output_bytes"], 3000);
    assert_eq!(case("gpt")["truncated"], true);
    assert_eq!(case("short")["truncated"], false);
    let run_id = run["run_id"].as_str().expect("run id").to_owned();

    // show: says which outputs were cut, with the figures.
    let shown = p.run(&["show", &run_id]);
    assert_eq!(code(&shown), 0, "{}", stderr(&shown));
    let text = stdout(&shown);
    assert!(
        text.contains("outputs truncated at max_output_bytes (2):"),
        "{text}"
    );
    assert!(
        text.contains("a [gpt]: truncated: 3000 bytes, showing the first 1000"),
        "{text}"
    );
    // show --format json: the same fields.
    let shown = p.run(&["show", &run_id, "--format", "json"]);
    let json = &json_runs(&shown)[0];
    let gpt = json["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| c["provider"] == "gpt")
        .cloned()
        .expect("case");
    assert_eq!(gpt["output_bytes"], 3000);
    assert_eq!(gpt["truncated"], true);

    // The exports: json carries the result's fields, csv two columns.
    let json = p.run(&["export", "--format", "json"]);
    assert_eq!(code(&json), 0, "{}", stderr(&json));
    assert!(
        stdout(&json).contains("\"output_bytes\":3000,\"truncated\":true"),
        "json export lacks the length"
    );
    let csv = p.run(&["export", "--format", "csv"]);
    assert_eq!(code(&csv), 0, "{}", stderr(&csv));
    let csv = stdout(&csv);
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let header = rows.headers().expect("header").clone();
    let col = |name: &str| header.iter().position(|h| h == name).expect(name);
    let (provider, bytes, cut) = (col("provider"), col("output_bytes"), col("truncated"));
    let gpt = rows
        .records()
        .map(|r| r.expect("row"))
        .find(|r| &r[provider] == "gpt")
        .expect("gpt row");
    assert_eq!((&gpt[bytes], &gpt[cut]), ("3000", "true"));

    // The run page: a visible note above the output.
    let page = std::fs::read_to_string(p.path().join(format!("reports/runs/{run_id}.html")))
        .expect("run page");
    assert!(
        page.contains("truncated: 3000 bytes, showing the first 1000"),
        "no truncation note on the run page"
    );
}
