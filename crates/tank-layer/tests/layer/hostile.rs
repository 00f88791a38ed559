//! Hostile layers: nothing outside `dest` may change or appear.
//!
//! Each case runs in a fresh temporary directory `tmp` with `dest = tmp/root` and
//! sentinel files planted in `tmp` (next to and above `dest`). Escaping entries are
//! contained (resolved as if `dest` were `/`) or refused; either way the snapshot of
//! everything outside `dest` must not change.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use tank_testkit::TarBuilder;

use crate::{Node, apply, snapshot};

/// Everything in `tmp` except `root/`, with mtimes of the sentinels.
fn outside(tmp: &Path) -> (BTreeMap<String, Node>, Vec<i64>) {
    let mut tree = snapshot(tmp);
    tree.retain(|path, _| path != "root" && !path.starts_with("root/"));
    let mtimes = ["sentinel", "dir", "dir/inner"]
        .iter()
        .map(|name| fs::symlink_metadata(tmp.join(name)).unwrap().mtime())
        .collect();
    (tree, mtimes)
}

/// Applies `layers` in order onto `tmp/root` and checks nothing outside changed.
/// Returns the temporary directory so the caller can look inside `root`.
fn check_contained(layers: &[TarBuilder]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("root");
    fs::create_dir(&dest).unwrap();
    fs::write(tmp.path().join("sentinel"), b"host data").unwrap();
    fs::create_dir(tmp.path().join("dir")).unwrap();
    fs::write(tmp.path().join("dir/inner"), b"host data").unwrap();
    let before = outside(tmp.path());
    for layer in layers {
        // Refusing is fine; writing outside is not.
        let _ = apply(&dest, layer);
    }
    let after = outside(tmp.path());
    assert_eq!(
        before, after,
        "something outside dest changed for {layers:?}"
    );
    tmp
}

#[test]
fn dot_dot_and_absolute_paths_are_contained() {
    let tmp = check_contained(&[TarBuilder::new()
        .file("../../sentinel", b"evil", 0o644)
        .file("../dir/inner", b"evil", 0o644)
        .file("/abs", b"abs", 0o644)
        .file("a/../../../new_outside", b"x", 0o644)]);
    let root = tmp.path().join("root");
    assert_eq!(fs::read(root.join("sentinel")).unwrap(), b"evil");
    assert_eq!(fs::read(root.join("dir/inner")).unwrap(), b"evil");
    assert_eq!(fs::read(root.join("abs")).unwrap(), b"abs");
    assert!(root.join("new_outside").exists());
    assert!(!tmp.path().join("new_outside").exists());
}

#[test]
fn writing_through_symlinked_parents_stays_inside() {
    let tmp = tempfile::tempdir().unwrap();
    let host_tmp = tmp.path().to_string_lossy().into_owned();
    drop(tmp);
    let cases = [
        TarBuilder::new()
            .symlink("s", "/")
            .file("s/sentinel", b"evil", 0o644),
        TarBuilder::new()
            .symlink("s", "..")
            .file("s/sentinel", b"evil", 0o644),
        TarBuilder::new()
            .symlink("s", "../..")
            .dir("s/dir", 0o755)
            .file("s/dir/inner", b"evil", 0o644),
        // A chain: a -> b -> c -> ../../..
        TarBuilder::new()
            .symlink("a", "b")
            .symlink("b", "c")
            .symlink("c", "../../..")
            .file("a/sentinel", b"evil", 0o644),
        // An absolute host path is a path inside dest.
        TarBuilder::new()
            .symlink("s", host_tmp.clone())
            .file("s/sentinel", b"evil", 0o644),
        TarBuilder::new()
            .symlink("s", "/..")
            .file("s/new_outside", b"evil", 0o644),
    ];
    for layer in cases {
        let tmp = check_contained(std::slice::from_ref(&layer));
        assert!(!tmp.path().join("new_outside").exists());
    }
}

#[test]
fn symlinks_in_lower_layers_are_not_followed_by_later_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let host_sentinel = tmp.path().join("sentinel").to_string_lossy().into_owned();
    drop(tmp);
    for target in ["../sentinel", host_sentinel.as_str(), "/../../sentinel"] {
        let tmp = check_contained(&[
            TarBuilder::new().symlink("link", target),
            // A file, a directory and a hard link over the symlink replace it.
            TarBuilder::new().file("link", b"evil", 0o644),
        ]);
        assert_eq!(fs::read(tmp.path().join("root/link")).unwrap(), b"evil");
        check_contained(&[
            TarBuilder::new().symlink("link", target),
            TarBuilder::new().dir("link", 0o777),
        ]);
    }
}

