//! Native tests of the push engine against the fakes in `fakes.rs`: every rule of issue 3, then a
//! property test over random interleavings of writes, faults, offline periods and page reloads.

use serde_json::json;

use super::*;
use crate::core::document::Key;
use crate::core::fakes::{block_on, document, FakeHost, Fault};
use crate::core::outbox::OpKind;
use crate::core::status::SyncState;

fn options(batch_size: usize, max_attempts: u32) -> EngineOptions {
    EngineOptions {
        batch_size,
        max_batch_bytes: 1 << 20,
        retry: RetryPolicy { base_ms: 100, max_ms: 10_000, max_attempts },
        max_auth_refreshes: 2,
    }
}

fn engine(batch_size: usize) -> PushEngine {
    PushEngine::new("client-1".into(), options(batch_size, 10))
}

fn applied_once(host: &FakeHost, ids: &[String]) {
    let server = host.server.borrow();
    for id in ids {
        assert_eq!(server.effects.get(id).copied(), Some(1), "{id} applied exactly once");
    }
}

#[test]
fn an_offline_backlog_drains_in_batches_exactly_once() {
    let host = FakeHost::new(1);
    host.online.set(false);
    let ids: Vec<String> = (0..250).map(|i| host.write(&format!("k{i}"), OpKind::Put, json!({"n": i}))).collect();
    let mut engine = engine(100);
    assert_eq!(host.drive(&mut engine, 10), Step::Offline);
    assert!(host.requests.borrow().is_empty());
    assert_eq!(engine.status().state, SyncState::Offline);

    host.online.set(true);
    assert_eq!(host.drive(&mut engine, 20), Step::Idle);
    let sizes: Vec<usize> = host.requests.borrow().iter().map(|r| r.mutations.len()).collect();
    assert_eq!(sizes, [100, 100, 50]);
    assert!(host.outbox.borrow().is_empty());
    applied_once(&host, &ids);
    assert_eq!((engine.stats().acked, engine.stats().requests), (250, 3));
    assert_eq!(engine.status().state, SyncState::Idle);
    assert_eq!(host.event_names(), ["start", "end"]);
}

#[test]
fn unsent_edits_coalesce_but_sent_entries_are_never_rewritten() {
    let host = FakeHost::new(2);
    host.write("a", OpKind::Put, json!({"t": "x"}));
    host.write("a", OpKind::Patch, json!({"t": "y"}));
    host.write("a", OpKind::Patch, json!({"done": true}));
    host.fault(Fault::DropAfterApply);
    let mut engine = engine(100);
    block_on(engine.step(&host));
    assert_eq!(host.requests.borrow()[0].mutations.len(), 1, "three edits went as one put");
    assert_eq!(host.outbox.borrow().len(), 1, "not acknowledged: still queued");
    // A later edit must not be folded into the entry the server may already have applied.
    host.write("a", OpKind::Patch, json!({"t": "z"}));
    assert_eq!(host.drive(&mut engine, 10), Step::Idle);
    let last = host.requests.borrow().last().unwrap().clone();
    assert_eq!(last.mutations.len(), 2, "the resend and the new patch travel separately");
    let server = host.server.borrow();
    assert_eq!(server.records[&document("todos", &Key::Text("a".into()))], json!({"id": "a", "t": "z", "done": true}));
    assert_eq!(engine.stats().duplicates, 1);
}

