//! `evalwatch collect`: the OTLP/HTTP receiver ([`crate::traffic::collect`]) in front of one
//! consumer thread that owns the store. Each export is read through the source's rules (the
//! same map, redact and sample as `ingest`), stored with [`super::traffic::write_batch`], and
//! only then answered. After a durable batch that moved the source's newest stored minute, the
//! source's alert rules judge the windows that closed ([`evaluate_closed_windows`]), printed
//! where collect's other messages go. Ctrl-C or SIGTERM stops accepting, answers what was
//! accepted, and exits.

use std::net::SocketAddr;

use tokio::sync::mpsc;

use super::alerts::traffic::evaluate_closed_windows;
use super::traffic::ingest::FUTURE_SLACK_SECS;
use super::traffic::{Batch, Prepare, write_batch};
use super::{Ctx, Failure, exit, interrupt};
use crate::cli::collect::CollectArgs;
use crate::model::{ProjectConfig, TrafficFormat, TrafficSource};
use crate::store::Store;
use crate::traffic::collect::{self, DEFAULT_LISTEN, Export, Settings, Stored};
use crate::traffic::ingest::{Ingestor, SourceRules};

/// Exports waiting for the store; past this, senders are told to retry (429).
const QUEUE: usize = 64;
/// One transaction takes the exports waiting, up to this many spans.
const BATCH_SPANS: usize = 20_000;

/// What the consumer stored over the receiver's life.
#[derive(Debug, Default)]
struct Totals {
    exports: u64,
    new: u64,
    seen: u64,
    rejected: u64,
    failed_batches: u64,
}

pub(crate) fn run(ctx: &Ctx, args: &CollectArgs) -> anyhow::Result<u8> {
    let addr: SocketAddr = args.listen.parse().map_err(|e| {
        Failure::invalid(format!(
            "read --listen `{}`: {e}; give an address such as {DEFAULT_LISTEN}",
            args.listen
        ))
    })?;
    let token = args.token_env.as_deref().map(read_token).transpose()?;
    collect::check_listen(addr, token.is_some()).map_err(|e| Failure::invalid(e.to_string()))?;
    let project = ctx.project()?;
    let source = otlp_source(&project, args.source.as_deref())?.clone();
    let rules = super::traffic::rules(&source)?;
    let prepare = Prepare::new(&project, &source)?;
    let store = ctx.open_store(&ctx.db_path(&project))?;
    // Judge monitors judge the sample beside the collecting, on their own connection.
    // A judge that fails is asked again after a pause (said on stderr): collect keeps running.
    let pause = super::traffic::judging::retry_pause()?;
    let printer = ctx.printer;
    let judging = super::traffic::judging::Judging::new(&project, &source, &ctx.db_path(&project))?
        .map(|j| j.retrying(pause, Box::new(move |text| printer.warn(text))))
        .map(|j| j.spawn(ctx.open_store(&ctx.db_path(&project))?))
        .transpose()?;
    let committed = judging
        .as_ref()
        .map(super::traffic::judging::Background::notifier)
        .unwrap_or_default();
    interrupt::watch()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (queue, exports) = mpsc::channel(QUEUE);
    let printer = ctx.printer;
    let alerts = Alerts {
        ctx: Ctx {
            machine_stdout: std::cell::Cell::new(false),
            printer,
            db: ctx.db.clone(),
            config: ctx.config.clone(),
            cwd: ctx.cwd.clone(),
        },
        project: project.clone(),
        source: source.clone(),
        latest: None,
    };
    let consumer = std::thread::Builder::new()
        .name("evalwatch-collect-store".into())
        .spawn(move || consume(store, &rules, prepare, alerts, exports, &committed))?;
    let settings = Settings {
        token,
        ..Settings::default()
    };
    let served = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Failure {
                code: exit::INCOMPLETE,
                message: format!("collect: listen on {addr}: {e}"),
            })?;
        let local = listener.local_addr()?;
        printer.result(&format!(
            "collecting OTLP/HTTP traces for source `{}` at http://{local}{}",
            source.id,
            collect::TRACES_PATH
        ));
        printer.info("stop with Ctrl-C or SIGTERM: exports already accepted are stored first");
        // From here a signal stops the server gracefully instead of ending the process.
        interrupt::begun();
        let stop = interrupt::token();
        let shutdown = async move {
            match stop {
                Some(t) => t.cancelled().await,
                None => std::future::pending().await,
            }
        };
        collect::serve(listener, settings, queue, shutdown).await?;
        anyhow::Ok(())
    });
    // The server is gone and with it the queue's sender: the consumer stores what is left.
    let totals = consumer
        .join()
        .map_err(|_| anyhow::anyhow!("collect: the store writer stopped unexpectedly"))?;
    served?;
    if let Some(j) = judging {
        super::traffic::judging::print_report(ctx, &j.finish()?);
    }
    ctx.printer.result(&format!(
        "stored {} new span(s) from {} export(s); {} seen before, {} rejected",
        totals.new, totals.exports, totals.seen, totals.rejected
    ));
    Ok(if totals.failed_batches > 0 {
        exit::INCOMPLETE
    } else {
        exit::OK
    })
}

