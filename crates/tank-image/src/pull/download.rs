//! Downloading layer blobs into the cache while an extraction follows them: the
//! [`LayerDownload`] task, the [`LayerSink`] it streams through, and [`Downloads`], the set
//! of running tasks that aborts whatever is left when it goes.

use std::fs::File;
use std::io::{self, Write as _};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tank_cache::{BlobWriter, Cache};
use tank_reference::{Digest, Reference};
use tank_registry::Client;
use tokio::io::AsyncWrite;
use tokio::task::JoinHandle;

use super::PullProgress;
use super::follow::{Feed, FeedGuard};
use crate::Error;
use crate::task::blocking;

/// The download tasks of one build, by layer index (`None` for a layer not downloaded).
/// Dropping it aborts every task not yet taken, so no error path (nor a dropped pull) can
/// leave a download running.
#[derive(Default)]
pub(super) struct Downloads {
    tasks: Vec<Option<JoinHandle<Result<u64, Error>>>>,
}

impl Downloads {
    /// Adds the task of the next layer, or `None` when it is not downloaded.
    pub(super) fn push(&mut self, task: Option<JoinHandle<Result<u64, Error>>>) {
        self.tasks.push(task);
    }

    /// Waits for the download of layer `index`, if it has one; returns the bytes it fetched.
    pub(super) async fn finish(&mut self, index: usize) -> Option<Result<u64, Error>> {
        let handle = self.tasks.get_mut(index)?.take()?;
        Some(match handle.await {
            Ok(result) => result,
            Err(error) => Err(Error::Internal(format!("layer download task: {error}"))),
        })
    }
}

impl Drop for Downloads {
    fn drop(&mut self) {
        for handle in self.tasks.iter().flatten() {
            handle.abort();
        }
    }
}

/// Downloads one layer blob into the cache.
pub(super) struct LayerDownload {
    /// The registry client.
    pub(super) client: Client,
    /// The cache the blob goes into.
    pub(super) cache: Cache,
    /// The image reference (the repository to fetch from).
    pub(super) reference: Reference,
    /// The layer blob's digest.
    pub(super) digest: Digest,
    /// Its size, as the manifest declares it.
    pub(super) size: u64,
    /// The layer's position, for progress reports.
    pub(super) index: usize,
    /// A refresh: replace the cached copy with the fresh one.
    pub(super) replace: bool,
    /// Told how many bytes arrived and when the layer is stored.
    pub(super) progress: Option<Arc<dyn PullProgress>>,
    /// Tells the extraction how far the blob has been written, and whether it verified.
    pub(super) feed: Arc<Feed>,
}

impl LayerDownload {
    /// Streams the blob through a verifying cache writer and commits it; returns its size.
    /// The feed ends verified only after the commit; on failure (or when the task is
    /// dropped) it ends failed.
    pub(super) async fn run(self) -> Result<u64, Error> {
        let guard = FeedGuard::new(Arc::clone(&self.feed));
        let bytes = self.fetch().await?;
        guard.verified();
        if let Some(progress) = &self.progress {
            progress.downloaded(self.index);
        }
        Ok(bytes)
    }

    async fn fetch(&self) -> Result<u64, Error> {
        let (cache, digest, size) = (self.cache.clone(), self.digest.clone(), self.size);
        let writer =
            // The registry client hashes every byte it hands the sink and fails on a
            // mismatch, and the writer is committed only after it succeeded: no second hash.
            blocking(move || {
                cache
                    .blob_writer_checked_by_caller(&digest, size)
                    .map_err(Error::from)
            })
            .await?;
        // A second handle on the temporary file, opened now (the name goes at the commit),
        // for the extraction that follows the download.
        let path = writer.temp_path().to_path_buf();
        let follower = File::open(&path).map_err(|source| Error::Io {
            operation: "open",
            path,
            source,
        })?;
        self.feed.update(|state| state.file = Some(follower));
        let mut sink = LayerSink {
            writer,
            index: self.index,
            progress: self.progress.clone(),
            feed: Arc::clone(&self.feed),
        };
        let bytes = self
            .client
            .fetch_blob(&self.reference, &self.digest, Some(self.size), &mut sink)
            .await?;
        let (cache, digest, replace) = (self.cache.clone(), self.digest.clone(), self.replace);
        blocking(move || {
            if replace {
                cache.remove_blob(&digest)?;
            }
            sink.writer.commit()?;
            Ok(())
        })
        .await?;
        Ok(bytes)
    }
}

/// Where a layer download writes: an [`AsyncWrite`] over a cache [`BlobWriter`] that flushes
/// each write, tells the [`Feed`] how far the file is readable, and reports progress. Writes
/// go straight to the (buffered) file: page-cache writes of network-sized chunks do not
/// block for long.
struct LayerSink {
    writer: BlobWriter,
    index: usize,
    progress: Option<Arc<dyn PullProgress>>,
    feed: Arc<Feed>,
}

impl AsyncWrite for LayerSink {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // Flushed at once, so the extraction following the file sees every byte accepted.
        let written = self
            .writer
            .write(buf)
            .and_then(|n| self.writer.flush().map(|()| n));
        if written.is_ok() {
            let readable = self.writer.bytes_written();
            self.feed.update(|state| state.readable = readable);
            if let Some(progress) = &self.progress {
                progress.downloading(self.index, readable);
            }
        }
        Poll::Ready(written)
    }

    fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.writer.flush())
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

#[cfg(test)]
mod tests;
