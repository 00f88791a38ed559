//! Snapshots of directory trees for comparing an unpacked rootfs with a reference one
//! (`umoci unpack --rootless`): kinds, modes, sizes, content hashes, link targets, mtimes,
//! `user.*` xattrs, device numbers and hard-link groups.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use rustix::io::Errno;

use crate::Error;
use crate::registry::find_program;

/// What a path is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A named pipe.
    Fifo,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A Unix socket.
    Socket,
}

/// Everything a comparison looks at for one path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// What the path is.
    pub kind: Kind,
    /// Permission bits with setuid, setgid and sticky; `None` for symlinks (always 0777).
    pub mode: Option<u32>,
    /// Size of regular files and symlinks; `None` for everything else.
    pub size: Option<u64>,
    /// `sha256:<hex>` of a regular file's content.
    pub sha256: Option<String>,
    /// A symlink's target, escaped like paths (see [`escape`]).
    pub target: Option<String>,
    /// Whole seconds since the epoch.
    pub mtime: i64,
    /// `user.*` extended attributes, name to escaped value.
    pub xattrs: BTreeMap<String, String>,
    /// Device numbers (major, minor) of device nodes.
    pub rdev: Option<(u32, u32)>,
}

/// Every path below a root (not following symlinks), by escaped relative path, and the
/// hard-link groups.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree {
    /// Each path below the root, relative and escaped (see [`escape`]).
    pub entries: BTreeMap<String, Entry>,
    /// Groups of non-directory paths sharing an inode, each sorted, the list sorted.
    pub hardlinks: Vec<Vec<String>>,
}

impl Tree {
    /// Walks `root` without following symlinks.
    pub fn snapshot(root: &Path) -> Result<Tree, Error> {
        let mut entries = BTreeMap::new();
        let mut inodes: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        let mut pending = vec![root.to_path_buf()];
        while let Some(dir) = pending.pop() {
            let listing = fs::read_dir(&dir).map_err(|source| Error::io(&dir, source))?;
            for item in listing {
                let path = item.map_err(|source| Error::io(&dir, source))?.path();
                let relative = escape(
                    path.strip_prefix(root)
                        .expect("read_dir yields paths below the directory walked")
                        .as_os_str()
                        .as_bytes(),
                );
                let metadata =
                    fs::symlink_metadata(&path).map_err(|source| Error::io(&path, source))?;
                let kind = kind_of(&metadata.file_type());
                if kind == Kind::Dir {
                    pending.push(path.clone());
                } else if metadata.nlink() > 1 {
                    inodes
                        .entry(metadata.ino())
                        .or_default()
                        .push(relative.clone());
                }
                let sha256 = match kind {
                    Kind::File => Some(crate::sha256_digest(
                        &fs::read(&path).map_err(|source| Error::io(&path, source))?,
                    )),
                    _ => None,
                };
                let target = match kind {
                    Kind::Symlink => Some(escape(
                        fs::read_link(&path)
                            .map_err(|source| Error::io(&path, source))?
                            .as_os_str()
                            .as_bytes(),
                    )),
                    _ => None,
                };
                let entry = Entry {
                    kind,
                    mode: (kind != Kind::Symlink).then_some(metadata.mode() & 0o7777),
                    size: matches!(kind, Kind::File | Kind::Symlink).then_some(metadata.len()),
                    sha256,
                    target,
                    mtime: metadata.mtime(),
                    xattrs: user_xattrs(&path)?,
                    rdev: matches!(kind, Kind::CharDevice | Kind::BlockDevice).then(|| {
                        let rdev = metadata.rdev();
                        (rustix::fs::major(rdev), rustix::fs::minor(rdev))
                    }),
                };
                entries.insert(relative, entry);
            }
        }
        let mut hardlinks: Vec<Vec<String>> = inodes
            .into_values()
            .filter(|group| group.len() > 1)
            .map(|mut group| {
                group.sort();
                group
            })
            .collect();
        hardlinks.sort();
        Ok(Tree { entries, hardlinks })
    }

    /// Human-readable differences between this tree (called `ours`) and `expected` (called
    /// `theirs`), one item per path; empty when they are equal.
    pub fn differences(&self, expected: &Tree, ours: &str, theirs: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (path, entry) in &expected.entries {
            match self.entries.get(path) {
                None => out.push(format!("  missing in {ours}: {path} {entry:?}")),
                Some(mine) if mine != entry => out.push(format!(
                    "  {path}:\n    {ours}: {mine:?}\n    {theirs}: {entry:?}"
                )),
                Some(_) => {}
            }
        }
        for (path, entry) in &self.entries {
            if !expected.entries.contains_key(path) {
                out.push(format!("  only in {ours}: {path} {entry:?}"));
            }
        }
        if self.hardlinks != expected.hardlinks {
            out.push(format!(
                "  hard-link groups:\n    {ours}: {:?}\n    {theirs}: {:?}",
                self.hardlinks, expected.hardlinks
            ));
        }
        out
    }
}

