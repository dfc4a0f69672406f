//! The pure core of Wharf: data model, validation and planning, with no browser dependency.
//!
//! Everything here compiles and is tested on the host with plain `cargo test`; the browser
//! adapters in `platform` and the JavaScript boundary in `api` build on it.

pub mod coalesce;
pub mod conflict;
pub mod dead_letters;
pub mod document;
pub mod engine;
pub mod error;
pub mod fields;
pub mod hlc;
pub mod id;
pub mod outbox;
pub mod protocol;
pub mod pull;
pub mod push;
pub mod query;
pub mod retry;
pub mod schema;
pub mod status;
pub mod sync_options;
pub mod wire;

#[cfg(test)]
pub(crate) mod fakes;

pub use document::{document_key, key_of, parse_json, validate_patch, Key, KeyPath};
pub use error::{CoreError, ErrorCode};
pub use id::{OpId, OpIdGenerator};
pub use outbox::{ConflictInfo, DeadLetter, LastError, OpKind, OutboxEntry};
pub use query::{KeySelection, ValidQuery};
pub use schema::{
    DatabaseSchema, IndexKeyPath, IndexSchema, StoreShape, UpgradeStep, DEAD_STORE, META_STORE, OUTBOX_STORE,
    VERSIONS_STORE,
};
