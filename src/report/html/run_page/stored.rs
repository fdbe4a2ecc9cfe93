//! The pages of a run written from the store: its results read once (rendered as they are
//! read, the flips found on the way), or twice for a run too large to hold rendered.

use std::path::Path;

use super::result::push_result;
use super::{
    Flips, Pages, ROW_BYTES, RenderedRows, StatusIndex, alert_views, baseline_href, flip_of,
    gate_rows, labels_of, metric_rows, remove_pages_after, rows_in_memory, write_live, write_pages,
};
use crate::model::RunInfo;
use crate::report::html::{
    Expected, HtmlError, LazyExpected, RESULTS_PER_PAGE, ReadError, Source, Written,
};

/// The run `info`'s baseline (its previous complete run), and the link to its first page
/// when that page exists.
fn baseline_of(
    store: &dyn Source,
    info: &RunInfo,
    runs_dir: &Path,
) -> Result<(Option<RunInfo>, Option<String>), ReadError> {
    let Some(base) = store.previous_complete_run(&info.suite, &info.started_at)? else {
        return Ok((None, None));
    };
    let href = baseline_href(runs_dir, &base.run_id);
    Ok((Some(base), href))
}

/// Write the pages of one run: from the rows `run` wrote as it went ([`RenderedRows`]) when they
/// are exactly its stored results, from the store otherwise.
pub(in crate::report::html) fn write_run(
    store: &dyn Source,
    t: &tera::Tera,
    dir: &Path,
    run_id: &str,
    expected: &LazyExpected<'_>,
    live: Option<&dyn RenderedRows>,
    out: &mut Written,
) -> Result<(), HtmlError> {
    let info = store.run(run_id)?.ok_or_else(|| {
        ReadError::from(format!(
            "find run {run_id}: no such run in the store (`evalwatch runs` lists them)"
        ))
    })?;
    let metrics = metric_rows(store.run_metrics(&info.run_id)?);
    let gates = gate_rows(store.run_gates(&info.run_id)?);
    let runs_dir = dir.join("runs");
    let (baseline_info, baseline_href) = baseline_of(store, &info, &runs_dir)?;
    let pages = Pages {
        info: &info,
        runs_dir: &runs_dir,
        metrics,
        gates,
        alerts: alert_views(store.alerts_of_run(&info.run_id)?, &info.run_id),
        labels: labels_of(&store.run_labels(&info.run_id)?),
        baseline: baseline_info.as_ref().map(|b| b.run_id.clone()),
        baseline_href,
    };
    crate::phase::phase("run pages: run, metrics and baseline read");
    // Rendered while the run ran: used when they are exactly its stored results. Pages with
    // rows missing (the file could not be read) are written again from the store.
    if let Some(live) = live
        && live.usable(baseline_info.as_ref())
        && let Some(written) = write_live(t, &pages, live)?
    {
        out.files.extend(written.files);
        return Ok(());
    }
    crate::phase::phase(&format!(
        "run {run_id}: pages written from the store{}",
        if live.is_some() {
            " (the rows rendered as it ran are not used: baseline changed or unreadable)"
        } else {
            ""
        }
    ));
    let expected = expected.get();
    let before_rows = match &baseline_info {
        Some(b) => Some(store.result_statuses(&b.run_id)?),
        None => None,
    };
    let before = before_rows.as_deref().map(StatusIndex::new);
    // A run too large to hold rendered is read twice, one page in memory at a time.
    let planned = usize::try_from(info.planned).unwrap_or(usize::MAX);
    if planned.saturating_mul(ROW_BYTES) > rows_in_memory() {
        return write_run_streaming(store, t, &pages, before.as_ref(), expected, out);
    }

    // One read: every result rendered as it is read, the flips found on the way.
    let mut rows = String::with_capacity(planned.saturating_mul(ROW_BYTES).min(rows_in_memory()));
    let mut ends: Vec<usize> = Vec::new();
    let mut flips = Flips::default();
    let mut scratch = String::new();
    let mut too_big = false;
    let read = store.for_each_result(&info.run_id, &mut |rec| {
        let (case, provider, sample) = (&rec.job.case_id, &rec.job.provider_id, rec.job.sample);
        let flip = flip_of(
            before.as_ref(),
            ends.len(),
            case,
            provider,
            sample,
            rec.status,
        );
        if let Some(f) = flip {
            flips.add(case, provider, sample, f);
        }
        push_result(&mut rows, &rec, &info.suite, expected, flip, &mut scratch);
        ends.push(rows.len());
        if rows.len() > rows_in_memory() {
            too_big = true;
            return Err("too large to hold".into());
        }
        Ok(())
    });
    match read {
        Ok(()) => {}
        Err(_) if too_big => {
            drop((rows, ends));
            return write_run_streaming(store, t, &pages, before.as_ref(), expected, out);
        }
        Err(e) => return Err(e.into()),
    }
    let results = |range: std::ops::Range<usize>, html: &mut String| {
        let from = if range.start == 0 {
            0
        } else {
            ends[range.start - 1]
        };
        let to = if range.end == 0 {
            0
        } else {
            ends[range.end - 1]
        };
        html.push_str(&rows[from..to]);
    };
    write_pages(t, &pages, ends.len(), &results, &flips, &[], out)
}

/// [`write_run`] for a run too large to hold rendered: the statuses first (for the flips
/// above the results), then one page of results in memory at a time.
fn write_run_streaming(
    store: &dyn Source,
    t: &tera::Tera,
    pages: &Pages<'_>,
    before: Option<&StatusIndex<'_>>,
    expected: &Expected,
    out: &mut Written,
) -> Result<(), HtmlError> {
    let info = pages.info;
    let statuses = store.result_statuses(&info.run_id)?;
    let total = statuses.len();
    let mut flips = Flips::default();
    for (at, (case, provider, sample, now)) in statuses.iter().enumerate() {
        if let Some(f) = flip_of(before, at, case, provider, *sample, *now) {
            flips.add(case, provider, *sample, f);
        }
    }
    drop(statuses);
    let heads = pages.heads(t, total, &flips)?;
    let page_count = total.div_ceil(RESULTS_PER_PAGE).max(1);
    remove_pages_after(pages.runs_dir, &info.run_id, page_count);
    let mut html = String::new();
    let mut rows = String::new();
    let mut scratch = String::new();
    let (mut at, mut in_page, mut page) = (0usize, 0usize, 1usize);
    let mut failure: Option<HtmlError> = None;
    store
        .for_each_result(&info.run_id, &mut |rec| {
            let (case, provider, sample) = (&rec.job.case_id, &rec.job.provider_id, rec.job.sample);
            let flip = flip_of(before, at, case, provider, sample, rec.status);
            push_result(&mut rows, &rec, &info.suite, expected, flip, &mut scratch);
            at += 1;
            in_page += 1;
            if in_page == RESULTS_PER_PAGE {
                let results = |html: &mut String| html.push_str(&rows);
                if let Err(e) = pages.write_page(&mut html, &heads, page, page_count, &results, out)
                {
                    failure = Some(e);
                    return Err("write a run page".into());
                }
                rows.clear();
                in_page = 0;
                page += 1;
            }
            Ok(())
        })
        .map_err(|e| failure.take().unwrap_or(HtmlError::Read(e)))?;
    if in_page > 0 || page == 1 {
        let results = |html: &mut String| html.push_str(&rows);
        pages.write_page(&mut html, &heads, page, page_count, &results, out)?;
    }
    Ok(())
}
