//! The world the native tests run replicas in: clients (`NativeHost`: the shipped replica over an
//! in-memory IndexedDB), a model of the reference server (exactly once per op id, permanent
//! rejections remembered, the real staleness rule and patch semantics, pull by cursor), a script
//! of faults for the next requests, a clock the tests move, and the application's `getToken` and
//! conflict resolver. The simulation in `server/tests/simulation/` runs the same clients
//! against the real server's code instead of this model.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use serde_json::{json, Value};

use super::document::Key;
use super::host::Event;
use super::machine::SyncConfig;
use super::native_host::{NativeHost, Outside};
use super::op::{doc_id, Payload};
use super::protocol::{is_stale, Change, LastWrite, MutationResult, PushRequest, PushResponse, PROTOCOL_VERSION};
use super::push_engine::HttpReply;
use super::retry::RetryPolicy;
use super::schema::DatabaseSchema;
use super::sync_options::SyncOptions;

pub const URL: &str = "https://server.test";

/// The app's `migrate(doc, fromVersion)`: the document, or what it threw.
pub type Migrate = fn(&Value, u32) -> Result<Value, String>;

/// One scripted misbehaviour, consumed by the next push request.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    Status(u16, Option<&'static str>),
    Network,
    Timeout,
    /// The server applies the batch, then the connection drops.
    DropAfterApply,
    /// The server applies the batch, then the page dies before it records anything (its next
    /// transaction fails) and the request fails.
    CrashAfterApply,
    /// The device goes offline as the request leaves.
    GoOffline,
    /// The server applies the first `n` mutations and answers their results only (a backend that
    /// applies one mutation per request and stopped at a failure), with this Retry-After.
    Prefix(usize, Option<&'static str>),
    /// A broken or hostile answer: `status` with `body`, after applying the batch if `applied`.
    Garbage {
        applied: bool,
        status: u16,
        body: String,
    },
}

#[derive(Debug, Clone)]
pub struct Record {
    pub collection: String,
    pub key: Key,
    pub value: Option<Value>,
    pub version: u64,
    pub writer: String,
    pub writer_seq: u64,
    pub hlc: Option<String>,
    pub seq: u64,
    /// The writer's `shape`, as the reference server stores it.
    pub shape: Option<u32>,
}

/// A model of the reference server.
#[derive(Debug, Default)]
pub struct ModelServer {
    pub records: BTreeMap<String, Record>,
    /// Applied op ids with the version each produced.
    pub applied: HashMap<String, u64>,
    pub rejected: HashMap<String, String>,
    /// How many times each op id changed the records (must never exceed 1).
    pub effects: HashMap<String, u32>,
    pub seq: u64,
    /// Op ids that make the whole batch fail with `poison_status` (422 unless set); refused
    /// permanently per op; answered `conflict`.
    pub poison: BTreeSet<String>,
    pub poison_status: Option<u16>,
    /// The protocol error code of that answer (`FAULT` unless set).
    pub poison_code: Option<&'static str>,
    /// While set, every push gets this answer (status, body; status 0: no answer): an outage.
    pub down: Option<(u16, String)>,
    pub refuse: BTreeSet<String>,
    pub conflict: BTreeSet<String>,
    pub max_batch: Option<usize>,
    /// Pulls from a cursor below this are `410` (compaction).
    pub horizon: u64,
}

