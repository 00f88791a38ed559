//! Header formats read by tank-layer's own tar reader: v7, ustar (prefix), GNU (no
//! prefix), PAX records (size, mtime with fraction, ids, global headers), base-256
//! numbers, signed checksums, entry types.

use std::fs;
use std::os::unix::fs::MetadataExt as _;

use tank_layer::{Compression, Error, ExtractOptions, LayerReport, extract};
use tank_testkit::{Magic, RawHeader, end_of_archive, padded, pax_header, pax_record};

fn run(dest: &std::path::Path, entries: &[Vec<u8>]) -> Result<LayerReport, Error> {
    let mut layer = entries.concat();
    layer.extend_from_slice(&end_of_archive());
    extract(
        &layer[..],
        Compression::None,
        dest,
        &ExtractOptions::default(),
    )
}

fn file(header: &RawHeader, content: &[u8]) -> Vec<u8> {
    let mut out = header.block().to_vec();
    out.extend_from_slice(&padded(content));
    out
}

#[test]
fn v7_ustar_and_gnu_names() {
    let mut v7 = RawHeader::new("v7file", 0, 2);
    v7.magic = Magic::V7;
    let mut v7_dir = RawHeader::new("v7dir/", 0, 0);
    v7_dir.magic = Magic::V7;
    let mut ustar = RawHeader::file("name", 5);
    ustar.prefix = b"some/prefix".to_vec();
    // GNU headers have no prefix field: those bytes are atime/ctime and are not a path.
    let mut gnu = RawHeader::file("gnuname", 3);
    gnu.magic = Magic::Gnu;
    gnu.prefix = b"not/a/prefix".to_vec();
    let dest = tempfile::tempdir().unwrap();
    let report = run(
        dest.path(),
        &[
            file(&v7, b"v7"),
            v7_dir.block().to_vec(),
            file(&ustar, b"ustar"),
            file(&gnu, b"gnu"),
        ],
    )
    .unwrap();
    assert_eq!((report.files, report.dirs), (3, 1));
    assert_eq!(fs::read(dest.path().join("v7file")).unwrap(), b"v7");
    assert!(
        dest.path().join("v7dir").is_dir(),
        "a v7 name ending in / is a directory"
    );
    assert_eq!(
        fs::read(dest.path().join("some/prefix/name")).unwrap(),
        b"ustar"
    );
    assert_eq!(fs::read(dest.path().join("gnuname")).unwrap(), b"gnu");
    assert!(!dest.path().join("not").exists());
}

#[test]
fn pax_records_override_the_header() {
    let content = b"five!";
    // The header says 0 bytes; PAX says 5. The mtime has a fraction.
    let mut entry = pax_header(&[
        pax_record("size", "5"),
        pax_record("mtime", "1700000000.123456789"),
        pax_record("path", "pax/long/path"),
        pax_record("uname", "ignored"),
        pax_record("uid", "1234"),
        pax_record("gid", "5678"),
    ]);
    entry.extend_from_slice(&file(&RawHeader::file("short", 0), content));
    let dest = tempfile::tempdir().unwrap();
    let options = ExtractOptions {
        preserve_ownership: true,
        ..ExtractOptions::default()
    };
    let mut layer = entry;
    layer.extend_from_slice(&RawHeader::file("next", 0).block());
    layer.extend_from_slice(&end_of_archive());
    let report = extract(&layer[..], Compression::None, dest.path(), &options).unwrap();
    assert_eq!(report.files, 2);
    let path = dest.path().join("pax/long/path");
    assert_eq!(fs::read(&path).unwrap(), content);
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(
        (meta.mtime(), meta.mtime_nsec()),
        (1_700_000_000, 123_456_789)
    );
    if rustix::process::geteuid().is_root() {
        assert_eq!((meta.uid(), meta.gid()), (1234, 5678));
    }
    assert!(!dest.path().join("short").exists());
    assert!(dest.path().join("next").exists());
}

#[test]
fn global_headers_are_skipped_and_counted_not_applied() {
    let mut global = RawHeader::new("pax_global_header", b'g', 0);
    let records = pax_record("path", "hijacked");
    global.size = records.len() as u64;
    let dest = tempfile::tempdir().unwrap();
    let report = run(
        dest.path(),
        &[
            file(&global, &records),
            file(&RawHeader::file("real", 1), b"r"),
        ],
    )
    .unwrap();
    assert_eq!(
        (report.entries, report.skipped_other, report.files),
        (2, 1, 1)
    );
    assert!(dest.path().join("real").exists());
    assert!(!dest.path().join("hijacked").exists());
}

#[test]
fn base256_sizes_and_signed_checksums_are_read() {
    let mut big = RawHeader::file("base256", 4);
    big.base256_size = true;
    // A name byte above 0x7f makes the signed and unsigned sums differ.
    let mut signed = RawHeader::file(b"caf\xe9", 6);
    signed.signed_checksum = true;
    let dest = tempfile::tempdir().unwrap();
    run(
        dest.path(),
        &[file(&big, b"four"), file(&signed, b"signed")],
    )
    .unwrap();
    assert_eq!(fs::read(dest.path().join("base256")).unwrap(), b"four");
    use std::os::unix::ffi::OsStrExt as _;
    let latin1 = std::ffi::OsStr::from_bytes(b"caf\xe9");
    assert_eq!(fs::read(dest.path().join(latin1)).unwrap(), b"signed");
}

#[test]
fn entry_types() {
    let contiguous = RawHeader::new("contiguous", b'7', 4);
    let unknown = RawHeader::new("volume-label", b'V', 700);
    // Header-only types carry no data whatever their size field says (as Go reads them):
    // the next header follows directly.
    let dir = RawHeader::new("dir", b'5', 512);
    let mut symlink = RawHeader::new("link", b'2', 1024);
    symlink.link = b"contiguous".to_vec();
    let dest = tempfile::tempdir().unwrap();
    let report = run(
        dest.path(),
        &[
            file(&contiguous, b"data"),
            file(&unknown, &[b'?'; 700]),
            dir.block().to_vec(),
            symlink.block().to_vec(),
            file(&RawHeader::file("dir/after", 5), b"after"),
        ],
    )
    .unwrap();
    assert_eq!(
        (
            report.files,
            report.dirs,
            report.symlinks,
            report.skipped_other
        ),
        (2, 1, 1, 1)
    );
    assert_eq!(fs::read(dest.path().join("contiguous")).unwrap(), b"data");
    assert_eq!(fs::read(dest.path().join("dir/after")).unwrap(), b"after");
    assert_eq!(fs::read(dest.path().join("link")).unwrap(), b"data");
    assert!(!dest.path().join("volume-label").exists());
}

#[test]
fn bad_numeric_fields_are_errors_not_panics() {
    // A size field that is not octal, and one that overflows.
    let mut not_octal = RawHeader::file("f", 0).block();
    not_octal[124..136].copy_from_slice(b"0000000009x\0");
    let mut overflow = RawHeader::file("f", 0).block();
    overflow[124] = 0x80;
    overflow[125..136].fill(0xff);
    for mut block in [not_octal, overflow] {
        // Re-seal the checksum over the edited field.
        block[148..156].fill(b' ');
        let sum: u32 = block.iter().map(|byte| u32::from(*byte)).sum();
        block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let dest = tempfile::tempdir().unwrap();
        match run(dest.path(), &[block.to_vec()]) {
            Err(Error::Stream { offset, source, .. }) => {
                assert_eq!(offset, 0);
                assert!(source.to_string().contains("size field"), "{source}");
            }
            other => panic!("{other:?}"),
        }
    }
}
