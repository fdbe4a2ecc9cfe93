//! The text summary of a run: a readable table per provider, gates, failures.

use std::fmt::Write as _;

use super::RunView;
use crate::model::{CaseStatus, Metrics, ResultRecord};

/// A rate as a percentage, "n/a" when undefined.
#[must_use]
pub fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), |x| format!("{:.1}%", x * 100.0))
}

fn num(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "n/a".into(), |x| format!("{x:.decimals$}"))
}

/// A metric value without noise: at most four decimals, trailing zeros dropped.
#[must_use]
pub fn value(v: Option<f64>) -> String {
    v.map_or_else(
        || "n/a".into(),
        |x| {
            let s = format!("{x:.4}");
            let s = s.trim_end_matches('0').trim_end_matches('.');
            if s == "-0" { "0".into() } else { s.to_string() }
        },
    )
}

/// Render rows as an aligned table (first column left, the rest right-aligned).
#[must_use]
pub fn table(rows: &[Vec<String>]) -> String {
    table_with(rows, 1)
}

/// Render rows as an aligned table: the first `left` columns (text) left-aligned, the rest
/// (numbers) right-aligned.
#[must_use]
pub fn table_with(rows: &[Vec<String>], left: usize) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c == 0 {
                let _ = write!(line, "{cell:<w$}", w = widths[c]);
            } else if c < left {
                let _ = write!(line, "  {cell:<w$}", w = widths[c]);
            } else {
                let _ = write!(line, "  {cell:>w$}", w = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn metric_row(label: String, m: &Metrics) -> Vec<String> {
    vec![
        label,
        m.cases.to_string(),
        m.passed.to_string(),
        m.failed.to_string(),
        m.errors.to_string(),
        m.unscorable.to_string(),
        pct(m.pass_rate),
        num(m.mean_score, 3),
        num(m.latency_p50_ms, 0),
        num(m.latency_p95_ms, 0),
        format!("{:.4}", m.cost_usd),
    ]
}

fn header() -> Vec<String> {
    [
        "provider",
        "cases",
        "passed",
        "failed",
        "errors",
        "unscorable",
        "pass_rate",
        "mean_score",
        "p50_ms",
        "p95_ms",
        "cost_usd",
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect()
}

/// Header line, metrics per provider (and per tag when `with_tags`), gates.
#[must_use]
pub fn summary(view: &RunView<'_>, with_tags: bool) -> String {
    let mut out = String::new();
    let wall = view
        .wall_secs
        .map(|s| format!("  {s:.2}s"))
        .unwrap_or_default();
    let filtered = view
        .info
        .filter
        .as_ref()
        .map(|f| format!("  (filtered: {f}; no baseline for later runs)"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{}  run {}  {}{}{}",
        view.info.suite,
        view.info.run_id,
        view.info.status.as_str(),
        wall,
        filtered
    );
    let mut rows = vec![header()];
    for m in view.overall() {
        rows.push(metric_row(m.provider.clone(), &m.metrics));
    }
    if with_tags {
        for m in view.metrics.iter().filter(|m| m.tag.is_some()) {
            let tag = m.tag.as_deref().unwrap_or_default();
            rows.push(metric_row(format!("{} #{tag}", m.provider), &m.metrics));
        }
    }
    out.push_str(&table(&rows));
    for m in view.overall() {
        if !m.metrics.errors_by_kind.is_empty() {
            let kinds: Vec<String> = m
                .metrics
                .errors_by_kind
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            let _ = writeln!(out, "errors on {}: {}", m.provider, kinds.join(", "));
        }
        if !m.metrics.labels.is_empty() {
            let labels: Vec<String> = m
                .metrics
                .labels
                .iter()
                .map(|l| {
                    format!(
                        "{} P={} R={} F1={}",
                        l.label,
                        num(l.precision, 2),
                        num(l.recall, 2),
                        num(l.f1, 2)
                    )
                })
                .collect();
            let _ = writeln!(out, "labels on {}: {}", m.provider, labels.join("; "));
        }
        if let Some(rate) = m.metrics.hallucination_rate {
            let _ = writeln!(
                out,
                "hallucination on {}: {} of {} checked results, {} (contradiction {}, unsupported {})",
                m.provider,
                m.metrics.hallucinated,
                m.metrics.hallucination_checked,
                pct(Some(rate)),
                pct(m.metrics.contradiction_rate),
                pct(m.metrics.unsupported_rate)
            );
        }
        if m.metrics.judge_tokens > 0 || m.metrics.judge_cost_usd > 0.0 {
            let _ = writeln!(
                out,
                "judge calls for {}: {} tokens, ${:.4} (not in cost_usd)",
                m.provider, m.metrics.judge_tokens, m.metrics.judge_cost_usd
            );
        }
        repeat_lines(&mut out, &m.provider, &m.metrics, with_tags);
        if !m.metrics.flaky_cases.is_empty() {
            let _ = writeln!(
                out,
                "flaky on {}: {}",
                m.provider,
                m.metrics.flaky_cases.join(", ")
            );
        }
    }
    for g in view.gates {
        let _ = writeln!(
            out,
            "gate {} {} on {}: {} {}",
            g.metric,
            g.limit,
            g.provider,
            value(g.value),
            if g.ok { "ok" } else { "BREACHED" }
        );
    }
    out
}

/// Case verdicts not passed, listed at most.
const SHOWN_VERDICTS: usize = 10;

/// With `repeat` > 1: the policy, the case pass rate and the agreement of one provider, and
/// (`detailed`) the cases whose verdict is not `passed`.
fn repeat_lines(out: &mut String, provider: &str, m: &Metrics, detailed: bool) {
    let Some(policy) = m.repeat_policy else {
        return;
    };
    let count = |s: CaseStatus| m.case_verdicts.iter().filter(|v| v.verdict == s).count();
    let (passed, failed) = (count(CaseStatus::Passed), count(CaseStatus::Failed));
    let unscored = m.case_verdicts.len() - passed - failed;
    let overridden = m
        .case_verdicts
        .iter()
        .filter(|v| v.policy != policy)
        .count();
    let mut policy_text = format!("policy {policy}");
    if overridden > 0 {
        let _ = write!(policy_text, " ({overridden} with their own)");
    }
    let mut cases = format!("{passed} of {} cases", passed + failed);
    if unscored > 0 {
        let _ = write!(cases, "; {unscored} with no scored sample");
    }
    let _ = writeln!(
        out,
        "samples on {provider}: {policy_text}; case_pass_rate {} ({cases}); agreement {}",
        pct(m.case_pass_rate),
        pct(m.agreement)
    );
    if !detailed {
        return;
    }
    let not_passed: Vec<String> = m
        .case_verdicts
        .iter()
        .filter(|v| v.verdict != CaseStatus::Passed)
        .map(|v| {
            let mut parts = Vec::new();
            if v.passed + v.failed > 0 {
                parts.push(format!("{} of {} passed", v.passed, v.passed + v.failed));
            }
            match v.errors {
                0 => {}
                1 => parts.push("1 error".to_owned()),
                n => parts.push(format!("{n} errors")),
            }
            if v.unscorable > 0 {
                parts.push(format!("{} unscorable", v.unscorable));
            }
            format!(
                "{} {} ({})",
                v.case_id,
                v.verdict.as_str(),
                parts.join(", ")
            )
        })
        .collect();
    if not_passed.is_empty() {
        return;
    }
    let more = not_passed.len().saturating_sub(SHOWN_VERDICTS);
    let mut line = not_passed[..not_passed.len().min(SHOWN_VERDICTS)].join(", ");
    if more > 0 {
        let _ = write!(line, ", ... and {more} more");
    }
    let _ = writeln!(out, "case verdicts on {provider}: {line}");
}

/// The one line `run -q` prints per run: status, passed of results per provider, and the
/// gates (each breached one named, else "gates ok").
#[must_use]
pub fn verdict_line(view: &RunView<'_>) -> String {
    let mut line = format!(
        "{}  run {}  {}:",
        view.info.suite,
        view.info.run_id,
        view.info.status.as_str()
    );
    let providers: Vec<String> = view
        .overall()
        .map(|m| {
            let not_passed = m.metrics.cases.saturating_sub(m.metrics.passed);
            let mut part = format!(
                " {} {}/{} passed",
                m.provider, m.metrics.passed, m.metrics.cases
            );
            if not_passed > 0 {
                let _ = write!(part, ", {not_passed} not passed");
            }
            part
        })
        .collect();
    if providers.is_empty() {
        line.push_str(" no results");
    } else {
        line.push_str(&providers.join(";"));
    }
    let breached: Vec<String> = view
        .gates
        .iter()
        .filter(|g| !g.ok)
        .map(|g| {
            format!(
                "gate {} {} on {} BREACHED ({})",
                g.metric,
                g.limit,
                g.provider,
                value(g.value)
            )
        })
        .collect();
    if !breached.is_empty() {
        let _ = write!(line, "; {}", breached.join("; "));
    } else if !view.gates.is_empty() {
        line.push_str("; gates ok");
    }
    line
}

/// Why a result did not pass: its error, or its failed assertions as `type: reason`.
#[must_use]
pub fn why_not_passed(rec: &ResultRecord) -> String {
    if let Some(e) = &rec.error {
        return e.clone();
    }
    rec.assertions
        .iter()
        .filter(|a| !a.pass || a.unscorable)
        .map(|a| format!("{}: {}", a.type_name, a.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

/// One line per failed, errored or unscorable result.
#[must_use]
pub fn failure_line(rec: &ResultRecord) -> String {
    let sample = if rec.job.sample > 0 {
        format!(" #{}", rec.job.sample)
    } else {
        String::new()
    };
    let why = why_not_passed(rec);
    format!(
        "  {} {}{} [{}]: {}",
        rec.status.as_str(),
        rec.job.case_id,
        sample,
        rec.job.provider_id,
        why
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns_and_shows_undefined_rates_as_na() {
        let t = table(&[
            vec!["a".into(), "1".into()],
            vec!["long".into(), "100".into()],
        ]);
        assert_eq!(t, "a       1\nlong  100\n");
        let t = table_with(
            &[
                vec!["a".into(), "x".into(), "1".into()],
                vec!["bb".into(), "yyy".into(), "22".into()],
            ],
            2,
        );
        assert_eq!(t, "a   x     1\nbb  yyy  22\n");
        assert_eq!(pct(None), "n/a");
        assert_eq!(pct(Some(0.9166)), "91.7%");
        assert_eq!(value(Some(3020.0)), "3020");
        assert_eq!(value(Some(0.916_666)), "0.9167");
        assert_eq!(value(Some(0.0)), "0");
        assert_eq!(value(None), "n/a");
    }

    #[test]
    fn repeated_runs_show_policy_case_pass_rate_agreement_and_verdicts() {
        use crate::model::{
            CaseStatus::{Error as E, Failed as F, Passed as P},
            Job, ProviderMetrics, RepeatPolicy, RunInfo,
        };
        let mut acc = crate::metrics::RunAccumulator::with_policies(
            RepeatPolicy::All,
            [("c", RepeatPolicy::Any)],
        );
        for (case, statuses) in [
            ("a", [P, P, P]),
            ("b", [P, F, E]),
            ("c", [F, F, P]),
            ("d", [E, E, E]),
        ] {
            for (i, status) in statuses.into_iter().enumerate() {
                acc.add(&ResultRecord::new(
                    Job::of(case, "p", u32::try_from(i).unwrap()),
                    status,
                ));
            }
        }
        let metrics: Vec<ProviderMetrics> = acc.finish(None);
        let info = RunInfo {
            planned: 12,
            ..complete_run()
        };
        let view = RunView {
            info: &info,
            metrics: &metrics,
            gates: &[],
            wall_secs: None,
        };
        let text = summary(&view, true);
        assert!(
            text.contains("samples on p: policy all (1 with their own); case_pass_rate 66.7% (2 of 3 cases; 1 with no scored sample); agreement 72.2%\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "case verdicts on p: b failed (1 of 2 passed, 1 error), d error (3 errors)\n"
            ),
            "{text}"
        );
        assert!(text.contains("flaky on p: b, c\n"), "{text}");
        // Not verbose: the summary line, not the verdict list.
        let short = summary(&view, false);
        assert!(short.contains("samples on p: policy all"), "{short}");
        assert!(!short.contains("case verdicts"), "{short}");
    }

    /// A complete run `r1` of suite `s` on provider `p`.
    fn complete_run() -> crate::model::RunInfo {
        crate::model::RunInfo {
            run_id: "r1".into(),
            suite: "s".into(),
            suite_hash: "h".into(),
            started_at: String::new(),
            finished_at: None,
            status: crate::model::RunStatus::Complete,
            providers: vec!["p".into()],
            planned: 1,
            filter: None,
        }
    }

    #[test]
    fn single_sample_runs_show_no_repeat_line() {
        let metrics = vec![crate::model::ProviderMetrics {
            provider: "p".into(),
            tag: None,
            metrics: Metrics {
                case_pass_rate: Some(1.0),
                ..Metrics::default()
            },
        }];
        let info = complete_run();
        let view = RunView {
            info: &info,
            metrics: &metrics,
            gates: &[],
            wall_secs: None,
        };
        assert!(!summary(&view, true).contains("samples on"));
    }

    #[test]
    fn hallucination_rates_get_a_line_only_when_measured() {
        let with = |rate: Option<f64>| {
            vec![crate::model::ProviderMetrics {
                provider: "p".into(),
                tag: None,
                metrics: Metrics {
                    hallucination_rate: rate,
                    hallucination_checked: 8,
                    hallucinated: 2,
                    contradiction_rate: rate.map(|r| r / 2.0),
                    unsupported_rate: rate,
                    ..Metrics::default()
                },
            }]
        };
        let info = complete_run();
        let measured = with(Some(0.25));
        let view = RunView {
            info: &info,
            metrics: &measured,
            gates: &[],
            wall_secs: None,
        };
        assert!(
            summary(&view, true).contains(
                "hallucination on p: 2 of 8 checked results, 25.0% (contradiction 12.5%, unsupported 25.0%)\n"
            ),
            "{}",
            summary(&view, true)
        );
        let none = with(None);
        let view = RunView {
            metrics: &none,
            ..view
        };
        assert!(!summary(&view, true).contains("hallucination on"));
    }
}
