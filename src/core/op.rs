//! One op type for every queued change: an outbox entry, a dead letter and a pushed mutation are
//! the same `Op` (id, seq, collection, key and a `Payload`) with the bookkeeping of where it sits.
//! `Payload::apply` is the one definition of what a change does to a document; coalescing, the
//! merge base, conflict replay, dead-letter retries, local patches and the reference server all
//! use it.
//!
//! The stored forms (what IndexedDB holds) are the flat JSON objects the outbox has always had
//! (`{ id, collection, key, op, value | patch, ... }`), read and written here by hand: a derived
//! serde implementation costs far more WebAssembly than these few functions, and a flat form
//! keeps databases written by earlier versions readable.

use serde_json::{Map, Value};

use super::document::Key;
use super::error::SyncErrorCode;
use super::read::{self, Obj};

/// The kind of a change, as named in stored entries and on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    Put,
    Patch,
    Delete,
}

impl OpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Put => "put",
            OpKind::Patch => "patch",
            OpKind::Delete => "delete",
        }
    }

    pub fn parse(name: &str) -> Option<OpKind> {
        match name {
            "put" => Some(OpKind::Put),
            "patch" => Some(OpKind::Patch),
            "delete" => Some(OpKind::Delete),
            _ => None,
        }
    }
}

/// What a change does: replace the document, shallow-merge fields into it, or delete it.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// The whole new document (an object).
    Put(Value),
    /// Fields to set (an object): `{ ...current, ...patch }`.
    Patch(Value),
    Delete,
}

/// A shallow merge `{ ...base, ...patch }`; `None` unless both are objects.
pub fn merge_fields(base: &Value, patch: &Value) -> Option<Value> {
    let mut merged = base.as_object()?.clone();
    merged.extend(patch.as_object()?.iter().map(|(k, v)| (k.clone(), v.clone())));
    Some(Value::Object(merged))
}

impl Payload {
    /// The payload of a stored or pushed change: an object `value` for a put, an object `patch`
    /// for a patch, neither for a delete. The one shape rule of entries, letters and mutations.
    pub fn from_parts(kind: OpKind, value: Option<&Value>, patch: Option<&Value>) -> Result<Payload, String> {
        match (kind, value, patch) {
            (OpKind::Put, Some(v), None) if v.is_object() => Ok(Payload::Put(v.clone())),
            (OpKind::Patch, None, Some(p)) if p.is_object() => Ok(Payload::Patch(p.clone())),
            (OpKind::Delete, None, None) => Ok(Payload::Delete),
            (OpKind::Put, ..) => Err("a put carries an object `value` and no `patch`".to_owned()),
            (OpKind::Patch, ..) => Err("a patch carries an object `patch` and no `value`".to_owned()),
            (OpKind::Delete, ..) => Err("a delete carries neither `value` nor `patch`".to_owned()),
        }
    }

    pub fn kind(&self) -> OpKind {
        match self {
            Payload::Put(_) => OpKind::Put,
            Payload::Patch(_) => OpKind::Patch,
            Payload::Delete => OpKind::Delete,
        }
    }

    /// The document after this change on top of `doc` (`None`: absent or deleted). A patch of
    /// an absent document leaves it absent.
    pub fn apply(&self, doc: Option<&Value>) -> Option<Value> {
        match self {
            Payload::Put(value) => Some(value.clone()),
            Payload::Patch(patch) => merge_fields(doc?, patch),
            Payload::Delete => None,
        }
    }

    /// The one change equivalent to `self` then `later` on the same document, if there is one.
    /// A patch after a delete has none: the server refuses it, and that refusal must be seen.
    pub fn then(&self, later: &Payload) -> Option<Payload> {
        match (self, later) {
            (_, Payload::Put(_) | Payload::Delete) => Some(later.clone()),
            (Payload::Put(value), Payload::Patch(patch)) => merge_fields(value, patch).map(Payload::Put),
            (Payload::Patch(first), Payload::Patch(second)) => merge_fields(first, second).map(Payload::Patch),
            (Payload::Delete, Payload::Patch(_)) => None,
        }
    }

