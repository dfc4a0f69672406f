//! The `Collection` JavaScript class: CRUD and index queries on one collection.
//!
//! Writes validate synchronously and are placed in IndexedDB during the call (see
//! `platform::write_batch`); every method returns a promise, and bad input rejects it with a
//! `WharfError` without writing anything.

use std::rc::Rc;

use js_sys::{Array, Function, Promise};
use wasm_bindgen::prelude::*;

use super::json::{encode_document, encode_json, key_from_js};
use crate::core::schema::Collection as CollectionSchema;
use crate::core::{parse_json, CoreError, Key, ValidQuery};
use crate::platform::changes::{live_document, live_query};
use crate::platform::error::wharf_error;
use crate::platform::reads::Read;
use crate::platform::write_batch::PreparedWrite;
use crate::platform::{LocalStore, StorageError};

/// A collection of JSON documents identified by the key at its key path.
#[wasm_bindgen]
pub struct Collection {
    store: Rc<LocalStore>,
    position: usize,
}

fn reject(error: impl Into<StorageError>) -> Promise {
    Promise::reject(&error.into().to_js())
}

/// Names the offending element of a batch in the error, keeping its code.
fn in_batch(position: usize, error: StorageError) -> JsValue {
    wharf_error(error.code(), &format!("documents[{position}]: {error}"))
}

impl Collection {
    pub(crate) fn new(store: Rc<LocalStore>, position: usize) -> Collection {
        Collection { store, position }
    }

    fn schema(&self) -> &CollectionSchema {
        &self.store.schema().collections[self.position]
    }

    fn prepare_put(&self, doc: &JsValue) -> Result<PreparedWrite, StorageError> {
        let doc = encode_document(doc, "a document")?;
        self.store.prepare_put(self.schema(), &doc.text, doc.value)
    }

    fn prepare_put_many(&self, docs: &JsValue) -> Result<Vec<PreparedWrite>, JsValue> {
        let invalid = |message: String| StorageError::from(CoreError::InvalidDocument(message)).to_js();
        if !Array::is_array(docs) {
            return Err(invalid("putMany expects an array of documents".into()));
        }
        let docs = encode_document(docs, "the documents").map_err(|e| StorageError::from(e).to_js())?;
        let parsed = parse_json(&docs.text, "the documents").map_err(|e| StorageError::from(e).to_js())?;
        let items = parsed.as_array().map(Vec::as_slice).unwrap_or_default();
        let records: &Array = docs.value.unchecked_ref();
        items
            .iter()
            .enumerate()
            .map(|(i, doc)| {
                let record = records.get(i as u32);
                self.store.prepare_put_parsed(self.schema(), doc, record).map_err(|e| in_batch(i, e))
            })
            .collect()
    }

    fn prepare_patch(&self, key: &JsValue, partial: &JsValue) -> Result<(PreparedWrite, Key), StorageError> {
        let key = key_from_js(key)?;
        let patch = encode_document(partial, "a patch")?;
        self.store.prepare_patch(self.schema(), key, &patch.text, patch.value)
    }

    fn keys(values: &JsValue) -> Result<Vec<Key>, StorageError> {
        if !Array::is_array(values) {
            return Err(CoreError::InvalidKey("getMany expects an array of keys".into()).into());
        }
        let array: &Array = values.unchecked_ref();
        array.iter().map(|k| key_from_js(&k).map_err(StorageError::from)).collect()
    }
}

