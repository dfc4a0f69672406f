//! Several server instances over one PostgreSQL database, as a deployment behind a load balancer
//! runs them: each instance is a router with its own store (its own connection pool and LISTEN
//! connection), and clients talk to different instances.
//!
//! - a push through one instance is pulled, and poked over `/live`, through the others;
//! - the same mutation sent through two instances at once is applied once;
//! - a puller paging continuously through the instances while many pushers write through all of
//!   them never skips a change, even when transactions stall between their writes and their
//!   commit; and the same run against the naive scheme (seqs handed out at write time, commits in
//!   any order) is caught skipping, which shows the test would catch the bug;
//! - instances starting together migrate the schema once, a newer schema is refused, and an
//!   instance whose LISTEN connection dies reconnects and catches up.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use common::{config_with, pg, pg_store, pull, push_as, put, site};
use wharf_server::app::router;
use wharf_server::postgres::{PgOptions, PgStore};
use wharf_server::store::{Author, Space, Storage};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// `n` instances over the database at `url`: their routers (served on loopback ports) and stores.
async fn instances(url: &str, n: usize, options: PgOptions) -> Vec<(axum::Router, SocketAddr, Arc<dyn Storage>)> {
    let dir = site();
    let mut list = Vec::new();
    for _ in 0..n {
        let store = pg_store(url, options.clone()).await;
        let app = router(config_with(Arc::clone(&store), dir.path(), None));
        let addr = common::serve(app.clone()).await;
        list.push((app, addr, store));
    }
    list
}

async fn connect(addr: SocketAddr) -> Socket {
    let (socket, response) = tokio_tungstenite::connect_async(format!("ws://{addr}/live")).await.unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    socket
}

/// The cursor of the next poke (heartbeats skipped); panics after 5 s.
async fn next_poke(socket: &mut Socket) -> u64 {
    loop {
        let message = timeout(Duration::from_secs(5), socket.next()).await.expect("a poke within 5 s");
        if let Message::Text(text) = message.expect("the socket is open").unwrap() {
            let message: Value = serde_json::from_str(text.as_str()).unwrap();
            if message["type"] == "poke" {
                return message["cursor"].as_str().unwrap().parse().unwrap();
            }
        }
    }
}

/// Waits for a poke announcing at least `cursor`.
async fn poked_through(socket: &mut Socket, cursor: u64) {
    while next_poke(socket).await < cursor {}
}

