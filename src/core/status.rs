//! What the push engine tells the application: its status (`db.onStatus`), counters
//! (`db.stats().sync`) and events (`onSyncStart`, `onSyncEnd`, `onDeadLetter`), serialized once per
//! change so each crosses to JavaScript as one JSON text.
//!
//! The texts are written by hand (`json_text.rs`), fields in declaration order; the tests derive
//! serde's `Serialize` and check the hand-written text against it byte for byte.

#[cfg(test)]
use serde::Serialize;

use serde_json::Value;

use super::conflict::{Outcome, Strategy};
use super::document::Key;
use super::json_text::JsonText;
use super::op::{DeadLetter, LastError};

/// The engine's state, as `status.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(Serialize), serde(rename_all = "lowercase"))]
pub enum SyncState {
    /// Nothing to send, or waiting for the next trigger.
    Idle,
    /// A push is in flight.
    Syncing,
    /// The browser is offline; sync resumes on `online`.
    Offline,
    /// The last push failed; a retry is scheduled at `nextRetryAt`.
    Error,
    /// The server keeps refusing the credentials, even after asking `getToken` again.
    Auth,
    /// Paused by the application (`db.pauseSync()`).
    Paused,
}

/// `db.onStatus` payload.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(test, derive(Serialize), serde(rename_all = "camelCase"))]
pub struct SyncStatus {
    pub state: SyncState,
    pub online: bool,
    /// Entries in the outbox (including those held by a conflict).
    pub pending: u64,
    /// Mutations in the request currently in flight.
    pub in_flight: u64,
    pub dead_letters: u64,
    /// Entries held by a conflict, waiting for resolution.
    pub conflicts: u64,
    /// When a push last succeeded (ms since the epoch).
    pub last_sync_at: Option<f64>,
    pub last_error: Option<LastError>,
    pub next_retry_at: Option<f64>,
    /// Since when push requests have been failing in a row (an outage, if it goes on); `None`
    /// once one succeeds.
    pub failing_since: Option<f64>,
    /// When a pull last succeeded.
    pub last_pulled_at: Option<f64>,
    /// A pull reached the end of the server's changes since the database was opened.
    pub has_synced: bool,
    /// Why the last pull failed; `None` once one succeeds.
    pub pull_error: Option<LastError>,
    /// The live channel (server pokes) is connected.
    pub live: bool,
    /// The database was found emptied under the app (`sync.expectSynced`, `LoadedClient::evicted`): a full
    /// pull refills it, and pushes wait until that pull has reached the end.
    pub evicted: bool,
}

impl Default for SyncStatus {
    fn default() -> Self {
        SyncStatus {
            state: SyncState::Idle,
            online: true,
            pending: 0,
            in_flight: 0,
            dead_letters: 0,
            conflicts: 0,
            last_sync_at: None,
            last_error: None,
            next_retry_at: None,
            failing_since: None,
            last_pulled_at: None,
            has_synced: false,
            pull_error: None,
            live: false,
            evicted: false,
        }
    }
}

/// `db.stats().sync`: counters since the database was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[cfg_attr(test, derive(Serialize), serde(rename_all = "camelCase"))]
pub struct PushStats {
    /// Push requests sent.
    pub requests: u64,
    /// Mutations sent, resends included.
    pub pushed: u64,
    /// Mutations acknowledged (`applied` or `duplicate`) and removed from the outbox.
    pub acked: u64,
    /// Acknowledgements that were `duplicate`: resends of something already applied.
    pub duplicates: u64,
    /// Failed requests that were retried.
    pub retries: u64,
    pub dead_lettered: u64,
    pub conflicts: u64,
    pub bytes_sent: u64,
    pub last_latency_ms: Option<f64>,
    /// Pull runs that succeeded, and those that failed.
    pub pulls: u64,
    pub pull_failures: u64,
    /// Remote changes written to local records by pulls.
    pub pulled: u64,
}

/// How a sync run ended, as `onSyncEnd` receives it.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(test, derive(Serialize), serde(rename_all = "camelCase"))]
pub struct SyncEnd {
    /// True when the run ended with nothing left to send (held conflicts aside).
    pub ok: bool,
    /// Mutations acknowledged during the run.
    pub acked: u64,
    pub pending: u64,
    pub error: Option<LastError>,
}

