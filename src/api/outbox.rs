//! The `Outbox` JavaScript class: a read-only view of the queued local changes.

use std::rc::Rc;

use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::core::OUTBOX_STORE;
use crate::platform::LocalStore;

/// The queue of local changes waiting to be pushed to the server.
#[wasm_bindgen]
pub struct Outbox {
    store: Rc<LocalStore>,
}

impl Outbox {
    pub(crate) fn new(store: Rc<LocalStore>) -> Outbox {
        Outbox { store }
    }
}

#[wasm_bindgen]
impl Outbox {
    /// Pending entries, oldest first, with their schedule fields.
    pub fn snapshot(&self) -> Promise {
        let store = Rc::clone(&self.store);
        future_to_promise(async move { store.outbox_snapshot().await.map(JsValue::from).map_err(JsValue::from) })
    }

    /// Number of pending entries.
    pub fn count(&self) -> Promise {
        let store = Rc::clone(&self.store);
        future_to_promise(async move { store.count(OUTBOX_STORE).await.map_err(JsValue::from) })
    }
}
