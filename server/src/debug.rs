//! Debug routes for end-to-end tests of the client, mounted only when the server runs with
//! `--faults` (without it every `/debug/*` path answers 404). A test drives the client against a
//! faulty server, then asks the server what really happened (`GET /debug/state`: which mutations
//! were applied, how many pushes and duplicate answers there were, the stored records), can
//! switch injection off and on mid-test (`POST /debug/faults`), and can compact tombstones
//! (`POST /debug/compact`) to exercise the client's restart after `410 CURSOR_EXPIRED`. They live apart from `app.rs`
//! because they are test tooling, not protocol: nothing here belongs to docs/protocol.md.
//!
//! The routes are outside the CORS layer (same-origin only: a page on another origin cannot read
//! the stored records) and require the bearer token when one is configured, like `/push`.
//!
//! `/debug/state` also proves the client's one-drainer-per-database rule: pushes carrying the
//! diagnostic `X-Wharf-Context` header are tracked while in flight, and a push that starts while
//! another JS context's push for the same client id is still in flight counts as an overlap.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::app::{authorized, error, storage_error, Config};

/// Counts kept for `GET /debug/state` (pushes and duplicates always counted, contexts only with
/// `--faults`; all only readable with `--faults`).
#[derive(Debug, Default)]
pub struct Counters {
    /// `/push` requests that reached the handler, whatever their answer.
    pushes: AtomicU64,
    /// Mutation results answered `duplicate` in a response actually sent (not dropped by a fault).
    duplicates: AtomicU64,
    /// Pushes in flight per client id, by JS context (only those that named their context).
    contexts: Mutex<Contexts>,
}

/// How many overlaps `/debug/state` shows as examples (the latest ones).
const OVERLAP_SAMPLES: usize = 8;

#[derive(Debug, Default)]
struct Contexts {
    /// client id → the contexts of its pushes in flight (one entry per push).
    in_flight: HashMap<String, Vec<String>>,
    /// Every context id that pushed.
    seen: HashSet<String>,
    /// Pushes that started while another context's push of the same client was in flight.
    overlaps: u64,
    /// The latest overlaps: (client id, context in flight, context that started).
    samples: VecDeque<(String, String, String)>,
}

/// A push in flight: ends its in-flight period when dropped, on whatever path the handler leaves.
#[must_use = "the push is in flight until this guard is dropped"]
pub struct InFlightPush<'a> {
    entry: Option<(&'a Counters, String, String)>,
}

impl Drop for InFlightPush<'_> {
    fn drop(&mut self) {
        let Some((counters, client_id, context)) = self.entry.take() else { return };
        let mut contexts = counters.contexts();
        if let Some(list) = contexts.in_flight.get_mut(&client_id) {
            if let Some(at) = list.iter().position(|c| *c == context) {
                list.swap_remove(at);
            }
            if list.is_empty() {
                contexts.in_flight.remove(&client_id);
            }
        }
    }
}

impl Counters {
    pub fn count_push(&self) {
        self.pushes.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_duplicates(&self, n: u64) {
        self.duplicates.fetch_add(n, Ordering::Relaxed);
    }

    pub fn pushes(&self) -> u64 {
        self.pushes.load(Ordering::Relaxed)
    }

    pub fn duplicates(&self) -> u64 {
        self.duplicates.load(Ordering::Relaxed)
    }

    fn contexts(&self) -> MutexGuard<'_, Contexts> {
        self.contexts.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Marks a push of `client_id` from `context` as in flight until the guard is dropped, and
    /// counts an overlap when another context's push of that client is in flight. A push that
    /// names no context (an older client) is not tracked.
    pub fn push_started(&self, client_id: &str, context: Option<&str>) -> InFlightPush<'_> {
        let Some(context) = context else { return InFlightPush { entry: None } };
        let mut contexts = self.contexts();
        let list = contexts.in_flight.entry(client_id.to_owned()).or_default();
        let other = list.iter().find(|c| *c != context).cloned();
        list.push(context.to_owned());
        if let Some(other) = other {
            contexts.overlaps += 1;
            if contexts.samples.len() == OVERLAP_SAMPLES {
                contexts.samples.pop_front();
            }
            contexts.samples.push_back((client_id.to_owned(), other, context.to_owned()));
        }
        if !contexts.seen.contains(context) {
            contexts.seen.insert(context.to_owned());
        }
        InFlightPush { entry: Some((self, client_id.to_owned(), context.to_owned())) }
    }

    /// Pushes that started while another context's push of the same client id was in flight.
    pub fn overlaps(&self) -> u64 {
        self.contexts().overlaps
    }

    /// Distinct context ids that pushed, over all clients.
    pub fn contexts_seen(&self) -> usize {
        self.contexts().seen.len()
    }

    fn overlap_samples(&self) -> Vec<Value> {
        let contexts = self.contexts();
        contexts
            .samples
            .iter()
            .map(|(client_id, in_flight, started)| json!({"clientId": client_id, "inFlight": in_flight, "started": started}))
            .collect()
    }
}

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

fn unauthorized() -> Response {
    error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "missing or wrong bearer token")
}

/// `GET /debug/state` → `{applied, pushes, duplicates, overlaps, contexts, sockets, overlapSamples:
/// [{clientId, inFlight, started}], records: [{collection, key, version, value}]}`.
async fn state(State(config): State<Arc<Config>>, headers: HeaderMap) -> Response {
    if !authorized(&config, &headers) {
        return unauthorized();
    }
    let read = async {
        Ok::<_, crate::store::StoreError>((config.store.applied_count().await?, config.store.records().await?))
    };
    let (applied, records) = match read.await {
        Ok(read) => read,
        Err(e) => return storage_error(&e),
    };
    let records: Vec<Value> = records
        .into_iter()
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
        "overlapSamples": config.counters.overlap_samples(),
        "sockets": config.live.sockets(),
        "records": records,
    }))
    .into_response()
}

/// `POST /debug/faults` with `{"enabled": bool}` → pauses or resumes injection, answers `{"enabled": bool}`.
async fn set_faults(State(config): State<Arc<Config>>, headers: HeaderMap, body: Bytes) -> Response {
    if !authorized(&config, &headers) {
        return unauthorized();
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
    if !authorized(&config, &headers) {
        return unauthorized();
    }
    let before = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(fields)) if fields.len() == 1 => {
            fields.get("beforeCursor").and_then(Value::as_str).and_then(crate::pull::parse_cursor)
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
