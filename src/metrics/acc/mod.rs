//! The per-group accumulator behind [`super::RunAccumulator`] and [`super::compute`]: small
//! numbers per result (a latency, a few counters), never outputs.
//!
//! Case verdicts: the samples of a case on a provider (a pair) are counted while they come
//! in. When the accumulator knows how many samples each pair gets ([`Env::expect`]), a pair
//! is decided as soon as its last sample is in: its verdict goes into the group's totals and
//! its counts are dropped, so a run of single samples keeps no per-case state at all. Pairs
//! still incomplete are decided by `finish`. The only per-case data kept to the end is what
//! the output lists: the verdicts of the overall row when some case has several samples.

use std::collections::{BTreeMap, HashMap};

use fnv::FnvHashMap;
use serde_json::Value;

mod verdicts;

use super::nearest_rank;
use crate::model::{CaseStatus, CaseVerdict, LabelMetrics, Metrics, RepeatPolicy, ResultRecord};
use verdicts::Verdicts;

/// Interns provider ids, so that groups keep `u32`s.
#[derive(Default)]
pub(crate) struct Interner {
    map: HashMap<String, u32>,
    names: Vec<String>,
}

impl Interner {
    pub(crate) fn id(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.map.get(s) {
            return i;
        }
        let i = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.map.insert(s.to_owned(), i);
        self.names.push(s.to_owned());
        i
    }

    pub(crate) fn name(&self, i: u32) -> &str {
        self.names.get(i as usize).map_or("", String::as_str)
    }
}

#[derive(Default, Clone, Copy)]
struct LabelCounts {
    support: u64,
    tp: u64,
    fp: u64,
    fn_: u64,
}

/// The repeat policy of every case: the suite's, and the cases' own (those that differ).
#[derive(Default)]
pub(crate) struct Policies {
    default: RepeatPolicy,
    by_case: FnvHashMap<Box<str>, RepeatPolicy>,
}

impl Policies {
    pub(crate) fn new(default: RepeatPolicy) -> Self {
        Self {
            default,
            by_case: FnvHashMap::default(),
        }
    }

    pub(crate) fn default_policy(&self) -> RepeatPolicy {
        self.default
    }

    /// Sets the policy of a case (the suite's one is not stored).
    pub(crate) fn set(&mut self, case: &str, policy: RepeatPolicy) {
        if policy == self.default {
            self.by_case.remove(case);
        } else {
            self.by_case.insert(case.into(), policy);
        }
    }

    fn of(&self, case: &str) -> RepeatPolicy {
        if self.by_case.is_empty() {
            return self.default;
        }
        self.by_case.get(case).copied().unwrap_or(self.default)
    }
}

/// What every group of an accumulator shares while adding and finishing.
pub(crate) struct Env<'a> {
    /// Samples each case gets on each provider, when known: a pair is decided when that
    /// many are in. None keeps every pair until `finish`.
    pub expect: Option<u32>,
    pub policies: &'a Policies,
    pub providers: &'a Interner,
}

/// The sorted verdict list of an overall row, for its tag rows: a tag row's agreement is
/// summed in the same (case, provider) order as the overall row's.
pub(crate) struct Peer<'a> {
    /// Sorted by case, then provider.
    pub verdicts: &'a [CaseVerdict],
    /// Position in `verdicts` of the verdict listed `i`-th while adding.
    pub rank: &'a [u32],
    /// Position in `verdicts` by case id, to place the pairs a tag group decided on its own
    /// ([`Acc::decided_alone`]); without it they are searched for.
    pub index: Option<&'a FnvHashMap<&'a str, u32>>,
}

/// The position of each verdict by case id (for a [`Peer`] of one provider).
pub(crate) fn index_by_case(verdicts: &[CaseVerdict]) -> FnvHashMap<&str, u32> {
    let mut map =
        FnvHashMap::with_capacity_and_hasher(verdicts.len(), fnv::FnvBuildHasher::default());
    for (i, v) in verdicts.iter().enumerate() {
        map.insert(v.case_id.as_str(), i as u32);
    }
    map
}

/// Running totals of one group of results (a provider, or a provider and a tag).
#[derive(Default)]
pub(crate) struct Acc {
    cases: u64,
    passed: u64,
    failed: u64,
    errors: u64,
    unscorable: u64,
    score_sum: f64,
    score_n: u64,
    /// Results with a decided `hallucination` or `factuality` assertion.
    halluc_n: u64,
    halluc_failed: u64,
    contradiction: u64,
    unsupported: u64,
    latencies: Vec<f64>,
    tokens_in: u64,
    tokens_out: u64,
    cost_usd: f64,
    judge_tokens: u64,
    judge_cost_usd: f64,
    verdicts: Verdicts,
    named: BTreeMap<String, (f64, u64)>,
    labels: BTreeMap<String, LabelCounts>,
    errors_by_kind: BTreeMap<&'static str, u64>,
}

