//! Run pages written while their run goes: `run` renders each result as it is scored (its
//! expected answer from the case the run holds, its flip against the baseline read when the
//! first result comes) and appends it, as results finish, to a file beside the pages
//! (`runs/.<run>.rows`), keeping where each result's row is (16 bytes per result: nothing else
//! is held per result, and a result that finishes late holds nothing back).
//!
//! After the run, the refresh writes the pages from that file: the part above the results
//! (metrics, gates, flips) rendered once, then each page's rows in plan order (read in one
//! go where they lie together, as they mostly do), without reading the run's results back.
//! The pages are byte for byte those written from the store (a test compares them). Whenever
//! the rows may not be exactly the stored results (a result missing or seen twice, the
//! baseline changed since, a write failed), the pages are written from the store as usual and
//! the file is removed.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::hash::Hasher as _;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::run_page::{
    Flips, RenderedRows, more_head, page_html, push_context, push_expected, push_result_head,
    push_result_tail, write_page_file,
};
use super::{FLIPS_SHOWN, RESULTS_PER_PAGE, file_stem, is_flip, run_file, tmp_of};
use crate::model::{CaseStatus, ResultRecord, RunInfo, RunStatus};

/// An error of the composer reading what a page needs (the pages never read the store).
pub type ReadError = Box<dyn std::error::Error + Send + Sync>;

/// Reads the baseline of the live pages' run when its first result comes (not before: the
/// run's first calls go out first). The composer gives it ([`LivePages::new`]).
pub type ReadBaseline = Box<dyn FnOnce() -> Result<Option<LiveBaseline>, ReadError> + Send>;

/// The run pages of one run being written as it goes ([`LivePages::add`] each scored result,
/// then [`LivePages::finish`]).
pub struct LivePages {
    run_id: String,
    suite: String,
    started_at: String,
    rows_path: PathBuf,
    file: Option<std::io::BufWriter<std::fs::File>>,
    /// Pages 1..=`made` have their file to be written made ([`tmp_of`]), empty.
    made: usize,
    baseline: Baseline,
    /// Reads the baseline, until it is read.
    read_baseline: Option<ReadBaseline>,
    /// Bytes written so far.
    written: u64,
    /// Where each result's row is in the file (offset, length), by plan position; a length
    /// of 0 is a result not seen (a row is never empty).
    spans: Vec<(u64, u32)>,
    rows: usize,
    /// Flips by plan position: the first [`FLIPS_SHOWN`] are listed (fewer are kept at any
    /// time than twice that), all are counted.
    flips: Vec<(usize, FlipAt)>,
    flips_total: usize,
    /// Why the rows cannot be used, once they cannot.
    broken: Option<String>,
    /// The row being rendered (its buffer reused).
    row: String,
    scratch: String,
    /// Pages after the first are written as soon as their rows are in, once the run's number
    /// of results is known ([`LivePages::with_total`]).
    early: Early,
}

/// The pages after the first written while the run goes: they show nothing of its end.
#[derive(Default)]
struct Early {
    /// The run's results, once known (0 until then).
    total: Arc<AtomicUsize>,
    /// The total the pages were written for (0: none yet).
    written_for: usize,
    /// Rows in, by page.
    rows: Vec<u16>,
    /// Pages written.
    pages: Vec<usize>,
    head: String,
    html: String,
    reader: Option<std::fs::File>,
    /// Writing one failed: the rest are written at the end.
    failed: bool,
}

impl std::fmt::Debug for LivePages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LivePages")
            .field("run_id", &self.run_id)
            .field("rows", &self.rows)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

/// A flip: case, provider, sample, (from, to).
type FlipAt = (String, String, u32, (CaseStatus, CaseStatus));

/// The run a run's flips are against: its previous complete run, read on the first result.
enum Baseline {
    Unread,
    None,
    Run(LiveBaseline),
}

