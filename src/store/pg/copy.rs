//! `evalwatch store migrate`: a whole history copied from one engine to the other, table by
//! table, in batches, then verified.
//!
//! Generic over the schema: the tables are those the source has (views and each engine's own
//! bookkeeping aside), copied parents first (by their foreign keys), every column by name, so
//! that tables and columns later migrations add are copied with no change here. Into
//! PostgreSQL a batch goes by binary COPY, straight into an empty table, else through a
//! temporary table and `INSERT ... ON CONFLICT DO NOTHING`; into SQLite by prepared inserts
//! (`INSERT OR IGNORE` into a table that has rows), one transaction a batch. A table whose
//! row count already matches is skipped, so a second run adds nothing, and a run cut short
//! is finished by running it again. The source is read in one snapshot.
//!
//! Both stores must be at the same migration level (a new target is migrated to the
//! source's). At the end every table's row count must match, and so must a SHA-256 of the
//! `results` rows in key order, or the copy is reported as failed.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{ToSql, Type};
use postgres::{Client, GenericClient};
use rusqlite::{Connection, OpenFlags};
use sha2::{Digest, Sha256};

use super::cell::{Cell, supported};
use super::schema::{self, VERSION_TABLE};
use super::{PgError, PgTarget, is_postgres_url, reason};
use crate::store::schema::{MIGRATIONS, connect_at};

/// The advisory lock key a copy into PostgreSQL holds ("EvWa" and 2): two copies into one
/// store run one after the other.
const COPY_LOCK: i64 = 0x4576_5761_0002;

/// The table whose rows the checksum covers.
const CHECKED_TABLE: &str = "results";

/// One side of a copy.
#[derive(Debug, Clone)]
pub enum Endpoint {
    Sqlite(PathBuf),
    Postgres(Box<PgTarget>),
}

impl Endpoint {
    /// A `postgres://` URL or the path of an SQLite file.
    pub fn parse(text: &str) -> Result<Self, PgError> {
        if is_postgres_url(text) {
            Ok(Self::Postgres(Box::new(PgTarget::parse(text)?)))
        } else {
            Ok(Self::Sqlite(PathBuf::from(text)))
        }
    }

    /// As shown to people (no password).
    #[must_use]
    pub fn shown(&self) -> String {
        match self {
            Self::Sqlite(p) => p.display().to_string(),
            Self::Postgres(t) => t.shown().to_owned(),
        }
    }
}

/// What happened to one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCopy {
    pub table: String,
    /// Rows of the source (and, once verified, of the target).
    pub rows: u64,
    /// Rows this run added to the target.
    pub added: u64,
}

/// The outcome of a verified copy.
#[derive(Debug, Clone)]
pub struct Summary {
    pub level: u32,
    pub tables: Vec<TableCopy>,
    /// `sha256:` and the hex digest of the `results` rows, the same on both sides.
    pub checksum: String,
}

/// Progress of a copy: table, rows copied so far, rows the source has.
pub type Progress<'a> = &'a mut dyn FnMut(&str, u64, u64);

/// Copy the whole history of `from` into `to` and verify it (see the module docs).
pub fn migrate_history(
    from: &Endpoint,
    to: &Endpoint,
    batch: usize,
    progress: Progress<'_>,
) -> Result<Summary, PgError> {
    let batch = batch.max(1);
    let mut source = match from {
        Endpoint::Sqlite(p) => Side::open_sqlite_source(p)?,
        Endpoint::Postgres(t) => Side::open_pg(t)?,
    };
    let level = source.level()?;
    let known = MIGRATIONS.len() as u32;
    if level == 0 {
        return Err(PgError::Refused(format!(
            "copy from {}: it is not an evalwatch store (no migrations applied)",
            from.shown()
        )));
    }
    if level > known {
        return Err(PgError::Refused(format!(
            "copy from {}: its schema version {level} is newer than this evalwatch knows ({known}); upgrade evalwatch",
            from.shown()
        )));
    }
    let mut target = match to {
        Endpoint::Sqlite(p) => Side::open_sqlite_target(p, level)?,
        Endpoint::Postgres(t) => Side::open_pg_target(t, level)?,
    };
    source.begin_snapshot()?;
    let result = copy_all(&mut source, &mut target, level, batch, progress);
    target.unlock();
    result
}

