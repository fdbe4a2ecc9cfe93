//! The per-group accumulator behind [`super::RunAccumulator`] and [`super::compute`]: small
//! numbers per result (a latency, a few counters, interned ids), never outputs.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::percentile_nearest_rank;
use crate::model::{CaseStatus, CaseVerdict, LabelMetrics, Metrics, RepeatPolicy, ResultRecord};

/// Interns case and provider ids, so that groups keep `u32`s.
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

/// Sample counts of one case on one provider.
#[derive(Default, Clone, Copy)]
struct SampleCounts {
    passed: u32,
    failed: u32,
    errors: u32,
    unscorable: u32,
}

impl SampleCounts {
    fn add(&mut self, status: CaseStatus) {
        let n = match status {
            CaseStatus::Passed => &mut self.passed,
            CaseStatus::Failed => &mut self.failed,
            CaseStatus::Error => &mut self.errors,
            CaseStatus::Unscorable => &mut self.unscorable,
        };
        *n = n.saturating_add(1);
    }

    fn samples(self) -> u64 {
        u64::from(self.passed)
            + u64::from(self.failed)
            + u64::from(self.errors)
            + u64::from(self.unscorable)
    }

    fn scored(self) -> u64 {
        u64::from(self.passed) + u64::from(self.failed)
    }
}

/// The repeat policy of every case: the suite's, and the cases' own by interned case id.
#[derive(Default)]
pub(crate) struct Policies {
    pub default: RepeatPolicy,
    pub by_case: HashMap<u32, RepeatPolicy>,
}

impl Policies {
    fn of(&self, case: u32) -> RepeatPolicy {
        self.by_case.get(&case).copied().unwrap_or(self.default)
    }
}

