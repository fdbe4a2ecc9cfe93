//! The flip heat map of a suite page: the results that changed verdict over the newest
//! [`HEAT_RUNS`] finished runs, one column per run.
//!
//! The statuses are held compactly: each (case, provider, sample) key is interned once across
//! the runs (case ids end to end in one string, providers by index), and each run is one byte
//! per key. 20 runs of 100,000 results take a few megabytes. A [`HeatHistory`] read ahead
//! (while a run runs) is reused by the heat map for every run that has not changed since; only
//! the others are read then. The run that just finished is not one of them: its statuses were
//! added as they were scored ([`HeatFeed`]). In a refresh without a run, the history is read
//! by the thread that writes run pages while the trend page is built ([`HeatAhead`]).

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Serialize;

use super::{HEAT_ROWS, HEAT_RUNS, HtmlError, RECENT_RUNS, file_stem, is_flip, run_file};
use super::{ReadError, Source};
use super::{short_time, show_time};
use crate::model::{CaseStatus, RunInfo, RunStatus};

#[derive(Serialize)]
pub(super) struct HeatRun {
    run_id: String,
    short: String,
    started: String,
    href: String,
}

#[derive(Serialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
pub(super) struct HeatCell {
    class: &'static str,
    mark: String,
    title: String,
}

#[derive(Serialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
pub(super) struct HeatRow {
    case: String,
    provider: String,
    flips: usize,
    cells: Vec<HeatCell>,
}

#[derive(Serialize, Default)]
pub(super) struct Heat {
    runs: Vec<HeatRun>,
    rows: Vec<HeatRow>,
    more: usize,
}

/// The statuses of a suite's newest finished runs (those its heat map shows), compact: read
/// ahead of a refresh, on any thread, and given to the heat map, which reads again only the
/// runs that are not in it or changed since (a resumed run finishes again).
#[derive(Debug, Default, Clone)]
pub struct HeatHistory {
    keys: Keys,
    /// Oldest first.
    columns: Vec<Column>,
}

/// One run's statuses: a byte per key ([`code`]), absent past the end.
#[derive(Debug, Clone)]
struct Column {
    run_id: String,
    status: RunStatus,
    finished_at: Option<String>,
    cells: Vec<u8>,
}

impl HeatHistory {
    /// Read the statuses of the newest finished runs of `suite`, as its heat map picks them
    /// (the heat map of any window picks among these).
    pub fn read(store: &dyn Source, suite: &str) -> Result<Self, ReadError> {
        let runs = store.run_infos(Some(suite), None, HEAT_RUNS.max(RECENT_RUNS))?;
        let mut space = KeySpace::new(None);
        let picked = picked(&runs);
        let cells = read_columns(store, &picked, &mut space)?;
        let columns = picked
            .iter()
            .zip(cells)
            .map(|(r, cells)| Column {
                run_id: r.run_id.clone(),
                status: r.status,
                finished_at: r.finished_at.clone(),
                cells,
            })
            .collect();
        let mut keys = space.own;
        keys.shrink_to_fit();
        Ok(Self { keys, columns })
    }

    /// Runs held.
    #[must_use]
    pub fn runs(&self) -> usize {
        self.columns.len()
    }

    /// Bytes held on the heap (capacities), about.
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.keys.heap_bytes()
            + self
                .columns
                .iter()
                .map(|c| {
                    std::mem::size_of::<Column>()
                        + c.run_id.capacity()
                        + c.finished_at.as_ref().map_or(0, String::capacity)
                        + c.cells.capacity()
                })
                .sum::<usize>()
    }

    /// The statuses of `run` if it is held and has not changed since.
    fn column(&self, run: &RunInfo) -> Option<&[u8]> {
        self.columns
            .iter()
            .find(|c| {
                c.run_id == run.run_id && c.status == run.status && c.finished_at == run.finished_at
            })
            .map(|c| c.cells.as_slice())
    }
}

