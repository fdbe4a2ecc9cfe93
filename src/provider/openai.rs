//! `openai` provider: the Chat Completions API (`POST {base_url}/chat/completions`), which
//! `OpenAI` and every compatible server (vLLM, Ollama `/v1`, llama.cpp, LM Studio) speak,
//! and Azure deployments (`azure: {deployment, api_version}`). Also the embeddings
//! endpoint, for the `semantic` assertion.

use std::time::Instant;

use async_trait::async_trait;
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
use serde_json::{Map, Value, json};

use super::common::{self, CallContext, EnvLookup, describe};
use super::{Provider, ProviderError};
use crate::model::{CallError, Completion, ProviderSpec, Request};

/// Used when a spec has no `base_url` (the loader normally fills it).
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// The vectors of one embeddings call, in the order of the inputs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Embeddings {
    pub vectors: Vec<Vec<f64>>,
    pub tokens_in: Option<u64>,
    /// Wall time of the call, ms.
    pub latency_ms: f64,
}

pub struct OpenAiProvider {
    id: String,
    client: reqwest::Client,
    model: Option<String>,
    chat_url: reqwest::Url,
    embeddings_url: reqwest::Url,
    /// The auth header, value marked sensitive. None for servers that need no key.
    auth: Option<(HeaderName, HeaderValue)>,
    params: Map<String, Value>,
    ctx: CallContext,
}

impl OpenAiProvider {
    pub fn new(spec: &ProviderSpec, client: reqwest::Client) -> Result<Self, ProviderError> {
        Self::with_env(spec, client, &common::process_env())
    }

    /// As [`OpenAiProvider::new`], reading the API key through `env`.
    pub fn with_env(
        spec: &ProviderSpec,
        client: reqwest::Client,
        env: &EnvLookup,
    ) -> Result<Self, ProviderError> {
        let id = spec.id.as_str();
        let base = common::base_url(spec.base_url.as_deref(), DEFAULT_BASE_URL);
        let parsed = reqwest::Url::parse(&base).map_err(|e| {
            ProviderError::setup(id, format!("base_url `{base}` is not a valid URL: {e}"))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ProviderError::setup(
                id,
                format!("base_url `{base}` must start with http:// or https://"),
            ));
        }
        let model = spec.model.clone().filter(|m| !m.trim().is_empty());
        let (chat_url, embeddings_url) = if let Some(azure) = &spec.azure {
            if azure.deployment.trim().is_empty() || azure.api_version.trim().is_empty() {
                return Err(ProviderError::setup(
                    id,
                    "an Azure OpenAI provider needs both `azure.deployment` and `azure.api_version`",
                ));
            }
            let endpoint = |last: &[&str]| {
                let mut url = parsed.clone();
                if let Ok(mut segments) = url.path_segments_mut() {
                    segments
                        .pop_if_empty()
                        .extend(["openai", "deployments", azure.deployment.as_str()])
                        .extend(last);
                }
                url.query_pairs_mut()
                    .append_pair("api-version", &azure.api_version);
                url
            };
            (
                endpoint(&["chat", "completions"]),
                endpoint(&["embeddings"]),
            )
        } else {
            if model.is_none() {
                return Err(ProviderError::setup(
                    id,
                    "an openai provider needs `model:`",
                ));
            }
            let join = |path: &str| {
                reqwest::Url::parse(&format!("{base}/{path}")).map_err(|e| {
                    ProviderError::setup(id, format!("base_url `{base}` is not a valid URL: {e}"))
                })
            };
            (join("chat/completions")?, join("embeddings")?)
        };

        let mut ctx = CallContext::new(id);
        ctx.max_body_bytes = common::read_limit(spec.output_cap());
        let auth = if let Some(var) = &spec.api_key_env {
            let key = common::read_api_key(id, var, env)?;
            ctx.secrets.add(key.expose());
            ctx.auth_hint = Some(format!("check the API key in {var}"));
            Some(if spec.azure.is_some() {
                (HeaderName::from_static("api-key"), key.header(""))
            } else {
                (AUTHORIZATION, key.header("Bearer "))
            })
        } else {
            ctx.auth_hint =
                Some("the server wants an API key: name its variable in `api_key_env`".into());
            None
        };
        ctx.not_found_hint = Some(if spec.azure.is_some() {
            "check base_url, azure.deployment and azure.api_version".into()
        } else {
            "check base_url and model".into()
        });
        Ok(Self {
            id: spec.id.clone(),
            client,
            model,
            chat_url,
            embeddings_url,
            auth,
            params: spec.params.clone(),
            ctx,
        })
    }

