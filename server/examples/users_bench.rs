//! Benchmark of the reference server with many users (issue 19), apart from `loadgen.rs` because
//! that one measures the shared space (every client reads every write) while this one needs JWT
//! users, a seeded database and an A/B comparison. Three subcommands, which
//! `server/bench/users.sh` strings together for SQLite and PostgreSQL:
//!
//! - `seed`: writes `--others` records spread over `--users` other users, plus `--docs` documents
//!   of the target user spread evenly through the change sequence (one after every
//!   `others / docs` records), in-process through the `Storage` trait, so the rows are exactly
//!   the ones the server writes (records, ledgers, client bindings).
//! - `isolation`: the target user (its own JWT) pulls its documents from cursor zero, one request
//!   at a time, alternately against the first and the second target (small and large database),
//!   pull by pull, `--rounds` rounds of `--reps` pulls of each, and prints median and p95 of each,
//!   their ratios, and the median ratio of back-to-back pairs. With
//!   `--store` instead of `--target` it calls `Storage::pull` in-process (no HTTP, no JSON).
//! - `throughput`: `--users` JWT users, served by `--clients` concurrent connections (user `u`
//!   by connection `u % clients`), each connection cycling over its users: push a batch of puts
//!   to the user's own keys, then pull until caught up. One unmeasured cycle over every user
//!   first (client ids get bound), then `--seconds` measured; prints pushes/s, applied ops/s,
//!   pulls/s and latency percentiles.
//!
//! - `explain`: the plan SQLite picks for the pull statement on a seeded file.
//!
//! Every subcommand prints one JSON line last. HS256 tokens are signed with the secret in
//! `WHARF_JWT_SECRET` (the one the server verifies with). Targets must be loopback addresses.
//! A benchmark, not a test: it checks only that each pull returned the target's documents.

mod bench_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bench_common::{is_loopback, percentile, request, Http};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use wharf::core::id::SplitMix64;
use wharf::core::protocol::{Mutation, MutationResult, PullResponse, PushRequest, PushResponse, PROTOCOL_VERSION};
use wharf::core::{Key, OpKind};
use wharf_server::postgres::{PgOptions, PgStore};
use wharf_server::spaces::Space;
use wharf_server::sqlite::SqliteStore;
use wharf_server::store::{Author, Cursor, Storage};

/// The target user's `sub`, and the other users' prefix.
const TARGET: &str = "bench-target";
const OTHER: &str = "bench-other-";
/// Seeding batch size (the server's default `--max-batch`).
const SEED_BATCH: usize = 1000;

fn usage() -> ! {
    eprintln!(
        "usage: users_bench seed (--database FILE | --database-url URL) --others N [--users 1000] [--docs 100]\n\
         \x20      users_bench isolation (--target URL --target URL | --store SPEC --store SPEC) [--rounds 10] [--reps 200] [--docs 100]\n\
         \x20      users_bench explain --database FILE [--docs 100]\n\
         \x20      users_bench throughput --target URL [--users 1000] [--clients 32] [--seconds 20] [--batch 10] [--keys 1000]\n\
         SPEC: sqlite:FILE or postgres://…; tokens are signed with $WHARF_JWT_SECRET"
    );
    std::process::exit(2)
}

/// The flags of every subcommand (each uses some).
struct Options {
    targets: Vec<String>,
    stores: Vec<String>,
    others: usize,
    users: usize,
    docs: usize,
    rounds: usize,
    reps: usize,
    clients: usize,
    seconds: u64,
    batch: usize,
    keys: u64,
}

