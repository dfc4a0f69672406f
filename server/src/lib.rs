//! Wharf's reference sync server, as a library so tests can drive its router in process.

pub mod app;
pub mod auth;
pub mod browser;
pub mod compaction;
pub mod config;
pub mod counters;
pub mod cursor;
pub mod debug;
pub mod faults;
pub mod live;
pub mod live_hub;
pub mod logging;
pub mod metrics;
pub mod pg_listen;
pub mod pg_schema;
pub mod pg_tls;
pub mod postgres;
pub mod pull;
pub mod push;
pub mod schema;
pub mod spaces;
pub mod sqlite;
pub mod store;
pub mod ticket;
