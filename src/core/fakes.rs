//! In-memory fakes of the engine's ports, for native tests: an outbox with IndexedDB's semantics
//! (auto-increment seq, one transaction per call), a model of the reference server (dedupe by
//! mutation id, per-op rejections, conflicts, whole-batch 422s and 413s), a scripted fault queue,
//! a manual clock, a connectivity switch and an event log.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use serde_json::{json, Value};

use super::document::Key;
use super::engine::{
    Clock, Connectivity, Counts, Observer, Planner, Preparation, PushCall, PushEngine, Step, Storage, StorageFailure,
    Transport, TransportReply,
};
use super::id::{OpIdGenerator, SplitMix64};
use super::outbox::{apply_patch, DeadLetter, OpKind, OutboxEntry};
use super::protocol::{MutationResult, PushRequest, PushResponse, PROTOCOL_VERSION};
use super::push::Settlement;
use super::status::SyncEvent;

/// One scripted misbehaviour, consumed by the next request.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    Status(u16, Option<&'static str>),
    Network,
    Timeout,
    /// The server applies the batch, then the connection drops.
    DropAfterApply,
    /// The server applies the batch, then the page dies before it records anything.
    CrashAfterApply,
    /// The device goes offline as the request leaves.
    GoOffline,
    /// A broken or hostile answer: `status` with `body`, after applying the batch if `applied`.
    Garbage {
        applied: bool,
        status: u16,
        body: String,
    },
}

/// A model of the reference server's push semantics.
#[derive(Debug, Default)]
pub struct ModelServer {
    pub records: BTreeMap<(String, String), Value>,
    pub applied: HashMap<String, u64>,
    /// Permanent rejections, remembered so a resend gets the same answer.
    pub rejected: HashMap<String, String>,
    /// How many times each mutation id changed the records (must never exceed 1).
    pub effects: HashMap<String, u32>,
    version: u64,
    /// Mutation ids that make the whole batch a 422.
    pub poison: HashSet<String>,
    /// Mutation ids rejected permanently, per op.
    pub refuse: HashSet<String>,
    /// Mutation ids answered `conflict`.
    pub conflict: HashSet<String>,
    pub max_batch: Option<usize>,
}

pub fn document(collection: &str, key: &Key) -> (String, String) {
    (collection.to_owned(), serde_json::to_string(key).unwrap_or_default())
}

impl ModelServer {
    fn apply(&mut self, request: &PushRequest) -> Vec<MutationResult> {
        let mut results = Vec::new();
        for m in &request.mutations {
            let id = m.id.clone();
            if let Some(&version) = self.applied.get(&id) {
                results.push(MutationResult::Duplicate { id, version });
                continue;
            }
            if let Some(code) = self.rejected.get(&id) {
                let (code, message) = (code.clone(), "refused earlier".to_owned());
                results.push(MutationResult::Rejected { id, code, message, permanent: true });
                continue;
            }
            if self.refuse.contains(&id) {
                self.rejected.insert(id.clone(), "INVALID".into());
                let (code, message) = ("INVALID".to_owned(), "refused".to_owned());
                results.push(MutationResult::Rejected { id, code, message, permanent: true });
                continue;
            }
            if self.conflict.contains(&id) {
                results.push(MutationResult::Conflict { id, version: 99, value: None, hlc: None });
                continue;
            }
            let doc = document(&m.collection, &m.key);
            match m.op {
                OpKind::Put => {
                    self.records.insert(doc, m.value.clone().unwrap_or(Value::Null));
                }
                OpKind::Delete => {
                    self.records.remove(&doc);
                }
                OpKind::Patch => match self.records.get(&doc) {
                    Some(current) => {
                        let merged =
                            apply_patch(current, m.patch.as_ref().unwrap_or(&Value::Null)).unwrap_or(Value::Null);
                        self.records.insert(doc, merged);
                    }
                    None => {
                        self.rejected.insert(id.clone(), "NOT_FOUND".into());
                        let (code, message) = ("NOT_FOUND".to_owned(), "no such record".to_owned());
                        results.push(MutationResult::Rejected { id, code, message, permanent: true });
                        continue;
                    }
                },
            }
            self.version += 1;
            *self.effects.entry(id.clone()).or_default() += 1;
            self.applied.insert(id.clone(), self.version);
            results.push(MutationResult::Applied { id, version: self.version });
        }
        results
    }
}

