//! `wharf-server`: runs the reference sync server, or with `compact` one retention pass over
//! its database. `cargo run -p wharf-server -- --help`.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use wharf_server::app::router;
use wharf_server::auth::{Authenticator, JwtSettings, JwtVerifier};
use wharf_server::compaction::{self, RetentionOptions};
use wharf_server::config::Config;
use wharf_server::counters::Counters;
use wharf_server::faults::{FaultSettings, Faults};
use wharf_server::live_hub::{Live, LiveCloser};
use wharf_server::logging::{self, LogFormat};
use wharf_server::metrics::{Metrics, MetricsAccess};
use wharf_server::postgres::{PgOptions, PgStore};
use wharf_server::sqlite::SqliteStore;
use wharf_server::store::{now_ms, Storage, StoreError};
use wharf_server::ticket::{Tickets, TICKET_TTL};

/// Wharf's reference sync server: the push and pull endpoints and the live WebSocket of
/// docs/protocol.md over embedded SQLite or PostgreSQL, plus the demo app (www/) and the built
/// package (pkg/).
#[derive(Debug, Parser)]
#[command(version)]
struct Options {
    #[command(subcommand)]
    command: Option<Command>,
    /// Address to listen on. Keep it on loopback unless you mean to expose the server.
    #[arg(long, default_value = "127.0.0.1:8080", env = "WHARF_ADDR")]
    addr: SocketAddr,
    /// SQLite database file, or ":memory:" for a store that lives as long as the process. A file
    /// written by an older server is upgraded in place when opened.
    #[arg(long, default_value = ":memory:", env = "WHARF_DATABASE", global = true)]
    database: String,
    /// Use PostgreSQL instead of SQLite: `postgres://USER:PASSWORD@HOST:PORT/DATABASE` (also
    /// `host=… user=… dbname=…` key-value form; `?host=/run/postgresql` for a Unix socket). Any
    /// number of instances may share one database. The schema is created or upgraded at start,
    /// under an advisory lock. TLS follows the URL's `sslmode` (disable, prefer: the default,
    /// require, verify-ca, verify-full; only the verify modes authenticate the server). Also read
    /// from WHARF_DATABASE_URL.
    #[arg(long, env = "WHARF_DATABASE_URL", hide_env_values = true, global = true)]
    database_url: Option<String>,
    /// Root certificate(s) (PEM) the PostgreSQL server's certificate must chain to, in every TLS
    /// mode; without it, verify-ca and verify-full use the system's root store.
    #[arg(long, env = "WHARF_DATABASE_CA", value_name = "FILE", requires = "database_url", global = true)]
    database_ca: Option<PathBuf>,
    /// Most PostgreSQL connections this instance opens for requests (one more is used for
    /// LISTEN). Only with --database-url.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1000), env = "WHARF_DATABASE_POOL", global = true)]
    database_pool: u64,
    /// A static development token: `Authorization: Bearer <TOKEN>` on /push, /pull and /live
    /// (where `?token=TOKEN` is accepted too, for clients older than live tickets) is
    /// then the fixed user "development", who reads and writes the shared space (the one every
    /// request uses when no authentication is configured). For development; use JWTs for real
    /// users.
    #[arg(long, env = "WHARF_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Verify HS256 JWTs signed with this shared secret (at least 32 bytes); the token's `sub` is
    /// the user, who reads and writes a private space of its own. Prefer the environment variable: a command line is visible to other users.
    #[arg(long, env = "WHARF_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Verify RS256 (RSA) or ES256 (P-256) JWTs with the public key in this PEM file; the
    /// token's `sub` is the user.
    #[arg(long, env = "WHARF_JWT_PUBLIC_KEY", value_name = "FILE")]
    jwt_public_key: Option<PathBuf>,
    /// Key (at least 32 bytes) signing the short-lived tickets that open /live (POST
    /// /live/ticket). Default: a random key per process, so give every instance behind one load
    /// balancer the same secret. Prefer the environment variable.
    #[arg(long, env = "WHARF_TICKET_SECRET", hide_env_values = true)]
    ticket_secret: Option<String>,
    /// Require JWTs to carry this `iss`.
    #[arg(long, env = "WHARF_JWT_ISSUER")]
    jwt_issuer: Option<String>,
    /// Require JWTs to name this audience in `aud` (recommended: otherwise a token your issuer
    /// minted for another service is accepted too).
    #[arg(long, env = "WHARF_JWT_AUDIENCE")]
    jwt_audience: Option<String>,
    /// Do not bind client ids to users. By default the first JWT user to push with a client id
    /// owns it, and another user's push with it is refused (403 FORBIDDEN); with this, users
    /// may share one client id (the client shares its database's id between the users who
    /// sign in on it).
    #[arg(long, env = "WHARF_SHARED_CLIENT_IDS")]
    shared_client_ids: bool,
    /// Listen on a non-loopback address although no authentication (--token, --jwt-secret,
    /// --jwt-public-key) is configured: anyone who reaches the server can then read and change
    /// every document.
    #[arg(long, env = "WHARF_INSECURE")]
    insecure: bool,
    /// Largest accepted request body, in bytes (larger: 413).
    #[arg(long, default_value_t = 1 << 20, env = "WHARF_MAX_BODY_BYTES")]
    max_body_bytes: usize,
    /// Most mutations accepted in one push (more: 413 BATCH_TOO_LARGE).
    #[arg(long, default_value_t = 1000, env = "WHARF_MAX_BATCH")]
    max_batch: usize,
    /// Directory served at / (the demo app).
    #[arg(long, default_value = "www", env = "WHARF_WWW")]
    www: PathBuf,
    /// Directory served at /pkg (the built npm package).
    #[arg(long, default_value = "pkg", env = "WHARF_PKG")]
    pkg: PathBuf,
    /// Origin allowed to call /push and /pull cross-origin (repeatable; "*" for any). Default:
    /// same origin only. A request whose `Origin` is neither the server's own (its `Host`) nor
    /// one of these is refused (403) on /push, /pull and /live. In WHARF_CORS_ORIGIN, separate
    /// origins with commas.
    #[arg(long = "cors-origin", env = "WHARF_CORS_ORIGIN", value_delimiter = ',')]
    cors_origins: Vec<String>,
    /// Seconds between the server's heartbeats on each /live WebSocket (`{"type":"ping"}`). A
    /// socket from which nothing arrives for 3 of these periods is closed.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600), env = "WHARF_LIVE_PING_SECS")]
    live_ping_secs: u64,
    /// Serve Prometheus metrics at GET /metrics (off by default: 404). With authentication
    /// configured it also needs --metrics-token; without, anyone who reaches the server may read
    /// them (loopback only, unless --insecure).
    #[arg(long, env = "WHARF_METRICS")]
    metrics: bool,
    /// The bearer token /metrics requires (`Authorization: Bearer <TOKEN>`), apart from every
    /// user's and from --token. Prefer the environment variable: a command line is visible to
    /// other users.
    #[arg(long, requires = "metrics", env = "WHARF_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    #[command(flatten)]
    retention: RetentionOptions,
    /// What is logged (to stderr), in tracing's env-filter syntax: a level (`error`, `warn`,
    /// `info`, `debug`, `trace`, `off`), or levels per target (`info,wharf_server::request=warn`
    /// drops the per-request lines).
    #[arg(long, default_value = "info", env = "WHARF_LOG", global = true)]
    log: String,
    /// How log lines are written: `text`, or `json` (one object per line, for log collectors).
    #[arg(long, value_enum, default_value = "text", env = "WHARF_LOG_FORMAT", global = true)]
    log_format: LogFormat,
    /// Turn fault injection on (for tests and demos; never in production). The --fail-*,
    /// --retry-after-secs, --latency-ms, --drop-after-apply-rate, --fault-seed and
    /// --reject-batches-with options only act with it. Also mounts the test routes
    /// GET /debug/state (applied mutations, push and duplicate counts, stored records),
    /// POST /debug/faults {"enabled": bool} (pause or resume injection) and
    /// POST /debug/compact {"beforeCursor": "<cursor>"} (delete older tombstones; pulls from
    /// older cursors then answer 410 CURSOR_EXPIRED); without it they are 404.
    #[arg(long, env = "WHARF_FAULTS")]
    faults: bool,
    /// Start with fault injection configured but paused, as if `POST /debug/faults
    /// {"enabled": false}` had been sent (the demo's "flaky server" toggle resumes it). Needs
    /// --faults.
    #[arg(long, requires = "faults", env = "WHARF_FAULTS_PAUSED")]
    faults_paused: bool,
    /// Probability (0 to 1) that a push fails before anything is applied.
    #[arg(long, default_value_t = 0.0, value_parser = probability, env = "WHARF_FAIL_RATE")]
    fail_rate: f64,
    /// HTTP status of injected failures.
    #[arg(long, default_value_t = 503, env = "WHARF_FAIL_STATUS")]
    fail_status: u16,
    /// Retry-After (seconds) sent with injected failures.
    #[arg(long, env = "WHARF_RETRY_AFTER_SECS")]
    retry_after_secs: Option<u64>,
    /// Latency added to every push, in milliseconds.
    #[arg(long, default_value_t = 0, env = "WHARF_LATENCY_MS")]
    latency_ms: u64,
    /// Probability (0 to 1) that the connection is dropped after a push was applied.
    #[arg(long, default_value_t = 0.0, value_parser = probability, env = "WHARF_DROP_AFTER_APPLY_RATE")]
    drop_after_apply_rate: f64,
    /// Seed of the fault schedule (the same seed replays the same faults).
    #[arg(long, default_value_t = 1, env = "WHARF_FAULT_SEED")]
    fault_seed: u64,
    /// Refuse a whole push (422, code POISON, nothing applied) when any of its mutations has a
    /// `value` or `patch` object with a top-level field named FIELD: a server that rejects whole
    /// batches, so the client has to split them to isolate the bad mutation. Holds while
    /// injection is paused (--faults-paused, POST /debug/faults) too.
    #[arg(long, value_name = "FIELD", env = "WHARF_REJECT_BATCHES_WITH")]
    reject_batches_with: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Run one retention pass over the database (--database or --database-url): delete the
    /// tombstones older than --retain and the ledger entries older than --ledger-retain, print
    /// what was removed, and exit. Without a command, the server runs.
    Compact,
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
            let read = |path: &PathBuf| {
                std::fs::read(path)
                    .map_err(|e| StoreError::Postgres(format!("cannot read --database-ca {}: {e}", path.display())))
            };
            let ca_pem = options.database_ca.as_ref().map(read).transpose()?;
            PgStore::connect_shared(url, PgOptions { pool_size, ca_pem, ..PgOptions::default() }).await
        }
        None => SqliteStore::open_shared(&options.database),
    }
}