/// How a pull run ended, as `onPull` receives it: `ok`, `complete` (the run reached the end of
/// the server's changes), `error`, and, for a run that succeeded, the fields of what
/// `db.pull()` resolves with.
#[derive(Debug, Clone, PartialEq)]
pub struct PullEnd {
    pub ok: bool,
    pub complete: bool,
    /// `PullSummary::to_json` (null for a failed run).
    pub summary: Value,
    pub error: Option<LastError>,
}

/// Where a conflict was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(Serialize), serde(rename_all = "lowercase"))]
pub enum ConflictSource {
    /// Applying a pulled change to a document with queued local ops.
    Pull,
    /// The server answered a pushed op `conflict`.
    Push,
}

/// How a conflict ended, as `onConflict` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(Serialize), serde(rename_all = "lowercase"))]
pub enum ConflictOutcome {
    Local,
    Remote,
    Merged,
    /// The resolver failed or the server's side was unusable: nothing changed, the local ops
    /// stay queued, and resolution is tried again later.
    Unresolved,
}

impl From<Outcome> for ConflictOutcome {
    fn from(outcome: Outcome) -> ConflictOutcome {
        match outcome {
            Outcome::Local => ConflictOutcome::Local,
            Outcome::Remote => ConflictOutcome::Remote,
            Outcome::Merged => ConflictOutcome::Merged,
        }
    }
}

/// One conflict and how it ended, as `onConflict` receives it.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(test, derive(Serialize), serde(rename_all = "camelCase"))]
pub struct ConflictReport {
    pub collection: String,
    pub key: Key,
    pub source: ConflictSource,
    /// The collection's strategy (`"custom"` for a resolver function).
    pub strategy: Strategy,
    pub outcome: ConflictOutcome,
    pub local: Option<Value>,
    pub remote: Option<Value>,
    pub base: Option<Value>,
    /// The document's state after resolution (`null`: deleted).
    pub value: Option<Value>,
    /// The server version resolved against.
    pub remote_version: u64,
    pub error: Option<String>,
}

impl SyncState {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::Idle => "idle",
            SyncState::Syncing => "syncing",
            SyncState::Offline => "offline",
            SyncState::Error => "error",
            SyncState::Auth => "auth",
            SyncState::Paused => "paused",
        }
    }
}

impl SyncStatus {
    pub fn to_json(&self) -> String {
        let mut out = JsonText::new();
        out.open_object().key("state").string(self.state.as_str()).key("online").boolean(self.online);
        out.key("pending").uint(self.pending).key("inFlight").uint(self.in_flight);
        out.key("deadLetters").uint(self.dead_letters).key("conflicts").uint(self.conflicts);
        out.key("lastSyncAt").opt_float(self.last_sync_at).key("lastError");
        write_error(&mut out, self.last_error.as_ref());
        out.key("nextRetryAt").opt_float(self.next_retry_at);
        out.key("failingSince").opt_float(self.failing_since);
        out.key("lastPulledAt").opt_float(self.last_pulled_at).key("hasSynced").boolean(self.has_synced);
        out.key("pullError");
        write_error(&mut out, self.pull_error.as_ref());
        out.key("live").boolean(self.live).key("evicted").boolean(self.evicted).close_object();
        out.finish()
    }
}

impl PushStats {
    pub fn to_json(&self) -> String {
        let mut out = JsonText::new();
        out.open_object().key("requests").uint(self.requests).key("pushed").uint(self.pushed);
        out.key("acked").uint(self.acked).key("duplicates").uint(self.duplicates).key("retries").uint(self.retries);
        out.key("deadLettered").uint(self.dead_lettered).key("conflicts").uint(self.conflicts);
        out.key("bytesSent").uint(self.bytes_sent).key("lastLatencyMs").opt_float(self.last_latency_ms);
        out.key("pulls").uint(self.pulls).key("pullFailures").uint(self.pull_failures).key("pulled").uint(self.pulled);
        out.close_object();
        out.finish()
    }
}

