//! The PostgreSQL backend (`--database-url postgres://…`): any number of server instances over
//! one database. tokio-postgres (pure Rust, no libpq) with a deadpool connection pool; the schema
//! and its migrations are in `pg_schema.rs`.
//!
//! ## Why `seq > cursor` never skips a change here
//!
//! The trap: PostgreSQL runs write transactions concurrently, so if each took its `seq` when it
//! wrote (say from a SEQUENCE), transaction A could take 10, B take 11, B commit, a pull see 11
//! and move its cursor past 10, and A commit 10 afterwards: never pulled by that client.
//!
//! The scheme: **seq assignment and commit are serialized.** A batch does all its reads and
//! decisions first (locking the records it touches with `SELECT … FOR UPDATE`, in key order),
//! then runs one final statement that
//! 1. takes the row lock on the `last_seq` counter row (`UPDATE wharf_meta … RETURNING`),
//! 2. numbers its writes `last_seq + 1 …` and writes the records and both ledgers,
//! 3. queues `NOTIFY wharf_changes '<new last_seq>'`,
//!
//! and then COMMITs. The counter's row lock is held until the commit completes, and PostgreSQL
//! makes a transaction visible (ProcArrayEndTransaction) before it releases its locks, so the
//! next batch can only read the counter, and so take higher numbers, after the previous one is
//! visible to every new snapshot. Hence seqs become visible in the order they were assigned, and
//! a pull (one statement, so one snapshot) that sees seq N also sees every seq below N. The
//! serialized section is one statement plus the commit; reads, validation, conflict checks and
//! patching run concurrently. (The alternative, filtering pulls by `pg_snapshot_xmin`, keeps
//! commits parallel but needs cursors that encode transaction ids; see docs/server.md.)
//!
//! Deadlock freedom: row locks on records are taken in one statement in key order; the counter
//! lock is always the last lock a batch takes, and its holder waits for nothing else (it only
//! writes rows it already locked, inserts rows no running transaction can be inserting, since
//! all inserts happen under the counter lock, and NOTIFY). Compaction skips locked tombstones.
//!
//! Exactly once: the ledgers are read after the record locks (a concurrent batch carrying the
//! same mutation of the same author, necessarily on the same record of the same space, has then
//! committed and its id is seen); a batch that still loses a race (its new record or ledger row
//! was created by a transaction that committed after its reads: `ON CONFLICT DO NOTHING`
//! inserted fewer rows than planned) rolls back and starts over, as it does on a deadlock or
//! serialization error.
//!
//! Spaces: a document's identity is (space, collection, key); a batch locks, reads and writes
//! records of its author's space only, and reads the ledgers of its author and client only.
//!
//! Live pokes across instances: the final statement's NOTIFY (the cursor and the space written)
//! is delivered at commit, in commit order, to every instance's LISTEN connection
//! (`pg_listen.rs`), which pokes that instance's sockets that read the space.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use futures_util::future::{join, join5};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use wharf::core::id::SplitMix64;
use wharf::core::protocol::{Change, Mutation, MutationResult};
use wharf::core::Key;

pub use crate::pg_listen::CHANNEL;
use crate::pg_listen::{listen, Hooks};
use crate::pg_schema;
use crate::pg_tls::{self, PgConnect};
use crate::store::{
    compacted, decide, key_text, never_issued, now_ms, parse_json, signed, stored_shape, unsigned, Author, CommitHook,
    Cursor, Decision, ListedRecord, PullPage, Pushed, Space, Storage, StoreError, StoreFuture, StoredRecord,
};

/// How often a batch that lost a race (or a deadlock) is started over before giving up.
const MAX_ATTEMPTS: u32 = 20;

/// Options of the PostgreSQL backend.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Most pooled connections this instance opens (plus one for LISTEN).
    pub pool_size: usize,
    /// Test hook: draw seqs from a SEQUENCE at write time and commit without serializing (the
    /// classic out-of-order-commit bug), to prove the tests catch it. Never in production.
    #[doc(hidden)]
    pub naive_seq: bool,
    /// Test hook: stall each batch for a random time up to this long after its writes were
    /// decided and before its final statement, as a slow transaction would.
    #[doc(hidden)]
    pub stall: Option<Duration>,
    /// The root certificates (PEM, `--database-ca`) the server's TLS certificate must chain to;
    /// without, `sslmode` decides (`pg_tls.rs`).
    pub ca_pem: Option<Vec<u8>>,
}

