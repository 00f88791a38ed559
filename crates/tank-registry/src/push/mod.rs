//! Pushing, the public API: blob existence checks, cross-repository mounts, blob uploads
//! (the protocol in [`upload`], the content from a [`BlobSource`] in [`source`]), and
//! manifest PUTs.
//!
//! The upload protocol is the OCI Distribution spec's ("Pushing blobs"): `POST
//! /v2/<name>/blobs/uploads/` opens an upload session whose URL comes back in `Location`
//! (relative or absolute, often carrying state in its query, which is kept); the content goes
//! in one `PUT <location>&digest=<digest>` (monolithic) or in `PATCH` requests with
//! `Content-Range: <start>-<end>` followed by an empty `PUT …&digest=` (chunked), each
//! request going to the `Location` of the answer before it.

mod source;
mod upload;

use std::sync::Arc;

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION};
use reqwest::{Method, Response, StatusCode};
use tank_reference::{Algorithm, Digest, Reference};
use tracing::debug;
use url::Url;

use crate::RegistryError;
use crate::client::{ErrorBody, Outgoing, Target, content_length, header_text, status_error};
use crate::endpoint::redacted;
use crate::manifest::MANIFEST_LIMIT;
use crate::{Client, Error};

pub(crate) use source::Payload;
use source::Tracker;
pub use source::{BlobReader, BlobSource, OpenFuture};
use upload::Upload;

/// How [`Client::push_blob`] uploads. `Default`: no mount, one monolithic `PUT`.
#[derive(Clone, Debug, Default)]
pub struct PushBlobOptions {
    /// Another repository of the same registry that may hold the blob already: the registry
    /// is asked to mount it from there (`POST …/blobs/uploads/?mount=<digest>&from=<this>`)
    /// before anything is uploaded. The token then also asks for `pull` on this repository.
    /// A registry that cannot mount answers with an upload session, which is used instead.
    pub mount_from: Option<String>,
    /// Upload blobs larger than this many bytes in chunks of this size (`PATCH` requests),
    /// raised to the registry's `OCI-Chunk-Min-Length` when it announces one. `None` (the
    /// default) or 0 sends every blob in one `PUT`: one request, and what every registry accepts.
    /// Chunks suit registries or proxies that limit request sizes, and make a retry after a
    /// broken connection resend one chunk instead of the whole blob.
    pub chunk_size: Option<u64>,
}

/// What [`Client::push_blob`] had to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushedBlob {
    /// The repository had the blob already; nothing was sent.
    Existed,
    /// The registry mounted the blob from [`PushBlobOptions::mount_from`].
    Mounted,
    /// The content was uploaded.
    Uploaded,
}

/// An upload session: where to send the next request, and the smallest chunk the registry
/// takes.
struct Session {
    url: Url,
    min_chunk: Option<u64>,
}

/// What opening an upload gave.
enum Started {
    Mounted,
    Session(Session),
}

impl Client {
    /// Whether the repository of `reference` holds the blob `digest` (`HEAD
    /// /v2/<name>/blobs/<digest>`), and its size: `None` on a 404. Redirects are followed;
    /// 429, 5xx and connection failures are retried.
    pub async fn blob_exists(
        &self,
        reference: &Reference,
        digest: &Digest,
    ) -> Result<Option<u64>, Error> {
        let target = self.target(reference)?;
        self.head_blob(&target, digest).await
    }

