//! Which suites the scheduler can schedule: each suite file judged on its own, so that one
//! bad suite never hides the others.

use std::path::PathBuf;

use crate::app::Ctx;
use crate::model::Suite;
use crate::schedule::Schedule;
use crate::schedule::daemon::Entry;
use crate::suite;

/// A suite file the scheduler cannot schedule.
#[derive(Debug, Clone)]
pub(super) struct Unschedulable {
    /// The suite's name, or its file's stem when the name cannot be read.
    pub(super) suite: String,
    /// The file as shown (relative to the working directory).
    pub(super) file: String,
    /// Every problem, rendered (`file:line:col: message` lines).
    pub(super) problems: String,
}

impl Unschedulable {
    /// "N suite(s) cannot be scheduled".
    pub(super) fn count(invalid: &[Self]) -> String {
        let n = invalid.len();
        format!(
            "{n} suite{} cannot be scheduled",
            if n == 1 { "" } else { "s" }
        )
    }

    /// What to do about them, and every problem (`file:line:col: message` lines).
    pub(super) fn fix(invalid: &[Self]) -> String {
        let problems: Vec<&str> = invalid.iter().map(|b| b.problems.as_str()).collect();
        format!(
            "fix {} (`evalwatch validate` lists every problem):\n{}",
            if invalid.len() == 1 { "it" } else { "them" },
            problems.join("\n")
        )
    }
}

/// What the scheduler makes of the suites of `paths`.
pub(super) struct Judgement {
    /// The scheduled suites that are valid.
    pub(super) entries: Vec<Entry>,
    /// Every suite that cannot be scheduled (invalid, or its schedule is).
    pub(super) invalid: Vec<Unschedulable>,
    /// Names (and file stems) of the valid suites: their `unschedulable` alerts resolve.
    pub(super) valid: Vec<String>,
}

/// The one place where the scheduler judges suites, each on its own: the loader's verdict
/// per file (what `validate` reports) and the schedule check `validate` makes. One bad suite
/// never hides the others. Returns every suite (scheduled or not) that is valid, and the
/// invalid ones.
pub(super) fn judge(
    ctx: &Ctx,
    paths: &[PathBuf],
) -> anyhow::Result<(Vec<Suite>, Vec<Unschedulable>)> {
    let project = ctx.project()?;
    let files = crate::app::suite_files(ctx, &project, paths)?;
    let mut suites = Vec::new();
    let mut invalid = Vec::new();
    for judged in crate::app::validate::judge(ctx, &project, &files) {
        let stem = || {
            judged
                .file
                .file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
        };
        match judged.suite {
            Ok(s) => {
                if let Some(expr) = &s.schedule
                    && let Err(e) = Schedule::parse(expr, s.timezone.as_deref())
                {
                    invalid.push(Unschedulable {
                        suite: s.name.clone(),
                        file: ctx.shown(&s.source),
                        problems: format!(
                            "{}: suite `{}`: failed to {e}; fix `schedule:`/`timezone:` (see docs/scheduling.md)",
                            ctx.shown(&s.source),
                            s.name
                        ),
                    });
                } else {
                    suites.push(s);
                }
            }
            Err(problems) => invalid.push(Unschedulable {
                suite: suite::suite_head(&judged.file, &project).map_or_else(stem, |h| h.name),
                file: ctx.shown(&judged.file),
                problems,
            }),
        }
    }
    Ok((suites, invalid))
}

/// The scheduled suites of `paths`, and those that cannot be scheduled.
pub(super) fn load_entries(ctx: &Ctx, paths: &[PathBuf]) -> anyhow::Result<Judgement> {
    let (suites, invalid) = judge(ctx, paths)?;
    let mut entries = Vec::new();
    let mut valid = Vec::new();
    for s in suites {
        valid.push(s.name.clone());
        if let Some(stem) = s.source.file_stem() {
            valid.push(stem.to_string_lossy().into_owned());
        }
        let Some(expr) = &s.schedule else { continue };
        // `judge` parsed it already.
        if let Ok(schedule) = Schedule::parse(expr, s.timezone.as_deref()) {
            entries.push(Entry {
                suite: s.name.clone(),
                file: s.source.clone(),
                schedule,
                catch_up: s.catch_up,
                jitter: s.jitter,
            });
        }
    }
    Ok(Judgement {
        entries,
        invalid,
        valid,
    })
}