impl Default for PgOptions {
    fn default() -> PgOptions {
        PgOptions { pool_size: 16, naive_seq: false, stall: None, ca_pem: None }
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> StoreError {
        StoreError::Postgres(error.as_db_error().map_or_else(|| with_causes(&error), ToString::to_string))
    }
}

/// An error and its causes, `: `-separated: tokio-postgres shows only its kind ("error performing
/// TLS handshake"), the reason is in the source ("invalid peer certificate: UnknownIssuer").
pub(crate) fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl From<PoolError> for StoreError {
    fn from(error: PoolError) -> StoreError {
        match error {
            PoolError::Backend(e) => e.into(),
            other => StoreError::Postgres(format!("connection pool: {other}")),
        }
    }
}

/// The PostgreSQL store: a connection pool, and a LISTEN connection that hears every
/// instance's commits.
pub struct PgStore {
    pool: Pool,
    options: PgOptions,
    hooks: Hooks,
    listener: tokio::task::JoinHandle<()>,
    random: Mutex<SplitMix64>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.listener.abort();
        self.pool.close();
    }
}

/// Why an attempt at a batch did not finish.
enum Failure {
    /// Lost a race or a deadlock: roll back and start over.
    Retry(String),
    Fatal(StoreError),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(error: tokio_postgres::Error) -> Failure {
        let retry = [SqlState::T_R_DEADLOCK_DETECTED, SqlState::T_R_SERIALIZATION_FAILURE, SqlState::UNIQUE_VIOLATION];
        let raced = error.code() == Some(&SqlState::INVALID_TEXT_REPRESENTATION)
            && error.as_db_error().is_some_and(|e| e.message().contains(RACED));
        if raced || error.code().is_some_and(|code| retry.contains(code)) {
            Failure::Retry(error.as_db_error().map_or_else(|| error.to_string(), ToString::to_string))
        } else {
            Failure::Fatal(error.into())
        }
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Failure {
        Failure::Fatal(error)
    }
}

/// A pooled connection used for a hand-run transaction (BEGIN … COMMIT, so the COMMIT can be
/// pipelined). If it is dropped inside a transaction (the request was cancelled, a panic), the
/// connection is taken out of the pool and closed, which rolls the transaction back: it never
/// goes back to the pool mid-transaction.
struct Session {
    object: Option<deadpool_postgres::Object>,
    in_transaction: bool,
}

impl Session {
    fn client(&self) -> &deadpool_postgres::ClientWrapper {
        self.object.as_ref().expect("a session has its connection until dropped")
    }