    /// Pushes the blob `digest` of `size` bytes to the repository of `reference` (its tag and
    /// digest are ignored), reading its content from `source` only when it must be uploaded.
    ///
    /// In order: a `HEAD` to see whether the repository has it already
    /// ([`PushedBlob::Existed`]; a size other than `size` is an error); a mount from
    /// [`PushBlobOptions::mount_from`] when given ([`PushedBlob::Mounted`]); else an upload
    /// ([`PushedBlob::Uploaded`]), monolithic or chunked (see [`PushBlobOptions::chunk_size`]).
    /// The token asks for `pull,push` on the repository.
    ///
    /// The content streams from `source` and is never held whole in memory. It is hashed as
    /// it goes: a source that does not hold `size` bytes with this digest fails the upload
    /// before its last byte is sent, so the registry never commits it. The registry's
    /// `Docker-Content-Digest` for the committed blob is checked too.
    ///
    /// Retries: 429, 5xx and broken connections restart a monolithic upload in a new session
    /// (re-opening the source); a failed chunk is followed by asking the registry where the
    /// upload stands (`GET` on the session) and continuing from there, or from the start in a
    /// new session when the registry lost it. A 416 on a chunk is answered the same way.
    pub async fn push_blob<S>(
        &self,
        reference: &Reference,
        digest: &Digest,
        size: u64,
        source: &S,
        options: &PushBlobOptions,
    ) -> Result<PushedBlob, Error>
    where
        S: BlobSource,
    {
        let repository = reference.repository();
        let mount_from = options
            .mount_from
            .as_deref()
            .filter(|from| *from != repository);
        let mut scope = push_scope(repository);
        if let Some(from) = mount_from {
            scope.push_str(&format!(" repository:{from}:pull"));
        }
        let target = self.target_with_scope(reference, scope)?;
        if let Some(existing) = self.head_blob(&target, digest).await? {
            if existing != size {
                return Err(Error::SizeMismatch {
                    what: format!(
                        "blob {digest} as {}/{} already holds it",
                        target.registry, target.repository
                    ),
                    expected: size,
                    actual: existing,
                });
            }
            debug!(registry = %target.registry, repository = %target.repository, %digest, "blob exists, not uploading");
            return Ok(PushedBlob::Existed);
        }
        let session = match self.start_upload(&target, digest, mount_from).await? {
            Started::Mounted => {
                debug!(registry = %target.registry, repository = %target.repository, %digest, from = ?mount_from, "blob mounted");
                return Ok(PushedBlob::Mounted);
            }
            Started::Session(session) => session,
        };
        if size == 0 {
            // No byte will pass the tracker: check the empty content here.
            let empty = Digest::of(digest.algorithm(), b"");
            if &empty != digest {
                return Err(Error::DigestMismatch {
                    what: format!("the upload source of blob {digest} (0 bytes)"),
                    expected: digest.clone(),
                    actual: empty,
                });
            }
        }
        let tracker = Arc::new(Tracker::new(digest, size));
        let upload = Upload {
            client: self,
            target: &target,
            digest,
            size,
            source,
            tracker: &tracker,
        };
        match options.chunk_size {
            Some(chunk_size) if chunk_size > 0 && size > chunk_size => {
                let chunk_size = chunk_size.max(session.min_chunk.unwrap_or(0)).max(1);
                upload.chunked(session, chunk_size).await?;
            }
            _ => upload.monolithic(session).await?,
        }
        debug!(registry = %target.registry, repository = %target.repository, %digest, size, "blob uploaded");
        Ok(PushedBlob::Uploaded)
    }

