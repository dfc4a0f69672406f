//! What `db.deadLetters` does: list, retry, edit and discard, each one transaction whose rules
//! are decided here. Either way a retry is stamped now, for last-writer-wins.
//!
//! An unedited letter goes back under its own id: it may have reached the server before it died,
//! and the server's ledger must keep deduplicating it. It is marked `resent`, so coalescing never
//! rewrites it, and it leaves the local record alone: if the server answers `duplicate`, the
//! record (which pulls kept up to date while the letter was dead) already shows the server's
//! state; if the op lands now, the pull brings it back like any own write. Until the server
//! answers it, it takes no part in conflicts (`conflict_tx.rs`).
//!
//! An edited letter is a new write with a fresh id, which also replaces the local record so the
//! app sees what it sends.

use serde_json::Value;

use super::document::{key_of, parse_json, validate_patch, KeyPath};
use super::error::CoreError;
use super::json_text::quoted;
use super::op::{DeadLetter, Op, OpKind, OutboxEntry, Payload};
use super::schema::{DatabaseSchema, DEAD_STORE, OUTBOX_STORE};
use super::sorted;
use super::steps::{present, record_key, Ctx, TxStep};
use super::tx::{ChangeNote, Commit, Range, Read, Round, Scope, Write};

/// The outbox entry a retry queues for `letter`: due now, with a clean schedule and a fresh
/// stamp; an edited letter under `fresh_id`.
pub fn requeue(letter: &DeadLetter, now: f64, stamp: String, fresh_id: impl FnOnce() -> String) -> OutboxEntry {
    let id = if letter.edited { fresh_id() } else { letter.op.id.clone() };
    let op = Op { id, seq: 0, ..letter.op.clone() };
    let mut entry = OutboxEntry::new(op, now, Some(stamp)).by(letter.user.as_deref());
    entry.resent = !letter.edited;
    entry
}

/// Validates `json` as the new payload of `letter`: a whole document with the same key for a
/// put, a patch that keeps the key for a patch. A delete has nothing to edit.
pub fn edit(letter: &DeadLetter, json: &str, key_path: &KeyPath) -> Result<Payload, CoreError> {
    match letter.op.payload.kind() {
        OpKind::Put => {
            let value = parse_json(json, "the edited document")?;
            let key = key_of(&value, key_path)?;
            if key != letter.op.key {
                return Err(CoreError::InvalidDocument(format!(
                    "the edited document's key is {}, the dead letter's is {}; write a new document instead",
                    key.describe(),
                    letter.op.key.describe()
                )));
            }
            Ok(Payload::Put(value))
        }
        OpKind::Patch => {
            validate_patch(json, key_path, &letter.op.key)?;
            Ok(Payload::Patch(parse_json(json, "the edited patch")?))
        }
        OpKind::Delete => Err(CoreError::InvalidOptions(format!(
            "dead letter {} is a delete: it has no value to edit; retry or discard it",
            letter.op.id
        ))),
    }
}

/// Oldest death first.
fn by_death(letters: &mut [DeadLetter]) {
    sorted::sort_by(letters, |a, b| a.dead_at.total_cmp(&b.dead_at).then_with(|| a.op.id.cmp(&b.op.id)));
}

fn not_found(id: &str) -> CoreError {
    CoreError::NotFound { collection: "dead letters".to_owned(), key: quoted(id) }
}

fn letters(result: &Value) -> Result<Vec<DeadLetter>, CoreError> {
    let items = result.as_array().map_or(&[][..], Vec::as_slice);
    items
        .iter()
        .map(|v| DeadLetter::from_json(v).map_err(|e| CoreError::Unreadable(format!("a dead letter: {e}"))))
        .collect()
}

/// Every dead letter, oldest death first.
#[derive(Default)]
pub struct ListDead {
    pub outcome: Option<Vec<DeadLetter>>,
}

impl TxStep for ListDead {
    fn scope(&self, _: &DatabaseSchema) -> Scope {
        Scope::read(&[DEAD_STORE])
    }

    fn advance(&mut self, results: Vec<Value>, _: &mut Ctx<'_>) -> Round {
        let Some(found) = results.first() else { return Round::Read(vec![Read::dead_letters()]) };
        match letters(found) {
            Ok(mut letters) => {
                by_death(&mut letters);
                self.outcome = Some(letters);
                Round::Commit(Commit::default())
            }
            Err(e) => Round::Abort(e),
        }
    }
}

