// The local-store suite, run unchanged in a window, a dedicated worker and a service worker
// (see browser_*.rs). Real IndexedDB, real transactions; faults injected by the
// `fault-injection` feature make transactions abort at chosen points.

include!("support.rs");

use js_sys::Array;
use wasm_bindgen_test::wasm_bindgen_test;
use wharf::platform::faults::{arm, FaultPoint};

#[wasm_bindgen_test]
async fn crud_round_trip_queues_every_write() {
    let name = unique_name("crud");
    let db = open_todos(&name).await;
    let todos = db.collection("todos".into()).unwrap();
    resolve(todos.put(todo("a", 1.0))).await;
    resolve(todos.put(todo("b", 2.0))).await;
    assert_eq!(prop(&resolve(todos.get("a".into())).await, "title").as_string().as_deref(), Some("todo a"));
    assert!(resolve(todos.get("zz".into())).await.is_undefined());

    let many: Array = resolve(todos.get_many(json(r#"["b","zz","a"]"#))).await.unchecked_into();
    assert_eq!(many.length(), 3);
    assert_eq!(prop(&many.get(0), "id").as_string().as_deref(), Some("b"));
    assert!(many.get(1).is_undefined());

    resolve(todos.patch("a".into(), json(r#"{"title":"patched","extra":[1]}"#))).await;
    let a = resolve(todos.get("a".into())).await;
    assert_eq!(prop(&a, "title").as_string().as_deref(), Some("patched"));
    assert_eq!(prop(&a, "rank").as_f64(), Some(1.0), "patch is a shallow merge");

    resolve(todos.delete("b".into())).await;
    let all: Array = resolve(todos.get_all()).await.unchecked_into();
    assert_eq!(all.length(), 1);
    assert_eq!(counts(&db, &todos).await, (1.0, 4.0));

    let entries: Array = resolve(db.outbox().snapshot()).await.unchecked_into();
    let ops: Vec<String> = entries.iter().map(|e| prop(&e, "op").as_string().unwrap()).collect();
    assert_eq!(ops, ["put", "put", "patch", "delete"]);
    let mut last_seq = 0.0;
    let mut last_id = String::new();
    let mut last_stamp = String::new();
    for entry in entries.iter() {
        let seq = prop(&entry, "seq").as_f64().unwrap();
        let id = prop(&entry, "id").as_string().unwrap();
        assert!(seq > last_seq && id > last_id, "seq and id increase");
        let stamp = prop(&entry, "hlc").as_string().expect("every write carries a clock stamp");
        assert!(wharf::core::hlc::parse(&stamp).is_some() && stamp > last_stamp, "{stamp} after {last_stamp}");
        last_stamp = stamp;
        assert_eq!(id.len(), 26);
        assert_eq!(prop(&entry, "collection").as_string().as_deref(), Some("todos"));
        assert_eq!(prop(&entry, "attempts").as_f64(), Some(0.0));
        assert!(prop(&entry, "lastError").is_null());
        assert!(prop(&entry, "createdAt").as_f64().unwrap() <= prop(&entry, "nextAttemptAt").as_f64().unwrap());
        (last_seq, last_id) = (seq, id);
    }
    for entry in entries.iter() {
        // Every entry the JavaScript side built matches the core's model exactly (no unknown
        // fields, payload consistent with its op).
        let text = String::from(js_sys::JSON::stringify(&entry).unwrap());
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let model = wharf::core::OutboxEntry::from_json(&value, 0).unwrap_or_else(|e| panic!("{e}: {text}"));
        let mut stored = model.to_json();
        stored["seq"] = model.op.seq.into();
        assert_eq!(stored, value, "the entry is exactly the core's stored form");
    }
    assert_eq!(prop(&prop(&entries.get(0), "value"), "title").as_string().as_deref(), Some("todo a"));
    assert_eq!(prop(&prop(&entries.get(2), "patch"), "title").as_string().as_deref(), Some("patched"));
    assert!(prop(&entries.get(2), "value").is_undefined());
    assert_eq!(prop(&entries.get(3), "key").as_string().as_deref(), Some("b"));
    assert!(prop(&entries.get(3), "value").is_undefined());
    db.close();
    delete_db(&name).await;
}

#[wasm_bindgen_test]
async fn numeric_and_nested_keys() {
    let name = unique_name("keys");
    let db = open_with(&name, r#"[{"name":"n","keyPath":"n"},{"name":"m","keyPath":"meta.id"}]"#).await.unwrap();
    let n = db.collection("n".into()).unwrap();
    let m = db.collection("m".into()).unwrap();
    resolve(n.put(json(r#"{"n":2.5,"v":1}"#))).await;
    resolve(m.put(json(r#"{"meta":{"id":"x"},"v":2}"#))).await;
    assert_eq!(prop(&resolve(n.get(JsValue::from_f64(2.5))).await, "v").as_f64(), Some(1.0));
    assert_eq!(prop(&resolve(m.get("x".into())).await, "v").as_f64(), Some(2.0));
    let entries: Array = resolve(db.outbox().snapshot()).await.unchecked_into();
    assert_eq!(prop(&entries.get(0), "key").as_f64(), Some(2.5));
    db.close();
    delete_db(&name).await;
}

#[wasm_bindgen_test]
async fn queries_use_declared_indexes() {
    let name = unique_name("query");
    let db = open_todos(&name).await;
    let todos = db.collection("todos".into()).unwrap();
    let docs = Array::new();
    for (i, id) in ["a", "b", "c", "d", "e"].iter().enumerate() {
        docs.push(&todo(id, i as f64));
    }
    resolve(todos.put_many(docs.into())).await;
    let ids = |value: JsValue| -> Vec<String> {
        value.unchecked_into::<Array>().iter().map(|d| prop(&d, "id").as_string().unwrap()).collect()
    };
    assert_eq!(ids(resolve(todos.query(json(r#"{"index":"by_rank","equals":2}"#))).await), ["c"]);
    assert_eq!(ids(resolve(todos.query(json(r#"{"index":"by_rank","range":{"lower":1,"upper":3,"upperOpen":true}}"#))).await), ["b", "c"]);
    assert_eq!(ids(resolve(todos.query(json(r#"{"index":"by_rank","range":{"lower":2}}"#))).await), ["c", "d", "e"]);
    assert_eq!(ids(resolve(todos.query(json(r#"{"index":"by_rank","limit":2}"#))).await), ["a", "b"]);
    assert_eq!(ids(resolve(todos.query(json(r#"{"index":"by_rank","reverse":true,"limit":2}"#))).await), ["e", "d"]);
    assert_eq!(ids(resolve(todos.query(json(r#"{"index":"by_tag","equals":"t3"}"#))).await), ["d"]);
    assert_eq!(ids(resolve(todos.query(json(r#"{"index":"by_list_rank","equals":["inbox",4]}"#))).await), ["e"]);

    for bad in [
        r#"{"index":"nope"}"#,
        r#"{"index":"by_rank","equals":true}"#,
        r#"{"index":"by_rank","range":{"lower":3,"upper":1}}"#,
        r#"{"index":"by_rank","limit":0}"#,
        r#"{"index":"by_rank","equals":1,"range":{}}"#,
    ] {
        reject(todos.query(json(bad)), "INVALID_QUERY").await;
    }
    reject(todos.query(JsValue::from_f64(3.0)), "INVALID_QUERY").await;
    db.close();
    delete_db(&name).await;
}

#[wasm_bindgen_test]
async fn writes_in_one_tick_share_one_transaction() {
    let name = unique_name("group");
    let db = open_todos(&name).await;
    let todos = db.collection("todos".into()).unwrap();
    let reader = open_todos(&name).await;
    let before = stat(&db, "writeTransactions");
    let transactions = count_transactions();
    let promises: Vec<Promise> = (0..50).map(|i| todos.put(todo(&format!("k{i}"), i as f64))).collect();
    let opened = transactions.stop();
    let mut promises = promises.into_iter();
    resolve(promises.next().unwrap()).await;
    // The first promise resolves only once the shared transaction committed all fifty.
    assert_eq!(counts(&reader, &reader.collection("todos".into()).unwrap()).await, (50.0, 50.0));
    for promise in promises {
        resolve(promise).await;
    }
    assert_eq!(opened, 1.0, "IndexedDB saw one transaction for 50 concurrent puts");
    assert_eq!(stat(&db, "writeTransactions") - before, 1.0);
    reader.close();

    let before = stat(&db, "writeTransactions");
    for i in 0..3 {
        resolve(todos.put(todo(&format!("s{i}"), 0.0))).await;
    }
    assert_eq!(stat(&db, "writeTransactions") - before, 3.0, "awaited puts commit one by one");
    assert_eq!(stat(&db, "writes"), 53.0);
    db.close();
    delete_db(&name).await;
}

#[wasm_bindgen_test]
async fn a_resolved_write_is_committed_for_other_connections() {
    let name = unique_name("durable");
    let writer = open_todos(&name).await;
    let reader = open_todos(&name).await;
    let todos = writer.collection("todos".into()).unwrap();
    resolve(todos.put(todo("x", 1.0))).await;
    // A different connection sees both the record and its outbox entry as soon as put resolved.
    let other = reader.collection("todos".into()).unwrap();
    assert_eq!(counts(&reader, &other).await, (1.0, 1.0));
    // The value is snapshotted at call time: mutating the document afterwards changes nothing.
    let doc = todo("y", 2.0);
    let pending = todos.put(doc.clone());
    set(&doc, "title", &"mutated".into());
    resolve(pending).await;
    assert_eq!(prop(&resolve(other.get("y".into())).await, "title").as_string().as_deref(), Some("todo y"));
    writer.close();
    reader.close();
    delete_db(&name).await;
}

async fn abort_at(point: FaultPoint) {
    let name = unique_name("atomic");
    let db = open_todos(&name).await;
    let todos = db.collection("todos".into()).unwrap();
    resolve(todos.put(todo("a", 1.0))).await;

    arm(point);
    let replaced = todos.put(json(r#"{"id":"a","title":"v2","rank":9}"#));
    let sibling = todos.put(todo("b", 2.0));
    reject(replaced, "ABORTED").await;
    reject(sibling, "ABORTED").await;
    assert_eq!(prop(&resolve(todos.get("a".into())).await, "title").as_string().as_deref(), Some("todo a"));
    assert!(resolve(todos.get("b".into())).await.is_undefined());
    assert_eq!(counts(&db, &todos).await, (1.0, 1.0), "record and outbox rolled back together");

    // The next write is unaffected.
    resolve(todos.put(todo("c", 3.0))).await;
    assert_eq!(counts(&db, &todos).await, (2.0, 2.0));
    db.close();
    delete_db(&name).await;
}

#[wasm_bindgen_test]
async fn abort_after_the_record_write_rolls_back_both() {
    abort_at(FaultPoint::AbortAfterRecordWrite).await;
}

#[wasm_bindgen_test]
async fn abort_after_the_outbox_write_rolls_back_both() {
    abort_at(FaultPoint::AbortAfterOutboxWrite).await;
}

#[wasm_bindgen_test]
async fn put_many_is_all_or_nothing() {
    let name = unique_name("many");
    let db = open_todos(&name).await;
    let todos = db.collection("todos".into()).unwrap();
    let message = reject(todos.put_many(json(r#"[{"id":"a"},{"title":"no key"},{"id":"c"}]"#)), "MISSING_KEY").await;
    assert!(message.contains("documents[1]"), "{message}");
    let docs = json(r#"[{"id":"a"},{"id":"b"}]"#);
    Reflect::set(&docs, &JsValue::from_f64(2.0), &js_sys::Date::new_0()).unwrap();
    reject(todos.put_many(docs), "INVALID_DOCUMENT").await;
    reject(todos.put_many(json(r#"{"id":"a"}"#)), "INVALID_DOCUMENT").await;
    assert_eq!(counts(&db, &todos).await, (0.0, 0.0));

    let before = stat(&db, "writeTransactions");
    resolve(todos.put_many(json(r#"[{"id":"a"},{"id":"b"},{"id":"c"}]"#))).await;
    resolve(todos.put_many(json("[]"))).await;
    assert_eq!(stat(&db, "writeTransactions") - before, 1.0);
    assert_eq!(counts(&db, &todos).await, (3.0, 3.0));
    db.close();
    delete_db(&name).await;
}

#[wasm_bindgen_test]
async fn a_bad_write_in_a_busy_tick_fails_alone() {
    let name = unique_name("busytick");
    let db = open_todos(&name).await;
    let todos = db.collection("todos".into()).unwrap();
    let first = todos.put(todo("a", 1.0));
    let bad = todos.put(json(r#"{"title":"no key"}"#));
    let last = todos.put(todo("b", 2.0));
    reject(bad, "MISSING_KEY").await;
    resolve(first).await;
    resolve(last).await;
    assert_eq!(counts(&db, &todos).await, (2.0, 2.0));
    db.close();
    delete_db(&name).await;
}

#[wasm_bindgen_test]
async fn a_unique_index_violation_rejects_only_that_write() {
    let name = unique_name("unique");
    let collections = r#"[{"name":"users","keyPath":"id","indexes":[{"name":"by_email","keyPath":"email","unique":true}]},
        {"name":"todos","keyPath":"id"}]"#;
    let db = open_with(&name, collections).await.unwrap();
    let users = db.collection("users".into()).unwrap();
    let todos = db.collection("todos".into()).unwrap();
    resolve(users.put(json(r#"{"id":"u1","email":"a@example.com"}"#))).await;
    // In one tick: a todo, a duplicate email, another todo. Only the duplicate may fail.
    let before = todos.put(todo("t1", 1.0));
    let duplicate = users.put(json(r#"{"id":"u2","email":"a@example.com"}"#));
    let after = todos.put(todo("t2", 2.0));
    let message = reject(duplicate, "CONSTRAINT").await;
    assert!(message.contains("unique"), "{message}");
    resolve(before).await;
    resolve(after).await;
    assert!(resolve(users.get("u2".into())).await.is_undefined());
    assert_eq!(number(users.count()).await, 1.0);
    assert_eq!(counts(&db, &todos).await, (2.0, 3.0), "the failed write queued nothing");
    db.close();
    delete_db(&name).await;
}

#[wasm_bindgen_test]
async fn a_patch_keeps_a_proto_key_as_a_plain_field() {
    let name = unique_name("proto");
    let db = open_todos(&name).await;
    let todos = db.collection("todos".into()).unwrap();
    resolve(todos.put(todo("p", 1.0))).await;
    resolve(todos.patch("p".into(), json(r#"{"__proto__":{"polluted":true},"y":2}"#))).await;
    let stored = resolve(todos.get("p".into())).await;
    assert_eq!(prop(&stored, "y").as_f64(), Some(2.0));
    assert!(prop(&stored, "polluted").is_undefined(), "the patch did not change the prototype");
    let stored_object: &js_sys::Object = stored.unchecked_ref();
    let own = js_sys::Object::get_own_property_descriptor(stored_object, &"__proto__".into());
    assert!(!own.is_undefined(), "__proto__ is stored as an own field, as in the queued patch");
    db.close();
    delete_db(&name).await;
}

fn with_field(name: &str, value: &JsValue) -> JsValue {
    let doc = json(r#"{"id":"bad"}"#);
    set(&doc, name, value);
    doc
}

#[wasm_bindgen_test]
async fn bad_input_is_rejected_and_writes_nothing() {
    let name = unique_name("bad");
    let db = open_todos(&name).await;
    let todos = db.collection("todos".into()).unwrap();

    let cycle = json(r#"{"id":"cyc","child":{}}"#);
    set(&prop(&cycle, "child"), "parent", &cycle);
    let class_instance = js_sys::Reflect::construct(&js_sys::Function::new_no_args("this.x = 1"), &Array::new()).unwrap();
    let cases: Vec<(&str, JsValue, &str)> = vec![
        ("number", JsValue::from_f64(3.0), "INVALID_DOCUMENT"),
        ("string", "text".into(), "INVALID_DOCUMENT"),
        ("null", JsValue::NULL, "INVALID_DOCUMENT"),
        ("undefined", JsValue::UNDEFINED, "INVALID_DOCUMENT"),
        ("array", json(r#"[{"id":"a"}]"#), "INVALID_DOCUMENT"),
        ("missing key", json(r#"{"title":"x"}"#), "MISSING_KEY"),
        ("empty key", json(r#"{"id":""}"#), "INVALID_KEY"),
        ("boolean key", json(r#"{"id":true}"#), "INVALID_KEY"),
        ("object key", json(r#"{"id":{"a":1}}"#), "INVALID_KEY"),
        ("NaN key", with_field("id", &JsValue::from_f64(f64::NAN)), "INVALID_DOCUMENT"),
        ("function", with_field("f", &js_sys::Function::new_no_args("return 1").into()), "INVALID_DOCUMENT"),
        ("symbol", with_field("s", &js_sys::Symbol::for_("wharf").into()), "INVALID_DOCUMENT"),
        ("bigint", with_field("b", &js_sys::BigInt::from(7u64).into()), "INVALID_DOCUMENT"),
        ("infinity", with_field("n", &JsValue::from_f64(f64::INFINITY)), "INVALID_DOCUMENT"),
        ("cycle", cycle, "INVALID_DOCUMENT"),
        ("date", with_field("due", &js_sys::Date::new_0().into()), "INVALID_DOCUMENT"),
        ("map", with_field("m", &js_sys::Map::new().into()), "INVALID_DOCUMENT"),
        ("typed array", with_field("u", &js_sys::Uint8Array::new_with_length(2).into()), "INVALID_DOCUMENT"),
        ("class instance", with_field("c", &class_instance), "INVALID_DOCUMENT"),
        ("undefined in array", with_field("a", &Array::of2(&1.into(), &JsValue::UNDEFINED).into()), "INVALID_DOCUMENT"),
        ("too deep", json(&format!(r#"{{"id":"d","x":{}1{}}}"#, "[".repeat(200), "]".repeat(200))), "INVALID_DOCUMENT"),
    ];
    for (label, doc, code) in cases {
        let message = reject(todos.put(doc.clone()), code).await;
        assert!(!message.is_empty(), "{label}");
        reject(todos.put_many(Array::of1(&doc).into()), code).await;
    }
    let message = reject(todos.put(with_field("when", &js_sys::Date::new_0().into())), "INVALID_DOCUMENT").await;
    assert!(message.contains("\"when\"") && message.contains("Date"), "names the field and type: {message}");

    for key in [JsValue::from_str(""), JsValue::TRUE, JsValue::NULL, JsValue::UNDEFINED, JsValue::from_f64(f64::NAN), json("{}")] {
        reject(todos.get(key.clone()), "INVALID_KEY").await;
        reject(todos.delete(key.clone()), "INVALID_KEY").await;
        reject(todos.patch(key, json(r#"{"x":1}"#)), "INVALID_KEY").await;
    }
    reject(todos.get_many(json(r#"["a", false]"#)), "INVALID_KEY").await;
    reject(todos.get_many("a".into()), "INVALID_KEY").await;
    reject(todos.patch("missing".into(), json(r#"{"x":1}"#)), "NOT_FOUND").await;
    resolve(todos.put(todo("p", 1.0))).await;
    reject(todos.patch("p".into(), json(r#"{"id":"q"}"#)), "INVALID_DOCUMENT").await;
    reject(todos.patch("p".into(), JsValue::from_f64(1.0)), "INVALID_DOCUMENT").await;
    reject(todos.patch("p".into(), with_field("f", &js_sys::Function::new_no_args("").into())), "INVALID_DOCUMENT").await;
    assert_eq!(counts(&db, &todos).await, (1.0, 1.0), "only the one valid put was written");

    for missing in [JsValue::from_str("nope"), JsValue::UNDEFINED, JsValue::from_f64(1.0)] {
        match db.collection(missing) {
            Err(e) => {
                expect_wharf_error(&e, "UNKNOWN_COLLECTION");
            }
            Ok(_) => panic!("unknown collection accepted"),
        }
    }
    match db.collection("nope".into()) {
        Err(e) => {
            expect_wharf_error(&e, "UNKNOWN_COLLECTION");
        }
        Ok(_) => panic!("unknown collection accepted"),
    }

    db.close();
    reject(todos.put(todo("late", 1.0)), "CLOSED").await;
    reject(todos.patch("p".into(), json(r#"{"x":1}"#)), "CLOSED").await;
    reject(todos.delete("p".into()), "CLOSED").await;
    reject(todos.get("p".into()), "CLOSED").await;
    reject(db.outbox().count(), "CLOSED").await;

    let reopened = open_todos(&name).await;
    let again = reopened.collection("todos".into()).unwrap();
    assert_eq!(counts(&reopened, &again).await, (1.0, 1.0), "writes after close stored nothing");
    reopened.close();
    delete_db(&name).await;
}

#[wasm_bindgen_test]
async fn bad_open_options_are_rejected() {
    let name = unique_name("opts");
    for (collections, code) in [
        (r#"[]"#, "INVALID_SCHEMA"),
        (r#"[{"name":"a","keyPath":"1bad"}]"#, "INVALID_SCHEMA"),
        (r#"[{"name":"__wharf_outbox","keyPath":"id"}]"#, "INVALID_SCHEMA"),
        (r#"[{"name":"a"}]"#, "INVALID_OPTIONS"),
        (r#"{"name":"a"}"#, "INVALID_OPTIONS"),
    ] {
        match open_with(&name, collections).await {
            Err(e) => {
                expect_wharf_error(&e, code);
            }
            Ok(_) => panic!("{collections} accepted"),
        }
    }
    let with_function = json(r#"{"name":"x","collections":[{"name":"a","keyPath":"id"}]}"#);
    set(&with_function, "name", &js_sys::Function::new_no_args("").into());
    expect_wharf_error(&open_database(with_function).await.err().expect("rejected"), "INVALID_OPTIONS");
    expect_wharf_error(&Database::delete_database(JsValue::from_f64(1.0)).await.expect_err("rejected"), "INVALID_OPTIONS");
}

#[wasm_bindgen_test]
async fn data_and_outbox_survive_close_and_reopen() {
    let name = unique_name("persist");
    let db = open_todos(&name).await;
    let todos = db.collection("todos".into()).unwrap();
    resolve(todos.put(todo("a", 1.0))).await;
    resolve(todos.put(todo("b", 2.0))).await;
    resolve(todos.patch("a".into(), json(r#"{"done":true}"#))).await;
    resolve(todos.delete("b".into())).await;
    let before: Array = resolve(db.outbox().snapshot()).await.unchecked_into();
    db.close();

    let db = open_todos(&name).await;
    let todos = db.collection("todos".into()).unwrap();
    assert_eq!(prop(&resolve(todos.get("a".into())).await, "done"), JsValue::TRUE);
    assert!(resolve(todos.get("b".into())).await.is_undefined());
    let after: Array = resolve(db.outbox().snapshot()).await.unchecked_into();
    let ids = |a: &Array| a.iter().map(|e| prop(&e, "id").as_string().unwrap()).collect::<Vec<_>>();
    assert_eq!(ids(&before), ids(&after));
    resolve(todos.put(todo("c", 3.0))).await;
    let last: Array = resolve(db.outbox().snapshot()).await.unchecked_into();
    let seqs: Vec<f64> = last.iter().map(|e| prop(&e, "seq").as_f64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "seq keeps increasing after reopen: {seqs:?}");
    db.close();
    delete_db(&name).await;
}

#[wasm_bindgen_test]
async fn schema_upgrade_adds_collections_and_indexes_and_keeps_data() {
    let name = unique_name("upgrade");
    let db = open_with(&name, r#"[{"name":"todos","keyPath":"id"}]"#).await.unwrap();
    resolve(db.collection("todos".into()).unwrap().put(todo("a", 5.0))).await;
    db.close();

    let db = open_with(
        &name,
        r#"[{"name":"todos","keyPath":"id","indexes":[{"name":"by_rank","keyPath":"rank"}]},{"name":"notes","keyPath":"id"}]"#,
    )
    .await
    .unwrap();
    let todos = db.collection("todos".into()).unwrap();
    let found: Array = resolve(todos.query(json(r#"{"index":"by_rank","equals":5}"#))).await.unchecked_into();
    assert_eq!(found.length(), 1, "the new index covers existing records");
    resolve(db.collection("notes".into()).unwrap().put(json(r#"{"id":"n1"}"#))).await;
    assert_eq!(number(db.outbox().count()).await, 2.0);
    db.close();

    match open_with(&name, r#"[{"name":"todos","keyPath":"uuid"}]"#).await {
        Err(e) => {
            let message = expect_wharf_error(&e, "INVALID_SCHEMA");
            assert!(message.contains("todos"), "{message}");
        }
        Ok(_) => panic!("a key path change was accepted"),
    }
    let db = open_with(&name, r#"[{"name":"todos","keyPath":"id"}]"#).await.unwrap();
    assert_eq!(counts(&db, &db.collection("todos".into()).unwrap()).await, (1.0, 2.0), "refused upgrade changed nothing");
    db.close();
    delete_db(&name).await;
}

#[wasm_bindgen_test]
async fn version_change_closes_reports_and_reopens_in_order() {
    let name = unique_name("versionchange");
    let old = open_with(&name, r#"[{"name":"todos","keyPath":"id"}]"#).await.unwrap();
    let changes = Array::new();
    let record = {
        let changes = changes.clone();
        wasm_bindgen::closure::Closure::<dyn FnMut(JsValue)>::new(move |change: JsValue| {
            changes.push(&change);
        })
        .into_js_value()
    };
    let _keep = old.on_version_change(record).unwrap();
    let removed = old.on_version_change(js_sys::Function::new_no_args("throw new Error('removed listener ran')").into()).unwrap();
    removed.call0(&JsValue::UNDEFINED).unwrap();
    removed.call0(&JsValue::UNDEFINED).expect("unsubscribing twice is harmless");
    expect_wharf_error(&old.on_version_change("not a function".into()).expect_err("rejected"), "INVALID_OPTIONS");

    // Another "tab" opens a newer schema: the old connection must get out of the way.
    let newer = open_with(&name, r#"[{"name":"todos","keyPath":"id"},{"name":"notes","keyPath":"id"}]"#).await.unwrap();
    assert_eq!(changes.length(), 1, "the version change was reported");
    assert_eq!(prop(&changes.get(0), "oldVersion").as_f64(), Some(1.0));
    assert_eq!(prop(&changes.get(0), "newVersion").as_f64(), Some(2.0));

    // The old handle reconnects on its next call; writes issued meanwhile keep their order.
    let todos = old.collection("todos".into()).unwrap();
    let first = todos.put(json(r#"{"id":"k","v":1}"#));
    let second = todos.patch("k".into(), json(r#"{"v":2}"#));
    let third = todos.put(json(r#"{"id":"j","v":3}"#));
    resolve(first).await;
    resolve(second).await;
    resolve(third).await;
    let seen = newer.collection("todos".into()).unwrap();
    assert_eq!(prop(&resolve(seen.get("k".into())).await, "v").as_f64(), Some(2.0));
    let entries: Array = resolve(newer.outbox().snapshot()).await.unchecked_into();
    let ops: Vec<String> = entries.iter().map(|e| prop(&e, "op").as_string().unwrap()).collect();
    assert_eq!(ops, ["put", "patch", "put"]);

    // Deleting the database is reported as newVersion null to every open handle, and the handle
    // is closed for good: a later write must not silently create an empty database again.
    newer.close();
    delete_db(&name).await;
    assert_eq!(changes.length(), 2);
    assert!(prop(&changes.get(1), "newVersion").is_null());
    let message = reject(todos.put(json(r#"{"id":"after"}"#)), "CLOSED").await;
    assert!(message.contains("deleted"), "{message}");
    reject(todos.get("k".into()), "CLOSED").await;
    assert!(!database_exists(&name).await, "the deleted database was not recreated");
    old.close();
}

#[wasm_bindgen_test]
async fn storage_reports_usage_quota_and_whether_persisted() {
    let name = unique_name("storage");
    let options = json(&format!(r#"{{"name":"{name}","collections":[{{"name":"a","keyPath":"id"}}],"persist":true}}"#));
    let db = open_database(options).await.unwrap();
    let info = resolve(db.storage()).await;
    if storage_can_estimate() {
        assert!(prop(&info, "usage").as_f64().is_some(), "usage is a number where the browser estimates");
        assert!(prop(&info, "quota").as_f64().unwrap() > 0.0);
    } else {
        // WebKitGTK ships without the StorageManager (its StorageAPI feature is off): the nulls.
        let agent = prop(&prop(&js_sys::global(), "navigator"), "userAgent").as_string().unwrap_or_default();
        assert!(!agent.contains("Chrome") && !agent.contains("Firefox"), "only WebKit lacks it: {agent}");
        assert!(prop(&info, "usage").is_null() && prop(&info, "quota").is_null(), "{info:?}");
    }
    assert!(prop(&info, "persisted").as_bool().is_some());
    db.close();
    delete_db(&name).await;
}

#[wasm_bindgen_test]
async fn storage_degrades_to_nulls_without_a_storage_manager() {
    let name = unique_name("nostorage");
    let db = open_todos(&name).await;
    // Hide navigator.storage, as in engines or contexts that lack the StorageManager.
    let navigator: js_sys::Object = Reflect::get(&js_sys::global(), &"navigator".into()).unwrap().unchecked_into();
    let hidden: js_sys::Object = json(r#"{"value":null,"configurable":true}"#).unchecked_into();
    Reflect::define_property(&navigator, &"storage".into(), &hidden).unwrap();
    let info = JsFuture::from(db.storage()).await;
    Reflect::delete_property(&navigator, &"storage".into()).unwrap();
    let info = info.expect("storage() still resolves");
    assert!(prop(&info, "usage").is_null());
    assert!(prop(&info, "quota").is_null());
    assert_eq!(prop(&info, "persisted"), JsValue::FALSE);
    let quota = prop(&resolve(db.storage()).await, "quota");
    assert_eq!(quota.as_f64().is_some(), storage_can_estimate(), "restored afterwards: {quota:?}");
    db.close();
    delete_db(&name).await;
}

#[wasm_bindgen_test]
async fn persist_option_asks_the_browser_where_it_can() {
    let storage = prop(&prop(&js_sys::global(), "navigator"), "storage");
    let original = prop(&storage, "persist");
    if !original.is_function() {
        // Workers have no persist(): the option must be accepted and skipped (checked below).
        let name = unique_name("persist-skip");
        let options = json(&format!(r#"{{"name":"{name}","collections":[{{"name":"a","keyPath":"id"}}],"persist":true}}"#));
        open_database(options).await.expect("persist: true opens where persist() is missing").close();
        delete_db(&name).await;
        return;
    }
    let calls = json(r#"{"n":0}"#);
    let counting = js_sys::Function::new_with_args("calls", "return function () { calls.n++; return Promise.resolve(false); }")
        .call1(&JsValue::NULL, &calls)
        .unwrap();
    let hidden: js_sys::Object = storage.clone().unchecked_into();
    let descriptor = json(r#"{"configurable":true,"writable":true}"#);
    set(&descriptor, "value", &counting);
    Reflect::define_property(&hidden, &"persist".into(), descriptor.unchecked_ref()).unwrap();
    let mut names = Vec::new();
    for persist in [false, true] {
        let name = unique_name("persist");
        let options = json(&format!(r#"{{"name":"{name}","collections":[{{"name":"a","keyPath":"id"}}],"persist":{persist}}}"#));
        open_database(options).await.unwrap().close();
        names.push(name);
    }
    Reflect::delete_property(&hidden, &"persist".into()).unwrap();
    assert_eq!(prop(&calls, "n").as_f64(), Some(1.0), "persist() asked once, only with persist: true");
    for name in names {
        delete_db(&name).await;
    }
}
