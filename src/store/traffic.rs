//! Production traffic in the store: buckets (minute, hour and day, all written as records
//! arrive, so that roll-ups are always current), sampled records, de-duplication keys and
//! per-file read offsets. One ingested batch is one transaction ([`TrafficTx`]): its keys,
//! records, buckets and offsets commit together or not at all, so a crash at any point leaves
//! the store as if the batch had never been read, and the next ingest reads it again.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use super::db::{
    Db, DbError, OptionalExtension, Row, TransactionBehavior, Tx, owned_cells, params,
};
use super::pg::Cell as Owned;
use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;
use sha2::{Digest, Sha256};

use super::codec::{to_i64, to_u64};
use super::{Store, StoreError};
use crate::model::Score;
use crate::traffic::shape::Shape;
use crate::traffic::{Bucket, BucketKey, MinuteOf, Record, Resolution};

/// The most user hashes a bucket keeps: past it, the smallest ones (a K-minimum-values
/// sketch, about 2% error), so that a day of a million users stays 16 KiB.
pub const USER_SKETCH: usize = 2048;

/// The monitor's verdicts on a bucket's sampled records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quality {
    /// Sampled records the monitor decided (passed or failed).
    pub scored: u64,
    pub passed: u64,
    pub hallucination_checked: u64,
    pub hallucinated: u64,
    pub refusal_checked: u64,
    pub refused: u64,
}

impl Quality {
    pub fn merge(&mut self, o: &Self) {
        self.scored += o.scored;
        self.passed += o.passed;
        self.hallucination_checked += o.hallucination_checked;
        self.hallucinated += o.hallucinated;
        self.refusal_checked += o.refusal_checked;
        self.refused += o.refused;
    }
}

/// Distinct users of a bucket: every hash while few, the smallest [`USER_SKETCH`] past that.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Users(BTreeSet<u64>);

impl Users {
    /// Counts a user by the salted hash the mapping made (hex).
    pub fn add_hex(&mut self, hash: &str) {
        let prefix = hash.get(..16).unwrap_or(hash);
        if let Ok(h) = u64::from_str_radix(prefix, 16) {
            self.insert(h);
        }
    }

    fn insert(&mut self, h: u64) {
        self.0.insert(h);
        if self.0.len() > USER_SKETCH {
            self.0.pop_last();
        }
    }

    pub fn merge(&mut self, o: &Self) {
        for h in &o.0 {
            self.insert(*h);
        }
    }

    /// Distinct users: exact below [`USER_SKETCH`], else the K-minimum-values estimate.
    #[must_use]
    pub fn estimate(&self) -> u64 {
        if self.0.len() < USER_SKETCH {
            return self.0.len() as u64;
        }
        let kth = self.0.last().copied().unwrap_or(u64::MAX).max(1);
        let share = kth as f64 / u64::MAX as f64;
        ((USER_SKETCH - 1) as f64 / share).round() as u64
    }

    fn to_bytes(&self) -> Vec<u8> {
        self.0.iter().flat_map(|h| h.to_be_bytes()).collect()
    }

    fn from_bytes(bytes: &[u8]) -> Self {
        Self(
            bytes
                .chunks_exact(8)
                .map(|c| {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(c);
                    u64::from_be_bytes(b)
                })
                .collect(),
        )
    }
}

/// Everything one bucket holds.
#[derive(Debug, Clone, Default)]
pub struct BucketRow {
    pub bucket: Bucket,
    pub quality: Quality,
    pub users: Users,
}

impl BucketRow {
    pub fn merge(&mut self, o: &Self) {
        self.bucket.merge(&o.bucket);
        self.quality.merge(&o.quality);
        self.users.merge(&o.users);
    }
}

/// How far a file has been read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOffset {
    /// `device:inode`, to tell a rotated file (read it from the start) from a grown one.
    pub identity: String,
    pub offset: u64,
    pub line: u64,
}

/// A record kept whole: sampled (with the monitor's verdict) or kept for its text.
#[derive(Debug)]
pub struct RecordRow<'a> {
    pub key: &'a str,
    pub record: &'a Record,
    pub sampled: bool,
    pub score: Option<&'a Score>,
    /// A sampled record's lengths and language, which drift reads (kept even when its text
    /// is not); `None` for a record kept but not sampled.
    pub shape: Option<&'a Shape>,
}

/// What `prune` removed (or would remove).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub records: u64,
    /// De-duplication keys: `traffic_keys`, and the trace index of records known by trace id.
    pub keys: u64,
    pub minute: u64,
    pub hour: u64,
    pub day: u64,
}

/// Cut-offs (unix seconds) before which each kind is removed; `None` keeps it forever.
#[derive(Debug, Clone, Copy, Default)]
pub struct PruneBefore {
    pub records: Option<i64>,
    pub minute: Option<i64>,
    pub hour: Option<i64>,
    pub day: Option<i64>,
}

/// One ingested batch of one source, as one transaction.
pub struct TrafficTx<'s> {
    pub(super) tx: Tx<'s>,
    pub(super) source: String,
    /// Label-set ids this transaction has looked up, by `model\x1ffeature\x1fsegment\x1fregion`
    /// (per transaction: an id made by a transaction that rolls back is not kept).
    label_sets: RefCell<(HashMap<String, i64>, String)>,
    /// The source's id in the trace index, once looked up.
    source_id: Cell<Option<i64>>,
    /// Whether the trace index holds any trace of the source in an hour, for the hours this
    /// transaction has asked about (it is the source's only writer while it lasts): the next
    /// hour of traffic read in time order is empty, and its lookups are then skipped.
    hours_used: RefCell<HashMap<i64, bool>>,
}

pub(super) const RESOLUTIONS: [Resolution; 3] =
    [Resolution::Minute, Resolution::Hour, Resolution::Day];

fn key_hash(key: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(&Sha256::digest(key.as_bytes())[..16]);
    out
}

/// The trace index's key of a trace id (`traffic_trace_keys.key`, migration 0021): an id of
/// 32 lowercase hex digits (W3C and OpenTelemetry trace ids) as its 16 bytes, so that ids
/// that grow with time are inserted in order; any other id as the first 16 bytes of its
/// SHA-256.
#[must_use]
pub fn trace_key(trace_id: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    let hex = trace_id.len() == 32
        && trace_id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !(hex && hex::decode_to_slice(trace_id, &mut out).is_ok()) {
        out.copy_from_slice(&Sha256::digest(trace_id.as_bytes())[..16]);
    }
    out
}

/// Rows of the trace index a statement of [`TrafficTx::index_traces`] inserts or looks up at
/// most; fewer go by 16 and then one by one (three statements to keep prepared).
pub const INDEX_ROWS: usize = 128;

/// One record for [`TrafficTx::index_traces`].
#[derive(Debug, Clone, Copy)]
pub struct TraceRow {
    pub hour: i64,
    pub key: [u8; 16],
    /// The record's minute.
    pub start: i64,
    /// Its label set.
    pub labels: i64,
}

/// `items` in parts of [`INDEX_ROWS`], then 16, then 1.
fn parts(items: &[usize]) -> impl Iterator<Item = &[usize]> {
    let big = items.len() / INDEX_ROWS * INDEX_ROWS;
    let mid = big + (items.len() - big) / 16 * 16;
    items[..big]
        .chunks(INDEX_ROWS)
        .chain(items[big..mid].chunks(16))
        .chain(items[mid..].chunks(1))
}

/// A statement of [`INDEX_ROWS`], 16 or 1 rows (a part's length).
fn statement(sql: &[String; 3], n: usize) -> &str {
    match n {
        INDEX_ROWS => &sql[0],
        16 => &sql[1],
        _ => &sql[2],
    }
}

static INSERT_SQL: std::sync::LazyLock<[String; 3]> =
    std::sync::LazyLock::new(|| [INDEX_ROWS, 16, 1].map(insert_sql));
static LOOKUP_SQL: std::sync::LazyLock<[String; 3]> =
    std::sync::LazyLock::new(|| [INDEX_ROWS, 16, 1].map(lookup_sql));

/// The insert of `n` rows of one source and hour (`?1`, `?2`), each its key, minute and
/// label set; the keys inserted come back.
fn insert_sql(n: usize) -> String {
    let mut sql =
        String::from("INSERT INTO traffic_trace_keys (source, hour, key, start, labels) VALUES ");
    for i in 0..n {
        let p = 3 + 3 * i;
        let _ = write!(
            sql,
            "{}(?1, ?2, ?{p}, ?{}, ?{})",
            if i == 0 { "" } else { ", " },
            p + 1,
            p + 2
        );
    }
    sql.push_str(" ON CONFLICT DO NOTHING RETURNING key");
    sql
}

