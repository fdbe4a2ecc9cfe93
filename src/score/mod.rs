//! Scoring: pure functions from an output and a case's assertions to a verdict.

use crate::model::{Case, Score, Suite};

/// What the scorer sees of one completed call.
#[derive(Debug, Clone, Copy)]
pub struct ScoreInput<'a> {
    pub output: &'a str,
    /// The rendered prompt as text.
    pub prompt: &'a str,
    pub latency_ms: Option<f64>,
    pub cost_usd: Option<f64>,
}

/// Errors building a scorer (an assertion that slipped past validation).
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    #[error("build assertion {index} of case `{case_id}`: {message}")]
    Assertion {
        case_id: String,
        index: usize,
        message: String,
    },
}

/// Scores results of one suite, with regexes and JSON schemas compiled once.
pub struct Scorer {}

impl Scorer {
    pub fn new(suite: &Suite) -> Result<Self, ScoreError> {
        let _ = suite;
        todo!()
    }

    /// Score one output of `case` (`case_index` into `suite.cases`).
    pub fn score(&self, case_index: usize, case: &Case, input: &ScoreInput<'_>) -> Score {
        let _ = (case_index, case, input);
        todo!()
    }
}
