//! TLS to PostgreSQL: what the database URL's `sslmode` and `--database-ca` ask for, turned into
//! a rustls connector for tokio-postgres (`tokio-postgres-rustls`, the `ring` provider). Apart
//! from `postgres.rs` because it is a security decision with its own rules (which modes verify
//! what) and its own failure modes (an unreadable CA file, no system roots), and because both the
//! pool and the LISTEN connection (`pg_listen.rs`) must connect the same way.
//!
//! The modes, as libpq defines them (tokio-postgres itself only knows the first three):
//!
//! | `sslmode` | TLS | The server's certificate |
//! | --- | --- | --- |
//! | `disable` | never | - |
//! | `prefer` (default) | if the server offers it, else plaintext | chains to `--database-ca` when given, else not checked |
//! | `require` | always (else the connection fails) | chains to `--database-ca` when given, else not checked |
//! | `verify-ca` | always | chains to `--database-ca`, or to the system's roots |
//! | `verify-full` | always | as `verify-ca`, and names the host connected to |
//!
//! Only `verify-ca` and `verify-full` authenticate the server whatever is given; `prefer` and
//! `require` without a CA only encrypt (a man in the middle can present any certificate), as in
//! libpq, so that a URL copied from a hosting provider (`sslmode=require`) keeps working. Given a
//! CA, every TLS connection is checked against it (libpq does this for `require` when a root
//! certificate file exists). Without `--database-ca`, the roots are the operating system's store
//! (`rustls-native-certs`, libpq's `sslrootcert=system`), where an operator installs a private
//! CA, rather than a list compiled into the binary: database certificates are rarely issued by
//! public CAs, and the system store follows the operating system's updates.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::verify_server_cert_signed_by_trust_anchor;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use thiserror::Error;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The `sslmode` of a database URL (see the module comment for what each one checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    /// The name used in URLs.
    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether the server's certificate is checked (against the given CA or the system's roots).
    fn verifies(self, has_ca: bool) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull) || (has_ca && self != SslMode::Disable)
    }
}

/// Why the database's TLS settings cannot be used (the server does not start).
#[derive(Debug, Error)]
pub enum PgTlsError {
    #[error("bad database URL: {0}")]
    BadUrl(String),
    #[error("--database-ca: {0}")]
    BadCa(String),
    #[error("--database-ca holds no PEM certificate (-----BEGIN CERTIFICATE-----)")]
    NoCaCertificate,
    #[error("--database-ca is given but the database URL says sslmode=disable: use verify-full (or verify-ca)")]
    CaWithoutTls,
    #[error(
        "sslmode={0} without --database-ca checks the server against the system's root certificates, \
         and none could be loaded{1}: give --database-ca FILE (WHARF_DATABASE_CA)"
    )]
    NoSystemRoots(&'static str, String),
    #[error("TLS setup: {0}")]
    Setup(String),
}

/// A database URL ready to connect with: tokio-postgres's configuration (whose own `sslmode` is
/// `require` for the two verifying modes), the TLS connector, and the mode asked for.
#[derive(Clone)]
pub struct PgConnect {
    pub config: tokio_postgres::Config,
    pub tls: MakeRustlsConnect,
    pub mode: SslMode,
    /// Whether `--database-ca` was given, for messages.
    pub has_ca: bool,
}

/// Parses `url` (URL or key-value form) and its `sslmode`, `verify-ca` and `verify-full`
/// included (tokio-postgres refuses them: they are read here and replaced by `require`).
pub fn parse_url(url: &str) -> Result<(tokio_postgres::Config, SslMode), PgTlsError> {
    let (rewritten, verify) = take_verify_mode(url);
    let config: tokio_postgres::Config =
        rewritten.parse().map_err(|e| PgTlsError::BadUrl(crate::postgres::with_causes(&e)))?;
    let mode = match (verify, config.get_ssl_mode()) {
        (Some(mode), _) => mode,
        (None, tokio_postgres::config::SslMode::Disable) => SslMode::Disable,
        (None, tokio_postgres::config::SslMode::Require) => SslMode::Require,
        (None, _) => SslMode::Prefer,
    };
    Ok((config, mode))
}

