// Helpers shared by the browser suites (included, not a test target of its own).

use js_sys::{Promise, Reflect, JSON};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wharf::api::{Collection, Database};

fn json(text: &str) -> JsValue {
    JSON::parse(text).expect("test JSON is valid")
}

fn prop(value: &JsValue, name: &str) -> JsValue {
    Reflect::get(value, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

fn set(target: &JsValue, name: &str, value: &JsValue) {
    Reflect::set(target, &JsValue::from_str(name), value).expect("set a property");
}

fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", (js_sys::Math::random() * 1e12) as u64)
}

const TODOS_SCHEMA: &str = r#"[{"name":"todos","keyPath":"id","indexes":[
    {"name":"by_rank","keyPath":"rank"},
    {"name":"by_tag","keyPath":"tags","multiEntry":true},
    {"name":"by_list_rank","keyPath":["list","rank"]}]}]"#;

/// `Wharf.open`: the promise of the database, awaited.
async fn open_database(options: JsValue) -> Result<Database, JsValue> {
    use wasm_bindgen::convert::TryFromJsValue;
    let db = JsFuture::from(Database::open(options)).await?;
    Database::try_from_js_value(db).map_err(|_| JsValue::from_str("Wharf.open resolved with something else"))
}

async fn open_with(name: &str, collections: &str) -> Result<Database, JsValue> {
    let options = json(&format!(r#"{{"name":"{name}","collections":{collections}}}"#));
    open_database(options).await
}

async fn open_todos(name: &str) -> Database {
    open_with(name, TODOS_SCHEMA).await.expect("open succeeds")
}

async fn resolve(promise: Promise) -> JsValue {
    match JsFuture::from(promise).await {
        Ok(value) => value,
        Err(e) => panic!("promise rejected: {}", describe(&e)),
    }
}

fn describe(error: &JsValue) -> String {
    format!("{} {}", prop(error, "code").as_string().unwrap_or_default(), prop(error, "message").as_string().unwrap_or_default())
}

/// Asserts `error` is a real Error named WharfError with `code`; returns its message.
fn expect_wharf_error(error: &JsValue, code: &str) -> String {
    assert!(error.is_instance_of::<js_sys::Error>(), "not an Error: {error:?}");
    assert_eq!(prop(error, "name").as_string().as_deref(), Some("WharfError"));
    assert_eq!(prop(error, "code").as_string().as_deref(), Some(code), "message: {}", describe(error));
    let message = prop(error, "message").as_string().unwrap_or_default();
    assert!(!message.is_empty());
    message
}

async fn reject(promise: Promise, code: &str) -> String {
    match JsFuture::from(promise).await {
        Ok(value) => panic!("expected {code}, resolved with {value:?}"),
        Err(e) => expect_wharf_error(&e, code),
    }
}

async fn number(promise: Promise) -> f64 {
    resolve(promise).await.as_f64().expect("a number")
}

/// (records in the collection, entries in the outbox)
async fn counts(db: &Database, collection: &Collection) -> (f64, f64) {
    (number(collection.count()).await, number(db.outbox().count()).await)
}

async fn delete_db(name: &str) {
    Database::delete_database(JsValue::from_str(name)).await.expect("delete succeeds");
}

fn todo(id: &str, rank: f64) -> JsValue {
    json(&format!(r#"{{"id":"{id}","title":"todo {id}","rank":{rank},"tags":["t{rank}"],"list":"inbox"}}"#))
}

fn stat(db: &Database, name: &str) -> f64 {
    prop(&db.stats(), name).as_f64().expect("a stat")
}

/// Counts calls to `IDBDatabase.prototype.transaction` until `stop()`.
struct TransactionCounter {
    prototype: JsValue,
    original: JsValue,
    counter: JsValue,
}

fn count_transactions() -> TransactionCounter {
    let class = Reflect::get(&js_sys::global(), &"IDBDatabase".into()).unwrap();
    let prototype = Reflect::get(&class, &"prototype".into()).unwrap();
    let original = Reflect::get(&prototype, &"transaction".into()).unwrap();
    let counter = json(r#"{"n":0}"#);
    let wrap = js_sys::Function::new_with_args(
        "original, counter",
        "return function (...args) { counter.n++; return original.apply(this, args); }",
    );
    let wrapped = wrap.call2(&JsValue::NULL, &original, &counter).unwrap();
    set(&prototype, "transaction", &wrapped);
    TransactionCounter { prototype, original, counter }
}

impl TransactionCounter {
    fn stop(self) -> f64 {
        set(&self.prototype, "transaction", &self.original);
        prop(&self.counter, "n").as_f64().unwrap()
    }
}

/// Whether `indexedDB.databases()` lists `name`.
async fn database_exists(name: &str) -> bool {
    let factory = Reflect::get(&js_sys::global(), &"indexedDB".into()).unwrap();
    let list: js_sys::Function = Reflect::get(&factory, &"databases".into()).unwrap().unchecked_into();
    let names: js_sys::Array = resolve(list.call0(&factory).unwrap().unchecked_into()).await.unchecked_into();
    names.iter().any(|info| prop(&info, "name").as_string().as_deref() == Some(name))
}

/// Whether this scope has `navigator.storage.estimate()` (WebKitGTK has no StorageManager at all).
fn storage_can_estimate() -> bool {
    prop(&prop(&prop(&js_sys::global(), "navigator"), "storage"), "estimate").is_function()
}
