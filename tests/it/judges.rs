//! Model-assisted assertions against a loopback judge speaking the OpenAI wire format:
//! scripted grades, malformed grades, refusals and HTTP errors; the judge cache; judge and
//! rubric changes in history and on the trend page; `semantic` against an embeddings endpoint.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::support::{Project, code, json_runs, serve_on_loopback, stderr};

#[derive(Default)]
struct State {
    /// Every chat request body.
    chats: Mutex<Vec<Value>>,
    /// Every embeddings request body.
    embeds: Mutex<Vec<Value>>,
}

impl State {
    /// Chat requests whose judge prompt contains `marker`.
    fn chats_with(&self, marker: &str) -> usize {
        self.chats
            .lock()
            .expect("lock")
            .iter()
            .filter(|b| b.to_string().contains(marker))
            .count()
    }
}

fn reply(content: &str) -> Response {
    let body = json!({
        "id": "chatcmpl-j", "object": "chat.completion", "created": 1, "model": "judge",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    });
    ([("content-type", "application/json")], body.to_string()).into_response()
}

/// The answer being judged: between `<answer>` / `<submission>` tags of the judge prompt.
fn judged_text(prompt: &str) -> String {
    for tag in ["answer", "submission"] {
        let open = format!("<{tag}>\n");
        let close = format!("\n</{tag}>");
        if let Some(start) = prompt.find(&open) {
            let rest = &prompt[start + open.len()..];
            return rest[..rest.find(&close).unwrap_or(rest.len())].to_owned();
        }
    }
    String::new()
}

async fn chat(
    axum::extract::State(state): axum::extract::State<Arc<State>>,
    body: String,
) -> Response {
    let json: Value = serde_json::from_str(&body).unwrap_or_default();
    state.chats.lock().expect("lock").push(json.clone());
    let prompt = json["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_owned();
    let answer = judged_text(&prompt);
    if prompt.contains("<support>") {
        // hallucination, claim by claim
        return reply(
            "Checking claims.\n{\"claims\": [{\"claim\": \"returns take 30 days\", \"verdict\": \"supported\"}, {\"claim\": \"refunds take 90 days\", \"verdict\": \"contradicted\"}, {\"claim\": \"shipping is free\", \"verdict\": \"unsupported\"}], \"confidence\": 0.4}",
        );
    }
    if prompt.contains("<expert>") {
        let category = if answer.contains("EXTRA") {
            "superset"
        } else if answer.contains("WRONG") {
            "contradiction"
        } else {
            "same"
        };
        return reply(&format!(
            "{{\"category\": \"{category}\", \"reason\": \"compared\", \"confidence\": 0.8}}"
        ));
    }
    if answer.contains("GOOD") {
        reply(
            "Looks right.\n```json\n{\"reason\": \"meets the rubric\", \"score\": 9, \"pass\": true, \"confidence\": 0.9}\n```",
        )
    } else if answer.contains("MEH") {
        reply("Score: 8/10 at first, but it misses a step.\nGRADE: 3/10")
    } else if answer.contains("GARBAGE") {
        reply("The answer is nice and I like it.")
    } else if answer.contains("REFUSE") {
        reply("I'm sorry, but I can't help with grading that.")
    } else {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"error":{"message":"judge exploded"}}"#,
        )
            .into_response()
    }
}

