//! `alerts check`: every suite's rules against its latest complete run, missed runs
//! included, then every pending notice delivered (backoff ignored).

use std::path::PathBuf;

use chrono::Utc;

use super::apply::{Apply, record_known_flaky};
use super::evaluate::SuiteEval;
use super::{flush_queue, now_rfc3339, project_sinks, reports_dir, suite_rules};
use crate::alert::rule::{MISSED_RUN, Rule, severity_parse};
use crate::alert::sink::{Env, Sink};
use crate::app::{Ctx, Failure, exit};
use crate::model::{ProjectConfig, Severity, Suite};

pub(super) fn check(
    ctx: &Ctx,
    paths: &[PathBuf],
    fail_on: Severity,
    env: Env<'_>,
) -> anyhow::Result<u8> {
    let project = ctx.project()?;
    let Configured {
        suites,
        rules: all_rules,
        sinks,
    } = configured(ctx, &project, paths)?;
    let db = ctx.db_path(&project);
    let mut store = ctx.open_store(&db)?;
    let now = Utc::now();
    let apply = Apply {
        ctx,
        sinks: &sinks,
        reports: reports_dir(&project),
        now: now_rfc3339(now),
    };
    let mut worst: Option<Severity> = None;
    for (suite, rules) in suites.iter().zip(&all_rules) {
        let latest = store.latest_complete_run(&suite.name)?;
        let metrics = match &latest {
            Some(info) => store.run_metrics(&info.run_id)?,
            None => Vec::new(),
        };
        let mut eval = SuiteEval::new(suite, rules, &store);
        let current = latest.as_ref().map(|i| (i, metrics.as_slice()));
        let findings = eval.findings(&store, current, now)?;
        let run_id = latest.as_ref().map(|i| i.run_id.as_str());
        // A missed-run finding belongs to no run.
        let (missed, regular): (Vec<_>, Vec<_>) = findings
            .into_iter()
            .partition(|(i, _)| rules.get(*i).is_some_and(|r| r.metric == MISSED_RUN));
        apply.apply(&mut store, suite, rules, &regular, run_id)?;
        if let Some(r) = run_id {
            record_known_flaky(&mut store, &suite.name, r, rules, &regular)?;
        }
        apply.apply(&mut store, suite, rules, &missed, None)?;
        let open = store.open_alerts(Some(&suite.name))?;
        if open.is_empty() {
            ctx.printer.info(&format!("{}: no open alerts", suite.name));
        }
        for a in &open {
            ctx.printer
                .result(&format!("open [{}] {}", a.severity, a.message));
            if let Some(s) = severity_parse(&a.severity) {
                worst = worst.max(Some(s));
            }
        }
    }
    for source in &project.traffic {
        let suite = super::traffic::alert_suite(&source.id);
        let outcome = super::traffic::judge_source(ctx, &mut store, &sinks, source, now)?;
        if outcome.open.is_empty() {
            ctx.printer.info(&format!("{suite}: no open alerts"));
        }
        for a in store.open_alerts(Some(&suite))? {
            ctx.printer
                .result(&format!("open [{}] {}", a.severity, a.message));
        }
        worst = worst.max(outcome.open.into_iter().max());
    }
    let (delivered, left) = flush_queue(ctx, &mut store, &sinks, env, true)?;
    if delivered > 0 || left > 0 {
        ctx.printer
            .info(&format!("notices: {delivered} delivered, {left} queued"));
    }
    Ok(if worst.is_some_and(|w| w >= fail_on) {
        exit::GATE
    } else {
        exit::OK
    })
}

/// What `alerts check` works with.
struct Configured {
    suites: Vec<Suite>,
    /// Each suite's rules, in the order of `suites`.
    rules: Vec<Vec<Rule>>,
    sinks: Vec<Sink>,
}

/// The suites of `paths`, each one's rules, and the sinks; or exit 2 with every problem.
fn configured(ctx: &Ctx, project: &ProjectConfig, paths: &[PathBuf]) -> anyhow::Result<Configured> {
    // A project that only watches traffic has no suites to check.
    let files = crate::app::suite_files_if_any(ctx, project, paths)?;
    let (suites, diags) = crate::suite::load_suites(&files, project);
    if !diags.is_empty() {
        return Err(Failure::invalid(crate::app::render_diagnostics(
            ctx, &diags,
        )));
    }
    let mut problems = Vec::new();
    let mut all_rules = Vec::new();
    for suite in &suites {
        match suite_rules(ctx, project, suite) {
            Ok(r) => all_rules.push(r),
            Err(e) => {
                problems.extend(e);
                all_rules.push(Vec::new());
            }
        }
    }
    let sinks = project_sinks(project).unwrap_or_else(|e| {
        problems.extend(e);
        Vec::new()
    });
    if !problems.is_empty() {
        return Err(Failure::invalid(problems.join("\n")));
    }
    Ok(Configured {
        suites,
        rules: all_rules,
        sinks,
    })
}