#[test]
fn hardlinks_cannot_reach_outside() {
    let tmp = tempfile::tempdir().unwrap();
    let host_sentinel = tmp.path().join("sentinel").to_string_lossy().into_owned();
    drop(tmp);
    let cases = [
        TarBuilder::new().hardlink("h", "../sentinel"),
        TarBuilder::new().hardlink("h", host_sentinel),
        TarBuilder::new()
            .symlink("s", "..")
            .hardlink("h", "s/sentinel"),
        TarBuilder::new()
            .symlink("s", "/")
            .hardlink("h", "s/dir/inner"),
    ];
    for layer in cases {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("root");
        fs::create_dir(&dest).unwrap();
        fs::write(tmp.path().join("sentinel"), b"host data").unwrap();
        fs::create_dir(tmp.path().join("dir")).unwrap();
        fs::write(tmp.path().join("dir/inner"), b"host data").unwrap();
        let result = apply(&dest, &layer);
        assert!(
            matches!(result, Err(tank_layer::Error::InvalidHardlink { .. })),
            "{layer:?}: {result:?}"
        );
        assert_eq!(
            fs::metadata(tmp.path().join("sentinel")).unwrap().nlink(),
            1
        );
        check_contained(&[layer]);
    }
}

#[test]
fn hardlink_to_a_symlink_links_the_symlink_itself() {
    let tmp = check_contained(&[TarBuilder::new()
        .symlink("s", "../sentinel")
        .hardlink("h", "s")
        .file("h2", b"", 0o644)]);
    let root = tmp.path().join("root");
    assert_eq!(
        fs::read_link(root.join("h")).unwrap().to_str(),
        Some("../sentinel")
    );
}

#[test]
fn whiteouts_cannot_delete_outside() {
    let cases = [
        TarBuilder::new().file("../.wh.sentinel", b"", 0o644),
        TarBuilder::new().file("/../.wh.dir", b"", 0o644),
        TarBuilder::new().symlink("s", "..").whiteout("s/sentinel"),
        TarBuilder::new().symlink("s", "/").whiteout("s/dir"),
        TarBuilder::new().file("dir/../../.wh.dir", b"", 0o644),
        TarBuilder::new().opaque(""),
        TarBuilder::new().opaque("..").opaque("/"),
        TarBuilder::new().symlink("s", "..").opaque("s"),
        TarBuilder::new()
            .symlink("s", "..")
            .file("s/.wh..wh..opq", b"", 0o644),
    ];
    for layer in cases {
        check_contained(&[TarBuilder::new().file("lower", b"l", 0o644), layer]);
    }
}

#[test]
fn whiteout_of_dot_dot_is_refused() {
    for name in [".wh..", ".wh...", "d/.wh.."] {
        let tmp = tempfile::tempdir().unwrap();
        let result = apply(tmp.path(), &TarBuilder::new().file(name, b"", 0o644));
        assert!(
            matches!(result, Err(tank_layer::Error::InvalidPath { .. })),
            "{name}: {result:?}"
        );
    }
}

#[test]
fn opaque_root_empties_only_dest() {
    let tmp = check_contained(&[
        TarBuilder::new().file("lower", b"l", 0o644).dir("d", 0o755),
        TarBuilder::new().opaque("").file("upper", b"u", 0o644),
    ]);
    let tree = snapshot(&tmp.path().join("root"));
    assert_eq!(tree.keys().collect::<Vec<_>>(), vec!["upper"]);
}

#[test]
fn a_dangling_symlink_parent_is_an_error_not_an_escape() {
    let layer = TarBuilder::new()
        .symlink("s", "/nonexistent")
        .file("s/x", b"x", 0o644);
    let tmp = check_contained(std::slice::from_ref(&layer));
    assert!(!tmp.path().join("nonexistent").exists());
    let result = apply(&tmp.path().join("root"), &layer);
    assert!(
        matches!(result, Err(tank_layer::Error::NotADirectory { .. })),
        "{result:?}"
    );
}

/// Found by the `extract` fuzz target: a uid of 2^64-1 (base-256 in the header) reached
/// `rustix::fs::Uid::from_raw(u32::MAX)`, which panics, when running as root with
/// `preserve_ownership`; 2^32 was truncated to 0 (root).
#[test]
fn owner_ids_beyond_32_bits_are_refused_not_truncated() {
    let is_root = rustix::process::geteuid().is_root();
    for (uid, gid) in [(u64::MAX, 0), (0, u64::from(u32::MAX)), (1 << 32, 1 << 32)] {
        let tmp = tempfile::tempdir().unwrap();
        let layer = TarBuilder::new()
            .entry(tank_testkit::TarEntry::file("f", b"x").owner(uid, gid))
            .build();
        let options = tank_layer::ExtractOptions {
            preserve_ownership: true,
            ..Default::default()
        };
        let result = tank_layer::extract(
            &layer[..],
            tank_layer::Compression::None,
            tmp.path(),
            &options,
        );
        if is_root {
            // Ownership is applied only as root: there it must be an error, not a panic
            // or a root-owned file.
            match result {
                Err(tank_layer::Error::Entry { entry, source, .. }) => {
                    assert_eq!(entry, "f");
                    assert_eq!(source.kind(), std::io::ErrorKind::InvalidData, "{source}");
                }
                other => panic!("uid {uid} gid {gid}: {other:?}"),
            }
        } else {
            let report = result.unwrap();
            assert_eq!(report.files, 1);
        }
    }
}
