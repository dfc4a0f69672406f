//! The push engine: a state machine that drains the outbox through four narrow ports —
//! `Storage` (the outbox), `Transport` (one HTTP request), `Clock` and `Connectivity` — plus an
//! `Observer` for status and events. It never sleeps and never spawns: `step` does one unit of
//! work and says what it is waiting for, and the platform's driver (or a native test with a fake
//! clock) decides when to call it again.
//!
//! Guarantees, each tested natively with fakes and end to end against the reference server:
//! an entry leaves the outbox only when the server acknowledged it; an entry that may have been
//! sent is never rewritten (coalescing stops at the persisted "sent through" mark); offline time
//! never counts attempts; what keeps failing ends in the dead letters, never in a loop.

use std::collections::{HashMap, HashSet};

use super::coalesce::coalesce;
use super::outbox::{LastError, OutboxEntry};
use super::push::{
    acked_ranges, select, settle_failure, settle_refused, settle_results, Batch, BatchLimits, Selection, Settlement,
};
use super::retry::{classify, parse_retry_after, PushOutcome, Reaction, RetryPolicy};
use super::status::{PushStats, SyncEnd, SyncEvent, SyncState, SyncStatus};

/// The `sync` options that shape pushing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EngineOptions {
    pub batch_size: usize,
    pub max_batch_bytes: usize,
    pub retry: RetryPolicy,
    /// How many times in a row `getToken` is asked again after 401/403 before giving up (`auth`).
    pub max_auth_refreshes: u32,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            batch_size: 100,
            max_batch_bytes: 1 << 20,
            retry: RetryPolicy::default(),
            max_auth_refreshes: 3,
        }
    }
}

/// The head of the outbox, read in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxWindow {
    /// Entries in outbox order, each with its `seq`.
    pub entries: Vec<OutboxEntry>,
    /// The highest seq ever included in a request: entries at or below it may have reached the
    /// server and must never be rewritten.
    pub sent_through: u64,
    /// True when the window holds the whole outbox.
    pub complete: bool,
}

/// What to write in the transaction that read the window, before the batch is sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Preparation {
    /// Coalesced survivors, written back under their seq.
    pub rewrite: Vec<OutboxEntry>,
    /// Seqs of entries folded into a survivor.
    pub remove: Vec<u64>,
    /// The new "sent through" mark, written before the request leaves.
    pub sent_through: u64,
    pub selection: Selection,
    /// Entries in the window held by a conflict.
    pub held: u64,
    pub window_complete: bool,
    /// Seqs of the window's entries after coalescing, in order (for `push::acked_ranges`).
    pub window_seqs: Vec<u64>,
}

/// Sizes reported by the storage after each transaction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub pending: u64,
    pub dead_letters: u64,
}

/// A storage failure, with the reason (IndexedDB errors are already mapped to text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StorageFailure(pub String);

/// The deciding function `Storage::prepare` runs between its read and its writes.
pub type Planner = Box<dyn FnOnce(OutboxWindow) -> Preparation>;

// The engine runs on one thread (the browser's event loop): its futures need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait Storage {
    /// Reads up to `window` entries from the head of the outbox, calls `plan`, and writes its
    /// preparation — all in ONE transaction, so no local write can slip in between.
    async fn prepare(&self, window: usize, plan: Planner) -> Result<(Preparation, Counts), StorageFailure>;
    /// Deletes acknowledged entries, rewrites rescheduled ones and moves dead letters, in one transaction.
    async fn settle(&self, settlement: &Settlement) -> Result<Counts, StorageFailure>;
}

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportReply {
    Response { status: u16, retry_after: Option<String>, body: String },
    NetworkError(String),
    Timeout,
}

/// One `POST {url}/push`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushCall<'a> {
    pub body: &'a str,
    pub idempotency_key: &'a str,
    /// Ask `getToken` for a fresh token before sending (the last one was refused).
    pub refresh_token: bool,
}

