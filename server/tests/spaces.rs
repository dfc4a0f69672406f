//! Private spaces, through the router in process (and real sockets for `/live`), on both
//! backends: a JWT user reads, writes and hears of only a space of its own, whatever keys, op
//! ids, client ids and cursors it sends; the shared principals (anonymous and the development
//! token) keep one space together; a database from before spaces (schema v4) keeps its documents
//! and ledger in that shared space.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use common::{pg, pull_as, push_as, put, send, site, user_token, with_users, Backend, DEV_TOKEN};
use wharf::core::Key;
use wharf_server::app::router;
use wharf_server::postgres::PgOptions;
use wharf_server::sqlite::SqliteStore;
use wharf_server::store::{Space, Storage};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A router accepting user JWTs and the development token, with its store.
async fn app(backend: Backend, dir: &std::path::Path) -> (axum::Router, Arc<dyn Storage>) {
    let store = common::store(backend).await;
    (router(with_users(common::config_with(Arc::clone(&store), dir, None))), store)
}

/// The changes of a page as `collection/key vN value`, in order.
fn changes(page: &Value) -> Vec<String> {
    let list = page["changes"].as_array().unwrap_or_else(|| panic!("not a page: {page}"));
    list.iter().map(|c| format!("{}/{} v{} {}", c["collection"], c["key"], c["version"], c["value"])).collect()
}

fn results(answer: &Value) -> Vec<Value> {
    answer["results"].as_array().unwrap_or_else(|| panic!("not a push answer: {answer}")).clone()
}

fn patch(id: &str, key: &str, base: Option<u64>) -> Value {
    let mut m = json!({"id": id, "seq": 1, "collection": "todos", "key": key, "op": "patch", "patch": {"done": true}});
    if let Some(base) = base {
        m["baseVersion"] = json!(base);
    }
    m
}

fn put_value(id: &str, key: Value, value: Value, base: Option<u64>) -> Value {
    let mut m = json!({"id": id, "seq": 1, "collection": "todos", "key": key, "op": "put", "value": value});
    if let Some(base) = base {
        m["baseVersion"] = json!(base);
    }
    m
}

