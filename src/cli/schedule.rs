//! `evalwatch schedule`.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};

use super::ReadFormat;
use crate::schedule::{self as sched, CatchUp};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ScheduleArgs {
    #[command(subcommand)]
    pub command: Option<ScheduleCommand>,
    /// Suite files or folders [default: suites/]
    pub paths: Vec<PathBuf>,
    /// Run whatever is due now and exit (for cron, Kubernetes CronJob or CI)
    #[arg(long)]
    pub once: bool,
    /// Each suite's next fire times and last run
    #[arg(long, conflicts_with = "once")]
    pub list: bool,
    /// How many next fire times `--list` shows
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub count: usize,
    /// A window missed by more than the grace period (the scheduler was down): run it once
    /// now, or skip it. Recorded either way
    #[arg(long, value_parser = parse_catch_up, default_value = "once", value_name = "once|skip")]
    pub catch_up: CatchUp,
    /// How late a window may start and still count as on time
    #[arg(long, value_parser = parse_duration, default_value = "15m", value_name = "DURATION")]
    pub grace: Duration,
    /// Start each window up to this much later (a stable offset per suite and window), so
    /// that suites on the same cron do not all start at once. The daemon only
    #[arg(long, value_parser = parse_duration, default_value = "0", value_name = "DURATION")]
    pub jitter: Duration,
    /// How often the daemon looks for changed suite files
    #[arg(long, value_parser = parse_duration, default_value = "30s", value_name = "DURATION")]
    pub poll: Duration,
    /// Output format of `--list`
    #[arg(long, value_enum, default_value_t = ReadFormat::Text)]
    pub format: ReadFormat,
    /// For tests: take this RFC 3339 instant as the current time (`--once`, `--list`)
    #[arg(long, hide = true, value_parser = parse_now, value_name = "RFC3339")]
    pub now: Option<DateTime<Utc>>,
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Last and next run of each suite; overdue suites are marked (exit 2 when a suite cannot
    /// be scheduled, 0 otherwise)
    Status {
        /// Suite files or folders [default: suites/]
        paths: Vec<PathBuf>,
        /// How late a window may be before its suite counts as overdue
        #[arg(long, value_parser = parse_duration, default_value = "15m", value_name = "DURATION")]
        grace: Duration,
        #[arg(long, value_enum, default_value_t = ReadFormat::Text)]
        format: ReadFormat,
        /// For tests: take this RFC 3339 instant as the current time
        #[arg(long, hide = true, value_parser = parse_now, value_name = "RFC3339")]
        now: Option<DateTime<Utc>>,
    },
    /// Print ready-to-use files that call `evalwatch schedule --once` on a tick
    Emit {
        #[arg(value_enum)]
        target: EmitTarget,
        /// Suite files or folders to pass on [default: suites/]
        paths: Vec<PathBuf>,
        /// How often to look for due suites (as fine as your finest schedule): 1m, 5m, 15m,
        /// 30m, 1h, 2h, 6h, 12h, 1d
        #[arg(long, default_value = "5m", value_name = "DURATION")]
        every: String,
        /// The repository whose GitHub releases hold this version's binary
        /// (https://github.com/OWNER/evalwatch): the github-actions workflow installs it from
        /// there, the kubernetes file names it [default: Cargo.toml's `repository`, if any]
        #[arg(long, value_name = "URL")]
        release_url: Option<String>,
        /// Write the files into this folder instead of printing them
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EmitTarget {
    Systemd,
    Cron,
    Kubernetes,
    GithubActions,
}

fn parse_catch_up(s: &str) -> Result<CatchUp, String> {
    s.parse().map_err(|e: sched::ScheduleError| e.to_string())
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    sched::parse_duration(s).map_err(|e| e.to_string())
}

fn parse_now(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("read `{s}`: not an RFC 3339 time ({e})"))
}
