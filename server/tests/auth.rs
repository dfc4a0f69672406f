//! Identity: JWTs (HS256 with `--jwt-secret`, RS256 and ES256 with `--jwt-public-key`) and the
//! static development token, on `/push`, `/pull` and `/live`, through the router in process. A
//! wrong signature, an expired or not-yet-valid token, a wrong issuer or audience, a missing
//! `sub` and a missing token are all 401 `UNAUTHORIZED` with the protocol's error body.
//!
//! The keys in `tests/fixtures/jwt/` were made for these tests with `openssl genpkey` and protect
//! nothing.

mod common;

use std::path::Path;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use common::{send, site, Backend};
use wharf_server::app::router;
use wharf_server::auth::{AuthError, AuthSetupError, Authenticator, Grant, JwtSettings, JwtVerifier, Principal};

const SECRET: &str = "a test secret of at least 32 bytes, not a real one";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jwt").join(name)).unwrap()
}

fn now() -> i64 {
    i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

/// Valid claims for user `sub`, for an hour.
fn claims(sub: &str) -> Value {
    json!({"sub": sub, "exp": now() + 3600, "iat": now()})
}

fn sign(algorithm: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    encode(&Header::new(algorithm), claims, key).unwrap()
}

fn hs256(secret: &str, claims: &Value) -> String {
    sign(Algorithm::HS256, &EncodingKey::from_secret(secret.as_bytes()).unwrap(), claims)
}

fn rs256(private_pem: &str, claims: &Value) -> String {
    sign(Algorithm::RS256, &EncodingKey::from_rsa_pem(&fixture(private_pem)).unwrap(), claims)
}

fn es256(claims: &Value) -> String {
    sign(Algorithm::ES256, &EncodingKey::from_ec_pem(&fixture("ec_private.pem")).unwrap(), claims)
}

fn verifier(settings: JwtSettings) -> JwtVerifier {
    JwtVerifier::new(&settings).unwrap().expect("a key is configured")
}

fn with_bearer(request: axum::http::request::Builder, token: Option<&str>) -> axum::http::request::Builder {
    match token {
        Some(token) => request.header("authorization", format!("Bearer {token}")),
        None => request,
    }
}

/// A push from a client of its own for each token (a client id belongs to the first user that
/// pushes with it).
fn push_request(token: Option<&str>) -> Request<Body> {
    let client_id = format!("client-{}", token.map_or("", |t| &t[t.len().saturating_sub(16)..]));
    let body =
        json!({"protocol": 1, "clientId": client_id, "mutations": [common::put("m1", "todos", "a")]}).to_string();
    with_bearer(Request::post("/push").header("content-type", "application/json"), token)
        .body(Body::from(body))
        .unwrap()
}

fn pull_request(token: Option<&str>) -> Request<Body> {
    with_bearer(Request::get("/pull"), token).body(Body::empty()).unwrap()
}

/// A plain GET of `/live` (not an upgrade): 401 when authentication fails, else the 4xx
/// `BAD_REQUEST` of a non-WebSocket request, which proves the token was accepted.
fn live_request(token: Option<&str>, query: &str) -> Request<Body> {
    with_bearer(Request::get(format!("/live{query}")), token).body(Body::empty()).unwrap()
}

/// Asserts `token` is refused with 401 `UNAUTHORIZED` on `/push`, `/pull` and `/live`, with a
/// message containing `why`.
async fn refused_everywhere(app: &axum::Router, token: Option<&str>, why: &str) {
    let ticket_request = with_bearer(Request::post("/live/ticket"), token).body(Body::empty()).unwrap();
    for request in [push_request(token), pull_request(token), live_request(token, ""), ticket_request] {
        let uri = request.uri().to_string();
        let (status, error, text) = send(app, request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri} with {token:?}: {text}");
        assert_eq!((error["protocol"].as_u64(), error["code"].as_str()), (Some(2), Some("UNAUTHORIZED")), "{text}");
        assert!(error["message"].as_str().is_some_and(|m| m.contains(why)), "{uri}: {text} should say {why:?}");
    }
}

/// Asserts `token` is accepted on `/push`, `/pull` and `/live` (header, or a ticket from
/// `POST /live/ticket`), and in `/live`'s URL (`?token=`) only if it is not a JWT.
async fn accepted_everywhere(app: &axum::Router, token: &str) {
    let (status, _, text) = send(app, push_request(Some(token))).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let (status, _, text) = send(app, pull_request(Some(token))).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let ticket_request = with_bearer(Request::post("/live/ticket"), Some(token)).body(Body::empty()).unwrap();
    let (status, answer, text) = send(app, ticket_request).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let ticket = answer["ticket"].as_str().expect("a ticket");
    for request in [live_request(Some(token), ""), live_request(None, &format!("?ticket={ticket}"))] {
        let (status, error, text) = send(app, request).await;
        assert_ne!(status, StatusCode::UNAUTHORIZED, "{text}");
        assert_eq!(error["code"], "BAD_REQUEST", "not a WebSocket, but authenticated: {text}");
    }
    let (status, _, text) = send(app, live_request(None, &format!("?token={token}"))).await;
    if token.split('.').count() == 3 {
        assert_eq!(status, StatusCode::UNAUTHORIZED, "a JWT in the URL: {text}");
        assert!(text.contains("POST /live/ticket"), "{text}");
    } else {
        assert_eq!(status, StatusCode::BAD_REQUEST, "the development token in the URL: {text}");
    }
}

backends!(hs256_tokens_are_verified_on_push_pull_and_live);
async fn hs256_tokens_are_verified_on_push_pull_and_live(backend: Backend) {
    let dir = site();
    let mut config = common::config(backend, dir.path(), None).await;
    config.auth =
        Authenticator::new(None, Some(verifier(JwtSettings { secret: Some(SECRET.into()), ..Default::default() })));
    let app = router(config);
    accepted_everywhere(&app, &hs256(SECRET, &claims("alice"))).await;
    refused_everywhere(&app, None, "missing").await;
    refused_everywhere(&app, Some(&hs256("another secret, also 32 bytes long or more", &claims("alice"))), "signature")
        .await;
    let expired = json!({"sub": "alice", "exp": now() - 3600});
    refused_everywhere(&app, Some(&hs256(SECRET, &expired)), "expired").await;
    let not_yet = json!({"sub": "alice", "exp": now() + 7200, "nbf": now() + 3600});
    refused_everywhere(&app, Some(&hs256(SECRET, &not_yet)), "not valid yet").await;
    refused_everywhere(&app, Some(&hs256(SECRET, &json!({"exp": now() + 3600}))), "sub").await;
    refused_everywhere(&app, Some(&hs256(SECRET, &json!({"sub": "alice"}))), "exp").await;
    refused_everywhere(&app, Some("not.a.jwt"), "well-formed").await;
    // Without an audience configured, a token's `aud` is not held against it.
    accepted_everywhere(&app, &hs256(SECRET, &json!({"sub": "bob", "exp": now() + 60, "aud": "anything"}))).await;
}

backends!(rs256_and_es256_tokens_are_verified_with_the_public_key_issuer_and_audience);
async fn rs256_and_es256_tokens_are_verified_with_the_public_key_issuer_and_audience(backend: Backend) {
    let dir = site();
    for (public, token_for) in [
        ("rsa_public.pem", (|c: &Value| rs256("rsa_private.pem", c)) as fn(&Value) -> String),
        ("ec_public.pem", es256 as fn(&Value) -> String),
    ] {
        let mut config = common::config(backend, dir.path(), None).await;
        config.auth = Authenticator::new(
            None,
            Some(verifier(JwtSettings {
                public_key_pem: Some(fixture(public)),
                issuer: Some("https://issuer.example".into()),
                audience: Some("wharf".into()),
                ..Default::default()
            })),
        );
        let app = router(config);
        let good = json!({"sub": "alice", "exp": now() + 3600, "iss": "https://issuer.example", "aud": "wharf"});
        accepted_everywhere(&app, &token_for(&good)).await;
        let also_for_others = json!({"sub": "alice", "exp": now() + 3600, "iss": "https://issuer.example",
            "aud": ["other", "wharf"]});
        accepted_everywhere(&app, &token_for(&also_for_others)).await;
        let mut wrong_audience = good.clone();
        wrong_audience["aud"] = json!("another-service");
        refused_everywhere(&app, Some(&token_for(&wrong_audience)), "audience").await;
        let mut no_audience = good.clone();
        no_audience.as_object_mut().unwrap().remove("aud");
        refused_everywhere(&app, Some(&token_for(&no_audience)), "aud").await;
        let mut wrong_issuer = good.clone();
        wrong_issuer["iss"] = json!("https://evil.example");
        refused_everywhere(&app, Some(&token_for(&wrong_issuer)), "issuer").await;
        let mut expired = good.clone();
        expired["exp"] = json!(now() - 3600);
        refused_everywhere(&app, Some(&token_for(&expired)), "expired").await;
        // Signed by someone else's key; and the classic confusion: HS256 "signed" with the public
        // key as the secret must not pass as a MAC the server checks with that key.
        refused_everywhere(&app, Some(&rs256("other_rsa_private.pem", &good)), "").await;
        let public_text = String::from_utf8(fixture(public)).unwrap();
        refused_everywhere(&app, Some(&hs256(&public_text, &good)), "HS256").await;
    }
}

#[tokio::test]
async fn the_development_token_and_jwts_can_be_configured_together() {
    let dir = site();
    let mut config = common::config(Backend::Sqlite, dir.path(), None).await;
    let jwt = verifier(JwtSettings { secret: Some(SECRET.into()), ..Default::default() });
    config.auth = Authenticator::new(Some("dev-token".into()), Some(jwt));
    let app = router(config);
    accepted_everywhere(&app, "dev-token").await;
    accepted_everywhere(&app, &hs256(SECRET, &claims("alice"))).await;
    refused_everywhere(&app, Some("dev-token-but-wrong"), "well-formed").await;
}

#[test]
fn principals_are_the_subject_the_development_user_or_anonymous() {
    let jwt = verifier(JwtSettings { secret: Some(SECRET.into()), ..Default::default() });
    let both = Authenticator::new(Some("dev-token".into()), Some(jwt));
    assert_eq!(both.authenticate(Some(&hs256(SECRET, &claims("alice")))), Ok(Principal::jwt_user("alice")));
    assert_eq!(both.authenticate(Some("dev-token")).map(|p| p.user().to_owned()), Ok("development".into()));
    assert_eq!(both.authenticate(None), Err(AuthError::Missing));
    assert_eq!(Authenticator::token("t").authenticate(Some("u")), Err(AuthError::WrongToken));
    assert_eq!(Authenticator::none().authenticate(Some("anything")), Ok(Principal::Anonymous));
    assert!(!Authenticator::none().is_configured());
    let long = "x".repeat(256);
    assert!(matches!(both.authenticate(Some(&hs256(SECRET, &claims(&long)))), Err(AuthError::InvalidJwt(_))));
}

#[test]
fn a_spaces_claim_grants_shared_spaces_and_a_malformed_one_refuses_the_token() {
    let jwt = verifier(JwtSettings { secret: Some(SECRET.into()), ..Default::default() });
    let with_spaces = |spaces: Value| {
        let mut c = claims("carol");
        c["spaces"] = spaces;
        jwt.verify(&hs256(SECRET, &c))
    };
    let grants = vec![Grant { space: "acme".into(), write: true }, Grant { space: "news".into(), write: false }];
    assert_eq!(with_spaces(json!({"news": "r", "acme": "rw"})), Ok(Principal::User { sub: "carol".into(), grants }));
    for bad in [json!({"acme": "w"}), json!({"acme": 1}), json!({"a b": "r"}), json!({"": "r"}), json!(["acme"])] {
        assert!(matches!(with_spaces(bad.clone()), Err(AuthError::InvalidJwt(_))), "{bad}");
    }
    let too_many: serde_json::Map<String, Value> = (0..65).map(|i| (format!("s{i}"), json!("r"))).collect();
    assert!(matches!(with_spaces(Value::Object(too_many)), Err(AuthError::InvalidJwt(_))));
}

#[test]
fn unusable_settings_are_refused_at_start() {
    let short = JwtSettings { secret: Some("short".into()), ..Default::default() };
    assert!(matches!(JwtVerifier::new(&short), Err(AuthSetupError::SecretTooShort(5))));
    let garbage = JwtSettings { public_key_pem: Some(b"not a key".to_vec()), ..Default::default() };
    assert!(matches!(JwtVerifier::new(&garbage), Err(AuthSetupError::UnreadableKey(_))));
    let empty_audience =
        JwtSettings { secret: Some(SECRET.into()), audience: Some(String::new()), ..Default::default() };
    assert!(matches!(JwtVerifier::new(&empty_audience), Err(AuthSetupError::Empty("--jwt-audience"))));
    assert!(JwtVerifier::new(&JwtSettings::default()).unwrap().is_none(), "no key, no verifier");
}

fn push_as(token: &str, client_id: &str, id: &str, key: &str) -> Request<Body> {
    let body = json!({"protocol": 1, "clientId": client_id, "mutations": [common::put(id, "todos", key)]}).to_string();
    with_bearer(Request::post("/push").header("content-type", "application/json"), Some(token))
        .body(Body::from(body))
        .unwrap()
}

backends!(a_client_id_belongs_to_the_first_user_that_pushes_with_it);
async fn a_client_id_belongs_to_the_first_user_that_pushes_with_it(backend: Backend) {
    let dir = site();
    let mut config = common::config(backend, dir.path(), None).await;
    let jwt = verifier(JwtSettings { secret: Some(SECRET.into()), ..Default::default() });
    config.auth = Authenticator::new(Some("dev-token".into()), Some(jwt));
    let app = router(config);
    let (alice, bob) = (hs256(SECRET, &claims("alice")), hs256(SECRET, &claims("bob")));
    let (status, _, text) = send(&app, push_as(&alice, "phone-1", "m1", "a")).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let (status, error, text) = send(&app, push_as(&bob, "phone-1", "m2", "b")).await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::FORBIDDEN, Some("FORBIDDEN")), "{text}");
    let (_, pulled, _) = send(&app, pull_request(Some(&alice))).await;
    assert_eq!(pulled["changes"].as_array().map(Vec::len), Some(1), "bob's push applied nothing: {pulled}");
    // Bob's own client id is his; alice keeps hers.
    for (token, client, id, key) in [(&bob, "laptop-2", "m3", "c"), (&alice, "phone-1", "m4", "d")] {
        let (status, _, text) = send(&app, push_as(token, client, id, key)).await;
        assert_eq!(status, StatusCode::OK, "{client}: {text}");
    }
    let (status, _, _) = send(&app, push_as(&alice, "laptop-2", "m5", "e")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "nor can alice take bob's");
    // The shared development principal binds and is refused nothing.
    let (status, _, text) = send(&app, push_as("dev-token", "phone-1", "m6", "f")).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let (status, _, text) = send(&app, push_as("dev-token", "tablet-3", "m7", "g")).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let (status, _, text) = send(&app, push_as(&bob, "tablet-3", "m8", "h")).await;
    assert_eq!(status, StatusCode::OK, "the development user left tablet-3 unbound: {text}");
}

backends!(with_shared_client_ids_users_may_push_with_one_id);
async fn with_shared_client_ids_users_may_push_with_one_id(backend: Backend) {
    let dir = site();
    let mut config = common::config(backend, dir.path(), None).await;
    config.auth =
        Authenticator::new(None, Some(verifier(JwtSettings { secret: Some(SECRET.into()), ..Default::default() })));
    config.bind_client_ids = false;
    let app = router(config);
    for (user, id) in [("alice", "m1"), ("bob", "m2")] {
        let (status, _, text) = send(&app, push_as(&hs256(SECRET, &claims(user)), "family-tablet", id, id)).await;
        assert_eq!(status, StatusCode::OK, "{user}: {text}");
    }
}
