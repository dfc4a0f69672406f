//! Conflict resolution: what a document becomes when a local edit and a remote change overlap.
//!
//! A conflict is found two ways (docs/protocol.md): a pulled change for a document that still has
//! queued local ops based on an older version, or a push answered `conflict`. Either way the
//! client holds three states (local, remote, and the base the local edits started from) and the
//! collection's strategy picks the outcome. The outcome is written locally and, unless the server
//! already holds it, queued again with the remote version as its `baseVersion`, so the server
//! accepts it unless yet another change overtook it (then this runs again). A local side that wins
//! by a later stamp is queued even when its content equals the server's (two concurrent deletes):
//! the server must record the later stamp, or a write stamped between the two would beat it. Nothing is dropped
//! silently: every conflict is reported with both sides and the outcome.

use serde_json::{Map, Value};

use super::hlc;
use super::json_text::quoted;

/// How a collection settles conflicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// The write with the later hybrid logical clock stamp wins, whole document.
    #[default]
    Lww,
    /// The server's state wins: local edits on the document are dropped (and reported).
    ServerWins,
    /// The local state wins and is pushed again over the server's.
    ClientWins,
    /// Three-way merge per top-level field against the base; a field changed on both sides goes
    /// to the later stamp; an update beats a concurrent delete.
    Merge,
    /// The application's async resolver decides.
    Custom,
}

impl Strategy {
    pub fn parse(name: &str) -> Result<Strategy, String> {
        match name {
            "lww" => Ok(Strategy::Lww),
            "server-wins" => Ok(Strategy::ServerWins),
            "client-wins" => Ok(Strategy::ClientWins),
            "merge" => Ok(Strategy::Merge),
            other => Err(format!(
                "unknown conflict strategy {}: use \"lww\", \"server-wins\", \"client-wins\", \"merge\" or a function",
                quoted(other)
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Lww => "lww",
            Strategy::ServerWins => "server-wins",
            Strategy::ClientWins => "client-wins",
            Strategy::Merge => "merge",
            Strategy::Custom => "custom",
        }
    }
}

/// Both sides of one conflict. `None` values are deletions (or, for `base`, unknown).
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub local: Option<Value>,
    pub remote: Option<Value>,
    pub base: Option<Value>,
    /// Wire stamp (with node) of the latest local op on the document.
    pub local_hlc: Option<String>,
    /// Wire stamp of the remote state.
    pub remote_hlc: Option<String>,
}

/// What a strategy (or a custom resolver) chose.
#[derive(Debug, Clone, PartialEq)]
pub enum Choice {
    Local,
    Remote,
    /// A new state (`None` deletes the document).
    Value(Option<Value>),
}

/// How the conflict ended, as reported to `onConflict`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Local,
    Remote,
    Merged,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Local => "local",
            Outcome::Remote => "remote",
            Outcome::Merged => "merged",
        }
    }
}

/// What to store once a choice is made.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    /// The document's new local state (`None`: deleted).
    pub value: Option<Value>,
    /// Queue `value` for the server (a put, or a delete when `None`) on the remote version; false
    /// when the server already holds it, under a stamp at least as late as the local side's.
    pub requeue: bool,
    pub outcome: Outcome,
}

/// The built-in strategies' choice; `None` for `Custom`, whose choice comes from JavaScript.
pub fn decide(strategy: Strategy, conflict: &Conflict) -> Option<Choice> {
    match strategy {
        Strategy::Lww if local_is_later(conflict) => Some(Choice::Local),
        Strategy::Lww | Strategy::ServerWins => Some(Choice::Remote),
        Strategy::ClientWins => Some(Choice::Local),
        Strategy::Merge => Some(Choice::Value(merge(conflict))),
        Strategy::Custom => None,
    }
}

fn local_is_later(conflict: &Conflict) -> bool {
    hlc::later(conflict.local_hlc.as_deref(), conflict.remote_hlc.as_deref())
}

/// Turns a choice into what to store.
pub fn settle(conflict: &Conflict, choice: Choice) -> Resolution {
    let (value, outcome) = match choice {
        Choice::Remote => (conflict.remote.clone(), Outcome::Remote),
        Choice::Local => (conflict.local.clone(), Outcome::Local),
        Choice::Value(value) if value == conflict.remote => (value, Outcome::Remote),
        Choice::Value(value) if value == conflict.local => (value, Outcome::Local),
        Choice::Value(value) => (value, Outcome::Merged),
    };
    let requeue = value != conflict.remote || (outcome == Outcome::Local && local_is_later(conflict));
    Resolution { value, requeue, outcome }
}

