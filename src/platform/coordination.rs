//! Which context drains a database (`js/coordinate.js`): the tabs, workers and service worker
//! that open it with the same sync options elect one leader, which pushes and pulls for all.
//! The others forward `sync()`/`pull()` to it, wake it when they write, and show its status and
//! events as their own. This file holds the callbacks the election calls into the host; the
//! JavaScript side owns the election itself (Web Locks or an IndexedDB lease, heartbeats, the
//! handoff to a visible tab).

use std::rc::{Rc, Weak};

use js_sys::{Array, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;

use super::hooks::{hook, text};
use super::host::Host;
use crate::core::sync_options::SyncOptions;

#[wasm_bindgen(module = "/src/platform/js/coordinate.js")]
extern "C" {
    /// One context's seat in the election of its database's drainer.
    #[derive(Clone)]
    pub type Coordinator;
    #[wasm_bindgen(constructor)]
    fn new(name: &str, mode: &str, id: &str, timeout_ms: u32, hooks: &Object) -> Coordinator;
    /// Whether the sync loop should step now.
    #[wasm_bindgen(method, js_name = isLeading)]
    pub fn is_leading(this: &Coordinator) -> bool;
    /// Whether this context holds the role (even while it pauses stepping for a handoff).
    #[wasm_bindgen(method)]
    pub fn holds(this: &Coordinator) -> bool;
    /// A follower's `sync()` or `pull()`, run by the leader.
    #[wasm_bindgen(method)]
    pub fn request(this: &Coordinator, kind: &str) -> Promise;
    #[wasm_bindgen(method)]
    pub fn kick(this: &Coordinator);
    #[wasm_bindgen(method, js_name = setEligible)]
    pub fn set_eligible(this: &Coordinator, eligible: bool);
    /// The loop has nothing in flight (a promised handoff may happen now).
    #[wasm_bindgen(method)]
    pub fn idle(this: &Coordinator);
    #[wasm_bindgen(method)]
    fn stop(this: &Coordinator);
}

/// Contexts elect one drainer among those that sync the database the same way: a pull-only page
/// must not drain for a service worker that pushes, nor a context of another server's, nor a
/// context signed in as another user (`sync.user`: it would push only its own user's writes).
fn group_name(database: &str, options: &SyncOptions) -> String {
    let direction = match (options.push, options.pull) {
        (true, true) => "both",
        (true, false) => "push",
        _ => "pull",
    };
    let user = options.user.as_deref().unwrap_or("");
    format!("{database}|{direction}|{}|{}|{user}", options.url, options.collection_list())
}

/// The coordinator of one open database; stops it on drop.
pub struct Coordination {
    coordinator: Coordinator,
}

fn with_host<T>(host: &Weak<Host>, f: impl FnOnce(&Host) -> T) -> Option<T> {
    host.upgrade().filter(|h| !h.is_closed()).map(|h| f(&h))
}

impl Coordination {
    /// Joins the election for `host`'s database; `context_id` names this context on the channel.
    pub fn start(host: &Rc<Host>, options: &SyncOptions, context_id: &str) -> Coordination {
        let weak = Rc::downgrade(host);
        let hooks = Object::new();
        let set = |name: &str, f: JsValue| {
            let _ = Reflect::set(&hooks, &JsValue::from_str(name), &f);
        };
        let role = {
            let weak = weak.clone();
            hook(move |_leading, _, _, _, _| {
                with_host(&weak, Host::role_changed);
                Ok(JsValue::UNDEFINED)
            })
        };
        let events = {
            let weak = weak.clone();
            hook(move |pairs, _, _, _, _| {
                let pairs: Array = pairs.unchecked_into();
                with_host(&weak, |host| {
                    for pair in pairs.iter() {
                        let pair = Array::from(&pair);
                        if let (Some(kind), Some(json)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
                            host.deliver_remote(&kind, json);
                        }
                    }
                });
                Ok(JsValue::UNDEFINED)
            })
        };
        let serve = {
            let weak = weak.clone();
            hook(move |kind, _, _, _, _| {
                let promise = with_host(&weak, |host| host.serve(text(&kind) == "pull", true)).unwrap_or_else(|| {
                    Promise::reject(&super::error::wharf_error(
                        crate::core::ErrorCode::Closed,
                        "the database was closed",
                    ))
                });
                Ok(promise.into())
            })
        };
        let kick = {
            let weak = weak.clone();
            hook(move |_, _, _, _, _| {
                with_host(&weak, |host| host.step(crate::core::host::Event::LocalWrite));
                Ok(JsValue::UNDEFINED)
            })
        };
        let db = {
            let weak = weak.clone();
            hook(move |_, _, _, _, _| Ok(with_host(&weak, |host| host.conn.db()).unwrap_or(JsValue::NULL)))
        };
        set("role", role);
        set("events", events);
        set("serve", serve);
        set("kick", kick);
        set("db", db);
        let name = group_name(&host.schema().name, options);
        let coordinator =
            Coordinator::new(&name, options.coordination.as_str(), context_id, options.leader_timeout_ms, &hooks);
        Coordination { coordinator }
    }

    pub fn coordinator(&self) -> &Coordinator {
        &self.coordinator
    }
}

impl Drop for Coordination {
    fn drop(&mut self) {
        self.coordinator.stop();
    }
}
