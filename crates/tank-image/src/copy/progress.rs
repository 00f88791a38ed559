//! Progress of a push or copy: what the caller hears ([`TransferProgress`], [`BlobInfo`],
//! [`Transfer`]) and the one adapter that reports bytes as they pass ([`Metered`]: around an
//! upload source, a reader or a download sink).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tank_reference::Digest;
use tank_registry::{BlobReader, BlobSource, OpenFuture};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

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

/// Reports the bytes of one blob to the progress receiver.
#[derive(Clone)]
pub(crate) struct Meter {
    progress: Arc<dyn TransferProgress>,
    index: usize,
}

impl Meter {
    /// Reports to `progress` as blob `index`.
    pub(crate) fn new(progress: Arc<dyn TransferProgress>, index: usize) -> Meter {
        Meter { progress, index }
    }

    /// `bytes` of the blob have passed.
    pub(crate) fn report(&self, bytes: u64) {
        self.progress.transferring(self.index, bytes);
    }
}

/// Reports to a [`Meter`] (when there is one) how far the bytes through `inner` have got:
/// around an upload source (each reader it opens counts from its offset), a reader, or a
/// download sink.
pub(crate) struct Metered<T> {
    inner: T,
    position: u64,
    meter: Option<Meter>,
}

impl<T> Metered<T> {
    /// `inner`, its bytes counted from 0.
    pub(crate) fn new(inner: T, meter: Option<Meter>) -> Metered<T> {
        Metered {
            inner,
            position: 0,
            meter,
        }
    }

    /// What is wrapped.
    pub(crate) fn inner(&self) -> &T {
        &self.inner
    }

    /// What is wrapped, to finish it (flush, sync).
    pub(crate) fn inner_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    fn advance(&mut self, bytes: usize) {
        if bytes > 0 {
            self.position += bytes as u64;
            if let Some(meter) = &self.meter {
                meter.report(self.position);
            }
        }
    }
}

impl<S: BlobSource> BlobSource for Metered<S> {
    fn open(&self, offset: u64) -> OpenFuture<'_> {
        Box::pin(async move {
            let reader = self.inner.open(offset).await?;
            Ok(match &self.meter {
                Some(meter) => Box::new(Metered {
                    inner: reader,
                    position: offset,
                    meter: Some(meter.clone()),
                }) as BlobReader,
                None => reader,
            })
        })
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Metered<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buffer.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(context, buffer);
        if let Poll::Ready(Ok(())) = &poll {
            let read = buffer.filled().len() - before;
            self.advance(read);
        }
        poll
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Metered<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(context, data);
        if let Poll::Ready(Ok(written)) = &poll {
            let written = *written;
            self.advance(written);
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// Every `transferring` call, as (index, bytes).
    #[derive(Default)]
    struct Heard(Mutex<Vec<(usize, u64)>>);

    impl TransferProgress for Heard {
        fn transferring(&self, index: usize, bytes: u64) {
            self.0.lock().unwrap().push((index, bytes));
        }
    }

    #[tokio::test]
    async fn metered_reports_how_far_reads_writes_and_reopened_sources_got() {
        let heard = Arc::new(Heard::default());
        let meter = || Some(Meter::new(heard.clone(), 3));

        let mut sink = Metered::new(Vec::new(), meter());
        sink.write_all(b"abc").await.unwrap();
        sink.write_all(b"de").await.unwrap();
        assert_eq!(sink.inner(), b"abcde");
        assert_eq!(heard.0.lock().unwrap().last(), Some(&(3, 5)));

        heard.0.lock().unwrap().clear();
        let mut reader = Metered::new(&b"0123456789"[..], meter());
        let mut text = Vec::new();
        reader.read_to_end(&mut text).await.unwrap();
        assert_eq!(heard.0.lock().unwrap().last(), Some(&(3, 10)));
        // A source reopened at an offset counts on from there.
        heard.0.lock().unwrap().clear();
        let memory = Metered::new(
            crate::copy::source::Memory(Arc::from(&b"0123456789"[..])),
            meter(),
        );
        let mut rest = Vec::new();
        memory
            .open(6)
            .await
            .unwrap()
            .read_to_end(&mut rest)
            .await
            .unwrap();
        assert_eq!(rest, b"6789");
        assert_eq!(heard.0.lock().unwrap().last(), Some(&(3, 10)));
    }
}
