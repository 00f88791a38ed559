//! Copy planning: what a push or copy writes ([`Plan`]: the manifests as their bytes, the
//! blobs as [`BlobJob`]s, each digest once), from an assembled image or index, from a layout's
//! [`ImageOrIndex`], or from a registry's manifests as its client parsed them.

use std::path::PathBuf;
use std::sync::Arc;

use oci_spec::image::ImageManifest;
use tank_reference::{Digest, Reference};
use tank_registry::{Client, ManifestKind};

use crate::Error;
use crate::assemble::{Image, ImageIndex};
use crate::build::BlobRef;
use crate::copy::progress::{Meter, TransferProgress};
use crate::copy::{CopyOptions, PushOptions};
use crate::layout::ImageOrIndex;
use crate::oci::document::Document;
use crate::oci::{Descriptor, is_index_media_type};

/// A manifest or index to write: its bytes exactly as its digest covers them.
#[derive(Clone)]
pub(crate) struct ManifestBytes {
    pub(crate) digest: Digest,
    pub(crate) media_type: String,
    pub(crate) bytes: Arc<[u8]>,
}

/// Where the bytes of a blob come from.
#[derive(Clone)]
pub(crate) enum Origin {
    Memory(Arc<[u8]>),
    File(PathBuf),
    /// The repository of this reference.
    Registry(Reference),
}

/// One blob to transfer.
pub(crate) struct BlobJob {
    pub(crate) descriptor: Descriptor,
    pub(crate) origin: Origin,
}

/// Everything a push or copy writes.
pub(crate) struct Plan {
    pub(crate) root: ManifestBytes,
    /// The images of an index, in its order; empty for an image.
    pub(crate) children: Vec<ManifestBytes>,
    /// The configs and layers of every image, each digest once.
    pub(crate) jobs: Vec<BlobJob>,
    /// What a copy into a layout records in `index.json`; `None` for a push.
    pub(crate) content: Option<Content>,
}

/// What a copy into a layout writes its `index.json` entry for.
#[derive(Clone)]
#[expect(
    clippy::large_enum_variant,
    reason = "one per copy, moved once into the task that writes index.json"
)]
pub(crate) enum Content {
    /// The image or index itself, read from a layout.
    Item(ImageOrIndex),
    /// The manifests fetched from a registry; their images are read back from the layout's
    /// blobs once written, every blob verified.
    Documents {
        /// The manifest or index copied.
        root: Document,
        /// The images of an index, in its order.
        children: Vec<Document>,
    },
}

/// The settings a transfer runs with.
pub(crate) struct TransferSettings {
    pub(crate) progress: Option<Arc<dyn TransferProgress>>,
    pub(crate) concurrency: usize,
    pub(crate) chunk_size: Option<u64>,
    pub(crate) temp_dir: Option<PathBuf>,
}

impl TransferSettings {
    pub(crate) fn from_push(options: &PushOptions) -> TransferSettings {
        TransferSettings {
            progress: options.progress.clone(),
            concurrency: options.concurrency,
            chunk_size: options.chunk_size,
            temp_dir: None,
        }
    }

    pub(crate) fn from_copy(options: &CopyOptions) -> TransferSettings {
        TransferSettings {
            progress: options.progress.clone(),
            concurrency: options.concurrency,
            chunk_size: options.chunk_size,
            temp_dir: options.temp_dir.clone(),
        }
    }

    pub(crate) fn meter(&self, index: usize) -> Option<Meter> {
        self.progress
            .clone()
            .map(|progress| Meter::new(progress, index))
    }
}

/// What the blob transfers came to.
#[derive(Clone, Copy, Default)]
pub(crate) struct TransferCounts {
    pub(crate) copied: usize,
    pub(crate) mounted: usize,
    pub(crate) skipped: usize,
    pub(crate) bytes: u64,
}

pub(crate) fn manifest_of_image(image: &Image) -> ManifestBytes {
    ManifestBytes {
        digest: image.manifest_digest().clone(),
        media_type: image.format().manifest_media_type().to_owned(),
        bytes: Arc::from(image.manifest_bytes()),
    }
}

pub(crate) fn manifest_of_index(index: &ImageIndex) -> ManifestBytes {
    ManifestBytes {
        digest: index.manifest_digest().clone(),
        media_type: index.format().index_media_type().to_owned(),
        bytes: Arc::from(index.manifest_bytes()),
    }
}

