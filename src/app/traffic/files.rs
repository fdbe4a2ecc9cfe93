//! A source's `path:` or the paths given to `ingest`: a file, a folder's files, or a glob.

use std::path::{Path, PathBuf};

use crate::app::Failure;

/// The files `path` names, sorted. A glob or folder that matches nothing is an empty list; a
/// plain file that does not exist is an error (exit 2).
pub(crate) fn expand(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let text = path.to_string_lossy();
    if text.contains(['*', '?', '[']) {
        let paths = glob::glob(&text).map_err(|e| {
            Failure::invalid(format!("read the path `{text}`: not a valid glob: {e}"))
        })?;
        let mut out: Vec<PathBuf> = paths
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect();
        out.sort();
        return Ok(out);
    }
    if path.is_dir() {
        let entries = std::fs::read_dir(path)
            .map_err(|e| anyhow::anyhow!("read the folder {}: {e}", path.display()))?;
        let mut out: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        out.sort();
        return Ok(out);
    }
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    Err(Failure::invalid(format!(
        "read {}: no such file, folder or glob match",
        path.display()
    )))
}
