//! Retention on every backend (`compaction.rs`): a pass removes the tombstones written before
//! the tombstone horizon and nothing newer, expires the cursors they were below (410 over HTTP),
//! and prunes the applied and rejected ledgers only beyond their own horizon. The `compact`
//! subcommand and `--compact-every` are driven through the binary in `process.rs`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;
use wharf::core::protocol::{Mutation, MutationResult};
use wharf::core::Key;
use wharf_server::app::router;
use wharf_server::compaction::{compact_once, Removed, Retention};
use wharf_server::store::{now_ms, Author, Cursor, Space, Storage, StoreError};

use common::{send, site, Backend};

const HOUR: Duration = Duration::from_secs(3600);
const YEAR: Duration = Duration::from_secs(365 * 86_400);

fn mutation(id: &str, op: &str, key: &str) -> Mutation {
    let mut m = json!({"id": id, "seq": 1, "collection": "todos", "key": key, "op": op});
    match op {
        "put" => m["value"] = json!({"id": key}),
        "patch" => m["patch"] = json!({"done": true}),
        _ => {}
    }
    serde_json::from_value(m).unwrap()
}

async fn push(store: &Arc<dyn Storage>, batch: &[Mutation]) -> Vec<MutationResult> {
    store.apply_push(Author::shared("c"), batch.to_vec()).await.unwrap().results
}

async fn exists(store: &Arc<dyn Storage>, key: &str) -> bool {
    store.record(Space::shared(), "todos".into(), Key::Text(key.into())).await.unwrap().is_some()
}

/// A moment between two groups of writes: the writes before it are older, the ones after newer
/// (the margins cover PostgreSQL's transaction time, which is when the transaction began).
async fn moment_between_writes() -> u64 {
    tokio::time::sleep(Duration::from_millis(50)).await;
    let moment = now_ms() as u64;
    tokio::time::sleep(Duration::from_millis(50)).await;
    moment
}

fn ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap()
}

backends!(tombstones_older_than_the_retention_go_and_the_cursors_below_them_answer_410);
async fn tombstones_older_than_the_retention_go_and_the_cursors_below_them_answer_410(backend: Backend) {
    let store = common::store(backend).await;
    push(&store, &[mutation("m1", "put", "a"), mutation("m2", "put", "b"), mutation("m3", "put", "c")]).await; // 1..=3
    push(&store, &[mutation("m4", "delete", "a")]).await; // 4: old
    let horizon_moment = moment_between_writes().await;
    push(&store, &[mutation("m5", "delete", "b")]).await; // 5: young

    // An hour after that moment, with an hour's retention: only the tombstone of "a" is older.
    let retention = Retention { tombstones: HOUR, ledgers: YEAR };
    let removed = compact_once(store.as_ref(), retention, horizon_moment + ms(HOUR)).await.unwrap();
    assert_eq!(removed, Removed { tombstones: 1, horizon: 4, applied: 0, rejected: 0 });
    assert!(!exists(&store, "a").await, "the old tombstone is gone");
    assert!(exists(&store, "b").await, "the young one stays");
    assert!(exists(&store, "c").await, "a live document of that age stays");

    // A client that pulled up to 3 may have missed the deletion of "a": 410, over HTTP too.
    let expired = store.pull(vec![Space::shared()], Cursor::at(3), 10, None).await;
    assert!(matches!(expired, Err(StoreError::CursorExpired(_))), "{expired:?}");
    let dir = site();
    let app = router(common::config_with(Arc::clone(&store), dir.path(), None));
    let (status, body, text) = send(&app, Request::get("/pull?cursor=3").body(Body::empty()).unwrap()).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::GONE, Some("CURSOR_EXPIRED")), "{text}");
    let (status, body, text) = send(&app, Request::get("/pull?cursor=4").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(body["changes"].as_array().map(Vec::len), Some(1), "the young tombstone of b: {text}");

    // Running again at the same time removes nothing more; the horizon stays.
    let again = compact_once(store.as_ref(), retention, horizon_moment + ms(HOUR)).await.unwrap();
    assert_eq!(again, Removed { tombstones: 0, horizon: 4, applied: 0, rejected: 0 });
    // Once the young tombstone is old enough, it goes too.
    let later = compact_once(store.as_ref(), retention, now_ms() as u64 + ms(HOUR) + 1000).await.unwrap();
    assert_eq!((later.tombstones, later.horizon), (1, 5));
    assert!(!exists(&store, "b").await);
}

