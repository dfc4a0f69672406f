//! Who is asking: authentication turns the bearer token of a request into a [`Principal`]. It is
//! its own layer, below the request helpers of `config.rs`, because what a token proves is a
//! security decision that must be made in exactly one place, the same way for `/push`, `/pull`,
//! `/live` and `/debug/*`.
//!
//! Three ways to authenticate, any of which may be configured (the first that accepts a token
//! wins):
//! - **JWT** (`--jwt-secret` for HS256, `--jwt-public-key` for RS256 or ES256): the signature,
//!   `exp` and `nbf` (with [`CLOCK_SKEW_SECS`] of leeway) and, when configured, `iss` and `aud`
//!   are verified; the token's `sub` is the user. A token must carry `exp` and `sub`; its
//!   optional `spaces` claim grants shared spaces (see [`Grant`]).
//! - **The static development token** (`--token`): its principal is the fixed user
//!   [`DEVELOPMENT_USER`].
//! - **Nothing configured**: every request is [`Principal::Anonymous`] (and `main.rs` refuses to
//!   listen beyond loopback without `--insecure`).
//!
//! The `/live` WebSocket also accepts a *ticket* (`ticket.rs`): a short-lived credential issued
//! to a principal authenticated here, redeemed by [`Authenticator::redeem_ticket`].
//!
//! The algorithm a key is used with is fixed by the key (an HMAC secret for HS256, an RSA key for
//! RS256, a P-256 key for ES256), never by the token's header, so a token cannot pick a weaker
//! check (the classic "HS256 signed with the RSA public key" confusion fails).

use std::collections::{BTreeMap, HashSet};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use thiserror::Error;
use wharf::core::protocol::is_space_name;

use crate::ticket::{TicketError, Tickets, TICKET_TTL};

/// The user of the static development token (`--token`).
pub const DEVELOPMENT_USER: &str = "development";
/// The user every request is when no authentication is configured.
pub const ANONYMOUS_USER: &str = "anonymous";
/// How far `exp` and `nbf` may be off (clocks of the issuer and the server disagree a little).
pub const CLOCK_SKEW_SECS: u64 = 30;
/// Shortest HS256 secret accepted: shorter ones can be brute-forced from one token.
pub const MIN_SECRET_BYTES: usize = 32;
/// Longest `sub` accepted (it becomes a key in the database).
pub const MAX_SUBJECT_BYTES: usize = 255;
/// Most shared spaces one token may grant (each is one more index range in every pull).
pub const MAX_GRANTS: usize = 64;

/// Who a request is from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Principal {
    /// No authentication is configured: everyone is the same nobody.
    Anonymous,
    /// The holder of the static development token (`--token`).
    Development,
    /// The `sub` of a verified JWT, with the shared spaces its `spaces` claim grants (sorted by
    /// name, each name once).
    User { sub: String, grants: Vec<Grant> },
}

/// A shared space granted by a token's `spaces` claim: `{"spaces": {"team-acme": "rw",
/// "news": "r"}}` grants reading and writing `team-acme` and reading `news`. The names are those
/// clients write in `Mutation::space` and pull with `spaces=` (docs/protocol.md, "Spaces").
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Grant {
    pub space: String,
    /// `"rw"`: the space may be written too (`"r"`: read only).
    pub write: bool,
}

impl Principal {
    /// A JWT user with no shared space.
    pub fn jwt_user(sub: impl Into<String>) -> Principal {
        Principal::User { sub: sub.into(), grants: Vec::new() }
    }
}

impl Principal {
    /// The user's name: the JWT's `sub`, [`DEVELOPMENT_USER`] or [`ANONYMOUS_USER`].
    pub fn user(&self) -> &str {
        match self {
            Principal::Anonymous => ANONYMOUS_USER,
            Principal::Development => DEVELOPMENT_USER,
            Principal::User { sub, .. } => sub,
        }
    }