/// The view the live pages take of their run's baseline (its previous complete run): the
/// run and its per-result statuses, compact (a hash of (case, provider, sample) and the
/// status, in plan order). The composer fills it from its store ([`LiveBaseline::push`]).
pub struct LiveBaseline {
    run_id: String,
    status: RunStatus,
    finished_at: Option<String>,
    rows: Vec<(u64, CaseStatus)>,
    /// By key hash, made on the first result found out of the baseline's order.
    map: OnceCell<HashMap<u64, CaseStatus>>,
}

impl std::fmt::Debug for LiveBaseline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveBaseline")
            .field("run_id", &self.run_id)
            .field("rows", &self.rows.len())
            .finish_non_exhaustive()
    }
}

impl LiveBaseline {
    /// The baseline run `info`, its statuses to come ([`LiveBaseline::push`], in plan order).
    #[must_use]
    pub fn new(info: RunInfo) -> Self {
        Self {
            rows: Vec::with_capacity(usize::try_from(info.planned).unwrap_or(0)),
            run_id: info.run_id,
            status: info.status,
            finished_at: info.finished_at,
            map: OnceCell::new(),
        }
    }

    /// The baseline's run id.
    #[must_use]
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// How many results' statuses it holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether it holds no status.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The status of the baseline's next result.
    pub fn push(&mut self, case: &str, provider: &str, sample: u32, status: CaseStatus) {
        self.rows.push((key(case, provider, sample), status));
    }

    fn get(&self, at: usize, key: u64) -> Option<CaseStatus> {
        if let Some(&(k, s)) = self.rows.get(at)
            && k == key
        {
            return Some(s);
        }
        self.map
            .get_or_init(|| self.rows.iter().copied().collect())
            .get(&key)
            .copied()
    }
}

/// The key of a result: FNV-1a over case, provider and sample (64 bits; two keys of one run
/// sharing a hash would swap a flip mark, at odds of one in 10^9 for 100,000 results).
fn key(case: &str, provider: &str, sample: u32) -> u64 {
    let mut h = fnv::FnvHasher::default();
    h.write(case.as_bytes());
    h.write_u8(0xff);
    h.write(provider.as_bytes());
    h.write_u8(0xff);
    h.write_u32(sample);
    h.finish()
}

/// Where the rows of a run's pages are kept while it goes.
pub(super) fn rows_path(runs_dir: &Path, run_id: &str) -> PathBuf {
    runs_dir.join(format!(".{}.rows", file_stem(run_id)))
}

/// Remove the files of rows (and the empty files made for their pages) that runs no longer
/// running left in the reports folder `dir` (a process killed while its run went leaves them
/// behind; the store marks such a run incomplete). `running` are the ids of the runs running
/// now. Returns how many were removed.
pub fn remove_leftovers(running: &[String], dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir.join("runs")) else {
        return 0;
    };
    let running: Vec<String> = running.iter().map(|run_id| file_stem(run_id)).collect();
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let leftover =
            if let Some(stem) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".rows")) {
                !running.iter().any(|r| r == stem)
            } else if let Some(page) = name.strip_suffix(".html.tmp") {
                // A page's file made ahead and never written: empty, and a minute old (a page
                // being written now is never both).
                !running.iter().any(|r| page.starts_with(r.as_str()))
                    && entry.metadata().is_ok_and(|m| {
                        m.len() == 0
                            && m.modified()
                                .ok()
                                .and_then(|t| t.elapsed().ok())
                                .is_some_and(|age| age > std::time::Duration::from_secs(60))
                    })
            } else {
                false
            };
        if leftover && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

impl LivePages {
    /// The pages of `info` (begun, stored as running), into the reports folder `dir`, its
    /// baseline read by `read_baseline` on the first result.
    #[must_use]
    pub fn new(info: &RunInfo, read_baseline: ReadBaseline, dir: &Path) -> Self {
        Self {
            run_id: info.run_id.clone(),
            suite: info.suite.clone(),
            started_at: info.started_at.clone(),
            rows_path: rows_path(&dir.join("runs"), &info.run_id),
            file: None,
            made: 0,
            baseline: Baseline::Unread,
            read_baseline: Some(read_baseline),
            written: 0,
            spans: Vec::new(),
            rows: 0,
            flips: Vec::new(),
            flips_total: 0,
            broken: None,
            row: String::new(),
            scratch: String::new(),
            early: Early::default(),
        }
    }

