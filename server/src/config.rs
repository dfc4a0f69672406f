//! The server's configuration and shared state (`Config`), and the request helpers every route
//! handler uses: authentication (the bearer token to a [`Principal`], through `auth.rs`), the
//! JSON error body of docs/protocol.md, and the answer to a storage failure. They sit below the handlers (`push.rs`, `pull.rs`, `live.rs`,
//! `debug.rs`) and the router (`app.rs`), and import none of them, so that no two files import
//! each other.

use std::path::PathBuf;
use std::sync::Arc;

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use wharf::core::protocol::{ErrorResponse, PROTOCOL_VERSION};

use crate::auth::{AuthError, Authenticator, Principal};
use crate::counters::Counters;
use crate::faults::Faults;
use crate::live_hub::Live;
use crate::metrics::Metrics;
use crate::store::{Storage, StoreError};

/// Everything a request handler needs.
pub struct Config {
    /// SQLite or PostgreSQL, behind the `Storage` trait (`store.rs`).
    pub store: Arc<dyn Storage>,
    /// How `/push`, `/pull`, `/live` and `/debug/*` authenticate requests
    /// (`Authorization: Bearer <token>`): a JWT, the development token, or nothing; and the
    /// `/live` tickets (`ticket.rs`).
    pub auth: Authenticator,
    /// Whether a client id is bound to the JWT user who first pushed with it (another user's
    /// push with it is 403). Off with `--shared-client-ids`, for clients that share one id
    /// between the users of a device.
    pub bind_client_ids: bool,
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
    /// The Prometheus metrics (always counted) and who may read them at `GET /metrics`.
    pub metrics: Metrics,
}

pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = ErrorResponse { protocol: PROTOCOL_VERSION, code: code.to_owned(), message: message.into() };
    (status, Json(body)).into_response()
}

/// The token of `Authorization: Bearer <token>`, if any.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
}

/// Who sent the request (its bearer token); answer a refusal with [`unauthorized`].
pub(crate) fn authenticate(config: &Config, headers: &HeaderMap) -> Result<Principal, AuthError> {
    config.auth.authenticate(bearer(headers))
}

/// 401 `UNAUTHORIZED`, saying why.
pub(crate) fn unauthorized(e: &AuthError) -> Response {
    error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", e.to_string())
}

/// The answer to a storage failure: 503 `STORAGE` (transient: the client retries), or 500
/// `INTERNAL` when the server itself failed.
pub(crate) fn storage_error(e: &StoreError) -> Response {
    match e {
        StoreError::Internal(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", e.to_string()),
        _ => error(StatusCode::SERVICE_UNAVAILABLE, "STORAGE", e.to_string()),
    }
}