    /// Whether this is a verified identity (a JWT's subject), as opposed to the shared
    /// development or anonymous principal.
    pub fn is_verified_user(&self) -> bool {
        matches!(self, Principal::User { .. })
    }
}

/// Why a request's token was refused (answered 401 `UNAUTHORIZED`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("wrong bearer token")]
    WrongToken,
    /// A JWT that does not verify: the reason, for the client's logs (never the token itself).
    #[error("invalid token: {0}")]
    InvalidJwt(String),
    /// A `/live` ticket that does not open the socket.
    #[error("invalid ticket: {0}")]
    Ticket(#[from] TicketError),
    /// `/live?token=` with anything but the development token.
    #[error(
        "only the development token is accepted in /live's URL: get a ticket from POST /live/ticket \
         (Authorization: Bearer <token>) and open /live?ticket=<ticket>"
    )]
    NotInUrl,
    /// A ticket and an `Authorization` header of two different principals.
    #[error("the ticket was issued to another principal than the Authorization header's")]
    TicketMismatch,
}

/// Why the authentication settings cannot be used (the server does not start).
#[derive(Debug, Error)]
pub enum AuthSetupError {
    #[error("--jwt-secret must be at least {MIN_SECRET_BYTES} bytes (it is {0}): a short secret can be guessed from one token")]
    SecretTooShort(usize),
    #[error("--jwt-public-key is neither an RSA nor a P-256 (EC) public key in PEM form: {0}")]
    UnreadableKey(String),
    #[error("{0} must not be empty")]
    Empty(&'static str),
}

/// What `--jwt-*` configure.
#[derive(Debug, Clone, Default)]
pub struct JwtSettings {
    /// HS256 shared secret.
    pub secret: Option<String>,
    /// RS256 (RSA) or ES256 (P-256) public key, PEM.
    pub public_key_pem: Option<Vec<u8>>,
    /// Required `iss`.
    pub issuer: Option<String>,
    /// Required `aud` (one of the token's audiences).
    pub audience: Option<String>,
}

/// A key with the one algorithm it verifies and the claim rules.
struct VerificationKey {
    key: DecodingKey,
    validation: Validation,
}

/// Verifies JWTs with the configured keys.
pub struct JwtVerifier {
    keys: Vec<VerificationKey>,
}

/// The claims the server reads; `exp`, `nbf`, `iss` and `aud` are checked by `jsonwebtoken`.
#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    #[serde(default)]
    spaces: Option<BTreeMap<String, String>>,
}

/// The grants of a `spaces` claim, or why the claim is refused (a token that says something the
/// server cannot honour is refused whole, rather than read as granting less).
fn grants(claim: Option<BTreeMap<String, String>>) -> Result<Vec<Grant>, String> {
    let claim = claim.unwrap_or_default();
    if claim.len() > MAX_GRANTS {
        return Err(format!("the spaces claim grants more than {MAX_GRANTS} spaces"));
    }
    claim
        .into_iter()
        .map(|(space, mode)| {
            if !is_space_name(&space) {
                return Err(format!(
                    "the spaces claim names {space:?}, not a space name (1 to 128 of A-Z a-z 0-9 - _ . :)"
                ));
            }
            match mode.as_str() {
                "r" => Ok(Grant { space, write: false }),
                "rw" => Ok(Grant { space, write: true }),
                _ => Err(format!("the spaces claim gives {space:?} the mode {mode:?}, not \"r\" or \"rw\"")),
            }
        })
        .collect()
}

