//! [`Upload`]: one blob upload under way, the state machine of the upload protocol: a
//! monolithic `PUT` (restarted in a new session on a retry), or `PATCH` chunks continued
//! where the registry says the upload stands, then the closing `PUT …&digest=`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RANGE};
use reqwest::{Method, Response, StatusCode};
use tank_reference::Digest;
use tracing::debug;
use url::Url;

use super::source::{BlobSource, Part, Payload, Tracker};
use super::{
    Session, Started, as_push_rejection, check_stored_digest, missing_location, push_rejected,
    session_location,
};
use crate::client::{Outgoing, Target, header_text};
use crate::endpoint::redacted;
use crate::retry::{self, Outcome, Step};
use crate::{Client, Error};

/// The content type of upload requests that carry blob bytes.
const OCTET_STREAM: &str = "application/octet-stream";

/// One blob upload under way.
pub(super) struct Upload<'a> {
    pub(super) client: &'a Client,
    pub(super) target: &'a Target,
    pub(super) digest: &'a Digest,
    pub(super) size: u64,
    pub(super) source: &'a dyn BlobSource,
    pub(super) tracker: &'a Arc<Tracker>,
}

impl Upload<'_> {
    fn what(&self) -> String {
        format!("blob {}", self.digest)
    }

    /// A new upload session, without a mount.
    async fn new_session(&self) -> Result<Session, Error> {
        match self
            .client
            .start_upload(self.target, self.digest, None)
            .await?
        {
            Started::Session(session) => Ok(session),
            // Only a mount request can be answered with a mounted blob; the registry's 201
            // to a plain POST is refused by start_upload as an unexpected answer.
            Started::Mounted => Err(missing_location(&self.target.endpoint)),
        }
    }

    fn part(&self, offset: u64, length: u64) -> Payload<'_> {
        Payload::Part(Part {
            source: self.source,
            offset,
            length,
            tracker: self.tracker,
        })
    }

    /// The whole blob in one `PUT`; a retry opens a new session and sends it all again (a
    /// registry may have kept part of a broken body in the old session).
    pub(super) async fn monolithic(&self, session: Session) -> Result<(), Error> {
        let first = Mutex::new(Some(session));
        let (mut response, final_url) = self
            .client
            .retrying(&self.target.registry, || self.monolithic_attempt(&first))
            .await
            .map_err(|error| as_push_rejection(self.target, &self.what(), error))?;
        if response.status().is_success() {
            return check_stored_digest(
                self.target,
                &self.what(),
                &final_url,
                &response,
                self.digest,
            );
        }
        if let Some(error) = self.tracker.take_failure() {
            return Err(error);
        }
        Err(push_rejected(self.target, &self.what(), &final_url, &mut response, 1).await)
    }

    /// One attempt of a monolithic upload: the session given (first attempt) or a new one,
    /// then the `PUT`. Returns the answer that decides (a failed `POST`'s, else the `PUT`'s).
    async fn monolithic_attempt(
        &self,
        first: &Mutex<Option<Session>>,
    ) -> Result<(Response, Url), Error> {
        let given = first.lock().unwrap_or_else(PoisonError::into_inner).take();
        let session = match given {
            Some(session) => session,
            None => self.new_session().await?,
        };
        let mut url = session.url;
        url.query_pairs_mut()
            .append_pair("digest", &self.digest.to_string());
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(OCTET_STREAM));
        let request = Outgoing {
            method: Method::PUT,
            url,
            headers,
            payload: self.part(0, self.size),
        };
        self.client.send_authorized(self.target, &request).await
    }

    /// `PATCH` chunks of `chunk_size`, each to the `Location` of the answer before, then an
    /// empty `PUT …&digest=`.
    pub(super) async fn chunked(&self, session: Session, chunk_size: u64) -> Result<(), Error> {
        let policy = self.client.retry_policy(self.client.config().max_retries);
        let mut next: Option<Url> = Some(session.url);
        let mut offset = 0u64;
        let mut failures = 0u32;
        loop {
            let url = match next.take() {
                Some(url) => url,
                None => {
                    offset = 0;
                    self.new_session().await?.url
                }
            };
            if offset >= self.size {
                return self.finish_chunked(url).await;
            }
            let length = chunk_size.min(self.size - offset);
            let end = offset + length - 1;
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(OCTET_STREAM));
            let range = HeaderValue::from_str(&format!("{offset}-{end}"))
                .expect("digits and a dash are a valid header value");
            headers.insert("content-range", range);
            let request = Outgoing {
                method: Method::PATCH,
                url: url.clone(),
                headers,
                payload: self.part(offset, length),
            };
            let result = self.client.send_authorized(self.target, &request).await;
            let outcome = match &result {
                Ok((response, final_url)) if response.status().is_success() => {
                    let headers = response.headers();
                    let reached = match upload_range_end(headers, offset + length) {
                        Some(reached) if reached <= self.size => reached,
                        _ => {
                            return Err(Error::InvalidHeader {
                                url: redacted(final_url),
                                header: "Range",
                                value: header_text(headers, RANGE.as_str()).unwrap_or_default(),
                            });
                        }
                    };
                    next = Some(session_location(final_url, headers)?.unwrap_or(url));
                    if reached > offset {
                        failures = 0;
                    }
                    offset = reached;
                    continue;
                }
                // The registry refused the range: ask it where the upload stands, at once.
                Ok((response, _)) if response.status() == StatusCode::RANGE_NOT_SATISFIABLE => None,
                Ok((response, _)) => Some(Outcome::Answer(response.status(), response.headers())),
                Err(error) => Some(Outcome::Failed(error)),
            };
            let range_refused = outcome.is_none();
            let step = match &outcome {
                Some(outcome) => policy.step(outcome, failures),
                None => policy.again(failures, Duration::ZERO),
            };
            let delay = match step {
                Step::Retry(delay) => delay,
                Step::Stop => {
                    return match result {
                        Ok((mut response, final_url)) => {
                            if let Some(error) = self.tracker.take_failure() {
                                return Err(error);
                            }
                            Err(push_rejected(
                                self.target,
                                &self.what(),
                                &final_url,
                                &mut response,
                                failures + 1,
                            )
                            .await)
                        }
                        Err(error) => Err(error),
                    };
                }
                Step::Exhausted { attempts } => {
                    return match result {
                        Ok((mut response, final_url)) => Err(push_rejected(
                            self.target,
                            &self.what(),
                            &final_url,
                            &mut response,
                            attempts,
                        )
                        .await),
                        Err(error) => Err(retry::after_attempts(error, attempts)),
                    };
                }
            };
            failures += 1;
            drop(result);
            if range_refused {
                debug!(url = %redacted(&url), offset, "chunk range refused, asking the registry where the upload stands");
            } else {
                debug!(url = %redacted(&url), offset, ?delay, retry = failures, "chunk failed, asking the registry where the upload stands");
                self.client.config().sleeper.sleep(delay).await;
            }
            match self.upload_status(&url, offset + length).await? {
                Some((status_url, reached)) => {
                    offset = reached;
                    next = Some(status_url);
                }
                None => {
                    debug!(url = %redacted(&url), "the registry lost the upload, starting again");
                    next = None;
                }
            }
        }
    }

    /// Asks where an upload stands (`GET` on its session): the URL to continue at and the
    /// bytes the registry holds, or `None` when it no longer knows the session.
    async fn upload_status(&self, url: &Url, hint: u64) -> Result<Option<(Url, u64)>, Error> {
        let request = Outgoing {
            method: Method::GET,
            url: url.clone(),
            headers: HeaderMap::new(),
            payload: Payload::None,
        };
        let (mut response, final_url) = self
            .client
            .send(self.target, &request)
            .await
            .map_err(|error| as_push_rejection(self.target, &self.what(), error))?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND || status == StatusCode::BAD_REQUEST {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(
                push_rejected(self.target, &self.what(), &final_url, &mut response, 1).await,
            );
        }
        let headers = response.headers();
        let reached = upload_range_end(headers, hint)
            .filter(|reached| *reached <= self.size)
            .ok_or_else(|| Error::InvalidHeader {
                url: redacted(&final_url),
                header: "Range",
                value: header_text(headers, RANGE.as_str()).unwrap_or_default(),
            })?;
        let next = session_location(&final_url, headers)?.unwrap_or_else(|| url.clone());
        Ok(Some((next, reached)))
    }

    /// The closing `PUT …&digest=` of a chunked upload. A 404 after a retry may mean that an
    /// earlier attempt committed the blob and only its answer was lost: a `HEAD` tells.
    async fn finish_chunked(&self, url: Url) -> Result<(), Error> {
        let mut url = url;
        url.query_pairs_mut()
            .append_pair("digest", &self.digest.to_string());
        let request = Outgoing {
            method: Method::PUT,
            url,
            headers: HeaderMap::new(),
            payload: Payload::Bytes(Bytes::new()),
        };
        let (mut response, final_url) = self
            .client
            .send(self.target, &request)
            .await
            .map_err(|error| as_push_rejection(self.target, &self.what(), error))?;
        if response.status().is_success() {
            return check_stored_digest(
                self.target,
                &self.what(),
                &final_url,
                &response,
                self.digest,
            );
        }
        if response.status() == StatusCode::NOT_FOUND
            && self.client.head_blob(self.target, self.digest).await? == Some(self.size)
        {
            return Ok(());
        }
        Err(push_rejected(self.target, &self.what(), &final_url, &mut response, 1).await)
    }
}

