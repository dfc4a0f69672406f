//! `wharf-server`: runs the reference sync server. `cargo run -p wharf-server -- --help`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use wharf_server::app::router;
use wharf_server::config::Config;
use wharf_server::counters::Counters;
use wharf_server::faults::{FaultSettings, Faults};
use wharf_server::live_hub::Live;
use wharf_server::postgres::{PgOptions, PgStore};
use wharf_server::sqlite::SqliteStore;
use wharf_server::store::{Storage, StoreError};

/// Wharf's reference sync server: the push and pull endpoints and the live WebSocket of
/// docs/protocol.md over embedded SQLite or PostgreSQL, plus the demo app (www/) and the built
/// package (pkg/).
#[derive(Debug, Parser)]
#[command(version)]
struct Options {
    /// Address to listen on. Keep it on loopback unless you mean to expose the server.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// SQLite database file, or ":memory:" for a store that lives as long as the process. A file
    /// written by an older server is upgraded in place when opened.
    #[arg(long, default_value = ":memory:")]
    database: String,
    /// Use PostgreSQL instead of SQLite: `postgres://USER:PASSWORD@HOST:PORT/DATABASE` (also
    /// `host=… user=… dbname=…` key-value form; `?host=/run/postgresql` for a Unix socket). Any
    /// number of instances may share one database. The schema is created or upgraded at start,
    /// under an advisory lock. Also read from WHARF_DATABASE_URL.
    #[arg(long, env = "WHARF_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Most PostgreSQL connections this instance opens for requests (one more is used for
    /// LISTEN). Only with --database-url.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1000))]
    database_pool: u64,
    /// Require `Authorization: Bearer <TOKEN>` on /push, /pull and /live (where `?token=TOKEN`
    /// is accepted too, since browsers cannot set WebSocket headers). Also read from WHARF_TOKEN.
    #[arg(long, env = "WHARF_TOKEN")]
    token: Option<String>,
    /// Largest accepted request body, in bytes (larger: 413).
    #[arg(long, default_value_t = 1 << 20)]
    max_body_bytes: usize,
    /// Most mutations accepted in one push (more: 413 BATCH_TOO_LARGE).
    #[arg(long, default_value_t = 1000)]
    max_batch: usize,
    /// Directory served at / (the demo app).
    #[arg(long, default_value = "www")]
    www: PathBuf,
    /// Directory served at /pkg (the built npm package).
    #[arg(long, default_value = "pkg")]
    pkg: PathBuf,
    /// Origin allowed to call /push and /pull cross-origin (repeatable; "*" for any). Default:
    /// same origin only.
    #[arg(long = "cors-origin")]
    cors_origins: Vec<String>,
    /// Seconds between the server's heartbeats on each /live WebSocket (`{"type":"ping"}`). A
    /// socket from which nothing arrives for 3 of these periods is closed.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    live_ping_secs: u64,
    /// Turn fault injection on (for tests and demos; never in production). The --fail-*,
    /// --retry-after-secs, --latency-ms, --drop-after-apply-rate, --fault-seed and
    /// --reject-batches-with options only act with it. Also mounts the test routes
    /// GET /debug/state (applied mutations, push and duplicate counts, stored records),
    /// POST /debug/faults {"enabled": bool} (pause or resume injection) and
    /// POST /debug/compact {"beforeCursor": "<cursor>"} (delete older tombstones; pulls from
    /// older cursors then answer 410 CURSOR_EXPIRED); without it they are 404.
    #[arg(long)]
    faults: bool,
    /// Start with fault injection configured but paused, as if `POST /debug/faults
    /// {"enabled": false}` had been sent (the demo's "flaky server" toggle resumes it). Needs
    /// --faults.
    #[arg(long, requires = "faults")]
    faults_paused: bool,
    /// Probability (0 to 1) that a push fails before anything is applied.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    fail_rate: f64,
    /// HTTP status of injected failures.
    #[arg(long, default_value_t = 503)]
    fail_status: u16,
    /// Retry-After (seconds) sent with injected failures.
    #[arg(long)]
    retry_after_secs: Option<u64>,
    /// Latency added to every push, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Probability (0 to 1) that the connection is dropped after a push was applied.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    drop_after_apply_rate: f64,
    /// Seed of the fault schedule (the same seed replays the same faults).
    #[arg(long, default_value_t = 1)]
    fault_seed: u64,
    /// Refuse a whole push (422, code POISON, nothing applied) when any of its mutations has a
    /// `value` or `patch` object with a top-level field named FIELD: a server that rejects whole
    /// batches, so the client has to split them to isolate the bad mutation. Holds while
    /// injection is paused (--faults-paused, POST /debug/faults) too.
    #[arg(long, value_name = "FIELD")]
    reject_batches_with: Option<String>,
}

