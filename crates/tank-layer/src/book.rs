//! Compact per-entry bookkeeping, so memory stays small for layers of a million entries:
//! the nodes this layer created (by inode number), and lists of directory paths (opaque
//! markers, modes and mtimes to apply at the end) kept in one byte arena.

use std::collections::HashSet;
use std::hash::{BuildHasher as _, RandomState};
use std::io;
use std::os::fd::OwnedFd;

use rustix::fs::{self as rfs, Stat};

/// Inode numbers in a sorted vector (8 bytes each), with recent insertions in a small hash
/// set merged in from time to time.
#[derive(Default)]
pub(crate) struct InodeSet {
    sorted: Vec<u64>,
    recent: HashSet<u64>,
}

/// How many recent insertions are kept unsorted before a merge.
const MERGE_AT: usize = 1 << 14;

impl InodeSet {
    pub(crate) fn insert(&mut self, inode: u64) {
        if self.contains(inode) {
            return;
        }
        self.recent.insert(inode);
        if self.recent.len() >= MERGE_AT {
            let mut added: Vec<u64> = self.recent.drain().collect();
            added.sort_unstable();
            let old = std::mem::take(&mut self.sorted);
            let mut merged = Vec::with_capacity(old.len() + added.len());
            let (mut a, mut b) = (old.iter().peekable(), added.iter().peekable());
            loop {
                let next = match (a.peek(), b.peek()) {
                    (Some(x), Some(y)) if x <= y => a.next(),
                    (Some(_), Some(_)) => b.next(),
                    (Some(_), None) => a.next(),
                    (None, Some(_)) => b.next(),
                    (None, None) => break,
                };
                if let Some(value) = next {
                    merged.push(*value);
                }
            }
            self.sorted = merged;
        }
    }

    pub(crate) fn contains(&self, inode: u64) -> bool {
        self.recent.contains(&inode) || self.sorted.binary_search(&inode).is_ok()
    }
}

/// The nodes this layer created, which whiteouts and opaque markers of the same layer
/// never remove. Recorded by inode number when on the destination's device (8 bytes
/// each). Hard links to lower-layer files share the lower file's inode, so they (and nodes
/// on another device) are recorded by a keyed hash of their directory's inode and their
/// name instead (8 bytes each too; the key is random per extraction, so a layer cannot
/// aim for collisions).
pub(crate) struct Created {
    device: u64,
    inodes: InodeSet,
    names: InodeSet,
    hasher: RandomState,
}

impl Created {
    pub(crate) fn new(device: u64) -> Created {
        Created {
            device,
            inodes: InodeSet::default(),
            names: InodeSet::default(),
            hasher: RandomState::new(),
        }
    }

    fn name_key(&self, dir: &Stat, name: &[u8]) -> u64 {
        self.hasher.hash_one((dir.st_dev, dir.st_ino, name))
    }

    /// Records the node `node` this layer created at `name` in `dir` (not a hard link to
    /// a lower file).
    pub(crate) fn insert_node(
        &mut self,
        node: &Stat,
        dir: &OwnedFd,
        name: &[u8],
    ) -> io::Result<()> {
        if node.st_dev == self.device {
            self.inodes.insert(node.st_ino);
        } else {
            let key = self.name_key(&rfs::fstat(dir)?, name);
            self.names.insert(key);
        }
        Ok(())
    }

    /// Records a hard link this layer created at `name` in `dir` to `target`.
    pub(crate) fn insert_link(
        &mut self,
        target: &Stat,
        dir: &OwnedFd,
        name: &[u8],
    ) -> io::Result<()> {
        if !(target.st_dev == self.device && self.inodes.contains(target.st_ino)) {
            let key = self.name_key(&rfs::fstat(dir)?, name);
            self.names.insert(key);
        }
        Ok(())
    }

    /// Whether `node`, at `name` in the directory whose `fstat` is `dir`, was created by
    /// this layer.
    pub(crate) fn contains(&self, dir: &Stat, name: &[u8], node: &Stat) -> bool {
        (node.st_dev == self.device && self.inodes.contains(node.st_ino))
            || self.names.contains(self.name_key(dir, name))
    }

    /// A filter for emptying a directory: keeps what this layer created.
    pub(crate) fn keeper(&self) -> impl FnMut(&Stat, &[u8], &Stat) -> bool + '_ {
        move |dir, name, node| self.contains(dir, name, node)
    }
}

/// What is kept for one directory of a [`PathList`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    pub(crate) mode: u32,
    pub(crate) mtime: Option<(i64, u32)>,
    /// A lower layer's directory made owner-writable to write into it: `mode` is its
    /// original mode, restored unless a directory entry of this layer gives another.
    pub(crate) loosened: bool,
}

/// Bytes of pending directory records after which they are applied early (see
/// [`PathList::over_budget`]).
const PENDING_BUDGET: usize = 4 << 20;

