//! Upload sources a copy or push reads blobs from: [`Memory`] (bytes held), and
//! [`TempFileSource`], a blob of another registry downloaded (verified) into a temporary file
//! the first time the upload opens it. File-backed layers use tank-registry's own source for
//! paths.

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use tank_reference::Reference;
use tank_registry::{BlobReader, BlobSource, Client, OpenFuture};
use tokio::io::{AsyncSeekExt as _, AsyncWriteExt as _};

use crate::Error;
use crate::layout::io_error;
use crate::oci::Descriptor;

/// A blob held in memory, as an upload source.
pub(crate) struct Memory(pub(crate) Arc<[u8]>);

impl BlobSource for Memory {
    fn open(&self, offset: u64) -> OpenFuture<'_> {
        let mut cursor = io::Cursor::new(self.0.clone());
        cursor.set_position(offset.min(self.0.len() as u64));
        Box::pin(async move { Ok(Box::new(cursor) as BlobReader) })
    }
}

/// A blob of another registry as an upload source: downloaded (verified) into a temporary
/// file the first time the upload opens it, and read from that file by every later attempt
/// or chunk. Nothing is downloaded when the destination has the blob or mounts it.
pub(crate) struct TempFileSource {
    client: Client,
    reference: Reference,
    descriptor: Descriptor,
    temp_dir: Option<PathBuf>,
    file: tokio::sync::Mutex<Option<tempfile::TempPath>>,
    /// Why the download failed, for the caller (the upload only sees an I/O error).
    failure: Mutex<Option<Error>>,
}

impl TempFileSource {
    /// The blob of `descriptor` in the repository of `reference`, downloaded on first open
    /// into a temporary file in `temp_dir` (the system's when `None`).
    pub(crate) fn new(
        client: &Client,
        reference: &Reference,
        descriptor: &Descriptor,
        temp_dir: Option<PathBuf>,
    ) -> TempFileSource {
        TempFileSource {
            client: client.clone(),
            reference: reference.clone(),
            descriptor: descriptor.clone(),
            temp_dir,
            file: tokio::sync::Mutex::new(None),
            failure: Mutex::new(None),
        }
    }
}

impl TempFileSource {
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

    /// Why the download failed, if it did (the upload saw only an I/O error).
    pub(crate) fn take_failure(&self) -> Option<Error> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

impl BlobSource for TempFileSource {
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
