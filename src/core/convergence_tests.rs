//! Convergence, as a property: two replicas and a server, random interleavings of local writes,
//! pushes and pulls, then everyone syncs until quiet. Under each strategy (the built-in ones and
//! a sample application resolver) every replica
//! must end with exactly the server's documents, and every local write the server did not apply
//! must have gone through a reported conflict.
//!
//! The server applies the real staleness rule (`protocol::is_stale`) and patch semantics; the
//! replicas follow the browser client's algorithm with the real decision functions: a pulled
//! change is applied unless the document has queued ops, `pulled_change_conflicts` decides, and
//! `decide` + `settle` resolve, re-queuing on the remote version.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{json, Value};

use super::{decide, pulled_change_conflicts, settle, Conflict, Outcome, Strategy as Rule};
use crate::core::hlc::{self, Hlc};
use crate::core::outbox::{apply_patch, OpKind};
use crate::core::protocol::{is_stale, LastWrite};

#[derive(Debug, Clone)]
struct ServerRecord {
    value: Option<Value>,
    version: u64,
    writer: String,
    hlc: Option<String>,
    seq: u64,
}

#[derive(Default)]
struct Server {
    records: BTreeMap<String, ServerRecord>,
    seq: u64,
}

enum Answer {
    Applied(u64),
    Conflict { value: Option<Value>, version: u64, hlc: Option<String> },
}

#[derive(Debug, Clone)]
struct Op {
    key: String,
    kind: OpKind,
    payload: Option<Value>,
    stamp: String,
}

impl Server {
    fn push(&mut self, client: &str, op: &Op, base: u64) -> Answer {
        let current = self.records.get(&op.key);
        let version = current.map_or(0, |r| r.version);
        let last = LastWrite { writer: current.map(|r| r.writer.as_str()), seq: None };
        if is_stale(base, version, last, client, 0) {
            let (value, hlc) = current.map_or((None, None), |r| (r.value.clone(), r.hlc.clone()));
            return Answer::Conflict { value, version, hlc };
        }
        let value = match op.kind {
            OpKind::Put => op.payload.clone(),
            OpKind::Delete => None,
            OpKind::Patch => {
                let base = current.and_then(|r| r.value.as_ref());
                let merged = base.and_then(|b| apply_patch(b, op.payload.as_ref()?));
                assert!(merged.is_some(), "a patch the server must reject: {op:?} on {current:?}");
                merged
            }
        };
        self.seq += 1;
        let record = ServerRecord {
            value,
            version: version + 1,
            writer: client.to_owned(),
            hlc: Some(hlc::with_node(&op.stamp, client)),
            seq: self.seq,
        };
        self.records.insert(op.key.clone(), record);
        Answer::Applied(version + 1)
    }

    fn changes_after(&self, cursor: u64) -> Vec<(String, ServerRecord)> {
        let mut changes: Vec<_> = self.records.iter().filter(|(_, r)| r.seq > cursor).collect();
        changes.sort_by_key(|(_, r)| r.seq);
        changes.into_iter().map(|(k, r)| (k.clone(), r.clone())).collect()
    }

    fn documents(&self) -> BTreeMap<String, Value> {
        self.records.iter().filter_map(|(k, r)| Some((k.clone(), r.value.clone()?))).collect()
    }
}

struct Known {
    version: u64,
    base: Option<Value>,
}

struct Replica {
    id: String,
    strategy: Rule,
    records: BTreeMap<String, Value>,
    outbox: Vec<Op>,
    versions: BTreeMap<String, Known>,
    cursor: u64,
    clock: Hlc,
    now: f64,
    written: u64,
    applied: u64,
    dropped_in_conflicts: u64,
    conflicts: u64,
}

impl Replica {
    fn new(id: &str, strategy: Rule, clock_offset: f64) -> Replica {
        Replica {
            id: id.into(),
            strategy,
            records: BTreeMap::new(),
            outbox: Vec::new(),
            versions: BTreeMap::new(),
            cursor: 0,
            clock: Hlc::default(),
            now: 1_000_000.0 + clock_offset,
            written: 0,
            applied: 0,
            dropped_in_conflicts: 0,
            conflicts: 0,
        }
    }

    fn write(&mut self, key: &str, kind: OpKind, field: &str, n: u64) {
        self.now += 3.0;
        let current = self.records.get(key).cloned();
        let (kind, payload) = match (kind, current) {
            (OpKind::Patch, Some(doc)) => {
                let patch = json!({ field: n });
                self.records.insert(key.into(), apply_patch(&doc, &patch).unwrap());
                (OpKind::Patch, Some(patch))
            }
            (OpKind::Delete, Some(_)) => {
                self.records.remove(key);
                (OpKind::Delete, None)
            }
            (_, current) => {
                let mut doc = current.unwrap_or_else(|| json!({ "id": key }));
                doc[field] = json!(n);
                self.records.insert(key.into(), doc.clone());
                (OpKind::Put, Some(doc))
            }
        };
        let stamp = self.clock.tick(self.now);
        self.outbox.push(Op { key: key.into(), kind, payload, stamp });
        self.written += 1;
    }

