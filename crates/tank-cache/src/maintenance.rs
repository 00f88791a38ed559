//! Cleanup of abandoned temporaries, garbage collection and verification.

use std::collections::HashSet;
use std::fs::{self, TryLockError};
use std::io::Read as _;
use std::path::{Path, PathBuf};

use tank_reference::{Digest, Hasher};

use crate::Cache;
use crate::error::{Error, io};
use crate::fsutil::{self, TEMP_PREFIX};
use crate::rootfs::open_lock;

/// What [`Cache::cleanup`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CleanupReport {
    /// Temporary files and directories removed (their writers were gone).
    pub removed: Vec<PathBuf>,
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
}

/// What [`Cache::verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// How many blobs were rehashed.
    pub checked: usize,
    /// Blobs whose bytes did not match their name; they were removed.
    pub removed: Vec<Digest>,
}

const ALGORITHMS: [&str; 2] = ["sha256", "sha512"];

impl Cache {
    /// Removes temporaries that no live writer owns: temporary files whose lock can be
    /// taken and temporary rootfs whose build lock can be taken. [`Cache::open`] runs it.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when a directory cannot be read or a temporary cannot be removed.
    pub fn cleanup(&self) -> Result<CleanupReport, Error> {
        let mut report = CleanupReport::default();
        let mut file_dirs = vec![self.root.clone()];
        for algorithm in ALGORITHMS {
            file_dirs.push(self.root.join("blobs").join(algorithm));
        }
        collect_dirs(&self.root.join("refs"), &mut file_dirs)?;
        for dir in file_dirs {
            for path in temporaries(&dir)? {
                if path.is_dir() {
                    continue;
                }
                if fsutil::remove_abandoned_temp_file(&path).map_err(io("remove", &path))? {
                    report.removed.push(path);
                }
            }
        }
        for algorithm in ALGORITHMS {
            let dir = self.root.join("rootfs").join(algorithm);
            for path in temporaries(&dir)? {
                let Some(hex) = path
                    .file_name()
                    .and_then(|name| name.to_str())
                    .and_then(|name| name.strip_prefix(TEMP_PREFIX))
                    .and_then(|rest| rest.split('-').next())
                else {
                    continue;
                };
                let Ok(digest) = format!("{algorithm}:{hex}").parse::<Digest>() else {
                    continue;
                };
                let lock_path = self.rootfs_lock_path(&digest);
                let lock = open_lock(&lock_path)?;
                match lock.try_lock() {
                    Ok(()) => {}
                    Err(TryLockError::WouldBlock) => continue,
                    Err(TryLockError::Error(error)) => {
                        return Err(Error::Io {
                            operation: "lock",
                            path: lock_path,
                            source: error,
                        });
                    }
                }
                fsutil::remove_tree(&path).map_err(io("remove", &path))?;
                report.removed.push(path);
            }
        }
        Ok(report)
    }

    /// Removes (or, with `dry_run`, lists) every blob and rootfs that no ref sidecar
    /// reaches. A ref reaches its manifest's rootfs, its manifest and index blobs, and the
    /// blobs its record lists. Waits for the cache-wide lock exclusively, so it never runs
    /// during a pull that holds [`Cache::lock_shared`].
    ///
    /// # Errors
    ///
    /// [`Error::RefRecord`] when a sidecar cannot be read (nothing is removed then),
    /// [`Error::Io`] when the cache cannot be read or an entry cannot be removed.
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
        for (digest, path) in self.named_entries("blobs")? {
            if reachable_blobs.contains(&digest) {
                continue;
            }
            report.bytes += fs::symlink_metadata(&path).map_or(0, |metadata| metadata.len());
            if !dry_run {
                fs::remove_file(&path).map_err(io("remove", &path))?;
            }
            report.blobs.push(digest);
        }
        for (digest, path) in self.named_entries("rootfs")? {
            if reachable_rootfs.contains(&digest) {
                continue;
            }
            report.bytes += fsutil::tree_size(&path).map_err(io("measure", &path))?;
            if !dry_run {
                // Rename first so a crash mid-removal leaves a temporary, not a half rootfs
                // under its final name; cleanup finishes the job.
                let parent = path.parent().unwrap_or(&self.root).to_path_buf();
                let doomed = parent.join(format!(
                    "{TEMP_PREFIX}{}-{}",
                    digest.hex(),
                    fsutil::unique_suffix()
                ));
                fs::rename(&path, &doomed).map_err(io("rename", &path))?;
                fsutil::remove_tree(&doomed).map_err(io("remove", &doomed))?;
            }
            report.rootfs.push(digest);
        }
        Ok(report)
    }

    /// Rehashes every blob; removes and reports those whose bytes do not match their name.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when a blob cannot be read or removed.
    pub fn verify(&self) -> Result<VerifyReport, Error> {
        let mut report = VerifyReport::default();
        for (digest, path) in self.named_entries("blobs")? {
            let mut file = fs::File::open(&path).map_err(io("open", &path))?;
            let mut hasher = Hasher::new(digest.algorithm());
            let mut buffer = vec![0u8; 64 * 1024];
            loop {
                let read = file.read(&mut buffer).map_err(io("read", &path))?;
                if read == 0 {
                    break;
                }
                hasher.update(&buffer[..read]);
            }
            report.checked += 1;
            if hasher.finish() != digest {
                fs::remove_file(&path).map_err(io("remove", &path))?;
                report.removed.push(digest);
            }
        }
        Ok(report)
    }

    /// The final-named entries of `blobs/` or `rootfs/`, with the digests their names spell.
    /// Temporaries, lock files and names that are not digests are skipped.
    fn named_entries(&self, kind: &str) -> Result<Vec<(Digest, PathBuf)>, Error> {
        let mut entries = Vec::new();
        for algorithm in ALGORITHMS {
            let dir = self.root.join(kind).join(algorithm);
            let listing = match fs::read_dir(&dir) {
                Ok(listing) => listing,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(error) => {
                    return Err(Error::Io {
                        operation: "read directory",
                        path: dir,
                        source: error,
                    });
                }
            };
            for entry in listing {
                let entry = entry.map_err(io("read directory", &dir))?;
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                if let Ok(digest) = format!("{algorithm}:{name}").parse::<Digest>() {
                    entries.push((digest, entry.path()));
                }
            }
        }
        entries.sort();
        Ok(entries)
    }
}

/// The `.tmp-*` entries of a directory (none when it is missing).
fn temporaries(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let listing = match fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => {
            return Err(Error::Io {
                operation: "read directory",
                path: dir.to_path_buf(),
                source: error,
            });
        }
    };
    let mut found = Vec::new();
    for entry in listing {
        let entry = entry.map_err(io("read directory", dir))?;
        if entry
            .file_name()
            .as_encoded_bytes()
            .starts_with(TEMP_PREFIX.as_bytes())
        {
            found.push(entry.path());
        }
    }
    Ok(found)
}

/// `dir` and every directory below it (symlinks not followed).
fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    let listing = match fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => {
            return Err(Error::Io {
                operation: "read directory",
                path: dir.to_path_buf(),
                source: error,
            });
        }
    };
    out.push(dir.to_path_buf());
    for entry in listing {
        let entry = entry.map_err(io("read directory", dir))?;
        if entry
            .file_type()
            .map_err(io("read", entry.path()))?
            .is_dir()
        {
            collect_dirs(&entry.path(), out)?;
        }
    }
    Ok(())
}
