//! Planning one push and reading its outcome, as pure functions over outbox entries: which entries
//! go in the next request (in outbox order, within the count and byte limits, never overtaking an
//! earlier entry on the same document), the request body, and what each answer means for every
//! entry: acknowledged, rescheduled, held by a conflict, or moved to the dead letters.
//!
//! The engine (`push_engine.rs`) strings these together; keeping them pure lets the rules be tested
//! one by one and lets the property tests check the whole loop against a model server.

use super::error::SyncErrorCode;
use super::json_text;
use super::op::{ConflictInfo, DeadLetter, LastError, Op, OutboxEntry};
use super::protocol::{speaks, MutationResult, PushResponse, PROTOCOL_VERSION};
use super::retry::RetryPolicy;
use super::sorted::StringSet;

/// Where a collection's mutations go and in which shape (`DatabaseSchema::addressing`): the
/// shared space they name (none: the user's own space) and the collection's version.
pub type SpaceOf<'s> = dyn Fn(&str) -> (Option<&'s str>, u32) + 's;

/// How big one request may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    pub max_count: usize,
    pub max_bytes: usize,
    /// At most one op per document (`sync.transport`): every op of a batch carries the base
    /// known before the batch, and a backend that tells conflicts by version alone would take
    /// the second for a conflict with the first; one at a time, each is based on the version
    /// its predecessor's acknowledgement recorded.
    pub one_per_document: bool,
}

/// One request, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// The entries sent, in outbox order; results come back in the same order.
    pub entries: Vec<OutboxEntry>,
    /// The JSON body of `POST /push`.
    pub body: String,
    /// The `Idempotency-Key` header: a digest of the mutation ids, stable across resends.
    pub idempotency_key: String,
    /// Every entry given was sendable and went in: once it is acknowledged, nothing that was
    /// queued is left to send.
    pub drains: bool,
}

/// What the outbox allows right now.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    /// Nothing to send: the outbox is empty, or every entry is held by a conflict.
    Nothing,
    /// Entries are waiting for their retry time; nothing may be sent before this time.
    NotBefore(f64),
    Batch(Batch),
}

/// Chooses the next batch from `entries` (outbox order).
///
/// A request-level failure (network, timeout, an HTTP error) pauses the whole queue until its
/// retry time, also after a reload, so a struggling server is not hammered with fresh batches.
/// An entry held by a conflict or waiting after its own rejection blocks only the later entries
/// on its document, which must never overtake it.
///
/// `skip` is an op under suspicion (`push_engine.rs`): it stays queued and blocks its document,
/// while the next batch shows whether the server takes other ops.
pub fn select(
    entries: &[OutboxEntry],
    now: f64,
    client_id: &str,
    limits: BatchLimits,
    skip: Option<u64>,
    space_of: &SpaceOf<'_>,
) -> Selection {
    let queue_paused_until = entries
        .iter()
        .filter(|e| Some(e.op.seq) != skip)
        .filter(|e| e.next_attempt_at > now && e.last_error.as_ref().is_some_and(LastError::is_request_level))
        .map(|e| e.next_attempt_at)
        .fold(None, |latest: Option<f64>, at| Some(latest.map_or(at, |l| l.max(at))));
    if let Some(until) = queue_paused_until {
        return Selection::NotBefore(until);
    }
    let mut blocked = StringSet::default();
    // Documents with an op the server answered `conflict`: their later ops wait for the
    // resolution, except a retried dead letter, which may have landed in an earlier life and
    // must be answered under its own id first (`conflict_tx::contested`).
    let mut held = StringSet::default();
    let mut earliest_wait: Option<f64> = None;
    let mut chosen = Vec::new();
    let mut parts: Vec<String> = Vec::new();
    let prefix =
        format!("{{\"protocol\":{PROTOCOL_VERSION},\"clientId\":{},\"mutations\":[", json_text::quoted(client_id));
    let mut bytes = prefix.len() + 2;
    let mut drains = true;
    for entry in entries {
        let document = entry.op.doc_id();
        if blocked.contains(&document) {
            drains &= !limits.one_per_document;
            continue;
        }
        if Some(entry.op.seq) == skip {
            drains = false;
            blocked.insert(document);
            continue;
        }
        if entry.conflict.is_some() {
            drains = false;
            held.insert(document);
            continue;
        }
        if entry.next_attempt_at > now || (!entry.resent && held.contains(&document)) {
            drains = false;
            if entry.next_attempt_at > now {
                earliest_wait = Some(earliest_wait.map_or(entry.next_attempt_at, |w| w.min(entry.next_attempt_at)));
            }
            blocked.insert(document);
            continue;
        }
        if chosen.len() >= limits.max_count.max(1) {
            drains = false;
            break;
        }
        let text = json_text::text(&entry.mutation_json(client_id, space_of(&entry.op.collection)));
        if !chosen.is_empty() && bytes + text.len() + 1 > limits.max_bytes {
            drains = false;
            break;
        }
        bytes += text.len() + usize::from(!parts.is_empty());
        parts.push(text);
        chosen.push(entry.clone());
        if limits.one_per_document {
            blocked.insert(document);
        }
    }
    if chosen.is_empty() {
        return earliest_wait.map_or(Selection::Nothing, Selection::NotBefore);
    }
    let mut body = prefix;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(part);
    }
    body.push_str("]}");
    let idempotency_key = digest(chosen.iter().map(|e| e.op.id.as_str()));
    Selection::Batch(Batch { entries: chosen, body, idempotency_key, drains })
}

