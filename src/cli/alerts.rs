//! `evalwatch alerts` and `evalwatch baseline`.

use clap::{Args, Subcommand};

use super::{ReadFormat, Severity};

#[derive(Debug, Args)]
pub struct AlertsArgs {
    #[command(subcommand)]
    pub command: AlertsCommand,
}

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Evaluate every suite's alert rules (missed runs included) and notify the sinks
    Check {
        /// Suite files or folders [default: suites/]
        paths: Vec<std::path::PathBuf>,
        /// Exit 1 when an alert at or above this severity is open
        #[arg(long, value_enum, default_value_t = Severity::Critical)]
        fail_on: Severity,
    },
    /// Open and recent alerts
    List {
        #[arg(long, value_enum, default_value_t = ReadFormat::Text)]
        format: ReadFormat,
    },
}

#[derive(Debug, Args)]
pub struct BaselineArgs {
    #[command(subcommand)]
    pub command: BaselineCommand,
}

#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// Bless a run as the baseline of its suite
    Pin {
        /// Run id (a unique prefix is enough)
        run_id: String,
    },
}
