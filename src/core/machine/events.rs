//! The sync machine's events: what each thing the host reports (a timer, a local write,
//! online/offline, visibility, a poke, pause/resume/close, `sync()`/`pull()`, the role, an
//! answer) does to the loop. A child of `machine.rs`, split off to keep each file readable.

use super::{take_local, Io, Outstanding, Phase, SyncMachine, Waiter, MAX_DEBOUNCE_MS};
use crate::core::activity::{Input, SyncTx};
use crate::core::error::{ErrorCode, RECONNECT_RETRIES};
use crate::core::host::{Action, Event, Failure};
use crate::core::live_channel::LiveAction;
use crate::core::push_engine::HttpReply;

impl SyncMachine {
    pub fn handle(&mut self, event: Event, io: &mut Io<'_>) {
        match event {
            Event::Timer => {
                self.token_overdue(io);
                let random = self.rng.next_f64();
                if let Some(action) = self.live.timer(io.now, random) {
                    io.actions.push(Action::Live(action == LiveAction::Connect));
                    self.show_live(io);
                }
                if self.debounce_at.is_some_and(|at| at <= io.now) {
                    self.debounce_at = None;
                    self.debounce_deadline = None;
                    self.debounced_push_at = io.now;
                    self.kick(io);
                }
                if matches!(self.phase, Phase::Sleeping { until: Some(at) } if at <= io.now) {
                    if self.debounce_at.is_some() && self.writing(io.now) {
                        // Writes are coming and their push is due soon: what woke the loop
                        // (a timer, a wanted pull) goes with it, not ahead of it.
                        self.phase = Phase::Sleeping { until: self.debounce_at };
                    } else {
                        self.run(io);
                    }
                }
            }
            Event::LocalWrite => {
                self.last_write_at = io.now;
                match self.options.debounce_ms {
                    0 => self.kick(io),
                    ms => {
                        let deadline = *self.debounce_deadline.get_or_insert(io.now + MAX_DEBOUNCE_MS);
                        let quiet = (io.now + f64::from(ms)).max(self.debounced_push_at + MAX_DEBOUNCE_MS);
                        self.debounce_at = Some(quiet.min(deadline));
                    }
                }
            }
            Event::Poke if self.writing(io.now) => {
                // Local writes are coming in (often the poke is this client's own push coming
                // back): the pull waits until they stop (`SyncMachine::writing`).
                self.live.heard(io.now);
                self.want_pull = true;
            }
            Event::Online | Event::Visible | Event::Poke => {
                match event {
                    Event::Online => self.online = true,
                    Event::Visible => self.visible = true,
                    _ => self.live.heard(io.now),
                }
                self.update_live(io);
                self.want_pull = true;
                self.kick(io);
            }
            Event::Offline => {
                self.online = false;
                self.update_live(io);
                self.kick(io);
            }
            Event::Hidden => {
                self.visible = false;
                self.update_live(io);
            }
            Event::LiveOpened => {
                self.live.opened(io.now);
                self.show_live(io);
            }
            Event::LiveHeard => self.live.heard(io.now),
            Event::ServerDate(ms) => io.clock.server_time(ms, io.now),
            Event::LiveClosed => {
                let random = self.rng.next_f64();
                self.live.closed(io.now, random);
                self.show_live(io);
            }
            Event::Pause => {
                self.paused = true;
                // This context's own calls fail with PAUSED; other contexts' go to the next leader.
                for waiters in [&mut self.sync_waiters, &mut self.pull_waiters] {
                    for waiter in take_local(waiters) {
                        io.actions.push(Action::Settle {
                            waiter: waiter.id,
                            outcome: Err(Failure::new(ErrorCode::Paused, "sync was paused")),
                        });
                    }
                }
                self.kick(io);
            }
            Event::Resume => {
                self.paused = false;
                self.kick(io);
            }
            Event::Close => {
                if !self.closed {
                    self.closed = true;
                    self.debounce_at = None;
                    self.debounce_deadline = None;
                    let closed = || Err(Failure::new(ErrorCode::Closed, "the database was closed"));
                    for waiter in self.sync_waiters.drain(..).chain(self.pull_waiters.drain(..)) {
                        io.actions.push(Action::Settle { waiter: waiter.id, outcome: closed() });
                    }
                    self.update_live(io);
                }
            }
            Event::Sync { waiter, remote, online } => {
                self.came_online(online);
                if let Some(refused) = self.refused() {
                    io.actions.push(Action::Settle { waiter, outcome: Err(refused) });
                    return;
                }
                self.sync_waiters.push(Waiter { id: waiter, after: self.steps_started, remote });
                self.explicit = true;
                self.kick(io);
            }
            Event::Pull { waiter, remote, online } => {
                self.came_online(online);
                let refused = match self.options.pull {
                    false => {
                        Some(Failure::new(ErrorCode::NotConfigured, "sync.direction is \"push\": nothing is pulled"))
                    }
                    true => self.refused(),
                };
                if let Some(refused) = refused {
                    io.actions.push(Action::Settle { waiter, outcome: Err(refused) });
                    return;
                }
                self.pull_waiters.push(Waiter { id: waiter, after: self.pulls_started, remote });
                self.want_pull = true;
                self.kick(io);
            }
            Event::Leading(leading) => {
                if self.leading == leading {
                    return;
                }
                self.leading = leading;
                self.want_pull |= leading; // a new drainer catches up first
                if !leading {
                    // Pending `sync()`/`pull()` calls go to the new leader.
                    for (waiters, pull) in [(&mut self.sync_waiters, false), (&mut self.pull_waiters, true)] {
                        for waiter in waiters.drain(..) {
                            io.actions.push(Action::Forward { waiter: waiter.id, pull });
                        }
                    }
                }
                self.update_live(io);
                self.kick(io);
            }
            Event::Committed { ticket } => {
                if let Some(Outstanding::Tx(tx, _)) = self.take(ticket) {
                    self.lost_in_a_row = 0;
                    self.retry_lost = false;
                    self.resume(Input::Committed(tx), io);
                }
            }
            Event::Failed { ticket, code, reason, lost } => {
                if let Some(Outstanding::Tx(tx, _)) = self.take(ticket) {
                    self.retry_lost = lost && self.lost_in_a_row < RECONNECT_RETRIES;
                    self.lost_in_a_row = if lost { self.lost_in_a_row + 1 } else { 0 };
                    let input = match (code, tx) {
                        (ErrorCode::Constraint, tx @ (SyncTx::Apply(_) | SyncTx::Resolution(_))) => {
                            Input::Constraint(tx, reason)
                        }
                        _ => Input::Failed(reason),
                    };
                    self.resume(input, io);
                }
            }
            Event::Http { ticket, reply } => {
                if let HttpReply::Network { online, .. } = &reply {
                    self.online = *online;
                }
                if let Some(Outstanding::Http { .. }) = self.take(ticket) {
                    self.resume(Input::Http(reply), io);
                }
            }
            Event::Token { ticket, token } => self.token_arrived(ticket, token, io),
            Event::Resolver { ticket, answer } => {
                if let Some(Outstanding::Resolver) = self.take(ticket) {
                    self.resume(Input::Resolver(answer), io);
                }
            }
            Event::Migrated { ticket, results } => {
                if let Some(Outstanding::Migrate) = self.take(ticket) {
                    self.resume(Input::Migrated(results), io);
                }
            }
        }
    }

