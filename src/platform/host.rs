//! The host of one open database's replica in the browser: it feeds the core (`core::replica`)
//! what happens (a committed write, a response, online, a timer...) and performs what the core
//! asks for, through `js/io.js` (requests, timers, tokens, the resolver, listeners, promises)
//! and `js/idb.js` (transactions). One crossing of the boundary per step: the actions travel as
//! one JSON text. No decision is made here, and no `RefCell` borrow is held while JavaScript
//! runs: the replica is borrowed to decide, released, and only then are its actions performed.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Array, Function, Map, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;

use super::changes::ChangeHub;
use super::connection::{Connection, HostSlot};
use super::coordination::{Coordination, Coordinator};
use super::error::{message_of, wharf_error, PlatformError};
use super::hooks::{self, hook, number};
use super::live::LiveChannel;
use crate::core::error::{connection_lost, storage_failure};
use crate::core::hlc::WriteClock;
use crate::core::host::{Action, Event, Output};
use crate::core::json_text::JsonText;
use crate::core::machine::SyncConfig;
use crate::core::push_engine::HttpReply;
use crate::core::replica::{Replica, Request};
use crate::core::schema::DatabaseSchema;
use crate::core::shapes::Migration;
use crate::core::sync_options::SyncOptions;
use crate::core::vault::Vault;
use crate::core::ErrorCode;

#[wasm_bindgen(module = "/src/platform/js/io.js")]
extern "C" {
    type Io;
    #[wasm_bindgen(constructor)]
    fn new(report: &Function, get_token: &JsValue, fetch: &JsValue, transport: &JsValue, resolvers: &Map) -> Io;
    #[wasm_bindgen(method)]
    fn perform(this: &Io, actions: &str, wake_at: Option<f64>);
    #[wasm_bindgen(method)]
    fn wake(this: &Io, at: Option<f64>);
    #[wasm_bindgen(method)]
    fn listen(this: &Io, kind: &str, listener: &Function) -> Function;
    #[wasm_bindgen(method)]
    fn deliver(this: &Io, kind: &str, json: &str, level: &str);
    /// `[id, promise]`.
    #[wasm_bindgen(method)]
    fn promise(this: &Io) -> Array;
    #[wasm_bindgen(method)]
    fn chain(this: &Io, waiter: u32, promise: &Promise);
    #[wasm_bindgen(method)]
    fn stop(this: &Io);
    #[wasm_bindgen(method, setter)]
    fn set_conn(this: &Io, conn: &Connection);
    #[wasm_bindgen(method, setter)]
    fn set_log(this: &Io, log: &Function);
    #[wasm_bindgen(method, setter)]
    fn set_coordinator(this: &Io, coordinator: &Coordinator);
    #[wasm_bindgen(static_method_of = Io)]
    fn online() -> bool;
    #[wasm_bindgen(static_method_of = Io)]
    fn visible() -> bool;

    pub fn abortable(promise: &Promise, signal: &JsValue) -> Promise;
    #[wasm_bindgen(js_name = registerBackgroundSync)]
    pub fn register_background_sync(tag: &str) -> Promise;
    #[wasm_bindgen(js_name = randomSeed)]
    fn random_seed_js() -> Array;
    #[wasm_bindgen(js_name = sameOrigin)]
    fn same_origin(url: &str) -> bool;
}

/// 64 random bits (crypto where the scope has it), to seed ids and jitter.
pub fn random_seed() -> u64 {
    let words = random_seed_js();
    (words.get(0).as_f64().unwrap_or(0.0) as u64) << 32 | words.get(1).as_f64().unwrap_or(0.0) as u64
}

fn now() -> f64 {
    js_sys::Date::now()
}

/// The sync configuration `Wharf.open` validated, with the functions JSON could not carry.
pub struct SyncSetup {
    pub options: SyncOptions,
    pub get_token: Option<Function>,
    /// `sync.fetch`: the app's own `fetch` for pushes and pulls.
    pub fetch: Option<Function>,
    /// `sync.transport`: the app's own `push`, `pull` and `live` instead of HTTP.
    pub transport: Option<Object>,
    /// `options.log`: receives each sync event with its level.
    pub log: Option<Function>,
    /// Resolver functions by collection; the one under `None` serves every collection.
    pub resolvers: Vec<(Option<String>, Function)>,
}

