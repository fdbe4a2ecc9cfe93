//! Ctrl-C and SIGTERM for the commands that load suites (`run`, `validate`), and `ingest`.
//!
//! Loading can take seconds (a case file of hundreds of megabytes, a large replay file), and
//! the loaders do not look for a signal as they read. So, from the start of the command, a
//! thread of its own listens: while nothing has been begun (no run row written), a signal
//! ends the process at once with exit 130 and a line saying so; once a run is begun, it
//! cancels the token the run watches instead, so that finished results are kept.

use std::sync::{Mutex, OnceLock};

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

/// Set once a run is begun: a signal cancels [`token`] rather than ending the process. A lock,
/// so that a signal's decision and the beginning of a run never cross: either the process
/// ends before the run's row is written, or the run sees the cancelled token.
static BEGUN: Mutex<bool> = Mutex::new(false);
/// Cancelled on the first signal, once [`watch`] is listening.
static TOKEN: OnceLock<CancellationToken> = OnceLock::new();
/// What a signal before [`begun`] says, when the command is not one that loads suites.
static MESSAGE: OnceLock<&'static str> = OnceLock::new();

/// [`watch`], with what a signal before [`begun`] says (a line after `error: `): a command
/// that does not load suites says what it has done so far.
pub(crate) fn watch_as(message: &'static str) -> anyhow::Result<()> {
    let _ = MESSAGE.set(message);
    watch()
}

/// Listen for Ctrl-C and SIGTERM from now on (the handlers are in place when this returns).
/// Until [`begun`] is called, a signal ends the process with exit 130; after, it cancels
/// [`token`].
pub(crate) fn watch() -> anyhow::Result<()> {
    if TOKEN.get().is_some() {
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the signal listener")?;
    let token = TOKEN.get_or_init(CancellationToken::new).clone();
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        let _entered = runtime.enter();
        (
            signal(SignalKind::interrupt()).context("listen for Ctrl-C")?,
            signal(SignalKind::terminate()).context("listen for SIGTERM")?,
        )
    };
    std::thread::Builder::new()
        .name("evalwatch-signals".to_owned())
        .spawn(move || {
            runtime.block_on(async move {
                #[cfg(unix)]
                {
                    let (mut interrupt, mut terminate) = signals;
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                #[cfg(not(unix))]
                if tokio::signal::ctrl_c().await.is_err() {
                    return;
                }
                {
                    let begun = BEGUN
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if !*begun {
                        // Held while the process ends: no run is begun meanwhile.
                        let message = MESSAGE.get().copied().unwrap_or(
                            "interrupted while loading the suites: nothing was run or stored",
                        );
                        crate::output::err(&format!("error: {message}"));
                        std::process::exit(i32::from(super::exit::INTERRUPTED));
                    }
                }
                token.cancel();
                // Later signals are taken (and left to the run, which is stopping already).
                std::future::pending::<()>().await;
            });
        })
        .context("start the signal listener")?;
    Ok(())
}

/// A run is about to be begun (its row written): from now on a signal cancels [`token`].
pub(crate) fn begun() {
    *BEGUN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = true;
}

/// The token a signal cancels, when [`watch`] listens.
pub(crate) fn token() -> Option<CancellationToken> {
    TOKEN.get().cloned()
}
