//! Pulling remote changes: page through `GET {url}/pull` from the persisted cursor until the
//! server says `hasMore: false`. Each page and its cursor are stored in ONE storage transaction,
//! so a crash between pages resumes from the last stored page and never skips or half-applies one.
//! The loop runs over a narrow port (`PullPort`), like the push engine, and is tested natively.
//!
//! A remote change is applied where no local op on that document is still queued; otherwise the
//! host tells the echo of its own push from a conflict, which `conflict.rs` settles.
//! After `410 CURSOR_EXPIRED` it pulls again from the beginning: a full copy of the server's live
//! documents, after which the host deletes the documents it had from the server that the copy
//! lacks (deleted during the compacted stretch, their tombstones gone).

use serde_json::Value;

use super::document::{key_of, Key, KeyPath};
use super::engine::{StorageFailure, TransportReply};
use super::protocol::{Change, PROTOCOL_VERSION};
use super::wire;

/// One page of `GET /pull`.
#[derive(Debug, Clone, PartialEq)]
pub struct PullPage {
    pub changes: Vec<Change>,
    pub cursor: String,
    pub has_more: bool,
}

/// What applying pages did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullSummary {
    pub pages: u32,
    /// Remote changes written to local records.
    pub applied: u64,
    /// Remote changes left alone: the document has queued local ops based on this version
    /// already (its own push coming back).
    pub skipped: u64,
    /// Remote changes that met queued local ops based on an older version: resolved by the
    /// collection's strategy (or left to the push, if the resolver failed).
    pub conflicts: u64,
    /// Changes the client could not store (unknown collection, value without its key), ignored.
    pub invalid: u64,
    /// Documents deleted after a full resync because the server no longer has them.
    pub removed: u64,
    pub cursor: String,
}

/// Why a pull stopped before `hasMore: false`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PullError {
    #[error("the server answered HTTP {status}: {message}")]
    Http { status: u16, code: String, message: String, retry_after: Option<String> },
    #[error("the pull request failed: {0}")]
    Network(String),
    #[error("the pull request timed out")]
    Timeout,
    #[error("the server's pull answer is unusable: {0}")]
    Protocol(String),
    #[error("storing pulled changes failed: {0}")]
    Storage(String),
}

impl PullError {
    /// The `code` a status or a JavaScript error carries.
    pub fn code(&self) -> &str {
        match self {
            PullError::Http { code, .. } => code,
            PullError::Network(_) => "NETWORK",
            PullError::Timeout => "TIMEOUT",
            PullError::Protocol(_) => "PROTOCOL",
            PullError::Storage(_) => "STORAGE",
        }
    }
}

/// What `PullPort::apply` stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    pub applied: u64,
    pub skipped: u64,
    pub conflicts: u64,
}

/// The pull loop's view of its host.
#[allow(async_fn_in_trait)]
pub trait PullPort {
    /// The stored cursor ("" before the first pull).
    async fn load_cursor(&self) -> Result<String, StorageFailure>;
    async fn fetch(&self, cursor: &str, limit: usize) -> TransportReply;
    /// Stores the page's changes, except those at the `invalid` positions and those on documents
    /// with queued local ops, and its cursor, in one transaction. `body` is the page as the
    /// server sent it, so the host need not serialize the changes again.
    async fn apply(&self, page: &PullPage, body: &str, invalid: &[usize]) -> Result<Applied, StorageFailure>;
    /// The server forgot the cursor (`410`): the pages that follow are a full copy of its state.
    async fn start_resync(&self) -> Result<(), StorageFailure>;
    /// The pull reached `hasMore: false`. After a resync, the host deletes the documents it got
    /// from the server earlier that the full copy did not contain (and that have no queued local
    /// ops); returns how many.
    async fn caught_up(&self) -> Result<u64, StorageFailure>;
}

/// Reads a `200` answer of `GET /pull`.
pub fn read_page(body: &str) -> Result<PullPage, String> {
    let value = wire::parse(body)?;
    let fields = wire::obj(&value, "pull answer")?;
    let protocol = wire::uint(fields, "protocol")?;
    if protocol != u64::from(PROTOCOL_VERSION) {
        return Err(format!("the server speaks protocol {protocol}, this client {PROTOCOL_VERSION}"));
    }
    let changes = wire::array(fields.get("changes").unwrap_or(&Value::Null), "changes", wire::change)?;
    let has_more = fields.get("hasMore").and_then(Value::as_bool).ok_or("missing or invalid field hasMore")?;
    Ok(PullPage { changes, cursor: wire::string(fields, "cursor")?, has_more })
}

/// Positions of the changes the client cannot store: a change must name a declared collection
/// and, unless it is a deletion, carry a document whose key is its `key`.
pub fn unstorable<'p>(changes: &[Change], key_path_of: impl Fn(&str) -> Option<&'p KeyPath>) -> Vec<usize> {
    let fits = |change: &Change| match (key_path_of(&change.collection), &change.value) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(path), Some(doc)) => key_of(doc, path).is_ok_and(|key: Key| key == change.key),
    };
    changes.iter().enumerate().filter(|(_, change)| !fits(change)).map(|(i, _)| i).collect()
}

fn http_error(status: u16, retry_after: Option<String>, body: &str) -> PullError {
    let (code, message) = wire::error_response(body).unwrap_or_else(|| ("HTTP".to_owned(), format!("HTTP {status}")));
    PullError::Http { status, code, message, retry_after }
}

/// Pulls until the server has nothing more, at most `max_pages` pages (then the caller pulls
/// again later). `invalid` names the changes of a page that cannot be stored (see `unstorable`).
pub async fn pull_all(
    port: &impl PullPort,
    limit: usize,
    max_pages: u32,
    invalid: impl Fn(&[Change]) -> Vec<usize>,
) -> Result<PullSummary, PullError> {
    let mut cursor = port.load_cursor().await.map_err(|e| PullError::Storage(e.0))?;
    let mut summary = PullSummary { cursor: cursor.clone(), ..PullSummary::default() };
    let mut restarted = false;
    while summary.pages < max_pages {
        let (page, body) = match port.fetch(&cursor, limit).await {
            TransportReply::Response { status: 200, body, .. } => {
                (read_page(&body).map_err(PullError::Protocol)?, body)
            }
            // The server compacted past our cursor (or never issued it): start over, once.
            TransportReply::Response { status: 410, .. } if !cursor.is_empty() && !restarted => {
                restarted = true;
                cursor = String::new();
                port.start_resync().await.map_err(|e| PullError::Storage(e.0))?;
                continue;
            }
            TransportReply::Response { status, retry_after, body } => {
                return Err(http_error(status, retry_after, &body))
            }
            TransportReply::NetworkError(message) => return Err(PullError::Network(message)),
            TransportReply::Timeout => return Err(PullError::Timeout),
        };
        if page.has_more && (page.cursor == cursor || page.changes.is_empty()) {
            return Err(PullError::Protocol("the server says hasMore but its cursor did not move".to_owned()));
        }
        let unusable = invalid(&page.changes);
        let stored = port.apply(&page, &body, &unusable).await.map_err(|e| PullError::Storage(e.0))?;
        summary.pages += 1;
        summary.applied += stored.applied;
        summary.skipped += stored.skipped;
        summary.conflicts += stored.conflicts;
        summary.invalid += unusable.len() as u64;
        summary.cursor = page.cursor.clone();
        cursor = page.cursor;
        if !page.has_more {
            summary.removed = port.caught_up().await.map_err(|e| PullError::Storage(e.0))?;
            break;
        }
    }
    Ok(summary)
}

#[cfg(test)]
#[path = "pull_tests.rs"]
mod tests;
