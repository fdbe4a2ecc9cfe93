//! Change markers (`marks`, schema version 11).

use super::db::params;

use super::{Store, StoreError, codec};
use crate::model::{Mark, MarkKind, MarkOrigin};

/// A marker to record.
#[derive(Debug, Clone)]
pub struct NewMark<'a> {
    pub kind: MarkKind,
    pub text: &'a str,
    pub at: &'a str,
    pub feature: Option<&'a str>,
    pub source: Option<&'a str>,
    pub origin: MarkOrigin,
    pub created_at: &'a str,
}

/// Which markers to read: those at or after `since` and before `until` (RFC 3339), of one
/// feature or source (a marker for no feature or source concerns them all).
#[derive(Debug, Clone, Default)]
pub struct MarkQuery<'a> {
    pub since: Option<&'a str>,
    pub until: Option<&'a str>,
    pub feature: Option<&'a str>,
    pub source: Option<&'a str>,
    pub limit: Option<usize>,
}

impl Store {
    /// Record a marker. Returns its id and whether it is new: the same kind, text, time,
    /// feature and source recorded again is kept once (a re-run deploy job marks once).
    pub fn add_mark(&mut self, m: &NewMark<'_>) -> Result<(i64, bool), StoreError> {
        let tx = self.conn.transaction()?;
        let added = tx.execute(
            "INSERT INTO marks (kind, text, at, feature, source, origin, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
            params![
                m.kind.as_str(),
                m.text,
                m.at,
                m.feature,
                m.source,
                m.origin.as_str(),
                m.created_at
            ],
        )? == 1;
        let id: i64 = tx.query_row(
            "SELECT id FROM marks WHERE kind = ?1 AND text = ?2 AND at = ?3
             AND IFNULL(feature, '') = IFNULL(?4, '') AND IFNULL(source, '') = IFNULL(?5, '')",
            params![m.kind.as_str(), m.text, m.at, m.feature, m.source],
            |r| r.get(0),
        )?;
        tx.commit()?;
        Ok((id, added))
    }

    /// Markers matching `q`, oldest first (the newest `limit` when a limit is given).
    pub fn marks(&self, q: &MarkQuery<'_>) -> Result<Vec<Mark>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, kind, text, at, feature, source, origin, created_at FROM marks
             WHERE (CAST(?1 AS TEXT) IS NULL OR at >= ?1) AND (CAST(?2 AS TEXT) IS NULL OR at < ?2)
               AND (CAST(?3 AS TEXT) IS NULL OR feature IS NULL OR feature = ?3)
               AND (CAST(?4 AS TEXT) IS NULL OR source IS NULL OR source = ?4)
             ORDER BY at DESC, id DESC LIMIT ?5",
        )?;
        let limit = q.limit.map_or(i64::MAX, codec::usize_to_i64);
        let rows = st.query_map(params![q.since, q.until, q.feature, q.source, limit], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, String>(7)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, kind, text, at, feature, source, origin, created_at) = row?;
            // The table's CHECK constraints hold kind and origin to these values.
            let kind = MarkKind::parse(&kind).unwrap_or(MarkKind::Note);
            let origin = if origin == "auto" {
                MarkOrigin::Auto
            } else {
                MarkOrigin::User
            };
            out.push(Mark {
                id,
                kind,
                text,
                at,
                feature,
                source,
                origin,
                created_at,
            });
        }
        out.reverse();
        Ok(out)
    }
}
