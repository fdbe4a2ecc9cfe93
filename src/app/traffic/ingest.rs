//! `evalwatch ingest [SOURCE] [PATH...|-] [--follow]`: a source's files (or stdin) through the
//! pure stage (map, redact, sample), the sample scored by the source's `monitor`, and every
//! batch stored by [`super::write_batch`] with the files' offsets, so that a later ingest (or
//! a restart after a crash) resumes where the last commit stopped and counts nothing twice.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender};
use std::time::Duration;

use serde_json::json;

use super::judging::{Committed, JudgeReport};
use super::monitor::Monitor;
use super::write::Chunk;
use super::{Batch, Prepare, Scored, Written};
use crate::app::{Ctx, Failure, exit};
use crate::cli::ReadFormat;
use crate::cli::traffic::IngestArgs;
use crate::model::{CaseStatus, ProjectConfig, TrafficFormat, TrafficSource};
use crate::store::{FileOffset, Store};
use crate::traffic::ingest::{Fresh, Ingestor, Kept, SourceRules};
use crate::traffic::otlp;
use crate::traffic::reader::{self, LineReader, Packing};
use crate::traffic::shape::Shape;
use tokio_util::sync::CancellationToken;

/// The longest record read; a longer line is counted as malformed and skipped unread.
const LINE_LIMIT: usize = 1 << 20;
/// Records per batch handed from the reading thread to the storing one.
const BATCH: usize = 2048;
/// Records per transaction at most: a chunk of batches whose minute, hour and day buckets
/// are merged into the store once (docs/performance.md, session 12).
const CHUNK: usize = 8 * BATCH;
/// How long the storing thread holds a chunk open waiting for the next batch from stdin (a
/// slow pipe) before committing what it has. Files are read without pauses: their chunks end
/// every `CHUNK` records whatever the machine's load, so that a pass cut short and resumed
/// stores what one clean pass stores, to the last bit of its sums.
const CHUNK_WAIT: Duration = Duration::from_secs(1);
/// Batches waiting between two threads of a pass (reading, shaping, storing): three each,
/// so that a thread that runs a little slower for a while (the storing one at a chunk's
/// commit) does not stop the others at once. With the batches' room reused, nine batches
/// of 2,048 records at most are held (one at each thread and three between each two), which
/// keeps the peak memory of an ingest under 64 MB (docs/performance.md).
const AHEAD: usize = 3;
/// A file's identity in its stored offset, `DEV:INO`: a rotated file (another file under
/// the same name) is told from a grown one.
fn identity(meta: &std::fs::Metadata) -> String {
    format!("{}:{}", meta.dev(), meta.ino())
}

/// How often `--follow` looks for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(250);
/// How far ahead of this machine's clock a record may be timed.
pub(crate) const FUTURE_SLACK_SECS: i64 = 300;

