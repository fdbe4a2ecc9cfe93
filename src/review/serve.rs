//! `review serve`: open sheets over HTTP on a loopback address, grades received directly.
//!
//! Every request needs the access token, as `Authorization: Bearer TOKEN` or `?token=TOKEN`
//! (the link printed at start): none is 401, a wrong one 403. The store stays with the
//! caller, behind [`Backend`]; this module only speaks HTTP.

use std::fmt::Write as _;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::ReviewError;
use super::sheet::Submit;

/// Where grades are posted.
pub const GRADES_PATH: &str = "/api/grades";

/// An open sheet in the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetEntry {
    pub sheet_id: String,
    pub created_at: String,
    pub items: u64,
    pub graded: u64,
}

/// Why grades were refused: a client error (400, 404, 409, 422) and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
}

/// What the server needs of the store, as plain data.
pub trait Backend: Send + Sync + 'static {
    /// The open sheets.
    fn open_sheets(&self) -> Result<Vec<SheetEntry>, String>;
    /// The page of an open sheet, posting to `submit`; None when there is no such open sheet.
    fn page(&self, sheet_id: &str, submit: Submit) -> Result<Option<String>, String>;
    /// Check and store a grades file, as `review import` does; the summary on success.
    fn grades(&self, body: &str) -> Result<String, Refusal>;
}

struct Shared {
    token: String,
    backend: Arc<dyn Backend>,
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// The token check: 401 without one, 403 with a wrong one (boxed: a response is large).
fn authorize(
    shared: &Shared,
    headers: &HeaderMap,
    query: &TokenQuery,
) -> Result<(), Box<Response>> {
    let given = bearer_token(headers).or(query.token.as_deref());
    match given {
        None => Err(Box::new(
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "an access token is required: open the link `evalwatch review serve` printed\n",
            )
                .into_response(),
        )),
        Some(t) if super::sheet::same_mac(t, &shared.token) => Ok(()),
        Some(_) => Err(Box::new(
            (
                StatusCode::FORBIDDEN,
                "wrong access token: open the link `evalwatch review serve` printed\n",
            )
                .into_response(),
        )),
    }
}

/// The token of an `Authorization: Bearer TOKEN` header; the scheme is case-insensitive
/// (RFC 7235): `bearer TOKEN` is the same.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim_start().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
}

fn internal(message: &str) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, format!("{message}\n")).into_response()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Response> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| internal("the request's worker failed"))
}

async fn index(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Response {
    if let Err(r) = authorize(&shared, &headers, &q) {
        return *r;
    }
    let backend = Arc::clone(&shared.backend);
    let sheets = match blocking(move || backend.open_sheets()).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return internal(&e),
        Err(r) => return r,
    };
    let token = super::sheet::html_escape(&shared.token);
    let mut rows = String::new();
    for s in &sheets {
        let _ = write!(
            rows,
            "<tr><td><a href=\"/sheets/{id}?token={token}\"><code>{id}</code></a></td><td>{at}</td><td>{g} / {n}</td></tr>",
            id = super::sheet::html_escape(&s.sheet_id),
            at = super::sheet::html_escape(&s.created_at),
            g = s.graded,
            n = s.items,
        );
    }
    let body = if sheets.is_empty() {
        "<p>No open sheet. Make one with <code>evalwatch review sample</code>.</p>".to_owned()
    } else {
        format!(
            "<table><thead><tr><th>Sheet</th><th>Created</th><th>Graded</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    };
    Html(format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\"><title>evalwatch review</title></head><body><h1>evalwatch review: open sheets</h1>{body}</body></html>"
    ))
    .into_response()
}

async fn sheet_page(
    State(shared): State<Arc<Shared>>,
    Path(sheet_id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Response {
    if let Err(r) = authorize(&shared, &headers, &q) {
        return *r;
    }
    let backend = Arc::clone(&shared.backend);
    let submit = Submit {
        url: GRADES_PATH.to_owned(),
        token: shared.token.clone(),
    };
    let id = sheet_id.clone();
    match blocking(move || backend.page(&id, submit)).await {
        Ok(Ok(Some(page))) => ([(header::CACHE_CONTROL, "no-store")], Html(page)).into_response(),
        Ok(Ok(None)) => (
            StatusCode::NOT_FOUND,
            format!("no open review sheet {sheet_id}\n"),
        )
            .into_response(),
        Ok(Err(e)) => internal(&e),
        Err(r) => r,
    }
}

async fn grades(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
    body: String,
) -> Response {
    if let Err(r) = authorize(&shared, &headers, &q) {
        return *r;
    }
    let backend = Arc::clone(&shared.backend);
    match blocking(move || backend.grades(&body)).await {
        Ok(Ok(summary)) => (StatusCode::OK, format!("{summary}\n")).into_response(),
        Ok(Err(refusal)) => (
            StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::BAD_REQUEST),
            format!("{}\n", refusal.message),
        )
            .into_response(),
        Err(r) => r,
    }
}

/// The routes, for a server or a test.
pub fn router(token: String, backend: Arc<dyn Backend>) -> Router {
    let shared = Arc::new(Shared { token, backend });
    Router::new()
        .route("/", get(index))
        .route("/sheets/{sheet_id}", get(sheet_page))
        .route(GRADES_PATH, post(grades))
        .with_state(shared)
}

/// Serve on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    token: String,
    backend: Arc<dyn Backend>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ReviewError> {
    axum::serve(listener, router(token, backend))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| ReviewError::Serve(e.to_string()))
}

/// A new random access token (hex).
#[must_use]
pub fn new_token() -> String {
    let bytes: [u8; 24] = rand::random();
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_read_in_any_case() {
        for (value, token) in [
            ("Bearer t-1", Some("t-1")),
            ("bearer t-1", Some("t-1")),
            ("BEARER   t-1 ", Some("t-1")),
            ("Basic t-1", None),
            ("Bearert-1", None),
        ] {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, value.parse().unwrap());
            assert_eq!(bearer_token(&h), token, "{value}");
        }
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }
}
