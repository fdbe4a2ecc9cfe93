//! `schedule:` and `timezone:` of a suite, judged where they are written: field by field,
//! in words of ours ("minute 99 is out of range 0-59"), then by the scheduler's own parser
//! (`schedule::Schedule::parse`), so that what `validate` accepts the scheduler runs.

use super::decode::did_you_mean;

const NICKNAMES: [&str; 7] = [
    "@hourly",
    "@daily",
    "@midnight",
    "@weekly",
    "@monthly",
    "@yearly",
    "@annually",
];

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// One cron field: its name, range and the names it takes for numbers.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// The first name stands for this number.
    first: u32,
}

const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
        first: 0,
    },
    Field {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
        first: 0,
    },
    Field {
        name: "day of month",
        min: 1,
        max: 31,
        names: &[],
        first: 1,
    },
    Field {
        name: "month",
        min: 1,
        max: 12,
        names: &MONTHS,
        first: 1,
    },
    Field {
        name: "day of week",
        min: 0,
        max: 7,
        names: &DAYS,
        first: 0,
    },
];

/// Why `expr` is not a schedule, in words of ours; `Ok` when every field reads. Tokens of
/// croner's extensions (`L`, `W`, `#`) are left to the scheduler's parser.
pub(crate) fn check(expr: &str) -> Result<(), String> {
    const USAGE: &str = "use 5 cron fields (minute hour day-of-month month day-of-week, like `0 6 * * *`) or @hourly, @daily, @weekly, @monthly, @yearly";
    let expr = expr.trim();
    if expr.is_empty() {
        return Err(format!("schedule is empty; {USAGE}"));
    }
    if expr.starts_with('@') {
        let lower = expr.to_ascii_lowercase();
        if NICKNAMES.contains(&lower.as_str()) {
            return Ok(());
        }
        let hint = did_you_mean(&lower, NICKNAMES);
        return Err(format!("unknown schedule nickname `{expr}`{hint}; {USAGE}"));
    }
    let fields: Vec<&str> = expr.split_whitespace().collect();
    if fields.len() != 5 {
        let extra = match fields.len() {
            6 => " (a seconds or year field is not taken)",
            _ => "",
        };
        return Err(format!(
            "schedule `{expr}` has {} field{}, not 5{extra}; {USAGE}",
            fields.len(),
            if fields.len() == 1 { "" } else { "s" }
        ));
    }
    for (text, field) in fields.iter().zip(&FIELDS) {
        check_field(text, field)?;
    }
    Ok(())
}

fn check_field(text: &str, field: &Field) -> Result<(), String> {
    for item in text.split(',') {
        if item.is_empty() {
            return Err(format!("{} `{text}` has an empty list item", field.name));
        }
        let extension = match field.name {
            "day of month" => item.contains(['L', 'l', 'W', 'w']),
            "day of week" => {
                item.contains('#')
                    || (item.starts_with(|c: char| c.is_ascii_digit()) && item.contains(['L', 'l']))
            }
            _ => false,
        };
        if extension {
            // croner's extensions: judged by the scheduler's parser.
            continue;
        }
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (item, None),
        };
        if let Some(s) = step {
            match s.parse::<u32>() {
                Ok(0) => return Err(format!("{} step `/{s}` must be at least 1", field.name)),
                Ok(n) if n > field.max => {
                    return Err(format!(
                        "{} step `/{s}` is larger than the field's range {}-{}",
                        field.name, field.min, field.max
                    ));
                }
                Ok(_) => {}
                Err(_) => {
                    return Err(format!(
                        "{} step `/{s}` is not a whole number (like `*/15`)",
                        field.name
                    ));
                }
            }
        }
        if range == "*" || (range == "?" && field.name.starts_with("day")) {
            continue;
        }
        let (lo, hi) = match range.split_once('-') {
            Some((a, b)) => (value(a, field)?, Some(value(b, field)?)),
            None => (value(range, field)?, None),
        };
        if let Some(hi) = hi
            && lo > hi
        {
            return Err(format!(
                "{} range `{range}` goes backwards; write the smaller value first",
                field.name
            ));
        }
    }
    Ok(())
}

