//! Wharf: an offline-first sync client for browsers.
//!
//! `core` is pure Rust (model, validation, planning) and is tested natively; `platform` adapts it
//! to IndexedDB and the browser; `api` is the only layer that speaks `wasm-bindgen` to JavaScript.

pub mod core;

#[cfg(target_arch = "wasm32")]
pub mod platform;

#[cfg(target_arch = "wasm32")]
pub mod api;
