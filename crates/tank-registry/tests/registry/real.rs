//! Client behaviour against a real CNCF Distribution registry on loopback.
//!
//! Each test starts its own `docker-registry` through tank-testkit (and fails, never skips,
//! when it cannot), pushes checked-in fixtures with skopeo, and fetches them through
//! `tank_registry::Client`. The fixture layouts and `skopeo inspect --raw` are the oracles.

use std::fs;
use std::path::Path;

use tank_reference::{Digest, Reference};
use tank_registry::{Client, ClientConfig, CredentialStore, Error, Manifest, ManifestKind};
use tank_testkit::{
    LayoutTag, Registry, fixtures_dir, media_type, read_layout_tags, sha256_digest,
    skopeo_inspect_raw, write_docker_config,
};

/// More than any fixture's config, less than a real image's layers.
const CONFIG_LIMIT: u64 = 64 * 1024;

fn start_registry(fixtures: &[&str]) -> Registry {
    let registry = Registry::start().expect("docker-registry must start");
    for fixture in fixtures {
        registry
            .push_fixture(fixture)
            .expect("pushing a fixture with skopeo");
    }
    registry
}

fn client_with(credentials: CredentialStore) -> Client {
    Client::new(ClientConfig {
        credentials,
        ..ClientConfig::default()
    })
    .expect("a client with default settings")
}

fn anonymous_client() -> Client {
    client_with(CredentialStore::anonymous())
}

fn reference(text: &str) -> Reference {
    text.parse()
        .unwrap_or_else(|error| panic!("{text:?} should parse: {error}"))
}

/// A tank digest from anything that prints as one (oci-spec digests, testkit strings).
fn digest(text: impl std::fmt::Display) -> Digest {
    let text = text.to_string();
    text.parse()
        .unwrap_or_else(|error| panic!("{text:?} should parse: {error}"))
}

/// The `index.json` entry of a fixture's tag.
fn layout_tag(fixture: &str, tag: &str) -> LayoutTag {
    read_layout_tags(&fixtures_dir().join(fixture))
        .expect("fixture layouts are readable")
        .into_iter()
        .find(|entry| entry.tag == tag)
        .unwrap_or_else(|| panic!("fixture {fixture} has no tag {tag}"))
}

/// A blob of a fixture layout, by digest.
fn layout_blob(fixture: &str, digest: impl std::fmt::Display) -> Vec<u8> {
    let digest = digest.to_string();
    let hex = digest.strip_prefix("sha256:").expect("fixtures use sha256");
    fs::read(fixtures_dir().join(fixture).join("blobs/sha256").join(hex))
        .expect("the fixture holds every blob it references")
}

fn image_manifest(manifest: &Manifest) -> &oci_spec::image::ImageManifest {
    match manifest.kind() {
        ManifestKind::Image(image) => image,
        ManifestKind::Index(_) => panic!("expected an image manifest, got an index"),
    }
}

fn image_index(manifest: &Manifest) -> &oci_spec::image::ImageIndex {
    match manifest.kind() {
        ManifestKind::Index(index) => index,
        ManifestKind::Image(_) => panic!("expected an index, got an image manifest"),
    }
}

#[tokio::test]
async fn single_manifest_by_tag_and_by_digest_matches_skopeo() {
    let registry = start_registry(&["single"]);
    let client = anonymous_client();
    let tagged = reference(&format!("{}/fixtures/single:latest", registry.host()));

    let manifest = client.fetch_manifest(&tagged).await.expect("fetch by tag");
    let skopeo_raw =
        skopeo_inspect_raw(&format!("docker://{tagged}"), None).expect("skopeo inspect");
    assert_eq!(manifest.digest().to_string(), sha256_digest(&skopeo_raw));
    assert_eq!(manifest.raw(), skopeo_raw.as_slice());
    assert_eq!(
        manifest.digest().to_string(),
        layout_tag("single", "latest").digest
    );
    assert_eq!(manifest.media_type(), media_type::OCI_MANIFEST);
    let image = image_manifest(&manifest);
    assert_eq!(image.layers().len(), 1);

    let pinned = tagged.with_digest(manifest.digest().clone());
    let by_reference_digest = client
        .fetch_manifest(&pinned)
        .await
        .expect("fetch by digest");
    assert_eq!(by_reference_digest.digest(), manifest.digest());
    assert_eq!(by_reference_digest.raw(), manifest.raw());

    let by_digest = client
        .fetch_manifest_by_digest(&tagged, manifest.digest())
        .await
        .expect("fetch_manifest_by_digest");
    assert_eq!(by_digest.raw(), manifest.raw());
}

