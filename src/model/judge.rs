//! What the judging stage hands back for one result: judged assertion outcomes and the cache
//! entries to store.

use serde::{Deserialize, Serialize};

use super::AssertionOutcome;

/// One answer of a judge (or one embedding similarity) to keep in the judge cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JudgeCacheEntry {
    /// Hex SHA-256 of the judge, the rubric hash and the inputs.
    pub key: String,
    /// `provider/model` of the judge.
    pub judge: String,
    pub rubric_hash: String,
    /// The judge's raw answer (for `semantic`: the cosine, as JSON).
    pub answer: String,
}

/// Which judge and rubric scored an assertion type in a run (a trend breaks where it changes).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct JudgeSignature {
    /// The assertion type (`llm-rubric`, `factuality`, `hallucination`, `semantic`).
    pub assertion: String,
    pub provider: String,
    pub model: String,
    pub rubric_version: String,
    pub rubric_hash: String,
}

impl JudgeSignature {
    /// `type: provider/model rubric-version#hash`, for labels.
    #[must_use]
    pub fn label(&self) -> String {
        format!(
            "{}: {}/{} {}#{}",
            self.assertion, self.provider, self.model, self.rubric_version, self.rubric_hash
        )
    }
}

/// The judged assertions of one result: (index into the case's assertions, outcome), and the
/// new cache entries.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Judged {
    pub outcomes: Vec<(usize, AssertionOutcome)>,
    pub cache: Vec<JudgeCacheEntry>,
}