fn parse_options(args: impl Iterator<Item = String>) -> Options {
    let mut o = Options {
        targets: Vec::new(),
        stores: Vec::new(),
        others: 0,
        users: 1000,
        docs: 100,
        rounds: 10,
        reps: 200,
        clients: 32,
        seconds: 20,
        batch: 10,
        keys: 1000,
    };
    let mut args = args;
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        let number = |text: String| text.parse::<usize>().unwrap_or_else(|_| usage());
        match flag.as_str() {
            "--target" => o.targets.push(value().trim_end_matches('/').to_owned()),
            "--store" | "--database-url" => o.stores.push(value()),
            "--database" => o.stores.push(format!("sqlite:{}", value())),
            "--others" => o.others = number(value()),
            "--users" => o.users = number(value()).max(1),
            "--docs" => o.docs = number(value()).clamp(1, 1000),
            "--rounds" => o.rounds = number(value()).max(1),
            "--reps" => o.reps = number(value()).max(1),
            "--clients" => o.clients = number(value()).max(1),
            "--seconds" => o.seconds = number(value()).max(1) as u64,
            "--batch" => o.batch = number(value()).clamp(1, 1000),
            "--keys" => o.keys = number(value()).max(1) as u64,
            _ => usage(),
        }
    }
    for target in &o.targets {
        if !is_loopback(target) {
            eprintln!("users_bench: {target} is not a loopback address: refused");
            std::process::exit(2);
        }
    }
    o
}

/// An HS256 token for `sub`, valid for a day, signed with `$WHARF_JWT_SECRET`.
fn token(key: &EncodingKey, sub: &str) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    encode(&Header::new(Algorithm::HS256), &json!({"sub": sub, "iat": now, "exp": now + 86_400}), key)
        .expect("an HS256 token")
}

fn signing_key() -> EncodingKey {
    let secret = std::env::var("WHARF_JWT_SECRET").unwrap_or_default();
    if secret.len() < 32 {
        eprintln!("users_bench: WHARF_JWT_SECRET must hold the server's HS256 secret (at least 32 bytes)");
        std::process::exit(2);
    }
    EncodingKey::from_secret(secret.as_bytes()).expect("an HMAC key")
}

async fn open_store(spec: &str) -> Arc<dyn Storage> {
    let opened = match spec.strip_prefix("sqlite:") {
        Some(path) => SqliteStore::open_shared(path),
        None => PgStore::connect_shared(spec, PgOptions { pool_size: 4, ..PgOptions::default() }).await,
    };
    opened.unwrap_or_else(|e| {
        eprintln!("users_bench: cannot open {spec}: {e}");
        std::process::exit(1)
    })
}

/// A put of `key` by `client_id` (its `n`th op), about 100 bytes of JSON as in `loadgen.rs`.
fn put(client_id: &str, n: u64, key: String) -> Mutation {
    Mutation {
        id: format!("{client_id}-{n}"),
        seq: n,
        collection: "todos".into(),
        key: Key::Text(key.clone()),
        op: OpKind::Put,
        value: Some(json!({"id": key, "by": client_id, "n": n, "pad": "x".repeat(64)})),
        patch: None,
        base_version: None,
        hlc: None,
        space: None,
        shape: Some(1), // as every Wharf client sends
    }
}

/// Writes what the server would write for `mutations` pushed by JWT user `user` with
/// `client_id`: the client binding, then the batch in the user's space.
async fn push_as(store: &dyn Storage, user: &str, client_id: &str, mutations: Vec<Mutation>) {
    assert!(store.bind_client(client_id.to_owned(), user.to_owned()).await.expect("bind"), "client id taken");
    let space = Space::of_user(user);
    let author = Author { name: space.as_str().to_owned(), client_id: client_id.to_owned(), space, denied: None };
    let pushed = store.apply_push(author, mutations).await.expect("a seeding push");
    assert!(pushed.results.iter().all(|r| matches!(r, MutationResult::Applied { .. })), "seeding must apply");
}

/// Writes the target's documents `from + 1 ..= upto` (one push each); returns `upto`.
async fn push_target(store: &dyn Storage, from: usize, upto: usize) -> usize {
    const CLIENT: &str = "bench-target-client";
    for n in from + 1..=upto {
        push_as(store, TARGET, CLIENT, vec![put(CLIENT, n as u64, format!("t{n}"))]).await;
    }
    upto.max(from)
}