/// The configuration and TLS connector for `url`, checking servers against `ca_pem` (the
/// `--database-ca` file's content) when given.
pub fn prepare(url: &str, ca_pem: Option<&[u8]>) -> Result<PgConnect, PgTlsError> {
    let (config, mode) = parse_url(url)?;
    if ca_pem.is_some() && mode == SslMode::Disable {
        return Err(PgTlsError::CaWithoutTls);
    }
    let roots = match ca_pem {
        Some(pem) => Some(roots_from_pem(pem)?),
        None if mode.verifies(false) => Some(system_roots(mode)?),
        None => None,
    };
    let tls = MakeRustlsConnect::new(client_config(mode, roots)?);
    Ok(PgConnect { config, tls, mode, has_ca: ca_pem.is_some() })
}

/// A connection failure in words, with what to check when it is a certificate that did not
/// verify.
pub fn explain(connect: &PgConnect, message: String) -> String {
    if !(message.contains("TLS") && message.contains("certificate")) {
        return message;
    }
    let against = if connect.has_ca { "the --database-ca certificate" } else { "the system's root certificates" };
    let name = if connect.mode == SslMode::VerifyFull { " and name the host in the URL" } else { "" };
    format!("{message} (sslmode={}: the server's certificate must chain to {against}{name})", connect.mode.name())
}

fn roots_from_pem(pem: &[u8]) -> Result<RootCertStore, PgTlsError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| PgTlsError::BadCa(format!("unreadable PEM: {e}")))?;
        roots.add(cert).map_err(|e| PgTlsError::BadCa(format!("not a usable CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(PgTlsError::NoCaCertificate);
    }
    Ok(roots)
}

fn system_roots(mode: SslMode) -> Result<RootCertStore, PgTlsError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
        let why = if errors.is_empty() { String::new() } else { format!(" ({})", errors.join("; ")) };
        return Err(PgTlsError::NoSystemRoots(mode.name(), why));
    }
    Ok(roots)
}

fn client_config(mode: SslMode, roots: Option<RootCertStore>) -> Result<ClientConfig, PgTlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| PgTlsError::Setup(e.to_string()))?;
    let mut config = match (mode, roots) {
        (SslMode::VerifyFull, Some(roots)) => builder.with_root_certificates(roots).with_no_client_auth(),
        (_, roots) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyHost { roots: roots.map(Arc::new), algorithms }))
            .with_no_client_auth(),
    };
    // PostgreSQL 17's direct TLS (`sslnegotiation=direct`) requires this ALPN; older servers
    // ignore it.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(config)
}

