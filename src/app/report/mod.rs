//! `evalwatch report`, `compare` and `export`, and the report refresh at the end of `run`.

use std::collections::HashMap;
use std::path::PathBuf;

use super::secrets::SecretSet;
use super::{Ctx, Failure, exit};
use crate::cli::report::ReportArgs;
use crate::model::{ProjectConfig, Suite};
use crate::report::html::{self, Expected, Options, Window};
use crate::store::Store;

mod compare;
mod export;
mod live;
mod source;
pub mod traffic;
pub use compare::{
    ALPHA, CompareSettings, Comparison, FlipOut, MetricDelta, compare, pair_results,
};
pub use export::{
    ExportFormat, ExportSettings, TEXTFILE_NAME, csv_text, export, prom_label, prometheus,
};
pub use live::{
    baseline_run, early_baseline_reader, live_baseline, live_baseline_reader, remove_leftovers,
};

pub(crate) fn reports_dir(project: &ProjectConfig) -> PathBuf {
    match &project.reports {
        Some(p) if p.is_absolute() => p.clone(),
        Some(p) => project.root.join(p),
        None => project.root.join("reports"),
    }
}

/// The suites on disk (`suites/` of the project), in file order, each name once (the first
/// file wins, as `load_suites` has it); best effort: a suite that does not load only loses
/// its expected answers and description on the pages.
fn suites_on_disk(ctx: &Ctx, project: &ProjectConfig) -> Vec<Suite> {
    let Ok(files) = super::suite_files(ctx, project, &[]) else {
        return Vec::new();
    };
    crate::suite::load_suites(&files, project).0
}

/// The descriptions of suites, keyed by name.
fn descriptions_of<'a>(suites: impl IntoIterator<Item = &'a Suite>) -> HashMap<String, String> {
    suites
        .into_iter()
        .filter_map(|s| s.description.clone().map(|d| (s.name.clone(), d)))
        .collect()
}

/// Refuses (exit 2) a `--suite` the history has no run of: a misspelt name would otherwise
/// read as a suite with nothing to show (an empty export, nothing to sample, no grades).
pub(crate) fn suite_in_history(store: &Store, name: &str, what: &str) -> anyhow::Result<()> {
    let names = store.suite_names()?;
    if names.iter().any(|n| n == name) {
        return Ok(());
    }
    let hint = match crate::suite::did_you_mean(name, names.iter().map(String::as_str)) {
        h if h.is_empty() => "; `evalwatch runs` lists the suites run".to_owned(),
        h => h,
    };
    Err(Failure::invalid(format!(
        "{what}: the history has no run of suite `{name}`{hint}"
    )))
}

fn open(ctx: &Ctx, project: &ProjectConfig) -> anyhow::Result<Store> {
    let db = ctx.db_path(project);
    if !crate::store::exists(&db) {
        return Err(Failure::invalid(format!(
            "read history: no store at {}; run `evalwatch run` first or point --db at it",
            ctx.shown(&db)
        )));
    }
    // The run pages' thread needs its own connection as soon as the pages are chosen.
    ctx.open_store_with_spare(&db)
}

fn parse_window(text: &str) -> anyhow::Result<Window> {
    Window::parse(text).ok_or_else(|| {
        Failure::invalid(format!(
            "read --since `{text}`: give a window of at least a minute, such as 24h, 7d, 30d, 2w or all"
        ))
    })
}

/// Refresh the reports of the suites `run` just ran (unless `--no-reports`). `ran` are the
/// suites as checked (their cases need not be there: a run streams them); `prepared` is what
/// was done while they ran: the run pages of each run, rendered as its results were scored
/// ([`html::live::LivePages`]).
///
/// Suite files are read only for what the pages need of them: the descriptions of the suites
/// that did not run (their heads, read while the pages are written), and the expected answers
/// of a run whose pages are written from the store (a run that was not rendered as it went:
/// one resumed, or one whose page is missing), read then, one case at a time.
pub fn after_run(
    ctx: &Ctx,
    store: &Store,
    project: &ProjectConfig,
    ran: &[&Suite],
    prepared: html::Prepared,
) -> anyhow::Result<()> {
    if ran.is_empty() {
        return Ok(());
    }
    let dir = reports_dir(project);
    let now = chrono::Utc::now();
    // The traffic pages of sources with traffic stored are refreshed too, so that the index
    // links them (`ingest && run` shows suites and traffic side by side).
    let mut traffic_pages = html::Written::default();
    traffic::write_traffic_pages(store, project, &dir, now, true, &mut traffic_pages)?;
    let opts = Options {
        window: Window::parse("30d").ok_or_else(|| anyhow::anyhow!("default window"))?,
        now,
        run_pages: html::RUN_PAGES,
        traffic: traffic::traffic_links(project, &dir),
    };
    let mut names: Vec<String> = Vec::new();
    for s in ran {
        if !names.contains(&s.name) {
            names.push(s.name.clone());
        }
    }
    let files = super::suite_files(ctx, project, &[]).unwrap_or_default();
    let descriptions = descriptions_of(ran.iter().copied());
    let load_expected = || expected_on_disk(&files, project, &names);
    let expected = html::LazyExpected::new(&load_expected);
    let written = std::thread::scope(|scope| {
        // The index (the last page written) shows every suite's description.
        let heads = scope.spawn(|| {
            let mut all = descriptions_of(&heads_on_disk(&files, project));
            all.extend(descriptions.clone());
            all
        });
        let heads = std::cell::Cell::new(Some(heads));
        html::write_reports_with(
            store,
            &dir,
            Some(&names),
            &descriptions,
            &expected,
            &opts,
            prepared,
            || heads.take().and_then(|h| h.join().ok()),
        )
    })?;
    ctx.printer.detail(&format!(
        "reports: {} file(s) refreshed in {}",
        written.files.len(),
        dir.display()
    ));
    Ok(())
}

