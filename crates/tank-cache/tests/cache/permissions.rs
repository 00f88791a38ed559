//! Other users cannot reach into the cache: 0700 directories whatever the umask, loose
//! caches tightened, a cache root owned by someone else refused unless allowed.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use tank_cache::{CACHE_DIR_MODE, Cache, CacheOptions, Error, RootfsGuard};

use crate::sha256;

/// The directories `Cache::open` makes.
const DIRS: [&str; 8] = [
    "",
    "blobs",
    "blobs/sha256",
    "blobs/sha512",
    "rootfs",
    "rootfs/sha256",
    "rootfs/sha512",
    "refs",
];

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o7777
}

fn assert_private(root: &Path) {
    for sub in DIRS {
        assert_eq!(mode(&root.join(sub)), 0o700, "{}", root.join(sub).display());
    }
}

/// Other tests of this binary run in parallel, so the umask is set only while this
/// test's `Cache::open` runs and restored at once; other tests do not check modes.
#[test]
fn a_new_cache_is_0700_whatever_the_umask() {
    assert_eq!(CACHE_DIR_MODE, 0o700);
    let dir = tempfile::tempdir().expect("temporary directory");
    let root = dir.path().join("cache");
    let old = rustix::process::umask(rustix::fs::Mode::empty());
    let opened = Cache::open(&root);
    rustix::process::umask(old);
    opened.expect("open");
    assert_private(&root);
}

#[test]
fn an_existing_loose_cache_is_tightened_on_open() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let root = dir.path().join("cache");
    Cache::open(&root).expect("create");
    for (index, sub) in DIRS.iter().enumerate() {
        let loose = if index % 2 == 0 { 0o755 } else { 0o777 };
        std::fs::set_permissions(root.join(sub), std::fs::Permissions::from_mode(loose))
            .expect("chmod");
    }
    Cache::open(&root).expect("reopen");
    assert_private(&root);
}

#[test]
fn a_cache_root_owned_by_another_user_is_refused_unless_allowed() {
    let euid = rustix::process::geteuid().as_raw();
    let dir = tempfile::tempdir().expect("temporary directory");
    let (root, owner) = if euid == 0 {
        let root = dir.path().join("cache");
        Cache::open(&root).expect("create");
        std::os::unix::fs::chown(&root, Some(65534), Some(65534)).expect("chown");
        (root, 65534)
    } else {
        // Not root: a directory root owns stands in for another user's cache.
        (Path::new("/").to_path_buf(), 0)
    };
    let error = Cache::open(&root).expect_err("a cache another user owns");
    assert!(
        matches!(&error, Error::UntrustedOwner { path, owner: found, euid: me } if *path == root && *found == owner && *me == euid),
        "{error:?}"
    );
    let message = error.to_string();
    for needle in [
        root.display().to_string(),
        format!("uid {owner}"),
        "allow_untrusted_root".to_owned(),
        "--allow-untrusted-cache".to_owned(),
    ] {
        assert!(message.contains(&needle), "{needle:?} not in {message:?}");
    }
    if euid == 0 {
        let options = CacheOptions::default().allow_untrusted_root(true);
        Cache::open_with(&root, &options).expect("allowed by the option");
        assert_eq!(std::fs::metadata(&root).expect("stat").uid(), 65534);
        assert_private(&root);
    }
}

#[test]
fn a_cache_directory_that_is_a_symlink_is_refused() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let root = dir.path().join("cache");
    Cache::open(&root).expect("create");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).expect("mkdir");
    std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::remove_dir(root.join("refs")).expect("rmdir");
    std::os::unix::fs::symlink(&elsewhere, root.join("refs")).expect("symlink");
    let error = Cache::open(&root).expect_err("refs/ is a symlink");
    assert!(
        matches!(&error, Error::UnexpectedFileType { path, found: "symbolic link", .. } if *path == root.join("refs")),
        "{error:?}"
    );
    // Nothing was done through the symlink.
    assert_eq!(mode(&elsewhere), 0o755);
}

#[test]
fn a_setuid_file_in_a_cached_rootfs_is_out_of_other_users_reach() {
    let dir = tempfile::tempdir().expect("temporary directory");
    // The cache's parent is open to all, as ~/.cache or /var/cache are.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let root = dir.path().join("cache");
    let cache = Cache::open(&root).expect("open");
    let manifest = sha256(b"setuid image");
    let RootfsGuard::Build(builder) = cache.build_rootfs(&manifest).expect("build") else {
        panic!("nothing was built yet");
    };
    std::fs::create_dir(builder.path().join("bin")).expect("mkdir");
    let tool = builder.path().join("bin/tool");
    std::fs::write(&tool, "#!/bin/sh\nid\n").expect("write");
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o4755)).expect("chmod");
    let rootfs = builder.commit().expect("commit");
    let tool = rootfs.join("bin/tool");

    assert_eq!(mode(&root), 0o700);
    if rustix::process::geteuid().as_raw() != 0 {
        eprintln!("not root: checked the 0700 mode only, not another user's access");
        return;
    }
    let probe = |uid: u32| {
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg("test -e \"$1\"")
            .arg("probe")
            .arg(&tool);
        if uid != 0 {
            command.uid(uid).gid(uid);
        }
        command.status().expect("run the probe").success()
    };
    assert!(probe(0), "the owner reaches {}", tool.display());
    assert!(
        !probe(65534),
        "another user reaches the setuid file {}",
        tool.display()
    );
}

#[test]
fn a_directory_that_is_not_a_cache_is_never_chmod_ed() {
    let dir = tempfile::tempdir().expect("temporary directory");
    // A shared directory (think /tmp) given as the cache: refused, left as it was (tank
    // used to make its directories there, and now would chmod it).
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).expect("mkdir");
    std::fs::write(shared.join("someone-elses"), "x").expect("write");
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    let error = Cache::open(&shared).expect_err("a world-writable non-cache directory");
    assert!(
        matches!(&error, Error::InsecurePermissions { path, mode: 0o1777, .. } if *path == shared),
        "{error:?}"
    );
    assert_eq!(mode(&shared), 0o1777);
    assert!(!shared.join("blobs").exists());
    // A readable one (think a home directory) is used, its mode kept, tank's dirs 0700.
    let home = dir.path().join("home");
    std::fs::create_dir(&home).expect("mkdir");
    std::fs::write(home.join(".profile"), "x").expect("write");
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    Cache::open(&home).expect("open");
    assert_eq!(mode(&home), 0o755);
    for sub in &DIRS[1..] {
        assert_eq!(mode(&home.join(sub)), 0o700, "{sub}");
    }
    // Not even once tank's own files are in it.
    Cache::open(&home).expect("reopen");
    assert_eq!(mode(&home), 0o755);
}
