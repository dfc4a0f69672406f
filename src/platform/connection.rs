//! The IndexedDB connection of one open database (`js/idb.js`): opening and upgrading it as
//! `core::schema::plan_upgrade` plans, placing local writes, running the core's transactions and
//! plain reads. This file gives the JavaScript its hooks into Rust: the upgrade plan, the error
//! for a failure, and the host's executor callbacks (`host.rs`), all synchronous.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;

use super::changes::ChangeHub;
use super::error::{message_of, PlatformError};
use super::host::Host;
use crate::core::schema::{plan_upgrade, DatabaseSchema, StoreShape, UpgradeStep};

#[wasm_bindgen(module = "/src/platform/js/idb.js")]
extern "C" {
    /// One open database's IndexedDB connection.
    #[derive(Clone)]
    pub type Connection;
    #[wasm_bindgen(static_method_of = Connection, js_name = open)]
    fn open_js(name: &str, scope: &Array, hooks: &Object) -> Promise;
    /// Places local writes (`[store, key, record, id, op, hlc]` each); resolves once committed.
    #[wasm_bindgen(method)]
    pub fn place(this: &Connection, writes: &Array, now: f64, isolated: bool) -> Promise;
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
    pub fn arm_fault(point: &str);
}

/// The host a connection reports to, set once the host exists (the connection is opened first).
pub type HostSlot = Rc<RefCell<Weak<Host>>>;

fn set(target: &Object, name: &str, value: &JsValue) {
    let _ = Reflect::set(target, &JsValue::from_str(name), value);
}

/// The core's upgrade plan for the stores the host describes (JSON), as the steps' JSON.
fn plan(schema: &DatabaseSchema, shapes: &str) -> Result<String, JsValue> {
    let shapes = StoreShape::list_from_json(shapes).map_err(|e| PlatformError::from(e).to_js())?;
    let steps = plan_upgrade(&shapes, schema).map_err(|e| PlatformError::from(e).to_js())?;
    Ok(UpgradeStep::encode_plan(&steps))
}

/// Opens (creating or upgrading) the database `schema` describes: the promise of the connection.
pub fn open(schema: Rc<DatabaseSchema>, hub: &ChangeHub, host: HostSlot) -> Promise {
    let hooks = Object::new();
    let planner = Closure::<dyn FnMut(String) -> Result<String, JsValue>>::new({
        let schema = Rc::clone(&schema);
        move |shapes: String| plan(&schema, &shapes)
    });
    let error = Closure::<dyn FnMut(JsValue, JsValue) -> JsValue>::new(|name: JsValue, message: JsValue| {
        let name = name.as_string().unwrap_or_else(|| "Error".to_owned());
        PlatformError::storage(&name, &message.as_string().unwrap_or_else(|| message_of(&message))).to_js()
    });
    let committed = Closure::<dyn FnMut(f64)>::new({
        let host = Rc::clone(&host);
        move |writes: f64| {
            let host = host.borrow().upgrade();
            if let Some(host) = host {
                host.local_writes_committed(writes as u32);
            }
        }
    });
    let decide = Closure::<dyn FnMut(u32, String) -> String>::new({
        let host = Rc::clone(&host);
        move |ticket: u32, results: String| {
            let host = host.borrow().upgrade();
            host.map_or_else(|| r#"{"abort":"the database was closed"}"#.to_owned(), |h| h.decide(ticket, &results))
        }
    });
    let ended = Closure::<dyn FnMut(u32, Option<String>, Option<String>)>::new({
        let host = Rc::clone(&host);
        move |ticket: u32, name: Option<String>, message: Option<String>| {
            let host = host.borrow().upgrade();
            if let Some(host) = host {
                host.ended(ticket, name, message.unwrap_or_default());
            }
        }
    });
    // JavaScript owns the hooks: a transaction may outlive every Rust handle to the database.
    set(&hooks, "plan", &planner.into_js_value());
    set(&hooks, "error", &error.into_js_value());
    set(&hooks, "committed", &committed.into_js_value());
    set(&hooks, "decide", &decide.into_js_value());
    set(&hooks, "ended", &ended.into_js_value());
    set(&hooks, "hub", hub);
    set(&hooks, "persist", &JsValue::from_bool(schema.persist));
    let scope: Array = schema.write_scope().into_iter().map(JsValue::from).collect();
    Connection::open_js(&schema.name, &scope, &hooks)
}
