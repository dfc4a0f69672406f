//! The push engine in the real world, natively: outages of every kind while the browser says
//! online (nothing dead-lettered, backoff within its cap, everything lands after), the time
//! limit an app may set instead, failures pinned on one op only with a witness, a token provider
//! that never answers, a device clock far off, and an outbox entry that cannot be read. The
//! shipped replica on an in-memory IndexedDB against a model server, as in `machine_tests.rs`.

use serde_json::json;

use crate::core::error::{ErrorCode, SyncErrorCode};
use crate::core::host::Event;
use crate::core::status::{SyncEvent, SyncState};
use crate::core::test_world::{options, push_client, World};

/// A `getToken` that never settles is a failed token after `requestTimeoutMs`: sync ends in
/// `auth` (bounded retries) and `sync()` settles instead of hanging, also when asked again in the
/// `auth` state (a failure that asked again at once used to lose its new deadline, and that
/// `sync()` hung); a token that arrives later is ignored, and an explicit `sync()` with a working
/// provider drains. A client that pulls too, as apps run it.
#[test]
fn a_token_provider_that_hangs_fails_in_time_and_freezes_nothing() {
    let mut w = World::new();
    let c = w.client("client-1", options(10, 10, "both"), 1);
    w.clients[c].config.has_token = true;
    w.clients[c].config.options.engine.max_auth_refreshes = 1;
    w.clients[c].config.options.request_timeout_ms = 300;
    w.reload(c);
    w.token_hangs = true;
    let id = w.put(c, "a", json!({}));
    let waiter = w.sync(c);
    let start = w.now;
    w.settle_until(start + 600_000.0);
    assert_eq!(w.status(c).state, SyncState::Auth);
    assert!(w.requests.is_empty());
    let outcome = w.clients[c].host.settled.get(&waiter).cloned().expect("sync() settled");
    assert_eq!(outcome.unwrap_err().code, ErrorCode::Auth);
    let error = w.status(c).last_error.clone().unwrap();
    assert!(error.message.contains("requestTimeoutMs"), "{}", error.message);
    assert!(w.now - start < 600_000.0, "four tries of 30 s and their backoff");
    // An explicit sync() once the state is `auth`, the provider still hanging: it tries again
    // and settles the same way, however often the app asks.
    for _ in 0..2 {
        w.now += 1_400.0;
        let again = w.sync(c);
        let asked = w.now;
        w.settle_until(asked + 600_000.0);
        let outcome = w.clients[c].host.settled.get(&again).cloned().expect("sync() settled again");
        assert_eq!(outcome.unwrap_err().code, ErrorCode::Auth);
        assert_eq!(w.status(c).state, SyncState::Auth);
    }
    w.token_hangs = false;
    w.sync(c);
    w.settle(100);
    w.applied_once(&[id]);
}