backends!(a_user_can_neither_read_nor_overwrite_another_users_documents);
async fn a_user_can_neither_read_nor_overwrite_another_users_documents(backend: Backend) {
    let dir = site();
    let (app, _) = app(backend, dir.path()).await;
    let (alice, bob) = (user_token("alice"), user_token("bob"));
    let alices = vec![
        put_value("a1", json!("a"), json!({"owner": "alice"}), None),
        put_value("a2", json!(7), json!({"owner": "alice"}), None),
        put("a3", "notes", "n"),
        patch("a4", "a", Some(1)),
    ];
    push_as(&app, "alice-phone", alices, Some(&alice)).await;
    let alice_view = pull_as(&app, &alice, "").await;
    assert_eq!(alice_view["changes"].as_array().map(Vec::len), Some(3), "{alice_view}");
    let alice_cursor = alice_view["cursor"].as_str().unwrap().to_owned();

    // Whatever cursor, collections or page size bob sends, he reads nothing of alice's.
    let mut queries = vec![String::new(), format!("cursor={alice_cursor}"), "collections=todos,notes".into()];
    queries.extend((0..=4).map(|seq| format!("cursor={seq}&limit=1")));
    for query in &queries {
        let page = pull_as(&app, &bob, query).await;
        assert_eq!(changes(&page), Vec::<String>::new(), "bob pulled {query:?}: {page}");
        assert_eq!(page["hasMore"], false, "{query}");
    }

    // Bob's writes to the same keys land in his space: a base version of alice's is one the
    // server never gave him (a conflict that shows nothing of hers), a blind write creates his
    // own document, his delete removes nothing of hers, his patch finds nothing.
    let bobs = vec![
        put_value("b1", json!("a"), json!({"owner": "bob"}), Some(2)),
        put_value("b2", json!("a"), json!({"owner": "bob"}), None),
        common::delete("b3", "notes", "n"),
        patch("b4", "7", None),
    ];
    let answer = push_as(&app, "bob-laptop", bobs, Some(&bob)).await;
    let answer = results(&answer);
    assert_eq!(answer[0], json!({"id": "b1", "status": "conflict", "version": 0, "value": null}), "{answer:?}");
    assert_eq!(answer[1], json!({"id": "b2", "status": "applied", "version": 1}));
    assert_eq!(answer[2], json!({"id": "b3", "status": "applied", "version": 1}));
    assert_eq!((answer[3]["status"].as_str(), answer[3]["code"].as_str()), (Some("rejected"), Some("NOT_FOUND")));
    // Nor can bob push as alice's client.
    let body = json!({"protocol": 1, "clientId": "alice-phone", "mutations": [put("b5", "todos", "a")]});
    let request = Request::post("/push")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {bob}"));
    let (status, _, text) = send(&app, request.body(Body::from(body.to_string())).unwrap()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");

    assert_eq!(
        changes(&pull_as(&app, &bob, "").await),
        vec![r#""todos"/"a" v1 {"owner":"bob"}"#, r#""notes"/"n" v1 null"#]
    );
    assert_eq!(
        changes(&pull_as(&app, &alice, "").await),
        vec![
            r#""todos"/7 v1 {"owner":"alice"}"#,
            r#""notes"/"n" v1 {"id":"n"}"#,
            r#""todos"/"a" v2 {"done":true,"owner":"alice"}"#
        ],
        "alice's documents are as she left them"
    );
    let after = pull_as(&app, &alice, &format!("cursor={alice_cursor}")).await;
    assert_eq!(changes(&after), Vec::<String>::new(), "bob's writes are no change of alice's: {after}");
}

backends!(the_same_key_written_by_two_users_is_two_documents_with_their_own_versions);
async fn the_same_key_written_by_two_users_is_two_documents_with_their_own_versions(backend: Backend) {
    let dir = site();
    let (app, store) = app(backend, dir.path()).await;
    let (alice, bob) = (user_token("alice"), user_token("bob"));
    for (token, client, owner) in [(&alice, "alice-phone", "alice"), (&bob, "bob-laptop", "bob")] {
        let answer =
            push_as(&app, client, vec![put_value("m1", json!("k"), json!({"owner": owner}), None)], Some(token)).await;
        assert_eq!(results(&answer), vec![json!({"id": "m1", "status": "applied", "version": 1})], "{owner}");
    }
    // Each document's version checks are its own: bob's version 1 is not alice's, and a second
    // client of bob's based on his version 1 is not stale.
    let alice_again = push_as(
        &app,
        "alice-phone",
        vec![put_value("m2", json!("k"), json!({"owner": "alice", "n": 2}), Some(1))],
        Some(&alice),
    )
    .await;
    assert_eq!(results(&alice_again)[0]["status"], "applied");
    let bob_again = push_as(
        &app,
        "bob-tablet",
        vec![put_value("m2", json!("k"), json!({"owner": "bob", "n": 2}), Some(1))],
        Some(&bob),
    )
    .await;
    assert_eq!(results(&bob_again)[0], json!({"id": "m2", "status": "applied", "version": 2}));
    for owner in ["alice", "bob"] {
        let record = store.record(Space::of_user(owner), "todos".into(), Key::Text("k".into())).await.unwrap();
        assert_eq!(record.map(|r| (r.version, r.value)), Some((2, Some(json!({"owner": owner, "n": 2})))), "{owner}");
    }
    let shared = store.record(Space::shared(), "todos".into(), Key::Text("k".into())).await.unwrap();
    assert_eq!(shared, None, "nothing in the shared space");
    assert_eq!(changes(&pull_as(&app, DEV_TOKEN, "").await), Vec::<String>::new(), "the development user sees neither");
}

backends!(an_op_id_another_user_used_is_applied_for_the_caller_not_answered_from_the_other_ledger);
async fn an_op_id_another_user_used_is_applied_for_the_caller_not_answered_from_the_other_ledger(backend: Backend) {
    let dir = site();
    let (app, _) = app(backend, dir.path()).await;
    let (alice, bob) = (user_token("alice"), user_token("bob"));
    let answer =
        push_as(&app, "alice-phone", vec![put("m1", "todos", "a"), patch("bad", "nothing", None)], Some(&alice)).await;
    assert_eq!(results(&answer)[0]["status"], "applied");
    assert_eq!(results(&answer)[1]["code"], "NOT_FOUND");
    // Bob's ops with alice's ids: his own answers, applied in his space.
    let bobs = vec![put("m1", "todos", "b"), put("m1", "todos", "b"), put("bad", "todos", "c")];
    let answer = push_as(&app, "bob-laptop", bobs.clone(), Some(&bob)).await;
    assert_eq!(
        results(&answer),
        vec![
            json!({"id": "m1", "status": "applied", "version": 1}),
            json!({"id": "m1", "status": "duplicate", "version": 1}),
            json!({"id": "bad", "status": "applied", "version": 1}),
        ]
    );
    assert_eq!(
        changes(&pull_as(&app, &bob, "").await),
        vec![r#""todos"/"b" v1 {"id":"b"}"#, r#""todos"/"c" v1 {"id":"c"}"#]
    );
    // Each ledger still answers its own resends.
    let again =
        push_as(&app, "alice-phone", vec![put("m1", "todos", "a"), patch("bad", "nothing", None)], Some(&alice)).await;
    assert_eq!(results(&again)[0], json!({"id": "m1", "status": "duplicate", "version": 1}));
    assert_eq!(results(&again)[1]["code"], "NOT_FOUND");
    assert_eq!(changes(&pull_as(&app, &alice, "").await), vec![r#""todos"/"a" v1 {"id":"a"}"#]);
}

backends!(with_shared_client_ids_a_user_reusing_anothers_client_and_op_ids_is_still_apart);
async fn with_shared_client_ids_a_user_reusing_anothers_client_and_op_ids_is_still_apart(backend: Backend) {
    let dir = site();
    let store = common::store(backend).await;
    let mut config = with_users(common::config_with(store, dir.path(), None));
    config.bind_client_ids = false;
    let app = router(config);
    let (alice, bob) = (user_token("alice"), user_token("bob"));
    push_as(&app, "family-tablet", vec![put("m1", "todos", "a")], Some(&alice)).await;
    let answer =
        push_as(&app, "family-tablet", vec![put("m1", "todos", "a"), patch("m2", "a", Some(1))], Some(&bob)).await;
    assert_eq!(results(&answer)[0], json!({"id": "m1", "status": "applied", "version": 1}), "not alice's duplicate");
    assert_eq!(results(&answer)[1], json!({"id": "m2", "status": "applied", "version": 2}), "his own version 1");
    assert_eq!(changes(&pull_as(&app, &alice, "").await), vec![r#""todos"/"a" v1 {"id":"a"}"#]);
}

backends!(the_anonymous_and_development_principals_share_one_space);
async fn the_anonymous_and_development_principals_share_one_space(backend: Backend) {
    let dir = site();
    let store = common::store(backend).await;
    // Written without authentication, then read and overwritten with --token (and JWTs) on.
    let anonymous = router(common::config_with(Arc::clone(&store), dir.path(), None));
    common::push_as(&anonymous, "c1", vec![put("m1", "todos", "a")], None).await;
    let with_token = router(with_users(common::config_with(Arc::clone(&store), dir.path(), None)));
    assert_eq!(changes(&pull_as(&with_token, DEV_TOKEN, "").await), vec![r#""todos"/"a" v1 {"id":"a"}"#]);
    let answer =
        push_as(&with_token, "c2", vec![put_value("m2", json!("a"), json!({"n": 2}), Some(1))], Some(DEV_TOKEN)).await;
    assert_eq!(results(&answer)[0], json!({"id": "m2", "status": "applied", "version": 2}), "one document");
    let resent = push_as(&with_token, "c1", vec![put("m1", "todos", "a")], Some(DEV_TOKEN)).await;
    assert_eq!(results(&resent)[0]["status"], "duplicate", "one ledger name for both");
    assert_eq!(changes(&pull_as(&with_token, &user_token("alice"), "").await), Vec::<String>::new());
}

/// A socket of `token`'s principal, authenticated by the upgrade's header (as a non-browser
/// client does; browsers use tickets, tests/live.rs).
async fn connect(addr: SocketAddr, token: &str) -> Socket {
    let mut request = format!("ws://{addr}/live").into_client_request().unwrap();
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    socket
}

/// The cursor of the next poke within `wait`, skipping heartbeats; `None` if none came.
async fn poke_within(socket: &mut Socket, wait: Duration) -> Option<u64> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let message = timeout(deadline.saturating_duration_since(tokio::time::Instant::now()), socket.next()).await;
        let Ok(Some(Ok(Message::Text(text)))) = message else {
            return match message {
                Err(_) => None,
                Ok(Some(Ok(_))) => continue,
                other => panic!("the socket failed: {other:?}"),
            };
        };
        let message: Value = serde_json::from_str(text.as_str()).unwrap();
        if message["type"] == "poke" {
            return Some(message["cursor"].as_str().unwrap().parse().unwrap());
        }
    }
}

const QUIET: Duration = Duration::from_millis(300);
const SOON: Duration = Duration::from_secs(5);

/// Pokes on `sockets` (alice's, bob's, the development user's) after `push` pushes through the
/// first router and every socket is on the last one: each hears its own space's writes only,
/// from its first poke on.
async fn pokes_reach_only_readers(push_through: &axum::Router, sockets_on: SocketAddr) {
    let (alice, bob) = (user_token("alice"), user_token("bob"));
    push_as(push_through, "alice-phone", vec![put("m1", "todos", "a")], Some(&alice)).await;
    let (mut alices, mut bobs, mut devs) =
        (connect(sockets_on, &alice).await, connect(sockets_on, &bob).await, connect(sockets_on, DEV_TOKEN).await);
    assert_eq!(poke_within(&mut alices, SOON).await, Some(1), "alice starts from her latest change");
    assert_eq!(poke_within(&mut bobs, SOON).await, Some(0), "bob's first poke tells nothing of alice's");
    assert_eq!(poke_within(&mut devs, SOON).await, Some(0));
    push_as(push_through, "alice-phone", vec![put("m2", "todos", "b")], Some(&alice)).await;
    assert_eq!(poke_within(&mut alices, SOON).await, Some(2));
    assert_eq!(poke_within(&mut bobs, QUIET).await, None, "alice's write does not poke bob");
    push_as(push_through, "bob-laptop", vec![put("m1", "todos", "a")], Some(&bob)).await;
    assert_eq!(poke_within(&mut bobs, SOON).await, Some(3));
    push_as(push_through, "dev-1", vec![put("m1", "todos", "a")], Some(DEV_TOKEN)).await;
    assert_eq!(poke_within(&mut devs, SOON).await, Some(4), "the shared space pokes its principal");
    assert_eq!(poke_within(&mut alices, QUIET).await, None, "neither bob's nor the shared write pokes alice");
    assert_eq!(poke_within(&mut bobs, QUIET).await, None);
}

backends!(a_poke_for_one_users_write_reaches_only_the_sockets_that_can_read_it);
async fn a_poke_for_one_users_write_reaches_only_the_sockets_that_can_read_it(backend: Backend) {
    let dir = site();
    let (app, _) = app(backend, dir.path()).await;
    let addr = common::serve(app.clone()).await;
    pokes_reach_only_readers(&app, addr).await;
}

/// Two instances over one PostgreSQL database: the pokes another instance hears through
/// LISTEN/NOTIFY are filtered by space too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pokes_heard_from_another_instance_reach_only_the_sockets_that_can_read_them() {
    let url = pg::database().await;
    let dir = site();
    let mut routers = Vec::new();
    for _ in 0..2 {
        let store = common::pg_store(&url, PgOptions::default()).await;
        routers.push(router(with_users(common::config_with(store, dir.path(), None))));
    }
    let addr = common::serve(routers[1].clone()).await;
    pokes_reach_only_readers(&routers[0], addr).await;
}

/// The version-4 SQLite schema, as the server before spaces created it, with two records and a
/// ledger entry of client `c1`.
const SQLITE_VERSION_4: &str = r#"
    CREATE TABLE records (
        collection TEXT NOT NULL, key TEXT NOT NULL, value TEXT, version INTEGER NOT NULL,
        seq INTEGER NOT NULL, hlc TEXT, writer TEXT, writer_seq INTEGER, PRIMARY KEY (collection, key)
    );
    CREATE UNIQUE INDEX records_by_seq ON records (seq);
    CREATE TABLE rejected_mutations (
        id TEXT PRIMARY KEY, client_id TEXT NOT NULL, code TEXT NOT NULL, message TEXT NOT NULL
    );
    CREATE TABLE applied_mutations (id TEXT PRIMARY KEY, client_id TEXT NOT NULL, version INTEGER NOT NULL);
    CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    CREATE TABLE client_owners (client_id TEXT PRIMARY KEY, user_id TEXT NOT NULL);
    INSERT INTO meta VALUES ('last_seq', 2), ('compacted_through', 0), ('compacted_version', 0);
    PRAGMA user_version = 4;
"#;

/// The rows of the old database (both backends: the tables are named alike but for `wharf_`).
const OLD_ROWS: &str = r#"
    INSERT INTO {records} (collection, key, value, version, seq, writer, writer_seq)
        VALUES ('todos', '"a"', '{"id":"a"}', 3, 1, 'c1', 3), ('todos', '"b"', NULL, 2, 2, 'c1', 4);
    INSERT INTO {applied} (id, client_id, version) VALUES ('m1', 'c1', 3);
    INSERT INTO {rejected} (id, client_id, code, message) VALUES ('m2', 'c1', 'NOT_FOUND', 'no document');
"#;

/// A store opened (so migrated) on a version-4 database holding [`OLD_ROWS`].
async fn version_4_store(backend: Backend, dir: &std::path::Path) -> Arc<dyn Storage> {
    match backend {
        Backend::Sqlite => {
            let path = dir.join("v4.sqlite");
            let old = rusqlite::Connection::open(&path).unwrap();
            old.execute_batch(SQLITE_VERSION_4).unwrap();
            let rows = OLD_ROWS
                .replace("{records}", "records")
                .replace("{applied}", "applied_mutations")
                .replace("{rejected}", "rejected_mutations");
            old.execute_batch(&rows).unwrap();
            drop(old);
            SqliteStore::open_shared(path.to_str().unwrap()).unwrap()
        }
        Backend::Postgres => {
            let rows = OLD_ROWS
                .replace("{records}", "wharf_records")
                .replace("{applied}", "wharf_applied_mutations")
                .replace("{rejected}", "wharf_rejected_mutations");
            common::pg_store_upgraded_from(4, &rows, 2).await
        }
    }
}

backends!(a_version_4_database_keeps_its_documents_and_ledger_in_the_shared_space);
async fn a_version_4_database_keeps_its_documents_and_ledger_in_the_shared_space(backend: Backend) {
    let dir = site();
    let store = version_4_store(backend, dir.path()).await;
    let app = router(with_users(common::config_with(store, dir.path(), None)));
    let page = pull_as(&app, DEV_TOKEN, "").await;
    assert_eq!(changes(&page), vec![r#""todos"/"a" v3 {"id":"a"}"#, r#""todos"/"b" v2 null"#]);
    assert_eq!(page["cursor"], "2");
    let resent = push_as(
        &app,
        "c1",
        vec![put("m1", "todos", "a"), put("m2", "todos", "z"), put("m3", "todos", "b")],
        Some(DEV_TOKEN),
    )
    .await;
    assert_eq!(results(&resent)[0], json!({"id": "m1", "status": "duplicate", "version": 3}), "the old ledger answers");
    assert_eq!(results(&resent)[1]["code"], "NOT_FOUND", "and so does the old rejection");
    assert_eq!(results(&resent)[2], json!({"id": "m3", "status": "applied", "version": 3}), "over the old tombstone");
    assert_eq!(changes(&pull_as(&app, DEV_TOKEN, "cursor=2").await), vec![r#""todos"/"b" v3 {"id":"b"}"#]);
    let alice = user_token("alice");
    assert_eq!(changes(&pull_as(&app, &alice, "").await), Vec::<String>::new(), "no user owns the old documents");
    let answer = push_as(&app, "alice-phone", vec![put("m1", "todos", "a")], Some(&alice)).await;
    assert_eq!(results(&answer)[0], json!({"id": "m1", "status": "applied", "version": 1}));
}

backends!(compaction_removes_a_users_tombstone_and_never_another_spaces_document_under_that_key);
async fn compaction_removes_a_users_tombstone_and_never_another_spaces_document_under_that_key(backend: Backend) {
    let dir = site();
    let (app, store) = app(backend, dir.path()).await;
    let (alice, bob) = (user_token("alice"), user_token("bob"));
    push_as(&app, "bob-laptop", vec![put("m1", "todos", "a"), common::delete("m2", "todos", "a")], Some(&bob)).await;
    push_as(&app, "alice-phone", vec![put("m1", "todos", "a")], Some(&alice)).await;
    assert_eq!(store.compact(u64::MAX).await.unwrap(), (1, 3), "bob's tombstone goes");
    assert_eq!(changes(&pull_as(&app, &alice, "").await), vec![r#""todos"/"a" v1 {"id":"a"}"#], "alice's stays");
    assert_eq!(changes(&pull_as(&app, &bob, "").await), Vec::<String>::new());
}

/// After its LISTEN connection comes back, an instance catches up on the spaces written while it
/// was down, and pokes only their readers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_catching_up_after_its_listen_connection_died_pokes_only_readers() {
    let url = pg::database().await;
    let dir = site();
    let mut routers = Vec::new();
    for _ in 0..2 {
        let store = common::pg_store(&url, PgOptions::default()).await;
        routers.push(router(with_users(common::config_with(store, dir.path(), None))));
    }
    let addr = common::serve(routers[1].clone()).await;
    let (alice, bob) = (user_token("alice"), user_token("bob"));
    let (mut alices, mut bobs) = (connect(addr, &alice).await, connect(addr, &bob).await);
    assert_eq!((poke_within(&mut alices, SOON).await, poke_within(&mut bobs, SOON).await), (Some(0), Some(0)));
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let killed = client
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(killed.len(), 2, "one LISTEN connection per instance");
    push_as(&routers[0], "alice-phone", vec![put("m1", "todos", "a")], Some(&alice)).await;
    assert_eq!(poke_within(&mut alices, SOON).await, Some(1), "caught up");
    assert_eq!(poke_within(&mut bobs, QUIET).await, None, "bob's space did not change");
}

/// A server of the build before spaces, still running against a migrated database, cannot write
/// a record or a ledger entry that belongs to no space or author (docs/server.md, "Migrations").
#[tokio::test]
async fn writes_of_a_build_before_spaces_fail_on_a_migrated_database() {
    let url = pg::database().await;
    let _migrated = common::pg_store(&url, PgOptions::default()).await;
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    for old_write in [
        "INSERT INTO wharf_records (collection, key, value, version, seq) VALUES ('t', '\"a\"', '{}', 1, 1)",
        "INSERT INTO wharf_applied_mutations (id, client_id, version) VALUES ('m1', 'c1', 1)",
        "INSERT INTO wharf_rejected_mutations (id, client_id, code, message) VALUES ('m1', 'c1', 'X', 'x')",
    ] {
        let error = client.execute(old_write, &[]).await.expect_err(old_write);
        assert_eq!(error.code(), Some(&tokio_postgres::error::SqlState::NOT_NULL_VIOLATION), "{old_write}: {error}");
    }
}