impl JwtVerifier {
    /// The verifier `settings` describe, or `None` when they configure no key.
    pub fn new(settings: &JwtSettings) -> Result<Option<JwtVerifier>, AuthSetupError> {
        let mut keys = Vec::new();
        if let Some(secret) = &settings.secret {
            if secret.len() < MIN_SECRET_BYTES {
                return Err(AuthSetupError::SecretTooShort(secret.len()));
            }
            let key = DecodingKey::from_secret(secret.as_bytes())
                .map_err(|e| AuthSetupError::UnreadableKey(e.to_string()))?;
            keys.push(VerificationKey { key, validation: validation(Algorithm::HS256, settings)? });
        }
        if let Some(pem) = &settings.public_key_pem {
            let (key, algorithm) = match DecodingKey::from_rsa_pem(pem) {
                Ok(key) => (key, Algorithm::RS256),
                Err(rsa) => match DecodingKey::from_ec_pem(pem) {
                    Ok(key) => (key, Algorithm::ES256),
                    Err(ec) => return Err(AuthSetupError::UnreadableKey(format!("as RSA: {rsa}; as EC: {ec}"))),
                },
            };
            keys.push(VerificationKey { key, validation: validation(algorithm, settings)? });
        }
        Ok((!keys.is_empty()).then_some(JwtVerifier { keys }))
    }

    /// The algorithms accepted, for the start-up line.
    pub fn algorithms(&self) -> Vec<String> {
        self.keys.iter().flat_map(|k| k.validation.algorithms.iter().map(|a| format!("{a:?}"))).collect()
    }

    /// The principal `token` proves.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let header = decode_header(token).map_err(|_| AuthError::InvalidJwt("not a well-formed JWT".to_owned()))?;
        let Some(key) = self.keys.iter().find(|k| k.validation.algorithms.contains(&header.alg)) else {
            return Err(AuthError::InvalidJwt(format!("algorithm {:?} is not accepted here", header.alg)));
        };
        let data = decode::<Claims>(token, &key.key, &key.validation)
            .map_err(|e| AuthError::InvalidJwt(describe(e.kind())))?;
        let Some(sub) = data.claims.sub else { return Err(AuthError::InvalidJwt(describe_missing("sub"))) };
        if sub.is_empty() || sub.len() > MAX_SUBJECT_BYTES {
            return Err(AuthError::InvalidJwt(format!("sub must be 1 to {MAX_SUBJECT_BYTES} bytes")));
        }
        let grants = grants(data.claims.spaces).map_err(AuthError::InvalidJwt)?;
        Ok(Principal::User { sub, grants })
    }
}

