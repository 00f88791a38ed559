//! Unit tests of the credential store: file formats, key matching, precedence and helpers.

use super::*;

use std::collections::HashMap;
use std::fs;

use base64::Engine as _;
use serde_json::json;
use tempfile::TempDir;

fn basic(username: &str, password: &str) -> Credential {
    Credential::Basic {
        username: username.to_owned(),
        password: password.to_owned(),
    }
}

fn encode(user_and_password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(user_and_password)
}

/// A temporary directory holding credential files and fake helpers.
struct Setup {
    dir: TempDir,
}

impl Setup {
    fn new() -> Setup {
        Setup {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `document` as JSON to `name` and returns its path.
    fn file(&self, name: &str, document: serde_json::Value) -> PathBuf {
        let path = self.path(name);
        fs::create_dir_all(path.parent().expect("a parent")).expect("parent directory");
        fs::write(&path, serde_json::to_vec(&document).expect("json")).expect("write file");
        path
    }

    /// A Docker config holding `auths`.
    fn docker_config(&self, auths: serde_json::Value) -> PathBuf {
        self.file("docker/config.json", json!({ "auths": auths }))
    }

    /// A store with only a Docker config, and this setup's helper directory.
    fn docker_store(&self, auths: serde_json::Value) -> CredentialStore {
        CredentialStore::from_files(Some(self.docker_config(auths)), vec![])
            .with_helper_dir(self.path("bin"))
    }

    /// Installs `docker-credential-fake`, which logs its arguments and input to
    /// `fake.log` and answers by server URL.
    fn install_fake_helper(&self) {
        let log = self.path("fake.log");
        let script = format!(
            r#"#!/bin/sh
url=$(cat)
printf '%s %s\n' "$*" "$url" >> '{log}'
case "$url" in
  ghcr.io) printf '{{"ServerURL":"%s","Username":"octo","Secret":"s3cret:with:colons"}}' "$url" ;;
  https://index.docker.io/v1/) printf '{{"ServerURL":"%s","Username":"<token>","Secret":"refresh-abc"}}' "$url" ;;
  empty.example) printf '{{"ServerURL":"%s","Username":"","Secret":""}}' "$url" ;;
  broken.example) echo "garbage: the keychain exploded"; exit 3 ;;
  notjson.example) echo 'Username=me Secret=hunter2' ;;
  slow.example) exec sleep 30 ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
"#,
            log = log.display()
        );
        self.install_helper("fake", &script);
    }

    fn install_helper(&self, name: &str, script: &str) {
        use std::os::unix::fs::PermissionsExt as _;
        let bin = self.path("bin");
        fs::create_dir_all(&bin).expect("helper directory");
        let path = bin.join(format!("docker-credential-{name}"));
        fs::write(&path, script).expect("write helper");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
            .expect("make helper executable");
    }

    /// What the fake helper was asked, one `args url` line per run.
    fn helper_log(&self) -> Vec<String> {
        match fs::read_to_string(self.path("fake.log")) {
            Ok(text) => text.lines().map(str::to_owned).collect(),
            Err(_) => Vec::new(),
        }
    }
}

fn expect_entry_error(
    result: Result<Option<Credential>, Error>,
    path: &Path,
    key: &str,
    reason: &str,
) {
    match result {
        Err(Error::CredentialsEntry {
            path: named,
            registry,
            reason: actual,
        }) => {
            assert_eq!(named, path);
            assert_eq!(registry, key);
            assert!(actual.contains(reason), "{actual:?} lacks {reason:?}");
        }
        other => panic!("expected a CredentialsEntry error, got {other:?}"),
    }
}

#[test]
fn auth_is_served_for_its_host_only() {
    let setup = Setup::new();
    let store = setup.docker_store(json!({ "ghcr.io": { "auth": encode("octo:pass") } }));
    assert_eq!(store.get("ghcr.io").unwrap(), Some(basic("octo", "pass")));
    assert_eq!(store.get("quay.io").unwrap(), None);
    assert_eq!(store.get("ghcr.io.evil.example").unwrap(), None);
    assert_eq!(store.get("docker.io").unwrap(), None);
}

