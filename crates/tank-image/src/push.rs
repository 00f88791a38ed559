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

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use futures_util::stream::{self, StreamExt as _, TryStreamExt as _};
use serde_json::Value;
use tank_reference::{Digest, Reference};
use tank_registry::{BlobReader, BlobSource, Client, OpenFuture, PushBlobOptions, PushedBlob};
use tokio::io::{AsyncRead, AsyncSeekExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tracing::debug;

use crate::assemble::{DOCKER_MANIFEST_LIST, Descriptor, Format, Image, ImageIndex, OCI_INDEX};
use crate::build::{BlobRef, Compression, LayerBlob};
use crate::layout::{ImageOrIndex, LayoutItem, read_layout, write_layout};
use crate::pull::blocking;
use crate::{CONFIG_SIZE_LIMIT, Error};

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
    /// ([`PushBlobOptions::chunk_size`]); `None` sends each blob in one request.
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
    /// ([`PushBlobOptions::chunk_size`]); `None` sends each blob in one request.
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

/// One blob of a push or copy, as [`TransferProgress::start`] announces it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BlobInfo {
    /// The blob's digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Its media type (a config or a layer).
    pub media_type: String,
}

/// What happened to one blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transfer {
    /// The destination had it already; nothing was sent.
    Skipped,
    /// The registry mounted it from the source repository (same registry); nothing was sent.
    Mounted,
    /// Its bytes were sent.
    Copied,
}

/// Receives the progress of a push or copy. Calls come from several tasks; every method has
/// an empty default.
pub trait TransferProgress: Send + Sync {
    /// The blobs to transfer (configs and layers, each once), before any is sent.
    fn start(&self, blobs: &[BlobInfo]) {
        let _ = blobs;
    }
    /// `bytes` of blob `index` have been sent or written so far (a retried upload may go
    /// back).
    fn transferring(&self, index: usize, bytes: u64) {
        let _ = (index, bytes);
    }
    /// Blob `index` is at the destination.
    fn finished(&self, index: usize, transfer: Transfer) {
        let _ = (index, transfer);
    }
    /// A manifest or index has been written to the destination.
    fn manifest_written(&self, digest: &Digest, media_type: &str) {
        let _ = (digest, media_type);
    }
}

/// One end of a [`copy`]: a registry reference, or a tag of an OCI image layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// An image in a registry. As a source, its tag or digest names what to copy; as a
    /// destination, its tag (else its digest, else `latest`) is what the manifest is put as.
    Registry(Reference),
    /// The entry tagged `tag` of the OCI image layout in `dir` (created when a destination).
    Layout {
        /// The layout's directory.
        dir: PathBuf,
        /// The tag (`org.opencontainers.image.ref.name`).
        tag: String,
    },
}

impl Endpoint {
    /// An OCI layout endpoint from `DIR[:TAG]`: the tag is what follows the last `:` when
    /// that holds no `/` (so a directory may contain `:`), else [`DEFAULT_LAYOUT_TAG`].
    ///
    /// ```
    /// use std::path::PathBuf;
    /// use tank_image::Endpoint;
    ///
    /// let parse = |text| Endpoint::layout(text).unwrap();
    /// assert_eq!(parse("out:v1"), Endpoint::Layout { dir: "out".into(), tag: "v1".into() });
    /// assert_eq!(parse("out"), Endpoint::Layout { dir: "out".into(), tag: "latest".into() });
    /// assert_eq!(
    ///     parse("/tmp/a:b/out"),
    ///     Endpoint::Layout { dir: PathBuf::from("/tmp/a:b/out"), tag: "latest".into() }
    /// );
    /// # Ok::<(), tank_image::Error>(())
    /// ```
    pub fn layout(text: &str) -> Result<Endpoint, Error> {
        Endpoint::parse_layout(text, text)
    }

    /// [`Endpoint::layout`] of `text`, which is part of `whole` (named in errors).
    fn parse_layout(text: &str, whole: &str) -> Result<Endpoint, Error> {
        let invalid = |reason: &'static str| Error::InvalidEndpoint {
            input: whole.to_owned(),
            reason,
        };
        let (dir, tag) = match text.rsplit_once(':') {
            Some((dir, tag)) if !tag.contains('/') => (dir, tag),
            _ => (text, DEFAULT_LAYOUT_TAG),
        };
        if dir.is_empty() {
            return Err(invalid("no layout directory before the tag"));
        }
        if tag.is_empty() {
            return Err(invalid("an empty tag after ':'"));
        }
        crate::assemble::check_tag(tag)?;
        Ok(Endpoint::Layout {
            dir: PathBuf::from(dir),
            tag: tag.to_owned(),
        })
    }
}

