//! What the users wrote, and the invariants checked against what the server applied.
//!
//! Every put and patch carries a token made for it (`{client}.{n}`), twice: as the value of the
//! field `w` and as a field name of its own. Coalescing folds writes into one payload, which then
//! holds every folded write's token as a field, and `w` names the last of them. So:
//!
//! - **Nothing acknowledged is lost**: each write the user saw commit is accounted for at the end:
//!   its token reached the server in a payload its own client sent (its delete, by id, for a
//!   delete), or a later put or delete of the same client replaced the document, or the client
//!   reported a conflict on the document (the strategy may drop a side), or the user discarded or
//!   edited its dead letter, or it still sits in a dead letter (with a reason).
//! - **Nothing is applied twice**: a write's token is the `w` of the applied payloads of at most
//!   one op id of its client. A resolution or a resend that sends an already applied write again
//!   under a new id would apply it twice. (A dead letter the user retried is a write made again.)

use std::collections::{BTreeMap, BTreeSet};

use wharf::core::OpKind;

use crate::server::Landing;

/// One local write that committed.
#[derive(Debug, Clone)]
pub struct Written {
    pub client: String,
    pub collection: String,
    /// The key as JSON text.
    pub key: String,
    pub kind: OpKind,
    /// `None` for a delete.
    pub token: Option<String>,
    /// `None` for a patch folded into an earlier entry before the simulation could see it.
    pub op_id: Option<String>,
    /// The commit order across the whole simulation.
    pub order: u64,
}

/// A dead letter the user discarded or edited (its writes are the user's to drop), or one still
/// dead at the end.
#[derive(Debug, Clone)]
pub struct Settled {
    pub client: String,
    pub collection: String,
    pub key: String,
    pub op_id: String,
    pub tokens: BTreeSet<String>,
    pub delete: bool,
    pub order: u64,
    /// The user discarded it (rather than edited it, or left it dead).
    pub discarded: bool,
}

impl Settled {
    /// Whether this settles `write`: its op, a token it carried, or (a delete) one folded into it.
    fn covers(&self, write: &Written) -> bool {
        self.client == write.client
            && self.collection == write.collection
            && self.key == write.key
            && (write.op_id.as_deref() == Some(self.op_id.as_str())
                || write.token.as_ref().is_some_and(|t| self.tokens.contains(t))
                || (write.token.is_none() && self.delete && write.order <= self.order))
    }
}

#[derive(Default)]
pub struct Ledger {
    pub writes: Vec<Written>,
    pub settled: Vec<Settled>,
    /// The tokens of dead letters the user retried.
    pub retried: BTreeSet<String>,
    tokens: u64,
    order: u64,
}

impl Ledger {
    /// Whether `value`, held locally by `client`, is the content of a dead letter the user
    /// discarded. Discarding leaves the local record as it was (the known gap of
    /// `docs/protocol.md`, "Dead letters"): such a record may differ from the server's until the
    /// document changes again.
    pub fn shows_discarded(&self, client: &str, value: Option<&serde_json::Value>) -> bool {
        let Some(w) = value.and_then(|v| v.get("w")).and_then(serde_json::Value::as_str) else { return false };
        self.settled.iter().any(|s| s.discarded && s.client == client && s.tokens.contains(w))
    }

    /// A fresh token for a write of `client`.
    pub fn token(&mut self, client: &str) -> String {
        self.tokens += 1;
        format!("{client}.{}", self.tokens)
    }

    /// The next commit order.
    pub fn tick(&mut self) -> u64 {
        self.order += 1;
        self.order
    }

    /// No token is the `w` of applied payloads under two op ids of its own client, unless the
    /// user retried its dead letter: a retry is stamped now, a write made again (when it meets a
    /// conflict, it is part of the local side, which the resolution sends under a new id).
    pub fn check_applied_once(&self, landings: &[Landing]) -> Result<(), String> {
        let mut ids: BTreeMap<&str, &str> = BTreeMap::new();
        for landing in landings {
            let Some(w) = landing.w.as_deref() else { continue };
            if !w.starts_with(&format!("{}.", landing.client)) {
                continue; // another client's token, carried by a merge
            }
            if self.retried.contains(w) {
                continue;
            }
            match ids.insert(w, &landing.id) {
                Some(first) if first != landing.id => {
                    return Err(format!("write {w} was applied twice: as {first} and as {}", landing.id));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Every write is accounted for (see the module header). `conflicts`: the (client,
    /// collection, key) of every conflict a client reported.
    pub fn check_nothing_lost(
        &self,
        landings: &[Landing],
        conflicts: &BTreeSet<(String, String, String)>,
    ) -> Result<(), String> {
        let mut landed_tokens: BTreeSet<(&str, &str)> = BTreeSet::new();
        let mut landed_deletes: BTreeSet<(&str, &str)> = BTreeSet::new();
        for landing in landings {
            for field in &landing.fields {
                landed_tokens.insert((&landing.client, field));
            }
            if landing.kind == OpKind::Delete {
                landed_deletes.insert((&landing.client, &landing.id));
            }
        }
        let same_document =
            |a: &Written, b: &Written| a.client == b.client && a.collection == b.collection && a.key == b.key;
        // Newest first, so "a later put or delete was accounted for" is known when asked.
        let mut accounted = vec![false; self.writes.len()];
        for i in (0..self.writes.len()).rev() {
            let write = &self.writes[i];
            let direct = match &write.token {
                Some(token) => landed_tokens.contains(&(write.client.as_str(), token.as_str())),
                // A delete lands under its own id or under the id of the unsent write it was folded into.
                None => self.writes[..=i]
                    .iter()
                    .filter(|w| same_document(w, write))
                    .any(|w| w.op_id.as_deref().is_some_and(|id| landed_deletes.contains(&(w.client.as_str(), id)))),
            };
            let replaced = (i + 1..self.writes.len()).any(|j| {
                let later = &self.writes[j];
                same_document(later, write) && later.kind != OpKind::Patch && accounted[j]
            });
            let conflicted = conflicts.contains(&(write.client.clone(), write.collection.clone(), write.key.clone()));
            let settled = self.settled.iter().any(|s| s.covers(write));
            accounted[i] = direct || replaced || conflicted || settled;
            if !accounted[i] {
                return Err(format!(
                    "a write was lost: {} {:?} of {} on {}/{} (op {}), committed #{}",
                    write.token.as_deref().unwrap_or("delete"),
                    write.kind,
                    write.client,
                    write.collection,
                    write.key,
                    write.op_id.as_deref().unwrap_or("folded"),
                    write.order
                ));
            }
        }
        Ok(())
    }
}
