//! tank-registry fetches manifests and blobs from an OCI Distribution (registry v2) endpoint
//! and pushes them to one, authenticating as Docker does and verifying every byte against its
//! digest.
//!
//! ```no_run
//! use tank_registry::{Client, ClientConfig, ManifestKind, Reference, descriptor_digest};
//!
//! # async fn pull() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::new(ClientConfig::default())?;
//! let reference: Reference = "127.0.0.1:5000/team/app:v1".parse()?;
//! let manifest = client.fetch_manifest(&reference).await?;
//! println!("{} {}", manifest.digest(), manifest.media_type());
//! if let ManifestKind::Image(image) = manifest.kind() {
//!     for layer in image.layers() {
//!         let digest = descriptor_digest(layer)?;
//!         let mut file = tokio::fs::File::create(digest.hex()).await?;
//!         client.fetch_blob(&reference, &digest, Some(layer.size()), &mut file).await?;
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! What it does:
//!
//! - **Endpoints.** `docker.io` (and `index.docker.io`) is served by
//!   `https://registry-1.docker.io`; loopback registries (`localhost`, `127.0.0.0/8`, `[::1]`,
//!   any port) speak plain HTTP as Docker does; so do the registries listed in
//!   [`ClientConfig::insecure_registries`]; everything else is HTTPS.
//! - **Authentication.** A 401 is answered from its `WWW-Authenticate` challenge: Bearer
//!   (a token from the realm, anonymously, with Basic credentials, or with an identity token
//!   as an OAuth2 refresh token) or Basic, with credentials from a [`CredentialStore`]
//!   (looked up on the blocking pool, once per repository). Tokens are cached per registry and
//!   scope until shortly before they expire (`expires_in` is taken within [60 s, 24 h]). A
//!   registry's token or Basic header is only ever attached to requests for that registry's
//!   own origin (scheme, host and port); the realm (which may be another host) receives the
//!   Basic credentials of the registry for the token request, as with Docker, and never a
//!   token. An HTTPS registry's plain-HTTP realm is refused, and so is any redirect from
//!   HTTPS to plain HTTP for an HTTPS registry or realm.
//! - **HTTPS.** The system's root certificates, plus
//!   [`ClientConfig::extra_root_certificates`] (e.g. an internal CA).
//! - **Output.** Registry-supplied text in errors (messages, media types, header values,
//!   realms) is escaped when displayed ([`printable`]): no escape sequence, newline or
//!   bidirectional override reaches a terminal.
//! - **Manifests.** OCI index and manifest, Docker manifest list and schema 2 are accepted;
//!   schema 1 is refused; at most 4 MiB are read (see Limits); the digest of the raw bytes is checked
//!   against `Docker-Content-Digest` and against the digest asked for.
//! - **Blobs.** Streamed into a caller's [`tokio::io::AsyncWrite`], hashed as they pass, size
//!   and digest checked at the end. Redirects are followed by hand, dropping `Authorization`
//!   when they leave the registry's origin; 429 (honouring `Retry-After`), 5xx and connection
//!   failures are retried with bounded exponential backoff and jitter; a body cut short
//!   resumes with `Range`.
//! - **Mirrors.** [`ClientConfig::registries`] ([`Registries`], read from the containers
//!   `registries.conf` v2 or built by hand) sends pulls to mirrors and rewritten locations:
//!   each manifest and blob request tries the eligible mirrors in order and falls back to the
//!   next, and finally to the primary location, on any failure (a blob cut short continues
//!   from the next source with `Range`; every byte is still checked against the digest, and
//!   a mirror that served wrong bytes for a blob is not asked for it again by this client).
//!   Mirrors get one retry, the primary location the configured retries; each host gets its
//!   own credentials and tokens. Pushes go where the reference says.
//! - **Pushing.** [`Client::blob_exists`] (`HEAD`), [`Client::push_blob`] (existence check,
//!   cross-repository mount, monolithic or chunked upload streamed from a [`BlobSource`] such
//!   as a file, hashed as it goes so that a source not holding the blob never completes an
//!   upload) and [`Client::push_manifest`] (`PUT` with the manifest's media type, digest
//!   checked against `Docker-Content-Digest`). Tokens ask for `pull,push` (and `pull` on a
//!   mount's source repository) and are cached apart from pull tokens.
//!
//! This crate does not write files (it reads credential files, and the files it uploads),
//! does not hold blobs in
//! memory (except those a caller asks for with [`Client::fetch_blob_bytes`], under a limit),
//! and does not know the pull policy (platform choice, caching, offline mode): that is
//! tank-image's job.
//!
//! # Limits
//!
//! Memory and time are bounded by the client, never by the registry:
//!
//! - **Documents held in memory are capped while streaming**, whatever `Content-Length` says
//!   or does not say (chunked, close-delimited, never-ending bodies): manifests and indexes
//!   [`MANIFEST_LIMIT`] (4 MiB), token responses [`TOKEN_LIMIT`] (1 MiB), registry error
//!   bodies [`ERROR_BODY_LIMIT`] (64 KiB; a longer one is not read and the error reports the
//!   status with a note), image configs the caller's limit of [`Client::fetch_blob_bytes`].
//!   Past a cap the read stops with [`Error::DocumentTooLarge`] (kind, URL, limit) or
//!   [`Error::BlobTooLarge`]. Local files: `registries.conf`, its drop-ins and credentials
//!   files at most [`CONFIG_FILE_LIMIT`] (1 MiB); a credential helper's output at most 1 MiB
//!   per stream, and the helper is killed after its timeout (30 s,
//!   [`CredentialStore::with_helper_timeout`]).
//! - **Every request makes progress or fails**: an attempt whose transfer (response body
//!   received, or upload body taken by the server) moves fewer than
//!   [`ClientConfig::min_progress_bytes`] (16 KiB) within a
//!   [`ClientConfig::progress_window`] (30 s) is a stall; so are response headers not
//!   complete within [`ClientConfig::header_timeout`] (60 s after the request was sent, also
//!   when they arrive a byte at a time) and a document not read whole within
//!   [`ClientConfig::document_timeout`] (120 s). A stall is retried like a broken connection
//!   (a blob resumes with `Range`) and, once the retries are spent, ends as
//!   [`Error::Stalled`] naming the rule. Silence is ended sooner by
//!   [`ClientConfig::read_timeout`] (60 s), connecting by [`ClientConfig::connect_timeout`]
//!   (30 s). At most 10 redirects are followed per request; retries are
//!   [`ClientConfig::max_retries`] (5, one at a mirror) with delays capped at
//!   [`ClientConfig::max_retry_delay`] (30 s, also when `Retry-After` asks for more).
//!
//! # Limitations
//!
//! - A failed upload leaves its session for the registry to expire; it is not cancelled.
//!   A monolithic upload that fails with 429, 5xx or a broken connection starts again in a
//!   new session and sends the whole blob again (use [`PushBlobOptions::chunk_size`] to
//!   resend less).
//! - Distribution reports an upload holding 0 bytes and one holding 1 byte alike (`Range:
//!   0-0`); the client takes the one it expects.
//! - No single-request `POST …?digest=` uploads. A session URL on another host than the
//!   registry's gets no credentials.
//! - "Insecure" means plain HTTP. HTTPS with certificate verification turned off and client
//!   certificates are not offered.
//! - Schema 1 manifests and OCI artifact manifests are refused.
//! - A resumed download trusts that a server ignoring `Range` sends the same bytes again:
//!   it skips as many bytes as it already has; the final digest check catches any difference.
//! - Credentials are looked up once per client and repository; a changed credential needs a
//!   new client.
//! - Parallel requests that find no valid token each fetch one; they do not wait for each
//!   other.
//! - Proxies come from the usual environment variables (`HTTPS_PROXY`, `NO_PROXY`, …), as
//!   reqwest reads them.

