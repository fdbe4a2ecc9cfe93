//! Change markers: what changed, and when (a deploy, a model or prompt change, a note).

use serde::{Deserialize, Serialize};

/// What kind of change a marker records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MarkKind {
    Deploy,
    Model,
    Prompt,
    Note,
}

impl MarkKind {
    pub const ALL: [Self; 4] = [Self::Deploy, Self::Model, Self::Prompt, Self::Note];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deploy => "deploy",
            Self::Model => "model",
            Self::Prompt => "prompt",
            Self::Note => "note",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Who made a marker: a person (`evalwatch mark`) or evalwatch itself (a model version that
/// changed between runs or traffic buckets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MarkOrigin {
    User,
    Auto,
}

impl MarkOrigin {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Auto => "auto",
        }
    }
}

/// A change marker as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mark {
    pub id: i64,
    pub kind: MarkKind,
    pub text: String,
    /// When the change happened (RFC 3339, UTC).
    pub at: String,
    /// The product feature it concerns, if one.
    pub feature: Option<String>,
    /// The traffic source it concerns, if one.
    pub source: Option<String>,
    pub origin: MarkOrigin,
    /// When it was recorded (RFC 3339, UTC).
    pub created_at: String,
}