/// Every port of the engine, in memory.
pub struct FakeHost {
    pub now: Cell<f64>,
    rng: RefCell<SplitMix64>,
    pub online: Cell<bool>,
    pub outbox: RefCell<BTreeMap<u64, OutboxEntry>>,
    next_seq: Cell<u64>,
    pub sent_through: Cell<u64>,
    pub dead: RefCell<Vec<DeadLetter>>,
    pub events: RefCell<Vec<SyncEvent>>,
    pub server: RefCell<ModelServer>,
    pub script: RefCell<VecDeque<Fault>>,
    pub requests: RefCell<Vec<PushRequest>>,
    pub request_times: RefCell<Vec<f64>>,
    /// Bumped each time the engine asks for a fresh token; the server accepts `>= required_token`.
    pub token: Cell<u32>,
    pub required_token: Cell<u32>,
    /// Set by `CrashAfterApply`: the next storage write fails, as if the page had died.
    pub crashed: Cell<bool>,
    ids: RefCell<OpIdGenerator>,
}

impl FakeHost {
    pub fn new(seed: u64) -> FakeHost {
        FakeHost {
            now: Cell::new(1_000_000.0),
            rng: RefCell::new(SplitMix64::new(seed)),
            online: Cell::new(true),
            outbox: RefCell::default(),
            next_seq: Cell::new(1),
            sent_through: Cell::new(0),
            dead: RefCell::default(),
            events: RefCell::default(),
            server: RefCell::default(),
            script: RefCell::default(),
            requests: RefCell::default(),
            request_times: RefCell::default(),
            token: Cell::new(0),
            required_token: Cell::new(0),
            crashed: Cell::new(false),
            ids: RefCell::new(OpIdGenerator::new(seed ^ 0x5eed)),
        }
    }

    /// A local write, as the write path queues it. Returns the op id.
    pub fn write(&self, key: &str, op: OpKind, payload: Value) -> String {
        let now = self.now.get();
        let id = self.ids.borrow_mut().next_id(now).as_str().to_owned();
        let seq = self.next_seq.get();
        self.next_seq.set(seq + 1);
        let mut value = None;
        let mut patch = None;
        match op {
            OpKind::Put => {
                let mut doc = payload;
                doc["id"] = json!(key);
                value = Some(doc);
            }
            OpKind::Patch => patch = Some(payload),
            OpKind::Delete => {}
        }
        let entry = OutboxEntry {
            id: id.clone(),
            seq: None,
            collection: "todos".into(),
            key: Key::Text(key.into()),
            op,
            value,
            patch,
            created_at: now,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            conflict: None,
            hlc: None,
            base_version: None,
            resent: false,
        };
        self.outbox.borrow_mut().insert(seq, entry);
        id
    }

    /// `db.deadLetters.retry()`: every letter back into the outbox (new seqs), as the browser does.
    pub fn retry_dead(&self) {
        let now = self.now.get();
        for letter in self.dead.take() {
            let again =
                super::dead_letters::requeue(&letter, now, || self.ids.borrow_mut().next_id(now).as_str().to_owned());
            let seq = self.next_seq.get();
            self.next_seq.set(seq + 1);
            self.outbox.borrow_mut().insert(seq, again.entry);
        }
    }

    pub fn fault(&self, fault: Fault) {
        self.script.borrow_mut().push_back(fault);
    }

    fn counts(&self) -> Counts {
        Counts { pending: self.outbox.borrow().len() as u64, dead_letters: self.dead.borrow().len() as u64 }
    }

    pub fn event_names(&self) -> Vec<&'static str> {
        self.events.borrow().iter().map(SyncEvent::name).filter(|n| *n != "status").collect()
    }

    /// Runs the engine until it is idle or blocked, jumping the clock over every wait.
    pub fn drive(&self, engine: &mut PushEngine, max_steps: usize) -> Step {
        for _ in 0..max_steps {
            match block_on(engine.step(self)) {
                Step::Progress => {}
                Step::WaitUntil(at) => self.now.set(self.now.get().max(at)),
                other => return other,
            }
        }
        panic!("the engine did not settle within {max_steps} steps");
    }
}

impl Storage for FakeHost {
    async fn prepare(&self, window: usize, plan: Planner) -> Result<(Preparation, Counts), StorageFailure> {
        let entries: Vec<OutboxEntry> = self
            .outbox
            .borrow()
            .iter()
            .take(window)
            .map(|(seq, e)| OutboxEntry { seq: Some(*seq), ..e.clone() })
            .collect();
        let complete = entries.len() == self.outbox.borrow().len();
        let preparation =
            plan(super::engine::OutboxWindow { entries, sent_through: self.sent_through.get(), complete });
        let mut outbox = self.outbox.borrow_mut();
        for seq in &preparation.remove {
            assert!(outbox.remove(seq).is_some(), "coalescing removed a missing entry");
        }
        for entry in &preparation.rewrite {
            let seq = entry.seq.expect("rewritten entries keep their seq");
            assert!(outbox.contains_key(&seq), "coalescing rewrote a missing entry");
            outbox.insert(seq, OutboxEntry { seq: None, ..entry.clone() });
        }
        self.sent_through.set(preparation.sent_through);
        drop(outbox);
        Ok((preparation, self.counts()))
    }

