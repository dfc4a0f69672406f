//! The sync machine's push side, natively: the shipped replica (its transactions on an
//! in-memory IndexedDB) against a model server with scripted faults. Every rule of the push
//! engine, then a property test over random interleavings of writes, faults, offline periods
//! and page reloads: nothing lost, nothing applied twice, in order.

use serde_json::json;

use crate::core::error::{ErrorCode, SyncErrorCode};
use crate::core::host::Event;
use crate::core::replica::Request;
use crate::core::status::{SyncEvent, SyncState};
use crate::core::test_world::{options, push_client, Fault, World};

#[test]
fn an_offline_backlog_drains_in_batches_exactly_once() {
    let mut w = World::new();
    let c = push_client(&mut w, 100, 10);
    w.event(c, Event::Offline);
    let ids: Vec<String> = (0..250).map(|i| w.put(c, &format!("k{i}"), json!({"n": i}))).collect();
    w.settle(100);
    assert!(w.requests.is_empty());
    assert_eq!(w.status(c).state, SyncState::Offline);
    assert_eq!(w.status(c).pending, 250, "the status shows what waits while offline");

    w.event(c, Event::Online);
    w.settle(100);
    let sizes: Vec<usize> = w.requests.iter().map(|r| r.mutations.len()).collect();
    assert_eq!(sizes, [100, 100, 50]);
    assert!(w.outbox(c).is_empty());
    w.applied_once(&ids);
    assert_eq!((w.stats(c).acked, w.stats(c).requests), (250, 3));
    assert_eq!(w.status(c).state, SyncState::Idle);
    assert_eq!(w.clients[c].host.event_names(), ["start", "end"]);
}

#[test]
fn unsent_edits_coalesce_but_sent_entries_are_never_rewritten() {
    let mut w = World::new();
    let mut opts = options(100, 10, "push");
    opts.debounce_ms = 50; // the edits of a burst wait for each other
    let c = w.client("client-1", opts, 1);
    w.settle(10);
    w.put(c, "a", json!({"t": "x"}));
    w.patch(c, "a", json!({"t": "y"}));
    w.patch(c, "a", json!({"done": true}));
    w.script.push_back(Fault::DropAfterApply);
    assert!(!w.answer_one() && w.advance(), "nothing goes before the debounce");
    assert!(w.answer_one());
    assert_eq!(w.requests[0].mutations.len(), 1, "three edits went as one put");
    assert_eq!(w.outbox(c).len(), 1, "not acknowledged: still queued");
    // A later edit must not be folded into the entry the server may already have applied.
    w.patch(c, "a", json!({"t": "z"}));
    w.settle(100);
    let last = w.requests.last().unwrap().clone();
    assert_eq!(last.mutations.len(), 2, "the resend and the new patch travel separately");
    assert_eq!(w.record("a"), Some(json!({"id": "a", "t": "z", "done": true})));
    assert_eq!(w.stats(c).duplicates, 1);
}

/// A user typing: a write every 30 ms for three seconds, with a 50 ms debounce and pulls on.
/// The pushes wait for the burst but never more than a second, and the loop does not bounce
/// between pushing and pulling while the writes keep coming.
#[test]
fn streaming_writes_push_at_most_a_second_late_without_a_push_pull_ping_pong() {
    for gap in [30.0, 60.0] {
        writes_every(gap);
    }
}

