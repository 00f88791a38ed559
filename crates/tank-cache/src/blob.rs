//! Blobs: `blobs/<algo>/<hex>`, written through a verifying [`BlobWriter`].

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use tank_reference::{Digest, Verifier};

use crate::Cache;
use crate::error::{Error, io};
use crate::files::{self, Access};
use crate::fsutil;

impl Cache {
    /// The directory of blobs of one algorithm.
    pub(crate) fn blob_dir(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs").join(digest.algorithm().as_str())
    }

    /// The final name of a blob, whether or not it exists.
    pub(crate) fn blob_final_path(&self, digest: &Digest) -> PathBuf {
        self.blob_dir(digest).join(digest.hex())
    }

    /// The path of a cached blob, or `None` when it is not cached. A path returned here
    /// holds verified content (until [`Cache::gc`] or [`Cache::verify`] removes it).
    pub fn blob_path(&self, digest: &Digest) -> Option<PathBuf> {
        let path = self.blob_final_path(digest);
        // Not followed: only a regular file under the name is a blob.
        fs::symlink_metadata(&path)
            .is_ok_and(|metadata| metadata.is_file())
            .then_some(path)
    }

    /// Opens a cached blob for reading (never following a symlink or blocking on a FIFO
    /// planted under its name).
    ///
    /// # Errors
    ///
    /// [`Error::BlobNotCached`] when it is not cached, [`Error::UnexpectedFileType`] when
    /// the name holds something other than a regular file, [`Error::Io`] when it cannot be
    /// opened.
    pub fn open_blob(&self, digest: &Digest) -> Result<File, Error> {
        let path = self.blob_final_path(digest);
        match files::open_regular(&path, Access::Read) {
            Ok(file) => Ok(file),
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Err(Error::BlobNotCached {
                    digest: digest.clone(),
                })
            }
            Err(error) => Err(error),
        }
    }

    /// Removes the cached blob `digest` (one found corrupt, or one a caller wants
    /// refetched); returns whether it was there. Readers holding it open keep their file.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when it exists and cannot be removed.
    pub fn remove_blob(&self, digest: &Digest) -> Result<bool, Error> {
        let path = self.blob_final_path(digest);
        match fs::remove_file(&path) {
            Ok(()) => {
                fsutil::sync_dir(&self.blob_dir(digest))
                    .map_err(io("sync", self.blob_dir(digest)))?;
                Ok(true)
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(Error::Io {
                operation: "remove",
                path,
                source: error,
            }),
        }
    }

    /// A writer for the blob `digest`: bytes are hashed as they pass and written to a
    /// locked temporary file next to the final name; [`BlobWriter::commit`] verifies them
    /// and renames the file into place. With `expected_size`, writing more bytes fails at
    /// once.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the temporary file cannot be created.
    pub fn blob_writer(
        &self,
        digest: &Digest,
        expected_size: Option<u64>,
    ) -> Result<BlobWriter, Error> {
        self.new_blob_writer(
            digest,
            expected_size,
            Check::Hash(Box::new(digest.verifier(expected_size))),
        )
    }

    /// Like [`Cache::blob_writer`], for a caller that checks the bytes against `digest`
    /// itself, over exactly the bytes it writes here, and calls [`BlobWriter::commit`] only
    /// when that check passed: tank-registry's `Client::fetch_blob` is such a check (it
    /// hashes what it hands its sink and fails on a mismatch). The bytes are then not hashed
    /// a second time; the size is still checked. Use [`Cache::blob_writer`] for any other
    /// source.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the temporary file cannot be created.
    pub fn blob_writer_checked_by_caller(
        &self,
        digest: &Digest,
        expected_size: u64,
    ) -> Result<BlobWriter, Error> {
        self.new_blob_writer(
            digest,
            Some(expected_size),
            Check::Size {
                expected: expected_size,
                written: 0,
            },
        )
    }

    fn new_blob_writer(
        &self,
        digest: &Digest,
        expected_size: Option<u64>,
        check: Check,
    ) -> Result<BlobWriter, Error> {
        let dir = self.blob_dir(digest);
        let (file, temp) = fsutil::create_locked_temp(&dir, fsutil::TEMP_PREFIX)
            .map_err(io("create temporary file in", &dir))?;
        Ok(BlobWriter {
            digest: digest.clone(),
            expected_size,
            file: Some(BufWriter::with_capacity(64 * 1024, file)),
            temp: Some(temp),
            final_path: self.blob_final_path(digest),
            dir,
            check: Some(check),
            too_large: false,
            write_failed: None,
        })
    }

    /// Stores a whole blob held in memory; returns its path.
    ///
    /// # Errors
    ///
    /// [`Error::BlobMismatch`] when `bytes` do not hash to `digest` (nothing is kept),
    /// [`Error::Io`] when the file cannot be written.
    pub fn put_blob_bytes(&self, digest: &Digest, bytes: &[u8]) -> Result<PathBuf, Error> {
        if let Some(path) = self.blob_path(digest) {
            return Ok(path);
        }
        let mut writer = self.blob_writer(digest, Some(bytes.len() as u64))?;
        writer
            .write_all(bytes)
            .map_err(io("write", writer.temp_path().to_path_buf()))?;
        writer.commit()
    }
}

