//! Retried dead letters behind a conflict, natively: a letter may have landed in an earlier life
//! (every answer to it lost), so it goes under its own id before any resolution covers it, and
//! the conflict is resolved once it is answered. Both halves were found by the chaos suite (the
//! run against the REST example, and the repro `dead-letter-retry-behind-conflict`).

use serde_json::json;

use crate::core::conflict::Strategy;
use crate::core::op::Payload;
use crate::core::replica::Request;
use crate::core::test_world::{error_body, options, Fault, World};

/// Client A (batches of one, ops dying of age after 1 s) and client B, and A's write of `k`
/// (rev a1) dead after an outage, never landed.
fn a1_dead(w: &mut World) -> (usize, usize) {
    let mut opts = options(1, 10, "both");
    opts.engine.retry.max_age_ms = Some(1_000);
    let a = w.client("client-a", opts, 1);
    let b = w.client("client-b", options(10, 10, "both"), 2);
    w.settle(100);
    w.server.down = Some((503, error_body("DOWN", "down")));
    w.put(a, "k", json!({"rev": "a1"}));
    w.settle(200);
    assert_eq!(w.dead(a).len(), 1, "a1 died of age, never landed");
    (a, b)
}

/// A retries every dead letter, as a write made now.
fn retry_letters(w: &mut World, a: usize) {
    w.now += 1_000.0;
    let now = w.now;
    w.clients[a].host.request(Request::RetryDead(None), now);
    w.settle(300);
}

/// Two dead letters of one document are retried: a1 never landed, a2 did (every answer to it
/// was lost until it died of age). a1, sent alone, meets B's newer write (`conflict`); a2 waits
/// behind it. A resolution must not fold a2 into its local side and send its content under a
/// new id: a2 would land twice, over B's write made after seeing it. Sent under its own id, a2
/// is answered `duplicate` (found by the chaos run against the REST example).
#[test]
fn a_retried_letter_that_had_landed_is_never_resent_under_a_new_id() {
    let mut w = World::new();
    let (a, b) = a1_dead(&mut w);
    w.server.down = None;
    w.script.extend(std::iter::repeat_n(Fault::DropAfterApply, 40));
    let a2 = w.put(a, "k", json!({"rev": "a2"}));
    w.settle(300);
    assert_eq!(w.dead(a).len(), 2, "a2 died of age, though it landed");
    assert_eq!(w.record("k"), Some(json!({"id": "k", "rev": "a2"})));
    w.script.clear();
    w.pull(b);
    w.settle(100);
    w.now += 1_000.0;
    w.put(b, "k", json!({"rev": "b1"}));
    w.settle(100);
    retry_letters(&mut w, a);
    let resent: Vec<&str> = w
        .requests
        .iter()
        .flat_map(|r| &r.mutations)
        .filter(|m| m.value.as_ref().and_then(|v| v.get("rev")) == Some(&json!("a2")) && m.id != a2)
        .map(|m| m.id.as_str())
        .collect();
    assert_eq!(resent, Vec::<&str>::new(), "a2's content went out only under its own id");
    assert!(w.outbox(a).is_empty() && w.dead(a).is_empty());
}

/// Two dead letters of one document, neither of which landed, are retried; a1 meets B's write
/// (`conflict`) and a2 waits behind it. a2 goes under its own id first (it might have landed)
/// and meets the conflict too; the resolution then covers both, so the newest write, a2, is
/// what the document ends with, never a1's resolution landing after it.
#[test]
fn retried_letters_behind_a_conflict_end_with_the_newest_write() {
    let mut w = World::new();
    let (a, b) = a1_dead(&mut w);
    w.put(a, "k", json!({"rev": "a2"}));
    w.settle(200);
    assert_eq!(w.dead(a).len(), 2, "both died of age, neither landed");
    w.server.down = None;
    w.put(b, "k", json!({"rev": "b1"}));
    w.settle(100);
    retry_letters(&mut w, a);
    assert_eq!(w.record("k"), Some(json!({"id": "k", "rev": "a2"})), "the newest write stands");
    assert!(w.outbox(a).is_empty() && w.dead(a).is_empty());
}

/// A's put (a1) and then its delete of the same document both died in an outage; B wrote the
/// document since. A retries a1, which meets B's write (`conflict`), and while A's resolver is
/// still deciding, the app retries the delete too. The resolution must not be stored over the
/// delete (a retried letter, unanswered, which takes no part in the local side): stored, it
/// queued a1's content under a new id, and the delete, the newest write, was undone by it
/// (found by the chaos suite: a retried delete that "vanished" behind its own put).
#[test]
fn a_letter_retried_while_its_documents_conflict_is_resolved_is_not_undone() {
    let mut w = World::new();
    w.resolver = Some(|_| json!("local"));
    let mut opts = options(1, 10, "both");
    opts.engine.retry.max_age_ms = Some(1_000);
    opts.conflicts.default = Strategy::Custom;
    let a = w.client("client-a", opts, 1);
    w.clients[a].config.resolvers = vec![None];
    w.reload(a);
    let b = w.client("client-b", options(10, 10, "both"), 2);
    w.settle(100);
    w.server.down = Some((503, error_body("DOWN", "down")));
    w.put(a, "k", json!({"rev": "a1"}));
    w.settle(200);
    w.delete(a, "k");
    w.settle(200);
    let letters = w.dead(a);
    assert_eq!(letters.len(), 2, "both died of age, neither landed");
    let id_of = |delete: bool| {
        let letter = letters.iter().find(|l| matches!(l.op.payload, Payload::Delete) == delete).unwrap();
        letter.op.id.clone()
    };
    w.server.down = None;
    w.put(b, "k", json!({"rev": "b1"}));
    w.settle(100);
    w.now += 1_000.0;
    let now = w.now;
    w.clients[a].host.request(Request::RetryDead(Some(id_of(false))), now);
    w.until_resolver_asked(a);
    w.clients[a].host.request(Request::RetryDead(Some(id_of(true))), now);
    w.settle(300);
    assert_eq!(w.record("k"), None, "the newest write, the delete, stands");
    assert!(w.outbox(a).is_empty() && w.dead(a).is_empty());
}
