//! Building the rootfs: every layer applied in order, each as soon as it and the ones below
//! it are ready, following a layer's file while it downloads ([`Extraction`]) or rehashing
//! a cached blob as it is read ([`VerifyingReader`]; a corrupt one is removed).

use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;

use tank_cache::{Cache, RootfsBuilder};
use tank_layer::ExtractOptions;
use tank_reference::{Reference, Verifier};
use tokio::sync::Semaphore;

use super::download::{Downloads, LayerDownload};
use super::follow::{Feed, GrowingReader};
use super::plan::{ImagePlan, LayerPlan};
use super::progress::DownloadStats;
use super::{LayerInfo, Puller};
use crate::Error;
use crate::task::{IO_BUFFER, blocking};

impl Puller {
    /// Downloads the layers the cache lacks (in parallel, bounded) and applies every layer
    /// in order as soon as it and the ones below it are ready.
    pub(super) async fn build(
        &self,
        reference: &Reference,
        image: &ImagePlan,
        builder: RootfsBuilder,
        reuse: bool,
    ) -> Result<(PathBuf, DownloadStats), Error> {
        // A digest listed again is downloaded once: its later occurrences are applied from
        // the cache, after the first one's download verified (layers apply in order).
        let mut seen = std::collections::HashSet::new();
        let infos: Vec<LayerInfo> = image
            .layers
            .iter()
            .map(|layer| LayerInfo {
                digest: layer.digest.clone(),
                size: layer.size,
                cached: !seen.insert(&layer.digest)
                    || (reuse && self.cache.blob_path(&layer.digest).is_some()),
            })
            .collect();
        if let Some(progress) = &self.progress {
            progress.start(reference, &image.manifest_digest, &infos);
        }
        let semaphore = Arc::new(Semaphore::new(self.concurrent_downloads));
        // Aborts every download still running when this function returns early.
        let mut downloads = Downloads::default();
        let mut feeds: Vec<Option<Arc<Feed>>> = Vec::new();
        for (index, (layer, info)) in image.layers.iter().zip(&infos).enumerate() {
            if info.cached {
                downloads.push(None);
                feeds.push(None);
                continue;
            }
            if self.offline {
                return Err(Error::LayerNotCached {
                    reference: reference.to_string(),
                    index,
                    digest: layer.digest.clone(),
                });
            }
            let feed = Arc::new(Feed::default());
            let task = LayerDownload {
                client: self.client.clone(),
                cache: self.cache.clone(),
                reference: reference.clone(),
                digest: layer.digest.clone(),
                size: layer.size,
                index,
                replace: !reuse,
                progress: self.progress.clone(),
                feed: Arc::clone(&feed),
            };
            let semaphore = Arc::clone(&semaphore);
            downloads.push(Some(tokio::spawn(async move {
                let _permit = semaphore
                    .acquire_owned()
                    .await
                    .map_err(|_| Error::Internal("download semaphore closed".to_owned()))?;
                task.run().await
            })));
            feeds.push(Some(feed));
        }

        // Layer by layer, in order: extract while the layer downloads (following its file
        // as it grows), then collect the download's verdict. Downloads of later layers go
        // on meanwhile; a layer that arrived early is read from its file.
        let mut stats = DownloadStats::default();
        let dest = builder.path().to_path_buf();
        for (index, layer) in image.layers.iter().enumerate() {
            let job = Extraction {
                cache: self.cache.clone(),
                reference: reference.to_string(),
                index,
                layer: layer.clone(),
                dest: dest.clone(),
                options: self.extract.clone(),
                feed: feeds[index].take(),
            };
            let extracted = blocking(move || job.run()).await;
            // The download's own error says more than the extraction's "download failed".
            if let Some(downloaded) = downloads.finish(index).await {
                let bytes = downloaded?;
                stats.layers += 1;
                stats.bytes += bytes;
            }
            extracted?;
            if let Some(progress) = &self.progress {
                progress.extracted(index);
            }
        }
        let rootfs = blocking(move || builder.commit().map_err(Error::from)).await?;
        Ok((rootfs, stats))
    }
}

