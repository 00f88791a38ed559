//! The containment harness of the `extract` fuzz target (fuzz/fuzz_targets/extract.rs) and
//! its corpus replay test (tests/layer/fuzz_corpus.rs), in one place both can reach: whatever
//! bytes a layer holds, [`crate::extract`] returns (Ok or Err, never a panic) and nothing
//! outside `dest` changes or appears. Also the scratch-directory sweep every fuzz target
//! shares. Not part of the API: hidden from the docs, may change at any time.
//!
//! Only `std` and this crate are used here, so the fuzz crate needs no test dependencies.
//!
//! Layout of a [`Sandbox`] below its `base` directory:
//!
//! ```text
//! base/outside/x          file 0644        the host data a hostile layer wants to reach
//! base/outside/d/f        file 0600, in a 0700 directory
//! base/outside/link -> x  symlink
//! base/jail/root/         dest, re-made before every run, holding a "lower layer":
//!   up    -> ../../outside            relative, valid on the host
//!   up1   -> ../outside               relative, dangles on the host (base/jail/outside)
//!   abs   -> <base>/outside           absolute host path
//!   absx  -> <base>/outside/x         absolute host path of a file
//!   top   -> ../..                    climbs to base on the host
//!   outside/x                         so the links above resolve in-root too
//!   lower/file                        for whiteouts and opaque markers to delete
//!   lower/esc -> ../../../outside
//! ```
//!
//! The check compares a snapshot of `base/outside` (names, types, modes, owners, sizes, link
//! counts, inodes, mtimes, ctimes, contents, link targets) before and after, and that `base` holds
//! only `jail` and `outside`, `jail` holds only `root`, and `root` is still the same
//! directory.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _, symlink};
use std::path::{Path, PathBuf};

use crate::{Compression, Error, ExtractOptions, LayerReport, extract};

/// One node of the outside tree, with everything a containment break could change.
#[derive(Clone, Debug, PartialEq, Eq)]
struct OutsideNode {
    kind: &'static str,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    nlink: u64,
    ino: u64,
    mtime: (i64, i64),
    /// Any change of attributes (a chmod, chown, utimes or xattr to the same values) moves it.
    ctime: (i64, i64),
    /// File content or symlink target.
    data: Vec<u8>,
}

/// A prepared directory tree for running layers against, reusable across runs.
pub struct Sandbox {
    base: PathBuf,
    dest: PathBuf,
    outside_before: BTreeMap<String, OutsideNode>,
    options: ExtractOptions,
}

impl Sandbox {
    /// Builds the layout in `base`, an existing empty directory.
    pub fn new(base: &Path) -> io::Result<Sandbox> {
        let base = base.canonicalize()?;
        let outside = base.join("outside");
        fs::create_dir(&outside)?;
        fs::write(outside.join("x"), b"outside x\n")?;
        fs::set_permissions(outside.join("x"), fs::Permissions::from_mode(0o644))?;
        fs::create_dir(outside.join("d"))?;
        fs::write(outside.join("d/f"), b"outside d/f\n")?;
        fs::set_permissions(outside.join("d/f"), fs::Permissions::from_mode(0o600))?;
        fs::set_permissions(outside.join("d"), fs::Permissions::from_mode(0o700))?;
        symlink("x", outside.join("link"))?;
        fs::set_permissions(&outside, fs::Permissions::from_mode(0o755))?;
        fs::create_dir(base.join("jail"))?;
        let dest = base.join("jail").join("root");
        let outside_before = snapshot_outside(&outside)?;
        let sandbox = Sandbox {
            base,
            dest,
            outside_before,
            options: ExtractOptions {
                // Both only take effect when running as root; then they exercise chown
                // and mknod paths too.
                preserve_ownership: true,
                create_devices: true,
                max_bytes: Some(64 << 20),
                max_entries: Some(100_000),
            },
        };
        Ok(sandbox)
    }

    /// Where layers are extracted.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Empties `dest` (whatever a previous run left there) and plants the lower layer.
    fn reset(&self) -> io::Result<()> {
        remove_tree(&self.dest)?;
        let dest = &self.dest;
        let outside = self.base.join("outside");
        fs::create_dir(dest)?;
        symlink("../../outside", dest.join("up"))?;
        symlink("../outside", dest.join("up1"))?;
        symlink(&outside, dest.join("abs"))?;
        symlink(outside.join("x"), dest.join("absx"))?;
        symlink("../..", dest.join("top"))?;
        // So the escaping symlinks resolve (in-root) to something.
        fs::create_dir(dest.join("outside"))?;
        fs::write(dest.join("outside/x"), b"inside x\n")?;
        fs::create_dir(dest.join("lower"))?;
        fs::write(dest.join("lower/file"), b"lower\n")?;
        symlink("../../../outside", dest.join("lower/esc"))?;
        Ok(())
    }

