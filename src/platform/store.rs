//! The local store: one IndexedDB connection per open database, the ordered write path (group
//! commit, patches, queueing while the connection is re-established) and the reads.
//!
//! Invariants: a write's record change and outbox entry are placed in the same transaction;
//! writes are placed in call order, even across a reconnect; no `RefCell` borrow is held while
//! IndexedDB or a user callback runs.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::{future_to_promise, spawn_local, JsFuture};
use web_sys::{Event, IdbDatabase, IdbTransaction, IdbVersionChangeEvent};

use super::changes::ChangeHub;
use super::connection::open_database;
use super::error::{dom_error_name, StorageError};
use super::global::{indexed_db, now_ms, random_seed, report_callback_error, request_persistence};
use super::request::{abort_reason, request_result};
use super::write_batch::{begin, PreparedWrite, SettleHandlers, WriteBatcher};
use crate::core::hlc::Hlc;
use crate::core::schema::{Collection, DatabaseSchema};
use crate::core::{document_key, key_of, validate_patch, CoreError, Key, OpIdGenerator, OpKind};

enum Pending {
    Writes(Vec<PreparedWrite>),
    /// A patch: its record is merged inside its own transaction, after reading the current value.
    Patch(PreparedWrite, Key),
}

struct QueuedWrite {
    pending: Pending,
    resolve: Function,
    reject: Function,
}

enum ConnState {
    Open(IdbDatabase),
    Lost,
    /// Closed by the caller, or deleted; the error every later call fails with.
    Closed(StorageError),
}

/// Counters of the local write path, exposed as `db.stats()`.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteStats {
    pub writes: u64,
    pub write_transactions: u64,
}

pub struct LocalStore {
    schema: Rc<DatabaseSchema>,
    scope: Array,
    state: RefCell<ConnState>,
    waiting: RefCell<VecDeque<QueuedWrite>>,
    reconnecting: RefCell<Option<Promise>>,
    reconnect_failure: RefCell<Option<StorageError>>,
    batcher: Rc<WriteBatcher>,
    settle: SettleHandlers,
    connection_events: (Function, Function),
    ids: RefCell<OpIdGenerator>,
    /// The hybrid logical clock stamping local writes; moved forward by pulled changes.
    clock: RefCell<Hlc>,
    /// Listeners of committed changes (`db.onChange`, live queries).
    changes: ChangeHub,
    stats: Cell<WriteStats>,
    listeners: RefCell<Vec<(u32, Function)>>,
    next_listener: Cell<u32>,
    /// Called after each local write transaction commits (the sync engine's write trigger).
    commit_hook: RefCell<Option<Rc<dyn Fn()>>>,
}

/// A promise with its settle functions, for writes that wait for the connection.
pub(crate) fn deferred() -> (Promise, Function, Function) {
    let mut slots = None;
    let promise = Promise::new(&mut |resolve, reject| slots = Some((resolve, reject)));
    let (resolve, reject) = slots.expect("the Promise executor runs synchronously");
    (promise, resolve, reject)
}

impl Drop for LocalStore {
    /// A store dropped without `close()` still leaves the other contexts' change fan-out.
    fn drop(&mut self) {
        self.changes.close();
    }
}

pub fn key_to_js(key: &Key) -> JsValue {
    match key {
        Key::Text(s) => JsValue::from_str(s),
        Key::Number(n) => JsValue::from_f64(*n),
    }
}

impl LocalStore {
    /// Opens (creating or upgrading) the database described by `schema`.
    pub async fn open(schema: DatabaseSchema) -> Result<Rc<LocalStore>, StorageError> {
        let factory = indexed_db()?;
        let schema = Rc::new(schema);
        let db = open_database(&factory, &schema).await?;
        let store = LocalStore::new(Rc::clone(&schema));
        store.install(db);
        if schema.persist {
            if let Some(request) = request_persistence() {
                spawn_local(async move {
                    let _ = JsFuture::from(request).await;
                });
            }
        }
        Ok(store)
    }

