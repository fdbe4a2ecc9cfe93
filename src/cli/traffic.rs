//! Arguments of the traffic commands: `ingest`, `traffic`, `prune`.

use clap::{Args, ValueEnum};

use super::ReadFormat;

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The source id (from `traffic:` in evalwatch.yaml), then files, globs or folders to
    /// read instead of its `path`; `-` reads standard input. With one source, the id may be
    /// left out.
    #[arg(value_name = "SOURCE|PATH")]
    pub args: Vec<String>,
    /// Keep reading: new lines of growing files, rotated files, new files of the glob
    #[arg(long)]
    pub follow: bool,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    pub format: ReadFormat,
}

/// A window of `traffic`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Window {
    #[value(name = "1h")]
    Hour,
    #[value(name = "24h")]
    Day,
    #[value(name = "7d")]
    Week,
    #[value(name = "30d")]
    Month,
}

/// A label `traffic` splits by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum By {
    Feature,
    Model,
    Segment,
    Region,
}

#[derive(Debug, Args)]
pub struct TrafficArgs {
    /// The source id [default: the only source]
    pub source: Option<String>,
    /// The window, compared with the one before it
    #[arg(long, value_enum, default_value = "24h")]
    pub window: Window,
    /// Also show each figure per feature, model, segment or region
    #[arg(long, value_enum)]
    pub by: Option<By>,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    pub format: ReadFormat,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Say what would be removed, remove nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    pub format: ReadFormat,
}
