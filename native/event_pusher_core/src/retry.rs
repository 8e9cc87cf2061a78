//! Retry timing shared by the backends: the backoff between attempts
//! (`base * 2^(attempt-1)` plus up to 25% jitter) and a server's
//! `Retry-After` (RFC 9110 §10.2.3).

use std::time::{Duration, SystemTime};

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

/// The wait a `Retry-After` value asks for at `now`: delay-seconds or an
/// HTTP-date (a date in the past is no wait). `None` when the value is
/// neither, as RFC 9110 says to ignore it then.
pub fn retry_after(value: &[u8], now: SystemTime) -> Option<Duration> {
    let text = std::str::from_utf8(value).ok()?.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for u64: as long as anyone could mean.
        return Some(Duration::from_secs(text.parse().unwrap_or(u64::MAX)));
    }
    let date = httpdate::parse_http_date(text).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
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

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").expect("date");
        let wait = |v: &str| retry_after(v.as_bytes(), now);
        assert_eq!(wait("1"), Some(Duration::from_secs(1)));
        assert_eq!(wait(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(wait("0"), Some(Duration::ZERO));
        assert_eq!(
            wait("99999999999999999999999"),
            Some(Duration::from_secs(u64::MAX))
        );
        // IMF-fixdate, RFC 850 and asctime forms.
        assert_eq!(
            wait("Sun, 06 Nov 1994 08:49:42 GMT"),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            wait("Sunday, 06-Nov-94 08:50:37 GMT"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            wait("Sun Nov  6 08:49:38 1994"),
            Some(Duration::from_secs(1))
        );
        assert_eq!(wait("Sun, 06 Nov 1994 08:49:00 GMT"), Some(Duration::ZERO));
        for bad in ["", "-1", "1.5", "soon", "\u{e9}"] {
            assert_eq!(wait(bad), None, "{bad:?}");
        }
    }
}
