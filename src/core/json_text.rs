//! JSON text written by hand: string literals escaped exactly as serde_json and `JSON.stringify`
//! escape them, and quoted names for messages.
//!
//! Messages quote the caller's names with this instead of `{:?}`: Debug formatting of a string
//! pulls Rust's Unicode printability tables and escaper into the WebAssembly (about 4 KB), and
//! a JSON literal reads the same for every name a message will ever show.

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

#[cfg(test)]
mod tests {
    use super::*;

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