    fn new(schema: Rc<DatabaseSchema>) -> Rc<LocalStore> {
        // Strings passed to JavaScript on every write are interned: one conversion, then a lookup.
        for name in schema.write_scope() {
            wasm_bindgen::intern(&name);
        }
        for word in ["put", "patch", "delete", "then", "seq"] {
            wasm_bindgen::intern(word);
        }
        let scope: Array = schema.write_scope().into_iter().map(JsValue::from).collect();
        let batcher = Rc::new(WriteBatcher::default());
        let changes = ChangeHub::new(&schema.name);
        Rc::new_cyclic(|weak: &Weak<LocalStore>| {
            let committed = {
                let batcher = Rc::clone(&batcher);
                let weak = weak.clone();
                Closure::<dyn FnMut(JsValue) -> JsValue>::new(move |event: JsValue| {
                    if let Some(tx) = event.dyn_ref::<Event>().and_then(Event::target) {
                        batcher.finished(&tx);
                    }
                    let hook = weak.upgrade().and_then(|store| store.commit_hook.borrow().clone());
                    if let Some(hook) = hook {
                        hook();
                    }
                    JsValue::UNDEFINED
                })
            };
            let aborted = {
                let batcher = Rc::clone(&batcher);
                Closure::<dyn FnMut(JsValue) -> Result<JsValue, JsValue>>::new(move |event: JsValue| {
                    let tx = event.dyn_ref::<Event>().and_then(Event::target);
                    let reason = match tx {
                        Some(tx) => {
                            batcher.finished(&tx);
                            abort_reason(tx.unchecked_ref::<IdbTransaction>())
                        }
                        None => StorageError::Aborted("the transaction was aborted".to_owned()),
                    };
                    Err(reason.to_js())
                })
            };
            let on_version_change = {
                let weak = weak.clone();
                Closure::<dyn FnMut(IdbVersionChangeEvent)>::new(move |event: IdbVersionChangeEvent| {
                    if let Some(store) = weak.upgrade() {
                        store.on_version_change(&event);
                    }
                })
            };
            let on_close = {
                let weak = weak.clone();
                Closure::<dyn FnMut(Event)>::new(move |event: Event| {
                    if let (Some(store), Some(db)) = (weak.upgrade(), event.target()) {
                        store.mark_lost(db.unchecked_ref());
                    }
                })
            };
            LocalStore {
                schema,
                scope,
                state: RefCell::new(ConnState::Lost),
                waiting: RefCell::default(),
                reconnecting: RefCell::default(),
                reconnect_failure: RefCell::default(),
                batcher,
                // JavaScript owns these handlers: a transaction may outlive every handle to the store.
                settle: (committed.into_js_value().unchecked_into(), aborted.into_js_value().unchecked_into()),
                connection_events: (
                    on_version_change.into_js_value().unchecked_into(),
                    on_close.into_js_value().unchecked_into(),
                ),
                ids: RefCell::new(OpIdGenerator::new(random_seed())),
                clock: RefCell::default(),
                changes,
                stats: Cell::default(),
                listeners: RefCell::default(),
                next_listener: Cell::new(0),
                commit_hook: RefCell::default(),
            }
        })
    }

    pub fn schema(&self) -> &DatabaseSchema {
        &self.schema
    }

    pub fn stats(&self) -> WriteStats {
        self.stats.get()
    }

    fn install(&self, db: IdbDatabase) {
        db.set_onversionchange(Some(&self.connection_events.0));
        db.set_onclose(Some(&self.connection_events.1));
        *self.state.borrow_mut() = ConnState::Open(db);
    }

    fn open_connection(&self) -> Option<IdbDatabase> {
        match &*self.state.borrow() {
            ConnState::Open(db) if self.waiting.borrow().is_empty() => Some(db.clone()),
            _ => None,
        }
    }

    fn is_closed(&self) -> bool {
        matches!(*self.state.borrow(), ConnState::Closed(_))
    }

    fn closed_error(&self) -> Option<StorageError> {
        match &*self.state.borrow() {
            ConnState::Closed(error) => Some(error.clone()),
            _ => None,
        }
    }

    fn mark_lost(&self, db: &IdbDatabase) {
        let mut state = self.state.borrow_mut();
        if matches!(&*state, ConnState::Open(current) if current == db) {
            *state = ConnState::Lost;
            drop(state);
            self.batcher.seal();
        }
    }

