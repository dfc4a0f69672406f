//! The deterministic simulation: several devices running the shipped client core (natively, on
//! the core's in-memory database), the reference server's own router and SQLite storage, and a
//! network that drops, delays, reorders, duplicates, cuts after apply and holds requests past
//! their timeout; with page reloads, tab kills, sync-role handoffs and takeovers, offline spells,
//! dead letters retried, edited and discarded, compaction (and so 410 resyncs), and conflicts
//! under every strategy. All of it from one seed (`world.rs`, `users.rs`).
//!
//! After the faulty period, the network heals and every device syncs until quiet. Then:
//! every replica holds exactly the server's documents, every outbox is empty, every dead letter
//! says why it died, no write was applied twice and none was lost (`ledger.rs`), and no write
//! replaced another client's later-stamped one without meeting it as a conflict (`server.rs`).
//!
//! Runs: `cargo test -p wharf-server --test simulation` (the short run, part of the test
//! command); `make simulate` (the long run: `SIM_SEEDS=1..5000` unless given); one seed with its trace:
//! `WHARF_SIM_SEEDS=1234 WHARF_SIM_TRACE=1 cargo test -p wharf-server --test simulation -- --nocapture`
//! (add `WHARF_SIM_WATCH='todos/"k0"'` to trace one document's local value on every device).

mod ledger;
mod rng;
mod server;
mod users;
mod world;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use serde_json::{json, Value};

use wharf::core::conflict::Strategy;
use wharf::core::machine::SyncConfig;
use wharf::core::sync_options::SyncOptions;
use wharf::core::Payload;

use crate::world::{Scheduled, World};

const STRATEGIES: [Strategy; 5] =
    [Strategy::Lww, Strategy::ServerWins, Strategy::ClientWins, Strategy::Merge, Strategy::Custom];

/// How long the faulty period lasts, in simulated ms.
const ACTIVE_MS: f64 = 60_000.0;

fn config(w: &mut World, client: &str, strategy: Strategy) -> SyncConfig {
    let rng = &mut w.rng;
    let debounce = [0, 20, 50][rng.pick(3)];
    let mut options = SyncOptions::from_value(&json!({
        "url": server::URL,
        "batchSize": 1 + rng.below(8),
        "pullLimit": 1 + rng.below(6),
        "debounceMs": debounce,
        "pushIntervalMs": 5_000,
        "pullIntervalMs": 2_000 + rng.below(4_000),
        "requestTimeoutMs": 2_000,
        "direction": "both",
        "live": false,
        "retry": {"baseMs": 50, "maxMs": 2_000, "maxAttempts": 2 + rng.below(6)},
    }))
    .expect("valid options");
    options.conflicts.default = strategy;
    SyncConfig {
        options,
        has_token: w.token_hang.is_some(),
        resolvers: if strategy == Strategy::Custom { vec![None] } else { Vec::new() },
        context_id: None,
        online: true,
        visible: true,
        fresh_client_id: client.to_owned(),
        seed: rng.next_u64(),
    }
}

/// One seeded run: the world after it, and the broken invariant, if any.
fn run(seed: u64, tracing: bool) -> (World, Result<(), String>) {
    let mut w = World::new(seed, 0.0);
    w.tracing = tracing;
    w.watch = std::env::var("WHARF_SIM_WATCH")
        .ok()
        .and_then(|text| text.split_once('/').map(|(c, k)| (c.to_owned(), k.to_owned())));
    w.fault_rate = [0.0, 0.1, 0.3][w.rng.pick(3)];
    if w.rng.chance(0.4) {
        // Many times what `maxAttempts` failures used to take to dead-letter everything.
        let from = w.now + w.rng.ms(0, 30_000);
        w.outage = Some((from, from + w.rng.ms(5_000, 30_000), w.rng.next_u64()));
    }
    if w.rng.chance(0.3) {
        // Many times `requestTimeoutMs`: every push and pull meanwhile waits for a token in vain.
        let from = w.now + w.rng.ms(0, 30_000);
        w.token_hang = Some((from, from + w.rng.ms(5_000, 60_000)));
    }
    let strategy = STRATEGIES[w.rng.pick(STRATEGIES.len())];
    let devices = 2 + w.rng.pick(2);
    for device in 0..devices {
        let client = format!("dev{device}");
        let config = config(&mut w, &client, strategy);
        let tabs = 1 + w.rng.pick(2);
        let skew = w.rng.ms(0, 600_000) - 300_000.0;
        w.add_device(config, tabs, skew);
        let first = w.now + w.rng.ms(0, 500);
        w.schedule(first, Scheduled::User { device });
    }
    w.note(|| format!("seed {seed}: {strategy:?}, {devices} devices"));
    let end = w.now + ACTIVE_MS;
    while w.step(end) {}
    // The people stop and the network heals.
    w.queue.retain(|_, item| !matches!(item, Scheduled::User { .. }));
    w.fault_rate = 0.0;
    let outcome = quiesce(&mut w).and_then(|()| check(&mut w));
    (w, outcome)
}

