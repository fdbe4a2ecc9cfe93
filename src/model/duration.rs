//! The one grammar of a duration written as text, for every place evalwatch reads one: a
//! provider's `timeout` and retry delays, a suite's `jitter`, an alert rule's `after`, a
//! sink's `timeout`, a traffic source's `retention`, `schedule`'s `--grace`, `--jitter` and
//! `--poll`, `schedule emit --every`, `EVALWATCH_LEASE_TTL`, `mark --since` and the `--since`
//! windows of `report` and `review sample`. Each place then says which durations it takes (at least a second, whole
//! seconds, ...); the forms are the same everywhere (docs/suite-reference.md, "Durations").
//!
//! One or more parts, each a number (decimals allowed) and its unit, optionally spaced:
//! `500ms`, `30s`, `2m`, `1h`, `1d`, `2w`, `1h30m`, `1.5h`, `1h 30m`. A unit may be written
//! out: `sec`/`secs`/`second`/`seconds`, `min`/`mins`/`minute`/`minutes`,
//! `hr`/`hrs`/`hour`/`hours`, `day`/`days`, `week`/`weeks`. `0` alone is no time.

use std::time::Duration;

/// Seconds in the longest duration read (about 31,700 years): past it, text is refused
/// rather than overflowing a date.
const MOST_SECONDS: f64 = 1e12;

/// The seconds of one unit as written, if it is one.
fn unit_seconds(unit: &str) -> Option<f64> {
    Some(match unit {
        "ms" => 0.001,
        "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600.0,
        "d" | "day" | "days" => 86_400.0,
        "w" | "week" | "weeks" => 604_800.0,
        _ => return None,
    })
}

/// The duration `text` writes (see the module), or `None` when it is not one: empty, a
/// number without a unit (other than `0`), an unknown unit, a negative or too long time.
#[must_use]
pub fn parse(text: &str) -> Option<Duration> {
    let mut rest = text.trim();
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0_f64;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        // `parse` takes `1.`, `.5`; refuses `` and `1.2.3`.
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = rest[number_end..].trim_start();
        let unit_end = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        total += number * unit_seconds(&rest[..unit_end])?;
        rest = rest[unit_end..].trim_start();
    }
    (total.is_finite() && total < MOST_SECONDS).then(|| Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::unnecessary_wraps)] // compared with what `parse` gives
    fn secs(s: f64) -> Option<Duration> {
        Some(Duration::from_secs_f64(s))
    }

    #[test]
    fn every_unit_and_its_written_out_forms() {
        for (text, want) in [
            ("500ms", 0.5),
            ("30s", 30.0),
            ("30sec", 30.0),
            ("30 seconds", 30.0),
            ("1second", 1.0),
            ("2m", 120.0),
            ("2min", 120.0),
            ("2 mins", 120.0),
            ("1minute", 60.0),
            ("1h", 3_600.0),
            ("1hr", 3_600.0),
            ("2hrs", 7_200.0),
            ("2 hours", 7_200.0),
            ("1d", 86_400.0),
            ("3 days", 259_200.0),
            ("2w", 1_209_600.0),
            ("1 week", 604_800.0),
        ] {
            assert_eq!(parse(text), secs(want), "{text}");
        }
    }

    #[test]
    fn parts_add_up_and_decimals_count() {
        assert_eq!(parse("1h30m"), secs(5_400.0));
        assert_eq!(parse("1h 30m"), secs(5_400.0));
        assert_eq!(parse(" 1d2h "), secs(93_600.0));
        assert_eq!(parse("1m30s500ms"), secs(90.5));
        assert_eq!(parse("1.5s"), secs(1.5));
        assert_eq!(parse("1.5h"), secs(5_400.0));
        assert_eq!(parse(".5m"), secs(30.0));
        assert_eq!(parse("0"), Some(Duration::ZERO));
        assert_eq!(parse("0s"), Some(Duration::ZERO));
    }

    #[test]
    fn text_that_is_not_a_duration() {
        for text in [
            "",
            " ",
            "s",
            "5",
            "90",
            "-5s",
            "5 parsecs",
            "5M",
            "1h30",
            "1.2.3s",
            "h1",
            "1h-30m",
            "soon",
            "1e3s",
            "nan s",
        ] {
            assert_eq!(parse(text), None, "{text:?}");
        }
        // Too long to be a time anyone means (and past what a date can hold).
        assert_eq!(parse("100000000w"), None);
        assert!(parse("1000w").is_some());
    }
}
