//! The behaviours on which the layout reader and `copy` once disagreed (each had its own
//! reader), decided once: a manifest whose `layers` is not an array is refused, a bad diff_id
//! is `Error::InvalidDiffId`, and every layer file is verified against its descriptor, whether
//! a layout is read, copied from, or copied into.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tank_image::{
    AssembleOptions, CopyOptions, Endpoint, Error, Image, LayerEntry, LayerOptions, PushOptions,
    assemble, copy, layer_from_entries, push_image, read_layout, write_layout,
};
use tank_reference::{Algorithm, Digest, Reference};
use tank_registry::{Client, ClientConfig, PushBlobOptions};
use tank_testkit::Registry;

use tank_testkit::noise;

/// A two-layer image (gzip, then plain), tagged `v1` when written.
fn image() -> Image {
    let options = LayerOptions {
        in_memory: true,
        mtime: Some(1),
        ..LayerOptions::default()
    };
    let base = layer_from_entries(
        &[LayerEntry::file("data", noise(7, 64 * 1024), 0o644)],
        &options,
    )
    .unwrap();
    let top = layer_from_entries(&[LayerEntry::file("etc/motd", "hi\n", 0o644)], &options).unwrap();
    let config = json!({"architecture": "amd64", "os": "linux", "config": {}});
    let options = AssembleOptions {
        tag: Some("v1".to_owned()),
        ..AssembleOptions::default()
    };
    assemble(config, vec![base, top], &options).unwrap()
}

fn blob_file(layout: &Path, digest: &Digest) -> PathBuf {
    layout
        .join("blobs")
        .join(digest.algorithm().as_str())
        .join(digest.hex())
}

/// Writes `bytes` as a blob of the layout; returns its descriptor's digest and size.
fn add_blob(layout: &Path, bytes: &[u8]) -> (Digest, u64) {
    let digest = Digest::of(Algorithm::Sha256, bytes);
    fs::write(blob_file(layout, &digest), bytes).unwrap();
    (digest, bytes.len() as u64)
}

/// A layout holding [`image`] under `v1`, with its config and manifest edited by `edit`
/// (the edited documents written as new blobs, the manifest's config descriptor and the
/// `index.json` entry pointing at them).
fn edited_layout(edit: impl FnOnce(&mut Value, &mut Value)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let image = image();
    write_layout(dir.path(), &[(None, (&image).into())]).unwrap();
    let mut manifest: Value = serde_json::from_slice(image.manifest_bytes()).unwrap();
    let mut config: Value = serde_json::from_slice(image.config_bytes()).unwrap();
    edit(&mut manifest, &mut config);
    let (config_digest, config_size) = add_blob(dir.path(), &serde_json::to_vec(&config).unwrap());
    manifest["config"]["digest"] = json!(config_digest.to_string());
    manifest["config"]["size"] = json!(config_size);
    let (digest, size) = add_blob(dir.path(), &serde_json::to_vec(&manifest).unwrap());
    let index_path = dir.path().join("index.json");
    let mut index: Value = serde_json::from_slice(&fs::read(&index_path).unwrap()).unwrap();
    index["manifests"][0]["digest"] = json!(digest.to_string());
    index["manifests"][0]["size"] = json!(size);
    fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    dir
}

fn layout_endpoint(dir: &Path, tag: &str) -> Endpoint {
    Endpoint::Layout {
        dir: dir.to_path_buf(),
        tag: tag.to_owned(),
    }
}

/// Copies the layout's `v1` into a fresh layout.
async fn copy_out(layout: &Path) -> Result<tank_image::Copied, Error> {
    let client = Client::new(ClientConfig::default()).unwrap();
    let destination = tempfile::tempdir().unwrap();
    copy(
        &client,
        &layout_endpoint(layout, "v1"),
        &layout_endpoint(destination.path(), "v1"),
        &CopyOptions::default(),
    )
    .await
}

/// Decided: `layers` that is not an array (an object, `null`, or missing) is refused, by the
/// reader and so by a copy from the layout (copy's own reader read it as no layers).
#[tokio::test]
async fn a_manifest_whose_layers_is_not_an_array_is_refused_by_read_and_copy() {
    for layers in [Some(json!({})), Some(Value::Null), None] {
        let layout = edited_layout(|manifest, config| {
            match &layers {
                Some(layers) => manifest["layers"] = layers.clone(),
                None => {
                    manifest.as_object_mut().unwrap().remove("layers");
                }
            }
            config["rootfs"]["diff_ids"] = json!([]);
        });
        let error = read_layout(layout.path()).unwrap().read("v1").unwrap_err();
        assert!(
            matches!(&error, Error::InvalidLayout { problem, .. } if problem.contains("layers")),
            "{layers:?}: {error}"
        );
        let error = copy_out(layout.path()).await.unwrap_err();
        assert!(
            matches!(&error, Error::InvalidLayout { problem, .. } if problem.contains("layers")),
            "{layers:?}: {error}"
        );
    }
}

