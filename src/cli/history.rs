//! `evalwatch runs` and `evalwatch show`.

use clap::Args;

use super::ReadFormat;

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Only this suite
    #[arg(long)]
    pub suite: Option<String>,
    /// At most this many runs
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Only runs labelled so (`run --label KEY=VALUE`)
    #[arg(long, value_name = "KEY=VALUE")]
    pub label: Option<String>,
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
