//! Documents, keys and key paths: the validation rules every write passes before it can touch
//! storage.
//!
//! A Wharf document is a JSON object (it travels to the server as JSON), identified by a key found
//! at the collection's key path. Keys are non-empty strings or finite numbers: the subset of
//! IndexedDB keys that JSON represents exactly on every server.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::CoreError;
use super::json_text::quoted;

/// Longest accepted key, in UTF-8 bytes. Keys travel in URLs, headers and indexes.
pub const MAX_KEY_BYTES: usize = 1024;

/// A document key.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Key {
    Text(String),
    Number(f64),
}

/// Largest integer a JavaScript number holds exactly.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

impl Serialize for Key {
    /// Whole numbers serialize as JSON integers (`7`, not `7.0`), as JavaScript prints them, so a
    /// key has one canonical text on the wire and in server storage.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Key::Text(text) => serializer.serialize_str(text),
            Key::Number(n) if n.fract() == 0.0 && n.abs() <= MAX_SAFE_INTEGER => serializer.serialize_i64(*n as i64),
            Key::Number(n) => serializer.serialize_f64(*n),
        }
    }
}

impl Key {
    /// Validates a string key.
    pub fn text(value: &str) -> Result<Key, CoreError> {
        if value.is_empty() {
            return Err(CoreError::InvalidKey("a key cannot be the empty string".into()));
        }
        if value.len() > MAX_KEY_BYTES {
            return Err(CoreError::InvalidKey(format!(
                "a key is at most {MAX_KEY_BYTES} bytes of UTF-8, this one has {}",
                value.len()
            )));
        }
        Ok(Key::Text(value.to_owned()))
    }

    /// Validates a numeric key.
    pub fn number(value: f64) -> Result<Key, CoreError> {
        if value.is_finite() {
            Ok(Key::Number(value))
        } else {
            Err(CoreError::InvalidKey(format!("a numeric key must be finite, got {}", format_number(value))))
        }
    }

    /// Reads a key out of a JSON value found at the key path.
    pub fn from_json(value: &Value) -> Result<Key, CoreError> {
        match value {
            Value::String(s) => Key::text(s),
            Value::Number(n) => Key::number(n.as_f64().unwrap_or(f64::NAN)),
            other => Err(CoreError::InvalidKey(format!(
                "a key must be a non-empty string or a finite number, got {}",
                json_type_name(other)
            ))),
        }
    }

    /// The key as a JSON value: whole numbers as integers, as JavaScript prints them.
    pub fn to_json(&self) -> Value {
        match self {
            Key::Text(text) => Value::String(text.clone()),
            Key::Number(n) if n.fract() == 0.0 && n.abs() <= MAX_SAFE_INTEGER => Value::from(*n as i64),
            Key::Number(n) => Value::from(*n),
        }
    }

    /// `JSON.stringify(key)` exactly as JavaScript writes it (the versions store's keys were
    /// written by JavaScript and must keep matching).
    pub fn js_json(&self) -> String {
        match self {
            Key::Text(text) => quoted(text),
            Key::Number(n) => js_number(*n),
        }
    }

    /// Describes the key for messages: strings quoted, numbers bare.
    pub fn describe(&self) -> String {
        match self {
            Key::Text(s) => quoted(s),
            Key::Number(n) => format_number(*n),
        }
    }
}

/// Formats a number the way JavaScript prints it (`3`, not `3.0`), for error messages.
pub fn format_number(value: f64) -> String {
    match serde_json::Number::from_f64(value) {
        Some(_) if value.fract() == 0.0 && value.abs() <= MAX_SAFE_INTEGER => (value as i64).to_string(),
        Some(number) => number.to_string(),
        None if value.is_nan() => "NaN".to_owned(),
        None if value > 0.0 => "Infinity".to_owned(),
        None => "-Infinity".to_owned(),
    }
}

/// A finite number as JavaScript's `Number.prototype.toString` writes it (ECMA-262
/// Number::toString): plain decimals from 1e-7 up to 1e21, exponent form (`1e+21`, `1.5e-7`)
/// outside. The shortest round-trip digits come from serde_json's float printer.
pub fn js_number(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return format_number(value);
    }
    let printed = serde_json::Number::from_f64(value.abs()).map_or_else(String::new, |n| n.to_string());
    let (mantissa, exponent) = match printed.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (printed.as_str(), 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits: String = int_part.chars().chain(frac_part.chars()).collect();
    let mut point = int_part.len() as i32 + exponent;
    while digits.starts_with('0') && digits.len() > 1 {
        digits.remove(0);
        point -= 1;
    }
    while digits.ends_with('0') && digits.len() > 1 {
        digits.pop();
    }
    let k = digits.len() as i32;
    let mut out = String::new();
    if value < 0.0 {
        out.push('-');
    }
    if k <= point && point <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (point - k) as usize));
    } else if 0 < point && point <= 21 {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    } else if -6 < point && point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-point) as usize));
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if point - 1 < 0 { '-' } else { '+' });
        out.push_str(&(point - 1).unsigned_abs().to_string());
    }
    out
}

