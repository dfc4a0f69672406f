//! Errors of the pure core, and the stable error codes every layer maps onto.
//!
//! The codes are a public contract: JavaScript callers branch on `error.code`, so a code never
//! changes meaning once released. Messages may improve freely.

use thiserror::Error;

/// Stable, machine-readable error codes, surfaced to JavaScript as `WharfError.code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    InvalidDocument,
    MissingKey,
    InvalidKey,
    UnknownCollection,
    InvalidSchema,
    InvalidQuery,
    InvalidOptions,
    NotFound,
    Constraint,
    QuotaExceeded,
    Closed,
    Aborted,
    Storage,
    Unsupported,
    Offline,
    Auth,
    Paused,
    NotConfigured,
    Network,
    Server,
    /// What a `sync.transport` throws to tell how a call failed (`transportError`); Wharf itself
    /// never rejects with it.
    Transport,
    /// A collection's `migrate` threw or returned something that is not the same document: the
    /// upgrade was undone, the database is at its old version.
    MigrationFailed,
    /// `encryption.key` does not open this database's data key (another key, or another app).
    WrongKey,
    /// An encrypted database opened without `encryption`, or one holding unencrypted data
    /// opened with it.
    EncryptionMismatch,
    /// A bug in Wharf: a panic, surfaced with its message by the package entry instead of a
    /// bare trap. Never expected; reopen the database.
    Internal,
}

impl ErrorCode {
    /// Every code, for documentation and exhaustiveness tests.
    pub const ALL: [ErrorCode; 25] = [
        ErrorCode::InvalidDocument,
        ErrorCode::MissingKey,
        ErrorCode::InvalidKey,
        ErrorCode::UnknownCollection,
        ErrorCode::InvalidSchema,
        ErrorCode::InvalidQuery,
        ErrorCode::InvalidOptions,
        ErrorCode::NotFound,
        ErrorCode::Constraint,
        ErrorCode::QuotaExceeded,
        ErrorCode::Closed,
        ErrorCode::Aborted,
        ErrorCode::Storage,
        ErrorCode::Unsupported,
        ErrorCode::Offline,
        ErrorCode::Auth,
        ErrorCode::Paused,
        ErrorCode::NotConfigured,
        ErrorCode::Network,
        ErrorCode::Server,
        ErrorCode::Transport,
        ErrorCode::MigrationFailed,
        ErrorCode::WrongKey,
        ErrorCode::EncryptionMismatch,
        ErrorCode::Internal,
    ];

    /// The string JavaScript sees in `error.code`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidDocument => "INVALID_DOCUMENT",
            ErrorCode::MissingKey => "MISSING_KEY",
            ErrorCode::InvalidKey => "INVALID_KEY",
            ErrorCode::UnknownCollection => "UNKNOWN_COLLECTION",
            ErrorCode::InvalidSchema => "INVALID_SCHEMA",
            ErrorCode::InvalidQuery => "INVALID_QUERY",
            ErrorCode::InvalidOptions => "INVALID_OPTIONS",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Constraint => "CONSTRAINT",
            ErrorCode::QuotaExceeded => "QUOTA_EXCEEDED",
            ErrorCode::Closed => "CLOSED",
            ErrorCode::Aborted => "ABORTED",
            ErrorCode::Storage => "STORAGE",
            ErrorCode::Unsupported => "UNSUPPORTED",
            ErrorCode::Offline => "OFFLINE",
            ErrorCode::Auth => "AUTH",
            ErrorCode::Paused => "PAUSED",
            ErrorCode::NotConfigured => "NOT_CONFIGURED",
            ErrorCode::Network => "NETWORK",
            ErrorCode::Server => "SERVER",
            ErrorCode::Transport => "TRANSPORT",
            ErrorCode::MigrationFailed => "MIGRATION_FAILED",
            ErrorCode::WrongKey => "WRONG_KEY",
            ErrorCode::EncryptionMismatch => "ENCRYPTION_MISMATCH",
            ErrorCode::Internal => "INTERNAL",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rule of the data model was broken by the caller's input. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CoreError {
    #[error("invalid document: {0}")]
    InvalidDocument(String),
    #[error("the document has no key at \"{key_path}\"; every document needs one")]
    MissingKey { key_path: String },
    #[error("invalid key: {0}")]
    InvalidKey(String),
    #[error("unknown collection \"{0}\"; declare it in Wharf.open({{ collections }})")]
    UnknownCollection(String),
    #[error("invalid schema: {0}")]
    InvalidSchema(String),
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    #[error("no document with key {key} in \"{collection}\"")]
    NotFound { collection: String, key: String },
    #[error("migration failed: {0}")]
    MigrationFailed(String),
    /// Stored data Wharf cannot read (written by a bug, another library, or a broken disk).
    #[error("stored data is unreadable: {0}")]
    Unreadable(String),
    #[error("{0}")]
    EncryptionMismatch(String),
    #[error("{0}")]
    WrongKey(String),
}