    /// Pushes a manifest or index: `PUT /v2/<name>/manifests/<tag or digest>` with
    /// `Content-Type: media_type` and `bytes` exactly as given. The reference's tag is used
    /// when it has one, else its digest, else `latest`. When the reference has a digest, the
    /// bytes must hash to it (checked before sending). Returns the digest of the bytes
    /// (sha256, or the algorithm of the reference's digest), checked against the registry's
    /// `Docker-Content-Digest`. 429, 5xx and connection failures are retried; manifests over
    /// 4 MiB are refused (registries do too).
    pub async fn push_manifest(
        &self,
        reference: &Reference,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest, Error> {
        let target = self.target_with_scope(reference, push_scope(reference.repository()))?;
        let selector = match reference.tag() {
            Some(tag) => tag.to_owned(),
            None => reference.manifest_selector(),
        };
        let algorithm = reference
            .digest()
            .map(Digest::algorithm)
            .unwrap_or(Algorithm::Sha256);
        let digest = Digest::of(algorithm, bytes);
        if let Some(expected) = reference.digest() {
            if expected != &digest {
                return Err(Error::DigestMismatch {
                    what: format!("manifest to push as {reference}"),
                    expected: expected.clone(),
                    actual: digest,
                });
            }
        }
        let url = target.url("manifests", &selector)?;
        if bytes.len() as u64 > MANIFEST_LIMIT {
            return Err(Error::ManifestTooLarge {
                url: redacted(&url),
                limit: MANIFEST_LIMIT,
                announced: Some(bytes.len() as u64),
            });
        }
        let content_type =
            HeaderValue::from_str(media_type).map_err(|_| Error::UnsupportedMediaType {
                registry: target.registry.clone(),
                repository: target.repository.clone(),
                reference: selector.clone(),
                media_type: media_type.to_owned(),
            })?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, content_type);
        let request = Outgoing {
            method: Method::PUT,
            url,
            headers,
            payload: Payload::Bytes(Bytes::copy_from_slice(bytes)),
        };
        let what = format!("manifest {selector}");
        let (mut response, final_url) = self
            .send(&target, &request)
            .await
            .map_err(|error| as_push_rejection(&target, &what, error))?;
        if !response.status().is_success() {
            return Err(push_rejected(&target, &what, &final_url, &mut response, 1).await);
        }
        check_stored_digest(&target, &what, &final_url, &response, &digest)?;
        debug!(registry = %target.registry, repository = %target.repository, %selector, %digest, %media_type, "pushed manifest");
        Ok(digest)
    }

    /// `HEAD` on a blob: its size when present, `None` on a 404.
    async fn head_blob(&self, target: &Target, digest: &Digest) -> Result<Option<u64>, Error> {
        let request = Outgoing {
            method: Method::HEAD,
            url: target.url("blobs", &digest.to_string())?,
            headers: HeaderMap::new(),
            payload: Payload::None,
        };
        let (mut response, final_url) = self.send(target, &request).await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            status if status.is_success() => match content_length(response.headers()) {
                Some(length) => Ok(Some(length)),
                None => Err(Error::InvalidHeader {
                    url: redacted(&final_url),
                    header: "Content-Length",
                    value: header_text(response.headers(), "content-length").unwrap_or_default(),
                }),
            },
            _ => Err(status_error(&final_url, &mut response, 1).await),
        }
    }

    /// Opens an upload session (`POST …/blobs/uploads/`), asking for a mount when `mount_from`
    /// is given.
    async fn start_upload(
        &self,
        target: &Target,
        digest: &Digest,
        mount_from: Option<&str>,
    ) -> Result<Started, Error> {
        let mut url = target.url("blobs", "uploads")?;
        url.path_segments_mut()
            .map_err(|()| Error::InvalidRegistry {
                registry: target.registry.clone(),
            })?
            .push("");
        if let Some(from) = mount_from {
            url.query_pairs_mut()
                .append_pair("mount", &digest.to_string())
                .append_pair("from", from);
        }
        let request = Outgoing {
            method: Method::POST,
            url,
            headers: HeaderMap::new(),
            payload: Payload::Bytes(Bytes::new()),
        };
        let what = format!("blob {digest}");
        let (mut response, final_url) = self
            .send(target, &request)
            .await
            .map_err(|error| as_push_rejection(target, &what, error))?;
        let status = response.status();
        if status == StatusCode::CREATED && mount_from.is_some() {
            check_stored_digest(target, &what, &final_url, &response, digest)?;
            return Ok(Started::Mounted);
        }
        if status != StatusCode::ACCEPTED {
            return Err(push_rejected(target, &what, &final_url, &mut response, 1).await);
        }
        let url = session_location(&final_url, response.headers())?
            .ok_or_else(|| missing_location(&final_url))?;
        let min_chunk = header_text(response.headers(), "oci-chunk-min-length")
            .and_then(|value| value.trim().parse().ok());
        debug!(registry = %target.registry, repository = %target.repository, %digest, url = %redacted(&url), ?min_chunk, "upload session opened");
        Ok(Started::Session(Session { url, min_chunk }))
    }
}

