//! The human text of a finding: p-values, metric values, amounts and changes, and the line
//! that says whether a threshold was breached.

use crate::alert::rule::{Condition, Rule};

/// A p-value for humans: `0.0312`, `< 1e-6`.
#[must_use]
pub fn fmt_p(p: f64) -> String {
    if p < 1e-6 {
        "< 1e-6".to_owned()
    } else if p < 0.001 {
        format!("{p:.1e}")
    } else {
        format!("{p:.4}")
    }
}

/// `= 0.0312`, `< 1e-6`: a p-value after its `p`.
pub(super) fn p_text(p: f64) -> String {
    let s = fmt_p(p);
    if s.starts_with('<') {
        s
    } else {
        format!("= {s}")
    }
}

/// A metric value for humans: rates as percentages, the rest with few digits.
#[must_use]
pub fn fmt_value(metric: &str, v: f64) -> String {
    if metric.ends_with("_rate") {
        format!("{:.1}%", v * 100.0)
    } else if metric.ends_with("_usd") {
        format!("${v:.4}")
    } else if metric.ends_with("_ms") {
        format!("{v:.0} ms")
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// An amount of a metric: points for a rate (`0.05` is 5.0 points), the metric's unit
/// otherwise.
#[must_use]
pub fn fmt_amount(metric: &str, v: f64) -> String {
    if metric.ends_with("_rate") {
        format!("{:.1} points", v * 100.0)
    } else {
        fmt_value(metric, v)
    }
}

/// The change from `base` to `value`: its absolute size (points for a rate) and its
/// relative size in percent: `down 60.0 points (-66.7%)`, `up 100 ms (+9.1%)`, `unchanged`.
#[must_use]
pub fn fmt_change(metric: &str, value: f64, base: f64) -> String {
    let diff = value - base;
    if diff == 0.0 {
        return "unchanged".into();
    }
    let dir = if diff < 0.0 { "down" } else { "up" };
    let rel = if base == 0.0 {
        String::new()
    } else {
        format!(" ({:+.1}%)", diff / base.abs() * 100.0)
    };
    format!("{dir} {}{rel}", fmt_amount(metric, diff.abs()))
}

pub(super) fn describe_threshold(
    rule: &Rule,
    value: f64,
    base: Option<f64>,
    breached: bool,
) -> String {
    let m = &rule.metric;
    let v = fmt_value(m, value);
    let (text, verdict) = match (rule.condition, base) {
        (Condition::Min(x), _) => (
            format!("{m} {v}, floor {}", fmt_value(m, x)),
            if breached {
                "below the floor"
            } else {
                "not below the floor"
            },
        ),
        (Condition::Max(x), _) => (
            format!("{m} {v}, ceiling {}", fmt_value(m, x)),
            if breached {
                "above the ceiling"
            } else {
                "not above the ceiling"
            },
        ),
        (Condition::Ratio(r), Some(b)) if b > 0.0 => {
            let ratio = value / b;
            let cmp = match (r >= 1.0, breached) {
                (true, true) => ">=",
                (true, false) => "<",
                (false, true) => "<=",
                (false, false) => ">",
            };
            (
                format!(
                    "{m} {v} vs baseline {}: ratio {ratio:.2} {cmp} limit {r}",
                    fmt_value(m, b)
                ),
                if breached {
                    "breached"
                } else {
                    "within limits"
                },
            )
        }
        (Condition::Ratio(_), Some(b)) => (
            format!(
                "{m} {v} vs baseline {}: no ratio to a zero baseline",
                fmt_value(m, b)
            ),
            "not judged",
        ),
        (Condition::Drop(d) | Condition::Rise(d), Some(b)) => {
            let want = if matches!(rule.condition, Condition::Drop(_)) {
                "drop"
            } else {
                "rise"
            };
            (
                format!(
                    "{m} {v} vs baseline {}: {}, limit a {want} of {}",
                    fmt_value(m, b),
                    fmt_change(m, value, b),
                    fmt_amount(m, d)
                ),
                if breached {
                    "breached"
                } else {
                    "within limits"
                },
            )
        }
        (_, Some(b)) => (format!("{m} {v} vs baseline {}", fmt_value(m, b)), ""),
        (_, None) => (format!("{m} {v}"), ""),
    };
    if verdict.is_empty() {
        text
    } else {
        format!("{text}: {verdict}")
    }
}