/// FNV-1a over the ids, as 16 hex digits.
fn digest<'a>(ids: impl Iterator<Item = &'a str>) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for id in ids {
        for byte in id.bytes().chain(std::iter::once(0)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// What to write back after a request: one storage transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settlement {
    /// Seqs of acknowledged entries, to delete from the outbox.
    pub acked: Vec<u64>,
    /// Entries rescheduled or flagged, written back under their seq.
    pub updated: Vec<OutboxEntry>,
    /// Entries to move from the outbox to the dead letters.
    pub dead: Vec<DeadLetter>,
    /// `acked` as inclusive key ranges (see `acked_ranges`): one range delete in IndexedDB costs
    /// a fraction of a hundred single deletes.
    pub acked_ranges: Vec<(u64, u64)>,
    /// Acknowledged changes, in order, with the version each produced: where a collection keeps
    /// merge bases, the base moves to the server's state after this client's own write. Without
    /// this, a three-way merge would count this client's own acknowledged edits as changes of
    /// the base and undo later remote edits.
    pub rebase: Vec<Rebase>,
}

/// One acknowledged change, for moving a merge base (see `Settlement::rebase`).
#[derive(Debug, Clone, PartialEq)]
pub struct Rebase {
    pub op: Op,
    pub version: u64,
}

/// Inclusive key ranges covering exactly the acknowledged entries, given `window`: the sorted seqs
/// of the entries the batch was chosen from. The window is a prefix of the outbox in key order and
/// new entries always get larger keys, so no other entry has a key between two window entries:
/// a run of consecutive window entries that were all acknowledged can go as one range. Acked seqs
/// outside the window (there should be none) get a range of their own.
pub fn acked_ranges(window: &[u64], acked: &[u64]) -> Vec<(u64, u64)> {
    let is_acked = |seq: &u64| acked.contains(seq);
    let mut ranges = Vec::new();
    let mut run: Option<(u64, u64)> = None;
    for &seq in window {
        if is_acked(&seq) {
            run = Some(run.map_or((seq, seq), |(low, _)| (low, seq)));
        } else if let Some(done) = run.take() {
            ranges.push(done);
        }
    }
    ranges.extend(run);
    ranges.extend(acked.iter().filter(|seq| !window.contains(seq)).map(|&seq| (seq, seq)));
    ranges
}

/// How the results of one successful request break down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub acked: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub conflicts: u64,
    /// Ops refused `FORBIDDEN` under a token that may be stale: kept queued as they are, to go
    /// again with a fresh token.
    pub forbidden: u64,
    /// How many of the batch's entries the answer settled: fewer than the batch is a prefix,
    /// and the rest are still queued.
    pub answered: usize,
}

