//! The SQLite backend's schema and its migrations. Kept apart from `sqlite.rs` because the server
//! may be started on a database file written by an older build: opening one must upgrade it in
//! place, once, without losing a record, and that logic (with its tests against the old
//! statements) is easier to review on its own.
//!
//! Versions, recorded in `PRAGMA user_version`:
//! - 0: push only: `records (collection, key, value, version)` and the two mutation ledgers.
//! - 1: pull: `records.seq` (the global change sequence number of the record's last write,
//!   indexed), `records.hlc` (the writer's clock stamp), and a `meta` table holding `last_seq`
//!   (the counter `seq` is drawn from; it never goes back, even when compaction deletes the
//!   newest tombstone) and `compacted_through` (the compaction horizon).
//! - 2: conflicts: `records.writer`, the client id of the last write (a client's own later
//!   writes do not conflict with it; see `wharf::core::protocol::is_stale`).
//! - 3: late requests: `records.writer_seq`, the `seq` of the last write's mutation (an older op
//!   of the same client arriving after it is a late request and conflicts).
//! - 4: identity: `client_owners`, the user each client id was first pushed by (a client id is
//!   bound to that user; see `Storage::bind_client`).
//! - 5: spaces: `records.space` (the space a document lives in, `spaces.rs`) leads the records'
//!   primary key and a second change-feed index `(space, seq)`; the ledgers are keyed by
//!   (`author`, `client_id`, `id`). The tables are rebuilt; existing records go to the shared
//!   space and existing ledger entries to the shared principals (see `into_spaces`).
//! - 6: retention: `written_at` (milliseconds since the Unix epoch) on records and on both
//!   ledgers, the time of the last write, which compaction and ledger pruning go by
//!   (`compaction.rs`), with an index on the tombstones' and on each ledger's. Rows written before
//!   take the time of the upgrade (`ADD COLUMN … DEFAULT <now>`: no table is rewritten).
//! - 7: none (PostgreSQL's version 7 changed an index SQLite never had); the numbers stay in step.
//! - 8: shapes: `records.shape`, the collection version the last write was made in (its
//!   mutation's `shape`), handed back on pulls and conflicts so a reader on a newer version
//!   migrates the document. NULL: unknown (written before, or by a client that sent none).
//!   `ADD COLUMN` without a default: no table is rewritten.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::store::{now_ms, StoreError};

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 8;