impl FromStr for Endpoint {
    type Err = Error;

    /// `oci:DIR[:TAG]` (see [`Endpoint::layout`]), else a registry reference, with or without
    /// a `docker://` prefix.
    fn from_str(text: &str) -> Result<Endpoint, Error> {
        if let Some(layout) = text.strip_prefix("oci:") {
            return Endpoint::parse_layout(layout, text);
        }
        let reference = text.strip_prefix("docker://").unwrap_or(text);
        reference
            .parse()
            .map(Endpoint::Registry)
            .map_err(|source| Error::InvalidReference {
                input: text.to_owned(),
                source,
            })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Registry(reference) => write!(f, "{reference}"),
            Endpoint::Layout { dir, tag } => write!(f, "oci:{}:{tag}", dir.display()),
        }
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
        root: image_node(image),
        children: Vec::new(),
        jobs,
        item: None,
    };
    let settings = Settings::from_push(options);
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
        root: index_node(index),
        children: index.images().iter().map(image_node).collect(),
        jobs,
        item: None,
    };
    let settings = Settings::from_push(options);
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
///   `blobs/`; `index.json` gets the entry last, under the endpoint's tag (moved there if the
///   tag was on another entry). Layers must have media types tank reads (as
///   [`read_layout`] requires).
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
    let settings = Settings::from_copy(options);
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

/// A manifest or index to write: its bytes exactly as its digest covers them.
#[derive(Clone)]
struct Node {
    digest: Digest,
    media_type: String,
    bytes: Arc<[u8]>,
}

/// Where the bytes of a blob come from.
#[derive(Clone)]
enum Origin {
    Memory(Arc<[u8]>),
    File(PathBuf),
    /// The repository of this reference.
    Registry(Reference),
}

/// One blob to transfer.
struct Job {
    descriptor: Descriptor,
    origin: Origin,
}

/// Everything a push or copy writes.
struct Plan {
    root: Node,
    /// The images of an index, in its order; empty for an image.
    children: Vec<Node>,
    /// The configs and layers of every image, each digest once.
    jobs: Vec<Job>,
    /// The image or index itself, when the source was a layout.
    item: Option<ImageOrIndex>,
}

/// The settings a transfer runs with.
struct Settings {
    progress: Option<Arc<dyn TransferProgress>>,
    concurrency: usize,
    chunk_size: Option<u64>,
    temp_dir: Option<PathBuf>,
}

impl Settings {
    fn from_push(options: &PushOptions) -> Settings {
        Settings {
            progress: options.progress.clone(),
            concurrency: options.concurrency,
            chunk_size: options.chunk_size,
            temp_dir: None,
        }
    }

    fn from_copy(options: &CopyOptions) -> Settings {
        Settings {
            progress: options.progress.clone(),
            concurrency: options.concurrency,
            chunk_size: options.chunk_size,
            temp_dir: options.temp_dir.clone(),
        }
    }

    fn meter(&self, index: usize) -> Option<Meter> {
        self.progress
            .clone()
            .map(|progress| Meter { progress, index })
    }
}

/// What the blob transfers came to.
#[derive(Clone, Copy, Default)]
struct Counts {
    copied: usize,
    mounted: usize,
    skipped: usize,
    bytes: u64,
}

fn image_node(image: &Image) -> Node {
    Node {
        digest: image.manifest_digest().clone(),
        media_type: image.format().manifest_media_type().to_owned(),
        bytes: Arc::from(image.manifest_bytes()),
    }
}

fn index_node(index: &ImageIndex) -> Node {
    Node {
        digest: index.manifest_digest().clone(),
        media_type: index.format().index_media_type().to_owned(),
        bytes: Arc::from(index.manifest_bytes()),
    }
}

/// Adds a job unless a blob with the same digest has one.
fn add_job(jobs: &mut Vec<Job>, descriptor: Descriptor, origin: Origin) {
    if !jobs
        .iter()
        .any(|job| job.descriptor.digest() == descriptor.digest())
    {
        jobs.push(Job { descriptor, origin });
    }
}

