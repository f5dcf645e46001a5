//! Back-off for `Outcome::Retry` / `Outcome::Unknown`, and a tiny seedable RNG
//! for the jitter so that the host does not need `rand`.
//!
//! ```
//! use std::time::Duration;
//! use stripe_connect::retry::{backoff, XorShift64Star};
//! let mut rng = XorShift64Star::new(42);
//! let d = backoff(3, Duration::from_millis(500), Duration::from_secs(30), None, rng.next_f64());
//! assert!(d <= Duration::from_secs(2)); // 500 ms * 2^(3-1)
//! ```

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Upper bound for a server-provided `Retry-After` that [`backoff`] honours.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The "full jitter" ceiling for `attempt` (1-based; 0 is treated as 1):
/// `min(cap, base * 2^(attempt-1))`, saturating instead of overflowing.
/// Non-decreasing in `attempt`.
pub fn backoff_ceiling(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let exp = attempt.max(1) - 1;
    let grown = if exp >= 32 { None } else { base.checked_mul(1u32 << exp) };
    match grown {
        Some(d) => d.min(cap),
        None => cap,
    }
}

/// Delay before retry number `attempt` (1 = the first retry).
///
/// * Full jitter: uniform in `[0, min(cap, base * 2^(attempt-1))]`, picked by
///   `jitter01` in `[0, 1)` (values outside, or NaN, are clamped).
/// * Never less than `retry_after` when the server sent one, but that floor is
///   itself capped at [`MAX_RETRY_AFTER`] (1 hour) so that a hostile or broken
///   header cannot park a payout for days.
/// * Never panics or overflows, for any `attempt`.
pub fn backoff(attempt: u32, base: Duration, cap: Duration, retry_after: Option<Duration>, jitter01: f64) -> Duration {
    let ceiling = backoff_ceiling(attempt, base, cap);
    let j = if jitter01.is_nan() { 0.0 } else { jitter01.clamp(0.0, 1.0) };
    let jittered = Duration::try_from_secs_f64(ceiling.as_secs_f64() * j)
        .unwrap_or(ceiling)
        .min(ceiling);
    match retry_after {
        Some(ra) => jittered.max(ra.min(MAX_RETRY_AFTER)),
        None => jittered,
    }
}