    /// The run's number of results will be `total` once it is not 0 (`run` learns it as the
    /// check of the whole suite ends): from then on, each page after the first is written as
    /// soon as its rows are in. Page 1, which shows the run's end, waits for it.
    #[must_use]
    pub fn with_total(mut self, total: Arc<AtomicUsize>) -> Self {
        self.early.total = total;
        self
    }

    fn give_up(&mut self, why: String) {
        if self.broken.is_none() {
            self.broken = Some(why);
            self.spans = Vec::new();
            self.flips = Vec::new();
            self.file = None;
            self.early.reader = None;
            self.early.failed = true;
            let _ = std::fs::remove_file(&self.rows_path);
        }
    }

    fn read_baseline(&mut self) -> Result<Baseline, ReadError> {
        let Some(read) = self.read_baseline.take() else {
            return Ok(Baseline::None);
        };
        Ok(read()?.map_or(Baseline::None, Baseline::Run))
    }

    /// One scored result of the run (each once, in any order), with its case's expected
    /// answer and context passages.
    pub fn add(&mut self, rec: &ResultRecord, expected: Option<&str>, context: &[String]) {
        if self.broken.is_some() {
            return;
        }
        if matches!(self.baseline, Baseline::Unread) {
            match self.read_baseline() {
                Ok(b) => self.baseline = b,
                Err(e) => return self.give_up(format!("read the baseline: {e}")),
            }
        }
        let seq = rec.job.seq;
        if self.spans.get(seq).is_some_and(|s| s.1 > 0) {
            return self.give_up(format!("result {seq} came twice"));
        }
        let (case, provider, sample) = (&rec.job.case_id, &rec.job.provider_id, rec.job.sample);
        let flip = match &self.baseline {
            Baseline::Run(b) => b
                .get(seq, key(case, provider, sample))
                .filter(|&from| is_flip(from, rec.status))
                .map(|from| (from, rec.status)),
            _ => None,
        };
        let mut html = std::mem::take(&mut self.row);
        html.clear();
        push_result_head(&mut html, rec, flip);
        push_expected(
            &mut html,
            expected.ok_or("the case sets no expected answer"),
        );
        push_context(&mut html, context);
        push_result_tail(&mut html, rec, &mut self.scratch);
        let appended = self.append(seq, &html);
        self.row = html;
        if let Err(e) = appended {
            return self.give_up(format!("write {}: {e}", self.rows_path.display()));
        }
        if let Some(f) = flip {
            self.flips_total += 1;
            self.flips
                .push((seq, (case.clone(), provider.clone(), sample, f)));
            if self.flips.len() >= 2 * FLIPS_SHOWN {
                self.flips.sort_unstable_by_key(|f| f.0);
                self.flips.truncate(FLIPS_SHOWN);
            }
        }
    }

    /// Append the row of result `seq`.
    fn append(&mut self, seq: usize, html: &str) -> std::io::Result<()> {
        let len = u32::try_from(html.len()).map_err(std::io::Error::other)?;
        if self.file.is_none() {
            if let Some(parent) = self.rows_path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let file = std::fs::File::create(&self.rows_path)?;
            self.file = Some(std::io::BufWriter::with_capacity(256 << 10, file));
        }
        if let Some(f) = self.file.as_mut() {
            f.write_all(html.as_bytes())?;
        }
        if self.spans.len() <= seq {
            self.spans.resize(seq + 1, (0, 0));
        }
        self.spans[seq] = (self.written, len);
        self.written += u64::from(len);
        self.rows += 1;
        // The page this result will be on (when none before it is missing) gets its file
        // now, while the run waits on its calls, rather than all of them at the end.
        let page = seq / RESULTS_PER_PAGE + 1;
        if let Some(runs) = self.rows_path.parent() {
            while self.made < page {
                self.made += 1;
                let tmp = tmp_of(&runs.join(run_file(&self.run_id, self.made)));
                // Without it, the page's file is made when the page is written.
                let _ = std::fs::File::create(tmp);
            }
        }
        if self.early.rows.len() < page {
            self.early.rows.resize(page, 0);
        }
        self.early.rows[page - 1] += 1;
        self.write_early(page);
        Ok(())
    }

