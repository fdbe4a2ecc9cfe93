//! Jobs, provider calls, scores and run summaries.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A rendered chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

/// What a provider is asked: the rendered conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub case_id: String,
    pub sample: u32,
    /// The system prompt, if any (not repeated in `messages`).
    pub system: Option<String>,
    pub messages: Vec<ChatMessage>,
    /// Case variables, for providers that template their own body (`http`).
    pub vars: BTreeMap<String, serde_json::Value>,
}

impl Request {
    /// The conversation flattened to text: what `echo` returns and `exec` receives on stdin.
    #[must_use]
    pub fn prompt_text(&self) -> String {
        if self.messages.len() == 1 && self.system.is_none() {
            return self.messages[0].content.clone();
        }
        let mut out = String::new();
        if let Some(s) = &self.system {
            out.push_str(s);
            out.push_str("\n\n");
        }
        for (i, m) in self.messages.iter().enumerate() {
            if i > 0 {
                out.push_str("\n\n");
            }
            if self.messages.len() > 1 {
                out.push_str(&m.role);
                out.push_str(": ");
            }
            out.push_str(&m.content);
        }
        out
    }
}

/// A provider's answer.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Completion {
    pub output: String,
    /// Wall time of the successful attempt, ms.
    pub latency_ms: f64,
    pub tokens_in: Option<u64>,
    pub tokens_out: Option<u64>,
    pub finish_reason: Option<String>,
    /// Filled from pricing by the executor when the provider has one.
    pub cost_usd: Option<f64>,
    /// The answer's length in bytes as the provider gave it (filled by the executor when the
    /// provider does not say); for an `exec` command stopped at its cap, the bytes read.
    #[serde(default)]
    pub output_bytes: Option<u64>,
    /// `output` holds only the first `max_output_bytes` of a longer answer (then marked).
    #[serde(default)]
    pub truncated: bool,
    /// The model version the provider said answered (`model`, OpenAI's
    /// `system_fingerprint`), when it says.
    #[serde(default)]
    pub reported: Option<ReportedModel>,
}

/// The model version a provider reports with an answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct ReportedModel {
    /// `gpt-4o-2024-11-20`, `claude-sonnet-4-20250514`.
    pub model: String,
    /// OpenAI's `system_fingerprint` (the backend configuration), when given.
    pub fingerprint: Option<String>,
}

impl ReportedModel {
    /// `gpt-4o-2024-11-20 (fp_abc)`.
    #[must_use]
    pub fn label(&self) -> String {
        match &self.fingerprint {
            Some(fp) => format!("{} ({fp})", self.model),
            None => self.model.clone(),
        }
    }
}

/// Why a call failed, for counting errors by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Timeout,
    RateLimited,
    Server,
    BadResponse,
    /// 4xx other than 429: bad request, auth, not found.
    Client,
    /// Connection refused, DNS, reset.
    Transport,
    /// `exec`: the command failed or exited non-zero.
    Exec,
    /// `replay`: no recording for this case.
    Missing,
    /// Missing key or invalid settings discovered at call time.
    Config,
    Cancelled,
    /// Not called: the provider's circuit breaker opened after consecutive connection
    /// failures or timeouts with no answer in between.
    CircuitOpen,
}

impl ErrorKind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::RateLimited => "rate_limited",
            Self::Server => "server",
            Self::BadResponse => "bad_response",
            Self::Client => "client",
            Self::Transport => "transport",
            Self::Exec => "exec",
            Self::Missing => "missing",
            Self::Config => "config",
            Self::Cancelled => "cancelled",
            Self::CircuitOpen => "circuit_open",
        }
    }
}

/// A failed provider call. The message never contains a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct CallError {
    pub kind: ErrorKind,
    pub message: String,
    /// Whether another attempt may succeed.
    pub retryable: bool,
    /// Server-requested wait (`Retry-After`).
    pub retry_after: Option<Duration>,
}

impl CallError {
    #[must_use]
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let retryable = matches!(
            kind,
            ErrorKind::Timeout | ErrorKind::RateLimited | ErrorKind::Server | ErrorKind::Transport
        );
        Self {
            kind,
            message: message.into(),
            retryable,
            retry_after: None,
        }
    }
}

