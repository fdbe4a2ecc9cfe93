//! Users' feedback on traffic records: imported after the fact, linked by trace id, and counted
//! in the buckets of its record's minute, hour and day, sampled record or not.
//!
//! Each traced record leaves its bucket coordinates in the trace index (`traffic_trace_keys`,
//! written by `TrafficTx::index_trace`) when it is counted.
//! A record's vote in the buckets is the latest by time (inline in the log or imported):
//! `traffic_votes` holds it with the bucket it is counted in, so that a changed vote takes the
//! earlier one out of the counts where it was counted (a trace in records of several hours
//! may put the new vote in another record's bucket).
//! Feedback for a record not ingested yet waits in `traffic_feedback_waiting` and is counted
//! by the batch that brings its record.

use std::collections::HashSet;

use super::db::{OptionalExtension, Tx, params};

use super::traffic::{
    Located, RESOLUTIONS, TrafficTx, begin_writing, find_trace, locate_traces, nearest,
    read_bucket, trace_key, write_bucket,
};
use super::{Store, StoreError};
use crate::traffic::{BucketKey, Resolution, Vote};

/// An import with at least this many traces finds them all in one pass over the source's trace
/// index rather than trace by trace (a trace whose record is not ingested yet costs a lookup an
/// hour the index holds: ~1.7 ms at 30 days of hours, docs/performance.md "Session 21").
pub const LOCATE_AT_ONCE: usize = 1000;

/// One piece of feedback to import (the user already hashed, the comment already redacted).
#[derive(Debug, Clone)]
pub struct NewFeedback<'a> {
    pub trace_id: &'a str,
    pub time_ms: i64,
    pub raw: &'a str,
    pub vote: Vote,
    pub comment: Option<&'a str>,
    pub feature: Option<&'a str>,
    pub user_hash: Option<&'a str>,
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedbackImport {
    /// Feedback stored for the first time.
    pub added: u64,
    /// Feedback already stored (the same trace, time and value): counted once.
    pub repeated: u64,
    /// Records whose vote now counts for the first time.
    pub counted: u64,
    /// Records whose earlier vote a later one replaced.
    pub replaced: u64,
    /// Feedback kept but older than the vote that counts for its record.
    pub superseded: u64,
    /// Feedback whose record is not ingested yet (kept; counted when it arrives).
    pub waiting: u64,
}

/// What applying a trace's latest feedback changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Applied {
    Counted,
    Replaced,
    Unchanged,
    Waiting,
}

/// A piece of negative feedback with its record's labels, for the digest.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackRow {
    pub trace_id: String,
    pub time_ms: i64,
    pub raw: String,
    pub vote: Vote,
    pub comment: Option<String>,
    /// The record's feature, else the one the feedback names.
    pub feature: Option<String>,
    /// The record's key when it is stored whole (sampled or kept for its text).
    pub record_key: Option<String>,
}

