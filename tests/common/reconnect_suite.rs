// Safari's IndexedDB failures, in every scope, on real IndexedDB: a transaction that dies with
// its connection (WebKit's "Connection to Indexed Database server lost", an `UnknownError`) or
// that never ends is run again once on a new connection, in order with what came after it;
// nothing is lost or written twice, and a second death is a clear `STORAGE` error that changed
// nothing. The faults are armed by the `fault-injection` feature (src/platform/faults.rs).
// Included by browser_*.rs after store_suite.rs (support and imports come from there).

/// A todo as it was stored, as JSON text (for comparisons).
async fn stored(todos: &Collection, id: &str) -> String {
    js_sys::JSON::stringify(&resolve(todos.get(id.into())).await).unwrap().as_string().unwrap()
}

#[wasm_bindgen_test]
async fn a_write_whose_connection_died_runs_again_once() {
    let name = unique_name("lost-write");
    let db = open_todos(&name).await;
    let todos = db.collection("todos".into()).unwrap();
    resolve(todos.put(todo("a", 1.0))).await;

    arm(FaultPoint::LoseConnection(1));
    resolve(todos.put(json(r#"{"id":"a","title":"v2","rank":2}"#))).await;
    resolve(todos.put(todo("b", 3.0))).await;
    assert_eq!(stored(&todos, "a").await, r#"{"id":"a","title":"v2","rank":2}"#);
    assert_eq!(counts(&db, &todos).await, (2.0, 3.0), "each write and its outbox entry once");
    db.close();
    delete_db(&name).await;
}

#[wasm_bindgen_test]
async fn a_write_whose_connection_dies_twice_is_a_storage_error_that_changed_nothing() {
    let name = unique_name("lost-twice");
    let db = open_todos(&name).await;
    let todos = db.collection("todos".into()).unwrap();
    resolve(todos.put(todo("a", 1.0))).await;

    arm(FaultPoint::LoseConnection(2));
    let message = reject(todos.put(json(r#"{"id":"a","title":"v2","rank":2}"#)), "STORAGE").await;
    assert!(message.contains("Connection to Indexed Database server lost"), "{message}");
    assert_eq!(prop(&resolve(todos.get("a".into())).await, "title").as_string().as_deref(), Some("todo a"));
    assert_eq!(counts(&db, &todos).await, (1.0, 1.0), "nothing half-done");

    resolve(todos.put(todo("c", 3.0))).await;
    assert_eq!(counts(&db, &todos).await, (2.0, 2.0), "the next write works on the new connection");
    db.close();
    delete_db(&name).await;
}

#[wasm_bindgen_test]
async fn a_write_that_never_ends_is_given_up_and_runs_again() {
    let name = unique_name("hung");
    let db = open_todos(&name).await;
    let todos = db.collection("todos".into()).unwrap();

    arm(FaultPoint::Hang { times: 1, ms: 300 });
    resolve(todos.put(todo("a", 1.0))).await;
    assert_eq!(counts(&db, &todos).await, (1.0, 1.0));

    arm(FaultPoint::Hang { times: 2, ms: 300 });
    let message = reject(todos.put(todo("b", 2.0)), "STORAGE").await;
    assert!(message.contains("did not finish"), "{message}");
    assert_eq!(counts(&db, &todos).await, (1.0, 1.0), "the hung write committed nothing");
    db.close();
    delete_db(&name).await;
}

#[wasm_bindgen_test]
async fn reads_and_the_cores_transactions_run_again_on_a_new_connection() {
    let name = unique_name("lost-read");
    let db = open_todos(&name).await;
    let todos = db.collection("todos".into()).unwrap();
    resolve(todos.put(todo("a", 1.0))).await;

    arm(FaultPoint::LoseConnection(1));
    assert_eq!(prop(&resolve(todos.get("a".into())).await, "rank").as_f64(), Some(1.0), "a read");
    arm(FaultPoint::LoseConnection(1));
    resolve(todos.patch("a".into(), json(r#"{"rank":7}"#))).await;
    assert_eq!(prop(&resolve(todos.get("a".into())).await, "rank").as_f64(), Some(7.0), "a patch (the core's)");
    assert_eq!(counts(&db, &todos).await, (1.0, 2.0));
    db.close();
    delete_db(&name).await;
}

#[wasm_bindgen_test]
async fn what_was_started_after_a_lost_write_runs_again_after_it() {
    let name = unique_name("lost-order");
    let db = open_todos(&name).await;
    let todos = db.collection("todos".into()).unwrap();
    resolve(todos.put(todo("a", 1.0))).await;

    // The patch's transaction starts on the same connection, queued behind the put's, which
    // then dies: the put must land before the patch, or the patch is overwritten.
    arm(FaultPoint::LoseConnection(1));
    let put = todos.put(json(r#"{"id":"a","title":"v2","rank":2}"#));
    let patch = todos.patch("a".into(), json(r#"{"rank":5}"#));
    resolve(put).await;
    resolve(patch).await;
    let a = resolve(todos.get("a".into())).await;
    assert_eq!((prop(&a, "title").as_string().as_deref(), prop(&a, "rank").as_f64()), (Some("v2"), Some(5.0)));
    let entries: Array = resolve(db.outbox().snapshot()).await.unchecked_into();
    let ops: Vec<String> = entries.iter().map(|e| prop(&e, "op").as_string().unwrap()).collect();
    assert_eq!(ops, ["put", "put", "patch"], "queued once each, in order");
    db.close();
    delete_db(&name).await;
}
