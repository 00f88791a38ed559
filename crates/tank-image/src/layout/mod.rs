//! OCI image layouts (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`): what a layout holds
//! ([`Layout`], [`LayoutEntry`], [`ImageOrIndex`], [`LayoutItem`]); the one reader
//! ([`read_layout`], `read.rs`), the one writer ([`write_layout`], `write.rs`) and the one
//! way a blob file lands in `blobs/` (`blob_file.rs`).

mod blob_file;
mod read;
mod write;

use std::io;
use std::path::{Path, PathBuf};

use tank_reference::Digest;

use crate::assemble::{Image, ImageIndex};
use crate::oci::Descriptor;
use crate::{Error, Platform};

pub(crate) use blob_file::PendingBlob;
pub use read::read_layout;
pub use write::write_layout;

/// The most `oci-layout` may hold (it is one small JSON object).
const LAYOUT_FILE_LIMIT: u64 = 64 * 1024;

const LAYOUT_FILE: &str = "oci-layout";
const LAYOUT_CONTENT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Something a layout can hold under a tag: an image or an index, borrowed.
#[derive(Clone, Copy, Debug)]
pub enum LayoutItem<'a> {
    /// One image.
    Image(&'a Image),
    /// An index and its images.
    Index(&'a ImageIndex),
}

impl<'a> From<&'a Image> for LayoutItem<'a> {
    fn from(image: &'a Image) -> LayoutItem<'a> {
        LayoutItem::Image(image)
    }
}

impl<'a> From<&'a ImageIndex> for LayoutItem<'a> {
    fn from(index: &'a ImageIndex) -> LayoutItem<'a> {
        LayoutItem::Index(index)
    }
}

impl<'a> From<&'a ImageOrIndex> for LayoutItem<'a> {
    fn from(item: &'a ImageOrIndex) -> LayoutItem<'a> {
        match item {
            ImageOrIndex::Image(image) => LayoutItem::Image(image),
            ImageOrIndex::Index(index) => LayoutItem::Index(index),
        }
    }
}

/// An image or an index read from a layout.
#[derive(Clone, Debug)]
pub enum ImageOrIndex {
    /// One image.
    Image(Image),
    /// An index and its images.
    Index(ImageIndex),
}

impl ImageOrIndex {
    /// The digest of the manifest or index.
    pub fn manifest_digest(&self) -> &Digest {
        match self {
            ImageOrIndex::Image(image) => image.manifest_digest(),
            ImageOrIndex::Index(index) => index.manifest_digest(),
        }
    }

    /// The bytes of the manifest or index.
    pub fn manifest_bytes(&self) -> &[u8] {
        match self {
            ImageOrIndex::Image(image) => image.manifest_bytes(),
            ImageOrIndex::Index(index) => index.manifest_bytes(),
        }
    }
}

/// One entry of a layout's `index.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayoutEntry {
    tag: Option<String>,
    descriptor: Descriptor,
    platform: Option<Platform>,
}

impl LayoutEntry {
    /// The tag (`org.opencontainers.image.ref.name`), if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The manifest or index the entry points at.
    pub fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    /// The platform the entry declares, if any.
    pub fn platform(&self) -> Option<&Platform> {
        self.platform.as_ref()
    }
}

/// An OCI image layout on disk, its `index.json` read.
#[derive(Clone, Debug)]
pub struct Layout {
    dir: PathBuf,
    entries: Vec<LayoutEntry>,
}

impl Layout {
    /// The layout's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The entries of `index.json`, in its order.
    pub fn entries(&self) -> &[LayoutEntry] {
        &self.entries
    }

    /// The tags, in `index.json` order.
    pub fn tags(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().filter_map(LayoutEntry::tag)
    }

    /// The entry tagged `tag` (the last one, if a layout repeats a tag).
    pub fn resolve(&self, tag: &str) -> Option<&LayoutEntry> {
        self.entries
            .iter()
            .rev()
            .find(|entry| entry.tag() == Some(tag))
    }

    /// The layout at `dir` without its `index.json`, to read the blobs of manifests held in
    /// memory (a copy reads back what it wrote before it adds the `index.json` entry).
    pub(crate) fn blobs_of(dir: &Path) -> Layout {
        Layout {
            dir: dir.to_path_buf(),
            entries: Vec::new(),
        }
    }
}

pub(crate) fn io_error(operation: &'static str, path: &Path, source: io::Error) -> Error {
    Error::Io {
        operation,
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn invalid_layout(path: &Path, problem: impl Into<String>) -> Error {
    Error::InvalidLayout {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}
