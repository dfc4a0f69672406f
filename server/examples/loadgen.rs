//! Load generator for the reference server: K simulated clients, each pushing batches of puts
//! and pulling everything after its cursor (as a client does after each poke), over HTTP/1.1
//! keep-alive connections, spread round-robin over one or more server instances. It reuses the
//! protocol types of `src/core`, so it speaks exactly what the client speaks.
//!
//! ```sh
//! cargo run --release -p wharf-server --example loadgen -- \
//!     --target http://127.0.0.1:8080 --target http://127.0.0.1:8081 --clients 32 --seconds 20
//! ```
//!
//! Prints applied mutations/s, push and pull latency percentiles and error counts, and one JSON
//! line with the same figures. A benchmark, not a test: it asserts nothing but that the server
//! answered. Targets must be loopback addresses: this tool never sends traffic elsewhere.
//! `server/bench/run.sh` runs it against SQLite, PostgreSQL with 1 instance and with 3.

mod bench_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bench_common::{is_loopback, percentile, request, Http};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tokio::sync::Mutex;
use wharf::core::id::SplitMix64;
use wharf::core::protocol::{Mutation, MutationResult, PullResponse, PushRequest, PushResponse, PROTOCOL_VERSION};
use wharf::core::{Key, OpKind};

struct Options {
    targets: Vec<String>,
    clients: usize,
    seconds: u64,
    warmup: u64,
    batch: usize,
    keys: u64,
    pull_limit: usize,
    pad: usize,
    /// Push only (no pull after each push): the write path alone.
    no_pull: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: loadgen --target http://127.0.0.1:PORT [--target …] [--clients 32] [--seconds 20] [--warmup 3]\n\
         \x20              [--batch 10] [--keys 100000] [--pull-limit 500] [--pad 64] [--no-pull]"
    );
    std::process::exit(2)
}

fn parse_options() -> Options {
    let mut options = Options {
        targets: Vec::new(),
        clients: 32,
        seconds: 20,
        warmup: 3,
        batch: 10,
        keys: 100_000,
        pull_limit: 500,
        pad: 64,
        no_pull: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        let number = |text: String| text.parse::<u64>().unwrap_or_else(|_| usage());
        match flag.as_str() {
            "--target" => options.targets.push(value().trim_end_matches('/').to_owned()),
            "--clients" => options.clients = number(value()) as usize,
            "--seconds" => options.seconds = number(value()),
            "--warmup" => options.warmup = number(value()),
            "--batch" => options.batch = number(value()) as usize,
            "--keys" => options.keys = number(value()).max(1),
            "--pull-limit" => options.pull_limit = number(value()).clamp(1, 1000) as usize,
            "--pad" => options.pad = number(value()) as usize,
            "--no-pull" => options.no_pull = true,
            _ => usage(),
        }
    }
    if options.targets.is_empty() || options.clients == 0 || options.batch == 0 || options.seconds == 0 {
        usage();
    }
    for target in &options.targets {
        if !is_loopback(target) {
            eprintln!("loadgen: {target} is not a loopback address (127.0.0.0/8, localhost or [::1]): refused");
            std::process::exit(2);
        }
    }
    options
}

/// Latencies and counts of one client (merged at the end).
#[derive(Default)]
struct Stats {
    push_latency: Vec<Duration>,
    pull_latency: Vec<Duration>,
    applied: u64,
    duplicates: u64,
    other_results: u64,
    pulled_changes: u64,
    errors: u64,
}

