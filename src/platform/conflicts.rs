//! Resolves conflicts in the browser: loads the local side of a document, lets the collection's
//! strategy (or the application's async resolver) choose, and stores the outcome in one
//! transaction (`js/conflicts.js`). The decisions are `core::conflict`'s, the same functions the
//! native convergence test drives.
//!
//! A resolution is only stored if no local write to the document came in while the resolver ran
//! (the newest queued op is still the one it saw); otherwise it starts over with the new state.
//! Every conflict is reported through `onConflict`, also when the resolver fails: the local ops
//! then stay queued and held, and the next sync tries again. Nothing is dropped silently.

use js_sys::{Function, Promise};
use serde_json::{json, Value};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::IdbDatabase;

use super::changes::ChangeHub;
use super::store::key_to_js;
use super::sync_io::{describe, failure, settled, BrowserIo};
use crate::core::conflict::{decide, settle, Choice, Conflict, Outcome, Resolution, Strategy};
use crate::core::engine::StorageFailure;
use crate::core::status::{ConflictReport, SyncEvent};
use crate::core::sync_options::ConflictRules;
use crate::core::{hlc, key_of, parse_json, wire, Key};

#[wasm_bindgen(module = "/src/platform/js/conflicts.js")]
extern "C" {
    #[wasm_bindgen(js_name = askResolver)]
    fn ask_resolver_js(resolver: &Function, context: &JsValue, ms: f64) -> Promise;
    #[wasm_bindgen(js_name = heldConflicts, catch)]
    fn held_conflicts_js(db: &IdbDatabase) -> Result<Promise, JsValue>;
    #[wasm_bindgen(js_name = loadConflict, catch)]
    fn load_conflict_js(db: &IdbDatabase, collection: &str, key: &JsValue) -> Result<Promise, JsValue>;
    #[wasm_bindgen(js_name = commitResolution, catch)]
    fn commit_resolution_js(
        db: &IdbDatabase,
        collection: &str,
        key: &JsValue,
        last_seq: f64,
        plan: &str,
        hub: &ChangeHub,
    ) -> Result<Promise, JsValue>;
}

/// How long a resolver may take before the conflict is reported `unresolved` (and retried later).
const RESOLVER_TIMEOUT_MS: f64 = 30_000.0;

/// The server's side of a conflict.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteState {
    pub collection: String,
    pub key: Key,
    pub value: Option<Value>,
    pub version: u64,
    pub hlc: Option<String>,
}

/// `sync.conflicts`, with the resolver functions JSON could not carry.
pub struct ConflictPolicy {
    pub rules: ConflictRules,
    /// Resolver functions by collection; the one under `None` serves every collection.
    pub resolvers: Vec<(Option<String>, Function)>,
}

impl ConflictPolicy {
    fn resolver_for(&self, collection: &str) -> Option<&Function> {
        let named = self.resolvers.iter().find(|(name, _)| name.as_deref() == Some(collection));
        named.or_else(|| self.resolvers.iter().find(|(name, _)| name.is_none())).map(|(_, f)| f)
    }
}

/// The local side, as `loadConflict` reads it.
struct LocalState {
    local: Option<Value>,
    base: Option<Value>,
    last_seq: Option<f64>,
    local_hlc: Option<String>,
}

/// The documents whose ops the server answered `conflict` and are still held.
pub async fn held(io: &BrowserIo) -> Result<Vec<RemoteState>, StorageFailure> {
    let text = settled(io.store.on_connection(held_conflicts_js).await).await?;
    let value = wire::parse(&text.as_string().unwrap_or_default()).map_err(StorageFailure)?;
    let items = value.as_array().ok_or_else(|| failure("heldConflicts did not answer a list"))?;
    items
        .iter()
        .map(|item| {
            let m = wire::obj(item, "held conflict").map_err(StorageFailure)?;
            Ok(RemoteState {
                collection: wire::string(m, "collection").map_err(StorageFailure)?,
                key: Key::from_json(m.get("key").unwrap_or(&Value::Null)).map_err(failure)?,
                value: wire::some(m, "value").cloned(),
                version: wire::uint(m, "version").map_err(StorageFailure)?,
                hlc: m.get("hlc").and_then(Value::as_str).map(str::to_owned),
            })
        })
        .collect()
}

