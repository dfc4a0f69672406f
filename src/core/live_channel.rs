//! When the live channel (a WebSocket to `{url}/live`, docs/protocol.md) should be open, and when
//! to try again. The socket itself is the host's; these are its rules, so the native tests see
//! them: open while this context drains, the `live` option is on, the browser is online and the
//! page visible; after a failure, wait a random time up to `min(30 s, 0.5 s * 2^failures)` (full
//! jitter) before trying again; a socket that has said nothing for `SILENCE_MS` (three of the
//! server's ping periods) is dead even if TCP has not noticed, and is closed and opened again.
//! A transport's `live` subscription (docs/transports.md) has no pings: it is never silent.

/// The server pings every 15 s by default; three silent periods mean the socket is dead.
pub const SILENCE_MS: f64 = 50_000.0;
const FIRST_BACKOFF_MS: f64 = 500.0;
const MAX_BACKOFF_MS: f64 = 30_000.0;

/// What the host must do with the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveAction {
    /// Open it (asking `getToken` first, when there is one).
    Connect,
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Closed,
    /// A retry is due at `at`.
    Waiting {
        at: f64,
    },
    Connecting,
    /// Open; dead unless the server says something before `silent_at`.
    Open {
        silent_at: f64,
    },
}

/// The live channel's state.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveChannel {
    /// The server pings (a Wharf server's socket, not a transport's subscription).
    pinged: bool,
    wanted: bool,
    state: State,
    failures: u32,
}

impl Default for LiveChannel {
    fn default() -> LiveChannel {
        LiveChannel::new(true)
    }
}

impl LiveChannel {
    /// A closed channel; `pinged`: silence means a dead socket.
    pub fn new(pinged: bool) -> LiveChannel {
        LiveChannel { pinged, wanted: false, state: State::Closed, failures: 0 }
    }

    fn silent_at(&self, now: f64) -> f64 {
        if self.pinged {
            now + SILENCE_MS
        } else {
            f64::INFINITY
        }
    }

    /// Whether the channel should be open now. Becoming wanted connects at once (a fresh start:
    /// no backoff carried over); no longer wanted closes it.
    pub fn want(&mut self, wanted: bool) -> Option<LiveAction> {
        if wanted == self.wanted {
            return None;
        }
        self.wanted = wanted;
        if wanted {
            self.failures = 0;
            self.state = State::Connecting;
            return Some(LiveAction::Connect);
        }
        let was_closed = self.state == State::Closed;
        self.state = State::Closed;
        (!was_closed).then_some(LiveAction::Close)
    }

    /// The socket is open and the server has not gone silent.
    pub fn connected(&self) -> bool {
        matches!(self.state, State::Open { .. })
    }

    /// The socket opened.
    pub fn opened(&mut self, now: f64) {
        if self.state == State::Connecting {
            self.failures = 0;
            self.state = State::Open { silent_at: self.silent_at(now) };
        }
    }

    /// The server said something (a ping or a poke).
    pub fn heard(&mut self, now: f64) {
        if let State::Open { .. } = self.state {
            self.state = State::Open { silent_at: self.silent_at(now) };
        }
    }

    /// The socket closed or failed to open (or the token for it failed): try again later.
    /// `random` is in `[0, 1)`.
    pub fn closed(&mut self, now: f64, random: f64) {
        if !self.wanted || matches!(self.state, State::Closed | State::Waiting { .. }) {
            return;
        }
        self.state = State::Waiting { at: now + self.backoff(random) };
        self.failures = (self.failures + 1).min(16);
    }

    /// Time passed: a retry that is due connects; a socket silent too long is closed and a
    /// retry scheduled.
    pub fn timer(&mut self, now: f64, random: f64) -> Option<LiveAction> {
        match self.state {
            State::Waiting { at } if at <= now => {
                self.state = State::Connecting;
                Some(LiveAction::Connect)
            }
            State::Open { silent_at } if silent_at <= now => {
                self.state = State::Waiting { at: now + self.backoff(random) };
                self.failures = (self.failures + 1).min(16);
                Some(LiveAction::Close)
            }
            _ => None,
        }
    }

