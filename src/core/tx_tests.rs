//! The rules inside the replica's transactions, one by one, on an in-memory IndexedDB: which
//! queued ops a conflict covers and how a retried dead letter is replayed, when a resolution is
//! stale or outdated, which pulled changes are held and which applied, the reads a pull page
//! costs, the resync sweep, merge bases moved by acknowledgements, and dead-letter retries.

use serde_json::{json, Value};

use crate::core::conflict_tx::{contested, CommitResolution, LoadConflict, ResolutionPlan, Stored};
use crate::core::dead_letters::RetryDead;
use crate::core::error::SyncErrorCode;
use crate::core::hlc::WriteClock;
use crate::core::memdb::MemDb;
use crate::core::op::{doc_id, ConflictInfo, DeadLetter, LastError, Op, OutboxEntry, Payload};
use crate::core::protocol::Change;
use crate::core::pull_tx::{ApplyPage, PullKeys, PullPage, SweepUnseen};
use crate::core::push::{Rebase, Settlement};
use crate::core::push_tx::SettleBatch;
use crate::core::schema::{DatabaseSchema, DEAD_STORE, META_STORE, OUTBOX_STORE, SENT_THROUGH, VERSIONS_STORE};
use crate::core::sorted::StringSet;
use crate::core::steps::{Ctx, TxStep, VersionEntry};
use crate::core::tx::{Read, Round, Write};
use crate::core::Key;

fn schema() -> DatabaseSchema {
    crate::core::test_world::todos_schema()
}

/// Runs `step` to its commit on `db`; returns every round of reads it asked for.
fn run(db: &mut MemDb, step: &mut dyn TxStep) -> Result<Vec<Vec<Read>>, String> {
    let schema = schema();
    let mut clock = WriteClock::new(9);
    let scope = step.scope(&schema);
    let mut asked = Vec::new();
    let mut results = Vec::new();
    loop {
        let round = step.advance(results, &mut Ctx { now: 5_000.0, clock: &mut clock, schema: &schema });
        match round {
            Round::Read(reads) => {
                results = reads.iter().map(|r| db.read(r, &scope)).collect();
                asked.push(reads);
            }
            Round::Commit(commit) => return db.write(&commit.writes, &scope).map(|()| asked),
            Round::Abort(error) => return Err(error.to_string()),
        }
    }
}

fn key(k: &str) -> Key {
    Key::Text(k.into())
}

fn entry(id: &str, k: &str, payload: Payload) -> OutboxEntry {
    OutboxEntry::new(
        Op { id: id.into(), seq: 0, collection: "todos".into(), key: key(k), payload },
        1.0,
        Some(format!("000000000001000{}", id.len() % 10)),
    )
}

/// Queues entries (in order) and stores records and versions, as earlier transactions would.
fn setup(entries: &[OutboxEntry], records: &[Value], versions: &[(&str, Value)]) -> MemDb {
    let schema = schema();
    let mut db = MemDb::new(&schema);
    let scope = crate::core::tx::Scope::write(&[OUTBOX_STORE, VERSIONS_STORE, "todos"]);
    let mut writes: Vec<Write> =
        entries.iter().map(|e| Write::Add { store: OUTBOX_STORE.into(), value: e.to_json() }).collect();
    writes.extend(records.iter().map(|r| Write::put("todos", r.clone(), None)));
    writes.extend(
        versions.iter().map(|(k, v)| Write::put(VERSIONS_STORE, v.clone(), Some(doc_id("todos", &key(k)).into()))),
    );
    db.write(&writes, &scope).unwrap();
    db
}

fn outbox(db: &MemDb) -> Vec<OutboxEntry> {
    db.rows(OUTBOX_STORE).into_iter().map(|(k, v)| OutboxEntry::from_json(&v, k.as_u64().unwrap()).unwrap()).collect()
}

fn conflicted(mut e: OutboxEntry, version: u64) -> OutboxEntry {
    e.conflict =
        Some(ConflictInfo { version, value: Some(json!({"id": "a", "srv": version})), hlc: None, shape: None });
    e
}

fn resent(mut e: OutboxEntry) -> OutboxEntry {
    e.resent = true;
    e
}

