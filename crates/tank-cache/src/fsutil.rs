//! Filesystem helpers: unique temporary names, locked temporary files, directory fsync.
//! Tree walks (removal, sizes) are in `tree`.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
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
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
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

/// Fsyncs a directory, so that renames into it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
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
