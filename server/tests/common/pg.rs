//! A real, throwaway PostgreSQL for the tests: Debian's `postgresql` package (scripts/setup.sh
//! installs it), started once per test process on a free loopback port, in a temporary data
//! directory, as the unprivileged `postgres` OS user when the tests run as root (PostgreSQL
//! refuses to run as root); every test gets a database of its own.
//!
//! - `WHARF_TEST_DATABASE_URL=postgres://user@host:port/db` uses that server instead (its user
//!   must be allowed to CREATE DATABASE); nothing is started.
//! - Otherwise the binaries are looked up under `/usr/lib/postgresql/*/bin` (the newest version;
//!   `WHARF_PG_BIN=/path/to/bin` overrides). If there are none, the PostgreSQL tests fail with a
//!   message saying so: they never skip.
//!
//! [`Cluster::start_tls`] starts a server of its own with `ssl=on` and a given certificate and key
//! (the TLS tests, `tests/pg_tls.rs`, make them at test time); plaintext connections stay allowed
//! there, so the admin connection and `sslmode=disable` work.
//!
//! Stopping: the server is started by a small watchdog shell that stops it (fast shutdown) and
//! deletes the data directory as soon as the test process is gone, however it ends (normally, by
//! a panic, or killed). A [`Cluster`] that is dropped (one started by [`Cluster::start`] for a
//! single test) stops its server at once.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running PostgreSQL server.
pub struct Cluster {
    /// A URL to its `postgres` database, as a superuser.
    pub admin_url: String,
    /// What stops it: `None` for a server this process did not start.
    started: Option<Started>,
}

struct Started {
    bin: PathBuf,
    dir: PathBuf,
    as_postgres: bool,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(started) = &self.started {
            let data = started.dir.join("data");
            let _ = pg_command(&started.bin, "pg_ctl", started.as_postgres)
                .args(["stop", "-m", "fast", "-w", "-D"])
                .arg(&data)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            // The watchdog sees the server gone and removes the directory.
        }
    }
}

/// The process-wide server (started on first use), or the one `WHARF_TEST_DATABASE_URL` names.
pub fn shared() -> &'static Cluster {
    static SHARED: OnceLock<Cluster> = OnceLock::new();
    SHARED.get_or_init(|| match std::env::var("WHARF_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Cluster { admin_url: url, started: None },
        _ => Cluster::start(),
    })
}

/// A fresh, empty database on the shared server; returns its URL.
pub async fn database() -> String {
    shared().create_database().await
}

