//! Reads of the local store: records by key, whole collections, index queries, counts, the
//! outbox, and the storage estimate. Each read is one read-only transaction, created after every
//! write issued before it, so a read always sees the caller's earlier writes.

use std::rc::Rc;

use js_sys::{Array, Object, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::{future_to_promise, JsFuture};
use web_sys::{IdbCursorDirection, IdbKeyRange, StorageEstimate};

use super::error::StorageError;
use super::global::storage_manager;
use super::request::{collect_cursor, request_result};
use super::store::{key_to_js, LocalStore};
use crate::core::schema::Collection;
use crate::core::{Key, KeySelection, ValidQuery, OUTBOX_STORE};

fn js(e: JsValue) -> StorageError {
    StorageError::from_js(e)
}

fn json_to_js(value: &serde_json::Value) -> Result<JsValue, StorageError> {
    js_sys::JSON::parse(&value.to_string()).map_err(js)
}

fn key_range(selection: &KeySelection) -> Result<JsValue, StorageError> {
    Ok(match selection {
        KeySelection::All => JsValue::NULL,
        KeySelection::Only(value) => IdbKeyRange::only(&json_to_js(value)?).map_err(js)?.into(),
        KeySelection::Bound { lower, upper, lower_open, upper_open } => match (lower, upper) {
            (Some(l), Some(u)) => IdbKeyRange::bound_with_lower_open_and_upper_open(
                &json_to_js(l)?,
                &json_to_js(u)?,
                *lower_open,
                *upper_open,
            ),
            (Some(l), None) => IdbKeyRange::lower_bound_with_open(&json_to_js(l)?, *lower_open),
            (None, Some(u)) => IdbKeyRange::upper_bound_with_open(&json_to_js(u)?, *upper_open),
            (None, None) => return Ok(JsValue::NULL),
        }
        .map_err(js)?
        .into(),
    })
}

/// A read, named so that every read shares one promise adapter (each `future_to_promise`
/// instantiation costs a few kilobytes of WebAssembly).
#[derive(Clone)]
pub enum Read {
    Get { collection: usize, key: Key },
    GetMany { collection: usize, keys: Vec<Key> },
    GetAll { collection: usize },
    Query { collection: usize, query: ValidQuery },
    Count { store: String },
    OutboxSnapshot,
    Storage,
}

impl LocalStore {
    /// Runs `read` and returns the promise of its result (rejected with a `WharfError`).
    pub fn read(self: &Rc<Self>, read: Read) -> Promise {
        let store = Rc::clone(self);
        future_to_promise(async move { store.run(read).await.map_err(JsValue::from) })
    }

    async fn run(self: &Rc<Self>, read: Read) -> Result<JsValue, StorageError> {
        let collection = |at: usize| &self.schema().collections[at];
        match read {
            Read::Get { collection: at, key } => self.get(collection(at), &key).await,
            Read::GetMany { collection: at, keys } => self.get_many(collection(at), &keys).await.map(Into::into),
            Read::GetAll { collection: at } => self.get_all(collection(at)).await,
            Read::Query { collection: at, query } => self.query(collection(at), &query).await,
            Read::Count { store } => self.count(&store).await,
            Read::OutboxSnapshot => self.outbox_snapshot().await.map(Into::into),
            Read::Storage => self.storage_info().await,
        }
    }

    /// The record with `key`, or `undefined`.
    async fn get(self: &Rc<Self>, collection: &Collection, key: &Key) -> Result<JsValue, StorageError> {
        let tx = self.read_transaction(&[collection.name()]).await?;
        let request = tx.object_store(collection.name()).map_err(js)?.get(&key_to_js(key)).map_err(js)?;
        request_result(&request).await
    }

    /// The records with `keys`, in order, `undefined` where missing; one transaction.
    async fn get_many(self: &Rc<Self>, collection: &Collection, keys: &[Key]) -> Result<Array, StorageError> {
        let tx = self.read_transaction(&[collection.name()]).await?;
        let store = tx.object_store(collection.name()).map_err(js)?;
        let requests = keys.iter().map(|key| store.get(&key_to_js(key)).map_err(js)).collect::<Result<Vec<_>, _>>()?;
        let values = Array::new_with_length(requests.len() as u32);
        for (i, request) in requests.iter().enumerate() {
            values.set(i as u32, request_result(request).await?);
        }
        Ok(values)
    }

    /// Every record of a collection, in key order.
    async fn get_all(self: &Rc<Self>, collection: &Collection) -> Result<JsValue, StorageError> {
        let tx = self.read_transaction(&[collection.name()]).await?;
        let request = tx.object_store(collection.name()).map_err(js)?.get_all().map_err(js)?;
        request_result(&request).await
    }

    /// The records an index query selects, in index order (or reversed).
    async fn query(self: &Rc<Self>, collection: &Collection, query: &ValidQuery) -> Result<JsValue, StorageError> {
        let range = key_range(&query.selection)?;
        let tx = self.read_transaction(&[collection.name()]).await?;
        let index = tx.object_store(collection.name()).map_err(js)?.index(&query.index).map_err(js)?;
        if query.reverse {
            let request = index.open_cursor_with_range_and_direction(&range, IdbCursorDirection::Prev).map_err(js)?;
            return collect_cursor(&request, query.limit).await.map(Into::into);
        }
        let request = match query.limit {
            Some(limit) => index.get_all_with_key_and_limit(&range, limit),
            None => index.get_all_with_key(&range),
        }
        .map_err(js)?;
        request_result(&request).await
    }

    /// Number of records in a collection.
    async fn count(self: &Rc<Self>, store_name: &str) -> Result<JsValue, StorageError> {
        let tx = self.read_transaction(&[store_name]).await?;
        let request = tx.object_store(store_name).map_err(js)?.count().map_err(js)?;
        request_result(&request).await
    }

    /// Pending outbox entries, oldest first, each with its `seq`.
    async fn outbox_snapshot(self: &Rc<Self>) -> Result<Array, StorageError> {
        let tx = self.read_transaction(&[OUTBOX_STORE]).await?;
        let store = tx.object_store(OUTBOX_STORE).map_err(js)?;
        let values = store.get_all().map_err(js)?;
        let keys = store.get_all_keys().map_err(js)?;
        let values: Array = request_result(&values).await?.unchecked_into();
        let keys: Array = request_result(&keys).await?.unchecked_into();
        let seq = JsValue::from_str("seq");
        for (entry, key) in values.iter().zip(keys.iter()) {
            Reflect::set(&entry, &seq, &key).map_err(js)?;
        }
        Ok(values)
    }

    /// `{ usage, quota, persisted }` from the StorageManager; nulls where the browser has none.
    async fn storage_info(self: &Rc<Self>) -> Result<JsValue, StorageError> {
        let info = Object::new();
        let (mut usage, mut quota, mut persisted) = (JsValue::NULL, JsValue::NULL, JsValue::FALSE);
        if let Some(manager) = storage_manager() {
            if let Ok(estimate) = manager.estimate() {
                if let Ok(estimate) = JsFuture::from(estimate).await {
                    let estimate: StorageEstimate = estimate.unchecked_into();
                    usage = estimate.get_usage().map(JsValue::from_f64).unwrap_or(JsValue::NULL);
                    quota = estimate.get_quota().map(JsValue::from_f64).unwrap_or(JsValue::NULL);
                }
            }
            if let Ok(answer) = manager.persisted() {
                persisted = JsFuture::from(answer).await.unwrap_or(JsValue::FALSE);
            }
        }
        for (name, value) in [("usage", usage), ("quota", quota), ("persisted", persisted)] {
            Reflect::set(&info, &JsValue::from_str(name), &value).map_err(js)?;
        }
        Ok(info.into())
    }
}
