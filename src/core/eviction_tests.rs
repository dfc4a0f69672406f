//! An emptied database (`sync.expectSynced`, `LoadedClient::evicted`), natively: the browser
//! evicted the origin's storage (Safari after seven days without a visit), the app's own marker
//! says this browser had synced, and the database opens empty. It is reported (status and an
//! event), refilled by a full pull, and what the app wrote meanwhile is pushed only after that
//! pull, so it meets the server's state as a conflict instead of landing blindly over it.

use serde_json::json;

use crate::core::push_engine::HttpReply;
use crate::core::status::SyncEvent;
use crate::core::test_world::{error_body, options, World};

/// Client A's two documents on the server; returns the world.
fn synced_elsewhere() -> World {
    let mut w = World::new();
    let a = w.client("client-a", options(10, 10, "both"), 1);
    w.put(a, "k1", json!({"rev": "a1"}));
    w.put(a, "k2", json!({"rev": "a2"}));
    w.settle(100);
    assert!(w.record("k1").is_some() && w.record("k2").is_some());
    w
}

/// A device whose database was emptied: `expect` is the app's marker.
fn device(w: &mut World, expect: bool) -> usize {
    let mut opts = options(10, 10, "both");
    opts.expect_synced = expect;
    w.client("device", opts, 2)
}

/// The next `n` pulls fail with 503 (pushes are unaffected).
fn pulls_fail(w: &mut World, n: usize) {
    let down = || HttpReply::Response { status: 503, retry_after: None, body: error_body("DOWN", "down") };
    w.pull_script.extend(std::iter::repeat_with(down).take(n));
}

fn names(w: &World, at: usize) -> Vec<&'static str> {
    w.clients[at].host.event_names()
}

fn evicted_reports(w: &World, at: usize) -> usize {
    w.clients[at].host.events.iter().filter(|e| matches!(e, SyncEvent::Evicted)).count()
}

#[test]
fn an_emptied_database_is_reported_refilled_and_pushes_only_after_the_full_pull() {
    let mut w = synced_elsewhere();
    let d = device(&mut w, true);
    // The app writes before anything was pulled: a default it recreates, and a new document.
    w.put(d, "k1", json!({"rev": "default"}));
    let new = w.put(d, "n1", json!({"rev": "d1"}));
    w.gather();
    assert!(w.status(d).evicted, "the status says so while it is refilled");
    w.settle(200);
    assert_eq!(evicted_reports(&w, d), 1, "reported once");
    let events = names(&w, d);
    let first_pull = events.iter().position(|n| *n == "pull").expect("it pulled");
    let first_push = events.iter().position(|n| *n == "start").expect("it pushed");
    assert!(first_pull < first_push, "the full pull comes before any push: {events:?}");
    assert!(events.contains(&"conflict"), "the recreated default met the server's k1 as a conflict");
    assert!(!w.status(d).evicted && w.status(d).has_synced, "refilled");
    assert_eq!(w.clients[d].host.documents("todos").len(), 3, "k1, k2 and n1");
    w.applied_once(&[new]);
}

#[test]
fn without_the_apps_marker_or_with_a_stored_client_id_nothing_is_reported() {
    let mut w = synced_elsewhere();
    let fresh = device(&mut w, false);
    w.settle(100);
    assert_eq!(evicted_reports(&w, fresh), 0, "a new database without the marker is just new");
    let mut w = synced_elsewhere();
    let d = device(&mut w, true);
    w.settle(100);
    assert_eq!(evicted_reports(&w, d), 1);
    w.reload(d);
    w.settle(100);
    assert_eq!(evicted_reports(&w, d), 0, "its next visit finds its client id: not emptied");
    assert!(!w.status(d).evicted);
}

#[test]
fn while_the_refill_fails_sync_rejects_and_nothing_is_pushed() {
    let mut w = synced_elsewhere();
    pulls_fail(&mut w, 3);
    let d = device(&mut w, true);
    let pushes_before = w.requests.len();
    let write = w.put(d, "n1", json!({"rev": "d1"}));
    let waiter = w.sync(d);
    w.settle_until(w.now + 50.0);
    let outcome = w.clients[d].host.settled.get(&waiter).cloned();
    assert!(matches!(outcome, Some(Err(_))), "sync() rejects with the pull's failure: {outcome:?}");
    assert_eq!(w.requests.len(), pushes_before, "nothing pushed before the refill");
    assert!(w.status(d).evicted);
    w.settle(300);
    assert!(!w.status(d).evicted);
    w.applied_once(&[write]);
}

/// The mark outlives the context that found the database empty: a reload (or another tab that
/// drains) before the refill ended still holds its pushes, without reporting it again.
#[test]
fn a_reload_before_the_refill_ended_still_holds_pushes() {
    let mut w = synced_elsewhere();
    pulls_fail(&mut w, 2);
    let d = device(&mut w, true);
    w.settle_until(w.now + 10.0);
    let pushes_before = w.requests.len();
    let write = w.put(d, "n1", json!({"rev": "d1"}));
    w.reload(d);
    w.gather();
    assert!(w.status(d).evicted, "still to be refilled after the reload");
    assert_eq!(evicted_reports(&w, d), 0, "reported once, by the context that found it");
    pulls_fail(&mut w, 2);
    w.settle_until(w.now + 10.0);
    assert_eq!(w.requests.len(), pushes_before, "nothing pushed before the refill");
    w.settle(300);
    assert!(!w.status(d).evicted);
    w.applied_once(&[write]);
    w.reload(d);
    w.gather();
    assert!(!w.status(d).evicted, "the refill removed the mark");
}

/// A push-only client cannot refill: the emptied database is reported, nothing waits for a pull
/// that never comes, and the status does not stay "evicted" for good.
#[test]
fn a_push_only_client_reports_the_eviction_and_keeps_pushing() {
    let mut w = synced_elsewhere();
    let mut opts = options(10, 10, "push");
    opts.expect_synced = true;
    let d = w.client("device", opts, 2);
    let write = w.put(d, "n1", json!({"rev": "d1"}));
    w.settle(100);
    assert_eq!(evicted_reports(&w, d), 1);
    assert!(!w.status(d).evicted, "no refill to wait for");
    w.applied_once(&[write]);
}
