//! Hybrid logical clock stamps: the order last-writer-wins uses across devices.
//!
//! A wall clock alone cannot order writes from devices whose clocks disagree: a phone five
//! minutes slow would lose every conflict it should win. A hybrid logical clock (Kulkarni et al.,
//! 2014) keeps the wall time as its physical part but never goes below a stamp it has already
//! issued or seen, so a write made after seeing another device's write always stamps later,
//! whatever the clocks say. Each stamp is `{ms:012x}{counter:04x}`: sixteen lowercase hex digits
//! that sort as plain strings. On the wire a stamp is followed by `-` and the writer's client id,
//! which breaks ties between devices and tells a client its own writes apart.

use super::json_text::quoted;

/// Length of a stamp without its node suffix.
pub const STAMP_LEN: usize = 16;
const MAX_COUNTER: u16 = u16::MAX;
/// Remote stamps further ahead of the local wall clock than this are not followed (a runaway
/// clock elsewhere must not drag every later local write into the far future).
pub const MAX_DRIFT_MS: u64 = 24 * 60 * 60 * 1000;
/// How far the device's clock may be from the server's (its `Date` header) before stamps follow
/// the server's clock instead (`WriteClock::server_time`).
pub const TRUSTED_SKEW_MS: f64 = 60_000.0;

/// The clock state of one client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Hlc {
    ms: u64,
    counter: u16,
}

impl Hlc {
    /// A stamp for a local event at wall time `now_ms`: later than every stamp issued or observed.
    pub fn tick(&mut self, now_ms: f64) -> String {
        let wall = wall_ms(now_ms);
        if wall > self.ms {
            self.ms = wall;
            self.counter = 0;
        } else if self.counter == MAX_COUNTER {
            self.ms += 1;
            self.counter = 0;
        } else {
            self.counter += 1;
        }
        self.format()
    }

    /// Takes a stamp seen elsewhere (with or without its node suffix) into account, so the next
    /// local stamp is later. Unreadable stamps and stamps more than `MAX_DRIFT_MS` ahead of
    /// `now_ms` are ignored; returns whether the clock moved.
    pub fn observe(&mut self, stamp: &str, now_ms: f64) -> bool {
        let Some(seen) = parse(stamp) else { return false };
        if seen.ms > wall_ms(now_ms).saturating_add(MAX_DRIFT_MS) || seen <= *self {
            return false;
        }
        *self = seen;
        true
    }

    /// The last stamp issued or observed.
    pub fn format(&self) -> String {
        format!("{:012x}{:04x}", self.ms, self.counter)
    }
}

fn wall_ms(now_ms: f64) -> u64 {
    if now_ms.is_finite() && now_ms > 0.0 {
        (now_ms as u64).min((1 << 48) - 1)
    } else {
        0
    }
}

/// Reads the sixteen-digit prefix of a stamp; `None` if it is not one.
pub fn parse(stamp: &str) -> Option<Hlc> {
    let head = stamp.get(..STAMP_LEN)?;
    if !head.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    let rest = &stamp[STAMP_LEN..];
    if !(rest.is_empty() || rest.starts_with('-')) {
        return None;
    }
    Some(Hlc { ms: u64::from_str_radix(&head[..12], 16).ok()?, counter: u16::from_str_radix(&head[12..], 16).ok()? })
}

/// The wire form: a local stamp followed by the writer's client id.
pub fn with_node(stamp: &str, client_id: &str) -> String {
    format!("{stamp}-{client_id}")
}

/// The client id at the end of a wire stamp, if it has one.
pub fn node_of(stamp: &str) -> Option<&str> {
    parse(stamp)?;
    stamp.get(STAMP_LEN + 1..).filter(|node| !node.is_empty())
}

