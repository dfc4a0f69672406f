//! `POST /push` (docs/protocol.md, "Push"): validates a batch, applies it through the store in
//! the caller's space (`spaces.rs`: a JWT user's private space, or the shared one), and answers
//! one result per mutation. With `--faults` this is also where the injected faults of
//! `faults.rs` act (latency, failures before apply, a connection dropped after apply, poisoned
//! batches) and where pushes are counted for `/debug/state` (`counters.rs`) and for the metrics
//! (`metrics.rs`: committed batches, their results, the store's latency). A push that applied
//! something pokes this instance's live sockets directly; other instances hear of it through the
//! store's commit hook (`app.rs`).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use wharf::core::protocol::{MutationResult, PushRequest, PushResponse, MAX_ID_BYTES, PROTOCOL_VERSION};

use crate::auth::Principal;
use crate::browser::require_json;
use crate::config::{authenticate, error, storage_error, unauthorized, Config};
use crate::faults::{FaultPlan, Faults};
use crate::metrics::StorageCall;
use crate::spaces;
use crate::store::{Author, Pushed};

/// The diagnostic header naming the JS context that sent a push (docs/protocol.md).
pub(crate) const WHARF_CONTEXT: &str = "x-wharf-context";

/// `POST /push` with a [`PushRequest`] → [`PushResponse`], or 400, 401, 403, 413, 415, 422
/// `POISON`, 503.
pub async fn push(State(config): State<Arc<Config>>, headers: HeaderMap, body: Bytes) -> Response {
    config.counters.count_push();
    let principal = match authenticate(&config, &headers) {
        Ok(principal) => principal,
        Err(e) => return unauthorized(&e),
    };
    if let Err(not_json) = require_json(&headers) {
        return not_json.into_response();
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
    // A client id belongs to the user who first pushed with it: another user cannot take it over
    // (and so slip past the "a client's own later writes never conflict" rule). The shared
    // development and anonymous principals bind nothing, so turning JWTs on later refuses no
    // existing client. `--shared-client-ids` turns this off.
    if let (Principal::User(user), true) = (&principal, config.bind_client_ids) {
        match config.store.bind_client(request.client_id.clone(), user.clone()).await {
            Ok(true) => {}
            Ok(false) => {
                return error(
                    StatusCode::FORBIDDEN,
                    "FORBIDDEN",
                    format!("client id {:?} belongs to another user", request.client_id),
                )
            }
            Err(e) => return storage_error(&e),
        }
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
    let access = spaces::access(&principal);
    let author = Author { name: access.author, client_id: request.client_id, space: access.home };
    let space = author.space.clone();
    let started = Instant::now();
    let applied = config.store.apply_push(author, request.mutations).await;
    config.metrics.observe_storage(StorageCall::Push, started.elapsed());
    if let Ok(Pushed { results, .. }) = &applied {
        config.metrics.count_push(results);
    }
    if let Ok(Pushed { cursor: Some(cursor), .. }) = &applied {
        config.live.poke(&space, *cursor);
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

/// The context named by the [`WHARF_CONTEXT`] header. Ignored when empty, not text, or longer
/// than an id may be.
fn wharf_context(headers: &HeaderMap) -> Option<&str> {
    let context = headers.get(WHARF_CONTEXT)?.to_str().ok()?.trim();
    (!context.is_empty() && context.len() <= MAX_ID_BYTES).then_some(context)
}

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