    fn on_version_change(&self, event: &IdbVersionChangeEvent) {
        let deleted = event.new_version().is_none();
        if let Some(db) = event.target().and_then(|t| t.dyn_into::<IdbDatabase>().ok()) {
            db.close();
            self.mark_lost(&db);
        }
        let info = Object::new();
        let _ = Reflect::set(&info, &"oldVersion".into(), &JsValue::from_f64(event.old_version()));
        let new_version = event.new_version().map(JsValue::from_f64).unwrap_or(JsValue::NULL);
        let _ = Reflect::set(&info, &"newVersion".into(), &new_version);
        let listeners: Vec<Function> = self.listeners.borrow().iter().map(|(_, f)| f.clone()).collect();
        if deleted {
            // Reopening would silently create an empty database: this handle is done.
            self.close_with(StorageError::Deleted);
        }
        for listener in listeners {
            if let Err(e) = listener.call1(&JsValue::UNDEFINED, &info) {
                report_callback_error(&e);
            }
        }
    }

    /// Registers a version-change listener; returns its id for `remove_listener`.
    pub fn add_listener(&self, listener: Function) -> u32 {
        let id = self.next_listener.get();
        self.next_listener.set(id.wrapping_add(1));
        self.listeners.borrow_mut().push((id, listener));
        id
    }

    pub fn remove_listener(&self, id: u32) {
        self.listeners.borrow_mut().retain(|(i, _)| *i != id);
    }

    /// The listeners of this database's committed changes.
    pub fn changes(&self) -> &ChangeHub {
        &self.changes
    }

    /// Moves the write clock past `stamp` (a stamp pulled, stored, or seen in a conflict).
    pub fn observe_stamp(&self, stamp: &str) {
        self.clock.borrow_mut().observe(stamp, now_ms());
    }

    /// A fresh op id, for a write the sync engine makes (a conflict resolution).
    pub fn next_op_id(&self, now: f64) -> crate::core::OpId {
        self.ids.borrow_mut().next_id(now)
    }

    /// The highest stamp issued or observed, to persist.
    pub fn last_stamp(&self) -> String {
        self.clock.borrow().format()
    }

    /// A fresh clock stamp, for a write the sync engine makes (a conflict resolution).
    pub fn stamp(&self) -> String {
        self.clock.borrow_mut().tick(now_ms())
    }

    /// Sets (or clears) the function called after every committed local write transaction.
    pub fn set_commit_hook(&self, hook: Option<Rc<dyn Fn()>>) {
        *self.commit_hook.borrow_mut() = hook;
    }

    /// Closes the connection for good: later calls fail with `CLOSED`.
    pub fn close(&self) {
        self.close_with(StorageError::Closed);
    }

    fn close_with(&self, reason: StorageError) {
        let previous = std::mem::replace(&mut *self.state.borrow_mut(), ConnState::Closed(reason.clone()));
        if let ConnState::Open(db) = previous {
            db.close();
        }
        self.batcher.seal();
        self.changes.close();
        self.listeners.borrow_mut().clear();
        self.commit_hook.borrow_mut().take();
        let waiting: Vec<QueuedWrite> = self.waiting.borrow_mut().drain(..).collect();
        for write in waiting {
            let _ = write.reject.call1(&JsValue::UNDEFINED, &reason.to_js());
        }
    }

    // ----- preparing writes (validation happens here, before anything is placed) -----

    fn prepare(
        &self,
        collection: &Collection,
        key: &Key,
        op: OpKind,
        record: JsValue,
        patch: JsValue,
    ) -> PreparedWrite {
        let created_at = now_ms();
        PreparedWrite {
            store: collection.name().to_owned(),
            key: key_to_js(key),
            op,
            record,
            patch,
            id: self.ids.borrow_mut().next_id(created_at),
            created_at,
            hlc: self.clock.borrow_mut().tick(created_at),
            isolated: collection.has_unique_index(),
        }
    }

    /// Validates a document (its JSON text); `record` is that text parsed back, the value to store.
    pub fn prepare_put(
        &self,
        collection: &Collection,
        json: &str,
        record: JsValue,
    ) -> Result<PreparedWrite, StorageError> {
        let key = document_key(json, &collection.key_path)?;
        Ok(self.prepare(collection, &key, OpKind::Put, record, JsValue::UNDEFINED))
    }

