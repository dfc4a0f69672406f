//! The transactions of a conflict resolution, and which queued ops a conflict is about.
//!
//! A conflict is resolved in three steps, none of which holds a transaction open across the
//! application's resolver: load the local side (record, merge base, the document's queued ops)
//! in one transaction; let the strategy or the resolver choose (`conflict.rs`); store the outcome
//! in one transaction that first checks that the newest queued op is still the one loaded and
//! that no newer server version arrived meanwhile.
//!
//! An op a push took and the server has not answered (its answer was lost, it timed out, the
//! tab died mid-push), like a retried dead letter (`resent`), may have landed: the record keeps
//! following the server (pulls apply over it), and until the server answers it, it takes no part
//! in conflicts: a resolution must neither resend its content under a new id (it would land
//! twice, over whatever others wrote after seeing it) nor drop it. Once the server answered
//! `conflict`, it certainly never landed: from the first op that was sent on, the queued ops are
//! replayed over the record (a pull may have replaced what they wrote), so the local side is
//! what the client is sending. One
//! queued after an op the server answered `conflict` cannot be answered first (it waits behind
//! the conflict), and the resolution's op would land after it and undo it: it is part of the
//! local side, like every later write. Except a retried dead letter: it may have landed in an
//! earlier life, so it is sent under its own id first (`push::select` lets it past the
//! conflict), and answered `duplicate`, or `conflict` (then it never landed and is covered).

use serde_json::Value;

use super::document::Key;
use super::op::{doc_id, OutboxEntry, Payload};
use super::schema::{DatabaseSchema, META_STORE, OUTBOX_STORE, SENT_THROUGH, VERSIONS_STORE};
use super::steps::{entries_of, present, record_key, Ctx, TxStep, VersionEntry};
use super::tx::{ChangeNote, Commit, Read, Round, Scope, Write};
use super::CoreError;

/// The queued ops a conflict is about: all but the sent and unanswered ones that come before the
/// first op the server answered `conflict` (see the module comment). `sent_through`: the
/// persisted mark of what pushes took (`push_tx::SENT_THROUGH`).
/// Only `user`'s own entries (and those queued without a user) take part: another user's stay
/// queued for that user, never resolved nor sent in this user's name (`sync.user`).
pub fn contested<'a>(entries: &'a [OutboxEntry], sent_through: u64, user: Option<&str>) -> Vec<&'a OutboxEntry> {
    let own: Vec<&OutboxEntry> = entries.iter().filter(|e| e.pushable_by(user)).collect();
    let held = own.iter().position(|e| e.conflict.is_some());
    // A retried dead letter behind the held op may have landed in an earlier life: it goes under
    // its own id first (`push::select` lets it), never folded into a resolution unanswered.
    let behind_held = |i: usize, e: &OutboxEntry| held.is_some_and(|h| i > h) && !e.resent;
    let covered = |(i, e): &(usize, &&OutboxEntry)| e.in_record(sent_through) || behind_held(*i, e);
    own.iter().enumerate().filter(covered).map(|(_, e)| *e).collect()
}

/// Whether a retried dead letter behind the document's conflict has no answer yet
/// (`LocalSide::waiting`).
fn letter_waiting(entries: &[OutboxEntry], user: Option<&str>) -> bool {
    let own = entries.iter().filter(|e| e.pushable_by(user));
    own.skip_while(|e| e.conflict.is_none()).any(|e| e.resent && e.conflict.is_none())
}

/// The local side of a conflict on one document.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalSide {
    /// What the client is sending: the record, with a retried letter the server answered
    /// `conflict` and the ops after it replayed over it (`None`: deleted).
    pub local: Option<Value>,
    /// The merge base, where the collection keeps one.
    pub base: Option<Value>,
    /// The newest contested op's seq and stamp; `None` when nothing is queued any more.
    pub last: Option<(u64, Option<String>)>,
    /// Set when `local` cannot be known here (a retried patch of a document deleted here since):
    /// these payloads, applied over the server's document, are the local side.
    pub over_remote: Vec<Payload>,
    /// The user that queued the newest contested op: its resolution is queued for that user.
    pub user: Option<String>,
    /// An op on the document still holds the server's `conflict` answer. When none does, a
    /// conflict the push met was settled meanwhile (by another context that drained too).
    pub held: bool,
    /// A retried dead letter behind the conflict has no answer yet: it goes under its own id
    /// first, and the conflict is resolved once it is answered (folded in unanswered, a letter
    /// that had landed would land twice; left out, the resolution would land after it and undo
    /// the newer write).
    pub waiting: bool,
}

/// Reads the local side of a conflict.
pub struct LoadConflict {
    collection: String,
    key: Key,
    /// `sync.user`, whose ops the conflict is about (`contested`).
    user: Option<String>,
    phase: u8,
    pub outcome: Option<LocalSide>,
}

impl LoadConflict {
    pub fn new(collection: String, key: Key, user: Option<String>) -> LoadConflict {
        LoadConflict { collection, key, user, phase: 0, outcome: None }
    }
}

impl TxStep for LoadConflict {
    fn scope(&self, _: &DatabaseSchema) -> Scope {
        Scope::read(&[&self.collection, OUTBOX_STORE, VERSIONS_STORE, META_STORE])
    }