const LOOSENED: u32 = 1 << 31;

struct Record {
    start: usize,
    length: u32,
    /// The mode, and [`LOOSENED`].
    mode: u32,
    seconds: i64,
    /// Nanoseconds; `u32::MAX` for no mtime.
    nanos: u32,
}

/// Directories whose mode and mtime are applied after their contents, as paths relative
/// to the root (components joined with `/`) in one byte arena, about 32 bytes plus the path
/// per record. Duplicates are allowed: a directory entry's record wins over a loosened
/// one, and among those the last.
#[derive(Default)]
pub(crate) struct PathList {
    arena: Vec<u8>,
    records: Vec<Record>,
}

impl PathList {
    pub(crate) fn push(&mut self, components: &[Vec<u8>], meta: Meta) {
        let start = self.arena.len();
        for (index, component) in components.iter().enumerate() {
            if index > 0 {
                self.arena.push(b'/');
            }
            self.arena.extend_from_slice(component);
        }
        let (seconds, nanos) = meta.mtime.unwrap_or((0, u32::MAX));
        self.records.push(Record {
            start,
            // A path is at most PATH_MAX long to have been opened at all.
            length: u32::try_from(self.arena.len() - start).unwrap_or(u32::MAX),
            mode: (meta.mode & 0o7777) | if meta.loosened { LOOSENED } else { 0 },
            seconds,
            nanos,
        });
    }

    /// Whether the records take more than a few MiB: the caller then applies them early
    /// (so memory stays bounded whatever the number of directories; a directory written
    /// into after that gets a later mtime than the tar's).
    pub(crate) fn over_budget(&self) -> bool {
        self.arena.len() + self.records.len() * std::mem::size_of::<Record>() > PENDING_BUDGET
    }

    /// Sorts the records into the order they are applied in (deepest first) and returns
    /// each directory once with the record that wins, then empties the list.
    pub(crate) fn drain_sorted(&mut self, mut apply: impl FnMut(&[u8], Meta) -> bool) {
        let arena = &self.arena;
        let path = |record: &Record| &arena[record.start..record.start + record.length as usize];
        let depth = |record: &Record| {
            let path = path(record);
            if path.is_empty() {
                0
            } else {
                path.iter().filter(|byte| **byte == b'/').count() + 1
            }
        };
        self.records.sort_unstable_by(|a, b| {
            depth(b)
                .cmp(&depth(a))
                .then_with(|| path(a).cmp(path(b)))
                .then_with(|| (a.mode & LOOSENED).cmp(&(b.mode & LOOSENED)))
                .then_with(|| b.start.cmp(&a.start))
        });
        let mut last: Option<&[u8]> = None;
        for record in &self.records {
            let here = path(record);
            if last == Some(here) {
                continue;
            }
            last = Some(here);
            let meta = Meta {
                mode: record.mode & 0o7777,
                mtime: (record.nanos != u32::MAX).then_some((record.seconds, record.nanos)),
                loosened: record.mode & LOOSENED != 0,
            };
            if !apply(here, meta) {
                break;
            }
        }
        self.records.clear();
        self.arena.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inode_sets_merge_and_find() {
        let mut set = InodeSet::default();
        for inode in (0..MERGE_AT as u64).map(|index| index * 3).rev() {
            set.insert(inode);
        }
        set.insert(3);
        assert!(set.contains(3) && set.contains(0) && !set.contains(1));
        assert!(!set.sorted.is_empty(), "merged at least once");
        assert!(set.sorted.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn pending_directories_come_out_deepest_first_once_each() {
        let meta = |mode, loosened| Meta {
            mode,
            mtime: Some((1, 2)),
            loosened,
        };
        let path = |text: &str| -> Vec<Vec<u8>> {
            text.split('/')
                .map(|part| part.as_bytes().to_vec())
                .collect()
        };
        let mut list = PathList::default();
        list.push(&path("a"), meta(0o755, false));
        list.push(&path("a/b"), meta(0o500, true));
        list.push(&path("a/b"), meta(0o700, false));
        list.push(&path("a/b"), meta(0o750, false));
        list.push(&[], meta(0o711, false));
        list.push(&path("c"), meta(0o555, true));
        let mut seen = Vec::new();
        list.drain_sorted(|path, meta| {
            seen.push((String::from_utf8_lossy(path).into_owned(), meta.mode));
            true
        });
        assert_eq!(
            seen,
            vec![
                ("a/b".to_owned(), 0o750),
                ("a".to_owned(), 0o755),
                ("c".to_owned(), 0o555),
                (String::new(), 0o711),
            ]
        );
        assert!(!list.over_budget());
        for _ in 0..PENDING_BUDGET / 32 {
            list.push(&path("x"), meta(0o755, false));
        }
        assert!(list.over_budget());
    }
}
