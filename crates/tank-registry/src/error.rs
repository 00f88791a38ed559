//! The one error type of tank-registry.
//!
//! Variants name the registry, repository, digest or URL they concern; errors of the HTTP
//! stack, JSON parsing and I/O stay behind [`std::error::Error::source`] so that upgrading a
//! dependency never changes what callers match on.
//!
//! Text that came from outside (a registry's messages, media types, header values, realms,
//! a credential helper's output) is kept as received in the fields and escaped when the
//! error is displayed ([`crate::printable`]): printing an error never sends a control
//! character or a bidirectional override to the terminal.

use tank_reference::Digest;

use crate::RegistryError;
use crate::printable::{escape, quoted, quoted_option};

/// Everything that can go wrong while talking to a registry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The HTTP client could not be built from the [`crate::ClientConfig`].
    #[error("cannot build the http client")]
    ClientBuild {
        /// What the HTTP stack reported (boxed: the HTTP stack's types are not part of the
        /// API).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A registry name does not form a valid endpoint URL.
    #[error("registry {} does not form a valid url", quoted(registry))]
    InvalidRegistry {
        /// The registry as given (`host[:port]`).
        registry: String,
    },

    /// The registry (or a host it redirected to, or its token realm) could not be reached:
    /// connection refused, DNS, TLS, timeouts, a connection dropped mid-body.
    #[error("cannot reach registry {registry} at {url}{}", attempts_note(*attempts))]
    Unreachable {
        /// The registry being talked to.
        registry: String,
        /// The URL of the request that failed.
        url: String,
        /// How many attempts were made before giving up.
        attempts: u32,
        /// What the HTTP stack reported (boxed: the HTTP stack's types are not part of the
        /// API).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The registry refused access, also after authenticating (or offered no way to).
    #[error("access to {registry}/{repository} was refused: {}", escape(message))]
    Unauthorized {
        /// The registry that refused.
        registry: String,
        /// The repository asked for.
        repository: String,
        /// Why, as far as known (the registry's own error message when it sent one).
        message: String,
    },

    /// The token endpoint (the Bearer challenge's realm) answered with an unexpected status.
    #[error(
        "token request to {} for registry {registry} failed with status {status}: {}",
        escape(realm),
        escape(message)
    )]
    TokenRequest {
        /// The registry the token was for.
        registry: String,
        /// The realm URL asked.
        realm: String,
        /// The HTTP status it answered.
        status: u16,
        /// Its error message, when it sent one.
        message: String,
    },

    /// The token endpoint answered 200 with a body that holds no usable token.
    #[error(
        "token endpoint {} for registry {registry} sent an unusable answer: {reason}",
        escape(realm)
    )]
    InvalidTokenResponse {
        /// The registry the token was for.
        registry: String,
        /// The realm URL asked (without its query).
        realm: String,
        /// What is wrong with it.
        reason: &'static str,
        /// The JSON error, when the body did not parse (boxed: the parser's types are not
        /// part of the API).
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// The realm of a Bearer challenge is not a URL the client can ask.
    #[error(
        "registry {registry} sent a bearer challenge with an unusable realm {}",
        quoted(realm)
    )]
    InvalidRealm {
        /// The registry that sent the challenge.
        registry: String,
        /// The realm as sent.
        realm: String,
    },

    /// The repository does not exist in the registry (`NAME_UNKNOWN`).
    #[error("repository {repository} is not known to registry {registry}")]
    NameUnknown {
        /// The registry asked.
        registry: String,
        /// The repository asked for.
        repository: String,
    },

    /// The registry has no manifest under this tag or digest (404, `MANIFEST_UNKNOWN`).
    #[error("manifest {} not found in {registry}/{repository}", escape(reference))]
    ManifestUnknown {
        /// The registry asked.
        registry: String,
        /// The repository asked.
        repository: String,
        /// The tag or digest asked for.
        reference: String,
    },

    /// The registry has no blob with this digest in the repository (404, `BLOB_UNKNOWN`).
    #[error("blob {digest} not found in {registry}/{repository}")]
    BlobUnknown {
        /// The registry asked.
        registry: String,
        /// The repository asked.
        repository: String,
        /// The digest asked for.
        digest: Digest,
    },

    /// The manifest is a Docker image manifest schema 1, which tank does not read.
    #[error(
        "manifest {reference} in {registry}/{repository} is a docker schema 1 manifest \
         ({}), which is deprecated and not supported; push the image again with a \
         current tool",
        escape(media_type)
    )]
    SchemaV1Manifest {
        /// The registry asked.
        registry: String,
        /// The repository asked.
        repository: String,
        /// The tag or digest asked for.
        reference: String,
        /// The media type it was served with (or the schema 1 type, when the body told).
        media_type: String,
    },

    /// The manifest has a media type that is neither an OCI nor a Docker v2 manifest or index.
    #[error(
        "manifest {reference} in {registry}/{repository} has unsupported media type {}",
        quoted(media_type)
    )]
    UnsupportedMediaType {
        /// The registry asked.
        registry: String,
        /// The repository asked.
        repository: String,
        /// The tag or digest asked for.
        reference: String,
        /// The media type it was served with.
        media_type: String,
    },

    /// The manifest is bigger than the cap (4 MiB).
    #[error("manifest at {url} is larger than the {limit}-byte limit{}", announced_note(*announced))]
    ManifestTooLarge {
        /// The manifest URL.
        url: String,
        /// The cap in bytes.
        limit: u64,
        /// The Content-Length the registry announced, when it announced one over the cap.
        announced: Option<u64>,
    },

    /// The `Content-Type` and the body's `mediaType` disagree about whether the manifest is an
    /// index or an image manifest.
    #[error(
        "manifest at {url} is served as {} but its body says {}",
        quoted(content_type),
        quoted(body)
    )]
    MediaTypeConflict {
        /// The manifest URL.
        url: String,
        /// The media type from the `Content-Type` header.
        content_type: String,
        /// The body's `mediaType`.
        body: String,
    },

    /// The manifest bytes do not parse as the media type says.
    #[error(
        "manifest {reference} in {registry}/{repository} ({}) is not valid",
        escape(media_type)
    )]
    InvalidManifest {
        /// The registry asked.
        registry: String,
        /// The repository asked.
        repository: String,
        /// The tag or digest asked for.
        reference: String,
        /// The media type it was parsed as.
        media_type: String,
        /// What the parser reported (boxed: the parser's types are not part of the API).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A descriptor's digest is not one tank can verify ([`crate::descriptor_digest`]).
    #[error("descriptor digest {} is not a digest tank can verify", quoted(value))]
    InvalidDescriptorDigest {
        /// The digest as the descriptor holds it.
        value: String,
        /// Why it does not parse.
        #[source]
        source: tank_reference::Error,
    },

    /// A blob is bigger than the caller's in-memory limit ([`crate::Client::fetch_blob_bytes`]).
    #[error("blob {digest} is larger than the {limit}-byte limit")]
    BlobTooLarge {
        /// The blob.
        digest: Digest,
        /// The limit in bytes.
        limit: u64,
    },

    /// Content does not hash to the digest it should have.
    #[error(
        "digest mismatch for {}: expected {expected}, got {actual}",
        escape(what)
    )]
    DigestMismatch {
        /// What was checked, e.g. `blob sha256:… from registry/repo` or `manifest … vs Docker-Content-Digest`.
        what: String,
        /// The digest it should have.
        expected: Digest,
        /// The digest of the bytes received.
        actual: Digest,
    },

    /// Content does not have the size it should have. When the registry sent more than
    /// expected, the download stopped early and `actual` is what had arrived by then.
    #[error(
        "size mismatch for {}: expected {expected} bytes, received {actual}",
        escape(what)
    )]
    SizeMismatch {
        /// What was checked.
        what: String,
        /// The size it should have.
        expected: u64,
        /// The bytes received.
        actual: u64,
    },

    /// More redirects than the client follows (10).
    #[error("too many redirects (more than {limit}) starting at {url}")]
    TooManyRedirects {
        /// The URL first asked.
        url: String,
        /// The number of redirects followed.
        limit: u32,
    },

    /// A redirect without a usable `Location` header.
    #[error("redirect from {url} has no usable location header ({})", quoted_option(location.as_deref()))]
    InvalidRedirect {
        /// The URL that answered with the redirect.
        url: String,
        /// The `Location` value, when there was one.
        location: Option<String>,
    },

    /// A response header the protocol relies on has an unusable value.
    #[error(
        "response from {url} has an invalid {header} header: {}",
        quoted(value)
    )]
    InvalidHeader {
        /// The URL that answered.
        url: String,
        /// The header name.
        header: &'static str,
        /// Its value (lossily decoded).
        value: String,
    },

    /// A resumed download's answer did not continue where the previous one stopped.
    #[error(
        "resuming {url} at byte {offset} got a response that does not start there ({})",
        quoted_option(content_range.as_deref())
    )]
    ResumeMismatch {
        /// The URL asked.
        url: String,
        /// The byte offset asked for with `Range`.
        offset: u64,
        /// The `Content-Range` header received, if any.
        content_range: Option<String>,
    },

    /// The registry answered with a status the client does not expect here (including 429
    /// and 5xx once the retries are spent).
    #[error("{url} answered {status}{}{}", message_note(message), attempts_note(*attempts))]
    Status {
        /// The URL asked.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The registry's error message (`errors[].code: message`), empty when it sent none.
        message: String,
        /// How many attempts were made.
        attempts: u32,
    },

    /// Writing to the caller's sink failed.
    #[error("cannot store blob {digest}")]
    Sink {
        /// The blob being written.
        digest: Digest,
        /// What the sink reported.
        #[source]
        source: std::io::Error,
    },

    /// A credentials file (Docker `config.json`, containers `auth.json`) exists but cannot be
    /// read or is not valid JSON of the expected shape.
    #[error("cannot use credentials file {}", path.display())]
    CredentialsFile {
        /// The file.
        path: std::path::PathBuf,
        /// The read error, or the JSON error converted to an I/O error of kind `InvalidData`.
        #[source]
        source: std::io::Error,
    },

    /// An `auths` entry of a credentials file cannot be decoded (bad base64 `auth`, no `:`).
    #[error("invalid entry {} in credentials file {}: {}", quoted(registry), path.display(), escape(reason))]
    CredentialsEntry {
        /// The file.
        path: std::path::PathBuf,
        /// The entry's key as written in the file (e.g. `https://index.docker.io/v1/`).
        registry: String,
        /// What is wrong with it (never the secret itself).
        reason: String,
    },

    /// A `docker-credential-<helper>` failed, timed out or answered something unusable.
    #[error("credential helper docker-credential-{} (from {}) failed for {registry}: {}", escape(helper), path.display(), escape(reason))]
    CredentialHelper {
        /// The helper's name as configured (`desktop` for `docker-credential-desktop`).
        helper: String,
        /// The registry it was asked about.
        registry: String,
        /// The credentials file that names the helper.
        path: std::path::PathBuf,
        /// What went wrong: exit status and message, timeout, unparsable output.
        reason: String,
    },

    /// A credentials file names a `docker-credential-<helper>` that is not installed.
    #[error(
        "credential helper docker-credential-{helper} (named in {} for {registry}) is not installed",
        path.display()
    )]
    CredentialHelperNotFound {
        /// The helper's name as configured.
        helper: String,
        /// The registry it was to be asked about.
        registry: String,
        /// The credentials file that names the helper.
        path: std::path::PathBuf,
    },

    /// A `WWW-Authenticate` header does not follow RFC 7235, or holds a Bearer challenge
    /// without a realm.
    #[error(
        "invalid WWW-Authenticate header {}: {}",
        quoted(header),
        escape(reason)
    )]
    Challenge {
        /// The header value as received.
        header: String,
        /// What is wrong, with the byte offset where it applies.
        reason: String,
    },

    /// The content of a blob to upload could not be opened or read (its [`crate::BlobSource`]
    /// failed).
    #[error("cannot read the content of blob {digest} to upload it")]
    BlobSource {
        /// The blob being uploaded.
        digest: Digest,
        /// What the source reported.
        #[source]
        source: std::io::Error,
    },

    /// The registry refused a push step: starting or continuing a blob upload, committing it,
    /// or a manifest.
    #[error(
        "pushing {} to {registry}/{repository} failed: {url} answered {status}{}{}",
        escape(what),
        errors_note(errors),
        attempts_note(*attempts)
    )]
    PushRejected {
        /// The registry pushed to.
        registry: String,
        /// The repository pushed to.
        repository: String,
        /// What was being pushed, e.g. `blob sha256:…` or `manifest v1`.
        what: String,
        /// The URL of the request that was refused (without its query).
        url: String,
        /// The HTTP status.
        status: u16,
        /// The registry's error document (`errors[]`), empty when it sent none.
        errors: Box<[RegistryError]>,
        /// How many attempts were made.
        attempts: u32,
    },

    /// A blocking task (the credential lookup) panicked or was cancelled.
    #[error("looking up credentials for {registry} did not finish")]
    CredentialTask {
        /// The registry whose credentials were looked up.
        registry: String,
        /// What the runtime reported.
        #[source]
        source: tokio::task::JoinError,
    },

    /// A `registries.conf` file (or a mirror given on the command line) is not valid.
    #[error(
        "invalid registries configuration {}: {}",
        escape(path),
        escape(message)
    )]
    RegistriesConf {
        /// The file (or `--mirror`) at fault.
        path: String,
        /// What is wrong, naming the table and field.
        message: String,
    },

    /// The registries configuration forbids pulling this name (`blocked = true`).
    #[error(
        "pulling {} is blocked by the registries configuration (prefix {})",
        escape(name),
        quoted(prefix)
    )]
    Blocked {
        /// The reference asked for.
        name: String,
        /// The prefix of the rule that blocks it.
        prefix: String,
    },

    /// [`crate::ClientConfig::extra_root_certificates`] holds a document without a usable
    /// certificate.
    #[error("cannot use {what} as trusted CA certificates: {reason}")]
    TlsRoots {
        /// Which document (`extra root certificates #N`, counted from 1).
        what: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A CA certificates file could not be read.
    #[error("cannot read CA certificates file {}", path.display())]
    TlsRootsFile {
        /// The file.
        path: std::path::PathBuf,
        /// The read error.
        #[source]
        source: std::io::Error,
    },

    /// A registry reached over HTTPS named a plain-HTTP token realm: its credentials and
    /// tokens would cross the network in clear text, so the realm is not asked.
    #[error(
        "registry {registry} (https) sent a bearer challenge whose realm {realm} is plain http; \
         refusing to send credentials or take tokens over an unencrypted connection"
    )]
    InsecureRealm {
        /// The registry that sent the challenge.
        registry: String,
        /// The realm URL (without its query).
        realm: String,
    },

    /// A request that started over HTTPS at a secure (not plain-HTTP) registry or its token
    /// realm was redirected to a plain-HTTP URL; the redirect is not followed.
    #[error(
        "{from} redirected to plain-http {to} (registry {registry}); refusing to leave https \
         for a secure registry"
    )]
    InsecureRedirect {
        /// The registry (or realm host) being talked to.
        registry: String,
        /// The URL that answered with the redirect (without its query).
        from: String,
        /// Where it pointed (without its query).
        to: String,
    },

    /// A document read into memory (manifest, index, token response) is larger than its cap;
    /// the read stopped at the cap (or before reading, when `Content-Length` announced more).
    #[error("{document} at {url} is larger than the {limit}-byte limit{}", announced_note(*announced))]
    DocumentTooLarge {
        /// What the document is.
        document: crate::Document,
        /// The URL it came from.
        url: String,
        /// The cap in bytes.
        limit: u64,
        /// The `Content-Length` the server announced, when it announced one over the cap.
        announced: Option<u64>,
    },

    /// A request attempt made too little progress (the minimum-progress rule, the header
    /// deadline or the document deadline of [`crate::ClientConfig`]), also after the retries.
    #[error("{url} stalled: {stall}{}", attempts_note(*attempts))]
    Stalled {
        /// The registry (or token realm host) being talked to.
        registry: String,
        /// The URL of the request that stalled.
        url: String,
        /// Which rule fired.
        stall: crate::Stall,
        /// How many attempts were made.
        attempts: u32,
    },
}

/// ": CODE: message; CODE" when there are errors.
fn errors_note(errors: &[RegistryError]) -> String {
    let listed: Vec<String> = errors
        .iter()
        .map(
            |error| match (error.code.is_empty(), error.message.is_empty()) {
                (false, false) => format!("{}: {}", escape(&error.code), escape(&error.message)),
                (false, true) => escape(&error.code).into_owned(),
                _ => escape(&error.message).into_owned(),
            },
        )
        .collect();
    if listed.is_empty() {
        String::new()
    } else {
        format!(": {}", listed.join("; "))
    }
}

/// " (after N attempts)" when there was more than one.
fn attempts_note(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (after {attempts} attempts)")
    } else {
        String::new()
    }
}

/// ": message" when there is one.
fn message_note(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {}", escape(message))
    }
}

/// " (announced N bytes)" when the length was announced.
fn announced_note(announced: Option<u64>) -> String {
    match announced {
        Some(length) => format!(" (announced {length} bytes)"),
        None => String::new(),
    }
}
