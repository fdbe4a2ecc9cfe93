//! Rows the report queries of the store return (defined here, beside their only users, so
//! that they can be named outside the store).

use crate::model::{CaseStatus, Metrics, RunStatus};

/// One run's metrics for one provider (and optionally one tag), for trends.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendRow {
    pub run_id: String,
    pub started_at: String,
    pub status: RunStatus,
    pub suite_hash: String,
    pub provider: String,
    /// None for the provider's overall row.
    pub tag: Option<String>,
    pub pass_rate: Option<f64>,
    pub mean_score: Option<f64>,
    pub error_rate: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub cost_usd: Option<f64>,
    pub hallucination_rate: Option<f64>,
    /// The whole metrics, parsed only for overall rows when asked for.
    pub metrics: Option<Metrics>,
}

/// What to read in [`Store::trend`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrendQuery<'a> {
    pub suite: &'a str,
    /// RFC 3339: only runs that started at or after it.
    pub since: Option<&'a str>,
    /// Also read the per-tag rows.
    pub tags: bool,
    /// Parse the whole `Metrics` of the overall rows (else only the headline columns).
    pub full: bool,
}

/// One result's verdict, score and latency, keyed by case, provider and sample.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredResult {
    pub case_id: String,
    pub provider: String,
    pub sample: u32,
    pub status: CaseStatus,
    pub score: Option<f64>,
    pub latency_ms: Option<f64>,
}