fn copy_all(
    source: &mut Side,
    target: &mut Side,
    level: u32,
    batch: usize,
    progress: Progress<'_>,
) -> Result<Summary, PgError> {
    let tables = source.tables()?;
    let target_tables: BTreeSet<String> = target.tables()?.into_iter().collect();
    let missing: Vec<&String> = tables
        .iter()
        .filter(|t| !target_tables.contains(*t))
        .collect();
    if !missing.is_empty() {
        return Err(PgError::Mismatch(format!(
            "{} lacks the tables {} at the same migration level {level}",
            target.shown(),
            join(&missing)
        )));
    }
    let order = parents_first(source, target, &tables)?;
    let mut copied = Vec::new();
    for table in &order {
        let columns = source.columns(table)?;
        let target_columns = target.columns(table)?;
        let names: BTreeSet<&String> = columns.iter().map(|(n, _)| n).collect();
        let target_names: BTreeSet<&String> = target_columns.iter().map(|(n, _)| n).collect();
        if names != target_names {
            return Err(PgError::Mismatch(format!(
                "the table {table} has the columns {} in {} but {} in {}",
                join(&names.into_iter().collect::<Vec<_>>()),
                source.shown(),
                join(&target_names.into_iter().collect::<Vec<_>>()),
                target.shown()
            )));
        }
        // Write in the source's column order, with the target's types.
        let types: BTreeMap<&String, Option<Type>> =
            target_columns.iter().map(|(n, t)| (n, t.clone())).collect();
        let columns: Vec<(String, Option<Type>)> = columns
            .iter()
            .map(|(n, _)| (n.clone(), types.get(n).cloned().flatten()))
            .collect();
        let rows = source.count(table)?;
        let before = target.count(table)?;
        let mut added = 0;
        if before != rows {
            let empty = before == 0;
            let mut done = 0u64;
            let mut pending: Vec<Vec<Cell>> = Vec::with_capacity(batch);
            let names: Vec<String> = columns.iter().map(|(n, _)| n.clone()).collect();
            source.scan(table, &names, None, &mut |row| {
                pending.push(row);
                if pending.len() >= batch {
                    added += target.write(table, &columns, &pending, empty)?;
                    done += pending.len() as u64;
                    pending.clear();
                    progress(table, done, rows);
                }
                Ok(())
            })?;
            if !pending.is_empty() {
                added += target.write(table, &columns, &pending, empty)?;
                done += pending.len() as u64;
            }
            progress(table, done, rows);
        }
        copied.push(TableCopy {
            table: table.clone(),
            rows,
            added,
        });
    }
    target.after_copy(&order)?;
    // Verify: every table's count, and the checksum of the results.
    let mut wrong = Vec::new();
    for t in &copied {
        let there = target.count(&t.table)?;
        if there != t.rows {
            wrong.push(format!(
                "{}: {} rows in the source, {there} in the target",
                t.table, t.rows
            ));
        }
    }
    if !wrong.is_empty() {
        return Err(PgError::Mismatch(format!(
            "row counts differ ({}); a target that already held another history keeps its own rows: copy into a new database",
            wrong.join("; ")
        )));
    }
    let checksum = if tables.iter().any(|t| t == CHECKED_TABLE) {
        let key = primary_key(source, target, CHECKED_TABLE)?;
        let names: Vec<String> = source
            .columns(CHECKED_TABLE)?
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        let here = checksum(source, CHECKED_TABLE, &names, &key)?;
        let there = checksum(target, CHECKED_TABLE, &names, &key)?;
        if here != there {
            return Err(PgError::Mismatch(format!(
                "the checksum of {CHECKED_TABLE} differs: {here} in the source, {there} in the target"
            )));
        }
        here
    } else {
        String::new()
    };
    source.end_snapshot()?;
    Ok(Summary {
        level,
        tables: copied,
        checksum,
    })
}