#[test]
fn auth_password_keeps_its_colons_and_unpadded_base64_is_accepted() {
    let setup = Setup::new();
    let store = setup.docker_store(json!({
        "a.example": { "auth": encode("user:pa:ss:") },
        "b.example": { "auth": encode("ab:c").trim_end_matches('=') },
        "c.example": { "auth": encode("user:") },
    }));
    assert_eq!(
        store.get("a.example").unwrap(),
        Some(basic("user", "pa:ss:"))
    );
    assert_eq!(store.get("b.example").unwrap(), Some(basic("ab", "c")));
    assert_eq!(store.get("c.example").unwrap(), Some(basic("user", "")));
}

#[test]
fn invalid_auth_is_an_error_naming_file_and_key() {
    let setup = Setup::new();
    let store = setup.docker_store(json!({
        "good.example": { "auth": encode("u:p") },
        "https://bad64.example/v1/": { "auth": "not base64!" },
        "nocolon.example": { "auth": encode("just-a-user") },
        "notutf8.example": { "auth": base64::engine::general_purpose::STANDARD.encode([0xff, b':', b'p']) },
    }));
    let path = store.docker_config().expect("a docker config").to_owned();
    assert_eq!(store.get("good.example").unwrap(), Some(basic("u", "p")));
    expect_entry_error(
        store.get("bad64.example"),
        &path,
        "https://bad64.example/v1/",
        "base64",
    );
    expect_entry_error(
        store.get("nocolon.example"),
        &path,
        "nocolon.example",
        "no ':'",
    );
    expect_entry_error(
        store.get("notutf8.example"),
        &path,
        "notutf8.example",
        "UTF-8",
    );
    // The message names the file and the key but not the secret.
    let message = store.get("nocolon.example").unwrap_err().to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("nocolon.example"), "{message}");
    assert!(!message.contains("just-a-user"), "{message}");
}

#[test]
fn username_and_password_fields_are_used_when_auth_is_absent() {
    let setup = Setup::new();
    let store = setup.docker_store(json!({
        "fields.example": { "username": "me", "password": "pw:1" },
        "both.example": { "auth": encode("from:auth"), "username": "ignored", "password": "ignored" },
    }));
    assert_eq!(
        store.get("fields.example").unwrap(),
        Some(basic("me", "pw:1"))
    );
    assert_eq!(
        store.get("both.example").unwrap(),
        Some(basic("from", "auth"))
    );
}

#[test]
fn identitytoken_is_an_identity_token() {
    let setup = Setup::new();
    let store = setup.docker_store(json!({
        "token.example": { "auth": encode("user:"), "identitytoken": "refresh-xyz" },
        "plain.example": { "auth": encode("user:pw"), "identitytoken": "" },
    }));
    assert_eq!(
        store.get("token.example").unwrap(),
        Some(Credential::IdentityToken("refresh-xyz".to_owned()))
    );
    assert_eq!(
        store.get("plain.example").unwrap(),
        Some(basic("user", "pw"))
    );
}

#[test]
fn docker_hub_key_serves_every_docker_hub_name_and_nothing_else() {
    let setup = Setup::new();
    let store =
        setup.docker_store(json!({ "https://index.docker.io/v1/": { "auth": encode("hub:pw") } }));
    for name in [
        "docker.io",
        "index.docker.io",
        "registry-1.docker.io",
        "Docker.IO",
    ] {
        assert_eq!(store.get(name).unwrap(), Some(basic("hub", "pw")), "{name}");
    }
    for name in ["ghcr.io", "docker.io.example", "io", "hub.docker.com"] {
        assert_eq!(store.get(name).unwrap(), None, "{name}");
    }
}

#[test]
fn docker_hub_key_is_preferred_over_other_docker_hub_aliases() {
    let setup = Setup::new();
    let store = setup.docker_store(json!({
        "index.docker.io": { "auth": encode("alias:pw") },
        "https://index.docker.io/v1/": { "auth": encode("hub:pw") },
    }));
    assert_eq!(store.get("docker.io").unwrap(), Some(basic("hub", "pw")));
    // `index.docker.io` is matched as `docker.io`, so the Docker Hub key still wins.
    assert_eq!(
        store.get("index.docker.io").unwrap(),
        Some(basic("hub", "pw"))
    );
    let store = setup.docker_store(json!({
        "docker.io": { "auth": encode("exact:pw") },
        "https://index.docker.io/v1/": { "auth": encode("hub:pw") },
    }));
    assert_eq!(store.get("docker.io").unwrap(), Some(basic("exact", "pw")));
}

