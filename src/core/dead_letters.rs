//! What `db.deadLetters.retry` and `.edit` do to a dead letter, decided here so the rules are
//! tested natively. Either way the retry is stamped now, for last-writer-wins.
//!
//! An unedited letter goes back under its own id: it may have reached the server before it died,
//! and the server's ledger must keep deduplicating it. It is marked `resent`, so coalescing never
//! rewrites it, and it leaves the local record alone: if the server answers `duplicate`, the
//! record (which pulls kept up to date while the letter was dead) already shows the server's
//! state; if the op lands now, the pull brings it back like any own write. Until the server
//! answers it, it takes no part in conflicts (pulled changes are applied as if it were not
//! queued, and resolutions leave it queued); once the server answers `conflict` it certainly never
//! landed, and the conflict is settled with it replayed over the record (`contested` and
//! `loadConflict` in `platform/js/conflicts.js`).
//!
//! An edited letter is a new write with a fresh id, which also replaces the local record so the
//! app sees what it sends.

use serde::Serialize;
use serde_json::Value;

use super::document::{key_of, parse_json, validate_patch, KeyPath};
use super::error::CoreError;
use super::outbox::{DeadLetter, OpKind, OutboxEntry};

/// One letter to move back into the outbox (the JSON `requeueDead` in `sync_io.js` reads).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Requeue {
    pub dead_id: String,
    pub entry: OutboxEntry,
    /// Also write the entry's effect to the local record (the letter was edited).
    pub local: bool,
}

/// The outbox entry a retry queues for `letter`: due now, with a clean schedule.
pub fn requeue(letter: &DeadLetter, now: f64, fresh_id: impl FnOnce() -> String) -> Requeue {
    let id = if letter.edited { fresh_id() } else { letter.id.clone() };
    Requeue {
        dead_id: letter.id.clone(),
        entry: OutboxEntry {
            id,
            seq: None,
            collection: letter.collection.clone(),
            key: letter.key.clone(),
            op: letter.op,
            value: letter.value.clone(),
            patch: letter.patch.clone(),
            created_at: now,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            conflict: None,
            hlc: None,
            base_version: None,
            resent: !letter.edited,
        },
        local: letter.edited,
    }
}

/// Which field of the letter an edit replaces, and the validated new payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Edit {
    pub field: &'static str,
    pub payload: Value,
}

/// Validates `json` as the new payload of `letter`: a whole document with the same key for a
/// put, a patch that keeps the key for a patch. A delete has nothing to edit.
pub fn edit(letter: &DeadLetter, json: &str, key_path: &KeyPath) -> Result<Edit, CoreError> {
    match letter.op {
        OpKind::Put => {
            let value = parse_json(json, "the edited document")?;
            let key = key_of(&value, key_path)?;
            if key != letter.key {
                return Err(CoreError::InvalidDocument(format!(
                    "the edited document's key is {}, the dead letter's is {}; write a new document instead",
                    key.describe(),
                    letter.key.describe()
                )));
            }
            Ok(Edit { field: "value", payload: value })
        }
        OpKind::Patch => {
            validate_patch(json, key_path, &letter.key)?;
            Ok(Edit { field: "patch", payload: parse_json(json, "the edited patch")? })
        }
        OpKind::Delete => Err(CoreError::InvalidOptions(format!(
            "dead letter {} is a delete: it has no value to edit; retry or discard it",
            letter.id
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::outbox::LastError;
    use crate::core::Key;
    use serde_json::json;

    fn letter(op: OpKind, edited: bool) -> DeadLetter {
        let (value, patch) = match op {
            OpKind::Put => (Some(json!({"id": "a", "n": 1})), None),
            OpKind::Patch => (None, Some(json!({"n": 2}))),
            OpKind::Delete => (None, None),
        };
        DeadLetter {
            id: "01OLD".into(),
            seq: 7,
            collection: "todos".into(),
            key: Key::text("a").unwrap(),
            op,
            value,
            patch,
            created_at: 1.0,
            attempts: 10,
            last_error: LastError::new("POISON", "no", Some(422)),
            dead_at: 2.0,
            edited,
        }
    }

    #[test]
    fn an_unedited_retry_keeps_its_id_so_the_server_still_deduplicates_it() {
        let again = requeue(&letter(OpKind::Put, false), 50.0, || unreachable!("no fresh id for an unedited letter"));
        assert_eq!((again.dead_id.as_str(), again.entry.id.as_str()), ("01OLD", "01OLD"));
        assert!(again.entry.resent, "its id may be applied: coalescing must leave it alone");
        assert!(!again.local, "if it was applied, the record already follows the server");
        assert_eq!(
            (again.entry.attempts, again.entry.next_attempt_at, again.entry.last_error.clone()),
            (0, 50.0, None)
        );
        assert!(again.entry.is_consistent());
    }

    #[test]
    fn an_edited_retry_is_a_new_write_that_also_changes_the_local_record() {
        let again = requeue(&letter(OpKind::Patch, true), 50.0, || "01NEW".into());
        assert_eq!((again.dead_id.as_str(), again.entry.id.as_str(), again.local), ("01OLD", "01NEW", true));
        assert!(!again.entry.resent, "a fresh id was never sent");
        let wire = serde_json::to_value(&again).unwrap();
        assert_eq!(wire["deadId"], "01OLD");
        assert_eq!(wire["entry"]["patch"], json!({"n": 2}));
        assert!(wire["entry"].get("seq").is_none(), "the outbox assigns a new seq");
    }

    #[test]
    fn edits_are_validated_against_the_op_and_key() {
        let path = KeyPath::parse("id").unwrap();
        let put = letter(OpKind::Put, false);
        let ok = edit(&put, r#"{"id":"a","n":5}"#, &path).unwrap();
        assert_eq!((ok.field, ok.payload), ("value", json!({"id": "a", "n": 5})));
        assert_eq!(edit(&put, r#"{"id":"b"}"#, &path).unwrap_err().code().as_str(), "INVALID_DOCUMENT");
        assert_eq!(edit(&put, r#"{"n":1}"#, &path).unwrap_err().code().as_str(), "MISSING_KEY");
        assert_eq!(edit(&put, "[1]", &path).unwrap_err().code().as_str(), "INVALID_DOCUMENT");
        let patch = letter(OpKind::Patch, false);
        assert_eq!(edit(&patch, r#"{"n":3}"#, &path).unwrap().field, "patch");
        assert!(edit(&patch, r#"{"id":"z"}"#, &path).is_err());
        assert_eq!(edit(&letter(OpKind::Delete, false), "{}", &path).unwrap_err().code().as_str(), "INVALID_OPTIONS");
    }
}
