//! `evalwatch mark`: record and list change markers (deploys, model and prompt changes,
//! notes), which pages and alerts show beside the figures.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

use super::traffic::ingest::FUTURE_SLACK_SECS;
use super::{Ctx, Failure, exit};
use crate::cli::ReadFormat;
use crate::cli::mark::{ListMarksArgs, MarkArgs, MarkCommand, NewMarkArgs};
use crate::model::{MarkKind, MarkOrigin};
use crate::schedule::daemon::rfc3339;
use crate::store::{MarkQuery, NewMark};

pub fn run(ctx: &Ctx, args: &MarkArgs) -> anyhow::Result<u8> {
    let (kind, a) = match &args.command {
        MarkCommand::Deploy(a) => (MarkKind::Deploy, a),
        MarkCommand::Model(a) => (MarkKind::Model, a),
        MarkCommand::Prompt(a) => (MarkKind::Prompt, a),
        MarkCommand::Note(a) => (MarkKind::Note, a),
        MarkCommand::List(a) => return list(ctx, a),
    };
    add(ctx, kind, a)
}

/// The longest marker text, in characters: markers are shown in lists, on pages and in alert
/// messages, where a screenful of text would bury the figures.
pub const MARK_TEXT_MAX: usize = 500;

fn add(ctx: &Ctx, kind: MarkKind, a: &NewMarkArgs) -> anyhow::Result<u8> {
    let text = a.text.trim();
    if text.is_empty() {
        return Err(Failure::invalid(
            "mark: the text is empty; say what changed, e.g. `evalwatch mark deploy \"v2.3.1\"`",
        ));
    }
    check_text(text).map_err(|e| Failure::invalid(format!("mark: the text {e}")))?;
    let now = Utc::now();
    let at = match &a.at {
        Some(s) => parse_time(s).map_err(|e| Failure::invalid(format!("mark: --at {e}")))?,
        None => now,
    };
    if at.timestamp() > now.timestamp() + FUTURE_SLACK_SECS {
        return Err(Failure::invalid(format!(
            "mark: --at {} is in the future (now is {}); mark a change once it happened",
            rfc3339(at),
            rfc3339(now)
        )));
    }
    let feature = non_empty(a.feature.as_deref(), "--feature")?;
    let source = non_empty(a.source.as_deref(), "--source")?;
    if let Some(f) = feature {
        check_text(f).map_err(|e| Failure::invalid(format!("mark: --feature {e}")))?;
    }
    let project = ctx.project()?;
    // A marker for a source that does not exist would show nowhere: said, with the nearest.
    if let Some(id) = source {
        super::traffic::pick_source(&project, Some(id))
            .map_err(|e| Failure::invalid(format!("mark: --source: {e}")))?;
    }
    let db = ctx.db_path(&project);
    let mut store = ctx.open_store(&db)?;
    let at = rfc3339(at);
    let (id, added) = store.add_mark(&NewMark {
        kind,
        text,
        at: &at,
        feature,
        source,
        origin: MarkOrigin::User,
        created_at: &rfc3339(now),
    })?;
    let scope = scope_text(feature, source);
    if added {
        ctx.printer.result(&format!(
            "marked {} at {at}{scope}: {text} (#{id})",
            kind.as_str()
        ));
    } else {
        ctx.printer.result(&format!(
            "already marked: {} at {at}{scope}: {text} (#{id}); kept once",
            kind.as_str()
        ));
    }
    Ok(exit::OK)
}

fn list(ctx: &Ctx, a: &ListMarksArgs) -> anyhow::Result<u8> {
    if a.limit == 0 {
        return Err(Failure::invalid(
            "mark list: --limit 0 would list nothing; give 1 or more (the newest N are listed)",
        ));
    }
    let since = match &a.since {
        Some(s) => {
            Some(rfc3339(parse_since(s).map_err(|e| {
                Failure::invalid(format!("mark list: --since {e}"))
            })?))
        }
        None => None,
    };
    let project = ctx.project()?;
    // No store is not "no markers": a mistyped --db is said.
    let marks = ctx
        .existing_store_after(&project, "mark list", "evalwatch mark")?
        .marks(&MarkQuery {
            since: since.as_deref(),
            until: None,
            feature: a.feature.as_deref(),
            source: a.source.as_deref(),
            limit: Some(a.limit),
        })?;
    if a.format == ReadFormat::Json {
        ctx.printer.result(&serde_json::to_string_pretty(&marks)?);
        return Ok(exit::OK);
    }
    if marks.is_empty() {
        ctx.printer.result("no markers");
        return Ok(exit::OK);
    }
    for m in &marks {
        let by = match m.origin {
            MarkOrigin::User => "",
            MarkOrigin::Auto => " (seen by evalwatch)",
        };
        ctx.printer.result(&format!(
            "{}  {:<6} {}{}{by}",
            m.at,
            m.kind.as_str(),
            m.text,
            scope_text(m.feature.as_deref(), m.source.as_deref())
        ));
    }
    Ok(exit::OK)
}