async fn seed(o: &Options) -> Value {
    let [spec] = o.stores.as_slice() else { usage() };
    let store = open_store(spec).await;
    let started = Instant::now();
    assert_eq!(store.latest_seq().await.expect("latest"), 0, "seed an empty database");
    // Other user u owns records i with i % users == u; users are written one after another, in
    // batches, and the target's documents are interleaved: one after every `others / docs`.
    let every = (o.others / o.docs).max(1);
    let (mut written, mut target_written) = (0usize, 0usize);
    for user in 0..o.users {
        let count = o.others / o.users + usize::from(user < o.others % o.users);
        let (sub, client_id) = (format!("{OTHER}{user}"), format!("bench-other-client-{user}"));
        let all: Vec<Mutation> = (1..=count as u64).map(|n| put(&client_id, n, format!("k{n}"))).collect();
        for chunk in all.chunks(SEED_BATCH) {
            push_as(&*store, &sub, &client_id, chunk.to_vec()).await;
            written += chunk.len();
            target_written = push_target(&*store, target_written, (written / every).min(o.docs)).await;
        }
    }
    target_written = push_target(&*store, target_written, o.docs).await;
    let last = store.latest_seq().await.expect("latest");
    eprintln!(
        "seeded {spec}: {written} records of {} other users and {target_written} of {TARGET} in {:.1} s (last seq {last})",
        o.users,
        started.elapsed().as_secs_f64()
    );
    json!({"store": spec, "others": written, "users": o.users, "docs": target_written, "lastSeq": last,
           "seconds": started.elapsed().as_secs_f64()})
}

/// What one side of the isolation comparison is pulled through.
enum Side {
    Http { http: Http, url: String, bearer: String },
    Store(Arc<dyn Storage>),
}

impl Side {
    /// One pull of the target's documents from cursor zero: its latency, after checking the page.
    async fn pull(&self, docs: usize) -> Duration {
        let started = Instant::now();
        let (count, has_more, first) = match self {
            Side::Http { http, url, bearer } => {
                let pull = hyper::Request::get(format!("{url}/pull?cursor=&limit={docs}"))
                    .header("authorization", bearer.as_str())
                    .body(Full::new(Bytes::new()))
                    .expect("a valid request");
                let (status, body) = request(http, pull).await.expect("the server answers");
                assert_eq!(status, 200, "pull: {}", String::from_utf8_lossy(&body));
                let page: PullResponse = serde_json::from_slice(&body).expect("a pull page");
                (page.changes.len(), page.has_more, page.changes.first().map(|c| c.value.clone()))
            }
            Side::Store(store) => {
                let (changes, _, has_more) =
                    store.pull(vec![Space::of_user(TARGET)], Cursor::default(), docs, None).await.expect("a pull page");
                (changes.len(), has_more, changes.first().map(|c| c.value.clone()))
            }
        };
        let elapsed = started.elapsed();
        assert_eq!((count, has_more), (docs, false), "the target's documents, and only them");
        let by = first.flatten().and_then(|v| v["by"].as_str().map(str::to_owned));
        assert_eq!(by.as_deref(), Some("bench-target-client"), "the target's own document");
        elapsed
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        (a / b * 1000.0).round() / 1000.0
    } else {
        0.0
    }
}

