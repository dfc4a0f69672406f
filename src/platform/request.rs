//! IndexedDB requests as futures.
//!
//! The request's own `onsuccess`/`onerror` slots receive a Promise's resolve/reject functions, so
//! awaiting a request allocates no Rust closure. Continuations run as microtasks inside the
//! success event, while the transaction is still active, so a transaction can span awaits. Write
//! transactions and their commit promises are started by `write_batch`.

use js_sys::{Array, Promise};
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

/// Why a transaction aborted, from its `error` (null when the abort was explicit).
pub fn abort_reason(tx: &IdbTransaction) -> StorageError {
    match tx.error() {
        Some(exception) if exception.name() != "AbortError" => StorageError::from_dom(&exception),
        _ => StorageError::Aborted("the transaction was aborted".to_owned()),
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
