//! tank-layer applies one OCI image layer (a tar stream, plain, gzip or zstd) onto a
//! directory that already holds the layers below it, and reports the diff_id it computed.
//!
//! ```
//! use tank_layer::{Compression, ExtractOptions, extract};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A one-file layer, built in memory.
//! let mut builder = tar::Builder::new(Vec::new());
//! let mut header = tar::Header::new_gnu();
//! header.set_size(6);
//! header.set_mode(0o644);
//! header.set_cksum();
//! builder.append_data(&mut header, "etc/motd", &b"hello\n"[..])?;
//! let layer = builder.into_inner()?;
//!
//! let dest = tempfile::tempdir()?;
//! let report = extract(&layer[..], Compression::None, dest.path(), &ExtractOptions::default())?;
//! assert_eq!(std::fs::read(dest.path().join("etc/motd"))?, b"hello\n");
//! assert!(report.diff_id.starts_with("sha256:"));
//! assert_eq!(report.files, 1);
//! # Ok(())
//! # }
//! ```
//!
//! Layer rules follow the OCI image-spec: `.wh.<name>` deletes `<name>` from lower layers,
//! `.wh..wh..opq` empties its directory of what lower layers put there, later entries
//! replace earlier ones, and whiteout files never appear in the result. Whiteouts and
//! opaque markers act on lower layers only, whatever the order of entries: they never
//! remove what this layer adds (a `.wh.<name>` naming a directory this layer created or
//! put entries in removes only the lower content inside it, like an opaque marker; one
//! naming a non-directory this layer created leaves it).
//!
//! The tar stream is read by this crate's own streaming reader (v7, ustar, GNU and PAX
//! headers, base-256 numbers, every GNU sparse format); it never holds more than one
//! metadata record of at most [`MAX_METADATA_RECORD`] bytes in memory. A stream ending
//! cleanly between entries without the end-of-archive marker is accepted, as Go's
//! `archive/tar` accepts it, and reported in [`LayerReport::end_of_archive_missing`].
//!
//! Paths are resolved as if `dest` were the root of a chroot: an absolute path starts at
//! `dest`, `..` never climbs above it, and symlinks (also absolute ones and chains) met in
//! parent components are followed *inside* `dest` (`openat2` with `RESOLVE_IN_ROOT`).
//! Escaping entries are therefore contained, not rejected, as umoci and containerd do: a
//! layer that some runtime accepts also extracts here, and what it writes lands where a
//! container would see it. The final component of a path is never followed: an entry
//! replaces a symlink standing at its path instead of writing through it.
//!
//! Cargo features: `zstd` (on by default) reads zstd layers; it builds the zstd C
//! library, so a user who meets only gzip and plain tar layers can turn it off
//! (`default-features = false`), and a zstd layer is then refused with
//! [`Error::CodecNotBuilt`]. gzip (zlib-rs, pure Rust) is always in.
//!
//! This crate does not talk to registries, does not know blob digests or media-type
//! policy beyond picking a decompressor, and does not compare the diff_id it reports:
//! the caller checks it against the image config's `rootfs.diff_ids`.
//!
//! # Limitations
//!
//! - Linux only (`openat2`, `*at` calls). Where `openat2` is missing (`ENOSYS`, kernels
//!   before 5.6), a component walk with `O_NOFOLLOW` is used, which refuses symlinked
//!   parent directories with an error instead of resolving them in-root.
//! - Other processes changing `dest` during extraction are outside the threat model: a few
//!   permission fixes on read-only directories use `chmodat` by name after a check.
//! - GNU sparse files (old GNU type `S` with extension headers, PAX 0.0, 0.1 and 1.0) are
//!   written segment by segment at their offsets and then given their real size: holes
//!   are never produced, so a petabyte of holes costs no time (the destination filesystem
//!   must accept the size: ext4 stops at 16 TiB). Maps are capped at
//!   [`MAX_SPARSE_SEGMENTS`] segments. Callers extracting untrusted layers set
//!   `max_bytes`, which also bounds a sparse file's real size.
//! - Only `user.*` extended attributes are applied; others are skipped and counted.
//! - Memory does not grow with the size of file contents or metadata records (capped
//!   at [`MAX_METADATA_RECORD`]), and little with the number of entries: 8 bytes per node
//!   this layer creates (its inode number, or a keyed hash of its directory and name for
//!   hard links to lower files), so that whiteouts and opaque markers can spare them; the
//!   directories whose mode and mtime wait for their contents are kept by path, a few
//!   MiB at most, then applied early (a directory written into after that keeps the
//!   later mtime). Measured with `examples/bookkeeping_rss.rs` (peak RSS of the whole
//!   extraction, 2 MiB before): 20 MiB for a million files, 24 MiB for a million
//!   directories; callers bound the entry count with `max_entries`.
//! - On error, `dest` is left partly extracted (never anything outside it): the caller
//!   extracts into a temporary directory and discards it.

// No unwrap() in library code; unit tests may (clippy.toml: allow-unwrap-in-tests).
#![deny(clippy::unwrap_used)]

mod apply;
mod book;
mod content;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod pipe;
mod root;
mod stream;
mod tar;

use std::io::Read;
use std::path::Path;
use std::sync::mpsc;

pub use error::{Error, printable};
pub use stream::Compression;

/// The largest metadata record accepted: a GNU long name (`L`) or long link (`K`), or a
/// PAX extended (`x`) or global (`g`) header, 1 MiB as in Go's `archive/tar`. A record
/// declaring more is refused with [`Error::RecordTooLarge`] before any of it is read.
pub const MAX_METADATA_RECORD: u64 = 1 << 20;

