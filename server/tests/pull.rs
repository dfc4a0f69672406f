//! `GET /pull` driven in process: paging, tombstones, collection filters, compaction and
//! `410 CURSOR_EXPIRED`, parameter errors, auth, no change skipped under concurrent pushes, and
//! a database written by the push-only server pulled after migration.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

use common::{config, delete, pull, push, put, send, site, with_debug_routes, Backend};
use wharf::core::protocol::MutationResult;
use wharf_server::app::router;
use wharf_server::sqlite::SqliteStore;
use wharf_server::store::{Author, Cursor, Space, Storage};

fn keys_of(page: &Value) -> Vec<String> {
    page["changes"].as_array().unwrap().iter().map(|c| c["key"].as_str().unwrap().to_owned()).collect()
}

backends!(paging_2500_changes_returns_every_key_once_in_seq_order);
async fn paging_2500_changes_returns_every_key_once_in_seq_order(backend: Backend) {
    let dir = site();
    let app = router(config(backend, dir.path(), None).await);
    let mut order: Vec<String> = Vec::new(); // keys in the order of their last write
    for batch in 0..5 {
        let keys: Vec<String> = (0..500).map(|i| format!("k{:04}", batch * 500 + i)).collect();
        let mutations = keys.iter().map(|k| put(&format!("m-{k}"), "todos", k)).collect();
        push(&app, mutations, None).await;
        order.extend(keys);
    }
    // Rewrite ten early keys: they move to the end, and still appear once.
    let rewritten: Vec<String> = (0..10).map(|i| format!("k{:04}", i * 7)).collect();
    push(&app, rewritten.iter().map(|k| put(&format!("again-{k}"), "todos", k)).collect(), None).await;
    order.retain(|k| !rewritten.contains(k));
    order.extend(rewritten);

    let (mut cursor, mut seen, mut flags) = (String::new(), Vec::new(), Vec::new());
    loop {
        let (status, page, text) = pull(&app, &format!("cursor={cursor}&limit=1000")).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert_eq!(page["protocol"], 1);
        seen.extend(keys_of(&page));
        flags.push(page["hasMore"].as_bool().unwrap());
        cursor = page["cursor"].as_str().unwrap().to_owned();
        if flags.last() == Some(&false) {
            break;
        }
    }
    assert_eq!(flags, vec![true, true, false], "2,500 changes in pages of 1,000");
    assert_eq!(seen.len(), 2500);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 2500, "every key exactly once");
    assert_eq!(seen, order, "in seq order: the order of each key's last write");
    assert_eq!(cursor, "2510");
    let (_, page, _) = pull(&app, &format!("cursor={cursor}")).await;
    assert_eq!(page, json!({"protocol": 1, "changes": [], "cursor": "2510", "hasMore": false}));
    let (_, page, _) = pull(&app, "").await;
    assert_eq!((keys_of(&page).len(), &page["hasMore"]), (500, &json!(true)), "the default limit is 500");
}

backends!(a_delete_is_a_change_with_value_null_and_hlc_travels);
async fn a_delete_is_a_change_with_value_null_and_hlc_travels(backend: Backend) {
    let dir = site();
    let app = router(config(backend, dir.path(), None).await);
    let mut stamped = put("m2", "todos", "b");
    stamped["hlc"] = json!("0000000003e80001-c1");
    push(&app, vec![put("m1", "todos", "a"), stamped], None).await;
    push(&app, vec![delete("m3", "todos", "a")], None).await;
    let (status, page, text) = pull(&app, "cursor=").await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(
        page,
        json!({"protocol": 1, "cursor": "3", "hasMore": false, "changes": [
            {"collection": "todos", "key": "b", "value": {"id": "b"}, "version": 1, "hlc": "0000000003e80001-c1"},
            {"collection": "todos", "key": "a", "value": null, "version": 2},
        ]})
    );
    let (_, page, _) = pull(&app, "cursor=1").await;
    assert_eq!(keys_of(&page), vec!["b", "a"]);
    let (_, page, _) = pull(&app, "cursor=0&limit=1").await;
    assert_eq!((keys_of(&page), &page["cursor"], &page["hasMore"]), (vec!["b".into()], &json!("2"), &json!(true)));
}