#[test]
fn url_keys_match_their_host() {
    let setup = Setup::new();
    let store = setup.docker_store(json!({
        "https://ghcr.io": { "auth": encode("a:1") },
        "http://registry.example/v1/": { "auth": encode("b:2") },
        "quay.io/": { "auth": encode("c:3") },
        "HTTPS://Mixed.Example:5000/v2/": { "auth": encode("d:4") },
    }));
    assert_eq!(store.get("ghcr.io").unwrap(), Some(basic("a", "1")));
    assert_eq!(
        store.get("registry.example").unwrap(),
        Some(basic("b", "2"))
    );
    assert_eq!(store.get("quay.io").unwrap(), Some(basic("c", "3")));
    assert_eq!(
        store.get("mixed.example:5000").unwrap(),
        Some(basic("d", "4"))
    );
    assert_eq!(
        store.get("https://ghcr.io/").unwrap(),
        Some(basic("a", "1"))
    );
    assert_eq!(store.get("registry.example:443").unwrap(), None);
    assert_eq!(store.get("mixed.example").unwrap(), None);
}

#[test]
fn port_is_part_of_the_registry() {
    let setup = Setup::new();
    let store = setup.docker_store(json!({
        "localhost:5000": { "auth": encode("five:k") },
        "127.0.0.1:5000": { "auth": encode("loop:k") },
        "[::1]:5000": { "auth": encode("six:k") },
    }));
    assert_eq!(
        store.get("localhost:5000").unwrap(),
        Some(basic("five", "k"))
    );
    assert_eq!(
        store.get("127.0.0.1:5000").unwrap(),
        Some(basic("loop", "k"))
    );
    assert_eq!(store.get("[::1]:5000").unwrap(), Some(basic("six", "k")));
    assert_eq!(store.get("localhost").unwrap(), None);
    assert_eq!(store.get("localhost:5001").unwrap(), None);
    assert_eq!(store.get("127.0.0.1:1").unwrap(), None);
    assert_eq!(store.get("[::1]").unwrap(), None);
}

#[test]
fn empty_marker_entries_are_passed_over() {
    let setup = Setup::new();
    let marker_only = setup.file("auth.json", json!({ "auths": { "ghcr.io": {} } }));
    let docker = setup.docker_config(json!({ "ghcr.io": { "auth": encode("from:docker") } }));
    let store = CredentialStore::from_files(Some(docker), vec![marker_only]);
    assert_eq!(store.get("ghcr.io").unwrap(), Some(basic("from", "docker")));
    let store =
        setup.docker_store(json!({ "ghcr.io": {}, "https://ghcr.io": { "auth": encode("u:p") } }));
    assert_eq!(store.get("ghcr.io").unwrap(), Some(basic("u", "p")));
}

#[test]
fn missing_and_empty_files_mean_no_credential_invalid_files_are_errors() {
    let setup = Setup::new();
    let missing = CredentialStore::from_files(
        Some(setup.path("nowhere/config.json")),
        vec![setup.path("nowhere/auth.json")],
    );
    assert_eq!(missing.get("ghcr.io").unwrap(), None);

    let empty = setup.path("empty.json");
    fs::write(&empty, "\n").unwrap();
    assert_eq!(
        CredentialStore::from_files(Some(empty), vec![])
            .get("ghcr.io")
            .unwrap(),
        None
    );

    let invalid = setup.path("invalid.json");
    fs::write(&invalid, "{ \"auths\": ").unwrap();
    let wrong_shape = setup.file("shape.json", json!({ "auths": ["ghcr.io"] }));
    let directory = setup.path("a-directory");
    fs::create_dir(&directory).unwrap();
    for path in [invalid, wrong_shape, directory] {
        let store = CredentialStore::from_files(None, vec![path.clone()]);
        match store.get("ghcr.io") {
            Err(Error::CredentialsFile { path: named, .. }) => assert_eq!(named, path),
            other => panic!(
                "{}: expected a CredentialsFile error, got {other:?}",
                path.display()
            ),
        }
        let message = store.get("ghcr.io").unwrap_err().to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
    }
}

