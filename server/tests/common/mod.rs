//! Helpers shared by the pull and live integration tests: a server configuration, in-process
//! requests, and pushes.
#![allow(dead_code)] // each test file uses its own subset

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use wharf_server::app::Config;
use wharf_server::debug::Counters;
use wharf_server::faults::{FaultSettings, Faults};
use wharf_server::live::Live;
use wharf_server::store::Store;

pub fn config(dir: &Path, token: Option<&str>) -> Config {
    Config {
        store: Store::open(":memory:").unwrap(),
        token: token.map(str::to_owned),
        max_body_bytes: 1 << 20,
        max_batch: 1000,
        www: dir.join("www"),
        pkg: dir.join("pkg"),
        cors_origins: vec!["http://localhost:5173".into()],
        faults: None,
        counters: Counters::default(),
        live: Live::new(Duration::from_secs(15)),
    }
}

/// `config` with `--faults` on but injecting nothing: the `/debug` routes exist.
pub fn with_debug_routes(mut config: Config) -> Config {
    config.faults = Some(Arc::new(Faults::new(FaultSettings {
        fail_rate: 0.0,
        fail_status: 503,
        retry_after_secs: None,
        latency: Duration::ZERO,
        drop_after_apply_rate: 0.0,
        seed: 1,
        reject_field: None,
    })));
    config
}

pub fn put(id: &str, collection: &str, key: &str) -> Value {
    json!({"id": id, "seq": 1, "collection": collection, "key": key, "op": "put", "value": {"id": key}})
}

pub fn delete(id: &str, collection: &str, key: &str) -> Value {
    json!({"id": id, "seq": 1, "collection": collection, "key": key, "op": "delete"})
}

pub async fn send(app: &axum::Router, request: Request<Body>) -> (StatusCode, Value, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null), text)
}

/// Pushes `mutations` and asserts the push was answered 200.
pub async fn push(app: &axum::Router, mutations: Vec<Value>, token: Option<&str>) -> Value {
    let body = json!({"protocol": 1, "clientId": "c1", "mutations": mutations}).to_string();
    let mut request = Request::post("/push").header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let (status, answer, text) = send(app, request.body(Body::from(body)).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    answer
}

/// `GET /pull?{query}` (no token).
pub async fn pull(app: &axum::Router, query: &str) -> (StatusCode, Value, String) {
    send(app, Request::get(format!("/pull?{query}")).body(Body::empty()).unwrap()).await
}

pub fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("www")).unwrap();
    std::fs::create_dir_all(dir.path().join("pkg")).unwrap();
    dir
}
