//! The storage guarantees, through the `Storage` trait, on every backend: exactly once per
//! mutation id, one transaction per batch, patches, tombstones and versions, final rejections,
//! conflicts, clock stamps, the change sequence and paging, compaction and expired cursors.

mod common;

use std::sync::Arc;

use serde_json::{json, Value};
use wharf::core::protocol::{Change, Mutation, MutationResult};
use wharf::core::Key;
use wharf_server::store::{Author, Cursor, Space, Storage, StoreError, StoredRecord};

use common::Backend;

fn mutation(id: &str, op: &str, key: &str, payload: Option<(&str, Value)>) -> Mutation {
    let mut m = json!({"id": id, "seq": 1, "collection": "todos", "key": key, "op": op});
    if let Some((field, value)) = payload {
        m[field] = value;
    }
    serde_json::from_value(m).unwrap()
}

fn put(id: &str, key: &str) -> Mutation {
    mutation(id, "put", key, Some(("value", json!({"id": key}))))
}

async fn push(store: &Arc<dyn Storage>, client_id: &str, batch: &[Mutation]) -> Vec<MutationResult> {
    store.apply_push(Author::shared(client_id), batch.to_vec()).await.unwrap().results
}

/// A pull from `cursor` (a plain `seq`), whose answer is a plain `seq` too.
async fn pull(
    store: &Arc<dyn Storage>,
    cursor: u64,
    limit: usize,
    collections: Option<&[&str]>,
) -> (Vec<Change>, u64, bool) {
    let collections = collections.map(|names| names.iter().map(|n| (*n).to_owned()).collect());
    let (changes, next, more) =
        store.pull(vec![Space::shared()], Cursor::at(cursor), limit, collections).await.unwrap();
    assert_eq!(next.since, 0, "a plain cursor: {next}");
    (changes, next.seq, more)
}

async fn record(store: &Arc<dyn Storage>, key: &str) -> Option<StoredRecord> {
    store.record(Space::shared(), "todos".into(), Key::Text(key.into())).await.unwrap()
}

fn keys(changes: &[Change]) -> Vec<String> {
    changes.iter().map(|c| format!("{}/{}", c.collection, serde_json::to_string(&c.key).unwrap())).collect()
}

backends!(the_same_mutation_twice_is_applied_once);
async fn the_same_mutation_twice_is_applied_once(backend: Backend) {
    let store = common::store(backend).await;
    let once = mutation("m1", "put", "a", Some(("value", json!({"id": "a", "n": 1}))));
    let first = push(&store, "c", std::slice::from_ref(&once)).await;
    let again = push(&store, "c", &[once.clone(), once]).await;
    assert_eq!(first, vec![MutationResult::Applied { id: "m1".into(), version: 1 }]);
    assert_eq!(again, vec![MutationResult::Duplicate { id: "m1".into(), version: 1 }; 2]);
    assert_eq!(record(&store, "a").await.unwrap().version, 1);
    assert_eq!(store.applied_count().await.unwrap(), 1);
    // Twice in one batch: applied, then a duplicate of itself.
    let twice = push(&store, "c", &[put("m2", "b"), put("m2", "b")]).await;
    assert_eq!(
        twice,
        vec![
            MutationResult::Applied { id: "m2".into(), version: 1 },
            MutationResult::Duplicate { id: "m2".into(), version: 1 }
        ]
    );
}

backends!(a_batch_commits_whole_or_not_at_all);
async fn a_batch_commits_whole_or_not_at_all(backend: Backend) {
    let store = common::store(backend).await;
    let batch = vec![put("m1", "a"), put("m2", "b"), mutation("bad", "patch", "zz", Some(("patch", json!({}))))];
    assert!(store.apply_push_then_fail(Author::shared("c"), batch.clone()).await.is_err());
    assert_eq!(store.applied_count().await.unwrap(), 0);
    assert_eq!(record(&store, "a").await, None, "the writes rolled back");
    assert_eq!(store.latest_seq().await.unwrap(), 0, "so did the sequence");
    assert_eq!(pull(&store, 0, 10, None).await, (vec![], 0, false));
    let results = push(&store, "c", &batch).await;
    assert!(matches!(&results[..2], [MutationResult::Applied { .. }, MutationResult::Applied { .. }]), "{results:?}");
    assert!(
        matches!(&results[2], MutationResult::Rejected { code, .. } if code == "NOT_FOUND"),
        "the rejection was rolled back too, and is decided again: {results:?}"
    );
}

