//! `anthropic` provider: the Messages API (`POST {base_url}/v1/messages`).

use std::time::Instant;

use async_trait::async_trait;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Value, json};

use super::common::{self, CallContext, EnvLookup, describe};
use super::{Provider, ProviderError};
use crate::model::{CallError, Completion, ProviderSpec, Request};

/// Used when a spec has no `base_url` (the loader normally fills it).
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// The API version every request declares.
pub const API_VERSION: &str = "2023-06-01";
/// `max_tokens` is required by the API; this is sent when `params` has none.
pub const DEFAULT_MAX_TOKENS: u64 = 1024;

pub struct AnthropicProvider {
    id: String,
    client: reqwest::Client,
    model: String,
    url: reqwest::Url,
    api_key: Option<HeaderValue>,
    params: serde_json::Map<String, Value>,
    ctx: CallContext,
}

impl AnthropicProvider {
    pub fn new(spec: &ProviderSpec, client: reqwest::Client) -> Result<Self, ProviderError> {
        Self::with_env(spec, client, &common::process_env())
    }

    /// As [`AnthropicProvider::new`], reading the API key through `env`.
    pub fn with_env(
        spec: &ProviderSpec,
        client: reqwest::Client,
        env: &EnvLookup,
    ) -> Result<Self, ProviderError> {
        let id = spec.id.as_str();
        let base = common::base_url(spec.base_url.as_deref(), DEFAULT_BASE_URL);
        // `https://api.anthropic.com/v1` is a common way to write the base URL too.
        let base = base.strip_suffix("/v1").unwrap_or(&base);
        let url = common::endpoint(id, base, "/v1/messages")?;
        let model = common::required_model(spec)?;
        let mut ctx = CallContext::new(id);
        ctx.max_body_bytes = common::read_limit(spec.output_cap());
        let api_key = if let Some(var) = &spec.api_key_env {
            let key = common::read_api_key(id, var, env)?;
            ctx.secrets.add(key.expose());
            ctx.auth_hint = Some(format!("check the API key in {var}"));
            Some(key.header(""))
        } else {
            ctx.auth_hint =
                Some("the server wants an API key: name its variable in `api_key_env`".into());
            None
        };
        ctx.not_found_hint = Some("check base_url and model".into());
        Ok(Self {
            id: spec.id.clone(),
            client,
            model,
            url,
            api_key,
            params: spec.params.clone(),
            ctx,
        })
    }

    /// `params` at the top level; `model`, `messages` and `system` from the request win;
    /// `max_tokens` defaults to [`DEFAULT_MAX_TOKENS`]. Messages with role `system` are moved
    /// into `system`, which is where the Messages API wants them.
    fn body(&self, request: &Request) -> Value {
        let mut body = self.params.clone();
        body.remove("stream");
        body.entry("max_tokens")
            .or_insert(json!(DEFAULT_MAX_TOKENS));
        body.insert("model".into(), Value::String(self.model.clone()));
        let mut system: Vec<&str> = request.system.iter().map(String::as_str).collect();
        let mut messages = Vec::with_capacity(request.messages.len());
        for m in &request.messages {
            if m.role == "system" {
                system.push(&m.content);
            } else {
                messages.push(json!({"role": m.role, "content": m.content}));
            }
        }
        if !system.is_empty() {
            body.insert("system".into(), Value::String(system.join("\n\n")));
        }
        body.insert("messages".into(), Value::Array(messages));
        Value::Object(body)
    }
}

/// The text of a Messages answer: its `text` blocks concatenated; tool-use blocks as JSON
/// text when there is no text at all.
fn parse_content(answer: &Value) -> Result<String, String> {
    let Some(blocks) = answer.get("content").and_then(Value::as_array) else {
        return Err(format!(
            "expected `content[].text` blocks in the answer, but it has {}",
            if answer.get("content").is_some() {
                "a `content` that is not a list".to_string()
            } else {
                format!("no `content` ({})", describe(answer))
            }
        ));
    };
    let mut text = String::new();
    let mut tools = Vec::new();
    for block in blocks {
        match block.get("type").and_then(Value::as_str) {
            Some("text") | None => {
                if let Some(t) = block.get("text").and_then(Value::as_str) {
                    text.push_str(t);
                }
            }
            Some("tool_use") => tools.push(block.clone()),
            Some(_) => {}
        }
    }
    if text.is_empty() && !tools.is_empty() {
        return Ok(Value::Array(tools).to_string());
    }
    Ok(text)
}

