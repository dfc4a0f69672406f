//! The sync loop's side of coordinating contexts (`js/coordinate.js`): which tab, worker or
//! service worker of a database drains (the leader), and what the others (followers) do instead:
//! forward `sync()`/`pull()`, wake the leader when they write, and show the leader's status and
//! events as their own. Only the leader keeps the live socket open.
//!
//! The JavaScript side owns the election (Web Locks or an IndexedDB lease, heartbeats, handoff
//! to a visible tab); this file holds the callbacks it calls and cancels them on drop.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::store::LocalStore;
use super::sync_driver::{LiveChannel, SyncShared};
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
    #[wasm_bindgen(method)]
    pub fn broadcast(this: &Coordinator, pairs: &Array);
    #[wasm_bindgen(method, js_name = setEligible)]
    pub fn set_eligible(this: &Coordinator, eligible: bool);
    /// The loop has nothing in flight (a promised handoff may happen now).
    #[wasm_bindgen(method)]
    pub fn idle(this: &Coordinator);
    #[wasm_bindgen(method)]
    fn stop(this: &Coordinator);
}

/// Contexts elect one drainer among those that sync the database the same way: a pull-only page
/// must not drain for a service worker that pushes, nor a context of another server's.
fn group_name(database: &str, options: &SyncOptions) -> String {
    let direction = match (options.push, options.pull) {
        (true, true) => "both",
        (true, false) => "push",
        _ => "pull",
    };
    format!("{database}|{direction}|{}|{}", options.url, options.collections.join(","))
}

/// The coordinator of one open database and the callbacks it holds; stops it on drop.
pub struct Coordination {
    coordinator: Coordinator,
    live: Rc<RefCell<Option<LiveChannel>>>,
    _role: Closure<dyn FnMut(bool)>,
    _events: Closure<dyn FnMut(Array)>,
    _serve: Closure<dyn FnMut(String) -> Promise>,
    _kick: Closure<dyn FnMut()>,
    _db: Closure<dyn FnMut() -> Promise>,
}

impl Coordination {
    /// Joins the election for `store`'s database; `context_id` names this context on the channel
    /// and in the push requests' `X-Wharf-Context` header.
    pub fn start(
        shared: &Rc<SyncShared>,
        store: &Rc<LocalStore>,
        options: &SyncOptions,
        get_token: Option<&Function>,
        context_id: &str,
    ) -> Coordination {
        let live: Rc<RefCell<Option<LiveChannel>>> = Rc::default();
        let role = {
            let weak = Rc::downgrade(shared);
            let live = Rc::clone(&live);
            let wants_live = options.pull && options.live;
            let options = options.clone();
            let get_token = get_token.cloned();
            Closure::<dyn FnMut(bool)>::new(move |leading: bool| {
                let Some(shared) = weak.upgrade() else { return };
                if leading && !shared.is_closed() {
                    if wants_live && live.borrow().is_none() {
                        let channel = LiveChannel::start(&shared, &options, get_token.as_ref());
                        *live.borrow_mut() = Some(channel);
                    }
                    shared.request_pull();
                } else {
                    let channel = live.borrow_mut().take();
                    drop(channel); // closes the socket
                    shared.forward_waiters();
                }
            })
        };
        let events = {
            let weak = Rc::downgrade(shared);
            Closure::<dyn FnMut(Array)>::new(move |pairs: Array| {
                if let Some(shared) = weak.upgrade() {
                    for pair in pairs.iter() {
                        let pair = Array::from(&pair);
                        if let (Some(kind), Some(json)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
                            shared.publish_remote(&kind, json);
                        }
                    }
                }
            })
        };
        let serve = {
            let weak = Rc::downgrade(shared);
            Closure::<dyn FnMut(String) -> Promise>::new(move |kind: String| match weak.upgrade() {
                Some(shared) => shared.serve(&kind),
                None => Promise::reject(&JsValue::from(js_sys::Error::new("the database was closed"))),
            })
        };
        let kick = {
            let weak = Rc::downgrade(shared);
            Closure::<dyn FnMut()>::new(move || {
                if let Some(shared) = weak.upgrade() {
                    shared.on_local_write();
                }
            })
        };
        let db = {
            let store = Rc::downgrade(store);
            Closure::<dyn FnMut() -> Promise>::new(move || {
                let store = store.clone();
                future_to_promise(async move {
                    let store = store.upgrade().ok_or_else(|| JsValue::from_str("closed"))?;
                    store.on_connection(|db| Ok(db.clone())).await.map(JsValue::from).map_err(|e| e.to_js())
                })
            })
        };
        let hooks = Object::new();
        let set = |name: &str, f: &JsValue| {
            let _ = Reflect::set(&hooks, &JsValue::from_str(name), f);
        };
        set("role", role.as_ref());
        set("events", events.as_ref());
        set("serve", serve.as_ref());
        set("kick", kick.as_ref());
        set("db", db.as_ref());
        let coordinator = Coordinator::new(
            &group_name(&store.schema().name, options),
            options.coordination.as_str(),
            context_id,
            options.leader_timeout_ms,
            &hooks,
        );
        Coordination { coordinator, live, _role: role, _events: events, _serve: serve, _kick: kick, _db: db }
    }

    pub fn coordinator(&self) -> &Coordinator {
        &self.coordinator
    }

    /// Leaves the election and closes the live socket.
    pub fn stop(&self) {
        self.coordinator.stop();
        let channel = self.live.borrow_mut().take();
        drop(channel);
    }
}

impl Drop for Coordination {
    fn drop(&mut self) {
        self.stop();
    }
}