    fn advance(&mut self, results: Vec<Value>, _: &mut Ctx<'_>) -> Round {
        self.phase += 1;
        if self.phase == 1 {
            return Round::Read(vec![
                Read::get(&self.collection, record_key(&self.key)),
                Read::version(&doc_id(&self.collection, &self.key)),
                Read::document_entries(&self.collection, &self.key),
                Read::meta(SENT_THROUGH),
            ]);
        }
        let entries = match entries_of(&results[2]) {
            Ok(entries) => entries,
            Err(e) => return Round::Abort(CoreError::Unreadable(e)),
        };
        let sent_through = results[3].as_u64().unwrap_or(0);
        let mine = contested(&entries, sent_through, self.user.as_deref());
        let waiting = letter_waiting(&entries, self.user.as_deref());
        let mut local = present(&results[0]);
        let mut over_remote = Vec::new();
        if let Some(from) = mine.iter().position(|e| e.sent(sent_through)) {
            if local.is_none() && matches!(mine[from].op.payload, Payload::Patch(_)) {
                // A retried patch of a document deleted here since: its fields go over the
                // server's document, as the server would have set them (patching nothing here
                // would read as a delete, and push one).
                over_remote = mine[from..].iter().map(|e| e.op.payload.clone()).collect();
            }
            // Patches are shallow field sets: replaying the later ones again gives the same
            // fields as applying them once after the retried op.
            for entry in &mine[from..] {
                local = entry.op.payload.apply(local.as_ref());
            }
        }
        self.outcome = Some(LocalSide {
            local,
            over_remote,
            base: VersionEntry::read(&results[1]).base.flatten(),
            last: mine.last().map(|e| (e.op.seq, e.hlc.clone())),
            user: mine.last().and_then(|e| e.user.clone()),
            held: entries.iter().any(|e| e.conflict.is_some()),
            waiting,
        });
        Round::Commit(Commit::default())
    }
}

/// What storing a resolution came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    Done,
    /// A local write, another resolution or a retried letter came in between: nothing was
    /// stored; resolve again.
    Stale,
    /// A newer server version is known: nothing was stored; that version's own conflict will be
    /// resolved instead.
    Outdated,
}

/// What a resolution stores: the record, the op to queue (if any), the versions entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolutionPlan {
    pub value: Option<Value>,
    pub entry: Option<OutboxEntry>,
    pub version: VersionEntry,
}

/// Stores a resolution unless the document moved on since it was loaded (see `Stored`): the
/// contested ops go, the record becomes the chosen value, the plan's op is queued.
pub struct CommitResolution {
    collection: String,
    key: Key,
    /// `sync.user`, whose ops the resolution replaces (`contested`).
    user: Option<String>,
    last_seq: u64,
    plan: ResolutionPlan,
    phase: u8,
    pub outcome: Option<Stored>,
}

impl CommitResolution {
    pub fn new(collection: String, key: Key, last_seq: u64, plan: ResolutionPlan) -> CommitResolution {
        CommitResolution { collection, key, user: None, last_seq, plan, phase: 0, outcome: None }
    }

    /// Replaces only `user`'s ops (see `contested`).
    pub fn for_user(mut self, user: Option<String>) -> CommitResolution {
        self.user = user;
        self
    }
}

impl TxStep for CommitResolution {
    fn scope(&self, _: &DatabaseSchema) -> Scope {
        Scope::write(&[&self.collection, OUTBOX_STORE, VERSIONS_STORE, META_STORE])
    }

    fn advance(&mut self, results: Vec<Value>, _: &mut Ctx<'_>) -> Round {
        self.phase += 1;
        let id = doc_id(&self.collection, &self.key);
        if self.phase == 1 {
            return Round::Read(vec![
                Read::version(&id),
                Read::document_entries(&self.collection, &self.key),
                Read::meta(SENT_THROUGH),
            ]);
        }
        let entries = match entries_of(&results[1]) {
            Ok(entries) => entries,
            Err(e) => return Round::Abort(CoreError::Unreadable(e)),
        };
        let mine = contested(&entries, results[2].as_u64().unwrap_or(0), self.user.as_deref());
        // A letter retried meanwhile is no contested op, yet the resolution would land after it.
        if mine.last().map(|e| e.op.seq) != Some(self.last_seq) || letter_waiting(&entries, self.user.as_deref()) {
            self.outcome = Some(Stored::Stale);
            return Round::Commit(Commit::default());
        }
        let stored = VersionEntry::read(&results[0]);
        if stored.version > self.plan.version.version {
            self.outcome = Some(Stored::Outdated);
            return Round::Commit(Commit::default());
        }
        let mut commit = Commit::default();
        for entry in &mine {
            commit.writes.push(Write::delete(OUTBOX_STORE, entry.op.seq.into()));
        }
        commit.writes.push(match &self.plan.value {
            None => Write::delete(&self.collection, record_key(&self.key)),
            Some(doc) => Write::put(&self.collection, doc.clone(), None),
        });
        if let Some(entry) = &self.plan.entry {
            commit.writes.push(Write::Add { store: OUTBOX_STORE.to_owned(), value: entry.to_json() });
        }
        // The base moves to the version resolved against, unless an op that may have landed
        // stays queued ahead (sent, unanswered): its resend must be judged on the base it was
        // built on, or it would land blindly over what it never saw. The resolution's own op
        // then meets the newer version as a conflict once more, after that op was answered.
        if mine.len() == entries.len() {
            // A resync's mark stays: the copy named this document.
            let version = VersionEntry { resync: stored.resync, ..self.plan.version.clone() };
            commit.writes.push(Write::put(VERSIONS_STORE, version.to_json(), Some(id.into())));
        }
        commit.changes.push(ChangeNote {
            collection: self.collection.clone(),
            key: self.key.clone(),
            deleted: self.plan.value.is_none(),
            local: false,
        });
        self.outcome = Some(Stored::Done);
        Round::Commit(commit)
    }
}
