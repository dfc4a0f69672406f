//! Errors of the browser layer, and their conversion into the one error JavaScript sees:
//! a real `Error` whose `name` is `"WharfError"`, with a stable string `code`.

use js_sys::Reflect;
use thiserror::Error;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::DomException;

use crate::core::{CoreError, ErrorCode};

/// Anything that can go wrong below the JavaScript API.
#[derive(Debug, Clone, Error)]
pub enum StorageError {
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error("IndexedDB is not available in this context: {0}")]
    Unavailable(String),
    #[error("the database is closed; open it again with Wharf.open")]
    Closed,
    #[error("the database was deleted (by Wharf.deleteDatabase or another tab); open it again with Wharf.open")]
    Deleted,
    #[error("a unique index already holds this value; nothing was written: {0}")]
    Constraint(String),
    /// The connection went away (version change, browser closed it); the caller reconnects.
    #[error("the database connection was lost")]
    ConnectionLost,
    #[error("the transaction was retired before the write could join it")]
    TransactionInactive,
    #[error("the browser's storage quota is exhausted: {0}")]
    QuotaExceeded(String),
    #[error("the write was aborted and nothing was stored: {0}")]
    Aborted(String),
    #[error("IndexedDB failed ({name}): {message}")]
    Dom { name: String, message: String },
}

impl StorageError {
    /// The stable code JavaScript sees.
    pub fn code(&self) -> ErrorCode {
        match self {
            StorageError::Core(e) => e.code(),
            StorageError::Unavailable(_) => ErrorCode::Unsupported,
            StorageError::Closed | StorageError::Deleted => ErrorCode::Closed,
            StorageError::Constraint(_) => ErrorCode::Constraint,
            StorageError::QuotaExceeded(_) => ErrorCode::QuotaExceeded,
            StorageError::Aborted(_) | StorageError::TransactionInactive => ErrorCode::Aborted,
            StorageError::Dom { .. } | StorageError::ConnectionLost => ErrorCode::Storage,
        }
    }

    /// Classifies a DOMException raised by IndexedDB.
    pub fn from_dom(exception: &DomException) -> StorageError {
        let (name, message) = (exception.name(), exception.message());
        match name.as_str() {
            "QuotaExceededError" => StorageError::QuotaExceeded(message),
            "ConstraintError" => StorageError::Constraint(message),
            "AbortError" => StorageError::Aborted(message),
            "TransactionInactiveError" => StorageError::TransactionInactive,
            _ => StorageError::Dom { name, message },
        }
    }

    /// Classifies any thrown JavaScript value.
    pub fn from_js(value: JsValue) -> StorageError {
        if let Some(exception) = value.dyn_ref::<DomException>() {
            return StorageError::from_dom(exception);
        }
        let message = value
            .dyn_ref::<js_sys::Error>()
            .map(|e| String::from(e.message()))
            .or_else(|| value.as_string())
            .unwrap_or_else(|| "unknown error".to_owned());
        StorageError::Dom { name: "Error".to_owned(), message }
    }

    /// The `WharfError` to throw or reject with.
    pub fn to_js(&self) -> JsValue {
        wharf_error(self.code(), &self.to_string())
    }
}

/// The DOMException name of a thrown value, if it is one.
pub fn dom_error_name(value: &JsValue) -> Option<String> {
    value.dyn_ref::<DomException>().map(DomException::name)
}

/// Builds `Object.assign(new Error(message), { name: "WharfError", code })`.
pub fn wharf_error(code: ErrorCode, message: &str) -> JsValue {
    let error = js_sys::Error::new(message);
    error.set_name("WharfError");
    // Setting a property on a fresh Error cannot fail.
    let _ = Reflect::set(&error, &JsValue::from_str("code"), &JsValue::from_str(code.as_str()));
    error.into()
}

impl From<StorageError> for JsValue {
    fn from(error: StorageError) -> JsValue {
        error.to_js()
    }
}
