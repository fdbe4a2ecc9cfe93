//! `evalwatch review`: sample results into a sheet, import the grades a sheet exports, serve
//! open sheets on loopback, and show agreement of human and automatic verdicts.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::json;

use super::{Ctx, Failure, exit};
use crate::cli::ReadFormat;
use crate::cli::review::{ReviewArgs, ReviewCommand};
use crate::model::{CaseStatus, ProjectConfig, ResultRecord, RunStatus, Suite};
use crate::report::html::Window;
use crate::report::terminal;
use crate::review::ReviewError;
use crate::review::grades::{self, GradesFile};
use crate::review::sample::{Sampler, Stratum, classify};
use crate::review::serve::{self, Backend, Refusal, SheetEntry};
use crate::review::sheet::{self, SheetData, SheetItem, Submit};
use crate::review::stats::AgreementBuilder;
use crate::store::{ImportCount, NewSheet, Store};

/// Sheet size when neither `--n` nor the suite's `review:` says.
pub const DEFAULT_N: usize = 50;
/// Window of runs sampled when neither `--run` nor `--since` says.
pub const DEFAULT_SINCE: &str = "7d";

/// The full id of the sheet a (prefix of an) id names, or exit 2.
fn resolve_sheet(store: &Store, verb: &str, id: &str) -> anyhow::Result<String> {
    store.resolve_sheet(id)?.ok_or_else(|| {
        Failure::invalid(format!(
            "{verb} review sheet {id}: no such sheet (`evalwatch review list --all` shows them)"
        ))
    })
}

/// The items of a stored sheet, as its page shows them.
fn stored_items(row: &crate::store::SheetRow) -> anyhow::Result<Vec<SheetItem>> {
    let mut items = Vec::with_capacity(row.items.len());
    for (id, _, json) in &row.items {
        items.push(serde_json::from_str::<SheetItem>(json).map_err(|e| {
            anyhow::anyhow!(
                "read item {id} of review sheet {}: it is not valid: {e}",
                row.sheet_id
            )
        })?);
    }
    Ok(items)
}

/// `review show SHEET --html`: the sheet's page written again from the store (after a failed
/// write, a lost file, or a new evalwatch's sheet template).
fn rewrite_page(
    ctx: &Ctx,
    project: &ProjectConfig,
    store: &Store,
    sheet_id: &str,
) -> anyhow::Result<u8> {
    let Some(row) = store.sheet(sheet_id)? else {
        return Err(Failure::invalid(format!(
            "show review sheet {sheet_id}: no such sheet (`evalwatch review list --all` shows them)"
        )));
    };
    let items = stored_items(&row)?;
    let page = sheet::render(&SheetData {
        sheet_id: &row.sheet_id,
        created_at: &row.created_at,
        mac: &row.mac,
        items: &items,
        submit: None,
    });
    let path = reports_dir(project)
        .join("review")
        .join(format!("{}.html", row.sheet_id));
    write_page(&path, &page)?;
    ctx.printer.result(&format!(
        "review sheet {} ({}, {} item(s)): wrote {}",
        row.sheet_id,
        if row.open { "open" } else { "closed" },
        items.len(),
        path.display()
    ));
    Ok(exit::OK)
}

pub fn run(ctx: &Ctx, args: &ReviewArgs) -> anyhow::Result<u8> {
    let project = ctx.project()?;
    let mut store = ctx.existing_store(&project, "read history")?;
    match &args.command {
        ReviewCommand::Sample {
            run,
            since,
            suite,
            n,
            seed,
        } => sample(
            ctx,
            &project,
            &mut store,
            &SampleArgs {
                run: run.as_deref(),
                since: since.as_deref(),
                suite: suite.as_deref(),
                n: *n,
                seed: *seed,
            },
        ),
        ReviewCommand::Import { file } => import(ctx, &mut store, file),
        ReviewCommand::Serve { addr } => serve_sheets(ctx, store, addr),
        ReviewCommand::Stats { suite, format } => stats(ctx, &store, suite.as_deref(), *format),
        ReviewCommand::List { all, format } => list(ctx, &store, *all, *format),
        ReviewCommand::Show {
            sheet_id,
            format,
            html,
        } => {
            let sheet_id = resolve_sheet(&store, "show", sheet_id)?;
            if *html {
                rewrite_page(ctx, &project, &store, &sheet_id)
            } else {
                show(ctx, &store, &sheet_id, *format)
            }
        }
        ReviewCommand::Close { sheet_id } => {
            let sheet_id = resolve_sheet(&store, "close", sheet_id)?;
            if !store.close_sheet(&sheet_id)? {
                return Err(Failure::invalid(format!(
                    "close review sheet {sheet_id}: no such sheet (`evalwatch review list --all` shows them)"
                )));
            }
            ctx.printer
                .result(&format!("closed review sheet {sheet_id}"));
            Ok(exit::OK)
        }
    }
}

