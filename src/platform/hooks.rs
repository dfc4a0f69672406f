//! The one shape of every Rust function JavaScript calls back: `io.js`'s `report`, the hooks of
//! `idb.js` and `coordinate.js`, `live.js`'s poke. wasm-bindgen writes an invoke shim into the
//! WebAssembly and a wrapper into the glue for each closure signature; with one signature (five
//! `JsValue` arguments, JavaScript leaving the unused ones `undefined`, and a `Result` whose `Err`
//! is thrown) there is one of each instead of eleven. Each hook reads its arguments with `text`,
//! `number` and `as_string`, as wasm-bindgen's typed parameters did (`null` and `undefined` are
//! `None` for an optional string).

use wasm_bindgen::prelude::*;

type HookFn = dyn FnMut(JsValue, JsValue, JsValue, JsValue, JsValue) -> Result<JsValue, JsValue>;

/// `f` as a JavaScript function, owned by JavaScript (it lives as long as JavaScript holds it).
pub fn hook(
    f: impl FnMut(JsValue, JsValue, JsValue, JsValue, JsValue) -> Result<JsValue, JsValue> + 'static,
) -> JsValue {
    Closure::<HookFn>::wrap(Box::new(f) as Box<HookFn>).into_js_value()
}

/// A string argument (`""` if it is not a string).
pub fn text(value: &JsValue) -> String {
    value.as_string().unwrap_or_default()
}

/// A number argument (0 if it is not a number).
pub fn number(value: &JsValue) -> f64 {
    value.as_f64().unwrap_or(0.0)
}
