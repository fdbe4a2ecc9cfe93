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

use acc::{Acc, Env, Interner, Peer, Policies};

use crate::model::{Gate, GateResult, Metrics, ProviderMetrics, RepeatPolicy, ResultRecord, Suite};

/// Percentile by nearest rank over sorted values (p in (0,100]); None when empty.
///
/// The rank is `ceil(p / 100 * n)`, 1-based, clamped to `1..=n` (so p <= 0 gives the
/// minimum); a NaN `p` gives None.
pub fn percentile_nearest_rank(sorted: &[f64], p: f64) -> Option<f64> {
    sorted.get(nearest_rank(sorted.len(), p)?).copied()
}

/// The 0-based index of the nearest-rank percentile `p` among `n` sorted values; None when
/// `n` is 0 or `p` is NaN.
fn nearest_rank(n: usize, p: f64) -> Option<usize> {
    if n == 0 || p.is_nan() {
        return None;
    }
    // p * n / 100 is exact for integral p and n; the epsilon absorbs the rest.
    let rank = (p * n as f64 / 100.0 - 1e-9).ceil();
    let rank = if rank < 1.0 {
        1
    } else {
        (rank as usize).min(n)
    };
    Some(rank - 1)
}

struct ProviderGroups {
    /// The interned provider id.
    id: u32,
    all: Acc,
    tags: BTreeMap<String, Acc>,
}

/// Accumulates the metrics of a run per provider and per (provider, tag), in O(results)
/// small numbers (latencies), never whole outputs.
///
/// Case verdicts (`repeat: N`): after [`RunAccumulator::expect_samples`], a case's verdict on
/// a provider is folded into the totals as soon as its last sample is in, so per-case state
/// is kept only for cases still incomplete, plus the verdicts the overall rows list when
/// cases have several samples (`case_verdicts`). Without it, every case is counted until
/// [`RunAccumulator::finish`].
#[derive(Default)]
pub struct RunAccumulator {
    /// Provider ids.
    names: Interner,
    providers: BTreeMap<String, ProviderGroups>,
    policies: Policies,
    /// Samples per case and provider, when known.
    expect: Option<u32>,
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

    /// An accumulator with a default policy and per-case overrides (by case id).
    pub fn with_policies<'a>(
        default: RepeatPolicy,
        overrides: impl IntoIterator<Item = (&'a str, RepeatPolicy)>,
    ) -> Self {
        let mut policies = Policies::new(default);
        for (id, p) in overrides.into_iter().filter(|(_, p)| *p != default) {
            policies.set(id, p);
        }
        Self {
            policies,
            ..Self::default()
        }
    }

    /// Sets the `repeat_policy` of one case (its own; the default is the one given at
    /// creation), as cases stream in. It must come before the case's last result is added:
    /// a verdict already decided keeps the policy it was decided by.
    pub fn add_policy(&mut self, case_id: &str, policy: RepeatPolicy) {
        self.policies.set(case_id, policy);
    }

    /// Tells how many results each case gets on each provider (`repeat`), so that a case's
    /// verdict is decided, and its counts dropped, as soon as its last result is in. Cases
    /// with fewer results (an interrupted run) are decided by `finish`. Cases that already
    /// have `n` results are decided now.
    ///
    /// `n` must be at least the number of results any case gets on a provider, counting the
    /// results fed from the store for a resumed run: the larger of the run's `repeat` and
    /// 1 + the highest `sample` stored (a run resumed with a smaller `--repeat` keeps its
    /// stored samples). A result whose `sample` is `n` or more turns early decisions off
    /// for the rest of the run (the cases decided before it keep their verdicts). 0 means
    /// unknown: every case is kept until `finish`.
    pub fn expect_samples(&mut self, n: u32) {
        self.expect = (n > 0).then_some(n);
        let env = Env {
            expect: self.expect,
            policies: &self.policies,
            providers: &self.names,
        };
        for groups in self.providers.values_mut() {
            groups.all.decide_ready(&env);
            for acc in groups.tags.values_mut() {
                acc.decide_ready(&env);
            }
        }
    }

