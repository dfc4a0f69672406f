// The transport contract (`sync.transport`, docs/transports.md) in every scope: the app's own
// push, pull and live stand in for HTTP. Results are read as the protocol's, each failure kind
// gets its HTTP twin's treatment, a transport that throws garbage, answers the wrong shape or
// never answers leaves the queue intact with a clear reason, and the live subscription pokes
// pulls and is unsubscribed on close. The REST backend runs end to end in tests/e2e/rest.test.mjs.
// Included after sync_suite.rs (its `open_synced`, `sleep_ms`, `status_becomes`).

/// A transport whose `push` and `pull` run these bodies (JavaScript, with `request`, `options`
/// and `log` in scope); every call is added to `log` as `[name, request, options]`.
fn scripted_transport(push: &str, pull: &str) -> (JsValue, Array) {
    let log = Array::new();
    let make = js_sys::Function::new_with_args(
        "log",
        &format!(
            "return {{
               async push(request, options) {{ log.push(['push', request, options]); {push} }},
               async pull(request, options) {{ log.push(['pull', request, options]); {pull} }},
               live(onPoke, onClosed) {{ log.push(['live', onPoke]); return () => log.push(['unsubscribe']); }},
             }};"
        ),
    );
    (make.call1(&JsValue::NULL, &log).unwrap(), log)
}

/// A `transportError(kind, ...)` as the package's helper makes it, thrown from a body.
fn throw_transport_error(kind: &str, details: &str) -> String {
    format!(
        "throw Object.assign(new Error('{kind} on purpose'), {{ name: 'WharfError', code: 'TRANSPORT', kind: '{kind}', {details} }});"
    )
}

async fn open_with_transport(name: &str, transport: &JsValue, extra: &str) -> Database {
    let options = json(&format!(
        r#"{{"name":"{name}","collections":[{{"name":"todos","keyPath":"id"}}],"sync":{{"debounceMs":0,"pullIntervalMs":0{extra}}}}}"#
    ));
    set(&prop(&options, "sync"), "transport", transport);
    open_database(options).await.expect("opens with a transport")
}

fn stringify(value: &JsValue) -> String {
    js_sys::JSON::stringify(value).map(String::from).unwrap_or_default()
}

fn calls(log: &Array, name: &str) -> Vec<Array> {
    log.iter().map(|call| Array::from(&call)).filter(|call| call.get(0).as_string().as_deref() == Some(name)).collect()
}

async fn until(what: &str, mut done: impl FnMut() -> bool, seen: impl Fn() -> String) {
    for _ in 0..400 {
        if done() {
            return;
        }
        sleep_ms(25).await;
    }
    panic!("timed out waiting until {what}; last seen {}", seen());
}

