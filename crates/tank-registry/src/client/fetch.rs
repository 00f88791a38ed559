//! The pull requests: a manifest or a blob from each source in turn (mirrors, then the
//! primary location), a manifest body read again and a blob body resumed with `Range` when
//! cut short, and the distrusting of a mirror whose bytes failed the digest.

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue, RANGE};
use tank_reference::{Digest, Reference};
use tokio::io::AsyncWrite;
use tracing::{debug, info, warn};

use crate::body::{self, Document};
use crate::client::error_body::{Missing, not_found};
use crate::client::{Target, header_text, status_error};
use crate::endpoint::redacted;
use crate::manifest::{self, MANIFEST_LIMIT, Manifest, ManifestSource, media_type};
use crate::retry::{self, Outcome, Step};
use crate::{Client, Error, download};

impl Client {
    /// Fetches the manifest `selector` of `reference`'s repository from its mirrors in turn,
    /// then from the primary location; `asked` is the digest it must have, when known.
    pub(super) async fn fetch_manifest_at(
        &self,
        reference: &Reference,
        selector: &str,
        asked: Option<&Digest>,
    ) -> Result<Manifest, Error> {
        let mut targets = self.pull_targets(reference, asked.is_some(), None)?;
        let primary = targets
            .pop()
            .expect("the sources of a request end with the primary location");
        for mirror in &targets {
            match self.fetch_manifest_from(mirror, selector, asked).await {
                Ok(manifest) => return Ok(manifest),
                Err(error) => fell_back(mirror, &format!("manifest {selector}"), &error),
            }
        }
        self.fetch_manifest_from(&primary, selector, asked).await
    }

