//! A cache that cannot be bricked: trees deeper than `PATH_MAX`, leftovers that cannot be
//! removed, FIFOs and symlinks planted under tank's names, and a racer swapping a
//! directory and a symlink while gc removes its tree.

use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rustix::fs::{self as rfs, Mode, OFlags, RenameFlags};
use tank_cache::{Cache, Error, RefRecord, RootfsGuard};
use tank_reference::Reference;

use crate::{new_cache, sha256, temporaries};

/// Runs `work` on its own thread and returns its result, failing the test when it has not
/// finished within `secs` seconds (a hang, which the old code had).
fn within<T: Send + 'static>(
    secs: u64,
    what: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(work());
    });
    result
        .recv_timeout(Duration::from_secs(secs))
        .unwrap_or_else(|_| panic!("{what} did not finish within {secs} s: it hangs"))
}

fn open_dir(path: &Path) -> OwnedFd {
    rfs::open(path, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).expect("open directory")
}

/// Makes `depth` nested directories with names of `name_len` bytes under `dir` (working
/// from directory fds, as tank-layer does), a 7-byte file at the bottom, and makes every
/// fourth directory read-only (0o555) as images do. Returns the bytes of files made.
fn make_deep_tree(dir: &Path, depth: usize, name_len: usize) -> u64 {
    let mut fds = vec![open_dir(dir)];
    for level in 0..depth {
        let name = format!("{level:03}{}", "d".repeat(name_len - 3));
        let parent = fds.last().expect("a parent");
        rfs::mkdirat(parent, name.as_str(), Mode::from_raw_mode(0o755)).expect("mkdirat");
        let child = rfs::openat(
            parent,
            name.as_str(),
            OFlags::RDONLY | OFlags::DIRECTORY,
            Mode::empty(),
        )
        .expect("openat");
        fds.push(child);
    }
    let bottom = fds.last().expect("the bottom");
    let file = rfs::openat(
        bottom,
        "bottom",
        OFlags::WRONLY | OFlags::CREATE,
        Mode::from_raw_mode(0o644),
    )
    .expect("create file");
    rustix::io::write(&file, b"content").expect("write");
    for (level, fd) in fds.iter().enumerate().skip(1) {
        if level % 4 == 0 {
            rfs::fchmod(fd, Mode::from_raw_mode(0o555)).expect("fchmod");
        }
    }
    7
}

/// 17 components of 250 bytes: longer than `PATH_MAX` (4096) from the tree's top.
const DEEP: (usize, usize) = (17, 250);

#[test]
fn trees_longer_than_path_max_are_removed_measured_and_cleaned_up() {
    let (dir, cache) = new_cache();
    let rootfs_dir = cache.root().join("rootfs/sha256");

    // A builder dropped mid-build removes its tree.
    let manifest = sha256(b"deep dropped");
    let RootfsGuard::Build(builder) = cache.build_rootfs(&manifest).expect("build") else {
        panic!("nothing was built yet");
    };
    make_deep_tree(builder.path(), DEEP.0, DEEP.1);
    drop(builder);
    assert!(
        temporaries(&rootfs_dir).is_empty(),
        "{:?}",
        temporaries(&rootfs_dir)
    );

    // A crashed builder's tree goes at the next open (which used to fail from then on).
    let crashed = rootfs_dir.join(format!(".tmp-{}-crashed", sha256(b"deep crashed").hex()));
    std::fs::create_dir(&crashed).expect("mkdir");
    make_deep_tree(&crashed, DEEP.0, DEEP.1);
    let reopened = Cache::open(dir.path()).expect("open with a deep leftover");
    assert!(temporaries(&rootfs_dir).is_empty());
    assert!(reopened.cleanup().expect("cleanup").warnings.is_empty());

    // A committed deep rootfs is measured by `list_refs` and removed by gc.
    let manifest = sha256(b"deep committed");
    let RootfsGuard::Build(builder) = cache.build_rootfs(&manifest).expect("build") else {
        panic!("nothing was built yet");
    };
    let bytes = make_deep_tree(builder.path(), DEEP.0, DEEP.1);
    builder.commit().expect("commit");
    let reference: Reference = "deep:1".parse().expect("reference");
    let record = RefRecord::new(manifest.clone(), None, serde_json::Value::Null, vec![]);
    let sidecar = cache
        .write_ref(&reference, "linux/amd64", &record)
        .expect("write ref");
    let listed = cache.list_refs().expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].rootfs_bytes, bytes);
    std::fs::remove_file(sidecar).expect("drop the ref");
    let report = cache.gc(false).expect("gc");
    assert_eq!(report.rootfs, vec![manifest.clone()]);
    assert_eq!(report.bytes, bytes);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(cache.rootfs_path(&manifest), None);
    assert!(temporaries(&rootfs_dir).is_empty());
}

