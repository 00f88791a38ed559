//! `tank pull` against docker-registry on loopback: rootfs equal to `umoci unpack`'s, what
//! is (not) downloaded again, moved tags, refresh, corrupt cached blobs, concurrent pulls,
//! and the one-line errors.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use tank_testkit::{
    Compression, ImageBuilder, Platform, Registry, TarBuilder, fixtures_dir, noise, umoci_unpack,
};

use crate::{
    Scratch, assert_same_tree, blob_gets, fails, flip_byte, json, layout_layer_digests,
    make_writable, ok, push_image, read_blob_json, registry_with, requests, snapshot, stderr, tank,
};

/// A copy of the layout `layout` in `dir` with one more tag, `tag`, naming the image of
/// `architecture` in the index tagged `latest`: umoci 0.4.7 unpacks only image manifests.
fn tag_platform_image(layout: &Path, architecture: &str, dir: &Path, tag: &str) -> PathBuf {
    let copy = dir.join("layout");
    let status = Command::new("cp")
        .arg("-a")
        .arg(layout)
        .arg(&copy)
        .status()
        .expect("cp runs");
    assert!(status.success());
    let index_path = copy.join("index.json");
    let mut top: serde_json::Value =
        serde_json::from_slice(&fs::read(&index_path).unwrap()).unwrap();
    let latest = top["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|descriptor| {
            descriptor["annotations"]["org.opencontainers.image.ref.name"] == "latest"
        })
        .expect("a latest tag")
        .clone();
    let index = read_blob_json(&copy, latest["digest"].as_str().unwrap());
    let mut image = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|descriptor| descriptor["platform"]["architecture"] == architecture)
        .unwrap_or_else(|| panic!("the index has no {architecture} image"))
        .clone();
    image["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": tag});
    top["manifests"].as_array_mut().unwrap().push(image);
    fs::write(&index_path, serde_json::to_vec(&top).unwrap()).unwrap();
    copy
}

#[test]
fn pulled_fixtures_equal_umoci_unpack() {
    let scratch = Scratch::new();
    let registry = registry_with(&["single", "multi-layer", "multi-platform"]);
    for name in ["single", "multi-layer"] {
        let reference = format!("{}/fixtures/{name}:latest", registry.host());
        let (rootfs, _) = scratch.pull(&[&reference]);
        let work = tempfile::tempdir().unwrap();
        let expected = umoci_unpack(&fixtures_dir().join(name), "latest", work.path())
            .expect("umoci unpacks the fixture");
        assert_same_tree(&rootfs, &expected, name);
    }
    // The multi-layer fixture exercises whiteouts, an opaque directory and hard links.
    let reference = format!("{}/fixtures/multi-layer:latest", registry.host());
    let (rootfs, _) = scratch.pull(&["--offline", &reference]);
    let tree = snapshot(&rootfs);
    assert!(!tree.entries.contains_key("etc/removed-later"));
    assert!(!tree.entries.contains_key("cache/old-1"));
    assert!(tree.entries.contains_key("cache/new-1"));
    assert_eq!(
        tree.hardlinks,
        vec![vec!["data/keep".to_owned(), "data/keep-link".to_owned()]]
    );

    let reference = format!("{}/fixtures/multi-platform:latest", registry.host());
    let mut rootfs_by_arch = Vec::new();
    for architecture in ["amd64", "arm64"] {
        let value = json(&ok(scratch.tank(
            "pull",
            &[
                "--json",
                "--platform",
                &format!("linux/{architecture}"),
                &reference,
            ],
        )));
        assert!(
            value["platform"]
                .as_str()
                .unwrap()
                .starts_with(&format!("linux/{architecture}")),
            "{value}"
        );
        let rootfs = PathBuf::from(value["rootfs"].as_str().unwrap());
        assert_eq!(
            fs::read_to_string(rootfs.join("etc/arch")).unwrap(),
            format!("{architecture}\n")
        );
        let work = tempfile::tempdir().unwrap();
        let layout = tag_platform_image(
            &fixtures_dir().join("multi-platform"),
            architecture,
            work.path(),
            architecture,
        );
        let umoci_work = work.path().join("umoci");
        fs::create_dir(&umoci_work).unwrap();
        let expected = umoci_unpack(&layout, architecture, &umoci_work)
            .expect("umoci unpacks the platform image");
        assert_same_tree(
            &rootfs,
            &expected,
            &format!("multi-platform {architecture}"),
        );
        rootfs_by_arch.push(rootfs);
    }
    assert_ne!(rootfs_by_arch[0], rootfs_by_arch[1]);
}

