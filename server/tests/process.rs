//! The built `wharf-server` binary as an operator runs it: flags from `WHARF_*` environment
//! variables, `--help` that never shows a secret, the refusal to listen beyond loopback without
//! authentication, and the graceful shutdown on SIGTERM (the push in flight is answered, live
//! sockets are closed with 1001, the exit status is 0). These spawn the process; everything else
//! drives the router in process.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "a test secret of at least 32 bytes, not a real one";

/// The server binary with a clean environment (no `WHARF_*` of the caller's) and `envs`.
fn server(args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wharf-server"));
    for (name, _) in std::env::vars() {
        if name.starts_with("WHARF_") {
            command.env_remove(name);
        }
    }
    let dir = std::env::temp_dir();
    command
        .args(["--www", &dir.to_string_lossy(), "--pkg", &dir.to_string_lossy()])
        .args(args)
        .envs(envs.iter().copied());
    command
}

/// A started server: the process and the address from its start-up line.
struct Running {
    child: Child,
    addr: String,
}

impl Running {
    fn start(args: &[&str], envs: &[(&str, &str)]) -> Running {
        let mut child = server(args, envs).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let Some(addr) = line.strip_prefix("Wharf server: http://").and_then(|rest| rest.split('/').next()) else {
            let mut stderr = String::new();
            child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
            panic!("the server did not start: {line:?} {stderr}");
        };
        Running { addr: addr.to_owned(), child }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill").args([&format!("-{name}"), &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// Waits (up to 10 s) for the process to exit; its status code.
    fn exit_code(&mut self) -> Option<i32> {
        for _ in 0..500 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the server did not exit within 10 s");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request over a fresh connection: the status and the body.
async fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// Runs the server to its exit (killed after 10 s, when it would have kept running): its exit
/// code and everything it printed.
fn output(args: &[&str], envs: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut child = server(args, envs).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut code = None;
    for _ in 0..500 {
        if let Some(status) = child.try_wait().unwrap() {
            code = status.code();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if code.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    (code, format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn help_never_prints_a_secret() {
    let secrets = [
        ("WHARF_TOKEN", "token-VERY-SECRET-1"),
        ("WHARF_JWT_SECRET", "jwt-VERY-SECRET-2-padded-to-be-long-enough"),
        ("WHARF_DATABASE_URL", "postgres://u:VERY-SECRET-3@db/wharf"),
        ("WHARF_METRICS_TOKEN", "metrics-VERY-SECRET-4"),
        ("WHARF_TICKET_SECRET", "ticket-VERY-SECRET-5-padded-to-be-long-enough"),
    ];
    let (code, help) = output(&["--help"], &secrets);
    assert_eq!(code, Some(0), "{help}");
    assert!(!help.contains("VERY-SECRET"), "{help}");
    for name in [
        "WHARF_TOKEN",
        "WHARF_JWT_SECRET",
        "WHARF_JWT_PUBLIC_KEY",
        "WHARF_ADDR",
        "WHARF_CORS_ORIGIN",
        "WHARF_INSECURE",
        "WHARF_METRICS",
        "WHARF_METRICS_TOKEN",
        "WHARF_LOG",
        "WHARF_LOG_FORMAT",
        "WHARF_COMPACT_EVERY",
        "WHARF_RETAIN",
        "WHARF_LEDGER_RETAIN",
        "WHARF_TICKET_SECRET",
        "WHARF_DATABASE_CA",
    ] {
        assert!(help.contains(name), "every flag has its variable: {name} missing from {help}");
    }
}

#[test]
fn without_authentication_it_refuses_to_listen_beyond_loopback() {
    let (code, said) = output(&["--addr", "0.0.0.0:0"], &[]);
    assert_eq!(code, Some(2), "{said}");
    assert!(
        said.contains("refusing to listen on 0.0.0.0:0 without authentication") && said.contains("--insecure"),
        "{said}"
    );
    for (args, envs) in [
        (vec!["--addr", "0.0.0.0:0", "--insecure"], vec![]),
        (vec![], vec![("WHARF_ADDR", "0.0.0.0:0"), ("WHARF_JWT_SECRET", SECRET)]),
    ] {
        let mut running = Running::start(&args, &envs);
        running.signal("TERM");
        assert_eq!(running.exit_code(), Some(0), "{args:?} {envs:?}");
    }
}

#[test]
fn unusable_authentication_settings_stop_the_start() {
    let (code, said) = output(&[], &[("WHARF_JWT_SECRET", "short")]);
    assert_eq!(code, Some(2), "{said}");
    assert!(said.contains("at least 32 bytes"), "{said}");
    let (code, said) = output(&["--jwt-public-key", "/nonexistent/key.pem"], &[]);
    assert_eq!(code, Some(2), "{said}");
    assert!(said.contains("cannot read --jwt-public-key"), "{said}");
    let (code, said) = output(&["--jwt-audience", "wharf"], &[]);
    assert_eq!(code, Some(2), "{said}");
}

#[test]
fn metrics_on_a_server_with_authentication_need_their_own_token() {
    let (code, said) = output(&["--metrics", "--token", "t"], &[]);
    assert_eq!(code, Some(2), "{said}");
    assert!(said.contains("needs --metrics-token"), "{said}");
    let (code, said) = output(&["--metrics"], &[("WHARF_TOKEN", "t"), ("WHARF_METRICS_TOKEN", "t")]);
    assert_eq!(code, Some(2), "{said}");
    assert!(said.contains("must differ from --token"), "{said}");
}

#[tokio::test]
async fn flags_are_read_from_the_environment() {
    let running =
        Running::start(&[], &[("WHARF_ADDR", "127.0.0.1:0"), ("WHARF_TOKEN", "env-token"), ("WHARF_MAX_BATCH", "1")]);
    let (status, body) = http(&running.addr, "GET", "/pull", &[], "").await;
    assert_eq!(status, 401, "{body}");
    let bearer = [("Authorization", "Bearer env-token"), ("Content-Type", "application/json")];
    let (status, body) = http(&running.addr, "GET", "/pull", &bearer, "").await;
    assert_eq!(status, 200, "{body}");
    let put = |id: &str| json!({"id": id, "seq": 1, "collection": "t", "key": id, "op": "put", "value": {}});
    let two = json!({"protocol": 1, "clientId": "c1", "mutations": [put("m1"), put("m2")]}).to_string();
    let (status, body) = http(&running.addr, "POST", "/push", &bearer, &two).await;
    assert_eq!(status, 413, "WHARF_MAX_BATCH=1: {body}");
}

#[tokio::test]
async fn sigterm_answers_the_push_in_flight_and_closes_live_sockets_with_1001() {
    // Every push takes 1.5 s: long enough to signal the server while one is in flight.
    let mut running = Running::start(&["--addr", "127.0.0.1:0", "--faults", "--latency-ms", "1500"], &[]);
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{}/live", running.addr)).await.unwrap();
    let first = socket.next().await.unwrap().unwrap();
    assert!(matches!(first, Message::Text(ref t) if t.contains("poke")), "{first:?}");
    let addr = running.addr.clone();
    let body = json!({"protocol": 1, "clientId": "c1", "mutations": [
        {"id": "m1", "seq": 1, "collection": "t", "key": "a", "op": "put", "value": {"a": 1}}]})
    .to_string();
    let in_flight =
        tokio::spawn(async move { http(&addr, "POST", "/push", &[("Content-Type", "application/json")], &body).await });
    tokio::time::sleep(Duration::from_millis(400)).await;
    running.signal("TERM");
    let (status, answer) = in_flight.await.unwrap();
    assert_eq!(status, 200, "the push in flight is answered: {answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["results"][0]["status"], "applied");
    // The live socket hears the poke of that push, then a "going away" close.
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(5), socket.next()).await.expect("a close within 5 s") {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => {}
            other => panic!("the socket ended without a close frame: {other:?}"),
        }
    };
    assert_eq!(close.map(|f| f.code), Some(CloseCode::Away));
    assert_eq!(running.exit_code(), Some(0));
    assert!(TcpStream::connect(&running.addr).await.is_err(), "no longer listening");
}

/// A push of `mutations` as client `c1`, answered 200.
async fn push(addr: &str, mutations: Value) {
    let body = json!({"protocol": 1, "clientId": "c1", "mutations": mutations}).to_string();
    let (status, answer) = http(addr, "POST", "/push", &[("Content-Type", "application/json")], &body).await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test]
async fn json_logs_have_one_line_per_request_with_its_route_and_never_a_token() {
    let token = "token-NEVER-LOGGED";
    let mut running = Running::start(&["--addr", "127.0.0.1:0", "--log-format", "json", "--token", token], &[]);
    let bearer = format!("Bearer {token}");
    let (status, body) = http(&running.addr, "GET", "/pull?limit=5", &[("Authorization", &bearer)], "").await;
    assert_eq!(status, 200, "{body}");
    // A token in the query (where browsers put the WebSocket's) and a refused request.
    let (status, _) = http(&running.addr, "GET", &format!("/live?token={token}"), &[], "").await;
    assert_ne!(status, 101, "a plain GET is no upgrade");
    let (status, _) = http(&running.addr, "GET", "/pull?token=token-IN-QUERY", &[], "").await;
    assert_eq!(status, 401);
    running.signal("TERM");
    assert_eq!(running.exit_code(), Some(0));
    let mut logs = String::new();
    running.child.stderr.take().unwrap().read_to_string(&mut logs).unwrap();
    assert!(!logs.contains("NEVER-LOGGED") && !logs.contains("IN-QUERY"), "a token was logged: {logs}");
    assert!(!logs.to_lowercase().contains("authorization"), "{logs}");
    let lines: Vec<Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}")))
        .collect();
    let requests: Vec<&Value> = lines.iter().filter(|line| line["message"] == "request").collect();
    let seen: Vec<(String, String, u64)> = requests
        .iter()
        .map(|r| {
            (r["method"].as_str().unwrap().into(), r["route"].as_str().unwrap().into(), r["status"].as_u64().unwrap())
        })
        .collect();
    let live_status = seen.get(1).map_or(0, |(_, _, status)| *status);
    assert_eq!(
        seen,
        [
            ("GET".into(), "/pull".into(), 200),
            ("GET".into(), "/live".into(), live_status),
            ("GET".into(), "/pull".into(), 401)
        ]
    );
    for request in requests {
        assert!(request["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{request}");
        assert_eq!(
            (request["level"].as_str(), request["target"].as_str()),
            (Some("INFO"), Some("wharf_server::request"))
        );
        assert!(request["timestamp"].as_str().is_some_and(|t| t.starts_with("20")), "{request}");
    }
    let said: Vec<&str> = lines.iter().filter_map(|line| line["message"].as_str()).collect();
    assert_eq!(said.first(), Some(&"listening"), "{logs}");
    assert_eq!(said.last(), Some(&"stopped"), "{logs}");
}

#[tokio::test]
async fn the_compact_subcommand_removes_old_tombstones_from_a_sqlite_file_and_their_cursors_expire() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wharf.sqlite");
    let file = file.to_str().unwrap();
    let mut running = Running::start(&["--addr", "127.0.0.1:0", "--database", file], &[]);
    push(
        &running.addr,
        json!([{"id": "m1", "seq": 1, "collection": "t", "key": "a", "op": "put", "value": {}},
        {"id": "m2", "seq": 2, "collection": "t", "key": "b", "op": "put", "value": {}}]),
    )
    .await;
    push(&running.addr, json!([{"id": "m3", "seq": 3, "collection": "t", "key": "a", "op": "delete"}])).await;
    running.signal("TERM");
    assert_eq!(running.exit_code(), Some(0));

    let (code, said) = output(&["compact", "--database", file], &[]);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("removed 0 tombstones (compaction horizon now 0), 0 applied"), "30 days by default: {said}");
    let (code, said) = output(&["compact", "--database", file, "--retain", "0s"], &[("WHARF_LEDGER_RETAIN", "1h")]);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("removed 1 tombstones (compaction horizon now 3), 0 applied and 0 rejected"), "{said}");
    let (code, said) = output(&["compact", "--database", file, "--retain", "0s", "--ledger-retain", "0s"], &[]);
    assert!(code == Some(0) && said.contains("0 tombstones (compaction horizon now 3), 3 applied"), "{said}");

    let running = Running::start(&["--addr", "127.0.0.1:0", "--database", file], &[]);
    let (status, body) = http(&running.addr, "GET", "/pull?cursor=2", &[], "").await;
    assert_eq!(status, 410, "{body}");
    let (status, body) = http(&running.addr, "GET", "/pull", &[], "").await;
    assert_eq!(status, 200, "{body}");
    let keys: Vec<Value> = serde_json::from_str::<Value>(&body).unwrap()["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|change| change["key"].clone())
        .collect();
    assert_eq!(keys, [json!("b")], "the tombstone of a is gone: {body}");

    let (code, said) = output(&["compact"], &[]);
    assert_eq!(code, Some(2), "an in-memory database has nothing to compact: {said}");
}

#[tokio::test]
async fn compact_every_runs_retention_passes_while_the_server_serves() {
    let running = Running::start(&["--addr", "127.0.0.1:0", "--retain", "0s"], &[("WHARF_COMPACT_EVERY", "1s")]);
    push(
        &running.addr,
        json!([{"id": "m1", "seq": 1, "collection": "t", "key": "a", "op": "put", "value": {}},
        {"id": "m2", "seq": 2, "collection": "t", "key": "b", "op": "put", "value": {}}]),
    )
    .await;
    push(&running.addr, json!([{"id": "m3", "seq": 3, "collection": "t", "key": "a", "op": "delete"}])).await;
    let mut status = 0;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        status = http(&running.addr, "GET", "/pull?cursor=2", &[], "").await.0;
        if status == 410 {
            break;
        }
    }
    assert_eq!(status, 410, "a pass within 5 s removed the tombstone");
}