pub fn run(ctx: &Ctx, args: &IngestArgs) -> anyhow::Result<u8> {
    let project = ctx.project()?;
    let (id, paths) = split_args(&ctx.cwd, &project, &args.args);
    let source = super::pick_source(&project, id)?;
    let rules = super::rules(source)?;
    let mut reading = Reading::new(ctx, &project, source, &rules)?;
    let mut store = ctx.open_store(&ctx.db_path(&project))?;
    // Judge monitors judge the sample beside the reading, on their own connection.
    // Following, a judge that fails is asked again after a pause (said on stderr).
    let retry = args.follow.then(super::judging::retry_pause).transpose()?;
    let printer = ctx.printer;
    reading.judging = super::judging::Judging::new(&project, source, &ctx.db_path(&project))?
        .map(|j| match retry {
            Some(pause) => j.retrying(pause, Box::new(move |text| printer.warn(text))),
            None => j,
        })
        .map(|j| j.spawn(ctx.open_store(&ctx.db_path(&project))?))
        .transpose()?;
    let mut warned = false;
    let mut opened = 0;
    // Following: malformed records are said as they are read, and Ctrl-C or SIGTERM ends
    // the reading at the next batch handed to the store (a first pass over a large file
    // does not run to its end first); the summary then says what was read and stored.
    let stop = if args.follow {
        reading.ing.fresh = Some(Fresh::default());
        crate::app::interrupt::begun();
        crate::app::interrupt::token()
    } else {
        None
    };
    reading.stop.clone_from(&stop);
    let stopped = || stop.as_ref().is_some_and(CancellationToken::is_cancelled);
    loop {
        let before = reading.written.new;
        if paths.iter().any(|p| p == "-") {
            reading.pass(&mut store, (), Some(CHUNK_WAIT), |r, ()| r.read_stdin())?;
        } else {
            let files = files(ctx, source, paths)?;
            if files.is_empty() && !warned {
                warned = true;
                ctx.printer.warn(&format!(
                    "ingest `{}`: no file matches {}{}",
                    source.id,
                    if paths.is_empty() {
                        "the source's `path`"
                    } else {
                        "the paths given"
                    },
                    if args.follow { "; waiting for one" } else { "" }
                ));
            }
            // Where each file's last committed read stopped, looked up before the storing
            // thread takes the store.
            let starts = files
                .into_iter()
                .map(|f| {
                    let key = f.canonicalize().unwrap_or_else(|_| f.clone());
                    let key = key.display().to_string();
                    let at = store.traffic_offset(&source.id, &key)?;
                    Ok((f, key, at))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            reading.follow_rotations(&starts, !paths.is_empty());
            reading.pass(&mut store, starts, None, |r, starts| {
                for (file, key, at) in starts {
                    if r.stopping() {
                        break;
                    }
                    r.read_file(&file, key, at)?;
                }
                Ok(())
            })?;
        }
        if !args.follow {
            break;
        }
        reading.say_fresh(ctx);
        if reading.written.new > before {
            if args.format == ReadFormat::Text {
                ctx.printer
                    .detail(&format!("{} new records", reading.written.new - before));
            }
            // Following: the rules judge the windows the new records closed.
            opened += judge_windows(ctx, &mut store, &project, source)?;
        }
        if stopped() {
            break;
        }
        std::thread::sleep(FOLLOW_POLL);
    }
    let judged = reading
        .judging
        .take()
        .map(super::judging::Background::finish)
        .transpose()?;
    if stopped() && args.format == ReadFormat::Text {
        ctx.printer.note(&format!(
            "ingest {}: stopped by a signal: every record read was stored (the next ingest resumes after it)",
            source.id
        ));
    }
    reading.report(ctx, args.format, judged.as_ref(), args.follow);
    opened += judge_windows(ctx, &mut store, &project, source)?;
    Ok(if reading.ing.counts.malformed > 0 {
        exit::INCOMPLETE
    } else if opened > 0 {
        exit::GATE
    } else {
        exit::OK
    })
}

/// The source id (when the first argument names a source) and the paths.
/// The source's alert rules judge every window the records read closed (docs/alerts.md);
/// returns how many alerts opened.
fn judge_windows(
    ctx: &Ctx,
    store: &mut Store,
    project: &ProjectConfig,
    source: &TrafficSource,
) -> anyhow::Result<usize> {
    super::models::mark_new_models(ctx, store, source)?;
    let outcome = crate::app::alerts::traffic::evaluate_closed_windows(
        ctx,
        store,
        project,
        source,
        chrono::Utc::now(),
    )?;
    Ok(outcome.opened)
}

/// A first argument that names no source is a path, unless it is no file, folder, glob or `-`
/// and a source must be named (several are defined) or it is a near miss of one: it is then
/// a mistyped source, which [`super::pick_source`] refuses with a did-you-mean.
fn split_args<'a>(
    cwd: &Path,
    project: &ProjectConfig,
    args: &'a [String],
) -> (Option<&'a str>, &'a [String]) {
    let ids = || project.traffic.iter().map(|s| s.id.as_str());
    match args.split_first() {
        Some((first, rest)) if ids().any(|id| id == first) => (Some(first.as_str()), rest),
        Some((first, rest))
            if first != "-"
                && !first.contains(['*', '?', '['])
                && !cwd.join(first).exists()
                && (project.traffic.len() > 1
                    || !crate::suite::did_you_mean(first, ids()).is_empty()) =>
        {
            (Some(first.as_str()), rest)
        }
        _ => (None, args),
    }
}

/// The files to read: the paths given, else the source's `path`; none is exit 2.
fn files(ctx: &Ctx, source: &TrafficSource, paths: &[String]) -> anyhow::Result<Vec<PathBuf>> {
    let files = if paths.is_empty() {
        if source.path.is_none() {
            return Err(Failure::invalid(format!(
                "ingest `{}`: the source has no `path`; give files, a glob, a folder or `-` (stdin)",
                source.id
            )));
        }
        super::source_files(source)?
    } else {
        let mut out = Vec::new();
        for p in paths {
            out.extend(super::files::expand(&ctx.cwd.join(p))?);
        }
        out
    };
    Ok(files)
}

/// One line of CSV as its cells (a header row, or a row whose columns it names). A line that is
/// not CSV gives no cells.
fn csv_row(line: &str) -> csv::StringRecord {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line.as_bytes());
    let mut row = csv::StringRecord::new();
    if r.read_record(&mut row).is_err() {
        row.clear();
    }
    row
}

/// One line of CSV under the file's header row: its cells, or why it is not a row of that
/// file (not CSV, a quote left open, more or fewer cells than the header names).
fn csv_record(line: &str, headers: &csv::StringRecord) -> Result<csv::StringRecord, String> {
    if let Some(at) = open_quote(line) {
        return Err(format!(
            "not CSV: the quote opened at byte {} is not closed on this line (a quoted cell cannot span lines)",
            at + 1
        ));
    }
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line.as_bytes());
    let mut row = csv::StringRecord::new();
    match r.read_record(&mut row) {
        Err(e) => Err(format!("not CSV: {e}")),
        Ok(_) if row.len() != headers.len() => Err(format!(
            "not a row of this file: {} cell{} where the header names {} column{}",
            row.len(),
            if row.len() == 1 { "" } else { "s" },
            headers.len(),
            if headers.len() == 1 { "" } else { "s" },
        )),
        Ok(_) => Ok(row),
    }
}

