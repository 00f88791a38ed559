//! Tests of the registry process, its config, auth and TLS, against the real `docker-registry`.

use std::net::{SocketAddr, TcpListener, TcpStream};

use serde_json::Value;

use super::*;

fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn registry_answers_v2_and_stops_on_drop() {
    let registry = Registry::start().expect("docker-registry must start");
    let response = registry.get("/v2/").unwrap();
    assert_eq!(response.status(), 200, "{}", registry.log_tail());
    assert_eq!(
        response.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    assert_eq!(response.body(), b"{}");
    assert!(registry.host().starts_with("127.0.0.1:"));
    assert_eq!(registry.url(), format!("http://{}", registry.host()));
    assert!(registry.storage_dir().is_dir());
    let missing = registry.get("/v2/nothing/here/manifests/latest").unwrap();
    assert_eq!(missing.status(), 404);

    let pid = registry.pid();
    let port = registry.port();
    let root = registry.root_dir().to_path_buf();
    assert!(process_exists(pid));
    drop(registry);
    assert!(!process_exists(pid), "registry process {pid} still exists");
    assert!(
        !root.exists(),
        "temporary directory {} kept",
        root.display()
    );
    let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert!(TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_err());
}

#[test]
fn htpasswd_registry_rejects_requests_without_the_right_credentials() {
    let registry = Registry::builder()
        .htpasswd("tester", "s3cret")
        .start()
        .expect("docker-registry must start");
    assert_eq!(registry.credentials(), Some(("tester", "s3cret")));

    let anonymous = registry.get("/v2/").unwrap();
    assert_eq!(anonymous.status(), 401);
    let challenge = anonymous.header("www-authenticate").unwrap();
    assert!(challenge.starts_with("Basic realm="), "{challenge}");

    let wrong = registry.get_with_basic("/v2/", "tester", "wrong").unwrap();
    assert_eq!(wrong.status(), 401);
    let unknown = registry.get_with_basic("/v2/", "nobody", "s3cret").unwrap();
    assert_eq!(unknown.status(), 401);
    let right = registry.get_with_basic("/v2/", "tester", "s3cret").unwrap();
    assert_eq!(right.status(), 200, "{}", registry.log_tail());
}

#[test]
fn pushed_fixtures_are_served_with_the_layout_digests() {
    let registry = Registry::start().expect("docker-registry must start");
    let references = registry.push_all_fixtures().expect("pushing fixtures");
    let mut expected_references = Vec::new();
    for name in FIXTURE_NAMES {
        for tag in read_layout_tags(&fixtures_dir().join(name)).unwrap() {
            let reference = format!("{}/fixtures/{name}:{}", registry.host(), tag.tag);
            let raw = crate::skopeo::skopeo_inspect_raw(&format!("docker://{reference}"), None)
                .expect("skopeo inspect of a pushed fixture");
            assert_eq!(crate::sha256_digest(&raw), tag.digest, "{reference}");
            let path = format!("/v2/fixtures/{name}/manifests/{}", tag.digest);
            let response = registry
                .get_with_headers(&path, &[("Accept", &tag.media_type)])
                .unwrap();
            assert_eq!(response.status(), 200, "{reference}");
            assert_eq!(crate::sha256_digest(response.body()), tag.digest);
            assert_eq!(
                response.header("docker-content-digest"),
                Some(tag.digest.as_str())
            );
            expected_references.push(reference);
        }
    }
    assert_eq!(references, expected_references);
    assert!(matches!(
        registry.push_fixture("no-such-fixture"),
        Err(Error::UnknownFixture { .. })
    ));
}

#[test]
fn pushing_to_an_htpasswd_registry_uses_its_credentials() {
    let registry = Registry::builder()
        .htpasswd("pusher", "pw")
        .start()
        .expect("docker-registry must start");
    let references = registry
        .push_fixture("single")
        .expect("push with credentials");
    let reference = format!("docker://{}", references[0]);
    let raw = crate::skopeo::skopeo_inspect_raw(&reference, Some(("pusher", "pw"))).unwrap();
    assert_eq!(
        crate::sha256_digest(&raw),
        read_layout_tags(&fixtures_dir().join("single")).unwrap()[0].digest
    );
    let anonymous = crate::skopeo::skopeo_inspect_raw(&reference, None).unwrap_err();
    assert!(
        matches!(anonymous, Error::CommandFailed { .. }),
        "{anonymous}"
    );
    let dir = tempfile::tempdir().unwrap();
    let config = registry.write_docker_config(dir.path()).unwrap();
    let written: Value = serde_json::from_slice(&fs::read(config).unwrap()).unwrap();
    assert_eq!(
        written,
        docker_config_json(&registry.host(), "pusher", "pw")
    );
}

#[test]
fn a_fixed_port_that_is_taken_fails_with_the_registry_log() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    // A directory the test owns: a failed start keeps its directory for the log.
    let root = tempfile::tempdir().unwrap();
    let error = Registry::builder()
        .port(port)
        .root_dir(root.path())
        .start()
        .unwrap_err();
    match &error {
        Error::RegistryExited {
            log_tail, attempts, ..
        } => {
            assert!(log_tail.contains("address already in use"), "{log_tail}");
            assert_eq!(*attempts, 1);
        }
        other => panic!("expected RegistryExited, got {other:?}"),
    }
    assert!(root.path().join("registry.log").is_file());
    assert!(error.to_string().contains(&format!("127.0.0.1:{port}")));
}

