//! The server's storage: records with versions and tombstones, and the ledger of applied
//! mutation ids that makes every mutation's effect happen exactly once. Embedded SQLite, a file
//! or in memory; each push batch is applied in one SQLite transaction.
//!
//! Every write also stamps the record with a new global change sequence number (`seq`), which
//! is what `pull` pages by. Why `seq > cursor` never skips a change: `seq` is drawn from the
//! `last_seq` counter *inside* the batch's IMMEDIATE transaction, and SQLite admits one write
//! transaction at a time (this process additionally serializes them behind the connection
//! Mutex, which pulls take too). So seqs become visible in commit order: once a reader sees
//! seq N, every seq below N is committed and visible as well; no transaction still in flight
//! can commit a smaller one later. A database with concurrent writers (PostgreSQL, several
//! server processes with their own counters) needs more care; see docs/protocol.md.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde_json::Value;
use thiserror::Error;
use wharf::core::hlc;
use wharf::core::outbox::apply_patch;
use wharf::core::protocol::{is_stale, Change, Mutation, MutationResult};
use wharf::core::{Key, OpKind};

use crate::schema::{self, COMPACTED_THROUGH, LAST_SEQ};

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("storage failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The pull cursor cannot be continued from (compacted away, or never issued by this
    /// database): the client must pull again from the beginning.
    #[error("{0}")]
    CursorExpired(String),
}

/// One page of [`Store::pull`]: the changes, the cursor after them, and whether more wait.
pub type PullPage = (Vec<Change>, u64, bool);

/// A record as stored: `value` is `None` for a tombstone.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    pub value: Option<Value>,
    pub version: u64,
    /// The client id of the last write, when known.
    pub writer: Option<String>,
    /// The clock stamp of the last write, when its writer sent one.
    pub hlc: Option<String>,
}

/// A record with its address, as listed by [`Store::records`].
#[derive(Debug, Clone, PartialEq)]
pub struct ListedRecord {
    pub collection: String,
    /// The key as JSON: a string or a number.
    pub key: Value,
    pub record: StoredRecord,
}

pub struct Store {
    connection: Mutex<Connection>,
    /// The last committed `seq`, readable without the lock (for live pokes).
    latest: AtomicU64,
}

impl Store {
    /// Opens (creating) the store at `path`, or in memory for `:memory:`.
    pub fn open(path: &str) -> Result<Store, StoreError> {
        let connection =
            if path == ":memory:" { Connection::open_in_memory()? } else { Connection::open(Path::new(path))? };
        let mut connection = connection;
        connection.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
        schema::migrate(&mut connection)?;
        let latest = AtomicU64::new(schema::read_meta(&connection, LAST_SEQ)?);
        Ok(Store { connection: Mutex::new(connection), latest })
    }

    /// The `seq` of the last committed change (0 when there is none): the cursor a client that
    /// has pulled everything holds.
    pub fn latest_seq(&self) -> u64 {
        self.latest.load(Ordering::Acquire)
    }

    /// Applies a batch in one transaction and returns a result per mutation, in order.
    pub fn apply_push(&self, client_id: &str, mutations: &[Mutation]) -> Result<Vec<MutationResult>, StoreError> {
        self.apply_push_failing_after(client_id, mutations, None)
    }

    /// `apply_push`, failing (rolling everything back) after `fail_after` mutations: for tests.
    #[doc(hidden)]
    pub fn apply_push_failing_after(
        &self,
        client_id: &str,
        mutations: &[Mutation],
        fail_after: Option<usize>,
    ) -> Result<Vec<MutationResult>, StoreError> {
        let mut connection = self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Read inside the write transaction: see the module comment.
        let first = schema::read_meta(&tx, LAST_SEQ)?;
        let mut seq = first;
        let mut results = Vec::with_capacity(mutations.len());
        for (i, mutation) in mutations.iter().enumerate() {
            if fail_after == Some(i) {
                return Err(StoreError::Corrupt("injected failure".into()));
            }
            results.push(apply_one(&tx, client_id, mutation, &mut seq)?);
        }
        if seq != first {
            schema::write_meta(&tx, LAST_SEQ, seq)?;
        }
        tx.commit()?;
        // Still under the lock, so `latest` moves in commit order.
        self.latest.fetch_max(seq, Ordering::AcqRel);
        Ok(results)
    }