    fn take(&mut self, ticket: u32) -> Option<Outstanding> {
        match &self.outstanding {
            Some((t, _)) if *t == ticket => self.outstanding.take().map(|(_, o)| o),
            _ => None,
        }
    }

    fn refused(&self) -> Option<Failure> {
        if self.closed {
            return Some(Failure::new(ErrorCode::Closed, "the database is closed"));
        }
        self.paused.then(|| Failure::new(ErrorCode::Paused, "sync is paused; call resumeSync() first"))
    }

    /// Opens or closes the live channel as the context's state now asks (`live_channel.rs`):
    /// while it drains and pulls with `live` on, online, in a visible page, not closed.
    fn update_live(&mut self, io: &mut Io<'_>) {
        let wanted =
            self.leading && self.options.live && self.options.pull && self.online && self.visible && !self.closed;
        if let Some(action) = self.live.want(wanted) {
            io.actions.push(Action::Live(action == LiveAction::Connect));
            self.show_live(io);
        }
    }

    /// Wakes the loop now, or makes it go on at once after what is in flight.
    /// A call saw the browser online before its `online` event reached the loop: the same as
    /// that event (a later `offline` event still counts).
    fn came_online(&mut self, online: bool) {
        if online && !self.online {
            self.online = true;
            self.want_pull = true;
        }
    }

    fn kick(&mut self, io: &mut Io<'_>) {
        self.kicked = true;
        if matches!(self.phase, Phase::Sleeping { .. }) && self.outstanding.is_none() {
            self.run(io);
        }
    }

    // ----- the loop -----
}