/// 100 writes `gap` ms apart (a gap over the debounce: the pushes and pulls themselves slowed
/// the writes down, which must not make every write push), with the live channel's pokes.
fn writes_every(gap: f64) {
    let mut w = World::new();
    let mut opts = options(500, 10, "both");
    opts.debounce_ms = 50;
    let c = w.client("client-1", opts, 1);
    w.settle(100);
    let (pushes_before, pulls_before) = (w.requests.len(), w.pulls);
    let start = w.now;
    let mut written_at = Vec::new();
    for i in 0..100 {
        // A round trip takes a tick: one request is answered per write.
        let at = start + gap * f64::from(i);
        while w.next_wake().is_some_and(|wake| wake <= at) {
            w.advance();
        }
        w.now = at;
        w.answer_one();
        if i % 5 == 4 {
            w.event(c, Event::Poke); // the server announcing a push (often this client's own)
        }
        w.put(c, &format!("k{i}"), json!({"n": i}));
        written_at.push(at);
    }
    assert_eq!(w.pulls, pulls_before, "no pull rewrites records while the writes come");
    w.settle(1_000);
    assert!(w.pulls > pulls_before, "the last push is followed by a pull");
    assert!(w.outbox(c).is_empty());
    let pushes = &w.requests[pushes_before..];
    let times = &w.request_times[pushes_before..];
    let seconds = (gap * 100.0 / 1000.0).ceil() as usize;
    assert!(
        (seconds..=seconds + 2).contains(&pushes.len()),
        "one push per second of typing, not one per write: {} in {seconds} s",
        pushes.len()
    );
    assert!(w.pulls - pulls_before <= pushes.len() as u32 + 1, "a pull after each push at most");
    // Each write went out no later than 1 s + the debounce + a round trip.
    let mut sent = 0;
    for (push, at) in pushes.iter().zip(times) {
        for _ in &push.mutations {
            assert!(*at - written_at[sent] <= 1_080.0, "write {sent} waited {} ms", at - written_at[sent]);
            sent += 1;
        }
    }
    assert_eq!(sent, 100);
}

/// A batch that held everything queued ends the run once acknowledged: two transactions per
/// push (prepare, settle), no third to find the outbox empty.
#[test]
fn a_batch_that_drains_the_outbox_costs_two_transactions() {
    let mut w = World::new();
    let c = push_client(&mut w, 100, 10);
    w.settle(100);
    for round in 0..3 {
        let before = w.clients[c].host.transactions;
        w.put(c, &format!("k{round}"), json!({"n": round}));
        w.settle(100);
        assert_eq!(w.clients[c].host.transactions - before, 2, "round {round}");
        assert_eq!(w.status(c).state, SyncState::Idle);
    }
    // A batch that could not take everything reads on.
    let before = w.clients[c].host.transactions;
    w.event(c, Event::Offline);
    for i in 0..150 {
        w.put(c, &format!("b{i}"), json!({"n": i}));
    }
    w.event(c, Event::Online);
    w.settle(100);
    assert!(w.outbox(c).is_empty());
    assert_eq!(w.requests.len(), 5);
    assert!(w.clients[c].host.transactions - before >= 4, "two batches, each prepared and settled");
}

/// An app's own `online` listener runs before the library's: `sync()` called there finds the
/// browser online (navigator.onLine) and drains, instead of failing with OFFLINE.
#[test]
fn sync_called_before_the_online_event_arrives_drains() {
    let mut w = World::new();
    let c = push_client(&mut w, 100, 10);
    w.event(c, Event::Offline);
    let ids: Vec<String> = (0..3).map(|i| w.put(c, &format!("k{i}"), json!({"n": i}))).collect();
    let offline = w.sync(c);
    w.settle(100);
    assert_eq!(w.clients[c].host.settled[&offline].as_ref().unwrap_err().code, ErrorCode::Offline);
    w.clients[c].online = true; // navigator.onLine is true; the `online` event is still queued
    let waiter = w.sync(c);
    w.settle(100);
    assert_eq!(w.clients[c].host.settled[&waiter], Ok(json!({"pending": 0, "deadLetters": 0, "conflicts": 0})));
    w.applied_once(&ids);
    w.event(c, Event::Online); // arriving late changes nothing
    w.settle(100);
    assert_eq!(w.requests.len(), 1);
}

