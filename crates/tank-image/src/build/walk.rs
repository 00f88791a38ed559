//! Walking directory trees into a layer: one tree ([`super::layer_from_dir`]) or the
//! difference of two ([`super::layer_from_diff`]), with hard-link groups and the parents of
//! each change.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

use super::LayerOptions;
use super::fs::{lstat, read_link, same_contents, sorted_names, user_xattrs};
use super::writer::{Content, LayerBuilder, Meta};
use crate::Error;

/// A walk of one tree, or of two for a diff, writing into one layer.
pub(super) struct Walk {
    pub(super) builder: LayerBuilder,
    /// The tar path of the first path written for each (device, inode) with several links.
    links: HashMap<(u64, u64), Vec<u8>>,
    /// The directories of `upper` the diff walk is inside, outermost first, each with
    /// whether its entry was written. A change inside writes every unwritten one first, so
    /// extracting the change cannot leave a parent with another mtime than in `upper`.
    ancestors: Vec<Ancestor>,
    /// For a diff: the hard-link group (sorted paths sharing an inode) of each path of
    /// `lower` and `upper` that has one.
    pub(super) lower_groups: HashMap<Vec<u8>, Vec<Vec<u8>>>,
    pub(super) upper_groups: HashMap<Vec<u8>, Vec<Vec<u8>>>,
}

struct Ancestor {
    disk: PathBuf,
    path: Vec<u8>,
    metadata: Metadata,
    written: bool,
}

impl Walk {
    pub(super) fn new(options: &LayerOptions) -> Result<Walk, Error> {
        Ok(Walk {
            builder: LayerBuilder::new(options)?,
            links: HashMap::new(),
            ancestors: Vec::new(),
            lower_groups: HashMap::new(),
            upper_groups: HashMap::new(),
        })
    }

    pub(super) fn add_children(&mut self, dir: &Path, relative: &[u8]) -> Result<(), Error> {
        for name in sorted_names(dir)? {
            let child = dir.join(OsStr::from_bytes(&name));
            let metadata = lstat(&child)?;
            let path = join(relative, &name);
            self.add(&child, &path, &metadata)?;
            if metadata.is_dir() {
                self.add_children(&child, &path)?;
            }
        }
        Ok(())
    }

    pub(super) fn diff_children(
        &mut self,
        lower: &Path,
        upper: &Path,
        relative: &[u8],
    ) -> Result<(), Error> {
        let lower_names = sorted_names(lower)?;
        let upper_names = sorted_names(upper)?;
        let (mut l, mut u) = (0, 0);
        while l < lower_names.len() || u < upper_names.len() {
            let order = match (lower_names.get(l), upper_names.get(u)) {
                (Some(a), Some(b)) => a.cmp(b),
                (Some(_), None) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Greater,
            };
            match order {
                std::cmp::Ordering::Less => {
                    let name = &lower_names[l];
                    let mut whiteout = relative.to_vec();
                    if !whiteout.is_empty() {
                        whiteout.push(b'/');
                    }
                    whiteout.extend_from_slice(b".wh.");
                    whiteout.extend_from_slice(name);
                    self.write_ancestors()?;
                    let mtime = self.builder.options.mtime.unwrap_or(0);
                    self.builder.write_whiteout(&whiteout, mtime)?;
                    l += 1;
                }
                std::cmp::Ordering::Greater => {
                    let name = &upper_names[u];
                    let child = upper.join(OsStr::from_bytes(name));
                    let metadata = lstat(&child)?;
                    let path = join(relative, name);
                    self.write_ancestors()?;
                    self.add(&child, &path, &metadata)?;
                    if metadata.is_dir() {
                        self.add_children(&child, &path)?;
                    }
                    u += 1;
                }
                std::cmp::Ordering::Equal => {
                    let name = &upper_names[u];
                    let lower_child = lower.join(OsStr::from_bytes(name));
                    let upper_child = upper.join(OsStr::from_bytes(name));
                    let lower_meta = lstat(&lower_child)?;
                    let upper_meta = lstat(&upper_child)?;
                    let path = join(relative, name);
                    let changed = self.changed(
                        &path,
                        (&lower_child, &lower_meta),
                        (&upper_child, &upper_meta),
                    )?;
                    if changed {
                        self.write_ancestors()?;
                        self.add(&upper_child, &path, &upper_meta)?;
                    }
                    if upper_meta.is_dir() {
                        if lower_meta.is_dir() {
                            self.ancestors.push(Ancestor {
                                disk: upper_child.clone(),
                                path: path.clone(),
                                metadata: upper_meta,
                                written: changed,
                            });
                            let outcome = self.diff_children(&lower_child, &upper_child, &path);
                            self.ancestors.pop();
                            outcome?;
                        } else {
                            self.add_children(&upper_child, &path)?;
                        }
                    }
                    l += 1;
                    u += 1;
                }
            }
        }
        Ok(())
    }

    /// Writes the entries of the enclosing directories not written yet.
    fn write_ancestors(&mut self) -> Result<(), Error> {
        let mut ancestors = std::mem::take(&mut self.ancestors);
        let mut outcome = Ok(());
        for ancestor in ancestors.iter_mut().filter(|ancestor| !ancestor.written) {
            outcome = self.add(&ancestor.disk, &ancestor.path, &ancestor.metadata);
            if outcome.is_err() {
                break;
            }
            ancestor.written = true;
        }
        self.ancestors = ancestors;
        outcome
    }

