//! JSON text written by hand: every JSON text the core and the host produce (the rounds of a
//! transaction, the actions of a step, events, push bodies), string literals escaped exactly as
//! serde_json and `JSON.stringify` escape them, and quoted names for messages.
//!
//! serde_json's serializer is not used: `json!` (one `to_value` per interpolated type, each
//! unwrapped through `serde_json::Error`'s Debug), `Value`'s `Display` (with its pretty printer)
//! and a derived `Serialize` per type each add their own copy of the serializer to the
//! WebAssembly. `JsonText` writes the same text, byte for byte: object keys in the order
//! serde_json wrote them (sorted, for what was a `Value` object; in declaration order, for what
//! was a derived `Serialize`), numbers as it printed them.
//!
//! Messages quote the caller's names with `quoted` instead of `{:?}`: Debug formatting of a
//! string pulls Rust's Unicode printability tables and escaper into the WebAssembly (about
//! 4 KB), and a JSON literal reads the same for every name a message will ever show.

use std::fmt::Write;

use serde_json::{Number, Value};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `text` as a JSON string literal: `"` and `\` escaped, the control characters as
/// `\n`, `\t`... or `\u00XX`, nothing else.
pub fn push_string(out: &mut String, text: &str) {
    out.push('"');
    let mut start = 0;
    for (at, byte) in text.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&text[start..at]);
        if escape.is_empty() {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        } else {
            out.push_str(escape);
        }
        start = at + 1;
    }
    out.push_str(&text[start..]);
    out.push('"');
}

/// `text` in double quotes, escaped as a JSON string, for a message.
pub fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    push_string(&mut out, text);
    out
}

/// `["a", "b"]`: names listed in a message.
pub fn quoted_list(names: &[&str]) -> String {
    let mut out = String::from("[");
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        push_string(&mut out, name);
    }
    out.push(']');
    out
}

/// A JSON text written left to right. Commas go in by themselves: each key and value looks at
/// what precedes it (nothing, `[`, `{` or `:` needs none).
#[derive(Debug, Default)]
pub struct JsonText(String);

impl JsonText {
    pub fn new() -> JsonText {
        JsonText(String::new())
    }

    pub fn finish(self) -> String {
        self.0
    }

    fn separate(&mut self) {
        if !matches!(self.0.as_bytes().last(), None | Some(b'[' | b'{' | b':')) {
            self.0.push(',');
        }
    }

    pub fn open_object(&mut self) -> &mut JsonText {
        self.separate();
        self.0.push('{');
        self
    }

    pub fn close_object(&mut self) -> &mut JsonText {
        self.0.push('}');
        self
    }

    pub fn open_array(&mut self) -> &mut JsonText {
        self.separate();
        self.0.push('[');
        self
    }

    pub fn close_array(&mut self) -> &mut JsonText {
        self.0.push(']');
        self
    }

    /// An object's key; its value comes next.
    pub fn key(&mut self, key: &str) -> &mut JsonText {
        self.separate();
        push_string(&mut self.0, key);
        self.0.push(':');
        self
    }

    pub fn string(&mut self, text: &str) -> &mut JsonText {
        self.separate();
        push_string(&mut self.0, text);
        self
    }

    pub fn opt_string(&mut self, text: Option<&str>) -> &mut JsonText {
        match text {
            Some(text) => self.string(text),
            None => self.null(),
        }
    }

    pub fn uint(&mut self, n: u64) -> &mut JsonText {
        self.separate();
        let _ = write!(self.0, "{n}");
        self
    }

    pub fn opt_uint(&mut self, n: Option<u64>) -> &mut JsonText {
        match n {
            Some(n) => self.uint(n),
            None => self.null(),
        }
    }

    /// A float as serde_json writes an `f64`: the shortest digits that read back the same
    /// (`1.5`, `3.0`), `null` when it is not finite.
    pub fn float(&mut self, n: f64) -> &mut JsonText {
        match Number::from_f64(n) {
            Some(number) => self.number(&number),
            None => self.null(),
        }
    }

    pub fn opt_float(&mut self, n: Option<f64>) -> &mut JsonText {
        match n {
            Some(n) => self.float(n),
            None => self.null(),
        }
    }

    fn number(&mut self, number: &Number) -> &mut JsonText {
        self.separate();
        let _ = write!(self.0, "{number}");
        self
    }

    pub fn boolean(&mut self, b: bool) -> &mut JsonText {
        self.raw(if b { "true" } else { "false" })
    }

    pub fn null(&mut self) -> &mut JsonText {
        self.raw("null")
    }

    /// A value that is JSON text already.
    pub fn raw(&mut self, json: &str) -> &mut JsonText {
        self.separate();
        self.0.push_str(json);
        self
    }

    /// `value` as serde_json writes it compactly (object keys in the map's sorted order).
    pub fn value(&mut self, value: &Value) -> &mut JsonText {
        match value {
            Value::Null => self.null(),
            Value::Bool(b) => self.boolean(*b),
            Value::Number(number) => self.number(number),
            Value::String(text) => self.string(text),
            Value::Array(items) => {
                self.open_array();
                for item in items {
                    self.value(item);
                }
                self.close_array()
            }
            Value::Object(map) => {
                self.open_object();
                for (key, item) in map {
                    self.key(key).value(item);
                }
                self.close_object()
            }
        }
    }

    pub fn opt_value(&mut self, value: Option<&Value>) -> &mut JsonText {
        match value {
            Some(value) => self.value(value),
            None => self.null(),
        }
    }
}

/// An object value from its fields: what `json!({ ... })` built, without serde_json's serializer.
pub fn object(fields: Vec<(&str, Value)>) -> Value {
    let mut map = serde_json::Map::new();
    for (key, value) in fields {
        map.insert(key.to_owned(), value);
    }
    Value::Object(map)
}

/// `value` as JSON text (what `value.to_string()` gives).
pub fn text(value: &Value) -> String {
    let mut out = JsonText::new();
    out.value(value);
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_written_as_serde_json_writes_them() {
        let values = [
            json!(null),
            json!([]),
            json!({}),
            json!([[], {}, [[1]], {"a": {}}]),
            json!({"b": 1, "a": [true, false, null], "c": {"z": "x\"y", "": -3}, "d": 1.5, "e": 3.0}),
            json!([0, -0.0, 1e21, 1.5e-7, 123456789012345678u64, -9007199254740993i64, 0.1, f64::MAX]),
            json!("\u{0}\n\u{1f}é"),
        ];
        for value in values {
            assert_eq!(text(&value), value.to_string());
        }
    }

    #[test]
    fn the_writer_places_commas_between_keys_and_values() {
        let mut out = JsonText::new();
        out.open_object().key("a").uint(1).key("b").open_array().string("x").float(2.0).float(f64::NAN);
        out.opt_string(None).boolean(true).close_array().key("c").opt_float(Some(0.5)).key("d").raw("[1]");
        out.key("e").open_object().close_object().key("f").opt_value(Some(&json!({"k": [1, 2]}))).close_object();
        assert_eq!(out.finish(), r#"{"a":1,"b":["x",2.0,null,null,true],"c":0.5,"d":[1],"e":{},"f":{"k":[1,2]}}"#);
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        for text in ["", "plain", "a\"b\\c", "line\nfeed\r\ttab", "\u{0}\u{1}\u{8}\u{c}\u{1f}\u{7f}", "é 😀 \u{FFFF}"]
        {
            let mut out = String::new();
            push_string(&mut out, text);
            assert_eq!(out, serde_json::to_string(text).unwrap(), "{text:?}");
        }
    }

    #[test]
    fn names_in_messages_read_as_debug_formatting_wrote_them() {
        for text in ["todos", "meta.id", "a \"quoted\" name", "back\\slash", "tab\there", ""] {
            assert_eq!(quoted(text), format!("{text:?}"));
        }
        assert_eq!(quoted_list(&["name", "collections"]), format!("{:?}", ["name", "collections"]));
        assert_eq!(quoted_list(&[]), "[]");
    }
}
