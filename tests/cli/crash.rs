//! `tank pull` killed with SIGKILL at many points of a multi-layer pull: nothing partial is
//! ever left under a final name, and the next pull succeeds with the right rootfs and
//! removes what the dead one left behind.
//!
//! The kill points are conditions on the cache directory, polled while the pull runs
//! (a temporary blob appears, grows, is renamed into place; the temporary rootfs appears
//! and fills; the rootfs is renamed; the ref sidecar is written), plus a few fixed delays
//! after the spawn. A pull that ends before its condition is seen counts as "not reached";
//! the test requires at least half to be reached so that it keeps testing crashes, not
//! finished pulls.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use tank_testkit::{Compression, ImageBuilder, Platform, Registry, TarBuilder, Tree, noise};

use crate::{ok, push_image, run, snapshot, stderr, tank};

/// An image of `layers` gzip layers, each holding `noise_bytes` of incompressible data and
/// `small_files` small files under `<name>/<layer>/`; the last layer removes one small file
/// of the first (a whiteout) and replaces another, so the layers must apply in order.
pub(crate) fn noisy_image(
    name: &str,
    layers: usize,
    noise_bytes: usize,
    small_files: usize,
) -> ImageBuilder {
    let mut image = ImageBuilder::new(Platform::new("linux", crate::host_arch())).cmd(&["/bin/sh"]);
    for layer in 0..layers {
        let dir = format!("{name}/l{layer}");
        let seed = name.bytes().fold(layer as u64 + 1, |seed, byte| {
            seed.wrapping_mul(31).wrapping_add(u64::from(byte))
        });
        let mut tar = TarBuilder::new()
            .dir(name, 0o755)
            .dir(&dir, 0o755)
            .file(format!("{dir}/noise"), noise(seed, noise_bytes), 0o644)
            .dir(format!("{dir}/small"), 0o755);
        for index in 0..small_files {
            tar = tar.file(
                format!("{dir}/small/f{index:04}"),
                format!("{name} layer {layer} file {index}\n"),
                0o644,
            );
        }
        if layer + 1 == layers && layers > 1 {
            tar = tar.whiteout(&format!("{name}/l0/small/f0000")).file(
                format!("{name}/l0/small/f0001"),
                "replaced\n",
                0o600,
            );
        }
        image = image.layer_tar(tar.build(), Compression::Gzip);
    }
    image
}

/// Every path below `dir` (none when it does not exist), not following symlinks.
pub(crate) fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

fn is_temporary(path: &Path) -> bool {
    path.file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| name.starts_with(".tmp-"))
}

/// The names of `dir`'s entries (none when it does not exist).
fn names(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
        .unwrap_or_default()
}