#[test]
fn transient_failures_back_off_honour_retry_after_and_count_attempts() {
    let host = FakeHost::new(3);
    let id = host.write("a", OpKind::Put, json!({}));
    host.fault(Fault::Status(503, Some("30")));
    host.fault(Fault::Timeout);
    host.fault(Fault::Network);
    let mut engine = engine(100);
    let start = host.now.get();
    block_on(engine.step(&host));
    let entry = host.outbox.borrow().values().next().unwrap().clone();
    assert_eq!(entry.attempts, 1);
    assert_eq!(entry.last_error.as_ref().map(|e| (e.code.as_str(), e.status)), Some(("FAULT", Some(503))));
    assert!(entry.next_attempt_at >= start + 30_000.0, "Retry-After is a floor");
    assert_eq!(engine.status().state, SyncState::Error);
    // Before the retry time nothing is sent, not even a fresh write on another document.
    host.write("b", OpKind::Put, json!({}));
    assert_eq!(block_on(engine.step(&host)), Step::WaitUntil(entry.next_attempt_at));
    assert_eq!(host.requests.borrow().len(), 1);

    assert_eq!(host.drive(&mut engine, 20), Step::Idle);
    let times = host.request_times.borrow().clone();
    assert_eq!(times.len(), 4);
    assert!(times[1] >= start + 30_000.0);
    assert!(times.windows(2).all(|w| w[1] - w[0] <= 10_000.0 + 30_000.0), "delays stay under the cap");
    applied_once(&host, &[id]);
    assert_eq!(engine.stats().retries, 3);
    assert_eq!(engine.status().last_error, None, "a success clears the error");
}

#[test]
fn offline_time_never_counts_attempts() {
    let host = FakeHost::new(4);
    host.write("a", OpKind::Put, json!({}));
    host.fault(Fault::GoOffline);
    let mut engine = PushEngine::new("c".into(), options(10, 1));
    assert_eq!(host.drive(&mut engine, 5), Step::Offline);
    let entry = host.outbox.borrow().values().next().unwrap().clone();
    assert_eq!((entry.attempts, entry.last_error), (0, None), "a request that failed offline is not an attempt");
    host.now.set(host.now.get() + 86_400_000.0);
    assert_eq!(host.drive(&mut engine, 5), Step::Offline);
    host.online.set(true);
    assert_eq!(host.drive(&mut engine, 5), Step::Idle);
    assert!(host.dead.borrow().is_empty(), "max_attempts 1, yet nothing was dead-lettered");
}

#[test]
fn refused_credentials_refresh_the_token_a_bounded_number_of_times() {
    let host = FakeHost::new(5);
    host.write("a", OpKind::Put, json!({}));
    host.required_token.set(1);
    let mut engine = engine(10);
    assert_eq!(host.drive(&mut engine, 10), Step::Idle, "one refresh was enough");
    assert_eq!(host.requests.borrow().len(), 2);
    assert_eq!(host.token.get(), 1);

    host.write("b", OpKind::Put, json!({}));
    host.required_token.set(100);
    assert_eq!(host.drive(&mut engine, 20), Step::AuthRequired);
    assert_eq!(engine.status().state, SyncState::Auth);
    assert_eq!(host.requests.borrow().len(), 2 + 3, "the first try and two refreshes");
    let entry = host.outbox.borrow().values().next().unwrap().clone();
    assert_eq!(entry.attempts, 0, "refused credentials are not the operation's fault");
    host.required_token.set(0);
    engine.reset_auth();
    assert_eq!(host.drive(&mut engine, 10), Step::Idle);
}

#[test]
fn a_413_splits_the_batch_and_a_lone_oversized_op_is_dead_lettered() {
    let host = FakeHost::new(6);
    let ids: Vec<String> = (0..10).map(|i| host.write(&format!("k{i}"), OpKind::Put, json!({}))).collect();
    host.server.borrow_mut().max_batch = Some(3);
    let mut engine = engine(10);
    assert_eq!(host.drive(&mut engine, 30), Step::Idle);
    assert!(host.requests.borrow().iter().filter(|r| r.mutations.len() <= 3).count() >= 4);
    applied_once(&host, &ids);

    host.write("big", OpKind::Put, json!({}));
    host.fault(Fault::Status(413, None));
    assert_eq!(host.drive(&mut engine, 10), Step::Idle);
    assert_eq!(host.dead.borrow()[0].last_error.code, "TOO_LARGE");
}

#[test]
fn bisection_finds_the_poison_op_among_500_and_the_rest_land() {
    let host = FakeHost::new(7);
    let ids: Vec<String> = (0..501).map(|i| host.write(&format!("k{i}"), OpKind::Put, json!({"n": i}))).collect();
    host.server.borrow_mut().poison.insert(ids[321].clone());
    let mut engine = engine(100);
    assert_eq!(host.drive(&mut engine, 100), Step::Idle);
    let dead = host.dead.borrow();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].id.as_str(), dead[0].last_error.status), (ids[321].as_str(), Some(422)));
    let good: Vec<String> = ids.iter().filter(|id| **id != ids[321]).cloned().collect();
    applied_once(&host, &good);
    assert!(host.requests.borrow().len() <= 20, "{} requests", host.requests.borrow().len());
    assert!(
        matches!(host.events.borrow().iter().find(|e| e.name() == "deadLetter"), Some(SyncEvent::DeadLettered(l)) if l.len() == 1)
    );
}