/// `sha256:` and the digest of a table's rows in key order.
fn checksum(
    side: &mut Side,
    table: &str,
    columns: &[String],
    key: &[String],
) -> Result<String, PgError> {
    let mut hash = Sha256::new();
    side.scan(table, columns, Some(key), &mut |row| {
        for cell in &row {
            cell.feed(&mut hash);
        }
        Ok(())
    })?;
    Ok(format!("sha256:{}", hex::encode(hash.finalize())))
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn column_list(columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| quote(c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The SQLite connection of a copy (one of the two sides is SQLite).
fn sqlite_of<'a>(a: &'a Side, b: &'a Side) -> &'a Connection {
    match (a, b) {
        (Side::Lite { conn, .. }, _) | (_, Side::Lite { conn, .. }) => conn,
        _ => unreachable!("one side of a copy is SQLite"),
    }
}

/// Tables ordered so that a table comes after those its foreign keys refer to (read from the
/// SQLite side, whose schema is the same).
fn parents_first(a: &Side, b: &Side, tables: &[String]) -> Result<Vec<String>, PgError> {
    let conn = sqlite_of(a, b);
    let mut parents: BTreeMap<&String, BTreeSet<String>> = BTreeMap::new();
    for t in tables {
        let mut st = conn
            .prepare("SELECT DISTINCT \"table\" FROM pragma_foreign_key_list(?1)")
            .map_err(|e| lite_err(conn, "read the foreign keys", &e))?;
        let refs: Vec<String> = st
            .query_map([t], |r| r.get(0))
            .and_then(Iterator::collect)
            .map_err(|e| lite_err(conn, "read the foreign keys", &e))?;
        parents.insert(
            t,
            refs.into_iter()
                .filter(|p| p != t && tables.contains(p))
                .collect(),
        );
    }
    let mut order: Vec<String> = Vec::new();
    while order.len() < tables.len() {
        let before = order.len();
        for t in tables {
            if !order.contains(t) && parents[t].iter().all(|p| order.contains(p)) {
                order.push(t.clone());
            }
        }
        if order.len() == before {
            // A cycle of foreign keys: copy the rest in name order and let the database say.
            order.extend(
                tables
                    .iter()
                    .filter(|t| !order.contains(t))
                    .cloned()
                    .collect::<Vec<_>>(),
            );
        }
    }
    Ok(order)
}

/// The primary key columns of a table (from the SQLite side), else every column.
fn primary_key(a: &Side, b: &Side, table: &str) -> Result<Vec<String>, PgError> {
    let conn = sqlite_of(a, b);
    let mut st = conn
        .prepare("SELECT name FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk")
        .map_err(|e| lite_err(conn, "read the primary key", &e))?;
    st.query_map([table], |r| r.get(0))
        .and_then(Iterator::collect)
        .map_err(|e| lite_err(conn, "read the primary key", &e))
}

fn lite_err(conn: &Connection, what: &str, e: &rusqlite::Error) -> PgError {
    PgError::Sqlite {
        path: conn.path().unwrap_or("?").to_owned(),
        what: what.to_owned(),
        reason: e.to_string(),
    }
}

/// A connection to one side of a copy.
enum Side {
    Lite {
        conn: Connection,
        shown: String,
    },
    Pg {
        client: Box<Client>,
        target: Box<PgTarget>,
        locked: bool,
    },
}

impl Side {
    fn open_sqlite_source(path: &Path) -> Result<Self, PgError> {
        if !path.exists() {
            return Err(PgError::Refused(format!(
                "copy from {}: no such file",
                path.display()
            )));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| PgError::Sqlite {
            path: path.display().to_string(),
            what: "open the store".into(),
            reason: e.to_string(),
        })?;
        Ok(Self::Lite {
            conn,
            shown: path.display().to_string(),
        })
    }

    fn open_sqlite_target(path: &Path, level: u32) -> Result<Self, PgError> {
        let shown = path.display().to_string();
        if path.exists() {
            let mut side = Self::open_sqlite_source(path)?;
            let found = side.level()?;
            if found != 0 && found != level {
                return Err(PgError::Refused(format!(
                    "copy into {shown}: its migration level is {found}, the source's {level}; bring both to this evalwatch's level first or copy into a new file"
                )));
            }
        }
        let conn = connect_at(path, level).map_err(|e| PgError::Sqlite {
            path: shown.clone(),
            what: "open the store".into(),
            reason: e.to_string(),
        })?;
        Ok(Self::Lite { conn, shown })
    }

    fn open_pg(target: &PgTarget) -> Result<Self, PgError> {
        Ok(Self::Pg {
            client: Box::new(target.connect()?),
            target: Box::new(target.clone()),
            locked: false,
        })
    }

    fn open_pg_target(target: &PgTarget, level: u32) -> Result<Self, PgError> {
        let mut side = Self::open_pg(target)?;
        let shown = target.shown().to_owned();
        if let Self::Pg { client, locked, .. } = &mut side {
            // A new database gets the schema first, under the migrations' own lock (which
            // serves processes that start together), then the copy takes its lock.
            // Another process may be bringing the same new database up: its level is read
            // once that process is done.
            if schema::settled_level(client, &shown)? == 0 {
                schema::migrate(client, &shown, level)?;
            }
            client
                .execute("SELECT pg_advisory_lock($1)", &[&COPY_LOCK])
                .map_err(side_err(target, "take the copy lock"))?;
            *locked = true;
            let found = schema::level(client, &shown)?;
            if found != level {
                return Err(PgError::Refused(format!(
                    "copy into {shown}: its migration level is {found}, the source's {level}; bring both to this evalwatch's level first or copy into a new database"
                )));
            }
        }
        Ok(side)
    }

    fn unlock(&mut self) {
        if let Self::Pg { client, locked, .. } = self
            && *locked
        {
            // The lock goes with the session if this fails.
            let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&COPY_LOCK]);
            *locked = false;
        }
    }

    fn shown(&self) -> &str {
        match self {
            Self::Lite { shown, .. } => shown,
            Self::Pg { target, .. } => target.shown(),
        }
    }

    fn level(&mut self) -> Result<u32, PgError> {
        match self {
            Self::Lite { conn, .. } => conn
                .query_row("PRAGMA user_version", [], |r| r.get::<_, u32>(0))
                .map_err(|e| lite_err(conn, "read the migration level", &e)),
            Self::Pg { client, target, .. } => schema::level(client, target.shown()),
        }
    }

    /// One snapshot for the whole read of a source.
    fn begin_snapshot(&mut self) -> Result<(), PgError> {
        match self {
            Self::Lite { conn, .. } => conn
                .execute_batch("BEGIN; SELECT count(*) FROM sqlite_master;")
                .map_err(|e| lite_err(conn, "begin a read", &e)),
            Self::Pg { client, target, .. } => client
                .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .map_err(side_err(target, "begin a read")),
        }
    }

    fn end_snapshot(&mut self) -> Result<(), PgError> {
        match self {
            Self::Lite { conn, .. } => conn
                .execute_batch("COMMIT")
                .map_err(|e| lite_err(conn, "end a read", &e)),
            Self::Pg { client, target, .. } => client
                .batch_execute("COMMIT")
                .map_err(side_err(target, "end a read")),
        }
    }

    /// The base tables of the history, without each engine's bookkeeping.
    fn tables(&mut self) -> Result<Vec<String>, PgError> {
        match self {
            Self::Lite { conn, .. } => {
                let mut st = conn
                    .prepare(
                        "SELECT name FROM sqlite_master WHERE type = 'table'
                         AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
                    )
                    .map_err(|e| lite_err(conn, "list the tables", &e))?;
                st.query_map([], |r| r.get(0))
                    .and_then(Iterator::collect)
                    .map_err(|e| lite_err(conn, "list the tables", &e))
            }
            Self::Pg { client, target, .. } => Ok(client
                .query(
                    "SELECT table_name::text FROM information_schema.tables
                     WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
                       AND table_name <> $1
                     ORDER BY 1",
                    &[&VERSION_TABLE],
                )
                .map_err(side_err(target, "list the tables"))?
                .iter()
                .map(|r| r.get(0))
                .collect()),
        }
    }

    /// A table's columns in order, with their PostgreSQL types on that side.
    fn columns(&mut self, table: &str) -> Result<Vec<(String, Option<Type>)>, PgError> {
        match self {
            Self::Lite { conn, .. } => {
                let mut st = conn
                    .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
                    .map_err(|e| lite_err(conn, "read the columns", &e))?;
                st.query_map([table], |r| Ok((r.get(0)?, None)))
                    .and_then(Iterator::collect)
                    .map_err(|e| lite_err(conn, "read the columns", &e))
            }
            Self::Pg { client, target, .. } => {
                // The types as a prepared SELECT describes them.
                let st = client
                    .prepare(&format!("SELECT * FROM {} LIMIT 0", quote(table)))
                    .map_err(side_err(target, "read the columns"))?;
                let mut out = Vec::new();
                for c in st.columns() {
                    if !supported(c.type_()) {
                        return Err(PgError::Refused(format!(
                            "copy the table {table}: its column {} has the type {}, which `store migrate` does not carry yet",
                            c.name(),
                            c.type_()
                        )));
                    }
                    out.push((c.name().to_owned(), Some(c.type_().clone())));
                }
                Ok(out)
            }
        }
    }

    fn count(&mut self, table: &str) -> Result<u64, PgError> {
        let sql = format!("SELECT count(*) FROM {}", quote(table));
        match self {
            Self::Lite { conn, .. } => conn
                .query_row(&sql, [], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
                .map_err(|e| lite_err(conn, "count rows", &e)),
            Self::Pg { client, target, .. } => client
                .query_one(&sql, &[])
                .map(|r| r.get::<_, i64>(0) as u64)
                .map_err(side_err(target, "count rows")),
        }
    }

    /// Every row of a table (in key order when `order` is given), one at a time.
    fn scan(
        &mut self,
        table: &str,
        columns: &[String],
        order: Option<&[String]>,
        each: &mut dyn FnMut(Vec<Cell>) -> Result<(), PgError>,
    ) -> Result<(), PgError> {
        let mut sql = format!("SELECT {} FROM {}", column_list(columns), quote(table));
        if let Some(key) = order.filter(|k| !k.is_empty()) {
            sql.push_str(" ORDER BY ");
            sql.push_str(&column_list(key));
        }
        let n = columns.len();
        match self {
            Self::Lite { conn, .. } => {
                let fail = |e: &rusqlite::Error| lite_err(conn, &format!("read {table}"), e);
                let mut st = conn.prepare(&sql).map_err(|e| fail(&e))?;
                let mut rows = st.query([]).map_err(|e| fail(&e))?;
                while let Some(row) = rows.next().map_err(|e| fail(&e))? {
                    let mut cells = Vec::with_capacity(n);
                    for (i, column) in columns.iter().enumerate() {
                        let value = row.get_ref(i).map_err(|e| fail(&e))?;
                        cells.push(Cell::from_sqlite(value).map_err(|e| PgError::Sqlite {
                            path: conn.path().unwrap_or("?").to_owned(),
                            what: format!("read {table}.{column}"),
                            reason: e.to_string(),
                        })?);
                    }
                    each(cells)?;
                }
                Ok(())
            }
            Self::Pg { client, target, .. } => {
                let none: [&(dyn ToSql + Sync); 0] = [];
                let what = format!("read {table}");
                let mut rows = client
                    .query_raw(&sql, none)
                    .map_err(side_err(target, &what))?;
                while let Some(row) = rows.next().map_err(side_err(target, &what))? {
                    let mut cells = Vec::with_capacity(n);
                    for i in 0..n {
                        cells.push(row.try_get(i).map_err(side_err(target, &what))?);
                    }
                    each(cells)?;
                }
                Ok(())
            }
        }
    }

    /// Write a batch of rows in one transaction; returns how many were new.
    fn write(
        &mut self,
        table: &str,
        columns: &[(String, Option<Type>)],
        rows: &[Vec<Cell>],
        empty: bool,
    ) -> Result<u64, PgError> {
        let names: Vec<String> = columns.iter().map(|(n, _)| n.clone()).collect();
        match self {
            Self::Lite { conn, .. } => {
                let fail = |conn: &Connection, e: &rusqlite::Error| {
                    lite_err(conn, &format!("write {table}"), e)
                };
                let verb = if empty { "INSERT" } else { "INSERT OR IGNORE" };
                let marks = vec!["?"; names.len()].join(", ");
                let sql = format!(
                    "{verb} INTO {} ({}) VALUES ({marks})",
                    quote(table),
                    column_list(&names)
                );
                let tx = conn.unchecked_transaction().map_err(|e| fail(conn, &e))?;
                let mut added = 0;
                {
                    let mut st = tx.prepare_cached(&sql).map_err(|e| fail(&tx, &e))?;
                    for row in rows {
                        added += st
                            .execute(rusqlite::params_from_iter(row.iter()))
                            .map_err(|e| fail(&tx, &e))? as u64;
                    }
                }
                tx.commit().map_err(|e| fail(conn, &e))?;
                Ok(added)
            }
            Self::Pg { client, target, .. } => {
                let types: Vec<Type> = columns
                    .iter()
                    .map(|(_, t)| t.clone().unwrap_or(Type::TEXT))
                    .collect();
                write_pg(client, target, table, &names, &types, rows, empty)
            }
        }
    }

    /// After a copy into PostgreSQL, each identity column continues after the largest key.
    fn after_copy(&mut self, tables: &[String]) -> Result<(), PgError> {
        let Self::Pg { client, target, .. } = self else {
            return Ok(());
        };
        let identities = client
            .query(
                "SELECT table_name::text, column_name::text FROM information_schema.columns
                 WHERE table_schema = 'public' AND is_identity = 'YES'",
                &[],
            )
            .map_err(side_err(target, "list the identity columns"))?;
        for row in identities {
            let (table, column): (String, String) = (row.get(0), row.get(1));
            if !tables.contains(&table) {
                continue;
            }
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence($1, $2), max({c})) FROM {t} HAVING max({c}) IS NOT NULL",
                c = quote(&column),
                t = quote(&table)
            );
            client
                .query(&sql, &[&quote(&table), &column])
                .map_err(side_err(
                    target,
                    &format!("move the key sequence of {table}"),
                ))?;
        }
        Ok(())
    }
}

