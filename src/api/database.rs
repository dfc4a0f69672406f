//! The `Database` JavaScript class: opening, collections, the outbox, dead letters, storage
//! health, and the sync surface (`sync()`, status, events, pause/resume).

use std::rc::Rc;

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;

use super::collection::Collection;
use super::dead_letters::DeadLetters;
use super::json::encode_json;
use super::outbox::Outbox;
use crate::core::conflict::Strategy;
use crate::core::sync_options::SyncOptions;
use crate::core::{parse_json, CoreError, DatabaseSchema, ErrorCode};
use crate::platform::connection::delete_database;
use crate::platform::error::wharf_error;
use crate::platform::global::indexed_db;
use crate::platform::reads::Read;
use crate::platform::sync_driver::{SyncDriver, SyncShared};
use crate::platform::{LocalStore, StorageError};

#[wasm_bindgen(module = "/src/platform/js/triggers.js")]
extern "C" {
    fn abortable(promise: &Promise, signal: &JsValue) -> Promise;
}

#[wasm_bindgen(typescript_custom_section)]
const SYNC_TYPES: &str = r#"import type { ChangeEvent, ConflictEvent, DeadLetter, PullResult, SyncEnd, SyncResult, SyncStatus } from "./index.js";"#;

fn invalid_options(message: String) -> StorageError {
    CoreError::InvalidOptions(message).into()
}

/// Conflict resolver functions by collection (`None`: every collection).
type Resolvers = Vec<(Option<String>, Function)>;

/// Takes the resolver functions out of a copy of `sync.conflicts`, leaving `"function"` in their
/// place for the JSON form.
fn split_resolvers(sync_copy: &Object) -> Result<Resolvers, StorageError> {
    let conflicts = Reflect::get(sync_copy, &"conflicts".into()).unwrap_or(JsValue::UNDEFINED);
    if let Some(resolver) = conflicts.dyn_ref::<Function>() {
        let _ = Reflect::set(sync_copy, &"conflicts".into(), &"function".into());
        return Ok(vec![(None, resolver.clone())]);
    }
    if !conflicts.is_object() || js_sys::Array::is_array(&conflicts) {
        return Ok(Vec::new());
    }
    let copy = Object::assign(&Object::new(), conflicts.unchecked_ref());
    let mut resolvers = Vec::new();
    for name in Object::keys(&copy).iter() {
        let value = Reflect::get(&copy, &name).unwrap_or(JsValue::UNDEFINED);
        if let (Some(resolver), Some(name)) = (value.dyn_ref::<Function>(), name.as_string()) {
            let _ = Reflect::set(&copy, &name.clone().into(), &"function".into());
            resolvers.push((Some(name), resolver.clone()));
        }
    }
    let _ = Reflect::set(sync_copy, &"conflicts".into(), &copy);
    Ok(resolvers)
}

/// Checks `sync.conflicts` against the schema: every named collection exists, and every
/// `"function"` strategy came from an actual function.
fn check_conflict_rules(
    options: &SyncOptions,
    resolvers: &Resolvers,
    schema: &DatabaseSchema,
) -> Result<(), StorageError> {
    let has_resolver = |name: Option<&str>| resolvers.iter().any(|(n, _)| n.as_deref() == name);
    for (name, strategy) in &options.conflicts.per_collection {
        schema.position(name).map_err(|_| {
            invalid_options(format!("Wharf.open: sync.conflicts names \"{name}\", which is not a declared collection"))
        })?;
        if *strategy == Strategy::Custom && !has_resolver(Some(name)) {
            return Err(invalid_options(format!(
                "Wharf.open: sync.conflicts[\"{name}\"]: unknown conflict strategy \"function\"; pass the function itself"
            )));
        }
    }
    if options.conflicts.default == Strategy::Custom && !has_resolver(None) {
        return Err(invalid_options(
            "Wharf.open: sync.conflicts: unknown conflict strategy \"function\"; pass the function itself".into(),
        ));
    }
    Ok(())
}