/// The heat-map column of a run taken from its results as they are scored (`run`), so that
/// the refresh after the run does not read its statuses back. The history before it is read on
/// a thread meanwhile ([`HeatHistory::read`]); results scored before that read is done wait in
/// a list (a few thousand at most), the others are interned in its keys at once.
pub struct HeatFeed {
    reading: Option<std::thread::JoinHandle<Option<HeatHistory>>>,
    /// None until the read is done (and when it failed).
    history: Option<HeatHistory>,
    /// False for a run whose column is not only what is fed (a resumed run): the history is
    /// then given as read, and the run's statuses are read after it.
    fed: bool,
    waiting: Vec<(Box<str>, Box<str>, u32, u8)>,
    column: Filling,
}

impl HeatFeed {
    /// A feed for the history `reading` reads; `fed`: whether every result of the run passes
    /// through [`HeatFeed::add`].
    #[must_use]
    pub fn new(reading: std::thread::JoinHandle<Option<HeatHistory>>, fed: bool) -> Self {
        Self {
            reading: Some(reading),
            history: None,
            fed,
            waiting: Vec::new(),
            column: Filling::default(),
        }
    }

    /// One result of the run.
    pub fn add(&mut self, case: &str, provider: &str, sample: u32, status: CaseStatus) {
        if !self.fed {
            return;
        }
        if self.history.is_none()
            && self
                .reading
                .as_ref()
                .is_some_and(std::thread::JoinHandle::is_finished)
        {
            self.take_history();
        }
        if self.history.is_some() {
            self.put(case, provider, sample, code(status));
        } else if self.reading.is_some() {
            self.waiting
                .push((case.into(), provider.into(), sample, code(status)));
        }
    }

    /// The history read, with the run's own column when every result was fed: `run` as it
    /// is stored once finished. None when the history could not be read.
    #[must_use]
    pub fn finish(mut self, run: &RunInfo) -> Option<HeatHistory> {
        if self.history.is_none() {
            self.take_history();
        }
        let mut history = self.history?;
        if self.fed {
            let cells = self.column.done();
            history.keys.shrink_to_fit();
            history.columns.push(Column {
                run_id: run.run_id.clone(),
                status: run.status,
                finished_at: run.finished_at.clone(),
                cells,
            });
        }
        Some(history)
    }

    /// Wait for the read; intern the results that waited for it.
    fn take_history(&mut self) {
        self.history = self.reading.take().and_then(|r| r.join().ok().flatten());
        let waiting = std::mem::take(&mut self.waiting);
        if self.history.is_some() {
            for (case, provider, sample, c) in waiting {
                self.put(&case, &provider, sample, c);
            }
        }
    }

    fn put(&mut self, case: &str, provider: &str, sample: u32, c: u8) {
        if let Some(h) = self.history.as_mut() {
            self.column
                .set(c, |hint| h.keys.index(case, provider, sample, hint));
        }
    }
}

/// A column filled in the order its results come: a status byte ([`code`]) per key index.
#[derive(Debug, Default)]
struct Filling {
    cells: Vec<u8>,
    /// The key after the last one set: runs of a suite mostly list the same keys in the same
    /// order, so it is tried before a lookup.
    next: usize,
}

impl Filling {
    /// Set `c` at the key `index(hint)` finds.
    fn set(&mut self, c: u8, index: impl FnOnce(usize) -> usize) {
        let k = index(self.next);
        if self.cells.len() <= k {
            self.cells.resize(k + 1, 0);
        }
        self.cells[k] = c;
        self.next = k + 1;
    }

    fn done(mut self) -> Vec<u8> {
        self.cells.shrink_to_fit();
        self.cells
    }
}

/// The runs a heat map shows, oldest first: the newest [`HEAT_RUNS`] finished ones of `runs`
/// (oldest first).
fn picked(runs: &[RunInfo]) -> Vec<&RunInfo> {
    let mut out: Vec<&RunInfo> = runs
        .iter()
        .filter(|r| r.status != RunStatus::Running)
        .rev()
        .take(HEAT_RUNS)
        .collect();
    out.reverse();
    out
}