/// Where a quoted cell of `line` opens without closing (RFC 4180: a cell that starts with `"`
/// ends at a `"` not doubled), if one does. A `"` inside an unquoted cell is text.
fn open_quote(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    let (mut i, mut cell_start) = (0, true);
    while i < bytes.len() {
        match bytes[i] {
            b'"' if cell_start => {
                let opened = i;
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => return Some(opened),
                        Some(b'"') if bytes.get(i + 1) == Some(&b'"') => i += 2,
                        Some(b'"') => break,
                        Some(_) => i += 1,
                    }
                }
                cell_start = false;
            }
            b',' => cell_start = true,
            _ => cell_start = false,
        }
        i += 1;
    }
    None
}

/// One `ingest`: what it read, what it holds before the next commit, what it stored.
struct Reading<'a> {
    cwd: PathBuf,
    source: &'a TrafficSource,
    ing: Ingestor<'a>,
    prepare: Prepare,
    batch: Batch,
    written: super::Written,
    files: u64,
    /// The files read (their keys), so that each counts once in `files`.
    seen_files: std::collections::HashSet<String>,
    /// Sampled records the monitor decided (passed or failed) as they were read.
    scored: u64,
    /// Sampled records left to the judge (see `judging`).
    awaiting_judge: u64,
    skipped_spans: u64,
    out_of_order: u64,
    unfinished: Vec<String>,
    /// What was seen of files rotated since the last ingest: whether lines may be lost
    /// (said as a warning), and what.
    rotated: Vec<(bool, String)>,
    /// Where the last ingest stopped in files now under another name (rotated), by their
    /// `DEV:INO`: read on from there in this pass.
    moved: std::collections::HashMap<String, FileOffset>,
    judging: Option<super::judging::Background>,
    /// `--follow`: cancelled by Ctrl-C or SIGTERM, which ends the reading at the next batch.
    stop: Option<CancellationToken>,
    /// The storing thread's end of the pipeline, during a pass.
    sink: Option<SyncSender<Batch>>,
    /// Batches' records the storing thread is done with, during a pass: dropped here, where
    /// they were allocated (freed on the storing thread, their strings took a tenth of its
    /// time), and their room used for the next batch.
    spent: Option<Receiver<Vec<Scored>>>,
}

impl<'a> Reading<'a> {
    fn new(
        ctx: &Ctx,
        project: &ProjectConfig,
        source: &'a TrafficSource,
        rules: &'a SourceRules,
    ) -> anyhow::Result<Self> {
        let mut ing = Ingestor::new(rules);
        ing.not_after = Some(chrono::Utc::now().timestamp() + FUTURE_SLACK_SECS);
        Ok(Self {
            cwd: ctx.cwd.clone(),
            source,
            ing,
            prepare: Prepare::new(project, source)?,
            batch: Batch::default(),
            written: super::Written::default(),
            files: 0,
            seen_files: std::collections::HashSet::new(),
            scored: 0,
            awaiting_judge: 0,
            skipped_spans: 0,
            out_of_order: 0,
            unfinished: Vec::new(),
            rotated: Vec::new(),
            moved: std::collections::HashMap::new(),
            judging: None,
            stop: None,
            sink: None,
            spent: None,
        })
    }

    /// A signal asked `--follow` to stop: the reading ends at the next batch boundary, where
    /// what was read is handed over with the offset after it.
    fn stopping(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(CancellationToken::is_cancelled)
    }

    fn push(&mut self, kept: Kept) {
        let priced = self.prepare.priced(kept);
        self.batch.records.push(priced);
    }

    /// One pass over the input: `read` runs here (read, parse, map, redact, sample, price)
    /// while a second thread scores the sampled records with the monitor and works out their
    /// lengths and language, and a third stores the batches (claims, buckets, records,
    /// offsets) in chunks, so that both cores work.
    /// An error of any of them ends the pass; what was committed stays, and the next ingest
    /// resumes after it. `wait`: how long a chunk waits for the next batch before it is
    /// committed (`None`: until the batch comes or the pass ends).
    fn pass<T: Send>(
        &mut self,
        store: &mut Store,
        input: T,
        wait: Option<Duration>,
        read: impl FnOnce(&mut Self, T) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let source = self.source.id.as_str();
        let committed = self
            .judging
            .as_ref()
            .map(super::judging::Background::notifier);
        let (tx, rx) = std::sync::mpsc::sync_channel(AHEAD);
        let (shaped, to_store) = std::sync::mpsc::sync_channel(AHEAD);
        let (done, spent) = std::sync::mpsc::channel();
        let mut monitor = self.prepare.take_monitor();
        let (read, shaped, stored) = std::thread::scope(|s| {
            let committed = committed.as_ref();
            let storing =
                s.spawn(move || store_batches(store, source, &to_store, &done, wait, committed));
            let monitor = &mut monitor;
            let shaping = s.spawn(move || shape_batches(&rx, &shaped, monitor));
            self.sink = Some(tx);
            self.spent = Some(spent);
            let read = read(self, input).and_then(|()| self.flush());
            // Closing the channel tells the shaping thread, and through it the storing one,
            // that the pass is over.
            self.sink = None;
            self.spent = None;
            let shaped = shaping
                .join()
                .map_err(|_| anyhow::anyhow!("the shaping thread panicked"));
            let stored = storing
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the storing thread panicked")));
            (read, shaped, stored)
        });
        self.prepare.give_back(monitor);
        // The storing side's error explains a reading side that stopped because of it.
        let verdicts = shaped?;
        self.scored += verdicts.scored;
        self.awaiting_judge += verdicts.awaiting_judge;
        let stored = stored?;
        self.written.new += stored.new;
        self.written.seen += stored.seen;
        read
    }

