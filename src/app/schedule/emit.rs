//! `schedule emit`: ready-to-use files (systemd, cron, Kubernetes, GitHub Actions) that call
//! `evalwatch schedule --once` on a tick.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::judge::judge;
use crate::app::{Ctx, Failure, exit};
use crate::cli::schedule::EmitTarget;
use crate::schedule as sched;

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
    db: PathBuf,
    /// The store, relative to the project root where it lies below it.
    db_rel: String,
    /// The project root.
    root: String,
}

pub(super) fn emit(
    ctx: &Ctx,
    target: EmitTarget,
    paths: &[PathBuf],
    every: &str,
    out: Option<&Path>,
) -> anyhow::Result<u8> {
    let e = Emit::new(ctx, paths, every)?;
    let files = match target {
        EmitTarget::Systemd => e.systemd(),
        EmitTarget::Cron => e.cron(),
        EmitTarget::Kubernetes => e.kubernetes(),
        EmitTarget::GithubActions => e.github_actions(),
    };
    write_files(ctx, &files, out)
}

impl Emit {
    fn new(ctx: &Ctx, paths: &[PathBuf], every: &str) -> anyhow::Result<Self> {
        let (cron, calendar) = tick_specs(every)?;
        let project = ctx.project()?;
        let root = project.root.clone();
        let exe = std::env::current_exe()
            .map_or_else(|_| "evalwatch".to_owned(), |p| p.display().to_string());
        // Secrets the suites need, for the env sections.
        let mut secrets: Vec<String> = project
            .providers
            .iter()
            .filter_map(|p| p.api_key_env.clone())
            .collect();
        if let Ok((suites, _)) = judge(ctx, paths) {
            for s in suites {
                secrets.extend(s.providers.iter().filter_map(|p| p.api_key_env.clone()));
            }
        }
        secrets.sort();
        secrets.dedup();
        let db = ctx.db_path(&project);
        let db_rel = db
            .strip_prefix(&root)
            .map_or_else(|_| db.display().to_string(), |p| p.display().to_string());
        Ok(Self {
            every: every.to_owned(),
            cron,
            calendar,
            exe,
            path_args: paths.iter().map(|p| p.display().to_string()).collect(),
            secrets,
            db,
            db_rel,
            root: root.display().to_string(),
        })
    }

    /// `BIN schedule --once PATHS...`, quoted for a shell.
    fn once_cmd(&self, bin: &str) -> String {
        let mut words = vec![quote(bin), "schedule".into(), "--once".into()];
        words.extend(self.path_args.iter().map(|p| quote(p)));
        words.join(" ")
    }

    /// A oneshot service and its timer, and the daemon as a service (enable one of the two).
    fn systemd(&self) -> Vec<(&'static str, String)> {
        let Self {
            every,
            calendar,
            exe,
            path_args,
            secrets,
            root: root_s,
            ..
        } = self;
        let env_lines = if secrets.is_empty() {
            "# EnvironmentFile=/etc/evalwatch.env\n".to_owned()
        } else {
            format!(
                "# Secrets ({}) as KEY=value lines, readable by root only:\nEnvironmentFile=/etc/evalwatch.env\n",
                secrets.join(", ")
            )
        };
        vec![
            (
                "evalwatch-schedule.service",
                format!(
                    "[Unit]\nDescription=evalwatch: run the eval suites that are due\nWants=network-online.target\nAfter=network-online.target\n\n[Service]\nType=oneshot\nWorkingDirectory={root_s}\nExecStart={}\n{env_lines}# SIGTERM keeps a run's results and marks it incomplete\nTimeoutStopSec=60\n",
                    self.once_cmd(exe)
                ),
            ),
            (
                "evalwatch-schedule.timer",
                format!(
                    "[Unit]\nDescription=evalwatch: look for due suites ({every})\n\n[Timer]\nOnCalendar={calendar}\n# Run once at boot when a tick was missed while the machine was off\nPersistent=true\nUnit=evalwatch-schedule.service\n\n[Install]\nWantedBy=timers.target\n"
                ),
            ),
            (
                "evalwatch-daemon.service",
                format!(
                    "# Alternative to the timer: evalwatch's own long-running scheduler.\n# Enable this OR the timer, not both (both would be safe, a suite never overlaps itself).\n[Unit]\nDescription=evalwatch scheduler daemon\nWants=network-online.target\nAfter=network-online.target\n\n[Service]\nType=simple\nWorkingDirectory={root_s}\nExecStart={} schedule{}\n{env_lines}Restart=on-failure\nRestartSec=30\nKillSignal=SIGTERM\nTimeoutStopSec=60\n\n[Install]\nWantedBy=multi-user.target\n",
                    quote(exe),
                    path_args.iter().fold(String::new(), |mut acc, p| {
                        let _ = write!(acc, " {}", quote(p));
                        acc
                    })
                ),
            ),
        ]
    }

