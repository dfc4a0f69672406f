//! Hand-written readers for the JSON the push engine reads (outbox windows, dead letters, push
//! answers). They replace `#[derive(Deserialize)]` + `serde_json::from_str::<T>` in the wasm build:
//! every derived type costs a monomorphized `serde_json::Deserializer` state machine, and serde's
//! error path (`invalid_type(Unexpected::Float)`) drags in core's float formatting.

use serde_json::{Map, Value};

use super::document::Key;
use super::outbox::{ConflictInfo, DeadLetter, LastError, OpKind, OutboxEntry};
use super::protocol::{Change, MutationResult, PushResponse};

type Obj = Map<String, Value>;

#[inline(never)]
fn bad(field: &str) -> String {
    let mut s = String::from("missing or invalid field ");
    s.push_str(field);
    s
}

pub fn parse(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|_| String::from("invalid JSON"))
}

pub fn obj<'a>(v: &'a Value, what: &str) -> Result<&'a Obj, String> {
    v.as_object().ok_or_else(|| bad(what))
}

pub fn string(m: &Obj, k: &str) -> Result<String, String> {
    m.get(k).and_then(Value::as_str).map(str::to_owned).ok_or_else(|| bad(k))
}

pub fn uint(m: &Obj, k: &str) -> Result<u64, String> {
    m.get(k).and_then(Value::as_u64).ok_or_else(|| bad(k))
}

fn float(m: &Obj, k: &str) -> Result<f64, String> {
    m.get(k).and_then(Value::as_f64).ok_or_else(|| bad(k))
}

fn boolean(m: &Obj, k: &str) -> Result<bool, String> {
    m.get(k).and_then(Value::as_bool).ok_or_else(|| bad(k))
}

/// `null` and absent are `None`, as serde's `Option` does.
/// The field `k`, unless it is missing or null.
pub fn some<'a>(m: &'a Obj, k: &str) -> Option<&'a Value> {
    m.get(k).filter(|v| !v.is_null())
}

fn opt_string(m: &Obj, k: &str) -> Result<Option<String>, String> {
    some(m, k).map(|v| v.as_str().map(str::to_owned).ok_or_else(|| bad(k))).transpose()
}

fn opt_uint(m: &Obj, k: &str) -> Result<Option<u64>, String> {
    some(m, k).map(|v| v.as_u64().ok_or_else(|| bad(k))).transpose()
}

fn key(m: &Obj) -> Result<Key, String> {
    match m.get("key") {
        Some(Value::String(s)) => Ok(Key::Text(s.clone())),
        Some(Value::Number(n)) => n.as_f64().map(Key::Number).ok_or_else(|| bad("key")),
        _ => Err(bad("key")),
    }
}

fn op(m: &Obj) -> Result<OpKind, String> {
    match m.get("op").and_then(Value::as_str) {
        Some("put") => Ok(OpKind::Put),
        Some("patch") => Ok(OpKind::Patch),
        Some("delete") => Ok(OpKind::Delete),
        _ => Err(bad("op")),
    }
}

fn last_error(v: &Value) -> Result<LastError, String> {
    let m = obj(v, "lastError")?;
    let status = opt_uint(m, "status")?.map(|s| u16::try_from(s).map_err(|_| bad("status"))).transpose()?;
    Ok(LastError { code: string(m, "code")?, message: string(m, "message")?, status })
}

pub fn outbox_entry(v: &Value) -> Result<OutboxEntry, String> {
    let m = obj(v, "entry")?;
    let conflict = match some(m, "conflict") {
        None => None,
        Some(c) => {
            let c = obj(c, "conflict")?;
            Some(ConflictInfo {
                version: uint(c, "version")?,
                value: some(c, "value").cloned(),
                hlc: opt_string(c, "hlc")?,
            })
        }
    };
    Ok(OutboxEntry {
        id: string(m, "id")?,
        seq: opt_uint(m, "seq")?,
        collection: string(m, "collection")?,
        key: key(m)?,
        op: op(m)?,
        value: some(m, "value").cloned(),
        patch: some(m, "patch").cloned(),
        created_at: float(m, "createdAt")?,
        attempts: u32::try_from(uint(m, "attempts")?).map_err(|_| bad("attempts"))?,
        next_attempt_at: float(m, "nextAttemptAt")?,
        hlc: opt_string(m, "hlc")?,
        base_version: opt_uint(m, "baseVersion")?,
        last_error: some(m, "lastError").map(last_error).transpose()?,
        conflict,
        resent: match some(m, "resent") {
            None => false,
            Some(_) => boolean(m, "resent")?,
        },
    })
}

pub fn dead_letter(v: &Value) -> Result<DeadLetter, String> {
    let m = obj(v, "dead letter")?;
    Ok(DeadLetter {
        id: string(m, "id")?,
        seq: uint(m, "seq")?,
        collection: string(m, "collection")?,
        key: key(m)?,
        op: op(m)?,
        value: some(m, "value").cloned(),
        patch: some(m, "patch").cloned(),
        created_at: float(m, "createdAt")?,
        attempts: u32::try_from(uint(m, "attempts")?).map_err(|_| bad("attempts"))?,
        last_error: last_error(m.get("lastError").unwrap_or(&Value::Null))?,
        dead_at: float(m, "deadAt")?,
        edited: match some(m, "edited") {
            None => false,
            Some(_) => boolean(m, "edited")?,
        },
    })
}

pub fn array<T>(v: &Value, what: &str, item: fn(&Value) -> Result<T, String>) -> Result<Vec<T>, String> {
    v.as_array().ok_or_else(|| bad(what))?.iter().map(item).collect()
}

