//! The wire protocol between the client and a sync server, version 2 (docs/protocol.md).
//!
//! These types are the single definition of the wire format: the browser engine and the
//! reference server (`server/`) both use them, so client and server cannot disagree on it.
//! Every message carries `protocol`; a peer answers a version it does not speak with an error.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::document::Key;
use super::op::{Op, OpKind, Payload};

/// The protocol version this build speaks. Version 2 added shared spaces (`Mutation::space`,
/// `Change::space` and the pull's `spaces`); a version 1 message is a version 2 message that names
/// no space, so both are read, and answers keep the asker's version.
pub const PROTOCOL_VERSION: u32 = 2;
/// The oldest protocol version this build still reads.
pub const OLDEST_PROTOCOL_VERSION: u32 = 1;
/// Longest name of a shared space, in bytes.
pub const MAX_SPACE_BYTES: usize = 128;
/// Longest accepted mutation id and client id, in bytes (ULIDs are 26).
pub const MAX_ID_BYTES: usize = 64;
/// The highest `shape` (a collection's declared `version`) a message may carry.
pub const MAX_SHAPE: u32 = super::schema::MAX_VERSION;

/// `POST {url}/push` body: queued local changes, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PushRequest {
    pub protocol: u32,
    pub client_id: String,
    pub mutations: Vec<Mutation>,
}

/// One queued change, as sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Mutation {
    /// The outbox entry's op id; the server applies each id at most once.
    pub id: String,
    /// The outbox `seq`: the client's commit order.
    pub seq: u64,
    pub collection: String,
    pub key: Key,
    pub op: OpKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<Value>,
    /// The server version the client last saw for this key; `None` writes blindly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_version: Option<u64>,
    /// Hybrid logical clock stamp of the local write, opaque to the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hlc: Option<String>,
    /// The shared space written into (protocol 2); absent: the caller's own space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space: Option<String>,
    /// The writer's version of the collection (`version` in its schema): the shape of `value`
    /// and `patch`. Optional and additive in protocol 2; absent: unknown.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "shape")]
    pub shape: Option<u32>,
}

/// The outcome of one mutation, in request order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase", deny_unknown_fields)]
pub enum MutationResult {
    /// Applied now; `version` is the record's new server version.
    Applied { id: String, version: u64 },
    /// Applied by an earlier request (a retry): still an acknowledgement.
    Duplicate { id: String, version: u64 },
    /// Refused. `permanent: true` means retrying the same mutation can never succeed.
    Rejected { id: String, code: String, message: String, permanent: bool },
    /// `baseVersion` is stale (see [`is_stale`]): here is the server's version, value (null if
    /// deleted) and the clock stamp of its last write, if it has one.
    Conflict {
        id: String,
        version: u64,
        value: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hlc: Option<String>,
        /// The shape `value` was written in, when the server knows it.
        #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "shape")]
        shape: Option<u32>,
    },
}

impl MutationResult {
    pub fn id(&self) -> &str {
        match self {
            MutationResult::Applied { id, .. }
            | MutationResult::Duplicate { id, .. }
            | MutationResult::Rejected { id, .. }
            | MutationResult::Conflict { id, .. } => id,
        }
    }

    /// Whether the client may drop the mutation from its outbox.
    pub fn is_acknowledged(&self) -> bool {
        matches!(self, MutationResult::Applied { .. } | MutationResult::Duplicate { .. })
    }
}

/// `POST {url}/push` response (HTTP 200): one result per mutation, in request order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PushResponse {
    pub protocol: u32,
    pub results: Vec<MutationResult>,
}

/// Body of every non-200 response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ErrorResponse {
    pub protocol: u32,
    pub code: String,
    pub message: String,
}

/// Default number of changes in one pull page.
pub const DEFAULT_PULL_LIMIT: usize = 500;
/// Largest accepted `limit` of a pull.
pub const MAX_PULL_LIMIT: usize = 1000;

/// One record's latest state, as pulled: the server's current value of `collection`/`key`.
/// Intermediate states are not replayed: a record changed three times since the cursor appears
/// once, with its latest version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Change {
    pub collection: String,
    pub key: Key,
    /// The document, or `null` when the record was deleted (a tombstone). Always present on
    /// the wire: a missing `value` is an error, not a deletion.
    #[serde(deserialize_with = "present_or_null")]
    pub value: Option<Value>,
    /// The record's server version (what a later mutation sends as `baseVersion`).
    pub version: u64,
    /// The hybrid logical clock stamp of the mutation that produced this state, for
    /// last-writer-wins on clients; absent when the writer sent none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hlc: Option<String>,
    /// The shared space the record lives in (protocol 2); absent: the caller's own space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space: Option<String>,
    /// The shape `value` was written in (the writer's `Mutation::shape`), when the server knows
    /// it; absent: unknown, read as the reader's own version.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "shape")]
    pub shape: Option<u32>,
}

