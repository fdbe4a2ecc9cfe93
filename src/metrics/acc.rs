//! The per-group accumulator behind [`super::RunAccumulator`] and [`super::compute`]: small
//! numbers per result (a latency, a few counters), never outputs.
//!
//! Case verdicts: the samples of a case on a provider (a pair) are counted while they come
//! in. When the accumulator knows how many samples each pair gets ([`Env::expect`]), a pair
//! is decided as soon as its last sample is in: its verdict goes into the group's totals and
//! its counts are dropped, so a run of single samples keeps no per-case state at all. Pairs
//! still incomplete are decided by `finish`. The only per-case data kept to the end is what
//! the output lists: the verdicts of the overall row when some case has several samples.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use fnv::FnvHashMap;
use serde_json::Value;

use super::nearest_rank;
use crate::model::{CaseStatus, CaseVerdict, LabelMetrics, Metrics, RepeatPolicy, ResultRecord};

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

/// Sample counts of one case on one provider.
#[derive(Default, Clone, Copy)]
struct SampleCounts {
    passed: u32,
    failed: u32,
    errors: u32,
    unscorable: u32,
}

impl SampleCounts {
    fn of(status: CaseStatus) -> Self {
        let mut c = Self::default();
        c.add(status);
        c
    }

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

/// The case verdicts of one group: pairs still waiting for samples, the totals of the
/// decided ones, and (listing groups) the decided verdicts the output lists.
#[derive(Default)]
struct Verdicts {
    /// Whether the group lists its verdicts (an overall row, or [`super::compute`]).
    list: bool,
    /// Per provider: case -> counts of the pairs still waiting for samples.
    pending: Vec<(u32, FnvHashMap<Box<str>, SampleCounts>)>,
    /// Decided verdicts passed and failed.
    passed: u64,
    failed: u64,
    /// Some decided pair had more than one sample.
    repeated: bool,
    /// Groups that do not list: decided flaky pairs, by the position of the same pair in
    /// the overall row's list (as `agree_at`)...
    flaky_at: Vec<u32>,
    /// ... or by case and provider. (A listing group takes them from its list.)
    flaky: Vec<(String, u32)>,
    /// Listing groups: the decided verdicts, in the order decided.
    listed: Vec<CaseVerdict>,
    /// Groups that do not list: pairs with at least two scored samples, by the position of
    /// the same pair (same samples) in the overall row's list...
    agree_at: Vec<u32>,
    /// ... or, when that is not known, by case and provider with their agreement.
    agree_named: Vec<(Box<str>, u32, f64)>,
}

/// The case metrics of a group.
struct CaseMetrics {
    case_pass_rate: Option<f64>,
    agreement: Option<f64>,
    flaky: Vec<String>,
    repeated: bool,
    verdicts: Vec<CaseVerdict>,
    /// Position in `verdicts` (sorted) of the verdict listed `i`-th while adding.
    rank: Vec<u32>,
}

/// Shrinks a map of pending pairs that emptied out (a resumed run's stored samples).
fn shrink(map: &mut FnvHashMap<Box<str>, SampleCounts>) {
    if map.capacity() > 1024 && map.len() < map.capacity() / 8 {
        map.shrink_to(map.len() * 2);
    }
}

/// The position of each of `verdicts` in (case, provider) order.
///
/// Sorted by 8 bytes of the case id after the prefix all ids share (ids such as
/// `case-000123` differ there), then by the whole ids and providers where those tie.
fn sort_rank(verdicts: &[CaseVerdict]) -> Vec<u32> {
    let skip = verdicts.first().map_or(0, |first| {
        let first = first.case_id.as_bytes();
        verdicts.iter().fold(first.len(), |n, v| {
            first[..n]
                .iter()
                .zip(v.case_id.as_bytes())
                .take_while(|(a, b)| a == b)
                .count()
        })
    });
    let key = |s: &str| {
        let mut b = [0u8; 8];
        let rest = &s.as_bytes()[skip..];
        let n = rest.len().min(8);
        b[..n].copy_from_slice(&rest[..n]);
        u64::from_be_bytes(b)
    };
    let mut keyed: Vec<(u64, u32)> = verdicts
        .iter()
        .enumerate()
        .map(|(i, v)| (key(&v.case_id), i as u32))
        .collect();
    keyed.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0).then_with(|| {
            let (a, b) = (&verdicts[a.1 as usize], &verdicts[b.1 as usize]);
            a.case_id
                .cmp(&b.case_id)
                .then_with(|| a.provider.cmp(&b.provider))
        })
    });
    let mut rank = vec![0u32; keyed.len()];
    for (k, &(_, i)) in keyed.iter().enumerate() {
        rank[i as usize] = k as u32;
    }
    rank
}

