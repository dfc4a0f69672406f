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

/// JSON text of `value`, or the reason it cannot be stored.
pub fn encode_json(value: &JsValue) -> Result<String, String> {
    let encoded = encode_json_js(value);
    if let Some(text) = encoded.as_string() {
        return Ok(text);
    }
    Err(Reflect::get(&encoded, &JsValue::from_str("problem"))
        .ok()
        .and_then(|p| p.as_string())
        .unwrap_or_else(|| "it cannot be encoded as JSON".to_owned()))
}

/// A document or patch as JSON text; `INVALID_DOCUMENT` otherwise.
pub fn encode_document(value: &JsValue, what: &str) -> Result<String, CoreError> {
    encode_json(value).map_err(|problem| CoreError::InvalidDocument(format!("{what}: {problem}")))
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