    /// Adds `op` and `value` or `patch` to a stored or wire object.
    fn write(&self, out: &mut Map<String, Value>) {
        out.insert("op".into(), self.kind().as_str().into());
        match self {
            Payload::Put(value) => {
                out.insert("value".into(), value.clone());
            }
            Payload::Patch(patch) => {
                out.insert("patch".into(), patch.clone());
            }
            Payload::Delete => {}
        }
    }
}

/// One change of one document. `seq` is the outbox position (IndexedDB's auto-increment key,
/// assigned at commit): 0 until then.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    pub id: String,
    pub seq: u64,
    pub collection: String,
    pub key: Key,
    pub payload: Payload,
}

/// A time (ms since the epoch) as JSON: a whole number as an integer, as JavaScript writes it.
pub fn time_json(ms: f64) -> Value {
    if ms.fract() == 0.0 && ms.abs() < 9_007_199_254_740_992.0 {
        Value::from(ms as i64)
    } else {
        Value::from(ms)
    }
}

/// The versions store's key of a document: `collection + "\0" + JSON.stringify(key)`.
pub fn doc_id(collection: &str, key: &Key) -> String {
    let mut id = String::with_capacity(collection.len() + 16);
    id.push_str(collection);
    id.push('\0');
    id.push_str(&key.js_json());
    id
}

impl Op {
    pub fn doc_id(&self) -> String {
        doc_id(&self.collection, &self.key)
    }

    pub fn same_document(&self, other: &Op) -> bool {
        self.collection == other.collection && self.key == other.key
    }

    fn write(&self, out: &mut Map<String, Value>) {
        out.insert("id".into(), self.id.clone().into());
        out.insert("collection".into(), self.collection.clone().into());
        out.insert("key".into(), self.key.to_json());
        self.payload.write(out);
    }
}

/// Why the last attempt to push an op failed.
#[derive(Debug, Clone, PartialEq)]
pub struct LastError {
    pub code: SyncErrorCode,
    pub message: String,
    pub status: Option<u16>,
    /// The code the server sent, when Wharf does not know it (`code` is then `REJECTED` or
    /// `HTTP`).
    pub server_code: Option<String>,
}

impl LastError {
    pub fn new(code: SyncErrorCode, message: impl Into<String>, status: Option<u16>) -> LastError {
        LastError { code, message: message.into(), status, server_code: None }
    }

    /// An error a server named with `code`: an op it refused (`refused`) or an error answer.
    pub fn from_server(code: &str, message: impl Into<String>, status: Option<u16>, refused: bool) -> LastError {
        let known = SyncErrorCode::parse(code);
        let fallback = if refused { SyncErrorCode::Rejected } else { SyncErrorCode::Http };
        LastError {
            code: known.unwrap_or(fallback),
            message: message.into(),
            status,
            server_code: known.is_none().then(|| code.to_owned()),
        }
    }

    /// Whether the failure was the whole request's (network, timeout, an HTTP error status, an
    /// unreadable answer), as opposed to the server refusing this one operation in a 200.
    pub fn is_request_level(&self) -> bool {
        self.status.is_some()
            || matches!(self.code, SyncErrorCode::Network | SyncErrorCode::Timeout | SyncErrorCode::Protocol)
    }

    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("code".into(), self.code.as_str().into());
        out.insert("message".into(), self.message.clone().into());
        if let Some(status) = self.status {
            out.insert("status".into(), status.into());
        }
        if let Some(code) = &self.server_code {
            out.insert("serverCode".into(), code.clone().into());
        }
        Value::Object(out)
    }

    /// Reads a stored error; a code this version does not know (written by another version or
    /// by a server) is kept as `server_code`.
    pub fn from_json(v: &Value) -> Result<LastError, String> {
        let m = read::obj(v, "lastError")?;
        let status =
            read::opt_uint(m, "status")?.map(|s| u16::try_from(s).map_err(|_| read::bad("status"))).transpose()?;
        let mut error =
            LastError::from_server(&read::string(m, "code")?, read::string(m, "message")?, status, status.is_none());
        if let Some(code) = read::opt_string(m, "serverCode")? {
            error.server_code = Some(code);
        }
        Ok(error)
    }
}

