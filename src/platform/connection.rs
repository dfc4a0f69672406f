//! The IndexedDB connection of one open database (`js/idb.js`): opening and upgrading it as
//! `core::migration::plan_with_migrations` plans, placing local writes, running the core's transactions and
//! plain reads. This file gives the JavaScript its hooks into Rust: the upgrade plan, the error
//! for a failure, whether a failure killed the connection (and how often what died with it runs
//! again, and when a transaction counts as hung), and the host's executor callbacks (`host.rs`),
//! all synchronous.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;

use super::changes::ChangeHub;
use super::encryption::{self, VaultSlot};
use super::error::{message_of, PlatformError};
use super::hooks::{hook, number, text};
use super::host::Host;
use crate::core::error::{connection_lost, HUNG_TRANSACTION_MS, RECONNECT_RETRIES};
use crate::core::migration::{self, plan_with_migrations};
use crate::core::schema::DatabaseSchema;
use crate::core::upgrade::{StoreShape, UpgradeStep};
use crate::core::vault::with_reseals;

#[wasm_bindgen(module = "/src/platform/js/idb.js")]
extern "C" {
    /// One open database's IndexedDB connection.
    #[derive(Clone)]
    pub type Connection;
    #[wasm_bindgen(static_method_of = Connection, js_name = open)]
    fn open_js(name: &str, scope: &Array, hooks: &Object) -> Promise;
    /// Places local writes (`[store, key, record, id, op, hlc]` each), their outbox entries
    /// queued under `user` (`sync.user`, or undefined); resolves once committed.
    #[wasm_bindgen(method)]
    pub fn place(this: &Connection, writes: &Array, now: f64, isolated: bool, user: &JsValue) -> Promise;
    /// Reads in one read-only transaction; `reads` is the core's JSON (`tx::Read::encode_list`).
    #[wasm_bindgen(method)]
    pub fn read(this: &Connection, stores: &Array, reads: &str, shape: &str) -> Promise;
    /// A function that runs `read(stores, reads, shape)` each time it is called.
    #[wasm_bindgen(method)]
    pub fn reader(this: &Connection, stores: &Array, reads: &str, shape: &str) -> Function;
    /// Adds a version-change listener; returns the function that removes it.
    #[wasm_bindgen(method)]
    pub fn listen(this: &Connection, listener: &Function) -> Function;
    #[wasm_bindgen(method)]
    pub fn close(this: &Connection);
    #[wasm_bindgen(method, getter)]
    pub fn writes(this: &Connection) -> f64;
    #[wasm_bindgen(method, getter, js_name = writeTransactions)]
    pub fn write_transactions(this: &Connection) -> f64;
    /// The open `IDBDatabase` (null while reconnecting), for the drain lease.
    #[wasm_bindgen(method, getter)]
    pub fn db(this: &Connection) -> JsValue;

    #[wasm_bindgen(js_name = deleteDatabase)]
    pub fn delete_database(name: &str) -> Promise;
    #[wasm_bindgen(js_name = storageInfo)]
    pub fn storage_info() -> Promise;
    #[wasm_bindgen(js_name = armFault)]
    pub fn arm_fault(point: &str, times: u32, ms: u32);
}

/// The host a connection reports to, set once the host exists (the connection is opened first).
pub type HostSlot = Rc<RefCell<Weak<Host>>>;

fn set(target: &Object, name: &str, value: &JsValue) {
    let _ = Reflect::set(target, &JsValue::from_str(name), value);
}

/// The core's upgrade plan for the stores the host describes (JSON), as the steps' JSON; with the
/// reseals an encrypted database needs once its data key is known.
fn plan(schema: &DatabaseSchema, shapes: &str, sealed: bool) -> Result<String, JsValue> {
    let shapes = StoreShape::list_from_json(shapes).map_err(|e| PlatformError::from(e).to_js())?;
    let mut steps = plan_with_migrations(&shapes, schema).map_err(|e| PlatformError::from(e).to_js())?;
    if sealed {
        steps = with_reseals(steps, &shapes, schema);
    }
    Ok(UpgradeStep::encode_plan(&steps))
}

