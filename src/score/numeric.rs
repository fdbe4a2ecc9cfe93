//! The `numeric` assertion and the number reader behind it.
//!
//! A number in text may carry a leading sign (`+`, `-`, or the Unicode minus), a currency
//! sign (`$ € £ ¥`, before or after the sign), thousands separators (`1,234,567.89`, commas
//! in groups of three), a decimal part, an exponent (`1.5e3`) and a trailing `%`, which is
//! dropped (`45%` reads 45). A `-` glued to a preceding letter or digit is a hyphen, not a
//! sign (`2024-05` reads 2024 and 5).

use std::sync::LazyLock;

use regex::Regex;
use serde_json::json;

use super::text::quote;
use super::verdict::Verdict;
use crate::model::Tolerance;

static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)
        (?P<sign1>[-+\x{2212}])?
        (?P<cur>[$€£¥]\s?)?
        (?P<sign2>[-+\x{2212}])?
        (?P<num>\d+(?:,\d+)*(?:\.\d+)? | \.\d+)
        (?P<exp>[eE][-+]?\d+)?
        (?P<pct>\s?%)?",
    )
    .unwrap_or_else(|e| unreachable!("number regex: {e}"))
});

/// A number read from text.
#[derive(Debug, Clone, PartialEq)]
pub struct Number {
    pub value: f64,
    /// The text it was read from.
    pub text: String,
    pub percent: bool,
}

/// Whether `num` uses commas as thousands separators (`1,234,567.8`).
fn grouped_by_thousands(num: &str) -> bool {
    let int = num.split('.').next().unwrap_or(num);
    let mut groups = int.split(',');
    groups.next().is_some_and(|g| (1..=3).contains(&g.len())) && groups.all(|g| g.len() == 3)
}

fn parse_parts(negative: bool, digits: &str, exp: &str) -> Option<f64> {
    let mut s = String::with_capacity(digits.len() + exp.len() + 1);
    if negative {
        s.push('-');
    }
    s.extend(digits.chars().filter(|&c| c != ','));
    s.push_str(exp);
    s.parse().ok()
}

/// Every number of `text`, in order.
pub fn numbers(text: &str) -> impl Iterator<Item = Number> + '_ {
    NUMBER.captures_iter(text).flat_map(move |c| {
        let mut out = Vec::new();
        let (Some(whole), Some(num)) = (c.get(0), c.name("num")) else {
            return out;
        };
        let exp = c.name("exp").map_or("", |m| m.as_str());
        let percent = c.name("pct").is_some();
        let sign = c.name("sign2").or_else(|| c.name("sign1")).filter(|m| {
            // A sign glued to a preceding word character is a hyphen.
            !text[..m.start()]
                .chars()
                .next_back()
                .is_some_and(char::is_alphanumeric)
        });
        let negative = sign.is_some_and(|m| m.as_str() != "+");
        let start = sign.map_or_else(
            || c.name("cur").map_or(num.start(), |m| m.start()),
            |m| {
                c.name("cur")
                    .map_or(m.start(), |cur| cur.start().min(m.start()))
            },
        );
        let n = num.as_str();
        if !n.contains(',') || grouped_by_thousands(n) {
            if let Some(value) = parse_parts(negative, n, exp) {
                out.push(Number {
                    value,
                    text: text[start..whole.end()].trim().to_owned(),
                    percent,
                });
            }
            return out;
        }
        // Commas that are not thousands separators separate numbers: `1,5` is 1 and 5.
        let parts: Vec<&str> = n.split(',').collect();
        let last = parts.len() - 1;
        for (i, part) in parts.into_iter().enumerate() {
            let value = parse_parts(negative && i == 0, part, if i == last { exp } else { "" });
            if let Some(value) = value {
                out.push(Number {
                    value,
                    text: part.to_owned(),
                    percent: percent && i == last,
                });
            }
        }
        out
    })
}

/// The last number of `text`.
pub fn last_number(text: &str) -> Option<Number> {
    numbers(text).last()
}

/// The first number of `text` (for a pattern's capture).
pub fn first_number(text: &str) -> Option<Number> {
    numbers(text).next()
}

/// Whether `actual` is within `tolerance` of `expected`.
pub fn within(actual: f64, expected: f64, tolerance: Tolerance) -> bool {
    let allowed = match tolerance {
        Tolerance::Absolute(t) => t.abs(),
        Tolerance::Relative(r) => (r * expected).abs(),
    };
    // Absorb the rounding of decimal fractions (0.1 + 0.2).
    let eps = 1e-9 * expected.abs().max(1.0);
    (actual - expected).abs() <= allowed + eps
}

