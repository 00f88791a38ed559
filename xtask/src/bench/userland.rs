//! The Debian userland of the big bench images: debootstrap from the machine's package
//! mirror (cached in `target/bench/base/`), the walk of its tree in tar order, its split
//! into layers of about equal size (hard-link groups kept together), and each path's tar
//! entry.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

/// The Debian release debootstrap installs.
pub(super) const SUITE: &str = "bookworm";
/// Packages added to `--variant=minbase` to reach about 500 MB and 10,000+ files: what a
/// build or scripting base image holds.
pub(super) const INCLUDE: &[&str] = &[
    "perl",
    "python3",
    "locales",
    "gcc",
    "g++",
    "libc6-dev",
    "git",
    "vim-tiny",
    "ca-certificates",
    "curl",
    "less",
    "procps",
    "iproute2",
    "openssl",
];
/// The mirror when the machine's apt sources name none.
pub(super) const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

/// The debootstrap command line for `rootfs`, without the mirror (which may differ between
/// machines without changing the result).
pub(super) fn debootstrap_description() -> String {
    format!(
        "debootstrap --variant=minbase --include={} {SUITE} <dir> <mirror>",
        INCLUDE.join(",")
    )
}

/// The Debian mirror apt uses on this machine: the first `URIs:` (deb822) or `deb` line
/// naming a non-security Debian archive.
pub(crate) fn debian_mirror() -> String {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(listing) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = listing.flatten().map(|entry| entry.path()).collect();
        more.sort();
        files.extend(more);
    }
    for file in files {
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        for line in text.lines() {
            let line = line.trim();
            let uri = if let Some(rest) = line.strip_prefix("URIs:") {
                rest.split_whitespace().next()
            } else if let Some(rest) = line.strip_prefix("deb ") {
                rest.split_whitespace().find(|word| word.contains("://"))
            } else {
                None
            };
            if let Some(uri) = uri
                && uri.contains("debian")
                && !uri.contains("security")
            {
                return uri.trim_end_matches('/').to_owned();
            }
        }
    }
    DEFAULT_MIRROR.to_owned()
}

