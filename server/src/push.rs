//! `POST /push` (docs/protocol.md, "Push"): validates a batch, applies it through the store in
//! the spaces its mutations name (`spaces.rs`: none is the caller's own space; a shared space
//! needs a grant to write, else the op is rejected `FORBIDDEN`), and answers one result per
//! mutation. With `--faults` this is also where the injected faults of
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
use wharf::core::protocol::{
    speaks, Mutation, MutationResult, PushRequest, PushResponse, MAX_ID_BYTES, OLDEST_PROTOCOL_VERSION,
    PROTOCOL_VERSION,
};

use crate::auth::Principal;
use crate::browser::require_json;
use crate::config::{authenticate, error, storage_error, unauthorized, Config};
use crate::faults::{FaultPlan, Faults};
use crate::metrics::StorageCall;
use crate::spaces::{self, Access, Space};
use crate::store::{Author, Pushed, StoreError};

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
    if !speaks(request.protocol.into()) {
        return error(
            StatusCode::BAD_REQUEST,
            "UNSUPPORTED_PROTOCOL",
            format!(
                "this server speaks protocols {OLDEST_PROTOCOL_VERSION} to {PROTOCOL_VERSION}, the request uses {}",
                request.protocol
            ),
        );
    }
    if request.protocol < 2 && request.mutations.iter().any(|m| m.space.is_some()) {
        return error(StatusCode::BAD_REQUEST, "BAD_REQUEST", "a mutation names a space: that needs protocol 2");
    }
    if request.client_id.is_empty() || request.client_id.len() > MAX_ID_BYTES {
        return error(StatusCode::BAD_REQUEST, "BAD_REQUEST", format!("clientId must be 1 to {MAX_ID_BYTES} bytes"));
    }
    // A client id belongs to the user who first pushed with it: another user cannot take it over
    // (and so slip past the "a client's own later writes never conflict" rule). The shared
    // development and anonymous principals bind nothing, so turning JWTs on later refuses no
    // existing client. `--shared-client-ids` turns this off.
    if let (Principal::User { sub: user, .. }, true) = (&principal, config.bind_client_ids) {
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
    let mut results = Vec::with_capacity(request.mutations.len());
    for (author, run) in runs(&access, &request.client_id, request.mutations) {
        match apply_run(&config, author, run).await {
            Ok(answered) => results.extend(answered),
            Err(e) => return storage_error(&e),
        }
    }
    config.metrics.count_push(&results);
    if plan == FaultPlan::DropAfterApply {
        return dropped_connection();
    }
    let duplicates = results.iter().filter(|r| matches!(r, MutationResult::Duplicate { .. })).count();
    config.counters.count_duplicates(u64::try_from(duplicates).unwrap_or(u64::MAX));
    Json(PushResponse { protocol: request.protocol, results }).into_response()
}

/// Splits a batch into runs of consecutive mutations addressed to the same space, in order, each
/// with the author it is applied as (denied where the principal may not write). A batch that
/// names no shared space is one run, one transaction; a run that commits stays committed if a
/// later one fails, which a resend answers as duplicates. A denied run is applied in the
/// principal's own space: it writes nothing, and so locks nothing of a space it may not use.
fn runs(access: &Access, client_id: &str, mutations: Vec<Mutation>) -> Vec<(Author, Vec<Mutation>)> {
    let mut runs: Vec<(Space, Author, Vec<Mutation>)> = Vec::new();
    for mutation in mutations {
        let space = access.place(mutation.space.as_deref());
        if let Some((_, _, run)) = runs.last_mut().filter(|(addressed, _, _)| *addressed == space) {
            run.push(mutation);
            continue;
        }
        let (applied_in, denied) = match access.can_write(&space) {
            true => (space.clone(), None),
            false => {
                let name = mutation.space.as_deref().unwrap_or_default();
                (access.home.clone(), Some(format!("this token may not write into the space {name:?}")))
            }
        };
        let author = Author { name: access.author.clone(), client_id: client_id.to_owned(), space: applied_in, denied };
        runs.push((space, author, vec![mutation]));
    }
    runs.into_iter().map(|(_, author, run)| (author, run)).collect()
}

/// Applies one run in one transaction and pokes the live sockets of its space.
async fn apply_run(config: &Config, author: Author, run: Vec<Mutation>) -> Result<Vec<MutationResult>, StoreError> {
    let space = author.space.clone();
    let started = Instant::now();
    let applied = config.store.apply_push(author, run).await;
    config.metrics.observe_storage(StorageCall::Push, started.elapsed());
    let Pushed { results, cursor } = applied?;
    if let Some(cursor) = cursor {
        config.live.poke(&space, cursor);
    }
    Ok(results)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Grant, Principal};

    fn mutation(id: &str, space: Option<&str>) -> Mutation {
        let mut m = serde_json::json!({"id": id, "seq": 1, "collection": "t", "key": id, "op": "delete"});
        if let Some(space) = space {
            m["space"] = space.into();
        }
        serde_json::from_value(m).unwrap()
    }

    #[test]
    fn a_batch_splits_into_runs_by_space_and_a_denied_run_touches_only_the_own_space() {
        let grants = vec![Grant { space: "team".into(), write: true }, Grant { space: "news".into(), write: false }];
        let access = spaces::access(&Principal::User { sub: "carol".into(), grants });
        let batch = ["own", "own", "team", "news", "other", "own"]
            .iter()
            .enumerate()
            .map(|(i, space)| mutation(&format!("m{i}"), (*space != "own").then_some(*space)))
            .collect();
        let runs = runs(&access, "c1", batch);
        let shape: Vec<(&str, bool, usize)> =
            runs.iter().map(|(author, run)| (author.space.as_str(), author.denied.is_some(), run.len())).collect();
        assert_eq!(
            shape,
            [
                ("user:carol", false, 2),
                ("space:team", false, 1),
                ("user:carol", true, 1),
                ("user:carol", true, 1),
                ("user:carol", false, 1)
            ]
        );
        assert!(runs[2].0.denied.as_deref().is_some_and(|why| why.contains("\"news\"")));
    }
}
