//! tank-cache: the on-disk, content-addressed store of verified blobs, assembled root
//! filesystems and ref sidecars that make offline pulls possible.
//!
//! ```
//! use tank_cache::{Cache, RootfsGuard};
//! use tank_reference::{Algorithm, Digest};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let cache = Cache::open(dir.path())?;
//!
//! // A name under blobs/ always means verified content.
//! let bytes = b"{\"architecture\":\"amd64\"}";
//! let digest = Digest::of(Algorithm::Sha256, bytes);
//! let path = cache.put_blob_bytes(&digest, bytes)?;
//! assert_eq!(cache.blob_path(&digest), Some(path));
//!
//! // A rootfs is built under a temporary name and renamed when complete.
//! match cache.build_rootfs(&digest)? {
//!     RootfsGuard::Build(builder) => {
//!         std::fs::write(builder.path().join("hello"), "world")?;
//!         builder.commit()?;
//!     }
//!     RootfsGuard::Ready(_) => unreachable!("nobody else built it"),
//! }
//! assert!(cache.rootfs_path(&digest).is_some());
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! This layout and the ref JSON are a stability boundary: a newer tank reads an older cache.
//!
//! ```text
//! <cache>/layout-version              "1": refused (Error::NewerLayout) when newer than this tank
//! <cache>/lock                        cache-wide lock: pulls shared, gc exclusive
//! <cache>/blobs/<algo>/<hex>          verified blob bytes (algo: sha256 or sha512)
//! <cache>/blobs/<algo>/.tmp-<unique>  a blob being written, locked by its writer
//! <cache>/rootfs/<algo>/<hex>         the rootfs assembled from the manifest <algo>:<hex>
//! <cache>/rootfs/<algo>/.tmp-<hex>-<unique>  a rootfs being built
//! <cache>/rootfs/.lock-<algo>-<hex>   the build lock of one rootfs (never removed: a removed lock file
//!                                     would let two builders hold "the" lock at once)
//! <cache>/refs/<registry>/<repository>/<tag-or-digest>/<platform>.json   ref sidecars
//! ```
//!
//! Every ref path component is encoded: bytes other than `a-z 0-9 _ -` (and `.` past the
//! first byte) become `%XX` (upper-case hex), so `[::1]:5000` is `%5B%3A%3A1%5D%3A5000`,
//! a repository `library/alpine` is the single component `library%2Falpine`, a platform
//! `linux/arm64/v8` is `linux%2Farm64%2Fv8.json`, and no component can be `..`, start
//! with a dot, or hold a `/`. The tag-or-digest component is the reference's digest when
//! it has one, else its tag, else `latest`.
//!
//! # Concurrency and crash safety
//!
//! Locks are `flock`-style locks taken with std's `File::lock`/`try_lock` (stable since
//! Rust 1.89; no extra crate), released by the kernel when a process dies.
//! - Blobs: each writer writes its own locked temporary next to the final name, verifies
//!   it, fsyncs it, renames it into place and fsyncs the directory. If the final name
//!   already exists, another writer won with the same verified bytes and ours is dropped.
//!   The verification is the writer's own sha256 ([`Cache::blob_writer`]), or, with
//!   [`Cache::blob_writer_checked_by_caller`], the caller's check over exactly the bytes
//!   written (tank-registry's digest check of a download), so a fresh blob is hashed once.
//! - Rootfs: a builder holds `rootfs/.lock-<algo>-<hex>` exclusively (blocking) while it
//!   builds; a second builder of the same digest waits, then finds it
//!   [`RootfsGuard::Ready`]. Different digests proceed in parallel.
//! - Cleanup: [`Cache::open`] removes temporaries that no live writer owns: a temporary
//!   file whose own lock can be taken, a temporary rootfs whose build lock can be taken.
//!   Since a dead process holds no lock, whatever a crash left behind goes at the next
//!   open; a live writer's temporary is never touched. A leftover that cannot be removed
//!   (an immutable file, a mount point, EACCES/EPERM/EBUSY) is a [`Warning`], logged with
//!   `tracing::warn!` and listed in [`CleanupReport::warnings`]: it never fails
//!   [`Cache::open`], and is tried again at the next open.
//! - gc takes the cache-wide lock exclusively; a puller holds [`Cache::lock_shared`] from
//!   its first blob to its ref sidecar so gc cannot remove what it is about to reference.
//!
//! # Hostile trees and other users
//!
//! A rootfs holds whatever an image put there, and a process running in it may change it
//! while tank works on it. So:
//! - Every walk of a tree (removal, the make-writable step before it, measuring for
//!   [`Cache::list_refs`] and [`Cache::gc`], [`Cache::verify`], the cleanup at open) works
//!   from directory fds, one name at a time (`openat` with `O_NOFOLLOW | O_DIRECTORY`,
//!   `unlinkat`, `fstatat(AT_SYMLINK_NOFOLLOW)`), with an explicit work list instead of
//!   recursion and at most 32 directory fds open whatever the depth. Depth and path length
//!   (beyond `PATH_MAX`) do not matter. Symlinks are never followed: they are removed or
//!   measured as themselves. Another filesystem mounted inside a tree is never entered.
//! - Nothing is chmod-ed by path: a directory is made writable (owner `rwx` added) with
//!   `fchmod` on the fd just opened with `O_NOFOLLOW`, so swapping it for a symlink
//!   (`renameat2(RENAME_EXCHANGE)`) cannot redirect the chmod. When tank is not root and
//!   the directory is unreadable, it is opened with `O_PATH` and chmod-ed through
//!   `/proc/self/fd/N`, which names that open inode.
//! - The files tank opens in the cache (lock files, temporaries, ref sidecars, blobs,
//!   `layout-version`) are opened with `O_NOFOLLOW | O_NONBLOCK` and checked to be regular
//!   files: a symlink or FIFO planted under such a name is refused with
//!   [`Error::UnexpectedFileType`] (or skipped with a warning when listing, or removed by
//!   cleanup and verify), never followed, never waited on.
//! - The cache root and its `blobs/`, `rootfs/`, `refs/` and per-algorithm directories are
//!   mode 0700 ([`CACHE_DIR_MODE`]): created so whatever the umask, set so on every open
//!   when looser (the root only when it holds nothing but tank's entries: a `/tmp` or
//!   home directory given as the cache is never chmod-ed). Other users cannot run an image's setuid files from `rootfs/`, write into
//!   cached trees, or read sidecars. A root owned by another user than the effective uid
//!   is refused ([`Error::UntrustedOwner`]), and so is a directory group or others can
//!   write that cannot (or, not being only a cache, may not) be set to 0700
//!   ([`Error::InsecurePermissions`]), unless
//!   [`CacheOptions::allow_untrusted_root`] is set. The root itself may be reached through
//!   a symlink; the directories in it may not.
//!
//! This crate does not talk to a registry, know any pull policy (offline, refresh,
//! platform choice), parse manifests or tar streams, or extract layers: callers hand it
//! digests, bytes and directories they filled.
//!
//! # Limitations
//!
//! - Unix only (it uses inode numbers and Unix permissions).
//! - Locks are advisory `flock` locks: they do not work across NFS mounts that lack them.
//! - A rootfs commit makes the tree durable with one `syncfs(2)` of the cache's filesystem,
//!   which also writes back other dirty data on that filesystem (cheap next to an fsync per
//!   file of a large image). While a rootfs is being filled, a thread of the builder calls
//!   `syncfs` every 250 ms so the device writes early files while later ones are created
//!   and the final `syncfs` waits less; the same data is written, only sooner.
//! - A ref component longer than the filesystem's name limit (255 bytes after encoding) is
//!   refused by the operating system with an [`Error::Io`].
//! - [`Cache::gc`] waits for every [`CacheLock`] to be dropped; calling it while holding
//!   one in the same thread deadlocks.

