//! The local inputs the client reads are capped too: `registries.conf` (and drop-ins),
//! credentials files, and the output of `docker-credential-*` helpers (which are also killed
//! after their timeout, whatever they print).

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use tank_registry::{CONFIG_FILE_LIMIT, CredentialStore, Error, Registries};

/// A file just over the cap: valid content padded with comment or whitespace.
fn oversized(path: &Path, start: &str) {
    let mut text = start.to_owned();
    text.push_str(&" ".repeat(CONFIG_FILE_LIMIT as usize + 1 - text.len()));
    fs::write(path, text).unwrap();
}

#[test]
fn a_registries_conf_over_the_cap_is_refused_naming_file_and_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registries.conf");
    oversized(&path, "unqualified-search-registries = []\n");
    let error = Registries::from_file(&path).unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, Error::RegistriesConf { .. }), "{error:?}");
    assert!(
        text.contains(&path.display().to_string())
            && text.contains(&format!("{CONFIG_FILE_LIMIT}-byte limit")),
        "{text}"
    );
    // Exactly at the cap is fine.
    let mut exact = "unqualified-search-registries = []\n".to_owned();
    exact.push_str(&" ".repeat(CONFIG_FILE_LIMIT as usize - exact.len()));
    fs::write(&path, exact).unwrap();
    Registries::from_file(&path).expect("a file at the cap is read");
}

#[test]
fn a_credentials_file_over_the_cap_is_refused_naming_file_and_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    oversized(&path, "{\"auths\":{}}");
    let store = CredentialStore::from_files(Some(path.clone()), vec![]);
    match store.get("ghcr.io") {
        Err(Error::CredentialsFile {
            path: named,
            source,
        }) => {
            assert_eq!(named, path);
            assert_eq!(source.kind(), std::io::ErrorKind::FileTooLarge);
            assert!(
                source
                    .to_string()
                    .contains(&format!("{CONFIG_FILE_LIMIT}-byte limit")),
                "{source}"
            );
        }
        other => panic!("{other:?}"),
    }
}

fn helper_store(dir: &Path, script: &str) -> CredentialStore {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-loud");
    fs::write(&helper, script).unwrap();
    fs::set_permissions(&helper, fs::Permissions::from_mode(0o755)).unwrap();
    let config = dir.join("config.json");
    fs::write(&config, r#"{"credsStore":"loud"}"#).unwrap();
    CredentialStore::from_files(Some(config), vec![]).with_helper_dir(bin)
}

#[test]
fn helper_output_over_the_cap_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    // Two MiB of output, then a clean exit.
    let store = helper_store(
        dir.path(),
        "#!/bin/sh\ncat > /dev/null\nhead -c 2097152 /dev/zero | tr '\\0' ' '\nexit 0\n",
    );
    match store.get("ghcr.io") {
        Err(Error::CredentialHelper { reason, .. }) => {
            assert!(
                reason.contains("larger than the 1048576-byte limit"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_helper_printing_without_end_is_killed_at_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let store = helper_store(dir.path(), "#!/bin/sh\ncat > /dev/null\nexec yes\n")
        .with_helper_timeout(Duration::from_millis(500));
    let started = Instant::now();
    match store.get("ghcr.io") {
        Err(Error::CredentialHelper { reason, .. }) => {
            assert!(reason.contains("killed"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the helper ran for {:?}",
        started.elapsed()
    );
}
