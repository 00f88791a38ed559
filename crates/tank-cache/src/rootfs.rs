//! Assembled root filesystems: `rootfs/<algo>/<hex>` of a manifest digest, built under a
//! temporary name while holding the digest's build lock.

use std::fs::File;
use std::path::{Path, PathBuf};

use tank_reference::Digest;

use crate::Cache;
use crate::error::{Error, io};
use crate::files::{self, Access};
use crate::{fsutil, tree};

impl Cache {
    /// The directory of rootfs of one algorithm.
    pub(crate) fn rootfs_dir(&self, manifest: &Digest) -> PathBuf {
        self.root.join("rootfs").join(manifest.algorithm().as_str())
    }

    /// The build lock file of one rootfs.
    pub(crate) fn rootfs_lock_path(&self, manifest: &Digest) -> PathBuf {
        self.root.join("rootfs").join(format!(
            ".lock-{}-{}",
            manifest.algorithm().as_str(),
            manifest.hex()
        ))
    }

    /// The path of the complete rootfs of the manifest `manifest`, or `None` when none is
    /// cached. A crash never leaves a partial rootfs under this name.
    pub fn rootfs_path(&self, manifest: &Digest) -> Option<PathBuf> {
        let path = self.rootfs_dir(manifest).join(manifest.hex());
        // Not followed: only a directory under the name is a rootfs.
        std::fs::symlink_metadata(&path)
            .is_ok_and(|metadata| metadata.is_dir())
            .then_some(path)
    }

    /// Starts building the rootfs of `manifest`, or finds it built.
    ///
    /// Takes the digest's build lock, waiting while another thread or process builds the
    /// same rootfs (different digests proceed in parallel). If the rootfs exists once the
    /// lock is held, returns [`RootfsGuard::Ready`]; else a [`RootfsBuilder`] with an empty
    /// temporary directory to fill.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the lock or the temporary directory cannot be made.
    pub fn build_rootfs(&self, manifest: &Digest) -> Result<RootfsGuard, Error> {
        let lock = self.lock_rootfs(manifest)?;
        if let Some(path) = self.rootfs_path(manifest) {
            return Ok(RootfsGuard::Ready(path));
        }
        Ok(RootfsGuard::Build(self.rootfs_builder(manifest, lock)?))
    }

    /// Starts building the rootfs of `manifest` anew even when one is cached (a refresh):
    /// waits for the build lock like [`Cache::build_rootfs`], and [`RootfsBuilder::commit`]
    /// then replaces the cached tree. Until that commit the old tree stays in place.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the lock or the temporary directory cannot be made.
    pub fn rebuild_rootfs(&self, manifest: &Digest) -> Result<RootfsBuilder, Error> {
        let lock = self.lock_rootfs(manifest)?;
        self.rootfs_builder(manifest, lock)
    }

    fn lock_rootfs(&self, manifest: &Digest) -> Result<File, Error> {
        let lock_path = self.rootfs_lock_path(manifest);
        let lock = open_lock(&lock_path)?;
        lock.lock().map_err(io("lock", lock_path.clone()))?;
        Ok(lock)
    }

    fn rootfs_builder(&self, manifest: &Digest, lock: File) -> Result<RootfsBuilder, Error> {
        let dir = self.rootfs_dir(manifest);
        let prefix = format!("{}{}-", fsutil::TEMP_PREFIX, manifest.hex());
        let temp = fsutil::create_temp_dir(&dir, &prefix)
            .map_err(io("create temporary directory in", &dir))?;
        let flusher = Flusher::start(&temp);
        Ok(RootfsBuilder {
            _lock: lock,
            flusher,
            temp: Some(temp),
            final_path: dir.join(manifest.hex()),
            prefix,
            dir,
        })
    }
}

/// Opens (creating) a lock file: never through a symlink, never blocking on a FIFO.
pub(crate) fn open_lock(path: &Path) -> Result<File, Error> {
    files::open_regular(path, Access::Create)
}