/// Applies one cached layer blob onto the rootfs being built, verifying the blob's digest
/// as it is read.
struct Extraction {
    cache: Cache,
    reference: String,
    index: usize,
    layer: LayerPlan,
    dest: PathBuf,
    options: ExtractOptions,
    /// The download to follow; `None` for a blob already cached (read and rehashed).
    feed: Option<Arc<Feed>>,
}

impl Extraction {
    fn run(mut self) -> Result<(), Error> {
        let report = match self.feed.take() {
            Some(feed) => self.extract_downloading(feed)?,
            None => self.extract_cached()?,
        };
        if report.end_of_archive_missing {
            // Accepted as Go's archive/tar (so containerd, Docker, umoci) accepts it.
            tracing::debug!(
                "layer {} ({}) of {} ends without the end-of-archive blocks",
                self.index,
                self.layer.digest,
                self.reference
            );
        }
        if report.diff_id != self.layer.diff_id.to_string() {
            return Err(Error::DiffIdMismatch {
                reference: self.reference,
                index: self.index,
                digest: self.layer.digest.clone(),
                expected: self.layer.diff_id.to_string(),
                actual: report.diff_id,
            });
        }
        Ok(())
    }

    /// Extracts a layer while it downloads. What it reads is unverified until the
    /// download commits the blob; the caller waits for that verdict before trusting the
    /// rootfs, and a failed download fails the whole build (the temporary rootfs goes).
    fn extract_downloading(&self, feed: Arc<Feed>) -> Result<tank_layer::LayerReport, Error> {
        let layer_error = |source| Error::Layer {
            reference: self.reference.clone(),
            index: self.index,
            digest: self.layer.digest.to_string(),
            source,
        };
        let reader = GrowingReader::open(feed).map_err(|source| Error::Io {
            operation: "follow the download of",
            path: PathBuf::from(self.layer.digest.to_string()),
            source,
        })?;
        tank_layer::extract(
            io::BufReader::with_capacity(IO_BUFFER, reader),
            self.layer.compression,
            &self.dest,
            &self.options,
        )
        .map_err(layer_error)
    }

    /// Extracts a cached blob, rehashing it on the way: a corrupt one is removed.
    fn extract_cached(&self) -> Result<tank_layer::LayerReport, Error> {
        let file = self.cache.open_blob(&self.layer.digest)?;
        let mut reader = VerifyingReader {
            inner: io::BufReader::with_capacity(IO_BUFFER, file),
            verifier: Some(self.layer.digest.verifier(None)),
        };
        let extracted = tank_layer::extract(
            &mut reader,
            self.layer.compression,
            &self.dest,
            &self.options,
        );
        // Hash what the extraction left unread (padding after the compressed stream), then
        // check the blob before trusting anything the extraction reported.
        let rest = io::copy(&mut reader, &mut io::sink());
        self.check_blob(reader.verifier.take(), rest)?;
        extracted.map_err(|source| Error::Layer {
            reference: self.reference.clone(),
            index: self.index,
            digest: self.layer.digest.to_string(),
            source,
        })
    }

    /// A cached blob that does not hash to its digest is removed and reported.
    fn check_blob(&self, verifier: Option<Verifier>, rest: io::Result<u64>) -> Result<(), Error> {
        let path = self.cache.blob_path(&self.layer.digest);
        if let Err(source) = rest {
            return Err(Error::Io {
                operation: "read",
                path: path.unwrap_or_default(),
                source,
            });
        }
        let verifier = verifier.expect("the verifier is taken once, after reading");
        let actual_size = verifier.bytes();
        match verifier.finish() {
            Ok(_) if actual_size == self.layer.size => Ok(()),
            outcome => {
                let actual = match outcome {
                    Ok(digest) => {
                        format!("{digest} with {actual_size} bytes, not {}", self.layer.size)
                    }
                    Err(error) => error.to_string(),
                };
                self.cache.remove_blob(&self.layer.digest)?;
                Err(Error::CorruptCachedBlob {
                    digest: self.layer.digest.clone(),
                    actual,
                })
            }
        }
    }
}

/// Feeds every byte read through a digest verifier.
struct VerifyingReader<R> {
    inner: R,
    verifier: Option<Verifier>,
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        if let Some(verifier) = self.verifier.as_mut() {
            verifier
                .update(&buf[..read])
                .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
        }
        Ok(read)
    }
}
