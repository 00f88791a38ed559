//! The Bearer token flow: asking the challenge's realm for a token (anonymously, with Basic
//! credentials, or with an identity token as an OAuth2 refresh token), and reading its answer
//! ([`TokenResponse`]) and expiry.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, Response, StatusCode};
use serde::Deserialize;
use tracing::debug;
use url::Url;

use crate::body::{self, Document, TOKEN_LIMIT};
use crate::client::{ErrorBody, Target};
use crate::credentials::Credential;
use crate::endpoint::redacted;
use crate::{Client, Error, progress, redirect};

use super::{basic_header, bearer_header};

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

impl Client {
    /// Asks the Bearer realm for a token: with an identity token as an OAuth2 refresh-token
    /// POST, with Basic credentials or anonymously as a GET. The realm gets the registry's
    /// Basic credentials (as Docker does), never a token.
    pub(super) async fn fetch_token(
        &self,
        target: &Target,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        credential: Option<&Credential>,
    ) -> Result<(HeaderValue, SystemTime), Error> {
        let invalid_realm = || Error::InvalidRealm {
            registry: target.registry.clone(),
            realm: realm.to_owned(),
        };
        let realm_url = Url::parse(realm).map_err(|_| invalid_realm())?;
        if !matches!(realm_url.scheme(), "http" | "https") || realm_url.host().is_none() {
            return Err(invalid_realm());
        }
        redirect::check_realm(&target.registry, &target.endpoint, &realm_url)?;
        let shown_realm = redacted(&realm_url);
        let realm_label = realm_url.host_str().unwrap_or(realm).to_owned();
        let (mut response, final_url) = match credential {
            Some(Credential::IdentityToken(refresh_token)) => {
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token.as_str()),
                    ("client_id", "tank"),
                    ("scope", scope),
                ];
                if let Some(service) = service {
                    form.push(("service", service));
                }
                debug!(registry = %target.registry, realm = %shown_realm, %scope, "requesting an oauth2 token with an identity token");
                self.retrying(&realm_label, || {
                    self.post_form(&realm_label, &realm_url, &form)
                })
                .await?
            }
            _ => {
                let mut url = realm_url.clone();
                {
                    let mut query = url.query_pairs_mut();
                    if let Some(service) = service {
                        query.append_pair("service", service);
                    }
                    for single in scope.split_ascii_whitespace() {
                        query.append_pair("scope", single);
                    }
                    if let Some(Credential::Basic { username, .. }) = credential {
                        query.append_pair("account", username);
                    }
                }
                let authorization = match credential {
                    Some(Credential::Basic { username, password }) => {
                        basic_header(username, password)
                    }
                    _ => None,
                };
                debug!(
                    registry = %target.registry,
                    realm = %shown_realm,
                    %scope,
                    with_credentials = authorization.is_some(),
                    "requesting a bearer token"
                );
                let headers = HeaderMap::new();
                self.retrying(&realm_label, || {
                    self.send_following_redirects(
                        Method::GET,
                        &realm_label,
                        &realm_url,
                        &url,
                        &headers,
                        authorization.as_ref(),
                    )
                })
                .await?
            }
        };
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let refusal = ErrorBody::read(&mut response).await;
            return Err(Error::Unauthorized {
                registry: target.registry.clone(),
                repository: target.repository.clone(),
                message: refusal.describe(&format!(
                    "the token endpoint {shown_realm} refused {} for scope {scope}",
                    if credential.is_some() {
                        "the stored credentials"
                    } else {
                        "anonymous access"
                    }
                )),
            });
        }
        if status != StatusCode::OK {
            let refusal = ErrorBody::read(&mut response).await;
            return Err(Error::TokenRequest {
                registry: target.registry.clone(),
                realm: redacted(&final_url),
                status: status.as_u16(),
                message: refusal.describe(""),
            });
        }
        let invalid =
            |reason: &'static str, source: Option<serde_json::Error>| Error::InvalidTokenResponse {
                registry: target.registry.clone(),
                realm: shown_realm.clone(),
                reason,
                source: source
                    .map(|error| Box::new(error) as Box<dyn std::error::Error + Send + Sync>),
            };
        let body = body::read_document(&mut response, TOKEN_LIMIT)
            .await
            .map_err(|failure| {
                failure.into_error(
                    Document::TokenResponse,
                    &realm_label,
                    &redacted(&final_url),
                    TOKEN_LIMIT,
                    1,
                )
            })?;
        let answer: TokenResponse = serde_json::from_slice(&body)
            .map_err(|error| invalid("the answer is not a json object", Some(error)))?;
        let token = answer
            .token()
            .ok_or_else(|| invalid("the answer has neither token nor access_token", None))?;
        let header = bearer_header(token)
            .ok_or_else(|| invalid("the token cannot be sent in an http header", None))?;
        Ok((header, answer.usable_until(SystemTime::now())))
    }

    /// Sends a form as a POST (no redirects followed: a token endpoint answers directly).
    async fn post_form(
        &self,
        label: &str,
        url: &Url,
        form: &[(&str, &str)],
    ) -> Result<(Response, Url), Error> {
        debug!(url = %redacted(url), "POST");
        let send = self.http_for(url)?.post(url.clone()).form(form).send();
        let response = progress::answer(self.rules(), None, send)
            .await
            .map_err(|interrupted| {
                body::interrupted_error(interrupted, label, &redacted(url), 1)
            })?;
        Ok((response, url.clone()))
    }
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
}