/// The most segments a sparse file's map may have (old GNU headers and extension blocks,
/// PAX 0.0, 0.1 and 1.0 alike); each costs 16 bytes while the file is written.
pub const MAX_SPARSE_SEGMENTS: usize = 1 << 18;

/// The most records one PAX header may hold.
pub const MAX_PAX_RECORDS: usize = 1 << 16;

/// The longest key of a PAX record, in bytes (an xattr name is at most 255).
pub const MAX_PAX_KEY: usize = 1024;

/// What a caller may choose about an extraction; `Default` suits unprivileged pulls.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtractOptions {
    /// Apply the owner and group recorded in the tar (only when running as root).
    pub preserve_ownership: bool,
    /// Create device nodes (only when running as root); otherwise they are skipped and
    /// counted. Fifos need no privilege and are always created.
    pub create_devices: bool,
    /// Refuse layers whose uncompressed tar is larger than this many bytes, and sparse
    /// files whose real (expanded) size is, whatever their format. `None`: no limit.
    pub max_bytes: Option<u64>,
    /// Refuse layers with more than this many entries (every header that is not a
    /// metadata record: files, directories, links, whiteouts, skipped entries and PAX
    /// global headers count). Memory grows with the entry count, see the crate's
    /// Limitations. `None`: no limit.
    pub max_entries: Option<u64>,
}

/// What an extraction did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LayerReport {
    /// `sha256:<hex>` of the uncompressed tar stream, including its end-of-archive padding.
    pub diff_id: String,
    /// Size of the uncompressed tar stream.
    pub bytes: u64,
    /// Tar entries read (including whiteouts and skipped ones).
    pub entries: u64,
    /// Regular files written.
    pub files: u64,
    /// Directories created or updated.
    pub dirs: u64,
    /// Symbolic links created.
    pub symlinks: u64,
    /// Hard links created.
    pub hardlinks: u64,
    /// Whiteouts and opaque markers applied.
    pub whiteouts: u64,
    /// Device nodes and fifos created.
    pub devices: u64,
    /// Device nodes skipped (not root, or not asked for).
    pub skipped_devices: u64,
    /// `user.*` extended attributes applied.
    pub xattrs: u64,
    /// Extended attributes skipped (not `user.*`, or unsupported by the filesystem).
    pub skipped_xattrs: u64,
    /// Other entries skipped (PAX global headers, unknown types).
    pub skipped_other: u64,
    /// The stream ended cleanly between two entries without the end-of-archive marker (two
    /// zero blocks), or with only part of it. Such layers are accepted, as Go's
    /// `archive/tar` (and so containerd, Docker and umoci) accepts them; the caller may
    /// note it. A stream cut inside a header or an entry's data is an error.
    pub end_of_archive_missing: bool,
}

/// Applies one layer's tar `stream` onto `dest`, which holds the layers below it.
///
/// The stream is decompressed according to `compression` (checked against its magic
/// bytes) on a second thread, hashed into the diff_id on a third, and parsed and applied
/// entry by entry on this one; memory does not grow with the layer's size (a few 256 KiB
/// chunks are in flight).
/// The returned report carries the diff_id for the caller to check.
pub fn extract<R: Read + Send>(
    stream: R,
    compression: Compression,
    dest: &Path,
    options: &ExtractOptions,
) -> Result<LayerReport, Error> {
    let root = root::Root::open(dest).map_err(|source| Error::OpenDestination {
        path: dest.to_path_buf(),
        source,
    })?;
    let decompressed = stream::decompress(stream, compression)?;
    let counting = stream::CountingReader::new(decompressed, options.max_bytes);
    let mut extraction =
        apply::Extraction::new(options, root).map_err(|source| Error::OpenDestination {
            path: dest.to_path_buf(),
            source,
        })?;
    let (outcome, counting, hasher) = std::thread::scope(|scope| {
        let (chunks_in, chunks_out) = mpsc::sync_channel(pipe::DEPTH);
        let (hashed_in, hashed_out) = mpsc::sync_channel(pipe::DEPTH);
        let (recycle_in, recycle_out) = mpsc::sync_channel(2 * pipe::DEPTH + 2);
        let recycle_from_hasher = recycle_in.clone();
        let hasher = scope.spawn(move || pipe::hash(hashed_out, recycle_from_hasher));
        let producer =
            scope.spawn(move || pipe::produce(counting, hashed_in, chunks_in, recycle_out));
        let mut reader = tar::Reader::new(pipe::ChannelReader::new(chunks_out, recycle_in));
        let outcome = extraction.run(&mut reader);
        let end_of_archive_missing = reader.end_of_archive_missing;
        // Dropping the receiver stops a producer still sending after a failure.
        drop(reader);
        (
            outcome.map(|()| end_of_archive_missing),
            producer.join(),
            hasher.join(),
        )
    });
    let thread_panicked = |which: &str| Error::Stream {
        offset: 0,
        after_entry: None,
        source: std::io::Error::other(format!("the {which} thread panicked")),
    };
    let counting = counting.map_err(|_| thread_panicked("decompression"))?;
    let hasher = hasher.map_err(|_| thread_panicked("hashing"))?;
    if counting.limit_hit {
        return Err(Error::LimitExceeded {
            limit: "max_bytes",
            max: options.max_bytes.unwrap_or(0),
            offset: counting.passed(),
        });
    }
    let end_of_archive_missing = outcome?;
    extraction.finish()?;
    let bytes = counting.passed();
    let mut report = extraction.into_report();
    report.bytes = bytes;
    report.end_of_archive_missing = end_of_archive_missing;
    report.diff_id = stream::diff_id(hasher);
    Ok(report)
}