/// `head`, then `VALUES` with `n` rows of `columns` parameters each, then `tail`.
fn rows_sql(head: &str, columns: usize, n: usize, tail: &str) -> String {
    let mut sql = format!("{head} VALUES ");
    for i in 0..n {
        sql.push_str(if i == 0 { "(" } else { ", (" });
        for c in 0..columns {
            let _ = write!(
                sql,
                "{}?{}",
                if c == 0 { "" } else { ", " },
                i * columns + c + 1
            );
        }
        sql.push(')');
    }
    sql.push(' ');
    sql.push_str(tail);
    sql
}

/// The insert of `n` records kept whole (a record already stored stays as it is).
fn record_sql(n: usize) -> String {
    rows_sql(
        "INSERT INTO traffic_records (source, key, time_ms, sampled, model, feature, segment,
            region, user_hash, trace_id, latency_ms, tokens_in, tokens_out, cost_usd, error,
            error_kind, confidence, feedback, feedback_vote, input, output, context, status,
            score, assertions, input_chars, output_chars, language)",
        28,
        n,
        "ON CONFLICT (source, key) DO NOTHING",
    )
}

static RECORD_SQL: std::sync::LazyLock<[String; 3]> =
    std::sync::LazyLock::new(|| [INDEX_ROWS, 16, 1].map(record_sql));

/// Writes rows by `sql`'s statements (of [`INDEX_ROWS`], 16 and 1 rows): on SQLite each row as
/// it comes, by the one-row statement (in process: its measured speed kept, nothing copied);
/// on PostgreSQL rows are held, their values copied, until [`INDEX_ROWS`] are (a round trip a
/// statement), the rest at [`RowWriter::finish`].
struct RowWriter<'a, 'c> {
    tx: &'a Tx<'c>,
    sql: &'static [String; 3],
    columns: usize,
    held: Vec<Owned>,
}

impl<'a, 'c> RowWriter<'a, 'c> {
    fn new(tx: &'a Tx<'c>, sql: &'static [String; 3], columns: usize) -> Self {
        Self {
            tx,
            sql,
            columns,
            held: Vec::new(),
        }
    }

    fn add(&mut self, values: &[&dyn super::db::Value]) -> Result<(), StoreError> {
        debug_assert_eq!(values.len(), self.columns);
        if !self.tx.is_pg() {
            self.tx.prepare_cached(&self.sql[2])?.execute(values)?;
            return Ok(());
        }
        self.held.extend(owned_cells(values)?);
        if self.held.len() == INDEX_ROWS * self.columns {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        let rows: Vec<usize> = (0..self.held.len() / self.columns).collect();
        let mut at = 0;
        for part in parts(&rows) {
            let to = at + part.len() * self.columns;
            let values: Vec<&dyn super::db::Value> = self.held[at..to]
                .iter()
                .map(|c| c as &dyn super::db::Value)
                .collect();
            self.tx
                .prepare_cached(statement(self.sql, part.len()))?
                .execute(values)?;
            at = to;
        }
        self.held.clear();
        Ok(())
    }

    fn finish(mut self) -> Result<(), StoreError> {
        self.flush()
    }
}

/// The lookup of `n` keys of one source (`?1`) in one hour (`?2`).
fn lookup_sql(n: usize) -> String {
    let mut sql = String::from(
        "SELECT key, start FROM traffic_trace_keys WHERE source = ?1 AND hour = ?2 AND key IN (",
    );
    for i in 0..n {
        let _ = write!(sql, "{}?{}", if i == 0 { "" } else { ", " }, 3 + i);
    }
    sql.push(')');
    sql
}

/// Two records of one trace in neighbouring hours are one record when their minutes are less
/// than this many seconds apart (in one hour they always are): a trace whose calls straddle an
/// hour's end counts once, and only records this near an hour's end pay a second lookup.
pub const ACROSS_HOURS: i64 = 10 * 60;

/// The start of the hour (unix seconds, UTC) of a time in unix seconds: the first part of
/// both de-duplication tables' keys after the source (migration 0025).
#[must_use]
pub fn hour_of(secs: i64) -> i64 {
    secs - secs.rem_euclid(3600)
}

/// The trace index's row of one trace of `source` whose hour is nearest below `near` (unix
/// seconds: when the trace's feedback was given, which comes after its record), else the
/// nearest above it; `columns` selected from the row `t` (`traffic_trace_keys`) and its label
/// set `l`, read by `map`. Feedback knows a trace id but not the hour of its record, so the
/// hours the source's index holds are tried one by one, each a lookup of the table's key
/// (source, hour, key): first from the feedback's hour down to the oldest, then up from it to
/// the newest. A trace that is not there costs one lookup an hour the index holds.
pub(super) fn find_trace<T>(
    db: &Db,
    source: &str,
    trace_id: &str,
    near: i64,
    columns: &str,
    mut map: impl FnMut(&Row<'_>) -> Result<T, DbError>,
) -> Result<Option<T>, StoreError> {
    // `?1` source, `?2` key, `?3` the hour to start from; `first` is the first hour tried,
    // `next` the step, `more` whether there is an hour after `hour`.
    let sql = |first: &str, next: &str, more: &str| {
        format!(
            "WITH RECURSIVE src (id) AS (SELECT id FROM traffic_sources WHERE source = ?1),
                  span (lo, hi) AS (SELECT
                      (SELECT min(hour) FROM traffic_trace_keys WHERE source = (SELECT id FROM src)),
                      (SELECT max(hour) FROM traffic_trace_keys WHERE source = (SELECT id FROM src))),
                  hours (hour) AS (
                      SELECT {first} FROM span
                      UNION ALL
                      SELECT {next} FROM hours WHERE {more})
             SELECT {columns}
             FROM hours CROSS JOIN traffic_trace_keys t CROSS JOIN traffic_label_sets l
             WHERE t.source = (SELECT id FROM src) AND t.hour = hours.hour AND t.key = ?2
               AND l.id = t.labels
             LIMIT 1"
        )
    };
    let down = sql(
        "CASE WHEN ?3 < hi THEN ?3 ELSE hi END",
        "hour - 3600",
        "hour > (SELECT lo FROM span)",
    );
    let up = sql(
        "CASE WHEN ?3 > lo THEN ?3 ELSE lo END",
        "hour + 3600",
        "hour < (SELECT hi FROM span)",
    );
    let key = trace_key(trace_id);
    let hour = hour_of(near);
    for (sql, from) in [(down, hour), (up, hour.saturating_add(3600))] {
        let found = db
            .prepare_cached(&sql)?
            .query_row(params![source, key.as_slice(), from], &mut map)
            .optional()?;
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// Where the trace index holds a trace: each (hour, minute bucket) of its records, by the
/// trace's key ([`trace_key`]). Usually one.
pub(super) type Located = HashMap<[u8; 16], Vec<(i64, BucketKey)>>;

/// Where the trace index holds each of `traces` of `source`, in one pass over the source's part
/// of the index: for an import of many votes, where [`find_trace`] would look each trace up
/// hour by hour (a trace not there yet costing a lookup an hour the index holds).
pub(super) fn locate_traces<'t>(
    db: &Db,
    source: &str,
    traces: impl IntoIterator<Item = &'t str>,
) -> Result<Located, StoreError> {
    let mut out: Located = traces
        .into_iter()
        .map(|t| (trace_key(t), Vec::new()))
        .collect();
    let mut hits: Vec<([u8; 16], i64, i64, i64)> = Vec::new();
    {
        let mut st = db.prepare_cached(
            "SELECT hour, key, start, labels FROM traffic_trace_keys
             WHERE source = (SELECT id FROM traffic_sources WHERE source = ?1)",
        )?;
        let mut rows = st.query(params![source])?;
        while let Some(r) = rows.next()? {
            let key: Vec<u8> = r.get(1)?;
            let Ok(key) = <[u8; 16]>::try_from(key.as_slice()) else {
                continue;
            };
            if out.contains_key(&key) {
                hits.push((key, r.get(0)?, r.get(2)?, r.get(3)?));
            }
        }
    }
    let mut sets: HashMap<i64, [String; 4]> = HashMap::new();
    for (key, hour, start, labels) in hits {
        let set = match sets.entry(labels) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(
                db.prepare_cached(
                    "SELECT model, feature, segment, region FROM traffic_label_sets WHERE id = ?1",
                )?
                .query_row(params![labels], |r| {
                    Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?])
                })?,
            ),
        };
        let [model, feature, segment, region] = set.clone();
        out.entry(key).or_default().push((
            hour,
            BucketKey {
                start,
                resolution: Resolution::Minute,
                model,
                feature,
                segment,
                region,
            },
        ));
    }
    Ok(out)
}

