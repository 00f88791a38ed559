//! Blobs: verified before they get a final name, concurrent writers, temporaries removed.

use std::io::{Read, Write};

use tank_cache::Error;
use tank_reference::{Algorithm, Digest};

use crate::{new_cache, pattern, sha256, temporaries};

#[test]
fn matching_bytes_are_kept_and_readable() {
    let (_dir, cache) = new_cache();
    let bytes = pattern(200_000);
    let digest = sha256(&bytes);
    assert_eq!(cache.blob_path(&digest), None);
    let mut writer = cache
        .blob_writer(&digest, Some(bytes.len() as u64))
        .expect("writer");
    for chunk in bytes.chunks(7_000) {
        writer.write_all(chunk).expect("write");
    }
    assert_eq!(writer.bytes_written(), bytes.len() as u64);
    let path = writer.commit().expect("commit");
    assert_eq!(path, cache.root().join("blobs/sha256").join(digest.hex()));
    assert_eq!(cache.blob_path(&digest), Some(path.clone()));
    let mut stored = Vec::new();
    cache
        .open_blob(&digest)
        .expect("open")
        .read_to_end(&mut stored)
        .expect("read");
    assert_eq!(stored, bytes);
    assert!(temporaries(&cache.root().join("blobs/sha256")).is_empty());
}

#[test]
fn sha512_blobs_live_under_their_own_algorithm() {
    let (_dir, cache) = new_cache();
    let digest = Digest::of(Algorithm::Sha512, b"five twelve");
    let path = cache.put_blob_bytes(&digest, b"five twelve").expect("put");
    assert_eq!(path, cache.root().join("blobs/sha512").join(digest.hex()));
}

#[test]
fn mismatching_bytes_are_never_kept() {
    let (_dir, cache) = new_cache();
    let digest = sha256(b"the real content");
    let mut writer = cache.blob_writer(&digest, None).expect("writer");
    writer.write_all(b"something else!!").expect("write");
    let error = writer.commit().expect_err("digest mismatch");
    assert!(
        matches!(&error, Error::BlobMismatch { digest: named, .. } if *named == digest),
        "{error:?}"
    );
    assert!(error.to_string().contains(&digest.to_string()), "{error}");
    assert_eq!(cache.blob_path(&digest), None);
    assert!(temporaries(&cache.root().join("blobs/sha256")).is_empty());

    let error = cache
        .put_blob_bytes(&digest, b"wrong")
        .expect_err("digest mismatch");
    assert!(matches!(error, Error::BlobMismatch { .. }), "{error:?}");
    assert_eq!(cache.blob_path(&digest), None);
    cache
        .put_blob_bytes(&digest, b"the real content")
        .expect("the right bytes are accepted");
    assert!(cache.blob_path(&digest).is_some());
}

#[test]
fn size_is_checked_both_ways() {
    let (_dir, cache) = new_cache();
    let bytes = b"0123456789";
    let digest = sha256(bytes);

    let mut writer = cache.blob_writer(&digest, Some(4)).expect("writer");
    assert!(
        writer.write_all(bytes).is_err(),
        "more than the expected size"
    );
    let error = writer.commit().expect_err("too large");
    assert!(
        matches!(
            error,
            Error::BlobTooLarge {
                expected_size: 4,
                ..
            }
        ),
        "{error:?}"
    );

    let mut writer = cache.blob_writer(&digest, Some(11)).expect("writer");
    writer.write_all(bytes).expect("write");
    let error = writer.commit().expect_err("too small");
    assert!(matches!(error, Error::BlobMismatch { .. }), "{error:?}");

    assert_eq!(cache.blob_path(&digest), None);
    assert!(temporaries(&cache.root().join("blobs/sha256")).is_empty());

    let mut writer = cache.blob_writer(&digest, Some(10)).expect("writer");
    writer.write_all(bytes).expect("write");
    writer.commit().expect("exact size");
}

