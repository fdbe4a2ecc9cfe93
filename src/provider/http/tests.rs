use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::super::common::testing::{MockServer, Reply, client, env, request};
use super::*;
use crate::model::{ErrorKind, ProviderKind};

fn spec(url: &str, headers: &[(&str, &str)], body: Option<Value>, output: &str) -> ProviderSpec {
    let mut s = ProviderSpec::new("svc", ProviderKind::Http);
    s.http = Some(HttpSpec {
        method: "post".into(),
        url: url.into(),
        headers: headers
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect(),
        body,
        output: output.into(),
        usage_in: Some("/usage/in".into()),
        usage_out: Some("/usage/out".into()),
    });
    s
}

fn ok() -> Reply {
    Reply::json(
        200,
        &json!({"data": {"answer": "Thirty days.", "list": [1, 2]}, "usage": {"in": 9, "out": "3"}}),
    )
}

fn case_request() -> Request {
    let mut r = request(Some("Be brief."), &["Refunds?"]);
    r.vars.insert("question".into(), json!("Refunds?"));
    r.vars.insert("n".into(), json!(3));
    r.vars.insert("docs".into(), json!([{"id": 1}]));
    r.case_id = "refund-window".into();
    r
}

#[tokio::test]
async fn renders_the_body_headers_and_url_and_reads_the_pointers() {
    let server = MockServer::start(ok()).await;
    let body = json!({
        "query": "Q: {{ question }}",
        "history": "{{ messages }}",
        "top_k": "{{ n }}",
        "docs": "{{docs}}",
        "system": "{{ system }}",
        "prompt": "{{ prompt }}",
        "nested": {"flags": [true, 7, null, "{{ case_id | upper }}"]},
        "text_number": "n={{ n }}",
        "newline": "{{ question }}\n"
    });
    let s = spec(
        &format!("{}/v2/ask/{{{{ case_id }}}}", server.url),
        &[
            ("Authorization", "Bearer ${SVC_TOKEN_A}"),
            ("X-Team", "${SVC_TEAM_A:-search}"),
        ],
        Some(body),
        "/data/answer",
    );
    let p = HttpProvider::with_env(&s, client(), env(&[("SVC_TOKEN_A", "tok-123")])).unwrap();
    let c = p.complete(&case_request()).await.unwrap();
    assert_eq!(c.output, "Thirty days.");
    assert_eq!((c.tokens_in, c.tokens_out), (Some(9), Some(3)));

    let seen = server.only();
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("POST", "/v2/ask/refund-window")
    );
    assert_eq!(
        seen.header("authorization").as_deref(),
        Some("Bearer tok-123")
    );
    assert_eq!(seen.header("x-team").as_deref(), Some("search"));
    assert_eq!(
        seen.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        seen.json(),
        json!({
            "query": "Q: Refunds?",
            "history": [{"role": "user", "content": "Refunds?"}],
            "top_k": 3,
            "docs": [{"id": 1}],
            "system": "Be brief.",
            "prompt": "Be brief.\n\nRefunds?",
            "nested": {"flags": [true, 7, null, "REFUND-WINDOW"]},
            "text_number": "n=3",
            "newline": "Refunds?\n"
        })
    );
}

#[tokio::test]
async fn headers_expand_at_call_time() {
    let server = MockServer::start(ok()).await;
    let values: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let lookup = values.clone();
    let env: EnvLookup = Arc::new(move |k: &str| lookup.lock().unwrap().get(k).cloned());
    let s = spec(
        &server.url,
        &[("X-Key", "${SVC_KEY_B}")],
        None,
        "/data/answer",
    );
    // Building the provider does not need the variable...
    let p = HttpProvider::with_env(&s, client(), env).unwrap();
    // ...calling it does, and fails before sending anything.
    let e = p.complete(&case_request()).await.unwrap_err();
    assert_eq!((e.kind, e.retryable), (ErrorKind::Config, false));
    assert!(
        e.message.contains("set SVC_KEY_B in the environment"),
        "{}",
        e.message
    );
    assert!(server.seen().is_empty());

    values
        .lock()
        .unwrap()
        .insert("SVC_KEY_B".into(), "first".into());
    p.complete(&case_request()).await.unwrap();
    values
        .lock()
        .unwrap()
        .insert("SVC_KEY_B".into(), "second".into());
    p.complete(&case_request()).await.unwrap();
    let seen = server.seen();
    assert_eq!(seen[0].header("x-key").as_deref(), Some("first"));
    assert_eq!(seen[1].header("x-key").as_deref(), Some("second"));
    // No body configured on a POST: the prompt is sent.
    assert_eq!(seen[0].json(), json!({"prompt": "Be brief.\n\nRefunds?"}));
}

