//! `http` provider: any JSON endpoint of a team's own service.
//!
//! - `url` and every string leaf of `body` are minijinja templates rendered with the case's
//!   variables plus `prompt` (the flattened conversation), `system`, `messages` (a list of
//!   `{role, content}`), `case_id` and `sample`; these built-in names win over case variables
//!   of the same name. Undefined variables are errors, not empty strings.
//! - A body leaf that is exactly one expression (`"{{ messages }}"`, `"{{ max_tokens }}"`)
//!   becomes the expression's JSON value when that value is not a string.
//! - Without `body`, methods other than GET and HEAD send `{"prompt": "{{ prompt }}"}`.
//! - Header values expand `${VAR}` and `${VAR:-default}` from the environment at call time, so
//!   secrets never sit in the configuration; the values read are redacted from every message.
//! - `output` is a JSON pointer to the answer (`""` is the whole document); a non-string answer
//!   is returned as its JSON text. `usage_in` / `usage_out` point at token counts.

use std::collections::BTreeMap;
use std::time::Instant;

use async_trait::async_trait;
use minijinja::value::ValueKind;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Map, Value, json};

use super::common::{self, CallContext, EnvLookup, describe};
use super::{Provider, ProviderError};
use crate::model::{CallError, Completion, HttpSpec, ProviderSpec, Request};

/// A piece of a header value: literal text or an environment reference.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    Var {
        name: String,
        default: Option<String>,
    },
}

/// Split a header value into text and `${VAR}` / `${VAR:-default}` references. A `$` not
/// followed by `{` is literal.
fn parse_env_refs(template: &str) -> Result<Vec<Segment>, String> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        text.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("`${{` without a closing `}}` in `{template}`"))?;
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d.to_string())),
            None => (inner, None),
        };
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "`${{{inner}}}` is not a valid variable reference (expected `${{NAME}}` or `${{NAME:-default}}`)"
            ));
        }
        if !text.is_empty() {
            out.push(Segment::Text(std::mem::take(&mut text)));
        }
        out.push(Segment::Var {
            name: name.to_string(),
            default,
        });
        rest = &after[end + 1..];
    }
    text.push_str(rest);
    if !text.is_empty() {
        out.push(Segment::Text(text));
    }
    Ok(out)
}

/// Expand parsed segments. Returns the value and the environment values used (secrets), or
/// the name of a variable that is unset (or empty) and has no default.
fn expand_env(segments: &[Segment], env: &EnvLookup) -> Result<(String, Vec<String>), String> {
    let mut value = String::new();
    let mut used = Vec::new();
    for segment in segments {
        match segment {
            Segment::Text(t) => value.push_str(t),
            Segment::Var { name, default } => {
                match (env(name).filter(|v| !v.is_empty()), default) {
                    (Some(v), _) => {
                        value.push_str(&v);
                        used.push(v);
                    }
                    (None, Some(d)) => value.push_str(d),
                    (None, None) => return Err(name.clone()),
                }
            }
        }
    }
    Ok((value, used))
}

/// serde JSON -> template value.
fn to_template_value(value: &Value) -> minijinja::Value {
    match value {
        Value::Null => minijinja::Value::from(()),
        Value::Bool(b) => minijinja::Value::from(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                minijinja::Value::from(i)
            } else if let Some(u) = n.as_u64() {
                minijinja::Value::from(u)
            } else {
                minijinja::Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => minijinja::Value::from(s.as_str()),
        Value::Array(items) => {
            minijinja::Value::from(items.iter().map(to_template_value).collect::<Vec<_>>())
        }
        Value::Object(map) => minijinja::Value::from(
            map.iter()
                .map(|(k, v)| (k.clone(), to_template_value(v)))
                .collect::<BTreeMap<String, minijinja::Value>>(),
        ),
    }
}

/// Template value -> serde JSON. Undefined is an error; things JSON cannot hold become text.
fn to_json(value: &minijinja::Value) -> Result<Value, String> {
    Ok(match value.kind() {
        ValueKind::Undefined => return Err("the expression is undefined".into()),
        ValueKind::None => Value::Null,
        ValueKind::Bool => Value::Bool(value.is_true()),
        ValueKind::Number => {
            if value.is_integer() {
                if let Ok(i) = i64::try_from(value.clone()) {
                    json!(i)
                } else if let Ok(u) = u64::try_from(value.clone()) {
                    json!(u)
                } else {
                    Value::String(value.to_string())
                }
            } else {
                f64::try_from(value.clone())
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(Value::Null, Value::Number)
            }
        }
        ValueKind::Seq | ValueKind::Iterable => Value::Array(
            value
                .try_iter()
                .map_err(|e| e.to_string())?
                .map(|v| to_json(&v))
                .collect::<Result<_, _>>()?,
        ),
        ValueKind::Map => {
            let mut map = Map::new();
            for key in value.try_iter().map_err(|e| e.to_string())? {
                let item = value.get_item(&key).map_err(|e| e.to_string())?;
                let key = key.as_str().map_or_else(|| key.to_string(), str::to_string);
                map.insert(key, to_json(&item)?);
            }
            Value::Object(map)
        }
        ValueKind::Invalid => return Err(value.to_string()),
        _ => Value::String(
            value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_string),
        ),
    })
}