    /// The records written after `cursor` (a `seq`; 0 = from the beginning), in `seq` order, at
    /// most `limit`, only of `collections` when given; returns them with the cursor to continue
    /// from (the last one's `seq`, or `cursor` when there is none) and whether more wait.
    /// Each record appears with its latest state only. Fails with `CursorExpired` for a non-zero
    /// cursor below the compaction horizon (tombstones it has not seen may be gone) or above
    /// the last assigned `seq` (a cursor from another database, e.g. before a reset).
    pub fn pull(&self, cursor: u64, limit: usize, collections: Option<&[String]>) -> Result<PullPage, StoreError> {
        let connection = self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if cursor != 0 {
            let horizon = schema::read_meta(&connection, COMPACTED_THROUGH)?;
            if cursor < horizon {
                return Err(StoreError::CursorExpired(format!(
                    "cursor {cursor} is older than the compaction horizon {horizon}: pull again from the beginning"
                )));
            }
            let last = schema::read_meta(&connection, LAST_SEQ)?;
            if cursor > last {
                return Err(StoreError::CursorExpired(format!(
                    "cursor {cursor} was not issued by this server (its last change is {last}): pull again from the beginning"
                )));
            }
        }
        let mut sql = "SELECT collection, key, value, version, hlc, seq FROM records WHERE seq > ?1".to_owned();
        let mut args = vec![rusqlite::types::Value::Integer(signed(cursor))];
        if let Some(names) = collections {
            let marks: Vec<String> = (0..names.len()).map(|i| format!("?{}", i + 3)).collect();
            sql.push_str(&format!(" AND collection IN ({})", marks.join(", ")));
        }
        sql.push_str(" ORDER BY seq LIMIT ?2");
        args.push(rusqlite::types::Value::Integer(i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX)));
        args.extend(collections.unwrap_or_default().iter().map(|c| rusqlite::types::Value::Text(c.clone())));
        let mut statement = connection.prepare(&sql)?;
        let rows = statement.query_map(rusqlite::params_from_iter(args), |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Option<String>>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, Option<String>>(4)?,
                row.get::<_, i64>(5)?,
            ))
        })?;
        let mut changes = Vec::new();
        let mut next = cursor;
        let mut has_more = false;
        for row in rows {
            let (collection, key, value, version, hlc, seq) = row?;
            if changes.len() == limit {
                has_more = true;
                break;
            }
            let corrupt = |e: serde_json::Error| StoreError::Corrupt(format!("{collection}/{key}: {e}"));
            let value = value.as_deref().map(serde_json::from_str::<Value>).transpose().map_err(corrupt)?;
            let parsed_key = serde_json::from_str::<Key>(&key).map_err(corrupt)?;
            next = unsigned(seq);
            changes.push(Change { collection, key: parsed_key, value, version: unsigned(version), hlc });
        }
        Ok((changes, next, has_more))
    }

    /// Deletes the tombstones with `seq < before_seq` and raises the compaction horizon to
    /// `before_seq - 1` (never above the last assigned `seq`, never down): pulls from a non-zero
    /// cursor below it are refused from then on. Returns how many tombstones went and the horizon.
    pub fn compact(&self, before_seq: u64) -> Result<(u64, u64), StoreError> {
        let mut connection = self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let through = before_seq.saturating_sub(1).min(schema::read_meta(&tx, LAST_SEQ)?);
        let deleted = tx.execute("DELETE FROM records WHERE value IS NULL AND seq <= ?1", params![signed(through)])?;
        let horizon = through.max(schema::read_meta(&tx, COMPACTED_THROUGH)?);
        schema::write_meta(&tx, COMPACTED_THROUGH, horizon)?;
        tx.commit()?;
        Ok((u64::try_from(deleted).unwrap_or(u64::MAX), horizon))
    }

    /// The stored record, tombstones included.
    pub fn record(&self, collection: &str, key: &wharf::core::Key) -> Result<Option<StoredRecord>, StoreError> {
        let connection = self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        read_record(&connection, collection, &key_text(key))
    }

    /// Every record, tombstones included, ordered by collection, then by the key's JSON text.
    pub fn records(&self) -> Result<Vec<ListedRecord>, StoreError> {
        let connection = self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut statement = connection
            .prepare("SELECT collection, key, value, version, writer, hlc FROM records ORDER BY collection, key")?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Option<String>>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, Option<String>>(4)?,
                row.get::<_, Option<String>>(5)?,
            ))
        })?;
        rows.map(|row| {
            let (collection, key, value, version, writer, hlc) = row?;
            let parse = |text: &str| {
                serde_json::from_str::<Value>(text).map_err(|e| StoreError::Corrupt(format!("{collection}/{key}: {e}")))
            };
            let value = value.as_deref().map(parse).transpose()?;
            let key = parse(&key)?;
            Ok(ListedRecord {
                collection,
                key,
                record: StoredRecord { value, version: unsigned(version), writer, hlc },
            })
        })
        .collect()
    }

    /// How many distinct mutation ids have been applied.
    pub fn applied_count(&self) -> Result<u64, StoreError> {
        let connection = self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let count: i64 = connection.query_row("SELECT COUNT(*) FROM applied_mutations", [], |row| row.get(0))?;
        Ok(unsigned(count))
    }
}