/// Writes one blob: an [`std::io::Write`] that hashes as bytes pass into a temporary file.
///
/// Dropping it without [`BlobWriter::commit`] removes the temporary file.
#[derive(Debug)]
pub struct BlobWriter {
    digest: Digest,
    expected_size: Option<u64>,
    file: Option<BufWriter<File>>,
    temp: Option<PathBuf>,
    final_path: PathBuf,
    dir: PathBuf,
    check: Option<Check>,
    too_large: bool,
    write_failed: Option<io::ErrorKind>,
}

/// How a [`BlobWriter`] checks what it was given.
#[derive(Debug)]
enum Check {
    /// Hashes every byte and compares with the digest at commit.
    Hash(Box<Verifier>),
    /// The caller checks the digest (see [`Cache::blob_writer_checked_by_caller`]); only
    /// the size is checked here.
    Size { expected: u64, written: u64 },
}

impl Check {
    fn bytes(&self) -> u64 {
        match self {
            Check::Hash(verifier) => verifier.bytes(),
            Check::Size { written, .. } => *written,
        }
    }
}

impl BlobWriter {
    /// The digest being written.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// How many bytes have been accepted so far.
    pub fn bytes_written(&self) -> u64 {
        self.check.as_ref().map_or(0, Check::bytes)
    }

    /// The temporary file the bytes go to. Another reader may follow it as it grows (to
    /// extract a layer while it downloads), knowing that what it reads is unverified until
    /// [`BlobWriter::commit`] succeeds; bytes still in this writer's buffer are not there
    /// until [`std::io::Write::flush`].
    pub fn temp_path(&self) -> &Path {
        self.temp.as_deref().unwrap_or(&self.final_path)
    }

    /// Verifies size and digest, fsyncs the file, renames it to `blobs/<algo>/<hex>` and
    /// fsyncs the directory; returns the final path. If the blob appeared meanwhile (another
    /// writer won), our copy is dropped: both were verified, so the bytes are the same.
    ///
    /// # Errors
    ///
    /// [`Error::BlobMismatch`] or [`Error::BlobTooLarge`] when the bytes are not the blob's
    /// (the temporary file is removed, nothing is kept), [`Error::Io`] when writing,
    /// syncing or renaming fails.
    pub fn commit(mut self) -> Result<PathBuf, Error> {
        let temp = self.temp_path().to_path_buf();
        let file = self
            .file
            .take()
            .expect("the file is present until commit or drop");
        let file = file.into_inner().map_err(|error| Error::Io {
            operation: "write",
            path: temp.clone(),
            source: error.into_error(),
        })?;
        if let Some(kind) = self.write_failed {
            return Err(Error::Io {
                operation: "write",
                path: temp,
                source: kind.into(),
            });
        }
        if self.too_large {
            return Err(Error::BlobTooLarge {
                digest: self.digest.clone(),
                expected_size: self.expected_size.unwrap_or(0),
            });
        }
        match self
            .check
            .take()
            .expect("the check is present until commit")
        {
            Check::Hash(verifier) => {
                if let Err(source) = verifier.finish() {
                    return Err(Error::BlobMismatch {
                        digest: self.digest.clone(),
                        source,
                    });
                }
            }
            Check::Size { expected, written } => {
                if written != expected {
                    return Err(Error::BlobSizeMismatch {
                        digest: self.digest.clone(),
                        expected,
                        actual: written,
                    });
                }
            }
        }
        file.sync_all().map_err(io("sync", temp.clone()))?;
        if fs::symlink_metadata(&self.final_path).is_ok_and(|metadata| metadata.is_file()) {
            // Another writer won; our temporary is removed by Drop.
            return Ok(self.final_path.clone());
        }
        fs::rename(&temp, &self.final_path).map_err(io("rename", temp.clone()))?;
        self.temp = None;
        fsutil::sync_dir(&self.dir).map_err(io("sync", self.dir.clone()))?;
        Ok(self.final_path.clone())
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self
            .check
            .as_mut()
            .expect("the check is present until commit")
        {
            Check::Hash(verifier) => {
                if let Err(error) = verifier.update(buf) {
                    self.too_large = true;
                    return Err(io::Error::new(io::ErrorKind::InvalidData, error));
                }
            }
            Check::Size { expected, written } => {
                let after = *written + buf.len() as u64;
                if after > *expected {
                    self.too_large = true;
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("blob grows past its {expected} bytes"),
                    ));
                }
                *written = after;
            }
        }
        let file = self
            .file
            .as_mut()
            .expect("the file is present until commit");
        if let Err(error) = file.write_all(buf) {
            self.write_failed = Some(error.kind());
            return Err(error);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        // Close the file before removing its name, and never keep unverified bytes.
        drop(self.file.take());
        if let Some(temp) = self.temp.take() {
            let _ = fs::remove_file(temp);
        }
    }
}
