//! `evalwatch runs` and `evalwatch show`: reading history.

use std::collections::HashMap;
use std::io::Write;

use serde_json::json;

use super::{Ctx, Failure, exit};
use crate::cli::ReadFormat;
use crate::cli::history::{RunsArgs, ShowArgs};
use crate::model::{CaseStatus, RunInfo, RunLabels};
use crate::report::machine::{JsonRunWriter, header};
use crate::report::{RunView, terminal};
use crate::store::{AlertRow, HumanScore, Store, StoreError, VersionCount};

fn open(ctx: &Ctx) -> anyhow::Result<Store> {
    let project = ctx.project()?;
    ctx.existing_store(&project, "read history")
}

pub fn runs(ctx: &Ctx, args: &RunsArgs) -> anyhow::Result<u8> {
    let label = match &args.label {
        Some(flag) => Some(
            crate::app::run::parse_label(flag)
                .map_err(|e| Failure::invalid(format!("read --label `{flag}`: {e}")))?,
        ),
        None => None,
    };
    let store = open(ctx)?;
    let rows = store.runs_labelled(
        args.suite.as_deref(),
        label.as_ref().map(|(k, v)| (k.as_str(), v.as_str())),
        args.limit,
    )?;
    let labels = rows
        .iter()
        .map(|r| store.run_labels(&r.info.run_id))
        .collect::<Result<Vec<_>, _>>()?;
    if args.format == ReadFormat::Json {
        let items: Vec<serde_json::Value> = rows
            .iter()
            .zip(&labels)
            .map(|(r, labels)| {
                let providers: Vec<serde_json::Value> = r
                    .metrics
                    .iter()
                    .map(|m| json!({"provider": m.provider, "metrics": m.metrics}))
                    .collect();
                let mut item = json!({
                    "run_id": r.info.run_id, "suite": r.info.suite, "started_at": r.info.started_at,
                    "finished_at": r.info.finished_at, "status": r.info.status,
                    "planned": r.info.planned, "labels": labels, "providers": providers,
                });
                if let Some(filter) = &r.info.filter {
                    item["filter"] = json!(filter);
                }
                item
            })
            .collect();
        ctx.printer.result(&serde_json::to_string_pretty(&items)?);
        return Ok(exit::OK);
    }
    if rows.is_empty() {
        ctx.printer.result(if label.is_some() {
            "no runs with that label"
        } else {
            "no runs yet"
        });
        return Ok(exit::OK);
    }
    // A labels column when a run has labels.
    let labelled = labels.iter().any(|l| !l.is_empty());
    let mut head = vec!["run_id", "suite", "started_at", "status"];
    if labelled {
        head.push("labels");
    }
    head.extend(["provider", "cases", "pass_rate", "errors", "p95_ms"]);
    let mut table = vec![head.iter().map(|s| (*s).to_string()).collect::<Vec<_>>()];
    for (r, labels) in rows.iter().zip(&labels) {
        let mut base = vec![
            r.info.run_id.clone(),
            r.info.suite.clone(),
            r.info
                .started_at
                .chars()
                .take(19)
                .collect::<String>()
                .replace('T', " "),
            match &r.info.filter {
                Some(filter) => format!("{} (filtered: {filter})", r.info.status.as_str()),
                None => r.info.status.as_str().to_string(),
            },
        ];
        if labelled {
            base.push(labels_text(labels));
        }
        if r.metrics.is_empty() {
            let mut row = base.clone();
            row.extend(["-", "-", "-", "-", "-"].map(String::from));
            table.push(row);
        }
        for m in &r.metrics {
            let mut row = base.clone();
            row.push(m.provider.clone());
            row.push(m.metrics.cases.to_string());
            row.push(terminal::pct(m.metrics.pass_rate));
            row.push(m.metrics.errors.to_string());
            row.push(
                m.metrics
                    .latency_p95_ms
                    .map_or_else(|| "n/a".into(), |v| format!("{v:.0}")),
            );
            table.push(row);
        }
    }
    ctx.printer
        .result(terminal::table_with(&table, head.len() - 4).trim_end());
    Ok(exit::OK)
}