/// Moves each `v[i]` to `v[to[i]]`, in place (`to` is a permutation).
fn permute<T>(v: &mut [T], mut to: Vec<u32>) {
    for i in 0..v.len() {
        while to[i] as usize != i {
            let j = to[i] as usize;
            v.swap(i, j);
            to.swap(i, j);
        }
    }
}

/// Mean of `values` summed in order; None when empty.
fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0u64), |(s, n), a| (s + a, n + 1));
    (n > 0).then(|| sum / n as f64)
}

impl Verdicts {
    fn listing() -> Self {
        Self {
            list: true,
            ..Self::default()
        }
    }

    fn pending_slot(&mut self, provider: u32) -> usize {
        if let Some(i) = self.pending.iter().position(|(p, _)| *p == provider) {
            return i;
        }
        self.pending.push((provider, FnvHashMap::default()));
        self.pending.len() - 1
    }

    /// Counts one sample; decides its pair when it was the last one. Returns the position of
    /// the verdict in the list when it was listed.
    fn add(
        &mut self,
        case: &str,
        status: CaseStatus,
        provider: u32,
        env: &Env<'_>,
        overall: Option<u32>,
    ) -> Option<u32> {
        let slot = self.pending_slot(provider);
        let map = &mut self.pending[slot].1;
        if !map.is_empty()
            && let Some(c) = map.get_mut(case)
        {
            c.add(status);
            if env.expect.is_none_or(|n| c.samples() < u64::from(n)) {
                return None;
            }
            let (case, c) = map.remove_entry(case)?;
            shrink(map);
            return self.decide(
                Cow::Owned(case.into_string()),
                provider,
                c,
                env,
                overall,
                false,
            );
        }
        let c = SampleCounts::of(status);
        if env.expect.is_some_and(|n| n <= 1) {
            return self.decide(Cow::Borrowed(case), provider, c, env, overall, false);
        }
        map.insert(case.into(), c);
        None
    }

    /// Decides the pairs that already have `env.expect` samples.
    fn decide_ready(&mut self, env: &Env<'_>) {
        let Some(n) = env.expect else {
            return;
        };
        for slot in 0..self.pending.len() {
            let provider = self.pending[slot].0;
            let ready: Vec<Box<str>> = self.pending[slot]
                .1
                .iter()
                .filter(|(_, c)| c.samples() >= u64::from(n))
                .map(|(k, _)| k.clone())
                .collect();
            for case in ready {
                if let Some((case, c)) = self.pending[slot].1.remove_entry(&case) {
                    self.decide(
                        Cow::Owned(case.into_string()),
                        provider,
                        c,
                        env,
                        None,
                        false,
                    );
                }
            }
            shrink(&mut self.pending[slot].1);
        }
    }

