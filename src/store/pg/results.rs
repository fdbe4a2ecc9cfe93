//! The run writer's batch on PostgreSQL (`src/store/writer.rs`): one statement per table
//! rather than one per row, since every statement is a round trip to the server. The
//! prompts and case versions a batch needs that the writer does not know yet are added and
//! looked up with array parameters (`unnest`): prompts in one statement, case versions looked
//! up first and added only when missing; the results go by binary `COPY`. All of it runs in
//! the writer's transaction.

use bytes::{BufMut, BytesMut};
use postgres::types::{IsNull, ToSql, Type};

use super::copy::copy_encoded;
use crate::store::db::{Db, DbError, PgPending, Value};

/// The columns of `results` the writer fills, in the order of its rows.
pub const RESULT_COLUMNS: [&str; 26] = [
    "id",
    "run_ref",
    "seq",
    "case_ref",
    "case_index",
    "provider",
    "provider_index",
    "sample",
    "status",
    "score",
    "latency_ms",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "attempts",
    "error_kind",
    "finish_reason",
    "prompt_ref",
    "label_expected",
    "label_predicted",
    "tags",
    "assertions",
    "error",
    "output",
    "output_bytes",
    "truncated",
];

/// Where a column is in [`RESULT_COLUMNS`] (a build error when it is not there).
const fn column(name: &str) -> usize {
    let mut i = 0;
    while i < RESULT_COLUMNS.len() {
        let (a, b) = (RESULT_COLUMNS[i].as_bytes(), name.as_bytes());
        if a.len() == b.len() {
            let mut j = 0;
            while j < a.len() && a[j] == b[j] {
                j += 1;
            }
            if j == a.len() {
                return i;
            }
        }
        i += 1;
    }
    panic!("not a column of results")
}

/// The places in a row of the references the writer fills in last (see `store::writer`).
pub const CASE_REF: usize = column("case_ref");
pub const PROMPT_REF: usize = column("prompt_ref");
pub const TAGS: usize = column("tags");

/// The server's types of [`RESULT_COLUMNS`], which binary `COPY` needs.
pub fn result_types(db: &Db) -> Result<Vec<Type>, DbError> {
    let sql = format!("SELECT {} FROM results LIMIT 0", RESULT_COLUMNS.join(", "));
    db.pg_call(move |c| {
        let st = c.prepare(&sql)?;
        Ok(st.columns().iter().map(|c| c.type_().clone()).collect())
    })
}

/// Rows in binary `COPY` format, encoded as the writer builds them (no owned copy of each
/// value, no work left for the connection's thread but sending them).
pub struct EncodedRows {
    buf: BytesMut,
    rows: usize,
}

/// Where a row starts in [`EncodedRows`].
#[derive(Debug, Clone, Copy)]
pub struct RowAt(usize);

/// The binary COPY signature, then the flags and the header extension length (both 0).
const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

impl EncodedRows {
    /// Room for about `bytes` of rows.
    #[must_use]
    pub fn with_capacity(bytes: usize) -> Self {
        let mut buf = BytesMut::with_capacity(bytes + COPY_HEADER.len() + 2);
        buf.put_slice(COPY_HEADER);
        Self { buf, rows: 0 }
    }

