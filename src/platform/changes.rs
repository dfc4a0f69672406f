//! Change notification for `db.onChange` and live queries: the hub (`js/changes.js`) each open
//! database owns, and the description of committed local writes handed to it. Nothing is built
//! unless someone listens, so the write path pays one property read when nobody does.

use js_sys::{Function, Promise};
use serde::Serialize;
use wasm_bindgen::prelude::*;

use super::write_batch::PreparedWrite;
use crate::core::{Key, OpKind};

#[wasm_bindgen(module = "/src/platform/js/changes.js")]
extern "C" {
    /// Listeners of one database's changes.
    pub type ChangeHub;
    /// A hub for database `name`, linked to the hubs of the same database in other contexts.
    #[wasm_bindgen(constructor)]
    pub fn new(name: &str) -> ChangeHub;
    #[wasm_bindgen(method)]
    pub fn close(this: &ChangeHub);
    #[wasm_bindgen(method, getter)]
    pub fn active(this: &ChangeHub) -> bool;
    /// Adds `listener(changes)`; returns the function that removes it.
    #[wasm_bindgen(method)]
    pub fn watch(this: &ChangeHub, listener: &Function) -> Function;
    #[wasm_bindgen(method, js_name = emitAfter)]
    fn emit_after(this: &ChangeHub, committed: &Promise, changes_json: &str);
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

/// One changed document, as `db.onChange` listeners receive it.
#[derive(Serialize)]
struct Change<'a> {
    collection: &'a str,
    key: Key,
    op: &'a str,
    source: &'static str,
}

fn key_of(value: &JsValue) -> Option<Key> {
    value.as_string().map(Key::Text).or_else(|| value.as_f64().map(Key::Number))
}

impl ChangeHub {
    /// Reports `writes` as local changes once `committed` resolves, if anyone listens.
    pub fn local_writes_after(&self, committed: &Promise, writes: &[PreparedWrite]) {
        if !self.active() {
            return;
        }
        let changes: Vec<Change> = writes
            .iter()
            .filter_map(|write| {
                let op = if write.op == OpKind::Delete { "delete" } else { "put" };
                Some(Change { collection: &write.store, key: key_of(&write.key)?, op, source: "local" })
            })
            .collect();
        if let Ok(json) = serde_json::to_string(&changes) {
            self.emit_after(committed, &json);
        }
    }
}