#[test]
fn per_op_rejections_and_conflicts_do_not_block_other_documents() {
    let host = FakeHost::new(8);
    // Acknowledged entries on both sides: the held one between them must survive their removal.
    let first = host.write("0", OpKind::Put, json!({}));
    let refused = host.write("a", OpKind::Put, json!({}));
    let conflicted = host.write("b", OpKind::Put, json!({"v": 1}));
    let fine = host.write("c", OpKind::Put, json!({}));
    host.server.borrow_mut().refuse.insert(refused.clone());
    host.server.borrow_mut().conflict.insert(conflicted.clone());
    let mut engine = engine(100);
    assert_eq!(host.drive(&mut engine, 10), Step::Idle);
    applied_once(&host, &[first.clone(), fine.clone()]);
    assert_eq!(host.dead.borrow()[0].id, refused);
    // The conflicted entry stays, flagged; a later edit of the same document waits behind it,
    // even with acknowledged entries on both sides of it.
    let x = host.write("x", OpKind::Put, json!({}));
    let later = host.write("b", OpKind::Patch, json!({"v": 2}));
    let y = host.write("y", OpKind::Put, json!({}));
    assert_eq!(host.drive(&mut engine, 10), Step::Idle);
    applied_once(&host, &[first, fine, x, y]);
    let outbox = host.outbox.borrow();
    assert_eq!(outbox.len(), 2);
    let held = outbox.values().find(|e| e.id == conflicted).unwrap();
    assert_eq!(held.conflict.as_ref().map(|c| c.version), Some(99));
    assert!(outbox.values().any(|e| e.id == later), "not sent ahead of the conflict");
    assert_eq!(engine.status().conflicts, 1);
    assert_eq!(host.requests.borrow().len(), 2, "held entries are not resent");
}

#[test]
fn an_op_out_of_attempts_goes_to_the_dead_letters() {
    let host = FakeHost::new(9);
    host.write("a", OpKind::Put, json!({}));
    for _ in 0..3 {
        host.fault(Fault::Status(500, None));
    }
    let mut engine = PushEngine::new("c".into(), options(10, 3));
    assert_eq!(host.drive(&mut engine, 10), Step::Idle);
    let dead = host.dead.borrow();
    assert_eq!((dead.len(), dead[0].attempts, dead[0].last_error.status), (1, 3, Some(500)));
    assert!(host.outbox.borrow().is_empty());
    assert_eq!(engine.stats().dead_lettered, 1);
}

#[test]
fn retried_dead_letters_are_never_folded_together() {
    // The first write reached the server before it died; the second did not. Both are retried
    // under their old ids with a clean schedule: folding the second into the first would make the
    // server answer `duplicate` and drop the second write.
    let host = FakeHost::new(10);
    let mut engine = PushEngine::new("c".into(), options(10, 1));
    let first = host.write("a", OpKind::Put, json!({"rev": "first"}));
    host.fault(Fault::DropAfterApply);
    assert_eq!(host.drive(&mut engine, 10), Step::Idle);
    let second = host.write("a", OpKind::Put, json!({"rev": "second"}));
    host.fault(Fault::Status(503, None));
    assert_eq!(host.drive(&mut engine, 10), Step::Idle);
    assert_eq!(host.dead.borrow().len(), 2);

    host.retry_dead();
    assert!(host.outbox.borrow().values().all(|e| e.resent && e.attempts == 0));
    assert_eq!(host.drive(&mut engine, 10), Step::Idle);
    assert!(host.outbox.borrow().is_empty() && host.dead.borrow().is_empty());
    applied_once(&host, &[first, second]);
    let server = host.server.borrow();
    assert_eq!(server.records[&document("todos", &Key::Text("a".into()))], json!({"id": "a", "rev": "second"}));
}

