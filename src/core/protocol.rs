//! The wire protocol between the client and a sync server, version 1 (docs/protocol.md).
//!
//! These types are the single definition of the wire format: the browser engine and the
//! reference server (`server/`) both use them, so client and server cannot disagree on it.
//! Every message carries `protocol`; a peer answers a version it does not speak with an error.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::document::Key;
use super::outbox::OpKind;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// Longest accepted mutation id and client id, in bytes (ULIDs are 26).
pub const MAX_ID_BYTES: usize = 64;

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
    /// `baseVersion` is behind the server: here is the server's version and value (null if deleted).
    Conflict { id: String, version: u64, value: Option<Value> },
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

impl Mutation {
    /// Checks the shape rules the server enforces per mutation (a failure is a permanent rejection).
    pub fn check(&self) -> Result<(), String> {
        if self.id.is_empty() || self.id.len() > MAX_ID_BYTES {
            return Err(format!("mutation id must be 1 to {MAX_ID_BYTES} bytes"));
        }
        if self.collection.is_empty() {
            return Err("collection cannot be empty".into());
        }
        if !self.op.payload_matches(self.value.as_ref(), self.patch.as_ref()) {
            return Err(format!(
                "a {} carries {}",
                self.op.as_str(),
                match self.op {
                    OpKind::Put => "an object `value` and no `patch`",
                    OpKind::Patch => "an object `patch` and no `value`",
                    OpKind::Delete => "neither `value` nor `patch`",
                }
            ));
        }
        Ok(())
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
            MutationResult::Conflict { id: "d".into(), version: 4, value: None },
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