    pub fn add(&mut self, record: &ResultRecord) {
        if self.expect.is_some_and(|n| record.job.sample >= n) {
            self.expect = None;
        }
        if !self.providers.contains_key(record.job.provider_id.as_str()) {
            let id = self.names.id(&record.job.provider_id);
            self.providers.insert(
                record.job.provider_id.clone(),
                ProviderGroups {
                    id,
                    all: Acc::listing(),
                    tags: BTreeMap::new(),
                },
            );
        }
        let Some(groups) = self.providers.get_mut(record.job.provider_id.as_str()) else {
            return;
        };
        let env = Env {
            expect: self.expect,
            policies: &self.policies,
            providers: &self.names,
        };
        let listed = groups.all.add(record, groups.id, &env, None);
        for (i, tag) in record.tags.iter().enumerate() {
            if record.tags[..i].contains(tag) {
                continue;
            }
            let acc = match groups.tags.get_mut(tag.as_str()) {
                Some(a) => a,
                None => groups.tags.entry(tag.clone()).or_default(),
            };
            acc.add(record, groups.id, &env, listed);
        }
    }

    /// Metrics per provider (tag None) then per provider and tag, sorted.
    /// `wall_secs` is the run's wall time, for throughput.
    pub fn finish(self, wall_secs: Option<f64>) -> Vec<ProviderMetrics> {
        let env = Env {
            expect: self.expect,
            policies: &self.policies,
            providers: &self.names,
        };
        let mut out = Vec::new();
        for (provider, groups) in self.providers {
            let (all, rank) = groups.all.finish(wall_secs, &env, None);
            // The overall row lists every verdict; a tag's are a subset, not listed again.
            let index = groups
                .tags
                .values()
                .any(Acc::decided_alone)
                .then(|| acc::index_by_case(&all.case_verdicts));
            let peer = Peer {
                verdicts: &all.case_verdicts,
                rank: &rank,
                index: index.as_ref(),
            };
            let tags: Vec<(String, Metrics)> = groups
                .tags
                .into_iter()
                .map(|(tag, acc)| (tag, acc.finish(wall_secs, &env, Some(&peer)).0))
                .collect();
            out.push(ProviderMetrics {
                provider: provider.clone(),
                tag: None,
                metrics: all,
            });
            for (tag, metrics) in tags {
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

/// The rounding a gate forgives at a limit: 1e-9 of the limit's magnitude (at least 1e-9),
/// as case thresholds and `numeric` tolerances do, so a mean of three 0.7 scores
/// (0.6999999999999998) meets `min: 0.7` and 0.1 + 0.2 meets `max: 0.3`.
fn rounding_allowance(limit: f64) -> f64 {
    1e-9 * limit.abs().max(1.0)
}

/// Whether `v` lies within a gate's inclusive bounds, allowing for rounding at each bound.
fn within_gate(v: f64, min: Option<f64>, max: Option<f64>) -> bool {
    !v.is_nan()
        && min.is_none_or(|m| v >= m - rounding_allowance(m))
        && max.is_none_or(|m| v <= m + rounding_allowance(m))
}

/// Evaluate a suite's gates against one provider's metrics.
///
/// A gate is ok when the metric has a value within `min..=max`, allowing for rounding
/// ([`within_gate`]). A metric without a value (a rate over nothing) is not ok: the run could
/// not show the limit was met.
pub fn evaluate_gates(gates: &[Gate], provider: &str, metrics: &Metrics) -> Vec<GateResult> {
    gates
        .iter()
        .map(|g| {
            let value = metrics.get(&g.metric);
            let ok = value.is_some_and(|v| within_gate(v, g.min, g.max));
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
    let policies = Policies::new(policy);
    let mut acc = Acc::listing();
    for r in records {
        let provider = names.id(&r.job.provider_id);
        let env = Env {
            expect: None,
            policies: &policies,
            providers: &names,
        };
        acc.add(r, provider, &env, None);
    }
    let env = Env {
        expect: None,
        policies: &policies,
        providers: &names,
    };
    acc.finish(wall_secs, &env, None).0
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod measure;