backends!(ledgers_are_pruned_beyond_their_own_horizon_only);
async fn ledgers_are_pruned_beyond_their_own_horizon_only(backend: Backend) {
    let store = common::store(backend).await;
    let old = push(&store, &[mutation("m1", "put", "a"), mutation("r1", "patch", "nothing")]).await;
    assert!(matches!(old[1], MutationResult::Rejected { .. }), "{old:?}");
    push(&store, &[mutation("m2", "delete", "a")]).await; // a tombstone, as old as the ledger entries
    let ledger_moment = moment_between_writes().await;
    push(&store, &[mutation("m3", "put", "b"), mutation("r2", "patch", "nothing")]).await;

    // Tombstones are kept a year, the ledgers an hour: only the two old ledger entries and m2's go.
    let retention = Retention { tombstones: YEAR, ledgers: HOUR };
    let removed = compact_once(store.as_ref(), retention, ledger_moment + ms(HOUR)).await.unwrap();
    assert_eq!(removed, Removed { tombstones: 0, horizon: 0, applied: 2, rejected: 1 });
    assert_eq!(store.applied_count().await.unwrap(), 1, "m3 is remembered");
    assert!(exists(&store, "a").await, "the tombstone is within its own, longer retention");

    // The young entries still answer resends exactly.
    let resent = push(&store, &[mutation("m3", "put", "b"), mutation("r2", "patch", "nothing")]).await;
    assert!(matches!(resent[0], MutationResult::Duplicate { version: 1, .. }), "{resent:?}");
    assert!(matches!(resent[1], MutationResult::Rejected { .. }), "{resent:?}");
    // A forgotten op id is applied again: the risk the ledger retention bounds (docs/server.md).
    let forgotten = push(&store, &[mutation("m1", "put", "a")]).await;
    assert!(matches!(forgotten[0], MutationResult::Applied { version: 3, .. }), "{forgotten:?}");
}

/// A database of schema 5 (before `written_at`): one live record, one tombstone, one entry in
/// each ledger. `{records}`, `{applied}`, `{rejected}`: the backend's table names.
const VERSION_5_ROWS: &str = "
    INSERT INTO {records} (space, collection, key, value, version, seq, hlc, writer, writer_seq)
        VALUES ('shared', 'todos', '\"a\"', '{\"id\":\"a\"}', 1, 1, NULL, 'c1', 1),
               ('shared', 'todos', '\"b\"', NULL, 2, 2, NULL, 'c1', 3);
    INSERT INTO {applied} (author, client_id, id, version) VALUES ('shared', 'c1', 'm1', 1);
    INSERT INTO {rejected} (author, client_id, id, code, message) VALUES ('shared', 'c1', 'r1', 'NOT_FOUND', 'no');
";

/// The SQLite tables of schema 5, as that build created them.
const SQLITE_VERSION_5: &str = "
    CREATE TABLE records (space TEXT NOT NULL, collection TEXT NOT NULL, key TEXT NOT NULL, value TEXT,
        version INTEGER NOT NULL, seq INTEGER NOT NULL, hlc TEXT, writer TEXT, writer_seq INTEGER,
        PRIMARY KEY (space, collection, key));
    CREATE TABLE rejected_mutations (author TEXT NOT NULL, client_id TEXT NOT NULL, id TEXT NOT NULL,
        code TEXT NOT NULL, message TEXT NOT NULL, PRIMARY KEY (author, client_id, id));
    CREATE TABLE applied_mutations (author TEXT NOT NULL, client_id TEXT NOT NULL, id TEXT NOT NULL,
        version INTEGER NOT NULL, PRIMARY KEY (author, client_id, id));
    CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    CREATE TABLE client_owners (client_id TEXT PRIMARY KEY, user_id TEXT NOT NULL);
    CREATE UNIQUE INDEX records_by_seq ON records (seq);
    CREATE INDEX records_by_space_seq ON records (space, seq);
    INSERT INTO meta VALUES ('last_seq', 2), ('compacted_through', 0), ('compacted_version', 0);
    PRAGMA user_version = 5;