    /// Fetches a manifest from one source.
    async fn fetch_manifest_from(
        &self,
        target: &Target,
        selector: &str,
        asked: Option<&Digest>,
    ) -> Result<Manifest, Error> {
        let url = target.url("manifests", selector)?;
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(media_type::ACCEPT));
        let policy = self.retry_policy(target.retries);
        let mut failures = 0u32;
        loop {
            let (mut response, final_url) = self.get(target, &url, &headers).await?;
            let status = response.status();
            if status == StatusCode::NOT_FOUND {
                return Err(not_found(target, &mut response, Missing::Manifest(selector)).await);
            }
            if !status.is_success() || status == StatusCode::PARTIAL_CONTENT {
                return Err(status_error(&final_url, &mut response, 1).await);
            }
            let shown_url = redacted(&final_url);
            let content_type = header_text(response.headers(), CONTENT_TYPE.as_str());
            let announced_digest = header_text(response.headers(), "docker-content-digest");
            let raw = match body::read_document(&mut response, MANIFEST_LIMIT).await {
                Ok(raw) => raw,
                Err(failure) => {
                    let error = failure.into_error(
                        Document::Manifest,
                        &target.registry,
                        &shown_url,
                        MANIFEST_LIMIT,
                        1,
                    );
                    match policy.step(&Outcome::Failed(&error), failures) {
                        Step::Retry(delay) => {
                            failures += 1;
                            debug!(url = %shown_url, %error, ?delay, "manifest body cut short or stalled, retrying");
                            self.config().sleeper.sleep(delay).await;
                            continue;
                        }
                        Step::Exhausted { attempts } => {
                            return Err(retry::after_attempts(error, attempts));
                        }
                        Step::Stop => return Err(error),
                    }
                }
            };
            let source = ManifestSource {
                registry: &target.registry,
                repository: &target.repository,
                reference: selector,
                url: &shown_url,
            };
            let digest =
                manifest::verify_digest(&source, &raw, announced_digest.as_deref(), asked)?;
            debug!(url = %shown_url, %digest, bytes = raw.len(), "fetched manifest");
            return manifest::parse(&source, content_type.as_deref(), raw, digest);
        }
    }

    /// Streams the blob `digest` into `sink` from the mirrors in turn, then from the primary
    /// location, each continuing where the one before stopped; checks size and digest at the
    /// end and distrusts the mirrors that wrote to a blob that fails them.
    pub(super) async fn fetch_blob_into<W>(
        &self,
        reference: &Reference,
        digest: &Digest,
        expected_size: Option<u64>,
        limit: Option<u64>,
        sink: &mut W,
    ) -> Result<u64, Error>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        if let (Some(size), Some(limit)) = (expected_size, limit) {
            if size > limit {
                return Err(Error::BlobTooLarge {
                    digest: digest.clone(),
                    limit,
                });
            }
        }
        let mut targets = self.pull_targets(reference, true, Some(digest))?;
        let primary = targets
            .pop()
            .expect("the sources of a request end with the primary location");
        let mut download = download::Download::new(digest, expected_size, limit);
        // Mirrors that wrote bytes to the sink: distrusted if the whole fails its digest.
        let mut contributors: Vec<&Target> = Vec::new();
        let mut fetched = false;
        for mirror in &targets {
            download.set_source(mirror);
            let before = download.received();
            let result = self.fetch_blob_from(mirror, &mut download, sink).await;
            if download.received() > before {
                contributors.push(mirror);
            }
            match result {
                Ok(()) => {
                    fetched = true;
                    break;
                }
                Err(error @ Error::Sink { .. }) => return Err(error),
                Err(error) => fell_back(mirror, &format!("blob {digest}"), &error),
            }
        }
        if !fetched {
            download.set_source(&primary);
            self.fetch_blob_from(&primary, &mut download, sink).await?;
        }
        let result = download.finish(sink).await;
        if matches!(
            result,
            Err(Error::DigestMismatch { .. } | Error::SizeMismatch { .. })
        ) && !contributors.is_empty()
        {
            self.distrust(&contributors, digest);
        }
        result
    }

    /// Streams a blob from one source into `sink`, continuing `download` where it stands,
    /// until the body has ended.
    async fn fetch_blob_from<W>(
        &self,
        target: &Target,
        download: &mut download::Download<'_>,
        sink: &mut W,
    ) -> Result<(), Error>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        let digest = download.digest();
        let url = target.url("blobs", &digest.to_string())?;
        let policy = self.retry_policy(target.retries);
        let mut failures = 0u32;
        loop {
            let mut headers = HeaderMap::new();
            if let Some(range) = download.range_header() {
                headers.insert(RANGE, range);
            }
            let (mut response, final_url) = self.get(target, &url, &headers).await?;
            let shown_url = redacted(&final_url);
            let status = response.status();
            if status == StatusCode::NOT_FOUND {
                return Err(not_found(target, &mut response, Missing::Blob(digest)).await);
            }
            if status == StatusCode::RANGE_NOT_SATISFIABLE && download.is_complete() {
                // The previous body held every byte but broke before it ended properly.
                return Ok(());
            }
            if !download.accepts(status) {
                return Err(status_error(&final_url, &mut response, 1).await);
            }
            download.start_response(&shown_url, status, response.headers())?;
            let received_before = download.received();
            match download.stream(&mut response, sink).await {
                Ok(()) => return Ok(()),
                Err(download::StreamError::Fatal(error)) => return Err(error),
                Err(download::StreamError::Interrupted(interrupted)) => {
                    // A body that brought bytes starts the count again.
                    if download.received() > received_before {
                        failures = 0;
                    }
                    let error =
                        body::interrupted_error(interrupted, &target.registry, &shown_url, 1);
                    let delay = match policy.step(&Outcome::Failed(&error), failures) {
                        Step::Retry(delay) => delay,
                        Step::Exhausted { attempts } => {
                            return Err(retry::after_attempts(error, attempts));
                        }
                        Step::Stop => return Err(error),
                    };
                    failures += 1;
                    debug!(
                        url = %shown_url,
                        %error,
                        received = download.received(),
                        ?delay,
                        "blob download cut short, resuming"
                    );
                    self.config().sleeper.sleep(delay).await;
                }
            }
        }
    }
}

/// Logs that `mirror` failed for `what` and the next source is tried: at info when it simply
/// does not have it, at warn otherwise.
fn fell_back(mirror: &Target, what: &str, error: &Error) {
    if matches!(
        error,
        Error::ManifestUnknown { .. } | Error::BlobUnknown { .. } | Error::NameUnknown { .. }
    ) {
        info!(
            "mirror {}/{} does not have {what}; trying the next source",
            mirror.registry, mirror.repository
        );
    } else {
        warn!(
            "mirror {}/{} failed for {what}: {error}; trying the next source",
            mirror.registry, mirror.repository
        );
    }
}
