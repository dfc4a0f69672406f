//! The `/live` WebSocket's tickets (`src/ticket.rs`) over a real socket: `POST /live/ticket`
//! trades a bearer token for a ticket that opens one socket as its principal; an expired,
//! forged, reused, foreign (another server's key) or other-user ticket is refused with 401, and so
//! is a JWT in `?token=`; pokes reach ticket sockets of the space's readers only; a server
//! without authentication needs no ticket.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures_util::StreamExt;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use common::{config, push_as, put, send, site, user_token, with_users, Backend, DEV_TOKEN};
use wharf_server::app::router;
use wharf_server::auth::Authenticator;
use wharf_server::config::Config;
use wharf_server::ticket::Tickets;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Serves `config`; returns the address and an in-process router sharing its state.
async fn serve(config: Config) -> (SocketAddr, axum::Router) {
    let app = router(config);
    (common::serve(app.clone()).await, app)
}

/// `POST /live/ticket` with `token` (none: no header): the status and the answer.
async fn ask_ticket(app: &axum::Router, token: Option<&str>) -> (StatusCode, Value) {
    let mut request = Request::post("/live/ticket");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let (status, answer, _) = send(app, request.body(Body::empty()).unwrap()).await;
    (status, answer)
}

/// A ticket for `token`'s principal.
async fn ticket(app: &axum::Router, token: &str) -> String {
    let (status, answer) = ask_ticket(app, Some(token)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!((answer["protocol"].as_u64(), answer["expiresInMs"].as_u64()), (Some(2), Some(30_000)), "{answer}");
    answer["ticket"].as_str().expect("a ticket").to_owned()
}

/// Opens `/live{query}` with an optional `Authorization` header: the socket, or the refusal's
/// status.
async fn open(addr: SocketAddr, query: &str, bearer: Option<&str>) -> Result<Socket, StatusCode> {
    let mut request = format!("ws://{addr}/live{query}").into_client_request().unwrap();
    if let Some(token) = bearer {
        request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(response)) => Err(response.status()),
        Err(other) => panic!("{query}: {other}"),
    }
}

/// The cursor of the next poke within `wait`, skipping heartbeats; `None` if none came.
async fn poke_within(socket: &mut Socket, wait: Duration) -> Option<u64> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match timeout(left, socket.next()).await {
            Err(_) => return None,
            Ok(Some(Ok(Message::Text(text)))) => {
                let message: Value = serde_json::from_str(text.as_str()).unwrap();
                if message["type"] == "poke" {
                    return Some(message["cursor"].as_str().unwrap().parse().unwrap());
                }
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("the socket failed: {other:?}"),
        }
    }
}

const SOON: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(300);