struct SampleArgs<'a> {
    run: Option<&'a str>,
    since: Option<&'a str>,
    suite: Option<&'a str>,
    n: Option<usize>,
    seed: Option<u64>,
}

fn reports_dir(project: &ProjectConfig) -> PathBuf {
    match &project.reports {
        Some(p) if p.is_absolute() => p.clone(),
        Some(p) => project.root.join(p),
        None => project.root.join("reports"),
    }
}

/// The suites on disk, by name; best effort (a suite that does not load only loses its
/// expected answers, context and `review:` defaults).
fn suites_on_disk(ctx: &Ctx, project: &ProjectConfig) -> HashMap<String, Suite> {
    let Ok(files) = super::suite_files(ctx, project, &[]) else {
        return HashMap::new();
    };
    let (suites, _diags) = crate::suite::load_suites(&files, project);
    suites.into_iter().map(|s| (s.name.clone(), s)).collect()
}

/// A sampled result, kept only while it is in a reservoir.
struct Candidate {
    result_id: i64,
    run_id: String,
    suite: String,
    record: ResultRecord,
}

fn item_of(c: Candidate, stratum: Stratum, suites: &HashMap<String, Suite>) -> SheetItem {
    let case = suites
        .get(&c.suite)
        .and_then(|s| s.cases.iter().find(|k| k.id == c.record.job.case_id));
    let (expected, expected_note, context) = match case {
        None => (
            None,
            Some("not shown: the case is not in the suite files read (the store keeps no expected answer)".to_owned()),
            Vec::new(),
        ),
        Some(k) if k.hash != c.record.case_hash => (
            None,
            Some("not shown: the case has been edited since this run".to_owned()),
            Vec::new(),
        ),
        Some(k) => (
            k.expected.clone(),
            k.expected
                .is_none()
                .then(|| "the case sets no expected answer".to_owned()),
            k.context.clone(),
        ),
    };
    let r = c.record;
    SheetItem {
        result_id: c.result_id.to_string(),
        case_id: r.job.case_id,
        provider: r.job.provider_id,
        run_id: c.run_id,
        stratum: stratum.as_str().to_owned(),
        suite: c.suite,
        sample: r.job.sample,
        prompt: r.prompt,
        expected,
        expected_note,
        context,
        output: r.output,
        auto: SheetItem::auto_verdict(r.status, r.score, &r.assertions),
    }
}

