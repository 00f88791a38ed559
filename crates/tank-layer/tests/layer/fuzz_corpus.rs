//! The `extract` fuzz target's corpus (fuzz/corpus/extract/), replayed as a normal test with
//! the same containment check the fuzz target asserts (tank-layer's `fuzzing` module), and the seed files
//! of that corpus, generated here.
//!
//! The seeds are `seed-*.tar` and must match [`seeds`] and [`raw_seeds`]; other files in the directory are
//! inputs the fuzzer found worth keeping. After changing the seeds, rewrite them with
//! `TANK_WRITE_FUZZ_CORPUS=1 cargo test -p tank-layer --test layer fuzz_corpus`.

use std::fs;
use std::path::PathBuf;

use tank_testkit::{
    EntryKind, LongNames, RawHeader, SparseFile, TarBuilder, TarEntry, end_of_archive, padded,
    pax_header, pax_record,
};

use tank_layer::fuzzing::{Sandbox, repair_checksums};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/extract")
}

/// A name longer than the 100 bytes of a header's name field, going through the lower
/// layer's escaping symlink.
fn long_name(prefix: &str) -> String {
    format!("{prefix}/{}/x", "long-directory-name".repeat(8))
}

/// Every seed: its file name, the layer, and whether it extracts without error.
fn seeds() -> Vec<(&'static str, TarBuilder, bool)> {
    vec![
        (
            "seed-plain.tar",
            TarBuilder::new()
                .dir("etc", 0o755)
                .file("etc/motd", b"hello\n", 0o644)
                .file("bin/sh", b"#!sh\n", 0o755)
                .symlink("usr/bin/sh", "/bin/sh")
                .hardlink("etc/motd.link", "etc/motd")
                .entry(TarEntry::file("var/log/app.log", b"log\n").mtime(1_700_000_000))
                .dir("var/empty", 0o000),
            true,
        ),
        (
            "seed-dotdot.tar",
            TarBuilder::new()
                .file("../../outside/x", b"evil", 0o644)
                .file("../outside/new", b"evil", 0o644)
                .file("a/../../../outside/d/f", b"evil", 0o644)
                .file("./../x", b"evil", 0o644)
                .dir("../../outside/d", 0o777),
            true,
        ),
        (
            "seed-absolute.tar",
            TarBuilder::new()
                .file("/outside/x", b"evil", 0o644)
                .file("/../../outside/link", b"evil", 0o644)
                .file("//outside/d/f", b"evil", 0o600)
                .symlink("/abs2", "/outside"),
            true,
        ),
        (
            "seed-symlink-parent.tar",
            TarBuilder::new()
                .file("up/x", b"evil", 0o644)
                .file("up1/new", b"evil", 0o644)
                .file("top/outside/x", b"evil", 0o644)
                .file("lower/esc/link", b"evil", 0o644)
                .symlink("s", "../../outside")
                .file("s/x", b"evil", 0o644)
                .symlink("chain1", "chain2")
                .symlink("chain2", "../../..")
                .dir("chain1/outside", 0o700)
                .file("chain1/outside/x", b"evil", 0o644),
            true,
        ),
        (
            // `abs` points at the host's outside directory: no such directory in dest.
            "seed-absolute-symlink-parent.tar",
            TarBuilder::new().file("abs/d/f", b"evil", 0o644),
            false,
        ),
        (
            "seed-replace-symlink.tar",
            TarBuilder::new()
                .file("absx", b"evil", 0o644)
                .dir("up", 0o777)
                .hardlink("abs", "lower/file")
                .entry(TarEntry::new("up1", EntryKind::Fifo, 0o644)),
            true,
        ),
        (
            "seed-hardlink-out.tar",
            TarBuilder::new()
                .file("ok", b"ok", 0o644)
                .hardlink("ok.link", "ok")
                .hardlink("h", "../outside/x"),
            true,
        ),
        (
            "seed-hardlink-through-symlink.tar",
            TarBuilder::new().hardlink("h", "up/x"),
            true,
        ),
        (
            "seed-hardlink-absx.tar",
            TarBuilder::new()
                .hardlink("h", "absx")
                .file("h", b"evil", 0o644),
            true,
        ),
        (
            "seed-whiteout.tar",
            TarBuilder::new()
                .whiteout("lower/file")
                .whiteout("up/x")
                .whiteout("abs/d")
                .whiteout("top/outside")
                .file("../.wh.outside", b"", 0o644)
                .whiteout("lower/esc/link")
                .whiteout("up"),
            true,
        ),
        (
            "seed-whiteout-dotdot.tar",
            TarBuilder::new().file("lower/.wh...", b"", 0o644),
            false,
        ),
        (
            "seed-whiteout-invalid.tar",
            TarBuilder::new().file("lower/.wh.", b"", 0o644),
            false,
        ),
        (
            "seed-opaque.tar",
            TarBuilder::new()
                .opaque("lower/esc")
                .opaque("lower")
                .file("lower/new", b"new", 0o644)
                .opaque("up")
                .opaque("abs")
                .opaque("top")
                .opaque(""),
            true,
        ),
        (
            "seed-pax-long.tar",
            TarBuilder::new()
                .entry(TarEntry::file(long_name("up"), b"evil"))
                .entry(TarEntry::symlink(
                    long_name("link"),
                    long_name("../../outside"),
                ))
                .entry(TarEntry::hardlink("h", long_name("up")))
                .entry(
                    TarEntry::file("xattrs", b"x")
                        .xattr("user.tank", b"v")
                        .xattr("security.capability", b"v")
                        .owner(1000, 1000),
                ),
            true,
        ),
        (
            "seed-gnu-long.tar",
            TarBuilder::new()
                .entry(TarEntry::file(long_name("up"), b"evil").long_names(LongNames::Gnu))
                .entry(
                    TarEntry::symlink(long_name("l"), long_name("/outside"))
                        .long_names(LongNames::Gnu),
                ),
            true,
        ),
        (
            "seed-special.tar",
            TarBuilder::new()
                .entry(TarEntry::new(
                    "up/dev",
                    EntryKind::CharDevice { major: 1, minor: 3 },
                    0o666,
                ))
                .entry(TarEntry::new(
                    "blk",
                    EntryKind::BlockDevice { major: 7, minor: 0 },
                    0o600,
                ))
                .entry(TarEntry::sparse(
                    "sparse",
                    4096,
                    vec![(0, vec![b'a'; 512]), (4093, b"end".to_vec())],
                ))
                .dir("ro", 0o500)
                .file("ro/f", b"f", 0o444),
            true,
        ),
    ]
}

