//! The reference server's HTTP surface, driven in process: auth, limits, protocol checks,
//! exactly-once pushes, static files.

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::time::Duration;
use tower::ServiceExt;

use wharf_server::app::{router, Config};
use wharf_server::faults::{FaultSettings, Faults};
use wharf_server::store::Store;

fn config(dir: &Path, token: Option<&str>) -> Config {
    Config {
        store: Store::open(":memory:").unwrap(),
        token: token.map(str::to_owned),
        max_body_bytes: 4096,
        max_batch: 3,
        www: dir.join("www"),
        pkg: dir.join("pkg"),
        cors_origins: vec!["http://localhost:5173".into()],
        faults: None,
    }
}

fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("www")).unwrap();
    std::fs::create_dir_all(dir.path().join("pkg")).unwrap();
    std::fs::write(dir.path().join("www/index.html"), "<h1>demo</h1>").unwrap();
    std::fs::write(dir.path().join("pkg/index.js"), "export {}").unwrap();
    dir
}

fn push_body(mutations: Value) -> String {
    json!({"protocol": 1, "clientId": "client-1", "mutations": mutations}).to_string()
}

fn put(id: &str, key: &str) -> Value {
    json!({"id": id, "seq": 1, "collection": "todos", "key": key, "op": "put", "value": {"id": key}})
}

async fn send(app: &axum::Router, request: Request<Body>) -> (StatusCode, Value, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null), text)
}

fn post(body: String, token: Option<&str>) -> Request<Body> {
    let mut request = Request::post("/push").header("content-type", "application/json").header("idempotency-key", "k1");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    request.body(Body::from(body)).unwrap()
}

#[tokio::test]
async fn the_same_push_twice_is_applied_once() {
    let dir = site();
    let app = router(config(dir.path(), None));
    let body = push_body(json!([put("m1", "a"), put("m2", "b")]));
    let (status, first, _) = send(&app, post(body.clone(), None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first["protocol"], 1);
    assert_eq!(first["results"][0], json!({"status": "applied", "id": "m1", "version": 1}));
    // The client never saw that answer and sends the batch again: both are acknowledged, once.
    let (_, again, _) = send(&app, post(body, None)).await;
    assert_eq!(again["results"][0], json!({"status": "duplicate", "id": "m1", "version": 1}));
    assert_eq!(again["results"][1], json!({"status": "duplicate", "id": "m2", "version": 1}));
}

#[tokio::test]
async fn bearer_token_is_required_when_configured() {
    let dir = site();
    let app = router(config(dir.path(), Some("s3cret")));
    let body = push_body(json!([put("m1", "a")]));
    let (status, error, _) = send(&app, post(body.clone(), None)).await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("UNAUTHORIZED")));
    let (status, _, _) = send(&app, post(body.clone(), Some("wrong!"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, ok, _) = send(&app, post(body, Some("s3cret"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ok["results"][0]["status"], "applied");
}

#[tokio::test]
async fn limits_and_bad_requests_are_clear_errors() {
    let dir = site();
    let app = router(config(dir.path(), None));
    let (status, error, _) =
        send(&app, post(push_body(json!([put("1", "a"), put("2", "b"), put("3", "c"), put("4", "d")])), None)).await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("BATCH_TOO_LARGE")));
    let huge = push_body(
        json!([{"id": "m", "seq": 1, "collection": "t", "key": "k", "op": "put", "value": {"x": "y".repeat(5000)}}]),
    );
    let (status, _, _) = send(&app, post(huge, None)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    for (body, code) in [
        ("{not json".to_owned(), "BAD_REQUEST"),
        (json!({"protocol": 2, "clientId": "c", "mutations": []}).to_string(), "UNSUPPORTED_PROTOCOL"),
        (json!({"protocol": 1, "clientId": "", "mutations": []}).to_string(), "BAD_REQUEST"),
        (json!({"protocol": 1, "clientId": "c", "mutations": [{"id": "m"}]}).to_string(), "BAD_REQUEST"),
    ] {
        let (status, error, text) = send(&app, post(body.clone(), None)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {text}");
        assert_eq!(error["code"], code, "{body}");
        assert_eq!(error["protocol"], 1);
    }
}

#[tokio::test]
async fn serves_the_demo_and_the_package_and_answers_cors_preflight() {
    let dir = site();
    let app = router(config(dir.path(), None));
    let (status, _, text) = send(&app, Request::get("/").body(Body::empty()).unwrap()).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "<h1>demo</h1>"));
    let (status, _, text) = send(&app, Request::get("/pkg/index.js").body(Body::empty()).unwrap()).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "export {}"));
    let (status, _, _) = send(&app, Request::get("/../Cargo.toml").body(Body::empty()).unwrap()).await;
    assert_ne!(status, StatusCode::OK);
    let preflight = Request::builder()
        .method("OPTIONS")
        .uri("/push")
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "POST")
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(preflight).await.unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], "http://localhost:5173");
}

fn faulty(dir: &Path, fail_rate: f64, drop_after_apply_rate: f64) -> (axum::Router, Arc<Faults>) {
    let mut config = config(dir, None);
    let faults = Arc::new(Faults::new(FaultSettings {
        fail_rate,
        fail_status: 503,
        retry_after_secs: Some(7),
        latency: Duration::from_millis(30),
        drop_after_apply_rate,
        seed: 3,
    }));
    config.faults = Some(Arc::clone(&faults));
    (router(config), faults)
}

#[tokio::test]
async fn injected_failures_apply_nothing_and_say_when_to_retry() {
    let dir = site();
    let (app, faults) = faulty(dir.path(), 1.0, 0.0);
    let body = push_body(json!([put("m1", "a")]));
    let started = std::time::Instant::now();
    let response = app.clone().oneshot(post(body.clone(), None)).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(30), "latency was added");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "7");
    faults.set_enabled(false);
    let (_, answer, _) = send(&app, post(body, None)).await;
    assert_eq!(answer["results"][0]["status"], "applied", "the failed push had applied nothing");
}

#[tokio::test]
async fn a_dropped_connection_after_apply_is_answered_duplicate_on_resend() {
    let dir = site();
    let (app, faults) = faulty(dir.path(), 0.0, 1.0);
    let body = push_body(json!([put("m1", "a")]));
    let response = app.clone().oneshot(post(body.clone(), None)).await.unwrap();
    assert!(response.into_body().collect().await.is_err(), "the client never receives the acknowledgement");
    faults.set_enabled(false);
    let (status, answer, text) = send(&app, post(body, None)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(answer["results"][0], json!({"status": "duplicate", "id": "m1", "version": 1}), "applied exactly once");
}
