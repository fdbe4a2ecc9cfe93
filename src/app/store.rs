//! `evalwatch store migrate`, and the plain refusal every other command gives a PostgreSQL
//! store until the commands are wired to it (docs/store.md).

use super::{Ctx, Failure, exit};
use crate::cli::Command;
use crate::cli::schedule::ScheduleCommand;
use crate::cli::store::{MigrateArgs, StoreArgs, StoreCommand};
use crate::store::pg::{Endpoint, PgError, is_postgres_url, migrate_history, redact_url};

pub fn run(ctx: &Ctx, args: &StoreArgs) -> anyhow::Result<u8> {
    match &args.command {
        StoreCommand::Migrate(a) => migrate(ctx, a),
    }
}

/// A store error as the command's failure: the user's to fix (exit 2) or not (exit 3).
fn failure(err: PgError) -> anyhow::Error {
    if err.is_invalid_input() {
        Failure::invalid(format!("store migrate: {err}"))
    } else {
        anyhow::Error::new(err).context("store migrate")
    }
}

fn migrate(ctx: &Ctx, a: &MigrateArgs) -> anyhow::Result<u8> {
    let from = Endpoint::parse(&a.from).map_err(failure)?;
    let to = Endpoint::parse(&a.to).map_err(failure)?;
    match (&from, &to) {
        (Endpoint::Sqlite(_), Endpoint::Sqlite(_)) => {
            return Err(Failure::invalid(
                "store migrate: both stores are SQLite files; copy one with `sqlite3 FROM \".backup TO\"` (docs/store.md), or give a postgres:// URL",
            ));
        }
        (Endpoint::Postgres(_), Endpoint::Postgres(_)) => {
            return Err(Failure::invalid(
                "store migrate: both stores are PostgreSQL; copy one with pg_dump and pg_restore (docs/store.md), or give an SQLite file",
            ));
        }
        _ => {}
    }
    if a.batch == 0 {
        return Err(Failure::invalid(
            "store migrate: --batch must be at least 1",
        ));
    }
    let (from_shown, to_shown) = (shown(ctx, &from), shown(ctx, &to));
    ctx.printer.note(&format!(
        "copying the history of {from_shown} into {to_shown}"
    ));
    let printer = ctx.printer;
    let mut last_table = String::new();
    let mut progress = |table: &str, done: u64, total: u64| {
        if table != last_table || done == total {
            printer.detail(&format!("  {table}: {done} of {total} rows"));
            table.clone_into(&mut last_table);
        }
    };
    let summary = migrate_history(&from, &to, a.batch, &mut progress).map_err(failure)?;
    let rows: u64 = summary.tables.iter().map(|t| t.rows).sum();
    let added: u64 = summary.tables.iter().map(|t| t.added).sum();
    for t in &summary.tables {
        ctx.printer.note(&format!(
            "  {:<28} {:>10} rows, {:>10} added",
            t.table, t.rows, t.added
        ));
    }
    ctx.printer.result(&format!(
        "copied {from_shown} into {to_shown}: {} tables, {rows} rows, {added} added by this run; verified: row counts match, results {}; migration level {}",
        summary.tables.len(),
        summary.checksum,
        summary.level
    ));
    Ok(exit::OK)
}

fn shown(ctx: &Ctx, e: &Endpoint) -> String {
    match e {
        Endpoint::Sqlite(p) => ctx.shown(p),
        Endpoint::Postgres(t) => t.shown().to_owned(),
    }
}

/// Until the commands read and write PostgreSQL, a command given a PostgreSQL store (by
/// `--db`, `EVALWATCH_DB` or `store:` of evalwatch.yaml) exits 2 saying what works today;
/// it never falls back to an SQLite file.
pub fn refuse_postgres(ctx: &Ctx, command: &Command) -> anyhow::Result<()> {
    let name = match command {
        // Commands that never open the store, and the one that takes its stores itself.
        Command::Init(_) | Command::Validate(_) | Command::Store(_) => return Ok(()),
        // `schedule emit` writes files that name the store; it never opens it.
        Command::Schedule(a) if matches!(a.command, Some(ScheduleCommand::Emit { .. })) => {
            return Ok(());
        }
        Command::Run(_) => "run",
        Command::Runs(_) => "runs",
        Command::Show(_) => "show",
        Command::Report(_) => "report",
        Command::Compare(_) => "compare",
        Command::Export(_) => "export",
        Command::Alerts(_) => "alerts",
        Command::Baseline(_) => "baseline",
        Command::Schedule(_) => "schedule",
        Command::Review(_) => "review",
        Command::Ingest(_) => "ingest",
        Command::Collect(_) => "collect",
        Command::Traffic(_) => "traffic",
        Command::Prune(_) => "prune",
        Command::Mark(_) => "mark",
        Command::Feedback(_) => "feedback",
    };
    let store = match &ctx.db {
        Some(db) => Some(db.to_string_lossy().into_owned()),
        // The project's `store:`; a project that does not load is the command's to report.
        None => crate::suite::load_project(ctx.config.as_deref(), &ctx.cwd)
            .ok()
            .and_then(|p| p.store)
            .map(|s| s.to_string_lossy().into_owned()),
    };
    match store {
        Some(url) if is_postgres_url(&url) => Err(Failure::invalid(format!(
            "{name}: the store {} is PostgreSQL, and this evalwatch reads and writes PostgreSQL only in `evalwatch store migrate` so far; `{name}` needs an SQLite store: copy the history with `evalwatch store migrate --from {} --to evalwatch.db` and point --db at the file (docs/store.md)",
            shown_url(&url),
            shown_url(&url),
        ))),
        _ => Ok(()),
    }
}

/// A URL as shown: parsed (no password), else redacted.
fn shown_url(url: &str) -> String {
    crate::store::pg::PgTarget::parse(url)
        .map_or_else(|_| redact_url(url), |t| t.shown().to_owned())
}
