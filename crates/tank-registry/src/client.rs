//! [`Client`]: requests to a registry with authentication, redirects and retries, and the
//! manifest and blob operations on top of them.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION, RANGE,
    WWW_AUTHENTICATE,
};
use reqwest::{Method, Response, StatusCode};
use tank_reference::{Digest, Reference};
use tokio::io::AsyncWrite;
use tracing::{debug, info, warn};
use url::Url;

use crate::auth::{self, AuthCache, LookedUp, TokenResponse};
use crate::body::{self, Document, ERROR_BODY_LIMIT, ReadFailure, TOKEN_LIMIT};
use crate::challenge::{Challenge, parse_www_authenticate};
use crate::config::ClientConfig;
use crate::credentials::{Credential, CredentialStore};
use crate::endpoint::{self, redacted};
use crate::error::RegistryError;
use crate::manifest::{self, MANIFEST_LIMIT, Manifest, ManifestSource, media_type};
use crate::progress::{self, Interrupted, Rules};
use crate::redirect::{self, same_origin};
use crate::upload::Payload;
use crate::{Error, blob, retry, tls};

/// The most redirects followed for one request.
pub(crate) const MAX_REDIRECTS: u32 = 10;

/// The settings both connection pools share.
fn http_builder(config: &ClientConfig) -> reqwest::ClientBuilder {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(config.connect_timeout)
        .read_timeout(config.read_timeout)
        .user_agent(config.user_agent.clone());
    for (host, address) in &config.resolve {
        builder = builder.resolve(host, std::net::SocketAddr::new(*address, 0));
    }
    builder
}

/// A registry client: one per process, cheap to clone (the connection pool, token cache and
/// looked-up credentials are shared).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    /// For `http://` URLs: no certificate store to load.
    plain: reqwest::Client,
    /// For `https://` URLs, built on first use: loading the system's root certificates
    /// costs milliseconds that a pull from a loopback registry need not pay.
    tls: OnceLock<reqwest::Client>,
    /// [`ClientConfig::extra_root_certificates`], parsed.
    extra_roots: Vec<reqwest::Certificate>,
    config: ClientConfig,
    auth: AuthCache,
    /// `(mirror registry, blob digest)` pairs whose bytes failed the digest check: the mirror
    /// is not asked for that blob again by this client.
    distrusted: Mutex<HashSet<(String, String)>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Client")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// One request as [`Client::send`] sends it (and sends again on a 401 or a retry).
pub(crate) struct Outgoing<'a> {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) headers: HeaderMap,
    pub(crate) payload: Payload<'a>,
}

/// One repository of one registry, as the requests for it need it.
pub(crate) struct Target {
    pub(crate) registry: String,
    pub(crate) repository: String,
    pub(crate) endpoint: Url,
    /// The token scope the requests need, and the key of the cached authorization:
    /// `repository:<name>:pull` for pulling, `repository:<name>:pull,push` for pushing (and
    /// ` repository:<other>:pull` more for a cross-repository mount).
    pub(crate) scope: String,
    /// How often a failed request is retried here (fewer for a mirror: there is a fallback).
    pub(crate) retries: u32,
}

/// The most retries a request gets at a mirror before falling back to the next source.
const MIRROR_RETRIES: u32 = 1;

impl Target {
    /// `<endpoint>/v2/<repository>/<kind>/<name>`.
    pub(crate) fn url(&self, kind: &str, name: &str) -> Result<Url, Error> {
        let mut url = self.endpoint.clone();
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|()| Error::InvalidRegistry {
                    registry: self.registry.clone(),
                })?;
            segments.pop_if_empty().push("v2");
            segments.extend(self.repository.split('/'));
            segments.push(kind).push(name);
        }
        Ok(url)
    }
}

impl Client {
    /// Builds a client: the connection pool with its timeouts and user agent. Nothing is
    /// contacted yet.
    pub fn new(config: ClientConfig) -> Result<Client, Error> {
        let plain = http_builder(&config)
            .tls_built_in_root_certs(false)
            .build()
            .map_err(|source| Error::ClientBuild { source })?;
        let extra_roots = tls::extra_roots(&config)?;
        Ok(Client {
            inner: Arc::new(Inner {
                plain,
                tls: OnceLock::new(),
                extra_roots,
                config,
                auth: AuthCache::default(),
                distrusted: Mutex::new(HashSet::new()),
            }),
        })
    }

