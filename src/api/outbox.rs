//! The `Outbox` JavaScript class: a read-only view of the queued local changes.

use std::rc::Rc;

use js_sys::Promise;
use wasm_bindgen::prelude::*;

use crate::core::OUTBOX_STORE;
use crate::platform::reads::Read;
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
        self.store.read(Read::OutboxSnapshot)
    }

    /// Number of pending entries.
    pub fn count(&self) -> Promise {
        self.store.read(Read::Count { store: OUTBOX_STORE.to_owned() })
    }
}
