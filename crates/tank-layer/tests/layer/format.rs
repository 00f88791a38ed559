//! Compression, media types, diff_id, corrupt streams and limits.

use std::io::Write as _;

use tank_layer::{Compression, Error, ExtractOptions, extract};
use tank_testkit::TarBuilder;

use crate::sha256;

fn sample() -> TarBuilder {
    TarBuilder::new()
        .dir("etc", 0o755)
        .file("etc/hostname", b"tank\n", 0o644)
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).expect("in-memory zstd")
}

#[test]
fn media_types_map_to_compressions() {
    let table = [
        ("application/vnd.oci.image.layer.v1.tar", Compression::None),
        (
            "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Gzip,
        ),
        (
            "application/vnd.oci.image.layer.v1.tar+zstd",
            Compression::Zstd,
        ),
        (
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            Compression::Gzip,
        ),
        (
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            Compression::Gzip,
        ),
    ];
    for (media_type, expected) in table {
        assert_eq!(
            Compression::from_media_type(media_type).unwrap(),
            expected,
            "{media_type}"
        );
    }
    for unknown in [
        "application/json",
        "application/vnd.oci.image.layer.v1.tar+bzip2",
        "",
    ] {
        assert!(matches!(
            Compression::from_media_type(unknown),
            Err(Error::UnsupportedMediaType { .. })
        ));
    }
}

#[test]
fn every_compression_gives_the_same_tree_and_diff_id() {
    let tar = sample().build();
    let expected = sha256(&tar);
    for (compression, bytes) in [
        (Compression::None, tar.clone()),
        (Compression::Gzip, sample().build_gzip()),
        (Compression::Zstd, zstd(&tar)),
    ] {
        let dest = tempfile::tempdir().unwrap();
        let report = extract(
            &bytes[..],
            compression,
            dest.path(),
            &ExtractOptions::default(),
        )
        .unwrap();
        assert_eq!(report.diff_id, expected, "{compression:?}");
        assert_eq!(report.bytes, tar.len() as u64);
        assert_eq!(report.files, 1);
        assert_eq!(report.dirs, 1);
        assert_eq!(
            std::fs::read(dest.path().join("etc/hostname")).unwrap(),
            b"tank\n"
        );
    }
}

#[test]
fn diff_id_covers_padding_after_end_of_archive() {
    // GNU tar pads to a 10 KiB record: the zeros belong to the diff_id.
    let mut tar = sample().build();
    tar.resize(10240, 0);
    let dest = tempfile::tempdir().unwrap();
    let report = extract(
        &tar[..],
        Compression::None,
        dest.path(),
        &ExtractOptions::default(),
    )
    .unwrap();
    assert_eq!(report.diff_id, sha256(&tar));
    assert_eq!(report.bytes, 10240);
}

#[test]
fn magic_bytes_must_agree_with_the_declared_compression() {
    let tar = sample().build();
    let gzip = sample().build_gzip();
    let cases = [
        (&tar, Compression::Gzip),
        (&tar, Compression::Zstd),
        (&gzip, Compression::None),
        (&gzip, Compression::Zstd),
    ];
    for (bytes, declared) in cases {
        let dest = tempfile::tempdir().unwrap();
        let result = extract(
            &bytes[..],
            declared,
            dest.path(),
            &ExtractOptions::default(),
        );
        assert!(
            matches!(result, Err(Error::CompressionMismatch { .. })),
            "{declared:?}: {result:?}"
        );
    }
}

#[test]
fn trailing_garbage_after_end_of_archive_is_an_error() {
    let mut tar = sample().build();
    let end = tar.len();
    tar.extend_from_slice(b"garbage");
    let dest = tempfile::tempdir().unwrap();
    let result = extract(
        &tar[..],
        Compression::None,
        dest.path(),
        &ExtractOptions::default(),
    );
    match result {
        Err(Error::TrailingGarbage { offset }) => assert_eq!(offset, end as u64),
        other => panic!("expected trailing garbage, got {other:?}"),
    }
}

