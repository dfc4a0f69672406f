//! The sync machine against a broken or hostile server: answers that are not JSON, truncated,
//! of the wrong shape, of another protocol, naming the wrong ops, huge, or of unexpected
//! statuses, some sent after the server did apply the batch. Whatever arrives, the replica must
//! not panic, must report a clear error, and must keep every unacknowledged write queued: once
//! the server behaves, each write lands exactly once and in order.
//!
//! Excluded on purpose: well-formed lies (`applied` for a batch the server never applied). No
//! client can tell those from the truth; the protocol makes the server responsible for them.

use proptest::prelude::*;
use serde_json::json;

use crate::core::error::SyncErrorCode;
use crate::core::host::Event;
use crate::core::test_world::{options, Fault, World};

/// A body a broken server might send: `pick` chooses the kind, `ids` are the op ids of the
/// batch in flight (as far as the test knows them), `n` varies lengths.
fn hostile_body(pick: u8, n: u8, ids: &[String]) -> String {
    let applied = |id: &str| json!({"status": "applied", "id": id, "version": 1});
    match pick % 12 {
        0 => String::new(),
        1 => "<html><body>502 Bad Gateway</body></html>".to_owned(),
        2 => "{\"protocol\":1,\"results\":[".to_owned(), // truncated
        3 => json!({"protocol": 3, "results": []}).to_string(),
        4 => json!({"protocol": 1, "results": "applied"}).to_string(),
        5 => {
            json!({"protocol": 1, "results": ids.iter().map(|id| applied(id)).skip(1).collect::<Vec<_>>()}).to_string()
        }
        6 => {
            // The right ids, in the wrong order.
            let mut results: Vec<_> = ids.iter().map(|id| applied(id)).collect();
            results.reverse();
            if results.len() < 2 {
                results.push(applied("someone-else"));
            }
            json!({"protocol": 1, "results": results}).to_string()
        }
        7 => json!({"protocol": 1, "results": [{"status": "applied", "id": "x", "version": -1}]}).to_string(),
        8 => json!({"protocol": 1, "results": [{"status": "teleported", "id": ids.first()}]}).to_string(),
        9 => format!("{}{}", " ".repeat(1 << 20), "{\"protocol\":1}"), // a megabyte of nothing
        10 => "\u{0}\u{1}\u{fffd}".repeat(usize::from(n) + 1),
        _ => json!([1, 2, 3]).to_string(),
    }
}

#[derive(Debug, Clone)]
enum Action {
    Write(u8, u8),
    Step,
    /// A hostile answer to the next request: kind, length, whether the server applied the batch
    /// first, and the HTTP status (200 most of the time: the worst case, a "success" with garbage).
    /// No 4xx: those are refusals, which park ops in the dead letters (tested in machine_tests.rs).
    Hostile(u8, u8, bool, u16),
    Reload,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => (0u8..5, 0u8..3).prop_map(|(k, o)| Action::Write(k, o)),
        4 => Just(Action::Step),
        3 => (any::<u8>(), any::<u8>(), any::<bool>(), prop_oneof![
            6 => Just(200u16), 1 => Just(204u16), 1 => Just(302u16), 1 => Just(429u16), 1 => Just(502u16),
        ]).prop_map(|(kind, n, applied, status)| Action::Hostile(kind, n, applied, status)),
        1 => Just(Action::Reload),
    ]
}

/// A write of kind `op` on key `k`; its op id, unless it was a patch of a missing document.
fn write(w: &mut World, c: usize, key: u8, op: u8, n: usize) -> Option<String> {
    let key = format!("k{key}");
    match op {
        0 => Some(w.put(c, &key, json!({ "n": n }))),
        1 => w.patch_now(c, &key, json!({ "n": n })),
        _ => Some(w.delete(c, &key)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn hostile_answers_never_lose_or_duplicate_a_write(actions in prop::collection::vec(action(), 1..60), seed in any::<u64>()) {
        let mut w = World::new();
        let c = w.client("c", options(3, u32::MAX, "push"), seed);
        let mut expected = World::new();
        let e = expected.client("c", options(1, u32::MAX, "push"), seed);
        let mut ids: Vec<(String, u8)> = Vec::new();
        for action in actions {
            match action {
                Action::Write(key, op) => {
                    let n = ids.len();
                    if let Some(id) = write(&mut w, c, key, op, n) {
                        ids.push((id, key));
                    }
                    write(&mut expected, e, key, op, n);
                    expected.settle(1_000);
                }
                Action::Step => {
                    if !w.answer_one() {
                        w.advance();
                    }
                }
                Action::Hostile(kind, n, applied, status) => {
                    let pending: Vec<String> = w.outbox(c).into_iter().take(3).map(|e| e.op.id).collect();
                    w.script.push_back(Fault::Garbage { applied, status, body: hostile_body(kind, n, &pending) });
                }
                Action::Reload => w.reload(c),
            }
            // Whatever happened, nothing left the outbox without the server having it: each op is
            // queued, applied or dead, or was folded into an earlier op of its document that is.
            let outbox = w.outbox(c);
            let dead = w.dead(c);
            let kept = |id: &String| {
                outbox.iter().any(|e| &e.op.id == id) || w.server.applied.contains_key(id) || dead.iter().any(|d| &d.op.id == id)
            };
            for (i, (id, key)) in ids.iter().enumerate() {
                let folded = ids[..i].iter().any(|(earlier, k)| k == key && kept(earlier));
                prop_assert!(kept(id) || folded, "{id} left the outbox unacknowledged");
            }
        }
        w.script.clear();
        w.event(c, Event::Online);
        w.settle(50_000);
        prop_assert!(w.outbox(c).is_empty());
        prop_assert!(w.dead(c).is_empty());
        prop_assert_eq!(w.server.documents(), expected.server.documents());
        prop_assert!(w.server.effects.values().all(|&n| n == 1), "a mutation changed the records twice");
    }
}

/// A "200 OK" whose body is not an answer to the batch is an error with a clear message, the
/// batch stays queued (an outage: no attempt counted), and the resend lands it (as `duplicate` when the
/// server had applied it).
#[test]
fn a_success_with_a_broken_body_is_a_protocol_error_and_the_batch_is_resent() {
    for (kind, applied) in [(0, false), (2, true), (5, true), (6, false), (9, true)] {
        let mut w = World::new();
        let c = w.client("c", options(3, u32::MAX, "push"), 7);
        w.event(c, Event::Offline);
        let ids = [w.put(c, "a", json!({"n": 1})), w.put(c, "b", json!({"n": 2}))];
        w.script.push_back(Fault::Garbage { applied, status: 200, body: hostile_body(kind, 3, &ids) });
        w.event(c, Event::Online);
        assert!(w.answer_one());
        let error = w.status(c).last_error.clone().expect("an error is reported");
        assert_eq!(error.code, SyncErrorCode::Protocol, "kind {kind}");
        assert!(!error.message.is_empty());
        assert_eq!(w.outbox(c).len(), 2, "kind {kind}: nothing left the outbox");
        assert!(w.outbox(c).iter().all(|e| e.attempts == 0 && e.last_error.is_some()));
        w.settle(100);
        assert!(w.outbox(c).is_empty());
        assert_eq!(w.stats(c).duplicates, if applied { 2 } else { 0 }, "kind {kind}");
        assert!(w.server.effects.values().all(|&n| n == 1));
    }
}
