//! Unit tests of layer building: entry order, PAX records and refused paths.

use super::*;

fn tar_paths(blob: &LayerBlob) -> Vec<String> {
    let bytes = blob.blob().to_vec().unwrap();
    let decoded = flate2::read::MultiGzDecoder::new(&bytes[..]);
    let mut archive = tar::Archive::new(decoded);
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            String::from_utf8(entry.path_bytes().into_owned()).unwrap()
        })
        .collect()
}

#[test]
fn entries_are_sorted_parents_first_and_whiteouts_named() {
    let entries = [
        LayerEntry::file("a/b", "x", 0o644),
        LayerEntry::file("a.c", "y", 0o644),
        LayerEntry::dir("/a/", 0o755),
        LayerEntry::whiteout("a/gone"),
        LayerEntry::new("d", EntryKind::Opaque, 0o755),
    ];
    let options = LayerOptions {
        in_memory: true,
        ..LayerOptions::default()
    };
    let blob = layer_from_entries(&entries, &options).unwrap();
    assert_eq!(
        tar_paths(&blob),
        ["a", "a/b", "a/.wh.gone", "a.c", "d/.wh..wh..opq"]
    );
}

#[test]
fn pax_record_lengths_count_their_own_digits() {
    // A record of about 100 bytes: its length's digit count changes the length itself.
    let entries = [LayerEntry::file("f", "", 0o644).with_xattr("user.k", vec![b'v'; 80])];
    let options = LayerOptions {
        in_memory: true,
        ..LayerOptions::default()
    };
    let blob = layer_from_entries(&entries, &options).unwrap();
    let bytes = blob.blob().to_vec().unwrap();
    let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(&bytes[..]));
    let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
    let extensions: Vec<(String, Vec<u8>)> = entry
        .pax_extensions()
        .unwrap()
        .unwrap()
        .map(|extension| {
            let extension = extension.unwrap();
            (
                extension.key().unwrap().to_owned(),
                extension.value_bytes().to_vec(),
            )
        })
        .collect();
    assert_eq!(
        extensions,
        vec![("SCHILY.xattr.user.k".to_owned(), vec![b'v'; 80])]
    );
}

#[test]
fn empty_and_climbing_paths_are_refused() {
    let options = LayerOptions {
        in_memory: true,
        ..LayerOptions::default()
    };
    for bad in ["./", "a/../../etc/passwd"] {
        let error = layer_from_entries(&[LayerEntry::dir(bad, 0o755)], &options).unwrap_err();
        assert!(
            matches!(error, Error::InvalidLayerEntry { ref path, .. } if path == bad),
            "{error}"
        );
    }
}
