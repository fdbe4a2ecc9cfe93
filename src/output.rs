//! All printing: quiet / normal / verbose, colour unless `NO_COLOR` or not a terminal,
//! progress bars on a terminal only.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How much to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// The one place that writes to the terminal.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    pub verbosity: Verbosity,
    color: bool,
    stderr_tty: bool,
}

impl Printer {
    #[must_use]
    pub fn new(verbosity: Verbosity, no_color: bool) -> Self {
        let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self {
            verbosity,
            color: !no_color && !no_color_env && std::io::stdout().is_terminal(),
            stderr_tty: std::io::stderr().is_terminal(),
        }
    }

    /// Normal output to stdout (suppressed by --quiet).
    pub fn info(&self, text: &str) {
        if self.verbosity != Verbosity::Quiet {
            out(text);
        }
    }

    /// A remark about what is happening, to stderr so stdout stays machine-readable
    /// (suppressed by --quiet).
    pub fn note(&self, text: &str) {
        if self.verbosity != Verbosity::Quiet {
            err(text);
        }
    }

    /// Output that --quiet keeps (final results).
    pub fn result(&self, text: &str) {
        out(text);
    }

    /// Detail for --verbose, to stderr.
    pub fn detail(&self, text: &str) {
        if self.verbosity == Verbosity::Verbose {
            err(text);
        }
    }

    /// A warning, to stderr (kept by --quiet).
    pub fn warn(&self, text: &str) {
        err(&format!("{} {text}", self.paint("warning:", "33")));
    }

    /// Wrap text in an ANSI colour when colour is on ("31" red, "32" green, "33" yellow, "2" dim).
    #[must_use]
    pub fn paint(&self, text: &str, code: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// A progress bar on stderr when it is a terminal and not --quiet; hidden otherwise.
    #[must_use]
    pub fn progress(&self, total: u64, label: &str) -> ProgressBar {
        if !self.stderr_tty || self.verbosity == Verbosity::Quiet {
            return ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
        }
        let bar = ProgressBar::new(total);
        let style = ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(label.to_string());
        bar
    }
}

/// One line to stdout. A closed stdout (`evalwatch run | head -2`) is not an error: the line
/// is dropped, never a panic (`println!` panics on a broken pipe), so that what follows the
/// printing (storing, alert delivery) still happens.
pub fn out(text: &str) {
    let _ = line(&mut std::io::stdout().lock(), text);
}

/// One line to stderr; a closed stderr drops the line (see [`out`]).
pub fn err(text: &str) {
    let _ = line(&mut std::io::stderr().lock(), text);
}

fn line(w: &mut impl Write, text: &str) -> std::io::Result<()> {
    w.write_all(text.as_bytes())?;
    w.write_all(b"\n")?;
    w.flush()
}

/// Text to stdout without a newline added; a closed stdout drops it (see [`out`]).
pub fn out_raw(text: &str) {
    let mut w = std::io::stdout().lock();
    let _ = w.write_all(text.as_bytes()).and_then(|()| w.flush());
}

/// A writer that drops everything once its reader has gone (a broken pipe), instead of
/// failing: machine output cut short by `| head` must not turn into an error or a lost
/// alert notice. Other write errors (a full disk) still fail.
#[derive(Debug)]
pub struct PipeSafe<W> {
    inner: W,
    closed: bool,
}

impl<W: Write> PipeSafe<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            closed: false,
        }
    }

    /// Whether the reader went away.
    #[must_use]
    pub fn closed(&self) -> bool {
        self.closed
    }

    fn absorb(&mut self, r: std::io::Result<usize>, len: usize) -> std::io::Result<usize> {
        match r {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(len)
            }
            other => other,
        }
    }
}

impl<W: Write> Write for PipeSafe<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        let r = self.inner.write(buf);
        self.absorb(r, buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let r = self.inner.flush().map(|()| 0);
        self.absorb(r, 0).map(|_| ())
    }
}

/// Buffered stdout for machine output, safe against a closed pipe ([`PipeSafe`]).
#[must_use]
pub fn stdout_writer() -> std::io::BufWriter<PipeSafe<std::io::StdoutLock<'static>>> {
    std::io::BufWriter::new(PipeSafe::new(std::io::stdout().lock()))
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::PipeSafe;

    /// A writer whose reader has gone.
    struct Closed(usize);

    impl std::io::Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            self.0 += 1;
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
    }

    struct Full;

    impl std::io::Write for Full {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("no space left on device"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_broken_pipe_is_absorbed_and_other_errors_are_not() {
        let mut w = PipeSafe::new(Closed(0));
        assert!(writeln!(w, "one").is_ok());
        assert!(w.closed());
        assert!(writeln!(w, "two").is_ok() && w.flush().is_ok());
        assert_eq!(w.inner.0, 1, "nothing is written after the pipe closed");
        let mut full = PipeSafe::new(Full);
        assert!(writeln!(full, "x").is_err());
        assert!(!full.closed());
    }
}
