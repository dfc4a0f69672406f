//! The `DeadLetters` JavaScript class (`db.deadLetters`): the operations the server kept
//! rejecting, parked with their last error, to be listed, fixed, retried or discarded.

use std::rc::Rc;

use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::json::encode_document;
use crate::core::CoreError;
use crate::platform::dead_letters::{discard, edit_letter, list_json, retry};
use crate::platform::sync_driver::SyncShared;
use crate::platform::{LocalStore, StorageError};

/// Operations the server rejected for good (or that ran out of attempts), oldest first.
#[wasm_bindgen]
pub struct DeadLetters {
    store: Rc<LocalStore>,
    sync: Option<Rc<SyncShared>>,
}

impl DeadLetters {
    pub(crate) fn new(store: Rc<LocalStore>, sync: Option<Rc<SyncShared>>) -> DeadLetters {
        DeadLetters { store, sync }
    }
}

fn optional_id(id: &JsValue, method: &str) -> Result<Option<String>, StorageError> {
    if id.is_undefined() || id.is_null() {
        return Ok(None);
    }
    id.as_string().filter(|s| !s.is_empty()).map(Some).ok_or_else(|| {
        CoreError::InvalidOptions(format!("deadLetters.{method} expects a dead letter id (a string)")).into()
    })
}

/// One request to the dead-letter store. Every method goes through `DeadLetters::run`, so the
/// module carries one async state machine for them all instead of one per method.
enum Request {
    List,
    Retry(Option<String>),
    Edit(String, String),
    Discard(Option<String>),
}

impl DeadLetters {
    fn run(&self, request: Result<Request, StorageError>) -> Promise {
        let store = Rc::clone(&self.store);
        let sync = self.sync.clone();
        future_to_promise(async move {
            let request = request?;
            let changes_letters = !matches!(request, Request::List);
            let answer = match request {
                Request::List => {
                    let text = list_json(&store).await?;
                    js_sys::JSON::parse(&text).map_err(StorageError::from_js)?
                }
                Request::Retry(id) => JsValue::from(retry(&store, id).await?),
                Request::Edit(id, json) => {
                    edit_letter(&store, &id, &json).await?;
                    JsValue::UNDEFINED
                }
                Request::Discard(id) => JsValue::from(discard(&store, id).await?),
            };
            // A step of the drainer (here or in another tab) pushes what was retried and
            // publishes a status with the new count, which is how every tab hears of the change.
            if let (true, Some(sync)) = (changes_letters, sync) {
                sync.on_write_here();
            }
            Ok(answer)
        })
    }
}

#[wasm_bindgen]
impl DeadLetters {
    /// Every dead letter: `{ id, seq, collection, key, op, value?, patch?, createdAt, attempts,
    /// lastError: { code, message, status? }, deadAt, edited }`.
    pub fn list(&self) -> Promise {
        self.run(Ok(Request::List))
    }

    /// Queues the letter `id` (or every letter, without an argument) again and starts a push.
    /// An unedited letter keeps its id, so the server still recognises it if it had applied it.
    /// Resolves with the number queued; rejects with `NOT_FOUND` for an unknown id.
    pub fn retry(&self, id: JsValue) -> Promise {
        self.run(optional_id(&id, "retry").map(Request::Retry))
    }

    /// Replaces the letter's payload: the whole document for a put (same key), the patch for a
    /// patch. A later `retry(id)` sends it as a new write and updates the local record.
    pub fn edit(&self, id: JsValue, value: JsValue) -> Promise {
        self.run(optional_id(&id, "edit").and_then(|id| {
            let id = id.ok_or_else(|| CoreError::InvalidOptions("deadLetters.edit expects an id".into()))?;
            let payload = encode_document(&value, "the edited value")?;
            Ok(Request::Edit(id, payload.text))
        }))
    }

    /// Deletes the letter `id` for good; resolves with 1, or 0 if it was not there.
    pub fn discard(&self, id: JsValue) -> Promise {
        self.run(optional_id(&id, "discard").and_then(|id| {
            let id =
                id.ok_or_else(|| CoreError::InvalidOptions("deadLetters.discard expects an id; use clear()".into()))?;
            Ok(Request::Discard(Some(id)))
        }))
    }

    /// Deletes every dead letter; resolves with how many went.
    pub fn clear(&self) -> Promise {
        self.run(Ok(Request::Discard(None)))
    }
}