#[test]
fn a_conflict_covers_every_op_but_unanswered_retried_letters() {
    let put = entry("1", "a", Payload::Put(json!({"id": "a"})));
    let letter = resent(entry("22", "a", Payload::Patch(json!({"n": 1}))));
    let held = conflicted(entry("333", "a", Payload::Patch(json!({"m": 1}))), 4);
    let behind = resent(entry("4444", "a", Payload::Patch(json!({"o": 1}))));
    let mut entries = [put.clone(), letter.clone(), held.clone(), behind.clone()];
    for (seq, entry) in (1..).zip(entries.iter_mut()) {
        entry.op.seq = seq;
    }
    let ids: Vec<&str> = contested(&entries, 0, None).iter().map(|e| e.op.id.as_str()).collect();
    assert_eq!(
        ids,
        ["1", "333"],
        "a retried letter, ahead of the conflict or behind it, may have landed: it waits for its own answer"
    );
    let answered = conflicted(letter.clone(), 4);
    assert_eq!(
        contested(&[answered], 0, None).len(),
        1,
        "a retried letter answered `conflict` never landed: it is covered"
    );
    assert!(contested(&[letter], 0, None).is_empty());
    // An op a push took and the server never answered is like a retried letter: it may have landed.
    let ids: Vec<&str> = contested(&entries, 1, None).iter().map(|e| e.op.id.as_str()).collect();
    assert_eq!(ids, ["333"], "the put was sent (seq 1, mark 1) and is unanswered");
}

#[test]
fn an_op_sent_and_unanswered_leaves_the_record_to_the_server_until_it_is_answered() {
    // The put of "a" went out (the mark is at its seq 1) and its answer was lost; meanwhile a
    // pull brings another client's version of "a", made after seeing the put.
    let sent = entry("1", "a", Payload::Put(json!({"id": "a", "mine": 1})));
    let mut db = setup(&[sent], &[json!({"id": "a", "mine": 1})], &[("a", json!(1))]);
    let scope = crate::core::tx::Scope::write(&[META_STORE]);
    db.write(&[Write::put(META_STORE, json!(1), Some(json!(SENT_THROUGH)))], &scope).unwrap();
    let (stored, _) = apply(&mut db, vec![change("a", 3, Some("x-other"))]);
    assert_eq!((stored.applied, stored.held.len()), (1, 0), "not a conflict: the record follows the server");
    assert_eq!(db.get("todos", &json!("a")), Some(json!({"id": "a", "v": 3})));
    assert_eq!(outbox(&db).len(), 1, "the op stays queued, to be resent under its id");
    let base = db.get(VERSIONS_STORE, &json!(doc_id("todos", &key("a"))));
    assert_eq!(base, Some(json!(1)), "its base stays: resent, it meets the newer version as a conflict");
    // Had the server answered `conflict`, the local side would be the record with the op replayed.
    let mut load = LoadConflict::new("todos".into(), key("a"), None);
    let mut held = outbox(&db)[0].clone();
    held.conflict = Some(ConflictInfo { version: 3, value: Some(json!({"id": "a", "v": 3})), hlc: None, shape: None });
    let scope = crate::core::tx::Scope::write(&[OUTBOX_STORE]);
    db.write(&[Write::put(OUTBOX_STORE, held.to_json(), Some(json!(1)))], &scope).unwrap();
    run(&mut db, &mut load).unwrap();
    assert_eq!(load.outcome.unwrap().local, Some(json!({"id": "a", "mine": 1})));
}

#[test]
fn the_local_side_replays_the_queue_from_a_retried_letter_the_server_refused() {
    // The letter was never applied to the record (it may have landed before it died); once the
    // server answered `conflict`, the local side is the record with it and every later op on top.
    let letter = conflicted(resent(entry("1", "a", Payload::Put(json!({"id": "a", "n": 5})))), 3);
    let later = entry("22", "a", Payload::Patch(json!({"m": 2})));
    let mut db = setup(
        &[letter, later],
        &[json!({"id": "a", "m": 2, "old": true})],
        &[("a", json!({"v": 2, "b": {"id": "a"}}))],
    );
    let mut load = LoadConflict::new("todos".into(), key("a"), None);
    run(&mut db, &mut load).unwrap();
    let side = load.outcome.unwrap();
    assert_eq!(side.local, Some(json!({"id": "a", "n": 5, "m": 2})));
    assert_eq!(side.base, Some(json!({"id": "a"})));
    assert_eq!(side.last.map(|(seq, _)| seq), Some(2));
}

