//! Shared spaces granted by a token's `spaces` claim (protocol 2), through the router in process
//! (and real sockets for `/live`), on both backends: a grant lets its holder read (`"r"`) or
//! read and write (`"rw"`) a space other users share; a push into a space the token may not
//! write is a permanent `FORBIDDEN` rejection of that op alone; a pull naming a space the token
//! may not read is refused whole; a token without the grant (revocation) does neither, while a
//! resend of an op applied before stays a duplicate; pokes of a shared space reach its readers
//! only.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use common::{granted_token, pull_as, send, site, user_token, with_users, Backend};
use wharf_server::app::router;

async fn app(backend: Backend, dir: &std::path::Path) -> axum::Router {
    let store = common::store(backend).await;
    router(with_users(common::config_with(store, dir, None)))
}

/// A board in `space` (none: the writer's own), as a protocol 2 mutation.
fn board(id: &str, key: &str, space: Option<&str>, title: &str) -> Value {
    let mut m = json!({"id": id, "seq": 1, "collection": "boards", "key": key, "op": "put",
                       "value": {"id": key, "title": title}});
    if let Some(space) = space {
        m["space"] = json!(space);
    }
    m
}

/// `POST /push` in `protocol` as `token`: the status and the answer.
async fn push(
    app: &axum::Router,
    protocol: u32,
    client: &str,
    token: &str,
    mutations: Vec<Value>,
) -> (StatusCode, Value) {
    let body = json!({"protocol": protocol, "clientId": client, "mutations": mutations}).to_string();
    let request = Request::post("/push")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"));
    let (status, answer, _) = send(app, request.body(Body::from(body)).unwrap()).await;
    (status, answer)
}

/// The `(status, code)` of each result.
fn outcomes(answer: &Value) -> Vec<(String, String)> {
    let results = answer["results"].as_array().unwrap_or_else(|| panic!("not a push answer: {answer}"));
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    results.iter().map(|r| (text(&r["status"]), text(&r["code"]))).collect()
}

/// The changes of a page as `space collection/key title`.
fn seen(page: &Value) -> Vec<String> {
    let list = page["changes"].as_array().unwrap_or_else(|| panic!("not a page: {page}"));
    let space = |c: &Value| c.get("space").and_then(Value::as_str).unwrap_or("own").to_owned();
    list.iter().map(|c| format!("{} {}/{} {}", space(c), c["collection"], c["key"], c["value"]["title"])).collect()
}

async fn pull_status(app: &axum::Router, token: &str, query: &str) -> (StatusCode, Value) {
    let request = Request::get(format!("/pull?{query}")).header("authorization", format!("Bearer {token}"));
    let (status, body, _) = send(app, request.body(Body::empty()).unwrap()).await;
    (status, body)
}

fn applied() -> (String, String) {
    ("applied".into(), String::new())
}

fn forbidden() -> (String, String) {
    ("rejected".into(), "FORBIDDEN".into())
}