/// The Debian userland in `dir/rootfs`, made by debootstrap unless a finished one is there
/// (and `rebuild` is false). Returns the rootfs path and whether it was (re)built.
pub(crate) fn ensure_base(dir: &Path, rebuild: bool) -> anyhow::Result<(PathBuf, bool)> {
    let rootfs = dir.join("rootfs");
    let marker = dir.join("complete");
    let description = debootstrap_description();
    if !rebuild && fs::read_to_string(&marker).is_ok_and(|text| text.trim() == description) {
        return Ok((rootfs, false));
    }
    if !crate::tools::running_as_root() {
        bail!("debootstrap needs root: run `cargo xtask bench` as root");
    }
    let _ = fs::remove_file(&marker);
    if rootfs.exists() {
        fs::remove_dir_all(&rootfs).with_context(|| format!("removing {}", rootfs.display()))?;
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mirror = debian_mirror();
    let mut debootstrap = Command::new("debootstrap");
    debootstrap
        .arg("--variant=minbase")
        .arg(format!("--include={}", INCLUDE.join(",")))
        .arg(SUITE)
        .arg(&rootfs)
        .arg(&mirror);
    eprintln!("xtask bench: building the Debian userland ({mirror}), about 2 minutes");
    crate::tools::run_command(debootstrap)?;
    // What `apt-get clean` removes, as Debian's own images do: the downloaded packages and
    // the package caches.
    for cache in ["var/cache/apt/archives", "var/cache/apt"] {
        let cache = rootfs.join(cache);
        for entry in fs::read_dir(&cache).with_context(|| format!("listing {}", cache.display()))? {
            let path = entry?.path();
            let name = path.file_name().map(|name| name.as_bytes()).unwrap_or(b"");
            if path.is_file() && (name.ends_with(b".deb") || name.ends_with(b".bin")) {
                fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            }
        }
    }
    fs::write(&marker, format!("{description}\n"))
        .with_context(|| format!("writing {}", marker.display()))?;
    Ok((rootfs, true))
}

/// One path of the userland, in tar order.
pub(super) struct FsEntry {
    /// Relative to the root, never empty.
    pub(super) relative: PathBuf,
    pub(super) metadata: fs::Metadata,
    /// For the second and later paths of a hard-link group: the index of the first.
    pub(super) link_to: Option<usize>,
}

/// Every path below `root` (not following symlinks), each directory before its contents and
/// siblings in byte order; the contents of `dev`, `proc` and `sys` are left out, as image
/// builders do (they are the runtime's business), and so are sockets.
pub(super) fn walk(root: &Path) -> anyhow::Result<Vec<FsEntry>> {
    fn visit(
        root: &Path,
        relative: &Path,
        out: &mut Vec<FsEntry>,
        inodes: &mut HashMap<(u64, u64), usize>,
    ) -> anyhow::Result<()> {
        let dir = root.join(relative);
        let mut names: Vec<_> = fs::read_dir(&dir)
            .with_context(|| format!("listing {}", dir.display()))?
            .map(|entry| entry.map(|entry| entry.file_name()))
            .collect::<io::Result<_>>()
            .with_context(|| format!("listing {}", dir.display()))?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let child = relative.join(&name);
            let path = root.join(&child);
            let metadata =
                fs::symlink_metadata(&path).with_context(|| format!("lstat {}", path.display()))?;
            let kind = metadata.file_type();
            if std::os::unix::fs::FileTypeExt::is_socket(&kind) {
                continue;
            }
            let mut link_to = None;
            if !kind.is_dir() && metadata.nlink() > 1 {
                let key = (metadata.dev(), metadata.ino());
                match inodes.get(&key) {
                    Some(first) => link_to = Some(*first),
                    None => {
                        inodes.insert(key, out.len());
                    }
                }
            }
            let is_dir = kind.is_dir();
            out.push(FsEntry {
                relative: child.clone(),
                metadata,
                link_to,
            });
            let skip_contents = relative.as_os_str().is_empty()
                && matches!(name.as_bytes(), b"dev" | b"proc" | b"sys");
            if is_dir && !skip_contents {
                visit(root, &child, out, inodes)?;
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    visit(root, Path::new(""), &mut out, &mut HashMap::new())?;
    Ok(out)
}

/// Assigns each of `entries` (the first `count`) to one of `layers` layers of about equal
/// size, in order; every path of a hard-link group goes to the layer of its last path, so a
/// link never points into another layer and every parent directory comes first.
pub(super) fn split_layers(entries: &[FsEntry], count: usize, layers: usize) -> Vec<Vec<usize>> {
    let weight = |entry: &FsEntry| -> u64 {
        512 + if entry.metadata.is_file() && entry.link_to.is_none() {
            entry.metadata.len()
        } else {
            0
        }
    };
    let total: u64 = entries[..count].iter().map(weight).sum::<u64>().max(1);
    let layers_u64 = layers as u64;
    let mut assigned = Vec::with_capacity(count);
    let mut before = 0_u64;
    for entry in &entries[..count] {
        let layer = usize::try_from((before * layers_u64 / total).min(layers_u64 - 1))
            .expect("a layer index below `layers` fits usize");
        assigned.push(layer);
        before += weight(entry);
    }
    // A group's paths all move to the layer of its last path.
    let mut group_layer: HashMap<usize, usize> = HashMap::new();
    for (index, entry) in entries[..count].iter().enumerate() {
        if let Some(first) = entry.link_to {
            let layer = group_layer.entry(first).or_insert(assigned[first]);
            *layer = (*layer).max(assigned[index]);
        }
    }
    for (index, entry) in entries[..count].iter().enumerate() {
        let first = entry.link_to.unwrap_or(index);
        if let Some(layer) = group_layer.get(&first) {
            assigned[index] = *layer;
        }
    }
    let mut out = vec![Vec::new(); layers];
    for (index, layer) in assigned.into_iter().enumerate() {
        out[layer].push(index);
    }
    out
}

/// Appends `entries[index]`, read from `root`, to `builder`.
pub(super) fn append_fs_entry<W: Write>(
    builder: &mut tar::Builder<W>,
    root: &Path,
    entries: &[FsEntry],
    index: usize,
) -> anyhow::Result<()> {
    let entry = &entries[index];
    let path = root.join(&entry.relative);
    let mut header = tar::Header::new_gnu();
    header.set_metadata_in_mode(&entry.metadata, tar::HeaderMode::Complete);
    header.set_mode(entry.metadata.mode() & 0o7777);
    let kind = entry.metadata.file_type();
    let failed = || format!("adding {} to a layer", path.display());
    if let Some(first) = entry.link_to {
        header.set_entry_type(tar::EntryType::Link);
        header.set_size(0);
        builder
            .append_link(&mut header, &entry.relative, &entries[first].relative)
            .with_context(failed)?;
    } else if kind.is_symlink() {
        let target = fs::read_link(&path).with_context(failed)?;
        header.set_size(0);
        builder
            .append_link(&mut header, &entry.relative, target)
            .with_context(failed)?;
    } else if kind.is_file() {
        let file = File::open(&path).with_context(failed)?;
        builder
            .append_data(&mut header, &entry.relative, file)
            .with_context(failed)?;
    } else {
        header.set_size(0);
        builder
            .append_data(&mut header, &entry.relative, io::empty())
            .with_context(failed)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_keeps_hard_link_groups_and_parents_together() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for sub in ["a", "b", "c", "d"] {
            fs::create_dir(root.join(sub)).unwrap();
            fs::write(root.join(sub).join("big"), vec![b'x'; 10_000]).unwrap();
        }
        fs::hard_link(root.join("a/big"), root.join("d/link")).unwrap();
        fs::create_dir_all(root.join("dev/pts")).unwrap();
        let walked = walk(root).unwrap();
        let paths: Vec<String> = walked
            .iter()
            .map(|entry| entry.relative.display().to_string())
            .collect();
        // dev's contents are left out; directories come before their contents.
        assert_eq!(
            paths,
            [
                "a", "a/big", "b", "b/big", "c", "c/big", "d", "d/big", "d/link", "dev"
            ]
        );
        assert_eq!(walked[8].link_to, Some(1));
        let layers = split_layers(&walked, walked.len(), 4);
        assert_eq!(layers.len(), 4);
        assert!(layers.iter().all(|layer| !layer.is_empty()), "{layers:?}");
        // a/big moves to d/link's layer (the last), after d.
        let last = layers.iter().position(|layer| layer.contains(&8)).unwrap();
        assert!(layers[last].contains(&1), "{layers:?}");
        assert!(layers[..=last].iter().flatten().any(|index| *index == 6));
        let mut all: Vec<usize> = layers.concat();
        all.sort();
        assert_eq!(all, (0..walked.len()).collect::<Vec<_>>());
    }
}