    /// Write page `page` if its rows are all in (and the pages that were complete before the
    /// run's total was known, on the first call that knows it). A page is complete once: its
    /// last row is the last that comes for it.
    fn write_early(&mut self, page: usize) {
        if self.early.failed {
            return;
        }
        if self.early.written_for == 0 {
            let total = self.early.total.load(Ordering::Relaxed);
            if total == 0 {
                return;
            }
            self.early.written_for = total;
            self.early.head = more_head(&self.run_id, &self.suite, &self.started_at, total);
            for other in 2..=self.early.rows.len() {
                if other != page {
                    self.write_if_complete(other);
                }
            }
        }
        self.write_if_complete(page);
    }

    fn write_if_complete(&mut self, page: usize) {
        let total = self.early.written_for;
        let first = (page - 1) * RESULTS_PER_PAGE;
        if page < 2 || self.early.failed || first >= total {
            return;
        }
        let want = (total - first).min(RESULTS_PER_PAGE);
        if self.early.rows.get(page - 1).map_or(0, |&n| usize::from(n)) != want {
            return;
        }
        if self.write_page(page, first..first + want).is_ok() {
            self.early.pages.push(page);
        } else {
            // The page is written at the end (with the rest, if this was the file of rows).
            self.early.failed = true;
        }
    }

    fn write_page(&mut self, page: usize, range: std::ops::Range<usize>) -> Result<(), String> {
        let runs = self.rows_path.parent().ok_or("no folder")?.to_path_buf();
        if let Some(f) = self.file.as_mut() {
            f.flush().map_err(|e| e.to_string())?;
        }
        let reader = match &mut self.early.reader {
            Some(r) => r,
            None => self
                .early
                .reader
                .insert(std::fs::File::open(&self.rows_path).map_err(|e| e.to_string())?),
        };
        let spans = self.spans.get(range).ok_or("rows missing")?;
        let mut rows = String::new();
        push_rows_from(reader, spans, &mut rows).map_err(|e| e.to_string())?;
        let pages = self.early.written_for.div_ceil(RESULTS_PER_PAGE);
        let early = &mut self.early;
        page_html(
            &mut early.html,
            &early.head,
            &self.run_id,
            page,
            pages,
            &|html: &mut String| html.push_str(&rows),
        );
        write_page_file(
            &runs,
            &self.run_id,
            page,
            &early.html,
            &mut super::Written::default(),
        )
        .map_err(|e| e.to_string())
    }

    /// The rows, once the run is stored with `stored` results: usable when they are that
    /// many, in plan order with none missing.
    #[must_use]
    pub fn finish(mut self, stored: usize) -> LiveRun {
        // As many rows as results, none twice, none past the last: each result has its row.
        if self.broken.is_none() && (self.rows != stored || self.spans.len() != stored) {
            let why = format!("{} results rendered, {stored} stored", self.rows);
            self.give_up(why);
        }
        if self.broken.is_none()
            && let Some(f) = self.file.take()
            && let Err(e) = f.into_inner().map_err(std::io::IntoInnerError::into_error)
        {
            let why = format!("write {}: {e}", self.rows_path.display());
            self.give_up(why);
        }
        let usable = self.broken.is_none();
        let mut flips = std::mem::take(&mut self.flips);
        flips.sort_unstable_by_key(|f| f.0);
        let mut listed = Flips::default();
        for (_, (case, provider, sample, flip)) in flips.iter().take(FLIPS_SHOWN) {
            listed.add(case, provider, *sample, *flip);
        }
        listed.total = self.flips_total;
        // The file is the finished rows' now (removed when they are dropped).
        let path = std::mem::take(&mut self.rows_path);
        let made = std::mem::take(&mut self.made);
        let mut early = std::mem::take(&mut self.early.pages);
        early.sort_unstable();
        LiveRun {
            early: (self.early.written_for, early),
            made: (path.clone(), made),
            run_id: std::mem::take(&mut self.run_id),
            rows_path: usable.then_some(path),
            broken: self.broken.take(),
            baseline: match &self.baseline {
                Baseline::Run(b) => Some((b.run_id.clone(), b.status, b.finished_at.clone())),
                _ => None,
            },
            spans: std::mem::take(&mut self.spans),
            flips: listed,
        }
    }
}