backends!(a_grant_lets_users_share_a_space_for_reading_and_writing);
async fn a_grant_lets_users_share_a_space_for_reading_and_writing(backend: Backend) {
    let dir = site();
    let app = app(backend, dir.path()).await;
    let carol = granted_token("carol", json!({"acme": "rw", "news": "r"}));
    let dave = granted_token("dave", json!({"acme": "r"}));
    let erin = user_token("erin");

    // One batch: carol's own space, acme (written), news (read only), her own space again.
    let batch = vec![
        board("c1", "b1", None, "carol's own"),
        board("c2", "b1", Some("acme"), "acme's"),
        board("c3", "b2", Some("news"), "not hers to write"),
        board("c4", "b3", None, "carol's second"),
    ];
    let (status, answer) = push(&app, 2, "carol-phone", &carol, batch).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(outcomes(&answer), vec![applied(), applied(), forbidden(), applied()]);
    assert_eq!(answer["protocol"], 2);
    assert_eq!(answer["results"][2]["permanent"], true);

    // Dave reads acme, with the space named on each change; his own space is empty.
    let page = pull_as(&app, &dave, "spaces=acme").await;
    assert_eq!(seen(&page), vec![r#"acme "boards"/"b1" "acme's""#]);
    assert_eq!(page["protocol"], 2);
    // Carol's pull names both of her spaces: her own boards and acme's, the same key apart.
    let page = pull_as(&app, &carol, "spaces=acme,news").await;
    assert_eq!(
        seen(&page),
        vec![
            r#"own "boards"/"b1" "carol's own""#,
            r#"acme "boards"/"b1" "acme's""#,
            r#"own "boards"/"b3" "carol's second""#
        ]
    );
    // A pull that names no space is a protocol 1 pull of the own space only.
    let page = pull_as(&app, &carol, "").await;
    assert_eq!(page["protocol"], 1);
    assert_eq!(seen(&page), vec![r#"own "boards"/"b1" "carol's own""#, r#"own "boards"/"b3" "carol's second""#]);

    // Dave may read acme but not write it; his op is refused alone, and acme is unchanged.
    let (_, answer) = push(&app, 2, "dave-laptop", &dave, vec![board("d1", "b1", Some("acme"), "dave's")]).await;
    assert_eq!(outcomes(&answer), vec![forbidden()]);
    assert_eq!(seen(&pull_as(&app, &dave, "spaces=acme").await), vec![r#"acme "boards"/"b1" "acme's""#]);

    // Erin, without a grant, can neither read acme (the pull is refused whole) nor write it.
    let (status, body) = pull_status(&app, &erin, "spaces=acme").await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("FORBIDDEN")), "{body}");
    let (_, answer) = push(&app, 2, "erin-tab", &erin, vec![board("e1", "b1", Some("acme"), "erin's")]).await;
    assert_eq!(outcomes(&answer), vec![forbidden()]);
    // Nor can a space name reach another user's private space.
    let (status, _) = pull_status(&app, &erin, "spaces=user:carol").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, answer) = push(&app, 2, "erin-tab", &erin, vec![board("e2", "b1", Some("user:carol"), "erin's")]).await;
    assert_eq!(outcomes(&answer), vec![forbidden()]);
    assert_eq!(seen(&pull_as(&app, &carol, "").await)[0], r#"own "boards"/"b1" "carol's own""#);

    // A protocol 1 push cannot name a space.
    let (status, body) = push(&app, 1, "carol-phone", &carol, vec![board("c5", "b9", Some("acme"), "v1")]).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("BAD_REQUEST")), "{body}");
}

backends!(revoking_a_grant_stops_reading_and_writing_but_a_resend_stays_a_duplicate);
async fn revoking_a_grant_stops_reading_and_writing_but_a_resend_stays_a_duplicate(backend: Backend) {
    let dir = site();
    let app = app(backend, dir.path()).await;
    let granted = granted_token("carol", json!({"acme": "rw"}));
    let (_, answer) = push(&app, 2, "carol-phone", &granted, vec![board("c1", "b1", Some("acme"), "before")]).await;
    assert_eq!(outcomes(&answer), vec![applied()]);

    // Carol's next token no longer carries the grant.
    let revoked = user_token("carol");
    let (status, _) = pull_status(&app, &revoked, "spaces=acme").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, answer) = push(&app, 2, "carol-phone", &revoked, vec![board("c2", "b1", Some("acme"), "after")]).await;
    assert_eq!(outcomes(&answer), vec![forbidden()]);
    // The answer to c1 was lost and the client resends it: it was applied, and says so.
    let (_, answer) = push(&app, 2, "carol-phone", &revoked, vec![board("c1", "b1", Some("acme"), "before")]).await;
    assert_eq!(outcomes(&answer)[0].0, "duplicate", "{answer}");
    // The refusal is not remembered: granted again, the same op applies.
    let (_, answer) = push(&app, 2, "carol-phone", &granted, vec![board("c2", "b1", Some("acme"), "after")]).await;
    assert_eq!(outcomes(&answer), vec![applied()]);
    assert_eq!(seen(&pull_as(&app, &granted, "spaces=acme").await), vec![r#"acme "boards"/"b1" "after""#]);
}

backends!(a_poke_for_a_shared_space_reaches_its_readers_only);
async fn a_poke_for_a_shared_space_reaches_its_readers_only(backend: Backend) {
    let dir = site();
    let app = app(backend, dir.path()).await;
    let addr = common::serve(app.clone()).await;
    let carol = granted_token("carol", json!({"acme": "rw"}));
    let (dave, erin) = (granted_token("dave", json!({"acme": "r"})), user_token("erin"));
    let app_ = app.clone();
    let connect = |token: String| {
        let app = app_.clone();
        async move {
            // A ticket carries the token's grants to the socket (`ticket.rs`).
            let request = Request::post("/live/ticket").header("authorization", format!("Bearer {token}"));
            let (status, answer, text) = send(&app, request.body(Body::empty()).unwrap()).await;
            assert_eq!(status, StatusCode::OK, "{text}");
            let url = format!("ws://{addr}/live?ticket={}", answer["ticket"].as_str().unwrap());
            tokio_tungstenite::connect_async(url).await.unwrap().0
        }
    };
    let (daves, erins) = (connect(dave).await, connect(erin).await);
    let (_, answer) = push(&app, 2, "carol-phone", &carol, vec![board("c1", "b1", Some("acme"), "news")]).await;
    assert_eq!(outcomes(&answer), vec![applied()]);
    // Each socket's first poke is its starting cursor; dave's reader hears the write too.
    assert_eq!(pokes(daves).await, 2, "the starting poke and the write's");
    assert_eq!(pokes(erins).await, 1, "only the starting poke");
}

/// The pokes a socket hears within 1.5 s.
async fn pokes(mut socket: WebSocketStream<MaybeTlsStream<TcpStream>>) -> usize {
    let mut heard = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
    while let Ok(Some(Ok(message))) = timeout(deadline - tokio::time::Instant::now(), socket.next()).await {
        if let Message::Text(text) = message {
            heard += usize::from(text.as_str().contains("\"poke\""));
        }
    }
    heard
}
