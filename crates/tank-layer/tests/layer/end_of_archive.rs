//! A stream that ends cleanly between entries without the end-of-archive marker (or with
//! only part of it) is accepted and reported, as Go's archive/tar accepts it; a stream cut
//! inside a header or inside an entry's data stays an error.

use tank_layer::{Compression, Error, ExtractOptions, LayerReport, extract};
use tank_testkit::TarBuilder;

use crate::sha256;

fn run(bytes: &[u8]) -> Result<LayerReport, Error> {
    let dest = tempfile::tempdir().unwrap();
    let report = extract(
        bytes,
        Compression::None,
        dest.path(),
        &ExtractOptions::default(),
    )?;
    assert_eq!(std::fs::read(dest.path().join("b")).unwrap(), b"bee");
    Ok(report)
}

fn sample() -> Vec<u8> {
    TarBuilder::new()
        .file("a", b"a", 0o644)
        .file("b", b"bee", 0o644)
        .build()
}

#[test]
fn missing_end_of_archive_is_accepted_and_reported() {
    let tar = sample();
    let entries_end = tar.len() - 1024;
    // No zero block, one zero block, one and a half.
    for (cut, missing) in [
        (entries_end, true),
        (entries_end + 512, true),
        (entries_end + 768, true),
        (tar.len(), false),
    ] {
        let report = run(&tar[..cut]).unwrap_or_else(|error| panic!("cut at {cut}: {error}"));
        assert_eq!(report.end_of_archive_missing, missing, "cut at {cut}");
        assert_eq!(report.files, 2);
        assert_eq!(report.bytes, cut as u64);
        assert_eq!(report.diff_id, sha256(&tar[..cut]));
    }
    // The same through gzip.
    let gzip = tank_testkit::gzip(&tar[..entries_end]);
    let dest = tempfile::tempdir().unwrap();
    let report = extract(
        &gzip[..],
        Compression::Gzip,
        dest.path(),
        &ExtractOptions::default(),
    )
    .unwrap();
    assert!(report.end_of_archive_missing);
}

#[test]
fn a_stream_cut_inside_an_entry_is_still_an_error() {
    let tar = sample();
    // Inside the second header, inside the second entry's data, inside its padding.
    for (cut, offset) in [
        (512 * 2 + 100, 1024),
        (512 * 3 + 1, 1024),
        (512 * 3 + 200, 1024),
    ] {
        let dest = tempfile::tempdir().unwrap();
        match extract(
            &tar[..cut],
            Compression::None,
            dest.path(),
            &ExtractOptions::default(),
        ) {
            Err(Error::Stream {
                offset: found,
                after_entry,
                source,
            }) => {
                assert_eq!(found, offset, "cut at {cut}");
                assert_eq!(
                    source.kind(),
                    std::io::ErrorKind::UnexpectedEof,
                    "cut at {cut}"
                );
                assert!(after_entry.is_some(), "cut at {cut}");
            }
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
    // Cut inside the very first header.
    let dest = tempfile::tempdir().unwrap();
    let result = extract(
        &tar[..100],
        Compression::None,
        dest.path(),
        &ExtractOptions::default(),
    );
    assert!(
        matches!(result, Err(Error::Stream { offset: 0, .. })),
        "{result:?}"
    );
}

#[test]
fn an_empty_stream_is_an_empty_layer_without_marker() {
    let dest = tempfile::tempdir().unwrap();
    let report = extract(
        &b""[..],
        Compression::None,
        dest.path(),
        &ExtractOptions::default(),
    )
    .unwrap();
    assert_eq!(report.entries, 0);
    assert!(report.end_of_archive_missing);
}
