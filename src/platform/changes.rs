//! Change notification for `db.onChange` and live queries: the hub (`js/changes.js`) each open
//! database owns. Local writes (`js/idb.js`) and the core's committed transactions hand it the
//! documents they changed after commit; when nobody listens, nothing is built.

use js_sys::Function;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/src/platform/js/changes.js")]
extern "C" {
    /// Listeners of one database's changes.
    #[derive(Clone)]
    pub type ChangeHub;
    /// A hub for database `name`, linked to the hubs of the same database in other contexts.
    #[wasm_bindgen(constructor)]
    pub fn new(name: &str) -> ChangeHub;
    #[wasm_bindgen(method)]
    pub fn close(this: &ChangeHub);
    /// Adds `listener(changes)`; returns the function that removes it.
    #[wasm_bindgen(method)]
    pub fn watch(this: &ChangeHub, listener: &Function) -> Function;
    /// Runs `run` now and after every change to `collection`, calling `callback` with each
    /// result; returns the unsubscribe function.
    #[wasm_bindgen(js_name = liveQuery)]
    pub fn live_query(hub: &ChangeHub, collection: &str, run: &Function, callback: &Function) -> Function;
    /// `liveQuery` limited to the changes of the document `key`.
    #[wasm_bindgen(js_name = liveQuery)]
    pub fn live_document(
        hub: &ChangeHub,
        collection: &str,
        run: &Function,
        callback: &Function,
        key: &JsValue,
    ) -> Function;
}
