//! Runs the push engine in the browser: one task per open database that calls `PushEngine::step`
//! and sleeps until the step's answer says to go on — a local write (debounced), `online`, the
//! page becoming visible, a timer (backoff or the periodic push), `db.sync()`, or resume.
//!
//! The engine is owned by that task and never shared, so no `RefCell` borrow is held across an
//! `.await`. Everything the JavaScript side touches (status, listeners, `sync()` waiters, wake-up)
//! lives in `SyncShared`, whose borrows are all short and never span a call into JavaScript.
//! Events reach listeners from a microtask after the step that produced them, never inside an
//! IndexedDB transaction, and an exception in a listener is reported and swallowed.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use js_sys::{Function, Promise};
use serde_json::json;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{spawn_local, JsFuture};

use super::conflicts::ConflictPolicy;
use super::coordination::{Coordination, Coordinator};
use super::error::wharf_error;
use super::global::{now_ms, random_seed, report_callback_error};
use super::store::{deferred, LocalStore};
use super::sync_io::{is_online, BrowserIo};
use crate::core::engine::{PushEngine, Step};
use crate::core::pull::{pull_all, unstorable, PullError};
use crate::core::retry::parse_retry_after;
use crate::core::status::{PushStats, SyncEvent, SyncState, SyncStatus};
use crate::core::sync_options::SyncOptions;
use crate::core::{ErrorCode, OpIdGenerator};

#[wasm_bindgen(module = "/src/platform/js/live.js")]
extern "C" {
    #[wasm_bindgen(js_name = startLive)]
    fn start_live(base: &str, get_token: &JsValue, on_poke: &Function, silence_ms: f64) -> Function;
}

/// The server pings every 15 s by default; three silent periods mean the socket is dead.
const LIVE_SILENCE_MS: f64 = 50_000.0;

#[wasm_bindgen(module = "/src/platform/js/triggers.js")]
extern "C" {
    #[wasm_bindgen(js_name = watchTriggers)]
    fn watch_triggers(on_trigger: &Function) -> Function;
    /// `[promise, wake]`.
    fn sleeper(ms: Option<f64>) -> js_sys::Array;
    fn later(ms: f64, callback: &Function) -> Function;
    #[wasm_bindgen(js_name = registerBackgroundSync)]
    pub fn register_background_sync(tag: &str) -> Promise;
}

/// The kinds of event a listener can subscribe to (`SyncEvent::name`).
pub const EVENT_KINDS: [&str; 5] = ["status", "start", "end", "deadLetter", "conflict"];

struct Listener {
    id: u32,
    kind: &'static str,
    callback: Function,
}

/// A pending `db.sync()`: settled by the first step that started after it was asked for.
struct Waiter {
    after_step: u64,
    resolve: Function,
    reject: Function,
    /// Asked by another context (served here because this one leads).
    remote: bool,
}

