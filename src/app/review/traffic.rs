//! `review sample --from traffic:ID`: a stratified, seeded sample of a traffic source's stored
//! records into the same kind of sheet as suite results.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::sample::{DEFAULT_N, DEFAULT_SINCE, write_sheet};
use crate::app::{Ctx, Failure, exit};
use crate::model::{ProjectConfig, TextKept, TrafficSource};
use crate::report::html::Window;
use crate::review::sample::{Sampler, StratumCount};
use crate::review::sheet::{AutoVerdict, SheetItem, TrafficItem};
use crate::review::traffic::{
    RecordSigns, TrafficStratum, classify, low_confidence_cut, low_confidence_rank,
};
use crate::store::{ReviewRecord, Store, traffic_item_id};

/// What `review sample --from traffic:ID` was asked.
pub(super) struct TrafficSampleSettings<'a> {
    pub(super) from: &'a str,
    pub(super) since: Option<&'a str>,
    pub(super) n: Option<usize>,
    pub(super) seed: Option<u64>,
}

/// What a draw over a window's records found.
struct Draw {
    chosen: Vec<(TrafficStratum, ReviewRecord)>,
    counts: Vec<StratumCount<TrafficStratum>>,
    /// Records stored in the window, reviewable or not.
    stored: u64,
    /// Records left out because an open sheet holds them.
    busy: u64,
    /// Records without stored text (`store_text: none`): nothing to review.
    no_text: u64,
}

/// The source id of `--from traffic:ID`, a source of evalwatch.yaml (did-you-mean, exit 2).
pub(super) fn source_of<'p>(
    project: &'p ProjectConfig,
    from: &str,
) -> anyhow::Result<&'p TrafficSource> {
    let Some(id) = from.strip_prefix("traffic:") else {
        return Err(Failure::invalid(format!(
            "read --from `{from}`: give traffic:SOURCE_ID, a source of evalwatch.yaml's `traffic:`"
        )));
    };
    crate::app::traffic::pick_source(project, Some(id))
}

pub(super) fn sample(
    ctx: &Ctx,
    project: &ProjectConfig,
    store: &mut Store,
    args: &TrafficSampleSettings<'_>,
) -> anyhow::Result<u8> {
    let source = source_of(project, args.from)?;
    let now = Utc::now();
    let text = args.since.unwrap_or(DEFAULT_SINCE);
    let window = Window::parse(text).ok_or_else(|| {
        Failure::invalid(format!(
            "read the window `{text}`: give one such as 24h, 7d, 30d, 2w or all"
        ))
    })?;
    let from_ms = window.start(now).map_or(i64::MIN, |t| t.timestamp_millis());
    let to_ms = now.timestamp_millis().saturating_add(1);
    let n = args.n.unwrap_or(DEFAULT_N);
    let seed = args.seed.unwrap_or(0);
    if n == 0 {
        return Err(Failure::invalid("sample: --n must be at least 1"));
    }
    let (confident, max) = store.review_confidences(&source.id, from_ms, to_ms)?;
    let low_cut = match max {
        Some(max) if confident > 0 => store
            .review_confidence_at(&source.id, from_ms, to_ms, low_confidence_rank(confident))?
            .and_then(|at| low_confidence_cut(at, max)),
        _ => None,
    };
    let draw = draw(store, &source.id, from_ms, to_ms, n, seed, low_cut)?;
    let span = format!("source {} over {}", source.id, window_text(&window));
    let no_text_note = (draw.no_text > 0).then(|| {
        format!(
            "{} record(s) have no stored text and cannot be reviewed{}",
            draw.no_text,
            if source.store_text == TextKept::None {
                " (the source sets `store_text: none`)"
            } else {
                ""
            }
        )
    });
    if draw.chosen.is_empty() {
        let why = if draw.stored == 0 {
            format!(
                "no stored records of {span}: `evalwatch ingest` keeps a sample of each source (`sample:`); widen --window"
            )
        } else if draw.busy == 0 && source.store_text == TextKept::None {
            // Nothing a sheet or a longer window could change: the source keeps no text.
            format!(
                "the {} stored record(s) of {span} have no text to review: the source sets `store_text: none`; set `store_text: sampled` in evalwatch.yaml to keep the text of the records ingested from then on",
                draw.stored
            )
        } else {
            let mut why = Vec::new();
            if draw.busy > 0 {
                why.push(format!("{} in open sheets already", draw.busy));
            }
            if draw.no_text > 0 {
                why.push(format!("{} without stored text", draw.no_text));
            }
            let advice = if draw.busy > 0 {
                "close a sheet (`evalwatch review list` shows them) or widen --window"
            } else {
                "widen --window"
            };
            format!(
                "none of the {} stored record(s) of {span} can be sampled: {}; {advice}",
                draw.stored,
                why.join(", ")
            )
        };
        ctx.printer.result(&format!("nothing to sample: {why}"));
        if let Some(note) = &no_text_note {
            ctx.printer.warn(note);
        }
        return Ok(exit::OK);
    }
    let items: Vec<SheetItem> = draw
        .chosen
        .into_iter()
        .map(|(stratum, r)| item_of(&source.id, stratum, r))
        .collect();
    let params = json!({
        "from": args.from, "since": args.since, "n": n, "seed": seed, "strata": draw.counts,
        "stored": draw.stored, "busy": draw.busy, "no_text": draw.no_text,
        "low_confidence_cut": low_cut,
    });
    let (sheet_id, path) = write_sheet(project, store, &items, &params, now)?;
    let strata: Vec<String> = draw
        .counts
        .iter()
        .map(|c| format!("{} {}/{}", c.stratum.as_str(), c.taken, c.available))
        .collect();
    ctx.printer.result(&format!(
        "review sheet {sheet_id}: {} item(s) from {span} (seed {seed}; taken/available: {})",
        items.len(),
        strata.join(", ")
    ));
    for c in draw.counts.iter().filter(|c| c.available == 0) {
        let why = match c.stratum {
            TrafficStratum::ThumbsDown => {
                "no record of the window has a user's thumbs-down (is `feedback` mapped, or `evalwatch feedback import` run?)"
            }
            TrafficStratum::Hallucination => {
                "no record failed the monitor's hallucination check (is `hallucination` in `monitor:`?)"
            }
            TrafficStratum::LowConfidence if low_cut.is_none() => {
                "no confidence to compare (the records carry none, or all the same one)"
            }
            _ => "no record of the window",
        };
        ctx.printer
            .info(&format!("{}: empty: {why}", c.stratum.as_str()));
    }
    if let Some(cut) = low_cut {
        ctx.printer.info(&format!(
            "low_confidence: the lowest tenth of the window's confidences (at or below {cut})"
        ));
    }
    if let Some(note) = &no_text_note {
        ctx.printer.warn(note);
    }
    ctx.printer.result(&format!("open {}", path.display()));
    Ok(exit::OK)
}