/// A marker's text (or feature): no control character (a newline or a terminal escape would
/// break `mark list` and alert messages), at most [`MARK_TEXT_MAX`] characters.
fn check_text(text: &str) -> Result<(), String> {
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(format!(
            "holds a control character ({c:?}); write it on one line, without escapes"
        ));
    }
    let n = text.chars().count();
    if n > MARK_TEXT_MAX {
        return Err(format!(
            "has {n} characters, more than {MARK_TEXT_MAX}; say what changed in short (link to the details)"
        ));
    }
    Ok(())
}

fn non_empty<'a>(v: Option<&'a str>, flag: &str) -> anyhow::Result<Option<&'a str>> {
    match v.map(str::trim) {
        Some("") => Err(Failure::invalid(format!(
            "mark: {flag} is empty; leave it out to mark a change that concerns everything"
        ))),
        other => Ok(other),
    }
}

fn scope_text(feature: Option<&str>, source: Option<&str>) -> String {
    match (feature, source) {
        (None, None) => String::new(),
        (Some(f), None) => format!(" [feature {f}]"),
        (None, Some(s)) => format!(" [source {s}]"),
        (Some(f), Some(s)) => format!(" [source {s}, feature {f}]"),
    }
}

/// A point in time: RFC 3339, a date and time without offset (read as UTC), a date (midnight
/// UTC), or unix seconds.
fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    let t = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.with_timezone(&Utc));
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, f) {
            return Ok(Utc.from_utc_datetime(&n));
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(Utc.from_utc_datetime(&d.and_time(chrono::NaiveTime::MIN)));
    }
    if let Ok(secs) = t.parse::<i64>()
        && let Some(d) = Utc.timestamp_opt(secs, 0).single()
    {
        return Ok(d);
    }
    Err(format!(
        "{s:?} is not a time: give RFC 3339 (2026-12-06T14:30:00+01:00), a UTC date and time (2026-12-06 14:30) or unix seconds"
    ))
}

/// `--since`: a duration back from now (7d, 24h, 90m) or a time as `--at` takes.
fn parse_since(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(d) = crate::schedule::parse_duration(s)
        && let Ok(d) = chrono::Duration::from_std(d)
    {
        return Ok(Utc::now() - d);
    }
    parse_time(s).map_err(|_| {
        format!("{s:?} is neither a duration (7d, 24h, 90m) nor a time (RFC 3339, 2026-12-06 14:30, unix seconds)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_in_every_documented_form() {
        let want = "2026-12-06T14:30:00Z";
        for s in [
            "2026-12-06T14:30:00Z",
            "2026-12-06T15:30:00+01:00",
            "2026-12-06T14:30",
            "2026-12-06 14:30",
            "2026-12-06 14:30:00",
            "1796567400",
        ] {
            assert_eq!(rfc3339(parse_time(s).unwrap()), want, "{s}");
        }
        assert_eq!(
            rfc3339(parse_time("2026-12-06").unwrap()),
            "2026-12-06T00:00:00Z"
        );
        let err = parse_time("yesterday").unwrap_err();
        assert!(err.contains("\"yesterday\" is not a time"), "{err}");
    }

    #[test]
    fn marker_texts_hold_no_control_character_and_are_not_too_long() {
        assert!(check_text("v2.3.1: new retrieval index").is_ok());
        assert!(check_text(&"é".repeat(MARK_TEXT_MAX)).is_ok());
        let e = check_text("line1\nline2").unwrap_err();
        assert!(e.contains("control character ('\\n')"), "{e}");
        assert!(check_text("red \u{1b}[31m").is_err());
        let e = check_text(&"a".repeat(MARK_TEXT_MAX + 1)).unwrap_err();
        assert!(e.contains("501 characters, more than 500"), "{e}");
    }

    #[test]
    fn since_takes_a_duration_or_a_time() {
        let back = Utc::now() - parse_since("7d").unwrap();
        assert!((back.num_seconds() - 7 * 86_400).abs() < 5, "{back}");
        assert_eq!(
            rfc3339(parse_since("2026-12-01").unwrap()),
            "2026-12-01T00:00:00Z"
        );
        assert!(
            parse_since("soon")
                .unwrap_err()
                .contains("neither a duration")
        );
    }
}
