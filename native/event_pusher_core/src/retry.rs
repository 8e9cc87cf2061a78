//! Retry backoff shared by the backends: `base * 2^(attempt-1)` plus up to 25% jitter.

use std::time::Duration;

/// No single wait exceeds this, whatever the configured base and retry count.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The wait before retry number `retry` (1 for the first retry).
///
/// A zero base retries at once.
pub fn backoff(base: Duration, retry: u32) -> Duration {
    if base.is_zero() {
        return Duration::ZERO;
    }
    // 2^20 * base is already far past MAX_BACKOFF for any base >= 1 ms.
    let exponent = retry.saturating_sub(1).min(20);
    let wait = base.saturating_mul(1u32 << exponent).min(MAX_BACKOFF);
    let jitter = wait.mul_f64(fastrand::f64() * 0.25);
    (wait + jitter).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_per_retry_with_bounded_jitter() {
        let base = Duration::from_millis(100);
        for (retry, expected) in [(1, 100), (2, 200), (3, 400)] {
            for _ in 0..50 {
                let wait = backoff(base, retry).as_secs_f64() * 1000.0;
                assert!(wait >= expected as f64, "{wait} < {expected}");
                assert!(
                    wait <= expected as f64 * 1.25 + 0.001,
                    "{wait} > 1.25*{expected}"
                );
            }
        }
    }

    #[test]
    fn zero_base_retries_at_once_and_large_counts_are_capped() {
        assert_eq!(backoff(Duration::ZERO, 5), Duration::ZERO);
        assert_eq!(backoff(Duration::from_secs(10), 1000), MAX_BACKOFF);
    }
}
