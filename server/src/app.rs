//! The reference server's router: wires `POST /push` (`push.rs`), `GET /pull` (`pull.rs`), the
//! `GET /live` WebSocket (`live.rs`), `GET /health`, `GET /metrics` (`metrics.rs`), the `/debug`
//! routes of `--faults` (`debug.rs`), the demo app from `www/` and the built package from `pkg/`,
//! with the body limit, the `Origin` check of `browser.rs` on the protocol routes (and
//! `POST /live/ticket`), CORS, the request counting of the metrics and the request log
//! (`logging.rs`). It also registers with the store to hear other instances' commits
//! (PostgreSQL's LISTEN/NOTIFY) and pokes this instance's live sockets with them. Nothing
//! imports this file: the handlers and what they share (`config.rs`) sit below it.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::ServeDir;

use crate::auth::same_secret;
use crate::browser::check_origin;
use crate::config::{bearer, error, storage_error, Config};
use crate::debug;
use crate::live::{live, ticket};
use crate::logging::log_request;
use crate::metrics::{MetricsAccess, Route, CONTENT_TYPE};
use crate::pull::pull;
use crate::push::{push, WHARF_CONTEXT};

/// `GET /health`: 200 `{ "ok": true, "backend", "cursor" }` when the database answers a query
/// (`Storage::probe`), else 503. For load balancers and orchestrators; unauthenticated, and it
/// reveals only the latest cursor.
async fn health(State(config): State<Arc<Config>>) -> Response {
    let probe = tokio::time::timeout(std::time::Duration::from_secs(5), config.store.probe()).await;
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

/// `GET /metrics`: the Prometheus text of `metrics.rs`; 404 unless `--metrics`, and with a
/// metrics token 401 unless the request carries it (`Authorization: Bearer`).
async fn metrics(State(config): State<Arc<Config>>, headers: HeaderMap) -> Response {
    match config.metrics.access() {
        MetricsAccess::Off => return StatusCode::NOT_FOUND.into_response(),
        MetricsAccess::Open => {}
        MetricsAccess::Token(token) => {
            if !bearer(&headers).is_some_and(|presented| same_secret(presented, token)) {
                let message = "/metrics needs the metrics token (--metrics-token)";
                return error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message);
            }
        }
    }
    let mut response = config.metrics.render(config.live.sockets()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Counts every answer of the routes of [`Route`] by status code, refusals by the `Origin` check
/// and the body limit included.
async fn count_requests(State(config): State<Arc<Config>>, request: Request, next: Next) -> Response {
    let route = Route::of_path(request.uri().path());
    let response = next.run(request).await;
    if let Some(route) = route {
        config.metrics.count_request(route, response.status());
    }
    response
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
    // `Retry-After` and `Date` are not CORS-safelisted response headers: without exposing them, a
    // client on another origin never sees how long the server asks it to wait, nor its time.
    let layer = CorsLayer::new().allow_origin(allow).allow_methods([Method::GET, Method::POST]).allow_headers([
        header::CONTENT_TYPE,
        header::AUTHORIZATION,
        "idempotency-key".parse().expect("valid header name"),
        WHARF_CONTEXT.parse().expect("valid header name"),
    ]);
    Some(layer.expose_headers([header::RETRY_AFTER, header::DATE]))
}

/// The server's routes. Registers with the store to hear other instances' commits, and pokes this
/// instance's live sockets with them.
pub fn router(config: Config) -> Router {
    let config = Arc::new(config);
    // Weak: the store (inside the config) holds the hook, which must not keep the config alive.
    let weak = Arc::downgrade(&config);
    config.store.on_commit(Arc::new(move |space, cursor| {
        if let Some(config) = weak.upgrade() {
            config.live.poke(space, cursor);
        }
    }));
    let api = Router::new()
        .route("/push", post(push))
        .route("/pull", get(pull))
        .route("/live", get(live))
        .route("/live/ticket", post(ticket))
        // Only the routes above: /health is for load balancers, which send no Origin anyway.
        .route_layer(middleware::from_fn_with_state(Arc::clone(&config), check_origin))
        .route("/health", get(health))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .with_state(Arc::clone(&config));
    let api = match cors(&config.cors_origins) {
        Some(layer) => api.layer(layer),
        None => api,
    };
    // Merged after the CORS layer, which therefore does not cover them: same-origin only.
    let metrics_route = Router::new().route("/metrics", get(metrics)).with_state(Arc::clone(&config));
    let api = api.merge(debug::routes(&config)).merge(metrics_route);
    api.nest_service("/pkg", ServeDir::new(&config.pkg))
        .fallback_service(ServeDir::new(&config.www))
        .layer(middleware::from_fn_with_state(config, count_requests))
        .layer(middleware::from_fn(log_request))
}
