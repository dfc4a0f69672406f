//! `GET /live` (docs/protocol.md, "Live"): a WebSocket on which the server pokes connected
//! clients whenever a push changed data, so they pull at once instead of polling. It exists
//! apart from the other handlers because it is long-lived connection state (heartbeats, idle
//! timeouts), not request/response handling. The hub the sockets subscribe to, which pushes poke,
//! is `live_hub.rs`.
//!
//! Pokes are hints: they carry the latest cursor, never data, and the client's pull is what
//! delivers changes. So a poke may be lost (a lagging socket skips to the latest) or repeated
//! without harm; what matters is that, after every push that applied something, each socket
//! eventually hears a cursor at least that push's, and only if its principal can read the space
//! that push wrote (`spaces.rs`): a socket hears of its own spaces and of nothing else, from its
//! first poke on (the last change of its spaces, not the server's latest).
//!
//! Authentication of the socket: browsers cannot set headers on a WebSocket, so a browser first
//! trades its bearer token for a short-lived ticket at `POST /live/ticket` ([`ticket`], see
//! `ticket.rs`) and opens `/live?ticket=…`. Other clients may send `Authorization: Bearer` on the
//! upgrade itself. `?token=` is accepted for the development token only, never for a JWT.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use tokio::time::{interval_at, sleep, timeout, Instant, MissedTickBehavior};
use wharf::core::protocol::{LiveMessage, PROTOCOL_VERSION};

use crate::auth::{AuthError, Principal};
use crate::config::{authenticate, bearer, error, unauthorized, Config};
use crate::spaces::{self, Space};

/// A socket that sent nothing for this many ping periods is closed.
pub const IDLE_PINGS: u32 = 3;
/// WebSocket close code sent to an idle socket (application range 4000-4999).
pub const IDLE_CLOSE_CODE: u16 = 4000;
/// WebSocket close code sent to every socket when the server shuts down ("going away", RFC 6455).
pub const SHUTDOWN_CLOSE_CODE: u16 = 1001;
/// Largest message accepted from a client: they only ever send `{"type":"ping"}`.
const MAX_CLIENT_MESSAGE: usize = 4096;