#[allow(async_fn_in_trait)]
pub trait Transport {
    async fn push(&self, call: PushCall<'_>) -> TransportReply;
}

pub trait Clock {
    fn now_ms(&self) -> f64;
    /// A uniform sample in `[0, 1)`, for jitter.
    fn random(&self) -> f64;
}

pub trait Connectivity {
    fn is_online(&self) -> bool;
}

/// Receives status changes and events. Implementations must not call back into the engine.
pub trait Observer {
    fn notify(&self, event: SyncEvent);
}

/// Everything the engine needs from its host.
pub trait Io: Storage + Transport + Clock + Connectivity + Observer {}
impl<T: Storage + Transport + Clock + Connectivity + Observer> Io for T {}

/// What the engine waits for after a step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    /// Work was done; call `step` again now.
    Progress,
    /// Nothing to send: wait for a trigger (a write, `online`, a timer, `sync()`).
    Idle,
    /// Call again at this time (or on a trigger, which is harmless).
    WaitUntil(f64),
    /// Wait for `online`.
    Offline,
    /// The server refuses the credentials; wait for an explicit trigger.
    AuthRequired,
    /// The outbox could not be read or written; wait for a trigger.
    StorageFailed,
}

/// The push state machine. Owned by one driver; never shared across an `.await`.
pub struct PushEngine {
    options: EngineOptions,
    client_id: String,
    /// The current batch limit: `batch_size`, halved by a 413 split or a 4xx bisection.
    limit: usize,
    window: usize,
    /// `Preparation::window_seqs` of the batch in flight.
    window_seqs: Vec<u64>,
    /// No request before this time (backoff after a refused token).
    gate: f64,
    auth_failures: u32,
    refresh_token: bool,
    running: bool,
    run_acked: u64,
    status: SyncStatus,
    stats: PushStats,
}

impl PushEngine {
    pub fn new(client_id: String, options: EngineOptions) -> PushEngine {
        let batch_size = options.batch_size.max(1);
        PushEngine {
            options,
            client_id,
            limit: batch_size,
            window: batch_size.max(16),
            window_seqs: Vec::new(),
            gate: 0.0,
            auth_failures: 0,
            refresh_token: false,
            running: false,
            run_acked: 0,
            status: SyncStatus::default(),
            stats: PushStats::default(),
        }
    }

    pub fn status(&self) -> &SyncStatus {
        &self.status
    }

    pub fn stats(&self) -> PushStats {
        self.stats
    }

    /// Marks the engine paused (the driver stops calling `step`) or resumed.
    pub fn set_paused(&mut self, io: &impl Io, paused: bool) {
        if paused {
            self.end_run(io, false, None);
            self.set_state(io, SyncState::Paused);
        } else if self.status.state == SyncState::Paused {
            self.set_state(io, SyncState::Idle);
        }
    }

    /// Takes queue sizes read while the engine is not sending (offline, paused), so the status
    /// still shows what is waiting; publishes only when they changed.
    pub fn observe_counts(&mut self, io: &impl Io, counts: Counts) {
        if (self.status.pending, self.status.dead_letters) != (counts.pending, counts.dead_letters) {
            self.apply_counts(counts);
            self.publish(io);
        }
    }

    /// Forgets an `auth` failure so an explicit trigger tries again with a fresh token.
    pub fn reset_auth(&mut self) {
        if self.status.state == SyncState::Auth {
            self.auth_failures = 0;
            self.refresh_token = true;
        }
    }

    fn publish(&self, io: &impl Io) {
        io.notify(SyncEvent::Status(self.status.clone()));
    }

    fn set_state(&mut self, io: &impl Io, state: SyncState) {
        self.status.state = state;
        self.publish(io);
    }

    fn end_run(&mut self, io: &impl Io, ok: bool, error: Option<LastError>) {
        if self.running {
            self.running = false;
            let acked = std::mem::take(&mut self.run_acked);
            io.notify(SyncEvent::End(SyncEnd { ok, acked, pending: self.status.pending, error }));
        }
    }

    fn apply_counts(&mut self, counts: Counts) {
        self.status.pending = counts.pending;
        self.status.dead_letters = counts.dead_letters;
    }

    /// Does one unit of work: reads the outbox head, sends one batch, records the outcome.
    pub async fn step(&mut self, io: &impl Io) -> Step {
        let online = io.is_online();
        if self.status.online != online {
            self.status.online = online;
            self.publish(io);
        }
        if !online {
            let error = self.status.last_error.clone();
            self.end_run(io, false, error);
            self.set_state(io, SyncState::Offline);
            return Step::Offline;
        }
        let now = io.now_ms();
        if now < self.gate {
            self.status.next_retry_at = Some(self.gate);
            return Step::WaitUntil(self.gate);
        }
        let planner = self.planner(now);
        let (preparation, counts) = match io.prepare(self.window, planner).await {
            Ok(prepared) => prepared,
            Err(failure) => return self.storage_failed(io, failure),
        };
        self.apply_counts(counts);
        self.status.conflicts = preparation.held;
        self.window_seqs = preparation.window_seqs;
        match preparation.selection {
            Selection::Nothing if !preparation.window_complete => {
                // The window is full of held entries: look further next time.
                self.window = self.window.saturating_mul(2);
                Step::Progress
            }
            Selection::Nothing => {
                self.limit = self.options.batch_size.max(1);
                self.status.next_retry_at = None;
                self.end_run(io, true, None);
                self.set_state(io, SyncState::Idle);
                Step::Idle
            }
            Selection::NotBefore(at) => {
                self.status.next_retry_at = Some(at);
                let error = self.status.last_error.clone();
                self.end_run(io, false, error);
                let state = if self.status.last_error.is_some() { SyncState::Error } else { SyncState::Idle };
                self.set_state(io, state);
                Step::WaitUntil(at)
            }
            Selection::Batch(batch) => self.send(io, batch).await,
        }
    }