impl ModelServer {
    pub fn push(&mut self, request: &PushRequest) -> Vec<MutationResult> {
        let mut results = Vec::new();
        for m in &request.mutations {
            let id = m.id.clone();
            if let Some(&version) = self.applied.get(&id) {
                results.push(MutationResult::Duplicate { id, version });
                continue;
            }
            if let Some(code) = self.rejected.get(&id) {
                results.push(MutationResult::Rejected {
                    id,
                    code: code.clone(),
                    message: "refused earlier".into(),
                    permanent: true,
                });
                continue;
            }
            let op = match m.check() {
                Ok(op) => op,
                Err(message) => {
                    results.push(MutationResult::Rejected {
                        id,
                        code: "INVALID_MUTATION".into(),
                        message,
                        permanent: true,
                    });
                    continue;
                }
            };
            if self.refuse.contains(&id) {
                self.rejected.insert(id.clone(), "INVALID".into());
                results.push(MutationResult::Rejected {
                    id,
                    code: "INVALID".into(),
                    message: "refused".into(),
                    permanent: true,
                });
                continue;
            }
            if self.conflict.contains(&id) {
                results.push(MutationResult::Conflict { id, version: 99, value: None, hlc: None, shape: None });
                continue;
            }
            let doc = op.doc_id();
            let current = self.records.get(&doc);
            let version = current.map_or(0, |r| r.version);
            if let Some(base) = m.base_version {
                let last = LastWrite { writer: current.map(|r| r.writer.as_str()), seq: current.map(|r| r.writer_seq) };
                if is_stale(base, version, last, &request.client_id, m.seq) {
                    let (value, hlc, shape) =
                        current.map_or((None, None, None), |r| (r.value.clone(), r.hlc.clone(), r.shape));
                    results.push(MutationResult::Conflict { id, version, value, hlc, shape });
                    continue;
                }
            }
            if matches!(op.payload, Payload::Patch(_)) && current.and_then(|r| r.value.as_ref()).is_none() {
                self.rejected.insert(id.clone(), "NOT_FOUND".into());
                results.push(MutationResult::Rejected {
                    id,
                    code: "NOT_FOUND".into(),
                    message: "no such record".into(),
                    permanent: true,
                });
                continue;
            }
            let value = op.payload.apply(current.and_then(|r| r.value.as_ref()));
            self.seq += 1;
            let record = Record {
                collection: op.collection.clone(),
                key: op.key.clone(),
                value,
                version: version + 1,
                writer: request.client_id.clone(),
                writer_seq: m.seq,
                hlc: m.hlc.clone(),
                seq: self.seq,
                shape: m.shape,
            };
            self.records.insert(doc, record);
            *self.effects.entry(id.clone()).or_default() += 1;
            self.applied.insert(id.clone(), version + 1);
            results.push(MutationResult::Applied { id, version: version + 1 });
        }
        results
    }

    /// `GET /pull` from `cursor`: each changed record once, in `seq` order.
    pub fn pull(&self, cursor: &str, limit: usize) -> HttpReply {
        let Ok(cursor) = (if cursor.is_empty() { Ok(0) } else { cursor.parse::<u64>() }) else {
            return HttpReply::Response { status: 400, retry_after: None, body: error_body("BAD_REQUEST", "cursor") };
        };
        if cursor != 0 && cursor < self.horizon {
            return HttpReply::Response {
                status: 410,
                retry_after: None,
                body: error_body("CURSOR_EXPIRED", "compacted"),
            };
        }
        let mut changed: Vec<&Record> = self.records.values().filter(|r| r.seq > cursor).collect();
        changed.sort_by_key(|r| r.seq);
        let has_more = changed.len() > limit;
        changed.truncate(limit);
        let last = changed.last().map_or(cursor, |r| r.seq);
        let changes: Vec<Change> = changed
            .iter()
            .map(|r| Change {
                collection: r.collection.clone(),
                key: r.key.clone(),
                value: r.value.clone(),
                version: r.version,
                hlc: r.hlc.clone(),
                space: None,
                shape: r.shape,
            })
            .collect();
        let body =
            json!({"protocol": 1, "changes": changes, "cursor": last.to_string(), "hasMore": has_more}).to_string();
        HttpReply::Response { status: 200, retry_after: None, body }
    }

    /// The live documents, by versions-store id.
    pub fn documents(&self) -> BTreeMap<String, Value> {
        self.records.iter().filter_map(|(id, r)| Some((id.clone(), r.value.clone()?))).collect()
    }
}

pub fn error_body(code: &str, message: &str) -> String {
    json!({"protocol": 1, "code": code, "message": message}).to_string()
}