/// The heads (no cases) of the suites in `files`, in file order, each name once (the first
/// file wins, as `load_suites` has it); a file that does not load is left out.
fn heads_on_disk(files: &[PathBuf], project: &ProjectConfig) -> Vec<Suite> {
    let mut out: Vec<Suite> = Vec::new();
    for f in files {
        if let Some(head) = crate::suite::suite_head(f, project)
            && !out.iter().any(|s| s.name == head.name)
        {
            out.push(head);
        }
    }
    out
}

/// The expected answers of the suites named `names` in `files` (the first file of a name
/// wins), read one case at a time: only id, content hash, expected answer and context are kept.
fn expected_on_disk(files: &[PathBuf], project: &ProjectConfig, names: &[String]) -> Expected {
    let mut secrets = SecretSet::new(crate::provider::common::process_env());
    secrets.project(project);
    for f in files {
        secrets.expanded_in_file(f);
        if let Some(head) = crate::suite::suite_head(f, project) {
            secrets.providers(&head.providers);
        }
    }
    let mut expected = Expected::hiding(secrets.secrets().clone());
    let mut seen: Vec<String> = Vec::new();
    for f in files {
        let current: std::cell::RefCell<Option<String>> = std::cell::RefCell::new(None);
        let mut on_head = |head: &Suite| {
            if !seen.contains(&head.name) {
                seen.push(head.name.clone());
                if names.contains(&head.name) {
                    *current.borrow_mut() = Some(head.name.clone());
                }
            }
        };
        let mut on_case = |case: crate::model::Case| {
            if let Some(name) = current.borrow().as_deref() {
                expected.add(name, &case.id, &case.hash, case.expected.as_deref());
                expected.add_context(name, &case.id, &case.context);
            }
        };
        crate::suite::feed_suite(f, project, &mut on_head, &mut on_case);
    }
    expected
}

/// What `report` does, from its arguments and the project.
#[derive(Debug, Clone)]
pub struct ReportSettings {
    /// The window of history charted.
    pub window: Window,
    /// Runs that get their pages besides the newest of each suite.
    pub runs: Vec<String>,
    /// The folder written (absolute).
    pub dir: PathBuf,
}

impl ReportSettings {
    pub fn resolve(ctx: &Ctx, project: &ProjectConfig, args: &ReportArgs) -> anyhow::Result<Self> {
        Ok(Self {
            window: parse_window(&args.since)?,
            runs: args.runs.clone(),
            dir: match &args.out {
                Some(p) if p.is_absolute() => p.clone(),
                Some(p) => ctx.cwd.join(p),
                None => reports_dir(project),
            },
        })
    }
}

pub fn report(ctx: &Ctx, args: &ReportArgs) -> anyhow::Result<u8> {
    let project = ctx.project()?;
    let ReportSettings { window, runs, dir } = ReportSettings::resolve(ctx, &project, args)?;
    let store = open(ctx, &project)?;
    crate::phase::phase("report: store opened");
    let suites = suites_on_disk(ctx, &project);
    let secrets = crate::app::secrets::of_suites(&project, &suites);
    let (expected, descriptions) = (
        Expected::from_suites(&suites, secrets),
        descriptions_of(&suites),
    );
    // Rows that runs killed while they went left behind (`run` cleans up too).
    remove_leftovers(&store, &dir)?;
    let mut extra = html::Written::default();
    for id in &runs {
        let info = store.run(id)?.ok_or_else(|| {
            Failure::invalid(format!(
                "write the page of run `{id}`: no such run; `evalwatch runs` lists them"
            ))
        })?;
        html::write_run_pages(&store, &dir, &info.run_id, &expected, &mut extra)?;
    }
    let now = chrono::Utc::now();
    crate::phase::phase("report: leftovers and asked-for run pages");
    traffic::write_traffic_pages(&store, &project, &dir, now, false, &mut extra)?;
    crate::phase::phase("report: traffic pages");
    let opts = Options {
        window,
        now,
        run_pages: html::RUN_PAGES,
        traffic: traffic::traffic_links(&project, &dir),
    };
    let written = html::write_reports(&store, &dir, None, &descriptions, &expected, &opts)?;
    ctx.printer.result(&format!(
        "wrote {} page(s) to {} (open {})",
        written.files.len() + extra.files.len(),
        dir.display(),
        dir.join("index.html").display()
    ));
    Ok(exit::OK)
}

#[cfg(test)]
pub(crate) mod tests;