fn write_error(out: &mut JsonText, error: Option<&LastError>) {
    match error {
        Some(error) => out.value(&error.to_json()),
        None => out.null(),
    };
}

impl ConflictSource {
    fn as_str(self) -> &'static str {
        match self {
            ConflictSource::Pull => "pull",
            ConflictSource::Push => "push",
        }
    }
}

impl ConflictOutcome {
    fn as_str(self) -> &'static str {
        match self {
            ConflictOutcome::Local => "local",
            ConflictOutcome::Remote => "remote",
            ConflictOutcome::Merged => "merged",
            ConflictOutcome::Unresolved => "unresolved",
        }
    }
}

/// Everything the engine reports, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum SyncEvent {
    Status(SyncStatus),
    Start,
    End(SyncEnd),
    DeadLettered(Vec<DeadLetter>),
    Conflict(Box<ConflictReport>),
    Pull(PullEnd),
    /// The database was found emptied under the app (`LoadedClient::evicted`).
    Evicted,
}

impl SyncEvent {
    /// The event's name and its payload as JSON, for the JavaScript side.
    pub fn to_json(&self) -> (&'static str, String) {
        let mut out = JsonText::new();
        match self {
            SyncEvent::Status(status) => return (self.name(), status.to_json()),
            SyncEvent::Start | SyncEvent::Evicted => {
                out.null();
            }
            SyncEvent::End(end) => {
                out.open_object().key("ok").boolean(end.ok).key("acked").uint(end.acked);
                out.key("pending").uint(end.pending).key("error");
                write_error(&mut out, end.error.as_ref());
                out.close_object();
            }
            SyncEvent::Pull(end) => {
                out.open_object().key("ok").boolean(end.ok).key("complete").boolean(end.complete);
                for (name, value) in end.summary.as_object().into_iter().flatten() {
                    out.key(name).value(value);
                }
                out.key("error");
                write_error(&mut out, end.error.as_ref());
                out.close_object();
            }
            SyncEvent::DeadLettered(letters) => {
                out.open_array();
                for letter in letters {
                    out.value(&letter.to_json());
                }
                out.close_array();
            }
            SyncEvent::Conflict(report) => {
                out.open_object().key("collection").string(&report.collection).key("key").value(&report.key.to_json());
                out.key("source").string(report.source.as_str()).key("strategy").string(report.strategy.as_str());
                out.key("outcome").string(report.outcome.as_str()).key("local").opt_value(report.local.as_ref());
                out.key("remote").opt_value(report.remote.as_ref()).key("base").opt_value(report.base.as_ref());
                out.key("value").opt_value(report.value.as_ref()).key("remoteVersion").uint(report.remote_version);
                out.key("error").opt_string(report.error.as_deref()).close_object();
            }
        }
        (self.name(), out.finish())
    }

    pub fn name(&self) -> &'static str {
        match self {
            SyncEvent::Status(_) => "status",
            SyncEvent::Start => "start",
            SyncEvent::End(_) => "end",
            SyncEvent::DeadLettered(_) => "deadLetter",
            SyncEvent::Conflict(_) => "conflict",
            SyncEvent::Pull(_) => "pull",
            SyncEvent::Evicted => "evicted",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn status_serializes_in_camel_case_with_nulls() {
        let status = SyncStatus { pending: 3, next_retry_at: Some(5.0), ..SyncStatus::default() };
        let (name, text) = SyncEvent::Status(status).to_json();
        assert_eq!(name, "status");
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value,
            json!({"state": "idle", "online": true, "pending": 3, "inFlight": 0, "deadLetters": 0, "conflicts": 0,
                   "lastSyncAt": null, "lastError": null, "nextRetryAt": 5.0, "failingSince": null,
                   "lastPulledAt": null, "hasSynced": false, "pullError": null, "live": false, "evicted": false})
        );
        let end = SyncEvent::End(SyncEnd {
            ok: false,
            acked: 1,
            pending: 2,
            error: Some(LastError::new(crate::core::error::SyncErrorCode::Http, "x", Some(503))),
        });
        let value: Value = serde_json::from_str(&end.to_json().1).unwrap();
        assert_eq!(value["error"], json!({"code": "HTTP", "message": "x", "status": 503}));
        assert_eq!(SyncEvent::Start.to_json(), ("start", "null".to_owned()));
    }

