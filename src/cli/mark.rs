//! `evalwatch mark`: change markers.

use clap::{Args, Subcommand};

use super::ReadFormat;

#[derive(Debug, Args)]
pub struct MarkArgs {
    #[command(subcommand)]
    pub command: MarkCommand,
}

#[derive(Debug, Subcommand)]
pub enum MarkCommand {
    /// A deployment (of the app, its prompts or its retrieval)
    Deploy(NewMarkArgs),
    /// A model change (a new model, version or provider)
    Model(NewMarkArgs),
    /// A prompt change
    Prompt(NewMarkArgs),
    /// Anything else worth seeing beside the figures
    Note(NewMarkArgs),
    /// List markers, oldest first
    List(ListMarksArgs),
}

#[derive(Debug, Args)]
pub struct NewMarkArgs {
    /// What changed, e.g. "v2.3.1: new retrieval index"
    pub text: String,
    /// When it changed [default: now]: RFC 3339 (2026-12-06T14:30:00+01:00), a UTC date and
    /// time (2026-12-06T14:30, 2026-12-06 14:30), or unix seconds
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// The product feature it concerns [default: all]
    #[arg(long, value_name = "F")]
    pub feature: Option<String>,
    /// The traffic source it concerns [default: all]
    #[arg(long, value_name = "ID")]
    pub source: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListMarksArgs {
    /// Only markers of the last DURATION (7d, 24h) or since a TIME (as `--at`)
    #[arg(long, value_name = "DURATION|TIME")]
    pub since: Option<String>,
    /// Only markers for this feature (and those for all features)
    #[arg(long, value_name = "F")]
    pub feature: Option<String>,
    /// Only markers for this traffic source (and those for all sources)
    #[arg(long, value_name = "ID")]
    pub source: Option<String>,
    /// At most this many (the newest)
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    #[arg(long, value_enum, default_value_t = ReadFormat::Text)]
    pub format: ReadFormat,
}
