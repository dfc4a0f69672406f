//! The sync machine's pull side, natively: paging, the cursor stored with each page, resuming
//! after a failure, hostile answers, the page bound of one pull, and the full resync after an
//! expired cursor, all through the shipped replica and its transactions on an in-memory
//! IndexedDB.

use serde_json::{json, Value};

use crate::core::document::Key;
use crate::core::error::ErrorCode;
use crate::core::host::Failure;
use crate::core::op::doc_id;
use crate::core::protocol::Change;
use crate::core::push_engine::HttpReply;
use crate::core::schema::{META_STORE, VERSIONS_STORE};
use crate::core::test_world::{options, World};

fn change(key: &str, version: u64) -> Change {
    Change {
        collection: "todos".into(),
        key: Key::text(key).unwrap(),
        value: Some(json!({"id": key, "v": version})),
        version,
        hlc: None,
        space: None,
        shape: None,
    }
}

fn page(changes: &[Change], cursor: &str, has_more: bool) -> HttpReply {
    let body = json!({"protocol": 1, "changes": changes, "cursor": cursor, "hasMore": has_more});
    HttpReply::Response { status: 200, retry_after: None, body: body.to_string() }
}

fn answer(status: u16, body: &str) -> HttpReply {
    HttpReply::Response { status, retry_after: None, body: body.to_owned() }
}

/// Documents whose `email` a unique index keeps unique.
fn unique_emails() -> crate::core::schema::DatabaseSchema {
    crate::core::schema::DatabaseSchema::from_json(
        r#"{"name":"db","collections":[{"name":"todos","keyPath":"id","indexes":[{"name":"email","keyPath":"email","unique":true}]}]}"#,
    )
    .unwrap()
}

/// A change of the document `key` with that email, at `version`.
fn user(key: &str, email: &str, version: u64) -> Change {
    Change { value: Some(json!({"id": key, "email": email})), ..change(key, version) }
}

/// A pull-only client; its start-up pull is the test's first pull.
fn puller(w: &mut World, limit: u32) -> usize {
    let mut opts = options(100, 10, "pull");
    opts.pull_limit = limit;
    w.client("c", opts, 3)
}

fn pull(w: &mut World, c: usize) -> Result<Value, Failure> {
    let now = w.now;
    let waiter = w.pull(c);
    w.settle_until(now); // no retries: the next answer is the test's

    w.clients[c].host.settled.remove(&waiter).expect("the pull was answered")
}

fn cursor(w: &World, c: usize) -> Option<Value> {
    w.clients[c]
        .host
        .db
        .get(META_STORE, &json!(w.clients[c].host.replica.sync().unwrap().options().cursor_key(&["todos".to_owned()])))
}