/// Whether `name` may name a shared space: 1 to [`MAX_SPACE_BYTES`] bytes of ASCII letters,
/// digits and `-_.:` (a space name travels in a query string and a token, unescaped).
pub fn is_space_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_SPACE_BYTES
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Whether this build reads messages of protocol `version`.
pub fn speaks(version: u64) -> bool {
    (u64::from(OLDEST_PROTOCOL_VERSION)..=u64::from(PROTOCOL_VERSION)).contains(&version)
}

/// `GET {url}/pull` response (HTTP 200): the changes after the request's cursor, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PullResponse {
    pub protocol: u32,
    pub changes: Vec<Change>,
    /// Opaque to clients: send it back as `?cursor=` to continue after these changes.
    pub cursor: String,
    /// More changes are waiting: pull again with `cursor` right away.
    pub has_more: bool,
}

/// A text message of the live channel (`GET {url}/live`, a WebSocket), tagged by `type`.
/// (serde ignores `deny_unknown_fields` for the field-less `ping` and `pong`: extra fields on
/// them are tolerated.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum LiveMessage {
    /// Server → client: changes up to `cursor` exist; pull if yours is older. A hint only: the
    /// pull is what delivers changes, so a lost or repeated poke costs nothing but latency.
    Poke {
        cursor: String,
    },
    /// Heartbeat, both ways; answered by `pong`.
    Ping,
    Pong,
}

/// `value` of a [`Change`]: required, `null` allowed (serde would default a missing `Option`).
fn present_or_null<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Option::<Value>::deserialize(deserializer)
}

/// A `shape`: a whole number from 1 to [`MAX_SHAPE`] (an error naming the field otherwise).
fn shape<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    if value.is_null() {
        return Ok(None);
    }
    match value.as_u64().and_then(|n| u32::try_from(n).ok()).filter(|n| (1..=MAX_SHAPE).contains(n)) {
        Some(shape) => Ok(Some(shape)),
        None => {
            Err(serde::de::Error::custom(format!("shape must be a whole number from 1 to {MAX_SHAPE}, not {value}")))
        }
    }
}

/// The last write of a stored record: which client made it, and the `seq` of its mutation when
/// the server recorded one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LastWrite<'a> {
    pub writer: Option<&'a str>,
    pub seq: Option<u64>,
}

/// Whether mutation `seq` of `client_id`, based on `base_version`, conflicts with the record's
/// current state (`current_version`, 0 when the record never existed, last written by `last`).
///
/// A client's own writes never conflict with its later ones: a client does not learn the version
/// each of its pushes produced (that would cost a write per acknowledged op), so its next op on a
/// document may still carry the older base. Only a version written by another client, which this
/// client has not seen, makes the base stale, or one the same client wrote with a *later* op: the
/// mutation is then an old request arriving late (the client timed out, moved on and wrote
/// again), and applying it would put the client's oldest write over its newest. A base ahead of
/// the server (a reset server) is stale too.
pub fn is_stale(base_version: u64, current_version: u64, last: LastWrite<'_>, client_id: &str, seq: u64) -> bool {
    match base_version.cmp(&current_version) {
        std::cmp::Ordering::Equal => false,
        std::cmp::Ordering::Less => last.writer != Some(client_id) || last.seq.is_some_and(|newer| seq < newer),
        std::cmp::Ordering::Greater => true,
    }
}

