//! Command-line arguments (clap derive). No I/O here; clap types never leave this folder and
//! `app`, which turns them into settings. One file per command (or family of commands); this
//! one holds the command line itself and the value enums that several commands share.

pub mod alerts;
pub mod collect;
pub mod feedback;
pub mod history;
pub mod init;
pub mod mark;
pub mod report;
pub mod review;
mod run;
pub mod schedule;
pub mod store;
pub mod traffic;
pub mod validate;

pub use run::{RunArgs, RunFormat};

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "evalwatch",
    version,
    about = "Keeps watch over AI systems in production: runs YAML eval suites, scores every output, keeps history in SQLite.",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// The store of every command, traffic included: an SQLite file or a
    /// `postgres://USER@HOST:PORT/DATABASE` URL (docs/store.md) [default: `store:` in
    /// evalwatch.yaml, else evalwatch.db]
    #[arg(long, global = true, env = "EVALWATCH_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Project config [default: ./evalwatch.yaml when present]
    #[arg(long, global = true, env = "EVALWATCH_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Print only problems and the final result (`run`: one verdict line per run)
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more detail (every failure, each retry)
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Never use colour (also honoured: `NO_COLOR`)
    #[arg(long, global = true)]
    pub no_color: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scaffold evalwatch.yaml and suites/example.yaml (runs offline)
    Init(init::InitArgs),
    /// Check suites and config; print every error at once as file:line:col: message
    Validate(validate::ValidateArgs),
    /// Run suites, store the results, check gates
    Run(RunArgs),
    /// History of runs, newest first
    Runs(history::RunsArgs),
    /// One run: metrics, failures, flips against the previous complete run
    Show(history::ShowArgs),
    /// Write reports/index.html and one trend page per suite
    Report(report::ReportArgs),
    /// Per-case diff and metric deltas of two runs, with significance
    Compare(report::CompareArgs),
    /// Export runs and results as json, csv, junit or prometheus
    Export(report::ExportArgs),
    /// Evaluate alert rules (missed runs included) and notify; list alerts
    Alerts(alerts::AlertsArgs),
    /// Bless a run as the baseline of its suite
    Baseline(alerts::BaselineArgs),
    /// Run suites whose cron is due; never overlaps a suite with itself
    Schedule(schedule::ScheduleArgs),
    /// Human review: sample results into an HTML sheet, import grades, serve sheets, stats
    Review(review::ReviewArgs),
    /// Read production traffic (logs, OTLP/JSON files, stdin) into the store
    Ingest(traffic::IngestArgs),
    /// Receive OpenTelemetry spans over OTLP/HTTP and store them as traffic
    Collect(collect::CollectArgs),
    /// The four pillars of a traffic source for a window, against the window before
    Traffic(traffic::TrafficArgs),
    /// Apply the traffic sources' retention
    Prune(traffic::PruneArgs),
    /// Record a change (deploy, model, prompt, note) to show beside the figures; list them
    Mark(mark::MarkArgs),
    /// Users' feedback on traffic records: import it after the fact
    Feedback(feedback::FeedbackArgs),
    /// The history store: copy it between SQLite and PostgreSQL
    Store(store::StoreArgs),
}

/// Alert severities, lowest first (the command-line face of `model::Severity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl From<Severity> for crate::model::Severity {
    fn from(s: Severity) -> Self {
        match s {
            Severity::Info => Self::Info,
            Severity::Warning => Self::Warning,
            Severity::Critical => Self::Critical,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReadFormat {
    Text,
    Json,
}