backends!(patch_merges_delete_tombstones_and_versions_grow);
async fn patch_merges_delete_tombstones_and_versions_grow(backend: Backend) {
    let store = common::store(backend).await;
    let results = push(
        &store,
        "c",
        &[
            mutation("m1", "put", "a", Some(("value", json!({"id": "a", "x": 1, "y": 1})))),
            mutation("m2", "patch", "a", Some(("patch", json!({"y": 2})))),
            mutation("m3", "delete", "a", None),
            mutation("m4", "patch", "a", Some(("patch", json!({"y": 3})))),
        ],
    )
    .await;
    assert_eq!(results[1], MutationResult::Applied { id: "m2".into(), version: 2 });
    assert_eq!(results[2], MutationResult::Applied { id: "m3".into(), version: 3 });
    assert!(matches!(&results[3], MutationResult::Rejected { code, permanent: true, .. } if code == "NOT_FOUND"));
    assert_eq!(
        record(&store, "a").await.unwrap(),
        StoredRecord { value: None, version: 3, writer: Some("c".into()), writer_seq: Some(1), hlc: None, shape: None },
        "a tombstone keeps its version"
    );
    let (page, cursor, _) = pull(&store, 0, 10, None).await;
    assert_eq!((page.len(), cursor), (1, 3), "three writes took three seqs; the record appears once");
}

backends!(a_rejection_is_final_even_if_a_resend_would_now_apply);
async fn a_rejection_is_final_even_if_a_resend_would_now_apply(backend: Backend) {
    let store = common::store(backend).await;
    let early_patch = mutation("m1", "patch", "a", Some(("patch", json!({"y": 1}))));
    let first = push(&store, "c", std::slice::from_ref(&early_patch)).await;
    assert!(matches!(&first[0], MutationResult::Rejected { code, .. } if code == "NOT_FOUND"));
    push(&store, "c", &[put("m2", "a")]).await;
    // The client never saw the rejection and resends: same answer, nothing applied.
    assert_eq!(push(&store, "c", &[early_patch]).await, first);
    assert_eq!(record(&store, "a").await.unwrap().value, Some(json!({"id": "a"})));
}

backends!(a_stale_base_version_is_a_conflict_with_the_server_value);
async fn a_stale_base_version_is_a_conflict_with_the_server_value(backend: Backend) {
    let store = common::store(backend).await;
    push(&store, "c", &[mutation("m1", "put", "a", Some(("value", json!({"id": "a", "v": 1}))))]).await;
    let mut own = mutation("m0", "patch", "a", Some(("patch", json!({"own": true}))));
    own.base_version = Some(0);
    let results = push(&store, "c", &[own]).await;
    assert_eq!(results[0], MutationResult::Applied { id: "m0".into(), version: 2 }, "c's own write is no conflict");
    push(&store, "c", &[mutation("m1b", "put", "a", Some(("value", json!({"id": "a", "v": 1}))))]).await;
    let mut stale = mutation("m2", "put", "a", Some(("value", json!({"id": "a", "v": 2}))));
    stale.base_version = Some(0);
    let results = push(&store, "other", std::slice::from_ref(&stale)).await;
    assert_eq!(
        results,
        vec![MutationResult::Conflict {
            id: "m2".into(),
            version: 3,
            value: Some(json!({"id": "a", "v": 1})),
            hlc: None,
            shape: None
        }]
    );
    assert_eq!(store.latest_seq().await.unwrap(), 3, "a conflict takes no seq");
    stale.base_version = Some(3);
    assert_eq!(push(&store, "other", &[stale]).await[0], MutationResult::Applied { id: "m2".into(), version: 4 });
}