// No unwrap() in library code; unit tests may (clippy.toml: allow-unwrap-in-tests).
#![deny(clippy::unwrap_used)]

mod blob;
mod error;
mod files;
mod fsutil;
mod maintenance;
mod perms;
mod refs;
mod refwalk;
mod rootfs;
mod tree;

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{Read as _, Write as _};
use std::os::fd::AsFd as _;
use std::path::{Path, PathBuf};

pub use blob::BlobWriter;
pub use error::{Error, Warning};
pub use maintenance::{CleanupReport, GcReport, VerifyReport};
pub use perms::{CACHE_DIR_MODE, CacheOptions};
pub use refs::{CachedRef, REF_RECORD_VERSION, RefKey, RefRecord};
pub use rootfs::{RootfsBuilder, RootfsGuard};

use error::io;
use files::Access;

/// The layout version this tank writes and the newest it reads.
pub const LAYOUT_VERSION: u32 = 1;

/// Finds the cache directory from an explicit choice and the environment.
#[derive(Debug, Clone, Copy)]
pub struct CacheDir;

impl CacheDir {
    /// The cache directory: `explicit`, else `TANK_CACHE`, else `$XDG_CACHE_HOME/tank`,
    /// else `$HOME/.cache/tank`. Empty variables count as unset, and a relative
    /// `XDG_CACHE_HOME` is ignored, as the XDG base directory specification says.
    ///
    /// # Errors
    ///
    /// [`Error::NoCacheDir`] when none of them is set.
    pub fn resolve(explicit: Option<PathBuf>) -> Result<PathBuf, Error> {
        Self::resolve_with(explicit, |name| std::env::var_os(name))
    }