struct SyncSide {
    options: SyncOptions,
    get_token: Option<Function>,
    /// `sync.fetch`, for the live socket's ticket.
    fetch: Option<Function>,
    transport: Option<Object>,
    coordination: RefCell<Option<Coordination>>,
    live: RefCell<Option<LiveChannel>>,
    /// The leader's last status (JSON), shown while this context follows.
    remote_status: RefCell<Option<String>>,
    paused: Cell<bool>,
}

/// One open database in this context.
pub struct Host {
    replica: RefCell<Replica>,
    pub conn: Connection,
    pub hub: ChangeHub,
    io: Io,
    sync: Option<SyncSide>,
    closed: Cell<bool>,
    /// What the replica was last told about leading.
    leading: Cell<bool>,
    /// This host, for the callbacks JavaScript holds (they must not keep it alive).
    slot: HostSlot,
    /// The collections' `migrate` functions by name (`Action::Migrate`).
    migrations: Object,
}

impl Host {
    /// Starts the host of an open connection (and its sync loop, with `sync`).
    pub fn start(
        schema: DatabaseSchema,
        conn: Connection,
        hub: ChangeHub,
        slot: HostSlot,
        sync: Option<SyncSetup>,
        migrations: Object,
        vault: Option<Rc<Vault>>,
    ) -> Rc<Host> {
        let resolvers = Map::new();
        let mut side = None;
        let mut config = None;
        let (mut sync_fetch, mut transport, mut log) = (None, None, None);
        let mut replica = Replica::new(schema, random_seed());
        if let Some(vault) = vault {
            replica.set_vault(vault);
        }
        if let Some(setup) = sync {
            sync_fetch = setup.fetch.clone();
            transport = setup.transport.clone();
            log = setup.log.clone();
            for (name, resolver) in &setup.resolvers {
                resolvers.set(&JsValue::from_str(name.as_deref().unwrap_or("")), resolver);
            }
            let seed = random_seed();
            config = Some(SyncConfig {
                options: setup.options.clone(),
                has_token: setup.get_token.is_some(),
                resolvers: setup.resolvers.iter().map(|(name, _)| name.clone()).collect(),
                context_id: same_origin(&setup.options.push_url()).then(|| format!("{seed:016x}")),
                online: Io::online(),
                visible: Io::visible(),
                fresh_client_id: replica.clock().op_id(now()),
                seed,
            });
            side = Some(SyncSide {
                options: setup.options,
                get_token: setup.get_token,
                fetch: setup.fetch,
                transport: setup.transport,
                coordination: RefCell::default(),
                live: RefCell::default(),
                remote_status: RefCell::default(),
                paused: Cell::new(false),
            });
        }
        let report = hook({
            let slot = Rc::clone(&slot);
            move |kind, ticket, n, text, extra| {
                let host = slot.borrow().upgrade();
                if let Some(host) = host {
                    host.report(
                        &hooks::text(&kind),
                        number(&ticket) as u32,
                        number(&n),
                        text.as_string(),
                        extra.as_string(),
                    );
                }
                Ok(JsValue::UNDEFINED)
            }
        });
        let get_token = side.as_ref().and_then(|s| s.get_token.clone()).map_or(JsValue::UNDEFINED, JsValue::from);
        let fetch = sync_fetch.map_or(JsValue::UNDEFINED, JsValue::from);
        let transport = transport.map_or(JsValue::UNDEFINED, JsValue::from);
        let io = Io::new(report.unchecked_ref(), &get_token, &fetch, &transport, &resolvers);
        io.set_conn(&conn);
        if let Some(log) = &log {
            io.set_log(log);
        }
        let host = Rc::new(Host {
            replica: RefCell::new(replica),
            conn,
            hub,
            io,
            sync: side,
            closed: Cell::new(false),
            leading: Cell::new(false),
            slot: Rc::clone(&slot),
            migrations,
        });
        *slot.borrow_mut() = Rc::downgrade(&host);
        if let (Some(config), Some(side)) = (config, &host.sync) {
            let coordination = Coordination::start(&host, &side.options, &format!("{:016x}", config.seed));
            host.io.set_coordinator(coordination.coordinator());
            *side.coordination.borrow_mut() = Some(coordination);
            let output = host.replica.borrow_mut().start_sync(config, now());
            host.perform(output);
        }
        host
    }

