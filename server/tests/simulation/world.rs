//! The simulated world: devices (each one database, shared by one or two tabs, each tab a replica
//! running the shipped core on `NativeHost`), the network between them and the server, and one
//! clock. Everything that happens is an event in one time-ordered queue, drawn from one seeded
//! random source, so a seed is a replayable history.
//!
//! The network delivers each request after a delay, and with the run's fault rate it drops it,
//! answers 503 (sometimes with `Retry-After`), cuts the connection after the server applied it,
//! delivers it twice, holds it past the client's timeout (the server applies it late: a zombie),
//! or answers like a captive portal (a 200 that is not the protocol); some runs add an outage
//! of up to half a minute that every request meets (`outage_reply`), others a token provider
//! that never settles for up to a minute (`token_hang`). An offline device's
//! requests fail at once.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use wharf::core::activity::HttpRequest;
use wharf::core::error::SyncErrorCode;
use wharf::core::host::Event;
use wharf::core::machine::SyncConfig;
use wharf::core::memdb::MemDb;
use wharf::core::native_host::{NativeHost, Outside};
use wharf::core::op::merge_fields;
use wharf::core::push_engine::HttpReply;
use wharf::core::schema::{DatabaseSchema, DEAD_STORE};
use wharf::core::status::SyncEvent;
use wharf::core::DeadLetter;

use crate::ledger::Ledger;
use crate::rng::Rng;
use crate::server::SimServer;

/// Where a reply goes: a tab's replica of a given life (a reloaded tab never hears its old
/// requests answered) and the request's ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReplyTo {
    pub device: usize,
    pub tab: usize,
    pub life: u32,
    pub ticket: u32,
}

pub enum Scheduled {
    /// The request reaches the server; its answer travels back for `back` ms (`None`: the
    /// connection is cut, or this is a second copy nobody waits for).
    Arrive { request: HttpRequest, reply_to: Option<ReplyTo>, back: f64, portal: bool },
    /// An answer (or a failure) reaches the tab, unless the request was settled already.
    Deliver { to: ReplyTo, reply: HttpReply },
    /// A user acts on a device.
    User { device: usize },
    /// A tab that lost the role by force finds out.
    Demote { device: usize, tab: usize, life: u32 },
    /// A tab waiting for the role after a graceful handoff checks whether the old leader idled.
    Handoff { device: usize, from: usize, to: usize, idles: u32 },
}

pub struct Tab {
    /// `None` while the tab is closed (crashed, not reopened yet).
    pub host: Option<NativeHost>,
    pub life: u32,
    pub leading: bool,
    /// Frozen (the reason another tab took the role over): what happens to it waits in
    /// `deferred` until it thaws, and then it first learns that it lost the role.
    pub hung: bool,
    pub deferred: Vec<Event>,
}

pub struct Device {
    pub client: String,
    /// The database, while no tab is using it (it moves into the tab that runs).
    pub db: MemDb,
    pub tabs: Vec<Tab>,
    pub online: bool,
    pub skew: f64,
    pub config: SyncConfig,
    pub seeds: u64,
    /// The requests of each tab life not answered yet.
    pub waiting: BTreeSet<ReplyTo>,
    pub conflicts: BTreeSet<(String, String)>,
    /// Problems only the simulation can see (a dead letter without a reason...).
    pub errors: Vec<String>,
}

pub struct World {
    pub now: f64,
    pub rng: Rng,
    pub server: SimServer,
    pub devices: Vec<Device>,
    pub queue: BTreeMap<(u64, u64), Scheduled>,
    queued: u64,
    pub schema: DatabaseSchema,
    pub fault_rate: f64,
    /// A stretch of simulated time when every request meets the same outage while the devices
    /// believe they are online: `(from, until, kind)`, see `outage_reply`.
    pub outage: Option<(f64, f64, u64)>,
    /// A stretch of simulated time when the app's `getToken` never settles (`from`, `until`):
    /// the devices of such a run have a token provider.
    pub token_hang: Option<(f64, f64)>,
    pub ledger: Ledger,
    pub trace: Vec<String>,
    pub tracing: bool,
    /// With tracing, a document (`collection`, key as JSON text) whose local value on every
    /// device is traced whenever it changes (`WHARF_SIM_WATCH=todos/"k0"`).
    pub watch: Option<(String, String)>,
    watched: Vec<Option<serde_json::Value>>,
}