/// One unit of work: a case, on a provider, one sample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Position in the plan (stable for a given suite and filters).
    pub seq: usize,
    /// Index into `Suite::cases`.
    pub case_index: usize,
    pub case_id: String,
    /// Index into `Suite::providers`.
    pub provider_index: usize,
    pub provider_id: String,
    /// 0-based sample number (`repeat`).
    pub sample: u32,
    /// The case itself, while the job is in flight (a run that streams its cases holds no
    /// suite-wide list of them). Not part of the job's identity: never compared or stored.
    #[serde(skip)]
    pub case: CaseRef,
}

/// A job's case, shared with the other jobs of that case; see [`Job::case`].
#[derive(Clone, Default)]
pub struct CaseRef(pub Option<std::sync::Arc<super::Case>>);

impl CaseRef {
    #[must_use]
    pub fn get(&self) -> Option<&super::Case> {
        self.0.as_deref()
    }
}

impl std::fmt::Debug for CaseRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(c) => write!(f, "CaseRef({})", c.id),
            None => f.write_str("CaseRef(-)"),
        }
    }
}

/// Identity is in the job's other fields.
impl PartialEq for CaseRef {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for CaseRef {}

impl Job {
    /// Sample `sample` of case `case_id` on provider `provider_id`, first in its plan (tests
    /// and tools that build records by hand).
    #[must_use]
    pub fn of(case_id: &str, provider_id: &str, sample: u32) -> Self {
        Self {
            seq: 0,
            case_index: 0,
            case_id: case_id.to_owned(),
            provider_index: 0,
            provider_id: provider_id.to_owned(),
            sample,
            case: CaseRef::default(),
        }
    }
}

/// Final state of one result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaseStatus {
    Passed,
    Failed,
    Error,
    Unscorable,
}

impl CaseStatus {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Failed => "failed",
            Self::Error => "error",
            Self::Unscorable => "unscorable",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "passed" => Self::Passed,
            "failed" => Self::Failed,
            "error" => Self::Error,
            "unscorable" => Self::Unscorable,
            _ => return None,
        })
    }
}

/// The verdict of one assertion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssertionOutcome {
    /// As written (`not-contains`).
    pub type_name: String,
    pub pass: bool,
    /// In [0,1], after negation.
    pub score: f64,
    pub reason: String,
    /// Type-specific detail (spans, labels, distances), or null.
    pub details: serde_json::Value,
    pub weight: f64,
    pub metric: Option<String>,
    /// The assertion could not be decided (e.g. a judge answer that did not parse).
    pub unscorable: bool,
}

/// Expected and predicted label of a `classification` assertion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelPair {
    pub expected: String,
    /// None when the output matched no label.
    pub predicted: Option<String>,
}

/// The score of one completed call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub status: CaseStatus,
    /// Weighted mean of assertion scores; None when unscorable throughout.
    pub score: Option<f64>,
    pub assertions: Vec<AssertionOutcome>,
    pub label: Option<LabelPair>,
}

/// Everything stored for one job: what the store writer receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRecord {
    pub job: Job,
    /// Content hash of the case when it ran.
    pub case_hash: String,
    pub tags: Vec<String>,
    /// The rendered prompt as text (stored deduplicated).
    pub prompt: String,
    pub status: CaseStatus,
    pub score: Option<f64>,
    pub output: Option<String>,
    pub error: Option<String>,
    pub error_kind: Option<ErrorKind>,
    pub latency_ms: Option<f64>,
    pub tokens_in: Option<u64>,
    pub tokens_out: Option<u64>,
    pub cost_usd: Option<f64>,
    pub finish_reason: Option<String>,
    /// The answer's length in bytes as the provider gave it (see [`Completion::output_bytes`]).
    #[serde(default)]
    pub output_bytes: Option<u64>,
    /// The stored output is the first part of a longer answer.
    #[serde(default)]
    pub truncated: bool,
    /// Attempts made (1 = no retry).
    pub attempts: u32,
    pub assertions: Vec<AssertionOutcome>,
    pub label: Option<LabelPair>,
    /// The model version the provider said answered, when it says: counted by the run's
    /// writer with the result's batch (`Store::run_versions`), not kept with the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported: Option<ReportedModel>,
}