#[async_trait]
impl Provider for AnthropicProvider {
    fn id(&self) -> &str {
        &self.id
    }

    async fn complete(&self, request: &Request) -> Result<Completion, CallError> {
        let started = Instant::now();
        let mut http = self
            .client
            .post(self.url.clone())
            .header(HeaderName::from_static("anthropic-version"), API_VERSION)
            .json(&self.body(request));
        if let Some(key) = &self.api_key {
            http = http.header(HeaderName::from_static("x-api-key"), key.clone());
        }
        let answer = common::send_json(&self.ctx, http).await?;
        let output = parse_content(&answer).map_err(|what| self.ctx.bad_response(what))?;
        let finish_reason = common::text_at(&answer, "/stop_reason");
        Ok(common::completion(
            &answer,
            output,
            started,
            "/usage/input_tokens",
            "/usage/output_tokens",
            finish_reason,
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::common::testing::{MockServer, Reply, client, env, request};
    use super::*;
    use crate::model::{ChatMessage, ErrorKind, ProviderKind};

    const KEY: &str = "sk-ant-api03-secretsecret";

    fn answer() -> Value {
        json!({
            "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "Thirty "}, {"type": "text", "text": "days."}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 17, "output_tokens": 5}
        })
    }

    fn provider(server: &MockServer, base_suffix: &str, params: &Value) -> AnthropicProvider {
        let mut s = ProviderSpec::new("claude", ProviderKind::Anthropic);
        s.model = Some("claude-sonnet-4-5".into());
        s.base_url = Some(format!("{}{base_suffix}", server.url));
        s.api_key_env = Some("ANTHROPIC_KEY_T".into());
        s.params = params.as_object().cloned().unwrap_or_default();
        AnthropicProvider::with_env(&s, client(), &env(&[("ANTHROPIC_KEY_T", KEY)])).unwrap()
    }

    async fn fail(reply: Reply) -> CallError {
        let server = MockServer::start(reply).await;
        provider(&server, "", &json!({}))
            .complete(&request(None, &["q"]))
            .await
            .unwrap_err()
    }

    #[tokio::test]
    async fn sends_a_messages_request_and_reads_the_answer() {
        let server = MockServer::start(Reply::json(200, &answer())).await;
        let p = provider(&server, "", &json!({"temperature": 0.2}));
        let c = p
            .complete(&request(Some("Be brief."), &["Hi", "Hello!", "Refunds?"]))
            .await
            .unwrap();
        assert_eq!(c.output, "Thirty days.");
        assert_eq!((c.tokens_in, c.tokens_out), (Some(17), Some(5)));
        assert_eq!(c.finish_reason.as_deref(), Some("end_turn"));

        let seen = server.only();
        assert_eq!(
            (seen.method.as_str(), seen.path.as_str()),
            ("POST", "/v1/messages")
        );
        assert_eq!(seen.header("x-api-key").as_deref(), Some(KEY));
        assert_eq!(
            seen.header("anthropic-version").as_deref(),
            Some("2023-06-01")
        );
        assert_eq!(seen.header("authorization"), None);
        assert_eq!(
            seen.header("content-type").as_deref(),
            Some("application/json")
        );
        assert_eq!(
            seen.json(),
            json!({
                "model": "claude-sonnet-4-5", "max_tokens": 1024, "temperature": 0.2,
                "system": "Be brief.",
                "messages": [
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello!"},
                    {"role": "user", "content": "Refunds?"}
                ]
            })
        );
    }

    #[tokio::test]
    async fn max_tokens_from_params_and_system_messages_are_moved() {
        let server = MockServer::start(Reply::json(200, &answer())).await;
        let p = provider(&server, "/v1/", &json!({"max_tokens": 64, "stream": true}));
        let mut r = request(None, &["q"]);
        r.messages.insert(
            0,
            ChatMessage {
                role: "system".into(),
                content: "Rules.".into(),
            },
        );
        p.complete(&r).await.unwrap();
        let seen = server.only();
        assert_eq!(seen.path, "/v1/messages");
        let body = seen.json();
        assert_eq!(body["max_tokens"], 64);
        assert_eq!(body["system"], "Rules.");
        assert_eq!(body["messages"], json!([{"role": "user", "content": "q"}]));
        assert_eq!(body.get("stream"), None);
    }

    #[tokio::test]
    async fn overloaded_is_a_retryable_server_error() {
        let e = fail(Reply::json(
            529,
            &json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        ))
        .await;
        assert_eq!((e.kind, e.retryable), (ErrorKind::Server, true));
        assert!(e.message.contains("HTTP 529"), "{}", e.message);
        assert!(
            e.message.contains("Overloaded (overloaded_error)"),
            "{}",
            e.message
        );
    }

    #[tokio::test]
    async fn rate_limit_with_retry_after() {
        let e = fail(
            Reply::json(429, &json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}))
                .header("retry-after", "12"),
        )
        .await;
        assert_eq!((e.kind, e.retryable), (ErrorKind::RateLimited, true));
        assert_eq!(e.retry_after, Some(Duration::from_secs(12)));
    }

    #[tokio::test]
    async fn client_errors_carry_the_api_message_without_the_key() {
        let e = fail(Reply::json(
            401,
            &json!({"type": "error", "error": {"type": "authentication_error", "message": format!("invalid x-api-key {KEY}")}}),
        ))
        .await;
        assert_eq!((e.kind, e.retryable), (ErrorKind::Client, false));
        assert!(!e.message.contains(KEY), "{}", e.message);
        assert!(
            e.message
                .contains("invalid x-api-key [redacted] (authentication_error)"),
            "{}",
            e.message
        );
        assert!(e.message.contains("ANTHROPIC_KEY_T"), "{}", e.message);

        let e = fail(Reply::json(
            400,
            &json!({"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: too large"}}),
        ))
        .await;
        assert_eq!((e.kind, e.retryable), (ErrorKind::Client, false));
        assert!(e.message.contains("max_tokens: too large"), "{}", e.message);
    }