/// A status as one byte; 0 is "not run".
fn code(s: CaseStatus) -> u8 {
    match s {
        CaseStatus::Passed => 1,
        CaseStatus::Failed => 2,
        CaseStatus::Error => 3,
        CaseStatus::Unscorable => 4,
    }
}

fn decode(c: u8) -> Option<CaseStatus> {
    match c {
        1 => Some(CaseStatus::Passed),
        2 => Some(CaseStatus::Failed),
        3 => Some(CaseStatus::Error),
        4 => Some(CaseStatus::Unscorable),
        _ => None,
    }
}

/// Results whose statuses one read asks for at most (as the runs' plans count them): a
/// store that answers a read at once (PostgreSQL) holds that many rows.
const STATUS_READ_ROWS: u64 = 50_000;

/// Read the statuses of `runs` into columns of `space`'s keys (interning the new ones), one
/// a run, in order: a read for as many runs at once as [`STATUS_READ_ROWS`] allows.
fn read_columns(
    store: &dyn Source,
    runs: &[&RunInfo],
    space: &mut KeySpace<'_>,
) -> Result<Vec<Vec<u8>>, ReadError> {
    let mut columns = Vec::with_capacity(runs.len());
    let mut rest = runs;
    while !rest.is_empty() {
        let mut rows = 0;
        let take = rest
            .iter()
            .take_while(|r| {
                rows += r.planned;
                rows <= STATUS_READ_ROWS
            })
            .count()
            .max(1);
        let (now, later) = rest.split_at(take);
        let ids: Vec<&str> = now.iter().map(|r| r.run_id.as_str()).collect();
        let mut filling: Vec<Filling> = now.iter().map(|_| Filling::default()).collect();
        store.for_each_status_of(&ids, &mut |i, case, provider, sample, status| {
            if let Some(column) = filling.get_mut(i) {
                column.set(code(status), |hint| {
                    space.index(case, provider, sample, hint)
                });
            }
        })?;
        columns.extend(filling.into_iter().map(Filling::done));
        rest = later;
    }
    Ok(columns)
}

