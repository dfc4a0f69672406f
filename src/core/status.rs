//! What the push engine tells the application: its status (`db.onStatus`), counters
//! (`db.stats().sync`) and events (`onSyncStart`, `onSyncEnd`, `onDeadLetter`), serialized once per
//! change so each crosses to JavaScript as one JSON text.

use serde::Serialize;

use serde_json::Value;

use super::conflict::{Outcome, Strategy};
use super::document::Key;
use super::op::{DeadLetter, LastError};

/// The engine's state, as `status.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
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
        }
    }
}

/// `db.stats().sync`: counters since the database was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
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
}

/// How a sync run ended, as `onSyncEnd` receives it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncEnd {
    /// True when the run ended with nothing left to send (held conflicts aside).
    pub ok: bool,
    /// Mutations acknowledged during the run.
    pub acked: u64,
    pub pending: u64,
    pub error: Option<LastError>,
}

/// Where a conflict was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConflictSource {
    /// Applying a pulled change to a document with queued local ops.
    Pull,
    /// The server answered a pushed op `conflict`.
    Push,
}

/// How a conflict ended, as `onConflict` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
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

/// Everything the engine reports, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum SyncEvent {
    Status(SyncStatus),
    Start,
    End(SyncEnd),
    DeadLettered(Vec<DeadLetter>),
    Conflict(Box<ConflictReport>),
}

impl SyncEvent {
    /// The event's name and its payload as JSON, for the JavaScript side.
    pub fn to_json(&self) -> (&'static str, String) {
        let payload = match self {
            SyncEvent::Status(status) => serde_json::to_string(status),
            SyncEvent::Start => Ok("null".to_owned()),
            SyncEvent::End(end) => serde_json::to_string(end),
            SyncEvent::DeadLettered(letters) => serde_json::to_string(letters),
            SyncEvent::Conflict(report) => serde_json::to_string(report),
        };
        (self.name(), payload.unwrap_or_else(|_| "null".to_owned()))
    }

    pub fn name(&self) -> &'static str {
        match self {
            SyncEvent::Status(_) => "status",
            SyncEvent::Start => "start",
            SyncEvent::End(_) => "end",
            SyncEvent::DeadLettered(_) => "deadLetter",
            SyncEvent::Conflict(_) => "conflict",
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
                   "lastSyncAt": null, "lastError": null, "nextRetryAt": 5.0})
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
}