backends!(each_record_keeps_the_shape_of_its_last_write_for_pulls_and_conflicts);
async fn each_record_keeps_the_shape_of_its_last_write_for_pulls_and_conflicts(backend: Backend) {
    let store = common::store(backend).await;
    let shaped = |id: &str, key: &str, shape: Option<u32>| Mutation { shape, ..put(id, key) };
    push(&store, "c", &[shaped("m1", "a", Some(1)), shaped("m2", "b", Some(2)), shaped("m3", "c", None)]).await;
    let (page, _, _) = pull(&store, 0, 10, None).await;
    let shapes: Vec<Option<u32>> = page.iter().map(|c| c.shape).collect();
    assert_eq!(shapes, [Some(1), Some(2), None], "absent stays unknown");
    // A patch by a newer writer: the record is now in its shape.
    let patch = Mutation { shape: Some(3), ..mutation("m4", "patch", "a", Some(("patch", json!({"x": 1})))) };
    push(&store, "c", &[patch]).await;
    assert_eq!(record(&store, "a").await.unwrap().shape, Some(3));
    let mut stale = shaped("m5", "b", Some(1));
    stale.base_version = Some(0);
    let results = push(&store, "other", &[stale]).await;
    assert!(matches!(&results[0], MutationResult::Conflict { shape: Some(2), .. }), "{results:?}");
    let (page, _, _) = pull(&store, 3, 10, None).await;
    assert_eq!((keys(&page), page[0].shape), (vec!["todos/\"a\"".to_owned()], Some(3)));
}

backends!(a_late_request_never_puts_an_older_op_over_a_newer_one_of_the_same_client);
async fn a_late_request_never_puts_an_older_op_over_a_newer_one_of_the_same_client(backend: Backend) {
    // c's op 1 left, timed out on the client and stayed in flight; meanwhile d wrote, c resolved
    // the conflict and wrote op 2 on d's version. Op 1 now arrives.
    let store = common::store(backend).await;
    let op = |id: &str, seq: u64, base: u64, rev: &str| {
        let mut m = mutation(id, "put", "a", Some(("value", json!({"id": "a", "rev": rev}))));
        (m.seq, m.base_version) = (seq, Some(base));
        m
    };
    push(&store, "d", &[op("d1", 1, 0, "d1")]).await;
    assert_eq!(
        push(&store, "c", &[op("c2", 2, 1, "c2")]).await[0],
        MutationResult::Applied { id: "c2".into(), version: 2 }
    );
    let late = push(&store, "c", &[op("c1", 1, 0, "c1")]).await;
    assert!(
        matches!(&late[0], MutationResult::Conflict { version: 2, value: Some(v), .. } if v["rev"] == "c2"),
        "{late:?}"
    );
    let stored = record(&store, "a").await.unwrap();
    assert_eq!((stored.value.unwrap()["rev"].clone(), stored.writer_seq), (json!("c2"), Some(2)));
    // c's later ops still go through on the base it knew, as before.
    assert_eq!(
        push(&store, "c", &[op("c3", 3, 1, "c3")]).await[0],
        MutationResult::Applied { id: "c3".into(), version: 3 }
    );
}

backends!(invalid_mutations_are_rejected_permanently_and_the_rest_proceed);
async fn invalid_mutations_are_rejected_permanently_and_the_rest_proceed(backend: Backend) {
    let store = common::store(backend).await;
    let results = push(&store, "c", &[mutation("bad", "put", "a", None), put("good", "b")]).await;
    assert!(
        matches!(&results[0], MutationResult::Rejected { permanent: true, code, .. } if code == "INVALID_MUTATION")
    );
    assert!(matches!(&results[1], MutationResult::Applied { .. }));
}

backends!(records_lists_everything_with_keys_as_json);
async fn records_lists_everything_with_keys_as_json(backend: Backend) {
    let store = common::store(backend).await;
    let mut numbered = mutation("m3", "put", "x", Some(("value", json!({"n": 7}))));
    numbered.key = Key::Number(7.0);
    numbered.collection = "notes".into();
    let mut upper = put("m5", "B");
    upper.key = Key::Text("B".into());
    push(&store, "c", &[put("m1", "b"), put("m2", "a"), mutation("m4", "delete", "a", None), numbered, upper]).await;
    let listed: Vec<(String, Value, Option<Value>, u64)> = store
        .records()
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.collection, r.key, r.record.value, r.record.version))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("notes".into(), json!(7), Some(json!({"n": 7})), 1),
            ("todos".into(), json!("B"), Some(json!({"id": "B"})), 1),
            ("todos".into(), json!("a"), None, 2),
            ("todos".into(), json!("b"), Some(json!({"id": "b"})), 1),
        ],
        "byte order of the key's JSON text, on every backend"
    );
}

