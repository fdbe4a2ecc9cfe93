//! All printing: quiet / normal / verbose, colour unless `NO_COLOR` or not a terminal,
//! progress bars on a terminal only.

use std::io::IsTerminal;

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
            println!("{text}");
        }
    }

    /// A remark about what is happening, to stderr so stdout stays machine-readable
    /// (suppressed by --quiet).
    pub fn note(&self, text: &str) {
        if self.verbosity != Verbosity::Quiet {
            eprintln!("{text}");
        }
    }

    /// Output that --quiet keeps (final results).
    pub fn result(&self, text: &str) {
        println!("{text}");
    }

    /// Detail for --verbose, to stderr.
    pub fn detail(&self, text: &str) {
        if self.verbosity == Verbosity::Verbose {
            eprintln!("{text}");
        }
    }

    /// A warning, to stderr (kept by --quiet).
    pub fn warn(&self, text: &str) {
        eprintln!("{} {text}", self.paint("warning:", "33"));
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
