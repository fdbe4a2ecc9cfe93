//! One connection to the store, whichever engine holds it: SQLite (a file) or PostgreSQL (a
//! server shared by many hosts). The store's files write their SQL once, in SQLite's
//! dialect with `?N` parameters, and run it through this interface:
//!
//! - statements are prepared and cached ([`Db::prepare_cached`]), executed with parameters
//!   built by [`params!`](crate::store::db::params) or an array, and read row by row through
//!   [`Row::get`], as with rusqlite, whose shape this interface keeps so that the SQLite path
//!   is a thin layer over it and keeps its speed;
//! - on PostgreSQL the SQL is rewritten once per statement ([`translate`]): `?N` becomes `$N`,
//!   a bare `?` the next `$N`, `IFNULL` `COALESCE`, `INSERT OR IGNORE` an `ON CONFLICT DO
//!   NOTHING`; the few SQLite functions the store's queries use (`julianday`, `unixepoch`,
//!   `json_extract`) exist on the server as SQL functions of the same meaning
//!   (`src/store/migrations/pg_functions.sql`, installed with the migrations). What does not
//!   translate is written for both engines in the store file, chosen by [`Db::is_pg`].
//! - values cross as five kinds ([`CellRef`]: null, integer, real, text, blob), SQLite's
//!   storage classes; a PostgreSQL column of another numeric type (INTEGER, NUMERIC from a
//!   `sum`, BOOLEAN) is read as the kind it holds.
//!
//! Code not yet moved onto this interface reaches the SQLite connection through
//! [`Db::sqlite`], which refuses a PostgreSQL store with a message that says so.

use std::cell::RefCell;
use std::collections::HashMap;
use std::error::Error as StdError;
use std::ops::Deref;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::BytesMut;
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use regex::Regex;
use rusqlite::types::{ToSqlOutput, ValueRef};

use super::pg::{Cell, PgTarget, reason};

/// How a transaction takes its locks (SQLite's three; PostgreSQL takes row locks as it
/// writes whichever is asked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionBehavior {
    Deferred,
    Immediate,
    Exclusive,
}

/// Failures of one statement.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The server's words, with the password scrubbed.
    #[error("{0}")]
    Pg(String),
    /// The connection to the server was lost (the server stopped, restarted or could not be
    /// reached): what was asked may not have been done. The next statement outside a
    /// transaction connects again ([`Db::reconnect`] does it at once).
    #[error("{0}")]
    Lost(String),
    #[error("query returned no rows")]
    NoRows,
    /// A value read or written does not fit: which column or parameter, and why.
    #[error("{0}")]
    Conversion(String),
    /// Something this store cannot do on the engine it is on (yet).
    #[error("{0}")]
    Unsupported(String),
}

impl DbError {
    /// Whether the connection was lost (see [`DbError::Lost`]).
    #[must_use]
    pub fn is_lost(&self) -> bool {
        matches!(self, Self::Lost(_))
    }

    /// Whether the error means no row came back from `query_row`.
    #[must_use]
    pub fn is_no_rows(&self) -> bool {
        matches!(
            self,
            Self::NoRows | Self::Sqlite(rusqlite::Error::QueryReturnedNoRows)
        )
    }
}

/// `Result::optional` for queries: no row is `None`, not an error.
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>, DbError>;
}

impl<T> OptionalExtension<T> for Result<T, DbError> {
    fn optional(self) -> Result<Option<T>, DbError> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_no_rows() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Values

/// A value as both engines see it, borrowed: SQLite's five storage classes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CellRef<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

impl CellRef<'_> {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Int(_) => "an integer",
            Self::Real(_) => "a real",
            Self::Text(_) => "text",
            Self::Blob(_) => "a blob",
        }
    }

    fn from_sqlite(value: ValueRef<'_>) -> Result<CellRef<'_>, DbError> {
        Ok(match value {
            ValueRef::Null => CellRef::Null,
            ValueRef::Integer(i) => CellRef::Int(i),
            ValueRef::Real(f) => CellRef::Real(f),
            ValueRef::Text(t) => CellRef::Text(
                std::str::from_utf8(t)
                    .map_err(|e| DbError::Conversion(format!("text that is not UTF-8: {e}")))?,
            ),
            ValueRef::Blob(b) => CellRef::Blob(b),
        })
    }

    pub(crate) fn from_cell(cell: &Cell) -> CellRef<'_> {
        match cell {
            Cell::Null => CellRef::Null,
            Cell::Int(i) => CellRef::Int(*i),
            Cell::Real(f) => CellRef::Real(*f),
            Cell::Text(t) => CellRef::Text(t),
            Cell::Blob(b) => CellRef::Blob(b),
        }
    }
}

/// A value that can be a statement's parameter.
pub trait Value {
    fn cell(&self) -> Result<CellRef<'_>, DbError>;
}

impl<T: Value + ?Sized> Value for &T {
    fn cell(&self) -> Result<CellRef<'_>, DbError> {
        (**self).cell()
    }
}

impl<T: Value> Value for Option<T> {
    fn cell(&self) -> Result<CellRef<'_>, DbError> {
        match self {
            Some(v) => v.cell(),
            None => Ok(CellRef::Null),
        }
    }
}

macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl Value for $t {
            fn cell(&self) -> Result<CellRef<'_>, DbError> {
                i64::try_from(*self).map(CellRef::Int).map_err(|_| {
                    DbError::Conversion(format!("{} does not fit a 64-bit integer", self))
                })
            }
        }
    )*};
}
int_value!(i8, i16, i32, i64, u8, u16, u32, u64, usize, isize);

impl Value for bool {
    fn cell(&self) -> Result<CellRef<'_>, DbError> {
        Ok(CellRef::Int(i64::from(*self)))
    }
}

impl Value for f64 {
    fn cell(&self) -> Result<CellRef<'_>, DbError> {
        Ok(CellRef::Real(*self))
    }
}