    /// [`CacheDir::resolve`] with the environment given as a lookup function, for tests
    /// and for callers that carry their own environment.
    ///
    /// # Errors
    ///
    /// [`Error::NoCacheDir`] when none of them is set.
    pub fn resolve_with(
        explicit: Option<PathBuf>,
        env: impl Fn(&str) -> Option<OsString>,
    ) -> Result<PathBuf, Error> {
        if let Some(dir) = explicit {
            return Ok(dir);
        }
        let non_empty = |name: &str| env(name).filter(|value| !value.is_empty());
        if let Some(dir) = non_empty("TANK_CACHE") {
            return Ok(PathBuf::from(dir));
        }
        if let Some(dir) = non_empty("XDG_CACHE_HOME").map(PathBuf::from)
            && dir.is_absolute()
        {
            return Ok(dir.join("tank"));
        }
        if let Some(home) = non_empty("HOME") {
            return Ok(PathBuf::from(home).join(".cache").join("tank"));
        }
        Err(Error::NoCacheDir)
    }
}

/// An open cache directory. Cheap to clone; every method works on the filesystem, so
/// clones, threads and processes share one cache safely.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

/// A hold on the cache-wide lock; dropping it releases the lock.
#[derive(Debug)]
pub struct CacheLock {
    _file: File,
}

impl Cache {
    /// Opens (creating when needed) the cache at `dir` with the default
    /// [`CacheOptions`]: see [`Cache::open_with`].
    ///
    /// # Errors
    ///
    /// As [`Cache::open_with`].
    pub fn open(dir: impl AsRef<Path>) -> Result<Cache, Error> {
        Cache::open_with(dir, &CacheOptions::default())
    }