backends!(the_collections_filter_returns_only_those_collections);
async fn the_collections_filter_returns_only_those_collections(backend: Backend) {
    let dir = site();
    let app = router(config(backend, dir.path(), None).await);
    push(&app, vec![put("m1", "todos", "t1"), put("m2", "notes", "n1"), put("m3", "tags", "g1")], None).await;
    push(&app, vec![put("m4", "notes", "n2"), delete("m5", "todos", "t1")], None).await;
    let (_, page, _) = pull(&app, "collections=notes").await;
    assert_eq!((keys_of(&page), &page["cursor"]), (vec!["n1".into(), "n2".into()], &json!("4")));
    let (_, page, _) = pull(&app, "collections=todos,tags").await;
    assert_eq!(keys_of(&page), vec!["g1", "t1"]);
    let (_, page, _) = pull(&app, "collections=nothing").await;
    assert_eq!((page["changes"].clone(), &page["cursor"]), (json!([]), &json!("0")), "no change: cursor stays");
    let (_, page, _) = pull(&app, "collections=todos%2Cnotes&cursor=2").await;
    assert_eq!(keys_of(&page), vec!["n2", "t1"], "a URL-encoded comma works too");
}

fn compact(before: &str) -> Request<Body> {
    Request::post("/debug/compact")
        .header("content-type", "application/json")
        .body(Body::from(json!({"beforeCursor": before}).to_string()))
        .unwrap()
}

backends!(a_cursor_below_the_compaction_horizon_is_gone_and_a_fresh_pull_still_works);
async fn a_cursor_below_the_compaction_horizon_is_gone_and_a_fresh_pull_still_works(backend: Backend) {
    let dir = site();
    let app = router(with_debug_routes(config(backend, dir.path(), None).await));
    push(&app, vec![put("m1", "todos", "a"), put("m2", "todos", "b"), put("m3", "todos", "c")], None).await;
    push(&app, vec![delete("m4", "todos", "a"), delete("m5", "todos", "b")], None).await; // seqs 4, 5
    push(&app, vec![put("m6", "todos", "d")], None).await; // 6
    let (status, answer, text) = send(&app, compact("6")).await;
    assert_eq!((status, answer), (StatusCode::OK, json!({"deleted": 2, "compactedThrough": "5"})), "{text}");
    for old in ["1", "3", "4"] {
        let (status, error, text) = pull(&app, &format!("cursor={old}")).await;
        assert_eq!(status, StatusCode::GONE, "{old}: {text}");
        assert_eq!((error["protocol"].as_u64(), error["code"].as_str()), (Some(2), Some("CURSOR_EXPIRED")));
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    for fresh in ["", "cursor=", "cursor=0"] {
        let (status, page, text) = pull(&app, fresh).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert_eq!(keys_of(&page), vec!["c", "d"], "{fresh:?}: no compacted tombstone comes back");
        assert!(page["changes"].as_array().unwrap().iter().all(|c| !c["value"].is_null()));
    }
    let (status, page, _) = pull(&app, "cursor=5").await;
    assert_eq!((status, keys_of(&page)), (StatusCode::OK, vec!["d".into()]), "at the horizon: fine");
    // A cursor this server never issued (say, from before a reset) is gone too.
    let (status, error, _) = pull(&app, "cursor=99").await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::GONE, Some("CURSOR_EXPIRED")));
    for bad in [json!({}), json!({"beforeCursor": 3}), json!({"beforeCursor": "x"}), json!({"before": "3"})] {
        let request = Request::post("/debug/compact").body(Body::from(bad.to_string())).unwrap();
        let (status, _, _) = send(&app, request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let plain = router(config(backend, dir.path(), None).await);
    assert_eq!(send(&plain, compact("6")).await.0, StatusCode::NOT_FOUND, "only with --faults");
}

backends!(malformed_cursor_limit_or_collections_are_400);
async fn malformed_cursor_limit_or_collections_are_400(backend: Backend) {
    let dir = site();
    let app = router(config(backend, dir.path(), None).await);
    for query in [
        "cursor=abc",
        "cursor=-1",
        "cursor=1.5.2", // "1.5" is a cursor (seq 1 of a pull that began at horizon 5)
        "cursor=1.",
        "cursor=99999999999999999999999",
        "limit=0",
        "limit=1001",
        "limit=ten",
        "limit=",
        "collections=",
        "collections=a,,b",
        "cursor=1&cursor=2",
        "since=4",
    ] {
        let (status, error, text) = pull(&app, query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {text}");
        assert_eq!((error["protocol"].as_u64(), error["code"].as_str()), (Some(2), Some("BAD_REQUEST")), "{query}");
    }
    let (status, _, _) = pull(&app, "limit=1000&cursor=0").await;
    assert_eq!(status, StatusCode::OK);
}

backends!(pull_requires_the_token_when_configured_and_answers_cors);
async fn pull_requires_the_token_when_configured_and_answers_cors(backend: Backend) {
    let dir = site();
    let app = router(config(backend, dir.path(), Some("s3cret")).await);
    push(&app, vec![put("m1", "todos", "a")], Some("s3cret")).await;
    let (status, error, _) = pull(&app, "").await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("UNAUTHORIZED")));
    let wrong = Request::get("/pull").header("authorization", "Bearer nope!").body(Body::empty()).unwrap();
    assert_eq!(send(&app, wrong).await.0, StatusCode::UNAUTHORIZED);
    let (status, _, _) = pull(&app, "token=s3cret").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the query token is for /live only");
    let right = Request::get("/pull")
        .header("authorization", "Bearer s3cret")
        .header("origin", "http://localhost:5173")
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(right).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["access-control-allow-origin"], "http://localhost:5173");
    assert_eq!(
        response.headers()["access-control-expose-headers"],
        "retry-after,date",
        "cross-origin clients see Retry-After and Date"
    );
    assert_eq!(response.headers()["cache-control"], "no-store");
    let preflight = Request::builder()
        .method("OPTIONS")
        .uri("/pull?cursor=1")
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(preflight).await.unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], "http://localhost:5173");
}

