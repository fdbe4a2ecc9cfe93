//! A suite after loading and validation: templates checked, defaults merged, includes read.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Location, ProviderSpec, Vars};

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
    /// Content words matched softly (character-trigram Dice of each word's best match).
    SoftTokens,
}

impl SimilarityAlgo {
    pub const ALL: [&'static str; 7] = [
        "levenshtein",
        "damerau",
        "jaro",
        "jaro-winkler",
        "sorensen-dice",
        "token-jaccard",
        "soft-tokens",
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
            "soft-tokens" => Self::SoftTokens,
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

/// How the samples of a case (`repeat: N`) on one provider make the case's verdict
/// (`repeat_policy:`). Only scored samples vote (passed or failed); errored and unscorable
/// samples do not.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(try_from = "serde_json::Value", into = "serde_json::Value")]
pub enum RepeatPolicy {
    /// Every scored sample passed.
    #[default]
    All,
    /// Strictly more than half of the scored samples passed (a tie fails).
    Majority,
    /// At least one scored sample passed.
    Any,
    /// The share of scored samples that passed is at least this, in (0, 1].
    MinRate(f64),
}

impl RepeatPolicy {
    pub const NAMES: [&'static str; 3] = ["all", "majority", "any"];

    /// `all`, `majority`, `any`, or a minimum pass rate in (0, 1] such as `0.8`.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "all" => Some(Self::All),
            "majority" => Some(Self::Majority),
            "any" => Some(Self::Any),
            other => other.parse::<f64>().ok().and_then(Self::min_rate),
        }
    }

    /// A minimum pass rate; None unless in (0, 1].
    #[must_use]
    pub fn min_rate(rate: f64) -> Option<Self> {
        (rate > 0.0 && rate <= 1.0).then_some(Self::MinRate(rate))
    }

    /// The verdict of `passed` and `failed` scored samples: None when nothing was scored.
    #[must_use]
    pub fn decide(self, passed: u64, failed: u64) -> Option<bool> {
        let scored = passed + failed;
        if scored == 0 {
            return None;
        }
        Some(match self {
            Self::All => failed == 0,
            Self::Majority => passed > failed,
            Self::Any => passed > 0,
            #[allow(clippy::cast_precision_loss)]
            Self::MinRate(rate) => passed as f64 / scored as f64 >= rate,
        })
    }
}

impl std::fmt::Display for RepeatPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::All => f.write_str("all"),
            Self::Majority => f.write_str("majority"),
            Self::Any => f.write_str("any"),
            Self::MinRate(r) => write!(f, "{r}"),
        }
    }
}

impl From<RepeatPolicy> for serde_json::Value {
    fn from(p: RepeatPolicy) -> Self {
        match p {
            RepeatPolicy::MinRate(r) => Self::from(r),
            other => Self::String(other.to_string()),
        }
    }
}

impl TryFrom<serde_json::Value> for RepeatPolicy {
    type Error = String;

    fn try_from(v: serde_json::Value) -> Result<Self, String> {
        let parsed = match &v {
            serde_json::Value::String(s) => Self::parse(s),
            serde_json::Value::Number(n) => n.as_f64().and_then(Self::min_rate),
            _ => None,
        };
        parsed.ok_or_else(|| {
            format!("a repeat policy is `all`, `majority`, `any` or a rate in (0, 1], got {v}")
        })
    }
}

/// One test case, defaults merged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub id: String,
    pub tags: Vec<String>,
    /// Template variables, defaults merged.
    pub vars: Vars,
    pub expected: Option<String>,
    /// Grounding passages.
    pub context: Vec<String>,
    /// Assertions, defaults first. Each is shared: the loader hands every case the same
    /// `Arc` for an assertion that resolves to the same content (a default `length`, or an
    /// `icontains` of the same `expected`), so a large suite holds each distinct one once.
    pub asserts: Vec<Arc<Assertion>>,
    /// With a threshold, the case passes when its weighted mean score reaches it.
    pub threshold: Option<f64>,
    /// `repeat_policy:` of this case; None takes the suite's.
    #[serde(default)]
    pub repeat_policy: Option<RepeatPolicy>,
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
    /// `repeat_policy:`: how the samples of a case make its verdict (default `all`).
    #[serde(default)]
    pub repeat_policy: RepeatPolicy,
    pub cases: Vec<Case>,
    pub gates: Vec<Gate>,
    /// Alert rules, raw (the alert stage interprets them).
    pub alerts: Vec<serde_json::Value>,
    pub review: Option<ReviewSettings>,
    /// Hex hash of the whole suite's content.
    pub hash: String,
    /// Named metrics its assertions declare (`metric:`), defaults' and cases' alike: what
    /// gates and alert rules may name besides the built-in metrics.
    #[serde(default)]
    pub named_metrics: std::collections::BTreeSet<String>,
    /// Each top-level setting that shapes its results (providers by id and field, system,
    /// prompt, defaults, repeat, gates by metric, alert rules by name), keyed by a dotted
    /// name (`provider.prod-gpt.model`, `defaults.assert`, `gates.pass_rate`): recorded with
    /// every run, so that the trend page can name what changed between two runs.
    #[serde(default)]
    pub settings: std::collections::BTreeMap<String, Setting>,
}

