//! The error type of tank-image.

use tank_reference::Digest;

use crate::Platform;

/// Everything that can go wrong in tank-image.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A platform string is not `OS/ARCH` or `OS/ARCH/VARIANT`.
    #[error("invalid platform {input:?}: {reason}")]
    InvalidPlatform {
        /// The text given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No manifest of an image index (or the single manifest's config) fits the platform.
    #[error(
        "no image for platform {wanted}; available: {}",
        list_platforms(available)
    )]
    NoMatchingPlatform {
        /// The platform asked for (or the host's).
        wanted: Platform,
        /// The platforms the image offers.
        available: Vec<Platform>,
    },
    /// A descriptor in a manifest or index carries a digest tank does not accept.
    #[error("{reference}: {what} has digest {value:?}, which tank cannot verify")]
    InvalidDescriptorDigest {
        /// The image reference being resolved.
        reference: String,
        /// Which descriptor (e.g. "config of manifest sha256:…").
        what: String,
        /// The digest text found.
        value: String,
        /// Why it was refused (boxed: it is rare, and keeps `Error` small).
        #[source]
        source: Box<tank_reference::Error>,
    },
    /// An entry of a config's `rootfs.diff_ids` is not a digest tank can verify.
    #[error(
        "{reference}: config {config} has diff_id {index} {value}, which is not a digest tank can verify"
    )]
    InvalidDiffId {
        /// The image (reference, or layout and manifest digest) being read.
        reference: String,
        /// The config blob's digest.
        config: tank_reference::Digest,
        /// The entry's position in `rootfs.diff_ids`.
        index: usize,
        /// The entry as JSON.
        value: String,
        /// Why the text does not parse as a digest (`None`: the entry is not a string).
        #[source]
        source: Option<Box<tank_reference::Error>>,
    },
    /// The image config blob is not a valid JSON image configuration.
    #[error("{reference}: config {digest} is not a valid image configuration")]
    InvalidConfig {
        /// The image reference being resolved.
        reference: String,
        /// The config blob's digest.
        digest: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// An index points at another index more times than tank follows.
    #[error("{reference}: image indexes nest deeper than {limit} levels")]
    IndexTooDeep {
        /// The image reference being resolved.
        reference: String,
        /// How many levels tank follows.
        limit: usize,
    },
    /// `offline` and `refresh` were both asked for: one forbids the network, the other
    /// requires it.
    #[error("offline and refresh cannot be combined: refresh refetches from the registry")]
    OfflineWithRefresh,
    /// An offline pull found no cached pull of the reference for the platform.
    #[error(
        "{reference} ({platform}) is not in the cache at {cache}; pull it once without --offline"
    )]
    NotCached {
        /// The reference asked for.
        reference: String,
        /// The platform asked for.
        platform: Platform,
        /// The cache directory searched.
        cache: std::path::PathBuf,
    },
    /// The cache could not be opened, read or written.
    #[error("cache")]
    Cache(#[from] tank_cache::Error),
    /// A layer could not be applied.
    #[error("{reference}: layer {index} ({digest})")]
    Layer {
        /// The image reference being pulled.
        reference: String,
        /// The layer's position, 0 for the lowest.
        index: usize,
        /// The layer blob's digest.
        digest: String,
        /// What went wrong while extracting it.
        #[source]
        source: tank_layer::Error,
    },
    /// A layer's media type names no compression tank can read.
    #[error("{reference}: layer {index} ({digest}) has unsupported media type {media_type:?}")]
    UnsupportedLayer {
        /// The image reference being pulled.
        reference: String,
        /// The layer's position, 0 for the lowest.
        index: usize,
        /// The layer blob's digest.
        digest: String,
        /// The media type found.
        media_type: String,
    },
    /// The manifest and the config disagree on the number of layers.
    #[error(
        "{reference}: the manifest lists {layers} layers but the config's rootfs.diff_ids has {diff_ids}"
    )]
    LayerCountMismatch {
        /// The image reference being pulled.
        reference: String,
        /// Layers in the manifest.
        layers: usize,
        /// Entries of `rootfs.diff_ids` in the config.
        diff_ids: usize,
    },
    /// The manifest lists more layers than [`crate::PullOptions::max_layers`] allows.
    #[error(
        "{reference}: manifest {manifest} lists {layers} layers, more than the limit of {limit} (max_layers)"
    )]
    TooManyLayers {
        /// The image reference being pulled.
        reference: String,
        /// The manifest's digest.
        manifest: Digest,
        /// Layers in the manifest.
        layers: usize,
        /// The limit.
        limit: usize,
    },
    /// A layer's uncompressed content does not match the config's `rootfs.diff_ids`.
    #[error(
        "{reference}: layer {index} ({digest}) has diff_id {actual}, but the config says {expected}"
    )]
    DiffIdMismatch {
        /// The image reference being pulled.
        reference: String,
        /// The layer's position, 0 for the lowest.
        index: usize,
        /// The layer blob's digest.
        digest: Digest,
        /// The diff_id the config declares.
        expected: String,
        /// The diff_id computed while extracting.
        actual: String,
    },
    /// A cached blob's bytes no longer match its digest (disk corruption or tampering).
    /// Pulls remove such a blob and fetch it again; offline pulls report it.
    #[error("cached blob {digest} is corrupt (its bytes hash to {actual}); it was removed")]
    CorruptCachedBlob {
        /// The blob's digest.
        digest: Digest,
        /// What its bytes hash to.
        actual: String,
    },
    /// A manifest or config that an offline pull of a cached reference needs is missing from
    /// the cache, or was corrupt (and was removed).
    #[error(
        "cache: the {blob} {digest} of {reference} is {} in the cache; pull it online",
        if *removed { "corrupt (removed)" } else { "missing" }
    )]
    BadCachedRecord {
        /// The reference pulled offline.
        reference: String,
        /// Which blob: "manifest" or "config".
        blob: &'static str,
        /// Its digest.
        digest: Digest,
        /// Whether it was there but did not hash to its digest (or was oversized), and was
        /// removed; `false` when it was missing.
        removed: bool,
    },
    /// A manifest the cache holds (verified against its digest) is not an image manifest.
    #[error("cache: cached manifest {digest} of {reference} does not parse")]
    CachedManifestInvalid {
        /// The reference pulled offline.
        reference: String,
        /// The manifest's digest.
        digest: Digest,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// An offline pull needs a layer the cache does not hold.
    #[error("cache: layer {index} ({digest}) of {reference} is not cached; pull it online")]
    LayerNotCached {
        /// The reference pulled offline.
        reference: String,
        /// The layer's position, 0 for the lowest.
        index: usize,
        /// The layer blob's digest.
        digest: Digest,
    },
    /// Reading or writing a file failed.
    #[error("{operation} {}", path.display())]
    Io {
        /// The operation, e.g. "read".
        operation: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A worker task of the pull panicked or was cancelled.
    #[error("internal error: {0}")]
    Internal(String),
    /// Neither the config (`Entrypoint`, `Cmd`) nor the overrides give anything to run.
    #[error("nothing to run: the image config has no Entrypoint or Cmd and no command was given")]
    NoCommand,
    /// An environment entry is not `KEY=VALUE`.
    #[error("environment entry {entry:?} from {origin} is not KEY=VALUE")]
    InvalidEnv {
        /// The entry as given.
        entry: String,
        /// Where it came from: "the image config" or "the overrides".
        origin: &'static str,
    },
    /// The working directory is not an absolute path.
    #[error("working directory {workdir:?} is not an absolute path")]
    RelativeWorkdir {
        /// The directory as given.
        workdir: String,
    },
    /// A user specification cannot be used (e.g. a numeric id out of range).
    #[error("invalid user {user:?}: {reason}")]
    InvalidUser {
        /// The user specification as given (`user[:group]`).
        user: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A user name is not in the rootfs's `/etc/passwd`.
    #[error(
        "user {user:?} not found in {}/etc/passwd{}",
        rootfs.display(),
        if *passwd_found { "" } else { " (no such file in the rootfs)" }
    )]
    UnknownUser {
        /// The user name.
        user: String,
        /// The root filesystem searched.
        rootfs: std::path::PathBuf,
        /// Whether the rootfs has an `/etc/passwd` at all.
        passwd_found: bool,
    },
    /// A group name is not in the rootfs's `/etc/group`.
    #[error(
        "group {group:?} not found in {}/etc/group{}",
        rootfs.display(),
        if *group_found { "" } else { " (no such file in the rootfs)" }
    )]
    UnknownGroup {
        /// The group name.
        group: String,
        /// The root filesystem searched.
        rootfs: std::path::PathBuf,
        /// Whether the rootfs has an `/etc/group` at all.
        group_found: bool,
    },
    /// The rootfs's `/etc/passwd` or `/etc/group` exists but cannot be read safely.
    #[error("cannot read {path} inside rootfs {}", rootfs.display())]
    ReadUserDatabase {
        /// The file, as a path inside the rootfs (e.g. `/etc/passwd`).
        path: String,
        /// The root filesystem.
        rootfs: std::path::PathBuf,
        /// Why (a symlink loop, not a regular file, too large, an I/O error).
        #[source]
        source: std::io::Error,
    },
    /// A layer entry cannot be written.
    #[error("layer entry {path:?}: {reason}")]
    InvalidLayerEntry {
        /// The entry's path as given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An image config handed to `assemble` cannot be used.
    #[error("invalid image config: {reason}")]
    InvalidImageConfig {
        /// What is wrong with it.
        reason: String,
    },
    /// The config's history does not describe the layers given.
    #[error("the config history has {history} non-empty entries but {layers} layers were given")]
    HistoryMismatch {
        /// Entries of `history` without `empty_layer: true`.
        history: usize,
        /// Layers given.
        layers: usize,
    },
    /// A media type family cannot express something asked for.
    #[error("{format} images cannot have {what}")]
    UnsupportedByFormat {
        /// The format asked for.
        format: crate::Format,
        /// What it cannot express (e.g. "zstd layers").
        what: String,
    },
    /// An image put in an index declares no platform in its config.
    #[error("image {digest} declares no os and architecture, which an index entry needs")]
    MissingPlatform {
        /// The image's manifest digest.
        digest: String,
    },
    /// An image put in an index has another format than the index.
    #[error("image {digest} has {image} media types but the index is {index}")]
    MixedFormats {
        /// The index's format.
        index: crate::Format,
        /// The image's format.
        image: crate::Format,
        /// The image's manifest digest.
        digest: String,
    },
    /// A tag is not a valid OCI layout `ref.name`.
    #[error("invalid tag {tag:?}: {reason}")]
    InvalidTag {
        /// The tag as given.
        tag: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An OCI image layout file is malformed.
    #[error("invalid OCI layout file {}: {problem}", path.display())]
    InvalidLayout {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A blob's bytes do not match its descriptor.
    #[error(
        "{}: expected {expected} ({expected_size} bytes) but the bytes are {actual} ({actual_size} bytes)",
        path.display()
    )]
    BlobMismatch {
        /// The file read (or `<memory>`).
        path: std::path::PathBuf,
        /// The digest declared.
        expected: String,
        /// The size declared.
        expected_size: u64,
        /// The digest of the bytes.
        actual: String,
        /// The size of the bytes.
        actual_size: u64,
    },
    /// No entry of an OCI layout has the tag asked for.
    #[error("no entry of the OCI layout {} is tagged {tag:?}", layout.display())]
    TagNotFound {
        /// The tag asked for.
        tag: String,
        /// The layout's directory.
        layout: std::path::PathBuf,
    },
    /// A copy endpoint is neither a registry reference nor `oci:DIR[:TAG]`.
    #[error("invalid endpoint {input:?}: {reason}")]
    InvalidEndpoint {
        /// The text given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Text given as an image reference does not parse as one.
    #[error("{input:?} is not an image reference (nor oci:DIR[:TAG])")]
    InvalidReference {
        /// The text given.
        input: String,
        /// Why it does not parse.
        #[source]
        source: tank_reference::Error,
    },
    /// A manifest or index being copied cannot be used.
    #[error("{reference}: manifest {digest} cannot be copied: {problem}")]
    InvalidManifest {
        /// The source being copied.
        reference: String,
        /// The manifest's digest.
        digest: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A registry operation failed; the source says which and why.
    #[error(transparent)]
    Registry(#[from] tank_registry::Error),
}

fn list_platforms(platforms: &[Platform]) -> String {
    if platforms.is_empty() {
        return "none declared".to_owned();
    }
    platforms
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