impl Drop for LivePages {
    /// Pages of a run that never finished (a run removed for a problem found late) leave no
    /// file behind.
    fn drop(&mut self) {
        if !self.rows_path.as_os_str().is_empty() {
            self.file = None;
            let _ = std::fs::remove_file(&self.rows_path);
            remove_made(&self.rows_path, &self.run_id, self.made);
            if let Some(runs) = self.rows_path.parent() {
                for &page in &self.early.pages {
                    let _ = std::fs::remove_file(runs.join(run_file(&self.run_id, page)));
                }
            }
        }
    }
}

/// A run's rendered results, as [`LivePages::finish`] leaves them for the refresh. The file
/// of rows is removed when this is dropped.
pub struct LiveRun {
    /// The rows' file and how many pages had their file made: those not written are
    /// removed with the rows.
    made: (PathBuf, usize),
    /// The pages written as the run went (sorted), and for how many results.
    early: (usize, Vec<usize>),
    run_id: String,
    /// None when the rows cannot be used (the pages are then written from the store).
    rows_path: Option<PathBuf>,
    /// Why not, then.
    broken: Option<String>,
    /// The baseline the flips were found against: (run id, status, finished at).
    baseline: Option<(String, RunStatus, Option<String>)>,
    /// Where each result's row is in the file, by plan position.
    spans: Vec<(u64, u32)>,
    pub(super) flips: Flips,
}

impl std::fmt::Debug for LiveRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveRun")
            .field("run_id", &self.run_id)
            .field("usable", &self.rows_path.is_some())
            .field("rows", &self.spans.len())
            .finish_non_exhaustive()
    }
}

impl Drop for LiveRun {
    fn drop(&mut self) {
        if let Some(p) = &self.rows_path {
            let _ = std::fs::remove_file(p);
        }
        remove_made(&self.made.0, &self.run_id, self.made.1);
    }
}

/// Remove the files made for pages 1..=`made` of `run_id` (beside the rows' file `rows`)
/// that were not written: those written were renamed into place.
fn remove_made(rows: &Path, run_id: &str, made: usize) {
    let Some(runs) = rows.parent() else { return };
    for page in 1..=made {
        let tmp = tmp_of(&runs.join(run_file(run_id, page)));
        if std::fs::metadata(&tmp).is_ok_and(|m| m.len() == 0) {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

impl LiveRun {
    /// The run these rows are of.
    #[must_use]
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Why the rows cannot be used, when they cannot.
    #[must_use]
    pub fn broken(&self) -> Option<&str> {
        self.broken.as_deref()
    }
}

impl RenderedRows for LiveRun {
    /// Whether the rows are exactly the run's results against `baseline`, its baseline now.
    fn usable(&self, baseline: Option<&RunInfo>) -> bool {
        let same = match (&self.baseline, baseline) {
            (None, None) => true,
            (Some((id, status, finished)), Some(now)) => {
                *id == now.run_id && *status == now.status && *finished == now.finished_at
            }
            _ => false,
        };
        same && self.rows_path.is_some()
    }

    /// How many results the rows are of.
    fn len(&self) -> usize {
        self.spans.len()
    }

    /// The pages written as the run went that can be kept: those written for as many
    /// results as it has (sorted).
    fn written_early(&self) -> &[usize] {
        if self.early.0 == self.spans.len() {
            &self.early.1
        } else {
            &[]
        }
    }

    /// Append the rendered results `range` (positions in plan order) to `html`.
    fn push_rows(&self, range: std::ops::Range<usize>, html: &mut String) -> std::io::Result<()> {
        let (Some(path), Some(spans)) = (&self.rows_path, self.spans.get(range)) else {
            return Ok(());
        };
        if spans.is_empty() {
            return Ok(());
        }
        push_rows_from(&mut std::fs::File::open(path)?, spans, html)
    }

    fn flips(&self) -> &Flips {
        &self.flips
    }
}

/// Append the rows at `spans` of the file of rows `file` to `html`.
fn push_rows_from(
    file: &mut std::fs::File,
    spans: &[(u64, u32)],
    html: &mut String,
) -> std::io::Result<()> {
    let from = spans.iter().map(|s| s.0).min().unwrap_or(0);
    let to = spans
        .iter()
        .map(|s| s.0 + u64::from(s.1))
        .max()
        .unwrap_or(0);
    let bytes: u64 = spans.iter().map(|s| u64::from(s.1)).sum();
    if to - from <= 2 * bytes {
        // Together (results finish about in plan order): one read.
        let len = usize::try_from(to - from).map_err(std::io::Error::other)?;
        let mut buf = vec![0u8; len];
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(&mut buf)?;
        for &(at, len) in spans {
            let start = usize::try_from(at - from).map_err(std::io::Error::other)?;
            let end = start + len as usize;
            let row = buf.get(start..end).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "a row past the end")
            })?;
            html.push_str(std::str::from_utf8(row).map_err(std::io::Error::other)?);
        }
    } else {
        let mut buf = Vec::new();
        for &(at, len) in spans {
            buf.resize(len as usize, 0);
            file.seek(SeekFrom::Start(at))?;
            file.read_exact(&mut buf)?;
            html.push_str(std::str::from_utf8(&buf).map_err(std::io::Error::other)?);
        }
    }
    Ok(())
}