    /// Resets `dest`, extracts `layer` (an uncompressed tar, checksums repaired first) and
    /// checks the invariant. Returns the extraction's result, or a description of what
    /// broke containment.
    pub fn run(&self, layer: &[u8]) -> Result<Result<LayerReport, Error>, String> {
        self.reset()
            .map_err(|error| format!("harness: resetting {}: {error}", self.dest.display()))?;
        let dest_ino = fs::symlink_metadata(&self.dest)
            .map_err(|error| format!("harness: {error}"))?
            .ino();
        let layer = repair_checksums(layer);
        let result = extract(&layer[..], Compression::None, &self.dest, &self.options);
        self.check(dest_ino)?;
        Ok(result)
    }

    /// Checks nothing outside `dest` changed or appeared.
    fn check(&self, dest_ino: u64) -> Result<(), String> {
        let after = snapshot_outside(&self.base.join("outside"))
            .map_err(|error| format!("outside tree unreadable after extraction: {error}"))?;
        if after != self.outside_before {
            return Err(format!(
                "outside tree changed:\nbefore: {:#?}\nafter: {after:#?}",
                self.outside_before
            ));
        }
        for (dir, expected) in [
            (self.base.clone(), &["jail", "outside"][..]),
            (self.base.join("jail"), &["root"][..]),
        ] {
            let names = sorted_names(&dir)
                .map_err(|error| format!("listing {}: {error}", dir.display()))?;
            if names != expected {
                return Err(format!(
                    "{} holds {names:?} instead of {expected:?}",
                    dir.display()
                ));
            }
        }
        let dest = fs::symlink_metadata(&self.dest)
            .map_err(|error| format!("dest {} gone: {error}", self.dest.display()))?;
        if !dest.is_dir() || dest.ino() != dest_ino {
            return Err(format!(
                "dest {} was replaced (is_dir {}, inode {} instead of {dest_ino})",
                self.dest.display(),
                dest.is_dir(),
                dest.ino()
            ));
        }
        Ok(())
    }
}

fn sorted_names(dir: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        names.push(entry?.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// Every node of `outside`, itself included (as ""), never following symlinks.
fn snapshot_outside(outside: &Path) -> io::Result<BTreeMap<String, OutsideNode>> {
    let mut out = BTreeMap::new();
    snapshot_node(outside, String::new(), &mut out)?;
    Ok(out)
}

fn snapshot_node(
    path: &Path,
    relative: String,
    out: &mut BTreeMap<String, OutsideNode>,
) -> io::Result<()> {
    let metadata = fs::symlink_metadata(path)?;
    let file_type = metadata.file_type();
    let (kind, data) = if file_type.is_symlink() {
        let target = fs::read_link(path)?;
        ("symlink", target.into_os_string().into_encoded_bytes())
    } else if file_type.is_dir() {
        for name in sorted_names(path)? {
            let child = if relative.is_empty() {
                name.clone()
            } else {
                format!("{relative}/{name}")
            };
            snapshot_node(&path.join(&name), child, out)?;
        }
        ("dir", Vec::new())
    } else if file_type.is_file() {
        ("file", fs::read(path)?)
    } else {
        ("other", Vec::new())
    };
    out.insert(
        relative,
        OutsideNode {
            kind,
            mode: metadata.mode(),
            uid: metadata.uid(),
            gid: metadata.gid(),
            size: metadata.size(),
            nlink: metadata.nlink(),
            ino: metadata.ino(),
            mtime: (metadata.mtime(), metadata.mtime_nsec()),
            ctime: (metadata.ctime(), metadata.ctime_nsec()),
            data,
        },
    );
    Ok(())
}

/// Removes `path` and everything below it, making directories searchable and writable
/// first (a layer may leave mode 000 directories); never follows symlinks.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    let metadata = match fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error),
    };
    if !metadata.is_dir() {
        return fs::remove_file(path);
    }
    if metadata.mode() & 0o700 != 0o700 {
        fs::set_permissions(path, fs::Permissions::from_mode(0o700))?;
    }
    for entry in fs::read_dir(path)? {
        remove_tree(&entry?.path())?;
    }
    fs::remove_dir(path)
}

