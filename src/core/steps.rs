//! What every read-decide-write step has in common: the stores it spans, and one synchronous
//! function from the results of its last reads to its next round (`tx.rs`). A step keeps what
//! it decided in itself; its owner reads that outcome only once the host reports the commit, so
//! a transaction that aborts leaves no trace in the core either.
//!
//! The steps themselves live with their rules: `push_tx.rs` (prepare and settle a batch),
//! `pull_tx.rs` (apply a page, the resync sweep), `conflict_tx.rs` (load and commit a
//! resolution), `dead_letters.rs` (list, retry, edit, discard) and `local_tx.rs` (the client id,
//! the queue sizes, a local patch).

use serde_json::Value;

use super::document::Key;
use super::hlc::WriteClock;
use super::json_text::object;
use super::op::OutboxEntry;
use super::read;
use super::schema::DatabaseSchema;
use super::tx::{pairs, Round, Scope};

/// What a step may use besides its reads: the time, the write clock, the schema.
pub struct Ctx<'a> {
    pub now: f64,
    pub clock: &'a mut WriteClock,
    pub schema: &'a DatabaseSchema,
}

/// One read-decide-write step.
pub trait TxStep {
    /// The stores the transaction spans and whether it writes.
    fn scope(&self, schema: &DatabaseSchema) -> Scope;
    /// The next round, given the results of the previous reads (none on the first call).
    fn advance(&mut self, results: Vec<Value>, ctx: &mut Ctx<'_>) -> Round;
}

/// The version and, where the collection keeps one, the merge base stored for a document in
/// the versions store: a bare number, or `{ v, b }`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VersionEntry {
    pub version: u64,
    /// `Some` where the collection keeps merge bases (`b`, the server's value; `None` inside:
    /// deleted or unknown).
    pub base: Option<Option<Value>>,
    /// The full resync that last saw the document (`r`), while one is under way: what it has
    /// not seen by its end the server no longer has (`pull_tx::SweepUnseen`).
    pub resync: Option<String>,
}

impl VersionEntry {
    /// Reads a stored entry (`null` when the document was never seen from the server).
    pub fn read(stored: &Value) -> VersionEntry {
        match stored {
            Value::Object(m) => VersionEntry {
                version: m.get("v").and_then(Value::as_u64).unwrap_or(0),
                base: m.contains_key("b").then(|| read::some(m, "b").cloned()),
                resync: m.get("r").and_then(Value::as_str).map(str::to_owned),
            },
            other => VersionEntry { version: other.as_u64().unwrap_or(0), base: None, resync: None },
        }
    }

    /// The stored form: the smallest value IndexedDB can clone is the cheapest to write, once
    /// per pulled change.
    pub fn to_json(&self) -> Value {
        if self.base.is_none() && self.resync.is_none() {
            return self.version.into();
        }
        let mut fields = vec![("v", self.version.into())];
        if let Some(base) = &self.base {
            fields.push(("b", base.clone().unwrap_or(Value::Null)));
        }
        if let Some(resync) = &self.resync {
            fields.push(("r", resync.as_str().into()));
        }
        object(fields)
    }

    /// The entry after a change to `value` at `version`, keeping a base when `keep_base`.
    pub fn at(version: u64, value: Option<&Value>, keep_base: bool) -> VersionEntry {
        VersionEntry { version, base: keep_base.then(|| value.cloned()), resync: None }
    }
}

/// Reads `[seq, entry]` pairs into outbox entries, leaving out any that cannot be read (the
/// push moves those to the dead letters: `unreadable_entries`).
pub fn entries_of(result: &Value) -> Result<Vec<OutboxEntry>, String> {
    Ok(outbox_window(result)?.0)
}

/// An outbox entry that cannot be read: its seq, its stored value, and why.
pub type UnreadableEntry = (u64, Value, String);

/// The readable entries of a `[seq, entry]` read, and the unreadable ones apart, so one broken
/// entry never stops the window.
pub fn outbox_window(result: &Value) -> Result<(Vec<OutboxEntry>, Vec<UnreadableEntry>), String> {
    let mut entries = Vec::new();
    let mut unreadable = Vec::new();
    for (seq, value) in pairs(result)? {
        let seq = seq.as_u64().ok_or("an outbox key is not a sequence number")?;
        match OutboxEntry::from_json(value, seq) {
            Ok(entry) => entries.push(entry),
            Err(e) => unreadable.push((seq, value.clone(), format!("outbox entry {seq} is unreadable: {e}"))),
        }
    }
    Ok((entries, unreadable))
}

/// The key of a record as its store holds it.
pub fn record_key(key: &Key) -> Value {
    key.to_json()
}

/// A stored value, `None` for a missing record (IndexedDB's `undefined` crosses as null).
pub fn present(value: &Value) -> Option<Value> {
    (!value.is_null()).then(|| value.clone())
}
