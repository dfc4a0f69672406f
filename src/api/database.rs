//! The `Database` JavaScript class: opening, collections, the outbox, dead letters, storage
//! health, and the sync surface (`sync()`, status, events, pause/resume).

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;

use super::collection::Collection;
use super::dead_letters::DeadLetters;
use super::debug::Debug;
use super::json::encode_json;
use super::outbox::Outbox;
use crate::core::conflict::Strategy;
use crate::core::sync_options::SyncOptions;
use crate::core::{parse_json, CoreError, DatabaseSchema, ErrorCode};
use crate::platform::changes::ChangeHub;
use crate::platform::connection::{self, delete_database, storage_info};
use crate::platform::encryption::VaultSlot;
use crate::platform::error::wharf_error;
use crate::platform::hooks::hook;
use crate::platform::host::{abortable, register_background_sync, SyncSetup};
use crate::platform::{Host, PlatformError};

#[wasm_bindgen]
extern "C" {
    /// A promise, for `then` with functions that return a value.
    type Thenable;
    #[wasm_bindgen(method)]
    fn then(this: &Thenable, fulfilled: &JsValue, rejected: &JsValue) -> Promise;
}

#[wasm_bindgen(typescript_custom_section)]
const SYNC_TYPES: &str = r#"import type { ChangeEvent, ConflictEvent, DeadLetter, DebugReport, LiveValue, PullEnd, PullResult, SyncEnd, SyncResult, SyncStatus } from "./index.js";"#;

fn invalid_options(message: String) -> PlatformError {
    CoreError::InvalidOptions(message).into()
}

/// Conflict resolver functions by collection (`None`: every collection).
type Resolvers = Vec<(Option<String>, Function)>;