/// Every kind of outage while the browser says online, for three simulated hours with
/// `maxAttempts: 1` (the old rules dead-lettered all of it on the first failure): nothing is
/// dead-lettered, the queue backs off within its cap, and everything lands once it is over.
#[test]
fn an_outage_while_online_dead_letters_nothing_however_long_it_lasts() {
    let portal = "<html><body>Sign in to the hotel Wi-Fi</body></html>".to_owned();
    for (what, status, body) in [
        ("server down", 0u16, String::new()),
        ("gateway", 502, String::new()),
        ("unavailable", 503, r#"{"protocol":1,"code":"STORAGE","message":"db"}"#.to_owned()),
        ("server error", 500, String::new()),
        ("captive portal", 200, portal),
        ("proxy 404", 404, "<h1>Not Found</h1>".to_owned()),
        ("proxy 405", 405, String::new()),
        ("old server", 400, r#"{"protocol":1,"code":"UNSUPPORTED_PROTOCOL","message":"v2"}"#.to_owned()),
        ("refuses everything", 400, r#"{"protocol":1,"code":"BAD_REQUEST","message":"clientId"}"#.to_owned()),
    ] {
        let mut w = World::new();
        let mut opts = options(8, 1, "push");
        opts.engine.retry.max_ms = 60_000;
        let c = w.client("client-1", opts, 1);
        w.event(c, Event::Offline);
        let ids: Vec<String> = (0..20).map(|i| w.put(c, &format!("k{i}"), json!({"n": i}))).collect();
        w.server.down = Some((status, body));
        w.event(c, Event::Online);
        let start = w.now;
        w.settle_until(start + 3.0 * 3_600_000.0);
        assert!(w.dead(c).is_empty(), "{what}: {:?}", w.dead(c).first().map(|d| &d.last_error));
        assert_eq!(w.outbox(c).len(), 20, "{what}");
        assert!(w.outbox(c).iter().all(|e| e.attempts == 0), "{what}");
        let status = w.status(c);
        assert_eq!((status.state, status.failing_since), (SyncState::Error, Some(start)), "{what}");
        assert!(status.last_error.is_some() && status.next_retry_at.is_some(), "{what}");
        let gaps = w.request_times.windows(2).map(|t| t[1] - t[0]);
        assert!(gaps.clone().all(|gap| gap <= 60_000.0), "{what}: the backoff stays within its cap");
        assert!(w.requests.len() > 100, "{what}: it keeps trying ({} requests)", w.requests.len());
        assert!(w.requests.len() < 3 * 360, "{what}: {} requests in three hours", w.requests.len());
        w.server.down = None;
        w.settle_until(w.now + 60_000.0);
        assert!(w.dead(c).is_empty() && w.outbox(c).is_empty(), "{what}");
        w.applied_once(&ids);
        assert_eq!(w.status(c).failing_since, None);
    }
}

/// `retry.maxAgeMs` replaces counting for whoever wants a limit: an op older than that which
/// an outage keeps from the server goes to the dead letters, with the outage as its reason.
#[test]
fn max_age_dead_letters_what_an_outage_keeps_too_long() {
    let mut w = World::new();
    let mut opts = options(10, 10, "push");
    opts.engine.retry.max_age_ms = Some(600_000);
    let c = w.client("client-1", opts, 1);
    let old = w.put(c, "a", json!({}));
    w.server.down = Some((503, String::new()));
    w.settle_until(w.now + 300_000.0);
    assert!(w.dead(c).is_empty());
    let young = w.put(c, "b", json!({}));
    w.settle_until(w.now + 400_000.0);
    let dead = w.dead(c);
    assert_eq!(dead.iter().map(|d| d.op.id.clone()).collect::<Vec<_>>(), [old]);
    assert!(dead[0].last_error.message.contains("maxAgeMs") && dead[0].last_error.status == Some(503));
    w.server.down = None;
    w.settle(100);
    w.applied_once(&[young]);
}

/// A 500 that follows one op wherever it goes is pinned on it: bisected with backoff down to
/// the op, which then stays aside while the next op goes alone; when that one lands, the failure
/// counts against the op, which is dead-lettered when out of attempts. The rest all land.
#[test]
fn a_server_failure_that_follows_one_op_is_pinned_on_it() {
    let mut w = World::new();
    let c = push_client(&mut w, 16, 2);
    w.event(c, Event::Offline);
    let ids: Vec<String> = (0..40).map(|i| w.put(c, &format!("k{i}"), json!({"n": i}))).collect();
    w.server.poison.insert(ids[13].clone());
    w.server.poison_status = Some(500);
    w.event(c, Event::Online);
    w.settle_until(w.now + 3_600_000.0);
    let dead = w.dead(c);
    assert!(dead.is_empty());
    let good: Vec<String> = ids.iter().filter(|id| **id != ids[13]).cloned().collect();
    w.applied_once(&good);
    let outbox = w.outbox(c);
    assert_eq!((outbox.len(), outbox[0].op.id.as_str(), outbox[0].attempts), (1, ids[13].as_str(), 1));
    // Alone, it only waits (nothing to compare it with); the next write pins it again.
    let later = w.put(c, "later", json!({}));
    w.settle_until(w.now + 3_600_000.0);
    let dead = w.dead(c);
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].op.id.as_str(), dead[0].attempts), (ids[13].as_str(), 2));
    assert!(dead[0].last_error.message.contains("each time this op was sent alone"), "{}", dead[0].last_error.message);
    w.applied_once(&[good, vec![later]].concat());
    assert!(w.outbox(c).is_empty());
}

/// `BAD_REQUEST` for a lone op is pinned on it only when the next op gets through; when the next
/// fails alone too, nobody is to blame and nothing is dead-lettered. (A refusal naming the
/// content, such as `POISON`, dead-letters a lone op at once: `bisection_finds_the_poison_op`.)
#[test]
fn a_lone_bad_request_is_pinned_only_when_another_op_gets_through() {
    let mut w = World::new();
    let c = push_client(&mut w, 10, 10);
    let poison = w.put(c, "a", json!({}));
    w.server.poison.insert(poison.clone());
    w.server.poison_code = Some("BAD_REQUEST");
    w.settle_until(w.now + 600_000.0);
    assert!(w.dead(c).is_empty(), "alone in the queue, nothing shows it is the op's fault");
    assert_eq!(w.outbox(c).len(), 1);
    let next = w.put(c, "b", json!({}));
    w.settle_until(w.now + 600_000.0);
    assert_eq!(w.dead(c).iter().map(|d| d.op.id.clone()).collect::<Vec<_>>(), [poison]);
    assert_eq!(w.dead(c)[0].last_error.status, Some(422));
    w.applied_once(&[next]);
}

/// A refusal that names the content dead-letters a lone op at once, as before.
#[test]
fn a_lone_op_the_server_refuses_by_name_is_dead_lettered_at_once() {
    let mut w = World::new();
    let c = push_client(&mut w, 10, 10);
    let poison = w.put(c, "a", json!({}));
    w.server.poison.insert(poison.clone());
    w.server.poison_code = Some("POISON");
    w.settle_until(w.now + 600_000.0);
    assert_eq!(w.dead(c).iter().map(|d| d.op.id.clone()).collect::<Vec<_>>(), [poison]);
    assert_eq!((w.requests.len(), w.dead(c)[0].last_error.code), (1, crate::core::error::SyncErrorCode::Poison));
}

