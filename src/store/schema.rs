//! Opening a connection: pragmas and the embedded, append-only migrations.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use super::StoreError;

/// Migrations in order; migration `i` brings the schema to version `i + 1`.
/// Append only: a released migration never changes.
pub(crate) const MIGRATIONS: [(&str, &str); 30] = [
    ("0001_schema", include_str!("migrations/0001_schema.sql")),
    (
        "0002_indexes_views",
        include_str!("migrations/0002_indexes_views.sql"),
    ),
    ("0003_alerts", include_str!("migrations/0003_alerts.sql")),
    (
        "0004_schedule",
        include_str!("migrations/0004_schedule.sql"),
    ),
    ("0005_judge", include_str!("migrations/0005_judge.sql")),
    ("0006_review", include_str!("migrations/0006_review.sql")),
    (
        "0007_alert_claims",
        include_str!("migrations/0007_alert_claims.sql"),
    ),
    (
        "0008_run_settings",
        include_str!("migrations/0008_run_settings.sql"),
    ),
    (
        "0009_output_length",
        include_str!("migrations/0009_output_length.sql"),
    ),
    ("0010_traffic", include_str!("migrations/0010_traffic.sql")),
    ("0011_marks", include_str!("migrations/0011_marks.sql")),
    (
        "0012_feedback",
        include_str!("migrations/0012_feedback.sql"),
    ),
    (
        "0013_traffic_alerts",
        include_str!("migrations/0013_traffic_alerts.sql"),
    ),
    (
        "0014_review_traffic",
        include_str!("migrations/0014_review_traffic.sql"),
    ),
    (
        "0015_traffic_alert_verdict",
        include_str!("migrations/0015_traffic_alert_verdict.sql"),
    ),
    (
        "0016_traffic_judge",
        include_str!("migrations/0016_traffic_judge.sql"),
    ),
    (
        "0017_run_labels",
        include_str!("migrations/0017_run_labels.sql"),
    ),
    (
        "0018_run_versions",
        include_str!("migrations/0018_run_versions.sql"),
    ),
    (
        "0019_record_shape",
        include_str!("migrations/0019_record_shape.sql"),
    ),
    (
        "0020_schedule_claims",
        include_str!("migrations/0020_schedule_claims.sql"),
    ),
    (
        "0021_trace_index",
        include_str!("migrations/0021_trace_index.sql"),
    ),
    (
        "0022_results_refs",
        include_str!("migrations/0022_results_refs.sql"),
    ),
    (
        "0023_run_order",
        include_str!("migrations/0023_run_order.sql"),
    ),
    (
        "0024_run_version_batches",
        include_str!("migrations/0024_run_version_batches.sql"),
    ),
    (
        "0025_keys_by_hour",
        include_str!("migrations/0025_keys_by_hour.sql"),
    ),
    (
        "0026_feedback_by_trace",
        include_str!("migrations/0026_feedback_by_trace.sql"),
    ),
    (
        "0027_runs_without_a_time_first",
        include_str!("migrations/0027_runs_without_a_time_first.sql"),
    ),
    (
        "0028_vote_bucket",
        include_str!("migrations/0028_vote_bucket.sql"),
    ),
    (
        "0029_filtered_runs",
        include_str!("migrations/0029_filtered_runs.sql"),
    ),
    (
        "0030_alert_last_message",
        include_str!("migrations/0030_alert_last_message.sql"),
    ),
];

/// The schema version this code writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Page size of a new database file.
pub(crate) const PAGE_SIZE: u32 = 16384;

/// How long a connection waits for another writer before giving up.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// `PRAGMA application_id` of an evalwatch store ("EvWa"), set by the first migration run of
/// this version. Stores made before it carry 0 and are recognised by their tables.
pub(crate) const APPLICATION_ID: i32 = 0x4576_5761;

/// Tables every evalwatch store has had since schema version 1.
const CORE_TABLES: [&str; 4] = ["cases", "results", "runs", "suites"];

/// How many times opening retries a step that found the file locked by another process
/// setting it up (the busy handler does not cover every such case, e.g. the WAL switch).
const OPEN_ATTEMPTS: u32 = 200;