/// Moves the letter `id` (or every letter) back into the outbox, in one transaction with its
/// removal and, for an edited letter, its local record.
pub struct RetryDead {
    id: Option<String>,
    phase: u8,
    chosen: Vec<DeadLetter>,
    /// Positions in `chosen` of edited patches, whose records are read to merge them.
    patched: Vec<usize>,
    pub queued: Option<u64>,
}

impl RetryDead {
    pub fn new(id: Option<String>) -> RetryDead {
        RetryDead { id, phase: 0, chosen: Vec::new(), patched: Vec::new(), queued: None }
    }

    fn commit(&mut self, records: &[Value], ctx: &mut Ctx<'_>) -> Round {
        let mut commit = Commit::default();
        for (i, letter) in self.chosen.iter().enumerate() {
            let stamp = ctx.clock.stamp(ctx.now);
            let entry = requeue(letter, ctx.now, stamp, || ctx.clock.op_id(ctx.now));
            commit.writes.push(Write::delete(DEAD_STORE, letter.op.id.clone().into()));
            commit.writes.push(Write::Add { store: OUTBOX_STORE.to_owned(), value: entry.to_json() });
            if !letter.edited {
                continue;
            }
            let op = &letter.op;
            let current = self.patched.iter().position(|p| *p == i).and_then(|at| present(&records[at]));
            match op.payload.kind() {
                OpKind::Patch if current.is_none() => continue,
                _ => {}
            }
            let doc = op.payload.apply(current.as_ref());
            commit.writes.push(match &doc {
                Some(doc) => Write::put(&op.collection, doc.clone(), None),
                None => Write::delete(&op.collection, record_key(&op.key)),
            });
            commit.changes.push(ChangeNote {
                collection: op.collection.clone(),
                key: op.key.clone(),
                deleted: doc.is_none(),
                local: true,
            });
        }
        self.queued = Some(self.chosen.len() as u64);
        Round::Commit(commit)
    }
}

impl TxStep for RetryDead {
    fn scope(&self, schema: &DatabaseSchema) -> Scope {
        Scope::write(&[DEAD_STORE, OUTBOX_STORE]).with(schema.collections.iter().map(|c| c.name().to_owned()))
    }

    fn advance(&mut self, results: Vec<Value>, ctx: &mut Ctx<'_>) -> Round {
        self.phase += 1;
        match self.phase {
            1 => Round::Read(vec![Read::dead_letters()]),
            2 => {
                let mut all = match letters(&results[0]) {
                    Ok(all) => all,
                    Err(e) => return Round::Abort(e),
                };
                by_death(&mut all);
                if let Some(id) = &self.id {
                    all.retain(|letter| &letter.op.id == id);
                    if all.is_empty() {
                        return Round::Abort(not_found(id));
                    }
                }
                for letter in all.iter().filter(|l| l.edited) {
                    if let Err(e) = ctx.schema.position(&letter.op.collection) {
                        return Round::Abort(e);
                    }
                }
                self.chosen = all;
                self.patched = (0..self.chosen.len())
                    .filter(|&i| self.chosen[i].edited && self.chosen[i].op.payload.kind() == OpKind::Patch)
                    .collect();
                if self.patched.is_empty() {
                    return self.commit(&[], ctx);
                }
                Round::Read(
                    self.patched
                        .iter()
                        .map(|&i| Read::get(&self.chosen[i].op.collection, record_key(&self.chosen[i].op.key)))
                        .collect(),
                )
            }
            _ => self.commit(&results, ctx),
        }
    }
}

/// Replaces a dead letter's payload, validated first: bad input changes nothing.
pub struct EditDead {
    id: String,
    json: String,
    pub done: bool,
}

impl EditDead {
    pub fn new(id: String, json: String) -> EditDead {
        EditDead { id, json, done: false }
    }
}

impl TxStep for EditDead {
    fn scope(&self, _: &DatabaseSchema) -> Scope {
        Scope::write(&[DEAD_STORE])
    }

    fn advance(&mut self, results: Vec<Value>, ctx: &mut Ctx<'_>) -> Round {
        let Some(found) = results.first() else { return Round::Read(vec![Read::get(DEAD_STORE, self.id.clone())]) };
        if found.is_null() {
            return Round::Abort(not_found(&self.id));
        }
        let mut letter = match DeadLetter::from_json(found) {
            Ok(letter) => letter,
            Err(e) => return Round::Abort(CoreError::Unreadable(format!("dead letter {}: {e}", self.id))),
        };
        let key_path = match ctx.schema.position(&letter.op.collection) {
            Ok(at) => &ctx.schema.collections[at].key_path,
            Err(e) => return Round::Abort(e),
        };
        match edit(&letter, &self.json, key_path) {
            Ok(payload) => {
                letter.op.payload = payload;
                letter.edited = true;
                self.done = true;
                Round::Commit(Commit {
                    writes: vec![Write::put(DEAD_STORE, letter.to_json(), Some(self.id.clone().into()))],
                    changes: Vec::new(),
                })
            }
            Err(e) => Round::Abort(e),
        }
    }
}

