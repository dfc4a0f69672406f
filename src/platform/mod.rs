//! Browser adapters: IndexedDB, the global scope, and the local write path built on them.
//!
//! Nothing here is exported to JavaScript directly; `api` wraps it.

pub mod changes;
pub mod conflicts;
pub mod connection;
pub mod coordination;
pub mod dead_letters;
pub mod error;
pub mod faults;
pub mod global;
pub mod reads;
pub mod request;
pub mod store;
pub mod sync_driver;
pub mod sync_io;
pub mod write_batch;

pub use error::StorageError;
pub use store::LocalStore;
