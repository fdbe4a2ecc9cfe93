//! `review sample`: a stratified, seeded sample of stored results into a sheet.

use crate::provider::common::Secrets;
use std::collections::HashMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use serde_json::json;

use super::{reports_dir, write_page};
use crate::app::{Ctx, Failure, exit};
use crate::model::{CaseStatus, ProjectConfig, ResultRecord, RunInfo, RunStatus, Suite};
use crate::report::html::Window;
use crate::review::sample::{Sampler, Stratum, StratumCount, classify};
use crate::review::sheet::{self, SheetData, SheetItem};
use crate::store::{NewItem, NewSheet, Store};

/// Sheet size when neither `--n` nor the suite's `review:` says.
pub const DEFAULT_N: usize = 50;
/// Window of runs sampled when neither `--run` nor `--since` says.
pub const DEFAULT_SINCE: &str = "7d";

/// What `review sample` was asked.
pub(super) struct SampleSettings<'a> {
    pub(super) run: Option<&'a str>,
    pub(super) since: Option<&'a str>,
    pub(super) suite: Option<&'a str>,
    pub(super) n: Option<usize>,
    pub(super) seed: Option<u64>,
}

/// The suites on disk, by name; best effort (a suite that does not load only loses its
/// expected answers, context and `review:` defaults).
fn suites_on_disk(ctx: &Ctx, project: &ProjectConfig) -> HashMap<String, Suite> {
    let Ok(files) = crate::app::suite_files(ctx, project, &[]) else {
        return HashMap::new();
    };
    let (suites, _diags) = crate::suite::load_suites(&files, project);
    suites.into_iter().map(|s| (s.name.clone(), s)).collect()
}

/// A sampled result, kept only while it is in a reservoir.
struct Candidate {
    result_id: i64,
    run_id: String,
    suite: String,
    record: ResultRecord,
}

/// One sampled result as a sheet's item; `secrets` (of the suites on disk) hidden from the
/// expected answer and context read from the suite files, as they are from what was stored.
fn item_of(
    c: Candidate,
    stratum: Stratum,
    suites: &HashMap<String, Suite>,
    secrets: &Secrets,
) -> SheetItem {
    let case = suites
        .get(&c.suite)
        .and_then(|s| s.cases.iter().find(|k| k.id == c.record.job.case_id));
    let (expected, expected_note, context) = match case {
        None => (
            None,
            Some("not shown: the case is not in the suite files read (the store keeps no expected answer)".to_owned()),
            Vec::new(),
        ),
        Some(k) if k.hash != c.record.case_hash => (
            None,
            Some("not shown: the case has been edited since this run".to_owned()),
            Vec::new(),
        ),
        Some(k) => (
            k.expected.as_deref().map(|e| secrets.redact(e)),
            k.expected
                .is_none()
                .then(|| "the case sets no expected answer".to_owned()),
            k.context.iter().map(|p| secrets.redact(p)).collect(),
        ),
    };
    let r = c.record;
    SheetItem {
        result_id: c.result_id.to_string(),
        case_id: r.job.case_id,
        provider: r.job.provider_id,
        run_id: c.run_id,
        stratum: stratum.as_str().to_owned(),
        suite: c.suite,
        sample: r.job.sample,
        prompt: r.prompt,
        expected,
        expected_note,
        context,
        output: r.output,
        auto: SheetItem::auto_verdict(r.status, r.score, &r.assertions),
        traffic: None,
    }
}

/// `review sample`: choose the runs, draw the sample, write the sheet.
pub(super) fn sample(
    ctx: &Ctx,
    project: &ProjectConfig,
    store: &mut Store,
    args: &SampleSettings<'_>,
) -> anyhow::Result<u8> {
    let now = chrono::Utc::now();
    let runs = runs_to_sample(store, args, now)?;
    let suites = suites_on_disk(ctx, project);
    let secrets = crate::app::secrets::of_suites(project, suites.values());
    let (n, seed) = size_and_seed(args, &runs, &suites)?;
    let Draw {
        chosen,
        counts,
        skipped_busy,
    } = draw(store, &runs, n, seed)?;
    if chosen.is_empty() {
        ctx.printer.result(&format!(
            "nothing to sample: {} run(s) matched, {} result(s) are in open sheets already; widen --since or close a sheet",
            runs.len(),
            skipped_busy
        ));
        return Ok(exit::OK);
    }
    let items: Vec<SheetItem> = chosen
        .into_iter()
        .map(|(stratum, c)| item_of(c, stratum, &suites, &secrets))
        .collect();
    let params = json!({
        "run": args.run, "since": args.since, "suite": args.suite, "n": n, "seed": seed,
        "runs": runs.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(),
        "strata": counts,
    });
    let (sheet_id, path) = write_sheet(project, store, &items, &params, now)?;
    let strata: Vec<String> = counts
        .iter()
        .filter(|c| c.available > 0)
        .map(|c| format!("{} {}/{}", c.stratum.as_str(), c.taken, c.available))
        .collect();
    ctx.printer.result(&format!(
        "review sheet {sheet_id}: {} item(s) from {} run(s) (seed {seed}; taken/available: {})",
        items.len(),
        runs.len(),
        strata.join(", ")
    ));
    ctx.printer.result(&format!("open {}", path.display()));
    Ok(exit::OK)
}

