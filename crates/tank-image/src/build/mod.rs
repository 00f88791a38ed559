//! Layer building: a directory tree, a list of entries or the difference of two trees becomes
//! one compressed tar layer, streamed in one pass through the compressor into a temporary file
//! (or memory) while both the uncompressed stream (the diff_id) and the compressed one (the
//! blob digest) are hashed. Memory does not grow with file sizes.
//!
//! Output is deterministic: a directory is walked depth first with siblings sorted by the
//! bytes of their names, entry lists are sorted the same way, user and group names are left
//! empty, and gzip headers carry no time or name. Fixed mtimes and owners are options.

mod blob;
mod entry;
mod fs;
mod pipeline;
mod walk;
mod writer;

use std::path::{Path, PathBuf};

/// How a layer's tar stream is compressed (tank-layer's type; gzip is
/// [`LayerOptions::default`]'s).
pub use tank_layer::Compression;

pub use self::blob::{BlobRef, LayerBlob};
use self::entry::path_key;
pub use self::entry::{EntryKind, LayerEntry};
use self::walk::{Walk, link_groups};
pub use self::writer::LayerBuilder;
use crate::Error;

/// What a caller may choose when building a layer; `Default` is gzip into a temporary file
/// under the system temporary directory, with the files' own mtimes and owners.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerOptions {
    /// The compression of the layer blob.
    pub compression: Compression,
    /// Every entry gets this mtime (seconds since the epoch) instead of its own.
    pub mtime: Option<u64>,
    /// Every entry gets this numeric owner and group (e.g. `(0, 0)`) instead of its own.
    pub owner: Option<(u64, u64)>,
    /// Record the `user.*` extended attributes of files read from disk (PAX
    /// `SCHILY.xattr.*` records). Entries given as a list always carry theirs.
    pub xattrs: bool,
    /// The directory for the temporary file holding the compressed layer; the system
    /// temporary directory when `None`.
    pub temp_dir: Option<PathBuf>,
    /// Keep the compressed layer in memory instead of a temporary file (small layers).
    pub in_memory: bool,
}

impl Default for LayerOptions {
    fn default() -> LayerOptions {
        LayerOptions {
            // gzip: the compression every registry and runtime reads.
            compression: Compression::Gzip,
            mtime: None,
            owner: None,
            xattrs: false,
            temp_dir: None,
            in_memory: false,
        }
    }
}

/// A layer holding `entries`, sorted depth first with siblings by name bytes (parents before
/// children; the sort is stable, so entries of the same path keep their order).
pub fn layer_from_entries(
    entries: &[LayerEntry],
    options: &LayerOptions,
) -> Result<LayerBlob, Error> {
    let mut sorted: Vec<&LayerEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| path_key(&a.path).cmp(&path_key(&b.path)));
    let mut builder = LayerBuilder::new(options)?;
    for entry in sorted {
        builder.append(entry)?;
    }
    builder.finish()
}

/// A layer holding everything below `dir` (not `dir` itself), walked depth first with
/// siblings sorted by name bytes, symlinks stored verbatim, hard links (same device and
/// inode) as tar hard links to the first path seen, devices and fifos as such. Sockets are
/// skipped, as tar cannot hold them.
pub fn layer_from_dir(dir: &Path, options: &LayerOptions) -> Result<LayerBlob, Error> {
    let mut walk = Walk::new(options)?;
    walk.add_children(dir, &[])?;
    walk.builder.finish()
}

/// A layer that turns `lower` into `upper` when applied onto it: entries added or changed in
/// `upper` (type, mode, owner, mtime in seconds, size and content of regular files, link
/// targets, device numbers, and `user.*` xattrs when asked), and a `.wh.<name>` whiteout for
/// each path of `lower` missing from `upper` (one for a removed directory, none for its
/// children). A path whose type changed is written anew; the extractor replaces what stands
/// there. A file whose hard-link group (the paths sharing its inode) differs between the
/// trees is written, so link groups come out right. The directories enclosing a change are written too (as containerd's
/// diff does), so extracting the change keeps their mode and mtime as in `upper`.
pub fn layer_from_diff(
    lower: &Path,
    upper: &Path,
    options: &LayerOptions,
) -> Result<LayerBlob, Error> {
    let mut walk = Walk::new(options)?;
    walk.lower_groups = link_groups(lower)?;
    walk.upper_groups = link_groups(upper)?;
    walk.diff_children(lower, upper, &[])?;
    walk.builder.finish()
}

#[cfg(test)]
mod tests;
