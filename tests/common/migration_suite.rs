// Schema migrations (a collection's `version` and `migrate`) in every scope, on real IndexedDB:
// the app's function runs once over stored documents and queued values inside the upgrade, and a
// migration that throws or changes a key leaves the database at its old version, whole.
// Included by browser_*.rs after store_suite.rs (support and imports come from there).

/// Opens `name` with one collection "notes" at `version`, migrated by `migrate` (the body of a
/// JavaScript `(doc, from, info) => ...`, which also counts its calls in `globalThis.migrations`).
async fn open_notes(name: &str, version: u32, migrate: Option<&str>) -> Result<Database, JsValue> {
    let options = json(&format!(
        r#"{{"name":"{name}","collections":[{{"name":"notes","keyPath":"id","version":{version}}}]}}"#
    ));
    if let Some(body) = migrate {
        let function = js_sys::Function::new_with_args(
            "doc, from, info",
            &format!("globalThis.migrations = (globalThis.migrations ?? 0) + 1; {body}"),
        );
        set(&Array::from(&prop(&options, "collections")).get(0), "migrate", &function);
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
            panic!("opened a database of a newer version");
        }
        Err(error) => expect_wharf_error(&error, "INVALID_SCHEMA"),
    }
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
