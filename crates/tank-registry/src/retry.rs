//! The one retry policy: which outcomes of a request are worth another attempt (429, 5xx,
//! connection failures and stalls, but not an unknown host or an untrusted certificate),
//! after how long (`Retry-After`, else exponential backoff with jitter, capped), how often,
//! and the error once the retries are spent. The request loop ([`Client::retrying`]), the
//! blob download and manifest body loops ([`crate::client`]) and the chunked upload loop
//! ([`crate::push`]) all ask [`Policy::step`].

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Response, StatusCode};
use tracing::debug;
use url::Url;

use crate::client::status_error;
use crate::config::ClientConfig;
use crate::endpoint::redacted;
use crate::{Client, Error, tls};

/// How often and after how long one kind of request is retried.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Policy {
    /// Retries after the first attempt (so at most `max_retries + 1` attempts).
    max_retries: u32,
    /// The first backoff delay; it doubles with each retry.
    base_delay: Duration,
    /// The longest delay, also when `Retry-After` asks for more.
    max_delay: Duration,
}

/// What one attempt gave, as the policy judges it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Outcome<'a> {
    /// The server answered with this status and these headers.
    Answer(StatusCode, &'a HeaderMap),
    /// The attempt failed before or while receiving an answer.
    Failed(&'a Error),
}

/// What to do after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Try again after this delay.
    Retry(Duration),
    /// Worth retrying, but the retries are spent: the caller ends with its error for this
    /// outcome, saying how many attempts were made ([`after_attempts`] for an [`Error`]).
    Exhausted {
        /// Attempts made, this one included.
        attempts: u32,
    },
    /// Not worth retrying: the outcome stands as it is.
    Stop,
}

impl Policy {
    /// The policy of `config` with at most `max_retries` retries.
    pub(crate) fn new(config: &ClientConfig, max_retries: u32) -> Policy {
        Policy {
            max_retries,
            base_delay: config.retry_base_delay,
            max_delay: config.max_retry_delay,
        }
    }

    /// What to do after `outcome`, when `failures` attempts before it failed in a way worth
    /// retrying (a loop that sees progress may start counting again).
    pub(crate) fn step(&self, outcome: &Outcome<'_>, failures: u32) -> Step {
        match self.delay(outcome, failures) {
            Some(delay) => self.again(failures, delay),
            None => Step::Stop,
        }
    }

    /// What to do after a failure the caller itself decided to retry after `delay` (a chunk
    /// whose range the registry refused: ask it where the upload stands, at once).
    pub(crate) fn again(&self, failures: u32, delay: Duration) -> Step {
        if failures >= self.max_retries {
            Step::Exhausted {
                attempts: failures.saturating_add(1),
            }
        } else {
            Step::Retry(delay.min(self.max_delay))
        }
    }

    /// How long to wait before retrying `outcome`; `None` when it is not worth retrying.
    fn delay(&self, outcome: &Outcome<'_>, failures: u32) -> Option<Duration> {
        match outcome {
            Outcome::Answer(status, headers) if is_retryable_status(*status) => Some(
                retry_after(headers, SystemTime::now()).unwrap_or_else(|| self.backoff(failures)),
            ),
            Outcome::Answer(..) => None,
            // A host name that does not resolve will not resolve on a retry either, nor will
            // a certificate become trusted.
            Outcome::Failed(Error::Unreachable { source, .. })
                if is_unknown_host(source.as_ref())
                    || tls::is_certificate_error(source.as_ref()) =>
            {
                None
            }
            Outcome::Failed(Error::Unreachable { .. } | Error::Stalled { .. }) => {
                Some(self.backoff(failures))
            }
            Outcome::Failed(_) => None,
        }
    }

    /// The backoff delay after `failures` failures.
    fn backoff(&self, failures: u32) -> Duration {
        backoff(failures, self.base_delay, self.max_delay)
    }
}

impl Client {
    /// The retry policy of this client's settings, with at most `max_retries` retries.
    pub(crate) fn retry_policy(&self, max_retries: u32) -> Policy {
        Policy::new(self.config(), max_retries)
    }

    /// Runs `attempt` until it gives something other than 429, 5xx or a connection failure,
    /// or [`ClientConfig::max_retries`] retries are spent.
    pub(crate) async fn retrying<F, Fut>(
        &self,
        registry: &str,
        attempt: F,
    ) -> Result<(Response, Url), Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<(Response, Url), Error>>,
    {
        self.retrying_up_to(registry, self.config().max_retries, attempt)
            .await
    }

    /// [`Client::retrying`] with at most `max_retries` retries. A 429 or 5xx that outlasts
    /// them ends as [`Error::Status`], a connection failure or stall as itself with its
    /// attempts counted.
    pub(crate) async fn retrying_up_to<F, Fut>(
        &self,
        registry: &str,
        max_retries: u32,
        mut attempt: F,
    ) -> Result<(Response, Url), Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<(Response, Url), Error>>,
    {
        let policy = self.retry_policy(max_retries);
        let mut failures = 0u32;
        loop {
            let result = attempt().await;
            let step = match &result {
                Ok((response, _)) => policy.step(
                    &Outcome::Answer(response.status(), response.headers()),
                    failures,
                ),
                Err(error) => policy.step(&Outcome::Failed(error), failures),
            };
            let delay = match step {
                Step::Retry(delay) => delay,
                Step::Stop => return result,
                Step::Exhausted { attempts } => {
                    return match result {
                        Ok((mut response, final_url)) => {
                            Err(status_error(&final_url, &mut response, attempts).await)
                        }
                        Err(error) => Err(after_attempts(error, attempts)),
                    };
                }
            };
            failures += 1;
            match &result {
                Ok((response, final_url)) => {
                    debug!(%registry, url = %redacted(final_url), status = response.status().as_u16(), ?delay, retry = failures, "retrying")
                }
                Err(error) => debug!(%registry, %error, ?delay, retry = failures, "retrying"),
            }
            drop(result);
            self.config().sleeper.sleep(delay).await;
        }
    }
}