/// Whether a pulled change to a document that still has queued local ops conflicts with them:
/// it does when the server moved past the version the ops were based on, unless this client
/// wrote that version itself (its own earlier push coming back; see `protocol::is_stale`). A
/// change without a readable stamp cannot say who wrote it: it is left to the push, where the
/// server, which knows the writer, answers `conflict` if it is one.
pub fn pulled_change_conflicts(version: u64, stamp: Option<&str>, base_version: u64, client_id: &str) -> bool {
    let writer = stamp.and_then(hlc::node_of);
    version > base_version && writer.is_some() && writer != Some(client_id)
}

/// Three-way merge per top-level field. An unknown base counts as an empty document, so fields
/// both sides added with different values go to the later stamp.
pub fn merge(conflict: &Conflict) -> Option<Value> {
    let local_later = local_is_later(conflict);
    let (local, remote) = (&conflict.local, &conflict.remote);
    if local == remote {
        return local.clone();
    }
    match (local, remote) {
        (None, Some(r)) => return if conflict.base.as_ref() == Some(r) { None } else { Some(r.clone()) },
        (Some(l), None) => return if conflict.base.as_ref() == Some(l) { None } else { Some(l.clone()) },
        _ => {}
    }
    let (Some(Value::Object(l)), Some(Value::Object(r))) = (local, remote) else {
        return if local_later { local.clone() } else { remote.clone() };
    };
    let empty = Map::new();
    let b = conflict.base.as_ref().and_then(Value::as_object).unwrap_or(&empty);
    let mut merged = Map::new();
    for field in l.keys().chain(r.keys().filter(|k| !l.contains_key(*k))) {
        let (lv, rv, bv) = (l.get(field), r.get(field), b.get(field));
        let chosen = if lv == rv || rv == bv {
            lv
        } else if lv == bv {
            rv
        } else if local_later {
            lv
        } else {
            rv
        };
        if let Some(value) = chosen {
            merged.insert(field.clone(), value.clone());
        }
    }
    Some(Value::Object(merged))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conflict(local: Option<Value>, remote: Option<Value>, base: Option<Value>, local_later: bool) -> Conflict {
        let (early, late) = ("0000000003e80000-a".to_owned(), "0000000007d00000-b".to_owned());
        let (local_hlc, remote_hlc) = if local_later { (late, early) } else { (early, late) };
        Conflict { local, remote, base, local_hlc: Some(local_hlc), remote_hlc: Some(remote_hlc) }
    }

    #[test]
    fn strategies_parse_by_name_and_refuse_others() {
        for name in ["lww", "server-wins", "client-wins", "merge"] {
            assert_eq!(Strategy::parse(name).unwrap().as_str(), name);
        }
        let err = Strategy::parse("newest").unwrap_err();
        assert!(err.contains("\"newest\""), "{err}");
    }

    #[test]
    fn lww_follows_the_later_stamp() {
        let c = conflict(Some(json!({"id": "a", "t": "L"})), Some(json!({"id": "a", "t": "R"})), None, true);
        assert_eq!(decide(Strategy::Lww, &c), Some(Choice::Local));
        let c = Conflict { local_hlc: c.remote_hlc.clone(), remote_hlc: c.local_hlc.clone(), ..c };
        assert_eq!(decide(Strategy::Lww, &c), Some(Choice::Remote));
        assert_eq!(decide(Strategy::ServerWins, &c), Some(Choice::Remote));
        assert_eq!(decide(Strategy::ClientWins, &c), Some(Choice::Local));
        assert_eq!(decide(Strategy::Custom, &c), None);
    }

    #[test]
    fn settling_requeues_only_what_differs_from_the_server() {
        let c = conflict(Some(json!({"id": "a", "t": "L"})), Some(json!({"id": "a", "t": "R"})), None, true);
        let remote = settle(&c, Choice::Remote);
        assert_eq!((remote.value, remote.requeue, remote.outcome), (c.remote.clone(), false, Outcome::Remote));
        let local = settle(&c, Choice::Local);
        assert_eq!((local.value, local.requeue, local.outcome), (c.local.clone(), true, Outcome::Local));
        let merged = settle(&c, Choice::Value(Some(json!({"id": "a", "t": "LR"}))));
        assert_eq!((merged.requeue, merged.outcome), (true, Outcome::Merged));
        let same = settle(&c, Choice::Value(c.remote.clone()));
        assert_eq!((same.requeue, same.outcome), (false, Outcome::Remote));
        let deleted = settle(&c, Choice::Value(None));
        assert_eq!((deleted.value, deleted.requeue), (None, true));
    }

    #[test]
    fn a_later_local_side_equal_to_the_server_is_still_sent_for_its_stamp() {
        // Two concurrent deletes: the later one must reach the server, or a put stamped between
        // them would revive the document under last-writer-wins.
        let later = conflict(None, None, Some(json!({"id": "a"})), true);
        let settled = settle(&later, decide(Strategy::Lww, &later).unwrap());
        assert_eq!((settled.value, settled.requeue, settled.outcome), (None, true, Outcome::Local));
        let earlier = conflict(None, None, Some(json!({"id": "a"})), false);
        let settled = settle(&earlier, decide(Strategy::Lww, &earlier).unwrap());
        assert_eq!(
            (settled.requeue, settled.outcome),
            (false, Outcome::Remote),
            "the server's stamp is already the later one"
        );
        let same = conflict(Some(json!({"id": "a", "n": 1})), Some(json!({"id": "a", "n": 1})), None, true);
        assert!(settle(&same, Choice::Local).requeue, "equal documents too");
        assert!(!settle(&same, Choice::Remote).requeue);
    }

    #[test]
    fn merge_keeps_each_sides_own_field_changes() {
        let base = json!({"id": "a", "title": "t", "done": false, "tag": "x"});
        let local = json!({"id": "a", "title": "local title", "done": false, "tag": "x", "new": 1});
        let remote = json!({"id": "a", "title": "t", "done": true});
        for local_later in [true, false] {
            let merged = merge(&conflict(Some(local.clone()), Some(remote.clone()), Some(base.clone()), local_later));
            assert_eq!(merged, Some(json!({"id": "a", "title": "local title", "done": true, "new": 1})));
        }
    }

    #[test]
    fn merge_gives_a_field_changed_on_both_sides_to_the_later_stamp() {
        let base = Some(json!({"id": "a", "n": 1}));
        let (l, r) = (Some(json!({"id": "a", "n": 2})), Some(json!({"id": "a", "n": 3})));
        assert_eq!(merge(&conflict(l.clone(), r.clone(), base.clone(), true)), l);
        assert_eq!(merge(&conflict(l.clone(), r.clone(), base, false)), r);
        assert_eq!(merge(&conflict(l.clone(), r.clone(), None, true)), l, "unknown base: both added n");
    }

    #[test]
    fn a_pulled_change_conflicts_only_when_another_client_moved_past_the_base() {
        assert!(pulled_change_conflicts(4, Some("0000000003e80000-b"), 3, "a"));
        assert!(!pulled_change_conflicts(4, None, 3, "a"), "an unknown writer: the push will tell");
        assert!(!pulled_change_conflicts(4, Some("0000000003e80000-a"), 3, "a"), "its own push coming back");
        assert!(!pulled_change_conflicts(3, Some("0000000003e80000-b"), 3, "a"), "the base itself");
    }

    #[test]
    fn merge_lets_an_update_beat_a_concurrent_delete() {
        let base = Some(json!({"id": "a", "n": 1}));
        let updated = Some(json!({"id": "a", "n": 2}));
        assert_eq!(merge(&conflict(None, updated.clone(), base.clone(), true)), updated, "remote update wins");
        assert_eq!(merge(&conflict(updated.clone(), None, base.clone(), false)), updated, "local update wins");
        assert_eq!(merge(&conflict(None, base.clone(), base.clone(), false)), None, "untouched remote: delete wins");
        assert_eq!(merge(&conflict(base.clone(), None, base.clone(), true)), None, "untouched local: delete wins");
        assert_eq!(merge(&conflict(None, None, base, true)), None);
    }
}