// No unwrap() in library code; unit tests may (clippy.toml: allow-unwrap-in-tests).
#![deny(clippy::unwrap_used)]

pub mod challenge;
pub mod credentials;
pub mod printable;

mod auth;
mod body;
mod client;
mod config;
mod download;
mod endpoint;
mod error;
mod files;
mod fuzzing;
mod manifest;
mod progress;
mod push;
mod redirect;
mod registries;
mod retry;
mod tls;

/// The OCI image types of the API ([`Manifest`] parses into them), at the version this crate
/// uses.
pub use oci_spec;
/// References and digests, as the API takes and returns them.
pub use tank_reference::{Digest, Reference};

pub use body::{Document, ERROR_BODY_LIMIT, TOKEN_LIMIT};
pub use challenge::{Challenge, parse_www_authenticate};
pub use client::Client;
pub use client::error_body::RegistryError;
pub use config::{ClientConfig, Sleeper};
pub use credentials::{Credential, CredentialStore};
pub use error::Error;
pub use files::CONFIG_FILE_LIMIT;
#[doc(hidden)]
pub use fuzzing::{error_body_for_fuzzing, token_response_for_fuzzing};
#[doc(hidden)]
pub use manifest::parse_manifest_for_fuzzing;
pub use manifest::{MANIFEST_LIMIT, Manifest, ManifestKind, descriptor_digest, media_type};
pub use progress::Stall;
pub use push::{BlobReader, BlobSource, OpenFuture, PushBlobOptions, PushedBlob};
pub use registries::{Mirror, PullFromMirror, Registries, RegistryRule, Source};
