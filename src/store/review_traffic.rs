//! Human review of production traffic: the stored records a traffic sheet samples from, and
//! the current grades of traffic items with their users' votes.

use super::db::{OptionalExtension, params};

use super::review::CURRENT_GRADES;
use super::{Store, StoreError, codec};
use crate::model::{AssertionOutcome, CaseStatus};

/// A stored traffic record as review sees it: its text, its monitor's verdict and the vote
/// that counts for it (the latest, inline or imported) with the comment given with it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewRecord {
    pub key: String,
    pub time_ms: i64,
    pub model: Option<String>,
    pub feature: Option<String>,
    pub segment: Option<String>,
    pub region: Option<String>,
    pub trace_id: Option<String>,
    pub latency_ms: Option<f64>,
    pub error: bool,
    pub error_kind: Option<String>,
    pub confidence: Option<f64>,
    pub feedback_raw: Option<String>,
    pub vote: Option<String>,
    pub comment: Option<String>,
    pub input: Option<String>,
    pub output: Option<String>,
    pub context: Vec<String>,
    /// The monitor's verdict; None when the record was not scored.
    pub status: Option<CaseStatus>,
    pub score: Option<f64>,
    pub assertions: Vec<AssertionOutcome>,
}

impl ReviewRecord {
    /// Whether any of its text was stored (not so under `store_text: none`).
    #[must_use]
    pub fn has_text(&self) -> bool {
        self.input.is_some() || self.output.is_some()
    }
}

/// The current grade of a traffic item by one reviewer, with its user's vote now (the
/// vote shown on the sheet when `prune` has removed the record since).
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficGrade {
    pub sheet_id: String,
    pub source: String,
    pub key: String,
    pub feature: Option<String>,
    pub reviewer: String,
    pub graded_at: String,
    pub pass: bool,
    pub quality: Option<u8>,
    pub hallucination: Option<bool>,
    pub note: String,
    pub vote: Option<String>,
    pub comment: Option<String>,
    /// Earlier grades of this record by this reviewer that this one superseded.
    pub superseded: u64,
}

/// The records of a window that review may sample and that carry a confidence.
const CONFIDENT: &str = "WHERE source = ?1 AND time_ms >= ?2 AND time_ms < ?3
    AND confidence IS NOT NULL AND (input IS NOT NULL OR output IS NOT NULL)";

impl Store {
    /// The stored records of `source` in `[from_ms, to_ms)`, oldest first, streamed.
    pub fn for_each_review_record<F>(
        &self,
        source: &str,
        from_ms: i64,
        to_ms: i64,
        mut f: F,
    ) -> Result<(), StoreError>
    where
        F: FnMut(ReviewRecord) -> Result<(), StoreError>,
    {
        let mut st = self.conn.prepare_cached(
            "SELECT r.key, r.time_ms, r.model, r.feature, r.segment, r.region, r.trace_id,
                    r.latency_ms, r.error, r.error_kind, r.confidence,
                    coalesce(lf.raw, r.feedback), coalesce(v.vote, r.feedback_vote), lf.comment,
                    r.input, r.output, r.context, r.status, r.score, r.assertions
             FROM traffic_records r
             LEFT JOIN traffic_votes v ON v.source = r.source AND v.trace_id = r.trace_id
             LEFT JOIN traffic_feedback lf ON lf.id = (
                 SELECT f.id FROM traffic_feedback f
                 WHERE f.source = r.source AND f.trace_id = r.trace_id
                 ORDER BY f.time_ms DESC, f.id DESC LIMIT 1)
             WHERE r.source = ?1 AND r.time_ms >= ?2 AND r.time_ms < ?3
             ORDER BY r.time_ms, r.key",
        )?;
        let mut rows = st.query(params![source, from_ms, to_ms])?;
        while let Some(r) = rows.next()? {
            let key: String = r.get(0)?;
            let what = format!("traffic record {key} of source {source}");
            let context: Option<String> = r.get(16)?;
            let context = match context {
                None => Vec::new(),
                Some(text) => serde_json::from_str(&text)
                    .map_err(|e| StoreError::Other(format!("read the context of {what}: {e}")))?,
            };
            let status: Option<String> = r.get(17)?;
            let assertions: Option<String> = r.get(19)?;
            f(ReviewRecord {
                time_ms: r.get(1)?,
                model: r.get(2)?,
                feature: r.get(3)?,
                segment: r.get(4)?,
                region: r.get(5)?,
                trace_id: r.get(6)?,
                latency_ms: r.get(7)?,
                error: r.get(8)?,
                error_kind: r.get(9)?,
                confidence: r.get(10)?,
                feedback_raw: r.get(11)?,
                vote: r.get(12)?,
                comment: r.get(13)?,
                input: r.get(14)?,
                output: r.get(15)?,
                context,
                status: status
                    .as_deref()
                    .map(|s| {
                        CaseStatus::parse(s).ok_or_else(|| {
                            StoreError::Other(format!(
                                "read {what}: unknown monitor status '{s}' in the store"
                            ))
                        })
                    })
                    .transpose()?,
                score: r.get(18)?,
                assertions: assertions
                    .as_deref()
                    .map(codec::outcomes_from_json)
                    .transpose()
                    .map_err(|e| {
                        StoreError::Other(format!(
                            "read the monitor's verdicts of {what}: they are not valid: {e}"
                        ))
                    })?
                    .unwrap_or_default(),
                key,
            })?;
        }
        Ok(())
    }

