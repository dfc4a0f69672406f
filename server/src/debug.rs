//! Debug routes for end-to-end tests of the client, mounted only when the server runs with
//! `--faults` (without it every `/debug/*` path answers 404). A test drives the client against a
//! faulty server, then asks the server what really happened (`GET /debug/state`: which mutations
//! were applied, how many pushes and duplicate answers there were, the stored records), can
//! switch injection off and on mid-test (`POST /debug/faults`), and can compact tombstones
//! (`POST /debug/compact`) to exercise the client's restart after `410 CURSOR_EXPIRED`. They live
//! apart from the protocol's handlers because they are test tooling, not protocol: nothing here
//! belongs to docs/protocol.md.
//!
//! The routes are outside the CORS layer (same-origin only: a page on another origin cannot read
//! the stored records) and authenticate like `/push` (any principal may use them: they exist only with `--faults`).
//!
//! `/debug/state` also proves the client's one-drainer-per-database rule: pushes carrying the
//! diagnostic `X-Wharf-Context` header are tracked while in flight, and a push that starts while
//! another JS context's push for the same client id is still in flight counts as an overlap. The
//! push handler does that counting into `counters.rs`; these routes only read it.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::config::{authenticate, error, storage_error, unauthorized, Config};
use crate::counters::Counters;
use crate::pull::parse_cursor;
use crate::spaces;
use crate::store::StoreError;

/// The `/debug` routes: the real ones when faults are configured, otherwise a 404 for any
/// method and path under `/debug` (so that a POST is not answered 405 by the static files).
pub fn routes(config: &Arc<Config>) -> Router {
    if config.faults.is_none() {
        return Router::new().route("/debug", any(not_found)).route("/debug/{*rest}", any(not_found));
    }
    Router::new()
        .route("/debug/state", get(state))
        .route("/debug/faults", post(set_faults))
        .route("/debug/compact", post(compact))
        .with_state(Arc::clone(config))
}

async fn not_found() -> StatusCode {
    StatusCode::NOT_FOUND
}

/// `GET /debug/state` → `{applied, pushes, duplicates, overlaps, contexts, sockets, overlapSamples:
/// [{clientId, inFlight, started}], records: [{collection, key, version, value}]}`; the records
/// of the spaces the caller can read only (the counters are the whole server's).
async fn state(State(config): State<Arc<Config>>, headers: HeaderMap) -> Response {
    let access = match authenticate(&config, &headers) {
        Ok(principal) => spaces::access(&principal),
        Err(e) => return unauthorized(&e),
    };
    let read = async { Ok::<_, StoreError>((config.store.applied_count().await?, config.store.records().await?)) };
    let (applied, records) = match read.await {
        Ok(read) => read,
        Err(e) => return storage_error(&e),
    };
    let records: Vec<Value> = records
        .into_iter()
        .filter(|r| access.can_read(&r.space))
        .map(
            |r| json!({"collection": r.collection, "key": r.key, "version": r.record.version, "value": r.record.value}),
        )
        .collect();
    Json(json!({
        "applied": applied,
        "pushes": config.counters.pushes(),
        "duplicates": config.counters.duplicates(),
        "overlaps": config.counters.overlaps(),
        "contexts": config.counters.contexts_seen(),
        "overlapSamples": overlap_samples(&config.counters),
        "sockets": config.live.sockets(),
        "records": records,
    }))
    .into_response()
}

fn overlap_samples(counters: &Counters) -> Vec<Value> {
    counters
        .overlap_samples()
        .into_iter()
        .map(|o| json!({"clientId": o.client_id, "inFlight": o.in_flight, "started": o.started}))
        .collect()
}

/// `POST /debug/faults` with `{"enabled": bool}` → pauses or resumes injection, answers `{"enabled": bool}`.
async fn set_faults(State(config): State<Arc<Config>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(e) = authenticate(&config, &headers) {
        return unauthorized(&e);
    }
    let Some(faults) = &config.faults else { return StatusCode::NOT_FOUND.into_response() };
    let enabled = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(fields)) if fields.len() == 1 => fields.get("enabled").and_then(Value::as_bool),
        _ => None,
    };
    let Some(enabled) = enabled else {
        return error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            r#"expected exactly {"enabled": true} or {"enabled": false}"#,
        );
    };
    faults.set_enabled(enabled);
    Json(json!({"enabled": faults.enabled()})).into_response()
}

/// `POST /debug/compact` with `{"beforeCursor": "<cursor>"}` → deletes the tombstones older than
/// that cursor's change and answers `{"deleted": n, "compactedThrough": "<cursor>"}`: pulls from
/// a non-zero cursor below `compactedThrough` are refused with 410 from then on.
async fn compact(State(config): State<Arc<Config>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(e) = authenticate(&config, &headers) {
        return unauthorized(&e);
    }
    let before = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(fields)) if fields.len() == 1 => {
            fields.get("beforeCursor").and_then(Value::as_str).and_then(parse_cursor).map(|cursor| cursor.seq)
        }
        _ => None,
    };
    let Some(before) = before else {
        return error(StatusCode::BAD_REQUEST, "BAD_REQUEST", r#"expected exactly {"beforeCursor": "<cursor>"}"#);
    };
    match config.store.compact(before).await {
        Ok((deleted, horizon)) => {
            Json(json!({"deleted": deleted, "compactedThrough": horizon.to_string()})).into_response()
        }
        Err(e) => storage_error(&e),
    }
}