fn sample(
    ctx: &Ctx,
    project: &ProjectConfig,
    store: &mut Store,
    args: &SampleArgs<'_>,
) -> anyhow::Result<u8> {
    let now = chrono::Utc::now();
    let runs = if let Some(id) = args.run {
        let info = store.run(id)?.ok_or_else(|| {
            Failure::invalid(format!(
                "sample run `{id}`: no such run; `evalwatch runs` lists them"
            ))
        })?;
        if args.suite.is_some_and(|s| s != info.suite) {
            return Err(Failure::invalid(format!(
                "sample run {}: it is a run of suite {}, not of --suite {}",
                info.run_id,
                info.suite,
                args.suite.unwrap_or_default()
            )));
        }
        vec![info]
    } else {
        let text = args.since.unwrap_or(DEFAULT_SINCE);
        let window = Window::parse(text).ok_or_else(|| {
            Failure::invalid(format!(
                "read --since `{text}`: give a window such as 24h, 7d, 30d, 2w or all"
            ))
        })?;
        let since = window.start(now).map(|t| t.to_rfc3339());
        store
            .run_infos(args.suite, since.as_deref(), 0)?
            .into_iter()
            .filter(|r| r.status != RunStatus::Running)
            .collect()
    };
    let suites = suites_on_disk(ctx, project);
    let mut names: Vec<&str> = runs.iter().map(|r| r.suite.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    // The suite's `review:` block sets the defaults when the sheet is of one suite.
    let settings = match names.as_slice() {
        [one] => suites.get(*one).and_then(|s| s.review.clone()),
        _ => None,
    };
    let n = args
        .n
        .or_else(|| settings.as_ref().map(|s| s.sample))
        .unwrap_or(DEFAULT_N);
    let seed = args
        .seed
        .or_else(|| settings.as_ref().map(|s| s.seed))
        .unwrap_or(0);
    if n == 0 {
        return Err(Failure::invalid("sample: --n must be at least 1"));
    }
    let busy = store.results_in_open_sheets()?;
    let mut sampler: Sampler<Candidate> = Sampler::new(n, seed);
    let mut skipped_busy = 0u64;
    for info in &runs {
        let baseline: HashMap<(String, String, u32), CaseStatus> =
            match store.previous_complete_run(&info.suite, &info.started_at)? {
                Some(base) => store
                    .result_statuses(&base)?
                    .into_iter()
                    .map(|(c, p, s, st)| ((c, p, s), st))
                    .collect(),
                None => HashMap::new(),
            };
        let base_id = store.result_id(&info.run_id, 0)?;
        store.for_each_result(&info.run_id, |rec| {
            let result_id = base_id | i64::try_from(rec.job.seq).unwrap_or(0);
            if busy.contains(&result_id) {
                skipped_busy += 1;
                return Ok(());
            }
            let before = baseline
                .get(&(
                    rec.job.case_id.clone(),
                    rec.job.provider_id.clone(),
                    rec.job.sample,
                ))
                .copied();
            if let Some(stratum) = classify(rec.status, &rec.assertions, before) {
                sampler.offer(
                    stratum,
                    Candidate {
                        result_id,
                        run_id: info.run_id.clone(),
                        suite: info.suite.clone(),
                        record: rec,
                    },
                );
            }
            Ok(())
        })?;
    }
    let (chosen, counts) = sampler.finish();
    if chosen.is_empty() {
        ctx.printer.result(&format!(
            "nothing to sample: {} run(s) matched, {} result(s) are in open sheets already; widen --since or close a sheet",
            runs.len(),
            skipped_busy
        ));
        return Ok(exit::OK);
    }
    let items: Vec<SheetItem> = chosen
        .into_iter()
        .map(|(stratum, c)| item_of(c, stratum, &suites))
        .collect();
    let ids: Vec<i64> = items
        .iter()
        .filter_map(|i| i.result_id.parse().ok())
        .collect();
    let sheet_id = sheet::new_sheet_id(now);
    let secret = sheet::new_secret();
    let mac = sheet::mac(&secret, &sheet_id, &ids);
    let created_at = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let params = json!({
        "run": args.run, "since": args.since, "suite": args.suite, "n": n, "seed": seed,
        "runs": runs.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(),
        "strata": counts,
    });
    let mut rows = Vec::with_capacity(items.len());
    for (item, id) in items.iter().zip(&ids) {
        rows.push((*id, item.stratum.clone(), serde_json::to_string(item)?));
    }
    // The page first: a sheet recorded without its page would hold its results (no other
    // sheet may sample them) while nobody can grade it. A page without a record is removed.
    let page = sheet::render(&SheetData {
        sheet_id: &sheet_id,
        created_at: &created_at,
        mac: &mac,
        items: &items,
        submit: None,
    });
    let path = reports_dir(project)
        .join("review")
        .join(format!("{sheet_id}.html"));
    write_page(&path, &page)?;
    if let Err(e) = store.create_sheet(&NewSheet {
        sheet_id: sheet_id.clone(),
        created_at: created_at.clone(),
        secret,
        mac: mac.clone(),
        params: params.to_string(),
        items: rows,
    }) {
        let _ = std::fs::remove_file(&path);
        return Err(e.into());
    }
    let strata: Vec<String> = counts
        .iter()
        .filter(|c| c.available > 0)
        .map(|c| format!("{} {}/{}", c.stratum.as_str(), c.taken, c.available))
        .collect();
    ctx.printer.result(&format!(
        "review sheet {sheet_id}: {} item(s) from {} run(s) (seed {seed}; taken/available: {})",
        items.len(),
        runs.len(),
        strata.join(", ")
    ));
    ctx.printer.result(&format!("open {}", path.display()));
    Ok(exit::OK)
}

fn write_page(path: &Path, page: &str) -> Result<(), ReviewError> {
    let err = |source| ReviewError::Write {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    // Whole or not at all: a page cut short by a full disk would lose grades typed into it.
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(path.file_name().unwrap_or_default());
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    std::fs::write(&tmp, page)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            err(e)
        })
}

