//! Run metrics: pure aggregation of result records, percentiles, gates.
//!
//! Definitions follow the spec's "Run metrics" section. Choices where it is silent:
//! - A rate whose denominator is zero is None, never 0 or NaN.
//! - `hallucination_rate`, `contradiction_rate` and `unsupported_rate` count results that
//!   carry a decided `hallucination` or `factuality` assertion (an unscorable one tells
//!   nothing); docs/metrics.md has the definitions.
//! - Latency percentiles use successful calls only (status other than error, latency known).
//! - Named metrics average the scores of scorable assertions with that `metric`.
//! - An errored result without an error kind is counted under `unknown`.
//! - With `repeat: N`, each case and provider also gets one verdict by its `repeat_policy`
//!   over its scored samples (errored and unscorable samples do not vote); `case_pass_rate`
//!   counts those verdicts and `agreement` averages the per-case agreement of the pairs with
//!   at least two scored samples. Per-case verdicts are listed in the overall metrics only.

mod acc;

use std::collections::BTreeMap;

use acc::{Acc, Interner, Policies};

use crate::model::{Gate, GateResult, Metrics, ProviderMetrics, RepeatPolicy, ResultRecord, Suite};

/// Percentile by nearest rank over sorted values (p in (0,100]); None when empty.
///
/// The rank is `ceil(p / 100 * n)`, 1-based, clamped to `1..=n` (so p <= 0 gives the
/// minimum); a NaN `p` gives None.
pub fn percentile_nearest_rank(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() || p.is_nan() {
        return None;
    }
    let n = sorted.len();
    // p * n / 100 is exact for integral p and n; the epsilon absorbs the rest.
    let rank = (p * n as f64 / 100.0 - 1e-9).ceil();
    let rank = if rank < 1.0 {
        1
    } else {
        (rank as usize).min(n)
    };
    sorted.get(rank - 1).copied()
}

#[derive(Default)]
struct ProviderGroups {
    all: Acc,
    tags: BTreeMap<String, Acc>,
}

/// Accumulates the metrics of a run per provider and per (provider, tag), in O(results)
/// small numbers (latencies), never whole outputs.
#[derive(Default)]
pub struct RunAccumulator {
    names: Interner,
    providers: BTreeMap<String, ProviderGroups>,
    policies: Policies,
}

impl RunAccumulator {
    /// An accumulator whose case verdicts use the default policy (`all`) for every case.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// An accumulator whose case verdicts follow the suite's `repeat_policy` and the cases'
    /// own.
    #[must_use]
    pub fn for_suite(suite: &Suite) -> Self {
        Self::with_policies(
            suite.repeat_policy,
            suite
                .cases
                .iter()
                .filter_map(|c| c.repeat_policy.map(|p| (c.id.as_str(), p))),
        )
    }

    /// A case's own `repeat_policy`, for a run that learns its cases as they stream in.
    pub fn add_policy(&mut self, case_id: &str, policy: RepeatPolicy) {
        let id = self.names.id(case_id);
        self.policies.by_case.insert(id, policy);
    }

    /// An accumulator with a default policy and per-case overrides (by case id).
    pub fn with_policies<'a>(
        default: RepeatPolicy,
        overrides: impl IntoIterator<Item = (&'a str, RepeatPolicy)>,
    ) -> Self {
        let mut names = Interner::default();
        let by_case = overrides
            .into_iter()
            .filter(|(_, p)| *p != default)
            .map(|(id, p)| (names.id(id), p))
            .collect();
        Self {
            names,
            providers: BTreeMap::new(),
            policies: Policies { default, by_case },
        }
    }

    pub fn add(&mut self, record: &ResultRecord) {
        let provider = self.names.id(&record.job.provider_id);
        let case = self.names.id(&record.job.case_id);
        let groups = match self.providers.get_mut(record.job.provider_id.as_str()) {
            Some(g) => g,
            None => self
                .providers
                .entry(record.job.provider_id.clone())
                .or_default(),
        };
        groups.all.add(record, provider, case);
        for (i, tag) in record.tags.iter().enumerate() {
            if record.tags[..i].contains(tag) {
                continue;
            }
            let acc = match groups.tags.get_mut(tag.as_str()) {
                Some(a) => a,
                None => groups.tags.entry(tag.clone()).or_default(),
            };
            acc.add(record, provider, case);
        }
    }

    /// Metrics per provider (tag None) then per provider and tag, sorted.
    /// `wall_secs` is the run's wall time, for throughput.
    pub fn finish(self, wall_secs: Option<f64>) -> Vec<ProviderMetrics> {
        let mut out = Vec::new();
        for (provider, groups) in self.providers {
            out.push(ProviderMetrics {
                provider: provider.clone(),
                tag: None,
                metrics: groups.all.finish(wall_secs, &self.names, &self.policies),
            });
            for (tag, acc) in groups.tags {
                let mut metrics = acc.finish(wall_secs, &self.names, &self.policies);
                // The overall row lists every verdict already; a tag's are a subset.
                metrics.case_verdicts = Vec::new();
                out.push(ProviderMetrics {
                    provider: provider.clone(),
                    tag: Some(tag),
                    metrics,
                });
            }
        }
        out
    }
}

fn fmt_limit(v: f64) -> String {
    format!("{v}")
}

/// The human form of a gate's limit: `>= 0.9`, `<= 0.05`, `0.5..0.9`, or `any`.
pub fn limit_text(gate: &Gate) -> String {
    match (gate.min, gate.max) {
        (Some(a), Some(b)) => format!("{}..{}", fmt_limit(a), fmt_limit(b)),
        (Some(a), None) => format!(">= {}", fmt_limit(a)),
        (None, Some(b)) => format!("<= {}", fmt_limit(b)),
        (None, None) => "any".to_owned(),
    }
}

/// Evaluate a suite's gates against one provider's metrics.
///
/// A gate is ok when the metric has a value within `min..=max`. A metric without a value
/// (a rate over nothing) is not ok: the run could not show the limit was met.
pub fn evaluate_gates(gates: &[Gate], provider: &str, metrics: &Metrics) -> Vec<GateResult> {
    gates
        .iter()
        .map(|g| {
            let value = metrics.get(&g.metric);
            let ok = value.is_some_and(|v| {
                !v.is_nan() && g.min.is_none_or(|m| v >= m) && g.max.is_none_or(|m| v <= m)
            });
            GateResult {
                metric: g.metric.clone(),
                provider: provider.to_owned(),
                limit: limit_text(g),
                value,
                ok,
            }
        })
        .collect()
}

/// Metrics of one result set, from scratch, case verdicts by the default policy (`all`).
pub fn compute(records: &[ResultRecord], wall_secs: Option<f64>) -> Metrics {
    compute_with(records, wall_secs, RepeatPolicy::default())
}

/// Metrics of one result set, from scratch, case verdicts by `policy`.
pub fn compute_with(
    records: &[ResultRecord],
    wall_secs: Option<f64>,
    policy: RepeatPolicy,
) -> Metrics {
    let mut names = Interner::default();
    let mut acc = Acc::default();
    for r in records {
        let provider = names.id(&r.job.provider_id);
        let case = names.id(&r.job.case_id);
        acc.add(r, provider, case);
    }
    let policies = Policies {
        default: policy,
        by_case: std::collections::HashMap::new(),
    };
    acc.finish(wall_secs, &names, &policies)
}

#[cfg(test)]
mod tests;
