//! The transactions of a pull: reading a page the server sent, storing it with its cursor, and
//! the sweep after a full resync.
//!
//! A remote change is applied where no local op on that document is queued; otherwise it is held
//! and the pull tells the echo of its own push from a conflict (`conflict.rs`). Only the queued
//! ops of the page's own documents are read (the outbox's `by_doc` index): a pull never costs a
//! scan of the backlog. An op that may have landed (sent and unanswered, or a retried dead letter)
//! is not in the record: the record follows the server (`OutboxEntry::in_record`).

use serde_json::Value;

use super::document::{key_of, Key};
use super::op::{doc_id, ConflictInfo, OutboxEntry};
use super::protocol::{speaks, Change, PROTOCOL_VERSION};
use super::schema::{DatabaseSchema, META_STORE, OUTBOX_STORE, SENT_THROUGH, VERSIONS_STORE};
use super::sorted::{Slots, StringSet};
use super::steps::{entries_of, record_key, Ctx, TxStep, VersionEntry};
use super::tx::{ChangeNote, Commit, Range, Read, Round, Scope, Write};
use super::{read, wire, CoreError};

/// One page of `GET /pull`.
#[derive(Debug, Clone, PartialEq)]
pub struct PullPage {
    pub changes: Vec<Change>,
    pub cursor: String,
    pub has_more: bool,
}

/// Reads a `200` answer of `GET /pull`.
pub fn read_page(body: &str) -> Result<PullPage, String> {
    let value = read::parse(body)?;
    let fields = read::obj(&value, "pull answer")?;
    // Absent: a transport's answer, which may leave the version out.
    let protocol = if fields.contains_key("protocol") { read::uint(fields, "protocol")? } else { 1 };
    if !speaks(protocol) {
        return Err(format!("the server speaks protocol {protocol}, this client {PROTOCOL_VERSION}"));
    }
    let changes = read::array(fields.get("changes").unwrap_or(&Value::Null), "changes", wire::change)?;
    let has_more = fields.get("hasMore").and_then(Value::as_bool).ok_or("missing or invalid field hasMore")?;
    Ok(PullPage { changes, cursor: read::string(fields, "cursor")?, has_more })
}

/// Positions of the changes the client cannot store: a change must name a pulled collection,
/// come from the space that collection syncs with (a collection moved to a shared space no
/// longer takes the user's own documents of that name, nor the reverse) and, unless it is a
/// deletion, carry a document whose key is its `key`.
pub fn unstorable(changes: &[Change], schema: &DatabaseSchema) -> Vec<(usize, String)> {
    let problem = |change: &Change| match (schema.pulled(&change.collection), &change.value) {
        (None, _) => Some(format!("this client does not pull a collection {}", change.collection)),
        (Some(collection), _) if collection.schema.space != change.space => {
            Some(format!("a change of {} from a space this client does not pull it from", change.collection))
        }
        (Some(_), None) => None,
        (Some(collection), Some(doc)) => match key_of(doc, &collection.key_path) {
            Ok(key) if key == change.key => None,
            Ok(_) => Some("the value's key is not the change's key".to_owned()),
            Err(error) => Some(error.to_string()),
        },
    };
    changes.iter().enumerate().filter_map(|(i, change)| problem(change).map(|reason| (i, reason))).collect()
}

/// A change held back because local ops on its document are queued.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    /// Its position in the page.
    pub index: usize,
    /// The server version the queued ops are based on.
    pub base: u64,
}

/// What storing a page did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stored {
    pub applied: u64,
    pub held: Vec<Held>,
}

/// Stores one page and its cursor in one transaction over the page's collections and Wharf's
/// stores.
/// Where a pull keeps its state in the meta store, and the full resync under way, if any.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PullKeys {
    pub cursor_key: String,
    pub resync_key: String,
    /// `SyncOptions::evicted_key`: the mark of an emptied database, removed by the page that
    /// reaches the end of the server's changes.
    pub evicted_key: String,
    /// The resync's mark (a clock stamp): written to every versions entry the copy names, and
    /// kept under `resync_key` until the sweep, so a reload or another context goes on with it.
    pub resync: Option<String>,
    /// `sync.user`: documents with another user's queued writes are left as they are.
    pub user: Option<String>,
}