#[tokio::test]
async fn headers_read_the_real_process_environment() {
    let Ok(path) = std::env::var("PATH") else {
        return;
    };
    let server = MockServer::start(ok()).await;
    let s = spec(&server.url, &[("X-Path", "${PATH}")], None, "/data/answer");
    let p = HttpProvider::new(&s, client()).unwrap();
    p.complete(&case_request()).await.unwrap();
    assert_eq!(server.only().header("x-path"), Some(path));
}

#[tokio::test]
async fn header_secrets_echoed_by_the_server_are_redacted() {
    let server = MockServer::start_with(|seen| {
        let key = seen.header("x-api-key").unwrap_or_default();
        Reply::json(
            403,
            &json!({"error": {"message": format!("key {key} is revoked")}}),
        )
    })
    .await;
    let s = spec(
        &server.url,
        &[("X-Api-Key", "${SVC_KEY_C}")],
        None,
        "/data/answer",
    );
    let p = HttpProvider::with_env(&s, client(), env(&[("SVC_KEY_C", "live-9f8e7d6c")])).unwrap();
    let e = p.complete(&case_request()).await.unwrap_err();
    assert_eq!((e.kind, e.retryable), (ErrorKind::Client, false));
    assert!(!e.message.contains("live-9f8e7d6c"), "{}", e.message);
    assert!(
        e.message.contains("key [redacted] is revoked"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn output_pointer_shapes() {
    let server = MockServer::start(ok()).await;
    let call = |output: &str| {
        let s = spec(&server.url, &[], None, output);
        async move {
            HttpProvider::with_env(&s, client(), env(&[]))
                .unwrap()
                .complete(&case_request())
                .await
        }
    };
    assert_eq!(call("/data/list").await.unwrap().output, "[1,2]");
    assert!(
        call("")
            .await
            .unwrap()
            .output
            .contains("\"answer\":\"Thirty days.\"")
    );
    let e = call("/data/reply").await.unwrap_err();
    assert_eq!((e.kind, e.retryable), (ErrorKind::BadResponse, false));
    assert!(e.message.contains("`/data/reply`"), "{}", e.message);
    assert!(
        e.message
            .contains("`/data` has no `reply` (keys `answer`, `list`)"),
        "{}",
        e.message
    );
    let e = call("/data/list/5").await.unwrap_err();
    assert!(
        e.message.contains("`/data/list` has no `5`"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn a_null_answer_and_server_errors() {
    let server = MockServer::start_with(|seen| {
        if seen.path == "/null" {
            Reply::json(200, &json!({"answer": null}))
        } else {
            Reply::raw(502, "text/html", "<h1>Bad Gateway</h1>")
        }
    })
    .await;
    let p = |path: &str| {
        let s = spec(&format!("{}{path}", server.url), &[], None, "/answer");
        HttpProvider::with_env(&s, client(), env(&[])).unwrap()
    };
    let e = p("/null").complete(&case_request()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadResponse);
    assert!(e.message.contains("null"), "{}", e.message);
    let e = p("/down").complete(&case_request()).await.unwrap_err();
    assert_eq!((e.kind, e.retryable), (ErrorKind::Server, true));
    assert!(
        e.message
            .contains("HTTP 502 Bad Gateway: <h1>Bad Gateway</h1>"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn get_sends_no_body_and_undefined_variables_fail_the_call() {
    let server = MockServer::start(ok()).await;
    let mut s = spec(&format!("{}/q", server.url), &[], None, "/data/answer");
    if let Some(h) = s.http.as_mut() {
        h.method = "GET".into();
    }
    HttpProvider::with_env(&s, client(), env(&[]))
        .unwrap()
        .complete(&case_request())
        .await
        .unwrap();
    let seen = server.only();
    assert_eq!(seen.method, "GET");
    assert!(seen.body.is_empty());

    let s = spec(
        &server.url,
        &[],
        Some(json!({"q": ["{{ nope }}"]})),
        "/data/answer",
    );
    let e = HttpProvider::with_env(&s, client(), env(&[]))
        .unwrap()
        .complete(&case_request())
        .await
        .unwrap_err();
    assert_eq!((e.kind, e.retryable), (ErrorKind::Config, false));
    assert!(e.message.contains("`/q/0`"), "{}", e.message);
    let s = spec(
        &server.url,
        &[],
        Some(json!({"q": "x {{ nope }}"})),
        "/data/answer",
    );
    let e = HttpProvider::with_env(&s, client(), env(&[]))
        .unwrap()
        .complete(&case_request())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config);
    assert_eq!(server.seen().len(), 1);
}

#[test]
fn setup_errors() {
    let build = |s: &ProviderSpec| {
        HttpProvider::with_env(s, client(), env(&[]))
            .err()
            .map(|e| e.to_string())
    };
    let base = || spec("http://127.0.0.1:9/x", &[], None, "/a");
    assert_eq!(build(&base()), None);
    let mut s = base();
    s.http = None;
    assert!(build(&s).is_some());
    let edit = |f: &dyn Fn(&mut HttpSpec)| {
        let mut s = base();
        f(s.http.as_mut().unwrap());
        build(&s).unwrap_or_default()
    };
    assert!(edit(&|h| h.method = "PO ST".into()).contains("not an HTTP method"));
    assert!(edit(&|h| h.output = "data.answer".into()).contains("not a JSON pointer"));
    assert!(edit(&|h| h.usage_in = Some("usage".into())).contains("`usage_in: usage`"));
    assert!(edit(&|h| h.body = Some(json!({"a": {"b": "{{ x "}}))).contains("`/a/b`"));
    assert!(edit(&|h| h.url = "not a url".into()).contains("not a valid URL"));
    assert!(edit(&|h| h.url = String::new()).contains("needs `url:`"));
    let bad_header = |k: &str, v: &str| {
        let mut s = base();
        s.http.as_mut().unwrap().headers.insert(k.into(), v.into());
        build(&s).unwrap_or_default()
    };
    assert!(bad_header("Bad Name", "x").contains("header name"));
    assert!(bad_header("X-A", "${OPEN").contains("closing"));
    assert!(bad_header("X-A", "${1X}").contains("not a valid variable reference"));
}

#[test]
fn env_reference_parsing_and_expansion() {
    let segs = parse_env_refs("a $b ${X}-${Y:-d:e}").unwrap();
    assert_eq!(
        segs,
        vec![
            Segment::Text("a $b ".into()),
            Segment::Var {
                name: "X".into(),
                default: None
            },
            Segment::Text("-".into()),
            Segment::Var {
                name: "Y".into(),
                default: Some("d:e".into())
            },
        ]
    );
    let e = env(&[("X", "1"), ("Y", "")]);
    assert_eq!(
        expand_env(&segs, &e).unwrap(),
        ("a $b 1-d:e".into(), vec!["1".into()])
    );
    assert_eq!(
        expand_env(&parse_env_refs("${Z}").unwrap(), &e).unwrap_err(),
        "Z"
    );
}

#[test]
fn single_expressions() {
    assert_eq!(single_expression("{{ messages }}"), Some("messages"));
    assert_eq!(single_expression("{{- n -}}"), Some("n"));
    assert_eq!(single_expression(" {{ n }}"), None);
    assert_eq!(single_expression("{{ a }} {{ b }}"), None);
    assert_eq!(single_expression("x {{ a }}"), None);
    assert_eq!(single_expression("{{ }}"), None);
}

#[test]
fn json_round_trips_through_template_values() {
    let v = json!({"a": [1, -2, 2.5, "s", null, true, {"b": []}], "big": u64::MAX});
    assert_eq!(to_json(&to_template_value(&v)).unwrap(), v);
    assert!(to_json(&minijinja::Value::UNDEFINED).is_err());
}
