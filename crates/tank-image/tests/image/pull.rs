//! `pull` against docker-registry on loopback, with the fixture images pushed by skopeo:
//! online, cached, offline, refresh, platform choice, corrupt cache, inconsistent images
//! and concurrent pullers.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;
use tank_cache::Cache;
use tank_image::{Error, LayerInfo, PullOptions, PullProgress, Puller, pull};
use tank_reference::{Digest, Reference};
use tank_registry::{ClientConfig, CredentialStore};
use tank_testkit::{
    ImageBuilder, OciLayoutBuilder, Platform as FixturePlatform, Registry, TarBuilder,
};

fn options(cache: &Path) -> PullOptions {
    PullOptions {
        cache: Some(cache.to_path_buf()),
        client: ClientConfig {
            credentials: CredentialStore::anonymous(),
            max_retries: 1,
            ..ClientConfig::default()
        },
        platform: Some("linux/amd64".parse().expect("platform")),
        ..PullOptions::default()
    }
}

fn reference(text: &str) -> Reference {
    text.parse().expect("valid reference")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn pushed(registry: &Registry, fixture: &str) -> Reference {
    let references = registry.push_fixture(fixture).expect("push fixture");
    reference(&references[0])
}

/// Makes every directory under `root` writable so a test can modify a cached rootfs.
fn make_writable(root: &Path) {
    for entry in walk(root) {
        if entry.is_dir() && !entry.is_symlink() {
            fs::set_permissions(&entry, fs::Permissions::from_mode(0o755)).expect("chmod");
        }
    }
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.to_path_buf()];
    let mut index = 0;
    while index < out.len() {
        let path = out[index].clone();
        index += 1;
        if path.is_dir() && !path.is_symlink() {
            for entry in fs::read_dir(&path).expect("read_dir") {
                out.push(entry.expect("entry").path());
            }
        }
    }
    out
}

#[test]
fn online_then_cached_then_offline() {
    let registry = Registry::start().expect("registry");
    let image = pushed(&registry, "single");
    let cache_dir = tempfile::tempdir().unwrap();
    let rt = runtime();

    let first = rt
        .block_on(pull(&image, &options(cache_dir.path())))
        .expect("pull");
    assert!(!first.cached);
    assert_eq!(first.layers_downloaded, 1);
    assert!(first.bytes_downloaded > 0);
    assert!(
        first
            .rootfs
            .starts_with(cache_dir.path().join("rootfs/sha256"))
    );
    assert_eq!(
        fs::read_to_string(first.rootfs.join("etc/motd")).unwrap(),
        "Welcome to the tank single fixture.\n"
    );
    assert_eq!(
        fs::read_link(first.rootfs.join("usr/bin/hi")).unwrap(),
        Path::new("hello")
    );
    assert_eq!(first.config["config"]["User"], "tank");
    assert_eq!(first.index_digest, None);
    assert_eq!(first.platform.to_string(), "linux/amd64");

    let second = rt
        .block_on(pull(&image, &options(cache_dir.path())))
        .expect("pull again");
    assert!(second.cached, "the assembled rootfs is reused");
    assert_eq!(second.layers_downloaded, 0);
    assert_eq!(second.rootfs, first.rootfs);
    assert_eq!(second.manifest_digest, first.manifest_digest);

    // With the registry gone, an offline pull is served from the ref sidecar.
    drop(registry);
    let offline = rt
        .block_on(pull(
            &image,
            &PullOptions {
                offline: true,
                ..options(cache_dir.path())
            },
        ))
        .expect("offline pull");
    assert!(offline.cached);
    assert_eq!(offline.rootfs, first.rootfs);
    assert_eq!(offline.manifest_digest, first.manifest_digest);
    assert_eq!(offline.config, first.config);

    // Offline, a removed rootfs is rebuilt from the cached blobs.
    make_writable(&first.rootfs);
    fs::remove_dir_all(&first.rootfs).unwrap();
    let rebuilt = rt
        .block_on(pull(
            &image,
            &PullOptions {
                offline: true,
                ..options(cache_dir.path())
            },
        ))
        .expect("offline rebuild");
    assert!(!rebuilt.cached);
    assert_eq!(rebuilt.rootfs, first.rootfs);
    assert!(rebuilt.rootfs.join("usr/bin/hello").is_file());
}