    #[tokio::test]
    async fn an_answer_without_content_is_a_bad_response() {
        let e = fail(Reply::json(200, &json!({"id": "msg", "type": "message"}))).await;
        assert_eq!((e.kind, e.retryable), (ErrorKind::BadResponse, false));
        assert!(e.message.contains("`content[].text`"), "{}", e.message);
        let e = fail(Reply::raw(200, "text/plain", "upstream connect error")).await;
        assert_eq!(e.kind, ErrorKind::BadResponse);
    }

    #[test]
    fn content_blocks() {
        let only_tool =
            json!({"content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]});
        assert!(parse_content(&only_tool).unwrap().contains("\"tool_use\""));
        let mixed = json!({"content": [{"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "A"},
                                       {"type": "tool_use", "id": "t1"}]});
        assert_eq!(parse_content(&mixed).unwrap(), "A");
        assert_eq!(parse_content(&json!({"content": []})).unwrap(), "");
        assert!(
            parse_content(&json!({"content": "x"}))
                .unwrap_err()
                .contains("not a list")
        );
    }

    #[test]
    fn setup_errors() {
        let mut s = ProviderSpec::new("claude", ProviderKind::Anthropic);
        s.model = Some("m".into());
        s.api_key_env = Some("ANTHROPIC_KEY_MISSING_U".into());
        let e = AnthropicProvider::with_env(&s, client(), &env(&[]))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("set ANTHROPIC_KEY_MISSING_U in the environment"),
            "{e}"
        );
        s.api_key_env = None;
        s.model = None;
        let e = AnthropicProvider::with_env(&s, client(), &env(&[]))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("needs `model:`"), "{e}");
    }
}
