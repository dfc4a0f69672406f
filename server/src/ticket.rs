//! Live tickets: short-lived, single-use credentials for the `/live` WebSocket. Browsers cannot
//! set headers on a WebSocket, so its credential has to travel in the URL, where proxies and
//! access logs may keep it; a long-lived JWT there would outlive the log's retention. So a client
//! trades its bearer token for a ticket (`POST /live/ticket`, authenticated and origin-checked like
//! `/push`) and opens `/live?ticket=…` with it. A ticket is worth little once logged: it expires
//! after [`TICKET_TTL`], opens one socket, and only ever as the principal it was issued to.
//!
//! A ticket is `t1.<payload>.<mac>` (base64url, no padding): the payload is
//! `<expiry, ms since the epoch>.<random nonce>.<principal>` and the mac its HMAC-SHA256 under the
//! server's ticket key. The key is random per process unless `--ticket-secret` gives one: several
//! instances behind a load balancer need the same secret, or a ticket issued by one is refused by
//! the others. Stateless on purpose: no table to write on every socket opened, nothing to prune.
//! Single use is enforced per instance, in memory (nonces seen, forgotten once expired), so with
//! several instances a leaked ticket could open at most one socket per instance within its
//! lifetime: an accepted bound for a 30-second credential that only receives pokes (cursors,
//! never data).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use thiserror::Error;

use crate::auth::{Grant, Principal};

/// How long a ticket opens a socket after it was issued.
pub const TICKET_TTL: Duration = Duration::from_secs(30);
/// Shortest `--ticket-secret` accepted.
pub const MIN_TICKET_SECRET_BYTES: usize = 32;
/// The format's tag: a later format gets another, and tickets of this one are refused then.
const VERSION: &str = "t1";
/// Domain separation: the key signs tickets and nothing else, even if an operator reuses it.
const CONTEXT: &[u8] = b"wharf live ticket\0";
/// Most unexpired used nonces remembered; past it, tickets are refused (503-like) until some
/// expire. Only valid, unexpired tickets get there, each issued to an authenticated caller.
const MAX_REMEMBERED: usize = 200_000;

/// Why a ticket does not open the socket (answered 401).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TicketError {
    #[error("malformed ticket")]
    Malformed,
    #[error("the ticket's signature does not verify (altered, or issued by a server with another --ticket-secret)")]
    Forged,
    #[error("the ticket has expired: get a new one from POST /live/ticket")]
    Expired,
    #[error("the ticket was used already: a ticket opens one socket")]
    Used,
    #[error("too many tickets in use at once: try again shortly")]
    Busy,
    #[error("the ticket's principal is no longer accepted by this server's authentication")]
    Revoked,
    #[error("the system's random number generator failed")]
    Random,
}

/// Why the ticket settings cannot be used (the server does not start).
#[derive(Debug, Error)]
pub enum TicketSetupError {
    #[error("--ticket-secret must be at least {MIN_TICKET_SECRET_BYTES} bytes (it is {0})")]
    TooShort(usize),
    #[error("the system's random number generator failed")]
    Random,
}

/// Issues and redeems tickets with one key.
pub struct Tickets {
    key: hmac::Key,
    random: SystemRandom,
    ttl: Duration,
    used: Mutex<Used>,
}

/// The nonces of redeemed tickets, with their expiry (ms), and when the expired ones were last
/// forgotten (at most once a second, so a burst of sockets does not scan them all each time).
#[derive(Default)]
struct Used {
    nonces: HashMap<String, u64>,
    pruned_at: u64,
}