impl Value for f32 {
    fn cell(&self) -> Result<CellRef<'_>, DbError> {
        Ok(CellRef::Real(f64::from(*self)))
    }
}

impl Value for str {
    fn cell(&self) -> Result<CellRef<'_>, DbError> {
        Ok(CellRef::Text(self))
    }
}

impl Value for String {
    fn cell(&self) -> Result<CellRef<'_>, DbError> {
        Ok(CellRef::Text(self))
    }
}

impl Value for [u8] {
    fn cell(&self) -> Result<CellRef<'_>, DbError> {
        Ok(CellRef::Blob(self))
    }
}

impl Value for Vec<u8> {
    fn cell(&self) -> Result<CellRef<'_>, DbError> {
        Ok(CellRef::Blob(self))
    }
}

impl<const N: usize> Value for [u8; N] {
    fn cell(&self) -> Result<CellRef<'_>, DbError> {
        Ok(CellRef::Blob(self))
    }
}

impl Value for Cell {
    fn cell(&self) -> Result<CellRef<'_>, DbError> {
        Ok(CellRef::from_cell(self))
    }
}

impl Value for CellRef<'_> {
    fn cell(&self) -> Result<CellRef<'_>, DbError> {
        Ok(*self)
    }
}

/// A value read from a column.
pub trait FromValue: Sized {
    fn from_value(value: CellRef<'_>) -> Result<Self, String>;
}

fn mismatch<T>(value: CellRef<'_>, want: &str) -> Result<T, String> {
    Err(format!("{} where {want} was expected", value.kind()))
}

macro_rules! int_from {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(value: CellRef<'_>) -> Result<Self, String> {
                match value {
                    CellRef::Int(i) => <$t>::try_from(i)
                        .map_err(|_| format!("{i} does not fit {}", stringify!($t))),
                    other => mismatch(other, "an integer"),
                }
            }
        }
    )*};
}
int_from!(i8, i16, i32, i64, u8, u16, u32, u64, usize, isize);

impl FromValue for bool {
    fn from_value(value: CellRef<'_>) -> Result<Self, String> {
        match value {
            CellRef::Int(i) => Ok(i != 0),
            other => mismatch(other, "an integer"),
        }
    }
}

impl FromValue for f64 {
    fn from_value(value: CellRef<'_>) -> Result<Self, String> {
        match value {
            CellRef::Real(f) => Ok(f),
            CellRef::Int(i) => Ok(i as f64),
            other => mismatch(other, "a real"),
        }
    }
}

impl FromValue for String {
    fn from_value(value: CellRef<'_>) -> Result<Self, String> {
        match value {
            CellRef::Text(t) => Ok(t.to_owned()),
            other => mismatch(other, "text"),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: CellRef<'_>) -> Result<Self, String> {
        match value {
            CellRef::Blob(b) => Ok(b.to_vec()),
            CellRef::Text(t) => Ok(t.as_bytes().to_vec()),
            other => mismatch(other, "a blob"),
        }
    }
}

impl FromValue for Cell {
    fn from_value(value: CellRef<'_>) -> Result<Self, String> {
        Ok(match value {
            CellRef::Null => Cell::Null,
            CellRef::Int(i) => Cell::Int(i),
            CellRef::Real(f) => Cell::Real(f),
            CellRef::Text(t) => Cell::Text(t.to_owned()),
            CellRef::Blob(b) => Cell::Blob(b.to_vec()),
        })
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: CellRef<'_>) -> Result<Self, String> {
        match value {
            CellRef::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// A parameter as rusqlite takes it.
struct Sq<'a>(&'a dyn Value);

impl rusqlite::ToSql for Sq<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        let cell = self
            .0
            .cell()
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(ToSqlOutput::Borrowed(match cell {
            CellRef::Null => ValueRef::Null,
            CellRef::Int(i) => ValueRef::Integer(i),
            CellRef::Real(f) => ValueRef::Real(f),
            CellRef::Text(t) => ValueRef::Text(t.as_bytes()),
            CellRef::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

/// A parameter as the PostgreSQL client takes it: converted to the type the server
/// inferred for its place, as SQLite would store it there.
#[derive(Debug)]
struct Pq<'a>(CellRef<'a>);

type BoxError = Box<dyn StdError + Sync + Send>;

impl ToSql for Pq<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match (self.0, ty) {
            (CellRef::Null, _) => Ok(IsNull::Yes),
            (CellRef::Int(i), &Type::INT8) => i.to_sql(ty, out),
            (CellRef::Int(i), &Type::INT4) => i32::try_from(i)?.to_sql(ty, out),
            (CellRef::Int(i), &Type::INT2) => i16::try_from(i)?.to_sql(ty, out),
            (CellRef::Int(i), &Type::BOOL) => (i != 0).to_sql(ty, out),
            (CellRef::Int(i), &Type::FLOAT8) => (i as f64).to_sql(ty, out),
            (CellRef::Int(i), &Type::FLOAT4) => (i as f32).to_sql(ty, out),
            (CellRef::Int(i), &Type::TEXT | &Type::VARCHAR | &Type::BPCHAR) => {
                i.to_string().to_sql(ty, out)
            }
            (CellRef::Real(f), &Type::FLOAT8) => f.to_sql(ty, out),
            (CellRef::Real(f), &Type::FLOAT4) => (f as f32).to_sql(ty, out),
            (CellRef::Real(f), &Type::INT8) if f.fract() == 0.0 => (f as i64).to_sql(ty, out),
            (CellRef::Real(f), &Type::TEXT | &Type::VARCHAR | &Type::BPCHAR) => {
                f.to_string().to_sql(ty, out)
            }
            (CellRef::Text(t), &Type::TEXT | &Type::VARCHAR | &Type::BPCHAR | &Type::NAME) => {
                t.to_sql(ty, out)
            }
            (CellRef::Text(t), &Type::JSON) => {
                out.extend_from_slice(t.as_bytes());
                Ok(IsNull::No)
            }
            (CellRef::Text(t), &Type::JSONB) => {
                out.extend_from_slice(&[1]);
                out.extend_from_slice(t.as_bytes());
                Ok(IsNull::No)
            }
            (CellRef::Blob(b), &Type::BYTEA) => b.to_sql(ty, out),
            (value, ty) => {
                Err(format!("{} does not fit a value of type {ty}", value.kind()).into())
            }
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A statement's parameters: `params![a, b]`, an array of one type, or `()`.
pub trait Params {
    fn values(&self) -> Vec<&dyn Value>;
}

impl Params for () {
    fn values(&self) -> Vec<&dyn Value> {
        Vec::new()
    }
}

impl Params for &[&dyn Value] {
    fn values(&self) -> Vec<&dyn Value> {
        self.to_vec()
    }
}

impl Params for Vec<&dyn Value> {
    fn values(&self) -> Vec<&dyn Value> {
        self.clone()
    }
}

impl<T: Value, const N: usize> Params for [T; N] {
    fn values(&self) -> Vec<&dyn Value> {
        self.iter().map(|v| v as &dyn Value).collect()
    }
}

/// Parameters of mixed types: `params![run_id, 3, score]`.
macro_rules! params {
    () => {
        &[] as &[&dyn $crate::store::db::Value]
    };
    ($($p:expr),+ $(,)?) => {
        &[$(&$p as &dyn $crate::store::db::Value),+] as &[&dyn $crate::store::db::Value]
    };
}
pub(crate) use params;

fn sqlite_params<'a>(
    values: &'a [&'a dyn Value],
) -> rusqlite::ParamsFromIter<impl Iterator<Item = Sq<'a>>> {
    rusqlite::params_from_iter(values.iter().map(|v| Sq(*v)))
}

fn pg_params(cells: &[Cell]) -> Vec<Pq<'_>> {
    cells.iter().map(|c| Pq(CellRef::from_cell(c))).collect()
}

fn pg_refs<'a>(values: &'a [Pq<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    values.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

// ---------------------------------------------------------------------------------------
// Rows

/// A column's place in a row (from 0).
pub trait RowIndex {
    fn index(self) -> usize;
}

impl RowIndex for usize {
    fn index(self) -> usize {
        self
    }
}

/// One row of a result.
pub enum Row<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Pg(&'a postgres::Row),
}

impl Row<'_> {
    /// Column `i` (from 0) as `T`.
    pub fn get<I: RowIndex, T: FromValue>(&self, i: I) -> Result<T, DbError> {
        let i = i.index();
        let convert = |v: CellRef<'_>| {
            T::from_value(v).map_err(|e| DbError::Conversion(format!("column {i}: {e}")))
        };
        match self {
            Self::Sqlite(r) => convert(CellRef::from_sqlite(r.get_ref(i)?)?),
            Self::Pg(r) => {
                let cell: Cell = r
                    .try_get(i)
                    .map_err(|e| DbError::Conversion(format!("column {i}: {}", reason(&e))))?;
                convert(CellRef::from_cell(&cell))
            }
        }
    }