/// The multi-layer fixture's layer digests.
fn multi_layer_digests() -> Vec<String> {
    let digests = layout_layer_digests(&fixtures_dir().join("multi-layer"), "latest");
    assert_eq!(digests.len(), 3);
    digests
}

#[test]
fn a_second_pull_downloads_no_layer_and_offline_makes_no_request() {
    let scratch = Scratch::new();
    let registry = registry_with(&["multi-layer"]);
    let reference = format!("{}/fixtures/multi-layer:latest", registry.host());
    let repository = "fixtures/multi-layer";
    let layers = multi_layer_digests();

    let before = requests(&registry);
    let (rootfs, log) = scratch.pull(&[&reference]);
    assert!(log.contains("pulling "), "{log}");
    for (index, _) in layers.iter().enumerate() {
        assert!(
            log.contains(&format!("downloaded layer {}/3", index + 1)),
            "{log}"
        );
        assert!(
            log.contains(&format!("extracted layer {}/3", index + 1)),
            "{log}"
        );
    }
    let first = requests(&registry);
    for layer in &layers {
        assert_eq!(blob_gets(&first, repository, layer), 1, "{layer}");
        assert_eq!(blob_gets(&before, repository, layer), 0, "{layer}");
    }

    let (again, log) = scratch.pull(&[&reference]);
    assert_eq!(again, rootfs);
    assert!(log.contains("using cached "), "{log}");
    assert!(!log.contains("pulling "), "{log}");
    assert!(!log.contains("downloaded layer"), "{log}");
    let second = requests(&registry);
    for layer in &layers {
        assert_eq!(blob_gets(&second, repository, layer), 1, "{layer} again");
    }
    // Tags move: an online pull always asks for the manifest.
    let manifest_gets = |requests: &[crate::Request]| {
        requests
            .iter()
            .filter(|request| request.path.contains("/manifests/"))
            .count()
    };
    assert!(manifest_gets(&second) > manifest_gets(&first));
    // And nothing else: the config comes from the cache too.
    let blob_requests = |requests: &[crate::Request]| {
        requests
            .iter()
            .filter(|request| request.path.contains("/blobs/"))
            .count()
    };
    assert_eq!(blob_requests(&second), blob_requests(&first));

    let (offline, log) = scratch.pull(&["--offline", &reference]);
    assert_eq!(offline, rootfs);
    assert!(log.contains("using cached "), "{log}");
    assert_eq!(requests(&registry), second, "an offline pull made requests");
}

/// An image with one layer holding `app/version` = `version`.
fn versioned_image(version: &str) -> ImageBuilder {
    let layer =
        TarBuilder::new()
            .dir("app", 0o755)
            .file("app/version", format!("{version}\n"), 0o644);
    ImageBuilder::new(Platform::new("linux", crate::host_arch()))
        .layer(&layer)
        .cmd(&["/app/run"])
}

#[test]
fn a_moved_tag_pulls_the_new_image() {
    let scratch = Scratch::new();
    let registry = Registry::start().expect("docker-registry starts");
    let work = tempfile::tempdir().unwrap();
    let reference = push_image(
        &registry,
        &work.path().join("a"),
        versioned_image("A"),
        "moved/app:stable",
    );
    let (first, _) = scratch.pull(&[&reference]);
    assert_eq!(
        fs::read_to_string(first.join("app/version")).unwrap(),
        "A\n"
    );

    let moved = push_image(
        &registry,
        &work.path().join("b"),
        versioned_image("B"),
        "moved/app:stable",
    );
    assert_eq!(moved, reference);
    let (second, log) = scratch.pull(&[&reference]);
    assert_ne!(second, first);
    assert!(log.contains("pulling "), "{log}");
    assert_eq!(
        fs::read_to_string(second.join("app/version")).unwrap(),
        "B\n"
    );
    // Offline, the tag now means what the last online pull saw.
    let (offline, _) = scratch.pull(&["--offline", &reference]);
    assert_eq!(offline, second);
}

