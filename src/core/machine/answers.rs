//! The sync machine's answers: routing what the host reports back (a committed transaction, a
//! response, a token, a resolver's answer) to what is in flight, and turning what activities
//! need into actions. A child of `machine.rs`, split off to keep each file readable.

use super::{earliest, held_remotes, Io};
use super::{
    reporter, AfterPull, Flow, Outstanding, Phase, SyncMachine, MAX_PAGES_PER_PULL, PAGES_PER_PULL_WHILE_BACKING_OFF,
};
use crate::core::activity::{Env, HttpRequest, Input, Need, Progress, SyncTx};
use crate::core::error::ErrorCode;
use crate::core::host::{Action, Failure};
use crate::core::json_text::JsonText;
use crate::core::push::Batch;
use crate::core::push_engine::{HttpReply, PushEngine, Turn};
use crate::core::push_tx::SettleBatch;
use crate::core::resolve_run::RESOLVER_TIMEOUT_MS;
use crate::core::status::SyncEvent;
use crate::core::steps::{Ctx, TxStep};
use crate::core::tx::{Round, Scope};

impl SyncMachine {
    /// Routes an answer to what is in flight, then goes on with the loop.
    pub(super) fn resume(&mut self, input: Input, io: &mut Io<'_>) {
        let phase = std::mem::replace(&mut self.phase, Phase::Sleeping { until: None });
        let flow = match (phase, input) {
            (Phase::Loading, Input::Committed(SyncTx::LoadClient(load))) => match load.outcome {
                Some(loaded) => {
                    for stamp in &loaded.stamps {
                        io.clock.restore(stamp, io.now);
                    }
                    self.engine = PushEngine::new(loaded.id.clone(), self.options.engine, self.online)
                        .for_user(self.options.user.clone());
                    // Only a context that pulls can refill (and then clear the mark).
                    self.engine.status_mut().evicted = loaded.refilling && self.options.pull;
                    let mut emit = reporter(io.actions);
                    if loaded.found_evicted {
                        emit(SyncEvent::Evicted);
                    }
                    self.engine.publish(&mut emit);
                    self.client_id = loaded.id;
                    Flow::Continue
                }
                None => self.load_failed("the client id could not be read".into(), io),
            },
            (Phase::Loading, Input::Failed(reason)) => self.load_failed(reason, io),
            (Phase::Counting, input) => {
                if let Input::Committed(SyncTx::Counts(counts)) = input {
                    if let Some((pending, dead)) = counts.outcome {
                        self.engine.observe_counts(&mut reporter(io.actions), pending, dead);
                    }
                }
                Flow::Sleep(None)
            }
            (Phase::Preparing, Input::Committed(SyncTx::Prepare(prepare))) => match prepare.outcome {
                Some((preparation, counts)) => {
                    self.held = held_remotes(&preparation.held);
                    let turn = self.engine.prepared(&mut reporter(io.actions), preparation, counts);
                    match turn {
                        Turn::Send(batch) => self.send(batch, io),
                        Turn::Done(step) => self.after_step(step, io),
                        _ => Flow::Continue,
                    }
                }
                None => self.storage_failed("the outbox transaction ended before it was read".into(), io),
            },
            (Phase::Sending(batch, started), Input::Http(reply)) => {
                let now = io.now;
                let turn = {
                    let rng = &mut self.rng;
                    let mut random = || rng.next_f64();
                    let mut report = reporter(io.actions);
                    self.engine.replied(&mut report, &batch, reply, now, now - started, &mut random)
                };
                match turn {
                    Turn::Settle(settlement) => {
                        let keep_base = self.options.conflicts.keeping_base(io.schema);
                        self.phase = Phase::Settling;
                        let settle = SettleBatch::new(settlement, keep_base).recording_versions(self.options.transport);
                        self.need(Need::Tx(SyncTx::Settle(settle)), io)
                    }
                    Turn::Done(step) => self.after_step(step, io),
                    _ => Flow::Continue,
                }
            }
            (Phase::Settling, Input::Committed(SyncTx::Settle(settle))) => {
                let dead = settle.dead_letters.unwrap_or(self.engine.status().dead_letters);
                let settlement = settle.into_settlement();
                for remote in held_remotes(&settlement.updated) {
                    self.held.retain(|r| r.collection != remote.collection || r.key != remote.key);
                    self.held.push(remote);
                }
                let step = self.engine.settled(&mut reporter(io.actions), settlement, dead);
                self.after_step(step, io)
            }
            (Phase::Preparing | Phase::Settling | Phase::Sending(..), input) => {
                let reason = match input {
                    Input::Failed(reason) => reason,
                    _ => "an answer arrived out of order".into(),
                };
                self.storage_failed(reason, io)
            }
            (Phase::Resolving(mut run, step, held), input) => match self.with_env(io, |env| run.handle(input, env)) {
                Progress::Need(need) => {
                    self.phase = Phase::Resolving(run, step, held);
                    self.need(need, io)
                }
                Progress::Done(outcome) => self.resolved(outcome, step, held, io),
            },
            (Phase::Pulling(mut run, after), input) => {
                let progress = self.with_env(io, |env| run.handle(input, env));
                match progress {
                    Progress::Need(need) => {
                        self.phase = Phase::Pulling(run, after);
                        self.need(need, io)
                    }
                    Progress::Done(outcome) => {
                        let max_pages = match after {
                            AfterPull::Continue => MAX_PAGES_PER_PULL,
                            AfterPull::Sleep(_) => PAGES_PER_PULL_WHILE_BACKING_OFF,
                        };
                        let more = self.pulled(outcome, max_pages, io);
                        match after {
                            AfterPull::Continue if more => Flow::Continue,
                            // Caught up: sleep until a trigger, as after an idle push step.
                            AfterPull::Continue => {
                                Flow::Sleep(self.idle_wake(io.now, self.engine.status().conflicts > 0))
                            }
                            AfterPull::Sleep(at) => {
                                let pull_at = self.pull_at(io.now);
                                Flow::Sleep(earliest(&[Some(at), pull_at]))
                            }
                        }
                    }
                }
            }
            (phase, _) => {
                self.phase = phase;
                Flow::Wait
            }
        };
        if let Flow::Continue = self.settle_flow(flow, io) {
            self.run(io);
        }
    }