#[test]
fn pages_until_has_more_is_false_storing_each_cursor() {
    let mut w = World::new();
    let c = puller(&mut w, 2);
    w.pull_script.extend([page(&[change("a", 1), change("b", 1)], "2", true), page(&[change("c", 1)], "3", false)]);
    let summary = pull(&mut w, c).unwrap();
    assert_eq!((&summary["pages"], &summary["applied"], &summary["cursor"]), (&json!(2), &json!(3), &json!("3")));
    assert_eq!(w.asked, ["", "2"]);
    assert_eq!(cursor(&w, c), Some(json!("3")));
    assert_eq!(w.clients[c].host.documents("todos").len(), 3);
    let wrong_key = Change { value: Some(json!({"id": "other"})), ..change("e", 1) };
    let nesting = format!(r#"{{"id":"f","x":{}{}}}"#, "[".repeat(100), "]".repeat(100));
    let too_deep = Change { value: Some(serde_json::from_str(&nesting).unwrap()), ..change("f", 1) };
    w.pull_script.push_back(page(&[change("d", 1), wrong_key, too_deep], "5", false));
    let filtered = pull(&mut w, c).unwrap();
    assert_eq!(
        (&filtered["applied"], &filtered["invalid"]),
        (&json!(1), &json!(2)),
        "unstorable changes (a wrong key, nesting past the cap) are counted and not stored"
    );
    assert!(!w.clients[c].host.documents("todos").contains_key("\"e\""));
    assert!(!w.clients[c].host.documents("todos").contains_key("\"f\""));
    assert_eq!(cursor(&w, c), Some(json!("5")), "the cursor moves past them");
}

/// A pulled document that collides with a local unique index used to abort its page on every
/// retry, and pulls stopped for good. Now the page is stored change by change: the rest is
/// stored, the one the index refuses is reported with why, and the cursor moves on.
#[test]
fn a_unique_index_collision_is_reported_and_the_rest_of_the_page_is_stored() {
    let mut w = World::new();
    w.schema = unique_emails();
    let c = puller(&mut w, 10);
    w.pull_script.push_back(page(&[user("u1", "a@x", 1)], "1", false));
    pull(&mut w, c).unwrap();
    let clash = [user("u0", "z@x", 1), user("u2", "a@x", 1), user("u3", "b@x", 1), user("u4", "c@x", 1)];
    w.pull_script.push_back(page(&clash, "5", false));
    let summary = pull(&mut w, c).unwrap();
    assert_eq!((&summary["applied"], &summary["invalid"], &summary["pages"]), (&json!(3), &json!(1), &json!(1)));
    let unstored = &summary["unstored"][0];
    assert_eq!((&unstored["collection"], &unstored["key"]), (&json!("todos"), &json!("u2")));
    assert!(unstored["reason"].as_str().unwrap().contains("unique index"), "{unstored}");
    let stored = w.clients[c].host.documents("todos");
    assert!(["\"u0\"", "\"u1\"", "\"u3\"", "\"u4\""].iter().all(|k| stored.contains_key(*k)));
    assert!(!stored.contains_key("\"u2\""));
    assert_eq!(cursor(&w, c), Some(json!("5")), "the cursor moved past the page");
    w.pull_script.push_back(page(&[user("u5", "d@x", 1)], "6", false));
    assert_eq!(pull(&mut w, c).unwrap()["applied"], json!(1), "pulls go on");
    let reported = w.clients[c].host.events.iter().filter_map(|e| match e {
        crate::core::status::SyncEvent::Pull(end) => end.summary["unstored"].as_array().map(Vec::len),
        _ => None,
    });
    assert!(reported.clone().any(|n| n == 1), "onPull reports it");
}

/// An app update that declares a new collection used to keep the old cursor, so documents
/// written to that collection before the update never arrived. The cursor belongs to the set of
/// collections pulled: a new set starts from the beginning, and asks the server for exactly it.
#[test]
fn a_collection_added_by_an_app_update_gets_its_history() {
    let mut w = World::new();
    let c = puller(&mut w, 10);
    w.pull_script.push_back(page(&[change("a", 1)], "7", false));
    pull(&mut w, c).unwrap();
    assert!(w.pull_urls.last().unwrap().ends_with("&collections=todos"), "{:?}", w.pull_urls);
    w.pull_script.push_back(page(&[], "7", false));
    pull(&mut w, c).unwrap();
    assert_eq!(w.asked.last().map(String::as_str), Some("7"), "same collections: the cursor goes on");
    w.schema = crate::core::schema::DatabaseSchema::from_json(
        r#"{"name":"db","collections":[{"name":"todos","keyPath":"id"},{"name":"notes","keyPath":"id"}]}"#,
    )
    .unwrap();
    w.reload(c);
    let note = Change { collection: "notes".into(), value: Some(json!({"id": "n1"})), ..change("n1", 1) };
    w.pull_script.push_back(page(&[change("a", 1), note], "7", false));
    let summary = pull(&mut w, c).unwrap();
    assert_eq!(w.asked.last().map(String::as_str), Some(""), "a new collection: from the beginning");
    assert!(w.pull_urls.last().unwrap().ends_with("&collections=notes,todos"), "{:?}", w.pull_urls);
    assert_eq!(summary["invalid"], json!(0));
    assert!(w.clients[c].host.documents("notes").contains_key("\"n1\""), "the note written before the update arrived");
}

#[test]
fn a_collection_in_a_shared_space_takes_that_spaces_changes_alone_under_a_cursor_of_its_own() {
    let spaced = |space: &str| {
        crate::core::schema::DatabaseSchema::from_json(&format!(
            r#"{{"name":"db","collections":[{{"name":"todos","keyPath":"id"}},{{"name":"boards","keyPath":"id","space":"{space}"}}]}}"#
        ))
        .unwrap()
    };
    let mut w = World::new();
    w.schema = spaced("acme");
    let c = puller(&mut w, 10);
    let board = |key: &str, space: Option<&str>| Change {
        collection: "boards".into(),
        value: Some(json!({"id": key})),
        space: space.map(str::to_owned),
        ..change(key, 1)
    };
    let stray = Change { space: Some("acme".into()), ..change("t2", 1) };
    w.pull_script.push_back(page(&[board("b1", Some("acme")), board("b2", None), change("t1", 1), stray], "9", false));
    let summary = pull(&mut w, c).unwrap();
    assert!(w.pull_urls.last().unwrap().ends_with("&collections=boards,todos&spaces=acme"), "{:?}", w.pull_urls);
    assert_eq!(summary["invalid"], json!(2), "boards of the own space and todos of acme are not this client's");
    let host = &w.clients[c].host;
    assert_eq!(host.documents("boards").keys().collect::<Vec<_>>(), ["\"b1\""]);
    assert_eq!(host.documents("todos").keys().collect::<Vec<_>>(), ["\"t1\""]);
    // An app update moves boards to another space: its history there arrives from the beginning.
    w.schema = spaced("other");
    w.reload(c);
    w.pull_script.push_back(page(&[board("b3", Some("other"))], "10", false));
    pull(&mut w, c).unwrap();
    assert_eq!(w.asked.last().map(String::as_str), Some(""), "a new cursor for the new space");
    assert!(w.clients[c].host.documents("boards").contains_key("\"b3\""));
}

#[test]
fn a_failure_between_pages_resumes_from_the_last_stored_page() {
    let mut w = World::new();
    let c = puller(&mut w, 1);
    w.pull_script.extend([page(&[change("a", 1)], "1", true), HttpReply::Timeout]);
    assert_eq!(pull(&mut w, c).unwrap_err().code, ErrorCode::Network);
    assert_eq!(cursor(&w, c), Some(json!("1")), "the first page is kept");
    w.pull_script.push_back(page(&[change("b", 1)], "2", false));
    let summary = pull(&mut w, c).unwrap();
    assert!(
        w.asked.iter().skip(2).all(|asked| asked == "1" || asked == "2"),
        "resumes from the stored cursor: {:?}",
        w.asked
    );
    assert_eq!(w.asked[2], "1");
    assert!(summary["applied"].as_u64().unwrap() <= 1);
    assert_eq!(w.clients[c].host.documents("todos").len(), 2, "nothing applied twice, nothing skipped");
}

#[test]
fn a_storage_failure_keeps_the_old_cursor_so_the_page_comes_again() {
    let mut w = World::new();
    let c = puller(&mut w, 1);
    w.clients[c].host.fail_next_write_to = Some("todos".into());
    w.pull_script.push_back(page(&[change("a", 1)], "1", false));
    assert_eq!(pull(&mut w, c).unwrap_err().code, ErrorCode::Storage);
    assert_eq!(cursor(&w, c), None);
    assert!(w.clients[c].host.documents("todos").is_empty());
    w.pull_script.push_back(page(&[change("a", 1)], "1", false));
    assert_eq!(pull(&mut w, c).unwrap()["applied"], json!(1), "the page comes again");
}

#[test]
fn hostile_answers_are_errors_not_loops_or_panics() {
    let mut w = World::new();
    let c = puller(&mut w, 1);
    w.pull_script.push_back(page(&[change("a", 1)], "", true));
    let error = pull(&mut w, c).unwrap_err();
    assert_eq!(error.code, ErrorCode::Server);
    assert!(error.message.contains("cursor did not move"), "{}", error.message);
    for body in [
        "",
        "{",
        "[]",
        r#"{"protocol":3,"changes":[],"cursor":"","hasMore":false}"#,
        r#"{"protocol":0,"changes":[],"cursor":"","hasMore":false}"#,
        r#"{"protocol":1,"changes":[{}],"cursor":"","hasMore":false}"#,
    ] {
        w.pull_script.push_back(answer(200, body));
        assert_eq!(pull(&mut w, c).unwrap_err().code, ErrorCode::Server, "{body}");
    }
    let mut w = World::new();
    let c = puller(&mut w, 1);
    w.pull_script.push_back(answer(410, r#"{"protocol":1,"code":"CURSOR_EXPIRED","message":"compacted"}"#));
    let error = pull(&mut w, c).unwrap_err();
    assert_eq!(error.code, ErrorCode::Server);
    assert!(error.message.contains("compacted"));
    assert_eq!(w.asked, [""], "an expired first cursor is an error, not a loop");
}

#[test]
fn max_pages_bounds_one_pull_and_the_next_goes_on() {
    let mut w = World::new();
    let c = puller(&mut w, 1);
    for i in 1..=25 {
        w.pull_script.push_back(page(&[change(&format!("k{i}"), 1)], &i.to_string(), i < 25));
    }
    let summary = pull(&mut w, c).unwrap();
    assert_eq!((&summary["pages"], &summary["cursor"]), (&json!(20), &json!("20")));
    assert_eq!(w.clients[c].host.documents("todos").len(), 25, "the rest followed without being asked");
}

#[test]
fn an_expired_cursor_starts_over_once_and_sweeps_what_the_copy_lacks() {
    let mut w = World::new();
    let c = puller(&mut w, 10);
    w.pull_script.push_back(page(&[change("a", 1), change("gone", 1)], "40", false));
    pull(&mut w, c).unwrap();
    assert!(w.clients[c].host.db.get(VERSIONS_STORE, &json!(doc_id("todos", &Key::Text("gone".into())))).is_some());
    w.asked.clear();
    let gone = r#"{"protocol":1,"code":"CURSOR_EXPIRED","message":"compacted"}"#;
    w.pull_script.extend([answer(410, gone), page(&[change("a", 3)], "5", true), page(&[], "7", false)]);
    let summary = pull(&mut w, c).unwrap();
    assert_eq!(w.asked, ["40", "", "5"]);
    assert_eq!((&summary["applied"], &summary["cursor"], &summary["removed"]), (&json!(1), &json!("7"), &json!(1)));
    let docs = w.clients[c].host.documents("todos");
    assert_eq!(docs.keys().collect::<Vec<_>>(), ["\"a\""], "what the full copy lacked is gone");
    w.pull_script.push_back(page(&[], "7", false));
    assert_eq!(pull(&mut w, c).unwrap()["removed"], json!(0), "an ordinary pull sweeps nothing");
    w.pull_script.extend([answer(410, gone), answer(410, gone)]);
    assert_eq!(pull(&mut w, c).unwrap_err().code, ErrorCode::Server, "not a loop");
}

#[test]
fn a_resync_cut_by_a_reload_goes_on_and_sweeps_by_the_whole_copy() {
    let mut w = World::new();
    let c = puller(&mut w, 10);
    w.pull_script.push_back(page(&[change("a", 1), change("b", 1), change("gone", 1)], "40", false));
    pull(&mut w, c).unwrap();
    let gone = r#"{"protocol":1,"code":"CURSOR_EXPIRED","message":"compacted"}"#;
    let cut = HttpReply::Network { message: "connection reset".into(), online: true };
    w.pull_script.extend([answer(410, gone), page(&[change("a", 3)], "5", true), cut]);
    assert!(pull(&mut w, c).is_err(), "the resync stopped after its first page");
    w.reload(c); // the page died; the copy's first page is stored, with the resync's mark
    w.asked.clear();
    w.pull_script.push_back(page(&[change("b", 3)], "7", false));
    let summary = pull(&mut w, c).unwrap();
    assert_eq!(w.asked, ["5"], "the resync goes on where it was");
    assert_eq!(summary["removed"], json!(1));
    let docs = w.clients[c].host.documents("todos");
    assert_eq!(docs.keys().collect::<Vec<_>>(), ["\"a\"", "\"b\""], "only what the whole copy lacked is gone");
    w.pull_script.push_back(page(&[], "7", false));
    assert_eq!(pull(&mut w, c).unwrap()["removed"], json!(0), "the resync is over");
}

#[test]
fn a_document_a_resync_resolved_in_the_servers_favour_is_not_swept() {
    let mut w = World::new();
    let mut opts = options(100, 10, "pull");
    opts.pull_limit = 10;
    opts.conflicts.default = crate::core::conflict::Strategy::ServerWins;
    let c = w.client("c", opts, 3);
    w.pull_script.push_back(page(&[], "40", false));
    pull(&mut w, c).unwrap();
    w.put(c, "x", json!({"mine": true})); // never seen from the server: no versions entry
    let gone = r#"{"protocol":1,"code":"CURSOR_EXPIRED","message":"compacted"}"#;
    let theirs = Change { hlc: Some("00000000000f0000-other".into()), ..change("x", 1) };
    w.pull_script.extend([answer(410, gone), page(&[theirs], "5", false)]);
    let summary = pull(&mut w, c).unwrap();
    assert_eq!((&summary["conflicts"], &summary["removed"]), (&json!(1), &json!(0)));
    assert_eq!(w.clients[c].host.documents("todos").get("\"x\""), Some(&json!({"id": "x", "v": 1})));
}

/// A conflict whose resolution cannot be stored (the document the rules chose collides with a
/// local unique index) used to fail its whole resolution run as a storage error, silently, on
/// every retry. Now it stays held, is reported with why (`onConflict`), the rest goes on, and it
/// resolves once the app moves the colliding value.
#[test]
fn a_resolution_that_a_unique_index_refuses_is_held_and_reported() {
    let mut w = World::new();
    w.schema = unique_emails();
    let mut opts = options(100, 10, "both");
    let rules = crate::core::sync_options::SyncOptions::from_value(&json!({"url": "/s", "conflicts": "server-wins"}));
    opts.conflicts = rules.unwrap().conflicts;
    let c = w.client("c", opts, 3);
    w.pull_script.push_back(page(&[user("u1", "a@x", 1)], "1", false));
    pull(&mut w, c).unwrap();
    w.event(c, crate::core::host::Event::Offline);
    w.put(c, "u2", json!({"email": "b@x"}));
    w.put(c, "u1", json!({"email": "c@x"}));
    // Another client gave u1 the email of the local u2 meanwhile; server-wins would store it.
    w.server.records.insert(
        doc_id("todos", &Key::text("u1").unwrap()),
        crate::core::test_world::Record {
            collection: "todos".into(),
            key: Key::text("u1").unwrap(),
            value: Some(json!({"id": "u1", "email": "b@x"})),
            version: 2,
            writer: "another-client".into(),
            writer_seq: 1,
            hlc: None,
            seq: 2,
            shape: None,
        },
    );
    w.event(c, crate::core::host::Event::Online);
    w.settle_until(w.now + 30_000.0);
    let reports: Vec<_> = w.clients[c]
        .host
        .events
        .iter()
        .filter_map(|e| match e {
            crate::core::status::SyncEvent::Conflict(report) => Some(report.clone()),
            _ => None,
        })
        .collect();
    let report = reports.last().expect("the conflict is reported");
    assert_eq!(report.outcome, crate::core::status::ConflictOutcome::Unresolved);
    assert!(report.error.as_deref().unwrap_or_default().contains("unique index"), "{report:?}");
    assert_eq!(w.status(c).conflicts, 1, "held");
    assert!(w.record("u2").is_some(), "the rest was pushed");
    // The app moves u2 to another email: the held conflict resolves as the rules say.
    w.put(c, "u2", json!({"email": "e@x"}));
    w.settle_until(w.now + 60_000.0);
    assert_eq!(w.status(c).conflicts, 0);
    assert_eq!(w.clients[c].host.documents("todos")["\"u1\""]["email"], "b@x", "server-wins");
    assert!(w.outbox(c).is_empty());
}

/// `collections[i].sync`: a collection that is not pulled is left out of the pull's question and
/// its changes are not stored (a server that sends them anyway is told why); a collection that is
/// not pushed queues nothing when patched.
#[test]
fn collections_that_do_not_sync_stay_out_of_pulls_and_the_outbox() {
    let mut w = World::new();
    w.schema = crate::core::schema::DatabaseSchema::from_json(
        r#"{"name":"db","collections":[{"name":"todos","keyPath":"id"},{"name":"drafts","keyPath":"id","sync":false},
            {"name":"sent","keyPath":"id","sync":"push"},{"name":"feed","keyPath":"id","sync":"pull"}]}"#,
    )
    .unwrap();
    let mut opts = options(100, 10, "both");
    opts.pull_limit = 10;
    let c = w.client("c", opts, 3);
    let draft = Change { collection: "drafts".into(), ..change("d1", 1) };
    w.pull_script.push_back(page(&[change("a", 1), draft], "2", false));
    let summary = pull(&mut w, c).unwrap();
    assert!(w.pull_urls.iter().all(|url| url.contains("collections=feed,todos")), "{:?}", w.pull_urls);
    assert_eq!((&summary["applied"], &summary["invalid"]), (&json!(1), &json!(1)));
    assert!(summary["unstored"][0]["reason"].as_str().unwrap().contains("does not pull"), "{summary}");
    assert!(w.clients[c].host.documents("drafts").is_empty());

    let draft = [crate::core::tx::Write::put("drafts", json!({"id": "d2", "body": "x"}), None)];
    w.clients[c].host.db.write(&draft, &crate::core::tx::Scope::write(&["drafts"])).unwrap();
    let request = crate::core::replica::Request::Patch {
        collection: "drafts".into(),
        key: Key::text("d2").unwrap(),
        patch: json!({"body": "y"}),
    };
    let now = w.now;
    let waiter = w.clients[c].host.request(request, now);
    w.gather();
    assert!(w.clients[c].host.settled[&waiter].is_ok());
    assert_eq!(w.clients[c].host.documents("drafts")["\"d2\""]["body"], json!("y"), "patched here");
    assert!(w.outbox(c).is_empty(), "and nothing queued");
}