    /// When `timer` has something to do.
    pub fn wake_at(&self) -> Option<f64> {
        match self.state {
            State::Waiting { at } => Some(at),
            State::Open { silent_at } => Some(silent_at).filter(|at| at.is_finite()),
            State::Closed | State::Connecting => None,
        }
    }

    fn backoff(&self, random: f64) -> f64 {
        random * (FIRST_BACKOFF_MS * 2f64.powi(self.failures as i32)).min(MAX_BACKOFF_MS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_opens_while_wanted_and_closes_when_not() {
        let mut live = LiveChannel::default();
        assert_eq!(live.want(false), None, "already closed");
        assert_eq!(live.want(true), Some(LiveAction::Connect));
        assert_eq!(live.want(true), None, "no second socket");
        live.opened(0.0);
        assert_eq!(live.want(false), Some(LiveAction::Close));
        assert_eq!(live.wake_at(), None);
        live.closed(10.0, 0.5);
        assert_eq!(live.wake_at(), None, "a close it asked for is no failure");
    }

    #[test]
    fn failures_back_off_with_jitter_up_to_thirty_seconds_and_an_open_resets_them() {
        let mut live = LiveChannel::default();
        live.want(true);
        let mut now = 0.0;
        let mut waits = Vec::new();
        for _ in 0..10 {
            live.closed(now, 0.999);
            let at = live.wake_at().expect("a retry is scheduled");
            waits.push((at - now).round());
            assert_eq!(live.timer(at - 1.0, 0.5), None, "not before it is due");
            assert_eq!(live.timer(at, 0.5), Some(LiveAction::Connect));
            now = at;
        }
        assert_eq!(&waits[..4], [500.0, 999.0, 1998.0, 3996.0]);
        assert!(waits.iter().all(|&w| w <= MAX_BACKOFF_MS), "{waits:?}");
        assert_eq!(waits[9], 29970.0, "capped");
        live.opened(now);
        live.closed(now, 0.999);
        assert_eq!(live.wake_at().map(|at| (at - now).round()), Some(500.0), "an open socket resets the backoff");
        live.closed(now, 0.0);
        assert_eq!(live.wake_at().map(|at| (at - now).round()), Some(500.0), "already waiting: nothing changes");
    }

    #[test]
    fn a_silent_socket_is_closed_and_opened_again() {
        let mut live = LiveChannel::default();
        live.want(true);
        live.opened(0.0);
        live.heard(40_000.0);
        assert_eq!(live.timer(SILENCE_MS, 0.5), None, "it spoke at 40 s");
        assert_eq!(live.wake_at(), Some(40_000.0 + SILENCE_MS));
        assert_eq!(live.timer(40_000.0 + SILENCE_MS, 0.5), Some(LiveAction::Close));
        let retry = live.wake_at().unwrap();
        assert_eq!(live.timer(retry, 0.5), Some(LiveAction::Connect));
        live.closed(retry + 1.0, 0.5);
        assert!(live.wake_at().is_some());
        assert_eq!(live.want(false), Some(LiveAction::Close), "a scheduled retry is dropped too");
        assert_eq!(live.wake_at(), None);
    }

    #[test]
    fn a_transport_subscription_is_never_silent_but_retried_when_it_ends() {
        let mut live = LiveChannel::new(false);
        live.want(true);
        live.opened(0.0);
        assert_eq!(live.wake_at(), None, "no pings to miss");
        assert_eq!(live.timer(1e12, 0.5), None);
        assert!(live.connected());
        live.closed(10.0, 0.5);
        assert_eq!(live.wake_at(), Some(260.0), "ended by the transport: subscribed again after a backoff");
    }
}
