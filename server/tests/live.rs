//! `GET /live` over a real socket, with tokio-tungstenite as the client: the initial poke, a
//! poke after each applied push, ping/pong both ways, the idle close, a lagging socket, the token
//! (header or query) and a plain GET.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use common::{config, push, put, send, site, Backend};
use wharf_server::app::router;
use wharf_server::config::Config;
use wharf_server::live_hub::Live;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Serves `config` on a loopback port; returns the address and a router sharing its state
/// (for pushes in process).
async fn serve(config: Config) -> (SocketAddr, axum::Router) {
    let app = router(config);
    (common::serve(app.clone()).await, app)
}

async fn connect(addr: SocketAddr, query: &str) -> Socket {
    let (socket, response) = tokio_tungstenite::connect_async(format!("ws://{addr}/live{query}")).await.unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    socket
}

/// The next text message, as JSON (WebSocket-level frames skipped); panics after 5 s.
async fn next(socket: &mut Socket) -> Value {
    loop {
        let message = timeout(Duration::from_secs(5), socket.next()).await.expect("a message within 5 s");
        match message.expect("the socket is open").unwrap() {
            Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => {}
        }
    }
}

/// The next message of `kind`, skipping the others (heartbeats, earlier pokes).
async fn next_of(socket: &mut Socket, kind: &str) -> Value {
    loop {
        let message = next(socket).await;
        if message["type"] == kind {
            return message;
        }
    }
}

fn cursor(poke: &Value) -> u64 {
    poke["cursor"].as_str().unwrap().parse().unwrap()
}

backends!(a_socket_gets_the_latest_cursor_then_a_poke_after_each_applied_push);
async fn a_socket_gets_the_latest_cursor_then_a_poke_after_each_applied_push(backend: Backend) {
    let dir = site();
    let (addr, app) = serve(config(backend, dir.path(), None).await).await;
    push(&app, vec![put("m1", "todos", "a")], None).await;
    let mut socket = connect(addr, "").await;
    assert_eq!(next(&mut socket).await, json!({"type": "poke", "cursor": "1"}), "on connect");
    push(&app, vec![put("m2", "todos", "b"), put("m3", "todos", "c")], None).await;
    assert_eq!(next_of(&mut socket, "poke").await, json!({"type": "poke", "cursor": "3"}));
    // A push that applied nothing (all duplicates) announces nothing new; the next one does.
    push(&app, vec![put("m2", "todos", "b")], None).await;
    push(&app, vec![put("m4", "todos", "d")], None).await;
    assert_eq!(cursor(&next_of(&mut socket, "poke").await), 4);
    // A second socket hears the same.
    let mut other = connect(addr, "").await;
    assert_eq!(cursor(&next(&mut other).await), 4);
    push(&app, vec![put("m5", "notes", "n")], None).await;
    assert_eq!(cursor(&next_of(&mut socket, "poke").await), 5);
    assert_eq!(cursor(&next_of(&mut other, "poke").await), 5);
}

backends!(a_client_ping_gets_a_pong_and_the_server_pings_too);
async fn a_client_ping_gets_a_pong_and_the_server_pings_too(backend: Backend) {
    let dir = site();
    let mut config = config(backend, dir.path(), None).await;
    config.live = Live::new(Duration::from_millis(100));
    let (addr, _) = serve(config).await;
    let mut socket = connect(addr, "").await;
    assert_eq!(next(&mut socket).await["type"], "poke");
    socket.send(Message::text(r#"{"type":"ping"}"#)).await.unwrap();
    assert_eq!(next_of(&mut socket, "pong").await, json!({"type": "pong"}));
    assert_eq!(next_of(&mut socket, "ping").await, json!({"type": "ping"}), "the server's heartbeat");
}

backends!(a_silent_socket_is_closed_after_three_ping_periods_and_a_talking_one_is_not);
async fn a_silent_socket_is_closed_after_three_ping_periods_and_a_talking_one_is_not(backend: Backend) {
    let dir = site();
    let mut config = config(backend, dir.path(), None).await;
    config.live = Live::new(Duration::from_millis(100));
    let (addr, _) = serve(config).await;

    let mut talking = connect(addr, "").await;
    let mut silent = connect(addr, "").await;
    let started = tokio::time::Instant::now();
    // The talking client answers for 0.6 s, twice the idle limit.
    while started.elapsed() < Duration::from_millis(600) {
        talking.send(Message::text(r#"{"type":"ping"}"#)).await.unwrap();
        next_of(&mut talking, "pong").await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut pings = 0;
    let close = loop {
        let message = timeout(Duration::from_secs(5), silent.next()).await.expect("closed within 5 s");
        match message {
            Some(Ok(Message::Text(text))) if text.as_str() == r#"{"type":"ping"}"# => pings += 1,
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    let close = close.expect("a close frame with a code");
    assert_eq!(u16::from(close.code), wharf_server::live::IDLE_CLOSE_CODE);
    assert!((1..=3).contains(&pings), "pinged each period until closed: {pings}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    talking.send(Message::text(r#"{"type":"ping"}"#)).await.unwrap();
    assert_eq!(next_of(&mut talking, "pong").await["type"], "pong", "still open");
}

backends!(pokes_after_many_pushes_only_move_forward_and_end_at_the_latest);
async fn pokes_after_many_pushes_only_move_forward_and_end_at_the_latest(backend: Backend) {
    let dir = site();
    let (addr, app) = serve(config(backend, dir.path(), None).await).await;
    let mut socket = connect(addr, "").await;
    assert_eq!(cursor(&next(&mut socket).await), 0);
    for i in 0..60 {
        push(&app, vec![put(&format!("m{i}"), "todos", &format!("k{i}"))], None).await;
    }
    let mut last = 0;
    while last < 60 {
        let poke = next_of(&mut socket, "poke").await;
        assert!(cursor(&poke) > last, "pokes only move forward");
        last = cursor(&poke);
    }
    assert_eq!(last, 60);
}

backends!(live_requires_the_token_as_header_or_query_parameter);
async fn live_requires_the_token_as_header_or_query_parameter(backend: Backend) {
    let dir = site();
    let (addr, _) = serve(config(backend, dir.path(), Some("s3cret")).await).await;
    for query in ["", "?token=wrong"] {
        match tokio_tungstenite::connect_async(format!("ws://{addr}/live{query}")).await {
            Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), StatusCode::UNAUTHORIZED),
            other => panic!("{query}: expected 401, got {other:?}"),
        }
    }
    let mut by_query = connect(addr, "?token=s3cret").await;
    assert_eq!(next(&mut by_query).await["type"], "poke");
    let mut request = format!("ws://{addr}/live").into_client_request().unwrap();
    request.headers_mut().insert("authorization", "Bearer s3cret".parse().unwrap());
    let (mut by_header, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(next(&mut by_header).await["type"], "poke");
}

backends!(a_plain_get_of_live_is_a_clear_error);
async fn a_plain_get_of_live_is_a_clear_error(backend: Backend) {
    let dir = site();
    let app = router(config(backend, dir.path(), None).await);
    let (status, error, text) = send(&app, Request::get("/live").body(Body::empty()).unwrap()).await;
    assert!(status.is_client_error(), "{status}: {text}");
    assert_eq!((error["protocol"].as_u64(), error["code"].as_str()), (Some(2), Some("BAD_REQUEST")), "{text}");
}
