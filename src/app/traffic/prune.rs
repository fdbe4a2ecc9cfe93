//! `evalwatch prune [--dry-run]`: each traffic source's `retention` applied. Buckets are rolled
//! up as they are written (every record counts in its minute, hour and day), so removing old
//! minutes loses no figure: longer windows read the hours and days.

use serde_json::json;

use crate::app::{Ctx, exit};
use crate::cli::ReadFormat;
use crate::cli::traffic::PruneArgs;
use crate::store::PruneBefore;

pub fn run(ctx: &Ctx, args: &PruneArgs) -> anyhow::Result<u8> {
    let project = ctx.project()?;
    // A store with nothing in it has nothing to prune: prune never creates one (a mistyped
    // --db is said, not read, or made, as an empty store).
    let verb = if args.dry_run {
        "prune --dry-run"
    } else {
        "prune"
    };
    let mut store = ctx.existing_store_after(&project, verb, "evalwatch ingest")?;
    let now = chrono::Utc::now().timestamp();
    let mut shown = Vec::new();
    for source in &project.traffic {
        let r = &source.retention;
        let before = PruneBefore {
            records: r.records.map(|s| now - s),
            minute: r.minute.map(|s| now - s),
            hour: r.hour.map(|s| now - s),
            day: r.day.map(|s| now - s),
        };
        let p = store.prune_traffic(&source.id, &before, args.dry_run)?;
        shown.push((source.id.as_str(), p));
    }
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    if args.format == ReadFormat::Json {
        let sources: Vec<_> = shown
            .iter()
            .map(|(id, p)| {
                json!({"source": id, "records": p.records, "keys": p.keys,
                    "minute_buckets": p.minute, "hour_buckets": p.hour, "day_buckets": p.day})
            })
            .collect();
        crate::output::out(&json!({"dry_run": args.dry_run, "sources": sources}).to_string());
        return Ok(exit::OK);
    }
    if shown.is_empty() {
        ctx.printer
            .result("prune: evalwatch.yaml defines no `traffic:` sources; nothing to do");
    }
    for (id, p) in shown {
        ctx.printer.result(&format!(
            "prune `{id}`: {verb} {} records, {} de-duplication keys, {} minute, {} hour and {} day buckets",
            p.records, p.keys, p.minute, p.hour, p.day
        ));
    }
    Ok(exit::OK)
}
