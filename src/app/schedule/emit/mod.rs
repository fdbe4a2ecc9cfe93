//! `schedule emit`: ready-to-use files (systemd, cron, Kubernetes, GitHub Actions) that call
//! `evalwatch schedule --once` on a tick. The Kubernetes and GitHub Actions files follow the
//! store: an SQLite file is carried on a volume or in the Actions cache, a PostgreSQL store is
//! reached by its URL from a secret. The GitHub Actions workflow installs the released binary
//! of this version (`release`).

mod github;
mod host;
mod kubernetes;
mod release;

use std::path::{Path, PathBuf};

use super::judge::judge;
use crate::app::{Ctx, Failure, exit};
use crate::cli::schedule::EmitTarget;
use crate::schedule as sched;
use crate::store::pg::{PgTarget, is_postgres_url, redact_url};

/// The tick as a cron expression and as a systemd `OnCalendar=`.
fn tick_specs(every: &str) -> anyhow::Result<(String, String)> {
    let d = sched::parse_duration(every).map_err(|e| Failure::invalid(e.to_string()))?;
    let mins = d.as_secs() / 60;
    let bad = || {
        Failure::invalid(format!(
            "read --every `{every}`: use whole minutes that divide an hour (1m, 5m, 15m, 30m), hours that divide a day (1h, 2h, 6h, 12h) or 1d"
        ))
    };
    if d.as_secs() % 60 != 0 || mins == 0 {
        return Err(bad());
    }
    if mins < 60 && 60 % mins == 0 {
        let cron = if mins == 1 {
            "* * * * *".to_owned()
        } else {
            format!("*/{mins} * * * *")
        };
        return Ok((cron, format!("*-*-* *:00/{mins}:00")));
    }
    if mins % 60 == 0 && mins < 1440 && 1440 % mins == 0 {
        let h = mins / 60;
        let cron = if h == 1 {
            "0 * * * *".to_owned()
        } else {
            format!("0 */{h} * * *")
        };
        return Ok((cron, format!("*-*-* 00/{h}:00:00")));
    }
    if mins == 1440 {
        return Ok(("0 0 * * *".into(), "*-*-* 00:00:00".into()));
    }
    Err(bad())
}

fn quote(s: &str) -> String {
    shlex::try_quote(s).map_or_else(|_| format!("'{s}'"), std::borrow::Cow::into_owned)
}

/// Where the history lives, as the emitted files must reach it.
enum History {
    /// An SQLite file: its path, and relative to the project root where it lies below it.
    File { db: PathBuf, rel: String },
    /// A PostgreSQL store: its URL as given (it carries no password).
    Postgres { url: String },
}

/// Everything the emitted files say: the tick, the binary, the suites, their secrets, the
/// store.
struct Emit {
    /// The tick as given (`5m`).
    every: String,
    /// The tick as a cron expression.
    cron: String,
    /// The tick as a systemd `OnCalendar=`.
    calendar: String,
    /// This binary's path.
    exe: String,
    /// The suite paths to pass on.
    path_args: Vec<String>,
    /// The environment variables the suites' providers read their keys from.
    secrets: Vec<String>,
    history: History,
    /// The repository whose releases hold this version's binary, when known.
    releases: Option<String>,
    /// The project root.
    root: String,
}

pub(super) fn emit(
    ctx: &Ctx,
    target: EmitTarget,
    paths: &[PathBuf],
    every: &str,
    release_url: Option<&str>,
    out: Option<&Path>,
) -> anyhow::Result<u8> {
    if release_url.is_some() && matches!(target, EmitTarget::Systemd | EmitTarget::Cron) {
        return Err(Failure::invalid(
            "read --release-url: only the kubernetes and github-actions files install a released binary; systemd and cron run this one",
        ));
    }
    let e = Emit::new(ctx, paths, every, release_url)?;
    let files = match target {
        EmitTarget::Systemd => e.systemd(),
        EmitTarget::Cron => e.cron(),
        EmitTarget::Kubernetes => e.kubernetes(),
        EmitTarget::GithubActions => e.github_actions()?,
    };
    write_files(ctx, &files, out)
}