    fn planner(&self, now: f64) -> Planner {
        let client_id = self.client_id.clone();
        let limits = BatchLimits { max_count: self.limit, max_bytes: self.options.max_batch_bytes };
        Box::new(move |window: OutboxWindow| plan(window, now, &client_id, limits))
    }

    async fn send(&mut self, io: &impl Io, batch: Batch) -> Step {
        if !self.running {
            self.running = true;
            io.notify(SyncEvent::Start);
        }
        let count = batch.entries.len() as u64;
        self.status.in_flight = count;
        self.status.next_retry_at = None;
        self.set_state(io, SyncState::Syncing);
        let started = io.now_ms();
        let call =
            PushCall { body: &batch.body, idempotency_key: &batch.idempotency_key, refresh_token: self.refresh_token };
        let reply = io.push(call).await;
        let now = io.now_ms();
        self.stats.requests += 1;
        self.stats.pushed += count;
        self.stats.bytes_sent += batch.body.len() as u64;
        self.stats.last_latency_ms = Some((now - started).max(0.0));
        self.status.in_flight = 0;

        let (outcome, retry_after, body) = match reply {
            TransportReply::Response { status, retry_after, body } => (PushOutcome::Status(status), retry_after, body),
            TransportReply::NetworkError(message) if io.is_online() => (PushOutcome::NetworkError, None, message),
            TransportReply::NetworkError(message) => (PushOutcome::Offline, None, message),
            TransportReply::Timeout => (PushOutcome::Timeout, None, String::new()),
        };
        match classify(outcome) {
            Reaction::ReadResults => {
                let policy = self.options.retry;
                match settle_results(&batch.entries, &body, now, &policy, || io.random()) {
                    Ok((settlement, tally)) => {
                        self.auth_failures = 0;
                        self.refresh_token = false;
                        self.stats.acked += tally.acked;
                        self.stats.duplicates += tally.duplicates;
                        self.stats.conflicts += tally.conflicts;
                        self.run_acked += tally.acked;
                        self.status.last_sync_at = Some(now);
                        self.status.last_error = None;
                        if !settlement.dead.is_empty() {
                            self.limit = self.options.batch_size.max(1);
                        }
                        self.commit(io, settlement).await
                    }
                    Err(reason) => {
                        self.retry_later(io, &batch, LastError::new("PROTOCOL", reason, None), None, now).await
                    }
                }
            }
            Reaction::Retry => {
                let error = match outcome {
                    PushOutcome::Timeout => LastError::new("TIMEOUT", "no answer within requestTimeoutMs", None),
                    PushOutcome::Status(status) => http_error(status, &body),
                    _ => LastError::new("NETWORK", body, None),
                };
                let wait = retry_after.as_deref().and_then(|h| parse_retry_after(h, now));
                self.retry_later(io, &batch, error, wait, now).await
            }
            Reaction::WaitForOnline => {
                // Offline: nothing happened on the server side that counts; no attempt is recorded.
                self.status.online = false;
                let error = self.status.last_error.clone();
                self.end_run(io, false, error);
                self.set_state(io, SyncState::Offline);
                Step::Offline
            }
            Reaction::RefreshToken => {
                let status = status_of(outcome);
                self.auth_failures += 1;
                self.refresh_token = true;
                self.status.last_error = Some(http_error(status, &body));
                if self.auth_failures > self.options.max_auth_refreshes {
                    let error = self.status.last_error.clone();
                    self.end_run(io, false, error);
                    self.set_state(io, SyncState::Auth);
                    return Step::AuthRequired;
                }
                self.gate = now + self.options.retry.delay_ms(self.auth_failures, io.random(), None) as f64;
                Step::Progress
            }
            Reaction::Split | Reaction::Bisect => {
                let status = status_of(outcome);
                if batch.entries.len() == 1 {
                    let error = if status == 413 {
                        LastError::new("TOO_LARGE", "the server refuses this mutation as too large", Some(413))
                    } else {
                        http_error(status, &body)
                    };
                    self.limit = self.options.batch_size.max(1);
                    let settlement = settle_refused(&batch.entries[0], error, now);
                    return self.commit(io, settlement).await;
                }
                self.limit = batch.entries.len().div_ceil(2);
                Step::Progress
            }
        }
    }