/// Of the places [`locate_traces`] found for a trace, the one [`find_trace`] would find for
/// feedback given at `near` (unix seconds): the newest hour not after `near`'s, else the oldest
/// after it.
pub(super) fn nearest(found: &[(i64, BucketKey)], near: i64) -> Option<&BucketKey> {
    let hour = hour_of(near);
    let below = found
        .iter()
        .filter(|(h, _)| *h <= hour)
        .max_by_key(|(h, _)| *h);
    let above = || {
        found
            .iter()
            .filter(|(h, _)| *h > hour)
            .min_by_key(|(h, _)| *h)
    };
    below.or_else(above).map(|(_, key)| key)
}

/// Registers [`trace_key`] as the SQL function `evalwatch_trace_key(trace_id)` on SQLite
/// connections, which migration 0021 calls (its PostgreSQL variant computes the same with
/// `decode` and `sha256`). The store's queries pass [`trace_key`]'s bytes as a parameter.
pub(super) fn register_trace_key(conn: &Connection) -> rusqlite::Result<()> {
    conn.create_scalar_function(
        "evalwatch_trace_key",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| Ok(trace_key(ctx.get_raw(0).as_str()?).to_vec()),
    )
}

impl TrafficTx<'_> {
    /// Claims a record's de-duplication key: `true` the first time, `false` when the source
    /// has read it before (it is then not counted again). The key is looked for in the hour of
    /// `time` (unix seconds): a record's key (its hash, or its trace and span ids) comes with
    /// its time, so a record read again is in the same hour (migration 0025).
    pub fn claim(&self, key: &str, time: i64) -> Result<bool, StoreError> {
        let n = self
            .tx
            .prepare_cached(
                "INSERT INTO traffic_keys (source, hour, key, time) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT DO NOTHING",
            )?
            .execute(params![
                self.source,
                hour_of(time),
                key_hash(key).as_slice(),
                time
            ])?;
        Ok(n == 1)
    }

    /// Stores records kept whole (their text already redacted by the caller), each with its
    /// shape when sampled. SQLite: one statement a record. PostgreSQL: [`INDEX_ROWS`] records
    /// to a statement (then 16, then 1), one round trip each.
    pub fn put_records(&self, rows: &[RecordRow<'_>]) -> Result<(), StoreError> {
        let mut writer = RowWriter::new(&self.tx, &RECORD_SQL, 28);
        for row in rows {
            self.record_values(row, |values| writer.add(values))?;
        }
        writer.finish()
    }

    /// Hands the values of a record's row, in the order of [`record_sql`]'s columns, to `use_them`.
    fn record_values(
        &self,
        row: &RecordRow<'_>,
        use_them: impl FnOnce(&[&dyn super::db::Value]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let r = row.record;
        let vote = r.feedback.as_ref().map(|f| f.vote.as_str());
        let context = if r.context.is_empty() {
            None
        } else {
            Some(super::codec::to_json(&r.context)?)
        };
        let assertions = row
            .score
            .map(|s| super::codec::to_json(&s.assertions))
            .transpose()?;
        use_them(params![
            self.source,
            row.key,
            r.time.timestamp_millis(),
            row.sampled,
            r.model,
            r.feature,
            r.segment,
            r.region,
            r.user_hash,
            r.trace_id,
            r.latency_ms,
            r.tokens_in.map(to_i64),
            r.tokens_out.map(to_i64),
            r.cost_usd,
            r.error.is_some(),
            r.error.as_ref().and_then(|e| e.kind.clone()),
            r.confidence,
            r.feedback.as_ref().map(|f| f.raw.clone()),
            vote,
            r.input,
            r.output,
            context,
            row.score.map(|s| s.status.as_str()),
            row.score.and_then(|s| s.score),
            assertions,
            row.shape.and_then(|s| s.input_chars.map(to_i64)),
            row.shape.and_then(|s| s.output_chars.map(to_i64)),
            row.shape.and_then(|s| s.language),
        ])
    }

    /// The id of a label set of this source (made the first time it is seen).
    pub fn label_set(&self, m: MinuteOf<'_>) -> Result<i64, StoreError> {
        let mut cache = self.label_sets.borrow_mut();
        let (ids, text) = &mut *cache;
        text.clear();
        let _ = write!(
            text,
            "{}\x1f{}\x1f{}\x1f{}",
            m.model, m.feature, m.segment, m.region
        );
        if let Some(id) = ids.get(text.as_str()) {
            return Ok(*id);
        }
        let labels = params![self.source, m.model, m.feature, m.segment, m.region];
        self.tx
            .prepare_cached(
                "INSERT INTO traffic_label_sets (source, model, feature, segment, region)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
            )?
            .execute(labels)?;
        let id: i64 = self
            .tx
            .prepare_cached(
                "SELECT id FROM traffic_label_sets WHERE source = ?1 AND model = ?2
                 AND feature = ?3 AND segment = ?4 AND region = ?5",
            )?
            .query_row(labels, |r| r.get(0))?;
        ids.insert(text.clone(), id);
        Ok(id)
    }

    /// The source's id in the trace index (made the first time it is needed).
    fn source_id(&self) -> Result<i64, StoreError> {
        if let Some(id) = self.source_id.get() {
            return Ok(id);
        }
        self.tx
            .prepare_cached(
                "INSERT INTO traffic_sources (source) VALUES (?1) ON CONFLICT DO NOTHING",
            )?
            .execute(params![self.source])?;
        let id: i64 = self
            .tx
            .prepare_cached("SELECT id FROM traffic_sources WHERE source = ?1")?
            .query_row(params![self.source], |r| r.get(0))?;
        self.source_id.set(Some(id));
        Ok(id)
    }

    /// Whether the trace index holds any trace of the source (`source`, its id) in `hour`.
    fn hour_used(&self, source: i64, hour: i64) -> Result<bool, StoreError> {
        if let Some(&used) = self.hours_used.borrow().get(&hour) {
            return Ok(used);
        }
        let used: bool = self
            .tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM traffic_trace_keys WHERE source = ?1 AND hour = ?2)",
            )?
            .query_row(params![source, hour], |r| r.get(0))?;
        self.hours_used.borrow_mut().insert(hour, used);
        Ok(used)
    }

    /// Remembers which minute bucket (`start`, label set `labels`) a newly counted traced
    /// record is in (its inline vote is kept by [`Self::first_vote`]). `true` when the trace was not indexed yet in the record's hour (UTC),
    /// nor in the hour beside it at a minute less than [`ACROSS_HOURS`] away: for a record
    /// known by its trace id alone, that is its de-duplication claim (the index then serves
    /// as its key). The index is ordered by (source, hour, key) (migration 0025), so that
    /// traffic read in time order inserts into the current hour's part of it.
    pub fn index_trace(&self, trace_id: &str, start: i64, labels: i64) -> Result<bool, StoreError> {
        self.index_trace_keyed(trace_key(trace_id), start, labels)
    }

    /// [`Self::index_trace`] with the trace's key ([`trace_key`]) already worked out (by the
    /// caller that sorted a batch by it).
    pub fn index_trace_keyed(
        &self,
        key: [u8; 16],
        start: i64,
        labels: i64,
    ) -> Result<bool, StoreError> {
        let source = self.source_id()?;
        let hour = hour_of(start);
        // A record near its hour's start or end: is the trace in the hour beside it, a few
        // minutes away? (Looked up only there: two lookups a record cost a quarter of
        // `ingest`'s rate.)
        let into = start - hour;
        let beside = if into < ACROSS_HOURS {
            Some(hour - 3600)
        } else if into >= 3600 - ACROSS_HOURS {
            Some(hour + 3600)
        } else {
            None
        };
        let near = match beside {
            Some(beside) if self.hour_used(source, beside)? => self
                .tx
                .prepare_cached(
                    "SELECT start FROM traffic_trace_keys
                     WHERE source = ?1 AND hour = ?2 AND key = ?3",
                )?
                .query_row(params![source, beside, key.as_slice()], |r| {
                    r.get::<_, i64>(0)
                })
                .optional()?
                .is_some_and(|other| (other - start).abs() < ACROSS_HOURS),
            _ => false,
        };
        let new = !near
            && self
                .tx
                .prepare_cached(
                    "INSERT INTO traffic_trace_keys (source, hour, key, start, labels)
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                )?
                .execute(params![source, hour, key.as_slice(), start, labels])?
                == 1;
        if new {
            self.hours_used.borrow_mut().insert(hour, true);
        }
        Ok(new)
    }

    /// [`Self::index_trace_keyed`] for many records at once, in the order given, which must
    /// be the index's (hour, then key): whether each is new. An hour's records are looked up
    /// in the hour beside (those near its start or end) and then inserted
    /// [`INDEX_ROWS`] to a statement; per record, the statements' own work (binding, opening
    /// the index, ending the statement) was more than the insert itself.
    pub fn index_traces(&self, rows: &[TraceRow]) -> Result<Vec<bool>, StoreError> {
        let source = self.source_id()?;
        let mut new = vec![false; rows.len()];
        let mut from = 0;
        while from < rows.len() {
            let hour = rows[from].hour;
            let to = from + rows[from..].iter().take_while(|r| r.hour == hour).count();
            let group = &rows[from..to];
            let near = self.near_beside(source, hour, group)?;
            let insert: Vec<usize> = (0..group.len()).filter(|i| !near[*i]).collect();
            let mut any = false;
            for part in parts(&insert) {
                let sql = statement(&INSERT_SQL, part.len());
                let mut values: Vec<&dyn super::db::Value> = Vec::with_capacity(part.len() * 4 + 2);
                values.push(&source);
                values.push(&hour);
                for &i in part {
                    let r = &group[i];
                    values.push(&r.key);
                    values.push(&r.start);
                    values.push(&r.labels);
                }
                let mut inserted: Vec<[u8; 16]> = self
                    .tx
                    .prepare_cached(sql)?
                    .query_map(values, |row| {
                        let key: Vec<u8> = row.get(0)?;
                        Ok(key.try_into().unwrap_or([0; 16]))
                    })?
                    .collect::<Result<_, _>>()?;
                // A key twice in a statement: the first is the one inserted.
                for &i in part {
                    if let Some(at) = inserted.iter().position(|k| *k == group[i].key) {
                        inserted.swap_remove(at);
                        new[from + i] = true;
                        any = true;
                    }
                }
            }
            if any {
                self.hours_used.borrow_mut().insert(hour, true);
            }
            from = to;
        }
        Ok(new)
    }

    /// For each of an hour's records (in the index's order): whether its trace is in the
    /// hour beside, at a minute less than [`ACROSS_HOURS`] away (it is then not new).
    fn near_beside(
        &self,
        source: i64,
        hour: i64,
        group: &[TraceRow],
    ) -> Result<Vec<bool>, StoreError> {
        let mut near = vec![false; group.len()];
        for beside in [hour - 3600, hour + 3600] {
            let ask: Vec<usize> = (0..group.len())
                .filter(|&i| {
                    let into = group[i].start - hour;
                    if beside < hour {
                        into < ACROSS_HOURS
                    } else {
                        into >= 3600 - ACROSS_HOURS
                    }
                })
                .collect();
            if ask.is_empty() || !self.hour_used(source, beside)? {
                continue;
            }
            for part in parts(&ask) {
                let sql = statement(&LOOKUP_SQL, part.len());
                let mut values: Vec<&dyn super::db::Value> = Vec::with_capacity(part.len() + 2);
                values.push(&source);
                values.push(&beside);
                for &i in part {
                    values.push(&group[i].key);
                }
                let found: Vec<([u8; 16], i64)> = self
                    .tx
                    .prepare_cached(sql)?
                    .query_map(values, |row| {
                        let key: Vec<u8> = row.get(0)?;
                        Ok((key.try_into().unwrap_or([0; 16]), row.get(1)?))
                    })?
                    .collect::<Result<_, _>>()?;
                for &i in part {
                    let r = &group[i];
                    near[i] = found
                        .iter()
                        .any(|(k, other)| *k == r.key && (other - r.start).abs() < ACROSS_HOURS);
                }
            }
        }
        Ok(near)
    }

    /// Adds a minute bucket's counts to its minute, hour and day rows.
    pub fn merge_bucket(&self, key: &BucketKey, row: &BucketRow) -> Result<(), StoreError> {
        for to in RESOLUTIONS {
            self.merge_into(&key.rolled_up(to), row)?;
        }
        Ok(())
    }

    /// Adds counts to the one bucket `key` (of any resolution): a batch that rolled its
    /// minutes up to hours and days itself merges each of its rows once.
    pub fn merge_into(&self, key: &BucketKey, row: &BucketRow) -> Result<(), StoreError> {
        let mut merged = read_bucket(&self.tx, &self.source, key)?.unwrap_or_default();
        merged.merge(row);
        write_bucket(&self.tx, &self.source, key, &merged)
    }

    /// [`Self::merge_into`] for many buckets, given in key order, each key once: the rows
    /// already stored are read a resolution at a time over the span of the buckets' starts
    /// (one statement instead of one a bucket; most of a fresh chunk's minutes are not stored
    /// yet), unless the starts are far apart (a chunk of out-of-order records), when each is
    /// read alone; they are written back by a [`RowWriter`] (on PostgreSQL, many to a
    /// statement).
    pub fn merge_all(&self, rows: &[(BucketKey, BucketRow)]) -> Result<(), StoreError> {
        let mut stored: HashMap<BucketKey, BucketRow> = HashMap::new();
        let mut alone = Vec::new();
        for resolution in RESOLUTIONS {
            let starts: BTreeSet<i64> = rows
                .iter()
                .filter(|(k, _)| k.resolution == resolution)
                .map(|(k, _)| k.start)
                .collect();
            let (Some(&first), Some(&last)) = (starts.first(), starts.last()) else {
                continue;
            };
            let step = resolution.seconds();
            if (last - first) / step + 1 > 2 * i64::try_from(starts.len()).unwrap_or(i64::MAX) + 8 {
                alone.push(resolution);
                continue;
            }
            let sql = format!(
                "SELECT start, model, feature, segment, region, {BUCKET_COLUMNS}
                 FROM traffic_buckets WHERE source = ?1 AND resolution = ?2
                 AND start >= ?3 AND start <= ?4"
            );
            let mut st = self.tx.prepare_cached(&sql)?;
            let mut found = st.query(params![self.source, resolution.name(), first, last])?;
            while let Some(r) = found.next()? {
                let (key, row) = keyed_row_from(&r, resolution)?;
                stored.insert(key, row);
            }
        }
        // Each key once (a chunk's buckets): PostgreSQL refuses a statement that would
        // update one row twice.
        let mut writer = RowWriter::new(&self.tx, bucket_sql(&self.tx), 26);
        for (key, row) in rows {
            let mut merged = if alone.contains(&key.resolution) {
                read_bucket(&self.tx, &self.source, key)?.unwrap_or_default()
            } else {
                stored.remove(key).unwrap_or_default()
            };
            merged.merge(row);
            bucket_values(&self.source, key, &merged, |values| writer.add(values))?;
        }
        writer.finish()
    }

    /// Where the next read of `file` starts.
    pub fn set_offset(&self, file: &str, at: &FileOffset) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "INSERT INTO traffic_offsets (source, file, identity, offset, line, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, unixepoch())
                 ON CONFLICT (source, file) DO UPDATE SET identity = excluded.identity,
                    offset = excluded.offset, line = excluded.line,
                    updated_at = excluded.updated_at",
            )?
            .execute(params![
                self.source,
                file,
                at.identity,
                to_i64(at.offset),
                to_i64(at.line)
            ])?;
        Ok(())
    }

    pub fn commit(self) -> Result<(), StoreError> {
        Ok(self.tx.commit()?)
    }
}

