//! MongooseIM's SNS retry backoff (doc/compatibility.md §6): before the retry that leaves
//! `retry` retries of `count`, wait `2^(count - retry) * base - rand(1..base)`.
//! Counting retries from 1, that is `2^(n-1) * base - rand(1..base)` before
//! retry `n`: between 0 and `base - 1` first, then about twice as long each time.

use std::time::Duration;

/// No single wait exceeds this, whatever the configured base and retry count.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The wait before retry `n` (1 for the first retry) with base `base`.
///
/// A zero base retries at once (MongooseIM crashes there: `rand:uniform(0)`).
pub fn backoff(base: Duration, n: u32) -> Duration {
    let base_ms = u64::try_from(base.as_millis()).unwrap_or(u64::MAX);
    if base_ms == 0 {
        return Duration::ZERO;
    }
    // 2^30 ms is already far past MAX_BACKOFF.
    let exponent = n.saturating_sub(1).min(30);
    let ceiling = base_ms.saturating_mul(1u64 << exponent);
    let wait = ceiling - fastrand::u64(1..=base_ms);
    Duration::from_millis(wait).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_mongooseim_formula() {
        let base = Duration::from_millis(50);
        for (n, ceiling) in [(1u32, 50u64), (2, 100), (3, 200)] {
            for _ in 0..200 {
                let wait = backoff(base, n).as_millis() as u64;
                assert!(wait < ceiling, "retry {n}: {wait} >= {ceiling}");
                assert!(wait >= ceiling - 50, "retry {n}: {wait} < {}", ceiling - 50);
            }
        }
    }

    #[test]
    fn zero_base_retries_at_once_and_large_counts_are_capped() {
        assert_eq!(backoff(Duration::ZERO, 5), Duration::ZERO);
        assert_eq!(backoff(Duration::from_secs(10), 1000), MAX_BACKOFF);
        assert_eq!(backoff(Duration::from_millis(1), 1), Duration::ZERO);
    }
}
