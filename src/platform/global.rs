//! Access to the global scope without assuming `window`: the same code runs in pages, dedicated
//! workers and service workers, whose globals differ but all expose `indexedDB`, `crypto` and
//! `navigator`.

use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Crypto, IdbFactory, StorageManager};

use super::error::StorageError;

pub fn global_property(name: &str) -> Option<JsValue> {
    Reflect::get(&js_sys::global(), &JsValue::from_str(name)).ok().filter(|v| !v.is_undefined() && !v.is_null())
}

/// The IndexedDB factory of this global scope.
pub fn indexed_db() -> Result<IdbFactory, StorageError> {
    // Reading `indexedDB` throws a SecurityError in opaque origins; `global_property` maps that to None.
    global_property("indexedDB")
        .and_then(|v| v.dyn_into::<IdbFactory>().ok())
        .ok_or_else(|| StorageError::Unavailable("this global scope has no indexedDB".to_owned()))
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// 64 random bits from `crypto.getRandomValues`, falling back to `Math.random` where absent.
pub fn random_seed() -> u64 {
    let mut bytes = [0u8; 8];
    let filled = global_property("crypto")
        .and_then(|c| c.dyn_into::<Crypto>().ok())
        .map(|crypto| crypto.get_random_values_with_u8_array(&mut bytes).is_ok())
        .unwrap_or(false);
    if filled {
        u64::from_le_bytes(bytes)
    } else {
        let high = (js_sys::Math::random() * 4_294_967_296.0) as u64;
        let low = (js_sys::Math::random() * 4_294_967_296.0) as u64;
        (high << 32) ^ low ^ now_ms() as u64
    }
}

/// `navigator.storage`, where the browser has it.
pub fn storage_manager() -> Option<StorageManager> {
    let navigator = global_property("navigator")?;
    Reflect::get(&navigator, &JsValue::from_str("storage")).ok()?.dyn_into::<StorageManager>().ok()
}

/// Calls `navigator.storage.persist()` if this scope has it (pages do, workers do not).
pub fn request_persistence() -> Option<Promise> {
    let storage = storage_manager()?;
    let persist = Reflect::get(&storage, &JsValue::from_str("persist")).ok()?.dyn_into::<Function>().ok()?;
    persist.call0(&storage).ok()?.dyn_into::<Promise>().ok()
}

/// Reports an exception thrown by a user callback without letting it escape into Wharf.
pub fn report_callback_error(error: &JsValue) {
    if let Some(console) = global_property("console") {
        if let Ok(log) = Reflect::get(&console, &JsValue::from_str("error")).and_then(|f| f.dyn_into::<Function>()) {
            let _ = log.call2(&console, &JsValue::from_str("Wharf: a callback threw"), error);
        }
    }
}
