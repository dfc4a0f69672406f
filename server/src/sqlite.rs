//! The SQLite backend (the default): a file, or `:memory:`; each push batch is applied in one
//! SQLite `IMMEDIATE` transaction. The schema and its migrations are in `schema.rs`.
//!
//! Why `seq > cursor` never skips a change here: `seq` is drawn from the `last_seq` counter
//! *inside* the batch's IMMEDIATE transaction, and SQLite admits one write transaction at a time
//! (this process additionally serializes them behind the connection Mutex, which pulls take
//! too). So seqs become visible in commit order: once a reader sees seq N, every seq below N is
//! committed and visible as well; no transaction still in flight can commit a smaller one later.
//! One server process owns the file: several processes over one SQLite file are not supported
//! (use PostgreSQL for several instances).
//!
//! The [`Storage`] methods run the blocking SQLite calls on tokio's blocking pool.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde_json::Value;
use wharf::core::protocol::{Change, Mutation, MutationResult};
use wharf::core::Key;

use crate::schema::{self, COMPACTED_THROUGH, COMPACTED_VERSION, LAST_SEQ};
use crate::store::{
    compacted, decide, key_text, never_issued, now_ms, parse_json, signed, stored_shape, unsigned, Author, CommitHook,
    Cursor, Decision, ListedRecord, PullPage, Pushed, Space, Storage, StoreError, StoreFuture, StoredRecord,
};

/// How many ledger entries one pruning transaction deletes.
const PRUNE_CHUNK: i64 = 5_000;

/// The SQLite store. Cheap to clone: clones share the connection.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    connection: Mutex<Connection>,
    /// The last committed `seq`, readable without the lock (for live pokes).
    latest: AtomicU64,
}

impl SqliteStore {
    /// Opens (creating, migrating) the store at `path`, or in memory for `:memory:`.
    pub fn open(path: &str) -> Result<SqliteStore, StoreError> {
        let mut connection =
            if path == ":memory:" { Connection::open_in_memory()? } else { Connection::open(Path::new(path))? };
        connection.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
        schema::migrate(&mut connection)?;
        let latest = AtomicU64::new(schema::read_meta(&connection, LAST_SEQ)?);
        Ok(SqliteStore { inner: Arc::new(Inner { connection: Mutex::new(connection), latest }) })
    }

    /// [`SqliteStore::open`] as a shareable [`Storage`].
    pub fn open_shared(path: &str) -> Result<Arc<dyn Storage>, StoreError> {
        Ok(Arc::new(SqliteStore::open(path)?))
    }

