//! The one error type of tank-cache.

use std::path::PathBuf;

use tank_reference::Digest;

/// Everything that can go wrong while using the cache.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A filesystem operation failed.
    #[error("cannot {operation} {path}")]
    Io {
        /// What was being done, e.g. `create directory`.
        operation: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// No cache directory was given and none can be derived from the environment.
    #[error("no cache directory: set TANK_CACHE, XDG_CACHE_HOME or HOME")]
    NoCacheDir,
    /// The cache was written by a newer tank whose layout this one does not understand.
    #[error(
        "cache layout version {found} in {path} is newer than the supported version {supported}"
    )]
    NewerLayout {
        /// The `layout-version` file.
        path: PathBuf,
        /// The version found there.
        found: u32,
        /// The newest version this tank understands.
        supported: u32,
    },
    /// The `layout-version` file does not hold a version number.
    #[error("cannot read the cache layout version in {path}: {content:?}")]
    BadLayoutVersion {
        /// The `layout-version` file.
        path: PathBuf,
        /// What it holds (the start of it).
        content: String,
    },
    /// Bytes written for a blob do not match its digest or size; nothing was kept.
    #[error("blob {digest} does not match its content")]
    BlobMismatch {
        /// The digest the bytes were written under.
        digest: Digest,
        /// The size or digest mismatch.
        #[source]
        source: tank_reference::Error,
    },
    /// Fewer bytes were written for a blob than its size; nothing was kept.
    #[error("blob {digest} is {actual} bytes, not {expected}")]
    BlobSizeMismatch {
        /// The digest the bytes were written under.
        digest: Digest,
        /// The size it should have.
        expected: u64,
        /// The bytes written.
        actual: u64,
    },
    /// More bytes were written for a blob than its expected size; nothing was kept.
    #[error("blob {digest} is larger than its expected size of {expected_size} bytes")]
    BlobTooLarge {
        /// The digest the bytes were written under.
        digest: Digest,
        /// The size the writer was created with.
        expected_size: u64,
    },
    /// The blob is not in the cache.
    #[error("blob {digest} is not cached")]
    BlobNotCached {
        /// The digest asked for.
        digest: Digest,
    },
    /// A ref sidecar could not be read as JSON.
    #[error("cannot read the ref record {path}")]
    RefRecord {
        /// The sidecar file.
        path: PathBuf,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

/// Wraps an I/O error with the operation and path, for `map_err`.
pub(crate) fn io(
    operation: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io {
        operation,
        path,
        source,
    }
}