/// Decided: a diff_id that is not a digest tank can verify (or not a string) is
/// `Error::InvalidDiffId`, from the layout reader and from a copy (which said
/// `InvalidDescriptorDigest` while the reader said `InvalidLayout`).
#[tokio::test]
async fn a_bad_diff_id_is_invalid_diff_id_from_read_and_copy() {
    for bad in [json!("sha256:not-hex"), json!(7)] {
        let layout = edited_layout(|_, config| config["rootfs"]["diff_ids"][1] = bad.clone());
        let error = read_layout(layout.path()).unwrap().read("v1").unwrap_err();
        assert!(
            matches!(&error, Error::InvalidDiffId { index: 1, .. }),
            "{bad}: {error}"
        );
        let error = copy_out(layout.path()).await.unwrap_err();
        assert!(
            matches!(&error, Error::InvalidDiffId { index: 1, .. }),
            "{bad}: {error}"
        );
    }
}

/// The same from a registry: the image is pushed as its blobs and manifest bytes, and a
/// copy into a layout refuses its config.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_diff_id_in_a_registry_image_is_invalid_diff_id_when_copied_into_a_layout() {
    let registry = Registry::start().unwrap();
    let client = Client::new(ClientConfig::default()).unwrap();
    let layout = edited_layout(|_, config| config["rootfs"]["diff_ids"][0] = json!("sha256:"));
    let reference: Reference = format!("{}/lib/bad:1", registry.host()).parse().unwrap();
    let index: Value =
        serde_json::from_slice(&fs::read(layout.path().join("index.json")).unwrap()).unwrap();
    let manifest_digest: Digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let manifest_bytes = fs::read(blob_file(layout.path(), &manifest_digest)).unwrap();
    let manifest: Value = serde_json::from_slice(&manifest_bytes).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    for descriptor in layers.iter().chain([&manifest["config"]]) {
        let digest: Digest = descriptor["digest"].as_str().unwrap().parse().unwrap();
        let path = blob_file(layout.path(), &digest);
        let size = descriptor["size"].as_u64().unwrap();
        client
            .push_blob(
                &reference,
                &digest,
                size,
                &path,
                &PushBlobOptions::default(),
            )
            .await
            .unwrap();
    }
    client
        .push_manifest(
            &reference,
            manifest["mediaType"].as_str().unwrap(),
            &manifest_bytes,
        )
        .await
        .unwrap();
    let destination = tempfile::tempdir().unwrap();
    let error = copy(
        &client,
        &Endpoint::Registry(reference),
        &layout_endpoint(destination.path(), "v1"),
        &CopyOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&error, Error::InvalidDiffId { index: 0, .. }),
        "{error}"
    );
}

/// Decided: every layer file is verified against its descriptor when a copy reads a layout
/// (as the reader does) and when a copy into a layout finishes: a layer file of the right
/// size but the wrong bytes, already in the destination (and so not written again), is
/// refused instead of being recorded in `index.json`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_verify_every_layer_file_of_a_layout() {
    // From a layout whose layer was tampered with.
    let image = image();
    let source = tempfile::tempdir().unwrap();
    write_layout(source.path(), &[(None, (&image).into())]).unwrap();
    let (layer, _, _) = image.layers().next().unwrap();
    let tampered = blob_file(source.path(), layer.digest());
    let mut bytes = fs::read(&tampered).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(&tampered, &bytes).unwrap();
    let error = copy_out(source.path()).await.unwrap_err();
    assert!(
        matches!(&error, Error::BlobMismatch { path, .. } if *path == tampered),
        "{error}"
    );

    // Into a layout that already holds a corrupt file of the layer's size.
    let registry = Registry::start().unwrap();
    let client = Client::new(ClientConfig::default()).unwrap();
    let reference: Reference = format!("{}/lib/image:1", registry.host()).parse().unwrap();
    push_image(&client, &image, &reference, &PushOptions::default())
        .await
        .unwrap();
    let destination = tempfile::tempdir().unwrap();
    let corrupt = blob_file(destination.path(), layer.digest());
    fs::create_dir_all(corrupt.parent().unwrap()).unwrap();
    fs::write(&corrupt, &bytes).unwrap();
    let error = copy(
        &client,
        &Endpoint::Registry(reference),
        &layout_endpoint(destination.path(), "v1"),
        &CopyOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&error, Error::BlobMismatch { path, .. } if *path == corrupt),
        "{error}"
    );
    assert!(
        !destination.path().join("index.json").exists(),
        "no index.json entry names the corrupt image"
    );
}