/// The claim rules for tokens signed with `algorithm`.
fn validation(algorithm: Algorithm, settings: &JwtSettings) -> Result<Validation, AuthSetupError> {
    let mut validation = Validation::new(algorithm);
    validation.leeway = CLOCK_SKEW_SECS;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    let mut required = vec!["exp", "sub"];
    if let Some(issuer) = &settings.issuer {
        if issuer.is_empty() {
            return Err(AuthSetupError::Empty("--jwt-issuer"));
        }
        validation.set_issuer(&[issuer]);
        required.push("iss");
    }
    match &settings.audience {
        Some(audience) if audience.is_empty() => return Err(AuthSetupError::Empty("--jwt-audience")),
        Some(audience) => {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        // Without a configured audience, a token's `aud` is not checked (jsonwebtoken would
        // otherwise refuse every token that has one).
        None => validation.validate_aud = false,
    }
    validation.required_spec_claims = required.into_iter().map(str::to_owned).collect::<HashSet<_>>();
    Ok(validation)
}

/// A verification failure in words (without the token).
fn describe(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "the token has expired".to_owned(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".to_owned(),
        ErrorKind::InvalidSignature => "wrong signature".to_owned(),
        ErrorKind::InvalidAudience => "wrong audience (aud)".to_owned(),
        ErrorKind::InvalidIssuer => "wrong issuer (iss)".to_owned(),
        ErrorKind::InvalidAlgorithm => "wrong algorithm".to_owned(),
        ErrorKind::MissingRequiredClaim(claim) => describe_missing(claim),
        ErrorKind::InvalidClaimFormat(claim) => format!("the {claim} claim is malformed"),
        ErrorKind::Json(_) => {
            "malformed claims (sub must be a string, exp and nbf numbers, spaces an object of strings)".to_owned()
        }
        ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Utf8(_) => "not a well-formed JWT".to_owned(),
        other => format!("{other:?}"),
    }
}

fn describe_missing(claim: &str) -> String {
    format!("the {claim} claim is missing")
}

/// Everything that may authenticate a request: the development token, a JWT verifier, both, or
/// neither; and the `/live` tickets of the principals they prove.
pub struct Authenticator {
    token: Option<String>,
    jwt: Option<JwtVerifier>,
    tickets: Tickets,
}

impl Default for Authenticator {
    fn default() -> Authenticator {
        Authenticator::new(None, None)
    }
}

impl Authenticator {
    /// With tickets signed by a random key of this process (see [`Authenticator::with_tickets`]).
    /// Panics only if the operating system's random number generator fails.
    pub fn new(token: Option<String>, jwt: Option<JwtVerifier>) -> Authenticator {
        let tickets = Tickets::new(None, TICKET_TTL).expect("the system's random number generator works");
        Authenticator { token, jwt, tickets }
    }

    /// The same authentication, issuing and redeeming `/live` tickets with `tickets`.
    pub fn with_tickets(self, tickets: Tickets) -> Authenticator {
        Authenticator { tickets, ..self }
    }

    /// No authentication: every request is anonymous.
    pub fn none() -> Authenticator {
        Authenticator::default()
    }

    /// Only the static development token.
    pub fn token(token: &str) -> Authenticator {
        Authenticator::new(Some(token.to_owned()), None)
    }

    /// Whether any authentication is configured.
    pub fn is_configured(&self) -> bool {
        self.token.is_some() || self.jwt.is_some()
    }

    /// Whether JWTs are verified.
    pub fn verifies_jwts(&self) -> bool {
        self.jwt.is_some()
    }

    /// The principal a request presenting `bearer` (the token of `Authorization: Bearer`) is.
    pub fn authenticate(&self, bearer: Option<&str>) -> Result<Principal, AuthError> {
        if !self.is_configured() {
            return Ok(Principal::Anonymous);
        }
        let Some(presented) = bearer.filter(|b| !b.is_empty()) else { return Err(AuthError::Missing) };
        if self.token.as_deref().is_some_and(|token| same_secret(presented, token)) {
            return Ok(Principal::Development);
        }
        match &self.jwt {
            Some(jwt) => jwt.verify(presented),
            None => Err(AuthError::WrongToken),
        }
    }
}

impl Authenticator {
    /// The tickets' lifetime.
    pub fn ticket_ttl(&self) -> std::time::Duration {
        self.tickets.ttl()
    }

    /// A `/live` ticket for `principal` (authenticated by [`Authenticator::authenticate`]).
    pub fn issue_ticket(&self, principal: &Principal) -> Result<String, TicketError> {
        self.tickets.issue(principal)
    }

    /// The principal of a `/live` ticket (used up by this call), if this server would still
    /// accept that principal: a ticket of the development token stops working with `--token`
    /// gone, an anonymous one once any authentication is configured.
    pub fn redeem_ticket(&self, ticket: &str) -> Result<Principal, AuthError> {
        let principal = self.tickets.redeem(ticket)?;
        let accepted = match &principal {
            Principal::Anonymous => !self.is_configured(),
            Principal::Development => self.token.is_some(),
            Principal::User { .. } => self.jwt.is_some(),
        };
        if accepted {
            Ok(principal)
        } else {
            Err(TicketError::Revoked.into())
        }
    }

    /// The principal of `/live?token=`: only the development token (kept so that development
    /// scripts and clients older than tickets keep working with `--token`); a JWT, which would
    /// outlive the access logs that may record the URL, is refused.
    pub fn authenticate_in_url(&self, presented: &str) -> Result<Principal, AuthError> {
        match &self.token {
            Some(token) if same_secret(presented, token) => Ok(Principal::Development),
            _ if !self.is_configured() => Ok(Principal::Anonymous),
            _ => Err(AuthError::NotInUrl),
        }
    }
}

/// Constant-time comparison: the token is a secret.
pub(crate) fn same_secret(presented: &str, secret: &str) -> bool {
    presented.len() == secret.len() && presented.bytes().zip(secret.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}