    pub(super) fn load_failed(&mut self, reason: String, io: &mut Io<'_>) -> Flow {
        if self.retrying_lost() {
            return Flow::Continue;
        }
        let step = self.steps_started + 1;
        self.settle_sync_waiters(io, step, Err(Failure::new(ErrorCode::Storage, reason)));
        self.kicked = false;
        Flow::Sleep((self.options.push_interval_ms > 0).then(|| io.now + f64::from(self.options.push_interval_ms)))
    }

    pub(super) fn storage_failed(&mut self, reason: String, io: &mut Io<'_>) -> Flow {
        let step = self.engine.storage_failed(&mut reporter(io.actions), reason);
        self.after_step(step, io)
    }

    pub(super) fn send(&mut self, batch: Batch, io: &mut Io<'_>) -> Flow {
        let mut headers = self.options.headers.clone();
        headers.push(("Content-Type".into(), "application/json".into()));
        headers.push(("Idempotency-Key".into(), batch.idempotency_key.clone()));
        if let Some(context) = &self.context_id {
            headers.push(("X-Wharf-Context".into(), context.clone()));
        }
        let request = HttpRequest {
            method: "POST",
            url: self.options.push_url(),
            headers,
            body: Some(batch.body.clone()),
            query: None,
        };
        let fresh_token = self.engine.wants_fresh_token();
        self.phase = Phase::Sending(batch, io.now);
        self.need(Need::Http { request, fresh_token }, io)
    }

    // ----- performing what activities need -----