#[test]
fn a_fixed_free_port_is_used_and_a_kept_root_dir_survives() {
    let kept = tempfile::tempdir().unwrap();
    let port = free_port().unwrap();
    let registry = Registry::builder()
        .port(port)
        .root_dir(kept.path())
        .start()
        .expect("docker-registry must start");
    assert_eq!(registry.host(), format!("127.0.0.1:{port}"));
    assert_eq!(registry.storage_dir(), kept.path().join("storage"));
    drop(registry);
    assert!(kept.path().join("registry.log").is_file());
    assert!(kept.path().join("config.yml").is_file());
}

#[test]
fn a_missing_binary_is_an_error_naming_the_package() {
    let error =
        find_program("tank-no-such-program", "TANK_TESTKIT_UNSET_VARIABLE", "pkg").unwrap_err();
    let message = error.to_string();
    assert!(message.contains("apt-get install pkg"), "{message}");
    assert!(message.contains("tank-no-such-program"), "{message}");
    assert!(find_program("sh", "TANK_TESTKIT_UNSET_VARIABLE", "dash").is_ok());
}

#[test]
fn a_missing_or_failing_registry_binary_is_an_error() {
    let missing = Registry::builder()
        .program("/nonexistent/docker-registry")
        .start()
        .unwrap_err();
    assert!(matches!(missing, Error::ToolMissing { .. }), "{missing:?}");
    assert!(
        missing
            .to_string()
            .contains("apt-get install docker-registry"),
        "{missing}"
    );

    let root = tempfile::tempdir().unwrap();
    let failing = Registry::builder()
        .program("/bin/false")
        .root_dir(root.path())
        .start()
        .unwrap_err();
    assert!(
        matches!(failing, Error::RegistryExited { attempts: 1, .. }),
        "{failing:?}"
    );
}

#[test]
fn tls_registry_serves_https_with_a_certificate_its_ca_issued() {
    let registry = Registry::builder().tls(true).start().unwrap();
    assert_eq!(
        registry.url(),
        format!("https://127.0.0.1:{}", registry.port())
    );
    assert_eq!(
        registry.tls_host(),
        format!("registry.tank.test:{}", registry.port())
    );
    let certificates = registry.certificates().unwrap();
    let config = fs::read_to_string(registry.root_dir().join("config.yml")).unwrap();
    assert!(config.contains("  tls:\n    certificate: "), "{config}");
    // A TLS handshake that verifies the server against the CA, for the test host name.
    let output = Command::new("openssl")
        .args(["s_client", "-brief", "-verify_return_error"])
        .arg("-connect")
        .arg(registry.host())
        .args(["-verify_hostname", TEST_TLS_HOST, "-CAfile"])
        .arg(certificates.ca_path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("Verification: OK"), "{stderr}");
    // A plain-HTTP registry has no certificates.
    assert!(Registry::start().unwrap().certificates().is_none());
}

#[test]
fn config_quotes_paths_and_adds_auth_only_when_asked() {
    let plain = registry_config(5000, Path::new("/tmp/a \"b\""), None, true, None);
    assert!(
        plain.contains("rootdirectory: \"/tmp/a \\\"b\\\"\""),
        "{plain}"
    );
    assert!(plain.contains("addr: 127.0.0.1:5000"));
    assert!(plain.contains("enabled: true"));
    assert!(!plain.contains("htpasswd"));
    let with_auth = registry_config(5000, Path::new("/s"), Some(Path::new("/h")), false, None);
    assert!(with_auth.contains("path: \"/h\""), "{with_auth}");
    assert!(
        with_auth.contains("delete:\n    enabled: false"),
        "{with_auth}"
    );
}

#[test]
fn docker_config_encodes_user_and_password() {
    assert_eq!(basic_auth_header("user", "pass"), "Basic dXNlcjpwYXNz");
    assert_eq!(
        docker_config_json("127.0.0.1:5000", "user", "pass"),
        json!({"auths": {"127.0.0.1:5000": {"auth": "dXNlcjpwYXNz"}}})
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write_docker_config(dir.path(), "h:1", "u", "p").unwrap();
    let written: Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    assert_eq!(written, docker_config_json("h:1", "u", "p"));
}
