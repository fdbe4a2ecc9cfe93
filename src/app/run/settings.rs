//! What `run` is asked to do, as plain settings: the command line's arguments resolved once
//! at the entry (globs parsed, defaults applied), so nothing below the entry sees clap.
//! `schedule` builds them directly for the suites that are due.

use std::path::PathBuf;

use crate::cli::{RunArgs, RunFormat};
use crate::model::Severity;
use crate::plan::Filters;

use super::super::Failure;

/// Default cap on calls in flight across all providers.
pub const DEFAULT_CONCURRENCY: usize = 64;

/// The output `run` prints (or writes with `--out`) for its runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
    Junit,
}

/// A `run`'s settings.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Suite files or folders; empty: the project's `suites/`.
    pub paths: Vec<PathBuf>,
    pub filters: Filters,
    /// Most calls in flight across all providers (at least 1).
    pub concurrency: usize,
    /// Plan and render only.
    pub dry_run: bool,
    /// The run to resume.
    pub resume: Option<String>,
    /// Evaluate alert rules after each run.
    pub alerts: bool,
    /// Refresh the HTML reports of the suites that ran.
    pub reports: bool,
    /// An alert at or above this severity makes the run exit 1.
    pub fail_on: Severity,
    pub output: Output,
    /// Where the output goes instead of stdout.
    pub out: Option<PathBuf>,
}

impl RunSettings {
    /// Run the suite file `file` with the defaults (what `schedule` does for a due suite).
    #[must_use]
    pub fn suite_file(file: PathBuf) -> Self {
        Self {
            paths: vec![file],
            filters: Filters::default(),
            concurrency: DEFAULT_CONCURRENCY,
            dry_run: false,
            resume: None,
            alerts: true,
            reports: true,
            fail_on: Severity::Critical,
            output: Output::Text,
            out: None,
        }
    }

    /// The settings `args` ask for; a glob or count that cannot be used is an error (exit 2).
    pub fn from_args(args: &RunArgs) -> anyhow::Result<Self> {
        let cases = args
            .cases
            .iter()
            .map(|g| {
                glob::Pattern::new(g)
                    .map_err(|e| Failure::invalid(format!("read --case `{g}`: {e}")))
            })
            .collect::<Result<_, _>>()?;
        if args.concurrency == Some(0) {
            return Err(Failure::invalid("read --concurrency: must be at least 1"));
        }
        Ok(Self {
            paths: args.paths.clone(),
            filters: Filters {
                providers: args.providers.clone(),
                cases,
                tags: args.tags.clone(),
                repeat: args.repeat,
            },
            concurrency: args.concurrency.unwrap_or(DEFAULT_CONCURRENCY),
            dry_run: args.dry_run,
            resume: args.resume.clone(),
            alerts: !args.no_alerts,
            reports: !args.no_reports,
            fail_on: args.fail_on.into(),
            output: match args.format {
                RunFormat::Text => Output::Text,
                RunFormat::Json => Output::Json,
                RunFormat::Junit => Output::Junit,
            },
            out: args.out.clone(),
        })
    }

    /// Whether stdout carries machine output (json, junit) that nothing else may print to.
    #[must_use]
    pub fn machine_stdout(&self) -> bool {
        self.output != Output::Text && self.out.is_none()
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::{Output, RunSettings};
    use crate::cli::{Cli, Command};
    use crate::model::Severity;

    fn settings(args: &[&str]) -> anyhow::Result<RunSettings> {
        let cli = Cli::try_parse_from(args).expect("parse");
        let Command::Run(args) = cli.command else {
            panic!("not a run");
        };
        RunSettings::from_args(&args)
    }

    #[test]
    fn a_scheduled_run_has_the_command_lines_defaults() {
        let cli = settings(&["evalwatch", "run", "a.yaml"]).expect("settings");
        let scheduled = RunSettings::suite_file("a.yaml".into());
        assert_eq!(format!("{cli:?}"), format!("{scheduled:?}"));
    }

    #[test]
    fn flags_become_settings() {
        let s = settings(&[
            "evalwatch",
            "run",
            "--case",
            "q-*",
            "--tag",
            "t",
            "--provider",
            "p",
            "--repeat",
            "3",
            "--concurrency",
            "5",
            "--no-alerts",
            "--no-reports",
            "--fail-on",
            "warning",
            "--format",
            "junit",
        ])
        .expect("settings");
        assert!(s.filters.cases[0].matches("q-1") && !s.filters.cases[0].matches("r-1"));
        assert_eq!((s.filters.tags.len(), s.filters.providers.len()), (1, 1));
        assert_eq!((s.filters.repeat, s.concurrency), (Some(3), 5));
        assert!(!s.alerts && !s.reports);
        assert_eq!((s.fail_on, s.output), (Severity::Warning, Output::Junit));
        assert!(s.machine_stdout());
    }

    #[test]
    fn a_bad_glob_or_no_concurrency_is_a_usage_error() {
        let e = settings(&["evalwatch", "run", "--case", "[x"]).expect_err("bad glob");
        assert!(e.to_string().contains("read --case `[x`"), "{e}");
        let e = settings(&["evalwatch", "run", "--concurrency", "0"]).expect_err("zero");
        assert!(e.to_string().contains("at least 1"), "{e}");
    }
}
