//! The one error type of tank-layer.

use std::io;
use std::path::PathBuf;

use crate::Compression;

/// Everything that can go wrong while applying a layer.
///
/// Offsets are byte offsets into the uncompressed tar stream; entry paths are shown as
/// stored in the tar, with control characters, backslashes and bytes that are not UTF-8
/// escaped (`\x1b`), so a layer cannot put terminal escape sequences into a log.
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
    /// The layer's compression is one this build of tank-layer left out (a cargo feature
    /// that is off).
    #[error(
        "{declared} layers need tank-layer's cargo feature \"{feature}\", which this build leaves out"
    )]
    CodecNotBuilt {
        /// The layer's compression.
        declared: Compression,
        /// The cargo feature that adds it.
        feature: &'static str,
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
        "corrupt or truncated layer stream at tar offset {offset}{}", after(after_entry.as_deref())
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
    /// A metadata record (GNU long name or link, PAX header) is larger than
    /// [`MAX_METADATA_RECORD`](crate::MAX_METADATA_RECORD); refused before it is read.
    #[error("{kind} record at offset {offset} is {size} bytes, over the {} limit", human(*max))]
    RecordTooLarge {
        /// Which record: `GNU long name (L)`, `GNU long link (K)`, `PAX extended header (x)`
        /// or `PAX global header (g)`.
        kind: &'static str,
        /// Offset of the record's header.
        offset: u64,
        /// The size the record declares.
        size: u64,
        /// The limit, in bytes.
        max: u64,
    },
    /// A sparse file's map is malformed or inconsistent with its sizes.
    #[error("sparse file \"{entry}\" at tar offset {offset} has an invalid map: {reason}")]
    SparseMap {
        /// The entry's path, as stored (control characters escaped).
        entry: String,
        /// Offset of the entry's header in the tar.
        offset: u64,
        /// What is wrong with the map.
        reason: String,
    },
    /// Non-zero bytes follow the tar end-of-archive marker.
    #[error("non-zero bytes after the end-of-archive marker at tar offset {offset}")]
    TrailingGarbage {
        /// Offset of the first non-zero byte.
        offset: u64,
    },
    /// Applying one entry to the destination failed.
    #[error("cannot apply entry \"{entry}\" at tar offset {offset}")]
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
    #[error("entry \"{entry}\" at tar offset {offset} needs a directory where there is none")]
    NotADirectory {
        /// The entry's path, as stored.
        entry: String,
        /// Offset of the entry's header in the tar.
        offset: u64,
    },
    /// A hard link names a directory, or a path that does not exist.
    #[error("hard link \"{entry}\" at tar offset {offset} has an invalid target \"{target}\"")]
    InvalidHardlink {
        /// The entry's path, as stored.
        entry: String,
        /// The link target, as stored.
        target: String,
        /// Offset of the entry's header in the tar.
        offset: u64,
    },
    /// An entry's path names nothing that can be created (`/`, `.`, or a whiteout of `..`).
    #[error("entry \"{entry}\" at tar offset {offset} has an invalid path")]
    InvalidPath {
        /// The entry's path, as stored.
        entry: String,
        /// Offset of the entry's header in the tar.
        offset: u64,
    },
    /// A limit was exceeded: one from [`ExtractOptions`](crate::ExtractOptions), or one of
    /// this crate's constants.
    #[error("layer exceeds the {limit} limit of {max} at tar offset {offset}")]
    LimitExceeded {
        /// Which limit: `max_bytes` or `max_entries` (options), `MAX_PAX_RECORDS` or
        /// `MAX_PAX_KEY` (constants).
        limit: &'static str,
        /// The limit's value.
        max: u64,
        /// Where it was exceeded.
        offset: u64,
    },
    /// Applying a directory's mode or mtime after its contents failed.
    #[error("cannot finish directory \"{path}\"")]
    Finish {
        /// The directory, relative to the destination.
        path: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// ` (after entry "NAME")`, or nothing at the start of the stream.
fn after(entry: Option<&str>) -> String {
    entry.map_or_else(String::new, |entry| format!(" (after entry \"{entry}\")"))
}

/// A byte count for messages: `1 MiB` when it is a whole number of MiB or KiB.
fn human(bytes: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    if bytes >= MIB && bytes % MIB == 0 {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes % KIB == 0 {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// `bytes` as text for an error message: control characters, backslashes and bytes that
/// are not UTF-8 are escaped as `\xNN` (a tab as `\t`, a newline as `\n`).
pub fn printable(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for character in chunk.valid().chars() {
            match character {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                control if control.is_control() => {
                    let code = u32::from(control);
                    if code <= 0xff {
                        out.push_str(&format!("\\x{code:02x}"));
                    } else {
                        out.push_str(&format!("\\u{{{code:x}}}"));
                    }
                }
                other => out.push(other),
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}