    /// The connection pool for `url`: the plain one for `http://`, the TLS one (built with
    /// the system's root certificates on first use) otherwise.
    pub(crate) fn http_for(&self, url: &Url) -> Result<&reqwest::Client, Error> {
        if url.scheme() == "http" {
            return Ok(&self.inner.plain);
        }
        if let Some(client) = self.inner.tls.get() {
            return Ok(client);
        }
        let mut builder = http_builder(&self.inner.config);
        for root in &self.inner.extra_roots {
            builder = builder.add_root_certificate(root.clone());
        }
        let built = builder
            .build()
            .map_err(|source| Error::ClientBuild { source })?;
        Ok(self.inner.tls.get_or_init(|| built))
    }

    /// The base URL that serves `registry`: `docker.io` → `https://registry-1.docker.io/`,
    /// loopback and configured insecure registries → `http://…/`, others `https://…/`.
    pub fn endpoint(&self, registry: &str) -> Result<Url, Error> {
        endpoint::endpoint(registry, &self.inner.config.insecure_registries)
    }

    /// Fetches the manifest named by `reference.manifest_selector()` (its digest, else its tag,
    /// else `latest`). The digest of the raw bytes is checked against `Docker-Content-Digest`
    /// when the registry sends it, and against the reference's digest when it has one;
    /// manifests over 4 MiB and schema 1 manifests are refused.
    pub async fn fetch_manifest(&self, reference: &Reference) -> Result<Manifest, Error> {
        let selector = reference.manifest_selector();
        self.fetch_manifest_at(reference, &selector, reference.digest())
            .await
    }

    /// Like [`Client::fetch_manifest`], for `digest` in the repository of `reference` (index
    /// entries); its tag and digest are ignored.
    pub async fn fetch_manifest_by_digest(
        &self,
        reference: &Reference,
        digest: &Digest,
    ) -> Result<Manifest, Error> {
        self.fetch_manifest_at(reference, &digest.to_string(), Some(digest))
            .await
    }

