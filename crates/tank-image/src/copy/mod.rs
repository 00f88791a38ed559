//! Pushing and copying: [`push_image`] and [`push_index`] send an assembled image or index to
//! a registry; [`copy`] moves an image, or a multi-platform index with every image it names,
//! between registries and OCI image layouts.
//!
//! Manifests and indexes travel as the bytes they are: nothing is parsed and written again,
//! so every digest is the same at both ends. Blobs the destination holds already are not
//! sent; between two repositories of one registry they are mounted instead of copied.
//!
//! A copy runs in three steps: the source's manifests are read (the root, then each image an
//! index names), then the blobs are transferred, several at once, and last the manifests are
//! written, images before the index that names them and the root (under the destination's
//! tag) last, so a reader never finds a manifest whose blobs are missing.

mod endpoint;
mod plan;
mod progress;
mod source;
mod transfer;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use tank_reference::{Digest, Reference};
use tank_registry::Client;

use crate::Error;
use crate::assemble::{Image, ImageIndex};
use crate::layout::read_layout;
use crate::task::blocking;

pub use endpoint::Endpoint;
use plan::{
    Plan, TransferSettings, image_jobs, manifest_of_image, manifest_of_index, plan_from_registry,
    plan_of_item,
};
pub use progress::{BlobInfo, Transfer, TransferProgress};
use transfer::{to_layout, to_registry};

/// How many blobs a push or copy transfers at once unless told otherwise.
pub const DEFAULT_CONCURRENT_TRANSFERS: usize = 4;

/// The tag of an OCI layout endpoint given without one (`oci:DIR`).
pub const DEFAULT_LAYOUT_TAG: &str = "latest";

/// How [`push_image`] and [`push_index`] send blobs. `Default`: [`DEFAULT_CONCURRENT_TRANSFERS`]
/// at once, monolithic uploads, no progress reports.
#[derive(Clone, Default)]
pub struct PushOptions {
    /// Told about each blob's transfer, e.g. to draw progress bars.
    pub progress: Option<Arc<dyn TransferProgress>>,
    /// How many blobs upload at once; 0 means [`DEFAULT_CONCURRENT_TRANSFERS`].
    pub concurrency: usize,
    /// Upload blobs larger than this in chunks of this many bytes
    /// ([`PushBlobOptions::chunk_size`](tank_registry::PushBlobOptions::chunk_size));
    /// `None` sends each blob in one request.
    pub chunk_size: Option<u64>,
}

impl fmt::Debug for PushOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushOptions")
            .field("progress", &self.progress.as_ref().map(|_| "…"))
            .field("concurrency", &self.concurrency)
            .field("chunk_size", &self.chunk_size)
            .finish()
    }
}

/// How [`copy`] transfers blobs. `Default`: [`DEFAULT_CONCURRENT_TRANSFERS`] at once,
/// monolithic uploads, temporary files in the system's temporary directory.
#[derive(Clone, Default)]
pub struct CopyOptions {
    /// Told about each blob's transfer, e.g. to draw progress bars.
    pub progress: Option<Arc<dyn TransferProgress>>,
    /// How many blobs transfer at once; 0 means [`DEFAULT_CONCURRENT_TRANSFERS`].
    pub concurrency: usize,
    /// Upload blobs larger than this in chunks of this many bytes
    /// ([`PushBlobOptions::chunk_size`](tank_registry::PushBlobOptions::chunk_size));
    /// `None` sends each blob in one request.
    pub chunk_size: Option<u64>,
    /// Where a blob copied from one registry to another waits between its download and its
    /// upload (one temporary file per blob in flight, removed when it is pushed); the system's
    /// temporary directory when `None`.
    pub temp_dir: Option<PathBuf>,
}

impl fmt::Debug for CopyOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CopyOptions")
            .field("progress", &self.progress.as_ref().map(|_| "…"))
            .field("concurrency", &self.concurrency)
            .field("chunk_size", &self.chunk_size)
            .field("temp_dir", &self.temp_dir)
            .finish()
    }
}

/// What a [`copy`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Copied {
    /// The digest of the manifest or index copied (the same at both ends).
    pub manifest_digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// How many image manifests it comprises: 1 for an image, one per entry for an index.
    pub images: usize,
    /// Blobs whose bytes were sent.
    pub blobs_copied: usize,
    /// Blobs the registry mounted from the source repository.
    pub blobs_mounted: usize,
    /// Blobs the destination had already.
    pub blobs_skipped: usize,
    /// Bytes of the blobs sent.
    pub bytes_copied: u64,
}