#[test]
fn an_invalid_file_after_the_one_that_answers_is_not_read() {
    let setup = Setup::new();
    let good = setup.file(
        "auth.json",
        json!({ "auths": { "ghcr.io": { "auth": encode("u:p") } } }),
    );
    let invalid = setup.path("config.json");
    fs::write(&invalid, "not json").unwrap();
    let store = CredentialStore::from_files(Some(invalid), vec![good]);
    assert_eq!(store.get("ghcr.io").unwrap(), Some(basic("u", "p")));
    assert!(matches!(
        store.get("quay.io"),
        Err(Error::CredentialsFile { .. })
    ));
}

#[test]
fn auth_files_come_before_the_docker_config_in_order() {
    let setup = Setup::new();
    let first = setup.file(
        "run/containers/auth.json",
        json!({ "auths": { "ghcr.io": { "auth": encode("first:1") } } }),
    );
    let second = setup.file(
        "config/containers/auth.json",
        json!({ "auths": {
            "ghcr.io": { "auth": encode("second:2") },
            "quay.io": { "auth": encode("second:2") },
        } }),
    );
    let docker = setup.docker_config(json!({
        "ghcr.io": { "auth": encode("docker:3") },
        "quay.io": { "auth": encode("docker:3") },
        "registry.example": { "auth": encode("docker:3") },
    }));
    let store =
        CredentialStore::from_files(Some(docker.clone()), vec![first.clone(), second.clone()]);
    assert_eq!(store.get("ghcr.io").unwrap(), Some(basic("first", "1")));
    assert_eq!(store.get("quay.io").unwrap(), Some(basic("second", "2")));
    assert_eq!(
        store.get("registry.example").unwrap(),
        Some(basic("docker", "3"))
    );
    assert_eq!(store.get("other.example").unwrap(), None);

    let reversed = CredentialStore::from_files(Some(docker), vec![second, first]);
    assert_eq!(reversed.get("ghcr.io").unwrap(), Some(basic("second", "2")));
}

#[test]
fn repository_keys_need_get_for_and_the_most_specific_wins() {
    let setup = Setup::new();
    let auth_file = setup.file(
        "auth.json",
        json!({ "auths": {
            "quay.io": { "auth": encode("host:0") },
            "quay.io/team": { "auth": encode("namespace:1") },
            "quay.io/team/app": { "auth": encode("repo:2") },
            "docker.io/library": { "auth": encode("library:3") },
            "ghcr.io/only/this": { "auth": encode("scoped:4") },
        } }),
    );
    let store = CredentialStore::from_files(None, vec![auth_file]);
    assert_eq!(
        store.get_for("quay.io", "team/app").unwrap(),
        Some(basic("repo", "2"))
    );
    assert_eq!(
        store.get_for("quay.io", "team/other").unwrap(),
        Some(basic("namespace", "1"))
    );
    assert_eq!(
        store.get_for("quay.io", "team/app/sub").unwrap(),
        Some(basic("repo", "2"))
    );
    assert_eq!(
        store.get_for("quay.io", "elsewhere/app").unwrap(),
        Some(basic("host", "0"))
    );
    assert_eq!(store.get("quay.io").unwrap(), Some(basic("host", "0")));
    assert_eq!(
        store.get_for("index.docker.io", "library/alpine").unwrap(),
        Some(basic("library", "3"))
    );
    assert_eq!(store.get_for("docker.io", "someone/alpine").unwrap(), None);
    assert_eq!(
        store.get_for("ghcr.io", "only/this").unwrap(),
        Some(basic("scoped", "4"))
    );
    assert_eq!(store.get_for("ghcr.io", "only/that").unwrap(), None);
    assert_eq!(store.get("ghcr.io").unwrap(), None);
    // A path only counts at a component boundary.
    assert_eq!(
        store.get_for("quay.io", "teams/app").unwrap(),
        Some(basic("host", "0"))
    );
}

