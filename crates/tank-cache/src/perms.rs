//! Who may reach into the cache: the cache root and its top-level directories are mode
//! 0700 and owned by the user tank runs as.
//!
//! [`Cache::open_with`](crate::Cache::open_with) creates each of them with `mkdir` and then
//! `fchmod`s the opened directory to 0700 (so the umask does not matter), tightens an
//! existing one that is looser to 0700, and refuses a root owned by another user, or a
//! directory that group or others can write and that cannot be tightened, unless
//! [`CacheOptions::allow_untrusted_root`] is set. A root that holds anything besides what
//! tank makes there (`/tmp`, `/var` or a home directory given as the cache) is never
//! chmod-ed: when group or others can write it, it is refused like one that cannot be
//! tightened; else it is used as it is (the directories tank makes in it are 0700).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{self as rfs, Mode};
use rustix::io::Errno;

use crate::error::{Error, Warning};
use crate::tree::open_dir_at;

/// The mode of the cache root and of every directory tank-cache makes at its top.
pub const CACHE_DIR_MODE: u32 = 0o700;

/// How [`Cache::open_with`](crate::Cache::open_with) opens a cache.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheOptions {
    /// Accept a cache root owned by another user than the effective uid, and cache
    /// directories that group or others can write which tank cannot tighten to 0700
    /// (tank still tightens what it can). Off by default: such a cache lets that owner,
    /// or those writers, swap what tank reads, writes and (as root) hands to containers.
    /// The CLI's `--allow-untrusted-cache` sets it.
    pub allow_untrusted_root: bool,
}

impl CacheOptions {
    /// [`CacheOptions::allow_untrusted_root`], builder style.
    #[must_use]
    pub fn allow_untrusted_root(mut self, allow: bool) -> CacheOptions {
        self.allow_untrusted_root = allow;
        self
    }
}

/// Creates (when missing) and opens the cache root, checks its owner and tightens it.
pub(crate) fn open_root(root: &Path, options: &CacheOptions) -> Result<OwnedFd, Error> {
    let create = |source| Error::Io {
        operation: "create directory",
        path: root.to_path_buf(),
        source,
    };
    // Opened first: on every open but the first, the directory is there.
    let fd = match crate::tree::open_dir(root) {
        Ok(fd) => fd,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(create)?;
            }
            match rfs::mkdir(root, Mode::from_raw_mode(CACHE_DIR_MODE)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(error) => return Err(create(error.into())),
            }
            crate::tree::open_dir(root).map_err(crate::error::io("open", root))?
        }
        Err(error) => {
            return Err(Error::Io {
                operation: "open",
                path: root.to_path_buf(),
                source: error,
            });
        }
    };
    let stat = rfs::fstat(&fd).map_err(|error| Error::Io {
        operation: "inspect",
        path: root.to_path_buf(),
        source: error.into(),
    })?;
    let euid = rustix::process::geteuid().as_raw();
    if stat.st_uid != euid && !options.allow_untrusted_root {
        return Err(Error::UntrustedOwner {
            path: root.to_path_buf(),
            owner: stat.st_uid,
            euid,
        });
    }
    let bits = stat.st_mode & 0o7777;
    if bits != CACHE_DIR_MODE && !holds_only_tank_entries(fd.as_fd()) {
        // Not only a tank cache (say `/tmp`, `/var` or a home directory given as the
        // cache): its mode is not ours to change. The directories tank makes in it are 0700 all the same, but one that
        // others can write lets them plant those directories first.
        if bits & 0o022 != 0 && !options.allow_untrusted_root {
            return Err(Error::InsecurePermissions {
                path: root.to_path_buf(),
                mode: bits,
                source: std::io::Error::other(
                    "it holds files tank did not make, so tank leaves its mode alone",
                ),
            });
        }
        return Ok(fd);
    }
    tighten(fd.as_fd(), stat.st_mode, root, options)?;
    Ok(fd)
}

/// The names tank-cache makes at the top of a cache (besides `.tmp-` temporaries).
const TANK_ENTRIES: [&str; 5] = ["layout-version", "lock", "blobs", "rootfs", "refs"];

/// Whether the directory holds nothing but what tank makes there (or nothing): only then
/// does tank set the root's mode.
fn holds_only_tank_entries(fd: BorrowedFd<'_>) -> bool {
    crate::tree::list(fd).is_ok_and(|entries| {
        entries.iter().all(|(name, _)| {
            let name = name.to_string_lossy();
            TANK_ENTRIES.contains(&name.as_ref()) || name.starts_with(crate::fsutil::TEMP_PREFIX)
        })
    })
}

/// Creates (when missing) and opens the directory `name` of `parent`, never following a
/// symlink, and tightens it to 0700.
pub(crate) fn open_subdir(
    parent: BorrowedFd<'_>,
    name: &str,
    path: &Path,
    options: &CacheOptions,
) -> Result<OwnedFd, Error> {
    // Opened first: on every open but the first, the directory is there.
    let mut opened = open_dir_at(parent, name.as_ref());
    if opened
        .as_ref()
        .is_err_and(|error| error.kind() == std::io::ErrorKind::NotFound)
    {
        match rfs::mkdirat(parent, name, Mode::from_raw_mode(CACHE_DIR_MODE)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(error) => {
                return Err(Error::Io {
                    operation: "create directory",
                    path: path.to_path_buf(),
                    source: error.into(),
                });
            }
        }
        opened = open_dir_at(parent, name.as_ref());
    }
    let fd = match opened {
        Ok(fd) => fd,
        Err(error) => {
            let found = match error.raw_os_error().map(Errno::from_raw_os_error) {
                Some(Errno::LOOP | Errno::NOTDIR) => {
                    match rfs::statat(parent, name, rfs::AtFlags::SYMLINK_NOFOLLOW)
                        .map(|stat| rfs::FileType::from_raw_mode(stat.st_mode))
                    {
                        Ok(rfs::FileType::Symlink) => "symbolic link",
                        _ => "non-directory",
                    }
                }
                _ => {
                    return Err(Error::Io {
                        operation: "open",
                        path: path.to_path_buf(),
                        source: error,
                    });
                }
            };
            return Err(Error::UnexpectedFileType {
                path: path.to_path_buf(),
                found,
                expected: "directory",
            });
        }
    };
    let stat = rfs::fstat(&fd).map_err(|error| Error::Io {
        operation: "inspect",
        path: path.to_path_buf(),
        source: error.into(),
    })?;
    tighten(fd.as_fd(), stat.st_mode, path, options)?;
    Ok(fd)
}

/// Sets an open directory to 0700 when its permission bits are anything else. When that
/// fails, refuses a directory group or others can write (unless allowed); a merely
/// readable one is a warning.
fn tighten(
    fd: BorrowedFd<'_>,
    mode: u32,
    path: &Path,
    options: &CacheOptions,
) -> Result<(), Error> {
    let bits = mode & 0o7777;
    if bits == CACHE_DIR_MODE {
        return Ok(());
    }
    let Err(error) = rfs::fchmod(fd, Mode::from_raw_mode(CACHE_DIR_MODE)) else {
        return Ok(());
    };
    if bits & 0o022 != 0 && !options.allow_untrusted_root {
        return Err(Error::InsecurePermissions {
            path: path.to_path_buf(),
            mode: bits,
            source: error.into(),
        });
    }
    if bits & 0o077 != 0 {
        Warning::new(
            "tighten to 0700",
            path,
            format!("mode {bits:04o}: {}", std::io::Error::from(error)),
        );
    }
    Ok(())
}
