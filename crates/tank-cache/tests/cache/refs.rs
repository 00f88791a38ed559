//! Ref sidecars: round trip, safe paths, tolerance of newer fields, sizes.

use std::path::Component;

use tank_cache::{Error, RefKey, RefRecord, RootfsGuard};
use tank_reference::Reference;

use crate::{new_cache, sha256};

fn reference(text: &str) -> Reference {
    text.parse().expect("valid reference")
}

fn record() -> RefRecord {
    RefRecord::new(
        sha256(b"manifest"),
        Some(sha256(b"index")),
        serde_json::json!({"config": {"Cmd": ["/bin/sh"]}}),
        vec![sha256(b"config"), sha256(b"layer")],
    )
}

#[test]
fn records_round_trip_per_reference_and_platform() {
    let (_dir, cache) = new_cache();
    let alpine = reference("alpine");
    let written = record();
    cache
        .write_ref(&alpine, "linux/amd64", &written)
        .expect("write");
    assert_eq!(
        cache.read_ref(&alpine, "linux/amd64").expect("read"),
        Some(written.clone())
    );
    // No tag means `latest`; another platform or tag is another sidecar.
    assert_eq!(
        cache
            .read_ref(&reference("docker.io/library/alpine:latest"), "linux/amd64")
            .expect("read"),
        Some(written.clone())
    );
    assert_eq!(cache.read_ref(&alpine, "linux/arm64").expect("read"), None);
    assert_eq!(
        cache
            .read_ref(&reference("alpine:3"), "linux/amd64")
            .expect("read"),
        None
    );
    let listed = cache.list_refs().expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, RefKey::new(&alpine, "linux/amd64"));
    assert_eq!(listed[0].key.registry, "docker.io");
    assert_eq!(listed[0].key.repository, "library/alpine");
    assert_eq!(listed[0].key.tag_or_digest, "latest");
    assert_eq!(listed[0].record, written);
}

#[test]
fn rewriting_a_ref_replaces_it() {
    let (_dir, cache) = new_cache();
    let alpine = reference("alpine:3.20");
    cache
        .write_ref(&alpine, "linux/amd64", &record())
        .expect("write");
    let newer = RefRecord::new(
        sha256(b"newer manifest"),
        None,
        serde_json::Value::Null,
        vec![],
    );
    cache
        .write_ref(&alpine, "linux/amd64", &newer)
        .expect("write");
    assert_eq!(
        cache.read_ref(&alpine, "linux/amd64").expect("read"),
        Some(newer)
    );
    assert_eq!(cache.list_refs().expect("list").len(), 1);
}

#[test]
fn registries_and_platforms_map_to_safe_single_components() {
    let (_dir, cache) = new_cache();
    let cases = [
        ("[::1]:5000/team/app:v1", "linux/arm64/v8"),
        (
            "localhost:5000/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "linux/amd64",
        ),
        ("127.0.0.1:5000/a/b/c:Tag_1", "../../escape"),
    ];
    for (text, platform) in cases {
        let parsed = reference(text);
        // One record: two calls to `record()` can straddle a second of `written_at`.
        let written = record();
        let path = cache.write_ref(&parsed, platform, &written).expect("write");
        let relative = path
            .strip_prefix(cache.root().join("refs"))
            .expect("under refs/");
        let components: Vec<_> = relative.components().collect();
        assert_eq!(components.len(), 4, "{}", relative.display());
        for component in components {
            let Component::Normal(name) = component else {
                panic!("{} has a non-plain component", relative.display());
            };
            assert!(
                !name.to_string_lossy().starts_with('.'),
                "{}",
                relative.display()
            );
        }
        assert_eq!(
            cache.read_ref(&parsed, platform).expect("read"),
            Some(written)
        );
    }
    let ipv6 = cache
        .root()
        .join("refs/%5B%3A%3A1%5D%3A5000/team%2Fapp/v1/linux%2Farm64%2Fv8.json");
    assert!(ipv6.is_file(), "{}", ipv6.display());
    let keys: Vec<_> = cache
        .list_refs()
        .expect("list")
        .into_iter()
        .map(|listed| {
            (
                listed.key.registry,
                listed.key.repository,
                listed.key.tag_or_digest,
                listed.key.platform,
            )
        })
        .collect();
    assert!(keys.contains(&(
        "[::1]:5000".into(),
        "team/app".into(),
        "v1".into(),
        "linux/arm64/v8".into()
    )));
    assert!(keys.contains(&(
        "127.0.0.1:5000".into(),
        "a/b/c".into(),
        "Tag_1".into(),
        "../../escape".into()
    )));
    assert_eq!(keys.len(), 3);
}

