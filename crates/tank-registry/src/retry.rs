//! Retry timing: exponential backoff with jitter, and `Retry-After`.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::Error;

/// The delay before retry number `retry` (0 for the first): `base * 2^retry`, capped at `max`,
/// then drawn at random from its upper half so that many clients do not retry in step.
pub(crate) fn backoff(retry: u32, base: Duration, max: Duration) -> Duration {
    let factor = 1u32.checked_shl(retry.min(30)).unwrap_or(u32::MAX);
    let full = base.saturating_mul(factor).min(max);
    let half = full / 2;
    let spread = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    let jitter = if spread == 0 {
        0
    } else {
        random_u64() % (spread + 1)
    };
    half + Duration::from_nanos(jitter)
}

/// A random number without a dependency: std's `RandomState` is seeded per instance.
fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|since| since.subsec_nanos())
        .unwrap_or(0);
    hasher.write_u32(nanos);
    hasher.finish()
}

/// The delay a `Retry-After` header asks for: delta-seconds or an HTTP-date (a date in the
/// past means no delay). `None` when absent or unreadable.
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The error a request ends with once its retries are spent: a connection failure or a
/// stall records how many attempts were made; any other error is returned as is.
pub(crate) fn after_attempts(error: Error, attempts: u32) -> Error {
    match error {
        Error::Unreachable {
            registry,
            url,
            source,
            ..
        } => Error::Unreachable {
            registry,
            url,
            attempts,
            source,
        },
        Error::Stalled {
            registry,
            url,
            stall,
            ..
        } => Error::Stalled {
            registry,
            url,
            attempts,
            stall,
        },
        other => other,
    }
}

/// 429 and 5xx: answers worth another attempt.
pub(crate) fn is_retryable_status(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// Whether a request failed because the host name does not exist (not a temporary DNS
/// failure, which is worth retrying). reqwest has no typed DNS error, so this reads the
/// resolver's message in the error chain.
pub(crate) fn is_unknown_host(error: &reqwest::Error) -> bool {
    let mut chain = String::new();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        chain.push_str(&current.to_string());
        chain.push('\n');
        cause = current.source();
    }
    chain.contains("dns error") && !chain.contains("Temporary failure")
}

#[cfg(test)]
mod tests {
    use super::*;

    use reqwest::header::HeaderValue;

    #[test]
    fn backoff_doubles_within_jitter_and_stops_at_the_cap() {
        let base = Duration::from_millis(200);
        let max = Duration::from_secs(2);
        let expected_full = [200, 400, 800, 1600, 2000, 2000, 2000];
        for (retry, full) in expected_full.into_iter().enumerate() {
            let full = Duration::from_millis(full);
            for _ in 0..50 {
                let delay = backoff(retry as u32, base, max);
                assert!(
                    delay >= full / 2 && delay <= full,
                    "retry {retry}: {delay:?} vs {full:?}"
                );
            }
        }
        let huge = backoff(u32::MAX, base, max);
        assert!(huge <= max && huge >= max / 2);
        assert_eq!(backoff(3, Duration::ZERO, max), Duration::ZERO);
    }

    #[test]
    fn backoff_is_not_constant() {
        let delays: std::collections::HashSet<Duration> = (0..20)
            .map(|_| backoff(4, Duration::from_secs(1), Duration::from_secs(60)))
            .collect();
        assert!(delays.len() > 1, "jitter produced one value: {delays:?}");
    }

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(
            retry_after(&headers("7"), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(retry_after(&headers(" 0 "), now), Some(Duration::ZERO));
        // 784111777 is Sun, 06 Nov 1994 08:49:37 GMT.
        assert_eq!(
            retry_after(&headers("Sun, 06 Nov 1994 08:50:07 GMT"), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after(&headers("Sun, 06 Nov 1994 08:00:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&headers("-3"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }
}
