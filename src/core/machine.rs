//! The sync machine: the whole sync loop of one database as a state machine. `handle(event,
//! now)` takes what the host reports and queues the actions it must perform; `wake_at` says when
//! to call again if nothing happens first. It never sleeps, awaits or performs I/O, in the manner
//! of quinn-proto and str0m, so the loop the browser runs is the loop the native tests and the
//! simulation run.
//!
//! The loop, one turn at a time with at most one action outstanding:
//! load the client id; then, while leading and not paused, push steps (`push_engine.rs`) until
//! the outbox is idle or backing off; resolve the conflicts the server reported
//! (`resolve_run.rs`); pull when a pull is wanted or due (`pull_run.rs`), a few pages at a time
//! while a push retry waits; sleep until a trigger (a local write after `debounceMs`, online,
//! visible, a poke, `sync()`, `pull()`) or a timer. After `auth` only an explicit `sync()` tries
//! again: writes and timers would only collect more 401s with a token the app has not replaced.

use serde_json::Value;

use super::activity::{HttpRequest, Need, Progress, SyncTx};
use super::error::ErrorCode;
use super::hlc::WriteClock;
use super::host::{Action, Failure};
use super::id::SplitMix64;
use super::json_text::object;
use super::live_channel::LiveChannel;
use super::local_tx::{CountQueues, LoadClient, CLIENT_ID};
use super::pull_run::{PullError, PullRun, PullSummary};
use super::push::Batch;
use super::push_engine::{PushEngine, Step, Turn};
use super::resolve_run::{RemoteState, ResolveRun};
use super::retry::parse_retry_after;
use super::schema::DatabaseSchema;
use super::status::{ConflictSource, PullEnd, PushStats, SyncEvent, SyncState, SyncStatus};
use super::steps::{Ctx, TxStep};
use super::sync_options::SyncOptions;
use super::tx::Round;

mod answers;
mod events;

/// While local writes keep coming, a push waits at most this long after the first of them (the
/// debounce restarts with every write, up to here), and pushes they start are this far apart.
const MAX_DEBOUNCE_MS: f64 = 1_000.0;

/// Pages per pull before the loop checks the outbox again (local writes wait at most this long).
const MAX_PAGES_PER_PULL: u32 = 20;
/// Pages per pull while a push retry is scheduled.
const PAGES_PER_PULL_WHILE_BACKING_OFF: u32 = 2;

/// What the sync machine is told at start.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    pub options: SyncOptions,
    /// The application gave `getToken`.
    pub has_token: bool,
    /// Collections with a resolver function (`None`: one for every collection).
    pub resolvers: Vec<Option<String>>,
    /// Sent as `X-Wharf-Context` with every push (only to a server of the page's own origin,
    /// elsewhere a custom header needs the server's CORS consent).
    pub context_id: Option<String>,
    pub online: bool,
    /// The page is visible (true where there is no page).
    pub visible: bool,
    /// A fresh client id, stored if the database has none yet.
    pub fresh_client_id: String,
    pub seed: u64,
}

/// One `db.sync()` or `db.pull()` waiting for a step (or pull) numbered above `after`.
struct Waiter {
    id: u32,
    after: u64,
    remote: bool,
}

/// What the machine is doing.
#[allow(clippy::large_enum_variant)] // one phase at a time, and the size of the code matters more
enum Phase {
    /// Nothing in flight; `until` is when to go on (`None`: at the next trigger).
    Sleeping {
        until: Option<f64>,
    },
    Loading,
    Counting,
    Preparing,
    Sending(Batch, f64),
    Settling,
    Resolving(ResolveRun, Step, bool),
    Pulling(PullRun, AfterPull),
}

/// Where the loop goes after a pull.
#[derive(Clone, Copy)]
enum AfterPull {
    Continue,
    /// A push retry is due at this time: sleep until then (or the next pull).
    Sleep(f64),
}

/// What a turn of the loop came to.
enum Flow {
    Continue,
    Wait,
    Sleep(Option<f64>),
}

/// The one outstanding action.
#[allow(clippy::large_enum_variant)]
enum Outstanding {
    Tx(SyncTx, Option<Round>),
    Http { request: HttpRequest, awaiting_token: bool },
    Resolver,
    Migrate,
}

