//! Crate-wide plumbing for work off the async workers: [`blocking`] and the one I/O buffer
//! size tank-image reads and writes files with.

use crate::Error;

/// The buffer size for streaming blobs and files (reading layers, hashing, copying): large
/// enough that a read is rarely the bottleneck, small enough to hold one per task.
pub(crate) const IO_BUFFER: usize = 256 * 1024;

/// Runs blocking filesystem work (locks, fsyncs, extraction, hashing, layout writes) on
/// tokio's blocking pool, off the async workers.
pub(crate) async fn blocking<T, F>(work: F) -> Result<T, Error>
where
    F: FnOnce() -> Result<T, Error> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| Error::Internal(format!("blocking task: {error}")))?
}