/// Every device online with its tabs open, dead letters retried, and sync and pull until every
/// outbox is empty and every replica shows the server's documents.
fn quiesce(w: &mut World) -> Result<(), String> {
    for device in 0..w.devices.len() {
        if !w.devices[device].online {
            users::set_online(w, device, true);
        }
        for tab in 0..w.devices[device].tabs.len() {
            users::reopen(w, device, tab);
        }
    }
    for round in 0..30 {
        let horizon = w.now + 30_000.0;
        while w.step(horizon) {}
        if round >= 10 && converged(w) {
            return Ok(());
        }
        for device in 0..w.devices.len() {
            // Letters are retried in the first rounds only: one the server refuses for good
            // would otherwise be in flight again at the end.
            while round < 10 && !w.dead_letters(device).is_empty() && w.rng.chance(0.9) {
                for letter in w.dead_letters(device) {
                    if let Payload::Put(v) | Payload::Patch(v) = &letter.op.payload {
                        w.ledger.retried.extend(v.as_object().into_iter().flat_map(|o| o.keys().cloned()));
                    }
                }
                let now = w.time_of(device);
                w.with_tab(device, 0, |h| h.request(wharf::core::replica::Request::RetryDead(None), now));
            }
            let Some(tab) = w.leader(device) else { return Err(format!("device {device} has no leader")) };
            let now = w.time_of(device);
            w.with_tab(device, tab, |h| h.sync(now, true));
            w.with_tab(device, tab, |h| h.pull(now, true));
        }
    }
    match divergence(w) {
        None => Ok(()),
        Some(problem) => Err(format!("the devices did not settle after the network healed: {problem}")),
    }
}

fn outbox_len(w: &World, device: usize) -> usize {
    w.devices[device].db.rows(wharf::core::schema::OUTBOX_STORE).len()
}

fn local_documents(w: &World, device: usize) -> BTreeMap<(String, String), Value> {
    let mut documents = BTreeMap::new();
    for collection in ["todos", "notes"] {
        for (key, value) in w.devices[device].db.rows(collection) {
            documents.insert((collection.to_owned(), key.to_string()), value);
        }
    }
    documents
}

fn converged(w: &World) -> bool {
    divergence(w).is_none()
}

/// What still differs between a device and the server, if anything.
fn divergence(w: &World) -> Option<String> {
    let server = w.server.documents();
    for device in 0..w.devices.len() {
        let queued = outbox_len(w, device);
        if queued > 0 {
            let entries: Vec<String> = w.devices[device]
                .db
                .rows(wharf::core::schema::OUTBOX_STORE)
                .into_iter()
                .map(|(_, v)| v.to_string())
                .collect();
            return Some(format!("device {device} still queues {queued} ops: {}", entries.join("\n")));
        }
        let local = local_documents(w, device);
        let client = &w.devices[device].client;
        let dead = dead_tokens(w, device);
        let known_gap = |value: Option<&Value>| {
            let token = value.and_then(|v| v.get("w")).and_then(Value::as_str);
            w.ledger.shows_discarded(client, value) || token.is_some_and(|t| dead.contains(t))
        };
        for key in server.keys().chain(local.keys()) {
            if server.get(key) != local.get(key) && !known_gap(local.get(key)) {
                return Some(format!(
                    "device {device} diverged on {key:?}: server {:?}, local {:?}",
                    server.get(key),
                    local.get(key)
                ));
            }
        }
    }
    None
}