impl CoreError {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            CoreError::InvalidDocument(_) => ErrorCode::InvalidDocument,
            CoreError::MissingKey { .. } => ErrorCode::MissingKey,
            CoreError::InvalidKey(_) => ErrorCode::InvalidKey,
            CoreError::UnknownCollection(_) => ErrorCode::UnknownCollection,
            CoreError::InvalidSchema(_) => ErrorCode::InvalidSchema,
            CoreError::InvalidQuery(_) => ErrorCode::InvalidQuery,
            CoreError::InvalidOptions(_) => ErrorCode::InvalidOptions,
            CoreError::NotFound { .. } => ErrorCode::NotFound,
            CoreError::MigrationFailed(_) => ErrorCode::MigrationFailed,
            CoreError::Unreadable(_) => ErrorCode::Storage,
            CoreError::EncryptionMismatch(_) => ErrorCode::EncryptionMismatch,
            CoreError::WrongKey(_) => ErrorCode::WrongKey,
        }
    }
}

/// How often a transaction that died with its connection is run again on a new one before its
/// failure is reported (`connection_lost`).
pub const RECONNECT_RETRIES: u32 = 1;

/// How long the host lets an IndexedDB transaction run before it gives it up as hung and aborts
/// it (WebKit can leave a transaction that never completes nor fails once its connection to the
/// IndexedDB server is gone). Generous: a slow phone storing a large page must not trip it.
pub const HUNG_TRANSACTION_MS: u32 = 30_000;

/// Whether a failed transaction died with its IndexedDB connection rather than for what it
/// did: Safari's "Connection to Indexed Database server lost" and `UnknownError`, the host's
/// `Hung` (its watchdog gave up on it) and `Lost` (the host aborted it because its connection
/// died under another one). Nothing of it committed; the host reconnects, and the transaction
/// is run again (`RECONNECT_RETRIES`) before its failure is reported.
pub fn connection_lost(name: &str, message: &str) -> bool {
    const SAFARI: &[u8] = b"Connection to Indexed Database server lost";
    // Not `str::contains`: its searcher costs 1.5 KB of WebAssembly.
    matches!(name, "UnknownError" | "Hung" | "Lost") || message.as_bytes().windows(SAFARI.len()).any(|w| w == SAFARI)
}

/// The code and message of a storage failure, by the name of the DOMException IndexedDB raised
/// (or the platform's own names for a closed, deleted or missing database).
pub fn storage_failure(name: &str, message: &str) -> (ErrorCode, String) {
    if connection_lost(name, message) {
        return (ErrorCode::Storage, format!("IndexedDB failed ({name}), also on a new connection: {message}"));
    }
    match name {
        "QuotaExceededError" => {
            (ErrorCode::QuotaExceeded, format!("the browser's storage quota is exhausted: {message}"))
        }
        "ConstraintError" => {
            (ErrorCode::Constraint, format!("a unique index already holds this value; nothing was written: {message}"))
        }
        "AbortError" | "TransactionInactiveError" => {
            (ErrorCode::Aborted, format!("the write was aborted and nothing was stored: {message}"))
        }
        "Closed" | "Deleted" => (ErrorCode::Closed, message.to_owned()),
        "Unavailable" => (ErrorCode::Unsupported, format!("IndexedDB is not available in this context: {message}")),
        _ => (ErrorCode::Storage, format!("IndexedDB failed ({name}): {message}")),
    }
}

/// Why a push or pull failed, as `lastError.code` and `SyncError.code` carry it: Wharf's own
/// classification of a failed request, or the code the reference server sent (docs/protocol.md).
/// A code some other server sends is `Rejected` (an op it refused) or `Http` (an error answer),
/// with the server's own text in `LastError::server_code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncErrorCode {
    /// An HTTP error answer without a code Wharf knows.
    Http,
    /// A 2xx answer that is not the protocol's.
    Protocol,
    Timeout,
    Network,
    /// The local database failed.
    Storage,
    /// The server refuses a lone mutation as too large (413).
    TooLarge,
    /// The server answered `conflict`: the op waits for its resolution.
    Conflict,
    /// `getToken` failed or gave no token.
    Token,
    /// The server refused the op with a code Wharf does not know.
    Rejected,
    BadRequest,
    Unauthorized,
    InvalidMutation,
    NotFound,
    UnsupportedProtocol,
    BatchTooLarge,
    CursorExpired,
    Internal,
    /// The reference server's fault injection (`--faults`): a failure made on purpose.
    InjectedFault,
    /// The demo server's poison value, refused for good.
    Poison,
}