const BLOCK: usize = 512;

/// Rewrites the checksum of every header it can find by walking `layer` header to header
/// (following each header's size field, and GNU sparse extension blocks), so a fuzzer's
/// mutations reach the extraction code instead of stopping at the checksum check.
/// Inputs with valid checksums are returned unchanged.
pub fn repair_checksums(layer: &[u8]) -> Vec<u8> {
    let mut bytes = layer.to_vec();
    let mut offset = 0_usize;
    // `offset` may be anything a size field says: compare without overflowing.
    while bytes
        .len()
        .checked_sub(offset)
        .is_some_and(|left| left >= BLOCK)
    {
        let header = &mut bytes[offset..offset + BLOCK];
        if header.iter().all(|byte| *byte == 0) {
            // End of archive.
            break;
        }
        let sum: u32 = header
            .iter()
            .enumerate()
            .map(|(index, byte)| {
                if (148..156).contains(&index) {
                    u32::from(b' ')
                } else {
                    u32::from(*byte)
                }
            })
            .sum();
        if checksum_field(&header[148..156]) != Some(sum) {
            header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        }
        let Some(size) = header_size(&header[124..136]) else {
            break;
        };
        let mut next = offset + BLOCK;
        // GNU sparse (`S`) headers may be followed by extension blocks before the data.
        let mut extended = header[156] == b'S' && header[482] != 0;
        while extended && bytes.len() - next >= BLOCK {
            extended = bytes[next + 504] != 0;
            next += BLOCK;
        }
        let Some(data) = usize::try_from(size)
            .ok()
            .and_then(|size| size.checked_next_multiple_of(BLOCK))
        else {
            break;
        };
        let Some(next) = next.checked_add(data) else {
            break;
        };
        offset = next;
    }
    bytes
}

/// The value of a header's checksum field, if it is octal text.
fn checksum_field(field: &[u8]) -> Option<u32> {
    let end = field
        .iter()
        .position(|byte| *byte == 0)
        .unwrap_or(field.len());
    let text = std::str::from_utf8(&field[..end]).ok()?.trim();
    u32::from_str_radix(text, 8).ok()
}

/// A header's size field: octal text, or base-256 when the first byte's high bit is set.
fn header_size(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        let mut tail = [0_u8; 8];
        tail.copy_from_slice(&field[field.len() - 8..]);
        return Some(u64::from_be_bytes(tail));
    }
    let end = field
        .iter()
        .position(|byte| *byte == 0)
        .unwrap_or(field.len());
    let text = std::str::from_utf8(&field[..end]).ok()?.trim();
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

/// Removes the scratch entries named `<prefix><pid>` in `scratch` whose process is gone:
/// libFuzzer exits without running destructors, and a crash skips `atexit`. Each goes with
/// [`remove_tree`], so a tree a layer left unwritable goes too.
pub fn sweep_stale(scratch: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(scratch) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(prefix) else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = remove_tree(&entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two fuzz targets each had a sweep; the manifest target's removed with
    /// `fs::remove_dir_all`, which fails on a directory a layer left without write or search
    /// permission. The one sweep now removes with [`remove_tree`], as the extract target did.
    #[test]
    fn sweep_removes_dead_runs_leftovers_even_unwritable_and_keeps_live_ones() {
        let scratch = tempfile::tempdir().unwrap();
        // No process has pid u32::MAX (Linux pids stay below 2^22).
        let dead = scratch.path().join(format!("fuzz-x-{}", u32::MAX));
        let locked = dead.join("locked");
        fs::create_dir_all(locked.join("inner")).unwrap();
        fs::write(locked.join("inner/file"), b"x").unwrap();
        fs::set_permissions(locked.join("inner"), fs::Permissions::from_mode(0o000)).unwrap();
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
        let live = scratch
            .path()
            .join(format!("fuzz-x-{}", std::process::id()));
        fs::create_dir(&live).unwrap();
        let other = scratch.path().join(format!("other-{}", u32::MAX));
        fs::create_dir(&other).unwrap();

        sweep_stale(scratch.path(), "fuzz-x-");

        assert!(!dead.exists(), "a dead run's sandbox is removed");
        assert!(live.is_dir(), "a live run's sandbox is kept");
        assert!(other.is_dir(), "names without the prefix are not touched");
    }
}
