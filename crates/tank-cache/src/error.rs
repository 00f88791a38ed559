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
    /// The cache root is owned by another user than the effective uid: that user could
    /// swap what tank reads and writes there (and, as root, what it runs).
    #[error(
        "refusing the cache {path}: it is owned by uid {owner}, not by the effective uid {euid}; \
         use a cache of your own, chown it, or allow an untrusted cache root \
         (CacheOptions::allow_untrusted_root, tank's --allow-untrusted-cache)"
    )]
    UntrustedOwner {
        /// The cache root.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The effective uid tank runs as.
        euid: u32,
    },
    /// A cache directory that group or others can write, which tank could not tighten
    /// to 0700.
    #[error(
        "refusing the cache directory {path}: mode {mode:04o} lets group or others write it \
         and it cannot be tightened to 0700; fix its mode, or allow an untrusted cache root \
         (CacheOptions::allow_untrusted_root, tank's --allow-untrusted-cache)"
    )]
    InsecurePermissions {
        /// The directory.
        path: PathBuf,
        /// Its mode (permission bits).
        mode: u32,
        /// Why `fchmod` failed.
        #[source]
        source: std::io::Error,
    },
    /// An entry of the cache is not of the type tank makes there (a symlink, FIFO, socket
    /// or device where a regular file or directory belongs). Tank never follows or opens
    /// such an entry.
    #[error(
        "{path} is a {found}, not a {expected}: tank does not follow links or open special files in its cache"
    )]
    UnexpectedFileType {
        /// The entry.
        path: PathBuf,
        /// What it is, e.g. `symbolic link` or `FIFO`.
        found: &'static str,
        /// What it should be.
        expected: &'static str,
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

/// Something a maintenance step could not do, which did not stop it: a leftover that
/// cannot be removed (an immutable file, a mount point, a permission), a tree that cannot
/// be measured in full, a sidecar that is not a regular file. Each is also logged with
/// `tracing::warn!` (target `tank_cache`) when it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Warning {
    /// What could not be done, e.g. `remove`.
    pub operation: &'static str,
    /// The entry it could not be done to (may be longer than `PATH_MAX`; for display).
    pub path: PathBuf,
    /// Why, as the operating system said it.
    pub reason: String,
}

/// Shows the path and reason with control characters escaped (`\u{1b}`): paths below a
/// rootfs are named by the image, and warnings go to a terminal.
impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot {} {}: {}",
            self.operation,
            printable(&self.path.to_string_lossy()),
            printable(&self.reason)
        )
    }
}

/// `text` with its control characters escaped.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

impl Warning {
    /// A warning from an error, logged as it is made.
    pub(crate) fn new(
        operation: &'static str,
        path: impl Into<PathBuf>,
        reason: impl std::fmt::Display,
    ) -> Warning {
        let warning = Warning {
            operation,
            path: path.into(),
            reason: reason.to_string(),
        };
        tracing::warn!("{warning}");
        warning
    }

    /// A warning from a crate error (its message and sources).
    pub(crate) fn from_error(operation: &'static str, error: &Error) -> Warning {
        let path = match error {
            Error::Io { path, .. }
            | Error::UnexpectedFileType { path, .. }
            | Error::RefRecord { path, .. } => path.clone(),
            _ => PathBuf::new(),
        };
        let mut reason = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            reason.push_str(": ");
            reason.push_str(&cause.to_string());
            source = cause.source();
        }
        Warning::new(operation, path, reason)
    }
}

impl From<crate::tree::TreeError> for Warning {
    fn from(error: crate::tree::TreeError) -> Warning {
        Warning::new(error.operation, error.path, error.source)
    }
}

#[cfg(test)]
mod tests {
    use super::Warning;

    #[test]
    fn warnings_escape_control_characters_of_image_names() {
        let warning = Warning {
            operation: "remove",
            path: "/cache/rootfs/sha256/.tmp-x/\u{1b}]0;owned\u{7}".into(),
            reason: "Operation not permitted\n".into(),
        };
        let shown = warning.to_string();
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert!(shown.contains("\\u{1b}]0;owned\\u{7}"), "{shown}");
    }
}
