//! The push engine's ports in the browser: the outbox in IndexedDB (`Storage`), `fetch` with a
//! timeout and bearer token (`Transport`), `Date.now` and a seeded random source (`Clock`), and
//! `navigator.onLine` (`Connectivity`). Each storage step and each request is one call into
//! `js/sync_io.js`, with JSON text in and out.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::IdbDatabase;

use super::changes::ChangeHub;
use super::conflicts::{resolve, ConflictPolicy, RemoteState};
use super::error::StorageError;
use super::global::{global_property, now_ms};
use super::store::LocalStore;
use super::sync_driver::SyncShared;
use crate::core::conflict::pulled_change_conflicts;
use crate::core::engine::{
    Clock, Connectivity, Counts, Observer, OutboxWindow, Planner, Preparation, PushCall, Storage, StorageFailure,
    Transport, TransportReply,
};
use crate::core::id::SplitMix64;
use crate::core::pull::{Applied, PullPage, PullPort};
use crate::core::push::{Rebase, Settlement};
use crate::core::status::SyncEvent;
use crate::core::sync_options::SyncOptions;
use crate::core::{wire, OutboxEntry};

#[wasm_bindgen(module = "/src/platform/js/sync_io.js")]
extern "C" {
    #[wasm_bindgen(js_name = sameOrigin)]
    fn same_origin(url: &str) -> bool;
    #[wasm_bindgen(js_name = prepareBatch, catch)]
    fn prepare_batch_js(db: &IdbDatabase, limit: u32, plan: &Function, count: bool) -> Result<Promise, JsValue>;
    #[wasm_bindgen(js_name = settleBatch, catch)]
    fn settle_batch_js(db: &IdbDatabase, settlement: &str) -> Result<Promise, JsValue>;
    #[wasm_bindgen(js_name = countQueues, catch)]
    fn count_queues_js(db: &IdbDatabase) -> Result<Promise, JsValue>;
    #[wasm_bindgen(js_name = loadClientId, catch)]
    fn load_client_id_js(db: &IdbDatabase, fresh: &str) -> Result<Promise, JsValue>;
    #[wasm_bindgen(js_name = httpRequest)]
    fn http_request_js(url: &str, body: Option<String>, headers: &Object, timeout_ms: u32) -> Promise;
    #[wasm_bindgen(js_name = loadMeta, catch)]
    fn load_meta_js(db: &IdbDatabase, key: &str) -> Result<Promise, JsValue>;
    #[wasm_bindgen(js_name = applyPull, catch)]
    #[allow(clippy::too_many_arguments)]
    fn apply_pull_js(
        db: &IdbDatabase,
        scope: Vec<String>,
        body: &str,
        invalid: Vec<u32>,
        cursor_key: &str,
        keep_base: Vec<String>,
        stamp: &str,
        hub: &ChangeHub,
        seen: &JsValue,
    ) -> Result<Promise, JsValue>;
    #[wasm_bindgen(js_name = sweepUnseen, catch)]
    fn sweep_unseen_js(
        db: &IdbDatabase,
        scope: Vec<String>,
        seen: &js_sys::Set,
        hub: &ChangeHub,
    ) -> Result<Promise, JsValue>;
}

/// What `settleBatch` reads of a settlement: merge bases move only where a collection keeps them.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct SettlementWire<'a> {
    acked_ranges: &'a [(u64, u64)],
    updated: &'a [OutboxEntry],
    dead: &'a [crate::core::DeadLetter],
    rebase: Vec<&'a Rebase>,
}

struct WindowWire {
    entries: Vec<OutboxEntry>,
    sent_through: u64,
    complete: bool,
}

fn read_window(text: &str) -> Result<WindowWire, String> {
    let v = wire::parse(text)?;
    let m = wire::obj(&v, "window")?;
    Ok(WindowWire {
        entries: wire::array(m.get("entries").unwrap_or(&serde_json::Value::Null), "entries", wire::outbox_entry)?,
        sent_through: wire::uint(m, "sentThrough")?,
        complete: m.get("complete").and_then(serde_json::Value::as_bool).ok_or("missing or invalid field complete")?,
    })
}