    /// Hands the batch read so far to the storing thread.
    fn flush(&mut self) -> anyhow::Result<()> {
        if self.batch.records.is_empty() && self.batch.offsets.is_empty() {
            return Ok(());
        }
        // The next batch is as large as this one was: grown by doubling, its records were
        // copied over and over (a tenth of the reading thread's time).
        let mut room = None;
        for mut spent in self.spent.iter().flat_map(Receiver::try_iter) {
            spent.clear();
            room = Some(spent);
        }
        let next = Batch {
            records: room
                .unwrap_or_else(|| Vec::with_capacity(self.batch.records.len().max(BATCH))),
            offsets: Vec::new(),
        };
        let batch = std::mem::replace(&mut self.batch, next);
        match &self.sink {
            Some(sink) if sink.send(batch).is_ok() => Ok(()),
            // The storing thread stopped; its error is the pass's.
            _ => Err(anyhow::anyhow!("storing stopped")),
        }
    }

    /// One line of the source's format: its records pushed, or why it is malformed.
    fn line(
        &mut self,
        text: &str,
        at: impl Fn() -> String,
        headers: Option<&csv::StringRecord>,
        last: &mut i64,
    ) {
        match self.source.format {
            TrafficFormat::Jsonl => {
                if let Some(k) = self.ing.json_line(text, &at) {
                    self.accept(k, last);
                }
            }
            TrafficFormat::Csv => {
                let Some(h) = headers else { return };
                match csv_record(text, h) {
                    Ok(row) => {
                        if let Some(k) = self.ing.row(h, &row, text.as_bytes(), &at) {
                            self.accept(k, last);
                        }
                    }
                    Err(why) => self.ing.malformed(at(), why),
                }
            }
            TrafficFormat::Otlp => match otlp::decode_json(text.as_bytes()) {
                Err(e) => self.ing.malformed(at(), e.to_string()),
                Ok(d) if d.records.is_empty() && d.skipped == 0 => self.ing.malformed(
                    at(),
                    "no spans: not an OTLP/JSON trace export (one ExportTraceServiceRequest with `resourceSpans` per line)".to_owned(),
                ),
                Ok(d) => {
                    self.skipped_spans += d.skipped as u64;
                    // A line holds many spans: each error names its span.
                    for b in d.broken {
                        self.ing.malformed(format!("{}: {}", at(), b.at), b.why);
                    }
                    for v in &d.records {
                        let raw = v.to_string();
                        let at = || format!("{}: {}", at(), otlp::span_name(v));
                        if let Some(k) = self.ing.value(v, raw.as_bytes(), at) {
                            self.accept(k, last);
                        }
                    }
                }
            },
        }
    }

    /// A record read: counted out of order when older than the newest before it (`last`),
    /// and pushed to the batch.
    fn accept(&mut self, k: Kept, last: &mut i64) {
        let t = k.record.time.timestamp();
        if t < *last {
            self.out_of_order += 1;
        }
        *last = (*last).max(t);
        self.push(k);
    }