    fn connection(&self) -> MutexGuard<'_, Connection> {
        self.inner.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `work` on a clone of this store on tokio's blocking pool.
    fn blocking<T, F>(&self, work: F) -> StoreFuture<'_, T>
    where
        T: Send + 'static,
        F: FnOnce(SqliteStore) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || work(store)).await.map_err(|e| StoreError::Internal(e.to_string()))?
        })
    }

    /// The blocking `apply_push`; with `fail_before_commit` it does everything, then rolls back.
    pub fn apply_push_blocking(
        &self,
        author: &Author,
        mutations: &[Mutation],
        fail_before_commit: bool,
    ) -> Result<Pushed, StoreError> {
        let mut connection = self.connection();
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Read inside the write transaction: see the module comment.
        let first = schema::read_meta(&tx, LAST_SEQ)?;
        let floor = schema::read_meta(&tx, COMPACTED_VERSION)?;
        let mut seq = first;
        let now = now_ms();
        let mut results = Vec::with_capacity(mutations.len());
        for mutation in mutations {
            results.push(apply_one(&tx, author, mutation, &mut seq, floor, now)?);
        }
        if seq != first {
            schema::write_meta(&tx, LAST_SEQ, seq)?;
        }
        if fail_before_commit {
            return Err(StoreError::Corrupt("injected failure".into()));
        }
        tx.commit()?;
        // Still under the lock, so `latest` moves in commit order.
        self.inner.latest.fetch_max(seq, Ordering::AcqRel);
        Ok(Pushed { results, cursor: (seq != first).then_some(seq) })
    }

    /// The blocking `pull` (see [`Storage::pull`]).
    pub fn pull_blocking(
        &self,
        spaces: &[Space],
        cursor: Cursor,
        limit: usize,
        collections: Option<&[String]>,
    ) -> Result<PullPage, StoreError> {
        let connection = self.connection();
        let horizon = schema::read_meta(&connection, COMPACTED_THROUGH)?;
        if cursor.expired(horizon) {
            return Err(compacted(cursor.seq, horizon));
        }
        let last = schema::read_meta(&connection, LAST_SEQ)?;
        if cursor.seq > last {
            return Err(never_issued(cursor.seq, last));
        }
        // One `(space, seq)` index range per space, merged by seq: the page costs the same however
        // many records other spaces hold.
        let fetch = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
        let mut args =
            vec![rusqlite::types::Value::Integer(signed(cursor.seq)), rusqlite::types::Value::Integer(fetch)];
        let mut in_collections = String::new();
        if let Some(names) = collections {
            let marks: Vec<String> = (0..names.len()).map(|i| format!("?{}", i + 3)).collect();
            in_collections = format!(" AND collection IN ({})", marks.join(", "));
            args.extend(names.iter().map(|c| rusqlite::types::Value::Text(c.clone())));
        }
        let per_space: Vec<String> = spaces
            .iter()
            .map(|space| {
                args.push(rusqlite::types::Value::Text(space.as_str().to_owned()));
                format!(
                    "SELECT * FROM (SELECT collection, key, value, version, hlc, seq, space, shape FROM records
                     WHERE space = ?{} AND seq > ?1{in_collections} ORDER BY seq LIMIT ?2)",
                    args.len()
                )
            })
            .collect();
        if per_space.is_empty() {
            return Ok((Vec::new(), cursor, false));
        }
        let sql = format!("{} ORDER BY seq LIMIT ?2", per_space.join(" UNION ALL "));
        let mut statement = connection.prepare(&sql)?;
        let rows = statement.query_map(rusqlite::params_from_iter(args), |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Option<String>>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, Option<String>>(4)?,
                row.get::<_, i64>(5)?,
                row.get::<_, String>(6)?,
                row.get::<_, Option<i64>>(7)?,
            ))
        })?;
        let mut changes = Vec::new();
        let mut next = cursor.seq;
        let mut has_more = false;
        for row in rows {
            let (collection, key, value, version, hlc, seq, space, shape) = row?;
            if changes.len() == limit {
                has_more = true;
                break;
            }
            let value = value.as_deref().map(|text| parse_json::<Value>(text, &collection, &key)).transpose()?;
            let parsed_key = parse_json::<Key>(&key, &collection, &key)?;
            next = unsigned(seq);
            let (version, space) = (unsigned(version), Some(space));
            let shape = stored_shape(shape);
            changes.push(Change { collection, key: parsed_key, value, version, hlc, space, shape });
        }
        Ok((changes, cursor.after(next, horizon), has_more))
    }

    fn compact_blocking(&self, before_seq: u64) -> Result<(u64, u64), StoreError> {
        let mut connection = self.connection();
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let through = before_seq.saturating_sub(1).min(schema::read_meta(&tx, LAST_SEQ)?);
        let removed: Option<i64> = tx.query_row(
            "SELECT MAX(version) FROM records WHERE value IS NULL AND seq <= ?1",
            params![signed(through)],
            |row| row.get(0),
        )?;
        let floor = schema::read_meta(&tx, COMPACTED_VERSION)?.max(removed.map_or(0, unsigned));
        schema::write_meta(&tx, COMPACTED_VERSION, floor)?;
        let deleted = tx.execute("DELETE FROM records WHERE value IS NULL AND seq <= ?1", params![signed(through)])?;
        let horizon = through.max(schema::read_meta(&tx, COMPACTED_THROUGH)?);
        schema::write_meta(&tx, COMPACTED_THROUGH, horizon)?;
        tx.commit()?;
        Ok((u64::try_from(deleted).unwrap_or(u64::MAX), horizon))
    }

    /// Deletes the ledger entries written before `before_ms`, [`PRUNE_CHUNK`] rows per
    /// transaction, so pushes wait for one chunk at most, never for the whole pass.
    fn prune_ledgers_blocking(&self, before_ms: u64) -> Result<(u64, u64), StoreError> {
        let mut removed = [0u64; 2];
        for (table, count) in ["applied_mutations", "rejected_mutations"].into_iter().zip(&mut removed) {
            let sql = format!(
                "DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE written_at < ?1 LIMIT ?2)"
            );
            loop {
                let deleted = self.connection().execute(&sql, params![signed(before_ms), PRUNE_CHUNK])?;
                *count += u64::try_from(deleted).unwrap_or(0);
                if i64::try_from(deleted).unwrap_or(i64::MAX) < PRUNE_CHUNK {
                    break;
                }
            }
        }
        Ok((removed[0], removed[1]))
    }

    fn records_blocking(&self) -> Result<Vec<ListedRecord>, StoreError> {
        let connection = self.connection();
        let mut statement = connection.prepare(
            "SELECT space, collection, key, value, version, writer, hlc, writer_seq, shape FROM records
             ORDER BY space, collection, key",
        )?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, Option<String>>(3)?,
                row.get::<_, i64>(4)?,
                row.get::<_, Option<String>>(5)?,
                row.get::<_, Option<String>>(6)?,
                row.get::<_, Option<i64>>(7)?,
                row.get::<_, Option<i64>>(8)?,
            ))
        })?;
        rows.map(|row| {
            let (space, collection, key, value, version, writer, hlc, writer_seq, shape) = row?;
            let value = value.as_deref().map(|text| parse_json::<Value>(text, &collection, &key)).transpose()?;
            let parsed_key = parse_json::<Value>(&key, &collection, &key)?;
            Ok(ListedRecord {
                space: Space::from_stored(space),
                collection,
                key: parsed_key,
                record: StoredRecord {
                    value,
                    version: unsigned(version),
                    writer,
                    writer_seq: writer_seq.map(unsigned),
                    hlc,
                    shape: stored_shape(shape),
                },
            })
        })
        .collect()
    }
}