/// Why a grades file was not imported.
enum Rejected {
    /// Not a grades file, or one for no sheet of this store.
    Invalid(String),
    /// Ids that do not belong to the sheet, or a MAC that does not match.
    Tampered(String),
    Store(anyhow::Error),
}

/// Check a grades file against its sheet and store it: the one path of `review import` and
/// `review serve`.
fn apply_grades(
    store: &mut Store,
    text: &str,
    label: &str,
) -> Result<(GradesFile, ImportCount), Rejected> {
    let file = grades::parse(text, label).map_err(|e| Rejected::Invalid(e.to_string()))?;
    let sheet = store
        .sheet(&file.sheet_id)
        .map_err(|e| Rejected::Store(e.into()))?
        .ok_or_else(|| {
            Rejected::Invalid(format!(
                "import the grades in {label}: no review sheet {} in this store (`evalwatch review list --all` shows them); is --db the store the sheet was sampled from?",
                file.sheet_id
            ))
        })?;
    let items: HashSet<i64> = sheet.items.iter().map(|(id, _, _)| *id).collect();
    grades::check_against_sheet(&file, &sheet.mac, &items)
        .map_err(|e| Rejected::Tampered(e.to_string()))?;
    let imported_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let count = store
        .import_grades(
            &file.sheet_id,
            &file.reviewer,
            &file.exported_at,
            &imported_at,
            &file.grades,
        )
        .map_err(|e| Rejected::Store(e.into()))?;
    Ok((file, count))
}

fn summary(file: &GradesFile, c: &ImportCount) -> String {
    format!(
        "sheet {}: {} grade(s) by {}: {} new, {} unchanged, {} superseding an earlier grade{}",
        file.sheet_id,
        file.grades.len(),
        file.reviewer,
        c.added,
        c.unchanged,
        c.superseding,
        if c.closed {
            "; every item is graded, the sheet is closed"
        } else {
            ""
        }
    )
}

fn import(ctx: &Ctx, store: &mut Store, file: &Path) -> anyhow::Result<u8> {
    let path = if file.is_absolute() {
        file.to_path_buf()
    } else {
        ctx.cwd.join(file)
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Failure::invalid(format!("read the grades file {}: {e}", file.display())))?;
    match apply_grades(store, &text, &file.display().to_string()) {
        Ok((f, c)) => {
            ctx.printer.result(&format!("imported {}", summary(&f, &c)));
            Ok(exit::OK)
        }
        Err(Rejected::Invalid(m) | Rejected::Tampered(m)) => Err(Failure::invalid(m)),
        Err(Rejected::Store(e)) => Err(e),
    }
}

/// `review serve`'s view of the store.
struct StoreBackend {
    store: Mutex<Store>,
}

impl StoreBackend {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Store>, String> {
        self.store
            .lock()
            .map_err(|_| "the store is unavailable after an earlier failure".to_owned())
    }
}

impl Backend for StoreBackend {
    fn open_sheets(&self) -> Result<Vec<SheetEntry>, String> {
        let store = self.lock()?;
        Ok(store
            .sheets(true)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|s| SheetEntry {
                sheet_id: s.sheet_id,
                created_at: s.created_at,
                items: s.items,
                graded: s.graded,
            })
            .collect())
    }

    fn page(&self, sheet_id: &str, submit: Submit) -> Result<Option<String>, String> {
        let store = self.lock()?;
        let Some(row) = store.sheet(sheet_id).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        if !row.open {
            return Ok(None);
        }
        let items = stored_items(&row).map_err(|e| super::error_text(&e))?;
        Ok(Some(sheet::render(&SheetData {
            sheet_id: &row.sheet_id,
            created_at: &row.created_at,
            mac: &row.mac,
            items: &items,
            submit: Some(submit),
        })))
    }

    fn grades(&self, body: &str) -> Result<String, Refusal> {
        let mut store = self.lock().map_err(|message| Refusal {
            status: 500,
            message,
        })?;
        match apply_grades(&mut store, body, "the request") {
            Ok((f, c)) => Ok(format!("stored {}", summary(&f, &c))),
            Err(Rejected::Invalid(message)) => Err(Refusal {
                status: 400,
                message,
            }),
            Err(Rejected::Tampered(message)) => Err(Refusal {
                status: 422,
                message,
            }),
            Err(Rejected::Store(e)) => Err(Refusal {
                status: 500,
                message: format!("store the grades: {}", super::error_text(&e)),
            }),
        }
    }
}