    /// Opens (creating when needed) the cache at `dir`, makes sure other users cannot
    /// reach into it, checks its layout version and removes temporaries left by crashed
    /// writers.
    ///
    /// The cache root and its `blobs/`, `rootfs/` and `refs/` directories (and the
    /// per-algorithm directories in `blobs/` and `rootfs/`) are created with mode 0700
    /// whatever the umask, and an existing one with any other mode is set to 0700 (the
    /// root only when it holds nothing but what tank makes there: a `/tmp` or home
    /// directory given as the cache is never chmod-ed, and refused when group or others
    /// can write it). The root may be reached through a symlink; the directories in it
    /// may not.
    ///
    /// Cleanup never fails the open: a leftover it cannot remove is logged with
    /// `tracing::warn!` and left for the next open ([`Cache::cleanup`] lists it).
    ///
    /// # Errors
    ///
    /// [`Error::UntrustedOwner`] when the root is owned by another user than the effective
    /// uid, [`Error::InsecurePermissions`] when a cache directory that group or others can
    /// write cannot be set to 0700 (both unless [`CacheOptions::allow_untrusted_root`]),
    /// [`Error::UnexpectedFileType`] when one of those directories is a symlink or not a
    /// directory, [`Error::Io`] when a directory cannot be created or read,
    /// [`Error::NewerLayout`] or [`Error::BadLayoutVersion`] when the layout is not one this
    /// tank reads.
    pub fn open_with(dir: impl AsRef<Path>, options: &CacheOptions) -> Result<Cache, Error> {
        let cache = Cache {
            root: dir.as_ref().to_path_buf(),
        };
        let root = perms::open_root(&cache.root, options)?;
        for top in ["blobs", "rootfs"] {
            let top_path = cache.root.join(top);
            let top_fd = perms::open_subdir(root.as_fd(), top, &top_path, options)?;
            for algorithm in ["sha256", "sha512"] {
                perms::open_subdir(
                    top_fd.as_fd(),
                    algorithm,
                    &top_path.join(algorithm),
                    options,
                )?;
            }
        }
        perms::open_subdir(root.as_fd(), "refs", &cache.root.join("refs"), options)?;
        cache.check_layout_version()?;
        // Its warnings were logged as they were found.
        drop(cache.cleanup());
        Ok(cache)
    }

    /// Opens the cache at [`CacheDir::resolve`]`(None)`.
    ///
    /// # Errors
    ///
    /// As [`CacheDir::resolve`] and [`Cache::open`].
    pub fn open_default() -> Result<Cache, Error> {
        Cache::open(CacheDir::resolve(None)?)
    }

    /// The cache directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Takes the cache-wide lock shared, waiting while a gc runs. A puller holds it from
    /// its first blob to its ref sidecar, so gc cannot remove what it is about to reference.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the lock file cannot be opened or locked.
    pub fn lock_shared(&self) -> Result<CacheLock, Error> {
        let file = self.open_lock_file()?;
        file.lock_shared()
            .map_err(io("lock", self.root.join("lock")))?;
        Ok(CacheLock { _file: file })
    }

    /// Takes the cache-wide lock exclusively, waiting for every shared holder.
    pub(crate) fn lock_exclusive(&self) -> Result<CacheLock, Error> {
        let file = self.open_lock_file()?;
        file.lock().map_err(io("lock", self.root.join("lock")))?;
        Ok(CacheLock { _file: file })
    }

    fn open_lock_file(&self) -> Result<File, Error> {
        files::open_regular(&self.root.join("lock"), Access::Create)
    }

    fn check_layout_version(&self) -> Result<(), Error> {
        let path = self.root.join("layout-version");
        match read_small(&path) {
            Ok(content) => {
                let found: u32 = content
                    .trim()
                    .parse()
                    .map_err(|_| Error::BadLayoutVersion {
                        path: path.clone(),
                        content: content.chars().take(32).collect(),
                    })?;
                if found > LAYOUT_VERSION {
                    return Err(Error::NewerLayout {
                        path,
                        found,
                        supported: LAYOUT_VERSION,
                    });
                }
                Ok(())
            }
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                // Written atomically, so a reader never sees an empty version file.
                let (mut file, temp) = fsutil::create_locked_temp(&self.root, fsutil::TEMP_PREFIX)
                    .map_err(io("create temporary file in", &self.root))?;
                let result = writeln!(file, "{LAYOUT_VERSION}")
                    .and_then(|()| file.sync_all())
                    .and_then(|()| fs::rename(&temp, &path))
                    .and_then(|()| fsutil::sync_dir(&self.root));
                if result.is_err() {
                    let _ = fs::remove_file(&temp);
                }
                result.map_err(io("write", path))
            }
            Err(error) => Err(error),
        }
    }
}

/// The start (at most 64 bytes) of the regular file at `path`, as text.
fn read_small(path: &Path) -> Result<String, Error> {
    let file = files::open_regular(path, Access::Read)?;
    let mut bytes = Vec::new();
    file.take(64)
        .read_to_end(&mut bytes)
        .map_err(io("read", path))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
