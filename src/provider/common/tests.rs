use super::testing::{MockServer, Reply, raw_server};
use super::*;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(
            reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

#[test]
fn retry_after_delta_seconds() {
    assert_eq!(
        parse_retry_after(&headers(&[("retry-after", "7")]), now()),
        Some(Duration::from_secs(7))
    );
    assert_eq!(
        parse_retry_after(&headers(&[("retry-after", " 1.5 ")]), now()),
        Some(Duration::from_millis(1500))
    );
    assert_eq!(
        parse_retry_after(&headers(&[("retry-after", "-3")]), now()),
        None
    );
    assert_eq!(
        parse_retry_after(&headers(&[("retry-after", "soon")]), now()),
        None
    );
    assert_eq!(parse_retry_after(&HeaderMap::new(), now()), None);
}

#[test]
fn retry_after_http_dates_in_all_three_formats() {
    for date in [
        "Wed, 21 Oct 2015 07:28:30 GMT",
        "Wednesday, 21-Oct-15 07:28:30 GMT",
        "Wed Oct 21 07:28:30 2015",
    ] {
        assert_eq!(
            parse_retry_after(&headers(&[("retry-after", date)]), now()),
            Some(Duration::from_secs(30)),
            "{date}"
        );
    }
    // A date in the past: retry now.
    assert_eq!(
        parse_retry_after(
            &headers(&[("retry-after", "Wed, 21 Oct 2015 07:00:00 GMT")]),
            now()
        ),
        Some(Duration::ZERO)
    );
}

#[test]
fn retry_after_ms_wins_over_retry_after() {
    let h = headers(&[("retry-after", "20"), ("retry-after-ms", "250.5")]);
    assert_eq!(
        parse_retry_after(&h, now()),
        Some(Duration::from_micros(250_500))
    );
    let bad_ms = headers(&[("retry-after", "2"), ("retry-after-ms", "nope")]);
    assert_eq!(
        parse_retry_after(&bad_ms, now()),
        Some(Duration::from_secs(2))
    );
}

#[test]
fn short_secrets_are_hidden_only_as_whole_words() {
    let mut secrets = Secrets::default();
    secrets.add("k".to_owned());
    assert_eq!(
        secrets.redact("check key k: bearer k, k-9 k"),
        format!("check key {REDACTED}: bearer {REDACTED}, k-9 {REDACTED}")
    );
    let mut long = Secrets::default();
    long.add("sk-abcdefgh".to_owned());
    assert_eq!(long.redact("xsk-abcdefghx"), format!("x{REDACTED}x"));
}

#[test]
fn redaction_hides_every_secret_and_longest_first() {
    let mut s = Secrets::new();
    s.add("abc");
    s.add("abcdef");
    s.add("");
    assert_eq!(
        s.redact("key abcdef and abc"),
        "key [redacted] and [redacted]"
    );
    assert_eq!(s.redact("nothing here"), "nothing here");
    assert!(!format!("{s:?}").contains("abc"));
}

#[test]
fn truncate_counts_characters() {
    assert_eq!(truncate("héllo", 10), "héllo");
    assert_eq!(truncate("héllo", 2), "hé…");
    assert_eq!(truncate("", 0), "");
}

#[test]
fn error_detail_shapes() {
    let openai =
        br#"{"error":{"message":"Invalid model","type":"invalid_request_error","code":null}}"#;
    assert_eq!(
        api_error_detail(openai).unwrap(),
        "Invalid model (invalid_request_error)"
    );
    let anthropic =
        br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    assert_eq!(
        api_error_detail(anthropic).unwrap(),
        "Overloaded (overloaded_error)"
    );
    assert_eq!(
        api_error_detail(br#"{"error":"model 'x' not found"}"#).unwrap(),
        "model 'x' not found"
    );
    assert_eq!(
        api_error_detail(br#"{"detail":[{"loc":1}]}"#).unwrap(),
        r#"[{"loc":1}]"#
    );
    assert_eq!(
        api_error_detail(b"<html>\n  Bad   Gateway</html>").unwrap(),
        "<html> Bad Gateway</html>"
    );
    assert_eq!(api_error_detail(b"  "), None);
}

#[test]
fn status_mapping() {
    let mut ctx = CallContext::new("p1");
    ctx.auth_hint = Some("check the key in K".into());
    let h = headers(&[("retry-after", "3")]);
    let e = status_error(&ctx, StatusCode::TOO_MANY_REQUESTS, &h, b"{}");
    assert_eq!(
        (e.kind, e.retryable, e.retry_after),
        (ErrorKind::RateLimited, true, Some(Duration::from_secs(3)))
    );
    assert!(
        e.message.starts_with("call provider `p1`: HTTP 429"),
        "{}",
        e.message
    );

    let e = status_error(&ctx, StatusCode::from_u16(529).unwrap(), &h, b"");
    assert_eq!((e.kind, e.retryable), (ErrorKind::Server, true));
    assert!(e.message.contains("529 Overloaded"), "{}", e.message);

    let e = status_error(
        &ctx,
        StatusCode::UNAUTHORIZED,
        &h,
        br#"{"error":{"message":"bad key"}}"#,
    );
    assert_eq!(
        (e.kind, e.retryable, e.retry_after),
        (ErrorKind::Client, false, None)
    );
    assert_eq!(
        e.message,
        "call provider `p1`: HTTP 401 Unauthorized: bad key; check the key in K"
    );

    let e = status_error(&ctx, StatusCode::REQUEST_TIMEOUT, &HeaderMap::new(), b"");
    assert_eq!((e.kind, e.retryable), (ErrorKind::Timeout, true));
    let e = status_error(
        &ctx,
        StatusCode::UNPROCESSABLE_ENTITY,
        &HeaderMap::new(),
        b"{\"detail\":\"bad field\"}",
    );
    assert_eq!((e.kind, e.retryable), (ErrorKind::Client, false));
    assert!(
        e.message
            .ends_with("HTTP 422 Unprocessable Entity: bad field"),
        "{}",
        e.message
    );

    let e = status_error(&ctx, StatusCode::FOUND, &HeaderMap::new(), b"");
    assert_eq!((e.kind, e.retryable), (ErrorKind::BadResponse, false));
}

#[test]
fn quota_exhaustion_is_not_retryable() {
    let body =
        br#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota"}}"#;
    let e = status_error(
        &CallContext::new("p"),
        StatusCode::TOO_MANY_REQUESTS,
        &HeaderMap::new(),
        body,
    );
    assert_eq!(e.kind, ErrorKind::RateLimited);
    assert!(!e.retryable);
    assert!(e.message.contains("out of quota"), "{}", e.message);
}

#[test]
fn long_bodies_are_cut_after_redaction() {
    let mut ctx = CallContext::new("p");
    ctx.secrets.add("sk-SECRETSECRET");
    // The secret straddles the cut point: it must not leave a prefix behind.
    let body = format!(
        "{}sk-SECRETSECRET{}",
        "x".repeat(MAX_DETAIL_CHARS - 5),
        "y".repeat(1000)
    );
    let e = status_error(
        &ctx,
        StatusCode::BAD_REQUEST,
        &HeaderMap::new(),
        body.as_bytes(),
    );
    assert!(!e.message.contains("sk-SEC"), "{}", e.message);
    assert!(
        e.message.len() < MAX_DETAIL_CHARS + 100,
        "{}",
        e.message.len()
    );
    assert!(e.message.ends_with('…'));
}

#[test]
fn json_body_errors_say_what_was_expected() {
    let ctx = CallContext::new("p");
    let html = headers(&[("content-type", "text/html")]);
    let e = parse_json_body(&ctx, &html, b"<html>hi</html>").unwrap_err();
    assert_eq!((e.kind, e.retryable), (ErrorKind::BadResponse, false));
    assert!(
        e.message.contains("content type `text/html`"),
        "{}",
        e.message
    );
    // A wrong content type that still parses is fine.
    assert_eq!(parse_json_body(&ctx, &html, b"{\"a\":1}").unwrap()["a"], 1);
    let e = parse_json_body(&ctx, &HeaderMap::new(), b"{\"a\": [1, 2").unwrap_err();
    assert!(e.message.contains("ends early"), "{}", e.message);
    let e = parse_json_body(&ctx, &HeaderMap::new(), b"").unwrap_err();
    assert!(e.message.contains("empty"), "{}", e.message);
}

#[test]
fn api_keys_are_read_once_and_never_shown() {
    let env = testing::env(&[
        ("K_SET", "  sk-123\n"),
        ("K_EMPTY", " "),
        ("K_BAD", "a\u{1}b"),
    ]);
    assert_eq!(read_api_key("p", "K_SET", &env).unwrap().expose(), "sk-123");
    let e = read_api_key("p", "K_MISSING", &env).err().unwrap();
    assert!(
        e.to_string().contains("set K_MISSING in the environment"),
        "{e}"
    );
    assert!(e.to_string().contains("`p`"), "{e}");
    assert!(
        read_api_key("p", "K_EMPTY", &env)
            .err()
            .unwrap()
            .to_string()
            .contains("empty")
    );
    let e = read_api_key("p", "K_BAD", &env).err().unwrap().to_string();
    assert!(e.contains("HTTP header") && !e.contains("a\u{1}b"), "{e}");
    let header = read_api_key("p", "K_SET", &env).unwrap().header("Bearer ");
    assert!(header.is_sensitive());
    assert_eq!(header.to_str().unwrap(), "Bearer sk-123");
}

#[test]
fn descriptions_of_unexpected_answers() {
    assert_eq!(
        describe(&serde_json::json!({"id": 1, "object": "x"})),
        "keys `id`, `object`"
    );
    assert_eq!(
        describe(&serde_json::json!({"error": {"message": "busy"}})),
        "it is an error: busy"
    );
    assert_eq!(describe(&serde_json::json!([])), "a list");
    assert_eq!(describe(&serde_json::json!({})), "an empty object");
}

#[test]
fn counts() {
    assert_eq!(as_count(Some(&serde_json::json!(12))), Some(12));
    assert_eq!(as_count(Some(&serde_json::json!(12.0))), Some(12));
    assert_eq!(as_count(Some(&serde_json::json!("7"))), Some(7));
    assert_eq!(as_count(Some(&serde_json::json!(-1))), None);
    assert_eq!(as_count(Some(&serde_json::json!(1.5))), None);
    assert_eq!(as_count(None), None);
}

#[test]
fn base_urls_lose_trailing_slashes() {
    assert_eq!(base_url(Some("http://h/v1/"), "d"), "http://h/v1");
    assert_eq!(base_url(Some("  "), "http://d"), "http://d");
    assert_eq!(base_url(None, "http://d/"), "http://d");
}

#[tokio::test]
async fn send_json_maps_transport_and_truncation() {
    let client = testing::client();
    let ctx = CallContext::new("p");
    // Nothing listens on a freshly closed port.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = send_json(
        &ctx,
        client
            .post(format!("http://127.0.0.1:{port}/x?secret=1"))
            .json(&1),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (e.kind, e.retryable),
        (ErrorKind::Transport, true),
        "{}",
        e.message
    );
    assert!(
        e.message.contains(&format!("127.0.0.1:{port}/x")),
        "{}",
        e.message
    );
    assert!(!e.message.contains("secret=1"), "{}", e.message);

    let (url, _task) = raw_server(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"choices\": [",
        )
        .await;
    let e = send_json(&ctx, client.post(&url).json(&1))
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.retryable),
        (ErrorKind::BadResponse, false),
        "{}",
        e.message
    );
    assert!(e.message.contains("cut off"), "{}", e.message);
}

#[tokio::test]
async fn send_json_reads_error_statuses_and_json() {
    let client = testing::client();
    let ctx = CallContext::new("p");
    let server = MockServer::start_with(|seen| {
        if seen.path == "/ok" {
            Reply::json(200, &serde_json::json!({"fine": true}))
        } else {
            Reply::json(503, &serde_json::json!({"error": "warming up"})).header("retry-after", "4")
        }
    })
    .await;
    let v = send_json(&ctx, client.get(format!("{}/ok", server.url)))
        .await
        .unwrap();
    assert_eq!(v["fine"], true);
    let e = send_json(&ctx, client.get(format!("{}/down", server.url)))
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.retryable, e.retry_after),
        (ErrorKind::Server, true, Some(Duration::from_secs(4)))
    );
    assert!(
        e.message
            .contains("HTTP 503 Service Unavailable: warming up"),
        "{}",
        e.message
    );
}
