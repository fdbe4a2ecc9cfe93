//! `run --resume RUN_ID`: the run and the suite it belongs to, the jobs it has no result
//! for, and its metrics so far (what it stored before counts toward the whole run).

use std::collections::HashSet;
use std::sync::Arc;

use crate::exec::Feed;
use crate::metrics::RunAccumulator;
use crate::model::{Case, CaseRef, Job, RunInfo, RunStatus, Suite};
use crate::plan;
use crate::store::Store;

use super::super::{Ctx, Failure};
use super::{Head, RunEnv};

/// A run being resumed: its header and the jobs it already has results for.
pub(super) struct Resume {
    pub(super) info: RunInfo,
    /// (case id, provider, sample) of every stored result.
    pub(super) done: HashSet<(String, String, u32)>,
    /// Plan positions already used.
    seqs: HashSet<usize>,
    /// Jobs left to run (set once the suite is planned).
    pub(super) left: usize,
}

/// `--resume RUN_ID`: the run, and the one suite of the loaded ones it belongs to.
pub(super) fn select(
    store: &Store,
    suites: Vec<Suite>,
    id: &str,
) -> anyhow::Result<(Suite, Resume)> {
    let info = store.run(id)?.ok_or_else(|| {
        Failure::invalid(format!(
            "resume run `{id}`: no such run; `evalwatch runs` lists them"
        ))
    })?;
    if info.status == RunStatus::Running {
        return Err(Failure::invalid(format!(
            "resume run {}: it is still running (another process is writing it){}; wait for it or stop it first",
            info.run_id,
            if store.is_pg() {
                ", or its process ended without recording its end (the store was unreachable): such a run is marked incomplete once its suite's lease expires (EVALWATCH_LEASE_TTL, default 90s)"
            } else {
                ""
            }
        )));
    }
    if matches!(info.status, RunStatus::Complete | RunStatus::Failed) {
        // A finished run is history: resuming it would run nothing and rewrite its end.
        return Err(Failure::invalid(format!(
            "resume run {}: it is {} (finished at {}); only an interrupted (incomplete) run can be resumed; `evalwatch run` starts a new run",
            info.run_id,
            info.status.as_str(),
            info.finished_at.as_deref().unwrap_or("an unknown time")
        )));
    }
    let names: Vec<String> = suites.iter().map(|s| s.name.clone()).collect();
    let Some(suite) = suites.into_iter().find(|s| s.name == info.suite) else {
        return Err(Failure::invalid(format!(
            "resume run {}: it belongs to suite `{}`, which is not among the suites loaded ({}); name its file",
            info.run_id,
            info.suite,
            names.join(", ")
        )));
    };
    let mut done = HashSet::new();
    let mut seqs = HashSet::new();
    store.for_each_result(&info.run_id, |rec| {
        seqs.insert(rec.job.seq);
        done.insert((rec.job.case_id, rec.job.provider_id, rec.job.sample));
        Ok(())
    })?;
    let resume = Resume {
        info,
        done,
        seqs,
        left: 0,
    };
    Ok((suite, resume))
}

/// A resumed run's head: its whole suite, and queues holding the jobs it has no result for.
pub(super) fn head(
    env: &RunEnv<'_>,
    suite: Arc<Suite>,
    mut resume: Resume,
) -> anyhow::Result<Head> {
    let jobs =
        plan::plan(&suite, &env.settings.filters).map_err(|e| Failure::invalid(e.to_string()))?;
    let jobs = missing_jobs(jobs, &resume);
    resume.left = jobs.len();
    let cases: Vec<Arc<Case>> = suite.cases.iter().cloned().map(Arc::new).collect();
    let jobs = jobs
        .into_iter()
        .map(|job| Job {
            case: CaseRef(cases.get(job.case_index).cloned()),
            ..job
        })
        .collect();
    Ok(Head {
        feeds: Feed::all_of(jobs, suite.providers.len()),
        suite,
        resume: Some(resume),
        file_index: None,
    })
}

/// The jobs of `plan` a resumed run has no result for. They keep their plan position unless
/// it is taken (the suite changed since), in which case they go after the highest one used.
fn missing_jobs(plan: Vec<Job>, resume: &Resume) -> Vec<Job> {
    let mut next = resume.seqs.iter().max().map_or(0, |m| m + 1);
    plan.into_iter()
        .filter(|j| {
            !resume
                .done
                .contains(&(j.case_id.clone(), j.provider_id.clone(), j.sample))
        })
        .map(|mut j| {
            if resume.seqs.contains(&j.seq) {
                j.seq = next;
                next += 1;
            }
            j
        })
        .collect()
}

/// Samples per case and provider the run has stored at most (a resumed run may have
/// stored more samples than it now plans).
pub(super) fn stored_samples(resume: &Resume) -> u32 {
    resume.done.iter().map(|(_, _, s)| s + 1).max().unwrap_or(0)
}

/// The resumed run's header as it runs again, its stored results added to `acc` (metrics
/// cover the whole run: what was stored before and what runs now).
pub(super) fn info(
    ctx: &Ctx,
    store: Option<&Store>,
    suite: &Suite,
    r: &Resume,
    acc: &mut RunAccumulator,
) -> anyhow::Result<RunInfo> {
    let opened = store.ok_or_else(|| anyhow::anyhow!("resume: the store is not open"))?;
    opened.for_each_result(&r.info.run_id, |rec| {
        acc.add(&rec);
        Ok(())
    })?;
    if suite.hash != r.info.suite_hash {
        ctx.printer.warn(&format!(
            "run {}: suite `{}` changed since the run started; the remaining jobs run with its current content",
            r.info.run_id, suite.name
        ));
    }
    let left = r.left;
    ctx.printer.note(&format!(
        "resuming run {}: {} result{} stored, {} job{} to run",
        r.info.run_id,
        r.done.len(),
        if r.done.len() == 1 { "" } else { "s" },
        left,
        if left == 1 { "" } else { "s" }
    ));
    Ok(RunInfo {
        status: RunStatus::Running,
        finished_at: None,
        planned: r.done.len() as u64 + left as u64,
        ..r.info.clone()
    })
}