async fn isolation(o: &Options) -> Value {
    let key = signing_key();
    let sides: Vec<(String, Side)> = if o.targets.len() == 2 {
        let http: Http = Client::builder(TokioExecutor::new()).build_http();
        let bearer = format!("Bearer {}", token(&key, TARGET));
        o.targets
            .iter()
            .map(|url| (url.clone(), Side::Http { http: http.clone(), url: url.clone(), bearer: bearer.clone() }))
            .collect()
    } else if o.stores.len() == 2 {
        let mut sides = Vec::new();
        for spec in &o.stores {
            sides.push((spec.clone(), Side::Store(open_store(spec).await)));
        }
        sides
    } else {
        usage()
    };
    // Warm both sides up (connections, caches, prepared statements).
    for (_, side) in &sides {
        for _ in 0..o.reps.min(50) {
            side.pull(o.docs).await;
        }
    }
    // Interleaved pull by pull (small, large, large, small, …), so load that comes and goes on a
    // shared machine hits both sides alike; a round is `reps` pulls of each side.
    let mut all: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    let (mut round_ratios, mut pair_ratios) = (Vec::new(), Vec::new());
    for round in 0..o.rounds {
        let mut latencies: [Vec<Duration>; 2] = [Vec::with_capacity(o.reps), Vec::with_capacity(o.reps)];
        for rep in 0..o.reps {
            let order = if rep % 2 == 0 { [0, 1] } else { [1, 0] };
            for index in order {
                latencies[index].push(sides[index].1.pull(o.docs).await);
            }
            pair_ratios.push(latencies[1][rep].as_secs_f64() / latencies[0][rep].as_secs_f64());
        }
        let mut medians = [0.0; 2];
        for (index, mut round) in latencies.into_iter().enumerate() {
            round.sort();
            medians[index] = percentile(&round, 50.0);
            all[index].extend(round);
        }
        let r = ratio(medians[1], medians[0]);
        eprintln!("round {round}: median {} ms vs {} ms, ratio {r}", medians[0], medians[1]);
        round_ratios.push(r);
    }
    pair_ratios.sort_by(f64::total_cmp);
    let pair_ratio = ratio(pair_ratios[pair_ratios.len() / 2], 1.0);
    for latencies in &mut all {
        latencies.sort();
    }
    let summary = |i: usize| {
        json!({"on": sides[i].0, "pulls": all[i].len(), "p50Ms": percentile(&all[i], 50.0),
               "p95Ms": percentile(&all[i], 95.0), "p99Ms": percentile(&all[i], 99.0)})
    };
    let (small, large) = (summary(0), summary(1));
    let ratio_p50 = ratio(large["p50Ms"].as_f64().unwrap_or(0.0), small["p50Ms"].as_f64().unwrap_or(0.0));
    let ratio_p95 = ratio(large["p95Ms"].as_f64().unwrap_or(0.0), small["p95Ms"].as_f64().unwrap_or(0.0));
    let mut sorted_ratios = round_ratios.clone();
    sorted_ratios.sort_by(f64::total_cmp);
    println!(
        "pull of {} documents from cursor zero, {} rounds x {} pulls each: first p50 {} ms p95 {} ms; \
         second p50 {} ms p95 {} ms; ratio second/first p50 {ratio_p50}, p95 {ratio_p95}, median of \
         paired ratios {pair_ratio}; per-round p50 ratios {:?}",
        o.docs, o.rounds, o.reps, small["p50Ms"], small["p95Ms"], large["p50Ms"], large["p95Ms"], round_ratios
    );
    json!({"mode": if o.targets.len() == 2 { "http" } else { "store" }, "docs": o.docs, "rounds": o.rounds,
           "reps": o.reps, "first": small, "second": large, "ratioP50": ratio_p50, "ratioP95": ratio_p95, "pairRatio": pair_ratio,
           "roundRatios": round_ratios, "medianRoundRatio": sorted_ratios[sorted_ratios.len() / 2]})
}

/// One throughput user: its token, client id, ops so far and pull cursor.
struct User {
    bearer: String,
    client_id: String,
    next_op: u64,
    cursor: String,
}

#[derive(Default)]
struct Stats {
    push: Vec<Duration>,
    pull: Vec<Duration>,
    applied: u64,
    other_results: u64,
    pulled: u64,
    errors: u64,
}

