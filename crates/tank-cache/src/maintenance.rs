//! Cleanup of abandoned temporaries, garbage collection and verification.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{File, TryLockError};
use std::io::Read as _;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType};
use rustix::io::Errno;
use tank_reference::{Digest, Hasher};

use crate::Cache;
use crate::error::{Error, Warning, io};
use crate::files::{self, Access, TempOutcome};
use crate::fsutil::{self, TEMP_PREFIX};
use crate::tree;

/// What [`Cache::cleanup`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CleanupReport {
    /// Temporary files and directories removed (their writers were gone), and entries
    /// under temporary names that no writer of tank makes (symlinks, FIFOs, sockets).
    pub removed: Vec<PathBuf>,
    /// Leftovers that could not be removed, and directories that could not be read; the
    /// next cleanup tries again.
    pub warnings: Vec<Warning>,
}

/// What [`Cache::gc`] removed, or would remove in a dry run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GcReport {
    /// Whether nothing was actually removed.
    pub dry_run: bool,
    /// Blobs no ref reaches.
    pub blobs: Vec<Digest>,
    /// Rootfs (named by manifest digest) no ref reaches.
    pub rootfs: Vec<Digest>,
    /// The bytes those hold.
    pub bytes: u64,
    /// What could not be measured or removed (a removed rootfs whose tree could not be
    /// removed in full is still listed in `rootfs`: it was renamed to a temporary name,
    /// which the next cleanup tries again). Such a blob is not listed in `blobs`.
    pub warnings: Vec<Warning>,
}

/// What [`Cache::verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// How many blobs were rehashed.
    pub checked: usize,
    /// Blobs whose bytes did not match their name, or that were not regular files
    /// (symlinks, FIFOs, directories under a blob's name); they were removed.
    pub removed: Vec<Digest>,
    /// Bad blobs that could not be removed.
    pub warnings: Vec<Warning>,
}

const ALGORITHMS: [&str; 2] = ["sha256", "sha512"];

impl Cache {
    /// Removes temporaries that no live writer owns: temporary files whose lock can be
    /// taken and temporary rootfs whose build lock can be taken, and entries under
    /// temporary names that are not regular files or directories. [`Cache::open`] runs it.
    ///
    /// Every tree is removed from directory fds (so depth and name length do not matter)
    /// without following symlinks. What cannot be removed (an immutable file, a mount
    /// point) or read is reported in [`CleanupReport::warnings`] (and logged), never as an
    /// error: a leftover cannot stop the cache from opening.
    ///
    /// # Errors
    ///
    /// None today: every problem is a warning. The `Result` leaves room for errors that
    /// must stop the caller.
    pub fn cleanup(&self) -> Result<CleanupReport, Error> {
        let mut report = CleanupReport::default();
        let mut file_dirs = vec![self.root.clone()];
        for algorithm in ALGORITHMS {
            file_dirs.push(self.root.join("blobs").join(algorithm));
        }
        for dir in &file_dirs {
            let listed = tree::open_dir(dir).and_then(|fd| Ok((temporaries(fd.as_fd())?, fd)));
            match listed {
                Ok((names, fd)) => clean_temp_files(fd.as_fd(), dir, names, &mut report),
                Err(error) => report
                    .warnings
                    .push(Warning::new("read directory", dir, error)),
            }
        }
        let walked = self.walk_ref_dirs(|fd, dir, _, entries| {
            let names = entries
                .iter()
                .map(|(name, _)| name)
                .filter(|name| is_temporary(name))
                .cloned()
                .collect();
            clean_temp_files(fd, dir, names, &mut report);
            Ok(())
        });
        if let Err(error) = walked {
            report
                .warnings
                .push(Warning::from_error("clean up ref directories", &error));
        }
        for algorithm in ALGORITHMS {
            let dir = self.root.join("rootfs").join(algorithm);
            match tree::open_dir(&dir) {
                Ok(fd) => self.clean_temp_rootfs(fd.as_fd(), &dir, algorithm, &mut report),
                Err(error) => report
                    .warnings
                    .push(Warning::new("open directory", &dir, error)),
            }
        }
        Ok(report)
    }