/// One setting of a suite as recorded with a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    /// What a page may show of it: short and never a secret (a model name, a gate's limits,
    /// assertion types, parameter names); empty where only a change can be told.
    pub shown: String,
    /// Short hash of the whole value: two runs' settings differ where their digests do.
    pub digest: String,
}

#[cfg(test)]
mod tests {
    use super::RepeatPolicy;

    #[test]
    fn repeat_policies_decide_over_scored_samples() {
        use RepeatPolicy::{All, Any, Majority, MinRate};
        // Nothing scored: no verdict, whatever the policy.
        for p in [All, Majority, Any, MinRate(0.5)] {
            assert_eq!(p.decide(0, 0), None, "{p}");
        }
        assert_eq!(All.decide(3, 0), Some(true));
        assert_eq!(All.decide(2, 1), Some(false));
        assert_eq!(Any.decide(1, 2), Some(true));
        assert_eq!(Any.decide(0, 3), Some(false));
        assert_eq!(Majority.decide(2, 1), Some(true));
        assert_eq!(Majority.decide(1, 2), Some(false));
        // A tie is not a majority of passes.
        assert_eq!(Majority.decide(2, 2), Some(false));
        assert_eq!(Majority.decide(1, 0), Some(true));
        // A minimum rate is reached at equality; 0.5 passes a tie.
        assert_eq!(MinRate(0.5).decide(2, 2), Some(true));
        assert_eq!(MinRate(0.7).decide(7, 3), Some(true));
        assert_eq!(MinRate(0.7).decide(6, 4), Some(false));
        assert_eq!(MinRate(0.67).decide(2, 1), Some(false));
        assert_eq!(MinRate(1.0).decide(3, 0), Some(true));
        assert_eq!(MinRate(1.0).decide(3, 1), Some(false));
    }

    #[test]
    fn repeat_policies_parse_and_round_trip() {
        assert_eq!(RepeatPolicy::parse("all"), Some(RepeatPolicy::All));
        assert_eq!(
            RepeatPolicy::parse(" majority "),
            Some(RepeatPolicy::Majority)
        );
        assert_eq!(RepeatPolicy::parse("any"), Some(RepeatPolicy::Any));
        assert_eq!(RepeatPolicy::parse("0.8"), Some(RepeatPolicy::MinRate(0.8)));
        assert_eq!(RepeatPolicy::parse("1"), Some(RepeatPolicy::MinRate(1.0)));
        for bad in ["0", "1.01", "-0.5", "NaN", "inf", "most", "", "80%"] {
            assert_eq!(RepeatPolicy::parse(bad), None, "{bad}");
        }
        assert_eq!(RepeatPolicy::default(), RepeatPolicy::All);
        for p in [
            RepeatPolicy::All,
            RepeatPolicy::Majority,
            RepeatPolicy::Any,
            RepeatPolicy::MinRate(0.75),
        ] {
            let text = serde_json::to_string(&p).unwrap();
            assert_eq!(serde_json::from_str::<RepeatPolicy>(&text).unwrap(), p);
        }
        assert_eq!(
            serde_json::to_string(&RepeatPolicy::MinRate(0.75)).unwrap(),
            "0.75"
        );
        assert_eq!(
            serde_json::to_string(&RepeatPolicy::Majority).unwrap(),
            "\"majority\""
        );
        assert!(serde_json::from_str::<RepeatPolicy>("2.0").is_err());
        assert!(serde_json::from_str::<RepeatPolicy>("true").is_err());
    }
}