const BUCKET_COLUMNS: &str = "requests, errors, errors_by_kind, latency, tokens_in, tokens_out,
    cost_usd, costed, feedback_positive, feedback_negative, feedback_neutral, sampled, scored,
    passed, hallucination_checked, hallucinated, refusal_checked, refused, users";

/// A bucket of `resolution` read as `start, model, feature, segment, region` and then
/// [`BUCKET_COLUMNS`].
fn keyed_row_from(
    r: &super::db::Row<'_>,
    resolution: Resolution,
) -> Result<(BucketKey, BucketRow), StoreError> {
    let key = BucketKey {
        start: r.get(0)?,
        resolution,
        model: r.get(1)?,
        feature: r.get(2)?,
        segment: r.get(3)?,
        region: r.get(4)?,
    };
    Ok((key, row_from(r, 5)?))
}

fn row_from(r: &super::db::Row<'_>, at: usize) -> Result<BucketRow, StoreError> {
    let n = |i: usize| -> Result<u64, super::db::DbError> { r.get::<_, i64>(at + i).map(to_u64) };
    let kinds: String = r.get(at + 2)?;
    let latency: Vec<u8> = r.get(at + 3)?;
    let users: Vec<u8> = r.get(at + 18)?;
    let bucket = Bucket {
        requests: n(0)?,
        errors: n(1)?,
        errors_by_kind: serde_json::from_str::<BTreeMap<String, u64>>(&kinds)
            .map_err(|e| StoreError::Other(format!("read errors by kind: {e}")))?,
        latency: Bucket::latency_from_bytes(&latency).map_err(StoreError::Other)?,
        tokens_in: n(4)?,
        tokens_out: n(5)?,
        cost_usd: r.get(at + 6)?,
        costed: n(7)?,
        feedback_positive: n(8)?,
        feedback_negative: n(9)?,
        feedback_neutral: n(10)?,
        sampled: n(11)?,
    };
    Ok(BucketRow {
        bucket,
        quality: Quality {
            scored: n(12)?,
            passed: n(13)?,
            hallucination_checked: n(14)?,
            hallucinated: n(15)?,
            refusal_checked: n(16)?,
            refused: n(17)?,
        },
        users: Users::from_bytes(&users),
    })
}

