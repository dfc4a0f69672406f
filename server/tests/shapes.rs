//! Shapes over HTTP, on both backends: a mutation's `shape` is stored with its record and handed
//! back on pulls and in conflicts; a `shape` that is not a whole number from 1 to the maximum
//! is a 400 naming the field; and a database from before schema 8 upgrades with its records'
//! shapes unknown.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};

use common::{config, config_with, pull, push, put, send, site, Backend};
use wharf::core::protocol::MAX_SHAPE;
use wharf_server::app::router;
use wharf_server::store::Storage;

fn shaped(id: &str, key: &str, shape: Value) -> Value {
    let mut m = put(id, "todos", key);
    m["shape"] = shape;
    m
}

async fn push_raw(app: &axum::Router, mutations: Vec<Value>) -> (StatusCode, Value, String) {
    let body = json!({"protocol": 2, "clientId": "c2", "mutations": mutations}).to_string();
    let request = Request::post("/push").header("content-type", "application/json").body(Body::from(body));
    send(app, request.unwrap()).await
}

fn shapes_of(page: &Value) -> Vec<Value> {
    page["changes"].as_array().unwrap().iter().map(|c| c.get("shape").cloned().unwrap_or(Value::Null)).collect()
}

backends!(a_mutations_shape_comes_back_on_pulls_and_conflicts);
async fn a_mutations_shape_comes_back_on_pulls_and_conflicts(backend: Backend) {
    let dir = site();
    let app = router(config(backend, dir.path(), None).await);
    push(&app, vec![shaped("m1", "a", json!(1)), shaped("m2", "b", json!(2)), put("m3", "todos", "c")], None).await;
    let (status, page, text) = pull(&app, "").await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(shapes_of(&page), [json!(1), json!(2), Value::Null], "absent: unknown, and left out");
    assert!(page["changes"][2].get("shape").is_none(), "an unknown shape is not sent as null");
    let mut stale = shaped("m4", "a", json!(2));
    stale["baseVersion"] = json!(0);
    let (status, answer, text) = push_raw(&app, vec![stale]).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(answer["results"][0]["status"], "conflict");
    assert_eq!(answer["results"][0]["shape"], json!(1), "the server's value is in shape 1");
}

backends!(a_shape_that_is_not_a_version_is_a_bad_request);
async fn a_shape_that_is_not_a_version_is_a_bad_request(backend: Backend) {
    let dir = site();
    let store = common::store(backend).await;
    let app = router(config_with(Arc::clone(&store), dir.path(), None));
    let absurd = u64::from(MAX_SHAPE) + 1;
    for bad in [json!(0), json!(-1), json!(1.5), json!("2"), json!(true), json!({}), json!(absurd), json!(1e300)] {
        let (status, answer, text) = push_raw(&app, vec![shaped("m1", "a", bad.clone())]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {text}");
        assert_eq!(answer["code"], "BAD_REQUEST", "{bad}: {text}");
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains("shape must be a whole number from 1 to 1000000"), "{bad}: {message}");
    }
    assert_eq!(store.latest_seq().await.unwrap(), 0, "nothing of those batches was applied");
    let (status, _, text) =
        push_raw(&app, vec![shaped("m1", "a", json!(MAX_SHAPE)), shaped("m2", "b", Value::Null)]).await;
    assert_eq!(status, StatusCode::OK, "the highest version, and null (unknown), are fine: {text}");
}

/// A store on a database of the schema before shapes (SQLite 6, PostgreSQL 7) holding one
/// record, opened (so upgraded) by this build.
async fn upgraded_store(backend: Backend, dir: &std::path::Path) -> Arc<dyn Storage> {
    let row = "INSERT INTO {records} (space, collection, key, value, version, seq, hlc, writer, writer_seq, written_at)
               VALUES ('shared', 'todos', '\"old\"', '{\"id\":\"old\"}', 1, 1, NULL, 'c0', 1, 0);";
    match backend {
        Backend::Sqlite => {
            let path = dir.join("v6.sqlite");
            drop(wharf_server::sqlite::SqliteStore::open(path.to_str().unwrap()).unwrap());
            let old = rusqlite::Connection::open(&path).unwrap();
            // Schema 6 is schema 8 without `shape` (schema.rs).
            old.execute_batch("ALTER TABLE records DROP COLUMN shape; PRAGMA user_version = 6;").unwrap();
            old.execute_batch(&row.replace("{records}", "records")).unwrap();
            old.execute_batch("UPDATE meta SET value = 1 WHERE name = 'last_seq';").unwrap();
            drop(old);
            wharf_server::sqlite::SqliteStore::open_shared(path.to_str().unwrap()).unwrap()
        }
        Backend::Postgres => common::pg_store_upgraded_from(7, &row.replace("{records}", "wharf_records"), 1).await,
    }
}

backends!(records_from_before_shapes_upgrade_with_their_shape_unknown);
async fn records_from_before_shapes_upgrade_with_their_shape_unknown(backend: Backend) {
    let dir = site();
    let store = upgraded_store(backend, dir.path()).await;
    let app = router(config_with(Arc::clone(&store), dir.path(), None));
    push(&app, vec![shaped("m1", "new", json!(3))], None).await;
    let (status, page, text) = pull(&app, "").await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let keys: Vec<&str> = page["changes"].as_array().unwrap().iter().map(|c| c["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["old", "new"]);
    assert_eq!(shapes_of(&page), [Value::Null, json!(3)]);
}
