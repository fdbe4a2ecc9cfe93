//! Arguments of `feedback`: users' feedback imported after the fact.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use super::ReadFormat;

#[derive(Debug, Args)]
pub struct FeedbackArgs {
    #[command(subcommand)]
    pub command: FeedbackCommand,
}

#[derive(Debug, Subcommand)]
pub enum FeedbackCommand {
    /// Import feedback (JSONL or CSV: trace_id, time, value, optional comment, feature, user;
    /// or a Langfuse or LangSmith score export with --from), linked to traffic records by
    /// trace id
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
    /// The file is a score export of this tool, JSONL (one score a line) [default: evalwatch's
    /// own fields]
    #[arg(long, value_enum, value_name = "TOOL")]
    pub from: Option<ScoreTool>,
    /// Import only the scores of this name (Langfuse `name`, LangSmith `key`); the others are
    /// skipped and counted [required when the export holds several names]
    #[arg(long, requires = "from")]
    pub name: Option<String>,
    /// What a score's number means: thumbs (1 up, 0 or -1 down) or 1-5 stars [default: thumbs]
    #[arg(long, value_enum, requires = "from")]
    pub scale: Option<ScoreScale>,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    pub format: ReadFormat,
}

/// A feedback tool whose score export `feedback import --from` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScoreTool {
    Langfuse,
    Langsmith,
}

/// What the numbers of a score export mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScoreScale {
    Thumbs,
    Stars,
}
