//! Pushing to a real CNCF Distribution registry on loopback, read back by skopeo.
//!
//! Images are built with tank-testkit (sizes and digests computed, never hand-written),
//! pushed with `Client::push_blob` / `Client::push_manifest`, and then read by `skopeo
//! inspect --raw` and `skopeo copy docker://… oci:…`: the oracle for "the registry holds
//! exactly what tank meant to push". Which requests tank made is read from the registry's
//! access log.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tank_reference::{Digest, Reference};
use tank_registry::{
    Client, ClientConfig, CredentialStore, Error, ManifestKind, PushBlobOptions, PushedBlob,
};
use tank_testkit::{
    Blob, BuiltImage, Compression, CopyOptions, ImageBuilder, IndexBuilder, Platform, Registry,
    TarBuilder, media_type, noise, sha256_digest, skopeo_copy, skopeo_inspect_raw,
    write_docker_config,
};

const MIB: u64 = 1024 * 1024;

fn start_registry() -> Registry {
    Registry::start().expect("docker-registry must start")
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

fn digest(blob: &Blob) -> Digest {
    blob.digest().parse().expect("testkit digests parse")
}

fn small_image(salt: &str) -> BuiltImage {
    let layer = TarBuilder::new()
        .dir("etc", 0o755)
        .file("etc/salt", salt, 0o644);
    ImageBuilder::new(Platform::new("linux", "amd64"))
        .layer(&layer)
        .entrypoint(&["/bin/true"])
        .build()
}

/// Pushes the config and layers of `image`, then its manifest as `tag` (or by digest when
/// `tag` is `None`); returns what each blob push did.
async fn push_image(
    client: &Client,
    repository: &Reference,
    image: &BuiltImage,
    tag: Option<&str>,
) -> Vec<PushedBlob> {
    let mut outcomes = Vec::new();
    for blob in std::iter::once(image.config()).chain(image.layers()) {
        let outcome = client
            .push_blob(
                repository,
                &digest(blob),
                blob.size(),
                &Bytes::from(blob.bytes().to_vec()),
                &PushBlobOptions::default(),
            )
            .await
            .unwrap_or_else(|error| panic!("pushing blob {}: {error}", blob.digest()));
        outcomes.push(outcome);
    }
    let manifest = image.manifest();
    let target = match tag {
        Some(tag) => repository.with_tag(tag).expect("a valid tag"),
        None => repository.with_digest(digest(manifest)),
    };
    let pushed = client
        .push_manifest(&target, manifest.media_type(), manifest.bytes())
        .await
        .expect("pushing the manifest");
    assert_eq!(pushed.to_string(), manifest.digest());
    outcomes
}

/// One request in the registry's access log.
type Logged = tank_testkit::LoggedRequest;

/// Every `/v2/` request the registry has logged, after its log caught up.
fn logged_requests(registry: &Registry) -> Vec<Logged> {
    registry.requests().expect("the registry's access log")
}

/// Requests that send blob content or open uploads in `repository`: POST, PATCH and PUT under
/// `/v2/<repository>/blobs/uploads/`.
fn upload_requests<'a>(requests: &'a [Logged], repository: &str) -> Vec<&'a Logged> {
    let prefix = format!("/v2/{repository}/blobs/uploads/");
    requests
        .iter()
        .filter(|request| request.path.starts_with(&prefix))
        .collect()
}

fn count(requests: &[&Logged], method: &str) -> usize {
    requests
        .iter()
        .filter(|request| request.method == method)
        .count()
}

/// `skopeo copy docker://<image> oci:<dir>:<tag>` (every platform, digests preserved).
fn copy_to_layout(image: &str, dir: &Path, creds: Option<(&str, &str)>) {
    let options = CopyOptions {
        all: true,
        preserve_digests: true,
        src_creds: creds.map(|(user, password)| (user.to_owned(), password.to_owned())),
        ..CopyOptions::default()
    };
    skopeo_copy(
        &format!("docker://{image}"),
        &format!("oci:{}:copied", dir.display()),
        &options,
    )
    .unwrap_or_else(|error| panic!("skopeo copy {image}: {error}"));
}

fn layout_blob(dir: &Path, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").expect("sha256");
    fs::read(dir.join("blobs/sha256").join(hex))
        .unwrap_or_else(|error| panic!("blob {digest} in the copied layout: {error}"))
}

