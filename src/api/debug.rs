//! The `Debug` JavaScript class (`db.debug`): what an app attaches to a bug report. The report
//! is built by the core (`core::debug_report`): one read-only transaction over the outbox, the
//! dead letters and Wharf's meta records, with the status, counters and recent sync events.

use std::rc::Rc;

use js_sys::{Promise, Reflect};
use wasm_bindgen::prelude::*;

use crate::core::replica::Request;
use crate::core::CoreError;
use crate::platform::Host;

/// Diagnostics of one open database.
#[wasm_bindgen]
pub struct Debug {
    host: Rc<Host>,
}

impl Debug {
    pub(crate) fn new(host: Rc<Host>) -> Debug {
        Debug { host }
    }
}

#[wasm_bindgen]
impl Debug {
    /// One JSON object for a bug report: `{ format, version, exportedAt, database, collections,
    /// sync: { clientId, role, status, stats, transport, user } | null, stored: { outbox,
    /// deadLetters, meta }, events }`. `{ redact: true }` replaces every document value and patch
    /// by its size.
    #[wasm_bindgen(js_name = export, unchecked_return_type = "Promise<DebugReport>")]
    pub fn export(&self, options: JsValue) -> Promise {
        let redact = match options.is_undefined() || options.is_null() {
            true => Ok(false),
            false => match Reflect::get(&options, &"redact".into()).unwrap_or(JsValue::UNDEFINED) {
                value if value.is_undefined() => Ok(false),
                value => value
                    .as_bool()
                    .ok_or_else(|| CoreError::InvalidOptions("debug.export: redact must be true or false".into())),
            },
        };
        match redact {
            Ok(redact) => self.host.request(Request::DebugExport { redact }),
            Err(error) => Promise::reject(&error.into()),
        }
    }
}