/// Write a batch of rows into PostgreSQL by binary COPY in one transaction: straight into
/// the table when `empty`, else through a temporary table and `ON CONFLICT DO NOTHING`.
/// Returns how many rows were new. The bulk path of `store migrate` (and `benches/pg_store.rs`).
pub fn write_pg(
    client: &mut Client,
    target: &PgTarget,
    table: &str,
    columns: &[String],
    types: &[Type],
    rows: &[Vec<Cell>],
    empty: bool,
) -> Result<u64, PgError> {
    let what = format!("write {table}");
    let mut tx = client.transaction().map_err(side_err(target, &what))?;
    let added =
        copy_rows(&mut tx, table, columns, types, rows, empty).map_err(side_err(target, &what))?;
    tx.commit().map_err(side_err(target, &what))?;
    Ok(added)
}

/// Write `rows` into `table` by binary COPY on `client` (in the caller's transaction): into
/// the table itself when `empty` (a row already there fails the COPY), else through a
/// temporary table and `INSERT ... ON CONFLICT DO NOTHING`, so that rows already there are
/// left alone. Returns the rows added.
pub fn copy_rows(
    client: &mut impl GenericClient,
    table: &str,
    columns: &[String],
    types: &[Type],
    rows: &[Vec<Cell>],
    empty: bool,
) -> Result<u64, postgres::Error> {
    copy_via(client, table, columns, empty, |sink| {
        let mut writer = BinaryCopyInWriter::new(sink, types);
        let mut refs: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(columns.len());
        for row in rows {
            refs.clear();
            refs.extend(row.iter().map(|c| c as &(dyn ToSql + Sync)));
            writer.write(&refs)?;
        }
        writer.finish()
    })
}