    fn post(&self, url: &reqwest::Url, body: &Value) -> reqwest::RequestBuilder {
        let mut request = self.client.post(url.clone()).json(body);
        if let Some((name, value)) = &self.auth {
            request = request.header(name.clone(), value.clone());
        }
        request
    }

    /// The request body: `params` at the top level, then `model` and `messages` (which
    /// `params` cannot override). Streaming is never requested.
    fn chat_body(&self, request: &Request) -> Value {
        let mut body = self.params.clone();
        body.remove("stream");
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
        if let Some(model) = &self.model {
            body.insert("model".into(), Value::String(model.clone()));
        }
        body.insert("messages".into(), Value::Array(messages));
        Value::Object(body)
    }

    /// Embed `inputs` with the provider's model (`POST {base_url}/embeddings`). The vectors
    /// come back in the order of `inputs`, whatever order the server lists them in.
    pub async fn embed(&self, inputs: &[String]) -> Result<Embeddings, CallError> {
        if inputs.is_empty() {
            return Ok(Embeddings::default());
        }
        let started = Instant::now();
        let mut body = Map::new();
        if let Some(model) = &self.model {
            body.insert("model".into(), Value::String(model.clone()));
        }
        body.insert("input".into(), json!(inputs));
        let answer = common::send_json(
            &self.ctx,
            self.post(&self.embeddings_url, &Value::Object(body)),
        )
        .await?;
        let vectors =
            parse_embeddings(&answer, inputs.len()).map_err(|what| self.ctx.bad_response(what))?;
        Ok(Embeddings {
            vectors,
            tokens_in: common::as_count(answer.pointer("/usage/prompt_tokens")),
            latency_ms: common::elapsed_ms(started),
        })
    }
}

/// The text of `choices[0]` of a Chat Completions answer: `message.content` as a string or
/// as a list of parts with `text`; `message.refusal` when the content is null; tool calls as
/// JSON text when that is all there is; a legacy `text` field.
fn parse_choice(answer: &Value) -> Result<(String, Option<String>), String> {
    const EXPECTED: &str = "expected `choices[0].message.content` in the answer";
    let Some(choice) = answer
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
    else {
        return Err(format!(
            "{EXPECTED}, but it has no `choices` ({})",
            describe(answer)
        ));
    };
    let finish = choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .map(str::to_string);
    let Some(message) = choice.get("message").filter(|m| m.is_object()) else {
        if let Some(text) = choice.get("text").and_then(Value::as_str) {
            return Ok((text.to_string(), finish));
        }
        return Err(format!(
            "{EXPECTED}, but `choices[0]` has no `message` ({})",
            describe(choice)
        ));
    };
    let text = match message.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => {
            let mut out = String::new();
            for part in parts {
                match part {
                    Value::String(s) => out.push_str(s),
                    Value::Object(p) => {
                        if let Some(t) = p
                            .get("text")
                            .or_else(|| p.get("refusal"))
                            .and_then(Value::as_str)
                        {
                            out.push_str(t);
                        }
                    }
                    _ => {}
                }
            }
            out
        }
        Some(Value::Null) => {
            if let Some(refusal) = message.get("refusal").and_then(Value::as_str) {
                refusal.to_string()
            } else if let Some(calls) = message.get("tool_calls").filter(|c| !c.is_null()) {
                calls.to_string()
            } else {
                String::new()
            }
        }
        None => match message.get("refusal").and_then(Value::as_str) {
            Some(refusal) => refusal.to_string(),
            None => {
                return Err(format!(
                    "{EXPECTED}, but the message has no `content` ({})",
                    describe(message)
                ));
            }
        },
        Some(other) => {
            return Err(format!(
                "{EXPECTED} as a string or a list of parts, but it is {}",
                describe(other)
            ));
        }
    };
    Ok((text, finish))
}

