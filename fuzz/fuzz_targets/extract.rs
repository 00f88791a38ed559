//! Fuzz target `extract`: the input is an uncompressed tar stream (header checksums are
//! repaired first, so mutations get past the checksum check), extracted with
//! `tank_layer::extract` into a sandbox whose lower layer holds symlinks out of `dest`.
//! It may succeed or fail; it must not panic, and nothing outside `dest` may change or
//! appear (the check in tank-layer's hidden `fuzzing` module, shared with the corpus replay
//! test).
#![no_main]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tank_layer::fuzzing::{Sandbox, remove_tree, sweep_stale};

const PREFIX: &str = "tank-fuzz-extract-";
/// Largest file an extraction may write: a GNU sparse header can describe terabytes of
/// zeros in a few bytes, and the sandbox may be in RAM (/dev/shm).
const MAX_FILE_SIZE: u64 = 1 << 20;

static SANDBOX: OnceLock<Sandbox> = OnceLock::new();

/// /dev/shm when it is there (cheap tmpfs), else the system's temporary directory.
fn scratch() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

fn init() {
    // SAFETY: setting a resource limit and ignoring SIGXFSZ (so an oversized write fails
    // with EFBIG instead of killing the process) touch no Rust-visible state.
    unsafe {
        let limit = libc::rlimit {
            rlim_cur: MAX_FILE_SIZE,
            rlim_max: MAX_FILE_SIZE,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0, "setrlimit");
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let scratch = scratch();
    sweep_stale(&scratch, PREFIX);
    let base = scratch.join(format!("{PREFIX}{}", std::process::id()));
    let _ = remove_tree(&base);
    fs::create_dir(&base).expect("creating the sandbox directory");
    let sandbox = Sandbox::new(&base).expect("building the sandbox");
    assert!(SANDBOX.set(sandbox).is_ok(), "init runs once");
    // SAFETY: registers a plain function; libFuzzer ends a time-bounded run with exit(),
    // which runs it (a crash does not: the next run's sweep removes that sandbox).
    unsafe {
        libc::atexit(remove_sandbox);
    }
}

extern "C" fn remove_sandbox() {
    let base = scratch().join(format!("{PREFIX}{}", std::process::id()));
    let _ = remove_tree(&base);
}

fuzz_target!(init: init(), |data: &[u8]| {
    let sandbox = SANDBOX.get().expect("init ran");
    if let Err(violation) = sandbox.run(data) {
        panic!("containment broken: {violation}");
    }
});
