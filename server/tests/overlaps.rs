//! The overlap detector of `/debug/state`, driven in process: pushes of one client id from two
//! JS contexts (`X-Wharf-Context`) in flight at once count as an overlap, the same context twice
//! or one after the other do not, pushes without the header are not tracked, and every way out
//! of the handler (failure, refusal, dropped connection, cancelled request) ends the in-flight
//! period. The injected latency keeps the concurrent pushes in flight together.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use common::{put, send, site, Backend};
use wharf_server::app::router;
use wharf_server::faults::{FaultSettings, Faults};

const LATENCY: Duration = Duration::from_millis(200);

/// A server with `--faults`: `LATENCY` on every push, plus the given failure rates.
async fn faulty(
    backend: Backend,
    dir: &std::path::Path,
    fail_rate: f64,
    drop_after_apply_rate: f64,
) -> (axum::Router, Arc<Faults>) {
    let mut config = common::config(backend, dir, None).await;
    config.max_batch = 2;
    let faults = Arc::new(Faults::new(FaultSettings {
        fail_rate,
        fail_status: 503,
        retry_after_secs: None,
        latency: LATENCY,
        drop_after_apply_rate,
        seed: 1,
        reject_field: Some("poison".into()),
    }));
    config.faults = Some(Arc::clone(&faults));
    (router(config), faults)
}

/// A push of `mutations` by client `c1`, from `context` when given.
fn push(context: Option<&str>, mutations: Value) -> Request<Body> {
    let body = json!({"protocol": 1, "clientId": "c1", "mutations": mutations}).to_string();
    let mut request = Request::post("/push").header("content-type", "application/json");
    if let Some(context) = context {
        request = request.header("x-wharf-context", context);
    }
    request.body(Body::from(body)).unwrap()
}

fn one(id: &str) -> Value {
    json!([put(id, "notes", id)])
}

async fn state(app: &axum::Router) -> Value {
    let (status, state, text) = send(app, Request::get("/debug/state").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    state
}

backends!(two_contexts_pushing_one_client_at_once_is_an_overlap);
async fn two_contexts_pushing_one_client_at_once_is_an_overlap(backend: Backend) {
    let dir = site();
    let (app, _) = faulty(backend, dir.path(), 0.0, 0.0).await;
    let (a, b) = tokio::join!(send(&app, push(Some("ctx-a"), one("m1"))), send(&app, push(Some("ctx-b"), one("m2"))));
    assert_eq!((a.0, b.0), (StatusCode::OK, StatusCode::OK));
    let state = state(&app).await;
    assert_eq!((state["overlaps"].as_u64(), state["contexts"].as_u64()), (Some(1), Some(2)), "{state}");
    assert_eq!(state["overlapSamples"], json!([{"clientId": "c1", "inFlight": "ctx-a", "started": "ctx-b"}]));
    assert_eq!(state["applied"], 2);
}

backends!(the_same_context_twice_or_one_push_after_the_other_is_no_overlap);
async fn the_same_context_twice_or_one_push_after_the_other_is_no_overlap(backend: Backend) {
    let dir = site();
    let (app, _) = faulty(backend, dir.path(), 0.0, 0.0).await;
    // A context resending while its first request is still in flight (a client-side timeout).
    tokio::join!(send(&app, push(Some("ctx-a"), one("m1"))), send(&app, push(Some("ctx-a"), one("m2"))));
    send(&app, push(Some("ctx-b"), one("m3"))).await;
    send(&app, push(Some("ctx-a"), one("m4"))).await;
    let state = state(&app).await;
    assert_eq!((state["overlaps"].as_u64(), state["contexts"].as_u64()), (Some(0), Some(2)), "{state}");
    assert_eq!(state["overlapSamples"], json!([]));
}

backends!(pushes_without_the_header_are_not_tracked);
async fn pushes_without_the_header_are_not_tracked(backend: Backend) {
    let dir = site();
    let (app, _) = faulty(backend, dir.path(), 0.0, 0.0).await;
    tokio::join!(send(&app, push(None, one("m1"))), send(&app, push(Some("ctx-a"), one("m2"))));
    tokio::join!(send(&app, push(None, one("m3"))), send(&app, push(None, one("m4"))));
    let state = state(&app).await;
    assert_eq!((state["overlaps"].as_u64(), state["contexts"].as_u64()), (Some(0), Some(1)), "{state}");
}

backends!(every_way_out_of_the_handler_ends_the_in_flight_period);
async fn every_way_out_of_the_handler_ends_the_in_flight_period(backend: Backend) {
    let dir = site();
    let (app, faults) = faulty(backend, dir.path(), 1.0, 0.0).await;
    let (status, _, _) = send(&app, push(Some("ctx-a"), one("m1"))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "injected failure");
    let (status, _, _) = send(
        &app,
        push(
            Some("ctx-a"),
            json!([{"id": "m2", "seq": 1, "collection": "notes", "key": "k", "op": "put", "value": {"poison": 1}}]),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "poisoned batch");
    let (status, _, _) =
        send(&app, push(Some("ctx-a"), json!([put("m3", "n", "a"), put("m4", "n", "b"), put("m5", "n", "c")]))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "batch over the limit");
    let cancelled = tokio::time::timeout(LATENCY / 4, app.clone().oneshot(push(Some("ctx-a"), one("m6")))).await;
    assert!(cancelled.is_err(), "the request was abandoned during the latency");
    faults.set_enabled(false);
    let (status, _, _) = send(&app, push(Some("ctx-b"), one("m7"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(state(&app).await["overlaps"], 0, "no push of ctx-a was left in flight");

    let dir = site();
    let (app, faults) = faulty(backend, dir.path(), 0.0, 1.0).await;
    let response = app.clone().oneshot(push(Some("ctx-a"), one("m1"))).await.unwrap();
    assert!(response.into_body().collect().await.is_err(), "dropped after apply");
    faults.set_enabled(false);
    send(&app, push(Some("ctx-b"), one("m2"))).await;
    let state = state(&app).await;
    assert_eq!((state["overlaps"].as_u64(), state["applied"].as_u64()), (Some(0), Some(2)), "{state}");
}
