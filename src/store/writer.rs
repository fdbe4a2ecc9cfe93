//! The single writer of a run's results: its own connection on its own thread, fed by a
//! bounded channel, committing in batched immediate transactions.

use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::db::{self, Db, DbError, OptionalExtension, PgPending, TransactionBehavior, Tx, params};
use sha2::{Digest, Sha256};

use super::{StoreError, codec, pg, schema};
use crate::model::{JudgeCacheEntry, JudgeSignature, ResultRecord, Suite};

/// A result waits at most this long in the writer before it is committed.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);

/// How often the writer looks for more results while it gathers a batch.
const POLL: Duration = Duration::from_millis(5);

/// WAL pages after which a writer commit checkpoints by itself (256 MiB with 16 KiB pages):
/// a safety net only, for when the checkpointer thread falls behind.
pub(super) const WRITER_AUTOCHECKPOINT: u32 = 16_000;

/// Prompts remembered by the writer (by text) to skip hashing and a lookup; cleared when full
/// so that memory stays flat.
const PROMPT_CACHE: usize = 4096;
/// Case rows kept for the results still to come (see `case_row`).
const CASE_CACHE: usize = 4096;
/// The writer's maps, keyed by prompt texts (~300 characters in the bench) and case ids, on
/// every result: `foldhash`, not the standard SipHash, which took ~14% of the writer
/// thread's time on PostgreSQL (`perf`, docs/store.md). The keys are the suite's own texts.
type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// How long the writer waits, by default, for a PostgreSQL store that went away to come
/// back before it gives up (the run then ends incomplete).
pub const OUTAGE_WAIT: Duration = Duration::from_secs(60);

/// The longest pause between two attempts to reach a store that went away.
const RECONNECT_MAX: Duration = Duration::from_secs(2);

/// How long the end of a run waits for the writer's second connection still being opened
/// (see `Side::settle`).
const SIDE_SETTLE: Duration = Duration::from_secs(5);

/// What the writer does when a PostgreSQL store goes away mid-run (the server stopped or
/// restarted): it keeps the batches it was writing, connects again with growing pauses and
/// writes them once the server is back; after `wait` it gives up and the run ends incomplete.
pub struct Outage {
    pub wait: Duration,
    /// Told when the store goes away and when it is back, and when the writer cannot open
    /// its second connection to it (a line for stderr).
    pub notice: Box<dyn Fn(&str) + Send>,
}

impl Default for Outage {
    fn default() -> Self {
        Self {
            wait: OUTAGE_WAIT,
            notice: Box::new(|_| {}),
        }
    }
}

/// What the writer thread receives.
enum Msg {
    Result(Box<ResultRecord>),
    /// New judge cache entries and the judges that scored the run.
    Judge {
        cache: Vec<JudgeCacheEntry>,
        signatures: Vec<JudgeSignature>,
    },
}

/// What the writer did.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriterStats {
    pub written: u64,
    pub batches: u64,
}

/// Handle to the single writer thread of one run.
///
/// Dropping it without [`Writer::finish`] still writes what was queued (the thread drains the
/// channel, then stops) and waits for the thread; errors are then lost. Whatever was committed
/// stays usable if the process dies instead.
pub struct Writer {
    run_id: String,
    sender: Option<SyncSender<Msg>>,
    thread: Option<JoinHandle<Result<WriterStats, String>>>,
    failure: Arc<Mutex<Option<String>>>,
    /// Dropped after the thread (see `Drop`).
    checkpointer: Option<Checkpointer>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("run_id", &self.run_id)
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// Start the writer for `run_id` on its own connection. Results are committed in batches
    /// of at most `batch` rows, and at least every 50 ms while results arrive (so that little
    /// is left to commit when the run ends).
    ///
    /// The run must have been begun ([`super::Store::begin_run`]); its case rows are loaded
    /// here. A `batch` of 0 is taken as 1.
    pub fn spawn(path: &Path, run_id: &str, batch: usize) -> Result<Self, StoreError> {
        Self::start(path, run_id, batch, None, Outage::default())
    }

    /// [`Writer::spawn`], riding out a PostgreSQL store that goes away as `outage` says.
    pub fn spawn_with(
        path: &Path,
        run_id: &str,
        batch: usize,
        outage: Outage,
    ) -> Result<Self, StoreError> {
        Self::start(path, run_id, batch, None, outage)
    }

    /// [`Writer::spawn`], registering first, on its thread and before any result, the case
    /// versions of `register`'s suite (first seen at its time) that
    /// [`Store::begin_run_deferred`](crate::store::Store::begin_run_deferred) left to it.
    pub fn spawn_registering(
        path: &Path,
        run_id: &str,
        batch: usize,
        register: Option<(Arc<Suite>, String)>,
    ) -> Result<Self, StoreError> {
        Self::start(path, run_id, batch, register, Outage::default())
    }

