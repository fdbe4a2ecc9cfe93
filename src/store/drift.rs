//! What drift on traffic reads of sampled records: their lengths, language, latency and
//! confidence (written with the record, [`super::TrafficTx::put_record`]), per window.

use super::db::params;

use super::codec::to_u64;
use super::{Store, StoreError};

/// One sampled record as drift reads it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SampleRow {
    /// Unix milliseconds.
    pub time_ms: i64,
    pub input_chars: Option<u64>,
    pub output_chars: Option<u64>,
    pub language: Option<String>,
    /// Successful requests only (as the latency sketches): `None` for a failed one.
    pub latency_ms: Option<f64>,
    pub confidence: Option<f64>,
    pub feature: Option<String>,
    pub model: Option<String>,
    pub segment: Option<String>,
    pub region: Option<String>,
}

impl Store {
    /// The sampled records of `source` timed in `[from, to)` (unix seconds), handed to `each`
    /// one at a time, oldest first: a month of a busy source's sample is millions of rows.
    pub fn each_traffic_sample(
        &self,
        source: &str,
        from: i64,
        to: i64,
        mut each: impl FnMut(SampleRow) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT time_ms, input_chars, output_chars, language,
                    CASE WHEN error != 0 THEN NULL ELSE latency_ms END, confidence,
                    feature, model, segment, region
             FROM traffic_records
             WHERE source = ?1 AND sampled = 1 AND time_ms >= ?2 AND time_ms < ?3
             ORDER BY time_ms",
        )?;
        let mut rows = stmt.query(params![
            source,
            from.saturating_mul(1000),
            to.saturating_mul(1000)
        ])?;
        while let Some(r) = rows.next()? {
            each(SampleRow {
                time_ms: r.get(0)?,
                input_chars: r.get::<_, Option<i64>>(1)?.map(to_u64),
                output_chars: r.get::<_, Option<i64>>(2)?.map(to_u64),
                language: r.get(3)?,
                latency_ms: r.get(4)?,
                confidence: r.get(5)?,
                feature: r.get(6)?,
                model: r.get(7)?,
                segment: r.get(8)?,
                region: r.get(9)?,
            })?;
        }
        Ok(())
    }
}
