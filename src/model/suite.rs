//! A suite after loading and validation: templates checked, defaults merged, includes read.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Location, ProviderSpec};

/// One chat message template (`role`, `content` as minijinja source).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageTemplate {
    pub role: String,
    pub content: String,
}

/// The prompt of a suite: a single user message, or a list of messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PromptTemplate {
    Text(String),
    Messages(Vec<MessageTemplate>),
}

/// Text normalisations applied before comparing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalize {
    Lowercase,
    Trim,
    CollapseWhitespace,
    StripPunctuation,
}

impl Normalize {
    pub const ALL: [&'static str; 4] = [
        "lowercase",
        "trim",
        "collapse_whitespace",
        "strip_punctuation",
    ];
}

/// String-similarity algorithms of the `similarity` assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SimilarityAlgo {
    Levenshtein,
    Damerau,
    Jaro,
    JaroWinkler,
    SorensenDice,
    TokenJaccard,
}

impl SimilarityAlgo {
    pub const ALL: [&'static str; 6] = [
        "levenshtein",
        "damerau",
        "jaro",
        "jaro-winkler",
        "sorensen-dice",
        "token-jaccard",
    ];

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "levenshtein" => Self::Levenshtein,
            "damerau" => Self::Damerau,
            "jaro" => Self::Jaro,
            "jaro-winkler" => Self::JaroWinkler,
            "sorensen-dice" => Self::SorensenDice,
            "token-jaccard" => Self::TokenJaccard,
            _ => return None,
        })
    }
}

/// Tolerance of the `numeric` assertion.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Tolerance {
    Absolute(f64),
    /// Relative to the expected value (0.01 = 1%).
    Relative(f64),
}

/// Unit of the `length` assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LengthUnit {
    Chars,
    Words,
}

/// What an assertion checks, with its validated parameters. `value` fields are already
/// resolved (an omitted `value` takes the case's `expected` where that makes sense).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Check {
    Equals {
        value: String,
    },
    Contains {
        value: String,
    },
    IContains {
        value: String,
    },
    ContainsAny {
        values: Vec<String>,
    },
    ContainsAll {
        values: Vec<String>,
    },
    IContainsAny {
        values: Vec<String>,
    },
    IContainsAll {
        values: Vec<String>,
    },
    StartsWith {
        value: String,
    },
    EndsWith {
        value: String,
    },
    /// The pattern was compiled once at validation; recompile with `regex::Regex::new`.
    Regex {
        pattern: String,
    },
    IsJson {
        schema: Option<serde_json::Value>,
    },
    /// `path` is a JSON pointer (`/a/0/b`) or a simple JSONPath (`$.a[0].b`).
    JsonPath {
        path: String,
        value: Option<serde_json::Value>,
    },
    Numeric {
        value: f64,
        pattern: Option<String>,
        tolerance: Tolerance,
    },
    Similarity {
        algorithm: SimilarityAlgo,
        value: String,
        /// Minimum similarity in [0,1] to pass (default 0.8).
        threshold: f64,
    },
    /// Edit distance; passes when at most `max_distance` (default 5).
    Levenshtein {
        value: String,
        max_distance: usize,
    },
    Length {
        min: Option<usize>,
        max: Option<usize>,
        unit: LengthUnit,
    },
    /// Maximum latency in ms.
    Latency {
        max_ms: f64,
    },
    /// Maximum cost in USD.
    Cost {
        max_usd: f64,
    },
    IsRefusal,
    /// The output is one of `labels`; `value` is the expected label.
    Classification {
        labels: Vec<String>,
        value: String,
    },
    /// Model-assisted assertions (`llm-rubric`, `factuality`, `hallucination`, `semantic`),
    /// carried with their raw parameters for the scoring stage that knows them.
    Model {
        kind: String,
        params: serde_json::Map<String, serde_json::Value>,
    },
}

/// One assertion of a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assertion {
    /// As written, including a `not-` prefix (`not-contains`).
    pub type_name: String,
    pub negate: bool,
    pub check: Check,
    pub weight: f64,
    /// Per-assertion pass threshold where the type uses one.
    pub threshold: Option<f64>,
    /// A named metric this assertion's score is aggregated into per run.
    pub metric: Option<String>,
    pub normalize: Vec<Normalize>,
    pub location: Location,
}

/// One test case, defaults merged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub id: String,
    pub tags: Vec<String>,
    /// Template variables.
    pub vars: BTreeMap<String, serde_json::Value>,
    pub expected: Option<String>,
    /// Grounding passages.
    pub context: Vec<String>,
    pub asserts: Vec<Assertion>,
    /// With a threshold, the case passes when its weighted mean score reaches it.
    pub threshold: Option<f64>,
    /// Hex hash of the case's content (vars, expected, context, assertions), so that edits
    /// are visible in history.
    pub hash: String,
    pub location: Location,
}

/// An absolute floor on a run metric (`gates:`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gate {
    pub metric: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// What the scheduler does with a window missed by more than its grace period (it was down,
/// or busy): run it once now, or skip it. Either way it is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    #[default]
    Once,
    Skip,
}

impl CatchUp {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Once => "once",
            Self::Skip => "skip",
        }
    }
}

/// `review:` block of a suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewSettings {
    pub sample: usize,
    pub seed: u64,
}

/// A suite, ready to plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suite {
    pub name: String,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub schedule: Option<String>,
    pub timezone: Option<String>,
    /// `catch_up:` for the scheduler; None takes `schedule --catch-up` (default `once`).
    pub catch_up: Option<CatchUp>,
    /// `jitter:` for the scheduler's daemon; None takes `schedule --jitter` (default 0).
    pub jitter: Option<std::time::Duration>,
    /// The suite file.
    pub source: PathBuf,
    /// Resolved providers, in the order listed.
    pub providers: Vec<ProviderSpec>,
    pub system: Option<String>,
    pub prompt: PromptTemplate,
    pub repeat: u32,
    pub cases: Vec<Case>,
    pub gates: Vec<Gate>,
    /// Alert rules, raw (the alert stage interprets them).
    pub alerts: Vec<serde_json::Value>,
    pub review: Option<ReviewSettings>,
    /// Hex hash of the whole suite's content.
    pub hash: String,
}