/// `POST /live/ticket`: a ticket for the caller (`Authorization: Bearer`, as on `/push`; the
/// origin is checked before, by `browser.rs`), answered
/// `{"protocol":1,"ticket":"…","expiresInMs":30000}`.
pub async fn ticket(State(config): State<Arc<Config>>, headers: HeaderMap) -> Response {
    let principal = match authenticate(&config, &headers) {
        Ok(principal) => principal,
        Err(e) => return unauthorized(&e),
    };
    match config.auth.issue_ticket(&principal) {
        Ok(ticket) => {
            let expires_in_ms = config.auth.ticket_ttl().as_millis() as u64;
            let body =
                serde_json::json!({"protocol": PROTOCOL_VERSION, "ticket": ticket, "expiresInMs": expires_in_ms});
            let mut response = Json(body).into_response();
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => error(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", e.to_string()),
    }
}

/// Who opens a socket: the principal of `?ticket=` (which must agree with an `Authorization`
/// header, if one is sent too), else of `?token=` (the development token only), else of the
/// header (or anonymous, without authentication configured).
fn socket_principal(config: &Config, headers: &HeaderMap, query: &[(String, String)]) -> Result<Principal, AuthError> {
    let find = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    if let Some(ticket) = find("ticket") {
        let principal = config.auth.redeem_ticket(ticket)?;
        if bearer(headers).is_some() && authenticate(config, headers)? != principal {
            return Err(AuthError::TicketMismatch);
        }
        return Ok(principal);
    }
    if let Some(token) = find("token") {
        return config.auth.authenticate_in_url(token);
    }
    authenticate(config, headers)
}

/// `GET /live`: authenticates ([`socket_principal`]; the origin is checked before, by
/// `browser.rs`), then upgrades.
pub async fn live(
    State(config): State<Arc<Config>>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let query = query.map(|Query(pairs)| pairs).unwrap_or_default();
    let principal = match socket_principal(&config, &headers, &query) {
        Ok(principal) => principal,
        Err(e) => return unauthorized(&e),
    };
    let readable = spaces::access(&principal).readable;
    match upgrade {
        Ok(upgrade) => upgrade
            .max_message_size(MAX_CLIENT_MESSAGE)
            .on_upgrade(move |socket| serve(config, readable, socket))
            .into_response(),
        Err(rejection) => {
            error(rejection.status(), "BAD_REQUEST", format!("/live is a WebSocket: {}", rejection.body_text()))
        }
    }
}

/// Sends one message, giving up (the socket is then dropped) if the client does not take it
/// within a ping period: a stalled reader must not pin this task forever.
async fn send(socket: &mut WebSocket, message: Message, within: Duration) -> Result<(), ()> {
    match timeout(within, socket.send(message)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

fn text(message: &LiveMessage) -> Message {
    Message::Text(serde_json::to_string(message).unwrap_or_default().into())
}

fn poke(cursor: u64) -> Message {
    text(&LiveMessage::Poke { cursor: cursor.to_string() })
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame { code, reason: reason.into() }))
}

/// One socket's life: the initial poke, then pokes for the `readable` spaces, pings and pongs
/// until it closes, errs, stays silent for [`IDLE_PINGS`] ping periods, or the server shuts down.
async fn serve(config: Arc<Config>, readable: Vec<Space>, mut socket: WebSocket) {
    let period = config.live.ping_every;
    let mut closing = config.live.closing();
    if *closing.borrow_and_update() {
        let _ = send(&mut socket, close(SHUTDOWN_CLOSE_CODE, "server shutting down"), period).await;
        return;
    }
    // Subscribe before reading the latest cursor: a push committing in between is then heard
    // as a poke rather than lost.
    let mut pokes = config.live.subscribe(&readable);
    // From the database, so a socket on any instance starts from the latest commit of all in its
    // spaces.
    let Ok(mut sent) = config.store.latest_seq_in(readable).await else { return };
    if send(&mut socket, poke(sent), period).await.is_err() {
        return;
    }
    let mut pings = interval_at(Instant::now() + period, period);
    pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let idle_after = period * IDLE_PINGS;
    let idle = sleep(idle_after);
    tokio::pin!(idle);
    loop {
        tokio::select! {
            () = &mut idle => {
                let reason = format!("nothing received for {IDLE_PINGS} ping periods");
                let _ = send(&mut socket, close(IDLE_CLOSE_CODE, &reason), period).await;
                return;
            }
            // Any change is the shutdown (the flag only ever goes up), and so is the hub going away.
            _ = closing.changed() => {
                let _ = send(&mut socket, close(SHUTDOWN_CLOSE_CODE, "server shutting down"), period).await;
                return;
            }
            _ = pings.tick() => {
                if send(&mut socket, text(&LiveMessage::Ping), period).await.is_err() {
                    return;
                }
            }
            announced = pokes.next() => {
                let Some(cursor) = announced else { return };
                if cursor > sent {
                    sent = cursor;
                    if send(&mut socket, poke(cursor), period).await.is_err() {
                        return;
                    }
                }
            }
            incoming = socket.recv() => {
                let Some(Ok(message)) = incoming else { return };
                idle.as_mut().reset(Instant::now() + idle_after);
                match message {
                    Message::Text(body) => {
                        // Anything but a ping only counts as a sign of life.
                        if let Ok(LiveMessage::Ping) = serde_json::from_str(body.as_str()) {
                            if send(&mut socket, text(&LiveMessage::Pong), period).await.is_err() {
                                return;
                            }
                        }
                    }
                    Message::Close(_) => return,
                    Message::Binary(_) | Message::Ping(_) | Message::Pong(_) => {}
                }
            }
        }
    }
}
