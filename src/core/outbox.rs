//! The outbox entry model: what is queued, with its retry schedule, next to every local write.
//!
//! An entry is committed in the same IndexedDB transaction as the record change it describes.
//! Its payload (the document for `put`, the partial for `patch`) is attached by the platform as
//! the very object stored in the collection, so it is never serialized twice.

use serde::{Deserialize, Serialize};

use super::document::Key;
use super::id::OpId;

/// The kind of a queued change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    Put,
    Patch,
    Delete,
}

impl OpKind {
    /// The name used in outbox entries and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Put => "put",
            OpKind::Patch => "patch",
            OpKind::Delete => "delete",
        }
    }

    /// The field of the entry that carries the payload, if the op has one.
    pub fn payload_field(self) -> Option<&'static str> {
        match self {
            OpKind::Put => Some("value"),
            OpKind::Patch => Some("patch"),
            OpKind::Delete => None,
        }
    }
}

/// Why the last attempt to push an entry failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastError {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

/// An outbox entry without its payload. `seq` is not stored in the entry: it is the store's
/// auto-increment key, assigned by IndexedDB at commit, and added back when entries are read.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxEntry {
    pub id: OpId,
    pub collection: String,
    pub key: Key,
    pub op: OpKind,
    pub created_at: f64,
    pub attempts: u32,
    pub next_attempt_at: f64,
    pub last_error: Option<LastError>,
}

impl OutboxEntry {
    /// A freshly queued local change: never attempted, eligible at once.
    pub fn new_local(id: OpId, collection: &str, key: Key, op: OpKind, now_ms: f64) -> Self {
        OutboxEntry {
            id,
            collection: collection.to_owned(),
            key,
            op,
            created_at: now_ms,
            attempts: 0,
            next_attempt_at: now_ms,
            last_error: None,
        }
    }

    /// The entry as JSON text, ready for one `JSON.parse` on the other side of the boundary.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("outbox entries contain only JSON-safe fields")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::id::OpIdGenerator;
    use serde_json::Value;

    #[test]
    fn new_entries_are_pending_and_camel_cased() {
        let id = OpIdGenerator::new(3).next_id(1000.0);
        let entry = OutboxEntry::new_local(id.clone(), "todos", Key::Text("a".into()), OpKind::Put, 1000.0);
        let json: Value = serde_json::from_str(&entry.to_json()).unwrap();
        assert_eq!(json["id"], Value::String(id.to_string()));
        assert_eq!(json["collection"], "todos");
        assert_eq!(json["key"], "a");
        assert_eq!(json["op"], "put");
        assert_eq!(json["createdAt"], 1000.0);
        assert_eq!(json["attempts"], 0);
        assert_eq!(json["nextAttemptAt"], 1000.0);
        assert_eq!(json["lastError"], Value::Null);
        assert!(json.get("value").is_none() && json.get("seq").is_none());
    }

    #[test]
    fn numeric_keys_stay_numbers_and_ops_name_their_payload() {
        let id = OpIdGenerator::new(3).next_id(1.0);
        let entry = OutboxEntry::new_local(id, "t", Key::Number(42.0), OpKind::Delete, 1.0);
        let json: Value = serde_json::from_str(&entry.to_json()).unwrap();
        assert_eq!(json["key"], 42.0);
        assert_eq!(json["op"], "delete");
        assert_eq!(OpKind::Delete.as_str(), json["op"]);
        assert_eq!(OpKind::Put.payload_field(), Some("value"));
        assert_eq!(OpKind::Patch.payload_field(), Some("patch"));
        assert_eq!(OpKind::Delete.payload_field(), None);
    }
}