/// One simulated client until `stop`: push a batch of puts (blind writes to random keys of a
/// shared key space), then pull until caught up, again and again.
async fn client(
    index: usize,
    run: u64,
    target: String,
    options: Arc<Options>,
    http: Http,
    measure_from: Instant,
    stop: Instant,
) -> Stats {
    let mut stats = Stats::default();
    let client_id = format!("load-{run:x}-{index}");
    let mut random = SplitMix64::new(run ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let (mut next_id, mut cursor) = (0u64, String::new());
    let pad = "x".repeat(options.pad);
    while Instant::now() < stop {
        let mutations: Vec<Mutation> = (0..options.batch)
            .map(|_| {
                next_id += 1;
                let key = format!("k{}", random.next_u64() % options.keys);
                Mutation {
                    id: format!("{client_id}-{next_id}"),
                    seq: next_id,
                    collection: "todos".into(),
                    key: Key::Text(key.clone()),
                    op: OpKind::Put,
                    value: Some(json!({"id": key, "by": client_id, "n": next_id, "pad": pad})),
                    patch: None,
                    base_version: None,
                    hlc: None,
                    space: None,
                    shape: Some(1), // as every Wharf client sends
                }
            })
            .collect();
        let body =
            serde_json::to_vec(&PushRequest { protocol: PROTOCOL_VERSION, client_id: client_id.clone(), mutations })
                .expect("a push serializes");
        let push = hyper::Request::post(format!("{target}/push"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("a valid request");
        let started = Instant::now();
        let answer = request(&http, push).await;
        let measured = started >= measure_from;
        let elapsed = started.elapsed();
        match answer {
            Ok((200, body)) => match serde_json::from_slice::<PushResponse>(&body) {
                Ok(response) if measured => {
                    stats.push_latency.push(elapsed);
                    for result in response.results {
                        match result {
                            MutationResult::Applied { .. } => stats.applied += 1,
                            MutationResult::Duplicate { .. } => stats.duplicates += 1,
                            _ => stats.other_results += 1,
                        }
                    }
                }
                Ok(_) => {}
                Err(_) => stats.errors += 1,
            },
            _ => {
                stats.errors += u64::from(measured);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        }
        if options.no_pull {
            continue;
        }
        // Catch up, as after a poke.
        loop {
            let pull = hyper::Request::get(format!("{target}/pull?cursor={cursor}&limit={}", options.pull_limit))
                .body(Full::new(Bytes::new()))
                .expect("a valid request");
            let started = Instant::now();
            let answer = request(&http, pull).await;
            let measured = started >= measure_from;
            let elapsed = started.elapsed();
            let Ok((200, body)) = answer else {
                stats.errors += u64::from(measured);
                break;
            };
            let Ok(page) = serde_json::from_slice::<PullResponse>(&body) else {
                stats.errors += u64::from(measured);
                break;
            };
            if measured {
                stats.pull_latency.push(elapsed);
                stats.pulled_changes += page.changes.len() as u64;
            }
            cursor = page.cursor;
            if !page.has_more || Instant::now() >= stop {
                break;
            }
        }
    }
    stats
}

#[tokio::main]
async fn main() {
    let options = Arc::new(parse_options());
    let http: Http = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(options.clients)
        .pool_idle_timeout(Duration::from_secs(30))
        .build_http();
    let run = SplitMix64::new(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64),
    )
    .next_u64();
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(options.warmup);
    let stop = measure_from + Duration::from_secs(options.seconds);
    let merged = Arc::new(Mutex::new(Stats::default()));
    let tasks: Vec<_> = (0..options.clients)
        .map(|index| {
            let target = options.targets[index % options.targets.len()].clone();
            let (options, http, merged) = (Arc::clone(&options), http.clone(), Arc::clone(&merged));
            tokio::spawn(async move {
                let stats = client(index, run, target, options, http, measure_from, stop).await;
                let mut all = merged.lock().await;
                all.push_latency.extend(stats.push_latency);
                all.pull_latency.extend(stats.pull_latency);
                all.applied += stats.applied;
                all.duplicates += stats.duplicates;
                all.other_results += stats.other_results;
                all.pulled_changes += stats.pulled_changes;
                all.errors += stats.errors;
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a client task");
    }
    let window = stop.saturating_duration_since(measure_from).as_secs_f64().max(1e-9);
    let mut stats = merged.lock().await;
    stats.push_latency.sort();
    stats.pull_latency.sort();
    let pushes = stats.push_latency.len();
    let summary = json!({
        "targets": options.targets,
        "clients": options.clients,
        "pull": !options.no_pull,
        "batch": options.batch,
        "seconds": options.seconds,
        "pushes": pushes,
        "pushesPerSec": (pushes as f64 / window).round(),
        "appliedPerSec": (stats.applied as f64 / window).round(),
        "pushP50Ms": (percentile(&stats.push_latency, 50.0) * 10.0).round() / 10.0,
        "pushP99Ms": (percentile(&stats.push_latency, 99.0) * 10.0).round() / 10.0,
        "pulls": stats.pull_latency.len(),
        "pullP50Ms": (percentile(&stats.pull_latency, 50.0) * 10.0).round() / 10.0,
        "pullP99Ms": (percentile(&stats.pull_latency, 99.0) * 10.0).round() / 10.0,
        "pulledChangesPerSec": (stats.pulled_changes as f64 / window).round(),
        "duplicates": stats.duplicates,
        "otherResults": stats.other_results,
        "errors": stats.errors,
    });
    println!(
        "{} clients x {} mutations/push over {} target(s), {} s measured: {} applied mutations/s ({} pushes/s), \
         push p50 {} ms p99 {} ms, pull p50 {} ms p99 {} ms, {} errors",
        options.clients,
        options.batch,
        options.targets.len(),
        options.seconds,
        summary["appliedPerSec"],
        summary["pushesPerSec"],
        summary["pushP50Ms"],
        summary["pushP99Ms"],
        summary["pullP50Ms"],
        summary["pullP99Ms"],
        stats.errors
    );
    println!("{summary}");
}
