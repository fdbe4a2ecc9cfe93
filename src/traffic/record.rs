//! One production request as evalwatch sees it, whatever the log it came from.

use chrono::{DateTime, Utc};

/// A request and its answer, mapped from one log line, CSV row or span.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Record {
    /// When the request was made (UTC).
    pub time: DateTime<Utc>,
    /// What the user sent, as text (chat messages are joined, one per line).
    pub input: Option<String>,
    /// What the model answered.
    pub output: Option<String>,
    /// The support that hallucination checks use (retrieved passages).
    pub context: Vec<String>,
    pub model: Option<String>,
    pub feature: Option<String>,
    pub segment: Option<String>,
    pub region: Option<String>,
    /// The user, as a salted hash: the raw id never leaves the mapping.
    pub user_hash: Option<String>,
    /// Links feedback given later; the de-duplication key when present.
    pub trace_id: Option<String>,
    pub latency_ms: Option<f64>,
    pub tokens_in: Option<u64>,
    pub tokens_out: Option<u64>,
    pub cost_usd: Option<f64>,
    /// `Some` when the request failed; the kind when the log names one.
    pub error: Option<RecordError>,
    /// The model's own confidence, when the app logs one (for example a mean log-probability).
    pub confidence: Option<f64>,
    pub feedback: Option<Feedback>,
}

/// A failed request: its kind when the log names one (`timeout`, `rate_limit`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordError {
    pub kind: Option<String>,
}

/// A user's vote, normalised from thumbs, booleans or 1-5 stars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vote {
    Positive,
    Negative,
    /// Rated, but neither (3 of 5 stars): counts as rated, not as positive.
    Neutral,
}

impl Vote {
    /// The name stored and shown: `positive`, `negative` or `neutral`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Positive => "positive",
            Self::Negative => "negative",
            Self::Neutral => "neutral",
        }
    }

    /// The vote named by [`Vote::as_str`].
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "positive" => Some(Self::Positive),
            "negative" => Some(Self::Negative),
            "neutral" => Some(Self::Neutral),
            _ => None,
        }
    }
}

/// Feedback as normalised, with the raw value kept as the user's tool wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feedback {
    pub vote: Vote,
    pub raw: String,
}

impl Feedback {
    /// Normalises a raw feedback value: `up`/`down` (and `thumbs_up`, `+1`, `👍` ...),
    /// booleans, `positive`/`negative`, -1 (a thumbs-down, number or string) and 1-5 stars
    /// (4-5 positive, 3 neutral, 1-2 negative).
    /// `None` for a value that is none of these.
    pub fn from_json(value: &serde_json::Value) -> Option<Self> {
        use serde_json::Value;
        let raw = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let vote = match value {
            Value::Bool(true) => Vote::Positive,
            Value::Bool(false) => Vote::Negative,
            Value::Number(n) => number(n.as_f64()?)?,
            Value::String(s) => Self::word(s)?,
            _ => return None,
        };
        Some(Self { vote, raw })
    }

    fn word(text: &str) -> Option<Vote> {
        Self::word_only(text).or_else(|| number(text.trim().parse::<f64>().ok()?))
    }

    /// A vote written as a word (`up`, `thumbs_down`, `true`, `positive`, `👍` ...), not as a
    /// number.
    #[must_use]
    pub fn word_only(text: &str) -> Option<Vote> {
        let t = text.trim().to_ascii_lowercase();
        match t.as_str() {
            "up" | "thumbs_up" | "thumbsup" | "thumbs-up" | "+1" | "👍" | "positive" | "good"
            | "yes" | "true" | "like" | "helpful" => Some(Vote::Positive),
            "down" | "thumbs_down" | "thumbsdown" | "thumbs-down" | "👎" | "negative" | "bad"
            | "no" | "false" | "dislike" | "unhelpful" => Some(Vote::Negative),
            "neutral" => Some(Vote::Neutral),
            _ => None,
        }
    }
}

/// A vote written as a number, or as a string that reads as one (`"-1"` means what `-1`
/// means): -1 is a thumbs-down, 1 to 5 are stars. (`+1` is a thumbs-up only as the word
/// `"+1"`: the number 1 is one star.)
fn number(n: f64) -> Option<Vote> {
    if n.fract() == 0.0 && n as i64 == -1 {
        return Some(Vote::Negative);
    }
    stars(n)
}

fn stars(n: f64) -> Option<Vote> {
    if !(1.0..=5.0).contains(&n) || n.fract() != 0.0 {
        return None;
    }
    Some(match n as u8 {
        4 | 5 => Vote::Positive,
        3 => Vote::Neutral,
        _ => Vote::Negative,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn thumbs_booleans_and_stars_normalise_and_keep_the_raw_value() {
        let cases = [
            (json!("up"), Vote::Positive, "up"),
            (json!("thumbs_down"), Vote::Negative, "thumbs_down"),
            (json!("👎"), Vote::Negative, "👎"),
            (json!(true), Vote::Positive, "true"),
            (json!(false), Vote::Negative, "false"),
            (json!(5), Vote::Positive, "5"),
            (json!(4), Vote::Positive, "4"),
            (json!(3), Vote::Neutral, "3"),
            (json!(2), Vote::Negative, "2"),
            (json!(1), Vote::Negative, "1"),
            (json!("1"), Vote::Negative, "1"),
            // A thumbs-down written as a number means what the string `-1` means.
            (json!(-1), Vote::Negative, "-1"),
            (json!("-1"), Vote::Negative, "-1"),
            (json!(-1.0), Vote::Negative, "-1.0"),
            (json!("+1"), Vote::Positive, "+1"),
            (json!(" Down "), Vote::Negative, " Down "),
        ];
        for (value, vote, raw) in cases {
            let f = Feedback::from_json(&value).unwrap_or_else(|| panic!("{value} not read"));
            assert_eq!((f.vote, f.raw.as_str()), (vote, raw), "{value}");
        }
    }

    #[test]
    fn values_that_are_no_vote_are_refused() {
        for value in [
            json!(0),
            json!("0"),
            json!(-2),
            json!("-2"),
            json!(6),
            json!(4.5),
            json!("maybe"),
            json!(null),
            json!([1]),
        ] {
            assert_eq!(Feedback::from_json(&value), None, "{value}");
        }
    }
}