/// Whether a detail value holds something: a non-empty array, string or object, `true`, or
/// a non-zero number.
fn non_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|x| x != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
    }
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// The entry of `key` in `map`, allocating the key only when it is new.
fn entry<'m, V: Default>(map: &'m mut BTreeMap<String, V>, key: &str) -> &'m mut V {
    if map.contains_key(key) {
        return map.get_mut(key).expect("present");
    }
    map.entry(key.to_owned()).or_default()
}

/// Nearest-rank p50, p95, p99 and maximum of `values` (finite), reordering them: selection,
/// not a full sort.
fn latency_percentiles(values: &mut [f64]) -> [Option<f64>; 4] {
    let n = values.len();
    let (Some(i50), Some(i95), Some(i99)) = (
        nearest_rank(n, 50.0),
        nearest_rank(n, 95.0),
        nearest_rank(n, 99.0),
    ) else {
        return [None; 4];
    };
    let max = values.iter().copied().max_by(f64::total_cmp);
    // Each selection leaves the smaller values before the rank, where the next one looks.
    let p99 = *values.select_nth_unstable_by(i99, f64::total_cmp).1;
    let below = &mut values[..i99];
    let p95 = if i95 < i99 {
        *below.select_nth_unstable_by(i95, f64::total_cmp).1
    } else {
        p99
    };
    let below = &mut values[..i95];
    let p50 = if i50 < i95 {
        *below.select_nth_unstable_by(i50, f64::total_cmp).1
    } else {
        p95
    };
    [Some(p50), Some(p95), Some(p99), max]
}

impl Acc {
    /// A group that lists its case verdicts (an overall row).
    pub(crate) fn listing() -> Self {
        Self {
            verdicts: Verdicts::listing(),
            ..Self::default()
        }
    }

    /// Adds one result of `provider`. `overall` is, for a tag group, what the overall row's
    /// `add` returned for the same result. Returns the position of the case's verdict in the
    /// list when this result decided it and it was listed.
    pub(crate) fn add(
        &mut self,
        r: &ResultRecord,
        provider: u32,
        env: &Env<'_>,
        overall: Option<u32>,
    ) -> Option<u32> {
        self.cases += 1;
        match r.status {
            CaseStatus::Passed => self.passed += 1,
            CaseStatus::Failed => self.failed += 1,
            CaseStatus::Error => self.errors += 1,
            CaseStatus::Unscorable => self.unscorable += 1,
        }
        if let Some(s) = r.score.filter(|s| s.is_finite()) {
            self.score_sum += s;
            self.score_n += 1;
        }
        self.add_hallucination(r);
        self.add_judge_usage(r);
        if r.status != CaseStatus::Error
            && let Some(ms) = r.latency_ms.filter(|v| v.is_finite())
        {
            self.latencies.push(ms);
        }
        self.tokens_in += r.tokens_in.unwrap_or(0);
        self.tokens_out += r.tokens_out.unwrap_or(0);
        if let Some(c) = r.cost_usd.filter(|c| c.is_finite()) {
            self.cost_usd += c;
        }
        for a in &r.assertions {
            if let Some(name) = &a.metric
                && !a.unscorable
                && a.score.is_finite()
            {
                let e = entry(&mut self.named, name);
                e.0 += a.score;
                e.1 += 1;
            }
        }
        if let Some(pair) = &r.label {
            let e = entry(&mut self.labels, &pair.expected);
            e.support += 1;
            match &pair.predicted {
                Some(p) if *p == pair.expected => e.tp += 1,
                Some(p) => {
                    e.fn_ += 1;
                    entry(&mut self.labels, p).fp += 1;
                }
                None => e.fn_ += 1,
            }
        }
        match (r.error_kind, r.status) {
            (Some(k), _) => *self.errors_by_kind.entry(k.as_str()).or_default() += 1,
            (None, CaseStatus::Error) => *self.errors_by_kind.entry("unknown").or_default() += 1,
            _ => {}
        }
        self.verdicts
            .add(&r.job.case_id, r.status, provider, env, overall)
    }

    /// Decides the case verdicts that already have `env.expect` samples.
    pub(crate) fn decide_ready(&mut self, env: &Env<'_>) {
        self.verdicts.decide_ready(env);
    }

    /// Whether `finish` has pairs to place in the overall list by case (decided apart from
    /// the overall row's, or still waiting), for which a [`Peer::index`] helps.
    pub(crate) fn decided_alone(&self) -> bool {
        let v = &self.verdicts;
        !v.agree_named.is_empty()
            || !v.flaky.is_empty()
            || v.pending.iter().any(|(_, m)| !m.is_empty())
    }

