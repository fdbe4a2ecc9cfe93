//! `label_distribution`: whether the predicted labels shifted against the baseline
//! (a chi-square test of homogeneity).

use std::collections::BTreeMap;

use super::text::fmt_p;
use super::{EvalInput, Finding, RunSnapshot, TestResult, Verdict, has_tag};
use crate::alert::rule::{Condition, Rule};
use crate::alert::stats;

/// `label_distribution`: chi-square of predicted labels against the pooled baseline.
pub(super) fn label_shift(
    rule: &Rule,
    provider: &str,
    input: &EvalInput<'_>,
    mut f: Finding,
) -> Finding {
    let tag = rule.tag.as_deref();
    let count = |run: &RunSnapshot, into: &mut BTreeMap<String, (u64, u64)>, first: bool| {
        for s in &run.samples {
            if s.provider != provider || !has_tag(input.case_tags, &s.case_id, tag) {
                continue;
            }
            let Some(label) = &s.label else { continue };
            let e = into.entry(label.clone()).or_default();
            if first {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
        }
    };
    let mut table = BTreeMap::new();
    count(input.current, &mut table, true);
    for run in input.baseline {
        count(run, &mut table, false);
    }
    if input.baseline.is_empty() {
        f.detail = format!("no {} baseline run yet", rule.baseline.label());
        return f;
    }
    let cur: Vec<u64> = table.values().map(|c| c.0).collect();
    let base: Vec<u64> = table.values().map(|c| c.1).collect();
    if cur.iter().sum::<u64>() == 0 || base.iter().sum::<u64>() == 0 {
        f.detail = "no classification labels to compare".into();
        return f;
    }
    let chi = stats::chi_square_homogeneity(&cur, &base);
    let max = match rule.condition {
        Condition::Max(m) => m,
        _ => 0.0,
    };
    f.value = Some(chi.statistic);
    f.test = Some(TestResult {
        name: "chi2",
        p_value: chi.p_value,
        statistic: Some(chi.statistic),
        n: cur.iter().chain(&base).sum(),
    });
    let firing = chi.p_value < rule.alpha && chi.statistic > max;
    f.detail = format!(
        "predicted labels: chi-square {:.2} (df {}), p = {}{}",
        chi.statistic,
        chi.df,
        fmt_p(chi.p_value),
        if firing { "" } else { ": no significant shift" }
    );
    f.verdict = if firing {
        Verdict::Firing
    } else {
        Verdict::Clear
    };
    f
}