async fn embeddings(
    axum::extract::State(state): axum::extract::State<Arc<State>>,
    body: String,
) -> Response {
    let json: Value = serde_json::from_str(&body).unwrap_or_default();
    state.embeds.lock().expect("lock").push(json.clone());
    let vec_of = |t: &str| -> Vec<f64> {
        if t.contains("cat") {
            vec![1.0, 0.0]
        } else if t.contains("kitten") {
            vec![0.9, 0.1]
        } else {
            vec![0.0, 1.0]
        }
    };
    let data: Vec<Value> = json["input"]
        .as_array()
        .map(|a| a.iter().enumerate().map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": vec_of(t.as_str().unwrap_or_default())})).collect())
        .unwrap_or_default();
    let body = json!({"object": "list", "data": data, "model": "emb-1", "usage": {"prompt_tokens": 4, "total_tokens": 4}});
    ([("content-type", "application/json")], body.to_string()).into_response()
}

fn serve() -> (String, Arc<State>) {
    let state = Arc::new(State::default());
    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/embeddings", post(embeddings))
        .with_state(Arc::clone(&state));
    (format!("http://{}/v1", serve_on_loopback(app)), state)
}

fn config(p: &Project, base: &str, model: &str) {
    p.write(
        "evalwatch.yaml",
        &format!(
            "providers:\n  - id: bot\n    type: echo\n  - id: judge\n    type: openai\n    model: {model}\n    base_url: {base}\n    retries: {{max: 1, base_delay: 10ms, max_delay: 20ms}}\n    pricing: {{input_per_mtok: 1.0, output_per_mtok: 2.0}}\n  - id: emb\n    type: openai\n    model: emb-1\n    base_url: {base}\njudge: judge\n"
        ),
    );
}

fn run_json(p: &Project) -> Value {
    let o = p
        .cmd()
        .env("OPENAI_API_KEY", "sk-test")
        .args(["run", "--format", "json"])
        .output()
        .expect("run");
    let c = code(&o);
    assert!(c == 0 || c == 1, "exit {c}: {}", stderr(&o));
    json_runs(&o).into_iter().next().expect("one run")
}

fn case<'a>(run: &'a Value, id: &str) -> &'a Value {
    run["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| c["case_id"] == id)
        .unwrap_or_else(|| panic!("no case {id}"))
}

fn assertion<'a>(run: &'a Value, id: &str, kind: &str) -> &'a Value {
    case(run, id)["assertions"]
        .as_array()
        .expect("assertions")
        .iter()
        .find(|a| a["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {id}"))
}

const RUBRIC_SUITE: &str = "suite: graded\nproviders: [bot]\nprompt: \"{{ q }}\"\ndefaults:\n  assert:\n    - type: llm-rubric\n      rubric: RUBRIC\ncases:\n  - {id: good, vars: {q: GOOD answer}}\n  - {id: meh, vars: {q: MEH answer}}\n  - {id: garbage, vars: {q: GARBAGE answer}}\n  - {id: refuse, vars: {q: REFUSE answer}}\n  - {id: broken, vars: {q: BROKEN answer}}\n";