/// `numeric`: the last number of the output, or the number in the first capture group of
/// `pattern` (the whole match when it has no group), within `tolerance` of `expected`.
pub fn numeric(
    output: &str,
    pattern: Option<&Regex>,
    expected: f64,
    tolerance: Tolerance,
) -> Verdict {
    let found = match pattern {
        Some(re) => {
            let Some(caps) = re.captures(output) else {
                return Verdict::binary(
                    false,
                    format!("output does not match the pattern /{}/", re.as_str()),
                    serde_json::Value::Null,
                );
            };
            let Some(m) = caps.get(1).or_else(|| caps.get(0)) else {
                return Verdict::binary(
                    false,
                    "the pattern captured nothing".into(),
                    serde_json::Value::Null,
                );
            };
            first_number(m.as_str()).ok_or_else(|| {
                format!(
                    "the pattern captured {}, which is not a number",
                    quote(m.as_str())
                )
            })
        }
        None => last_number(output).ok_or_else(|| "output contains no number".to_owned()),
    };
    let number = match found {
        Ok(n) => n,
        Err(reason) => return Verdict::binary(false, reason, json!({ "expected": expected })),
    };
    let tol = match tolerance {
        Tolerance::Absolute(t) => json!({ "absolute": t }),
        Tolerance::Relative(r) => json!({ "relative": r }),
    };
    let details = json!({
        "extracted": number.value,
        "text": number.text,
        "percent": number.percent,
        "expected": expected,
        "difference": number.value - expected,
        "tolerance": tol,
    });
    let pass = within(number.value, expected, tolerance);
    let reason = if pass {
        format!("{} is within tolerance of {expected}", number.value)
    } else {
        format!("{} is not within tolerance of {expected}", number.value)
    };
    Verdict::binary(pass, reason, details)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last(s: &str) -> Option<f64> {
        last_number(s).map(|n| n.value)
    }

    fn all(s: &str) -> Vec<f64> {
        numbers(s).map(|n| n.value).collect()
    }

    #[test]
    fn plain_and_decimal() {
        assert_eq!(last("The answer is 42."), Some(42.0));
        assert_eq!(last("about 2.71 or so"), Some(2.71));
        assert_eq!(last(".5 of it"), Some(0.5));
        assert_eq!(last("no digits here"), None);
        assert_eq!(last(""), None);
    }

    #[test]
    fn thousands_currency_percent_sign() {
        assert_eq!(last("Total: 1,234.50"), Some(1234.5));
        assert_eq!(last("Total: $1,234,567.89 due"), Some(1_234_567.89));
        assert_eq!(last("costs €12"), Some(12.0));
        assert_eq!(last("costs £ 7.5"), Some(7.5));
        assert_eq!(last("¥300"), Some(300.0));
        assert_eq!(last("margin 45%"), Some(45.0));
        assert!(last_number("margin 45 %").unwrap().percent);
        assert_eq!(last("change: -12.5"), Some(-12.5));
        assert_eq!(last("change: +3"), Some(3.0));
        assert_eq!(last("loss of -$1,000"), Some(-1000.0));
        assert_eq!(last("loss of $-1,000"), Some(-1000.0));
        assert_eq!(last("\u{2212}4 degrees"), Some(-4.0));
        assert_eq!(last("1.5e3 m"), Some(1500.0));
    }

    #[test]
    fn hyphens_are_not_signs() {
        assert_eq!(all("on 2024-05-17"), vec![2024.0, 5.0, 17.0]);
        assert_eq!(all("from 3-4 days"), vec![3.0, 4.0]);
        assert_eq!(all("x -2"), vec![-2.0]);
    }

    #[test]
    fn commas_not_in_groups_of_three_separate_numbers() {
        assert_eq!(all("1,5"), vec![1.0, 5.0]);
        assert_eq!(all("1, 2, 3"), vec![1.0, 2.0, 3.0]);
        assert_eq!(all("12,3456"), vec![12.0, 3456.0]);
    }

    #[test]
    fn tolerance() {
        assert!(within(10.05, 10.0, Tolerance::Absolute(0.1)));
        assert!(!within(10.2, 10.0, Tolerance::Absolute(0.1)));
        assert!(within(0.1 + 0.2, 0.3, Tolerance::Absolute(0.0)));
        assert!(within(101.0, 100.0, Tolerance::Relative(0.01)));
        assert!(!within(102.0, 100.0, Tolerance::Relative(0.01)));
        assert!(within(-101.0, -100.0, Tolerance::Relative(0.01)));
        assert!(!within(0.5, 0.0, Tolerance::Relative(0.5)));
    }

    #[test]
    fn numeric_last_number() {
        let v = numeric(
            "Step 1: 3 items at $10. Total: $30.00",
            None,
            30.0,
            Tolerance::Absolute(0.0),
        );
        assert!(v.pass);
        assert_eq!(v.details["extracted"], 30.0);
        let v = numeric("Total: 31", None, 30.0, Tolerance::Absolute(0.5));
        assert!(!v.pass);
        assert_eq!(v.reason, "31 is not within tolerance of 30");
        let v = numeric("no number", None, 30.0, Tolerance::Absolute(0.5));
        assert!(!v.pass);
        assert_eq!(v.reason, "output contains no number");
    }

    #[test]
    fn numeric_with_pattern() {
        let re = Regex::new(r"Total: (\S+)").unwrap();
        let out = "Total: $1,234.50 (was 999)";
        assert!(numeric(out, Some(&re), 1234.5, Tolerance::Absolute(0.0)).pass);
        // Without a pattern the last number (999) is read.
        assert!(!numeric(out, None, 1234.5, Tolerance::Absolute(0.0)).pass);
        let v = numeric("nothing", Some(&re), 1.0, Tolerance::Absolute(0.0));
        assert!(!v.pass);
        assert!(v.reason.contains("does not match the pattern"));
        let v = numeric("Total: abc", Some(&re), 1.0, Tolerance::Absolute(0.0));
        assert!(!v.pass);
        assert!(v.reason.contains("not a number"));
        // No group: the whole match.
        let re = Regex::new(r"\d+ apples").unwrap();
        assert!(
            numeric(
                "7 apples, 9 pears",
                Some(&re),
                7.0,
                Tolerance::Absolute(0.0)
            )
            .pass
        );
    }
}