/// What a server stores for a mutation's stamp: it must be a wire stamp of the pushing client
/// (else `Err`, and the mutation is refused); one more than `MAX_DRIFT_MS` ahead of the server's
/// clock is brought back to that limit, so a runaway clock cannot win every later conflict.
pub fn accepted(stamp: &str, client_id: &str, now_ms: f64) -> Result<String, String> {
    let parsed = parse(stamp).ok_or_else(|| format!("hlc {} is not a clock stamp", quoted(stamp)))?;
    if node_of(stamp) != Some(client_id) {
        return Err(format!("hlc {} does not end with \"-{client_id}\", the pushing client's id", quoted(stamp)));
    }
    let limit = wall_ms(now_ms).saturating_add(MAX_DRIFT_MS);
    if parsed.ms <= limit {
        return Ok(stamp.to_owned());
    }
    Ok(with_node(&Hlc { ms: limit, counter: 0 }.format(), client_id))
}

/// Whether wire stamp `a` is later than `b`. A missing or unreadable stamp is earlier than any
/// readable one; equal stamps from different nodes are ordered by node id, so two clients always
/// agree on the winner.
pub fn later(a: Option<&str>, b: Option<&str>) -> bool {
    fn key(stamp: Option<&str>) -> Option<(Hlc, &str)> {
        stamp.and_then(|s| parse(s).map(|hlc| (hlc, node_of(s).unwrap_or(""))))
    }
    key(a) > key(b)
}

/// What stamps and names a client's writes: its hybrid logical clock and its op id generator.
/// Local writes, conflict resolutions and dead-letter retries all draw from the one instance of
/// a database, so their stamps and ids keep increasing together.
#[derive(Debug, Clone)]
pub struct WriteClock {
    hlc: Hlc,
    ids: super::id::OpIdGenerator,
    /// Added to the device's clock: the server's time minus the device's, when they differ by
    /// more than `TRUSTED_SKEW_MS`, else 0.
    offset_ms: f64,
    /// The latest stamp observed from elsewhere (pulled, stored, in a conflict).
    remote: Hlc,
}

impl WriteClock {
    /// `seed` should come from a cryptographic source (ids must not collide across devices).
    pub fn new(seed: u64) -> WriteClock {
        WriteClock {
            hlc: Hlc::default(),
            ids: super::id::OpIdGenerator::new(seed),
            offset_ms: 0.0,
            remote: Hlc::default(),
        }
    }

    /// A stamp for a write at `now_ms`, later than every stamp issued or observed.
    pub fn stamp(&mut self, now_ms: f64) -> String {
        self.hlc.tick(now_ms + self.offset_ms)
    }

    /// A fresh op id.
    pub fn op_id(&mut self, now_ms: f64) -> String {
        self.ids.next_id(now_ms).as_str().to_owned()
    }

    /// Moves the clock past a stamp seen elsewhere (pulled, stored, or in a conflict).
    pub fn observe(&mut self, stamp: &str, now_ms: f64) -> bool {
        self.observe_from(stamp, now_ms, "")
    }

    /// `observe`, knowing this client's id: its own stamps coming back (its pushed writes, pulled
    /// again) are passed over. The clock issued them already; after `server_time` brought a
    /// runaway clock back, they must not carry it forward again.
    pub fn observe_from(&mut self, stamp: &str, now_ms: f64, own_client: &str) -> bool {
        if !own_client.is_empty() && node_of(stamp) == Some(own_client) {
            return false;
        }
        let moved = self.hlc.observe(stamp, now_ms + self.offset_ms);
        if let Some(seen) = parse(stamp).filter(|seen| seen.ms <= self.hlc.ms) {
            self.remote = self.remote.max(seen);
        }
        moved
    }

    /// Resumes from the last stamp this database stored (it may hold this device's own runaway
    /// stamps, which `server_time` can bring back).
    pub fn restore(&mut self, stamp: &str, now_ms: f64) {
        self.hlc.observe(stamp, now_ms + self.offset_ms);
    }