/// The schema every device opens.
pub fn schema() -> DatabaseSchema {
    DatabaseSchema::from_json(
        r#"{"name":"sim","collections":[{"name":"todos","keyPath":"id"},{"name":"notes","keyPath":"id"}]}"#,
    )
    .expect("a valid schema")
}

/// The application resolver of the `custom` strategy: the server's document with the local
/// fields laid over it; a deletion on either side wins.
fn resolve(context: &Value) -> Value {
    match (&context["local"], &context["remote"]) {
        (local @ Value::Object(_), remote @ Value::Object(_)) => merge_fields(remote, local).unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

impl World {
    pub fn new(seed: u64, fault_rate: f64) -> World {
        World {
            now: 1_000_000.0,
            rng: Rng::new(seed),
            server: SimServer::new(),
            devices: Vec::new(),
            queue: BTreeMap::new(),
            queued: 0,
            schema: schema(),
            fault_rate,
            outage: None,
            token_hang: None,
            ledger: Ledger::default(),
            trace: Vec::new(),
            tracing: false,
            watch: None,
            watched: Vec::new(),
        }
    }

    pub fn note(&mut self, line: impl FnOnce() -> String) {
        if self.tracing {
            let line = format!("{:>10.0} {}", self.now, line());
            self.trace.push(line);
        }
    }

    pub fn schedule(&mut self, at: f64, item: Scheduled) {
        self.queued += 1;
        self.queue.insert(((at.max(self.now) * 1000.0) as u64, self.queued), item);
    }

    /// Adds a device with `tabs` tabs (tab 0 leads) and starts them.
    pub fn add_device(&mut self, config: SyncConfig, tabs: usize, skew: f64) -> usize {
        let device = self.devices.len();
        let client = config.fresh_client_id.clone();
        self.devices.push(Device {
            client,
            db: MemDb::new(&self.schema),
            tabs: (0..tabs)
                .map(|_| Tab { host: None, life: 0, leading: false, hung: false, deferred: Vec::new() })
                .collect(),
            online: true,
            skew,
            config,
            seeds: 0,
            waiting: BTreeSet::new(),
            conflicts: BTreeSet::new(),
            errors: Vec::new(),
        });
        for tab in 0..tabs {
            self.open_tab(device, tab, tab == 0);
        }
        device
    }

    /// The device's clock.
    pub fn time_of(&self, device: usize) -> f64 {
        self.now + self.devices[device].skew
    }

    /// Opens (or reopens) a tab: a fresh replica over the device's database.
    pub fn open_tab(&mut self, device: usize, tab: usize, leading: bool) {
        let d = &mut self.devices[device];
        d.seeds += 1;
        let mut config = d.config.clone();
        config.seed = config.seed.wrapping_mul(31).wrapping_add(d.seeds);
        config.online = d.online;
        d.tabs[tab].life += 1;
        d.tabs[tab].leading = leading;
        d.tabs[tab].host = Some(NativeHost::new(self.schema.clone(), config.seed));
        let now = self.time_of(device);
        self.with_tab(device, tab, |host| host.start_sync_as(config, leading, now));
    }

    /// Closes a tab as a crash does: what it had in flight is never answered to it.
    pub fn close_tab(&mut self, device: usize, tab: usize) {
        let d = &mut self.devices[device];
        d.tabs[tab].host = None;
        d.tabs[tab].leading = false;
        d.tabs[tab].hung = false;
        d.tabs[tab].deferred.clear();
    }

    /// The tab that leads on `device`, if any.
    pub fn leader(&self, device: usize) -> Option<usize> {
        self.devices[device].tabs.iter().position(|t| t.leading && !t.hung && t.host.is_some())
    }

    /// Runs `work` on a tab's replica (with the device's database moved into it), then everything
    /// the replica does locally, and sends what it needs from outside. `None`: the tab is closed
    /// or frozen.
    pub fn with_tab<R>(&mut self, device: usize, tab: usize, work: impl FnOnce(&mut NativeHost) -> R) -> Option<R> {
        let now = self.time_of(device);
        let d = &mut self.devices[device];
        let life = d.tabs[tab].life;
        if d.tabs[tab].hung {
            return None;
        }
        let host = d.tabs[tab].host.as_mut()?;
        std::mem::swap(&mut host.db, &mut d.db);
        let result = work(host);
        let outside = host.run(now);
        std::mem::swap(&mut host.db, &mut d.db);
        let mut reports = Vec::new();
        for event in host.events.drain(..) {
            if let SyncEvent::Conflict(report) = &event {
                d.conflicts.insert((report.collection.clone(), report.key.to_json().to_string()));
                reports.push(event.to_json().1);
            }
        }
        host.forwarded.clear(); // `sync()` callers of a tab that lost the role: not tracked here
        for report in reports {
            self.note(|| format!("conflict at {device}/{tab}: {report}"));
        }
        for need in outside {
            self.outside(device, tab, life, need);
        }
        Some(result)
    }

    /// Gives a tab an event (a frozen tab gets it when it thaws).
    pub fn event(&mut self, device: usize, tab: usize, event: Event) {
        if self.devices[device].tabs[tab].hung {
            self.devices[device].tabs[tab].deferred.push(event);
            return;
        }
        let now = self.time_of(device);
        self.with_tab(device, tab, |host| host.event(event, now));
    }

    /// Answers or sends what a replica needs from outside.
    fn outside(&mut self, device: usize, tab: usize, life: u32, need: Outside) {
        match need {
            Outside::Http { ticket, request, timeout_ms } => {
                let to = ReplyTo { device, tab, life, ticket };
                self.send(to, request, f64::from(timeout_ms));
            }
            Outside::Token { ticket } => {
                let now = self.now;
                if self.token_hang.is_some_and(|(from, until)| (from..until).contains(&now)) {
                    self.note(|| format!("getToken of {device}/{tab} ticket {ticket} never settles"));
                    return;
                }
                self.event(device, tab, Event::Token { ticket, token: Ok("sim".into()) });
            }
            Outside::Resolver { ticket, context, .. } => {
                self.event(device, tab, Event::Resolver { ticket, answer: Ok(resolve(&context)) });
            }
            // Every device runs one version of the app: no document arrives in an older shape.
            Outside::Migrate { ticket, docs } => {
                let results = docs.into_iter().map(|doc| Ok(doc.value)).collect();
                self.event(device, tab, Event::Migrated { ticket, results });
            }
        }
    }

    /// Puts a request on the network, with this run's faults.
    fn send(&mut self, to: ReplyTo, request: HttpRequest, timeout: f64) {
        self.devices[to.device].waiting.insert(to);
        self.server.note_sent(&request);
        let now = self.now;
        if !self.devices[to.device].online {
            let reply = HttpReply::Network { message: "Failed to fetch".into(), online: false };
            self.schedule(now + 1.0, Scheduled::Deliver { to, reply });
            return;
        }
        self.schedule(now + timeout, Scheduled::Deliver { to, reply: HttpReply::Timeout });
        if let Some(reply) =
            self.outage.and_then(|(from, until, kind)| (from..until).contains(&now).then(|| outage_reply(kind)))
        {
            self.note(|| format!("send from {}/{} ticket {} meets the outage", to.device, to.tab, to.ticket));
            self.schedule(now + 5.0, Scheduled::Deliver { to, reply });
            return;
        }
        let (there, back) = (self.rng.ms(1, 60), self.rng.ms(1, 60));
        let fault = if self.rng.chance(self.fault_rate) { self.rng.below(7) } else { u64::MAX };
        self.note(|| {
            let what = request.body.clone().unwrap_or_else(|| request.url.clone());
            format!("send from {}/{} ticket {} fault {fault}: {what}", to.device, to.tab, to.ticket)
        });
        match fault {
            0 => {
                let reply = HttpReply::Network { message: "connection refused".into(), online: true };
                self.schedule(now + there, Scheduled::Deliver { to, reply });
            }
            1 => {
                let retry_after = self.rng.chance(0.5).then(|| "1".to_owned());
                let reply = HttpReply::Response {
                    status: 503,
                    retry_after,
                    body: json!({"protocol": 1, "code": "UNAVAILABLE", "message": "sim"}).to_string(),
                };
                self.schedule(now + there, Scheduled::Deliver { to, reply });
            }
            2 => {
                self.schedule(now + there, Scheduled::Arrive { request, reply_to: None, back, portal: false });
                let reply = HttpReply::Network { message: "connection reset".into(), online: true };
                self.schedule(now + there + back, Scheduled::Deliver { to, reply });
            }
            3 => {
                let again = now + there + self.rng.ms(1, 3_000);
                let copy = request.clone();
                self.schedule(now + there, Scheduled::Arrive { request, reply_to: Some(to), back, portal: false });
                self.schedule(again, Scheduled::Arrive { request: copy, reply_to: None, back, portal: false });
            }
            4 => {
                let late = self.rng.ms((timeout * 0.5) as u64, (timeout * 1.5) as u64);
                self.schedule(now + late, Scheduled::Arrive { request, reply_to: Some(to), back, portal: false });
            }
            5 => self.schedule(now + there, Scheduled::Arrive { request, reply_to: Some(to), back, portal: true }),
            _ => self.schedule(now + there, Scheduled::Arrive { request, reply_to: Some(to), back, portal: false }),
        }
    }

    /// Handles the next thing due: a queued event or a replica's timer, whichever is first.
    /// False when nothing is due before `until`.
    pub fn step(&mut self, until: f64) -> bool {
        let queued = self.queue.keys().next().map(|&(at, _)| at as f64 / 1000.0);
        let timer = self.next_timer();
        let next = match (queued, timer) {
            (Some(q), Some((t, ..))) => q.min(t),
            (Some(q), None) => q,
            (None, Some((t, ..))) => t,
            (None, None) => return false,
        };
        if next > until {
            return false;
        }
        self.now = self.now.max(next);
        match timer {
            Some((t, device, tab)) if queued.is_none_or(|q| t < q) => self.event(device, tab, Event::Timer),
            _ => {
                let (_, item) = self.queue.pop_first().expect("an item is due");
                self.happen(item);
            }
        }
        self.trace_watched();
        true
    }

    fn trace_watched(&mut self) {
        let Some((collection, key)) = self.watch.clone().filter(|_| self.tracing) else { return };
        self.watched.resize(self.devices.len(), None);
        for device in 0..self.devices.len() {
            let rows = self.devices[device].db.rows(&collection);
            let wanted: serde_json::Value = serde_json::from_str(&key).unwrap_or_default();
            let value = rows.into_iter().find(|(k, _)| *k == wanted).map(|(_, v)| v);
            if value != self.watched[device] {
                self.note(|| format!("watch: device {device} {collection}/{key} is now {value:?}"));
                self.watched[device] = value;
            }
        }
    }

    /// The earliest replica wake-up, on the world's clock, with its tab.
    fn next_timer(&self) -> Option<(f64, usize, usize)> {
        let mut best: Option<(f64, usize, usize)> = None;
        for (d, device) in self.devices.iter().enumerate() {
            for (t, tab) in device.tabs.iter().enumerate().filter(|(_, tab)| !tab.hung) {
                let Some(at) = tab.host.as_ref().and_then(|h| h.wake_at) else { continue };
                let at = (at - device.skew).max(self.now);
                if best.is_none_or(|(b, ..)| at < b) {
                    best = Some((at, d, t));
                }
            }
        }
        best
    }

    fn happen(&mut self, item: Scheduled) {
        match item {
            Scheduled::Arrive { request, reply_to, back, portal } => {
                let reply = if portal {
                    let body = "<html><body>Sign in to the hotel Wi-Fi</body></html>".to_owned();
                    HttpReply::Response { status: 200, retry_after: None, body }
                } else {
                    self.server.handle(&request)
                };
                if let Some(to) = reply_to {
                    self.schedule(self.now + back, Scheduled::Deliver { to, reply });
                }
            }
            Scheduled::Deliver { to, reply } => {
                let device = &mut self.devices[to.device];
                let current = device.tabs[to.tab].life == to.life && device.tabs[to.tab].host.is_some();
                if device.waiting.remove(&to) && current {
                    self.note(|| {
                        let text = match &reply {
                            HttpReply::Response { status, body, .. } => format!("{status} {body}"),
                            other => format!("{other:?}"),
                        };
                        format!("reply to {}/{} ticket {}: {}", to.device, to.tab, to.ticket, text)
                    });
                    self.event(to.device, to.tab, Event::Http { ticket: to.ticket, reply });
                }
            }
            Scheduled::User { device } => crate::users::act(self, device),
            Scheduled::Demote { device, tab, life } => {
                if self.devices[device].tabs[tab].life != life {
                    return; // it died meanwhile
                }
                self.devices[device].tabs[tab].hung = false;
                let deferred = std::mem::take(&mut self.devices[device].tabs[tab].deferred);
                // It thaws and learns it lost the role, unless the role came back to it
                // meanwhile (the tab that took it died); then what waited happens.
                let tabs = &self.devices[device].tabs;
                let other = tabs.iter().enumerate().any(|(t, other)| t != tab && other.leading && other.host.is_some());
                if other {
                    self.devices[device].tabs[tab].leading = false;
                }
                // What it hears first is whether it holds the role now; news of the role from
                // while it was frozen is stale.
                let leading = self.devices[device].tabs[tab].leading;
                self.event(device, tab, Event::Leading(leading));
                for event in deferred.into_iter().filter(|e| !matches!(e, Event::Leading(_))) {
                    self.event(device, tab, event);
                }
            }
            Scheduled::Handoff { device, from, to, idles } => {
                let idled = self.devices[device].tabs[from].host.as_ref().is_none_or(|h| h.idles > idles);
                if idled {
                    self.devices[device].tabs[to].leading = true;
                    self.event(device, to, Event::Leading(true));
                } else {
                    self.schedule(self.now + 10.0, Scheduled::Handoff { device, from, to, idles });
                }
            }
        }
    }

    /// The dead letters of a device; each must say why it died.
    pub fn dead_letters(&mut self, device: usize) -> Vec<DeadLetter> {
        let d = &mut self.devices[device];
        let letters: Vec<DeadLetter> =
            d.db.rows(DEAD_STORE)
                .into_iter()
                .map(|(_, v)| DeadLetter::from_json(&v).expect("a readable dead letter"))
                .collect();
        for letter in &letters {
            if letter.last_error.message.trim().is_empty() {
                d.errors.push(format!("dead letter {} has no reason", letter.op.id));
            }
            let error = &letter.last_error;
            let outage = matches!(
                error.code,
                SyncErrorCode::Network | SyncErrorCode::Timeout | SyncErrorCode::Protocol | SyncErrorCode::Token
            ) || error.status.is_some_and(|s| s >= 500 || s == 404 || s == 200);
            if outage {
                d.errors.push(format!("dead letter {} blames the op for an outage: {error:?}", letter.op.id));
            }
        }
        letters
    }
}

/// What every request gets during an outage: the server down, a gateway error, a captive
/// portal, a proxy that lost the route, or the server failing everything.
pub fn outage_reply(kind: u64) -> HttpReply {
    let html = |status: u16, body: &str| HttpReply::Response { status, retry_after: None, body: body.to_owned() };
    match kind % 5 {
        0 => HttpReply::Network { message: "connection refused".into(), online: true },
        1 => html(502, "<html><body>Bad Gateway</body></html>"),
        2 => html(200, "<html><body>Sign in to the hotel Wi-Fi</body></html>"),
        3 => html(404, "<html><body>Not Found</body></html>"),
        _ => html(500, r#"{"protocol":1,"code":"INTERNAL","message":"the database is down"}"#),
    }
}