#[wasm_bindgen_test]
async fn a_transport_carries_pushes_pulls_and_pokes_with_the_protocols_shapes() {
    let name = unique_name("transport");
    let push = "return { protocol: 1, results: request.mutations.map((m, i) => i === 2
                  ? { status: 'rejected', id: m.id, code: 'NOPE', message: 'refused on purpose', permanent: true }
                  : { status: i === 1 ? 'duplicate' : 'applied', id: m.id, version: i + 1 }) };";
    let pull = "return request.cursor === ''
                  ? { changes: [{ collection: 'todos', key: 'z', value: { id: 'z', rank: 9 }, version: 4 }], cursor: 'c1', hasMore: false }
                  : { changes: [], cursor: request.cursor, hasMore: false };";
    let (transport, log) = scripted_transport(push, pull);
    let db = open_with_transport(&name, &transport, r#","batchSize":10"#).await;
    let todos = db.collection("todos".into()).unwrap();
    // Queued while paused, so one request carries all three.
    db.pause_sync().unwrap();
    for (i, id) in ["a", "b", "c"].iter().enumerate() {
        resolve(todos.put(todo(id, i as f64))).await;
    }
    db.resume_sync().unwrap();
    resolve(db.sync(JsValue::UNDEFINED)).await;
    assert_eq!(number(db.outbox().count()).await, 0.0, "applied and duplicate acknowledge; rejected is dead");
    let letters = Array::from(&resolve(db.dead_letters().list()).await);
    assert_eq!(letters.length(), 1);
    assert_eq!(prop(&prop(&letters.get(0), "lastError"), "serverCode").as_string().as_deref(), Some("NOPE"));
    let pushes = calls(&log, "push");
    let request = pushes.iter().map(|call| call.get(1)).find(|r| Array::from(&prop(r, "mutations")).length() == 3);
    let request = request.expect("one push carried the three writes");
    assert_eq!(prop(&request, "protocol").as_f64(), Some(2.0));
    assert!(prop(&request, "clientId").as_string().is_some_and(|id| !id.is_empty()));
    let first = Array::from(&prop(&request, "mutations")).get(0);
    assert_eq!(prop(&first, "op").as_string().as_deref(), Some("put"));
    assert_eq!(prop(&prop(&first, "value"), "id").as_string().as_deref(), Some("a"));
    assert_eq!(prop(&prop(&pushes[0].get(2), "signal"), "aborted").as_bool(), Some(false), "an AbortSignal");

    resolve(db.pull(JsValue::UNDEFINED)).await;
    assert!(!resolve(todos.get("z".into())).await.is_undefined(), "the pulled change is stored");
    let pulls = calls(&log, "pull");
    let asked = pulls.last().unwrap().get(1);
    assert_eq!(prop(&asked, "cursor").as_string().as_deref(), Some("c1"), "the transport's cursor comes back");
    assert_eq!(prop(&asked, "limit").as_f64(), Some(500.0));
    assert_eq!(Array::from(&prop(&asked, "collections")).get(0).as_string().as_deref(), Some("todos"));

    // The live subscription: a poke pulls; closing unsubscribes.
    until("the transport's live is subscribed", || !calls(&log, "live").is_empty(), || stringify(&db.sync_status())).await;
    let before = calls(&log, "pull").len();
    let poke: js_sys::Function = calls(&log, "live")[0].get(1).unchecked_into();
    poke.call0(&JsValue::NULL).unwrap();
    until("a poke pulls", || calls(&log, "pull").len() > before, || stringify(&log)).await;
    db.close();
    assert_eq!(calls(&log, "unsubscribe").len(), 1, "closed: unsubscribed once");
    delete_db(&name).await;
}