pub struct ApplyPage {
    page: PullPage,
    /// Positions of the changes the client cannot store (in no particular order).
    invalid: Vec<usize>,
    keys: PullKeys,
    keep_base: StringSet,
    /// The highest clock stamp seen, stored so a reload resumes the clock past it.
    stamp: Option<String>,
    phase: u8,
    /// The queued ops of the page's documents: `queued[slots[doc]]`.
    slots: Slots,
    queued: Vec<Vec<OutboxEntry>>,
    held_ids: Vec<String>,
    /// Documents whose queued ops may have landed and are not in the record: a pulled change is
    /// applied to the record, but the base those ops were built on stays, so that their resend
    /// is judged against it (a conflict if someone wrote meanwhile), not sent as a blind write.
    unanswered: StringSet,
    /// What pushes took (`SENT_THROUGH`): ops up to it may have landed (`OutboxEntry::in_record`).
    sent_through: u64,
    pub outcome: Option<Stored>,
}

impl ApplyPage {
    pub fn new(
        page: PullPage,
        invalid: &[usize],
        keys: PullKeys,
        keep_base: StringSet,
        stamp: Option<String>,
    ) -> ApplyPage {
        ApplyPage {
            page,
            invalid: invalid.to_vec(),
            keys,
            keep_base,
            stamp,
            sent_through: 0,
            phase: 0,
            slots: Slots::default(),
            queued: Vec::new(),
            held_ids: Vec::new(),
            unanswered: StringSet::default(),
            outcome: None,
        }
    }

    pub fn into_page(self) -> PullPage {
        self.page
    }

    /// The documents of the page's storable changes, each once, in page order.
    fn documents(&self) -> Vec<(String, &Change)> {
        let mut seen = StringSet::default();
        self.page
            .changes
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.invalid.contains(i))
            .map(|(_, c)| (doc_id(&c.collection, &c.key), c))
            .filter(|(id, _)| seen.insert(id.clone()))
            .collect()
    }

    fn held_documents(&mut self) -> Round {
        self.held_ids =
            self.documents().into_iter().map(|(id, _)| id).filter(|id| self.slots.get(id).is_some()).collect();
        if self.keys.resync.is_some() {
            // A resync marks every document the copy names as seen, also those this page does
            // not write (held back, or unstorable): their stored entries are read to be marked.
            let mut marked = StringSet::build(self.held_ids.clone());
            for (i, change) in self.page.changes.iter().enumerate() {
                let id = doc_id(&change.collection, &change.key);
                let unwritten = self.invalid.contains(&i) || self.unanswered.contains(&id);
                if unwritten && marked.insert(id.clone()) {
                    self.held_ids.push(id);
                }
            }
        }
        if self.held_ids.is_empty() {
            return self.decide(&[]);
        }
        self.phase = 3;
        Round::Read(self.held_ids.iter().map(|id| Read::version(id)).collect())
    }

    fn decide(&mut self, versions: &[Value]) -> Round {
        let base_of = |id: &str| {
            let at = self.held_ids.iter().position(|held| held == id);
            at.and_then(|at| versions.get(at)).map_or(0, |v| VersionEntry::read(v).version)
        };
        let mut writes = Vec::new();
        let mut changes = Vec::new();
        let mut versioned = StringSet::default();
        let mut stored = Stored::default();
        for (i, change) in self.page.changes.iter().enumerate() {
            if self.invalid.contains(&i) {
                continue;
            }
            let id = doc_id(&change.collection, &change.key);
            if let Some(slot) = self.slots.get(&id) {
                stored.held.push(Held { index: i, base: base_of(&id) });
                let queued = &mut self.queued[slot];
                // Ops the server already answered `conflict` wait on the newest server state:
                // their resolution must be against this version.
                for entry in queued.iter_mut() {
                    if entry.conflict.as_ref().is_some_and(|c| c.version < change.version) {
                        let info = ConflictInfo {
                            version: change.version,
                            value: change.value.clone(),
                            hlc: change.hlc.clone(),
                            shape: change.shape,
                        };
                        entry.conflict = Some(info);
                        writes.push(Write::put(OUTBOX_STORE, entry.to_json(), Some(entry.op.seq.into())));
                    }
                }
                continue;
            }
            let key = record_key(&change.key);
            match &change.value {
                None => writes.push(Write::delete(&change.collection, key)),
                Some(doc) => writes.push(Write::put(&change.collection, doc.clone(), None)),
            }
            if !self.unanswered.contains(&id) {
                let keep = self.keep_base.contains(&change.collection);
                let version = VersionEntry {
                    resync: self.keys.resync.clone(),
                    ..VersionEntry::at(change.version, change.value.as_ref(), keep)
                };
                writes.push(Write::put(VERSIONS_STORE, version.to_json(), Some(id.clone().into())));
                versioned.insert(id);
            }
            stored.applied += 1;
            changes.push(ChangeNote {
                collection: change.collection.clone(),
                key: change.key.clone(),
                deleted: change.value.is_none(),
                local: false,
            });
        }
        if let Some(resync) = &self.keys.resync {
            // Documents seen but whose entry this page did not write keep it, marked seen (one
            // never seen before gets an entry at version 0, which reads the same as none: a
            // resolution then keeps the mark).
            for (id, stored) in self.held_ids.iter().zip(versions) {
                if versioned.contains(id) {
                    continue;
                }
                let entry = VersionEntry { resync: Some(resync.clone()), ..VersionEntry::read(stored) };
                writes.push(Write::put(VERSIONS_STORE, entry.to_json(), Some(id.clone().into())));
            }
            writes.push(Write::put(META_STORE, resync.as_str().into(), Some(self.keys.resync_key.clone().into())));
        }
        writes.push(Write::put(META_STORE, self.page.cursor.clone().into(), Some(self.keys.cursor_key.clone().into())));
        if !self.page.has_more {
            writes.push(Write::delete(META_STORE, self.keys.evicted_key.clone().into()));
        }
        if let Some(stamp) = &self.stamp {
            writes.push(Write::put(META_STORE, stamp.clone().into(), Some("hlc".into())));
        }
        self.outcome = Some(stored);
        Round::Commit(Commit { writes, changes })
    }
}

