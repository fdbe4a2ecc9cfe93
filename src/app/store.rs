//! `evalwatch store migrate` (docs/store.md).

use super::{Ctx, Failure, exit};
use crate::cli::store::{MigrateArgs, StoreArgs, StoreCommand};
use crate::store::pg::{Endpoint, PgError, migrate_history};

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