    /// Like `prepare_put`, for a document already parsed (an element of a batch).
    pub fn prepare_put_parsed(
        &self,
        collection: &Collection,
        doc: &serde_json::Value,
        record: JsValue,
    ) -> Result<PreparedWrite, StorageError> {
        let key = key_of(doc, &collection.key_path)?;
        Ok(self.prepare(collection, &key, OpKind::Put, record, JsValue::UNDEFINED))
    }

    pub fn prepare_delete(&self, collection: &Collection, key: Key) -> PreparedWrite {
        self.prepare(collection, &key, OpKind::Delete, JsValue::UNDEFINED, JsValue::UNDEFINED)
    }

    /// Validates a shallow patch (its JSON text); `partial` is that text parsed back.
    pub fn prepare_patch(
        &self,
        collection: &Collection,
        key: Key,
        json: &str,
        partial: JsValue,
    ) -> Result<(PreparedWrite, Key), StorageError> {
        validate_patch(json, &collection.key_path, &key)?;
        Ok((self.prepare(collection, &key, OpKind::Patch, JsValue::UNDEFINED, partial), key))
    }

    // ----- the ordered write path -----

    /// Places puts and deletes (atomically together) and returns the promise of their commit.
    pub fn submit_writes(self: &Rc<Self>, writes: Vec<PreparedWrite>) -> Promise {
        self.submit(Pending::Writes(writes))
    }

    /// Starts a patch and returns the promise of its commit.
    pub fn submit_patch(self: &Rc<Self>, (patch, key): (PreparedWrite, Key)) -> Promise {
        self.submit(Pending::Patch(patch, key))
    }

    fn submit(self: &Rc<Self>, pending: Pending) -> Promise {
        if let Some(error) = self.closed_error() {
            return Promise::reject(&error.to_js());
        }
        if let Some(db) = self.open_connection() {
            match self.place(&db, &pending) {
                Ok(promise) => return promise,
                Err(StorageError::ConnectionLost) => self.mark_lost(&db),
                Err(e) => return Promise::reject(&e.to_js()),
            }
        }
        let (promise, resolve, reject) = deferred();
        self.waiting.borrow_mut().push_back(QueuedWrite { pending, resolve, reject });
        let _ = self.ensure_reconnect();
        promise
    }

    fn place(&self, db: &IdbDatabase, pending: &Pending) -> Result<Promise, StorageError> {
        let (promise, began, count) = match pending {
            Pending::Writes(writes) => {
                let (promise, began) = self.batcher.place(db, &self.scope, writes, &self.settle)?;
                self.changes.local_writes_after(&promise, writes);
                (promise, began, writes.len() as u64)
            }
            Pending::Patch(patch, key) => {
                let promise = self.start_patch(db, patch.clone(), key.describe())?;
                self.changes.local_writes_after(&promise, std::slice::from_ref(patch));
                (promise, true, 1)
            }
        };
        let mut stats = self.stats.get();
        stats.writes += count;
        stats.write_transactions += u64::from(began);
        self.stats.set(stats);
        Ok(promise)
    }

    fn start_patch(&self, db: &IdbDatabase, mut patch: PreparedWrite, key: String) -> Result<Promise, StorageError> {
        // Writes issued after this patch must commit after it: they go to a later transaction.
        self.batcher.seal();
        let (tx, committed) = begin(db, &self.scope, &self.settle)?;
        let read = tx.object_store(&patch.store).and_then(|s| s.get(&patch.key)).map_err(StorageError::from_js)?;
        Ok(future_to_promise(async move {
            let current = request_result(&read).await.map_err(|e| e.to_js())?;
            if current.is_undefined() {
                // Nothing was written; let the empty transaction finish before reporting.
                let _ = JsFuture::from(committed).await;
                return Err(StorageError::Core(CoreError::NotFound { collection: patch.store.clone(), key }).to_js());
            }
            patch.record = current;
            let placed = patch.place(&tx);
            if let Err(e) = placed {
                let _ = tx.abort();
                let _ = JsFuture::from(committed).await;
                return Err(StorageError::from_js(e).to_js());
            }
            JsFuture::from(committed).await?;
            Ok(JsValue::UNDEFINED)
        }))
    }