/// Counts the latest feedback of `trace_id` in its record's buckets (taking the vote it
/// replaces out), or leaves it waiting when the record has not been counted yet.
/// `located`: where the trace index holds the import's traces, when an import of many votes
/// looked them all up at once ([`locate_traces`]); else each is looked up here.
fn apply_latest(
    tx: &Tx<'_>,
    source: &str,
    trace_id: &str,
    located: Option<&Located>,
) -> Result<Applied, StoreError> {
    let latest: Option<(i64, String, String)> = tx
        .prepare_cached(
            "SELECT time_ms, vote, raw FROM traffic_feedback WHERE source = ?1 AND trace_id = ?2
             ORDER BY time_ms DESC, id DESC LIMIT 1",
        )?
        .query_row(params![source, trace_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let Some((time_ms, vote_name, raw)) = latest else {
        return Ok(Applied::Unchanged);
    };
    let vote = Vote::from_name(&vote_name)
        .ok_or_else(|| StoreError::Other(format!("read feedback vote `{vote_name}`")))?;
    let Some(key) = trace_bucket(tx, source, trace_id, time_ms, located)? else {
        tx.prepare_cached(
            "INSERT INTO traffic_feedback_waiting (source, trace_id) VALUES (?1, ?2)
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![source, trace_id])?;
        return Ok(Applied::Waiting);
    };
    // Its record is counted: the feedback waits no longer, whether it counts or an inline
    // vote later than it does.
    tx.prepare_cached("DELETE FROM traffic_feedback_waiting WHERE source = ?1 AND trace_id = ?2")?
        .execute(params![source, trace_id])?;
    count_vote(tx, source, trace_id, (time_ms, vote, &raw), key, located)
}

/// Counts `vote` (given at `time_ms`, written `raw`) as the vote of `trace_id` in the minute
/// bucket `key` (with its label set), taking the trace's earlier vote out of the bucket it was
/// counted in; nothing when the trace's vote is later (or the same).
fn count_vote(
    tx: &Tx<'_>,
    source: &str,
    trace_id: &str,
    (time_ms, vote, raw): (i64, Vote, &str),
    key: (BucketKey, i64),
    located: Option<&Located>,
) -> Result<Applied, StoreError> {
    let vote_name = vote.as_str();
    let current: Option<(i64, String, Option<i64>, Option<i64>)> = tx
        .prepare_cached(
            "SELECT time_ms, vote, start, labels FROM traffic_votes
             WHERE source = ?1 AND trace_id = ?2",
        )?
        .query_row(params![source, trace_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    let old = match &current {
        Some((t, ..)) if *t > time_ms => return Ok(Applied::Unchanged),
        Some((t, v, ..)) if *t == time_ms && *v == vote_name => return Ok(Applied::Unchanged),
        Some((t, v, start, labels)) => match Vote::from_name(v) {
            // Taken out of the bucket it was counted in, which for a trace in records of
            // several hours need not be the one the new vote goes to.
            Some(old) => {
                let at = match (start, labels) {
                    (Some(start), Some(labels)) => labelled(tx, *start, *labels)?,
                    // Counted before the votes kept their bucket: found again by its time.
                    _ => trace_bucket(tx, source, trace_id, *t, located)?.map(|(k, _)| k),
                };
                Some((old, at))
            }
            None => None,
        },
        None => None,
    };
    let (key, labels) = key;
    for to in RESOLUTIONS {
        let k = key.rolled_up(to);
        // The earlier vote's bucket: most often the new one's too (one record, or the same
        // hour or day), then read and written once with both changes.
        let mut same = None;
        if let Some((old, Some(at))) = &old {
            let at = at.rolled_up(to);
            if at == k {
                same = Some(*old);
            } else if let Some(mut row) = read_bucket(tx, source, &at)? {
                row.bucket.add_vote(*old, -1);
                write_bucket(tx, source, &at, &row)?;
            }
        }
        // A bucket pruned by retention has nothing left to correct.
        if let Some(mut row) = read_bucket(tx, source, &k)? {
            if let Some(old) = same {
                row.bucket.add_vote(old, -1);
            }
            row.bucket.add_vote(vote, 1);
            write_bucket(tx, source, &k, &row)?;
        }
    }
    tx.prepare_cached(
        "INSERT INTO traffic_votes (source, trace_id, time_ms, vote, start, labels)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (source, trace_id) DO UPDATE SET time_ms = excluded.time_ms,
            vote = excluded.vote, start = excluded.start, labels = excluded.labels",
    )?
    .execute(params![
        source, trace_id, time_ms, vote_name, key.start, labels
    ])?;
    tx.prepare_cached(
        "UPDATE traffic_records SET feedback = ?3, feedback_vote = ?4
         WHERE source = ?1 AND trace_id = ?2",
    )?
    .execute(params![source, trace_id, raw, vote_name])?;
    Ok(if old.is_some() {
        Applied::Replaced
    } else {
        Applied::Counted
    })
}

/// The minute bucket of the record of `trace_id` that a vote given at `time_ms` counts in (the
/// newest of its records not after the vote's hour, else the oldest after it), with its label
/// set's id; `None` while no record of the trace is counted.
fn trace_bucket(
    tx: &Tx<'_>,
    source: &str,
    trace_id: &str,
    time_ms: i64,
    located: Option<&Located>,
) -> Result<Option<(BucketKey, i64)>, StoreError> {
    let near = time_ms.div_euclid(1000);
    match located {
        Some(located) => {
            let Some(key) = located
                .get(&trace_key(trace_id))
                .and_then(|found| nearest(found, near))
                .cloned()
            else {
                return Ok(None);
            };
            let labels: i64 = tx
                .prepare_cached(
                    "SELECT id FROM traffic_label_sets WHERE source = ?1 AND model = ?2
                     AND feature = ?3 AND segment = ?4 AND region = ?5",
                )?
                .query_row(
                    params![source, key.model, key.feature, key.segment, key.region],
                    |r| r.get(0),
                )?;
            Ok(Some((key, labels)))
        }
        None => find_trace(
            tx,
            source,
            trace_id,
            near,
            "t.start, l.model, l.feature, l.segment, l.region, t.labels",
            |r| {
                Ok((
                    BucketKey {
                        start: r.get(0)?,
                        resolution: Resolution::Minute,
                        model: r.get(1)?,
                        feature: r.get(2)?,
                        segment: r.get(3)?,
                        region: r.get(4)?,
                    },
                    r.get(5)?,
                ))
            },
        ),
    }
}

/// The minute bucket `start` of label set `labels` (`None` when the set is not there).
fn labelled(tx: &Tx<'_>, start: i64, labels: i64) -> Result<Option<BucketKey>, StoreError> {
    Ok(tx
        .prepare_cached(
            "SELECT model, feature, segment, region FROM traffic_label_sets WHERE id = ?1",
        )?
        .query_row(params![labels], |r| {
            Ok(BucketKey {
                start,
                resolution: Resolution::Minute,
                model: r.get(0)?,
                feature: r.get(1)?,
                segment: r.get(2)?,
                region: r.get(3)?,
            })
        })
        .optional()?)
}

impl TrafficTx<'_> {
    /// A new record's inline vote (at `time_ms`), kept as its trace's vote when the trace has
    /// none yet: the caller then counts it in the record's minute `start` (label set
    /// `labels`). `false` when the trace has a vote already: [`Self::count_inline_vote`] then
    /// decides, once the chunk's buckets are merged.
    pub fn first_vote(
        &self,
        trace_id: &str,
        time_ms: i64,
        vote: Vote,
        start: i64,
        labels: i64,
    ) -> Result<bool, StoreError> {
        let n = self
            .tx
            .prepare_cached(
                "INSERT INTO traffic_votes (source, trace_id, time_ms, vote, start, labels)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
            )?
            .execute(params![
                self.source,
                trace_id,
                time_ms,
                vote.as_str(),
                start,
                labels
            ])?;
        Ok(n == 1)
    }

    /// An inline vote [`Self::first_vote`] did not keep (its trace had a vote, or its record
    /// was read before), once the chunk's buckets are merged: the latest vote wins, as for
    /// imported feedback. Later than the trace's vote, it replaces it in the buckets (in the
    /// record of the trace its time falls to); else it counts nothing.
    pub fn count_inline_vote(
        &self,
        trace_id: &str,
        time_ms: i64,
        vote: Vote,
        raw: &str,
    ) -> Result<(), StoreError> {
        if let Some(key) = trace_bucket(&self.tx, &self.source, trace_id, time_ms, None)? {
            count_vote(
                &self.tx,
                &self.source,
                trace_id,
                (time_ms, vote, raw),
                key,
                None,
            )?;
        }
        Ok(())
    }

    /// Whether this source has feedback waiting for records (checked once per batch, so that
    /// a batch without any pays one lookup, not one per record).
    pub fn feedback_waiting(&self) -> Result<bool, StoreError> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM traffic_feedback_waiting WHERE source = ?1)",
            )?
            .query_row(params![self.source], |r| r.get(0))?)
    }

    /// Counts the feedback waiting for `trace_id`, now that its record is in the buckets
    /// (call after the batch's buckets are merged). `true` when there was some.
    pub fn match_feedback(&self, trace_id: &str) -> Result<bool, StoreError> {
        let waiting: bool = self
            .tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM traffic_feedback_waiting
                 WHERE source = ?1 AND trace_id = ?2)",
            )?
            .query_row(params![self.source, trace_id], |r| r.get(0))?;
        if waiting {
            apply_latest(&self.tx, &self.source, trace_id, None)?;
        }
        Ok(waiting)
    }
}