fn plan(version: u64) -> ResolutionPlan {
    ResolutionPlan {
        value: Some(json!({"id": "a", "won": true})),
        entry: None,
        version: VersionEntry { version, base: None, resync: None },
    }
}

#[test]
fn a_resolution_is_stored_only_if_nothing_moved_meanwhile() {
    let queued = [entry("1", "a", Payload::Put(json!({"id": "a"}))), resent(entry("22", "a", Payload::Delete))];
    // A write came in after the local side was loaded (its newest op was seq 1).
    let mut db = setup(&[queued[0].clone(), entry("9", "a", Payload::Patch(json!({"x": 1})))], &[], &[]);
    let mut stale = CommitResolution::new("todos".into(), key("a"), 1, plan(3));
    run(&mut db, &mut stale).unwrap();
    assert_eq!(stale.outcome, Some(Stored::Stale));
    assert_eq!(outbox(&db).len(), 2, "nothing was written");
    // A newer server version arrived (pulled) since: that version's conflict is resolved instead.
    let mut db = setup(&queued[..1], &[], &[("a", json!(7))]);
    let mut outdated = CommitResolution::new("todos".into(), key("a"), 1, plan(3));
    run(&mut db, &mut outdated).unwrap();
    assert_eq!(outdated.outcome, Some(Stored::Outdated));
    // Otherwise: the contested ops go, an unanswered retried letter stays queued.
    let mut db = setup(&queued, &[], &[("a", json!(3))]);
    let mut done = CommitResolution::new("todos".into(), key("a"), 1, plan(3));
    run(&mut db, &mut done).unwrap();
    assert_eq!(done.outcome, Some(Stored::Done));
    let left: Vec<String> = outbox(&db).into_iter().map(|e| e.op.id).collect();
    assert_eq!(left, ["22"], "the retried letter keeps its place and its id");
    assert_eq!(db.get("todos", &json!("a")), Some(json!({"id": "a", "won": true})));
}

#[test]
fn a_resolution_leaves_the_base_while_an_op_that_may_have_landed_is_queued() {
    // Seq 1 went out and was never answered (the mark is at 1); seq 2 met a pulled change.
    let queued =
        [entry("1", "a", Payload::Put(json!({"id": "a", "n": 1}))), entry("22", "a", Payload::Patch(json!({"m": 1})))];
    let mut db = setup(&queued, &[], &[("a", json!(3))]);
    let scope = crate::core::tx::Scope::write(&[META_STORE]);
    db.write(&[Write::put(META_STORE, json!(1), Some(json!(SENT_THROUGH)))], &scope).unwrap();
    let mut done = CommitResolution::new("todos".into(), key("a"), 2, plan(5));
    run(&mut db, &mut done).unwrap();
    assert_eq!(done.outcome, Some(Stored::Done));
    assert_eq!(outbox(&db).iter().map(|e| e.op.id.as_str()).collect::<Vec<_>>(), ["1"], "only seq 2 was resolved");
    let base = db.get(VERSIONS_STORE, &json!(doc_id("todos", &key("a"))));
    assert_eq!(base, Some(json!(3)), "seq 1 is resent on the base it was built on, not on version 5");
}

fn change(k: &str, version: u64, hlc: Option<&str>) -> Change {
    Change {
        collection: "todos".into(),
        key: key(k),
        value: Some(json!({"id": k, "v": version})),
        version,
        hlc: hlc.map(str::to_owned),
        space: None,
        shape: None,
    }
}