    /// Add one row: `values` of the columns whose server types are `types`, in order. The
    /// row's place, for [`Self::set_int`].
    pub fn push(&mut self, values: &[&dyn Value], types: &[Type]) -> Result<RowAt, DbError> {
        if values.len() != types.len() {
            return Err(DbError::Conversion(format!(
                "a row of {} values for {} columns",
                values.len(),
                types.len()
            )));
        }
        let columns = i16::try_from(values.len())
            .map_err(|_| DbError::Conversion("a row of more than 32,767 values".to_owned()))?;
        let start = self.buf.len();
        self.buf.put_i16(columns);
        for (i, (value, ty)) in values.iter().zip(types).enumerate() {
            let at = self.buf.len();
            self.buf.put_i32(0);
            let length = value
                .cell()
                .and_then(|cell| {
                    cell.to_sql(ty, &mut self.buf)
                        .map_err(|e| DbError::Conversion(e.to_string()))
                })
                .and_then(|wrote| match wrote {
                    IsNull::Yes => Ok(-1),
                    IsNull::No => i32::try_from(self.buf.len() - at - 4)
                        .map_err(|_| DbError::Conversion("a value of over 2 GiB".to_owned())),
                });
            match length {
                Ok(length) => self.buf[at..at + 4].copy_from_slice(&length.to_be_bytes()),
                Err(e) => {
                    // The row is not kept in part.
                    self.buf.truncate(start);
                    let column = RESULT_COLUMNS.get(i).copied().unwrap_or("?");
                    return Err(DbError::Conversion(format!("column {column}: {e}")));
                }
            }
        }
        self.rows += 1;
        Ok(RowAt(start))
    }

    /// Replace the 64-bit integer of column `column` of the row at `row` (a value written as
    /// one, not NULL): what [`Self::push`] wrote there in its place. False, changing nothing,
    /// when the column holds no such value.
    pub fn set_int(&mut self, row: RowAt, column: usize, value: i64) -> bool {
        let mut at = row.0 + 2;
        for _ in 0..column {
            let Some(length) = self.length_at(at) else {
                return false;
            };
            at += 4 + usize::try_from(length).unwrap_or(0);
        }
        if self.length_at(at) != Some(8) {
            return false;
        }
        self.buf[at + 4..at + 12].copy_from_slice(&value.to_be_bytes());
        true
    }

    /// The length word of the field at `at` (-1 for NULL).
    fn length_at(&self, at: usize) -> Option<i32> {
        let word = self.buf.get(at..at + 4)?;
        Some(i32::from_be_bytes([word[0], word[1], word[2], word[3]]))
    }

    /// The rows added.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row was added.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The whole COPY payload: header, rows, trailer.
    #[must_use]
    pub fn finish(mut self) -> bytes::Bytes {
        self.buf.put_i16(-1);
        self.buf.freeze()
    }
}

/// Write result rows (in [`RESULT_COLUMNS`] order, encoded), the count to come (see
/// [`Db::pg_send`]). `again` when the batch may have been committed already (its commit was
/// cut off by a lost connection): rows already stored are then left alone instead of
/// failing the copy, so that each result is stored once.
pub fn copy_results(
    db: &Db,
    rows: EncodedRows,
    again: bool,
) -> Result<PgPending<'_, u64>, DbError> {
    let payload = rows.finish();
    db.pg_send(move |c| {
        let columns: Vec<String> = RESULT_COLUMNS.iter().map(|&c| c.to_owned()).collect();
        copy_encoded(c, "results", &columns, &payload, !again)
    })
}

/// Store a batch's model versions ([`crate::store::writer::BatchVersions`]) in one statement,
/// in the batch's transaction, without waiting (see [`Db::pg_send`]).
pub(crate) fn count_versions(
    db: &Db,
    run_ref: i64,
    counted: crate::store::writer::BatchVersions,
) -> Result<PgPending<'_, u64>, DbError> {
    db.pg_send(move |c| {
        let mut columns: [Vec<&str>; 3] = [Vec::new(), Vec::new(), Vec::new()];
        let mut answers = Vec::with_capacity(counted.rows.len());
        for (provider, model, fingerprint, n) in &counted.rows {
            columns[0].push(provider);
            columns[1].push(model);
            columns[2].push(fingerprint);
            answers.push(*n);
        }
        c.execute(
            "INSERT INTO run_version_batches (run_ref, batch, provider, model, fingerprint, answers)
             SELECT $1, $2, * FROM unnest($3::text[], $4::text[], $5::text[], $6::bigint[])
             ON CONFLICT DO NOTHING",
            &[
                &run_ref,
                &counted.batch,
                &columns[0],
                &columns[1],
                &columns[2],
                &answers,
            ],
        )
    })
}