/// Runs x results that changed verdict, over the newest [`HEAT_RUNS`] finished runs of `runs`
/// (oldest first). The statuses of runs held unchanged in `ahead` are not read again.
pub(super) fn heat_map(
    store: &dyn Source,
    runs: &[RunInfo],
    with_pages: &HashMap<String, bool>,
    ahead: Option<&HeatHistory>,
) -> Result<Heat, HtmlError> {
    let runs = picked(runs);
    let mut space = KeySpace::new(ahead.map(|h| &h.keys));
    // The runs held unchanged in `ahead` are taken from it; the others read together.
    let held: Vec<Option<&[u8]>> = runs
        .iter()
        .map(|r| ahead.and_then(|h| h.column(r)))
        .collect();
    let unread: Vec<&RunInfo> = runs
        .iter()
        .zip(&held)
        .filter(|(_, h)| h.is_none())
        .map(|(r, _)| *r)
        .collect();
    let mut read = read_columns(store, &unread, &mut space)?.into_iter();
    let mut columns: Vec<Cow<'_, [u8]>> = Vec::with_capacity(runs.len());
    for h in held {
        columns.push(match h {
            Some(c) => Cow::Borrowed(c),
            None => Cow::Owned(read.next().unwrap_or_default()),
        });
    }
    let at = |col: &[u8], k: usize| col.get(k).copied().unwrap_or(0);
    // (flips, key): flips between consecutive runs that both ran the key.
    let mut flipped: Vec<(usize, usize)> = Vec::new();
    for k in 0..space.len() {
        let mut n = 0usize;
        let mut before = None;
        for col in &columns {
            let now = decode(at(col, k));
            if let (Some(a), Some(b)) = (before, now)
                && is_flip(a, b)
            {
                n += 1;
            }
            before = now;
        }
        if n > 0 {
            flipped.push((n, k));
        }
    }
    let order = |a: &(usize, usize), b: &(usize, usize)| {
        b.0.cmp(&a.0)
            .then_with(|| space.get(a.1).cmp(&space.get(b.1)))
    };
    let more = flipped.len().saturating_sub(HEAT_ROWS);
    if more > 0 {
        flipped.select_nth_unstable_by(HEAT_ROWS, order);
        flipped.truncate(HEAT_ROWS);
    }
    flipped.sort_unstable_by(order);
    let mut rows = Vec::with_capacity(flipped.len());
    for (n, k) in flipped {
        let (case, provider, sample) = space.get(k);
        let mut cells = Vec::with_capacity(runs.len());
        let mut prev: Option<CaseStatus> = None;
        for (r, col) in runs.iter().zip(&columns) {
            let s = decode(at(col, k));
            let flip = matches!((prev, s), (Some(a), Some(b)) if is_flip(a, b));
            let title = format!(
                "{} · {} · run {} ({}): {}{}",
                case,
                provider,
                r.run_id,
                show_time(&r.started_at),
                s.map_or("not run", CaseStatus::as_str),
                if flip { ", flipped" } else { "" }
            );
            cells.push(status_cell(s, flip, title));
            if s.is_some() {
                prev = s;
            }
        }
        rows.push(HeatRow {
            case: if sample > 0 {
                format!("{case} #{sample}")
            } else {
                case.to_owned()
            },
            provider: provider.to_owned(),
            flips: n,
            cells,
        });
    }
    Ok(Heat {
        runs: heat_runs(&runs, with_pages),
        rows,
        more,
    })
}

/// The columns of the heat map: each run, linked to its page when it has one, to its row in
/// the table of runs otherwise.
fn heat_runs(runs: &[&RunInfo], with_pages: &HashMap<String, bool>) -> Vec<HeatRun> {
    runs.iter()
        .map(|r| HeatRun {
            run_id: r.run_id.clone(),
            short: short_time(&r.started_at),
            started: show_time(&r.started_at),
            href: if with_pages.contains_key(&r.run_id) {
                format!("runs/{}", run_file(&r.run_id, 1))
            } else {
                format!("#run-{}", file_stem(&r.run_id))
            },
        })
        .collect()
}

fn status_cell(s: Option<CaseStatus>, flip: bool, title: String) -> HeatCell {
    let (class, mark) = match s {
        Some(CaseStatus::Passed) => ("passed", "✓"),
        Some(CaseStatus::Failed) => ("failed", "✗"),
        Some(CaseStatus::Error) => ("error", "!"),
        Some(CaseStatus::Unscorable) => ("unscorable", "?"),
        None => ("absent", "·"),
    };
    HeatCell {
        class,
        mark: if flip {
            format!("↻{mark}")
        } else {
            mark.into()
        },
        title,
    }
}

// ---------------------------------------------------------------------------------------
// Interning

/// (case, provider, sample) of a heat-map row.
type HeatKey<'a> = (&'a str, &'a str, u32);

/// Keys interned once: every distinct case id once in one string, providers by index, and
/// each key as three integers; two small open-addressing tables find them again.
#[derive(Debug, Default, Clone)]
struct Keys {
    /// Distinct case ids, end to end.
    text: String,
    /// End of each distinct case id in `text` (its start is the end of the one before).
    case_ends: Vec<usize>,
    case_table: Table,
    providers: Vec<String>,
    /// (case, provider, sample) of each key, by index.
    tuples: Vec<(u32, u32, u32)>,
    key_table: Table,
}

impl Keys {
    fn len(&self) -> usize {
        self.tuples.len()
    }

