//! A source that has gone quiet: when its newest stored record is older than the window a
//! person asked for, the window ends at that record instead of now (an empty window would
//! show nothing but zeros), and the silence is said plainly, since a source that stopped
//! sending is itself something to see. `traffic` and the traffic page share this.

use chrono::{DateTime, Utc};

/// The time windows of `window_secs` are anchored at for a source whose newest stored minute
/// starts at `latest` (unix seconds): `now`, or the start of that minute when no record falls
/// in the window ending now; with the sentence that says so. Callers end their windows with
/// the bucket (minute, hour or day) that holds the time returned, as they do with now, so the
/// anchor is a time inside the last record's minute, not the end of it (the end of a minute
/// is the start of the next bucket, which would move the windows one bucket too late).
#[must_use]
pub fn anchor(
    now: DateTime<Utc>,
    latest: Option<i64>,
    window_secs: i64,
) -> (DateTime<Utc>, Option<String>) {
    let Some(latest) = latest else {
        return (now, None);
    };
    let end = latest + 60;
    if end > now.timestamp() - window_secs {
        return (now, None);
    }
    let Some(at) = DateTime::from_timestamp(latest, 0) else {
        return (now, None);
    };
    let note = format!(
        "no records since {} ({}); windows end at the last record",
        at.format("%Y-%m-%d %H:%M UTC"),
        ago(now.timestamp() - latest)
    );
    (at, Some(note))
}

/// `5 days ago`, `3 hours ago`, `40 minutes ago`.
fn ago(secs: i64) -> String {
    let (n, unit) = if secs >= 2 * 86_400 {
        (secs / 86_400, "day")
    } else if secs >= 2 * 3_600 {
        (secs / 3_600, "hour")
    } else {
        (secs / 60, "minute")
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_end_at_the_last_record_of_a_quiet_source() {
        let now = DateTime::from_timestamp(1_796_000_000, 0).unwrap();
        let t = now.timestamp();
        // Traffic within the window: windows end now.
        assert_eq!(anchor(now, Some(t - 3_600), 86_400), (now, None));
        assert_eq!(anchor(now, None, 86_400), (now, None));
        // Silent for five days: they are anchored in the last record's minute (the bucket
        // that holds it ends them), and say so.
        let latest = (t - 5 * 86_400 - 7_200) / 60 * 60;
        let (at, note) = anchor(now, Some(latest), 86_400);
        assert_eq!(at.timestamp(), latest);
        let note = note.unwrap();
        assert!(note.starts_with("no records since "), "{note}");
        assert!(
            note.ends_with(" (5 days ago); windows end at the last record"),
            "{note}"
        );
        // An hour window of a source silent for three hours.
        let (_, note) = anchor(now, Some(t - 3 * 3_600), 3_600);
        assert!(note.unwrap().contains("(3 hours ago)"));
    }
}
