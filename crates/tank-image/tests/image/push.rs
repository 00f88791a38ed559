//! `push_image`, `push_index` and `copy` against docker-registry on loopback: the bytes
//! skopeo reads back, chunked uploads of file-backed layers, progress reports, skipped blobs,
//! and a registry image copied into a layout that `read_layout` reads back verified.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tank_image::{
    AssembleOptions, BlobInfo, Compression, CopyOptions, Endpoint, Image, ImageIndex, ImageOrIndex,
    IndexOptions, LayerEntry, LayerOptions, PushOptions, Transfer, TransferProgress, assemble,
    copy, layer_from_entries, push_image, push_index, read_layout,
};
use tank_reference::{Digest, Reference};
use tank_registry::{Client, ClientConfig};
use tank_testkit::{Registry, sha256_digest, skopeo_inspect_raw};

use tank_testkit::noise;

/// An image for `architecture`: a small in-memory layer and a ~300 KiB uncompressed layer
/// in a temporary file.
fn image(architecture: &str, seed: u64) -> Image {
    let small = layer_from_entries(
        &[
            LayerEntry::dir("etc", 0o755),
            LayerEntry::file("etc/arch", format!("{architecture}\n"), 0o644),
        ],
        &LayerOptions {
            in_memory: true,
            mtime: Some(1),
            ..LayerOptions::default()
        },
    )
    .unwrap();
    let big = layer_from_entries(
        &[LayerEntry::file("data", noise(seed, 300 * 1024), 0o644)],
        &LayerOptions {
            compression: Compression::None,
            mtime: Some(1),
            ..LayerOptions::default()
        },
    )
    .unwrap();
    let config = serde_json::json!({"architecture": architecture, "os": "linux", "config": {}});
    assemble(config, vec![small, big], &AssembleOptions::default()).unwrap()
}

/// Records every progress call.
#[derive(Default)]
struct Recorder {
    blobs: Mutex<Vec<BlobInfo>>,
    bytes: Mutex<BTreeMap<usize, u64>>,
    finished: Mutex<BTreeMap<usize, Transfer>>,
    manifests: Mutex<Vec<Digest>>,
}

impl TransferProgress for Recorder {
    fn start(&self, blobs: &[BlobInfo]) {
        self.blobs.lock().unwrap().extend_from_slice(blobs);
    }
    fn transferring(&self, index: usize, bytes: u64) {
        let mut seen = self.bytes.lock().unwrap();
        let entry = seen.entry(index).or_default();
        *entry = (*entry).max(bytes);
    }
    fn finished(&self, index: usize, transfer: Transfer) {
        self.finished.lock().unwrap().insert(index, transfer);
    }
    fn manifest_written(&self, digest: &Digest, _: &str) {
        self.manifests.lock().unwrap().push(digest.clone());
    }
}

fn raw(reference: &str) -> Vec<u8> {
    skopeo_inspect_raw(&format!("docker://{reference}"), None).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_pushes_in_chunks_reads_back_byte_identical_and_a_second_push_skips_it_all() {
    let registry = Registry::start().unwrap();
    let client = Client::new(ClientConfig::default()).unwrap();
    let index = ImageIndex::new(
        vec![image("amd64", 1), image("arm64", 2)],
        &IndexOptions::default(),
    )
    .unwrap();
    let reference: Reference = format!("{}/lib/index:1", registry.host()).parse().unwrap();
    let recorder = Arc::new(Recorder::default());
    let options = PushOptions {
        progress: Some(recorder.clone()),
        concurrency: 2,
        chunk_size: Some(64 * 1024),
    };
    let digest = push_index(&client, &index, &reference, &options)
        .await
        .unwrap();
    assert_eq!(&digest, index.manifest_digest());
    assert_eq!(raw(&reference.to_string()), index.manifest_bytes());
    for image in index.images() {
        let at = format!("{}/lib/index@{}", registry.host(), image.manifest_digest());
        assert_eq!(raw(&at), image.manifest_bytes());
    }

    // Six blobs (two configs, four layers), each sent whole, then three manifests.
    let blobs = recorder.blobs.lock().unwrap().clone();
    assert_eq!(blobs.len(), 6);
    let finished = recorder.finished.lock().unwrap().clone();
    assert_eq!(finished.len(), 6);
    assert!(
        finished
            .values()
            .all(|transfer| *transfer == Transfer::Copied)
    );
    let bytes = recorder.bytes.lock().unwrap().clone();
    for (index, blob) in blobs.iter().enumerate() {
        assert_eq!(bytes.get(&index), Some(&blob.size), "{}", blob.digest);
    }
    let manifests = recorder.manifests.lock().unwrap().clone();
    assert_eq!(manifests.len(), 3);
    assert_eq!(manifests.last(), Some(index.manifest_digest()));

    let recorder = Arc::new(Recorder::default());
    let options = PushOptions {
        progress: Some(recorder.clone()),
        ..PushOptions::default()
    };
    push_index(&client, &index, &reference, &options)
        .await
        .unwrap();
    let finished = recorder.finished.lock().unwrap().clone();
    assert_eq!(finished.len(), 6);
    assert!(
        finished
            .values()
            .all(|transfer| *transfer == Transfer::Skipped)
    );
    assert!(recorder.bytes.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_pushed_by_digest_copies_into_a_layout_that_reads_back_verified() {
    let registry = Registry::start().unwrap();
    let client = Client::new(ClientConfig::default()).unwrap();
    let image = image("amd64", 3);
    let by_digest: Reference = format!("{}/lib/image@{}", registry.host(), image.manifest_digest())
        .parse()
        .unwrap();
    let digest = push_image(&client, &image, &by_digest, &PushOptions::default())
        .await
        .unwrap();
    assert_eq!(&digest, image.manifest_digest());
    assert_eq!(raw(&by_digest.to_string()), image.manifest_bytes());

    // A digest the manifest does not have is refused before anything is sent.
    let wrong: Reference = format!("{}/lib/other@{}", registry.host(), sha256_digest(b"x"))
        .parse()
        .unwrap();
    let recorder = Arc::new(Recorder::default());
    let options = PushOptions {
        progress: Some(recorder.clone()),
        ..PushOptions::default()
    };
    let error = push_image(&client, &image, &wrong, &options)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("digest mismatch"), "{error}");
    assert!(recorder.blobs.lock().unwrap().is_empty());

    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let copied = copy(
        &client,
        &Endpoint::Registry(by_digest.clone()),
        &Endpoint::Layout {
            dir: layout.clone(),
            tag: "v1".to_owned(),
        },
        &CopyOptions {
            temp_dir: Some(work.path().to_path_buf()),
            ..CopyOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(&copied.manifest_digest, image.manifest_digest());
    assert_eq!((copied.blobs_copied, copied.blobs_skipped), (3, 0));
    assert_eq!(copied.images, 1);
    let ImageOrIndex::Image(read) = read_layout(&layout).unwrap().read("v1").unwrap() else {
        panic!("the layout holds an image");
    };
    assert_eq!(read.manifest_bytes(), image.manifest_bytes());
    assert_eq!(read.config_bytes(), image.config_bytes());
    let diff_ids = |image: &Image| -> Vec<Digest> {
        image
            .layers()
            .map(|(_, diff_id, _)| diff_id.clone())
            .collect()
    };
    assert_eq!(diff_ids(&read), diff_ids(&image));
    // No temporary file is left behind, in the layout or in the temporary directory.
    let leftovers: Vec<_> = walk(work.path())
        .into_iter()
        .filter(|path| {
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".tank-")
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        }
        found.push(path);
    }
    found
}