    fn base_version(&self, key: &str) -> u64 {
        self.versions.get(key).map_or(0, |k| k.version)
    }

    /// One push of the whole outbox; the ops after a conflict on the same document are held.
    fn push(&mut self, server: &mut Server) {
        let mut conflicted: BTreeMap<String, (Option<Value>, u64, Option<String>)> = BTreeMap::new();
        let mut kept = Vec::new();
        for op in std::mem::take(&mut self.outbox) {
            if conflicted.contains_key(&op.key) {
                kept.push(op);
                continue;
            }
            match server.push(&self.id, &op, self.base_version(&op.key)) {
                Answer::Applied(version) => {
                    self.applied += 1;
                    self.rebase(&op, version);
                }
                Answer::Conflict { value, version, hlc } => {
                    conflicted.insert(op.key.clone(), (value, version, hlc));
                    kept.push(op);
                }
            }
        }
        self.outbox = kept;
        for (key, (value, version, stamp)) in conflicted {
            self.resolve(&key, value, version, stamp);
        }
    }

    /// Where the strategy merges, an acknowledged own write moves the base (`Settlement::rebase`).
    fn rebase(&mut self, op: &Op, version: u64) {
        if !matches!(self.strategy, Rule::Merge | Rule::Custom) {
            return;
        }
        let old = self.versions.get(&op.key).and_then(|k| k.base.clone());
        let base = match op.kind {
            OpKind::Put => op.payload.clone(),
            OpKind::Delete => None,
            OpKind::Patch => old.as_ref().zip(op.payload.as_ref()).and_then(|(b, p)| apply_patch(b, p)),
        };
        self.versions.insert(op.key.clone(), Known { version, base });
    }

    fn pull(&mut self, server: &Server) {
        for (key, change) in server.changes_after(self.cursor) {
            if let Some(stamp) = &change.hlc {
                self.clock.observe(stamp, self.now);
            }
            if !self.outbox.iter().any(|op| op.key == key) {
                match &change.value {
                    Some(doc) => self.records.insert(key.clone(), doc.clone()),
                    None => self.records.remove(&key),
                };
                let known = Known { version: change.version, base: change.value.clone() };
                self.versions.insert(key, known);
            } else if pulled_change_conflicts(change.version, change.hlc.as_deref(), self.base_version(&key), &self.id)
            {
                self.resolve(&key, change.value, change.version, change.hlc);
            }
        }
        self.cursor = server.seq;
    }

    fn resolve(&mut self, key: &str, remote: Option<Value>, version: u64, remote_stamp: Option<String>) {
        self.conflicts += 1;
        let local_stamp = self.outbox.iter().rev().find(|op| op.key == key).map(|op| op.stamp.clone()).unwrap();
        let conflict = Conflict {
            local: self.records.get(key).cloned(),
            remote: remote.clone(),
            base: self.versions.get(key).and_then(|k| k.base.clone()),
            local_hlc: Some(hlc::with_node(&local_stamp, &self.id)),
            remote_hlc: remote_stamp.clone(),
        };
        let choice = decide(self.strategy, &conflict).unwrap_or_else(|| custom_resolver(&conflict));
        let resolution = settle(&conflict, choice);
        if let Some(stamp) = &remote_stamp {
            self.clock.observe(stamp, self.now);
        }
        let before = self.outbox.len();
        self.outbox.retain(|op| op.key != key);
        self.dropped_in_conflicts += (before - self.outbox.len()) as u64;
        match &resolution.value {
            Some(doc) => self.records.insert(key.into(), doc.clone()),
            None => self.records.remove(key),
        };
        if resolution.requeue {
            let stamp = if resolution.outcome == Outcome::Local { local_stamp } else { self.clock.tick(self.now) };
            let kind = if resolution.value.is_some() { OpKind::Put } else { OpKind::Delete };
            self.outbox.push(Op { key: key.into(), kind, payload: resolution.value.clone(), stamp });
        }
        self.versions.insert(key.into(), Known { version, base: remote });
    }

    fn quiet(&self, server: &Server) -> bool {
        self.outbox.is_empty() && self.cursor == server.seq
    }
}

