//! Human review: sheets, their items and the grades imported from them.

use std::collections::HashSet;

use super::db::{OptionalExtension, TransactionBehavior, params};

use super::codec;
use super::{Store, StoreError};
use crate::model::{AutoAssertion, Grade, GradedResult};

/// A sheet to store, its items in sheet order.
#[derive(Debug, Clone)]
pub struct NewSheet {
    pub sheet_id: String,
    pub created_at: String,
    pub secret: String,
    pub mac: String,
    pub params: String,
    pub items: Vec<NewItem>,
}

/// One item of a new sheet: a suite result, or a traffic record (`record`, with the id
/// [`traffic_item_id`] gives it).
#[derive(Debug, Clone)]
pub struct NewItem {
    pub result_id: i64,
    pub stratum: String,
    /// The item as shown, JSON.
    pub item: String,
    /// The traffic record (source, key) the item shows, for a traffic item.
    pub record: Option<(String, String)>,
}

/// The item id of a traffic record: from its (source, key), in `[2^62, 2^63)`, a range no
/// `results.id` reaches (that takes 2^30 runs), so that suite and traffic items share the
/// grades' one id space and a record is in at most one open sheet like a result.
#[must_use]
pub fn traffic_item_id(source: &str, key: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(source.as_bytes());
    h.update([0u8]);
    h.update(key.as_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let low = u64::from_be_bytes(first) & ((1u64 << 62) - 1);
    i64::try_from(low | (1u64 << 62)).unwrap_or(i64::MAX)
}

/// A stored sheet with its items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetRow {
    pub sheet_id: String,
    pub created_at: String,
    pub open: bool,
    pub secret: String,
    pub mac: String,
    /// (result id, stratum, item JSON), in sheet order.
    pub items: Vec<(i64, String, String)>,
}

/// A sheet in a listing, with its progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetSummary {
    pub sheet_id: String,
    pub created_at: String,
    pub open: bool,
    pub items: u64,
    /// Items with at least one grade.
    pub graded: u64,
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportCount {
    /// Grades stored.
    pub added: u64,
    /// Grades already stored exactly so (a repeated import).
    pub unchanged: u64,
    /// Stored grades that superseded an earlier grade of the same result and reviewer.
    pub superseding: u64,
    /// Stored grades exported before the reviewer's current grade of the result: kept in the
    /// history, not current.
    pub older: u64,
    /// Whether the import graded the sheet's last item and so closed it.
    pub closed: bool,
}

/// One stored grade of a result, current or superseded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastGrade {
    pub reviewer: String,
    pub graded_at: String,
    pub pass: bool,
    pub quality: Option<u8>,
    pub note: String,
}

/// A reviewer's current grade of one item of a sheet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemGrade {
    pub reviewer: String,
    pub graded_at: String,
    pub grade: Grade,
}

/// Mean human quality of one provider's graded results in one run.
#[derive(Debug, Clone, PartialEq)]
pub struct HumanScore {
    pub run_id: String,
    pub started_at: String,
    pub provider: String,
    pub mean_quality: f64,
    /// Grades with a quality score.
    pub n: u64,
}

/// Current grades: the newest grade of each (result, reviewer); the number it superseded.
pub(super) const CURRENT_GRADES: &str = "SELECT * FROM (
        SELECT g.*, row_number() OVER w AS rn, count(*) OVER (PARTITION BY g.result_id, g.reviewer) AS total
        FROM review_grades g
        WINDOW w AS (PARTITION BY g.result_id, g.reviewer ORDER BY julianday(g.graded_at) DESC NULLS LAST, g.id DESC)
    ) cur WHERE rn = 1";

/// The advisory lock key sheet creation takes on PostgreSQL ("EvWa" and "R"): SQLite's one
/// writer makes "no result in two open sheets" hold there; on a shared server two `review
/// sample`s check and insert one after the other under it.
const SHEETS_LOCK: i64 = 0x4576_5761_0052;

