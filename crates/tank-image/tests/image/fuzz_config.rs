//! The `manifest` fuzz target's corpus (fuzz/corpus/manifest/), replayed as a normal test
//! with the config invariants the target asserts on each input's body
//! (fuzz_config/invariants.rs). The `seed-config-*` files are image configs from fixtures/
//! and two written for the conversion rules (named and numeric users, env, workdir, stop
//! signal); the manifest seeds are replayed too, as bodies that are no configs.

mod invariants;

use std::fs;
use std::path::PathBuf;

#[test]
fn every_manifest_corpus_body_keeps_the_config_invariants() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/manifest");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("fuzz corpus {} missing: {error}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "fuzz corpus {} is empty", dir.display());
    let rootfs = tempfile::tempdir().unwrap();
    invariants::make_rootfs(rootfs.path()).unwrap();
    let mut converted = Vec::new();
    for path in &files {
        let input = fs::read(path).unwrap();
        // The body follows the two header lines (see the registry's manifest_invariants.rs).
        let mut parts = input.splitn(3, |&byte| byte == b'\n');
        let (Some(_), Some(_), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if invariants::check(body, rootfs.path()) {
            converted.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    for seed in ["seed-config-user.json", "seed-config-numeric.json"] {
        assert!(
            converted.iter().any(|name| name == seed),
            "{seed} gave no RunSpec"
        );
    }
    assert!(
        !converted.iter().any(|name| name.contains("manifest")),
        "a manifest converted as a config: {converted:?}"
    );
}
