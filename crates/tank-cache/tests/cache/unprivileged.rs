//! Removal and measurement as a user without root's permission override, where
//! directories an image made unreadable or read-only must be made writable (by fd) first.
//! As root this test binary re-executes itself as uid 65534 with
//! `TANK_CACHE_TEST_UNPRIVILEGED` set, running only [`unprivileged_child_entry`].

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use tank_cache::{Cache, RefRecord, RootfsGuard};
use tank_reference::Reference;

use crate::{sha256, temporaries};

const DIR: &str = "TANK_CACHE_TEST_UNPRIVILEGED";
const ROLE: &str = "TANK_CACHE_TEST_UNPRIVILEGED_ROLE";
const NOBODY: u32 = 65534;

/// Fills `tree` with directories an image may hold: unreadable (0o000), not searchable
/// (0o600), read-only (0o500), nested, each with 5-byte files.
fn fill_locked_tree(tree: &Path) {
    let chmod = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    };
    for name in ["unreadable", "unsearchable", "read-only"] {
        let dir = tree.join(name);
        std::fs::create_dir_all(dir.join("inner/deeper")).expect("mkdir");
        std::fs::write(dir.join("file"), "12345").expect("write");
        std::fs::write(dir.join("inner/deeper/file"), "12345").expect("write");
        chmod(&dir.join("inner/deeper"), 0o000);
        chmod(&dir.join("inner"), 0o500);
    }
    chmod(&tree.join("unreadable"), 0o000);
    chmod(&tree.join("unsearchable"), 0o600);
    chmod(&tree.join("read-only"), 0o500);
}

/// What the unprivileged user does: drop a build, gc a committed one, measure one.
fn scenario(dir: &Path) {
    let cache = Cache::open(dir).expect("open");
    let rootfs_dir = cache.root().join("rootfs/sha256");

    let RootfsGuard::Build(builder) = cache.build_rootfs(&sha256(b"dropped")).expect("build")
    else {
        panic!("nothing was built yet");
    };
    fill_locked_tree(builder.path());
    drop(builder);
    assert!(
        temporaries(&rootfs_dir).is_empty(),
        "{:?}",
        temporaries(&rootfs_dir)
    );

    let manifest = sha256(b"committed");
    let RootfsGuard::Build(builder) = cache.build_rootfs(&manifest).expect("build") else {
        panic!("nothing was built yet");
    };
    fill_locked_tree(builder.path());
    builder.commit().expect("commit");
    let reference: Reference = "locked:1".parse().expect("reference");
    let sidecar = cache
        .write_ref(
            &reference,
            "linux/amd64",
            &RefRecord::new(manifest.clone(), None, serde_json::Value::Null, vec![]),
        )
        .expect("write ref");
    // Unreadable directories are not opened up to be measured: only what can be read
    // counts (read-only/file; read-only/inner/deeper is 0o000), and ls goes on.
    let listed = cache.list_refs().expect("ls");
    assert_eq!(listed[0].rootfs_bytes, 5);
    std::fs::remove_file(sidecar).expect("drop the ref");
    let report = cache.gc(false).expect("gc");
    assert_eq!(report.rootfs, vec![manifest.clone()]);
    assert!(
        report
            .warnings
            .iter()
            .all(|warning| warning.operation != "remove"),
        "{:?}",
        report.warnings
    );
    assert_eq!(cache.rootfs_path(&manifest), None);
    assert!(
        temporaries(&rootfs_dir).is_empty(),
        "{:?}",
        temporaries(&rootfs_dir)
    );
}

/// The child side. Without `TANK_CACHE_TEST_UNPRIVILEGED` (a normal run) it does nothing.
#[test]
fn unprivileged_child_entry() {
    let Some(dir) = std::env::var_os(DIR) else {
        return;
    };
    assert_eq!(rustix::process::geteuid().as_raw(), NOBODY);
    match std::env::var(ROLE).as_deref() {
        Ok("remove") => scenario(Path::new(&dir)),
        Ok("foreign-subdir") => foreign_subdir(Path::new(&dir)),
        other => panic!("unknown role {other:?}"),
    }
    println!("RESULT unprivileged ok");
}

/// Runs the role in a child as nobody, or (when not root) here.
fn as_nobody(dir: &tempfile::TempDir, root: &Path, role: &str) {
    std::os::unix::fs::chown(dir.path(), Some(NOBODY), Some(NOBODY)).expect("chown");
    let output = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "unprivileged::unprivileged_child_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DIR, root)
        .env(ROLE, role)
        .uid(NOBODY)
        .gid(NOBODY)
        .output()
        .expect("run the child as nobody");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("RESULT unprivileged ok"),
        "child failed: {:?}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `refs/` belongs to another user and is world-writable: the cache's owner cannot
/// tighten it, so the open is refused, unless allowed.
fn foreign_subdir(root: &Path) {
    let refs = root.join("refs");
    let error = Cache::open(root).expect_err("a world-writable refs/ that cannot be tightened");
    assert!(
        matches!(&error, tank_cache::Error::InsecurePermissions { path, mode: 0o777, .. } if *path == refs),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("allow_untrusted_root"),
        "{error}"
    );
    let options = tank_cache::CacheOptions::default().allow_untrusted_root(true);
    Cache::open_with(root, &options).expect("allowed");
}

#[test]
fn a_cache_directory_others_can_write_and_the_owner_cannot_tighten_is_refused() {
    if rustix::process::geteuid().as_raw() != 0 {
        eprintln!("not root: cannot give refs/ to another user; nothing to check");
        return;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let root = dir.path().join("cache");
    Cache::open(&root).expect("create");
    std::os::unix::fs::chown(&root, Some(NOBODY), Some(NOBODY)).expect("chown");
    for sub in [
        "blobs",
        "blobs/sha256",
        "blobs/sha512",
        "rootfs",
        "rootfs/sha256",
        "rootfs/sha512",
    ] {
        std::os::unix::fs::chown(root.join(sub), Some(NOBODY), Some(NOBODY)).expect("chown");
    }
    std::os::unix::fs::chown(root.join("layout-version"), Some(NOBODY), Some(NOBODY))
        .expect("chown");
    std::fs::set_permissions(root.join("refs"), std::fs::Permissions::from_mode(0o777))
        .expect("chmod");
    as_nobody(&dir, &root, "foreign-subdir");
}

#[test]
fn an_unprivileged_user_removes_trees_with_unreadable_and_read_only_directories() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let root = dir.path().join("cache");
    if rustix::process::geteuid().as_raw() != 0 {
        // Already without root's override: run it here.
        scenario(&root);
        return;
    }
    as_nobody(&dir, &root, "remove");
}
