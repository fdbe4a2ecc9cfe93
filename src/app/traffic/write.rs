//! Storing ingested batches: the one place where traffic records become buckets, records,
//! keys and offsets, in one transaction. `collect` stores each export with [`write_batch`];
//! `ingest` stores up to [`super::ingest`]'s chunk of batches in one [`Chunk`].

use std::borrow::Cow;
use std::collections::hash_map::Entry;

use crate::model::{AssertionOutcome, CaseStatus, Score};
use crate::store::{
    BucketRow, FileOffset, RecordRow, Store, TraceRow, TrafficTx, hour_of, trace_key,
};
use crate::traffic::ingest::Kept;
use crate::traffic::shape::Shape;
use crate::traffic::{BucketKey, MinuteOf, Record, Resolution, Vote};

/// The chunk's maps are keyed by labels (strings) and looked up once a record: `foldhash`,
/// not the standard SipHash (`perf` put SipHash at ~1.4% of an unscored ingest's CPU).
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// One record of a batch: read and mapped, with the monitor's verdict when it was scored.
#[derive(Debug)]
pub struct Scored {
    pub kept: Kept,
    pub score: Option<Score>,
    /// A sampled record's lengths and language, when worked out before it reaches the
    /// store (by `ingest`'s shaping thread); else they are worked out as it is stored.
    pub shape: Option<Shape>,
}

/// Records of one source read since the last commit, and where each file's reading stands
/// once they are stored.
#[derive(Debug, Default)]
pub struct Batch {
    pub records: Vec<Scored>,
    /// (file, offset just past the last record of the batch).
    pub offsets: Vec<(String, FileOffset)>,
}

/// What a stored batch added.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Records counted for the first time.
    pub new: u64,
    /// Records this source had read before (same trace id, or the same record): not counted.
    pub seen: u64,
}

/// Stores a batch of `source` in one transaction (see [`Chunk`]).
pub fn write_batch(store: &mut Store, source: &str, batch: &Batch) -> anyhow::Result<Written> {
    let mut chunk = Chunk::begin(store, source)?;
    let written = chunk.add(batch)?;
    chunk.commit()?;
    Ok(written)
}

/// Batches of one source stored as one transaction: each record's de-duplication key is
/// claimed (a record read before adds nothing), the new ones are counted into minute buckets
/// held in memory, the kept ones stored whole, and the files' offsets moved past them. At
/// [`Chunk::commit`] the minutes are rolled up to hours and days in memory and every bucket
/// the chunk touched is merged into the store once. A crash before the commit leaves the
/// store as it was: the next ingest reads the chunk again.
pub struct Chunk<'s> {
    tx: TrafficTx<'s>,
    minutes: HashMap<BucketKey, BucketRow>,
    /// Feedback waits for some records of this source (looked up once a chunk).
    waiting: bool,
    /// Traced records counted by this chunk that feedback may be waiting for.
    traced: Vec<String>,
    /// Inline votes of traces that had a vote, or of records read before: decided at the
    /// commit, once the buckets are merged (the latest vote wins).
    votes: Vec<LateVote>,
    /// Records added so far.
    pub records: usize,
}

/// An inline vote left to [`TrafficTx::count_inline_vote`]: its trace, time, vote and value.
struct LateVote {
    trace: String,
    time_ms: i64,
    vote: Vote,
    raw: String,
}

/// One minute bucket of a batch: its counts, and its label set once a traced record needed it.
#[derive(Default)]
struct Minute {
    row: BucketRow,
    labels: Option<i64>,
}

impl<'s> Chunk<'s> {
    pub fn begin(store: &'s mut Store, source: &str) -> anyhow::Result<Self> {
        let tx = store.begin_traffic(source)?;
        // Feedback imported before its record arrived is counted once the record's buckets are.
        let waiting = tx.feedback_waiting()?;
        Ok(Self {
            tx,
            minutes: HashMap::default(),
            waiting,
            traced: Vec::new(),
            votes: Vec::new(),
            records: 0,
        })
    }

