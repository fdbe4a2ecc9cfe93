//! The PostgreSQL side of the store (issue #22), built beside SQLite: connecting (URL,
//! password from the environment or a password file, never shown), the same numbered
//! migrations applied once under a lock, the writer's binary `COPY`, reads that take one
//! statement here where SQLite takes one a run, copying a whole history between the two
//! engines (`evalwatch store migrate`), and leases that hold across hosts. `Store` (and
//! `store::db::Db` under it) chooses the engine when it opens; every command works on both
//! (docs/store.md).

pub mod cell;
pub mod copy;
pub mod lease;
pub mod read;
pub mod results;
pub mod schema;
pub mod target;
pub mod tls;

pub use cell::Cell;
pub use copy::{Endpoint, Summary, TableCopy, copy_rows, migrate_history, write_pg};
pub use lease::{Acquired, LeaseOutcome, PgLeases};
pub use target::{PgTarget, is_postgres_url, redact_url};

/// Failures of the PostgreSQL store. Messages read after "failed to ..."; none carries the
/// password (URLs are shown without it; server texts are scrubbed of it).
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The URL did not parse or lacks a part (invalid input).
    #[error("read the store URL {shown}: {reason}")]
    Url { shown: String, reason: String },
    /// The password file could not be used (invalid input).
    #[error("read the password file {path}: {reason}")]
    Pgpass { path: String, reason: String },
    #[error("connect to {shown}: {reason}")]
    Connect { shown: String, reason: String },
    #[error("{what} on {shown}: {reason}")]
    Query {
        shown: String,
        what: String,
        reason: String,
    },
    #[error("apply migration {name} on {shown}: {reason}")]
    Migration {
        shown: String,
        name: String,
        reason: String,
    },
    /// What was asked cannot be done as asked (invalid input): the message says why and
    /// what to do.
    #[error("{0}")]
    Refused(String),
    /// The copy finished but the two stores do not agree.
    #[error("verify the copy: {0}")]
    Mismatch(String),
    #[error("{what} in the SQLite store {path}: {reason}")]
    Sqlite {
        path: String,
        what: String,
        reason: String,
    },
}

impl PgError {
    /// Whether the error is the user's to fix (exit 2) rather than a failure to complete.
    #[must_use]
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Self::Url { .. } | Self::Pgpass { .. } | Self::Refused(_)
        )
    }
}

/// The text of a client error: the server's message with its detail and hint when the
/// server sent one, else the client's own words and their causes.
#[must_use]
pub fn reason(err: &postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        let mut text = db.message().to_owned();
        if let Some(detail) = db.detail() {
            text.push_str(" (");
            text.push_str(detail);
            text.push(')');
        }
        if let Some(hint) = db.hint() {
            text.push_str("; ");
            text.push_str(hint);
        }
        return text;
    }
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}