/// xorshift64* (Vigna 2014). Fast, small, **not** cryptographic: use it for
/// jitter, never for idempotency keys or anything secret.
#[derive(Debug, Clone)]
pub struct XorShift64Star {
    state: u64,
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl XorShift64Star {
    /// Deterministic generator. The seed is mixed with splitmix64, so small or
    /// similar seeds give unrelated streams, and seed 0 is fine.
    pub fn new(seed: u64) -> Self {
        let s = splitmix64(seed);
        XorShift64Star { state: if s == 0 { 0x9E37_79B9_7F4A_7C15 } else { s } }
    }

    /// Seeded from std's per-process random hasher keys, the clock and the
    /// thread id: different in every process and thread.
    pub fn from_entropy() -> Self {
        let mut h = RandomState::new().build_hasher();
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        h.write_u128(nanos);
        h.write(format!("{:?}", std::thread::current().id()).as_bytes());
        Self::new(h.finish())
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[0, 1)` with 53 bits of precision.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn bounds_full_jitter() {
        let base = 100 * MS;
        let cap = Duration::from_secs(10);
        let mut rng = XorShift64Star::new(7);
        for attempt in 0..80 {
            let ceiling = backoff_ceiling(attempt, base, cap);
            for _ in 0..200 {
                let d = backoff(attempt, base, cap, None, rng.next_f64());
                assert!(d <= ceiling, "attempt {attempt}: {d:?} > {ceiling:?}");
            }
            assert_eq!(backoff(attempt, base, cap, None, 0.0), Duration::ZERO);
            let top = backoff(attempt, base, cap, None, 0.999_999);
            assert!(top <= ceiling && top >= ceiling.mul_f64(0.999), "{top:?} {ceiling:?}");
        }
        assert_eq!(backoff_ceiling(1, base, cap), base);
        assert_eq!(backoff_ceiling(0, base, cap), base);
        assert_eq!(backoff_ceiling(2, base, cap), 2 * base);
        assert_eq!(backoff_ceiling(4, base, cap), 8 * base);
        assert_eq!(backoff_ceiling(8, base, cap), cap);
        // out-of-range jitter is clamped, not trusted
        assert_eq!(backoff(3, base, cap, None, f64::NAN), Duration::ZERO);
        assert_eq!(backoff(3, base, cap, None, -5.0), Duration::ZERO);
        assert_eq!(backoff(3, base, cap, None, 7.0), 4 * base);
    }

    #[test]
    fn ceiling_grows_monotonically_until_cap() {
        let cap = Duration::from_secs(60);
        for base in [MS, 250 * MS, Duration::from_secs(1), Duration::from_secs(100)] {
            let mut prev = Duration::ZERO;
            for attempt in 1..200 {
                let c = backoff_ceiling(attempt, base, cap);
                assert!(c >= prev, "base {base:?} attempt {attempt}");
                assert!(c <= cap);
                prev = c;
            }
            assert_eq!(prev, cap);
        }
    }

    #[test]
    fn overflow_safe_for_huge_inputs() {
        for attempt in [31, 32, 33, 63, 64, 65, 1000, u32::MAX - 1, u32::MAX] {
            for (base, cap) in [
                (Duration::from_secs(1), Duration::from_secs(30)),
                (Duration::MAX, Duration::MAX),
                (Duration::from_secs(u64::MAX / 2), Duration::MAX),
                (Duration::ZERO, Duration::from_secs(5)),
            ] {
                let c = backoff_ceiling(attempt, base, cap);
                assert!(c <= cap);
                for j in [0.0, 0.5, 0.999_999_999] {
                    let d = backoff(attempt, base, cap, Some(Duration::MAX), j);
                    assert!(d <= cap.max(MAX_RETRY_AFTER));
                }
            }
        }
        assert_eq!(backoff_ceiling(u32::MAX, Duration::from_secs(1), Duration::from_secs(30)), Duration::from_secs(30));
    }

    #[test]
    fn retry_after_is_a_floor_capped_at_one_hour() {
        let base = 100 * MS;
        let cap = Duration::from_secs(10);
        let two = Duration::from_secs(2);
        for j in [0.0, 0.1, 0.5, 0.9] {
            assert!(backoff(1, base, cap, Some(two), j) >= two);
        }
        // jitter above the floor is kept
        assert_eq!(backoff(10, base, cap, Some(two), 0.5), Duration::from_secs(5));
        // Retry-After larger than cap still wins, up to the hour
        assert_eq!(backoff(1, base, cap, Some(Duration::from_secs(120)), 0.3), Duration::from_secs(120));
        assert_eq!(backoff(1, base, cap, Some(Duration::from_secs(86_400)), 0.3), MAX_RETRY_AFTER);
        assert_eq!(backoff(1, base, cap, Some(Duration::ZERO), 0.0), Duration::ZERO);
    }

    #[test]
    fn rng_matches_reference_and_is_uniform_enough() {
        // Reference values computed independently (Python) for state = splitmix64(1).
        assert_eq!(splitmix64(1), 0x910A_2DEC_8902_5CC1);
        let mut r = XorShift64Star::new(1);
        let first: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        assert_eq!(first, [0x4B46_A55D_F361_1B9B, 0xD7E1_F141_0E76_3EF4, 0x5F14_EC66_975F_9B06]);
        // same seed, same stream; different seeds, different streams
        assert_eq!(XorShift64Star::new(9).next_u64(), XorShift64Star::new(9).next_u64());
        assert_ne!(XorShift64Star::new(9).next_u64(), XorShift64Star::new(10).next_u64());
        let mut zero = XorShift64Star::new(0);
        assert_ne!(zero.next_u64(), 0);

        let mut r = XorShift64Star::from_entropy();
        let n = 20_000;
        let mut sum = 0.0;
        let mut buckets = [0u32; 10];
        for _ in 0..n {
            let x = r.next_f64();
            assert!((0.0..1.0).contains(&x));
            sum += x;
            buckets[(x * 10.0) as usize] += 1;
        }
        let mean = sum / n as f64;
        assert!((mean - 0.5).abs() < 0.02, "mean {mean}");
        for b in buckets {
            assert!((1600..2400).contains(&b), "{buckets:?}");
        }
    }
}
