// Schema migrations (a collection's `version` and `migrate`) in every scope, on real IndexedDB:
// the app's function runs once over stored documents and queued values inside the upgrade, and a
// migration that throws or changes a key leaves the database at its old version, whole. A new
// key path goes through a migration too: the store is rebuilt, every document keeps its key, and
// what was queued still pushes under it.
// Included by browser_*.rs after store_suite.rs and transport_suite.rs (support, imports,
// `scripted_transport` and `calls` come from there).

/// Opens `name` with one collection "notes" at `version`, migrated by `migrate` (the body of a
/// JavaScript `(doc, from, info) => ...`, which also counts its calls in `globalThis.migrations`).
async fn open_notes(name: &str, version: u32, migrate: Option<&str>) -> Result<Database, JsValue> {
    open_notes_as(name, &format!(r#""keyPath":"id","version":{version}"#), migrate, None).await
}

/// Opens `name` with "notes" declared by `fields` (JSON members after its name), migrated as
/// `open_notes` does, syncing through `transport` if given.
async fn open_notes_as(
    name: &str,
    fields: &str,
    migrate: Option<&str>,
    transport: Option<&JsValue>,
) -> Result<Database, JsValue> {
    let options = json(&format!(r#"{{"name":"{name}","collections":[{{"name":"notes",{fields}}}]}}"#));
    if let Some(body) = migrate {
        let function = js_sys::Function::new_with_args(
            "doc, from, info",
            &format!("globalThis.migrations = (globalThis.migrations ?? 0) + 1; {body}"),
        );
        set(&Array::from(&prop(&options, "collections")).get(0), "migrate", &function);
    }
    if let Some(transport) = transport {
        set(&options, "sync", &json(r#"{"debounceMs":0,"pullIntervalMs":0,"live":false}"#));
        set(&prop(&options, "sync"), "transport", transport);
    }
    open_database(options).await
}

fn migrations_run() -> f64 {
    js_sys::Reflect::get(&js_sys::global(), &"migrations".into()).ok().and_then(|n| n.as_f64()).unwrap_or(0.0)
}

fn text_of(value: &JsValue) -> String {
    js_sys::JSON::stringify(value).map(String::from).unwrap_or_default()
}

/// `title` becomes `text` (with a "!" so that a second run would show); a patch keeps only what
/// it sets.
const TITLE_TO_TEXT: &str = "if (from !== 1) throw new Error('from ' + from);
    const { title, ...rest } = doc;
    return title === undefined ? rest : { ...rest, text: title + '!' };";

async fn notes_v1(name: &str) {
    let db = open_notes(name, 1, None).await.expect("opens at version 1");
    let notes = db.collection("notes".into()).unwrap();
    resolve(notes.put(json(r#"{"id":"a","title":"A"}"#))).await;
    resolve(notes.put(json(r#"{"id":"b","title":"B","pinned":true}"#))).await;
    resolve(notes.patch("b".into(), json(r#"{"title":"B2"}"#))).await;
    db.close();
}

#[wasm_bindgen_test]
async fn a_migration_reshapes_documents_and_queued_ops_once_inside_the_upgrade() {
    let name = unique_name("migrate");
    notes_v1(&name).await;
    let before = migrations_run();
    let db = open_notes(&name, 2, Some(TITLE_TO_TEXT)).await.expect("migrates");
    let notes = db.collection("notes".into()).unwrap();
    assert_eq!(text_of(&resolve(notes.get("a".into())).await), r#"{"id":"a","text":"A!"}"#);
    assert_eq!(text_of(&resolve(notes.get("b".into())).await), r#"{"id":"b","pinned":true,"text":"B2!"}"#);
    let queued = text_of(&resolve(db.outbox().snapshot()).await);
    assert!(!queued.contains("title"), "nothing queued in the old shape: {queued}");
    assert!(queued.contains(r#""text":"A!""#) && queued.contains(r#""text":"B2!""#), "{queued}");
    let ran = migrations_run() - before;
    assert!(ran >= 3.0, "every document and queued value went through migrate ({ran} calls)");
    db.close();

    let db = open_notes(&name, 2, Some(TITLE_TO_TEXT)).await.expect("opens again");
    assert_eq!(migrations_run() - before, ran, "a migrated database is not migrated again");
    db.close();

    // What is stored is the JSON the core accepted, not the objects migrate returned.
    let dated = unique_name("migrate-json");
    notes_v1(&dated).await;
    let db = open_notes(&dated, 2, Some("return { ...doc, at: new Date(0), dropped: undefined };")).await.expect("migrates");
    let a = resolve(db.collection("notes".into()).unwrap().get("a".into())).await;
    assert_eq!(prop(&a, "at").as_string().as_deref(), Some("1970-01-01T00:00:00.000Z"), "a Date is stored as its JSON");
    assert!(!js_sys::Reflect::has(&a, &"dropped".into()).unwrap(), "an undefined field is not stored");
    db.close();
    delete_db(&dated).await;
    delete_db(&name).await;
}

#[wasm_bindgen_test]
async fn a_failing_migration_leaves_the_database_at_its_old_version() {
    let name = unique_name("migrate-fails");
    notes_v1(&name).await;
    let threw = open_notes(&name, 2, Some("if (doc.id === 'b') throw new Error('no B on purpose'); return doc;")).await;
    let message = expect_wharf_error(&threw.err().expect("refused"), "MIGRATION_FAILED");
    assert!(message.contains("no B on purpose") && message.contains("notes"), "{message}");
    let rekeyed = open_notes(&name, 2, Some("return { ...doc, id: doc.id + '2' };")).await;
    let message = expect_wharf_error(&rekeyed.err().expect("refused"), "MIGRATION_FAILED");
    assert!(message.contains("with its key unchanged"), "{message}");
    let not_a_doc = open_notes(&name, 2, Some("return Promise.resolve(doc);")).await;
    expect_wharf_error(&not_a_doc.err().expect("refused"), "MIGRATION_FAILED");

    // Still version 1, untouched: the old app opens it, and a good migration runs later.
    let db = open_notes(&name, 1, None).await.expect("the old version opens");
    let notes = db.collection("notes".into()).unwrap();
    assert_eq!(text_of(&resolve(notes.get("a".into())).await), r#"{"id":"a","title":"A"}"#);
    assert_eq!(number(db.outbox().count()).await, 3.0, "nothing queued was lost or doubled");
    db.close();
    let db = open_notes(&name, 2, Some(TITLE_TO_TEXT)).await.expect("migrates");
    assert_eq!(text_of(&resolve(db.collection("notes".into()).unwrap().get("a".into())).await), r#"{"id":"a","text":"A!"}"#);
    db.close();

    // An older app cannot open documents of a newer shape.
    let message = reject_open(open_notes(&name, 1, None).await);
    assert!(message.contains("version 2"), "{message}");
    let bumped = open_notes(&name, 3, None).await; // a version bump without a function is allowed
    bumped.expect("no migrate: the documents stay as they are").close();
    let before = migrations_run();
    open_notes(&name, 3, Some(TITLE_TO_TEXT)).await.expect("at version 3 already").close();
    assert_eq!(migrations_run(), before, "nothing to migrate at the version it holds");
    assert!(reject_open(open_notes(&name, 2, None).await).contains("version 3"));
    delete_db(&name).await;
}

fn reject_open(opened: Result<Database, JsValue>) -> String {
    match opened {
        Ok(db) => {
            db.close();
            panic!("opened a database it should have refused");
        }
        Err(error) => expect_wharf_error(&error, "INVALID_SCHEMA"),
    }
}

/// "notes" keyed by `uuid` instead of `id` (same value), at version 2, with an index.
const BY_UUID: &str = r#""keyPath":"uuid","version":2,"indexes":[{"name":"by_title","keyPath":"title"}]"#;
/// Moves the key from `id` to `uuid`; a queued patch has no key and keeps its fields.
const ID_TO_UUID: &str = "const { id, ...rest } = doc; return info.patch ? rest : { ...rest, uuid: id };";
const NO_CHANGES: &str = "return { changes: [], cursor: 'c0', hasMore: false };";

/// Every mutation pushed through `log`, in order.
fn pushed(log: &Array) -> Vec<JsValue> {
    let requests = calls(log, "push").into_iter().map(|call| Array::from(&prop(&call.get(1), "mutations")));
    requests.flat_map(|mutations| mutations.iter().collect::<Vec<_>>()).collect()
}

#[wasm_bindgen_test]
async fn a_new_key_path_through_a_migration_keeps_each_documents_key_for_the_queue_and_the_server() {
    let name = unique_name("rekey");
    // Version 1, keyed by `id`: "d" is a dead letter, "a" and "b" (put, then patched) are queued.
    let refuse_d = "return { results: request.mutations.map((m) => m.key === 'd'
        ? { status: 'rejected', id: m.id, code: 'NOPE', message: 'refused on purpose', permanent: true }
        : { status: 'applied', id: m.id, version: 1 }) };";
    let (transport, _) = scripted_transport(refuse_d, NO_CHANGES);
    let db = open_notes_as(&name, r#""keyPath":"id""#, None, Some(&transport)).await.expect("opens at version 1");
    let notes = db.collection("notes".into()).unwrap();
    resolve(notes.put(json(r#"{"id":"d","title":"D"}"#))).await;
    resolve(db.sync(JsValue::UNDEFINED)).await;
    assert_eq!(Array::from(&resolve(db.dead_letters().list()).await).length(), 1, "d is a dead letter");
    db.pause_sync().unwrap();
    resolve(notes.put(json(r#"{"id":"a","title":"A"}"#))).await;
    resolve(notes.put(json(r#"{"id":"b","title":"B"}"#))).await;
    resolve(notes.patch("b".into(), json(r#"{"title":"B2"}"#))).await;
    db.close();

    let before = migrations_run();
    let db = open_notes_as(&name, BY_UUID, Some(ID_TO_UUID), None).await.expect("moves the key path");
    let notes = db.collection("notes".into()).unwrap();
    assert_eq!(text_of(&resolve(notes.get("a".into())).await), r#"{"title":"A","uuid":"a"}"#);
    assert_eq!(text_of(&resolve(notes.get("b".into())).await), r#"{"title":"B2","uuid":"b"}"#);
    assert_eq!(number(notes.count()).await, 3.0);
    let found = resolve(notes.query(json(r#"{"index":"by_title","equals":"D"}"#))).await;
    assert_eq!(text_of(&found), r#"[{"title":"D","uuid":"d"}]"#, "the declared index was built over the migrated documents");
    let queued = Array::from(&resolve(db.outbox().snapshot()).await);
    let keys: Vec<_> = queued.iter().map(|e| prop(&e, "key").as_string().unwrap()).collect();
    assert_eq!(keys, ["a", "b", "b"], "queued under the same keys");
    assert_eq!(text_of(&prop(&queued.get(0), "value")), r#"{"title":"A","uuid":"a"}"#);
    assert_eq!(text_of(&prop(&queued.get(2), "patch")), r#"{"title":"B2"}"#);
    let letter = Array::from(&resolve(db.dead_letters().list()).await).get(0);
    assert_eq!(text_of(&prop(&letter, "value")), r#"{"title":"D","uuid":"d"}"#, "the dead letter too");
    resolve(notes.put(json(r#"{"uuid":"c","title":"C"}"#))).await;
    assert_eq!(text_of(&resolve(notes.get("c".into())).await), r#"{"uuid":"c","title":"C"}"#);
    let ran = migrations_run() - before;
    assert_eq!(ran, 7.0, "3 documents, 3 queued values and a dead letter, each once");
    db.close();

    // What was queued pushes under the key it had, and so does the retried dead letter.
    let accept = "return { results: request.mutations.map((m) => ({ status: 'applied', id: m.id, version: 2 })) };";
    let (transport, log) = scripted_transport(accept, NO_CHANGES);
    let db = open_notes_as(&name, BY_UUID, Some(ID_TO_UUID), Some(&transport)).await.expect("opens again");
    assert_eq!(migrations_run() - before, ran, "not migrated again");
    resolve(db.sync(JsValue::UNDEFINED)).await;
    assert_eq!(number(db.outbox().count()).await, 0.0);
    let id = prop(&Array::from(&resolve(db.dead_letters().list()).await).get(0), "id");
    resolve(db.dead_letters().retry(id)).await;
    resolve(db.sync(JsValue::UNDEFINED)).await;
    let sent = pushed(&log);
    let mut keys: Vec<_> = sent.iter().map(|m| prop(m, "key").as_string().unwrap()).collect();
    keys.dedup(); // b's put and patch, if not folded into one
    assert_eq!(keys, ["a", "b", "c", "d"], "{}", text_of(&log));
    for m in sent.iter().filter(|m| prop(m, "op").as_string().as_deref() == Some("put")) {
        let (key, value) = (prop(m, "key"), prop(m, "value"));
        assert_eq!(prop(&value, "uuid"), key, "pushed under the key it had: {}", text_of(m));
        assert!(prop(&value, "id").is_undefined(), "pushed in the new shape: {}", text_of(m));
    }
    db.close();
    delete_db(&name).await;
}

#[wasm_bindgen_test]
async fn a_new_key_path_that_loses_a_documents_key_leaves_the_old_store_whole() {
    let name = unique_name("rekey-fails");
    notes_v1(&name).await;
    let changed = open_notes_as(&name, BY_UUID, Some("return { ...doc, uuid: doc.id + '2' };"), None).await;
    let message = expect_wharf_error(&changed.err().expect("refused"), "MIGRATION_FAILED");
    assert!(message.contains(r#"document "a""#) && message.contains(r#"unchanged at "uuid""#), "{message}");
    let dropped = open_notes_as(&name, BY_UUID, Some("const { id, ...rest } = doc; return rest;"), None).await;
    let message = expect_wharf_error(&dropped.err().expect("refused"), "MIGRATION_FAILED");
    assert!(message.contains(r#"document "a""#), "{message}");
    let collide = open_notes_as(&name, BY_UUID, Some("return info.patch ? doc : { ...doc, uuid: 'a' };"), None).await;
    let message = expect_wharf_error(&collide.err().expect("refused"), "MIGRATION_FAILED");
    assert!(message.contains(r#"document "b""#), "{message}");
    // Past the check, the store is deleted and created anew: a unique index the migrated
    // documents break fails the upgrade there, and IndexedDB must undo the deletion too.
    let unique = r#""keyPath":"uuid","version":2,"indexes":[{"name":"by_title","keyPath":"title","unique":true}]"#;
    let same_title = "const { id, ...rest } = doc; return info.patch ? rest : { ...rest, uuid: id, title: 'same' };";
    let broken = open_notes_as(&name, unique, Some(same_title), None).await;
    let message = expect_wharf_error(&broken.err().expect("refused"), "MIGRATION_FAILED");
    assert!(message.contains("could not be stored once migrated") && message.contains("ConstraintError"), "{message}");

    // Still version 1 with its old store: the old app reads every document.
    let db = open_notes(&name, 1, None).await.expect("the old version opens");
    let notes = db.collection("notes".into()).unwrap();
    assert_eq!(text_of(&resolve(notes.get("a".into())).await), r#"{"id":"a","title":"A"}"#);
    assert_eq!(text_of(&resolve(notes.get("b".into())).await), r#"{"id":"b","pinned":true,"title":"B2"}"#);
    assert_eq!(number(notes.count()).await, 2.0);
    assert_eq!(number(db.outbox().count()).await, 3.0, "nothing queued was lost or doubled");
    resolve(notes.put(json(r#"{"id":"e","title":"E"}"#))).await;
    db.close();
    // And a good migration runs after all that.
    let db = open_notes_as(&name, unique, Some(ID_TO_UUID), None).await.expect("moves the key path");
    let notes = db.collection("notes".into()).unwrap();
    assert_eq!(text_of(&resolve(notes.get("e".into())).await), r#"{"title":"E","uuid":"e"}"#);
    assert_eq!(number(notes.count()).await, 3.0);
    db.close();
    delete_db(&name).await;
}

#[wasm_bindgen_test]
async fn a_new_key_path_without_a_version_bump_or_a_migrate_function_is_refused() {
    let name = unique_name("rekey-refused");
    notes_v1(&name).await;
    let same_version = open_notes_as(&name, r#""keyPath":"uuid""#, Some(ID_TO_UUID), None).await;
    let no_function = open_notes_as(&name, r#""keyPath":"uuid","version":2"#, None, None).await;
    for refused in [same_version, no_function] {
        let message = reject_open(refused);
        assert!(message.contains("raise the collection's version and give a migrate function"), "{message}");
    }
    let db = open_notes(&name, 1, None).await.expect("the old version opens");
    assert_eq!(number(db.collection("notes".into()).unwrap().count()).await, 2.0);
    db.close();
    delete_db(&name).await;
}

/// Documents pulled in an older shape go through `migrate` before they are stored (one call
/// each, all of a page in one crossing); one it throws on, and one in a newer shape than the
/// app's, are skipped and reported while the rest is stored and the cursor moves on; and every
/// push names the collection's version.
#[wasm_bindgen_test]
async fn documents_pulled_in_an_older_shape_are_migrated_on_arrival() {
    let name = unique_name("migrate-pulled");
    // The page comes once the test asks for it (after the start-up pull).
    let pull = "if (!globalThis.shapesPage) return { protocol: 2, cursor: request.cursor, hasMore: false, changes: [] };
        globalThis.shapesPage = false;
        return { protocol: 2, cursor: 'c1', hasMore: false, changes: [
            { collection: 'notes', key: 'a', value: { id: 'a', title: 'A' }, version: 1, shape: 1 },
            { collection: 'notes', key: 'b', value: { id: 'b', text: 'B' }, version: 1, shape: 2 },
            { collection: 'notes', key: 'bad', value: { id: 'bad', title: 'X' }, version: 1, shape: 1 },
            { collection: 'notes', key: 'new', value: { id: 'new', body: 'N' }, version: 1, shape: 3 },
            { collection: 'notes', key: 'old', value: { id: 'old', title: 'O' }, version: 1 } ] };";
    let push = "return { protocol: 2, results: request.mutations.map((m) => ({ status: 'applied', id: m.id, version: 1 })) };";
    let (transport, log) = scripted_transport(push, pull);
    let options = json(&format!(
        r#"{{"name":"{name}","collections":[{{"name":"notes","keyPath":"id","version":2}}],
            "sync":{{"debounceMs":0,"pullIntervalMs":0,"live":false}}}}"#
    ));
    set(&prop(&options, "sync"), "transport", &transport);
    let migrate = js_sys::Function::new_with_args(
        "doc, from, info",
        &format!(
            "globalThis.migrations = (globalThis.migrations ?? 0) + 1;
             if (doc.id === 'bad') throw new Error('cannot read bad');
             {TITLE_TO_TEXT}"
        ),
    );
    set(&Array::from(&prop(&options, "collections")).get(0), "migrate", &migrate);
    let before = migrations_run();
    let db = open_database(options).await.expect("opens");
    let notes = db.collection("notes".into()).unwrap();
    until("the start-up pull", || !calls(&log, "pull").is_empty(), || stringify(&log)).await;
    resolve(db.pull(JsValue::UNDEFINED)).await;
    js_sys::Reflect::set(&js_sys::global(), &"shapesPage".into(), &JsValue::TRUE).unwrap();
    let pulled = resolve(db.pull(JsValue::UNDEFINED)).await;
    assert_eq!((prop(&pulled, "applied").as_f64(), prop(&pulled, "invalid").as_f64()), (Some(3.0), Some(2.0)));
    let reasons = text_of(&prop(&pulled, "unstored"));
    assert!(reasons.contains("MIGRATION_FAILED") && reasons.contains("cannot read bad"), "{reasons}");
    assert!(reasons.contains("SHAPE_TOO_NEW"), "{reasons}");
    assert_eq!(prop(&pulled, "cursor").as_string().as_deref(), Some("c1"), "the cursor moved on");
    assert_eq!(text_of(&resolve(notes.get("a".into())).await), r#"{"id":"a","text":"A!"}"#);
    assert_eq!(text_of(&resolve(notes.get("b".into())).await), r#"{"id":"b","text":"B"}"#, "already shape 2");
    assert_eq!(text_of(&resolve(notes.get("old".into())).await), r#"{"id":"old","title":"O"}"#, "no shape: as is");
    assert!(resolve(notes.get("bad".into())).await.is_undefined(), "never stored unmigrated");
    assert!(resolve(notes.get("new".into())).await.is_undefined(), "a shape this app does not know");
    assert_eq!(migrations_run() - before, 2.0, "migrate ran on the two documents in shape 1");

    resolve(notes.put(json(r#"{"id":"z","text":"Z"}"#))).await;
    resolve(db.sync(JsValue::UNDEFINED)).await;
    let pushed = calls(&log, "push").last().map(|call| Array::from(&prop(&call.get(1), "mutations")).get(0));
    assert_eq!(pushed.map(|m| prop(&m, "shape").as_f64()), Some(Some(2.0)), "a push names the collection's version");
    db.close();
    delete_db(&name).await;
}
