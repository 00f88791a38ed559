//! Filesystem helpers: unique temporary names, locked temporary files, directory fsync,
//! removal of trees that hold read-only directories, and tree sizes.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The prefix of every temporary name the cache creates. Final names never start with a dot.
pub(crate) const TEMP_PREFIX: &str = ".tmp-";

/// How many fresh names to try before giving up.
const MAX_NAME_ATTEMPTS: usize = 64;

/// A name part that no other thread or process picks at the same time: pid, time, counter.
pub(crate) fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or(0);
    format!("{}-{nanos:x}-{count}", std::process::id())
}

/// Creates a new temporary file `<dir>/<prefix><unique>`, holding an exclusive lock on it.
///
/// The lock says "a live writer owns this": cleanup removes only temporaries whose lock it
/// can take. Cleanup may remove the name between our create and our lock, so after locking
/// we check that the name still points at our file, and start over with a new name if not.
pub(crate) fn create_locked_temp(dir: &Path, prefix: &str) -> io::Result<(File, PathBuf)> {
    for _ in 0..MAX_NAME_ATTEMPTS {
        let path = dir.join(format!("{prefix}{}", unique_suffix()));
        let file = match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(error),
        };
        file.lock()?;
        if same_file_at(&file, &path)? {
            return Ok((file, path));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free temporary name",
    ))
}

/// Creates a new temporary directory `<dir>/<prefix><unique>`.
pub(crate) fn create_temp_dir(dir: &Path, prefix: &str) -> io::Result<PathBuf> {
    for _ in 0..MAX_NAME_ATTEMPTS {
        let path = dir.join(format!("{prefix}{}", unique_suffix()));
        match fs::create_dir(&path) {
            Ok(()) => return Ok(path),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(error),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free temporary name",
    ))
}

/// Whether `path` names the same inode as the open `file`.
fn same_file_at(file: &File, path: &Path) -> io::Result<bool> {
    let ours = file.metadata()?;
    match fs::symlink_metadata(path) {
        Ok(theirs) => Ok(theirs.dev() == ours.dev() && theirs.ino() == ours.ino()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error),
    }
}

/// Removes the temporary file at `path` if no live writer holds its lock.
/// Returns whether it was removed.
pub(crate) fn remove_abandoned_temp_file(path: &Path) -> io::Result<bool> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(error) => return Err(error),
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(false),
        Err(TryLockError::Error(error)) => return Err(error),
    }
    // The writer may have renamed its temporary into place and let go of the lock since we
    // opened it; then the name is gone (or, in theory, reused) and is not ours to remove.
    if !same_file_at(&file, path)? {
        return Ok(false);
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error),
    }
}

/// Fsyncs a directory, so that renames into it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Removes a tree, first making its directories writable and searchable by the owner so
/// that directories which are read-only in an image can be emptied. Symlinks are never
/// followed. A missing tree is not an error.
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    let metadata = match fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error),
    };
    if !metadata.is_dir() {
        return fs::remove_file(path);
    }
    make_tree_writable(path)?;
    match fs::remove_dir_all(path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn make_tree_writable(dir: &Path) -> io::Result<()> {
    let metadata = fs::symlink_metadata(dir)?;
    let mode = metadata.permissions().mode();
    if mode & 0o700 != 0o700 {
        fs::set_permissions(dir, fs::Permissions::from_mode(mode | 0o700))?;
    }
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            make_tree_writable(&entry.path())?;
        }
    }
    Ok(())
}

/// Makes a tree durable before it is published: one `syncfs(2)` of the filesystem holding
/// it, which writes back every dirty file and directory there (also files the running
/// user cannot open, mode 000 in an image) in one call, instead of an fsync per file
/// (tens of thousands of journal commits for a Linux userland).
pub(crate) fn sync_tree(dir: &Path) -> io::Result<()> {
    let handle = File::open(dir)?;
    rustix::fs::syncfs(&handle)?;
    Ok(())
}

/// The bytes held by a tree: the sizes of its files and symlinks, each inode counted once.
pub(crate) fn tree_size(path: &Path) -> io::Result<u64> {
    let mut seen = HashSet::new();
    tree_size_inner(path, &mut seen)
}

fn tree_size_inner(path: &Path, seen: &mut HashSet<(u64, u64)>) -> io::Result<u64> {
    let metadata = fs::symlink_metadata(path)?;
    if !metadata.is_dir() {
        return Ok(if seen.insert((metadata.dev(), metadata.ino())) {
            metadata.len()
        } else {
            0
        });
    }
    let mut total = 0;
    for entry in fs::read_dir(path)? {
        total += tree_size_inner(&entry?.path(), seen)?;
    }
    Ok(total)
}