/// The expression of a leaf that is exactly `{{ expr }}` (whitespace control allowed).
fn single_expression(leaf: &str) -> Option<&str> {
    // Exactly: surrounding text (even whitespace) makes the leaf a string template.
    let inner = leaf.strip_prefix("{{")?.strip_suffix("}}")?;
    let inner = inner.strip_prefix('-').unwrap_or(inner);
    let inner = inner.strip_suffix('-').unwrap_or(inner);
    (!inner.contains("{{") && !inner.contains("}}") && !inner.trim().is_empty())
        .then(|| inner.trim())
}

/// Whether `p` is a JSON pointer (`""` or starting with `/`).
fn is_pointer(p: &str) -> bool {
    p.is_empty() || p.starts_with('/')
}

pub struct HttpProvider {
    id: String,
    client: reqwest::Client,
    method: reqwest::Method,
    url: String,
    headers: Vec<(HeaderName, Vec<Segment>)>,
    body: Option<Value>,
    output: String,
    usage_in: Option<String>,
    usage_out: Option<String>,
    env: EnvLookup,
    jinja: minijinja::Environment<'static>,
    ctx: CallContext,
}

impl HttpProvider {
    pub fn new(spec: &ProviderSpec, client: reqwest::Client) -> Result<Self, ProviderError> {
        Self::with_env(spec, client, common::process_env())
    }

    /// As [`HttpProvider::new`], expanding header values through `env` at call time.
    pub fn with_env(
        spec: &ProviderSpec,
        client: reqwest::Client,
        env: EnvLookup,
    ) -> Result<Self, ProviderError> {
        let id = spec.id.as_str();
        let setup = |m: String| ProviderError::setup(id, m);
        let http: &HttpSpec = spec.http.as_ref().ok_or_else(|| {
            setup("an http provider needs its `url`, `output` and request settings".into())
        })?;

        let method_name = if http.method.trim().is_empty() {
            "POST".to_string()
        } else {
            http.method.trim().to_ascii_uppercase()
        };
        let method = reqwest::Method::from_bytes(method_name.as_bytes())
            .map_err(|_| setup(format!("`method: {}` is not an HTTP method", http.method)))?;

        let mut jinja = minijinja::Environment::new();
        jinja.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        // Errors name the undefined expression in release builds too (as for prompts).
        jinja.set_debug(true);
        // A body leaf ending in a newline keeps it: the service sees exactly what was written.
        if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()
        {
            jinja.set_syntax(syntax);
        }

        if http.url.trim().is_empty() {
            return Err(setup("an http provider needs `url:`".into()));
        }
        jinja
            .template_from_str(&http.url)
            .map_err(|e| setup(format!("the `url` template does not parse: {e}")))?;
        if !http.url.contains("{{") && !http.url.contains("{%") {
            let url = reqwest::Url::parse(&http.url)
                .map_err(|e| setup(format!("`url: {}` is not a valid URL: {e}", http.url)))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(setup(format!(
                    "`url: {}` must start with http:// or https://",
                    http.url
                )));
            }
        }

