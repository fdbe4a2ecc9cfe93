//! `schedule --list` and `schedule status`: each suite's schedule, next fires, last run,
//! and whether it is due, running or overdue; text for people, JSON for tools.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::Settings;
use super::daemon::handled_in;
use super::judge::{Unschedulable, judge};
use crate::app::{Ctx, Failure, exit};
use crate::cli::ReadFormat;
use crate::model::Suite;
use crate::schedule::daemon::{self, Outcome};
use crate::schedule::{self as sched, Policy, Schedule};
use crate::store::{LeaseRow, Store};

/// `schedule --list`: a few lines per suite.
pub(super) fn list(ctx: &Ctx, settings: &Settings) -> anyhow::Result<u8> {
    show(ctx, settings, "schedule --list", list_lines)
}

/// `schedule status`: one line per suite.
pub(super) fn status(ctx: &Ctx, settings: &Settings) -> anyhow::Result<u8> {
    show(ctx, settings, "schedule status", |row| {
        vec![status_line(row)]
    })
}

/// The rows of every suite, as JSON or as the lines `lines` makes of each; then exit 2 when
/// a suite cannot be scheduled.
fn show(
    ctx: &Ctx,
    settings: &Settings,
    what: &str,
    lines: impl Fn(&Value) -> Vec<String>,
) -> anyhow::Result<u8> {
    let now = settings.now.unwrap_or_else(Utc::now);
    let (rows, invalid) = suite_rows(ctx, settings, now)?;
    if settings.format == ReadFormat::Json {
        ctx.printer.result(&Value::Array(rows).to_string());
        return invalid_exit(what, &invalid);
    }
    if rows.is_empty() {
        ctx.printer.result("no suites found");
    }
    for row in &rows {
        for line in lines(row) {
            ctx.printer.result(&line);
        }
    }
    invalid_exit(what, &invalid)
}

/// What `--list` says of a suite.
fn list_lines(row: &Value) -> Vec<String> {
    let name = row["suite"].as_str().unwrap_or("");
    if row["valid"] == false {
        return vec![format!(
            "{name}: cannot be scheduled ({}): see the errors below",
            row["file"].as_str().unwrap_or("")
        )];
    }
    let tz = row["timezone"].as_str().unwrap_or("UTC");
    let Some(expr) = row["schedule"].as_str() else {
        return vec![format!("{name}: no schedule (run by hand or by `run`)")];
    };
    let mut lines = vec![format!("{name}: {expr} ({tz})")];
    if let Some(e) = row["error"].as_str() {
        lines.push(format!("  error: {e}"));
        return lines;
    }
    let next: Vec<String> = row["next"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str())
                .map(|t| local(t, tz))
                .collect()
        })
        .unwrap_or_default();
    lines.push(format!("  next: {}", next.join(", ")));
    lines.push(format!("  last run: {}", last_run_text(row)));
    if row["due"] == true {
        lines.push("  due now".into());
    }
    lines
}

/// What `status` says of a suite.
fn status_line(row: &Value) -> String {
    let name = row["suite"].as_str().unwrap_or("");
    let state = if row["valid"] == false {
        "CANNOT BE SCHEDULED: see the errors below".to_owned()
    } else if row["schedule"].is_null() {
        "unscheduled".to_owned()
    } else if let Some(e) = row["error"].as_str() {
        format!("invalid schedule: {e}")
    } else if !row["running"].is_null() {
        format!(
            "running (pid {} on {})",
            row["running"]["pid"],
            row["running"]["host"].as_str().unwrap_or("")
        )
    } else if let Some(since) = row["overdue_since"].as_str() {
        format!("OVERDUE since {since}")
    } else if row["due"] == true {
        "due".to_owned()
    } else {
        "ok".to_owned()
    };
    let next = row["next"][0].as_str().unwrap_or("-");
    format!(
        "{name}  last: {}  next: {next}  {state}",
        last_run_text(row)
    )
}

/// What `--list` and `status` show about each suite (scheduled or not), as JSON objects:
/// `suite`, `file`, `schedule`, `timezone`, `error`, `next`, `last_run`, `last_fire`,
/// `running`, `due`, `overdue`, `overdue_since`.
fn suite_rows(
    ctx: &Ctx,
    settings: &Settings,
    now: DateTime<Utc>,
) -> anyhow::Result<(Vec<Value>, Vec<Unschedulable>)> {
    let (suites, invalid) = judge(ctx, &settings.paths)?;
    let project = ctx.project()?;
    let store = ctx.open_store(&ctx.db_path(&project))?;
    let leases = store.leases()?;
    let mut rows = Vec::new();
    for s in &suites {
        rows.push(suite_row(ctx, &store, &leases, s, settings, now)?);
    }
    rows.extend(invalid.iter().map(invalid_row));
    Ok((rows, invalid))
}