/// The verdict of one case on one provider from its sample counts.
fn verdict(c: SampleCounts, policy: RepeatPolicy, case_id: &str, provider: &str) -> CaseVerdict {
    let passed = u64::from(c.passed);
    let failed = u64::from(c.failed);
    let verdict = match policy.decide(passed, failed) {
        Some(true) => CaseStatus::Passed,
        Some(false) => CaseStatus::Failed,
        None if c.errors > 0 => CaseStatus::Error,
        None => CaseStatus::Unscorable,
    };
    CaseVerdict {
        case_id: case_id.to_owned(),
        provider: provider.to_owned(),
        samples: c.samples(),
        passed,
        failed,
        errors: u64::from(c.errors),
        unscorable: u64::from(c.unscorable),
        agreement: ratio(passed.max(failed), c.scored()),
        policy,
        verdict,
        flaky: passed > 0 && failed > 0,
    }
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
    /// (provider, case) -> sample counts.
    samples: HashMap<(u32, u32), SampleCounts>,
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

impl Acc {
    pub(crate) fn add(&mut self, r: &ResultRecord, provider: u32, case: u32) {
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
        self.samples
            .entry((provider, case))
            .or_default()
            .add(r.status);
        for a in &r.assertions {
            if let Some(name) = &a.metric
                && !a.unscorable
                && a.score.is_finite()
            {
                let e = self.named.entry(name.clone()).or_default();
                e.0 += a.score;
                e.1 += 1;
            }
        }
        if let Some(pair) = &r.label {
            let e = self.labels.entry(pair.expected.clone()).or_default();
            e.support += 1;
            match &pair.predicted {
                Some(p) if *p == pair.expected => e.tp += 1,
                Some(p) => {
                    e.fn_ += 1;
                    self.labels.entry(p.clone()).or_default().fp += 1;
                }
                None => e.fn_ += 1,
            }
        }
        match (r.error_kind, r.status) {
            (Some(k), _) => *self.errors_by_kind.entry(k.as_str()).or_default() += 1,
            (None, CaseStatus::Error) => *self.errors_by_kind.entry("unknown").or_default() += 1,
            _ => {}
        }
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

    /// Verdicts per case and provider (sorted by case then provider) and the run metrics
    /// made of them: (verdicts, case pass rate, agreement).
    fn case_verdicts(
        &self,
        names: &Interner,
        policies: &Policies,
    ) -> (Vec<CaseVerdict>, Option<f64>, Option<f64>) {
        let mut verdicts: Vec<CaseVerdict> = self
            .samples
            .iter()
            .map(|(&(provider, case), &c)| {
                verdict(c, policies.of(case), names.name(case), names.name(provider))
            })
            .collect();
        verdicts.sort_by(|a, b| {
            a.case_id
                .cmp(&b.case_id)
                .then_with(|| a.provider.cmp(&b.provider))
        });
        let count = |s: CaseStatus| verdicts.iter().filter(|v| v.verdict == s).count() as u64;
        let (passed, failed) = (count(CaseStatus::Passed), count(CaseStatus::Failed));
        let (sum, n) = verdicts
            .iter()
            .filter(|v| v.passed + v.failed >= 2)
            .filter_map(|v| v.agreement)
            .fold((0.0, 0u64), |(s, n), a| (s + a, n + 1));
        let agreement = (n > 0).then(|| sum / n as f64);
        (verdicts, ratio(passed, passed + failed), agreement)
    }

    pub(crate) fn finish(
        mut self,
        wall_secs: Option<f64>,
        names: &Interner,
        policies: &Policies,
    ) -> Metrics {
        self.latencies.sort_by(f64::total_cmp);
        let lat = &self.latencies;
        let (verdicts, case_pass_rate, agreement) = self.case_verdicts(names, policies);
        let mut flaky: Vec<String> = verdicts
            .iter()
            .filter(|v| v.flaky)
            .map(|v| v.case_id.clone())
            .collect();
        flaky.dedup();
        let repeated = verdicts.iter().any(|v| v.samples > 1);
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
        Metrics {
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
            latency_p50_ms: percentile_nearest_rank(lat, 50.0),
            latency_p95_ms: percentile_nearest_rank(lat, 95.0),
            latency_p99_ms: percentile_nearest_rank(lat, 99.0),
            latency_max_ms: lat.last().copied(),
            tokens_in: self.tokens_in,
            tokens_out: self.tokens_out,
            cost_usd: self.cost_usd,
            judge_tokens: self.judge_tokens,
            judge_cost_usd: self.judge_cost_usd,
            cost_per_case_usd: (self.cases > 0).then(|| self.cost_usd / self.cases as f64),
            throughput_per_s: wall_secs
                .filter(|w| w.is_finite() && *w > 0.0)
                .map(|w| self.cases as f64 / w),
            flaky_cases: flaky,
            case_pass_rate,
            agreement,
            repeat_policy: repeated.then_some(policies.default),
            case_verdicts: if repeated { verdicts } else { Vec::new() },
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AssertionOutcome, Job};
    use serde_json::json;

    fn rec(outcomes: Vec<AssertionOutcome>) -> ResultRecord {
        ResultRecord {
            assertions: outcomes,
            ..ResultRecord::new(Job::of("c", "p", 0), CaseStatus::Passed)
        }
    }

    fn o(kind: &str, pass: bool, details: Value) -> AssertionOutcome {
        AssertionOutcome {
            type_name: kind.into(),
            pass,
            score: 0.0,
            reason: String::new(),
            details,
            weight: 1.0,
            metric: None,
            unscorable: false,
        }
    }

    #[test]
    fn factuality_and_judged_hallucination_feed_the_rates() {
        let mut acc = Acc::default();
        let names = Interner::default();
        for r in [
            rec(vec![o("factuality", true, json!({"category": "superset"}))]),
            rec(vec![o(
                "factuality",
                false,
                json!({"category": "contradiction"}),
            )]),
            rec(vec![o("factuality", true, json!({"category": "same"}))]),
            // A passing check with flagged spans under its max is not a hallucination.
            rec(vec![o(
                "hallucination",
                true,
                json!({"unsupported": [{"text": "x"}]}),
            )]),
            rec(vec![o(
                "hallucination",
                false,
                json!({"category": "contradiction", "contradictions": [{"text": "y"}], "unsupported": []}),
            )]),
        ] {
            acc.add(&r, 0, 0);
        }
        let m = acc.finish(None, &names, &Policies::default());
        assert_eq!(m.hallucination_rate, Some(3.0 / 5.0));
        assert_eq!((m.hallucinated, m.hallucination_checked), (3, 5));
        assert_eq!(m.contradiction_rate, Some(2.0 / 5.0));
        assert_eq!(m.unsupported_rate, Some(1.0 / 5.0));
    }
}
