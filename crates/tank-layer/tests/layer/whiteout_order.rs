//! Whiteouts apply to lower layers only: `.wh.NAME` never removes what the same layer
//! created, whichever comes first in the tar. A directory this layer created (or put
//! entries in) loses only what lower layers had in it, as if it held an opaque marker.

use std::fs;

use tank_testkit::TarBuilder;

use crate::{apply, inode, snapshot};

fn names(root: &std::path::Path) -> Vec<String> {
    snapshot(root).into_keys().collect()
}

fn lower() -> TarBuilder {
    TarBuilder::new()
        .file("f", b"lower", 0o644)
        .symlink("l", "lower-target")
        .dir("d", 0o755)
        .file("d/lower", b"l", 0o644)
        .dir("d/sub", 0o755)
        .file("d/sub/lower", b"l", 0o644)
        .file("keep", b"k", 0o644)
}

#[test]
fn a_file_this_layer_created_survives_its_whiteout_in_either_order() {
    let uppers = [
        TarBuilder::new()
            .file("f", b"upper", 0o644)
            .symlink("l", "upper-target")
            .whiteout("f")
            .whiteout("l"),
        TarBuilder::new()
            .whiteout("f")
            .whiteout("l")
            .file("f", b"upper", 0o644)
            .symlink("l", "upper-target"),
    ];
    for upper in uppers {
        let dest = tempfile::tempdir().unwrap();
        apply(dest.path(), &lower()).unwrap();
        let report = apply(dest.path(), &upper).unwrap();
        assert_eq!(report.whiteouts, 2);
        assert_eq!(
            fs::read(dest.path().join("f")).unwrap(),
            b"upper",
            "{upper:?}"
        );
        assert_eq!(
            fs::read_link(dest.path().join("l")).unwrap().to_str(),
            Some("upper-target"),
            "{upper:?}"
        );
        assert!(dest.path().join("d/sub/lower").exists(), "{upper:?}");
    }
}

#[test]
fn a_directory_this_layer_created_keeps_only_this_layers_entries_in_either_order() {
    let uppers = [
        // The whiteout after the directory and its contents.
        TarBuilder::new()
            .dir("d", 0o750)
            .file("d/new", b"n", 0o644)
            .file("d/sub/new", b"n", 0o644)
            .whiteout("d"),
        // The whiteout first: the lower tree goes, this layer's entries come after.
        TarBuilder::new()
            .whiteout("d")
            .dir("d", 0o750)
            .file("d/new", b"n", 0o644)
            .file("d/sub/new", b"n", 0o644),
        // The whiteout between this layer's entries.
        TarBuilder::new()
            .dir("d", 0o750)
            .file("d/new", b"n", 0o644)
            .whiteout("d")
            .file("d/sub/new", b"n", 0o644),
        // No entry for d itself: this layer put entries into the lower directory.
        TarBuilder::new()
            .file("d/new", b"n", 0o644)
            .file("d/sub/new", b"n", 0o644)
            .whiteout("d"),
    ];
    for upper in uppers {
        let dest = tempfile::tempdir().unwrap();
        apply(dest.path(), &lower()).unwrap();
        apply(dest.path(), &upper).unwrap();
        assert_eq!(
            names(dest.path()),
            vec!["d", "d/new", "d/sub", "d/sub/new", "f", "keep", "l"],
            "{upper:?}"
        );
    }
}

#[test]
fn a_whiteout_of_a_lower_directory_not_touched_by_this_layer_removes_it_whole() {
    let dest = tempfile::tempdir().unwrap();
    apply(dest.path(), &lower()).unwrap();
    apply(
        dest.path(),
        &TarBuilder::new().file("other", b"o", 0o644).whiteout("d"),
    )
    .unwrap();
    assert_eq!(names(dest.path()), vec!["f", "keep", "l", "other"]);
}

#[test]
fn hard_links_to_lower_files_are_this_layers_entries_under_an_opaque_marker() {
    // d/link shares its inode with the lower d/lower: the lower file goes, the link stays.
    let dest = tempfile::tempdir().unwrap();
    apply(dest.path(), &lower()).unwrap();
    let lower_inode = inode(&dest.path().join("d/lower"));
    apply(
        dest.path(),
        &TarBuilder::new().hardlink("d/link", "d/lower").opaque("d"),
    )
    .unwrap();
    assert_eq!(names(dest.path()), vec!["d", "d/link", "f", "keep", "l"]);
    assert_eq!(inode(&dest.path().join("d/link")), lower_inode);
    assert_eq!(fs::read(dest.path().join("d/link")).unwrap(), b"l");
}

#[test]
fn opaque_markers_act_when_read_so_later_links_cannot_reach_hidden_files() {
    // As containerd and Docker apply them: the lower d/lower is gone once the marker is
    // read, so a later hard link to it names nothing.
    let dest = tempfile::tempdir().unwrap();
    apply(dest.path(), &lower()).unwrap();
    let result = apply(
        dest.path(),
        &TarBuilder::new().opaque("d").hardlink("d/link", "d/lower"),
    );
    assert!(
        matches!(result, Err(tank_layer::Error::InvalidHardlink { .. })),
        "{result:?}"
    );
    assert!(!dest.path().join("d/lower").exists());
}
