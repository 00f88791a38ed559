//! `tank push` and `tank copy` against docker-registry on loopback, with skopeo and umoci as
//! the oracles: what tank pushes, skopeo reads byte for byte and umoci unpacks as tank pulls
//! it; what skopeo pushed, tank copies to another repository, registry or OCI layout with
//! every digest unchanged, every platform of an index, and no upload of a blob the
//! destination has.

use std::fs;
use std::net::TcpListener;
use std::path::Path;

use tank_image::{
    AssembleOptions, LayerEntry, LayerOptions, LayoutItem, assemble, layer_from_entries,
    write_layout,
};
use tank_testkit::{
    CopyOptions, Kind, Registry, fixtures_dir, read_layout_tags, skopeo_copy, skopeo_inspect_raw,
    umoci_unpack,
};

use crate::{
    Request, Scratch, assert_same_tree, fails, host_arch, ok, registry_with, requests, run,
    snapshot, stderr, tank,
};

/// An image of two layers built with tank-image: files, directories, a symlink and a hard
/// link, then a whiteout and a new directory.
fn two_layer_image() -> tank_image::Image {
    let options = LayerOptions {
        mtime: Some(1_700_000_000),
        in_memory: true,
        ..LayerOptions::default()
    };
    let base = layer_from_entries(
        &[
            LayerEntry::dir("bin", 0o755),
            LayerEntry::file("bin/tool", "#!/bin/sh\necho tool\n", 0o755),
            LayerEntry::dir("etc", 0o755),
            LayerEntry::file("etc/hello", "hello\n", 0o644),
            LayerEntry::file("etc/gone", "removed by the next layer\n", 0o644),
            LayerEntry::symlink("etc/link", "hello"),
            LayerEntry::hardlink("etc/hello-again", "etc/hello"),
        ],
        &options,
    )
    .expect("the base layer builds");
    let upper = layer_from_entries(
        &[
            LayerEntry::whiteout("etc/gone"),
            LayerEntry::dir("opt", 0o755),
            LayerEntry::file("opt/new", "added on top\n", 0o600),
        ],
        &options,
    )
    .expect("the upper layer builds");
    let config = serde_json::json!({
        "architecture": host_arch(),
        "os": "linux",
        "config": {"Cmd": ["/bin/tool"]},
    });
    assemble(config, vec![base, upper], &AssembleOptions::default()).expect("the image assembles")
}

/// `tank <args…>` with a scratch home: (stdout of a success, stderr).
fn tank_ok(scratch: &Scratch, args: &[&str]) -> (String, String) {
    let output = run(tank(scratch.home()).args(args));
    let log = stderr(&output);
    (ok(output), log)
}

/// Blob uploads among `requests`: any request on `…/blobs/uploads/…`.
fn uploads(requests: &[Request]) -> Vec<&Request> {
    requests
        .iter()
        .filter(|request| request.path.contains("/blobs/uploads/"))
        .collect()
}

/// The config and layer digests of an image manifest.
fn blob_digests(manifest: &serde_json::Value) -> Vec<String> {
    let mut digests = vec![manifest["config"]["digest"].as_str().unwrap().to_owned()];
    for layer in manifest["layers"].as_array().unwrap() {
        digests.push(layer["digest"].as_str().unwrap().to_owned());
    }
    digests
}

