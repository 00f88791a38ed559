//! The entry model of a layer built from a list: [`LayerEntry`], [`EntryKind`], and the
//! path cleaning and sort key that order entries depth first.

use std::collections::BTreeMap;

/// What one entry of a layer is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file with these contents.
    File(Vec<u8>),
    /// A directory.
    Dir,
    /// A symbolic link to this target, stored verbatim.
    Symlink(String),
    /// A hard link to this path of the same layer or a lower one.
    Hardlink(String),
    /// A character device (major, minor).
    CharDevice(u32, u32),
    /// A block device (major, minor).
    BlockDevice(u32, u32),
    /// A named pipe.
    Fifo,
    /// A whiteout: the path is deleted from lower layers (stored as `.wh.<name>`).
    Whiteout,
    /// An opaque marker: the directory at the path is emptied of what lower layers put
    /// there (stored as `<path>/.wh..wh..opq`).
    Opaque,
}

/// One entry of a layer built from a list; paths are relative to the root (a leading `/` or
/// `./` is dropped) and use `/` as separator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerEntry {
    /// The path inside the layer.
    pub path: String,
    /// What the entry is.
    pub kind: EntryKind,
    /// Permission bits, with setuid, setgid and sticky.
    pub mode: u32,
    /// Numeric owner.
    pub uid: u64,
    /// Numeric group.
    pub gid: u64,
    /// Seconds since the epoch.
    pub mtime: u64,
    /// Extended attributes, full name (e.g. `user.origin`) to value.
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

impl LayerEntry {
    /// An entry owned by root with mtime 0 and no xattrs.
    pub fn new(path: &str, kind: EntryKind, mode: u32) -> LayerEntry {
        LayerEntry {
            path: path.to_owned(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime: 0,
            xattrs: BTreeMap::new(),
        }
    }

    /// A regular file.
    pub fn file(path: &str, contents: impl Into<Vec<u8>>, mode: u32) -> LayerEntry {
        LayerEntry::new(path, EntryKind::File(contents.into()), mode)
    }

    /// A directory.
    pub fn dir(path: &str, mode: u32) -> LayerEntry {
        LayerEntry::new(path, EntryKind::Dir, mode)
    }

    /// A symbolic link.
    pub fn symlink(path: &str, target: &str) -> LayerEntry {
        LayerEntry::new(path, EntryKind::Symlink(target.to_owned()), 0o777)
    }

    /// A hard link to `target`.
    pub fn hardlink(path: &str, target: &str) -> LayerEntry {
        LayerEntry::new(path, EntryKind::Hardlink(target.to_owned()), 0o644)
    }

    /// A whiteout deleting `path` from lower layers.
    pub fn whiteout(path: &str) -> LayerEntry {
        LayerEntry::new(path, EntryKind::Whiteout, 0o644)
    }

    /// This entry with another owner and group.
    pub fn with_owner(mut self, uid: u64, gid: u64) -> LayerEntry {
        self.uid = uid;
        self.gid = gid;
        self
    }

    /// This entry with another mtime.
    pub fn with_mtime(mut self, mtime: u64) -> LayerEntry {
        self.mtime = mtime;
        self
    }

    /// This entry with one more extended attribute.
    pub fn with_xattr(mut self, name: &str, value: impl Into<Vec<u8>>) -> LayerEntry {
        self.xattrs.insert(name.to_owned(), value.into());
        self
    }
}

/// The bytes of a relative path without a leading `/` or `./`, and without trailing `/`.
pub(super) fn clean_path(path: &str) -> &str {
    let mut path = path;
    loop {
        if let Some(rest) = path.strip_prefix("./") {
            path = rest;
        } else if let Some(rest) = path.strip_prefix('/') {
            path = rest;
        } else {
            break;
        }
    }
    path.trim_end_matches('/')
}

/// The sort key that gives depth-first order with siblings sorted by name bytes.
pub(super) fn path_key(path: &str) -> Vec<&[u8]> {
    clean_path(path).split('/').map(str::as_bytes).collect()
}