impl ResultRecord {
    /// A record of `job` in `status` with nothing else known yet (no output, score, usage or
    /// assertions; one attempt): the scorer and the executor's result fill in the rest.
    #[must_use]
    pub fn new(job: Job, status: CaseStatus) -> Self {
        Self {
            job,
            case_hash: String::new(),
            tags: Vec::new(),
            prompt: String::new(),
            status,
            score: None,
            output: None,
            error: None,
            error_kind: None,
            latency_ms: None,
            tokens_in: None,
            tokens_out: None,
            cost_usd: None,
            finish_reason: None,
            output_bytes: None,
            truncated: false,
            attempts: 1,
            assertions: Vec::new(),
            label: None,
            reported: None,
        }
    }
}

/// State of a run in history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Complete,
    Incomplete,
    Failed,
}

impl RunStatus {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Complete => "complete",
            Self::Incomplete => "incomplete",
            Self::Failed => "failed",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => Self::Running,
            "complete" => Self::Complete,
            "incomplete" => Self::Incomplete,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// Precision, recall and F1 of one label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelMetrics {
    pub label: String,
    pub support: u64,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1: Option<f64>,
}

/// Metrics of one run on one provider (optionally restricted to one tag). Rates whose
/// denominator is zero are None (shown as "n/a"), never 0 or NaN.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Metrics {
    pub cases: u64,
    pub passed: u64,
    pub failed: u64,
    pub errors: u64,
    pub unscorable: u64,
    /// passed / (passed + failed)
    pub pass_rate: Option<f64>,
    /// errors / cases
    pub error_rate: Option<f64>,
    pub mean_score: Option<f64>,
    pub hallucination_rate: Option<f64>,
    /// Results the hallucination rates count (with a decided `hallucination` or `factuality`
    /// assertion): their denominator.
    #[serde(default)]
    pub hallucination_checked: u64,
    /// Of those, the hallucinated ones: the numerator of `hallucination_rate`.
    #[serde(default)]
    pub hallucinated: u64,
    pub contradiction_rate: Option<f64>,
    pub unsupported_rate: Option<f64>,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub latency_max_ms: Option<f64>,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_usd: f64,
    pub cost_per_case_usd: Option<f64>,
    /// Tokens (in + out) of judge calls made by this run (cached answers cost nothing).
    #[serde(default)]
    pub judge_tokens: u64,
    /// Cost of those judge calls in USD, at the judge provider's `pricing` (not in `cost_usd`,
    /// which is the cost of the system under test).
    #[serde(default)]
    pub judge_cost_usd: f64,
    /// Completed results per second of wall time.
    pub throughput_per_s: Option<f64>,
    /// Case ids with mixed outcomes across samples.
    pub flaky_cases: Vec<String>,
    /// Case verdicts (`repeat_policy`) over case and provider pairs:
    /// passed / (passed + failed); pairs with no scored sample are left out.
    #[serde(default)]
    pub case_pass_rate: Option<f64>,
    /// Mean agreement of the pairs with at least two scored samples (see [`CaseVerdict`]).
    #[serde(default)]
    pub agreement: Option<f64>,
    /// The suite's `repeat_policy`, set when some case ran more than one sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_policy: Option<super::RepeatPolicy>,
    /// One verdict per case and provider, when some case ran more than one sample (overall
    /// metrics only; empty per tag).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub case_verdicts: Vec<CaseVerdict>,
    /// Mean score of each named metric.
    pub named: BTreeMap<String, f64>,
    pub labels: Vec<LabelMetrics>,
    /// Errors counted by kind.
    pub errors_by_kind: BTreeMap<String, u64>,
}