#[test]
fn outages_back_off_honour_retry_after_and_count_no_attempts() {
    let mut w = World::new();
    let c = push_client(&mut w, 100, 10);
    let id = w.put(c, "a", json!({}));
    w.script.extend([Fault::Status(503, Some("30")), Fault::Timeout, Fault::Network]);
    let start = w.now;
    assert!(w.answer_one());
    let entry = w.outbox(c)[0].clone();
    assert_eq!(entry.attempts, 0, "an outage is not the op's fault");
    assert_eq!(w.status(c).failing_since, Some(start));
    let error = entry.last_error.clone().unwrap();
    assert_eq!(
        (error.code, error.server_code.as_deref(), error.status),
        (SyncErrorCode::Http, Some("FAULT"), Some(503))
    );
    assert!(entry.next_attempt_at >= start + 30_000.0, "Retry-After is a floor");
    assert_eq!(w.status(c).state, SyncState::Error);
    // Before the retry time nothing is sent, not even a fresh write on another document.
    w.put(c, "b", json!({}));
    assert!(!w.answer_one());
    assert_eq!(w.clients[c].host.wake_at, Some(entry.next_attempt_at));
    assert_eq!(w.requests.len(), 1);

    w.settle(100);
    let times = w.request_times.clone();
    assert_eq!(times.len(), 5, "a timeout after a failure halves the batch (a and b)");
    assert!(times[1] >= start + 30_000.0);
    assert!(times.windows(2).all(|t| t[1] - t[0] <= 10_000.0 + 30_000.0), "delays stay under the cap");
    w.applied_once(&[id]);
    assert_eq!(w.stats(c).retries, 3);
    assert_eq!(w.status(c).last_error, None, "a success clears the error");
    assert_eq!(w.status(c).failing_since, None);
}

#[test]
fn offline_time_never_counts_attempts() {
    let mut w = World::new();
    let c = push_client(&mut w, 10, 1);
    w.put(c, "a", json!({}));
    w.script.push_back(Fault::GoOffline);
    w.settle(100);
    assert_eq!(w.status(c).state, SyncState::Offline);
    let entry = w.outbox(c)[0].clone();
    assert_eq!((entry.attempts, entry.last_error), (0, None), "a request that failed offline is not an attempt");
    w.now += 86_400_000.0;
    w.settle(100);
    assert_eq!(w.status(c).state, SyncState::Offline);
    w.event(c, Event::Online);
    w.settle(100);
    assert_eq!(w.status(c).state, SyncState::Idle);
    assert!(w.dead(c).is_empty(), "max_attempts 1, yet nothing was dead-lettered");
}

#[test]
fn refused_credentials_refresh_the_token_a_bounded_number_of_times() {
    let mut w = World::new();
    w.required_token = 1;
    let c = push_client(&mut w, 10, 10);
    w.clients[c].config.has_token = true;
    w.reload(c);
    w.put(c, "a", json!({}));
    w.settle(100);
    assert_eq!(w.status(c).state, SyncState::Idle, "one refresh was enough");
    assert_eq!(w.requests.len(), 2);
    assert_eq!(w.tokens_issued, 2, "the first token and one refresh");

    w.put(c, "b", json!({}));
    w.required_token = 100;
    w.settle(100);
    assert_eq!(w.status(c).state, SyncState::Auth);
    assert_eq!(w.requests.len(), 2 + 3, "the first try and two refreshes");
    assert_eq!(w.outbox(c)[0].attempts, 0, "refused credentials are not the operation's fault");
    w.put(c, "c", json!({}));
    w.settle(100);
    assert_eq!(w.requests.len(), 5, "after `auth`, writes alone do not try again");
    w.required_token = 0;
    let waiter = w.sync(c);
    w.settle(100);
    assert_eq!(w.status(c).state, SyncState::Idle);
    assert_eq!(w.clients[c].host.settled[&waiter], Ok(json!({"pending": 0, "deadLetters": 0, "conflicts": 0})));
}