/// The token scope of pushing to `repository`.
fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

/// Puts an error of the retried request machinery into the push's context: a status that
/// stayed 429 or 5xx through every retry becomes [`Error::PushRejected`].
fn as_push_rejection(target: &Target, what: &str, error: Error) -> Error {
    match error {
        Error::Status {
            url,
            status,
            message,
            attempts,
        } => Error::PushRejected {
            registry: target.registry.clone(),
            repository: target.repository.clone(),
            what: what.to_owned(),
            url,
            status,
            errors: if message.is_empty() {
                Box::default()
            } else {
                Box::new([RegistryError {
                    code: String::new(),
                    message,
                }])
            },
            attempts,
        },
        other => other,
    }
}

/// An answer refusing a push step, with the registry's error codes and messages.
async fn push_rejected(
    target: &Target,
    what: &str,
    url: &Url,
    response: &mut Response,
    attempts: u32,
) -> Error {
    let status = response.status().as_u16();
    let body = ErrorBody::read(response).await;
    Error::PushRejected {
        registry: target.registry.clone(),
        repository: target.repository.clone(),
        what: what.to_owned(),
        url: redacted(url),
        status,
        errors: body.entries(),
        attempts,
    }
}

/// Checks the `Docker-Content-Digest` of an answer that stored content (when the registry
/// sent one in the algorithm of `digest`).
fn check_stored_digest(
    target: &Target,
    what: &str,
    url: &Url,
    response: &Response,
    digest: &Digest,
) -> Result<(), Error> {
    let Some(header) = header_text(response.headers(), "docker-content-digest") else {
        return Ok(());
    };
    let stored: Digest = header.trim().parse().map_err(|_| Error::InvalidHeader {
        url: redacted(url),
        header: "Docker-Content-Digest",
        value: header.clone(),
    })?;
    if stored.algorithm() == digest.algorithm() && &stored != digest {
        return Err(Error::DigestMismatch {
            what: format!(
                "{what} pushed to {}/{} (the registry's Docker-Content-Digest)",
                target.registry, target.repository
            ),
            expected: digest.clone(),
            actual: stored,
        });
    }
    Ok(())
}

/// The upload session URL of an answer's `Location` (relative to the URL that answered, its
/// query kept); `None` when there is no `Location`.
fn session_location(answered: &Url, headers: &HeaderMap) -> Result<Option<Url>, Error> {
    let Some(value) = headers.get(LOCATION) else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
    match answered.join(text.trim()) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(Some(url)),
        _ => Err(Error::InvalidHeader {
            url: redacted(answered),
            header: "Location",
            value: text,
        }),
    }
}

fn missing_location(answered: &Url) -> Error {
    Error::InvalidHeader {
        url: redacted(answered),
        header: "Location",
        value: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_locations_resolve_relative_and_keep_their_query() {
        let answered = Url::parse("http://127.0.0.1:5000/v2/team/app/blobs/uploads/").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            LOCATION,
            HeaderValue::from_static("/v2/team/app/blobs/uploads/abc?_state=xyz%3D"),
        );
        let url = session_location(&answered, &headers).unwrap().unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:5000/v2/team/app/blobs/uploads/abc?_state=xyz%3D"
        );
        headers.insert(
            LOCATION,
            HeaderValue::from_static("https://uploads.example/session/1?sig=2"),
        );
        let url = session_location(&answered, &headers).unwrap().unwrap();
        assert_eq!(url.as_str(), "https://uploads.example/session/1?sig=2");
        headers.insert(LOCATION, HeaderValue::from_static("ftp://elsewhere/x"));
        assert!(matches!(
            session_location(&answered, &headers),
            Err(Error::InvalidHeader { .. })
        ));
        assert!(
            session_location(&answered, &HeaderMap::new())
                .unwrap()
                .is_none()
        );
    }
}
