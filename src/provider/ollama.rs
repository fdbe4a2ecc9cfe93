//! `ollama` provider: Ollama's native chat API (`POST {base_url}/api/chat`, not streamed).

use std::time::Instant;

use async_trait::async_trait;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde_json::{Map, Value, json};

use super::common::{self, CallContext, EnvLookup, describe};
use super::{Provider, ProviderError};
use crate::model::{CallError, Completion, ProviderSpec, Request};

/// Used when a spec has no `base_url` (the loader normally fills it).
pub const DEFAULT_BASE_URL: &str = "http://localhost:11434";

/// `params` that are request fields of `/api/chat` rather than model options.
const TOP_LEVEL_PARAMS: [&str; 4] = ["format", "keep_alive", "think", "tools"];

pub struct OllamaProvider {
    id: String,
    client: reqwest::Client,
    model: String,
    url: reqwest::Url,
    /// For an Ollama behind an authenticating proxy.
    auth: Option<HeaderValue>,
    params: Map<String, Value>,
    ctx: CallContext,
}

impl OllamaProvider {
    pub fn new(spec: &ProviderSpec, client: reqwest::Client) -> Result<Self, ProviderError> {
        Self::with_env(spec, client, &common::process_env())
    }

    /// As [`OllamaProvider::new`], reading the optional API key through `env`.
    pub fn with_env(
        spec: &ProviderSpec,
        client: reqwest::Client,
        env: &EnvLookup,
    ) -> Result<Self, ProviderError> {
        let id = spec.id.as_str();
        let base = common::base_url(spec.base_url.as_deref(), DEFAULT_BASE_URL);
        let url = common::endpoint(id, base.as_ref(), "/api/chat")?;
        let model = common::required_model(spec)?;
        let mut ctx = CallContext::new(id);
        ctx.max_body_bytes = common::read_limit(spec.output_cap());
        let auth = match &spec.api_key_env {
            Some(var) => {
                let key = common::read_api_key(id, var, env)?;
                ctx.secrets.add(key.expose());
                ctx.auth_hint = Some(format!("check the API key in {var}"));
                Some(key.header("Bearer "))
            }
            None => None,
        };
        ctx.not_found_hint = Some(format!(
            "pull the model with `ollama pull {model}`, or check base_url"
        ));
        Ok(Self {
            id: spec.id.clone(),
            client,
            model,
            url,
            auth,
            params: spec.params.clone(),
            ctx,
        })
    }

    /// `{model, messages, stream: false, options: params}`; the few `params` that are
    /// request fields (`format`, `keep_alive`, `think`, `tools`) go at the top level.
    fn body(&self, request: &Request) -> Value {
        let mut messages = Vec::with_capacity(request.messages.len() + 1);
        if let Some(system) = &request.system {
            messages.push(json!({"role": "system", "content": system}));
        }
        messages.extend(
            request
                .messages
                .iter()
                .map(|m| json!({"role": m.role, "content": m.content})),
        );
        let mut body = Map::new();
        let mut options = Map::new();
        for (k, v) in &self.params {
            if TOP_LEVEL_PARAMS.contains(&k.as_str()) {
                body.insert(k.clone(), v.clone());
            } else if k != "stream" {
                options.insert(k.clone(), v.clone());
            }
        }
        body.insert("model".into(), Value::String(self.model.clone()));
        body.insert("messages".into(), Value::Array(messages));
        body.insert("stream".into(), Value::Bool(false));
        if !options.is_empty() {
            body.insert("options".into(), Value::Object(options));
        }
        Value::Object(body)
    }
}

/// `message.content`; tool calls as JSON text when the content is empty.
fn parse_message(answer: &Value) -> Result<String, String> {
    let Some(message) = answer.get("message").filter(|m| m.is_object()) else {
        return Err(format!(
            "expected `message.content` in the answer, but it has no `message` ({})",
            describe(answer)
        ));
    };
    match message.get("content") {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_) | Value::Null) | None
            if message.get("tool_calls").is_some_and(|c| !c.is_null()) =>
        {
            Ok(message
                .get("tool_calls")
                .map(Value::to_string)
                .unwrap_or_default())
        }
        Some(Value::String(_) | Value::Null) => Ok(String::new()),
        None => Err(format!(
            "expected `message.content` in the answer, but the message has {}",
            describe(message)
        )),
        Some(other) => Err(format!(
            "expected `message.content` as a string, but it is {}",
            describe(other)
        )),
    }
}

#[async_trait]
impl Provider for OllamaProvider {
    fn id(&self) -> &str {
        &self.id
    }