/// One cycle of a connection over its users: each pushes a batch, then pulls until caught up.
async fn cycle(http: &Http, url: &str, users: &mut [User], o: &Options, random: &mut SplitMix64, stats: &mut Stats) {
    for user in users {
        let mutations: Vec<Mutation> = (0..o.batch)
            .map(|_| {
                user.next_op += 1;
                put(&user.client_id, user.next_op, format!("k{}", random.next_u64() % o.keys))
            })
            .collect();
        let body = serde_json::to_vec(&PushRequest {
            protocol: PROTOCOL_VERSION,
            client_id: user.client_id.clone(),
            mutations,
        })
        .expect("a push serializes");
        let push = hyper::Request::post(format!("{url}/push"))
            .header("content-type", "application/json")
            .header("authorization", user.bearer.as_str())
            .body(Full::new(Bytes::from(body)))
            .expect("a valid request");
        let started = Instant::now();
        match request(http, push).await {
            Ok((200, body)) => {
                stats.push.push(started.elapsed());
                match serde_json::from_slice::<PushResponse>(&body) {
                    Ok(response) => {
                        for result in response.results {
                            match result {
                                MutationResult::Applied { .. } => stats.applied += 1,
                                _ => stats.other_results += 1,
                            }
                        }
                    }
                    Err(_) => stats.errors += 1,
                }
            }
            _ => {
                stats.errors += 1;
                continue;
            }
        }
        loop {
            let pull = hyper::Request::get(format!("{url}/pull?cursor={}&limit=500", user.cursor))
                .header("authorization", user.bearer.as_str())
                .body(Full::new(Bytes::new()))
                .expect("a valid request");
            let started = Instant::now();
            let Ok((200, body)) = request(http, pull).await else {
                stats.errors += 1;
                break;
            };
            let Ok(page) = serde_json::from_slice::<PullResponse>(&body) else {
                stats.errors += 1;
                break;
            };
            stats.pull.push(started.elapsed());
            stats.pulled += page.changes.len() as u64;
            user.cursor = page.cursor;
            if !page.has_more {
                break;
            }
        }
    }
}

async fn throughput(o: Arc<Options>) -> Value {
    let [url] = o.targets.as_slice() else { usage() };
    let key = signing_key();
    let http: Http = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(o.clients)
        .pool_idle_timeout(Duration::from_secs(60))
        .build_http();
    let run = SplitMix64::new(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64),
    )
    .next_u64();
    // User u is served by connection u % clients.
    let mut groups: Vec<Vec<User>> = (0..o.clients).map(|_| Vec::new()).collect();
    for u in 0..o.users {
        groups[u % o.clients].push(User {
            bearer: format!("Bearer {}", token(&key, &format!("tp-user-{u}"))),
            client_id: format!("tp-{run:x}-{u}"),
            next_op: 0,
            cursor: String::new(),
        });
    }
    groups.retain(|g| !g.is_empty());
    // Unmeasured: one cycle over every user (binds client ids, first pulls), all connections open.
    let warm_started = Instant::now();
    let tasks: Vec<_> = groups
        .into_iter()
        .enumerate()
        .map(|(i, mut users)| {
            let (http, url, o) = (http.clone(), url.clone(), Arc::clone(&o));
            tokio::spawn(async move {
                let mut random = SplitMix64::new(run ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                cycle(&http, &url, &mut users, &o, &mut random, &mut Stats::default()).await;
                (users, random)
            })
        })
        .collect();
    let mut warmed = Vec::new();
    for task in tasks {
        warmed.push(task.await.expect("a warm-up task"));
    }
    eprintln!("warm-up: one cycle over {} users in {:.1} s", o.users, warm_started.elapsed().as_secs_f64());
    let started = Instant::now();
    let stop = started + Duration::from_secs(o.seconds);
    let tasks: Vec<_> = warmed
        .into_iter()
        .map(|(mut users, mut random)| {
            let (http, url, o) = (http.clone(), url.clone(), Arc::clone(&o));
            tokio::spawn(async move {
                let mut stats = Stats::default();
                // One user at a time, so the connection stops soon after `stop`.
                let mut next = 0;
                while Instant::now() < stop {
                    cycle(&http, &url, &mut users[next..=next], &o, &mut random, &mut stats).await;
                    next = (next + 1) % users.len();
                }
                stats
            })
        })
        .collect();
    let mut all = Stats::default();
    for task in tasks {
        let stats = task.await.expect("a client task");
        all.push.extend(stats.push);
        all.pull.extend(stats.pull);
        all.applied += stats.applied;
        all.other_results += stats.other_results;
        all.pulled += stats.pulled;
        all.errors += stats.errors;
    }
    let window = started.elapsed().as_secs_f64();
    all.push.sort();
    all.pull.sort();
    let per_sec = |n: f64| (n / window).round();
    let summary = json!({
        "target": url, "users": o.users, "clients": o.clients, "batch": o.batch, "seconds": window,
        "pushes": all.push.len(), "pushesPerSec": per_sec(all.push.len() as f64),
        "appliedPerSec": per_sec(all.applied as f64),
        "pushP50Ms": percentile(&all.push, 50.0), "pushP95Ms": percentile(&all.push, 95.0),
        "pushP99Ms": percentile(&all.push, 99.0),
        "pulls": all.pull.len(), "pullsPerSec": per_sec(all.pull.len() as f64),
        "pulledChangesPerSec": per_sec(all.pulled as f64),
        "pullP50Ms": percentile(&all.pull, 50.0), "pullP95Ms": percentile(&all.pull, 95.0),
        "pullP99Ms": percentile(&all.pull, 99.0),
        "otherResults": all.other_results, "errors": all.errors,
    });
    println!(
        "{} users over {} connections, {} puts/push, {:.1} s: {} pushes/s ({} applied ops/s), {} pulls/s; \
         push p50 {} p95 {} p99 {} ms; pull p50 {} p95 {} p99 {} ms; {} errors",
        o.users,
        o.clients,
        o.batch,
        window,
        summary["pushesPerSec"],
        summary["appliedPerSec"],
        summary["pullsPerSec"],
        summary["pushP50Ms"],
        summary["pushP95Ms"],
        summary["pushP99Ms"],
        summary["pullP50Ms"],
        summary["pullP95Ms"],
        summary["pullP99Ms"],
        all.errors
    );
    summary
}