    fn case(&self, i: u32) -> &str {
        let i = i as usize;
        let start = if i == 0 { 0 } else { self.case_ends[i - 1] };
        &self.text[start..self.case_ends[i]]
    }

    fn get(&self, k: usize) -> HeatKey<'_> {
        let (c, p, s) = self.tuples[k];
        (self.case(c), &self.providers[p as usize], s)
    }

    fn heap_bytes(&self) -> usize {
        self.text.capacity()
            + self.case_ends.capacity() * std::mem::size_of::<usize>()
            + self.case_table.heap_bytes()
            + self
                .providers
                .iter()
                .map(|p| std::mem::size_of::<String>() + p.capacity())
                .sum::<usize>()
            + self.tuples.capacity() * std::mem::size_of::<(u32, u32, u32)>()
            + self.key_table.heap_bytes()
    }

    fn shrink_to_fit(&mut self) {
        self.text.shrink_to_fit();
        self.case_ends.shrink_to_fit();
        self.providers.shrink_to_fit();
        self.tuples.shrink_to_fit();
    }

    fn provider(&self, provider: &str) -> Option<u32> {
        self.providers
            .iter()
            .position(|p| p == provider)
            .and_then(|i| u32::try_from(i).ok())
    }

    fn find_case(&self, case: &str) -> Option<u32> {
        let h = hash_str(case);
        self.case_table.find(h, |i| self.case(i) == case)
    }

    /// The index of a key, if interned.
    fn find(&self, case: &str, provider: &str, sample: u32) -> Option<usize> {
        let p = self.provider(provider)?;
        let c = self.find_case(case)?;
        let h = hash_key(c, p, sample);
        self.key_table
            .find(h, |i| self.tuples[i as usize] == (c, p, sample))
            .map(|i| i as usize)
    }

    /// The index of a key (interned if new); `hint` is tried first.
    fn index(&mut self, case: &str, provider: &str, sample: u32, hint: usize) -> usize {
        if hint < self.len() && self.get(hint) == (case, provider, sample) {
            return hint;
        }
        self.intern(case, provider, sample)
    }

    /// The index of a key, interned if new.
    fn intern(&mut self, case: &str, provider: &str, sample: u32) -> usize {
        let key = (
            self.intern_case(case),
            self.intern_provider(provider),
            sample,
        );
        let hash = hash_key(key.0, key.1, key.2);
        if let Some(found) = self
            .key_table
            .find(hash, |i| self.tuples[i as usize] == key)
        {
            return found as usize;
        }
        self.tuples.push(key);
        let index = index_u32(self.tuples.len() - 1);
        let tuples = &self.tuples;
        self.key_table.insert(hash, index, |i| {
            let (case, provider, sample) = tuples[i as usize];
            hash_key(case, provider, sample)
        });
        index as usize
    }

    fn intern_provider(&mut self, provider: &str) -> u32 {
        self.provider(provider).unwrap_or_else(|| {
            self.providers.push(provider.to_owned());
            index_u32(self.providers.len() - 1)
        })
    }

    fn intern_case(&mut self, case: &str) -> u32 {
        if let Some(found) = self.find_case(case) {
            return found;
        }
        self.text.push_str(case);
        self.case_ends.push(self.text.len());
        let index = index_u32(self.case_ends.len() - 1);
        let (text, ends) = (&self.text, &self.case_ends);
        self.case_table.insert(hash_str(case), index, |i| {
            let i = i as usize;
            let start = if i == 0 { 0 } else { ends[i - 1] };
            hash_str(&text[start..ends[i]])
        });
        index
    }
}

/// An index as u32: a run holds at most 2^32 results, so a suite's keys fit.
fn index_u32(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// The keys of a heat map: those of a history read ahead (unchanged) and, after them, the
/// ones met since.
struct KeySpace<'a> {
    base: Option<&'a Keys>,
    own: Keys,
}

