//! The server's storage, behind one trait ([`Storage`]) with two implementations: embedded
//! SQLite (`sqlite.rs`, the default) and PostgreSQL (`postgres.rs`, `--database-url`). Both keep
//! the same guarantees, which the protocol tests in `server/tests/` check against each:
//!
//! - **Every document lives in a space** (`spaces.rs`): its identity is (space, collection,
//!   key), pulls read only the spaces they are given, and a batch writes into one space.
//! - **Exactly once per mutation id, per author and client.** Every applied id is recorded under
//!   (author, client id, op id) with the version it produced (a resend is answered `duplicate`
//!   with it) and every permanent rejection with its answer; one author's ids never answer
//!   another's.
//! - **One transaction per batch**: a failure applies nothing of the batch.
//! - **Tombstones and compaction**: a delete keeps the record with `value: None` until
//!   compaction removes tombstones below a horizon; pulls from older cursors then expire. Every
//!   record and ledger entry carries the time it was written (`written_at`), which retention
//!   (`compaction.rs`) goes by.
//! - **A change sequence pull can trust.** Every write stamps its record with the next number of
//!   a global sequence (`seq`), and numbers become *visible in the order they were assigned*:
//!   once a reader sees seq N, every smaller seq is committed and visible too, so paging by
//!   `seq > cursor` never skips a change. Each backend explains how it ensures this.
//!
//! What a mutation does to a record (validation, staleness, patching, the next version) is
//! decided here, by [`decide`], for both backends; they differ only in how they read and write.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;
use thiserror::Error;

pub use crate::cursor::Cursor;
pub use crate::spaces::Space;
use wharf::core::hlc;
use wharf::core::protocol::{is_stale, Change, LastWrite, Mutation, MutationResult};
use wharf::core::{Key, Payload};

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("storage failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("storage failed: {0}")]
    Postgres(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The pull cursor cannot be continued from (compacted away, or never issued by this
    /// database): the client must pull again from the beginning.
    #[error("{0}")]
    CursorExpired(String),
    /// The storage task itself failed (a panic in a blocking task).
    #[error("internal error: {0}")]
    Internal(String),
}

/// One page of [`Storage::pull`]: the changes, the cursor after them, and whether more wait.
pub type PullPage = (Vec<Change>, Cursor, bool);

/// What [`Storage`]'s methods return: a boxed future, so the trait can be used as `dyn Storage`.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Called with a space and a cursor every time changes in that space up to the cursor are
/// committed, by any server instance sharing the database (see [`Storage::on_commit`]).
pub type CommitHook = Arc<dyn Fn(&Space, u64) + Send + Sync>;

/// The storage's meta counter of the highest version compaction has removed (with the
/// tombstones it deleted): the `floor` of [`decide`].
pub const COMPACTED_VERSION: &str = "compacted_version";

/// Who pushes a batch and where its writes go: the author's name keys the ledgers (with the
/// client id), and `space` is the space every mutation of the batch reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    /// The principal's ledger name (`spaces::Access::author`).
    pub name: String,
    pub client_id: String,
    pub space: Space,
    /// The author may not write into the space the batch names, and why: each mutation not
    /// already in the ledgers is then answered with a permanent `FORBIDDEN` rejection (not
    /// recorded, so a later grant lets a retry apply), and nothing is written. The ledgers are
    /// read first, so a resend of an op applied before the grant was revoked is still a
    /// duplicate, never a rejection of a write that happened.
    pub denied: Option<String>,
}

impl Author {
    /// A client of the shared principals (anonymous or the development token), in their space.
    pub fn shared(client_id: impl Into<String>) -> Author {
        let access = crate::spaces::access(&crate::auth::Principal::Anonymous);
        Author { name: access.author, client_id: client_id.into(), space: access.home, denied: None }
    }

    /// The answer to a mutation of a batch the author may not write.
    pub fn forbidden(&self, id: &str) -> Option<MutationResult> {
        let message = self.denied.clone()?;
        Some(MutationResult::Rejected { id: id.to_owned(), code: "FORBIDDEN".to_owned(), message, permanent: true })
    }
}

/// The outcome of a push batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Pushed {
    /// One result per mutation, in request order.
    pub results: Vec<MutationResult>,
    /// The highest `seq` the batch assigned, when it wrote anything: changes up to it are
    /// committed (what the live channel announces).
    pub cursor: Option<u64>,
}

