//! Readers of the server's answers (push results, pull changes, error bodies), by hand for the
//! reasons `read.rs` gives.

use serde_json::Value;

use super::protocol::{Change, MutationResult, PushResponse, MAX_SHAPE};
use super::read::{array, bad, boolean, key, obj, opt_string, opt_uint, parse, some, string, uint, Obj};

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
            shape: shape(m)?,
        },
        _ => return Err(bad("status")),
    })
}

pub fn push_response(body: &str) -> Result<PushResponse, String> {
    let v = parse(body)?;
    let m = obj(&v, "response")?;
    Ok(PushResponse {
        // Absent: a transport's answer, which may leave the version out.
        protocol: match m.contains_key("protocol") {
            true => u32::try_from(uint(m, "protocol")?).map_err(|_| bad("protocol"))?,
            false => 1,
        },
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
        space: opt_string(m, "space")?,
        shape: shape(m)?,
    })
}

/// The optional `shape` of a change or a conflict: 1 to `MAX_SHAPE` when present.
fn shape(m: &Obj) -> Result<Option<u32>, String> {
    let valid = |n: u64| u32::try_from(n).ok().filter(|n| (1..=MAX_SHAPE).contains(n)).ok_or_else(|| bad("shape"));
    opt_uint(m, "shape")?.map(valid).transpose()
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

    #[test]
    fn the_readers_agree_with_the_serde_forms() {
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
                    shape: Some(2),
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
                            Just("op".to_owned()),
                            Just("key".to_owned()),
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
            let _ = crate::core::op::OutboxEntry::from_json(&value, 1);
            let _ = crate::core::op::DeadLetter::from_json(&value);
            let _ = array(&value, "x", change);
        }
    }
}
