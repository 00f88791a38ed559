//! Transfers: the blobs of a [`Plan`] sent to a registry (pushed, mounted or skipped) or
//! written into a layout (through `layout::PendingBlob`), several at once, then the
//! manifests, the root last.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use futures_util::stream::{self, StreamExt as _, TryStreamExt as _};
use tank_reference::{Digest, Reference};
use tank_registry::{Client, ManifestKind, PushBlobOptions, PushedBlob};
use tokio::io::AsyncWriteExt as _;
use tracing::debug;

use crate::Error;
use crate::copy::DEFAULT_CONCURRENT_TRANSFERS;
use crate::copy::plan::{BlobJob, Content, Origin, Plan, TransferCounts, TransferSettings};
use crate::copy::progress::{BlobInfo, Meter, Metered, Transfer};
use crate::copy::source::{Memory, TempFileSource};
use crate::layout::{ImageOrIndex, Layout, LayoutItem, PendingBlob, io_error, write_layout};
use crate::oci::Descriptor;
use crate::task::blocking;

/// Announces the blobs, then runs `transfer` on each, `settings.concurrency` at once.
pub(crate) async fn transfer_all<'a, F, Fut>(
    jobs: &'a [BlobJob],
    settings: &TransferSettings,
    transfer: F,
) -> Result<TransferCounts, Error>
where
    F: Fn(usize, &'a BlobJob) -> Fut,
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
    let mut counts = TransferCounts::default();
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
pub(crate) async fn to_registry(
    client: &Client,
    plan: &Plan,
    destination: &Reference,
    settings: &TransferSettings,
) -> Result<(Digest, TransferCounts), Error> {
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
    job: &BlobJob,
    destination: &Reference,
    settings: &TransferSettings,
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
            let source = Metered::new(Memory(bytes.clone()), meter);
            client
                .push_blob(destination, digest, size, &source, &options)
                .await?
        }
        Origin::File(path) => {
            let source = Metered::new(path.clone(), meter);
            client
                .push_blob(destination, digest, size, &source, &options)
                .await?
        }
        Origin::Registry(reference) => {
            let download = TempFileSource::new(
                client,
                reference,
                &job.descriptor,
                settings.temp_dir.clone(),
            );
            let source = Metered::new(download, meter);
            let result = client
                .push_blob(destination, digest, size, &source, &options)
                .await;
            match (result, source.inner().take_failure()) {
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
pub(crate) async fn to_layout(
    client: &Client,
    plan: &Plan,
    dir: &Path,
    tag: &str,
    settings: &TransferSettings,
) -> Result<TransferCounts, Error> {
    let counts = transfer_all(&plan.jobs, settings, |index, job| {
        write_blob(client, job, dir, settings, index)
    })
    .await?;
    let (dir, tag) = (dir.to_path_buf(), tag.to_owned());
    let (root, children, content) = (
        plan.root.clone(),
        plan.children.clone(),
        plan.content.clone(),
    );
    let progress = settings.progress.clone();
    blocking(move || {
        let item = match content {
            Some(Content::Item(item)) => item,
            Some(Content::Documents { root, children }) => {
                let layout = Layout::blobs_of(&dir);
                match root.kind() {
                    ManifestKind::Image(_) => ImageOrIndex::Image(layout.read_image(&root, None)?),
                    ManifestKind::Index(_) => {
                        ImageOrIndex::Index(layout.read_index(&root, &children)?)
                    }
                }
            }
            None => {
                return Err(Error::Internal(
                    "a copy into a layout has no image or index to record".to_owned(),
                ));
            }
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

/// Writes one blob into a layout (unless a file of its size is there) through
/// `layout::PendingBlob`: a temporary file renamed once its digest checked.
async fn write_blob(
    client: &Client,
    job: &BlobJob,
    dir: &Path,
    settings: &TransferSettings,
    index: usize,
) -> Result<Transfer, Error> {
    let descriptor = &job.descriptor;
    let meter = settings.meter(index);
    match &job.origin {
        Origin::Registry(reference) => {
            let Some(pending) = PendingBlob::create(dir, descriptor)? else {
                return Ok(Transfer::Skipped);
            };
            // The client checks size and digest as the bytes stream, and fails before the
            // file is renamed when they differ.
            let (file, blob) = pending.into_verified_elsewhere();
            let mut sink = Metered::new(tokio::fs::File::from_std(file), meter);
            client
                .fetch_blob(
                    reference,
                    descriptor.digest(),
                    Some(descriptor.size()),
                    &mut sink,
                )
                .await?;
            let file = sink.inner_mut();
            file.flush()
                .await
                .and(file.sync_all().await)
                .map_err(|source| io_error("write", blob.temporary_path(), source))?;
            blob.persist()?;
        }
        origin => {
            let (origin, descriptor, dir) = (origin.clone(), descriptor.clone(), dir.to_path_buf());
            let written =
                blocking(move || copy_verified(&origin, &descriptor, &dir, meter)).await?;
            if !written {
                return Ok(Transfer::Skipped);
            }
        }
    }
    Ok(Transfer::Copied)
}

/// Copies a local blob into the layout at `dir` through a temporary file, hashing as it
/// goes; `false` when a file of its size was there already.
fn copy_verified(
    origin: &Origin,
    descriptor: &Descriptor,
    dir: &Path,
    meter: Option<Meter>,
) -> Result<bool, Error> {
    let Some(pending) = PendingBlob::create(dir, descriptor)? else {
        return Ok(false);
    };
    let (reader, source_name): (Box<dyn io::Read>, PathBuf) = match origin {
        Origin::Memory(bytes) => (Box::new(io::Cursor::new(bytes.clone())), "<memory>".into()),
        Origin::File(file) => (
            Box::new(io::BufReader::with_capacity(
                crate::task::IO_BUFFER,
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
    pending.persist_verified(reader, &source_name, descriptor, |bytes| {
        if let Some(meter) = &meter {
            meter.report(bytes);
        }
    })?;
    Ok(true)
}