/// The part of the sync loop that JavaScript-facing code may touch.
pub struct SyncShared {
    push_interval_ms: u32,
    debounce_ms: u32,
    kicked: Cell<bool>,
    wake: RefCell<Option<Function>>,
    paused: Cell<bool>,
    closed: Cell<bool>,
    /// `sync()` was called: forget an `auth` failure before the next step.
    explicit: Cell<bool>,
    steps_started: Cell<u64>,
    /// A trigger asked for a pull (start-up, online, visible, `pull()`, a push that landed).
    want_pull: Cell<bool>,
    pulls_started: Cell<u64>,
    pull_waiters: RefCell<Vec<Waiter>>,
    status: RefCell<SyncStatus>,
    stats: Cell<PushStats>,
    listeners: RefCell<Vec<Listener>>,
    next_listener: Cell<u32>,
    waiters: RefCell<Vec<Waiter>>,
    events: RefCell<Vec<(&'static str, String)>>,
    flush_scheduled: Cell<bool>,
    cancel_debounce: RefCell<Option<Function>>,
    debounce_fire: RefCell<Option<Closure<dyn FnMut()>>>,
    pull_enabled: bool,
    /// Set once at start; `None` only before that.
    coordinator: RefCell<Option<Coordinator>>,
    /// The leader's last status (JSON), shown while this context follows.
    remote_status: RefCell<Option<String>>,
}

impl SyncShared {
    fn new(options: &SyncOptions) -> Rc<SyncShared> {
        let shared = Rc::new(SyncShared {
            push_interval_ms: options.push_interval_ms,
            debounce_ms: options.debounce_ms,
            kicked: Cell::new(true),
            wake: RefCell::default(),
            paused: Cell::new(false),
            closed: Cell::new(false),
            explicit: Cell::new(false),
            steps_started: Cell::new(0),
            want_pull: Cell::new(true),
            pulls_started: Cell::new(0),
            pull_waiters: RefCell::default(),
            status: RefCell::new(SyncStatus { online: is_online(), ..SyncStatus::default() }),
            stats: Cell::default(),
            listeners: RefCell::default(),
            next_listener: Cell::new(0),
            waiters: RefCell::default(),
            events: RefCell::default(),
            flush_scheduled: Cell::new(false),
            cancel_debounce: RefCell::default(),
            debounce_fire: RefCell::default(),
            pull_enabled: options.pull,
            coordinator: RefCell::default(),
            remote_status: RefCell::default(),
        });
        let weak = Rc::downgrade(&shared);
        let fire = Closure::<dyn FnMut()>::new(move || {
            if let Some(shared) = weak.upgrade() {
                shared.cancel_debounce.borrow_mut().take();
                shared.kick();
            }
        });
        *shared.debounce_fire.borrow_mut() = Some(fire);
        shared
    }

    /// Wakes the loop now (or makes its next sleep return at once).
    pub fn kick(&self) {
        self.kicked.set(true);
        let wake = self.wake.borrow_mut().take();
        if let Some(wake) = wake {
            let _ = wake.call1(&JsValue::UNDEFINED, &JsValue::from_str("kick"));
        }
    }

    fn coordinator(&self) -> Option<Coordinator> {
        self.coordinator.borrow().clone()
    }

    /// The coordinator while another context holds the role (and drains).
    fn leader_elsewhere(&self) -> Option<Coordinator> {
        self.coordinator().filter(|coordinator| !coordinator.holds())
    }

    /// Whether the loop should step now.
    pub fn is_leading(&self) -> bool {
        self.coordinator().map_or(true, |coordinator| coordinator.is_leading())
    }

    /// A local write committed here: wake the drainer, wherever it is.
    pub fn on_write_here(&self) {
        match self.leader_elsewhere() {
            Some(coordinator) => coordinator.kick(),
            None => self.on_local_write(),
        }
    }

    /// A local write committed: push after `debounceMs`, so a burst of writes makes one request.
    pub fn on_local_write(&self) {
        if self.debounce_ms == 0 {
            return self.kick();
        }
        if self.cancel_debounce.borrow().is_some() {
            return;
        }
        let cancel = {
            let fire = self.debounce_fire.borrow();
            let Some(fire) = fire.as_ref() else { return };
            later(f64::from(self.debounce_ms), fire.as_ref().unchecked_ref())
        };
        *self.cancel_debounce.borrow_mut() = Some(cancel);
    }

    /// The status as JSON: this context's own, or the leader's while following (unless paused).
    pub fn status_json(&self) -> String {
        if !self.paused.get() && self.leader_elsewhere().is_some() {
            if let Some(remote) = self.remote_status.borrow().clone() {
                return remote;
            }
        }
        serde_json::to_string(&*self.status.borrow()).unwrap_or_default()
    }

    /// `"leader"` or `"follower"`.
    pub fn role(&self) -> &'static str {
        if self.leader_elsewhere().is_some() {
            "follower"
        } else {
            "leader"
        }
    }

    pub fn stats(&self) -> PushStats {
        self.stats.get()
    }

    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Records an engine event and schedules its delivery to listeners.
    pub fn publish(self: &Rc<Self>, event: SyncEvent) {
        if let SyncEvent::Status(status) = &event {
            *self.status.borrow_mut() = status.clone();
        }
        self.events.borrow_mut().push(event.to_json());
        if !self.flush_scheduled.replace(true) {
            let shared = Rc::clone(self);
            spawn_local(async move { shared.deliver_events() });
        }
    }