/// How many bytes an upload holds, from the `Range: 0-<last byte>` of its answer (with or
/// without a `bytes=` prefix). Distribution answers `0-0` both for an empty upload and for one
/// byte; `expected` (the count the client expects) decides. `None` when there is no usable
/// header, except that a missing header on an answer means `expected`.
fn upload_range_end(headers: &HeaderMap, expected: u64) -> Option<u64> {
    let Some(value) = headers.get(RANGE) else {
        return Some(expected);
    };
    let text = value.to_str().ok()?.trim();
    let text = text
        .strip_prefix("bytes=")
        .or_else(|| text.strip_prefix("bytes "))
        .unwrap_or(text);
    let (start, end) = text.split_once('-')?;
    let (start, end): (u64, u64) = (start.trim().parse().ok()?, end.trim().parse().ok()?);
    if start != 0 {
        return None;
    }
    if end == 0 {
        return Some(if expected == 1 { 1 } else { 0 });
    }
    end.checked_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_range(value: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(value) = value {
            headers.insert(RANGE, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn upload_ranges_tell_how_many_bytes_the_registry_holds() {
        let check = |value: Option<&str>, expected: u64, held: Option<u64>| {
            assert_eq!(
                upload_range_end(&with_range(value), expected),
                held,
                "{value:?}, expecting {expected}"
            );
        };
        check(Some("0-1048575"), 1_048_576, Some(1_048_576));
        check(Some("bytes=0-99"), 7, Some(100));
        check(Some("bytes 0-99"), 7, Some(100));
        check(Some("0-0"), 5, Some(0));
        check(Some("0-0"), 1, Some(1));
        check(None, 42, Some(42));
        check(Some("5-9"), 10, None);
        check(Some("0-x"), 10, None);
        check(Some("99"), 10, None);
    }
}