/// The verifier of every mode but `verify-full`. With roots (`verify-ca`, and `prefer`/`require`
/// with a CA) the certificate must chain to them but may name any host; without (`prefer` and
/// `require` without a CA: encryption only) the certificate is not checked. Either way the
/// handshake's signatures are (the server holds the key of the certificate it shows).
#[derive(Debug)]
struct AnyHost {
    roots: Option<Arc<RootCertStore>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyHost {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            verify_server_cert_signed_by_trust_anchor(&cert, roots, intermediates, now, self.algorithms.all)?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The URL with every `sslmode=verify-ca` / `verify-full` replaced by `require` (which
/// tokio-postgres understands), and the verifying mode if the last `sslmode` named one.
fn take_verify_mode(url: &str) -> (String, Option<SslMode>) {
    let spans = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        url_sslmodes(url)
    } else {
        key_value_sslmodes(url)
    };
    let verify = |value: &str| match value {
        "verify-ca" => Some(SslMode::VerifyCa),
        "verify-full" => Some(SslMode::VerifyFull),
        _ => None,
    };
    let last = spans.last().and_then(|&(start, end)| verify(&url[start..end]));
    let mut rewritten = url.to_owned();
    for &(start, end) in spans.iter().rev() {
        if verify(&url[start..end]).is_some() {
            rewritten.replace_range(start..end, "require");
        }
    }
    (rewritten, last)
}

/// The byte ranges of the `sslmode` values of a `postgres://…?sslmode=…&…` URL.
fn url_sslmodes(url: &str) -> Vec<(usize, usize)> {
    // The query starts at the first `?` after the credentials, which end at the first `@` (as
    // tokio-postgres reads it: an `@` in the password is percent-encoded).
    let after_credentials = url.find('@').map_or(0, |at| at + 1);
    let Some(question) = url[after_credentials..].find('?').map(|q| after_credentials + q) else {
        return Vec::new();
    };
    let mut spans = Vec::new();
    let mut start = question + 1;
    for pair in url[question + 1..].split('&') {
        if let Some(value) = pair.strip_prefix("sslmode=") {
            let value_start = start + "sslmode=".len();
            spans.push((value_start, value_start + value.len()));
        }
        start += pair.len() + 1;
    }
    spans
}

/// The byte ranges of the `sslmode` values of a `host=… sslmode=…` string, read as tokio-postgres
/// reads it (a value is quoted with `'` or runs to the next whitespace; `\` escapes). A value
/// with an escape is left as is (tokio-postgres then refuses it if it names a verifying mode).
fn key_value_sslmodes(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    let skip_ws = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    loop {
        i = skip_ws(i);
        let key_start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'=' {
            i += 1;
        }
        if i == key_start {
            return spans;
        }
        let key = &text[key_start..i];
        i = skip_ws(i);
        if bytes.get(i) != Some(&b'=') {
            return spans;
        }
        i = skip_ws(i + 1);
        let quoted = bytes.get(i) == Some(&b'\'');
        let value_start = if quoted { i + 1 } else { i };
        let mut escaped = false;
        i = value_start;
        while i < bytes.len() {
            let byte = bytes[i];
            if byte == b'\\' {
                escaped = true;
                i += 2;
                continue;
            }
            if (quoted && byte == b'\'') || (!quoted && byte.is_ascii_whitespace()) {
                break;
            }
            i += 1;
        }
        let value_end = i.min(bytes.len());
        if key == "sslmode" && !escaped {
            spans.push((value_start, value_end));
        }
        if quoted {
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(url: &str) -> SslMode {
        parse_url(url).unwrap_or_else(|e| panic!("{url}: {e}")).1
    }

    #[test]
    fn every_libpq_mode_is_read_from_both_url_forms() {
        assert_eq!(mode("postgres://u@h/d"), SslMode::Prefer, "libpq's default");
        assert_eq!(mode("postgres://u@h/d?sslmode=disable"), SslMode::Disable);
        assert_eq!(mode("postgres://u@h/d?sslmode=require"), SslMode::Require);
        assert_eq!(mode("postgres://u@h/d?application_name=x&sslmode=verify-ca"), SslMode::VerifyCa);
        assert_eq!(mode("postgresql://u:p%40ss@h:5432/d?sslmode=verify-full&connect_timeout=3"), SslMode::VerifyFull);
        assert_eq!(mode("postgres://u@h/d?sslmode=verify-full&sslmode=disable"), SslMode::Disable, "the last wins");
        assert_eq!(mode("host=h user=u sslmode=verify-full"), SslMode::VerifyFull);
        assert_eq!(mode("host=h sslmode = 'verify-ca' user=u"), SslMode::VerifyCa);
        assert_eq!(mode("host=h password='a sslmode=verify-full' sslmode=require"), SslMode::Require);
        assert_eq!(mode("host=h sslmode=disable"), SslMode::Disable);
        let (config, _) = parse_url(r"host=h password='it\'s' dbname=d sslmode=verify-full").unwrap();
        assert_eq!(config.get_password(), Some(&b"it's"[..]));
        assert_eq!(config.get_dbname(), Some("d"));
        assert_eq!(config.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
    }

    #[test]
    fn a_password_that_looks_like_a_mode_is_left_alone() {
        let (config, mode) = parse_url("postgres://u:sslmode=verify-full@h/d").unwrap();
        assert_eq!(mode, SslMode::Prefer);
        assert_eq!(config.get_password(), Some(&b"sslmode=verify-full"[..]));
        let (config, mode) = parse_url(r"host=h password=sslmode=verify-full").unwrap();
        assert_eq!(mode, SslMode::Prefer);
        assert_eq!(config.get_password(), Some(&b"sslmode=verify-full"[..]));
    }

    #[test]
    fn bad_settings_are_errors_not_panics() {
        assert!(matches!(parse_url("postgres://u@h/d?sslmode=verify"), Err(PgTlsError::BadUrl(_))));
        assert!(matches!(prepare("postgres://u@h/d", Some(b"not pem")), Err(PgTlsError::NoCaCertificate)));
        let garbage = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(prepare("postgres://u@h/d", Some(garbage)), Err(PgTlsError::BadCa(_))));
        let ca = rcgen_ca();
        assert!(matches!(prepare("postgres://u@h/d?sslmode=disable", Some(&ca)), Err(PgTlsError::CaWithoutTls)));
        assert!(prepare("postgres://u@h/d?sslmode=verify-full", Some(&ca)).is_ok());
        assert!(prepare("postgres://u@h/d?sslmode=require", None).is_ok());
    }

    /// A self-signed CA certificate, PEM.
    fn rcgen_ca() -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).unwrap().pem().into_bytes()
    }
}
