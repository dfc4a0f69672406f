//! Small transactions of the replica: the client id and the clock to resume from, the queue
//! sizes, a stored meta value, and a local patch (read the record, merge, queue the patch).

use serde_json::Value;

use super::document::Key;
use super::op::{Op, OutboxEntry, Payload};
use super::schema::{DatabaseSchema, DEAD_STORE, META_STORE, OUTBOX_STORE};
use super::steps::{entries_of, present, record_key, Ctx, TxStep};
use super::tx::{ChangeNote, Commit, Read, Round, Scope, Write};
use super::CoreError;

/// The meta record of this client's id.
pub const CLIENT_ID: &str = "clientId";
/// The meta record of the highest clock stamp pulled.
pub const LAST_STAMP: &str = "hlc";

/// The stored client id (`fresh` is stored when there is none yet), and the clock stamps to
/// resume from: the highest pulled one and the newest queued write's. Each `sync.user` has a
/// client id of its own, stored under `key` (`SyncOptions::for_user(CLIENT_ID)`): a server binds
/// a client id to the user who first pushed with it, so after an account switch on one device the
/// next user must not push under the previous user's id (nor pass for that user's own writes).
pub struct LoadClient {
    fresh: String,
    key: String,
    /// `SyncOptions::evicted_key`, and whether the app expects this browser to have synced.
    evicted_key: String,
    expect_synced: bool,
    pub outcome: Option<LoadedClient>,
}

/// What `LoadClient` read.
pub struct LoadedClient {
    pub id: String,
    /// The clock stamps to resume from.
    pub stamps: Vec<String>,
    /// The database was found emptied now (reported once, by the context that found it).
    pub found_evicted: bool,
    /// It is still to be refilled: found now, or by another context whose refill has not ended.
    pub refilling: bool,
}

/// Whether the database was emptied under the app: the app's own marker says this browser had
/// synced (`sync.expectSynced`), yet no client id is stored. Browsers evict an origin's storage
/// whole (Safari after seven days without a visit, any browser under storage pressure), so the
/// client id went with the records and the outbox, and nothing in the database can tell; nor can
/// the server, which never saw the id the client will now use. A new device looks the same, and
/// is refilled the same way.
pub fn evicted(client_id_stored: bool, expect_synced: bool) -> bool {
    !client_id_stored && expect_synced
}

impl LoadClient {
    pub fn new(fresh: String, key: String, evicted_key: String, expect_synced: bool) -> LoadClient {
        LoadClient { fresh, key, evicted_key, expect_synced, outcome: None }
    }
}

impl TxStep for LoadClient {
    fn scope(&self, _: &DatabaseSchema) -> Scope {
        Scope::write(&[META_STORE, OUTBOX_STORE])
    }

    fn advance(&mut self, results: Vec<Value>, _: &mut Ctx<'_>) -> Round {
        if results.is_empty() {
            let newest = Read::All {
                store: OUTBOX_STORE.to_owned(),
                index: None,
                range: None,
                limit: Some(1),
                keys: true,
                reverse: true,
            };
            return Round::Read(vec![
                Read::meta(&self.key),
                Read::meta(LAST_STAMP),
                newest,
                Read::meta(&self.evicted_key),
            ]);
        }
        let mut commit = Commit::default();
        let stored = results[0].as_str().filter(|id| !id.is_empty());
        let found_evicted = evicted(stored.is_some(), self.expect_synced);
        let id = match stored {
            Some(id) => id.to_owned(),
            None => {
                commit.writes.push(Write::put(META_STORE, self.fresh.clone().into(), Some(self.key.as_str().into())));
                self.fresh.clone()
            }
        };
        if found_evicted {
            commit.writes.push(Write::put(META_STORE, true.into(), Some(self.evicted_key.as_str().into())));
        }
        let refilling = found_evicted || results.get(3).is_some_and(|mark| mark.as_bool() == Some(true));
        let mut stamps: Vec<String> = results[1].as_str().map(str::to_owned).into_iter().collect();
        // An unreadable newest entry must not keep sync from starting: the push reports it.
        if let Ok(newest) = entries_of(&results[2]) {
            stamps.extend(newest.into_iter().filter_map(|e| e.hlc));
        }
        self.outcome = Some(LoadedClient { id, stamps, found_evicted, refilling });
        Round::Commit(commit)
    }
}

