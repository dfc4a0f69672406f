// Encryption at rest (`Wharf.open({ encryption: { key } })`, core::vault) on real IndexedDB and
// WebCrypto: what lies in the database holds no document field but keys and index keys, every
// read and query sees the documents whole, a wrong key or a mismatch is a clear error that
// changes nothing, migrations and new indexes work sealed, and pushes and pulls carry plain JSON.
// Included after transport_suite.rs (its `scripted_transport`, `calls` and `until`).

/// A fresh non-extractable AES-GCM key, as an app would keep it.
async fn app_key() -> JsValue {
    let make = js_sys::Function::new_no_args(
        "return crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);",
    );
    resolve(make.call0(&JsValue::NULL).unwrap().into()).await
}

/// Every value of every store of `name`, read with plain IndexedDB, as one JSON text.
async fn raw_contents(name: &str) -> String {
    let read = js_sys::Function::new_with_args(
        "name",
        "return new Promise((resolve, reject) => {
           const req = indexedDB.open(name);
           req.onerror = () => reject(req.error);
           req.onsuccess = () => {
             const db = req.result;
             const names = [...db.objectStoreNames];
             const tx = db.transaction(names, 'readonly');
             const out = {};
             for (const n of names) tx.objectStore(n).getAll().onsuccess = (e) => (out[n] = e.target.result);
             tx.oncomplete = () => { db.close(); resolve(JSON.stringify(out)); };
           };
         });",
    );
    resolve(read.call1(&JsValue::NULL, &name.into()).unwrap().into()).await.as_string().unwrap()
}

const NOTES: &str = r#"[{"name":"notes","keyPath":"id","indexes":[{"name":"by_tag","keyPath":"tag"}]}]"#;

/// Adds `encryption: { key }` to `Wharf.open`'s options.
fn with_key(options: &JsValue, key: &JsValue) {
    let encryption = js_sys::Object::new();
    set(&encryption, "key", key);
    set(options, "encryption", &encryption);
}