pub(super) fn read_bucket(
    tx: &Tx<'_>,
    source: &str,
    k: &BucketKey,
) -> Result<Option<BucketRow>, StoreError> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT {BUCKET_COLUMNS} FROM traffic_buckets WHERE source = ?1 AND resolution = ?2
             AND start = ?3 AND model = ?4 AND feature = ?5 AND segment = ?6 AND region = ?7"
        )
    });
    let mut stmt = tx.prepare_cached(&SQL)?;
    let mut rows = stmt.query(params![
        source,
        k.resolution.name(),
        k.start,
        k.model,
        k.feature,
        k.segment,
        k.region
    ])?;
    rows.next()?.map(|r| row_from(&r, 0)).transpose()
}

/// The advisory lock key of a source's traffic on PostgreSQL: the first 8 bytes of a SHA-256
/// of the source's name (a key of its own for each source, apart from the constant keys of
/// migrations, copies and review sheets).
fn source_lock(source: &str) -> i64 {
    let digest = Sha256::digest(format!("evalwatch traffic\x1f{source}").as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(b)
}

/// Begins a transaction that writes the traffic of `source` (its buckets, keys, records,
/// offsets, votes). SQLite: an immediate transaction, so one writer at a time. PostgreSQL:
/// the transaction takes the source's advisory lock first, held to its end, so that writers
/// of one source on any host (`ingest`, `collect`, `feedback`, `prune`, the judge monitor)
/// write one after the other: a bucket is read, merged and written back under it, and no
/// count is lost (docs/store.md, "Several writers of one source").
pub(super) fn begin_writing<'c>(conn: &'c mut Db, source: &str) -> Result<Tx<'c>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if tx.is_pg() {
        // Plans made for each execution, in this transaction only: a cached generic plan is
        // made for the tables as they were (a fresh store's are empty and not analysed yet),
        // and one made then scans a whole table for each lookup by key as it grows
        // (100,000 records into a fresh store took 66 s, the lookups of the trace index
        // 230-390 ms each, against 0.5 ms planned for the table as it is; docs/store.md).
        tx.prepare_cached(
            "SELECT pg_advisory_xact_lock(?1)::text,
                    set_config('plan_cache_mode', 'force_custom_plan', true)",
        )?
        .query_row(params![source_lock(source)], |_| Ok(()))?;
    }
    Ok(tx)
}

/// PostgreSQL: gives the trace index statistics when it has rows and none yet (a fresh
/// store, before autovacuum's first analyse, which comes a minute or more after the first
/// writes). Without them each lookup of the hour beside (128 keys) was planned as a scan of
/// the whole hour with the keys as a filter, 13-17 ms, against 0.5 ms planned with them
/// (docs/store.md, "Speed on PostgreSQL"). Whether the index has statistics now; `false`
/// while it is empty, so the next batch asks again. For a user that does not own the table
/// the server skips it with a warning, not an error, and leaves the index to autovacuum.
fn analyse_trace_index(conn: &Db) -> Result<bool, StoreError> {
    let (never, rows): (bool, bool) = conn.query_row(
        "SELECT s.last_analyze IS NULL AND s.last_autoanalyze IS NULL,
                EXISTS (SELECT 1 FROM traffic_trace_keys)
         FROM pg_stat_user_tables s WHERE s.relid = 'traffic_trace_keys'::regclass",
        (),
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if never && rows {
        conn.execute_batch("ANALYZE traffic_trace_keys")?;
    }
    Ok(!never || rows)
}

/// Writes one bucket, merged already (under the source's lock): SQLite replaces its row,
/// PostgreSQL updates it in place.
pub(super) fn write_bucket(
    tx: &Tx<'_>,
    source: &str,
    k: &BucketKey,
    row: &BucketRow,
) -> Result<(), StoreError> {
    let mut writer = RowWriter::new(tx, bucket_sql(tx), 26);
    bucket_values(source, k, row, |values| writer.add(values))?;
    writer.finish()
}

/// The statements that write buckets on the transaction's engine ([`insert_rows`]).
fn bucket_sql(tx: &Tx<'_>) -> &'static [String; 3] {
    static PG: std::sync::LazyLock<[String; 3]> = std::sync::LazyLock::new(|| {
        let set = BUCKET_COLUMNS
            .split(',')
            .map(str::trim)
            .map(|c| format!("{c} = excluded.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        [INDEX_ROWS, 16, 1].map(|n| {
            rows_sql(
                &format!(
                    "INSERT INTO traffic_buckets (source, resolution, start, model, feature,
                        segment, region, {BUCKET_COLUMNS})"
                ),
                26,
                n,
                &format!(
                    "ON CONFLICT (source, resolution, start, model, feature, segment, region)
                     DO UPDATE SET {set}"
                ),
            )
        })
    });
    static SQLITE: std::sync::LazyLock<[String; 3]> = std::sync::LazyLock::new(|| {
        [INDEX_ROWS, 16, 1].map(|n| {
            rows_sql(
                &format!(
                    "INSERT OR REPLACE INTO traffic_buckets (source, resolution, start, model,
                        feature, segment, region, {BUCKET_COLUMNS})"
                ),
                26,
                n,
                "",
            )
        })
    });
    if tx.is_pg() { &PG } else { &SQLITE }
}