/// The exact sizes of the outbox and the dead letters.
#[derive(Default)]
pub struct CountQueues {
    pub outcome: Option<(u64, u64)>,
}

impl TxStep for CountQueues {
    fn scope(&self, _: &DatabaseSchema) -> Scope {
        Scope::read(&[OUTBOX_STORE, DEAD_STORE])
    }

    fn advance(&mut self, results: Vec<Value>, _: &mut Ctx<'_>) -> Round {
        if results.is_empty() {
            return Round::Read(vec![Read::count(OUTBOX_STORE), Read::count(DEAD_STORE)]);
        }
        self.outcome = Some((results[0].as_u64().unwrap_or(0), results[1].as_u64().unwrap_or(0)));
        Round::Commit(Commit::default())
    }
}

/// Meta values (null when absent), in the order asked.
pub struct LoadMeta {
    names: Vec<String>,
    pub outcome: Option<Vec<Value>>,
}

impl LoadMeta {
    pub fn new(names: Vec<String>) -> LoadMeta {
        LoadMeta { names, outcome: None }
    }
}

impl TxStep for LoadMeta {
    fn scope(&self, _: &DatabaseSchema) -> Scope {
        Scope::read(&[META_STORE])
    }

    fn advance(&mut self, results: Vec<Value>, _: &mut Ctx<'_>) -> Round {
        if self.outcome.is_none() && results.is_empty() {
            return Round::Read(self.names.iter().map(|name| Read::meta(name)).collect());
        }
        self.outcome = Some(results);
        Round::Commit(Commit::default())
    }
}

/// A local patch: the current record merged with the patch and the patch queued, in one
/// transaction over every collection and the outbox, so writes issued after it commit after it.
pub struct LocalPatch {
    collection: String,
    key: Key,
    patch: Value,
    /// `sync.user`, whose entry it queues.
    user: Option<String>,
    pub done: bool,
    /// The patch was queued (its collection is pushed).
    pub queued: bool,
}

impl LocalPatch {
    /// `patch` must already be validated (`document::validate_patch`).
    pub fn new(collection: String, key: Key, patch: Value, user: Option<String>) -> LocalPatch {
        LocalPatch { collection, key, patch, user, done: false, queued: false }
    }
}

impl TxStep for LocalPatch {
    fn scope(&self, schema: &DatabaseSchema) -> Scope {
        Scope { stores: schema.write_scope(), write: true }
    }

    fn advance(&mut self, results: Vec<Value>, ctx: &mut Ctx<'_>) -> Round {
        let Some(found) = results.first() else {
            return Round::Read(vec![Read::get(&self.collection, record_key(&self.key))]);
        };
        let Some(current) = present(found) else {
            return Round::Abort(CoreError::NotFound { collection: self.collection.clone(), key: self.key.describe() });
        };
        let payload = Payload::Patch(self.patch.clone());
        let Some(merged) = payload.apply(Some(&current)) else {
            return Round::Abort(CoreError::Unreadable(format!(
                "the stored {} is not a document",
                self.key.describe()
            )));
        };
        let op = Op {
            id: ctx.clock.op_id(ctx.now),
            seq: 0,
            collection: self.collection.clone(),
            key: self.key.clone(),
            payload,
        };
        let stamp = ctx.clock.stamp(ctx.now);
        let entry = OutboxEntry::new(op, ctx.now, Some(stamp)).by(self.user.as_deref());
        self.done = true;
        let mut writes = vec![Write::put(&self.collection, merged, None)];
        self.queued = ctx.schema.pushes(&self.collection);
        if self.queued {
            writes.push(Write::Add { store: OUTBOX_STORE.to_owned(), value: entry.to_json() });
        }
        Round::Commit(Commit {
            writes,
            changes: vec![ChangeNote {
                collection: self.collection.clone(),
                key: self.key.clone(),
                deleted: false,
                local: true,
            }],
        })
    }
}