async fn open_sealed(name: &str, collections: &str, key: Option<&JsValue>) -> Result<Database, JsValue> {
    let options = json(&format!(r#"{{"name":"{name}","collections":{collections}}}"#));
    if let Some(key) = key {
        with_key(&options, key);
    }
    open_database(options).await
}

#[wasm_bindgen_test]
async fn encryption_keeps_only_keys_and_index_keys_in_clear() {
    let name = unique_name("sealed");
    let key = app_key().await;
    let db = open_sealed(&name, NOTES, Some(&key)).await.expect("opens encrypted");
    let notes = db.collection("notes".into()).unwrap();
    resolve(notes.put(json(r#"{"id":"a","tag":"work","body":"the secret plan"}"#))).await;
    resolve(notes.put_many(json(r#"[{"id":"b","tag":"home","body":"secret b"},{"id":"c","tag":"work","body":"secret c"}]"#))).await;
    resolve(notes.patch("a".into(), json(r#"{"body":"the secret plan, revised"}"#))).await;
    resolve(notes.delete("c".into())).await;

    // Fields come back in the order the core writes them (sorted), as after a patch.
    assert_eq!(stringify(&resolve(notes.get("a".into())).await), r#"{"body":"the secret plan, revised","id":"a","tag":"work"}"#);
    assert_eq!(Array::from(&resolve(notes.get_all()).await).length(), 2);
    let work = Array::from(&resolve(notes.query(json(r#"{"index":"by_tag","equals":"work"}"#))).await);
    assert_eq!(work.length(), 1, "an index query finds the sealed documents by their clear index key");
    assert_eq!(prop(&work.get(0), "body").as_string().as_deref(), Some("the secret plan, revised"));
    let queued = stringify(&resolve(db.outbox().snapshot()).await);
    assert!(queued.contains("secret b") && queued.contains("revised"), "the outbox reads back whole: {queued}");
    db.close();

    let raw = raw_contents(&name).await;
    assert!(!raw.contains("secret"), "no document body in clear: {raw}");
    assert!(!raw.contains("\"body\""), "no field name of a document in clear: {raw}");
    assert!(raw.contains("\"tag\":\"home\"") && raw.contains("\"id\":\"b\""), "keys and index keys stay in clear: {raw}");
    assert!(raw.contains("__wharf_sealed") && raw.contains("xchacha20poly1305"), "{raw}");

    let again = open_sealed(&name, NOTES, Some(&key)).await.expect("opens again with its key");
    let notes = again.collection("notes".into()).unwrap();
    assert_eq!(prop(&resolve(notes.get("b".into())).await, "body").as_string().as_deref(), Some("secret b"));
    again.close();
    delete_db(&name).await;
}

#[wasm_bindgen_test]
async fn encryption_refuses_a_wrong_key_or_a_mismatch_clearly_and_changes_nothing() {
    let name = unique_name("sealed-keys");
    let key = app_key().await;
    let db = open_sealed(&name, NOTES, Some(&key)).await.expect("opens encrypted");
    resolve(db.collection("notes".into()).unwrap().put(json(r#"{"id":"a","body":"kept"}"#))).await;
    db.close();
    let before = raw_contents(&name).await;

    let other = app_key().await;
    let wrong = open_sealed(&name, NOTES, Some(&other)).await.err().expect("another key is refused");
    expect_wharf_error(&wrong, "WRONG_KEY");
    let none = open_sealed(&name, NOTES, None).await.err().expect("no key is refused");
    expect_wharf_error(&none, "ENCRYPTION_MISMATCH");
    assert_eq!(raw_contents(&name).await, before, "a refused open changes nothing");

    let db = open_sealed(&name, NOTES, Some(&key)).await.expect("the right key still opens it");
    assert_eq!(
        prop(&resolve(db.collection("notes".into()).unwrap().get("a".into())).await, "body").as_string().as_deref(),
        Some("kept")
    );
    db.close();

    let plain = unique_name("plain");
    let db = open_sealed(&plain, NOTES, None).await.expect("opens plain");
    resolve(db.collection("notes".into()).unwrap().put(json(r#"{"id":"a"}"#))).await;
    db.close();
    let keyed = open_sealed(&plain, NOTES, Some(&key)).await.err().expect("unencrypted data is not encrypted in place");
    expect_wharf_error(&keyed, "ENCRYPTION_MISMATCH");

    let fresh = unique_name("bad-key");
    for bad in [r#"{"key":{}}"#, r#"{"key":"secret"}"#, "{}"] {
        let options = json(&format!(r#"{{"name":"{fresh}","collections":{NOTES},"encryption":{bad}}}"#));
        let error = open_database(options).await.err().expect("refused");
        expect_wharf_error(&error, "INVALID_OPTIONS");
    }
    let hmac = js_sys::Function::new_no_args(
        "return crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt']);",
    );
    let encrypt_only = resolve(hmac.call0(&JsValue::NULL).unwrap().into()).await;
    let error = open_sealed(&fresh, NOTES, Some(&encrypt_only)).await.err().expect("a key that cannot decrypt");
    expect_wharf_error(&error, "INVALID_OPTIONS");
    delete_db(&fresh).await;
    delete_db(&plain).await;
    delete_db(&name).await;
}

#[wasm_bindgen_test]
async fn encryption_lets_a_collection_migrate_and_gain_an_index() {
    let name = unique_name("sealed-migrate");
    let key = app_key().await;
    let db = open_sealed(&name, r#"[{"name":"notes","keyPath":"id"}]"#, Some(&key)).await.unwrap();
    let notes = db.collection("notes".into()).unwrap();
    resolve(notes.put(json(r#"{"id":"a","title":"A","tag":"t1"}"#))).await;
    resolve(notes.put(json(r#"{"id":"b","title":"B","tag":"t2"}"#))).await;
    db.close();

    let v2 = r#"[{"name":"notes","keyPath":"id","version":2,"indexes":[{"name":"by_tag","keyPath":"tag"}]}]"#;
    let options = json(&format!(r#"{{"name":"{name}","collections":{v2}}}"#));
    let migrate = js_sys::Function::new_with_args("doc", "const { title, ...rest } = doc; return { ...rest, text: title + '!' };");
    set(&Array::from(&prop(&options, "collections")).get(0), "migrate", &migrate);
    with_key(&options, &key);
    let db = open_database(options).await.expect("migrates sealed");
    let notes = db.collection("notes".into()).unwrap();
    let t2 = Array::from(&resolve(notes.query(json(r#"{"index":"by_tag","equals":"t2"}"#))).await);
    assert_eq!(stringify(&t2), r#"[{"id":"b","tag":"t2","text":"B!"}]"#, "the new index finds a document stored before it");
    let queued = stringify(&resolve(db.outbox().snapshot()).await);
    assert!(queued.contains("A!") && !queued.contains("title"), "queued values migrated: {queued}");
    db.close();
    let raw = raw_contents(&name).await;
    assert!(!raw.contains("A!") && raw.contains("\"tag\":\"t1\""), "{raw}");

    // An index added without a new version: the stored documents are sealed again for it.
    let v2_text = r#"[{"name":"notes","keyPath":"id","version":2,"indexes":[{"name":"by_tag","keyPath":"tag"},{"name":"by_text","keyPath":"text"}]}]"#;
    let db = open_sealed(&name, v2_text, Some(&key)).await.expect("adds an index");
    let found = resolve(db.collection("notes".into()).unwrap().query(json(r#"{"index":"by_text","equals":"A!"}"#))).await;
    assert_eq!(stringify(&found), r#"[{"id":"a","tag":"t1","text":"A!"}]"#);
    db.close();
    delete_db(&name).await;
}

#[wasm_bindgen_test]
async fn encryption_syncs_plain_json_and_stores_pulled_documents_sealed() {
    let name = unique_name("sealed-sync");
    let key = app_key().await;
    let push = "return { protocol: 2, results: request.mutations.map((m) => ({ status: 'applied', id: m.id, version: 1 })) };";
    let pull = "return request.cursor === ''
                  ? { changes: [{ collection: 'todos', key: 'z', value: { id: 'z', note: 'pulled secret' }, version: 4 }], cursor: 'c1', hasMore: false }
                  : { changes: [], cursor: request.cursor, hasMore: false };";
    let (transport, log) = scripted_transport(push, pull);
    let options = json(&format!(
        r#"{{"name":"{name}","collections":[{{"name":"todos","keyPath":"id"}}],"sync":{{"debounceMs":0,"pullIntervalMs":0}}}}"#
    ));
    set(&prop(&options, "sync"), "transport", &transport);
    with_key(&options, &key);
    let db = open_database(options).await.expect("opens encrypted with a transport");
    let todos = db.collection("todos".into()).unwrap();
    resolve(todos.put(json(r#"{"id":"a","note":"pushed secret"}"#))).await;
    resolve(db.sync(JsValue::UNDEFINED)).await;
    resolve(db.pull(JsValue::UNDEFINED)).await;
    let pushed = stringify(&calls(&log, "push")[0].get(1));
    assert!(pushed.contains(r#""value":{"id":"a","note":"pushed secret"}"#), "the server gets plain JSON: {pushed}");
    assert_eq!(prop(&resolve(todos.get("z".into())).await, "note").as_string().as_deref(), Some("pulled secret"));
    assert_eq!(number(db.outbox().count()).await, 0.0);
    db.close();
    let raw = raw_contents(&name).await;
    assert!(!raw.contains("secret") && !raw.contains("\"c1\""), "documents, merge state and cursor are sealed: {raw}");
    delete_db(&name).await;
}

#[wasm_bindgen_test]
async fn encryption_keeps_a_renamed_key_path_in_clear_after_the_store_is_rebuilt() {
    let name = unique_name("sealed-rekey");
    let key = app_key().await;
    let db = open_sealed(&name, r#"[{"name":"notes","keyPath":"id"}]"#, Some(&key)).await.unwrap();
    resolve(db.collection("notes".into()).unwrap().put(json(r#"{"id":"a","body":"secret"}"#))).await;
    db.close();
    let v2 = r#"[{"name":"notes","keyPath":"uuid","version":2}]"#;
    let options = json(&format!(r#"{{"name":"{name}","collections":{v2}}}"#));
    let migrate =
        js_sys::Function::new_with_args("doc, from, info", "const { id, ...rest } = doc; return info.patch ? rest : { ...rest, uuid: id };");
    set(&Array::from(&prop(&options, "collections")).get(0), "migrate", &migrate);
    with_key(&options, &key);
    let db = open_database(options).await.expect("rebuilds the store sealed");
    let a = resolve(db.collection("notes".into()).unwrap().get("a".into())).await;
    assert_eq!(stringify(&a), r#"{"body":"secret","uuid":"a"}"#);
    db.close();
    let raw = raw_contents(&name).await;
    assert!(raw.contains(r#""uuid":"a""#) && !raw.contains("secret"), "{raw}");
    delete_db(&name).await;
}

/// A context that opened the database without a key before another encrypted it (a service
/// worker, a tab of an older release) is closed by the encryption's upgrade and refused when it
/// reconnects: it never writes in clear into an encrypted database.
#[wasm_bindgen_test]
async fn encryption_closes_out_a_context_that_opened_without_the_key() {
    let name = unique_name("sealed-race");
    let plain = open_sealed(&name, NOTES, None).await.expect("opens an empty database without a key");
    let key = app_key().await;
    let sealed = open_sealed(&name, NOTES, Some(&key)).await.expect("encrypts the empty database");
    let refused = reject(plain.collection("notes".into()).unwrap().put(json(r#"{"id":"p","body":"in clear?"}"#)), "ENCRYPTION_MISMATCH").await;
    assert!(refused.contains("encrypted"), "{refused}");
    resolve(sealed.collection("notes".into()).unwrap().put(json(r#"{"id":"s","body":"sealed body"}"#))).await;
    plain.close();
    sealed.close();
    let raw = raw_contents(&name).await;
    assert!(!raw.contains("in clear?") && !raw.contains("sealed body"), "{raw}");
    delete_db(&name).await;
}