    /// Streams the blob `digest` of the repository of `reference` into `sink`, hashing the
    /// bytes as they pass, and returns how many were written. The size (when given) and the
    /// digest are checked at the end; a blob that grows past `expected_size` stops there.
    ///
    /// Redirects are followed (`Authorization` only goes to the registry's own host); 429,
    /// 5xx and connection failures are retried with backoff; a download cut short resumes
    /// with `Range: bytes=<received>-`. If the server ignores the range and sends the whole
    /// blob again, the bytes already written are skipped in the new body; the final digest
    /// check covers exactly the bytes the sink received. On error the sink may hold part of
    /// the blob: write to a temporary file and discard it on error.
    pub async fn fetch_blob<W>(
        &self,
        reference: &Reference,
        digest: &Digest,
        expected_size: Option<u64>,
        sink: &mut W,
    ) -> Result<u64, Error>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        self.fetch_blob_into(reference, digest, expected_size, None, sink)
            .await
    }

    /// Fetches a small blob (an image config) into memory, refusing more than `limit` bytes,
    /// with the same checks as [`Client::fetch_blob`].
    pub async fn fetch_blob_bytes(
        &self,
        reference: &Reference,
        digest: &Digest,
        expected_size: Option<u64>,
        limit: u64,
    ) -> Result<Vec<u8>, Error> {
        let mut bytes = Vec::new();
        let distrusted_before = self.distrusted_mirrors();
        let fetched = self
            .fetch_blob_into(reference, digest, expected_size, Some(limit), &mut bytes)
            .await;
        match fetched {
            // A mirror served wrong bytes and is now skipped for this blob: start over.
            Err(Error::DigestMismatch { .. } | Error::SizeMismatch { .. })
                if self.distrusted_mirrors() > distrusted_before =>
            {
                bytes.clear();
                self.fetch_blob_into(reference, digest, expected_size, Some(limit), &mut bytes)
                    .await?;
            }
            other => {
                other?;
            }
        }
        Ok(bytes)
    }

    pub(crate) fn target(&self, reference: &Reference) -> Result<Target, Error> {
        self.target_with_scope(
            reference,
            format!("repository:{}:pull", reference.repository()),
        )
    }

    /// The target of `reference`'s repository, authorized for `scope`.
    pub(crate) fn target_with_scope(
        &self,
        reference: &Reference,
        scope: String,
    ) -> Result<Target, Error> {
        let registry = reference.registry().to_owned();
        let repository = reference.repository().to_owned();
        Ok(Target {
            endpoint: self.endpoint(&registry)?,
            scope,
            registry,
            repository,
            retries: self.inner.config.max_retries,
        })
    }

    /// How many times so far a mirror served wrong bytes for a blob (and was then left out
    /// for that blob). A caller that saw a digest or size mismatch may fetch the blob again
    /// when this grew meanwhile: the next attempt goes to the next source.
    pub fn distrusted_mirrors(&self) -> usize {
        self.inner
            .distrusted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Where a pull request for `reference` goes, in order: the eligible mirrors (less those
    /// that served wrong bytes for `blob`), then the primary location, always last.
    fn pull_targets(
        &self,
        reference: &Reference,
        by_digest: bool,
        blob: Option<&Digest>,
    ) -> Result<Vec<Target>, Error> {
        let config = &self.inner.config;
        let sources = config.registries.sources(reference, by_digest)?;
        let distrusted = self
            .inner
            .distrusted
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut targets = Vec::with_capacity(sources.len());
        for source in sources {
            if source.mirror
                && blob.is_some_and(|digest| {
                    distrusted.contains(&(source.registry.clone(), digest.to_string()))
                })
            {
                continue;
            }
            let endpoint = if source.insecure {
                endpoint::endpoint(&source.registry, std::slice::from_ref(&source.registry))
            } else {
                self.endpoint(&source.registry)
            };
            let endpoint = match endpoint {
                Ok(endpoint) => endpoint,
                Err(error) if source.mirror => {
                    warn!("skipping mirror {source}: {error}");
                    continue;
                }
                Err(error) => return Err(error),
            };
            targets.push(Target {
                endpoint,
                scope: format!("repository:{}:pull", source.repository),
                retries: if source.mirror {
                    config.max_retries.min(MIRROR_RETRIES)
                } else {
                    config.max_retries
                },
                registry: source.registry,
                repository: source.repository,
            });
        }
        Ok(targets)
    }

    /// The client's settings.
    pub(crate) fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The progress rule and deadlines of every request.
    pub(crate) fn rules(&self) -> Rules {
        Rules::of(&self.inner.config)
    }

    async fn fetch_manifest_at(
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
        let mut failures = 0u32;
        loop {
            let (mut response, final_url) = self.get(target, &url, &headers).await?;
            let status = response.status();
            if status == StatusCode::NOT_FOUND {
                let message = ErrorBody::read(&mut response).await;
                return Err(if message.has_code("NAME_UNKNOWN") {
                    Error::NameUnknown {
                        registry: target.registry.clone(),
                        repository: target.repository.clone(),
                    }
                } else {
                    Error::ManifestUnknown {
                        registry: target.registry.clone(),
                        repository: target.repository.clone(),
                        reference: selector.to_owned(),
                    }
                });
            }
            if !status.is_success() || status == StatusCode::PARTIAL_CONTENT {
                return Err(status_error(&final_url, &mut response, 1).await);
            }
            let shown_url = redacted(&final_url);
            let content_type = header_text(response.headers(), CONTENT_TYPE.as_str());
            let announced_digest = header_text(response.headers(), "docker-content-digest");
            let raw = match body::read_document(&mut response, MANIFEST_LIMIT).await {
                Ok(raw) => raw,
                Err(ReadFailure::Interrupted(interrupted)) if failures < target.retries => {
                    failures += 1;
                    let delay = self.backoff(failures - 1);
                    debug!(url = %shown_url, error = ?interrupted, ?delay, "manifest body cut short or stalled, retrying");
                    self.inner.config.sleeper.sleep(delay).await;
                    continue;
                }
                Err(failure) => {
                    return Err(failure.into_error(
                        Document::Manifest,
                        &target.registry,
                        &shown_url,
                        MANIFEST_LIMIT,
                        failures + 1,
                    ));
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

    async fn fetch_blob_into<W>(
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
        let mut download = blob::Download::new(digest, expected_size, limit);
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
            let mut distrusted = self
                .inner
                .distrusted
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for mirror in contributors {
                warn!(
                    "mirror {}/{} served wrong bytes for blob {digest}; it will not be asked for it again",
                    mirror.registry, mirror.repository
                );
                distrusted.insert((mirror.registry.clone(), digest.to_string()));
            }
        }
        result
    }

    /// Streams a blob from one source into `sink`, continuing `download` where it stands,
    /// until the body has ended.
    async fn fetch_blob_from<W>(
        &self,
        target: &Target,
        download: &mut blob::Download<'_>,
        sink: &mut W,
    ) -> Result<(), Error>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        let digest = download.digest();
        let url = target.url("blobs", &digest.to_string())?;
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
                let message = ErrorBody::read(&mut response).await;
                return Err(if message.has_code("NAME_UNKNOWN") {
                    Error::NameUnknown {
                        registry: target.registry.clone(),
                        repository: target.repository.clone(),
                    }
                } else {
                    Error::BlobUnknown {
                        registry: target.registry.clone(),
                        repository: target.repository.clone(),
                        digest: digest.clone(),
                    }
                });
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
                Err(blob::StreamError::Fatal(error)) => return Err(error),
                Err(blob::StreamError::Interrupted(interrupted)) => {
                    if download.received() > received_before {
                        failures = 0;
                    }
                    failures += 1;
                    if failures > target.retries {
                        return Err(body::interrupted_error(
                            interrupted,
                            &target.registry,
                            &shown_url,
                            failures,
                        ));
                    }
                    let delay = self.backoff(failures - 1);
                    debug!(
                        url = %shown_url,
                        error = ?interrupted,
                        received = download.received(),
                        ?delay,
                        "blob download cut short, resuming"
                    );
                    self.inner.config.sleeper.sleep(delay).await;
                }
            }
        }
    }

    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let config = &self.inner.config;
        retry::backoff(retry, config.retry_base_delay, config.max_retry_delay)
    }

    /// A GET for `target` with authentication, redirects and retries of 429, 5xx and
    /// connection failures. Returns the last response (any status but a 401 from the registry)
    /// and the URL that gave it.
    async fn get(
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

    /// Runs `attempt` until it gives something other than 429, 5xx or a connection failure,
    /// or the retries are spent.
    pub(crate) async fn retrying<F, Fut>(
        &self,
        registry: &str,
        attempt: F,
    ) -> Result<(Response, Url), Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<(Response, Url), Error>>,
    {
        self.retrying_up_to(registry, self.inner.config.max_retries, attempt)
            .await
    }

    /// [`Client::retrying`] with at most `max_retries` retries.
    async fn retrying_up_to<F, Fut>(
        &self,
        registry: &str,
        max_retries: u32,
        mut attempt: F,
    ) -> Result<(Response, Url), Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<(Response, Url), Error>>,
    {
        let config = &self.inner.config;
        let mut failures = 0u32;
        loop {
            let result = attempt().await;
            let delay = match &result {
                Ok((response, _)) if is_retryable_status(response.status()) => {
                    retry::retry_after(response.headers(), SystemTime::now())
                        .unwrap_or_else(|| self.backoff(failures))
                }
                // A host name that does not resolve will not resolve on a retry either, nor
                // will a certificate become trusted.
                Err(Error::Unreachable { source, .. })
                    if is_unknown_host(source) || tls::is_certificate_error(source) =>
                {
                    return result;
                }
                Err(Error::Unreachable { .. } | Error::Stalled { .. }) => self.backoff(failures),
                _ => return result,
            };
            failures += 1;
            if failures > max_retries {
                return match result {
                    Ok((mut response, final_url)) => {
                        Err(status_error(&final_url, &mut response, failures).await)
                    }
                    Err(error) => Err(retry::after_attempts(error, failures)),
                };
            }
            let delay = delay.min(config.max_retry_delay);
            match &result {
                Ok((response, final_url)) => {
                    debug!(%registry, url = %redacted(final_url), status = response.status().as_u16(), ?delay, retry = failures, "retrying")
                }
                Err(error) => debug!(%registry, %error, ?delay, retry = failures, "retrying"),
            }
            drop(result);
            config.sleeper.sleep(delay).await;
        }
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

    /// Answers the challenges of a 401: a Bearer token (cached per registry and scope) or
    /// Basic credentials. Returns the `Authorization` value to retry with.
    async fn authenticate(
        &self,
        target: &Target,
        challenges: Vec<String>,
        refusal: &ErrorBody,
    ) -> Result<HeaderValue, Error> {
        let unauthorized = |message: String| Error::Unauthorized {
            registry: target.registry.clone(),
            repository: target.repository.clone(),
            message,
        };
        if challenges.is_empty() {
            return Err(unauthorized(refusal.describe(
                "the registry answered 401 without a WWW-Authenticate challenge",
            )));
        }
        let mut parsed = Vec::new();
        for header in &challenges {
            parsed.extend(parse_www_authenticate(header)?);
        }
        let bearer = parsed.iter().find_map(|challenge| match challenge {
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => Some((realm.clone(), service.clone(), scope.clone())),
            _ => None,
        });
        let basic = parsed
            .iter()
            .any(|challenge| matches!(challenge, Challenge::Basic { .. }));
        let credential = self.credential(target).await?;

        if let Some((realm, service, scope)) = bearer {
            let scope = auth::merge_scopes(scope.as_deref(), &target.scope);
            let (header, usable_until) = self
                .fetch_token(
                    target,
                    &realm,
                    service.as_deref(),
                    &scope,
                    (*credential).as_ref(),
                )
                .await?;
            self.inner.auth.store_token(
                &target.registry,
                &target.scope,
                header.clone(),
                usable_until,
            );
            return Ok(header);
        }
        if !basic {
            return Err(unauthorized(format!(
                "no supported challenge in WWW-Authenticate {:?}",
                challenges.join(", ")
            )));
        }
        match &*credential {
            Some(Credential::Basic { username, password }) => {
                let header = auth::basic_header(username, password).ok_or_else(|| {
                    unauthorized("the stored credentials cannot be sent in an http header".to_owned())
                })?;
                self.inner
                    .auth
                    .store_basic(&target.registry, &target.scope, header.clone());
                debug!(registry = %target.registry, "answering a basic challenge with stored credentials");
                Ok(header)
            }
            Some(_) => Err(unauthorized(
                "the registry asks for basic authentication but the stored credential is an identity token".to_owned(),
            )),
            None => Err(unauthorized(refusal.describe(&format!(
                "the registry asks for basic authentication and no credentials are stored for {}",
                target.registry
            )))),
        }
    }

    /// Asks the Bearer realm for a token: with an identity token as an OAuth2 refresh-token
    /// POST, with Basic credentials or anonymously as a GET. The realm gets the registry's
    /// Basic credentials (as Docker does), never a token.
    async fn fetch_token(
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
                        auth::basic_header(username, password)
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
                source,
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
        let header = auth::bearer_header(token)
            .ok_or_else(|| invalid("the token cannot be sent in an http header", None))?;
        Ok((header, answer.usable_until(SystemTime::now())))
    }

    /// Looks up (once per client and repository) the credential for the target's repository
    /// (keys naming the repository first, then the registry host), on the blocking pool:
    /// credential helpers are processes.
    async fn credential(&self, target: &Target) -> Result<LookedUp, Error> {
        let auth = &self.inner.auth;
        if let Some(known) = auth.credential(&target.registry, &target.repository) {
            return Ok(known);
        }
        let store: CredentialStore = self.inner.config.credentials.clone();
        let (registry, repository) = (target.registry.clone(), target.repository.clone());
        let found = tokio::task::spawn_blocking(move || store.get_for(&registry, &repository))
            .await
            .map_err(|source| Error::CredentialTask {
                registry: target.registry.clone(),
                source,
            })??;
        debug!(registry = %target.registry, repository = %target.repository, found = found.is_some(), "looked up credentials");
        let found = Arc::new(found);
        auth.store_credential(&target.registry, &target.repository, found.clone());
        Ok(found)
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

    /// Sends a bodiless request (GET, HEAD) and follows up to [`MAX_REDIRECTS`] redirects by
    /// hand. `authorization` is attached only to hops on the origin (scheme, host, port) of
    /// `auth_endpoint`; every other header to all hops. When `auth_endpoint` is `https://`, a
    /// redirect to plain HTTP is refused ([`redirect::check_redirect`]).
    async fn send_following_redirects(
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

pub(crate) fn is_retryable_status(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// Every `WWW-Authenticate` header, as text.
fn www_authenticate(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .collect()
}

pub(crate) fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// An error status as [`Error::Status`], with the registry's error message from the body.
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

pub(crate) async fn status_error(url: &Url, response: &mut Response, attempts: u32) -> Error {
    let status = response.status().as_u16();
    let body = ErrorBody::read(response).await;
    Error::Status {
        url: redacted(url),
        status,
        message: body.describe(""),
        attempts,
    }
}

/// The registry's error document (`{"errors":[{"code","message"}]}`), as far as readable.
#[derive(Default)]
pub(crate) struct ErrorBody {
    errors: Vec<(String, String)>,
    /// Why the body was not read whole, when it was not (too long, stalled, broken).
    note: Option<String>,
}

#[derive(serde::Deserialize)]
struct ErrorDocument {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(serde::Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

impl ErrorBody {
    /// Reads the body (at most [`ERROR_BODY_LIMIT`] bytes, under the progress rule and the
    /// document deadline) and parses it; a body that is not a registry error document gives
    /// no entries, one that could not be read whole a note saying why.
    pub(crate) async fn read(response: &mut Response) -> ErrorBody {
        let note = match body::read_document(response, ERROR_BODY_LIMIT).await {
            Ok(bytes) => return ErrorBody::parse(&bytes),
            Err(ReadFailure::TooLarge { .. }) => format!(
                "the error body was not read: it is larger than the {ERROR_BODY_LIMIT}-byte limit"
            ),
            Err(ReadFailure::Interrupted(Interrupted::Stalled(stall))) => {
                format!("the error body was not read: {stall}")
            }
            Err(ReadFailure::Interrupted(Interrupted::Transport(error))) => {
                format!("the error body was not read: {error}")
            }
        };
        debug!("{note}");
        ErrorBody {
            errors: Vec::new(),
            note: Some(note),
        }
    }

    pub(crate) fn parse(bytes: &[u8]) -> ErrorBody {
        let Ok(document) = serde_json::from_slice::<ErrorDocument>(bytes) else {
            return ErrorBody::default();
        };
        ErrorBody {
            errors: document
                .errors
                .into_iter()
                .map(|entry| (entry.code, entry.message))
                .collect(),
            note: None,
        }
    }

    /// The entries, as sent (or the note of a body that could not be read whole).
    pub(crate) fn entries(&self) -> Box<[RegistryError]> {
        if let (true, Some(note)) = (self.errors.is_empty(), &self.note) {
            return Box::new([RegistryError {
                code: String::new(),
                message: note.clone(),
            }]);
        }
        self.errors
            .iter()
            .map(|(code, message)| RegistryError {
                code: code.clone(),
                message: message.clone(),
            })
            .collect()
    }

    pub(crate) fn has_code(&self, code: &str) -> bool {
        self.errors
            .iter()
            .any(|(found, _)| found.eq_ignore_ascii_case(code))
    }

    /// `CODE: message; CODE: message`, or `fallback` when the body held no errors (with the
    /// note of a body that could not be read whole).
    pub(crate) fn describe(&self, fallback: &str) -> String {
        if self.errors.is_empty() {
            return match (&self.note, fallback.is_empty()) {
                (Some(note), true) => note.clone(),
                (Some(note), false) => format!("{fallback} ({note})"),
                (None, _) => fallback.to_owned(),
            };
        }
        let listed: Vec<String> = self
            .errors
            .iter()
            .map(
                |(code, message)| match (code.is_empty(), message.is_empty()) {
                    (false, false) => format!("{}: {}", code.to_ascii_lowercase(), message),
                    (false, true) => code.to_ascii_lowercase(),
                    _ => message.clone(),
                },
            )
            .collect();
        listed.join("; ")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_summarised() {
        let body = ErrorBody::parse(
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":[{"Type":"repository"}]},{"code":"DENIED","message":""}]}"#,
        );
        assert!(body.has_code("unauthorized"));
        assert!(!body.has_code("NAME_UNKNOWN"));
        assert_eq!(
            body.describe("x"),
            "unauthorized: authentication required; denied"
        );
        assert_eq!(
            ErrorBody::parse(b"<html>oops</html>").describe("fallback"),
            "fallback"
        );
        assert_eq!(ErrorBody::parse(br#"{"errors":[]}"#).describe(""), "");
    }

    #[test]
    fn target_urls_keep_repository_segments_and_digests() {
        let target = Target {
            registry: "127.0.0.1:5000".to_owned(),
            repository: "team/app".to_owned(),
            endpoint: Url::parse("http://127.0.0.1:5000/").unwrap(),
            scope: "repository:team/app:pull".to_owned(),
            retries: 0,
        };
        let hex = "a".repeat(64);
        assert_eq!(
            target
                .url("blobs", &format!("sha256:{hex}"))
                .unwrap()
                .as_str(),
            format!("http://127.0.0.1:5000/v2/team/app/blobs/sha256:{hex}")
        );
        assert_eq!(
            target.url("manifests", "v1.0").unwrap().as_str(),
            "http://127.0.0.1:5000/v2/team/app/manifests/v1.0"
        );
    }
}
