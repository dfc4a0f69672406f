//! The `DeadLetters` JavaScript class (`db.deadLetters`): the operations the server kept
//! rejecting, parked with their last error, to be listed, fixed, retried or discarded. Each call
//! is one of the core's transactions (`core::dead_letters`).

use std::rc::Rc;

use js_sys::Promise;
use wasm_bindgen::prelude::*;

use super::json::encode_document;
use crate::core::replica::Request;
use crate::core::CoreError;
use crate::platform::Host;

/// Operations the server rejected for good (or that ran out of attempts), oldest first.
#[wasm_bindgen]
pub struct DeadLetters {
    host: Rc<Host>,
}

impl DeadLetters {
    pub(crate) fn new(host: Rc<Host>) -> DeadLetters {
        DeadLetters { host }
    }

    fn run(&self, request: Result<Request, CoreError>) -> Promise {
        match request {
            Ok(request) => self.host.request(request),
            Err(error) => Promise::reject(&error.into()),
        }
    }
}

fn optional_id(id: &JsValue, method: &str) -> Result<Option<String>, CoreError> {
    if id.is_undefined() || id.is_null() {
        return Ok(None);
    }
    id.as_string()
        .filter(|s| !s.is_empty())
        .map(Some)
        .ok_or_else(|| CoreError::InvalidOptions(format!("deadLetters.{method} expects a dead letter id (a string)")))
}

#[wasm_bindgen]
impl DeadLetters {
    /// Every dead letter: `{ id, seq, collection, key, op, value?, patch?, createdAt, attempts,
    /// lastError: { code, message, status? }, deadAt, edited }`.
    pub fn list(&self) -> Promise {
        self.run(Ok(Request::ListDead))
    }

    /// Queues the letter `id` (or every letter, without an argument) again and starts a push.
    /// An unedited letter keeps its id, so the server still recognises it if it had applied it.
    /// Resolves with the number queued; rejects with `NOT_FOUND` for an unknown id.
    pub fn retry(&self, id: JsValue) -> Promise {
        self.run(optional_id(&id, "retry").map(Request::RetryDead))
    }

    /// Replaces the letter's payload: the whole document for a put (same key), the patch for a
    /// patch. A later `retry(id)` sends it as a new write and updates the local record.
    pub fn edit(&self, id: JsValue, value: JsValue) -> Promise {
        self.run(optional_id(&id, "edit").and_then(|id| {
            let id = id.ok_or_else(|| CoreError::InvalidOptions("deadLetters.edit expects an id".into()))?;
            let payload = encode_document(&value, "the edited value")?;
            Ok(Request::EditDead { id, json: payload.text })
        }))
    }

    /// Deletes the letter `id` for good; resolves with 1, or 0 if it was not there.
    pub fn discard(&self, id: JsValue) -> Promise {
        self.run(optional_id(&id, "discard").and_then(|id| {
            let id =
                id.ok_or_else(|| CoreError::InvalidOptions("deadLetters.discard expects an id; use clear()".into()))?;
            Ok(Request::DiscardDead(Some(id)))
        }))
    }

    /// Deletes every dead letter; resolves with how many went.
    pub fn clear(&self) -> Promise {
        self.run(Ok(Request::DiscardDead(None)))
    }
}