#[tokio::test]
async fn index_entries_are_fetched_by_digest() {
    let registry = start_registry(&["multi-platform"]);
    let client = anonymous_client();
    let tagged = reference(&format!(
        "{}/fixtures/multi-platform:latest",
        registry.host()
    ));

    let manifest = client
        .fetch_manifest(&tagged)
        .await
        .expect("fetch the index");
    assert_eq!(manifest.media_type(), media_type::OCI_INDEX);
    assert_eq!(
        manifest.digest().to_string(),
        layout_tag("multi-platform", "latest").digest
    );
    let index = image_index(&manifest);
    let platforms: Vec<String> = index
        .manifests()
        .iter()
        .map(|entry| {
            let platform = entry
                .platform()
                .as_ref()
                .expect("fixture entries have platforms");
            let mut text = format!("{}/{}", platform.os(), platform.architecture());
            if let Some(variant) = platform.variant() {
                text.push('/');
                text.push_str(variant);
            }
            text
        })
        .collect();
    assert_eq!(platforms, vec!["linux/amd64", "linux/arm64/v8"]);

    let mut layer_digests = Vec::new();
    for entry in index.manifests() {
        let entry_digest = digest(entry.digest());
        let image = client
            .fetch_manifest_by_digest(&tagged, &entry_digest)
            .await
            .expect("fetch an index entry by digest");
        assert_eq!(image.digest(), &entry_digest);
        assert_eq!(sha256_digest(image.raw()), entry_digest.to_string());
        assert_eq!(image.raw().len() as u64, entry.size());
        assert_eq!(image.media_type(), media_type::OCI_MANIFEST);
        layer_digests.push(image_manifest(&image).layers()[0].digest().to_string());
    }
    assert_ne!(
        layer_digests[0], layer_digests[1],
        "platforms have different content"
    );
}

#[tokio::test]
async fn every_blob_streams_with_verified_size_and_digest() {
    let registry = start_registry(&["single", "multi-layer"]);
    let client = anonymous_client();
    let scratch = tempfile::tempdir().unwrap();

    for fixture in ["single", "multi-layer"] {
        let tagged = reference(&format!("{}/fixtures/{fixture}:latest", registry.host()));
        let manifest = client
            .fetch_manifest(&tagged)
            .await
            .expect("fetch manifest");
        let image = image_manifest(&manifest);
        let mut descriptors = vec![image.config().clone()];
        descriptors.extend(image.layers().iter().cloned());
        assert_eq!(descriptors.len(), if fixture == "single" { 2 } else { 4 });

        for descriptor in descriptors {
            let blob_digest = digest(descriptor.digest());
            let expected = layout_blob(fixture, &blob_digest);

            let mut into_memory: Vec<u8> = Vec::new();
            let count = client
                .fetch_blob(
                    &tagged,
                    &blob_digest,
                    Some(descriptor.size()),
                    &mut into_memory,
                )
                .await
                .expect("stream a blob into memory");
            assert_eq!(count, descriptor.size());
            assert_eq!(into_memory, expected);
            assert_eq!(sha256_digest(&into_memory), blob_digest.to_string());

            let path = scratch.path().join(blob_digest.hex());
            let mut file = tokio::fs::File::create(&path).await.unwrap();
            let count = client
                .fetch_blob(&tagged, &blob_digest, None, &mut file)
                .await
                .expect("stream a blob into a file");
            tokio::io::AsyncWriteExt::flush(&mut file).await.unwrap();
            drop(file);
            assert_eq!(count, expected.len() as u64);
            assert_eq!(fs::read(&path).unwrap(), expected);
        }
    }
}