";

/// A store opened (so upgraded) on a schema-5 database holding [`VERSION_5_ROWS`].
async fn upgraded_version_5_store(backend: Backend, dir: &std::path::Path) -> Arc<dyn Storage> {
    let rows = |records: &str, applied: &str, rejected: &str| {
        VERSION_5_ROWS.replace("{records}", records).replace("{applied}", applied).replace("{rejected}", rejected)
    };
    match backend {
        Backend::Sqlite => {
            let path = dir.join("v5.sqlite");
            let old = rusqlite::Connection::open(&path).unwrap();
            old.execute_batch(SQLITE_VERSION_5).unwrap();
            old.execute_batch(&rows("records", "applied_mutations", "rejected_mutations")).unwrap();
            drop(old);
            wharf_server::sqlite::SqliteStore::open_shared(path.to_str().unwrap()).unwrap()
        }
        Backend::Postgres => {
            let rows = rows("wharf_records", "wharf_applied_mutations", "wharf_rejected_mutations");
            common::pg_store_upgraded_from(5, &rows, 2).await
        }
    }
}

backends!(rows_from_before_write_times_count_from_the_upgrade);
async fn rows_from_before_write_times_count_from_the_upgrade(backend: Backend) {
    let dir = site();
    let before = now_ms() as u64 - 1000; // PostgreSQL's clock reads transaction start, to the µs
    let store = upgraded_version_5_store(backend, dir.path()).await;
    let after = now_ms() as u64 + 1000;
    // Not as old as time itself: nothing goes at the first pass after the upgrade...
    assert_eq!(store.tombstones_written_before(before).await.unwrap(), 0);
    assert_eq!(store.prune_ledgers(before).await.unwrap(), (0, 0));
    // ...and everything from before it counts from the upgrade.
    assert_eq!(store.tombstones_written_before(after).await.unwrap(), 2, "the tombstone of b, at seq 2");
    assert_eq!(store.compact(3).await.unwrap(), (1, 2));
    assert_eq!(store.prune_ledgers(after).await.unwrap(), (1, 1));
    assert!(exists(&store, "a").await, "a live document is never compacted");
}

// The horizon is global (docs/server.md, "Retention"): a user whose own space has not changed
// since before it keeps a cursor below it however often they pull, so another user's old
// tombstone going costs them one full pull of their space.
backends!(the_horizon_is_global_so_a_quiet_users_cursor_expires_with_another_users_tombstone);
async fn the_horizon_is_global_so_a_quiet_users_cursor_expires_with_another_users_tombstone(backend: Backend) {
    let dir = site();
    let store = common::store(backend).await;
    let app = router(common::with_users(common::config_with(Arc::clone(&store), dir.path(), None)));
    let (alice, bob) = (common::user_token("alice"), common::user_token("bob"));
    common::push_as(&app, "alice-phone", vec![common::put("m1", "todos", "a")], Some(&alice)).await; // 1
    let bobs = vec![common::put("m1", "todos", "b"), common::delete("m2", "todos", "b")]; // 2, 3
    common::push_as(&app, "bob-laptop", bobs, Some(&bob)).await;
    let moment = moment_between_writes().await;
    let alices_cursor = common::pull_as(&app, &alice, "").await["cursor"].as_str().unwrap().to_owned();
    assert_eq!(alices_cursor, "1", "other spaces' changes do not move a cursor");

    let retention = Retention { tombstones: HOUR, ledgers: YEAR };
    let removed = compact_once(store.as_ref(), retention, moment + ms(HOUR)).await.unwrap();
    assert_eq!((removed.tombstones, removed.horizon), (1, 3), "bob's tombstone");
    let request =
        Request::get(format!("/pull?cursor={alices_cursor}")).header("authorization", format!("Bearer {alice}"));
    let (status, _, text) = send(&app, request.body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::GONE, "alice pulled just now, yet resyncs: {text}");
    let fresh = common::pull_as(&app, &alice, "").await;
    assert_eq!(fresh["changes"].as_array().map(Vec::len), Some(1), "her space, whole: {fresh}");
}