impl<'a> KeySpace<'a> {
    fn new(base: Option<&'a Keys>) -> Self {
        Self {
            base,
            own: Keys::default(),
        }
    }

    fn base_len(&self) -> usize {
        self.base.map_or(0, Keys::len)
    }

    fn len(&self) -> usize {
        self.base_len() + self.own.len()
    }

    fn get(&self, k: usize) -> HeatKey<'_> {
        match self.base {
            Some(b) if k < b.len() => b.get(k),
            _ => self.own.get(k - self.base_len()),
        }
    }

    /// The index of a key (interned if new); `hint` is tried first.
    fn index(&mut self, case: &str, provider: &str, sample: u32, hint: usize) -> usize {
        if hint < self.len() && self.get(hint) == (case, provider, sample) {
            return hint;
        }
        if let Some(k) = self.base.and_then(|b| b.find(case, provider, sample)) {
            return k;
        }
        self.base_len() + self.own.intern(case, provider, sample)
    }
}

/// An open-addressing hash table of indices (stored plus one; 0 is empty), at most half full;
/// the entries themselves live elsewhere, so the caller compares and rehashes them.
#[derive(Debug, Default, Clone)]
struct Table {
    slots: Vec<u32>,
    len: usize,
}

impl Table {
    fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<u32>()
    }

    fn slot(&self, h: u64) -> usize {
        // The top bits: the multiplicative hash mixes into them.
        let bits = self.slots.len().trailing_zeros();
        usize::try_from(h >> (64 - bits)).unwrap_or(0)
    }

    fn find(&self, h: u64, eq: impl Fn(u32) -> bool) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut at = self.slot(h);
        loop {
            match self.slots[at] {
                0 => return None,
                s if eq(s - 1) => return Some(s - 1),
                _ => at = (at + 1) & mask,
            }
        }
    }

    /// Add `index` (not present) of hash `h`; `hash_of` gives the hash of those held, to
    /// grow.
    fn insert(&mut self, h: u64, index: u32, hash_of: impl Fn(u32) -> u64) {
        if (self.len + 1) * 2 > self.slots.len() {
            let grown = vec![0; (self.slots.len() * 2).max(16)];
            let old = std::mem::replace(&mut self.slots, grown);
            for s in old.into_iter().filter(|s| *s != 0) {
                self.put(hash_of(s - 1), s);
            }
        }
        self.put(h, index + 1);
        self.len += 1;
    }

    fn put(&mut self, h: u64, stored: u32) {
        let mask = self.slots.len() - 1;
        let mut at = self.slot(h);
        while self.slots[at] != 0 {
            at = (at + 1) & mask;
        }
        self.slots[at] = stored;
    }
}

const MIX: u64 = 0x517c_c1b7_2722_0a95;

fn mix(h: u64, word: u64) -> u64 {
    (h.rotate_left(5) ^ word).wrapping_mul(MIX)
}

fn hash_str(s: &str) -> u64 {
    let mut chunks = s.as_bytes().chunks_exact(8);
    let mut h = 0u64;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = mix(h, u64::from_le_bytes(w));
    }
    let rest = chunks.remainder();
    let mut w = [0u8; 8];
    w[..rest.len()].copy_from_slice(rest);
    h = mix(h, u64::from_le_bytes(w));
    mix(h, s.len() as u64)
}

fn hash_key(case: u32, provider: u32, sample: u32) -> u64 {
    mix(
        mix(mix(0, u64::from(case)), u64::from(provider)),
        u64::from(sample),
    )
}

mod ahead;
#[cfg(test)]
mod tests;

pub(super) use ahead::HeatAhead;

/// Statuses a heat map may take instead of reading them.
#[derive(Clone, Copy)]
pub(super) enum Ahead<'a> {
    /// Read while the runs went (or none).
    Held(Option<&'a HeatHistory>),
    /// Being read by the refresh's other thread ([`HeatAhead`]), asked for when the map is
    /// built.
    Coming(&'a HeatAhead),
}
