//! Browser-facing safety (`src/browser.rs`): a push must be `Content-Type: application/json`
//! (415 otherwise), and a request whose `Origin` is neither the server's own nor listed in
//! `--cors-origin` is refused with 403 on `/push`, `/pull` and the `/live` WebSocket, whether or
//! not a token is configured. Requests without `Origin` (not from a browser page) pass.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

use common::{send, site, Backend};
use futures_util::StreamExt;
use wharf_server::app::router;

/// The allowed cross-origin page of `common::config`.
const LISTED: &str = "http://localhost:5173";
const HOST: &str = "127.0.0.1:8080";

fn push(content_type: Option<&str>, origin: Option<&str>, id: &str) -> Request<Body> {
    let body = json!({"protocol": 1, "clientId": "c1", "mutations": [common::put(id, "todos", "a")]}).to_string();
    let mut request = Request::post("/push").header("host", HOST);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request.body(Body::from(body)).unwrap()
}

fn get(uri: &str, origin: Option<&str>) -> Request<Body> {
    let mut request = Request::get(uri).header("host", HOST);
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request.body(Body::empty()).unwrap()
}

backends!(a_push_must_be_json);
async fn a_push_must_be_json(backend: Backend) {
    let dir = site();
    let app = router(common::config(backend, dir.path(), None).await);
    for content_type in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None] {
        let (status, error, text) = send(&app, push(content_type, None, "m1")).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{content_type:?}: {text}");
        assert_eq!((error["protocol"].as_u64(), error["code"].as_str()), (Some(2), Some("UNSUPPORTED_MEDIA_TYPE")));
    }
    let (_, state, _) = send(&app, get("/pull", None)).await;
    assert_eq!(state["changes"], json!([]), "nothing was applied");
    let (status, answer, text) = send(&app, push(Some("application/json; charset=utf-8"), None, "m1")).await;
    assert_eq!((status, answer["results"][0]["status"].as_str()), (StatusCode::OK, Some("applied")), "{text}");
}

backends!(a_foreign_origin_is_refused_on_push_pull_and_live);
async fn a_foreign_origin_is_refused_on_push_pull_and_live(backend: Backend) {
    let dir = site();
    let app = router(common::config(backend, dir.path(), None).await);
    for origin in ["http://evil.example", "http://127.0.0.1:8081", "null"] {
        for request in
            [push(Some("application/json"), Some(origin), "m1"), get("/pull", Some(origin)), get("/live", Some(origin))]
        {
            let uri = request.uri().to_string();
            let (status, error, text) = send(&app, request).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{uri} from {origin}: {text}");
            assert_eq!((error["protocol"].as_u64(), error["code"].as_str()), (Some(2), Some("FORBIDDEN")), "{text}");
        }
    }
    let (_, pulled, _) = send(&app, get("/pull", None)).await;
    assert_eq!(pulled["changes"], json!([]), "the refused push applied nothing");
    // The server's own origin, a listed one, and no Origin at all pass.
    for (origin, id) in [(Some("http://127.0.0.1:8080"), "m1"), (Some(LISTED), "m2"), (None, "m3")] {
        let (status, answer, text) = send(&app, push(Some("application/json"), origin, id)).await;
        assert_eq!((status, answer["results"][0]["status"].as_str()), (StatusCode::OK, Some("applied")), "{text}");
        let (status, _, text) = send(&app, get("/pull", origin)).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let (status, error, _) = send(&app, get("/live", origin)).await;
        assert_eq!((status.is_client_error(), error["code"].as_str()), (true, Some("BAD_REQUEST")), "passed the check");
    }
    // /health is for load balancers: not checked.
    let (status, _, _) = send(&app, get("/health", Some("http://evil.example"))).await;
    assert_eq!(status, StatusCode::OK);
}

backends!(the_origin_is_checked_before_the_token);
async fn the_origin_is_checked_before_the_token(backend: Backend) {
    let dir = site();
    let app = router(common::config(backend, dir.path(), Some("s3cret")).await);
    let mut request = push(Some("application/json"), Some("http://evil.example"), "m1");
    request.headers_mut().insert("authorization", "Bearer s3cret".parse().unwrap());
    let (status, _, text) = send(&app, request).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a page elsewhere holding the token is still refused: {text}");
}

backends!(a_websocket_handshake_from_a_foreign_page_is_refused);
async fn a_websocket_handshake_from_a_foreign_page_is_refused(backend: Backend) {
    let dir = site();
    let addr = common::serve(router(common::config(backend, dir.path(), None).await)).await;
    let mut request = format!("ws://{addr}/live").into_client_request().unwrap();
    request.headers_mut().insert("origin", "http://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), StatusCode::FORBIDDEN),
        other => panic!("expected a 403 handshake, got {:?}", other.map(|(_, response)| response.status())),
    }
    // The same page on the server's own origin (what a browser sends from the demo) connects.
    let mut request = format!("ws://{addr}/live").into_client_request().unwrap();
    request.headers_mut().insert("origin", format!("http://{addr}").parse().unwrap());
    let (mut socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    let first = socket.next().await.unwrap().unwrap();
    assert!(matches!(first, Message::Text(ref t) if t.contains("poke")), "{first:?}");
}
