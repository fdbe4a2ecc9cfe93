//! What the run pages written while their run goes need from the store, read by the
//! composer: the pages themselves ([`html::live`]) never open it.

use std::path::Path;

use crate::model::RunInfo;
use crate::report::html::live::{self, LiveBaseline, ReadBaseline, ReadError};
use crate::store::{Store, StoreError};

/// The baseline of the run `info` (its previous complete run) as the live pages take it:
/// the run and the status of each of its results, in plan order.
pub fn live_baseline(store: &Store, info: &RunInfo) -> Result<Option<LiveBaseline>, StoreError> {
    let Some(base) = baseline_run(store, info)? else {
        return Ok(None);
    };
    let run_id = base.run_id.clone();
    let mut baseline = LiveBaseline::new(base);
    store.for_each_status(&run_id, |case, provider, sample, status| {
        baseline.push(case, provider, sample, status);
    })?;
    Ok(Some(baseline))
}

/// The run `info`'s baseline: its previous complete run.
pub fn baseline_run(store: &Store, info: &RunInfo) -> Result<Option<RunInfo>, StoreError> {
    store.previous_complete_run(&info.suite, &info.started_at)
}

/// [`live_baseline`] read when the live pages of `info` ask for it (on the run's first
/// result), through a connection of its own to the store at `db`, opened for one pass.
pub fn live_baseline_reader(db: &Path, info: &RunInfo) -> ReadBaseline {
    let (db, info) = (db.to_path_buf(), info.clone());
    Box::new(move || -> Result<Option<LiveBaseline>, ReadError> {
        let store = Store::open_for_scan(&db)?;
        Ok(live_baseline(&store, &info)?)
    })
}

/// [`baseline_run`] read when the pages of the finished run `info` ask for it (on their own
/// thread), through a connection of its own to the store at `db`.
pub fn early_baseline_reader(
    db: &Path,
    info: &RunInfo,
) -> impl FnOnce() -> Result<Option<RunInfo>, ReadError> + Send + 'static {
    let (db, info) = (db.to_path_buf(), info.clone());
    move || -> Result<Option<RunInfo>, ReadError> {
        let store = Store::open_for_scan(&db)?;
        Ok(baseline_run(&store, &info)?)
    }
}

/// Remove the files of rows (and the empty files made for their pages) that runs no longer
/// running left in the reports folder `dir` ([`live::remove_leftovers`]). Returns how many
/// were removed.
pub fn remove_leftovers(store: &Store, dir: &Path) -> Result<usize, StoreError> {
    if !dir.join("runs").is_dir() {
        return Ok(0);
    }
    let running: Vec<String> = store
        .running_runs()?
        .into_iter()
        .map(|(run_id, _, _)| run_id)
        .collect();
    Ok(live::remove_leftovers(&running, dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::html::live::LivePages;

    #[test]
    fn the_baseline_is_the_previous_complete_run_with_its_statuses() {
        let (dir, _ctx, _project, infos) = super::super::tests::history(3);
        let store = Store::open(&dir.path().join("h.db")).expect("store");
        assert!(live_baseline(&store, &infos[0]).expect("read").is_none());
        let base = live_baseline(&store, &infos[2])
            .expect("read")
            .expect("a baseline");
        assert_eq!(base.run_id(), infos[1].run_id);
        assert_eq!(
            base.len(),
            store.result_statuses(&infos[1].run_id).expect("rows").len()
        );
        let read = early_baseline_reader(&dir.path().join("h.db"), &infos[2])()
            .expect("read")
            .expect("a baseline");
        assert_eq!(read.run_id, infos[1].run_id);
    }

    #[test]
    fn live_pages_whose_baseline_cannot_be_read_give_up_their_rows() {
        let (dir, _ctx, _project, infos) = super::super::tests::history(2);
        let store = Store::open(&dir.path().join("h.db")).expect("store");
        let mut first = None;
        store
            .for_each_result(&infos[1].run_id, |rec| {
                first.get_or_insert(rec);
                Ok(())
            })
            .expect("results");
        let rec = first.expect("a result");
        let reports = dir.path().join("reports");
        let mut live = LivePages::new(&infos[1], Box::new(|| Err("disk gone".into())), &reports);
        live.add(&rec, None, &[]);
        let done = live.finish(1);
        assert_eq!(done.broken(), Some("read the baseline: disk gone"));
    }
}
