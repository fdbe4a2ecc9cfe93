//! Arguments of `feedback`: users' feedback imported after the fact.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::ReadFormat;

#[derive(Debug, Args)]
pub struct FeedbackArgs {
    #[command(subcommand)]
    pub command: FeedbackCommand,
}

#[derive(Debug, Subcommand)]
pub enum FeedbackCommand {
    /// Import feedback (JSONL or CSV: trace_id, time, value, optional comment, feature, user),
    /// linked to traffic records by trace id
    Import(ImportFeedbackArgs),
    /// Negative feedback of the last week, grouped by feature, with the comments' most
    /// frequent terms and the records' trace ids
    Digest(DigestArgs),
}

#[derive(Debug, Args)]
pub struct DigestArgs {
    /// The last 7 days (the digest's period)
    #[arg(long)]
    pub week: bool,
    /// The traffic source [default: the only source]
    #[arg(long)]
    pub source: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    pub format: ReadFormat,
}

#[derive(Debug, Args)]
pub struct ImportFeedbackArgs {
    /// The file: `.csv` is read as CSV with a header row, anything else as JSONL
    pub file: PathBuf,
    /// The traffic source the feedback belongs to [default: the only source]
    #[arg(long)]
    pub source: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    pub format: ReadFormat,
}
