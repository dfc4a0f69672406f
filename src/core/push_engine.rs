//! The push side of the sync machine: one push step is prepare (a transaction), send (one
//! request), settle (a transaction). This file decides each turn and keeps the push status and
//! counters; `machine.rs` runs the transactions and requests it asks for.
//!
//! Guarantees, each tested natively (`machine_tests.rs`) and end to end against the reference
//! server: an entry leaves the outbox only when the server acknowledged it; an entry that may
//! have been sent is never rewritten (coalescing stops at the persisted "sent through" mark);
//! offline time and outages never count attempts; only what is pinned on one op ends in the dead
//! letters, never in a loop.
//!
//! Whose fault a failed request is: an outage (no answer, a gateway error, an answer that is not
//! the protocol, a refusal that names no op) is nobody's; the queue backs off (capped) and waits,
//! for as long as it lasts. A protocol refusal of the content (`POISON`, `INVALID_MUTATION`...)
//! is bisected with backoff, and the op it comes down to is dead-lettered. A failure that may be
//! an op's or the server's (a 500, a timeout when it repeats, `BAD_REQUEST`) is bisected with
//! backoff down to one op, the *suspect*. The suspect stays
//! aside while the next op is sent alone: if that one fails too, the server fails everything and
//! the suspect is released. If it gets through, the suspect goes alone once more: failing again,
//! right after another op got through, pins the failure on it (a refusal dead-letters it, a server
//! failure counts one attempt); getting through clears it (the server had just recovered).

use super::error::SyncErrorCode;
use super::op::{LastError, OutboxEntry};
use super::push::{
    acked_ranges, settle_outage, settle_pinned, settle_refused, settle_results, Batch, BatchLimits, Selection,
    Settlement,
};
use super::push_tx::{Counts, Preparation, PrepareBatch};
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
    /// `sync.transport`: at most one op per document in a batch (`BatchLimits`).
    pub one_per_document: bool,
    /// The app gave `getToken`: an op refused `FORBIDDEN` under a token that was not fresh is
    /// sent once more with a fresh one before it is a dead letter (a grant may be newer than the
    /// token Wharf kept).
    pub refreshes_tokens: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            batch_size: 100,
            max_batch_bytes: 1 << 20,
            retry: RetryPolicy::default(),
            max_auth_refreshes: 3,
            one_per_document: false,
            refreshes_tokens: false,
        }
    }
}

/// How often a draining engine counts the whole outbox (a scan in IndexedDB) for `pending`; in
/// between, `pending` is derived from what was settled.
const COUNT_EVERY_MS: f64 = 1_000.0;

/// What a push step came to, for the machine's loop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    /// Work was done; step again now.
    Progress,
    /// Nothing to send: wait for a trigger (a write, `online`, a timer, `sync()`).
    Idle,
    /// Step again at this time (or on a trigger, which is harmless).
    WaitUntil(f64),
    /// Wait for `online`.
    Offline,
    /// The server refuses the credentials; wait for an explicit `sync()`.
    AuthRequired,
    /// The outbox could not be read or written; wait for a trigger.
    StorageFailed,
}

/// How a request ended, as far as the transport can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpReply {
    Response {
        status: u16,
        retry_after: Option<String>,
        body: String,
    },
    /// No response; `online` is what the browser said right after.
    Network {
        message: String,
        online: bool,
    },
    Timeout,
}

/// The next thing the push step needs.
#[allow(clippy::large_enum_variant)]
pub enum Turn {
    Done(Step),
    Prepare(PrepareBatch),
    Send(Batch),
    Settle(Settlement),
}

/// Events and status changes the engine reports go here.
pub type Report<'a> = &'a mut dyn FnMut(SyncEvent);

/// An op that failed alone: kept aside until the next request shows whether it is to blame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Suspect {
    seq: u64,
    /// Another op got through after the suspect failed: the suspect goes alone once more.
    witnessed: bool,
}

/// The push state machine.
pub struct PushEngine {
    options: EngineOptions,
    client_id: String,
    /// `sync.user`: only its entries (and those queued without a user) are pushed.
    user: Option<String>,
    /// The current batch limit: `batch_size`, halved by a 413 split or a 4xx bisection.
    limit: usize,
    window: usize,
    /// `Preparation::window_seqs` of the batch in flight.
    window_seqs: Vec<u64>,
    /// No request before this time (backoff after a refused token, or between bisection steps).
    gate: f64,
    /// Requests that failed in a row (the backoff exponent of a request-level failure).
    failures: u32,
    suspect: Option<Suspect>,
    auth_failures: u32,
    refresh_token: bool,
    running: bool,
    run_acked: u64,
    /// The batch in flight is everything that was queued to send.
    drains: bool,
    pending: u64,
    counted_at: f64,
    status: SyncStatus,
    stats: PushStats,
}

