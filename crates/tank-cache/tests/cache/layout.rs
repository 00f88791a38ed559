//! The cache directory: where it is, what `open` creates, which layout versions it reads.

use std::ffi::OsString;
use std::path::PathBuf;

use tank_cache::{Cache, CacheDir, Error, LAYOUT_VERSION};

/// One row: an explicit directory, the environment, the expected cache directory.
type Case = (
    Option<&'static str>,
    &'static [(&'static str, &'static str)],
    Option<&'static str>,
);

fn resolve(explicit: Option<&str>, env: &[(&str, &str)]) -> Option<PathBuf> {
    let env: Vec<(String, OsString)> = env
        .iter()
        .map(|(name, value)| (name.to_string(), OsString::from(value)))
        .collect();
    CacheDir::resolve_with(explicit.map(PathBuf::from), |name| {
        env.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    })
    .ok()
}

#[test]
fn the_cache_directory_follows_option_then_environment() {
    const ALL: [(&str, &str); 3] = [
        ("TANK_CACHE", "/t"),
        ("XDG_CACHE_HOME", "/x"),
        ("HOME", "/h"),
    ];
    let cases: [Case; 7] = [
        (Some("/opt"), &ALL, Some("/opt")),
        (None, &ALL, Some("/t")),
        (None, &ALL[1..], Some("/x/tank")),
        (None, &ALL[2..], Some("/h/.cache/tank")),
        (
            None,
            &[("TANK_CACHE", ""), ("XDG_CACHE_HOME", ""), ("HOME", "/h")],
            Some("/h/.cache/tank"),
        ),
        (
            None,
            &[("XDG_CACHE_HOME", "relative"), ("HOME", "/h")],
            Some("/h/.cache/tank"),
        ),
        (None, &[], None),
    ];
    for (explicit, env, expected) in cases {
        assert_eq!(
            resolve(explicit, env),
            expected.map(PathBuf::from),
            "{explicit:?} {env:?}"
        );
    }
    assert!(matches!(
        CacheDir::resolve_with(None, |_| None),
        Err(Error::NoCacheDir)
    ));
}

#[test]
fn open_creates_the_layout_and_reads_older_versions_only() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let root = dir.path().join("nested/cache");
    Cache::open(&root).expect("open");
    for sub in ["blobs/sha256", "blobs/sha512", "rootfs/sha256", "refs"] {
        assert!(root.join(sub).is_dir(), "{sub}");
    }
    assert_eq!(
        std::fs::read_to_string(root.join("layout-version")).expect("read"),
        format!("{LAYOUT_VERSION}\n")
    );
    Cache::open(&root).expect("reopen the same version");

    std::fs::write(
        root.join("layout-version"),
        format!("{}\n", LAYOUT_VERSION + 1),
    )
    .expect("write");
    let error = Cache::open(&root).expect_err("newer layout");
    assert!(
        matches!(error, Error::NewerLayout { found, .. } if found == LAYOUT_VERSION + 1),
        "{error:?}"
    );
    std::fs::write(root.join("layout-version"), "one").expect("write");
    let error = Cache::open(&root).expect_err("garbage");
    assert!(matches!(error, Error::BadLayoutVersion { .. }), "{error:?}");
}