    fn start(
        path: &Path,
        run_id: &str,
        batch: usize,
        register: Option<(Arc<Suite>, String)>,
        outage: Outage,
    ) -> Result<Self, StoreError> {
        let batch = batch.max(1);
        let mut conn = super::connect(path)?;
        if let Db::Sqlite(conn) = &conn {
            // Checkpoint less often than SQLite's default 1000 pages: pages rewritten by
            // several batches are then copied to the database once (measured: +30% write
            // rate).
            conn.pragma_update(None, "wal_autocheckpoint", WRITER_AUTOCHECKPOINT)?;
            // The writer only inserts references it has just resolved itself; checking them
            // again costs 8% of the write rate (docs/performance.md). Every other connection
            // checks.
            conn.pragma_update(None, "foreign_keys", "OFF")?;
        }
        let ctx = Context::load(&conn, run_id)?;
        let store = path.to_owned();
        let checkpointer = Checkpointer::spawn(path)?;
        let nudge = checkpointer.handle();
        let (sender, receiver) = sync_channel(batch.clamp(256, 8192));
        let failure = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&failure);
        let for_thread = run_id.to_owned();
        let thread = std::thread::Builder::new()
            .name("evalwatch-store".to_owned())
            .spawn(move || {
                let registered = match &register {
                    Some((suite, first_seen)) => conn
                        .transaction()
                        .map_err(StoreError::from)
                        .and_then(|tx| {
                            super::register_cases(&tx, ctx.suite_ref, suite, first_seen)?;
                            Ok(tx.commit()?)
                        })
                        .map_err(|e: StoreError| format!("register the suite's cases: {e}")),
                    None => Ok(()),
                };
                drop(register);
                let out = registered.and_then(|()| {
                    let run = RunCtx {
                        run_id: &for_thread,
                        outage: &outage,
                        checkpointer: &nudge,
                        store: &store,
                    };
                    write_loop(&conn, ctx, &receiver, batch, &run)
                });
                crate::phase::phase("writer: last batch");
                if let Err(e) = &out {
                    *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(e.clone());
                }
                // Dropping the receiver here makes every later `send` fail instead of block.
                drop(receiver);
                out
            })
            .map_err(|e| StoreError::Writer {
                run_id: run_id.to_owned(),
                message: format!("start the writer thread: {e}"),
            })?;
        Ok(Self {
            run_id: run_id.to_owned(),
            sender: Some(sender),
            thread: Some(thread),
            failure,
            checkpointer: Some(checkpointer),
        })
    }

    /// Queue one result (blocks when the bounded queue is full: backpressure, flat memory).
    /// Fails, with the reason, once the writer thread has failed.
    pub fn send(&self, record: ResultRecord) -> Result<(), StoreError> {
        self.send_msg(Msg::Result(Box::new(record)))
    }

    /// Queue judge cache entries and the judges that scored this run (written with the next
    /// batch; a cache key already stored is replaced, a signature already stored is kept).
    pub fn send_judge(
        &self,
        cache: Vec<JudgeCacheEntry>,
        signatures: Vec<JudgeSignature>,
    ) -> Result<(), StoreError> {
        if cache.is_empty() && signatures.is_empty() {
            return Ok(());
        }
        self.send_msg(Msg::Judge { cache, signatures })
    }

    fn send_msg(&self, msg: Msg) -> Result<(), StoreError> {
        let Some(sender) = &self.sender else {
            return Err(self.error("the writer is closed".to_owned()));
        };
        sender.send(msg).map_err(|_| {
            let why = self
                .failure
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
                .unwrap_or_else(|| "the writer thread stopped".to_owned());
            self.error(why)
        })
    }

    /// Say that nothing more comes: the thread commits what it holds and stops, without
    /// waiting for [`Writer::finish`] (which then only waits for it).
    pub fn close_input(&mut self) {
        self.sender = None;
        if let Some(t) = &self.thread {
            t.thread().unpark();
        }
    }

    /// Flush everything queued and stop the thread (and its checkpointer: a checkpoint it
    /// is making is waited for).
    pub fn finish(self) -> Result<WriterStats, StoreError> {
        self.finish_keeping_checkpointer().map(|(stats, _)| stats)
    }

    /// [`Writer::finish`], but the checkpointer goes on: what it is doing is not waited for,
    /// and it can be asked for one more checkpoint once the run's end is stored (which the
    /// writer's last batch does not ask for: see `write_loop`). Dropping it waits for it.
    pub fn finish_keeping_checkpointer(
        mut self,
    ) -> Result<(WriterStats, Checkpointer), StoreError> {
        // Told at once that nothing more comes, rather than at its next look.
        self.close_input();
        let Some(thread) = self.thread.take() else {
            return Err(self.error("the writer thread is gone".to_owned()));
        };
        let stats = match thread.join() {
            Ok(Ok(stats)) => stats,
            Ok(Err(message)) => return Err(self.error(message)),
            Err(_) => return Err(self.error("the writer thread panicked".to_owned())),
        };
        let checkpointer = self
            .checkpointer
            .take()
            .ok_or_else(|| self.error("the checkpointer is gone".to_owned()))?;
        Ok((stats, checkpointer))
    }

    fn error(&self, message: String) -> StoreError {
        StoreError::Writer {
            run_id: self.run_id.clone(),
            message,
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A case version the writer can refer to.
struct CaseRow {
    id: i64,
    tags: Vec<String>,
}

/// What the writer thread knows about its run.
struct Context {
    run_ref: i64,
    suite_ref: i64,
    /// case id -> content hash -> row
    cases: FastMap<String, FastMap<String, CaseRow>>,
    /// prompt text -> prompt row
    prompts: FastMap<String, i64>,
    /// On PostgreSQL, the types of the result columns (for binary COPY), asked once.
    result_types: Option<Vec<postgres::types::Type>>,
}

/// Prompts asked for by `Context::ask_prompts`: their texts by hash, and the answer to come.
struct PromptsAsked<'t> {
    wanted: FastMap<Vec<u8>, String>,
    pending: PgPending<'t, pg::results::PromptIds>,
}

impl Context {
    fn load(conn: &Db, run_id: &str) -> Result<Self, StoreError> {
        let (run_ref, suite_ref): (i64, i64) = conn
            .query_row(
                "SELECT id, suite_ref FROM runs WHERE run_id = ?1",
                [run_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or_else(|| StoreError::UnknownRun {
                run_id: run_id.to_owned(),
            })?;
        // Case rows are looked up as their first result arrives (see `case_row`), not loaded
        // up front: the writer starts at once whatever the suite's history.
        let cases = FastMap::default();
        Ok(Self {
            run_ref,
            suite_ref,
            cases,
            prompts: FastMap::default(),
            result_types: None,
        })
    }

    /// Forget the rows looked up or added: after a transaction that did not commit, some
    /// of them may not exist.
    fn forget(&mut self) {
        self.cases.clear();
        self.prompts.clear();
    }

    /// On PostgreSQL, ask for the prompts of `records` not known yet to be stored and looked
    /// up (one statement rather than two a prompt), without waiting: [`Self::take_prompts`]
    /// then puts them where `prompt_ref` finds them.
    fn ask_prompts<'t>(
        &self,
        tx: &'t Db,
        records: &[&ResultRecord],
    ) -> Result<Option<PromptsAsked<'t>>, StoreError> {
        let mut wanted: FastMap<Vec<u8>, String> = FastMap::default();
        for rec in records {
            let text = rec.prompt.as_str();
            if !text.is_empty() && !self.prompts.contains_key(text) {
                let hash: [u8; 32] = Sha256::digest(text.as_bytes()).into();
                wanted
                    .entry(hash.to_vec())
                    .or_insert_with(|| text.to_owned());
            }
        }
        if wanted.is_empty() {
            return Ok(None);
        }
        let asked = wanted.iter().map(|(h, t)| (h.clone(), t.clone())).collect();
        let pending = pg::results::prompt_ids(tx, asked)?;
        Ok(Some(PromptsAsked { wanted, pending }))
    }

    /// Wait for the prompts asked for and keep their ids.
    fn take_prompts(&mut self, asked: Option<PromptsAsked<'_>>) -> Result<(), StoreError> {
        let Some(PromptsAsked {
            mut wanted,
            pending,
        }) = asked
        else {
            return Ok(());
        };
        let found = pending.wait()?;
        if self.prompts.len() + wanted.len() > PROMPT_CACHE {
            self.prompts.clear();
        }
        for (hash, id) in found {
            if let Some(text) = wanted.remove(&hash) {
                self.prompts.insert(text, id);
            }
        }
        Ok(())
    }

    /// On PostgreSQL, ask for the case versions of `records` not known yet, as
    /// `ask_prompts`; [`Self::take_cases`] keeps them.
    fn ask_cases<'t>(
        &self,
        tx: &'t Db,
        records: &[&ResultRecord],
    ) -> Result<Option<PgPending<'t, pg::results::CaseRows>>, StoreError> {
        let mut wanted: FastMap<(&str, &str), &ResultRecord> = FastMap::default();
        for rec in records {
            let known = self
                .cases
                .get(rec.job.case_id.as_str())
                .is_some_and(|m| m.contains_key(rec.case_hash.as_str()));
            if !known {
                wanted
                    .entry((rec.job.case_id.as_str(), rec.case_hash.as_str()))
                    .or_insert(rec);
            }
        }
        if wanted.is_empty() {
            return Ok(None);
        }
        let keys = wanted
            .values()
            .map(|rec| {
                Ok(pg::results::CaseKey {
                    case_id: rec.job.case_id.clone(),
                    hash: rec.case_hash.clone(),
                    tags: codec::to_json(&rec.tags)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        Ok(Some(pg::results::case_rows(tx, self.suite_ref, keys, now)?))
    }

    /// Wait for the case versions asked for and keep them.
    fn take_cases(
        &mut self,
        asked: Option<PgPending<'_, pg::results::CaseRows>>,
    ) -> Result<(), StoreError> {
        let Some(pending) = asked else {
            return Ok(());
        };
        let rows = pending.wait()?;
        if self.cases.len() + rows.len() > CASE_CACHE {
            self.cases.clear();
        }
        for (id, case_id, hash, tags) in rows {
            let tags: Vec<String> = serde_json::from_str(&tags).unwrap_or_default();
            self.cases
                .entry(case_id)
                .or_default()
                .insert(hash, CaseRow { id, tags });
        }
        Ok(())
    }

    /// The case row of a result, added when `begin_run` did not know that version.
    fn case_row(&mut self, tx: &Db, rec: &ResultRecord) -> Result<(i64, bool), StoreError> {
        if let Some(row) = self
            .cases
            .get(rec.job.case_id.as_str())
            .and_then(|m| m.get(rec.case_hash.as_str()))
        {
            return Ok((row.id, row.tags == rec.tags));
        }
        let find = |tx: &Db| -> Result<Option<(i64, String)>, StoreError> {
            Ok(tx
                .prepare_cached(
                    "SELECT id, tags FROM cases WHERE suite_ref = ?1 AND case_id = ?2 AND hash = ?3",
                )?
                .query_row(
                    params![self.suite_ref, rec.job.case_id, rec.case_hash],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?)
        };
        let (id, tags) = if let Some(found) = find(tx)? {
            found
        } else {
            // A version `begin_run` did not register (a result for a case edited since).
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            tx.prepare_cached(
                "INSERT INTO cases (suite_ref, case_id, hash, tags, first_seen)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (suite_ref, case_id, hash) DO NOTHING",
            )?
            .execute(params![
                self.suite_ref,
                rec.job.case_id,
                rec.case_hash,
                codec::to_json(&rec.tags)?,
                now
            ])?;
            find(tx)?
                .ok_or_else(|| StoreError::Other("store a case version: it vanished".into()))?
        };
        let tags: Vec<String> = serde_json::from_str(&tags).unwrap_or_default();
        let same = tags == rec.tags;
        // The results of a case arrive close together (plan order: its samples and
        // providers side by side): a bounded cache keeps the writer's memory O(in-flight).
        if self.cases.len() >= CASE_CACHE {
            self.cases.clear();
        }
        self.cases
            .entry(rec.job.case_id.clone())
            .or_default()
            .insert(rec.case_hash.clone(), CaseRow { id, tags });
        Ok((id, same))
    }

    /// The prompt row of a text, stored once (keyed by its SHA-256) across all runs.
    fn prompt_ref(&mut self, tx: &Db, text: &str) -> Result<Option<i64>, StoreError> {
        if text.is_empty() {
            return Ok(None);
        }
        if let Some(&id) = self.prompts.get(text) {
            return Ok(Some(id));
        }
        let hash: [u8; 32] = Sha256::digest(text.as_bytes()).into();
        let found: Option<i64> = tx
            .prepare_cached("SELECT id FROM prompts WHERE hash = ?1")?
            .query_row([&hash[..]], |r| r.get(0))
            .optional()?;
        let id = match found {
            Some(id) => id,
            None => tx.insert_id(
                "INSERT INTO prompts (hash, text) VALUES (?1, ?2)",
                params![&hash[..], text],
            )?,
        };
        if self.prompts.len() >= PROMPT_CACHE {
            self.prompts.clear();
        }
        self.prompts.insert(text.to_owned(), id);
        Ok(Some(id))
    }
}

/// Copies committed WAL pages into the database on its own thread and connection
/// (`PRAGMA wal_checkpoint(PASSIVE)`, which never blocks the writer), so that the writer never
/// stops to do it (docs/performance.md has the measurements). Dropping it waits for the
/// checkpoint it is making, if any, and closes its connection.
pub struct Checkpointer {
    nudge: Nudge,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer").finish_non_exhaustive()
    }
}

impl Checkpointer {
    pub(super) fn spawn(path: &Path) -> Result<Self, StoreError> {
        if path.to_str().is_some_and(super::pg::is_postgres_url) {
            // The server checkpoints its own log: nothing to do here.
            return Ok(Self {
                nudge: Nudge(None),
                thread: None,
            });
        }
        let conn = schema::connect(path)?;
        let (nudge, wake) = sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            // Linux keeps 15 bytes of a thread's name: "evalwatch-checkpoint" read as the
            // checker's "evalwatch-check" in profiles.
            .name("evalwatch-ckpt".to_owned())
            .spawn(move || {
                while wake.recv().is_ok() {
                    // A failed checkpoint is retried on the next nudge; the writer's own
                    // autocheckpoint is the safety net.
                    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", (), |_| Ok(()));
                }
            })
            .map_err(|e| StoreError::Other(format!("start the checkpoint thread: {e}")))?;
        Ok(Self {
            nudge: Nudge(Some(nudge)),
            thread: Some(thread),
        })
    }

    /// What the writer thread nudges it with.
    fn handle(&self) -> Nudge {
        Nudge(self.nudge.0.clone())
    }

    /// Ask for a checkpoint; coalesces with one already asked for.
    pub fn nudge(&self) {
        self.nudge.nudge();
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // Its thread stops once every handle is gone (the writer thread's went with it).
        self.nudge = Nudge(None);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A way to ask the checkpointer for a checkpoint (its own, and the writer thread's).
struct Nudge(Option<SyncSender<()>>);

impl Nudge {
    fn nudge(&self) {
        if let Some(n) = &self.0 {
            let _ = n.try_send(());
        }
    }
}

/// What the writer's loop is told about its run.
struct RunCtx<'a> {
    run_id: &'a str,
    outage: &'a Outage,
    checkpointer: &'a Nudge,
    /// The store's path or URL (for the second connection on PostgreSQL).
    store: &'a Path,
}

fn write_loop(
    conn: &Db,
    mut ctx: Context,
    receiver: &Receiver<Msg>,
    batch: usize,
    run: &RunCtx<'_>,
) -> Result<WriterStats, String> {
    if conn.is_pg() {
        return write_loop_pg(conn, ctx, receiver, batch, run);
    }
    let checkpointer = run.checkpointer;
    let mut stats = WriterStats::default();
    let mut buf: Vec<Msg> = Vec::with_capacity(batch.min(4096));
    loop {
        let open = gather(receiver, &mut buf, batch);
        if buf.is_empty() {
            break;
        }
        commit(conn, &mut ctx, &buf, run, false)?;
        stats.count(&buf);
        buf.clear();
        if !open {
            break;
        }
        // Not after the last batch: the run's end is stored next, and a checkpoint that
        // caught up with the log now would make that commit start the log over (which syncs
        // its header). The caller may nudge it once more after that (see
        // `finish_keeping_checkpointer`); the store's close checkpoints what is left.
        checkpointer.nudge();
    }
    Ok(stats)
}

impl WriterStats {
    /// Count a batch committed.
    fn count(&mut self, buf: &[Msg]) {
        self.written += buf.iter().filter(|m| matches!(m, Msg::Result(_))).count() as u64;
        self.batches += 1;
    }
}

/// Gather the next batch into `buf`: wait for its first message, then take what comes until
/// it holds `batch` or `FLUSH_EVERY` has passed. False when the senders are gone (what they
/// sent is in `buf`, which is empty when nothing was left).
fn gather(receiver: &Receiver<Msg>, buf: &mut Vec<Msg>, batch: usize) -> bool {
    match receiver.recv() {
        Ok(rec) => buf.push(rec),
        Err(_) => return false,
    }
    let deadline = Instant::now() + FLUSH_EVERY;
    while buf.len() < batch {
        match receiver.try_recv() {
            Ok(rec) => {
                buf.push(rec);
                continue;
            }
            Err(TryRecvError::Disconnected) => return false,
            Err(TryRecvError::Empty) => {}
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        // Results that come meanwhile are taken in one go: waking for each of them (a few
        // thousand a second) takes the CPU the model calls need. `finish` unparks.
        std::thread::park_timeout(POLL.min(deadline - now));
    }
    true
}

/// The writer on PostgreSQL, one batch ahead: a batch's `COPY` and `COMMIT` are handed to
/// the connection's thread without waiting, and while the server stores them the writer
/// gathers the next batch, asks for its prompts and case versions (queued behind that
/// `COMMIT`) and builds its rows. A batch counts as written once its `COMMIT` is confirmed;
/// when the connection is lost, the batch in flight is written again (rows already stored
/// are kept once), then the next, as `commit` writes them through an outage.
fn write_loop_pg(
    conn: &Db,
    mut ctx: Context,
    receiver: &Receiver<Msg>,
    batch: usize,
    run: &RunCtx<'_>,
) -> Result<WriterStats, String> {
    let side = Side::default();
    let mut stats = WriterStats::default();
    let mut in_flight: Option<(Vec<Msg>, InFlight<'_>)> = None;
    loop {
        let mut buf: Vec<Msg> = Vec::with_capacity(batch.min(4096));
        let open = gather(receiver, &mut buf, batch);
        if buf.len() >= batch {
            side.open(run);
        }
        let started = if buf.is_empty() {
            None
        } else {
            Some(start_batch_pg(
                conn,
                side.get(run).unwrap_or(conn),
                &mut ctx,
                &buf,
            ))
        };
        if let Some((done, flight)) = in_flight.take() {
            match flight.settle() {
                Ok(()) => stats.count(&done),
                Err(StoreError::Db(DbError::Lost(_))) => {
                    // What the batch in flight and the one begun after it did may be gone.
                    drop(started);
                    ctx.forget();
                    commit(conn, &mut ctx, &done, run, true)?;
                    stats.count(&done);
                    if !buf.is_empty() {
                        commit(conn, &mut ctx, &buf, run, false)?;
                        stats.count(&buf);
                    }
                    if open {
                        continue;
                    }
                    break;
                }
                Err(e) => return Err(batch_failed(&done, &e)),
            }
        }
        let Some(started) = started else {
            break;
        };
        match started.and_then(|s| finish_batch_pg(conn, &mut ctx, s, false)) {
            Ok(flight) => in_flight = Some((buf, flight)),
            Err(StoreError::Db(DbError::Lost(_))) => {
                side.lost(run);
                ctx.forget();
                commit(conn, &mut ctx, &buf, run, false)?;
                stats.count(&buf);
            }
            Err(e) => return Err(batch_failed(&buf, &e)),
        }
        if !open && in_flight.is_none() {
            break;
        }
    }
    side.settle(run);
    Ok(stats)
}

/// The writer's second connection on PostgreSQL, for its batches' prompts and case
/// versions: they are stored there in transactions of their own while the first connection
/// copies the batch before, so that the server's work for a batch runs in two processes
/// (docs/store.md). It is opened, on a thread of its own, once a batch comes full (a run
/// of a few results never opens it); until it is there, and if it cannot be opened, the
/// first connection does it all.
#[derive(Default)]
struct Side {
    db: std::cell::OnceCell<Db>,
    connecting: std::cell::RefCell<Option<Receiver<Result<Db, StoreError>>>>,
    tried: std::cell::Cell<bool>,
    /// Lost and not to be had again: the run goes on with one connection.
    given_up: std::cell::Cell<bool>,
}

impl Side {
    /// Start opening the connection, once.
    fn open(&self, run: &RunCtx<'_>) {
        if self.tried.replace(true) {
            return;
        }
        let (send, receive) = sync_channel(1);
        let store = run.store.to_owned();
        let spawned = std::thread::Builder::new()
            .name("evalwatch-side".to_owned())
            .spawn(move || {
                let _ = send.send(super::connect(&store));
            });
        match spawned {
            Ok(_) => *self.connecting.borrow_mut() = Some(receive),
            Err(e) => Self::refused(run, &e),
        }
    }

    /// The connection, once it is open (and while it is not given up).
    fn get(&self, run: &RunCtx<'_>) -> Option<&Db> {
        if self.given_up.get() {
            return None;
        }
        if self.db.get().is_none() {
            self.answer(run, None);
        }
        self.db.get()
    }

    /// A batch failed with a lost connection, maybe this one: if it no longer answers and
    /// cannot be opened again, the rest of the run goes without it, and the run says so once
    /// (rather than trying again, and failing, for every batch).
    fn lost(&self, run: &RunCtx<'_>) {
        let Some(db) = self.get(run) else {
            return;
        };
        if let Err(e) = db.ensure_alive() {
            self.given_up.set(true);
            (run.outage.notice)(&format!(
                "lost the second connection to the store and could not open it again (the run's results go by one, more slowly): {e}"
            ));
        }
    }

    /// At the run's end: a connection still being opened gets a few seconds to answer, so
    /// that one the server refused is said even when the run ended first.
    fn settle(&self, run: &RunCtx<'_>) {
        self.answer(run, Some(SIDE_SETTLE));
    }

    /// Take the connecting thread's answer, if it came (within `wait`, else at once): keep
    /// the connection, or say why there is none.
    fn answer(&self, run: &RunCtx<'_>, wait: Option<Duration>) {
        // `Err(true)`: the thread is gone without answering; `Err(false)`: no answer yet.
        let answer = match (self.connecting.borrow().as_ref(), wait) {
            (None, _) => return,
            (Some(c), None) => c
                .try_recv()
                .map_err(|e| matches!(e, TryRecvError::Disconnected)),
            (Some(c), Some(wait)) => c
                .recv_timeout(wait)
                .map_err(|e| matches!(e, std::sync::mpsc::RecvTimeoutError::Disconnected)),
        };
        match answer {
            Err(false) => return,
            Ok(Ok(db)) => {
                let _ = self.db.set(db);
            }
            Ok(Err(e)) => Self::refused(run, &e),
            Err(true) => Self::refused(run, &"its thread stopped"),
        }
        *self.connecting.borrow_mut() = None;
    }

    fn refused(run: &RunCtx<'_>, why: &dyn std::fmt::Display) {
        (run.outage.notice)(&format!(
            "could not open a second connection to the store (the run's results go by one, more slowly): {why}"
        ));
    }
}

/// The writer's failure to store a batch, in words.
fn batch_failed(buf: &[Msg], e: &dyn std::fmt::Display) -> String {
    format!("commit a batch of {} results: {e}", buf.len())
}

/// Write one batch; on PostgreSQL, through an outage (see [`Outage`]). `maybe_stored` when
/// the batch may have been committed already (its commit's answer was lost).
fn commit(
    conn: &Db,
    ctx: &mut Context,
    buf: &[Msg],
    run: &RunCtx<'_>,
    maybe_stored: bool,
) -> Result<(), String> {
    let failed = |e: &dyn std::fmt::Display| batch_failed(buf, e);
    let mut lost_since: Option<Instant> = None;
    loop {
        let again = maybe_stored || lost_since.is_some();
        match write_batch(conn, ctx, buf, again) {
            Ok(()) => break,
            Err(StoreError::Db(DbError::Lost(why))) => {
                // What the failed transaction added may not exist.
                ctx.forget();
                let since = *lost_since.get_or_insert_with(|| {
                    (run.outage.notice)(&format!(
                        "store unreachable, retrying for up to {} s: {why}",
                        run.outage.wait.as_secs()
                    ));
                    Instant::now()
                });
                reach(conn, since, run).map_err(|e| failed(&e))?;
            }
            Err(e) => return Err(failed(&e)),
        }
    }
    if let Some(since) = lost_since {
        (run.outage.notice)(&format!(
            "store {} reachable again after {} s; the results kept meanwhile are stored",
            conn.pg_shown().unwrap_or_default(),
            since.elapsed().as_secs()
        ));
    }
    Ok(())
}

/// Connect again to a store that went away at `since`, with growing pauses, until it
/// answers or the outage's wait is over.
fn reach(conn: &Db, since: Instant, run: &RunCtx<'_>) -> Result<(), String> {
    let mut pause = Duration::from_millis(100);
    loop {
        let waited = since.elapsed();
        let Some(left) = run.outage.wait.checked_sub(waited).filter(|l| !l.is_zero()) else {
            return Err(format!(
                "the store {} was unreachable for {} s, the limit (EVALWATCH_STORE_WAIT); the results stored before are kept and the run is incomplete: `evalwatch run --resume {}` runs the rest once the server is back and the suite's lease expired (EVALWATCH_LEASE_TTL)",
                conn.pg_shown().unwrap_or_default(),
                waited.as_secs(),
                run.run_id
            ));
        };
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(RECONNECT_MAX);
        if conn.reconnect().is_ok() {
            return Ok(());
        }
    }
}

const INSERT_RESULT: &str = "INSERT INTO results (id, run_ref, seq, case_ref, case_index, provider,
    provider_index, sample, status, score, latency_ms, tokens_in, tokens_out, cost_usd, attempts,
    error_kind, finish_reason, prompt_ref, label_expected, label_predicted, tags, assertions,
    error, output, output_bytes, truncated)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
            ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26)";

fn write_batch(conn: &Db, ctx: &mut Context, buf: &[Msg], again: bool) -> Result<(), StoreError> {
    if conn.is_pg() {
        let started = start_batch_pg(conn, conn, ctx, buf)?;
        return finish_batch_pg(conn, ctx, started, again)?.settle();
    }
    let tx = conn.unchecked_transaction_with(TransactionBehavior::Immediate)?;
    let records = buf.iter().filter_map(|m| match m {
        Msg::Result(rec) => Some(&**rec),
        Msg::Judge { .. } => None,
    });
    if let Some(counted) = BatchVersions::of(ctx.run_ref, records)? {
        let mut add = tx.prepare_cached(
            "INSERT INTO run_version_batches (run_ref, batch, provider, model, fingerprint, answers)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
        )?;
        for (provider, model, fingerprint, answers) in &counted.rows {
            add.execute(params![
                ctx.run_ref,
                counted.batch,
                provider,
                model,
                fingerprint,
                answers
            ])?;
        }
    }
    {
        let mut add_result = tx.prepare_cached(INSERT_RESULT)?;
        for msg in buf {
            let rec = match msg {
                Msg::Result(rec) => rec,
                Msg::Judge { cache, signatures } => {
                    write_judge(&tx, ctx.run_ref, cache, signatures)?;
                    continue;
                }
            };
            let (case_ref, same_tags) = ctx.case_row(&tx, rec)?;
            let prompt_ref = ctx.prompt_ref(&tx, &rec.prompt)?;
            result_params(ctx.run_ref, case_ref, prompt_ref, same_tags, rec, |p| {
                add_result.execute(p)
            })?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// A batch begun on PostgreSQL: its transaction, its rows without their references yet, and
/// the prompts and case versions asked for.
struct Started<'c, 'b> {
    tx: Tx<'c>,
    records: Vec<&'b ResultRecord>,
    /// The rows, encoded before their references are known (see [`finish_batch_pg`]), and
    /// where each starts.
    rows: pg::results::EncodedRows,
    placed: Vec<pg::results::RowAt>,
    prompts: Option<PromptsAsked<'c>>,
    cases: Option<PgPending<'c, pg::results::CaseRows>>,
}

/// A batch whose `COPY` and `COMMIT` are with the server, not confirmed yet.
struct InFlight<'c> {
    copied: PgPending<'c, u64>,
    /// The batch's model versions, counted ([`BatchVersions`]), when it has any.
    counted: Option<PgPending<'c, u64>>,
    committed: PgPending<'c, ()>,
}

impl InFlight<'_> {
    /// Wait for the server to confirm the batch. The `COPY`'s answer counts too: a
    /// transaction whose statement failed ends in a rollback without an error from `COMMIT`.
    fn settle(self) -> Result<(), StoreError> {
        self.copied.wait()?;
        if let Some(counted) = self.counted {
            counted.wait()?;
        }
        self.committed.wait()?;
        Ok(())
    }
}

/// Begin a batch on PostgreSQL without waiting for the server (what is queued before it runs
/// first): `BEGIN`, the judges' rows, the prompts and case versions the writer does not know
/// yet asked for, and the rows built meanwhile. The prompts and case versions are asked of
/// `side`: when it is not `conn` they are stored in transactions of their own, and one
/// stored for a batch that then fails is kept unreferenced, as if another run had stored it.
fn start_batch_pg<'c, 'b>(
    conn: &'c Db,
    side: &'c Db,
    ctx: &mut Context,
    buf: &'b [Msg],
) -> Result<Started<'c, 'b>, StoreError> {
    if ctx.result_types.is_none() {
        ctx.result_types = Some(pg::results::result_types(conn)?);
    }
    let tx = conn.pipelined_transaction()?;
    let mut records = Vec::with_capacity(buf.len());
    for msg in buf {
        match msg {
            Msg::Result(rec) => records.push(&**rec),
            Msg::Judge { cache, signatures } => {
                write_judge(&tx, ctx.run_ref, cache, signatures)?;
            }
        }
    }
    let prompts = ctx.ask_prompts(side, &records)?;
    let cases = ctx.ask_cases(side, &records)?;
    // While the server answers, the rows are encoded as those of a case with its tags and,
    // where there is a prompt, a stored one; `finish_batch_pg` puts the references in.
    let types = ctx.result_types.as_deref().unwrap_or_default();
    let mut rows = pg::results::EncodedRows::with_capacity(records.len() * ROW_BYTES);
    let placed = records
        .iter()
        .map(|rec| {
            let prompt_ref = (!rec.prompt.is_empty()).then_some(0);
            result_params(ctx.run_ref, 0, prompt_ref, true, rec, |p| {
                rows.push(p, types)
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Started {
        tx,
        records,
        rows,
        placed,
        prompts,
        cases,
    })
}

/// Finish a batch begun by [`start_batch_pg`]: take the prompts and case versions, put the
/// references in the rows, and hand the `COPY` and the `COMMIT` to the server (see
/// [`pg::results::copy_results`] for `again`).
fn finish_batch_pg<'c>(
    conn: &'c Db,
    ctx: &mut Context,
    started: Started<'c, '_>,
    again: bool,
) -> Result<InFlight<'c>, StoreError> {
    use pg::results::{CASE_REF, PROMPT_REF};
    let Started {
        tx,
        records,
        mut rows,
        placed,
        prompts,
        cases,
    } = started;
    ctx.take_prompts(prompts)?;
    ctx.take_cases(cases)?;
    let mut refs = Vec::with_capacity(records.len());
    for rec in &records {
        let (case_ref, same_tags) = ctx.case_row(conn, rec)?;
        refs.push((case_ref, same_tags, ctx.prompt_ref(conn, &rec.prompt)?));
    }
    let fits = records.iter().zip(&refs).zip(&placed).all(
        |((rec, &(case_ref, same_tags, prompt_ref)), &at)| {
            same_tags
                && rows.set_int(at, CASE_REF, case_ref)
                && match prompt_ref {
                    Some(id) => rows.set_int(at, PROMPT_REF, id),
                    None => rec.prompt.is_empty(),
                }
        },
    );
    if !fits {
        // A result whose tags are not its case version's (its case was edited during the
        // run): the batch is encoded again, with every row's own values.
        let types = ctx.result_types.as_deref().unwrap_or_default();
        rows = pg::results::EncodedRows::with_capacity(records.len() * ROW_BYTES);
        for (rec, &(case_ref, same_tags, prompt_ref)) in records.iter().zip(&refs) {
            result_params(ctx.run_ref, case_ref, prompt_ref, same_tags, rec, |p| {
                rows.push(p, types)
            })?;
        }
    }
    let copied = pg::results::copy_results(conn, rows, again)?;
    let counted = BatchVersions::of(ctx.run_ref, records.iter().copied())?
        .map(|v| pg::results::count_versions(conn, ctx.run_ref, v))
        .transpose()?;
    let committed = tx.commit_later()?;
    Ok(InFlight {
        copied,
        counted,
        committed,
    })
}

/// About the bytes of a result's row in `COPY`'s binary format, for the batch's buffer (it
/// grows past it for longer outputs).
const ROW_BYTES: usize = 1024;

/// The parameters of a result's row (as `INSERT_RESULT` and `pg::results::RESULT_COLUMNS`
/// list them), handed to `f`.
fn result_params<R>(
    run_ref: i64,
    case_ref: i64,
    prompt_ref: Option<i64>,
    same_tags: bool,
    rec: &ResultRecord,
    f: impl FnOnce(&[&dyn db::Value]) -> Result<R, DbError>,
) -> Result<R, StoreError> {
    let tags = if same_tags {
        None
    } else {
        Some(codec::to_json(&rec.tags)?)
    };
    let job = &rec.job;
    Ok(f(params![
        codec::result_id(run_ref, job.seq)?,
        run_ref,
        codec::usize_to_i64(job.seq),
        case_ref,
        codec::usize_to_i64(job.case_index),
        job.provider_id,
        codec::usize_to_i64(job.provider_index),
        job.sample,
        rec.status.as_str(),
        rec.score,
        rec.latency_ms,
        rec.tokens_in.map(codec::to_i64),
        rec.tokens_out.map(codec::to_i64),
        rec.cost_usd,
        rec.attempts,
        rec.error_kind.map(crate::model::ErrorKind::as_str),
        rec.finish_reason,
        prompt_ref,
        rec.label.as_ref().map(|l| l.expected.as_str()),
        rec.label.as_ref().and_then(|l| l.predicted.as_deref()),
        tags,
        codec::assertions_to_json(&rec.assertions)?,
        rec.error,
        rec.output,
        rec.output_bytes.map(codec::to_i64),
        rec.truncated,
    ])?)
}

/// The model versions a batch's results reported, counted, to be stored in the batch's
/// transaction under the batch's first result (`run_version_batches`): a batch written again
/// after its commit's answer was lost adds nothing, and a run killed mid-way keeps the counts
/// of what it stored.
pub(crate) struct BatchVersions {
    /// `results.id` of the batch's first result.
    pub(crate) batch: i64,
    /// (provider, model, fingerprint or "", answers).
    pub(crate) rows: Vec<(String, String, String, i64)>,
}

impl BatchVersions {
    /// None when no result of the batch reported a version.
    fn of<'r>(
        run_ref: i64,
        records: impl IntoIterator<Item = &'r ResultRecord>,
    ) -> Result<Option<Self>, StoreError> {
        let mut first = None;
        let mut counts: std::collections::BTreeMap<(&str, &str, &str), i64> =
            std::collections::BTreeMap::new();
        for rec in records {
            first.get_or_insert(rec.job.seq);
            if let Some(v) = &rec.reported {
                let fingerprint = v.fingerprint.as_deref().unwrap_or("");
                *counts
                    .entry((rec.job.provider_id.as_str(), v.model.as_str(), fingerprint))
                    .or_default() += 1;
            }
        }
        let Some(first) = first.filter(|_| !counts.is_empty()) else {
            return Ok(None);
        };
        Ok(Some(Self {
            batch: codec::result_id(run_ref, first)?,
            rows: counts
                .into_iter()
                .map(|((p, m, f), n)| (p.to_owned(), m.to_owned(), f.to_owned(), n))
                .collect(),
        }))
    }
}

fn write_judge(
    tx: &Tx<'_>,
    run_ref: i64,
    cache: &[JudgeCacheEntry],
    signatures: &[JudgeSignature],
) -> Result<(), StoreError> {
    super::judge::put_cache(tx, cache)?;
    let mut add = tx.prepare_cached(
        "INSERT OR IGNORE INTO run_judges (run_ref, assertion, provider, model, rubric_version, rubric_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for s in signatures {
        add.execute(params![
            run_ref,
            s.assertion,
            s.provider,
            s.model,
            s.rubric_version,
            s.rubric_hash
        ])?;
    }
    Ok(())
}