/// Reads `httpRequest`'s answer: `["response", status, retryAfter, body]`, `["network",
/// message]` or `["timeout"]` (an array, so a large body is not escaped into JSON and back).
fn read_reply(reply: &JsValue) -> TransportReply {
    let parts: &js_sys::Array = reply.unchecked_ref();
    match parts.get(0).as_string().as_deref() {
        Some("response") => TransportReply::Response {
            status: parts.get(1).as_f64().map_or(0, |s| s as u16),
            retry_after: parts.get(2).as_string(),
            body: parts.get(3).as_string().unwrap_or_default(),
        },
        Some("timeout") => TransportReply::Timeout,
        _ => TransportReply::NetworkError(parts.get(1).as_string().unwrap_or_else(|| "the request failed".to_owned())),
    }
}

pub(crate) fn failure(error: impl std::fmt::Display) -> StorageFailure {
    StorageFailure(error.to_string())
}

/// What a started IndexedDB call (`store.on_connection(...)`) resolved with after commit.
pub(crate) async fn settled(started: Result<Promise, StorageError>) -> Result<JsValue, StorageFailure> {
    JsFuture::from(started.map_err(failure)?).await.map_err(|e| failure(StorageError::from_js(e)))
}

/// `(pending, exact, deadLetters)` as `prepareBatch` / `settleBatch` report them.
fn read_counts(text: Option<String>) -> Result<(Option<u64>, bool, u64), StorageFailure> {
    let v = wire::parse(&text.unwrap_or_default()).map_err(StorageFailure)?;
    let m = wire::obj(&v, "counts").map_err(StorageFailure)?;
    let pending = m.get("pending").and_then(serde_json::Value::as_u64);
    let exact = m.get("exact").and_then(serde_json::Value::as_bool).unwrap_or(false);
    Ok((pending, exact, wire::uint(m, "deadLetters").map_err(StorageFailure)?))
}

/// How often a draining engine counts the whole outbox (a scan in IndexedDB) for `pending`;
/// in between, `pending` is derived from what was settled.
const COUNT_EVERY_MS: f64 = 1_000.0;

/// The browser implementation of every engine port.
pub struct BrowserIo {
    pub store: Rc<LocalStore>,
    pub shared: Rc<SyncShared>,
    push_url: String,
    sync: SyncOptions,
    headers: Vec<(String, String)>,
    timeout_ms: u32,
    get_token: Option<Function>,
    token: RefCell<Option<String>>,
    rng: RefCell<SplitMix64>,
    pending: Cell<u64>,
    counted_at: Cell<f64>,
    client_id: RefCell<String>,
    /// Sent as `X-Wharf-Context` with every push to the same origin (diagnostics: which tab or
    /// worker pushed); empty otherwise.
    context_id: RefCell<String>,
    pub policy: ConflictPolicy,
    /// During a resync after `410`: the ids of the documents the full copy named so far.
    resync_seen: RefCell<Option<js_sys::Set>>,
}

impl BrowserIo {
    pub fn new(
        store: Rc<LocalStore>,
        shared: Rc<SyncShared>,
        options: &SyncOptions,
        get_token: Option<Function>,
        policy: ConflictPolicy,
        seed: u64,
    ) -> BrowserIo {
        BrowserIo {
            store,
            shared,
            push_url: options.push_url(),
            sync: options.clone(),
            headers: options.headers.clone(),
            timeout_ms: options.request_timeout_ms,
            get_token,
            token: RefCell::default(),
            rng: RefCell::new(SplitMix64::new(seed)),
            pending: Cell::new(0),
            counted_at: Cell::new(f64::NEG_INFINITY),
            client_id: RefCell::default(),
            context_id: RefCell::default(),
            policy,
            resync_seen: RefCell::default(),
        }
    }

    /// The persisted client id, created (from `fresh`) on first use. Also moves the write clock
    /// past the stamps stored by earlier sessions (the highest pulled, the newest queued).
    pub async fn client_id(&self, fresh: &str) -> Result<String, StorageError> {
        let promise = self.store.on_connection(|db| load_client_id_js(db, fresh)).await?;
        let found: js_sys::Array = JsFuture::from(promise).await.map_err(StorageError::from_js)?.unchecked_into();
        for stamp in [found.get(1), found.get(2)].iter().filter_map(JsValue::as_string) {
            self.store.observe_stamp(&stamp);
        }
        let id = found.get(0).as_string().unwrap_or_else(|| fresh.to_owned());
        *self.client_id.borrow_mut() = id.clone();
        Ok(id)
    }