/// `release=v2, branch=main`, or `-` for none.
fn labels_text(labels: &RunLabels) -> String {
    if labels.is_empty() {
        return "-".to_owned();
    }
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A result that changed verdict between the baseline and this run.
struct Flip {
    case_id: String,
    provider: String,
    sample: u32,
    from: CaseStatus,
    to: CaseStatus,
}

fn flips(store: &Store, info: &RunInfo) -> anyhow::Result<(Option<String>, Vec<Flip>)> {
    let Some(base) = store.previous_complete_run(&info.suite, &info.started_at)? else {
        return Ok((None, Vec::new()));
    };
    let before: HashMap<(String, String, u32), CaseStatus> = store
        .result_statuses(&base.run_id)?
        .into_iter()
        .map(|(c, p, s, st)| ((c, p, s), st))
        .collect();
    let mut out = Vec::new();
    for (case_id, provider, sample, to) in store.result_statuses(&info.run_id)? {
        if let Some(&from) = before.get(&(case_id.clone(), provider.clone(), sample))
            && from != to
            && (from == CaseStatus::Passed || to == CaseStatus::Passed)
        {
            out.push(Flip {
                case_id,
                provider,
                sample,
                from,
                to,
            });
        }
    }
    Ok((Some(base.run_id), out))
}

/// `evalwatch show RUN`: the run's summary, human scores, alerts, failures, truncated
/// outputs and flips against its baseline; or all of it as JSON with every result.
pub fn show(ctx: &Ctx, args: &ShowArgs) -> anyhow::Result<u8> {
    let store = open(ctx)?;
    let info = store.run(&args.run_id)?.ok_or_else(|| {
        Failure::invalid(format!(
            "show run `{}`: no such run; `evalwatch runs` lists them",
            args.run_id
        ))
    })?;
    let metrics = store.run_metrics(&info.run_id)?;
    let gates = store.run_gates(&info.run_id)?;
    let wall_secs = info.wall_secs();
    let view = RunView {
        info: &info,
        metrics: &metrics,
        gates: &gates,
        wall_secs,
    };
    let (baseline, flipped) = flips(&store, &info)?;
    let detail = Detail {
        view,
        baseline,
        flipped,
        human: store.human_scores(None, Some(&info.run_id))?,
        alerts: store.alerts_of_run(&info.run_id)?,
        labels: store.run_labels(&info.run_id)?,
        versions: store.run_versions(&info.run_id)?,
    };
    if args.format == ReadFormat::Json {
        show_json(&store, &detail)?;
        return Ok(exit::OK);
    }
    show_text(ctx, &store, &detail, args.failures)?;
    Ok(exit::OK)
}

/// What `show` says of a run besides its results.
struct Detail<'a> {
    view: RunView<'a>,
    /// The previous complete run, when there is one.
    baseline: Option<String>,
    flipped: Vec<Flip>,
    human: Vec<HumanScore>,
    alerts: Vec<AlertRow>,
    labels: RunLabels,
    /// The model versions the providers reported.
    versions: Vec<VersionCount>,
}