impl Storage for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn apply_push(&self, author: Author, mutations: Vec<Mutation>) -> StoreFuture<'_, Pushed> {
        self.blocking(move |store| store.apply_push_blocking(&author, &mutations, false))
    }

    fn apply_push_then_fail(&self, author: Author, mutations: Vec<Mutation>) -> StoreFuture<'_, ()> {
        self.blocking(move |store| store.apply_push_blocking(&author, &mutations, true).map(|_| ()))
    }

    fn pull(
        &self,
        spaces: Vec<Space>,
        cursor: Cursor,
        limit: usize,
        collections: Option<Vec<String>>,
    ) -> StoreFuture<'_, PullPage> {
        self.blocking(move |store| store.pull_blocking(&spaces, cursor, limit, collections.as_deref()))
    }

    fn latest_seq(&self) -> StoreFuture<'_, u64> {
        let latest = self.inner.latest.load(Ordering::Acquire);
        Box::pin(async move { Ok(latest) })
    }

    fn latest_seq_in(&self, spaces: Vec<Space>) -> StoreFuture<'_, u64> {
        self.blocking(move |store| {
            let connection = store.connection();
            let mut statement = connection.prepare_cached("SELECT MAX(seq) FROM records WHERE space = ?1")?;
            let mut latest = 0;
            for space in &spaces {
                let seq: Option<i64> = statement.query_row(params![space.as_str()], |row| row.get(0))?;
                latest = latest.max(seq.map_or(0, unsigned));
            }
            Ok(latest)
        })
    }

    fn bind_client(&self, client_id: String, user: String) -> StoreFuture<'_, bool> {
        self.blocking(move |store| {
            let connection = store.connection();
            connection.execute(
                "INSERT INTO client_owners (client_id, user_id) VALUES (?1, ?2) ON CONFLICT (client_id) DO NOTHING",
                params![client_id, user],
            )?;
            let owner: String = connection.query_row(
                "SELECT user_id FROM client_owners WHERE client_id = ?1",
                params![client_id],
                |row| row.get(0),
            )?;
            Ok(owner == user)
        })
    }

    fn probe(&self) -> StoreFuture<'_, u64> {
        self.blocking(|store| schema::read_meta(&store.connection(), LAST_SEQ))
    }

    fn compact(&self, before_seq: u64) -> StoreFuture<'_, (u64, u64)> {
        self.blocking(move |store| store.compact_blocking(before_seq))
    }

    fn tombstones_written_before(&self, written_before_ms: u64) -> StoreFuture<'_, u64> {
        self.blocking(move |store| {
            let seq: Option<i64> = store.connection().query_row(
                "SELECT MAX(seq) FROM records WHERE value IS NULL AND written_at < ?1",
                params![signed(written_before_ms)],
                |row| row.get(0),
            )?;
            Ok(seq.map_or(0, unsigned))
        })
    }

    fn prune_ledgers(&self, written_before_ms: u64) -> StoreFuture<'_, (u64, u64)> {
        self.blocking(move |store| store.prune_ledgers_blocking(written_before_ms))
    }

    fn record(&self, space: Space, collection: String, key: Key) -> StoreFuture<'_, Option<StoredRecord>> {
        self.blocking(move |store| read_record(&store.connection(), &space, &collection, &key_text(&key)))
    }

    fn records(&self) -> StoreFuture<'_, Vec<ListedRecord>> {
        self.blocking(|store| store.records_blocking())
    }

    fn applied_count(&self) -> StoreFuture<'_, u64> {
        self.blocking(|store| {
            let count: i64 =
                store.connection().query_row("SELECT COUNT(*) FROM applied_mutations", [], |row| row.get(0))?;
            Ok(unsigned(count))
        })
    }

    fn on_commit(&self, _hook: CommitHook) {
        // Every commit goes through this process, which pokes its sockets itself.
    }
}

