//! The outbox entry model: what is queued next to every local write, with its retry schedule.
//!
//! The browser side builds entries as object literals in one call (`platform/js/place_write.js`);
//! this is their schema. The browser suite deserializes every entry it reads back into
//! `OutboxEntry` (unknown fields rejected), so the two cannot drift apart, and the push engine
//! reads entries through it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::document::Key;

/// The kind of a queued change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    Put,
    Patch,
    Delete,
}

impl OpKind {
    /// Whether a change of this kind carries these payloads: an object `value` for put, an
    /// object `patch` for patch, neither for delete. The one rule for outbox entries and mutations.
    pub fn payload_matches(self, value: Option<&Value>, patch: Option<&Value>) -> bool {
        match self {
            OpKind::Put => value.is_some_and(Value::is_object) && patch.is_none(),
            OpKind::Patch => patch.is_some_and(Value::is_object) && value.is_none(),
            OpKind::Delete => value.is_none() && patch.is_none(),
        }
    }

    /// The name used in outbox entries and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Put => "put",
            OpKind::Patch => "patch",
            OpKind::Delete => "delete",
        }
    }
}

/// A shallow patch applied to a document: `{ ...base, ...patch }`. `None` unless both are objects.
/// The one definition of patch semantics, used by coalescing and by the reference server.
pub fn apply_patch(base: &Value, patch: &Value) -> Option<Value> {
    let mut merged = base.as_object()?.clone();
    merged.extend(patch.as_object()?.iter().map(|(k, v)| (k.clone(), v.clone())));
    Some(Value::Object(merged))
}

/// Why the last attempt to push an entry failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LastError {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

/// One queued change. `seq` is the outbox store's auto-increment key, assigned by IndexedDB at
/// commit; it is absent from the stored value and added when entries are read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutboxEntry {
    /// A ULID (see `id.rs`).
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    pub collection: String,
    pub key: Key,
    pub op: OpKind,
    /// The stored document, for `put`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// The shallow patch, for `patch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<Value>,
    pub created_at: f64,
    pub attempts: u32,
    pub next_attempt_at: f64,
    pub last_error: Option<LastError>,
    /// Set when the server answered `conflict`: the entry is held (not sent again, and later
    /// entries on its key wait behind it) until the conflict is resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict: Option<ConflictInfo>,
    /// The local hybrid logical clock stamp of the write (`hlc.rs`, without the node suffix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hlc: Option<String>,
    /// The server version the write was based on. Not stored by writes: the push fills it in
    /// from the versions store each time it reads the entry (0 when the client never saw the
    /// document; a copy written back with a rescheduled entry is overwritten then), which is
    /// the base of every queued op on that document, since a pulled change never moves the base
    /// of a document with queued ops (it is applied or resolved as a conflict instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_version: Option<u64>,
    /// The entry's id may already have reached the server under this payload: an unedited dead
    /// letter queued again keeps its id (so the server's ledger keeps deduplicating it) but starts
    /// with a clean schedule, so `attempts` no longer says it was sent. Such an entry is never
    /// rewritten by coalescing, nor absorbs later ops: the server would answer the rewritten
    /// payload `duplicate` and drop what was folded into it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resent: bool,
}

/// The server's side of a conflict: its version and value (`None` if deleted there).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConflictInfo {
    pub version: u64,
    pub value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hlc: Option<String>,
}

/// An operation the server keeps rejecting, parked in the dead-letter store with why and when.
/// `seq` is the outbox position it had; a retry queues it again at the end of the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeadLetter {
    pub id: String,
    pub seq: u64,
    pub collection: String,
    pub key: Key,
    pub op: OpKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<Value>,
    pub created_at: f64,
    pub attempts: u32,
    pub last_error: LastError,
    pub dead_at: f64,
    /// True once `deadLetters.edit` replaced the payload: a retry then also writes it locally.
    #[serde(default)]
    pub edited: bool,
}

impl DeadLetter {
    pub fn from_entry(entry: OutboxEntry, error: LastError, now: f64) -> DeadLetter {
        DeadLetter {
            id: entry.id,
            seq: entry.seq.unwrap_or(0),
            collection: entry.collection,
            key: entry.key,
            op: entry.op,
            value: entry.value,
            patch: entry.patch,
            created_at: entry.created_at,
            attempts: entry.attempts,
            last_error: error,
            dead_at: now,
            edited: false,
        }
    }
}

impl LastError {
    pub fn new(code: &str, message: impl Into<String>, status: Option<u16>) -> LastError {
        LastError { code: code.to_owned(), message: message.into(), status }
    }

    /// Whether the failure was the whole request's (network, timeout, an HTTP error status, an
    /// unreadable answer), as opposed to the server refusing this one operation in a 200.
    pub fn is_request_level(&self) -> bool {
        self.status.is_some() || matches!(self.code.as_str(), "NETWORK" | "TIMEOUT" | "PROTOCOL")
    }
}

impl OutboxEntry {
    /// Checks that the payload matches the op: a document for put, a patch for patch, none for delete.
    pub fn is_consistent(&self) -> bool {
        self.op.payload_matches(self.value.as_ref(), self.patch.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(op: &str, payload: Option<(&str, Value)>) -> Value {
        let mut entry = json!({
            "id": "01ARYZ6S41TSV4RRFFQ69G5FAV", "seq": 3, "collection": "todos", "key": "a", "op": op,
            "createdAt": 1000.0, "attempts": 0, "nextAttemptAt": 1000.0, "lastError": null
        });
        if let Some((field, value)) = payload {
            entry[field] = value;
        }
        entry
    }

    #[test]
    fn reads_the_three_kinds_of_entries() {
        let put: OutboxEntry = serde_json::from_value(entry("put", Some(("value", json!({"id": "a"}))))).unwrap();
        assert_eq!((put.op, put.seq, put.attempts), (OpKind::Put, Some(3), 0));
        assert!(put.is_consistent());
        let patch: OutboxEntry = serde_json::from_value(entry("patch", Some(("patch", json!({"x": 1}))))).unwrap();
        assert!(patch.is_consistent());
        let delete: OutboxEntry = serde_json::from_value(entry("delete", None)).unwrap();
        assert!(delete.is_consistent() && delete.last_error.is_none());
    }

    #[test]
    fn round_trips_in_camel_case_with_numeric_keys_and_errors() {
        let mut value = entry("delete", None);
        value["key"] = json!(42.5);
        value["lastError"] = json!({"code": "HTTP", "message": "Service Unavailable", "status": 503});
        let parsed: OutboxEntry = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(parsed.key, Key::Number(42.5));
        assert_eq!(parsed.last_error.as_ref().and_then(|e| e.status), Some(503));
        assert_eq!(serde_json::to_value(&parsed).unwrap(), value);
    }

    #[test]
    fn rejects_unknown_fields_and_inconsistent_payloads() {
        let mut extra = entry("put", Some(("value", json!({}))));
        extra["surprise"] = json!(1);
        assert!(serde_json::from_value::<OutboxEntry>(extra).is_err());
        assert!(serde_json::from_value::<OutboxEntry>(entry("upsert", None)).is_err());
        let put_without_value: OutboxEntry = serde_json::from_value(entry("put", None)).unwrap();
        assert!(!put_without_value.is_consistent());
        let delete_with_value: OutboxEntry =
            serde_json::from_value(entry("delete", Some(("value", json!({}))))).unwrap();
        assert!(!delete_with_value.is_consistent());
        assert_eq!(OpKind::Patch.as_str(), "patch");
    }
}
