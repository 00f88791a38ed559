//! The one error type of tank-layer.

use std::io;
use std::path::PathBuf;

use crate::Compression;

/// Everything that can go wrong while applying a layer.
///
/// Offsets are byte offsets into the uncompressed tar stream; entry paths are shown as
/// stored in the tar (lossily, when they are not UTF-8).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The media type names no layer format this crate can read.
    #[error("unsupported layer media type {media_type:?}")]
    UnsupportedMediaType {
        /// The media type given.
        media_type: String,
    },
    /// The first bytes of the stream disagree with the declared compression.
    #[error("layer declared as {declared:?} but its first bytes look like {found}")]
    CompressionMismatch {
        /// The compression the caller declared.
        declared: Compression,
        /// What the magic bytes say.
        found: &'static str,
    },
    /// The destination directory could not be opened.
    #[error("cannot open destination directory {path}")]
    OpenDestination {
        /// The destination given.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The (decompressed) tar stream could not be read: corrupt compression, a bad header
    /// checksum, or a truncated stream.
    #[error(
        "corrupt or truncated layer stream at tar offset {offset} (after entry {after_entry:?})"
    )]
    Stream {
        /// Offset of the header that could not be read.
        offset: u64,
        /// The last entry read successfully, if any.
        after_entry: Option<String>,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The stream ended without the tar end-of-archive marker.
    #[error("layer stream ends without an end-of-archive marker at tar offset {offset}")]
    MissingEndOfArchive {
        /// Where the stream ended.
        offset: u64,
    },
    /// Non-zero bytes follow the tar end-of-archive marker.
    #[error("non-zero bytes after the end-of-archive marker at tar offset {offset}")]
    TrailingGarbage {
        /// Offset of the first non-zero byte.
        offset: u64,
    },
    /// Applying one entry to the destination failed.
    #[error("cannot apply entry {entry:?} at tar offset {offset}")]
    Entry {
        /// The entry's path, as stored.
        entry: String,
        /// Offset of the entry's header in the tar.
        offset: u64,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// An entry needs a directory where a non-directory is.
    #[error("entry {entry:?} at tar offset {offset} needs a directory where there is none")]
    NotADirectory {
        /// The entry's path, as stored.
        entry: String,
        /// Offset of the entry's header in the tar.
        offset: u64,
    },
    /// A hard link names a directory, or a path that does not exist.
    #[error("hard link {entry:?} at tar offset {offset} has an invalid target {target:?}")]
    InvalidHardlink {
        /// The entry's path, as stored.
        entry: String,
        /// The link target, as stored.
        target: String,
        /// Offset of the entry's header in the tar.
        offset: u64,
    },
    /// An entry's path names nothing that can be created (`/`, `.`, or a whiteout of `..`).
    #[error("entry {entry:?} at tar offset {offset} has an invalid path")]
    InvalidPath {
        /// The entry's path, as stored.
        entry: String,
        /// Offset of the entry's header in the tar.
        offset: u64,
    },
    /// A limit from [`ExtractOptions`](crate::ExtractOptions) was exceeded.
    #[error("layer exceeds the {limit} limit of {max} at tar offset {offset}")]
    LimitExceeded {
        /// Which limit: `max_bytes` or `max_entries`.
        limit: &'static str,
        /// The limit's value.
        max: u64,
        /// Where it was exceeded.
        offset: u64,
    },
    /// Restoring a directory's mode, mtime or an opaque directory's contents at the end failed.
    #[error("cannot finish directory {path:?}")]
    Finish {
        /// The directory, relative to the destination.
        path: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}
