//! Errors of the browser layer and the one error JavaScript sees: a real `Error` whose `name` is
//! `"WharfError"`, with a stable string `code` (`core::ErrorCode`).

use js_sys::Reflect;
use wasm_bindgen::JsValue;

use crate::core::error::storage_failure;
use crate::core::{CoreError, ErrorCode};

/// Anything that can go wrong below the JavaScript API.
#[derive(Debug, Clone, PartialEq)]
pub enum PlatformError {
    /// The caller's input broke a rule of the model; nothing was written.
    Core(CoreError),
    /// IndexedDB (or the browser around it) failed.
    Storage { code: ErrorCode, message: String },
}

impl PlatformError {
    /// A storage failure, by the name of the exception raised (`core::error::storage_failure`).
    pub fn storage(name: &str, message: &str) -> PlatformError {
        let (code, message) = storage_failure(name, message);
        PlatformError::Storage { code, message }
    }

    /// The `WharfError` to throw or reject with.
    pub fn to_js(&self) -> JsValue {
        match self {
            PlatformError::Core(error) => wharf_error(error.code(), &error.to_string()),
            PlatformError::Storage { code, message } => wharf_error(*code, message),
        }
    }
}

impl From<CoreError> for PlatformError {
    fn from(error: CoreError) -> PlatformError {
        PlatformError::Core(error)
    }
}

impl From<PlatformError> for JsValue {
    fn from(error: PlatformError) -> JsValue {
        error.to_js()
    }
}

impl From<CoreError> for JsValue {
    fn from(error: CoreError) -> JsValue {
        PlatformError::Core(error).to_js()
    }
}

/// Builds `Object.assign(new Error(message), { name: "WharfError", code })`.
pub fn wharf_error(code: ErrorCode, message: &str) -> JsValue {
    let error = js_sys::Error::new(message);
    error.set_name("WharfError");
    // Setting a property on a fresh Error cannot fail.
    let _ = Reflect::set(&error, &JsValue::from_str("code"), &JsValue::from_str(code.as_str()));
    error.into()
}

/// The message of a thrown JavaScript value.
pub fn message_of(value: &JsValue) -> String {
    Reflect::get(value, &JsValue::from_str("message"))
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| value.as_string())
        .unwrap_or_else(|| "unknown error".to_owned())
}