        let mut headers = Vec::with_capacity(http.headers.len());
        for (name, value) in &http.headers {
            let header = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| setup(format!("`{name}` is not a valid HTTP header name")))?;
            let segments =
                parse_env_refs(value).map_err(|e| setup(format!("header `{name}`: {e}")))?;
            headers.push((header, segments));
        }

        let body = match &http.body {
            Some(b) => Some(b.clone()),
            None if method == reqwest::Method::GET || method == reqwest::Method::HEAD => None,
            None => Some(json!({"prompt": "{{ prompt }}"})),
        };
        if let Some(b) = &body {
            check_templates(&jinja, b, "").map_err(|(at, e)| {
                setup(format!(
                    "the `body` template at `{}` does not parse: {e}",
                    if at.is_empty() { "/" } else { &at }
                ))
            })?;
        }

        for (field, pointer) in [
            ("output", Some(&http.output)),
            ("usage_in", http.usage_in.as_ref()),
            ("usage_out", http.usage_out.as_ref()),
        ] {
            if let Some(p) = pointer
                && !is_pointer(p)
            {
                return Err(setup(format!(
                    "`{field}: {p}` is not a JSON pointer; write it like `/choices/0/text`"
                )));
            }
        }

        let mut ctx = CallContext::new(id);
        ctx.max_body_bytes = common::read_limit(spec.output_cap());
        ctx.auth_hint = Some("check the credentials in the provider's `headers`".into());
        ctx.not_found_hint = Some("check the provider's `url`".into());
        Ok(Self {
            id: spec.id.clone(),
            client,
            method,
            url: http.url.clone(),
            headers,
            body,
            output: http.output.clone(),
            usage_in: http.usage_in.clone(),
            usage_out: http.usage_out.clone(),
            env,
            jinja,
            ctx,
        })
    }

    /// The template context of one request.
    fn context(request: &Request) -> minijinja::Value {
        let mut map: BTreeMap<String, minijinja::Value> = request
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), to_template_value(v)))
            .collect();
        let messages: Vec<Value> = request
            .messages
            .iter()
            .map(|m| json!({"role": m.role, "content": m.content}))
            .collect();
        map.insert(
            "prompt".into(),
            minijinja::Value::from(request.prompt_text()),
        );
        map.insert(
            "system".into(),
            request
                .system
                .as_deref()
                .map_or_else(|| minijinja::Value::from(()), minijinja::Value::from),
        );
        map.insert(
            "messages".into(),
            to_template_value(&Value::Array(messages)),
        );
        map.insert(
            "case_id".into(),
            minijinja::Value::from(request.case_id.as_str()),
        );
        map.insert("sample".into(), minijinja::Value::from(request.sample));
        minijinja::Value::from(map)
    }

    /// Render one body value: strings through the template engine, containers recursively.
    fn render(
        &self,
        value: &Value,
        context: &minijinja::Value,
        at: &str,
    ) -> Result<Value, CallError> {
        let fail = |e: &dyn std::fmt::Display| {
            self.ctx.config(format!(
                "render the `body` template at `{}`: {e}",
                if at.is_empty() { "/" } else { at }
            ))
        };
        Ok(match value {
            Value::String(leaf) => {
                if let Some(expr) = single_expression(leaf) {
                    let compiled = self.jinja.compile_expression(expr).map_err(|e| fail(&e))?;
                    let result = compiled.eval(context.clone()).map_err(|e| fail(&e))?;
                    if result.is_undefined() {
                        return Err(fail(&format!("`{expr}` is undefined")));
                    }
                    match result.as_str() {
                        Some(s) if result.kind() == ValueKind::String => {
                            Value::String(s.to_string())
                        }
                        _ => to_json(&result).map_err(|e| fail(&e))?,
                    }
                } else {
                    Value::String(
                        self.jinja
                            .render_str(leaf, context.clone())
                            .map_err(|e| fail(&e))?,
                    )
                }
            }
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.render(v, context, &format!("{at}/{i}")))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        Ok((
                            k.clone(),
                            self.render(v, context, &format!("{at}/{}", escape_token(k)))?,
                        ))
                    })
                    .collect::<Result<_, CallError>>()?,
            ),
            other => other.clone(),
        })
    }

    /// The answer at the `output` pointer.
    fn answer(&self, document: &Value) -> Result<String, CallError> {
        match document.pointer(&self.output) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Null) => Err(self.ctx.bad_response(format!(
                "expected the answer at `{}` (the `output` pointer), but it is null",
                self.output
            ))),
            Some(other) => Ok(other.to_string()),
            None => Err(self.ctx.bad_response(format!(
                "expected the answer at `{}` (the `output` pointer), but {}",
                self.output,
                missing_at(document, &self.output)
            ))),
        }
    }
}