/// Pushes `image` to the repository of `reference`: its config and layers (those the
/// repository lacks; several at once), then its manifest, put under the reference's tag
/// (else its digest, which must be the image's, else `latest`) with the image's media type.
/// Returns the manifest digest the registry confirmed.
///
/// ```no_run
/// # async fn demo(image: tank_image::Image) -> Result<(), Box<dyn std::error::Error>> {
/// use tank_image::{PushOptions, push_image};
/// use tank_registry::{Client, ClientConfig};
///
/// let client = Client::new(ClientConfig::default())?;
/// let reference = "127.0.0.1:5000/team/app:1.0".parse()?;
/// let digest = push_image(&client, &image, &reference, &PushOptions::default()).await?;
/// println!("pushed {digest}");
/// # Ok(()) }
/// ```
pub async fn push_image(
    client: &Client,
    image: &Image,
    reference: &Reference,
    options: &PushOptions,
) -> Result<Digest, Error> {
    let mut jobs = Vec::new();
    image_jobs(image, &mut jobs);
    let plan = Plan {
        root: manifest_of_image(image),
        children: Vec::new(),
        jobs,
        content: None,
    };
    let settings = TransferSettings::from_push(options);
    Ok(to_registry(client, &plan, reference, &settings).await?.0)
}

/// Pushes `index` to the repository of `reference`: every image's blobs (each once), each
/// image's manifest by its digest, then the index under the reference's tag (else its digest,
/// else `latest`). Returns the index digest the registry confirmed.
pub async fn push_index(
    client: &Client,
    index: &ImageIndex,
    reference: &Reference,
    options: &PushOptions,
) -> Result<Digest, Error> {
    let mut jobs = Vec::new();
    for image in index.images() {
        image_jobs(image, &mut jobs);
    }
    let plan = Plan {
        root: manifest_of_index(index),
        children: index.images().iter().map(manifest_of_image).collect(),
        jobs,
        content: None,
    };
    let settings = TransferSettings::from_push(options);
    Ok(to_registry(client, &plan, reference, &settings).await?.0)
}

/// Copies the image or index at `source` to `destination`, with every image of an index, and
/// keeps every byte and so every digest: manifests and indexes are copied as they are, never
/// re-serialised.
///
/// - A registry source is read with `client` (manifests verified against their digests,
///   blobs while they stream); an OCI layout source is read with every blob verified
///   before anything is sent.
/// - Blobs the destination has are skipped (a `HEAD` for a registry, a file of the right size
///   for a layout). Between two repositories of one registry, blobs are mounted. From one
///   registry to another, each blob goes through a temporary file (never whole through
///   memory), downloaded only when the destination lacks it.
/// - Into a layout, blobs are written to temporary files, verified, and renamed into
///   `blobs/`; then the image is read back as [`read_layout`] reads it (every blob verified,
///   so a file of the right size but other bytes that was already there is refused), and
///   `index.json` gets the entry last, under the endpoint's tag (moved there if the tag was
///   on another entry). Layers must have media types tank reads (as [`read_layout`]
///   requires).
///
/// Nested indexes (an index naming another index) are refused.
pub async fn copy(
    client: &Client,
    source: &Endpoint,
    destination: &Endpoint,
    options: &CopyOptions,
) -> Result<Copied, Error> {
    let plan = match source {
        Endpoint::Registry(reference) => plan_from_registry(client, reference).await?,
        Endpoint::Layout { dir, tag } => {
            let (dir, tag) = (dir.clone(), tag.clone());
            let item = blocking(move || read_layout(&dir)?.read(&tag)).await?;
            plan_of_item(item)
        }
    };
    let settings = TransferSettings::from_copy(options);
    let (digest, counts) = match destination {
        Endpoint::Registry(reference) => to_registry(client, &plan, reference, &settings).await?,
        Endpoint::Layout { dir, tag } => {
            let counts = to_layout(client, &plan, dir, tag, &settings).await?;
            (plan.root.digest.clone(), counts)
        }
    };
    Ok(Copied {
        manifest_digest: digest,
        media_type: plan.root.media_type.clone(),
        images: plan.children.len().max(1),
        blobs_copied: counts.copied,
        blobs_mounted: counts.mounted,
        blobs_skipped: counts.skipped,
        bytes_copied: counts.bytes,
    })
}
