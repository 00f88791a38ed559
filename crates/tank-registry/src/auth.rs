//! What the client remembers about authentication: bearer tokens per (registry, scope) until
//! they expire, Basic headers a registry took, and looked-up credentials. Also the token endpoint's answer and its expiry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use reqwest::header::HeaderValue;
use serde::Deserialize;

use crate::credentials::Credential;

/// How long before its stated expiry a token stops being used, so that it does not expire
/// between being picked and reaching the registry.
const EXPIRY_MARGIN: Duration = Duration::from_secs(5);

/// The lifetime of a token whose answer states none (the Docker token spec's default), and
/// the shortest lifetime taken from an answer: the spec says a token is never issued with
/// less (a token that does expire sooner is refused with a 401, and a new one fetched).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);

/// The longest lifetime taken from an answer (24 hours): registries issue tokens for minutes;
/// a larger `expires_in` (up to `1e308`) is clamped here so that no time arithmetic can
/// overflow and a token is not reused for longer than a day.
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// (registry, scope) or (registry, repository).
type Key = (String, String);

/// The outcome of one credential lookup, shared by the requests that need it.
pub(crate) type LookedUp = Arc<Option<Credential>>;

/// A bearer token ready to send, and until when to use it.
struct CachedToken {
    header: HeaderValue,
    usable_until: SystemTime,
}