#[test]
fn cred_helper_answers_for_its_registry_with_the_host_on_stdin() {
    let setup = Setup::new();
    setup.install_fake_helper();
    let config = setup.file(
        "docker/config.json",
        json!({
            "auths": { "ghcr.io": {}, "quay.io": { "auth": encode("inline:q") } },
            "credHelpers": { "ghcr.io": "fake" },
        }),
    );
    let store =
        CredentialStore::from_files(Some(config), vec![]).with_helper_dir(setup.path("bin"));
    assert_eq!(
        store.get("ghcr.io").unwrap(),
        Some(basic("octo", "s3cret:with:colons"))
    );
    assert_eq!(setup.helper_log(), ["get ghcr.io"]);
    // Another registry does not run the helper.
    assert_eq!(store.get("quay.io").unwrap(), Some(basic("inline", "q")));
    assert_eq!(setup.helper_log().len(), 1);
}

#[test]
fn docker_hub_helper_gets_the_index_url_and_token_user_means_identity_token() {
    let setup = Setup::new();
    setup.install_fake_helper();
    let config = setup.file(
        "docker/config.json",
        json!({ "credHelpers": { "https://index.docker.io/v1/": "fake" } }),
    );
    let store =
        CredentialStore::from_files(Some(config), vec![]).with_helper_dir(setup.path("bin"));
    assert_eq!(
        store.get("registry-1.docker.io").unwrap(),
        Some(Credential::IdentityToken("refresh-abc".to_owned()))
    );
    assert_eq!(setup.helper_log(), ["get https://index.docker.io/v1/"]);
    assert_eq!(store.get("ghcr.io").unwrap(), None);
    assert_eq!(setup.helper_log().len(), 1);
}

#[test]
fn creds_store_serves_every_registry_and_cred_helpers_take_precedence() {
    let setup = Setup::new();
    setup.install_fake_helper();
    setup.install_helper(
        "other",
        "#!/bin/sh\ncat >/dev/null\nprintf '{\"Username\":\"other\",\"Secret\":\"o\"}'\n",
    );
    let config = setup.file(
        "docker/config.json",
        json!({
            "auths": { "ghcr.io": { "auth": encode("inline:ignored") } },
            "credsStore": "fake",
            "credHelpers": { "quay.io": "other", "ignored.example": "" },
        }),
    );
    let store =
        CredentialStore::from_files(Some(config), vec![]).with_helper_dir(setup.path("bin"));
    // The store's helper answers instead of the inline entry.
    assert_eq!(
        store.get("ghcr.io").unwrap(),
        Some(basic("octo", "s3cret:with:colons"))
    );
    assert_eq!(store.get("quay.io").unwrap(), Some(basic("other", "o")));
    assert_eq!(
        store.get("docker.io").unwrap(),
        Some(Credential::IdentityToken("refresh-abc".to_owned()))
    );
    // An empty credHelpers entry falls back to credsStore.
    assert_eq!(store.get("ignored.example").unwrap(), None);
    assert_eq!(
        setup.helper_log(),
        [
            "get ghcr.io",
            "get https://index.docker.io/v1/",
            "get ignored.example"
        ]
    );
}

#[test]
fn helper_without_credentials_means_none_and_the_next_file_is_asked() {
    let setup = Setup::new();
    setup.install_fake_helper();
    let auth_file = setup.file("auth.json", json!({ "credsStore": "fake" }));
    let docker = setup.docker_config(json!({ "unknown.example": { "auth": encode("docker:d") } }));
    let store = CredentialStore::from_files(Some(docker), vec![auth_file.clone()])
        .with_helper_dir(setup.path("bin"));
    assert_eq!(
        store.get("unknown.example").unwrap(),
        Some(basic("docker", "d"))
    );
    assert_eq!(
        store.get("ghcr.io").unwrap(),
        Some(basic("octo", "s3cret:with:colons"))
    );
    let alone =
        CredentialStore::from_files(None, vec![auth_file]).with_helper_dir(setup.path("bin"));
    assert_eq!(alone.get("unknown.example").unwrap(), None);
    assert_eq!(alone.get("empty.example").unwrap(), None);
}