    /// An event the leader published, heard by this follower: delivered like its own.
    pub fn publish_remote(self: &Rc<Self>, kind: &str, json: String) {
        let Some(kind) = EVENT_KINDS.iter().find(|k| **k == kind) else { return };
        if *kind == "status" {
            *self.remote_status.borrow_mut() = Some(json.clone());
        }
        self.events.borrow_mut().push((kind, json));
        if !self.flush_scheduled.replace(true) {
            let shared = Rc::clone(self);
            spawn_local(async move { shared.deliver_events() });
        }
    }

    fn deliver_events(&self) {
        self.flush_scheduled.set(false);
        let events = std::mem::take(&mut *self.events.borrow_mut());
        if let Some(coordinator) = self.coordinator().filter(Coordinator::holds) {
            let pairs: js_sys::Array = events
                .iter()
                .map(|(kind, json)| js_sys::Array::of2(&JsValue::from_str(kind), &JsValue::from_str(json)))
                .collect();
            if pairs.length() > 0 {
                coordinator.broadcast(&pairs);
            }
        }
        for (kind, payload) in events {
            let callbacks: Vec<Function> =
                self.listeners.borrow().iter().filter(|l| l.kind == kind).map(|l| l.callback.clone()).collect();
            if callbacks.is_empty() {
                continue;
            }
            let value = js_sys::JSON::parse(&payload).unwrap_or(JsValue::NULL);
            for callback in callbacks {
                if let Err(error) = callback.call1(&JsValue::UNDEFINED, &value) {
                    report_callback_error(&error);
                }
            }
        }
    }

    pub fn add_listener(&self, kind: &'static str, callback: Function) -> u32 {
        let id = self.next_listener.get().wrapping_add(1);
        self.next_listener.set(id);
        self.listeners.borrow_mut().push(Listener { id, kind, callback });
        id
    }

    pub fn remove_listener(&self, id: u32) {
        self.listeners.borrow_mut().retain(|l| l.id != id);
    }

    /// A promise for `db.sync()`: it resolves with `{ pending, deadLetters, conflicts }` once a
    /// step that started after this call finds nothing left to send, and rejects with `OFFLINE`,
    /// `AUTH`, `STORAGE`, `PAUSED` or `CLOSED` when the attempt definitively failed.
    pub fn sync(&self) -> Promise {
        if let Some(rejected) = self.refused() {
            return rejected;
        }
        match self.leader_elsewhere() {
            Some(coordinator) => coordinator.request("sync"),
            None => self.wait_for(&self.waiters, self.steps_started.get(), &self.explicit, false),
        }
    }

    /// A follower's request, run here because this context leads.
    pub fn serve(&self, kind: &str) -> Promise {
        match kind {
            "sync" => self.wait_for(&self.waiters, self.steps_started.get(), &self.explicit, true),
            _ => self.pull_here(true),
        }
    }

    /// This context stopped leading: its pending `sync()`/`pull()` calls go to the new leader.
    pub fn forward_waiters(&self) {
        let Some(coordinator) = self.leader_elsewhere() else { return };
        let waiting = [
            ("sync", std::mem::take(&mut *self.waiters.borrow_mut())),
            ("pull", std::mem::take(&mut *self.pull_waiters.borrow_mut())),
        ];
        for (kind, waiters) in waiting {
            for waiter in waiters {
                let promise = coordinator.request(kind);
                if let Ok(then) = js_sys::Reflect::get(&promise, &JsValue::from_str("then")) {
                    let _ = Function::from(then).call2(&promise, &waiter.resolve, &waiter.reject);
                }
            }
        }
    }

    /// The rejection for `sync()`/`pull()` in a closed or paused context.
    fn refused(&self) -> Option<Promise> {
        if self.closed.get() {
            return Some(Promise::reject(&wharf_error(ErrorCode::Closed, "the database is closed")));
        }
        if self.paused.get() {
            return Some(Promise::reject(&wharf_error(ErrorCode::Paused, "sync is paused; call resumeSync() first")));
        }
        None
    }