/// The pages of a run that has just finished, being written on a thread of their own from
/// the rows rendered as it ran ([`EarlyPages::start`]) while `run` stores the run's end. The
/// refresh takes them ([`super::Prepared::early`]) and writes the pages from the store when
/// these could not be. Dropped, they are waited for: no page is left half written.
#[derive(Debug)]
pub struct EarlyPages {
    thread: Option<std::thread::JoinHandle<Result<Option<super::Written>, super::HtmlError>>>,
}

impl EarlyPages {
    /// Start writing the pages of `info`'s run (finished: its status and finish time set)
    /// into the reports folder `dir`, with `metrics` and `gates` above the rows of `live`
    /// and its baseline (its previous complete run, as the store has it now) read by
    /// `read_baseline` on the pages' thread. None when the rows cannot be used.
    #[must_use]
    pub fn start(
        read_baseline: impl FnOnce() -> Result<Option<RunInfo>, ReadError> + Send + 'static,
        dir: &Path,
        info: RunInfo,
        metrics: Vec<crate::model::ProviderMetrics>,
        gates: Vec<crate::model::GateResult>,
        live: LiveRun,
    ) -> Option<Self> {
        if live.rows_path.is_none() || live.run_id != info.run_id {
            return None;
        }
        let dir = dir.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("evalwatch-pages".into())
            .spawn(move || {
                let baseline = read_baseline().map_err(super::HtmlError::Read)?;
                // The rows' file goes with `live`, once the pages are written.
                super::run_page::write_finished(&dir, &info, &metrics, &gates, &live, baseline)
            })
            .ok()?;
        Some(Self {
            thread: Some(thread),
        })
    }

    /// Wait for the pages: what was written, or None when they must be written from the
    /// store.
    pub fn join(mut self) -> Result<Option<super::Written>, super::HtmlError> {
        self.wait()
    }

    /// Wait for the pages, then remove them: the run they show was not stored as they say.
    pub fn discard(mut self) {
        if let Ok(Some(written)) = self.wait() {
            for f in written.files {
                let _ = std::fs::remove_file(f);
            }
        }
    }

    fn wait(&mut self) -> Result<Option<super::Written>, super::HtmlError> {
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| super::HtmlError::Template {
                page: "run".into(),
                message: "the thread writing run pages panicked".into(),
            })?,
            None => Ok(None),
        }
    }
}

impl Drop for EarlyPages {
    fn drop(&mut self) {
        let _ = self.wait();
    }
}
