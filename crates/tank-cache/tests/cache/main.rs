//! Integration tests of tank-cache: blobs, rootfs, ref sidecars, gc and verify, cleanup,
//! and concurrency across threads and processes.

mod blobs;
mod hostile;
mod layout;
mod maintenance;
mod multiprocess;
mod permissions;
mod refs;
mod rootfs;
mod unprivileged;

use std::path::Path;

use tank_cache::Cache;
use tank_reference::{Algorithm, Digest};

/// A fresh cache in a temporary directory (kept alive by the returned guard).
pub(crate) fn new_cache() -> (tempfile::TempDir, Cache) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let cache = Cache::open(dir.path()).expect("open cache");
    (dir, cache)
}

/// The names starting with `.tmp-` in a directory.
pub(crate) fn temporaries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read directory")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.starts_with(".tmp-"))
        .collect();
    names.sort();
    names
}

/// Deterministic bytes of a given length.
pub(crate) fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|index| (index % 251) as u8).collect()
}

pub(crate) fn sha256(bytes: &[u8]) -> Digest {
    Digest::of(Algorithm::Sha256, bytes)
}
