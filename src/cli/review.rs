//! `evalwatch review`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::ReadFormat;

/// Address `review serve` binds when not told.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8737";

#[derive(Debug, Args)]
pub struct ReviewArgs {
    #[command(subcommand)]
    pub command: ReviewCommand,
}

#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// Sample results (or production traffic) into a review sheet: reports/review/<sheet_id>.html
    Sample {
        /// Sample this run (a unique prefix is enough)
        #[arg(long, value_name = "ID", conflicts_with_all = ["since", "from"])]
        run: Option<String>,
        /// Sample the runs (or traffic records) of this window (24h, 7d, 30d, 2w, all) [default: 7d]
        #[arg(long, value_name = "WINDOW")]
        since: Option<String>,
        /// The same as --since (the word `traffic` uses)
        #[arg(long, value_name = "WINDOW", conflicts_with_all = ["since", "run"])]
        window: Option<String>,
        /// Only this suite
        #[arg(long, value_name = "S", conflicts_with = "from")]
        suite: Option<String>,
        /// Sample the stored records of a traffic source instead of suite results: traffic:ID
        #[arg(long, value_name = "traffic:ID")]
        from: Option<String>,
        /// Items in the sheet [default: the suite's `review: sample`, else 50]
        #[arg(long, value_name = "N")]
        n: Option<usize>,
        /// Seed of the sample [default: the suite's `review: seed`, else 0]
        #[arg(long, value_name = "N")]
        seed: Option<u64>,
    },
    /// Store the grades a sheet exported (idempotent; rejects ids not of that sheet)
    Import {
        /// The grades JSON file
        file: PathBuf,
    },
    /// Serve the open sheets on a loopback address and receive grades directly
    Serve {
        /// Address to bind (keep it on loopback: the token is the only guard)
        #[arg(long, value_name = "ADDR", default_value = DEFAULT_ADDR)]
        addr: String,
    },
    /// Agreement of human and automatic verdicts, human quality over time, and of reviewers
    /// with users' votes on traffic
    Stats {
        /// Only this suite
        #[arg(long, value_name = "S", conflicts_with = "from")]
        suite: Option<String>,
        /// Only the traffic sheets of this source: traffic:ID
        #[arg(long, value_name = "traffic:ID")]
        from: Option<String>,
        #[arg(long, value_enum, default_value_t = ReadFormat::Text)]
        format: ReadFormat,
    },
    /// Review sheets and their progress, newest first
    List {
        /// Closed sheets too
        #[arg(long)]
        all: bool,
        #[arg(long, value_enum, default_value_t = ReadFormat::Text)]
        format: ReadFormat,
    },
    /// The current grades of a sheet; with --html, write its page again from the store
    Show {
        /// Sheet id (a unique prefix is enough)
        sheet_id: String,
        #[arg(long, value_enum, default_value_t = ReadFormat::Text)]
        format: ReadFormat,
        /// Write the sheet's page (reports/review/<sheet_id>.html) again from the store
        #[arg(long)]
        html: bool,
    },
    /// Close a sheet without grading the rest: its results may be sampled again
    Close {
        /// Sheet id (a unique prefix is enough)
        sheet_id: String,
    },
}