/// An op refused `FORBIDDEN` under the token Wharf kept goes once more with a fresh one (the
/// grant may be newer than the token), and only one refused under a fresh token is a dead letter.
#[test]
fn an_op_refused_forbidden_goes_once_more_with_a_fresh_token_before_it_dies() {
    let mut w = World::new();
    let c = push_client(&mut w, 10, 10);
    w.clients[c].config.has_token = true;
    w.reload(c);
    w.writing_token = 1; // t0, the token kept since start-up, predates the grant
    w.put(c, "a", json!({}));
    w.settle(100);
    assert_eq!(w.tokens_issued, 2, "the kept token, then a fresh one");
    assert_eq!(w.requests.len(), 2);
    assert_eq!(w.status(c).dead_letters, 0, "the fresh token could write");
    assert!(w.outbox(c).is_empty());

    w.writing_token = 100; // no token will do
    w.put(c, "b", json!({}));
    w.settle(100);
    assert_eq!(
        (w.requests.len(), w.tokens_issued, w.status(c).dead_letters, w.outbox(c).len()),
        (4, 3, 1, 0),
        "once with the kept token, once with a fresh one"
    );
    assert_eq!(w.status(c).dead_letters, 1, "refused under a fresh token: a dead letter");
    assert_eq!(w.tokens_issued, 3);

    // Without getToken there is no fresh token to try: the refusal is final at once.
    let mut w = World::new();
    let c = push_client(&mut w, 10, 10);
    w.writing_token = 1;
    w.put(c, "a", json!({}));
    w.settle(100);
    assert_eq!((w.requests.len(), w.status(c).dead_letters), (1, 1));
}

/// A backend that applies one mutation per request answers the results it has when a later one
/// fails (a transport's prefix): those settle, and the rest go again at once, without a backoff
/// and without counting an attempt against anyone.
#[test]
fn a_prefix_of_results_settles_it_and_sends_the_rest_at_once() {
    let mut w = World::new();
    let c = push_client(&mut w, 10, 10);
    w.event(c, Event::Offline);
    let ids: Vec<String> = (0..5).map(|i| w.put(c, &format!("k{i}"), json!({}))).collect();
    w.script.extend([Fault::Prefix(2, None), Fault::Prefix(1, None)]);
    let start = w.now;
    w.event(c, Event::Online);
    w.settle(100);
    let sizes: Vec<usize> = w.requests.iter().map(|r| r.mutations.len()).collect();
    assert_eq!(sizes, [5, 3, 2]);
    assert!(w.request_times.iter().all(|&at| at - start < 1_000.0), "no backoff: {:?}", w.request_times);
    w.applied_once(&ids);
    assert!(w.outbox(c).is_empty() && w.dead(c).is_empty());
    assert_eq!(w.status(c).last_error, None);
}

/// A prefix with a Retry-After (a transport that failed part-way, `transportError` with its
/// results): the prefix settles at once, the rest wait out the outage, counting no attempt.
#[test]
fn a_prefix_with_retry_after_settles_it_and_the_rest_wait() {
    let mut w = World::new();
    let c = push_client(&mut w, 10, 10);
    w.event(c, Event::Offline);
    let ids: Vec<String> = (0..5).map(|i| w.put(c, &format!("k{i}"), json!({}))).collect();
    w.script.push_back(Fault::Prefix(2, Some("30")));
    let start = w.now;
    w.event(c, Event::Online);
    w.settle(100);
    let sizes: Vec<usize> = w.requests.iter().map(|r| r.mutations.len()).collect();
    assert_eq!(sizes, [5, 3]);
    assert!(w.request_times[1] - start >= 30_000.0, "the rest waited: {:?}", w.request_times);
    w.applied_once(&ids);
    assert!(w.outbox(c).is_empty() && w.dead(c).is_empty());
    assert_eq!(w.stats(c).retries, 1);
}

#[test]
fn a_413_splits_the_batch_and_a_lone_oversized_op_is_dead_lettered() {
    let mut w = World::new();
    let c = push_client(&mut w, 10, 10);
    w.event(c, Event::Offline);
    let ids: Vec<String> = (0..10).map(|i| w.put(c, &format!("k{i}"), json!({}))).collect();
    w.server.max_batch = Some(3);
    w.event(c, Event::Online);
    w.settle(100);
    assert!(w.requests.iter().filter(|r| r.mutations.len() <= 3).count() >= 4);
    w.applied_once(&ids);

    w.put(c, "big", json!({}));
    w.script.push_back(Fault::Status(413, None));
    w.server.max_batch = None;
    w.settle(100);
    assert_eq!(w.dead(c)[0].last_error.code, SyncErrorCode::TooLarge);
}