#[tokio::test]
async fn config_is_fetched_into_memory_within_a_limit() {
    let registry = start_registry(&["single"]);
    let client = anonymous_client();
    let tagged = reference(&format!("{}/fixtures/single:latest", registry.host()));
    let manifest = client
        .fetch_manifest(&tagged)
        .await
        .expect("fetch manifest");
    let config = image_manifest(&manifest).config();
    let config_digest = digest(config.digest());

    let bytes = client
        .fetch_blob_bytes(&tagged, &config_digest, Some(config.size()), CONFIG_LIMIT)
        .await
        .expect("fetch the config");
    assert_eq!(bytes, layout_blob("single", &config_digest));
    let document: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        document["config"]["Entrypoint"],
        serde_json::json!(["/usr/bin/hello"])
    );
    assert_eq!(document["config"]["User"], "tank");

    let too_small = client
        .fetch_blob_bytes(
            &tagged,
            &config_digest,
            Some(config.size()),
            config.size() - 1,
        )
        .await;
    assert!(
        matches!(&too_small, Err(Error::BlobTooLarge { limit, .. }) if *limit == config.size() - 1),
        "{too_small:?}"
    );
}

#[tokio::test]
async fn docker_media_types_are_served_and_parsed() {
    let registry = start_registry(&["docker-v2"]);
    let client = anonymous_client();

    let single = reference(&format!("{}/fixtures/docker-v2:latest", registry.host()));
    let manifest = client
        .fetch_manifest(&single)
        .await
        .expect("fetch docker manifest");
    assert_eq!(manifest.media_type(), media_type::DOCKER_MANIFEST);
    assert_eq!(
        manifest.digest().to_string(),
        layout_tag("docker-v2", "latest").digest
    );
    let image = image_manifest(&manifest);
    assert_eq!(
        image.layers()[0].media_type().to_string(),
        media_type::DOCKER_LAYER_GZIP
    );
    let layer_digest = digest(image.layers()[0].digest());
    let mut layer = Vec::new();
    client
        .fetch_blob(
            &single,
            &layer_digest,
            Some(image.layers()[0].size()),
            &mut layer,
        )
        .await
        .expect("fetch a docker layer");
    assert_eq!(layer, layout_blob("docker-v2", &layer_digest));

    let list = reference(&format!("{}/fixtures/docker-v2:list", registry.host()));
    let manifest = client
        .fetch_manifest(&list)
        .await
        .expect("fetch manifest list");
    assert_eq!(manifest.media_type(), media_type::DOCKER_MANIFEST_LIST);
    assert_eq!(
        manifest.digest().to_string(),
        layout_tag("docker-v2", "list").digest
    );
    let index = image_index(&manifest);
    assert_eq!(index.manifests().len(), 2);
    let arm = &index.manifests()[1];
    let arm_platform = arm
        .platform()
        .as_ref()
        .expect("list entries have platforms");
    assert_eq!(arm_platform.variant().as_deref(), Some("v7"));
    let arm_manifest = client
        .fetch_manifest_by_digest(&list, &digest(arm.digest()))
        .await
        .expect("fetch a list entry");
    assert_eq!(arm_manifest.media_type(), media_type::DOCKER_MANIFEST);
}

#[tokio::test]
async fn a_missing_tag_is_manifest_unknown() {
    let registry = start_registry(&["single"]);
    let client = anonymous_client();

    let present = reference(&format!("{}/fixtures/single:latest", registry.host()));
    assert!(client.fetch_manifest(&present).await.is_ok());

    let missing_tag = reference(&format!("{}/fixtures/single:no-such-tag", registry.host()));
    let error = client.fetch_manifest(&missing_tag).await.unwrap_err();
    assert!(matches!(error, Error::ManifestUnknown { .. }), "{error:?}");

    let missing_repository =
        reference(&format!("{}/fixtures/never-pushed:latest", registry.host()));
    let error = client
        .fetch_manifest(&missing_repository)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::ManifestUnknown { .. } | Error::NameUnknown { .. }
        ),
        "{error:?}"
    );

    let unknown_digest = digest(sha256_digest(b"no manifest has these bytes"));
    let error = client
        .fetch_manifest_by_digest(&present, &unknown_digest)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::ManifestUnknown { .. }), "{error:?}");
}