/// A dotted key path such as `id` or `meta.id`, as IndexedDB understands it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPath {
    text: String,
    segments: Vec<String>,
}

impl KeyPath {
    /// Parses a key path: dot-separated identifiers (ASCII letters, digits, `_` and `$`, not
    /// starting with a digit).
    pub fn parse(text: &str) -> Result<KeyPath, CoreError> {
        let segments: Vec<String> = text.split('.').map(str::to_owned).collect();
        let valid_segment = |s: &String| {
            let mut chars = s.chars();
            matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '$')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        };
        if text.is_empty() || !segments.iter().all(valid_segment) {
            return Err(CoreError::InvalidSchema(format!(
                "key path {} is not a dot-separated list of identifiers such as \"id\" or \"meta.id\"",
                quoted(text)
            )));
        }
        Ok(KeyPath { text: text.to_owned(), segments })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value at this path, if every step exists.
    pub fn lookup<'a>(&self, doc: &'a Value) -> Option<&'a Value> {
        self.segments.iter().try_fold(doc, |node, segment| node.as_object()?.get(segment))
    }

    fn first_segment(&self) -> &str {
        &self.segments[0]
    }
}

/// The JSON type of a value, for error messages.
pub fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses caller JSON text; deeper nesting than serde_json's limit is an `INVALID_DOCUMENT`.
pub fn parse_json(json: &str, what: &str) -> Result<Value, CoreError> {
    super::read::json(json, false).map_err(|e| {
        if nested_too_deep(json) {
            CoreError::InvalidDocument(format!("{what} is nested more than 127 levels deep"))
        } else {
            CoreError::InvalidDocument(format!("{what} is not valid JSON: {}", json_problem(&e, json)))
        }
    })
}

/// Why serde_json refused `text`: "nested more than 127 levels deep", or where the syntax broke
/// ("syntax error at line 1 column 5"). serde_json's own messages are not used: their table, and
/// the `std::io::Error` texts its `Display` drags in, cost 2 KB of WebAssembly for a message no
/// valid caller ever sees (caller JSON comes from `JSON.stringify`).
pub fn json_problem(error: &serde_json::Error, text: &str) -> String {
    if nested_too_deep(text) {
        return "nested more than 127 levels deep".to_owned();
    }
    let what = match error.classify() {
        serde_json::error::Category::Eof => "unexpected end of the text",
        _ => "syntax error",
    };
    format!("{what} at line {} column {}", error.line(), error.column())
}

/// Whether arrays and objects in `text` nest deeper than serde_json parses (127 levels): the one
/// way text `JSON.stringify` wrote can fail to parse.
fn nested_too_deep(text: &str) -> bool {
    nests_deeper_than(text, 127)
}

/// Whether arrays and objects in the JSON `text` nest deeper than `limit` levels.
pub fn nests_deeper_than(text: &str, limit: u32) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0u32, false, false);
    for byte in text.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

fn expect_object<'a>(value: &'a Value, what: &str) -> Result<&'a Map<String, Value>, CoreError> {
    value.as_object().ok_or_else(|| {
        CoreError::InvalidDocument(format!("{what} must be a plain object, got {}", json_type_name(value)))
    })
}

/// Validates a whole document given as JSON text and returns its key.
pub fn document_key(json: &str, key_path: &KeyPath) -> Result<Key, CoreError> {
    key_of(&parse_json(json, "a document")?, key_path)
}

/// How deep a document may nest (objects and arrays). The outbox wraps a document in a few more
/// levels, and JSON parsers stop at 128 (serde_json, the reference server's): a cap well below
/// that keeps every stored document readable and sendable, whatever wraps it.
pub const MAX_DOCUMENT_DEPTH: usize = 100;

/// Whether `value` nests more than `levels` levels deep (a scalar: 0, a flat object or array: 1).
/// No allocation, and the recursion stops at `levels`: it runs on every local write and pulled
/// change.
pub fn nests_deeper(value: &Value, levels: usize) -> bool {
    match value {
        Value::Array(items) => levels == 0 || items.iter().any(|item| nests_deeper(item, levels - 1)),
        Value::Object(map) => levels == 0 || map.values().any(|item| nests_deeper(item, levels - 1)),
        _ => false,
    }
}

/// The nesting depth of `value`: 0 for a scalar, 1 for a flat object or array.
#[cfg(test)]
pub fn depth(value: &Value) -> usize {
    let mut depth = 0;
    let mut level = vec![value];
    while !level.is_empty() {
        let mut next = Vec::new();
        let mut containers = false;
        for value in level {
            match value {
                Value::Array(items) => next.extend(items),
                Value::Object(map) => next.extend(map.values()),
                _ => continue,
            }
            containers = true;
        }
        depth += usize::from(containers);
        level = next;
    }
    depth
}