impl TxStep for ApplyPage {
    fn scope(&self, _: &DatabaseSchema) -> Scope {
        let changes = self.page.changes.iter().enumerate().filter(|(i, _)| !self.invalid.contains(i));
        let collections = StringSet::build(changes.map(|(_, c)| c.collection.clone()).collect());
        Scope::write(&[OUTBOX_STORE, META_STORE, VERSIONS_STORE]).with(collections.into_vec())
    }

    fn advance(&mut self, results: Vec<Value>, _: &mut Ctx<'_>) -> Round {
        self.phase += 1;
        match self.phase {
            1 => {
                if self.documents().is_empty() {
                    return self.held_documents();
                }
                // The keys of the outbox head, one more than the page has documents: an outbox
                // that small is read whole (one request), a larger one only for these documents.
                // Either way the reads are proportional to the page, not to the backlog.
                let limit = Some(self.documents().len() as u32 + 1);
                Round::Read(vec![
                    Read::Keys { store: OUTBOX_STORE.to_owned(), range: None, limit },
                    Read::meta(SENT_THROUGH),
                ])
            }
            2 => {
                self.sent_through = results[1].as_u64().unwrap_or(0);
                let documents = self.documents();
                match results[0].as_array().map_or(0, Vec::len) {
                    0 => self.held_documents(),
                    queued if queued <= documents.len() => Round::Read(vec![Read::outbox_head(None)]),
                    _ => Round::Read(
                        documents.iter().map(|(_, c)| Read::document_entries(&c.collection, &c.key)).collect(),
                    ),
                }
            }
            3 => self.collect_queued(&results),
            _ => self.decide(&results),
        }
    }
}