/// The plan SQLite (the bundled build the server uses) picks for the server's pull statement of
/// one space (`sqlite.rs`, `pull_blocking`, copied here), and how much work one page of it is
/// (SQLite's VM steps: the same on a small and a large database if other spaces cost nothing).
fn explain(o: &Options) -> Value {
    let [spec] = o.stores.as_slice() else { usage() };
    let path = spec.strip_prefix("sqlite:").unwrap_or_else(|| usage());
    let connection = rusqlite::Connection::open(path).expect("the SQLite file");
    let sql = "SELECT * FROM (SELECT collection, key, value, version, hlc, seq FROM records
               WHERE space = ?3 AND seq > ?1 ORDER BY seq LIMIT ?2) ORDER BY seq LIMIT ?2";
    let space = Space::of_user(TARGET);
    let args = rusqlite::params![0i64, (o.docs + 1) as i64, space.as_str()];
    let mut statement = connection.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).expect("EXPLAIN");
    let plan: Vec<String> = statement
        .query_map(args, |row| Ok(format!("{} {}", row.get::<_, i64>(1)?, row.get::<_, String>(3)?)))
        .expect("a plan")
        .collect::<Result<_, _>>()
        .expect("a plan");
    let mut statement = connection.prepare(sql).expect("the pull statement");
    let rows = statement.query_map(args, |_| Ok(())).expect("rows").count();
    let steps = statement.get_status(rusqlite::StatementStatus::FullscanStep);
    let vm_steps = statement.get_status(rusqlite::StatementStatus::VmStep);
    let version = rusqlite::version();
    println!(
        "{path}: SQLite {version}: {} (parent id, detail); {rows} rows, {vm_steps} VM steps, {steps} full-scan steps",
        plan.join("; ")
    );
    json!({"sqlite": version, "plan": plan, "rows": rows, "vmSteps": vm_steps, "fullscanSteps": steps})
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_else(|| usage());
    let options = parse_options(args);
    let summary = match command.as_str() {
        "seed" => seed(&options).await,
        "isolation" => isolation(&options).await,
        "throughput" => throughput(Arc::new(options)).await,
        "explain" => explain(&options),
        _ => usage(),
    };
    println!("{summary}");
}