fn apply(db: &mut MemDb, changes: Vec<Change>) -> (crate::core::pull_tx::Stored, Vec<Vec<Read>>) {
    let page = PullPage { changes, cursor: "9".into(), has_more: false };
    let keys = PullKeys { cursor_key: "pullCursor:".into(), resync_key: "pullResync:".into(), ..PullKeys::default() };
    let mut step = ApplyPage::new(page, &[], keys, StringSet::default(), None);
    let asked = run(db, &mut step).unwrap();
    (step.outcome.unwrap(), asked)
}

#[test]
fn pulled_changes_to_documents_with_queued_ops_are_held_the_rest_applied() {
    let queued = entry("1", "a", Payload::Patch(json!({"n": 1})));
    let waiting = conflicted(entry("22", "c", Payload::Put(json!({"id": "c"}))), 2);
    let letter = resent(entry("333", "b", Payload::Put(json!({"id": "b", "mine": true}))));
    let mut db = setup(&[queued, waiting, letter], &[json!({"id": "a"})], &[("a", json!(4))]);
    let (stored, _) = apply(&mut db, vec![change("a", 6, Some("x-other")), change("b", 3, None), change("c", 5, None)]);
    assert_eq!(stored.held.iter().map(|h| (h.index, h.base)).collect::<Vec<_>>(), [(0, 4), (2, 0)]);
    assert_eq!(stored.applied, 1, "b has only an unanswered retried letter: the record follows the server");
    assert_eq!(db.get("todos", &json!("b")), Some(json!({"id": "b", "v": 3})));
    assert_eq!(db.get("todos", &json!("a")), Some(json!({"id": "a"})), "held: untouched");
    let refreshed = outbox(&db).into_iter().find(|e| e.op.id == "22").unwrap();
    assert_eq!(refreshed.conflict.map(|c| c.version), Some(5), "a held conflict waits on the newest server state");
}

#[test]
fn a_page_reads_the_outbox_only_for_its_own_documents() {
    let backlog: Vec<OutboxEntry> =
        (0..50).map(|i| entry(&format!("{i}"), &format!("q{i}"), Payload::Delete)).collect();
    let mut db = setup(&backlog, &[], &[]);
    let (stored, asked) = apply(&mut db, vec![change("a", 1, None), change("q7", 1, None)]);
    // The backlog is never read whole: only the keys of its head, as many as the page has
    // documents and one more.
    assert!(!asked.iter().flatten().any(|r| matches!(r, Read::All { index: None, .. })), "{asked:?}");
    assert!(matches!(asked[0][0], Read::Keys { limit: Some(3), .. }), "{asked:?}");
    let per_doc = asked.iter().flatten().filter(|r| matches!(r, Read::All { index: Some(_), .. })).count();
    assert_eq!(per_doc, 2, "{asked:?}");
    assert_eq!((stored.applied, stored.held.len()), (1, 1), "q7 has a queued op");
    // An outbox no larger than the page is read whole, in one request.
    let mut small = setup(&backlog[..2], &[], &[]);
    let (stored, asked) = apply(&mut small, vec![change("a", 1, None), change("q1", 1, None)]);
    assert_eq!(asked.iter().flatten().filter(|r| matches!(r, Read::All { index: Some(_), .. })).count(), 0);
    assert_eq!((stored.applied, stored.held.len()), (1, 1), "q1 has a queued op");
    let mut empty = setup(&[], &[], &[]);
    let (stored, asked) = apply(&mut empty, vec![change("a", 1, None)]);
    assert_eq!((stored.applied, asked.len()), (1, 1), "an empty outbox costs one short read of keys");
}

