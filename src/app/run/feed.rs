//! The feed: a suite file's cases built on a thread of their own and turned into jobs on the
//! providers' bounded queues as they come, so the first call goes out while the rest of the
//! file is still being read. Owns the queues' sending side and the suite's head.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::mpsc;

use crate::exec::Feed;
use crate::model::{Job, ProjectConfig, Suite};
use crate::plan::{self, Filters};
use crate::suite;

use super::super::Failure;
use super::{Head, RunEnv, check};

/// Jobs waiting in a provider's queue ahead of its workers: enough that a slow provider
/// does not hold a fast one back for long, few enough that memory stays flat.
const QUEUED_JOBS: usize = 256;

/// How often the feed looks again at a full queue of jobs: waking it for every job taken
/// costs thousands of context switches a second (docs/performance.md).
const FEED_POLL: std::time::Duration = std::time::Duration::from_millis(2);

/// A streamed suite's head and its providers' job queues.
pub(super) type Fed = (Suite, Vec<Feed>);

/// The head of the `index`-th suite file: its feed (started already, or started now), its
/// filters checked. A head with a problem stops the run with what the checker found.
pub(super) fn head(
    env: &RunEnv<'_>,
    file: PathBuf,
    index: usize,
    fed: Option<Fed>,
) -> anyhow::Result<Head> {
    let fed = match fed {
        Some(fed) => Some(fed),
        None => feed(file, env.project.clone(), env.settings.filters.clone())?,
    };
    let Some((head, feeds)) = fed else {
        // The head has a problem: the checker says which.
        let checked = env.runtime.block_on(env.checker()?.wait())?;
        return Err(check::invalid(env.ctx, &checked.diags));
    };
    let filters = &env.settings.filters;
    plan::providers(&head, filters).map_err(|e| Failure::invalid(e.to_string()))?;
    plan::repeat(&head, filters).map_err(|e| Failure::invalid(e.to_string()))?;
    Ok(Head {
        suite: Arc::new(head),
        feeds,
        resume: None,
        file_index: Some(index),
    })
}

/// The planner of a streamed suite: builds the suite's cases on its own thread and turns
/// each selected case into its jobs on the providers' queues. Returns once the first job is
/// queued (or the file is done): the suite's head and the queues, or None when the suite
/// met a problem before that (the checker says which; nothing need be opened or begun).
pub(super) fn feed(
    file: PathBuf,
    project: ProjectConfig,
    filters: Filters,
) -> anyhow::Result<Option<Fed>> {
    let (head_tx, head_rx) = std::sync::mpsc::sync_channel::<Fed>(1);
    std::thread::Builder::new()
        .name("evalwatch-feed".to_owned())
        .spawn(move || {
            // The head and queues, until handed over with the first job.
            let waiting = std::cell::RefCell::new(None::<Fed>);
            let hand_over = || {
                if let Some(fed) = waiting.borrow_mut().take() {
                    let _ = head_tx.send(fed);
                }
            };
            // Set from the head: the providers' queues, the providers the filters keep, the
            // samples per case.
            let plan = std::cell::RefCell::new(None::<Queues>);
            let mut case_index = 0usize;
            let mut seq = 0usize;
            let clean = suite::feed_suite(
                &file,
                &project,
                &mut |head| {
                    let (Ok(providers), Ok(repeat)) = (
                        plan::providers(head, &filters),
                        plan::repeat(head, &filters),
                    ) else {
                        // `run` reports the filters' problem from the head it gets.
                        *waiting.borrow_mut() = Some((head.clone(), Vec::new()));
                        return;
                    };
                    let (senders, feeds): (Vec<_>, Vec<_>) = head
                        .providers
                        .iter()
                        .map(|_| {
                            let (s, r) = mpsc::channel(QUEUED_JOBS);
                            (s, Feed::Bounded(r))
                        })
                        .unzip();
                    *plan.borrow_mut() = Some((senders, providers, repeat));
                    *waiting.borrow_mut() = Some((head.clone(), feeds));
                },
                &mut |case| {
                    let index = case_index;
                    case_index += 1;
                    let mut plan = plan.borrow_mut();
                    let Some((senders, providers, repeat)) = plan.as_mut() else {
                        return;
                    };
                    if senders.is_empty() || !filters.selects(&case) {
                        return;
                    }
                    let case = Arc::new(case);
                    for job in plan::case_jobs(&case, index, *repeat, providers, &mut seq) {
                        if send(senders, job, &hand_over).is_err() {
                            // A closed queue: the run stopped; the rest is not needed.
                            senders.clear();
                            return;
                        }
                    }
                    hand_over();
                },
            );
            if clean {
                hand_over();
            }
        })
        .context("start the case feed")?;
    Ok(head_rx.recv().ok())
}

/// A fed suite's plan: its providers' queues, the providers the filters keep, the samples
/// per case.
type Queues = (Vec<mpsc::Sender<Job>>, Vec<(usize, String)>, u32);

/// Put `job` on its provider's queue, waiting while the queue is full (the head and queues
/// are handed over first: the run can start on what is queued). Err: the queue is closed.
fn send(senders: &[mpsc::Sender<Job>], job: Job, hand_over: &impl Fn()) -> Result<(), ()> {
    let to = job.provider_index;
    let mut job = job;
    loop {
        match senders[to].try_send(job) {
            Ok(()) => return Ok(()),
            Err(mpsc::error::TrySendError::Full(back)) => {
                hand_over();
                // Polled rather than woken: a sender waiting on a full queue is woken for
                // every job taken; the queue lasts far longer than a poll.
                job = back;
                std::thread::sleep(FEED_POLL);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(()),
        }
    }
}
