//! Case verdicts of one group: the samples of each (case, provider) pair counted while they
//! come in, each pair decided as soon as its last sample is in (or at `finish`), and the
//! case pass rate, agreement and flaky cases made from the decided verdicts.

use std::borrow::Cow;

use fnv::FnvHashMap;

use super::{Env, Peer, ratio};
use crate::model::{CaseStatus, CaseVerdict};

/// Sample counts of one case on one provider.
#[derive(Default, Clone, Copy)]
pub(super) struct SampleCounts {
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

/// The case verdicts of one group: pairs still waiting for samples, the totals of the
/// decided ones, and (listing groups) the decided verdicts the output lists.
#[derive(Default)]
pub(super) struct Verdicts {
    /// Whether the group lists its verdicts (an overall row, or [`super::compute`]).
    list: bool,
    /// Per provider: case -> counts of the pairs still waiting for samples.
    pub(super) pending: Vec<(u32, FnvHashMap<Box<str>, SampleCounts>)>,
    /// Decided verdicts passed and failed.
    passed: u64,
    failed: u64,
    /// Some decided pair had more than one sample.
    repeated: bool,
    /// Groups that do not list: decided flaky pairs, by the position of the same pair in
    /// the overall row's list (as `agree_at`)...
    flaky_at: Vec<u32>,
    /// ... or by case and provider. (A listing group takes them from its list.)
    pub(super) flaky: Vec<(String, u32)>,
    /// Listing groups: the decided verdicts, in the order decided.
    pub(super) listed: Vec<CaseVerdict>,
    /// Groups that do not list: pairs with at least two scored samples, by the position of
    /// the same pair (same samples) in the overall row's list...
    pub(super) agree_at: Vec<u32>,
    /// ... or, when that is not known, by case and provider with their agreement.
    pub(super) agree_named: Vec<(Box<str>, u32, f64)>,
}

/// The case metrics of a group.
pub(super) struct CaseMetrics {
    pub(super) case_pass_rate: Option<f64>,
    pub(super) agreement: Option<f64>,
    pub(super) flaky: Vec<String>,
    pub(super) repeated: bool,
    pub(super) verdicts: Vec<CaseVerdict>,
    /// Position in `verdicts` (sorted) of the verdict listed `i`-th while adding.
    pub(super) rank: Vec<u32>,
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
    pub(super) fn listing() -> Self {
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
    pub(super) fn add(
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
    pub(super) fn decide_ready(&mut self, env: &Env<'_>) {
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
    pub(super) fn finish(mut self, env: &Env<'_>, peer: Option<&Peer<'_>>) -> CaseMetrics {
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