#[tokio::test]
async fn a_pushed_image_reads_back_with_skopeo_and_a_second_push_uploads_nothing() {
    let registry = start_registry();
    let client = anonymous_client();
    let repository = reference(&format!("{}/team/app", registry.host()));
    let image = small_image("first");

    let outcomes = push_image(&client, &repository, &image, Some("v1")).await;
    assert_eq!(outcomes, [PushedBlob::Uploaded, PushedBlob::Uploaded]);

    let tagged = format!("{}/team/app:v1", registry.host());
    let raw = skopeo_inspect_raw(&format!("docker://{tagged}"), None).expect("skopeo inspect");
    assert_eq!(raw, image.manifest().bytes(), "skopeo reads the same bytes");
    assert_eq!(sha256_digest(&raw), image.manifest().digest());
    let copied = tempfile::tempdir().unwrap();
    copy_to_layout(&tagged, copied.path(), None);
    for blob in image.blobs() {
        assert_eq!(layout_blob(copied.path(), blob.digest()), blob.bytes());
    }
    let fetched = client
        .fetch_manifest(&reference(&tagged))
        .await
        .expect("tank reads it back too");
    assert_eq!(fetched.media_type(), media_type::OCI_MANIFEST);
    assert_eq!(fetched.digest().to_string(), image.manifest().digest());
    for blob in std::iter::once(image.config()).chain(image.layers()) {
        assert_eq!(
            client
                .blob_exists(&repository, &digest(blob))
                .await
                .unwrap(),
            Some(blob.size())
        );
    }

    let before = logged_requests(&registry);
    let first_uploads = upload_requests(&before, "team/app");
    assert_eq!(count(&first_uploads, "POST"), 2, "{first_uploads:?}");
    assert_eq!(count(&first_uploads, "PUT"), 2, "{first_uploads:?}");
    assert_eq!(count(&first_uploads, "PATCH"), 0, "{first_uploads:?}");

    let outcomes = push_image(&client, &repository, &image, Some("v1")).await;
    assert_eq!(outcomes, [PushedBlob::Existed, PushedBlob::Existed]);
    let after = logged_requests(&registry);
    assert_eq!(
        upload_requests(&after, "team/app").len(),
        first_uploads.len(),
        "the second push opened or sent uploads: {:?}",
        &after[before.len()..]
    );
    let heads = after[before.len()..]
        .iter()
        .filter(|request| request.method == "HEAD" && request.path.contains("/blobs/"))
        .count();
    assert_eq!(heads, 2, "one existence check per blob");
}

#[tokio::test]
async fn a_blob_in_another_repository_is_mounted_not_uploaded() {
    let registry = start_registry();
    let client = anonymous_client();
    let source_repository = reference(&format!("{}/team/base", registry.host()));
    let target_repository = reference(&format!("{}/team/derived", registry.host()));
    let image = small_image("mounted");
    push_image(&client, &source_repository, &image, Some("v1")).await;
    let layer = &image.layers()[0];
    assert_eq!(
        client
            .blob_exists(&target_repository, &digest(layer))
            .await
            .unwrap(),
        None
    );

    let outcome = client
        .push_blob(
            &target_repository,
            &digest(layer),
            layer.size(),
            &Bytes::from(layer.bytes().to_vec()),
            &PushBlobOptions {
                mount_from: Some("team/base".to_owned()),
                ..PushBlobOptions::default()
            },
        )
        .await
        .expect("mount");
    assert_eq!(outcome, PushedBlob::Mounted);
    assert_eq!(
        client
            .blob_exists(&target_repository, &digest(layer))
            .await
            .unwrap(),
        Some(layer.size())
    );
    let uploads = logged_requests(&registry);
    let uploads = upload_requests(&uploads, "team/derived");
    assert_eq!(uploads.len(), 1, "{uploads:?}");
    assert_eq!(uploads[0].method, "POST");
    assert!(
        uploads[0].path.contains("mount=") && uploads[0].path.contains("from=team%2Fbase"),
        "{uploads:?}"
    );

    // A blob the source repository does not have: the registry opens an upload instead.
    let config = image.config();
    let other = small_image("not in base");
    let other_layer = &other.layers()[0];
    let outcome = client
        .push_blob(
            &target_repository,
            &digest(other_layer),
            other_layer.size(),
            &Bytes::from(other_layer.bytes().to_vec()),
            &PushBlobOptions {
                mount_from: Some("team/base".to_owned()),
                ..PushBlobOptions::default()
            },
        )
        .await
        .expect("mount falls back to an upload");
    assert_eq!(outcome, PushedBlob::Uploaded);
    // The rest of the image, so that skopeo can read the derived repository.
    client
        .push_blob(
            &target_repository,
            &digest(config),
            config.size(),
            &Bytes::from(config.bytes().to_vec()),
            &PushBlobOptions::default(),
        )
        .await
        .unwrap();
    client
        .push_manifest(
            &target_repository.with_tag("v1").unwrap(),
            image.manifest().media_type(),
            image.manifest().bytes(),
        )
        .await
        .unwrap();
    let copied = tempfile::tempdir().unwrap();
    copy_to_layout(
        &format!("{}/team/derived:v1", registry.host()),
        copied.path(),
        None,
    );
    assert_eq!(layout_blob(copied.path(), layer.digest()), layer.bytes());
}