    /// Column `i`, text, borrowed from the row.
    pub fn str(&self, i: usize) -> Result<&str, DbError> {
        match self {
            Self::Sqlite(r) => match CellRef::from_sqlite(r.get_ref(i)?)? {
                CellRef::Text(t) => Ok(t),
                other => Err(DbError::Conversion(format!(
                    "column {i}: {} where text was expected",
                    other.kind()
                ))),
            },
            Self::Pg(r) => r
                .try_get(i)
                .map_err(|e| DbError::Conversion(format!("column {i}: {}", reason(&e)))),
        }
    }

    /// Column `i` as a value of whichever kind it holds.
    pub fn cell(&self, i: usize) -> Result<Cell, DbError> {
        self.get(i)
    }
}

/// The rows of a query, one at a time.
pub struct Rows<'s> {
    inner: RowsInner<'s>,
}

enum RowsInner<'s> {
    Sqlite(rusqlite::Rows<'s>),
    Pg(std::vec::IntoIter<postgres::Row>, Option<postgres::Row>),
}

impl Rows<'_> {
    /// The next row, or `None` after the last.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Row<'_>>, DbError> {
        match &mut self.inner {
            RowsInner::Sqlite(rows) => Ok(rows.next()?.map(Row::Sqlite)),
            RowsInner::Pg(rows, current) => {
                *current = rows.next();
                Ok(current.as_ref().map(Row::Pg))
            }
        }
    }
}

/// The rows of a query, each mapped by a function.
pub struct MappedRows<'s, F> {
    rows: Rows<'s>,
    map: F,
}