/// The bearer token from the environment variable `var`; exit 2 when it is unset or empty.
fn read_token(var: &str) -> anyhow::Result<String> {
    match std::env::var(var) {
        Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_owned()),
        _ => Err(Failure::invalid(format!(
            "read the token of --token-env {var}: the environment variable {var} is not set or empty"
        ))),
    }
}

/// The source named (which must read `otlp`), or the only `otlp` source.
fn otlp_source<'p>(
    project: &'p ProjectConfig,
    id: Option<&str>,
) -> anyhow::Result<&'p TrafficSource> {
    if id.is_none() {
        let mut otlp = project
            .traffic
            .iter()
            .filter(|s| s.format == TrafficFormat::Otlp);
        if let (Some(only), None) = (otlp.next(), otlp.next()) {
            return Ok(only);
        }
        if project.traffic.len() > 1 {
            return Err(Failure::invalid(format!(
                "find the traffic source to collect into: name one of the `format: otlp` sources of evalwatch.yaml ({})",
                project
                    .traffic
                    .iter()
                    .filter(|s| s.format == TrafficFormat::Otlp)
                    .map(|s| format!("`{}`", s.id))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let source = super::traffic::pick_source(project, id)?;
    if source.format != TrafficFormat::Otlp {
        return Err(Failure::invalid(format!(
            "{}: collect stores spans under a `format: otlp` source, and `{}` reads {}",
            source.location,
            source.id,
            source.format.name()
        )));
    }
    Ok(source)
}

/// What the writer needs to judge the source's alert rules as windows close.
struct Alerts {
    ctx: Ctx,
    project: ProjectConfig,
    source: TrafficSource,
    /// The source's newest stored minute when the rules last judged.
    latest: Option<i64>,
}

impl Alerts {
    /// Judge the windows that closed, when the newest stored minute moved (a window only
    /// closes once traffic after its end is stored). A failure is said and collecting goes on:
    /// the next batch, or `alerts check`, judges those windows.
    fn after_batch(&mut self, store: &mut Store) {
        let latest = match store.traffic_latest(&self.source.id) {
            Ok(l) => l,
            Err(e) => {
                self.ctx.printer.warn(&format!(
                    "collect: judge alert rules of `{}`: {e}; `evalwatch alerts check` judges them later",
                    self.source.id
                ));
                return;
            }
        };
        if latest.is_none() || latest == self.latest {
            return;
        }
        self.latest = latest;
        if self.source.alerts.is_empty() {
            return;
        }
        if let Err(e) = evaluate_closed_windows(
            &self.ctx,
            store,
            &self.project,
            &self.source,
            chrono::Utc::now(),
        ) {
            self.ctx.printer.warn(&format!(
                "collect: judge alert rules of `{}`: {}; `evalwatch alerts check` judges them later",
                self.source.id,
                super::error_text(&e)
            ));
        }
    }
}

/// The store's one writer: takes the exports waiting (up to [`BATCH_SPANS`] spans), stores them
/// in one transaction and answers each. Ends when the receiver has stopped and the queue is empty.
fn consume(
    mut store: Store,
    rules: &SourceRules,
    mut prepare: Prepare,
    mut alerts: Alerts,
    mut exports: mpsc::Receiver<Export>,
    committed: &super::traffic::judging::Committed,
) -> Totals {
    let printer = alerts.ctx.printer;
    let source = alerts.source.id.clone();
    let source = source.as_str();
    let mut ingestor = Ingestor::new(rules);
    let mut totals = Totals::default();
    while let Some(first) = exports.blocking_recv() {
        let mut waiting = vec![first];
        let mut spans = waiting[0].records.len();
        while spans < BATCH_SPANS {
            let Ok(next) = exports.try_recv() else { break };
            spans += next.records.len();
            waiting.push(next);
        }
        ingestor.not_after = Some(chrono::Utc::now().timestamp() + FUTURE_SLACK_SECS);
        let mut batch = Batch::default();
        let mut answers = Vec::with_capacity(waiting.len());
        for export in waiting {
            let (kept, stored) = collect::take(&mut ingestor, &export.records, &export.broken);
            totals.rejected += stored.rejected;
            batch
                .records
                .extend(kept.into_iter().map(|k| prepare.scored(k)));
            answers.push((export.done, stored));
        }
        totals.exports += answers.len() as u64;
        match write_batch(&mut store, source, &batch) {
            Ok(w) => {
                totals.new += w.new;
                totals.seen += w.seen;
                printer.detail(&format!(
                    "stored {spans} span(s) of {} export(s): {} new, {} seen before",
                    answers.len(),
                    w.new,
                    w.seen
                ));
                for (done, stored) in answers {
                    // A sender that gave up (timed out) will send again: nothing is lost.
                    let _ = done.send(Ok(stored));
                }
                committed.tell();
                alerts.after_batch(&mut store);
            }
            Err(e) => {
                totals.failed_batches += 1;
                let why = super::error_text(&e);
                printer.warn(&format!(
                    "collect: could not store {spans} span(s); their senders are told to retry: {why}"
                ));
                for (done, _) in answers {
                    let _ = done.send(Err::<Stored, _>(why.clone()));
                }
            }
        }
    }
    totals
}
