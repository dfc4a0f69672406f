//! The JavaScript boundary: the only `#[wasm_bindgen]` code, one file per JavaScript class.
//!
//! Caller data crosses once per call (or once per batch), as JSON text produced by
//! `js/encode.js`; errors leave as `WharfError` objects with a stable `code`.

pub mod collection;
pub mod database;
pub mod dead_letters;
pub mod debug;
pub mod json;
pub mod outbox;
pub mod panics;

pub use collection::Collection;
pub use database::Database;
pub use dead_letters::DeadLetters;
pub use outbox::Outbox;