impl PushEngine {
    /// Binds the pushes to `sync.user`.
    pub fn for_user(mut self, user: Option<String>) -> PushEngine {
        self.user = user;
        self
    }

    pub fn new(client_id: String, options: EngineOptions, online: bool) -> PushEngine {
        let batch_size = options.batch_size.max(1);
        PushEngine {
            options,
            client_id,
            user: None,
            limit: batch_size,
            window: batch_size.max(16),
            window_seqs: Vec::new(),
            gate: 0.0,
            failures: 0,
            suspect: None,
            auth_failures: 0,
            refresh_token: false,
            running: false,
            run_acked: 0,
            drains: false,
            pending: 0,
            counted_at: f64::NEG_INFINITY,
            status: SyncStatus { online, ..SyncStatus::default() },
            stats: PushStats::default(),
        }
    }

    pub fn status(&self) -> &SyncStatus {
        &self.status
    }

    pub fn status_mut(&mut self) -> &mut SyncStatus {
        &mut self.status
    }

    pub fn stats(&self) -> PushStats {
        self.stats
    }

    pub fn stats_mut(&mut self) -> &mut PushStats {
        &mut self.stats
    }

    /// Whether the next request asks `getToken` for a fresh token (the last one was refused).
    pub fn wants_fresh_token(&self) -> bool {
        self.refresh_token
    }

    pub fn publish(&self, report: Report<'_>) {
        report(SyncEvent::Status(self.status.clone()));
    }

    fn set_state(&mut self, report: Report<'_>, state: SyncState) {
        self.status.state = state;
        self.publish(report);
    }

    fn end_run(&mut self, report: Report<'_>, ok: bool, error: Option<LastError>) {
        if self.running {
            self.running = false;
            let acked = std::mem::take(&mut self.run_acked);
            report(SyncEvent::End(SyncEnd { ok, acked, pending: self.status.pending, error }));
        }
    }

    /// Marks the engine paused (the machine stops stepping) or resumed.
    pub fn set_paused(&mut self, report: Report<'_>, paused: bool) {
        if paused {
            self.end_run(report, false, None);
            self.set_state(report, SyncState::Paused);
        } else if self.status.state == SyncState::Paused {
            self.set_state(report, SyncState::Idle);
        }
    }

    /// Takes queue sizes read while nothing is sent (offline, paused), so the status still shows
    /// what is waiting; publishes only when they changed.
    pub fn observe_counts(&mut self, report: Report<'_>, pending: u64, dead_letters: u64) {
        self.pending = pending;
        if (self.status.pending, self.status.dead_letters) != (pending, dead_letters) {
            self.status.pending = pending;
            self.status.dead_letters = dead_letters;
            self.publish(report);
        }
    }

    /// The browser went on- or offline.
    pub fn set_online(&mut self, report: Report<'_>, online: bool) {
        if self.status.online != online {
            self.status.online = online;
            self.publish(report);
        }
    }

    /// Forgets an `auth` failure so an explicit `sync()` tries again with a fresh token.
    pub fn reset_auth(&mut self) {
        if self.status.state == SyncState::Auth {
            self.auth_failures = 0;
            self.refresh_token = true;
        }
    }

    /// Starts a push step: the prepare transaction, unless offline or backing off.
    pub fn begin(&mut self, report: Report<'_>, online: bool, now: f64) -> Turn {
        self.set_online(report, online);
        if !online {
            let error = self.status.last_error.clone();
            self.end_run(report, false, error);
            self.set_state(report, SyncState::Offline);
            return Turn::Done(Step::Offline);
        }
        if now < self.gate {
            self.status.next_retry_at = Some(self.gate);
            return Turn::Done(Step::WaitUntil(self.gate));
        }
        let count = now - self.counted_at >= COUNT_EVERY_MS;
        if count {
            self.counted_at = now;
        }
        let limits = BatchLimits {
            max_count: self.limit,
            max_bytes: self.options.max_batch_bytes,
            one_per_document: self.options.one_per_document,
        };
        let skip = self.suspect.filter(|s| !s.witnessed).map(|s| s.seq);
        let prepare = PrepareBatch::new(self.window, count, self.client_id.clone(), limits, skip);
        Turn::Prepare(prepare.for_user(self.user.clone()))
    }

