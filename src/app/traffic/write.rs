//! Storing an ingested batch: the one place where traffic records become buckets, records,
//! keys and offsets, in one transaction. `ingest` and `collect` both call [`write_batch`].

use std::collections::HashMap;

use crate::model::{AssertionOutcome, CaseStatus, Score};
use crate::store::{BucketRow, FileOffset, RecordRow, Store};
use crate::traffic::ingest::Kept;
use crate::traffic::shape::Shape;
use crate::traffic::{MinuteOf, Record};

/// One record of a batch: read and mapped, with the monitor's verdict when it was scored.
#[derive(Debug)]
pub struct Scored {
    pub kept: Kept,
    pub score: Option<Score>,
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

/// Stores a batch of `source` in one transaction: each record's de-duplication key is claimed
/// (a record read before adds nothing), the new ones are counted into their minute, hour and
/// day buckets, the kept ones stored whole, and the files' offsets moved past them. A crash
/// before the commit leaves the store as it was: the next ingest reads the batch again.
pub fn write_batch(store: &mut Store, source: &str, batch: &Batch) -> anyhow::Result<Written> {
    let tx = store.begin_traffic(source)?;
    let mut rows: HashMap<MinuteOf<'_>, BucketRow> = HashMap::new();
    let mut written = Written::default();
    // Feedback imported before its record arrived is counted once the record's buckets are.
    let waiting = tx.feedback_waiting()?;
    let mut traced = Vec::new();
    for scored in &batch.records {
        let kept = &scored.kept;
        let r = &kept.record;
        let minute = MinuteOf::of(r);
        let inline = r
            .feedback
            .as_ref()
            .map(|f| (r.time.timestamp_millis(), f.vote));
        let new = match &r.trace_id {
            // Known by its trace id alone: the trace index is its key (one insert, not two).
            Some(trace) if *trace == kept.key => tx.index_trace(trace, minute, inline)?,
            _ => {
                let new = tx.claim(&kept.key, r.time.timestamp())?;
                if let (true, Some(trace)) = (new, &r.trace_id) {
                    tx.index_trace(trace, minute, inline)?;
                }
                new
            }
        };
        if !new {
            written.seen += 1;
            continue;
        }
        written.new += 1;
        if let (true, Some(trace)) = (waiting, &r.trace_id) {
            traced.push(trace.as_str());
        }
        let row = rows.entry(minute).or_default();
        row.bucket.add(r, kept.sampled);
        if let Some(u) = &r.user_hash {
            row.users.add_hex(u);
        }
        if let Some(score) = &scored.score {
            count_quality(&mut row.quality, score);
        }
        if kept.keep {
            let stripped;
            let record = if kept.text {
                r
            } else {
                stripped = Record {
                    input: None,
                    output: None,
                    context: Vec::new(),
                    ..r.clone()
                };
                &stripped
            };
            tx.put_record(&RecordRow {
                key: &kept.key,
                record,
                sampled: kept.sampled,
                score: scored.score.as_ref(),
            })?;
            if kept.sampled {
                // Drift reads lengths and language even when the text is not kept.
                tx.put_shape(&kept.key, &Shape::of(r))?;
            }
        }
    }
    // In key order, as the buckets lie in the store.
    let mut rows: Vec<_> = rows.into_iter().collect();
    rows.sort_unstable_by_key(|(k, _)| *k);
    for (key, row) in &rows {
        tx.merge_bucket(&key.to_key(), row)?;
    }
    for trace in traced {
        tx.match_feedback(trace)?;
    }
    for (file, at) in &batch.offsets {
        tx.set_offset(file, at)?;
    }
    tx.commit()?;
    Ok(written)
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
