//! The `reference` fuzz target's corpus (fuzz/corpus/reference/), replayed as a normal test
//! with the invariants the fuzz target asserts (fuzz_invariants.rs). The seeds are the inputs
//! of the Go test tables ported in this suite; other files are inputs the fuzzer kept.

use std::fs;
use std::path::PathBuf;

use crate::fuzz_invariants::check;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/reference")
}

#[test]
fn every_corpus_input_keeps_the_invariants() {
    let dir = corpus_dir();
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("fuzz corpus {} missing: {error}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 100,
        "fuzz corpus {} holds {} inputs, expected the seeds",
        dir.display(),
        files.len()
    );
    let mut parsed = 0;
    for path in &files {
        let bytes = fs::read(path).unwrap();
        let Ok(input) = std::str::from_utf8(&bytes) else {
            continue;
        };
        if check(input) {
            parsed += 1;
        }
    }
    // The Go tables hold valid and invalid inputs alike: both sides are exercised.
    assert!(parsed >= 50, "only {parsed} corpus inputs parse");
    assert!(
        files.len() - parsed >= 50,
        "only {} corpus inputs are refused",
        files.len() - parsed
    );
}

#[test]
fn the_invariants_hold_for_tricky_forms() {
    for (input, parses) in [
        ("alpine", true),
        ("docker.io/example.com/app", true),
        (
            "index.docker.io/library/debian@sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582",
            true,
        ),
        ("[::1]:5000/team/app:1.2", true),
        (
            "localhost/app:tag@sha512:cfc4d5dd9aa9c30b3e0f2b5f3b3f1e1d0b2d3b5f9a0fa3e3c8b0c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0",
            true,
        ),
        // The name `sha256` tagged with the hex: a reference, and a digest too.
        (
            "sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582",
            true,
        ),
        (
            "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
            true,
        ),
        (
            "e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582",
            false,
        ),
        // An upper-case first component is a registry; upper case in the path is refused.
        ("Foo/bar", true),
        ("foo/Bar", false),
        ("", false),
    ] {
        assert_eq!(check(input), parses, "{input:?}");
    }
}