/// Adds a job unless a blob with the same digest has one.
pub(crate) fn add_job(jobs: &mut Vec<BlobJob>, descriptor: Descriptor, origin: Origin) {
    if !jobs
        .iter()
        .any(|job| job.descriptor.digest() == descriptor.digest())
    {
        jobs.push(BlobJob { descriptor, origin });
    }
}

pub(crate) fn image_jobs(image: &Image, jobs: &mut Vec<BlobJob>) {
    add_job(
        jobs,
        image.config_descriptor().clone(),
        Origin::Memory(Arc::from(image.config_bytes())),
    );
    for (descriptor, _, blob) in image.layers() {
        let origin = match blob.blob() {
            BlobRef::Bytes(bytes) => Origin::Memory(Arc::from(bytes)),
            BlobRef::File(path) => Origin::File(path.to_path_buf()),
        };
        add_job(jobs, descriptor.clone(), origin);
    }
}

pub(crate) fn plan_of_item(item: ImageOrIndex) -> Plan {
    let mut jobs = Vec::new();
    let (root, children) = match &item {
        ImageOrIndex::Image(image) => {
            image_jobs(image, &mut jobs);
            (manifest_of_image(image), Vec::new())
        }
        ImageOrIndex::Index(index) => {
            for image in index.images() {
                image_jobs(image, &mut jobs);
            }
            (
                manifest_of_index(index),
                index.images().iter().map(manifest_of_image).collect(),
            )
        }
    };
    Plan {
        root,
        children,
        jobs,
        content: Some(Content::Item(item)),
    }
}

/// Reads the manifest of `reference` and, for an index, every manifest it names, as the
/// registry client parsed them.
pub(crate) async fn plan_from_registry(
    client: &Client,
    reference: &Reference,
) -> Result<Plan, Error> {
    let what = reference.to_string();
    let root = Document::from_manifest(&client.fetch_manifest(reference).await?);
    let origin = Origin::Registry(reference.clone());
    let mut jobs = Vec::new();
    let mut children = Vec::new();
    match root.kind() {
        ManifestKind::Image(image) => image_blob_jobs(image, &root, &what, &origin, &mut jobs)?,
        ManifestKind::Index(index) => {
            for entry in index.manifests() {
                let descriptor = descriptor_of(entry, &what, &root)?;
                if is_index_media_type(descriptor.media_type()) {
                    return Err(nested_index(&what, &root));
                }
                let child = client
                    .fetch_manifest_by_digest(reference, descriptor.digest())
                    .await?;
                let child = Document::from_manifest(&child);
                let ManifestKind::Image(image) = child.kind() else {
                    return Err(nested_index(&what, &root));
                };
                image_blob_jobs(image, &child, &what, &origin, &mut jobs)?;
                children.push(child);
            }
        }
    }
    Ok(Plan {
        root: manifest_of_document(&root),
        children: children.iter().map(manifest_of_document).collect(),
        jobs,
        content: Some(Content::Documents { root, children }),
    })
}

fn manifest_of_document(document: &Document) -> ManifestBytes {
    ManifestBytes {
        digest: document.digest().clone(),
        media_type: document.media_type().to_owned(),
        bytes: document.raw().clone(),
    }
}

/// The config and layer descriptors of an image manifest, as jobs.
fn image_blob_jobs(
    image: &ImageManifest,
    document: &Document,
    what: &str,
    origin: &Origin,
    jobs: &mut Vec<BlobJob>,
) -> Result<(), Error> {
    add_job(
        jobs,
        descriptor_of(image.config(), what, document)?,
        origin.clone(),
    );
    for layer in image.layers() {
        add_job(jobs, descriptor_of(layer, what, document)?, origin.clone());
    }
    Ok(())
}

/// A descriptor of `document`, its digest one tank can verify.
fn descriptor_of(
    descriptor: &oci_spec::image::Descriptor,
    what: &str,
    document: &Document,
) -> Result<Descriptor, Error> {
    Descriptor::from_oci(descriptor).map_err(|source| Error::InvalidDescriptorDigest {
        reference: what.to_owned(),
        what: format!("a descriptor of manifest {}", document.digest()),
        value: descriptor.digest().to_string(),
        source: Box::new(source),
    })
}

fn nested_index(what: &str, root: &Document) -> Error {
    Error::InvalidManifest {
        reference: what.to_owned(),
        digest: root.digest().to_string(),
        problem: "it names another index (nested indexes are not copied)".to_owned(),
    }
}
