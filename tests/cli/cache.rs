//! `tank cache ls | gc | verify | path` on a cache filled by `tank pull`.

use std::fs;
use std::path::{Path, PathBuf};

use tank_testkit::fixtures_dir;

use crate::{Scratch, json, layout_layer_digests, ok, registry_seeded, run, tank};

/// The ref sidecar files below `dir`.
fn sidecars(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(sidecars(&path));
        } else if path
            .extension()
            .is_some_and(|extension| extension == "json")
        {
            out.push(path);
        }
    }
    out.sort();
    out
}

#[test]
fn ls_gc_verify_and_path() {
    let scratch = Scratch::new();
    let registry = registry_seeded(&["single", "multi-platform"]);
    let single = format!("{}/fixtures/single:latest", registry.host());
    let index = format!("{}/fixtures/multi-platform:latest", registry.host());
    let pulled_single = json(&ok(scratch.tank("pull", &["--json", &single])));
    let pulled_arm = json(&ok(
        scratch.tank("pull", &["--json", "--platform", "linux/arm64", &index])
    ));
    let single_digest = pulled_single["manifest_digest"].as_str().unwrap();
    let arm_digest = pulled_arm["manifest_digest"].as_str().unwrap();

    // The table: one line per pulled ref, with its platform and manifest digest (shortened).
    let table = ok(scratch.tank("cache", &["ls"]));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("REFERENCE"), "{table}");
    let line_of = |name: &str| {
        *lines
            .iter()
            .find(|line| line.contains(name))
            .unwrap_or_else(|| panic!("{name} not listed: {table}"))
    };
    let single_line = line_of(&single);
    assert!(single_line.contains(&single_digest[..19]), "{single_line}");
    assert!(
        single_line.contains(pulled_single["platform"].as_str().unwrap()),
        "{single_line}"
    );
    let arm_line = line_of(&index);
    assert!(arm_line.contains("linux/arm64"), "{arm_line}");
    assert!(arm_line.contains(&arm_digest[..19]), "{arm_line}");

    let listed = json(&ok(scratch.tank("cache", &["ls", "--json"])));
    let items = listed.as_array().unwrap();
    assert_eq!(items.len(), 2, "{listed}");
    let item = |repository: &str| {
        items
            .iter()
            .find(|item| item["repository"] == repository)
            .unwrap_or_else(|| panic!("{repository} not in {listed}"))
    };
    let single_item = item("fixtures/single");
    assert_eq!(single_item["manifest_digest"], single_digest);
    assert_eq!(single_item["registry"], registry.host().as_str());
    assert_eq!(single_item["tag_or_digest"], "latest");
    assert_eq!(single_item["platform"], pulled_single["platform"]);
    assert!(single_item["blob_bytes"].as_u64().unwrap() > 0);
    let arm_item = item("fixtures/multi-platform");
    assert_eq!(arm_item["manifest_digest"], arm_digest);
    assert_eq!(arm_item["platform"], pulled_arm["platform"]);
    assert_eq!(arm_item["index_digest"], pulled_arm["index_digest"]);

    // Everything is referenced: nothing to collect.
    let dry = ok(scratch.tank("cache", &["gc", "--dry-run"]));
    assert_eq!(
        dry.trim(),
        "would remove 0 blobs and 0 rootfs, 0 B",
        "{dry}"
    );
    let verified = ok(scratch.tank("cache", &["verify"]));
    assert!(verified.contains(" 0 corrupt"), "{verified}");

    // Forget the single image: gc removes its layer and its rootfs, and nothing else.
    let single_rootfs = PathBuf::from(pulled_single["rootfs"].as_str().unwrap());
    let arm_rootfs = PathBuf::from(pulled_arm["rootfs"].as_str().unwrap());
    let layer = layout_layer_digests(&fixtures_dir().join("single"), "latest")
        .pop()
        .unwrap();
    let layer_blob = scratch
        .cache()
        .join("blobs/sha256")
        .join(&layer["sha256:".len()..]);
    assert!(layer_blob.is_file());
    let refs = sidecars(&scratch.cache().join("refs"));
    assert_eq!(refs.len(), 2, "{refs:?}");
    let single_ref = refs
        .iter()
        .find(|path| path.to_string_lossy().contains("single"))
        .expect("a sidecar for the single image");
    fs::remove_file(single_ref).unwrap();

    let dry = ok(scratch.tank("cache", &["gc", "--dry-run"]));
    assert!(dry.contains(&format!("would remove blob {layer}")), "{dry}");
    assert!(
        dry.contains(&format!("would remove rootfs {single_digest}")),
        "{dry}"
    );
    assert!(single_rootfs.is_dir() && layer_blob.is_file());

    let collected = ok(scratch.tank("cache", &["gc"]));
    assert!(
        collected.contains(&format!("removed blob {layer}")),
        "{collected}"
    );
    assert!(
        collected.contains(&format!("removed rootfs {single_digest}")),
        "{collected}"
    );
    assert!(!collected.contains(arm_digest), "{collected}");
    assert!(!layer_blob.exists());
    assert!(!single_rootfs.exists());
    assert!(arm_rootfs.join("etc/arch").is_file());
    let listed = json(&ok(scratch.tank("cache", &["ls", "--json"])));
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let dry = ok(scratch.tank("cache", &["gc", "--dry-run"]));
    assert!(
        dry.starts_with("would remove 0 blobs and 0 rootfs"),
        "{dry}"
    );

    // `cache path` prints the --cache directory, else $TANK_CACHE.
    let path = ok(scratch.tank("cache", &["path"]));
    assert_eq!(path.trim_end(), scratch.cache().to_str().unwrap());
    let elsewhere = scratch.home().join("elsewhere");
    let path = ok(run(tank(scratch.home())
        .env("TANK_CACHE", &elsewhere)
        .args(["cache", "path"])));
    assert_eq!(path.trim_end(), elsewhere.to_str().unwrap());
}