    /// The prepare transaction committed: send the batch, or say why there is none.
    pub fn prepared(&mut self, report: Report<'_>, mut preparation: Preparation, counts: Counts) -> Turn {
        if !preparation.unreadable.is_empty() {
            self.stats.dead_lettered += preparation.unreadable.len() as u64;
            report(SyncEvent::DeadLettered(std::mem::take(&mut preparation.unreadable)));
        }
        let pending = if counts.exact { counts.pending } else { counts.pending.max(self.pending) };
        self.pending = pending;
        self.status.pending = pending;
        self.status.dead_letters = counts.dead_letters;
        self.status.conflicts = preparation.held.len() as u64;
        self.window_seqs = preparation.window_seqs;
        match preparation.selection {
            Selection::Nothing if !preparation.window_complete => {
                // The window is full of held entries: look further next time.
                self.window = self.window.saturating_mul(2);
                Turn::Done(Step::Progress)
            }
            // Nothing else to compare the suspect with: it goes again itself, when it is due.
            Selection::Nothing | Selection::NotBefore(_) if self.release_unwitnessed() => Turn::Done(Step::Progress),
            Selection::Nothing => Turn::Done(self.idle(report)),
            Selection::NotBefore(at) => {
                self.status.next_retry_at = Some(at);
                let error = self.status.last_error.clone();
                self.end_run(report, false, error);
                let state = if self.status.last_error.is_some() { SyncState::Error } else { SyncState::Idle };
                self.set_state(report, state);
                Turn::Done(Step::WaitUntil(at))
            }
            Selection::Batch(batch) => {
                if !self.running {
                    self.running = true;
                    report(SyncEvent::Start);
                }
                self.status.in_flight = batch.entries.len() as u64;
                self.drains = batch.drains;
                self.status.next_retry_at = None;
                self.set_state(report, SyncState::Syncing);
                Turn::Send(batch)
            }
        }
    }

