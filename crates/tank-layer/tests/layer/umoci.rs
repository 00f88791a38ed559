//! Comparison with `umoci unpack --rootless` (the reference) on the checked-in
//! multi-layer fixture: types, modes, content hashes, link targets and hard-link groups.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use tank_layer::{Compression, ExtractOptions, extract};

use crate::{Node, snapshot};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    let (algorithm, hex) = digest.split_once(':').expect("algorithm:hex digest");
    layout.join("blobs").join(algorithm).join(hex)
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).expect("readable JSON")).expect("valid JSON")
}

/// Groups of paths sharing an inode (hard links), as sorted path lists.
fn hardlink_groups(root: &Path, tree: &BTreeMap<String, Node>) -> Vec<Vec<String>> {
    let mut by_inode: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for (path, node) in tree {
        if matches!(node, Node::File { .. }) {
            let inode = fs::symlink_metadata(root.join(path))
                .expect("metadata")
                .ino();
            by_inode.entry(inode).or_default().push(path.clone());
        }
    }
    let mut groups: Vec<Vec<String>> = by_inode
        .into_values()
        .filter(|group| group.len() > 1)
        .collect();
    groups.sort();
    groups
}

#[test]
fn multi_layer_fixture_matches_umoci_unpack() {
    let tmp = tempfile::tempdir().unwrap();
    // umoci may take a lock inside the layout: work on a copy.
    let layout = tmp.path().join("layout");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(fixture("multi-layer"))
        .arg(&layout)
        .status()
        .expect("cp runs");
    assert!(copied.success());

    let bundle = tmp.path().join("bundle");
    let output = Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:latest", layout.display()))
        .arg(&bundle)
        .output()
        .expect("umoci is installed (Debian package umoci)");
    assert!(
        output.status.success(),
        "umoci unpack failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let expected_root = bundle.join("rootfs");

    let index = json(&layout.join("index.json"));
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .expect("manifest digest");
    let manifest = json(&blob(&layout, manifest_digest));
    let config = json(&blob(
        &layout,
        manifest["config"]["digest"].as_str().expect("config"),
    ));
    let diff_ids = config["rootfs"]["diff_ids"].as_array().expect("diff_ids");
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 3);

    let dest = tmp.path().join("tank");
    fs::create_dir(&dest).unwrap();
    for (layer, diff_id) in layers.iter().zip(diff_ids) {
        let compression =
            Compression::from_media_type(layer["mediaType"].as_str().expect("media type")).unwrap();
        let file =
            fs::File::open(blob(&layout, layer["digest"].as_str().expect("digest"))).unwrap();
        let report = extract(file, compression, &dest, &ExtractOptions::default()).unwrap();
        assert_eq!(Some(report.diff_id.as_str()), diff_id.as_str());
    }

    let ours = snapshot(&dest);
    let theirs = snapshot(&expected_root);
    assert_eq!(ours, theirs);
    assert_eq!(
        hardlink_groups(&dest, &ours),
        hardlink_groups(&expected_root, &theirs)
    );
    assert!(!ours.is_empty());
}