    /// Claims, counts and stores one batch (within the chunk's transaction).
    pub fn add(&mut self, batch: &Batch) -> anyhow::Result<Written> {
        let tx = &self.tx;
        let mut rows: HashMap<MinuteOf<'_>, Minute> = HashMap::default();
        let mut written = Written::default();
        let claimed = claim_traced(tx, batch)?;
        let mut keep = Vec::new();
        for (i, scored) in batch.records.iter().enumerate() {
            let kept = &scored.kept;
            let r = &kept.record;
            let minute = MinuteOf::of(r);
            let slot = rows.entry(minute).or_default();
            let labels = |slot: &mut Minute| -> anyhow::Result<i64> {
                Ok(match slot.labels {
                    Some(l) => l,
                    None => *slot.labels.insert(tx.label_set(minute)?),
                })
            };
            let mut index = |trace: &str| -> anyhow::Result<bool> {
                let labels = labels(slot)?;
                Ok(tx.index_trace(trace, minute.start, labels)?)
            };
            let new = match &r.trace_id {
                // Known by its trace id alone: the trace index is its key (one insert, not two),
                // claimed above in the index's order when the batch allows it.
                Some(trace) if *trace == kept.key => match &claimed {
                    Some(claimed) => claimed[i],
                    None => index(trace)?,
                },
                _ => {
                    let new = tx.claim(&kept.key, r.time.timestamp())?;
                    if let (true, Some(trace)) = (new, &r.trace_id) {
                        index(trace)?;
                    }
                    new
                }
            };
            // A traced record's vote: the trace's first, counted with the record below; else
            // decided at the commit, against the trace's vote (the latest wins).
            let mut late = None;
            if let (Some(trace), Some(f)) = (&r.trace_id, &r.feedback) {
                let time_ms = r.time.timestamp_millis();
                let first = new && {
                    let labels = labels(slot)?;
                    tx.first_vote(trace, time_ms, f.vote, minute.start, labels)?
                };
                if !first {
                    late = Some(f.vote);
                    self.votes.push(LateVote {
                        trace: trace.clone(),
                        time_ms,
                        vote: f.vote,
                        raw: f.raw.clone(),
                    });
                }
            }
            if !new {
                written.seen += 1;
                continue;
            }
            written.new += 1;
            if let (true, Some(trace)) = (self.waiting, &r.trace_id) {
                self.traced.push(trace.clone());
            }
            let row = &mut slot.row;
            row.bucket.add(r, kept.sampled);
            if let Some(vote) = late {
                // Counted by `add` above, decided at the commit instead.
                row.bucket.add_vote(vote, -1);
            }
            if let Some(u) = &r.user_hash {
                row.users.add_hex(u);
            }
            if let Some(score) = &scored.score {
                count_quality(&mut row.quality, score);
            }
            if kept.keep {
                keep.push(scored);
            }
        }
        store_records(tx, &keep)?;
        for (minute, slot) in rows {
            // A minute whose records were all read before has nothing to add.
            if slot.row.bucket.requests > 0 {
                self.minutes
                    .entry(minute.to_key())
                    .or_default()
                    .merge(&slot.row);
            }
        }
        for (file, at) in &batch.offsets {
            tx.set_offset(file, at)?;
        }
        self.records += batch.records.len();
        Ok(written)
    }

    /// Rolls the chunk's minutes up to hours and days, merges each bucket into the store once
    /// (in key order, as they lie in the store), counts waiting feedback, and commits.
    ///
    /// The minutes are rolled up in key order: an hour's or a day's sums (cost is a float)
    /// then come out to the same bits in every process. In the map's order, which differs
    /// from process to process, an ingest cut short and resumed could store a cost one bit
    /// away from a clean ingest's (the kill -9 test failed so, now and then).
    pub fn commit(self) -> anyhow::Result<()> {
        let mut minutes: Vec<(BucketKey, BucketRow)> = self.minutes.into_iter().collect();
        minutes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut rows: HashMap<BucketKey, BucketRow> = HashMap::default();
        for (key, row) in &minutes {
            for to in [Resolution::Hour, Resolution::Day] {
                rows.entry(key.rolled_up(to)).or_default().merge(row);
            }
        }
        rows.extend(minutes);
        let mut rows: Vec<_> = rows.into_iter().collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        self.tx.merge_all(&rows)?;
        for v in &self.votes {
            self.tx
                .count_inline_vote(&v.trace, v.time_ms, v.vote, &v.raw)?;
        }
        for trace in &self.traced {
            self.tx.match_feedback(trace)?;
        }
        self.tx.commit()?;
        Ok(())
    }
}