    /// Turns a need into an action for the host.
    pub(super) fn need(&mut self, need: Need, io: &mut Io<'_>) -> Flow {
        let ticket = io.ticket();
        match need {
            Need::Tx(mut tx) => {
                let scope: Scope = tx.scope(io.schema);
                let first = tx.advance(Vec::new(), &mut Ctx { now: io.now, clock: io.clock, schema: io.schema });
                let (reads, stash) = match first {
                    Round::Read(reads) => (reads, None),
                    round => (Vec::new(), Some(round)),
                };
                io.actions.push(Action::Tx { ticket, scope, reads });
                self.outstanding = Some((ticket, Outstanding::Tx(tx, stash)));
            }
            Need::Http { request, fresh_token } => {
                if self.has_token && (self.token.is_none() || fresh_token) {
                    io.actions.push(Action::Token { ticket });
                    self.token_deadline = Some(io.now + f64::from(self.options.request_timeout_ms));
                    self.outstanding = Some((ticket, Outstanding::Http { request, awaiting_token: true }));
                } else {
                    self.request(ticket, request, io);
                }
            }
            Need::Resolver { collection, context } => {
                io.actions.push(Action::Resolver { ticket, collection, context, timeout_ms: RESOLVER_TIMEOUT_MS });
                self.outstanding = Some((ticket, Outstanding::Resolver));
            }
            Need::Migrate(docs) => {
                io.actions.push(Action::Migrate { ticket, docs });
                self.outstanding = Some((ticket, Outstanding::Migrate));
            }
        }
        Flow::Wait
    }

    pub(super) fn request(&mut self, ticket: u32, mut request: HttpRequest, io: &mut Io<'_>) {
        if let Some(token) = &self.token {
            request.headers.push(("Authorization".into(), format!("Bearer {token}")));
        }
        io.actions.push(Action::Http { ticket, request: request.clone(), timeout_ms: self.options.request_timeout_ms });
        self.outstanding = Some((ticket, Outstanding::Http { request, awaiting_token: false }));
    }

    pub(super) fn token_arrived(&mut self, ticket: u32, token: Result<String, String>, io: &mut Io<'_>) {
        let request = match &self.outstanding {
            Some((t, Outstanding::Http { request, awaiting_token: true })) if *t == ticket => request.clone(),
            _ => return,
        };
        self.token_deadline = None;
        match token.and_then(|t| {
            if t.is_empty() {
                Err("getToken must resolve to a non-empty string".into())
            } else {
                Ok(t)
            }
        }) {
            Ok(token) => {
                self.token = Some(token);
                self.request(ticket, request, io);
            }
            // A token that cannot be obtained is treated like a refused one: bounded retries,
            // then `auth`.
            Err(reason) => {
                self.outstanding = None;
                let mut body = JsonText::new();
                body.open_object().key("code").string("TOKEN").key("message");
                body.string(&format!("getToken failed: {reason}")).key("protocol").uint(1).close_object();
                let body = body.finish();
                self.resume(Input::Http(HttpReply::Response { status: 401, retry_after: None, body }), io);
            }
        }
    }

    /// `getToken` did not settle in time: a failed token (its late answer is ignored).
    pub(super) fn token_overdue(&mut self, io: &mut Io<'_>) {
        if self.token_deadline.is_some_and(|at| at <= io.now) {
            // Cleared first: the failure may ask for a token again at once, with a new deadline.
            self.token_deadline = None;
            if let Some((ticket, Outstanding::Http { awaiting_token: true, .. })) = &self.outstanding {
                let ticket = *ticket;
                let reason =
                    format!("it did not settle within requestTimeoutMs ({} ms)", self.options.request_timeout_ms);
                self.token_arrived(ticket, Err(reason), io);
            }
        }
    }

    pub(super) fn with_env<T>(&mut self, io: &mut Io<'_>, f: impl FnOnce(&mut Env<'_>) -> T) -> T {
        let actions = &mut *io.actions;
        let mut report = |event| actions.push(Action::Emit(event));
        let mut env = Env {
            now: io.now,
            options: &self.options,
            schema: io.schema,
            client_id: &self.client_id,
            has_token: self.has_token,
            clock: io.clock,
            report: &mut report,
            resolvers: &self.resolvers,
        };
        f(&mut env)
    }
}