async fn load(io: &BrowserIo, remote: &RemoteState) -> Result<LocalState, StorageFailure> {
    let key = key_to_js(&remote.key);
    let text = settled(io.store.on_connection(|db| load_conflict_js(db, &remote.collection, &key)).await).await?;
    let value = wire::parse(&text.as_string().unwrap_or_default()).map_err(StorageFailure)?;
    let m = wire::obj(&value, "conflict").map_err(StorageFailure)?;
    Ok(LocalState {
        local: wire::some(m, "local").cloned(),
        base: m.get("base").and_then(Value::as_object).and_then(|b| wire::some(b, "b")).cloned(),
        last_seq: m.get("lastSeq").and_then(Value::as_f64),
        local_hlc: m.get("localHlc").and_then(Value::as_str).map(str::to_owned),
    })
}

/// Asks the application's resolver; its answer is `"local"`, `"remote"`, a document or `null`.
async fn ask(resolver: &Function, context: &Value) -> Result<Choice, String> {
    let argument = js_sys::JSON::parse(&context.to_string()).map_err(describe)?;
    let answer = JsFuture::from(ask_resolver_js(resolver, &argument, RESOLVER_TIMEOUT_MS)).await.map_err(describe)?;
    match answer.as_string().as_deref() {
        Some("local") => return Ok(Choice::Local),
        Some("remote") => return Ok(Choice::Remote),
        Some(other) => {
            return Err(format!("the resolver answered {other:?}; expected \"local\", \"remote\", a document or null"))
        }
        None => {}
    }
    if answer.is_null() {
        return Ok(Choice::Value(None));
    }
    let text = js_sys::JSON::stringify(&answer).ok().and_then(|t| t.as_string());
    let text = text.ok_or("the resolver answered a value JSON cannot represent")?;
    parse_json(&text, "the resolver's document").map(|doc| Choice::Value(Some(doc))).map_err(|e| e.to_string())
}

/// What `commitResolution` stores: the record, the op to queue (if any), the versions entry.
fn plan(
    io: &BrowserIo,
    remote: &RemoteState,
    resolution: &Resolution,
    local_hlc: Option<&str>,
    keep_base: bool,
) -> String {
    let now = js_sys::Date::now();
    let entry = resolution.requeue.then(|| {
        let stamp = match (resolution.outcome, local_hlc) {
            (Outcome::Local, Some(stamp)) => stamp.to_owned(),
            _ => io.store.stamp(),
        };
        let mut entry = json!({
            "id": io.store.next_op_id(now).as_str(),
            "collection": remote.collection, "key": remote.key,
            "op": if resolution.value.is_some() { "put" } else { "delete" },
            "createdAt": now, "attempts": 0, "nextAttemptAt": now, "lastError": null, "hlc": stamp,
        });
        if let Some(doc) = &resolution.value {
            entry["value"] = doc.clone();
        }
        entry
    });
    let version = match keep_base {
        true => json!({ "v": remote.version, "b": remote.value }),
        false => json!(remote.version),
    };
    json!({ "value": resolution.value, "entry": entry, "version": version }).to_string()
}

/// One try at resolving: the conflict as loaded, and its report so far.
struct Attempt {
    conflict: Conflict,
    report: ConflictReport,
    last_seq: f64,
    local_stamp: Option<String>,
}

fn begin(
    remote: &RemoteState,
    state: LocalState,
    strategy: Strategy,
    client_id: &str,
    source: &'static str,
) -> Option<Attempt> {
    let last_seq = state.last_seq?;
    let conflict = Conflict {
        local: state.local.clone(),
        remote: remote.value.clone(),
        base: state.base.clone(),
        local_hlc: state.local_hlc.as_deref().map(|stamp| hlc::with_node(stamp, client_id)),
        remote_hlc: remote.hlc.clone(),
    };
    let report = ConflictReport {
        collection: remote.collection.clone(),
        key: remote.key.clone(),
        source,
        strategy: strategy.as_str(),
        outcome: "unresolved",
        local: state.local,
        remote: remote.value.clone(),
        base: state.base,
        value: None,
        remote_version: remote.version,
        error: None,
    };
    Some(Attempt { conflict, report, last_seq, local_stamp: state.local_hlc })
}