/// The row of a suite that loads.
fn suite_row(
    ctx: &Ctx,
    store: &Store,
    leases: &[LeaseRow],
    s: &Suite,
    settings: &Settings,
    now: DateTime<Utc>,
) -> anyhow::Result<Value> {
    let last_run = store.last_run_start(&s.name, false)?;
    let last_fire = store.fires(Some(&s.name), 1)?.into_iter().next();
    let running = leases
        .iter()
        .find(|l| l.suite == s.name && l.expires_at > Utc::now())
        .map(|l| json!({"pid": l.pid, "host": l.host, "since": daemon::rfc3339(l.acquired_at)}));
    let mut row = json!({
        "suite": s.name,
        "file": ctx.shown(&s.source),
        "schedule": s.schedule,
        "timezone": s.timezone.clone().unwrap_or_else(|| "UTC".into()),
        "error": Value::Null,
        "next": [],
        "last_run": last_run.as_ref().map(|r| json!({
            "run_id": r.run_id,
            "started_at": daemon::rfc3339(r.started_at),
            "status": r.status.as_str(),
        })),
        "last_fire": last_fire.as_ref().map(|f| json!({
            "window": daemon::rfc3339(f.scheduled_for),
            "fired_at": daemon::rfc3339(f.fired_at),
            "outcome": f.outcome,
            "run_id": f.run_id,
        })),
        "running": running,
        "due": false,
        "overdue": false,
        "overdue_since": Value::Null,
    });
    match s
        .schedule
        .as_deref()
        .map(|e| Schedule::parse(e, s.timezone.as_deref()))
    {
        None => {}
        Some(Err(e)) => row["error"] = e.to_string().into(),
        Some(Ok(schedule)) => timing(store, s, &schedule, settings, now, &mut row)?,
    }
    Ok(row)
}

/// The next fires of a scheduled suite, and whether it is due or overdue.
fn timing(
    store: &Store,
    s: &Suite,
    schedule: &Schedule,
    settings: &Settings,
    now: DateTime<Utc>,
    row: &mut Value,
) -> anyhow::Result<()> {
    row["next"] = schedule
        .upcoming(now, settings.count.max(1))
        .into_iter()
        .map(|t| Value::from(daemon::rfc3339(t)))
        .collect();
    let handled = handled_in(store, &s.name).map_err(anyhow::Error::msg)?;
    let policy = settings.policy_now();
    let own = Policy {
        catch_up: s.catch_up.unwrap_or(policy.catch_up),
        ..policy
    };
    let d = sched::decide(&s.name, schedule, handled, now, &own);
    row["due"] = matches!(d.action, sched::Action::Run { .. }).into();
    // A run counts from its start, or from the window it ran for.
    let counted = store.last_run_start(&s.name, true)?;
    let ran = store
        .last_fire_with(&s.name, Outcome::Ran.as_str())?
        .map(|f| f.scheduled_for);
    let last = counted.map(|r| r.started_at).max(ran);
    let since = sched::overdue_since(schedule, last, now, policy.grace);
    row["overdue"] = since.is_some().into();
    row["overdue_since"] = since.map(daemon::rfc3339).into();
    Ok(())
}

/// The row of a suite that cannot be scheduled.
fn invalid_row(bad: &Unschedulable) -> Value {
    json!({
        "suite": bad.suite,
        "file": bad.file,
        "valid": false,
        "schedule": Value::Null,
        "timezone": Value::Null,
        "error": bad.problems,
        "next": [],
        "last_run": Value::Null,
        "last_fire": Value::Null,
        "running": Value::Null,
        "due": false,
        "overdue": false,
        "overdue_since": Value::Null,
    })
}

/// An instant in a suite's time zone, for people.
fn local(t: &str, tz: &str) -> String {
    let Ok(at) = DateTime::parse_from_rfc3339(t) else {
        return t.to_owned();
    };
    match tz.parse::<chrono_tz::Tz>() {
        Ok(tz) => at
            .with_timezone(&tz)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string(),
        Err(_) => t.to_owned(),
    }
}

fn last_run_text(row: &Value) -> String {
    let r = &row["last_run"];
    if r.is_null() {
        return "never".into();
    }
    format!(
        "{} {} ({})",
        r["started_at"].as_str().unwrap_or(""),
        r["status"].as_str().unwrap_or(""),
        r["run_id"].as_str().unwrap_or("")
    )
}

/// After `--list` or `status` showed the valid suites: exit 2 naming every suite that
/// cannot be scheduled, with its located problems.
fn invalid_exit(what: &str, invalid: &[Unschedulable]) -> anyhow::Result<u8> {
    if invalid.is_empty() {
        return Ok(exit::OK);
    }
    Err(Failure::invalid(format!(
        "{what}: {} (the others are listed): {}",
        Unschedulable::count(invalid),
        Unschedulable::fix(invalid)
    )))
}