    /// The server said its time is `server_ms` (its `Date` header) when the device's clock said
    /// `now_ms`. A device clock off by more than `TRUSTED_SKEW_MS` is corrected by the
    /// difference, and a clock that ran ahead with it comes back: a device a year ahead would
    /// otherwise win every last-writer-wins conflict it takes part in. The clock never goes
    /// below a stamp observed from elsewhere, so a write made after seeing another still stamps
    /// later; only this device's own runaway stamps are left behind (its own writes are ordered
    /// by the server, not by stamps).
    pub fn server_time(&mut self, server_ms: f64, now_ms: f64) {
        if !server_ms.is_finite() || !now_ms.is_finite() {
            return;
        }
        let skew = server_ms - now_ms;
        self.offset_ms = if skew.abs() > TRUSTED_SKEW_MS { skew } else { 0.0 };
        let limit = Hlc { ms: wall_ms(server_ms), counter: 0 };
        if self.hlc > limit {
            self.hlc = limit.max(self.remote);
        }
    }

    /// The highest stamp issued or observed.
    pub fn last(&self) -> String {
        self.hlc.format()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stamps_follow_the_wall_clock_and_never_repeat() {
        let mut clock = Hlc::default();
        let a = clock.tick(1_000.0);
        let b = clock.tick(1_000.0);
        let c = clock.tick(900.0);
        let d = clock.tick(2_000.0);
        assert_eq!(a, "0000000003e80000");
        assert!(a < b && b < c && c < d, "{a} {b} {c} {d}");
        assert_eq!(d, "0000000007d00000");
    }

    #[test]
    fn a_remote_stamp_ahead_of_the_local_clock_is_followed() {
        let mut clock = Hlc::default();
        let remote = "0000000027100005-phone";
        assert!(clock.observe(remote, 1_000.0));
        let next = clock.tick(1_000.0);
        assert!(later(Some(&with_node(&next, "laptop")), Some(remote)), "{next}");
        assert!(!clock.observe("00000000000a0000-x", 1_000.0), "an older stamp does not move the clock");
    }

    #[test]
    fn runaway_and_unreadable_stamps_are_ignored() {
        let mut clock = Hlc::default();
        let far = format!("{:012x}0000-x", 1_000 + MAX_DRIFT_MS + 1);
        assert!(!clock.observe(&far, 1_000.0));
        for bad in
            ["", "zzzz", "0000000003e8000", "0000000003E80000", "0000000003e80000x", "\u{e9}".repeat(20).as_str()]
        {
            assert!(!clock.observe(bad, 1_000.0), "{bad:?}");
            assert_eq!(node_of(bad), None);
        }
        assert_eq!(clock, Hlc::default());
    }

    #[test]
    fn a_server_accepts_only_the_pushers_stamps_and_caps_runaway_clocks() {
        assert_eq!(accepted("0000000003e80001-a", "a", 5_000.0), Ok("0000000003e80001-a".to_owned()));
        assert!(accepted("0000000003e80001-b", "a", 5_000.0).unwrap_err().contains("\"-a\""));
        assert!(accepted("0000000003e80001", "a", 5_000.0).is_err());
        assert!(accepted("soon", "a", 5_000.0).is_err());
        let far = format!("{:012x}0007-a", 5_000 + MAX_DRIFT_MS + 99);
        assert_eq!(accepted(&far, "a", 5_000.0), Ok(format!("{:012x}0000-a", 5_000 + MAX_DRIFT_MS)));
    }

    #[test]
    fn the_counter_overflows_into_the_next_millisecond() {
        let mut clock = Hlc { ms: 5, counter: MAX_COUNTER - 1 };
        assert_eq!(clock.tick(5.0), "000000000005ffff");
        assert_eq!(clock.tick(5.0), "0000000000060000");
    }

    /// A device a year ahead stamps a year ahead until the server tells it the time; then its
    /// stamps follow the server's clock, never going below a stamp it saw from elsewhere.
    #[test]
    fn a_runaway_device_clock_follows_the_server_once_told() {
        const YEAR: f64 = 365.0 * 86_400_000.0;
        let server_now = 1_800_000_000_000.0;
        let mut clock = WriteClock::new(1);
        clock.restore(&Hlc { ms: (server_now + YEAR) as u64, counter: 3 }.format(), server_now + YEAR);
        let runaway = clock.stamp(server_now + YEAR);
        let seen = Hlc { ms: server_now as u64 + 5_000, counter: 0 }.format();
        assert!(!clock.observe(&seen, server_now + YEAR), "behind the runaway clock, yet remembered");
        clock.server_time(server_now, server_now + YEAR);
        let corrected = clock.stamp(server_now + YEAR + 10.0);
        assert!(corrected < runaway, "{corrected} < {runaway}");
        let ms = parse(&corrected).unwrap().ms as f64;
        assert!((server_now..server_now + TRUSTED_SKEW_MS).contains(&ms), "{corrected}");
        assert!(corrected.as_str() > seen.as_str(), "still after what it saw elsewhere");
        // Its own writes coming back, stamped ahead, do not hold it there.
        let mut echo = WriteClock::new(4);
        let own = with_node(&Hlc { ms: server_now as u64 + 86_400_000, counter: 0 }.format(), "me");
        assert!(!echo.observe_from(&own, server_now, "me"), "its own echo is passed over");
        echo.server_time(server_now, server_now);
        assert_eq!(parse(&echo.stamp(server_now)).unwrap().ms, server_now as u64);
        let mut other = WriteClock::new(5);
        let theirs = with_node(&Hlc { ms: server_now as u64 + 86_400_000, counter: 0 }.format(), "them");
        assert!(other.observe_from(&theirs, server_now + 86_400_000.0, "me"));
        other.server_time(server_now, server_now);
        assert!(
            parse(&other.stamp(server_now)).unwrap().ms > server_now as u64 + 86_000_000,
            "another device's stamp holds"
        );
        // A small skew is the device's own business: the hybrid clock absorbs it.
        let mut fine = WriteClock::new(2);
        fine.server_time(server_now, server_now + 30_000.0);
        assert_eq!(parse(&fine.stamp(server_now + 30_000.0)).unwrap().ms, server_now as u64 + 30_000);
        // A clock far behind is brought forward.
        let mut slow = WriteClock::new(3);
        slow.server_time(server_now, server_now - YEAR);
        assert_eq!(parse(&slow.stamp(server_now - YEAR)).unwrap().ms, server_now as u64);
        slow.server_time(f64::NAN, 0.0);
        assert_eq!(parse(&slow.stamp(server_now - YEAR + 1.0)).unwrap().ms, server_now as u64 + 1);
    }

    #[test]
    fn nodes_break_ties_and_missing_stamps_lose() {
        assert_eq!(node_of("0000000003e80000-abc"), Some("abc"));
        assert_eq!(node_of("0000000003e80000"), None);
        assert!(later(Some("0000000003e80000-b"), Some("0000000003e80000-a")));
        assert!(later(Some("0000000003e80000-a"), None));
        assert!(!later(None, Some("0000000003e80000-a")));
        assert!(!later(Some("junk"), Some("0000000003e80000-a")));
    }

    proptest! {
        /// Whatever the wall clock does and whatever is observed, each stamp is later than the
        /// previous one and than every stamp observed before it.
        #[test]
        fn stamps_are_strictly_increasing(events in prop::collection::vec((any::<bool>(), 0u64..100_000, 0u16..4), 1..200)) {
            let mut clock = Hlc::default();
            let mut last = String::new();
            for (remote, ms, counter) in events {
                if remote {
                    let stamp = format!("{ms:012x}{counter:04x}-r");
                    clock.observe(&stamp, 50_000.0);
                    if ms <= 50_000 + MAX_DRIFT_MS && stamp[..STAMP_LEN] > *last { last = stamp[..STAMP_LEN].to_owned(); }
                } else {
                    let stamp = clock.tick(ms as f64);
                    prop_assert!(stamp > last, "{stamp} after {last}");
                    last = stamp;
                }
            }
        }
    }
}