/// The records of schema 8 (a new database; an older one is rebuilt into this shape).
const RECORDS: &str = "
    CREATE TABLE IF NOT EXISTS records (
        space TEXT NOT NULL,        -- the space the document lives in (spaces.rs)
        collection TEXT NOT NULL,
        key TEXT NOT NULL,          -- the key as canonical JSON (\"a\" or 7)
        value TEXT,                 -- JSON document; NULL marks a tombstone
        version INTEGER NOT NULL,
        seq INTEGER NOT NULL,       -- global change sequence number of the last write
        hlc TEXT,                   -- hybrid logical clock stamp of the last write, if sent
        writer TEXT,                -- client id of the last write (NULL: unknown, written before v2)
        writer_seq INTEGER,         -- that write's mutation seq (NULL: unknown, written before v3)
        written_at INTEGER NOT NULL, -- when the last write was made (ms since the Unix epoch)
        shape INTEGER,              -- the writer's collection version (NULL: unknown, written before v8)
        PRIMARY KEY (space, collection, key)
    );
";

/// The two ledgers of schema 6, keyed by (author, client id, op id): one principal's op ids
/// never answer another's.
const LEDGERS: &str = "
    CREATE TABLE IF NOT EXISTS rejected_mutations (
        author TEXT NOT NULL,       -- the principal's ledger name (spaces::Access::author)
        client_id TEXT NOT NULL,
        id TEXT NOT NULL,
        code TEXT NOT NULL,
        message TEXT NOT NULL,
        written_at INTEGER NOT NULL, -- when it was refused (ms since the Unix epoch)
        PRIMARY KEY (author, client_id, id)
    );
    CREATE TABLE IF NOT EXISTS applied_mutations (
        author TEXT NOT NULL,
        client_id TEXT NOT NULL,
        id TEXT NOT NULL,
        version INTEGER NOT NULL,   -- the record version this mutation produced
        written_at INTEGER NOT NULL, -- when it was applied (ms since the Unix epoch)
        PRIMARY KEY (author, client_id, id)
    );
";

/// The rest of the current schema. `IF NOT EXISTS`: on an old file the tables already exist and
/// `migrate` brings them to the current shape.
const OTHER_TABLES: &str = "
    CREATE TABLE IF NOT EXISTS meta (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS client_owners (
        client_id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL       -- the JWT `sub` that first pushed with this client id
    );
";

/// `seq` is unique across spaces (one global sequence); pull pages through one space's changes
/// by `(space, seq)`, so its cost does not grow with the other spaces' records. Retention finds
/// old tombstones and ledger entries by `written_at` (the records' index holds tombstones only).
const INDEXES: &str = "
    CREATE UNIQUE INDEX IF NOT EXISTS records_by_seq ON records (seq);
    CREATE INDEX IF NOT EXISTS records_by_space_seq ON records (space, seq);
    CREATE INDEX IF NOT EXISTS tombstones_by_time ON records (written_at) WHERE value IS NULL;
    CREATE INDEX IF NOT EXISTS applied_mutations_by_time ON applied_mutations (written_at);
    CREATE INDEX IF NOT EXISTS rejected_mutations_by_time ON rejected_mutations (written_at);
";

/// `meta` row: the highest `seq` ever assigned.
pub const LAST_SEQ: &str = "last_seq";
/// `meta` row: tombstones with `seq` up to this may have been deleted by compaction.
pub const COMPACTED_THROUGH: &str = "compacted_through";
pub use crate::store::COMPACTED_VERSION;

/// Brings the database to [`SCHEMA_VERSION`], in one IMMEDIATE transaction (two servers opening
/// the same old file at once: the second finds the work done). Idempotent.
pub fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "the database has schema version {version}; this server knows up to {SCHEMA_VERSION}"
        )));
    }
    tx.execute_batch(RECORDS)?;
    tx.execute_batch(LEDGERS)?;
    tx.execute_batch(OTHER_TABLES)?;
    let columns = column_names(&tx, "records")?;
    if !columns.iter().any(|c| c == "seq") {
        // A version-0 file. Existing records get distinct sequence numbers in rowid order: there
        // is no better record of their write order, and every client starts at cursor 0 anyway.
        tx.execute_batch(
            "ALTER TABLE records ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
             UPDATE records SET seq = rowid;",
        )?;
    }
    if !columns.iter().any(|c| c == "hlc") {
        tx.execute_batch("ALTER TABLE records ADD COLUMN hlc TEXT;")?;
    }
    if !columns.iter().any(|c| c == "writer") {
        tx.execute_batch("ALTER TABLE records ADD COLUMN writer TEXT;")?;
    }
    if !columns.iter().any(|c| c == "writer_seq") {
        tx.execute_batch("ALTER TABLE records ADD COLUMN writer_seq INTEGER;")?;
    }
    let upgraded_at = now_ms() as i64;
    if !columns.iter().any(|c| c == "space") {
        into_spaces(&tx, upgraded_at)?;
    }
    for table in ["records", "applied_mutations", "rejected_mutations"] {
        if !column_names(&tx, table)?.iter().any(|c| c == "written_at") {
            tx.execute_batch(&format!(
                "ALTER TABLE {table} ADD COLUMN written_at INTEGER NOT NULL DEFAULT {upgraded_at};"
            ))?;
        }
    }
    if !column_names(&tx, "records")?.iter().any(|c| c == "shape") {
        tx.execute_batch("ALTER TABLE records ADD COLUMN shape INTEGER;")?;
    }
    tx.execute_batch(INDEXES)?;
    tx.execute(
        "INSERT OR IGNORE INTO meta (name, value) VALUES (?1, (SELECT COALESCE(MAX(seq), 0) FROM records))",
        params![LAST_SEQ],
    )?;
    tx.execute("INSERT OR IGNORE INTO meta (name, value) VALUES (?1, 0)", params![COMPACTED_THROUGH])?;
    tx.execute("INSERT OR IGNORE INTO meta (name, value) VALUES (?1, 0)", params![COMPACTED_VERSION])?;
    tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION};"))?;
    tx.commit()?;
    Ok(())
}

