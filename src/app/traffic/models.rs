//! After each batch `ingest` reads: a model value a traffic source had not seen before is a
//! change, marked by itself (kind `model`, origin `auto`, for that source) at the start of
//! the first bucket that holds it, so that the source's alerts and page name it.

use chrono::TimeZone as _;

use crate::app::Ctx;
use crate::model::{MarkKind, MarkOrigin, TrafficSource};
use crate::schedule::daemon::rfc3339;
use crate::store::{NewMark, Store};

/// Models first seen within this long of a source's first record are its starting mix (a
/// service that alternates two models from the start), not a change.
const STARTING_MIX_SECS: i64 = 3_600;

/// Mark each model of `source` that appeared after another one; says so for the new ones.
/// The same model is marked once, however often this runs.
pub(super) fn mark_new_models(
    ctx: &Ctx,
    store: &mut Store,
    source: &TrafficSource,
) -> anyhow::Result<()> {
    let models = store.traffic_models_first_seen(&source.id)?;
    let created = rfc3339(chrono::Utc::now());
    let Some(source_first) = models.iter().map(|(_, f)| *f).min() else {
        return Ok(());
    };
    for (i, (model, first)) in models.iter().enumerate() {
        if *first - source_first < STARTING_MIX_SECS {
            continue;
        }
        // The model answering just before it: the newest first seen earlier.
        let Some((before, _)) = models[..i].iter().rev().find(|(_, f)| f < first) else {
            continue;
        };
        let Some(at) = chrono::Utc.timestamp_opt(*first, 0).single() else {
            continue;
        };
        let text = format!("{} {before} -> {model}", source.id);
        let (_, added) = store.add_mark(&NewMark {
            kind: MarkKind::Model,
            text: &text,
            at: &rfc3339(at),
            feature: None,
            source: Some(&source.id),
            origin: MarkOrigin::Auto,
            created_at: &created,
        })?;
        if added {
            ctx.printer
                .note(&format!("new model seen in traffic: {text} (marked)"));
        }
    }
    Ok(())
}
