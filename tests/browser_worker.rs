//! The browser suite in a worker scope (same body as the other scopes: tests/common/).
#![cfg(target_arch = "wasm32")]

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

include!("common/store_suite.rs");
include!("common/sync_suite.rs");
include!("common/transport_suite.rs");
include!("common/encryption_suite.rs");
include!("common/change_suite.rs");
include!("common/reconnect_suite.rs");
include!("common/migration_suite.rs");