/// `data[i].embedding`, placed by `data[i].index` (position when absent).
fn parse_embeddings(answer: &Value, expected: usize) -> Result<Vec<Vec<f64>>, String> {
    let Some(data) = answer.get("data").and_then(Value::as_array) else {
        return Err(format!(
            "expected `data[].embedding` in the answer, but it has no `data` ({})",
            describe(answer)
        ));
    };
    if data.len() != expected {
        return Err(format!(
            "expected {expected} embeddings (one per input), got {}",
            data.len()
        ));
    }
    let mut slots: Vec<Option<Vec<f64>>> = vec![None; expected];
    for (position, item) in data.iter().enumerate() {
        let index = match item.get("index") {
            None | Some(Value::Null) => position,
            Some(v) => v
                .as_u64()
                .map(|i| i as usize)
                .filter(|i| *i < expected)
                .ok_or_else(|| {
                    format!("`data[{position}].index` is {v}, expected 0..{expected}")
                })?,
        };
        let vector = item
            .get("embedding")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("expected `data[{position}].embedding` as a list of numbers"))?
            .iter()
            .map(Value::as_f64)
            .collect::<Option<Vec<f64>>>()
            .ok_or_else(|| {
                format!("`data[{position}].embedding` holds something other than numbers")
            })?;
        if slots[index].replace(vector).is_some() {
            return Err(format!("two embeddings have index {index}"));
        }
    }
    slots
        .into_iter()
        .enumerate()
        .map(|(i, v)| v.ok_or_else(|| format!("no embedding has index {i}")))
        .collect()
}

#[async_trait]
impl Provider for OpenAiProvider {
    fn id(&self) -> &str {
        &self.id
    }

    async fn complete(&self, request: &Request) -> Result<Completion, CallError> {
        let started = Instant::now();
        let answer = common::send_json(
            &self.ctx,
            self.post(&self.chat_url, &self.chat_body(request)),
        )
        .await?;
        let (output, finish_reason) =
            parse_choice(&answer).map_err(|what| self.ctx.bad_response(what))?;
        Ok(common::completion(
            &answer,
            output,
            started,
            "/usage/prompt_tokens",
            "/usage/completion_tokens",
            finish_reason,
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::common::testing::{MockServer, Reply, client, env, request};
    use super::*;
    use crate::model::{AzureSpec, ErrorKind, ProviderKind};

    fn spec(base: &str, key_env: Option<&str>) -> ProviderSpec {
        let mut s = ProviderSpec::new("gpt", ProviderKind::Openai);
        s.model = Some("gpt-4o-mini".into());
        s.base_url = Some(format!("{base}/v1/"));
        s.api_key_env = key_env.map(str::to_string);
        s
    }

    fn ok_answer() -> Value {
        json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Thirty days.", "refusal": null},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 21, "completion_tokens": 4, "total_tokens": 25}
        })
    }

    fn provider(server: &MockServer, key: Option<&str>) -> OpenAiProvider {
        let s = spec(&server.url, key.map(|_| "OPENAI_KEY_T"));
        OpenAiProvider::with_env(&s, client(), &env(&[("OPENAI_KEY_T", key.unwrap_or(""))]))
            .unwrap()
    }

    async fn fail(reply: Reply) -> CallError {
        let server = MockServer::start(reply).await;
        provider(&server, Some("sk-test-0123456789"))
            .complete(&request(None, &["q"]))
            .await
            .unwrap_err()
    }

    #[tokio::test]
    async fn sends_a_chat_completions_request_and_reads_the_answer() {
        let server = MockServer::start(Reply::json(200, &ok_answer())).await;
        let mut s = spec(&server.url, Some("OPENAI_KEY_A"));
        s.params =
            json!({"temperature": 0, "max_tokens": 512, "stream": true, "messages": "ignored"})
                .as_object()
                .unwrap()
                .clone();
        let p =
            OpenAiProvider::with_env(&s, client(), &env(&[("OPENAI_KEY_A", "sk-abc")])).unwrap();
        let c = p
            .complete(&request(Some("Be brief."), &["Hi", "Hello!", "Refunds?"]))
            .await
            .unwrap();
        assert_eq!(c.output, "Thirty days.");
        assert_eq!((c.tokens_in, c.tokens_out), (Some(21), Some(4)));
        assert_eq!(c.finish_reason.as_deref(), Some("stop"));
        assert!(c.latency_ms > 0.0);

        let seen = server.only();
        assert_eq!(
            (seen.method.as_str(), seen.path.as_str()),
            ("POST", "/v1/chat/completions")
        );
        assert_eq!(
            seen.header("authorization").as_deref(),
            Some("Bearer sk-abc")
        );
        assert_eq!(
            seen.header("content-type").as_deref(),
            Some("application/json")
        );
        assert_eq!(
            seen.json(),
            json!({
                "model": "gpt-4o-mini", "temperature": 0, "max_tokens": 512,
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello!"},
                    {"role": "user", "content": "Refunds?"}
                ]
            })
        );
    }