/// Where the data lives, for messages (the URL without its password).
fn describe_database(options: &Options) -> String {
    match &options.database_url {
        Some(url) => match wharf_server::pg_tls::parse_url(url) {
            Ok((config, mode)) => format!(
                "PostgreSQL database {:?} on {:?} as {:?}, sslmode={}",
                config.get_dbname().unwrap_or_default(),
                config.get_hosts(),
                config.get_user().unwrap_or_default(),
                mode.name()
            ),
            Err(_) => "PostgreSQL (unreadable --database-url)".to_owned(),
        },
        None => format!("SQLite {}", options.database),
    }
}

/// The authentication the options configure (possibly none), or why they cannot be used.
fn authenticator(options: &Options) -> Result<Authenticator, String> {
    if options.token.as_deref().is_some_and(str::is_empty) {
        return Err("--token must not be empty".to_owned());
    }
    let public_key_pem = match &options.jwt_public_key {
        Some(path) => {
            Some(std::fs::read(path).map_err(|e| format!("cannot read --jwt-public-key {}: {e}", path.display()))?)
        }
        None => None,
    };
    let settings = JwtSettings {
        secret: options.jwt_secret.clone(),
        public_key_pem,
        issuer: options.jwt_issuer.clone(),
        audience: options.jwt_audience.clone(),
    };
    let jwt = JwtVerifier::new(&settings).map_err(|e| e.to_string())?;
    if jwt.is_none() && (settings.issuer.is_some() || settings.audience.is_some()) {
        return Err("--jwt-issuer and --jwt-audience need --jwt-secret or --jwt-public-key".to_owned());
    }
    if options.ticket_secret.is_some() && options.ticket_secret == options.jwt_secret {
        return Err("--ticket-secret must differ from --jwt-secret: each is a separate key".to_owned());
    }
    let tickets = Tickets::new(options.ticket_secret.as_deref(), TICKET_TTL).map_err(|e| e.to_string())?;
    Ok(Authenticator::new(options.token.clone(), jwt).with_tickets(tickets))
}

