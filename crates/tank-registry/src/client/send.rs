//! The credential boundary: every request to a registry, and every GET to its token realm,
//! is sent here, and here alone it is decided which request carries which `Authorization`.
//!
//! Invariant: **credentials never leave the registry's host, scheme and port.** A registry's
//! token or Basic header is attached only to a request (or redirect hop) whose origin is the
//! registry endpoint's own ([`same_origin`]); a redirect elsewhere is followed without it, a
//! redirect from HTTPS to plain HTTP is refused ([`redirect::check_redirect`]), and a 401 is
//! answered only when it came from the registry's origin.
//!
//! The one exception is the token request, by design and as Docker does: the realm named by
//! the registry's own challenge (which may be another host) is asked by [`crate::auth`] with
//! the realm as the origin ([`Client::send_following_redirects`]), so it gets the registry's
//! Basic credentials (or, in the OAuth2 POST of `auth::token`, its identity token), and never
//! a token. An HTTPS registry's plain-HTTP realm is refused before that
//! ([`redirect::check_realm`]).
//!
//! Requests with a body are sent once per attempt, without following redirects. Retries are
//! [`crate::retry`]'s.

use std::time::SystemTime;

use reqwest::header::{
    AUTHORIZATION, CONTENT_LENGTH, HeaderMap, HeaderValue, LOCATION, WWW_AUTHENTICATE,
};
use reqwest::{Method, Response, StatusCode};
use tracing::debug;
use url::Url;

use crate::client::{ErrorBody, Target};
use crate::endpoint::redacted;
use crate::push::Payload;
use crate::redirect::{self, same_origin};
use crate::{Client, Error, body, progress};

/// The most redirects followed for one request.
pub(crate) const MAX_REDIRECTS: u32 = 10;

/// One request as [`Client::send`] sends it (and sends again on a 401 or a retry).
pub(crate) struct Outgoing<'a> {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) headers: HeaderMap,
    pub(crate) payload: Payload<'a>,
}

impl Client {
    /// A GET for `target` with authentication, redirects and retries of 429, 5xx and
    /// connection failures. Returns the last response (any status but a 401 from the registry)
    /// and the URL that gave it.
    pub(super) async fn get(
        &self,
        target: &Target,
        url: &Url,
        headers: &HeaderMap,
    ) -> Result<(Response, Url), Error> {
        let request = Outgoing {
            method: Method::GET,
            url: url.clone(),
            headers: headers.clone(),
            payload: Payload::None,
        };
        self.send(target, &request).await
    }

    /// Sends `request` for `target` with authentication and retries of 429, 5xx and connection
    /// failures (only for requests that are safe to repeat). Returns the last response (any
    /// status but a 401 from the registry) and the URL that gave it.
    pub(crate) async fn send(
        &self,
        target: &Target,
        request: &Outgoing<'_>,
    ) -> Result<(Response, Url), Error> {
        self.retrying_up_to(&target.registry, target.retries, || {
            self.send_authorized(target, request)
        })
        .await
    }

    /// One attempt: the request with the cached authorization; on a 401 from the registry,
    /// answer its challenge and send the request once more (re-opening its body).
    pub(crate) async fn send_authorized(
        &self,
        target: &Target,
        request: &Outgoing<'_>,
    ) -> Result<(Response, Url), Error> {
        let cached =
            self.inner
                .auth
                .authorization(&target.registry, &target.scope, SystemTime::now());
        let (mut response, final_url) = self.send_raw(target, request, cached.as_ref()).await?;
        if response.status() != StatusCode::UNAUTHORIZED
            || !same_origin(&final_url, &target.endpoint)
        {
            return Ok((response, final_url));
        }
        if cached.is_some() {
            self.inner.auth.forget(&target.registry, &target.scope);
        }
        let challenges = www_authenticate(response.headers());
        let refusal = ErrorBody::read(&mut response).await;
        let fresh = self.authenticate(target, challenges, &refusal).await?;
        let (mut response, final_url) = self.send_raw(target, request, Some(&fresh)).await?;
        if response.status() == StatusCode::UNAUTHORIZED
            && same_origin(&final_url, &target.endpoint)
        {
            self.inner.auth.forget(&target.registry, &target.scope);
            let refusal = ErrorBody::read(&mut response).await;
            return Err(Error::Unauthorized {
                registry: target.registry.clone(),
                repository: target.repository.clone(),
                message: refusal.describe("the registry refused the credentials it asked for"),
            });
        }
        Ok((response, final_url))
    }