impl<T, F> Iterator for MappedRows<'_, F>
where
    F: FnMut(&Row<'_>) -> Result<T, DbError>,
{
    type Item = Result<T, DbError>;

    fn next(&mut self) -> Option<Self::Item> {
        let map = &mut self.map;
        match self.rows.next() {
            Ok(Some(row)) => Some(map(&row)),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Connections and statements

thread_local! {
    /// `INSERT ... RETURNING id` texts made by [`Db::insert_id`], by their `INSERT`.
    static RETURNING_ID: RefCell<HashMap<&'static str, String>> = RefCell::new(HashMap::new());
}

/// What the connection's thread is asked to do with the client.
type Job = Box<dyn FnOnce(&mut postgres::Client) + Send>;

/// The client of a [`PgConn`], shared by its owner and its thread.
struct Shared {
    client: std::sync::Mutex<Option<postgres::Client>>,
    /// Jobs handed over to the thread and not yet run.
    queued: AtomicU64,
}

impl Shared {
    /// The client (a job that panicked leaves it as it was: the next statement says what
    /// the server thinks of it).
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<postgres::Client>> {
        self.client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A connection to a PostgreSQL store, with its statements prepared once.
///
/// The client has a thread of its own: the PostgreSQL client blocks on a runtime of its
/// own, which cannot run on a thread that is driving another (the run's executor, an alert
/// sender), while a plain thread can always wait for an answer; and a job handed over with
/// [`Db::pg_send`] runs there while its caller goes on. A statement asked for by a thread
/// outside any runtime, with nothing handed over still to run, runs on the asking thread
/// itself (see [`PgConn::on_thread`]): the same client, in the same order, without two
/// thread switches a statement (a report's hundred statements spent ~9 ms of kernel time
/// on them).
pub struct PgConn {
    jobs: Option<std::sync::mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The client, shared with the thread; `None` once the thread has ended.
    client: std::sync::Arc<Shared>,
    target: PgTarget,
    prepared: RefCell<HashMap<String, postgres::Statement>>,
    /// Whether a transaction is open (then a lost connection is not replaced silently:
    /// what the transaction did is gone, and its owner must know).
    in_tx: std::cell::Cell<bool>,
    /// [`LOSSES`] when this client connected: a loss seen since, by any connection of this
    /// process, makes the next statement outside a transaction connect again first (an idle
    /// client does not notice that the server restarted until it is used, and then fails).
    losses_seen: std::cell::Cell<u64>,
}

/// Connections to PostgreSQL lost so far in this process (see [`PgConn`]'s `losses_seen`).
static LOSSES: AtomicU64 = AtomicU64::new(0);

/// How long [`PgConn::ensure_alive`] waits for the server to answer an empty query.
const ALIVE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether a client error means the connection is gone (the server stopped or restarted, the
/// network failed) rather than a statement failing on a live connection.
fn connection_lost(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        let code = code.code();
        // Class 08 (connection exception); 57P01-03: the server shutting down or starting.
        return code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03");
    }
    let mut source = StdError::source(e);
    while let Some(cause) = source {
        if cause.is::<std::io::Error>() {
            return true;
        }
        source = cause.source();
    }
    false
}

impl PgConn {
    /// Connect to `target` on a thread of its own and run `setup` there first (the
    /// migrations), returning what it says.
    pub fn connect<T, E>(
        target: &PgTarget,
        setup: impl FnOnce(&mut postgres::Client) -> Result<T, E> + Send + 'static,
    ) -> Result<(Self, T), E>
    where
        T: Send + 'static,
        E: From<super::pg::PgError> + Send + 'static,
    {
        let (jobs, inbox) = std::sync::mpsc::channel::<Job>();
        let (ready, started) = std::sync::mpsc::sync_channel::<Result<T, E>>(1);
        let for_thread = target.clone();
        let shared = std::sync::Arc::new(Shared {
            client: std::sync::Mutex::new(None),
            queued: AtomicU64::new(0),
        });
        let theirs = std::sync::Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("evalwatch-pg".to_owned())
            .spawn(move || {
                let mut client = match for_thread.connect() {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready.send(Err(E::from(e)));
                        return;
                    }
                };
                let set = setup(&mut client);
                let ok = set.is_ok();
                *theirs.lock() = Some(client);
                let _ = ready.send(set);
                if ok {
                    while let Ok(job) = inbox.recv() {
                        if let Some(client) = theirs.lock().as_mut() {
                            job(client);
                        }
                        theirs.queued.fetch_sub(1, Ordering::AcqRel);
                    }
                }
                // The client closes here, on a thread outside any runtime, whoever drops
                // the connection.
                drop(theirs.lock().take());
            })
            .map_err(|e| {
                E::from(super::pg::PgError::Connect {
                    shown: target.shown().to_owned(),
                    reason: format!("start the connection's thread: {e}"),
                })
            })?;
        let out = started.recv().unwrap_or_else(|_| {
            Err(E::from(super::pg::PgError::Connect {
                shown: target.shown().to_owned(),
                reason: "the connection's thread stopped".to_owned(),
            }))
        })?;
        Ok((
            Self {
                jobs: Some(jobs),
                thread: Some(thread),
                client: shared,
                target: target.clone(),
                prepared: RefCell::new(HashMap::new()),
                in_tx: std::cell::Cell::new(false),
                losses_seen: std::cell::Cell::new(LOSSES.load(Ordering::Relaxed)),
            },
            out,
        ))
    }

    /// Replace the client with a new connection to the same server (no migrations: the
    /// store was migrated when it was first opened). Statements prepared on the old one are
    /// forgotten; an open transaction is over.
    pub fn reconnect(&self) -> Result<(), DbError> {
        let target = self.target.clone();
        self.on_thread(move |client| target.connect().map(|c| *client = c))?
            .map_err(|e| DbError::Lost(e.to_string()))?;
        self.prepared.borrow_mut().clear();
        self.in_tx.set(false);
        self.losses_seen.set(LOSSES.load(Ordering::Relaxed));
        Ok(())
    }

    /// Before a statement outside a transaction, when a connection of this process was lost
    /// since this one connected (see `losses_seen`): make sure this one still answers, else
    /// connect again.
    fn revive(&self) -> Result<(), DbError> {
        if !self.in_tx.get() && LOSSES.load(Ordering::Relaxed) > self.losses_seen.get() {
            self.ensure_alive()?;
        }
        Ok(())
    }

    /// Ask the server whether this connection still answers; connect again if it does not.
    /// A loss elsewhere in the process (one server process terminated, the server full) then
    /// does not replace a connection that works, which the server might refuse to give back.
    pub fn ensure_alive(&self) -> Result<(), DbError> {
        let seen = LOSSES.load(Ordering::Relaxed);
        if self.on_thread(|client| client.is_valid(ALIVE_WAIT).is_ok())? {
            self.losses_seen.set(seen);
            return Ok(());
        }
        self.reconnect()
    }

    /// Run `f` with the client and wait for what it returns: on this thread when it drives
    /// no runtime and nothing handed over is still to run on the connection's thread (jobs
    /// keep their order either way), else on the connection's thread.
    fn on_thread<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut postgres::Client) -> R + Send + 'static,
    ) -> Result<R, DbError> {
        // Only this connection's owner hands jobs over (it is not `Sync`), so none can be
        // queued between this check and the statement.
        if self.client.queued.load(Ordering::Acquire) == 0
            && tokio::runtime::Handle::try_current().is_err()
        {
            let mut client = self.client.lock();
            return client.as_mut().map(f).ok_or_else(|| self.gone());
        }
        let wait = self.hand_over(f)?;
        wait.recv().map_err(|_| self.gone())
    }

    /// Hand `f` to the connection's thread; its answer comes on the receiver. Jobs run in
    /// the order they were handed over.
    fn hand_over<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut postgres::Client) -> R + Send + 'static,
    ) -> Result<std::sync::mpsc::Receiver<R>, DbError> {
        let (answer, wait) = std::sync::mpsc::sync_channel(1);
        let job: Job = Box::new(move |client| {
            let _ = answer.send(f(client));
        });
        let gone = || self.gone();
        let jobs = self.jobs.as_ref().ok_or_else(gone)?;
        self.client.queued.fetch_add(1, Ordering::AcqRel);
        if jobs.send(job).is_err() {
            self.client.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(gone());
        }
        Ok(wait)
    }

    fn gone(&self) -> DbError {
        DbError::Pg(format!(
            "the connection to {} is gone (its thread stopped)",
            self.target.shown()
        ))
    }

    /// The store as shown to people (no password).
    #[must_use]
    pub fn target(&self) -> &PgTarget {
        &self.target
    }

    /// Run `f` with the client on the connection's thread and wait for its answer.
    fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut postgres::Client) -> Result<R, postgres::Error> + Send + 'static,
    ) -> Result<R, DbError> {
        self.on_thread(f)?.map_err(|e| self.failure(&e))
    }

    /// What a client error is to the caller: the connection lost (counted, see
    /// `losses_seen`), or a statement failing, in the server's words without the password.
    fn failure(&self, e: &postgres::Error) -> DbError {
        let said = self.target.scrub(&reason(e));
        if connection_lost(e) {
            LOSSES.fetch_add(1, Ordering::Relaxed);
            DbError::Lost(format!(
                "lost the connection to {}: {said}",
                self.target.shown()
            ))
        } else {
            DbError::Pg(said)
        }
    }

    fn prepare(&self, sql: &str) -> Result<postgres::Statement, DbError> {
        self.revive()?;
        if let Some(st) = self.prepared.borrow().get(sql) {
            return Ok(st.clone());
        }
        let pg_sql = translate(sql);
        let st = self.call(move |c| c.prepare(&pg_sql))?;
        self.prepared
            .borrow_mut()
            .insert(sql.to_owned(), st.clone());
        Ok(st)
    }

    fn execute(&self, st: &postgres::Statement, values: &[&dyn Value]) -> Result<usize, DbError> {
        let cells = owned_cells(values)?;
        let st = st.clone();
        let n = self.call(move |c| c.execute(&st, &pg_refs(&pg_params(&cells))))?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn query(
        &self,
        st: &postgres::Statement,
        values: &[&dyn Value],
    ) -> Result<Vec<postgres::Row>, DbError> {
        let cells = owned_cells(values)?;
        let st = st.clone();
        self.call(move |c| c.query(&st, &pg_refs(&pg_params(&cells))))
    }

    fn batch(&self, sql: &str) -> Result<(), DbError> {
        self.revive()?;
        let sql = sql.to_owned();
        self.call(move |c| c.batch_execute(&sql))
    }
}