fn serve_sheets(ctx: &Ctx, store: Store, addr: &str) -> anyhow::Result<u8> {
    let sock: std::net::SocketAddr = addr.parse().map_err(|e| {
        Failure::invalid(format!(
            "read --addr `{addr}`: {e}; give an address such as 127.0.0.1:8737"
        ))
    })?;
    if !sock.ip().is_loopback() {
        ctx.printer.warn(&format!(
            "serving on {sock}, which is not a loopback address: anyone who can reach it and learns the token can read the sheets"
        ));
    }
    let open = store.sheets(true)?.len();
    let backend: Arc<dyn Backend> = Arc::new(StoreBackend {
        store: Mutex::new(store),
    });
    let token = serve::new_token();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(sock)
            .await
            .map_err(|e| Failure {
                code: exit::INCOMPLETE,
                message: format!("serve review sheets: bind {sock}: {e}"),
            })?;
        let local = listener.local_addr()?;
        ctx.printer.result(&format!(
            "serving {open} open review sheet(s) at http://{local}/?token={token}"
        ));
        ctx.printer
            .info("stop with Ctrl-C; grades sent from a sheet are stored at once");
        serve::serve(listener, token, backend, shutdown_signal()).await?;
        anyhow::Ok(())
    })?;
    Ok(exit::OK)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn opt(v: Option<f64>, pct: bool) -> String {
    match v {
        None => "n/a".into(),
        Some(x) if pct => terminal::pct(Some(x)),
        Some(x) => format!("{x:.2}"),
    }
}