/// Applies a page to a replica: latest state per key.
fn apply(replica: &mut HashMap<String, (u64, Value)>, page: &Value) {
    for change in page["changes"].as_array().unwrap() {
        let id = format!("{}/{}", change["collection"], change["key"]);
        let version = change["version"].as_u64().unwrap();
        if replica.get(&id).is_none_or(|(v, _)| *v < version) {
            replica.insert(id, (version, change["value"].clone()));
        }
    }
}

async fn drain(app: &axum::Router, cursor: &mut String, replica: &mut HashMap<String, (u64, Value)>) {
    loop {
        let (status, page, text) = pull(app, &format!("cursor={cursor}&limit=37")).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        apply(replica, &page);
        *cursor = page["cursor"].as_str().unwrap().to_owned();
        if page["hasMore"] == json!(false) {
            return;
        }
    }
}

backends!(a_puller_racing_concurrent_pushes_never_skips_a_change, flavor = "multi_thread", worker_threads = 4);
async fn a_puller_racing_concurrent_pushes_never_skips_a_change(backend: Backend) {
    let dir = site();
    let app = router(config(backend, dir.path(), None).await);
    let done = Arc::new(AtomicBool::new(false));
    let puller = {
        let (app, done) = (app.clone(), Arc::clone(&done));
        tokio::spawn(async move {
            let (mut cursor, mut replica) = (String::new(), HashMap::new());
            let mut rounds = 0;
            while !done.load(Ordering::Acquire) {
                drain(&app, &mut cursor, &mut replica).await;
                rounds += 1;
                tokio::task::yield_now().await;
            }
            drain(&app, &mut cursor, &mut replica).await;
            (replica, rounds)
        })
    };
    let pushers: Vec<_> = (0..6)
        .map(|writer| {
            let app = app.clone();
            tokio::spawn(async move {
                for batch in 0..30 {
                    // Mostly new keys (a skipped one would never come back), some rewrites and deletes.
                    let mut mutations: Vec<Value> = (0..4)
                        .map(|i| {
                            put(
                                &format!("w{writer}-{batch}-{i}"),
                                &format!("c{}", i % 2),
                                &format!("w{writer}-{batch}-{i}"),
                            )
                        })
                        .collect();
                    if batch > 0 {
                        let earlier = format!("w{writer}-{}-0", batch - 1);
                        mutations.push(if batch % 3 == 0 {
                            delete(&format!("del-{earlier}"), "c0", &earlier)
                        } else {
                            put(&format!("re-{earlier}"), "c0", &earlier)
                        });
                    }
                    push(&app, mutations, None).await;
                }
            })
        })
        .collect();
    for pusher in pushers {
        pusher.await.unwrap();
    }
    done.store(true, Ordering::Release);
    let (replica, rounds) = puller.await.unwrap();
    let (mut truth, mut cursor) = (HashMap::new(), String::new());
    drain(&app, &mut cursor, &mut truth).await;
    assert_eq!(truth.len(), 6 * 30 * 4);
    assert!(rounds > 1, "the puller ran while pushes were landing");
    assert_eq!(replica, truth, "the racing puller holds every final record");
}

