//! An outbox bound to one user (`sync.user`), natively: on a shared device, after an account
//! switch the previous user's queued writes are neither pushed with the new user's token nor
//! lost. They wait, do not hold the new user's queue up, survive the new user's acknowledgements
//! and dead letters, and go when their user signs in again. The shipped replica on an in-memory
//! IndexedDB against the model server, as in `machine_tests.rs`.

use serde_json::json;

use crate::core::replica::Request;
use crate::core::test_world::{options, World};

/// A push-only client on a device where `user` is signed in.
fn device(w: &mut World) -> usize {
    w.client("device-1", options(10, 3, "push"), 1)
}

/// The app signs `user` in: the page opens the database again with `sync.user` set so.
fn sign_in(w: &mut World, at: usize, user: Option<&str>) {
    w.clients[at].config.options.user = user.map(str::to_owned);
    // As in the browser, each start brings a fresh id, stored only where none is yet.
    w.clients[at].config.fresh_client_id = format!("device-1-start-{}", w.now);
    w.now += 1.0;
    w.reload(at);
}

fn applied(w: &World, id: &str) -> bool {
    w.server.effects.contains_key(id)
}

fn queued_for(w: &World, at: usize) -> Vec<(String, Option<String>)> {
    w.outbox(at).into_iter().map(|e| (e.op.id, e.user)).collect()
}

#[test]
fn another_users_writes_wait_for_their_user_and_are_never_lost() {
    let mut w = World::new();
    let c = device(&mut w);
    sign_in(&mut w, c, Some("ada"));
    // Ada's writes never left: she signed out before a push (the reload drops what was in flight).
    let ada = [w.put(c, "a1", json!({"by": "ada"})), w.put(c, "shared", json!({"by": "ada"}))];
    sign_in(&mut w, c, Some("bob"));
    let bob = [w.put(c, "b1", json!({"by": "bob"})), w.put(c, "shared", json!({"by": "bob"}))];
    let waiter = w.sync(c);
    w.settle(100);
    w.applied_once(&bob);
    assert!(ada.iter().all(|id| !applied(&w, id)), "never pushed with Bob's token");
    assert_eq!(w.clients[c].host.settled.get(&waiter).map(Result::is_ok), Some(true), "Bob's sync() is done");
    assert_eq!(w.status(c).pending, 0, "Ada's writes are not Bob's to send");
    let kept = queued_for(&w, c);
    assert_eq!(kept.len(), 2, "Ada's writes are kept, and Bob's write on the same key folded none in");
    assert!(kept.iter().all(|(id, user)| ada.contains(id) && user.as_deref() == Some("ada")));
    assert_eq!(w.record("shared").unwrap()["by"], "bob");

    sign_in(&mut w, c, Some("ada"));
    w.sync(c);
    w.settle(100);
    w.applied_once(&ada[..1]);
    // Her write on the key Bob wrote after her meets his as a conflict, which the rules decide
    // (last writer wins: Bob's) instead of overwriting it blindly.
    assert_eq!(w.record("shared").unwrap()["by"], "bob");
    assert!(!applied(&w, &ada[1]));
    assert!(w.outbox(c).is_empty());
}

/// Bob's acknowledged entries are deleted by key ranges; Ada's entries between them are not in
/// any range, so they survive every acknowledgement.
#[test]
fn interleaved_users_writes_survive_each_others_acknowledgements() {
    let mut w = World::new();
    let c = device(&mut w);
    let mut ada = Vec::new();
    let mut bob = Vec::new();
    for round in 0..3 {
        sign_in(&mut w, c, Some("ada"));
        ada.push(w.put(c, &format!("a{round}"), json!({})));
        sign_in(&mut w, c, Some("bob"));
        bob.push(w.put(c, &format!("b{round}"), json!({})));
    }
    w.sync(c);
    w.settle(100);
    w.applied_once(&bob);
    let kept: Vec<String> = queued_for(&w, c).into_iter().map(|(id, _)| id).collect();
    assert_eq!(kept, ada, "every one of Ada's entries is still queued, in order");
}

/// A backlog of another user's writes longer than the window the push reads does not hide the
/// signed-in user's writes behind it.
#[test]
fn a_long_backlog_of_another_user_does_not_hold_up_the_queue() {
    let mut w = World::new();
    let c = device(&mut w);
    sign_in(&mut w, c, Some("ada"));
    let ada: Vec<String> = (0..45).map(|i| w.put(c, &format!("a{i}"), json!({}))).collect();
    sign_in(&mut w, c, Some("bob"));
    let bob = w.put(c, "b", json!({}));
    let waiter = w.sync(c);
    w.settle(100);
    w.applied_once(&[bob]);
    assert_eq!(w.clients[c].host.settled.get(&waiter).map(Result::is_ok), Some(true));
    assert_eq!((w.outbox(c).len(), w.status(c).pending), (45, 0));
    sign_in(&mut w, c, Some("ada"));
    w.sync(c);
    w.settle(100);
    w.applied_once(&ada);
}

