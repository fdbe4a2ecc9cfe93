//! Loading suites and the project config: YAML files, includes, env expansion, defaults,
//! templates, and validation that reports every error at once with its location.
//!
//! Every YAML parser call of the crate lives in this module. The one YAML parser is
//! `yaml-rust2`'s event parser (see `yaml.rs`): it gives every node its position, so each part
//! of a file (a case, an assertion, a provider) is decoded on its own and every error is
//! reported at its `file:line:col`.

mod assertion;
mod cases;
mod cron;
mod decode;
mod hash;
mod load;
mod project;
mod provider;
mod settings;
mod template;
mod traffic;
mod warn;
mod wire;
mod yaml;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use crate::model::{Location, ProjectConfig, Suite};

pub(crate) use decode::did_you_mean;
pub use template::Renderer;
pub use traffic::TRAFFIC_METRICS;
pub use warn::env_warnings;

/// Whether model-assisted assertions (`llm-rubric`, `factuality`, `hallucination`,
/// `semantic`) are accepted; until they are, they are reported as unsupported.
pub const MODEL_ASSISTED_SUPPORTED: bool = assertion::MODEL_ASSISTED_SUPPORTED;

/// One problem in a user's file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub location: Location,
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Every problem found, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    #[must_use]
    pub fn render(&self) -> String {
        self.0
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn diagnostic(file: &Path, message: impl Into<String>) -> Diagnostic {
    Diagnostic {
        location: Location {
            file: file.into(),
            line: 0,
            col: 0,
        },
        message: message.into(),
    }
}

/// Sort each file's diagnostics by position (the main file first, then included files in order
/// of first appearance) and drop repeats.
fn in_file_order(main: &Path, mut diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut files: Vec<&Path> = vec![main];
    for d in &diags {
        if !files.contains(&&*d.location.file) {
            files.push(&d.location.file);
        }
    }
    let files: Vec<PathBuf> = files.into_iter().map(Path::to_path_buf).collect();
    diags.sort_by_key(|d| {
        let file = files
            .iter()
            .position(|f| **f == *d.location.file)
            .unwrap_or(usize::MAX);
        (file, d.location.line, d.location.col)
    });
    diags.dedup();
    diags
}

/// Load `evalwatch.yaml`: the explicit path, else `evalwatch.yaml` in `cwd` if present, else
/// defaults with `root = cwd`.
pub fn load_project(explicit: Option<&Path>, cwd: &Path) -> Result<ProjectConfig, Diagnostics> {
    let path = if let Some(p) = explicit {
        let full = if p.is_absolute() {
            p.to_path_buf()
        } else {
            cwd.join(p)
        };
        if !full.is_file() {
            return Err(Diagnostics(vec![diagnostic(p, "config file not found")]));
        }
        full
    } else {
        let found = ["evalwatch.yaml", "evalwatch.yml"]
            .iter()
            .map(|n| cwd.join(n))
            .find(|p| p.is_file());
        let Some(found) = found else {
            return Ok(ProjectConfig {
                root: cwd.to_path_buf(),
                ..ProjectConfig::default()
            });
        };
        found
    };
    project::load_file(&path).map_err(|d| Diagnostics(in_file_order(&path, d)))
}

/// Expand the paths given to `run`/`validate` into suite files: a file is taken as is, a folder
/// gives its `*.yaml` / `*.yml` files (not recursive: `cases/` holds case files), sorted.
pub fn discover_suite_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Diagnostics> {
    let mut files = Vec::new();
    let mut diags = Vec::new();
    for path in paths {
        if path.is_file() {
            files.push(path.clone());
        } else if path.is_dir() {
            let entries = match std::fs::read_dir(path) {
                Ok(e) => e,
                Err(e) => {
                    diags.push(diagnostic(path, format!("cannot read folder: {e}")));
                    continue;
                }
            };
            let mut found: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.is_file()
                        && p.extension()
                            .and_then(|e| e.to_str())
                            .is_some_and(|e| e == "yaml" || e == "yml")
                })
                .collect();
            if found.is_empty() {
                diags.push(diagnostic(
                    path,
                    "folder holds no suite files (*.yaml, *.yml)",
                ));
            }
            found.sort();
            files.extend(found);
        } else if path.exists() {
            // A FIFO or a device: never opened (it could block or never end).
            let problem = crate::model::limits::open_regular(path, 0)
                .err()
                .map_or_else(
                    || "not a regular file".to_owned(),
                    |e| format!("the path {e}"),
                );
            diags.push(diagnostic(path, problem));
        } else {
            diags.push(diagnostic(path, "no such file or folder"));
        }
    }
    if diags.is_empty() {
        Ok(files)
    } else {
        Err(Diagnostics(diags))
    }
}

