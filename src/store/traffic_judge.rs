//! Judge monitors on traffic: sampled records that wait for a judge (stored `unscorable`,
//! their judged assertions marked `details.pending`), their verdicts once judged (the record
//! updated and its quality counted into its minute, hour and day buckets, with the judge's
//! answers cached, in one transaction), and what judging cost in a window.

use super::db::params;

use super::codec::{to_i64, to_json};
use super::traffic::{BucketRow, Quality, RESOLUTIONS, read_bucket, write_bucket};
use super::{Store, StoreError};
use crate::model::{AssertionOutcome, JudgeCacheEntry, Score};
use crate::traffic::{BucketKey, Resolution};

/// The marker of a record waiting for the judge, as SQL: its status is `unscorable` and one of
/// its assertions is pending.
const WAITING: &str = "status = 'unscorable' AND assertions LIKE '%\"pending\":true%'";

/// A sampled record waiting for the judge: what the monitor needs to score it.
#[derive(Debug, Clone)]
pub struct Awaiting {
    pub key: String,
    /// Its minute bucket (where its verdict is counted).
    pub minute: BucketKey,
    pub input: Option<String>,
    pub output: Option<String>,
    pub context: Vec<String>,
    pub latency_ms: Option<f64>,
    pub cost_usd: Option<f64>,
}

/// A record's verdict: final (`quality` counted), or still pending with why.
#[derive(Debug)]
pub struct Judged {
    pub key: String,
    pub minute: BucketKey,
    pub score: Score,
    /// What the verdict adds to the record's buckets (nothing while still pending).
    pub quality: Quality,
}

/// What judging the sample of a window cost and where it stands.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JudgeTotals {
    /// Judge calls made (answers not found in the cache).
    pub calls: u64,
    /// Judged assertions answered from the judge cache.
    pub cached: u64,
    /// The judge calls' cost (from the judge provider's `pricing`), apart from traffic cost.
    pub cost_usd: f64,
    /// Sampled records still waiting for the judge.
    pub pending: u64,
    /// Why the newest of them is still waiting (the last judge failure), if one failed.
    pub why: Option<String>,
}

impl Store {
    /// Up to `limit` records of `source` waiting for the judge, oldest first.
    pub fn traffic_awaiting_judge(
        &self,
        source: &str,
        limit: usize,
    ) -> Result<Vec<Awaiting>, StoreError> {
        let sql = format!(
            "SELECT key, time_ms, model, feature, segment, region, input, output, context,
                latency_ms, cost_usd
             FROM traffic_records WHERE source = ?1 AND {WAITING}
             ORDER BY time_ms, key LIMIT ?2"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query(params![source, to_i64(limit as u64)])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let time_ms: i64 = r.get(1)?;
            let label = |i: usize| -> Result<String, super::db::DbError> {
                Ok(r.get::<_, Option<String>>(i)?.unwrap_or_default())
            };
            let context: Option<String> = r.get(8)?;
            out.push(Awaiting {
                key: r.get(0)?,
                minute: BucketKey {
                    start: Resolution::Minute.floor(time_ms.div_euclid(1000)),
                    resolution: Resolution::Minute,
                    model: label(2)?,
                    feature: label(3)?,
                    segment: label(4)?,
                    region: label(5)?,
                },
                input: r.get(6)?,
                output: r.get(7)?,
                context: context
                    .and_then(|c| serde_json::from_str(&c).ok())
                    .unwrap_or_default(),
                latency_ms: r.get(9)?,
                cost_usd: r.get(10)?,
            });
        }
        Ok(out)
    }

    /// Stores verdicts and the judge answers to cache, in one transaction: each record's
    /// status, score and assertions replaced, and its quality added to its buckets.
    pub fn put_traffic_judged(
        &mut self,
        source: &str,
        judged: &[Judged],
        cache: &[JudgeCacheEntry],
    ) -> Result<(), StoreError> {
        let tx = super::traffic::begin_writing(&mut self.conn, source)?;
        {
            let mut update = tx.prepare_cached(
                "UPDATE traffic_records SET status = ?3, score = ?4, assertions = ?5
                 WHERE source = ?1 AND key = ?2",
            )?;
            for j in judged {
                update.execute(params![
                    source,
                    j.key,
                    j.score.status.as_str(),
                    j.score.score,
                    to_json(&j.score.assertions)?,
                ])?;
                if j.quality == Quality::default() {
                    continue;
                }
                let add = BucketRow {
                    quality: j.quality,
                    ..BucketRow::default()
                };
                for to in RESOLUTIONS {
                    let k = j.minute.rolled_up(to);
                    let mut merged = read_bucket(&tx, source, &k)?.unwrap_or_default();
                    merged.merge(&add);
                    write_bucket(&tx, source, &k, &merged)?;
                }
            }
        }
        super::judge::put_cache(&tx, cache)?;
        tx.commit()?;
        Ok(())
    }

    /// Judge calls, cache hits and cost of the records of `source` timed in `[from, to)`
    /// (unix seconds), and how many of them still wait for the judge.
    pub fn traffic_judge_totals(
        &self,
        source: &str,
        from: i64,
        to: i64,
    ) -> Result<JudgeTotals, StoreError> {
        let mut totals = JudgeTotals::default();
        let mut stmt = self.conn.prepare(
            "SELECT assertions, status FROM traffic_records
             WHERE source = ?1 AND time_ms >= ?2 AND time_ms < ?3 AND assertions IS NOT NULL
               AND assertions LIKE '%\"judge\"%'
             ORDER BY time_ms",
        )?;
        let mut rows = stmt.query(params![source, from * 1000, to * 1000])?;
        while let Some(r) = rows.next()? {
            let text: String = r.get(0)?;
            let Ok(outcomes) = serde_json::from_str::<Vec<AssertionOutcome>>(&text) else {
                continue;
            };
            let mut waiting = None;
            for o in &outcomes {
                let d = &o.details;
                if d.get("pending").and_then(serde_json::Value::as_bool) == Some(true) {
                    waiting = Some(o.reason.clone());
                }
                if d.get("cached").and_then(serde_json::Value::as_bool) == Some(true) {
                    totals.cached += 1;
                }
                if let Some(u) = d.get("usage") {
                    totals.calls += 1;
                    totals.cost_usd += u
                        .get("cost_usd")
                        .and_then(serde_json::Value::as_f64)
                        .unwrap_or(0.0);
                }
            }
            if let Some(why) = waiting {
                totals.pending += 1;
                totals.why = Some(why);
            }
        }
        Ok(totals)
    }
}