impl serde::Serialize for LastError {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

/// The server's side of a conflict: its version, value (`None` if deleted) and stamp, and the
/// shape of the value when known (migrated when the conflict is resolved, `shapes.rs`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConflictInfo {
    pub version: u64,
    pub value: Option<Value>,
    pub hlc: Option<String>,
    pub shape: Option<u32>,
}

/// An op waiting in the outbox, with its retry schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    pub op: Op,
    pub created_at: f64,
    /// The local hybrid logical clock stamp of the write (`hlc.rs`, without the node suffix).
    pub hlc: Option<String>,
    pub attempts: u32,
    pub next_attempt_at: f64,
    pub last_error: Option<LastError>,
    /// Set when the server answered `conflict`: the entry is held (not sent again, and later
    /// entries on its document wait behind it) until the conflict is resolved.
    pub conflict: Option<ConflictInfo>,
    /// The server version the write is based on. Not stored by writes: the push fills it in from
    /// the versions store each time it reads the entry (0 when the client never saw the
    /// document), which is the base of every queued op on that document, since a pulled change
    /// never moves the base of a document with queued ops.
    pub base_version: Option<u64>,
    /// The id may already have reached the server under this payload: an unedited dead letter
    /// queued again keeps its id (so the server's ledger keeps deduplicating it) but starts with
    /// a clean schedule. Such an entry is never rewritten by coalescing nor absorbs later ops,
    /// and until the server answers it, it takes no part in conflicts (`conflict_tx.rs`).
    pub resent: bool,
    /// The `sync.user` that queued it (none: queued without one). Only that user's pushes send
    /// it; it keeps its user as a dead letter and as the resolution of its conflict.
    pub user: Option<String>,
}

impl OutboxEntry {
    /// A fresh write, due now.
    pub fn new(op: Op, now: f64, hlc: Option<String>) -> OutboxEntry {
        OutboxEntry {
            op,
            created_at: now,
            hlc,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            conflict: None,
            base_version: None,
            resent: false,
            user: None,
        }
    }

    /// Queued by `user` (a context without `sync.user` queues without one).
    pub fn by(mut self, user: Option<&str>) -> OutboxEntry {
        self.user = user.map(str::to_owned);
        self
    }

    /// Whether a push bound to `user` may send it: its own, or queued without a user.
    pub fn pushable_by(&self, user: Option<&str>) -> bool {
        self.user.is_none() || self.user.as_deref() == user
    }

    /// Whether this entry is part of its document's local side: it certainly never reached the
    /// server (never sent: its seq is above `sent_through`, the persisted mark of what pushes
    /// took, and it is not a retried dead letter), or the server answered it `conflict`. An
    /// entry that may have landed (sent and unanswered: a lost answer, a timeout, a tab that
    /// died mid-push) is not: until the server answers it, the record follows the server and no
    /// resolution may resend its content under a new id.
    pub fn in_record(&self, sent_through: u64) -> bool {
        self.conflict.is_some() || !self.sent(sent_through)
    }

    /// `in_record` for a pull of `user`: another user's entry also keeps its document's local
    /// side (this user's pull neither overwrites nor resolves it; that user's own pull will).
    pub fn in_record_for(&self, sent_through: u64, user: Option<&str>) -> bool {
        !self.pushable_by(user) || self.in_record(sent_through)
    }