/// Splits the functions JSON cannot carry (`sync.getToken`, resolvers in `sync.conflicts`) from
/// the rest of the options, which are returned as a copy safe to encode.
fn split_functions(options: &JsValue) -> Result<(JsValue, Option<Function>, Resolvers), StorageError> {
    let sync = Reflect::get(options, &"sync".into()).unwrap_or(JsValue::UNDEFINED);
    if !sync.is_object() {
        return Ok((options.clone(), None, Vec::new()));
    }
    let get_token = Reflect::get(&sync, &"getToken".into()).unwrap_or(JsValue::UNDEFINED);
    let get_token = match get_token.is_undefined() {
        true => None,
        false => Some(get_token.dyn_into::<Function>().map_err(|_| {
            invalid_options("Wharf.open: sync.getToken must be a function returning a Promise<string>".into())
        })?),
    };
    let sync_copy = Object::assign(&Object::new(), sync.unchecked_ref());
    let _ = Reflect::delete_property(&sync_copy, &"getToken".into());
    let resolvers = split_resolvers(&sync_copy)?;
    let copy = Object::assign(&Object::new(), options.unchecked_ref());
    let _ = Reflect::set(&copy, &"sync".into(), &sync_copy);
    Ok((copy.into(), get_token, resolvers))
}

/// `options.signal` of `sync()` / `pull()`, or undefined.
fn signal_of(options: &JsValue) -> JsValue {
    if options.is_object() {
        Reflect::get(options, &"signal".into()).unwrap_or(JsValue::UNDEFINED)
    } else {
        JsValue::UNDEFINED
    }
}

fn not_configured() -> JsValue {
    wharf_error(
        ErrorCode::NotConfigured,
        "this database was opened without a `sync` option; pass sync: { url } to Wharf.open",
    )
}

fn to_js_json(value: &impl serde::Serialize) -> JsValue {
    serde_json::to_string(value).ok().and_then(|text| js_sys::JSON::parse(&text).ok()).unwrap_or(JsValue::NULL)
}

/// An open Wharf database: collections of JSON documents in IndexedDB, each local write queued
/// in the outbox in the same transaction.
#[wasm_bindgen]
pub struct Database {
    store: Rc<LocalStore>,
    sync: Option<SyncDriver>,
}