    /// Folds the verdict of a pair into the totals. A listing group keeps the verdict when
    /// the pair had several samples, or when `force`d (every verdict is listed once some
    /// pair has several samples). `overall` is the position of the same pair's verdict in
    /// the overall row's list, when it was decided with this sample.
    fn decide(
        &mut self,
        case: Cow<'_, str>,
        provider: u32,
        c: SampleCounts,
        env: &Env<'_>,
        overall: Option<u32>,
        force: bool,
    ) -> Option<u32> {
        let policy = env.policies.of(&case);
        let (passed, failed) = (u64::from(c.passed), u64::from(c.failed));
        let verdict = match policy.decide(passed, failed) {
            Some(true) => CaseStatus::Passed,
            Some(false) => CaseStatus::Failed,
            None if c.errors > 0 => CaseStatus::Error,
            None => CaseStatus::Unscorable,
        };
        match verdict {
            CaseStatus::Passed => self.passed += 1,
            CaseStatus::Failed => self.failed += 1,
            CaseStatus::Error | CaseStatus::Unscorable => {}
        }
        let samples = c.samples();
        self.repeated |= samples > 1;
        let flaky = passed > 0 && failed > 0;
        let agreement = ratio(passed.max(failed), c.scored());
        if self.list {
            if samples <= 1 && !force {
                return None;
            }
            self.listed.push(CaseVerdict {
                case_id: case.into_owned(),
                provider: env.providers.name(provider).to_owned(),
                samples,
                passed,
                failed,
                errors: u64::from(c.errors),
                unscorable: u64::from(c.unscorable),
                agreement,
                policy,
                verdict,
                flaky,
            });
            return u32::try_from(self.listed.len() - 1).ok();
        }
        let agreement = agreement.filter(|_| c.scored() >= 2);
        if let Some(i) = overall {
            if agreement.is_some() {
                self.agree_at.push(i);
            }
            if flaky {
                self.flaky_at.push(i);
            }
            return None;
        }
        match (agreement, flaky) {
            (Some(a), true) => {
                self.agree_named.push((Box::from(&*case), provider, a));
                self.flaky.push((case.into_owned(), provider));
            }
            (Some(a), false) => {
                let case = case.into_owned().into_boxed_str();
                self.agree_named.push((case, provider, a));
            }
            (None, true) => self.flaky.push((case.into_owned(), provider)),
            (None, false) => {}
        }
        None
    }

