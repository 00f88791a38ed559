//! [`Client`]: one registry client (its connection pools, settings, token cache and
//! distrusted mirrors) and its public pull operations. The requests behind them are built in
//! [`target`] (where a request goes), sent in [`send`] (authorization and redirects: the
//! credential boundary; retries by [`crate::retry`]), and read in [`fetch`] (manifest and
//! blob bodies) and [`error_body`] (refusals).

pub(crate) mod error_body;
mod fetch;
mod send;
mod target;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use reqwest::header::{CONTENT_LENGTH, HeaderMap};
use tank_reference::{Digest, Reference};
use tokio::io::AsyncWrite;
use url::Url;

use crate::auth::AuthCache;
use crate::config::ClientConfig;
use crate::manifest::Manifest;
use crate::progress::Rules;
use crate::{Error, endpoint, tls};

pub(crate) use error_body::{ErrorBody, status_error};
pub(crate) use send::Outgoing;
pub(crate) use target::Target;

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

impl Client {
    /// Builds a client: the connection pool with its timeouts and user agent. Nothing is
    /// contacted yet.
    pub fn new(config: ClientConfig) -> Result<Client, Error> {
        let plain = http_builder(&config)
            .tls_built_in_root_certs(false)
            .build()
            .map_err(|source| Error::ClientBuild {
                source: source.into(),
            })?;
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
        let built = builder.build().map_err(|source| Error::ClientBuild {
            source: source.into(),
        })?;
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

    /// The client's authentication memory.
    pub(crate) fn auth_cache(&self) -> &AuthCache {
        &self.inner.auth
    }

    /// The client's settings.
    pub(crate) fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The progress rule and deadlines of every request.
    pub(crate) fn rules(&self) -> Rules {
        Rules::of(&self.inner.config)
    }
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