#[test]
fn bisection_finds_the_poison_op_among_500_and_the_rest_land() {
    let mut w = World::new();
    let c = push_client(&mut w, 100, 10);
    w.event(c, Event::Offline);
    let ids: Vec<String> = (0..501).map(|i| w.put(c, &format!("k{i}"), json!({"n": i}))).collect();
    w.server.poison.insert(ids[321].clone());
    w.event(c, Event::Online);
    w.settle(500);
    let dead = w.dead(c);
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].op.id.as_str(), dead[0].last_error.status), (ids[321].as_str(), Some(422)));
    let good: Vec<String> = ids.iter().filter(|id| **id != ids[321]).cloned().collect();
    w.applied_once(&good);
    assert!(w.requests.len() <= 20, "{} requests", w.requests.len());
    let events = &w.clients[c].host.events;
    assert!(
        matches!(events.iter().find(|e| e.name() == "deadLetter"), Some(SyncEvent::DeadLettered(l)) if l.len() == 1)
    );
}

#[test]
fn per_op_rejections_and_conflicts_do_not_block_other_documents() {
    let mut w = World::new();
    // A resolver that never answers keeps the conflict held, so the hold itself can be seen.
    let mut opts = options(100, 10, "push");
    opts.conflicts.default = crate::core::conflict::Strategy::Custom;
    let c = w.client("client-1", opts, 8);
    w.event(c, Event::Offline);
    // Acknowledged entries on both sides: the held one between them must survive their removal.
    let first = w.put(c, "0", json!({}));
    let refused = w.put(c, "a", json!({}));
    let conflicted = w.put(c, "b", json!({"v": 1}));
    let fine = w.put(c, "c", json!({}));
    w.server.refuse.insert(refused.clone());
    w.server.conflict.insert(conflicted.clone());
    w.event(c, Event::Online);
    w.settle_until(w.now + 1_000.0);
    w.applied_once(&[first.clone(), fine.clone()]);
    assert_eq!(w.dead(c)[0].op.id, refused);
    // The conflicted entry stays, flagged; a later edit of the same document waits behind it,
    // even with acknowledged entries on both sides of it.
    let x = w.put(c, "x", json!({}));
    let later = w.patch(c, "b", json!({"v": 2}));
    let y = w.put(c, "y", json!({}));
    w.settle_until(w.now + 1_000.0);
    assert!(w.clients[c].host.settled[&later].is_ok());
    w.applied_once(&[first, fine, x, y]);
    let outbox = w.outbox(c);
    assert_eq!(outbox.len(), 2);
    let held = outbox.iter().find(|e| e.op.id == conflicted).unwrap();
    assert_eq!(held.conflict.as_ref().map(|c| c.version), Some(99));
    assert!(outbox.iter().any(|e| e.op.id != conflicted), "the later patch is not sent ahead of the conflict");
    assert_eq!(w.status(c).conflicts, 1);
    let carrying = w.requests.iter().filter(|r| r.mutations.iter().any(|m| m.id == conflicted)).count();
    assert_eq!(carrying, 1, "held entries are not resent");
    let reports: Vec<_> = w.clients[c].host.events.iter().filter(|e| e.name() == "conflict").collect();
    assert!(!reports.is_empty(), "the unresolved conflict is reported");
}