/// The client's authentication memory. Every entry belongs to one registry; nothing here is
/// ever sent to another host.
#[derive(Default)]
pub(crate) struct AuthCache {
    /// Bearer tokens by (registry, scope).
    tokens: Mutex<HashMap<Key, CachedToken>>,
    /// The Basic `Authorization` value for (registry, scope) where the registry challenged
    /// with Basic.
    basic: Mutex<HashMap<Key, HeaderValue>>,
    /// Credentials looked up so far, by (registry, repository) (`None`: the store has none).
    credentials: Mutex<HashMap<Key, LookedUp>>,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The maps stay consistent even if a holder panicked: every update is one insert/remove.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl AuthCache {
    /// The `Authorization` value to send proactively to `registry` for `scope`: a token that
    /// has not expired, else the Basic header the registry took before, else nothing.
    pub(crate) fn authorization(
        &self,
        registry: &str,
        scope: &str,
        now: SystemTime,
    ) -> Option<HeaderValue> {
        let key = (registry.to_owned(), scope.to_owned());
        {
            let mut tokens = locked(&self.tokens);
            match tokens.get(&key) {
                Some(token) if token.usable_until > now => return Some(token.header.clone()),
                Some(_) => {
                    tokens.remove(&key);
                }
                None => {}
            }
        }
        locked(&self.basic).get(&key).cloned()
    }

    /// Remembers a token for (registry, scope) until `usable_until`.
    pub(crate) fn store_token(
        &self,
        registry: &str,
        scope: &str,
        header: HeaderValue,
        usable_until: SystemTime,
    ) {
        locked(&self.tokens).insert(
            (registry.to_owned(), scope.to_owned()),
            CachedToken {
                header,
                usable_until,
            },
        );
    }

    /// Remembers that `registry` takes this Basic header for `scope`.
    pub(crate) fn store_basic(&self, registry: &str, scope: &str, header: HeaderValue) {
        locked(&self.basic).insert((registry.to_owned(), scope.to_owned()), header);
    }

    /// Forgets what was sent to `registry` for `scope` and refused.
    pub(crate) fn forget(&self, registry: &str, scope: &str) {
        let key = (registry.to_owned(), scope.to_owned());
        locked(&self.tokens).remove(&key);
        locked(&self.basic).remove(&key);
    }

    /// A credential looked up before for `repository` in `registry`.
    pub(crate) fn credential(&self, registry: &str, repository: &str) -> Option<LookedUp> {
        locked(&self.credentials)
            .get(&(registry.to_owned(), repository.to_owned()))
            .cloned()
    }

    /// Remembers the outcome of a credential lookup.
    pub(crate) fn store_credential(&self, registry: &str, repository: &str, credential: LookedUp) {
        locked(&self.credentials).insert((registry.to_owned(), repository.to_owned()), credential);
    }
}

/// The scopes to ask a token for: those of the registry's challenge (when it named any), with
/// the client's own `needed` scopes merged in, so that one token serves the whole operation
/// (a challenge to a `HEAD` may name only `pull` where a push follows; a mount's challenge may
/// leave out the source repository). Scopes for the same resource merge their actions.
/// Space-separated, challenge order first.
pub(crate) fn merge_scopes(challenge: Option<&str>, needed: &str) -> String {
    // (resource type and name, actions); scopes that do not parse are kept verbatim.
    let mut merged: Vec<(String, Vec<String>)> = Vec::new();
    let all = challenge
        .unwrap_or_default()
        .split_ascii_whitespace()
        .chain(needed.split_ascii_whitespace());
    for scope in all {
        let Some((resource, actions)) = scope
            .rsplit_once(':')
            .filter(|(resource, _)| resource.contains(':'))
        else {
            if !merged
                .iter()
                .any(|(known, actions)| actions.is_empty() && known == scope)
            {
                merged.push((scope.to_owned(), Vec::new()));
            }
            continue;
        };
        let actions = actions.split(',').filter(|action| !action.is_empty());
        match merged
            .iter_mut()
            .find(|(known, known_actions)| known == resource && !known_actions.is_empty())
        {
            Some((_, known_actions)) => {
                for action in actions {
                    if !known_actions.iter().any(|known| known == action) {
                        known_actions.push(action.to_owned());
                    }
                }
            }
            None => merged.push((resource.to_owned(), actions.map(str::to_owned).collect())),
        }
    }
    merged
        .into_iter()
        .map(|(resource, actions)| {
            if actions.is_empty() {
                resource
            } else {
                format!("{resource}:{}", actions.join(","))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `Basic base64(username:password)`, marked sensitive so that it never shows in logs.
pub(crate) fn basic_header(username: &str, password: &str) -> Option<HeaderValue> {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    sensitive_header(&format!("Basic {encoded}"))
}

/// `Bearer <token>`, marked sensitive.
pub(crate) fn bearer_header(token: &str) -> Option<HeaderValue> {
    sensitive_header(&format!("Bearer {token}"))
}

fn sensitive_header(value: &str) -> Option<HeaderValue> {
    let mut header = HeaderValue::from_str(value).ok()?;
    header.set_sensitive(true);
    Some(header)
}

/// The token endpoint's answer (Docker token spec and its OAuth2 variant).
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<serde_json::Value>,
    issued_at: Option<serde_json::Value>,
}

impl TokenResponse {
    /// `token`, else `access_token` (empty strings count as absent).
    pub(crate) fn token(&self) -> Option<&str> {
        [&self.token, &self.access_token]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .find(|token| !token.is_empty())
    }

    /// Until when the token may be used: `issued_at` (or `now` when absent, unreadable or in
    /// the future) plus `expires_in` (60 s when absent, zero, negative or unreadable; clamped
    /// to [60 s, 24 h]), less a small margin. Never panics, whatever the numbers.
    pub(crate) fn usable_until(&self, now: SystemTime) -> SystemTime {
        let lifetime = self
            .expires_in
            .as_ref()
            .and_then(lifetime_seconds)
            .map_or(DEFAULT_LIFETIME, |seconds| {
                Duration::from_secs(seconds).clamp(DEFAULT_LIFETIME, MAX_LIFETIME)
            });
        let issued = self
            .issued_at
            .as_ref()
            .and_then(serde_json::Value::as_str)
            .and_then(parse_rfc3339)
            .filter(|issued| *issued <= now)
            .unwrap_or(now);
        issued
            .checked_add(lifetime)
            .and_then(|end| end.checked_sub(EXPIRY_MARGIN))
            .unwrap_or(issued)
    }
}

/// A positive `expires_in` as whole seconds (saturating at `u64::MAX`); `None` for zero,
/// negative, non-finite or non-numeric values.
fn lifetime_seconds(value: &serde_json::Value) -> Option<u64> {
    let seconds = match value.as_u64() {
        Some(seconds) => seconds,
        None => {
            let seconds = value.as_f64()?;
            if seconds.is_nan() || seconds < 1.0 {
                return None;
            }
            // `as` saturates: 1e19 and 1e308 become u64::MAX, clamped by the caller.
            seconds as u64
        }
    };
    (seconds > 0).then_some(seconds)
}

/// Parses an RFC 3339 timestamp (`2006-01-02T15:04:05.999Z`, or with a `±hh:mm` offset).
fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let bytes = text.as_bytes();
    if bytes.len() < 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return None;
    }
    if !matches!(bytes[10], b'T' | b't' | b' ') {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        if !part.bytes().all(|byte| byte.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &text[19..];
    let mut nanos = 0u32;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let mut scaled = String::from(&fraction[..digits.min(9)]);
        while scaled.len() < 9 {
            scaled.push('0');
        }
        nanos = scaled.parse().ok()?;
        rest = &fraction[digits..];
    }
    let offset_seconds = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let hours: i64 = rest.get(1..3)?.parse().ok()?;
            let minutes: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (hours * 3600 + minutes * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    let seconds = u64::try_from(seconds).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::new(seconds, nanos))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn rfc3339_timestamps_parse() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(at(0)));
        assert_eq!(parse_rfc3339("2000-03-01T00:00:00Z"), Some(at(951_868_800)));
        assert_eq!(
            parse_rfc3339("2024-02-29T12:34:56Z"),
            Some(at(1_709_210_096))
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T12:34:56.25Z"),
            Some(at(1_709_210_096) + Duration::from_millis(250))
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T14:34:56+02:00"),
            Some(at(1_709_210_096))
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T10:04:56-02:30"),
            Some(at(1_709_210_096))
        );
        for bad in [
            "",
            "2024-02-29",
            "2024-02-29T12:34:56",
            "2024-13-01T00:00:00Z",
            "2024-02-29T25:00:00Z",
            "2024-02-29T12:34:56.Z",
            "2024-02-29T12:34:56+0200",
            "20x4-02-29T12:34:56Z",
            "1960-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    fn response(json: &str) -> TokenResponse {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn token_or_access_token() {
        assert_eq!(response(r#"{"token":"a"}"#).token(), Some("a"));
        assert_eq!(response(r#"{"access_token":"b"}"#).token(), Some("b"));
        assert_eq!(
            response(r#"{"token":"a","access_token":"b"}"#).token(),
            Some("a")
        );
        assert_eq!(
            response(r#"{"token":"","access_token":"b"}"#).token(),
            Some("b")
        );
        assert_eq!(response(r#"{"token":""}"#).token(), None);
        assert_eq!(response(r#"{}"#).token(), None);
    }

    #[test]
    fn expiry_from_expires_in_and_issued_at() {
        let now = at(1_709_210_096);
        assert_eq!(
            response(r#"{"token":"a"}"#).usable_until(now),
            now + Duration::from_secs(55)
        );
        assert_eq!(
            response(r#"{"token":"a","expires_in":300}"#).usable_until(now),
            now + Duration::from_secs(295)
        );
        assert_eq!(
            response(r#"{"token":"a","expires_in":300,"issued_at":"2024-02-29T12:33:56Z"}"#)
                .usable_until(now),
            now + Duration::from_secs(235)
        );
        // Issued long ago: already unusable.
        assert!(
            response(r#"{"token":"a","expires_in":300,"issued_at":"2000-01-01T00:00:00Z"}"#)
                .usable_until(now)
                < now
        );
        // Issued "in the future" (clock skew): counted from now.
        assert_eq!(
            response(r#"{"token":"a","expires_in":300,"issued_at":"2030-01-01T00:00:00Z"}"#)
                .usable_until(now),
            now + Duration::from_secs(295)
        );
        // Zero, negative or unreadable lifetimes mean the default.
        for json in [
            r#"{"token":"a","expires_in":0}"#,
            r#"{"token":"a","expires_in":-5}"#,
            r#"{"token":"a","expires_in":"soon"}"#,
        ] {
            assert_eq!(
                response(json).usable_until(now),
                now + Duration::from_secs(55),
                "{json}"
            );
        }
    }

    #[test]
    fn hostile_lifetimes_are_clamped_and_never_panic() {
        let now = at(1_709_210_096);
        let day = now + MAX_LIFETIME - EXPIRY_MARGIN;
        let minute = now + Duration::from_secs(55);
        let cases = [
            // 1e19 seconds overflowed SystemTime (a panic, exit 101) before the clamp.
            (r#"{"token":"a","expires_in":1e19}"#, day),
            (r#"{"token":"a","expires_in":18446744073709551615}"#, day),
            (r#"{"token":"a","expires_in":1e308}"#, day),
            (r#"{"token":"a","expires_in":99999999999999999999999}"#, day),
            (r#"{"token":"a","expires_in":86401}"#, day),
            (r#"{"token":"a","expires_in":86400}"#, day),
            (r#"{"token":"a","expires_in":-1}"#, minute),
            (r#"{"token":"a","expires_in":-1e308}"#, minute),
            (r#"{"token":"a","expires_in":0.5}"#, minute),
            (r#"{"token":"a","expires_in":1}"#, minute),
            (r#"{"token":"a","expires_in":null}"#, minute),
            (r#"{"token":"a","expires_in":[300]}"#, minute),
            (
                r#"{"token":"a","expires_in":300.9}"#,
                now + Duration::from_secs(295),
            ),
            // Issued in the far future (clock skew or hostile): counted from now.
            (
                r#"{"token":"a","expires_in":1e19,"issued_at":"9999-12-31T23:59:60.999999999Z"}"#,
                day,
            ),
            (
                r#"{"token":"a","expires_in":300,"issued_at":"9999-12-31T23:59:59+23:59"}"#,
                now + Duration::from_secs(295),
            ),
            // Before the epoch or unreadable: counted from now.
            (
                r#"{"token":"a","expires_in":300,"issued_at":"0000-01-01T00:00:00-99:99"}"#,
                now + Duration::from_secs(295),
            ),
            (
                r#"{"token":"a","expires_in":300,"issued_at":12345678901234567890}"#,
                now + Duration::from_secs(295),
            ),
        ];
        for (json, expected) in cases {
            assert_eq!(response(json).usable_until(now), expected, "{json}");
        }
        // Issued at the epoch with the largest lifetime: long unusable, no underflow.
        let old = response(r#"{"token":"a","expires_in":1e19,"issued_at":"1970-01-01T00:00:00Z"}"#);
        assert_eq!(old.usable_until(now), at(86_400 - 5));
        // And at the limits of SystemTime itself.
        let _ = response(r#"{"token":"a","expires_in":1e19}"#).usable_until(SystemTime::UNIX_EPOCH);
    }

    #[test]
    fn scopes_merge_by_resource() {
        let check = |challenge: Option<&str>, needed: &str, expected: &str| {
            assert_eq!(
                merge_scopes(challenge, needed),
                expected,
                "{challenge:?} + {needed:?}"
            );
        };
        check(None, "repository:a:pull", "repository:a:pull");
        check(
            Some("repository:a:pull"),
            "repository:a:pull",
            "repository:a:pull",
        );
        check(
            Some("repository:a:pull"),
            "repository:a:pull,push",
            "repository:a:pull,push",
        );
        check(
            Some("repository:a:push,pull"),
            "repository:a:pull,push repository:b:pull",
            "repository:a:push,pull repository:b:pull",
        );
        check(
            Some("repository:other:pull"),
            "repository:a:pull",
            "repository:other:pull repository:a:pull",
        );
        check(
            Some("registry:catalog:*"),
            "repository:a:pull",
            "registry:catalog:* repository:a:pull",
        );
        // A scope without resource type and actions is kept verbatim.
        check(Some("odd"), "repository:a:pull", "odd repository:a:pull");
    }

    #[test]
    fn cache_hands_out_tokens_until_expiry_and_per_scope() {
        let cache = AuthCache::default();
        let now = at(1000);
        let token = bearer_header("t1").unwrap();
        cache.store_token(
            "r.example",
            "repository:a:pull",
            token.clone(),
            now + Duration::from_secs(10),
        );
        assert_eq!(
            cache.authorization("r.example", "repository:a:pull", now),
            Some(token)
        );
        assert_eq!(
            cache.authorization("r.example", "repository:b:pull", now),
            None
        );
        assert_eq!(
            cache.authorization("other.example", "repository:a:pull", now),
            None
        );
        assert_eq!(
            cache.authorization(
                "r.example",
                "repository:a:pull",
                now + Duration::from_secs(10)
            ),
            None
        );

        let basic = basic_header("user", "pass").unwrap();
        assert_eq!(basic.to_str().unwrap(), "Basic dXNlcjpwYXNz");
        assert!(basic.is_sensitive());
        cache.store_basic("r.example", "repository:b:pull", basic.clone());
        assert_eq!(
            cache.authorization("r.example", "repository:b:pull", now),
            Some(basic)
        );
        assert_eq!(
            cache.authorization("r.example", "repository:c:pull", now),
            None
        );
        cache.forget("r.example", "repository:b:pull");
        assert_eq!(
            cache.authorization("r.example", "repository:b:pull", now),
            None
        );
    }
}