pub fn todos_schema() -> DatabaseSchema {
    DatabaseSchema::from_json(r#"{"name":"db","collections":[{"name":"todos","keyPath":"id"}]}"#).unwrap()
}

/// Sync options for tests: no timers unless a test asks, and retries within seconds.
pub fn options(batch_size: usize, max_attempts: u32, direction: &str) -> SyncOptions {
    let mut options = SyncOptions::from_value(&json!({
        "url": URL, "batchSize": batch_size, "pushIntervalMs": 0, "pullIntervalMs": 0, "debounceMs": 0,
        "direction": direction, "live": false, "maxAuthRefreshes": 2,
    }))
    .unwrap();
    options.engine.retry = RetryPolicy { base_ms: 100, max_ms: 10_000, max_attempts, max_age_ms: None };
    options
}

pub struct Client {
    pub host: NativeHost,
    pub config: SyncConfig,
    pub online: bool,
    /// The page died (`Fault::CrashAfterApply`): it does nothing until reloaded.
    pub crashed: bool,
    /// How far this device's clock is ahead of the world's (behind, if negative).
    pub skew: f64,
}

/// Clients, the server, the clock.
pub struct World {
    pub clients: Vec<Client>,
    pub server: ModelServer,
    pub now: f64,
    pub script: VecDeque<Fault>,
    pub requests: Vec<PushRequest>,
    pub request_times: Vec<f64>,
    pub pulls: u32,
    /// Answers to the next pull requests, before the model server answers again.
    pub pull_script: VecDeque<HttpReply>,
    /// The cursor and the URL of every pull request.
    pub asked: Vec<String>,
    pub pull_urls: Vec<String>,
    /// `getToken` answers `t0`, `t1`, ...; the server accepts tokens numbered at least this.
    pub required_token: u32,
    /// Tokens numbered below this may not write: every op is rejected `FORBIDDEN` (a grant newer
    /// than the token).
    pub writing_token: u32,
    pub tokens_issued: u32,
    /// `getToken` never settles while set.
    pub token_hangs: bool,
    /// The schema clients open (`todos_schema` unless a test sets another before adding them).
    pub schema: DatabaseSchema,
    pub resolver: Option<fn(&Value) -> Value>,
    /// The data key every client encrypts its database with, if any.
    pub encryption: Option<[u8; 32]>,
    /// The app's `migrate(doc, fromVersion)`: the document, or what it threw. None: every
    /// collection's `migrate` throws.
    pub migrate: Option<Migrate>,
    /// How many times the host was asked to migrate, and how many documents in all.
    pub migrations: (u32, usize),
    needs: VecDeque<(usize, Outside)>,
}

impl World {
    pub fn new() -> World {
        World {
            clients: Vec::new(),
            server: ModelServer::default(),
            now: 1_000_000.0,
            script: VecDeque::new(),
            requests: Vec::new(),
            request_times: Vec::new(),
            pulls: 0,
            pull_script: VecDeque::new(),
            asked: Vec::new(),
            pull_urls: Vec::new(),
            required_token: 0,
            writing_token: 0,
            tokens_issued: 0,
            token_hangs: false,
            schema: todos_schema(),
            resolver: None,
            encryption: None,
            migrate: None,
            migrations: (0, 0),
            needs: VecDeque::new(),
        }
    }

    /// Adds a client named `id` and starts its sync loop.
    pub fn client(&mut self, id: &str, options: SyncOptions, seed: u64) -> usize {
        let config = SyncConfig {
            options,
            has_token: false,
            resolvers: Vec::new(),
            context_id: None,
            online: true,
            visible: true,
            fresh_client_id: id.to_owned(),
            seed,
        };
        let mut host = self.host(seed);
        host.start_sync(config.clone(), self.now);
        self.clients.push(Client { host, config, online: true, crashed: false, skew: 0.0 });
        self.clients.len() - 1
    }

    fn host(&self, seed: u64) -> NativeHost {
        World::host_of(&self.schema, self.encryption, seed)
    }

    /// A replica over an empty database, encrypted if the world is; each page load seals
    /// with its own nonces (the seed stands in for its random bytes).
    fn host_of(schema: &DatabaseSchema, encryption: Option<[u8; 32]>, seed: u64) -> NativeHost {
        let mut host = NativeHost::new(schema.clone(), seed);
        if let Some(key) = encryption {
            let mut prefix = [0u8; 16];
            prefix[..8].copy_from_slice(&seed.to_le_bytes());
            host.encrypt(&key, prefix);
        }
        host
    }

    /// The time on the clock of client `at`.
    pub fn time_of(&self, at: usize) -> f64 {
        self.now + self.clients[at].skew
    }

    /// The page reloads: a fresh replica over the same database. Local work the page had
    /// started (the writes the user saw resolve) completes first; requests in flight are lost.
    pub fn reload(&mut self, at: usize) {
        if !self.clients[at].crashed {
            self.gather();
        }
        let client = &mut self.clients[at];
        let db = client.host.db.clone();
        // Every page load seeds its ids afresh (from crypto in the browser).
        client.config.seed = client.config.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
        let mut host = World::host_of(&self.schema, self.encryption, client.config.seed);
        host.db = db;
        host.db.upgrade(&self.schema);
        self.needs.retain(|(c, _)| *c != at);
        let mut config = client.config.clone();
        config.online = client.online;
        host.start_sync(config, self.now + client.skew);
        client.host = host;
        client.crashed = false;
    }

    /// The client at `at`, reloaded first if its page died (the user opened the app again).
    fn alive(&mut self, at: usize) -> &mut NativeHost {
        if self.clients[at].crashed {
            self.reload(at);
        }
        &mut self.clients[at].host
    }

    pub fn put(&mut self, at: usize, key: &str, fields: Value) -> String {
        let mut doc = fields;
        doc["id"] = json!(key);
        let now = self.time_of(at);
        let id = self.alive(at).write("todos", Payload::Put(doc), None, now).unwrap();
        self.gather(); // the app awaits its write: it commits before the app goes on
        id
    }

    pub fn delete(&mut self, at: usize, key: &str) -> String {
        let now = self.time_of(at);
        let id = self.alive(at).write("todos", Payload::Delete, Some(Key::Text(key.into())), now).unwrap();
        self.gather();
        id
    }

    /// A local patch (a transaction of the replica's); returns its waiter.
    pub fn patch(&mut self, at: usize, key: &str, fields: Value) -> u32 {
        let now = self.time_of(at);
        let request =
            super::replica::Request::Patch { collection: "todos".into(), key: Key::Text(key.into()), patch: fields };
        let waiter = self.alive(at).request(request, now);
        self.gather(); // the app awaits its write
        waiter
    }

    /// A local patch whose op id the test needs: runs the client's local work so the patch
    /// commits; `None` when it failed (no such document).
    pub fn patch_now(&mut self, at: usize, key: &str, fields: Value) -> Option<String> {
        let before: BTreeSet<String> = self.outbox(at).into_iter().map(|e| e.op.id).collect();
        let waiter = self.patch(at, key, fields);
        self.gather();
        self.clients[at].host.settled.get(&waiter)?.as_ref().ok()?;
        self.outbox(at).into_iter().map(|e| e.op.id).find(|id| !before.contains(id))
    }

    /// `db.sync()` at client `at`; returns its waiter.
    pub fn sync(&mut self, at: usize) -> u32 {
        let (now, online) = (self.time_of(at), self.clients[at].online);
        self.alive(at).sync(now, online)
    }

    /// `db.pull()` at client `at`; returns its waiter.
    pub fn pull(&mut self, at: usize) -> u32 {
        let (now, online) = (self.time_of(at), self.clients[at].online);
        self.alive(at).pull(now, online)
    }

    pub fn event(&mut self, at: usize, event: Event) {
        if matches!(event, Event::Online) {
            self.clients[at].online = true;
        }
        if matches!(event, Event::Offline) {
            self.clients[at].online = false;
        }
        let now = self.time_of(at);
        if !self.clients[at].crashed {
            self.clients[at].host.event(event, now);
        }
    }

    /// Runs every client locally and collects what they need from outside.
    pub fn gather(&mut self) {
        for (at, client) in self.clients.iter_mut().enumerate().filter(|(_, c)| !c.crashed) {
            for need in client.host.run(self.now + client.skew) {
                self.needs.push_back((at, need));
            }
        }
    }

    /// Answers one outside need; false when there was none.
    pub fn answer_one(&mut self) -> bool {
        self.gather();
        let Some((at, need)) = self.needs.pop_front() else { return false };
        let event = match need {
            Outside::Http { ticket, request, .. } => Event::Http { ticket, reply: self.http(at, &request) },
            Outside::Token { .. } if self.token_hangs => return true,
            Outside::Token { ticket } => {
                let token = format!("t{}", self.tokens_issued);
                self.tokens_issued += 1;
                Event::Token { ticket, token: Ok(token) }
            }
            Outside::Resolver { ticket, context, .. } => match self.resolver {
                Some(resolve) => Event::Resolver { ticket, answer: Ok(resolve(&context)) },
                None => Event::Resolver { ticket, answer: Err("no resolver".into()) },
            },
            Outside::Migrate { ticket, docs } => {
                self.migrations.0 += 1;
                self.migrations.1 += docs.len();
                let migrate = |doc: &super::shapes::Migration| match self.migrate {
                    Some(migrate) => migrate(&doc.value, doc.from),
                    None => Err("no migrate".into()),
                };
                Event::Migrated { ticket, results: docs.iter().map(migrate).collect() }
            }
        };
        let now = self.time_of(at);
        if !self.clients[at].crashed {
            self.clients[at].host.event(event, now);
        }
        self.gather();
        true
    }

    fn http(&mut self, at: usize, request: &super::activity::HttpRequest) -> HttpReply {
        if request.method == "GET" {
            self.pulls += 1;
            let query = request.url.split_once('?').map_or("", |(_, q)| q);
            let param = |name: &str| {
                query.split('&').find_map(|kv| kv.strip_prefix(&format!("{name}="))).unwrap_or_default().to_owned()
            };
            let cursor = param("cursor");
            self.asked.push(cursor.clone());
            self.pull_urls.push(request.url.clone());
            if !self.clients[at].online {
                return HttpReply::Network { message: "Failed to fetch".into(), online: false };
            }
            if let Some(reply) = self.pull_script.pop_front() {
                return reply;
            }
            return self.server.pull(&cursor, param("limit").parse().unwrap_or(500));
        }
        let body = request.body.clone().unwrap_or_default();
        let push: PushRequest = serde_json::from_str(&body).expect("the client sends valid push requests");
        assert_eq!(push.protocol, PROTOCOL_VERSION);
        self.requests.push(push.clone());
        self.request_times.push(self.now);
        if !self.clients[at].online {
            return HttpReply::Network { message: "Failed to fetch".into(), online: false };
        }
        let token =
            request.headers.iter().find(|(n, _)| n == "Authorization").and_then(|(_, v)| v.strip_prefix("Bearer t"));
        if self.required_token > 0 && token.and_then(|t| t.parse::<u32>().ok()).unwrap_or(0) < self.required_token {
            return HttpReply::Response { status: 401, retry_after: None, body: error_body("UNAUTHORIZED", "token") };
        }
        if self.writing_token > 0 && token.and_then(|t| t.parse::<u32>().ok()).unwrap_or(0) < self.writing_token {
            let forbidden = |m: &crate::core::protocol::Mutation| MutationResult::Rejected {
                id: m.id.clone(),
                code: "FORBIDDEN".into(),
                message: "not yours to write".into(),
                permanent: true,
            };
            let results = push.mutations.iter().map(forbidden).collect();
            let body = serde_json::to_string(&PushResponse { protocol: PROTOCOL_VERSION, results }).unwrap();
            return HttpReply::Response { status: 200, retry_after: None, body };
        }
        let respond = |status: u16, retry_after: Option<&str>| HttpReply::Response {
            status,
            retry_after: retry_after.map(str::to_owned),
            body: error_body("FAULT", "scripted"),
        };
        match self.script.pop_front() {
            Some(Fault::Status(status, retry_after)) => return respond(status, retry_after),
            Some(Fault::Network) => return HttpReply::Network { message: "connection refused".into(), online: true },
            Some(Fault::Timeout) => return HttpReply::Timeout,
            Some(Fault::GoOffline) => {
                self.clients[at].online = false;
                return HttpReply::Network { message: "Failed to fetch".into(), online: false };
            }
            Some(Fault::DropAfterApply) => {
                self.server.push(&push);
                return HttpReply::Network { message: "connection reset".into(), online: true };
            }
            Some(Fault::CrashAfterApply) => {
                self.server.push(&push);
                self.clients[at].crashed = true;
                self.needs.retain(|(c, _)| *c != at);
                return HttpReply::Network { message: "the page died".into(), online: true };
            }
            Some(Fault::Prefix(n, retry_after)) => {
                let prefix = PushRequest { mutations: push.mutations[..n.min(push.mutations.len())].to_vec(), ..push };
                let results = self.server.push(&prefix);
                let body = serde_json::to_string(&PushResponse { protocol: PROTOCOL_VERSION, results }).unwrap();
                return HttpReply::Response { status: 200, retry_after: retry_after.map(str::to_owned), body };
            }
            Some(Fault::Garbage { applied, status, body }) => {
                if applied {
                    self.server.push(&push);
                }
                return HttpReply::Response { status, retry_after: None, body };
            }
            None => {}
        }
        if self.server.max_batch.is_some_and(|max| push.mutations.len() > max) {
            return respond(413, None);
        }
        if let Some((status, body)) = &self.server.down {
            return match status {
                0 => HttpReply::Network { message: "connection refused".into(), online: true },
                &status => HttpReply::Response { status, retry_after: None, body: body.clone() },
            };
        }
        if push.mutations.iter().any(|m| self.server.poison.contains(&m.id)) {
            let status = self.server.poison_status.unwrap_or(422);
            let body = error_body(self.server.poison_code.unwrap_or("FAULT"), "poison");
            return HttpReply::Response { status, retry_after: None, body };
        }
        let results = self.server.push(&push);
        let body = serde_json::to_string(&PushResponse { protocol: PROTOCOL_VERSION, results }).unwrap();
        HttpReply::Response { status: 200, retry_after: None, body }
    }

    /// Answers needs and moves time until client `at` asks its resolver; that question is left
    /// unanswered, first in line, so the test can act while the resolver "thinks".
    pub fn until_resolver_asked(&mut self, at: usize) {
        for _ in 0..10_000 {
            self.gather();
            let asked = self.needs.iter().position(|(c, n)| *c == at && matches!(n, Outside::Resolver { .. }));
            if let Some(need) = asked.and_then(|i| self.needs.remove(i)) {
                self.needs.push_front(need);
                return;
            }
            if !self.answer_one() && !self.advance() {
                break;
            }
        }
        panic!("client {at} never asked its resolver");
    }

    /// Moves the clock to the earliest wake-up any client asked for and wakes those clients;
    /// false when nobody waits for time.
    pub fn advance(&mut self) -> bool {
        let Some(next) = self.next_wake() else { return false };
        self.now = self.now.max(next);
        let now = self.now;
        for client in self.clients.iter_mut().filter(|c| !c.crashed) {
            if client.host.wake_at.is_some_and(|at| at - client.skew <= now) {
                client.host.event(Event::Timer, now + client.skew);
            }
        }
        true
    }

    /// The earliest wake-up any live client asked for, on the world's clock.
    pub fn next_wake(&self) -> Option<f64> {
        self.clients.iter().filter(|c| !c.crashed).filter_map(|c| c.host.wake_at.map(|at| at - c.skew)).reduce(f64::min)
    }

    /// Answers needs and moves time until every client is quiet; panics after `max_turns`.
    pub fn settle(&mut self, max_turns: usize) {
        for _ in 0..max_turns {
            if !self.answer_one() && !self.advance() {
                return;
            }
        }
        panic!("the clients did not settle within {max_turns} turns");
    }

    /// Like `settle`, but stops once the next wake-up is after `deadline` (a client that retries
    /// forever, such as an unresolved conflict, never settles).
    pub fn settle_until(&mut self, deadline: f64) {
        for _ in 0..100_000 {
            if self.answer_one() {
                continue;
            }
            let next = self.next_wake();
            if next.is_none_or(|at| at > deadline) || !self.advance() {
                return;
            }
        }
        panic!("the clients kept working until {deadline}");
    }

    pub fn outbox(&self, at: usize) -> Vec<super::op::OutboxEntry> {
        self.clients[at].host.outbox()
    }

    pub fn dead(&self, at: usize) -> Vec<super::op::DeadLetter> {
        self.clients[at]
            .host
            .rows(super::schema::DEAD_STORE)
            .into_iter()
            .map(|(_, v)| super::op::DeadLetter::from_json(&v).unwrap())
            .collect()
    }

    pub fn status(&self, at: usize) -> &super::status::SyncStatus {
        self.clients[at].host.replica.sync().unwrap().status()
    }

    pub fn stats(&self, at: usize) -> super::status::PushStats {
        self.clients[at].host.replica.sync().unwrap().stats()
    }

    /// Asserts each op id changed the server's records exactly once.
    pub fn applied_once(&self, ids: &[String]) {
        for id in ids {
            assert_eq!(self.server.effects.get(id).copied(), Some(1), "{id} applied exactly once");
        }
    }

    pub fn record(&self, key: &str) -> Option<Value> {
        self.server.records.get(&doc_id("todos", &Key::Text(key.into()))).and_then(|r| r.value.clone())
    }
}

/// A push-only client of `world`.
pub fn push_client(world: &mut World, batch_size: usize, max_attempts: u32) -> usize {
    world.client("client-1", options(batch_size, max_attempts, "push"), 1)
}
