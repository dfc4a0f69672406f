//! Documents in another shape than the app's, natively (`shapes.rs`): a client on version 1
//! pushes, a client on version 2 pulls and migrates on arrival (one crossing per page), a
//! failing `migrate` or a newer shape skips the change and moves the cursor, and a conflict's
//! server side is migrated before it is resolved.

use serde_json::{json, Value};

use crate::core::document::Key;
use crate::core::op::doc_id;
use crate::core::protocol::Change;
use crate::core::push_engine::HttpReply;
use crate::core::schema::{DatabaseSchema, META_STORE};
use crate::core::test_world::{options, World};

fn todos(version: u32, migrate: bool) -> DatabaseSchema {
    let migrate = if migrate { r#","migrate":"function""# } else { "" };
    let text =
        format!(r#"{{"name":"db","collections":[{{"name":"todos","keyPath":"id","version":{version}{migrate}}}]}}"#);
    DatabaseSchema::from_json(&text).unwrap()
}

/// Version 1 had `title`; version 2 calls it `text`. Throws for a document named "bad", and
/// gives "lost" another key.
fn migrate(doc: &Value, from: u32) -> Result<Value, String> {
    assert_eq!(from, 1);
    let mut doc = doc.as_object().cloned().unwrap();
    match doc["id"].as_str() {
        Some("bad") => return Err("cannot read this one".into()),
        Some("lost") => {
            doc.insert("id".into(), "other".into());
        }
        _ => {}
    }
    let title = doc.remove("title").unwrap_or(Value::Null);
    doc.insert("text".into(), title);
    Ok(Value::Object(doc))
}

fn change(key: &str, shape: Option<u32>) -> Change {
    Change {
        collection: "todos".into(),
        key: Key::text(key).unwrap(),
        value: Some(json!({"id": key, "title": key})),
        version: 1,
        hlc: None,
        space: None,
        shape,
    }
}

fn page(changes: &[Change], cursor: &str) -> HttpReply {
    let body = json!({"protocol": 2, "changes": changes, "cursor": cursor, "hasMore": false});
    HttpReply::Response { status: 200, retry_after: None, body: body.to_string() }
}

/// A pull-only client at version 2 with `migrate`.
fn puller(w: &mut World) -> usize {
    w.schema = todos(2, true);
    w.migrate = Some(migrate);
    w.client("c", options(100, 10, "pull"), 3)
}

fn pull(w: &mut World, c: usize) -> Value {
    let now = w.now;
    let waiter = w.pull(c);
    w.settle_until(now);
    w.clients[c].host.settled.remove(&waiter).expect("the pull was answered").expect("the pull succeeded")
}

fn local(w: &World, c: usize, key: &str) -> Option<Value> {
    w.clients[c].host.db.get("todos", &json!(key))
}

fn cursor(w: &World, c: usize) -> Option<Value> {
    let key = w.clients[c].host.replica.sync().unwrap().options().cursor_key(&["todos".to_owned()]);
    w.clients[c].host.db.get(META_STORE, &json!(key))
}

#[test]
fn a_page_in_an_older_shape_is_migrated_in_one_crossing_before_it_is_stored() {
    let mut w = World::new();
    let c = puller(&mut w);
    w.settle(50); // the start-up pull: nothing
    let changes = [change("a", Some(1)), change("b", Some(1)), change("c", Some(2)), change("d", None)];
    w.pull_script.push_back(page(&changes, "4"));
    let summary = pull(&mut w, c);
    assert_eq!(w.migrations, (1, 2), "one crossing, for the two documents in shape 1");
    assert_eq!(local(&w, c, "a"), Some(json!({"id": "a", "text": "a"})));
    assert_eq!(local(&w, c, "b"), Some(json!({"id": "b", "text": "b"})));
    assert_eq!(local(&w, c, "c"), Some(json!({"id": "c", "title": "c"})), "already in the app's shape");
    assert_eq!(local(&w, c, "d"), Some(json!({"id": "d", "title": "d"})), "no shape: taken as the app's");
    assert_eq!((summary["applied"].clone(), summary["invalid"].clone()), (json!(4), json!(0)));
}

#[test]
fn a_failed_migration_skips_only_its_change_and_the_cursor_moves_on() {
    let mut w = World::new();
    let c = puller(&mut w);
    w.settle(50);
    w.pull_script.push_back(page(&[change("a", Some(1)), change("bad", Some(1)), change("lost", Some(1))], "3"));
    let summary = pull(&mut w, c);
    assert_eq!(local(&w, c, "a"), Some(json!({"id": "a", "text": "a"})));
    assert_eq!((local(&w, c, "bad"), local(&w, c, "lost")), (None, None), "never stored unmigrated");
    assert_eq!(summary["invalid"], json!(2));
    let reasons: Vec<&str> =
        summary["unstored"].as_array().unwrap().iter().map(|u| u["reason"].as_str().unwrap()).collect();
    assert!(reasons.iter().all(|r| r.starts_with("MIGRATION_FAILED")), "{reasons:?}");
    assert!(reasons[0].contains("cannot read this one") && reasons[1].contains("key"), "{reasons:?}");
    assert_eq!(cursor(&w, c), Some(json!("3")), "the pull is not wedged");
}

#[test]
fn a_newer_shape_is_not_stored_and_the_pull_goes_on() {
    let mut w = World::new();
    let c = puller(&mut w);
    w.settle(50);
    w.pull_script.push_back(page(&[change("a", Some(3)), change("b", Some(2))], "2"));
    let summary = pull(&mut w, c);
    assert_eq!(local(&w, c, "a"), None, "the app's code does not know shape 3");
    assert_eq!(local(&w, c, "b"), Some(json!({"id": "b", "title": "b"})));
    assert_eq!(summary["invalid"], json!(1));
    assert!(summary["unstored"][0]["reason"].as_str().unwrap().starts_with("SHAPE_TOO_NEW"), "{summary}");
    assert_eq!(cursor(&w, c), Some(json!("2")));
    assert_eq!(w.migrations, (0, 0));
}

#[test]
fn without_migrate_an_older_shape_is_stored_as_it_is() {
    let mut w = World::new();
    w.schema = todos(2, false);
    let c = w.client("c", options(100, 10, "pull"), 3);
    w.settle(50);
    w.pull_script.push_back(page(&[change("a", Some(1))], "1"));
    pull(&mut w, c);
    assert_eq!(local(&w, c, "a"), Some(json!({"id": "a", "title": "a"})));
    assert_eq!(w.migrations, (0, 0), "no crossing");
}

#[test]
fn a_version_1_writer_and_a_version_2_reader_through_the_server() {
    let mut w = World::new();
    w.schema = todos(1, false);
    let old = w.client("old", options(100, 10, "both"), 1);
    let new = puller(&mut w);
    w.put(old, "a", json!({"title": "milk"}));
    w.settle(200);
    let stored = &w.server.records[&doc_id("todos", &Key::text("a").unwrap())];
    assert_eq!(stored.shape, Some(1), "every mutation names its writer's version");
    pull(&mut w, new);
    assert_eq!(local(&w, new, "a"), Some(json!({"id": "a", "text": "milk"})));
}

#[test]
fn a_conflicts_server_side_in_an_older_shape_is_migrated_before_it_is_resolved() {
    let mut w = World::new();
    w.schema = todos(1, false);
    let old = w.client("old", options(100, 10, "both"), 1);
    w.schema = todos(2, true);
    w.migrate = Some(migrate);
    let mut opts = options(100, 10, "both");
    let rules = crate::core::sync_options::SyncOptions::from_value(&json!({"url": "/s", "conflicts": "server-wins"}));
    opts.conflicts = rules.unwrap().conflicts;
    let new = w.client("new", opts, 2);
    w.put(old, "a", json!({"title": "milk"}));
    w.settle(200);
    pull(&mut w, new);
    assert_eq!(w.migrations, (1, 1));
    w.put(old, "a", json!({"title": "oat milk"})); // version 2 on the server, in shape 1
    w.settle(200);
    w.put(new, "a", json!({"text": "soy milk"})); // based on version 1: the server answers conflict
    w.settle(200);
    assert_eq!(w.migrations, (2, 2), "the conflict's server side went through migrate");
    assert_eq!(local(&w, new, "a"), Some(json!({"id": "a", "text": "oat milk"})), "server-wins, in the app's shape");
    assert!(w.outbox(new).is_empty());
}

#[test]
fn an_old_client_holds_its_ops_against_a_document_in_a_newer_shape() {
    let mut w = World::new();
    w.schema = todos(2, true);
    w.migrate = Some(migrate);
    let new = w.client("new", options(100, 10, "both"), 2);
    w.schema = todos(1, false);
    let old = w.client("old", options(100, 10, "both"), 1);
    w.put(new, "a", json!({"text": "mine"}));
    w.settle(200);
    w.put(old, "a", json!({"title": "theirs"})); // creates what exists: a conflict it cannot resolve
    let t = w.now;
    w.settle_until(t + 60_000.0);
    assert_eq!(w.record("a"), Some(json!({"id": "a", "text": "mine"})), "nothing overwritten");
    assert_eq!(w.outbox(old).len(), 1, "the op stays queued, held");
    let reported = w.clients[old].host.events.iter().any(|e| {
        matches!(e, crate::core::status::SyncEvent::Conflict(r) if r.error.as_deref().is_some_and(|e| e.starts_with("SHAPE_TOO_NEW")))
    });
    assert!(reported, "reported through onConflict, with why");
}

#[test]
fn a_page_stored_one_by_one_after_a_unique_index_refusal_keeps_its_refusals() {
    let mut w = World::new();
    w.schema = DatabaseSchema::from_json(
        r#"{"name":"db","collections":[{"name":"todos","keyPath":"id","version":2,"migrate":"function",
            "indexes":[{"name":"email","keyPath":"email","unique":true}]}]}"#,
    )
    .unwrap();
    w.migrate = Some(migrate);
    let c = w.client("c", options(100, 10, "pull"), 3);
    w.settle(50);
    let user = |key: &str, email: &str, shape: u32| Change {
        value: Some(json!({"id": key, "email": email, "title": key})),
        ..change(key, Some(shape))
    };
    w.pull_script.push_back(page(&[user("u1", "a@x", 2)], "1"));
    pull(&mut w, c);
    // u2 takes u1's email (the whole page fails on the index, then goes one by one); "bad" cannot
    // be migrated: it must not slip in unmigrated on the second, one-by-one, pass.
    let clash = [user("u2", "a@x", 1), user("bad", "b@x", 1), user("u3", "c@x", 1)];
    w.pull_script.push_back(page(&clash, "4"));
    let summary = pull(&mut w, c);
    assert_eq!((&summary["applied"], &summary["invalid"]), (&json!(1), &json!(2)), "{summary}");
    assert_eq!(local(&w, c, "bad"), None, "never stored unmigrated");
    assert_eq!(local(&w, c, "u3"), Some(json!({"id": "u3", "email": "c@x", "text": "u3"})));
    assert_eq!(w.migrations, (1, 3), "migrate ran once per document, not again one by one");
    assert_eq!(cursor(&w, c), Some(json!("4")));
}