/// Seeds written byte by byte: every GNU sparse form and PAX records the reader
/// interprets, aimed through the lower layer's escaping symlinks.
fn raw_seeds() -> Vec<(&'static str, Vec<u8>, bool)> {
    let sparse = SparseFile {
        real_size: 70_000,
        segments: (0..27_u64)
            .map(|index| (index * 2000 + 3, vec![b'a' + index as u8; 7]))
            .chain([(70_000, Vec::new())])
            .collect(),
    };
    let mut sparse_forms = [
        sparse.old_gnu("up/old-gnu"),
        sparse.pax_0_0("top/outside/pax00"),
        sparse.pax_0_1("up1/pax01"),
        sparse.pax_1_0("lower/esc/pax10"),
    ]
    .concat();
    sparse_forms.extend_from_slice(&end_of_archive());

    let mut pax = pax_header(&[
        pax_record("size", "4"),
        pax_record("mtime", "1700000000.5"),
        pax_record("path", "up/pax-path"),
        pax_record("linkpath", "ignored"),
        pax_record("SCHILY.xattr.user.seed", "v"),
    ]);
    pax.extend_from_slice(&RawHeader::file("short", 0).block());
    pax.extend_from_slice(&padded(b"data"));
    let mut global = RawHeader::new("global", b'g', 0);
    let record = pax_record("path", "up/hijack");
    global.size = record.len() as u64;
    pax.extend_from_slice(&global.block());
    pax.extend_from_slice(&padded(&record));
    let mut big = RawHeader::file("top/outside/base256", 2);
    big.base256_size = true;
    pax.extend_from_slice(&big.block());
    pax.extend_from_slice(&padded(b"bb"));
    let mut v7 = RawHeader::new("up/v7dir/", 0, 0);
    v7.magic = tank_testkit::Magic::V7;
    pax.extend_from_slice(&v7.block());
    // No end-of-archive marker: accepted.
    vec![
        ("seed-sparse-forms.tar", sparse_forms, true),
        ("seed-pax-records.tar", pax, true),
    ]
}