/// Version 5: the space becomes part of a record's identity and the author part of a ledger
/// entry's. SQLite cannot change a primary key, so the three tables are rebuilt. Every existing
/// record goes to the shared space and every ledger entry to the shared principals' name (before
/// spaces, every principal read and wrote every document: there is no owner to give them to).
fn into_spaces(tx: &Connection, upgraded_at: i64) -> Result<(), StoreError> {
    let shared = crate::spaces::Space::shared();
    let author = crate::spaces::access(&crate::auth::Principal::Anonymous).author;
    tx.execute_batch(
        "ALTER TABLE records RENAME TO records_v4;
         ALTER TABLE applied_mutations RENAME TO applied_mutations_v4;
         ALTER TABLE rejected_mutations RENAME TO rejected_mutations_v4;
         DROP INDEX IF EXISTS records_by_seq;",
    )?;
    tx.execute_batch(RECORDS)?;
    tx.execute_batch(LEDGERS)?;
    tx.execute(
        "INSERT INTO records (space, collection, key, value, version, seq, hlc, writer, writer_seq, written_at)
         SELECT ?1, collection, key, value, version, seq, hlc, writer, writer_seq, ?2 FROM records_v4",
        params![shared.as_str(), upgraded_at],
    )?;
    tx.execute(
        "INSERT INTO applied_mutations (author, client_id, id, version, written_at)
         SELECT ?1, client_id, id, version, ?2 FROM applied_mutations_v4",
        params![author, upgraded_at],
    )?;
    tx.execute(
        "INSERT INTO rejected_mutations (author, client_id, id, code, message, written_at)
         SELECT ?1, client_id, id, code, message, ?2 FROM rejected_mutations_v4",
        params![author, upgraded_at],
    )?;
    tx.execute_batch("DROP TABLE records_v4; DROP TABLE applied_mutations_v4; DROP TABLE rejected_mutations_v4;")?;
    Ok(())
}

fn column_names(connection: &Connection, table: &str) -> Result<Vec<String>, StoreError> {
    let mut statement = connection.prepare(&format!("PRAGMA table_info({table})"))?;
    let names = statement.query_map([], |row| row.get::<_, String>("name"))?;
    Ok(names.collect::<Result<_, _>>()?)
}

/// A `meta` counter (0 when missing).
pub fn read_meta(connection: &Connection, name: &str) -> Result<u64, StoreError> {
    let value: Option<i64> =
        connection.query_row("SELECT value FROM meta WHERE name = ?1", params![name], |row| row.get(0)).optional()?;
    Ok(value.map_or(0, |v| u64::try_from(v).unwrap_or(0)))
}

