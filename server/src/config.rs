//! The server's configuration and shared state (`Config`), and the request helpers every route
//! handler uses: the bearer-token check, the JSON error body of docs/protocol.md, and the answer
//! to a storage failure. They sit below the handlers (`push.rs`, `pull.rs`, `live.rs`,
//! `debug.rs`) and the router (`app.rs`), and import none of them, so that no two files import
//! each other.

use std::path::PathBuf;
use std::sync::Arc;

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use wharf::core::protocol::{ErrorResponse, PROTOCOL_VERSION};

use crate::counters::Counters;
use crate::faults::Faults;
use crate::live_hub::Live;
use crate::store::{Storage, StoreError};

/// Everything a request handler needs.
pub struct Config {
    /// SQLite or PostgreSQL, behind the `Storage` trait (`store.rs`).
    pub store: Arc<dyn Storage>,
    /// When set, `/push`, `/pull`, `/live` (also as `?token=`) and `/debug/*` require
    /// `Authorization: Bearer <token>`.
    pub token: Option<String>,
    pub max_body_bytes: usize,
    pub max_batch: usize,
    pub www: PathBuf,
    pub pkg: PathBuf,
    /// Origins allowed to call `/push` from another origin; empty means same-origin only.
    pub cors_origins: Vec<String>,
    /// Fault injection, `None` unless turned on; shared so it can be paused at run time.
    pub faults: Option<Arc<Faults>>,
    /// Pushes, duplicate answers and overlapping pushes, for `GET /debug/state`.
    pub counters: Counters,
    /// The live channel: its heartbeat period and the hub pushes poke.
    pub live: Live,
}

pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = ErrorResponse { protocol: PROTOCOL_VERSION, code: code.to_owned(), message: message.into() };
    (status, Json(body)).into_response()
}

pub(crate) fn authorized(config: &Config, headers: &HeaderMap) -> bool {
    let presented =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    token_matches(config, presented)
}

/// Whether `presented` is the configured token (anything is, when none is configured).
pub(crate) fn token_matches(config: &Config, presented: Option<&str>) -> bool {
    let Some(token) = &config.token else { return true };
    // Constant-time comparison: the token is a secret.
    presented.is_some_and(|p| {
        p.len() == token.len() && p.bytes().zip(token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    })
}

/// The answer to a storage failure: 503 `STORAGE` (transient: the client retries), or 500
/// `INTERNAL` when the server itself failed.
pub(crate) fn storage_error(e: &StoreError) -> Response {
    match e {
        StoreError::Internal(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", e.to_string()),
        _ => error(StatusCode::SERVICE_UNAVAILABLE, "STORAGE", e.to_string()),
    }
}
