//! The run's pages: every interaction of a run with its HTML pages. Live run pages fed from
//! the consumer's stream as results are scored, the heat map's feed (the runs before, read
//! once the first calls are out, and this run's statuses as they come), the pages of a
//! finished run written while the store takes its last results, the out-of-date page of a
//! resumed run and the pages of a discarded one removed, and the refresh after all runs.
//! Pages are a view of stored history: failing to write them never fails a run.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use crate::model::{Case, GateResult, ProviderMetrics, ResultRecord, RunInfo, Suite};
use crate::provider::common::Secrets;
use crate::report::html::live::{EarlyPages, LivePages, LiveRun};
use crate::report::html::{self, HeatFeed, HeatHistory};
use crate::store::Store;

use super::super::Ctx;
use super::super::report::{self, reports_dir};
use super::{Done, RunEnv};

/// How long the heat map's reading waits before it opens the store: the first calls go
/// out first (docs/performance.md).
const HEAT_DELAY: std::time::Duration = std::time::Duration::from_millis(50);

/// What the consumer feeds as results are scored: the live pages and the heat map.
pub(super) struct Pages {
    live: Option<LivePages>,
    heat: Option<HeatFeed>,
}

/// The pages of a run whose results are all in: the rows rendered as they came (or None:
/// written from the store), and the heat map's feed.
pub(super) struct Rendered {
    pub(super) live: Option<LiveRun>,
    pub(super) heat: Option<HeatFeed>,
}

impl Pages {
    /// The pages of `info`'s run, written as its results come unless `--no-reports` or the
    /// run is resumed (its pages are written from the store, with the results stored
    /// before). `total`: the run's number of results, once known (pages after the first
    /// are written as their results come from then on).
    pub(super) fn start(
        env: &RunEnv<'_>,
        info: &RunInfo,
        resumed: bool,
        total: &Arc<AtomicUsize>,
    ) -> Self {
        if !env.settings.reports {
            return Self {
                live: None,
                heat: None,
            };
        }
        let reports = reports_dir(env.project);
        let live = (!resumed).then(|| {
            LivePages::new(info, report::live_baseline_reader(env.db, info), &reports)
                .with_total(Arc::clone(total))
        });
        Self {
            live,
            heat: heat_feed(env, &info.suite, resumed),
        }
    }

    /// Whether the pages need each result's case (its expected answer and context).
    pub(super) fn wants_case(&self) -> bool {
        self.live.is_some()
    }

    /// One scored (and redacted) result of the run, with its case, whose expected answer and
    /// context are shown with `secrets` hidden (as the result's prompt and output were).
    pub(super) fn add(&mut self, record: &ResultRecord, case: Option<&Case>, secrets: &Secrets) {
        if let Some(live) = self.live.as_mut() {
            let expected = case.and_then(|c| c.expected.as_deref());
            let context = case.map_or(&[][..], |c| c.context.as_slice());
            if secrets.is_empty() {
                live.add(record, expected, context);
            } else {
                let expected = expected.map(|e| secrets.redact(e));
                let context: Vec<String> = context.iter().map(|p| secrets.redact(p)).collect();
                live.add(record, expected.as_deref(), &context);
            }
        }
        if let Some(heat) = self.heat.as_mut() {
            let job = &record.job;
            heat.add(&job.case_id, &job.provider_id, job.sample, record.status);
        }
    }

    /// All `finished` results are in: the rows as rendered, unless they cannot be used.
    pub(super) fn finish(self, ctx: &Ctx, run_id: &str, finished: u64) -> Rendered {
        let finished = usize::try_from(finished).unwrap_or(usize::MAX);
        let live = self.live.map(|pages| {
            let rows = pages.finish(finished);
            if let Some(why) = rows.broken() {
                let line = format!("run {run_id}: its pages are written from the store ({why})");
                crate::phase::phase(&line);
                ctx.printer.detail(&line);
            }
            rows
        });
        Rendered {
            live,
            heat: self.heat,
        }
    }
}

/// The heat map's statuses of the runs before, read on a thread of its own once the first
/// calls are out; its own are taken as they are scored (but for a resumed run: those stored
/// before). Should its thread not start, the reports read the heat map from the store.
fn heat_feed(env: &RunEnv<'_>, suite: &str, resumed: bool) -> Option<HeatFeed> {
    let (db, name) = (env.db.to_path_buf(), suite.to_owned());
    let reports = reports_dir(env.project);
    let reading = std::thread::Builder::new()
        .name("evalwatch-heat".to_owned())
        .spawn(move || {
            std::thread::sleep(HEAT_DELAY);
            let store = Store::open_for_scan(&db).ok()?;
            let history = HeatHistory::read(&store, &name).ok();
            // Meanwhile, rows that runs killed while they went left behind.
            let _ = report::remove_leftovers(&store, &reports);
            history
        })
        .ok()?;
    Some(HeatFeed::new(reading, !resumed))
}

/// A resumed run's page shows it as it was: removed (the refresh writes it again).
pub(super) fn remove_resumed(env: &RunEnv<'_>, run_id: &str) {
    let reports = reports_dir(env.project);
    if let Err(e) = html::run_resumed(&reports, run_id) {
        env.ctx.printer.warn(&format!(
            "run {run_id}: remove its out-of-date page in {}: {e}; `evalwatch report` may show it as it was before this resume until the run finishes",
            reports.join("runs").display()
        ));
    }
}

/// A run that is not kept: nor are the pages written as its results came.
pub(super) fn discard(env: &RunEnv<'_>, run_id: &str, rendered: &Rendered) {
    if rendered.live.is_some() {
        let _ = html::run_discarded(&reports_dir(env.project), run_id);
    }
}

/// Start writing a finished run's pages from its rows, while the store takes its last
/// results and its end: everything above the rows is known now.
pub(super) fn start_early(
    env: &RunEnv<'_>,
    info: &RunInfo,
    metrics: &[ProviderMetrics],
    gates: &[GateResult],
    live: Option<LiveRun>,
) -> Option<EarlyPages> {
    EarlyPages::start(
        report::early_baseline_reader(env.db, info),
        &reports_dir(env.project),
        info.clone(),
        metrics.to_vec(),
        gates.to_vec(),
        live?,
    )
}

/// Refresh the reports of the suites that ran, with the pages and heat maps their runs
/// prepared. Failing to refresh them never fails a run: a warning.
pub(super) fn refresh(env: &RunEnv<'_>, store: &Store, runs: &mut [Done]) {
    let ctx = env.ctx;
    let mut prepared = html::Prepared::default();
    for d in runs.iter_mut() {
        if let Some(pages) = d.pages.take() {
            prepared.early.insert(d.info.run_id.clone(), pages);
        }
        if let Some(heat) = d.heat.take().and_then(|h| h.finish(&d.info)) {
            prepared.heat.insert(d.info.suite.clone(), heat);
        }
    }
    let ran: Vec<&Suite> = runs.iter().map(|d| &d.suite).collect();
    if let Err(e) = super::super::report::after_run(ctx, store, env.project, &ran, prepared) {
        ctx.printer.warn(&format!(
            "refresh the reports: {}",
            super::super::error_text(&e)
        ));
    }
}

/// A finished run's pages that must not be kept (the store does not have the run as they
/// say): stopped and removed.
pub(super) fn discard_early(pages: Option<EarlyPages>) {
    if let Some(p) = pages {
        p.discard();
    }
}