backends!(a_ticket_opens_one_socket_as_its_principal_and_nothing_else_does);
async fn a_ticket_opens_one_socket_as_its_principal_and_nothing_else_does(backend: Backend) {
    let dir = site();
    let (addr, app) = serve(with_users(config(backend, dir.path(), None).await)).await;
    let alice = user_token("alice");
    let ticket_a = ticket(&app, &alice).await;
    let mut socket = open(addr, &format!("?ticket={ticket_a}"), None).await.expect("the ticket opens the socket");
    assert!(poke_within(&mut socket, SOON).await.is_some(), "the first poke");
    assert_eq!(open(addr, &format!("?ticket={ticket_a}"), None).await.err(), Some(StatusCode::UNAUTHORIZED), "reused");

    // Altered: one character of the signature, or of the payload.
    let fresh = ticket(&app, &alice).await;
    let (head, mac) = fresh.rsplit_once('.').unwrap();
    let flipped = if mac.starts_with('A') { "B" } else { "A" };
    let forged = format!("{head}.{flipped}{}", &mac[1..]);
    assert_eq!(open(addr, &format!("?ticket={forged}"), None).await.err(), Some(StatusCode::UNAUTHORIZED));
    // Issued by another server (another random key).
    let other_dir = site();
    let other = router(with_users(config(Backend::Sqlite, other_dir.path(), None).await));
    let foreign = ticket(&other, &alice).await;
    assert_eq!(open(addr, &format!("?ticket={foreign}"), None).await.err(), Some(StatusCode::UNAUTHORIZED));
    // Alice's ticket with Bob's header.
    let bob = user_token("bob");
    assert_eq!(open(addr, &format!("?ticket={fresh}"), Some(&bob)).await.err(), Some(StatusCode::UNAUTHORIZED));
    // The same header as the ticket's principal is fine (a fresh ticket: the last was used up).
    let again = ticket(&app, &alice).await;
    assert!(open(addr, &format!("?ticket={again}"), Some(&alice)).await.is_ok());

    // A JWT in the URL is refused; the development token is still accepted there; no ticket
    // without a valid token.
    assert_eq!(open(addr, &format!("?token={alice}"), None).await.err(), Some(StatusCode::UNAUTHORIZED));
    assert!(open(addr, &format!("?token={DEV_TOKEN}"), None).await.is_ok());
    assert_eq!(ask_ticket(&app, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(ask_ticket(&app, Some("wrong")).await.0, StatusCode::UNAUTHORIZED);
    let (status, _, _) = send(
        &app,
        Request::post("/live/ticket")
            .header("authorization", format!("Bearer {alice}"))
            .header("origin", "http://evil.example")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "origin-checked like /push");
}

backends!(an_expired_ticket_is_refused);
async fn an_expired_ticket_is_refused(backend: Backend) {
    let dir = site();
    let mut config = with_users(config(backend, dir.path(), None).await);
    let auth = std::mem::take(&mut config.auth);
    config.auth = auth.with_tickets(Tickets::new(None, Duration::from_millis(200)).unwrap());
    let (addr, app) = serve(config).await;
    let (_, answer) = ask_ticket(&app, Some(&user_token("alice"))).await;
    assert_eq!(answer["expiresInMs"], 200);
    let ticket = answer["ticket"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(open(addr, &format!("?ticket={ticket}"), None).await.err(), Some(StatusCode::UNAUTHORIZED));
}

backends!(pokes_reach_the_ticket_sockets_of_the_space_readers_only);
async fn pokes_reach_the_ticket_sockets_of_the_space_readers_only(backend: Backend) {
    let dir = site();
    let (addr, app) = serve(with_users(config(backend, dir.path(), None).await)).await;
    let (alice, bob) = (user_token("alice"), user_token("bob"));
    let mut alices = open(addr, &format!("?ticket={}", ticket(&app, &alice).await), None).await.unwrap();
    let mut bobs = open(addr, &format!("?ticket={}", ticket(&app, &bob).await), None).await.unwrap();
    assert_eq!(poke_within(&mut alices, SOON).await, Some(0));
    assert_eq!(poke_within(&mut bobs, SOON).await, Some(0));
    push_as(&app, "alice-client", vec![put("m1", "todos", "a")], Some(&alice)).await;
    assert!(poke_within(&mut alices, SOON).await.is_some_and(|c| c > 0), "alice hears her write");
    assert_eq!(poke_within(&mut bobs, QUIET).await, None, "bob hears nothing of alice's space");
    push_as(&app, "bob-client", vec![put("m1", "todos", "a")], Some(&bob)).await;
    assert!(poke_within(&mut bobs, SOON).await.is_some());
    assert_eq!(poke_within(&mut alices, QUIET).await, None);
}

backends!(without_authentication_live_needs_no_ticket_and_old_tickets_stop_with_it);
async fn without_authentication_live_needs_no_ticket_and_old_tickets_stop_with_it(backend: Backend) {
    let dir = site();
    let (addr, app) = serve(config(backend, dir.path(), None).await).await;
    assert!(open(addr, "", None).await.is_ok(), "anonymous");
    let (status, answer) = ask_ticket(&app, None).await;
    assert_eq!(status, StatusCode::OK, "a client that always asks gets one: {answer}");
    let anonymous = answer["ticket"].as_str().unwrap().to_owned();
    assert!(open(addr, &format!("?ticket={anonymous}"), None).await.is_ok());

    // An anonymous ticket is no use once authentication is on (same key, as with --ticket-secret).
    let secret = "a shared ticket secret of 32 bytes or more";
    let mut open_config = config(backend, dir.path(), None).await;
    open_config.auth = Authenticator::none().with_tickets(Tickets::new(Some(secret), Duration::from_secs(30)).unwrap());
    let before = ticket(&router(open_config), "anything").await;
    let mut closed = with_users(config(backend, dir.path(), None).await);
    let auth = std::mem::take(&mut closed.auth);
    closed.auth = auth.with_tickets(Tickets::new(Some(secret), Duration::from_secs(30)).unwrap());
    let (closed_addr, _) = serve(closed).await;
    assert_eq!(open(closed_addr, &format!("?ticket={before}"), None).await.err(), Some(StatusCode::UNAUTHORIZED));
}