/// SQLite integers are signed; versions and counts never go below zero or above i64::MAX.
fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn key_text(key: &wharf::core::Key) -> String {
    serde_json::to_string(key).unwrap_or_default()
}

fn read_record(connection: &Connection, collection: &str, key: &str) -> Result<Option<StoredRecord>, StoreError> {
    type Row = (Option<String>, i64, Option<String>, Option<String>);
    let row: Option<Row> = connection
        .query_row(
            "SELECT value, version, writer, hlc FROM records WHERE collection = ?1 AND key = ?2",
            params![collection, key],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .optional()?;
    row.map(|(value, version, writer, hlc)| {
        let value = value
            .map(|text| {
                serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("{collection}/{key}: {e}")))
            })
            .transpose()?;
        Ok(StoredRecord { value, version: unsigned(version), writer, hlc })
    })
    .transpose()
}

/// A permanent rejection, recorded so that a resend of the same id (the client never saw this
/// answer) gets the same answer, even if the data changed meanwhile and it would now apply.
fn rejected(
    tx: &Connection,
    client_id: &str,
    mutation: &Mutation,
    code: &str,
    message: String,
) -> Result<MutationResult, StoreError> {
    tx.execute(
        "INSERT INTO rejected_mutations (id, client_id, code, message) VALUES (?1, ?2, ?3, ?4)",
        params![mutation.id, client_id, code, message],
    )?;
    Ok(MutationResult::Rejected { id: mutation.id.clone(), code: code.to_owned(), message, permanent: true })
}

