//! Sinks: where notices go. stdout, a file (JSON lines), a webhook (JSON body signed with
//! HMAC-SHA256), Slack (incoming webhook) and a command (JSON on stdin). Each delivery is
//! retried with exponential backoff; what still fails stays queued in the store.
//!
//! Secrets (webhook URLs, the HMAC key, header values with `${VAR}`) are read from the
//! environment at send time through an injected lookup, and never appear in an error.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::rule::{fmt_duration, parse_duration, severity_parse, severity_str};
use crate::model::Severity;
use crate::model::SinkSpec;

/// Looks up an environment variable (injected so that tests need not touch the process env).
pub type Env<'a> = &'a (dyn Fn(&str) -> Option<String> + Sync);

/// The header that carries the body's signature: `sha256=<hex HMAC-SHA256(secret, body)>`.
pub const SIGNATURE_HEADER: &str = "X-Evalwatch-Signature";
pub const EVENT_HEADER: &str = "X-Evalwatch-Event";
pub const DELIVERY_HEADER: &str = "X-Evalwatch-Delivery";

const DEFAULT_RETRIES: u32 = 2;
const DEFAULT_BASE_DELAY: Duration = Duration::from_millis(250);
const MAX_DELAY: Duration = Duration::from_secs(5);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest `timeout` a sink may set.
const MAX_TIMEOUT: Duration = Duration::from_secs(300);

/// Where a URL comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlSource {
    /// The name of an environment variable (`url_env`).
    Env(String),
    /// Written in the config (`url`).
    Literal(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkKind {
    Stdout,
    /// A `stdout` sink moved aside while stdout carries machine output (`run --format json`).
    Stderr,
    File(PathBuf),
    Webhook {
        url: UrlSource,
        /// Environment variable holding the HMAC key.
        secret_env: Option<String>,
        /// Header templates (`${VAR}` expanded at send time).
        headers: Vec<(String, String)>,
    },
    Slack {
        url: UrlSource,
    },
    Command(Vec<String>),
}

/// A configured sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sink {
    pub id: String,
    pub kind: SinkKind,
    pub min_severity: Severity,
    /// Retries after the first attempt, within one delivery.
    pub retries: u32,
    pub base_delay: Duration,
    pub timeout: Duration,
}

/// A delivery failure. Never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    pub message: String,
    /// Whether another attempt may succeed.
    pub retryable: bool,
    /// The receiver did not answer in time: it may still have got the notice, so it is not
    /// sent again at once (the next attempt waits for the queue's backoff).
    pub timed_out: bool,
}

impl SinkError {
    fn retry(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
            timed_out: false,
        }
    }

    fn fatal(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
            timed_out: false,
        }
    }

    fn timeout(timeout: Duration) -> Self {
        Self {
            message: format!(
                "timed out after {} (the receiver may still have got it: every attempt carries the same delivery id)",
                fmt_duration(timeout)
            ),
            retryable: true,
            timed_out: true,
        }
    }
}

/// The settings a sink takes beside `id` and `type` (the config loader checks them too).
pub const KEYS: [&str; 9] = [
    "min_severity",
    "url",
    "url_env",
    "secret_env",
    "headers",
    "path",
    "command",
    "retries",
    "timeout",
];

/// Where the URL comes from, or the problem with the setting named (None: neither given).
fn url_source(
    s: &serde_json::Map<String, Value>,
) -> Result<UrlSource, (Option<&'static str>, String)> {
    match (
        s.get("url_env").and_then(Value::as_str),
        s.get("url").and_then(Value::as_str),
    ) {
        (Some(e), None) if !e.is_empty() => Ok(UrlSource::Env(e.to_owned())),
        (None, Some(u)) if !u.is_empty() => Ok(UrlSource::Literal(u.to_owned())),
        (Some(_), Some(_)) => Err((Some("url"), "give `url_env` or `url`, not both".into())),
        _ => Err((
            ["url_env", "url"].into_iter().find(|k| s.contains_key(*k)),
            "needs `url_env` (the environment variable holding the URL) or `url`".into(),
        )),
    }
}

