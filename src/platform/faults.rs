//! Fault injection for tests: make the next write transaction abort right after its record write
//! or its outbox write has succeeded, to prove that the two only ever commit together.
//!
//! Compiled to no-ops unless the `fault-injection` feature is on; release builds never have it.

use web_sys::{IdbRequest, IdbTransaction};

/// Whether this build can inject faults (only test builds can).
pub const ENABLED: bool = cfg!(feature = "fault-injection");

/// Where the next write transaction is made to abort.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPoint {
    AbortAfterRecordWrite,
    AbortAfterOutboxWrite,
}

#[cfg(feature = "fault-injection")]
mod armed {
    use super::FaultPoint;
    use std::cell::Cell;

    thread_local! {
        pub static NEXT: Cell<Option<FaultPoint>> = const { Cell::new(None) };
    }
}

/// Arms a one-shot fault for the next placed write.
#[cfg(feature = "fault-injection")]
pub fn arm(point: FaultPoint) {
    armed::NEXT.with(|next| next.set(Some(point)));
}

/// Hook called after a write's two requests were placed.
#[cfg(feature = "fault-injection")]
pub fn after_placed(tx: &IdbTransaction, record: &IdbRequest, outbox: &IdbRequest) {
    use js_sys::{Function, Reflect};
    use wasm_bindgen::{JsCast, JsValue};

    let Some(point) = armed::NEXT.with(|next| next.take()) else {
        return;
    };
    let abort = Reflect::get(tx, &JsValue::from_str("abort"))
        .ok()
        .and_then(|f| f.dyn_into::<Function>().ok())
        .map(|f| f.bind0(tx));
    let Some(abort) = abort else { return };
    let target = match point {
        FaultPoint::AbortAfterRecordWrite => record,
        FaultPoint::AbortAfterOutboxWrite => outbox,
    };
    target.set_onsuccess(Some(&abort));
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn after_placed(_tx: &IdbTransaction, _record: &IdbRequest, _outbox: &IdbRequest) {}