/// The seed of the test data: bytes that do not repeat in any short period (so that nothing
/// could pass by accident).
const NOISE_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

#[tokio::test]
async fn a_large_blob_streams_from_disk_in_chunks_and_reads_back_identical() {
    let registry = start_registry();
    let client = anonymous_client();
    let repository = reference(&format!("{}/team/big", registry.host()));
    let layer_tar = TarBuilder::new()
        .file(
            "data.bin",
            noise(NOISE_SEED, 5 * MIB as usize + 12_345),
            0o644,
        )
        .build();
    let image = ImageBuilder::new(Platform::new("linux", "amd64"))
        .layer_tar(layer_tar, Compression::None)
        .build();
    let layer = &image.layers()[0];
    let scratch = tempfile::tempdir().unwrap();
    let layer_path: PathBuf = scratch.path().join("layer.tar");
    fs::write(&layer_path, layer.bytes()).unwrap();

    let outcome = client
        .push_blob(
            &repository,
            &digest(layer),
            layer.size(),
            &layer_path,
            &PushBlobOptions {
                chunk_size: Some(MIB),
                ..PushBlobOptions::default()
            },
        )
        .await
        .expect("chunked upload");
    assert_eq!(outcome, PushedBlob::Uploaded);
    let config = image.config();
    let small = client
        .push_blob(
            &repository,
            &digest(config),
            config.size(),
            &Bytes::from(config.bytes().to_vec()),
            &PushBlobOptions {
                chunk_size: Some(MIB),
                ..PushBlobOptions::default()
            },
        )
        .await
        .expect("a blob under the chunk size");
    assert_eq!(small, PushedBlob::Uploaded);
    client
        .push_manifest(
            &repository.with_tag("v1").unwrap(),
            image.manifest().media_type(),
            image.manifest().bytes(),
        )
        .await
        .expect("manifest");

    let requests = logged_requests(&registry);
    let uploads = upload_requests(&requests, "team/big");
    let chunks = layer.size().div_ceil(MIB) as usize;
    assert_eq!(chunks, 6, "the layer spans six 1 MiB chunks");
    assert_eq!(count(&uploads, "PATCH"), chunks, "{uploads:?}");
    assert_eq!(
        count(&uploads, "PUT"),
        2,
        "the chunked upload's closing PUT and the config's monolithic PUT"
    );

    let copied = tempfile::tempdir().unwrap();
    copy_to_layout(
        &format!("{}/team/big:v1", registry.host()),
        copied.path(),
        None,
    );
    let read_back = layout_blob(copied.path(), layer.digest());
    assert_eq!(read_back.len() as u64, layer.size());
    assert!(
        read_back == layer.bytes(),
        "the layer differs after the push"
    );
}

#[tokio::test]
async fn a_source_that_does_not_hold_the_blob_is_never_committed() {
    let registry = start_registry();
    let client = anonymous_client();
    let repository = reference(&format!("{}/team/app", registry.host()));
    let content = noise(NOISE_SEED, 300_000);
    let blob_digest: Digest = sha256_digest(&content).parse().unwrap();
    let mut tampered = content.clone();
    tampered[123_456] ^= 0x01;

    for chunk_size in [None, Some(100_000)] {
        let options = PushBlobOptions {
            chunk_size,
            ..PushBlobOptions::default()
        };
        let error = client
            .push_blob(
                &repository,
                &blob_digest,
                content.len() as u64,
                &Bytes::from(tampered.clone()),
                &options,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&error, Error::DigestMismatch { expected, .. } if expected == &blob_digest),
            "{chunk_size:?}: {error:?}"
        );
        assert_eq!(
            client.blob_exists(&repository, &blob_digest).await.unwrap(),
            None
        );
        let short = client
            .push_blob(
                &repository,
                &blob_digest,
                content.len() as u64,
                &Bytes::from(content[..1000].to_vec()),
                &options,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(short, Error::SizeMismatch { actual: 1000, .. }),
            "{short:?}"
        );
    }
    let missing = client
        .push_blob(
            &repository,
            &blob_digest,
            content.len() as u64,
            &PathBuf::from("/nonexistent/tank/blob"),
            &PushBlobOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(missing, Error::BlobSource { .. }), "{missing:?}");

    // The right content goes through.
    let outcome = client
        .push_blob(
            &repository,
            &blob_digest,
            content.len() as u64,
            &Bytes::from(content.clone()),
            &PushBlobOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(outcome, PushedBlob::Uploaded);
    assert_eq!(
        client.blob_exists(&repository, &blob_digest).await.unwrap(),
        Some(content.len() as u64)
    );
}