impl Drop for PgConn {
    fn drop(&mut self) {
        // The thread ends once its inbox is closed; the client closes with it.
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The answer to come of a job handed to the connection's thread by [`Db::pg_send`].
pub struct PgPending<'a, R> {
    conn: &'a PgConn,
    answer: std::sync::mpsc::Receiver<Result<R, postgres::Error>>,
}

impl<R> PgPending<'_, R> {
    /// Wait for the job's answer (errors as [`Db::pg_call`] gives them).
    pub fn wait(self) -> Result<R, DbError> {
        self.answer
            .recv()
            .map_err(|_| self.conn.gone())?
            .map_err(|e| self.conn.failure(&e))
    }
}

/// Parameters as owned values, to hand to the connection's thread.
pub(crate) fn owned_cells(values: &[&dyn Value]) -> Result<Vec<Cell>, DbError> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.cell()
                .map(|c| Cell::from_value(c).unwrap_or(Cell::Null))
                .map_err(|e| DbError::Conversion(format!("parameter {}: {e}", i + 1)))
        })
        .collect()
}

/// A connection to the store.
pub enum Db {
    Sqlite(rusqlite::Connection),
    Pg(Box<PgConn>),
}

impl From<rusqlite::Connection> for Db {
    fn from(conn: rusqlite::Connection) -> Self {
        Self::Sqlite(conn)
    }
}

impl Db {
    /// Whether the store is on PostgreSQL.
    #[must_use]
    pub fn is_pg(&self) -> bool {
        matches!(self, Self::Pg(_))
    }

    /// The SQLite connection, for code that only SQLite has: refused on PostgreSQL, naming
    /// what was asked (`what`, after "failed to ...").
    pub fn sqlite(&self) -> Result<&rusqlite::Connection, DbError> {
        match self {
            Self::Sqlite(c) => Ok(c),
            Self::Pg(pg) => Err(unsupported(pg)),
        }
    }

