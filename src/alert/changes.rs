//! What changed before an alert: the change markers (`evalwatch mark`, and model versions
//! evalwatch saw change) in the hours before it started, named the same way by every alert,
//! suite or traffic: "possibly related to the deployment at 14:30 (v2.3 rollout)".

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::model::{Mark, MarkKind};

/// How long before an alert started its change markers are named.
pub const MARKS_BEFORE_SECS: i64 = 6 * 3_600;

/// At most this many markers are named in an alert's sentence (its JSON carries all read).
const NAMED: usize = 3;

fn words(kind: MarkKind) -> &'static str {
    match kind {
        MarkKind::Deploy => "the deployment",
        MarkKind::Model => "the model change",
        MarkKind::Prompt => "the prompt change",
        MarkKind::Note => "the note",
    }
}

/// `14:30`, with the date when it is not the day of `day`.
fn clock(t: &str, day: DateTime<Utc>) -> String {
    DateTime::parse_from_rfc3339(t).map_or_else(
        |_| t.to_owned(),
        |t| {
            let t = t.with_timezone(&Utc);
            if t.date_naive() == day.date_naive() {
                t.format("%H:%M").to_string()
            } else {
                t.format("%Y-%m-%d %H:%M").to_string()
            }
        },
    )
}

/// `, possibly related to the deployment at 14:30 (v2.3) or the model change at 13:05
/// (...)` for an alert that started at `started`; empty without markers.
#[must_use]
pub fn related(marks: &[Mark], started: DateTime<Utc>) -> String {
    if marks.is_empty() {
        return String::new();
    }
    let named: Vec<String> = marks
        .iter()
        .take(NAMED)
        .map(|m| {
            format!(
                "{} at {} ({})",
                words(m.kind),
                clock(&m.at, started),
                m.text
            )
        })
        .collect();
    format!(", possibly related to {}", named.join(" or "))
}

/// The markers as a notice's JSON carries them.
#[must_use]
pub fn marks_json(marks: &[Mark]) -> Value {
    marks
        .iter()
        .map(|m| json!({"kind": m.kind.as_str(), "text": m.text, "at": m.at, "feature": m.feature}))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MarkOrigin;

    fn mark(kind: MarkKind, at: &str, text: &str) -> Mark {
        Mark {
            id: 1,
            kind,
            text: text.into(),
            at: at.into(),
            feature: None,
            source: None,
            origin: MarkOrigin::User,
            created_at: at.into(),
        }
    }

    #[test]
    fn markers_read_as_the_spec_says() {
        let started = DateTime::parse_from_rfc3339("2026-03-02T14:45:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(related(&[], started), "");
        let marks = [
            mark(MarkKind::Deploy, "2026-03-02T14:30:00Z", "v2.3 rollout"),
            mark(MarkKind::Model, "2026-03-01T23:10:00Z", "openai a -> b"),
        ];
        assert_eq!(
            related(&marks, started),
            ", possibly related to the deployment at 14:30 (v2.3 rollout) or the model change at 2026-03-01 23:10 (openai a -> b)"
        );
        assert_eq!(marks_json(&marks)[1]["kind"], "model");
    }
}
