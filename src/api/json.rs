//! Crossing the boundary with caller data: one call to the JavaScript encoder per value (or per
//! batch), and conversion of keys. Everything after this point is validated JSON text.

use js_sys::Reflect;
use wasm_bindgen::prelude::*;

use crate::core::{CoreError, Key};

#[wasm_bindgen(module = "/src/api/js/encode.js")]
extern "C" {
    #[wasm_bindgen(js_name = encodeJson)]
    fn encode_json_js(value: &JsValue) -> JsValue;
}

#[wasm_bindgen]
extern "C" {
    /// `JSON.parse` of a JavaScript string, without copying it through WebAssembly memory.
    #[wasm_bindgen(js_namespace = JSON, js_name = parse, catch)]
    fn parse_js_string(text: &JsValue) -> Result<JsValue, JsValue>;
}

/// Caller data as JSON: the text (for validation in Rust) and the value parsed back from it (what
/// is stored: plain data, detached from the caller's object, proxies and getters resolved).
pub struct Encoded {
    pub text: String,
    pub value: JsValue,
}

/// JSON text of `value`, or the reason it cannot be stored.
pub fn encode_json(value: &JsValue) -> Result<String, String> {
    encode_json_value(value).map(|(text, _)| text)
}

fn encode_json_value(value: &JsValue) -> Result<(String, JsValue), String> {
    let encoded = encode_json_js(value);
    if let Some(text) = encoded.as_string() {
        return Ok((text, encoded));
    }
    Err(Reflect::get(&encoded, &JsValue::from_str("problem"))
        .ok()
        .and_then(|p| p.as_string())
        .unwrap_or_else(|| "it cannot be encoded as JSON".to_owned()))
}

/// A document or patch as JSON text plus its parsed copy; `INVALID_DOCUMENT` otherwise.
pub fn encode_document(value: &JsValue, what: &str) -> Result<Encoded, CoreError> {
    let invalid = |problem: String| CoreError::InvalidDocument(format!("{what}: {problem}"));
    let (text, js_text) = encode_json_value(value).map_err(invalid)?;
    let value = parse_js_string(&js_text).map_err(|_| invalid("its JSON could not be parsed back".to_owned()))?;
    Ok(Encoded { text, value })
}

/// A key given by the caller: a non-empty string or a finite number.
pub fn key_from_js(value: &JsValue) -> Result<Key, CoreError> {
    if let Some(text) = value.as_string() {
        return Key::text(&text);
    }
    if let Some(number) = value.as_f64() {
        return Key::number(number);
    }
    let kind = value.js_typeof().as_string().unwrap_or_default();
    let kind = if value.is_null() { "null".to_owned() } else { kind };
    Err(CoreError::InvalidKey(format!("a key must be a non-empty string or a finite number, got {kind}")))
}