/// Refuses to expose a server without authentication beyond loopback, unless `--insecure`.
fn check_exposure(addr: SocketAddr, auth: &Authenticator, insecure: bool) -> Result<(), String> {
    if addr.ip().is_loopback() || auth.is_configured() || insecure {
        return Ok(());
    }
    Err(format!(
        "refusing to listen on {addr} without authentication: anyone who can reach it could read and \
         overwrite every document. Configure --jwt-secret or --jwt-public-key (or --token for \
         development), listen on a loopback address, or pass --insecure to do it anyway."
    ))
}

/// Who may read `/metrics`: nobody without `--metrics`; with it, the holders of the metrics
/// token, or anyone when the server has no authentication at all (and so listens on loopback,
/// or was told `--insecure`). A server with authentication never serves them without a token:
/// a reverse proxy on the same host would make every request look local.
fn metrics_access(options: &Options, auth: &Authenticator) -> Result<MetricsAccess, String> {
    match (&options.metrics_token, options.metrics) {
        (_, false) => Ok(MetricsAccess::Off),
        (Some(token), true) if token.is_empty() => Err("--metrics-token must not be empty".to_owned()),
        (Some(token), true) if options.token.as_ref() == Some(token) => {
            Err("--metrics-token must differ from --token: each is a separate key".to_owned())
        }
        (Some(token), true) => Ok(MetricsAccess::Token(token.clone())),
        (None, true) if auth.is_configured() => {
            Err("--metrics on a server with authentication needs --metrics-token (WHARF_METRICS_TOKEN): \
             the metrics would otherwise be readable by anyone who reaches the server"
                .to_owned())
        }
        (None, true) => Ok(MetricsAccess::Open),
    }
}

