//! Browser adapters: IndexedDB, the global scope, and the local write path built on them.
//!
//! Nothing here is exported to JavaScript directly; `api` wraps it.

pub mod connection;
pub mod error;
pub mod faults;
pub mod global;
pub mod reads;
pub mod request;
pub mod store;
pub mod write_batch;

pub use error::StorageError;
pub use store::LocalStore;