/// Checks what a collection's `migrate` made of its values (`migration::check`: the values to
/// store, as JSON), or turns what it threw (or, with `key`, what storing that document's
/// migrated value failed with) into the error the upgrade fails with.
fn check_migrated(
    schema: &DatabaseSchema,
    store: &str,
    migrated: &JsValue,
    thrown: &JsValue,
    key: &JsValue,
) -> Result<String, JsValue> {
    let position = schema.position(store).map_err(|e| PlatformError::from(e).to_js())?;
    let collection = &schema.collections[position];
    let checked = match thrown.as_string() {
        Some(message) => Err(migration::threw(collection, key.as_string().as_deref(), &message)),
        None => migration::check(collection, &text(migrated)),
    };
    checked.map_err(|e| PlatformError::from(e).to_js())
}

/// Opens (creating or upgrading) the database `schema` describes: the promise of the connection.
/// `migrations`: the collections' `migrate` functions by name; `key`: `encryption.key` (or
/// undefined), whose vault `vault` receives once the data key is unwrapped.
pub fn open(
    schema: Rc<DatabaseSchema>,
    hub: &ChangeHub,
    host: HostSlot,
    migrations: &Object,
    key: &JsValue,
    vault: &VaultSlot,
) -> Promise {
    let hooks = Object::new();
    encryption::install(&hooks, &schema, key, vault);
    let planner = hook({
        let schema = Rc::clone(&schema);
        let vault = Rc::clone(vault);
        move |shapes, _, _, _, _| plan(&schema, &text(&shapes), vault.borrow().is_some()).map(JsValue::from)
    });
    let migrated = hook({
        let schema = Rc::clone(&schema);
        move |store, migrated, thrown, key, _| {
            // A failure is returned for idb.js to abort with when the app's function threw or a
            // migrated document could not be stored.
            match check_migrated(&schema, &text(&store), &migrated, &thrown, &key) {
                Ok(accepted) => Ok(JsValue::from(accepted)),
                Err(error) if thrown.is_string() => Ok(error),
                Err(error) => Err(error),
            }
        }
    });
    let error = hook(|name, message, _, _, _| {
        let name = name.as_string().unwrap_or_else(|| "Error".to_owned());
        Ok(PlatformError::storage(&name, &message.as_string().unwrap_or_else(|| message_of(&message))).to_js())
    });
    let lost = hook(|name, message, _, _, _| Ok(JsValue::from_bool(connection_lost(&text(&name), &text(&message)))));
    let committed = hook({
        let host = Rc::clone(&host);
        move |writes, _, _, _, _| {
            let host = host.borrow().upgrade();
            if let Some(host) = host {
                host.local_writes_committed(number(&writes) as u32);
            }
            Ok(JsValue::UNDEFINED)
        }
    });
    let decide = hook({
        let host = Rc::clone(&host);
        move |ticket, results, _, _, _| {
            let host = host.borrow().upgrade();
            let round = host.map_or_else(
                || r#"{"abort":"the database was closed"}"#.to_owned(),
                |h| h.decide(number(&ticket) as u32, &text(&results)),
            );
            Ok(JsValue::from(round))
        }
    });
    let ended = hook({
        let host = Rc::clone(&host);
        move |ticket, name, message, _, _| {
            let host = host.borrow().upgrade();
            if let Some(host) = host {
                host.ended(number(&ticket) as u32, name.as_string(), text(&message));
            }
            Ok(JsValue::UNDEFINED)
        }
    });
    // JavaScript owns the hooks: a transaction may outlive every Rust handle to the database.
    set(&hooks, "plan", &planner);
    set(&hooks, "migrated", &migrated);
    set(&hooks, "migrations", migrations);
    set(&hooks, "error", &error);
    set(&hooks, "committed", &committed);
    set(&hooks, "decide", &decide);
    set(&hooks, "ended", &ended);
    set(&hooks, "hub", hub);
    set(&hooks, "lost", &lost);
    set(&hooks, "retries", &JsValue::from(RECONNECT_RETRIES));
    set(&hooks, "hungMs", &JsValue::from(HUNG_TRANSACTION_MS));
    set(&hooks, "persist", &JsValue::from_bool(schema.persist));
    let scope: Array = schema.write_scope().into_iter().map(JsValue::from).collect();
    Connection::open_js(&schema.name, &scope, &hooks)
}