    /// A push took it (or it is a retried dead letter): it may have reached the server.
    pub fn sent(&self, sent_through: u64) -> bool {
        self.resent || self.op.seq <= sent_through
    }

    /// The stored form, without `seq` (the outbox key).
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        self.op.write(&mut out);
        out.insert("createdAt".into(), time_json(self.created_at));
        out.insert("attempts".into(), self.attempts.into());
        out.insert("nextAttemptAt".into(), time_json(self.next_attempt_at));
        out.insert("lastError".into(), self.last_error.as_ref().map_or(Value::Null, LastError::to_json));
        if let Some(stamp) = &self.hlc {
            out.insert("hlc".into(), stamp.clone().into());
        }
        if let Some(conflict) = &self.conflict {
            let mut c = Map::new();
            c.insert("version".into(), conflict.version.into());
            c.insert("value".into(), conflict.value.clone().unwrap_or(Value::Null));
            if let Some(stamp) = &conflict.hlc {
                c.insert("hlc".into(), stamp.clone().into());
            }
            if let Some(shape) = conflict.shape {
                c.insert("shape".into(), shape.into());
            }
            out.insert("conflict".into(), Value::Object(c));
        }
        if let Some(base) = self.base_version {
            out.insert("baseVersion".into(), base.into());
        }
        if self.resent {
            out.insert("resent".into(), true.into());
        }
        write_user(&mut out, &self.user);
        Value::Object(out)
    }

    /// Reads a stored entry; `seq` is its outbox key (a `seq` field in `v`, as snapshots carry,
    /// is accepted too).
    pub fn from_json(v: &Value, seq: u64) -> Result<OutboxEntry, String> {
        let m = read::obj(v, "entry")?;
        let conflict = match read::some(m, "conflict") {
            None => None,
            Some(c) => {
                let c = read::obj(c, "conflict")?;
                Some(ConflictInfo {
                    version: read::uint(c, "version")?,
                    value: read::some(c, "value").cloned(),
                    hlc: read::opt_string(c, "hlc")?,
                    shape: read::opt_uint(c, "shape")?.and_then(|n| u32::try_from(n).ok()),
                })
            }
        };
        let seq = if seq == 0 { read::opt_uint(m, "seq")?.unwrap_or(0) } else { seq };
        Ok(OutboxEntry {
            op: read_op(m, seq)?,
            created_at: read::float(m, "createdAt")?,
            attempts: read::opt_uint(m, "attempts")?.unwrap_or(0).try_into().map_err(|_| read::bad("attempts"))?,
            next_attempt_at: read::opt_float(m, "nextAttemptAt")?.unwrap_or(0.0),
            last_error: read::some(m, "lastError").map(LastError::from_json).transpose()?,
            hlc: read::opt_string(m, "hlc")?,
            conflict,
            base_version: read::opt_uint(m, "baseVersion")?,
            resent: read::flag(m, "resent")?,
            user: read::opt_string(m, "user")?,
        })
    }

    /// The wire form of this entry pushed by `client_id` (a `mutations[]` item of docs/protocol.md)
    /// into `space`, its value in the collection's `shape` (its declared version).
    pub fn mutation_json(&self, client_id: &str, (space, shape): (Option<&str>, u32)) -> Value {
        let mut out = Map::new();
        self.op.write(&mut out);
        if let Some(space) = space {
            out.insert("space".into(), space.into());
        }
        out.insert("shape".into(), shape.into());
        out.insert("seq".into(), self.op.seq.into());
        if let Some(base) = self.base_version {
            out.insert("baseVersion".into(), base.into());
        }
        // Entries queued without a stamp (by an older version) are stamped with their creation
        // time, so every mutation names its writer.
        let stamp = self.hlc.clone().unwrap_or_else(|| super::hlc::Hlc::default().tick(self.created_at));
        out.insert("hlc".into(), super::hlc::with_node(&stamp, client_id).into());
        Value::Object(out)
    }
}