pub fn write_meta(connection: &Connection, name: &str, value: u64) -> Result<(), StoreError> {
    connection.execute(
        "INSERT INTO meta (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        params![name, i64::try_from(value).unwrap_or(i64::MAX)],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The version-0 statements, as the push-only server created them.
    const VERSION_0: &str = "
        CREATE TABLE IF NOT EXISTS records (
            collection TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT,
            version INTEGER NOT NULL,
            PRIMARY KEY (collection, key)
        );
        CREATE TABLE IF NOT EXISTS rejected_mutations (
            id TEXT PRIMARY KEY, client_id TEXT NOT NULL, code TEXT NOT NULL, message TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS applied_mutations (
            id TEXT PRIMARY KEY, client_id TEXT NOT NULL, version INTEGER NOT NULL
        );
    ";

    fn user_version(connection: &Connection) -> i64 {
        connection.query_row("PRAGMA user_version", [], |row| row.get(0)).unwrap()
    }

    #[test]
    fn a_version_0_file_gains_seq_hlc_writers_and_meta_once() {
        let mut connection = Connection::open_in_memory().unwrap();
        connection.execute_batch(VERSION_0).unwrap();
        connection
            .execute_batch(
                "INSERT INTO records VALUES ('todos', '\"b\"', '{\"id\":\"b\"}', 2);
                 INSERT INTO records VALUES ('todos', '\"a\"', NULL, 3);",
            )
            .unwrap();
        migrate(&mut connection).unwrap();
        migrate(&mut connection).unwrap();
        assert_eq!(user_version(&connection), SCHEMA_VERSION);
        let columns = column_names(&connection, "records").unwrap();
        for column in ["space", "seq", "hlc", "writer", "writer_seq"] {
            assert!(columns.contains(&column.to_owned()), "{column} missing from {columns:?}");
        }
        let seqs: Vec<(String, i64)> = connection
            .prepare("SELECT key, seq FROM records ORDER BY seq")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(seqs, vec![("\"b\"".to_owned(), 1), ("\"a\"".to_owned(), 2)], "rowid order");
        assert_eq!(read_meta(&connection, LAST_SEQ).unwrap(), 2);
        assert_eq!(read_meta(&connection, COMPACTED_THROUGH).unwrap(), 0);
    }

    /// The version-4 statements, as the server before spaces created them.
    const VERSION_4: &str = "
        CREATE TABLE records (
            collection TEXT NOT NULL, key TEXT NOT NULL, value TEXT, version INTEGER NOT NULL,
            seq INTEGER NOT NULL, hlc TEXT, writer TEXT, writer_seq INTEGER,
            PRIMARY KEY (collection, key)
        );
        CREATE TABLE rejected_mutations (
            id TEXT PRIMARY KEY, client_id TEXT NOT NULL, code TEXT NOT NULL, message TEXT NOT NULL
        );
        CREATE TABLE applied_mutations (id TEXT PRIMARY KEY, client_id TEXT NOT NULL, version INTEGER NOT NULL);
        CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
        CREATE TABLE client_owners (client_id TEXT PRIMARY KEY, user_id TEXT NOT NULL);
        CREATE UNIQUE INDEX records_by_seq ON records (seq);
        INSERT INTO records VALUES ('todos', '\"a\"', '{\"id\":\"a\"}', 3, 1, NULL, 'c1', 4);
        INSERT INTO records VALUES ('todos', '\"b\"', NULL, 2, 2, NULL, 'c1', 5);
        INSERT INTO applied_mutations VALUES ('m1', 'c1', 3);
        INSERT INTO rejected_mutations VALUES ('m2', 'c1', 'NOT_FOUND', 'no document');
        INSERT INTO meta VALUES ('last_seq', 2), ('compacted_through', 0), ('compacted_version', 0);
        PRAGMA user_version = 4;
    ";

    fn strings(connection: &Connection, sql: &str) -> Vec<String> {
        let mut statement = connection.prepare(sql).unwrap();
        let rows = statement.query_map([], |row| row.get::<_, String>(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    #[test]
    fn a_version_4_file_moves_its_records_and_ledgers_to_the_shared_space() {
        let mut connection = Connection::open_in_memory().unwrap();
        connection.execute_batch(VERSION_4).unwrap();
        migrate(&mut connection).unwrap();
        migrate(&mut connection).unwrap();
        assert_eq!(user_version(&connection), SCHEMA_VERSION);
        let spaces = strings(&connection, "SELECT space || ' ' || key || ' ' || seq FROM records ORDER BY seq");
        assert_eq!(spaces, vec!["shared \"a\" 1", "shared \"b\" 2"]);
        let authors = strings(
            &connection,
            "SELECT author || ' ' || client_id || ' ' || id FROM applied_mutations
             UNION ALL SELECT author || ' ' || client_id || ' ' || id FROM rejected_mutations",
        );
        assert_eq!(authors, vec!["shared c1 m1", "shared c1 m2"]);
        let indexes =
            strings(&connection, "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records'");
        for index in ["records_by_seq", "records_by_space_seq"] {
            assert!(indexes.contains(&index.to_owned()), "{index} missing from {indexes:?}");
        }
        assert_eq!(read_meta(&connection, LAST_SEQ).unwrap(), 2);
    }

    #[test]
    fn a_version_6_file_gains_shapes_its_records_unknown() {
        let mut connection = Connection::open_in_memory().unwrap();
        connection.execute_batch(VERSION_4).unwrap();
        migrate(&mut connection).unwrap();
        // What schema 6 was: the records as they are now, without `shape`.
        connection.execute_batch("ALTER TABLE records DROP COLUMN shape; PRAGMA user_version = 6;").unwrap();
        assert!(!column_names(&connection, "records").unwrap().contains(&"shape".to_owned()));
        migrate(&mut connection).unwrap();
        migrate(&mut connection).unwrap();
        assert_eq!(user_version(&connection), SCHEMA_VERSION);
        let shapes = strings(&connection, "SELECT key || ' ' || COALESCE(shape, 'unknown') FROM records ORDER BY seq");
        assert_eq!(shapes, vec!["\"a\" unknown", "\"b\" unknown"]);
    }

    #[test]
    fn a_new_file_is_created_at_the_current_version() {
        let mut connection = Connection::open_in_memory().unwrap();
        migrate(&mut connection).unwrap();
        assert_eq!(user_version(&connection), SCHEMA_VERSION);
        assert_eq!(read_meta(&connection, LAST_SEQ).unwrap(), 0);
    }

    #[test]
    fn a_file_from_a_newer_server_is_refused() {
        let mut connection = Connection::open_in_memory().unwrap();
        connection.execute_batch("PRAGMA user_version = 99;").unwrap();
        assert!(matches!(migrate(&mut connection), Err(StoreError::Corrupt(m)) if m.contains("99")));
    }
}