#[test]
fn the_resync_sweep_removes_what_the_copy_lacks_unless_it_is_queued() {
    let mut db = setup(
        &[entry("1", "kept", Payload::Patch(json!({"n": 1}))), resent(entry("22", "letter", Payload::Delete))],
        &[json!({"id": "seen"}), json!({"id": "gone"}), json!({"id": "kept"}), json!({"id": "letter"})],
        &[
            ("seen", json!({"v": 1, "r": "R2"})),
            ("gone", json!({"v": 1, "r": "R1"})),
            ("kept", json!(1)),
            ("letter", json!(1)),
        ],
    );
    // The resync marked R2 named only "seen" ("gone" was seen by an earlier one).
    let keys = PullKeys {
        cursor_key: "pullCursor:".into(),
        resync_key: "pullResync:".into(),
        resync: Some("R2".into()),
        ..PullKeys::default()
    };
    let scope = crate::core::tx::Scope::write(&[META_STORE]);
    db.write(&[Write::put(META_STORE, json!("R2"), Some(json!("pullResync:")))], &scope).unwrap();
    let mut sweep = SweepUnseen::new(vec!["todos".into()], keys);
    run(&mut db, &mut sweep).unwrap();
    assert_eq!(db.get(META_STORE, &json!("pullResync:")), None, "the resync is over");
    assert_eq!(sweep.removed, Some(2));
    let left: Vec<Value> = db.rows("todos").into_iter().map(|(k, _)| k).collect();
    assert_eq!(left, [json!("kept"), json!("seen")], "an unanswered retried letter keeps nothing the server lost");
}

#[test]
fn acknowledgements_move_merge_bases_forward_only() {
    let mut db = setup(
        &[entry("1", "a", Payload::Patch(json!({"n": 2})))],
        &[],
        &[("a", json!({"v": 3, "b": {"id": "a", "n": 1}}))],
    );
    let ops = [
        Rebase { op: entry("1", "a", Payload::Patch(json!({"n": 2}))).op, version: 4 },
        Rebase { op: entry("2", "a", Payload::Patch(json!({"old": true}))).op, version: 2 },
    ];
    let settlement =
        Settlement { acked: vec![1], acked_ranges: vec![(1, 1)], rebase: ops.to_vec(), ..Settlement::default() };
    let mut settle = SettleBatch::new(settlement.clone(), StringSet::build(vec!["todos".to_owned()]));
    run(&mut db, &mut settle).unwrap();
    let stored = VersionEntry::read(&db.get(VERSIONS_STORE, &json!(doc_id("todos", &key("a")))).unwrap());
    assert_eq!(stored, VersionEntry { version: 4, base: Some(Some(json!({"id": "a", "n": 2}))), resync: None });
    assert!(outbox(&db).is_empty());
    let mut plain = setup(&[], &[], &[("a", json!(3))]);
    run(&mut plain, &mut SettleBatch::new(settlement.clone(), StringSet::default())).unwrap();
    assert_eq!(
        plain.get(VERSIONS_STORE, &json!(doc_id("todos", &key("a")))),
        Some(json!(3)),
        "no base kept: untouched"
    );
    // With a transport, every acknowledged version is recorded (a bare number: no base kept).
    let mut recorded = setup(&[], &[], &[("a", json!(3))]);
    run(&mut recorded, &mut SettleBatch::new(settlement, StringSet::default()).recording_versions(true)).unwrap();
    assert_eq!(recorded.get(VERSIONS_STORE, &json!(doc_id("todos", &key("a")))), Some(json!(4)));
}

#[test]
fn a_rescheduled_entry_is_written_back_only_if_still_queued() {
    let mut db = setup(&[entry("1", "a", Payload::Delete)], &[], &[]);
    let mut gone = entry("2", "b", Payload::Delete);
    gone.op.seq = 2;
    let mut kept = outbox(&db)[0].clone();
    kept.attempts = 3;
    let settlement = Settlement { updated: vec![kept, gone], ..Settlement::default() };
    run(&mut db, &mut SettleBatch::new(settlement, StringSet::default())).unwrap();
    let left = outbox(&db);
    assert_eq!((left.len(), left[0].attempts), (1, 3), "a resolution replaced the other meanwhile: not revived");
}

fn letter(id: &str, payload: Payload, edited: bool) -> DeadLetter {
    DeadLetter {
        op: Op { id: id.into(), seq: 3, collection: "todos".into(), key: key("a"), payload },
        created_at: 1.0,
        attempts: 4,
        last_error: LastError::new(SyncErrorCode::Poison, "no", Some(422)),
        dead_at: if edited { 2.0 } else { 1.0 },
        edited,
        user: None,
    }
}