/// An op the server kept rejecting, parked with why and when. Keyed by op id; `seq` is the
/// outbox position it had (a retry queues it again at the end of the outbox).
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub op: Op,
    pub created_at: f64,
    pub attempts: u32,
    pub last_error: LastError,
    pub dead_at: f64,
    /// True once `deadLetters.edit` replaced the payload: a retry then also writes it locally.
    pub edited: bool,
    /// The `sync.user` that queued it; a retry queues it for that user again.
    pub user: Option<String>,
}

impl DeadLetter {
    /// An outbox entry that could not be read, kept as a dead letter with `reason`: what can be
    /// read of it names it, and the stored text is kept whole under `unreadable` for recovery. Its
    /// put has no key in its value, so a retry is refused by the server, never applied.
    pub fn unreadable(seq: u64, raw: &Value, reason: String, now: f64) -> DeadLetter {
        let m = raw.as_object();
        let text = |k: &str| m.and_then(|m| m.get(k)).and_then(Value::as_str).map(str::to_owned);
        let key = m.and_then(|m| m.get("key")).and_then(|k| Key::from_json(k).ok());
        let mut kept = Map::new();
        kept.insert("unreadable".into(), super::json_text::text(raw).into());
        DeadLetter {
            op: Op {
                id: text("id").unwrap_or_else(|| format!("unreadable-{seq}")),
                seq,
                collection: text("collection").unwrap_or_default(),
                key: key.unwrap_or(Key::Number(seq as f64)),
                payload: Payload::Put(Value::Object(kept)),
            },
            created_at: now,
            attempts: 0,
            last_error: LastError::new(SyncErrorCode::Storage, reason, None),
            dead_at: now,
            edited: false,
            user: text("user"),
        }
    }

    pub fn from_entry(entry: OutboxEntry, error: LastError, now: f64) -> DeadLetter {
        DeadLetter {
            op: entry.op,
            created_at: entry.created_at,
            attempts: entry.attempts,
            last_error: error,
            dead_at: now,
            edited: false,
            user: entry.user,
        }
    }

    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        self.op.write(&mut out);
        out.insert("seq".into(), self.op.seq.into());
        out.insert("createdAt".into(), time_json(self.created_at));
        out.insert("attempts".into(), self.attempts.into());
        out.insert("lastError".into(), self.last_error.to_json());
        out.insert("deadAt".into(), time_json(self.dead_at));
        out.insert("edited".into(), self.edited.into());
        write_user(&mut out, &self.user);
        Value::Object(out)
    }

    pub fn from_json(v: &Value) -> Result<DeadLetter, String> {
        let m = read::obj(v, "dead letter")?;
        Ok(DeadLetter {
            op: read_op(m, read::uint(m, "seq")?)?,
            created_at: read::float(m, "createdAt")?,
            attempts: read::uint(m, "attempts")?.try_into().map_err(|_| read::bad("attempts"))?,
            last_error: LastError::from_json(m.get("lastError").unwrap_or(&Value::Null))?,
            dead_at: read::float(m, "deadAt")?,
            edited: read::flag(m, "edited")?,
            user: read::opt_string(m, "user")?,
        })
    }
}

