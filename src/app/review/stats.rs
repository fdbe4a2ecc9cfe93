//! `review stats`: agreement of human and automatic verdicts, human quality by run.

use serde_json::json;

use crate::app::{Ctx, exit};
use crate::cli::ReadFormat;
use crate::report::terminal;
use crate::review::stats::{Agreement, AgreementBuilder};
use crate::store::{HumanScore, Store};

fn opt(v: Option<f64>, pct: bool) -> String {
    match v {
        None => "n/a".into(),
        Some(x) if pct => terminal::pct(Some(x)),
        Some(x) => format!("{x:.2}"),
    }
}

pub(super) fn stats(
    ctx: &Ctx,
    store: &Store,
    suite: Option<&str>,
    format: ReadFormat,
) -> anyhow::Result<u8> {
    let mut builder = AgreementBuilder::default();
    store.for_each_graded(suite, None, |g| {
        builder.add(&g);
        Ok(())
    })?;
    let scores = store.human_scores(suite, None)?;
    let grades = builder.grades();
    let reviewers = builder.reviewers();
    let tables = builder.finish();
    if format == ReadFormat::Json {
        let out = stats_json(grades, &reviewers, &tables, &scores);
        ctx.printer.result(&serde_json::to_string_pretty(&out)?);
        return Ok(exit::OK);
    }
    if grades == 0 {
        ctx.printer
            .result("no grades yet: `evalwatch review sample`, grade the sheet, then `evalwatch review import`");
        return Ok(exit::OK);
    }
    ctx.printer.result(&format!(
        "{grades} current grade(s) by {}",
        reviewers.join(", ")
    ));
    let mut table = vec![
        [
            "suite",
            "scope",
            "n",
            "h+a+",
            "h+a-",
            "h-a+",
            "h-a-",
            "agree",
            "kappa",
            "false_pass",
            "false_fail",
            "undecided",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for a in &tables {
        let c = a.confusion.counts;
        table.push(vec![
            a.suite.clone(),
            a.scope.clone(),
            a.n.to_string(),
            c[0][0].to_string(),
            c[0][1].to_string(),
            c[1][0].to_string(),
            c[1][1].to_string(),
            opt(a.agreement, true),
            opt(a.kappa, false),
            opt(a.false_pass_rate, true),
            opt(a.false_fail_rate, true),
            a.undecided.to_string(),
        ]);
    }
    ctx.printer
        .result(terminal::table_with(&table, 2).trim_end());
    if !scores.is_empty() {
        ctx.printer.result("human score (mean quality 1-5) by run:");
        let mut t = vec![
            ["run_id", "started_at", "provider", "human_score", "n"]
                .map(String::from)
                .to_vec(),
        ];
        for h in &scores {
            t.push(vec![
                h.run_id.clone(),
                h.started_at
                    .chars()
                    .take(19)
                    .collect::<String>()
                    .replace('T', " "),
                h.provider.clone(),
                format!("{:.2}", h.mean_quality),
                h.n.to_string(),
            ]);
        }
        ctx.printer.result(terminal::table_with(&t, 3).trim_end());
    }
    Ok(exit::OK)
}

/// `review stats --format json`.
fn stats_json(
    grades: u64,
    reviewers: &[String],
    tables: &[Agreement],
    scores: &[HumanScore],
) -> serde_json::Value {
    let human: Vec<serde_json::Value> = scores
        .iter()
        .map(|h| {
            json!({"run_id": h.run_id, "started_at": h.started_at, "provider": h.provider,
                   "human_score": h.mean_quality, "n": h.n})
        })
        .collect();
    let agreement: Vec<serde_json::Value> = tables
        .iter()
        .map(|a| {
            let c = a.confusion.counts;
            json!({
                "suite": a.suite, "scope": a.scope, "n": a.n, "undecided": a.undecided,
                "confusion": {"human_pass_auto_pass": c[0][0], "human_pass_auto_fail": c[0][1],
                              "human_fail_auto_pass": c[1][0], "human_fail_auto_fail": c[1][1]},
                "agreement": a.agreement, "kappa": a.kappa,
                "false_pass_rate": a.false_pass_rate, "false_fail_rate": a.false_fail_rate,
            })
        })
        .collect();
    json!({
        "grades": grades, "reviewers": reviewers, "agreement": agreement, "human_score": human,
    })
}