    /// Removes the `.tmp-` trees of `rootfs/<algorithm>` whose build lock can be taken.
    fn clean_temp_rootfs(
        &self,
        fd: BorrowedFd<'_>,
        dir: &Path,
        algorithm: &str,
        report: &mut CleanupReport,
    ) {
        let names = match temporaries(fd) {
            Ok(names) => names,
            Err(error) => {
                report
                    .warnings
                    .push(Warning::new("read directory", dir, error));
                return;
            }
        };
        for name in names {
            let path = dir.join(&name);
            let hex = name
                .to_str()
                .and_then(|name| name.strip_prefix(TEMP_PREFIX))
                .and_then(|rest| rest.split('-').next());
            let Some(Ok(digest)) = hex.map(|hex| format!("{algorithm}:{hex}").parse::<Digest>())
            else {
                continue;
            };
            let lock_path = self.rootfs_lock_path(&digest);
            let lock = match files::open_regular(&lock_path, Access::Create) {
                Ok(lock) => lock,
                Err(error) => {
                    report.warnings.push(Warning::from_error("lock", &error));
                    continue;
                }
            };
            match lock.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => continue,
                Err(TryLockError::Error(error)) => {
                    report.warnings.push(Warning::new("lock", lock_path, error));
                    continue;
                }
            }
            match tree::remove_tree_at(fd, &name, &path) {
                Ok(()) => report.removed.push(path),
                Err(error) => report.warnings.push(error.into()),
            }
        }
    }

    /// Removes (or, with `dry_run`, lists) every blob and rootfs that no ref sidecar
    /// reaches. A ref reaches its manifest's rootfs, its manifest and index blobs, and the
    /// blobs its record lists. Waits for the cache-wide lock exclusively, so it never runs
    /// during a pull that holds [`Cache::lock_shared`].
    ///
    /// Trees are measured and removed from directory fds, never following symlinks;
    /// what cannot be measured or removed is a warning in [`GcReport::warnings`], and gc
    /// goes on with the rest.
    ///
    /// # Errors
    ///
    /// [`Error::RefRecord`] when a sidecar cannot be read (nothing is removed then),
    /// [`Error::Io`] when the refs tree, `blobs/` or `rootfs/` cannot be read.
    pub fn gc(&self, dry_run: bool) -> Result<GcReport, Error> {
        let _lock = self.lock_exclusive()?;
        let records = self.ref_records()?;
        let reachable_blobs: HashSet<&Digest> = records
            .iter()
            .flat_map(|(_, record)| record.reachable_blobs())
            .collect();
        let reachable_rootfs: HashSet<&Digest> = records
            .iter()
            .map(|(_, record)| &record.manifest_digest)
            .collect();
        let mut report = GcReport {
            dry_run,
            ..GcReport::default()
        };
        for algorithm in ALGORITHMS {
            let (dir, fd, names) = self.named_entries("blobs", algorithm)?;
            for (digest, name) in names {
                if reachable_blobs.contains(&digest) {
                    continue;
                }
                let path = dir.join(&name);
                let size = rfs::statat(&fd, &name, AtFlags::SYMLINK_NOFOLLOW)
                    .map_or(0, |stat| u64::try_from(stat.st_size).unwrap_or(0));
                if !dry_run && let Err(error) = tree::remove_tree_at(fd.as_fd(), &name, &path) {
                    report.warnings.push(error.into());
                    continue;
                }
                report.bytes = report.bytes.saturating_add(size);
                report.blobs.push(digest);
            }
        }
        for algorithm in ALGORITHMS {
            let (dir, fd, names) = self.named_entries("rootfs", algorithm)?;
            for (digest, name) in names {
                if reachable_rootfs.contains(&digest) {
                    continue;
                }
                let path = dir.join(&name);
                let (size, partial) = tree::tree_size_at(fd.as_fd(), &name, &path);
                if let Some(error) = partial {
                    report.warnings.push(error.into());
                }
                if !dry_run {
                    // Rename first so a crash mid-removal leaves a temporary, not a half
                    // rootfs under its final name; cleanup finishes the job.
                    let doomed =
                        format!("{TEMP_PREFIX}{}-{}", digest.hex(), fsutil::unique_suffix());
                    if let Err(error) = rfs::renameat(&fd, &name, &fd, doomed.as_str()) {
                        report.warnings.push(Warning::new("rename", path, error));
                        continue;
                    }
                    let doomed_path = dir.join(&doomed);
                    if let Err(error) =
                        tree::remove_tree_at(fd.as_fd(), OsStr::new(&doomed), &doomed_path)
                    {
                        report.warnings.push(error.into());
                    }
                }
                report.bytes = report.bytes.saturating_add(size);
                report.rootfs.push(digest);
            }
        }
        report.blobs.sort();
        report.rootfs.sort();
        Ok(report)
    }

    /// Rehashes every blob; removes and reports those whose bytes do not match their name,
    /// and entries under a blob's name that are not regular files (never followed or
    /// opened in a way that could block).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when `blobs/` or a blob cannot be read, or a corrupt blob cannot be
    /// removed.
    pub fn verify(&self) -> Result<VerifyReport, Error> {
        let mut report = VerifyReport::default();
        for algorithm in ALGORITHMS {
            let (dir, fd, names) = self.named_entries("blobs", algorithm)?;
            for (digest, name) in names {
                let path = dir.join(&name);
                let Some(file) = open_blob_at(fd.as_fd(), &name, &path)? else {
                    // Not a regular file: not a blob tank wrote.
                    match tree::remove_tree_at(fd.as_fd(), &name, &path) {
                        Ok(()) => report.removed.push(digest),
                        Err(error) => report.warnings.push(error.into()),
                    }
                    continue;
                };
                report.checked += 1;
                if hash_file(file, &digest, &path)? != digest {
                    match rfs::unlinkat(&fd, &name, AtFlags::empty()) {
                        Ok(()) | Err(Errno::NOENT) => {}
                        Err(error) => {
                            return Err(Error::Io {
                                operation: "remove",
                                path,
                                source: error.into(),
                            });
                        }
                    }
                    report.removed.push(digest);
                }
            }
        }
        report.removed.sort();
        Ok(report)
    }

    /// The directory `<kind>/<algorithm>` (path and fd) and its final-named entries with
    /// the digests their names spell. Temporaries, lock files and names that are not
    /// digests are skipped; a missing directory has none.
    #[allow(
        clippy::type_complexity,
        reason = "a private helper whose callers destructure the tuple at once; an alias would hide it"
    )]
    fn named_entries(
        &self,
        kind: &str,
        algorithm: &str,
    ) -> Result<(PathBuf, OwnedFd, Vec<(Digest, std::ffi::OsString)>), Error> {
        let dir = self.root.join(kind).join(algorithm);
        let fd = tree::open_dir(&dir).map_err(io("open", &dir))?;
        let mut entries = Vec::new();
        for (name, _) in tree::list(fd.as_fd()).map_err(io("read directory", &dir))? {
            let Some(text) = name.to_str() else { continue };
            if let Ok(digest) = format!("{algorithm}:{text}").parse::<Digest>() {
                entries.push((digest, name));
            }
        }
        entries.sort();
        Ok((dir, fd, entries))
    }
}