impl Store {
    /// Result ids that are items of an open sheet.
    pub fn results_in_open_sheets(&self) -> Result<HashSet<i64>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT i.result_id FROM review_items i
             JOIN review_sheets s ON s.id = i.sheet_ref WHERE s.status = 'open'",
        )?;
        let rows = st.query_map((), |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The `results.id` of a run's plan position.
    pub fn result_id(&self, run_id: &str, seq: usize) -> Result<i64, StoreError> {
        codec::result_id(self.run_ref(run_id)?, seq)
    }

    /// Store a new open sheet and its items, in one transaction. Fails, storing nothing,
    /// when a result (or traffic record) is already an item of an open sheet or does not
    /// exist.
    pub fn create_sheet(&mut self, sheet: &NewSheet) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if tx.is_pg() {
            tx.query_row(
                "SELECT pg_advisory_xact_lock(?1)::text",
                [SHEETS_LOCK],
                |r| r.get::<_, String>(0),
            )?;
        }
        let sheet_ref: i64 = tx.query_row(
            "INSERT INTO review_sheets (sheet_id, created_at, status, secret, mac, params)
             VALUES (?1, ?2, 'open', ?3, ?4, ?5) RETURNING id",
            params![
                sheet.sheet_id,
                sheet.created_at,
                sheet.secret,
                sheet.mac,
                sheet.params
            ],
            |r| r.get(0),
        )?;
        {
            let mut busy = tx.prepare_cached(
                "SELECT s.sheet_id FROM review_items i JOIN review_sheets s ON s.id = i.sheet_ref
                 WHERE i.result_id = ?1 AND s.status = 'open' LIMIT 1",
            )?;
            let mut exists =
                tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM results WHERE id = ?1)")?;
            let mut record_exists = tx.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM traffic_records WHERE source = ?1 AND key = ?2)",
            )?;
            let mut add = tx.prepare_cached(
                "INSERT INTO review_items (sheet_ref, idx, result_id, stratum, item,
                     traffic_source, traffic_key)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for (i, it) in sheet.items.iter().enumerate() {
                let result_id = it.result_id;
                let found = match &it.record {
                    None => exists.query_row([result_id], |r| r.get::<_, bool>(0))?,
                    Some((source, key)) => {
                        record_exists.query_row(params![source, key], |r| r.get::<_, bool>(0))?
                    }
                };
                if !found {
                    let what = match &it.record {
                        None => format!("result {result_id}"),
                        Some((source, key)) => format!("traffic record {key} of source {source}"),
                    };
                    return Err(StoreError::Other(format!(
                        "create review sheet {}: {what} does not exist",
                        sheet.sheet_id
                    )));
                }
                if let Some(other) = busy
                    .query_row([result_id], |r| r.get::<_, String>(0))
                    .optional()?
                {
                    return Err(StoreError::Other(format!(
                        "create review sheet {}: result {result_id} is already in open sheet {other}; grade or close that sheet first",
                        sheet.sheet_id
                    )));
                }
                add.execute(params![
                    sheet_ref,
                    codec::usize_to_i64(i),
                    result_id,
                    it.stratum,
                    it.item,
                    it.record.as_ref().map(|r| r.0.as_str()),
                    it.record.as_ref().map(|r| r.1.as_str()),
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The full id of the sheet `prefix` names: an exact id always wins, else the one sheet
    /// whose id starts with it; a prefix of several sheets is
    /// [`StoreError::AmbiguousSheet`]; an empty or unknown one is `None`.
    pub fn resolve_sheet(&self, prefix: &str) -> Result<Option<String>, StoreError> {
        if prefix.is_empty() {
            return Ok(None);
        }
        let mut found: Vec<String> = self
            .conn
            .prepare_cached(
                "SELECT sheet_id FROM review_sheets
                 WHERE sheet_id = ?1 OR substr(sheet_id, 1, length(CAST(?1 AS TEXT))) = ?1
                 ORDER BY sheet_id = ?1 DESC, sheet_id LIMIT 5",
            )?
            .query_map([prefix], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        match found.first() {
            None => Ok(None),
            Some(first) if first == prefix || found.len() == 1 => Ok(Some(found.swap_remove(0))),
            Some(_) => Err(StoreError::AmbiguousSheet {
                prefix: prefix.to_owned(),
                matches: found,
            }),
        }
    }

    /// One sheet with its items.
    pub fn sheet(&self, sheet_id: &str) -> Result<Option<SheetRow>, StoreError> {
        let head = self
            .conn
            .prepare_cached(
                "SELECT id, sheet_id, created_at, status, secret, mac FROM review_sheets
                 WHERE sheet_id = ?1",
            )?
            .query_row([sheet_id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    SheetRow {
                        sheet_id: r.get(1)?,
                        created_at: r.get(2)?,
                        open: r.get::<_, String>(3)? == "open",
                        secret: r.get(4)?,
                        mac: r.get(5)?,
                        items: Vec::new(),
                    },
                ))
            })
            .optional()?;
        let Some((id, mut row)) = head else {
            return Ok(None);
        };
        let mut st = self.conn.prepare_cached(
            "SELECT result_id, stratum, item FROM review_items WHERE sheet_ref = ?1 ORDER BY idx",
        )?;
        row.items = st
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        Ok(Some(row))
    }

    /// Sheets, newest first (only the open ones with `open_only`), with their progress.
    pub fn sheets(&self, open_only: bool) -> Result<Vec<SheetSummary>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT s.sheet_id, s.created_at, s.status,
                    (SELECT count(*) FROM review_items i WHERE i.sheet_ref = s.id),
                    (SELECT count(DISTINCT g.result_id) FROM review_grades g WHERE g.sheet_ref = s.id)
             FROM review_sheets s WHERE (NOT ?1 OR s.status = 'open')
             ORDER BY julianday(s.created_at) DESC NULLS LAST, s.id DESC",
        )?;
        let rows = st.query_map([open_only], |r| {
            Ok(SheetSummary {
                sheet_id: r.get(0)?,
                created_at: r.get(1)?,
                open: r.get::<_, String>(2)? == "open",
                items: codec::to_u64(r.get(3)?),
                graded: codec::to_u64(r.get(4)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Close a sheet: its results may be sampled again. False when there is no such sheet.
    pub fn close_sheet(&mut self, sheet_id: &str) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE review_sheets SET status = 'closed' WHERE sheet_id = ?1",
            [sheet_id],
        )?;
        Ok(n > 0)
    }

    /// Store the grades of one reviewer for one sheet, all or nothing: every result must be
    /// an item of the sheet. A grade stored before exactly so (same time and content) is
    /// left alone; a different one is added and becomes current, the earlier kept. The
    /// sheet is closed once every item has a grade.
    pub fn import_grades(
        &mut self,
        sheet_id: &str,
        reviewer: &str,
        graded_at: &str,
        imported_at: &str,
        grades: &[Grade],
    ) -> Result<ImportCount, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        // On PostgreSQL the sheet's row is locked until commit: imports into one sheet (two
        // reviewers sending at once, from two `review serve`s) run one after the other, so
        // that each sees the other's grades when it counts what is left to grade.
        let lock = if tx.is_pg() { " FOR UPDATE" } else { "" };
        let sheet_ref: i64 = tx
            .prepare_cached(&format!(
                "SELECT id FROM review_sheets WHERE sheet_id = ?1{lock}"
            ))?
            .query_row([sheet_id], |r| r.get(0))
            .optional()?
            .ok_or_else(|| {
                StoreError::Other(format!(
                    "import grades: no review sheet {sheet_id} in this store (`evalwatch review list` shows the sheets)"
                ))
            })?;
        let mut count = ImportCount::default();
        {
            let mut member = tx.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM review_items WHERE sheet_ref = ?1 AND result_id = ?2)",
            )?;
            // Unchanged: this very grade is stored (a repeated import), or the reviewer's
            // current grade of the result already says the same (a repeated export).
            let mut same = tx.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM review_grades WHERE sheet_ref = ?1 AND result_id = ?2
                   AND reviewer = ?3 AND graded_at = ?4 AND verdict = ?5
                   AND quality IS NOT DISTINCT FROM ?6 AND hallucination IS NOT DISTINCT FROM ?7
                   AND note = ?8)
                 OR coalesce((SELECT verdict = ?5 AND quality IS NOT DISTINCT FROM ?6
                                     AND hallucination IS NOT DISTINCT FROM ?7 AND note = ?8
                              FROM review_grades WHERE result_id = ?2 AND reviewer = ?3
                              ORDER BY julianday(graded_at) DESC NULLS LAST, id DESC LIMIT 1), FALSE)",
            )?;
            let mut later = tx.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM review_grades WHERE result_id = ?1 AND reviewer = ?2
                   AND julianday(graded_at) > julianday(?3))",
            )?;
            let mut earlier = tx.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM review_grades WHERE result_id = ?1 AND reviewer = ?2
                   AND julianday(graded_at) <= julianday(?3))",
            )?;
            let mut add = tx.prepare_cached(
                "INSERT INTO review_grades (sheet_ref, result_id, reviewer, verdict, quality,
                     hallucination, note, graded_at, imported_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for g in grades {
                if !member.query_row(params![sheet_ref, g.result_id], |r| r.get::<_, bool>(0))? {
                    return Err(StoreError::Other(format!(
                        "import grades of sheet {sheet_id}: result {} is not an item of this sheet; nothing was imported",
                        g.result_id
                    )));
                }
                let verdict = if g.pass { "pass" } else { "fail" };
                let quality = g.quality.map(i64::from);
                let fields = params![
                    sheet_ref,
                    g.result_id,
                    reviewer,
                    graded_at,
                    verdict,
                    quality,
                    g.hallucination,
                    g.note
                ];
                if same.query_row(fields, |r| r.get::<_, bool>(0))? {
                    count.unchanged += 1;
                    continue;
                }
                let at = params![g.result_id, reviewer, graded_at];
                if later.query_row(at, |r| r.get::<_, bool>(0))? {
                    // The reviewer's current grade was exported after this one: it stays.
                    count.older += 1;
                } else if earlier.query_row(at, |r| r.get::<_, bool>(0))? {
                    count.superseding += 1;
                }
                add.execute(params![
                    sheet_ref,
                    g.result_id,
                    reviewer,
                    verdict,
                    quality,
                    g.hallucination,
                    g.note,
                    graded_at,
                    imported_at
                ])?;
                count.added += 1;
            }
        }
        let ungraded: i64 = tx.query_row(
            "SELECT count(*) FROM review_items i WHERE i.sheet_ref = ?1
               AND NOT EXISTS (SELECT 1 FROM review_grades g WHERE g.result_id = i.result_id)",
            [sheet_ref],
            |r| r.get(0),
        )?;
        if ungraded == 0 {
            count.closed = tx.execute(
                "UPDATE review_sheets SET status = 'closed' WHERE id = ?1 AND status = 'open'",
                [sheet_ref],
            )? > 0;
        }
        tx.commit()?;
        Ok(count)
    }

    /// The current grade of each graded (result, reviewer), optionally of one suite or one
    /// sheet, oldest run first, streamed.
    pub fn for_each_graded<F>(
        &self,
        suite: Option<&str>,
        sheet_id: Option<&str>,
        mut f: F,
    ) -> Result<(), StoreError>
    where
        F: FnMut(GradedResult) -> Result<(), StoreError>,
    {
        let sql = format!(
            "SELECT g.result_id, s.name, r.run_id, r.started_at, c.case_id, x.provider,
                    sh.sheet_id, g.reviewer, g.graded_at, g.verdict, g.quality, g.hallucination,
                    g.note, x.status, x.assertions, g.total
             FROM ({CURRENT_GRADES}) g
             JOIN review_sheets sh ON sh.id = g.sheet_ref
             JOIN results x ON x.id = g.result_id
             JOIN runs r ON r.id = x.run_ref
             JOIN suites s ON s.id = r.suite_ref
             JOIN cases c ON c.id = x.case_ref
             WHERE (CAST(?1 AS TEXT) IS NULL OR s.name = ?1)
               AND (CAST(?2 AS TEXT) IS NULL OR sh.sheet_id = ?2)
             ORDER BY r.started_ms NULLS FIRST, g.result_id, g.reviewer"
        );
        let mut st = self.conn.prepare_cached(&sql)?;
        let mut rows = st.query(params![suite, sheet_id])?;
        while let Some(r) = rows.next()? {
            let result_id: i64 = r.get(0)?;
            let run_id: String = r.get(2)?;
            let status: String = r.get(13)?;
            let assertions: Option<String> = r.get(14)?;
            let quality: Option<i64> = r.get(10)?;
            let verdict: String = r.get(9)?;
            let total: i64 = r.get(15)?;
            let graded = GradedResult {
                result_id,
                suite: r.get(1)?,
                run_started_at: r.get(3)?,
                case_id: r.get(4)?,
                provider: r.get(5)?,
                sheet_id: r.get(6)?,
                reviewer: r.get(7)?,
                graded_at: r.get(8)?,
                grade: Grade {
                    result_id,
                    pass: verdict == "pass",
                    quality: quality.and_then(|q| u8::try_from(q).ok()),
                    hallucination: r.get(11)?,
                    note: r.get(12)?,
                },
                auto_status: codec::case_status(&status, &run_id)?,
                assertions: codec::assertions_from_json(assertions.as_deref(), &run_id)?
                    .into_iter()
                    .map(|a| AutoAssertion {
                        type_name: a.type_name,
                        pass: (!a.unscorable).then_some(a.pass),
                    })
                    .collect(),
                superseded: codec::to_u64(total - 1),
                run_id,
            };
            f(graded)?;
        }
        Ok(())
    }

    /// Every reviewer's current grade of the items of a sheet (suite results and traffic
    /// records alike), by item id, then reviewer.
    pub fn sheet_grades(&self, sheet_id: &str) -> Result<Vec<ItemGrade>, StoreError> {
        let sql = format!(
            "SELECT g.result_id, g.reviewer, g.graded_at, g.verdict, g.quality, g.hallucination,
                    g.note
             FROM ({CURRENT_GRADES}) g JOIN review_sheets sh ON sh.id = g.sheet_ref
             WHERE sh.sheet_id = ?1
             ORDER BY g.result_id, g.reviewer"
        );
        let mut st = self.conn.prepare_cached(&sql)?;
        let rows = st.query_map([sheet_id], |r| {
            Ok(ItemGrade {
                reviewer: r.get(1)?,
                graded_at: r.get(2)?,
                grade: Grade {
                    result_id: r.get(0)?,
                    pass: r.get::<_, String>(3)? == "pass",
                    quality: r
                        .get::<_, Option<i64>>(4)?
                        .and_then(|q| u8::try_from(q).ok()),
                    hallucination: r.get(5)?,
                    note: r.get(6)?,
                },
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Mean human quality per provider of each graded run (current grades with a quality),
    /// optionally of one run or one suite, oldest run first.
    pub fn human_scores(
        &self,
        suite: Option<&str>,
        run_id: Option<&str>,
    ) -> Result<Vec<HumanScore>, StoreError> {
        let sql = format!(
            "SELECT r.run_id, r.started_at, x.provider, CAST(avg(g.quality) AS REAL), count(g.quality)
             FROM ({CURRENT_GRADES}) g
             JOIN results x ON x.id = g.result_id
             JOIN runs r ON r.id = x.run_ref
             JOIN suites s ON s.id = r.suite_ref
             WHERE g.quality IS NOT NULL AND (CAST(?1 AS TEXT) IS NULL OR s.name = ?1)
               AND (CAST(?2 AS TEXT) IS NULL OR r.run_id = ?2)
             GROUP BY r.id, x.provider
             ORDER BY r.started_ms NULLS FIRST, r.id, x.provider"
        );
        let mut st = self.conn.prepare_cached(&sql)?;
        let rows = st.query_map(params![suite, run_id], |r| {
            Ok(HumanScore {
                run_id: r.get(0)?,
                started_at: r.get(1)?,
                provider: r.get(2)?,
                mean_quality: r.get(3)?,
                n: codec::to_u64(r.get(4)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The newest run of `suite` with a human quality score, if any.
    pub fn latest_human_scored_run(&self, suite: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .human_scores(Some(suite), None)?
            .pop()
            .map(|h| h.run_id))
    }

    /// Every stored grade of a result, current or superseded, oldest first.
    pub fn grade_history(&self, result_id: i64) -> Result<Vec<PastGrade>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT reviewer, graded_at, verdict, quality, note FROM review_grades
             WHERE result_id = ?1 ORDER BY julianday(graded_at) NULLS FIRST, id",
        )?;
        let rows = st.query_map([result_id], |r| {
            Ok(PastGrade {
                reviewer: r.get(0)?,
                graded_at: r.get(1)?,
                pass: r.get::<_, String>(2)? == "pass",
                quality: r
                    .get::<_, Option<i64>>(3)?
                    .and_then(|q| u8::try_from(q).ok()),
                note: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Count of stored grade rows (all, superseded included).
    pub fn grade_rows(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM review_grades", (), |r| r.get(0))?;
        Ok(codec::to_u64(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store with one run of `n` results, all passed.
    fn store_with_run(n: usize) -> (tempfile::TempDir, Store, Vec<i64>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("h.db")).unwrap();
        store
            .conn
            .execute_batch(
                "INSERT INTO suites (id, name, first_seen, last_seen) VALUES (1, 's', 't', 't');
                 INSERT INTO cases (id, suite_ref, case_id, hash, first_seen) VALUES (1, 1, 'c', 'h', 't');
                 INSERT INTO runs (id, run_id, suite_ref, suite_hash, started_at, status, planned, evalwatch_version)
                   VALUES (1, 'r1', 1, 'h', '2026-01-01T00:00:00Z', 'complete', 0, 'x');",
            )
            .unwrap();
        let mut ids = Vec::new();
        for seq in 0..n {
            let id = codec::result_id(1, seq).unwrap();
            store
                .conn
                .execute(
                    "INSERT INTO results (id, run_ref, seq, case_ref, case_index, provider,
                         provider_index, sample, status, attempts)
                     VALUES (?1, 1, ?2, 1, 0, 'p', 0, ?2, 'passed', 1)",
                    params![id, codec::usize_to_i64(seq)],
                )
                .unwrap();
            ids.push(id);
        }
        (dir, store, ids)
    }

    fn sheet(id: &str, results: &[i64]) -> NewSheet {
        NewSheet {
            sheet_id: id.into(),
            created_at: "2026-01-02T00:00:00Z".into(),
            secret: "k".into(),
            mac: "m".into(),
            params: "{}".into(),
            items: results
                .iter()
                .map(|r| NewItem {
                    result_id: *r,
                    stratum: "pass".to_string(),
                    item: "{}".to_string(),
                    record: None,
                })
                .collect(),
        }
    }

    fn grade(result_id: i64, pass: bool, quality: Option<u8>) -> Grade {
        Grade {
            result_id,
            pass,
            quality,
            hallucination: None,
            note: String::new(),
        }
    }

    #[test]
    fn a_result_is_never_in_two_open_sheets() {
        let (_d, mut store, ids) = store_with_run(3);
        store.create_sheet(&sheet("a", &ids[..2])).unwrap();
        assert_eq!(store.results_in_open_sheets().unwrap().len(), 2);
        let err = store.create_sheet(&sheet("b", &ids[1..])).unwrap_err();
        assert!(err.to_string().contains("already in open sheet a"), "{err}");
        assert!(
            store.sheet("b").unwrap().is_none(),
            "nothing of b was stored"
        );
        // Once `a` is closed its results may be sampled again.
        assert!(store.close_sheet("a").unwrap());
        store.create_sheet(&sheet("b", &ids[1..])).unwrap();
        assert_eq!(store.sheet("b").unwrap().unwrap().items.len(), 2);
    }

    #[test]
    fn import_is_idempotent_and_superseding_keeps_history() {
        let (_d, mut store, ids) = store_with_run(2);
        store.create_sheet(&sheet("a", &ids)).unwrap();
        let first = [grade(ids[0], true, Some(4))];
        let c = store
            .import_grades("a", "ann", "2026-01-03T00:00:00Z", "now", &first)
            .unwrap();
        assert_eq!((c.added, c.unchanged, c.closed), (1, 0, false));
        let c = store
            .import_grades("a", "ann", "2026-01-03T00:00:00Z", "later", &first)
            .unwrap();
        assert_eq!(
            (c.added, c.unchanged),
            (0, 1),
            "the same file twice changes nothing"
        );
        assert_eq!(store.grade_rows().unwrap(), 1);
        // A newer export changes its mind: both rows kept, the newer current.
        let second = [grade(ids[0], false, Some(2)), grade(ids[1], true, None)];
        let c = store
            .import_grades("a", "ann", "2026-01-04T00:00:00Z", "now", &second)
            .unwrap();
        assert_eq!((c.added, c.superseding, c.closed), (2, 1, true));
        assert_eq!(store.grade_history(ids[0]).unwrap().len(), 2);
        let mut current = Vec::new();
        store
            .for_each_graded(Some("s"), None, |g| {
                current.push(g);
                Ok(())
            })
            .unwrap();
        assert_eq!(current.len(), 2);
        let g0 = current.iter().find(|g| g.result_id == ids[0]).unwrap();
        assert!(!g0.grade.pass);
        assert_eq!(g0.superseded, 1);
        // Re-importing the older file does not make it current again.
        store
            .import_grades("a", "ann", "2026-01-03T00:00:00Z", "again", &first)
            .unwrap();
        let scores = store.human_scores(Some("s"), None).unwrap();
        assert_eq!(scores.len(), 1);
        assert!((scores[0].mean_quality - 2.0).abs() < 1e-9, "{scores:?}");
        assert!(
            !store.sheets(false).unwrap()[0].open,
            "every item graded: closed"
        );
    }

    #[test]
    fn suite_sheets_survive_the_migration_to_traffic_items() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let conn = super::super::schema::connect_at(&path, 13).unwrap();
        conn.execute_batch(
            "INSERT INTO suites (id, name, first_seen, last_seen) VALUES (1, 's', 't', 't');
             INSERT INTO cases (id, suite_ref, case_id, hash, first_seen) VALUES (1, 1, 'c', 'h', 't');
             INSERT INTO runs (id, run_id, suite_ref, suite_hash, started_at, status, planned, evalwatch_version)
               VALUES (1, 'r1', 1, 'h', '2026-01-01T00:00:00Z', 'complete', 0, 'x');
             INSERT INTO results (id, run_ref, seq, case_ref, case_index, provider, provider_index,
                 sample, status, attempts) VALUES (4294967296, 1, 0, 1, 0, 'p', 0, 0, 'passed', 1);
             INSERT INTO review_sheets (id, sheet_id, created_at, status, secret, mac)
               VALUES (1, 'old', '2026-01-02T00:00:00Z', 'closed', 'k', 'm');
             INSERT INTO review_items (sheet_ref, idx, result_id, stratum, item)
               VALUES (1, 0, 4294967296, 'pass', '{}');
             INSERT INTO review_grades (sheet_ref, result_id, reviewer, verdict, quality, note,
                 graded_at, imported_at)
               VALUES (1, 4294967296, 'ann', 'fail', 2, 'meh', '2026-01-03T00:00:00Z', 'now');",
        )
        .unwrap();
        drop(conn);
        let store = Store::open(&path).unwrap();
        let sheet = store.sheet("old").unwrap().unwrap();
        assert_eq!(sheet.items, [(4_294_967_296, "pass".into(), "{}".into())]);
        let mut graded = Vec::new();
        store
            .for_each_graded(None, Some("old"), |g| {
                graded.push(g);
                Ok(())
            })
            .unwrap();
        assert_eq!(graded.len(), 1);
        assert!(!graded[0].grade.pass);
        assert_eq!(graded[0].grade.note, "meh");
        assert_eq!(store.grade_rows().unwrap(), 1);
    }

    #[test]
    fn traffic_item_ids_are_stable_and_never_a_result_id() {
        let a = traffic_item_id("bot", "t1");
        assert_eq!(a, traffic_item_id("bot", "t1"));
        assert_ne!(a, traffic_item_id("bot", "t2"));
        assert_ne!(a, traffic_item_id("bo", "tt1"), "the separator counts");
        for id in [a, traffic_item_id("x", "")] {
            assert!(id >= 1 << 62, "{id}");
        }
    }

    #[test]
    fn a_grade_outside_the_sheet_rejects_the_whole_import() {
        let (_d, mut store, ids) = store_with_run(3);
        store.create_sheet(&sheet("a", &ids[..2])).unwrap();
        store.create_sheet(&sheet("b", &ids[2..])).unwrap();
        let grades = [grade(ids[0], true, None), grade(ids[2], true, None)];
        let err = store
            .import_grades("a", "ann", "2026-01-03T00:00:00Z", "now", &grades)
            .unwrap_err();
        assert!(
            err.to_string().contains("not an item of this sheet"),
            "{err}"
        );
        assert_eq!(store.grade_rows().unwrap(), 0, "nothing half-written");
        let err = store
            .import_grades("zz", "ann", "2026-01-03T00:00:00Z", "now", &grades[..1])
            .unwrap_err();
        assert!(err.to_string().contains("no review sheet zz"), "{err}");
        assert_eq!(store.grade_rows().unwrap(), 0);
    }
}