/// A number or name of `field`, in range.
fn value(text: &str, field: &Field) -> Result<u32, String> {
    if text.is_empty() {
        return Err(format!(
            "{} has a range with a missing end (like `1-`)",
            field.name
        ));
    }
    if let Ok(n) = text.parse::<u64>() {
        return u32::try_from(n)
            .ok()
            .filter(|n| (field.min..=field.max).contains(n))
            .ok_or_else(|| {
                format!(
                    "{} {n} is out of range {}-{}",
                    field.name, field.min, field.max
                )
            });
    }
    let lower = text.to_ascii_lowercase();
    if let Some(i) = field.names.iter().position(|n| *n == lower) {
        return Ok(field.first + u32::try_from(i).unwrap_or(0));
    }
    let names = if field.names.is_empty() {
        String::new()
    } else {
        format!(
            ", a name ({}-{})",
            field.names[0],
            field.names[field.names.len() - 1]
        )
    };
    let hint = did_you_mean(&lower, field.names.iter().copied());
    Err(format!(
        "{} `{text}` is not a number ({}-{}){names}, a range (`1-5`), a list (`1,3`), a step (`*/15`) or `*`{hint}",
        field.name, field.min, field.max
    ))
}

/// Why `name` is not a time zone, with the nearest IANA name when it is a near miss.
pub(crate) fn check_timezone(name: &str) -> Result<(), String> {
    let name = name.trim();
    if name.is_empty() || name.parse::<chrono_tz::Tz>().is_ok() {
        return Ok(());
    }
    let all = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name());
    // Compare as typed, so `europe/berlin` finds `Europe/Berlin`.
    let lower = name.to_lowercase();
    let near = all.clone().find(|n| n.to_lowercase() == lower).map_or_else(
        || {
            let names: Vec<String> = all.clone().map(str::to_lowercase).collect();
            let hint = did_you_mean(&lower, names.iter().map(String::as_str));
            // Give the suggestion back in its own spelling.
            hint.strip_prefix("; did you mean `")
                .and_then(|h| h.strip_suffix("`?"))
                .and_then(|h| all.clone().find(|n| n.to_lowercase() == h))
                .map_or(String::new(), |n| format!("; did you mean `{n}`?"))
        },
        |n| format!("; did you mean `{n}`?"),
    );
    Err(format!(
        "unknown time zone `{name}` (use an IANA name like `Europe/Berlin`, `America/New_York` or `UTC`){near}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_out_of_range_are_named() {
        let cases = [
            ("99 6 * * *", "minute 99 is out of range 0-59"),
            ("0 25 * * *", "hour 25 is out of range 0-23"),
            ("0 6 0 * *", "day of month 0 is out of range 1-31"),
            ("0 6 * 13 *", "month 13 is out of range 1-12"),
            ("0 6 * * 8", "day of week 8 is out of range 0-7"),
            ("0 6 * *", "has 4 fields, not 5"),
            ("0 0 6 * * *", "a seconds or year field is not taken"),
            ("*/0 * * * *", "step `/0` must be at least 1"),
            ("0 9-5 * * *", "range `9-5` goes backwards"),
            ("0 6 * * mnd", "day of week `mnd` is not a number"),
            ("0 6 * * thur", "did you mean `thu`?"),
            ("@dayly", "did you mean `@daily`?"),
            ("0 6 * * 1,,3", "empty list item"),
            ("every day", "has 2 fields"),
        ];
        for (expr, want) in cases {
            let err = check(expr).expect_err(expr);
            assert!(err.contains(want), "{expr}: {err}");
            assert!(!err.contains("component"), "{expr}: {err}");
        }
    }

    #[test]
    fn what_it_accepts_the_scheduler_runs() {
        for ok in [
            "0 6 * * *",
            "*/15 * * * *",
            "0 9-17 * * mon-fri",
            "0 0 1,15 * *",
            "0 0 * JAN,jul *",
            "30 2 * * 0",
            "30 2 * * 7",
            "0 0 ? * *",
            "@daily",
            "@MIDNIGHT",
            "0 0 L * *",
            "5-10/2 * * * *",
        ] {
            assert!(check(ok).is_ok(), "{ok}: {:?}", check(ok));
            assert!(
                crate::schedule::Schedule::parse(ok, None).is_ok(),
                "{ok}: the scheduler refuses what validate accepts"
            );
        }
    }

    #[test]
    fn time_zones_suggest_the_near_miss() {
        assert!(check_timezone("Europe/Berlin").is_ok());
        assert!(check_timezone("UTC").is_ok());
        let err = check_timezone("Mars/Olympus").expect_err("mars");
        assert!(
            err.starts_with("unknown time zone `Mars/Olympus` (use an IANA name"),
            "{err}"
        );
        assert!(!err.contains("did you mean"), "{err}");
        let err = check_timezone("Europe/Berlni").expect_err("typo");
        assert!(err.contains("did you mean `Europe/Berlin`?"), "{err}");
        let err = check_timezone("europe/berlin").expect_err("case");
        assert!(err.contains("did you mean `Europe/Berlin`?"), "{err}");
    }
}
