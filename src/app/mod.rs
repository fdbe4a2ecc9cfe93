//! The composer: turns CLI arguments into settings and wires the stages together. The only
//! module that knows every stage.

pub mod alerts;
mod collect;
mod feedback;
mod history;
mod init;
mod interrupt;
pub mod lease;
mod mark;
pub mod report;
pub mod review;
pub mod run;
pub mod schedule;
mod secrets;
mod store;
pub mod traffic;
mod validate;

use std::path::{Path, PathBuf};

use crate::cli::{Cli, Command};
use crate::model::ProjectConfig;
use crate::output::{Printer, Verbosity};
use crate::store::Store;
use crate::suite;

/// Exit codes of the spec.
pub mod exit {
    pub const OK: u8 = 0;
    pub const GATE: u8 = 1;
    pub const INVALID: u8 = 2;
    pub const INCOMPLETE: u8 = 3;
    pub const INTERRUPTED: u8 = 130;
}

/// An error that carries its exit code. Anything else that reaches `main` exits 3.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn invalid(message: impl Into<String>) -> anyhow::Error {
        Self {
            code: exit::INVALID,
            message: message.into(),
        }
        .into()
    }
}

/// Map an error to its exit code.
#[must_use]
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if let Some(f) = err.downcast_ref::<Failure>() {
        return f.code;
    }
    // An id prefix that matches several runs or sheets is a usage error, whichever command
    // took it; so is a store URL that cannot work as written (no user, a TLS setting it
    // cannot have), whichever command opened the store.
    // (A `StoreError::Pg` has its `PgError` as its source: the chain reaches it.)
    let invalid = err.chain().any(|c| {
        use crate::store::{StoreError, pg::PgError};
        matches!(
            c.downcast_ref::<StoreError>(),
            Some(StoreError::AmbiguousRun { .. } | StoreError::AmbiguousSheet { .. })
        ) || matches!(
            c.downcast_ref::<PgError>(),
            Some(PgError::Url { .. } | PgError::Pgpass { .. })
        )
    });
    if invalid {
        exit::INVALID
    } else {
        exit::INCOMPLETE
    }
}