    /// Of the records of `source` in `[from_ms, to_ms)` that have stored text and a
    /// confidence: how many, and the largest confidence.
    pub fn review_confidences(
        &self,
        source: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<(u64, Option<f64>), StoreError> {
        let (n, max): (i64, Option<f64>) = self.conn.query_row(
            &format!("SELECT count(*), max(confidence) FROM traffic_records {CONFIDENT}"),
            params![source, from_ms, to_ms],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok((codec::to_u64(n), max))
    }

    /// The `rank`-th lowest confidence (1-based) of the records [`Store::review_confidences`]
    /// counts.
    pub fn review_confidence_at(
        &self,
        source: &str,
        from_ms: i64,
        to_ms: i64,
        rank: u64,
    ) -> Result<Option<f64>, StoreError> {
        let offset = i64::try_from(rank.saturating_sub(1)).unwrap_or(i64::MAX);
        Ok(self
            .conn
            .query_row(
                &format!(
                    "SELECT confidence FROM traffic_records {CONFIDENT}
                     ORDER BY confidence LIMIT 1 OFFSET ?4"
                ),
                params![source, from_ms, to_ms, offset],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The current grade of each graded (traffic item, reviewer), optionally of one source or
    /// one sheet, by source, then sheet, then item order.
    pub fn traffic_grades(
        &self,
        source: Option<&str>,
        sheet_id: Option<&str>,
    ) -> Result<Vec<TrafficGrade>, StoreError> {
        let sql = format!(
            "SELECT sh.sheet_id, i.traffic_source, i.traffic_key,
                    coalesce(r.feature, json_extract(i.item, '$.traffic.feature')),
                    g.reviewer, g.graded_at, g.verdict, g.quality, g.hallucination, g.note,
                    CASE WHEN r.key IS NULL THEN json_extract(i.item, '$.traffic.vote')
                         ELSE coalesce(v.vote, r.feedback_vote) END,
                    coalesce((SELECT f.comment FROM traffic_feedback f
                              WHERE f.source = r.source AND f.trace_id = r.trace_id
                              ORDER BY f.time_ms DESC, f.id DESC LIMIT 1),
                             json_extract(i.item, '$.traffic.comment')),
                    g.total
             FROM ({CURRENT_GRADES}) g
             JOIN review_sheets sh ON sh.id = g.sheet_ref
             JOIN review_items i ON i.sheet_ref = g.sheet_ref AND i.result_id = g.result_id
             LEFT JOIN traffic_records r ON r.source = i.traffic_source AND r.key = i.traffic_key
             LEFT JOIN traffic_votes v ON v.source = r.source AND v.trace_id = r.trace_id
             WHERE i.traffic_source IS NOT NULL
               AND (CAST(?1 AS TEXT) IS NULL OR i.traffic_source = ?1)
               AND (CAST(?2 AS TEXT) IS NULL OR sh.sheet_id = ?2)
             ORDER BY i.traffic_source, julianday(sh.created_at) NULLS FIRST, sh.id, i.idx, g.reviewer"
        );
        let mut st = self.conn.prepare_cached(&sql)?;
        let rows = st.query_map(params![source, sheet_id], |r| {
            let quality: Option<i64> = r.get(7)?;
            let total: i64 = r.get(12)?;
            Ok(TrafficGrade {
                sheet_id: r.get(0)?,
                source: r.get(1)?,
                key: r.get(2)?,
                feature: r.get(3)?,
                reviewer: r.get(4)?,
                graded_at: r.get(5)?,
                pass: r.get::<_, String>(6)? == "pass",
                quality: quality.and_then(|q| u8::try_from(q).ok()),
                hallucination: r.get(8)?,
                note: r.get(9)?,
                vote: r.get(10)?,
                comment: r.get(11)?,
                superseded: codec::to_u64(total - 1),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
