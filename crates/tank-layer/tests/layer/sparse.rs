//! GNU sparse files in every form GNU tar writes (old GNU `S` with extension blocks, PAX
//! 0.0, 0.1 and 1.0), applied by seeking: holes cost neither CPU nor disk, the file gets
//! its real name, maps are validated, and `max_bytes` bounds the real size.

use std::fs;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::{FileExt as _, MetadataExt as _};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tank_layer::{Compression, Error, ExtractOptions, LayerReport, extract};
use tank_testkit::{RawHeader, SparseFile, end_of_archive, padded, pax_header, pax_record};

const PIB: u64 = 1 << 50;

/// Every way to write `file` as `name`, with the form's name.
fn forms(file: &SparseFile, name: &str) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("old GNU", file.old_gnu(name)),
        ("PAX 0.0", file.pax_0_0(name)),
        ("PAX 0.1", file.pax_0_1(name)),
        ("PAX 1.0", file.pax_1_0(name)),
    ]
}

fn layer(entry: &[u8]) -> Vec<u8> {
    let mut out = entry.to_vec();
    out.extend_from_slice(&end_of_archive());
    out
}

fn run(dest: &Path, layer: &[u8], options: &ExtractOptions) -> Result<LayerReport, Error> {
    extract(layer, Compression::None, dest, options)
}

/// What the file's bytes should be.
fn expand(file: &SparseFile) -> Vec<u8> {
    let mut out = vec![0_u8; usize::try_from(file.real_size).unwrap()];
    for (offset, data) in &file.segments {
        let at = usize::try_from(*offset).unwrap();
        out[at..at + data.len()].copy_from_slice(data);
    }
    out
}

/// Every path below `root`, relative and sorted (contents are not read).
fn tree_names(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            out.push(
                path.strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
            if fs::symlink_metadata(&path).unwrap().is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

#[test]
fn a_petabyte_sparse_file_with_one_byte_costs_nothing() {
    // tmpfs takes files up to 8 EiB; ext4 stops at 16 TiB.
    let shm = Path::new("/dev/shm");
    assert!(shm.is_dir(), "the test needs /dev/shm (tmpfs)");
    let offset = PIB / 2 + 3;
    let file = SparseFile {
        real_size: PIB,
        segments: vec![(offset, b"X".to_vec()), (PIB, Vec::new())],
    };
    for (form, entry) in forms(&file, "huge") {
        let dest = tempfile::tempdir_in(shm).unwrap();
        let started = Instant::now();
        let report = run(dest.path(), &layer(&entry), &ExtractOptions::default())
            .unwrap_or_else(|error| panic!("{form}: {error}"));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{form}: took {:?}",
            started.elapsed()
        );
        assert_eq!(report.files, 1);
        let path = dest.path().join("huge");
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), PIB, "{form}");
        assert!(
            meta.blocks() <= 64,
            "{form}: {} blocks allocated",
            meta.blocks()
        );
        let mut around = [0_u8; 3];
        fs::File::open(&path)
            .unwrap()
            .read_exact_at(&mut around, offset - 1)
            .unwrap();
        assert_eq!(&around, b"\0X\0", "{form}");
        assert_eq!(tree_names(dest.path()), vec!["huge"], "{form}");
    }
}

#[test]
fn every_form_with_unaligned_segments_gives_the_same_file_under_its_real_name() {
    let file = SparseFile {
        real_size: 10_000,
        segments: vec![
            (1, b"abc".to_vec()),
            (777, vec![b'm'; 600]),
            (5000, b"tail".to_vec()),
            (10_000, Vec::new()),
        ],
    };
    let expected = expand(&file);
    for (form, entry) in forms(&file, "dir/sparse") {
        let dest = tempfile::tempdir().unwrap();
        let mut bytes = RawHeader::new("dir/", b'5', 0).block().to_vec();
        bytes.extend_from_slice(&entry);
        bytes.extend_from_slice(&RawHeader::file("after", 5).block());
        bytes.extend_from_slice(&padded(b"after"));
        let report = run(dest.path(), &layer(&bytes), &ExtractOptions::default())
            .unwrap_or_else(|error| panic!("{form}: {error}"));
        assert_eq!((report.files, report.dirs), (2, 1), "{form}");
        assert_eq!(
            fs::read(dest.path().join("dir/sparse")).unwrap(),
            expected,
            "{form}"
        );
        assert_eq!(
            fs::read(dest.path().join("after")).unwrap(),
            b"after",
            "{form}"
        );
        assert_eq!(
            tree_names(dest.path()),
            vec!["after", "dir", "dir/sparse"],
            "{form}: no GNUSparseFile.0 path"
        );
    }
}