#[test]
fn retried_dead_letters_are_never_folded_together() {
    // The first write reached the server before it died; the second did not. Both are retried
    // under their old ids with a clean schedule: folding the second into the first would make the
    // server answer `duplicate` and drop the second write.
    let mut w = World::new();
    let mut opts = options(10, 1, "push");
    opts.engine.retry.max_age_ms = Some(1_000);
    let c = w.client("client-1", opts, 1);
    let first = w.put(c, "a", json!({"rev": "first"}));
    w.now += 2_000.0;
    w.script.push_back(Fault::DropAfterApply);
    w.settle(100);
    let second = w.put(c, "a", json!({"rev": "second"}));
    w.now += 2_000.0;
    w.script.push_back(Fault::Status(503, None));
    w.settle(100);
    assert_eq!(w.dead(c).len(), 2);

    w.event(c, Event::Offline);
    let now = w.now;
    let retried = w.clients[c].host.request(Request::RetryDead(None), now);
    w.settle(100);
    assert_eq!(w.clients[c].host.settled[&retried], Ok(json!(2)));
    assert!(w.outbox(c).iter().all(|e| e.resent && e.attempts == 0));
    w.event(c, Event::Online);
    w.settle(100);
    assert!(w.outbox(c).is_empty() && w.dead(c).is_empty());
    w.applied_once(&[first, second]);
    assert_eq!(w.record("a"), Some(json!({"id": "a", "rev": "second"})));
}