/// The tokens the device's dead letters carry: a letter the server refused for good leaves its
/// content in the record (the known gap of docs/protocol.md, "Dead letters").
fn dead_tokens(w: &World, device: usize) -> std::collections::BTreeSet<String> {
    let mut tokens = std::collections::BTreeSet::new();
    for (_, letter) in w.devices[device].db.rows(wharf::core::schema::DEAD_STORE) {
        for payload in [letter.get("value"), letter.get("patch")].into_iter().flatten() {
            tokens.extend(payload.as_object().into_iter().flat_map(|o| o.keys().cloned()));
        }
    }
    tokens
}

fn check(w: &mut World) -> Result<(), String> {
    if let Some(problem) = divergence(w) {
        return Err(problem);
    }
    for device in 0..w.devices.len() {
        for letter in w.dead_letters(device) {
            // Still dead after a retry on a healed network: the server refuses it for good.
            w.ledger.settled.push(ledger::Settled {
                client: w.devices[device].client.clone(),
                collection: letter.op.collection.clone(),
                key: letter.op.key.to_json().to_string(),
                op_id: letter.op.id.clone(),
                tokens: match &letter.op.payload {
                    Payload::Put(v) | Payload::Patch(v) => {
                        v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
                    }
                    Payload::Delete => Default::default(),
                },
                delete: letter.op.payload == Payload::Delete,
                order: u64::MAX,
                discarded: false,
            });
        }
        if let Some(error) = w.devices[device].errors.first() {
            return Err(error.clone());
        }
    }
    if let Some(overwrite) = w.server.overwrites.first() {
        return Err(format!("a write was lost under an older one: {overwrite}"));
    }
    w.ledger.check_applied_once(&w.server.landings)?;
    let mut conflicts = std::collections::BTreeSet::new();
    for device in &w.devices {
        for (collection, key) in &device.conflicts {
            conflicts.insert((device.client.clone(), collection.clone(), key.clone()));
        }
    }
    w.ledger.check_nothing_lost(&w.server.landings, &conflicts)
}

/// The seeds to run: `WHARF_SIM_SEEDS` (`7`, `1..500`), else `default`.
fn seeds(default: std::ops::Range<u64>) -> std::ops::Range<u64> {
    let Ok(text) = std::env::var("WHARF_SIM_SEEDS") else { return default };
    match text.split_once("..") {
        Some((a, b)) => a.trim().parse().expect("a seed")..b.trim().parse().expect("a seed"),
        None => {
            let seed: u64 = text.trim().parse().expect("a seed");
            seed..seed + 1
        }
    }
}

#[test]
fn every_seed_keeps_every_write_exactly_once_and_converges() {
    let tracing = std::env::var_os("WHARF_SIM_TRACE").is_some();
    let seeds = seeds(1..201);
    let started = Instant::now();
    // Seeds are independent worlds: one thread per core takes the next seed until none is left.
    let next = AtomicU64::new(seeds.start);
    let pushes = AtomicU64::new(0);
    let failures = Mutex::new(Vec::new());
    let threads = if tracing { 1 } else { std::thread::available_parallelism().map_or(1, |n| n.get()) };
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= seeds.end {
                    return;
                }
                let (w, outcome) = run(seed, tracing);
                if tracing {
                    println!("{}", w.trace.join("\n"));
                }
                pushes.fetch_add(u64::from(w.server.pushes), Ordering::Relaxed);
                if let Err(problem) = outcome {
                    failures.lock().unwrap_or_else(|e| e.into_inner()).push((seed, problem));
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    failures.sort();
    if let Some((seed, problem)) = failures.first() {
        panic!(
            "{} of {} seeds failed; the first, seed {seed}: {problem}\nreplay: WHARF_SIM_SEEDS={seed} \
             WHARF_SIM_TRACE=1 cargo test -p wharf-server --test simulation -- --nocapture",
            failures.len(),
            seeds.end - seeds.start
        );
    }
    println!(
        "simulation: {} seeds ({seeds:?}) in {:.1} s on {threads} threads, {} push deliveries",
        seeds.end - seeds.start,
        started.elapsed().as_secs_f64(),
        pushes.into_inner()
    );
}