#[test]
fn long_maps_use_extension_blocks_and_every_form_reads_them() {
    // 4 slots in the header, 21 per extension block: 30 segments need two blocks.
    let segments: Vec<(u64, Vec<u8>)> = (0..29_u64)
        .map(|index| (index * 1000 + index, vec![b'a' + (index % 26) as u8; 10]))
        .chain([(40_000, Vec::new())])
        .collect();
    let file = SparseFile {
        real_size: 40_000,
        segments,
    };
    let expected = expand(&file);
    for (form, entry) in forms(&file, "many") {
        let dest = tempfile::tempdir().unwrap();
        run(dest.path(), &layer(&entry), &ExtractOptions::default())
            .unwrap_or_else(|error| panic!("{form}: {error}"));
        assert_eq!(
            fs::read(dest.path().join("many")).unwrap(),
            expected,
            "{form}"
        );
    }
}

#[test]
fn invalid_maps_are_refused_with_the_reason() {
    let cases = [
        (
            "overlap",
            vec![(0, vec![1; 10]), (5, vec![2; 10]), (100, Vec::new())],
            100,
            "starts before the end",
        ),
        (
            "out of order",
            vec![(50, vec![1; 10]), (0, vec![2; 10]), (100, Vec::new())],
            100,
            "starts before the end",
        ),
        (
            "beyond the real size",
            vec![(0, vec![1; 10]), (95, vec![2; 10])],
            100,
            "beyond the real size",
        ),
        (
            "ends early",
            vec![(0, vec![1; 10])],
            100,
            "not at the real size",
        ),
    ];
    for (what, segments, real_size, reason) in cases {
        let file = SparseFile {
            real_size,
            segments,
        };
        for (form, entry) in forms(&file, "bad") {
            let dest = tempfile::tempdir().unwrap();
            match run(dest.path(), &layer(&entry), &ExtractOptions::default()) {
                Err(Error::SparseMap {
                    entry,
                    reason: found,
                    ..
                }) => {
                    assert_eq!(entry, "bad", "{what}, {form}");
                    assert!(found.contains(reason), "{what}, {form}: {found}");
                }
                other => panic!("{what}, {form}: {other:?}"),
            }
        }
    }
}