#[test]
fn a_writer_checked_by_its_caller_checks_the_size_and_does_not_hash() {
    let (_dir, cache) = new_cache();
    let bytes = pattern(100_000);
    let digest = sha256(&bytes);
    let blobs = cache.root().join("blobs/sha256");

    let mut writer = cache
        .blob_writer_checked_by_caller(&digest, bytes.len() as u64 + 1)
        .expect("writer");
    writer.write_all(&bytes).expect("write");
    assert_eq!(writer.bytes_written(), bytes.len() as u64);
    let error = writer.commit().expect_err("one byte short");
    assert!(
        matches!(error, Error::BlobSizeMismatch { expected, actual, .. }
            if expected == bytes.len() as u64 + 1 && actual == bytes.len() as u64),
        "{error:?}"
    );

    let mut writer = cache
        .blob_writer_checked_by_caller(&digest, 10)
        .expect("writer");
    assert!(writer.write_all(&bytes).is_err(), "more than the size");
    let error = writer.commit().expect_err("too large");
    assert!(matches!(error, Error::BlobTooLarge { .. }), "{error:?}");
    assert_eq!(cache.blob_path(&digest), None);
    assert!(temporaries(&blobs).is_empty());

    // Dropped before commit (the caller's check failed): nothing is kept.
    let mut writer = cache
        .blob_writer_checked_by_caller(&digest, bytes.len() as u64)
        .expect("writer");
    writer.write_all(&bytes).expect("write");
    drop(writer);
    assert_eq!(cache.blob_path(&digest), None);
    assert!(temporaries(&blobs).is_empty());

    let mut writer = cache
        .blob_writer_checked_by_caller(&digest, bytes.len() as u64)
        .expect("writer");
    for chunk in bytes.chunks(9_000) {
        writer.write_all(chunk).expect("write");
    }
    let path = writer.commit().expect("commit");
    assert_eq!(std::fs::read(path).expect("read"), bytes);
}

#[test]
fn dropping_an_uncommitted_writer_removes_its_temporary() {
    let (_dir, cache) = new_cache();
    let digest = sha256(b"never finished");
    let mut writer = cache.blob_writer(&digest, None).expect("writer");
    writer.write_all(b"never").expect("write");
    writer.flush().expect("flush");
    let blobs = cache.root().join("blobs/sha256");
    assert_eq!(temporaries(&blobs).len(), 1);
    drop(writer);
    assert!(temporaries(&blobs).is_empty());
    assert_eq!(cache.blob_path(&digest), None);
}

#[test]
fn open_blob_of_a_missing_blob_names_it() {
    let (_dir, cache) = new_cache();
    let digest = sha256(b"absent");
    let error = cache.open_blob(&digest).expect_err("not cached");
    assert!(
        matches!(&error, Error::BlobNotCached { digest: named } if *named == digest),
        "{error:?}"
    );
}

#[test]
fn threads_writing_one_blob_leave_one_correct_file() {
    let (_dir, cache) = new_cache();
    let bytes = pattern(300_000);
    let digest = sha256(&bytes);
    let paths: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    let mut writer = cache
                        .blob_writer(&digest, Some(bytes.len() as u64))
                        .expect("writer");
                    for chunk in bytes.chunks(10_000) {
                        writer.write_all(chunk).expect("write");
                    }
                    writer.commit().expect("commit")
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("thread"))
            .collect()
    });
    let blobs = cache.root().join("blobs/sha256");
    assert!(paths.iter().all(|path| *path == blobs.join(digest.hex())));
    assert_eq!(std::fs::read(&paths[0]).expect("read"), bytes);
    assert_eq!(std::fs::read_dir(&blobs).expect("list").count(), 1);
}

#[test]
fn a_live_writers_temporary_survives_cleanup() {
    let (dir, cache) = new_cache();
    let bytes = pattern(50_000);
    let digest = sha256(&bytes);
    let mut writer = cache.blob_writer(&digest, None).expect("writer");
    writer.write_all(&bytes[..20_000]).expect("write");
    writer.flush().expect("flush");
    // Another open (as another process would do) runs cleanup while we write.
    let other = tank_cache::Cache::open(dir.path()).expect("reopen");
    let report = other.cleanup().expect("cleanup");
    assert!(report.removed.is_empty(), "{report:?}");
    assert_eq!(temporaries(&cache.root().join("blobs/sha256")).len(), 1);
    writer.write_all(&bytes[20_000..]).expect("write");
    writer.commit().expect("commit");
    assert_eq!(
        std::fs::read(other.blob_path(&digest).expect("cached")).expect("read"),
        bytes
    );
}

#[test]
fn remove_blob_forgets_it_and_reports_whether_it_was_there() {
    let (_dir, cache) = new_cache();
    let bytes = pattern(1000);
    let digest = sha256(&bytes);
    cache.put_blob_bytes(&digest, &bytes).expect("put");
    assert!(cache.remove_blob(&digest).expect("remove"));
    assert_eq!(cache.blob_path(&digest), None);
    assert!(!cache.remove_blob(&digest).expect("remove again"));
    // It can be stored again afterwards.
    cache.put_blob_bytes(&digest, &bytes).expect("put again");
    assert!(cache.blob_path(&digest).is_some());
}
