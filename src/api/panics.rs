//! Panics, which should never happen, surface as a `WharfError` with code `INTERNAL` and the
//! panic's message instead of a bare `unreachable` trap. The release build aborts on panic (no
//! unwinding in wasm32), so the hook only records the message; the package entry
//! (`js/internal.js`) turns the trap every export then throws into the error, with this message.
//! After one, the instance may be left mid-call: the database should be reopened (a reload).

use std::cell::RefCell;

use wasm_bindgen::prelude::*;

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs the hook when the module is instantiated.
#[wasm_bindgen(start)]
pub fn record_panics() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let text =
            payload.downcast_ref::<&str>().copied().or_else(|| payload.downcast_ref::<String>().map(String::as_str));
        let mut message = String::from(text.unwrap_or("a panic"));
        if let Some(at) = info.location() {
            message.push_str(" at ");
            message.push_str(at.file());
            message.push(':');
            message.push_str(&at.line().to_string());
        }
        LAST_PANIC.with(|last| {
            if let Ok(mut last) = last.try_borrow_mut() {
                *last = Some(message);
            }
        });
    }));
}

/// The message of the last panic, if there was one (the package entry asks after a trap).
#[wasm_bindgen(js_name = lastPanic)]
pub fn last_panic() -> Option<String> {
    LAST_PANIC.with(|last| last.try_borrow().ok().and_then(|last| last.clone()))
}

/// Test builds only: panics, so the browser suites can check the hook.
#[cfg(feature = "fault-injection")]
#[wasm_bindgen(js_name = panicForTests)]
pub fn panic_for_tests(message: &str) {
    panic!("{message}");
}