fn image_jobs(image: &Image, jobs: &mut Vec<Job>) {
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

fn plan_of_item(item: ImageOrIndex) -> Plan {
    let mut jobs = Vec::new();
    let (root, children) = match &item {
        ImageOrIndex::Image(image) => {
            image_jobs(image, &mut jobs);
            (image_node(image), Vec::new())
        }
        ImageOrIndex::Index(index) => {
            for image in index.images() {
                image_jobs(image, &mut jobs);
            }
            (
                index_node(index),
                index.images().iter().map(image_node).collect(),
            )
        }
    };
    Plan {
        root,
        children,
        jobs,
        item: Some(item),
    }
}

/// Reads the manifest of `reference` and, for an index, every manifest it names.
async fn plan_from_registry(client: &Client, reference: &Reference) -> Result<Plan, Error> {
    let manifest = client.fetch_manifest(reference).await?;
    let what = reference.to_string();
    let root = Node {
        digest: manifest.digest().clone(),
        media_type: manifest.media_type().to_owned(),
        bytes: Arc::from(manifest.raw()),
    };
    let document = parse_document(&root, &what)?;
    let origin = Origin::Registry(reference.clone());
    let mut jobs = Vec::new();
    let mut children = Vec::new();
    if !manifest.is_index() {
        image_blob_jobs(&document, &root, &what, &origin, &mut jobs)?;
        return Ok(Plan {
            root,
            children,
            jobs,
            item: None,
        });
    }
    let Some(entries) = document["manifests"].as_array() else {
        return Err(invalid_manifest(&what, &root, "manifests is not an array"));
    };
    for entry in entries {
        let descriptor = parse_descriptor(entry, &what, &root)?;
        if is_index_media_type(descriptor.media_type()) {
            return Err(invalid_manifest(
                &what,
                &root,
                "it names another index (nested indexes are not copied)",
            ));
        }
        let child = client
            .fetch_manifest_by_digest(reference, descriptor.digest())
            .await?;
        let node = Node {
            digest: child.digest().clone(),
            media_type: child.media_type().to_owned(),
            bytes: Arc::from(child.raw()),
        };
        if child.is_index() {
            return Err(invalid_manifest(
                &what,
                &root,
                "it names another index (nested indexes are not copied)",
            ));
        }
        let child_document = parse_document(&node, &what)?;
        image_blob_jobs(&child_document, &node, &what, &origin, &mut jobs)?;
        children.push(node);
    }
    Ok(Plan {
        root,
        children,
        jobs,
        item: None,
    })
}

fn is_index_media_type(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

fn parse_document(node: &Node, what: &str) -> Result<Value, Error> {
    serde_json::from_slice(&node.bytes).map_err(|error| invalid_manifest(what, node, error))
}

/// The config and layer descriptors of an image manifest, as jobs.
fn image_blob_jobs(
    document: &Value,
    node: &Node,
    what: &str,
    origin: &Origin,
    jobs: &mut Vec<Job>,
) -> Result<(), Error> {
    add_job(
        jobs,
        parse_descriptor(&document["config"], what, node)?,
        origin.clone(),
    );
    match &document["layers"] {
        Value::Array(layers) => {
            for layer in layers {
                add_job(jobs, parse_descriptor(layer, what, node)?, origin.clone());
            }
            Ok(())
        }
        Value::Null => Ok(()),
        _ => Err(invalid_manifest(what, node, "layers is not an array")),
    }
}

fn parse_descriptor(value: &Value, what: &str, node: &Node) -> Result<Descriptor, Error> {
    let media_type = value["mediaType"].as_str().ok_or_else(|| {
        invalid_manifest(what, node, format!("descriptor without mediaType: {value}"))
    })?;
    let digest_text = value["digest"].as_str().ok_or_else(|| {
        invalid_manifest(what, node, format!("descriptor without digest: {value}"))
    })?;
    let digest: Digest = digest_text
        .parse()
        .map_err(|source| Error::InvalidDescriptorDigest {
            reference: what.to_owned(),
            what: format!("a descriptor of manifest {}", node.digest),
            value: digest_text.to_owned(),
            source: Box::new(source),
        })?;
    let size = value["size"]
        .as_u64()
        .ok_or_else(|| invalid_manifest(what, node, format!("descriptor without size: {value}")))?;
    Ok(Descriptor::new(media_type, digest, size))
}

fn invalid_manifest(what: &str, node: &Node, problem: impl fmt::Display) -> Error {
    Error::InvalidManifest {
        reference: what.to_owned(),
        digest: node.digest.to_string(),
        problem: problem.to_string(),
    }
}

/// Announces the blobs, then runs `transfer` on each, `settings.concurrency` at once.
async fn transfer_all<'a, F, Fut>(
    jobs: &'a [Job],
    settings: &Settings,
    transfer: F,
) -> Result<Counts, Error>
where
    F: Fn(usize, &'a Job) -> Fut,
    Fut: Future<Output = Result<Transfer, Error>>,
{
    if let Some(progress) = &settings.progress {
        let blobs: Vec<BlobInfo> = jobs
            .iter()
            .map(|job| BlobInfo {
                digest: job.descriptor.digest().clone(),
                size: job.descriptor.size(),
                media_type: job.descriptor.media_type().to_owned(),
            })
            .collect();
        progress.start(&blobs);
    }
    let concurrency = match settings.concurrency {
        0 => DEFAULT_CONCURRENT_TRANSFERS,
        n => n,
    };
    let results: Vec<(usize, Transfer)> = stream::iter(jobs.iter().enumerate())
        .map(|(index, job)| {
            let work = transfer(index, job);
            let progress = settings.progress.clone();
            async move {
                let transfer = work.await?;
                if let Some(progress) = progress {
                    progress.finished(index, transfer);
                }
                Ok::<_, Error>((index, transfer))
            }
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    let mut counts = Counts::default();
    for (index, transfer) in results {
        match transfer {
            Transfer::Skipped => counts.skipped += 1,
            Transfer::Mounted => counts.mounted += 1,
            Transfer::Copied => {
                counts.copied += 1;
                counts.bytes += jobs[index].descriptor.size();
            }
        }
    }
    Ok(counts)
}

/// Pushes the plan's blobs and manifests to the repository of `destination`; returns the
/// root's digest as the registry confirmed it.
async fn to_registry(
    client: &Client,
    plan: &Plan,
    destination: &Reference,
    settings: &Settings,
) -> Result<(Digest, Counts), Error> {
    if let Some(expected) = destination.digest() {
        // Fail before sending anything when the manifest cannot be put under this digest.
        let actual = Digest::of(expected.algorithm(), &plan.root.bytes);
        if &actual != expected {
            return Err(tank_registry::Error::DigestMismatch {
                what: format!("manifest to push as {destination}"),
                expected: expected.clone(),
                actual,
            }
            .into());
        }
    }
    let counts = transfer_all(&plan.jobs, settings, |index, job| {
        push_blob(client, job, destination, settings, index)
    })
    .await?;
    let repository = destination.without_tag_or_digest();
    for child in &plan.children {
        let at = repository.with_digest(child.digest.clone());
        let digest = client
            .push_manifest(&at, &child.media_type, &child.bytes)
            .await?;
        if let Some(progress) = &settings.progress {
            progress.manifest_written(&digest, &child.media_type);
        }
    }
    let digest = client
        .push_manifest(destination, &plan.root.media_type, &plan.root.bytes)
        .await?;
    if let Some(progress) = &settings.progress {
        progress.manifest_written(&digest, &plan.root.media_type);
    }
    Ok((digest, counts))
}

/// Pushes one blob; a blob of another repository of the same registry is mounted.
async fn push_blob(
    client: &Client,
    job: &Job,
    destination: &Reference,
    settings: &Settings,
    index: usize,
) -> Result<Transfer, Error> {
    let digest = job.descriptor.digest();
    let size = job.descriptor.size();
    let mount_from = match &job.origin {
        Origin::Registry(source) if source.registry() == destination.registry() => {
            Some(source.repository().to_owned())
        }
        _ => None,
    };
    let options = PushBlobOptions {
        mount_from,
        chunk_size: settings.chunk_size,
    };
    let meter = settings.meter(index);
    let pushed = match &job.origin {
        Origin::Memory(bytes) => {
            let source = Counted::new(Memory(bytes.clone()), meter);
            client
                .push_blob(destination, digest, size, &source, &options)
                .await?
        }
        Origin::File(path) => {
            let source = Counted::new(path.clone(), meter);
            client
                .push_blob(destination, digest, size, &source, &options)
                .await?
        }
        Origin::Registry(reference) => {
            let download = Download {
                client: client.clone(),
                reference: reference.clone(),
                descriptor: job.descriptor.clone(),
                temp_dir: settings.temp_dir.clone(),
                file: tokio::sync::Mutex::new(None),
                failure: Mutex::new(None),
            };
            let source = Counted::new(download, meter);
            let result = client
                .push_blob(destination, digest, size, &source, &options)
                .await;
            match (result, source.inner.take_failure()) {
                (Err(_), Some(failure)) => return Err(failure),
                (result, _) => result?,
            }
        }
    };
    debug!(%digest, size, destination = %destination, outcome = ?pushed, "blob pushed");
    Ok(match pushed {
        PushedBlob::Existed => Transfer::Skipped,
        PushedBlob::Mounted => Transfer::Mounted,
        _ => Transfer::Copied,
    })
}

/// Writes the plan into the layout at `dir`: blobs, then manifests and `index.json`.
async fn to_layout(
    client: &Client,
    plan: &Plan,
    dir: &Path,
    tag: &str,
    settings: &Settings,
) -> Result<Counts, Error> {
    let counts = transfer_all(&plan.jobs, settings, |index, job| {
        write_blob(client, job, dir, settings, index)
    })
    .await?;
    let (dir, tag) = (dir.to_path_buf(), tag.to_owned());
    let (root, children, item) = (plan.root.clone(), plan.children.clone(), plan.item.clone());
    let progress = settings.progress.clone();
    blocking(move || {
        let item = match item {
            Some(item) => item,
            None => item_in_layout(&dir, &root, &children)?,
        };
        write_layout(&dir, &[(Some(&tag), LayoutItem::from(&item))])?;
        if let Some(progress) = progress {
            for node in children.iter().chain([&root]) {
                progress.manifest_written(&node.digest, &node.media_type);
            }
        }
        Ok(())
    })
    .await?;
    Ok(counts)
}

fn blob_path(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join("blobs")
        .join(digest.algorithm().as_str())
        .join(digest.hex())
}

fn io_error(operation: &'static str, path: &Path, source: io::Error) -> Error {
    Error::Io {
        operation,
        path: path.to_path_buf(),
        source,
    }
}

/// Writes one blob into a layout (unless a file of its size is there), through a temporary
/// file renamed once its digest checked.
async fn write_blob(
    client: &Client,
    job: &Job,
    dir: &Path,
    settings: &Settings,
    index: usize,
) -> Result<Transfer, Error> {
    let descriptor = &job.descriptor;
    let path = blob_path(dir, descriptor.digest());
    if tokio::fs::symlink_metadata(&path)
        .await
        .is_ok_and(|meta| meta.is_file() && meta.len() == descriptor.size())
    {
        return Ok(Transfer::Skipped);
    }
    let folder = path
        .parent()
        .expect("a blob path always has blobs/<alg> as its parent")
        .to_path_buf();
    tokio::fs::create_dir_all(&folder)
        .await
        .map_err(|source| io_error("create", &folder, source))?;
    let meter = settings.meter(index);
    match &job.origin {
        Origin::Registry(reference) => {
            let temporary = tempfile::Builder::new()
                .prefix(".tank-blob-")
                .tempfile_in(&folder)
                .map_err(|source| io_error("create temporary file in", &folder, source))?;
            let (file, temporary_path) = temporary.into_parts();
            let mut sink = Metered {
                inner: tokio::fs::File::from_std(file),
                written: 0,
                meter,
            };
            client
                .fetch_blob(
                    reference,
                    descriptor.digest(),
                    Some(descriptor.size()),
                    &mut sink,
                )
                .await?;
            sink.inner
                .flush()
                .await
                .and(sink.inner.sync_all().await)
                .map_err(|source| io_error("write", &temporary_path, source))?;
            temporary_path
                .persist(&path)
                .map_err(|error| io_error("rename into", &path, error.error))?;
        }
        origin => {
            let (origin, descriptor) = (origin.clone(), descriptor.clone());
            blocking(move || copy_verified(&origin, &descriptor, &folder, &path, meter)).await?;
        }
    }
    Ok(Transfer::Copied)
}

/// Copies a local blob into `path` through a temporary file in `folder`, hashing as it goes.
fn copy_verified(
    origin: &Origin,
    descriptor: &Descriptor,
    folder: &Path,
    path: &Path,
    meter: Option<Meter>,
) -> Result<(), Error> {
    let (reader, source_name): (Box<dyn io::Read>, PathBuf) = match origin {
        Origin::Memory(bytes) => (Box::new(io::Cursor::new(bytes.clone())), "<memory>".into()),
        Origin::File(file) => (
            Box::new(io::BufReader::with_capacity(
                256 * 1024,
                fs::File::open(file).map_err(|source| io_error("open", file, source))?,
            )),
            file.clone(),
        ),
        Origin::Registry(_) => {
            return Err(Error::Internal(
                "a registry blob cannot be copied as a local file".to_owned(),
            ));
        }
    };
    crate::layout::persist_verified(reader, &source_name, descriptor, folder, path, |bytes| {
        if let Some(meter) = &meter {
            meter.report(bytes);
        }
    })
}

/// The image or index of the plan, its blobs read from the layout they were just written to
/// (their digests were checked on the way in).
fn item_in_layout(dir: &Path, root: &Node, children: &[Node]) -> Result<ImageOrIndex, Error> {
    if children.is_empty() {
        return Ok(ImageOrIndex::Image(image_in_layout(dir, root)?));
    }
    let document = parse_document(root, &dir.display().to_string())?;
    let format = format_of(&document, root, dir)?;
    let images = children
        .iter()
        .map(|child| image_in_layout(dir, child))
        .collect::<Result<Vec<Image>, Error>>()?;
    Ok(ImageOrIndex::Index(ImageIndex::from_parts(
        format,
        root.bytes.to_vec(),
        root.digest.clone(),
        images,
        annotations_of(&document),
    )))
}

fn format_of(document: &Value, node: &Node, dir: &Path) -> Result<Format, Error> {
    let media_type = document["mediaType"].as_str().unwrap_or(&node.media_type);
    Format::of_media_type(media_type).ok_or_else(|| {
        invalid_manifest(
            &dir.display().to_string(),
            node,
            format!("unsupported manifest media type {media_type:?}"),
        )
    })
}

fn image_in_layout(dir: &Path, node: &Node) -> Result<Image, Error> {
    let what = dir.display().to_string();
    let document = parse_document(node, &what)?;
    let format = format_of(&document, node, dir)?;
    let config_descriptor = parse_descriptor(&document["config"], &what, node)?;
    let config_path = blob_path(dir, config_descriptor.digest());
    if config_descriptor.size() > CONFIG_SIZE_LIMIT {
        return Err(invalid_manifest(
            &what,
            node,
            format!(
                "its config declares {} bytes, above the limit of {CONFIG_SIZE_LIMIT}",
                config_descriptor.size()
            ),
        ));
    }
    let config = crate::layout::read_limited(&config_path, CONFIG_SIZE_LIMIT)?;
    let config_json: Value =
        serde_json::from_slice(&config).map_err(|source| Error::InvalidConfig {
            reference: what.clone(),
            digest: config_descriptor.digest().to_string(),
            source,
        })?;
    let diff_ids: Vec<Digest> = match config_json["rootfs"]["diff_ids"].as_array() {
        Some(ids) => ids
            .iter()
            .map(|id| {
                let text = id.as_str().unwrap_or_default();
                text.parse::<Digest>()
                    .map_err(|source| Error::InvalidDescriptorDigest {
                        reference: what.clone(),
                        what: format!("a diff_id of config {}", config_descriptor.digest()),
                        value: id.to_string(),
                        source: Box::new(source),
                    })
            })
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    let layer_values = match &document["layers"] {
        Value::Array(layers) => layers.as_slice(),
        _ => &[],
    };
    if layer_values.len() != diff_ids.len() {
        return Err(Error::LayerCountMismatch {
            reference: format!("{what}@{}", node.digest),
            layers: layer_values.len(),
            diff_ids: diff_ids.len(),
        });
    }
    let mut layers = Vec::with_capacity(layer_values.len());
    for (index, (value, diff_id)) in layer_values.iter().zip(diff_ids).enumerate() {
        let descriptor = parse_descriptor(value, &what, node)?;
        let compression = match tank_layer::Compression::from_media_type(descriptor.media_type()) {
            Ok(tank_layer::Compression::None) => Compression::None,
            Ok(tank_layer::Compression::Gzip) => Compression::Gzip,
            Ok(tank_layer::Compression::Zstd) => Compression::Zstd,
            _ => {
                return Err(Error::UnsupportedLayer {
                    reference: format!("{what}@{}", node.digest),
                    index,
                    digest: descriptor.digest().to_string(),
                    media_type: descriptor.media_type().to_owned(),
                });
            }
        };
        let blob = LayerBlob::from_verified_file(
            blob_path(dir, descriptor.digest()),
            compression,
            descriptor.digest().clone(),
            descriptor.size(),
            diff_id,
        );
        layers.push((descriptor, blob));
    }
    Ok(Image::from_parts(
        format,
        node.bytes.to_vec(),
        node.digest.clone(),
        config,
        config_descriptor,
        layers,
        annotations_of(&document),
        None,
    ))
}

fn annotations_of(document: &Value) -> std::collections::BTreeMap<String, String> {
    document["annotations"]
        .as_object()
        .map(|map| {
            map.iter()
                .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// Reports the bytes of one blob to the progress receiver.
#[derive(Clone)]
struct Meter {
    progress: Arc<dyn TransferProgress>,
    index: usize,
}

impl Meter {
    fn report(&self, bytes: u64) {
        self.progress.transferring(self.index, bytes);
    }
}

/// A blob held in memory, as an upload source.
struct Memory(Arc<[u8]>);

impl BlobSource for Memory {
    fn open(&self, offset: u64) -> OpenFuture<'_> {
        let mut cursor = io::Cursor::new(self.0.clone());
        cursor.set_position(offset.min(self.0.len() as u64));
        Box::pin(async move { Ok(Box::new(cursor) as BlobReader) })
    }
}

/// An upload source whose reads are reported to a [`Meter`].
struct Counted<S> {
    inner: S,
    meter: Option<Meter>,
}

impl<S> Counted<S> {
    fn new(inner: S, meter: Option<Meter>) -> Counted<S> {
        Counted { inner, meter }
    }
}

impl<S: BlobSource> BlobSource for Counted<S> {
    fn open(&self, offset: u64) -> OpenFuture<'_> {
        Box::pin(async move {
            let reader = self.inner.open(offset).await?;
            Ok(match &self.meter {
                Some(meter) => Box::new(MeteredReader {
                    inner: reader,
                    position: offset,
                    meter: meter.clone(),
                }) as BlobReader,
                None => reader,
            })
        })
    }
}

struct MeteredReader {
    inner: BlobReader,
    position: u64,
    meter: Meter,
}

impl AsyncRead for MeteredReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buffer.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(context, buffer);
        if let Poll::Ready(Ok(())) = &poll {
            let read = buffer.filled().len() - before;
            if read > 0 {
                self.position += read as u64;
                self.meter.report(self.position);
            }
        }
        poll
    }
}

/// A download sink whose writes are reported to a [`Meter`].
struct Metered<W> {
    inner: W,
    written: u64,
    meter: Option<Meter>,
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Metered<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(context, data);
        if let Poll::Ready(Ok(written)) = &poll {
            self.written += *written as u64;
            if let Some(meter) = &self.meter {
                meter.report(self.written);
            }
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(context)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(context)
    }
}

/// A blob of another registry as an upload source: downloaded (verified) into a temporary
/// file the first time the upload opens it, and read from that file by every later attempt
/// or chunk. Nothing is downloaded when the destination has the blob or mounts it.
struct Download {
    client: Client,
    reference: Reference,
    descriptor: Descriptor,
    temp_dir: Option<PathBuf>,
    file: tokio::sync::Mutex<Option<tempfile::TempPath>>,
    /// Why the download failed, for the caller (the upload only sees an I/O error).
    failure: Mutex<Option<Error>>,
}

impl Download {
    async fn fetch(&self) -> Result<tempfile::TempPath, Error> {
        let builder = {
            let mut builder = tempfile::Builder::new();
            builder.prefix(".tank-copy-");
            builder
        };
        let temporary = match &self.temp_dir {
            Some(dir) => builder.tempfile_in(dir),
            None => builder.tempfile(),
        }
        .map_err(|source| {
            let dir = self.temp_dir.clone().unwrap_or_else(std::env::temp_dir);
            io_error("create temporary file in", &dir, source)
        })?;
        let (file, path) = temporary.into_parts();
        let mut file = tokio::fs::File::from_std(file);
        self.client
            .fetch_blob(
                &self.reference,
                self.descriptor.digest(),
                Some(self.descriptor.size()),
                &mut file,
            )
            .await?;
        file.flush()
            .await
            .map_err(|source| io_error("write", &path, source))?;
        Ok(path)
    }

    fn take_failure(&self) -> Option<Error> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

impl BlobSource for Download {
    fn open(&self, offset: u64) -> OpenFuture<'_> {
        Box::pin(async move {
            let mut slot = self.file.lock().await;
            let path = match slot.as_ref() {
                Some(path) => path.to_path_buf(),
                None => match self.fetch().await {
                    Ok(temporary) => {
                        let path = temporary.to_path_buf();
                        *slot = Some(temporary);
                        path
                    }
                    Err(error) => {
                        let message = error.to_string();
                        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
                        return Err(io::Error::other(message));
                    }
                },
            };
            drop(slot);
            let mut file = tokio::fs::File::open(&path).await?;
            if offset > 0 {
                file.seek(io::SeekFrom::Start(offset)).await?;
            }
            Ok(Box::new(file) as BlobReader)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(dir: &str, tag: &str) -> Endpoint {
        Endpoint::Layout {
            dir: PathBuf::from(dir),
            tag: tag.to_owned(),
        }
    }

    #[test]
    fn endpoints_parse_layouts_and_references() {
        let check = |text: &str, expected: Endpoint| {
            assert_eq!(text.parse::<Endpoint>().unwrap(), expected, "{text}");
        };
        check("oci:out", layout("out", "latest"));
        check("oci:out:v1", layout("out", "v1"));
        check("oci:/tmp/x:y/out", layout("/tmp/x:y/out", "latest"));
        check("oci:/tmp/x:y/out:v2", layout("/tmp/x:y/out", "v2"));
        check("oci:./a:b:c", layout("./a:b", "c"));
        check(
            "127.0.0.1:5000/team/app:1",
            Endpoint::Registry("127.0.0.1:5000/team/app:1".parse().unwrap()),
        );
        check(
            "docker://127.0.0.1:5000/team/app:1",
            Endpoint::Registry("127.0.0.1:5000/team/app:1".parse().unwrap()),
        );
        check(
            "alpine",
            Endpoint::Registry("docker.io/library/alpine".parse().unwrap()),
        );
    }

    #[test]
    fn bad_endpoints_say_what_is_wrong() {
        for (text, needle) in [
            ("oci:", "no layout directory"),
            ("oci::v1", "\"oci::v1\""),
            ("oci::v1", "no layout directory"),
            ("oci:out:", "empty tag"),
            ("oci:out:bad tag", "bad tag"),
            ("Not A Reference", "Not A Reference"),
            ("docker://team/App", "docker://team/App"),
        ] {
            let error = text.parse::<Endpoint>().unwrap_err();
            assert!(error.to_string().contains(needle), "{text}: {error}");
        }
    }

    #[test]
    fn endpoints_display_as_they_parse() {
        for text in [
            "oci:out:v1",
            "oci:/tmp/x:y/out:latest",
            "127.0.0.1:5000/team/app:1",
        ] {
            let endpoint: Endpoint = text.parse().unwrap();
            assert_eq!(endpoint.to_string(), text);
            assert_eq!(endpoint.to_string().parse::<Endpoint>().unwrap(), endpoint);
        }
    }

    #[tokio::test]
    async fn memory_sources_open_at_an_offset() {
        use tokio::io::AsyncReadExt as _;
        let source = Memory(Arc::from(&b"0123456789"[..]));
        let mut text = String::new();
        source
            .open(4)
            .await
            .unwrap()
            .read_to_string(&mut text)
            .await
            .unwrap();
        assert_eq!(text, "456789");
        let mut rest = Vec::new();
        source
            .open(99)
            .await
            .unwrap()
            .read_to_end(&mut rest)
            .await
            .unwrap();
        assert!(rest.is_empty());
    }
}
