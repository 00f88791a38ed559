//! Opening the files tank keeps in its cache (lock files, temporaries, sidecars, blobs,
//! `layout-version`) without following a symlink and without blocking on a FIFO.
//!
//! Each is opened with `O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC`, then checked with `fstat`
//! to be a regular file: a symlink planted under such a name is refused (never followed,
//! so never created at its target), and a FIFO or device is refused instead of blocking
//! every command. `O_NONBLOCK` has no effect on a regular file's reads and writes.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::error::Error;
use crate::tree::dev_ino;

/// Opens `name` in `dir` for reading the way the cache opens every file it reads: never
/// through a symlink (`ELOOP`), never blocking on a FIFO, close-on-exec. Callers decide
/// what `ENOENT` and `ELOOP` mean for them.
pub(crate) fn open_read_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
) -> rustix::io::Result<std::os::fd::OwnedFd> {
    rfs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// The extra flags of every file tank opens in its cache.
const SAFE_FLAGS: i32 =
    rustix::fs::OFlags::NOFOLLOW.bits() as i32 | rustix::fs::OFlags::NONBLOCK.bits() as i32;

/// How to open a cache file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Read an existing file.
    Read,
    /// Read and write, creating the file when missing (lock files).
    Create,
}

/// Opens the regular file at `path` with `O_NOFOLLOW | O_NONBLOCK`.
///
/// # Errors
///
/// [`Error::UnexpectedFileType`] when it is a symlink, FIFO, socket, device or directory,
/// [`Error::Io`] (operation `open`) otherwise, `NotFound` included.
pub(crate) fn open_regular(path: &Path, access: Access) -> Result<File, Error> {
    let mut options = OpenOptions::new();
    options.read(true).custom_flags(SAFE_FLAGS);
    if access == Access::Create {
        options.write(true).create(true).truncate(false).mode(0o600);
    }
    let file = match options.open(path) {
        Ok(file) => file,
        // O_NOFOLLOW on a symlink.
        Err(error) if error.raw_os_error() == Some(Errno::LOOP.raw_os_error()) => {
            return Err(unexpected(path, "symbolic link"));
        }
        Err(error) => {
            return Err(Error::Io {
                operation: "open",
                path: path.to_path_buf(),
                source: error,
            });
        }
    };
    let file_type = file
        .metadata()
        .map_err(crate::error::io("inspect", path))?
        .file_type();
    if !file_type.is_file() {
        return Err(unexpected(path, describe_std(&file_type)));
    }
    Ok(file)
}

/// The error for a cache entry of the wrong type.
pub(crate) fn unexpected(path: &Path, found: &'static str) -> Error {
    Error::UnexpectedFileType {
        path: path.to_path_buf(),
        found,
        expected: "regular file",
    }
}

fn describe_std(file_type: &std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        "directory"
    } else if file_type.is_symlink() {
        "symbolic link"
    } else if file_type.is_fifo() {
        "FIFO"
    } else if file_type.is_socket() {
        "socket"
    } else if file_type.is_block_device() || file_type.is_char_device() {
        "device"
    } else {
        "special file"
    }
}

/// What [`remove_abandoned_temp_at`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TempOutcome {
    /// It was removed: a temporary file no live writer holds, or an entry of another type
    /// (symlink, FIFO, socket, device), which no writer of tank ever makes.
    Removed,
    /// A live writer holds it, it is gone, or it is a directory (not a temporary file).
    Kept,
}

/// Removes the temporary `name` of the directory `dir` if no live writer holds its lock;
/// everything by fd, nothing followed, nothing that can block.
pub(crate) fn remove_abandoned_temp_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
) -> io::Result<TempOutcome> {
    let stat = match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => stat,
        Err(Errno::NOENT) => return Ok(TempOutcome::Kept),
        Err(error) => return Err(error.into()),
    };
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::Directory => return Ok(TempOutcome::Kept),
        FileType::RegularFile => {}
        // Not something a writer made: unlinking removes the name only.
        _ => return unlink(dir, name),
    }
    let fd = match open_read_at(dir, name) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(TempOutcome::Kept),
        // Swapped for a symlink since the stat: not a writer's file.
        Err(Errno::LOOP) => return unlink(dir, name),
        Err(error) => return Err(error.into()),
    };
    let opened = rfs::fstat(&fd)?;
    if FileType::from_raw_mode(opened.st_mode) != FileType::RegularFile {
        return Ok(TempOutcome::Kept);
    }
    let file = File::from(fd);
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(TempOutcome::Kept),
        Err(TryLockError::Error(error)) => return Err(error),
    }
    // The writer may have renamed its temporary into place and let go of the lock since we
    // opened it; then the name is gone (or, in theory, reused) and is not ours to remove.
    match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(now) if dev_ino(&now) == dev_ino(&opened) => unlink(dir, name),
        Ok(_) | Err(Errno::NOENT) => Ok(TempOutcome::Kept),
        Err(error) => Err(error.into()),
    }
}

fn unlink(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<TempOutcome> {
    match rfs::unlinkat(dir.as_fd(), name, AtFlags::empty()) {
        Ok(()) => Ok(TempOutcome::Removed),
        Err(Errno::NOENT) => Ok(TempOutcome::Kept),
        Err(error) => Err(error.into()),
    }
}