/// The push-only server's statements (schema version 0).
const VERSION_0: &str = "
    CREATE TABLE IF NOT EXISTS records (
        collection TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT,
        version INTEGER NOT NULL,
        PRIMARY KEY (collection, key)
    );
    CREATE TABLE IF NOT EXISTS rejected_mutations (
        id TEXT PRIMARY KEY,
        client_id TEXT NOT NULL,
        code TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS applied_mutations (
        id TEXT PRIMARY KEY,
        client_id TEXT NOT NULL,
        version INTEGER NOT NULL
    );
";

/// SQLite only: the push-only server never ran on PostgreSQL.
#[tokio::test]
async fn a_database_from_the_push_only_server_is_migrated_and_pulled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.sqlite");
    {
        let old = rusqlite::Connection::open(&path).unwrap();
        old.execute_batch(VERSION_0).unwrap();
        old.execute_batch(
            r#"INSERT INTO records VALUES ('todos', '"a"', '{"id":"a","n":1}', 2);
               INSERT INTO records VALUES ('todos', '7', NULL, 3);
               INSERT INTO records VALUES ('notes', '"x"', '{"id":"x"}', 1);
               INSERT INTO applied_mutations VALUES ('old-1', 'c', 2);"#,
        )
        .unwrap();
    }
    let path = path.to_str().unwrap();
    let store = SqliteStore::open(path).unwrap();
    let (changes, cursor, more) = store.pull_blocking(&[Space::shared()], Cursor::default(), 10, None).unwrap();
    let got: Vec<Value> = changes.iter().map(|c| serde_json::to_value(c).unwrap()).collect();
    assert_eq!(
        got,
        vec![
            json!({"collection": "todos", "key": "a", "value": {"id": "a", "n": 1}, "version": 2, "space": "shared"}),
            json!({"collection": "todos", "key": 7, "value": null, "version": 3, "space": "shared"}),
            json!({"collection": "notes", "key": "x", "value": {"id": "x"}, "version": 1, "space": "shared"}),
        ]
    );
    assert_eq!((cursor, more), (Cursor::at(3), false));
    // New writes continue after the backfilled seqs; the old ledger still dedupes.
    let mutation = |id: &str| serde_json::from_value(put(id, "todos", "b")).unwrap();
    let results = store
        .apply_push_blocking(&Author::shared("c"), &[mutation("old-1"), mutation("new-1")], false)
        .unwrap()
        .results;
    assert_eq!(results[0], MutationResult::Duplicate { id: "old-1".into(), version: 2 });
    assert_eq!(results[1], MutationResult::Applied { id: "new-1".into(), version: 1 });
    assert_eq!(store.pull_blocking(&[Space::shared()], Cursor::at(3), 10, None).unwrap().1, Cursor::at(4));
    drop(store);
    let reopened = SqliteStore::open(path).unwrap();
    assert_eq!(
        (
            reopened.latest_seq().await.unwrap(),
            reopened.pull_blocking(&[Space::shared()], Cursor::default(), 10, None).unwrap().0.len()
        ),
        (4, 4)
    );
    let version: i64 =
        rusqlite::Connection::open(path).unwrap().query_row("PRAGMA user_version", [], |row| row.get(0)).unwrap();
    assert_eq!(version, wharf_server::schema::SCHEMA_VERSION);
}