impl Store {
    /// Stores feedback of `source` in one transaction and counts each record's latest vote.
    pub fn import_feedback(
        &mut self,
        source: &str,
        rows: &[NewFeedback<'_>],
    ) -> Result<FeedbackImport, StoreError> {
        let tx = begin_writing(&mut self.conn, source)?;
        let mut out = FeedbackImport::default();
        let traces: HashSet<&str> = rows.iter().map(|f| f.trace_id).collect();
        let located = if traces.len() >= LOCATE_AT_ONCE {
            Some(locate_traces(&tx, source, traces)?)
        } else {
            None
        };
        for f in rows {
            let n = tx
                .prepare_cached(
                    "INSERT INTO traffic_feedback (source, trace_id, time_ms, raw, vote, comment,
                        feature, user_hash, imported_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, unixepoch())
                     ON CONFLICT DO NOTHING",
                )?
                .execute(params![
                    source,
                    f.trace_id,
                    f.time_ms,
                    f.raw,
                    f.vote.as_str(),
                    f.comment,
                    f.feature,
                    f.user_hash
                ])?;
            if n == 0 {
                out.repeated += 1;
                continue;
            }
            out.added += 1;
            match apply_latest(&tx, source, f.trace_id, located.as_ref())? {
                Applied::Counted => out.counted += 1,
                Applied::Replaced => out.replaced += 1,
                Applied::Unchanged => out.superseded += 1,
                Applied::Waiting => out.waiting += 1,
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// Records of `source` that feedback is waiting for (not ingested yet).
    pub fn feedback_unmatched(&self, source: &str) -> Result<u64, StoreError> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM traffic_feedback_waiting WHERE source = ?1",
            params![source],
            |r| r.get(0),
        )?;
        Ok(super::codec::to_u64(n))
    }

    /// The feedback that counts (each record's latest) of `source` given in `[from_ms, to_ms)`
    /// with the vote `vote`, newest first, with its record's feature and stored key.
    pub fn feedback_with_vote(
        &self,
        source: &str,
        vote: Vote,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<FeedbackRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT f.trace_id, f.time_ms, f.raw, f.comment, f.feature,
                    (SELECT r.key FROM traffic_records r
                     WHERE r.source = f.source AND r.trace_id = f.trace_id LIMIT 1)
             FROM traffic_feedback f
             WHERE f.source = ?1 AND f.vote = ?2 AND f.time_ms >= ?3 AND f.time_ms < ?4
               AND f.id = (SELECT g.id FROM traffic_feedback g
                           WHERE g.source = f.source AND g.trace_id = f.trace_id
                           ORDER BY g.time_ms DESC, g.id DESC LIMIT 1)
             ORDER BY f.time_ms DESC, f.trace_id",
        )?;
        let rows = stmt
            .query_map(params![source, vote.as_str(), from_ms, to_ms], |r| {
                Ok(FeedbackRow {
                    trace_id: r.get(0)?,
                    time_ms: r.get(1)?,
                    raw: r.get(2)?,
                    vote,
                    comment: r.get(3)?,
                    feature: r.get(4)?,
                    record_key: r.get(5)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        // The record's feature, found by the trace index's key of its trace id (computed
        // here, by `trace_key`, the one implementation), else the one the feedback names.
        rows.into_iter()
            .map(|mut row| {
                let indexed: Option<String> = find_trace(
                    &self.conn,
                    source,
                    &row.trace_id,
                    row.time_ms.div_euclid(1000),
                    "l.feature",
                    |r| r.get(0),
                )?;
                if indexed.is_some() {
                    row.feature = indexed;
                }
                row.feature = row.feature.filter(|f| !f.is_empty());
                Ok(row)
            })
            .collect()
    }
}
