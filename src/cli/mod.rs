//! Command-line arguments (clap derive). No I/O here; clap types never leave this file and `app`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub mod collect;
pub mod traffic;

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
    /// SQLite history file [default: `store:` in evalwatch.yaml, else evalwatch.db]
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
    Init(InitArgs),
    /// Check suites and config; print every error at once as file:line:col: message
    Validate(ValidateArgs),
    /// Run suites, store the results, check gates
    Run(RunArgs),
    /// History of runs, newest first
    Runs(RunsArgs),
    /// One run: metrics, failures, flips against the previous complete run
    Show(ShowArgs),
    /// Write reports/index.html and one trend page per suite
    Report(crate::app::report::ReportArgs),
    /// Per-case diff and metric deltas of two runs, with significance
    Compare(crate::app::report::CompareArgs),
    /// Export runs and results as json, csv, junit or prometheus
    Export(crate::app::report::ExportArgs),
    /// Evaluate alert rules (missed runs included) and notify; list alerts
    Alerts(crate::app::alerts::AlertsArgs),
    /// Bless a run as the baseline of its suite
    Baseline(crate::app::alerts::BaselineArgs),
    /// Run suites whose cron is due; never overlaps a suite with itself
    Schedule(crate::app::schedule::ScheduleArgs),
    /// Human review: sample results into an HTML sheet, import grades, serve sheets, stats
    Review(crate::app::review::ReviewArgs),
    /// Read production traffic (logs, OTLP/JSON files, stdin) into the store
    Ingest(traffic::IngestArgs),
    /// Receive OpenTelemetry spans over OTLP/HTTP and store them as traffic
    Collect(collect::CollectArgs),
    /// The four pillars of a traffic source for a window, against the window before
    Traffic(traffic::TrafficArgs),
    /// Apply the traffic sources' retention
    Prune(traffic::PruneArgs),
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

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Folder to scaffold in
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Overwrite existing files
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Suite files or folders [default: suites/]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RunFormat {
    Text,
    Json,
    Junit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReadFormat {
    Text,
    Json,
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
    /// Continue an interrupted run: run only the jobs it has no result for, into the same run
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
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Only this suite
    #[arg(long)]
    pub suite: Option<String>,
    /// At most this many runs
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    #[arg(long, value_enum, default_value_t = ReadFormat::Text)]
    pub format: ReadFormat,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Run id (a unique prefix is enough)
    pub run_id: String,
    #[arg(long, value_enum, default_value_t = ReadFormat::Text)]
    pub format: ReadFormat,
    /// Show at most this many failures in text
    #[arg(long, default_value_t = 20)]
    pub failures: usize,
}