/// Open a connection, set the pragmas, and migrate to [`SCHEMA_VERSION`].
pub(crate) fn connect(path: &Path) -> Result<Connection, StoreError> {
    connect_at(path, SCHEMA_VERSION)
}

/// Open and migrate up to `target` (tests build old databases with it).
pub(crate) fn connect_at(path: &Path, target: u32) -> Result<Connection, StoreError> {
    let shown = path.display().to_string();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Other(format!(
                "create the directory {} of the store: {e}",
                dir.display()
            ))
        })?;
    }
    let open_err = |source| StoreError::Open {
        path: shown.clone(),
        source,
    };
    let mut conn = Connection::open(path).map_err(open_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
    // Judge the file before anything writes to it: the WAL switch, the page size and the
    // migrations all change its bytes.
    with_retry(|| recognise(&conn, &shown))?;
    with_retry(|| configure(&conn).map_err(open_err))?;
    with_retry(|| migrate(&mut conn, &shown, target))?;
    Ok(conn)
}

/// Run an opening step again while it fails only because another process holds the file
/// (several processes creating one new store at once): bounded by count, with a short sleep.
fn with_retry<T>(mut step: impl FnMut() -> Result<T, StoreError>) -> Result<T, StoreError> {
    let mut attempt = 0;
    loop {
        match step() {
            Err(e) if attempt + 1 < OPEN_ATTEMPTS && is_busy(&e) => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(5 + u64::from(attempt % 20)));
            }
            other => return other,
        }
    }
}

fn is_busy(err: &StoreError) -> bool {
    let code = match err {
        StoreError::Open { source, .. } | StoreError::Sqlite(source) => source.sqlite_error_code(),
        _ => None,
    };
    matches!(
        code,
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Refuse, before a byte is written, a file that is not an evalwatch store: another
/// application's database, or a store of a newer evalwatch. A new or empty file (no tables)
/// is fine; so is a store of an earlier evalwatch (no `application_id`, the core tables).
fn recognise(conn: &Connection, shown: &str) -> Result<(), StoreError> {
    let open_err = |source| StoreError::Open {
        path: shown.to_owned(),
        source,
    };
    // One read transaction, so that the three reads see one state of the file (another
    // process may be creating the store meanwhile).
    let snapshot = conn.unchecked_transaction().map_err(open_err)?;
    let conn: &Connection = &snapshot;
    let app_id: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(open_err)?;
    let version = user_version(conn).map_err(open_err)?;
    let tables: Vec<String> = {
        let mut st = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .map_err(open_err)?;
        st.query_map([], |r| r.get(0))
            .map_err(open_err)?
            .collect::<Result<_, _>>()
            .map_err(open_err)?
    };
    drop(snapshot);
    let ours = app_id == APPLICATION_ID
        || (app_id == 0 && tables.is_empty() && version == 0)
        || (app_id == 0
            && version >= 1
            && CORE_TABLES.iter().all(|t| tables.iter().any(|n| n == t)));
    if !ours {
        let what = if tables.is_empty() {
            "no tables".to_owned()
        } else {
            let mut shown_tables = tables
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if tables.len() > 5 {
                let _ = write!(shown_tables, " and {} more", tables.len() - 5);
            }
            format!("tables {shown_tables}")
        };
        return Err(StoreError::NotAStore {
            path: shown.to_owned(),
            detail: format!("application_id {app_id:#x}, user_version {version}, {what}"),
        });
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: shown.to_owned(),
            found: version,
            known: SCHEMA_VERSION,
        });
    }
    Ok(())
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    // Only takes effect on a new, empty file: results are ~1 KB rows, and 16 KiB pages wrote
    // 20% faster than the default 4 KiB (docs/performance.md).
    conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    // `journal_mode` answers with the mode in effect; WAL is persistent once set.
    let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_prepared_statement_cache_capacity(32);
    // The trace index's key, for migration 0021 and feedback's lookups by trace id.
    super::traffic::register_trace_key(conn)?;
    Ok(())
}

/// The schema version recorded in the file.
pub(crate) fn user_version(conn: &Connection) -> rusqlite::Result<u32> {
    let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    Ok(u32::try_from(v).unwrap_or(u32::MAX))
}

