//! The `Collection` JavaScript class: CRUD and index queries on one collection.
//!
//! Writes are validated synchronously (`core::document`) and placed in IndexedDB during the call
//! (group commit, `platform/js/idb.js`); a patch is one of the core's transactions (read the
//! record, merge, queue). Every method returns a promise, and bad input rejects it with a
//! `WharfError` without writing anything.

use std::rc::Rc;

use js_sys::{Array, Function, Promise};
use serde_json::Value;
use wasm_bindgen::prelude::*;

use super::json::{encode_document, encode_json, key_from_js};
use crate::core::replica::Request;
use crate::core::schema::Collection as CollectionSchema;
use crate::core::tx::{Range, Read};
use crate::core::vault::Vault;
use crate::core::{document_key, key_of, parse_json, validate_patch, CoreError, Key, KeySelection, OpKind, ValidQuery};
use crate::platform::changes::{live_document, live_query};
use crate::platform::error::wharf_error;
use crate::platform::{Host, PlatformError};

/// A collection of JSON documents identified by the key at its key path.
#[wasm_bindgen]
pub struct Collection {
    host: Rc<Host>,
    /// The declared collection (name, key path, indexes), read once.
    schema: CollectionSchema,
    /// The name as a JavaScript string, passed with every write.
    name_js: JsValue,
}

fn reject(error: impl Into<PlatformError>) -> Promise {
    Promise::reject(&error.into().to_js())
}

/// Names the offending element of a batch in the error, keeping its code.
fn in_batch(position: usize, error: CoreError) -> JsValue {
    wharf_error(error.code(), &format!("documents[{position}]: {error}"))
}

/// A local write ready to place: its key, the record (for a put) and the kind.
struct Placed {
    key: JsValue,
    record: JsValue,
    op: OpKind,
}

fn key_to_js(key: &Key) -> JsValue {
    match key {
        Key::Text(s) => JsValue::from_str(s),
        Key::Number(n) => JsValue::from_f64(*n),
    }
}

/// The key range of an index query.
fn range_of(selection: &KeySelection) -> Option<Range> {
    match selection {
        KeySelection::All => None,
        KeySelection::Only(value) => Some(Range::only(value.clone())),
        KeySelection::Bound { lower, upper, lower_open, upper_open } => {
            Some(Range { lower: lower.clone(), upper: upper.clone(), lower_open: *lower_open, upper_open: *upper_open })
        }
    }
}

// `live` and `liveDoc` are added by the package entry (src/api/js/index.js), over `subscribe`
// and `watch`; declared here so the generated class carries them.
#[wasm_bindgen(typescript_custom_section)]
const LIVE_TYPES: &str = r#"export interface Collection { live(query?: object | null): LiveValue<any[]>; liveDoc(key: string | number): LiveValue<any>; }"#;

impl Collection {
    pub(crate) fn new(host: Rc<Host>, position: usize) -> Collection {
        let schema = host.schema().collections[position].clone();
        let name_js = JsValue::from_str(schema.name());
        Collection { host, schema, name_js }
    }

    fn name_of(&self) -> String {
        self.schema.name().to_owned()
    }

    /// Places writes in one transaction (joining the one still open in this tick, unless the
    /// collection has a unique index); each gets its op id and clock stamp now, unless the
    /// collection is not pushed (`sync: "pull"` or false): then no id, and no outbox entry.
    fn place(&self, writes: Vec<Placed>) -> Promise {
        let name = &self.name_js;
        let now = js_sys::Date::now();
        let batch = Array::new();
        let queued = self.schema.schema.push;
        self.host.with_clock(|clock| {
            for write in writes {
                let id = if queued { JsValue::from_str(&clock.op_id(now)) } else { JsValue::NULL };
                let hlc = if queued { JsValue::from_str(&clock.stamp(now)) } else { JsValue::NULL };
                let op = JsValue::from_str(write.op.as_str());
                batch.push(&Array::of(&[name.clone(), write.key, write.record, id, op, hlc]));
            }
        });
        self.host.conn.place(&batch, now, self.schema.has_unique_index(), &self.host.user())
    }

    fn prepare_put(&self, doc: &JsValue) -> Result<Placed, CoreError> {
        let doc = encode_document(doc, "a document")?;
        let key = document_key(&doc.text, &self.schema.key_path)?;
        let record = match self.host.vault() {
            Some(vault) => self.sealed(&vault, &parse_json(&doc.text, "a document")?),
            None => doc.value,
        };
        Ok(Placed { key: key_to_js(&key), record, op: OpKind::Put })
    }

    /// The record an encrypted database stores for `doc` (`core::vault`).
    fn sealed(&self, vault: &Vault, doc: &Value) -> JsValue {
        let envelope = crate::core::json_text::text(&vault.seal(self.schema.name(), doc));
        js_sys::JSON::parse(&envelope).unwrap_or(JsValue::NULL)
    }

    fn prepare_put_many(&self, docs: &JsValue) -> Result<Vec<Placed>, JsValue> {
        if !Array::is_array(docs) {
            return Err(CoreError::InvalidDocument("putMany expects an array of documents".into()).into());
        }
        let docs = encode_document(docs, "the documents")?;
        let parsed = parse_json(&docs.text, "the documents")?;
        let items = parsed.as_array().map(Vec::as_slice).unwrap_or_default();
        let records: &Array = docs.value.unchecked_ref();
        let path = &self.schema.key_path;
        let vault = self.host.vault();
        items
            .iter()
            .enumerate()
            .map(|(i, doc)| {
                let key = key_of(doc, path).map_err(|e| in_batch(i, e))?;
                let record = match &vault {
                    Some(vault) => self.sealed(vault, doc),
                    None => records.get(i as u32),
                };
                Ok(Placed { key: key_to_js(&key), record, op: OpKind::Put })
            })
            .collect()
    }