    /// Sums the usage of the judge calls made for this result (`details.usage` of judged
    /// assertions; answers from the cache carry none).
    fn add_judge_usage(&mut self, r: &ResultRecord) {
        for usage in r.assertions.iter().filter_map(|a| a.details.get("usage")) {
            let n = |k: &str| usage.get(k).and_then(Value::as_u64).unwrap_or(0);
            self.judge_tokens += n("tokens_in") + n("tokens_out");
            if let Some(c) = usage
                .get("cost_usd")
                .and_then(Value::as_f64)
                .filter(|c| c.is_finite())
            {
                self.judge_cost_usd += c;
            }
        }
    }

    /// Counts the result towards the hallucination rates when it carries a decided (not
    /// unscorable) `hallucination` or `factuality` assertion. It is hallucinated when a
    /// `hallucination` assertion failed or a `factuality` verdict is `contradiction` or
    /// `superset` (an unsupported addition); a hallucinated result counts as a contradiction
    /// when one was found (`details.contradictions`, or the category), and as unsupported
    /// when unsupported content was (`details.unsupported`, or a superset).
    fn add_hallucination(&mut self, r: &ResultRecord) {
        let mut carried = false;
        let mut failed = false;
        let mut contradiction = false;
        let mut unsupported = false;
        for a in r.assertions.iter().filter(|a| !a.unscorable) {
            let kind = a.type_name.as_str();
            let category = a.details.get("category").and_then(Value::as_str);
            if kind == "hallucination" {
                carried = true;
                if !a.pass {
                    failed = true;
                    contradiction |= category == Some("contradiction")
                        || non_empty(a.details.get("contradiction"))
                        || non_empty(a.details.get("contradictions"));
                    unsupported |= non_empty(a.details.get("unsupported"));
                }
            } else if kind == "factuality" {
                carried = true;
                match category {
                    Some("contradiction") => (failed, contradiction) = (true, true),
                    Some("superset") => (failed, unsupported) = (true, true),
                    _ => {}
                }
            }
        }
        if carried {
            self.halluc_n += 1;
            self.halluc_failed += u64::from(failed);
            self.contradiction += u64::from(contradiction);
            self.unsupported += u64::from(unsupported);
        }
    }

    /// The metrics of the group, and (a listing group) the position in the sorted verdict
    /// list of each verdict by the order it was listed, for the tag groups' [`Peer`].
    pub(crate) fn finish(
        mut self,
        wall_secs: Option<f64>,
        env: &Env<'_>,
        peer: Option<&Peer<'_>>,
    ) -> (Metrics, Vec<u32>) {
        let [p50, p95, p99, max] = latency_percentiles(&mut self.latencies);
        self.latencies = Vec::new();
        let cm = self.verdicts.finish(env, peer);
        let labels = self
            .labels
            .into_iter()
            .map(|(label, c)| LabelMetrics {
                label,
                support: c.support,
                precision: ratio(c.tp, c.tp + c.fp),
                recall: ratio(c.tp, c.tp + c.fn_),
                f1: ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn_),
            })
            .collect();
        let metrics = Metrics {
            cases: self.cases,
            passed: self.passed,
            failed: self.failed,
            errors: self.errors,
            unscorable: self.unscorable,
            pass_rate: ratio(self.passed, self.passed + self.failed),
            error_rate: ratio(self.errors, self.cases),
            mean_score: (self.score_n > 0).then(|| self.score_sum / self.score_n as f64),
            hallucination_rate: ratio(self.halluc_failed, self.halluc_n),
            hallucination_checked: self.halluc_n,
            hallucinated: self.halluc_failed,
            contradiction_rate: ratio(self.contradiction, self.halluc_n),
            unsupported_rate: ratio(self.unsupported, self.halluc_n),
            latency_p50_ms: p50,
            latency_p95_ms: p95,
            latency_p99_ms: p99,
            latency_max_ms: max,
            tokens_in: self.tokens_in,
            tokens_out: self.tokens_out,
            cost_usd: self.cost_usd,
            judge_tokens: self.judge_tokens,
            judge_cost_usd: self.judge_cost_usd,
            cost_per_case_usd: (self.cases > 0).then(|| self.cost_usd / self.cases as f64),
            throughput_per_s: wall_secs
                .filter(|w| w.is_finite() && *w > 0.0)
                .map(|w| self.cases as f64 / w),
            flaky_cases: cm.flaky,
            case_pass_rate: cm.case_pass_rate,
            agreement: cm.agreement,
            repeat_policy: cm.repeated.then_some(env.policies.default_policy()),
            case_verdicts: if cm.repeated { cm.verdicts } else { Vec::new() },
            named: self
                .named
                .into_iter()
                .filter(|(_, (_, n))| *n > 0)
                .map(|(k, (sum, n))| (k, sum / n as f64))
                .collect(),
            labels,
            errors_by_kind: self
                .errors_by_kind
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        };
        (metrics, cm.rank)
    }
}
#[cfg(test)]
mod tests;