#[test]
fn a_retry_requeues_letters_and_writes_only_edited_ones_locally() {
    let mut db = setup(&[], &[json!({"id": "a", "n": 1})], &[]);
    let scope = crate::core::tx::Scope::write(&[DEAD_STORE]);
    let letters = [
        letter("OLD", Payload::Put(json!({"id": "a", "n": 9})), false),
        letter("EDIT", Payload::Patch(json!({"m": 2})), true),
    ];
    let writes: Vec<Write> =
        letters.iter().map(|l| Write::put(DEAD_STORE, l.to_json(), Some(l.op.id.clone().into()))).collect();
    db.write(&writes, &scope).unwrap();
    let mut retry = RetryDead::new(None);
    run(&mut db, &mut retry).unwrap();
    assert_eq!(retry.queued, Some(2));
    let queued = outbox(&db);
    assert_eq!((queued[0].op.id.as_str(), queued[0].resent), ("OLD", true));
    assert!(queued[1].op.id != "EDIT" && !queued[1].resent, "an edited letter is a new write");
    assert!(queued.iter().all(|e| e.hlc.is_some()), "a retry is stamped now");
    assert_eq!(
        db.get("todos", &json!("a")),
        Some(json!({"id": "a", "n": 1, "m": 2})),
        "only the edit reaches the record"
    );
    assert!(db.rows(DEAD_STORE).is_empty());
    let mut missing = RetryDead::new(Some("NOPE".into()));
    assert!(run(&mut db, &mut missing).unwrap_err().contains("NOPE"));
}

/// A conflict is only ever about the signed-in user's ops: another user's queued op on the same
/// document (even one held by its own conflict) is neither loaded into the local side nor
/// replaced by the resolution, so it is never sent in this user's name nor lost.
#[test]
fn a_resolution_replaces_only_the_signed_in_users_ops() {
    let mut ada = conflicted(entry("1", "a", Payload::Patch(json!({"ada": 1}))), 3).by(Some("ada"));
    let mut bob = entry("22", "a", Payload::Patch(json!({"bob": 1}))).by(Some("bob"));
    (ada.op.seq, bob.op.seq) = (1, 2);
    let ids = |mine: Vec<&OutboxEntry>| mine.iter().map(|e| e.op.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(contested(&[ada.clone(), bob.clone()], 0, Some("bob"))), ["22"]);
    assert_eq!(ids(contested(&[ada.clone(), bob.clone()], 0, Some("ada"))), ["1"]);
    let mut db = setup(&[ada, bob], &[json!({"id": "a"})], &[("a", json!(3))]);
    let mut load = LoadConflict::new("todos".into(), key("a"), Some("bob".into()));
    run(&mut db, &mut load).unwrap();
    let side = load.outcome.unwrap();
    assert_eq!((side.last.map(|(seq, _)| seq), side.user.as_deref(), side.held), (Some(2), Some("bob"), true));
    let mut done = CommitResolution::new("todos".into(), key("a"), 2, plan(3)).for_user(Some("bob".into()));
    run(&mut db, &mut done).unwrap();
    assert_eq!(done.outcome, Some(Stored::Done));
    let left: Vec<(String, Option<String>)> = outbox(&db).into_iter().map(|e| (e.op.id, e.user)).collect();
    assert_eq!(left, [("1".to_owned(), Some("ada".to_owned()))], "Ada's op stays hers");
}

/// Coalescing never folds one user's write into another's entry (nor into one queued without a
/// user, which any user may send).
#[test]
fn coalescing_never_crosses_users() {
    let anyone = entry("1", "a", Payload::Put(json!({"id": "a"})));
    let ada = entry("22", "a", Payload::Patch(json!({"ada": 1}))).by(Some("ada"));
    let ada_again = entry("333", "a", Payload::Patch(json!({"more": 1}))).by(Some("ada"));
    let folded = crate::core::coalesce::coalesce(&[anyone, ada, ada_again], |_| true);
    let kept: Vec<(&str, Option<&str>)> =
        folded.entries.iter().map(|e| (e.op.id.as_str(), e.user.as_deref())).collect();
    assert_eq!(kept, [("1", None), ("22", Some("ada"))], "Ada's two patches fold; the anonymous put stays apart");
}