    /// A crontab line.
    fn cron(&self) -> Vec<(&'static str, String)> {
        let Self {
            every,
            cron,
            exe,
            secrets,
            root: root_s,
            ..
        } = self;
        let envs = if secrets.is_empty() {
            String::new()
        } else {
            format!(
                "# The suites need {}: set them above this line (KEY=value) or source a file in the command.\n",
                secrets.join(", ")
            )
        };
        vec![(
            "evalwatch.crontab",
            format!(
                "# evalwatch: every {every}, run the suites that are due (each suite's own cron and timezone decide).\n# Install: (crontab -l 2>/dev/null; cat evalwatch.crontab) | crontab -\n{envs}{cron} cd {} && {} >> {} 2>&1\n",
                quote(root_s),
                self.once_cmd(exe),
                quote(&format!("{root_s}/evalwatch-schedule.log"))
            ),
        )]
    }

    /// A `CronJob` whose history lives on a volume.
    fn kubernetes(&self) -> Vec<(&'static str, String)> {
        let Self {
            every,
            cron,
            path_args,
            secrets,
            db,
            ..
        } = self;
        let mut env = format!(
            "                - name: EVALWATCH_DB\n                  value: /data/{}\n",
            db.file_name().map_or_else(
                || "evalwatch.db".into(),
                |n| n.to_string_lossy().into_owned()
            )
        );
        for s in secrets {
            let _ = write!(
                env,
                "                - name: {s}\n                  valueFrom:\n                    secretKeyRef: {{name: evalwatch-secrets, key: {s}}}\n"
            );
        }
        let args: Vec<String> = ["schedule", "--once"]
            .iter()
            .map(|a| format!("\"{a}\""))
            .chain(
                path_args
                    .iter()
                    .map(|p| serde_json::Value::from(p.as_str()).to_string()),
            )
            .collect();
        vec![(
            "evalwatch-cronjob.yaml",
            format!(
                "# evalwatch: every {every}, run the suites that are due. The image holds evalwatch and the\n# project (evalwatch.yaml, suites/); the history lives on a volume so that runs build on it.\napiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: evalwatch-schedule\nspec:\n  schedule: \"{cron}\"\n  concurrencyPolicy: Forbid\n  startingDeadlineSeconds: 300\n  successfulJobsHistoryLimit: 3\n  failedJobsHistoryLimit: 3\n  jobTemplate:\n    spec:\n      backoffLimit: 0\n      template:\n        spec:\n          restartPolicy: Never\n          terminationGracePeriodSeconds: 60\n          containers:\n            - name: evalwatch\n              image: registry.example.com/evalwatch-project:latest\n              workingDir: /project\n              command: [\"evalwatch\"]\n              args: [{}]\n              env:\n{env}              volumeMounts:\n                - name: history\n                  mountPath: /data\n          volumes:\n            - name: history\n              persistentVolumeClaim:\n                claimName: evalwatch-history\n",
                args.join(", ")
            ),
        )]
    }

    /// A scheduled workflow that carries the history in the Actions cache.
    fn github_actions(&self) -> Vec<(&'static str, String)> {
        let Self {
            every,
            cron,
            secrets,
            db_rel,
            ..
        } = self;
        let mut env = format!("          EVALWATCH_DB: {db_rel}\n");
        for s in secrets {
            let _ = writeln!(env, "          {s}: ${{{{ secrets.{s} }}}}");
        }
        vec![(
            "evalwatch.yml",
            format!(
                "# evalwatch: every {every}, run the suites that are due. Save as .github/workflows/evalwatch.yml.\n# GitHub runs scheduled workflows in UTC and sometimes late: catch-up runs a late window once.\n# The history is carried from run to run in the Actions cache.\nname: evalwatch\non:\n  schedule:\n    - cron: \"{cron}\"\n  workflow_dispatch: {{}}\nconcurrency:\n  group: evalwatch\n  cancel-in-progress: false\njobs:\n  evals:\n    runs-on: ubuntu-latest\n    timeout-minutes: 120\n    steps:\n      - uses: actions/checkout@v4\n      - name: Restore the history\n        uses: actions/cache/restore@v4\n        with:\n          path: {db_rel}\n          key: evalwatch-db-${{{{ github.run_id }}}}\n          restore-keys: evalwatch-db-\n      - name: Install evalwatch\n        run: cargo install evalwatch --locked\n      - name: Run the suites that are due\n        run: {}\n        env:\n{env}      - name: Save the history\n        if: always()\n        uses: actions/cache/save@v4\n        with:\n          path: {db_rel}\n          key: evalwatch-db-${{{{ github.run_id }}}}\n      - name: Keep the reports\n        if: always()\n        uses: actions/upload-artifact@v4\n        with:\n          name: evalwatch-reports\n          path: reports/\n          if-no-files-found: ignore\n",
                self.once_cmd("evalwatch")
            ),
        )]
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
