//! `review serve`: the open sheets on a loopback address, grades received directly.

use std::sync::{Arc, Mutex};

use super::grades::{Rejected, Via, apply_grades, summary};
use super::{stored_grades, stored_items};
use crate::app::{Ctx, Failure, exit};
use crate::review::serve::{self, Backend, Refusal, SheetEntry};
use crate::review::sheet::{self, SheetData, Submit};
use crate::store::Store;

/// `review serve`'s view of the store.
struct StoreBackend {
    store: Mutex<Store>,
}

impl StoreBackend {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Store>, String> {
        self.store
            .lock()
            .map_err(|_| "the store is unavailable after an earlier failure".to_owned())
    }
}

impl Backend for StoreBackend {
    fn open_sheets(&self) -> Result<Vec<SheetEntry>, String> {
        let store = self.lock()?;
        Ok(store
            .sheets(true)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|s| SheetEntry {
                sheet_id: s.sheet_id,
                created_at: s.created_at,
                items: s.items,
                graded: s.graded,
            })
            .collect())
    }

    fn page(&self, sheet_id: &str, submit: Submit) -> Result<Option<String>, String> {
        let store = self.lock()?;
        // A closed sheet leaves the index but its page still opens: a sheet closes once
        // every item has a grade by anyone, and a team's other reviewers keep grading it.
        let Some(row) = store.sheet(sheet_id).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let items = stored_items(&row).map_err(|e| crate::app::error_text(&e))?;
        let grades = stored_grades(&store, sheet_id).map_err(|e| crate::app::error_text(&e))?;
        Ok(Some(sheet::render(&SheetData {
            sheet_id: &row.sheet_id,
            created_at: &row.created_at,
            mac: &row.mac,
            items: &items,
            submit: Some(submit),
            grades: Some(&grades),
            closed: !row.open,
        })))
    }

    fn grades(&self, body: &str) -> Result<String, Refusal> {
        let mut store = self.lock().map_err(|message| Refusal {
            status: 500,
            message,
        })?;
        match apply_grades(&mut store, body, "the request", Via::Served) {
            Ok((f, c)) => Ok(format!("stored {}", summary(&f, &c))),
            Err(Rejected::Invalid(message)) => Err(Refusal {
                status: 400,
                message,
            }),
            Err(Rejected::Tampered(message)) => Err(Refusal {
                status: 422,
                message,
            }),
            Err(Rejected::Store(e)) => Err(Refusal {
                status: 500,
                message: format!("store the grades: {}", crate::app::error_text(&e)),
            }),
        }
    }
}

pub(super) fn serve_sheets(ctx: &Ctx, store: Store, addr: &str) -> anyhow::Result<u8> {
    let sock: std::net::SocketAddr = addr.parse().map_err(|e| {
        Failure::invalid(format!(
            "read --addr `{addr}`: {e}; give an address such as 127.0.0.1:8737"
        ))
    })?;
    if !sock.ip().is_loopback() {
        ctx.printer.warn(&format!(
            "serving on {sock}, which is not a loopback address: anyone who can reach it and learns the token can read the sheets"
        ));
    }
    let open = store.sheets(true)?.len();
    let backend: Arc<dyn Backend> = Arc::new(StoreBackend {
        store: Mutex::new(store),
    });
    let token = serve::new_token();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(sock)
            .await
            .map_err(|e| Failure {
                code: exit::INCOMPLETE,
                message: format!("serve review sheets: bind {sock}: {e}"),
            })?;
        let local = listener.local_addr()?;
        ctx.printer.result(&format!(
            "serving {open} open review sheet(s) at http://{local}/?token={token}"
        ));
        ctx.printer
            .info("stop with Ctrl-C; grades sent from a sheet are stored at once");
        serve::serve(listener, token, backend, shutdown_signal()).await?;
        anyhow::Ok(())
    })?;
    Ok(exit::OK)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