/// As [`copy_rows`], for rows already in COPY's binary format (header and trailer
/// included: [`super::results::EncodedRows`]), sent as they are.
pub fn copy_encoded(
    client: &mut impl GenericClient,
    table: &str,
    columns: &[String],
    encoded: &[u8],
    empty: bool,
) -> Result<u64, postgres::Error> {
    copy_via(client, table, columns, empty, |mut sink| {
        // One write into the sink's empty buffer appends all of `encoded` and sends nothing
        // (`finish` sends it). Its error, were there one, is the connection's; with nothing
        // appended the server would refuse the COPY (no binary header) all the same.
        if let Err(e) = sink.write_all(encoded)
            && let Some(inner) = e.into_inner()
            && let Ok(pg) = inner.downcast::<postgres::Error>()
        {
            return Err(*pg);
        }
        sink.finish()
    })
}

/// The COPY of [`copy_rows`] and [`copy_encoded`]: `send` writes the rows into the COPY's
/// sink and finishes it.
fn copy_via<C: GenericClient>(
    client: &mut C,
    table: &str,
    columns: &[String],
    empty: bool,
    send: impl FnOnce(postgres::CopyInWriter<'_>) -> Result<u64, postgres::Error>,
) -> Result<u64, postgres::Error> {
    let stage = format!("ew_stage_{table}");
    let sink = if empty {
        quote(table)
    } else {
        client.batch_execute(&format!(
            "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {}) ON COMMIT DELETE ROWS",
            quote(&stage),
            quote(table)
        ))?;
        quote(&stage)
    };
    let list = column_list(columns);
    let mut added =
        send(client.copy_in(&format!("COPY {sink} ({list}) FROM STDIN (FORMAT binary)"))?)?;
    if !empty {
        added = client.execute(
            &format!(
                "INSERT INTO {} ({list}) SELECT {list} FROM {} ON CONFLICT DO NOTHING",
                quote(table),
                quote(&stage)
            ),
            &[],
        )?;
    }
    Ok(added)
}

fn side_err<'a>(target: &'a PgTarget, what: &'a str) -> impl Fn(postgres::Error) -> PgError + 'a {
    move |e| PgError::Query {
        shown: target.shown().to_owned(),
        what: what.to_owned(),
        reason: target.scrub(&reason(&e)),
    }
}