/// `show --format json`: the run's header, then every result, streamed.
fn show_json(store: &Store, d: &Detail<'_>) -> anyhow::Result<()> {
    let info = d.view.info;
    let (baseline, alerts, human, flipped) = (&d.baseline, &d.alerts, &d.human, &d.flipped);
    let mut head = header(&d.view, &[]);
    head.insert("baseline_run_id".into(), json!(baseline));
    head.insert("labels".into(), json!(d.labels));
    head.insert(
        "model_versions".into(),
        d.versions
            .iter()
            .map(|v| json!({"provider": v.provider, "model": v.version.model, "fingerprint": v.version.fingerprint, "answers": v.answers}))
            .collect(),
    );
    head.insert(
        "alerts".into(),
        alerts
            .iter()
            .map(|a| alert_json(store, a, &info.run_id))
            .collect::<Result<Vec<_>, _>>()?
            .into(),
    );
    head.insert(
        "human_scores".into(),
        human
            .iter()
            .map(|h| json!({"provider": h.provider, "mean_quality": h.mean_quality, "grades": h.n}))
            .collect(),
    );
    head.insert(
        "flips".into(),
        flipped
            .iter()
            .map(|f| json!({"case_id": f.case_id, "provider": f.provider, "sample": f.sample, "from": f.from, "to": f.to}))
            .collect(),
    );
    let mut lock = crate::output::stdout_writer();
    let mut w = JsonRunWriter::begin(&mut lock, &head)?;
    store.for_each_result(&info.run_id, |rec| {
        w.case(&rec)
            .map_err(|e| StoreError::Other(format!("write output: {e}")))
    })?;
    w.end()?;
    lock.flush()?;
    Ok(())
}

/// One alert of `show --format json`: the fields of `run --format json` under the same names
/// (the spec's `rule`, `metric`, `severity`, `baseline`, `value`, `message`; `alert_id`, ...),
/// as run `run_id` saw them, plus `state` (what the run did to it), `opened_at`, `resolved_at`.
///
/// The values are those of the run: the alert's row holds those of the last run that saw it
/// firing (and the message it opened with), the notices those of the runs that opened and
/// resolved it. `test` and `flipped`
/// are the opening notice's, for the run that opened the alert (null otherwise).
fn alert_json(store: &Store, a: &AlertRow, run_id: &str) -> Result<serde_json::Value, StoreError> {
    let parse = |p: Option<String>| {
        p.and_then(|p| serde_json::from_str::<serde_json::Value>(&p).ok())
            .unwrap_or(serde_json::Value::Null)
    };
    let opening = parse(store.alert_notice_payload(a.id, "alert")?);
    let state = a.state_in(run_id);
    let last = a.last_run.as_deref() == Some(run_id);
    let message = match store.alert_last_message(a.id)? {
        Some(m) if last && state != "resolved" => m,
        _ => a.message.clone(),
    };
    let (value, baseline_value) = if state == "resolved" {
        let resolved = parse(store.alert_notice_payload(a.id, "resolved")?);
        (
            resolved["value"].clone(),
            resolved["baseline_value"].clone(),
        )
    } else if last || opening.is_null() {
        (json!(a.value), json!(a.baseline_value))
    } else {
        (opening["value"].clone(), opening["baseline_value"].clone())
    };
    // As `run` has it: the baseline's kind for a rule that compares with one, else null.
    let compares = opening["condition"]
        .as_object()
        .is_some_and(|c| ["drop", "rise", "ratio"].iter().any(|k| c.contains_key(*k)));
    let baseline = if compares {
        opening["baseline"].clone()
    } else {
        serde_json::Value::Null
    };
    let opened = state == "opened";
    let of_opening = |k: &str| {
        if opened {
            opening[k].clone()
        } else {
            serde_json::Value::Null
        }
    };
    Ok(json!({
        "rule": a.rule,
        "metric": a.metric,
        "severity": a.severity,
        "baseline": baseline,
        "value": value,
        "message": message,
        "provider": a.provider,
        "tag": a.tag,
        "baseline_value": baseline_value,
        "test": of_opening("test"),
        "flipped": opening["flipped"]["total"].as_u64().filter(|_| opened),
        "new": opened,
        "alert_id": a.id,
        "runbook": opening["runbook"],
        "state": state,
        "opened_at": a.opened_at,
        "resolved_at": a.resolved_at,
    }))
}

