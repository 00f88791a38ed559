//! zstd layers of several frames, and with skippable frames (at the start and between
//! frames): they decode, and the diff_id covers the decompressed tar only.

use tank_layer::{Compression, ExtractOptions, extract};
use tank_testkit::TarBuilder;

use crate::sha256;

/// A skippable frame with magic 0x184D2A50 + `nibble` and `payload`.
fn skippable(nibble: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = (0x184D_2A50_u32 + u32::from(nibble)).to_le_bytes().to_vec();
    out.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_le_bytes());
    out.extend_from_slice(payload);
    out
}

fn frame(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).unwrap()
}

fn sample() -> Vec<u8> {
    TarBuilder::new()
        .dir("etc", 0o755)
        .file("etc/a", vec![b'a'; 3000], 0o644)
        .file("etc/b", b"bee\n", 0o600)
        .build()
}

#[test]
fn several_frames_and_skippable_frames_decode_to_the_same_tar() {
    let tar = sample();
    // Split the tar at an odd place: frames need not follow tar blocks.
    let (first, second) = tar.split_at(1000);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("two frames", [frame(first), frame(second)].concat()),
        (
            "leading skippable frame",
            [skippable(0, b"metadata"), frame(&tar)].concat(),
        ),
        (
            "skippable frames everywhere",
            [
                skippable(0xf, &[0xff; 100]),
                frame(first),
                skippable(3, b""),
                frame(second),
                skippable(7, b"trailer"),
            ]
            .concat(),
        ),
    ];
    for (what, layer) in cases {
        let dest = tempfile::tempdir().unwrap();
        let report = extract(
            &layer[..],
            Compression::Zstd,
            dest.path(),
            &ExtractOptions::default(),
        )
        .unwrap_or_else(|error| panic!("{what}: {error}"));
        assert_eq!(report.diff_id, sha256(&tar), "{what}");
        assert_eq!(report.bytes, tar.len() as u64, "{what}");
        assert_eq!(report.files, 2, "{what}");
        assert_eq!(
            std::fs::read(dest.path().join("etc/b")).unwrap(),
            b"bee\n",
            "{what}"
        );
    }
}

#[test]
fn a_skippable_frame_is_not_taken_for_an_uncompressed_or_gzip_layer() {
    let layer = [skippable(0, b"x"), frame(&sample())].concat();
    for declared in [Compression::None, Compression::Gzip] {
        let dest = tempfile::tempdir().unwrap();
        let result = extract(
            &layer[..],
            declared,
            dest.path(),
            &ExtractOptions::default(),
        );
        assert!(
            matches!(
                result,
                Err(tank_layer::Error::CompressionMismatch { found: "zstd", .. })
            ),
            "{declared:?}: {result:?}"
        );
    }
}
