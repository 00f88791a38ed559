//! Compact per-entry bookkeeping, so memory stays small for layers of a million entries:
//! the nodes this layer created (by inode number), and lists of directory paths (opaque
//! markers, modes and mtimes to apply at the end) kept in one byte arena.

use std::collections::HashSet;

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
/// never remove. Recorded by inode number on the destination's device; hard links to
/// lower-layer files (which share the lower file's inode) and nodes on another device
/// are recorded by path instead.
pub(crate) struct Created {
    device: u64,
    inodes: InodeSet,
    paths: HashSet<Box<[u8]>>,
}

impl Created {
    pub(crate) fn new(device: u64) -> Created {
        Created {
            device,
            inodes: InodeSet::default(),
            paths: HashSet::new(),
        }
    }

    /// Records a node this layer created (not a hard link to a lower file).
    pub(crate) fn insert_node(&mut self, device: u64, inode: u64, path: impl FnOnce() -> Vec<u8>) {
        if device == self.device {
            self.inodes.insert(inode);
        } else {
            self.paths.insert(path().into_boxed_slice());
        }
    }

    /// Records a hard link this layer created at `path`; when its target is a lower-layer
    /// file, by path.
    pub(crate) fn insert_link(&mut self, device: u64, inode: u64, path: impl FnOnce() -> Vec<u8>) {
        if !(device == self.device && self.inodes.contains(inode)) {
            self.paths.insert(path().into_boxed_slice());
        }
    }

    /// A filter for emptying the directory at `base` (relative, joined with `/`): keeps
    /// what this layer created.
    pub(crate) fn keeper<'a>(
        &'a self,
        base: &'a [u8],
    ) -> impl FnMut(&[&[u8]], &rustix::fs::Stat) -> bool + 'a {
        let mut path = Vec::new();
        move |relative, stat| {
            path.clear();
            path.extend_from_slice(base);
            for component in relative {
                if !path.is_empty() {
                    path.push(b'/');
                }
                path.extend_from_slice(component);
            }
            self.contains(stat.st_dev, stat.st_ino, &path)
        }
    }

    /// Whether the node with this device and inode at `path` (relative, joined with `/`)
    /// was created by this layer.
    pub(crate) fn contains(&self, device: u64, inode: u64, path: &[u8]) -> bool {
        (device == self.device && self.inodes.contains(inode)) || self.paths.contains(path)
    }
}

/// What is kept for one path of a [`PathList`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    pub(crate) mode: u32,
    pub(crate) mtime: Option<(i64, u32)>,
}

struct Record {
    start: usize,
    length: u32,
    depth: u32,
    mode: u32,
    /// Seconds and nanoseconds; nanoseconds `u32::MAX` for no mtime.
    seconds: i64,
    nanos: u32,
}

/// Paths relative to the root (components joined with `/`) with a mode and mtime each,
/// stored in one byte arena (about 32 bytes plus the path per record). Duplicates are
/// allowed; the last one recorded for a path wins.
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
            // A path is at most PATH_MAX to have been opened at all.
            length: u32::try_from(self.arena.len() - start).unwrap_or(u32::MAX),
            depth: u32::try_from(components.len()).unwrap_or(u32::MAX),
            mode: meta.mode,
            seconds,
            nanos,
        });
    }

    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// The path and meta of record `index`.
    pub(crate) fn get(&self, index: usize) -> (&[u8], u32, Meta) {
        let record = &self.records[index];
        let end = record.start + record.length as usize;
        let mtime = (record.nanos != u32::MAX).then_some((record.seconds, record.nanos));
        (
            &self.arena[record.start..end],
            record.depth,
            Meta {
                mode: record.mode,
                mtime,
            },
        )
    }
}