impl Settlement {
    fn reschedule(
        &mut self,
        mut entry: OutboxEntry,
        error: LastError,
        next_attempt_at: f64,
        policy: &RetryPolicy,
        now: f64,
    ) {
        entry.attempts = entry.attempts.saturating_add(1);
        if policy.exhausted(entry.attempts) {
            self.dead.push(DeadLetter::from_entry(entry, error, now));
        } else {
            entry.next_attempt_at = next_attempt_at;
            entry.last_error = Some(error);
            self.updated.push(entry);
        }
    }
}

/// Reads a 2xx answer. Bad server data (a different number of results, ids out of order) is an
/// `Err` with the reason, which the engine treats as a transient failure of the whole request.
/// `stale_token`: the batch went with a kept token the app could refresh, so an op refused
/// `FORBIDDEN` stays queued for a fresh one (`Tally::forbidden`) instead of dying.
pub fn settle_results(
    batch: &[OutboxEntry],
    body: &str,
    now: f64,
    policy: &RetryPolicy,
    stale_token: bool,
    mut random: impl FnMut() -> f64,
) -> Result<(Settlement, Tally), String> {
    let response: PushResponse =
        super::wire::push_response(body).map_err(|e| format!("the server's answer is not a push response: {e}"))?;
    if !speaks(response.protocol.into()) {
        return Err(format!(
            "the server answered in protocol {}, this client speaks {PROTOCOL_VERSION}",
            response.protocol
        ));
    }
    // Fewer results than mutations are a prefix: those are settled and the rest sent again (a
    // backend that applies one mutation per request can stop at the first that fails). None at
    // all would make no progress, so it is a failure of the request like any other bad answer.
    if response.results.is_empty() || response.results.len() > batch.len() {
        return Err(format!("the server answered {} results for {} mutations", response.results.len(), batch.len()));
    }
    let mut settlement = Settlement::default();
    let mut tally = Tally { answered: response.results.len(), ..Tally::default() };
    for (entry, result) in batch.iter().zip(response.results) {
        if result.id() != entry.op.id {
            return Err(format!("result for \"{}\" where \"{}\" was expected", result.id(), entry.op.id));
        }
        match result {
            MutationResult::Applied { version, .. } | MutationResult::Duplicate { version, .. } => {
                tally.acked += 1;
                tally.duplicates += u64::from(matches!(result, MutationResult::Duplicate { .. }));
                settlement.acked.push(entry.op.seq);
                settlement.rebase.push(Rebase { op: entry.op.clone(), version });
            }
            MutationResult::Rejected { code, message, permanent, .. } => {
                tally.rejected += 1;
                if permanent && stale_token && code == "FORBIDDEN" {
                    tally.forbidden += 1;
                    continue;
                }
                let error = LastError::from_server(&code, message, None, true);
                if permanent {
                    settlement.dead.push(DeadLetter::from_entry(entry.clone(), error, now));
                } else {
                    let attempts = entry.attempts.saturating_add(1);
                    let at = now + policy.delay_ms(attempts, random(), None) as f64;
                    settlement.reschedule(entry.clone(), error, at, policy, now);
                }
            }
            MutationResult::Conflict { version, value, hlc, shape, .. } => {
                tally.conflicts += 1;
                let mut held = entry.clone();
                held.last_error = Some(LastError::new(
                    SyncErrorCode::Conflict,
                    format!("the server has version {version} of this document"),
                    None,
                ));
                held.conflict = Some(ConflictInfo { version, value, hlc, shape });
                settlement.updated.push(held);
            }
        }
    }
    Ok((settlement, tally))
}

/// The whole request failed for a reason that is not any op's own (an outage, a refusal that
/// names no op): every entry waits until `next_attempt_at`, which pauses the queue, also across
/// a reload. No attempt is counted; only an op older than `retry.maxAgeMs`, when set, goes to
/// the dead letters.
pub fn settle_outage(
    batch: &[OutboxEntry],
    error: &LastError,
    next_attempt_at: f64,
    policy: &RetryPolicy,
    now: f64,
) -> Settlement {
    let mut settlement = Settlement::default();
    for entry in batch {
        if policy.too_old(entry.created_at, now) {
            let error = LastError::new(
                error.code,
                format!("{} (the op waited past retry.maxAgeMs)", error.message),
                error.status,
            );
            settlement.dead.push(DeadLetter::from_entry(entry.clone(), error, now));
            continue;
        }
        let mut entry = entry.clone();
        entry.next_attempt_at = next_attempt_at;
        entry.last_error = Some(error.clone());
        settlement.updated.push(entry);
    }
    settlement
}