    /// A promise for `db.pull()`: settled by the first pull that started after it was asked for.
    pub fn pull(&self) -> Promise {
        if !self.pull_enabled && !self.closed.get() {
            let message = "sync.direction is \"push\": nothing is pulled";
            return Promise::reject(&wharf_error(ErrorCode::NotConfigured, message));
        }
        if let Some(rejected) = self.refused() {
            return rejected;
        }
        match self.leader_elsewhere() {
            Some(coordinator) => coordinator.request("pull"),
            None => self.pull_here(false),
        }
    }

    fn pull_here(&self, remote: bool) -> Promise {
        if !self.pull_enabled {
            let message = "the drainer's sync.direction is \"push\": nothing is pulled";
            return Promise::reject(&wharf_error(ErrorCode::NotConfigured, message));
        }
        self.wait_for(&self.pull_waiters, self.pulls_started.get(), &self.want_pull, remote)
    }

    /// Registers a waiter settled by a step (or pull) numbered above `started`, raises `wanted`
    /// and wakes the loop; rejects at once when closed or paused.
    fn wait_for(&self, waiters: &RefCell<Vec<Waiter>>, started: u64, wanted: &Cell<bool>, remote: bool) -> Promise {
        if let Some(rejected) = self.refused() {
            return rejected;
        }
        let (promise, resolve, reject) = deferred();
        waiters.borrow_mut().push(Waiter { after_step: started, resolve, reject, remote });
        wanted.set(true);
        self.kick();
        promise
    }

    /// Asks for a pull at the next idle moment (a trigger other than a local write).
    pub fn request_pull(&self) {
        self.want_pull.set(true);
        self.kick();
    }

    fn settle_pull_waiters(&self, pull: u64, outcome: Result<JsValue, JsValue>) {
        Self::settle(&self.pull_waiters, pull, outcome);
    }

    fn settle_waiters(&self, step: u64, outcome: Result<JsValue, JsValue>) {
        Self::settle(&self.waiters, step, outcome);
    }

    fn settle(waiters: &RefCell<Vec<Waiter>>, step: u64, outcome: Result<JsValue, JsValue>) {
        let due: Vec<Waiter> = {
            let mut waiters = waiters.borrow_mut();
            let (due, later): (Vec<Waiter>, Vec<Waiter>) = waiters.drain(..).partition(|w| w.after_step < step);
            *waiters = later;
            due
        };
        for waiter in due {
            let _ = match &outcome {
                Ok(value) => waiter.resolve.call1(&JsValue::UNDEFINED, value),
                Err(error) => waiter.reject.call1(&JsValue::UNDEFINED, error),
            };
        }
    }

    /// Pauses or resumes this context; a paused context does not drain for the others either.
    pub fn set_paused(&self, paused: bool) {
        self.paused.set(paused);
        if paused {
            // This context's own calls fail with PAUSED; other contexts' go to the next leader.
            let paused_error = || wharf_error(ErrorCode::Paused, "sync was paused");
            for waiters in [&self.waiters, &self.pull_waiters] {
                let local: Vec<Waiter> = {
                    let mut all = waiters.borrow_mut();
                    let (remote, local) = all.drain(..).partition(|w| w.remote);
                    *all = remote;
                    local
                };
                for waiter in local {
                    let _ = waiter.reject.call1(&JsValue::UNDEFINED, &paused_error());
                }
            }
        }
        if let Some(coordinator) = self.coordinator() {
            coordinator.set_eligible(!paused);
        }
        self.kick();
    }

    /// Stops the loop for good: pending `sync()` calls reject with `CLOSED`.
    pub fn close(&self) {
        if self.closed.replace(true) {
            return;
        }
        if let Some(cancel) = self.cancel_debounce.borrow_mut().take() {
            let _ = cancel.call0(&JsValue::UNDEFINED);
        }
        self.settle_waiters(u64::MAX, Err(wharf_error(ErrorCode::Closed, "the database was closed")));
        self.settle_pull_waiters(u64::MAX, Err(wharf_error(ErrorCode::Closed, "the database was closed")));
        self.listeners.borrow_mut().clear();
        self.kick();
    }