#[wasm_bindgen]
impl Collection {
    /// The collection name.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.schema().name().to_owned()
    }

    /// Stores a document (insert or replace) and queues it; resolves once committed.
    pub fn put(&self, doc: JsValue) -> Promise {
        match self.prepare_put(&doc) {
            Ok(write) => self.store.submit_writes(vec![write]),
            Err(e) => reject(e),
        }
    }

    /// Stores several documents in one transaction: all of them or, on any bad document, none.
    #[wasm_bindgen(js_name = putMany)]
    pub fn put_many(&self, docs: JsValue) -> Promise {
        match self.prepare_put_many(&docs) {
            Ok(writes) if writes.is_empty() => Promise::resolve(&JsValue::UNDEFINED),
            Ok(writes) => self.store.submit_writes(writes),
            Err(e) => Promise::reject(&e),
        }
    }

    /// Shallow-merges `partial` into the stored document (`{ ...current, ...partial }`) and
    /// queues the patch; rejects with `NOT_FOUND` when there is no such document.
    pub fn patch(&self, key: JsValue, partial: JsValue) -> Promise {
        match self.prepare_patch(&key, &partial) {
            Ok(patch) => self.store.submit_patch(patch),
            Err(e) => reject(e),
        }
    }

    /// Deletes a document and queues the deletion (the queued entry is its tombstone until synced).
    pub fn delete(&self, key: JsValue) -> Promise {
        match key_from_js(&key) {
            Ok(key) => self.store.submit_writes(vec![self.store.prepare_delete(self.schema(), key)]),
            Err(e) => reject(e),
        }
    }

    /// The document with this key, or `undefined`.
    pub fn get(&self, key: JsValue) -> Promise {
        match key_from_js(&key) {
            Ok(key) => self.store.read(Read::Get { collection: self.position, key }),
            Err(e) => reject(e),
        }
    }

    /// The documents with these keys, in order, `undefined` where missing.
    #[wasm_bindgen(js_name = getMany)]
    pub fn get_many(&self, keys: JsValue) -> Promise {
        match Collection::keys(&keys) {
            Ok(keys) => self.store.read(Read::GetMany { collection: self.position, keys }),
            Err(e) => reject(e),
        }
    }

    /// Every document, in key order.
    #[wasm_bindgen(js_name = getAll)]
    pub fn get_all(&self) -> Promise {
        self.store.read(Read::GetAll { collection: self.position })
    }

    /// Documents selected on a declared index: `{ index, equals | range, limit, reverse }`.
    pub fn query(&self, query: JsValue) -> Promise {
        let valid = encode_json(&query)
            .map_err(CoreError::InvalidQuery)
            .and_then(|json| ValidQuery::from_json(&json, self.schema()));
        match valid {
            Ok(query) => self.store.read(Read::Query { collection: self.position, query }),
            Err(e) => reject(e),
        }
    }

    /// Number of documents.
    pub fn count(&self) -> Promise {
        self.store.read(Read::Count { store: self.schema().name().to_owned() })
    }

    /// A live query: calls `callback(result)` with the query's result now and again after every
    /// committed local write and applied pull that touches this collection. `query` is what
    /// `query()` takes, or null/undefined for every document. Returns the unsubscribe function;
    /// throws `INVALID_QUERY` (and subscribes nothing) on a bad query.
    #[wasm_bindgen(unchecked_return_type = "() => void")]
    pub fn subscribe(
        &self,
        #[wasm_bindgen(unchecked_param_type = "object | null | undefined")] query: JsValue,
        #[wasm_bindgen(unchecked_param_type = "(result: any[]) => void")] callback: JsValue,
    ) -> Result<Function, JsValue> {
        let callback = callback.dyn_into::<Function>().map_err(|_| {
            StorageError::from(CoreError::InvalidOptions("subscribe expects a callback function".into())).to_js()
        })?;
        let read = if query.is_null() || query.is_undefined() {
            Read::GetAll { collection: self.position }
        } else {
            let valid = encode_json(&query)
                .map_err(CoreError::InvalidQuery)
                .and_then(|json| ValidQuery::from_json(&json, self.schema()))
                .map_err(|e| StorageError::from(e).to_js())?;
            Read::Query { collection: self.position, query: valid }
        };
        let store = Rc::clone(&self.store);
        let run = Closure::<dyn FnMut() -> Promise>::new(move || store.read(read.clone())).into_js_value();
        Ok(live_query(self.store.changes(), self.schema().name(), run.unchecked_ref(), &callback))
    }

    /// Calls `callback(doc)` with the document `key` (undefined when there is none) now and after
    /// every committed change to it, here or in another tab. Returns the unsubscribe function;
    /// throws `INVALID_KEY` (and watches nothing) on a bad key.
    #[wasm_bindgen(unchecked_return_type = "() => void")]
    pub fn watch(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | number")] key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "(doc: any) => void")] callback: JsValue,
    ) -> Result<Function, JsValue> {
        let callback = callback.dyn_into::<Function>().map_err(|_| {
            StorageError::from(CoreError::InvalidOptions("watch expects a callback function".into())).to_js()
        })?;
        let parsed = key_from_js(&key).map_err(|e| StorageError::from(e).to_js())?;
        let store = Rc::clone(&self.store);
        let read = Read::Get { collection: self.position, key: parsed };
        let run = Closure::<dyn FnMut() -> Promise>::new(move || store.read(read.clone())).into_js_value();
        Ok(live_document(self.store.changes(), self.schema().name(), run.unchecked_ref(), &callback, &key))
    }
}