    /// Whether `upper` differs from `lower` in anything a layer records.
    fn changed(
        &self,
        path: &[u8],
        (lower_path, lower): (&Path, &Metadata),
        (upper_path, upper): (&Path, &Metadata),
    ) -> Result<bool, Error> {
        let (lower_type, upper_type) = (lower.file_type(), upper.file_type());
        let same_type = lower_type.is_dir() == upper_type.is_dir()
            && lower_type.is_file() == upper_type.is_file()
            && lower_type.is_symlink() == upper_type.is_symlink()
            && lower_type.is_fifo() == upper_type.is_fifo()
            && lower_type.is_char_device() == upper_type.is_char_device()
            && lower_type.is_block_device() == upper_type.is_block_device();
        if !same_type
            || lower.uid() != upper.uid()
            || lower.gid() != upper.gid()
            || lower.mtime() != upper.mtime()
            || (!upper_type.is_symlink() && lower.mode() & 0o7777 != upper.mode() & 0o7777)
        {
            return Ok(true);
        }
        if !upper_type.is_dir() && self.lower_groups.get(path) != self.upper_groups.get(path) {
            return Ok(true);
        }
        if upper_type.is_file() {
            if lower.len() != upper.len() || !same_contents(lower_path, upper_path)? {
                return Ok(true);
            }
        } else if upper_type.is_symlink() {
            if read_link(lower_path)? != read_link(upper_path)? {
                return Ok(true);
            }
        } else if (upper_type.is_char_device() || upper_type.is_block_device())
            && lower.rdev() != upper.rdev()
        {
            return Ok(true);
        }
        if self.builder.options.xattrs && user_xattrs(lower_path)? != user_xattrs(upper_path)? {
            return Ok(true);
        }
        Ok(false)
    }

    /// Writes the entry for the file `disk`, stored as `path`.
    fn add(&mut self, disk: &Path, path: &[u8], metadata: &Metadata) -> Result<(), Error> {
        let file_type = metadata.file_type();
        let meta = Meta {
            mode: metadata.mode(),
            uid: u64::from(metadata.uid()),
            gid: u64::from(metadata.gid()),
            mtime: u64::try_from(metadata.mtime()).unwrap_or(0),
        };
        let xattrs = if self.builder.options.xattrs && !file_type.is_symlink() {
            user_xattrs(disk)?
        } else {
            Vec::new()
        };
        let xattrs: Vec<(Vec<u8>, &[u8])> = xattrs
            .iter()
            .map(|(name, value)| (name.clone(), value.as_slice()))
            .collect();
        if !file_type.is_dir() && metadata.nlink() > 1 {
            let key = (metadata.dev(), metadata.ino());
            if let Some(first) = self.links.get(&key) {
                let first = first.clone();
                return self.builder.write(
                    path,
                    tar::EntryType::Link,
                    meta,
                    &[],
                    Content::Link(&first),
                );
            }
            self.links.insert(key, path.to_vec());
        }
        if file_type.is_dir() {
            self.builder.write(
                path,
                tar::EntryType::Directory,
                meta,
                &xattrs,
                Content::None,
            )
        } else if file_type.is_file() {
            let file = File::open(disk).map_err(|source| Error::Io {
                operation: "open",
                path: disk.to_path_buf(),
                source,
            })?;
            self.builder.write(
                path,
                tar::EntryType::Regular,
                meta,
                &xattrs,
                Content::File(file, metadata.len()),
            )
        } else if file_type.is_symlink() {
            let target = read_link(disk)?;
            self.builder.write(
                path,
                tar::EntryType::Symlink,
                meta,
                &[],
                Content::Link(&target),
            )
        } else if file_type.is_fifo() {
            self.builder
                .write(path, tar::EntryType::Fifo, meta, &xattrs, Content::None)
        } else if file_type.is_char_device() || file_type.is_block_device() {
            let rdev = metadata.rdev();
            let entry_type = if file_type.is_char_device() {
                tar::EntryType::Char
            } else {
                tar::EntryType::Block
            };
            self.builder.write(
                path,
                entry_type,
                meta,
                &xattrs,
                Content::Device(rustix::fs::major(rdev), rustix::fs::minor(rdev)),
            )
        } else {
            // Sockets have no tar representation.
            Ok(())
        }
    }
}

/// The hard-link groups below `root`: for each path sharing its inode with another path of
/// the tree, the sorted list of those paths.
pub(super) fn link_groups(root: &Path) -> Result<HashMap<Vec<u8>, Vec<Vec<u8>>>, Error> {
    let mut inodes: HashMap<(u64, u64), Vec<Vec<u8>>> = HashMap::new();
    let mut pending = vec![(root.to_path_buf(), Vec::new())];
    while let Some((dir, relative)) = pending.pop() {
        for name in sorted_names(&dir)? {
            let child = dir.join(OsStr::from_bytes(&name));
            let metadata = lstat(&child)?;
            let path = join(&relative, &name);
            if metadata.is_dir() {
                pending.push((child, path));
            } else if metadata.nlink() > 1 {
                inodes
                    .entry((metadata.dev(), metadata.ino()))
                    .or_default()
                    .push(path);
            }
        }
    }
    let mut groups = HashMap::new();
    for mut paths in inodes.into_values().filter(|paths| paths.len() > 1) {
        paths.sort();
        for path in &paths {
            groups.insert(path.clone(), paths.clone());
        }
    }
    Ok(groups)
}

fn join(relative: &[u8], name: &[u8]) -> Vec<u8> {
    let mut path = relative.to_vec();
    if !path.is_empty() {
        path.push(b'/');
    }
    path.extend_from_slice(name);
    path
}
