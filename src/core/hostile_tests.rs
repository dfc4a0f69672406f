//! The push engine against a broken or hostile server (issue "Prove it", fuzzing): answers that
//! are not JSON, truncated, of the wrong shape, of another protocol, naming the wrong ops, huge,
//! or of unexpected statuses, some sent after the server did apply the batch. Whatever arrives,
//! the engine must not panic, must report a clear error, and must keep every unacknowledged write
//! queued: once the server behaves, each write lands exactly once and in order.
//!
//! Excluded on purpose: well-formed lies (`applied` for a batch the server never applied). No
//! client can tell those from the truth; the protocol makes the server responsible for them.

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::core::fakes::{block_on, FakeHost, Fault};
use crate::core::outbox::OpKind;
use crate::core::retry::RetryPolicy;

fn options(batch_size: usize) -> EngineOptions {
    EngineOptions {
        batch_size,
        max_batch_bytes: 1 << 20,
        retry: RetryPolicy { base_ms: 100, max_ms: 10_000, max_attempts: u32::MAX },
        max_auth_refreshes: 2,
    }
}

/// A body a broken server might send: `pick` chooses the kind, `ids` are the op ids of the
/// batch in flight (as far as the test knows them), `n` varies lengths.
fn hostile_body(pick: u8, n: u8, ids: &[String]) -> String {
    let applied = |id: &str| json!({"status": "applied", "id": id, "version": 1});
    match pick % 12 {
        0 => String::new(),
        1 => "<html><body>502 Bad Gateway</body></html>".to_owned(),
        2 => "{\"protocol\":1,\"results\":[".to_owned(), // truncated
        3 => json!({"protocol": 2, "results": []}).to_string(),
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
    /// No 4xx: those are refusals, which park ops in the dead letters (tested in engine_tests.rs).
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn hostile_answers_never_lose_or_duplicate_a_write(actions in prop::collection::vec(action(), 1..60), seed in any::<u64>()) {
        let host = FakeHost::new(seed);
        let expected = FakeHost::new(seed);
        let mut engine = PushEngine::new("c".into(), options(3));
        let mut ids: Vec<(String, u8)> = Vec::new();
        for action in actions {
            match action {
                Action::Write(key, op) => {
                    let op = [OpKind::Put, OpKind::Patch, OpKind::Delete][op as usize];
                    let payload = json!({ "n": ids.len() });
                    ids.push((host.write(&format!("k{key}"), op, payload.clone()), key));
                    expected.write(&format!("k{key}"), op, payload);
                }
                Action::Step => match block_on(engine.step(&host)) {
                    Step::WaitUntil(at) => host.now.set(host.now.get().max(at)),
                    Step::StorageFailed => engine = PushEngine::new("c".into(), options(3)),
                    _ => {}
                },
                Action::Hostile(kind, n, applied, status) => {
                    let pending: Vec<String> = host.outbox.borrow().values().take(3).map(|e| e.id.clone()).collect();
                    host.fault(Fault::Garbage { applied, status, body: hostile_body(kind, n, &pending) });
                }
                Action::Reload => engine = PushEngine::new("c".into(), options(3)),
            }
            // Whatever happened, nothing left the outbox without the server having it: each op is
            // queued, applied or dead, or was folded into an earlier op of its document that is.
            let server = host.server.borrow();
            let kept = |id: &String| {
                host.outbox.borrow().values().any(|e| &e.id == id)
                    || server.applied.contains_key(id)
                    || host.dead.borrow().iter().any(|d| &d.id == id)
            };
            for (i, (id, key)) in ids.iter().enumerate() {
                let folded = ids[..i].iter().any(|(earlier, k)| k == key && kept(earlier));
                prop_assert!(kept(id) || folded, "{id} left the outbox unacknowledged");
            }
        }
        host.script.borrow_mut().clear();
        while host.drive(&mut engine, 10_000) == Step::StorageFailed {
            engine = PushEngine::new("c".into(), options(3));
        }
        prop_assert!(host.outbox.borrow().is_empty());
        prop_assert!(host.dead.borrow().iter().all(|d| d.last_error.code == "NOT_FOUND"), "only patches of missing records die");
        let mut model = PushEngine::new("c".into(), options(1));
        prop_assert_eq!(expected.drive(&mut model, 10_000), Step::Idle);
        prop_assert_eq!(&host.server.borrow().records, &expected.server.borrow().records);
        prop_assert!(host.server.borrow().effects.values().all(|&n| n == 1), "a mutation changed the records twice");
    }
}

/// A "200 OK" whose body is not an answer to the batch is an error with a clear message, the
/// batch stays queued with its attempt counted, and the resend lands it (as `duplicate` when the
/// server had applied it).
#[test]
fn a_success_with_a_broken_body_is_a_protocol_error_and_the_batch_is_resent() {
    for (kind, applied) in [(0, false), (2, true), (5, true), (6, false), (9, true)] {
        let host = FakeHost::new(7);
        let ids = [host.write("a", OpKind::Put, json!({"n": 1})), host.write("b", OpKind::Put, json!({"n": 2}))];
        host.fault(Fault::Garbage { applied, status: 200, body: hostile_body(kind, 3, &ids) });
        let mut engine = PushEngine::new("c".into(), options(3));
        let step = block_on(engine.step(&host));
        assert!(matches!(step, Step::WaitUntil(_) | Step::Progress), "kind {kind}: {step:?}");
        let error = engine.status().last_error.clone().expect("an error is reported");
        assert_eq!(error.code, "PROTOCOL", "kind {kind}");
        assert!(!error.message.is_empty());
        assert_eq!(host.outbox.borrow().len(), 2, "kind {kind}: nothing left the outbox");
        assert!(host.outbox.borrow().values().all(|e| e.attempts == 1));
        assert_eq!(host.drive(&mut engine, 100), Step::Idle);
        assert!(host.outbox.borrow().is_empty());
        assert_eq!(engine.stats().duplicates, if applied { 2 } else { 0 }, "kind {kind}");
        assert!(host.server.borrow().effects.values().all(|&n| n == 1));
    }
}