#[test]
fn trees_deeper_than_the_open_fd_window_are_removed_and_measured_exactly() {
    let (_dir, cache) = new_cache();
    let manifest = sha256(b"very deep");
    let RootfsGuard::Build(builder) = cache.build_rootfs(&manifest).expect("build") else {
        panic!("nothing was built yet");
    };
    // 120 levels (far more than the 32 fds a walk keeps open), each with files and an
    // empty sibling directory before and after the one that goes deeper, so reading
    // must resume in the right place after each reopen.
    let mut path = builder.path().to_path_buf();
    let mut expected = 0u64;
    let mut fds = vec![open_dir(&path)];
    for level in 0..120u64 {
        let parent = fds.last().expect("a parent");
        for name in ["a-file", "z-file"] {
            let file = rfs::openat(
                parent,
                name,
                OFlags::WRONLY | OFlags::CREATE,
                Mode::from_raw_mode(0o644),
            )
            .expect("create");
            rustix::io::write(&file, &vec![b'x'; (level % 7) as usize]).expect("write");
            expected += level % 7;
        }
        for name in ["a-empty", "z-empty"] {
            rfs::mkdirat(parent, name, Mode::from_raw_mode(0o500)).expect("mkdirat");
        }
        rfs::mkdirat(parent, "m", Mode::from_raw_mode(0o755)).expect("mkdirat");
        let child = rfs::openat(
            parent,
            "m",
            OFlags::RDONLY | OFlags::DIRECTORY,
            Mode::empty(),
        )
        .expect("openat");
        fds.push(child);
        if path.as_os_str().len() < 2000 {
            path.push("m");
        }
    }
    drop(fds);
    let committed = builder.commit().expect("commit");
    let reference: Reference = "deep:2".parse().expect("reference");
    let sidecar = cache
        .write_ref(
            &reference,
            "linux/amd64",
            &RefRecord::new(manifest.clone(), None, serde_json::Value::Null, vec![]),
        )
        .expect("write ref");
    assert_eq!(cache.list_refs().expect("list")[0].rootfs_bytes, expected);
    std::fs::remove_file(sidecar).expect("drop the ref");
    let report = cache.gc(false).expect("gc");
    assert_eq!(report.bytes, expected);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert!(!committed.exists());
    assert!(temporaries(&cache.root().join("rootfs/sha256")).is_empty());
}

/// Clears the immutable flag of a file when dropped, so the temporary directory can go.
struct Immutable(PathBuf);