#[test]
fn refresh_fetches_every_layer_again_and_gives_the_same_rootfs() {
    let scratch = Scratch::new();
    let registry = registry_with(&["multi-layer"]);
    let reference = format!("{}/fixtures/multi-layer:latest", registry.host());
    let layers = multi_layer_digests();

    let (rootfs, _) = scratch.pull(&[&reference]);
    let tree = snapshot(&rootfs);
    let (refreshed, log) = scratch.pull(&["--refresh", &reference]);
    assert!(log.contains("pulling "), "{log}");
    assert!(log.contains("downloaded layer 3/3"), "{log}");
    let after = requests(&registry);
    for layer in &layers {
        assert_eq!(
            blob_gets(&after, "fixtures/multi-layer", layer),
            2,
            "{layer}"
        );
    }
    assert_eq!(refreshed, rootfs);
    assert_eq!(snapshot(&refreshed), tree);
}

#[test]
fn a_corrupt_cached_layer_is_detected_and_fetched_again() {
    let scratch = Scratch::new();
    let registry = registry_with(&["multi-layer"]);
    let reference = format!("{}/fixtures/multi-layer:latest", registry.host());
    let layers = multi_layer_digests();

    let (rootfs, _) = scratch.pull(&[&reference]);
    let tree = snapshot(&rootfs);
    let corrupted = &layers[1];
    let blob = scratch
        .cache()
        .join("blobs/sha256")
        .join(&corrupted["sha256:".len()..]);
    flip_byte(&blob);
    make_writable(&rootfs);
    fs::remove_dir_all(&rootfs).unwrap();

    let (again, log) = scratch.pull(&[&reference]);
    assert!(log.contains(corrupted.as_str()), "{log}");
    assert!(log.contains("corrupt"), "{log}");
    let after = requests(&registry);
    assert_eq!(blob_gets(&after, "fixtures/multi-layer", corrupted), 2);
    assert_eq!(blob_gets(&after, "fixtures/multi-layer", &layers[0]), 1);
    assert_eq!(again, rootfs);
    assert_eq!(snapshot(&again), tree);

    let verified = ok(scratch.tank("cache", &["verify"]));
    assert!(verified.contains(" 0 corrupt"), "{verified}");
}

