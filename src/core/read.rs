//! Field readers for JSON the core did not write itself in this run: stored entries and letters,
//! server answers, the host's read results. An error names the field; nothing panics on bad
//! input. Hand-written instead of `#[derive(Deserialize)]`: every derived type costs a
//! monomorphized `serde_json` deserializer in the WebAssembly, and serde's error path drags in
//! the float formatting.

use serde_json::{Map, Value};

use super::document::Key;

pub type Obj = Map<String, Value>;

#[inline(never)]
pub fn bad(field: &str) -> String {
    let mut s = String::from("missing or invalid field ");
    s.push_str(field);
    s
}

pub fn parse(text: &str) -> Result<Value, String> {
    json(text, false).map_err(|_| String::from("invalid JSON"))
}

/// `serde_json::from_str::<Value>`, with its nesting limit of 128 lifted when `deep` (bound the
/// depth first: past the limit, parsing recurses as deep as the text nests). Every JSON text the
/// core parses into a `Value` goes through here, so the WebAssembly holds one copy of the parser.
pub fn json(text: &str, deep: bool) -> serde_json::Result<Value> {
    let mut parser = serde_json::Deserializer::from_str(text);
    if deep {
        parser.disable_recursion_limit();
    }
    let value = serde::Deserialize::deserialize(&mut parser)?;
    parser.end()?;
    Ok(value)
}

/// How deep stored JSON may nest when it is read again past serde_json's limit of 128: a record
/// stored before documents were capped (`document::MAX_DOCUMENT_DEPTH`), or a conflict value
/// another client nested deeper, inside the few levels that wrap a read. Bounded, so a hostile
/// record cannot exhaust the stack.
pub const MAX_READ_DEPTH: u32 = 256;

/// JSON the storage answered (a round's results, a sealed value), nesting at most
/// `MAX_READ_DEPTH` levels.
pub fn stored(text: &str) -> serde_json::Result<Value> {
    json(text, false).or_else(|error| match super::document::nests_deeper_than(text, MAX_READ_DEPTH) {
        true => Err(error),
        false => json(text, true),
    })
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

pub fn float(m: &Obj, k: &str) -> Result<f64, String> {
    m.get(k).and_then(Value::as_f64).ok_or_else(|| bad(k))
}

pub fn boolean(m: &Obj, k: &str) -> Result<bool, String> {
    m.get(k).and_then(Value::as_bool).ok_or_else(|| bad(k))
}

/// The field `k`, unless it is missing or null.
pub fn some<'a>(m: &'a Obj, k: &str) -> Option<&'a Value> {
    m.get(k).filter(|v| !v.is_null())
}

pub fn opt_string(m: &Obj, k: &str) -> Result<Option<String>, String> {
    some(m, k).map(|v| v.as_str().map(str::to_owned).ok_or_else(|| bad(k))).transpose()
}

pub fn opt_uint(m: &Obj, k: &str) -> Result<Option<u64>, String> {
    some(m, k).map(|v| v.as_u64().ok_or_else(|| bad(k))).transpose()
}

pub fn opt_float(m: &Obj, k: &str) -> Result<Option<f64>, String> {
    some(m, k).map(|v| v.as_f64().ok_or_else(|| bad(k))).transpose()
}

/// A boolean flag, false when absent or null.
pub fn flag(m: &Obj, k: &str) -> Result<bool, String> {
    some(m, k).map(|v| v.as_bool().ok_or_else(|| bad(k))).transpose().map(|b| b.unwrap_or(false))
}

/// The `key` field: a string or a number.
pub fn key(m: &Obj) -> Result<Key, String> {
    match m.get("key") {
        Some(Value::String(s)) => Ok(Key::Text(s.clone())),
        Some(Value::Number(n)) => n.as_f64().map(Key::Number).ok_or_else(|| bad("key")),
        _ => Err(bad("key")),
    }
}

pub fn array<T>(v: &Value, what: &str, item: fn(&Value) -> Result<T, String>) -> Result<Vec<T>, String> {
    v.as_array().ok_or_else(|| bad(what))?.iter().map(item).collect()
}
