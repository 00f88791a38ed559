//! Where the runs write their trees, and when those trees are removed: never while anything
//! is measured.
//!
//! On ext4 without a journal (this machine's root filesystem), allocating an inode skips
//! every inode deleted in the last 60 s (360 s while its inode-table block is dirty), looking
//! each one up in the buffer cache (`recently_deleted()` in `find_inode_bit()`). A run that
//! follows the removal of the previous run's trees then spends most of its time scanning past
//! tens of thousands of freshly deleted inodes. So every run gets a fresh directory, and
//! everything is removed once the whole bench has been measured; only when the disk is too
//! full for the next image are the trees of images already measured removed before it
//! starts, followed by `sync` and a wait until the window has passed.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;

use super::images::Image;
use super::stats::format_bytes;

/// How long to wait after removing trees (and `sync`, which cleans the inode-table blocks)
/// before measuring again: ext4's window for clean blocks is 60 s.
pub(crate) const SETTLE: Duration = Duration::from_secs(65);

/// The directories of one round of one image.
#[derive(Clone, Debug)]
pub(crate) struct RoundDirs {
    /// tank's `--cache` (cold, then warm and `--offline` in the same cache).
    pub(crate) cache: PathBuf,
    /// skopeo's OCI layout.
    pub(crate) oci: PathBuf,
    /// umoci's bundle.
    pub(crate) bundle: PathBuf,
    /// podman's `--root` (cold, then warm in the same root).
    pub(crate) podman_root: PathBuf,
    /// podman's `--runroot`.
    pub(crate) podman_runroot: PathBuf,
}

/// What one image's runs need on the disk, estimated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Need {
    pub(crate) bytes: u64,
    pub(crate) inodes: u64,
}

/// What the filesystem has free, from statvfs(3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Free {
    pub(crate) bytes: u64,
    pub(crate) inodes: u64,
}

impl Free {
    fn covers(self, need: Need) -> bool {
        self.bytes >= need.bytes && self.inodes >= need.inodes
    }
}

/// Estimates what `rounds` rounds of `image` and `limit_runs` runs of each of the limit's two
/// write tools leave on the disk: per round one rootfs each for tank, umoci and podman (vfs
/// copies the whole tree below every layer, so its share grows with the layers), the
/// compressed blobs for tank's cache and skopeo's layout; a rootfs per limit run; and one
/// gzip copy and rootfs in case umoci cannot unpack the image.
pub(crate) fn need(image: &Image, rounds: usize, limit_runs: usize) -> Need {
    // Every entry may cost up to a block beyond its bytes (tail, directory block).
    let tree_bytes = image.file_bytes + image.entries * 4096;
    let total_tar: u64 = image.uncompressed().max(1);
    // vfs stores layer i as a copy of layers 0..=i: the sum of the partial sums, in trees.
    let mut below = 0_u64;
    let mut vfs_tars = 0_u64;
    for layer in &image.layers {
        below += layer.tar_size;
        vfs_tars += below;
    }
    let vfs = |amount: u64| {
        u64::try_from(
            u128::from(amount) * u128::from(vfs_tars.max(total_tar)) / u128::from(total_tar),
        )
        .unwrap_or(u64::MAX)
    };
    let compressed = image.compressed();
    let rounds = rounds as u64;
    let limit_trees = 2 * limit_runs as u64;
    Need {
        bytes: rounds * (2 * tree_bytes + vfs(tree_bytes) + 2 * compressed)
            + limit_trees * tree_bytes
            + tree_bytes
            + compressed,
        inodes: rounds * (2 * image.entries + vfs(image.entries) + 2 * image.layers.len() as u64)
            + (limit_trees + 1) * image.entries,
    }
}

/// statvfs(3) of the filesystem holding `path`.
pub(crate) fn free_space(path: &Path) -> anyhow::Result<Free> {
    let (bytes, inodes) = crate::sys::statvfs(path)?;
    Ok(Free { bytes, inodes })
}

/// Hands out fresh directories for every run and removes them when the bench is done.
pub(crate) struct Trees {
    /// `target/bench/work/run-N`: this bench's trees.
    run: PathBuf,
    /// `TMP/xtask-bench-PID`: podman's runroots (podman refuses a runroot longer than 50
    /// characters; it holds only locks and run state, so where it lives does not matter for
    /// the timing).
    runroots: PathBuf,
    /// Leftovers of earlier benches, and what this bench set aside: removed first.
    stale: Vec<PathBuf>,
    /// This bench's image directories, in the order they were measured.
    images: Vec<PathBuf>,
    /// Leave this bench's trees when it ends.
    keep: bool,
    /// The wait after a removal between images.
    settle: Duration,
    /// Where the time of the last removal is written (`target/bench/trees-removed-at`).
    stamp: PathBuf,
    /// What was removed while the bench ran, for the report.
    pub(crate) removals: Vec<String>,
    set_aside: usize,
}