    async fn retry_later(
        &mut self,
        io: &impl Io,
        batch: &Batch,
        error: LastError,
        retry_after_ms: Option<u64>,
        now: f64,
    ) -> Step {
        let attempts = batch.entries.iter().map(|e| e.attempts).max().unwrap_or(0).saturating_add(1);
        let delay = self.options.retry.delay_ms(attempts, io.random(), retry_after_ms);
        let next = now + delay as f64;
        self.stats.retries += 1;
        self.status.state = SyncState::Error;
        self.status.last_error = Some(error.clone());
        self.status.next_retry_at = Some(next);
        let settlement = settle_failure(&batch.entries, &error, next, &self.options.retry, now);
        self.commit(io, settlement).await
    }

    async fn commit(&mut self, io: &impl Io, mut settlement: Settlement) -> Step {
        settlement.acked_ranges = acked_ranges(&self.window_seqs, &settlement.acked);
        match io.settle(&settlement).await {
            Ok(counts) => self.apply_counts(counts),
            Err(failure) => return self.storage_failed(io, failure),
        }
        if !settlement.dead.is_empty() {
            self.stats.dead_lettered += settlement.dead.len() as u64;
            io.notify(SyncEvent::DeadLettered(settlement.dead));
        }
        self.publish(io);
        Step::Progress
    }

    fn storage_failed(&mut self, io: &impl Io, failure: StorageFailure) -> Step {
        let error = LastError::new("STORAGE", failure.0, None);
        self.status.last_error = Some(error.clone());
        self.end_run(io, false, Some(error));
        self.set_state(io, SyncState::Error);
        Step::StorageFailed
    }
}

/// The HTTP status of an outcome (0 when there was no response).
fn status_of(outcome: PushOutcome) -> u16 {
    match outcome {
        PushOutcome::Status(status) => status,
        _ => 0,
    }
}

/// The error of an HTTP status, with the server's code and message when it sent a Wharf error body.
fn http_error(status: u16, body: &str) -> LastError {
    match super::wire::error_response(body) {
        Some((code, message)) => LastError::new(&code, message, Some(status)),
        None => LastError::new("HTTP", format!("the server answered HTTP {status}"), Some(status)),
    }
}

/// Coalesces what was never sent, then selects the batch and advances the "sent through" mark.
pub fn plan(window: OutboxWindow, now: f64, client_id: &str, limits: BatchLimits) -> Preparation {
    let mark = window.sent_through;
    let movable =
        |e: &OutboxEntry| e.attempts == 0 && !e.resent && e.conflict.is_none() && e.seq.is_some_and(|s| s > mark);
    let coalesced = coalesce(&window.entries, movable);
    let mut rewrite = Vec::new();
    let mut remove = Vec::new();
    if !coalesced.absorbed.is_empty() {
        let absorbed: HashSet<&str> = coalesced.absorbed.iter().map(String::as_str).collect();
        let originals: HashMap<&str, &OutboxEntry> = window.entries.iter().map(|e| (e.id.as_str(), e)).collect();
        remove.extend(window.entries.iter().filter(|e| absorbed.contains(e.id.as_str())).filter_map(|e| e.seq));
        rewrite.extend(
            coalesced.entries.iter().filter(|s| originals.get(s.id.as_str()).is_some_and(|o| *o != *s)).cloned(),
        );
    }
    let held = coalesced.entries.iter().filter(|e| e.conflict.is_some()).count() as u64;
    let selection = select(&coalesced.entries, now, client_id, limits);
    let sent_through = match &selection {
        Selection::Batch(batch) => batch.entries.iter().filter_map(|e| e.seq).fold(mark, u64::max),
        _ => mark,
    };
    let window_seqs = coalesced.entries.iter().filter_map(|e| e.seq).collect();
    Preparation { rewrite, remove, sent_through, selection, held, window_complete: window.complete, window_seqs }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "hostile_tests.rs"]
mod hostile_tests;
