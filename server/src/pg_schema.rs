//! The PostgreSQL backend's schema and its migrations (the SQLite ones are in `schema.rs`).
//!
//! Several server instances may start at once against one database (a deployment rolling out
//! three replicas): the whole migration runs in one transaction that first takes a
//! transaction-level advisory lock ([`MIGRATION_LOCK`]), so one instance migrates while the
//! others wait, then find the work done. DDL is transactional in PostgreSQL: a migration that
//! fails leaves nothing half-done.
//!
//! Versions, recorded in `wharf_meta` as `schema_version`:
//! - 1: `wharf_records` (collection, key as canonical JSON, value as JSON text or NULL for a
//!   tombstone, version, `seq` with a unique index, `hlc`, `writer`), the two mutation ledgers,
//!   and `wharf_meta` rows `last_seq` (the counter seqs are drawn from; see `postgres.rs`) and
//!   `compacted_through` (the compaction horizon). The same shape as SQLite's version 2.
//! - 2: `wharf_records.writer_seq`, the `seq` of the last write's mutation (SQLite's version 3;
//!   see `wharf::core::protocol::is_stale`).
//! - 3: the `wharf_meta` row `compacted_version`, the highest version compaction removed (the
//!   `floor` of `store::decide`: a document's versions never go back, even after its tombstone
//!   was compacted away).
//! - 4: `wharf_client_owners`, the user each client id was first pushed by (SQLite's version 4;
//!   see `Storage::bind_client`).
//! - 5: spaces (SQLite's version 5): `wharf_records.space` (the space a document lives in,
//!   `spaces.rs`) leads the records' primary key, and the change-feed index `(space, seq)` joins
//!   the unique `(seq)` one; the ledgers gain `author` and are keyed by (`author`, `client_id`,
//!   `id`). Existing records go to the shared space and existing ledger entries to the shared
//!   principals. The new columns have no default, so a server of an older build that is still
//!   running fails every write (a not-null violation, answered 503) instead of writing rows
//!   that belong to no space.
//! - 6: retention (SQLite's version 6): `written_at` (milliseconds since the Unix epoch, by the
//!   database's clock: one clock for every instance) on `wharf_records` and both ledgers, the
//!   time of the last write, which compaction and ledger pruning go by (`compaction.rs`), with an
//!   index on the tombstones' and on each ledger's. The column's default is the transaction's
//!   time: the statement's value when the column is added (so existing rows take the time of the
//!   upgrade, without rewriting the table), and every insert's afterwards, so that an instance of
//!   the previous build, still running during a rollout, keeps writing.
//! - 7: the unique `(seq)` index becomes partial, `WHERE written_at IS NOT NULL` (true of every
//!   row, so it still keeps seqs unique), so that only a query that states that predicate can use
//!   it. A pull must walk its spaces' `(space, seq)` ranges; with planner statistics and a few
//!   dozen spaces or fewer, PostgreSQL took the global `(seq)` index for it instead, filtering
//!   every other space's records out (38 to 57 times slower with 30 users and 200,000 records,
//!   bench/results/server-users.md). The queries that want a global seq range (`pg_listen.rs`'s
//!   catch-up, compaction) state the predicate.
//! - 8: shapes (SQLite's version 8): `wharf_records.shape`, the collection version the last write
//!   was made in (its mutation's `shape`), handed back on pulls and conflicts. NULL: unknown.
//!   Added without a default (no rewrite); instances of the schema-7 build keep working during a
//!   rollout, and write NULL (unknown) for the records they write.
//!
//! Tables are prefixed `wharf_` so the database can be shared with an application's own tables.

use deadpool_postgres::Client;

use crate::store::StoreError;

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 8;

/// The advisory lock key taken around migrations (ASCII "wharfmig").
pub const MIGRATION_LOCK: i64 = 0x7768_6172_666d_6967;