fn within_depth(value: &Value, what: &str) -> Result<(), CoreError> {
    if nests_deeper(value, MAX_DOCUMENT_DEPTH) {
        return Err(CoreError::InvalidDocument(format!("{what} is nested more than {MAX_DOCUMENT_DEPTH} levels deep")));
    }
    Ok(())
}

/// Validates a parsed document and returns its key.
pub fn key_of(doc: &Value, key_path: &KeyPath) -> Result<Key, CoreError> {
    expect_object(doc, "a document")?;
    within_depth(doc, "a document")?;
    let found = key_path.lookup(doc).ok_or_else(|| CoreError::MissingKey { key_path: key_path.as_str().to_owned() })?;
    Key::from_json(found)
}

/// Validates a shallow patch for the document with key `target`.
///
/// A patch is merged with `{ ...current, ...patch }`, so it may not replace the key: if it
/// touches the key path's first field at all, the key found there must still be `target`.
pub fn validate_patch(json: &str, key_path: &KeyPath, target: &Key) -> Result<(), CoreError> {
    let patch = parse_json(json, "a patch")?;
    expect_object(&patch, "a patch")?;
    within_depth(&patch, "a patch")?;
    if patch.get(key_path.first_segment()).is_none() {
        return Ok(());
    }
    match key_path.lookup(&patch).map(Key::from_json) {
        Some(Ok(key)) if key == *target => Ok(()),
        _ => Err(CoreError::InvalidDocument(format!(
            "a patch cannot change or remove the key at \"{}\" (the document's key is {})",
            key_path.as_str(),
            target.describe()
        ))),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_come_back_exactly_as_javascript_wrote_them() {
        // JSON.stringify writes the shortest text that reads back to the same double; the core
        // must read every such text to that double, or a stored or pushed value drifts.
        for text in ["0.9941414234726625", "0.1", "5e-324", "1.7976931348623157e+308", "123456789.12345678"] {
            let doc = parse_json(&format!("{{\"n\":{text}}}"), "the document").unwrap();
            let expected: f64 = text.parse().unwrap();
            assert_eq!(doc["n"].as_f64(), Some(expected), "{text}");
            let mut out = crate::core::json_text::JsonText::new();
            out.value(&doc);
            assert_eq!(out.finish(), format!("{{\"n\":{text}}}"));
        }
    }

    #[test]
    fn numbers_print_as_javascript_prints_them() {
        for (value, js) in [
            (7.0, "7"),
            (-7.0, "-7"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (1.2345678901234568e20, "123456789012345680000"),
            (1e-7, "1e-7"),
            (1e-6, "0.000001"),
            (1.5e-7, "1.5e-7"),
            (0.000123, "0.000123"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (0.30000000000000004, "0.30000000000000004"),
            (9007199254740992.0, "9007199254740992"),
            (123.456, "123.456"),
            (-0.0, "0"),
            (-2.5e-8, "-2.5e-8"),
        ] {
            assert_eq!(js_number(value), js, "{value:e}");
        }
    }
    use super::*;

    fn path(p: &str) -> KeyPath {
        KeyPath::parse(p).unwrap()
    }

    #[test]
    fn key_paths_accept_identifiers_only() {
        for ok in ["id", "meta.id", "_x", "$a.b_2"] {
            assert!(KeyPath::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "a.", ".a", "1a", "a b", "a-b", "a..b"] {
            let err = KeyPath::parse(bad).unwrap_err();
            assert_eq!(err.code().as_str(), "INVALID_SCHEMA", "{bad}");
        }
    }

    #[test]
    fn finds_string_number_and_nested_keys() {
        assert_eq!(document_key(r#"{"id":"a"}"#, &path("id")), Ok(Key::Text("a".into())));
        assert_eq!(document_key(r#"{"id":7}"#, &path("id")), Ok(Key::Number(7.0)));
        assert_eq!(document_key(r#"{"m":{"id":"x"}}"#, &path("m.id")), Ok(Key::Text("x".into())));
    }

    #[test]
    fn rejects_non_objects_with_their_type() {
        for (json, ty) in [("[1]", "an array"), ("3", "a number"), ("null", "null"), ("\"s\"", "a string")] {
            let err = document_key(json, &path("id")).unwrap_err();
            assert_eq!(err.code().as_str(), "INVALID_DOCUMENT");
            assert!(err.to_string().contains(ty), "{err}");
        }
    }

    #[test]
    fn missing_and_invalid_keys() {
        let err = document_key(r#"{"name":"x"}"#, &path("id")).unwrap_err();
        assert_eq!(err.code().as_str(), "MISSING_KEY");
        let err = document_key(r#"{"m":3}"#, &path("m.id")).unwrap_err();
        assert_eq!(err.code().as_str(), "MISSING_KEY");
        for json in [r#"{"id":""}"#, r#"{"id":true}"#, r#"{"id":null}"#, r#"{"id":[1]}"#, r#"{"id":{}}"#] {
            let err = document_key(json, &path("id")).unwrap_err();
            assert_eq!(err.code().as_str(), "INVALID_KEY", "{json}");
        }
        let long = format!(r#"{{"id":"{}"}}"#, "k".repeat(MAX_KEY_BYTES + 1));
        assert_eq!(document_key(&long, &path("id")).unwrap_err().code().as_str(), "INVALID_KEY");
    }

    #[test]
    fn documents_nest_at_most_the_cap() {
        let nested =
            |levels: usize| format!(r#"{{"id":"a","x":{}{}}}"#, "[".repeat(levels - 1), "]".repeat(levels - 1));
        assert_eq!(depth(&serde_json::from_str(&nested(MAX_DOCUMENT_DEPTH)).unwrap()), MAX_DOCUMENT_DEPTH);
        assert!(document_key(&nested(MAX_DOCUMENT_DEPTH), &path("id")).is_ok());
        let err = document_key(&nested(MAX_DOCUMENT_DEPTH + 1), &path("id")).unwrap_err();
        assert_eq!(err.code().as_str(), "INVALID_DOCUMENT");
        assert!(err.to_string().contains("more than 100 levels"), "{err}");
        let patch = format!(r#"{{"x":{}{}}}"#, "{\"y\":".repeat(MAX_DOCUMENT_DEPTH), "}".repeat(MAX_DOCUMENT_DEPTH));
        assert_eq!(
            validate_patch(&patch, &path("id"), &Key::Text("a".into())).unwrap_err().code().as_str(),
            "INVALID_DOCUMENT"
        );
        assert_eq!((depth(&serde_json::json!(1)), depth(&serde_json::json!([[], {"a": [1]}]))), (0, 3));
    }

    #[test]
    fn rejects_too_deep_nesting_with_a_clear_message() {
        let deep = format!(r#"{{"id":"a","x":{}{}}}"#, "[".repeat(200), "]".repeat(200));
        let err = document_key(&deep, &path("id")).unwrap_err();
        assert_eq!(err.code().as_str(), "INVALID_DOCUMENT");
        assert!(err.to_string().contains("nested"), "{err}");
    }

    #[test]
    fn names_where_json_broke_and_counts_nesting_outside_strings() {
        let broken = parse_json("{\"id\": }", "a document").unwrap_err().to_string();
        assert!(broken.contains("a document is not valid JSON: syntax error at line 1 column 8"), "{broken}");
        let cut = parse_json("[1,", "a document").unwrap_err().to_string();
        assert!(cut.contains("unexpected end of the text at line 1"), "{cut}");
        let brackets_in_strings = format!(r#"{{"id":"{}\"{}"}}"#, "[".repeat(200), "{".repeat(200));
        assert!(!nested_too_deep(&brackets_in_strings) && parse_json(&brackets_in_strings, "d").is_ok());
        assert!(!nested_too_deep(&format!("{}{}", "[".repeat(127), "]".repeat(127))));
        assert!(nested_too_deep(&"[".repeat(128)));
    }

    #[test]
    fn numbers_print_like_javascript() {
        assert_eq!(format_number(3.0), "3");
        assert_eq!(format_number(-0.5), "-0.5");
        assert_eq!(format_number(f64::NAN), "NaN");
        assert_eq!(format_number(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(Key::Number(12.0).describe(), "12");
    }

    #[test]
    fn number_keys_must_be_finite() {
        assert!(Key::number(f64::NAN).is_err());
        assert!(Key::number(f64::INFINITY).is_err());
        assert_eq!(Key::number(-0.5), Ok(Key::Number(-0.5)));
    }

    #[test]
    fn patches_may_not_change_the_key() {
        let target = Key::Text("a".into());
        assert!(validate_patch(r#"{"title":"x"}"#, &path("id"), &target).is_ok());
        assert!(validate_patch(r#"{"id":"a","t":1}"#, &path("id"), &target).is_ok());
        assert!(validate_patch(r#"{"id":"b"}"#, &path("id"), &target).is_err());
        assert!(validate_patch(r#"{"id":null}"#, &path("id"), &target).is_err());
        assert!(validate_patch(r#"{"m":{"x":1}}"#, &path("m.id"), &target).is_err());
        assert!(validate_patch(r#"{"m":{"id":"a"}}"#, &path("m.id"), &target).is_ok());
        assert_eq!(validate_patch("[1]", &path("id"), &target).unwrap_err().code().as_str(), "INVALID_DOCUMENT");
    }
}