fn mutation_result(v: &Value) -> Result<MutationResult, String> {
    let m = obj(v, "result")?;
    let id = string(m, "id")?;
    Ok(match m.get("status").and_then(Value::as_str) {
        Some("applied") => MutationResult::Applied { id, version: uint(m, "version")? },
        Some("duplicate") => MutationResult::Duplicate { id, version: uint(m, "version")? },
        Some("rejected") => MutationResult::Rejected {
            id,
            code: string(m, "code")?,
            message: string(m, "message")?,
            permanent: boolean(m, "permanent")?,
        },
        Some("conflict") => MutationResult::Conflict {
            id,
            version: uint(m, "version")?,
            value: some(m, "value").cloned(),
            hlc: opt_string(m, "hlc")?,
        },
        _ => return Err(bad("status")),
    })
}

pub fn push_response(body: &str) -> Result<PushResponse, String> {
    let v = parse(body)?;
    let m = obj(&v, "response")?;
    Ok(PushResponse {
        protocol: u32::try_from(uint(m, "protocol")?).map_err(|_| bad("protocol"))?,
        results: array(m.get("results").unwrap_or(&Value::Null), "results", mutation_result)?,
    })
}

/// One change of a pull page; `value` null is a deletion, and must be present.
pub fn change(v: &Value) -> Result<Change, String> {
    let m = obj(v, "change")?;
    let hlc = opt_string(m, "hlc")?;
    Ok(Change {
        collection: string(m, "collection")?,
        key: key(m)?,
        // Null is a deletion; a value that is not a document is kept here and refused by `storable`.
        value: match m.get("value") {
            None => return Err(bad("value")),
            Some(Value::Null) => None,
            Some(value) => Some(value.clone()),
        },
        version: uint(m, "version")?,
        hlc,
    })
}

/// `(code, message)` of a Wharf error body.
pub fn error_response(body: &str) -> Option<(String, String)> {
    let v = parse(body).ok()?;
    let m = v.as_object()?;
    uint(m, "protocol").ok()?;
    Some((string(m, "code").ok()?, string(m, "message").ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn entry(n: u64) -> OutboxEntry {
        OutboxEntry {
            id: format!("01ID{n}"),
            seq: Some(n),
            collection: "todos".into(),
            key: if n % 2 == 0 { Key::Number(n as f64) } else { Key::Text(format!("k{n}")) },
            op: OpKind::Put,
            value: Some(json!({"id": n, "title": "x"})),
            patch: None,
            created_at: 1.5,
            attempts: 2,
            next_attempt_at: 9.0,
            last_error: Some(LastError::new("HTTP", "boom", Some(503))),
            conflict: (n % 3 == 0).then_some(ConflictInfo {
                version: 4,
                value: None,
                hlc: Some("0000000003e80000-s".into()),
            }),
            hlc: (n % 2 == 1).then(|| format!("{n:016x}")),
            base_version: (n % 4 == 1).then_some(n),
            resent: n % 5 == 2,
        }
    }

    #[test]
    fn the_readers_agree_with_the_serde_forms() {
        for n in 0..6 {
            let original = entry(n);
            assert_eq!(outbox_entry(&serde_json::to_value(&original).unwrap()).unwrap(), original);
            let letter = DeadLetter::from_entry(original, LastError::new("POISON", "no", Some(422)), 3.0);
            assert_eq!(dead_letter(&serde_json::to_value(&letter).unwrap()).unwrap(), letter);
        }
        let response = PushResponse {
            protocol: 1,
            results: vec![
                MutationResult::Applied { id: "a".into(), version: 1 },
                MutationResult::Duplicate { id: "b".into(), version: 2 },
                MutationResult::Rejected { id: "c".into(), code: "X".into(), message: "m".into(), permanent: true },
                MutationResult::Conflict {
                    id: "d".into(),
                    version: 3,
                    value: Some(json!({"a": 1})),
                    hlc: Some("0000000003e80000-b".into()),
                },
            ],
        };
        assert_eq!(push_response(&serde_json::to_string(&response).unwrap()).unwrap(), response);
        let error = r#"{"protocol":1,"code":"POISON","message":"no"}"#;
        assert_eq!(error_response(error), Some(("POISON".to_owned(), "no".to_owned())));
    }

    #[test]
    fn bad_shapes_are_errors_that_name_the_field() {
        assert_eq!(push_response("{").unwrap_err(), "invalid JSON");
        assert!(push_response(r#"{"protocol":1}"#).unwrap_err().contains("results"));
        assert!(push_response(r#"{"protocol":1,"results":[{"id":"a","status":"maybe"}]}"#)
            .unwrap_err()
            .contains("status"));
        let mut value = serde_json::to_value(entry(1)).unwrap();
        value["attempts"] = json!(-1);
        assert!(outbox_entry(&value).unwrap_err().contains("attempts"));
        value["attempts"] = json!(1);
        value["op"] = json!("upsert");
        assert!(outbox_entry(&value).unwrap_err().contains("op"));
        assert_eq!(error_response(r#"{"code":"X","message":"m"}"#), None, "no protocol: not a Wharf error body");
    }

    fn hostile() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
            "[a-z]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec(
                    (
                        prop_oneof![
                            Just("id".to_owned()),
                            Just("status".to_owned()),
                            Just("results".to_owned()),
                            "[a-z]{1,4}"
                        ],
                        inner
                    ),
                    0..5
                )
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Whatever a server or a corrupted store hands over: an answer or an error, never a panic.
        #[test]
        fn hostile_input_never_panics(value in hostile()) {
            let text = value.to_string();
            let _ = push_response(&text);
            let _ = error_response(&text);
            let _ = outbox_entry(&value);
            let _ = dead_letter(&value);
            let _ = array(&value, "x", outbox_entry);
        }
    }
}