/// The delay before retry number `retry` (0 for the first): `base * 2^retry`, capped at `max`,
/// then drawn at random from its upper half so that many clients do not retry in step.
fn backoff(retry: u32, base: Duration, max: Duration) -> Duration {
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
fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
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
fn is_retryable_status(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// Whether a request failed because the host name does not exist (not a temporary DNS
/// failure, which is worth retrying). reqwest has no typed DNS error, so this reads the
/// resolver's message in the error chain.
fn is_unknown_host(error: &(dyn std::error::Error + 'static)) -> bool {
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

    /// A policy with 3 retries, backoff from 1 s, delays capped at 30 s.
    fn policy() -> Policy {
        Policy {
            max_retries: 3,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
        }
    }

    /// A connection failure whose cause says `message`.
    fn unreachable(message: &str) -> Error {
        Error::Unreachable {
            registry: "r.example".to_owned(),
            url: "https://r.example/v2/".to_owned(),
            attempts: 1,
            source: message.into(),
        }
    }

    #[test]
    fn retryable_answers_wait_for_retry_after_or_back_off_within_the_cap() {
        let policy = policy();
        let none = HeaderMap::new();
        for status in [429, 500, 502, 503, 504] {
            let status = StatusCode::from_u16(status).unwrap();
            match policy.step(&Outcome::Answer(status, &none), 2) {
                Step::Retry(delay) => assert!(
                    delay >= Duration::from_secs(2) && delay <= Duration::from_secs(4),
                    "{status}: {delay:?}"
                ),
                other => panic!("{status}: {other:?}"),
            }
        }
        let too_many = StatusCode::TOO_MANY_REQUESTS;
        assert_eq!(
            policy.step(&Outcome::Answer(too_many, &headers("7")), 0),
            Step::Retry(Duration::from_secs(7))
        );
        assert_eq!(
            policy.step(&Outcome::Answer(too_many, &headers("3600")), 0),
            Step::Retry(Duration::from_secs(30)),
            "Retry-After is capped"
        );
    }

    #[test]
    fn other_answers_and_errors_stop_at_once() {
        let policy = policy();
        let none = HeaderMap::new();
        for status in [200, 201, 202, 206, 301, 400, 401, 403, 404, 416] {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(
                policy.step(&Outcome::Answer(status, &none), 0),
                Step::Stop,
                "{status}"
            );
        }
        let refused = Error::InvalidRealm {
            registry: "r.example".to_owned(),
            realm: "x".to_owned(),
        };
        assert_eq!(policy.step(&Outcome::Failed(&refused), 0), Step::Stop);
    }

    #[test]
    fn connection_failures_and_stalls_are_retried_but_not_unknown_hosts_or_certificates() {
        let policy = policy();
        let reset = unreachable("connection reset by peer");
        assert!(matches!(
            policy.step(&Outcome::Failed(&reset), 0),
            Step::Retry(_)
        ));
        let temporary = unreachable("dns error: Temporary failure in name resolution");
        assert!(matches!(
            policy.step(&Outcome::Failed(&temporary), 0),
            Step::Retry(_)
        ));
        let stalled = Error::Stalled {
            registry: "r.example".to_owned(),
            url: "https://r.example/v2/".to_owned(),
            stall: crate::Stall::Document {
                timeout: Duration::from_secs(1),
            },
            attempts: 1,
        };
        assert!(matches!(
            policy.step(&Outcome::Failed(&stalled), 0),
            Step::Retry(_)
        ));
        // Decided once for every loop (the chunked upload used to retry certificate errors,
        // the request loop did not): neither an unknown host nor an untrusted certificate
        // changes on a retry.
        let unknown = unreachable("dns error: failed to lookup address information");
        assert_eq!(policy.step(&Outcome::Failed(&unknown), 0), Step::Stop);
        let certificate = unreachable("invalid peer certificate: UnknownIssuer");
        assert_eq!(policy.step(&Outcome::Failed(&certificate), 0), Step::Stop);
    }

    #[test]
    fn retries_are_counted_and_exhaustion_names_every_attempt() {
        let policy = policy();
        let unavailable = Outcome::Answer(StatusCode::SERVICE_UNAVAILABLE, &headers("1"));
        for failures in 0..3 {
            assert_eq!(
                policy.step(&unavailable, failures),
                Step::Retry(Duration::from_secs(1))
            );
        }
        assert_eq!(
            policy.step(&unavailable, 3),
            Step::Exhausted { attempts: 4 }
        );
        assert_eq!(policy.again(2, Duration::ZERO), Step::Retry(Duration::ZERO));
        assert_eq!(
            policy.again(3, Duration::ZERO),
            Step::Exhausted { attempts: 4 }
        );
        let none = Policy {
            max_retries: 0,
            ..policy
        };
        assert_eq!(none.step(&unavailable, 0), Step::Exhausted { attempts: 1 });

        let exhausted = after_attempts(unreachable("connection reset by peer"), 4);
        assert!(matches!(exhausted, Error::Unreachable { attempts: 4, .. }));
        let other = after_attempts(
            Error::InvalidRealm {
                registry: "r.example".to_owned(),
                realm: "x".to_owned(),
            },
            4,
        );
        assert!(matches!(other, Error::InvalidRealm { .. }));
    }
}
