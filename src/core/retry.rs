//! When to try a push again: exponential backoff with full jitter, bounded, honouring the
//! server's `Retry-After`; and how each outcome of a push request is classified: whose fault it
//! can be (the server's or the way to it, never an op's, unless one op is pinned down as the
//! cause, `push_engine.rs`).
//!
//! Pure functions over numbers so the engine can be tested with a fake clock and a seeded random
//! source, and so the table of reactions is one readable `match`.

/// The `retry` options: delays grow as `base_ms * 2^attempt`, capped at `max_ms`; an operation
/// that failed `max_attempts` times for reasons of its own (a transient rejection, a failure
/// pinned on it) is dead-lettered. Outages never count; `max_age_ms`, when set, dead-letters an
/// op older than that which an outage keeps from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base_ms: u64,
    pub max_ms: u64,
    pub max_attempts: u32,
    pub max_age_ms: Option<u64>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { base_ms: 1_000, max_ms: 60_000, max_attempts: 10, max_age_ms: None }
    }
}

/// The longest wait a server's `Retry-After` can impose (a day): beyond it, assume a mistake.
pub const MAX_RETRY_AFTER_MS: u64 = 24 * 60 * 60 * 1000;

impl RetryPolicy {
    /// The ceiling of the jitter window after `attempt` failures (1 = first failure).
    pub fn window_ms(&self, attempt: u32) -> u64 {
        let exponent = attempt.saturating_sub(1).min(63);
        self.base_ms.saturating_mul(1u64 << exponent).min(self.max_ms)
    }

    /// The delay before the next try: uniform in `[0, window]` ("full jitter", so retrying
    /// clients spread out), but never shorter than the server's `Retry-After`.
    /// `random` is a uniform sample in `[0, 1)`.
    pub fn delay_ms(&self, attempt: u32, random: f64, retry_after_ms: Option<u64>) -> u64 {
        let random = if random.is_finite() { random.clamp(0.0, 1.0) } else { 0.0 };
        let jittered = (self.window_ms(attempt) as f64 * random) as u64;
        match retry_after_ms {
            Some(wait) => jittered.max(wait.min(MAX_RETRY_AFTER_MS)),
            None => jittered,
        }
    }

    /// Whether an operation that has now failed `attempts` times goes to the dead letters.
    pub fn exhausted(&self, attempts: u32) -> bool {
        attempts >= self.max_attempts
    }

    /// Whether an op queued at `created_at` has waited past `max_age_ms` by `now`.
    pub fn too_old(&self, created_at: f64, now: f64) -> bool {
        self.max_age_ms.is_some_and(|age| now - created_at >= age as f64)
    }
}

