//! Rows of history the read side gives: a run's metrics over time, alert episodes. Plain
//! data, so that what reads them (the report composer and renderers) needs no store.

use super::{Metrics, RunStatus};

/// The labels a run was given (`run --label key=value`), by key.
pub type RunLabels = std::collections::BTreeMap<String, String>;

/// One run's metrics for one provider (and optionally one tag), for trends.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendRow {
    pub run_id: String,
    pub started_at: String,
    /// `started_at` in milliseconds since 1970 (UTC), as the store orders and bounds runs
    /// by it; None for a start that is not an RFC 3339 time.
    pub started_ms: Option<i64>,
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

/// What to read in the store's `trend` read.
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

/// One alert episode.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    pub id: i64,
    pub suite: String,
    pub rule: String,
    pub metric: String,
    pub provider: String,
    pub tag: Option<String>,
    pub severity: String,
    pub opened_at: String,
    pub opened_run: Option<String>,
    pub last_seen_at: String,
    pub last_run: Option<String>,
    pub value: Option<f64>,
    pub baseline_value: Option<f64>,
    pub message: String,
    pub resolved_at: Option<String>,
    pub resolved_run: Option<String>,
}

impl AlertRow {
    /// What run `run_id` did to this alert: `opened`, `resolved` or `still open` (it saw it
    /// firing again).
    #[must_use]
    pub fn state_in(&self, run_id: &str) -> &'static str {
        if self.resolved_run.as_deref() == Some(run_id) {
            "resolved"
        } else if self.opened_run.as_deref() == Some(run_id) {
            "opened"
        } else {
            "still open"
        }
    }
}
