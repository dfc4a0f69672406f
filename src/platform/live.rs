//! The live channel (`js/live.js`): a WebSocket to `{url}/live` that only says "the server has
//! new changes", which the host turns into a `Poke` for the sync machine. Open while this
//! context drains (the machine asks for it); closed on drop.

use js_sys::Function;
use wasm_bindgen::prelude::*;

use super::hooks::hook;
use super::host::Host;

#[wasm_bindgen(module = "/src/platform/js/live.js")]
extern "C" {
    #[wasm_bindgen(js_name = startLive)]
    fn start_live(base: &str, get_token: &JsValue, on_poke: &Function, silence_ms: f64) -> Function;
}

/// The server pings every 15 s by default; three silent periods mean the socket is dead.
const LIVE_SILENCE_MS: f64 = 50_000.0;

/// An open live channel; closes the socket on drop.
pub struct LiveChannel {
    stop: Function,
}

impl LiveChannel {
    pub fn start(url: &str, get_token: Option<&Function>, host: &Host) -> LiveChannel {
        let slot = host.slot();
        let on_poke = hook(move |_cursor, _, _, _, _| {
            let host = slot.borrow().upgrade();
            if let Some(host) = host {
                host.step(crate::core::host::Event::Poke);
            }
            Ok(JsValue::UNDEFINED)
        });
        let token = get_token.map_or(JsValue::UNDEFINED, |f| f.clone().into());
        let stop = start_live(url, &token, on_poke.unchecked_ref(), LIVE_SILENCE_MS);
        LiveChannel { stop }
    }
}

impl Drop for LiveChannel {
    fn drop(&mut self) {
        let _ = self.stop.call0(&JsValue::UNDEFINED);
    }
}
