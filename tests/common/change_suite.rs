// Change notification in every scope (window, dedicated worker, service worker): `db.onChange`,
// also across handles of one database (the BroadcastChannel fan-out between tabs),
// and live queries (`collection.subscribe`) see committed local writes, never rolled-back ones,
// and stop after unsubscribing. Pulled changes are covered end to end (tests/e2e/live.test.mjs).
// Included after store_suite.rs and sync_suite.rs, which bring support.rs and `sleep_ms`.

/// A JS array that collects every argument a listener receives, and the listener itself.
fn recorder() -> (js_sys::Array, JsValue) {
    let calls = js_sys::Array::new();
    let push = js_sys::Function::new_with_args("calls", "return (value) => { calls.push(value); }");
    let listener = push.call1(&JsValue::NULL, &calls).unwrap();
    (calls, listener)
}

fn change_summary(change: &JsValue) -> String {
    let key = prop(change, "key");
    let key = key.as_string().unwrap_or_else(|| format!("{}", key.as_f64().unwrap_or(f64::NAN)));
    format!(
        "{}/{key}:{}:{}",
        prop(change, "collection").as_string().unwrap_or_default(),
        prop(change, "op").as_string().unwrap_or_default(),
        prop(change, "source").as_string().unwrap_or_default()
    )
}

fn batches(calls: &js_sys::Array) -> Vec<Vec<String>> {
    calls.iter().map(|batch| js_sys::Array::from(&batch).iter().map(|c| change_summary(&c)).collect()).collect()
}