fn probability(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("{text} is not a probability between 0 and 1")),
    }
}

/// The fault injector `--faults` asks for (paused with `--faults-paused`), or none.
fn fault_injector(options: &Options) -> Option<Arc<Faults>> {
    if !options.faults {
        return None;
    }
    let faults = Faults::new(FaultSettings {
        fail_rate: options.fail_rate,
        fail_status: options.fail_status,
        retry_after_secs: options.retry_after_secs,
        latency: Duration::from_millis(options.latency_ms),
        drop_after_apply_rate: options.drop_after_apply_rate,
        seed: options.fault_seed,
        reject_field: options.reject_batches_with.clone(),
    });
    faults.set_enabled(!options.faults_paused);
    Some(Arc::new(faults))
}

/// The store the options ask for: PostgreSQL with `--database-url`, otherwise SQLite.
async fn open_store(options: &Options) -> Result<Arc<dyn Storage>, StoreError> {
    match &options.database_url {
        Some(url) => {
            let pool_size = usize::try_from(options.database_pool).unwrap_or(16);
            PgStore::connect_shared(url, PgOptions { pool_size, ..PgOptions::default() }).await
        }
        None => SqliteStore::open_shared(&options.database),
    }
}

/// Where the data lives, for messages (the URL without its password).
fn describe_database(options: &Options) -> String {
    match &options.database_url {
        Some(url) => match url.parse::<tokio_postgres::Config>() {
            Ok(config) => format!(
                "PostgreSQL database {:?} on {:?} as {:?}",
                config.get_dbname().unwrap_or_default(),
                config.get_hosts(),
                config.get_user().unwrap_or_default()
            ),
            Err(_) => "PostgreSQL (unreadable --database-url)".to_owned(),
        },
        None => format!("SQLite {}", options.database),
    }
}

#[tokio::main]
async fn main() {
    let options = Options::parse();
    let store = match open_store(&options).await {
        Ok(store) => store,
        Err(e) => {
            eprintln!("wharf-server: cannot open {}: {e}", describe_database(&options));
            std::process::exit(2);
        }
    };
    let faults = fault_injector(&options);
    let database = describe_database(&options);
    let app = router(Config {
        store,
        token: options.token,
        max_body_bytes: options.max_body_bytes,
        max_batch: options.max_batch,
        www: options.www,
        pkg: options.pkg,
        cors_origins: options.cors_origins,
        faults,
        counters: Counters::default(),
        live: Live::new(Duration::from_secs(options.live_ping_secs)),
    });
    let listener = match tokio::net::TcpListener::bind(options.addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("wharf-server: cannot listen on {}: {e}", options.addr);
            std::process::exit(2);
        }
    };
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| options.addr.to_string());
    println!("Wharf server: http://{addr}/ ({database})");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
        eprintln!("wharf-server: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wharf_server::faults::FaultPlan;

    fn parse(args: &[&str]) -> Result<Options, clap::Error> {
        Options::try_parse_from(std::iter::once("wharf-server").chain(args.iter().copied()))
    }

    #[test]
    fn faults_paused_starts_injection_paused_until_resumed() {
        let options = parse(&["--faults", "--faults-paused", "--fail-rate", "1"]).unwrap();
        let faults = fault_injector(&options).expect("--faults configures injection");
        assert!(!faults.enabled());
        assert_eq!(faults.plan(), FaultPlan::Proceed, "paused: every push proceeds");
        faults.set_enabled(true); // what POST /debug/faults {"enabled": true} does
        assert_eq!(faults.plan(), FaultPlan::Fail);

        let running = fault_injector(&parse(&["--faults", "--fail-rate", "1"]).unwrap()).unwrap();
        assert!(running.enabled(), "without --faults-paused injection starts on");
        assert!(fault_injector(&parse(&[]).unwrap()).is_none());
        assert!(parse(&["--faults-paused"]).is_err(), "--faults-paused needs --faults");
    }

    #[test]
    fn the_database_is_described_without_its_password() {
        let sqlite = parse(&["--database", "w.sqlite"]).unwrap();
        assert_eq!(describe_database(&sqlite), "SQLite w.sqlite");
        let postgres = parse(&["--database-url", "postgres://wharf:hunter2@db.internal:5433/sync"]).unwrap();
        assert_eq!(postgres.database_pool, 16);
        let described = describe_database(&postgres);
        assert!(described.contains("\"sync\"") && described.contains("db.internal") && described.contains("\"wharf\""));
        assert!(!described.contains("hunter2"), "{described}");
        assert!(parse(&["--database-url", "x", "--database-pool", "0"]).is_err());
    }
}
