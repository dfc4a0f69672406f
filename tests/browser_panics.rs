//! A panic (which should never happen) leaves its message for the package entry to surface as a
//! WharfError `INTERNAL` (src/api/js/internal.js, tested in tests/e2e/internal.test.mjs). A test
//! binary of its own: after a trap the module's panic state stays "panicking" (there is no
//! unwinding), so any later panic in the same instance would abort without its message.
#![cfg(target_arch = "wasm32")]

use wasm_bindgen::prelude::*;
use wasm_bindgen_test::wasm_bindgen_test;

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn a_panic_leaves_its_message_behind() {
    wharf::api::panics::record_panics();
    let caught = js_sys::Function::new_with_args(
        "panic",
        "try { panic('on purpose, for the test'); return 'no trap'; } \
         catch (e) { return e instanceof WebAssembly.RuntimeError ? 'trap' : String(e); }",
    );
    let panic = Closure::<dyn Fn(String)>::new(|message: String| wharf::api::panics::panic_for_tests(&message));
    let outcome = caught.call1(&JsValue::NULL, panic.as_ref()).unwrap();
    assert_eq!(outcome.as_string().as_deref(), Some("trap"));
    let message = wharf::api::panics::last_panic().expect("recorded");
    assert!(message.contains("on purpose, for the test") && message.contains("panics.rs"), "{message}");
}