#[wasm_bindgen_test]
async fn on_change_reports_each_committed_transaction_and_stops_after_unsubscribe() {
    let name = unique_name("changes");
    let db = open_todos(&name).await;
    let todos = db.collection("todos".into()).unwrap();
    let (calls, listener) = recorder();
    let off = db.on_change(listener).unwrap();
    resolve(todos.put_many(json(&format!("[{},{}]", js_sys::JSON::stringify(&todo("a", 1.0)).unwrap(), js_sys::JSON::stringify(&todo("b", 2.0)).unwrap())))).await;
    resolve(todos.patch("a".into(), json(r#"{"rank":5}"#))).await;
    resolve(todos.delete("b".into())).await;
    sleep_ms(0).await;
    assert_eq!(
        batches(&calls),
        vec![
            vec!["todos/a:put:local".to_owned(), "todos/b:put:local".to_owned()],
            vec!["todos/a:put:local".to_owned()],
            vec!["todos/b:delete:local".to_owned()],
        ]
    );
    reject(todos.patch("missing".into(), json(r#"{"rank":1}"#)), "NOT_FOUND").await;
    off.call0(&JsValue::NULL).unwrap();
    resolve(todos.put(todo("c", 3.0))).await;
    sleep_ms(0).await;
    assert_eq!(calls.length(), 3, "nothing for a failed patch, nothing after unsubscribing");
    expect_wharf_error(&db.on_change(JsValue::from_str("nope")).expect_err("throws"), "INVALID_OPTIONS");
    db.close();
    delete_db(&name).await;
}

#[wasm_bindgen_test]
async fn a_rolled_back_write_is_never_reported() {
    let name = unique_name("changes-abort");
    let db = open_todos(&name).await;
    let todos = db.collection("todos".into()).unwrap();
    let (calls, listener) = recorder();
    let _off = db.on_change(listener).unwrap();
    arm(FaultPoint::AbortAfterOutboxWrite);
    reject(todos.put(todo("a", 1.0)), "ABORTED").await;
    resolve(todos.put(todo("b", 2.0))).await;
    sleep_ms(0).await;
    assert_eq!(batches(&calls), vec![vec!["todos/b:put:local".to_owned()]]);
    db.close();
    delete_db(&name).await;
}

#[wasm_bindgen_test]
async fn a_live_query_follows_writes_with_one_result_per_burst() {
    let name = unique_name("live-query");
    let db = open_todos(&name).await;
    let todos = db.collection("todos".into()).unwrap();
    resolve(todos.put(todo("a", 1.0))).await;
    let (results, callback) = recorder();
    let stop = todos.subscribe(json(r#"{"index":"by_rank","range":{"lower":2}}"#), callback).unwrap();
    let ids = |result: JsValue| -> Vec<String> {
        js_sys::Array::from(&result).iter().map(|doc| prop(&doc, "id").as_string().unwrap_or_default()).collect()
    };
    for _ in 0..50 {
        if results.length() > 0 {
            break;
        }
        sleep_ms(5).await;
    }
    assert_eq!(ids(results.get(0)), Vec::<String>::new(), "the first result: nothing ranks 2 or more yet");
    let writes: Vec<Promise> = (0..20).map(|i| todos.put(todo(&format!("t{i:02}"), 2.0 + f64::from(i)))).collect();
    for write in writes {
        resolve(write).await;
    }
    for _ in 0..100 {
        if results.length() > 1 && ids(results.get(results.length() - 1)).len() == 20 {
            break;
        }
        sleep_ms(5).await;
    }
    let last = ids(results.get(results.length() - 1));
    assert_eq!(last.len(), 20, "the latest result holds every matching write");
    assert!(results.length() <= 4, "a burst of 20 writes in one tick makes few results, got {}", results.length());
    stop.call0(&JsValue::NULL).unwrap();
    let seen = results.length();
    resolve(todos.put(todo("late", 9.0))).await;
    sleep_ms(20).await;
    assert_eq!(results.length(), seen, "nothing after unsubscribing");
    let (_, callback) = recorder();
    expect_wharf_error(
        &todos.subscribe(json(r#"{"index":"nope","equals":1}"#), callback).expect_err("bad query"),
        "INVALID_QUERY",
    );
    db.close();
    delete_db(&name).await;
}

#[wasm_bindgen_test]
async fn watch_follows_one_document_and_ignores_the_others() {
    let name = unique_name("watch");
    let db = open_todos(&name).await;
    let todos = db.collection("todos".into()).unwrap();
    let (seen, callback) = recorder();
    let stop = todos.watch("a".into(), callback).unwrap();
    let rank = |doc: JsValue| if doc.is_undefined() { None } else { prop(&doc, "rank").as_f64() };
    let wait_for = |count: u32| {
        let seen = seen.clone();
        async move {
            for _ in 0..100 {
                if seen.length() >= count {
                    return;
                }
                sleep_ms(5).await;
            }
            panic!("{} results, expected {count}", seen.length());
        }
    };
    wait_for(1).await;
    assert_eq!(rank(seen.get(0)), None, "no document yet: undefined");
    resolve(todos.put(todo("a", 1.0))).await;
    wait_for(2).await;
    assert_eq!(rank(seen.get(1)), Some(1.0));
    resolve(todos.put(todo("b", 5.0))).await;
    resolve(todos.patch("a".into(), json(r#"{"rank":3}"#))).await;
    wait_for(3).await;
    sleep_ms(20).await;
    assert_eq!(seen.length(), 3, "the write to b made no result");
    assert_eq!(rank(seen.get(2)), Some(3.0));
    resolve(todos.delete("a".into())).await;
    wait_for(4).await;
    assert_eq!(rank(seen.get(3)), None, "deleted: undefined");
    stop.call0(&JsValue::NULL).unwrap();
    resolve(todos.put(todo("a", 7.0))).await;
    sleep_ms(20).await;
    assert_eq!(seen.length(), 4, "nothing after unsubscribing");
    let (_, callback) = recorder();
    expect_wharf_error(&todos.watch(JsValue::TRUE, callback).expect_err("bad key"), "INVALID_KEY");
    db.close();
    delete_db(&name).await;
}

#[wasm_bindgen_test]
async fn changes_made_through_one_handle_reach_listeners_of_another_handle_of_the_database() {
    // Two handles of one database stand for two tabs: they share nothing but IndexedDB and the
    // BroadcastChannel, as separate contexts do.
    let name = unique_name("changes-fanout");
    let writer = open_todos(&name).await;
    let reader = open_todos(&name).await;
    let (calls, listener) = recorder();
    let _off = reader.on_change(listener).unwrap();
    let (results, callback) = recorder();
    let reader_todos = reader.collection("todos".into()).unwrap();
    let _stop = reader_todos.subscribe(JsValue::NULL, callback).unwrap();
    sleep_ms(50).await; // the reader's hub announces that it listens
    let todos = writer.collection("todos".into()).unwrap();
    resolve(todos.put(todo("a", 1.0))).await;
    resolve(todos.delete("a".into())).await;
    resolve(todos.put(todo("b", 2.0))).await;
    for _ in 0..100 {
        if calls.length() >= 3 {
            break;
        }
        sleep_ms(10).await;
    }
    assert_eq!(
        batches(&calls),
        vec![
            vec!["todos/a:put:local".to_owned()],
            vec!["todos/a:delete:local".to_owned()],
            vec!["todos/b:put:local".to_owned()]
        ]
    );
    for _ in 0..100 {
        let last = results.get(results.length().saturating_sub(1));
        if js_sys::Array::from(&last).length() == 1 {
            break;
        }
        sleep_ms(10).await;
    }
    let last: js_sys::Array = results.get(results.length() - 1).unchecked_into();
    assert_eq!(prop(&last.get(0), "id").as_string().as_deref(), Some("b"), "the other handle's live query follows");
    writer.close();
    reader.close();
    delete_db(&name).await;
}