    /// Sends `request` once with `authorization` (attached only on the registry's own host).
    /// Requests without a body follow redirects; requests with one do not (the body would have
    /// to be sent again).
    async fn send_raw(
        &self,
        target: &Target,
        request: &Outgoing<'_>,
        authorization: Option<&HeaderValue>,
    ) -> Result<(Response, Url), Error> {
        if matches!(request.payload, Payload::None) {
            return self
                .send_following_redirects(
                    request.method.clone(),
                    &target.registry,
                    &target.endpoint,
                    &request.url,
                    &request.headers,
                    authorization,
                )
                .await;
        }
        let upload = progress::UploadCounter::new(request.payload.length());
        let (body, length) = request.payload.body(&upload).await?;
        let mut builder = self
            .http_for(&request.url)?
            .request(request.method.clone(), request.url.clone())
            .headers(request.headers.clone())
            .header(CONTENT_LENGTH, length)
            .body(body);
        let authorized = match authorization {
            Some(value) if same_origin(&request.url, &target.endpoint) => {
                builder = builder.header(AUTHORIZATION, value.clone());
                true
            }
            _ => false,
        };
        debug!(method = %request.method, url = %redacted(&request.url), length, authorized, "sending");
        match progress::answer(self.rules(), Some(&upload), builder.send()).await {
            Ok(response) => Ok((response, request.url.clone())),
            Err(interrupted) => Err(request.payload.source_failure().unwrap_or_else(|| {
                body::interrupted_error(interrupted, &target.registry, &redacted(&request.url), 1)
            })),
        }
    }

    /// Sends a bodiless request (GET, HEAD) and follows up to [`MAX_REDIRECTS`] redirects by
    /// hand. `authorization` is attached only to hops on the origin (scheme, host, port) of
    /// `auth_endpoint`; every other header to all hops. When `auth_endpoint` is `https://`, a
    /// redirect to plain HTTP is refused ([`redirect::check_redirect`]).
    pub(crate) async fn send_following_redirects(
        &self,
        method: Method,
        registry: &str,
        auth_endpoint: &Url,
        url: &Url,
        headers: &HeaderMap,
        authorization: Option<&HeaderValue>,
    ) -> Result<(Response, Url), Error> {
        let mut current = url.clone();
        for hop in 0..=MAX_REDIRECTS {
            let mut request = self
                .http_for(&current)?
                .request(method.clone(), current.clone())
                .headers(headers.clone());
            let authorized = match authorization {
                Some(value) if same_origin(&current, auth_endpoint) => {
                    request = request.header(AUTHORIZATION, value.clone());
                    true
                }
                _ => false,
            };
            debug!(%method, url = %redacted(&current), hop, authorized, "sending");
            let response = progress::answer(self.rules(), None, request.send())
                .await
                .map_err(|interrupted| {
                    body::interrupted_error(interrupted, registry, &redacted(&current), 1)
                })?;
            if !is_redirect(response.status()) {
                return Ok((response, current));
            }
            let location = response
                .headers()
                .get(LOCATION)
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
            let next = location
                .as_deref()
                .and_then(|location| current.join(location).ok());
            match next {
                Some(next) if matches!(next.scheme(), "http" | "https") => {
                    redirect::check_redirect(registry, auth_endpoint, &current, &next)?;
                    debug!(from = %redacted(&current), to = %redacted(&next), "redirected");
                    current = next;
                }
                _ => {
                    return Err(Error::InvalidRedirect {
                        url: redacted(&current),
                        location,
                    });
                }
            }
        }
        Err(Error::TooManyRedirects {
            url: redacted(url),
            limit: MAX_REDIRECTS,
        })
    }
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// Every `WWW-Authenticate` header, as text.
fn www_authenticate(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .collect()
}