/// The sync loop of one database.
pub struct SyncMachine {
    options: SyncOptions,
    has_token: bool,
    resolvers: Vec<Option<String>>,
    context_id: Option<String>,
    fresh_client_id: String,
    rng: SplitMix64,
    client_id: String,
    engine: PushEngine,
    phase: Phase,
    outstanding: Option<(u32, Outstanding)>,
    online: bool,
    closed: bool,
    paused: bool,
    leading: bool,
    kicked: bool,
    /// `sync()` was called: forget an `auth` failure before the next step.
    explicit: bool,
    waiting_for_auth: bool,
    steps_started: u64,
    pulls_started: u64,
    pull_number: u64,
    step_number: u64,
    want_pull: bool,
    pull_next_at: f64,
    pull_failures: u32,
    /// Transactions that died with their connection since one ended otherwise.
    lost_in_a_row: u32,
    /// The transaction that just failed died with its connection, and may be run again
    /// (`error::RECONNECT_RETRIES`): the loop goes on at once instead of reporting it.
    retry_lost: bool,
    acked_at_last_pull: u64,
    conflicts_seen: u64,
    conflict_failures: u32,
    next_conflict_try: f64,
    /// The documents the last prepared window found held by a conflict, with the server's side.
    held: Vec<RemoteState>,
    /// When the debounced push goes: `debounceMs` after the last local write, and no later than
    /// `MAX_DEBOUNCE_MS` after the first of a burst (`debounce_deadline`).
    debounce_at: Option<f64>,
    debounce_deadline: Option<f64>,
    /// When the last debounced push went: while writes keep coming, pushes are at least
    /// `MAX_DEBOUNCE_MS` apart (each push and the pull after it slow the writes down, which
    /// would otherwise open the next quiet gap and the next push).
    debounced_push_at: f64,
    last_write_at: f64,
    sync_waiters: Vec<Waiter>,
    pull_waiters: Vec<Waiter>,
    token: Option<String>,
    /// `getToken` was asked and must settle by then (`requestTimeoutMs`), or it counts as failed.
    token_deadline: Option<f64>,
    /// When the live channel's socket should be open, and when to try again.
    live: LiveChannel,
    /// The page is visible (a context without a page always is).
    visible: bool,
}

/// What a handler may touch besides the machine.
pub struct Io<'a> {
    pub now: f64,
    pub clock: &'a mut WriteClock,
    pub schema: &'a DatabaseSchema,
    pub actions: &'a mut Vec<Action>,
    pub next_ticket: &'a mut u32,
}

impl Io<'_> {
    fn ticket(&mut self) -> u32 {
        *self.next_ticket = self.next_ticket.wrapping_add(1).max(1);
        *self.next_ticket
    }
}

impl SyncMachine {
    pub fn new(mut config: SyncConfig) -> SyncMachine {
        config.options.engine.refreshes_tokens = config.has_token;
        // Replaced with the client id once loaded; until then it sends nothing.
        let engine = PushEngine::new(String::new(), config.options.engine, config.online);
        SyncMachine {
            has_token: config.has_token,
            resolvers: config.resolvers,
            context_id: config.context_id,
            fresh_client_id: config.fresh_client_id,
            rng: SplitMix64::new(config.seed),
            client_id: String::new(),
            engine,
            phase: Phase::Sleeping { until: None },
            outstanding: None,
            online: config.online,
            closed: false,
            paused: false,
            leading: false,
            kicked: true,
            explicit: false,
            waiting_for_auth: false,
            steps_started: 0,
            pulls_started: 0,
            pull_number: 0,
            step_number: 0,
            want_pull: true,
            pull_next_at: 0.0,
            pull_failures: 0,
            lost_in_a_row: 0,
            retry_lost: false,
            acked_at_last_pull: 0,
            conflicts_seen: 0,
            conflict_failures: 0,
            next_conflict_try: 0.0,
            held: Vec::new(),
            debounce_at: None,
            debounce_deadline: None,
            debounced_push_at: f64::NEG_INFINITY,
            last_write_at: f64::NEG_INFINITY,
            sync_waiters: Vec::new(),
            pull_waiters: Vec::new(),
            token: None,
            token_deadline: None,
            live: LiveChannel::new(!config.options.transport),
            visible: config.visible,
            options: config.options,
        }
    }

    pub fn status(&self) -> &SyncStatus {
        self.engine.status()
    }

    pub fn stats(&self) -> PushStats {
        self.engine.stats()
    }