impl Emit {
    fn new(
        ctx: &Ctx,
        paths: &[PathBuf],
        every: &str,
        release_url: Option<&str>,
    ) -> anyhow::Result<Self> {
        let (cron, calendar) = tick_specs(every)?;
        let releases = release::repository(release_url)?;
        let project = ctx.project()?;
        let root = project.root.clone();
        let exe = std::env::current_exe()
            .map_or_else(|_| "evalwatch".to_owned(), |p| p.display().to_string());
        // The variables the runs need (keys, sinks' URLs and signing secrets, `${VAR}`s), for
        // the env sections.
        let suites = judge(ctx, paths)
            .map(|(suites, _)| suites)
            .unwrap_or_default();
        let secrets = crate::app::secrets::required_vars(&project, &suites);
        let history = History::of(ctx, &project)?;
        Ok(Self {
            every: every.to_owned(),
            cron,
            calendar,
            exe,
            path_args: paths.iter().map(|p| p.display().to_string()).collect(),
            secrets,
            history,
            releases,
            root: root.display().to_string(),
        })
    }

    /// The GitHub repository whose releases hold this version, or exit 2 saying how to name
    /// it; `what` is the file that needs it.
    fn releases(&self, what: &str) -> anyhow::Result<&str> {
        self.releases.as_deref().ok_or_else(|| {
            Failure::invalid(format!(
                "schedule emit {what}: the workflow installs the released evalwatch {} from the repository's releases, and this build names no repository (Cargo.toml `repository`): give it with --release-url https://github.com/OWNER/evalwatch (docs/release.md)",
                release::VERSION
            ))
        })
    }

    /// `BIN schedule --once PATHS...`, quoted for a shell.
    fn once_cmd(&self, bin: &str) -> String {
        let mut words = vec![quote(bin), "schedule".into(), "--once".into()];
        words.extend(self.path_args.iter().map(|p| quote(p)));
        words.join(" ")
    }
}

impl History {
    /// The store as this command sees it: --db / `EVALWATCH_DB`, else `store:` of
    /// evalwatch.yaml, else evalwatch.db. A PostgreSQL URL must carry no password, as the
    /// emitted files would then hold it.
    fn of(ctx: &Ctx, project: &crate::model::ProjectConfig) -> anyhow::Result<Self> {
        let given = ctx.db.as_ref().or(project.store.as_ref());
        if let Some(url) = given
            .and_then(|p| p.to_str())
            .filter(|s| is_postgres_url(s))
        {
            let from = match (&ctx.db, &project.source) {
                (Some(_), _) => "--db / EVALWATCH_DB".to_owned(),
                (None, Some(file)) => format!("`store:` of {}", ctx.shown(file)),
                (None, None) => "`store:`".to_owned(),
            };
            let shown = redact_url(url);
            if shown != url {
                return Err(Failure::invalid(format!(
                    "schedule emit: the store {shown} ({from}) carries its password, which the emitted file would then hold: take it out of the URL and give it in PGPASSWORD or a ~/.pgpass line instead (docs/store.md); the emitted files read it from a secret"
                )));
            }
            PgTarget::parse(url)
                .map_err(|e| Failure::invalid(format!("schedule emit: {e} ({from})")))?;
            return Ok(Self::Postgres {
                url: url.to_owned(),
            });
        }
        let db = ctx.db_path(project);
        let rel = db
            .strip_prefix(&project.root)
            .map_or_else(|_| db.display().to_string(), |p| p.display().to_string());
        Ok(Self::File { db, rel })
    }
}

/// Write the files into `out`, or print them (a header before each when there are several).
fn write_files(ctx: &Ctx, files: &[(&str, String)], out: Option<&Path>) -> anyhow::Result<u8> {
    match out {
        Some(dir) => {
            let dir = if dir.is_absolute() {
                dir.to_path_buf()
            } else {
                ctx.cwd.join(dir)
            };
            std::fs::create_dir_all(&dir)
                .map_err(|e| Failure::invalid(format!("create {}: {e}", dir.display())))?;
            for (name, text) in files {
                let path = dir.join(name);
                std::fs::write(&path, text)
                    .map_err(|e| Failure::invalid(format!("write {}: {e}", path.display())))?;
                ctx.printer.result(&format!("wrote {}", ctx.shown(&path)));
            }
        }
        None if files.len() == 1 => {
            for (_, text) in files {
                crate::output::out_raw(text);
            }
        }
        None => {
            for (i, (name, text)) in files.iter().enumerate() {
                if i > 0 {
                    crate::output::out("");
                }
                crate::output::out(&format!("# ==> {name} <=="));
                crate::output::out_raw(text);
            }
        }
    }
    Ok(exit::OK)
}
