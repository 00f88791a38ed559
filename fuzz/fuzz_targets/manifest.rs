//! Fuzz target `manifest`: the input is a manifest response (first line `Content-Type`,
//! second line `Docker-Content-Digest`, both empty for none, then the body). It goes
//! through tank-registry's digest check and manifest parsing, and its body through
//! tank-image's config parsing and `RunSpec::from_config`. Nothing may panic; a manifest
//! that is accepted must be the body under its sha256 digest, agree with the announced
//! digest, be of a supported type and never schema 1; a config must survive its JSON round
//! trip and convert by the image-spec rules. The checks are in
//! crates/tank-registry/tests/registry/manifest_invariants.rs and
//! crates/tank-image/tests/image/fuzz_config/invariants.rs, shared with the corpus replay tests.
#![no_main]

use std::fs;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tank_layer::fuzzing::sweep_stale;

#[path = "../../crates/tank-registry/tests/registry/manifest_invariants.rs"]
mod manifest_invariants;

#[path = "../../crates/tank-image/tests/image/fuzz_config/invariants.rs"]
mod config_invariants;

const PREFIX: &str = "tank-fuzz-manifest-";

static ROOTFS: OnceLock<PathBuf> = OnceLock::new();

fn rootfs_path() -> PathBuf {
    std::env::temp_dir().join(format!("{PREFIX}{}", std::process::id()))
}

extern "C" fn remove_rootfs() {
    let _ = fs::remove_dir_all(rootfs_path());
}

fn init() {
    sweep_stale(&std::env::temp_dir(), PREFIX);
    let rootfs = rootfs_path();
    let _ = fs::remove_dir_all(&rootfs);
    config_invariants::make_rootfs(&rootfs).expect("writing the rootfs user database");
    assert!(ROOTFS.set(rootfs).is_ok(), "init runs once");
    // SAFETY: registers a plain function; libFuzzer ends a time-bounded run with exit(),
    // which runs it.
    unsafe {
        libc::atexit(remove_rootfs);
    }
}

fuzz_target!(init: init(), |data: &[u8]| {
    manifest_invariants::check(data);
    if let Some(response) = manifest_invariants::split(data) {
        config_invariants::check(response.body, ROOTFS.get().expect("init ran"));
    }
});
