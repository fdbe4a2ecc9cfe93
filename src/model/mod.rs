//! Plain data shared by every stage. This module imports nothing from the crate.

mod config;
pub mod duration;
mod history;
mod judge;
pub mod limits;
mod mark;
mod outcome;
mod review;
mod suite;
mod traffic;
mod vars;

pub use config::*;
pub use history::{AlertRow, RunLabels, TrendQuery, TrendRow};
pub use judge::*;
pub use mark::{Mark, MarkKind, MarkOrigin};
pub use outcome::*;
pub use review::*;
pub use suite::*;
pub use traffic::*;
pub use vars::Vars;

/// A place in a user's file, for error messages (`file:line:col`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Location {
    /// Shared: every case and assertion of a file points at one path.
    pub file: std::sync::Arc<std::path::Path>,
    /// 1-based; 0 when unknown.
    pub line: usize,
    /// 1-based; 0 when unknown.
    pub col: usize,
}

impl Default for Location {
    fn default() -> Self {
        Self {
            file: std::sync::Arc::from(std::path::Path::new("")),
            line: 0,
            col: 0,
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file.display())
        } else {
            write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
        }
    }
}
