//! The `Outbox` JavaScript class: a read-only view of the queued local changes.

use std::rc::Rc;

use js_sys::{Array, Promise};
use wasm_bindgen::prelude::*;

use super::collection::encode_reads;
use crate::core::tx::Read;
use crate::core::OUTBOX_STORE;
use crate::platform::Host;

/// The queue of local changes waiting to be pushed to the server.
#[wasm_bindgen]
pub struct Outbox {
    host: Rc<Host>,
}

impl Outbox {
    pub(crate) fn new(host: Rc<Host>) -> Outbox {
        Outbox { host }
    }

    fn read(&self, read: Read, shape: &str) -> Promise {
        self.host.conn.read(&Array::of1(&JsValue::from_str(OUTBOX_STORE)), &encode_reads(&[read]), shape)
    }
}

#[wasm_bindgen]
impl Outbox {
    /// Pending entries, oldest first, with their schedule fields and their `seq`.
    pub fn snapshot(&self) -> Promise {
        self.read(Read::outbox_head(None), "seq")
    }

    /// Number of pending entries.
    pub fn count(&self) -> Promise {
        self.read(Read::count(OUTBOX_STORE), "first")
    }
}