#[wasm_bindgen_test]
async fn a_collection_in_a_shared_space_names_it_on_pushes_and_pulls_and_takes_only_its_changes() {
    let name = unique_name("transport-spaces");
    let push = "return { protocol: 2, results: request.mutations.map((m) => ({ status: 'applied', id: m.id, version: 1 })) };";
    let pull = "return request.cursor === ''
                  ? { protocol: 2, changes: [
                      { collection: 'boards', key: 'b1', value: { id: 'b1' }, version: 1, space: 'acme' },
                      { collection: 'boards', key: 'b2', value: { id: 'b2' }, version: 1 },
                      { collection: 'todos', key: 't1', value: { id: 't1' }, version: 1 },
                      { collection: 'todos', key: 't2', value: { id: 't2' }, version: 1, space: 'acme' },
                    ], cursor: 'c1', hasMore: false }
                  : { changes: [], cursor: request.cursor, hasMore: false };";
    let (transport, log) = scripted_transport(push, pull);
    let options = json(&format!(
        r#"{{"name":"{name}","collections":[{{"name":"todos","keyPath":"id"}},{{"name":"boards","keyPath":"id","space":"acme"}}],
            "sync":{{"debounceMs":0,"pullIntervalMs":0,"live":false}}}}"#
    ));
    set(&prop(&options, "sync"), "transport", &transport);
    let db = open_database(options).await.expect("opens with a transport");
    resolve(db.pull(JsValue::UNDEFINED)).await;
    let asked = calls(&log, "pull")[0].get(1);
    assert_eq!(stringify(&prop(&asked, "spaces")), r#"["acme"]"#);
    let (boards, todos) = (db.collection("boards".into()).unwrap(), db.collection("todos".into()).unwrap());
    assert!(!resolve(boards.get("b1".into())).await.is_undefined(), "acme's board is stored");
    assert!(!resolve(todos.get("t1".into())).await.is_undefined(), "the own space's todo is stored");
    assert!(resolve(boards.get("b2".into())).await.is_undefined(), "a board of the own space is not this collection's");
    assert!(resolve(todos.get("t2".into())).await.is_undefined(), "a todo of acme is not this collection's");

    resolve(boards.put(json(r#"{"id":"b9"}"#))).await;
    resolve(todos.put(todo("t9", 1.0))).await;
    resolve(db.sync(JsValue::UNDEFINED)).await;
    let sent: Vec<String> = calls(&log, "push")
        .iter()
        .flat_map(|call| Array::from(&prop(&call.get(1), "mutations")).iter().collect::<Vec<_>>())
        .map(|m| format!("{}:{:?}", prop(&m, "collection").as_string().unwrap_or_default(), prop(&m, "space").as_string()))
        .collect();
    assert_eq!(sent, [r#"boards:Some("acme")"#, "todos:None"]);
    db.close();
    delete_db(&name).await;
}

/// Opens with a transport whose push runs `push`, writes one document, and waits for the status
/// to settle on `state`; returns it, the calls, and the dead letters. The queue is checked intact
/// (or dead, for `dead`).
async fn push_fails(push: &str, extra: &str, state: &str, dead: bool) -> (JsValue, Array, Array) {
    let name = unique_name("transport-fails");
    let (transport, log) = scripted_transport(push, "return { changes: [], cursor: '', hasMore: false };");
    let db = open_with_transport(&name, &transport, &format!(r#","live":false,"retry":{{"baseMs":60000}}{extra}"#)).await;
    resolve(db.collection("todos".into()).unwrap().put(todo("a", 1.0))).await;
    let want_dead = if dead { 1.0 } else { 0.0 };
    until(&format!("the status turns {state}"), || {
        let status = db.sync_status();
        prop(&status, "state").as_string().as_deref() == Some(state)
            && prop(&status, "deadLetters").as_f64() == Some(want_dead)
    }, || stringify(&db.sync_status()))
    .await;
    let status = db.sync_status();
    let queued = number(db.outbox().count()).await;
    assert_eq!(queued, 1.0 - want_dead, "{push}: the write is kept (or dead, when permanent)");
    let letters = Array::from(&resolve(db.dead_letters().list()).await);
    db.close();
    delete_db(&name).await;
    (status, log, letters)
}

fn last_error(status: &JsValue, field: &str) -> Option<String> {
    let error = prop(&prop(status, "lastError"), field);
    error.as_string().or_else(|| error.as_f64().map(|n| n.to_string()))
}

#[wasm_bindgen_test]
async fn each_transport_failure_keeps_the_queue_and_gets_its_http_twins_treatment() {
    let busy = throw_transport_error("transient", "status: 503, retryAfterMs: 120000");
    let (status, ..) = push_fails(&busy, "", "error", false).await;
    assert_eq!(last_error(&status, "serverCode").as_deref(), Some("TRANSPORT"));
    assert_eq!(last_error(&status, "status").as_deref(), Some("503"));
    let wait = prop(&status, "nextRetryAt").as_f64().unwrap() - js_sys::Date::now();
    assert!(wait > 100_000.0, "Retry-After is a floor: {wait}");

    let (status, ..) = push_fails("throw 'garbage';", "", "error", false).await;
    assert_eq!(last_error(&status, "code").as_deref(), Some("NETWORK"), "anything else thrown is transient");
    let (status, ..) = push_fails("return { nope: 1 };", "", "error", false).await;
    assert_eq!(last_error(&status, "code").as_deref(), Some("PROTOCOL"), "a wrong shape is transient");

    let (status, log, _) = push_fails("return new Promise(() => {});", r#","requestTimeoutMs":300"#, "error", false).await;
    assert_eq!(last_error(&status, "code").as_deref(), Some("TIMEOUT"));
    let signal = prop(&calls(&log, "push")[0].get(2), "signal");
    assert_eq!(prop(&signal, "aborted").as_bool(), Some(true), "the call was aborted at the timeout");

    let refused = throw_transport_error("auth", "status: 401");
    push_fails(&refused, r#","maxAuthRefreshes":0"#, "auth", false).await;
    // "offline" while the scope says online (the test's browser): an outage, retried, since no
    // `online` event would ever come.
    let (status, ..) = push_fails(&throw_transport_error("offline", ""), "", "error", false).await;
    assert_eq!(last_error(&status, "code").as_deref(), Some("NETWORK"));
    // A permanent failure is pinned on an op only once another got through: alone, it waits.
    let refuses = throw_transport_error("permanent", "status: 400");
    push_fails(&refuses, "", "error", false).await;
}

/// A permanent failure of a batch is narrowed down to the op to blame, which is dead-lettered
/// with the transport's status once another op got through; the others land.
#[wasm_bindgen_test]
async fn a_permanent_failure_dead_letters_only_the_op_to_blame() {
    let name = unique_name("transport-blame");
    let push = format!(
        "if (request.mutations.some((m) => m.key === 'bad')) {{ {} }}
         return {{ results: request.mutations.map((m) => ({{ status: 'applied', id: m.id, version: 1 }})) }};",
        throw_transport_error("permanent", "status: 400")
    );
    let (transport, _) = scripted_transport(&push, "return { changes: [], cursor: '', hasMore: false };");
    let retry = r#","live":false,"retry":{"baseMs":10,"maxMs":50}"#;
    let db = open_with_transport(&name, &transport, retry).await;
    db.pause_sync().unwrap();
    let todos = db.collection("todos".into()).unwrap();
    for id in ["a", "bad", "c"] {
        resolve(todos.put(todo(id, 1.0))).await;
    }
    db.resume_sync().unwrap();
    until("the op to blame is dead", || prop(&db.sync_status(), "deadLetters").as_f64() == Some(1.0), || stringify(&db.sync_status())).await;
    until("the rest landed", || prop(&db.sync_status(), "pending").as_f64() == Some(0.0), || stringify(&db.sync_status())).await;
    let letters = Array::from(&resolve(db.dead_letters().list()).await);
    let letter = letters.get(0);
    assert_eq!(prop(&letter, "key").as_string().as_deref(), Some("bad"));
    assert_eq!(last_error(&letter, "status").as_deref(), Some("400"), "the transport's status is kept");
    assert_eq!(last_error(&letter, "serverCode").as_deref(), Some("TRANSPORT"));
    db.close();
    delete_db(&name).await;
}

#[wasm_bindgen_test]
async fn a_failing_pull_through_a_transport_rejects_with_the_kind_and_stores_nothing() {
    let name = unique_name("transport-pull");
    let pulls = [
        (throw_transport_error("transient", "status: 503"), "SERVER"),
        (throw_transport_error("auth", ""), "AUTH"),
        ("throw new TypeError('garbage');".to_owned(), "NETWORK"),
        ("return { changes: 'no' };".to_owned(), "SERVER"),
    ];
    for (pull, code) in pulls {
        let (transport, _) = scripted_transport("throw 'never pushed';", &pull);
        let db = open_with_transport(&name, &transport, r#","live":false,"direction":"pull""#).await;
        let message = reject(db.pull(JsValue::UNDEFINED), code).await;
        assert_eq!(number(db.collection("todos".into()).unwrap().count()).await, 0.0, "{pull}: {message}");
        db.close();
    }
    delete_db(&name).await;
}

#[wasm_bindgen_test]
async fn a_bad_transport_is_refused_at_open() {
    let name = unique_name("transport-opts");
    let good = scripted_transport("", "").0;
    for (transport, extra) in [
        (JsValue::from_str("http://x"), ""),
        (json(r#"{"push": 1}"#), ""),
        (json("{}"), ""),
        (good.clone(), r#","url":"https://x""#),
    ] {
        let options = json(&format!(
            r#"{{"name":"{name}","collections":[{{"name":"todos","keyPath":"id"}}],"sync":{{"live":false{extra}}}}}"#
        ));
        set(&prop(&options, "sync"), "transport", &transport);
        expect_wharf_error(&open_database(options).await.err().expect("rejected"), "INVALID_OPTIONS");
    }
    let options = json(&format!(r#"{{"name":"{name}","collections":[{{"name":"todos","keyPath":"id"}}],"sync":{{}}}}"#));
    set(&prop(&options, "sync"), "transport", &good);
    set(&prop(&options, "sync"), "fetch", &js_sys::Function::new_no_args("").into());
    expect_wharf_error(&open_database(options).await.err().expect("rejected"), "INVALID_OPTIONS");
    assert!(!database_exists(&name).await, "a rejected open creates nothing");
}

#[wasm_bindgen_test]
async fn a_local_only_collection_never_enters_the_outbox() {
    let name = unique_name("local-only");
    let (transport, log) = scripted_transport("throw 'never pushed';", "return { changes: [], cursor: '', hasMore: false };");
    let options = json(&format!(
        r#"{{"name":"{name}","collections":[{{"name":"todos","keyPath":"id"}},{{"name":"drafts","keyPath":"id","sync":false}}],
            "sync":{{"live":false}}}}"#
    ));
    set(&prop(&options, "sync"), "transport", &transport);
    let db = open_database(options).await.expect("opens");
    db.pause_sync().unwrap();
    let drafts = db.collection("drafts".into()).unwrap();
    resolve(drafts.put(todo("d1", 1.0))).await;
    resolve(drafts.put_many(Array::of2(&todo("d2", 2.0), &todo("d3", 3.0)).into())).await;
    resolve(drafts.patch("d1".into(), json(r#"{"rank":5}"#))).await;
    resolve(drafts.delete("d2".into())).await;
    assert_eq!(number(drafts.count()).await, 2.0, "written here");
    assert_eq!(number(db.outbox().count()).await, 0.0, "and never queued");
    resolve(db.collection("todos".into()).unwrap().put(todo("t1", 1.0))).await;
    assert_eq!(number(db.outbox().count()).await, 1.0, "a synced collection's write is");
    db.resume_sync().unwrap();
    let _ = JsFuture::from(db.pull(JsValue::UNDEFINED)).await;
    let asked = calls(&log, "pull").last().unwrap().get(1);
    assert_eq!(stringify(&prop(&asked, "collections")), r#"["todos"]"#, "the local collection is not pulled");
    db.close();
    delete_db(&name).await;
}

/// `db.debug.export()` and the `log` option: what happened, for a bug report.
#[wasm_bindgen_test]
async fn a_debug_report_and_the_log_tell_what_happened() {
    let name = unique_name("debug");
    let busy = throw_transport_error("transient", "status: 503, retryAfterMs: 120000");
    let (transport, _) = scripted_transport(&busy, "return { changes: [], cursor: '', hasMore: false };");
    let options = json(&format!(
        r#"{{"name":"{name}","collections":[{{"name":"todos","keyPath":"id"}}],"sync":{{"live":false,"debounceMs":0}}}}"#
    ));
    set(&prop(&options, "sync"), "transport", &transport);
    let logged = Array::new();
    let log = js_sys::Function::new_with_args("list", "return (entry) => list.push(entry)").call1(&JsValue::NULL, &logged).unwrap();
    set(&options, "log", &log);
    let db = open_database(options).await.expect("opens with a log");
    resolve(db.collection("todos".into()).unwrap().put(json(r#"{"id":"a","secret":"hunter2"}"#))).await;
    until("the push failed", || prop(&db.sync_status(), "state").as_string().as_deref() == Some("error"), || stringify(&db.sync_status())).await;
    until("the log heard it", || logged.iter().any(|e| prop(&e, "level").as_string().as_deref() == Some("warn")), || stringify(&logged)).await;
    let report = resolve(db.debug().export(JsValue::UNDEFINED)).await;
    assert_eq!(prop(&report, "format").as_string().as_deref(), Some("wharf-debug/1"));
    assert_eq!(prop(&prop(&prop(&report, "sync"), "status"), "state").as_string().as_deref(), Some("error"));
    let outbox = Array::from(&prop(&prop(&report, "stored"), "outbox"));
    assert_eq!(prop(&prop(&outbox.get(0), "value"), "secret").as_string().as_deref(), Some("hunter2"));
    let events = Array::from(&prop(&report, "events"));
    assert!(events.iter().any(|e| prop(&e, "event").as_string().as_deref() == Some("end")), "{}", stringify(&events));
    let redacted = resolve(db.debug().export(json(r#"{"redact":true}"#))).await;
    assert!(!stringify(&redacted).contains("hunter2"), "redacted: no document contents");
    reject(db.debug().export(json(r#"{"redact":"yes"}"#)), "INVALID_OPTIONS").await;
    db.close();
    delete_db(&name).await;
}

/// Opens `name` with `sync.expectSynced` (the app's marker says this browser had synced) and a
/// transport whose pull answers the server's one document `k` after 300 ms, and writes `n`
/// right away; returns the database, the transport's calls and the log's entries.
async fn open_marked(name: &str) -> (Database, Array, Array) {
    let pull = "await new Promise((r) => setTimeout(r, 300)); log.push(['pulled']);
                return request.cursor === ''
                  ? { changes: [{ collection: 'todos', key: 'k', value: { id: 'k', rank: 1 }, version: 3 }], cursor: 'c1', hasMore: false }
                  : { changes: [], cursor: request.cursor, hasMore: false };";
    let push = "return { protocol: 1, results: request.mutations.map((m, i) => ({ status: 'applied', id: m.id, version: i + 1 })) };";
    let (transport, calls_log) = scripted_transport(push, pull);
    let options = json(&format!(
        r#"{{"name":"{name}","collections":[{{"name":"todos","keyPath":"id"}}],"sync":{{"live":false,"debounceMs":0,"pullIntervalMs":0,"expectSynced":true}}}}"#
    ));
    set(&prop(&options, "sync"), "transport", &transport);
    let logged = Array::new();
    let log = js_sys::Function::new_with_args("list", "return (entry) => list.push(entry)").call1(&JsValue::NULL, &logged).unwrap();
    set(&options, "log", &log);
    let db = open_database(options).await.expect("opens");
    resolve(db.collection("todos".into()).unwrap().put(todo("n", 2.0))).await;
    (db, calls_log, logged)
}

fn evictions(logged: &Array) -> usize {
    logged.iter().filter(|e| prop(e, "event").as_string().as_deref() == Some("evicted")).count()
}

/// Safari evicts an origin's storage after seven days without a visit, and the database opens
/// empty. With the app's marker it is reported (the event and `status.evicted`), refilled by a
/// full pull, and what the app wrote meanwhile is pushed only after that pull. Deleting the
/// database stands in for the eviction: the browser removes it the same way, whole.
#[wasm_bindgen_test]
async fn an_evicted_database_is_reported_and_refilled_before_anything_is_pushed() {
    let name = unique_name("evicted");
    let (db, log, logged) = open_marked(&name).await;
    // sync() asked while the database is refilled waits for the refill, then pushes.
    resolve(db.sync(JsValue::UNDEFINED)).await;
    assert_eq!(number(db.outbox().count()).await, 0.0, "n was pushed");
    assert_eq!(evictions(&logged), 1, "reported: {}", stringify(&logged));
    assert_eq!(prop(&logged.iter().find(|e| prop(e, "event").as_string().as_deref() == Some("evicted")).unwrap(), "level").as_string().as_deref(), Some("warn"));
    let order: Vec<String> = log.iter().filter_map(|call| Array::from(&call).get(0).as_string()).collect();
    let pulled = order.iter().position(|c| c == "pulled").expect("the pull answered");
    let pushed = order.iter().position(|c| c == "push").expect("n was pushed");
    assert!(pulled < pushed, "nothing pushed before the full pull answered: {order:?}");
    assert_eq!(prop(&db.sync_status(), "evicted").as_bool(), Some(false), "refilled");
    assert!(!resolve(db.collection("todos".into()).unwrap().get("k".into())).await.is_undefined(), "k came back");
    db.close();

    let (db, _, logged) = open_marked(&name).await;
    resolve(db.sync(JsValue::UNDEFINED)).await;
    assert_eq!(evictions(&logged), 0, "the next visit finds its client id: not emptied");
    assert_eq!(prop(&db.sync_status(), "evicted").as_bool(), Some(false));
    db.close();

    delete_db(&name).await; // evicted again
    let (db, _, logged) = open_marked(&name).await;
    resolve(db.sync(JsValue::UNDEFINED)).await;
    assert_eq!(evictions(&logged), 1, "found emptied again");
    db.close();
    delete_db(&name).await;
}
