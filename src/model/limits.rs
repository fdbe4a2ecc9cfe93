//! Bounds on every input, so that no file, value or template can hang a command or exhaust
//! its memory: each is judged at `validate` (and at load by every command) with a clear,
//! located error. Documented in docs/suite-reference.md ("Limits").
//!
//! The file checks live here (std only) because both the loader and the `replay` provider
//! read user files and must refuse the same things.

use std::io::Read as _;
use std::path::Path;

/// Most samples per case and provider (`repeat:` and `run --repeat`).
pub const MAX_REPEAT: u32 = 1_000;
/// Most cases in one suite (inline and included together), unless `EVALWATCH_MAX_CASES`
/// says otherwise (see [`max_cases`]).
pub const MAX_CASES: usize = 1_000_000;

/// The case limit in force: `EVALWATCH_MAX_CASES` when it holds a positive whole number,
/// else [`MAX_CASES`]. Read once per process.
pub fn max_cases() -> usize {
    static LIMIT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        std::env::var("EVALWATCH_MAX_CASES")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(MAX_CASES)
    })
}
/// Largest suite file, YAML case file or `evalwatch.yaml` (parsed into memory whole).
pub const MAX_YAML_FILE_BYTES: u64 = 16 << 20;
/// Largest JSONL or CSV case file (read as a stream).
pub const MAX_CASE_FILE_BYTES: u64 = 1 << 30;
/// Longest line of a JSONL case file or a replay file.
pub const MAX_LINE_BYTES: usize = 16 << 20;
/// Largest JSON schema file (`is-json` with `schema: file.json`).
pub const MAX_SCHEMA_FILE_BYTES: u64 = 4 << 20;
/// Largest replay file (`type: replay`, `file:`; held in memory while a run lasts).
pub const MAX_REPLAY_FILE_BYTES: u64 = 1 << 30;
/// Template steps (minijinja fuel) one rendering may take: a prompt loops over a few
/// thousand items at most; nested loops over `range(10000)` stop here.
pub const TEMPLATE_FUEL: u64 = 2_000_000;
/// Largest rendered prompt (or message).
pub const MAX_RENDERED_BYTES: usize = 16 << 20;

/// Bytes for people: `16 MiB`, `1 GiB`, `512 bytes`.
#[must_use]
pub fn fmt_bytes(n: u64) -> String {
    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;
    const KIB: u64 = 1 << 10;
    if n >= GIB && n.is_multiple_of(GIB) {
        format!("{} GiB", n / GIB)
    } else if n >= MIB {
        format!("{:.0} MiB", n as f64 / MIB as f64)
    } else if n >= KIB {
        format!("{:.0} KiB", n as f64 / KIB as f64)
    } else {
        format!("{n} bytes")
    }
}

/// Why a path is not a file we read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileProblem {
    /// Nothing at that path (or a dangling symlink).
    NotFound,
    /// A FIFO, device, socket or folder (after following symlinks): reading it could block
    /// forever or never end.
    NotRegular(&'static str),
    /// Larger than the limit: (size, limit).
    TooLarge(u64, u64),
    /// Any other I/O error.
    Io(String),
}

impl std::fmt::Display for FileProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotFound => write!(f, "not found"),
            Self::NotRegular(kind) => write!(
                f,
                "is {kind}, not a regular file; only regular files are read (a FIFO or a device could block or never end)"
            ),
            Self::TooLarge(size, max) => write!(
                f,
                "is {} ({size} bytes), over the limit of {}; split it or shorten it",
                fmt_bytes(*size),
                fmt_bytes(*max)
            ),
            Self::Io(e) => write!(f, "cannot be read: {e}"),
        }
    }
}

fn kind_of(t: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() { "a folder" } else { "not a file" }
}

/// Open `path` (symlinks followed) when it is a regular file of at most `max` bytes. The
/// file is checked before it is opened (opening a FIFO blocks) and again once open.
pub fn open_regular(path: &Path, max: u64) -> Result<std::fs::File, FileProblem> {
    let check = |meta: &std::fs::Metadata| {
        if !meta.is_file() {
            return Err(FileProblem::NotRegular(kind_of(meta.file_type())));
        }
        if meta.len() > max {
            return Err(FileProblem::TooLarge(meta.len(), max));
        }
        Ok(())
    };
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => FileProblem::NotFound,
        _ => FileProblem::Io(e.to_string()),
    })?;
    check(&meta)?;
    let file = std::fs::File::open(path).map_err(|e| FileProblem::Io(e.to_string()))?;
    check(
        &file
            .metadata()
            .map_err(|e| FileProblem::Io(e.to_string()))?,
    )?;
    Ok(file)
}

/// The bytes of a regular file of at most `max` bytes (a file that grows while it is read
/// is cut at the limit and refused).
pub fn read_regular(path: &Path, max: u64) -> Result<Vec<u8>, FileProblem> {
    let file = open_regular(path, max)?;
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| FileProblem::Io(e.to_string()))?;
    if bytes.len() as u64 > max {
        return Err(FileProblem::TooLarge(bytes.len() as u64, max));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_fifos_and_large_files_are_refused() {
        assert!(matches!(
            open_regular(Path::new("/dev/zero"), 10),
            Err(FileProblem::NotRegular("a character device"))
        ));
        let dir = tempfile::tempdir().expect("tempdir");
        let link = dir.path().join("zero.jsonl");
        std::os::unix::fs::symlink("/dev/zero", &link).expect("symlink");
        assert!(matches!(
            read_regular(&link, 10),
            Err(FileProblem::NotRegular(_))
        ));
        let big = dir.path().join("big");
        std::fs::write(&big, [b'x'; 11]).expect("write");
        assert_eq!(read_regular(&big, 10), Err(FileProblem::TooLarge(11, 10)));
        assert_eq!(read_regular(&big, 11).expect("read").len(), 11);
        assert_eq!(
            read_regular(&dir.path().join("none"), 10),
            Err(FileProblem::NotFound)
        );
        assert_eq!(fmt_bytes(16 << 20), "16 MiB");
        assert_eq!(fmt_bytes(1 << 30), "1 GiB");
    }
}
