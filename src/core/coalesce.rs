//! Coalescing the outbox before a push: consecutive pending changes to one document collapse into
//! one (put + patch → put, patch + patch → patch, anything + delete → delete, ...), so a burst of
//! edits costs one mutation, without changing what the server ends up with.
//!
//! Only entries that were never sent may be rewritten: an entry that was attempted (or is in
//! flight) may already be applied under its id, and the server would answer a rewritten payload
//! with `duplicate`, silently dropping the new content.

use super::op::OutboxEntry;
use super::sorted::Slots;

/// The outbox after coalescing.
#[derive(Debug, Clone, PartialEq)]
pub struct Coalesced {
    /// The entries to send, in outbox order; a survivor keeps its id and seq, with the merged payload.
    pub entries: Vec<OutboxEntry>,
    /// Ids of the entries folded into an earlier one: delete them from the outbox together with
    /// rewriting their survivor, in one transaction.
    pub absorbed: Vec<String>,
    /// Positions in `entries` of the survivors whose payload changed (to write back).
    pub rewritten: Vec<usize>,
}

/// Coalesces `entries` (outbox order). `movable(entry)` tells whether an entry may be rewritten
/// or absorbed: never attempted and not in flight.
pub fn coalesce(entries: &[OutboxEntry], movable: impl Fn(&OutboxEntry) -> bool) -> Coalesced {
    let mut out: Vec<OutboxEntry> = Vec::with_capacity(entries.len());
    let mut absorbed = Vec::new();
    let mut rewritten = Vec::new();
    let mut last_for_document = Slots::default();
    for entry in entries {
        let document = entry.op.doc_id();
        if movable(entry) {
            if let Some(at) = last_for_document.get(&document) {
                // Never across users: the survivor is sent under its own user (`sync.user`).
                if movable(&out[at]) && out[at].user == entry.user {
                    if let Some(payload) = out[at].op.payload.then(&entry.op.payload) {
                        let survivor = &mut out[at];
                        survivor.op.payload = payload;
                        survivor.hlc = entry.hlc.clone().or(survivor.hlc.take());
                        absorbed.push(entry.op.id.clone());
                        if !rewritten.contains(&at) {
                            rewritten.push(at);
                        }
                        continue;
                    }
                }
            }
        }
        last_for_document.set(document, out.len());
        out.push(entry.clone());
    }
    Coalesced { entries: out, absorbed, rewritten }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::op::{Op, OpKind, Payload};
    use crate::core::Key;
    use serde_json::{json, Value};

    fn entry(id: &str, key: &str, op: OpKind, payload: Option<Value>) -> OutboxEntry {
        let payload = match op {
            OpKind::Put => Payload::Put(payload.unwrap()),
            OpKind::Patch => Payload::Patch(payload.unwrap()),
            OpKind::Delete => Payload::Delete,
        };
        let op = Op { id: id.into(), seq: 0, collection: "todos".into(), key: Key::Text(key.into()), payload };
        OutboxEntry::new(op, 0.0, None)
    }

    fn all(_: &OutboxEntry) -> bool {
        true
    }

    #[test]
    fn a_burst_of_edits_becomes_one_mutation() {
        let ops = [
            entry("1", "a", OpKind::Put, Some(json!({"id": "a", "t": "x", "n": 1}))),
            entry("2", "b", OpKind::Put, Some(json!({"id": "b"}))),
            entry("3", "a", OpKind::Patch, Some(json!({"t": "y"}))),
            entry("4", "a", OpKind::Patch, Some(json!({"n": 2}))),
        ];
        let result = coalesce(&ops, all);
        assert_eq!(result.absorbed, ["3", "4"]);
        assert_eq!(result.entries.len(), 2);
        assert_eq!(result.entries[0].op.id, "1", "the survivor keeps the earliest id");
        assert_eq!(result.entries[0].op.payload, Payload::Put(json!({"id": "a", "t": "y", "n": 2})));
    }

    #[test]
    fn deletes_win_and_patches_after_deletes_stay() {
        let ops = [
            entry("1", "a", OpKind::Patch, Some(json!({"x": 1}))),
            entry("2", "a", OpKind::Delete, None),
            entry("3", "a", OpKind::Patch, Some(json!({"y": 1}))),
        ];
        let result = coalesce(&ops, all);
        assert_eq!(
            result.entries.iter().map(|e| e.op.payload.kind()).collect::<Vec<_>>(),
            [OpKind::Delete, OpKind::Patch]
        );
        assert_eq!(result.absorbed, ["2"]);
    }

    #[test]
    fn sent_entries_are_never_rewritten_or_absorbed() {
        let mut sent = entry("1", "a", OpKind::Put, Some(json!({"id": "a", "v": 1})));
        sent.attempts = 1;
        let ops = [
            sent.clone(),
            entry("2", "a", OpKind::Patch, Some(json!({"v": 2}))),
            entry("3", "a", OpKind::Patch, Some(json!({"w": 3}))),
        ];
        let result = coalesce(&ops, |e| e.attempts == 0);
        assert_eq!(result.entries[0], sent, "the attempted put is untouched");
        assert_eq!(
            result.entries[1].op.payload,
            Payload::Patch(json!({"v": 2, "w": 3})),
            "later unsent patches still merge"
        );
        assert_eq!(result.absorbed, ["3"]);
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use super::*;
        use proptest::prelude::*;
        use std::collections::BTreeMap;

        /// A model server: applies mutations one by one, as the reference server does.
        fn apply(entries: &[OutboxEntry]) -> BTreeMap<String, Value> {
            let mut state: BTreeMap<String, Value> = BTreeMap::new();
            for entry in entries {
                let key = entry.op.doc_id();
                match entry.op.payload.apply(state.get(&key)) {
                    Some(doc) => state.insert(key, doc),
                    None => state.remove(&key),
                };
            }
            state
        }

        fn op_strategy() -> impl Strategy<Value = (u8, u8, u8, u8, bool)> {
            // (key, op, field, value, already sent)
            (0u8..3, 0u8..3, 0u8..3, 0u8..5, proptest::bool::weighted(0.2))
        }

        proptest! {
            #[test]
            fn coalescing_never_changes_what_the_server_ends_up_with(raw in proptest::collection::vec(op_strategy(), 0..40)) {
                let entries: Vec<OutboxEntry> = raw.iter().enumerate().map(|(i, (key, op, field, value, sent))| {
                    let payload = json!({ format!("f{field}"): value });
                    let op = [OpKind::Put, OpKind::Patch, OpKind::Delete][*op as usize];
                    let mut e = entry(&i.to_string(), &format!("k{key}"), op, if op == OpKind::Delete { None } else { Some(payload) });
                    e.attempts = u32::from(*sent);
                    e
                }).collect();
                let result = coalesce(&entries, |e| e.attempts == 0);
                prop_assert_eq!(apply(&result.entries), apply(&entries));
                prop_assert_eq!(result.entries.len() + result.absorbed.len(), entries.len());
                for original in entries.iter().filter(|e| e.attempts > 0) {
                    prop_assert!(result.entries.contains(original), "a sent entry was rewritten");
                }
                let ids: Vec<&String> = result.entries.iter().map(|e| &e.op.id).collect();
                let mut sorted = ids.clone();
                sorted.sort_by_key(|id| id.parse::<usize>().unwrap());
                prop_assert_eq!(ids, sorted, "outbox order is kept");
            }
        }
    }
}