/// Takes the resolver functions out of a copy of `sync.conflicts`, leaving `"function"` in their
/// place for the JSON form.
fn split_resolvers(sync_copy: &Object) -> Result<Resolvers, PlatformError> {
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
) -> Result<(), PlatformError> {
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

/// The functions of `Wharf.open`'s options, which JSON cannot carry.
struct Functions {
    get_token: Option<Function>,
    fetch: Option<Function>,
    transport: Option<Object>,
    /// `options.log`: receives each sync event with its level.
    log: Option<Function>,
    resolvers: Resolvers,
    /// The collections' `migrate` functions, by collection name.
    migrations: Object,
    /// `encryption.key`, or undefined.
    key: JsValue,
}

/// Takes the collections' `migrate` functions out of a copy of `collections`, leaving
/// `"function"` in their place for the core, which checks the rest of each declaration.
fn split_migrations(options: &JsValue, copy: &Object) -> Result<Object, PlatformError> {
    let migrations = Object::new();
    let declared = Reflect::get(options, &"collections".into()).unwrap_or(JsValue::UNDEFINED);
    let Some(declared) = declared.dyn_ref::<Array>() else { return Ok(migrations) };
    let copied = Array::new();
    for (i, collection) in declared.iter().enumerate() {
        let migrate = match collection.is_object() {
            true => Reflect::get(&collection, &"migrate".into()).unwrap_or(JsValue::UNDEFINED),
            false => JsValue::UNDEFINED,
        };
        if migrate.is_undefined() {
            copied.push(&collection);
            continue;
        }
        if !migrate.is_function() {
            return Err(invalid_options(format!(
                "Wharf.open: collections[{i}].migrate must be a function (doc, fromVersion) => doc"
            )));
        }
        let name = Reflect::get(&collection, &"name".into()).unwrap_or(JsValue::UNDEFINED);
        let _ = Reflect::set(&migrations, &name, &migrate);
        let entry = Object::assign(&Object::new(), collection.unchecked_ref());
        let _ = Reflect::set(&entry, &"migrate".into(), &"function".into());
        copied.push(&entry);
    }
    let _ = Reflect::set(copy, &"collections".into(), &copied);
    Ok(migrations)
}

/// Takes `encryption` out of the copy: the app's `CryptoKey` (undefined without encryption).
/// WebCrypto itself checks that it is an AES-GCM key allowed to encrypt and decrypt.
fn split_encryption(options: &JsValue, copy: &Object) -> Result<JsValue, PlatformError> {
    let encryption = Reflect::get(options, &"encryption".into()).unwrap_or(JsValue::UNDEFINED);
    let _ = Reflect::delete_property(copy, &"encryption".into());
    if encryption.is_undefined() {
        return Ok(JsValue::UNDEFINED);
    }
    let key = match encryption.is_object() {
        true => Reflect::get(&encryption, &"key".into()).unwrap_or(JsValue::UNDEFINED),
        false => JsValue::UNDEFINED,
    };
    if !key.is_object() {
        return Err(invalid_options("Wharf.open: encryption must be { key }, with an AES-GCM CryptoKey".into()));
    }
    Ok(key)
}

/// `owner[name]` as a function, if given (`owner` is `sync`, or `sync.transport`: `path`).
fn function_option(owner: &JsValue, path: &str, name: &str, expected: &str) -> Result<Option<Function>, PlatformError> {
    let value = Reflect::get(owner, &name.into()).unwrap_or(JsValue::UNDEFINED);
    if value.is_undefined() {
        return Ok(None);
    }
    value
        .dyn_into::<Function>()
        .map(Some)
        .map_err(|_| invalid_options(format!("Wharf.open: {path}.{name} must be {expected}")))
}

/// `sync.transport`, checked: an object with `push` and `pull` functions (and maybe `live`). The
/// options keep `{ live }` in its place, so the core knows one is there and whether it pokes.
fn split_transport(sync: &JsValue, copy: &Object) -> Result<Option<Object>, PlatformError> {
    let transport = Reflect::get(sync, &"transport".into()).unwrap_or(JsValue::UNDEFINED);
    if transport.is_undefined() {
        return Ok(None);
    }
    if !transport.is_object() {
        return Err(invalid_options("Wharf.open: sync.transport must be an object with push and pull".into()));
    }
    for name in ["push", "pull"] {
        let expected = "a function returning a Promise";
        function_option(&transport, "sync.transport", name, expected)?
            .ok_or_else(|| invalid_options(format!("Wharf.open: sync.transport.{name} must be {expected}")))?;
    }
    let live = function_option(&transport, "sync.transport", "live", "a function returning an unsubscribe function")?;
    let shape = Object::new();
    let _ = Reflect::set(&shape, &"live".into(), &live.is_some().into());
    let _ = Reflect::set(copy, &"transport".into(), &shape);
    Ok(Some(transport.unchecked_into()))
}

/// Splits the functions JSON cannot carry (`sync.getToken`, `sync.fetch`, `sync.transport`,
/// resolvers in `sync.conflicts`) from the rest of the options, which are returned as a copy safe
/// to encode.
fn split_functions(options: &JsValue) -> Result<(JsValue, Functions), PlatformError> {
    let log = function_option(options, "options", "log", "a function receiving { level, event, data, at }")?;
    let copy = Object::assign(&Object::new(), options.unchecked_ref());
    let _ = Reflect::delete_property(&copy, &"log".into());
    let migrations = split_migrations(options, &copy)?;
    let key = split_encryption(options, &copy)?;
    let sync = Reflect::get(options, &"sync".into()).unwrap_or(JsValue::UNDEFINED);
    if !sync.is_object() {
        return Ok((
            copy.into(),
            Functions { get_token: None, fetch: None, transport: None, log, resolvers: Vec::new(), migrations, key },
        ));
    }
    let get_token = function_option(&sync, "sync", "getToken", "a function returning a Promise<string>")?;
    let fetch = function_option(&sync, "sync", "fetch", "a function like the global fetch")?;
    let sync_copy = Object::assign(&Object::new(), sync.unchecked_ref());
    let _ = Reflect::delete_property(&sync_copy, &"getToken".into());
    let _ = Reflect::delete_property(&sync_copy, &"fetch".into());
    let transport = split_transport(&sync, &sync_copy)?;
    if transport.is_some() && fetch.is_some() {
        return Err(invalid_options(
            "Wharf.open: sync.fetch serves sync.url; a transport does its own requests".into(),
        ));
    }
    let resolvers = split_resolvers(&sync_copy)?;
    let _ = Reflect::set(&copy, &"sync".into(), &sync_copy);
    Ok((copy.into(), Functions { get_token, fetch, transport, log, resolvers, migrations, key }))
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

fn parsed(json: Option<String>) -> JsValue {
    json.and_then(|text| js_sys::JSON::parse(&text).ok()).unwrap_or(JsValue::NULL)
}

fn function(listener: JsValue, method: &str) -> Result<Function, JsValue> {
    listener.dyn_into::<Function>().map_err(|_| invalid_options(format!("{method} expects a function")).to_js())
}

/// An open Wharf database: collections of JSON documents in IndexedDB, each local write queued
/// in the outbox in the same transaction.
#[wasm_bindgen]
pub struct Database {
    host: Rc<Host>,
}

#[wasm_bindgen]
impl Database {
    /// Opens (creating or upgrading) a database. Prefer `Wharf.open`, which also loads the module.
    #[wasm_bindgen(unchecked_return_type = "Promise<Database>")]
    pub fn open(options: JsValue) -> Promise {
        match Database::validate(&options) {
            Ok((schema, setup, migrations, key)) => Database::start(schema, setup, &migrations, &key),
            Err(error) => Promise::reject(&error),
        }
    }

    /// Deletes a database and everything in it; waits until every connection has closed.
    #[wasm_bindgen(js_name = deleteDatabase)]
    pub fn delete_database(name: JsValue) -> Promise {
        match name.as_string().filter(|n| !n.is_empty()) {
            Some(name) => delete_database(&name),
            None => Promise::reject(&invalid_options("deleteDatabase needs a non-empty name".into()).to_js()),
        }
    }

    /// The database name.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.host.schema().name.clone()
    }

    /// The collection with this name; throws `UNKNOWN_COLLECTION` if it was not declared.
    pub fn collection(&self, name: JsValue) -> Result<Collection, JsValue> {
        let name = name.as_string().unwrap_or_default();
        let position = self.host.schema().position(&name)?;
        Ok(Collection::new(Rc::clone(&self.host), position))
    }

    /// The queue of local changes waiting to be pushed.
    #[wasm_bindgen(getter)]
    pub fn outbox(&self) -> Outbox {
        Outbox::new(Rc::clone(&self.host))
    }

    /// Operations the server kept rejecting, to list, edit, retry or discard.
    #[wasm_bindgen(getter, js_name = deadLetters)]
    pub fn dead_letters(&self) -> DeadLetters {
        DeadLetters::new(Rc::clone(&self.host))
    }

    /// Diagnostics: `db.debug.export()` for a bug report.
    #[wasm_bindgen(getter)]
    pub fn debug(&self) -> Debug {
        Debug::new(Rc::clone(&self.host))
    }

    /// Pushes now. Resolves with `{ pending, deadLetters, conflicts }` once nothing is left to
    /// send; rejects with `OFFLINE`, `AUTH`, `STORAGE`, `PAUSED`, `CLOSED`, `ABORTED` (the
    /// signal fired; the push itself goes on) or `NOT_CONFIGURED`.
    #[wasm_bindgen(unchecked_return_type = "Promise<SyncResult>")]
    pub fn sync(&self, #[wasm_bindgen(unchecked_param_type = "{ signal?: AbortSignal }")] options: JsValue) -> Promise {
        abortable(&self.host.sync_call(false), &signal_of(&options))
    }

    /// Pulls remote changes now, page after page from the stored cursor until the server has no
    /// more. Resolves with `{ pages, applied, skipped, invalid, cursor }`; rejects with
    /// `OFFLINE`, `AUTH`, `NETWORK`, `SERVER`, `STORAGE`, `PAUSED`, `CLOSED`, `ABORTED` or
    /// `NOT_CONFIGURED`.
    #[wasm_bindgen(unchecked_return_type = "Promise<PullResult>")]
    pub fn pull(&self, #[wasm_bindgen(unchecked_param_type = "{ signal?: AbortSignal }")] options: JsValue) -> Promise {
        abortable(&self.host.sync_call(true), &signal_of(&options))
    }

    /// The current sync status, or null when the database was opened without `sync`.
    #[wasm_bindgen(getter, js_name = syncStatus, unchecked_return_type = "SyncStatus | null")]
    pub fn sync_status(&self) -> JsValue {
        parsed(self.host.status_json())
    }

    /// `"leader"` when this context drains the outbox for every tab and worker of the database,
    /// `"follower"` when another context does; null without `sync`.
    #[wasm_bindgen(getter, js_name = syncRole, unchecked_return_type = "\"leader\" | \"follower\" | null")]
    pub fn sync_role(&self) -> JsValue {
        self.host.role().map_or(JsValue::NULL, JsValue::from_str)
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

    /// Calls `listener()` when this context finds the database emptied under the app
    /// (`sync.expectSynced`): evicted by the browser, or a new device. `status.evicted` stays
    /// true until a full pull has refilled it. Returns the unsubscribe function.
    #[wasm_bindgen(js_name = onEvicted, unchecked_return_type = "() => void")]
    pub fn on_evicted(
        &self,
        #[wasm_bindgen(unchecked_param_type = "() => void")] listener: JsValue,
    ) -> Result<Function, JsValue> {
        self.subscribe("evicted", listener, "onEvicted")
    }

    /// Calls `listener(end)` when a pull run ends, in the background or for `db.pull()`: `ok`,
    /// `complete`, `error`, and for a run that succeeded what `db.pull()` resolves with.
    /// Returns the unsubscribe function.
    #[wasm_bindgen(js_name = onPull, unchecked_return_type = "() => void")]
    pub fn on_pull(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(end: PullEnd) => void")] listener: JsValue,
    ) -> Result<Function, JsValue> {
        self.subscribe("pull", listener, "onPull")
    }

    /// Calls `listener(changes)` after every committed local write transaction and applied pull
    /// page, with the documents it changed: `[{ collection, key, op, source }]`. Works with or
    /// without sync. Returns the unsubscribe function.
    #[wasm_bindgen(js_name = onChange, unchecked_return_type = "() => void")]
    pub fn on_change(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(changes: ChangeEvent[]) => void")] listener: JsValue,
    ) -> Result<Function, JsValue> {
        Ok(self.host.hub.watch(&function(listener, "onChange")?))
    }

    /// Asks the page's service worker to fire Background Sync `tag` (default `"wharf-sync"`) when
    /// the browser is online, so a worker using `handleBackgroundSync` drains the outbox even
    /// after every tab closed. Resolves `"registered"`, or `"unsupported"` where the browser has
    /// no Background Sync.
    #[wasm_bindgen(js_name = registerBackgroundSync, unchecked_return_type = "Promise<\"registered\" | \"unsupported\">")]
    pub fn register_background_sync(&self, tag: Option<String>) -> Promise {
        if self.host.role().is_none() {
            return Promise::reject(&not_configured());
        }
        register_background_sync(&tag.filter(|t| !t.is_empty()).unwrap_or_else(|| "wharf-sync".to_owned()))
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
        Ok(self.host.set_paused(true)?)
    }

    /// Resumes pushing after `pauseSync()`.
    #[wasm_bindgen(js_name = resumeSync)]
    pub fn resume_sync(&self) -> Result<(), JsValue> {
        Ok(self.host.set_paused(false)?)
    }

    /// `{ usage, quota, persisted }`: the storage estimate, null where the browser has none.
    pub fn storage(&self) -> Promise {
        storage_info()
    }

    /// Counters: `{ writes, writeTransactions, sync }`, where `sync` is `{ requests, pushed,
    /// acked, duplicates, retries, deadLettered, conflicts, bytesSent, lastLatencyMs }` or null.
    pub fn stats(&self) -> JsValue {
        let out = Object::new();
        let _ = Reflect::set(&out, &"writes".into(), &JsValue::from_f64(self.host.conn.writes()));
        let _ =
            Reflect::set(&out, &"writeTransactions".into(), &JsValue::from_f64(self.host.conn.write_transactions()));
        let _ = Reflect::set(&out, &"sync".into(), &parsed(self.host.stats_json()));
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
        Ok(self.host.conn.listen(&function(listener, "onVersionChange")?))
    }

    /// Closes the database. Writes already placed in a transaction still commit; writes waiting
    /// for a reconnect and every later call fail with `CLOSED`.
    pub fn close(&self) {
        self.host.close();
    }
}

impl Database {
    /// Checks `Wharf.open`'s options: the schema, and the sync setup if `sync` is given.
    fn validate(options: &JsValue) -> Result<(DatabaseSchema, Option<SyncSetup>, Object, JsValue), JsValue> {
        if !options.is_object() {
            return Err(invalid_options("Wharf.open expects an options object".into()).into());
        }
        let (options, Functions { get_token, fetch, transport, log, resolvers, migrations, key }) =
            split_functions(options)?;
        let json =
            encode_json(&options).map_err(|problem| invalid_options(format!("Wharf.open options: {problem}")))?;
        let schema = DatabaseSchema::from_json(&json)?;
        let sync = match parse_json(&json, "the options")?.get("sync") {
            None | Some(serde_json::Value::Null) => None,
            Some(value) => Some(SyncOptions::from_value(value)?.fit(&schema)),
        };
        if let Some(options) = &sync {
            check_conflict_rules(options, &resolvers, &schema)?;
            for name in &options.collections {
                schema.pulled(name).ok_or_else(|| {
                    invalid_options(format!(
                        "Wharf.open: sync.collections names \"{name}\", which is not a declared collection that pulls"
                    ))
                })?;
            }
        }
        let setup = sync.map(|options| SyncSetup { options, get_token, fetch, transport, log, resolvers });
        Ok((schema, setup, migrations, key))
    }

    /// Opens the connection, then starts the host: the promise of the database.
    fn start(schema: DatabaseSchema, setup: Option<SyncSetup>, migrations: &Object, key: &JsValue) -> Promise {
        let hub = ChangeHub::new(&schema.name);
        let slot: Rc<RefCell<Weak<Host>>> = Rc::default();
        let vault: VaultSlot = Rc::default();
        let schema = Rc::new(schema);
        let opening = connection::open(Rc::clone(&schema), &hub, Rc::clone(&slot), migrations, key, &vault);
        // Called once each, by `then` (hooks.rs: one closure signature for every callback).
        let failed = {
            let hub = hub.clone();
            hook(move |error, _, _, _, _| {
                hub.close();
                Ok(Promise::reject(&error).into())
            })
        };
        let mut start = Some((schema, hub, slot, setup, migrations.clone()));
        let opened = hook(move |conn, _, _, _, _| {
            let Some((schema, hub, slot, setup, migrations)) = start.take() else { return Ok(JsValue::UNDEFINED) };
            let schema = Rc::try_unwrap(schema).unwrap_or_else(|shared| (*shared).clone());
            let vault = vault.borrow().clone();
            let host = Host::start(schema, conn.unchecked_into(), hub, slot, setup, migrations, vault);
            Ok(JsValue::from(Database { host }))
        });
        opening.unchecked_ref::<Thenable>().then(&opened, &failed)
    }

    fn subscribe(&self, kind: &'static str, listener: JsValue, method: &str) -> Result<Function, JsValue> {
        self.host.role().ok_or_else(not_configured)?;
        let listener = function(listener, method)?;
        Ok(self.host.listen(kind, &listener)?)
    }
}
