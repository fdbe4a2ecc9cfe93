//! The drift section of a traffic page: each drift metric per day (p-value, flagged past the
//! threshold, what moved on hover and in a list), from a [`DriftHistory`] the composer fills.

use serde::Serialize;

use super::super::{HtmlError, engine_of, render};

/// One drift metric on one day.
#[derive(Debug, Clone, PartialEq)]
pub enum DriftCell {
    /// The test ran.
    Tested {
        p_value: f64,
        /// `KS D = 0.412, p = 3.1e-12`.
        test: String,
        /// What moved, largest first.
        moved: Vec<String>,
    },
    /// Too few records: the reason (`not enough data: n=12, needs 50 (this window)`).
    Short(String),
}

/// Drift per day: `days[i]` is the day (unix seconds of its start, oldest first) of
/// `metrics[j].1[i]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DriftHistory {
    /// The p-value under which a cell is flagged.
    pub max_p: f64,
    /// Records each window needs for a test.
    pub needs: u64,
    pub days: Vec<i64>,
    /// (metric, one cell per day).
    pub metrics: Vec<(String, Vec<DriftCell>)>,
}

#[derive(Serialize)]
struct CellView {
    class: &'static str,
    text: String,
    title: String,
}

#[derive(Serialize)]
struct RowView {
    metric: String,
    cells: Vec<CellView>,
}

#[derive(Serialize)]
struct FlagView {
    day: String,
    metric: String,
    moved: String,
    test: String,
}

#[derive(Serialize)]
struct DriftView {
    max_p: f64,
    needs: u64,
    days: Vec<String>,
    rows: Vec<RowView>,
    flagged: Vec<FlagView>,
}

/// `0.43`, `<0.001`, `1e-12`.
fn short_p(p: f64) -> String {
    if p >= 0.01 {
        format!("{p:.2}")
    } else if p >= 0.001 {
        format!("{p:.3}")
    } else {
        format!("{p:.0e}")
    }
}

fn day(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map_or_else(String::new, |d| d.format("%m-%d").to_string())
}

/// The section as HTML (escaped by the template engine).
pub(super) fn drift_html(h: &DriftHistory) -> Result<String, HtmlError> {
    let t = engine_of(&[(
        "traffic_drift.html",
        include_str!("../templates/traffic_drift.html"),
    )])?;
    let mut flagged = Vec::new();
    let rows = h
        .metrics
        .iter()
        .map(|(metric, cells)| RowView {
            metric: metric.clone(),
            cells: cells
                .iter()
                .zip(&h.days)
                .map(|(c, d)| match c {
                    DriftCell::Tested {
                        p_value,
                        test,
                        moved,
                    } => {
                        let flag = *p_value < h.max_p;
                        if flag {
                            flagged.push(FlagView {
                                day: day(*d),
                                metric: metric.clone(),
                                moved: moved.join(", "),
                                test: test.clone(),
                            });
                        }
                        CellView {
                            class: if flag { "failed" } else { "passed" },
                            text: if flag {
                                format!("! {}", short_p(*p_value))
                            } else {
                                short_p(*p_value)
                            },
                            title: if moved.is_empty() {
                                test.clone()
                            } else {
                                format!("{test}; {}", moved.join(", "))
                            },
                        }
                    }
                    DriftCell::Short(why) => CellView {
                        class: "absent",
                        text: "n/a".into(),
                        title: why.clone(),
                    },
                })
                .collect(),
        })
        .collect();
    flagged.reverse();
    render(
        &t,
        "traffic_drift.html",
        &DriftView {
            max_p: h.max_p,
            needs: h.needs,
            days: h.days.iter().map(|d| day(*d)).collect(),
            rows,
            flagged,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flagged_days_say_what_moved_escaped_and_short_days_say_why() {
        let h = DriftHistory {
            max_p: 0.001,
            needs: 50,
            days: vec![1_700_006_400, 1_700_092_800],
            metrics: vec![(
                "drift.language_mix".into(),
                vec![
                    DriftCell::Short("not enough data: n=12, needs 50 (this window)".into()),
                    DriftCell::Tested {
                        p_value: 3e-12,
                        test: "chi-square 45.20 (df 1), p = 3.0e-12".into(),
                        moved: vec!["<i>Spanish</i> 3% -> 21% of inputs".into()],
                    },
                ],
            )],
        };
        let html = drift_html(&h).expect("render");
        assert!(html.contains("! 3e-12"), "{html}");
        assert!(
            html.contains("title=\"not enough data: n=12, needs 50"),
            "{html}"
        );
        assert!(!html.contains("<i>"), "{html}");
        assert!(
            html.contains("&lt;i&gt;Spanish&lt;&#x2F;i&gt; 3% -&gt; 21% of inputs")
                || html.contains("&lt;i&gt;Spanish"),
            "{html}"
        );
        assert!(html.contains("<h3>What moved</h3>"), "{html}");
        let quiet = DriftHistory {
            metrics: vec![(
                "drift.latency".into(),
                vec![DriftCell::Tested {
                    p_value: 0.4,
                    test: "KS D = 0.020, p = 0.4000".into(),
                    moved: vec![],
                }],
            )],
            days: vec![1_700_006_400],
            ..h
        };
        let html = drift_html(&quiet).expect("render");
        assert!(
            html.contains(">0.40<") && html.contains("No drift past the threshold"),
            "{html}"
        );
    }
}