/// Asserts that everything in `cache` under a final name is complete: each blob hashes to
/// its name, each rootfs equals `reference` (the one image pulled), each ref sidecar is a
/// JSON document whose rootfs exists. Returns how many temporaries the dead pull left.
pub(crate) fn assert_nothing_partial(cache: &Path, reference: &Tree, what: &str) -> usize {
    let mut temporaries = 0;
    for path in names(&cache.join("blobs/sha256")) {
        if is_temporary(&path) {
            temporaries += 1;
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let content = fs::read(&path).unwrap();
        assert_eq!(
            tank_testkit::sha256_hex(&content),
            name,
            "{what}: {} is under a final name but is not its blob",
            path.display()
        );
    }
    for path in names(&cache.join("rootfs/sha256")) {
        if is_temporary(&path) {
            temporaries += 1;
            continue;
        }
        let differences = snapshot(&path).differences(reference, "after the kill", "reference");
        assert!(
            differences.is_empty(),
            "{what}: {} is under a final name but incomplete:\n{}",
            path.display(),
            differences.join("\n")
        );
    }
    for path in walk(&cache.join("refs")) {
        if path.is_dir() {
            continue;
        }
        if is_temporary(&path) {
            temporaries += 1;
            continue;
        }
        let record: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap())
            .unwrap_or_else(|error| panic!("{what}: {} is not JSON: {error}", path.display()));
        let manifest = record["manifest_digest"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: {} names no manifest: {record}", path.display()));
        let hex = manifest.strip_prefix("sha256:").expect("a sha256 digest");
        assert!(
            cache.join("rootfs/sha256").join(hex).is_dir(),
            "{what}: ref {} names a rootfs that is not there",
            path.display()
        );
    }
    temporaries
}

/// Asserts that no `.tmp-` entry is left anywhere in `cache`.
pub(crate) fn assert_no_temporaries(cache: &Path, what: &str) {
    let left: Vec<PathBuf> = walk(cache)
        .into_iter()
        .filter(|path| is_temporary(path))
        .collect();
    assert!(left.is_empty(), "{what}: temporaries left: {left:?}");
}

/// When to kill the pull.
#[derive(Clone, Copy, Debug)]
enum Point {
    /// Right after the spawn.
    Spawned,
    /// A fixed delay after the spawn.
    After(Duration),
    /// The cache directory has been created.
    CacheCreated,
    /// A temporary blob file exists.
    BlobTemporary,
    /// A temporary blob file holds at least this many bytes.
    BlobTemporaryBytes(u64),
    /// At least this many blobs are under their final name.
    Blobs(usize),
    /// The temporary rootfs exists.
    RootfsTemporary,
    /// The temporary rootfs holds at least this many paths.
    RootfsTemporaryPaths(usize),
    /// The rootfs is under its final name.
    Rootfs,
    /// A ref sidecar is under its final name.
    Ref,
}

impl Point {
    fn reached(self, cache: &Path, started: Instant) -> bool {
        let blobs = || names(&cache.join("blobs/sha256"));
        let rootfs = || names(&cache.join("rootfs/sha256"));
        match self {
            Point::Spawned => true,
            Point::After(delay) => started.elapsed() >= delay,
            Point::CacheCreated => cache.exists(),
            Point::BlobTemporary => blobs().iter().any(|path| is_temporary(path)),
            Point::BlobTemporaryBytes(bytes) => blobs().iter().any(|path| {
                is_temporary(path) && fs::metadata(path).is_ok_and(|meta| meta.len() >= bytes)
            }),
            Point::Blobs(count) => {
                blobs().iter().filter(|path| !is_temporary(path)).count() >= count
            }
            Point::RootfsTemporary => rootfs().iter().any(|path| is_temporary(path)),
            Point::RootfsTemporaryPaths(count) => rootfs()
                .iter()
                .filter(|path| is_temporary(path))
                .any(|path| walk(path).len() >= count),
            Point::Rootfs => rootfs().iter().any(|path| !is_temporary(path)),
            Point::Ref => walk(&cache.join("refs"))
                .iter()
                .any(|path| path.is_file() && !is_temporary(path)),
        }
    }
}

/// What happened at one kill point.
#[derive(Debug)]
enum Outcome {
    /// Killed when the condition held; how many temporaries it left.
    Killed { temporaries: usize },
    /// The pull finished before the condition was seen.
    Finished,
}

fn spawn_pull(home: &Path, cache: &Path, reference: &str) -> Child {
    tank(home)
        .args(["pull", "--cache"])
        .arg(cache)
        .arg(reference)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tank starts")
}

/// Spawns a pull into `cache` and kills it (SIGKILL) as soon as `point` holds.
fn pull_and_kill(home: &Path, cache: &Path, reference: &str, point: Point) -> bool {
    let started = Instant::now();
    let mut child = spawn_pull(home, cache, reference);
    let deadline = started + Duration::from_secs(60);
    loop {
        if point.reached(cache, started) {
            // Kill first, then look: a pull that exited in between is "finished".
            child.kill().expect("SIGKILL is delivered");
            let status = child.wait().expect("the pull is reaped");
            return !status.success();
        }
        if let Some(status) = child.try_wait().expect("the pull can be waited for") {
            let mut log = String::new();
            if let Some(mut err) = child.stderr.take() {
                use std::io::Read as _;
                let _ = err.read_to_string(&mut log);
            }
            assert!(status.success(), "the pull failed on its own: {log}");
            return false;
        }
        assert!(
            Instant::now() < deadline,
            "{point:?} never held and the pull never ended"
        );
        std::thread::sleep(Duration::from_micros(300));
    }
}

#[test]
fn a_pull_killed_at_any_point_leaves_nothing_partial_and_the_next_pull_repairs() {
    let started = Instant::now();
    let work = tempfile::tempdir().unwrap();
    let registry = Registry::start().expect("docker-registry starts");
    let image = noisy_image("crash", 3, 8 << 20, 300);
    let reference = push_image(&registry, &work.path().join("layout"), image, "crash/big:1");

    // The reference: an uninterrupted pull into its own cache.
    let home = work.path();
    let reference_cache = work.path().join("reference-cache");
    let timer = Instant::now();
    let out = ok(run(tank(home)
        .args(["pull", "--cache"])
        .arg(&reference_cache)
        .arg(&reference)));
    let uninterrupted = timer.elapsed();
    let rootfs_path = PathBuf::from(out.lines().last().expect("the rootfs path"));
    let manifest_hex = rootfs_path.file_name().unwrap().to_owned();
    let expected = snapshot(&rootfs_path);
    let paths = expected.entries.len();
    assert!(paths > 900, "{paths} paths");
    assert!(!expected.entries.contains_key("crash/l0/small/f0000"));
    let blob_count = names(&reference_cache.join("blobs/sha256")).len();

    let mut points = vec![
        Point::Spawned,
        Point::CacheCreated,
        Point::BlobTemporary,
        Point::BlobTemporaryBytes(1 << 20),
        Point::BlobTemporaryBytes(6 << 20),
    ];
    points.extend((1..=blob_count).map(Point::Blobs));
    points.push(Point::RootfsTemporary);
    points.extend(
        [1, paths / 4, paths / 2, paths * 3 / 4, paths]
            .into_iter()
            .map(Point::RootfsTemporaryPaths),
    );
    points.push(Point::Rootfs);
    points.push(Point::Ref);
    let step = uninterrupted / 6;
    points.extend((1..6).map(|part| Point::After(step * part)));

    let setup = started.elapsed();
    let mut removing = Duration::ZERO;
    let mut outcomes: Vec<(Point, Outcome)> = Vec::new();
    for (index, point) in points.iter().enumerate() {
        let timer = Instant::now();
        let cache = work.path().join(format!("cache-{index}"));
        let what = format!("kill point {index} ({point:?})");
        let outcome = if pull_and_kill(home, &cache, &reference, *point) {
            Outcome::Killed {
                temporaries: assert_nothing_partial(&cache, &expected, &what),
            }
        } else {
            Outcome::Finished
        };

        let killed_after = timer.elapsed();
        let output = run(tank(home)
            .args(["pull", "--cache"])
            .arg(&cache)
            .arg(&reference));
        eprintln!(
            "  {what}: {outcome:?} after {killed_after:?}; re-run done at {:?}",
            timer.elapsed()
        );
        let log = stderr(&output);
        let out = ok(output);
        let again = PathBuf::from(out.lines().last().expect("the rootfs path"));
        assert_eq!(again.file_name().unwrap(), manifest_hex, "{what}: {log}");
        let differences = snapshot(&again).differences(&expected, "after the re-run", "reference");
        assert!(
            differences.is_empty(),
            "{what}: the re-run's rootfs differs:\n{}",
            differences.join("\n")
        );
        assert_no_temporaries(&cache, &what);
        assert_nothing_partial(&cache, &expected, &what);
        // Removed as we go: the test holds one point's cache at a time.
        let timer = Instant::now();
        crate::make_writable(&cache);
        fs::remove_dir_all(&cache).unwrap();
        removing += timer.elapsed();
        outcomes.push((*point, outcome));
    }

    let killed = outcomes
        .iter()
        .filter(|(_, outcome)| matches!(outcome, Outcome::Killed { .. }))
        .count();
    let temporaries: usize = outcomes
        .iter()
        .map(|(_, outcome)| match outcome {
            Outcome::Killed { temporaries } => *temporaries,
            Outcome::Finished => 0,
        })
        .sum();
    let mut by_kind: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (point, outcome) in &outcomes {
        let kind = format!("{point:?}");
        let kind = kind.split('(').next().unwrap_or_default().to_owned();
        let counts = by_kind.entry(kind).or_default();
        counts.0 += 1;
        if matches!(outcome, Outcome::Killed { .. }) {
            counts.1 += 1;
        }
    }
    eprintln!(
        "crash: image of {paths} paths, {blob_count} blobs; uninterrupted pull {uninterrupted:?}; \
         {} kill points, {killed} killed mid-pull, {} finished first; {temporaries} temporaries left by the kills, all removed by \
         the re-runs; per kind (points, killed): {by_kind:?}; setup {setup:?}, removing caches \
         {removing:?}, total {:?}",
        outcomes.len(),
        outcomes.len() - killed,
        started.elapsed()
    );
    // Points near the end (and delays past a faster pull) may come too late; the rest are
    // inside the pull, so at least half must have killed a running one.
    assert!(
        killed * 2 >= outcomes.len(),
        "only {killed} of {} points killed a running pull: {outcomes:?}",
        outcomes.len()
    );
}