#[test]
fn a_reload_after_the_server_applied_never_applies_twice_nor_rewrites() {
    let host = FakeHost::new(10);
    let first = host.write("a", OpKind::Put, json!({"t": 1}));
    host.fault(Fault::CrashAfterApply);
    let mut engine = engine(100);
    assert_eq!(block_on(engine.step(&host)), Step::StorageFailed);
    // The page reloads: a new engine, the same storage, the entry still at attempts 0.
    let second = host.write("a", OpKind::Patch, json!({"u": 2}));
    let mut engine = self::engine(100);
    assert_eq!(host.drive(&mut engine, 10), Step::Idle);
    applied_once(&host, &[first.clone(), second]);
    assert_eq!(host.requests.borrow().last().unwrap().mutations[0].id, first, "the resend is unchanged");
    assert_eq!(
        host.server.borrow().records[&document("todos", &Key::Text("a".into()))],
        json!({"id": "a", "t": 1, "u": 2})
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Action {
        Write(u8, u8, u8),
        Step,
        Fault(u8),
        Offline(bool),
        Reload,
    }

    fn action() -> impl Strategy<Value = Action> {
        prop_oneof![
            4 => (0u8..4, 0u8..3, 0u8..4).prop_map(|(k, o, v)| Action::Write(k, o, v)),
            4 => Just(Action::Step),
            2 => (0u8..6).prop_map(Action::Fault),
            1 => any::<bool>().prop_map(Action::Offline),
            1 => Just(Action::Reload),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

        /// Whatever the faults, offline periods and reloads, once the engine settles the server
        /// holds exactly what applying every local write once, in order, gives; no write is lost
        /// and none is applied twice.
        #[test]
        fn every_write_lands_exactly_once_and_in_order(actions in proptest::collection::vec(action(), 1..80), seed in any::<u64>()) {
            let host = FakeHost::new(seed);
            let expected = FakeHost::new(seed);
            let mut engine = PushEngine::new("c".into(), options(3, u32::MAX));
            let mut ids = Vec::new();
            for action in actions {
                match action {
                    Action::Write(key, op, value) => {
                        let op = [OpKind::Put, OpKind::Patch, OpKind::Delete][op as usize];
                        let payload = json!({ format!("f{value}"): value });
                        ids.push(host.write(&format!("k{key}"), op, payload.clone()));
                        expected.write(&format!("k{key}"), op, payload);
                    }
                    Action::Step => match block_on(engine.step(&host)) {
                        Step::WaitUntil(at) => host.now.set(host.now.get().max(at)),
                        // The page died mid-request: it comes back with a fresh engine.
                        Step::StorageFailed => engine = PushEngine::new("c".into(), options(3, u32::MAX)),
                        _ => {}
                    },
                    Action::Fault(kind) => host.fault(match kind {
                        0 => Fault::Status(503, Some("1")),
                        1 => Fault::Timeout,
                        2 => Fault::DropAfterApply,
                        3 => Fault::CrashAfterApply,
                        4 => Fault::Status(429, None),
                        _ => Fault::Network,
                    }),
                    Action::Offline(offline) => host.online.set(!offline),
                    Action::Reload => engine = PushEngine::new("c".into(), options(3, u32::MAX)),
                }
            }
            host.online.set(true);
            while host.drive(&mut engine, 10_000) == Step::StorageFailed {
                engine = PushEngine::new("c".into(), options(3, u32::MAX));
            }
            prop_assert!(host.outbox.borrow().is_empty());
            prop_assert!(host.dead.borrow().iter().all(|d| d.last_error.code == "NOT_FOUND"), "only patches of missing records die");
            // The model: every write sent alone, once, in order, with no faults.
            let mut model = PushEngine::new("c".into(), options(1, u32::MAX));
            prop_assert_eq!(expected.drive(&mut model, 10_000), Step::Idle);
            prop_assert_eq!(&host.server.borrow().records, &expected.server.borrow().records);
            let server = host.server.borrow();
            prop_assert!(server.effects.values().all(|&n| n == 1), "a mutation changed the records twice");
        }
    }
}
