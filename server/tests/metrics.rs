//! `GET /metrics`: the Prometheus counters say exactly what the server did (pushes, their results,
//! pull pages and changes, requests by route and status, the storage latency histogram, the open
//! live sockets), the text parses as the exposition format, no label carries user data, and the
//! endpoint is 404 without `--metrics` and refuses a missing or wrong metrics token.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use common::{push_as, put, send, site, user_token, with_users, Backend, DEV_TOKEN};
use wharf_server::app::router;
use wharf_server::metrics::{Metrics, MetricsAccess};

const METRICS_TOKEN: &str = "metrics-token-for-tests";

/// Every sample of a scrape, by series (`name{labels}` as written), after checking the text is
/// the exposition format: each sample line is `name{label="value",...} value`, each family has
/// one `# HELP` and one `# TYPE` before its samples, and no series appears twice.
fn parse_exposition(text: &str) -> BTreeMap<String, f64> {
    fn is_name(name: &str) -> bool {
        let mut chars = name.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }
    let mut helped = HashSet::new();
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples = BTreeMap::new();
    assert!(text.ends_with('\n'), "the text ends with a line feed");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or_else(|| panic!("HELP without text: {line}"));
            assert!(is_name(name) && !help.trim().is_empty(), "{line}");
            assert!(helped.insert(name.to_owned()), "a second HELP for {name}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or_else(|| panic!("TYPE without a type: {line}"));
            assert!(["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind), "{line}");
            assert!(types.insert(name.to_owned(), kind.to_owned()).is_none(), "a second TYPE for {name}");
            continue;
        }
        assert!(!line.starts_with('#') && !line.trim().is_empty(), "neither a sample nor HELP/TYPE: {line:?}");
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            other => other.parse().unwrap_or_else(|_| panic!("not a number: {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, Some(rest.strip_suffix('}').unwrap_or_else(|| panic!("unclosed: {line}")))),
            None => (series, None),
        };
        assert!(is_name(name), "metric name: {line}");
        for pair in labels.into_iter().flat_map(|labels| labels.split(',')) {
            let (label, quoted) = pair.split_once('=').unwrap_or_else(|| panic!("label without value: {line}"));
            assert!(is_name(label) && !label.starts_with("__"), "label name: {line}");
            let inner = quoted.strip_prefix('"').and_then(|q| q.strip_suffix('"'));
            assert!(inner.is_some_and(|v| !v.contains('"') && !v.contains('\\')), "label value: {line}");
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|suffix| name.strip_suffix(suffix))
            .find(|base| types.get(*base).is_some_and(|kind| kind == "histogram"))
            .unwrap_or(name);
        assert!(types.contains_key(family), "samples of {family} before (or without) its TYPE");
        assert!(helped.contains(family), "samples of {family} before (or without) its HELP");
        if types[family] == "histogram" && name.ends_with("_bucket") {
            assert!(labels.is_some_and(|l| l.contains("le=\"")), "a bucket without le: {line}");
        }
        assert!(samples.insert(series.to_owned(), value).is_none(), "{series} twice");
    }
    samples
}

fn metrics_request(token: Option<&str>) -> Request<Body> {
    let request = Request::get("/metrics");
    let request = match token {
        Some(token) => request.header("authorization", format!("Bearer {token}")),
        None => request,
    };
    request.body(Body::empty()).unwrap()
}

/// Scrapes `/metrics` with the metrics token; the parsed samples and the text.
async fn scrape(app: &axum::Router) -> (BTreeMap<String, f64>, String) {
    let response = tower::ServiceExt::oneshot(app.clone(), metrics_request(Some(METRICS_TOKEN))).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let bytes = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    (parse_exposition(&text), text)
}

fn sample(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    *samples.get(series).unwrap_or_else(|| panic!("no {series} in {samples:#?}"))
}

fn results(answer: &Value) -> Vec<&str> {
    answer["results"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect()
}

backends!(pushes_and_pulls_are_counted_exactly);
async fn pushes_and_pulls_are_counted_exactly(backend: Backend) {
    let dir = site();
    let mut config = with_users(common::config(backend, dir.path(), None).await);
    config.metrics = Metrics::new(MetricsAccess::Token(METRICS_TOKEN.to_owned()));
    let app = router(config);
    let alice = user_token("alice-the-user");
    let (before, _) = scrape(&app).await;
    assert_eq!(sample(&before, "wharf_pushes_total"), 0.0);
    assert_eq!(sample(&before, "wharf_storage_seconds_count{operation=\"push\"}"), 0.0);

    let mut missing = put("m3", "secret-collection", "ghost");
    missing["op"] = json!("patch"); // of a document that does not exist
    missing["patch"] = json!({"x": 1});
    missing.as_object_mut().unwrap().remove("value");
    let mut stale = put("m4", "secret-collection", "secret-key-d");
    stale["baseVersion"] = json!(99); // a base the server never issued
    let first = vec![
        put("m1", "secret-collection", "secret-key-a"),
        put("m2", "secret-collection", "secret-key-b"),
        missing,
        stale,
    ];
    let answer = push_as(&app, "client-of-alice", first, Some(&alice)).await;
    assert_eq!(results(&answer), ["applied", "applied", "rejected", "conflict"]);
    let second = vec![
        put("m1", "secret-collection", "secret-key-a"),
        put("m2", "secret-collection", "secret-key-b"),
        put("m5", "secret-collection", "secret-key-c"),
    ];
    let answer = push_as(&app, "client-of-alice", second, Some(&alice)).await;
    assert_eq!(results(&answer), ["duplicate", "duplicate", "applied"]);
    // Refused before the store: counted as a request only.
    let text_plain = Request::post("/push")
        .header("content-type", "text/plain")
        .header("authorization", format!("Bearer {alice}"))
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(send(&app, text_plain).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let first_page = common::pull_as(&app, &alice, "limit=2").await;
    assert_eq!((first_page["changes"].as_array().unwrap().len(), first_page["hasMore"].as_bool()), (2, Some(true)));
    let cursor = first_page["cursor"].as_str().unwrap();
    let last_page = common::pull_as(&app, &alice, &format!("cursor={cursor}")).await;
    assert_eq!(last_page["changes"].as_array().unwrap().len(), 1);
    // A storage call that answers no page, and a request that never reaches the store.
    let (status, _, _) = common::pull(&app, "cursor=999").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let never_issued = Request::get("/pull?cursor=999").header("authorization", format!("Bearer {alice}"));
    assert_eq!(send(&app, never_issued.body(Body::empty()).unwrap()).await.0, StatusCode::GONE);
    let bad = Request::get("/pull?limit=0").header("authorization", format!("Bearer {alice}"));
    assert_eq!(send(&app, bad.body(Body::empty()).unwrap()).await.0, StatusCode::BAD_REQUEST);

    let (after, text) = scrape(&app).await;
    for (series, expected) in [
        ("wharf_pushes_total", 2.0),
        ("wharf_ops_total{result=\"applied\"}", 3.0),
        ("wharf_ops_total{result=\"duplicate\"}", 2.0),
        ("wharf_ops_total{result=\"rejected\"}", 1.0),
        ("wharf_ops_total{result=\"conflict\"}", 1.0),
        ("wharf_pull_pages_total", 2.0),
        ("wharf_pull_changes_total", 3.0),
        ("wharf_http_requests_total{route=\"push\",status=\"200\"}", 2.0),
        ("wharf_http_requests_total{route=\"push\",status=\"415\"}", 1.0),
        ("wharf_http_requests_total{route=\"pull\",status=\"200\"}", 2.0),
        ("wharf_http_requests_total{route=\"pull\",status=\"401\"}", 1.0),
        ("wharf_http_requests_total{route=\"pull\",status=\"410\"}", 1.0),
        ("wharf_http_requests_total{route=\"pull\",status=\"400\"}", 1.0),
        ("wharf_http_requests_total{route=\"metrics\",status=\"200\"}", 1.0),
        ("wharf_storage_seconds_count{operation=\"push\"}", 2.0),
        ("wharf_storage_seconds_bucket{operation=\"push\",le=\"+Inf\"}", 2.0),
        ("wharf_storage_seconds_count{operation=\"pull\"}", 3.0),
        ("wharf_storage_seconds_bucket{operation=\"pull\",le=\"+Inf\"}", 3.0),
        ("wharf_live_sockets", 0.0),
        (&format!("wharf_build_info{{version=\"{}\"}}", env!("CARGO_PKG_VERSION")), 1.0),
    ] {
        assert_eq!(sample(&after, series), expected, "{series} in\n{text}");
    }
    for operation in ["push", "pull"] {
        let sum = sample(&after, &format!("wharf_storage_seconds_sum{{operation=\"{operation}\"}}"));
        assert!(sum.is_finite() && sum >= 0.0, "{operation}: {sum}");
        let buckets: Vec<f64> = after
            .iter()
            .filter(|(series, _)| {
                series.starts_with(&format!("wharf_storage_seconds_bucket{{operation=\"{operation}\""))
            })
            .map(|(_, count)| *count)
            .collect();
        assert_eq!(buckets.len(), 15, "14 bounds and +Inf");
    }
    for user_data in ["secret-collection", "secret-key", "client-of-alice", "alice-the-user", "ghost"] {
        assert!(!text.contains(user_data), "{user_data} leaked into\n{text}");
    }
}

backends!(a_live_socket_moves_the_gauge_up_and_down);
async fn a_live_socket_moves_the_gauge_up_and_down(backend: Backend) {
    let dir = site();
    let mut config = common::config(backend, dir.path(), None).await;
    config.metrics = Metrics::new(MetricsAccess::Token(METRICS_TOKEN.to_owned()));
    let app = router(config);
    let addr = common::serve(app.clone()).await;
    let sockets = |samples: &BTreeMap<String, f64>| sample(samples, "wharf_live_sockets");
    assert_eq!(sockets(&scrape(&app).await.0), 0.0);

    let mut opened = Vec::new();
    for expected in [1.0, 2.0] {
        let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/live")).await.unwrap();
        // The first poke comes after the socket subscribed.
        let first = tokio::time::timeout(Duration::from_secs(5), socket.next()).await.unwrap().unwrap().unwrap();
        assert!(matches!(first, Message::Text(ref t) if t.contains("poke")), "{first:?}");
        assert_eq!(sockets(&scrape(&app).await.0), expected);
        opened.push(socket);
    }
    let (samples, _) = scrape(&app).await;
    assert_eq!(sample(&samples, "wharf_http_requests_total{route=\"live\",status=\"101\"}"), 2.0);

    for expected in [1.0, 0.0] {
        let mut socket = opened.pop().unwrap();
        socket.send(Message::Close(None)).await.unwrap();
        let mut seen = f64::NAN;
        for _ in 0..250 {
            seen = sockets(&scrape(&app).await.0);
            if seen == expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(seen, expected, "the gauge follows a closed socket within 5 s");
    }
}

#[tokio::test]
async fn metrics_are_404_without_the_flag_and_need_their_token() {
    let dir = site();
    let off = router(with_users(common::config(Backend::Sqlite, dir.path(), None).await));
    for token in [None, Some(METRICS_TOKEN), Some(DEV_TOKEN)] {
        assert_eq!(send(&off, metrics_request(token)).await.0, StatusCode::NOT_FOUND, "{token:?}");
    }

    let mut config = with_users(common::config(Backend::Sqlite, dir.path(), None).await);
    config.metrics = Metrics::new(MetricsAccess::Token(METRICS_TOKEN.to_owned()));
    let guarded = router(config);
    let user = user_token("alice");
    let wrong = format!("{METRICS_TOKEN}x");
    for token in [None, Some(""), Some(wrong.as_str()), Some(DEV_TOKEN), Some(user.as_str())] {
        let (status, error, text) = send(&guarded, metrics_request(token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}: {text}");
        assert_eq!(error["code"], "UNAUTHORIZED", "{text}");
        assert!(!text.contains("wharf_"), "{text}");
    }
    let (samples, _) = scrape(&guarded).await;
    assert_eq!(sample(&samples, "wharf_http_requests_total{route=\"metrics\",status=\"401\"}"), 5.0);

    // Without authentication on the server (loopback or --insecure), `--metrics` alone is open.
    let mut config = common::config(Backend::Sqlite, dir.path(), None).await;
    config.metrics = Metrics::new(MetricsAccess::Open);
    let open = router(config);
    let (status, _, text) = send(&open, metrics_request(None)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    parse_exposition(&text);
}