impl serde::Serialize for DeadLetter {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

/// The stored `user` of an entry or letter, when it has one.
fn write_user(out: &mut Map<String, Value>, user: &Option<String>) {
    if let Some(user) = user {
        out.insert("user".into(), user.clone().into());
    }
}

/// The op of a stored entry or letter.
fn read_op(m: &Obj, seq: u64) -> Result<Op, String> {
    let kind = m.get("op").and_then(Value::as_str).and_then(OpKind::parse).ok_or_else(|| read::bad("op"))?;
    Ok(Op {
        id: read::string(m, "id")?,
        seq,
        collection: read::string(m, "collection")?,
        key: read::key(m)?,
        payload: Payload::from_parts(kind, read::some(m, "value"), read::some(m, "patch"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn op(payload: Payload) -> Op {
        Op { id: "01A".into(), seq: 3, collection: "todos".into(), key: Key::Text("a".into()), payload }
    }

    #[test]
    fn apply_is_put_replace_patch_merge_delete_remove() {
        let doc = json!({"id": "a", "n": 1, "t": "x"});
        assert_eq!(Payload::Put(json!({"id": "a"})).apply(Some(&doc)), Some(json!({"id": "a"})));
        assert_eq!(Payload::Patch(json!({"n": 2})).apply(Some(&doc)), Some(json!({"id": "a", "n": 2, "t": "x"})));
        assert_eq!(Payload::Patch(json!({"n": 2})).apply(None), None, "a patch of nothing stays nothing");
        assert_eq!(Payload::Delete.apply(Some(&doc)), None);
        let proto = Payload::Patch(json!({"__proto__": {"x": 1}})).apply(Some(&doc)).unwrap();
        assert_eq!(proto["__proto__"], json!({"x": 1}), "a __proto__ field stays a plain field");
    }

    #[test]
    fn then_composes_like_applying_twice() {
        let doc = json!({"id": "a", "n": 1});
        let payloads = [
            Payload::Put(json!({"id": "a", "m": 1})),
            Payload::Patch(json!({"n": 2})),
            Payload::Patch(json!({"o": 3})),
            Payload::Delete,
        ];
        for first in &payloads {
            for second in &payloads {
                for start in [None, Some(&doc)] {
                    let twice = second.apply(first.apply(start).as_ref());
                    match first.then(second) {
                        Some(one) => assert_eq!(one.apply(start), twice, "{first:?} then {second:?}"),
                        None => assert!(matches!((first, second), (Payload::Delete, Payload::Patch(_)))),
                    }
                }
            }
        }
    }

    #[test]
    fn the_shape_rule_refuses_mismatched_payloads() {
        let obj = json!({});
        assert!(Payload::from_parts(OpKind::Put, Some(&obj), None).is_ok());
        assert!(Payload::from_parts(OpKind::Put, Some(&json!([1])), None).is_err());
        assert!(Payload::from_parts(OpKind::Put, None, None).is_err());
        assert!(Payload::from_parts(OpKind::Patch, None, Some(&obj)).is_ok());
        assert!(Payload::from_parts(OpKind::Patch, Some(&obj), Some(&obj)).is_err());
        assert!(Payload::from_parts(OpKind::Delete, None, None).is_ok());
        assert!(Payload::from_parts(OpKind::Delete, Some(&obj), None).is_err());
    }

    #[test]
    fn entries_round_trip_in_the_stored_form() {
        let mut entry = OutboxEntry::new(op(Payload::Patch(json!({"x": 1}))), 5.0, Some("0000000003e80000".into()));
        entry.attempts = 2;
        entry.last_error = Some(LastError::new(SyncErrorCode::Http, "boom", Some(503)));
        entry.conflict = Some(ConflictInfo { version: 4, value: None, hlc: Some("s".into()), shape: Some(2) });
        entry.base_version = Some(2);
        entry.resent = true;
        let entry = entry.by(Some("ada"));
        let stored = entry.to_json();
        assert_eq!(stored["user"], json!("ada"));
        assert!(!entry.pushable_by(Some("bob")) && !entry.pushable_by(None) && entry.pushable_by(Some("ada")));
        assert!(stored.get("seq").is_none(), "the seq is the outbox key, not a field");
        assert_eq!(stored["conflict"], json!({"version": 4, "value": null, "hlc": "s", "shape": 2}));
        assert_eq!(OutboxEntry::from_json(&stored, 3).unwrap(), entry);
        let written_by_place_write = json!({"id": "01A", "collection": "todos", "key": "a", "op": "delete",
            "createdAt": 5.0, "attempts": 0, "nextAttemptAt": 5.0, "lastError": null, "hlc": "h"});
        let read = OutboxEntry::from_json(&written_by_place_write, 9).unwrap();
        assert_eq!((read.op.seq, read.op.payload.clone(), read.resent), (9, Payload::Delete, false));
        assert!(read.user.is_none() && read.pushable_by(Some("bob")), "queued without a user: anyone's");
        let letter = DeadLetter::from_entry(entry, LastError::from_server("POISON", "no", Some(422), false), 7.0);
        assert_eq!((letter.last_error.code, letter.user.as_deref()), (SyncErrorCode::Poison, Some("ada")));
        assert_eq!(DeadLetter::from_json(&letter.to_json()).unwrap(), letter);
        assert_eq!(letter.to_json()["seq"], json!(3));
    }

    #[test]
    fn unknown_server_codes_are_kept_beside_a_known_one() {
        let refused = LastError::from_server("QUOTA", "over quota", None, true);
        assert_eq!((refused.code, refused.server_code.as_deref()), (SyncErrorCode::Rejected, Some("QUOTA")));
        let answer = LastError::from_server("TEAPOT", "no", Some(418), false);
        assert_eq!(answer.code, SyncErrorCode::Http);
        assert_eq!(LastError::from_json(&answer.to_json()).unwrap(), answer);
        assert_eq!(answer.to_json()["serverCode"], json!("TEAPOT"));
        let old = LastError::from_json(&json!({"code": "FAULT", "message": "m", "status": 503})).unwrap();
        assert_eq!((old.code, old.server_code.as_deref()), (SyncErrorCode::Http, Some("FAULT")));
    }

    #[test]
    fn bad_stored_forms_name_the_field() {
        let good = OutboxEntry::new(op(Payload::Delete), 1.0, None).to_json();
        for (field, value, needle) in [
            ("op", json!("upsert"), "op"),
            ("key", json!(null), "key"),
            ("attempts", json!(-1), "attempts"),
            ("value", json!({"id": "a"}), "delete carries"),
            ("createdAt", json!("x"), "createdAt"),
        ] {
            let mut bad = good.clone();
            bad[field] = value;
            let error = OutboxEntry::from_json(&bad, 1).unwrap_err();
            assert!(error.contains(needle), "{field}: {error}");
        }
        assert!(DeadLetter::from_json(&json!([1])).is_err());
    }

    #[test]
    fn the_mutation_form_names_its_writer_and_base() {
        let mut entry = OutboxEntry::new(op(Payload::Put(json!({"id": "a"}))), 1_000.0, None);
        entry.base_version = Some(4);
        let m = entry.mutation_json("client-1", (None, 2));
        assert_eq!(m["seq"], json!(3));
        assert_eq!(m["shape"], json!(2));
        assert_eq!(m["baseVersion"], json!(4));
        assert_eq!(m["value"], json!({"id": "a"}));
        assert!(m["hlc"].as_str().unwrap().ends_with("-client-1"), "{m}");
        let wire: crate::core::protocol::Mutation = serde_json::from_value(m).unwrap();
        assert_eq!(wire.check().unwrap(), entry.op, "what the server reads is the same op");
        assert_eq!(wire.shape, Some(2));
    }

    #[test]
    fn doc_ids_follow_javascripts_json_of_the_key() {
        assert_eq!(doc_id("todos", &Key::Text("a\"b".into())), "todos\0\"a\\\"b\"");
        assert_eq!(doc_id("t", &Key::Number(7.0)), "t\x007");
        assert_eq!(doc_id("t", &Key::Number(1e21)), "t\x001e+21");
        assert_eq!(doc_id("t", &Key::Number(1e20)), "t\x00100000000000000000000");
        assert_eq!(doc_id("t", &Key::Number(0.000001)), "t\x000.000001");
        assert_eq!(doc_id("t", &Key::Number(1.5e-7)), "t\x001.5e-7");
        assert_eq!(doc_id("t", &Key::Number(-0.5)), "t\x00-0.5");
    }
}