    /// A path as said to people: relative to the working directory when under it.
    fn shown(&self, path: &Path) -> String {
        path.strip_prefix(&self.cwd)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// One file from where its last committed read stopped (`at`); `key`: its canonical path.
    /// A gzip-compressed file (a rotated log) is read decompressed ([`Self::read_gzip`]).
    fn read_file(
        &mut self,
        path: &Path,
        key: String,
        at: Option<FileOffset>,
    ) -> anyhow::Result<()> {
        let shown = self.shown(path);
        let meta = std::fs::metadata(path).map_err(|e| anyhow::anyhow!("read {shown}: {e}"))?;
        // Counted once however many `--follow` passes read it.
        if self.seen_files.insert(key.clone()) {
            self.files += 1;
        }
        let identity = identity(&meta);
        // Read to its end and unchanged (plain, or compressed): not opened (`--follow` looks
        // at every file four times a second).
        if at.as_ref().is_some_and(|o| {
            (o.identity == identity && o.offset == meta.len())
                || o.identity == format!("{identity} gzip {}", meta.len())
        }) {
            return Ok(());
        }
        let mut file = File::open(path).map_err(|e| anyhow::anyhow!("read {shown}: {e}"))?;
        match reader::packing(&mut file).map_err(|e| anyhow::anyhow!("read {shown}: {e}"))? {
            Packing::Plain => {}
            Packing::Gzip => return self.read_gzip(file, &shown, key, at, &identity, meta.len()),
            Packing::Other { name, cat } => {
                // Said as one record that cannot be read, each time the file is given.
                self.ing.malformed(
                    format!("{shown}:1"),
                    format!(
                        "the file is {name}-compressed, which ingest does not read (plain and gzip only): give its text on standard input (`{cat} {shown} | evalwatch ingest {} -`)",
                        self.source.id
                    ),
                );
                return Ok(());
            }
        }
        let (offset, number) = match at {
            Some(o) if o.identity == identity && o.offset <= meta.len() => (o.offset, o.line),
            // A rotated file under its new name: on from where the last ingest stopped in it.
            _ => match self.moved.remove(&identity) {
                Some(o) if o.offset <= meta.len() => (o.offset, o.line),
                // Another file now (rotated), truncated, or new: from its start.
                _ => (0, 0),
            },
        };
        if offset == meta.len() {
            return Ok(());
        }
        let headers = self.csv_headers(&mut file)?;
        file.seek(SeekFrom::Start(offset))?;
        let mut reader = LineReader::new(BufReader::new(file), offset, number, LINE_LIMIT);
        let (line_no, failed) =
            self.lines(&mut reader, &shown, &key, &identity, headers.as_ref())?;
        if let Some(e) = failed {
            return Err(anyhow::anyhow!("read {shown}: {e}"));
        }
        if reader.pending() > 0 {
            // Once, however many `--follow` passes find the line still unfinished.
            self.note(format!(
                "{shown}:{}: the last line has no newline yet (a file being written?): left for the next ingest",
                line_no + 1
            ));
        }
        self.end_file(key, identity, reader.offset(), line_no)
    }

    /// Before a pass over `starts`: each file that is another file than the one the last
    /// ingest read under its name (rotated, as `logrotate` renames a log and creates it
    /// anew) is looked for in its folder by the old file's device and inode. Found among the
    /// pass's files (a `path` that takes the rotated copies), it is read on from where the
    /// last ingest stopped; found outside them, the lines it got since are not read, and
    /// that is said with how many bytes; gone (compressed, removed), that is said too.
    /// `given`: the files are the paths given on the command line, not the source's `path`
    /// (what the messages name as what would take the rotated copy).
    fn follow_rotations(&mut self, starts: &[(PathBuf, String, Option<FileOffset>)], given: bool) {
        let (paths, take, do_not) = if given {
            ("the paths given", "take", "do not take")
        } else {
            ("the source's path", "takes", "does not take")
        };
        let identity_of = |p: &Path| std::fs::metadata(p).ok().map(|m| (identity(&m), m.len()));
        let now: Vec<Option<(String, u64)>> =
            starts.iter().map(|(f, _, _)| identity_of(f)).collect();
        let in_pass: std::collections::HashSet<&str> =
            now.iter().flatten().map(|(id, _)| id.as_str()).collect();
        self.moved.clear();
        for ((file, _, at), now) in starts.iter().zip(&now) {
            // Compressed files are read whole, not rotated in place; a new name has no past.
            let Some(at) = at
                .as_ref()
                .filter(|a| a.offset > 0 && !a.identity.contains(' '))
            else {
                continue;
            };
            let Some((now, now_len)) = now else {
                continue;
            };
            let shown = self.shown(file);
            if *now == at.identity {
                if *now_len < at.offset {
                    self.rotated.push((
                        false,
                        format!(
                            "{shown} is shorter than where the last ingest stopped (truncated, as logrotate's `copytruncate` does): read from its start; what it got after line {} is read only if {paths} {take} its copy",
                            at.line
                        ),
                    ));
                }
                continue;
            }
            let old = file.parent().and_then(|dir| {
                std::fs::read_dir(dir).ok()?.flatten().find_map(|e| {
                    let path = e.path();
                    let (id, len) = identity_of(&path)?;
                    (id == at.identity).then_some((path, len))
                })
            });
            match old {
                Some((path, len)) if in_pass.contains(at.identity.as_str()) => {
                    // Read on from there (an older copy that has not changed: nothing to read,
                    // nothing to say).
                    if len > at.offset {
                        let moved = self.shown(&path);
                        self.rotated.push((
                            false,
                            format!(
                                "{shown} was rotated since the last ingest: its old file, now {moved}, is read on from line {}, where that ingest stopped",
                                at.line + 1
                            ),
                        ));
                    }
                    self.moved.insert(at.identity.clone(), at.clone());
                }
                Some((path, len)) => {
                    let moved = self.shown(&path);
                    let unread = len.saturating_sub(at.offset);
                    if unread > 0 {
                        self.rotated.push((
                            true,
                            format!(
                                "{shown} was rotated since the last ingest: its old file, now {moved}, has {unread} bytes after line {}, where that ingest stopped, which are not read: {paths} {do_not} it (a glob such as `{shown}*` would)",
                                at.line
                            ),
                        ));
                    }
                }
                None => self.rotated.push((
                    false,
                    format!(
                        "{shown} is another file since the last ingest (rotated): read from its start; the old file is no longer in its folder (compressed or removed), so what it got after line {} is read only if {paths} {take} its copy",
                        at.line
                    ),
                )),
            }
        }
    }

    /// A CSV source's header row (the file's first line; the file is left anywhere).
    fn csv_headers(
        &self,
        file: &mut impl std::io::Read,
    ) -> anyhow::Result<Option<csv::StringRecord>> {
        if self.source.format != TrafficFormat::Csv {
            return Ok(None);
        }
        let mut first = String::new();
        BufReader::new(file).read_line(&mut first)?;
        Ok(Some(csv_row(&first)))
    }

    /// The lines of `reader` until its end or its first read error, each through the
    /// source's format, with the offset after each batch's last line kept as `identity`'s:
    /// the number of the last line read, and the error that stopped the reading, if one did.
    /// A failure to hand a batch over is the pass's error.
    fn lines<R: BufRead>(
        &mut self,
        reader: &mut LineReader<R>,
        shown: &str,
        key: &str,
        identity: &str,
        headers: Option<&csv::StringRecord>,
    ) -> anyhow::Result<(u64, Option<std::io::Error>)> {
        let mut last = i64::MIN;
        let mut line_no = reader.number();
        loop {
            let line = match reader.next_line() {
                Ok(Some(line)) => line,
                Ok(None) => return Ok((line_no, None)),
                Err(e) => return Ok((line_no, Some(e))),
            };
            line_no = line.number;
            let at = || format!("{shown}:{}", line.number);
            match line.text {
                Err(e) => self.ing.malformed(at(), e.to_string()),
                Ok(_) if headers.is_some() && line.number == 1 => {}
                Ok(text) => self.line(text, at, headers, &mut last),
            }
            if self.batch.records.len() >= BATCH {
                self.batch.offsets.push((
                    key.to_owned(),
                    FileOffset {
                        identity: identity.to_owned(),
                        offset: line.end,
                        line: line.number,
                    },
                ));
                self.flush()?;
                if self.stopping() {
                    return Ok((line_no, None));
                }
            }
        }
    }

    /// A gzip-compressed file (`logrotate`'s `compress`), read decompressed. Its offsets
    /// count decompressed bytes. While it is being read they are kept under the identity
    /// `DEV:INO gzip`; read to its end, `DEV:INO gzip LEN` (its compressed length), so that
    /// an unchanged file is not decompressed again; ended early (a file still being
    /// compressed) or broken, with ` early` or ` broken` after that: said again, not read
    /// again, while it stays as it is. A file read halfway (a crash) or grown since is
    /// decompressed from its start and read from where the last read stopped.
    fn read_gzip(
        &mut self,
        file: File,
        shown: &str,
        key: String,
        at: Option<FileOffset>,
        inode: &str,
        len: u64,
    ) -> anyhow::Result<()> {
        let reading = format!("{inode} gzip");
        let read = format!("{reading} {len}");
        // (Read to its end and unchanged, it was not opened: see `read_file`.)
        let (offset, number) = match at {
            Some(o) if o.identity == format!("{read} early") => {
                self.note(format!(
                    "{shown}:{}: the compressed file ended early when it was read, and has not changed since: the rest is not read",
                    o.line + 1
                ));
                return Ok(());
            }
            Some(o) if o.identity == format!("{read} broken") => {
                self.note(format!(
                    "{shown}:{}: the gzip stream was broken there when the file was read (counted as malformed then), and the file has not changed since: the rest is not read",
                    o.line + 1
                ));
                return Ok(());
            }
            Some(o) if o.identity == reading || o.identity.starts_with(&format!("{reading} ")) => {
                (o.offset, o.line)
            }
            _ => (0, 0),
        };
        // Compressed whole, the file's last line is complete even without its newline.
        let mut text = BufReader::new(flate2::bufread::MultiGzDecoder::new(BufReader::new(file)))
            .chain(&b"\n"[..]);
        // A CSV file's header line, read first whatever the offset.
        let (mut from, mut from_line, mut headers, mut stopped) = (0, 0, None, None);
        if self.source.format == TrafficFormat::Csv {
            let mut first = String::new();
            match text.read_line(&mut first) {
                Ok(n) => {
                    (from, from_line) = (n as u64, 1);
                    headers = Some(csv_row(&first));
                }
                Err(e) => stopped = Some(e),
            }
        }
        if offset > from {
            if let Err(e) =
                std::io::copy(&mut (&mut text).take(offset - from), &mut std::io::sink())
            {
                stopped = Some(e);
            }
            (from, from_line) = (offset, number);
        }
        let mut reader = LineReader::new(text, from, from_line, LINE_LIMIT);
        let line_no = if stopped.is_none() {
            let (n, e) = self.lines(&mut reader, shown, &key, &reading, headers.as_ref())?;
            stopped = e;
            n
        } else {
            from_line
        };
        let identity = match stopped {
            // Stopped by a signal before its end: read on from there by the next ingest.
            None if self.stopping() => reading,
            None => read,
            Some(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                self.note(format!(
                    "{shown}:{}: the compressed file ends early (still being compressed?): the rest is left for the next ingest",
                    line_no + 1
                ));
                format!("{read} early")
            }
            Some(e) => {
                self.ing.malformed(
                    format!("{shown}:{}", line_no + 1),
                    format!("the gzip stream is broken ({e}): the rest of the file is not read"),
                );
                format!("{read} broken")
            }
        };
        self.end_file(key, identity, reader.offset(), line_no)
    }

    /// A file read as far as it goes: where the next ingest resumes, handed over with the
    /// file's last records.
    fn end_file(
        &mut self,
        key: String,
        identity: String,
        offset: u64,
        line: u64,
    ) -> anyhow::Result<()> {
        self.batch.offsets.push((
            key,
            FileOffset {
                identity,
                offset,
                line,
            },
        ));
        self.flush()
    }

    /// A note for the end of the ingest, said once however many passes find it.
    fn note(&mut self, text: String) {
        if !self.unfinished.contains(&text) {
            self.unfinished.push(text);
        }
    }

    fn read_stdin(&mut self) -> anyhow::Result<()> {
        let stdin = std::io::stdin();
        let mut input = stdin.lock();
        self.files += 1;
        let head = input
            .fill_buf()
            .map_err(|e| anyhow::anyhow!("read stdin: {e}"))?;
        if let Packing::Other { name, cat } = reader::packing_of(head) {
            self.ing.malformed(
                "stdin:1".to_owned(),
                format!(
                    "standard input is {name}-compressed, which ingest does not read (plain and gzip only): pipe it through `{cat}`"
                ),
            );
            return Ok(());
        }
        // `zcat` is not needed: gzip on standard input is read decompressed. The input's end
        // is its last line's end, newline or not: nothing more will come to finish it.
        let text = reader::text_of(input)
            .map_err(|e| anyhow::anyhow!("read stdin: {e}"))?
            .chain(&b"\n"[..]);
        let mut reader = LineReader::new(text, 0, 0, LINE_LIMIT);
        let mut headers: Option<csv::StringRecord> = None;
        let mut last = i64::MIN;
        loop {
            let line = match reader.next_line() {
                Ok(Some(line)) => line,
                Ok(None) => break,
                // A compressed stream that ends early or is broken: what came before it
                // stays, the rest is said to be lost.
                Err(e) => {
                    self.ing.malformed(
                        format!("stdin:{}", reader.number() + 1),
                        format!(
                            "the input cannot be read further ({e}): the rest of it is not read"
                        ),
                    );
                    return Ok(());
                }
            };
            let at = || format!("stdin:{}", line.number);
            match line.text {
                Err(e) => self.ing.malformed(at(), e.to_string()),
                Ok(text) if self.source.format == TrafficFormat::Csv && headers.is_none() => {
                    headers = Some(csv_row(text));
                }
                Ok(text) => self.line(text, at, headers.as_ref(), &mut last),
            }
            if self.batch.records.len() >= BATCH {
                self.flush()?;
                if self.stopping() {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Says the malformed records read since the last call (`--follow`), on stderr.
    fn say_fresh(&mut self, ctx: &Ctx) {
        let fresh = self.ing.take_fresh();
        for (at, why) in &fresh.shown {
            ctx.printer.warn(&format!("{at}: {why}"));
        }
        if fresh.more > 0 {
            ctx.printer
                .warn(&format!("... and {} more malformed records", fresh.more));
        }
    }

    /// The summary; `said`: the malformed records were said as they were read (`--follow`),
    /// so the text output does not list them again.
    fn report(&self, ctx: &Ctx, format: ReadFormat, judged: Option<&JudgeReport>, said: bool) {
        let c = &self.ing.counts;
        let more = c.malformed.saturating_sub(c.shown.len() as u64);
        if format == ReadFormat::Json {
            let body = json!({
                "source": self.source.id,
                "files": self.files,
                "records": c.records,
                "new": self.written.new,
                "seen_before": self.written.seen,
                "sampled": c.sampled,
                "scored": self.scored,
                "awaiting_judge": self.awaiting_judge,
                "malformed": c.malformed,
                "errors": c.shown.iter().map(|(at, why)| json!({"at": at, "reason": why})).collect::<Vec<_>>(),
                "skipped_spans": self.skipped_spans,
                "out_of_order": self.out_of_order,
                "unfinished": self.unfinished,
                "rotated": self.rotated.iter().map(|(_, text)| text).collect::<Vec<_>>(),
                "judge": judged.map(super::judging::report_json),
            });
            crate::output::out(&body.to_string());
            return;
        }
        for (at, why) in c.shown.iter().filter(|_| !said) {
            ctx.printer.warn(&format!("{at}: {why}"));
        }
        if more > 0 && !said {
            ctx.printer
                .warn(&format!("... and {more} more malformed records"));
        }
        for u in &self.unfinished {
            ctx.printer.note(u);
        }
        for (lost, text) in &self.rotated {
            if *lost {
                ctx.printer.warn(text);
            } else {
                ctx.printer.note(text);
            }
        }
        if self.out_of_order > 0 {
            ctx.printer.note(&format!(
                "{} records were out of time order: each is counted in its own minute",
                self.out_of_order
            ));
        }
        if self.skipped_spans > 0 {
            ctx.printer.note(&format!(
                "{} spans were not model calls (no GenAI or OpenInference attributes): skipped",
                self.skipped_spans
            ));
        }
        if let Some(j) = judged {
            super::judging::print_report(ctx, j);
        }
        let plural = |n: u64| if n == 1 { "" } else { "s" };
        ctx.printer.result(&format!(
            "ingest {}: {} record{} read from {} file{}: {} new, {} seen before, {} sampled ({} scored{}); {} malformed",
            self.source.id,
            c.records,
            plural(c.records),
            self.files,
            plural(self.files),
            self.written.new,
            self.written.seen,
            c.sampled,
            self.scored,
            if self.awaiting_judge > 0 {
                format!(", {} left to the judge", self.awaiting_judge)
            } else {
                String::new()
            },
            c.malformed
        ));
    }
}

/// What the monitor decided during a pass.
#[derive(Debug, Default)]
struct Verdicts {
    /// Sampled records the monitor decided (passed or failed).
    scored: u64,
    /// Sampled records left to the judge (see `judging`).
    awaiting_judge: u64,
}

/// Scores each batch's sampled records with the monitor and works out their lengths and
/// language, then hands the batch on, in order, until either side is gone.
fn shape_batches(
    batches: &Receiver<Batch>,
    shaped: &SyncSender<Batch>,
    monitor: &mut Monitor,
) -> Verdicts {
    let mut verdicts = Verdicts::default();
    for mut batch in batches {
        for scored in &mut batch.records {
            if !scored.kept.sampled {
                continue;
            }
            monitor.judge(scored);
            if let Some(score) = &scored.score {
                match score.status {
                    CaseStatus::Passed | CaseStatus::Failed => verdicts.scored += 1,
                    CaseStatus::Unscorable if super::monitor::awaits_judge(score) => {
                        verdicts.awaiting_judge += 1;
                    }
                    CaseStatus::Unscorable | CaseStatus::Error => {}
                }
            }
            if scored.shape.is_none() {
                scored.shape = Some(Shape::of(&scored.kept.record));
            }
        }
        if shaped.send(batch).is_err() {
            // The storing thread stopped; its error is the pass's.
            break;
        }
    }
    verdicts
}

/// The storing side of a pass: batches from the channel stored in chunks of up to [`CHUNK`]
/// records, each one transaction; a chunk is committed early when no batch comes for `wait`
/// (stdin: [`CHUNK_WAIT`], a slow pipe) and when the reading side closes the channel.
/// A pass of more than one chunk moves the store's checkpoints to a thread of their own
/// ([`Store::checkpoint_aside`]); they are back on the connection when the pass ends, also
/// when it ends in an error (whatever the store is used for next).
fn store_batches(
    store: &mut Store,
    source: &str,
    batches: &Receiver<Batch>,
    done: &Sender<Vec<Scored>>,
    wait: Option<Duration>,
    committed: Option<&Committed>,
) -> anyhow::Result<Written> {
    let mut checkpoints: Option<crate::store::Checkpointer> = None;
    let mut chunks = || -> anyhow::Result<Written> {
        let mut written = Written::default();
        let Ok(mut next) = batches.recv() else {
            return Ok(written);
        };
        loop {
            let mut chunk = Chunk::begin(store, source)?;
            let open = loop {
                let w = chunk.add(&next)?;
                written.new += w.new;
                written.seen += w.seen;
                // Dropped by the reading thread (or here, once it has stopped).
                let _ = done.send(std::mem::take(&mut next.records));
                if chunk.records >= CHUNK {
                    break true;
                }
                let came = match wait {
                    Some(wait) => batches.recv_timeout(wait),
                    None => batches.recv().map_err(|_| RecvTimeoutError::Disconnected),
                };
                match came {
                    Ok(b) => next = b,
                    Err(RecvTimeoutError::Timeout) => break true,
                    Err(RecvTimeoutError::Disconnected) => break false,
                }
            };
            chunk.commit()?;
            if let Some(c) = committed {
                c.tell();
            }
            match batches.recv() {
                Ok(b) if open => next = b,
                _ => return Ok(written),
            }
            // A pass of more than one chunk: the store's log is copied into the database on
            // a thread of its own from here on (a tenth of this thread's time at each commit).
            match &checkpoints {
                Some(c) => c.nudge(),
                None => checkpoints = store.checkpoint_aside().ok(),
            }
        }
    };
    let stored = chunks();
    if checkpoints.take().is_none() {
        return stored;
    }
    let back = store.checkpoint_here();
    let written = stored?;
    back?;
    Ok(written)
}
