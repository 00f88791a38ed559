//! gc and verify.

use std::io::{Seek, SeekFrom, Write};

use tank_cache::{Error, RefRecord, RootfsGuard};
use tank_reference::Reference;

use crate::{new_cache, sha256};

fn build(cache: &tank_cache::Cache, manifest: &tank_reference::Digest) {
    let RootfsGuard::Build(builder) = cache.build_rootfs(manifest).expect("build") else {
        panic!("nothing was built yet");
    };
    std::fs::write(builder.path().join("file"), "content").expect("write");
    builder.commit().expect("commit");
}

#[test]
fn gc_lists_then_removes_only_what_no_ref_reaches() {
    let (_dir, cache) = new_cache();
    let kept_manifest = b"kept manifest".as_slice();
    let kept_layer = b"kept layer".as_slice();
    let gone_blob = b"unreferenced".as_slice();
    let gone_manifest = b"gone manifest".as_slice();
    for bytes in [kept_manifest, kept_layer, gone_blob, gone_manifest] {
        cache.put_blob_bytes(&sha256(bytes), bytes).expect("put");
    }
    build(&cache, &sha256(kept_manifest));
    build(&cache, &sha256(gone_manifest));
    let reference: Reference = "app:1".parse().expect("reference");
    let record = RefRecord::new(
        sha256(kept_manifest),
        None,
        serde_json::Value::Null,
        vec![sha256(kept_layer)],
    );
    cache
        .write_ref(&reference, "linux/amd64", &record)
        .expect("write");

    let mut unreferenced_blobs = vec![sha256(gone_blob), sha256(gone_manifest)];
    unreferenced_blobs.sort();
    let dry = cache.gc(true).expect("dry run");
    assert!(dry.dry_run);
    assert_eq!(dry.blobs, unreferenced_blobs);
    assert_eq!(dry.rootfs, vec![sha256(gone_manifest)]);
    assert_eq!(
        dry.bytes,
        (gone_blob.len() + gone_manifest.len() + "content".len()) as u64
    );
    assert!(
        cache.blob_path(&sha256(gone_blob)).is_some(),
        "dry run removes nothing"
    );
    assert!(cache.rootfs_path(&sha256(gone_manifest)).is_some());

    let real = cache.gc(false).expect("gc");
    assert!(!real.dry_run);
    assert_eq!(real.blobs, dry.blobs);
    assert_eq!(real.rootfs, dry.rootfs);
    for gone in &unreferenced_blobs {
        assert_eq!(cache.blob_path(gone), None);
    }
    assert_eq!(cache.rootfs_path(&sha256(gone_manifest)), None);
    assert!(cache.blob_path(&sha256(kept_manifest)).is_some());
    assert!(cache.blob_path(&sha256(kept_layer)).is_some());
    assert!(cache.rootfs_path(&sha256(kept_manifest)).is_some());
    assert!(crate::temporaries(&cache.root().join("rootfs/sha256")).is_empty());

    let again = cache.gc(false).expect("gc again");
    assert!(again.blobs.is_empty() && again.rootfs.is_empty());
}

#[test]
fn gc_removes_nothing_when_a_ref_cannot_be_read() {
    let (_dir, cache) = new_cache();
    let blob = b"maybe referenced".as_slice();
    cache.put_blob_bytes(&sha256(blob), blob).expect("put");
    let reference: Reference = "app:1".parse().expect("reference");
    let path = cache
        .write_ref(
            &reference,
            "linux/amd64",
            &RefRecord::new(sha256(blob), None, serde_json::Value::Null, vec![]),
        )
        .expect("write");
    std::fs::write(&path, "{ not json").expect("corrupt");
    let error = cache.gc(false).expect_err("unreadable ref");
    assert!(matches!(error, Error::RefRecord { .. }), "{error:?}");
    assert!(cache.blob_path(&sha256(blob)).is_some());
}

#[test]
fn verify_removes_a_blob_corrupted_in_place() {
    let (_dir, cache) = new_cache();
    let good = b"good bytes".as_slice();
    let bad = b"soon to rot".as_slice();
    cache.put_blob_bytes(&sha256(good), good).expect("put");
    let path = cache.put_blob_bytes(&sha256(bad), bad).expect("put");

    let clean = cache.verify().expect("verify");
    assert_eq!(clean.checked, 2);
    assert!(clean.removed.is_empty());

    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open");
    file.seek(SeekFrom::Start(3)).expect("seek");
    file.write_all(b"X").expect("write");
    drop(file);

    let report = cache.verify().expect("verify");
    assert_eq!(report.checked, 2);
    assert_eq!(report.removed, vec![sha256(bad)]);
    assert_eq!(cache.blob_path(&sha256(bad)), None);
    assert!(cache.blob_path(&sha256(good)).is_some());
}