    /// Ends a failed attempt's transaction (a no-op outside one). If even that fails, the
    /// connection stays marked and is discarded when the session is dropped.
    async fn rollback(&mut self) {
        if self.in_transaction && self.client().batch_execute("ROLLBACK").await.is_ok() {
            self.in_transaction = false;
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.in_transaction {
            if let Some(object) = self.object.take() {
                drop(deadpool_postgres::Object::take(object));
            }
        }
    }
}

/// One record write a batch will make (the last one per record).
struct PendingWrite {
    /// Its position among the batch's writes (1-based): its seq is `last_seq + offset`.
    offset: i64,
    value: Option<String>,
    version: i64,
    hlc: Option<String>,
    existed: bool,
    /// The mutation's `seq` (its client's commit order), for the late-request rule.
    writer_seq: i64,
    /// The mutation's `shape`.
    shape: Option<i32>,
}

/// Locks the records a batch touches, in key order (so two batches never wait on each other in
/// a cycle), and reads them.
const LOCK_RECORDS: &str = "
    SELECT collection, key, value, version, writer, hlc, writer_seq, shape FROM wharf_records
    WHERE space = $3 AND (collection, key) IN (SELECT * FROM unnest($1::text[], $2::text[]))
    ORDER BY collection, key
    FOR UPDATE";

/// The ledgers of the batch's author and client: `$1` author, `$2` client id, `$3` op ids.
const READ_APPLIED: &str =
    "SELECT id, version FROM wharf_applied_mutations WHERE author = $1 AND client_id = $2 AND id = ANY($3::text[])";
const READ_REJECTED: &str = "SELECT id, code, message FROM wharf_rejected_mutations
    WHERE author = $1 AND client_id = $2 AND id = ANY($3::text[])";
/// The `floor` of `decide`: read after the locks, so a compaction that removed a record the batch
/// did not find has committed its floor too (they are one transaction).
const READ_FLOOR: &str = "SELECT value FROM wharf_meta WHERE name = 'compacted_version'";

/// The serialized section: takes the counter lock, numbers and writes everything, notifies.
/// `$1`: naive (test hook: seqs were drawn already, `$2` is their maximum); otherwise `$2` is
/// the number of seqs to take. Every sub-statement reads `s`, so none writes before the lock.
/// `$17`: the rows the batch planned to update and insert (records, applied, rejected); if
/// fewer were written, a transaction that committed after this one's reads created some of them,
/// and the statement fails with [`RACED`], aborting the transaction (the batch starts over).
/// Every row written takes `written_at`'s default, the transaction's time (`pg_schema.rs`).
/// `$18`: the writes' mutation seqs (`writer_seq`), in the order of `$4..$10`. `$19`: the space
/// the batch writes into; `$20`: its author's ledger name; `$21`: the writes' shapes. The NOTIFY names the space.
/// (The failing cast mentions `s.last` so the planner cannot fold it, and fail, in advance.)
const FINISH: &str = "
    WITH s AS (
        UPDATE wharf_meta SET value = CASE WHEN $1 THEN GREATEST(value, $2) ELSE value + $2 END
        WHERE name = 'last_seq'
        RETURNING CASE WHEN $1 THEN 0 ELSE value - $2 END AS base, value AS last
    ),
    w AS (
        SELECT * FROM unnest($4::text[], $5::text[], $6::text[], $7::int8[], $8::int8[], $9::text[], $10::bool[],
                             $18::int8[], $21::int4[])
            AS u(collection, key, value, version, o, hlc, existed, writer_seq, shape)
    ),
    upd AS (
        UPDATE wharf_records r
        SET value = w.value, version = w.version, seq = s.base + w.o, hlc = w.hlc, writer = $3,
            writer_seq = w.writer_seq, written_at = DEFAULT, shape = w.shape
        FROM s, w
        WHERE w.existed AND r.space = $19 AND r.collection = w.collection AND r.key = w.key
        RETURNING 1
    ),
    ins AS (
        INSERT INTO wharf_records (space, collection, key, value, version, seq, hlc, writer, writer_seq, shape)
        SELECT $19, w.collection, w.key, w.value, w.version, s.base + w.o, w.hlc, $3, w.writer_seq, w.shape FROM s, w
        WHERE NOT w.existed
        ON CONFLICT DO NOTHING
        RETURNING 1
    ),
    app AS (
        INSERT INTO wharf_applied_mutations (author, client_id, id, version)
        SELECT $20, $3, a.id, a.version FROM s, unnest($11::text[], $12::int8[]) AS a(id, version)
        ON CONFLICT DO NOTHING
        RETURNING 1
    ),
    rej AS (
        INSERT INTO wharf_rejected_mutations (author, client_id, id, code, message)
        SELECT $20, $3, j.id, j.code, j.message
        FROM s, unnest($13::text[], $14::text[], $15::text[]) AS j(id, code, message)
        ON CONFLICT DO NOTHING
        RETURNING 1
    )
    SELECT s.last,
        (SELECT count(*) FROM (SELECT pg_notify('wharf_changes', s.last::text || ' ' || $19) WHERE $16) AS n),
        CASE WHEN ARRAY[(SELECT count(*) FROM upd), (SELECT count(*) FROM ins), (SELECT count(*) FROM app),
                        (SELECT count(*) FROM rej)] <> $17::int8[]
             THEN CAST('wharf: raced at ' || s.last AS int) END
    FROM s";

/// What the final statement's failing cast says when the batch lost a race.
const RACED: &str = "wharf: raced";

/// One statement, so one snapshot: the horizon, the last seq and the page agree. `$3`: the
/// spaces read; each is one range of the `(space, seq)` index, and the ranges are merged by seq,
/// so a page costs the same however many records other spaces hold. (It never states
/// `written_at IS NOT NULL`, so the global `(seq)` index is not a plan it can take: schema 7.)
#[doc(hidden)]
pub const PULL: &str = "
    SELECT h.value, l.value, r.collection, r.key, r.value, r.version, r.hlc, r.seq, r.space, r.shape
    FROM wharf_meta h
    JOIN wharf_meta l ON l.name = 'last_seq'
    LEFT JOIN LATERAL (
        SELECT p.* FROM unnest($3::text[]) AS sp(space), LATERAL (
            SELECT collection, key, value, version, hlc, seq, space, shape FROM wharf_records
            WHERE space = sp.space AND seq > $1
            ORDER BY seq LIMIT $2
        ) p
        ORDER BY p.seq LIMIT $2
    ) r ON true
    WHERE h.name = 'compacted_through'
    ORDER BY r.seq";

const PULL_COLLECTIONS: &str = "
    SELECT h.value, l.value, r.collection, r.key, r.value, r.version, r.hlc, r.seq, r.space, r.shape
    FROM wharf_meta h
    JOIN wharf_meta l ON l.name = 'last_seq'
    LEFT JOIN LATERAL (
        SELECT p.* FROM unnest($3::text[]) AS sp(space), LATERAL (
            SELECT collection, key, value, version, hlc, seq, space, shape FROM wharf_records
            WHERE space = sp.space AND seq > $1 AND collection = ANY($4::text[])
            ORDER BY seq LIMIT $2
        ) p
        ORDER BY p.seq LIMIT $2
    ) r ON true
    WHERE h.name = 'compacted_through'
    ORDER BY r.seq";

const LATEST: &str = "SELECT value FROM wharf_meta WHERE name = 'last_seq'";

/// The last change of each of `$1`'s spaces (a backward step in the `(space, seq)` index each).
const LATEST_IN: &str = "
    SELECT COALESCE(max(m.seq), 0) FROM unnest($1::text[]) AS sp(space),
        LATERAL (SELECT max(seq) AS seq FROM wharf_records WHERE space = sp.space) m";

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`, or any form
    /// tokio-postgres accepts, with libpq's `sslmode`s: `pg_tls.rs`), migrates the schema (safely
    /// when several instances start at once) and starts listening for other instances' commits.
    pub async fn connect(url: &str, options: PgOptions) -> Result<PgStore, StoreError> {
        let connect =
            pg_tls::prepare(url, options.ca_pem.as_deref()).map_err(|e| StoreError::Postgres(e.to_string()))?;
        let PgConnect { mut config, tls, .. } = connect.clone();
        if config.get_application_name().is_none() {
            config.application_name("wharf-server");
        }
        config.connect_timeout(Duration::from_secs(10));
        config.keepalives_idle(Duration::from_secs(30));
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(10)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| StoreError::Postgres(format!("connection pool: {e}")))?;
        {
            // The first connection: a certificate that does not verify fails here, explained.
            let first = pool.get().await.map_err(StoreError::from);
            let mut client = first.map_err(|e| match e {
                StoreError::Postgres(message) => StoreError::Postgres(pg_tls::explain(&connect, message)),
                other => other,
            })?;
            pg_schema::migrate(&mut client).await?;
            if options.naive_seq {
                let tx = client.transaction().await?;
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&pg_schema::MIGRATION_LOCK]).await?;
                tx.batch_execute("CREATE SEQUENCE IF NOT EXISTS wharf_naive_seq").await?;
                tx.commit().await?;
            }
        }
        let hooks: Hooks = Arc::default();
        let (ready, listening) = oneshot::channel();
        let listener = tokio::spawn(listen(config, tls, pool.clone(), Arc::clone(&hooks), ready));
        if tokio::time::timeout(Duration::from_secs(15), listening).await.is_err() {
            listener.abort();
            return Err(StoreError::Postgres(format!("could not LISTEN on {CHANNEL} within 15 s")));
        }
        let seed = now_ms() as u64;
        Ok(PgStore { pool, options, hooks, listener, random: Mutex::new(SplitMix64::new(seed)) })
    }

    /// [`PgStore::connect`] as a shareable [`Storage`].
    pub async fn connect_shared(url: &str, options: PgOptions) -> Result<Arc<dyn Storage>, StoreError> {
        Ok(Arc::new(PgStore::connect(url, options).await?))
    }

    async fn apply(&self, author: &Author, mutations: &[Mutation], fail: bool) -> Result<Pushed, StoreError> {
        let mut connection = Session { object: Some(self.pool.get().await?), in_transaction: false };
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.attempt(&mut connection, author, mutations, fail).await {
                Ok(pushed) => return Ok(pushed),
                Err(Failure::Fatal(error)) => {
                    connection.rollback().await;
                    return Err(error);
                }
                Err(Failure::Retry(why)) => {
                    connection.rollback().await;
                    if attempt >= MAX_ATTEMPTS {
                        return Err(StoreError::Postgres(format!("gave up after {attempt} attempts: {why}")));
                    }
                    let jitter = self.random_below(Duration::from_millis(2 * u64::from(attempt)));
                    tokio::time::sleep(jitter).await;
                }
            }
        }
    }

    fn random_below(&self, max: Duration) -> Duration {
        let sample = self.random.lock().unwrap_or_else(|p| p.into_inner()).next_f64();
        max.mul_f64(sample)
    }

    /// One attempt at a batch, in one transaction (see the module comment). Two round trips:
    /// BEGIN, the record locks and the ledger reads are pipelined (PostgreSQL runs them in order,
    /// so the reads see whatever a lock wait let commit), and so are the final statement and the
    /// COMMIT (the final statement fails, aborting the transaction, if the batch lost a race).
    async fn attempt(
        &self,
        session: &mut Session,
        author: &Author,
        mutations: &[Mutation],
        fail: bool,
    ) -> Result<Pushed, Failure> {
        let (client_id, space) = (author.client_id.as_str(), author.space.as_str());
        // The field, not `session.client()`: `in_transaction` is set while `client` is in use.
        let client = session.object.as_ref().expect("a session has its connection until dropped");
        let (lock, read_applied, read_rejected, read_floor, finish) = tokio::try_join!(
            client.prepare_cached(LOCK_RECORDS),
            client.prepare_cached(READ_APPLIED),
            client.prepare_cached(READ_REJECTED),
            client.prepare_cached(READ_FLOOR),
            client.prepare_cached(FINISH),
        )?;

        // 1. Lock and read the records the batch touches, then the ledgers.
        let addresses: Vec<(String, String)> = {
            let set: HashSet<(String, String)> =
                mutations.iter().map(|m| (m.collection.clone(), key_text(&m.key))).collect();
            let mut list: Vec<_> = set.into_iter().collect();
            list.sort();
            list
        };
        let collections: Vec<&str> = addresses.iter().map(|(c, _)| c.as_str()).collect();
        let keys: Vec<&str> = addresses.iter().map(|(_, k)| k.as_str()).collect();
        let ids: Vec<&str> = mutations.iter().map(|m| m.id.as_str()).collect();
        let by_ids: [&(dyn ToSql + Sync); 3] = [&author.name, &client_id, &ids];
        session.in_transaction = true;
        let (begun, rows, applied_rows, rejected_rows, floor_row) = join5(
            client.batch_execute("BEGIN"),
            client.query(&lock, &[&collections, &keys, &space]),
            client.query(&read_applied, &by_ids),
            client.query(&read_rejected, &by_ids),
            client.query_opt(&read_floor, &[]),
        )
        .await;
        begun?;
        let (rows, applied_rows, rejected_rows) = (rows?, applied_rows?, rejected_rows?);
        let floor = floor_row?.map_or(0, |row| unsigned(row.get(0)));
        let mut current: HashMap<(String, String), Option<StoredRecord>> = HashMap::new();
        for row in rows {
            let (collection, key): (String, String) = (row.get(0), row.get(1));
            let value: Option<String> = row.get(2);
            let value = value.map(|text| parse_json::<Value>(&text, &collection, &key)).transpose()?;
            let record = StoredRecord {
                value,
                version: unsigned(row.get(3)),
                writer: row.get(4),
                writer_seq: row.get::<_, Option<i64>>(6).map(unsigned),
                hlc: row.get(5),
                shape: stored_shape(row.get::<_, Option<i32>>(7).map(i64::from)),
            };
            current.insert((collection, key), Some(record));
        }
        let existed: HashSet<(String, String)> = current.keys().cloned().collect();
        let mut applied: HashMap<String, u64> =
            applied_rows.iter().map(|row| (row.get::<_, String>(0), unsigned(row.get(1)))).collect();
        let mut rejected: HashMap<String, (String, String)> =
            rejected_rows.iter().map(|row| (row.get::<_, String>(0), (row.get(1), row.get(2)))).collect();

        // 2. Decide every mutation, in order, against the state the batch has built so far.
        let now = now_ms();
        let mut results = Vec::with_capacity(mutations.len());
        let mut writes: BTreeMap<(String, String), PendingWrite> = BTreeMap::new();
        let mut new_applied: Vec<(&str, i64)> = Vec::new();
        let mut new_rejected: Vec<(&str, &'static str, String)> = Vec::new();
        let mut count: i64 = 0;
        for mutation in mutations {
            let id = mutation.id.clone();
            if let Some(&version) = applied.get(&mutation.id) {
                results.push(MutationResult::Duplicate { id, version });
                continue;
            }
            if let Some((code, message)) = rejected.get(&mutation.id) {
                results.push(MutationResult::Rejected {
                    id,
                    code: code.clone(),
                    message: message.clone(),
                    permanent: true,
                });
                continue;
            }
            if let Some(forbidden) = author.forbidden(&mutation.id) {
                results.push(forbidden);
                continue;
            }
            let address = (mutation.collection.clone(), key_text(&mutation.key));
            let record = current.get(&address).and_then(Option::as_ref);
            match decide(client_id, mutation, record, floor, now) {
                Decision::Reject { code, message } => {
                    rejected.insert(id.clone(), (code.to_owned(), message.clone()));
                    new_rejected.push((&mutation.id, code, message.clone()));
                    results.push(MutationResult::Rejected { id, code: code.to_owned(), message, permanent: true });
                }
                Decision::Conflict(result) => results.push(result),
                Decision::Write { value, version, hlc } => {
                    count += 1;
                    let text = value.as_ref().map(Value::to_string);
                    let existed = existed.contains(&address);
                    writes.insert(
                        address.clone(),
                        PendingWrite {
                            offset: count,
                            value: text,
                            version: signed(version),
                            hlc: hlc.clone(),
                            existed,
                            writer_seq: signed(mutation.seq),
                            shape: mutation.shape.and_then(|s| i32::try_from(s).ok()),
                        },
                    );
                    let (writer, writer_seq, shape) = (Some(client_id.to_owned()), Some(mutation.seq), mutation.shape);
                    current.insert(address, Some(StoredRecord { value, version, writer, writer_seq, hlc, shape }));
                    applied.insert(id.clone(), version);
                    new_applied.push((&mutation.id, signed(version)));
                    results.push(MutationResult::Applied { id, version });
                }
            }
        }
        if new_applied.is_empty() && new_rejected.is_empty() {
            if fail {
                return Err(Failure::Fatal(StoreError::Corrupt("injected failure".into())));
            }
            client.batch_execute("COMMIT").await?;
            session.in_transaction = false;
            return Ok(Pushed { results, cursor: None });
        }

        // 3. The serialized section.
        let mut offsets: Vec<i64> = writes.values().map(|w| w.offset).collect();
        let mut step = count;
        if self.options.naive_seq {
            // The bug this backend avoids: seqs handed out at write time, commits in any order.
            let drawn = client
                .query("SELECT nextval('wharf_naive_seq') FROM generate_series(1, $1::int8)", &[&count])
                .await?
                .iter()
                .map(|row| row.get::<_, i64>(0))
                .collect::<Vec<i64>>();
            for offset in &mut offsets {
                *offset = drawn[usize::try_from(*offset - 1).unwrap_or(0)];
            }
            step = drawn.iter().copied().max().unwrap_or(0);
        }
        if let Some(max) = self.options.stall {
            tokio::time::sleep(self.random_below(max)).await;
        }
        let w_collections: Vec<&str> = writes.keys().map(|(c, _)| c.as_str()).collect();
        let w_keys: Vec<&str> = writes.keys().map(|(_, k)| k.as_str()).collect();
        let w_values: Vec<Option<&str>> = writes.values().map(|w| w.value.as_deref()).collect();
        let w_versions: Vec<i64> = writes.values().map(|w| w.version).collect();
        let w_hlcs: Vec<Option<&str>> = writes.values().map(|w| w.hlc.as_deref()).collect();
        let w_existed: Vec<bool> = writes.values().map(|w| w.existed).collect();
        let w_writer_seqs: Vec<i64> = writes.values().map(|w| w.writer_seq).collect();
        let w_shapes: Vec<Option<i32>> = writes.values().map(|w| w.shape).collect();
        let a_ids: Vec<&str> = new_applied.iter().map(|(id, _)| *id).collect();
        let a_versions: Vec<i64> = new_applied.iter().map(|(_, v)| *v).collect();
        let r_ids: Vec<&str> = new_rejected.iter().map(|(id, _, _)| *id).collect();
        let r_codes: Vec<&str> = new_rejected.iter().map(|(_, code, _)| *code).collect();
        let r_messages: Vec<&str> = new_rejected.iter().map(|(_, _, message)| message.as_str()).collect();
        let notify = count > 0;
        let planned: [i64; 4] = [
            w_existed.iter().filter(|e| **e).count(),
            w_existed.iter().filter(|e| !**e).count(),
            a_ids.len(),
            r_ids.len(),
        ]
        .map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        let params: [&(dyn ToSql + Sync); 21] = [
            &self.options.naive_seq,
            &step,
            &client_id,
            &w_collections,
            &w_keys,
            &w_values,
            &w_versions,
            &offsets,
            &w_hlcs,
            &w_existed,
            &a_ids,
            &a_versions,
            &r_ids,
            &r_codes,
            &r_messages,
            &notify,
            &planned.as_slice(),
            &w_writer_seqs,
            &space,
            &author.name,
            &w_shapes,
        ];
        if fail {
            client.query_one(&finish, &params).await?;
            return Err(Failure::Fatal(StoreError::Corrupt("injected failure".into())));
        }
        // Sent back to back: the counter lock is held for the statement and the commit only.
        let (row, committed) = join(client.query_one(&finish, &params), client.batch_execute("COMMIT")).await;
        // The COMMIT ended the transaction either way: as a rollback if the statement failed.
        session.in_transaction = committed.is_err();
        let row = row?;
        committed?;
        let last: i64 = row.get(0);
        Ok(Pushed { results, cursor: notify.then_some(unsigned(last)) })
    }

    async fn pull_page(
        &self,
        spaces: Vec<Space>,
        cursor: Cursor,
        limit: usize,
        collections: Option<Vec<String>>,
    ) -> Result<PullPage, StoreError> {
        let client = self.pool.get().await?;
        let fetch = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
        let spaces: Vec<&str> = spaces.iter().map(Space::as_str).collect();
        let rows = match &collections {
            None => {
                let statement = client.prepare_cached(PULL).await?;
                client.query(&statement, &[&signed(cursor.seq), &fetch, &spaces]).await?
            }
            Some(names) => {
                let statement = client.prepare_cached(PULL_COLLECTIONS).await?;
                client.query(&statement, &[&signed(cursor.seq), &fetch, &spaces, names]).await?
            }
        };
        let first = rows.first().ok_or_else(|| StoreError::Corrupt("wharf_meta has no last_seq row".into()))?;
        let (horizon, last) = (unsigned(first.get(0)), unsigned(first.get(1)));
        if cursor.expired(horizon) {
            return Err(compacted(cursor.seq, horizon));
        }
        if cursor.seq > last {
            return Err(never_issued(cursor.seq, last));
        }
        let mut changes = Vec::new();
        let mut next = cursor.seq;
        let mut has_more = false;
        for row in &rows {
            let Some(seq) = row.get::<_, Option<i64>>(7) else { continue };
            if changes.len() == limit {
                has_more = true;
                break;
            }
            let (collection, key): (String, String) = (row.get(2), row.get(3));
            let value: Option<String> = row.get(4);
            let value = value.map(|text| parse_json::<Value>(&text, &collection, &key)).transpose()?;
            let parsed_key = parse_json::<Key>(&key, &collection, &key)?;
            next = unsigned(seq);
            changes.push(Change {
                collection,
                key: parsed_key,
                value,
                version: unsigned(row.get(5)),
                hlc: row.get(6),
                space: row.get(8),
                shape: stored_shape(row.get::<_, Option<i32>>(9).map(i64::from)),
            });
        }
        Ok((changes, cursor.after(next, horizon), has_more))
    }

    async fn compact_through(&self, before_seq: u64) -> Result<(u64, u64), StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let last = unsigned(tx.query_one(LATEST, &[]).await?.get(0));
        let through = signed(before_seq.saturating_sub(1).min(last));
        // SKIP LOCKED: a tombstone a running batch has locked is about to be rewritten (or kept):
        // waiting for it could deadlock with that batch, and leaving it costs nothing.
        let removed = tx
            .query(
                "DELETE FROM wharf_records WHERE (space, collection, key) IN (
                     SELECT space, collection, key FROM wharf_records
                     WHERE value IS NULL AND seq <= $1 AND written_at IS NOT NULL
                     FOR UPDATE SKIP LOCKED)
                 RETURNING version",
                &[&through],
            )
            .await?;
        let deleted = removed.len() as u64;
        let floor = removed.iter().map(|row| row.get::<_, i64>(0)).max().unwrap_or(0);
        tx.execute("UPDATE wharf_meta SET value = GREATEST(value, $1) WHERE name = 'compacted_version'", &[&floor])
            .await?;
        let horizon: i64 = tx
            .query_one(
                "UPDATE wharf_meta SET value = GREATEST(value, $1) WHERE name = 'compacted_through' RETURNING value",
                &[&through],
            )
            .await?
            .get(0);
        tx.commit().await?;
        Ok((deleted, unsigned(horizon)))
    }
}

/// A row of `space, collection, key, value, version, writer, hlc, writer_seq, shape`.
fn listed(row: &Row) -> Result<ListedRecord, StoreError> {
    let (collection, key): (String, String) = (row.get(1), row.get(2));
    let value: Option<String> = row.get(3);
    let value = value.map(|text| parse_json::<Value>(&text, &collection, &key)).transpose()?;
    let parsed_key = parse_json::<Value>(&key, &collection, &key)?;
    Ok(ListedRecord {
        space: Space::from_stored(row.get::<_, String>(0)),
        collection,
        key: parsed_key,
        record: StoredRecord {
            value,
            version: unsigned(row.get(4)),
            writer: row.get(5),
            writer_seq: row.get::<_, Option<i64>>(7).map(unsigned),
            hlc: row.get(6),
            shape: stored_shape(row.get::<_, Option<i32>>(8).map(i64::from)),
        },
    })
}

impl Storage for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn apply_push(&self, author: Author, mutations: Vec<Mutation>) -> StoreFuture<'_, Pushed> {
        Box::pin(async move { self.apply(&author, &mutations, false).await })
    }

    fn apply_push_then_fail(&self, author: Author, mutations: Vec<Mutation>) -> StoreFuture<'_, ()> {
        Box::pin(async move { self.apply(&author, &mutations, true).await.map(|_| ()) })
    }

    fn pull(
        &self,
        spaces: Vec<Space>,
        cursor: Cursor,
        limit: usize,
        collections: Option<Vec<String>>,
    ) -> StoreFuture<'_, PullPage> {
        Box::pin(self.pull_page(spaces, cursor, limit, collections))
    }

    fn latest_seq(&self) -> StoreFuture<'_, u64> {
        Box::pin(async move { read_latest(&self.pool).await })
    }

    fn latest_seq_in(&self, spaces: Vec<Space>) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            let statement = client.prepare_cached(LATEST_IN).await?;
            let spaces: Vec<&str> = spaces.iter().map(Space::as_str).collect();
            Ok(unsigned(client.query_one(&statement, &[&spaces]).await?.get(0)))
        })
    }

    fn bind_client(&self, client_id: String, user: String) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            // Two statements, each its own transaction: a concurrent claim of the same new id
            // makes the INSERT wait for it and then do nothing; the SELECT then sees the winner.
            let claim = client
                .prepare_cached(
                    "INSERT INTO wharf_client_owners (client_id, user_id) VALUES ($1, $2) ON CONFLICT (client_id) DO NOTHING",
                )
                .await?;
            client.execute(&claim, &[&client_id, &user]).await?;
            let owner = client.prepare_cached("SELECT user_id FROM wharf_client_owners WHERE client_id = $1").await?;
            let owner: String = client.query_one(&owner, &[&client_id]).await?.get(0);
            Ok(owner == user)
        })
    }

    fn probe(&self) -> StoreFuture<'_, u64> {
        Box::pin(async move { read_latest(&self.pool).await })
    }

    fn compact(&self, before_seq: u64) -> StoreFuture<'_, (u64, u64)> {
        Box::pin(self.compact_through(before_seq))
    }

    fn tombstones_written_before(&self, written_before_ms: u64) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            let row = client
                .query_one(
                    "SELECT COALESCE(max(seq), 0) FROM wharf_records WHERE value IS NULL AND written_at < $1",
                    &[&signed(written_before_ms)],
                )
                .await?;
            Ok(unsigned(row.get(0)))
        })
    }

    fn prune_ledgers(&self, written_before_ms: u64) -> StoreFuture<'_, (u64, u64)> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            let row = client
                .query_one(
                    "WITH a AS (DELETE FROM wharf_applied_mutations WHERE written_at < $1 RETURNING 1),
                          r AS (DELETE FROM wharf_rejected_mutations WHERE written_at < $1 RETURNING 1)
                     SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM r)",
                    &[&signed(written_before_ms)],
                )
                .await?;
            Ok((unsigned(row.get(0)), unsigned(row.get(1))))
        })
    }

    fn record(&self, space: Space, collection: String, key: Key) -> StoreFuture<'_, Option<StoredRecord>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            let key = key_text(&key);
            let row = client
                .query_opt(
                    "SELECT space, collection, key, value, version, writer, hlc, writer_seq, shape FROM wharf_records
                     WHERE space = $1 AND collection = $2 AND key = $3",
                    &[&space.as_str(), &collection, &key],
                )
                .await?;
            row.map(|row| listed(&row).map(|listed| listed.record)).transpose()
        })
    }

    fn records(&self) -> StoreFuture<'_, Vec<ListedRecord>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            let rows = client
                .query(
                    r#"SELECT space, collection, key, value, version, writer, hlc, writer_seq, shape FROM wharf_records
                       ORDER BY space COLLATE "C", collection COLLATE "C", key COLLATE "C""#,
                    &[],
                )
                .await?;
            rows.iter().map(listed).collect()
        })
    }

    fn applied_count(&self) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            let count: i64 = client.query_one("SELECT count(*) FROM wharf_applied_mutations", &[]).await?.get(0);
            Ok(unsigned(count))
        })
    }

    fn on_commit(&self, hook: CommitHook) {
        self.hooks.lock().unwrap_or_else(|p| p.into_inner()).push(hook);
    }
}

pub(crate) async fn read_latest(pool: &Pool) -> Result<u64, StoreError> {
    let client = pool.get().await?;
    let statement = client.prepare_cached(LATEST).await?;
    Ok(unsigned(client.query_one(&statement, &[]).await?.get(0)))
}
