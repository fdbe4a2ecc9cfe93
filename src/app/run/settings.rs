//! What `run` is asked to do, as plain settings: the command line's arguments resolved once
//! at the entry (globs parsed, defaults applied), so nothing below the entry sees clap.
//! `schedule` builds them directly for the suites that are due.

use std::path::PathBuf;

use crate::cli::{RunArgs, RunFormat};
use crate::model::{RunLabels, Severity};
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
    /// `--label key=value`: stored with each run.
    pub labels: RunLabels,
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
            labels: RunLabels::new(),
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
            labels: labels(&args.labels)?,
        })
    }

    /// Whether stdout carries machine output (json, junit) that nothing else may print to.
    #[must_use]
    pub fn machine_stdout(&self) -> bool {
        self.output != Output::Text && self.out.is_none()
    }
}

/// Longest label key and value, in characters.
const LABEL_KEY_MAX: usize = 64;
const LABEL_VALUE_MAX: usize = 200;

/// The labels of `--label key=value` flags; a malformed, empty or repeated one is an error
/// (exit 2).
fn labels(flags: &[String]) -> anyhow::Result<RunLabels> {
    let mut out = RunLabels::new();
    for flag in flags {
        let (key, value) = parse_label(flag)
            .map_err(|e| Failure::invalid(format!("read --label `{flag}`: {e}")))?;
        if let Some(first) = out.get(&key) {
            return Err(Failure::invalid(format!(
                "read --label `{flag}`: label `{key}` is given twice (first `{key}={first}`); give each key once"
            )));
        }
        out.insert(key, value);
    }
    Ok(out)
}

/// `key=value`: a key of letters, digits, `_`, `-` and `.` (at most 64), a value of at
/// most 200 characters that is not empty and holds no control character. Both trimmed.
pub fn parse_label(s: &str) -> Result<(String, String), String> {
    let Some((key, value)) = s.split_once('=') else {
        return Err("expected KEY=VALUE, e.g. `--label release=v2.3.1`".to_owned());
    };
    let (key, value) = (key.trim(), value.trim());
    if key.is_empty() {
        return Err("the key is empty; expected KEY=VALUE, e.g. `release=v2.3.1`".to_owned());
    }
    if let Some(c) = key
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(format!(
            "the key `{key}` holds {c:?}; a key is letters, digits, `_`, `-` and `.`"
        ));
    }
    if key.chars().count() > LABEL_KEY_MAX {
        return Err(format!("the key is longer than {LABEL_KEY_MAX} characters"));
    }
    if value.is_empty() {
        return Err(format!(
            "the value of `{key}` is empty; leave the label out instead"
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("the value of `{key}` holds a control character"));
    }
    if value.chars().count() > LABEL_VALUE_MAX {
        return Err(format!(
            "the value of `{key}` is longer than {LABEL_VALUE_MAX} characters"
        ));
    }
    Ok((key.to_owned(), value.to_owned()))
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::{Output, RunSettings, parse_label};
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

    #[test]
    fn labels_are_checked() {
        assert_eq!(
            parse_label(" release = v2.3.1 ").unwrap(),
            ("release".to_owned(), "v2.3.1".to_owned())
        );
        assert_eq!(parse_label("a=b=c").unwrap().1, "b=c");
        for (bad, why) in [
            ("release", "expected KEY=VALUE"),
            ("=v2", "the key is empty"),
            ("re lease=v2", "holds ' '"),
            ("release=", "is empty"),
            ("release=a\tb", "control character"),
        ] {
            let e = parse_label(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let e = settings(&["evalwatch", "run", "--label", "a=1", "--label", "a=2"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("given twice (first `a=1`)"), "{e}");
        let s = settings(&["evalwatch", "run", "--label", "b=2", "--label", "a=1"]).unwrap();
        assert_eq!(
            s.labels.iter().collect::<Vec<_>>(),
            [
                (&"a".to_owned(), &"1".to_owned()),
                (&"b".to_owned(), &"2".to_owned())
            ]
        );
    }
}