fn stats(ctx: &Ctx, store: &Store, suite: Option<&str>, format: ReadFormat) -> anyhow::Result<u8> {
    let mut builder = AgreementBuilder::default();
    store.for_each_graded(suite, None, |g| {
        builder.add(&g);
        Ok(())
    })?;
    let scores = store.human_scores(suite, None)?;
    let grades = builder.grades();
    let reviewers = builder.reviewers();
    let tables = builder.finish();
    if format == ReadFormat::Json {
        let human: Vec<serde_json::Value> = scores
            .iter()
            .map(|h| {
                json!({"run_id": h.run_id, "started_at": h.started_at, "provider": h.provider,
                       "human_score": h.mean_quality, "n": h.n})
            })
            .collect();
        let agreement: Vec<serde_json::Value> = tables
            .iter()
            .map(|a| {
                let c = a.confusion.counts;
                json!({
                    "suite": a.suite, "scope": a.scope, "n": a.n, "undecided": a.undecided,
                    "confusion": {"human_pass_auto_pass": c[0][0], "human_pass_auto_fail": c[0][1],
                                  "human_fail_auto_pass": c[1][0], "human_fail_auto_fail": c[1][1]},
                    "agreement": a.agreement, "kappa": a.kappa,
                    "false_pass_rate": a.false_pass_rate, "false_fail_rate": a.false_fail_rate,
                })
            })
            .collect();
        ctx.printer.result(&serde_json::to_string_pretty(&json!({
            "grades": grades, "reviewers": reviewers, "agreement": agreement, "human_score": human,
        }))?);
        return Ok(exit::OK);
    }
    if grades == 0 {
        ctx.printer
            .result("no grades yet: `evalwatch review sample`, grade the sheet, then `evalwatch review import`");
        return Ok(exit::OK);
    }
    ctx.printer.result(&format!(
        "{grades} current grade(s) by {}",
        reviewers.join(", ")
    ));
    let mut table = vec![
        [
            "suite",
            "scope",
            "n",
            "h+a+",
            "h+a-",
            "h-a+",
            "h-a-",
            "agree",
            "kappa",
            "false_pass",
            "false_fail",
            "undecided",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for a in &tables {
        let c = a.confusion.counts;
        table.push(vec![
            a.suite.clone(),
            a.scope.clone(),
            a.n.to_string(),
            c[0][0].to_string(),
            c[0][1].to_string(),
            c[1][0].to_string(),
            c[1][1].to_string(),
            opt(a.agreement, true),
            opt(a.kappa, false),
            opt(a.false_pass_rate, true),
            opt(a.false_fail_rate, true),
            a.undecided.to_string(),
        ]);
    }
    ctx.printer
        .result(terminal::table_with(&table, 2).trim_end());
    if !scores.is_empty() {
        ctx.printer.result("human score (mean quality 1-5) by run:");
        let mut t = vec![
            ["run_id", "started_at", "provider", "human_score", "n"]
                .map(String::from)
                .to_vec(),
        ];
        for h in &scores {
            t.push(vec![
                h.run_id.clone(),
                h.started_at
                    .chars()
                    .take(19)
                    .collect::<String>()
                    .replace('T', " "),
                h.provider.clone(),
                format!("{:.2}", h.mean_quality),
                h.n.to_string(),
            ]);
        }
        ctx.printer.result(terminal::table_with(&t, 3).trim_end());
    }
    Ok(exit::OK)
}

fn list(ctx: &Ctx, store: &Store, all: bool, format: ReadFormat) -> anyhow::Result<u8> {
    let sheets = store.sheets(!all)?;
    if format == ReadFormat::Json {
        let v: Vec<serde_json::Value> = sheets
            .iter()
            .map(|s| json!({"sheet_id": s.sheet_id, "created_at": s.created_at,
                            "status": if s.open {"open"} else {"closed"}, "items": s.items, "graded": s.graded}))
            .collect();
        ctx.printer.result(&serde_json::to_string_pretty(&v)?);
        return Ok(exit::OK);
    }
    if sheets.is_empty() {
        ctx.printer.result(if all {
            "no review sheets yet"
        } else {
            "no open review sheets (`--all` shows closed ones)"
        });
        return Ok(exit::OK);
    }
    let mut t = vec![
        ["sheet_id", "created_at", "status", "graded"]
            .map(String::from)
            .to_vec(),
    ];
    for s in &sheets {
        t.push(vec![
            s.sheet_id.clone(),
            s.created_at.clone(),
            if s.open { "open" } else { "closed" }.to_owned(),
            format!("{}/{}", s.graded, s.items),
        ]);
    }
    ctx.printer.result(terminal::table_with(&t, 3).trim_end());
    Ok(exit::OK)
}

fn show(ctx: &Ctx, store: &Store, sheet_id: &str, format: ReadFormat) -> anyhow::Result<u8> {
    let Some(sheet) = store.sheet(sheet_id)? else {
        return Err(Failure::invalid(format!(
            "show review sheet {sheet_id}: no such sheet (`evalwatch review list --all` shows them)"
        )));
    };
    let mut graded = Vec::new();
    store.for_each_graded(None, Some(sheet_id), |g| {
        graded.push(g);
        Ok(())
    })?;
    if format == ReadFormat::Json {
        let grades: Vec<serde_json::Value> = graded
            .iter()
            .map(|g| {
                json!({
                    "result_id": g.result_id.to_string(), "case_id": g.case_id, "provider": g.provider,
                    "run_id": g.run_id, "reviewer": g.reviewer, "graded_at": g.graded_at,
                    "verdict": if g.grade.pass {"pass"} else {"fail"}, "quality": g.grade.quality,
                    "hallucination": g.grade.hallucination, "note": g.grade.note,
                    "auto_status": g.auto_status, "superseded": g.superseded,
                })
            })
            .collect();
        ctx.printer.result(&serde_json::to_string_pretty(&json!({
            "sheet_id": sheet.sheet_id, "created_at": sheet.created_at,
            "status": if sheet.open {"open"} else {"closed"}, "items": sheet.items.len(),
            "grades": grades,
        }))?);
        return Ok(exit::OK);
    }
    let done: HashSet<i64> = graded.iter().map(|g| g.result_id).collect();
    ctx.printer.result(&format!(
        "review sheet {} ({}): {}/{} item(s) graded",
        sheet.sheet_id,
        if sheet.open { "open" } else { "closed" },
        sheet
            .items
            .iter()
            .filter(|(id, _, _)| done.contains(id))
            .count(),
        sheet.items.len()
    ));
    for g in &graded {
        let mut line = format!(
            "  {} [{}] run {}: {} (auto {})",
            g.case_id,
            g.provider,
            g.run_id,
            if g.grade.pass { "pass" } else { "fail" },
            g.auto_status.as_str()
        );
        if let Some(q) = g.grade.quality {
            let _ = write!(line, ", quality {q}");
        }
        if let Some(h) = g.grade.hallucination {
            line.push_str(if h {
                ", hallucination"
            } else {
                ", no hallucination"
            });
        }
        let _ = write!(line, " by {}", g.reviewer);
        if g.superseded > 0 {
            let _ = write!(line, " ({} earlier grade(s) kept)", g.superseded);
        }
        if !g.grade.note.is_empty() {
            let _ = write!(line, ": {}", g.grade.note.replace('\n', " "));
        }
        ctx.printer.result(&line);
    }
    Ok(exit::OK)
}