/// Writes queued without a user (before the app set `sync.user`, or while signed out) go with
/// the next user's push; a context without `sync.user` never sends a user's writes.
#[test]
fn writes_without_a_user_go_with_anyone_and_a_context_without_one_sends_only_those() {
    let mut w = World::new();
    let c = device(&mut w);
    let anonymous = w.put(c, "anon", json!({}));
    sign_in(&mut w, c, Some("ada"));
    let ada = w.put(c, "a", json!({}));
    sign_in(&mut w, c, None);
    w.sync(c);
    w.settle(100);
    w.applied_once(&[anonymous]);
    assert!(!applied(&w, &ada), "a context that does not know the user sends none of hers");
    sign_in(&mut w, c, Some("ada"));
    w.sync(c);
    w.settle(100);
    w.applied_once(&[ada]);
}

/// A dead letter keeps its user: Bob retrying Ada's letter queues it for Ada, not for himself.
#[test]
fn a_retried_dead_letter_stays_with_its_user() {
    let mut w = World::new();
    let c = device(&mut w);
    sign_in(&mut w, c, Some("ada"));
    let id = w.put(c, "bad", json!({}));
    w.server.refuse.insert(id.clone());
    w.sync(c);
    w.settle(200);
    assert_eq!(w.dead(c).first().and_then(|l| l.user.clone()).as_deref(), Some("ada"));
    // The server's rule changes: the op is welcome now.
    w.server.refuse.clear();
    w.server.rejected.clear();
    sign_in(&mut w, c, Some("bob"));
    let now = w.now;
    let retry = w.clients[c].host.request(Request::RetryDead(None), now);
    w.settle(100);
    assert_eq!(w.clients[c].host.settled.get(&retry), Some(&Ok(json!(1))));
    assert!(!applied(&w, &id), "Bob's push does not send Ada's letter");
    assert_eq!(queued_for(&w, c), vec![(id.clone(), Some("ada".to_owned()))]);
    sign_in(&mut w, c, Some("ada"));
    w.sync(c);
    w.settle(100);
    w.applied_once(&[id]);
}

/// Bob's push raises the mark of what pushes took above Ada's queued writes, which were never
/// sent. His pulls must still leave her documents as she left them (her edit stays on screen, and
/// no resolution of his replaces her op), and after a resync his sweep must not delete them.
#[test]
fn another_users_pending_documents_are_left_alone_by_this_users_pulls() {
    let mut w = World::new();
    let c = w.client("device-1", options(10, 3, "both"), 1);
    sign_in(&mut w, c, Some("ada"));
    let ada = w.put(c, "x", json!({"by": "ada"}));
    sign_in(&mut w, c, Some("bob"));
    let bob = w.put(c, "y", json!({"by": "bob"}));
    w.sync(c);
    w.settle(100);
    w.applied_once(&[bob]);
    let change = json!({"collection": "todos", "key": "x", "value": {"id": "x", "by": "server"}, "version": 5});
    let body = json!({"protocol": 1, "changes": [change], "cursor": "9", "hasMore": false});
    w.pull_script.push_back(crate::core::push_engine::HttpReply::Response {
        status: 200,
        retry_after: None,
        body: body.to_string(),
    });
    w.pull(c);
    w.settle(100);
    assert_eq!(w.clients[c].host.documents("todos")["\"x\""]["by"], "ada", "Ada's edit is still what the device shows");
    assert_eq!(queued_for(&w, c), vec![(ada, Some("ada".to_owned()))]);
}

/// A server binds a client id to the user who first pushed with it (a JWT's `sub`): after an
/// account switch the next user pushes under an id of its own, kept for that user's next visit,
/// never under the previous user's (the server would refuse it, 403, and Bob would be stuck).
#[test]
fn each_user_pushes_under_a_client_id_of_its_own() {
    let mut w = World::new();
    let c = device(&mut w);
    let pushed_as = |w: &mut World, user: &str| {
        sign_in(w, c, Some(user));
        w.put(c, &format!("{user}-{}", w.now), json!({"by": user}));
        w.sync(c);
        w.settle(100);
        w.requests.last().unwrap().client_id.clone()
    };
    let ada = pushed_as(&mut w, "ada");
    let bob = pushed_as(&mut w, "bob");
    assert_ne!(ada, bob, "Bob does not push under Ada's client id");
    assert_eq!(pushed_as(&mut w, "ada"), ada, "Ada keeps hers");
    assert_eq!(pushed_as(&mut w, "bob"), bob, "and Bob his");
}