backends!(stamps_must_be_the_pushers_and_runaway_ones_are_capped);
async fn stamps_must_be_the_pushers_and_runaway_ones_are_capped(backend: Backend) {
    let store = common::store(backend).await;
    let mut foreign = put("m1", "a");
    foreign.hlc = Some("0000000003e80000-someone-else".into());
    let results = push(&store, "c", &[foreign]).await;
    assert!(
        matches!(&results[0], MutationResult::Rejected { code, permanent: true, .. } if code == "INVALID_MUTATION")
    );
    let mut runaway = put("m2", "a");
    runaway.hlc = Some("ffffffffffff0000-c".into());
    push(&store, "c", &[runaway]).await;
    let stored = record(&store, "a").await.unwrap().hlc.unwrap();
    assert!(stored.as_str() < "ffffffffffff0000-c" && stored.ends_with("-c"), "{stored}");
}

backends!(writes_take_increasing_seqs_and_pull_pages_by_them);
async fn writes_take_increasing_seqs_and_pull_pages_by_them(backend: Backend) {
    let store = common::store(backend).await;
    let mut note = mutation("m2", "put", "n", Some(("value", json!({"id": "n"}))));
    note.collection = "notes".into();
    note.hlc = Some("0000000007d00002-c".into());
    let batch = [
        put("m1", "a"),
        note,
        mutation("m3", "patch", "zz", Some(("patch", json!({"x": 1})))), // rejected: no seq
        put("m4", "b"),
    ];
    let pushed = store.apply_push(Author::shared("c"), batch.to_vec()).await.unwrap();
    assert_eq!(pushed.cursor, Some(3), "the batch's last seq");
    assert_eq!(store.latest_seq().await.unwrap(), 3);
    let again = store.apply_push(Author::shared("c"), batch.to_vec()).await.unwrap(); // all duplicates or rejected
    assert_eq!((again.cursor, store.latest_seq().await.unwrap()), (None, 3), "nothing moves");
    let (page, cursor, more) = pull(&store, 0, 2, None).await;
    assert_eq!((keys(&page), cursor, more), (vec!["todos/\"a\"".into(), "notes/\"n\"".into()], 2, true));
    assert_eq!(page[1].hlc.as_deref(), Some("0000000007d00002-c"));
    let (page, cursor, more) = pull(&store, cursor, 2, None).await;
    assert_eq!((keys(&page), cursor, more), (vec!["todos/\"b\"".into()], 3, false));
    assert_eq!(pull(&store, 3, 2, None).await, (vec![], 3, false), "caught up: the cursor stays");
    // Rewriting "a" moves it to the end, with its latest state only.
    push(&store, "c", &[mutation("m5", "delete", "a", None)]).await;
    let (page, cursor, _) = pull(&store, 3, 10, None).await;
    assert_eq!(cursor, 4);
    assert_eq!(
        page,
        vec![Change {
            collection: "todos".into(),
            key: Key::Text("a".into()),
            value: None,
            version: 2,
            hlc: None,
            // The store names the stored space; the handler turns it into the wire's name.
            space: Some("shared".into()),
            shape: None
        }]
    );
    assert_eq!(keys(&pull(&store, 0, 10, Some(&["todos"])).await.0), vec!["todos/\"b\"", "todos/\"a\""]);
    assert_eq!(pull(&store, 0, 10, Some(&[])).await, (vec![], 0, false));
}