fn pg_command(bin: &Path, tool: &str, as_postgres: bool) -> Command {
    if as_postgres {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        command
    } else {
        Command::new(bin.join(tool))
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` that has `postgres` and `initdb`.
fn find_binaries() -> PathBuf {
    if let Ok(bin) = std::env::var("WHARF_PG_BIN") {
        let bin = PathBuf::from(bin);
        assert!(bin.join("postgres").is_file(), "WHARF_PG_BIN={} has no postgres binary", bin.display());
        return bin;
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("postgres").is_file() && bin.join("initdb").is_file()).then_some((version, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL is not installed: no /usr/lib/postgresql/*/bin/postgres. The server's tests run every \
             protocol test against PostgreSQL too. Install it with scripts/setup.sh (apt-get install -y \
             postgresql), or point WHARF_TEST_DATABASE_URL at a server whose user may CREATE DATABASE."
        ),
    }
}

fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free loopback port")
}

impl Cluster {
    /// initdb into a temporary directory and start a server on a free loopback port (see the
    /// module comment). Panics with the server's log when it does not come up.
    pub fn start() -> Cluster {
        Cluster::start_with(None)
    }

    /// [`Cluster::start`] with TLS on: the server presents `cert_pem` (its chain, PEM) and holds
    /// `key_pem`.
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> Cluster {
        Cluster::start_with(Some((cert_pem, key_pem)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> Cluster {
        let bin = find_binaries();
        let as_postgres = running_as_root();
        let dir = tempfile::Builder::new().prefix("wharf-pg-").tempdir().expect("a temporary directory").keep();
        if as_postgres {
            let status = Command::new("chown").arg("postgres:postgres").arg(&dir).status().expect("chown runs");
            assert!(status.success(), "cannot give {} to the postgres user", dir.display());
        }
        let mut ssl = String::new();
        if let Some((cert_pem, key_pem)) = tls {
            let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
            std::fs::write(&cert, cert_pem).expect("the certificate is written");
            std::fs::write(&key, key_pem).expect("the key is written");
            // PostgreSQL refuses a key file that others may read.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod 600 the key");
            if as_postgres {
                let status = Command::new("chown").arg("postgres:postgres").arg(&cert).arg(&key).status();
                assert!(status.is_ok_and(|s| s.success()), "cannot give the certificate to the postgres user");
            }
            ssl = format!("-c ssl=on -c ssl_cert_file={} -c ssl_key_file={}", shell_quote(&cert), shell_quote(&key));
        }
        let data = dir.join("data");
        let initdb = pg_command(&bin, "initdb", as_postgres)
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"])
            .output()
            .expect("initdb runs");
        assert!(
            initdb.status.success(),
            "initdb failed in {}: {}{}",
            data.display(),
            String::from_utf8_lossy(&initdb.stdout),
            String::from_utf8_lossy(&initdb.stderr)
        );
        let mut last_log = String::new();
        for _ in 0..3 {
            let port = free_port();
            let log = dir.join("postgres.log");
            // The watchdog: runs the server, stops it when this process is gone, cleans up.
            let script = format!(
                r#"{postgres} -D {data} -p {port} -k {dir} -c listen_addresses=127.0.0.1 \
                    -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
                    -c max_connections=400 -c shared_buffers=64MB {ssl} >{log} 2>&1 &
                pg=$!
                while [ -d /proc/{parent} ] && kill -0 $pg 2>/dev/null; do sleep 0.2; done
                kill -INT $pg 2>/dev/null
                wait $pg
                rm -rf {dir}"#,
                postgres = shell_quote(&bin.join("postgres")),
                data = shell_quote(&data),
                dir = shell_quote(&dir),
                log = shell_quote(&log),
                parent = std::process::id(),
            );
            let mut watchdog = if as_postgres {
                let mut command = Command::new("runuser");
                command.args(["-u", "postgres", "--", "sh", "-c", &script]);
                command
            } else {
                let mut command = Command::new("sh");
                command.args(["-c", &script]);
                command
            };
            watchdog.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
            let mut child = watchdog.spawn().expect("the PostgreSQL watchdog starts");
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let ready = Command::new(bin.join("pg_isready"))
                    .args(["-q", "-h", "127.0.0.1", "-t", "1", "-p", &port.to_string()])
                    .status()
                    .is_ok_and(|s| s.success());
                if ready {
                    std::thread::spawn(move || child.wait()); // reap the watchdog when it ends
                    return Cluster {
                        admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
                        started: Some(Started { bin, dir, as_postgres }),
                    };
                }
                if child.try_wait().ok().flatten().is_some() || Instant::now() > deadline {
                    let _ = child.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            last_log = std::fs::read_to_string(&log).unwrap_or_default();
        }
        panic!("PostgreSQL did not start (3 attempts) from {}; its log:\n{last_log}", bin.display());
    }

    /// Creates a database with a unique name and returns its URL.
    pub async fn create_database(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!("wharf_test_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let (client, connection) = tokio_postgres::connect(&self.admin_url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL at {}: {e}", self.admin_url));
        let driver = tokio::spawn(connection);
        // FILE_COPY from template0 is the fastest (PostgreSQL 15+); older servers lack STRATEGY.
        let fast = format!("CREATE DATABASE {name} TEMPLATE template0 STRATEGY FILE_COPY");
        if client.batch_execute(&fast).await.is_err() {
            client
                .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE template0"))
                .await
                .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        }
        drop(client);
        let _ = driver.await;
        let mut config: tokio_postgres::Config = self.admin_url.parse().expect("a valid admin URL");
        config.dbname(&name);
        url_of(&config, &name)
    }
}

/// The admin URL with another database name (the config's hosts, ports and user kept).
fn url_of(config: &tokio_postgres::Config, database: &str) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        _ => "127.0.0.1".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("postgres");
    match config.get_password() {
        Some(password) => {
            format!("postgres://{user}:{}@{host}:{port}/{database}", String::from_utf8_lossy(password))
        }
        None => format!("postgres://{user}@{host}:{port}/{database}"),
    }
}

fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}