/// Prompt ids by prompt hash: `(SHA-256, id)`.
pub type PromptIds = Vec<(Vec<u8>, i64)>;

/// Case version rows: `(id, case_id, hash, tags)`.
pub type CaseRows = Vec<(i64, String, String, String)>;

/// Add the prompts that are missing and answer the ids of all: those added, and those stored
/// before (the statement's snapshot does not see what it adds). A prompt added meanwhile by
/// another transaction is in neither; the writer then looks it up alone.
const PROMPT_IDS: &str = "WITH added AS (
       INSERT INTO prompts (hash, text)
       SELECT * FROM unnest($1::bytea[], $2::text[])
       ON CONFLICT (hash) DO NOTHING
       RETURNING hash, id
     )
     SELECT hash, id FROM added
     UNION ALL
     SELECT hash, id FROM prompts WHERE hash = ANY($1::bytea[])";

/// The ids of prompts by their SHA-256, added first when missing: `(hash, text)` pairs in,
/// `(hash, id)` pairs out, to come (see [`Db::pg_send`]).
pub fn prompt_ids(
    db: &Db,
    prompts: Vec<(Vec<u8>, String)>,
) -> Result<PgPending<'_, PromptIds>, DbError> {
    let (hashes, texts): (Vec<Vec<u8>>, Vec<String>) = prompts.into_iter().unzip();
    db.pg_send(move |c| {
        let rows = c.query(PROMPT_IDS, &[&hashes, &texts])?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    })
}

/// A case version the writer needs: id, content hash, tags as JSON.
pub struct CaseKey {
    pub case_id: String,
    pub hash: String,
    pub tags: String,
}

/// Add case versions of a suite (first seen `now`), one statement; those known are left.
const ADD_CASES: &str = "INSERT INTO cases (suite_ref, case_id, hash, tags, first_seen)
     SELECT $1, u.c, u.h, u.t, $5 FROM unnest($2::text[], $3::text[], $4::text[]) AS u (c, h, t)
     ON CONFLICT (suite_ref, case_id, hash) DO NOTHING";

/// The three arrays of [`ADD_CASES`]: case ids, hashes, tags.
fn case_arrays(cases: Vec<CaseKey>) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut ids = Vec::with_capacity(cases.len());
    let mut hashes = Vec::with_capacity(cases.len());
    let mut tags = Vec::with_capacity(cases.len());
    for c in cases {
        ids.push(c.case_id);
        hashes.push(c.hash);
        tags.push(c.tags);
    }
    (ids, hashes, tags)
}

/// Add the case versions of a suite that are missing, first seen `now` (a run's start).
pub fn add_cases(db: &Db, suite_ref: i64, cases: Vec<CaseKey>, now: String) -> Result<(), DbError> {
    let (ids, hashes, tags) = case_arrays(cases);
    db.pg_call(move |c| {
        c.execute(ADD_CASES, &[&suite_ref, &ids, &hashes, &tags, &now])?;
        Ok(())
    })
}

/// The stored rows of the given case versions of a suite: one index probe a key (the
/// `LIMIT 1` keeps the planner from joining instead, which hashes every case of the suite
/// for each batch: measured 8.2 ms against 2.0 ms for 333 keys among 20,000 cases).
const FIND_CASES: &str = "SELECT k.id, k.case_id, k.hash, k.tags
     FROM unnest($2::text[], $3::text[]) AS u (c, h)
     CROSS JOIN LATERAL (
       SELECT id, case_id, hash, tags FROM cases
       WHERE suite_ref = $1 AND case_id = u.c AND hash = u.h LIMIT 1
     ) AS k";