    async fn complete(&self, request: &Request) -> Result<Completion, CallError> {
        let started = Instant::now();
        let mut http = self.client.post(self.url.clone()).json(&self.body(request));
        if let Some(auth) = &self.auth {
            http = http.header(AUTHORIZATION, auth.clone());
        }
        let answer = common::send_json(&self.ctx, http).await?;
        let output = parse_message(&answer).map_err(|what| self.ctx.bad_response(what))?;
        let finish_reason = common::text_at(&answer, "/done_reason");
        Ok(common::completion(
            &answer,
            output,
            started,
            "/prompt_eval_count",
            "/eval_count",
            finish_reason,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::common::testing::{MockServer, Reply, client, env, request};
    use super::*;
    use crate::model::{ErrorKind, ProviderKind};

    fn answer() -> Value {
        json!({
            "model": "llama3.2", "created_at": "2025-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": "Thirty days."},
            "done": true, "done_reason": "stop",
            "total_duration": 123, "prompt_eval_count": 26, "eval_count": 4
        })
    }

    fn provider(server: &MockServer, params: &Value, key: Option<&str>) -> OllamaProvider {
        let mut s = ProviderSpec::new("local", ProviderKind::Ollama);
        s.model = Some("llama3.2".into());
        s.base_url = Some(format!("{}/", server.url));
        s.params = params.as_object().cloned().unwrap_or_default();
        s.api_key_env = key.map(|_| "OLLAMA_KEY_T".to_string());
        OllamaProvider::with_env(&s, client(), &env(&[("OLLAMA_KEY_T", key.unwrap_or(""))]))
            .unwrap()
    }

    async fn fail(reply: Reply) -> CallError {
        let server = MockServer::start(reply).await;
        provider(&server, &json!({}), None)
            .complete(&request(None, &["q"]))
            .await
            .unwrap_err()
    }

    #[tokio::test]
    async fn sends_a_native_chat_request_and_reads_the_answer() {
        let server = MockServer::start(Reply::json(200, &answer())).await;
        let p = provider(
            &server,
            &json!({"temperature": 0, "num_ctx": 4096, "keep_alive": "5m"}),
            None,
        );
        let c = p
            .complete(&request(Some("Be brief."), &["Refunds?"]))
            .await
            .unwrap();
        assert_eq!(c.output, "Thirty days.");
        assert_eq!((c.tokens_in, c.tokens_out), (Some(26), Some(4)));
        assert_eq!(c.finish_reason.as_deref(), Some("stop"));

        let seen = server.only();
        assert_eq!(
            (seen.method.as_str(), seen.path.as_str()),
            ("POST", "/api/chat")
        );
        assert_eq!(seen.header("authorization"), None);
        assert_eq!(
            seen.json(),
            json!({
                "model": "llama3.2", "stream": false, "keep_alive": "5m",
                "options": {"temperature": 0, "num_ctx": 4096},
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Refunds?"}
                ]
            })
        );
    }

    #[tokio::test]
    async fn no_params_no_options_and_a_key_is_a_bearer_token() {
        let server = MockServer::start(Reply::json(200, &answer())).await;
        provider(&server, &json!({}), Some("tok-1"))
            .complete(&request(None, &["q"]))
            .await
            .unwrap();
        let seen = server.only();
        assert_eq!(seen.json().get("options"), None);
        assert_eq!(
            seen.header("authorization").as_deref(),
            Some("Bearer tok-1")
        );
    }

    #[tokio::test]
    async fn errors_use_the_error_string() {
        let e = fail(Reply::json(
            404,
            &json!({"error": "model 'llama3.2' not found, try pulling it first"}),
        ))
        .await;
        assert_eq!((e.kind, e.retryable), (ErrorKind::Client, false));
        assert!(
            e.message.contains("model 'llama3.2' not found"),
            "{}",
            e.message
        );
        assert!(e.message.contains("ollama pull llama3.2"), "{}", e.message);
        let e = fail(Reply::json(
            500,
            &json!({"error": "llama runner process has terminated"}),
        ))
        .await;
        assert_eq!((e.kind, e.retryable), (ErrorKind::Server, true));
        assert!(e.message.contains("llama runner"), "{}", e.message);
    }

    #[tokio::test]
    async fn answers_without_a_message_are_bad_responses() {
        let e = fail(Reply::json(
            200,
            &json!({"model": "llama3.2", "done": true}),
        ))
        .await;
        assert_eq!((e.kind, e.retryable), (ErrorKind::BadResponse, false));
        assert!(e.message.contains("`message.content`"), "{}", e.message);
        // A streamed (NDJSON) answer is not one JSON document.
        let e = fail(Reply::raw(
            200,
            "application/x-ndjson",
            "{\"message\":{\"content\":\"a\"}}\n{\"message\":{\"content\":\"b\"}}\n",
        ))
        .await;
        assert_eq!(e.kind, ErrorKind::BadResponse);
    }

    #[test]
    fn message_shapes() {
        let tools =
            json!({"message": {"content": "", "tool_calls": [{"function": {"name": "f"}}]}});
        assert!(parse_message(&tools).unwrap().contains("\"name\":\"f\""));
        assert_eq!(
            parse_message(&json!({"message": {"content": ""}})).unwrap(),
            ""
        );
        assert!(parse_message(&json!({"message": {"role": "assistant"}})).is_err());
        assert!(
            parse_message(&json!({"message": {"content": [1]}}))
                .unwrap_err()
                .contains("a list")
        );
    }
}
