//! The only way a blob lands in a layout's `blobs/<alg>/<hex>`: a temporary file beside it
//! (same filesystem), whose bytes are checked against the descriptor, fsynced, then renamed
//! into place whole. A file already there with the declared size is kept.

use std::fs;
use std::io::{self, Read, Write as _};
use std::path::{Path, PathBuf};

use tank_reference::{Digest, Hasher};

use crate::Error;
use crate::build::BlobRef;
use crate::layout::io_error;
use crate::oci::Descriptor;

/// The path of the blob `digest` in the layout at `dir`.
pub(crate) fn blob_path(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join("blobs")
        .join(digest.algorithm().as_str())
        .join(digest.hex())
}

/// A blob about to be written into a layout: a temporary file in its folder, and its name.
pub(crate) struct PendingBlob {
    temporary: tempfile::NamedTempFile,
    path: PathBuf,
}

impl PendingBlob {
    /// A temporary file for the blob of `descriptor` in the layout at `dir` (its folder
    /// created if missing), or `None` when a file of the declared size is there already
    /// (blobs are named by their digest; the layout reader verifies it when it reads it).
    pub(crate) fn create(
        dir: &Path,
        descriptor: &Descriptor,
    ) -> Result<Option<PendingBlob>, Error> {
        let path = blob_path(dir, descriptor.digest());
        if fs::symlink_metadata(&path)
            .is_ok_and(|meta| meta.is_file() && meta.len() == descriptor.size())
        {
            return Ok(None);
        }
        let folder = path
            .parent()
            .expect("a blob path always has blobs/<alg> as its parent");
        fs::create_dir_all(folder).map_err(|source| io_error("create", folder, source))?;
        let temporary = tempfile::Builder::new()
            .prefix(".tank-blob-")
            .tempfile_in(folder)
            .map_err(|source| io_error("create temporary file in", folder, source))?;
        Ok(Some(PendingBlob { temporary, path }))
    }

    /// Copies `reader` into the temporary file, hashing as it goes, and renames it into
    /// place only when its size and digest match `descriptor`. `progress` hears the bytes
    /// copied so far; `source_name` names the source in errors.
    pub(crate) fn persist_verified(
        mut self,
        mut reader: impl Read,
        source_name: &Path,
        descriptor: &Descriptor,
        progress: impl Fn(u64),
    ) -> Result<(), Error> {
        let mut hasher = Hasher::new(descriptor.digest().algorithm());
        let mut buffer = vec![0_u8; crate::task::IO_BUFFER];
        loop {
            let read = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(io_error("read", source_name, source)),
            };
            hasher.update(&buffer[..read]);
            self.temporary
                .write_all(&buffer[..read])
                .map_err(|source| io_error("write", self.temporary.path(), source))?;
            progress(hasher.bytes());
        }
        check_hashed(hasher, source_name, descriptor)?;
        self.temporary
            .as_file()
            .sync_all()
            .map_err(|source| io_error("sync", self.temporary.path(), source))?;
        let (_, temporary) = self.temporary.into_parts();
        persist(temporary, &self.path)
    }

    /// The temporary file to write, and what renames it into place, for bytes that are
    /// verified as they are written (a registry download checks size and digest as it
    /// streams, and fails before [`VerifiedBlob::persist`] is called when they differ).
    pub(crate) fn into_verified_elsewhere(self) -> (fs::File, VerifiedBlob) {
        let (file, temporary) = self.temporary.into_parts();
        (
            file,
            VerifiedBlob {
                temporary,
                path: self.path,
            },
        )
    }
}

/// A temporary blob file whose bytes the writer verified; removed if dropped.
pub(crate) struct VerifiedBlob {
    temporary: tempfile::TempPath,
    path: PathBuf,
}

impl VerifiedBlob {
    /// The temporary file's path (for errors about writing it).
    pub(crate) fn temporary_path(&self) -> &Path {
        &self.temporary
    }

    /// Renames the file into place; the writer has synced it.
    pub(crate) fn persist(self) -> Result<(), Error> {
        persist(self.temporary, &self.path)
    }
}

fn persist(temporary: tempfile::TempPath, path: &Path) -> Result<(), Error> {
    temporary
        .persist(path)
        .map_err(|error| io_error("rename into", path, error.error))
}

/// Writes one blob into the layout at `dir` unless a file of its size is already there; the
/// bytes are checked against the descriptor on the way and the file appears under its name
/// only when whole.
pub(crate) fn write_blob(
    dir: &Path,
    descriptor: &Descriptor,
    source: BlobRef<'_>,
) -> Result<(), Error> {
    let Some(pending) = PendingBlob::create(dir, descriptor)? else {
        return Ok(());
    };
    let source_name = match source {
        BlobRef::Bytes(_) => PathBuf::from("<memory>"),
        BlobRef::File(file) => file.to_path_buf(),
    };
    pending.persist_verified(source.open()?, &source_name, descriptor, |_| {})
}

/// Checks what `hasher` saw (its digest and byte count) against `descriptor`: the one
/// comparison behind every verified layout blob. `path` names the bytes in the error.
pub(crate) fn check_hashed(
    hasher: Hasher,
    path: &Path,
    descriptor: &Descriptor,
) -> Result<(), Error> {
    let size = hasher.bytes();
    let actual = hasher.finish();
    if actual != *descriptor.digest() || size != descriptor.size() {
        return Err(Error::BlobMismatch {
            path: path.to_path_buf(),
            expected: descriptor.digest().to_string(),
            expected_size: descriptor.size(),
            actual: actual.to_string(),
            actual_size: size,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use tank_reference::Algorithm;

    use super::*;

    fn descriptor_of(bytes: &[u8]) -> Descriptor {
        Descriptor::new(
            "application/octet-stream",
            Digest::of(Algorithm::Sha256, bytes),
            bytes.len() as u64,
        )
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_blob_lands_whole_under_its_digest_and_a_present_one_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let descriptor = descriptor_of(b"hello");
        write_blob(dir.path(), &descriptor, BlobRef::Bytes(b"hello")).unwrap();
        let path = blob_path(dir.path(), descriptor.digest());
        assert_eq!(fs::read(&path).unwrap(), b"hello");
        assert_eq!(names(path.parent().unwrap()), [descriptor.digest().hex()]);
        // A file of the declared size is there: nothing is created, nothing is read.
        assert!(
            PendingBlob::create(dir.path(), &descriptor)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn bytes_that_do_not_match_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let descriptor = descriptor_of(b"hello");
        let error = write_blob(dir.path(), &descriptor, BlobRef::Bytes(b"hellO")).unwrap_err();
        assert!(
            matches!(&error, Error::BlobMismatch { actual_size: 5, .. }),
            "{error}"
        );
        let folder = blob_path(dir.path(), descriptor.digest());
        assert!(names(folder.parent().unwrap()).is_empty());
    }

    #[test]
    fn a_blob_verified_elsewhere_appears_only_when_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let descriptor = descriptor_of(b"hello");
        let path = blob_path(dir.path(), descriptor.digest());
        let pending = PendingBlob::create(dir.path(), &descriptor)
            .unwrap()
            .unwrap();
        let (mut file, blob) = pending.into_verified_elsewhere();
        file.write_all(b"hello").unwrap();
        assert!(!path.exists());
        blob.persist().unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"hello");

        // Dropped instead (the download failed): the temporary file goes.
        let other = descriptor_of(b"other");
        let pending = PendingBlob::create(dir.path(), &other).unwrap().unwrap();
        drop(pending.into_verified_elsewhere());
        assert_eq!(names(path.parent().unwrap()), [descriptor.digest().hex()]);
    }
}
