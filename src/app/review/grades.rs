//! Grades into the store: `review import`, and what `review serve` receives.

use std::collections::HashSet;
use std::path::Path;

use crate::app::traffic::ingest::FUTURE_SLACK_SECS;
use crate::app::{Ctx, Failure, exit};
use crate::review::grades::{self, GradesFile};
use crate::store::{ImportCount, Store};

/// Why a grades file was not imported.
pub(super) enum Rejected {
    /// Not a grades file, or one for no sheet of this store.
    Invalid(String),
    /// Ids that do not belong to the sheet, or a MAC that does not match.
    Tampered(String),
    Store(anyhow::Error),
}

/// Where grades come from: a file given to `review import`, or a sheet's page sending them
/// to `review serve` as the reviewer grades.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Via {
    File,
    Served,
}

/// Check a grades file against its sheet and store it: the one path of `review import` and
/// `review serve`.
pub(super) fn apply_grades(
    store: &mut Store,
    text: &str,
    label: &str,
    via: Via,
) -> Result<(GradesFile, ImportCount), Rejected> {
    let mut file = grades::parse(text, label).map_err(|e| Rejected::Invalid(e.to_string()))?;
    // An export time ahead of the clock would stay current over every real export after it.
    // Grades sent to `review serve` are being made now: a reviewer's clock that runs ahead
    // gets the server's time instead of a refusal of every save.
    let now = chrono::Utc::now();
    let ahead = chrono::DateTime::parse_from_rfc3339(&file.exported_at)
        .is_ok_and(|t| t.timestamp() > now.timestamp() + FUTURE_SLACK_SECS);
    if ahead && via == Via::Served {
        file.exported_at = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    } else if ahead {
        return Err(Rejected::Invalid(format!(
            "import the grades in {label}: `exported_at` {} is in the future (now is {}; a clock that is off?); nothing was imported: export the grades again from a machine whose clock is right",
            file.exported_at,
            now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )));
    }
    let sheet = store
        .sheet(&file.sheet_id)
        .map_err(|e| Rejected::Store(e.into()))?
        .ok_or_else(|| {
            Rejected::Invalid(format!(
                "import the grades in {label}: no review sheet {} in this store (`evalwatch review list --all` shows them); is --db the store the sheet was sampled from?",
                file.sheet_id
            ))
        })?;
    let items: HashSet<i64> = sheet.items.iter().map(|(id, _, _)| *id).collect();
    grades::check_against_sheet(&file, &sheet.mac, &items)
        .map_err(|e| Rejected::Tampered(e.to_string()))?;
    let imported_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let count = store
        .import_grades(
            &file.sheet_id,
            &file.reviewer,
            &file.exported_at,
            &imported_at,
            &file.grades,
        )
        .map_err(|e| Rejected::Store(e.into()))?;
    Ok((file, count))
}

pub(super) fn summary(file: &GradesFile, c: &ImportCount) -> String {
    format!(
        "sheet {}: {} grade(s) by {}: {} new, {} unchanged, {} superseding an earlier grade{}{}",
        file.sheet_id,
        file.grades.len(),
        file.reviewer,
        c.added,
        c.unchanged,
        c.superseding,
        if c.older > 0 {
            format!(
                "; {} kept as an older grade, not current: {} a grade exported later by {}, which stays current",
                c.older,
                if c.older == 1 {
                    "its item has"
                } else {
                    "their items have"
                },
                file.reviewer
            )
        } else {
            String::new()
        },
        if c.closed {
            "; every item is graded, the sheet is closed"
        } else {
            ""
        }
    )
}

pub(super) fn import(ctx: &Ctx, store: &mut Store, file: &Path) -> anyhow::Result<u8> {
    let path = if file.is_absolute() {
        file.to_path_buf()
    } else {
        ctx.cwd.join(file)
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Failure::invalid(format!("read the grades file {}: {e}", file.display())))?;
    match apply_grades(store, &text, &file.display().to_string(), Via::File) {
        Ok((f, c)) => {
            ctx.printer.result(&format!("imported {}", summary(&f, &c)));
            Ok(exit::OK)
        }
        Err(Rejected::Invalid(m) | Rejected::Tampered(m)) => Err(Failure::invalid(m)),
        Err(Rejected::Store(e)) => Err(e),
    }
}