/// `Retry-After` in milliseconds from `now_ms`: delta-seconds (`120`) or an IMF-fixdate
/// (`Wed, 21 Oct 2026 07:28:00 GMT`). `None` when absent or unreadable.
pub fn parse_retry_after(header: &str, now_ms: f64) -> Option<u64> {
    let header = header.trim();
    if let Ok(seconds) = header.parse::<u64>() {
        return Some(seconds.saturating_mul(1000));
    }
    let at_ms = parse_imf_fixdate(header)?;
    Some((at_ms - now_ms).max(0.0) as u64)
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` → milliseconds since the epoch (`Retry-After`, `Date`).
pub fn parse_imf_fixdate(text: &str) -> Option<f64> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else { return None };
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = MONTHS.iter().position(|m| m == month)? as i64 + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let clock: Vec<i64> = time.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let [hour, minute, second] = clock.as_slice() else { return None };
    if !(1..=31).contains(&day) || !(0..24).contains(hour) || !(0..60).contains(minute) || !(0..61).contains(second) {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + hour * 3_600 + minute * 60 + second) * 1000) as f64)
}

/// How a push request ended, as far as the transport can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// An HTTP response with this status.
    Status(u16),
    /// The request failed without a response (refused, reset, DNS, CORS...).
    NetworkError,
    /// No response within `requestTimeoutMs`.
    Timeout,
    /// The browser reports it is offline.
    Offline,
}

/// What the engine does about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaction {
    /// A 2xx: read the per-mutation results (an answer that is not the protocol's is an outage).
    ReadResults,
    /// The server or the way to it is down or busy (no answer, a gateway error, 408/425/429):
    /// back off (honouring `Retry-After`) and retry, for as long as it lasts; no op is at fault.
    Outage,
    /// The server failed on this request (500, no answer in time): retry with backoff; when it
    /// repeats, bisect, in case one op makes the server fail.
    Failed,
    /// Wait for the `online` event; does not count an attempt.
    WaitForOnline,
    /// 401/403: ask `getToken` again, then retry (bounded, with backoff).
    RefreshToken,
    /// 413: the batch is too big; split it in halves.
    Split,
    /// The server refused the batch with a protocol error about its content (`POISON`,
    /// `INVALID_MUTATION`, `NOT_FOUND`...): bisect, with backoff; a lone op refused so is
    /// dead-lettered.
    Bisect,
    /// `BAD_REQUEST` for a whole batch: about one op or about the request itself. Bisect, with
    /// backoff; a lone op is dead-lettered only once another op gets through.
    BisectWithWitness,
    /// A refusal that names no op (a 4xx without the protocol's error body, as a proxy or a
    /// firewall answers; `UNSUPPORTED_PROTOCOL`): pause the queue, back off, try again.
    Refused,
}

/// The classification table of the push engine. `server_code` is the `code` of the protocol's
/// error body, when the answer has one.
pub fn classify(outcome: PushOutcome, server_code: Option<&str>) -> Reaction {
    match outcome {
        PushOutcome::Offline => Reaction::WaitForOnline,
        PushOutcome::NetworkError => Reaction::Outage,
        PushOutcome::Timeout => Reaction::Failed,
        PushOutcome::Status(status) => match (status, server_code) {
            (200..=299, _) => Reaction::ReadResults,
            (401 | 403, _) => Reaction::RefreshToken,
            (413, _) => Reaction::Split,
            (408 | 425 | 429, _) => Reaction::Outage,
            (400..=499, None | Some("UNSUPPORTED_PROTOCOL")) => Reaction::Refused,
            // A transport's `permanent` (core/transport.rs) is pinned on an op only with a
            // witness: a backend that refuses everything (a proxy, a bad deploy) is an outage.
            (400..=499, Some("BAD_REQUEST" | "TRANSPORT")) => Reaction::BisectWithWitness,
            (400..=499, Some(_)) => Reaction::Bisect,
            (500, _) => Reaction::Failed,
            // Gateway and availability errors, and anything a fetch should never return (1xx,
            // 3xx): the way to the server, not the request.
            _ => Reaction::Outage,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_double_up_to_the_cap() {
        let policy = RetryPolicy { base_ms: 100, max_ms: 1_000, max_attempts: 5, max_age_ms: None };
        let windows: Vec<u64> = (1..=6).map(|a| policy.window_ms(a)).collect();
        assert_eq!(windows, [100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(policy.window_ms(200), 1_000, "huge attempt counts do not overflow");
        assert_eq!(
            RetryPolicy { base_ms: u64::MAX, max_ms: u64::MAX, ..RetryPolicy::default() }.window_ms(9),
            u64::MAX
        );
    }

    #[test]
    fn jitter_spans_the_window_and_retry_after_is_a_floor() {
        let policy = RetryPolicy { base_ms: 100, max_ms: 10_000, max_attempts: 5, max_age_ms: Some(1_000) };
        assert_eq!(policy.delay_ms(3, 0.0, None), 0);
        assert!(!policy.too_old(500.0, 1_499.0) && policy.too_old(500.0, 1_500.0));
        assert!(!RetryPolicy::default().too_old(0.0, f64::MAX), "no age limit by default");
        assert_eq!(policy.delay_ms(3, 0.5, None), 200);
        assert_eq!(policy.delay_ms(3, 0.5, Some(5_000)), 5_000);
        assert_eq!(policy.delay_ms(3, 0.999, Some(1)), 399);
        assert_eq!(policy.delay_ms(1, f64::NAN, None), 0);
        assert_eq!(policy.delay_ms(1, 0.0, Some(u64::MAX)), MAX_RETRY_AFTER_MS);
        assert!(!policy.exhausted(4) && policy.exhausted(5));
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        assert_eq!(parse_retry_after(" 120 ", 0.0), Some(120_000));
        // RFC 9110's example date is 784111777 seconds after the epoch.
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_777_000.0 - 2_000.0), Some(2_000));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 900_000_000_000.0),
            Some(0),
            "past dates mean now"
        );
        for bad in [
            "",
            "soon",
            "-5",
            "1.5",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:00:00 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, 0.0), None, "{bad}");
        }
    }

    #[test]
    fn classification_table() {
        use PushOutcome::*;
        let wharf = Some("INVALID_MUTATION");
        let cases = [
            (Status(200), None, Reaction::ReadResults),
            (Status(204), None, Reaction::ReadResults),
            (Status(401), wharf, Reaction::RefreshToken),
            (Status(403), None, Reaction::RefreshToken),
            (Status(413), None, Reaction::Split),
            (Status(408), None, Reaction::Outage),
            (Status(425), None, Reaction::Outage),
            (Status(429), wharf, Reaction::Outage),
            (Status(400), Some("BAD_REQUEST"), Reaction::BisectWithWitness),
            (Status(422), Some("POISON"), Reaction::Bisect),
            (Status(422), wharf, Reaction::Bisect),
            (Status(409), wharf, Reaction::Bisect),
            (Status(400), Some("UNSUPPORTED_PROTOCOL"), Reaction::Refused),
            (Status(400), None, Reaction::Refused),
            (Status(404), None, Reaction::Refused),
            (Status(405), None, Reaction::Refused),
            (Status(500), None, Reaction::Failed),
            (Status(500), Some("STORAGE"), Reaction::Failed),
            (Status(502), None, Reaction::Outage),
            (Status(503), wharf, Reaction::Outage),
            (Status(504), None, Reaction::Outage),
            (Status(302), None, Reaction::Outage),
            (NetworkError, None, Reaction::Outage),
            (Timeout, None, Reaction::Failed),
            (Offline, None, Reaction::WaitForOnline),
        ];
        for (outcome, code, reaction) in cases {
            assert_eq!(classify(outcome, code), reaction, "{outcome:?} {code:?}");
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn delays_stay_within_bounds(
                base in 1u64..10_000, max in 1u64..1_000_000, attempt in 0u32..100,
                random in 0.0f64..1.0, retry_after in proptest::option::of(0u64..10_000_000),
            ) {
                let policy = RetryPolicy { base_ms: base, max_ms: max, max_attempts: 10, max_age_ms: None };
                let delay = policy.delay_ms(attempt, random, retry_after);
                let ceiling = policy.window_ms(attempt).max(retry_after.unwrap_or(0));
                prop_assert!(delay <= ceiling);
                prop_assert!(delay >= retry_after.unwrap_or(0));
                prop_assert!(policy.window_ms(attempt) <= policy.window_ms(attempt + 1));
            }

            #[test]
            fn every_status_has_a_reaction(status in 0u16..1000) {
                let reaction = classify(PushOutcome::Status(status), None);
                prop_assert_eq!(reaction == Reaction::ReadResults, (200..300).contains(&status));
            }
        }
    }
}
