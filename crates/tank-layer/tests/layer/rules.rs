//! OCI layer rules: entry kinds, metadata, whiteouts, opaque directories, replacement.

use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};

use tank_layer::{Compression, ExtractOptions, extract};
use tank_testkit::{EntryKind, TarBuilder, TarEntry};

use crate::{Node, apply, inode, snapshot};

fn mode_of(path: &std::path::Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn files_dirs_symlinks_and_hardlinks() {
    let dest = tempfile::tempdir().unwrap();
    let report = apply(
        dest.path(),
        &TarBuilder::new()
            .dir("bin", 0o755)
            .file("bin/busybox", b"elf", 0o755)
            .symlink("bin/sh", "/bin/busybox")
            .symlink("bin/ls", "busybox")
            .hardlink("bin/cat", "bin/busybox"),
    )
    .unwrap();
    assert_eq!(
        (report.files, report.dirs, report.symlinks, report.hardlinks),
        (1, 1, 2, 1)
    );
    let bin = dest.path().join("bin");
    assert_eq!(
        fs::read_link(bin.join("sh")).unwrap().to_str(),
        Some("/bin/busybox")
    );
    assert_eq!(
        fs::read_link(bin.join("ls")).unwrap().to_str(),
        Some("busybox")
    );
    assert_eq!(inode(&bin.join("cat")), inode(&bin.join("busybox")));
    assert_eq!(mode_of(&bin.join("busybox")), 0o755);
}

#[test]
fn missing_parent_directories_are_created() {
    let dest = tempfile::tempdir().unwrap();
    apply(
        dest.path(),
        &TarBuilder::new().file("a/b/c/file", b"x", 0o600),
    )
    .unwrap();
    assert_eq!(fs::read(dest.path().join("a/b/c/file")).unwrap(), b"x");
    assert_eq!(mode_of(&dest.path().join("a/b/c/file")), 0o600);
}

#[test]
fn hardlink_to_a_lower_layer_file() {
    let dest = tempfile::tempdir().unwrap();
    apply(
        dest.path(),
        &TarBuilder::new().file("lower", b"data", 0o644),
    )
    .unwrap();
    apply(dest.path(), &TarBuilder::new().hardlink("upper", "lower")).unwrap();
    assert_eq!(
        inode(&dest.path().join("upper")),
        inode(&dest.path().join("lower"))
    );
}

#[test]
fn hardlink_to_a_missing_or_directory_target_is_an_error() {
    for layer in [
        TarBuilder::new().hardlink("link", "missing"),
        TarBuilder::new().dir("d", 0o755).hardlink("link", "d"),
    ] {
        let dest = tempfile::tempdir().unwrap();
        let result = apply(dest.path(), &layer);
        assert!(
            matches!(result, Err(tank_layer::Error::InvalidHardlink { .. })),
            "{result:?}"
        );
    }
}

#[test]
fn special_mode_bits_are_kept() {
    let dest = tempfile::tempdir().unwrap();
    apply(
        dest.path(),
        &TarBuilder::new()
            .file("setuid", b"", 0o4755)
            .file("setgid", b"", 0o2755)
            .dir("tmp", 0o1777),
    )
    .unwrap();
    assert_eq!(mode_of(&dest.path().join("setuid")), 0o4755);
    assert_eq!(mode_of(&dest.path().join("setgid")), 0o2755);
    assert_eq!(mode_of(&dest.path().join("tmp")), 0o1777);
}

#[test]
fn read_only_directories_get_their_mode_after_their_contents() {
    let dest = tempfile::tempdir().unwrap();
    apply(
        dest.path(),
        &TarBuilder::new()
            .dir("ro", 0o555)
            .file("ro/inside", b"x", 0o444)
            .dir("ro/sub", 0o500)
            .file("ro/sub/deeper", b"y", 0o400),
    )
    .unwrap();
    assert_eq!(mode_of(&dest.path().join("ro")), 0o555);
    assert_eq!(mode_of(&dest.path().join("ro/sub")), 0o500);
    assert_eq!(fs::read(dest.path().join("ro/sub/deeper")).unwrap(), b"y");
    // A second layer writes into the read-only lower directory; its mode survives.
    apply(
        dest.path(),
        &TarBuilder::new().file("ro/sub/new", b"z", 0o644),
    )
    .unwrap();
    assert_eq!(fs::read(dest.path().join("ro/sub/new")).unwrap(), b"z");
    assert_eq!(mode_of(&dest.path().join("ro/sub")), 0o500);
}

#[test]
fn mtimes_are_applied_directories_last() {
    let dest = tempfile::tempdir().unwrap();
    apply(
        dest.path(),
        &TarBuilder::new()
            .entry(TarEntry::dir("d/").mtime(1_000_000))
            .entry(TarEntry::file("d/f", b"x").mtime(2_000_000))
            .entry(TarEntry::symlink("d/l", "f").mtime(3_000_000)),
    )
    .unwrap();
    let mtime = |name: &str| {
        fs::symlink_metadata(dest.path().join(name))
            .unwrap()
            .mtime()
    };
    assert_eq!(mtime("d"), 1_000_000);
    assert_eq!(mtime("d/f"), 2_000_000);
    assert_eq!(mtime("d/l"), 3_000_000);
}

#[test]
fn user_xattrs_are_applied_and_others_skipped() {
    let dest = tempfile::tempdir().unwrap();
    let report = apply(
        dest.path(),
        &TarBuilder::new().entry(
            TarEntry::file("f", b"x")
                .xattr("user.tank", b"yes")
                .xattr("security.capability", b"\x01\x02"),
        ),
    )
    .unwrap();
    assert_eq!(report.skipped_xattrs + report.xattrs, 2);
    assert!(report.skipped_xattrs >= 1, "security.* is never applied");
    if report.xattrs == 1 {
        let value =
            rustix::fs::getxattr(dest.path().join("f").as_path(), "user.tank", &mut [0; 16])
                .unwrap();
        assert_eq!(value, 3);
    }
}

#[test]
fn long_and_non_utf8_names() {
    let long = format!("{}/{}", "d".repeat(120), "f".repeat(150));
    let dest = tempfile::tempdir().unwrap();
    apply(
        dest.path(),
        &TarBuilder::new().file(long.clone(), b"long", 0o644),
    )
    .unwrap();
    assert_eq!(fs::read(dest.path().join(&long)).unwrap(), b"long");

    // A GNU long name and a Latin-1 name, written with the tar crate.
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(3);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    let gnu_long = "g".repeat(200);
    builder
        .append_data(&mut header.clone(), &gnu_long, &b"gnu"[..])
        .unwrap();
    header.as_gnu_mut().unwrap().name[..4].copy_from_slice(b"caf\xe9");
    header.set_cksum();
    builder.append(&header, &b"raw"[..]).unwrap();
    let tar = builder.into_inner().unwrap();
    extract(
        &tar[..],
        Compression::None,
        dest.path(),
        &ExtractOptions::default(),
    )
    .unwrap();
    assert_eq!(fs::read(dest.path().join(&gnu_long)).unwrap(), b"gnu");
    use std::os::unix::ffi::OsStrExt as _;
    let latin1 = std::ffi::OsStr::from_bytes(b"caf\xe9");
    assert_eq!(fs::read(dest.path().join(latin1)).unwrap(), b"raw");
}

#[test]
fn whiteout_removes_a_file_or_a_tree_from_lower_layers() {
    let dest = tempfile::tempdir().unwrap();
    apply(
        dest.path(),
        &TarBuilder::new()
            .file("keep", b"k", 0o644)
            .file("gone", b"g", 0o644)
            .dir("tree", 0o755)
            .dir("tree/sub", 0o555)
            .file("tree/sub/f", b"f", 0o444),
    )
    .unwrap();
    let report = apply(
        dest.path(),
        &TarBuilder::new()
            .whiteout("gone")
            .whiteout("tree")
            .whiteout("absent"),
    )
    .unwrap();
    assert_eq!(report.whiteouts, 3);
    let tree = snapshot(dest.path());
    assert_eq!(tree.keys().collect::<Vec<_>>(), vec!["keep"]);
}

#[test]
fn opaque_directory_hides_lower_content_but_keeps_this_layers_whatever_the_order() {
    let lower = TarBuilder::new()
        .dir("d", 0o755)
        .file("d/lower", b"l", 0o644)
        .dir("d/sub", 0o755)
        .file("d/sub/lower", b"l", 0o644)
        .file("outside", b"o", 0o644);
    // The marker after, before, and between this layer's own entries.
    let uppers = [
        TarBuilder::new()
            .dir("d", 0o755)
            .file("d/new", b"n", 0o644)
            .file("d/sub/new", b"n", 0o644)
            .opaque("d"),
        TarBuilder::new()
            .opaque("d")
            .dir("d", 0o755)
            .file("d/new", b"n", 0o644)
            .file("d/sub/new", b"n", 0o644),
        TarBuilder::new()
            .file("d/new", b"n", 0o644)
            .opaque("d")
            .file("d/sub/new", b"n", 0o644),
    ];
    for upper in uppers {
        let dest = tempfile::tempdir().unwrap();
        apply(dest.path(), &lower).unwrap();
        apply(dest.path(), &upper).unwrap();
        let tree = snapshot(dest.path());
        assert_eq!(
            tree.keys().map(String::as_str).collect::<Vec<_>>(),
            vec!["d", "d/new", "d/sub", "d/sub/new", "outside"],
            "{upper:?}"
        );
    }
}

#[test]
fn whiteout_files_never_appear() {
    let dest = tempfile::tempdir().unwrap();
    apply(
        dest.path(),
        &TarBuilder::new()
            .dir("d", 0o755)
            .opaque("d")
            .whiteout("d/x"),
    )
    .unwrap();
    let tree = snapshot(dest.path());
    assert_eq!(tree.keys().collect::<Vec<_>>(), vec!["d"]);
}

#[test]
fn later_entries_replace_earlier_ones() {
    let dest = tempfile::tempdir().unwrap();
    apply(
        dest.path(),
        &TarBuilder::new()
            .dir("was_dir", 0o755)
            .file("was_dir/child", b"c", 0o644)
            .file("was_file", b"f", 0o644)
            .symlink("was_link", "/")
            .dir("stays_dir", 0o700)
            .file("stays_dir/child", b"c", 0o644)
            .file("dup", b"first", 0o644),
    )
    .unwrap();
    apply(
        dest.path(),
        &TarBuilder::new()
            .file("was_dir", b"now a file", 0o644)
            .dir("was_file", 0o755)
            .dir("was_link", 0o750)
            .dir("stays_dir", 0o755)
            .file("dup", b"second", 0o600)
            .file("dup", b"third", 0o640),
    )
    .unwrap();
    let tree = snapshot(dest.path());
    assert!(matches!(tree["was_dir"], Node::File { .. }));
    assert!(!tree.contains_key("was_dir/child"));
    assert_eq!(tree["was_file"], Node::Dir { mode: 0o755 });
    assert_eq!(tree["was_link"], Node::Dir { mode: 0o750 });
    assert_eq!(tree["stays_dir"], Node::Dir { mode: 0o755 });
    assert!(tree.contains_key("stays_dir/child"));
    assert_eq!(fs::read(dest.path().join("dup")).unwrap(), b"third");
    assert_eq!(mode_of(&dest.path().join("dup")), 0o640);
}

#[test]
fn devices_are_skipped_and_counted_by_default_fifos_created() {
    let dest = tempfile::tempdir().unwrap();
    let report = apply(
        dest.path(),
        &TarBuilder::new()
            .entry(TarEntry::new(
                "dev/null",
                EntryKind::CharDevice { major: 1, minor: 3 },
                0o666,
            ))
            .entry(TarEntry::new(
                "dev/sda",
                EntryKind::BlockDevice { major: 8, minor: 0 },
                0o660,
            ))
            .entry(TarEntry::new("fifo", EntryKind::Fifo, 0o644)),
    )
    .unwrap();
    assert_eq!(report.skipped_devices, 2);
    assert_eq!(report.devices, 1);
    assert!(!dest.path().join("dev/null").exists());
    assert!(!dest.path().join("dev/sda").exists());
    // A fifo needs no privilege: it is created, as umoci --rootless does.
    let fifo = std::fs::symlink_metadata(dest.path().join("fifo")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(&fifo.file_type()));
}

#[test]
fn devices_and_ownership_only_when_asked_and_running_as_root() {
    let layer = TarBuilder::new()
        .entry(TarEntry::new(
            "null",
            EntryKind::CharDevice { major: 1, minor: 3 },
            0o666,
        ))
        .entry(TarEntry::file("owned", b"x").owner(1234, 5678));
    let asked = ExtractOptions {
        create_devices: true,
        preserve_ownership: true,
        ..ExtractOptions::default()
    };
    let dest = tempfile::tempdir().unwrap();
    let report = extract(&layer.build()[..], Compression::None, dest.path(), &asked).unwrap();
    let owned = fs::metadata(dest.path().join("owned")).unwrap();
    if rustix::process::geteuid().is_root() {
        assert_eq!((report.devices, report.skipped_devices), (1, 0));
        let null = fs::symlink_metadata(dest.path().join("null")).unwrap();
        use std::os::unix::fs::FileTypeExt as _;
        assert!(null.file_type().is_char_device());
        assert_eq!(
            null.mode() & 0o7777,
            0o666,
            "the mode is the tar's, not umasked"
        );
        assert_eq!((owned.uid(), owned.gid()), (1234, 5678));
    } else {
        assert_eq!((report.devices, report.skipped_devices), (0, 1));
        assert_eq!(owned.uid(), rustix::process::geteuid().as_raw());
    }

    // Not asked: never, even as root.
    let dest = tempfile::tempdir().unwrap();
    let report = apply(dest.path(), &layer).unwrap();
    assert_eq!((report.devices, report.skipped_devices), (0, 1));
    let owned = fs::metadata(dest.path().join("owned")).unwrap();
    assert_eq!(owned.uid(), rustix::process::geteuid().as_raw());
}

#[test]
fn symlink_loops_in_parents_are_errors() {
    let dest = tempfile::tempdir().unwrap();
    let result = apply(
        dest.path(),
        &TarBuilder::new()
            .symlink("a", "b")
            .symlink("b", "a")
            .file("a/x", b"x", 0o644),
    );
    assert!(
        matches!(result, Err(tank_layer::Error::NotADirectory { .. })),
        "{result:?}"
    );
}

#[test]
fn gnu_sparse_files_read_back_with_holes_as_zeros() {
    let dest = tempfile::tempdir().unwrap();
    let report = apply(
        dest.path(),
        &TarBuilder::new()
            .dir("s", 0o755)
            .entry(
                TarEntry::sparse(
                    "s/chunks",
                    20_000,
                    vec![
                        (0, vec![b'h'; 512]),
                        (4096, vec![b'm'; 1024]),
                        (12_000, b"last chunk".to_vec()),
                        (20_000, Vec::new()),
                    ],
                )
                .mode(0o640),
            )
            .entry(TarEntry::sparse(
                "s/hole-only",
                70_000,
                vec![(70_000, Vec::new())],
            ))
            .entry(TarEntry::sparse(
                "s/ends-with-data",
                1029,
                vec![(1024, b"tail!".to_vec())],
            )),
    )
    .unwrap();
    assert_eq!(report.files, 3);

    let chunks = fs::read(dest.path().join("s/chunks")).unwrap();
    assert_eq!(chunks.len(), 20_000);
    assert!(chunks[..512].iter().all(|byte| *byte == b'h'));
    assert!(chunks[512..4096].iter().all(|byte| *byte == 0));
    assert!(chunks[4096..5120].iter().all(|byte| *byte == b'm'));
    assert!(chunks[5120..12_000].iter().all(|byte| *byte == 0));
    assert_eq!(&chunks[12_000..12_010], b"last chunk");
    assert!(chunks[12_010..].iter().all(|byte| *byte == 0));
    assert_eq!(mode_of(&dest.path().join("s/chunks")), 0o640);

    let hole = fs::read(dest.path().join("s/hole-only")).unwrap();
    assert_eq!(hole, vec![0_u8; 70_000]);

    let tail = fs::read(dest.path().join("s/ends-with-data")).unwrap();
    assert_eq!(tail.len(), 1029);
    assert!(tail[..1024].iter().all(|byte| *byte == 0));
    assert_eq!(&tail[1024..], b"tail!");
}

#[test]
fn gnu_sparse_file_replaces_a_lower_file_and_is_hard_linkable() {
    let dest = tempfile::tempdir().unwrap();
    apply(
        dest.path(),
        &TarBuilder::new().file("data", vec![b'x'; 9000], 0o644),
    )
    .unwrap();
    apply(
        dest.path(),
        &TarBuilder::new()
            .entry(TarEntry::sparse(
                "data",
                3000,
                vec![(2048, b"new".to_vec()), (3000, Vec::new())],
            ))
            .hardlink("data-link", "data"),
    )
    .unwrap();
    let data = fs::read(dest.path().join("data")).unwrap();
    assert_eq!(data.len(), 3000, "no bytes of the longer lower file remain");
    assert!(data[..2048].iter().all(|byte| *byte == 0));
    assert_eq!(&data[2048..2051], b"new");
    assert!(data[2051..].iter().all(|byte| *byte == 0));
    assert_eq!(
        inode(&dest.path().join("data")),
        inode(&dest.path().join("data-link"))
    );
}

#[test]
fn gnu_sparse_map_inconsistent_with_its_size_is_an_error() {
    // The map ends at 600 but the header says the file is 4096 bytes long (no final
    // zero-length chunk): the map is malformed, and nothing half-written is trusted.
    let dest = tempfile::tempdir().unwrap();
    let error = apply(
        dest.path(),
        &TarBuilder::new().entry(TarEntry::sparse("bad", 4096, vec![(0, vec![b'b'; 600])])),
    )
    .unwrap_err();
    assert!(
        matches!(error, tank_layer::Error::SparseMap { .. }),
        "expected a sparse map error, got {error:?}"
    );
}

#[test]
fn sparse_holes_stay_holes_and_count_against_max_bytes() {
    const GIB: u64 = 1 << 28; // 256 MiB: enough to tell holes from written zeros
    let layer = TarBuilder::new().entry(TarEntry::sparse(
        "huge",
        GIB,
        vec![(GIB / 2, b"middle".to_vec()), (GIB, Vec::new())],
    ));
    let dest = tempfile::tempdir().unwrap();
    apply(dest.path(), &layer).unwrap();
    let meta = fs::metadata(dest.path().join("huge")).unwrap();
    assert_eq!(meta.len(), GIB);
    // A few KiB on disk, not a GiB of written zeros.
    assert!(meta.blocks() * 512 < 1 << 20, "{} blocks", meta.blocks());
    let mut file = fs::File::open(dest.path().join("huge")).unwrap();
    use std::io::{Read as _, Seek as _};
    file.seek(std::io::SeekFrom::Start(GIB / 2 - 2)).unwrap();
    let mut around = [0_u8; 10];
    file.read_exact(&mut around).unwrap();
    assert_eq!(&around, b"\0\0middle\0\0");

    // With a byte limit, the expanded size counts, not only the few header bytes.
    let limited = ExtractOptions {
        max_bytes: Some(1 << 20),
        ..ExtractOptions::default()
    };
    let dest = tempfile::tempdir().unwrap();
    let error = extract(&layer.build()[..], Compression::None, dest.path(), &limited).unwrap_err();
    assert!(
        matches!(
            error,
            tank_layer::Error::LimitExceeded {
                limit: "max_bytes",
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn nested_opaque_markers_in_one_layer_are_both_applied() {
    let dest = tempfile::tempdir().unwrap();
    apply(
        dest.path(),
        &TarBuilder::new()
            .dir("lower", 0o755)
            .file("lower/old", "x", 0o644)
            .dir("lower/esc", 0o755)
            .file("lower/esc/old", "x", 0o644),
    )
    .unwrap();
    // The outer marker removes lower/esc (this layer does not add it); the inner marker
    // then finds nothing to empty, which is not an error.
    apply(
        dest.path(),
        &TarBuilder::new()
            .opaque("lower")
            .opaque("lower/esc")
            .file("lower/new", "y", 0o644),
    )
    .unwrap();
    let mut names: Vec<String> = fs::read_dir(dest.path().join("lower"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["new"]);
}