fn window_text(w: &Window) -> String {
    if w.label == "all" {
        "all time".to_owned()
    } else {
        format!("the last {}", w.label)
    }
}

/// Offer every stored record of the window that has text and that no open sheet holds to a
/// stratified reservoir, and draw: thumbs-down records first, the rest in seeded random order.
fn draw(
    store: &Store,
    source: &str,
    from_ms: i64,
    to_ms: i64,
    n: usize,
    seed: u64,
    low_cut: Option<f64>,
) -> anyhow::Result<Draw> {
    let busy_ids = store.results_in_open_sheets()?;
    let mut sampler: Sampler<TrafficStratum, ReviewRecord> = Sampler::new(n, seed);
    let (mut stored, mut busy, mut no_text) = (0u64, 0u64, 0u64);
    store.for_each_review_record(source, from_ms, to_ms, |r| {
        stored += 1;
        if !r.has_text() {
            no_text += 1;
            return Ok(());
        }
        if busy_ids.contains(&traffic_item_id(source, &r.key)) {
            busy += 1;
            return Ok(());
        }
        let stratum = classify(
            &RecordSigns {
                vote: r.vote.as_deref(),
                status: r.status,
                assertions: &r.assertions,
                confidence: r.confidence,
                error: r.error,
            },
            low_cut,
        );
        sampler.offer(stratum, r);
        Ok(())
    })?;
    let (mut chosen, counts) = sampler.finish();
    // Stable: the seeded order is kept within thumbs-down records and within the rest.
    chosen.sort_by_key(|(s, _)| *s != TrafficStratum::ThumbsDown);
    Ok(Draw {
        chosen,
        counts,
        stored,
        busy,
        no_text,
    })
}

fn rfc3339_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn item_of(source: &str, stratum: TrafficStratum, r: ReviewRecord) -> SheetItem {
    let auto = match r.status {
        Some(status) => SheetItem::auto_verdict(status, r.score, &r.assertions),
        None => AutoVerdict {
            status: "not scored".to_owned(),
            score: None,
            assertions: Vec::new(),
        },
    };
    let error = r
        .error
        .then(|| r.error_kind.clone().unwrap_or_else(|| "error".to_owned()));
    SheetItem {
        result_id: traffic_item_id(source, &r.key).to_string(),
        case_id: r.key.clone(),
        provider: r.model.clone().unwrap_or_else(|| "-".to_owned()),
        run_id: source.to_owned(),
        stratum: stratum.as_str().to_owned(),
        suite: source.to_owned(),
        sample: 0,
        prompt: r.input.unwrap_or_default(),
        expected: None,
        expected_note: Some("production traffic has no expected answer".to_owned()),
        context: r.context,
        output: r.output,
        auto,
        traffic: Some(TrafficItem {
            source: source.to_owned(),
            key: r.key,
            time: rfc3339_ms(r.time_ms),
            model: r.model,
            feature: r.feature,
            segment: r.segment,
            region: r.region,
            trace_id: r.trace_id,
            vote: r.vote,
            feedback_raw: r.feedback_raw,
            comment: r.comment,
            confidence: r.confidence,
            error,
            latency_ms: r.latency_ms,
        }),
    }
}