/// Opens the blob `name` of `dir` for reading, never following a symlink or blocking on
/// a FIFO; `None` when it is not a regular file.
fn open_blob_at(dir: BorrowedFd<'_>, name: &OsStr, path: &Path) -> Result<Option<File>, Error> {
    let fd = match files::open_read_at(dir, name) {
        Ok(fd) => fd,
        Err(Errno::LOOP) => return Ok(None),
        Err(error) => {
            return Err(Error::Io {
                operation: "open",
                path: path.to_path_buf(),
                source: error.into(),
            });
        }
    };
    let stat = rfs::fstat(&fd).map_err(|error| Error::Io {
        operation: "inspect",
        path: path.to_path_buf(),
        source: error.into(),
    })?;
    Ok((FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile).then(|| File::from(fd)))
}

/// The digest of a file's bytes, in the algorithm of `like`.
fn hash_file(mut file: File, like: &Digest, path: &Path) -> Result<Digest, Error> {
    let mut hasher = Hasher::new(like.algorithm());
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = file.read(&mut buffer).map_err(io("read", path))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hasher.finish())
}

/// Removes the abandoned `.tmp-` files `names` of the directory `fd`.
fn clean_temp_files(
    fd: BorrowedFd<'_>,
    dir: &Path,
    names: Vec<std::ffi::OsString>,
    report: &mut CleanupReport,
) {
    for name in names {
        let path = dir.join(&name);
        match files::remove_abandoned_temp_at(fd, &name) {
            Ok(TempOutcome::Removed) => report.removed.push(path),
            Ok(TempOutcome::Kept) => {}
            Err(error) => report.warnings.push(Warning::new("remove", path, error)),
        }
    }
}

fn is_temporary(name: &OsStr) -> bool {
    name.as_bytes().starts_with(TEMP_PREFIX.as_bytes())
}

/// The `.tmp-*` entries of an open directory.
fn temporaries(fd: BorrowedFd<'_>) -> std::io::Result<Vec<std::ffi::OsString>> {
    Ok(tree::list(fd)?
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| is_temporary(name))
        .collect())
}