/// One problem of a sink's settings, with the setting it is about (None: the sink as a whole),
/// so that the config loader can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkProblem {
    pub key: Option<String>,
    pub message: String,
}

/// Build a sink from its config. Relative file paths resolve against `root`. Every problem at
/// once, joined by `; ` (see [`judge_sink`]).
pub fn parse_sink(spec: &SinkSpec, root: &Path) -> Result<Sink, String> {
    judge_sink(spec, root).map_err(|problems| {
        problems
            .into_iter()
            .map(|p| p.message)
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// Build a sink from its config, or every problem with it, each tied to its setting.
#[allow(clippy::too_many_lines)]
pub fn judge_sink(spec: &SinkSpec, root: &Path) -> Result<Sink, Vec<SinkProblem>> {
    let s = &spec.settings;
    let mut problems = Vec::new();
    let mut problem = |key: Option<&str>, m: String| {
        problems.push(SinkProblem {
            key: key.map(str::to_owned),
            message: format!("sink `{}`: {m}", spec.id),
        });
    };
    for k in s.keys() {
        if !KEYS.contains(&k.as_str()) {
            problem(Some(k.as_str()), format!("unknown setting `{k}`"));
        }
    }
    let min_severity = match s.get("min_severity") {
        None => Some(Severity::Info),
        Some(v) => {
            let found = v.as_str().and_then(severity_parse);
            if found.is_none() {
                problem(
                    Some("min_severity"),
                    format!("`min_severity` must be `info`, `warning` or `critical`, found {v}"),
                );
            }
            found
        }
    };
    let retries = match s.get("retries") {
        None => Some(DEFAULT_RETRIES),
        Some(v) => {
            let found = v
                .as_u64()
                .filter(|n| *n <= 10)
                .and_then(|n| u32::try_from(n).ok());
            if found.is_none() {
                problem(
                    Some("retries"),
                    format!("`retries` must be a whole number 0..=10, found {v}"),
                );
            }
            found
        }
    };
    let timeout = match s.get("timeout") {
        None => Some(DEFAULT_TIMEOUT),
        Some(v) => {
            let found = v
                .as_str()
                .and_then(parse_duration)
                .or_else(|| {
                    v.as_f64()
                        .filter(|x| *x > 0.0 && x.is_finite())
                        .map(Duration::from_secs_f64)
                })
                .filter(|d| *d >= Duration::from_secs(1) && *d <= MAX_TIMEOUT);
            if found.is_none() {
                problem(
                    Some("timeout"),
                    format!(
                        "`timeout` must be a duration from 1s to {} (`10s`, `2m`), found {v}",
                        fmt_duration(MAX_TIMEOUT)
                    ),
                );
            }
            found
        }
    };
    let kind = match spec.kind.as_str() {
        "stdout" => Some(SinkKind::Stdout),
        "file" => {
            let p = s
                .get("path")
                .and_then(Value::as_str)
                .filter(|p| !p.is_empty());
            if p.is_none() {
                let at = s.contains_key("path").then_some("path");
                problem(at, "a file sink needs `path`".into());
            }
            p.map(|p| {
                let p = Path::new(p);
                SinkKind::File(if p.is_absolute() {
                    p.to_path_buf()
                } else {
                    root.join(p)
                })
            })
        }
        "webhook" => {
            let mut headers = Some(Vec::new());
            if let Some(h) = s.get("headers") {
                if let Some(map) = h.as_object() {
                    for (k, v) in map {
                        if let Some(v) = v.as_str() {
                            if let Some(list) = headers.as_mut() {
                                list.push((k.clone(), v.to_owned()));
                            }
                        } else {
                            problem(Some("headers"), format!("header `{k}` must be a string"));
                            headers = None;
                        }
                    }
                } else {
                    problem(Some("headers"), "`headers` must be a mapping".into());
                    headers = None;
                }
            }
            let url = url_source(s).map_err(|(key, m)| problem(key, m)).ok();
            match (url, headers) {
                (Some(url), Some(headers)) => Some(SinkKind::Webhook {
                    url,
                    secret_env: s
                        .get("secret_env")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    headers,
                }),
                _ => None,
            }
        }
        "slack" => url_source(s)
            .map_err(|(key, m)| problem(key, m))
            .ok()
            .map(|url| SinkKind::Slack { url }),
        "command" => {
            let argv = match s.get("command") {
                Some(Value::String(c)) => shlex::split(c).ok_or("`command` has unbalanced quotes"),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or("`command` must be a list of strings"),
                _ => Err("a command sink needs `command`"),
            }
            .and_then(|argv| {
                if argv.is_empty() {
                    Err("`command` is empty")
                } else {
                    Ok(argv)
                }
            });
            match argv {
                Ok(argv) => Some(SinkKind::Command(argv)),
                Err(m) => {
                    let at = s.contains_key("command").then_some("command");
                    problem(at, m.into());
                    None
                }
            }
        }
        other => {
            problem(None, format!("unknown sink type `{other}`"));
            None
        }
    };
    match (kind, min_severity, retries, timeout) {
        (Some(kind), Some(min_severity), Some(retries), Some(timeout)) if problems.is_empty() => {
            Ok(Sink {
                id: spec.id.clone(),
                kind,
                min_severity,
                retries,
                base_delay: DEFAULT_BASE_DELAY,
                timeout,
            })
        }
        _ => Err(problems),
    }
}

impl Sink {
    /// The same sink, except that a `stdout` sink writes to stderr: for runs whose stdout is
    /// machine output that a notice must not corrupt.
    #[must_use]
    pub fn off_stdout(mut self) -> Self {
        if matches!(self.kind, SinkKind::Stdout) {
            self.kind = SinkKind::Stderr;
        }
        self
    }

    /// Whether a notice of this severity goes to this sink.
    #[must_use]
    pub fn accepts(&self, severity: Severity) -> bool {
        severity >= self.min_severity
    }

    /// The longest one [`Sink::deliver`] can take: every attempt timing out, with the
    /// backoff between them. A claim on a delivery lasts longer than this.
    #[must_use]
    pub fn max_delivery_time(&self) -> Duration {
        let attempts = self.retries + 1;
        self.timeout.saturating_mul(attempts) + MAX_DELAY.saturating_mul(self.retries)
    }

    /// Deliver one notice, retrying with exponential backoff. Returns the attempts made and
    /// the last error, if every attempt failed. A timeout is not retried at once: the
    /// receiver may be slow rather than down, and another POST now would be a duplicate.
    pub async fn deliver(
        &self,
        client: &reqwest::Client,
        notice: &Notice<'_>,
        env: Env<'_>,
    ) -> (u32, Result<(), SinkError>) {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let r = self.send_once(client, notice, env).await;
            match r {
                Ok(()) => return (attempt, Ok(())),
                Err(e) if !e.retryable || e.timed_out || attempt > self.retries => {
                    return (attempt, Err(e));
                }
                Err(_) => {
                    let factor = 2u32.saturating_pow(attempt - 1);
                    let delay = self.base_delay.saturating_mul(factor).min(MAX_DELAY);
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    async fn send_once(
        &self,
        client: &reqwest::Client,
        notice: &Notice<'_>,
        env: Env<'_>,
    ) -> Result<(), SinkError> {
        match &self.kind {
            SinkKind::Stdout => print_to(&mut std::io::stdout().lock(), "stdout", notice),
            SinkKind::Stderr => print_to(&mut std::io::stderr().lock(), "stderr", notice),
            SinkKind::File(path) => append_line(path, notice.body),
            SinkKind::Webhook {
                url,
                secret_env,
                headers,
            } => {
                let url = resolve_url(url, env)?;
                let mut req = client
                    .post(url)
                    .timeout(self.timeout)
                    .header("content-type", "application/json")
                    .header(EVENT_HEADER, notice.kind)
                    .header(DELIVERY_HEADER, notice.delivery_id.to_string());
                if let Some(var) = secret_env {
                    let secret = env(var).filter(|s| !s.is_empty()).ok_or_else(|| {
                        SinkError::fatal(format!(
                            "sign the webhook body: the environment variable `{var}` named by `secret_env` is not set"
                        ))
                    })?;
                    req = req.header(
                        SIGNATURE_HEADER,
                        signature(secret.as_bytes(), notice.body.as_bytes()),
                    );
                }
                for (k, v) in headers {
                    req = req.header(k.as_str(), expand(v, env)?);
                }
                send(req.body(notice.body.to_owned()), self.timeout).await
            }
            SinkKind::Slack { url } => {
                let url = resolve_url(url, env)?;
                // The delivery id, as webhooks get it, in the header and at the end of the
                // text (the part a human forwarding a duplicate can see).
                let text = format!(
                    "{}\n_evalwatch delivery {}_",
                    notice.text(),
                    notice.delivery_id
                );
                let body = serde_json::json!({ "text": text });
                let req = client
                    .post(url)
                    .timeout(self.timeout)
                    .header(DELIVERY_HEADER, notice.delivery_id.to_string())
                    .json(&body);
                send(req, self.timeout).await
            }
            SinkKind::Command(argv) => run_command(argv, notice, self.timeout).await,
        }
    }
}

/// One notice to deliver.
#[derive(Debug, Clone, Copy)]
pub struct Notice<'a> {
    pub delivery_id: i64,
    /// `alert` or `resolved`.
    pub kind: &'a str,
    /// The JSON payload, exactly as sent.
    pub body: &'a str,
}

impl Notice<'_> {
    /// The human text of the payload (its `text` field), or the body itself.
    #[must_use]
    pub fn text(&self) -> String {
        serde_json::from_str::<Value>(self.body)
            .ok()
            .and_then(|v| v.get("text").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| self.body.to_owned())
    }
}

/// `sha256=<hex>` of HMAC-SHA256(key, body).
#[must_use]
pub fn signature(key: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length; the error branch cannot happen but is not unwrapped.
    match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        }
        Err(_) => String::new(),
    }
}

fn resolve_url(url: &UrlSource, env: Env<'_>) -> Result<String, SinkError> {
    match url {
        UrlSource::Literal(u) => Ok(u.clone()),
        UrlSource::Env(var) => env(var).filter(|u| !u.is_empty()).ok_or_else(|| {
            SinkError::fatal(format!(
                "find the URL: the environment variable `{var}` named by `url_env` is not set"
            ))
        }),
    }
}

/// Expand `${VAR}` and `${VAR:-default}` from the environment.
fn expand(template: &str, env: Env<'_>) -> Result<String, SinkError> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(SinkError::fatal("expand a header: unclosed `${`"));
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        match env(name).or_else(|| default.map(str::to_owned)) {
            Some(v) => out.push_str(&v),
            None => {
                return Err(SinkError::fatal(format!(
                    "expand a header: the environment variable `{name}` is not set"
                )));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

async fn send(req: reqwest::RequestBuilder, timeout: Duration) -> Result<(), SinkError> {
    match req.send().await {
        Ok(resp) => {
            let status = resp.status();
            if status.is_success() {
                Ok(())
            } else if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
                Err(SinkError::retry(format!("the endpoint answered {status}")))
            } else {
                Err(SinkError::fatal(format!("the endpoint answered {status}")))
            }
        }
        Err(e) if e.is_timeout() => Err(SinkError::timeout(timeout)),
        // Without the URL: it may hold a token.
        Err(e) => Err(SinkError::retry(format!("send: {}", e.without_url()))),
    }
}

/// A `stdout` sink's notice. A closed stream (`evalwatch run | head`) is a failed delivery,
/// not a panic: the notice stays queued for the next `run` or `alerts check`.
fn print_to(w: &mut impl std::io::Write, name: &str, notice: &Notice<'_>) -> Result<(), SinkError> {
    let mut text = notice.text();
    text.push('\n');
    w.write_all(text.as_bytes())
        .and_then(|()| w.flush())
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                SinkError::fatal(format!("print on {name}: it is closed (broken pipe)"))
            } else {
                SinkError::retry(format!("print on {name}: {e}"))
            }
        })
}

fn append_line(path: &Path, body: &str) -> Result<(), SinkError> {
    use std::io::Write as _;
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| SinkError::retry(format!("create {}: {e}", dir.display())))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| SinkError::retry(format!("open {}: {e}", path.display())))?;
    let mut line = body.replace('\n', " ");
    line.push('\n');
    f.write_all(line.as_bytes())
        .map_err(|e| SinkError::retry(format!("append to {}: {e}", path.display())))
}