    fn ensure_reconnect(self: &Rc<Self>) -> Promise {
        if let Some(promise) = self.reconnecting.borrow().clone() {
            return promise;
        }
        let (promise, resolve, _) = deferred();
        *self.reconnecting.borrow_mut() = Some(promise.clone());
        let this = Rc::clone(self);
        spawn_local(async move {
            let outcome = match indexed_db() {
                Ok(factory) => open_database(&factory, &this.schema).await,
                Err(e) => Err(e),
            };
            this.reconnecting.borrow_mut().take();
            match outcome {
                Ok(db) if this.is_closed() => db.close(),
                Ok(db) => {
                    this.reconnect_failure.borrow_mut().take();
                    this.install(db);
                    this.drain_waiting();
                }
                Err(e) => {
                    let waiting: Vec<QueuedWrite> = this.waiting.borrow_mut().drain(..).collect();
                    for write in waiting {
                        let _ = write.reject.call1(&JsValue::UNDEFINED, &e.to_js());
                    }
                    *this.reconnect_failure.borrow_mut() = Some(e);
                }
            }
            let _ = resolve.call0(&JsValue::UNDEFINED);
        });
        promise
    }

    /// Places the writes that waited for the connection, in their original order.
    fn drain_waiting(self: &Rc<Self>) {
        loop {
            let db = match &*self.state.borrow() {
                ConnState::Open(db) => db.clone(),
                _ => break,
            };
            let Some(write) = self.waiting.borrow_mut().pop_front() else {
                break;
            };
            match self.place(&db, &write.pending) {
                Ok(promise) => {
                    let _ = write.resolve.call1(&JsValue::UNDEFINED, &promise);
                }
                Err(StorageError::ConnectionLost) => {
                    self.waiting.borrow_mut().push_front(write);
                    self.mark_lost(&db);
                    let _ = self.ensure_reconnect();
                    break;
                }
                Err(e) => {
                    let _ = write.reject.call1(&JsValue::UNDEFINED, &e.to_js());
                }
            }
        }
    }

    // ----- reads -----

    async fn connection(self: &Rc<Self>) -> Result<IdbDatabase, StorageError> {
        if let ConnState::Open(db) = &*self.state.borrow() {
            return Ok(db.clone());
        }
        if let Some(error) = self.closed_error() {
            return Err(error);
        }
        let _ = JsFuture::from(self.ensure_reconnect()).await;
        match &*self.state.borrow() {
            ConnState::Open(db) => Ok(db.clone()),
            ConnState::Closed(error) => Err(error.clone()),
            ConnState::Lost => Err(self.reconnect_failure.borrow().clone().unwrap_or(StorageError::ConnectionLost)),
        }
    }

    /// Runs `start` (which begins a transaction) on the open connection, reconnecting once if the
    /// connection turns out to be closing.
    pub async fn on_connection<T>(
        self: &Rc<Self>,
        start: impl Fn(&IdbDatabase) -> Result<T, JsValue>,
    ) -> Result<T, StorageError> {
        for _ in 0..2 {
            let db = self.connection().await?;
            match start(&db) {
                Ok(started) => return Ok(started),
                Err(e) if dom_error_name(&e).as_deref() == Some("InvalidStateError") => self.mark_lost(&db),
                Err(e) => return Err(StorageError::from_js(e)),
            }
        }
        Err(StorageError::ConnectionLost)
    }

    /// A read-only transaction over `stores`, reconnecting once if the connection was lost.
    pub async fn read_transaction(self: &Rc<Self>, stores: &[&str]) -> Result<IdbTransaction, StorageError> {
        let scope: Array = stores.iter().map(|s| JsValue::from_str(s)).collect();
        for _ in 0..2 {
            let db = self.connection().await?;
            match db.transaction_with_str_sequence(&scope) {
                Ok(tx) => return Ok(tx),
                Err(e) if dom_error_name(&e).as_deref() == Some("InvalidStateError") => self.mark_lost(&db),
                Err(e) => return Err(StorageError::from_js(e)),
            }
        }
        Err(StorageError::ConnectionLost)
    }
}