fn keys_of(page: &Value) -> Vec<String> {
    page["changes"].as_array().unwrap().iter().map(|c| c["key"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_push_through_one_instance_is_pulled_and_poked_through_the_others() {
    let url = pg::database().await;
    let nodes = instances(&url, 3, PgOptions::default()).await;
    let mut sockets = Vec::new();
    for (_, addr, _) in &nodes {
        let mut socket = connect(*addr).await;
        assert_eq!(next_poke(&mut socket).await, 0, "the initial poke");
        sockets.push(socket);
    }
    push_as(&nodes[0].0, "alice", vec![put("m1", "todos", "a"), put("m2", "todos", "b")], None).await;
    for (i, socket) in sockets.iter_mut().enumerate() {
        assert_eq!(next_poke(socket).await, 2, "instance {i} pokes its socket");
    }
    for (i, (app, _, _)) in nodes.iter().enumerate() {
        let (status, page, text) = pull(app, "cursor=0").await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert_eq!((keys_of(&page), &page["cursor"]), (vec!["a".into(), "b".into()], &json!("2")), "instance {i}");
    }
    // And the other way round; a socket connecting later starts from the latest cursor of all.
    push_as(&nodes[2].0, "bob", vec![put("m3", "notes", "n")], None).await;
    poked_through(&mut sockets[0], 3).await;
    poked_through(&mut sockets[1], 3).await;
    let mut late = connect(nodes[1].1).await;
    assert_eq!(next_poke(&mut late).await, 3);
    let (_, page, _) = pull(&nodes[0].0, "cursor=2").await;
    assert_eq!(keys_of(&page), vec!["n"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_mutation_sent_through_two_instances_is_applied_once() {
    let url = pg::database().await;
    let nodes = instances(&url, 2, PgOptions::default()).await;
    for round in 0..40 {
        // New keys (racing inserts: the loser starts over), and in odd rounds a shared key too
        // (racing updates: the second waits on the record lock, then finds the ids applied).
        let mut batch = vec![put(&format!("new-{round}"), "todos", &format!("k{round}"))];
        if round % 2 == 1 {
            batch.push(put(&format!("upd-{round}"), "todos", "shared"));
        }
        let (a, b) = tokio::join!(
            push_as(&nodes[0].0, "c1", batch.clone(), None),
            push_as(&nodes[1].0, "c1", batch.clone(), None)
        );
        for i in 0..batch.len() {
            let statuses = [a["results"][i]["status"].as_str().unwrap(), b["results"][i]["status"].as_str().unwrap()];
            let mut sorted = statuses;
            sorted.sort_unstable();
            assert_eq!(sorted, ["applied", "duplicate"], "round {round}, mutation {i}: {a} {b}");
            assert_eq!(a["results"][i]["version"], b["results"][i]["version"], "the same version either way");
        }
    }
    let store = &nodes[0].2;
    assert_eq!(store.applied_count().await.unwrap(), 60);
    let shared =
        store.record(Space::shared(), "todos".into(), wharf::core::Key::Text("shared".into())).await.unwrap().unwrap();
    assert_eq!(shared.version, 20, "each odd round's update applied exactly once");
    assert_eq!(store.latest_seq().await.unwrap(), 60, "one seq per applied write, none lost to a retry");
}

/// What the racing puller saw.
struct Race {
    /// Every key the puller received, in order (with repeats, if any).
    seen: Vec<String>,
    /// Every key the pushers wrote.
    written: HashSet<String>,
    /// Pages the puller fetched while pushes were landing.
    pages: usize,
    final_cursor: u64,
}

/// 3 instances; 6 pushers (2 per instance) each push 40 batches of 4 *new* keys, each batch
/// stalling up to 5 ms before its commit; a puller pages (limit 37) through the instances in
/// turn the whole time, then drains. Keys are never rewritten, so each must arrive exactly once.
async fn race(options: PgOptions) -> Race {
    let url = pg::database().await;
    let nodes = instances(&url, 3, options).await;
    let apps: Vec<axum::Router> = nodes.iter().map(|(app, _, _)| app.clone()).collect();
    let done = Arc::new(AtomicBool::new(false));
    let puller = {
        let (apps, done) = (apps.clone(), Arc::clone(&done));
        tokio::spawn(async move {
            let (mut cursor, mut seen, mut pages, mut turn) = (String::new(), Vec::new(), 0, 0);
            loop {
                let finished = done.load(Ordering::Acquire);
                loop {
                    turn += 1;
                    let (status, page, text) =
                        pull(&apps[turn % apps.len()], &format!("cursor={cursor}&limit=37")).await;
                    assert_eq!(status, StatusCode::OK, "{text}");
                    seen.extend(keys_of(&page));
                    cursor = page["cursor"].as_str().unwrap().to_owned();
                    pages += 1;
                    if page["hasMore"] == json!(false) {
                        break;
                    }
                }
                if finished {
                    return (seen, pages, cursor.parse::<u64>().unwrap_or(0));
                }
            }
        })
    };
    let pushers: Vec<_> = (0..6)
        .map(|writer| {
            let app = apps[writer % apps.len()].clone();
            tokio::spawn(async move {
                let mut written = Vec::new();
                for batch in 0..40 {
                    let keys: Vec<String> = (0..4).map(|i| format!("w{writer}-{batch}-{i}")).collect();
                    let mutations =
                        keys.iter().map(|k| put(&format!("m-{k}"), &format!("c{}", writer % 2), k)).collect();
                    push_as(&app, &format!("client-{writer}"), mutations, None).await;
                    written.extend(keys);
                }
                written
            })
        })
        .collect();
    let mut written = HashSet::new();
    for pusher in pushers {
        written.extend(pusher.await.unwrap());
    }
    done.store(true, Ordering::Release);
    let (seen, pages, final_cursor) = puller.await.unwrap();
    Race { seen, written, pages, final_cursor }
}

fn skipped(race: &Race) -> Vec<&String> {
    let seen: HashSet<&String> = race.seen.iter().collect();
    let mut missing: Vec<&String> = race.written.iter().filter(|k| !seen.contains(k)).collect();
    missing.sort();
    missing
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pull_cursor_never_skips_a_change_under_concurrent_pushes_through_every_instance() {
    let race = race(PgOptions { stall: Some(Duration::from_millis(5)), ..PgOptions::default() }).await;
    assert_eq!(race.written.len(), 6 * 40 * 4);
    assert!(race.pages > 20, "the puller paged while pushes landed: {} pages", race.pages);
    let missing = skipped(&race);
    assert!(missing.is_empty(), "{} changes skipped, e.g. {:?}", missing.len(), &missing[..missing.len().min(5)]);
    let mut counts: HashMap<&String, usize> = HashMap::new();
    for key in &race.seen {
        *counts.entry(key).or_default() += 1;
    }
    let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "changes seen more than once: {repeated:?}");
    assert_eq!(race.seen.len(), race.written.len(), "every change exactly once");
    assert_eq!(race.final_cursor, 960, "seqs 1..=960, no gap: every write took the next number");
}

/// The same race against the naive scheme must lose changes; otherwise the test above proves
/// nothing. Up to three runs, since a race is a race (in practice the first one loses dozens).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_skip_detector_catches_the_naive_out_of_order_commit_scheme() {
    let options = PgOptions { naive_seq: true, stall: Some(Duration::from_millis(5)), ..PgOptions::default() };
    let mut runs = Vec::new();
    for _ in 0..3 {
        let race = race(options.clone()).await;
        let missing = skipped(&race).len();
        runs.push(missing);
        if missing > 0 {
            return;
        }
    }
    panic!("the naive scheme skipped nothing in 3 runs ({runs:?}): the race is not exercised");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_starting_together_migrate_once_and_a_newer_schema_is_refused() {
    let url = pg::database().await;
    let starts = (0..6).map(|_| PgStore::connect(&url, PgOptions { pool_size: 2, ..PgOptions::default() }));
    let stores: Vec<PgStore> = futures_util::future::join_all(starts)
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("an instance failed to start: {e}"));
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let version: i64 =
        client.query_one("SELECT value FROM wharf_meta WHERE name = 'schema_version'", &[]).await.unwrap().get(0);
    assert_eq!(version, wharf_server::pg_schema::SCHEMA_VERSION);
    let pushed =
        stores[3].apply_push(Author::shared("c"), vec![serde_json::from_value(put("m1", "t", "a")).unwrap()]).await;
    assert_eq!(pushed.unwrap().cursor, Some(1));
    drop(stores);

    client.execute("UPDATE wharf_meta SET value = 99 WHERE name = 'schema_version'", &[]).await.unwrap();
    match PgStore::connect(&url, PgOptions::default()).await {
        Err(e) => assert!(e.to_string().contains("schema version 99"), "{e}"),
        Ok(_) => panic!("a database from a newer server was accepted"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_whose_listen_connection_dies_reconnects_and_catches_up() {
    let url = pg::database().await;
    let nodes = instances(&url, 2, PgOptions::default()).await;
    let mut socket = connect(nodes[1].1).await;
    assert_eq!(next_poke(&mut socket).await, 0);
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    // Kill every LISTEN connection (both instances'), then push while they are down.
    let killed = client
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(killed.len(), 2, "one LISTEN connection per instance");
    push_as(&nodes[0].0, "c1", vec![put("m1", "todos", "a")], None).await;
    poked_through(&mut socket, 1).await;
    // Listening again: later pushes are heard as usual.
    push_as(&nodes[0].0, "c1", vec![put("m2", "todos", "b")], None).await;
    poked_through(&mut socket, 2).await;
}

/// With planner statistics saying there are few spaces, a pull still walks its own spaces'
/// ranges of the `(space, seq)` index. Before schema 7 PostgreSQL took the global `(seq)` index
/// for it, filtering every other space's records out: 38 to 57 times slower with 30 users
/// (bench/results/server-users.md).
#[tokio::test]
async fn a_pull_walks_its_spaces_range_even_where_statistics_say_few_spaces() {
    let url = pg::database().await;
    let store = PgStore::connect(&url, PgOptions::default()).await.unwrap();
    let author = |user: &str| {
        let space = Space::of_user(user);
        Author { name: space.as_str().to_owned(), client_id: format!("{user}-1"), space, denied: None }
    };
    // 20,000 records of four users, the target's 100 documents spread through the sequence (the
    // benchmark's worst case: a walk of the global index finds them only at its end).
    let put_of = |id: String, key: String| serde_json::from_value(put(&id, "t", &key)).unwrap();
    for batch in 0..50 {
        for user in ["a", "b", "c", "d"] {
            let puts = (0..100).map(|i| put_of(format!("{user}{batch}-{i}"), format!("k{batch}-{i}")));
            store.apply_push(author(user), puts.collect()).await.unwrap();
        }
        let mine = (0..2).map(|i| put_of(format!("t{batch}-{i}"), format!("k{batch}-{i}")));
        store.apply_push(author("target"), mine.collect()).await.unwrap();
    }
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client.batch_execute("ANALYZE wharf_records").await.unwrap();
    let explain = format!("EXPLAIN (COSTS OFF) {}", wharf_server::postgres::PULL);
    let spaces = vec![Space::of_user("target").as_str().to_owned()];
    for generic in [false, true] {
        if generic {
            client.batch_execute("SET plan_cache_mode = force_generic_plan").await.unwrap();
        }
        let rows = client.query(explain.as_str(), &[&0i64, &101i64, &spaces]).await.unwrap();
        let plan: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
        let plan = plan.join("\n");
        assert!(plan.contains("wharf_records_by_space_seq"), "generic {generic}:\n{plan}");
        assert!(!plan.contains("wharf_records_by_seq "), "generic {generic}:\n{plan}");
    }
    let (changes, _, more) = store.pull(vec![Space::of_user("target")], Default::default(), 100, None).await.unwrap();
    assert_eq!((changes.len(), more), (100, false));
}