/// What [`Cache::build_rootfs`] found.
#[derive(Debug)]
pub enum RootfsGuard {
    /// The rootfs is complete at this path (perhaps another builder finished it while we
    /// waited for its lock).
    Ready(PathBuf),
    /// Nobody has built it: fill [`RootfsBuilder::path`] and [`RootfsBuilder::commit`].
    Build(RootfsBuilder),
}

/// The right and duty to build one rootfs; holds its build lock until dropped.
///
/// Dropping it without [`RootfsBuilder::commit`] removes the temporary directory, making
/// read-only directories writable first.
#[derive(Debug)]
pub struct RootfsBuilder {
    _lock: File,
    /// Starts writeback while the tree is filled, so the `syncfs` at commit waits less.
    flusher: Option<Flusher>,
    temp: Option<PathBuf>,
    final_path: PathBuf,
    /// The temporary-name prefix of this digest (`.tmp-<hex>-`), also used for a replaced
    /// tree on its way out, so a crash mid-replacement leaves something cleanup removes.
    prefix: String,
    dir: PathBuf,
}

impl RootfsBuilder {
    /// The temporary directory to fill.
    pub fn path(&self) -> &Path {
        self.temp.as_deref().unwrap_or(&self.final_path)
    }

    /// Syncs the tree (one `syncfs`), renames it to `rootfs/<algo>/<hex>`, fsyncs the parent directory,
    /// and releases the build lock; returns the final path.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when syncing or renaming fails (the temporary directory is removed).
    pub fn commit(mut self) -> Result<PathBuf, Error> {
        let temp = self.path().to_path_buf();
        drop(self.flusher.take());
        fsutil::sync_tree(&temp).map_err(io("sync", temp.clone()))?;
        // A rebuild replaces the cached tree: move it aside under a temporary name first
        // (a directory cannot be renamed over a non-empty one), then remove it.
        let replaced = if std::fs::symlink_metadata(&self.final_path).is_ok_and(|m| m.is_dir()) {
            let aside = self
                .dir
                .join(format!("{}{}", self.prefix, fsutil::unique_suffix()));
            std::fs::rename(&self.final_path, &aside)
                .map_err(io("rename", self.final_path.clone()))?;
            Some(aside)
        } else {
            None
        };
        std::fs::rename(&temp, &self.final_path).map_err(io("rename", temp.clone()))?;
        self.temp = None;
        fsutil::sync_dir(&self.dir).map_err(io("sync", self.dir.clone()))?;
        if let Some(aside) = replaced
            && let Err(error) = tree::remove_tree(&aside)
        {
            // The new tree is in place; the old one stays under a temporary name, which
            // the next cleanup tries again.
            let _: crate::Warning = error.into();
        }
        Ok(self.final_path.clone())
    }
}

impl Drop for RootfsBuilder {
    fn drop(&mut self) {
        drop(self.flusher.take());
        if let Some(temp) = self.temp.take()
            && let Err(error) = tree::remove_tree(&temp)
        {
            let _: crate::Warning = error.into();
        }
    }
}

/// How often the [`Flusher`] starts writeback of what a build wrote so far.
const FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

/// A thread that calls `syncfs` on the build's filesystem every [`FLUSH_INTERVAL`] while a
/// rootfs is being filled: the device writes the first files while the last are created,
/// and the `syncfs` at [`RootfsBuilder::commit`] (the one durability depends on) finds
/// less to do. It stops (and is joined) when dropped; its failures are ignored (the final
/// `syncfs` reports them).
#[derive(Debug)]
struct Flusher {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Flusher {
    /// Starts flushing the filesystem of `dir`; `None` when the thread cannot start (the
    /// final `syncfs` still runs).
    fn start(dir: &Path) -> Option<Flusher> {
        let handle = File::open(dir).ok()?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("tank-flush".to_owned())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(FLUSH_INTERVAL)
                {
                    let _ = rustix::fs::syncfs(&handle);
                }
            })
            .ok()?;
        Some(Flusher {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