    /// Sleeps until `ms` passed (forever if `None`) or `kick` is called.
    async fn sleep(&self, ms: Option<f64>) {
        if self.kicked.get() || self.closed.get() {
            return;
        }
        let pair = sleeper(ms);
        *self.wake.borrow_mut() = pair.get(1).dyn_into::<Function>().ok();
        let _ = JsFuture::from(Promise::from(pair.get(0))).await;
        self.wake.borrow_mut().take();
    }
}

/// The handle a `Database` keeps: dropping it (or `close`) stops the loop and every listener.
pub struct SyncDriver {
    shared: Rc<SyncShared>,
    store: Rc<LocalStore>,
    stop_triggers: Function,
    _on_trigger: Closure<dyn FnMut(String)>,
    coordination: Coordination,
}

/// The live WebSocket (`js/live.js`) and the callbacks it holds; closed on drop.
pub struct LiveChannel {
    stop: Function,
    _on_poke: Closure<dyn FnMut(String)>,
}

impl Drop for LiveChannel {
    fn drop(&mut self) {
        let _ = self.stop.call0(&JsValue::UNDEFINED);
    }
}

impl LiveChannel {
    pub fn start(shared: &Rc<SyncShared>, options: &SyncOptions, get_token: Option<&Function>) -> LiveChannel {
        let weak = Rc::downgrade(shared);
        let on_poke = Closure::<dyn FnMut(String)>::new(move |_cursor: String| {
            if let Some(shared) = weak.upgrade() {
                shared.request_pull();
            }
        });
        let token = get_token.map_or(JsValue::UNDEFINED, |f| f.clone().into());
        let stop = start_live(&options.url, &token, on_poke.as_ref().unchecked_ref(), LIVE_SILENCE_MS);
        LiveChannel { stop, _on_poke: on_poke }
    }
}

impl SyncDriver {
    /// Starts syncing `store` with the server `options` name.
    pub fn start(
        store: Rc<LocalStore>,
        options: SyncOptions,
        get_token: Option<Function>,
        resolvers: Vec<(Option<String>, Function)>,
    ) -> SyncDriver {
        let shared = SyncShared::new(&options);
        let weak: Weak<SyncShared> = Rc::downgrade(&shared);
        let on_trigger = Closure::<dyn FnMut(String)>::new(move |name: String| {
            if let Some(shared) = weak.upgrade() {
                if name == "offline" {
                    shared.kick();
                } else {
                    shared.request_pull();
                }
            }
        });
        let stop_triggers = watch_triggers(on_trigger.as_ref().unchecked_ref());
        let weak = Rc::downgrade(&shared);
        store.set_commit_hook(Some(Rc::new(move || {
            if let Some(shared) = weak.upgrade() {
                shared.on_write_here();
            }
        })));
        let context_id = format!("{:016x}", random_seed());
        let coordination = Coordination::start(&shared, &store, &options, get_token.as_ref(), &context_id);
        *shared.coordinator.borrow_mut() = Some(coordination.coordinator().clone());
        let policy = ConflictPolicy { rules: options.conflicts.clone(), resolvers };
        let io = BrowserIo::new(Rc::clone(&store), Rc::clone(&shared), &options, get_token, policy, random_seed());
        io.set_context_id(context_id);
        spawn_local(run(io, options));
        SyncDriver { shared, store, stop_triggers, _on_trigger: on_trigger, coordination }
    }

    pub fn shared(&self) -> &Rc<SyncShared> {
        &self.shared
    }

    pub fn close(&self) {
        self.store.set_commit_hook(None);
        let _ = self.stop_triggers.call0(&JsValue::UNDEFINED);
        self.shared.close();
        self.coordination.stop();
    }
}

impl Drop for SyncDriver {
    fn drop(&mut self) {
        self.close();
    }
}

