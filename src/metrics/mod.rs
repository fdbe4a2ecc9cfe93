//! Run metrics: pure aggregation of result records, percentiles, gates.

use crate::model::{Gate, GateResult, Metrics, ProviderMetrics, ResultRecord};

/// Percentile by nearest rank over sorted values (p in (0,100]); None when empty.
pub fn percentile_nearest_rank(sorted: &[f64], p: f64) -> Option<f64> {
    let _ = (sorted, p);
    todo!()
}

/// Accumulates the metrics of a run per provider and per (provider, tag), in O(results)
/// small numbers (latencies), never whole outputs.
#[derive(Default)]
pub struct RunAccumulator {}

impl RunAccumulator {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, record: &ResultRecord) {
        let _ = record;
        todo!()
    }

    /// Metrics per provider (tag None) then per provider and tag, sorted.
    /// `wall_secs` is the run's wall time, for throughput.
    pub fn finish(self, wall_secs: Option<f64>) -> Vec<ProviderMetrics> {
        let _ = wall_secs;
        todo!()
    }
}

/// Evaluate a suite's gates against one provider's metrics.
pub fn evaluate_gates(gates: &[Gate], provider: &str, metrics: &Metrics) -> Vec<GateResult> {
    let _ = (gates, provider, metrics);
    todo!()
}

/// Metrics of one result set, from scratch (used by tests and by `RunAccumulator`).
pub fn compute(records: &[ResultRecord], wall_secs: Option<f64>) -> Metrics {
    let _ = (records, wall_secs);
    todo!()
}