fn kind_of(file_type: &fs::FileType) -> Kind {
    if file_type.is_symlink() {
        Kind::Symlink
    } else if file_type.is_dir() {
        Kind::Dir
    } else if file_type.is_file() {
        Kind::File
    } else if file_type.is_fifo() {
        Kind::Fifo
    } else if file_type.is_char_device() {
        Kind::CharDevice
    } else if file_type.is_block_device() {
        Kind::BlockDevice
    } else {
        Kind::Socket
    }
}

/// `bytes` as text, with every byte that is not part of valid UTF-8 written as `\xNN`.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

/// The `user.*` xattrs of `path` (not following symlinks); none where the filesystem has no
/// xattrs.
fn user_xattrs(path: &Path) -> Result<BTreeMap<String, String>, Error> {
    let failed = |errno: Errno| Error::io(path, std::io::Error::from(errno));
    let mut names = vec![0_u8; 64 * 1024];
    let length = match rustix::fs::llistxattr(path, &mut names[..]) {
        Ok(length) => length,
        Err(Errno::NOTSUP) => return Ok(BTreeMap::new()),
        Err(errno) => return Err(failed(errno)),
    };
    let mut out = BTreeMap::new();
    for name in names[..length].split(|byte| *byte == 0) {
        if !name.starts_with(b"user.") {
            continue;
        }
        let mut value = vec![0_u8; 64 * 1024];
        let length =
            rustix::fs::lgetxattr(path, OsStr::from_bytes(name), &mut value[..]).map_err(failed)?;
        out.insert(escape(name), escape(&value[..length]));
    }
    Ok(out)
}

/// `umoci unpack --rootless` of tag `tag` of the OCI layout `layout`, run on a copy of the
/// layout under `work` (umoci may write into a layout); returns the bundle's rootfs,
/// `work/bundle/rootfs`. umoci is found through `TANK_UMOCI`, else on `PATH`.
pub fn umoci_unpack(layout: &Path, tag: &str, work: &Path) -> Result<PathBuf, Error> {
    let umoci = find_program("umoci", "TANK_UMOCI", "umoci")?;
    let copy = work.join("layout");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(layout)
        .arg(&copy)
        .output()
        .map_err(|source| Error::Spawn {
            program: "cp".to_owned(),
            source,
        })?;
    if !copied.status.success() {
        return Err(Error::CommandFailed {
            command: format!("cp -a {} {}", layout.display(), copy.display()),
            status: copied.status.to_string(),
            stderr: String::from_utf8_lossy(&copied.stderr).trim().to_owned(),
        });
    }
    let bundle = work.join("bundle");
    let image = format!("{}:{tag}", copy.display());
    let output = Command::new(&umoci)
        .args(["unpack", "--rootless", "--image"])
        .arg(&image)
        .arg(&bundle)
        .output()
        .map_err(|source| Error::Spawn {
            program: umoci.display().to_string(),
            source,
        })?;
    if !output.status.success() {
        return Err(Error::CommandFailed {
            command: format!(
                "{} unpack --rootless --image {image} {}",
                umoci.display(),
                bundle.display()
            ),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(bundle.join("rootfs"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_records_kinds_links_and_hardlink_groups() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir(root.join("d")).unwrap();
        fs::write(root.join("d/a"), "alpha").unwrap();
        fs::hard_link(root.join("d/a"), root.join("b")).unwrap();
        std::os::unix::fs::symlink("d/a", root.join("s")).unwrap();
        let tree = Tree::snapshot(root).unwrap();
        assert_eq!(
            tree.entries.keys().collect::<Vec<_>>(),
            vec!["b", "d", "d/a", "s"]
        );
        assert_eq!(tree.entries["d"].kind, Kind::Dir);
        assert_eq!(tree.entries["d/a"].size, Some(5));
        assert_eq!(
            tree.entries["d/a"].sha256.as_deref(),
            Some(crate::sha256_digest(b"alpha").as_str())
        );
        assert_eq!(tree.entries["s"].target.as_deref(), Some("d/a"));
        assert_eq!(tree.entries["s"].mode, None);
        assert_eq!(tree.hardlinks, vec![vec!["b".to_owned(), "d/a".to_owned()]]);
        assert!(tree.differences(&tree, "a", "b").is_empty());

        let mut other = tree.clone();
        other.entries.remove("s");
        other.entries.get_mut("d/a").unwrap().mode = Some(0o600);
        let differences = tree.differences(&other, "ours", "theirs");
        assert_eq!(differences.len(), 2, "{differences:?}");
        assert!(differences.iter().any(|d| d.contains("only in ours: s")));
        assert!(differences.iter().any(|d| d.contains("d/a:")));
    }

    #[test]
    fn escape_marks_invalid_utf8_bytes() {
        assert_eq!(escape(b"caf\xe9"), "caf\\xe9");
        assert_eq!(escape("ok ü".as_bytes()), "ok ü");
    }
}