impl Mutation {
    /// Checks the shape rules the server enforces per mutation (a failure is a permanent
    /// rejection) and gives the op it carries.
    pub fn check(&self) -> Result<Op, String> {
        if self.id.is_empty() || self.id.len() > MAX_ID_BYTES {
            return Err(format!("mutation id must be 1 to {MAX_ID_BYTES} bytes"));
        }
        if self.collection.is_empty() {
            return Err("collection cannot be empty".into());
        }
        Ok(Op {
            id: self.id.clone(),
            seq: self.seq,
            collection: self.collection.clone(),
            key: self.key.clone(),
            payload: Payload::from_parts(self.op, self.value.as_ref(), self.patch.as_ref())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mutation(op: &str, payload: Option<(&str, Value)>) -> Value {
        let mut m = json!({"id": "01ARYZ6S41TSV4RRFFQ69G5FAV", "seq": 1, "collection": "todos", "key": "a", "op": op});
        if let Some((field, value)) = payload {
            m[field] = value;
        }
        m
    }

    #[test]
    fn push_request_round_trips_in_camel_case() {
        let body = json!({"protocol": 1, "clientId": "c1", "mutations": [
            mutation("put", Some(("value", json!({"id": "a"})))),
            {"id": "m2", "seq": 2, "collection": "todos", "key": 7, "op": "delete", "baseVersion": 3, "hlc": "0001:0:c1"}
        ]});
        let request: PushRequest = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(request.mutations[1].key, Key::Number(7.0));
        assert_eq!(request.mutations[1].base_version, Some(3));
        assert_eq!(serde_json::to_value(&request).unwrap(), body);
    }

    #[test]
    fn results_are_tagged_by_status() {
        let results = vec![
            MutationResult::Applied { id: "a".into(), version: 1 },
            MutationResult::Duplicate { id: "b".into(), version: 1 },
            MutationResult::Rejected { id: "c".into(), code: "INVALID".into(), message: "no".into(), permanent: true },
            MutationResult::Conflict { id: "d".into(), version: 4, value: None, hlc: None, shape: None },
        ];
        let text = serde_json::to_value(PushResponse { protocol: PROTOCOL_VERSION, results: results.clone() }).unwrap();
        assert_eq!(text["results"][0], json!({"status": "applied", "id": "a", "version": 1}));
        assert_eq!(text["results"][3], json!({"status": "conflict", "id": "d", "version": 4, "value": null}));
        let back: PushResponse = serde_json::from_value(text).unwrap();
        assert_eq!(back.results, results);
        assert!(back.results[0].is_acknowledged() && back.results[1].is_acknowledged());
        assert!(!back.results[2].is_acknowledged() && !back.results[3].is_acknowledged());
        assert_eq!(back.results[2].id(), "c");
    }

    #[test]
    fn hostile_bodies_are_errors_not_panics() {
        for bad in [
            json!({"protocol": 1, "clientId": "c", "mutations": [mutation("upsert", None)]}),
            json!({"protocol": 1, "clientId": "c", "mutations": "nope"}),
            json!({"protocol": "1", "clientId": "c", "mutations": []}),
            json!({"protocol": 1, "clientId": "c", "mutations": [], "extra": true}),
            json!({"protocol": 1, "mutations": []}),
        ] {
            assert!(serde_json::from_value::<PushRequest>(bad.clone()).is_err(), "{bad}");
        }
        assert!(serde_json::from_value::<PushResponse>(
            json!({"protocol": 1, "results": [{"status": "maybe", "id": "x"}]})
        )
        .is_err());
    }

    #[test]
    fn pull_response_round_trips_with_tombstones_as_null() {
        let body = json!({"protocol": 1, "changes": [
            {"collection": "todos", "key": "a", "value": {"id": "a", "done": true}, "version": 3, "hlc": "0001:0:c1"},
            {"collection": "todos", "key": 7, "value": null, "version": 2},
        ], "cursor": "42", "hasMore": true});
        let response: PullResponse = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(
            response.changes[1],
            Change {
                collection: "todos".into(),
                key: Key::Number(7.0),
                value: None,
                version: 2,
                hlc: None,
                space: None,
                shape: None
            }
        );
        assert_eq!(response.changes[0].hlc.as_deref(), Some("0001:0:c1"));
        assert!(response.has_more);
        assert_eq!(serde_json::to_value(&response).unwrap(), body, "value stays present as null");
        let empty =
            PullResponse { protocol: PROTOCOL_VERSION, changes: vec![], cursor: String::new(), has_more: false };
        assert_eq!(
            serde_json::to_value(&empty).unwrap(),
            json!({"protocol": 2, "changes": [], "cursor": "", "hasMore": false})
        );
    }

    #[test]
    fn hostile_pull_bodies_are_errors_not_panics() {
        let change = json!({"collection": "t", "key": "a", "value": null, "version": 1});
        let page = |changes: Value| json!({"protocol": 1, "changes": changes, "cursor": "1", "hasMore": false});
        assert!(serde_json::from_value::<PullResponse>(page(json!([change]))).is_ok());
        let mut bad_changes = Vec::new();
        for (field, value) in [
            ("version", json!(-1)),
            ("version", json!("1")),
            ("version", json!(1.5)),
            ("key", json!(null)),
            ("key", json!({"a": 1})),
            ("collection", json!(3)),
            ("hlc", json!(5)),
            ("extra", json!(true)),
        ] {
            let mut c = change.clone();
            c[field] = value;
            bad_changes.push(c);
        }
        let mut no_value = change.clone();
        no_value.as_object_mut().unwrap().remove("value");
        bad_changes.push(no_value);
        for bad in bad_changes {
            assert!(serde_json::from_value::<Change>(bad.clone()).is_err(), "{bad}");
            assert!(serde_json::from_value::<PullResponse>(page(json!([bad.clone()]))).is_err(), "{bad}");
        }
        for bad in [
            json!({"protocol": 1, "changes": [], "cursor": 1, "hasMore": false}),
            json!({"protocol": 1, "changes": [], "cursor": "1"}),
            json!({"protocol": 1, "changes": {}, "cursor": "1", "hasMore": false}),
            json!({"protocol": 1, "changes": [], "cursor": "1", "hasMore": "no"}),
            json!({"protocol": 1, "changes": [], "cursor": "1", "hasMore": false, "more": 1}),
            json!(null),
            json!([]),
        ] {
            assert!(serde_json::from_value::<PullResponse>(bad.clone()).is_err(), "{bad}");
        }
        for text in ["", "{", "[1,", "{\"protocol\": 1e999}", &"[".repeat(10_000)] {
            assert!(serde_json::from_str::<PullResponse>(text).is_err());
            assert!(serde_json::from_str::<LiveMessage>(text).is_err());
        }
    }

    #[test]
    fn live_messages_are_tagged_by_type() {
        let poke = LiveMessage::Poke { cursor: "17".into() };
        assert_eq!(serde_json::to_value(&poke).unwrap(), json!({"type": "poke", "cursor": "17"}));
        assert_eq!(serde_json::to_string(&LiveMessage::Ping).unwrap(), r#"{"type":"ping"}"#);
        assert_eq!(serde_json::from_str::<LiveMessage>(r#"{"type":"pong"}"#).unwrap(), LiveMessage::Pong);
        assert_eq!(
            serde_json::from_value::<LiveMessage>(json!({"type": "poke", "cursor": "3"})).unwrap(),
            LiveMessage::Poke { cursor: "3".into() }
        );
        for bad in [json!({"type": "poke"}), json!({"type": "shout"}), json!({"cursor": "1"})] {
            assert!(serde_json::from_value::<LiveMessage>(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_versions_written_by_other_clients_or_by_later_ops_make_a_base_stale() {
        let by = |writer, seq| LastWrite { writer: Some(writer), seq };
        assert!(!is_stale(3, 3, by("b", None), "a", 1));
        assert!(!is_stale(0, 0, LastWrite::default(), "a", 1), "creating a document nobody has");
        assert!(is_stale(0, 1, by("b", None), "a", 1), "creating a document another client created");
        assert!(!is_stale(1, 4, by("a", None), "a", 9), "versions 2..4 are this client's own pushes");
        assert!(!is_stale(1, 4, by("a", Some(8)), "a", 9), "its own earlier ops");
        assert!(is_stale(1, 4, by("a", Some(12)), "a", 9), "a late request: version 4 is a later op of its own");
        assert!(!is_stale(4, 4, by("a", Some(12)), "a", 9), "on the current version nothing is overwritten unseen");
        assert!(is_stale(1, 4, by("b", Some(1)), "a", 9));
        assert!(is_stale(1, 4, LastWrite::default(), "a", 9), "a writer the server does not know is someone else");
        assert!(is_stale(5, 4, by("a", None), "a", 9), "a base the server never issued");
    }

    #[test]
    fn mutation_shape_rules() {
        let ok = |v: Value| serde_json::from_value::<Mutation>(v).unwrap().check();
        assert!(ok(mutation("put", Some(("value", json!({"id": "a"}))))).is_ok());
        assert!(ok(mutation("patch", Some(("patch", json!({"x": 1}))))).is_ok());
        assert!(ok(mutation("delete", None)).is_ok());
        assert!(ok(mutation("put", None)).is_err());
        assert!(ok(mutation("put", Some(("value", json!([1]))))).is_err());
        assert!(ok(mutation("delete", Some(("value", json!({}))))).is_err());
        let mut long = mutation("delete", None);
        long["id"] = json!("x".repeat(MAX_ID_BYTES + 1));
        assert!(ok(long).is_err());
    }
}