/// Applies one mutation; a write takes the next `seq`.
fn apply_one(
    tx: &Connection,
    client_id: &str,
    mutation: &Mutation,
    seq: &mut u64,
) -> Result<MutationResult, StoreError> {
    let earlier: Option<i64> = tx
        .query_row("SELECT version FROM applied_mutations WHERE id = ?1", params![mutation.id], |row| row.get(0))
        .optional()?;
    if let Some(version) = earlier {
        return Ok(MutationResult::Duplicate { id: mutation.id.clone(), version: unsigned(version) });
    }
    let refused: Option<(String, String)> = tx
        .query_row("SELECT code, message FROM rejected_mutations WHERE id = ?1", params![mutation.id], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    if let Some((code, message)) = refused {
        return Ok(MutationResult::Rejected { id: mutation.id.clone(), code, message, permanent: true });
    }
    if let Err(message) = mutation.check() {
        return rejected(tx, client_id, mutation, "INVALID_MUTATION", message);
    }
    let now_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_millis() as f64);
    let stamp = match mutation.hlc.as_deref().map(|stamp| hlc::accepted(stamp, client_id, now_ms)).transpose() {
        Ok(stamp) => stamp,
        Err(message) => return rejected(tx, client_id, mutation, "INVALID_MUTATION", message),
    };
    let key = key_text(&mutation.key);
    let current = read_record(tx, &mutation.collection, &key)?;
    let current_version = current.as_ref().map_or(0, |r| r.version);
    if let Some(base) = mutation.base_version {
        let writer = current.as_ref().and_then(|r| r.writer.as_deref());
        if is_stale(base, current_version, writer, client_id) {
            let (value, hlc) = current.map_or((None, None), |r| (r.value, r.hlc));
            return Ok(MutationResult::Conflict { id: mutation.id.clone(), version: current_version, value, hlc });
        }
    }
    let next_value = match mutation.op {
        OpKind::Put => mutation.value.clone(),
        OpKind::Delete => None,
        OpKind::Patch => match current
            .and_then(|r| r.value)
            .zip(mutation.patch.as_ref())
            .and_then(|(base, patch)| apply_patch(&base, patch))
        {
            Some(merged) => Some(merged),
            None => {
                let message = format!("no document {key} in \"{}\" to patch", mutation.collection);
                return rejected(tx, client_id, mutation, "NOT_FOUND", message);
            }
        },
    };
    let version = current_version + 1;
    let text = next_value.as_ref().map(Value::to_string);
    *seq += 1;
    tx.execute(
        "INSERT INTO records (collection, key, value, version, seq, hlc, writer) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (collection, key) DO UPDATE SET value = excluded.value, version = excluded.version,
         seq = excluded.seq, hlc = excluded.hlc, writer = excluded.writer",
        params![mutation.collection, key, text, signed(version), signed(*seq), stamp, client_id],
    )?;
    tx.execute(
        "INSERT INTO applied_mutations (id, client_id, version) VALUES (?1, ?2, ?3)",
        params![mutation.id, client_id, signed(version)],
    )?;
    Ok(MutationResult::Applied { id: mutation.id.clone(), version })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wharf::core::Key;

    fn mutation(id: &str, op: &str, key: &str, payload: Option<(&str, Value)>) -> Mutation {
        let mut m = json!({"id": id, "seq": 1, "collection": "todos", "key": key, "op": op});
        if let Some((field, value)) = payload {
            m[field] = value;
        }
        serde_json::from_value(m).unwrap()
    }

    #[test]
    fn the_same_mutation_twice_is_applied_once() {
        let store = Store::open(":memory:").unwrap();
        let put = mutation("m1", "put", "a", Some(("value", json!({"id": "a", "n": 1}))));
        let first = store.apply_push("c", std::slice::from_ref(&put)).unwrap();
        let again = store.apply_push("c", &[put.clone(), put]).unwrap();
        assert_eq!(first, vec![MutationResult::Applied { id: "m1".into(), version: 1 }]);
        assert_eq!(again, vec![MutationResult::Duplicate { id: "m1".into(), version: 1 }; 2]);
        assert_eq!(store.record("todos", &Key::Text("a".into())).unwrap().unwrap().version, 1);
        assert_eq!(store.applied_count().unwrap(), 1);
    }

    #[test]
    fn a_batch_commits_whole_or_not_at_all() {
        let store = Store::open(":memory:").unwrap();
        let batch = [
            mutation("m1", "put", "a", Some(("value", json!({"id": "a"})))),
            mutation("m2", "put", "b", Some(("value", json!({"id": "b"})))),
            mutation("m3", "put", "c", Some(("value", json!({"id": "c"})))),
        ];
        assert!(store.apply_push_failing_after("c", &batch, Some(2)).is_err());
        assert_eq!(store.applied_count().unwrap(), 0);
        assert_eq!(store.record("todos", &Key::Text("a".into())).unwrap(), None, "the first two rolled back");
        let results = store.apply_push("c", &batch).unwrap();
        assert!(results.iter().all(|r| matches!(r, MutationResult::Applied { .. })), "{results:?}");
    }

    #[test]
    fn patch_merges_delete_tombstones_and_versions_grow() {
        let store = Store::open(":memory:").unwrap();
        let results = store
            .apply_push(
                "c",
                &[
                    mutation("m1", "put", "a", Some(("value", json!({"id": "a", "x": 1, "y": 1})))),
                    mutation("m2", "patch", "a", Some(("patch", json!({"y": 2})))),
                    mutation("m3", "delete", "a", None),
                    mutation("m4", "patch", "a", Some(("patch", json!({"y": 3})))),
                ],
            )
            .unwrap();
        assert_eq!(results[1], MutationResult::Applied { id: "m2".into(), version: 2 });
        assert_eq!(results[2], MutationResult::Applied { id: "m3".into(), version: 3 });
        assert!(matches!(&results[3], MutationResult::Rejected { code, permanent: true, .. } if code == "NOT_FOUND"));
        let record = store.record("todos", &Key::Text("a".into())).unwrap().unwrap();
        assert_eq!(
            record,
            StoredRecord { value: None, version: 3, writer: Some("c".into()), hlc: None },
            "a tombstone keeps its version"
        );
    }

    #[test]
    fn a_rejection_is_final_even_if_a_resend_would_now_apply() {
        let store = Store::open(":memory:").unwrap();
        let early_patch = mutation("m1", "patch", "a", Some(("patch", json!({"y": 1}))));
        let first = store.apply_push("c", std::slice::from_ref(&early_patch)).unwrap();
        assert!(matches!(&first[0], MutationResult::Rejected { code, .. } if code == "NOT_FOUND"));
        store.apply_push("c", &[mutation("m2", "put", "a", Some(("value", json!({"id": "a"}))))]).unwrap();
        // The client never saw the rejection and resends: same answer, nothing applied.
        assert_eq!(store.apply_push("c", &[early_patch]).unwrap(), first);
        let record = store.record("todos", &Key::Text("a".into())).unwrap().unwrap();
        assert_eq!(record.value, Some(json!({"id": "a"})));
    }

    #[test]
    fn a_stale_base_version_is_a_conflict_with_the_server_value() {
        let store = Store::open(":memory:").unwrap();
        store.apply_push("c", &[mutation("m1", "put", "a", Some(("value", json!({"id": "a", "v": 1}))))]).unwrap();
        let mut own = mutation("m0", "patch", "a", Some(("patch", json!({"own": true}))));
        own.base_version = Some(0);
        let results = store.apply_push("c", &[own]).unwrap();
        assert_eq!(results[0], MutationResult::Applied { id: "m0".into(), version: 2 }, "c's own write is no conflict");
        store.apply_push("c", &[mutation("m1b", "put", "a", Some(("value", json!({"id": "a", "v": 1}))))]).unwrap();
        let mut stale = mutation("m2", "put", "a", Some(("value", json!({"id": "a", "v": 2}))));
        stale.base_version = Some(0);
        let results = store.apply_push("other", &[stale.clone()]).unwrap();
        assert_eq!(
            results,
            vec![MutationResult::Conflict {
                id: "m2".into(),
                version: 3,
                value: Some(json!({"id": "a", "v": 1})),
                hlc: None
            }]
        );
        stale.base_version = Some(3);
        assert_eq!(
            store.apply_push("other", &[stale]).unwrap()[0],
            MutationResult::Applied { id: "m2".into(), version: 4 }
        );
    }

    #[test]
    fn invalid_mutations_are_rejected_permanently_and_the_rest_proceed() {
        let store = Store::open(":memory:").unwrap();
        let results = store
            .apply_push(
                "c",
                &[mutation("bad", "put", "a", None), mutation("good", "put", "b", Some(("value", json!({}))))],
            )
            .unwrap();
        assert!(
            matches!(&results[0], MutationResult::Rejected { permanent: true, code, .. } if code == "INVALID_MUTATION")
        );
        assert!(matches!(&results[1], MutationResult::Applied { .. }));
    }

    #[test]
    fn records_lists_everything_with_keys_as_json() {
        let store = Store::open(":memory:").unwrap();
        let mut numbered = mutation("m3", "put", "x", Some(("value", json!({"n": 7}))));
        numbered.key = Key::Number(7.0);
        numbered.collection = "notes".into();
        store
            .apply_push(
                "c",
                &[
                    mutation("m1", "put", "b", Some(("value", json!({"id": "b"})))),
                    mutation("m2", "put", "a", Some(("value", json!({"id": "a"})))),
                    mutation("m4", "delete", "a", None),
                    numbered,
                ],
            )
            .unwrap();
        let listed: Vec<(String, Value, Option<Value>, u64)> = store
            .records()
            .unwrap()
            .into_iter()
            .map(|r| (r.collection, r.key, r.record.value, r.record.version))
            .collect();
        assert_eq!(
            listed,
            vec![
                ("notes".into(), json!(7), Some(json!({"n": 7})), 1),
                ("todos".into(), json!("a"), None, 2),
                ("todos".into(), json!("b"), Some(json!({"id": "b"})), 1),
            ]
        );
    }

    fn keys(changes: &[Change]) -> Vec<String> {
        changes.iter().map(|c| format!("{}/{}", c.collection, serde_json::to_string(&c.key).unwrap())).collect()
    }

    #[test]
    fn stamps_must_be_the_pushers_and_runaway_ones_are_capped() {
        let store = Store::open(":memory:").unwrap();
        let mut foreign = mutation("m1", "put", "a", Some(("value", json!({"id": "a"}))));
        foreign.hlc = Some("0000000003e80000-someone-else".into());
        let results = store.apply_push("c", &[foreign]).unwrap();
        assert!(
            matches!(&results[0], MutationResult::Rejected { code, permanent: true, .. } if code == "INVALID_MUTATION")
        );
        let mut runaway = mutation("m2", "put", "a", Some(("value", json!({"id": "a"}))));
        runaway.hlc = Some("ffffffffffff0000-c".into());
        store.apply_push("c", &[runaway]).unwrap();
        let stored = store.record("todos", &Key::Text("a".into())).unwrap().unwrap().hlc.unwrap();
        assert!(stored.as_str() < "ffffffffffff0000-c" && stored.ends_with("-c"), "{stored}");
    }

    #[test]
    fn writes_take_increasing_seqs_and_pull_pages_by_them() {
        let store = Store::open(":memory:").unwrap();
        let mut note = mutation("m2", "put", "n", Some(("value", json!({"id": "n"}))));
        note.collection = "notes".into();
        note.hlc = Some("0000000007d00002-c".into());
        let batch = [
            mutation("m1", "put", "a", Some(("value", json!({"id": "a"})))),
            note,
            mutation("m3", "patch", "zz", Some(("patch", json!({"x": 1})))), // rejected: no seq
            mutation("m4", "put", "b", Some(("value", json!({"id": "b"})))),
        ];
        store.apply_push("c", &batch).unwrap();
        assert_eq!(store.latest_seq(), 3);
        store.apply_push("c", &batch).unwrap(); // all duplicates: nothing moves
        assert_eq!(store.latest_seq(), 3);
        let (page, cursor, more) = store.pull(0, 2, None).unwrap();
        assert_eq!((keys(&page), cursor, more), (vec!["todos/\"a\"".into(), "notes/\"n\"".into()], 2, true));
        assert_eq!(page[1].hlc.as_deref(), Some("0000000007d00002-c"));
        let (page, cursor, more) = store.pull(cursor, 2, None).unwrap();
        assert_eq!((keys(&page), cursor, more), (vec!["todos/\"b\"".into()], 3, false));
        assert_eq!(store.pull(3, 2, None).unwrap(), (vec![], 3, false), "caught up: the cursor stays");
        // Rewriting "a" moves it to the end, with its latest state only.
        store.apply_push("c", &[mutation("m5", "delete", "a", None)]).unwrap();
        let (page, cursor, _) = store.pull(3, 10, None).unwrap();
        assert_eq!(cursor, 4);
        assert_eq!(
            page,
            vec![Change { collection: "todos".into(), key: Key::Text("a".into()), value: None, version: 2, hlc: None }]
        );
        let todos = ["todos".to_owned()];
        assert_eq!(keys(&store.pull(0, 10, Some(&todos)).unwrap().0), vec!["todos/\"b\"", "todos/\"a\""]);
        assert_eq!(store.pull(0, 10, Some(&[])).unwrap(), (vec![], 0, false));
    }

    #[test]
    fn compaction_drops_old_tombstones_and_expires_older_cursors() {
        let store = Store::open(":memory:").unwrap();
        let put = |id: &str, key: &str| mutation(id, "put", key, Some(("value", json!({"id": key}))));
        store.apply_push("c", &[put("m1", "a"), put("m2", "b"), put("m3", "c")]).unwrap(); // seqs 1..=3
        store.apply_push("c", &[mutation("m4", "delete", "a", None), mutation("m5", "delete", "c", None)]).unwrap(); // 4, 5
        assert_eq!(store.compact(5).unwrap(), (1, 4), "the tombstone at 4 goes; the one at 5 stays");
        assert!(matches!(store.pull(3, 10, None), Err(StoreError::CursorExpired(_))));
        assert_eq!(keys(&store.pull(4, 10, None).unwrap().0), vec!["todos/\"c\""]);
        let (all, cursor, _) = store.pull(0, 10, None).unwrap();
        assert_eq!((keys(&all), cursor), (vec!["todos/\"b\"".into(), "todos/\"c\"".into()], 5));
        // Compacting everything, past the end: the horizon stops at the last seq, and the newest
        // seq is never handed out again although its record is gone.
        assert_eq!(store.compact(u64::MAX).unwrap(), (1, 5));
        assert_eq!(store.compact(2).unwrap(), (0, 5), "the horizon never goes down");
        assert_eq!(store.pull(5, 10, None).unwrap(), (vec![], 5, false));
        store.apply_push("c", &[put("m6", "d")]).unwrap();
        assert_eq!(store.pull(5, 10, None).unwrap().1, 6);
    }

    #[test]
    fn a_cursor_this_database_never_issued_expires() {
        let store = Store::open(":memory:").unwrap();
        assert_eq!(store.pull(0, 10, None).unwrap(), (vec![], 0, false));
        assert!(matches!(store.pull(7, 10, None), Err(StoreError::CursorExpired(m)) if m.contains("not issued")));
    }

    #[test]
    fn a_file_store_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wharf.sqlite");
        let path = path.to_str().unwrap();
        Store::open(path).unwrap().apply_push("c", &[mutation("m1", "put", "a", Some(("value", json!({}))))]).unwrap();
        let store = Store::open(path).unwrap();
        assert_eq!(store.applied_count().unwrap(), 1);
        assert_eq!(store.latest_seq(), 1, "the counter is persisted");
    }
}