    /// Resolves the conflicts the server reported on pushes that are still held.
    pub async fn resolve_held(&self) -> Result<u64, StorageFailure> {
        let client_id = self.client_id.borrow().clone();
        let mut resolved = 0;
        for remote in super::conflicts::held(self).await? {
            resolved += u64::from(resolve(self, &self.policy, &client_id, remote, "push").await?);
        }
        Ok(resolved)
    }

    /// Exact sizes of the outbox and the dead letters, for the status while nothing is sent.
    pub async fn counts(&self) -> Result<Counts, StorageFailure> {
        let counts = settled(self.store.on_connection(count_queues_js).await).await?;
        let (pending, _, dead_letters) = read_counts(counts.as_string())?;
        let pending = pending.unwrap_or(0);
        self.pending.set(pending);
        Ok(Counts { pending, dead_letters })
    }

    /// The bearer token, asking `getToken` when there is none yet or the last one was refused.
    async fn token(&self, refresh: bool) -> Result<Option<String>, String> {
        let Some(get_token) = &self.get_token else { return Ok(None) };
        let cached = self.token.borrow().clone();
        if let (Some(token), false) = (cached, refresh) {
            return Ok(Some(token));
        }
        let result = get_token.call0(&JsValue::UNDEFINED).map_err(describe)?;
        let value = JsFuture::from(Promise::resolve(&result)).await.map_err(describe)?;
        let token = value.as_string().filter(|t| !t.is_empty()).ok_or("getToken must resolve to a non-empty string")?;
        *self.token.borrow_mut() = Some(token.clone());
        Ok(Some(token))
    }

    /// Names this context in pushes to a server of the page's own origin (elsewhere a custom
    /// header would need the server's CORS consent, which servers that predate it lack).
    pub fn set_context_id(&self, id: String) {
        if same_origin(&self.push_url) {
            *self.context_id.borrow_mut() = id;
        }
    }

    fn request_headers(&self, json_body: bool, idempotency_key: Option<&str>, token: Option<&str>) -> Object {
        let headers = Object::new();
        let set = |name: &str, value: &str| {
            let _ = Reflect::set(&headers, &JsValue::from_str(name), &JsValue::from_str(value));
        };
        for (name, value) in &self.headers {
            set(name, value);
        }
        if json_body {
            set("Content-Type", "application/json");
        }
        if let Some(key) = idempotency_key {
            set("Idempotency-Key", key);
            let context = self.context_id.borrow().clone();
            if !context.is_empty() {
                set("X-Wharf-Context", &context);
            }
        }
        if let Some(token) = token {
            set("Authorization", &format!("Bearer {token}"));
        }
        headers
    }

    /// One request with the configured headers and token: a POST of `body`, or a GET without.
    async fn request(
        &self,
        url: &str,
        body: Option<&str>,
        idempotency_key: Option<&str>,
        refresh: bool,
    ) -> TransportReply {
        let token = match self.token(refresh).await {
            Ok(token) => token,
            // A token that cannot be obtained is treated like a refused one: bounded retries, then `auth`.
            Err(reason) => {
                let body = serde_json::json!({"protocol": 1, "code": "TOKEN", "message": format!("getToken failed: {reason}")});
                return TransportReply::Response { status: 401, retry_after: None, body: body.to_string() };
            }
        };
        let headers = self.request_headers(body.is_some(), idempotency_key, token.as_deref());
        match JsFuture::from(http_request_js(url, body.map(str::to_owned), &headers, self.timeout_ms)).await {
            Ok(reply) if js_sys::Array::is_array(&reply) => read_reply(&reply),
            _ => TransportReply::NetworkError("the request failed".to_owned()),
        }
    }
}

pub(crate) fn describe(error: JsValue) -> String {
    Reflect::get(&error, &JsValue::from_str("message"))
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| error.as_string())
        .unwrap_or_else(|| "unknown error".to_owned())
}