#[test]
fn failing_helper_is_an_error_naming_helper_and_registry() {
    let setup = Setup::new();
    setup.install_fake_helper();
    let config = setup.file("docker/config.json", json!({ "credsStore": "fake" }));
    let store = CredentialStore::from_files(Some(config.clone()), vec![])
        .with_helper_dir(setup.path("bin"));
    assert!(store.get("ghcr.io").unwrap().is_some());
    match store.get("broken.example") {
        Err(Error::CredentialHelper {
            helper,
            registry,
            path,
            reason,
        }) => {
            assert_eq!(helper, "fake");
            assert_eq!(registry, "broken.example");
            assert_eq!(path, config);
            assert!(reason.contains("exit status: 3"), "{reason}");
            assert!(
                reason.contains("garbage: the keychain exploded"),
                "{reason}"
            );
        }
        other => panic!("expected a CredentialHelper error, got {other:?}"),
    }
    let message = store.get("broken.example").unwrap_err().to_string();
    assert!(message.contains("docker-credential-fake"), "{message}");
    assert!(message.contains("broken.example"), "{message}");
}

#[test]
fn helper_output_that_is_not_json_is_an_error_that_does_not_echo_it() {
    let setup = Setup::new();
    setup.install_fake_helper();
    let config = setup.file("docker/config.json", json!({ "credsStore": "fake" }));
    let store =
        CredentialStore::from_files(Some(config), vec![]).with_helper_dir(setup.path("bin"));
    match store.get("notjson.example") {
        Err(Error::CredentialHelper { reason, .. }) => {
            assert!(reason.contains("not credential JSON"), "{reason}");
            assert!(!reason.contains("hunter2"), "{reason}");
        }
        other => panic!("expected a CredentialHelper error, got {other:?}"),
    }
}

#[test]
fn missing_helper_is_its_own_error() {
    let setup = Setup::new();
    setup.install_fake_helper();
    let config = setup.file(
        "docker/config.json",
        json!({ "credHelpers": { "ghcr.io": "fake", "quay.io": "tank-test-not-installed" } }),
    );
    let store = CredentialStore::from_files(Some(config.clone()), vec![])
        .with_helper_dir(setup.path("bin"));
    assert!(store.get("ghcr.io").unwrap().is_some());
    match store.get("quay.io") {
        Err(Error::CredentialHelperNotFound {
            helper,
            registry,
            path,
        }) => {
            assert_eq!(helper, "tank-test-not-installed");
            assert_eq!(registry, "quay.io");
            assert_eq!(path, config);
        }
        other => panic!("expected CredentialHelperNotFound, got {other:?}"),
    }
    // Without the helper directory, the fake is not found either (it is not on PATH).
    let without_dir = CredentialStore::from_files(Some(config), vec![]);
    assert!(matches!(
        without_dir.get("ghcr.io"),
        Err(Error::CredentialHelperNotFound { .. })
    ));
}

#[test]
fn helper_names_cannot_leave_the_helper_naming_scheme() {
    let setup = Setup::new();
    setup.install_fake_helper();
    let config = setup.file(
        "docker/config.json",
        json!({ "credHelpers": { "ghcr.io": "fake", "quay.io": "../bin/docker-credential-fake" } }),
    );
    let store =
        CredentialStore::from_files(Some(config), vec![]).with_helper_dir(setup.path("bin"));
    assert!(store.get("ghcr.io").unwrap().is_some());
    assert!(matches!(
        store.get("quay.io"),
        Err(Error::CredentialHelper { .. })
    ));
    assert_eq!(setup.helper_log().len(), 1);
}

