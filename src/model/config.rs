//! Project configuration and provider definitions, after loading and validation.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The kind of a provider (`type:` in YAML).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Openai,
    Anthropic,
    Ollama,
    Http,
    Exec,
    Replay,
    Echo,
}

impl ProviderKind {
    pub const ALL: [&'static str; 7] = [
        "openai",
        "anthropic",
        "ollama",
        "http",
        "exec",
        "replay",
        "echo",
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Openai => "openai",
            Self::Anthropic => "anthropic",
            Self::Ollama => "ollama",
            Self::Http => "http",
            Self::Exec => "exec",
            Self::Replay => "replay",
            Self::Echo => "echo",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "openai" => Self::Openai,
            "anthropic" => Self::Anthropic,
            "ollama" => Self::Ollama,
            "http" => Self::Http,
            "exec" => Self::Exec,
            "replay" => Self::Replay,
            "echo" => Self::Echo,
            _ => return None,
        })
    }
}

/// Dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Pricing {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

impl Pricing {
    /// Cost in USD of one call.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn cost(&self, tokens_in: u64, tokens_out: u64) -> f64 {
        (tokens_in as f64 * self.input_per_mtok + tokens_out as f64 * self.output_per_mtok) / 1e6
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct RateLimit {
    /// Requests per minute.
    pub rpm: Option<u32>,
    /// Tokens per minute.
    pub tpm: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// Azure OpenAI deployment settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AzureSpec {
    pub deployment: String,
    pub api_version: String,
}

/// Settings of the generic `http` provider.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HttpSpec {
    pub method: String,
    /// Template of the URL; `${VAR}` already expanded.
    pub url: String,
    /// Header templates. Values may reference secrets: never log or store them.
    pub headers: BTreeMap<String, String>,
    /// The body as a JSON value whose strings are minijinja templates.
    pub body: Option<serde_json::Value>,
    /// JSON pointer to the answer text.
    pub output: String,
    /// JSON pointers to token counts.
    pub usage_in: Option<String>,
    pub usage_out: Option<String>,
}

/// A provider definition, validated. Secrets are not held here: only the names of the
/// environment variables that hold them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderSpec {
    /// Stable id: history is keyed by it.
    pub id: String,
    pub kind: ProviderKind,
    pub model: Option<String>,
    pub base_url: Option<String>,
    /// Name of the environment variable holding the API key.
    pub api_key_env: Option<String>,
    /// Passed through to the API body (temperature, `max_tokens`, ...).
    pub params: serde_json::Map<String, serde_json::Value>,
    pub pricing: Option<Pricing>,
    /// In-flight requests to this provider.
    pub concurrency: usize,
    pub rate_limit: RateLimit,
    pub timeout: Duration,
    pub retries: RetryPolicy,
    pub azure: Option<AzureSpec>,
    pub http: Option<HttpSpec>,
    /// `exec`: the program and its arguments.
    pub command: Vec<String>,
    /// `exec`: working directory (defaults to the defining file's folder).
    pub cwd: Option<PathBuf>,
    /// `replay`: the JSONL file of recorded outputs.
    pub file: Option<PathBuf>,
    /// The most of an answer that is read (an HTTP body, an `exec` command's stdout), in
    /// bytes, when set here: see [`ProviderSpec::output_cap`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_bytes: Option<u64>,
}

/// The default `max_output_bytes`: 1 MiB.
pub const DEFAULT_MAX_OUTPUT_BYTES: u64 = 1 << 20;

impl ProviderSpec {
    /// The most of an answer that is read: the provider's `max_output_bytes`, else
    /// [`DEFAULT_MAX_OUTPUT_BYTES`] (`run` fills in evalwatch.yaml's before building it).
    #[must_use]
    pub fn output_cap(&self) -> u64 {
        self.max_output_bytes.unwrap_or(DEFAULT_MAX_OUTPUT_BYTES)
    }
}

impl ProviderSpec {
    /// A provider of the given kind with every setting at its default.
    #[must_use]
    pub fn new(id: impl Into<String>, kind: ProviderKind) -> Self {
        Self {
            id: id.into(),
            kind,
            model: None,
            base_url: None,
            api_key_env: None,
            params: serde_json::Map::new(),
            pricing: None,
            concurrency: 8,
            rate_limit: RateLimit::default(),
            timeout: Duration::from_secs(60),
            retries: RetryPolicy::default(),
            azure: None,
            http: None,
            command: Vec::new(),
            cwd: None,
            max_output_bytes: None,
            file: None,
        }
    }
}

/// Where alerts go (evaluated by the alert stage).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SinkSpec {
    pub id: String,
    pub kind: String,
    /// Remaining settings as written, with `${VAR}` expanded where not secret.
    pub settings: serde_json::Map<String, serde_json::Value>,
}

/// `evalwatch.yaml`, loaded. Every field has a sensible default when the file is absent.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ProjectConfig {
    /// The file it came from, if any.
    pub source: Option<PathBuf>,
    /// Folder that relative paths resolve against (the config's folder, or the cwd).
    pub root: PathBuf,
    pub store: Option<PathBuf>,
    pub reports: Option<PathBuf>,
    pub providers: Vec<ProviderSpec>,
    pub judge: Option<String>,
    pub sinks: Vec<SinkSpec>,
    /// Default alert rules for every suite, raw.
    pub alerts: Vec<serde_json::Value>,
    /// Where each of `alerts` names its metric (for a rule a suite cannot take).
    #[serde(default, skip_serializing)]
    pub alert_locations: Vec<super::Location>,
    /// Error budget: share of errored results above which `run` exits 3 (default 0.5).
    pub error_budget: Option<f64>,
    /// `max_output_bytes` of every provider that does not set its own.
    #[serde(default)]
    pub max_output_bytes: Option<u64>,
    /// `circuit_breaker:` — cases of one provider in a row with no answer after which it is
    /// not called again: None for the default (10), `Some(0)` when switched `off`.
    #[serde(default)]
    pub circuit_breaker: Option<u32>,
    /// `traffic:` sources, in the order written.
    #[serde(skip)]
    pub traffic: Vec<super::TrafficSource>,
}