    /// [`Db::sqlite`], for changes that need the connection itself.
    pub fn sqlite_mut(&mut self) -> Result<&mut rusqlite::Connection, DbError> {
        match self {
            Self::Sqlite(c) => Ok(c),
            Self::Pg(pg) => Err(unsupported(pg)),
        }
    }

    /// On PostgreSQL, connect again (after [`DbError::Lost`]); nothing to do on SQLite.
    pub fn reconnect(&self) -> Result<(), DbError> {
        match self {
            Self::Sqlite(_) => Ok(()),
            Self::Pg(pg) => pg.reconnect(),
        }
    }

    /// On PostgreSQL, connect again unless the connection still answers (see
    /// [`PgConn::ensure_alive`]); nothing to do on SQLite.
    pub fn ensure_alive(&self) -> Result<(), DbError> {
        match self {
            Self::Sqlite(_) => Ok(()),
            Self::Pg(pg) => pg.ensure_alive(),
        }
    }

    /// The store as shown to people: its URL without the password, or `None` for SQLite.
    #[must_use]
    pub fn pg_shown(&self) -> Option<&str> {
        match self {
            Self::Sqlite(_) => None,
            Self::Pg(pg) => Some(pg.target.shown()),
        }
    }

    /// Run `f` with the PostgreSQL client on the connection's thread (inside the open
    /// transaction, if any), for what only PostgreSQL has (binary `COPY`, array
    /// parameters): refused on SQLite.
    pub fn pg_call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut postgres::Client) -> Result<R, postgres::Error> + Send + 'static,
    ) -> Result<R, DbError> {
        self.pg_send(f)?.wait()
    }

    /// Hand `f` to the PostgreSQL client's thread (inside the open transaction, if any) and
    /// go on: the caller works meanwhile and takes the answer with [`PgPending::wait`].
    /// Jobs run in the order they were handed over, and each statement asked for after
    /// this one runs after it. Refused on SQLite.
    pub fn pg_send<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut postgres::Client) -> Result<R, postgres::Error> + Send + 'static,
    ) -> Result<PgPending<'_, R>, DbError> {
        match self {
            Self::Sqlite(_) => Err(DbError::Unsupported(
                "this needs a PostgreSQL store".to_owned(),
            )),
            Self::Pg(pg) => {
                pg.revive()?;
                Ok(PgPending {
                    conn: pg,
                    answer: pg.hand_over(f)?,
                })
            }
        }
    }

    /// Prepare a statement, cached by its text.
    pub fn prepare_cached(&self, sql: &str) -> Result<Stmt<'_>, DbError> {
        Ok(Stmt(match self {
            Self::Sqlite(c) => StmtInner::SqliteCached(c.prepare_cached(sql)?),
            Self::Pg(pg) => StmtInner::Pg(pg, pg.prepare(sql)?),
        }))
    }

    /// Prepare a statement used once (SQLite does not keep it; PostgreSQL does, by text).
    pub fn prepare(&self, sql: &str) -> Result<Stmt<'_>, DbError> {
        Ok(Stmt(match self {
            Self::Sqlite(c) => StmtInner::Sqlite(c.prepare(sql)?),
            Self::Pg(pg) => StmtInner::Pg(pg, pg.prepare(sql)?),
        }))
    }

    /// Run one statement; the number of rows it changed.
    pub fn execute<P: Params>(&self, sql: &str, params: P) -> Result<usize, DbError> {
        self.prepare_cached(sql)?.execute(params)
    }

    /// Run an `INSERT` into a table with an `id INTEGER PRIMARY KEY` and return the new row's
    /// id: SQLite's last insert rowid (`RETURNING` there would make SQLite keep a statement
    /// journal, measured at half the writer's rate), PostgreSQL's `RETURNING id`. `sql` is
    /// the statement without `RETURNING`; it is prepared once for each engine.
    #[allow(clippy::needless_pass_by_value)] // as the other statements take them
    pub fn insert_id<P: Params>(&self, sql: &'static str, params: P) -> Result<i64, DbError> {
        match self {
            Self::Sqlite(c) => {
                let values = params.values();
                Ok(c.prepare_cached(sql)?.insert(sqlite_params(&values))?)
            }
            Self::Pg(pg) => {
                let returning = RETURNING_ID.with(|cache| {
                    cache
                        .borrow_mut()
                        .entry(sql)
                        .or_insert_with(|| format!("{sql} RETURNING id"))
                        .clone()
                });
                let st = pg.prepare(&returning)?;
                let rows = pg.query(&st, &params.values())?;
                let row = rows.first().ok_or(DbError::NoRows)?;
                Row::Pg(row).get(0)
            }
        }
    }

    /// Run statements without parameters, separated by `;`.
    pub fn execute_batch(&self, sql: &str) -> Result<(), DbError> {
        match self {
            Self::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Self::Pg(pg) => pg.batch(&translate(sql)),
        }
    }

    /// The first row of a query, mapped; [`DbError::NoRows`] when there is none.
    pub fn query_row<T, P, F>(&self, sql: &str, params: P, map: F) -> Result<T, DbError>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> Result<T, DbError>,
    {
        self.prepare_cached(sql)?.query_row(params, map)
    }

    /// Begin a transaction.
    pub fn transaction_with_behavior(
        &mut self,
        behavior: TransactionBehavior,
    ) -> Result<Tx<'_>, DbError> {
        self.begin(behavior)
    }

    /// Begin a deferred transaction.
    pub fn transaction(&mut self) -> Result<Tx<'_>, DbError> {
        self.begin(TransactionBehavior::Deferred)
    }

    /// Begin a transaction through a shared reference: the caller makes sure none is open.
    pub fn unchecked_transaction(&self) -> Result<Tx<'_>, DbError> {
        self.begin(TransactionBehavior::Deferred)
    }

    /// Begin a transaction of `behavior` through a shared reference: the caller makes sure
    /// none is open.
    pub fn unchecked_transaction_with(
        &self,
        behavior: TransactionBehavior,
    ) -> Result<Tx<'_>, DbError> {
        self.begin(behavior)
    }

    /// Begin a transaction without waiting for the server on PostgreSQL: `BEGIN` is handed
    /// to the connection's thread behind what is queued there (see [`Db::pg_send`]); a
    /// failure shows in the transaction's next statement. As `unchecked_transaction` on
    /// SQLite.
    pub fn pipelined_transaction(&self) -> Result<Tx<'_>, DbError> {
        match self {
            Self::Sqlite(_) => self.begin(TransactionBehavior::Deferred),
            Self::Pg(pg) => {
                pg.revive()?;
                // The answer is not waited for: a failed BEGIN fails what follows it.
                drop(pg.hand_over(|c| c.batch_execute("BEGIN"))?);
                pg.in_tx.set(true);
                Ok(Tx {
                    db: self,
                    done: false,
                })
            }
        }
    }

    fn begin(&self, behavior: TransactionBehavior) -> Result<Tx<'_>, DbError> {
        match self {
            Self::Sqlite(c) => c.execute_batch(match behavior {
                TransactionBehavior::Deferred => "BEGIN DEFERRED",
                TransactionBehavior::Immediate => "BEGIN IMMEDIATE",
                TransactionBehavior::Exclusive => "BEGIN EXCLUSIVE",
            })?,
            Self::Pg(pg) => {
                pg.batch("BEGIN")?;
                pg.in_tx.set(true);
            }
        }
        Ok(Tx {
            db: self,
            done: false,
        })
    }
}

