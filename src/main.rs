//! evalwatch: keeps watch over AI systems in production.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let _ = evalwatch::phase::T0.set(std::time::Instant::now());
    let cli = evalwatch::cli::Cli::parse();
    let outcome = evalwatch::app::run(cli);
    evalwatch::phase::phase("exit");
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {}", error_text(&err));
            ExitCode::from(evalwatch::app::exit_code(&err))
        }
    }
}

/// The error and its causes joined by ": ", each said once: a cause whose text the message
/// already carries (a wrapper that prints its source, or `SQLite`'s "Error code 26: ..."
/// under its own message) is left out.
fn error_text(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        let bare = text
            .strip_prefix("Error code ")
            .and_then(|rest| rest.split_once(": "))
            .filter(|(n, _)| n.chars().all(|c| c.is_ascii_digit()))
            .map_or(text.as_str(), |(_, msg)| msg);
        if bare.is_empty() || out.contains(bare) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}