#[test]
fn a_pushed_image_is_read_by_skopeo_and_unpacked_by_umoci_as_tank_pulls_it() {
    let scratch = Scratch::new();
    let registry = Registry::start().expect("docker-registry starts on loopback");
    let work = tempfile::tempdir().unwrap();
    let image = two_layer_image();
    let layout = work.path().join("layout");
    write_layout(&layout, &[(Some("v1"), LayoutItem::from(&image))]).unwrap();
    let reference = format!("{}/pushed/app:v1", registry.host());

    let (out, log) = tank_ok(
        &scratch,
        &["push", &format!("{}:v1", layout.display()), &reference],
    );
    assert_eq!(out.trim(), image.manifest_digest().to_string());
    assert!(log.contains("copied 3 blobs"), "{log}");
    assert!(log.contains("skipped 0"), "{log}");

    // skopeo reads the manifest byte for byte.
    let raw = skopeo_inspect_raw(&format!("docker://{reference}"), None).unwrap();
    assert_eq!(raw, image.manifest_bytes());

    // skopeo copies it (every blob verified) into an OCI layout, digest preserved; umoci
    // unpacks that as tank pulls the reference.
    let copied = work.path().join("skopeo-layout");
    skopeo_copy(
        &format!("docker://{reference}"),
        &format!("oci:{}:v1", copied.display()),
        &CopyOptions {
            preserve_digests: true,
            ..CopyOptions::default()
        },
    )
    .expect("skopeo copies what tank pushed");
    let tags = read_layout_tags(&copied).unwrap();
    assert_eq!(tags.len(), 1);
    assert_eq!(tags[0].digest, image.manifest_digest().to_string());
    let umoci_work = work.path().join("umoci");
    fs::create_dir(&umoci_work).unwrap();
    let unpacked = umoci_unpack(&copied, "v1", &umoci_work).expect("umoci unpacks it");
    let (rootfs, _) = scratch.pull(&[&reference]);
    assert_same_tree(&rootfs, &unpacked, "the pushed image");

    // And the tree is the one the layers describe.
    let tree = snapshot(&unpacked);
    assert!(
        !tree.entries.contains_key("etc/gone"),
        "the whiteout applies"
    );
    let entry = |path: &str| tree.entries.get(path).unwrap_or_else(|| panic!("{path}"));
    assert_eq!(entry("bin/tool").mode, Some(0o755));
    assert_eq!(entry("opt/new").mode, Some(0o600));
    assert_eq!(entry("opt/new").size, Some("added on top\n".len() as u64));
    assert_eq!(entry("etc/link").kind, Kind::Symlink);
    assert_eq!(entry("etc/link").target.as_deref(), Some("hello"));
    assert_eq!(
        tree.hardlinks,
        vec![vec!["etc/hello".to_owned(), "etc/hello-again".to_owned()]]
    );

    // A second push sends no blob; a push by digest puts the same manifest.
    let before = requests(&registry).len();
    let (out, log) = tank_ok(
        &scratch,
        &["push", &format!("oci:{}:v1", layout.display()), &reference],
    );
    assert_eq!(out.trim(), image.manifest_digest().to_string());
    assert!(log.contains("copied 0 blobs"), "{log}");
    assert!(log.contains("skipped 3"), "{log}");
    assert!(uploads(&requests(&registry)[before..]).is_empty());
    let by_digest = format!("{}/pushed/app@{}", registry.host(), image.manifest_digest());
    let (out, _) = tank_ok(
        &scratch,
        &["push", &format!("{}:v1", layout.display()), &by_digest],
    );
    assert_eq!(out.trim(), image.manifest_digest().to_string());
}