async fn run_command(
    argv: &[String],
    notice: &Notice<'_>,
    timeout: Duration,
) -> Result<(), SinkError> {
    use tokio::io::AsyncWriteExt as _;
    let Some((program, args)) = argv.split_first() else {
        return Err(SinkError::fatal("the command is empty"));
    };
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .env("EVALWATCH_EVENT", notice.kind)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| SinkError::retry(format!("start `{program}`: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let mut body = notice.body.to_owned();
        body.push('\n');
        // A command that exits without reading stdin is judged by its exit status alone.
        let _ = stdin.write_all(body.as_bytes()).await;
    }
    let out = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| SinkError::timeout(timeout))?
        .map_err(|e| SinkError::retry(format!("wait for `{program}`: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: String = stderr.trim().chars().take(200).collect();
        Err(SinkError::retry(format!(
            "`{program}` exited with {}{}",
            out.status,
            if tail.is_empty() {
                String::new()
            } else {
                format!(": {tail}")
            }
        )))
    }
}

/// Human label of a sink for listings.
#[must_use]
pub fn describe(sink: &Sink) -> String {
    let kind = match &sink.kind {
        SinkKind::Stdout => "stdout".to_owned(),
        SinkKind::Stderr => "stdout (on stderr: stdout carries machine output)".to_owned(),
        SinkKind::File(p) => format!("file {}", p.display()),
        SinkKind::Webhook { url, .. } => format!("webhook ({})", url_label(url)),
        SinkKind::Slack { url } => format!("slack ({})", url_label(url)),
        SinkKind::Command(argv) => format!("command {}", argv.first().map_or("", String::as_str)),
    };
    format!(
        "{} = {kind}, from {}",
        sink.id,
        severity_str(sink.min_severity)
    )
}

fn url_label(u: &UrlSource) -> String {
    match u {
        UrlSource::Env(v) => format!("URL from ${v}"),
        UrlSource::Literal(_) => "URL in the config".into(),
    }
}

#[cfg(test)]
#[allow(clippy::needless_pass_by_value)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(kind: &str, settings: Value) -> SinkSpec {
        SinkSpec {
            id: "s".into(),
            kind: kind.into(),
            settings: settings.as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn hmac_sha256_matches_rfc_4231_case_2() {
        // Key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn sinks_parse_and_reject_bad_settings() {
        let root = Path::new("/proj");
        let s = parse_sink(
            &spec(
                "file",
                json!({"path": "out/alerts.jsonl", "min_severity": "warning"}),
            ),
            root,
        )
        .unwrap();
        assert_eq!(
            s.kind,
            SinkKind::File(PathBuf::from("/proj/out/alerts.jsonl"))
        );
        assert!(s.accepts(Severity::Critical) && !s.accepts(Severity::Info));
        let s = parse_sink(
            &spec(
                "webhook",
                json!({"url_env": "HOOK", "secret_env": "KEY", "headers": {"X-A": "${T}"}}),
            ),
            root,
        )
        .unwrap();
        assert!(
            matches!(s.kind, SinkKind::Webhook { url: UrlSource::Env(ref v), .. } if v == "HOOK")
        );
        let s = parse_sink(
            &spec("command", json!({"command": "notify --to 'on call'"})),
            root,
        )
        .unwrap();
        assert_eq!(
            s.kind,
            SinkKind::Command(vec!["notify".into(), "--to".into(), "on call".into()])
        );
        for (kind, settings, want) in [
            ("slack", json!({}), "needs `url_env`"),
            ("slack", json!({"url": "a", "url_env": "B"}), "not both"),
            ("file", json!({}), "needs `path`"),
            ("command", json!({"command": []}), "empty"),
            ("stdout", json!({"min_severity": "loud"}), "min_severity"),
            ("stdout", json!({"retries": 99}), "retries"),
            ("stdout", json!({"urll": "x"}), "unknown setting"),
            ("pager", json!({}), "unknown sink type"),
        ] {
            let e = parse_sink(&spec(kind, settings), root).expect_err(want);
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn header_expansion_uses_the_injected_env() {
        let env = |k: &str| (k == "T").then(|| "tok".to_owned());
        assert_eq!(expand("Bearer ${T}", &env).unwrap(), "Bearer tok");
        assert_eq!(expand("${NOPE:-x}", &env).unwrap(), "x");
        let e = expand("${NOPE}", &env).unwrap_err();
        assert!(e.message.contains("NOPE") && !e.retryable);
    }

    #[tokio::test]
    async fn file_and_command_sinks_deliver_and_report_failures() {
        let dir = tempfile::tempdir().unwrap();
        let client = crate::provider::http_client().unwrap();
        let env = |_: &str| None;
        let body = r#"{"event":"alert","text":"hello"}"#;
        let notice = Notice {
            delivery_id: 1,
            kind: "alert",
            body,
        };
        let file = parse_sink(&spec("file", json!({"path": "a/b.jsonl"})), dir.path()).unwrap();
        assert_eq!(file.deliver(&client, &notice, &env).await, (1, Ok(())));
        assert_eq!(file.deliver(&client, &notice, &env).await.0, 1);
        let text = std::fs::read_to_string(dir.path().join("a/b.jsonl")).unwrap();
        assert_eq!(text, format!("{body}\n{body}\n"));
        let out = dir.path().join("stdin.json");
        let cmd = parse_sink(
            &spec(
                "command",
                json!({"command": ["sh", "-c", format!("cat > '{}'", out.display())]}),
            ),
            dir.path(),
        )
        .unwrap();
        assert_eq!(cmd.deliver(&client, &notice, &env).await, (1, Ok(())));
        assert_eq!(std::fs::read_to_string(&out).unwrap(), format!("{body}\n"));
        let mut failing = parse_sink(
            &spec(
                "command",
                json!({"command": ["sh", "-c", "echo boom >&2; exit 3"], "retries": 2}),
            ),
            dir.path(),
        )
        .unwrap();
        failing.base_delay = Duration::from_millis(1);
        let (attempts, r) = failing.deliver(&client, &notice, &env).await;
        assert_eq!(attempts, 3);
        let e = r.unwrap_err();
        assert!(e.message.contains("boom"), "{}", e.message);
        // A missing URL variable is not retried and names the variable only.
        let slack = parse_sink(
            &spec("slack", json!({"url_env": "NO_SUCH_HOOK"})),
            dir.path(),
        )
        .unwrap();
        let (attempts, r) = slack.deliver(&client, &notice, &env).await;
        assert_eq!(attempts, 1);
        assert!(r.unwrap_err().message.contains("NO_SUCH_HOOK"));
    }

    #[tokio::test]
    async fn unreachable_webhook_is_retried_and_hides_the_url() {
        // A port nothing listens on (bound, then closed).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let secret_url = format!("http://127.0.0.1:{port}/hook/SECRET-TOKEN");
        let env = move |k: &str| (k == "HOOK").then(|| secret_url.clone());
        let mut s = parse_sink(
            &spec("webhook", json!({"url_env": "HOOK", "retries": 1})),
            Path::new("."),
        )
        .unwrap();
        s.base_delay = Duration::from_millis(1);
        let notice = Notice {
            delivery_id: 1,
            kind: "alert",
            body: "{}",
        };
        let (attempts, r) = s
            .deliver(&crate::provider::http_client().unwrap(), &notice, &env)
            .await;
        assert_eq!(attempts, 2);
        let e = r.unwrap_err();
        assert!(!e.message.contains("SECRET-TOKEN"), "{}", e.message);
    }
}
