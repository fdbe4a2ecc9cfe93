//! `evalwatch store`: the history store itself (docs/store.md).

use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct StoreArgs {
    #[command(subcommand)]
    pub command: StoreCommand,
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy a whole history between SQLite and PostgreSQL (either way); idempotent, verified
    Migrate(MigrateArgs),
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The store to copy from: an SQLite file or a postgres://USER@HOST:PORT/DATABASE URL
    #[arg(long, value_name = "STORE")]
    pub from: String,
    /// The store to copy into (created and migrated when new): the other engine
    #[arg(long, value_name = "STORE")]
    pub to: String,
    /// Rows written per transaction
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub batch: usize,
}