/// Apply the pending migrations up to `target`, each with its version bump, in one immediate
/// transaction, so that two processes opening a fresh file at once migrate it once.
fn migrate(conn: &mut Connection, shown: &str, target: u32) -> Result<(), StoreError> {
    let open_err = |source| StoreError::Open {
        path: shown.to_owned(),
        source,
    };
    // Fast path without taking the write lock: already current (or newer).
    let found = user_version(conn).map_err(open_err)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: shown.to_owned(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    if found >= target {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(open_err)?;
    // Read again under the lock: another process may have migrated meanwhile.
    let found = user_version(&tx).map_err(open_err)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: shown.to_owned(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (i, (name, sql)) in MIGRATIONS.iter().enumerate() {
        let version = i as u32 + 1;
        if version <= found || version > target {
            continue;
        }
        tx.execute_batch(sql).map_err(|source| {
            StoreError::Other(format!(
                "migrate the store at {shown} to version {version} ({name}): {source}"
            ))
        })?;
        tx.pragma_update(None, "user_version", version)
            .map_err(open_err)?;
    }
    tx.pragma_update(None, "application_id", APPLICATION_ID)
        .map_err(open_err)?;
    tx.commit().map_err(open_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_names(conn: &Connection, kind: &str) -> Vec<String> {
        let mut st = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = ?1 ORDER BY name")
            .unwrap();
        st.query_map([kind], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn fresh_database_is_fully_migrated_with_pragmas() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dir/h.db");
        let conn = connect(&path).unwrap();
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
        assert_eq!(SCHEMA_VERSION as usize, MIGRATIONS.len());
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
        let tables = table_names(&conn, "table");
        assert!(!tables.contains(&"assertions".to_owned()));
        for t in [
            "cases",
            "prompts",
            "results",
            "run_gates",
            "run_metrics",
            "runs",
            "suites",
        ] {
            assert!(tables.contains(&t.to_owned()), "missing table {t}");
        }
        let views = table_names(&conn, "view");
        assert_eq!(
            views,
            vec!["assertion_rows", "result_rows", "run_headlines"]
        );
        let page: u32 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        assert_eq!(page, PAGE_SIZE);
        // Opening again is a no-op.
        drop(conn);
        let conn = connect(&path).unwrap();
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn partial_migration_stops_at_target_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let conn = connect_at(&path, 1).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 1);
        assert!(table_names(&conn, "view").is_empty());
        assert!(!table_names(&conn, "index").contains(&"runs_by_suite".to_owned()));
        drop(conn);
        let conn = connect(&path).unwrap();
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
        assert!(table_names(&conn, "index").contains(&"runs_by_suite".to_owned()));
    }

    #[test]
    fn newer_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let conn = connect(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(conn);
        match connect(&path) {
            Err(StoreError::TooNew { found, known, .. }) => {
                assert_eq!(found, SCHEMA_VERSION + 1);
                assert_eq!(known, SCHEMA_VERSION);
            }
            Err(e) => panic!("wrong error {e}"),
            Ok(_) => panic!("a newer database must be refused"),
        }
    }

    #[test]
    fn a_file_that_is_not_a_database_is_an_open_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        std::fs::write(&path, vec![b'x'; 4096]).unwrap();
        let err = connect(&path).expect_err("must fail");
        assert!(matches!(err, StoreError::Open { .. }), "{err}");
        assert!(err.to_string().contains("h.db"), "{err}");
    }

    #[test]
    fn a_failing_migration_rolls_back_entirely() {
        // A store at version 1 with a table where migration 2 puts a view: migration 2 fails
        // and nothing of it may remain.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        drop(connect_at(&path, 1).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE result_rows (x INTEGER)")
            .unwrap();
        drop(conn);
        let err = connect(&path).expect_err("must fail");
        assert!(err.to_string().contains("0002_indexes_views"), "{err}");
        let conn = Connection::open(&path).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 1);
        assert!(table_names(&conn, "view").is_empty());
    }

    #[test]
    fn a_database_of_another_application_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE results (x INTEGER)")
            .unwrap();
        drop(conn);
        let before = std::fs::read(&path).unwrap();
        let err = connect(&path).expect_err("must fail");
        assert!(matches!(err, StoreError::NotAStore { .. }), "{err}");
        assert!(err.to_string().contains("tables results"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }
}