impl std::fmt::Debug for Tickets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tickets").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Tickets {
    /// Tickets living `ttl`, signed with `secret` (`--ticket-secret`), or with a random key of this
    /// process when `None`.
    pub fn new(secret: Option<&str>, ttl: Duration) -> Result<Tickets, TicketSetupError> {
        let random = SystemRandom::new();
        let key = match secret {
            Some(secret) if secret.len() < MIN_TICKET_SECRET_BYTES => {
                return Err(TicketSetupError::TooShort(secret.len()))
            }
            Some(secret) => hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
            None => hmac::Key::generate(hmac::HMAC_SHA256, &random).map_err(|_| TicketSetupError::Random)?,
        };
        Ok(Tickets { key, random, ttl, used: Mutex::default() })
    }

    /// How long a ticket lives.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn mac(&self, payload: &str) -> hmac::Tag {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(CONTEXT);
        context.update(VERSION.as_bytes());
        context.update(b".");
        context.update(payload.as_bytes());
        context.sign()
    }

    /// A ticket for `principal`, valid for [`Tickets::ttl`] from now.
    pub fn issue(&self, principal: &Principal) -> Result<String, TicketError> {
        let mut nonce = [0u8; 16];
        self.random.fill(&mut nonce).map_err(|_| TicketError::Random)?;
        let expires = now_ms().saturating_add(self.ttl.as_millis() as u64);
        let who = match principal {
            Principal::Anonymous => "a".to_owned(),
            Principal::Development => "d".to_owned(),
            // The grants travel with the user: the socket reads what the token could.
            Principal::User { sub, grants } => {
                let grants: Vec<(&str, bool)> = grants.iter().map(|g| (g.space.as_str(), g.write)).collect();
                format!("u:{}", serde_json::json!([sub, grants]))
            }
        };
        let payload = URL_SAFE_NO_PAD.encode(format!("{expires}.{}.{who}", URL_SAFE_NO_PAD.encode(nonce)));
        let mac = URL_SAFE_NO_PAD.encode(self.mac(&payload).as_ref());
        Ok(format!("{VERSION}.{payload}.{mac}"))
    }

    /// The principal `ticket` was issued to, if it is genuine, unexpired and unused; marks it
    /// used.
    pub fn redeem(&self, ticket: &str) -> Result<Principal, TicketError> {
        let mut parts = ticket.split('.');
        let (Some(VERSION), Some(payload), Some(mac), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TicketError::Malformed);
        };
        let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| TicketError::Malformed)?;
        let mut message = Vec::with_capacity(CONTEXT.len() + VERSION.len() + 1 + payload.len());
        message.extend_from_slice(CONTEXT);
        message.extend_from_slice(VERSION.as_bytes());
        message.push(b'.');
        message.extend_from_slice(payload.as_bytes());
        // Constant time, and before anything in the payload is believed.
        hmac::verify(&self.key, &message, &mac).map_err(|_| TicketError::Forged)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| TicketError::Malformed)?;
        let payload = String::from_utf8(payload).map_err(|_| TicketError::Malformed)?;
        let mut fields = payload.splitn(3, '.');
        let (Some(expires), Some(nonce), Some(who)) = (fields.next(), fields.next(), fields.next()) else {
            return Err(TicketError::Malformed);
        };
        let expires: u64 = expires.parse().map_err(|_| TicketError::Malformed)?;
        let principal = match who {
            "a" => Principal::Anonymous,
            "d" => Principal::Development,
            _ => match who.strip_prefix("u:").map(serde_json::from_str::<(String, Vec<(String, bool)>)>) {
                Some(Ok((sub, grants))) if !sub.is_empty() => Principal::User {
                    sub,
                    grants: grants.into_iter().map(|(space, write)| Grant { space, write }).collect(),
                },
                _ => return Err(TicketError::Malformed),
            },
        };
        let now = now_ms();
        if now >= expires {
            return Err(TicketError::Expired);
        }
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        if now >= used.pruned_at.saturating_add(1000) {
            used.nonces.retain(|_, expiry| *expiry > now);
            used.pruned_at = now;
        }
        if used.nonces.contains_key(nonce) {
            return Err(TicketError::Used);
        }
        if used.nonces.len() >= MAX_REMEMBERED {
            return Err(TicketError::Busy);
        }
        used.nonces.insert(nonce.to_owned(), expires);
        Ok(principal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a ticket secret of at least 32 bytes";

    #[test]
    fn a_ticket_opens_once_as_its_principal() {
        let tickets = Tickets::new(Some(SECRET), TICKET_TTL).unwrap();
        let granted =
            Principal::User { sub: "ada.l@x".to_owned(), grants: vec![Grant { space: "team".into(), write: true }] };
        for principal in [Principal::Anonymous, Principal::Development, Principal::jwt_user("ada.l@x"), granted] {
            let ticket = tickets.issue(&principal).unwrap();
            assert!(ticket.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)), "URL-safe: {ticket}");
            assert_eq!(tickets.redeem(&ticket), Ok(principal));
            assert_eq!(tickets.redeem(&ticket), Err(TicketError::Used));
        }
    }

    #[test]
    fn another_key_an_altered_payload_expiry_and_garbage_are_refused() {
        let tickets = Tickets::new(Some(SECRET), TICKET_TTL).unwrap();
        let ticket = tickets.issue(&Principal::jwt_user("ada")).unwrap();
        let other = Tickets::new(None, TICKET_TTL).unwrap();
        assert_eq!(other.redeem(&ticket), Err(TicketError::Forged));
        // The same MAC over a payload naming someone else.
        let parts: Vec<&str> = ticket.split('.').collect();
        let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert!(payload.contains(r#"u:["ada""#), "{payload}");
        let forged = URL_SAFE_NO_PAD.encode(payload.replace(r#"u:["ada""#, r#"u:["bob""#));
        assert_eq!(tickets.redeem(&format!("t1.{forged}.{}", parts[2])), Err(TicketError::Forged));
        for garbage in ["", "t1", "t1..", "t2.a.b", "t1.a.b.c", "t1.!!.??", &format!("{ticket}.x")] {
            assert!(matches!(tickets.redeem(garbage), Err(TicketError::Malformed | TicketError::Forged)), "{garbage}");
        }
        let short = Tickets::new(Some(SECRET), Duration::from_millis(1)).unwrap();
        let ticket = short.issue(&Principal::Development).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(short.redeem(&ticket), Err(TicketError::Expired));
        assert!(matches!(Tickets::new(Some("short"), TICKET_TTL), Err(TicketSetupError::TooShort(5))));
    }

    #[test]
    fn used_nonces_are_forgotten_once_expired() {
        let tickets = Tickets::new(None, Duration::from_millis(20)).unwrap();
        for _ in 0..3 {
            tickets.redeem(&tickets.issue(&Principal::Development).unwrap()).unwrap();
        }
        assert_eq!(tickets.used.lock().unwrap().nonces.len(), 3);
        std::thread::sleep(Duration::from_millis(1100));
        tickets.redeem(&tickets.issue(&Principal::Development).unwrap()).unwrap();
        assert_eq!(tickets.used.lock().unwrap().nonces.len(), 1, "the expired three are gone");
    }
}