    #[tokio::test]
    async fn no_key_no_auth_header() {
        let server = MockServer::start(Reply::json(200, &ok_answer())).await;
        let c = provider(&server, None)
            .complete(&request(None, &["q"]))
            .await
            .unwrap();
        assert_eq!(c.output, "Thirty days.");
        let seen = server.only();
        assert_eq!(seen.header("authorization"), None);
        assert_eq!(
            seen.json()["messages"],
            json!([{"role": "user", "content": "q"}])
        );
    }

    #[test]
    fn content_parts_refusals_and_tool_calls() {
        let parts = json!({"choices": [{"message": {"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}}]});
        assert_eq!(parse_choice(&parts).unwrap().0, "ab");
        let refusal = json!({"choices": [{"message": {"content": null, "refusal": "I can't help with that."},
                                          "finish_reason": "stop"}]});
        assert_eq!(
            parse_choice(&refusal).unwrap(),
            ("I can't help with that.".into(), Some("stop".into()))
        );
        let tools =
            json!({"choices": [{"message": {"content": null, "tool_calls": [{"id": "t"}]}}]});
        assert_eq!(parse_choice(&tools).unwrap().0, r#"[{"id":"t"}]"#);
        let legacy = json!({"choices": [{"text": "old", "finish_reason": "length"}]});
        assert_eq!(
            parse_choice(&legacy).unwrap(),
            ("old".into(), Some("length".into()))
        );
        let e =
            parse_choice(&json!({"choices": [{"message": {"role": "assistant"}}]})).unwrap_err();
        assert!(e.contains("no `content`"), "{e}");
        let e = parse_choice(&json!({"choices": [{"message": {"content": 5}}]})).unwrap_err();
        assert!(e.contains("a number"), "{e}");
        let e = parse_choice(&json!({"choices": []})).unwrap_err();
        assert!(e.contains("no `choices`"), "{e}");
    }

    #[tokio::test]
    async fn a_json_without_the_answer_is_a_bad_response() {
        let e = fail(Reply::json(
            200,
            &json!({"id": "x", "object": "chat.completion"}),
        ))
        .await;
        assert_eq!((e.kind, e.retryable), (ErrorKind::BadResponse, false));
        assert!(
            e.message.contains("`choices[0].message.content`"),
            "{}",
            e.message
        );
        assert!(e.message.contains("`gpt`"), "{}", e.message);
    }

    #[tokio::test]
    async fn html_with_200_is_a_bad_response() {
        let e = fail(Reply::raw(200, "text/html", "<html>login page</html>")).await;
        assert_eq!((e.kind, e.retryable), (ErrorKind::BadResponse, false));
        assert!(e.message.contains("text/html"), "{}", e.message);
    }

    #[tokio::test]
    async fn an_echoed_key_never_reaches_the_message() {
        let body = json!({"error": {"message": "Incorrect API key provided: sk-test-0123456789.", "type": "invalid_request_error",
                                    "code": "invalid_api_key"}});
        let e = fail(Reply::json(401, &body)).await;
        assert_eq!((e.kind, e.retryable), (ErrorKind::Client, false));
        assert!(!e.message.contains("sk-test-0123456789"), "{}", e.message);
        assert!(
            e.message
                .contains("Incorrect API key provided: [redacted]."),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("check the API key in OPENAI_KEY_T"),
            "{}",
            e.message
        );
    }

    #[tokio::test]
    async fn rate_limits_and_server_errors_are_retryable() {
        let e = fail(
            Reply::json(
                429,
                &json!({"error": {"message": "Rate limit reached", "type": "requests"}}),
            )
            .header("retry-after", "2")
            .header("retry-after-ms", "1500"),
        )
        .await;
        assert_eq!((e.kind, e.retryable), (ErrorKind::RateLimited, true));
        assert_eq!(e.retry_after, Some(Duration::from_millis(1500)));
        assert!(e.message.contains("Rate limit reached"), "{}", e.message);

        let e = fail(Reply::json(
            500,
            &json!({"error": {"message": "The server had an error"}}),
        ))
        .await;
        assert_eq!(
            (e.kind, e.retryable, e.retry_after),
            (ErrorKind::Server, true, None)
        );
        let e = fail(Reply::json(
            404,
            &json!({"error": {"message": "The model `x` does not exist"}}),
        ))
        .await;
        assert_eq!(e.kind, ErrorKind::Client);
        assert!(
            e.message.contains("check base_url and model"),
            "{}",
            e.message
        );
    }

    #[tokio::test]
    async fn azure_uses_the_deployment_url_and_api_key_header() {
        let server = MockServer::start(Reply::json(200, &ok_answer())).await;
        let mut s = ProviderSpec::new("az", ProviderKind::Openai);
        s.base_url = Some(format!("{}/", server.url));
        s.api_key_env = Some("AZURE_KEY_B".into());
        s.azure = Some(AzureSpec {
            deployment: "gpt4o-prod".into(),
            api_version: "2024-06-01".into(),
        });
        let p =
            OpenAiProvider::with_env(&s, client(), &env(&[("AZURE_KEY_B", "az-secret")])).unwrap();
        assert_eq!(
            p.complete(&request(None, &["q"])).await.unwrap().output,
            "Thirty days."
        );
        let seen = server.only();
        assert_eq!(seen.path, "/openai/deployments/gpt4o-prod/chat/completions");
        assert_eq!(seen.query.as_deref(), Some("api-version=2024-06-01"));
        assert_eq!(seen.header("api-key").as_deref(), Some("az-secret"));
        assert_eq!(seen.header("authorization"), None);
        assert_eq!(seen.json().get("model"), None);
    }

    #[tokio::test]
    async fn embeddings_come_back_in_input_order() {
        let server = MockServer::start(Reply::json(
            200,
            &json!({"object": "list", "model": "text-embedding-3-small",
                    "data": [{"object": "embedding", "index": 1, "embedding": [0.0, 1.0]},
                             {"object": "embedding", "index": 0, "embedding": [1.0, 0.5]}],
                    "usage": {"prompt_tokens": 6, "total_tokens": 6}}),
        ))
        .await;
        let p = provider(&server, Some("sk-e"));
        let e = p.embed(&["first".into(), "second".into()]).await.unwrap();
        assert_eq!(e.vectors, vec![vec![1.0, 0.5], vec![0.0, 1.0]]);
        assert_eq!(e.tokens_in, Some(6));
        let seen = server.only();
        assert_eq!(seen.path, "/v1/embeddings");
        assert_eq!(seen.header("authorization").as_deref(), Some("Bearer sk-e"));
        assert_eq!(
            seen.json(),
            json!({"model": "gpt-4o-mini", "input": ["first", "second"]})
        );
        // Nothing to embed: no call.
        assert_eq!(p.embed(&[]).await.unwrap().vectors.len(), 0);
        assert_eq!(server.seen().len(), 1);
    }

    #[test]
    fn embeddings_that_do_not_match_the_inputs_are_rejected() {
        let two = |a: Value, b: Value| json!({"data": [{"index": a, "embedding": [1.0]}, {"index": b, "embedding": [2.0]}]});
        assert!(
            parse_embeddings(&two(json!(0), json!(0)), 2)
                .unwrap_err()
                .contains("two embeddings")
        );
        assert!(
            parse_embeddings(&two(json!(0), json!(5)), 2)
                .unwrap_err()
                .contains("index")
        );
        assert!(
            parse_embeddings(&two(json!(0), json!(1)), 3)
                .unwrap_err()
                .contains("expected 3")
        );
        assert_eq!(
            parse_embeddings(&two(Value::Null, Value::Null), 2).unwrap(),
            vec![vec![1.0], vec![2.0]]
        );
        let b64 = json!({"data": [{"index": 0, "embedding": "AAAA"}]});
        assert!(
            parse_embeddings(&b64, 1)
                .unwrap_err()
                .contains("list of numbers")
        );
        assert!(
            parse_embeddings(&json!({}), 1)
                .unwrap_err()
                .contains("no `data`")
        );
    }

    #[test]
    fn setup_errors_are_clear() {
        let s = spec("http://127.0.0.1:9", Some("OPENAI_KEY_MISSING_C"));
        let e = OpenAiProvider::with_env(&s, client(), &env(&[]))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("set OPENAI_KEY_MISSING_C in the environment"),
            "{e}"
        );
        let mut s = spec("http://127.0.0.1:9", None);
        s.model = None;
        let e = OpenAiProvider::with_env(&s, client(), &env(&[]))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("needs `model:`"), "{e}");
        let mut s = spec("http://127.0.0.1:9", None);
        s.base_url = Some("not a url".into());
        assert!(OpenAiProvider::with_env(&s, client(), &env(&[])).is_err());
        let mut s = spec("http://127.0.0.1:9", None);
        s.azure = Some(AzureSpec {
            deployment: String::new(),
            api_version: "v".into(),
        });
        assert!(OpenAiProvider::with_env(&s, client(), &env(&[])).is_err());
    }
}
