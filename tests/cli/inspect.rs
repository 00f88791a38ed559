//! `tank inspect` against docker-registry on loopback, with images pushed by skopeo.

use tank_testkit::{Registry, sha256_digest, skopeo_inspect_raw};

use crate::{fails, host_arch, json, ok, registry_seeded, run, stderr, tank};

/// The digest of what skopeo reads for `reference` (the registry's own bytes).
fn skopeo_digest(reference: &str) -> String {
    sha256_digest(
        &skopeo_inspect_raw(&format!("docker://{reference}"), None).expect("skopeo inspect"),
    )
}

#[test]
fn single_manifest_human_and_json() {
    let home = tempfile::tempdir().unwrap();
    let registry = registry_seeded(&["single"]);
    let reference = format!("{}/fixtures/single:latest", registry.host());
    let expected_digest = skopeo_digest(&reference);

    let text = ok(run(tank(home.path()).args(["inspect", &reference])));
    assert!(
        text.contains(&format!("Digest:     {expected_digest}")),
        "{text}"
    );
    assert!(
        text.contains("application/vnd.oci.image.manifest.v1+json"),
        "{text}"
    );
    assert!(text.contains("Layers:     1 "), "{text}");
    assert!(text.contains("\"/usr/bin/hello\""), "{text}");
    assert!(
        !text.contains("Index:"),
        "a single manifest has no index: {text}"
    );

    let value = json(&ok(run(
        tank(home.path()).args(["inspect", "--json", &reference])
    )));
    assert_eq!(value["manifestDigest"], expected_digest.as_str());
    assert_eq!(value["indexDigest"], serde_json::Value::Null);
    assert_eq!(value["reference"], reference.as_str());
    let layers = value["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    let config = &value["imageConfig"]["config"];
    assert_eq!(config["Entrypoint"], serde_json::json!(["/usr/bin/hello"]));
    assert_eq!(config["User"], "tank");
    assert!(
        config["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "GREETING=hello"),
        "{config}"
    );

    // --raw prints the registry's bytes: their digest is the manifest digest.
    let raw = run(tank(home.path()).args(["inspect", "--raw", &reference]));
    assert!(raw.status.success(), "{}", stderr(&raw));
    let raw_body = raw.stdout.strip_suffix(b"\n").unwrap_or(&raw.stdout);
    assert_eq!(sha256_digest(raw_body), expected_digest);

    // By digest gives the same answer as by tag.
    let by_digest = format!("{}/fixtures/single@{expected_digest}", registry.host());
    let value = json(&ok(run(
        tank(home.path()).args(["inspect", "--json", &by_digest])
    )));
    assert_eq!(value["manifestDigest"], expected_digest.as_str());
}

#[test]
fn multi_platform_index_picks_the_platform() {
    let home = tempfile::tempdir().unwrap();
    let registry = registry_seeded(&["multi-platform"]);
    let reference = format!("{}/fixtures/multi-platform:latest", registry.host());
    let index_digest = skopeo_digest(&reference);

    let host = json(&ok(run(
        tank(home.path()).args(["inspect", "--json", &reference])
    )));
    assert_eq!(host["indexDigest"], index_digest.as_str());
    let arch = host_arch();
    assert!(
        host["platform"]
            .as_str()
            .unwrap()
            .starts_with(&format!("linux/{arch}"))
    );
    let env = host["imageConfig"]["config"]["Env"].as_array().unwrap();
    assert!(
        env.iter().any(|e| *e == format!("FIXTURE_ARCH={arch}")),
        "{env:?}"
    );

    let arm = json(&ok(run(tank(home.path()).args([
        "inspect",
        "--json",
        "--platform",
        "linux/arm64",
        &reference,
    ]))));
    assert_eq!(arm["platform"], "linux/arm64/v8");
    assert_eq!(arm["indexDigest"], index_digest.as_str());
    assert_ne!(arm["manifestDigest"], host["manifestDigest"]);
    assert_eq!(arm["imageConfig"]["architecture"], "arm64");
    let env = arm["imageConfig"]["config"]["Env"].as_array().unwrap();
    assert!(env.iter().any(|e| e == "FIXTURE_ARCH=arm64"), "{env:?}");

    // The platform manifest's digest is what skopeo reads by that digest.
    let arm_digest = arm["manifestDigest"].as_str().unwrap();
    let by_digest = format!("{}/fixtures/multi-platform@{arm_digest}", registry.host());
    assert_eq!(skopeo_digest(&by_digest), arm_digest);
    let raw = run(tank(home.path()).args([
        "inspect",
        "--raw",
        "--platform",
        "linux/arm64/v8",
        &reference,
    ]));
    assert!(raw.status.success(), "{}", stderr(&raw));
    let raw_body = raw.stdout.strip_suffix(b"\n").unwrap_or(&raw.stdout);
    assert_eq!(sha256_digest(raw_body), arm_digest);

    let text = ok(run(tank(home.path()).args([
        "inspect",
        "--platform",
        "linux/arm64",
        &reference,
    ])));
    assert!(
        text.contains(&format!("Index:      {index_digest}")),
        "{text}"
    );
    assert!(text.contains("Platform:   linux/arm64/v8"), "{text}");

    fails(
        run(tank(home.path()).args(["inspect", "--platform", "linux/s390x", &reference])),
        &["linux/s390x", "linux/amd64, linux/arm64/v8"],
    );
}

#[test]
fn docker_media_types() {
    let home = tempfile::tempdir().unwrap();
    let registry = registry_seeded(&["docker-v2"]);
    let single = format!("{}/fixtures/docker-v2:latest", registry.host());
    let value = json(&ok(run(
        tank(home.path()).args(["inspect", "--json", &single])
    )));
    assert_eq!(
        value["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(value["manifestDigest"], skopeo_digest(&single).as_str());
    assert_eq!(
        value["layers"][0]["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );

    let list = format!("{}/fixtures/docker-v2:list", registry.host());
    let value = json(&ok(run(tank(home.path()).args([
        "inspect",
        "--json",
        "--platform",
        "linux/arm",
        &list,
    ]))));
    assert_eq!(value["platform"], "linux/arm/v7");
    assert_eq!(value["indexDigest"], skopeo_digest(&list).as_str());
    assert_eq!(
        value["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
}

#[test]
fn errors_are_one_line_and_name_what_was_wrong() {
    let home = tempfile::tempdir().unwrap();
    let registry = registry_seeded(&["single"]);

    let missing_tag = format!("{}/fixtures/single:no-such-tag", registry.host());
    fails(
        run(tank(home.path()).args(["inspect", &missing_tag])),
        &["no-such-tag"],
    );

    let missing_repo = format!("{}/fixtures/nothing-here:latest", registry.host());
    fails(
        run(tank(home.path()).args(["inspect", &missing_repo])),
        &["fixtures/nothing-here"],
    );

    fails(
        run(tank(home.path()).args(["inspect", "Upper/Case:tag"])),
        &["Upper/Case"],
    );
    // A malformed flag value is a usage error (exit status 2, as clap reports them).
    let usage = run(tank(home.path()).args(["inspect", "--platform", "linux", "alpine"]));
    assert_eq!(usage.status.code(), Some(2));
    assert!(
        stderr(&usage).contains("invalid platform \"linux\""),
        "{}",
        stderr(&usage)
    );

    // Nothing listens on port 1 of loopback: the error names the registry.
    fails(
        run(tank(home.path()).args(["inspect", "127.0.0.1:1/some/image:1"])),
        &["127.0.0.1:1"],
    );
}

#[test]
fn basic_auth_credentials_come_from_docker_config() {
    let home = tempfile::tempdir().unwrap();
    let registry = Registry::builder()
        .htpasswd("tank-user", "s3cret:with:colons")
        .start()
        .expect("docker-registry with htpasswd starts");
    registry
        .push_fixture("single")
        .expect("skopeo pushes with credentials");
    let reference = format!("{}/fixtures/single:latest", registry.host());

    // No credentials: a one-line auth error naming the registry.
    fails(
        run(tank(home.path()).args(["inspect", &reference])),
        &[&registry.host()],
    );

    let docker_config = home.path().join(".docker");
    std::fs::create_dir_all(&docker_config).unwrap();
    registry.write_docker_config(&docker_config).unwrap();
    let value = json(&ok(run(
        tank(home.path()).args(["inspect", "--json", &reference])
    )));
    assert_eq!(
        value["manifestDigest"].as_str().unwrap().len(),
        "sha256:".len() + 64
    );
    assert_eq!(value["imageConfig"]["config"]["User"], "tank");
}