/// An error and its causes joined by ": ", each said once: a cause whose text the message
/// already carries (a wrapper that prints its source, or `SQLite`'s "Error code 26: ..." under
/// its own message) is left out. What `main` prints, and what warnings about an error say.
#[must_use]
pub fn error_text(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        let bare = text
            .strip_prefix("Error code ")
            .and_then(|rest| rest.split_once(": "))
            .filter(|(n, _)| n.chars().all(|c| c.is_ascii_digit()))
            .map_or(text.as_str(), |(_, msg)| msg);
        if bare.is_empty() || out.contains(bare) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// Diagnostics with paths shown relative to the working directory where they lie below it:
/// the location's, and those a message names (where a duplicate was first defined).
#[must_use]
pub fn render_diagnostics(ctx: &Ctx, diags: &suite::Diagnostics) -> String {
    // The working directory with its separator; not at `/`, where every path would lose its
    // first slash.
    let below = (ctx.cwd.parent().is_some())
        .then(|| format!("{}{}", ctx.cwd.display(), std::path::MAIN_SEPARATOR));
    diags
        .0
        .iter()
        .map(|d| {
            let mut d = d.clone();
            if let Ok(rel) = d.location.file.strip_prefix(&ctx.cwd) {
                d.location.file = rel.into();
            }
            if let Some(below) = &below {
                d.message = d.message.replace(below.as_str(), "");
            }
            d.to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The scorer for a suite, or every assertion it cannot build, located in the suite's files.
pub fn build_scorer(
    ctx: &Ctx,
    suite: &crate::model::Suite,
) -> anyhow::Result<crate::score::Scorer> {
    crate::score::Scorer::new(suite).map_err(|e| {
        let crate::score::ScoreError::Assertion {
            case_id,
            index,
            message,
        } = &e;
        let location = suite
            .cases
            .iter()
            .find(|c| &c.id == case_id)
            .and_then(|c| {
                c.asserts
                    .get(*index)
                    .map(|a| a.location.clone())
                    .or_else(|| Some(c.location.clone()))
            })
            .unwrap_or_else(|| crate::model::Location {
                file: suite.source.as_path().into(),
                line: 0,
                col: 0,
            });
        let diags = suite::Diagnostics(vec![suite::Diagnostic {
            location,
            message: format!("assertion of case `{case_id}`: {message}"),
        }]);
        Failure::invalid(render_diagnostics(ctx, &diags))
    })
}

/// What every command gets.
pub struct Ctx {
    /// Set by `run` while its stdout carries machine output (json, junit): nothing else may
    /// print there (a `stdout` alert sink writes to stderr instead).
    pub machine_stdout: std::cell::Cell<bool>,
    pub printer: Printer,
    pub db: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub cwd: PathBuf,
}

impl Ctx {
    /// The project config, or exit 2 with every diagnostic.
    pub fn project(&self) -> anyhow::Result<ProjectConfig> {
        suite::load_project(self.config.as_deref(), &self.cwd)
            .map_err(|d| Failure::invalid(render_diagnostics(self, &d)))
    }

    /// The store path: --db / `EVALWATCH_DB`, else `store:` of evalwatch.yaml, else evalwatch.db.
    /// A `postgres://` URL is kept as it is.
    pub fn db_path(&self, project: &ProjectConfig) -> PathBuf {
        if let Some(p) = &self.db {
            return p.clone();
        }
        match &project.store {
            Some(p) if p.is_absolute() || crate::store::is_url(p) => p.clone(),
            Some(p) => project.root.join(p),
            None => project.root.join("evalwatch.db"),
        }
    }

    /// A path as shown to people: relative to the working directory where it lies below it.
    /// A PostgreSQL store's URL is shown without its password.
    pub fn shown(&self, path: &Path) -> String {
        if crate::store::is_url(path) {
            return crate::store::shown_url(path);
        }
        path.strip_prefix(&self.cwd)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// The store of the project's history, which must exist already, or exit 2 saying where
    /// it was looked for; `verb` says what needed it ("read history").
    pub fn existing_store(&self, project: &ProjectConfig, verb: &str) -> anyhow::Result<Store> {
        self.existing_store_after(project, verb, "evalwatch run")
    }

    /// [`Self::existing_store`] for a command whose store is made by `first` (`evalwatch
    /// ingest` for traffic): a read never creates a store, so that a mistyped `--db` is said
    /// rather than read as an empty store.
    pub fn existing_store_after(
        &self,
        project: &ProjectConfig,
        verb: &str,
        first: &str,
    ) -> anyhow::Result<Store> {
        let db = self.db_path(project);
        if !crate::store::exists(&db) {
            return Err(Failure::invalid(format!(
                "{verb}: no store at {}; run `{first}` first or point --db at it",
                self.shown(&db)
            )));
        }
        self.open_store(&db)
    }

    /// Open the store and mark runs of dead processes incomplete.
    pub fn open_store(&self, path: &Path) -> anyhow::Result<Store> {
        let mut store = Store::open(path)?;
        reap_dead_runs(&mut store, self.printer)?;
        Ok(store)
    }

    /// [`Ctx::open_store`] with a second connection made meanwhile on PostgreSQL
    /// ([`Store::open_with_spare`]).
    pub fn open_store_with_spare(&self, path: &Path) -> anyhow::Result<Store> {
        let mut store = Store::open_with_spare(path)?;
        reap_dead_runs(&mut store, self.printer)?;
        Ok(store)
    }
}

/// This host's id, to tell whose process a `running` run or a lease belongs to:
/// `EVALWATCH_HOST_ID` when set (several hosts sharing a PostgreSQL store must have distinct
/// ids), else the machine's name.
#[must_use]
pub fn host_name() -> String {
    if let Some(id) = std::env::var("EVALWATCH_HOST_ID")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
    {
        return id;
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true // cannot tell: leave the run alone
    }
}

/// A time in whole seconds from the environment variable `name` (`60` or `60s`), else
/// `default`; at least `min` seconds, else (or when it is not a number) an error, exit 2.
pub(crate) fn env_seconds(
    name: &str,
    default: std::time::Duration,
    min: u64,
) -> anyhow::Result<std::time::Duration> {
    let Ok(text) = std::env::var(name) else {
        return Ok(default);
    };
    text.trim()
        .trim_end_matches('s')
        .parse::<u64>()
        .ok()
        .filter(|&s| s >= min)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| {
            let above = if min > 0 {
                format!(" above {}", min - 1)
            } else {
                String::new()
            };
            Failure::invalid(format!(
                "read {name} `{text}`: expected whole seconds{above}, such as 60 or 60s"
            ))
        })
}

/// A run left `running` by a process of this host that no longer exists crashed or was
/// killed: mark it incomplete so history says so.
/// On PostgreSQL (many hosts, and containers whose names may repeat) a pid is not trusted:
/// a run is recovered when its suite's lease expired (`lease::reap_leaseless_runs`, both
/// stores).
pub(crate) fn reap_dead_runs(store: &mut Store, printer: Printer) -> anyhow::Result<()> {
    lease::reap_leaseless_runs(store, printer)?;
    if store.is_pg() {
        return Ok(());
    }
    let host = host_name();
    for (run_id, pid, run_host) in store.running_runs()? {
        if run_host == host && pid != std::process::id() && !process_alive(pid) {
            store.set_run_status(&run_id, crate::model::RunStatus::Incomplete)?;
            printer.detail(&format!("run {run_id} (pid {pid}) was left running by a process that is gone: marked incomplete"));
        }
    }
    Ok(())
}

/// Run the command line; returns the exit code.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    let verbosity = if cli.global.quiet {
        Verbosity::Quiet
    } else if cli.global.verbose {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    let ctx = Ctx {
        machine_stdout: std::cell::Cell::new(false),
        printer: Printer::new(verbosity, cli.global.no_color),
        db: cli.global.db,
        config: cli.global.config,
        cwd: std::env::current_dir()?,
    };
    match cli.command {
        Command::Init(a) => init::run(&ctx, &a),
        Command::Validate(a) => {
            interrupt::watch()?;
            validate::run(&ctx, &a)
        }
        Command::Run(a) => {
            interrupt::watch()?;
            run::run(&ctx, &a)
        }
        Command::Runs(a) => history::runs(&ctx, &a),
        Command::Show(a) => history::show(&ctx, &a),
        Command::Report(a) => report::report(&ctx, &a),
        Command::Compare(a) => report::compare(&ctx, &a),
        Command::Export(a) => report::export(&ctx, &a),
        Command::Alerts(a) => alerts::run(&ctx, &a),
        Command::Baseline(a) => alerts::baseline(&ctx, &a),
        Command::Schedule(a) => schedule::run(&ctx, &a),
        Command::Review(a) => review::run(&ctx, &a),
        Command::Ingest(a) => {
            // A one-shot ingest ends at once; `--follow` stops reading and says what it read
            // (`traffic::ingest`).
            interrupt::watch_as(
                "interrupted: the records committed so far are stored (the next ingest resumes after them); the rest was not read",
            )?;
            traffic::ingest::run(&ctx, &a)
        }
        Command::Collect(a) => collect::run(&ctx, &a),
        Command::Traffic(a) => traffic::show::run(&ctx, &a),
        Command::Prune(a) => traffic::prune::run(&ctx, &a),
        Command::Mark(a) => mark::run(&ctx, &a),
        Command::Feedback(a) => feedback::run(&ctx, &a),
        Command::Store(a) => store::run(&ctx, &a),
    }
}

/// The suite files named on the command line, or the project's `suites/` folder; none is an
/// error (exit 2).
/// [`suite_files`], except that a project that only watches traffic (`traffic:` sources, no
/// `suites/` folder, no paths given) has none.
pub fn suite_files_if_any(
    ctx: &Ctx,
    project: &ProjectConfig,
    paths: &[PathBuf],
) -> anyhow::Result<Vec<PathBuf>> {
    if paths.is_empty() && !project.traffic.is_empty() && !project.root.join("suites").exists() {
        return Ok(Vec::new());
    }
    suite_files(ctx, project, paths)
}

pub fn suite_files(
    ctx: &Ctx,
    project: &ProjectConfig,
    paths: &[PathBuf],
) -> anyhow::Result<Vec<PathBuf>> {
    let paths = if paths.is_empty() {
        vec![project.root.join("suites")]
    } else {
        paths
            .iter()
            .map(|p| {
                if p.is_absolute() {
                    p.clone()
                } else {
                    ctx.cwd.join(p)
                }
            })
            .collect()
    };
    let files = suite::discover_suite_files(&paths)
        .map_err(|d| Failure::invalid(render_diagnostics(ctx, &d)))?;
    if files.is_empty() {
        return Err(Failure::invalid(
            "find suites: no *.yaml files in the given paths; create one with `evalwatch init` or name a suite file",
        ));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::error_text;

    #[test]
    fn each_cause_is_said_once() {
        // A wrapper that prints its source, over that source: said once.
        let io = std::io::Error::from_raw_os_error(13);
        let shown = io.to_string();
        let err = anyhow::Error::new(io).context(format!("write /x/y: {shown}"));
        assert_eq!(error_text(&err), format!("write /x/y: {shown}"));
        // A cause that adds something is kept, in order.
        let err = anyhow::anyhow!("disk full").context("write the export");
        assert_eq!(error_text(&err), "write the export: disk full");
        // SQLite's "Error code N: ..." under the same message is left out.
        let err = anyhow::anyhow!("Error code 26: file is not a database")
            .context("open the store at a.db: file is not a database");
        assert_eq!(
            error_text(&err),
            "open the store at a.db: file is not a database"
        );
    }
}