/// Claims the batch's records known by their trace id alone (one insert in the trace index
/// each), in the order of their keys in the index rather than the batch's: random trace ids
/// (OpenTelemetry's) would otherwise land on random pages of an index far larger than
/// SQLite's page cache, each insert reading and dirtying a page of its own. Whether each
/// record was new, by its place in the batch (`false` for the others, claimed as they come).
/// A trace twice in a batch within one hour: the first in the batch's order is the new one,
/// as before; in two neighbouring hours, the one in the earlier hour (the index's order).
///
/// `None` (claim each in the batch's order) when a record of the batch also carries a span
/// id: its trace's entry must come before a later record known by that trace alone, which
/// then counts as seen.
fn claim_traced(tx: &TrafficTx<'_>, batch: &Batch) -> anyhow::Result<Option<Vec<bool>>> {
    let spans = batch.records.iter().any(|s| {
        s.kept
            .record
            .trace_id
            .as_deref()
            .is_some_and(|t| t != s.kept.key)
    });
    if spans {
        return Ok(None);
    }
    // (the index's key: hour and trace key; the record's place in the batch)
    let mut order: Vec<(IndexKey, usize)> = batch
        .records
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let trace = s.kept.record.trace_id.as_deref()?;
            let hour = hour_of(MinuteOf::of(&s.kept.record).start);
            (trace == s.kept.key).then(|| ((hour, trace_key(trace)), i))
        })
        .collect();
    // Stable: equal keys keep the batch's order.
    order.sort_by_key(|&(key, _)| key);
    let mut labels: HashMap<MinuteOf<'_>, i64> = HashMap::default();
    let mut rows = Vec::with_capacity(order.len());
    for &((hour, key), i) in &order {
        let r = &batch.records[i].kept.record;
        let minute = MinuteOf::of(r);
        let id = match labels.entry(minute) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(e) => *e.insert(tx.label_set(minute)?),
        };
        rows.push(TraceRow {
            hour,
            key,
            start: minute.start,
            labels: id,
        });
    }
    let indexed = tx.index_traces(&rows)?;
    let mut new = vec![false; batch.records.len()];
    for (&(_, i), was_new) in order.iter().zip(indexed) {
        new[i] = was_new;
    }
    Ok(Some(new))
}

/// A record's key in the trace index after its source: its hour and its trace's key.
type IndexKey = (i64, [u8; 16]);

/// Stores the records of a batch kept whole: their text when the source keeps it, and their
/// shape when sampled (drift reads lengths and language even when the text is not kept).
fn store_records(tx: &TrafficTx<'_>, kept: &[&Scored]) -> anyhow::Result<()> {
    let written: Vec<(Cow<'_, Record>, Option<Shape>)> = kept
        .iter()
        .map(|scored| {
            let k = &scored.kept;
            let r = &k.record;
            let record = if k.text {
                Cow::Borrowed(r)
            } else {
                Cow::Owned(Record {
                    input: None,
                    output: None,
                    context: Vec::new(),
                    ..r.clone()
                })
            };
            let shape = k
                .sampled
                .then(|| scored.shape.unwrap_or_else(|| Shape::of(r)));
            (record, shape)
        })
        .collect();
    let rows: Vec<RecordRow<'_>> = kept
        .iter()
        .zip(&written)
        .map(|(scored, (record, shape))| RecordRow {
            key: &scored.kept.key,
            record,
            sampled: scored.kept.sampled,
            score: scored.score.as_ref(),
            shape: shape.as_ref(),
        })
        .collect();
    tx.put_records(&rows)?;
    Ok(())
}

/// The monitor's verdict on one sampled record, counted: decided, passed, and what its
/// hallucination and refusal checks found.
pub(super) fn count_quality(q: &mut crate::store::Quality, score: &Score) {
    match score.status {
        CaseStatus::Passed => {
            q.scored += 1;
            q.passed += 1;
        }
        CaseStatus::Failed => q.scored += 1,
        CaseStatus::Error | CaseStatus::Unscorable => {}
    }
    let decided = |base: &'static str| {
        score
            .assertions
            .iter()
            .filter(move |a: &&AssertionOutcome| {
                !a.unscorable && a.type_name.trim_start_matches("not-") == base
            })
    };
    let mut checked = decided("hallucination").peekable();
    if checked.peek().is_some() {
        q.hallucination_checked += 1;
        // Found unsupported claims: failed as written, or passed when negated.
        if checked.any(|a| a.pass == a.type_name.starts_with("not-")) {
            q.hallucinated += 1;
        }
    }
    let mut checked = decided("is-refusal").peekable();
    if checked.peek().is_some() {
        q.refusal_checked += 1;
        // A refusal: `is-refusal` passed, or `not-is-refusal` failed.
        if checked.any(|a| a.pass != a.type_name.starts_with("not-")) {
            q.refused += 1;
        }
    }
}
