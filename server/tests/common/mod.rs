//! Helpers shared by the integration tests: the storage backends (every protocol test runs once
//! per backend, see [`backends!`]), a server configuration, in-process requests, and pushes.
#![allow(dead_code)] // each test file uses its own subset

pub mod pg;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use wharf_server::auth::{Authenticator, JwtSettings, JwtVerifier};
use wharf_server::config::Config;
use wharf_server::counters::Counters;
use wharf_server::faults::{FaultSettings, Faults};
use wharf_server::live_hub::Live;
use wharf_server::metrics::Metrics;
use wharf_server::postgres::{PgOptions, PgStore};
use wharf_server::sqlite::SqliteStore;
use wharf_server::store::Storage;

/// Defines `name::sqlite` and `name::postgres`, two tokio tests that each run
/// `async fn name(backend: Backend)` on one backend. Extra arguments go to `#[tokio::test(…)]`:
/// `backends!(name, flavor = "multi_thread", worker_threads = 4);`.
#[macro_export]
macro_rules! backends {
    ($test:ident $(, $($arg:tt)+)?) => {
        mod $test {
            #[tokio::test$(($($arg)+))?]
            async fn sqlite() {
                super::$test(super::common::Backend::Sqlite).await
            }
            #[tokio::test$(($($arg)+))?]
            async fn postgres() {
                super::$test(super::common::Backend::Postgres).await
            }
        }
    };
}

/// A storage backend under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite in memory.
    Sqlite,
    /// A fresh database on the test PostgreSQL (`pg.rs`).
    Postgres,
}

/// Connection pool size of the stores the tests open.
pub const TEST_POOL: usize = 8;

/// A new, empty store.
pub async fn store(backend: Backend) -> Arc<dyn Storage> {
    match backend {
        Backend::Sqlite => SqliteStore::open_shared(":memory:").unwrap(),
        Backend::Postgres => pg_store(&pg::database().await, PgOptions::default()).await,
    }
}

/// A PostgreSQL store on `url` (an instance: several may share one database).
/// A PostgreSQL store on a fresh database built to schema `version` (its first `version`
/// migrations) and holding `rows` (SQL over the `wharf_*` tables, `last_seq` the highest seq
/// among them), opened, and so upgraded, by this build: the upgrade tests of each schema step.
pub async fn pg_store_upgraded_from(version: usize, rows: &str, last_seq: u64) -> Arc<dyn Storage> {
    let url = pg::database().await;
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client.batch_execute("CREATE TABLE wharf_meta (name text PRIMARY KEY, value bigint NOT NULL)").await.unwrap();
    for step in &wharf_server::pg_schema::MIGRATIONS[..version] {
        client.batch_execute(step).await.unwrap();
    }
    client.batch_execute(rows).await.unwrap();
    let meta = format!(
        "UPDATE wharf_meta SET value = {last_seq} WHERE name = 'last_seq';
         INSERT INTO wharf_meta VALUES ('schema_version', {version});"
    );
    client.batch_execute(&meta).await.unwrap();
    pg_store(&url, PgOptions::default()).await
}

pub async fn pg_store(url: &str, options: PgOptions) -> Arc<dyn Storage> {
    let options = PgOptions { pool_size: TEST_POOL, ..options };
    PgStore::connect_shared(url, options).await.unwrap_or_else(|e| panic!("cannot open {url}: {e}"))
}

/// A server configuration over `store`.
pub fn config_with(store: Arc<dyn Storage>, dir: &Path, token: Option<&str>) -> Config {
    Config {
        store,
        auth: token.map_or_else(Authenticator::none, Authenticator::token),
        bind_client_ids: true,
        max_body_bytes: 1 << 20,
        max_batch: 1000,
        www: dir.join("www"),
        pkg: dir.join("pkg"),
        cors_origins: vec!["http://localhost:5173".into()],
        faults: None,
        counters: Counters::default(),
        live: Live::new(Duration::from_secs(15)),
        metrics: Metrics::default(),
    }
}

/// A server configuration over a new, empty store of `backend`.
pub async fn config(backend: Backend, dir: &Path, token: Option<&str>) -> Config {
    config_with(store(backend).await, dir, token)
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

/// The HS256 secret of [`with_users`] (protects nothing).
pub const JWT_SECRET: &str = "a test secret of at least 32 bytes, not a real one";
/// The development token of [`with_users`].
pub const DEV_TOKEN: &str = "dev-token";

/// `config` accepting JWTs signed with [`JWT_SECRET`] (mint them with [`user_token`]) and the
/// development token [`DEV_TOKEN`].
pub fn with_users(mut config: Config) -> Config {
    let settings = JwtSettings { secret: Some(JWT_SECRET.into()), ..Default::default() };
    let jwt = JwtVerifier::new(&settings).unwrap().expect("a key is configured");
    config.auth = Authenticator::new(Some(DEV_TOKEN.into()), Some(jwt));
    config
}

/// An HS256 JWT for user `sub`, valid for an hour.
pub fn user_token(sub: &str) -> String {
    granted_token(sub, Value::Null)
}

/// An HS256 JWT for user `sub` with the `spaces` claim `spaces` (none when null), valid for an
/// hour.
pub fn granted_token(sub: &str, spaces: Value) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let mut claims = json!({"sub": sub, "exp": now + 3600});
    if !spaces.is_null() {
        claims["spaces"] = spaces;
    }
    let key = jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()).unwrap();
    jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), &claims, &key).unwrap()
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

/// Pushes `mutations` as client `c1` and asserts the push was answered 200.
pub async fn push(app: &axum::Router, mutations: Vec<Value>, token: Option<&str>) -> Value {
    push_as(app, "c1", mutations, token).await
}

/// Pushes `mutations` as `client_id` and asserts the push was answered 200.
pub async fn push_as(app: &axum::Router, client_id: &str, mutations: Vec<Value>, token: Option<&str>) -> Value {
    let body = json!({"protocol": 1, "clientId": client_id, "mutations": mutations}).to_string();
    let mut request = Request::post("/push").header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let (status, answer, text) = send(app, request.body(Body::from(body)).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    answer
}

/// `GET /pull?{query}` with `token`, answered 200: the page.
pub async fn pull_as(app: &axum::Router, token: &str, query: &str) -> Value {
    let request = Request::get(format!("/pull?{query}")).header("authorization", format!("Bearer {token}"));
    let (status, page, text) = send(app, request.body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{query}: {text}");
    page
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

/// Serves `app` on a loopback port (for WebSockets and real HTTP); returns the address.
pub async fn serve(app: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}
