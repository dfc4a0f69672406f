//! Operation ids: ULIDs (48-bit millisecond time + 80 random bits, Crockford base32).
//!
//! Ids are unique across tabs and devices and sort by creation time as plain strings, which keeps
//! logs, dead letters and server-side dedupe tables readable. Within one generator they are
//! strictly increasing even when the wall clock stalls or steps backwards.

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const RANDOM_BITS: u32 = 80;
const RANDOM_MASK: u128 = (1u128 << RANDOM_BITS) - 1;
const MAX_TIME: u64 = (1u64 << 48) - 1;

/// A ULID operation id, always 26 Crockford base32 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct OpId(String);

impl OpId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn encode(value: u128) -> OpId {
        // Pushed as chars (the alphabet is ASCII): no UTF-8 check, and no panic path to carry.
        let mut out = String::with_capacity(26);
        for i in 0..26 {
            let shift = 5 * (25 - i);
            out.push(char::from(ALPHABET[((value >> shift) & 31) as usize]));
        }
        OpId(out)
    }
}

impl std::fmt::Display for OpId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// SplitMix64: a tiny, fast, seedable generator. Good for spreading ULID bits, jitter and
/// reproducible fault schedules; not for secrets.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// A uniform sample in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Generates strictly increasing ULIDs from a clock reading supplied by the caller.
#[derive(Debug, Clone)]
pub struct OpIdGenerator {
    rng: SplitMix64,
    last_time: u64,
    last_random: u128,
}

impl OpIdGenerator {
    /// `seed` should come from a cryptographic source (the platform passes `crypto.getRandomValues`).
    pub fn new(seed: u64) -> Self {
        OpIdGenerator { rng: SplitMix64(seed), last_time: 0, last_random: 0 }
    }

    /// The next id for wall-clock time `now_ms` (milliseconds since the Unix epoch).
    pub fn next_id(&mut self, now_ms: f64) -> OpId {
        let now = if now_ms.is_finite() && now_ms > 0.0 { (now_ms as u64).min(MAX_TIME) } else { 0 };
        if now > self.last_time {
            self.last_time = now;
            let high = u128::from(self.rng.next_u64() & 0xFFFF);
            self.last_random = (high << 64) | u128::from(self.rng.next_u64());
        } else if self.last_random == RANDOM_MASK {
            // 2^80 ids in one millisecond cannot happen; borrow the next millisecond to stay monotonic.
            self.last_time = (self.last_time + 1).min(MAX_TIME);
            self.last_random = 0;
        } else {
            self.last_random += 1;
        }
        OpId::encode((u128::from(self.last_time) << RANDOM_BITS) | self.last_random)
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Accepts only the canonical upper-case ULID form this module produces.
    fn is_ulid(text: &str) -> bool {
        text.len() == 26 && text.bytes().all(|b| ALPHABET.contains(&b)) && text.as_bytes()[0] <= b'7'
    }

    #[test]
    fn ids_are_26_crockford_chars_and_parse_back() {
        let mut g = OpIdGenerator::new(42);
        let id = g.next_id(1_700_000_000_000.0);
        assert_eq!(id.as_str().len(), 26);
        assert!(is_ulid(id.as_str()));
        assert!(!is_ulid("not-a-ulid"));
        assert!(!is_ulid(&id.as_str().to_lowercase()));
    }

    #[test]
    fn time_prefix_encodes_the_clock() {
        let mut g = OpIdGenerator::new(1);
        // The ULID spec's example id 01ARYZ6S41TSV4RRFFQ69G5FAV has time 1469918176385.
        assert_eq!(&g.next_id(1_469_918_176_385.0).as_str()[..10], "01ARYZ6S41");
    }

    #[test]
    fn same_millisecond_and_backwards_clock_still_increase() {
        let mut g = OpIdGenerator::new(7);
        let a = g.next_id(1000.0);
        let b = g.next_id(1000.0);
        let c = g.next_id(999.0);
        let d = g.next_id(f64::NAN);
        assert!(a < b && b < c && c < d);
    }

    #[test]
    fn random_overflow_borrows_next_millisecond() {
        let mut g = OpIdGenerator::new(7);
        let a = g.next_id(1000.0);
        g.last_random = RANDOM_MASK;
        let b = g.next_id(1000.0);
        assert!(a < b);
        assert_eq!(g.last_time, 1001);
    }

    #[test]
    fn uniform_samples_stay_in_the_unit_interval_and_replay_from_the_seed() {
        let mut a = SplitMix64::new(9);
        let samples: Vec<f64> = (0..1000).map(|_| a.next_f64()).collect();
        assert!(samples.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        assert!((0.4..0.6).contains(&mean), "{mean}");
        let mut b = SplitMix64::new(9);
        assert!(samples.iter().all(|x| *x == b.next_f64()), "same seed, same sequence");
    }

    #[test]
    fn different_seeds_give_different_ids() {
        let a = OpIdGenerator::new(1).next_id(5.0);
        let b = OpIdGenerator::new(2).next_id(5.0);
        assert_ne!(a, b);
    }

    proptest! {
        #[test]
        fn any_clock_sequence_yields_strictly_increasing_ids(
            seed in any::<u64>(),
            clock in proptest::collection::vec(0u64..2_000_000_000_000, 1..200),
        ) {
            let mut g = OpIdGenerator::new(seed);
            let mut last: Option<OpId> = None;
            for t in clock {
                let id = g.next_id(t as f64);
                prop_assert!(is_ulid(id.as_str()));
                if let Some(prev) = &last { prop_assert!(prev < &id, "{prev} !< {id}"); }
                last = Some(id);
            }
        }
    }
}