    async fn settle(&self, settlement: &Settlement) -> Result<Counts, StorageFailure> {
        if self.crashed.replace(false) {
            return Err(StorageFailure("the page died".into()));
        }
        let mut outbox = self.outbox.borrow_mut();
        // As sync_io.js does: acknowledged entries go by key range.
        outbox.retain(|seq, _| !settlement.acked_ranges.iter().any(|(low, high)| (low..=high).contains(&seq)));
        for entry in &settlement.updated {
            outbox.insert(entry.seq.expect("seq"), OutboxEntry { seq: None, ..entry.clone() });
        }
        for letter in &settlement.dead {
            outbox.remove(&letter.seq);
            self.dead.borrow_mut().push(letter.clone());
        }
        drop(outbox);
        Ok(self.counts())
    }
}

impl Transport for FakeHost {
    async fn push(&self, call: PushCall<'_>) -> TransportReply {
        let request: PushRequest = serde_json::from_str(call.body).expect("the engine sends valid push requests");
        assert_eq!(request.protocol, PROTOCOL_VERSION);
        self.requests.borrow_mut().push(request.clone());
        self.request_times.borrow_mut().push(self.now.get());
        if call.refresh_token {
            self.token.set(self.token.get() + 1);
        }
        let respond = |status: u16, retry_after: Option<&str>| TransportReply::Response {
            status,
            retry_after: retry_after.map(str::to_owned),
            body: json!({"protocol": 1, "code": "FAULT", "message": "scripted"}).to_string(),
        };
        if self.token.get() < self.required_token.get() {
            return respond(401, None);
        }
        let fault = self.script.borrow_mut().pop_front();
        let mut server = self.server.borrow_mut();
        match fault {
            Some(Fault::Status(status, retry_after)) => return respond(status, retry_after),
            Some(Fault::Network) => return TransportReply::NetworkError("connection refused".into()),
            Some(Fault::Timeout) => return TransportReply::Timeout,
            Some(Fault::GoOffline) => {
                self.online.set(false);
                return TransportReply::NetworkError("Failed to fetch".into());
            }
            Some(Fault::DropAfterApply) => {
                server.apply(&request);
                return TransportReply::NetworkError("connection reset".into());
            }
            Some(Fault::Garbage { applied, status, body }) => {
                if applied {
                    server.apply(&request);
                }
                return TransportReply::Response { status, retry_after: None, body };
            }
            Some(Fault::CrashAfterApply) => {
                server.apply(&request);
                self.crashed.set(true);
                return TransportReply::NetworkError("the page died".into());
            }
            None => {}
        }
        if server.max_batch.is_some_and(|max| request.mutations.len() > max) {
            return respond(413, None);
        }
        if request.mutations.iter().any(|m| server.poison.contains(&m.id)) {
            return respond(422, None);
        }
        let results = server.apply(&request);
        let body = serde_json::to_string(&PushResponse { protocol: PROTOCOL_VERSION, results }).unwrap_or_default();
        TransportReply::Response { status: 200, retry_after: None, body }
    }
}

impl Clock for FakeHost {
    fn now_ms(&self) -> f64 {
        self.now.get()
    }

    fn random(&self) -> f64 {
        self.rng.borrow_mut().next_f64()
    }
}

impl Connectivity for FakeHost {
    fn is_online(&self) -> bool {
        self.online.get()
    }
}

impl Observer for FakeHost {
    fn notify(&self, event: SyncEvent) {
        self.events.borrow_mut().push(event);
    }
}

/// Polls a future that never waits on anything outside (every fake completes at once).
pub fn block_on<F: Future>(future: F) -> F::Output {
    fn noop_raw() -> RawWaker {
        fn clone(_: *const ()) -> RawWaker {
            noop_raw()
        }
        fn noop(_: *const ()) {}
        static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, noop, noop, noop);
        RawWaker::new(std::ptr::null(), &VTABLE)
    }
    // SAFETY: the vtable's functions ignore the (null) data pointer and do nothing.
    let waker = unsafe { Waker::from_raw(noop_raw()) };
    let mut context = Context::from_waker(&waker);
    let mut future = pin!(future);
    match future.as_mut().poll(&mut context) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a fake port returned Pending"),
    }
}