    /// The request of `batch` ended with `reply` after `latency_ms`: what to settle, or what
    /// to wait for.
    pub fn replied(
        &mut self,
        report: Report<'_>,
        batch: &Batch,
        reply: HttpReply,
        now: f64,
        latency_ms: f64,
        random: &mut dyn FnMut() -> f64,
    ) -> Turn {
        let count = batch.entries.len() as u64;
        self.stats.requests += 1;
        self.stats.pushed += count;
        self.stats.bytes_sent += batch.body.len() as u64;
        self.stats.last_latency_ms = Some(latency_ms.max(0.0));
        self.status.in_flight = 0;
        let (outcome, retry_after, body) = match reply {
            HttpReply::Response { status, retry_after, body } => (PushOutcome::Status(status), retry_after, body),
            HttpReply::Network { message, online: true } => (PushOutcome::NetworkError, None, message),
            HttpReply::Network { message, online: false } => (PushOutcome::Offline, None, message),
            HttpReply::Timeout => (PushOutcome::Timeout, None, String::new()),
        };
        let server_code = match outcome {
            PushOutcome::Status(200..=299) => None,
            _ => super::wire::error_response(&body).map(|(code, _)| code),
        };
        let retry_after = retry_after.as_deref().and_then(|h| parse_retry_after(h, now));
        match classify(outcome, server_code.as_deref()) {
            Reaction::ReadResults => {
                let stale_token = self.options.refreshes_tokens && !self.refresh_token;
                match settle_results(&batch.entries, &body, now, &self.options.retry, stale_token, &mut *random) {
                    Ok((mut settlement, tally)) => {
                        self.auth_failures = 0;
                        self.refresh_token = tally.forbidden > 0;
                        self.failures = 0;
                        self.status.failing_since = None;
                        self.stats.acked += tally.acked;
                        self.stats.duplicates += tally.duplicates;
                        self.stats.conflicts += tally.conflicts;
                        self.run_acked += tally.acked;
                        self.status.last_sync_at = Some(now);
                        self.status.last_error = None;
                        let (answered, rest) = batch.entries.split_at(tally.answered.min(batch.entries.len()));
                        self.suspect = match self.suspect {
                            // Another op got through: the suspect goes alone once more.
                            Some(suspect) if !suspect.witnessed => Some(Suspect { witnessed: true, ..suspect }),
                            Some(suspect) if answered.iter().all(|e| e.op.seq != suspect.seq) => Some(suspect),
                            _ => None,
                        };
                        if !settlement.dead.is_empty() {
                            self.limit = self.options.batch_size.max(1);
                        }
                        // Ops kept for a fresh token are still queued: not drained.
                        self.drains &= rest.is_empty() && tally.forbidden == 0;
                        if let (false, Some(after)) = (rest.is_empty(), retry_after) {
                            // A prefix, and a Retry-After: the rest wait out an outage (a
                            // transport that failed part-way, docs/transports.md), which pauses
                            // the queue like any failure of a request (a status), reload or not.
                            let error = http_error(503, &body);
                            let waiting = self.wait_out(rest, &error, Some(after), now, random);
                            settlement.updated.extend(waiting.updated);
                            settlement.dead.extend(waiting.dead);
                        }
                        self.settlement(settlement)
                    }
                    Err(reason) => {
                        let error = LastError::new(SyncErrorCode::Protocol, reason, None);
                        self.outage(batch, error, None, now, random)
                    }
                }
            }
            Reaction::Outage | Reaction::Refused => {
                let error = match outcome {
                    PushOutcome::Status(status) => http_error(status, &body),
                    _ => LastError::new(SyncErrorCode::Network, body, None),
                };
                self.outage(batch, error, retry_after, now, random)
            }
            Reaction::Failed => {
                let error = match outcome {
                    PushOutcome::Status(status) => http_error(status, &body),
                    _ => LastError::new(SyncErrorCode::Timeout, "no answer within requestTimeoutMs", None),
                };
                if self.failures == 0 && !self.witnessed_alone(batch) {
                    // Once is likely a blip of the server's: retry as is.
                    return self.outage(batch, error, retry_after, now, random);
                }
                self.narrow(report, batch, error, false, retry_after, now, random)
            }
            Reaction::Bisect if batch.entries.len() == 1 => {
                // The server named a reason about the content, and this op is all of it.
                self.limit = self.options.batch_size.max(1);
                self.suspect = None;
                let error = http_error(status_of(outcome), &body);
                self.settlement(settle_refused(&batch.entries[0], error, now))
            }
            Reaction::Bisect | Reaction::BisectWithWitness => {
                let status = status_of(outcome);
                self.narrow(report, batch, http_error(status, &body), true, retry_after, now, random)
            }
            Reaction::WaitForOnline => {
                // Offline: nothing happened on the server side that counts; no attempt is recorded.
                self.status.online = false;
                let error = self.status.last_error.clone();
                self.end_run(report, false, error);
                self.set_state(report, SyncState::Offline);
                Turn::Done(Step::Offline)
            }
            Reaction::RefreshToken => {
                let status = status_of(outcome);
                self.auth_failures += 1;
                self.refresh_token = true;
                self.status.last_error = Some(http_error(status, &body));
                if self.auth_failures > self.options.max_auth_refreshes {
                    let error = self.status.last_error.clone();
                    self.end_run(report, false, error);
                    self.set_state(report, SyncState::Auth);
                    return Turn::Done(Step::AuthRequired);
                }
                self.gate = now + self.options.retry.delay_ms(self.auth_failures, random(), None) as f64;
                Turn::Done(Step::Progress)
            }
            Reaction::Split => {
                if batch.entries.len() == 1 {
                    let error = LastError::new(
                        SyncErrorCode::TooLarge,
                        "the server refuses this mutation as too large",
                        Some(413),
                    );
                    self.limit = self.options.batch_size.max(1);
                    return self.settlement(settle_refused(&batch.entries[0], error, now));
                }
                self.limit = batch.entries.len().div_ceil(2);
                Turn::Done(Step::Progress)
            }
        }
    }

    /// A failed request, whatever its kind: the streak of failures grows, and the status says
    /// since when requests have been failing.
    fn count_failure(&mut self, error: &LastError, now: f64) {
        self.failures = self.failures.saturating_add(1);
        self.stats.retries += 1;
        self.status.failing_since.get_or_insert(now);
        self.status.state = SyncState::Error;
        self.status.last_error = Some(error.clone());
    }

    /// Nobody's fault: the batch waits (the queue with it, persisted) and no attempt counts.
    fn outage(
        &mut self,
        batch: &Batch,
        error: LastError,
        retry_after_ms: Option<u64>,
        now: f64,
        random: &mut dyn FnMut() -> f64,
    ) -> Turn {
        if self.suspect.take().is_some() {
            // The op sent to clear the suspect failed too: the server fails everything.
            self.limit = self.options.batch_size.max(1);
        }
        let settlement = self.wait_out(&batch.entries, &error, retry_after_ms, now, random);
        self.settlement(settlement)
    }