#[test]
fn a_reload_after_the_server_applied_never_applies_twice_nor_rewrites() {
    let mut w = World::new();
    let c = push_client(&mut w, 100, 10);
    let first = w.put(c, "a", json!({"t": 1}));
    w.script.push_back(Fault::CrashAfterApply);
    w.settle(100);
    assert!(w.clients[c].crashed && w.server.applied.contains_key(&first));
    // The page reloads: a new replica, the same storage, the entry still at attempts 0.
    assert_eq!(w.outbox(c)[0].attempts, 0, "the page died before it recorded anything");
    w.reload(c);
    let second = w.patch(c, "a", json!({"u": 2}));
    w.settle(100);
    assert!(w.clients[c].host.settled[&second].is_ok());
    let patch_id = w.requests.last().unwrap().mutations[1].id.clone();
    w.applied_once(&[first.clone(), patch_id]);
    assert_eq!(w.requests.last().unwrap().mutations[0].id, first, "the resend is unchanged");
    assert_eq!(w.record("a"), Some(json!({"id": "a", "t": 1, "u": 2})));
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

    /// A write of kind `op` on key `k`, the same on any world.
    pub fn write(w: &mut World, c: usize, key: u8, op: u8, value: u8) {
        let key = format!("k{key}");
        let fields = json!({ format!("f{value}"): value });
        match op {
            0 => {
                w.put(c, &key, fields);
            }
            1 => {
                w.patch(c, &key, fields);
            }
            _ => {
                w.delete(c, &key);
            }
        }
    }

    /// Settles, reloading a page that died mid-request until its outbox drained.
    pub fn drain(w: &mut World, c: usize) {
        for _ in 0..20 {
            w.settle(20_000);
            if w.outbox(c).is_empty() {
                return;
            }
            w.reload(c);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

        /// Whatever the faults, offline periods and reloads, once the replica settles the server
        /// holds exactly what applying every local write once, in order, gives; no write is lost
        /// and none is applied twice.
        #[test]
        fn every_write_lands_exactly_once_and_in_order(actions in proptest::collection::vec(action(), 1..80), seed in any::<u64>()) {
            lands_exactly_once(actions, seed, None)?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

        /// The same with the database encrypted (`core::vault`): every read of the sync path
        /// opens what it stored sealed, through faults, offline periods and reloads.
        #[test]
        fn every_write_lands_exactly_once_and_in_order_encrypted(actions in proptest::collection::vec(action(), 1..80), seed in any::<u64>()) {
            lands_exactly_once(actions, seed, Some([9; 32]))?;
        }
    }

    fn lands_exactly_once(actions: Vec<Action>, seed: u64, encryption: Option<[u8; 32]>) -> Result<(), TestCaseError> {
        let mut w = World::new();
        w.encryption = encryption;
        let c = w.client("c", options(3, u32::MAX, "push"), seed);
        let mut expected = World::new();
        let e = expected.client("c", options(1, u32::MAX, "push"), seed);
        for action in actions {
            match action {
                Action::Write(key, op, value) => {
                    write(&mut w, c, key, op, value);
                    write(&mut expected, e, key, op, value);
                    expected.settle(1_000);
                }
                Action::Step => {
                    if !w.answer_one() {
                        w.advance();
                    }
                }
                Action::Fault(kind) => w.script.push_back(match kind {
                    0 => Fault::Status(503, Some("1")),
                    1 => Fault::Timeout,
                    2 => Fault::DropAfterApply,
                    3 => Fault::CrashAfterApply,
                    4 => Fault::Status(429, None),
                    _ => Fault::Network,
                }),
                Action::Offline(true) => w.event(c, Event::Offline),
                Action::Offline(false) => w.event(c, Event::Online),
                Action::Reload => w.reload(c),
            }
        }
        w.event(c, Event::Online);
        drain(&mut w, c);
        prop_assert!(w.outbox(c).is_empty());
        prop_assert!(w.dead(c).is_empty(), "nothing dies: a local patch of a missing record fails locally");
        prop_assert_eq!(w.server.documents(), expected.server.documents());
        prop_assert!(w.server.effects.values().all(|&n| n == 1), "a mutation changed the records twice");
        Ok(())
    }
}

/// The live channel's socket is open while the context drains, online and visible; a socket
/// that closes is opened again after a backoff.
#[test]
fn the_live_channel_follows_online_visibility_and_failures() {
    let mut w = World::new();
    let mut opts = options(100, 10, "both");
    opts.live = true;
    let c = w.client("client-1", opts, 1);
    w.settle(100);
    let live = |w: &World| w.clients[c].host.live;
    assert!(live(&w), "leading, online, visible");
    for (away, back) in [(Event::Hidden, Event::Visible), (Event::Offline, Event::Online)] {
        w.event(c, away);
        w.settle(100);
        assert!(!live(&w));
        w.event(c, back);
        w.settle(100);
        assert!(live(&w));
    }
    w.event(c, Event::LiveOpened);
    w.event(c, Event::LiveClosed);
    w.clients[c].host.live = false; // the host saw the socket go
    w.answer_one();
    let retry = w.clients[c].host.wake_at.expect("a retry is scheduled");
    assert!(retry - w.now <= 500.0, "the first retry comes within half a second");
    w.settle_until(retry);
    assert!(live(&w), "opened again");
    w.event(c, Event::Leading(false));
    w.settle(100);
    assert!(!live(&w), "only the drainer keeps the socket");
}

/// Found by the chaos suite: a dead patch, then a delete of its document here, then another
/// client writes the document again; the unedited patch retried without a pull meets a
/// conflict. Patching the locally deleted document read as a delete, and lww pushed it: the
/// other client's newer document was deleted and the patch applied nowhere. The patch now goes
/// over the server's document, as it would have without the conflict.
#[test]
fn a_retried_patch_of_a_document_deleted_here_patches_the_servers_document() {
    let mut w = World::new();
    let c = w.client("client-1", options(10, 1, "push"), 1);
    let other = w.client("client-2", options(10, 1, "push"), 2);
    w.put(c, "k", json!({"n": 1}));
    w.settle(100);
    w.patch_now(c, "k", json!({"p": 1})).expect("patched");
    let patch = w.outbox(c)[0].op.id.clone();
    w.server.refuse.insert(patch.clone());
    w.settle(100);
    assert_eq!(w.dead(c).len(), 1);
    w.delete(c, "k");
    w.settle(100);
    assert_eq!(w.record("k"), None);
    w.now += 1_000.0; // a later write: it wins its conflict with the delete
    w.put(other, "k", json!({"by": "other"}));
    w.settle(100);
    assert_eq!(w.record("k"), Some(json!({"id": "k", "by": "other"})));
    w.server.refuse.clear();
    w.server.rejected.clear();
    w.now += 1_000.0; // the retry counts as a write made now: it wins its conflict
    let now = w.now;
    w.clients[c].host.request(Request::RetryDead(None), now);
    w.settle(200);
    assert_eq!(
        w.record("k"),
        Some(json!({"id": "k", "by": "other", "p": 1})),
        "the patch lands on the server's document"
    );
}