#[tokio::test]
async fn a_missing_blob_or_a_wrong_size_is_an_error() {
    let registry = start_registry(&["single"]);
    let client = anonymous_client();
    let tagged = reference(&format!("{}/fixtures/single:latest", registry.host()));
    let manifest = client
        .fetch_manifest(&tagged)
        .await
        .expect("fetch manifest");
    let layer = &image_manifest(&manifest).layers()[0];
    let layer_digest = digest(layer.digest());

    let mut sink = Vec::new();
    let count = client
        .fetch_blob(&tagged, &layer_digest, Some(layer.size()), &mut sink)
        .await
        .expect("the real layer with its real size");
    assert_eq!(count, layer.size());

    let absent = digest(sha256_digest(b"no blob has these bytes"));
    let mut sink = Vec::new();
    let error = client
        .fetch_blob(&tagged, &absent, None, &mut sink)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::BlobUnknown { .. }), "{error:?}");
    assert!(sink.is_empty());

    let mut sink = Vec::new();
    let wrong_size = client
        .fetch_blob(&tagged, &layer_digest, Some(layer.size() + 1), &mut sink)
        .await;
    assert!(
        matches!(
            &wrong_size,
            Err(Error::SizeMismatch { expected, actual, .. })
                if *expected == layer.size() + 1 && *actual == layer.size()
        ),
        "{wrong_size:?}"
    );
}

/// The credentials a pushed test image is protected with.
const USER: &str = "tank-tester";
const PASSWORD: &str = "correct horse battery staple";

fn docker_config_store(dir: &Path, host: &str, user: &str, password: &str) -> CredentialStore {
    let config = write_docker_config(dir, host, user, password).expect("writing config.json");
    CredentialStore::from_files(Some(config), vec![])
}

#[tokio::test]
async fn htpasswd_registry_accepts_credentials_from_a_docker_config() {
    let registry = Registry::builder()
        .htpasswd(USER, PASSWORD)
        .start()
        .expect("docker-registry with htpasswd must start");
    registry
        .push_fixture("single")
        .expect("push with credentials");
    let docker_config = tempfile::tempdir().unwrap();
    let client = client_with(docker_config_store(
        docker_config.path(),
        &registry.host(),
        USER,
        PASSWORD,
    ));

    let tagged = reference(&format!("{}/fixtures/single:latest", registry.host()));
    let manifest = client
        .fetch_manifest(&tagged)
        .await
        .expect("authenticated manifest fetch");
    assert_eq!(
        manifest.digest().to_string(),
        layout_tag("single", "latest").digest
    );
    let layer = &image_manifest(&manifest).layers()[0];
    let mut sink = Vec::new();
    client
        .fetch_blob(
            &tagged,
            &digest(layer.digest()),
            Some(layer.size()),
            &mut sink,
        )
        .await
        .expect("authenticated blob fetch");
    assert_eq!(sink, layout_blob("single", layer.digest()));
}

#[tokio::test]
async fn htpasswd_registry_refuses_missing_or_wrong_credentials() {
    let registry = Registry::builder()
        .htpasswd(USER, PASSWORD)
        .start()
        .expect("docker-registry with htpasswd must start");
    registry
        .push_fixture("single")
        .expect("push with credentials");
    let tagged = reference(&format!("{}/fixtures/single:latest", registry.host()));

    let error = anonymous_client()
        .fetch_manifest(&tagged)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Unauthorized { .. }), "{error:?}");

    let wrong_password = tempfile::tempdir().unwrap();
    let client = client_with(docker_config_store(
        wrong_password.path(),
        &registry.host(),
        USER,
        "wrong password",
    ));
    let error = client.fetch_manifest(&tagged).await.unwrap_err();
    assert!(matches!(error, Error::Unauthorized { .. }), "{error:?}");

    let other_host = tempfile::tempdir().unwrap();
    let client = client_with(docker_config_store(
        other_host.path(),
        "127.0.0.1:1",
        USER,
        PASSWORD,
    ));
    let error = client.fetch_manifest(&tagged).await.unwrap_err();
    assert!(matches!(error, Error::Unauthorized { .. }), "{error:?}");
}
