//! Arguments of `report`, `compare` and `export` (clap derive); `app::report` turns them into
//! settings.

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Window of history to chart (e.g. 24h, 7d, 30d, 90d, all)
    #[arg(long, default_value = "30d")]
    pub since: String,
    /// Also write the page of this run (any run; the newest of each suite always get one)
    #[arg(long = "run", value_name = "RUN_ID")]
    pub runs: Vec<String>,
    /// Folder to write (default: `reports:` of evalwatch.yaml, else reports/)
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The earlier run (a unique prefix is enough)
    pub run_a: String,
    /// The later run
    pub run_b: String,
    /// text or json
    #[arg(long, default_value = "text")]
    pub format: String,
    /// A latency change is called significant only when its 95% interval excludes zero and it
    /// is at least this many milliseconds ...
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_MIN_LATENCY_MS)]
    pub min_latency_change_ms: f64,
    /// ... and at least this percentage of the earlier run's mean latency
    #[arg(long, value_name = "PCT", default_value_t = DEFAULT_MIN_LATENCY_PCT)]
    pub min_latency_change_pct: f64,
}

/// Smallest latency change `compare` calls significant, milliseconds (practical threshold).
pub const DEFAULT_MIN_LATENCY_MS: f64 = 50.0;
/// Smallest latency change `compare` calls significant, percent of the earlier run's mean.
pub const DEFAULT_MIN_LATENCY_PCT: f64 = 10.0;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// json, csv, junit or prometheus
    #[arg(long)]
    pub format: String,
    /// Write here instead of stdout
    #[arg(long, conflicts_with = "textfile")]
    pub out: Option<PathBuf>,
    /// Prometheus only: write DIR/evalwatch.prom for node_exporter's textfile collector
    /// (atomically: a temporary file renamed into place)
    #[arg(long, value_name = "DIR")]
    pub textfile: Option<PathBuf>,
    /// Only this suite
    #[arg(long)]
    pub suite: Option<String>,
    /// Only runs that started in this window (24h, 7d, all). Default: every run for json and
    /// csv, the newest run of each suite for junit; prometheus always reads the newest
    #[arg(long)]
    pub since: Option<String>,
}