#[test]
fn skopeo_pushed_images_and_indexes_copy_to_another_repository_byte_identical() {
    let scratch = Scratch::new();
    let registry = registry_with(&["multi-platform", "docker-v2"]);
    let host = registry.host();
    for (name, tag, n_images) in [
        ("multi-platform", "latest", 2),
        ("docker-v2", "latest", 1),
        ("docker-v2", "list", 2),
    ] {
        let source = format!("{host}/fixtures/{name}:{tag}");
        let destination = format!("{host}/copied/{name}:{tag}");
        let source_raw = skopeo_inspect_raw(&format!("docker://{source}"), None).unwrap();
        let source_digest = tank_testkit::sha256_digest(&source_raw);

        let (out, log) = tank_ok(
            &scratch,
            &["copy", &format!("docker://{source}"), &destination],
        );
        assert_eq!(out.trim(), source_digest, "{name}:{tag}");
        // Within one registry every blob is mounted from the source repository.
        assert!(log.contains("copied 0 blobs"), "{name}:{tag}: {log}");
        assert!(log.contains(", mounted "), "{name}:{tag}: {log}");

        let copied_raw = skopeo_inspect_raw(&format!("docker://{destination}"), None).unwrap();
        assert_eq!(copied_raw, source_raw, "{name}:{tag}: the bytes differ");

        // Every image of an index is there, with its blobs.
        let top: serde_json::Value = serde_json::from_slice(&copied_raw).unwrap();
        let manifests: Vec<serde_json::Value> = match top["manifests"].as_array() {
            Some(entries) => entries
                .iter()
                .map(|entry| {
                    let digest = entry["digest"].as_str().unwrap();
                    let at = format!("docker://{host}/copied/{name}@{digest}");
                    let raw = skopeo_inspect_raw(&at, None).expect("the platform image is there");
                    assert_eq!(tank_testkit::sha256_digest(&raw), digest);
                    serde_json::from_slice(&raw).unwrap()
                })
                .collect(),
            None => vec![top.clone()],
        };
        assert_eq!(manifests.len(), n_images, "{name}:{tag}");
        let mut blobs = std::collections::BTreeSet::new();
        for manifest in &manifests {
            for digest in blob_digests(manifest) {
                let response = registry
                    .get(&format!("/v2/copied/{name}/blobs/{digest}"))
                    .unwrap();
                assert_eq!(response.status(), 200, "{name}:{tag} blob {digest}");
                blobs.insert(digest);
            }
        }

        // A second copy finds every blob there and uploads nothing.
        let before = requests(&registry).len();
        let (out, log) = tank_ok(&scratch, &["copy", &source, &destination]);
        assert_eq!(out.trim(), source_digest);
        assert!(log.contains("copied 0 blobs"), "{log}");
        assert!(!log.contains("mounted"), "{log}");
        let after = requests(&registry);
        let new = &after[before..];
        assert!(uploads(new).is_empty(), "{name}:{tag}: {new:?}");
        assert!(log.contains(&format!("skipped {}", blobs.len())), "{log}");
    }

    // Another registry name (the same server as `localhost`): nothing to mount from, so each
    // blob is downloaded and uploaded, and the index is still byte-identical.
    let source = format!("{host}/fixtures/multi-platform:latest");
    let destination = format!("localhost:{}/elsewhere/multi-platform:1", registry.port());
    let source_raw = skopeo_inspect_raw(&format!("docker://{source}"), None).unwrap();
    let (out, log) = tank_ok(&scratch, &["copy", &source, &destination]);
    assert_eq!(out.trim(), tank_testkit::sha256_digest(&source_raw));
    assert!(log.contains("copied 4 blobs"), "{log}");
    assert!(!log.contains("mounted"), "{log}");
    assert_eq!(
        skopeo_inspect_raw(&format!("docker://{destination}"), None).unwrap(),
        source_raw
    );
}

