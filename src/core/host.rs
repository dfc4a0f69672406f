//! The boundary between the core and the host that runs it (the browser platform, a native test,
//! the simulation): the events the host reports and the actions the core asks for. The core
//! never performs I/O, never sleeps and never awaits; the host performs each action, reports
//! each outcome as an event, and wakes the core at the time it asks for.

use serde_json::Value;

use super::activity::HttpRequest;
use super::error::ErrorCode;
use super::json_text::JsonText;
use super::push_engine::HttpReply;
use super::shapes::Migration;
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
    /// Call the application's `migrate(value, from)` of each document's collection, in order
    /// (`shapes.rs`), and answer all of them with one `Event::Migrated`.
    Migrate { ticket: u32, docs: Vec<Migration> },
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

impl Action {
    /// Adds the object `platform/js/io.js` performs for this action (`{ t: "tx" | "http" |
    /// "token" | "resolver" | "emit" | "settle", ... }`, keys in alphabetical order) to the
    /// array `out`; false for the actions the host performs itself.
    pub fn write_json(&self, out: &mut JsonText) -> bool {
        match self {
            Action::Tx { ticket, scope, reads } => {
                Read::write_list(reads, out.open_object().key("reads"));
                scope.write_json(out.key("scope"));
                out.key("t").string("tx").key("ticket").uint((*ticket).into());
            }
            Action::Http { ticket, request, timeout_ms } => {
                out.open_object().key("body").opt_string(request.body.as_deref()).key("headers").open_array();
                for (name, value) in &request.headers {
                    out.open_array().string(name).string(value).close_array();
                }
                out.close_array()
                    .key("method")
                    .string(request.method)
                    .key("query")
                    .opt_string(request.query.as_deref());
                out.key("t").string("http");
                out.key("ticket").uint((*ticket).into()).key("timeout").uint((*timeout_ms).into());
                out.key("url").string(&request.url);
            }
            Action::Token { ticket } => {
                out.open_object().key("t").string("token").key("ticket").uint((*ticket).into());
            }
            Action::Resolver { ticket, collection, context, timeout_ms } => {
                out.open_object().key("collection").string(collection).key("context").value(context);
                out.key("t").string("resolver").key("ticket").uint((*ticket).into()).key("timeout").float(*timeout_ms);
            }
            Action::Emit(event) => {
                let (kind, json) = event.to_json();
                out.open_object().key("json").string(&json).key("kind").string(kind);
                out.key("level").string(super::debug_report::level(kind, &json)).key("t").string("emit");
            }
            Action::Settle { waiter, outcome: Ok(value) } => {
                out.open_object().key("ok").boolean(true).key("t").string("settle").key("value").value(value);
                out.key("waiter").uint((*waiter).into());
            }
            Action::Settle { waiter, outcome: Err(failure) } => {
                out.open_object().key("code").string(failure.code.as_str()).key("message").string(&failure.message);
                out.key("ok").boolean(false).key("t").string("settle").key("waiter").uint((*waiter).into());
            }
            _ => return false,
        }
        out.close_object();
        true
    }
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
    /// The page was hidden.
    Hidden,
    /// The server announced new changes (the live channel).
    Poke,
    /// A server's answer said its time (its `Date` header, in ms since the epoch).
    ServerDate(f64),
    /// The live channel's socket opened.
    LiveOpened,
    /// The server said something on the live channel other than a poke (a ping).
    LiveHeard,
    /// The live channel's socket closed, failed to open, or its token could not be had.
    LiveClosed,
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
    /// The transaction failed; nothing of it was written. `lost`: it died with its connection
    /// (`error::connection_lost`); the host reconnects for the next transaction.
    Failed {
        ticket: u32,
        code: ErrorCode,
        reason: String,
        lost: bool,
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
    /// What `migrate` returned for each document of `Action::Migrate` (as JSON), in order, or
    /// why it returned nothing usable (it threw, or its answer is not JSON).
    Migrated {
        ticket: u32,
        results: Vec<Result<Value, String>>,
    },
}

/// The actions of one step, and when to wake the core next (`None`: only on an event).
#[derive(Debug, Default, PartialEq)]
pub struct Output {
    pub actions: Vec<Action>,
    pub wake_at: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::status::SyncStatus;
    use crate::core::tx::Range;
    use serde_json::json;

    /// The text is what `json!` and serde_json wrote for each action before `JsonText`.
    #[test]
    fn actions_encode_as_serde_json_wrote_them() {
        let reads = vec![
            Read::meta("clientId"),
            Read::Keys { store: "v".into(), range: Some(Range::prefix("t")), limit: None },
        ];
        let request = HttpRequest {
            method: "POST",
            url: "/sync/push".into(),
            headers: vec![("Content-Type".into(), "application/json".into()), ("X-A".into(), "\"q\"".into())],
            body: Some("{\"protocol\":1}".into()),
            query: None,
        };
        let status = SyncEvent::Status(SyncStatus::default());
        let (kind, status_json) = status.to_json();
        let actions = vec![
            (
                Action::Tx { ticket: 1, scope: Scope::write(&["a", "b"]), reads: reads.clone() },
                json!({"t": "tx", "ticket": 1, "scope": {"stores": ["a", "b"], "write": true},
                       "reads": [["get", "__wharf_meta", "clientId"], ["keys", "v", ["t", "t\u{FFFF}", false, false], null]]}),
            ),
            (
                Action::Http { ticket: 2, request: request.clone(), timeout_ms: 30_000 },
                json!({"t": "http", "ticket": 2, "method": "POST", "url": request.url, "headers": request.headers,
                       "body": request.body, "query": null, "timeout": 30_000}),
            ),
            (
                Action::Http {
                    ticket: 3,
                    request: HttpRequest { body: None, query: Some("{}".into()), ..request.clone() },
                    timeout_ms: 5,
                },
                json!({"t": "http", "ticket": 3, "method": "POST", "url": request.url, "headers": request.headers,
                       "body": null, "query": "{}", "timeout": 5}),
            ),
            (Action::Token { ticket: 4 }, json!({"t": "token", "ticket": 4})),
            (
                Action::Resolver {
                    ticket: 5,
                    collection: "todos".into(),
                    context: json!({"k": [1, 2.5]}),
                    timeout_ms: 30_000.0,
                },
                json!({"t": "resolver", "ticket": 5, "collection": "todos", "context": {"k": [1, 2.5]}, "timeout": 30_000.0}),
            ),
            (Action::Emit(status), json!({"t": "emit", "kind": kind, "json": status_json, "level": "debug"})),
            (
                Action::Settle { waiter: 6, outcome: Ok(json!({"pending": 0})) },
                json!({"t": "settle", "waiter": 6, "ok": true, "value": {"pending": 0}}),
            ),
            (
                Action::Settle { waiter: 7, outcome: Err(Failure::new(ErrorCode::Offline, "the browser is offline")) },
                json!({"t": "settle", "waiter": 7, "ok": false, "code": "OFFLINE", "message": "the browser is offline"}),
            ),
        ];
        for (action, expected) in actions {
            let mut out = JsonText::new();
            assert!(action.write_json(&mut out));
            assert_eq!(out.finish(), expected.to_string());
        }
        let migrate = Action::Migrate { ticket: 8, docs: Vec::new() };
        for action in
            [Action::Idle, Action::Wrote, Action::Live(true), Action::Forward { waiter: 1, pull: false }, migrate]
        {
            let mut out = JsonText::new();
            assert!(!action.write_json(&mut out));
            assert_eq!(out.finish(), "");
        }
    }
}
