//! Metadata records (GNU `L`/`K`, PAX `x`/`g`) are capped at MAX_METADATA_RECORD and a
//! record declaring more is refused from its header alone, before anything is allocated;
//! PAX record counts and key sizes are bounded; names in errors are escaped.

use std::time::{Duration, Instant};

use tank_layer::{Compression, Error, ExtractOptions, MAX_METADATA_RECORD, extract};
use tank_testkit::{RawHeader, TarBuilder, end_of_archive, padded, pax_header, pax_record};

const EIGHT_GIB: u64 = 8 << 30;

fn run(layer: &[u8]) -> Result<tank_layer::LayerReport, Error> {
    let dest = tempfile::tempdir().unwrap();
    extract(
        layer,
        Compression::None,
        dest.path(),
        &ExtractOptions::default(),
    )
}

/// One ordinary entry (header + data: 1024 bytes), then `record`'s header claiming
/// `size` bytes and only a few of them.
fn huge_record(typeflag: u8, size: u64) -> Vec<u8> {
    let mut layer = TarBuilder::new().file("first", b"1", 0o644).build();
    layer.truncate(1024);
    let mut header = RawHeader::new("././@LongLink", typeflag, size);
    header.base256_size = size >= 1 << 33;
    layer.extend_from_slice(&header.block());
    layer.extend_from_slice(&[b'a'; 700]);
    layer
}

#[test]
fn huge_metadata_records_are_refused_from_their_header() {
    let cases = [
        (b'L', "GNU long name (L)"),
        (b'K', "GNU long link (K)"),
        (b'x', "PAX extended header (x)"),
        (b'g', "PAX global header (g)"),
    ];
    for (typeflag, kind) in cases {
        let started = Instant::now();
        let error = run(&huge_record(typeflag, EIGHT_GIB)).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{kind}: refused fast"
        );
        match &error {
            Error::RecordTooLarge {
                kind: found,
                offset,
                size,
                max,
            } => {
                assert_eq!(*found, kind);
                assert_eq!(*offset, 1024);
                assert_eq!(*size, EIGHT_GIB);
                assert_eq!(*max, MAX_METADATA_RECORD);
            }
            other => panic!("{kind}: {other:?}"),
        }
        assert_eq!(
            error.to_string(),
            format!("{kind} record at offset 1024 is 8589934592 bytes, over the 1 MiB limit")
        );
    }
}

#[test]
fn the_limit_is_one_mib_and_a_record_of_exactly_that_size_is_read() {
    assert_eq!(MAX_METADATA_RECORD, 1 << 20);
    // A PAX header of exactly 1 MiB (one long comment record) followed by a file.
    let filler = 1 << 20;
    let comment = pax_record("comment", vec![b'c'; filler - 17]);
    assert_eq!(comment.len(), filler);
    let mut layer = pax_header(std::slice::from_ref(&comment));
    layer.extend_from_slice(&RawHeader::file("after", 2).block());
    layer.extend_from_slice(&padded(b"ok"));
    layer.extend_from_slice(&end_of_archive());
    let report = run(&layer).unwrap();
    assert_eq!(report.files, 1);

    // One byte more is refused.
    let mut over = comment;
    over.insert(10, b'c');
    let mut layer = pax_header(&[over]);
    layer.extend_from_slice(&end_of_archive());
    let error = run(&layer).unwrap_err();
    assert!(
        matches!(error, Error::RecordTooLarge { size, offset: 0, .. } if size == (1 << 20) + 1),
        "{error:?}"
    );
}

#[test]
fn a_huge_long_name_does_not_make_real_files_go_missing() {
    // Before: a huge PAX header was swallowed and the pull "succeeded" without the
    // layer's files. Now a layer that is refused is refused as a whole.
    let mut layer = huge_record(b'x', 1 << 30);
    layer.extend_from_slice(&end_of_archive());
    assert!(matches!(run(&layer), Err(Error::RecordTooLarge { .. })));
}

#[test]
fn pax_record_counts_and_key_sizes_are_bounded() {
    let many: Vec<Vec<u8>> = (0..tank_layer::MAX_PAX_RECORDS + 1)
        .map(|_| b"6 a=b\n".to_vec())
        .collect();
    let mut layer = pax_header(&many);
    layer.extend_from_slice(&RawHeader::file("f", 0).block());
    layer.extend_from_slice(&end_of_archive());
    let error = run(&layer).unwrap_err();
    assert!(
        matches!(
            error,
            Error::LimitExceeded {
                limit: "MAX_PAX_RECORDS",
                offset: 0,
                ..
            }
        ),
        "{error:?}"
    );

    let long_key = "k".repeat(tank_layer::MAX_PAX_KEY + 1);
    let mut layer = pax_header(&[pax_record(&long_key, "v")]);
    layer.extend_from_slice(&RawHeader::file("f", 0).block());
    layer.extend_from_slice(&end_of_archive());
    let error = run(&layer).unwrap_err();
    assert!(
        matches!(
            error,
            Error::LimitExceeded {
                limit: "MAX_PAX_KEY",
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn malformed_pax_records_are_stream_errors_naming_the_record() {
    for records in [
        &b"99 path=x\n"[..],
        b"x path=y\n",
        b"7 path\n",
        b"8 =value\n",
    ] {
        let mut layer = pax_header(&[records.to_vec()]);
        layer.extend_from_slice(&RawHeader::file("f", 0).block());
        layer.extend_from_slice(&end_of_archive());
        match run(&layer) {
            Err(Error::Stream { offset, source, .. }) => {
                assert_eq!(offset, 0);
                assert!(source.to_string().contains("PAX record 1"), "{source}");
            }
            other => panic!("{records:?}: {other:?}"),
        }
    }
}

#[test]
fn control_characters_in_names_are_escaped_in_errors() {
    // A hard link to a missing target, both names full of terminal escapes.
    let mut header = RawHeader::new(b"\x1b[31mred\x07\xff", b'1', 0);
    header.link = b"\x1b]0;title\x07".to_vec();
    let mut layer = header.block().to_vec();
    layer.extend_from_slice(&end_of_archive());
    let error = run(&layer).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, Error::InvalidHardlink { .. }), "{error:?}");
    assert!(!message.chars().any(char::is_control), "{message:?}");
    assert_eq!(
        message,
        r#"hard link "\x1b[31mred\x07\xff" at tar offset 0 has an invalid target "\x1b]0;title\x07""#
    );
    assert_eq!(
        tank_layer::printable(b"a\\b\"c\n\x7f\xc3\xa9"),
        r#"a\\b\"c\n\x7fé"#
    );
}