#[wasm_bindgen]
impl Database {
    /// Opens (creating or upgrading) a database. Prefer `Wharf.open`, which also loads the module.
    pub async fn open(options: JsValue) -> Result<Database, JsValue> {
        if !options.is_object() {
            return Err(invalid_options("Wharf.open expects an options object".into()).into());
        }
        let (options, get_token, resolvers) = split_functions(&options)?;
        let json =
            encode_json(&options).map_err(|problem| invalid_options(format!("Wharf.open options: {problem}")))?;
        let schema = DatabaseSchema::from_json(&json).map_err(StorageError::from)?;
        let sync = match parse_json(&json, "the options").map_err(StorageError::from)?.get("sync") {
            None | Some(serde_json::Value::Null) => None,
            Some(value) => Some(SyncOptions::from_value(value).map_err(StorageError::from)?),
        };
        if let Some(options) = &sync {
            check_conflict_rules(options, &resolvers, &schema)?;
            for name in &options.collections {
                schema.position(name).map_err(|_| {
                    invalid_options(format!(
                        "Wharf.open: sync.collections names \"{name}\", which is not a declared collection"
                    ))
                })?;
            }
        }
        let store = LocalStore::open(schema).await?;
        let sync = sync.map(|options| SyncDriver::start(Rc::clone(&store), options, get_token, resolvers));
        Ok(Database { store, sync })
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

    /// Operations the server kept rejecting, to list, edit, retry or discard.
    #[wasm_bindgen(getter, js_name = deadLetters)]
    pub fn dead_letters(&self) -> DeadLetters {
        DeadLetters::new(Rc::clone(&self.store), self.shared().cloned())
    }

    /// Pushes now. Resolves with `{ pending, deadLetters, conflicts }` once nothing is left to
    /// send; rejects with `OFFLINE`, `AUTH`, `STORAGE`, `PAUSED`, `CLOSED`, `ABORTED` (the
    /// signal fired; the push itself goes on) or `NOT_CONFIGURED`.
    #[wasm_bindgen(unchecked_return_type = "Promise<SyncResult>")]
    pub fn sync(&self, #[wasm_bindgen(unchecked_param_type = "{ signal?: AbortSignal }")] options: JsValue) -> Promise {
        let Some(shared) = self.shared() else { return Promise::reject(&not_configured()) };
        abortable(&shared.sync(), &signal_of(&options))
    }

    /// Pulls remote changes now, page after page from the stored cursor until the server has no
    /// more. Resolves with `{ pages, applied, skipped, invalid, cursor }`; rejects with
    /// `OFFLINE`, `AUTH`, `NETWORK`, `SERVER`, `STORAGE`, `PAUSED`, `CLOSED`, `ABORTED` or
    /// `NOT_CONFIGURED`.
    #[wasm_bindgen(unchecked_return_type = "Promise<PullResult>")]
    pub fn pull(&self, #[wasm_bindgen(unchecked_param_type = "{ signal?: AbortSignal }")] options: JsValue) -> Promise {
        let Some(shared) = self.shared() else { return Promise::reject(&not_configured()) };
        abortable(&shared.pull(), &signal_of(&options))
    }

    /// The current sync status, or null when the database was opened without `sync`.
    #[wasm_bindgen(getter, js_name = syncStatus, unchecked_return_type = "SyncStatus | null")]
    pub fn sync_status(&self) -> JsValue {
        self.shared().and_then(|shared| js_sys::JSON::parse(&shared.status_json()).ok()).unwrap_or(JsValue::NULL)
    }

    /// `"leader"` when this context drains the outbox for every tab and worker of the database,
    /// `"follower"` when another context does; null without `sync`.
    #[wasm_bindgen(getter, js_name = syncRole, unchecked_return_type = "\"leader\" | \"follower\" | null")]
    pub fn sync_role(&self) -> JsValue {
        self.shared().map_or(JsValue::NULL, |shared| JsValue::from_str(shared.role()))
    }

    /// Calls `listener(status)` on every status change. Returns the unsubscribe function.
    #[wasm_bindgen(js_name = onStatus, unchecked_return_type = "() => void")]
    pub fn on_status(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(status: SyncStatus) => void")] listener: JsValue,
    ) -> Result<Function, JsValue> {
        self.subscribe("status", listener, "onStatus")
    }

    /// Calls `listener()` when a push run starts. Returns the unsubscribe function.
    #[wasm_bindgen(js_name = onSyncStart, unchecked_return_type = "() => void")]
    pub fn on_sync_start(
        &self,
        #[wasm_bindgen(unchecked_param_type = "() => void")] listener: JsValue,
    ) -> Result<Function, JsValue> {
        self.subscribe("start", listener, "onSyncStart")
    }

    /// Calls `listener({ ok, acked, pending, error })` when a push run ends.
    #[wasm_bindgen(js_name = onSyncEnd, unchecked_return_type = "() => void")]
    pub fn on_sync_end(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(end: SyncEnd) => void")] listener: JsValue,
    ) -> Result<Function, JsValue> {
        self.subscribe("end", listener, "onSyncEnd")
    }

    /// Calls `listener(letters)` when operations move to the dead letters.
    #[wasm_bindgen(js_name = onDeadLetter, unchecked_return_type = "() => void")]
    pub fn on_dead_letter(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(letters: DeadLetter[]) => void")] listener: JsValue,
    ) -> Result<Function, JsValue> {
        self.subscribe("deadLetter", listener, "onDeadLetter")
    }

    /// Calls `listener(changes)` after every committed local write transaction and applied pull
    /// page, with the documents it changed: `[{ collection, key, op, source }]`. Works with or
    /// without sync. Returns the unsubscribe function.
    #[wasm_bindgen(js_name = onChange, unchecked_return_type = "() => void")]
    pub fn on_change(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(changes: ChangeEvent[]) => void")] listener: JsValue,
    ) -> Result<Function, JsValue> {
        let listener =
            listener.dyn_into::<Function>().map_err(|_| invalid_options("onChange expects a function".into()))?;
        Ok(self.store.changes().watch(&listener))
    }

    /// Asks the page's service worker to fire Background Sync `tag` (default `"wharf-sync"`) when
    /// the browser is online, so a worker using `handleBackgroundSync` drains the outbox even
    /// after every tab closed. Resolves `"registered"`, or `"unsupported"` where the browser has
    /// no Background Sync.
    #[wasm_bindgen(js_name = registerBackgroundSync, unchecked_return_type = "Promise<\"registered\" | \"unsupported\">")]
    pub fn register_background_sync(&self, tag: Option<String>) -> Promise {
        if self.sync.is_none() {
            return Promise::reject(&not_configured());
        }
        let tag = tag.filter(|t| !t.is_empty()).unwrap_or_else(|| "wharf-sync".to_owned());
        crate::platform::sync_driver::register_background_sync(&tag)
    }

    /// Calls `listener(conflict)` for every conflict, with both sides and how it ended.
    #[wasm_bindgen(js_name = onConflict, unchecked_return_type = "() => void")]
    pub fn on_conflict(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(conflict: ConflictEvent) => void")] listener: JsValue,
    ) -> Result<Function, JsValue> {
        self.subscribe("conflict", listener, "onConflict")
    }

    /// Stops pushing (status `paused`) until `resumeSync()`; local writes keep queueing.
    #[wasm_bindgen(js_name = pauseSync)]
    pub fn pause_sync(&self) -> Result<(), JsValue> {
        self.shared().ok_or_else(not_configured)?.set_paused(true);
        Ok(())
    }

    /// Resumes pushing after `pauseSync()`.
    #[wasm_bindgen(js_name = resumeSync)]
    pub fn resume_sync(&self) -> Result<(), JsValue> {
        self.shared().ok_or_else(not_configured)?.set_paused(false);
        Ok(())
    }

    /// `{ usage, quota, persisted }`: the storage estimate, null where the browser has none.
    pub fn storage(&self) -> Promise {
        self.store.read(Read::Storage)
    }

    /// Counters: `{ writes, writeTransactions, sync }`, where `sync` is `{ requests, pushed,
    /// acked, duplicates, retries, deadLettered, conflicts, bytesSent, lastLatencyMs }` or null.
    pub fn stats(&self) -> JsValue {
        let stats = self.store.stats();
        let out = Object::new();
        let _ = Reflect::set(&out, &"writes".into(), &JsValue::from_f64(stats.writes as f64));
        let _ = Reflect::set(&out, &"writeTransactions".into(), &JsValue::from_f64(stats.write_transactions as f64));
        let sync = self.shared().map_or(JsValue::NULL, |shared| to_js_json(&shared.stats()));
        let _ = Reflect::set(&out, &"sync".into(), &sync);
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
        if let Some(sync) = &self.sync {
            sync.close();
        }
        self.store.close();
    }
}

impl Database {
    fn shared(&self) -> Option<&Rc<SyncShared>> {
        self.sync.as_ref().map(SyncDriver::shared)
    }

    fn subscribe(&self, kind: &'static str, listener: JsValue, method: &str) -> Result<Function, JsValue> {
        let shared = self.shared().ok_or_else(not_configured)?;
        let listener =
            listener.dyn_into::<Function>().map_err(|_| invalid_options(format!("{method} expects a function")))?;
        let id = shared.add_listener(kind, listener);
        let weak = Rc::downgrade(shared);
        let unsubscribe = Closure::<dyn FnMut()>::new(move || {
            if let Some(shared) = weak.upgrade() {
                shared.remove_listener(id);
            }
        });
        Ok(unsubscribe.into_js_value().unchecked_into())
    }
}
