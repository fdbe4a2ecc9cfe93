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

#[cfg(test)]
mod tests {
    use super::error_text;

    #[test]
    fn each_cause_is_said_once() {
        // A wrapper that prints its source, over that source: said once.
        let io = std::io::Error::from_raw_os_error(13);
        let shown = io.to_string();
        let err = anyhow::Error::new(io).context(format!("write /x/y: {shown}"));
        assert_eq!(error_text(&err), format!("write /x/y: {shown}"));
        // A cause that adds something is kept, in order.
        let err = anyhow::anyhow!("disk full").context("write the export");
        assert_eq!(error_text(&err), "write the export: disk full");
        // SQLite's "Error code N: ..." under the same message is left out.
        let err = anyhow::anyhow!("Error code 26: file is not a database")
            .context("open the store at a.db: file is not a database");
        assert_eq!(
            error_text(&err),
            "open the store at a.db: file is not a database"
        );
    }
}
