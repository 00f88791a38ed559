//! Where a built layer's bytes are: [`LayerBlob`] (compression, digest, diff_id, size, and
//! the bytes in memory or in a file, a temporary one owned by the blob) and [`BlobRef`].

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tank_layer::Compression;
use tank_reference::{Algorithm, Digest, Hasher};

use super::pipeline::{Encoder, Hashing, HashingReader};
use crate::Error;
use crate::task::IO_BUFFER;

/// A compressed layer blob with its size, digest and diff_id, held in memory or as a file.
///
/// A blob built by this crate into a temporary file owns it: the file is removed when the
/// last clone of the blob is dropped.
#[derive(Clone, Debug)]
pub struct LayerBlob {
    pub(super) compression: Compression,
    pub(super) digest: Digest,
    pub(super) diff_id: Digest,
    pub(super) size: u64,
    pub(super) data: BlobData,
}

/// The bytes of a [`LayerBlob`]: in memory, or in a file (owned when temporary).
#[derive(Clone, Debug)]
pub(super) enum BlobData {
    Memory(Arc<[u8]>),
    File {
        path: PathBuf,
        _temporary: Option<Arc<tempfile::TempPath>>,
    },
}

/// Where the bytes of a blob are: borrowed bytes, or a file to stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobRef<'a> {
    /// The blob's bytes.
    Bytes(&'a [u8]),
    /// A file holding exactly the blob's bytes.
    File(&'a Path),
}

impl<'a> BlobRef<'a> {
    /// A reader over the blob's bytes.
    pub fn open(&self) -> Result<Box<dyn Read + Send + 'a>, Error> {
        match *self {
            BlobRef::Bytes(bytes) => Ok(Box::new(bytes)),
            BlobRef::File(path) => {
                let file = File::open(path).map_err(|source| Error::Io {
                    operation: "open blob",
                    path: path.to_path_buf(),
                    source,
                })?;
                Ok(Box::new(BufReader::with_capacity(IO_BUFFER, file)))
            }
        }
    }

    /// The whole blob in memory (for manifests and configs; avoid for large layers).
    pub fn to_vec(&self) -> Result<Vec<u8>, Error> {
        match *self {
            BlobRef::Bytes(bytes) => Ok(bytes.to_vec()),
            BlobRef::File(path) => fs::read(path).map_err(|source| Error::Io {
                operation: "read blob",
                path: path.to_path_buf(),
                source,
            }),
        }
    }
}

impl LayerBlob {
    /// A layer from an uncompressed tar stream held in memory, compressed here.
    pub fn from_tar(tar: &[u8], compression: Compression) -> Result<LayerBlob, Error> {
        let mut diff_id = Hasher::new(Algorithm::Sha256);
        diff_id.update(tar);
        let compressed = Encoder::new(Hashing::new(Vec::new()), compression)
            .and_then(|mut encoder| {
                encoder.write_all(tar)?;
                encoder.finish()
            })
            .map_err(|source| Error::Io {
                operation: "compress layer",
                path: PathBuf::from("<memory>"),
                source,
            })?;
        let (bytes, hasher) = compressed.into_parts();
        Ok(LayerBlob {
            compression,
            size: hasher.bytes(),
            digest: hasher.finish(),
            diff_id: diff_id.finish(),
            data: BlobData::Memory(bytes.into()),
        })
    }

    /// A layer from already compressed bytes; the diff_id is computed by decompressing them.
    pub fn from_compressed(bytes: Vec<u8>, compression: Compression) -> Result<LayerBlob, Error> {
        let diff_id = diff_id_of(&bytes[..], compression, Path::new("<memory>"))?;
        Ok(LayerBlob {
            compression,
            size: bytes.len() as u64,
            digest: Digest::of(Algorithm::Sha256, &bytes),
            diff_id,
            data: BlobData::Memory(bytes.into()),
        })
    }

    /// A layer backed by an existing compressed file, streamed once to compute its digest and
    /// (decompressing) its diff_id. The file must not change while the blob is in use.
    pub fn from_file(path: &Path, compression: Compression) -> Result<LayerBlob, Error> {
        let file = File::open(path).map_err(|source| Error::Io {
            operation: "open layer",
            path: path.to_path_buf(),
            source,
        })?;
        let mut reader = HashingReader {
            inner: BufReader::with_capacity(IO_BUFFER, file),
            hasher: Hasher::new(Algorithm::Sha256),
        };
        let diff_id = diff_id_of(&mut reader, compression, path)?;
        // Trailing bytes after the compressed stream are part of the blob too.
        io::copy(&mut reader, &mut io::sink()).map_err(|source| Error::Io {
            operation: "read layer",
            path: path.to_path_buf(),
            source,
        })?;
        Ok(LayerBlob {
            compression,
            size: reader.hasher.bytes(),
            digest: reader.hasher.finish(),
            diff_id,
            data: BlobData::File {
                path: path.to_path_buf(),
                _temporary: None,
            },
        })
    }

    /// A layer backed by a file whose digest and size were verified by the caller, with the
    /// diff_id its image declares.
    pub(crate) fn from_verified_file(
        path: PathBuf,
        compression: Compression,
        digest: Digest,
        size: u64,
        diff_id: Digest,
    ) -> LayerBlob {
        LayerBlob {
            compression,
            digest,
            diff_id,
            size,
            data: BlobData::File {
                path,
                _temporary: None,
            },
        }
    }

    /// The compression of the blob.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// The digest of the compressed blob.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The digest of the uncompressed tar stream (an entry of `rootfs.diff_ids`).
    pub fn diff_id(&self) -> &Digest {
        &self.diff_id
    }

    /// The size of the compressed blob in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Where the compressed bytes are.
    pub fn blob(&self) -> BlobRef<'_> {
        match &self.data {
            BlobData::Memory(bytes) => BlobRef::Bytes(bytes),
            BlobData::File { path, .. } => BlobRef::File(path),
        }
    }
}

/// The diff_id of a compressed stream.
fn diff_id_of<R: Read>(stream: R, compression: Compression, path: &Path) -> Result<Digest, Error> {
    let mut hasher = Hasher::new(Algorithm::Sha256);
    let copied = match compression {
        Compression::None => io::copy(&mut { stream }, &mut hasher),
        Compression::Gzip => io::copy(&mut flate2::read::MultiGzDecoder::new(stream), &mut hasher),
        Compression::Zstd => zstd::stream::read::Decoder::new(stream)
            .and_then(|mut decoder| io::copy(&mut decoder, &mut hasher)),
    };
    copied.map_err(|source| Error::Io {
        operation: "decompress layer",
        path: path.to_path_buf(),
        source,
    })?;
    Ok(hasher.finish())
}