impl Metrics {
    /// A metric by its spec name, for gates and alerts.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn get(&self, name: &str) -> Option<f64> {
        match name {
            "cases" => Some(self.cases as f64),
            "passed" => Some(self.passed as f64),
            "failed" => Some(self.failed as f64),
            "errors" => Some(self.errors as f64),
            "unscorable" => Some(self.unscorable as f64),
            "pass_rate" => self.pass_rate,
            "error_rate" => self.error_rate,
            "mean_score" => self.mean_score,
            "hallucination_rate" => self.hallucination_rate,
            "contradiction_rate" => self.contradiction_rate,
            "unsupported_rate" => self.unsupported_rate,
            "latency_p50_ms" => self.latency_p50_ms,
            "latency_p95_ms" => self.latency_p95_ms,
            "latency_p99_ms" => self.latency_p99_ms,
            "latency_max_ms" => self.latency_max_ms,
            "tokens_in" => Some(self.tokens_in as f64),
            "tokens_out" => Some(self.tokens_out as f64),
            "cost_usd" => Some(self.cost_usd),
            "cost_per_case_usd" => self.cost_per_case_usd,
            "judge_tokens" => Some(self.judge_tokens as f64),
            "judge_cost_usd" => Some(self.judge_cost_usd),
            "throughput_per_s" => self.throughput_per_s,
            "flaky_cases" => Some(self.flaky_cases.len() as f64),
            "case_pass_rate" => self.case_pass_rate,
            "agreement" => self.agreement,
            other => self.named.get(other).copied(),
        }
    }

    /// Names accepted by [`Metrics::get`] besides named metrics.
    pub const NAMES: [&'static str; 25] = [
        "cases",
        "passed",
        "failed",
        "errors",
        "unscorable",
        "pass_rate",
        "error_rate",
        "mean_score",
        "hallucination_rate",
        "contradiction_rate",
        "unsupported_rate",
        "latency_p50_ms",
        "latency_p95_ms",
        "latency_p99_ms",
        "latency_max_ms",
        "tokens_in",
        "tokens_out",
        "cost_usd",
        "cost_per_case_usd",
        "judge_tokens",
        "judge_cost_usd",
        "throughput_per_s",
        "flaky_cases",
        "case_pass_rate",
        "agreement",
    ];
}

/// The verdict of one case on one provider over its samples (`repeat: N`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseVerdict {
    pub case_id: String,
    pub provider: String,
    /// Results stored for the pair, whatever their status.
    pub samples: u64,
    pub passed: u64,
    pub failed: u64,
    pub errors: u64,
    pub unscorable: u64,
    /// Share of the scored samples (passed + failed) that agree with the majority outcome:
    /// max(passed, failed) / (passed + failed), in [0.5, 1]; None when nothing was scored.
    pub agreement: Option<f64>,
    /// The policy that made the verdict.
    pub policy: super::RepeatPolicy,
    /// `passed` or `failed` by the policy; `error` when no sample was scored and one
    /// errored, `unscorable` when no sample was scored and none errored.
    pub verdict: CaseStatus,
    /// Both passed and failed samples.
    pub flaky: bool,
}

/// The outcome of one gate on one provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateResult {
    pub metric: String,
    pub provider: String,
    /// Human form of the limit, e.g. ">= 0.9".
    pub limit: String,
    pub value: Option<f64>,
    pub ok: bool,
}

/// A run's header row in history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub run_id: String,
    pub suite: String,
    pub suite_hash: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub finished_at: Option<String>,
    pub status: RunStatus,
    /// Provider ids, in order.
    pub providers: Vec<String>,
    /// Jobs planned.
    pub planned: u64,
    /// The case filters a run was limited to (`--case c1 --tag smoke`), None for a run of
    /// the whole suite. A filtered run is a spot check: never a baseline, a trend point or
    /// the subject of alert rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

impl RunInfo {
    /// Seconds from its start to its end, when it ended (`show`'s and `export`'s
    /// `wall_secs`).
    #[must_use]
    pub fn wall_secs(&self) -> Option<f64> {
        wall_secs(&self.started_at, self.finished_at.as_deref()?)
    }
}

/// Seconds from `start` to `end` (RFC 3339); None when either is not a time.
#[must_use]
pub fn wall_secs(start: &str, end: &str) -> Option<f64> {
    let start = chrono::DateTime::parse_from_rfc3339(start).ok()?;
    let end = chrono::DateTime::parse_from_rfc3339(end).ok()?;
    #[allow(clippy::cast_precision_loss)]
    Some((end - start).num_milliseconds() as f64 / 1000.0)
}

/// Metrics of a run for one provider, overall (`tag` None) or for one tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderMetrics {
    pub provider: String,
    pub tag: Option<String>,
    pub metrics: Metrics,
}

/// Alert severities, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}