/// Check that every string leaf of a body parses as a template; the error names its pointer.
fn check_templates(
    jinja: &minijinja::Environment<'static>,
    value: &Value,
    at: &str,
) -> Result<(), (String, String)> {
    match value {
        Value::String(s) => {
            if let Some(expr) = single_expression(s) {
                jinja
                    .compile_expression(expr)
                    .map(|_| ())
                    .map_err(|e| (at.to_string(), e.to_string()))
            } else {
                jinja
                    .template_from_str(s)
                    .map(|_| ())
                    .map_err(|e| (at.to_string(), e.to_string()))
            }
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| check_templates(jinja, v, &format!("{at}/{i}"))),
        Value::Object(map) => map
            .iter()
            .try_for_each(|(k, v)| check_templates(jinja, v, &format!("{at}/{}", escape_token(k)))),
        _ => Ok(()),
    }
}

/// A key as a JSON pointer token.
fn escape_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Where a pointer stops matching a document, in words.
fn missing_at(document: &Value, pointer: &str) -> String {
    let mut current = document;
    let mut walked = String::new();
    for token in pointer.split('/').skip(1) {
        let token_text = token.replace("~1", "/").replace("~0", "~");
        let next = match current {
            Value::Object(map) => map.get(&token_text),
            Value::Array(items) => token_text.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        };
        let Some(v) = next else {
            let here = if walked.is_empty() {
                "the response".to_string()
            } else {
                format!("`{walked}`")
            };
            return format!("{here} has no `{token_text}` ({})", describe(current));
        };
        walked.push('/');
        walked.push_str(token);
        current = v;
    }
    "the response does not have it".into()
}

#[async_trait]
impl Provider for HttpProvider {
    fn id(&self) -> &str {
        &self.id
    }

    async fn complete(&self, request: &Request) -> Result<Completion, CallError> {
        let started = Instant::now();
        let context = Self::context(request);

        // Headers first: their environment values join the redaction list for this call.
        let mut header_values = Vec::with_capacity(self.headers.len());
        let mut secrets = Vec::new();
        for (name, segments) in &self.headers {
            let (value, used) = expand_env(segments, &self.env).map_err(|var| {
                self.ctx.config(format!(
                    "set {var} in the environment: header `{name}` uses it (`${{{var}}}`) and it is not set"
                ))
            })?;
            secrets.extend(used);
            let mut value = HeaderValue::from_str(&value).map_err(|_| {
                self.ctx.config(format!(
                    "header `{name}` holds characters that cannot be sent in an HTTP header once expanded"
                ))
            })?;
            value.set_sensitive(true);
            header_values.push((name.clone(), value));
        }
        let ctx = CallContext {
            secrets: self.ctx.secrets.with(secrets),
            ..self.ctx.clone()
        };

        let url = self
            .jinja
            .render_str(&self.url, context.clone())
            .map_err(|e| ctx.config(format!("render the `url` template: {e}")))?;
        let url = reqwest::Url::parse(&url)
            .map_err(|e| ctx.config(format!("the rendered `url` is not a valid URL: {e}")))?;

        let mut http = self.client.request(self.method.clone(), url);
        for (name, value) in header_values {
            http = http.header(name, value);
        }
        if let Some(body) = &self.body {
            let body = self.render(body, &context, "").map_err(|e| CallError {
                message: ctx.secrets.redact(&e.message),
                ..e
            })?;
            // After the headers, so that a configured Content-Type is kept.
            http = http.json(&body);
        }

        let document = common::send_json(&ctx, http).await?;
        let output = self.answer(&document).map_err(|e| CallError {
            message: ctx.secrets.redact(&e.message),
            ..e
        })?;
        let count = |p: &Option<String>| {
            p.as_deref()
                .and_then(|p| common::as_count(document.pointer(p)))
        };
        Ok(Completion {
            output,
            latency_ms: common::elapsed_ms(started),
            tokens_in: count(&self.usage_in),
            tokens_out: count(&self.usage_out),
            finish_reason: None,
            cost_usd: None,
            ..crate::model::Completion::default()
        })
    }
}

#[cfg(test)]
mod tests;