#[test]
fn newer_and_older_sidecars_are_read_and_corrupt_ones_refused() {
    let (_dir, cache) = new_cache();
    let alpine = reference("alpine");
    let path = cache
        .write_ref(&alpine, "linux/amd64", &record())
        .expect("write");
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    assert_eq!(written["version"], 1);
    assert_eq!(written["manifest_digest"], sha256(b"manifest").to_string());

    // A newer tank's sidecar: a higher version and fields this tank does not know.
    let manifest = sha256(b"manifest");
    let newer = serde_json::json!({
        "version": 7,
        "manifest_digest": manifest.to_string(),
        "config": {"os": "linux"},
        "annotations": {"future": true},
        "written_at": 5,
    });
    std::fs::write(&path, serde_json::to_vec(&newer).expect("json")).expect("write");
    let read = cache
        .read_ref(&alpine, "linux/amd64")
        .expect("read")
        .expect("present");
    assert_eq!(read.manifest_digest, manifest);
    assert_eq!(read.index_digest, None);
    assert!(read.blobs.is_empty());
    assert_eq!(read.config, serde_json::json!({"os": "linux"}));

    std::fs::write(&path, b"{\"version\": 1, \"manifest_digest\": ").expect("write");
    let error = cache.read_ref(&alpine, "linux/amd64").expect_err("corrupt");
    assert!(matches!(error, Error::RefRecord { .. }), "{error:?}");
    std::fs::write(&path, b"{\"manifest_digest\": \"md5:abc\"}").expect("write");
    let error = cache
        .read_ref(&alpine, "linux/amd64")
        .expect_err("bad digest");
    assert!(matches!(error, Error::RefRecord { .. }), "{error:?}");
}

#[test]
fn listing_reports_blob_and_rootfs_sizes() {
    let (_dir, cache) = new_cache();
    let config = b"{}".to_vec();
    let layer = vec![7u8; 1000];
    let manifest = b"{\"layers\":[]}".to_vec();
    for bytes in [&config, &layer, &manifest] {
        cache.put_blob_bytes(&sha256(bytes), bytes).expect("put");
    }
    let RootfsGuard::Build(builder) = cache.build_rootfs(&sha256(&manifest)).expect("build") else {
        panic!("nothing was built yet");
    };
    std::fs::write(builder.path().join("a"), vec![1u8; 300]).expect("write");
    std::fs::write(builder.path().join("b"), vec![1u8; 20]).expect("write");
    std::fs::hard_link(builder.path().join("a"), builder.path().join("a-link")).expect("link");
    builder.commit().expect("commit");
    let record = RefRecord::new(
        sha256(&manifest),
        None,
        serde_json::Value::Null,
        // The config twice and a blob that is not cached: counted once and not at all.
        vec![
            sha256(&config),
            sha256(&layer),
            sha256(&config),
            sha256(b"missing"),
        ],
    );
    cache
        .write_ref(&reference("app:1"), "linux/amd64", &record)
        .expect("write");
    let listed = cache.list_refs().expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].blob_bytes,
        (config.len() + layer.len() + manifest.len()) as u64
    );
    assert_eq!(listed[0].rootfs_bytes, 320);
}
