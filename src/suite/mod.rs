//! Loading suites and the project config: YAML files, includes, env expansion, defaults,
//! templates, and validation that reports every error at once with its location.
//!
//! Every `serde_yaml` call of the crate lives in this module.

mod decode;
mod yaml;

use std::path::{Path, PathBuf};

use crate::model::{Location, ProjectConfig, Request, Suite, Case};

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
        self.0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Load `evalwatch.yaml`: the explicit path, else `evalwatch.yaml` in `cwd` if present, else
/// defaults with `root = cwd`.
pub fn load_project(explicit: Option<&Path>, cwd: &Path) -> Result<ProjectConfig, Diagnostics> {
    let _ = (explicit, cwd);
    todo!()
}

/// Expand the paths given to `run`/`validate` into suite files: a file is taken as is, a folder
/// gives its `*.yaml` / `*.yml` files (not recursive: `cases/` holds case files), sorted.
pub fn discover_suite_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Diagnostics> {
    let _ = paths;
    todo!()
}

/// Load and validate suites. Returns the suites that loaded cleanly and every diagnostic of
/// every file.
pub fn load_suites(files: &[PathBuf], project: &ProjectConfig) -> (Vec<Suite>, Diagnostics) {
    let _ = (files, project);
    todo!()
}

/// Renders the prompt of a suite for its cases. Templates were checked at load time, so
/// rendering errors here are rare (a variable of the wrong shape, say).
pub struct Renderer {}

impl Renderer {
    pub fn new(suite: &Suite) -> Result<Self, Diagnostics> {
        let _ = suite;
        todo!()
    }

    /// The request for one case and sample.
    pub fn render(&self, case: &Case, sample: u32) -> Result<Request, String> {
        let _ = (case, sample);
        todo!()
    }
}
