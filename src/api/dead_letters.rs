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

#[wasm_bindgen]
impl DeadLetters {
    /// Every dead letter: `{ id, seq, collection, key, op, value?, patch?, createdAt, attempts,
    /// lastError: { code, message, status? }, deadAt, edited }`.
    pub fn list(&self) -> Promise {
        let store = Rc::clone(&self.store);
        future_to_promise(async move {
            let text = list_json(&store).await?;
            js_sys::JSON::parse(&text).map_err(|e| StorageError::from_js(e).to_js())
        })
    }

    /// Queues the letter `id` (or every letter, without an argument) again and starts a push.
    /// An unedited letter keeps its id, so the server still recognises it if it had applied it.
    /// Resolves with the number queued; rejects with `NOT_FOUND` for an unknown id.
    pub fn retry(&self, id: JsValue) -> Promise {
        let store = Rc::clone(&self.store);
        let sync = self.sync.clone();
        let id = optional_id(&id, "retry");
        future_to_promise(async move {
            let queued = retry(&store, id?).await?;
            if let Some(sync) = sync {
                sync.kick();
            }
            Ok(JsValue::from(queued))
        })
    }

    /// Replaces the letter's payload: the whole document for a put (same key), the patch for a
    /// patch. A later `retry(id)` sends it as a new write and updates the local record.
    pub fn edit(&self, id: JsValue, value: JsValue) -> Promise {
        let store = Rc::clone(&self.store);
        let checked = optional_id(&id, "edit").and_then(|id| {
            let id = id.ok_or_else(|| CoreError::InvalidOptions("deadLetters.edit expects an id".into()))?;
            let payload = encode_document(&value, "the edited value")?;
            Ok((id, payload.text))
        });
        future_to_promise(async move {
            let (id, json) = checked?;
            edit_letter(&store, &id, &json).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Deletes the letter `id` for good; resolves with 1, or 0 if it was not there.
    pub fn discard(&self, id: JsValue) -> Promise {
        let store = Rc::clone(&self.store);
        let id = optional_id(&id, "discard").and_then(|id| {
            id.ok_or_else(|| CoreError::InvalidOptions("deadLetters.discard expects an id; use clear()".into()).into())
        });
        future_to_promise(async move { Ok(JsValue::from(discard(&store, Some(id?)).await?)) })
    }

    /// Deletes every dead letter; resolves with how many went.
    pub fn clear(&self) -> Promise {
        let store = Rc::clone(&self.store);
        future_to_promise(async move { Ok(JsValue::from(discard(&store, None).await?)) })
    }
}
