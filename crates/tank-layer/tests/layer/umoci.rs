//! Comparison with `umoci unpack --rootless` (the reference) on the checked-in
//! multi-layer fixture and on every layer-rule fixture under `fixtures/layers/`: types,
//! modes, sizes, content hashes, link targets, mtimes, `user.*` xattrs and hard-link groups.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use tank_layer::{Compression, ExtractOptions, extract};
use tank_testkit::{Kind, LAYER_FIXTURE_NAMES, LAYER_FIXTURES_DIR, Tree};

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

// ---------------------------------------------------------------------------------------------
// One comparison per layer-rule fixture under `fixtures/layers/`.
// ---------------------------------------------------------------------------------------------

/// The tree below `root`, as the comparison sees it.
fn full_snapshot(root: &Path) -> Tree {
    Tree::snapshot(root).expect("readable tree")
}

/// The manifest tagged `tag` in the layout's `index.json`.
fn tagged_manifest(layout: &Path, tag: &str) -> serde_json::Value {
    let index = json(&layout.join("index.json"));
    let descriptor = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|descriptor| {
            descriptor["annotations"]["org.opencontainers.image.ref.name"].as_str() == Some(tag)
        })
        .unwrap_or_else(|| panic!("{} has no tag {tag}", layout.display()));
    json(&blob(
        layout,
        descriptor["digest"].as_str().expect("digest"),
    ))
}

/// Applies every layer of `layout:tag` with tank onto `dest`, checking each diff_id.
fn tank_unpack(layout: &Path, tag: &str, dest: &Path) -> Result<(), String> {
    fs::create_dir(dest).unwrap();
    let manifest = tagged_manifest(layout, tag);
    let config = json(&blob(
        layout,
        manifest["config"]["digest"].as_str().expect("config"),
    ));
    let diff_ids = config["rootfs"]["diff_ids"].as_array().expect("diff_ids");
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), diff_ids.len());
    for (layer, diff_id) in layers.iter().zip(diff_ids) {
        let compression =
            Compression::from_media_type(layer["mediaType"].as_str().expect("media type")).unwrap();
        let file = fs::File::open(blob(layout, layer["digest"].as_str().expect("digest"))).unwrap();
        let report = extract(file, compression, dest, &ExtractOptions::default())
            .map_err(|error| format!("tank extract failed: {error}"))?;
        assert_eq!(Some(report.diff_id.as_str()), diff_id.as_str());
    }
    Ok(())
}

/// `umoci unpack --rootless` of `layout:tag` (on a copy: umoci may write into the layout);
/// returns the rootfs, or umoci's error.
fn umoci_unpack(layout: &Path, tag: &str, work: &Path) -> Result<PathBuf, String> {
    tank_testkit::umoci_unpack(layout, tag, work).map_err(|error| error.to_string())
}

/// Where umoci's result is not what the OCI image-spec asks for, this rewrites it into what
/// the spec asks for (each case says why); every other rule is compared as umoci leaves it.
fn correct_umoci(rule: &str, tree: &mut Tree) {
    match rule {
        "opaque-after" => {
            // umoci is wrong here: when the opaque marker comes after `o/sub/` (which this layer
            // lists with mtime 0), umoci deletes the lower `o/sub/lower` from it afterwards and
            // leaves the directory with the time of that deletion. The layer says mtime 0,
            // and a directory's mtime is applied after its contents (tank does).
            let sub = tree.entries.get_mut("o/sub").expect("umoci keeps o/sub");
            assert_ne!(
                sub.mtime, 0,
                "umoci now keeps the mtime: drop this correction"
            );
            sub.mtime = 0;
        }
        "devices" => {
            // Unprivileged, umoci --rootless writes an empty regular file (with the node's
            // mode) where a character or block device should be: a file that is not the
            // device is not what the layer says, so tank skips and counts them instead, as
            // DESIGN.md asks ("device nodes are skipped and counted").
            for path in ["dev/null", "dev/sda"] {
                let placeholder = tree.entries.remove(path).expect("umoci's placeholder");
                assert_eq!(placeholder.kind, Kind::File, "{path}");
                assert_eq!(placeholder.size, Some(0), "{path}");
            }
            // The fifo is created by both (mkfifo needs no privilege) and compared as is.
        }
        _ => {}
    }
}

