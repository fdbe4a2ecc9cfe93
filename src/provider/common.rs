//! Helpers shared by the HTTP providers: status mapping, Retry-After, secret redaction.
//!
//! Every HTTP provider sends its request through [`send_json`], which measures nothing, retries
//! nothing and applies no timeout (the executor owns those), but turns every way a call can go
//! wrong into a [`CallError`] of the right kind, with the server's own explanation and without
//! any secret in the message.

use std::fmt::{Display, Write as _};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{RequestBuilder, StatusCode};
use serde_json::Value;

use super::ProviderError;
use crate::model::{CallError, ErrorKind};

/// Longest server explanation kept in an error message, in characters.
pub const MAX_DETAIL_CHARS: usize = 400;

/// What replaces a secret in a message.
pub const REDACTED: &str = "[redacted]";

/// Reads an environment variable. Providers take one so that tests can inject values without
/// touching the process environment; [`process_env`] is the real one.
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The process environment as an [`EnvLookup`] (values that are not UTF-8 read as unset).
#[must_use]
pub fn process_env() -> EnvLookup {
    Arc::new(|name: &str| std::env::var(name).ok())
}

/// Values that must never appear in a message (API keys, header values from the environment).
#[derive(Clone, Default)]
pub struct Secrets(Vec<String>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} hidden)", self.0.len())
    }
}

