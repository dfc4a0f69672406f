//! A native host for the replica, for the native tests and the simulation: it runs the
//! replica's transactions on `MemDb` and the local write path (a record and its outbox entry in
//! one transaction, as `platform/js/idb.js` places it), and hands back what needs the outside
//! world (requests, `getToken`, the resolver) for the test to answer however it likes.

use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use serde_json::Value;

use super::activity::HttpRequest;
use super::document::{key_of, Key};
use super::error::{CoreError, ErrorCode};
use super::host::{Action, Event, Failure, Output};
use super::machine::SyncConfig;
use super::memdb::MemDb;
use super::op::{Op, OutboxEntry, Payload};
use super::replica::{Replica, Request};
use super::schema::{DatabaseSchema, OUTBOX_STORE};
use super::status::SyncEvent;
use super::tx::{Round, Scope, Write};
use super::vault::Vault;

/// Something only the outside world can answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Outside {
    Http {
        ticket: u32,
        request: HttpRequest,
        timeout_ms: u32,
    },
    Token {
        ticket: u32,
    },
    Resolver {
        ticket: u32,
        collection: String,
        context: Value,
    },
    /// The app's `migrate` over these documents.
    Migrate {
        ticket: u32,
        docs: Vec<super::shapes::Migration>,
    },
}

/// Work in the order the browser would start it: IndexedDB runs transactions on the same
/// stores in the order they were created.
enum Job {
    Action(Action),
    /// A local put or delete: its record change and outbox entry.
    Write(Vec<Write>, Scope),
}

/// One client: its replica, its database, and what it reported.
pub struct NativeHost {
    pub replica: Replica,
    pub db: MemDb,
    queue: VecDeque<Job>,
    pub events: Vec<SyncEvent>,
    pub settled: BTreeMap<u32, Result<Value, Failure>>,
    pub wake_at: Option<f64>,
    /// Transactions to fail at commit from now on (a storage fault), counted down.
    pub failing_txs: u32,
    /// The next writing transaction over this store fails at commit.
    pub fail_next_write_to: Option<String>,
    /// Transactions to fail at commit as if their connection died (Safari's lost IndexedDB
    /// server), counted down.
    pub losing_txs: u32,
    /// The next writing transaction over this store dies with its connection.
    pub lose_next_write_to: Option<String>,
    /// Whether the replica asked for the live channel.
    pub live: bool,
    /// Waiters the replica handed back to be forwarded to another leader.
    pub forwarded: Vec<(u32, bool)>,
    /// The sync transactions run so far (local writes not counted).
    pub transactions: u32,
    /// How often a context that does not lead reported its loop idle (nothing in flight: the
    /// role can be handed over).
    pub idles: u32,
    next_waiter: u32,
}

impl NativeHost {
    pub fn new(schema: DatabaseSchema, seed: u64) -> NativeHost {
        NativeHost {
            db: MemDb::new(&schema),
            replica: Replica::new(schema, seed),
            queue: VecDeque::new(),
            events: Vec::new(),
            settled: BTreeMap::new(),
            wake_at: None,
            failing_txs: 0,
            fail_next_write_to: None,
            losing_txs: 0,
            lose_next_write_to: None,
            live: false,
            forwarded: Vec::new(),
            transactions: 0,
            idles: 0,
            next_waiter: 0,
        }
    }

    /// Starts syncing (and tells the replica this context leads).
    pub fn start_sync(&mut self, config: SyncConfig, now: f64) {
        self.start_sync_as(config, true, now);
    }

    /// Encrypts what this client stores from now on (`Wharf.open({ encryption })` once the data
    /// key is unwrapped); `nonce_prefix` stands in for the random bytes of a page load.
    pub fn encrypt(&mut self, key: &[u8; 32], nonce_prefix: [u8; 16]) {
        let vault = Vault::new(key, nonce_prefix, self.replica.schema());
        self.replica.set_vault(Rc::new(vault));
    }

    /// Starts syncing as the context that drains (`leading`) or as one that waits for the role.
    pub fn start_sync_as(&mut self, config: SyncConfig, leading: bool, now: f64) {
        let output = self.replica.start_sync(config, now);
        self.take(output);
        if leading {
            self.event(Event::Leading(true), now);
        }
    }

    fn take(&mut self, output: Output) {
        self.queue.extend(output.actions.into_iter().map(Job::Action));
        self.wake_at = output.wake_at;
    }

    /// Reports an event to the replica.
    pub fn event(&mut self, event: Event, now: f64) {
        let output = self.replica.handle(event, now);
        self.take(output);
    }

    /// A fresh waiter id.
    pub fn waiter(&mut self) -> u32 {
        self.next_waiter += 1;
        self.next_waiter
    }

    /// `db.sync()`; `online`: what `navigator.onLine` says.
    pub fn sync(&mut self, now: f64, online: bool) -> u32 {
        let waiter = self.waiter();
        self.event(Event::Sync { waiter, remote: false, online }, now);
        waiter
    }

    /// `db.pull()`; `online`: what `navigator.onLine` says.
    pub fn pull(&mut self, now: f64, online: bool) -> u32 {
        let waiter = self.waiter();
        self.event(Event::Pull { waiter, remote: false, online }, now);
        waiter
    }

    pub fn request(&mut self, request: Request, now: f64) -> u32 {
        let waiter = self.waiter();
        let output = self.replica.request(waiter, request, now);
        self.take(output);
        waiter
    }