    /// The hand-written texts are what serde_json wrote from the derived `Serialize` before.
    #[test]
    fn texts_match_serde_byte_for_byte() {
        let error = LastError::from_server("WHO_KNOWS", "no \"way\"", Some(418), false);
        let statuses = [
            SyncStatus::default(),
            SyncStatus {
                state: SyncState::Error,
                online: false,
                pending: 7,
                in_flight: 2,
                dead_letters: 1,
                conflicts: 3,
                last_sync_at: Some(1_700_000_000_123.0),
                last_error: Some(error.clone()),
                next_retry_at: Some(1.5),
                failing_since: Some(1_600_000_000_000.0),
                last_pulled_at: Some(1_700_000_000_000.5),
                has_synced: true,
                pull_error: Some(LastError::new(crate::core::error::SyncErrorCode::Timeout, "slow", None)),
                live: true,
                evicted: true,
            },
        ];
        for status in statuses {
            assert_eq!(SyncEvent::Status(status.clone()).to_json().1, serde_json::to_string(&status).unwrap());
        }
        for state in [SyncState::Idle, SyncState::Syncing, SyncState::Offline, SyncState::Auth, SyncState::Paused] {
            assert_eq!(serde_json::to_string(&state).unwrap(), format!("\"{}\"", state.as_str()));
        }
        let stats = PushStats {
            requests: 4,
            bytes_sent: 1 << 40,
            last_latency_ms: Some(12.25),
            pulls: 2,
            pulled: 7,
            ..PushStats::default()
        };
        for stats in [stats, PushStats::default()] {
            assert_eq!(stats.to_json(), serde_json::to_string(&stats).unwrap());
        }
        let summary =
            json!({"pages": 1, "applied": 3, "unstored": [{"collection": "todos", "key": 7, "reason": "taken"}]});
        let pulled = PullEnd { ok: true, complete: true, summary, error: None };
        let (name, text) = SyncEvent::Pull(pulled).to_json();
        assert_eq!(name, "pull");
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            json!({"ok": true, "complete": true, "pages": 1, "applied": 3,
                   "unstored": [{"collection": "todos", "key": 7, "reason": "taken"}], "error": null})
        );
        let failed = PullEnd { ok: false, complete: false, summary: json!({}), error: Some(error.clone()) };
        let value: Value = serde_json::from_str(&SyncEvent::Pull(failed).to_json().1).unwrap();
        assert_eq!(
            value["error"],
            json!({"code": "HTTP", "message": "no \"way\"", "status": 418, "serverCode": "WHO_KNOWS"})
        );
        for end in [
            SyncEnd { ok: true, acked: 3, pending: 0, error: None },
            SyncEnd { ok: false, acked: 0, pending: 9, error: Some(error) },
        ] {
            assert_eq!(SyncEvent::End(end.clone()).to_json().1, serde_json::to_string(&end).unwrap());
        }
        let report = |source, outcome, key, error: Option<&str>| ConflictReport {
            collection: "todos".into(),
            key,
            source,
            strategy: Strategy::ServerWins,
            outcome,
            local: Some(json!({"id": "a", "n": [1, 2.5]})),
            remote: None,
            base: Some(json!({"id": "a"})),
            value: Some(Value::Null),
            remote_version: 12,
            error: error.map(str::to_owned),
        };
        for report in [
            report(ConflictSource::Pull, ConflictOutcome::Local, Key::Number(7.0), None),
            report(ConflictSource::Push, ConflictOutcome::Remote, Key::Number(0.5), Some("x")),
            report(ConflictSource::Push, ConflictOutcome::Merged, Key::Text("k\n".into()), None),
            report(ConflictSource::Pull, ConflictOutcome::Unresolved, Key::Text("k".into()), Some("y")),
        ] {
            let expected = serde_json::to_string(&report).unwrap();
            assert_eq!(SyncEvent::Conflict(Box::new(report)).to_json().1, expected);
        }
    }
}
