//! Transactions that die with their IndexedDB connection (Safari's lost IndexedDB server, a
//! transaction the host gave up on as hung), natively: nothing of such a transaction committed,
//! so the replica runs it again once on the new connection the host opens (an API call afresh,
//! the sync loop from its top), and reports `STORAGE` only if that dies too. Nothing is lost and
//! nothing applied twice either way.

use serde_json::json;

use crate::core::error::ErrorCode;
use crate::core::host::Failure;
use crate::core::test_world::{options, World};

fn outcome(w: &mut World, at: usize, waiter: u32) -> Result<serde_json::Value, Failure> {
    w.clients[at].host.settled.remove(&waiter).expect("the call was answered")
}

fn offline_client(w: &mut World) -> usize {
    let c = w.client("client-a", options(10, 10, "both"), 1);
    w.settle(100);
    w.clients[c].online = false;
    c
}

#[test]
fn a_patch_whose_connection_died_runs_again_once() {
    let mut w = World::new();
    let c = offline_client(&mut w);
    w.put(c, "k", json!({"title": "milk", "rank": 1}));
    w.clients[c].host.losing_txs = 1;
    let waiter = w.patch(c, "k", json!({"rank": 2}));
    w.gather();
    assert!(outcome(&mut w, c, waiter).is_ok(), "run again on the new connection");
    assert_eq!(w.clients[c].host.documents("todos")["\"k\""], json!({"id": "k", "title": "milk", "rank": 2}));
    assert_eq!(w.outbox(c).len(), 2, "the put and one patch");

    w.clients[c].host.losing_txs = 2;
    let waiter = w.patch(c, "k", json!({"rank": 3}));
    w.gather();
    let failure = outcome(&mut w, c, waiter).unwrap_err();
    assert_eq!(failure.code, ErrorCode::Storage, "{}", failure.message);
    assert_eq!(w.clients[c].host.documents("todos")["\"k\""]["rank"], json!(2), "nothing half-done");
    assert_eq!(w.outbox(c).len(), 2);
}

#[test]
fn a_push_whose_connection_died_goes_on_at_once_and_lands_once() {
    let mut w = World::new();
    let c = w.client("client-a", options(10, 10, "both"), 1);
    w.settle(100);
    // The settling transaction (after the server applied the batch) dies with its connection.
    w.clients[c].host.lose_next_write_to = Some("__wharf_outbox".into());
    let id = w.put(c, "k", json!({"rev": 1}));
    w.settle_until(w.now); // at once: no timer and no sync() brings it back
    assert!(w.clients[c].host.lose_next_write_to.is_none(), "the fault was met");
    assert!(w.outbox(c).is_empty(), "the loop went on on a new connection");
    assert_eq!(w.record("k"), Some(json!({"id": "k", "rev": 1})));
    assert_eq!(w.server.effects.get(&id), Some(&1), "applied once; the resend was a duplicate");
}

#[test]
fn a_connection_that_dies_again_is_a_storage_error_and_the_next_run_recovers() {
    let mut w = World::new();
    let c = w.client("client-a", options(10, 10, "both"), 1);
    w.settle(100);
    let id = w.put(c, "k", json!({"rev": 1}));
    w.clients[c].host.losing_txs = 2;
    let waiter = w.sync(c);
    w.settle_until(w.now);
    let failure = outcome(&mut w, c, waiter).unwrap_err();
    assert_eq!(failure.code, ErrorCode::Storage, "{}", failure.message);
    assert_eq!(w.outbox(c).len(), 1, "the write still waits");

    let waiter = w.sync(c);
    w.settle(100);
    assert!(outcome(&mut w, c, waiter).is_ok());
    assert!(w.outbox(c).is_empty());
    assert_eq!(w.server.effects.get(&id), Some(&1));
}

#[test]
fn a_pulled_page_whose_connection_died_is_stored_on_the_new_one() {
    let mut w = World::new();
    let a = w.client("client-a", options(10, 10, "both"), 1);
    let b = w.client("client-b", options(10, 10, "both"), 2);
    w.settle(100);
    w.put(a, "k", json!({"rev": 1}));
    w.settle(100);
    w.clients[b].host.settled.clear();
    w.clients[b].host.lose_next_write_to = Some("todos".into());
    let waiter = w.pull(b);
    w.settle_until(w.now);
    let summary = outcome(&mut w, b, waiter).expect("the pull did not fail");
    assert_eq!(summary["applied"], json!(1), "{summary}");
    assert_eq!(w.clients[b].host.documents("todos")["\"k\""], json!({"id": "k", "rev": 1}));
    assert!(w.clients[b].host.lose_next_write_to.is_none(), "the fault was met");
}