fn unsupported(pg: &PgConn) -> DbError {
    DbError::Unsupported(format!(
        "this is not available on a PostgreSQL store yet ({}); use an SQLite store for it (docs/store.md lists what works on each)",
        pg.target.shown()
    ))
}

/// An open transaction: rolled back when dropped uncommitted.
pub struct Tx<'a> {
    db: &'a Db,
    done: bool,
}

impl Deref for Tx<'_> {
    type Target = Db;

    fn deref(&self) -> &Db {
        self.db
    }
}

impl<'a> Tx<'a> {
    pub fn commit(mut self) -> Result<(), DbError> {
        self.done = true;
        self.end("COMMIT")
    }

    /// Commit without waiting, on PostgreSQL: `COMMIT` is handed to the connection's thread
    /// (see [`Db::pg_send`]) and its outcome comes later. A transaction whose statement
    /// failed ends in a rollback without an error from `COMMIT`: the caller checks the
    /// answers of its statements too. Refused on SQLite.
    pub fn commit_later(mut self) -> Result<PgPending<'a, ()>, DbError> {
        let db: &'a Db = self.db;
        let Db::Pg(pg) = db else {
            // Dropped uncommitted: rolled back.
            return Err(DbError::Unsupported(
                "committing later needs a PostgreSQL store".to_owned(),
            ));
        };
        self.done = true;
        pg.in_tx.set(false);
        Ok(PgPending {
            conn: pg,
            answer: pg.hand_over(|c| c.batch_execute("COMMIT"))?,
        })
    }

    pub fn rollback(mut self) -> Result<(), DbError> {
        self.done = true;
        self.end("ROLLBACK")
    }

    fn end(&self, sql: &str) -> Result<(), DbError> {
        let out = self.db.execute_batch(sql);
        if let Db::Pg(pg) = self.db {
            pg.in_tx.set(false);
        }
        out
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if !self.done {
            // Nothing to do with a failure here: the transaction is gone either way (the
            // connection rolls it back when it closes).
            let _ = self.end("ROLLBACK");
        }
    }
}

/// A prepared statement.
pub struct Stmt<'c>(StmtInner<'c>);

enum StmtInner<'c> {
    SqliteCached(rusqlite::CachedStatement<'c>),
    Sqlite(rusqlite::Statement<'c>),
    Pg(&'c PgConn, postgres::Statement),
}

// Parameters are taken by value as rusqlite takes them, so that `params![...]`, arrays and
// `()` read the same at every call.
#[allow(clippy::needless_pass_by_value)]
impl Stmt<'_> {
    /// Run it; the number of rows it changed.
    pub fn execute<P: Params>(&mut self, params: P) -> Result<usize, DbError> {
        let values = params.values();
        match &mut self.0 {
            StmtInner::SqliteCached(st) => Ok(st.execute(sqlite_params(&values))?),
            StmtInner::Sqlite(st) => Ok(st.execute(sqlite_params(&values))?),
            StmtInner::Pg(pg, st) => pg.execute(st, &values),
        }
    }

    /// Its rows, one at a time.
    pub fn query<P: Params>(&mut self, params: P) -> Result<Rows<'_>, DbError> {
        let values = params.values();
        let inner = match &mut self.0 {
            StmtInner::SqliteCached(st) => RowsInner::Sqlite(st.query(sqlite_params(&values))?),
            StmtInner::Sqlite(st) => RowsInner::Sqlite(st.query(sqlite_params(&values))?),
            StmtInner::Pg(pg, st) => RowsInner::Pg(pg.query(st, &values)?.into_iter(), None),
        };
        Ok(Rows { inner })
    }

    /// Its rows, each mapped by `map`.
    pub fn query_map<T, P, F>(&mut self, params: P, map: F) -> Result<MappedRows<'_, F>, DbError>
    where
        P: Params,
        F: FnMut(&Row<'_>) -> Result<T, DbError>,
    {
        Ok(MappedRows {
            rows: self.query(params)?,
            map,
        })
    }

    /// Its first row, mapped; [`DbError::NoRows`] when there is none.
    pub fn query_row<T, P, F>(&mut self, params: P, map: F) -> Result<T, DbError>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> Result<T, DbError>,
    {
        let mut rows = self.query(params)?;
        match rows.next()? {
            Some(row) => map(&row),
            None => Err(DbError::NoRows),
        }
    }

    /// Whether it returns a row.
    pub fn exists<P: Params>(&mut self, params: P) -> Result<bool, DbError> {
        Ok(self.query(params)?.next()?.is_some())
    }
}

// ---------------------------------------------------------------------------------------
// SQL for PostgreSQL

struct Rule {
    find: Regex,
    with: &'static str,
}

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    let rule = |find: &str, with: &'static str| Rule {
        find: Regex::new(find).expect("a valid pattern"),
        with,
    };
    vec![
        rule(r"(?i)\bIFNULL\s*\(", "COALESCE("),
        rule(r"(?i)\bAS\s+INTEGER\b", "AS BIGINT"),
        rule(r"(?i)\bAS\s+REAL\b", "AS DOUBLE PRECISION"),
        rule(r"(?i)\bAS\s+BLOB\b", "AS BYTEA"),
        // A column named `offset` (PostgreSQL reserves the word); the keyword is written
        // OFFSET in the store's SQL, and `excluded.offset` needs no quotes.
        rule(r#"(^|[^"\w.])offset\b"#, "$1\"offset\""),
    ]
});