#[test]
fn concurrent_pulls_download_each_layer_once() {
    let scratch = Scratch::new();
    let registry = registry_with(&["multi-layer"]);
    let reference = format!("{}/fixtures/multi-layer:latest", registry.host());
    let layers = multi_layer_digests();

    let spawn = || {
        tank(scratch.home())
            .args(["pull", "--cache"])
            .arg(scratch.cache())
            .arg(&reference)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("tank starts")
    };
    let (first, second) = (spawn(), spawn());
    let outputs = [
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    ];
    let logs: Vec<String> = outputs.iter().map(stderr).collect();
    let paths: Vec<String> = outputs.into_iter().map(ok).collect();
    assert_eq!(paths[0], paths[1]);
    assert!(Path::new(paths[0].trim()).join("etc/os-release").is_file());
    let pulling = logs.iter().filter(|log| log.contains("pulling ")).count();
    assert_eq!(pulling, 1, "{logs:#?}");
    let after = requests(&registry);
    for layer in &layers {
        assert_eq!(
            blob_gets(&after, "fixtures/multi-layer", layer),
            1,
            "{layer}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Errors: exit status 1 and one line naming what is wrong.
// ---------------------------------------------------------------------------------------------

#[test]
fn unreachable_registry_is_named() {
    let scratch = Scratch::new();
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let host = format!("127.0.0.1:{port}");
    fails(
        scratch.tank("pull", &[&format!("{host}/some/image:1")]),
        &[&host],
    );
}

#[test]
fn auth_failure_names_the_registry() {
    let scratch = Scratch::new();
    let registry = Registry::builder()
        .htpasswd("tank-user", "secret")
        .start()
        .expect("docker-registry with htpasswd starts");
    registry.push_fixture("single").expect("skopeo pushes");
    let reference = format!("{}/fixtures/single:latest", registry.host());
    fails(
        scratch.tank("pull", &[&reference]),
        &[
            &format!("{}/fixtures/single", registry.host()),
            "unauthorized",
        ],
    );
}

#[test]
fn unknown_tag_no_platform_and_not_cached_are_named() {
    let scratch = Scratch::new();
    let registry = registry_with(&["single", "multi-platform"]);
    let missing = format!("{}/fixtures/single:no-such-tag", registry.host());
    fails(scratch.tank("pull", &[&missing]), &["no-such-tag"]);

    let index = format!("{}/fixtures/multi-platform:latest", registry.host());
    fails(
        scratch.tank("pull", &["--platform", "linux/s390x", &index]),
        &["linux/s390x", "linux/amd64", "linux/arm64"],
    );

    let single = format!("{}/fixtures/single:latest", registry.host());
    fails(
        scratch.tank("pull", &["--offline", &single]),
        &["fixtures/single", "without --offline"],
    );

    // Refresh and offline contradict each other: a usage error, before anything happens.
    let fresh = Scratch::new();
    let both = fresh.tank("pull", &["--offline", "--refresh", &single]);
    assert_eq!(both.status.code(), Some(2), "{}", stderr(&both));
    let message = stderr(&both);
    assert!(
        message.contains("--offline") && message.contains("--refresh"),
        "{message}"
    );
    assert!(both.stdout.is_empty());
    assert!(!fresh.cache().exists());
}

#[test]
fn a_blob_that_does_not_match_its_digest_is_refused_and_not_kept() {
    let scratch = Scratch::new();
    let registry = registry_with(&["single"]);
    let reference = format!("{}/fixtures/single:latest", registry.host());
    let layer = layout_layer_digests(&fixtures_dir().join("single"), "latest")
        .pop()
        .unwrap();
    let hex = &layer["sha256:".len()..];
    let stored = registry
        .storage_dir()
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data");
    flip_byte(&stored);

    fails(scratch.tank("pull", &[&reference]), &[&layer]);
    assert!(!scratch.cache().join("blobs/sha256").join(hex).exists());
    let rootfs_dir = scratch.cache().join("rootfs");
    let built: Vec<PathBuf> = walk(&rootfs_dir)
        .into_iter()
        .filter(|path| path.is_dir() && path.parent() != Some(rootfs_dir.as_path()))
        .collect();
    assert!(built.is_empty(), "rootfs left behind: {built:?}");
    let sidecars: Vec<PathBuf> = walk(&scratch.cache().join("refs"))
        .into_iter()
        .filter(|path| !path.is_dir())
        .collect();
    assert!(sidecars.is_empty(), "{sidecars:?}");
    assert_only_verified_blobs(&scratch.cache());
}

/// Every file below `<cache>/blobs` is a blob named by the digest of its content: no
/// partial or unverified download was left behind.
fn assert_only_verified_blobs(cache: &Path) {
    for path in walk(&cache.join("blobs")) {
        if path.is_dir() {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let content = fs::read(&path).unwrap();
        assert_eq!(
            tank_testkit::sha256_hex(&content),
            name,
            "{} is not a verified blob",
            path.display()
        );
    }
}

/// Every path below `dir` (none when it does not exist).
pub(crate) fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() && !path.is_symlink() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(path).unwrap();
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tank-test"])
            .arg(path)
            .output()
            .expect("mount runs");
        assert!(
            output.status.success(),
            "this test mounts a {size} tmpfs to fill a disk and needs root \
             (CAP_SYS_ADMIN): mount failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Tmpfs {
            path: path.to_path_buf(),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

#[test]
fn a_full_disk_is_one_error_line() {
    let work = tempfile::tempdir().unwrap();
    let registry = Registry::start().expect("docker-registry starts");
    let layer = TarBuilder::new().dir("data", 0o755).file(
        "data/noise",
        noise(0x9e37_79b9_7f4a_7c15, 2 * 1024 * 1024),
        0o644,
    );
    let image = ImageBuilder::new(Platform::new("linux", crate::host_arch()))
        .layer_tar(layer.build(), Compression::Gzip)
        .cmd(&["/bin/true"]);
    let reference = push_image(&registry, &work.path().join("layout"), image, "big/noise:1");

    let cache = work.path().join("small-disk");
    let _tmpfs = Tmpfs::mount(&cache, "1m");
    let output = crate::run(
        tank(work.path())
            .args(["pull", "--cache"])
            .arg(&cache)
            .arg(&reference),
    );
    fails(output, &["No space left on device"]);
    assert_only_verified_blobs(&cache);
}