impl ApplyPage {
    /// Files the queued entries read (whole outbox or per document) under their documents.
    fn collect_queued(&mut self, results: &[Value]) -> Round {
        for result in results {
            let entries = match entries_of(result) {
                Ok(entries) => entries,
                Err(e) => return Round::Abort(CoreError::Unreadable(e)),
            };
            for entry in entries {
                if !entry.in_record_for(self.sent_through, self.keys.user.as_deref()) {
                    self.unanswered.insert(entry.op.doc_id());
                    continue;
                }
                let id = entry.op.doc_id();
                match self.slots.get(&id) {
                    Some(slot) => self.queued[slot].push(entry),
                    None => {
                        self.slots.set(id, self.queued.len());
                        self.queued.push(vec![entry]);
                    }
                }
            }
        }
        self.held_documents()
    }
}

/// After a full resync: deletes the documents of the pulled collections that came from the
/// server (they have a versions entry) but that the copy did not name (their entry lacks this
/// resync's mark: deleted on the server, their tombstones compacted away), unless local ops on
/// them are in the record; then the resync is over (its meta key goes).
pub struct SweepUnseen {
    collections: Vec<String>,
    keys: PullKeys,
    phase: u8,
    unseen: Vec<(String, String, Key)>,
    sent_through: u64,
    pub removed: Option<u64>,
}

impl SweepUnseen {
    /// `keys.resync` is the mark of the resync that just finished.
    pub fn new(collections: Vec<String>, keys: PullKeys) -> SweepUnseen {
        SweepUnseen { collections, keys, phase: 0, unseen: Vec::new(), sent_through: 0, removed: None }
    }

    fn finish(&mut self, mut commit: Commit) -> Round {
        commit.writes.push(Write::delete(META_STORE, self.keys.resync_key.clone().into()));
        self.removed = Some(commit.changes.len() as u64);
        Round::Commit(commit)
    }
}

impl TxStep for SweepUnseen {
    fn scope(&self, _: &DatabaseSchema) -> Scope {
        Scope::write(&[VERSIONS_STORE, OUTBOX_STORE, META_STORE]).with(self.collections.iter().cloned())
    }

    fn advance(&mut self, results: Vec<Value>, _: &mut Ctx<'_>) -> Round {
        self.phase += 1;
        match self.phase {
            1 => Round::Read(
                self.collections
                    .iter()
                    .map(|c| Read::All {
                        store: VERSIONS_STORE.to_owned(),
                        index: None,
                        range: Some(Range::prefix(&format!("{c}\0"))),
                        limit: None,
                        keys: true,
                        reverse: false,
                    })
                    .chain([Read::meta(SENT_THROUGH)])
                    .collect(),
            ),
            2 => {
                self.sent_through = results.last().and_then(Value::as_u64).unwrap_or(0);
                for (collection, entries) in self.collections.iter().zip(&results) {
                    for pair in entries.as_array().map_or(&[][..], Vec::as_slice) {
                        let (Some(id), Some(stored)) = (pair.get(0).and_then(Value::as_str), pair.get(1)) else {
                            continue;
                        };
                        if self.keys.resync.is_some() && VersionEntry::read(stored).resync == self.keys.resync {
                            continue; // the copy named it
                        }
                        let key = id.get(collection.len() + 1..).and_then(|text| super::read::json(text, false).ok());
                        if let Some(key) = key.and_then(|k| Key::from_json(&k).ok()) {
                            self.unseen.push((id.to_owned(), collection.clone(), key));
                        }
                    }
                }
                if self.unseen.is_empty() {
                    return self.finish(Commit::default());
                }
                Round::Read(self.unseen.iter().map(|(_, c, k)| Read::document_entries(c, k)).collect())
            }
            _ => {
                let mut commit = Commit::default();
                for ((id, collection, key), queued) in self.unseen.iter().zip(&results) {
                    let entries = match entries_of(queued) {
                        Ok(entries) => entries,
                        Err(e) => return Round::Abort(CoreError::Unreadable(e)),
                    };
                    if entries.iter().any(|e| e.in_record_for(self.sent_through, self.keys.user.as_deref())) {
                        continue;
                    }
                    commit.writes.push(Write::delete(collection, record_key(key)));
                    commit.writes.push(Write::delete(VERSIONS_STORE, id.clone().into()));
                    commit.changes.push(ChangeNote {
                        collection: collection.clone(),
                        key: key.clone(),
                        deleted: true,
                        local: false,
                    });
                }
                self.finish(commit)
            }
        }
    }
}