    /// A local put or delete, as the browser's write path places it: the record change and
    /// its outbox entry in one transaction, after every transaction started before. Returns the
    /// op id.
    pub fn write(
        &mut self,
        collection: &str,
        payload: Payload,
        key: Option<Key>,
        now: f64,
    ) -> Result<String, CoreError> {
        let schema = self.replica.schema();
        let at = schema.position(collection)?;
        let key = match (&payload, key) {
            (Payload::Put(doc), _) => key_of(doc, &schema.collections[at].key_path)?,
            (_, Some(key)) => key,
            (_, None) => return Err(CoreError::InvalidKey("a delete needs a key".into())),
        };
        let scope = Scope { stores: schema.write_scope(), write: true };
        let record = match &payload {
            Payload::Put(doc) => Write::put(collection, doc.clone(), None),
            Payload::Delete => Write::delete(collection, key.to_json()),
            Payload::Patch(_) => return Err(CoreError::InvalidOptions("a patch goes through `request`".into())),
        };
        let id = self.replica.clock().op_id(now);
        let stamp = self.replica.clock().stamp(now);
        let op = Op { id: id.clone(), seq: 0, collection: collection.to_owned(), key, payload };
        let entry = OutboxEntry::new(op, now, Some(stamp)).by(self.replica.user());
        let mut writes = vec![record, Write::Add { store: OUTBOX_STORE.to_owned(), value: entry.to_json() }];
        if let Some(vault) = self.replica.vault() {
            // As idb.js places it: the record sealed, and the entry's bookkeeping in clear around
            // that same sealed record.
            if let [Write::Put { value: record, .. }, Write::Add { value: entry, .. }] = &mut writes[..] {
                *record = vault.seal(collection, record);
                entry["value"] = record.clone();
            }
        }
        self.queue.push_back(Job::Write(writes, scope));
        Ok(id)
    }

    /// Performs what the replica asked for locally (transactions, events, settlements) until
    /// only the outside world can go on; returns those needs.
    pub fn run(&mut self, now: f64) -> Vec<Outside> {
        let mut outside = Vec::new();
        while let Some(job) = self.queue.pop_front() {
            let action = match job {
                Job::Action(action) => action,
                Job::Write(writes, scope) => {
                    self.db.write(&writes, &scope).expect("a local write commits");
                    self.event(Event::LocalWrite, now);
                    continue;
                }
            };
            match action {
                Action::Tx { ticket, scope, reads } => {
                    self.transactions += 1;
                    let targeted =
                        scope.write && self.fail_next_write_to.as_ref().is_some_and(|s| scope.stores.contains(s));
                    if targeted {
                        self.fail_next_write_to = None;
                    }
                    let lost_target =
                        scope.write && self.lose_next_write_to.as_ref().is_some_and(|s| scope.stores.contains(s));
                    if lost_target {
                        self.lose_next_write_to = None;
                    }
                    let lost = self.losing_txs > 0 || lost_target;
                    self.losing_txs = self.losing_txs.saturating_sub(1);
                    let fail = self.failing_txs > 0 || targeted || lost;
                    self.failing_txs = self.failing_txs.saturating_sub(1);
                    let replica = &mut self.replica;
                    let outcome = self.db.run(&scope, reads, fail, |results| {
                        let round = replica.decide(ticket, &results, now);
                        Round::decode(&serde_json::from_str(&round).expect("a round is JSON"))
                    });
                    let event = match outcome {
                        Ok(()) => Event::Committed { ticket },
                        Err(reason) if reason.starts_with(super::memdb::CONSTRAINT) => {
                            Event::Failed { ticket, code: ErrorCode::Constraint, reason, lost: false }
                        }
                        Err(reason) => Event::Failed { ticket, code: ErrorCode::Storage, reason, lost },
                    };
                    self.event(event, now);
                }
                Action::Http { ticket, request, timeout_ms } => {
                    outside.push(Outside::Http { ticket, request, timeout_ms })
                }
                Action::Token { ticket } => outside.push(Outside::Token { ticket }),
                Action::Resolver { ticket, collection, context, .. } => {
                    outside.push(Outside::Resolver { ticket, collection, context })
                }
                Action::Migrate { ticket, docs } => outside.push(Outside::Migrate { ticket, docs }),
                Action::Emit(event) => self.events.push(event),
                Action::Settle { waiter, outcome } => {
                    self.settled.insert(waiter, outcome);
                }
                Action::Forward { waiter, pull } => self.forwarded.push((waiter, pull)),
                Action::Wrote => self.event(Event::LocalWrite, now),
                Action::Live(open) => self.live = open,
                Action::Idle => self.idles += 1,
            }
        }
        outside
    }

    /// Every `(key, value)` of a store, opened if the database is encrypted.
    pub fn rows(&self, store: &str) -> Vec<(Value, Value)> {
        let mut rows = self.db.rows(store);
        if let Some(vault) = self.replica.vault() {
            for (_, value) in &mut rows {
                vault.open_tree(value).expect("a value this client sealed opens");
            }
        }
        rows
    }

    /// The outbox, oldest first.
    pub fn outbox(&self) -> Vec<OutboxEntry> {
        self.rows(OUTBOX_STORE)
            .into_iter()
            .map(|(seq, v)| OutboxEntry::from_json(&v, seq.as_u64().unwrap_or(0)).expect("readable outbox entry"))
            .collect()
    }

    /// The documents of a collection, by key.
    pub fn documents(&self, collection: &str) -> BTreeMap<String, Value> {
        self.rows(collection).into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    /// The names of the events reported so far, status changes left out.
    pub fn event_names(&self) -> Vec<&'static str> {
        self.events.iter().map(SyncEvent::name).filter(|n| *n != "status").collect()
    }
}
