//! `review stats`: agreement of human and automatic verdicts, human quality by run.

use std::fmt::Write as _;

use serde_json::json;

use crate::app::{Ctx, exit};
use crate::cli::ReadFormat;
use crate::report::terminal;
use crate::review::stats::{Agreement, AgreementBuilder};
use crate::review::traffic::{VoteAgreement, VotedGrade, vote_agreement};
use crate::store::{HumanScore, Store};

fn opt(v: Option<f64>, pct: bool) -> String {
    match v {
        None => "n/a".into(),
        Some(x) if pct => terminal::pct(Some(x)),
        Some(x) => format!("{x:.2}"),
    }
}

/// Which grades `review stats` reads.
pub(super) enum Only<'a> {
    /// Suite results (of one suite, or all) and every traffic source's sheets.
    Suite(Option<&'a str>),
    /// Only the traffic sheets of one source.
    Traffic(&'a str),
}

pub(super) fn stats(
    ctx: &Ctx,
    store: &Store,
    only: &Only<'_>,
    format: ReadFormat,
) -> anyhow::Result<u8> {
    let mut builder = AgreementBuilder::default();
    let (scores, traffic) = match only {
        Only::Suite(suite) => {
            store.for_each_graded(*suite, None, |g| {
                builder.add(&g);
                Ok(())
            })?;
            let traffic = if suite.is_none() {
                traffic_grades(store, None)?
            } else {
                Vec::new()
            };
            (store.human_scores(*suite, None)?, traffic)
        }
        Only::Traffic(source) => (Vec::new(), traffic_grades(store, Some(source))?),
    };
    let grades = builder.grades();
    let reviewers = builder.reviewers();
    let tables = builder.finish();
    let votes = vote_agreement(&traffic);
    if format == ReadFormat::Json {
        let mut out = stats_json(grades, &reviewers, &tables, &scores);
        out["traffic"] = votes_json(&votes);
        ctx.printer.result(&serde_json::to_string_pretty(&out)?);
        return Ok(exit::OK);
    }
    if grades == 0 && traffic.is_empty() {
        ctx.printer.result(&match only {
            Only::Traffic(source) => format!(
                "no grades of traffic source {source} yet: `evalwatch review sample --from traffic:{source}`, grade the sheet, then `evalwatch review import`"
            ),
            Only::Suite(_) => "no grades yet: `evalwatch review sample`, grade the sheet, then `evalwatch review import`".to_owned(),
        });
        return Ok(exit::OK);
    }
    if grades > 0 {
        suite_text(ctx, grades, &reviewers, &tables, &scores);
    }
    if !traffic.is_empty() {
        votes_text(ctx, &traffic, &votes);
    }
    Ok(exit::OK)
}

/// The current grades of traffic items, with their users' votes.
fn traffic_grades(store: &Store, source: Option<&str>) -> anyhow::Result<Vec<VotedGrade>> {
    Ok(store
        .traffic_grades(source, None)?
        .into_iter()
        .map(|g| VotedGrade {
            sheet_id: g.sheet_id,
            source: g.source,
            key: g.key,
            feature: g.feature,
            reviewer: g.reviewer,
            pass: g.pass,
            note: g.note,
            vote: g.vote,
            comment: g.comment,
        })
        .collect())
}

/// Reviewers against users' votes, per source: the table, and every disagreement.
fn votes_text(ctx: &Ctx, traffic: &[VotedGrade], votes: &[VoteAgreement]) {
    let mut reviewers: Vec<&str> = traffic.iter().map(|g| g.reviewer.as_str()).collect();
    reviewers.sort_unstable();
    reviewers.dedup();
    ctx.printer.result(&format!(
        "reviewers against users' votes: {} current grade(s) of traffic records by {}",
        traffic.len(),
        reviewers.join(", ")
    ));
    for v in votes {
        let c = v.confusion.counts;
        ctx.printer.result(&format!(
            "source {}: {} graded record(s) with a vote, agreement {}, kappa {}; {} graded without an up or down vote",
            v.source,
            v.n,
            opt(v.agreement, true),
            opt(v.kappa, false),
            v.unrated
        ));
        let t = vec![
            ["", "user up", "user down"].map(String::from).to_vec(),
            vec![
                "reviewer pass".into(),
                c[0][0].to_string(),
                c[0][1].to_string(),
            ],
            vec![
                "reviewer fail".into(),
                c[1][0].to_string(),
                c[1][1].to_string(),
            ],
        ];
        ctx.printer.result(terminal::table_with(&t, 2).trim_end());
        if !v.disagreements.is_empty() {
            ctx.printer
                .result(&format!("  disagreements ({}):", v.disagreements.len()));
        }
        for d in &v.disagreements {
            let mut line = format!(
                "    record {} ({}): {} by {}, user {}",
                d.key,
                d.feature.as_deref().unwrap_or("no feature"),
                if d.pass { "pass" } else { "fail" },
                d.reviewer,
                if d.vote.as_deref() == Some("positive") {
                    "up"
                } else {
                    "down"
                },
            );
            if let Some(c) = d.comment.as_deref().filter(|c| !c.is_empty()) {
                let _ = write!(line, ": \"{}\"", c.replace('\n', " "));
            }
            if !d.note.is_empty() {
                let _ = write!(line, "; reviewer: {}", d.note.replace('\n', " "));
            }
            let _ = write!(line, " [sheet {}]", d.sheet_id);
            ctx.printer.result(&line);
        }
    }
}

/// `review stats --format json`: the `traffic` part.
fn votes_json(votes: &[VoteAgreement]) -> serde_json::Value {
    votes
        .iter()
        .map(|v| {
            let c = v.confusion.counts;
            json!({
                "source": v.source, "n": v.n, "unrated": v.unrated,
                "confusion": {"reviewer_pass_user_up": c[0][0], "reviewer_pass_user_down": c[0][1],
                              "reviewer_fail_user_up": c[1][0], "reviewer_fail_user_down": c[1][1]},
                "agreement": v.agreement, "kappa": v.kappa,
                "disagreements": v.disagreements.iter().map(|d| json!({
                    "sheet_id": d.sheet_id, "key": d.key, "feature": d.feature,
                    "reviewer": d.reviewer, "verdict": if d.pass {"pass"} else {"fail"},
                    "note": d.note, "vote": d.vote, "comment": d.comment,
                })).collect::<Vec<_>>(),
            })
        })
        .collect()
}

/// The suites' part of the text.
fn suite_text(
    ctx: &Ctx,
    grades: u64,
    reviewers: &[String],
    tables: &[Agreement],
    scores: &[HumanScore],
) {
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
    for a in tables {
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
        for h in scores {
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
