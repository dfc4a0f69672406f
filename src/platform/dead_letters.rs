//! The dead-letter store in IndexedDB: list, retry (back into the outbox, in one transaction with
//! the letter's removal and, for an edited letter, its local record), edit, discard. The rules
//! for what a retry queues live in `core::dead_letters`; this file only reads and writes.

use std::rc::Rc;

use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::IdbDatabase;

use super::changes::ChangeHub;
use super::error::StorageError;
use super::global::{now_ms, random_seed};
use super::store::LocalStore;
use crate::core::dead_letters::{edit, requeue, Requeue};
use crate::core::{CoreError, DeadLetter, OpIdGenerator};

#[wasm_bindgen(module = "/src/platform/js/sync_io.js")]
extern "C" {
    #[wasm_bindgen(js_name = listDead, catch)]
    fn list_dead_js(db: &IdbDatabase) -> Result<Promise, JsValue>;
    #[wasm_bindgen(js_name = requeueDead, catch)]
    fn requeue_dead_js(
        db: &IdbDatabase,
        scope: Vec<String>,
        requeue: &str,
        hub: &ChangeHub,
    ) -> Result<Promise, JsValue>;
    #[wasm_bindgen(js_name = editDead, catch)]
    fn edit_dead_js(db: &IdbDatabase, id: &str, field: &str, payload: &str) -> Result<Promise, JsValue>;
    #[wasm_bindgen(js_name = discardDead, catch)]
    fn discard_dead_js(db: &IdbDatabase, id: Option<String>) -> Result<Promise, JsValue>;
}

fn not_found(id: &str) -> StorageError {
    CoreError::NotFound { collection: "dead letters".to_owned(), key: format!("{id:?}") }.into()
}

async fn settle(promise: Promise) -> Result<JsValue, StorageError> {
    JsFuture::from(promise).await.map_err(StorageError::from_js)
}

/// Every dead letter, oldest death first, as JSON text.
pub async fn list_json(store: &Rc<LocalStore>) -> Result<String, StorageError> {
    let promise = store.on_connection(list_dead_js).await?;
    Ok(settle(promise).await?.as_string().unwrap_or_else(|| "[]".to_owned()))
}

async fn letters(store: &Rc<LocalStore>) -> Result<Vec<DeadLetter>, StorageError> {
    let text = list_json(store).await?;
    crate::core::wire::parse(&text)
        .and_then(|v| crate::core::wire::array(&v, "dead letters", crate::core::wire::dead_letter))
        .map_err(|e| StorageError::Dom {
            name: "DataError".to_owned(),
            message: format!("a dead letter is unreadable: {e}"),
        })
}

/// Moves the letter `id` (or every letter, for `None`) back into the outbox. Resolves with how
/// many were queued; `NOT_FOUND` if `id` names no letter.
pub async fn retry(store: &Rc<LocalStore>, id: Option<String>) -> Result<u32, StorageError> {
    let mut chosen = letters(store).await?;
    if let Some(id) = &id {
        chosen.retain(|letter| &letter.id == id);
        if chosen.is_empty() {
            return Err(not_found(id));
        }
    }
    if chosen.is_empty() {
        return Ok(0);
    }
    let now = now_ms();
    let mut ids = OpIdGenerator::new(random_seed());
    let mut scope: Vec<String> = Vec::new();
    let mut queued: Vec<Requeue> = Vec::with_capacity(chosen.len());
    for letter in &chosen {
        if letter.edited {
            store.schema().position(&letter.collection)?;
            if !scope.contains(&letter.collection) {
                scope.push(letter.collection.clone());
            }
        }
        let mut again = requeue(letter, now, || ids.next_id(now).as_str().to_owned());
        again.entry.hlc = Some(store.stamp()); // a retry is a write of now, for last-writer-wins
        queued.push(again);
    }
    let json = serde_json::to_string(&queued).unwrap_or_else(|_| "[]".to_owned());
    let promise = store.on_connection(|db| requeue_dead_js(db, scope.clone(), &json, store.changes())).await?;
    Ok(settle(promise).await?.as_f64().unwrap_or(0.0) as u32)
}

/// Replaces the payload of letter `id` with `json` (a whole document for a put, a patch for a
/// patch), validated first: bad input changes nothing.
pub async fn edit_letter(store: &Rc<LocalStore>, id: &str, json: &str) -> Result<(), StorageError> {
    let letter = letters(store).await?.into_iter().find(|l| l.id == id).ok_or_else(|| not_found(id))?;
    let position = store.schema().position(&letter.collection)?;
    let key_path = &store.schema().collections[position].key_path;
    let change = edit(&letter, json, key_path)?;
    let payload = change.payload.to_string();
    let promise = store.on_connection(|db| edit_dead_js(db, id, change.field, &payload)).await?;
    match settle(promise).await?.as_bool() {
        Some(true) => Ok(()),
        _ => Err(not_found(id)),
    }
}

/// Deletes letter `id` (or all, for `None`); resolves with how many were removed.
pub async fn discard(store: &Rc<LocalStore>, id: Option<String>) -> Result<u32, StorageError> {
    let promise = store.on_connection(|db| discard_dead_js(db, id.clone())).await?;
    Ok(settle(promise).await?.as_f64().unwrap_or(0.0) as u32)
}