    fn patch_request(&self, key: &JsValue, partial: &JsValue) -> Result<Request, CoreError> {
        let key = key_from_js(key)?;
        let patch = encode_document(partial, "a patch")?;
        validate_patch(&patch.text, &self.schema.key_path, &key)?;
        let patch: Value = parse_json(&patch.text, "a patch")?;
        Ok(Request::Patch { collection: self.name_of(), key, patch })
    }

    fn keys(values: &JsValue) -> Result<Vec<Key>, CoreError> {
        if !Array::is_array(values) {
            return Err(CoreError::InvalidKey("getMany expects an array of keys".into()));
        }
        let array: &Array = values.unchecked_ref();
        array.iter().map(|k| key_from_js(&k)).collect()
    }

    fn query_read(&self, query: &JsValue) -> Result<Read, CoreError> {
        let json = encode_json(query).map_err(CoreError::InvalidQuery)?;
        let valid = ValidQuery::from_json(&json, &self.schema)?;
        Ok(Read::All {
            store: self.name_of(),
            index: Some(valid.index.clone()),
            range: range_of(&valid.selection),
            limit: valid.limit,
            keys: false,
            reverse: valid.reverse,
        })
    }

    fn all_read(&self) -> Read {
        Read::All { store: self.name_of(), index: None, range: None, limit: None, keys: false, reverse: false }
    }

    /// Reads in one read-only transaction over this collection.
    fn read(&self, reads: &[Read], shape: &str) -> Promise {
        self.host.conn.read(&self.stores(), &encode_reads(reads), shape)
    }

    fn stores(&self) -> Array {
        Array::of1(&self.name_js)
    }
}

/// The reads as the executor reads them (`tx::Read::encode_list`).
pub(crate) fn encode_reads(reads: &[Read]) -> String {
    Read::encode_list(reads)
}

#[wasm_bindgen]
impl Collection {
    /// The collection name.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.name_of()
    }

    /// Stores a document (insert or replace) and queues it; resolves once committed.
    pub fn put(&self, doc: JsValue) -> Promise {
        match self.prepare_put(&doc) {
            Ok(write) => self.place(vec![write]),
            Err(e) => reject(e),
        }
    }

    /// Stores several documents in one transaction: all of them or, on any bad document, none.
    #[wasm_bindgen(js_name = putMany)]
    pub fn put_many(&self, docs: JsValue) -> Promise {
        match self.prepare_put_many(&docs) {
            Ok(writes) if writes.is_empty() => Promise::resolve(&JsValue::UNDEFINED),
            Ok(writes) => self.place(writes),
            Err(e) => Promise::reject(&e),
        }
    }

    /// Shallow-merges `partial` into the stored document (`{ ...current, ...partial }`) and
    /// queues the patch; rejects with `NOT_FOUND` when there is no such document.
    pub fn patch(&self, key: JsValue, partial: JsValue) -> Promise {
        match self.patch_request(&key, &partial) {
            Ok(request) => self.host.request(request),
            Err(e) => reject(e),
        }
    }

    /// Deletes a document and queues the deletion (the queued entry is its tombstone until synced).
    pub fn delete(&self, key: JsValue) -> Promise {
        match key_from_js(&key) {
            Ok(key) => {
                self.place(vec![Placed { key: key_to_js(&key), record: JsValue::UNDEFINED, op: OpKind::Delete }])
            }
            Err(e) => reject(e),
        }
    }

    /// The document with this key, or `undefined`.
    pub fn get(&self, key: JsValue) -> Promise {
        match key_from_js(&key) {
            Ok(key) => self.read(&[Read::get(&self.name_of(), key.to_json())], "first"),
            Err(e) => reject(e),
        }
    }

    /// The documents with these keys, in order, `undefined` where missing.
    #[wasm_bindgen(js_name = getMany)]
    pub fn get_many(&self, keys: JsValue) -> Promise {
        match Collection::keys(&keys) {
            Ok(keys) => {
                let name = self.name_of();
                let reads: Vec<Read> = keys.iter().map(|k| Read::get(&name, k.to_json())).collect();
                self.read(&reads, "all")
            }
            Err(e) => reject(e),
        }
    }

    /// Every document, in key order.
    #[wasm_bindgen(js_name = getAll)]
    pub fn get_all(&self) -> Promise {
        self.read(&[self.all_read()], "first")
    }

    /// Documents selected on a declared index: `{ index, equals | range, limit, reverse }`.
    pub fn query(&self, query: JsValue) -> Promise {
        match self.query_read(&query) {
            Ok(read) => self.read(&[read], "first"),
            Err(e) => reject(e),
        }
    }

    /// Number of documents.
    pub fn count(&self) -> Promise {
        self.read(&[Read::count(&self.name_of())], "first")
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
        let callback = callback
            .dyn_into::<Function>()
            .map_err(|_| JsValue::from(CoreError::InvalidOptions("subscribe expects a callback function".into())))?;
        let read = if query.is_null() || query.is_undefined() { self.all_read() } else { self.query_read(&query)? };
        let run = self.host.conn.reader(&self.stores(), &encode_reads(&[read]), "first");
        Ok(live_query(&self.host.hub, &self.name_of(), &run, &callback))
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
        let callback = callback
            .dyn_into::<Function>()
            .map_err(|_| JsValue::from(CoreError::InvalidOptions("watch expects a callback function".into())))?;
        let parsed = key_from_js(&key)?;
        let read = Read::get(&self.name_of(), parsed.to_json());
        let run = self.host.conn.reader(&self.stores(), &encode_reads(&[read]), "first");
        Ok(live_document(&self.host.hub, &self.name_of(), &run, &callback, &key))
    }
}
