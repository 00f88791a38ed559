//! Integration tests of tank-layer: layer rules, compression and diff_id, hostile layers,
//! the comparison with `umoci unpack --rootless`, and the replay of the fuzz corpus.

mod caps;
mod end_of_archive;
mod format;
mod fuzz_corpus;
mod hostile;
mod rules;
mod sparse;
mod tar_formats;
mod umoci;
mod whiteout_order;
mod zstd_frames;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;

use sha2::{Digest as _, Sha256};
use tank_layer::{Compression, Error, ExtractOptions, LayerReport, extract};
use tank_testkit::TarBuilder;

/// Applies an uncompressed layer built by `builder` onto `dest`.
fn apply(dest: &Path, builder: &TarBuilder) -> Result<LayerReport, Error> {
    extract(
        &builder.build()[..],
        Compression::None,
        dest,
        &ExtractOptions::default(),
    )
}

/// `sha256:<hex>` of `bytes`.
fn sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("sha256:{hex}")
}

/// One node of a tree snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    File { mode: u32, content: String },
    Dir { mode: u32 },
    Symlink { target: String },
    Other,
}

/// Every path below `root` (not following symlinks), relative, with type, mode, content
/// hash and link target.
fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Node>) {
    let mut names: Vec<_> = fs::read_dir(dir)
        .expect("readable directory")
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    names.sort();
    for path in names {
        let relative = path
            .strip_prefix(root)
            .expect("below root")
            .to_string_lossy()
            .into_owned();
        let metadata = fs::symlink_metadata(&path).expect("metadata");
        let mode = metadata.permissions().mode() & 0o7777;
        let node = if metadata.file_type().is_symlink() {
            Node::Symlink {
                target: fs::read_link(&path)
                    .expect("link")
                    .to_string_lossy()
                    .into_owned(),
            }
        } else if metadata.is_dir() {
            walk(root, &path, out);
            Node::Dir { mode }
        } else if metadata.is_file() {
            Node::File {
                mode,
                content: sha256(&fs::read(&path).expect("content")),
            }
        } else {
            Node::Other
        };
        out.insert(relative, node);
    }
}

/// The inode number of `path`, not following symlinks.
fn inode(path: &Path) -> u64 {
    fs::symlink_metadata(path).expect("metadata").ino()
}