    /// Whether this context drains (for the debug report).
    pub fn leading(&self) -> bool {
        self.leading
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    pub fn options(&self) -> &SyncOptions {
        &self.options
    }

    /// When to wake the machine if nothing happens first.
    pub fn wake_at(&self) -> Option<f64> {
        let sleeping = match self.phase {
            Phase::Sleeping { until } if !self.closed => until,
            _ => None,
        };
        let sleeping = earliest(&[sleeping, self.live.wake_at()]);
        [sleeping, self.debounce_at, self.token_deadline].into_iter().flatten().reduce(f64::min)
    }

    /// Whether `ticket` is this machine's outstanding transaction.
    pub fn owns(&self, ticket: u32) -> bool {
        matches!(&self.outstanding, Some((t, Outstanding::Tx(..))) if *t == ticket)
    }

    /// The next round of the outstanding transaction (see `Replica::decide`).
    pub fn decide(&mut self, results: Vec<Value>, ctx: &mut Ctx<'_>) -> Round {
        match &mut self.outstanding {
            Some((_, Outstanding::Tx(step, stash))) => stash.take().unwrap_or_else(|| step.advance(results, ctx)),
            _ => Round::Abort(super::CoreError::Unreadable("no such transaction".into())),
        }
    }

    /// Starts the loop (it loads the client id first).
    pub fn start(&mut self, io: &mut Io<'_>) {
        self.run(io);
    }

    /// Runs the loop from its top until something is in flight or it sleeps.
    fn run(&mut self, io: &mut Io<'_>) {
        loop {
            let flow = self.turn(io);
            match self.settle_flow(flow, io) {
                Flow::Continue => continue,
                _ => return,
            }
        }
    }

    /// Turns `Sleep` into `Continue` when a trigger came meanwhile; records a sleep.
    fn settle_flow(&mut self, flow: Flow, io: &mut Io<'_>) -> Flow {
        match flow {
            Flow::Sleep(_) if self.kicked && !self.closed => Flow::Continue,
            Flow::Sleep(until) => {
                self.phase = Phase::Sleeping { until };
                if !self.leading {
                    io.actions.push(Action::Idle);
                }
                Flow::Sleep(until)
            }
            flow => flow,
        }
    }

    /// The top of the loop.
    fn turn(&mut self, io: &mut Io<'_>) -> Flow {
        if self.closed {
            self.phase = Phase::Sleeping { until: None };
            return Flow::Wait;
        }
        if self.client_id.is_empty() {
            self.kicked = false;
            self.phase = Phase::Loading;
            let (key, evicted_key) = (self.options.for_user(CLIENT_ID.to_owned()), self.options.evicted_key());
            let load = LoadClient::new(self.fresh_client_id.clone(), key, evicted_key, self.options.expect_synced);
            return self.need(Need::Tx(SyncTx::LoadClient(load)), io);
        }
        if self.paused {
            if self.engine.status().state != SyncState::Paused {
                self.engine.set_paused(&mut reporter(io.actions), true);
            }
            self.settle_all(io, Failure::new(ErrorCode::Paused, "sync was paused"));
            self.kicked = false;
            self.phase = Phase::Counting;
            return self.need(Need::Tx(SyncTx::Counts(CountQueues::default())), io);
        }
        if self.engine.status().state == SyncState::Paused {
            self.engine.set_paused(&mut reporter(io.actions), false);
        }
        if !self.leading {
            // Another context drains; this one wakes when it becomes the leader.
            self.kicked = false;
            return Flow::Sleep(None);
        }
        if std::mem::take(&mut self.explicit) {
            self.engine.reset_auth();
            self.waiting_for_auth = false;
            self.next_conflict_try = 0.0; // a resolver that failed before gets another chance now
        }
        self.kicked = false;
        if self.waiting_for_auth {
            return Flow::Sleep(None);
        }
        self.steps_started += 1;
        self.step_number = self.steps_started;
        if !self.options.push {
            return self.after_step(Step::Idle, io);
        }
        if self.refilling() {
            // What an emptied database would push was written without the server's state: it
            // waits for the full pull, which finds any overlap as a conflict.
            return self.after_step(if self.online { Step::Idle } else { Step::Offline }, io);
        }
        let online = self.online;
        let turn = self.engine.begin(&mut reporter(io.actions), online, io.now);
        match turn {
            Turn::Done(step) => self.after_step(step, io),
            Turn::Prepare(prepare) => {
                self.phase = Phase::Preparing;
                self.need(Need::Tx(SyncTx::Prepare(prepare)), io)
            }
            Turn::Send(_) | Turn::Settle(_) => Flow::Continue,
        }
    }

    /// After a push step: resolve what the server reported held, then pull or sleep.
    fn after_step(&mut self, step: Step, io: &mut Io<'_>) -> Flow {
        let held = self.engine.status().conflicts > 0;
        let stats = self.engine.stats();
        // Only the context that drains resolves: one that lost the role while its request was
        // out still settles the answer (acknowledgements and conflicts are facts), but a
        // resolution queues a new op, and the leader may be sending the same op meanwhile.
        let due = stats.conflicts > self.conflicts_seen || (held && io.now >= self.next_conflict_try);
        if self.leading && due {
            self.conflicts_seen = stats.conflicts;
            let mut run = ResolveRun::new(self.held.clone(), ConflictSource::Push);
            let progress = self.with_env(io, |env| run.start(env));
            return match progress {
                Progress::Need(need) => {
                    self.phase = Phase::Resolving(run, step, held);
                    self.need(need, io)
                }
                Progress::Done(outcome) => self.resolved(outcome, step, held, io),
            };
        }
        self.finish_step(step, held, io)
    }

    fn resolved(&mut self, outcome: Result<u64, String>, step: Step, held: bool, io: &mut Io<'_>) -> Flow {
        if matches!(outcome, Ok(n) if n > 0) {
            self.conflict_failures = 0;
            return Flow::Continue; // push the resolutions
        }
        self.conflict_failures = self.conflict_failures.saturating_add(1);
        let delay = self.options.engine.retry.delay_ms(self.conflict_failures, self.rng.next_f64(), None);
        self.next_conflict_try = io.now + delay as f64;
        self.finish_step(step, held, io)
    }

    fn finish_step(&mut self, step: Step, held: bool, io: &mut Io<'_>) -> Flow {
        let now = io.now;
        if self.engine.stats().acked > self.acked_at_last_pull {
            // What just landed may have changed server versions other clients' changes sit on.
            self.acked_at_last_pull = self.engine.stats().acked;
            self.want_pull = true;
        }
        let writing = self.writing(now);
        let pull_due = self.options.pull && !writing && (self.want_pull || now >= self.pull_next_at);
        let pull_at = self.pull_at(now);
        match step {
            Step::Progress => Flow::Continue,
            Step::Idle => {
                if !self.refilling() {
                    let summary = self.summary();
                    self.settle_sync_waiters(io, self.step_number, Ok(summary));
                }
                if pull_due {
                    return self.start_pull(MAX_PAGES_PER_PULL, AfterPull::Continue, io);
                }
                Flow::Sleep(self.idle_wake(now, held))
            }
            Step::WaitUntil(at) => {
                // Pushing backs off; pulling need not wait for it, but takes few pages at a
                // time so the retry goes out when it is due.
                if pull_due {
                    return self.start_pull(PAGES_PER_PULL_WHILE_BACKING_OFF, AfterPull::Sleep(at), io);
                }
                Flow::Sleep(earliest(&[Some(at), pull_at]))
            }
            Step::Offline => {
                let offline = || Failure::new(ErrorCode::Offline, "the browser is offline");
                self.settle_sync_waiters(io, self.step_number, Err(offline()));
                self.settle_pull_waiters(io, u64::MAX, Err(offline()));
                self.phase = Phase::Counting;
                self.need(Need::Tx(SyncTx::Counts(CountQueues::default())), io)
            }
            Step::AuthRequired => {
                self.waiting_for_auth = true;
                let failure = self.failure(ErrorCode::Auth, "the server refused the token");
                self.settle_sync_waiters(io, self.step_number, Err(failure));
                Flow::Sleep(None)
            }
            Step::StorageFailed if self.retrying_lost() => Flow::Continue,
            Step::StorageFailed => {
                let failure = self.failure(ErrorCode::Storage, "the outbox failed");
                self.settle_sync_waiters(io, self.step_number, Err(failure));
                let interval =
                    (self.options.push_interval_ms > 0).then(|| now + f64::from(self.options.push_interval_ms));
                Flow::Sleep(interval)
            }
        }
    }

    /// An emptied database is being refilled (`SyncStatus::evicted`): pushes wait for the pull.
    fn refilling(&self) -> bool {
        self.engine.status().evicted && self.options.pull
    }

    /// Local writes are coming in (the last less than `MAX_DEBOUNCE_MS` ago) and no `pull()`
    /// waits: pulling waits until they stop. A pull rewrites records under the writes (often
    /// just this client's own pushes coming back), and the writes would wait for it.
    fn writing(&self, now: f64) -> bool {
        now - self.last_write_at < MAX_DEBOUNCE_MS && self.pull_waiters.is_empty()
    }

    /// When an idle loop wakes by itself: the push timer, the pull timer, and (`held`: the outbox
    /// holds documents in conflict) the next try at resolving them.
    fn idle_wake(&self, now: f64, held: bool) -> Option<f64> {
        let interval = (self.options.push_interval_ms > 0).then(|| now + f64::from(self.options.push_interval_ms));
        let conflict_wait = held.then_some(self.next_conflict_try.max(now));
        earliest(&[interval, self.pull_at(now), conflict_wait])
    }

    /// When the next pull is due: the pull timer, or at once if one is wanted; either way not
    /// before local writes stop (`writing`).
    fn pull_at(&self, now: f64) -> Option<f64> {
        if !self.options.pull {
            return None;
        }
        let writes_end = if self.writing(now) { self.last_write_at + MAX_DEBOUNCE_MS } else { now };
        let due = if self.want_pull { writes_end } else { self.pull_next_at.max(writes_end) };
        due.is_finite().then_some(due)
    }

    fn start_pull(&mut self, max_pages: u32, after: AfterPull, io: &mut Io<'_>) -> Flow {
        self.want_pull = false;
        self.pulls_started += 1;
        self.pull_number = self.pulls_started;
        let (run, need) = self.with_env(io, |env| PullRun::start(max_pages, env));
        self.phase = Phase::Pulling(run, after);
        self.need(need, io)
    }

    /// A pull ended. Returns whether the loop has more to do at once: more pages, or conflicts
    /// the pull met whose resolutions wait to be pushed.
    fn pulled(&mut self, outcome: Result<PullSummary, PullError>, max_pages: u32, io: &mut Io<'_>) -> bool {
        let now = io.now;
        // An emptied database refilled: what waited for it is pushed now.
        let mut refilled = false;
        let report = match &outcome {
            Ok(summary) => {
                let complete = summary.pages < max_pages;
                refilled = complete && self.engine.status().evicted;
                let stats = self.engine.stats_mut();
                stats.pulls += 1;
                stats.pulled += summary.applied;
                let status = self.engine.status_mut();
                status.last_pulled_at = Some(now);
                status.pull_error = None;
                status.has_synced |= complete;
                status.evicted &= !complete;
                PullEnd { ok: true, complete, summary: summary.to_json(), error: None }
            }
            Err(error) => {
                self.engine.stats_mut().pull_failures += 1;
                let error = error.to_last_error();
                self.engine.status_mut().pull_error = Some(error.clone());
                PullEnd { ok: false, complete: false, summary: Value::Null, error: Some(error) }
            }
        };
        let summary = report.summary.clone();
        {
            let mut emit = reporter(io.actions);
            emit(SyncEvent::Pull(report));
            self.engine.publish(&mut emit);
        }
        let json_summary = summary;
        match outcome {
            Ok(summary) => {
                let more = summary.pages == max_pages || summary.conflicts > 0 || refilled;
                self.pull_failures = 0;
                self.pull_next_at = match self.options.pull_interval_ms {
                    0 => f64::INFINITY,
                    ms => now + f64::from(ms),
                };
                if summary.pages == max_pages {
                    self.want_pull = true; // more to come: go on after the next push step
                }
                self.settle_pull_waiters(io, self.pull_number, Ok(json_summary));
                more
            }
            Err(PullError::Storage(_)) if self.retrying_lost() => {
                self.want_pull = true;
                true
            }
            Err(error) => {
                self.pull_failures = self.pull_failures.saturating_add(1);
                let retry_after = match &error {
                    PullError::Http { retry_after: Some(header), .. } => parse_retry_after(header, now),
                    _ => None,
                };
                let delay = self.options.engine.retry.delay_ms(self.pull_failures, self.rng.next_f64(), retry_after);
                self.pull_next_at = now + delay as f64;
                let code = match &error {
                    PullError::Http { status: 401 | 403, .. } => ErrorCode::Auth,
                    PullError::Http { .. } | PullError::Protocol(_) => ErrorCode::Server,
                    PullError::Network(_) | PullError::Timeout => ErrorCode::Network,
                    PullError::Storage(_) => ErrorCode::Storage,
                };
                let failure = Failure::new(code, error.to_string());
                if self.refilling() {
                    self.settle_sync_waiters(io, u64::MAX, Err(failure.clone()));
                    // they wait for the refill
                }
                self.settle_pull_waiters(io, self.pull_number, Err(failure));
                false
            }
        }
    }

    /// Whether the transaction that just failed is to be run again on a new connection (the
    /// host reconnects): the loop's next turn reads afresh and redoes what did not commit.
    fn retrying_lost(&mut self) -> bool {
        std::mem::take(&mut self.retry_lost)
    }

    /// Tells the status whether the live channel is connected, when that changed.
    fn show_live(&mut self, io: &mut Io<'_>) {
        let connected = self.live.connected();
        if self.engine.status().live != connected {
            self.engine.status_mut().live = connected;
            self.engine.publish(&mut reporter(io.actions));
        }
    }

    // ----- waiters -----

    fn summary(&self) -> Value {
        let status = self.engine.status();
        object(vec![
            ("pending", status.pending.into()),
            ("deadLetters", status.dead_letters.into()),
            ("conflicts", status.conflicts.into()),
        ])
    }

    fn failure(&self, code: ErrorCode, fallback: &str) -> Failure {
        let message =
            self.engine.status().last_error.as_ref().map_or_else(|| fallback.to_owned(), |e| e.message.clone());
        Failure::new(code, message)
    }

    fn settle_sync_waiters(&mut self, io: &mut Io<'_>, step: u64, outcome: Result<Value, Failure>) {
        settle(&mut self.sync_waiters, step, &outcome, io);
    }

    fn settle_pull_waiters(&mut self, io: &mut Io<'_>, pull: u64, outcome: Result<Value, Failure>) {
        settle(&mut self.pull_waiters, pull, &outcome, io);
    }

    fn settle_all(&mut self, io: &mut Io<'_>, failure: Failure) {
        self.settle_sync_waiters(io, u64::MAX, Err(failure.clone()));
        self.settle_pull_waiters(io, u64::MAX, Err(failure));
    }
}

/// Reports events by queueing `Emit` actions.
fn reporter(actions: &mut Vec<Action>) -> impl FnMut(SyncEvent) + '_ {
    move |event| actions.push(Action::Emit(event))
}