#[test]
fn offline_without_a_cached_ref_names_the_reference() {
    let cache_dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    // Nothing listens on port 9: an attempt to reach it would fail differently.
    let image = reference("127.0.0.1:9/nothing/here:1.0");
    let error = rt
        .block_on(pull(
            &image,
            &PullOptions {
                offline: true,
                ..options(cache_dir.path())
            },
        ))
        .expect_err("not cached");
    assert!(matches!(error, Error::NotCached { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("127.0.0.1:9/nothing/here:1.0"),
        "{message}"
    );
    assert!(message.contains("linux/amd64"), "{message}");
    assert!(message.contains("without --offline"), "{message}");
}

#[test]
fn offline_and_refresh_together_are_refused() {
    let cache_dir = tempfile::tempdir().unwrap();
    let error = Puller::new(&PullOptions {
        offline: true,
        refresh: true,
        ..options(cache_dir.path())
    })
    .expect_err("conflicting options");
    assert!(matches!(error, Error::OfflineWithRefresh), "{error:?}");
}

#[test]
fn refresh_refetches_every_layer_and_rebuilds() {
    let registry = Registry::start().expect("registry");
    let image = pushed(&registry, "multi-layer");
    let cache_dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let first = rt
        .block_on(pull(&image, &options(cache_dir.path())))
        .expect("pull");
    assert_eq!(first.layers_downloaded, 3);
    // Mark the cached rootfs so the rebuild can be seen.
    make_writable(&first.rootfs);
    fs::write(first.rootfs.join("marker"), "stale").unwrap();

    let refreshed = rt
        .block_on(pull(
            &image,
            &PullOptions {
                refresh: true,
                ..options(cache_dir.path())
            },
        ))
        .expect("refresh");
    assert!(!refreshed.cached);
    assert_eq!(refreshed.layers_downloaded, 3);
    assert_eq!(refreshed.rootfs, first.rootfs);
    assert!(!refreshed.rootfs.join("marker").exists());
    // The multi-layer rules held: whiteout, opaque directory, replaced file, hard link.
    assert!(!refreshed.rootfs.join("etc/removed-later").exists());
    assert!(!refreshed.rootfs.join("cache/old-1").exists());
    assert!(refreshed.rootfs.join("cache/new-1").is_file());
    assert_eq!(
        fs::read_to_string(refreshed.rootfs.join("data/replaced")).unwrap(),
        "version 3\n"
    );
    let cache = Cache::open(cache_dir.path()).unwrap();
    let report = cache.verify().unwrap();
    assert!(report.removed.is_empty(), "{report:?}");
}

#[test]
fn a_corrupt_cached_layer_is_detected_removed_and_refetched() {
    let registry = Registry::start().expect("registry");
    let image = pushed(&registry, "single");
    let cache_dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let first = rt
        .block_on(pull(&image, &options(cache_dir.path())))
        .expect("pull");

    // Corrupt the layer blob (same length) and drop the rootfs so it must be rebuilt.
    let layer = layer_digest(cache_dir.path(), &first.manifest_digest).expect("layer digest");
    let blob = cache_dir.path().join("blobs/sha256").join(layer.hex());
    let mut bytes = fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::set_permissions(&blob, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&blob, &bytes).unwrap();
    make_writable(&first.rootfs);
    fs::remove_dir_all(&first.rootfs).unwrap();

    // Offline, the corruption is reported and the blob removed, never used.
    let error = rt
        .block_on(pull(
            &image,
            &PullOptions {
                offline: true,
                ..options(cache_dir.path())
            },
        ))
        .expect_err("corrupt blob");
    assert!(
        matches!(error, Error::CorruptCachedBlob { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains(&layer.to_string()));
    assert!(!blob.exists(), "the corrupt blob must be removed");
    assert!(
        Cache::open(cache_dir.path())
            .unwrap()
            .rootfs_path(&first.manifest_digest)
            .is_none()
    );

    // Corrupt it again and pull online: detected, refetched, rootfs correct.
    fs::write(&blob, &bytes).unwrap();
    let again = rt
        .block_on(pull(&image, &options(cache_dir.path())))
        .expect("pull");
    assert!(!again.cached);
    assert_eq!(again.layers_downloaded, 1);
    assert_eq!(
        fs::read_to_string(again.rootfs.join("etc/motd")).unwrap(),
        "Welcome to the tank single fixture.\n"
    );
    let report = Cache::open(cache_dir.path()).unwrap().verify().unwrap();
    assert!(report.removed.is_empty(), "{report:?}");
}

/// The first layer digest of a cached manifest.
fn layer_digest(cache: &Path, manifest: &Digest) -> Option<Digest> {
    let raw = fs::read(cache.join("blobs/sha256").join(manifest.hex())).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&raw).ok()?;
    value["layers"][0]["digest"].as_str()?.parse().ok()
}

#[test]
fn the_platform_is_chosen_from_an_index() {
    let registry = Registry::start().expect("registry");
    let image = pushed(&registry, "multi-platform");
    let cache_dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let arm = rt
        .block_on(pull(
            &image,
            &PullOptions {
                platform: Some("linux/arm64".parse().unwrap()),
                ..options(cache_dir.path())
            },
        ))
        .expect("arm64 pull");
    assert_eq!(
        fs::read_to_string(arm.rootfs.join("etc/arch")).unwrap(),
        "arm64\n"
    );
    assert!(arm.index_digest.is_some());
    let amd = rt
        .block_on(pull(&image, &options(cache_dir.path())))
        .expect("amd64 pull");
    assert_eq!(
        fs::read_to_string(amd.rootfs.join("etc/arch")).unwrap(),
        "amd64\n"
    );
    assert_ne!(amd.manifest_digest, arm.manifest_digest);
    assert_eq!(amd.index_digest, arm.index_digest);

    // Each platform has its own ref sidecar: offline pulls keep them apart.
    drop(registry);
    let offline_arm = rt.block_on(pull(
        &image,
        &PullOptions {
            offline: true,
            platform: Some("linux/arm64/v8".parse().unwrap()),
            ..options(cache_dir.path())
        },
    ));
    // The sidecar key is the platform as asked: "linux/arm64" was asked, not ".../v8".
    assert!(
        matches!(offline_arm, Err(Error::NotCached { .. })),
        "{offline_arm:?}"
    );
    let offline_arm = rt
        .block_on(pull(
            &image,
            &PullOptions {
                offline: true,
                platform: Some("linux/arm64".parse().unwrap()),
                ..options(cache_dir.path())
            },
        ))
        .expect("offline arm64");
    assert_eq!(offline_arm.manifest_digest, arm.manifest_digest);
}

#[test]
fn no_matching_platform_lists_what_the_index_offers() {
    let registry = Registry::start().expect("registry");
    let image = pushed(&registry, "multi-platform");
    let cache_dir = tempfile::tempdir().unwrap();
    let error = runtime()
        .block_on(pull(
            &image,
            &PullOptions {
                platform: Some("linux/s390x".parse().unwrap()),
                ..options(cache_dir.path())
            },
        ))
        .expect_err("no s390x image");
    let message = error.to_string();
    assert!(message.contains("linux/s390x"), "{message}");
    assert!(message.contains("linux/amd64"), "{message}");
    assert!(message.contains("linux/arm64"), "{message}");
    assert_eq!(
        fs::read_dir(cache_dir.path().join("refs")).unwrap().count(),
        0
    );
}

/// Pushes a one-layer image whose config declares `diff_ids`.
fn push_lying_image(registry: &Registry, diff_ids: serde_json::Value) -> Reference {
    let layer = TarBuilder::new().file("hello", "hello\n", 0o644);
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/hello"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let layout = tempfile::tempdir().unwrap();
    OciLayoutBuilder::new()
        .image(
            "latest",
            ImageBuilder::new(FixturePlatform::new("linux", "amd64"))
                .layer(&layer)
                .raw_config(config),
        )
        .write(layout.path())
        .expect("write layout");
    reference(
        &registry
            .push_layout(layout.path(), "latest", "lying/image:1")
            .expect("push"),
    )
}

#[test]
fn a_diff_id_mismatch_fails_and_builds_nothing() {
    let registry = Registry::start().expect("registry");
    let wrong = format!("sha256:{}", "ab".repeat(32));
    let image = push_lying_image(&registry, json!([wrong]));
    let cache_dir = tempfile::tempdir().unwrap();
    let error = runtime()
        .block_on(pull(&image, &options(cache_dir.path())))
        .expect_err("diff_id mismatch");
    assert!(
        matches!(error, Error::DiffIdMismatch { index: 0, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains(&wrong), "{error}");
    let cache = Cache::open(cache_dir.path()).unwrap();
    assert!(cache.list_refs().unwrap().is_empty());
    assert_eq!(
        fs::read_dir(cache_dir.path().join("rootfs/sha256"))
            .unwrap()
            .count(),
        0
    );
    // The layer blob itself was verified against its digest, so keeping it is safe.
    assert!(cache.verify().unwrap().removed.is_empty());
}

#[test]
fn a_layer_count_mismatch_fails_before_downloading() {
    let registry = Registry::start().expect("registry");
    let image = push_lying_image(&registry, json!([]));
    let cache_dir = tempfile::tempdir().unwrap();
    let error = runtime()
        .block_on(pull(&image, &options(cache_dir.path())))
        .expect_err("count mismatch");
    assert!(
        matches!(
            error,
            Error::LayerCountMismatch {
                layers: 1,
                diff_ids: 0,
                ..
            }
        ),
        "{error:?}"
    );
}

/// A diff_id that is not a digest (here a number) is refused with the one diff_id parser's
/// error, before any layer is downloaded: nothing lands in the cache.
#[test]
fn a_diff_id_that_is_not_a_digest_is_refused_before_downloading() {
    let registry = Registry::start().expect("registry");
    let image = push_lying_image(&registry, json!([42]));
    let cache_dir = tempfile::tempdir().unwrap();
    let error = runtime()
        .block_on(pull(&image, &options(cache_dir.path())))
        .expect_err("invalid diff_id");
    assert!(
        matches!(error, Error::InvalidDiffId { index: 0, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("42"), "{error}");
    let cache = Cache::open(cache_dir.path()).unwrap();
    assert!(cache.list_refs().unwrap().is_empty());
    let layer_blobs = fs::read_dir(cache_dir.path().join("blobs/sha256"))
        .map(|entries| entries.count())
        .unwrap_or(0);
    // Only the config (read to plan) may be cached; the layer was never requested.
    assert!(layer_blobs <= 1, "{layer_blobs} blobs cached");
}

#[derive(Default)]
struct Recorder {
    layers: AtomicUsize,
    downloaded: AtomicUsize,
    extracted: AtomicUsize,
    bytes: AtomicUsize,
}

impl PullProgress for Recorder {
    fn start(&self, _: &Reference, _: &Digest, layers: &[LayerInfo]) {
        self.layers.store(layers.len(), Ordering::SeqCst);
    }
    fn downloading(&self, _: usize, bytes: u64) {
        self.bytes.fetch_max(bytes as usize, Ordering::SeqCst);
    }
    fn downloaded(&self, _: usize) {
        self.downloaded.fetch_add(1, Ordering::SeqCst);
    }
    fn extracted(&self, _: usize) {
        self.extracted.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn concurrent_pullers_build_one_rootfs_and_report_progress() {
    let registry = Registry::start().expect("registry");
    let image = pushed(&registry, "multi-layer");
    let cache_dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let recorders: Vec<Arc<Recorder>> = (0..4).map(|_| Arc::new(Recorder::default())).collect();
    let results = rt.block_on(async {
        let mut tasks = Vec::new();
        for recorder in &recorders {
            let progress: Arc<dyn PullProgress> = recorder.clone();
            let puller = Puller::new(&PullOptions {
                progress: Some(progress),
                ..options(cache_dir.path())
            })
            .expect("puller");
            let image = image.clone();
            tasks.push(tokio::spawn(async move { puller.pull(&image).await }));
        }
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.expect("task").expect("pull"));
        }
        results
    });
    let builders: Vec<_> = results.iter().filter(|pulled| !pulled.cached).collect();
    assert_eq!(builders.len(), 1, "exactly one puller builds the rootfs");
    assert!(
        results
            .iter()
            .all(|pulled| pulled.rootfs == results[0].rootfs)
    );
    let downloads: usize = results.iter().map(|pulled| pulled.layers_downloaded).sum();
    assert_eq!(downloads, 3, "each layer is downloaded once");
    let builder = recorders
        .iter()
        .find(|recorder| recorder.layers.load(Ordering::SeqCst) == 3)
        .expect("the builder reported its layers");
    assert_eq!(builder.downloaded.load(Ordering::SeqCst), 3);
    assert_eq!(builder.extracted.load(Ordering::SeqCst), 3);
    assert!(builder.bytes.load(Ordering::SeqCst) > 0);
}

/// Layers big enough to arrive in many chunks: the extraction follows each download as it
/// grows, and the result matches the layer byte for byte.
#[test]
fn large_layers_are_extracted_while_they_download() {
    let registry = Registry::start().expect("registry");
    let mut lower = TarBuilder::new().dir("data", 0o755);
    let mut upper = TarBuilder::new().dir("data", 0o755);
    let mut expected = Vec::new();
    for file in 0..64_u32 {
        // Pseudo-random (xorshift), incompressible content: 64 KiB per file, 4 MiB in all.
        let content = tank_testkit::noise(0x9E37_79B9_7F4A_7C15_u64 ^ u64::from(file + 1), 65_536);
        let name = format!("data/file-{file:02}");
        if file % 2 == 0 {
            lower = lower.file(&name, content.clone(), 0o644);
        } else {
            upper = upper.file(&name, content.clone(), 0o644);
        }
        expected.push((name, content));
    }
    upper = upper.whiteout("data/file-00");
    let layout = tempfile::tempdir().unwrap();
    OciLayoutBuilder::new()
        .image(
            "latest",
            ImageBuilder::new(FixturePlatform::new("linux", "amd64"))
                .layer(&lower)
                .layer(&upper),
        )
        .write(layout.path())
        .expect("write layout");
    let image = reference(
        &registry
            .push_layout(layout.path(), "latest", "large/layers:1")
            .expect("push"),
    );
    let cache_dir = tempfile::tempdir().unwrap();
    let pulled = runtime()
        .block_on(pull(
            &image,
            &PullOptions {
                concurrent_downloads: 1,
                ..options(cache_dir.path())
            },
        ))
        .expect("pull");
    assert_eq!(pulled.layers_downloaded, 2);
    assert!(
        pulled.bytes_downloaded > 4_000_000,
        "{}",
        pulled.bytes_downloaded
    );
    for (name, content) in &expected {
        let path = pulled.rootfs.join(name);
        if name == "data/file-00" {
            assert!(!path.exists(), "whited out by the upper layer");
        } else {
            assert!(fs::read(&path).unwrap() == *content, "{name} differs");
        }
    }
    // Both blobs were verified and stored under their names.
    let report = Cache::open(cache_dir.path()).unwrap().verify().unwrap();
    assert!(report.removed.is_empty());
    assert!(
        report.checked >= 4,
        "config, manifest and two layers: {report:?}"
    );
}

/// Pushes a one-image layout whose manifest lists `layers` in order.
fn push_layers(registry: &Registry, layers: &[&TarBuilder], destination: &str) -> Reference {
    let mut builder = ImageBuilder::new(FixturePlatform::new("linux", "amd64"));
    for layer in layers {
        builder = builder.layer(layer);
    }
    let layout = tempfile::tempdir().unwrap();
    OciLayoutBuilder::new()
        .image("latest", builder)
        .write(layout.path())
        .expect("write layout");
    reference(
        &registry
            .push_layout(layout.path(), "latest", destination)
            .expect("push"),
    )
}

/// GET requests for blobs, by path.
fn blob_gets(registry: &Registry) -> Vec<String> {
    registry
        .requests()
        .expect("access log")
        .into_iter()
        .filter(|request| request.method == "GET" && request.path.contains("/blobs/"))
        .map(|request| request.path)
        .collect()
}

#[test]
fn a_layer_listed_many_times_is_downloaded_once() {
    let registry = Registry::start().expect("registry");
    let repeated = TarBuilder::new().file("repeated", "same bytes\n", 0o644);
    let other = TarBuilder::new().file("other", "other\n", 0o644);
    let mut layers = vec![&repeated; 40];
    layers.insert(20, &other);
    let image = push_layers(&registry, &layers, "repeated/layer:1");
    let before = blob_gets(&registry).len();
    let cache_dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    let options = PullOptions {
        progress: Some(recorder.clone()),
        ..options(cache_dir.path())
    };
    let pulled = runtime().block_on(pull(&image, &options)).expect("pull");
    assert_eq!(
        fs::read(pulled.rootfs.join("repeated")).unwrap(),
        b"same bytes\n"
    );
    assert_eq!(fs::read(pulled.rootfs.join("other")).unwrap(), b"other\n");
    let gets = blob_gets(&registry);
    let gets = &gets[before..];
    // The config and two distinct layers: one GET each, not 41.
    assert_eq!(gets.len(), 3, "{gets:#?}");
    let mut distinct = gets.to_vec();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "{gets:#?}");
    assert_eq!(pulled.layers_downloaded, 2);
    assert_eq!(recorder.layers.load(Ordering::SeqCst), 41);
    assert_eq!(recorder.downloaded.load(Ordering::SeqCst), 2);
    assert_eq!(recorder.extracted.load(Ordering::SeqCst), 41);
}

#[test]
fn more_layers_than_max_layers_are_refused_before_any_layer_request() {
    let registry = Registry::start().expect("registry");
    let layers: Vec<TarBuilder> = (0..4)
        .map(|n| TarBuilder::new().file(format!("file{n}"), "x", 0o644))
        .collect();
    let image = push_layers(
        &registry,
        &layers.iter().collect::<Vec<_>>(),
        "many/layers:1",
    );
    let before = blob_gets(&registry).len();
    let cache_dir = tempfile::tempdir().unwrap();
    let options = PullOptions {
        max_layers: 3,
        ..options(cache_dir.path())
    };
    let error = runtime()
        .block_on(pull(&image, &options))
        .expect_err("4 layers over a limit of 3");
    assert!(
        matches!(
            error,
            Error::TooManyLayers {
                layers: 4,
                limit: 3,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("max_layers"), "{error}");
    // Only the config was fetched (to read diff_ids); no layer.
    let gets = blob_gets(&registry);
    assert!(gets.len() - before <= 1, "{:#?}", &gets[before..]);
    // The default allows them.
    runtime()
        .block_on(pull(&image, &options_with_default_limits(cache_dir.path())))
        .expect("pull within the default limit");
}

fn options_with_default_limits(cache: &Path) -> PullOptions {
    PullOptions {
        max_layers: 0,
        ..options(cache)
    }
}

/// The ref sidecar file of the only reference in `cache`.
fn only_sidecar(cache: &Path) -> PathBuf {
    let sidecars: Vec<PathBuf> = walk(&cache.join("refs"))
        .into_iter()
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    assert_eq!(sidecars.len(), 1, "{sidecars:?}");
    sidecars[0].clone()
}

#[test]
fn an_offline_pull_takes_the_config_from_the_verified_blob_not_the_sidecar() {
    let registry = Registry::start().expect("registry");
    let image = pushed(&registry, "single");
    let cache_dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let online = rt
        .block_on(pull(&image, &options(cache_dir.path())))
        .expect("online pull");

    // Someone who can write the sidecar changes the config it carries.
    let sidecar = only_sidecar(cache_dir.path());
    let mut record: serde_json::Value =
        serde_json::from_slice(&fs::read(&sidecar).unwrap()).unwrap();
    record["config"]["config"]["Env"] = json!(["LD_PRELOAD=/tmp/evil.so"]);
    record["config"]["config"]["Cmd"] = json!(["/bin/evil"]);
    fs::write(&sidecar, serde_json::to_vec(&record).unwrap()).unwrap();

    let offline = PullOptions {
        offline: true,
        ..options(cache_dir.path())
    };
    let pulled = rt.block_on(pull(&image, &offline)).expect("offline pull");
    assert_eq!(pulled.config, online.config);
    assert!(!pulled.config.to_string().contains("evil"));

    // A corrupt config blob is not used either: it is removed and reported.
    let config_digest = Cache::open(cache_dir.path())
        .unwrap()
        .read_ref(&image, "linux/amd64")
        .unwrap()
        .expect("ref")
        .blobs[0]
        .clone();
    let config_path = Cache::open(cache_dir.path())
        .unwrap()
        .blob_path(&config_digest)
        .expect("config blob cached");
    fs::write(&config_path, b"{\"config\":{\"Cmd\":[\"/bin/evil\"]}}").unwrap();
    let error = rt
        .block_on(pull(&image, &offline))
        .expect_err("corrupt config blob");
    assert!(matches!(error, Error::BadCachedRecord { .. }), "{error:?}");
    assert!(error.to_string().contains("config"), "{error}");
    assert!(!config_path.exists());
}