impl Trees {
    /// Trees below `bench_dir/work/run-N` (N the first free number); what `bench_dir/work`
    /// already holds is left from earlier benches and is removed at the end (or between
    /// images when space is short). podman's runroots go below `temp` (the system's temporary
    /// directory: podman wants a short path).
    pub(crate) fn new(
        bench_dir: &Path,
        temp: &Path,
        keep: bool,
        settle: Duration,
    ) -> anyhow::Result<Trees> {
        let work = bench_dir.join("work");
        fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
        let mut stale = Vec::new();
        for entry in fs::read_dir(&work).with_context(|| format!("listing {}", work.display()))? {
            let entry = entry.with_context(|| format!("listing {}", work.display()))?;
            stale.push(entry.path());
        }
        stale.sort();
        let run = (1..)
            .map(|number| work.join(format!("run-{number}")))
            .find(|path| fs::symlink_metadata(path).is_err())
            .expect("some run-N is free");
        fs::create_dir(&run).with_context(|| format!("creating {}", run.display()))?;
        let runroots = temp.join(format!("xtask-bench-{}", std::process::id()));
        fs::create_dir_all(&runroots)
            .with_context(|| format!("creating {}", runroots.display()))?;
        let trees = Trees {
            run,
            runroots,
            stale,
            images: Vec::new(),
            keep,
            settle,
            stamp: bench_dir.join("trees-removed-at"),
            removals: Vec::new(),
            set_aside: 0,
        };
        if !trees.stale.is_empty() {
            eprintln!(
                "xtask bench: {} left by earlier benches: removed when this bench ends",
                trees
                    .stale
                    .iter()
                    .map(|path| path.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Ok(trees)
    }

    /// If trees were removed less than `settle` ago (the end of an earlier bench), waits
    /// the rest; called just before the first measurement.
    pub(crate) fn wait_after_last_removal(&self) {
        let Some(removed) = fs::read_to_string(&self.stamp)
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
        else {
            return;
        };
        let removed = SystemTime::UNIX_EPOCH + Duration::from_secs(removed);
        let since = SystemTime::now()
            .duration_since(removed)
            .unwrap_or_default();
        if let Some(rest) = self
            .settle
            .checked_sub(since)
            .filter(|rest| !rest.is_zero())
        {
            eprintln!(
                "xtask bench: an earlier bench removed its trees {} s ago; waiting {} s so \
                 ext4 does not scan past recently deleted inodes",
                since.as_secs(),
                rest.as_secs()
            );
            std::thread::sleep(rest);
        }
    }

    /// This bench's directory.
    pub(crate) fn run_dir(&self) -> &Path {
        &self.run
    }

    /// Moves `path` (if it exists) out of the way, to be removed with the leftovers: no
    /// deletion now. `path` must be on the same filesystem as the trees.
    pub(crate) fn set_aside(&mut self, path: &Path) -> anyhow::Result<()> {
        if fs::symlink_metadata(path).is_err() {
            return Ok(());
        }
        self.set_aside += 1;
        let name = path
            .file_name()
            .map_or_else(|| "tree".into(), |name| name.to_string_lossy().into_owned());
        let target = self
            .run
            .join(format!("set-aside-{}-{name}", self.set_aside));
        fs::rename(path, &target)
            .with_context(|| format!("moving {} to {}", path.display(), target.display()))?;
        self.stale.push(target);
        Ok(())
    }

    /// Makes sure the disk holds what `image`'s runs need (`need`), removing leftovers and
    /// the trees of images already measured (not with `keep`) if it does not, then waiting
    /// `settle`; returns the image's fresh directory.
    pub(crate) fn start_image(&mut self, image: &Image, need: Need) -> anyhow::Result<PathBuf> {
        let name = image.name.as_str();
        let mut free = free_space(&self.run)?;
        if !free.covers(need) {
            let mut removed = Vec::new();
            loop {
                let next = if !self.stale.is_empty() {
                    self.stale.remove(0)
                } else if !self.keep && !self.images.is_empty() {
                    self.images.remove(0)
                } else {
                    break;
                };
                remove_tree(&next)?;
                removed.push(next.display().to_string());
                free = free_space(&self.run)?;
                if free.covers(need) {
                    break;
                }
            }
            if !removed.is_empty() {
                super::sync();
                self.write_stamp();
                let note = format!(
                    "before {name}: removed {} (needs about {} and {} inodes, {} and {} inodes \
                     free now), then `sync` and a {} s wait",
                    removed.join(", "),
                    format_bytes(need.bytes),
                    need.inodes,
                    format_bytes(free.bytes),
                    free.inodes,
                    self.settle.as_secs()
                );
                eprintln!("xtask bench: {note}");
                self.removals.push(note);
                std::thread::sleep(self.settle);
            }
            if !free.covers(need) {
                eprintln!(
                    "xtask bench: warning: {name} needs about {} and {} inodes, but only {} and \
                     {} inodes are free{}; going on",
                    format_bytes(need.bytes),
                    need.inodes,
                    format_bytes(free.bytes),
                    free.inodes,
                    if self.keep {
                        " (--keep: this bench's trees stay)"
                    } else {
                        ""
                    }
                );
            }
        }
        let dir = self.run.join(name);
        fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        self.images.push(dir.clone());
        Ok(dir)
    }

    /// Fresh directories for round `round` of the image whose directory is `image_dir`
    /// (only their parents are created: each tool creates its own).
    pub(crate) fn round(&self, image_dir: &Path, round: usize) -> anyhow::Result<RoundDirs> {
        let dir = image_dir.join(format!("round-{round}"));
        fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let image = image_dir.file_name().map_or_else(
            || "image".into(),
            |name| name.to_string_lossy().into_owned(),
        );
        Ok(RoundDirs {
            cache: dir.join("tank-cache"),
            oci: dir.join("oci"),
            bundle: dir.join("bundle"),
            podman_root: dir.join("podman-root"),
            podman_runroot: self.runroots.join(format!("{image}-{round}")),
        })
    }

    /// After the last measurement: removes every tree (with `keep`, only the leftovers of
    /// earlier benches), then `sync`. Returns what it did, for the terminal.
    pub(crate) fn finish(mut self) -> anyhow::Result<String> {
        let mut removed = 0;
        for path in std::mem::take(&mut self.stale) {
            remove_tree(&path)?;
            removed += 1;
        }
        let message = if self.keep {
            format!(
                "--keep: this bench's trees are left in {} and {}",
                self.run.display(),
                self.runroots.display()
            )
        } else {
            remove_tree(&self.run)?;
            remove_tree(&self.runroots)?;
            removed += 1;
            format!(
                "removed this bench's trees ({}, {})",
                self.run.display(),
                self.runroots.display()
            )
        };
        if removed > 0 {
            super::sync();
            self.write_stamp();
        }
        Ok(message)
    }

    /// Records now as the time of the last removal.
    fn write_stamp(&self) {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let _ = fs::write(&self.stamp, format!("{now}\n"));
    }
}

/// Removes `path` and everything below it, if it exists.
pub(crate) fn remove_tree(path: &Path) -> anyhow::Result<()> {
    if fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    if fs::remove_dir_all(path).is_err() {
        // A rootfs or a podman vfs root may hold read-only directories.
        crate::tools::make_tree_writable(path);
        fs::remove_dir_all(path).with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::images::ImageName;
    use super::super::layer::{Compression, Layer};
    use super::*;

    fn image(layers: &[u64]) -> Image {
        Image {
            name: ImageName::ManyLayers,
            layout: PathBuf::from("/nowhere"),
            layers: layers
                .iter()
                .map(|&tar_size| Layer {
                    digest: String::new(),
                    size: 10,
                    blob: PathBuf::new(),
                    tar: PathBuf::new(),
                    tar_size,
                    compression: Compression::Gzip,
                })
                .collect(),
            entries: 100,
            files: 90,
            file_bytes: 1000,
        }
    }

    #[test]
    fn the_need_counts_every_round_podmans_layer_copies_and_the_limit() {
        let tree = 1000 + 100 * 4096;
        let one = need(&image(&[600]), 3, 2);
        // 3 rounds of tank + umoci + podman trees and 2 blobs, 4 limit trees, the twin.
        assert_eq!(one.bytes, 3 * (3 * tree + 2 * 10) + 4 * tree + tree + 10);
        assert_eq!(one.inodes, 3 * (3 * 100 + 2) + 5 * 100);
        // Two equal layers: vfs keeps 1/2 + 2/2 of the tree, 1.5 trees.
        let two = need(&image(&[300, 300]), 3, 2);
        assert_eq!(
            two.bytes,
            3 * (2 * tree + tree * 3 / 2 + 2 * 20) + 4 * tree + tree + 20
        );
        assert_eq!(two.inodes, 3 * (2 * 100 + 150 + 4) + 5 * 100);
    }

    #[test]
    fn free_space_reads_the_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_space(dir.path()).unwrap();
        assert!(free.bytes > 0 && free.inodes > 0, "{free:?}");
        assert!(free_space(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn every_round_gets_fresh_directories_and_nothing_goes_before_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let bench = dir.path();
        // A leftover of an earlier bench and a registry directory to set aside.
        fs::create_dir_all(bench.join("work/run-1/big-1/round-0")).unwrap();
        fs::create_dir_all(bench.join("registry/docker")).unwrap();
        let mut trees = Trees::new(bench, &bench.join("tmp"), false, Duration::ZERO).unwrap();
        assert_eq!(trees.run_dir(), bench.join("work/run-2"));
        trees.set_aside(&bench.join("registry")).unwrap();
        assert!(!bench.join("registry").exists());

        let small = Need {
            bytes: 1,
            inodes: 1,
        };
        let image_dir = trees.start_image(&image(&[10]), small).unwrap();
        let first = trees.round(&image_dir, 0).unwrap();
        let second = trees.round(&image_dir, 1).unwrap();
        assert_ne!(first.cache, second.cache);
        assert_ne!(first.podman_runroot, second.podman_runroot);
        // Short (podman refuses runroots over 50 characters): `TMP/xtask-bench-PID/<image>-<round>`.
        assert_eq!(
            first.podman_runroot,
            bench
                .join("tmp")
                .join(format!("xtask-bench-{}", std::process::id()))
                .join("many-layers-0")
        );
        assert!(first.cache.parent().unwrap().is_dir() && !first.cache.exists());
        // A round's directory is never reused.
        assert!(trees.round(&image_dir, 1).is_err());
        // Enough space: the leftover stays until the end.
        assert!(bench.join("work/run-1/big-1/round-0").is_dir());
        assert!(trees.removals.is_empty());

        // A read-only directory, as in a rootfs.
        fs::create_dir_all(first.bundle.join("rootfs/ro/sub")).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(
            first.bundle.join("rootfs/ro"),
            fs::Permissions::from_mode(0o555),
        )
        .unwrap();
        let runroot_parent = first.podman_runroot.parent().unwrap().to_path_buf();
        assert!(runroot_parent.is_dir());
        trees.finish().unwrap();
        assert!(!bench.join("work/run-1").exists());
        assert!(!bench.join("work/run-2").exists());
        assert!(!runroot_parent.exists());
        assert!(bench.join("trees-removed-at").is_file());
    }

    #[test]
    fn keep_leaves_this_benchs_trees_and_short_space_removes_leftovers_first() {
        let dir = tempfile::tempdir().unwrap();
        let bench = dir.path();
        fs::create_dir_all(bench.join("work/run-1/old")).unwrap();
        let mut trees = Trees::new(bench, &bench.join("tmp"), true, Duration::ZERO).unwrap();
        let first = trees
            .start_image(
                &image(&[10]),
                Need {
                    bytes: 1,
                    inodes: 1,
                },
            )
            .unwrap();
        // More than any disk has: leftovers go, this bench's trees stay (--keep).
        let huge = Need {
            bytes: u64::MAX,
            inodes: u64::MAX,
        };
        let mut other = image(&[10]);
        other.name = ImageName::ManyFiles;
        let second = trees.start_image(&other, huge).unwrap();
        assert!(!bench.join("work/run-1").exists());
        assert!(first.is_dir() && second.is_dir());
        assert_eq!(trees.removals.len(), 1, "{:?}", trees.removals);
        assert!(trees.removals[0].contains("run-1"), "{:?}", trees.removals);
        let runroots = trees.runroots.clone();
        let message = trees.finish().unwrap();
        assert!(message.contains("--keep"), "{message}");
        assert!(first.is_dir() && second.is_dir() && runroots.is_dir());
    }

    #[test]
    fn without_keep_short_space_removes_measured_images() {
        let dir = tempfile::tempdir().unwrap();
        let mut trees =
            Trees::new(dir.path(), &dir.path().join("tmp"), false, Duration::ZERO).unwrap();
        let small = Need {
            bytes: 1,
            inodes: 1,
        };
        let first = trees.start_image(&image(&[10]), small).unwrap();
        let mut other = image(&[10]);
        other.name = ImageName::ManyFiles;
        let huge = Need {
            bytes: u64::MAX,
            inodes: u64::MAX,
        };
        let second = trees.start_image(&other, huge).unwrap();
        assert!(!first.exists() && second.is_dir());
        assert!(trees.removals[0].starts_with("before many-files: removed"));
        trees.finish().unwrap();
    }
}