/// Every seed as bytes.
fn all_seeds() -> Vec<(&'static str, Vec<u8>, bool)> {
    seeds()
        .into_iter()
        .map(|(name, builder, ok)| (name, builder.build(), ok))
        .chain(raw_seeds())
        .collect()
}

#[test]
fn seed_corpus_is_up_to_date() {
    let dir = corpus_dir();
    let write = std::env::var_os("TANK_WRITE_FUZZ_CORPUS").is_some();
    if write {
        fs::create_dir_all(&dir).unwrap();
    }
    let mut stale = Vec::new();
    for (name, bytes, _) in all_seeds() {
        let path = dir.join(name);
        if write {
            fs::write(&path, &bytes).unwrap();
        } else if fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "stale or missing seeds in {}: {stale:?}; rewrite them with \
         `TANK_WRITE_FUZZ_CORPUS=1 cargo test -p tank-layer --test layer fuzz_corpus`",
        dir.display()
    );
}

#[test]
fn seeds_extract_as_expected_and_stay_contained() {
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::new(tmp.path()).unwrap();
    for (name, bytes, expect_ok) in all_seeds() {
        let result = sandbox
            .run(&bytes)
            .unwrap_or_else(|violation| panic!("{name}: {violation}"));
        assert_eq!(result.is_ok(), expect_ok, "{name}: {result:?}");
    }
    // A plain layer really lands in dest: the harness does extract.
    let plain = &seeds()[0];
    let report = sandbox.run(&plain.1.build()).unwrap().unwrap();
    assert_eq!(report.files, 3);
    assert_eq!(
        fs::read(sandbox.dest().join("etc/motd")).unwrap(),
        b"hello\n"
    );
    // A contained escape lands inside dest.
    let dotdot = &seeds()[1];
    sandbox.run(&dotdot.1.build()).unwrap().unwrap();
    assert_eq!(fs::read(sandbox.dest().join("outside/x")).unwrap(), b"evil");
}

#[test]
fn every_corpus_file_stays_contained() {
    let dir = corpus_dir();
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("fuzz corpus {} missing: {error}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    let seed_count = files
        .iter()
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.starts_with("seed-")
        })
        .count();
    assert_eq!(
        seed_count,
        all_seeds().len(),
        "fuzz corpus {} lacks seeds",
        dir.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::new(tmp.path()).unwrap();
    for path in &files {
        let layer = fs::read(path).unwrap();
        if let Err(violation) = sandbox.run(&layer) {
            panic!("{}: {violation}", path.display());
        }
    }
}

#[test]
fn checksum_repair_lets_mutated_headers_through() {
    let layer = TarBuilder::new().file("f", b"content", 0o644).build();
    assert_eq!(repair_checksums(&layer), layer, "valid input is left as is");
    let mut mutated = layer.clone();
    mutated[0] = b'g';
    let tmp = tempfile::tempdir().unwrap();
    let unrepaired = tank_layer::extract(
        &mutated[..],
        tank_layer::Compression::None,
        tmp.path(),
        &tank_layer::ExtractOptions::default(),
    );
    assert!(unrepaired.is_err(), "a bad checksum is refused");
    let sandbox = Sandbox::new(tmp.path()).unwrap();
    let report = sandbox.run(&mutated).unwrap().unwrap();
    assert_eq!(report.files, 1);
    assert_eq!(fs::read(sandbox.dest().join("g")).unwrap(), b"content");
}