fn read_record(
    connection: &Connection,
    space: &Space,
    collection: &str,
    key: &str,
) -> Result<Option<StoredRecord>, StoreError> {
    type Row = (Option<String>, i64, Option<String>, Option<String>, Option<i64>, Option<i64>);
    let row: Option<Row> = connection
        .query_row(
            "SELECT value, version, writer, hlc, writer_seq, shape FROM records
             WHERE space = ?1 AND collection = ?2 AND key = ?3",
            params![space.as_str(), collection, key],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?)),
        )
        .optional()?;
    row.map(|(value, version, writer, hlc, writer_seq, shape)| {
        let value = value.map(|text| parse_json::<Value>(&text, collection, key)).transpose()?;
        let (version, writer_seq, shape) = (unsigned(version), writer_seq.map(unsigned), stored_shape(shape));
        Ok(StoredRecord { value, version, writer, writer_seq, hlc, shape })
    })
    .transpose()
}

/// Applies one mutation of `author`, in its space; a write takes the next `seq`. `floor`: see
/// [`decide`].
fn apply_one(
    tx: &Connection,
    author: &Author,
    mutation: &Mutation,
    seq: &mut u64,
    floor: u64,
    now: f64,
) -> Result<MutationResult, StoreError> {
    let (client_id, space) = (author.client_id.as_str(), author.space.as_str());
    let ledger_key = params![author.name, client_id, mutation.id];
    let earlier: Option<i64> = tx
        .query_row(
            "SELECT version FROM applied_mutations WHERE author = ?1 AND client_id = ?2 AND id = ?3",
            ledger_key,
            |row| row.get(0),
        )
        .optional()?;
    if let Some(version) = earlier {
        return Ok(MutationResult::Duplicate { id: mutation.id.clone(), version: unsigned(version) });
    }
    let refused: Option<(String, String)> = tx
        .query_row(
            "SELECT code, message FROM rejected_mutations WHERE author = ?1 AND client_id = ?2 AND id = ?3",
            ledger_key,
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    if let Some((code, message)) = refused {
        return Ok(MutationResult::Rejected { id: mutation.id.clone(), code, message, permanent: true });
    }
    if let Some(forbidden) = author.forbidden(&mutation.id) {
        return Ok(forbidden);
    }
    let key = key_text(&mutation.key);
    let current = read_record(tx, &author.space, &mutation.collection, &key)?;
    match decide(client_id, mutation, current.as_ref(), floor, now) {
        Decision::Reject { code, message } => {
            // Recorded, so that a resend of the same id (the client never saw this answer) gets
            // the same answer, even if the data changed meanwhile and it would now apply.
            tx.execute(
                "INSERT INTO rejected_mutations (author, client_id, id, code, message, written_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![author.name, client_id, mutation.id, code, message, now as i64],
            )?;
            Ok(MutationResult::Rejected { id: mutation.id.clone(), code: code.to_owned(), message, permanent: true })
        }
        Decision::Conflict(result) => Ok(result),
        Decision::Write { value, version, hlc } => {
            let text = value.as_ref().map(Value::to_string);
            *seq += 1;
            tx.execute(
                "INSERT INTO records
                 (space, collection, key, value, version, seq, hlc, writer, writer_seq, written_at, shape)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (space, collection, key) DO UPDATE SET value = excluded.value,
                 version = excluded.version, seq = excluded.seq, hlc = excluded.hlc, writer = excluded.writer,
                 writer_seq = excluded.writer_seq, written_at = excluded.written_at, shape = excluded.shape",
                params![
                    space,
                    mutation.collection,
                    key,
                    text,
                    signed(version),
                    signed(*seq),
                    hlc,
                    client_id,
                    signed(mutation.seq),
                    now as i64,
                    mutation.shape
                ],
            )?;
            tx.execute(
                "INSERT INTO applied_mutations (author, client_id, id, version, written_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![author.name, client_id, mutation.id, signed(version), now as i64],
            )?;
            Ok(MutationResult::Applied { id: mutation.id.clone(), version })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_file_store_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wharf.sqlite");
        let path = path.to_str().unwrap();
        let put: Mutation = serde_json::from_value(
            json!({"id": "m1", "seq": 1, "collection": "t", "key": "a", "op": "put", "value": {}}),
        )
        .unwrap();
        SqliteStore::open(path).unwrap().apply_push_blocking(&Author::shared("c"), &[put], false).unwrap();
        let store = SqliteStore::open(path).unwrap();
        assert_eq!(store.inner.latest.load(Ordering::Acquire), 1, "the counter is persisted");
        assert_eq!(store.pull_blocking(&[Space::shared()], Cursor::default(), 10, None).unwrap().0.len(), 1);
    }
}