impl SyncErrorCode {
    pub const ALL: [SyncErrorCode; 19] = [
        SyncErrorCode::Http,
        SyncErrorCode::Protocol,
        SyncErrorCode::Timeout,
        SyncErrorCode::Network,
        SyncErrorCode::Storage,
        SyncErrorCode::TooLarge,
        SyncErrorCode::Conflict,
        SyncErrorCode::Token,
        SyncErrorCode::Rejected,
        SyncErrorCode::BadRequest,
        SyncErrorCode::Unauthorized,
        SyncErrorCode::InvalidMutation,
        SyncErrorCode::NotFound,
        SyncErrorCode::UnsupportedProtocol,
        SyncErrorCode::BatchTooLarge,
        SyncErrorCode::CursorExpired,
        SyncErrorCode::Internal,
        SyncErrorCode::InjectedFault,
        SyncErrorCode::Poison,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SyncErrorCode::Http => "HTTP",
            SyncErrorCode::Protocol => "PROTOCOL",
            SyncErrorCode::Timeout => "TIMEOUT",
            SyncErrorCode::Network => "NETWORK",
            SyncErrorCode::Storage => "STORAGE",
            SyncErrorCode::TooLarge => "TOO_LARGE",
            SyncErrorCode::Conflict => "CONFLICT",
            SyncErrorCode::Token => "TOKEN",
            SyncErrorCode::Rejected => "REJECTED",
            SyncErrorCode::BadRequest => "BAD_REQUEST",
            SyncErrorCode::Unauthorized => "UNAUTHORIZED",
            SyncErrorCode::InvalidMutation => "INVALID_MUTATION",
            SyncErrorCode::NotFound => "NOT_FOUND",
            SyncErrorCode::UnsupportedProtocol => "UNSUPPORTED_PROTOCOL",
            SyncErrorCode::BatchTooLarge => "BATCH_TOO_LARGE",
            SyncErrorCode::CursorExpired => "CURSOR_EXPIRED",
            SyncErrorCode::Internal => "INTERNAL",
            SyncErrorCode::InjectedFault => "INJECTED_FAULT",
            SyncErrorCode::Poison => "POISON",
        }
    }

    /// The known code named `text`, if any.
    pub fn parse(text: &str) -> Option<SyncErrorCode> {
        SyncErrorCode::ALL.into_iter().find(|code| code.as_str() == text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_upper_snake_case() {
        let mut seen = HashSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "duplicate code {s}");
            assert!(s.chars().all(|c| c.is_ascii_uppercase() || c == '_'), "{s}");
        }
    }

    #[test]
    fn sync_codes_are_unique_and_parse_back() {
        let mut seen = HashSet::new();
        for code in SyncErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate {code:?}");
            assert_eq!(SyncErrorCode::parse(code.as_str()), Some(code));
        }
        assert_eq!(SyncErrorCode::parse("SOMETHING_ELSE"), None);
    }

    /// The members of the string union `name` in the package's typings.
    fn typed_union(name: &str) -> Vec<String> {
        let typings = include_str!("../api/js/index.d.ts");
        let start = typings.find(&format!("export type {name} =")).expect("the union is declared");
        let body = &typings[start..];
        let body = &body[..body.find(';').expect("the union ends")];
        body.split('|').skip(1).map(|member| member.trim().trim_matches('"').to_owned()).collect()
    }

    #[test]
    fn the_typings_list_exactly_the_codes() {
        let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(typed_union("WharfErrorCode"), codes);
        let codes: Vec<&str> = SyncErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(typed_union("SyncErrorCode"), codes);
    }

    #[test]
    fn storage_failures_map_to_stable_codes() {
        for (name, code) in [
            ("QuotaExceededError", ErrorCode::QuotaExceeded),
            ("ConstraintError", ErrorCode::Constraint),
            ("AbortError", ErrorCode::Aborted),
            ("Closed", ErrorCode::Closed),
            ("Deleted", ErrorCode::Closed),
            ("Unavailable", ErrorCode::Unsupported),
            ("UnknownError", ErrorCode::Storage),
        ] {
            let (mapped, message) = storage_failure(name, "why");
            assert_eq!(mapped, code, "{name}");
            assert!(message.contains("why"), "{name}: {message}");
        }
    }

    #[test]
    fn only_a_dead_connection_counts_as_lost() {
        for (name, message) in [
            ("UnknownError", "Connection to Indexed Database server lost. Refresh the page to try again"),
            ("UnknownError", "The operation failed for reasons unrelated to the database itself"),
            ("AbortError", "Connection to Indexed Database server lost. Refresh the page to try again"),
            ("Hung", "IndexedDB did not finish the transaction"),
            ("Lost", "its connection was lost"),
        ] {
            assert!(connection_lost(name, message), "{name}: {message}");
            assert_eq!(storage_failure(name, message).0, ErrorCode::Storage, "{name}");
        }
        for name in ["AbortError", "ConstraintError", "QuotaExceededError", "TransactionInactiveError", "Closed"] {
            assert!(!connection_lost(name, "the transaction was aborted"), "{name}");
        }
    }

    #[test]
    fn messages_name_the_problem() {
        let e = CoreError::UnknownCollection("todo".into());
        assert_eq!(e.code().as_str(), "UNKNOWN_COLLECTION");
        assert!(e.to_string().contains("\"todo\""));
        let e = CoreError::MissingKey { key_path: "id".into() };
        assert!(e.to_string().contains("\"id\""));
    }
}