/// A record as stored: `value` is `None` for a tombstone.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    pub value: Option<Value>,
    pub version: u64,
    /// The client id of the last write, when known.
    pub writer: Option<String>,
    /// The `seq` of the last write's mutation (its client's commit order), when known: a
    /// request of the same client carrying an older op is a late one (see `is_stale`).
    pub writer_seq: Option<u64>,
    /// The clock stamp of the last write, when its writer sent one.
    pub hlc: Option<String>,
    /// The shape the last write was made in (its mutation's `shape`), when its writer sent one.
    pub shape: Option<u32>,
}

/// A record with its address, as listed by [`Storage::records`].
#[derive(Debug, Clone, PartialEq)]
pub struct ListedRecord {
    pub space: Space,
    pub collection: String,
    /// The key as JSON: a string or a number.
    pub key: Value,
    pub record: StoredRecord,
}

/// The server's storage. Every method is one unit of work against the database; the HTTP
/// handlers call nothing else, so a third backend only has to implement this (and pass the
/// suite in `server/tests/`, which runs every protocol test against every backend).
pub trait Storage: Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`, for logs and `/health`.
    fn backend(&self) -> &'static str;

    /// Applies a batch of `author` in one transaction, in `author.space`, and returns a result per
    /// mutation, in order.
    fn apply_push(&self, author: Author, mutations: Vec<Mutation>) -> StoreFuture<'_, Pushed>;

    /// Test hook: does all the work of `apply_push`, then fails instead of committing, so a test
    /// can check that nothing of the batch remains.
    #[doc(hidden)]
    fn apply_push_then_fail(&self, author: Author, mutations: Vec<Mutation>) -> StoreFuture<'_, ()>;

    /// The records of `spaces` written after `cursor` (the default cursor: from the beginning),
    /// in `seq` order, at most `limit`, only of `collections` when given; returns them with the
    /// cursor to
    /// continue from (`Cursor::after` the last one's `seq`, or `cursor` when there is none) and
    /// whether more wait. Each record appears with its latest state only. Fails with
    /// `CursorExpired` for a cursor compaction has passed (`Cursor::expired`: tombstones it has
    /// not seen may be gone) or beyond the last assigned `seq` (a cursor from another database,
    /// e.g. before a reset). The cursor is a position in the one global sequence, but a page only
    /// ever holds records of `spaces`, and it ends at the last of them: other spaces' changes
    /// neither appear nor move the cursor. Each change's `space` is the stored name of its space
    /// (`Space::as_str`); the handler turns it into the name the caller knows it by.
    fn pull(
        &self,
        spaces: Vec<Space>,
        cursor: Cursor,
        limit: usize,
        collections: Option<Vec<String>>,
    ) -> StoreFuture<'_, PullPage>;

    /// The `seq` of the last committed change in any space (0 when there is none). Read from the
    /// database, so it includes other instances' writes.
    fn latest_seq(&self) -> StoreFuture<'_, u64>;

    /// The `seq` of the last committed change in any of `spaces` (0 when there is none): the
    /// cursor a live socket that reads them starts from, which tells nothing of other spaces.
    fn latest_seq_in(&self, spaces: Vec<Space>) -> StoreFuture<'_, u64>;

    /// Binds `client_id` to `user` if no user has it yet; returns whether it belongs to `user`
    /// (now or from before). Durable and race-free across instances: of two users claiming a new
    /// id at once, exactly one gets it.
    fn bind_client(&self, client_id: String, user: String) -> StoreFuture<'_, bool>;

    /// Reads the last committed change's `seq` from the database itself, never from memory: the
    /// trivial query `/health` makes to prove the storage answers.
    fn probe(&self) -> StoreFuture<'_, u64>;

    /// Deletes the tombstones with `seq < before_seq` and raises the compaction horizon to
    /// `before_seq - 1` (never above the last assigned `seq`, never down): pulls from a non-zero
    /// cursor below it are refused from then on. Returns how many tombstones went and the horizon.
    fn compact(&self, before_seq: u64) -> StoreFuture<'_, (u64, u64)>;

    /// The highest `seq` of the tombstones last written before `written_before_ms` (milliseconds
    /// since the Unix epoch), 0 when there is none: `compact` of the next seq removes every
    /// tombstone older than that time (seqs follow write times, give or take a transaction's
    /// length).
    fn tombstones_written_before(&self, written_before_ms: u64) -> StoreFuture<'_, u64>;

    /// Deletes the applied and rejected ledger entries written before `written_before_ms`;
    /// returns how many of each went. A resend of a deleted op id is no longer recognised.
    fn prune_ledgers(&self, written_before_ms: u64) -> StoreFuture<'_, (u64, u64)>;

    /// The stored record of `space`, tombstones included.
    fn record(&self, space: Space, collection: String, key: Key) -> StoreFuture<'_, Option<StoredRecord>>;

    /// Every record of every space, tombstones included, ordered by space, collection, then by
    /// the key's JSON text (byte order).
    fn records(&self) -> StoreFuture<'_, Vec<ListedRecord>>;

    /// How many mutations have been applied (distinct (author, client, id) triples).
    fn applied_count(&self) -> StoreFuture<'_, u64>;

    /// Registers `hook` to hear of commits made by *other* processes sharing the database, once
    /// per space a commit wrote into (the server pokes its own live sockets after its own
    /// pushes). SQLite has no other writers: a no-op. PostgreSQL: LISTEN/NOTIFY.
    fn on_commit(&self, hook: CommitHook);
}

/// What a mutation that is neither a duplicate nor an earlier rejection does, given the current
/// record.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Refused for good (recorded, so a resend gets the same answer).
    Reject { code: &'static str, message: String },
    /// The base version is stale: nothing is written.
    Conflict(MutationResult),
    /// Write this state (the record's next version) and record the id as applied.
    Write { value: Option<Value>, version: u64, hlc: Option<String> },
}

/// Decides one mutation of `client_id` against the record's current state (`None`: never
/// written, or compacted away). `floor` is the highest version compaction has removed (see
/// [`COMPACTED_VERSION`]): a missing record's versions continue above it, so no document's
/// version ever goes back, and a base up to it saw a state that is gone (the write applies over
/// "absent"). `now_ms` caps runaway clock stamps.
pub fn decide(
    client_id: &str,
    mutation: &Mutation,
    current: Option<&StoredRecord>,
    floor: u64,
    now_ms: f64,
) -> Decision {
    let op = match mutation.check() {
        Ok(op) => op,
        Err(message) => return Decision::Reject { code: "INVALID_MUTATION", message },
    };
    let stamp = match mutation.hlc.as_deref().map(|stamp| hlc::accepted(stamp, client_id, now_ms)).transpose() {
        Ok(stamp) => stamp,
        Err(message) => return Decision::Reject { code: "INVALID_MUTATION", message },
    };
    let current_version = current.map_or(floor, |r| r.version);
    if let Some(base) = mutation.base_version {
        let stale = match current {
            Some(record) => {
                let last = LastWrite { writer: record.writer.as_deref(), seq: record.writer_seq };
                is_stale(base, current_version, last, client_id, mutation.seq)
            }
            // A base the server never issued (ahead of every version it gave out) is stale.
            None => base > floor,
        };
        if stale {
            let (value, hlc, shape) = current.map_or((None, None, None), |r| (r.value.clone(), r.hlc.clone(), r.shape));
            return Decision::Conflict(MutationResult::Conflict {
                id: mutation.id.clone(),
                version: current_version,
                value,
                hlc,
                shape,
            });
        }
    }
    let value = op.payload.apply(current.and_then(|r| r.value.as_ref()));
    if matches!(op.payload, Payload::Patch(_)) && value.is_none() {
        let message = format!("no document {} in \"{}\" to patch", key_text(&op.key), op.collection);
        return Decision::Reject { code: "NOT_FOUND", message };
    }
    Decision::Write { value, version: current_version + 1, hlc: stamp }
}

/// A stored shape: the column holds what a mutation's `shape` was (1 to `MAX_SHAPE`); anything
/// else reads as unknown.
pub(crate) fn stored_shape(value: Option<i64>) -> Option<u32> {
    value.and_then(|n| u32::try_from(n).ok()).filter(|n| (1..=wharf::core::protocol::MAX_SHAPE).contains(n))
}

/// Milliseconds since the Unix epoch (the server's clock, for [`decide`]).
pub fn now_ms() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_millis() as f64)
}

/// A key as stored: its canonical JSON text (`"a"` or `7`).
pub fn key_text(key: &Key) -> String {
    serde_json::to_string(key).unwrap_or_default()
}

/// Databases store integers signed; versions, seqs and counts never go below zero.
pub(crate) fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

pub(crate) fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Parses a stored document or key, naming the record when it is not JSON.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    text: &str,
    collection: &str,
    key: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{collection}/{key}: {e}")))
}

/// The error for a cursor below the compaction horizon.
pub(crate) fn compacted(cursor: u64, horizon: u64) -> StoreError {
    StoreError::CursorExpired(format!(
        "cursor {cursor} is older than the compaction horizon {horizon}: pull again from the beginning"
    ))
}

/// The error for a cursor beyond the last assigned seq.
pub(crate) fn never_issued(cursor: u64, last: u64) -> StoreError {
    StoreError::CursorExpired(format!(
        "cursor {cursor} was not issued by this server (its last change is {last}): pull again from the beginning"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mutation(op: &str, payload: Option<(&str, Value)>, base: Option<u64>) -> Mutation {
        let mut m = json!({"id": "m", "seq": 1, "collection": "todos", "key": "a", "op": op});
        if let Some((field, value)) = payload {
            m[field] = value;
        }
        if let Some(base) = base {
            m["baseVersion"] = json!(base);
        }
        serde_json::from_value(m).unwrap()
    }

    fn record(value: Value, version: u64, writer: &str) -> StoredRecord {
        StoredRecord {
            value: Some(value),
            version,
            writer: Some(writer.into()),
            writer_seq: None,
            hlc: None,
            shape: None,
        }
    }

    #[test]
    fn decisions_cover_writes_patches_conflicts_and_rejections() {
        let put = mutation("put", Some(("value", json!({"x": 1}))), None);
        assert_eq!(
            decide("c", &put, None, 0, 0.0),
            Decision::Write { value: Some(json!({"x": 1})), version: 1, hlc: None }
        );
        let current = record(json!({"x": 1, "y": 1}), 4, "other");
        let patch = mutation("patch", Some(("patch", json!({"y": 2}))), Some(4));
        assert_eq!(
            decide("c", &patch, Some(&current), 0, 0.0),
            Decision::Write { value: Some(json!({"x": 1, "y": 2})), version: 5, hlc: None }
        );
        let stale = mutation("delete", None, Some(3));
        assert!(matches!(
            decide("c", &stale, Some(&current), 0, 0.0),
            Decision::Conflict(MutationResult::Conflict { version: 4, .. })
        ));
        assert!(matches!(
            decide("other", &stale, Some(&current), 0, 0.0),
            Decision::Write { value: None, version: 5, .. }
        ));
        let late = mutation("delete", None, Some(3)); // seq 1, but version 4 is the writer's op 5
        let mut by_later_op = current.clone();
        by_later_op.writer_seq = Some(5);
        assert!(matches!(
            decide("other", &late, Some(&by_later_op), 0, 0.0),
            Decision::Conflict(MutationResult::Conflict { version: 4, .. })
        ));
        let blind_patch = mutation("patch", Some(("patch", json!({"y": 2}))), None);
        assert!(matches!(decide("c", &blind_patch, None, 0, 0.0), Decision::Reject { code: "NOT_FOUND", .. }));
        assert!(matches!(decide("c", &patch, None, 0, 0.0), Decision::Conflict(_)), "a base the server never issued");
        assert!(matches!(
            decide("c", &mutation("put", None, None), None, 0, 0.0),
            Decision::Reject { code: "INVALID_MUTATION", .. }
        ));
    }

    #[test]
    fn after_compaction_versions_never_go_back_and_bases_up_to_the_floor_apply() {
        // Compaction removed tombstones up to version 6; this document's was version 2.
        let over_tombstone = mutation("put", Some(("value", json!({"x": 1}))), Some(2));
        assert_eq!(
            decide("c", &over_tombstone, None, 6, 0.0),
            Decision::Write { value: Some(json!({"x": 1})), version: 7, hlc: None }
        );
        let fresh = mutation("put", Some(("value", json!({"x": 1}))), None);
        assert!(matches!(decide("c", &fresh, None, 6, 0.0), Decision::Write { version: 7, .. }));
        let never_issued = mutation("put", Some(("value", json!({"x": 1}))), Some(7));
        assert!(matches!(
            decide("c", &never_issued, None, 6, 0.0),
            Decision::Conflict(MutationResult::Conflict { version: 6, value: None, .. })
        ));
    }
}