    /// Decides the pairs still waiting and makes the case metrics. Agreement is summed in
    /// (case, provider) order, as the verdicts are listed.
    fn finish(mut self, env: &Env<'_>, peer: Option<&Peer<'_>>) -> CaseMetrics {
        let pending = std::mem::take(&mut self.pending);
        let force = self.repeated
            || pending
                .iter()
                .any(|(_, m)| m.values().any(|c| c.samples() > 1));
        for (provider, map) in pending {
            for (case, c) in map {
                self.decide(
                    Cow::Owned(case.into_string()),
                    provider,
                    c,
                    env,
                    None,
                    force,
                );
            }
        }
        let case_pass_rate = ratio(self.passed, self.passed + self.failed);
        if self.list {
            let rank = sort_rank(&self.listed);
            permute(&mut self.listed, rank.clone());
            let agreement = mean(
                self.listed
                    .iter()
                    .filter(|v| v.passed + v.failed >= 2)
                    .filter_map(|v| v.agreement),
            );
            let mut flaky: Vec<String> = self
                .listed
                .iter()
                .filter(|v| v.flaky)
                .map(|v| v.case_id.clone())
                .collect();
            flaky.dedup();
            return CaseMetrics {
                case_pass_rate,
                agreement,
                flaky,
                repeated: self.repeated,
                verdicts: self.listed,
                rank,
            };
        }
        let empty = Peer {
            verdicts: &[],
            rank: &[],
            index: None,
        };
        let peer = peer.unwrap_or(&empty);
        // Where a pair decided apart from the overall row's is in that row's list (Ok), or
        // would be (Err).
        let locate = |case: &str, provider: u32| {
            let name = env.providers.name(provider);
            if let Some(&pos) = peer.index.and_then(|m| m.get(case))
                && peer
                    .verdicts
                    .get(pos as usize)
                    .is_some_and(|v| v.provider == name)
            {
                return Ok(pos as usize);
            }
            peer.verdicts
                .binary_search_by(|v| (v.case_id.as_str(), v.provider.as_str()).cmp(&(case, name)))
        };
        // (position in the overall list, whether it is there, case when not, agreement)
        let mut keyed: Vec<(usize, bool, &str, f64)> = self
            .agree_at
            .iter()
            .filter_map(|&i| {
                let pos = *peer.rank.get(i as usize)? as usize;
                Some((pos, true, "", peer.verdicts.get(pos)?.agreement?))
            })
            .collect();
        for (case, provider, a) in &self.agree_named {
            keyed.push(match locate(case, *provider) {
                Ok(pos) => (pos, true, "", *a),
                Err(pos) => (pos, false, &**case, *a),
            });
        }
        keyed.sort_unstable_by(|x, y| (x.0, x.1, x.2).cmp(&(y.0, y.1, y.2)));
        let agreement = mean(keyed.into_iter().map(|(_, _, _, a)| a));
        // Flaky cases in the overall list's order, then those not in it.
        let mut at: Vec<(usize, Option<String>)> = self
            .flaky_at
            .iter()
            .filter_map(|&i| Some((*peer.rank.get(i as usize)? as usize, None)))
            .collect();
        let mut apart = Vec::new();
        for (case, provider) in self.flaky {
            match locate(&case, provider) {
                Ok(pos) => at.push((pos, Some(case))),
                Err(_) => apart.push(case),
            }
        }
        at.sort_unstable_by_key(|(pos, _)| *pos);
        let mut flaky: Vec<String> = at
            .into_iter()
            .filter_map(|(pos, case)| {
                case.or_else(|| Some(peer.verdicts.get(pos)?.case_id.clone()))
            })
            .collect();
        if !apart.is_empty() {
            flaky.append(&mut apart);
            flaky.sort_unstable();
        }
        flaky.dedup();
        CaseMetrics {
            case_pass_rate,
            agreement,
            flaky,
            repeated: self.repeated,
            verdicts: Vec::new(),
            rank: Vec::new(),
        }
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
        let policies = Policies::default();
        let env = Env {
            expect: None,
            policies: &policies,
            providers: &names,
        };
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
            acc.add(&r, 0, &env, None);
        }
        let (m, _) = acc.finish(None, &env, None);
        assert_eq!(m.hallucination_rate, Some(3.0 / 5.0));
        assert_eq!((m.hallucinated, m.hallucination_checked), (3, 5));
        assert_eq!(m.contradiction_rate, Some(2.0 / 5.0));
        assert_eq!(m.unsupported_rate, Some(1.0 / 5.0));
    }

    fn pending(acc: &Acc) -> usize {
        acc.verdicts.pending.iter().map(|(_, m)| m.len()).sum()
    }

    #[test]
    fn only_incomplete_cases_keep_state() {
        let names = Interner::default();
        let policies = Policies::default();
        let sample = |case: &str, i: u32, status| {
            let mut r = ResultRecord::new(Job::of(case, "p", i), status);
            r.latency_ms = Some(1.0);
            r
        };
        // One sample each: nothing per case, not even listed.
        let env = Env {
            expect: Some(1),
            policies: &policies,
            providers: &names,
        };
        let mut acc = Acc::listing();
        for i in 0..100 {
            acc.add(
                &sample(&format!("c{i}"), 0, CaseStatus::Passed),
                0,
                &env,
                None,
            );
            assert_eq!(pending(&acc), 0);
        }
        assert!(acc.verdicts.listed.is_empty());
        let (m, _) = acc.finish(None, &env, None);
        assert_eq!((m.case_pass_rate, m.cases), (Some(1.0), 100));

        // Three samples, interleaved two cases at a time: two cases wait at most; a tag
        // group keeps no list, only the positions of the pairs it averages.
        let env = Env {
            expect: Some(3),
            ..env
        };
        let (mut all, mut tag) = (Acc::listing(), Acc::default());
        for pair in 0..50 {
            for i in 0..3 {
                for case in [format!("c{}", 2 * pair), format!("c{}", 2 * pair + 1)] {
                    let status = if i == 1 {
                        CaseStatus::Failed
                    } else {
                        CaseStatus::Passed
                    };
                    let r = sample(&case, i, status);
                    let at = all.add(&r, 0, &env, None);
                    tag.add(&r, 0, &env, at);
                    assert!(pending(&all) <= 2 && pending(&tag) <= 2);
                }
            }
        }
        assert_eq!((pending(&all), pending(&tag)), (0, 0));
        assert_eq!(all.verdicts.listed.len(), 100);
        assert!(tag.verdicts.listed.is_empty() && tag.verdicts.agree_named.is_empty());
        assert_eq!(tag.verdicts.agree_at.len(), 100);
        let (m, rank) = all.finish(None, &env, None);
        let peer = Peer {
            verdicts: &m.case_verdicts,
            rank: &rank,
            index: None,
        };
        let (t, _) = tag.finish(None, &env, Some(&peer));
        assert_eq!(t.agreement, m.agreement);
        assert_eq!(t.flaky_cases.len(), 100);
        assert!(t.case_verdicts.is_empty());
    }
}
