//! `evalwatch run`'s arguments (clap derive). `app::run` turns them into its settings at
//! the entry; nothing below it sees these types.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::Severity;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RunFormat {
    Text,
    Json,
    Junit,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Suite files or folders [default: suites/]
    pub paths: Vec<PathBuf>,
    /// Only these providers (repeatable)
    #[arg(long = "provider", value_name = "ID")]
    pub providers: Vec<String>,
    /// Only cases whose id matches this glob (repeatable)
    #[arg(long = "case", value_name = "GLOB")]
    pub cases: Vec<String>,
    /// Only cases with this tag (repeatable; any of them)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Samples per case and provider (overrides the suite's `repeat`; 1 to 1000)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::model::limits::MAX_REPEAT)))]
    pub repeat: Option<u32>,
    /// Most requests in flight across all providers [default: 64]
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Plan and render prompts, call nothing, store nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Continue an interrupted (incomplete) run: run only the jobs it has no result for, into
    /// the same run. A complete or failed run is refused (exit 2)
    #[arg(long, value_name = "RUN_ID", conflicts_with = "dry_run")]
    pub resume: Option<String>,
    /// Do not evaluate alert rules
    #[arg(long)]
    pub no_alerts: bool,
    /// Do not refresh the HTML reports of the suites that ran
    #[arg(long)]
    pub no_reports: bool,
    /// Exit 1 when an alert at or above this severity fires
    #[arg(long, value_enum, default_value_t = Severity::Critical)]
    pub fail_on: Severity,
    /// Output format
    #[arg(long, value_enum, default_value_t = RunFormat::Text)]
    pub format: RunFormat,
    /// Write the formatted output to this file (a text summary still goes to stdout)
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Label the run (repeatable): `release=v2.3.1`, `branch=main`; shown on pages and
    /// in `runs`/`show`, and a filter of `runs --label`
    #[arg(long = "label", value_name = "KEY=VALUE", conflicts_with = "resume")]
    pub labels: Vec<String>,
}