#[test]
fn segment_lengths_must_add_up_to_the_stored_size() {
    // A PAX 0.0 map claiming 20 bytes of data where the entry stores 10.
    let mut bytes = pax_header(&[
        pax_record("GNU.sparse.size", "100"),
        pax_record("GNU.sparse.offset", "0"),
        pax_record("GNU.sparse.numbytes", "20"),
        pax_record("GNU.sparse.offset", "100"),
        pax_record("GNU.sparse.numbytes", "0"),
    ]);
    bytes.extend_from_slice(&RawHeader::file("short", 10).block());
    bytes.extend_from_slice(&padded(&[7; 10]));
    let dest = tempfile::tempdir().unwrap();
    match run(dest.path(), &layer(&bytes), &ExtractOptions::default()) {
        Err(Error::SparseMap { reason, offset, .. }) => {
            assert_eq!(offset, 1024, "the entry's own header, after the PAX header");
            assert!(
                reason.contains("hold 20 bytes but the entry stores 10"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn sparse_maps_are_bounded_in_segments() {
    // A 1.0 map announcing more segments than MAX_SPARSE_SEGMENTS is refused at once.
    let count = tank_layer::MAX_SPARSE_SEGMENTS + 1;
    let mut bytes = pax_header(&[
        pax_record("GNU.sparse.major", "1"),
        pax_record("GNU.sparse.minor", "0"),
        pax_record("GNU.sparse.name", "many"),
        pax_record("GNU.sparse.realsize", "1000"),
    ]);
    let map = padded(format!("{count}\n0\n").as_bytes());
    bytes.extend_from_slice(&RawHeader::file("GNUSparseFile.0/many", map.len() as u64).block());
    bytes.extend_from_slice(&map);
    let dest = tempfile::tempdir().unwrap();
    match run(dest.path(), &layer(&bytes), &ExtractOptions::default()) {
        Err(Error::SparseMap { reason, .. }) => {
            assert!(reason.contains("MAX_SPARSE_SEGMENTS"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn max_bytes_bounds_the_real_size_in_every_form() {
    let file = SparseFile {
        real_size: 1 << 40,
        segments: vec![(0, b"x".to_vec()), (1 << 40, Vec::new())],
    };
    let options = ExtractOptions {
        max_bytes: Some(1 << 20),
        ..ExtractOptions::default()
    };
    for (form, entry) in forms(&file, "big") {
        let dest = tempfile::tempdir().unwrap();
        let result = run(dest.path(), &layer(&entry), &options);
        assert!(
            matches!(
                result,
                Err(Error::LimitExceeded {
                    limit: "max_bytes",
                    max: 1_048_576,
                    ..
                })
            ),
            "{form}: {result:?}"
        );
        assert!(!dest.path().join("big").exists(), "{form}");
    }
}

/// A file with holes, as a person would make one: data at the start, in the middle (at an
/// odd offset) and a hole at the end.
fn make_sparse_source(dir: &Path) -> Vec<u8> {
    let path = dir.join("holes");
    let file = fs::File::create(&path).unwrap();
    file.write_all_at(b"start", 0).unwrap();
    file.write_all_at(&[b'm'; 5000], (1 << 20) + 7).unwrap();
    file.write_all_at(b"late", 5 << 20).unwrap();
    file.set_len((8 << 20) + 3).unwrap();
    drop(file);
    let mut bytes = Vec::new();
    fs::File::open(&path)
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
}

#[test]
fn archives_written_by_gnu_tar_extract_with_their_holes() {
    let source = tempfile::tempdir().unwrap();
    let expected = make_sparse_source(source.path());
    let variants: [&[&str]; 4] = [
        &["--format=gnu"],
        &["--format=posix", "--sparse-version=0.0"],
        &["--format=posix", "--sparse-version=0.1"],
        &["--format=posix", "--sparse-version=1.0"],
    ];
    for variant in variants {
        let archive = source.path().join("archive.tar");
        let output = Command::new("tar")
            .args(["--sparse", "-c", "-f"])
            .arg(&archive)
            .args(variant)
            .arg("-C")
            .arg(source.path())
            .arg("holes")
            .output()
            .expect("GNU tar is installed (Debian package tar)");
        assert!(
            output.status.success(),
            "{variant:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let bytes = fs::read(&archive).unwrap();
        assert!(
            bytes.len() < 64 * 1024,
            "{variant:?}: tar stored the holes ({} bytes)",
            bytes.len()
        );
        let dest = tempfile::tempdir().unwrap();
        run(dest.path(), &bytes, &ExtractOptions::default())
            .unwrap_or_else(|error| panic!("{variant:?}: {error}"));
        assert_eq!(tree_names(dest.path()), vec!["holes"], "{variant:?}");
        let path = dest.path().join("holes");
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), expected.len() as u64, "{variant:?}");
        assert!(
            meta.blocks() * 512 < 1 << 20,
            "{variant:?}: {} blocks",
            meta.blocks()
        );
        let mut file = fs::File::open(&path).unwrap();
        file.seek(SeekFrom::Start(0)).unwrap();
        let mut content = Vec::new();
        file.read_to_end(&mut content).unwrap();
        assert!(content == expected, "{variant:?}: content differs");
    }
    // The source really had holes (else the test proves nothing).
    let source_meta = fs::metadata(source.path().join("holes")).unwrap();
    assert!(source_meta.blocks() * 512 < 1 << 20);
    let _ = std::io::stdout().flush();
}