/// Every layer-rule fixture, applied by tank and by `umoci unpack --rootless`, gives the same
/// tree: kinds, modes (setuid, setgid, sticky included), sizes, content hashes, link targets,
/// mtimes, `user.*` xattrs, device numbers and hard-link groups. Every failing rule is
/// reported by name.
#[test]
fn layer_rule_fixtures_match_umoci_unpack() {
    let mut failures = Vec::new();
    for rule in LAYER_FIXTURE_NAMES {
        let layout = fixture(&format!("{LAYER_FIXTURES_DIR}/{rule}"));
        assert!(
            layout.is_dir(),
            "{} missing: run `cargo xtask fixtures`",
            layout.display()
        );
        // A directory on the target's filesystem, which supports user.* xattrs (as /tmp does
        // here; both are ext4).
        let work = tempfile::tempdir().unwrap();
        let ours_dir = work.path().join("tank");
        if let Err(error) = tank_unpack(&layout, "latest", &ours_dir) {
            failures.push(format!("{rule}: {error}"));
            continue;
        }
        // umoci cannot read zstd layers: it unpacks the gzip twin of the same tars.
        let umoci_tag = if *rule == "zstd" { "gzip" } else { "latest" };
        let theirs_dir = match umoci_unpack(&layout, umoci_tag, work.path()) {
            Ok(rootfs) => rootfs,
            // umoci 0.4.7 cannot unpack GNU sparse entries (type 'S', which Go's archive/tar
            // hands over as is): "unknown typeflag '\x53'". GNU tar, libarchive and Go's
            // reader all read them, so tank does; its result is checked against the content
            // the fixture describes in `sparse_fixture_reads_back_with_holes_as_zeros`.
            Err(error) if *rule == "sparse" && error.contains("unknown typeflag '\\x53'") => {
                continue;
            }
            Err(error) => {
                failures.push(format!("{rule}: {error}"));
                continue;
            }
        };
        let ours = full_snapshot(&ours_dir);
        let mut expected = full_snapshot(&theirs_dir);
        correct_umoci(rule, &mut expected);
        assert!(
            !expected.entries.is_empty(),
            "{rule}: umoci unpacked nothing"
        );
        let diff = ours.differences(&expected, "tank", "umoci");
        if !diff.is_empty() {
            failures.push(format!("{rule}:\n{}", diff.join("\n")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rules differ from umoci:\n{}",
        failures.len(),
        LAYER_FIXTURE_NAMES.len(),
        failures.join("\n")
    );
}

/// The sparse fixture, which umoci cannot unpack: sizes and contents (holes as zeros) are
/// what its GNU sparse maps describe.
#[test]
fn sparse_fixture_reads_back_with_holes_as_zeros() {
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("tank");
    tank_unpack(&fixture("layers/sparse"), "latest", &dest).unwrap();
    let mut middle = vec![0_u8; 8192];
    middle[2048..2560].fill(b'a');
    middle[5120..5129].copy_from_slice(b"tail data");
    let mut leading = vec![0_u8; 3591];
    leading[3584..].copy_from_slice(b"the end");
    let expected: Vec<(&str, Vec<u8>)> = vec![
        ("sparse/all-hole", vec![0_u8; 10000]),
        ("sparse/leading-hole", leading),
        ("sparse/middle", middle),
        ("sparse/no-hole", vec![b'z'; 600]),
    ];
    let Tree {
        entries: tree,
        hardlinks: groups,
    } = full_snapshot(&dest);
    for (path, content) in &expected {
        assert_eq!(fs::read(dest.join(path)).unwrap(), *content, "{path}");
        let node = &tree[*path];
        assert_eq!(node.kind, Kind::File, "{path}");
        assert_eq!(node.size, Some(content.len() as u64), "{path}");
        assert_eq!(node.mode, Some(0o644), "{path}");
    }
    assert_eq!(tree.len(), expected.len() + 1);
    assert!(groups.is_empty());

    // umoci still refuses them; if it learns sparse files, compare with it instead.
    let refused = umoci_unpack(&fixture("layers/sparse"), "latest", work.path()).unwrap_err();
    assert!(refused.contains("unknown typeflag"), "{refused}");
}

/// The comparison is not vacuous where it matters: the trees carry the special mode bits,
/// the `user.*` xattrs (the temporary filesystem supports them), mtimes and hard-link groups
/// that the fixtures ask for.
#[test]
fn rule_fixtures_carry_what_is_compared() {
    let work = tempfile::tempdir().unwrap();
    let unpack = |rule: &str| {
        let dest = work.path().join(rule);
        tank_unpack(&fixture(&format!("layers/{rule}")), "latest", &dest).unwrap();
        let tree = full_snapshot(&dest);
        (tree.entries, tree.hardlinks)
    };
    let (modes, _) = unpack("modes");
    assert_eq!(modes["bin/setuid"].mode, Some(0o4755));
    assert_eq!(modes["bin/setgid"].mode, Some(0o2755));
    assert_eq!(modes["bin/all-bits"].mode, Some(0o7777));
    assert_eq!(modes["tmp"].mode, Some(0o1777));
    assert_eq!(modes["shared"].mode, Some(0o2775));

    let (xattrs, _) = unpack("xattrs");
    let attributes = &xattrs["x/file"].xattrs;
    assert_eq!(attributes["user.tank"], "value");
    assert_eq!(attributes["user.binary"], "\0\u{1}\u{2}\\xff");
    assert_eq!(xattrs["x"].xattrs["user.dir"], "on a directory");

    let (mtimes, _) = unpack("mtimes");
    assert_eq!(mtimes["old"].mtime, 1_500_000_000);
    assert_eq!(mtimes["old/sub"].mtime, 1_700_000_000);
    assert_eq!(mtimes["old/link"].mtime, 1_400_000_000);
    assert_eq!(mtimes["future"].mtime, 4_000_000_000);

    let (_, groups) = unpack("hardlinks");
    assert_eq!(
        groups,
        vec![
            vec!["data/absolute", "data/lower", "data/to-lower"],
            vec!["data/chain", "data/new", "data/to-new"],
        ]
    );

    let (non_utf8, _) = unpack("non-utf8");
    let names: Vec<&str> = non_utf8.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        vec!["caf\\xe9", "r\\xe9pertoire", "r\\xe9pertoire/\\xff\\xfe"]
    );
}

/// Devices: tank skips and counts them by default; umoci --rootless writes empty placeholder
/// files for them. Both create the fifo.
#[test]
fn device_and_fifo_differences_from_umoci() {
    let work = tempfile::tempdir().unwrap();
    let layout = fixture("layers/devices");
    let dest = work.path().join("tank");
    fs::create_dir(&dest).unwrap();
    let manifest = tagged_manifest(&layout, "latest");
    let layer = &manifest["layers"][0];
    let file = fs::File::open(blob(&layout, layer["digest"].as_str().unwrap())).unwrap();
    let report = extract(file, Compression::Gzip, &dest, &ExtractOptions::default()).unwrap();
    assert_eq!(report.skipped_devices, 2);
    assert_eq!(report.devices, 1);
    let ours = full_snapshot(&dest).entries;
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        vec!["dev", "dev/fifo", "dev/regular"]
    );
    assert_eq!(ours["dev/fifo"].kind, Kind::Fifo);

    let rootfs = umoci_unpack(&layout, "latest", work.path()).unwrap();
    let theirs = full_snapshot(&rootfs).entries;
    assert_eq!(theirs["dev/fifo"].kind, Kind::Fifo);
    assert_eq!(theirs["dev/null"].kind, Kind::File);
    assert_eq!(theirs["dev/sda"].kind, Kind::File);
}