#[test]
fn truncated_streams_are_errors() {
    let tar = sample().build();
    // Cut inside the second entry's content, and inside its header. (A cut between two
    // entries is accepted, as Go's archive/tar does: see end_of_archive.rs.)
    for cut in [512 * 2 + 3, 512 + 100] {
        let dest = tempfile::tempdir().unwrap();
        let result = extract(
            &tar[..cut],
            Compression::None,
            dest.path(),
            &ExtractOptions::default(),
        );
        assert!(
            matches!(result, Err(Error::Stream { .. })),
            "cut at {cut}: {result:?}"
        );
    }
    let gzip = sample().build_gzip();
    let dest = tempfile::tempdir().unwrap();
    let result = extract(
        &gzip[..gzip.len() / 2],
        Compression::Gzip,
        dest.path(),
        &ExtractOptions::default(),
    );
    assert!(matches!(result, Err(Error::Stream { .. })), "{result:?}");
}

#[test]
fn a_bad_header_checksum_names_the_offset() {
    let mut tar = sample().build();
    // Corrupt the second header's name: its checksum no longer matches.
    tar[512] ^= 0x55;
    let dest = tempfile::tempdir().unwrap();
    let result = extract(
        &tar[..],
        Compression::None,
        dest.path(),
        &ExtractOptions::default(),
    );
    match result {
        Err(Error::Stream {
            offset,
            after_entry,
            ..
        }) => {
            assert_eq!(offset, 512);
            assert_eq!(after_entry.as_deref(), Some("etc/"));
        }
        other => panic!("expected a stream error, got {other:?}"),
    }
}

#[test]
fn corrupt_gzip_is_an_error() {
    let mut gzip = sample().build_gzip();
    let middle = gzip.len() / 2;
    gzip[middle] ^= 0xff;
    gzip[middle + 1] ^= 0xff;
    let dest = tempfile::tempdir().unwrap();
    let result = extract(
        &gzip[..],
        Compression::Gzip,
        dest.path(),
        &ExtractOptions::default(),
    );
    assert!(result.is_err(), "{result:?}");
}

#[test]
fn limits_refuse_large_layers() {
    let tar = sample().build();
    let fits = ExtractOptions {
        max_bytes: Some(tar.len() as u64),
        max_entries: Some(2),
        ..ExtractOptions::default()
    };
    let dest = tempfile::tempdir().unwrap();
    extract(&tar[..], Compression::None, dest.path(), &fits).unwrap();

    let too_few_bytes = ExtractOptions {
        max_bytes: Some(tar.len() as u64 - 1),
        ..ExtractOptions::default()
    };
    let dest = tempfile::tempdir().unwrap();
    let result = extract(&tar[..], Compression::None, dest.path(), &too_few_bytes);
    assert!(
        matches!(
            result,
            Err(Error::LimitExceeded {
                limit: "max_bytes",
                ..
            })
        ),
        "{result:?}"
    );

    let too_few_entries = ExtractOptions {
        max_entries: Some(1),
        ..ExtractOptions::default()
    };
    let dest = tempfile::tempdir().unwrap();
    let result = extract(&tar[..], Compression::None, dest.path(), &too_few_entries);
    assert!(
        matches!(
            result,
            Err(Error::LimitExceeded {
                limit: "max_entries",
                max: 1,
                offset: 512
            })
        ),
        "{result:?}"
    );
}

#[test]
fn streaming_reads_in_small_pieces() {
    // A reader that hands out one byte at a time still extracts correctly.
    struct Trickle<'a>(&'a [u8]);
    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.0[0];
            self.0 = &self.0[1..];
            Ok(1)
        }
    }
    let gzip = sample().build_gzip();
    let dest = tempfile::tempdir().unwrap();
    let report = extract(
        Trickle(&gzip),
        Compression::Gzip,
        dest.path(),
        &ExtractOptions::default(),
    )
    .unwrap();
    assert_eq!(report.diff_id, sha256(&sample().build()));
    let mut sink = Vec::new();
    sink.write_all(&std::fs::read(dest.path().join("etc/hostname")).unwrap())
        .unwrap();
    assert_eq!(sink, b"tank\n");
}