impl Secrets {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Remember a value to hide. Empty values are ignored (they would match everywhere).
    pub fn add(&mut self, value: impl Into<String>) {
        let value = value.into();
        if !value.is_empty() && !self.0.contains(&value) {
            self.0.push(value);
            // Longest first, so that a secret containing another is hidden whole.
            self.0.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// Whether there is nothing to hide.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// These secrets plus `extra`.
    #[must_use]
    pub fn with(&self, extra: impl IntoIterator<Item = String>) -> Self {
        let mut out = self.clone();
        for value in extra {
            out.add(value);
        }
        out
    }

    /// `text` with every secret replaced by [`REDACTED`]. A secret shorter than
    /// [`WHOLE_WORD_BELOW`] characters is replaced only where it stands as a whole word, so
    /// that a one-letter test key does not garble every word containing that letter.
    #[must_use]
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.0 {
            if !out.contains(secret.as_str()) {
                continue;
            }
            out = if secret.chars().count() >= WHOLE_WORD_BELOW {
                out.replace(secret.as_str(), REDACTED)
            } else {
                replace_whole_words(&out, secret)
            };
        }
        out
    }
}

/// Secrets shorter than this are redacted only as whole words.
pub const WHOLE_WORD_BELOW: usize = 8;

fn replace_whole_words(text: &str, word: &str) -> String {
    let is_word = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut before: Option<char> = None;
    while let Some(i) = rest.find(word) {
        let prev = rest[..i].chars().next_back().or(before);
        let next = rest[i + word.len()..].chars().next();
        out.push_str(&rest[..i]);
        if prev.is_some_and(is_word) || next.is_some_and(is_word) {
            out.push_str(word);
        } else {
            out.push_str(REDACTED);
        }
        before = word.chars().next_back();
        rest = &rest[i + word.len()..];
    }
    out.push_str(rest);
    out
}

/// `text` cut to at most `max_chars` characters, with an ellipsis when cut.
#[must_use]
pub fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_string(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

/// Read an API key from the environment once, when the provider is built. The key is trimmed
/// (a trailing newline from a `.env` file is common) and checked to fit in an HTTP header; no
/// message ever contains it.
pub fn read_api_key(
    provider_id: &str,
    var: &str,
    env: &EnvLookup,
) -> Result<HeaderValueKey, ProviderError> {
    let Some(raw) = env(var) else {
        return Err(ProviderError::setup(
            provider_id,
            format!(
                "set {var} in the environment: it holds the API key (`api_key_env: {var}`) and is not set"
            ),
        ));
    };
    let key = raw.trim().to_string();
    if key.is_empty() {
        return Err(ProviderError::setup(
            provider_id,
            format!(
                "set {var} in the environment: it holds the API key (`api_key_env: {var}`) and is empty"
            ),
        ));
    }
    if HeaderValue::from_str(&key).is_err() {
        return Err(ProviderError::setup(
            provider_id,
            format!(
                "read the API key: {var} holds characters that cannot be sent in an HTTP header"
            ),
        ));
    }
    Ok(HeaderValueKey(key))
}

/// An API key. It has no `Debug` or `Display`, so it cannot end up in a log by accident.
#[derive(Clone)]
pub struct HeaderValueKey(String);

impl HeaderValueKey {
    /// The key as it goes in a header, marked sensitive.
    #[must_use]
    pub fn header(&self, prefix: &str) -> HeaderValue {
        let mut value = HeaderValue::from_str(&format!("{prefix}{}", self.0))
            .unwrap_or_else(|_| HeaderValue::from_static(""));
        value.set_sensitive(true);
        value
    }

    /// The raw key, for the redaction list.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// What a provider needs to report a failed call well.
#[derive(Debug, Clone)]
pub struct CallContext {
    pub provider_id: String,
    pub secrets: Secrets,
    /// Said on 401/403, e.g. "check the API key in `OPENAI_API_KEY`".
    pub auth_hint: Option<String>,
    /// Said on 404, e.g. "check `base_url` and model".
    pub not_found_hint: Option<String>,
    /// The most of an answer's body that is read: see [`read_limit`].
    pub max_body_bytes: u64,
}

/// What is read of a JSON answer's body for an answer of at most `cap` bytes of text: the
/// cap plus a margin for the JSON around it (a quarter of the cap, at least 64 KiB). An
/// answer whose text alone is longer is kept cut at the cap, marked, by the executor.
#[must_use]
pub fn read_limit(cap: u64) -> u64 {
    cap.saturating_add((cap / 4).max(64 << 10))
}

impl CallContext {
    #[must_use]
    pub fn new(provider_id: &str) -> Self {
        Self {
            provider_id: provider_id.to_string(),
            secrets: Secrets::new(),
            auth_hint: None,
            not_found_hint: None,
            max_body_bytes: crate::model::DEFAULT_MAX_OUTPUT_BYTES,
        }
    }

    /// A [`CallError`] whose message names the provider and carries no secret.
    #[must_use]
    pub fn error(&self, kind: ErrorKind, detail: impl Display) -> CallError {
        let message = format!("call provider `{}`: {detail}", self.provider_id);
        CallError::new(kind, self.secrets.redact(&message))
    }

    /// A 2xx answer that is not what the API promises: not retryable.
    #[must_use]
    pub fn bad_response(&self, detail: impl Display) -> CallError {
        self.error(ErrorKind::BadResponse, detail)
    }

    /// A setting that only turns out wrong at call time (a missing variable, a bad template).
    #[must_use]
    pub fn config(&self, detail: impl Display) -> CallError {
        self.error(ErrorKind::Config, detail)
    }
}

/// The server-requested wait of a response: `retry-after-ms` (sent by `OpenAI`, fractional
/// milliseconds) if present and valid, else `Retry-After` as delta-seconds or an HTTP-date.
#[must_use]
pub fn parse_retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = text("retry-after-ms").and_then(|s| s.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = text("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && (0.0..1e9).contains(&secs))
            .then(|| Duration::from_secs_f64(secs));
    }
    let at = parse_http_date(value)?;
    // A date in the past means "now".
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// An HTTP-date in any of the three formats of RFC 9110 section 5.6.7.
fn parse_http_date(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(d) = DateTime::parse_from_rfc2822(s) {
        return Some(d.with_timezone(&Utc));
    }
    // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
    if let Ok(d) = NaiveDateTime::parse_from_str(s, "%A, %d-%b-%y %H:%M:%S GMT") {
        return Some(d.and_utc());
    }
    // asctime: Sun Nov  6 08:49:37 1994
    let collapsed = s.split_whitespace().collect::<Vec<_>>().join(" ");
    NaiveDateTime::parse_from_str(&collapsed, "%a %b %e %H:%M:%S %Y")
        .ok()
        .map(|d| d.and_utc())
}

/// The explanation an API put in its error body, in the shapes the supported APIs use:
/// `{"error":{"message","type"}}` (`OpenAI`), `{"type":"error","error":{"type","message"}}`
/// (Anthropic), `{"error":"..."}` (Ollama), `{"message"}` / `{"detail"}` (common
/// frameworks). Anything else: the body text, whitespace collapsed. Not yet redacted or cut.
#[must_use]
pub fn api_error_detail(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    if let Ok(json) = serde_json::from_slice::<Value>(body) {
        let string = |v: &Value| v.as_str().map(str::to_string);
        let detail = match json.get("error") {
            Some(Value::Object(e)) => match e.get("message").and_then(Value::as_str) {
                Some(m) => Some(match e.get("type").and_then(Value::as_str) {
                    Some(t) if !t.is_empty() && t != m => format!("{m} ({t})"),
                    _ => m.to_string(),
                }),
                None => Some(Value::Object(e.clone()).to_string()),
            },
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        }
        .or_else(|| json.get("message").and_then(string))
        .or_else(|| {
            json.get("detail")
                .map(|d| d.as_str().map_or_else(|| d.to_string(), str::to_string))
        });
        if detail.is_some() {
            return detail;
        }
    }
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    (!collapsed.is_empty()).then_some(collapsed)
}

/// Whether an error body says the account is out of quota (`OpenAI` answers 429 with
/// `insufficient_quota`): waiting will not help.
fn is_quota_exhausted(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body).is_ok_and(|json| {
        let e = json.get("error");
        ["code", "type"].iter().any(|k| {
            e.and_then(|e| e.get(*k))
                .and_then(Value::as_str)
                .is_some_and(|v| v == "insufficient_quota")
        })
    })
}

/// Map a non-2xx response to a [`CallError`]: 429 -> rate limited (with `retry_after`);
/// 5xx (529 included) -> server, retryable; 408 -> timeout, retryable; other 4xx -> client, not retryable; anything
/// else -> bad response.
#[must_use]
pub fn status_error(
    ctx: &CallContext,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> CallError {
    let code = status.as_u16();
    let reason = status.canonical_reason().unwrap_or(match code {
        529 => "Overloaded",
        _ => "",
    });
    let mut head = format!("HTTP {code}");
    if !reason.is_empty() {
        head.push(' ');
        head.push_str(reason);
    }
    // Redact before cutting, so that a cut cannot leave a prefix of a secret behind.
    let detail =
        api_error_detail(body).map(|d| truncate(&ctx.secrets.redact(&d), MAX_DETAIL_CHARS));
    let retry_after = parse_retry_after(headers, Utc::now());

    let (kind, hint) = match code {
        429 => (ErrorKind::RateLimited, None),
        // The server gave up waiting for the request: another attempt may well get through.
        408 => (ErrorKind::Timeout, None),
        500..=599 => (ErrorKind::Server, None),
        401 | 403 => (ErrorKind::Client, ctx.auth_hint.clone()),
        404 => (ErrorKind::Client, ctx.not_found_hint.clone()),
        400..=499 => (ErrorKind::Client, None),
        _ => (
            ErrorKind::BadResponse,
            Some("expected a 2xx answer".to_string()),
        ),
    };
    let quota = code == 429 && is_quota_exhausted(body);
    let mut message = head;
    if let Some(d) = detail {
        message.push_str(": ");
        message.push_str(&d);
    }
    if quota {
        message.push_str("; the account is out of quota: check its plan and billing");
    } else if let Some(h) = hint {
        message.push_str("; ");
        message.push_str(&h);
    }
    let mut err = ctx.error(kind, message);
    if quota {
        err.retryable = false;
    }
    if matches!(kind, ErrorKind::RateLimited | ErrorKind::Server) {
        err.retry_after = retry_after;
    }
    err
}

/// Map a failure to send a request (or to read its answer) to a [`CallError`].
#[must_use]
pub fn send_error(ctx: &CallContext, err: reqwest::Error) -> CallError {
    // The URL may carry a query the user considers private; name only its host and path.
    let target = err.url().map(|u| {
        let mut t = format!("{}://{}", u.scheme(), u.host_str().unwrap_or(""));
        if let Some(p) = u.port() {
            let _ = write!(t, ":{p}");
        }
        t.push_str(u.path());
        t
    });
    let timeout = err.is_timeout();
    let connect = err.is_connect();
    let builder = err.is_builder();
    let body = err.is_body() || err.is_decode();
    let chain = error_chain(&err.without_url());
    let at = target.map(|t| format!(" {t}")).unwrap_or_default();
    if timeout {
        ctx.error(
            ErrorKind::Timeout,
            format!("the request to{at} timed out: {chain}"),
        )
    } else if connect {
        ctx.error(
            ErrorKind::Transport,
            format!("connect to{at}: {chain}; check base_url and that the server is running"),
        )
    } else if builder {
        ctx.config(format!("build the request to{at}: {chain}; check the URL"))
    } else if body {
        ctx.bad_response(format!(
            "read the response of{at}: the body was cut off or unreadable: {chain}"
        ))
    } else {
        ctx.error(
            ErrorKind::Transport,
            format!("send the request to{at}: {chain}"),
        )
    }
}

/// An error and its sources, joined with ": ", without repeats.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&dyn std::error::Error> = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

/// Send a request and read a JSON answer. Non-2xx statuses, transport failures and bodies
/// that are empty, cut off or not JSON all become [`CallError`]s (see [`status_error`] and
/// [`send_error`]).
pub async fn send_json(ctx: &CallContext, request: RequestBuilder) -> Result<Value, CallError> {
    let response = request.send().await.map_err(|e| send_error(ctx, e))?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = match read_capped(response, ctx.max_body_bytes).await {
        Ok(b) => b,
        Err(e) if status.is_success() || e.is_timeout() => return Err(send_error(ctx, e)),
        // The status already says what went wrong; the body was only the explanation.
        Err(_) => Capped::default(),
    };
    if !status.is_success() {
        return Err(status_error(ctx, status, &headers, &body.bytes));
    }
    if body.cut {
        let whole = headers
            .get(reqwest::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .map_or_else(
                || "of a longer answer".to_owned(),
                |n| format!("of {n} (its Content-Length)"),
            );
        let mut err = ctx.bad_response(format!(
            "the answer is larger than `max_output_bytes` allows (evalwatch reads {} bytes of a body, the cap plus a margin for the JSON): evalwatch read {} bytes {whole} and stopped, so it was truncated and not parsed; raise `max_output_bytes` if such answers are expected",
            ctx.max_body_bytes,
            body.bytes.len()
        ));
        err.retryable = false;
        return Err(err);
    }
    parse_json_body(ctx, &headers, &body.bytes)
}

/// A body read up to a cap.
#[derive(Debug, Default)]
pub struct Capped {
    pub bytes: Vec<u8>,
    /// More was sent than the cap: `bytes` holds the first `cap` bytes only.
    pub cut: bool,
}

/// Read a response body, chunk by chunk, never holding more than `cap` bytes: the rest is
/// not read from the socket (the connection is dropped with the response).
pub async fn read_capped(
    mut response: reqwest::Response,
    cap: u64,
) -> Result<Capped, reqwest::Error> {
    let cap = usize::try_from(cap).unwrap_or(usize::MAX);
    let hint = response
        .content_length()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0);
    let mut out = Capped {
        bytes: Vec::with_capacity(hint.min(cap).min(1 << 20)),
        cut: false,
    };
    while let Some(chunk) = response.chunk().await? {
        let room = cap - out.bytes.len();
        if chunk.len() > room {
            out.bytes.extend_from_slice(&chunk[..room]);
            out.cut = true;
            break;
        }
        out.bytes.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Parse a 2xx body as JSON, explaining what was wrong when it is not.
pub fn parse_json_body(
    ctx: &CallContext,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, CallError> {
    let content_type = headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ctx.bad_response("expected a JSON body but the response body is empty"));
    }
    serde_json::from_slice::<Value>(body).map_err(|e| {
        let snippet = truncate(
            &ctx.secrets
                .redact(&String::from_utf8_lossy(body).split_whitespace().collect::<Vec<_>>().join(" ")),
            120,
        );
        let what = if e.is_eof() {
            format!("expected a JSON body but it ends early (cut off after {} bytes)", body.len())
        } else if !content_type.is_empty() && !content_type.to_ascii_lowercase().contains("json") {
            format!("expected a JSON body but got content type `{content_type}` that does not parse as JSON ({e})")
        } else {
            format!("expected a JSON body but it does not parse: {e}")
        };
        ctx.bad_response(format!("{what}; the body begins: {snippet}"))
    })
}

/// `base_url` without trailing slashes, or `default` when unset or blank.
#[must_use]
pub fn base_url(spec_url: Option<&str>, default: &str) -> String {
    let url = spec_url
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .unwrap_or(default);
    url.trim_end_matches('/').to_string()
}

/// The token count at `value`, when it is a non-negative integer (or a string of one).
#[must_use]
pub fn as_count(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0 && f.fract() == 0.0)
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The keys of a JSON object, for saying what an answer held instead.
pub fn describe(value: &Value) -> String {
    match value {
        Value::Object(map) if map.is_empty() => "an empty object".into(),
        // Some servers answer errors with a 200.
        Value::Object(map) if map.contains_key("error") => format!(
            "it is an error: {}",
            truncate(
                &api_error_detail(value.to_string().as_bytes()).unwrap_or_default(),
                MAX_DETAIL_CHARS
            )
        ),
        Value::Object(map) => format!(
            "keys {}",
            map.keys()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Array(_) => "a list".into(),
        Value::String(_) => "a string".into(),
        Value::Number(_) => "a number".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Null => "null".into(),
    }
}

/// Milliseconds since `started`.
#[must_use]
pub fn elapsed_ms(started: std::time::Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}

/// The URL of an API endpoint: `base` (no trailing slash) joined with `path`, which must
/// give an http(s) URL.
pub fn endpoint(id: &str, base: &str, path: &str) -> Result<reqwest::Url, super::ProviderError> {
    reqwest::Url::parse(&format!("{base}{path}"))
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| {
            super::ProviderError::setup(id, format!("base_url `{base}` is not a valid http(s) URL"))
        })
}

/// The provider's `model:`, which its API requires.
pub fn required_model(spec: &crate::model::ProviderSpec) -> Result<String, super::ProviderError> {
    spec.model
        .clone()
        .filter(|m| !m.trim().is_empty())
        .ok_or_else(|| {
            super::ProviderError::setup(
                &spec.id,
                format!("an {} provider needs `model:`", spec.kind.as_str()),
            )
        })
}

/// The completion of a chat API answer: the output text, the call's latency, and the token
/// counts and stop reason found at the given JSON pointers of the answer.
pub fn completion(
    answer: &Value,
    output: String,
    started: std::time::Instant,
    tokens_in: &str,
    tokens_out: &str,
    finish_reason: Option<String>,
) -> crate::model::Completion {
    crate::model::Completion {
        output,
        latency_ms: elapsed_ms(started),
        tokens_in: as_count(answer.pointer(tokens_in)),
        tokens_out: as_count(answer.pointer(tokens_out)),
        finish_reason,
        cost_usd: None,
        reported: reported_model(answer),
        ..crate::model::Completion::default()
    }
}

/// The model version an answer says answered: its top-level `model` (`OpenAI`, Anthropic,
/// Ollama) and `system_fingerprint` (`OpenAI`), when not empty.
#[must_use]
pub fn reported_model(answer: &Value) -> Option<crate::model::ReportedModel> {
    let text = |k: &str| {
        answer
            .get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    Some(crate::model::ReportedModel {
        model: text("model")?,
        fingerprint: text("system_fingerprint"),
    })
}

/// A string field of an answer, such as its stop reason.
pub fn text_at(answer: &Value, pointer: &str) -> Option<String> {
    answer
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_string)
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests;
