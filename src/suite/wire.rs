//! Mirror structs of the YAML files, as written by users. Each part of a file (a case, an
//! assertion, a provider, ...) is decoded on its own so that one bad part does not hide the
//! next; parts decoded separately appear here as `IgnoredAny`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

/// Top-level keys of a suite file.
pub(crate) const SUITE_KEYS: [&str; 18] = [
    "suite",
    "description",
    "tags",
    "schedule",
    "timezone",
    "catch_up",
    "jitter",
    "providers",
    "system",
    "prompt",
    "messages",
    "repeat",
    "repeat_policy",
    "defaults",
    "cases",
    "gates",
    "alerts",
    "review",
];

/// Top-level keys of `evalwatch.yaml`.
pub(crate) const PROJECT_KEYS: [&str; 10] = [
    "store",
    "reports",
    "providers",
    "judge",
    "sinks",
    "alerts",
    "error_budget",
    "max_output_bytes",
    "circuit_breaker",
    "traffic",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WireCase {
    pub id: Option<String>,
    /// Free text for humans; not used.
    #[allow(dead_code)]
    pub description: Option<String>,
    pub tags: Option<Vec<String>>,
    pub vars: Option<BTreeMap<String, Value>>,
    /// A scalar; numbers and booleans are taken as their text.
    pub expected: Option<Value>,
    /// A string or a list of strings.
    pub context: Option<Value>,
    /// Decoded one assertion at a time.
    #[allow(dead_code)]
    pub assert: Option<IgnoredAny>,
    pub threshold: Option<f64>,
    /// Checked from its node (`cases::repeat_policy`), for the position of an error.
    #[allow(dead_code)]
    pub repeat_policy: Option<IgnoredAny>,
    /// `true`, or the types of `defaults.assert` entries this case does without; checked
    /// from its node (`cases::skipped_defaults`).
    #[allow(dead_code)]
    pub skip_default_assert: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WireInclude {
    pub include: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WireAssertion {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: Option<Value>,
    pub weight: Option<f64>,
    pub threshold: Option<f64>,
    pub metric: Option<String>,
    pub normalize: Option<Vec<String>>,
    pub pattern: Option<String>,
    pub tolerance: Option<Value>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub unit: Option<String>,
    pub labels: Option<Vec<String>>,
    pub path: Option<String>,
    pub schema: Option<Value>,
    pub algorithm: Option<String>,
    /// Model-assisted fields: type-checked here, carried in `Check::Model::params`.
    pub provider: Option<String>,
    pub rubric: Option<String>,
    pub method: Option<String>,
    pub scores: Option<Value>,
    /// `hallucination`: what the output is checked against, and the judge's sample.
    pub support: Option<Value>,
    pub judge_share: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WireDefaults {
    pub vars: Option<BTreeMap<String, Value>>,
    /// Decoded one assertion at a time.
    #[allow(dead_code)]
    pub assert: Option<IgnoredAny>,
    pub threshold: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WireGate {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WireReview {
    pub sample: Option<usize>,
    pub seed: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WireMessage {
    pub role: String,
    pub content: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WireProvider {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub model: Option<String>,
    pub base_url: Option<String>,
    pub api_key_env: Option<String>,
    pub params: Option<serde_json::Map<String, Value>>,
    pub pricing: Option<WirePricing>,
    pub concurrency: Option<usize>,
    pub rate_limit: Option<WireRateLimit>,
    /// `60s`, `500ms`, `2m`, or a number of seconds.
    pub timeout: Option<Value>,
    pub retries: Option<WireRetries>,
    pub azure: Option<WireAzure>,
    pub method: Option<String>,
    pub url: Option<String>,
    /// Kept unexpanded: the http provider expands them at call time.
    pub headers: Option<BTreeMap<String, String>>,
    pub body: Option<Value>,
    pub output: Option<String>,
    pub usage: Option<WireUsage>,
    /// A command line (split like a shell) or a list of arguments.
    pub command: Option<Value>,
    pub cwd: Option<String>,
    pub file: Option<String>,
    /// Bytes: a number, or a string with a unit (`512KiB`, `4MiB`).
    pub max_output_bytes: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WirePricing {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WireRateLimit {
    pub rpm: Option<u32>,
    pub tpm: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WireRetries {
    pub max: Option<u32>,
    pub base_delay: Option<Value>,
    pub max_delay: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WireAzure {
    pub deployment: String,
    pub api_version: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WireUsage {
    pub tokens_in: Option<String>,
    pub tokens_out: Option<String>,
}
