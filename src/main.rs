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
            evalwatch::output::err(&format!("error: {}", evalwatch::app::error_text(&err)));
            ExitCode::from(evalwatch::app::exit_code(&err))
        }
    }
}