#[test]
fn slow_helper_is_killed_after_the_timeout() {
    let setup = Setup::new();
    setup.install_fake_helper();
    let config = setup.file("docker/config.json", json!({ "credsStore": "fake" }));
    let store =
        CredentialStore::from_files(Some(config), vec![]).with_helper_dir(setup.path("bin"));
    assert!(store.get("ghcr.io").unwrap().is_some());
    let impatient = store.with_helper_timeout(Duration::from_millis(300));
    match impatient.get("slow.example") {
        Err(Error::CredentialHelper { reason, .. }) => {
            assert!(reason.contains("killed"), "{reason}")
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[test]
fn debug_never_shows_secrets() {
    let credential = basic("octo", "hunter2");
    let shown = format!("{credential:?}");
    assert!(shown.contains("octo"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    let token = Credential::IdentityToken("refresh-secret".to_owned());
    let shown = format!("{token:?} {token:#?}");
    assert!(!shown.contains("refresh-secret"), "{shown}");
    assert!(shown.contains("redacted"), "{shown}");

    let setup = Setup::new();
    let store = setup.docker_store(json!({ "ghcr.io": { "auth": encode("octo:hunter2") } }));
    assert_eq!(
        store.get("ghcr.io").unwrap(),
        Some(basic("octo", "hunter2"))
    );
    let shown = format!("{store:?}");
    assert!(shown.contains("config.json"), "{shown}");
    assert!(
        !shown.contains("hunter2") && !shown.contains(&encode("octo:hunter2")),
        "{shown}"
    );
}

#[test]
fn anonymous_store_has_nothing() {
    let store = CredentialStore::anonymous();
    assert_eq!(store.get("ghcr.io").unwrap(), None);
    assert_eq!(store.docker_config(), None);
    assert!(store.auth_files().is_empty());
}

#[test]
fn environment_selects_the_files() {
    let from = |variables: &[(&str, &str)]| {
        let variables: HashMap<String, OsString> = variables
            .iter()
            .map(|(name, value)| (name.to_string(), OsString::from(value)))
            .collect();
        CredentialStore::from_variables(|name| variables.get(name).cloned())
    };
    let paths = |store: &CredentialStore| {
        (
            store.docker_config().map(Path::to_owned),
            store.auth_files().to_vec(),
        )
    };
    let p = PathBuf::from;

    assert_eq!(
        paths(&from(&[("HOME", "/home/u")])),
        (
            Some(p("/home/u/.docker/config.json")),
            vec![p("/home/u/.config/containers/auth.json")]
        )
    );
    assert_eq!(
        paths(&from(&[
            ("HOME", "/home/u"),
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
            ("XDG_CONFIG_HOME", "/cfg"),
            ("DOCKER_CONFIG", "/dc"),
        ])),
        (
            Some(p("/dc/config.json")),
            vec![
                p("/run/user/1000/containers/auth.json"),
                p("/cfg/containers/auth.json")
            ]
        )
    );
    assert_eq!(
        paths(&from(&[
            ("HOME", "/home/u"),
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
            ("REGISTRY_AUTH_FILE", "/tmp/auth.json"),
        ])),
        (
            Some(p("/home/u/.docker/config.json")),
            vec![p("/tmp/auth.json")]
        )
    );
    // Empty variables count as unset; without HOME nothing under it is used.
    assert_eq!(
        paths(&from(&[
            ("HOME", ""),
            ("DOCKER_CONFIG", ""),
            ("REGISTRY_AUTH_FILE", "")
        ])),
        (None, vec![])
    );
    assert_eq!(paths(&from(&[])), (None, vec![]));
}

#[test]
fn key_normalisation() {
    let table = [
        ("ghcr.io", "ghcr.io"),
        ("GHCR.IO", "ghcr.io"),
        ("ghcr.io/", "ghcr.io"),
        ("https://ghcr.io", "ghcr.io"),
        ("https://ghcr.io/v2/", "ghcr.io"),
        ("http://localhost:5000/v1/", "localhost:5000"),
        ("Https://Host.Example/x", "host.example"),
        ("https://index.docker.io/v1/", "docker.io"),
        ("index.docker.io", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("docker.io/library", "docker.io/library"),
        ("Quay.io/Team/App", "quay.io/Team/App"),
        ("[::1]:5000", "[::1]:5000"),
        (" ghcr.io ", "ghcr.io"),
    ];
    for (key, expected) in table {
        assert_eq!(normalize_key(key), expected, "{key}");
    }
}

#[test]
fn candidate_names_go_from_repository_to_host() {
    assert_eq!(
        candidates("quay.io", "a/b/c"),
        ["quay.io/a/b/c", "quay.io/a/b", "quay.io/a", "quay.io"]
    );
    assert_eq!(candidates("quay.io", "/a/"), ["quay.io/a", "quay.io"]);
    assert_eq!(candidates("quay.io", ""), ["quay.io"]);
}