/// The rows of case versions of a suite, added first (first seen `now`) when missing:
/// `(id, case_id, hash, tags)`, to come (see [`Db::pg_send`]). Most are known (`begin_run`
/// registers a suite's cases), so they are looked up first and only those missing are added
/// and looked up again.
pub fn case_rows(
    db: &Db,
    suite_ref: i64,
    cases: Vec<CaseKey>,
    now: String,
) -> Result<PgPending<'_, CaseRows>, DbError> {
    db.pg_send(move |c| {
        let find = |c: &mut postgres::Client, ids: &Vec<String>, hashes: &Vec<String>| {
            c.query(FIND_CASES, &[&suite_ref, ids, hashes]).map(|rows| {
                rows.iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
                    .collect::<CaseRows>()
            })
        };
        let (ids, hashes): (Vec<String>, Vec<String>) = cases
            .iter()
            .map(|k| (k.case_id.clone(), k.hash.clone()))
            .unzip();
        let mut found = find(c, &ids, &hashes)?;
        if found.len() < cases.len() {
            let known: std::collections::HashSet<(&str, &str)> = found
                .iter()
                .map(|(_, id, hash, _)| (id.as_str(), hash.as_str()))
                .collect();
            let missing: Vec<CaseKey> = cases
                .into_iter()
                .filter(|k| !known.contains(&(k.case_id.as_str(), k.hash.as_str())))
                .collect();
            let (ids, hashes, tags) = case_arrays(missing);
            c.execute(ADD_CASES, &[&suite_ref, &ids, &hashes, &tags, &now])?;
            found.extend(find(c, &ids, &hashes)?);
        }
        Ok(found)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fields of one row after the header: (length, bytes) each.
    fn fields(payload: &[u8]) -> Vec<Option<Vec<u8>>> {
        let mut at = COPY_HEADER.len();
        let count = i16::from_be_bytes([payload[at], payload[at + 1]]);
        at += 2;
        (0..count)
            .map(|_| {
                let len = i32::from_be_bytes(payload[at..at + 4].try_into().unwrap());
                at += 4;
                usize::try_from(len).ok().map(|len| {
                    at += len;
                    payload[at - len..at].to_vec()
                })
            })
            .collect()
    }

    #[test]
    fn rows_are_encoded_in_copy_binary_format_and_integers_are_replaced_in_place() {
        let types = [Type::INT8, Type::TEXT, Type::INT8, Type::FLOAT8];
        let mut rows = EncodedRows::with_capacity(64);
        let text = "héllo";
        let none: Option<i64> = None;
        let at = rows
            .push(&[&7_i64, &text, &none, &0.5_f64], &types)
            .expect("a row of fitting values");
        assert!(rows.set_int(at, 0, 41), "an integer is replaced");
        assert!(!rows.set_int(at, 1, 1), "text is not an integer");
        assert!(!rows.set_int(at, 2, 1), "NULL stays NULL");
        assert!(!rows.set_int(at, 9, 1), "no such column");
        assert_eq!(rows.len(), 1);
        let payload = rows.finish();
        assert_eq!(&payload[..11], b"PGCOPY\n\xff\r\n\0", "the signature");
        assert_eq!(&payload[11..19], &[0; 8], "no flags, no header extension");
        assert_eq!(
            &payload[payload.len() - 2..],
            &(-1_i16).to_be_bytes(),
            "the trailer"
        );
        assert_eq!(
            fields(&payload),
            vec![
                Some(41_i64.to_be_bytes().to_vec()),
                Some(text.as_bytes().to_vec()),
                None,
                Some(0.5_f64.to_be_bytes().to_vec()),
            ]
        );
    }

    #[test]
    fn a_row_that_does_not_fit_its_columns_is_refused_whole() {
        let types = [Type::INT8, Type::INT8];
        let mut rows = EncodedRows::with_capacity(64);
        rows.push(&[&1_i64, &2_i64], &types).expect("a row");
        let before = rows.buf.len();
        let err = rows
            .push(&[&3_i64, &"three"], &types)
            .expect_err("text in an integer column");
        assert!(err.to_string().contains("run_ref"), "{err}");
        assert_eq!(rows.buf.len(), before, "nothing of the refused row is kept");
        assert!(
            rows.push(&[&3_i64], &types).is_err(),
            "a row one value short"
        );
        assert_eq!(rows.len(), 1);
    }
}
