//! The pure core of Wharf: the data model, validation, and every sync decision, with no browser
//! dependency and no I/O. It never awaits, sleeps or reads a clock: time comes in as an
//! argument, randomness from seeds, and storage as the results of declared reads (`tx.rs`).
//!
//! Everything here compiles and is tested on the host with plain `cargo test`; the browser
//! driver in `platform` and the JavaScript boundary in `api` build on it, and the simulation in
//! `server/tests/simulation/` runs it against the reference server.
//!
//! Layers, lowest first: the model (`document`, `op`, `schema`, `query`, `hlc`, `id`, `error`),
//! the protocol (`protocol`, `wire`), the rules (`coalesce`, `push`, `retry`, `conflict`), the
//! transactions (`tx`, `steps`, `*_tx`, `dead_letters`), and the orchestration (`push_engine`,
//! `resolve_run`, `pull_run`, `machine`, `replica`).

pub mod activity;
pub mod coalesce;
pub mod conflict;
pub mod conflict_tx;
pub mod dead_letters;
pub mod debug_report;
pub mod document;
pub mod error;
pub mod fields;
pub mod hlc;
pub mod host;
pub mod id;
pub mod json_text;
pub mod live_channel;
pub mod local_tx;
pub mod machine;
pub mod migration;
pub mod op;
pub mod protocol;
pub mod pull_run;
pub mod pull_tx;
pub mod push;
pub mod push_engine;
pub mod push_tx;
pub mod query;
pub mod read;
pub mod replica;
pub mod resolve_run;
pub mod retry;
pub mod schema;
pub mod shapes;
pub mod sorted;
pub mod status;
pub mod steps;
pub mod sync_options;
pub mod transport;
pub mod tx;
pub mod upgrade;
pub mod vault;
pub mod wire;

#[cfg(test)]
mod convergence_tests;
#[cfg(test)]
mod eviction_tests;
#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod letter_tests;
#[cfg(test)]
mod machine_tests;
#[cfg(any(test, feature = "memdb"))]
pub mod memdb;
#[cfg(any(test, feature = "memdb"))]
pub mod native_host;
#[cfg(test)]
mod outage_tests;
#[cfg(test)]
mod pull_tests;
#[cfg(test)]
mod reconnect_tests;
#[cfg(test)]
mod shape_tests;
#[cfg(test)]
mod test_world;
#[cfg(test)]
mod tx_tests;
#[cfg(test)]
mod user_tests;

pub use document::{document_key, key_of, parse_json, validate_patch, Key, KeyPath};
pub use error::{CoreError, ErrorCode, SyncErrorCode};
pub use id::{OpId, OpIdGenerator};
pub use op::{ConflictInfo, DeadLetter, LastError, Op, OpKind, OutboxEntry, Payload};
pub use query::{KeySelection, ValidQuery};
pub use schema::{DatabaseSchema, IndexKeyPath, IndexSchema, DEAD_STORE, META_STORE, OUTBOX_STORE, VERSIONS_STORE};
pub use upgrade::{StoreShape, UpgradeStep};
