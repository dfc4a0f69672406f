//! The HTTP surface of the reference server: `POST /push` (docs/protocol.md), the demo app from
//! `www/` and the built package from `pkg/`, bearer-token checking, body and batch limits, CORS,
//! and, with `--faults`, the injected faults of `faults.rs` and the `/debug` routes of `debug.rs`.
//! `GET /pull` lives in `pull.rs` and the `GET /live` WebSocket in `live.rs`; they are wired here,
//! and a push that applied something pokes the live sockets (this instance's directly; other
//! instances' through the store's commit hook, PostgreSQL's LISTEN/NOTIFY).

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::ServeDir;
use wharf::core::protocol::{ErrorResponse, MutationResult, PushRequest, PushResponse, MAX_ID_BYTES, PROTOCOL_VERSION};

use crate::debug::{self, Counters};
use crate::faults::{FaultPlan, Faults};
use crate::live::{self, Live};
use crate::pull;
use crate::store::{Pushed, Storage, StoreError};

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

async fn push(State(config): State<Arc<Config>>, headers: HeaderMap, body: Bytes) -> Response {
    config.counters.count_push();
    if !authorized(&config, &headers) {
        return error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "missing or wrong bearer token");
    }
    let request: PushRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return error(StatusCode::BAD_REQUEST, "BAD_REQUEST", format!("not a push request: {e}")),
    };
    if request.protocol != PROTOCOL_VERSION {
        return error(
            StatusCode::BAD_REQUEST,
            "UNSUPPORTED_PROTOCOL",
            format!("this server speaks protocol {PROTOCOL_VERSION}, the request uses {}", request.protocol),
        );
    }
    if request.client_id.is_empty() || request.client_id.len() > MAX_ID_BYTES {
        return error(StatusCode::BAD_REQUEST, "BAD_REQUEST", format!("clientId must be 1 to {MAX_ID_BYTES} bytes"));
    }
    // In flight from here (before the injected latency) until the handler returns, whichever way.
    // Tracked with `--faults` only: it is test tooling, and its set of seen contexts only grows.
    let context = config.faults.as_ref().and(wharf_context(&headers));
    let _in_flight = config.counters.push_started(&request.client_id, context);
    if request.mutations.len() > config.max_batch {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BATCH_TOO_LARGE",
            format!("at most {} mutations per push, got {}", config.max_batch, request.mutations.len()),
        );
    }
    let plan = match &config.faults {
        Some(faults) => {
            if faults.enabled() {
                tokio::time::sleep(faults.settings.latency).await;
            }
            // A server rule, not a random fault: it holds while injection is paused too.
            if let Some(message) = faults.poisoned(&request.mutations) {
                return error(StatusCode::UNPROCESSABLE_ENTITY, "POISON", message);
            }
            if faults.enabled() {
                faults.plan()
            } else {
                FaultPlan::Proceed
            }
        }
        None => FaultPlan::Proceed,
    };
    if let (FaultPlan::Fail, Some(faults)) = (plan, &config.faults) {
        return injected_failure(faults);
    }
    let applied = config.store.apply_push(request.client_id, request.mutations).await;
    if let Ok(Pushed { cursor: Some(cursor), .. }) = &applied {
        config.live.poke(*cursor);
    }
    match applied {
        Ok(_) if plan == FaultPlan::DropAfterApply => dropped_connection(),
        Ok(Pushed { results, .. }) => {
            let duplicates = results.iter().filter(|r| matches!(r, MutationResult::Duplicate { .. })).count();
            config.counters.count_duplicates(u64::try_from(duplicates).unwrap_or(u64::MAX));
            Json(PushResponse { protocol: PROTOCOL_VERSION, results }).into_response()
        }
        Err(e) => storage_error(&e),
    }
}

/// The answer to a storage failure: 503 `STORAGE` (transient: the client retries), or 500
/// `INTERNAL` when the server itself failed.
pub(crate) fn storage_error(e: &StoreError) -> Response {
    match e {
        StoreError::Internal(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", e.to_string()),
        _ => error(StatusCode::SERVICE_UNAVAILABLE, "STORAGE", e.to_string()),
    }
}

/// `GET /health`: 200 `{ "ok": true, "backend", "cursor" }` when the database answers, else 503.
/// For load balancers and orchestrators; unauthenticated, and it reveals only the latest cursor.
async fn health(State(config): State<Arc<Config>>) -> Response {
    let probe = tokio::time::timeout(std::time::Duration::from_secs(5), config.store.latest_seq()).await;
    match probe {
        Ok(Ok(cursor)) => {
            let body = serde_json::json!({"ok": true, "backend": config.store.backend(), "cursor": cursor.to_string()});
            let mut response = Json(body).into_response();
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Ok(Err(e)) => storage_error(&e),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "STORAGE", "the database did not answer within 5 s"),
    }
}

/// The diagnostic `X-Wharf-Context` header (docs/protocol.md): the JS context that sent the push.
/// Ignored when empty, not text, or longer than an id may be.
fn wharf_context(headers: &HeaderMap) -> Option<&str> {
    let context = headers.get(WHARF_CONTEXT)?.to_str().ok()?.trim();
    (!context.is_empty() && context.len() <= MAX_ID_BYTES).then_some(context)
}

const WHARF_CONTEXT: &str = "x-wharf-context";

fn injected_failure(faults: &Faults) -> Response {
    let status = StatusCode::from_u16(faults.settings.fail_status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let mut response = error(status, "INJECTED_FAULT", "fault injected by --faults; nothing was applied");
    if let Some(seconds) = faults.settings.retry_after_secs {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// A 200 whose body fails mid-stream: the server closes the connection and the client sees a
/// network error, although the batch was applied.
fn dropped_connection() -> Response {
    let failing = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "fault: dropped after apply",
        ))
    });
    Response::new(axum::body::Body::from_stream(failing))
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(CorsLayer::new().allow_origin(allow).allow_methods([Method::GET, Method::POST]).allow_headers([
        header::CONTENT_TYPE,
        header::AUTHORIZATION,
        "idempotency-key".parse().expect("valid header name"),
        WHARF_CONTEXT.parse().expect("valid header name"),
    ]))
}

/// The server's routes. Registers with the store to hear other instances' commits, and pokes this
/// instance's live sockets with them.
pub fn router(config: Config) -> Router {
    let config = Arc::new(config);
    // Weak: the store (inside the config) holds the hook, which must not keep the config alive.
    let weak = Arc::downgrade(&config);
    config.store.on_commit(Arc::new(move |cursor| {
        if let Some(config) = weak.upgrade() {
            config.live.poke(cursor);
        }
    }));
    let api = Router::new()
        .route("/push", post(push))
        .route("/pull", get(pull::pull))
        .route("/live", get(live::live))
        .route("/health", get(health))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .with_state(Arc::clone(&config));
    let api = match cors(&config.cors_origins) {
        Some(layer) => api.layer(layer),
        None => api,
    };
    // Merged after the CORS layer, which therefore does not cover them: same-origin only.
    let api = api.merge(debug::routes(&config));
    api.nest_service("/pkg", ServeDir::new(&config.pkg)).fallback_service(ServeDir::new(&config.www))
}