/// Deletes one dead letter (or all of them); counts how many went.
pub struct DiscardDead {
    id: Option<String>,
    pub removed: Option<u64>,
}

impl DiscardDead {
    pub fn new(id: Option<String>) -> DiscardDead {
        DiscardDead { id, removed: None }
    }
}

impl TxStep for DiscardDead {
    fn scope(&self, _: &DatabaseSchema) -> Scope {
        Scope::write(&[DEAD_STORE])
    }

    fn advance(&mut self, results: Vec<Value>, _: &mut Ctx<'_>) -> Round {
        let range = self.id.clone().map(|id| Range::only(id.into()));
        let Some(count) = results.first() else {
            return Round::Read(vec![Read::Count { store: DEAD_STORE.to_owned(), range }]);
        };
        self.removed = Some(count.as_u64().unwrap_or(0));
        let write = match range {
            Some(range) => Write::Delete { store: DEAD_STORE.to_owned(), range },
            None => Write::Clear { store: DEAD_STORE.to_owned() },
        };
        Round::Commit(Commit { writes: vec![write], changes: Vec::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::error::SyncErrorCode;
    use crate::core::op::LastError;
    use crate::core::Key;
    use serde_json::json;

    fn letter(payload: Payload, edited: bool) -> DeadLetter {
        DeadLetter {
            op: Op { id: "01OLD".into(), seq: 7, collection: "todos".into(), key: Key::text("a").unwrap(), payload },
            created_at: 1.0,
            attempts: 10,
            last_error: LastError::new(SyncErrorCode::Poison, "no", Some(422)),
            dead_at: 2.0,
            edited,
            user: None,
        }
    }

    #[test]
    fn an_unedited_retry_keeps_its_id_so_the_server_still_deduplicates_it() {
        let again = requeue(&letter(Payload::Put(json!({"id": "a"})), false), 50.0, "s".into(), || {
            unreachable!("no fresh id for an unedited letter")
        });
        assert_eq!(again.op.id, "01OLD");
        assert!(again.resent, "its id may be applied: coalescing must leave it alone");
        assert_eq!((again.attempts, again.next_attempt_at, again.last_error.clone()), (0, 50.0, None));
        assert_eq!((again.op.seq, again.hlc.as_deref()), (0, Some("s")), "a new outbox position, stamped now");
        let mine = DeadLetter { user: Some("ada".into()), ..letter(Payload::Delete, true) };
        let again = requeue(&mine, 50.0, "s".into(), || "01NEW".into());
        assert_eq!(again.user.as_deref(), Some("ada"), "a retry queues it for the user who wrote it");
    }

    #[test]
    fn an_edited_retry_is_a_new_write() {
        let again = requeue(&letter(Payload::Patch(json!({"n": 2})), true), 50.0, "s".into(), || "01NEW".into());
        assert_eq!(again.op.id, "01NEW");
        assert!(!again.resent, "a fresh id was never sent");
        assert_eq!(again.op.payload, Payload::Patch(json!({"n": 2})));
    }

    #[test]
    fn edits_are_validated_against_the_op_and_key() {
        let path = KeyPath::parse("id").unwrap();
        let put = letter(Payload::Put(json!({"id": "a"})), false);
        assert_eq!(edit(&put, r#"{"id":"a","n":5}"#, &path).unwrap(), Payload::Put(json!({"id": "a", "n": 5})));
        assert_eq!(edit(&put, r#"{"id":"b"}"#, &path).unwrap_err().code().as_str(), "INVALID_DOCUMENT");
        assert_eq!(edit(&put, r#"{"n":1}"#, &path).unwrap_err().code().as_str(), "MISSING_KEY");
        assert_eq!(edit(&put, "[1]", &path).unwrap_err().code().as_str(), "INVALID_DOCUMENT");
        let patch = letter(Payload::Patch(json!({"n": 1})), false);
        assert_eq!(edit(&patch, r#"{"n":3}"#, &path).unwrap(), Payload::Patch(json!({"n": 3})));
        assert!(edit(&patch, r#"{"id":"z"}"#, &path).is_err());
        assert_eq!(edit(&letter(Payload::Delete, false), "{}", &path).unwrap_err().code().as_str(), "INVALID_OPTIONS");
    }
}
