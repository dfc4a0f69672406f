//! The reference server's HTTP surface, driven in process: auth, limits, protocol checks,
//! exactly-once pushes, static files, injected faults and the `/debug` routes.

mod common;

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::time::Duration;
use tower::ServiceExt;

use common::{send, Backend};
use wharf_server::app::router;
use wharf_server::config::Config;
use wharf_server::faults::{FaultSettings, Faults};

/// A server with small limits: 4 KiB bodies, 3 mutations per push.
async fn config(backend: Backend, dir: &Path, token: Option<&str>) -> Config {
    let mut config = common::config(backend, dir, token).await;
    config.max_body_bytes = 4096;
    config.max_batch = 3;
    config
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

fn post(body: String, token: Option<&str>) -> Request<Body> {
    let mut request = Request::post("/push").header("content-type", "application/json").header("idempotency-key", "k1");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    request.body(Body::from(body)).unwrap()
}

backends!(the_same_push_twice_is_applied_once);
async fn the_same_push_twice_is_applied_once(backend: Backend) {
    let dir = site();
    let app = router(config(backend, dir.path(), None).await);
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

backends!(bearer_token_is_required_when_configured);
async fn bearer_token_is_required_when_configured(backend: Backend) {
    let dir = site();
    let app = router(config(backend, dir.path(), Some("s3cret")).await);
    let body = push_body(json!([put("m1", "a")]));
    let (status, error, _) = send(&app, post(body.clone(), None)).await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("UNAUTHORIZED")));
    let (status, _, _) = send(&app, post(body.clone(), Some("wrong!"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, ok, _) = send(&app, post(body, Some("s3cret"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ok["results"][0]["status"], "applied");
}

backends!(limits_and_bad_requests_are_clear_errors);
async fn limits_and_bad_requests_are_clear_errors(backend: Backend) {
    let dir = site();
    let app = router(config(backend, dir.path(), None).await);
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
        (json!({"protocol": 3, "clientId": "c", "mutations": []}).to_string(), "UNSUPPORTED_PROTOCOL"),
        (json!({"protocol": 0, "clientId": "c", "mutations": []}).to_string(), "UNSUPPORTED_PROTOCOL"),
        (json!({"protocol": 1, "clientId": "", "mutations": []}).to_string(), "BAD_REQUEST"),
        (json!({"protocol": 1, "clientId": "c", "mutations": [{"id": "m"}]}).to_string(), "BAD_REQUEST"),
    ] {
        let (status, error, text) = send(&app, post(body.clone(), None)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {text}");
        assert_eq!(error["code"], code, "{body}");
        assert_eq!(error["protocol"], 2);
    }
}

backends!(serves_the_demo_and_the_package_and_answers_cors_preflight);
async fn serves_the_demo_and_the_package_and_answers_cors_preflight(backend: Backend) {
    let dir = site();
    let app = router(config(backend, dir.path(), None).await);
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
        .header("access-control-request-headers", "content-type,idempotency-key,x-wharf-context")
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(preflight).await.unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], "http://localhost:5173");
    let allowed = response.headers()["access-control-allow-headers"].to_str().unwrap();
    assert!(allowed.contains("x-wharf-context"), "{allowed}");
}

async fn faulty(
    backend: Backend,
    dir: &Path,
    fail_rate: f64,
    drop_after_apply_rate: f64,
) -> (axum::Router, Arc<Faults>) {
    faulty_with(config(backend, dir, None).await, fail_rate, drop_after_apply_rate, None)
}

fn faulty_with(
    mut config: Config,
    fail_rate: f64,
    drop_after_apply_rate: f64,
    reject_field: Option<&str>,
) -> (axum::Router, Arc<Faults>) {
    let faults = Arc::new(Faults::new(FaultSettings {
        fail_rate,
        fail_status: 503,
        retry_after_secs: Some(7),
        latency: Duration::from_millis(30),
        drop_after_apply_rate,
        seed: 3,
        reject_field: reject_field.map(str::to_owned),
    }));
    config.faults = Some(Arc::clone(&faults));
    (router(config), faults)
}

backends!(injected_failures_apply_nothing_and_say_when_to_retry);
async fn injected_failures_apply_nothing_and_say_when_to_retry(backend: Backend) {
    let dir = site();
    let (app, faults) = faulty(backend, dir.path(), 1.0, 0.0).await;
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

backends!(a_dropped_connection_after_apply_is_answered_duplicate_on_resend);
async fn a_dropped_connection_after_apply_is_answered_duplicate_on_resend(backend: Backend) {
    let dir = site();
    let (app, faults) = faulty(backend, dir.path(), 0.0, 1.0).await;
    let body = push_body(json!([put("m1", "a")]));
    let response = app.clone().oneshot(post(body.clone(), None)).await.unwrap();
    assert!(response.into_body().collect().await.is_err(), "the client never receives the acknowledgement");
    faults.set_enabled(false);
    let (status, answer, text) = send(&app, post(body, None)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(answer["results"][0], json!({"status": "duplicate", "id": "m1", "version": 1}), "applied exactly once");
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn set_faults(body: &str) -> Request<Body> {
    Request::post("/debug/faults").header("content-type", "application/json").body(Body::from(body.to_owned())).unwrap()
}

backends!(a_batch_with_the_poison_field_is_refused_whole_and_one_without_applies);
async fn a_batch_with_the_poison_field_is_refused_whole_and_one_without_applies(backend: Backend) {
    let dir = site();
    let (app, faults) = faulty_with(config(backend, dir.path(), None).await, 0.0, 0.0, Some("poison"));
    let poisoned = json!({"id": "m2", "seq": 2, "collection": "todos", "key": "b", "op": "put",
        "value": {"id": "b", "poison": true}});
    let (status, error, text) = send(&app, post(push_body(json!([put("m1", "a"), poisoned])), None)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert_eq!((error["protocol"].as_u64(), error["code"].as_str()), (Some(2), Some("POISON")));
    assert!(error["message"].as_str().is_some_and(|m| m.contains("m2")), "{text}");
    let (_, state, _) = send(&app, get("/debug/state")).await;
    assert_eq!((state["applied"].as_u64(), state["records"].clone()), (Some(0), json!([])), "nothing applied");
    // The bisected half without the poison applies (a nested field of that name is harmless).
    let nested = json!({"id": "m3", "seq": 3, "collection": "todos", "key": "c", "op": "put",
        "value": {"id": "c", "inner": {"poison": 1}}});
    let (status, answer, text) = send(&app, post(push_body(json!([put("m1", "a"), nested])), None)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(answer["results"].as_array().unwrap().iter().all(|r| r["status"] == "applied"), "{text}");
    // A patch carrying it poisons too, and so it does while injection is paused: a server rule,
    // not a random fault (the demo's poison checkbox relies on it).
    let patch = json!({"id": "m4", "seq": 4, "collection": "todos", "key": "a", "op": "patch", "patch": {"poison": 0}});
    let (status, _, _) = send(&app, post(push_body(json!([patch])), None)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    faults.set_enabled(false);
    let (status, _, text) = send(&app, post(push_body(json!([patch])), None)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
}

backends!(debug_state_reports_applied_pushes_duplicates_overlaps_and_records);
async fn debug_state_reports_applied_pushes_duplicates_overlaps_and_records(backend: Backend) {
    let dir = site();
    let (app, _) = faulty(backend, dir.path(), 0.0, 0.0).await;
    let numbered = json!({"id": "m3", "seq": 3, "collection": "notes", "key": 7, "op": "put", "value": {"n": 7}});
    let body = push_body(json!([put("m1", "b"), put("m2", "a"), numbered]));
    send(&app, post(body.clone(), None)).await;
    let (_, again, _) = send(&app, post(body, None)).await;
    assert!(again["results"].as_array().unwrap().iter().all(|r| r["status"] == "duplicate"));
    let delete = json!({"id": "m4", "seq": 4, "collection": "todos", "key": "a", "op": "delete"});
    send(&app, post(push_body(json!([delete])), None)).await;
    let (status, state, text) = send(&app, get("/debug/state")).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(
        state,
        json!({
            "applied": 4,
            "pushes": 3,
            "duplicates": 3,
            "overlaps": 0,
            "contexts": 0,
            "overlapSamples": [],
            "sockets": 0,
            "records": [
                {"collection": "notes", "key": 7, "version": 1, "value": {"n": 7}},
                {"collection": "todos", "key": "a", "version": 2, "value": null},
                {"collection": "todos", "key": "b", "version": 1, "value": {"id": "b"}},
            ],
        })
    );
    // Same-origin only: the CORS layer of /push does not extend to /debug.
    let preflight = Request::builder()
        .method("OPTIONS")
        .uri("/debug/state")
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "GET")
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(preflight).await.unwrap();
    assert!(response.headers().get("access-control-allow-origin").is_none());
}

backends!(debug_routes_do_not_exist_without_faults);
async fn debug_routes_do_not_exist_without_faults(backend: Backend) {
    let dir = site();
    let app = router(config(backend, dir.path(), None).await);
    for request in [get("/debug/state"), get("/debug"), set_faults(r#"{"enabled": false}"#)] {
        let uri = request.uri().to_string();
        let (status, _, _) = send(&app, request).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
    }
}

backends!(debug_routes_require_the_token_when_one_is_configured);
async fn debug_routes_require_the_token_when_one_is_configured(backend: Backend) {
    let dir = site();
    let (app, faults) = faulty_with(config(backend, dir.path(), Some("s3cret")).await, 1.0, 0.0, None);
    let (status, _, _) = send(&app, get("/debug/state")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = send(&app, set_faults(r#"{"enabled": false}"#)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(faults.enabled());
    let request = Request::get("/debug/state").header("authorization", "Bearer s3cret").body(Body::empty()).unwrap();
    let (status, _, _) = send(&app, request).await;
    assert_eq!(status, StatusCode::OK);
}

backends!(turning_faults_off_over_http_lets_pushes_through);
async fn turning_faults_off_over_http_lets_pushes_through(backend: Backend) {
    let dir = site();
    let (app, faults) = faulty(backend, dir.path(), 1.0, 0.0).await;
    let body = push_body(json!([put("m1", "a")]));
    let (status, _, _) = send(&app, post(body.clone(), None)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    for bad in ["{}", r#"{"enabled": "no"}"#, r#"{"enabled": false, "failRate": 0}"#, "nope"] {
        let (status, error, _) = send(&app, set_faults(bad)).await;
        assert_eq!((status, error["code"].as_str()), (StatusCode::BAD_REQUEST, Some("BAD_REQUEST")), "{bad}");
    }
    assert!(faults.enabled());
    let (status, answer, _) = send(&app, set_faults(r#"{"enabled": false}"#)).await;
    assert_eq!((status, answer), (StatusCode::OK, json!({"enabled": false})));
    assert!(!faults.enabled());
    let (status, answer, text) = send(&app, post(body, None)).await;
    assert_eq!((status, answer["results"][0]["status"].as_str()), (StatusCode::OK, Some("applied")), "{text}");
    let (_, answer, _) = send(&app, set_faults(r#"{"enabled": true}"#)).await;
    assert_eq!(answer, json!({"enabled": true}));
    let (status, _, _) = send(&app, post(push_body(json!([put("m2", "b")])), None)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "back on");
    let (_, state, _) = send(&app, get("/debug/state")).await;
    assert_eq!((state["pushes"].as_u64(), state["applied"].as_u64()), (Some(3), Some(1)));
}

backends!(health_names_the_backend_and_the_latest_cursor);
async fn health_names_the_backend_and_the_latest_cursor(backend: Backend) {
    let dir = site();
    let app = router(config(backend, dir.path(), Some("s3cret")).await);
    let (status, health, text) = send(&app, get("/health")).await;
    let name = if backend == Backend::Sqlite { "sqlite" } else { "postgres" };
    assert_eq!((status, health), (StatusCode::OK, json!({"ok": true, "backend": name, "cursor": "0"})), "{text}");
    send(&app, post(push_body(json!([put("m1", "a"), put("m2", "b")])), Some("s3cret"))).await;
    let (_, health, _) = send(&app, get("/health")).await;
    assert_eq!(health["cursor"], "2", "no token needed, and it follows the latest commit");
}

backends!(health_queries_the_database_and_is_503_when_it_fails);
async fn health_queries_the_database_and_is_503_when_it_fails(backend: Backend) {
    let dir = site();
    // A database this test can also reach directly, to break it under the running server.
    let (store, url) = match backend {
        Backend::Sqlite => {
            let path = dir.path().join("wharf.sqlite").to_string_lossy().into_owned();
            (wharf_server::sqlite::SqliteStore::open_shared(&path).unwrap(), path)
        }
        Backend::Postgres => {
            let url = common::pg::database().await;
            (common::pg_store(&url, wharf_server::postgres::PgOptions::default()).await, url)
        }
    };
    let app = router(common::config_with(store, dir.path(), None));
    let (status, _, text) = send(&app, get("/health")).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    match backend {
        Backend::Sqlite => {
            rusqlite::Connection::open(&url).unwrap().execute_batch("DROP TABLE meta").unwrap();
        }
        Backend::Postgres => {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            client.batch_execute("DROP TABLE wharf_meta").await.unwrap();
        }
    }
    let (status, error, text) = send(&app, get("/health")).await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("STORAGE")), "{text}");
}