impl Storage for BrowserIo {
    async fn prepare(&self, window: usize, plan: Planner) -> Result<(Preparation, Counts), StorageFailure> {
        let decided: Rc<RefCell<Option<Result<Preparation, String>>>> = Rc::default();
        let callback = {
            let decided = Rc::clone(&decided);
            let mut plan = Some(plan);
            Closure::<dyn FnMut(String) -> String>::new(move |window_json: String| {
                let Some(plan) = plan.take() else { return "null".to_owned() };
                match read_window(&window_json) {
                    Ok(wire) => {
                        let window = OutboxWindow {
                            entries: wire.entries,
                            sent_through: wire.sent_through,
                            complete: wire.complete,
                        };
                        let preparation = plan(window);
                        let writes = serde_json::json!({
                            "remove": preparation.remove,
                            "rewrite": preparation.rewrite,
                            "sentThrough": preparation.sent_through,
                        });
                        *decided.borrow_mut() = Some(Ok(preparation));
                        writes.to_string()
                    }
                    Err(e) => {
                        *decided.borrow_mut() = Some(Err(format!("an outbox entry is unreadable: {e}")));
                        // Returning invalid JSON makes the transaction abort: nothing is written.
                        "!".to_owned()
                    }
                }
            })
        };
        let limit = u32::try_from(window).unwrap_or(u32::MAX);
        let function: &Function = callback.as_ref().unchecked_ref();
        let now = now_ms();
        let count = now - self.counted_at.get() >= COUNT_EVERY_MS;
        if count {
            self.counted_at.set(now);
        }
        let promise =
            self.store.on_connection(|db| prepare_batch_js(db, limit, function, count)).await.map_err(failure)?;
        let outcome = JsFuture::from(promise).await;
        let preparation = decided.borrow_mut().take();
        drop(callback);
        let counts = outcome.map_err(|e| failure(StorageError::from_js(e)))?;
        match preparation {
            Some(Ok(preparation)) => {
                let (reported, exact, dead_letters) = read_counts(counts.as_string())?;
                let reported = reported.unwrap_or(0);
                let pending = if exact { reported } else { reported.max(self.pending.get()) };
                self.pending.set(pending);
                Ok((preparation, Counts { pending, dead_letters }))
            }
            Some(Err(reason)) => Err(StorageFailure(reason)),
            None => Err(StorageFailure("the outbox transaction ended before it was read".to_owned())),
        }
    }

    async fn settle(&self, settlement: &Settlement) -> Result<Counts, StorageFailure> {
        let wire = SettlementWire {
            acked_ranges: &settlement.acked_ranges,
            updated: &settlement.updated,
            dead: &settlement.dead,
            rebase: settlement.rebase.iter().filter(|r| self.policy.rules.keeps_base(&r.collection)).collect(),
        };
        let json = serde_json::to_string(&wire).map_err(failure)?;
        let counts = settled(self.store.on_connection(|db| settle_batch_js(db, &json)).await).await?;
        let (_, _, dead_letters) = read_counts(counts.as_string())?;
        let settled = (settlement.acked.len() + settlement.dead.len()) as u64;
        let pending = self.pending.get().saturating_sub(settled);
        self.pending.set(pending);
        Ok(Counts { pending, dead_letters })
    }
}

impl Transport for BrowserIo {
    async fn push(&self, call: PushCall<'_>) -> TransportReply {
        self.request(&self.push_url, Some(call.body), Some(call.idempotency_key), call.refresh_token).await
    }
}

impl PullPort for BrowserIo {
    async fn load_cursor(&self) -> Result<String, StorageFailure> {
        let key = self.sync.cursor_key();
        let cursor = settled(self.store.on_connection(|db| load_meta_js(db, &key)).await).await?;
        Ok(cursor.as_string().unwrap_or_default())
    }

    async fn fetch(&self, cursor: &str, _limit: usize) -> TransportReply {
        let url = self.sync.pull_url(cursor);
        let reply = self.request(&url, None, None, false).await;
        match reply {
            // A refused token: ask `getToken` once more before giving up on this pull.
            TransportReply::Response { status: 401 | 403, .. } if self.get_token.is_some() => {
                self.request(&url, None, None, true).await
            }
            reply => reply,
        }
    }