static OR_IGNORE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\bINSERT\s+OR\s+IGNORE\s+INTO\b").expect("a valid pattern"));
static RETURNING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\bRETURNING\b").expect("a valid pattern"));

/// A statement in SQLite's dialect rewritten for PostgreSQL: parameters numbered `$N`
/// (string literals and quoted names left alone), and the rules above.
#[must_use]
pub fn translate(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut next = 0u32;
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                out.push(c);
            }
            '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    digits.push(d);
                    chars.next();
                }
                if digits.is_empty() {
                    next += 1;
                    out.push('$');
                    out.push_str(&next.to_string());
                } else {
                    next = next.max(digits.parse().unwrap_or(0));
                    out.push('$');
                    out.push_str(&digits);
                }
            }
            _ => out.push(c),
        }
    }
    for rule in RULES.iter() {
        out = rule.find.replace_all(&out, rule.with).into_owned();
    }
    if OR_IGNORE.is_match(&out) {
        out = OR_IGNORE.replace(&out, "INSERT INTO").into_owned();
        let body = out.trim_end().trim_end_matches(';');
        out = match RETURNING.find(body) {
            Some(m) => format!(
                "{} ON CONFLICT DO NOTHING {}",
                body[..m.start()].trim_end(),
                &body[m.start()..]
            ),
            None => format!("{body} ON CONFLICT DO NOTHING"),
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_numbered_outside_literals() {
        assert_eq!(
            translate("SELECT a FROM t WHERE b = ?1 AND c = '?' AND d = ?2 OR e = ?1"),
            "SELECT a FROM t WHERE b = $1 AND c = '?' AND d = $2 OR e = $1"
        );
        assert_eq!(
            translate("INSERT INTO t (a, b) VALUES (?, ?)"),
            "INSERT INTO t (a, b) VALUES ($1, $2)"
        );
        assert_eq!(
            translate("SELECT IFNULL(x, 0), CAST(y AS REAL) FROM t"),
            "SELECT COALESCE(x, 0), CAST(y AS DOUBLE PRECISION) FROM t"
        );
        assert_eq!(
            translate("UPDATE o SET offset = excluded.offset WHERE offset < 3 LIMIT 1 OFFSET ?"),
            "UPDATE o SET \"offset\" = excluded.offset WHERE \"offset\" < 3 LIMIT 1 OFFSET $1"
        );
    }

    #[test]
    fn insert_or_ignore_becomes_on_conflict_do_nothing() {
        assert_eq!(
            translate("INSERT OR IGNORE INTO t (a) VALUES (?1);"),
            "INSERT INTO t (a) VALUES ($1) ON CONFLICT DO NOTHING"
        );
        assert_eq!(
            translate("INSERT OR IGNORE INTO t (a) VALUES (?1) RETURNING id"),
            "INSERT INTO t (a) VALUES ($1) ON CONFLICT DO NOTHING RETURNING id"
        );
    }

    #[test]
    fn values_read_back_as_written_on_sqlite() {
        let db = Db::from(rusqlite::Connection::open_in_memory().unwrap());
        db.execute_batch("CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB)")
            .unwrap();
        db.execute(
            "INSERT INTO t VALUES (?1, ?2, ?3, ?4)",
            params![7u32, 0.5, "x", vec![1u8, 2]],
        )
        .unwrap();
        let got: (i64, f64, String, Vec<u8>) = db
            .query_row("SELECT i, r, s, b FROM t", (), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .unwrap();
        assert_eq!(got, (7, 0.5, "x".into(), vec![1, 2]));
        let none: Option<i64> = db
            .query_row("SELECT i FROM t WHERE s = ?1", ["y"], |r| r.get(0))
            .optional()
            .unwrap();
        assert_eq!(none, None);
        let err = db
            .query_row("SELECT s FROM t", (), |r| r.get::<_, i64>(0))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "column 0: text where an integer was expected"
        );
    }

    #[test]
    fn a_dropped_transaction_rolls_back() {
        let mut db = Db::from(rusqlite::Connection::open_in_memory().unwrap());
        db.execute_batch("CREATE TABLE t (i INTEGER)").unwrap();
        {
            let tx = db
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .unwrap();
            tx.execute("INSERT INTO t VALUES (1)", ()).unwrap();
        }
        {
            let tx = db.transaction().unwrap();
            tx.execute("INSERT INTO t VALUES (2)", ()).unwrap();
            tx.commit().unwrap();
        }
        let rows: Vec<i64> = db
            .prepare("SELECT i FROM t")
            .unwrap()
            .query_map((), |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows, vec![2]);
    }
}