/// The resolver's argument.
fn context(attempt: &Attempt) -> Value {
    let r = &attempt.report;
    json!({ "collection": r.collection, "key": r.key, "local": r.local, "remote": r.remote, "base": r.base,
            "remoteVersion": r.remote_version })
}

/// Why the server's side cannot be stored as this document, if it cannot: a document of
/// another key, or not a document at all.
fn unusable(io: &BrowserIo, remote: &RemoteState) -> Option<String> {
    let schema = io.store.schema();
    let path = &schema.collections[schema.position(&remote.collection).ok()?].key_path;
    let doc = remote.value.as_ref()?;
    match key_of(doc, path) {
        Ok(key) if key == remote.key => None,
        _ => Some(format!("the server's document for {} is not a document with that key", remote.key.describe())),
    }
}

/// Checks a choice: a resolver's document must keep the document's key.
fn checked(io: &BrowserIo, remote: &RemoteState, choice: Result<Choice, String>) -> Result<Choice, String> {
    let schema = io.store.schema();
    let key_path = schema.position(&remote.collection).ok().map(|i| &schema.collections[i].key_path);
    match (choice?, key_path) {
        (Choice::Value(Some(doc)), Some(path)) if key_of(&doc, path).ok().as_ref() != Some(&remote.key) => {
            Err(format!("the resolver's document must keep the key {}", remote.key.describe()))
        }
        (choice, _) => Ok(choice),
    }
}

/// Resolves one conflict and reports it; returns whether a resolution was stored. A document
/// with nothing queued any more needs none.
pub async fn resolve(
    io: &BrowserIo,
    policy: &ConflictPolicy,
    client_id: &str,
    remote: RemoteState,
    source: &'static str,
) -> Result<bool, StorageFailure> {
    let strategy = policy.rules.strategy_for(&remote.collection);
    if let Some(problem) = unusable(io, &remote) {
        let state = load(io, &remote).await?;
        if let Some(mut attempt) = begin(&remote, state, strategy, client_id, source) {
            attempt.report.error = Some(problem);
            io.shared.publish(SyncEvent::Conflict(Box::new(attempt.report)));
        }
        return Ok(false);
    }
    for _ in 0..5 {
        let state = load(io, &remote).await?;
        let Some(mut attempt) = begin(&remote, state, strategy, client_id, source) else { return Ok(false) };
        let choice = match (decide(strategy, &attempt.conflict), policy.resolver_for(&remote.collection)) {
            (Some(choice), _) => Ok(choice),
            (None, Some(resolver)) => ask(resolver, &context(&attempt)).await,
            (None, None) => Err("no resolver function for this collection".to_owned()),
        };
        let choice = match checked(io, &remote, choice) {
            Ok(choice) => choice,
            Err(error) => {
                attempt.report.error = Some(error);
                io.shared.publish(SyncEvent::Conflict(Box::new(attempt.report)));
                return Ok(false);
            }
        };
        let resolution = settle(&attempt.conflict, choice);
        if let Some(stamp) = &remote.hlc {
            io.store.observe_stamp(stamp); // a merged value's new stamp must come after the remote's
        }
        let keep_base = policy.rules.keeps_base(&remote.collection);
        let plan = plan(io, &remote, &resolution, attempt.local_stamp.as_deref(), keep_base);
        match commit(io, &remote, attempt.last_seq, &plan).await?.as_deref() {
            Some("done") => {
                attempt.report.outcome = resolution.outcome.as_str();
                attempt.report.value = resolution.value;
                io.shared.publish(SyncEvent::Conflict(Box::new(attempt.report)));
                return Ok(true);
            }
            Some("outdated") => return Ok(false),
            _ => {} // "stale": a local write came in between; resolve again with it
        }
    }
    Err(failure("the document kept changing while its conflict was being resolved"))
}

/// Stores a resolution: `"done"`, `"stale"` (a local write came in between; nothing stored) or
/// `"outdated"` (a newer server version is known; nothing stored).
async fn commit(
    io: &BrowserIo,
    remote: &RemoteState,
    last_seq: f64,
    plan: &str,
) -> Result<Option<String>, StorageFailure> {
    let key = key_to_js(&remote.key);
    let hub = io.store.changes();
    let started = io.store.on_connection(|db| commit_resolution_js(db, &remote.collection, &key, last_seq, plan, hub));
    Ok(settled(started.await).await?.as_string())
}