impl Immutable {
    fn set(path: &Path) -> Immutable {
        let status = Command::new("chattr").arg("+i").arg(path).status();
        let ok = status.as_ref().is_ok_and(|status| status.success());
        let listed = Command::new("lsattr").arg(path).output();
        let shown = listed
            .as_ref()
            .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
            .unwrap_or_default();
        assert!(
            ok && shown
                .split_whitespace()
                .next()
                .is_some_and(|flags| flags.contains('i')),
            "this test needs `chattr +i` (e2fsprogs, as root, on ext4/xfs/btrfs/tmpfs) to make \
             a file that cannot be removed: chattr gave {status:?}, lsattr {shown:?} for {}",
            path.display()
        );
        Immutable(path.to_path_buf())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

#[test]
fn a_leftover_that_cannot_be_removed_is_a_warning_and_never_stops_the_cache() {
    let (dir, cache) = new_cache();
    let blob = b"still usable".as_slice();
    cache.put_blob_bytes(&sha256(blob), blob).expect("put");
    let rootfs_dir = cache.root().join("rootfs/sha256");
    let stuck = rootfs_dir.join(format!(".tmp-{}-stuck", sha256(b"stuck").hex()));
    std::fs::create_dir_all(stuck.join("etc")).expect("mkdir");
    std::fs::write(stuck.join("etc/pinned"), "x").expect("write");
    std::fs::write(stuck.join("other"), "y").expect("write");
    let _guard = Immutable::set(&stuck.join("etc/pinned"));

    let reopened = Cache::open(dir.path()).expect("open despite a stuck leftover");
    // Everything else in it went; the pinned file and its directories stay.
    assert!(stuck.join("etc/pinned").exists());
    assert!(!stuck.join("other").exists());
    let report = reopened.cleanup().expect("cleanup");
    assert!(report.removed.is_empty());
    assert!(
        report
            .warnings
            .iter()
            .any(|warning| warning.path.starts_with(&stuck)),
        "{:?}",
        report.warnings
    );
    // ls, gc and reads go on.
    assert!(reopened.list_refs().expect("ls").is_empty());
    let gc = reopened.gc(false).expect("gc");
    assert_eq!(gc.blobs, vec![sha256(blob)]);
    assert!(reopened.verify().expect("verify").removed.is_empty());
}

/// How many directory/symlink pairs a racer swaps in one tree.
const PAIRS: usize = 8;

/// Fills `tree` with directories `d<n>` (mode 0o077: not owner-writable, so the old
/// make-writable step chmod-ed them, by path) and symlinks `l<n>` to `sentinel`.
fn fill_swappable(tree: &Path, sentinel: &Path) {
    for pair in 0..PAIRS {
        let directory = tree.join(format!("d{pair}"));
        std::fs::create_dir(&directory).expect("mkdir");
        std::fs::write(directory.join("f"), "").expect("write");
        std::fs::set_permissions(&directory, std::fs::Permissions::from_mode(0o077))
            .expect("chmod");
        std::os::unix::fs::symlink(sentinel, tree.join(format!("l{pair}"))).expect("symlink");
    }
}

/// A process inside the rootfs: swaps each `d<n>` with its `l<n>` (`renameat2` with
/// `RENAME_EXCHANGE`), again and again, through a directory fd (which survives gc's
/// rename), until stopped (or 2 million swaps).
fn start_swapper(tree: OwnedFd) -> (Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let swapper = std::thread::spawn(move || {
        let mut swaps = 0u64;
        while !stopped.load(Ordering::Relaxed) && swaps < 2_000_000 {
            for pair in 0..PAIRS {
                let (d, l) = (format!("d{pair}"), format!("l{pair}"));
                let _ =
                    rfs::renameat_with(&tree, d.as_str(), &tree, l.as_str(), RenameFlags::EXCHANGE);
                swaps += 1;
            }
        }
    });
    (stop, swapper)
}

fn assert_untouched(sentinel: &Path, round: usize) {
    let mode = std::fs::metadata(sentinel)
        .expect("sentinel")
        .permissions()
        .mode()
        & 0o7777;
    assert_eq!(
        mode, 0o700,
        "round {round}: the sentinel outside the cache was chmod-ed"
    );
    assert_eq!(
        std::fs::read_to_string(sentinel.join("secret")).expect("read"),
        "keep"
    );
    assert_eq!(std::fs::read_dir(sentinel).expect("read").count(), 1);
}

/// The old make-writable step (lstat, then chmod by path) lost this race, the sentinel
/// chmod-ed to 0777, in some rounds: how often depends on how often the two threads run
/// at once (3 runs of 5 within 2 s on a 2-core machine at load 11). The fd-only walk
/// cannot lose it. Bounded: 4 s or 300 rounds, whichever comes first.
#[test]
fn removal_never_chmods_through_a_symlink_a_racer_swaps_in() {
    let outside = tempfile::tempdir().expect("temporary directory");
    let sentinel = outside.path().join("sentinel");
    std::fs::create_dir(&sentinel).expect("mkdir");
    std::fs::write(sentinel.join("secret"), "keep").expect("write");
    std::fs::set_permissions(&sentinel, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let (_dir, cache) = new_cache();

    // Once through gc (measure, rename, remove) ...
    let manifest = sha256(b"racy gc");
    let RootfsGuard::Build(builder) = cache.build_rootfs(&manifest).expect("build") else {
        panic!("nothing was built yet");
    };
    fill_swappable(builder.path(), &sentinel);
    let tree = open_dir(builder.path());
    builder.commit().expect("commit");
    let (stop, swapper) = start_swapper(tree);
    let report = cache.gc(false).expect("gc goes on whatever the racer does");
    stop.store(true, Ordering::Relaxed);
    swapper.join().expect("swapper");
    assert_eq!(report.rootfs, vec![manifest]);
    assert_untouched(&sentinel, 0);

    // ... then many times through the removal of dropped builds (no syncfs per round).
    let started = Instant::now();
    let mut round = 0;
    while round < 300 && started.elapsed() < Duration::from_secs(4) {
        round += 1;
        let manifest = sha256(format!("racy {round}").as_bytes());
        let RootfsGuard::Build(builder) = cache.build_rootfs(&manifest).expect("build") else {
            panic!("nothing was built yet");
        };
        fill_swappable(builder.path(), &sentinel);
        let (stop, swapper) = start_swapper(open_dir(builder.path()));
        drop(builder);
        stop.store(true, Ordering::Relaxed);
        swapper.join().expect("swapper");
        assert_untouched(&sentinel, round);
    }
    // With the racer gone, whatever it made a removal leave behind goes at the next cleanup.
    cache.cleanup().expect("cleanup");
    assert!(temporaries(&cache.root().join("rootfs/sha256")).is_empty());
    assert_untouched(&sentinel, round);
}

#[test]
fn fifos_planted_under_tank_names_do_not_hang_anything() {
    let (dir, cache) = new_cache();
    let reference: Reference = "app:1".parse().expect("reference");
    let record = RefRecord::new(sha256(b"m"), None, serde_json::Value::Null, vec![]);
    let sidecar = cache
        .write_ref(&reference, "linux/amd64", &record)
        .expect("write ref");
    let selector = sidecar.parent().expect("selector directory").to_path_buf();
    let blob_fifo_digest = sha256(b"never written");
    let fifos = [
        cache.root().join(".tmp-planted"),
        cache.root().join("blobs/sha256/.tmp-planted"),
        selector.join(".tmp-planted"),
        cache
            .root()
            .join("blobs/sha256")
            .join(blob_fifo_digest.hex()),
        selector.join("linux%2Farm64.json"),
    ];
    for fifo in &fifos {
        rfs::mkfifoat(rfs::CWD, fifo, Mode::from_raw_mode(0o600)).expect("mkfifo");
    }
    let root = dir.path().to_path_buf();
    let (cache, report) = within(10, "opening a cache with FIFOs", move || {
        let cache = Cache::open(&root).expect("open");
        let report = cache.cleanup().expect("cleanup");
        (cache, report)
    });
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    for temporary in &fifos[..3] {
        assert!(!temporary.exists(), "{} was left", temporary.display());
    }
    let blob_digest = blob_fifo_digest.clone();
    let (listed, opened, verified) = within(10, "ls, open_blob and verify with FIFOs", move || {
        (
            cache.list_refs().map(|refs| refs.len()),
            cache.open_blob(&blob_digest).map(drop),
            cache.verify(),
        )
    });
    // The FIFO named like a sidecar is skipped, the real sidecar listed.
    assert_eq!(listed.expect("ls"), 1);
    assert!(
        matches!(
            &opened,
            Err(Error::UnexpectedFileType { found: "FIFO", .. })
        ),
        "{opened:?}"
    );
    assert_eq!(verified.expect("verify").removed, vec![blob_fifo_digest]);

    // A FIFO as layout-version is refused at once, not waited on.
    let layout = dir.path().join("layout-version");
    std::fs::remove_file(&layout).expect("remove");
    rfs::mkfifoat(rfs::CWD, &layout, Mode::from_raw_mode(0o600)).expect("mkfifo");
    let root = dir.path().to_path_buf();
    let error = within(
        10,
        "opening a cache whose layout-version is a FIFO",
        move || Cache::open(&root).map(drop),
    )
    .expect_err("a FIFO is not a layout version");
    assert!(
        matches!(&error, Error::UnexpectedFileType { path, .. } if *path == layout),
        "{error:?}"
    );
    assert!(error.to_string().contains("layout-version"), "{error}");
}

#[test]
fn dangling_symlinks_planted_as_lock_files_are_refused_never_followed() {
    let outside = tempfile::tempdir().expect("temporary directory");
    let (dir, cache) = new_cache();
    let manifest = sha256(b"locked out");
    let cache_lock_target = outside.path().join("created-through-lock");
    let build_lock_target = outside.path().join("created-through-build-lock");
    std::os::unix::fs::symlink(&cache_lock_target, cache.root().join("lock")).expect("symlink");
    let build_lock = cache
        .root()
        .join(format!("rootfs/.lock-sha256-{}", manifest.hex()));
    std::os::unix::fs::symlink(&build_lock_target, &build_lock).expect("symlink");
    // A leftover of that digest makes the cleanup at open reach for its build lock.
    let leftover = cache
        .root()
        .join(format!("rootfs/sha256/.tmp-{}-dead", manifest.hex()));
    std::fs::create_dir(&leftover).expect("mkdir");

    let root = dir.path().to_path_buf();
    let (shared, built, reopened) = within(10, "locking through planted symlinks", move || {
        let reopened = Cache::open(&root).map(drop);
        (
            cache.lock_shared().map(drop),
            cache.build_rootfs(&manifest).map(drop),
            reopened,
        )
    });
    reopened.expect("a planted build lock is a cleanup warning, not an open error");
    for (result, path) in [(shared, cache_lock_path(&dir)), (built, build_lock)] {
        let error = result.expect_err("a symlink is not a lock file");
        assert!(
            matches!(&error, Error::UnexpectedFileType { path: at, found: "symbolic link", .. } if *at == path),
            "{error:?}"
        );
        assert!(error.to_string().contains(&path.display().to_string()));
    }
    assert!(
        !cache_lock_target.exists(),
        "tank created a file through a lock symlink"
    );
    assert!(
        !build_lock_target.exists(),
        "tank created a file through a lock symlink"
    );
    assert!(
        leftover.exists(),
        "a leftover whose lock cannot be taken is kept"
    );
}

fn cache_lock_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("lock")
}

const LOW_FD_DIR: &str = "TANK_CACHE_TEST_LOW_FD_LIMIT";
/// The child's fd limit: the test harness's own fds, the cache's, and the walk's 32.
const LOW_FD_LIMIT: u64 = 48;
const LOW_FD_DEPTH: usize = 400;

/// The child side of [`trees_deeper_than_the_fd_limit_are_measured_and_removed`]; does
/// nothing without `TANK_CACHE_TEST_LOW_FD_LIMIT`.
#[test]
fn low_fd_limit_child_entry() {
    let Some(dir) = std::env::var_os(LOW_FD_DIR) else {
        return;
    };
    let limit = rustix::process::Rlimit {
        current: Some(LOW_FD_LIMIT),
        maximum: Some(LOW_FD_LIMIT),
    };
    rustix::process::setrlimit(rustix::process::Resource::Nofile, limit).expect("setrlimit");
    let cache = Cache::open(&dir).expect("open");
    let manifest = sha256(b"deeper than the fd limit");
    let RootfsGuard::Build(builder) = cache.build_rootfs(&manifest).expect("build") else {
        panic!("nothing was built yet");
    };
    // One fd at a time while making it.
    let mut current = open_dir(builder.path());
    for _ in 0..LOW_FD_DEPTH {
        rfs::mkdirat(&current, "d", Mode::from_raw_mode(0o755)).expect("mkdirat");
        let file = rfs::openat(
            &current,
            "f",
            OFlags::WRONLY | OFlags::CREATE,
            Mode::from_raw_mode(0o644),
        )
        .expect("create");
        rustix::io::write(&file, b"x").expect("write");
        current = rfs::openat(
            &current,
            "d",
            OFlags::RDONLY | OFlags::DIRECTORY,
            Mode::empty(),
        )
        .expect("openat");
    }
    drop(current);
    builder.commit().expect("commit");
    let reference: Reference = "deep:3".parse().expect("reference");
    let sidecar = cache
        .write_ref(
            &reference,
            "linux/amd64",
            &RefRecord::new(manifest.clone(), None, serde_json::Value::Null, vec![]),
        )
        .expect("write ref");
    assert_eq!(
        cache.list_refs().expect("ls")[0].rootfs_bytes,
        LOW_FD_DEPTH as u64
    );
    std::fs::remove_file(sidecar).expect("drop the ref");
    let report = cache.gc(false).expect("gc");
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(report.rootfs, vec![manifest]);
    assert!(temporaries(&cache.root().join("rootfs/sha256")).is_empty());
    println!("RESULT low fd limit ok");
}

/// A tree 400 levels deep is measured and removed by a process allowed 48 fds: the walk
/// keeps at most 32 directories open (a walk that held one fd per level ran out at once).
#[test]
fn trees_deeper_than_the_fd_limit_are_measured_and_removed() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let output = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "hostile::low_fd_limit_child_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(LOW_FD_DIR, dir.path())
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("RESULT low fd limit ok"),
        "child failed: {:?}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}
