//! Convergence, as a property, of the shipped replica: two clients and a server (the model with
//! the real staleness rule), random interleavings of local writes, answered requests, explicit
//! `sync()` and `pull()` calls and clock skew, then everyone syncs until quiet. Under each
//! strategy (the built-in ones and a sample application resolver) every client must end with
//! exactly the server's documents, and a local write the server never applied must have met a
//! reported conflict.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{json, Value};

use crate::core::conflict::Strategy as Rule;
use crate::core::host::Event;
use crate::core::op::merge_fields;
use crate::core::sync_options::SyncOptions;
use crate::core::test_world::{options, World};

/// An application resolver, as `Custom` calls it: the remote document with the local fields
/// laid over it; a deletion on either side wins.
fn custom_resolver(context: &Value) -> Value {
    match (&context["local"], &context["remote"]) {
        (local @ Value::Object(_), remote @ Value::Object(_)) => merge_fields(remote, local).unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

fn client_options(strategy: Rule) -> SyncOptions {
    let mut opts = options(100, u32::MAX, "both");
    opts.conflicts.default = strategy;
    opts
}

fn world(strategy: Rule, skew: f64, encryption: Option<[u8; 32]>) -> World {
    let mut w = World::new();
    w.resolver = Some(custom_resolver);
    w.encryption = encryption;
    for (name, seed) in [("a", 1), ("b", 2)] {
        let at = w.client(name, client_options(strategy), seed);
        if strategy == Rule::Custom {
            w.clients[at].config.resolvers = vec![None];
        }
        w.reload(at); // starts again with the resolver and the skew in place
    }
    w.clients[1].skew = skew;
    w.reload(1);
    w
}

#[derive(Debug, Clone)]
enum Action {
    Write { client: usize, key: u8, kind: u8, field: u8, n: u64 },
    Answer,
    Tick,
    Sync(usize),
    Pull(usize),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => (0..2usize, 0..3u8, 0..3u8, 0..3u8, 0..1000u64)
            .prop_map(|(client, key, kind, field, n)| Action::Write { client, key, kind, field, n }),
        3 => Just(Action::Answer),
        1 => Just(Action::Tick),
        1 => (0..2usize).prop_map(Action::Sync),
        1 => (0..2usize).prop_map(Action::Pull),
    ]
}

fn write(w: &mut World, client: usize, key: u8, kind: u8, field: u8, n: u64) -> Option<String> {
    let key = format!("k{key}");
    let field = ["x", "y", "z"][field as usize];
    match kind {
        0 => Some(w.put(client, &key, json!({ field: n }))),
        1 => w.patch_now(client, &key, json!({ field: n })),
        _ => Some(w.delete(client, &key)),
    }
}

/// Everyone pushes and pulls until nothing moves.
fn quiesce(w: &mut World) {
    for _ in 0..10 {
        for at in 0..w.clients.len() {
            w.sync(at);
            w.settle(5_000);
            w.pull(at);
            w.settle(5_000);
        }
        if (0..w.clients.len()).all(|at| w.outbox(at).is_empty()) {
            for at in 0..w.clients.len() {
                w.pull(at);
                w.settle(5_000);
            }
            return;
        }
    }
}

/// The documents a client holds, by key.
fn documents(w: &World, at: usize) -> BTreeMap<String, Value> {
    w.clients[at].host.documents("todos").into_iter().map(|(k, v)| (k.trim_matches('"').to_owned(), v)).collect()
}

fn server_documents(w: &World) -> BTreeMap<String, Value> {
    w.server
        .records
        .values()
        .filter_map(|r| Some((r.key.describe().trim_matches('"').to_owned(), r.value.clone()?)))
        .collect()
}

/// Whether any stored value of client `at`, as it lies in the database, names a document field.
fn stores_in_clear(w: &World, at: usize) -> bool {
    let db = &w.clients[at].host.db;
    let stores = w.schema.required_stores();
    stores.iter().flat_map(|s| db.rows(&s.name)).any(|(_, raw)| {
        let raw = raw.to_string();
        ["\"x\"", "\"y\"", "\"z\""].iter().any(|field| raw.contains(field))
    })
}

fn run(strategy: Rule, actions: &[Action], skew: f64) -> Result<(), TestCaseError> {
    run_in(world(strategy, skew, None), strategy, actions)
}

fn run_in(mut w: World, strategy: Rule, actions: &[Action]) -> Result<(), TestCaseError> {
    let mut written: Vec<Vec<String>> = vec![Vec::new(), Vec::new()];
    for action in actions {
        match *action {
            Action::Write { client, key, kind, field, n } => {
                if let Some(id) = write(&mut w, client, key, kind, field, n) {
                    written[client].push(id);
                }
            }
            Action::Answer => {
                w.answer_one();
            }
            Action::Tick => {
                w.advance();
            }
            Action::Sync(at) => {
                w.sync(at);
            }
            Action::Pull(at) => {
                w.pull(at);
            }
        }
    }
    quiesce(&mut w);
    let expected = server_documents(&w);
    for (at, written) in written.iter().enumerate() {
        prop_assert!(w.outbox(at).is_empty(), "{strategy:?}: client {at} did not drain");
        prop_assert!(w.dead(at).is_empty(), "{strategy:?}: client {at} dead-lettered");
        prop_assert_eq!(&documents(&w, at), &expected, "{:?}: client {} diverged", strategy, at);
        // An op never sent was folded into another or dropped by a resolution; one sent but
        // never applied met a conflict.
        let sent = |id: &String| w.requests.iter().any(|r| r.mutations.iter().any(|m| &m.id == id));
        let lost = written.iter().filter(|id| sent(id) && !w.server.applied.contains_key(*id)).count();
        let conflicts = w.clients[at].host.events.iter().filter(|e| e.name() == "conflict").count();
        prop_assert!(lost == 0 || conflicts > 0, "{strategy:?}: client {at} lost {lost} writes without a conflict");
        let sealed = w.encryption.is_some();
        prop_assert!(
            !(sealed && stores_in_clear(&w, at)),
            "{strategy:?}: client {at} stored a document field in clear"
        );
    }
    prop_assert!(w.server.effects.values().all(|&n| n == 1), "a mutation changed the records twice");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn two_clients_and_a_server_converge_under_every_strategy(
        actions in prop::collection::vec(action(), 0..60),
        skew in (-600_000i64..600_000).prop_map(|ms| ms as f64),
    ) {
        for strategy in [Rule::Lww, Rule::ServerWins, Rule::ClientWins, Rule::Merge, Rule::Custom] {
            run(strategy, &actions, skew)?;
        }
    }
}

#[test]
fn a_concurrent_edit_of_one_document_is_resolved_by_the_later_stamp_under_lww() {
    let mut w = world(Rule::Lww, 0.0, None);
    w.put(0, "k", json!({"t": 1}));
    quiesce(&mut w);
    w.event(0, Event::Offline);
    w.event(1, Event::Offline);
    w.patch(0, "k", json!({"t": 2}));
    w.now += 100.0;
    w.patch(1, "k", json!({"t": 3}));
    w.event(0, Event::Online);
    w.event(1, Event::Online);
    quiesce(&mut w);
    assert_eq!(server_documents(&w)["k"], json!({"id": "k", "t": 3}), "b wrote later");
    assert_eq!(documents(&w, 0), server_documents(&w));
    assert_eq!(documents(&w, 1), server_documents(&w));
    assert!(w.clients[1].host.events.iter().any(|e| e.name() == "conflict"), "b's base was stale");
}

#[test]
fn merge_keeps_a_remote_edit_made_after_seeing_this_clients_own_write() {
    let mut w = world(Rule::Merge, 0.0, None);
    w.put(0, "k", json!({"title": 1}));
    quiesce(&mut w);
    w.now += 10.0;
    w.patch(0, "k", json!({"title": 2}));
    quiesce(&mut w); // title 2, acknowledged: a's base moves to it
    w.event(0, Event::Offline);
    w.patch(0, "k", json!({"done": 1})); // queued
    w.patch(1, "k", json!({"title": 3})); // b saw title 2 and changed it
    quiesce(&mut w);
    w.now += 1_000.0; // a's stamps are later: without the moved base, a's old title would win
    w.event(0, Event::Online);
    quiesce(&mut w);
    assert_eq!(server_documents(&w)["k"], json!({"id": "k", "title": 3, "done": 1}));
    assert_eq!(documents(&w, 0), server_documents(&w));
    assert_eq!(documents(&w, 1), server_documents(&w));
}

#[test]
fn a_push_that_landed_is_followed_by_a_pull() {
    // What landed may have moved versions other clients' changes sit on.
    let mut w = world(Rule::Lww, 0.0, None);
    w.settle(1_000);
    let pulls = w.pulls;
    w.put(0, "k", json!({"t": 1}));
    w.settle(1_000);
    assert_eq!(w.requests.len(), 1);
    assert_eq!(w.pulls, pulls + 1, "one pull after the push, unasked");
}

#[test]
fn a_local_side_that_wins_keeps_its_own_stamp() {
    // Re-stamping it would make an old write overtake every write made since, here or elsewhere.
    let mut w = world(Rule::ClientWins, 0.0, None);
    w.put(0, "k", json!({"t": 0}));
    quiesce(&mut w);
    w.event(0, Event::Offline);
    w.patch(0, "k", json!({"t": "a"}));
    let stamp = w.outbox(0)[0].hlc.clone().unwrap();
    w.now += 1_000.0;
    w.patch(1, "k", json!({"t": "b"}));
    quiesce(&mut w);
    w.now += 1_000.0;
    w.event(0, Event::Online);
    quiesce(&mut w);
    assert_eq!(server_documents(&w)["k"], json!({"id": "k", "t": "a"}), "client-wins");
    let record = w.server.records.values().next().unwrap();
    assert!(record.hlc.as_deref().unwrap().starts_with(&stamp), "{:?} vs {stamp}", record.hlc);
    assert!(w.clients[0].host.events.iter().any(|e| e.name() == "conflict"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// The same property with every client's database encrypted (`core::vault`): the rules see
    /// exactly what they saw in clear, and no document field is ever stored in clear.
    #[test]
    fn encrypted_clients_converge_and_store_no_field_in_clear(
        actions in prop::collection::vec(action(), 0..60),
        skew in (-600_000i64..600_000).prop_map(|ms| ms as f64),
    ) {
        for strategy in [Rule::Lww, Rule::Merge, Rule::Custom] {
            run_in(world(strategy, skew, Some([7; 32])), strategy, &actions)?;
        }
    }
}
