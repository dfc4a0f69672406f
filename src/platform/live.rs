//! The live channel's socket (`js/live.js`): a WebSocket to `{url}/live` (opened with a ticket
//! from `{url}/live/ticket`), or a transport's `live` subscription, whose pokes wake the sync machine for a pull. The core decides when it is open
//! (`core/live_channel.rs`) and asks through `Action::Live`; this opens and closes it and hands
//! back what happens to it as events (`LiveOpened`, `Poke`, `LiveHeard`, `LiveClosed`). Closed on
//! drop.

use js_sys::{Function, Object};
use wasm_bindgen::prelude::*;

use super::hooks::{hook, text};
use super::host::Host;

#[wasm_bindgen(module = "/src/platform/js/live.js")]
extern "C" {
    #[derive(Clone)]
    type LiveSocket;

    #[wasm_bindgen(constructor)]
    fn new(base: &str, get_token: &JsValue, fetch: &JsValue, transport: &JsValue, report: &JsValue) -> LiveSocket;
    #[wasm_bindgen(method)]
    fn open(this: &LiveSocket);
    #[wasm_bindgen(method)]
    fn close(this: &LiveSocket);
}

/// The socket of one database's live channel; closed on drop.
pub struct LiveChannel {
    socket: LiveSocket,
}

impl LiveChannel {
    /// A channel to `{url}/live` (or the transport's `live`), closed until `open`. Its ticket is
    /// asked for with `fetch` (`sync.fetch`, or the scope's).
    pub fn new(
        url: &str,
        get_token: Option<&Function>,
        fetch: Option<&Function>,
        transport: Option<&Object>,
        host: &Host,
    ) -> LiveChannel {
        let slot = host.slot();
        let report = hook(move |kind, _, _, _, _| {
            let host = slot.borrow().upgrade();
            if let Some(host) = host {
                host.report(&text(&kind), 0, 0.0, None, None);
            }
            Ok(JsValue::UNDEFINED)
        });
        let token = get_token.map_or(JsValue::UNDEFINED, |f| f.clone().into());
        let fetch = fetch.map_or(JsValue::UNDEFINED, |f| f.clone().into());
        let transport = transport.map_or(JsValue::UNDEFINED, |t| t.into());
        LiveChannel { socket: LiveSocket::new(url, &token, &fetch, &transport, &report) }
    }

    /// A handle to call through once the borrow of the channel has ended (opening calls the
    /// app's `getToken`).
    pub fn handle(&self) -> LiveHandle {
        LiveHandle(self.socket.clone())
    }
}

/// The channel's socket, to open or close (dropping it closes nothing).
pub struct LiveHandle(LiveSocket);

impl LiveHandle {
    pub fn open(&self) {
        self.0.open();
    }

    pub fn close(&self) {
        self.0.close();
    }
}

impl Drop for LiveChannel {
    fn drop(&mut self) {
        self.socket.close();
    }
}