/// The sooner of two optional waits.
fn earliest(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// When the next pull is due: `pullIntervalMs` after the last one, or sooner after a failure
/// (with the push retry policy's backoff).
struct PullSchedule {
    next_at: f64,
    failures: u32,
}

impl PullSchedule {
    fn new() -> PullSchedule {
        PullSchedule { next_at: 0.0, failures: 0 }
    }

    async fn run(&mut self, io: &BrowserIo, shared: &Rc<SyncShared>, options: &SyncOptions, max_pages: u32) {
        let number = shared.pulls_started.get() + 1;
        shared.pulls_started.set(number);
        let schema = io.store.schema();
        let key_path = |name: &str| schema.position(name).ok().map(|i| &schema.collections[i].key_path);
        let outcome =
            pull_all(io, options.pull_limit as usize, max_pages, |changes| unstorable(changes, key_path)).await;
        let now = now_ms();
        match outcome {
            Ok(summary) => {
                self.failures = 0;
                self.next_at = if options.pull_interval_ms == 0 {
                    f64::INFINITY
                } else {
                    now + f64::from(options.pull_interval_ms)
                };
                if summary.pages == max_pages {
                    shared.want_pull.set(true); // more to come: go on after the next push step
                }
                let value = json!({"pages": summary.pages, "applied": summary.applied, "skipped": summary.skipped, "conflicts": summary.conflicts, "removed": summary.removed,
                                   "invalid": summary.invalid, "cursor": summary.cursor});
                shared
                    .settle_pull_waiters(number, Ok(js_sys::JSON::parse(&value.to_string()).unwrap_or(JsValue::NULL)));
            }
            Err(error) => {
                self.failures = self.failures.saturating_add(1);
                let retry_after = match &error {
                    PullError::Http { retry_after: Some(header), .. } => parse_retry_after(header, now),
                    _ => None,
                };
                let delay = options.engine.retry.delay_ms(self.failures, js_sys::Math::random(), retry_after);
                self.next_at = now + delay as f64;
                let code = match &error {
                    PullError::Http { status: 401 | 403, .. } => ErrorCode::Auth,
                    PullError::Http { .. } | PullError::Protocol(_) => ErrorCode::Server,
                    PullError::Network(_) | PullError::Timeout => ErrorCode::Network,
                    PullError::Storage(_) => ErrorCode::Storage,
                };
                shared.settle_pull_waiters(number, Err(wharf_error(code, &error.to_string())));
            }
        }
    }
}

/// Pages per pull before the loop checks the outbox again (local writes wait at most this long).
const MAX_PAGES_PER_PULL: u32 = 20;
/// Pages per pull while a push retry is scheduled.
const PAGES_PER_PULL_WHILE_BACKING_OFF: u32 = 2;

fn summary(status: &SyncStatus) -> JsValue {
    let value = json!({"pending": status.pending, "deadLetters": status.dead_letters, "conflicts": status.conflicts});
    js_sys::JSON::parse(&value.to_string()).unwrap_or(JsValue::NULL)
}

fn failed(code: ErrorCode, status: &SyncStatus, fallback: &str) -> JsValue {
    let message = status.last_error.as_ref().map_or_else(|| fallback.to_owned(), |e| e.message.clone());
    wharf_error(code, &message)
}

/// The loop: load the client id, then step and sleep until closed.
async fn run(io: BrowserIo, options: SyncOptions) {
    let shared = Rc::clone(&io.shared);
    let interval = (options.push_interval_ms > 0).then_some(f64::from(shared.push_interval_ms));
    let client_id = loop {
        if shared.closed.get() {
            return;
        }
        shared.kicked.set(false);
        let fresh = OpIdGenerator::new(random_seed()).next_id(now_ms());
        match io.client_id(fresh.as_str()).await {
            Ok(id) => break id,
            Err(error) => {
                let step = shared.steps_started.get() + 1;
                shared.settle_waiters(step, Err(error.to_js()));
                shared.sleep(interval).await;
            }
        }
    };
    let mut engine = PushEngine::new(client_id, options.engine);
    // After `auth`, only an explicit `sync()` tries again: writes and timers would only collect
    // more 401s with a token the app has not replaced yet.
    let mut waiting_for_auth = false;
    let mut acked_at_last_pull = 0;
    let mut conflicts_seen = 0;
    let mut conflict_failures = 0u32;
    let mut next_conflict_try = 0.0;
    let mut pull = PullSchedule::new();
    loop {
        if shared.closed.get() {
            return;
        }
        if shared.paused.get() {
            if engine.status().state != SyncState::Paused {
                engine.set_paused(&io, true);
            }
            shared.settle_waiters(u64::MAX, Err(wharf_error(ErrorCode::Paused, "sync was paused")));
            shared.settle_pull_waiters(u64::MAX, Err(wharf_error(ErrorCode::Paused, "sync was paused")));
            shared.kicked.set(false);
            if let Ok(counts) = io.counts().await {
                engine.observe_counts(&io, counts);
            }
            shared.sleep(None).await;
            continue;
        }
        if engine.status().state == SyncState::Paused {
            engine.set_paused(&io, false);
        }
        if !shared.is_leading() {
            // Another context drains; this one wakes when it becomes the leader.
            shared.kicked.set(false);
            if let Some(coordinator) = shared.coordinator() {
                coordinator.idle();
            }
            shared.sleep(None).await;
            continue;
        }
        if shared.explicit.replace(false) {
            engine.reset_auth();
            waiting_for_auth = false;
            next_conflict_try = 0.0; // a resolver that failed before gets another chance now
        }
        shared.kicked.set(false);
        if waiting_for_auth {
            shared.sleep(None).await;
            continue;
        }
        let step_number = shared.steps_started.get() + 1;
        shared.steps_started.set(step_number);
        let step = if options.push { engine.step(&io).await } else { Step::Idle };
        shared.stats.set(engine.stats());
        // Held conflicts: resolved as soon as the server reports them, and retried with backoff
        // while any stay held (a resolver failed, or they were left by an earlier session).
        let held = engine.status().conflicts > 0;
        if engine.stats().conflicts > conflicts_seen || (held && now_ms() >= next_conflict_try) {
            conflicts_seen = engine.stats().conflicts;
            if io.resolve_held().await.is_ok_and(|n| n > 0) {
                conflict_failures = 0;
                continue; // push the resolutions
            }
            conflict_failures = conflict_failures.saturating_add(1);
            let delay = options.engine.retry.delay_ms(conflict_failures, js_sys::Math::random(), None);
            next_conflict_try = now_ms() + delay as f64;
        }
        let conflict_wait = held.then(|| (next_conflict_try - now_ms()).max(0.0));
        if engine.stats().acked > acked_at_last_pull {
            // What just landed may have changed server versions other clients' changes sit on.
            acked_at_last_pull = engine.stats().acked;
            shared.want_pull.set(true);
        }
        let status = engine.status();
        let wait = match step {
            Step::Progress => continue,
            Step::Idle => {
                shared.settle_waiters(step_number, Ok(summary(status)));
                let now = now_ms();
                if options.pull && (shared.want_pull.get() || now >= pull.next_at) {
                    shared.want_pull.set(false);
                    pull.run(&io, &shared, &options, MAX_PAGES_PER_PULL).await;
                    continue;
                }
                earliest(earliest(interval, options.pull.then(|| (pull.next_at - now).max(0.0))), conflict_wait)
            }
            Step::WaitUntil(at) => {
                // Pushing backs off; pulling need not wait for it, but takes few pages at a time
                // so the retry goes out when it is due.
                let now = now_ms();
                if options.pull && (shared.want_pull.get() || now >= pull.next_at) {
                    shared.want_pull.set(false);
                    pull.run(&io, &shared, &options, PAGES_PER_PULL_WHILE_BACKING_OFF).await;
                }
                earliest(Some((at - now_ms()).max(0.0)), options.pull.then(|| (pull.next_at - now_ms()).max(0.0)))
            }
            Step::Offline => {
                shared.settle_waiters(step_number, Err(wharf_error(ErrorCode::Offline, "the browser is offline")));
                shared.settle_pull_waiters(u64::MAX, Err(wharf_error(ErrorCode::Offline, "the browser is offline")));
                if let Ok(counts) = io.counts().await {
                    engine.observe_counts(&io, counts);
                }
                None
            }
            Step::AuthRequired => {
                waiting_for_auth = true;
                shared
                    .settle_waiters(step_number, Err(failed(ErrorCode::Auth, status, "the server refused the token")));
                None
            }
            Step::StorageFailed => {
                shared.settle_waiters(step_number, Err(failed(ErrorCode::Storage, status, "the outbox failed")));
                interval
            }
        };
        shared.sleep(wait).await;
    }
}