    /// `entries` wait out a failure of the request: a backoff (Retry-After as its floor), and no
    /// attempt counts.
    fn wait_out(
        &mut self,
        entries: &[OutboxEntry],
        error: &LastError,
        retry_after_ms: Option<u64>,
        now: f64,
        random: &mut dyn FnMut() -> f64,
    ) -> Settlement {
        self.count_failure(error, now);
        let next = now + self.options.retry.delay_ms(self.failures, random(), retry_after_ms) as f64;
        self.status.next_retry_at = Some(next);
        settle_outage(entries, error, next, &self.options.retry, now)
    }

    /// Lets a suspect no other op has been compared with go again; true if there was one.
    fn release_unwitnessed(&mut self) -> bool {
        let release = self.suspect.is_some_and(|s| !s.witnessed);
        if release {
            self.suspect = None;
        }
        release
    }

    /// The batch is the witnessed suspect, alone.
    fn witnessed_alone(&self, batch: &Batch) -> bool {
        matches!((self.suspect, batch.entries.as_slice()), (Some(s), [entry]) if s.witnessed && s.seq == entry.op.seq)
    }

    /// A failure that may be one op's: halve the batch after a backoff; a lone op becomes the
    /// suspect, or is pinned when it is the witnessed suspect (see the header).
    #[allow(clippy::too_many_arguments)]
    fn narrow(
        &mut self,
        report: Report<'_>,
        batch: &Batch,
        error: LastError,
        refused: bool,
        retry_after_ms: Option<u64>,
        now: f64,
        random: &mut dyn FnMut() -> f64,
    ) -> Turn {
        if self.witnessed_alone(batch) {
            self.suspect = None;
            self.limit = self.options.batch_size.max(1);
            self.count_failure(&error, now);
            let entry = &batch.entries[0];
            let at =
                now + self.options.retry.delay_ms(entry.attempts.saturating_add(1), random(), retry_after_ms) as f64;
            return self.settlement(settle_pinned(entry, &error, refused, at, &self.options.retry, now));
        }
        if batch.entries.len() > 1 && self.suspect.is_none() {
            self.count_failure(&error, now);
            self.limit = batch.entries.len().div_ceil(2);
            self.gate = now + self.options.retry.delay_ms(self.failures, random(), retry_after_ms) as f64;
            self.status.next_retry_at = Some(self.gate);
            self.publish(report);
            return Turn::Done(Step::Progress);
        }
        if self.suspect.is_some() || batch.entries.len() > 1 {
            return self.outage(batch, error, retry_after_ms, now, random);
        }
        let turn = self.outage(batch, error, retry_after_ms, now, random);
        self.gate = self.status.next_retry_at.unwrap_or(now);
        self.suspect = Some(Suspect { seq: batch.entries[0].op.seq, witnessed: false });
        turn
    }

    fn settlement(&self, mut settlement: Settlement) -> Turn {
        settlement.acked_ranges = acked_ranges(&self.window_seqs, &settlement.acked);
        Turn::Settle(settlement)
    }

    /// The settle transaction committed.
    pub fn settled(&mut self, report: Report<'_>, settlement: Settlement, dead_letters: u64) -> Step {
        let gone = (settlement.acked.len() + settlement.dead.len()) as u64;
        let drained = self.drains && settlement.updated.is_empty() && settlement.dead.is_empty();
        self.pending = self.pending.saturating_sub(gone);
        self.status.pending = self.pending;
        self.status.dead_letters = dead_letters;
        if !settlement.dead.is_empty() {
            self.stats.dead_lettered += settlement.dead.len() as u64;
            report(SyncEvent::DeadLettered(settlement.dead));
        }
        // A batch that was everything queued, all acknowledged: idle, without reading the outbox
        // again (writes made meanwhile start their own push).
        if drained {
            return self.idle(report);
        }
        self.publish(report);
        Step::Progress
    }

    /// Nothing left to send.
    fn idle(&mut self, report: Report<'_>) -> Step {
        self.drains = false;
        self.limit = self.options.batch_size.max(1);
        self.status.next_retry_at = None;
        self.end_run(report, true, None);
        self.set_state(report, SyncState::Idle);
        Step::Idle
    }

    /// A push transaction failed.
    pub fn storage_failed(&mut self, report: Report<'_>, reason: String) -> Step {
        self.suspect = None;
        let error = LastError::new(SyncErrorCode::Storage, reason, None);
        self.status.last_error = Some(error.clone());
        self.end_run(report, false, Some(error));
        self.set_state(report, SyncState::Error);
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
pub fn http_error(status: u16, body: &str) -> LastError {
    match super::wire::error_response(body) {
        Some((code, message)) => LastError::from_server(&code, message, Some(status), false),
        None => LastError::new(SyncErrorCode::Http, format!("the server answered HTTP {status}"), Some(status)),
    }
}
