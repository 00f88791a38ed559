//! [`ClientConfig`]: what a caller may tune about the client, and [`Sleeper`], how it waits.

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::credentials::CredentialStore;
use crate::registries::Registries;

/// Settings of a [`crate::Client`]. `Default` gives what a command-line puller wants.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Registries spoken to over plain HTTP although they are not loopback, as `host` (any
    /// port) or `host:port`. "Insecure" means plain HTTP here, nothing else: HTTPS with
    /// certificate verification turned off is not offered.
    pub insecure_registries: Vec<String>,
    /// Mirrors, location rewrites and blocked names for pulls. Default: none
    /// ([`Registries::from_system`] reads what podman and skopeo read).
    pub registries: Registries,
    /// Where credentials come from. Default: [`CredentialStore::from_env`].
    pub credentials: CredentialStore,
    /// How long establishing a connection may take. Default 30 s.
    pub connect_timeout: Duration,
    /// How long a connection may stay silent while a response is awaited or read. Default 60 s.
    pub read_timeout: Duration,
    /// How many times a failed request (connection error, timeout, 429, 5xx, a body cut short)
    /// is retried before giving up. Default 5.
    pub max_retries: u32,
    /// The first backoff delay; it doubles with each retry (with jitter). Default 200 ms.
    pub retry_base_delay: Duration,
    /// The longest the client waits before a retry, also when `Retry-After` asks for more.
    /// Default 30 s.
    pub max_retry_delay: Duration,
    /// The minimum-progress rule, with [`ClientConfig::progress_window`]: a request attempt
    /// whose transfer moves fewer than this many bytes within one window fails like a broken
    /// connection (it is retried, and a blob download resumes with `Range` where bytes had
    /// arrived); when the retries are spent the error is [`crate::Error::Stalled`] naming the
    /// rule. Counted: response body bytes received (manifests, tokens, blobs, error bodies)
    /// and, for uploads, request body bytes the server took. Only time spent waiting for the
    /// network counts (not time spent writing to the caller's sink); a body that ends is not
    /// judged on its last, partial window. Default 16 KiB per 30 s window, a mean of about
    /// 550 bytes/s: far below any link a pull could finish on, far above a registry dripping
    /// bytes to keep a connection alive (the read timeout restarts with every byte, so it
    /// alone never ends such a request). containerd and Docker have no such rule. 0 turns it
    /// off.
    pub min_progress_bytes: u64,
    /// The window of the minimum-progress rule ([`ClientConfig::min_progress_bytes`]).
    /// Default 30 s. Zero turns the rule off.
    pub progress_window: Duration,
    /// How long the client waits for the complete response headers of one request, counted
    /// from when the request (with its body) was sent, also when the server sends header
    /// bytes one at a time. Default 60 s (a silent server is already cut off by the read
    /// timeout; this bounds one that drips). Zero turns it off.
    pub header_timeout: Duration,
    /// How long one attempt may spend reading a document into memory (manifest, index,
    /// token response, error body, and configs fetched with
    /// [`crate::Client::fetch_blob_bytes`]), counted from its headers, so that a server
    /// dripping exactly the minimum progress cannot hold a manifest read for hours. Default
    /// 120 s: a 4 MiB manifest at 35 KB/s; real ones are a few KiB. Zero turns it off.
    pub document_timeout: Duration,
    /// The `User-Agent` header. Default `tank/<version of this crate>`.
    pub user_agent: String,
    /// How the client waits between retries. Default: [`Sleeper::tokio`]; tests inject one
    /// that records the delays instead of waiting.
    pub sleeper: Sleeper,
    /// CA certificates trusted for HTTPS in addition to the system's roots, as PEM documents
    /// (each may hold several `CERTIFICATE` blocks): for registries whose certificate an
    /// internal CA issued. Default: none. [`ClientConfig::add_root_certificates_file`] reads
    /// one from a file; [`crate::Client::new`] refuses a document without a usable
    /// certificate ([`crate::Error::TlsRoots`]).
    pub extra_root_certificates: Vec<Vec<u8>>,
    /// Host names resolved to a fixed address instead of through DNS, as curl's `--resolve`
    /// (the port always comes from the URL). Default: none. For registries whose name DNS
    /// does not give, and for tests that serve a non-loopback name (spoken to over HTTPS)
    /// from a loopback port.
    pub resolve: Vec<(String, IpAddr)>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            insecure_registries: Vec::new(),
            registries: Registries::none(),
            credentials: CredentialStore::from_env(),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
            max_retries: 5,
            retry_base_delay: Duration::from_millis(200),
            max_retry_delay: Duration::from_secs(30),
            min_progress_bytes: 16 * 1024,
            progress_window: Duration::from_secs(30),
            header_timeout: Duration::from_secs(60),
            document_timeout: Duration::from_secs(120),
            user_agent: format!("tank/{}", env!("CARGO_PKG_VERSION")),
            sleeper: Sleeper::tokio(),
            extra_root_certificates: Vec::new(),
            resolve: Vec::new(),
        }
    }
}

impl ClientConfig {
    /// Adds the CA certificates of the PEM file at `path` to
    /// [`ClientConfig::extra_root_certificates`] (what the CLI's `--tls-ca FILE` does).
    /// Fails when the file cannot be read ([`crate::Error::TlsRootsFile`]); its content is
    /// checked by [`crate::Client::new`].
    pub fn add_root_certificates_file(
        &mut self,
        path: impl AsRef<std::path::Path>,
    ) -> Result<(), crate::Error> {
        let pem = crate::tls::read_pem_file(path.as_ref())?;
        self.extra_root_certificates.push(pem);
        Ok(())
    }
}

type SleepFn = dyn Fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync;

/// How the client waits before a retry: [`tokio::time::sleep`] unless replaced.
#[derive(Clone)]
pub struct Sleeper(Arc<SleepFn>);

impl Sleeper {
    /// Waits with [`tokio::time::sleep`].
    pub fn tokio() -> Sleeper {
        Sleeper::new(tokio::time::sleep)
    }

    /// Waits with `sleep`, e.g. a function that records the delay and returns at once.
    pub fn new<F, Fut>(sleep: F) -> Sleeper
    where
        F: Fn(Duration) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Sleeper(Arc::new(move |delay| Box::pin(sleep(delay))))
    }

    /// Waits for `delay`.
    pub(crate) async fn sleep(&self, delay: Duration) {
        (self.0)(delay).await;
    }
}

impl Default for Sleeper {
    fn default() -> Self {
        Sleeper::tokio()
    }
}

impl fmt::Debug for Sleeper {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Sleeper")
    }
}