/// Load and validate suites. Returns the suites that loaded cleanly and every diagnostic of
/// every file.
pub fn load_suites(files: &[PathBuf], project: &ProjectConfig) -> (Vec<Suite>, Diagnostics) {
    collect(files, |_, file| load::load_suite(file, project))
}

/// Validate suites as [`load_suites`] does without keeping their cases: each valid case goes
/// to `on_case` with the index of its file in `files` as it is built. The suites returned
/// have no cases; their hashes and checks cover them all.
pub fn check_suites(
    files: &[PathBuf],
    project: &ProjectConfig,
    on_case: &mut dyn FnMut(usize, crate::model::Case),
) -> (Vec<Suite>, Diagnostics) {
    collect(files, |i, file| {
        let sink = Box::new(|case| on_case(i, case));
        load::load_suite_with(
            file,
            project,
            cases::Out::Stream { sink, check: true },
            None,
        )
    })
}

/// Build the cases of one suite file and hand them to `on_case` as they come, after its
/// head (the suite without cases, gates, alerts, review and hash) went to `on_head`. This
/// pass reports nothing: it runs beside [`check_suites`], which finds every problem; a case
/// with a problem is skipped, and nothing comes at all when the head has one. Returns
/// whether it met no problem.
pub fn feed_suite(
    file: &Path,
    project: &ProjectConfig,
    on_head: &mut dyn FnMut(&Suite),
    on_case: &mut dyn FnMut(crate::model::Case),
) -> bool {
    let sink = Box::new(on_case);
    let (_, diags) = load::load_suite_with(
        file,
        project,
        cases::Out::Stream { sink, check: false },
        Some(on_head),
    );
    diags.is_empty()
}

/// The head of one suite file (the suite without cases, gates, alerts, review and hash, as
/// [`feed_suite`] gives it), reading none of its cases; None when the head has a problem.
#[must_use]
pub fn suite_head(file: &Path, project: &ProjectConfig) -> Option<Suite> {
    let mut head = None;
    let mut on_head = |s: &Suite| head = Some(s.clone());
    load::load_suite_with(file, project, cases::Out::Head, Some(&mut on_head));
    head
}

/// One suite file's verdict: its suite, or every problem of the file (and its includes).
#[derive(Debug)]
pub struct Judged {
    pub file: PathBuf,
    pub suite: Result<Suite, Diagnostics>,
}

/// Load and validate each suite file on its own, as [`load_suites`] does (unique names
/// included): one verdict per file, so that one bad suite does not hide the good ones (the
/// scheduler runs those and reports the others).
pub fn load_each(files: &[PathBuf], project: &ProjectConfig) -> Vec<Judged> {
    collect_each(files, |_, file| load::load_suite(file, project))
}

/// Suites that loaded cleanly, under unique names, and every diagnostic in file order.
fn collect(
    files: &[PathBuf],
    load: impl FnMut(usize, &Path) -> (Option<Suite>, Vec<Diagnostic>),
) -> (Vec<Suite>, Diagnostics) {
    let mut suites = Vec::new();
    let mut all = Vec::new();
    for judged in collect_each(files, load) {
        match judged.suite {
            Ok(suite) => suites.push(suite),
            Err(diags) => all.extend(diags.0),
        }
    }
    (suites, Diagnostics(all))
}

/// Each file's suite (under a name no earlier file took) or its diagnostics in file order.
fn collect_each(
    files: &[PathBuf],
    mut load: impl FnMut(usize, &Path) -> (Option<Suite>, Vec<Diagnostic>),
) -> Vec<Judged> {
    let mut out = Vec::new();
    let mut names: Vec<(String, PathBuf)> = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let (suite, diags) = load(i, file);
        let diags = in_file_order(file, diags);
        let suite = match suite {
            Some(suite) if diags.is_empty() => {
                if let Some((_, first)) = names.iter().find(|(n, _)| *n == suite.name) {
                    Err(Diagnostics(vec![Diagnostic {
                        location: load::name_location(file),
                        message: format!(
                            "suite name `{}` is also used by {}; suite names must be unique",
                            suite.name,
                            load::name_location(first)
                        ),
                    }]))
                } else {
                    names.push((suite.name.clone(), file.clone()));
                    Ok(suite)
                }
            }
            _ => Err(Diagnostics(diags)),
        };
        out.push(Judged {
            file: file.clone(),
            suite,
        });
    }
    out
}
