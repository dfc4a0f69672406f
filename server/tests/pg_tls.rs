//! TLS to PostgreSQL (`src/pg_tls.rs`) against a real server: a throwaway cluster with `ssl=on`
//! and a certificate made here with rcgen (a test CA, and a server certificate for 127.0.0.1 and
//! `db.wharf.test`). Each `sslmode` is checked for what it promises: `verify-full` with the CA
//! connects and syncs, over TLS on every connection (the pool's and LISTEN's, read back from
//! `pg_stat_ssl`); a wrong CA or a wrong host name is a clear error, not a panic; `verify-ca`
//! checks the chain but not the name; `require` and `prefer` without a CA encrypt without
//! checking; `disable` stays plaintext.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use serde_json::Value;

use common::pg::Cluster;
use common::{config_with, pull, push, put, site};
use wharf_server::app::router;
use wharf_server::postgres::{PgOptions, PgStore};

/// The TLS cluster of this test process, and the CA its certificate chains to.
struct Tls {
    cluster: Cluster,
    ca_pem: String,
    port: u16,
}

/// A CA certificate (PEM) and what signs with it.
fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(params, key))
}

fn tls() -> &'static Tls {
    static TLS: OnceLock<Tls> = OnceLock::new();
    TLS.get_or_init(|| {
        let (ca_pem, issuer) = ca("wharf test CA");
        let mut params = CertificateParams::new(vec!["db.wharf.test".to_owned()]).unwrap();
        params.subject_alt_names.push(SanType::IpAddress([127, 0, 0, 1].into()));
        params.distinguished_name.push(DnType::CommonName, "db.wharf.test");
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        let cluster = Cluster::start_tls(&cert.pem(), &key.serialize_pem());
        let config: tokio_postgres::Config = cluster.admin_url.parse().unwrap();
        let port = config.get_ports()[0];
        Tls { cluster, ca_pem, port }
    })
}

/// A fresh database on the TLS cluster, and a URL to it with `params` (`sslmode=…`) and an
/// application name of its own (to find its connections in `pg_stat_activity`).
async fn database(params: &str) -> (String, String) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let tls = tls();
    let url = tls.cluster.create_database().await;
    let name = url.rsplit('/').next().unwrap().to_owned();
    let app = format!("wharf_tls_{}", NEXT.fetch_add(1, Ordering::Relaxed));
    (format!("postgres://postgres@127.0.0.1:{}/{name}?application_name={app}&{params}", tls.port), app)
}

fn options(ca_pem: Option<&str>) -> PgOptions {
    PgOptions { pool_size: 2, ca_pem: ca_pem.map(|pem| pem.as_bytes().to_vec()), ..PgOptions::default() }
}

/// `(ssl, query)` of every connection named `app`, read by the (plaintext) admin connection.
async fn connections(app: &str) -> Vec<(bool, String)> {
    let (client, connection) = tokio_postgres::connect(&tls().cluster.admin_url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT s.ssl, a.query FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.application_name = $1",
            &[&app],
        )
        .await
        .unwrap();
    rows.iter().map(|row| (row.get(0), row.get(1))).collect()
}

/// Opening a store on `url` fails; the message.
async fn refused(url: &str, ca_pem: Option<&str>) -> String {
    match PgStore::connect(url, options(ca_pem)).await {
        Ok(_) => panic!("{url} connected"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn verify_full_with_the_ca_syncs_and_every_connection_is_tls() {
    let (url, app_name) = database("sslmode=verify-full").await;
    let store = PgStore::connect_shared(&url, options(Some(&tls().ca_pem))).await.unwrap();
    let dir = site();
    let app = router(config_with(store, dir.path(), None));
    let answer = push(&app, vec![put("op1", "todos", "a")], None).await;
    assert_eq!(answer["results"][0]["status"], "applied", "{answer}");
    let (_, page, text) = pull(&app, "").await;
    let keys: Vec<&Value> = page["changes"].as_array().unwrap().iter().map(|c| &c["key"]).collect();
    assert_eq!(keys, ["a"], "{text}");

    let seen = connections(&app_name).await;
    assert!(seen.iter().any(|(_, query)| query.starts_with("LISTEN")), "the LISTEN connection: {seen:?}");
    assert!(seen.len() >= 2, "the pool's and LISTEN's: {seen:?}");
    assert!(seen.iter().all(|(ssl, _)| *ssl), "every connection is TLS: {seen:?}");
}

#[tokio::test]
async fn a_wrong_ca_or_host_name_is_a_clear_error() {
    let (wrong_ca, _) = ca("another CA");
    let (url, _) = database("sslmode=verify-full").await;
    let message = refused(&url, Some(&wrong_ca)).await;
    assert!(message.contains("certificate") && message.contains("--database-ca"), "{message}");

    // The certificate names 127.0.0.1 and db.wharf.test, not db.other.test (reached by hostaddr).
    let other = url.replace("@127.0.0.1:", "@db.other.test:") + "&hostaddr=127.0.0.1";
    let message = refused(&other, Some(&tls().ca_pem)).await;
    assert!(message.contains("certificate") && message.contains("name the host"), "{message}");
    // verify-ca checks the chain only: the same host name passes, the wrong CA does not.
    let chain_only = other.replace("sslmode=verify-full", "sslmode=verify-ca");
    PgStore::connect(&chain_only, options(Some(&tls().ca_pem))).await.unwrap();
    assert!(refused(&chain_only, Some(&wrong_ca)).await.contains("certificate"));
    let named = url.replace("@127.0.0.1:", "@db.wharf.test:") + "&hostaddr=127.0.0.1";
    PgStore::connect(&named, options(Some(&tls().ca_pem))).await.unwrap();
}

#[tokio::test]
async fn without_a_ca_only_the_verifying_modes_check_the_certificate() {
    // The test CA is in no system store: verify-full and verify-ca refuse the server.
    for mode in ["verify-full", "verify-ca"] {
        let (url, _) = database(&format!("sslmode={mode}")).await;
        let message = refused(&url, None).await;
        assert!(message.contains("system's root certificates"), "{mode}: {message}");
    }
    // require and prefer encrypt, whatever the certificate.
    for mode in ["require", "prefer"] {
        let (url, app_name) = database(&format!("sslmode={mode}")).await;
        let _store = PgStore::connect(&url, options(None)).await.unwrap();
        let seen = connections(&app_name).await;
        assert!(!seen.is_empty() && seen.iter().all(|(ssl, _)| *ssl), "{mode}: {seen:?}");
    }
    // A given CA is checked in require too.
    let (wrong_ca, _) = ca("another CA");
    let (url, _) = database("sslmode=require").await;
    assert!(refused(&url, Some(&wrong_ca)).await.contains("certificate"));
}

#[tokio::test]
async fn disable_stays_plaintext() {
    let (url, app_name) = database("sslmode=disable").await;
    let _store = PgStore::connect(&url, options(None)).await.unwrap();
    let seen = connections(&app_name).await;
    assert!(!seen.is_empty() && seen.iter().all(|(ssl, _)| !*ssl), "{seen:?}");
    assert!(refused(&url, Some(&tls().ca_pem)).await.contains("sslmode=disable"));
}
