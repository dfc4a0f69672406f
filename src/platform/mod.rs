//! The browser driver of the core: IndexedDB (`connection.rs` with `js/idb.js`), the actions and
//! events of the sync machine (`host.rs` with `js/io.js`), the election of one drainer per
//! database (`coordination.rs` with `js/coordinate.js`), encryption at rest (`encryption.rs` with
//! `js/keys.js`), the live channel (`live.rs` with
//! `js/live.js`) and change notification (`changes.rs` with `js/changes.js`). It decides
//! nothing: every rule is in `core`, which it calls synchronously; the JavaScript only moves
//! data. It never assumes `window`: pages, dedicated workers and service workers alike.
//!
//! Nothing here is exported to JavaScript directly; `api` wraps it.

pub mod changes;
pub mod connection;
pub mod coordination;
pub mod encryption;
pub mod error;
pub mod faults;
pub mod hooks;
pub mod host;
pub mod live;

pub use error::PlatformError;
pub use host::Host;