#[test]
fn rubric_grades_malformed_refused_and_failing_judges_then_the_cache() {
    let (base, state) = serve();
    let p = Project::new();
    config(&p, &base, "judge-1");
    p.write(
        "suites/graded.yaml",
        &RUBRIC_SUITE.replace("RUBRIC", "Answers politely."),
    );
    let run = run_json(&p);

    let good = assertion(&run, "good", "llm-rubric");
    assert_eq!(case(&run, "good")["status"], "passed", "{good}");
    assert_eq!(good["score"], 0.9);
    let d = &good["details"];
    assert_eq!(d["judge"]["provider"], "judge");
    assert_eq!(d["judge"]["model"], "judge-1");
    assert_eq!(d["judge"]["rubric_version"], "llm-rubric/v1");
    assert_eq!(d["judge"]["rubric_hash"].as_str().map(str::len), Some(16));
    assert_eq!(d["cached"], false);
    assert_eq!(d["confidence"], 0.9);

    // The last grade line wins over the earlier one.
    assert_eq!(case(&run, "meh")["status"], "failed");
    assert_eq!(assertion(&run, "meh", "llm-rubric")["score"], 0.3);

    // Malformed, refused and failed judge answers: unscorable, never a silent 0 or 1.
    for (id, why) in [
        ("garbage", "holds no score"),
        ("refuse", "declined to grade"),
        ("broken", "failed after 2 attempts"),
    ] {
        assert_eq!(case(&run, id)["status"], "unscorable", "{id}");
        let a = assertion(&run, id, "llm-rubric");
        assert_eq!(a["pass"], false);
        let reason = a["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(why), "{id}: {reason}");
        assert_eq!(a["details"]["judge"]["model"], "judge-1", "{id}");
    }
    let reason = assertion(&run, "garbage", "llm-rubric")["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        reason.contains("nice and I like it"),
        "the raw answer excerpt: {reason}"
    );
    // Judge calls run at temperature 0 by default.
    let first = state.chats.lock().expect("lock")[0].clone();
    assert_eq!(first["temperature"], 0);
    assert_eq!(first["model"], "judge-1");
    // Two attempts for the failing judge (retries: max 1).
    assert_eq!(state.chats_with("BROKEN"), 2);
    // Judge usage is counted apart from the system under test: four answered calls of
    // 10 + 5 tokens at $1 / $2 per million (the failing judge answered nothing).
    let m = &run["providers"][0]["metrics"];
    assert_eq!(m["judge_tokens"], 60, "{m}");
    let judge_cost = m["judge_cost_usd"].as_f64().expect("judge cost");
    assert!((judge_cost - 4.0 * 20e-6).abs() < 1e-12, "{m}");
    assert_eq!(m["cost_usd"], 0.0, "the echo bot under test is free");
    assert_eq!(good["details"]["usage"]["tokens_in"], 10);

    // Second run: graded answers come from the cache; unreadable ones are asked again.
    let (good_calls, meh_calls) = (state.chats_with("GOOD"), state.chats_with("MEH"));
    assert_eq!((good_calls, meh_calls), (1, 1));
    let again = run_json(&p);
    assert_eq!(
        state.chats_with("GOOD"),
        1,
        "the cache prevents the second call"
    );
    assert_eq!(state.chats_with("MEH"), 1);
    assert_eq!(state.chats_with("GARBAGE"), 2);
    assert_eq!(
        assertion(&again, "good", "llm-rubric")["details"]["cached"],
        true
    );
    // Cached answers cost nothing: only the unreadable ones were asked again.
    assert_eq!(again["providers"][0]["metrics"]["judge_tokens"], 30);
    assert_eq!(assertion(&again, "good", "llm-rubric")["score"], 0.9);
    assert_eq!(case(&again, "meh")["status"], "failed");
    // With -v, a failed judge attempt shows like a provider's.
    let o = p
        .cmd()
        .env("OPENAI_API_KEY", "sk-test")
        .args(["-v", "run"])
        .output()
        .expect("run -v");
    let err = stderr(&o);
    assert!(
        err.contains("[judge judge] attempt 1 failed") && err.contains("giving up"),
        "{err}"
    );
}

#[test]
fn judge_and_rubric_changes_are_visible_in_history_and_on_the_trend_page() {
    let (base, _state) = serve();
    let p = Project::new();
    config(&p, &base, "judge-1");
    p.write(
        "suites/graded.yaml",
        &RUBRIC_SUITE.replace("RUBRIC", "Answers politely."),
    );
    let first = run_json(&p);
    // Same suite, another judge model: the suite hash stays, the judge changes.
    config(&p, &base, "judge-2");
    let second = run_json(&p);
    // Another rubric text: its hash changes.
    p.write(
        "suites/graded.yaml",
        &RUBRIC_SUITE.replace("RUBRIC", "Answers briefly."),
    );
    let third = run_json(&p);

    let store = evalwatch::store::Store::open(&p.db()).expect("store");
    let sig = |run: &Value| {
        let id = run["run_id"].as_str().expect("id");
        let s = store.run_judges(id).expect("judges");
        assert_eq!(s.len(), 1, "{s:?}");
        s[0].clone()
    };
    let (a, b, c) = (sig(&first), sig(&second), sig(&third));
    assert_eq!((a.model.as_str(), b.model.as_str()), ("judge-1", "judge-2"));
    assert_eq!(a.rubric_hash, b.rubric_hash);
    assert_ne!(b.rubric_hash, c.rubric_hash);
    assert_eq!(a.rubric_version, "llm-rubric/v1");
    assert_eq!(first["suite"], second["suite"]);

    let page = std::fs::read_to_string(p.path().join("reports/graded.html")).expect("suite page");
    assert!(
        page.contains("judge or rubric changed"),
        "no judge marker on the trend page"
    );
    assert!(page.contains("judge/judge-1"), "old judge named");
    assert!(page.contains("judge/judge-2"), "new judge named");
    assert!(page.contains(&c.rubric_hash), "new rubric hash named");
}

#[test]
fn factuality_and_hallucination_rates() {
    let (base, _state) = serve();
    let p = Project::new();
    config(&p, &base, "judge-1");
    p.write(
        "suites/facts.yaml",
        "suite: facts\nproviders: [bot]\nprompt: \"{{ q }}\"\ncases:\n  - id: same\n    vars: {q: returns take 30 days}\n    expected: 30 days\n    assert: [{type: factuality}]\n  - id: extra\n    vars: {q: EXTRA returns take 30 days and shipping is free}\n    expected: 30 days\n    assert: [{type: factuality}]\n  - id: wrong\n    vars: {q: WRONG returns take 90 days}\n    expected: 30 days\n    assert: [{type: factuality, scores: {contradiction: 0}}]\n  - id: claims\n    vars: {q: returns take 30 days, refunds take 90 days, shipping is free}\n    expected: 30 days\n    context: [Returns are accepted within 30 days.]\n    assert: [{type: hallucination, method: judge, max: 0.2}]\n  - id: lexical\n    vars: {q: returns take 30 days}\n    expected: returns take 30 days\n    assert: [{type: hallucination}]\n",
    );
    let run = run_json(&p);
    let category = |id: &str| {
        assertion(&run, id, "factuality")["details"]["category"]
            .as_str()
            .map(str::to_owned)
    };
    assert_eq!(category("same").as_deref(), Some("same"));
    assert_eq!(category("extra").as_deref(), Some("superset"));
    assert_eq!(category("wrong").as_deref(), Some("contradiction"));
    assert_eq!(
        assertion(&run, "extra", "factuality")["score"],
        0.5,
        "a superset is partial"
    );
    assert_eq!(case(&run, "wrong")["status"], "failed");

    let halluc = assertion(&run, "claims", "hallucination");
    assert_eq!(halluc["pass"], false);
    let d = &halluc["details"];
    assert_eq!(d["method"], "judge");
    assert_eq!(d["category"], "contradiction");
    assert_eq!(d["unsupported"][0]["text"], "shipping is free");
    assert_eq!(d["contradictions"][0]["text"], "refunds take 90 days");
    assert!((d["score"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(d["confidence"], 0.4);
    assert_eq!(d["judge"]["rubric_version"], "hallucination/v1");

    let lexical = assertion(&run, "lexical", "hallucination");
    assert_eq!(lexical["pass"], true, "{lexical}");
    assert_eq!(lexical["details"]["method"], "lexical");
    assert!(
        lexical["details"].get("judge").is_none(),
        "no judge for the lexical pass"
    );

    // Five results carry a decided check: extra (superset), wrong (contradiction) and
    // claims (contradiction and unsupported) are hallucinated.
    let m = &run["providers"][0]["metrics"];
    assert!(
        (m["hallucination_rate"].as_f64().unwrap() - 3.0 / 5.0).abs() < 1e-9,
        "{m}"
    );
    assert!(
        (m["contradiction_rate"].as_f64().unwrap() - 2.0 / 5.0).abs() < 1e-9,
        "{m}"
    );
    assert!(
        (m["unsupported_rate"].as_f64().unwrap() - 2.0 / 5.0).abs() < 1e-9,
        "{m}"
    );
}

#[test]
fn semantic_cosine_from_the_embeddings_endpoint_is_cached() {
    let (base, state) = serve();
    let p = Project::new();
    config(&p, &base, "judge-1");
    p.write(
        "suites/sem.yaml",
        "suite: sem\nproviders: [bot]\nprompt: \"{{ q }}\"\ndefaults:\n  assert: [{type: semantic, provider: emb, value: a cat}]\ncases:\n  - {id: near, vars: {q: a kitten}}\n  - {id: far, vars: {q: a dog}}\n",
    );
    let run = run_json(&p);
    let near = assertion(&run, "near", "semantic");
    let cos = near["details"]["cosine"].as_f64().expect("cosine");
    assert!((cos - 0.9 / 0.82f64.sqrt()).abs() < 1e-9, "{cos}");
    assert_eq!(near["pass"], true);
    assert_eq!(near["details"]["judge"]["model"], "emb-1");
    assert_eq!(case(&run, "far")["status"], "failed");
    assert_eq!(assertion(&run, "far", "semantic")["score"], 0.0);
    let calls = state.embeds.lock().expect("lock").len();
    assert_eq!(calls, 2);
    assert_eq!(state.embeds.lock().expect("lock")[0]["model"], "emb-1");
    let again = run_json(&p);
    assert_eq!(
        state.embeds.lock().expect("lock").len(),
        2,
        "cached: no second call"
    );
    assert_eq!(
        assertion(&again, "near", "semantic")["details"]["cached"],
        true
    );
}

#[test]
fn validate_reports_judge_problems_at_their_place() {
    let p = Project::new();
    p.write("evalwatch.yaml", "providers:\n  - {id: bot, type: echo}\n");
    p.write(
        "suites/s.yaml",
        "suite: s\nproviders: [bot]\nprompt: hi\ncases:\n  - id: a\n    expected: x\n    assert:\n      - type: factuality\n      - type: semantic\n        provider: bot\n      - type: hallucination\n        method: judge\n        provider: jduge\n",
    );
    let o = p.run(&["validate"]);
    assert_eq!(code(&o), 2);
    let err = format!("{}{}", crate::support::stdout(&o), stderr(&o));
    assert!(
        err.contains("s.yaml:8:9: `factuality` needs a judge"),
        "{err}"
    );
    assert!(
        err.contains("s.yaml:9:9: `semantic` needs an embeddings endpoint"),
        "{err}"
    );
    assert!(
        err.contains("s.yaml:11:9: judge provider `jduge` of `hallucination` is not defined"),
        "{err}"
    );
}

#[test]
fn shipped_example_judges_offline_with_recorded_verdicts() {
    let p = Project::examples();
    let o = p.run(&["run", "suites/support-faq.yaml", "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let run = json_runs(&o).into_iter().next().expect("run");
    let lexical = assertion(&run, "refund-window", "hallucination");
    assert_eq!(lexical["details"]["method"], "lexical");
    assert!(lexical["details"]["unsupported"].is_array(), "{lexical}");
    assert!(lexical["details"]["score"].is_number(), "{lexical}");
    let fact = assertion(&run, "refund-window", "factuality");
    assert_eq!(fact["details"]["category"], "superset");
    assert_eq!(fact["details"]["judge"]["provider"], "policy-judge");
    assert_eq!(fact["score"], 0.5);
    let m = &run["providers"][0]["metrics"];
    assert_eq!(m["unsupported_rate"], 1.0, "{m}");
    assert_eq!(m["contradiction_rate"], 0.0, "{m}");
}

#[test]
fn both_sends_a_share_of_unflagged_outputs_to_the_judge_and_support_chooses_the_sources() {
    let (base, state) = serve();
    let p = Project::new();
    config(&p, &base, "judge-1");
    // The echo provider answers with the prompt, so every output repeats its question.
    p.write(
        "suites/both.yaml",
        "suite: both\nproviders: [bot]\nprompt: \"{{ q }}\"\ncases:\n  - id: sampled\n    vars: {q: SAMPLED returns take 30 days}\n    expected: SAMPLED returns take 30 days\n    assert: [{type: hallucination, method: both, judge_share: 1}]\n  - id: unsampled\n    vars: {q: UNSAMPLED returns take 30 days}\n    expected: UNSAMPLED returns take 30 days\n    assert: [{type: hallucination, method: both, judge_share: 0}]\n  - id: echoed-number\n    vars: {q: returns take 90 days}\n    expected: returns take 30 days\n    assert: [{type: hallucination, max: 0}]\n  - id: prompt-supports\n    vars: {q: returns take 90 days}\n    expected: returns take 30 days\n    assert: [{type: hallucination, max: 0, support: [expected, prompt]}]\n",
    );
    let run = run_json(&p);
    // judge_share: 1 sends the clean output to the judge, which decides (and finds the
    // scripted contradiction); the lexical pass is kept beside it, marked as sampled.
    let sampled = assertion(&run, "sampled", "hallucination");
    assert_eq!(
        sampled["details"]["judge"]["rubric_version"], "hallucination/v1",
        "{sampled}"
    );
    assert_eq!(sampled["details"]["lexical"]["sampled"], true, "{sampled}");
    assert_eq!(sampled["details"]["lexical"]["score"], 0.0, "{sampled}");
    assert_eq!(sampled["pass"], false, "{sampled}");
    assert_eq!(state.chats_with("SAMPLED returns"), 1);
    // judge_share: 0 keeps the old behaviour: nothing flagged, no judge.
    let unsampled = assertion(&run, "unsampled", "hallucination");
    assert_eq!(unsampled["pass"], true, "{unsampled}");
    assert!(unsampled["details"].get("judge").is_none(), "{unsampled}");
    assert_eq!(state.chats_with("UNSAMPLED"), 0);
    // By default the question supports no number: "90" copied from it is unsupported.
    let echoed = assertion(&run, "echoed-number", "hallucination");
    assert_eq!(echoed["pass"], false, "{echoed}");
    assert_eq!(
        echoed["details"]["unsupported"][0]["text"], "90",
        "{echoed}"
    );
    // `support: [expected, prompt]` makes the prompt support content again.
    let supported = assertion(&run, "prompt-supports", "hallucination");
    assert_eq!(supported["pass"], true, "{supported}");
}
