//! The boundary between the core and the host that runs it (the browser platform, a native test,
//! the simulation): the events the host reports and the actions the core asks for. The core
//! never performs I/O, never sleeps and never awaits; the host performs each action, reports
//! each outcome as an event, and wakes the core at the time it asks for.

use serde_json::Value;

use super::activity::HttpRequest;
use super::error::ErrorCode;
use super::push_engine::HttpReply;
use super::status::SyncEvent;
use super::tx::{Read, Scope};

/// A failure a promise of the API rejects with (`WharfError` with this code).
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub code: ErrorCode,
    pub message: String,
}

impl Failure {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Failure {
        Failure { code, message: message.into() }
    }
}

/// Something the core asks the host to do. Answers come back as events naming the `ticket`.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Open one transaction over `scope`, perform `reads`, and hand the results to
    /// `Replica::decide` until it settles on writes (or aborts); then report the commit.
    Tx { ticket: u32, scope: Scope, reads: Vec<Read> },
    /// One HTTP request; no answer within `timeout_ms` is a timeout.
    Http { ticket: u32, request: HttpRequest, timeout_ms: u32 },
    /// Call the application's `getToken()`.
    Token { ticket: u32 },
    /// Call the application's conflict resolver for `collection` with `context`.
    Resolver { ticket: u32, collection: String, context: Value, timeout_ms: f64 },
    /// Deliver a status change or event to the listeners (and, when leading, to the others).
    Emit(SyncEvent),
    /// Settle the API promise `waiter`.
    Settle { waiter: u32, outcome: Result<Value, Failure> },
    /// This context no longer leads: send the pending `sync()` (or `pull()`) `waiter` to the
    /// leader.
    Forward { waiter: u32, pull: bool },
    /// Nothing is in flight: a promised handoff of the drainer role may happen now.
    Idle,
    /// Keep the live channel to the server open (or closed).
    Live(bool),
    /// A transaction the core ran changed the outbox or the dead letters: wake the drainer,
    /// wherever it runs, as after a local write.
    Wrote,
}

/// What the host reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The wake-up time the core asked for has come.
    Timer,
    /// A local write committed here (or in a context that asked this one to push it).
    LocalWrite,
    Online,
    Offline,
    /// The page became visible.
    Visible,
    /// The server announced new changes (the live channel).
    Poke,
    Pause,
    Resume,
    Close,
    /// `db.sync()`: settle `waiter` once a push step that started after it finds nothing to
    /// send. `remote`: asked by another context, served here. `online`: `navigator.onLine` at
    /// the call (an app's own `online` listener may call before the library's has run).
    Sync {
        waiter: u32,
        remote: bool,
        online: bool,
    },
    /// `db.pull()`.
    Pull {
        waiter: u32,
        remote: bool,
        online: bool,
    },
    /// Whether this context may drain now (it holds the role and has not promised it away).
    Leading(bool),
    Committed {
        ticket: u32,
    },
    /// The transaction failed; nothing of it was written.
    Failed {
        ticket: u32,
        code: ErrorCode,
        reason: String,
    },
    Http {
        ticket: u32,
        reply: HttpReply,
    },
    Token {
        ticket: u32,
        token: Result<String, String>,
    },
    /// The resolver's answer as JSON, or why there is none.
    Resolver {
        ticket: u32,
        answer: Result<Value, String>,
    },
}

/// The actions of one step, and when to wake the core next (`None`: only on an event).
#[derive(Debug, Default, PartialEq)]
pub struct Output {
    pub actions: Vec<Action>,
    pub wake_at: Option<f64>,
}
