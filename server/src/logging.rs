//! The server's logs: `tracing` events written to stderr as text or as one JSON object per line
//! (`--log-format`), filtered by `--log` (the `tracing-subscriber` env-filter syntax: `info`,
//! `wharf_server=debug,warn`…), and one `request` event per HTTP request ([`log_request`]).
//!
//! A request line names the *matched route* (`/pull`, `/debug/{*rest}`), never the URL the
//! client sent: a query may hold a token (`/live?token=…`) and a path is whatever a client chose
//! to type. Nothing else from the request is logged (no headers, no bodies, no principal), so a
//! log never holds a secret or a document. Stdout stays reserved for the start-up line that
//! scripts read (`main.rs`).

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `2026-12-03T07:00:00.000000Z  INFO wharf_server::request: request method="GET" …`
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message` and the event's
    /// fields at the top level.
    Json,
}

/// The target of request events, for filters such as `--log info,wharf_server::request=warn`.
pub const REQUEST_TARGET: &str = "wharf_server::request";

/// Installs the process's log subscriber. Fails on a filter that does not parse (an empty one
/// logs nothing) or when a subscriber is already installed.
pub fn init(format: LogFormat, filter: &str) -> Result<(), String> {
    let filter = EnvFilter::builder().parse(filter).map_err(|e| format!("--log {filter:?}: {e}"))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).with_span_list(false).try_init(),
    };
    installed.map_err(|e| format!("cannot install the logger: {e}"))
}

/// The route a request is logged under: the pattern it matched, or the static file service that
/// answered it.
fn route_of(request: &Request) -> String {
    if let Some(matched) = request.extensions().get::<MatchedPath>() {
        return matched.as_str().to_owned();
    }
    if request.uri().path() == "/pkg" || request.uri().path().starts_with("/pkg/") {
        "/pkg/{*file}".to_owned()
    } else {
        "/{*file}".to_owned()
    }
}

/// Middleware: one `request` event per request, at `info` (`warn` for a 5xx), with the method,
/// the route, the status and the latency until the response's head was ready (for `/live`, the
/// upgrade; the socket's life is not a request).
pub async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = route_of(&request);
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let latency_ms = (latency_ms * 1000.0).round() / 1000.0;
    if response.status().is_server_error() {
        tracing::warn!(target: REQUEST_TARGET, method = method.as_str(), route, status, latency_ms, "request");
    } else {
        tracing::info!(target: REQUEST_TARGET, method = method.as_str(), route, status, latency_ms, "request");
    }
    response
}