/// The authentication in words, for the start-up line.
fn describe_auth(options: &Options, auth: &Authenticator) -> String {
    let mut ways = Vec::new();
    if options.jwt_secret.is_some() {
        ways.push("JWT HS256".to_owned());
    }
    if let Some(path) = &options.jwt_public_key {
        ways.push(format!("JWT with the key in {}", path.display()));
    }
    if options.token.is_some() {
        ways.push("development token".to_owned());
    }
    if !auth.is_configured() {
        ways.push("none".to_owned());
    }
    ways.join(", ")
}

/// What resolves at the first SIGTERM or SIGINT (Ctrl-C), naming it. The handlers are installed
/// here, at once: called before the server says it listens, a SIGTERM sent right after that line
/// is never the default "terminate at once".
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<Pin<Box<dyn Future<Output = &'static str> + Send>>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(Box::pin(async move {
        tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        }
    }))
}

#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<Pin<Box<dyn Future<Output = &'static str> + Send>>> {
    Ok(Box::pin(async {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }))
}

/// How long, after the last request finished, the server waits for its live sockets to close.
const SOCKETS_CLOSE_WITHIN: Duration = Duration::from_secs(5);

/// Waits (a bounded time) until every live socket has sent its close frame and gone.
async fn sockets_closed(closer: &LiveCloser) {
    let deadline = tokio::time::Instant::now() + SOCKETS_CLOSE_WITHIN;
    while closer.sockets() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `wharf-server compact`: one retention pass, then the exit status.
async fn compact(options: &Options) -> i32 {
    if options.database_url.is_none() && options.database == ":memory:" {
        eprintln!("wharf-server: compact needs the database: --database FILE or --database-url URL");
        return 2;
    }
    let store = match open_store(options).await {
        Ok(store) => store,
        Err(e) => {
            eprintln!("wharf-server: cannot open {}: {e}", describe_database(options));
            return 2;
        }
    };
    match compaction::compact_once(store.as_ref(), options.retention.retention(), now_ms() as u64).await {
        Ok(removed) => {
            println!("{}: {removed}", describe_database(options));
            0
        }
        Err(e) => {
            eprintln!("wharf-server: compaction failed: {e}");
            1
        }
    }
}

#[tokio::main]
async fn main() {
    let options = Options::parse();
    if let Err(message) = logging::init(options.log_format, &options.log) {
        eprintln!("wharf-server: {message}");
        std::process::exit(2);
    }
    if let Some(Command::Compact) = options.command {
        std::process::exit(compact(&options).await);
    }
    let auth = match authenticator(&options) {
        Ok(auth) => auth,
        Err(message) => {
            eprintln!("wharf-server: {message}");
            std::process::exit(2);
        }
    };
    if let Err(message) = check_exposure(options.addr, &auth, options.insecure) {
        eprintln!("wharf-server: {message}");
        std::process::exit(2);
    }
    let metrics_access = match metrics_access(&options, &auth) {
        Ok(access) => access,
        Err(message) => {
            eprintln!("wharf-server: {message}");
            std::process::exit(2);
        }
    };
    let store = match open_store(&options).await {
        Ok(store) => store,
        Err(e) => {
            eprintln!("wharf-server: cannot open {}: {e}", describe_database(&options));
            std::process::exit(2);
        }
    };
    let faults = fault_injector(&options);
    let database = describe_database(&options);
    let authentication = describe_auth(&options, &auth);
    if let Some(every) = options.retention.compact_every {
        compaction::schedule(Arc::clone(&store), every, options.retention.retention());
    }
    let live = Live::new(Duration::from_secs(options.live_ping_secs));
    let closer = live.closer();
    let app = router(Config {
        store,
        auth,
        bind_client_ids: !options.shared_client_ids,
        max_body_bytes: options.max_body_bytes,
        max_batch: options.max_batch,
        www: options.www,
        pkg: options.pkg,
        cors_origins: options.cors_origins,
        faults,
        counters: Counters::default(),
        live,
        metrics: Metrics::new(metrics_access),
    });
    let listener = match tokio::net::TcpListener::bind(options.addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("wharf-server: cannot listen on {}: {e}", options.addr);
            std::process::exit(2);
        }
    };
    let signal = match shutdown_signal() {
        Ok(signal) => signal,
        Err(e) => {
            eprintln!("wharf-server: cannot install the SIGTERM/SIGINT handlers: {e}");
            std::process::exit(2);
        }
    };
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| options.addr.to_string());
    // Scripts and tests wait for this line on stdout; the logs (stderr) say it too.
    println!("Wharf server: http://{addr}/ ({database}; authentication: {authentication})");
    tracing::info!(%addr, %database, %authentication, "listening");
    // Stop accepting, let the requests in flight finish (a push either commits and is answered,
    // or never started), and close the live sockets with 1001 (the clients reconnect elsewhere).
    let closing = closer.clone();
    let shutdown = async move {
        let signal = signal.await;
        tracing::info!(signal, "finishing the requests in flight, closing live sockets");
        closing.close_all();
    };
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
        tracing::error!(error = %e, "the server failed");
        std::process::exit(1);
    }
    sockets_closed(&closer).await;
    tracing::info!("stopped");
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
    fn metrics_are_off_by_default_and_need_their_own_token_beside_authentication() {
        let access = |args: &[&str]| {
            let options = parse(args).unwrap();
            let auth = authenticator(&options).unwrap();
            metrics_access(&options, &auth)
        };
        assert_eq!(access(&[]), Ok(MetricsAccess::Off));
        assert_eq!(access(&["--token", "t"]), Ok(MetricsAccess::Off));
        assert_eq!(access(&["--metrics"]), Ok(MetricsAccess::Open), "no authentication: loopback or --insecure");
        assert!(access(&["--metrics", "--token", "t"]).is_err_and(|e| e.contains("--metrics-token")));
        assert_eq!(
            access(&["--metrics", "--token", "t", "--metrics-token", "m"]),
            Ok(MetricsAccess::Token("m".to_owned()))
        );
        assert_eq!(access(&["--metrics", "--metrics-token", "m"]), Ok(MetricsAccess::Token("m".to_owned())));
        assert!(access(&["--metrics", "--token", "t", "--metrics-token", "t"]).is_err(), "the same key twice");
        assert!(access(&["--metrics", "--metrics-token", ""]).is_err());
        assert!(parse(&["--metrics-token", "m"]).is_err(), "--metrics-token needs --metrics");
    }

    #[test]
    fn compact_is_a_subcommand_that_reads_the_database_and_retention_flags_after_it() {
        let serve = parse(&["--addr", "127.0.0.1:0", "--compact-every", "1d"]).unwrap();
        assert!(serve.command.is_none(), "no command: the server runs");
        assert_eq!(serve.retention.compact_every, Some(Duration::from_secs(86_400)));
        assert_eq!(serve.retention.retention().tombstones, Duration::from_secs(30 * 86_400));
        assert_eq!(serve.retention.retention().ledgers, Duration::from_secs(365 * 86_400));
        let once = parse(&["compact", "--database", "w.sqlite", "--retain", "7d", "--ledger-retain", "90d"]).unwrap();
        assert!(matches!(once.command, Some(Command::Compact)));
        assert_eq!(once.database, "w.sqlite");
        assert_eq!(once.retention.retention().tombstones, Duration::from_secs(7 * 86_400));
        assert_eq!(once.retention.retention().ledgers, Duration::from_secs(90 * 86_400));
        assert!(parse(&["--retain", "30"]).is_err(), "a duration needs its unit");
        assert!(parse(&["--compact-every", "0s"]).is_err());
        assert!(parse(&["compact", "--addr", "127.0.0.1:0"]).is_err(), "compact serves nothing");
        assert!(parse(&["--log-format", "xml"]).is_err());
        let with_ca = parse(&["compact", "--database-url", "postgres://h/d", "--database-ca", "ca.pem"]).unwrap();
        assert!(with_ca.database_ca.is_some(), "compact reaches PostgreSQL over TLS too");
    }

    #[test]
    fn the_ticket_secret_is_long_and_apart_from_the_jwt_secret() {
        let auth = |args: &[&str]| authenticator(&parse(args).unwrap()).map(|_| ());
        let (long, other) = ("t".repeat(32), "j".repeat(32));
        assert!(auth(&["--ticket-secret", "short"]).is_err_and(|e| e.contains("32 bytes")));
        assert!(auth(&["--ticket-secret", &long, "--jwt-secret", &long]).is_err_and(|e| e.contains("differ")));
        assert!(auth(&["--ticket-secret", &long, "--jwt-secret", &other]).is_ok());
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