/// Migration `i` brings the schema from version `i` to `i + 1`. Public for the tests that build
/// a database of an older version.
#[doc(hidden)]
pub const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE wharf_records (
        collection text NOT NULL,
        key text NOT NULL,              -- the key as canonical JSON (\"a\" or 7)
        value text,                     -- JSON document; NULL marks a tombstone
        version bigint NOT NULL,
        seq bigint NOT NULL,            -- global change sequence number of the last write
        hlc text,                       -- hybrid logical clock stamp of the last write, if sent
        writer text,                    -- client id of the last write
        PRIMARY KEY (collection, key)
    );
    CREATE UNIQUE INDEX wharf_records_by_seq ON wharf_records (seq);
    CREATE TABLE wharf_applied_mutations (
        id text PRIMARY KEY,
        client_id text NOT NULL,
        version bigint NOT NULL         -- the record version this mutation produced
    );
    CREATE TABLE wharf_rejected_mutations (
        id text PRIMARY KEY,
        client_id text NOT NULL,
        code text NOT NULL,
        message text NOT NULL
    );
    INSERT INTO wharf_meta (name, value) VALUES ('last_seq', 0), ('compacted_through', 0)
        ON CONFLICT (name) DO NOTHING;
",
    "
    ALTER TABLE wharf_records ADD COLUMN writer_seq bigint; -- the last write's mutation seq
",
    "
    INSERT INTO wharf_meta (name, value) VALUES ('compacted_version', 0) ON CONFLICT (name) DO NOTHING;
",
    "
    CREATE TABLE wharf_client_owners (
        client_id text PRIMARY KEY,
        user_id text NOT NULL           -- the JWT `sub` that first pushed with this client id
    );
",
    // The defaults fill the existing rows without rewriting the table, then go.
    "
    ALTER TABLE wharf_records ADD COLUMN space text NOT NULL DEFAULT 'shared'; -- spaces.rs
    ALTER TABLE wharf_records ALTER COLUMN space DROP DEFAULT;
    ALTER TABLE wharf_records DROP CONSTRAINT wharf_records_pkey;
    ALTER TABLE wharf_records ADD PRIMARY KEY (space, collection, key);
    CREATE INDEX wharf_records_by_space_seq ON wharf_records (space, seq);
    ALTER TABLE wharf_applied_mutations ADD COLUMN author text NOT NULL DEFAULT 'shared';
    ALTER TABLE wharf_applied_mutations ALTER COLUMN author DROP DEFAULT;
    ALTER TABLE wharf_applied_mutations DROP CONSTRAINT wharf_applied_mutations_pkey;
    ALTER TABLE wharf_applied_mutations ADD PRIMARY KEY (author, client_id, id);
    ALTER TABLE wharf_rejected_mutations ADD COLUMN author text NOT NULL DEFAULT 'shared';
    ALTER TABLE wharf_rejected_mutations ALTER COLUMN author DROP DEFAULT;
    ALTER TABLE wharf_rejected_mutations DROP CONSTRAINT wharf_rejected_mutations_pkey;
    ALTER TABLE wharf_rejected_mutations ADD PRIMARY KEY (author, client_id, id);
",
    "
    ALTER TABLE wharf_records ADD COLUMN written_at bigint NOT NULL
        DEFAULT (extract(epoch FROM now()) * 1000)::bigint;
    ALTER TABLE wharf_applied_mutations ADD COLUMN written_at bigint NOT NULL
        DEFAULT (extract(epoch FROM now()) * 1000)::bigint;
    ALTER TABLE wharf_rejected_mutations ADD COLUMN written_at bigint NOT NULL
        DEFAULT (extract(epoch FROM now()) * 1000)::bigint;
    CREATE INDEX wharf_tombstones_by_time ON wharf_records (written_at) WHERE value IS NULL;
    CREATE INDEX wharf_applied_mutations_by_time ON wharf_applied_mutations (written_at);
    CREATE INDEX wharf_rejected_mutations_by_time ON wharf_rejected_mutations (written_at);
",
    "
    DROP INDEX wharf_records_by_seq;
    CREATE UNIQUE INDEX wharf_records_by_seq ON wharf_records (seq) WHERE written_at IS NOT NULL;
",
    "
    ALTER TABLE wharf_records ADD COLUMN shape integer; -- the writer's collection version, if sent
",
];

/// Brings the database to [`SCHEMA_VERSION`] (see the module comment). Idempotent; refuses a
/// database written by a newer server.
pub async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS wharf_meta (name text PRIMARY KEY, value bigint NOT NULL)").await?;
    let version: i64 = tx
        .query_opt("SELECT value FROM wharf_meta WHERE name = 'schema_version'", &[])
        .await?
        .map_or(0, |row| row.get(0));
    if version > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "the database has schema version {version}; this server knows up to {SCHEMA_VERSION}"
        )));
    }
    for step in MIGRATIONS.iter().skip(usize::try_from(version).unwrap_or(0)) {
        tx.batch_execute(step).await?;
    }
    tx.execute(
        "INSERT INTO wharf_meta (name, value) VALUES ('schema_version', $1)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        &[&SCHEMA_VERSION],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