/// Settles the waiters asked for before step (or pull) `number`.
fn settle(waiters: &mut Vec<Waiter>, number: u64, outcome: &Result<Value, Failure>, io: &mut Io<'_>) {
    waiters.retain(|waiter| {
        if waiter.after >= number {
            return true;
        }
        io.actions.push(Action::Settle { waiter: waiter.id, outcome: outcome.clone() });
        false
    });
}

/// Removes and returns the waiters asked for in this context.
fn take_local(waiters: &mut Vec<Waiter>) -> Vec<Waiter> {
    let (local, remote): (Vec<Waiter>, Vec<Waiter>) = waiters.drain(..).partition(|w| !w.remote);
    *waiters = remote;
    local
}

/// The documents held by a conflict in a prepared window, once each, with the server's side.
fn held_remotes(held: &[super::op::OutboxEntry]) -> Vec<RemoteState> {
    let mut remotes: Vec<RemoteState> = Vec::new();
    for entry in held {
        let Some(conflict) = &entry.conflict else { continue };
        let remote = RemoteState {
            collection: entry.op.collection.clone(),
            key: entry.op.key.clone(),
            value: conflict.value.clone(),
            version: conflict.version,
            hlc: conflict.hlc.clone(),
            shape: conflict.shape,
        };
        match remotes.iter_mut().find(|r| r.collection == remote.collection && r.key == remote.key) {
            Some(known) => *known = remote,
            None => remotes.push(remote),
        }
    }
    remotes
}

/// The soonest of the given times.
fn earliest(times: &[Option<f64>]) -> Option<f64> {
    times.iter().flatten().copied().reduce(f64::min)
}