    async fn start_resync(&self) -> Result<(), StorageFailure> {
        *self.resync_seen.borrow_mut() = Some(js_sys::Set::new(&JsValue::UNDEFINED));
        Ok(())
    }

    async fn caught_up(&self) -> Result<u64, StorageFailure> {
        let Some(seen) = self.resync_seen.borrow_mut().take() else { return Ok(0) };
        let scope = self.pulled_collections();
        let hub = self.store.changes();
        let removed =
            settled(self.store.on_connection(|db| sweep_unseen_js(db, scope.clone(), &seen, hub)).await).await?;
        Ok(removed.as_f64().unwrap_or(0.0) as u64)
    }

    async fn apply(&self, page: &PullPage, body: &str, invalid: &[usize]) -> Result<Applied, StorageFailure> {
        let mut scope: Vec<String> = Vec::new();
        for (i, change) in page.changes.iter().enumerate() {
            if !invalid.contains(&i) && !scope.contains(&change.collection) {
                scope.push(change.collection.clone());
            }
        }
        let keep_base: Vec<String> = scope.iter().filter(|name| self.policy.rules.keeps_base(name)).cloned().collect();
        for stamp in page.changes.iter().filter_map(|change| change.hlc.as_deref()) {
            self.store.observe_stamp(stamp);
        }
        let stamp = self.store.last_stamp();
        let invalid: Vec<u32> = invalid.iter().map(|&i| i as u32).collect();
        let cursor_key = self.sync.cursor_key();
        let started = self.store.on_connection(|db| {
            let hub = self.store.changes();
            let seen = self.resync_seen.borrow().as_ref().map_or(JsValue::NULL, |set| set.into());
            apply_pull_js(db, scope.clone(), body, invalid.clone(), &cursor_key, keep_base.clone(), &stamp, hub, &seen)
        });
        let outcome = settled(started.await).await?;
        let value = wire::parse(&outcome.as_string().unwrap_or_default()).map_err(StorageFailure)?;
        let fields = wire::obj(&value, "applied").map_err(StorageFailure)?;
        let mut applied =
            Applied { applied: wire::uint(fields, "applied").map_err(StorageFailure)?, skipped: 0, conflicts: 0 };
        let held = fields.get("held").and_then(serde_json::Value::as_array).cloned().unwrap_or_default();
        let client_id = self.client_id.borrow().clone();
        for item in held {
            let change = item.get("i").and_then(serde_json::Value::as_u64).and_then(|i| page.changes.get(i as usize));
            let Some(change) = change else { continue };
            let base_version = item.get("base").and_then(serde_json::Value::as_u64).unwrap_or(0);
            if !pulled_change_conflicts(change.version, change.hlc.as_deref(), base_version, &client_id) {
                applied.skipped += 1;
                continue;
            }
            let remote = RemoteState {
                collection: change.collection.clone(),
                key: change.key.clone(),
                value: change.value.clone(),
                version: change.version,
                hlc: change.hlc.clone(),
            };
            applied.conflicts += 1;
            resolve(self, &self.policy, &client_id, remote, "pull").await?;
        }
        Ok(applied)
    }
}

impl BrowserIo {
    /// The collections a full pull covers.
    fn pulled_collections(&self) -> Vec<String> {
        if self.sync.collections.is_empty() {
            self.store.schema().collections.iter().map(|c| c.name().to_owned()).collect()
        } else {
            self.sync.collections.clone()
        }
    }
}

impl Clock for BrowserIo {
    fn now_ms(&self) -> f64 {
        now_ms()
    }

    fn random(&self) -> f64 {
        self.rng.borrow_mut().next_f64()
    }
}

/// `navigator.onLine`; true where the scope has no navigator (it cannot tell).
pub fn is_online() -> bool {
    global_property("navigator")
        .and_then(|n| Reflect::get(&n, &JsValue::from_str("onLine")).ok())
        .and_then(|v| v.as_bool())
        .unwrap_or(true)
}

impl Connectivity for BrowserIo {
    fn is_online(&self) -> bool {
        is_online()
    }
}

impl Observer for BrowserIo {
    fn notify(&self, event: SyncEvent) {
        self.shared.publish(event);
    }
}
