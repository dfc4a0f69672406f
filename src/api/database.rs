//! The `Database` JavaScript class: opening, collections, the outbox, storage health, events.

use std::rc::Rc;

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;

use super::collection::Collection;
use super::json::encode_json;
use super::outbox::Outbox;
use crate::core::{CoreError, DatabaseSchema};
use crate::platform::connection::delete_database;
use crate::platform::global::indexed_db;
use crate::platform::reads::Read;
use crate::platform::{LocalStore, StorageError};

/// An open Wharf database: collections of JSON documents in IndexedDB, each local write queued
/// in the outbox in the same transaction.
#[wasm_bindgen]
pub struct Database {
    store: Rc<LocalStore>,
}

#[wasm_bindgen]
impl Database {
    /// Opens (creating or upgrading) a database. Prefer `Wharf.open`, which also loads the module.
    pub async fn open(options: JsValue) -> Result<Database, JsValue> {
        let json = encode_json(&options).map_err(|problem| {
            StorageError::from(CoreError::InvalidOptions(format!("Wharf.open options: {problem}")))
        })?;
        let schema = DatabaseSchema::from_json(&json).map_err(StorageError::from)?;
        let store = LocalStore::open(schema).await?;
        Ok(Database { store })
    }

    /// Deletes a database and everything in it; waits until every connection has closed.
    #[wasm_bindgen(js_name = deleteDatabase)]
    pub async fn delete_database(name: JsValue) -> Result<(), JsValue> {
        let name = name.as_string().filter(|n| !n.is_empty()).ok_or_else(|| {
            StorageError::from(CoreError::InvalidOptions("deleteDatabase needs a non-empty name".into()))
        })?;
        let factory = indexed_db()?;
        Ok(delete_database(&factory, &name).await?)
    }

    /// The database name.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.store.schema().name.clone()
    }

    /// The collection with this name; throws `UNKNOWN_COLLECTION` if it was not declared.
    pub fn collection(&self, name: JsValue) -> Result<Collection, JsValue> {
        let name = name.as_string().unwrap_or_default();
        let position = self.store.schema().position(&name).map_err(StorageError::from)?;
        Ok(Collection::new(Rc::clone(&self.store), position))
    }

    /// The queue of local changes waiting to be pushed.
    #[wasm_bindgen(getter)]
    pub fn outbox(&self) -> Outbox {
        Outbox::new(Rc::clone(&self.store))
    }

    /// `{ usage, quota, persisted }`: the storage estimate, null where the browser has none.
    pub fn storage(&self) -> Promise {
        self.store.read(Read::Storage)
    }

    /// Counters of the local write path: `{ writes, writeTransactions }`.
    pub fn stats(&self) -> JsValue {
        let stats = self.store.stats();
        let out = Object::new();
        let _ = Reflect::set(&out, &"writes".into(), &JsValue::from_f64(stats.writes as f64));
        let _ = Reflect::set(&out, &"writeTransactions".into(), &JsValue::from_f64(stats.write_transactions as f64));
        out.into()
    }

    /// Calls `listener({ oldVersion, newVersion })` when another tab upgrades or deletes this
    /// database. Wharf has already closed its connection then; after an upgrade it reopens on the
    /// next call, after a deletion later calls fail with `CLOSED`. Returns a function that removes
    /// the listener (calling it again does nothing).
    #[wasm_bindgen(js_name = onVersionChange, unchecked_return_type = "() => void")]
    pub fn on_version_change(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(change: { oldVersion: number; newVersion: number | null }) => void")]
        listener: JsValue,
    ) -> Result<Function, JsValue> {
        let listener = listener
            .dyn_into::<Function>()
            .map_err(|_| StorageError::from(CoreError::InvalidOptions("onVersionChange expects a function".into())))?;
        let id = self.store.add_listener(listener);
        let store = Rc::downgrade(&self.store);
        let unsubscribe = Closure::<dyn FnMut()>::new(move || {
            if let Some(store) = store.upgrade() {
                store.remove_listener(id);
            }
        });
        Ok(unsubscribe.into_js_value().unchecked_into())
    }

    /// Closes the database. Writes already placed in a transaction still commit; writes waiting
    /// for a reconnect and every later call fail with `CLOSED`.
    pub fn close(&self) {
        self.store.close();
    }
}