#[tokio::test]
async fn an_index_is_pushed_with_its_media_type_and_read_back() {
    let registry = start_registry();
    let client = anonymous_client();
    let repository = reference(&format!("{}/team/multi", registry.host()));
    let index = IndexBuilder::new()
        .image(
            ImageBuilder::new(Platform::new("linux", "amd64"))
                .layer(&TarBuilder::new().file("arch", "amd64\n", 0o644)),
        )
        .image(
            ImageBuilder::new(Platform::new("linux", "arm64").with_variant("v8"))
                .layer(&TarBuilder::new().file("arch", "arm64\n", 0o644)),
        )
        .build();
    for image in index.images() {
        push_image(&client, &repository, image, None).await;
    }
    let top = index.index();
    assert_eq!(top.media_type(), media_type::OCI_INDEX);
    let pushed = client
        .push_manifest(
            &repository.with_tag("multi").unwrap(),
            top.media_type(),
            top.bytes(),
        )
        .await
        .expect("index push");
    assert_eq!(pushed.to_string(), top.digest());

    let tagged = format!("{}/team/multi:multi", registry.host());
    let raw = skopeo_inspect_raw(&format!("docker://{tagged}"), None).unwrap();
    assert_eq!(raw, top.bytes());
    let fetched = client.fetch_manifest(&reference(&tagged)).await.unwrap();
    assert_eq!(fetched.media_type(), media_type::OCI_INDEX);
    let ManifestKind::Index(parsed) = fetched.kind() else {
        panic!("an index was pushed")
    };
    assert_eq!(parsed.manifests().len(), 2);
    let copied = tempfile::tempdir().unwrap();
    copy_to_layout(&tagged, copied.path(), None);
    for blob in index.blobs() {
        assert_eq!(layout_blob(copied.path(), blob.digest()), blob.bytes());
    }

    // Pushed by digest, the bytes must match the digest before anything is sent.
    let wrong = repository.with_digest(digest(index.images()[0].manifest()));
    let error = client
        .push_manifest(&wrong, top.media_type(), top.bytes())
        .await
        .unwrap_err();
    assert!(matches!(error, Error::DigestMismatch { .. }), "{error:?}");
}

#[tokio::test]
async fn a_manifest_naming_a_missing_blob_is_rejected_with_the_registry_error() {
    let registry = start_registry();
    let client = anonymous_client();
    let repository = reference(&format!("{}/team/app", registry.host()));
    let image = small_image("never uploaded");
    let error = client
        .push_manifest(
            &repository.with_tag("v1").unwrap(),
            image.manifest().media_type(),
            image.manifest().bytes(),
        )
        .await
        .unwrap_err();
    match &error {
        Error::PushRejected {
            status,
            errors,
            what,
            ..
        } => {
            assert_eq!(*status, 400);
            assert_eq!(what, "manifest v1");
            assert!(
                errors
                    .iter()
                    .any(|entry| entry.code == "MANIFEST_BLOB_UNKNOWN"),
                "{errors:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        error.to_string().contains("MANIFEST_BLOB_UNKNOWN"),
        "{error}"
    );
}

const USER: &str = "tank-pusher";
const PASSWORD: &str = "push it real good";

#[tokio::test]
async fn pushing_to_an_htpasswd_registry_needs_its_credentials() {
    let registry = Registry::builder()
        .htpasswd(USER, PASSWORD)
        .start()
        .expect("docker-registry with htpasswd must start");
    let repository = reference(&format!("{}/team/private", registry.host()));
    let image = small_image("private");

    let config = image.config();
    let refused = anonymous_client()
        .push_blob(
            &repository,
            &digest(config),
            config.size(),
            &Bytes::from(config.bytes().to_vec()),
            &PushBlobOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::Unauthorized { .. }), "{refused:?}");

    let docker_config = tempfile::tempdir().unwrap();
    let config_file = write_docker_config(docker_config.path(), &registry.host(), USER, PASSWORD)
        .expect("writing config.json");
    let client = client_with(CredentialStore::from_files(Some(config_file), vec![]));
    let outcomes = push_image(&client, &repository, &image, Some("v1")).await;
    assert_eq!(outcomes, [PushedBlob::Uploaded, PushedBlob::Uploaded]);

    let tagged = format!("{}/team/private:v1", registry.host());
    let raw = skopeo_inspect_raw(&format!("docker://{tagged}"), Some((USER, PASSWORD))).unwrap();
    assert_eq!(raw, image.manifest().bytes());
    let copied = tempfile::tempdir().unwrap();
    copy_to_layout(&tagged, copied.path(), Some((USER, PASSWORD)));
    let layer = &image.layers()[0];
    assert_eq!(layout_blob(copied.path(), layer.digest()), layer.bytes());
}
