//! Start-up and tear-down timings of `run`, for finding where time goes: with
//! `EVALWATCH_PHASES=1` set, each phase prints `phase <ms since start> <name>` to stderr
//! (docs/performance.md). Off, a phase costs one environment lookup.

use std::sync::OnceLock;
use std::time::Instant;

/// The process's start, set first thing in `main`.
pub static T0: OnceLock<Instant> = OnceLock::new();

fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("EVALWATCH_PHASES").is_some_and(|v| v == "1"))
}

/// Note that phase `name` ended now.
pub fn phase(name: &str) {
    if enabled() {
        let t0 = T0.get_or_init(Instant::now);
        crate::output::err(&format!(
            "phase {:>8.1} ms {name}{}",
            t0.elapsed().as_secs_f64() * 1000.0,
            memory()
        ));
    }
}

/// The process's resident and peak resident memory (Linux), for the phase lines.
fn memory() -> String {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return String::new();
    };
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_owned())
    };
    match (field("VmRSS:"), field("VmHWM:")) {
        (Some(rss), Some(peak)) => format!(" (resident {rss}, peak {peak})"),
        _ => String::new(),
    }
}