/// `show` for people.
fn show_text(ctx: &Ctx, store: &Store, d: &Detail<'_>, failures: usize) -> anyhow::Result<()> {
    let info = d.view.info;
    ctx.printer
        .result(terminal::summary(&d.view, true).trim_end());
    if !d.labels.is_empty() {
        ctx.printer
            .result(&format!("labels: {}", labels_text(&d.labels)));
    }
    for v in &d.versions {
        ctx.printer.result(&format!(
            "model version reported by {}: {} ({} answer{})",
            v.provider,
            v.version.label(),
            v.answers,
            if v.answers == 1 { "" } else { "s" }
        ));
    }
    for h in &d.human {
        ctx.printer.result(&format!(
            "human review on {}: mean quality {:.2} of 5 over {} grade{} (`evalwatch review stats` for agreement)",
            h.provider,
            h.mean_quality,
            h.n,
            if h.n == 1 { "" } else { "s" }
        ));
    }
    for a in &d.alerts {
        ctx.printer.result(&format!(
            "alert {} by this run: {} `{}` on {}: {}",
            a.state_in(&info.run_id),
            a.severity,
            a.rule,
            a.provider,
            a.message
        ));
    }
    results_text(ctx, store, &info.run_id, failures)?;
    flips_text(ctx, d.baseline.as_deref(), &d.flipped);
    Ok(())
}

/// The results that did not pass and the outputs cut at `max_output_bytes`, at most
/// `failures` of each (and at least one truncated output).
fn results_text(ctx: &Ctx, store: &Store, run_id: &str, failures: usize) -> anyhow::Result<()> {
    let mut shown = 0usize;
    let mut total = 0usize;
    let mut lines = Vec::new();
    let mut truncated = Vec::new();
    let mut truncated_total = 0usize;
    store.for_each_result(run_id, |rec| {
        if let Some(note) = crate::report::html::truncation_note(&rec) {
            truncated_total += 1;
            if truncated.len() < failures.max(1) {
                let sample = if rec.job.sample > 0 {
                    format!(" #{}", rec.job.sample)
                } else {
                    String::new()
                };
                truncated.push(format!(
                    "  {} [{}]{sample}: {note}",
                    rec.job.case_id, rec.job.provider_id
                ));
            }
        }
        if rec.status != CaseStatus::Passed {
            total += 1;
            if shown < failures {
                shown += 1;
                lines.push(terminal::failure_line(&rec));
            }
        }
        Ok(())
    })?;
    if total > 0 {
        ctx.printer.result(&format!("not passed ({total}):"));
        for l in &lines {
            ctx.printer.result(l);
        }
        if total > shown {
            ctx.printer.result(&format!(
                "  ... and {} more (--failures N shows more)",
                total - shown
            ));
        }
    }
    if truncated_total > 0 {
        ctx.printer.result(&format!(
            "outputs truncated at max_output_bytes ({truncated_total}):"
        ));
        for l in &truncated {
            ctx.printer.result(l);
        }
        if truncated_total > truncated.len() {
            ctx.printer.result(&format!(
                "  ... and {} more",
                truncated_total - truncated.len()
            ));
        }
    }
    Ok(())
}

/// The flips against the baseline.
fn flips_text(ctx: &Ctx, baseline: Option<&str>, flipped: &[Flip]) {
    match baseline {
        None => ctx
            .printer
            .result("baseline: none (no earlier complete run of this suite)"),
        Some(b) if flipped.is_empty() => ctx.printer.result(&format!("baseline {b}: no flips")),
        Some(b) => {
            ctx.printer
                .result(&format!("flips against baseline {b} ({}):", flipped.len()));
            for f in flipped {
                let sample = if f.sample > 0 {
                    format!(" #{}", f.sample)
                } else {
                    String::new()
                };
                ctx.printer.result(&format!(
                    "  {}{} [{}]: {} -> {}",
                    f.case_id,
                    sample,
                    f.provider,
                    f.from.as_str(),
                    f.to.as_str()
                ));
            }
        }
    }
}