    pub fn slot(&self) -> HostSlot {
        Rc::clone(&self.slot)
    }

    pub fn schema(&self) -> std::cell::Ref<'_, DatabaseSchema> {
        std::cell::Ref::map(self.replica.borrow(), Replica::schema)
    }

    /// The write clock, for a write placed now.
    pub fn with_clock<T>(&self, f: impl FnOnce(&mut WriteClock) -> T) -> T {
        f(self.replica.borrow_mut().clock())
    }

    /// The vault of an encrypted database, to seal local writes with.
    pub fn vault(&self) -> Option<Rc<Vault>> {
        self.replica.borrow().vault().cloned()
    }

    /// `sync.user` as JavaScript (undefined without one): the user local writes are queued under.
    pub fn user(&self) -> JsValue {
        self.replica.borrow().user().map_or(JsValue::UNDEFINED, JsValue::from_str)
    }

    fn coordinator(&self) -> Option<Coordinator> {
        self.sync.as_ref()?.coordination.borrow().as_ref().map(|c| c.coordinator().clone())
    }

    /// The coordinator while another context holds the drainer role.
    fn leader_elsewhere(&self) -> Option<Coordinator> {
        self.coordinator().filter(|c| !c.holds())
    }

    /// The election moved the drainer role (to or from this context).
    pub fn role_changed(&self) {
        let leading = self.coordinator().is_some_and(|c| c.is_leading());
        self.step(Event::Leading(leading));
    }

    /// Hands `event` to the replica and performs what it decides.
    pub fn step(&self, event: Event) {
        if self.closed.get() {
            return;
        }
        let leading = self.coordinator().is_some_and(|c| c.is_leading());
        let mut outputs = Vec::with_capacity(2);
        {
            let mut replica = self.replica.borrow_mut();
            if self.sync.is_some() && self.leading.replace(leading) != leading {
                outputs.push(replica.handle(Event::Leading(leading), now()));
            }
            outputs.push(replica.handle(event, now()));
        }
        for output in outputs {
            self.perform(output);
        }
    }

    /// Performs a step's actions: most in one call into `io.js` (`Action::write_json`), the
    /// rest here.
    fn perform(&self, output: Output) {
        let mut out = JsonText::new();
        let mut here = Vec::new();
        out.open_array();
        for action in output.actions {
            if !action.write_json(&mut out) {
                here.push(action);
            }
        }
        out.close_array();
        self.io.perform(&out.finish(), output.wake_at);
        for action in here {
            match action {
                Action::Forward { waiter, pull } => {
                    if let Some(coordinator) = self.leader_elsewhere() {
                        self.io.chain(waiter, &coordinator.request(if pull { "pull" } else { "sync" }));
                    }
                }
                Action::Idle => {
                    if let Some(coordinator) = self.coordinator() {
                        coordinator.idle();
                    }
                }
                Action::Live(open) => self.set_live(open),
                Action::Wrote => self.local_writes_committed(1),
                Action::Migrate { ticket, docs } => {
                    let results = docs.iter().map(|doc| self.migrate(doc)).collect();
                    self.step(Event::Migrated { ticket, results });
                }
                _ => {}
            }
        }
    }

    /// Runs the app's `migrate(value, from, { patch: false })` of the document's collection, as
    /// opening the database does (`idb.js` `migrateStore`); the core checks what it returned.
    fn migrate(&self, doc: &Migration) -> Result<serde_json::Value, String> {
        let function = Reflect::get(&self.migrations, &JsValue::from_str(&doc.collection)).ok();
        let function = function.and_then(|f| f.dyn_into::<Function>().ok()).ok_or("no migrate function")?;
        let value = js_sys::JSON::parse(&crate::core::json_text::text(&doc.value)).map_err(|e| message_of(&e))?;
        let info = Object::new();
        let _ = Reflect::set(&info, &"patch".into(), &JsValue::FALSE);
        let out = function.call3(&JsValue::UNDEFINED, &value, &doc.from.into(), &info).map_err(|e| message_of(&e))?;
        if Reflect::get(&out, &"then".into()).is_ok_and(|then| then.is_function()) {
            return Err("migrate returned a Promise; it must return the document".into());
        }
        let text = js_sys::JSON::stringify(&out).ok().and_then(|text| text.as_string());
        let text = text.ok_or("migrate returned something JSON cannot carry")?;
        crate::core::read::json(&text, false).map_err(|_| "migrate returned something JSON cannot carry".into())
    }

    /// Opens or closes the live channel's socket, as the core asks.
    fn set_live(self: &Host, open: bool) {
        let Some(side) = &self.sync else { return };
        if side.live.borrow().is_none() {
            let channel = LiveChannel::new(
                &side.options.url,
                side.get_token.as_ref(),
                side.fetch.as_ref(),
                side.transport.as_ref(),
                self,
            );
            *side.live.borrow_mut() = Some(channel);
        }
        let Some(socket) = side.live.borrow().as_ref().map(LiveChannel::handle) else { return };
        if open {
            socket.open();
        } else {
            socket.close();
        }
    }

    /// What `io.js` reports.
    pub(crate) fn report(&self, kind: &str, ticket: u32, number: f64, text: Option<String>, extra: Option<String>) {
        let text = text.unwrap_or_default();
        let event = match kind {
            "timer" => Event::Timer,
            "online" => Event::Online,
            "offline" => Event::Offline,
            "visible" => Event::Visible,
            "hidden" => Event::Hidden,
            "poke" => Event::Poke,
            "serverDate" => match crate::core::retry::parse_imf_fixdate(&text) {
                Some(ms) => Event::ServerDate(ms),
                None => return,
            },
            "liveOpened" => Event::LiveOpened,
            "liveHeard" => Event::LiveHeard,
            "liveClosed" => Event::LiveClosed,
            "response" => Event::Http {
                ticket,
                reply: HttpReply::Response { status: number as u16, retry_after: extra, body: text },
            },
            "network" => Event::Http { ticket, reply: HttpReply::Network { message: text, online: number > 0.0 } },
            "timeout" => Event::Http { ticket, reply: HttpReply::Timeout },
            "transportError" => Event::Http { ticket, reply: crate::core::transport::failure_reply(&text) },
            "token" => Event::Token { ticket, token: Ok(text) },
            "tokenError" => Event::Token { ticket, token: Err(text) },
            "resolved" => Event::Resolver {
                ticket,
                answer: crate::core::read::json(&text, false)
                    .map_err(|_| "the resolver's answer is not JSON".to_owned()),
            },
            "resolveError" => Event::Resolver { ticket, answer: Err(text) },
            _ => return,
        };
        self.step(event);
    }

    /// The next round of transaction `ticket` (the executor calls this inside the transaction).
    pub fn decide(&self, ticket: u32, results: &str) -> String {
        self.replica.borrow_mut().decide(ticket, results, now())
    }

    /// How transaction `ticket` ended: committed (`name` None) or failed.
    pub fn ended(&self, ticket: u32, name: Option<String>, message: String) {
        let event = match name {
            None => Event::Committed { ticket },
            Some(name) => Event::Failed {
                ticket,
                code: storage_failure(&name, &message).0,
                lost: connection_lost(&name, &message),
                reason: message,
            },
        };
        self.step(event);
    }

    /// Local writes committed here: wake the drainer, wherever it runs.
    pub fn local_writes_committed(&self, queued: u32) {
        if self.sync.is_none() || queued == 0 {
            return;
        }
        match self.leader_elsewhere() {
            Some(coordinator) => coordinator.kick(),
            None => self.step(Event::LocalWrite),
        }
    }

    /// An API call that runs one of the core's transactions.
    pub fn request(&self, request: Request) -> Promise {
        if self.closed.get() {
            return Promise::reject(&wharf_error(
                ErrorCode::Closed,
                "the database is closed; open it again with Wharf.open",
            ));
        }
        let (waiter, promise) = self.waiter();
        let output = self.replica.borrow_mut().request(waiter, request, now());
        self.perform(output);
        promise
    }

    fn waiter(&self) -> (u32, Promise) {
        let pair = self.io.promise();
        (pair.get(0).as_f64().unwrap_or(0.0) as u32, pair.get(1).unchecked_into())
    }

    /// `db.sync()` (or `db.pull()`): served here, or by the leader when another context drains.
    pub fn sync_call(&self, pull: bool) -> Promise {
        let Some(side) = &self.sync else {
            let message = "this database was opened without a `sync` option; pass sync: { url } to Wharf.open";
            return Promise::reject(&wharf_error(ErrorCode::NotConfigured, message));
        };
        if !side.paused.get() && !self.closed.get() {
            if let Some(coordinator) = self.leader_elsewhere() {
                return coordinator.request(if pull { "pull" } else { "sync" });
            }
        }
        self.serve(pull, false)
    }

    /// A `sync()` or `pull()` run here (`remote`: asked by another context).
    pub fn serve(&self, pull: bool, remote: bool) -> Promise {
        if self.closed.get() {
            return Promise::reject(&wharf_error(ErrorCode::Closed, "the database is closed"));
        }
        let (waiter, promise) = self.waiter();
        let online = Io::online();
        self.step(if pull { Event::Pull { waiter, remote, online } } else { Event::Sync { waiter, remote, online } });
        promise
    }

    /// The sync status as JSON: this context's own, or the leader's while following (unless
    /// paused); `None` without sync.
    pub fn status_json(&self) -> Option<String> {
        let side = self.sync.as_ref()?;
        if !side.paused.get() && self.leader_elsewhere().is_some() {
            if let Some(remote) = side.remote_status.borrow().clone() {
                return Some(remote);
            }
        }
        let replica = self.replica.borrow();
        Some(replica.sync()?.status().to_json())
    }

    /// `db.stats().sync` as JSON.
    pub fn stats_json(&self) -> Option<String> {
        let replica = self.replica.borrow();
        Some(replica.sync()?.stats().to_json())
    }

    /// `"leader"` or `"follower"` (`None` without sync).
    pub fn role(&self) -> Option<&'static str> {
        self.sync.as_ref()?;
        Some(if self.leader_elsewhere().is_some() { "follower" } else { "leader" })
    }

    /// Adds a listener of sync events of `kind` (`SyncEvent::name`).
    pub fn listen(&self, kind: &str, listener: &Function) -> Result<Function, PlatformError> {
        if self.sync.is_none() {
            let message = "this database was opened without a `sync` option; pass sync: { url } to Wharf.open";
            return Err(PlatformError::Storage { code: ErrorCode::NotConfigured, message: message.into() });
        }
        Ok(self.io.listen(kind, listener))
    }

    /// An event the leader published, heard by this follower: delivered like its own.
    pub fn deliver_remote(&self, kind: &str, json: String) {
        let Some(side) = &self.sync else { return };
        if kind == "status" {
            *side.remote_status.borrow_mut() = Some(json.clone());
        }
        self.replica.borrow_mut().heard(kind, &json, now());
        self.io.deliver(kind, &json, crate::core::debug_report::level(kind, &json));
    }

    pub fn set_paused(&self, paused: bool) -> Result<(), PlatformError> {
        let Some(side) = &self.sync else {
            let message = "this database was opened without a `sync` option; pass sync: { url } to Wharf.open";
            return Err(PlatformError::Storage { code: ErrorCode::NotConfigured, message: message.into() });
        };
        side.paused.set(paused);
        self.step(if paused { Event::Pause } else { Event::Resume });
        if let Some(coordinator) = self.coordinator() {
            coordinator.set_eligible(!paused);
        }
        Ok(())
    }

    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Closes for good: sync stops, pending calls reject with `CLOSED`, the connection closes.
    pub fn close(&self) {
        if self.closed.get() {
            return;
        }
        self.step(Event::Close);
        self.closed.set(true);
        if let Some(side) = &self.sync {
            side.live.borrow_mut().take();
            let coordination = side.coordination.borrow_mut().take();
            drop(coordination);
        }
        self.io.stop();
        self.hub.close();
        self.conn.close();
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.close();
    }
}