/// The run `--run` names, or the finished runs of the `--since` window (of `--suite`).
fn runs_to_sample(
    store: &Store,
    args: &SampleSettings<'_>,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<RunInfo>> {
    if let Some(id) = args.run {
        let info = store.run(id)?.ok_or_else(|| {
            Failure::invalid(format!(
                "sample run `{id}`: no such run; `evalwatch runs` lists them"
            ))
        })?;
        if args.suite.is_some_and(|s| s != info.suite) {
            return Err(Failure::invalid(format!(
                "sample run {}: it is a run of suite {}, not of --suite {}",
                info.run_id,
                info.suite,
                args.suite.unwrap_or_default()
            )));
        }
        return Ok(vec![info]);
    }
    let text = args.since.unwrap_or(DEFAULT_SINCE);
    let window = Window::parse(text).ok_or_else(|| {
        Failure::invalid(format!(
            "read --since `{text}`: give a window of at least a minute, such as 24h, 7d, 30d, 2w or all"
        ))
    })?;
    let since = window.start(now).map(|t| t.to_rfc3339());
    Ok(store
        .run_infos(args.suite, since.as_deref(), 0)?
        .into_iter()
        .filter(|r| r.status != RunStatus::Running)
        .collect())
}

/// The sheet's size and seed: the flags, else the suite's `review:` block when the sheet is
/// of one suite, else the defaults.
fn size_and_seed(
    args: &SampleSettings<'_>,
    runs: &[RunInfo],
    suites: &HashMap<String, Suite>,
) -> anyhow::Result<(usize, u64)> {
    let mut names: Vec<&str> = runs.iter().map(|r| r.suite.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let settings = match names.as_slice() {
        [one] => suites.get(*one).and_then(|s| s.review.clone()),
        _ => None,
    };
    let n = args
        .n
        .or_else(|| settings.as_ref().map(|s| s.sample))
        .unwrap_or(DEFAULT_N);
    let seed = args
        .seed
        .or_else(|| settings.as_ref().map(|s| s.seed))
        .unwrap_or(0);
    if n == 0 {
        return Err(Failure::invalid("sample: --n must be at least 1"));
    }
    Ok((n, seed))
}

/// What a draw took, and what it passed over.
struct Draw {
    chosen: Vec<(Stratum, Candidate)>,
    counts: Vec<StratumCount<Stratum>>,
    /// Results left out because an open sheet holds them.
    skipped_busy: u64,
}

/// Offer every result of `runs` that no open sheet holds to a stratified reservoir (each
/// classified against the run before it), and draw.
fn draw(store: &Store, runs: &[RunInfo], n: usize, seed: u64) -> anyhow::Result<Draw> {
    let busy = store.results_in_open_sheets()?;
    let mut sampler: Sampler<Stratum, Candidate> = Sampler::new(n, seed);
    let mut skipped_busy = 0u64;
    for info in runs {
        let baseline: HashMap<(String, String, u32), CaseStatus> =
            match store.previous_complete_run(&info.suite, &info.started_at)? {
                Some(base) => store
                    .result_statuses(&base.run_id)?
                    .into_iter()
                    .map(|(c, p, s, st)| ((c, p, s), st))
                    .collect(),
                None => HashMap::new(),
            };
        let base_id = store.result_id(&info.run_id, 0)?;
        store.for_each_result(&info.run_id, |rec| {
            let result_id = base_id | i64::try_from(rec.job.seq).unwrap_or(0);
            if busy.contains(&result_id) {
                skipped_busy += 1;
                return Ok(());
            }
            let before = baseline
                .get(&(
                    rec.job.case_id.clone(),
                    rec.job.provider_id.clone(),
                    rec.job.sample,
                ))
                .copied();
            if let Some(stratum) = classify(rec.status, &rec.assertions, before) {
                sampler.offer(
                    stratum,
                    Candidate {
                        result_id,
                        run_id: info.run_id.clone(),
                        suite: info.suite.clone(),
                        record: rec,
                    },
                );
            }
            Ok(())
        })?;
    }
    let (chosen, counts) = sampler.finish();
    Ok(Draw {
        chosen,
        counts,
        skipped_busy,
    })
}

/// Write the sheet's page, then record the sheet; returns its id and page.
pub(super) fn write_sheet(
    project: &ProjectConfig,
    store: &mut Store,
    items: &[SheetItem],
    params: &serde_json::Value,
    now: DateTime<Utc>,
) -> anyhow::Result<(String, PathBuf)> {
    let ids: Vec<i64> = items
        .iter()
        .filter_map(|i| i.result_id.parse().ok())
        .collect();
    let sheet_id = sheet::new_sheet_id(now);
    let secret = sheet::new_secret();
    let mac = sheet::mac(&secret, &sheet_id, &ids);
    let created_at = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut rows = Vec::with_capacity(items.len());
    for (item, id) in items.iter().zip(&ids) {
        rows.push(NewItem {
            result_id: *id,
            stratum: item.stratum.clone(),
            item: serde_json::to_string(item)?,
            record: item
                .traffic
                .as_ref()
                .map(|t| (t.source.clone(), t.key.clone())),
        });
    }
    // The page first: a sheet recorded without its page would hold its results (no other
    // sheet may sample them) while nobody can grade it. A page without a record is removed.
    let page = sheet::render(&SheetData {
        sheet_id: &sheet_id,
        created_at: &created_at,
        mac: &mac,
        items,
        submit: None,
        grades: None,
        closed: false,
    });
    let path = reports_dir(project)
        .join("review")
        .join(format!("{sheet_id}.html"));
    write_page(&path, &page)?;
    if let Err(e) = store.create_sheet(&NewSheet {
        sheet_id: sheet_id.clone(),
        created_at: created_at.clone(),
        secret,
        mac: mac.clone(),
        params: params.to_string(),
        items: rows,
    }) {
        let _ = std::fs::remove_file(&path);
        return Err(e.into());
    }
    Ok((sheet_id, path))
}
