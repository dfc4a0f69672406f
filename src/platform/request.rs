//! IndexedDB requests and transactions as futures.
//!
//! The request's own `onsuccess`/`onerror` slots receive a Promise's resolve/reject functions, so
//! awaiting a request allocates no Rust closure. Continuations run as microtasks inside the
//! success event, while the transaction is still active, so a transaction can span awaits.

use js_sys::{Array, Function, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbCursorWithValue, IdbRequest, IdbTransaction};

use super::error::StorageError;

/// The result of a request, or its classified error.
pub async fn request_result(request: &IdbRequest) -> Result<JsValue, StorageError> {
    let promise = Promise::new(&mut |resolve, reject| {
        request.set_onsuccess(Some(&resolve));
        request.set_onerror(Some(&reject));
    });
    let outcome = JsFuture::from(promise).await;
    request.set_onsuccess(None);
    request.set_onerror(None);
    match outcome {
        Ok(_) => request.result().map_err(StorageError::from_js),
        Err(_) => Err(match request.error() {
            Ok(Some(exception)) => StorageError::from_dom(&exception),
            _ => StorageError::Aborted("the request failed without an error".to_owned()),
        }),
    }
}

/// A promise that resolves when the transaction commits and rejects with the abort event.
pub fn transaction_settled(tx: &IdbTransaction) -> Promise {
    Promise::new(&mut |resolve, reject| {
        tx.set_oncomplete(Some(&resolve));
        tx.set_onabort(Some(&reject));
    })
}

/// `promise.then(on_fulfilled, on_rejected)` with plain JavaScript functions (long-lived handlers,
/// so no closure is allocated per call).
pub fn then_with(promise: &Promise, on_fulfilled: &Function, on_rejected: &Function) -> Promise {
    let then = Reflect::get(promise, &JsValue::from_str("then")).expect("Promise.prototype.then exists");
    then.unchecked_into::<Function>()
        .call2(promise, on_fulfilled, on_rejected)
        .expect("then() on a native promise does not throw")
        .unchecked_into()
}

/// Why a transaction aborted, from its `error` (null when the abort was explicit).
pub fn abort_reason(tx: &IdbTransaction) -> StorageError {
    match tx.error() {
        Some(exception) if exception.name() != "AbortError" => StorageError::from_dom(&exception),
        _ => StorageError::Aborted("the transaction was aborted".to_owned()),
    }
}

/// Waits for a transaction to commit.
pub async fn transaction_done(tx: &IdbTransaction) -> Result<(), StorageError> {
    match JsFuture::from(transaction_settled(tx)).await {
        Ok(_) => Ok(()),
        Err(_) => Err(abort_reason(tx)),
    }
}

/// Collects the values of a cursor request, stopping after `limit` values.
pub async fn collect_cursor(request: &IdbRequest, limit: Option<u32>) -> Result<Array, StorageError> {
    let values = Array::new();
    loop {
        let cursor = request_result(request).await?;
        if cursor.is_null() || cursor.is_undefined() {
            return Ok(values);
        }
        let cursor: IdbCursorWithValue = cursor.unchecked_into();
        values.push(&cursor.value().map_err(StorageError::from_js)?);
        if limit.is_some_and(|limit| values.length() >= limit) {
            return Ok(values);
        }
        cursor.continue_().map_err(StorageError::from_js)?;
    }
}
