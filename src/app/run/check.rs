//! The check: every suite file read in full on a thread of its own while the calls go
//! (assertions the scorer cannot build and cases that do not render are problems too), and
//! what it found: the checked suites, their problems, and per file the cases selected and
//! the judges its assertions may call. Also the whole-suite load of a dry or resumed run.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::watch;

use crate::judge;
use crate::model::{Case, ProjectConfig, Suite};
use crate::plan::Filters;
use crate::score::{ScoreError, Scorer};
use crate::suite::{self, Diagnostic, Diagnostics, Renderer};

use super::super::{Ctx, Failure};

/// What the whole check of the suites found.
pub(super) struct Checked {
    /// The suites without problems, without their cases (hashes and checks cover them).
    pub(super) suites: Vec<Suite>,
    pub(super) diags: Diagnostics,
    /// Per suite file: what its run needs to know of all its cases.
    pub(super) files: Vec<FileTally>,
}

#[derive(Default, Clone)]
pub(super) struct FileTally {
    /// Cases the filters select.
    pub(super) selected: u64,
    /// Judges its assertions may call.
    pub(super) judges: Vec<String>,
}

/// Checks every suite file in full on its own thread, started once the first call is out:
/// on two cores, it would otherwise hold that call back (docs/performance.md).
pub(super) struct Checker {
    todo: std::sync::Mutex<Option<(Vec<PathBuf>, ProjectConfig, Filters)>>,
    rx: watch::Receiver<Option<Arc<Checked>>>,
    tx: watch::Sender<Option<Arc<Checked>>>,
}

impl Checker {
    pub(super) fn new(files: Vec<PathBuf>, project: ProjectConfig, filters: Filters) -> Self {
        let (tx, rx) = watch::channel(None);
        Self {
            todo: std::sync::Mutex::new(Some((files, project, filters))),
            rx,
            tx,
        }
    }

    /// Start checking, unless it started already.
    pub(super) fn start(&self) -> anyhow::Result<()> {
        let todo = self
            .todo
            .lock()
            .map_err(|_| anyhow::anyhow!("check the suites: a thread panicked"))?
            .take();
        let Some((files, project, filters)) = todo else {
            return Ok(());
        };
        let tx = self.tx.clone();
        std::thread::Builder::new()
            .name("evalwatch-check".to_owned())
            .spawn(move || {
                let _ = tx.send(Some(Arc::new(check(&files, &project, &filters))));
            })
            .context("start the suite check")?;
        Ok(())
    }

    /// What the check found, once it is done (starting it if need be).
    pub(super) async fn wait(&self) -> anyhow::Result<Arc<Checked>> {
        self.start()?;
        let mut rx = self.rx.clone();
        let done = rx
            .wait_for(Option::is_some)
            .await
            .map_err(|_| anyhow::anyhow!("check the suites: the checking thread stopped"))?;
        done.clone()
            .ok_or_else(|| anyhow::anyhow!("check the suites: no result"))
    }
}

/// Check `files` whole, tallying per file what its run needs.
fn check(files: &[PathBuf], project: &ProjectConfig, filters: &Filters) -> Checked {
    let mut tallies = vec![FileTally::default(); files.len()];
    // Assertions the scorer cannot build are problems of the suite too, and so are cases
    // that do not render: `validate` refuses both, and so does `run`.
    let mut scorer = Scorer::empty();
    let mut problems = Vec::new();
    let renderers: Vec<Option<Renderer>> = files
        .iter()
        .map(|f| suite::suite_head(f, project).and_then(|h| Renderer::new(&h).ok()))
        .collect();
    let (suites, mut diags) = suite::check_suites(files, project, &mut |i, case| {
        if let Some(Some(renderer)) = renderers.get(i)
            && let Err(message) = renderer.render(&case, 0)
        {
            problems.push(Diagnostic {
                location: case.location.clone(),
                message: format!("case `{}` does not render: {message}", case.id),
            });
        }
        if let Some(t) = tallies.get_mut(i) {
            t.selected += u64::from(filters.selects(&case));
            judge::Engine::add_judge_ids(&case, project.judge.as_deref(), &mut t.judges);
        }
        if let Err(e) = scorer.prepare_case(&case) {
            problems.push(scorer_problem(&case, &e));
        }
    });
    diags.0.extend(problems);
    Checked {
        suites,
        diags,
        files: tallies,
    }
}

/// An assertion of `case` the scorer cannot build, located where it is written.
fn scorer_problem(case: &Case, e: &ScoreError) -> Diagnostic {
    let ScoreError::Assertion {
        case_id,
        index,
        message,
    } = e;
    Diagnostic {
        location: case
            .asserts
            .get(*index)
            .map_or_else(|| case.location.clone(), |a| a.location.clone()),
        message: format!("assertion of case `{case_id}`: {message}"),
    }
}

/// The error of suites with problems (exit 2): every problem, located.
pub(super) fn invalid(ctx: &Ctx, diags: &Diagnostics) -> anyhow::Error {
    if diags.is_empty() {
        return Failure::invalid(
            "a suite could not be read, though no problem was found in it; run `evalwatch validate`",
        );
    }
    Failure::invalid(format!(
        "{}\nnothing was run: fix the problems above (`evalwatch validate` lists them)",
        super::super::render_diagnostics(ctx, diags)
    ))
}

/// Load every suite whole (a dry run, a resumed run).
pub(super) fn load_whole(
    ctx: &Ctx,
    files: &[PathBuf],
    project: &ProjectConfig,
) -> anyhow::Result<Vec<Suite>> {
    let (suites, diags) = suite::load_suites(files, project);
    if !diags.is_empty() {
        return Err(invalid(ctx, &diags));
    }
    for suite in &suites {
        super::super::build_scorer(ctx, suite)?;
    }
    Ok(suites)
}