backends!(compaction_drops_old_tombstones_and_expires_older_cursors);
async fn compaction_drops_old_tombstones_and_expires_older_cursors(backend: Backend) {
    let store = common::store(backend).await;
    push(&store, "c", &[put("m1", "a"), put("m2", "b"), put("m3", "c")]).await; // seqs 1..=3
    push(&store, "c", &[mutation("m4", "delete", "a", None), mutation("m5", "delete", "c", None)]).await; // 4, 5
    assert_eq!(store.compact(5).await.unwrap(), (1, 4), "the tombstone at 4 goes; the one at 5 stays");
    assert!(matches!(
        store.pull(vec![Space::shared()], Cursor::at(3), 10, None).await,
        Err(StoreError::CursorExpired(_))
    ));
    assert_eq!(keys(&pull(&store, 4, 10, None).await.0), vec!["todos/\"c\""]);
    let (all, cursor, _) = pull(&store, 0, 10, None).await;
    assert_eq!((keys(&all), cursor), (vec!["todos/\"b\"".into(), "todos/\"c\"".into()], 5));
    // Compacting everything, past the end: the horizon stops at the last seq, and the newest
    // seq is never handed out again although its record is gone.
    assert_eq!(store.compact(u64::MAX).await.unwrap(), (1, 5));
    assert_eq!(store.compact(2).await.unwrap(), (0, 5), "the horizon never goes down");
    assert_eq!(pull(&store, 5, 10, None).await, (vec![], 5, false));
    push(&store, "c", &[put("m6", "d")]).await;
    assert_eq!(pull(&store, 5, 10, None).await.1, 6);
    // A compacted record written again goes on above every version compaction removed (2): a
    // client that saw its tombstone never knows a version ahead of the server's. Its old ids
    // stay applied.
    push(&store, "c", &[put("m7", "a"), put("m1", "a")]).await;
    assert_eq!(record(&store, "a").await.unwrap().version, 3);
    // A write based on the compacted tombstone applies (it saw the latest state); a base the
    // server never issued is stale.
    let mut over_tombstone = put("m8", "c");
    over_tombstone.base_version = Some(2);
    let mut from_nowhere = put("m9", "e");
    from_nowhere.base_version = Some(3);
    let results = push(&store, "other", &[over_tombstone, from_nowhere]).await;
    assert!(matches!(results[0], MutationResult::Applied { version: 3, .. }), "{results:?}");
    assert!(matches!(results[1], MutationResult::Conflict { version: 2, value: None, .. }), "{results:?}");
}

backends!(a_pull_from_the_beginning_finishes_below_the_compaction_horizon);
async fn a_pull_from_the_beginning_finishes_below_the_compaction_horizon(backend: Backend) {
    let store = common::store(backend).await;
    push(&store, "c", &[put("m1", "a"), put("m2", "b"), put("m3", "c"), put("m4", "x")]).await; // seqs 1..=4
    push(&store, "c", &[mutation("m5", "delete", "x", None)]).await; // 5
    assert_eq!(store.compact(6).await.unwrap(), (1, 5));
    // One record per page: every cursor of this pull is below the horizon (5), yet it missed
    // nothing compaction removed, since it began after that.
    let mut cursor = Cursor::default();
    let mut keys_seen = Vec::new();
    loop {
        let (page, next, more) = store.pull(vec![Space::shared()], cursor, 1, None).await.unwrap();
        keys_seen.extend(keys(&page));
        cursor = next;
        if !more {
            break;
        }
    }
    assert_eq!(keys_seen, ["todos/\"a\"", "todos/\"b\"", "todos/\"c\""]);
    // Compaction moving on while such a pull pages: it starts over.
    let (_, partway, _) = store.pull(vec![Space::shared()], Cursor::default(), 1, None).await.unwrap();
    push(&store, "c", &[mutation("m6", "delete", "a", None), put("m7", "d")]).await; // 6, 7
    store.compact(7).await.unwrap();
    assert!(matches!(store.pull(vec![Space::shared()], partway, 1, None).await, Err(StoreError::CursorExpired(_))));
}

backends!(a_cursor_this_database_never_issued_expires);
async fn a_cursor_this_database_never_issued_expires(backend: Backend) {
    let store = common::store(backend).await;
    assert_eq!(pull(&store, 0, 10, None).await, (vec![], 0, false));
    assert!(
        matches!(store.pull(vec![Space::shared()], Cursor::at(7), 10, None).await, Err(StoreError::CursorExpired(m)) if m.contains("not issued"))
    );
}