/// A failure pinned on one op: it failed alone, and another op got through right after. A
/// refusal (`permanent`) dead-letters it; a server failure counts an attempt, and the op waits
/// until `next_attempt_at` without pausing the rest of the queue.
pub fn settle_pinned(
    entry: &OutboxEntry,
    error: &LastError,
    permanent: bool,
    next_attempt_at: f64,
    policy: &RetryPolicy,
    now: f64,
) -> Settlement {
    let mut settlement = Settlement::default();
    let mut entry = entry.clone();
    entry.attempts = entry.attempts.saturating_add(1);
    let mut error = error.clone();
    if !permanent {
        // The status goes into the message: a failure that concerns one op blocks only its
        // document (`LastError::is_request_level`).
        let status = error.status.take().map_or_else(String::new, |s| format!(" (HTTP {s})"));
        error.message = format!(
            "the server failed{status} each time this op was sent alone, while others got through: {}",
            error.message
        );
    }
    if permanent || policy.exhausted(entry.attempts) {
        settlement.dead.push(DeadLetter::from_entry(entry, error, now));
    } else {
        entry.next_attempt_at = next_attempt_at;
        entry.last_error = Some(error);
        settlement.updated.push(entry);
    }
    settlement
}

/// A single entry the server refuses as a request, whatever else it holds (a lone 413).
pub fn settle_refused(entry: &OutboxEntry, error: LastError, now: f64) -> Settlement {
    let mut entry = entry.clone();
    entry.attempts = entry.attempts.saturating_add(1);
    Settlement { dead: vec![DeadLetter::from_entry(entry, error, now)], ..Settlement::default() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::document::Key;
    use crate::core::op::Payload;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn acked_runs_become_ranges_and_unacked_entries_split_them() {
        assert_eq!(acked_ranges(&[3, 4, 7, 9, 12], &[3, 4, 7, 12]), vec![(3, 7), (12, 12)]);
        assert_eq!(acked_ranges(&[1, 2, 3], &[]), vec![]);
        assert_eq!(acked_ranges(&[5], &[5, 40]), vec![(5, 5), (40, 40)], "a stray seq still goes");
    }

    proptest! {
        /// Over any window (sorted, with gaps), deleting the ranges deletes exactly the acked entries.
        #[test]
        fn ranges_delete_exactly_the_acked_entries(
            picks in prop::collection::vec((1u64..4, any::<bool>()), 0..60),
        ) {
            let mut seq = 0;
            let mut window = Vec::new();
            let mut acked = Vec::new();
            for (gap, ack) in picks {
                seq += gap;
                window.push(seq);
                if ack {
                    acked.push(seq);
                }
            }
            let ranges = acked_ranges(&window, &acked);
            for seq in &window {
                let deleted = ranges.iter().any(|(low, high)| (low..=high).contains(&seq));
                prop_assert_eq!(deleted, acked.contains(seq), "seq {}", seq);
            }
        }
    }

    fn entry(seq: u64, key: &str) -> OutboxEntry {
        let op = Op {
            id: format!("op{seq}"),
            seq,
            collection: "todos".into(),
            key: Key::Text(key.into()),
            payload: Payload::Put(json!({"id": key, "n": seq})),
        };
        OutboxEntry::new(op, 0.0, None)
    }

    const WIDE: BatchLimits = BatchLimits { max_count: 100, max_bytes: 1 << 20, one_per_document: false };

    fn batch(selection: Selection) -> Batch {
        match selection {
            Selection::Batch(batch) => batch,
            other => panic!("expected a batch, got {other:?}"),
        }
    }

    #[test]
    fn the_body_is_a_push_request_in_outbox_order() {
        let entries = [entry(1, "a"), entry(2, "b")];
        let b = batch(select(&entries, 10.0, "client-1", WIDE, None, &|_| (None, 1)));
        let request: crate::core::protocol::PushRequest = serde_json::from_str(&b.body).unwrap();
        assert_eq!(request.client_id, "client-1");
        assert_eq!(request.mutations.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(b.idempotency_key.len(), 16);
        assert_eq!(
            b.idempotency_key,
            batch(select(&entries, 99.0, "client-1", WIDE, None, &|_| (None, 1))).idempotency_key
        );
        assert_ne!(
            b.idempotency_key,
            batch(select(&entries[..1], 10.0, "client-1", WIDE, None, &|_| (None, 1))).idempotency_key
        );
    }

    #[test]
    fn a_mutation_names_the_shared_space_of_its_collection() {
        let mut note = entry(2, "n");
        note.op.collection = "notes".into();
        let entries = [entry(1, "a"), note];
        let in_acme = |collection: &str| ((collection == "todos").then_some("acme"), 3);
        let request: crate::core::protocol::PushRequest =
            serde_json::from_str(&batch(select(&entries, 10.0, "c", WIDE, None, &in_acme)).body).unwrap();
        assert_eq!(request.protocol, 2);
        let spaces: Vec<Option<&str>> = request.mutations.iter().map(|m| m.space.as_deref()).collect();
        assert_eq!(spaces, [Some("acme"), None]);
        assert!(request.mutations.iter().all(|m| m.shape == Some(3)), "each names its collection's version");
    }

    #[test]
    fn count_and_byte_limits_cut_the_batch_but_never_to_nothing() {
        let entries: Vec<_> = (1..=10).map(|i| entry(i, &format!("k{i}"))).collect();
        assert_eq!(
            batch(select(
                &entries,
                0.0,
                "c",
                BatchLimits { max_count: 3, max_bytes: 1 << 20, one_per_document: false },
                None,
                &|_| (None, 1)
            ))
            .entries
            .len(),
            3
        );
        let small = batch(select(
            &entries,
            0.0,
            "c",
            BatchLimits { max_count: 100, max_bytes: 300, one_per_document: false },
            None,
            &|_| (None, 1),
        ));
        assert!(small.body.len() <= 300 && !small.entries.is_empty(), "{}", small.body.len());
        let tiny = batch(select(
            &entries,
            0.0,
            "c",
            BatchLimits { max_count: 100, max_bytes: 1, one_per_document: false },
            None,
            &|_| (None, 1),
        ));
        assert_eq!(tiny.entries.len(), 1, "an entry larger than the limit still goes, alone");
    }

    #[test]
    fn with_a_transport_a_batch_takes_one_op_per_document() {
        let mut second = entry(2, "a");
        second.op.id = "op2".into();
        let entries = [entry(1, "a"), second, entry(3, "b")];
        let one = BatchLimits { one_per_document: true, ..WIDE };
        let b = batch(select(&entries, 0.0, "c", one, None, &|_| (None, 1)));
        assert_eq!(b.entries.iter().map(|e| e.op.seq).collect::<Vec<_>>(), [1, 3]);
        assert!(!b.drains, "the second op of a waits for the next batch");
        assert_eq!(batch(select(&entries, 0.0, "c", WIDE, None, &|_| (None, 1))).entries.len(), 3);
    }

    #[test]
    fn held_and_waiting_entries_block_only_their_document() {
        let mut held = entry(1, "a");
        held.conflict = Some(ConflictInfo { version: 3, value: None, hlc: None, shape: None });
        let mut waiting = entry(2, "b");
        waiting.next_attempt_at = 50.0;
        waiting.last_error = Some(LastError::from_server("INVALID", "no", None, true));
        let entries = [held, waiting, entry(3, "a"), entry(4, "b"), entry(5, "c")];
        let b = batch(select(&entries, 10.0, "c", WIDE, None, &|_| (None, 1)));
        assert_eq!(b.entries.iter().map(|e| e.op.id.as_str()).collect::<Vec<_>>(), ["op5"]);
        assert_eq!(select(&entries[..4], 10.0, "c", WIDE, None, &|_| (None, 1)), Selection::NotBefore(50.0));
        assert_eq!(select(&entries[..1], 10.0, "c", WIDE, None, &|_| (None, 1)), Selection::Nothing);
        assert_eq!(select(&[], 10.0, "c", WIDE, None, &|_| (None, 1)), Selection::Nothing);
        let mut letter = entry(6, "a");
        letter.resent = true;
        let behind = [entries[0].clone(), letter.clone()];
        let b = batch(select(&behind, 10.0, "c", WIDE, None, &|_| (None, 1)));
        assert_eq!(
            b.entries.iter().map(|e| e.op.id.as_str()).collect::<Vec<_>>(),
            ["op6"],
            "a retried letter behind a conflict goes under its own id: it may have landed"
        );
        let ordered = [entries[0].clone(), entries[2].clone(), letter];
        assert_eq!(
            select(&ordered, 10.0, "c", WIDE, None, &|_| (None, 1)),
            Selection::Nothing,
            "never ahead of an earlier write"
        );
    }

    #[test]
    fn a_request_level_failure_pauses_the_whole_queue() {
        let mut failed = entry(1, "a");
        failed.next_attempt_at = 500.0;
        failed.last_error = Some(LastError::new(SyncErrorCode::Http, "Service Unavailable", Some(503)));
        let entries = [failed, entry(2, "b")];
        assert_eq!(select(&entries, 10.0, "c", WIDE, None, &|_| (None, 1)), Selection::NotBefore(500.0));
        assert_eq!(batch(select(&entries, 500.0, "c", WIDE, None, &|_| (None, 1))).entries.len(), 2);
    }

    fn answer(results: serde_json::Value) -> String {
        json!({"protocol": 1, "results": results}).to_string()
    }

    #[test]
    fn results_ack_reschedule_hold_and_dead_letter() {
        let policy = RetryPolicy { base_ms: 100, max_ms: 1_000, max_attempts: 3, max_age_ms: None };
        let entries = [entry(1, "a"), entry(2, "b"), entry(3, "c"), entry(4, "d"), entry(5, "e")];
        let body = answer(json!([
            {"status": "applied", "id": "op1", "version": 1},
            {"status": "duplicate", "id": "op2", "version": 1},
            {"status": "rejected", "id": "op3", "code": "INVALID", "message": "bad", "permanent": true},
            {"status": "rejected", "id": "op4", "code": "BUSY", "message": "later", "permanent": false},
            {"status": "conflict", "id": "op5", "version": 7, "value": {"id": "e"}},
        ]));
        let (s, tally) = settle_results(&entries, &body, 1_000.0, &policy, false, || 0.5).unwrap();
        assert_eq!(s.acked, [1, 2]);
        assert_eq!(tally, Tally { acked: 2, duplicates: 1, rejected: 2, conflicts: 1, forbidden: 0, answered: 5 });
        assert_eq!(s.dead.len(), 1);
        assert_eq!((s.dead[0].op.id.as_str(), s.dead[0].last_error.server_code.as_deref()), ("op3", Some("INVALID")));
        assert_eq!(s.updated[0].op.id, "op4");
        assert_eq!((s.updated[0].attempts, s.updated[0].next_attempt_at), (1, 1_050.0));
        assert_eq!(
            s.updated[1].conflict,
            Some(ConflictInfo { version: 7, value: Some(json!({"id": "e"})), hlc: None, shape: None })
        );
        assert_eq!(s.updated[1].attempts, 0, "a conflict is not a failed attempt");
    }

    #[test]
    fn bad_server_answers_are_errors_not_panics() {
        let policy = RetryPolicy::default();
        let entries = [entry(1, "a"), entry(2, "b")];
        let applied = |id: &str| json!({"status": "applied", "id": id, "version": 1});
        for body in [
            "not json".to_owned(),
            answer(json!([])),
            answer(json!([applied("op2")])),
            answer(json!([applied("op1"), applied("op2"), applied("op3")])),
            answer(json!([applied("op2"), applied("op1")])),
            json!({"protocol": 2, "results": []}).to_string(),
        ] {
            assert!(settle_results(&entries, &body, 0.0, &policy, false, || 0.0).is_err(), "{body}");
        }
    }

    #[test]
    fn a_prefix_of_results_settles_the_prefix_and_leaves_the_rest_queued() {
        let entries = [entry(1, "a"), entry(2, "b"), entry(3, "c")];
        let body = answer(json!([{"status": "applied", "id": "op1", "version": 4}]));
        let (settlement, tally) = settle_results(&entries, &body, 0.0, &RetryPolicy::default(), false, || 0.0).unwrap();
        assert_eq!((settlement.acked.as_slice(), tally.acked, tally.answered), (&[1][..], 1, 1));
        assert!(settlement.updated.is_empty() && settlement.dead.is_empty(), "the rest are untouched");
    }

    #[test]
    fn outages_count_no_attempts_and_only_max_age_dead_letters() {
        let policy = RetryPolicy { base_ms: 100, max_ms: 1_000, max_attempts: 1, max_age_ms: Some(10_000) };
        let mut old = entry(2, "b");
        old.created_at = -20_000.0;
        let error = LastError::new(SyncErrorCode::Http, "Bad Gateway", Some(502));
        let s = settle_outage(&[entry(1, "a"), old], &error, 900.0, &policy, 100.0);
        assert_eq!((s.updated.len(), s.dead.len()), (1, 1));
        assert_eq!((s.updated[0].attempts, s.updated[0].next_attempt_at), (0, 900.0));
        assert_eq!((s.dead[0].op.seq, s.dead[0].last_error.status, s.dead[0].dead_at), (2, Some(502), 100.0));
        assert!(s.dead[0].last_error.message.contains("maxAgeMs"));
        let forever = RetryPolicy { max_age_ms: None, ..policy };
        assert!(settle_outage(&[entry(3, "c")], &error, 900.0, &forever, 1e15).dead.is_empty());
        let refused = settle_refused(&entry(3, "c"), LastError::new(SyncErrorCode::TooLarge, "413", Some(413)), 5.0);
        assert_eq!((refused.dead[0].op.seq, refused.dead[0].attempts), (3, 1));
    }

    #[test]
    fn a_pinned_failure_counts_an_attempt_and_blocks_only_its_document() {
        let policy = RetryPolicy { base_ms: 100, max_ms: 1_000, max_attempts: 2, max_age_ms: None };
        let error = LastError::new(SyncErrorCode::Http, "Internal Server Error", Some(500));
        let s = settle_pinned(&entry(1, "a"), &error, false, 700.0, &policy, 100.0);
        let pinned = &s.updated[0];
        assert_eq!((pinned.attempts, pinned.next_attempt_at, s.dead.len()), (1, 700.0, 0));
        assert!(!pinned.last_error.as_ref().unwrap().is_request_level(), "{:?}", pinned.last_error);
        let entries = [pinned.clone(), entry(2, "b")];
        assert_eq!(
            batch(select(&entries, 200.0, "c", WIDE, None, &|_| (None, 1))).entries.len(),
            1,
            "the queue is not paused"
        );
        let again = settle_pinned(pinned, &error, false, 900.0, &policy, 800.0);
        assert_eq!((again.dead.len(), again.dead[0].attempts), (1, 2), "out of attempts");
        let refusal = LastError::new(SyncErrorCode::InvalidMutation, "too deep", Some(400));
        let s = settle_pinned(&entry(1, "a"), &refusal, true, 700.0, &policy, 100.0);
        assert_eq!((s.dead.len(), s.dead[0].last_error.status), (1, Some(400)));
    }

    #[test]
    fn a_skipped_suspect_blocks_its_document_but_not_the_queue() {
        let mut suspect = entry(1, "a");
        suspect.last_error = Some(LastError::new(SyncErrorCode::Http, "Bad Request", Some(400)));
        suspect.next_attempt_at = 50.0;
        let entries = [suspect, entry(2, "a"), entry(3, "b")];
        let chosen = batch(select(&entries, 60.0, "c", WIDE, Some(1), &|_| (None, 1)));
        assert_eq!(chosen.entries.iter().map(|e| e.op.seq).collect::<Vec<_>>(), [3]);
        assert!(!chosen.drains);
        assert_eq!(select(&entries[..2], 60.0, "c", WIDE, Some(1), &|_| (None, 1)), Selection::Nothing);
    }
}