/// Hands the values of a bucket's row, in the order of [`bucket_sql`]'s columns, to `use_them`.
fn bucket_values(
    source: &str,
    k: &BucketKey,
    row: &BucketRow,
    use_them: impl FnOnce(&[&dyn super::db::Value]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let b = &row.bucket;
    let q = &row.quality;
    use_them(params![
        source,
        k.resolution.name(),
        k.start,
        k.model,
        k.feature,
        k.segment,
        k.region,
        to_i64(b.requests),
        to_i64(b.errors),
        super::codec::to_json(&b.errors_by_kind)?,
        b.latency_bytes(),
        to_i64(b.tokens_in),
        to_i64(b.tokens_out),
        b.cost_usd,
        to_i64(b.costed),
        to_i64(b.feedback_positive),
        to_i64(b.feedback_negative),
        to_i64(b.feedback_neutral),
        to_i64(b.sampled),
        to_i64(q.scored),
        to_i64(q.passed),
        to_i64(q.hallucination_checked),
        to_i64(q.hallucinated),
        to_i64(q.refusal_checked),
        to_i64(q.refused),
        row.users.to_bytes(),
    ])
}

impl Store {
    /// Starts one batch of `source` (an immediate transaction: it waits for other writers).
    pub fn begin_traffic(&mut self, source: &str) -> Result<TrafficTx<'_>, StoreError> {
        if self.conn.is_pg() && !self.traffic_analysed {
            self.traffic_analysed = analyse_trace_index(&self.conn)?;
        }
        let tx = begin_writing(&mut self.conn, source)?;
        Ok(TrafficTx {
            tx,
            source: source.to_owned(),
            label_sets: RefCell::default(),
            source_id: Cell::new(None),
            hours_used: RefCell::default(),
        })
    }

    /// Where the last committed read of `file` stopped.
    pub fn traffic_offset(
        &self,
        source: &str,
        file: &str,
    ) -> Result<Option<FileOffset>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT identity, offset, line FROM traffic_offsets
                 WHERE source = ?1 AND file = ?2",
                params![source, file],
                |r| {
                    Ok(FileOffset {
                        identity: r.get(0)?,
                        offset: to_u64(r.get(1)?),
                        line: to_u64(r.get(2)?),
                    })
                },
            )
            .optional()?)
    }

    /// Buckets of `source` at `resolution` that start in `[from, to)`, in key order.
    pub fn traffic_buckets(
        &self,
        source: &str,
        resolution: Resolution,
        from: i64,
        to: i64,
    ) -> Result<Vec<(BucketKey, BucketRow)>, StoreError> {
        let mut out = Vec::new();
        self.each_traffic_bucket(source, resolution, from, to, |key, row| {
            out.push((key, row));
            Ok(())
        })?;
        Ok(out)
    }

    /// The buckets [`Store::traffic_buckets`] reads, in its order, handed to `each` one at a
    /// time: a window of minutes with many label sets is never held whole (`traffic --window
    /// 24h` over a million records a day held ~400 MB of rows, each with its latency sketch).
    pub fn each_traffic_bucket(
        &self,
        source: &str,
        resolution: Resolution,
        from: i64,
        to: i64,
        mut each: impl FnMut(BucketKey, BucketRow) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "SELECT start, model, feature, segment, region, {BUCKET_COLUMNS}
             FROM traffic_buckets WHERE source = ?1 AND resolution = ?2
             AND start >= ?3 AND start < ?4
             ORDER BY start, model, feature, segment, region"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query(params![source, resolution.name(), from, to])?;
        while let Some(r) = rows.next()? {
            let (key, row) = keyed_row_from(&r, resolution)?;
            each(key, row)?;
        }
        Ok(())
    }

    /// The start of the newest stored minute of `source` (unix seconds), if it has traffic
    /// stored. Once `prune` has removed its minutes (all buckets are written at every
    /// resolution, and the newest minutes go last), the last minute of its newest hour, or
    /// else of its newest day: the traffic is then older than the minutes' retention, and
    /// its newest record lies within that bucket.
    pub fn traffic_latest(&self, source: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.conn.query_row(
            "SELECT COALESCE(
               (SELECT max(start) FROM traffic_buckets WHERE source = ?1 AND resolution = 'minute'),
               (SELECT max(start) + 3540 FROM traffic_buckets WHERE source = ?1 AND resolution = 'hour'),
               (SELECT max(start) + 86340 FROM traffic_buckets WHERE source = ?1 AND resolution = 'day'))",
            params![source],
            |r| r.get(0),
        )?)
    }

    /// Removes (or, `dry_run`, counts) what is older than the cut-offs, in one transaction.
    /// De-duplication keys go with the records' retention.
    pub fn prune_traffic(
        &mut self,
        source: &str,
        before: &PruneBefore,
        dry_run: bool,
    ) -> Result<Pruned, StoreError> {
        let tx = begin_writing(&mut self.conn, source)?;
        // `cut` is unix seconds; `scale` turns it into the column's unit (computed here: on
        // PostgreSQL `?2 * 1000` would be typed as a 32-bit integer and overflow).
        let run_scaled = |sql_count: &str,
                          sql_delete: &str,
                          cut: Option<i64>,
                          scale: i64|
         -> Result<u64, StoreError> {
            let Some(cut) = cut else { return Ok(0) };
            let cut = cut.saturating_mul(scale);
            let n: i64 = tx.query_row(sql_count, params![source, cut], |r| r.get(0))?;
            if !dry_run {
                tx.execute(sql_delete, params![source, cut])?;
            }
            Ok(to_u64(n))
        };
        let run = |sql_count: &str, sql_delete: &str, cut: Option<i64>| {
            run_scaled(sql_count, sql_delete, cut, 1)
        };
        let bucket = |res: &str, cut: Option<i64>| {
            run(
                &format!(
                    "SELECT count(*) FROM traffic_buckets WHERE source = ?1 AND resolution = '{res}' AND start < ?2"
                ),
                &format!(
                    "DELETE FROM traffic_buckets WHERE source = ?1 AND resolution = '{res}' AND start < ?2"
                ),
                cut,
            )
        };
        // The trace index goes with the records' retention too: feedback finds buckets by it,
        // and a record known by its trace id alone has it as its de-duplication key. Both key
        // tables lead with (source, hour): a row's hour is at most its time, so `hour < cut`
        // bounds the scan to the hours before the cut.
        let traces = run(
            "SELECT count(*) FROM traffic_trace_keys WHERE hour < ?2 AND start < ?2
             AND source = (SELECT id FROM traffic_sources WHERE source = ?1)",
            "DELETE FROM traffic_trace_keys WHERE hour < ?2 AND start < ?2
             AND source = (SELECT id FROM traffic_sources WHERE source = ?1)",
            before.records,
        )?;
        let mut out = Pruned {
            records: run_scaled(
                "SELECT count(*) FROM traffic_records WHERE source = ?1 AND time_ms < ?2",
                "DELETE FROM traffic_records WHERE source = ?1 AND time_ms < ?2",
                before.records,
                1000,
            )?,
            keys: run(
                "SELECT count(*) FROM traffic_keys WHERE source = ?1 AND hour < ?2 AND time < ?2",
                "DELETE FROM traffic_keys WHERE source = ?1 AND hour < ?2 AND time < ?2",
                before.records,
            )?,
            minute: bucket("minute", before.minute)?,
            hour: bucket("hour", before.hour)?,
            day: bucket("day", before.day)?,
        };
        out.keys += traces;
        tx.commit()?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewFeedback;
    use crate::traffic::Vote;
    use chrono::TimeZone;

    /// Buckets merged many at once (stored rows read over their span, or one by one when
    /// their starts are far apart) are stored as merged one by one.
    #[test]
    fn buckets_merged_at_once_are_stored_as_merged_one_by_one() {
        let t0 = 1_765_000_800;
        let row_at = |t: i64, ms: f64| {
            let record = Record {
                time: chrono::Utc.timestamp_opt(t, 0).unwrap(),
                latency_ms: Some(ms),
                tokens_in: Some(10),
                ..Record::default()
            };
            let mut row = BucketRow::default();
            row.bucket.add(&record, false);
            row
        };
        let key = |start: i64, resolution: Resolution, model: &str| BucketKey {
            start: resolution.floor(start),
            resolution,
            model: model.into(),
            feature: String::new(),
            segment: String::new(),
            region: String::new(),
        };
        // Thirty minutes of two models, their hours and days, and hours days apart (read one
        // by one).
        let mut rows: Vec<(BucketKey, BucketRow)> = Vec::new();
        for i in 0..30 {
            for model in ["a", "b"] {
                let t = t0 + i * 60;
                for r in RESOLUTIONS {
                    rows.push((key(t, r, model), row_at(t, 100.0 + i as f64)));
                }
            }
        }
        for d in [3, 9] {
            rows.push((key(t0 + d * 86_400, Resolution::Hour, "a"), row_at(t0, 5.0)));
        }
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows.dedup_by(|a, b| a.0 == b.0);
        let dir = tempfile::tempdir().unwrap();
        let dump = |store: &Store| -> Vec<(String, i64, String, i64, Vec<u8>)> {
            let mut st = store
                .conn
                .prepare(
                    "SELECT resolution, start, model, requests, latency FROM traffic_buckets
                     ORDER BY resolution, start, model",
                )
                .unwrap();
            st.query_map((), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
        };
        let mut dumps = Vec::new();
        for (name, at_once) in [("one.db", false), ("all.db", true)] {
            let mut store = Store::open(&dir.path().join(name)).unwrap();
            let tx = store.begin_traffic("s").unwrap();
            // Some of them stored before (every third, and the far minutes).
            for (k, r) in rows.iter().step_by(3).chain(rows.iter().rev().take(2)) {
                tx.merge_into(k, r).unwrap();
            }
            if at_once {
                tx.merge_all(&rows).unwrap();
            } else {
                for (k, r) in &rows {
                    tx.merge_into(k, r).unwrap();
                }
            }
            tx.commit().unwrap();
            dumps.push(dump(&store));
        }
        assert_eq!(dumps[0], dumps[1]);
        assert_eq!(dumps[0].len(), rows.len());
        assert!(dumps[0].iter().any(|d| d.3 == 2) && dumps[0].iter().any(|d| d.3 == 1));
    }

    #[test]
    fn a_batch_commits_keys_buckets_and_offsets_together_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("t.db")).unwrap();
        let record = Record {
            time: chrono::Utc.timestamp_opt(1_765_000_000, 0).unwrap(),
            latency_ms: Some(120.0),
            tokens_in: Some(10),
            ..Record::default()
        };
        let key = BucketKey {
            start: Resolution::Minute.floor(record.time.timestamp()),
            resolution: Resolution::Minute,
            model: "m".into(),
            feature: String::new(),
            segment: String::new(),
            region: String::new(),
        };
        let mut row = BucketRow::default();
        row.bucket.add(&record, false);
        let at = FileOffset {
            identity: "1:2".into(),
            offset: 100,
            line: 3,
        };
        // Not committed: nothing of it is stored.
        {
            let tx = store.begin_traffic("s").unwrap();
            assert!(tx.claim("k1", 1_765_000_000).unwrap());
            tx.merge_bucket(&key, &row).unwrap();
            tx.set_offset("f", &at).unwrap();
        }
        assert_eq!(store.traffic_offset("s", "f").unwrap(), None);
        assert!(
            store
                .traffic_buckets("s", Resolution::Minute, 0, i64::MAX)
                .unwrap()
                .is_empty()
        );
        for _ in 0..2 {
            let tx = store.begin_traffic("s").unwrap();
            if tx.claim("k1", 1_765_000_000).unwrap() {
                tx.merge_bucket(&key, &row).unwrap();
            }
            tx.set_offset("f", &at).unwrap();
            tx.commit().unwrap();
        }
        assert_eq!(store.traffic_offset("s", "f").unwrap(), Some(at));
        for res in RESOLUTIONS {
            let rows = store.traffic_buckets("s", res, 0, i64::MAX).unwrap();
            assert_eq!(rows.len(), 1, "{res:?}");
            assert_eq!(rows[0].0.start, res.floor(1_765_000_000));
            assert_eq!(
                (rows[0].1.bucket.requests, rows[0].1.bucket.tokens_in),
                (1, 10)
            );
        }
        let before = PruneBefore {
            minute: Some(i64::MAX),
            records: Some(i64::MAX),
            ..PruneBefore::default()
        };
        let dry = store.prune_traffic("s", &before, true).unwrap();
        assert_eq!((dry.minute, dry.keys, dry.hour), (1, 1, 0));
        assert_eq!(store.prune_traffic("s", &before, false).unwrap(), dry);
        assert!(
            store
                .traffic_buckets("s", Resolution::Minute, 0, i64::MAX)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store
                .traffic_buckets("s", Resolution::Hour, 0, i64::MAX)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn migration_0021_carries_the_trace_index_over_to_compact_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        {
            let conn = super::super::schema::connect_at(&path, 20).unwrap();
            conn.execute_batch(
                "INSERT INTO traffic_traces VALUES ('s', 't1', 60, 'm', 'f', '', 'DE');
                 INSERT INTO traffic_traces VALUES ('s', '0af7651916cd43dd8448eb211c80319c',
                    120, 'm', 'f', '', 'DE');
                 INSERT INTO traffic_traces VALUES ('other', 't1', 60, 'n', '', '', '');",
            )
            .unwrap();
        }
        let mut store = Store::open(&path).unwrap();
        let rows: Vec<(Vec<u8>, i64, String, String)> = store
            .conn
            .prepare(
                "SELECT t.key, t.start, s.source, l.model FROM traffic_trace_keys t
                 JOIN traffic_sources s ON s.id = t.source
                 JOIN traffic_label_sets l ON l.id = t.labels ORDER BY s.source, t.start",
            )
            .unwrap()
            .query_map((), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let row = |source: &str, trace: &str, start: i64, model: &str| {
            (
                trace_key(trace).to_vec(),
                start,
                source.to_owned(),
                model.to_owned(),
            )
        };
        assert_eq!(
            rows,
            [
                row("other", "t1", 60, "n"),
                row("s", "t1", 60, "m"),
                row("s", "0af7651916cd43dd8448eb211c80319c", 120, "m")
            ]
        );
        // A W3C trace id is its own 16 bytes (in order); any other id is hashed.
        assert_eq!(
            hex::encode(trace_key("0af7651916cd43dd8448eb211c80319c")),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert_eq!(
            trace_key("0AF7651916CD43DD8448EB211C80319C")[..],
            Sha256::digest(b"0AF7651916CD43DD8448EB211C80319C")[..16]
        );
        // Carried over, a trace is known: indexing it again claims nothing, and a new one
        // of the same labels reuses their set.
        let tx = store.begin_traffic("s").unwrap();
        let m = MinuteOf {
            start: 60,
            model: "m",
            feature: "f",
            segment: "",
            region: "DE",
        };
        let labels = tx.label_set(m).unwrap();
        assert!(!tx.index_trace("t1", 60, labels).unwrap());
        assert!(tx.index_trace("t3", 60, labels).unwrap());
        tx.commit().unwrap();
        let sets: i64 = store
            .conn
            .query_row("SELECT count(*) FROM traffic_label_sets", (), |r| r.get(0))
            .unwrap();
        assert_eq!(sets, 2);
    }

    #[test]
    fn migration_0025_orders_both_key_tables_by_hour() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        {
            let conn = super::super::schema::connect_at(&path, 24).unwrap();
            conn.execute_batch(
                "INSERT INTO traffic_sources VALUES (1, 's');
                 INSERT INTO traffic_label_sets VALUES (1, 's', 'm', 'f', '', 'DE');
                 INSERT INTO traffic_trace_keys VALUES (1, x'01', 7260, 1);
                 INSERT INTO traffic_trace_keys VALUES (1, x'02', -60, 1);
                 INSERT INTO traffic_keys VALUES ('s', x'03', 7299);
                 INSERT INTO traffic_keys VALUES ('s', x'04', 3599);",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let traces: Vec<(Vec<u8>, i64, i64)> = store
            .conn
            .prepare("SELECT key, hour, start FROM traffic_trace_keys ORDER BY key")
            .unwrap()
            .query_map((), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(traces, [(vec![1], 7200, 7260), (vec![2], -3600, -60)]);
        let keys: Vec<(Vec<u8>, i64, i64)> = store
            .conn
            .prepare("SELECT key, hour, time FROM traffic_keys ORDER BY key")
            .unwrap()
            .query_map((), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(keys, [(vec![3], 7200, 7299), (vec![4], 0, 3599)]);
        assert_eq!(
            (hour_of(7260), hour_of(-60), hour_of(3600)),
            (7200, -3600, 3600)
        );
    }

    /// The label set of model `m`, feature `f` (no segment, no region).
    fn labels_m_f(tx: &TrafficTx<'_>) -> i64 {
        let m = MinuteOf {
            start: 0,
            model: "m",
            feature: "f",
            segment: "",
            region: "",
        };
        tx.label_set(m).unwrap()
    }

    #[test]
    fn a_trace_counts_once_in_its_hour_and_minutes_across_its_end_and_feedback_finds_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("t.db")).unwrap();
        let tx = store.begin_traffic("s").unwrap();
        let labels = labels_m_f(&tx);
        let h = 1_765_000_800; // the start of an hour
        assert_eq!(hour_of(h), h);
        assert!(tx.index_trace("t1", h + 3540, labels).unwrap());
        // Again in its hour, and in the next hour six minutes on: the same record.
        assert!(!tx.index_trace("t1", h + 60, labels).unwrap());
        assert!(!tx.index_trace("t1", h + 3900, labels).unwrap());
        // In the hour before, 64 minutes before, and in the next hour 14 minutes on: others.
        assert!(tx.index_trace("t1", h - 300, labels).unwrap());
        assert!(tx.index_trace("t1", h + 4380, labels).unwrap());
        assert_eq!(ACROSS_HOURS, 600);
        // An hour found empty, then written by the transaction, is looked in again.
        let g = h + 100 * 3600;
        assert!(tx.index_trace("t7", g - 60, labels).unwrap());
        assert!(tx.index_trace("t8", g + 60, labels).unwrap());
        assert!(!tx.index_trace("t7", g + 120, labels).unwrap());
        assert!(!tx.index_trace("t8", g - 30, labels).unwrap());
        // Other traces in many hours, so that feedback has hours to look through.
        for i in 0..50 {
            assert!(
                tx.index_trace(&format!("u{i}"), h + i * 3600, labels)
                    .unwrap()
            );
        }
        // The minutes of `t1`'s two records, for its vote to be counted in.
        for start in [h + 3540, h + 4380] {
            let key = BucketKey {
                start,
                resolution: Resolution::Minute,
                model: "m".into(),
                feature: "f".into(),
                segment: String::new(),
                region: String::new(),
            };
            tx.merge_bucket(&key, &BucketRow::default()).unwrap();
        }
        // A record's own key (its hash includes its time) is looked for in its hour.
        assert!(tx.claim("k", h + 10).unwrap());
        assert!(!tx.claim("k", h + 10).unwrap());
        tx.commit().unwrap();
        let vote = |trace: &'static str| NewFeedback {
            trace_id: trace,
            time_ms: (h + 200_000) * 1000,
            raw: "down",
            vote: Vote::Negative,
            comment: None,
            feature: None,
            user_hash: None,
        };
        // In the oldest hour, in a middle one, and nowhere (waits for its record).
        let out = store
            .import_feedback("s", &[vote("u0"), vote("u20"), vote("t1"), vote("nope")])
            .unwrap();
        assert_eq!((out.added, out.counted, out.waiting), (4, 3, 1), "{out:?}");
        // `t1` is three records in three hours: its vote goes to the newest.
        let down = |start: i64| -> i64 {
            store
                .conn
                .query_row(
                    "SELECT feedback_negative FROM traffic_buckets WHERE source = 's'
                     AND resolution = 'minute' AND start = ?1",
                    params![start],
                    |r| r.get(0),
                )
                .unwrap()
        };
        assert_eq!((down(h + 3540), down(h + 4380)), (0, 1));
    }

    /// Many records indexed at once (statements of 128, 16 and 1 rows) come out as indexed one
    /// by one: a trace twice in an hour, across an hour's end (near and far), hours the
    /// transaction found empty and then wrote.
    #[test]
    fn records_indexed_at_once_are_new_exactly_when_one_by_one_they_are() {
        let h = 1_765_000_800; // the start of an hour
        // (trace, minute): 400 traces over two hours, some twice, many near an hour's end.
        let mut records: Vec<(String, i64)> = Vec::new();
        for i in 0..400_i64 {
            let start = h + (i * 37) % (2 * 3600) / 60 * 60;
            records.push((format!("{i:032x}"), start));
            match i % 7 {
                0 => records.push((format!("{i:032x}"), start + 60)),
                1 => records.push((format!("{i:032x}"), start + 3600 - 120)),
                2 => records.push((format!("{i:032x}"), start + 2400)),
                _ => {}
            }
        }
        records.push(("not-hex".into(), h + 30));
        records.push(("not-hex".into(), h + 90));
        // A store that already holds a few of them, for both ways.
        let open = |name: &str| {
            let dir = tempfile::tempdir().unwrap();
            let mut store = Store::open(&dir.path().join(name)).unwrap();
            let tx = store.begin_traffic("s").unwrap();
            let labels = labels_m_f(&tx);
            for (trace, start) in records.iter().step_by(29) {
                tx.index_trace(trace, start - 3600, labels).unwrap();
            }
            tx.commit().unwrap();
            (dir, store, labels)
        };
        let mut rows: Vec<TraceRow> = records
            .iter()
            .map(|(trace, start)| TraceRow {
                hour: hour_of(*start),
                key: trace_key(trace),
                start: *start,
                labels: 0,
            })
            .collect();
        rows.sort_by_key(|r| (r.hour, r.key));
        let (_one_dir, mut one, labels) = open("one.db");
        let tx = one.begin_traffic("s").unwrap();
        let one_by_one: Vec<bool> = rows
            .iter()
            .map(|r| tx.index_trace_keyed(r.key, r.start, labels).unwrap())
            .collect();
        tx.commit().unwrap();
        let (_all_dir, mut all, labels) = open("all.db");
        for r in &mut rows {
            r.labels = labels;
        }
        let tx = all.begin_traffic("s").unwrap();
        let at_once = tx.index_traces(&rows).unwrap();
        tx.commit().unwrap();
        assert_eq!(at_once, one_by_one);
        let new = one_by_one.iter().filter(|n| **n).count();
        assert!(
            (150..rows.len() - 50).contains(&new),
            "{new} of {}",
            rows.len()
        );
        // The hour with the most records needs statements of every size.
        let most = rows.iter().filter(|r| r.hour == h).count();
        assert!(most > INDEX_ROWS + 16, "{most}");
        let dump = |store: &Store| -> Vec<(i64, Vec<u8>, i64)> {
            let mut st = store
                .conn
                .prepare("SELECT hour, key, start FROM traffic_trace_keys ORDER BY hour, key")
                .unwrap();
            st.query_map((), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert_eq!(dump(&all), dump(&one));
    }

    /// Feedback counted through one pass over the trace index (an import of many traces) lands
    /// in the same buckets as feedback looked up trace by trace (imports of a few).
    #[test]
    fn an_import_of_many_traces_counts_as_imports_of_a_few() {
        let h = 1_765_000_800;
        let traces: Vec<(String, i64)> = (0..1100)
            .map(|i| (format!("t{i}"), h + (i % 48) * 3600 + (i % 37) * 60))
            // Minute 59 of two hours: no `t` trace is there (`i % 37` < 59).
            .chain([
                ("multi".to_owned(), h + 3540),
                ("multi".to_owned(), h + 20 * 3600 + 3540),
            ])
            .collect();
        let fill = |store: &mut Store| {
            let tx = store.begin_traffic("s").unwrap();
            for (i, (trace, start)) in traces.iter().enumerate() {
                let feature = if i % 2 == 0 { "f" } else { "g" };
                let m = MinuteOf {
                    start: *start,
                    model: "m",
                    feature,
                    segment: "",
                    region: "",
                };
                let labels = tx.label_set(m).unwrap();
                assert!(tx.index_trace(trace, *start, labels).unwrap());
                tx.merge_bucket(&m.to_key(), &BucketRow::default()).unwrap();
            }
            tx.commit().unwrap();
        };
        let votes: Vec<(String, i64, Vote)> = traces[..1100]
            .iter()
            .enumerate()
            .map(|(i, (t, start))| {
                let vote = [Vote::Negative, Vote::Positive, Vote::Neutral][i % 3];
                (t.clone(), (start + 300) * 1000, vote)
            })
            .chain((0..100).map(|i| (format!("w{i}"), (h + 7200) * 1000, Vote::Negative)))
            // Between multi's two hours: the older one's; after both: the newer one's.
            .chain([("multi".to_owned(), (h + 10 * 3600) * 1000, Vote::Negative)])
            .collect();
        let rows: Vec<NewFeedback<'_>> = votes
            .iter()
            .map(|(t, ms, vote)| NewFeedback {
                trace_id: t,
                time_ms: *ms,
                raw: vote.as_str(),
                vote: *vote,
                comment: None,
                feature: None,
                user_hash: None,
            })
            .collect();
        assert!(rows.len() >= crate::store::feedback::LOCATE_AT_ONCE);
        let counts = |store: &Store| -> Vec<(i64, String, i64, i64, i64)> {
            store
                .conn
                .prepare(
                    "SELECT start, feature, feedback_negative, feedback_positive,
                        feedback_neutral FROM traffic_buckets
                     WHERE resolution = 'minute' ORDER BY start, feature",
                )
                .unwrap()
                .query_map((), |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let dir = tempfile::tempdir().unwrap();
        let mut at_once = Store::open(&dir.path().join("a.db")).unwrap();
        fill(&mut at_once);
        let out = at_once.import_feedback("s", &rows).unwrap();
        assert_eq!((out.counted, out.waiting), (1101, 100), "{out:?}");
        let mut by_trace = Store::open(&dir.path().join("b.db")).unwrap();
        fill(&mut by_trace);
        let mut sum = FeedbackImportSum::default();
        for part in rows.chunks(97) {
            let out = by_trace.import_feedback("s", part).unwrap();
            sum.0 += out.counted;
            sum.1 += out.waiting;
        }
        assert_eq!(sum, FeedbackImportSum(1101, 100));
        let (a, b) = (counts(&at_once), counts(&by_trace));
        let differ: Vec<_> = a.iter().zip(&b).filter(|(x, y)| x != y).take(3).collect();
        assert!(a.len() == b.len() && differ.is_empty(), "{differ:?}");
        let votes_in = |start: i64| a.iter().find(|r| r.0 == start).map(|r| r.2 + r.3 + r.4);
        assert_eq!(
            (votes_in(h + 3540), votes_in(h + 20 * 3600 + 3540)),
            (Some(1), Some(0))
        );
        let total: i64 = a.iter().map(|r| r.2 + r.3 + r.4).sum();
        assert_eq!(total, 1101);
    }

    #[derive(Debug, Default, PartialEq, Eq)]
    struct FeedbackImportSum(u64, u64);

    #[test]
    fn users_are_exact_when_few_and_estimated_within_a_few_percent_when_many() {
        let hash = |i: u64| hex::encode(&Sha256::digest(i.to_be_bytes())[..16]);
        let mut u = Users::default();
        for i in 0..100 {
            u.add_hex(&hash(i));
            u.add_hex(&hash(i));
        }
        assert_eq!(u.estimate(), 100);
        let mut many = Users::default();
        for i in 0..100_000_u64 {
            many.add_hex(&hash(i));
        }
        let est = many.estimate() as f64;
        assert!((est - 100_000.0).abs() / 100_000.0 < 0.07, "{est}");
        // Merging two halves gives the same sketch as one pass.
        let (mut a, mut b) = (Users::default(), Users::default());
        for i in 0..100_000_u64 {
            let h = hex::encode(&Sha256::digest(i.to_be_bytes())[..16]);
            if i % 2 == 0 {
                a.add_hex(&h);
            } else {
                b.add_hex(&h);
            }
        }
        a.merge(&b);
        assert_eq!(a, many);
        assert_eq!(Users::from_bytes(&a.to_bytes()), a);
    }
}