/// A device whose clock runs a year ahead stamps its writes a year ahead (and so would win every
/// last-writer-wins conflict) until a server answer tells it the time; from then on its stamps
/// follow the server's clock.
#[test]
fn a_device_clock_a_year_ahead_is_bounded_by_the_servers_date() {
    const YEAR: f64 = 365.0 * 86_400_000.0;
    let mut w = World::new();
    let c = push_client(&mut w, 10, 10);
    w.clients[c].skew = YEAR;
    w.reload(c);
    let stamp_ms = |w: &World| {
        let stamp = w.requests.last().and_then(|r| r.mutations[0].hlc.clone()).expect("a stamped mutation");
        crate::core::hlc::parse(&stamp).map(|h| u64::from_str_radix(&h.format()[..12], 16).unwrap() as f64).unwrap()
    };
    w.put(c, "a", json!({"n": 1}));
    w.settle(100);
    assert!(stamp_ms(&w) >= w.now + YEAR - 1_000.0, "before: a year ahead");
    let server_now = w.now;
    w.event(c, Event::ServerDate(server_now));
    w.put(c, "b", json!({"n": 2}));
    w.settle(100);
    let after = stamp_ms(&w);
    assert!(
        (server_now..server_now + 60_000.0).contains(&after),
        "after: the server's time, got {after} for {server_now}"
    );
}

/// An outbox entry that cannot be read (a corrupt record, a format from elsewhere) used to make
/// the whole window unreadable, so pushing stopped for good. It is moved to the dead letters
/// alone, with why and its stored text, and the rest of the queue goes on.
#[test]
fn an_unreadable_outbox_entry_is_dead_lettered_alone_and_the_queue_goes_on() {
    use crate::core::schema::{DEAD_STORE, OUTBOX_STORE};
    let mut w = World::new();
    let c = push_client(&mut w, 10, 10);
    w.event(c, Event::Offline);
    let before = w.put(c, "a", json!({"n": 1}));
    let broken = json!({"seq": 2, "id": "broken", "collection": "todos", "key": "b", "op": "frobnicate"});
    w.clients[c].host.db.put_row(OUTBOX_STORE, json!(2), broken.clone());
    let after = w.put(c, "c", json!({"n": 3}));
    w.event(c, Event::Online);
    w.settle(100);
    w.applied_once(&[before, after]);
    assert!(w.outbox(c).is_empty());
    let dead = w.dead(c);
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].op.id.as_str(), dead[0].last_error.code), ("broken", SyncErrorCode::Storage));
    assert!(dead[0].last_error.message.contains("outbox entry 2 is unreadable"), "{}", dead[0].last_error.message);
    assert!(dead[0].op.payload == crate::core::op::Payload::Put(json!({"unreadable": broken.to_string()})));
    assert_eq!(w.clients[c].host.db.rows(DEAD_STORE).len(), 1);
    assert!(w.clients[c].host.events.iter().any(|e| matches!(e, SyncEvent::DeadLettered(l) if l[0].op.id == "broken")));
}

/// In an encrypted database, an entry whose sealed value was changed on disk does not open: it
/// is dead-lettered alone as unreadable, and the rest of the queue goes on (before, every push
/// window that held it failed).
#[test]
fn an_outbox_entry_that_does_not_open_is_dead_lettered_alone_and_the_queue_goes_on() {
    use crate::core::schema::OUTBOX_STORE;
    use crate::core::vault::SEALED;
    let mut w = World::new();
    w.encryption = Some([5; 32]);
    let c = push_client(&mut w, 10, 10);
    w.event(c, Event::Offline);
    let before = w.put(c, "a", json!({"n": 1}));
    let damaged = w.put(c, "b", json!({"n": 2}));
    let after = w.put(c, "c", json!({"n": 3}));
    let db = &mut w.clients[c].host.db;
    let (seq, mut entry) = db.rows(OUTBOX_STORE).into_iter().nth(1).unwrap();
    let sealed = entry["value"][SEALED].as_str().unwrap().to_owned();
    let flipped = if sealed.as_bytes()[40] == b'A' { "B" } else { "A" };
    entry["value"][SEALED] = json!(format!("{}{flipped}{}", &sealed[..40], &sealed[41..]));
    db.put_row(OUTBOX_STORE, seq, entry);
    w.event(c, Event::Online);
    w.settle(100);
    w.applied_once(&[before, after]);
    assert!(!w.server.effects.contains_key(&damaged), "nothing of the damaged op reached the server");
    assert!(w.outbox(c).is_empty());
    let dead = w.dead(c);
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].op.id.as_str(), dead[0].last_error.code), (damaged.as_str(), SyncErrorCode::Storage));
}
