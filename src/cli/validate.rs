//! `evalwatch validate`.

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Suite files or folders [default: suites/]
    pub paths: Vec<PathBuf>,
}