/// An application resolver, as `Custom` would call it: the remote document with the local
/// fields laid over it; a deletion on either side wins.
fn custom_resolver(conflict: &Conflict) -> super::Choice {
    match (&conflict.local, &conflict.remote) {
        (Some(local), Some(remote)) => super::Choice::Value(apply_patch(remote, local)),
        _ => super::Choice::Value(None),
    }
}

#[derive(Debug, Clone)]
enum Action {
    Write { replica: usize, key: u8, kind: u8, field: u8, n: u64 },
    Push(usize),
    Pull(usize),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => (0..2usize, 0..3u8, 0..3u8, 0..3u8, 0..1000u64)
            .prop_map(|(replica, key, kind, field, n)| Action::Write { replica, key, kind, field, n }),
        1 => (0..2usize).prop_map(Action::Push),
        1 => (0..2usize).prop_map(Action::Pull),
    ]
}

fn run(strategy: Rule, actions: &[Action], skew: f64) -> Result<(), TestCaseError> {
    let mut server = Server::default();
    let mut replicas = [Replica::new("a", strategy, 0.0), Replica::new("b", strategy, skew)];
    for action in actions {
        match *action {
            Action::Write { replica, key, kind, field, n } => {
                let kind = [OpKind::Put, OpKind::Patch, OpKind::Delete][kind as usize];
                replicas[replica].write(&format!("k{key}"), kind, ["x", "y", "z"][field as usize], n);
            }
            Action::Push(r) => replicas[r].push(&mut server),
            Action::Pull(r) => replicas[r].pull(&server),
        }
    }
    for _ in 0..20 {
        if replicas.iter().all(|r| r.quiet(&server)) {
            break;
        }
        for replica in &mut replicas {
            replica.push(&mut server);
            replica.pull(&server);
        }
    }
    prop_assert!(replicas.iter().all(|r| r.quiet(&server)), "{strategy:?}: did not settle");
    let expected = server.documents();
    for replica in &replicas {
        prop_assert_eq!(&replica.records, &expected, "{:?}: replica {} diverged", strategy, replica.id);
        prop_assert!(
            replica.applied + replica.dropped_in_conflicts >= replica.written,
            "{strategy:?}: a write vanished without a conflict"
        );
        prop_assert!(replica.dropped_in_conflicts == 0 || replica.conflicts > 0);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn two_replicas_and_a_server_converge_under_every_strategy(
        actions in prop::collection::vec(action(), 0..60),
        skew in -600_000.0f64..600_000.0,
    ) {
        for strategy in [Rule::Lww, Rule::ServerWins, Rule::ClientWins, Rule::Merge, Rule::Custom] {
            run(strategy, &actions, skew)?;
        }
    }
}

#[test]
fn a_concurrent_edit_of_one_document_is_resolved_by_the_later_stamp_under_lww() {
    let mut server = Server::default();
    let mut a = Replica::new("a", Rule::Lww, 0.0);
    let mut b = Replica::new("b", Rule::Lww, 0.0);
    a.write("k", OpKind::Put, "t", 1);
    a.push(&mut server);
    b.pull(&server);
    a.write("k", OpKind::Patch, "t", 2);
    b.now += 100.0;
    b.write("k", OpKind::Patch, "t", 3);
    a.push(&mut server);
    b.push(&mut server);
    assert_eq!(b.conflicts, 1, "b's base was stale");
    b.push(&mut server);
    a.pull(&server);
    b.pull(&server);
    assert_eq!(server.documents()["k"], json!({"id": "k", "t": 3}), "b wrote later");
    assert_eq!(a.records, server.documents());
    assert_eq!(b.records, server.documents());
}

#[test]
fn merge_keeps_a_remote_edit_made_after_seeing_this_clients_own_write() {
    let mut server = Server::default();
    let mut a = Replica::new("a", Rule::Merge, 0.0);
    let mut b = Replica::new("b", Rule::Merge, 0.0);
    a.write("k", OpKind::Put, "title", 1);
    a.push(&mut server);
    b.pull(&server);
    a.now += 10.0;
    a.write("k", OpKind::Patch, "title", 2);
    a.push(&mut server); // title 2, acknowledged: a's base moves to it
    a.write("k", OpKind::Patch, "done", 1); // queued
    b.pull(&server);
    b.write("k", OpKind::Patch, "title", 3); // b saw title 2 and changed it
    b.push(&mut server);
    a.now += 1_000.0; // a's stamps are later: without the moved base, a's old title would win
    a.pull(&server);
    a.push(&mut server);
    b.pull(&server);
    assert_eq!(server.documents()["k"], json!({"id": "k", "title": 3, "done": 1}));
    assert_eq!(a.records, server.documents());
    assert_eq!(b.records, server.documents());
}
