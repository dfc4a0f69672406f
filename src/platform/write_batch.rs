//! Group commit: every local write issued while a write transaction is still active joins it, so
//! a burst of writes in one tick costs one IndexedDB commit, while a lone awaited write costs
//! exactly the one transaction a hand-written outbox would use.
//!
//! Requests are placed synchronously, inside the caller's call: IndexedDB clones the record at
//! that moment, and the order of writes is the order of calls. Each write's record change and
//! outbox entry are placed together in one transaction, so they commit or vanish together.

use std::cell::RefCell;

use js_sys::{Array, Function, Promise};
use wasm_bindgen::prelude::*;
use web_sys::{IdbDatabase, IdbRequest, IdbTransaction};

use super::error::{dom_error_name, StorageError};
use crate::core::{OpId, OpKind};

#[wasm_bindgen(module = "/src/platform/js/place_write.js")]
extern "C" {
    /// Places the record change and its outbox entry in `tx`; returns both requests.
    #[wasm_bindgen(js_name = placeWrite, catch)]
    #[allow(clippy::too_many_arguments)]
    fn place_write_js(
        tx: &IdbTransaction,
        store: &str,
        key: &JsValue,
        record: &JsValue,
        patch: &JsValue,
        id: &str,
        op: &str,
        now: f64,
        hlc: &str,
        watch: bool,
    ) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_name = beginWrite, catch)]
    fn begin_write_js(
        db: &IdbDatabase,
        scope: &Array,
        on_committed: &Function,
        on_aborted: &Function,
    ) -> Result<Array, JsValue>;
}

/// A record change and its outbox entry, ready to be placed.
#[derive(Clone)]
pub struct PreparedWrite {
    pub store: String,
    pub key: JsValue,
    pub op: OpKind,
    /// The record to store (put, and patch once merged); unused for delete.
    pub record: JsValue,
    /// The shallow patch queued for a patch; unused otherwise.
    pub patch: JsValue,
    pub id: OpId,
    pub created_at: f64,
    /// The write's hybrid logical clock stamp (`core::hlc`).
    pub hlc: String,
    /// The collection has a unique index: a violation aborts the whole transaction, so this write
    /// gets a transaction of its own instead of sharing one with other callers' writes.
    pub isolated: bool,
}

impl PreparedWrite {
    /// Places this write in `tx`: the record change and its outbox entry, side by side.
    pub fn place(&self, tx: &IdbTransaction) -> Result<(), JsValue> {
        let requests = place_write_js(
            tx,
            &self.store,
            &self.key,
            &self.record,
            &self.patch,
            self.id.as_str(),
            self.op.as_str(),
            self.created_at,
            &self.hlc,
            super::faults::ENABLED,
        )?;
        if super::faults::ENABLED {
            let requests: &Array = requests.unchecked_ref();
            let (record, outbox): (IdbRequest, IdbRequest) =
                (requests.get(0).unchecked_into(), requests.get(1).unchecked_into());
            super::faults::after_placed(tx, &record, &outbox);
        }
        Ok(())
    }
}

struct OpenBatch {
    tx: IdbTransaction,
    committed: Promise,
}

/// The transaction currently accepting writes, if any.
#[derive(Default)]
pub struct WriteBatcher {
    current: RefCell<Option<OpenBatch>>,
}

/// The two long-lived functions every write transaction's commit promise is settled through:
/// the first clears the finished batch, the second also turns the abort into a `WharfError`.
pub type SettleHandlers = (js_sys::Function, js_sys::Function);

enum PlaceError {
    /// The transaction can no longer take requests; nothing was placed.
    Inactive,
    Fatal(StorageError),
}

impl WriteBatcher {
    /// Places `writes` in the open batch, or in a new transaction when there is none or it has
    /// retired. Returns the promise of that transaction's commit and whether a transaction began.
    pub fn place(
        &self,
        db: &IdbDatabase,
        scope: &Array,
        writes: &[PreparedWrite],
        settle: &SettleHandlers,
    ) -> Result<(Promise, bool), StorageError> {
        let isolated = writes.iter().any(|w| w.isolated);
        if isolated {
            self.seal();
        }
        let open = self.current.borrow().as_ref().map(|b| (b.tx.clone(), b.committed.clone()));
        if let Some((tx, committed)) = open {
            match place_all(&tx, writes) {
                Ok(()) => return Ok((committed, false)),
                Err(PlaceError::Inactive) => self.seal(),
                Err(PlaceError::Fatal(e)) => return Err(e),
            }
        }
        let (tx, committed) = begin(db, scope, settle)?;
        if let Err(failure) = place_all(&tx, writes) {
            // Nobody else holds this transaction's promise: observe its rejection here so the
            // abort is not reported as an unhandled rejection, and return the real cause.
            let _ = tx.abort();
            ignore_rejection(&committed);
            return Err(match failure {
                PlaceError::Inactive => StorageError::Aborted("a new transaction was inactive at once".to_owned()),
                PlaceError::Fatal(e) => e,
            });
        }
        if !isolated {
            *self.current.borrow_mut() = Some(OpenBatch { tx, committed: committed.clone() });
        }
        Ok((committed, true))
    }

    /// Stops later writes from joining the open batch (it still commits normally).
    pub fn seal(&self) {
        self.current.borrow_mut().take();
    }

    /// Forgets the batch if `tx` is the one open (called once it committed or aborted).
    pub fn finished(&self, tx: &JsValue) {
        let mut current = self.current.borrow_mut();
        if current.as_ref().is_some_and(|b| JsValue::from(b.tx.clone()) == *tx) {
            current.take();
        }
    }
}

fn ignore_rejection(promise: &Promise) {
    let ignore = Closure::<dyn FnMut(JsValue)>::new(|_: JsValue| {}).into_js_value();
    if let Ok(catch) = js_sys::Reflect::get(promise, &JsValue::from_str("catch")).and_then(|f| f.dyn_into::<Function>())
    {
        let _ = catch.call1(promise, &ignore);
    }
}

/// Starts a read-write transaction over every collection and the outbox, with the promise of its
/// commit (settled through `settle`: resolved when committed, rejected with a `WharfError`).
pub fn begin(
    db: &IdbDatabase,
    scope: &Array,
    settle: &SettleHandlers,
) -> Result<(IdbTransaction, Promise), StorageError> {
    let started = begin_write_js(db, scope, &settle.0, &settle.1).map_err(|e| match dom_error_name(&e).as_deref() {
        // The connection is closing (version change) or closed by the browser.
        Some("InvalidStateError") => StorageError::ConnectionLost,
        _ => StorageError::from_js(e),
    })?;
    Ok((started.get(0).unchecked_into(), started.get(1).unchecked_into()))
}

fn place_all(tx: &IdbTransaction, writes: &[PreparedWrite]) -> Result<(), PlaceError> {
    for (i, write) in writes.iter().enumerate() {
        match write.place(tx) {
            Ok(()) => {}
            Err(e) if i == 0 && is_retired(&e) => return Err(PlaceError::Inactive),
            Err(e) => {
                // Part of this batch is placed: abort it whole rather than commit a half.
                let _ = tx.abort();
                return Err(PlaceError::Fatal(StorageError::from_js(e)));
            }
        }
    }
    Ok(())
}

fn is_retired(error: &JsValue) -> bool {
    matches!(dom_error_name(error).as_deref(), Some("TransactionInactiveError" | "InvalidStateError"))
}