#[test]
fn copies_into_and_out_of_oci_layouts_keep_the_bytes() {
    let scratch = Scratch::new();
    let registry = registry_with(&["multi-platform"]);
    let host = registry.host();
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("out");
    let source = format!("{host}/fixtures/multi-platform:latest");
    let registry_raw = skopeo_inspect_raw(&format!("docker://{source}"), None).unwrap();
    let digest = tank_testkit::sha256_digest(&registry_raw);

    let (out, log) = tank_ok(
        &scratch,
        &[
            "copy",
            &format!("docker://{source}"),
            &format!("oci:{}:mp", layout.display()),
        ],
    );
    assert_eq!(out.trim(), digest);
    assert!(log.contains("copied 4 blobs"), "{log}");
    // skopeo reads the index (and so the layout) with the registry's bytes, and copies the
    // whole of it, every blob verified.
    let layout_ref = format!("oci:{}:mp", layout.display());
    assert_eq!(skopeo_inspect_raw(&layout_ref, None).unwrap(), registry_raw);
    skopeo_copy(
        &layout_ref,
        &format!("oci:{}:check", work.path().join("skopeo").display()),
        &CopyOptions {
            all: true,
            preserve_digests: true,
            ..CopyOptions::default()
        },
    )
    .expect("skopeo copies the layout tank wrote");

    // Again into the same layout: every blob is there.
    let (_, log) = tank_ok(
        &scratch,
        &["copy", &source, &format!("oci:{}:mp", layout.display())],
    );
    assert!(log.contains("copied 0 blobs"), "{log}");
    assert!(log.contains("skipped 4"), "{log}");

    // From the layout to another one, whose directory name holds a ':' (skopeo's `oci:`
    // cannot name it; tank takes the tag after the last ':'), and from there back to the
    // registry.
    let second = work.path().join("second:dir");
    let second_ref = format!("oci:{}:v2", second.display());
    let (out, log) = tank_ok(&scratch, &["copy", &layout_ref, &second_ref]);
    assert_eq!(out.trim(), digest);
    assert!(log.contains("copied 4 blobs"), "{log}");
    assert!(second.join("index.json").is_file());
    let back = format!("{host}/back/multi-platform:1");
    let (out, log) = tank_ok(&scratch, &["copy", &second_ref, &back]);
    assert_eq!(out.trim(), digest);
    assert!(log.contains("skipped 0"), "{log}");
    assert_eq!(
        skopeo_inspect_raw(&format!("docker://{back}"), None).unwrap(),
        registry_raw
    );
    // The platform images pull from the copy.
    let value = crate::json(&ok(
        scratch.tank("pull", &["--json", "--platform", "linux/arm64", &back])
    ));
    let rootfs = Path::new(value["rootfs"].as_str().unwrap());
    assert_eq!(
        fs::read_to_string(rootfs.join("etc/arch")).unwrap(),
        "arm64\n"
    );
}

#[test]
fn push_and_copy_errors_name_what_is_wrong() {
    let scratch = Scratch::new();
    let work = tempfile::tempdir().unwrap();
    let missing = work.path().join("no-such-layout");
    fails(
        run(tank(scratch.home()).args([
            "push",
            &format!("{}:v1", missing.display()),
            "127.0.0.1:5000/x/y:1",
        ])),
        &[&missing.display().to_string(), "oci-layout"],
    );

    let single = fixtures_dir().join("single");
    fails(
        run(tank(scratch.home()).args([
            "push",
            &format!("{}:nope", single.display()),
            "127.0.0.1:5000/x/y:1",
        ])),
        &["\"nope\"", &single.display().to_string()],
    );

    // A port nothing listens on.
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let unreachable = format!("127.0.0.1:{port}");
    fails(
        run(tank(scratch.home()).args([
            "push",
            &single.display().to_string(),
            &format!("{unreachable}/x/y:1"),
        ])),
        &[&format!("cannot reach registry {unreachable}")],
    );

    fails(
        run(tank(scratch.home()).args(["copy", "oci:", "127.0.0.1:5000/x/y:1"])),
        &["bad source", "\"oci:\""],
    );
    fails(
        run(tank(scratch.home()).args([
            "copy",
            &format!("oci:{}", single.display()),
            "Not/A Reference",
        ])),
        &["bad destination", "Not/A Reference"],
    );

    // A digest the manifest does not have: refused before any blob is sent.
    let registry = Registry::start().expect("docker-registry starts on loopback");
    let zeros = format!("sha256:{}", "0".repeat(64));
    fails(
        run(tank(scratch.home()).args([
            "push",
            &single.display().to_string(),
            &format!("{}/x/y@{zeros}", registry.host()),
        ])),
        &["digest mismatch", &zeros],
    );
    assert!(uploads(&requests(&registry)).is_empty());
}
