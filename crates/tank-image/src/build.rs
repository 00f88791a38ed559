//! Layer building: a directory tree, a list of entries or the difference of two trees becomes
//! one compressed tar layer, streamed in one pass through the compressor into a temporary file
//! (or memory) while both the uncompressed stream (the diff_id) and the compressed one (the
//! blob digest) are hashed. Memory does not grow with file sizes.
//!
//! Output is deterministic: a directory is walked depth first with siblings sorted by the
//! bytes of their names, entry lists are sorted the same way, user and group names are left
//! empty, and gzip headers carry no time or name. Fixed mtimes and owners are options.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, File, Metadata};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::io::Errno;
use tank_reference::{Algorithm, Digest, Hasher};

use crate::Error;

/// How a layer's tar stream is compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Compression {
    /// A plain tar stream.
    None,
    /// gzip, the compression every registry and runtime reads.
    #[default]
    Gzip,
    /// zstd (OCI media types only).
    Zstd,
}

impl From<Compression> for tank_layer::Compression {
    fn from(compression: Compression) -> tank_layer::Compression {
        match compression {
            Compression::None => tank_layer::Compression::None,
            Compression::Gzip => tank_layer::Compression::Gzip,
            Compression::Zstd => tank_layer::Compression::Zstd,
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        })
    }
}

/// What a caller may choose when building a layer; `Default` is gzip into a temporary file
/// under the system temporary directory, with the files' own mtimes and owners.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LayerOptions {
    /// The compression of the layer blob.
    pub compression: Compression,
    /// Every entry gets this mtime (seconds since the epoch) instead of its own.
    pub mtime: Option<u64>,
    /// Every entry gets this numeric owner and group (e.g. `(0, 0)`) instead of its own.
    pub owner: Option<(u64, u64)>,
    /// Record the `user.*` extended attributes of files read from disk (PAX
    /// `SCHILY.xattr.*` records). Entries given as a list always carry theirs.
    pub xattrs: bool,
    /// The directory for the temporary file holding the compressed layer; the system
    /// temporary directory when `None`.
    pub temp_dir: Option<PathBuf>,
    /// Keep the compressed layer in memory instead of a temporary file (small layers).
    pub in_memory: bool,
}

/// A compressed layer blob with its size, digest and diff_id, held in memory or as a file.
///
/// A blob built by this crate into a temporary file owns it: the file is removed when the
/// last clone of the blob is dropped.
#[derive(Clone, Debug)]
pub struct LayerBlob {
    compression: Compression,
    digest: Digest,
    diff_id: Digest,
    size: u64,
    data: BlobData,
}

#[derive(Clone, Debug)]
enum BlobData {
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
                Ok(Box::new(BufReader::with_capacity(256 * 1024, file)))
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
            inner: BufReader::with_capacity(256 * 1024, file),
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

struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.hasher.update(&buf[..read]);
        Ok(read)
    }
}

/// A writer that hashes what passes through it.
struct Hashing<W> {
    inner: W,
    hasher: Hasher,
}

impl<W> Hashing<W> {
    fn new(inner: W) -> Hashing<W> {
        Hashing {
            inner,
            hasher: Hasher::new(Algorithm::Sha256),
        }
    }

    fn into_parts(self) -> (W, Hasher) {
        (self.inner, self.hasher)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

enum Encoder<W: Write> {
    None(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    fn new(inner: W, compression: Compression) -> io::Result<Encoder<W>> {
        Ok(match compression {
            Compression::None => Encoder::None(inner),
            Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                inner,
                flate2::Compression::default(),
            )),
            Compression::Zstd => Encoder::Zstd(zstd::stream::write::Encoder::new(inner, 3)?),
        })
    }

    fn finish(self) -> io::Result<W> {
        match self {
            Encoder::None(mut inner) => {
                inner.flush()?;
                Ok(inner)
            }
            Encoder::Gzip(encoder) => encoder.finish(),
            Encoder::Zstd(encoder) => encoder.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::None(inner) => inner.write(buf),
            Encoder::Gzip(encoder) => encoder.write(buf),
            Encoder::Zstd(encoder) => encoder.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::None(inner) => inner.flush(),
            Encoder::Gzip(encoder) => encoder.flush(),
            Encoder::Zstd(encoder) => encoder.flush(),
        }
    }
}

enum Sink {
    Memory(Vec<u8>),
    File(BufWriter<tempfile::NamedTempFile>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Memory(bytes) => bytes.write(buf),
            Sink::File(file) => file.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Memory(_) => Ok(()),
            Sink::File(file) => file.flush(),
        }
    }
}

type Pipeline = tar::Builder<Hashing<Encoder<Hashing<Sink>>>>;

/// What one entry of a layer is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file with these contents.
    File(Vec<u8>),
    /// A directory.
    Dir,
    /// A symbolic link to this target, stored verbatim.
    Symlink(String),
    /// A hard link to this path of the same layer or a lower one.
    Hardlink(String),
    /// A character device (major, minor).
    CharDevice(u32, u32),
    /// A block device (major, minor).
    BlockDevice(u32, u32),
    /// A named pipe.
    Fifo,
    /// A whiteout: the path is deleted from lower layers (stored as `.wh.<name>`).
    Whiteout,
    /// An opaque marker: the directory at the path is emptied of what lower layers put
    /// there (stored as `<path>/.wh..wh..opq`).
    Opaque,
}

/// One entry of a layer built from a list; paths are relative to the root (a leading `/` or
/// `./` is dropped) and use `/` as separator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerEntry {
    /// The path inside the layer.
    pub path: String,
    /// What the entry is.
    pub kind: EntryKind,
    /// Permission bits, with setuid, setgid and sticky.
    pub mode: u32,
    /// Numeric owner.
    pub uid: u64,
    /// Numeric group.
    pub gid: u64,
    /// Seconds since the epoch.
    pub mtime: u64,
    /// Extended attributes, full name (e.g. `user.origin`) to value.
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

impl LayerEntry {
    /// An entry owned by root with mtime 0 and no xattrs.
    pub fn new(path: &str, kind: EntryKind, mode: u32) -> LayerEntry {
        LayerEntry {
            path: path.to_owned(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime: 0,
            xattrs: BTreeMap::new(),
        }
    }

    /// A regular file.
    pub fn file(path: &str, contents: impl Into<Vec<u8>>, mode: u32) -> LayerEntry {
        LayerEntry::new(path, EntryKind::File(contents.into()), mode)
    }

    /// A directory.
    pub fn dir(path: &str, mode: u32) -> LayerEntry {
        LayerEntry::new(path, EntryKind::Dir, mode)
    }

    /// A symbolic link.
    pub fn symlink(path: &str, target: &str) -> LayerEntry {
        LayerEntry::new(path, EntryKind::Symlink(target.to_owned()), 0o777)
    }

    /// A hard link to `target`.
    pub fn hardlink(path: &str, target: &str) -> LayerEntry {
        LayerEntry::new(path, EntryKind::Hardlink(target.to_owned()), 0o644)
    }

    /// A whiteout deleting `path` from lower layers.
    pub fn whiteout(path: &str) -> LayerEntry {
        LayerEntry::new(path, EntryKind::Whiteout, 0o644)
    }

    /// This entry with another owner and group.
    pub fn with_owner(mut self, uid: u64, gid: u64) -> LayerEntry {
        self.uid = uid;
        self.gid = gid;
        self
    }

    /// This entry with another mtime.
    pub fn with_mtime(mut self, mtime: u64) -> LayerEntry {
        self.mtime = mtime;
        self
    }

    /// This entry with one more extended attribute.
    pub fn with_xattr(mut self, name: &str, value: impl Into<Vec<u8>>) -> LayerEntry {
        self.xattrs.insert(name.to_owned(), value.into());
        self
    }
}

/// The bytes of a relative path without a leading `/` or `./`, and without trailing `/`.
fn clean_path(path: &str) -> &str {
    let mut path = path;
    loop {
        if let Some(rest) = path.strip_prefix("./") {
            path = rest;
        } else if let Some(rest) = path.strip_prefix('/') {
            path = rest;
        } else {
            break;
        }
    }
    path.trim_end_matches('/')
}

/// The sort key that gives depth-first order with siblings sorted by name bytes.
fn path_key(path: &str) -> Vec<&[u8]> {
    clean_path(path).split('/').map(str::as_bytes).collect()
}

/// Writes a layer entry by entry, in the order given; [`LayerBuilder::finish`] yields the
/// blob. Prefer [`layer_from_entries`], [`layer_from_dir`] and [`layer_from_diff`], which
/// order entries deterministically.
pub struct LayerBuilder {
    tar: Pipeline,
    options: LayerOptions,
    place: PathBuf,
}

impl fmt::Debug for LayerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LayerBuilder")
            .field("options", &self.options)
            .field("place", &self.place)
            .finish_non_exhaustive()
    }
}

impl LayerBuilder {
    /// A builder writing to a new temporary file (or memory) as `options` say.
    pub fn new(options: &LayerOptions) -> Result<LayerBuilder, Error> {
        let (sink, place) = if options.in_memory {
            (Sink::Memory(Vec::new()), PathBuf::from("<memory>"))
        } else {
            let dir = options.temp_dir.clone().unwrap_or_else(std::env::temp_dir);
            let file = tempfile::Builder::new()
                .prefix(".tank-layer-")
                .tempfile_in(&dir)
                .map_err(|source| Error::Io {
                    operation: "create temporary layer file in",
                    path: dir.clone(),
                    source,
                })?;
            let place = file.path().to_path_buf();
            (
                Sink::File(BufWriter::with_capacity(256 * 1024, file)),
                place,
            )
        };
        let encoder =
            Encoder::new(Hashing::new(sink), options.compression).map_err(|source| Error::Io {
                operation: "start compressing layer",
                path: place.clone(),
                source,
            })?;
        let mut tar = tar::Builder::new(Hashing::new(encoder));
        tar.mode(tar::HeaderMode::Complete);
        Ok(LayerBuilder {
            tar,
            options: options.clone(),
            place,
        })
    }

    /// Appends one entry (with the options' mtime and owner overrides applied).
    pub fn append(&mut self, entry: &LayerEntry) -> Result<(), Error> {
        let path = clean_path(&entry.path);
        if path.is_empty() {
            return Err(Error::InvalidLayerEntry {
                path: entry.path.clone(),
                reason: "the path names the layer's root",
            });
        }
        if path.split('/').any(|component| component == "..") {
            return Err(Error::InvalidLayerEntry {
                path: entry.path.clone(),
                reason: "the path climbs out of the layer with `..`",
            });
        }
        let xattrs: Vec<(Vec<u8>, &[u8])> = entry
            .xattrs
            .iter()
            .map(|(name, value)| (name.as_bytes().to_vec(), value.as_slice()))
            .collect();
        let meta = Meta {
            mode: entry.mode,
            uid: entry.uid,
            gid: entry.gid,
            mtime: entry.mtime,
        };
        let (parent, name) = match path.rsplit_once('/') {
            Some((parent, name)) => (format!("{parent}/"), name),
            None => (String::new(), path),
        };
        match &entry.kind {
            EntryKind::File(contents) => self.write(
                path.as_bytes(),
                tar::EntryType::Regular,
                meta,
                &xattrs,
                Content::Bytes(contents),
            ),
            EntryKind::Dir => self.write(
                path.as_bytes(),
                tar::EntryType::Directory,
                meta,
                &xattrs,
                Content::None,
            ),
            EntryKind::Symlink(target) => self.write(
                path.as_bytes(),
                tar::EntryType::Symlink,
                meta,
                &xattrs,
                Content::Link(target.as_bytes()),
            ),
            EntryKind::Hardlink(target) => self.write(
                path.as_bytes(),
                tar::EntryType::Link,
                meta,
                &xattrs,
                Content::Link(clean_path(target).as_bytes()),
            ),
            EntryKind::CharDevice(major, minor) => self.write(
                path.as_bytes(),
                tar::EntryType::Char,
                meta,
                &xattrs,
                Content::Device(*major, *minor),
            ),
            EntryKind::BlockDevice(major, minor) => self.write(
                path.as_bytes(),
                tar::EntryType::Block,
                meta,
                &xattrs,
                Content::Device(*major, *minor),
            ),
            EntryKind::Fifo => self.write(
                path.as_bytes(),
                tar::EntryType::Fifo,
                meta,
                &xattrs,
                Content::None,
            ),
            EntryKind::Whiteout => {
                let whiteout = format!("{parent}.wh.{name}");
                self.write_whiteout(whiteout.as_bytes(), meta.mtime)
            }
            EntryKind::Opaque => {
                let marker = format!("{path}/.wh..wh..opq");
                self.write_whiteout(marker.as_bytes(), meta.mtime)
            }
        }
    }

    /// Finishes the tar stream and the compression, and returns the blob.
    pub fn finish(self) -> Result<LayerBlob, Error> {
        let failed = |source| Error::Io {
            operation: "finish layer",
            path: self.place.clone(),
            source,
        };
        let compression = self.options.compression;
        let (encoder, diff_id) = self.tar.into_inner().map_err(failed)?.into_parts();
        let (sink, digest) = encoder.finish().map_err(failed)?.into_parts();
        let size = digest.bytes();
        let data = match sink {
            Sink::Memory(bytes) => BlobData::Memory(bytes.into()),
            Sink::File(file) => {
                let file = file
                    .into_inner()
                    .map_err(|error| failed(error.into_error()))?;
                BlobData::File {
                    path: self.place.clone(),
                    _temporary: Some(Arc::new(file.into_temp_path())),
                }
            }
        };
        Ok(LayerBlob {
            compression,
            digest: digest.finish(),
            diff_id: diff_id.finish(),
            size,
            data,
        })
    }

    fn write_whiteout(&mut self, path: &[u8], mtime: u64) -> Result<(), Error> {
        let meta = Meta {
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime,
        };
        self.write(path, tar::EntryType::Regular, meta, &[], Content::None)
    }

    /// Writes one tar entry (with a PAX header first when there are xattrs).
    fn write(
        &mut self,
        path: &[u8],
        entry_type: tar::EntryType,
        meta: Meta,
        xattrs: &[(Vec<u8>, &[u8])],
        content: Content<'_>,
    ) -> Result<(), Error> {
        let failed = |source| Error::Io {
            operation: "write layer entry",
            path: PathBuf::from(OsStr::from_bytes(path)),
            source,
        };
        if !xattrs.is_empty() {
            self.write_pax(xattrs).map_err(failed)?;
        }
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(entry_type);
        header.set_mode(meta.mode & 0o7777);
        let (uid, gid) = self.options.owner.unwrap_or((meta.uid, meta.gid));
        header.set_uid(uid);
        header.set_gid(gid);
        header.set_mtime(self.options.mtime.unwrap_or(meta.mtime));
        let os_path = Path::new(OsStr::from_bytes(path));
        match content {
            Content::None => {
                header.set_size(0);
                self.tar
                    .append_data(&mut header, os_path, io::empty())
                    .map_err(failed)
            }
            Content::Bytes(bytes) => {
                header.set_size(bytes.len() as u64);
                self.tar
                    .append_data(&mut header, os_path, bytes)
                    .map_err(failed)
            }
            Content::File(file, size) => {
                header.set_size(size);
                let reader = ExactReader {
                    inner: BufReader::with_capacity(256 * 1024, file.take(size)),
                    remaining: size,
                };
                self.tar
                    .append_data(&mut header, os_path, reader)
                    .map_err(failed)
            }
            Content::Link(target) => {
                header.set_size(0);
                self.tar
                    .append_link(&mut header, os_path, Path::new(OsStr::from_bytes(target)))
                    .map_err(failed)
            }
            Content::Device(major, minor) => {
                header.set_size(0);
                header.set_device_major(major).map_err(failed)?;
                header.set_device_minor(minor).map_err(failed)?;
                self.tar
                    .append_data(&mut header, os_path, io::empty())
                    .map_err(failed)
            }
        }
    }

    /// A PAX extended header carrying `SCHILY.xattr.<name>` records for the next entry.
    fn write_pax(&mut self, xattrs: &[(Vec<u8>, &[u8])]) -> io::Result<()> {
        let mut records = Vec::new();
        for (name, value) in xattrs {
            let mut key = b"SCHILY.xattr.".to_vec();
            key.extend_from_slice(name);
            // "<length> <key>=<value>\n", where the length counts its own digits.
            let rest = 1 + key.len() + 1 + value.len() + 1;
            let mut length = rest + 1;
            while length != rest + length.to_string().len() {
                length = rest + length.to_string().len();
            }
            records.extend_from_slice(length.to_string().as_bytes());
            records.push(b' ');
            records.extend_from_slice(&key);
            records.push(b'=');
            records.extend_from_slice(value);
            records.push(b'\n');
        }
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::XHeader);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_size(records.len() as u64);
        header.set_path("PaxHeader")?;
        header.set_cksum();
        self.tar.append(&header, &records[..])
    }
}

#[derive(Clone, Copy)]
struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
}

enum Content<'a> {
    None,
    Bytes(&'a [u8]),
    File(File, u64),
    Link(&'a [u8]),
    Device(u32, u32),
}

/// Yields exactly `remaining` bytes or fails: a file that shrank while being archived must
/// not leave a corrupt tar stream behind.
struct ExactReader<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let read = self.inner.read(buf)?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was archived",
            ));
        }
        self.remaining -= read as u64;
        Ok(read)
    }
}

/// A layer holding `entries`, sorted depth first with siblings by name bytes (parents before
/// children; the sort is stable, so entries of the same path keep their order).
pub fn layer_from_entries(
    entries: &[LayerEntry],
    options: &LayerOptions,
) -> Result<LayerBlob, Error> {
    let mut sorted: Vec<&LayerEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| path_key(&a.path).cmp(&path_key(&b.path)));
    let mut builder = LayerBuilder::new(options)?;
    for entry in sorted {
        builder.append(entry)?;
    }
    builder.finish()
}

/// A layer holding everything below `dir` (not `dir` itself), walked depth first with
/// siblings sorted by name bytes, symlinks stored verbatim, hard links (same device and
/// inode) as tar hard links to the first path seen, devices and fifos as such. Sockets are
/// skipped, as tar cannot hold them.
pub fn layer_from_dir(dir: &Path, options: &LayerOptions) -> Result<LayerBlob, Error> {
    let mut walk = Walk::new(options)?;
    walk.add_children(dir, &[])?;
    walk.builder.finish()
}

/// A layer that turns `lower` into `upper` when applied onto it: entries added or changed in
/// `upper` (type, mode, owner, mtime in seconds, size and content of regular files, link
/// targets, device numbers, and `user.*` xattrs when asked), and a `.wh.<name>` whiteout for
/// each path of `lower` missing from `upper` (one for a removed directory, none for its
/// children). A path whose type changed is written anew; the extractor replaces what stands
/// there. A file whose hard-link group (the paths sharing its inode) differs between the
/// trees is written, so link groups come out right. The directories enclosing a change are written too (as containerd's
/// diff does), so extracting the change keeps their mode and mtime as in `upper`.
pub fn layer_from_diff(
    lower: &Path,
    upper: &Path,
    options: &LayerOptions,
) -> Result<LayerBlob, Error> {
    let mut walk = Walk::new(options)?;
    walk.lower_groups = link_groups(lower)?;
    walk.upper_groups = link_groups(upper)?;
    walk.diff_children(lower, upper, &[])?;
    walk.builder.finish()
}

struct Walk {
    builder: LayerBuilder,
    /// The tar path of the first path written for each (device, inode) with several links.
    links: HashMap<(u64, u64), Vec<u8>>,
    /// The directories of `upper` the diff walk is inside, outermost first, each with
    /// whether its entry was written. A change inside writes every unwritten one first, so
    /// extracting the change cannot leave a parent with another mtime than in `upper`.
    ancestors: Vec<Ancestor>,
    /// For a diff: the hard-link group (sorted paths sharing an inode) of each path of
    /// `lower` and `upper` that has one.
    lower_groups: HashMap<Vec<u8>, Vec<Vec<u8>>>,
    upper_groups: HashMap<Vec<u8>, Vec<Vec<u8>>>,
}

struct Ancestor {
    disk: PathBuf,
    path: Vec<u8>,
    metadata: Metadata,
    written: bool,
}

impl Walk {
    fn new(options: &LayerOptions) -> Result<Walk, Error> {
        Ok(Walk {
            builder: LayerBuilder::new(options)?,
            links: HashMap::new(),
            ancestors: Vec::new(),
            lower_groups: HashMap::new(),
            upper_groups: HashMap::new(),
        })
    }

    fn add_children(&mut self, dir: &Path, relative: &[u8]) -> Result<(), Error> {
        for name in sorted_names(dir)? {
            let child = dir.join(OsStr::from_bytes(&name));
            let metadata = lstat(&child)?;
            let path = join(relative, &name);
            self.add(&child, &path, &metadata)?;
            if metadata.is_dir() {
                self.add_children(&child, &path)?;
            }
        }
        Ok(())
    }

    fn diff_children(&mut self, lower: &Path, upper: &Path, relative: &[u8]) -> Result<(), Error> {
        let lower_names = sorted_names(lower)?;
        let upper_names = sorted_names(upper)?;
        let (mut l, mut u) = (0, 0);
        while l < lower_names.len() || u < upper_names.len() {
            let order = match (lower_names.get(l), upper_names.get(u)) {
                (Some(a), Some(b)) => a.cmp(b),
                (Some(_), None) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Greater,
            };
            match order {
                std::cmp::Ordering::Less => {
                    let name = &lower_names[l];
                    let mut whiteout = relative.to_vec();
                    if !whiteout.is_empty() {
                        whiteout.push(b'/');
                    }
                    whiteout.extend_from_slice(b".wh.");
                    whiteout.extend_from_slice(name);
                    self.write_ancestors()?;
                    let mtime = self.builder.options.mtime.unwrap_or(0);
                    self.builder.write_whiteout(&whiteout, mtime)?;
                    l += 1;
                }
                std::cmp::Ordering::Greater => {
                    let name = &upper_names[u];
                    let child = upper.join(OsStr::from_bytes(name));
                    let metadata = lstat(&child)?;
                    let path = join(relative, name);
                    self.write_ancestors()?;
                    self.add(&child, &path, &metadata)?;
                    if metadata.is_dir() {
                        self.add_children(&child, &path)?;
                    }
                    u += 1;
                }
                std::cmp::Ordering::Equal => {
                    let name = &upper_names[u];
                    let lower_child = lower.join(OsStr::from_bytes(name));
                    let upper_child = upper.join(OsStr::from_bytes(name));
                    let lower_meta = lstat(&lower_child)?;
                    let upper_meta = lstat(&upper_child)?;
                    let path = join(relative, name);
                    let changed = self.changed(
                        &path,
                        (&lower_child, &lower_meta),
                        (&upper_child, &upper_meta),
                    )?;
                    if changed {
                        self.write_ancestors()?;
                        self.add(&upper_child, &path, &upper_meta)?;
                    }
                    if upper_meta.is_dir() {
                        if lower_meta.is_dir() {
                            self.ancestors.push(Ancestor {
                                disk: upper_child.clone(),
                                path: path.clone(),
                                metadata: upper_meta,
                                written: changed,
                            });
                            let outcome = self.diff_children(&lower_child, &upper_child, &path);
                            self.ancestors.pop();
                            outcome?;
                        } else {
                            self.add_children(&upper_child, &path)?;
                        }
                    }
                    l += 1;
                    u += 1;
                }
            }
        }
        Ok(())
    }

    /// Writes the entries of the enclosing directories not written yet.
    fn write_ancestors(&mut self) -> Result<(), Error> {
        let mut ancestors = std::mem::take(&mut self.ancestors);
        let mut outcome = Ok(());
        for ancestor in ancestors.iter_mut().filter(|ancestor| !ancestor.written) {
            outcome = self.add(&ancestor.disk, &ancestor.path, &ancestor.metadata);
            if outcome.is_err() {
                break;
            }
            ancestor.written = true;
        }
        self.ancestors = ancestors;
        outcome
    }

    /// Whether `upper` differs from `lower` in anything a layer records.
    fn changed(
        &self,
        path: &[u8],
        (lower_path, lower): (&Path, &Metadata),
        (upper_path, upper): (&Path, &Metadata),
    ) -> Result<bool, Error> {
        let (lower_type, upper_type) = (lower.file_type(), upper.file_type());
        let same_type = lower_type.is_dir() == upper_type.is_dir()
            && lower_type.is_file() == upper_type.is_file()
            && lower_type.is_symlink() == upper_type.is_symlink()
            && lower_type.is_fifo() == upper_type.is_fifo()
            && lower_type.is_char_device() == upper_type.is_char_device()
            && lower_type.is_block_device() == upper_type.is_block_device();
        if !same_type
            || lower.uid() != upper.uid()
            || lower.gid() != upper.gid()
            || lower.mtime() != upper.mtime()
            || (!upper_type.is_symlink() && lower.mode() & 0o7777 != upper.mode() & 0o7777)
        {
            return Ok(true);
        }
        if !upper_type.is_dir() && self.lower_groups.get(path) != self.upper_groups.get(path) {
            return Ok(true);
        }
        if upper_type.is_file() {
            if lower.len() != upper.len() || !same_contents(lower_path, upper_path)? {
                return Ok(true);
            }
        } else if upper_type.is_symlink() {
            if read_link(lower_path)? != read_link(upper_path)? {
                return Ok(true);
            }
        } else if (upper_type.is_char_device() || upper_type.is_block_device())
            && lower.rdev() != upper.rdev()
        {
            return Ok(true);
        }
        if self.builder.options.xattrs && user_xattrs(lower_path)? != user_xattrs(upper_path)? {
            return Ok(true);
        }
        Ok(false)
    }

    /// Writes the entry for the file `disk`, stored as `path`.
    fn add(&mut self, disk: &Path, path: &[u8], metadata: &Metadata) -> Result<(), Error> {
        let file_type = metadata.file_type();
        let meta = Meta {
            mode: metadata.mode(),
            uid: u64::from(metadata.uid()),
            gid: u64::from(metadata.gid()),
            mtime: u64::try_from(metadata.mtime()).unwrap_or(0),
        };
        let xattrs = if self.builder.options.xattrs && !file_type.is_symlink() {
            user_xattrs(disk)?
        } else {
            Vec::new()
        };
        let xattrs: Vec<(Vec<u8>, &[u8])> = xattrs
            .iter()
            .map(|(name, value)| (name.clone(), value.as_slice()))
            .collect();
        if !file_type.is_dir() && metadata.nlink() > 1 {
            let key = (metadata.dev(), metadata.ino());
            if let Some(first) = self.links.get(&key) {
                let first = first.clone();
                return self.builder.write(
                    path,
                    tar::EntryType::Link,
                    meta,
                    &[],
                    Content::Link(&first),
                );
            }
            self.links.insert(key, path.to_vec());
        }
        if file_type.is_dir() {
            self.builder.write(
                path,
                tar::EntryType::Directory,
                meta,
                &xattrs,
                Content::None,
            )
        } else if file_type.is_file() {
            let file = File::open(disk).map_err(|source| Error::Io {
                operation: "open",
                path: disk.to_path_buf(),
                source,
            })?;
            self.builder.write(
                path,
                tar::EntryType::Regular,
                meta,
                &xattrs,
                Content::File(file, metadata.len()),
            )
        } else if file_type.is_symlink() {
            let target = read_link(disk)?;
            self.builder.write(
                path,
                tar::EntryType::Symlink,
                meta,
                &[],
                Content::Link(&target),
            )
        } else if file_type.is_fifo() {
            self.builder
                .write(path, tar::EntryType::Fifo, meta, &xattrs, Content::None)
        } else if file_type.is_char_device() || file_type.is_block_device() {
            let rdev = metadata.rdev();
            let entry_type = if file_type.is_char_device() {
                tar::EntryType::Char
            } else {
                tar::EntryType::Block
            };
            self.builder.write(
                path,
                entry_type,
                meta,
                &xattrs,
                Content::Device(rustix::fs::major(rdev), rustix::fs::minor(rdev)),
            )
        } else {
            // Sockets have no tar representation.
            Ok(())
        }
    }
}

/// The hard-link groups below `root`: for each path sharing its inode with another path of
/// the tree, the sorted list of those paths.
fn link_groups(root: &Path) -> Result<HashMap<Vec<u8>, Vec<Vec<u8>>>, Error> {
    let mut inodes: HashMap<(u64, u64), Vec<Vec<u8>>> = HashMap::new();
    let mut pending = vec![(root.to_path_buf(), Vec::new())];
    while let Some((dir, relative)) = pending.pop() {
        for name in sorted_names(&dir)? {
            let child = dir.join(OsStr::from_bytes(&name));
            let metadata = lstat(&child)?;
            let path = join(&relative, &name);
            if metadata.is_dir() {
                pending.push((child, path));
            } else if metadata.nlink() > 1 {
                inodes
                    .entry((metadata.dev(), metadata.ino()))
                    .or_default()
                    .push(path);
            }
        }
    }
    let mut groups = HashMap::new();
    for mut paths in inodes.into_values().filter(|paths| paths.len() > 1) {
        paths.sort();
        for path in &paths {
            groups.insert(path.clone(), paths.clone());
        }
    }
    Ok(groups)
}

fn join(relative: &[u8], name: &[u8]) -> Vec<u8> {
    let mut path = relative.to_vec();
    if !path.is_empty() {
        path.push(b'/');
    }
    path.extend_from_slice(name);
    path
}

fn sorted_names(dir: &Path) -> Result<Vec<Vec<u8>>, Error> {
    let failed = |source| Error::Io {
        operation: "list directory",
        path: dir.to_path_buf(),
        source,
    };
    let mut names = Vec::new();
    for item in fs::read_dir(dir).map_err(failed)? {
        names.push(item.map_err(failed)?.file_name().as_bytes().to_vec());
    }
    names.sort();
    Ok(names)
}

fn lstat(path: &Path) -> Result<Metadata, Error> {
    fs::symlink_metadata(path).map_err(|source| Error::Io {
        operation: "stat",
        path: path.to_path_buf(),
        source,
    })
}

fn read_link(path: &Path) -> Result<Vec<u8>, Error> {
    fs::read_link(path)
        .map(|target| target.into_os_string().as_bytes().to_vec())
        .map_err(|source| Error::Io {
            operation: "read link",
            path: path.to_path_buf(),
            source,
        })
}

/// Whether two files of equal size hold the same bytes, compared in chunks.
fn same_contents(a: &Path, b: &Path) -> Result<bool, Error> {
    let open = |path: &Path| {
        File::open(path).map_err(|source| Error::Io {
            operation: "open",
            path: path.to_path_buf(),
            source,
        })
    };
    let (mut file_a, mut file_b) = (open(a)?, open(b)?);
    let mut buffer_a = vec![0_u8; 64 * 1024];
    let mut buffer_b = vec![0_u8; 64 * 1024];
    loop {
        let read_a = read_full(&mut file_a, &mut buffer_a, a)?;
        let read_b = read_full(&mut file_b, &mut buffer_b, b)?;
        if buffer_a[..read_a] != buffer_b[..read_b] {
            return Ok(false);
        }
        if read_a == 0 {
            return Ok(true);
        }
    }
}

/// Fills `buffer` as far as the file allows; returns how much was read.
fn read_full(file: &mut File, buffer: &mut [u8], path: &Path) -> Result<usize, Error> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(Error::Io {
                    operation: "read",
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
    }
    Ok(filled)
}

/// Extended attributes as (full name, value) pairs.
type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// The `user.*` extended attributes of `path` (not following symlinks), sorted by name;
/// none where the filesystem has no xattrs.
fn user_xattrs(path: &Path) -> Result<Xattrs, Error> {
    let failed = |errno: Errno| Error::Io {
        operation: "read extended attributes of",
        path: path.to_path_buf(),
        source: io::Error::from(errno),
    };
    let mut names = vec![0_u8; 64 * 1024];
    let length = match rustix::fs::llistxattr(path, &mut names[..]) {
        Ok(length) => length,
        Err(Errno::NOTSUP) => return Ok(Vec::new()),
        Err(errno) => return Err(failed(errno)),
    };
    let mut out = Vec::new();
    for name in names[..length].split(|byte| *byte == 0) {
        if !name.starts_with(b"user.") {
            continue;
        }
        let mut value = vec![0_u8; 64 * 1024];
        let length =
            rustix::fs::lgetxattr(path, OsStr::from_bytes(name), &mut value[..]).map_err(failed)?;
        value.truncate(length);
        out.push((name.to_vec(), value));
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_paths(blob: &LayerBlob) -> Vec<String> {
        let bytes = blob.blob().to_vec().unwrap();
        let decoded = flate2::read::MultiGzDecoder::new(&bytes[..]);
        let mut archive = tar::Archive::new(decoded);
        archive
            .entries()
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                String::from_utf8(entry.path_bytes().into_owned()).unwrap()
            })
            .collect()
    }

    #[test]
    fn entries_are_sorted_parents_first_and_whiteouts_named() {
        let entries = [
            LayerEntry::file("a/b", "x", 0o644),
            LayerEntry::file("a.c", "y", 0o644),
            LayerEntry::dir("/a/", 0o755),
            LayerEntry::whiteout("a/gone"),
            LayerEntry::new("d", EntryKind::Opaque, 0o755),
        ];
        let options = LayerOptions {
            in_memory: true,
            ..LayerOptions::default()
        };
        let blob = layer_from_entries(&entries, &options).unwrap();
        assert_eq!(
            tar_paths(&blob),
            ["a", "a/b", "a/.wh.gone", "a.c", "d/.wh..wh..opq"]
        );
    }

    #[test]
    fn pax_record_lengths_count_their_own_digits() {
        // A record of about 100 bytes: its length's digit count changes the length itself.
        let entries = [LayerEntry::file("f", "", 0o644).with_xattr("user.k", vec![b'v'; 80])];
        let options = LayerOptions {
            in_memory: true,
            ..LayerOptions::default()
        };
        let blob = layer_from_entries(&entries, &options).unwrap();
        let bytes = blob.blob().to_vec().unwrap();
        let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(&bytes[..]));
        let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
        let extensions: Vec<(String, Vec<u8>)> = entry
            .pax_extensions()
            .unwrap()
            .unwrap()
            .map(|extension| {
                let extension = extension.unwrap();
                (
                    extension.key().unwrap().to_owned(),
                    extension.value_bytes().to_vec(),
                )
            })
            .collect();
        assert_eq!(
            extensions,
            vec![("SCHILY.xattr.user.k".to_owned(), vec![b'v'; 80])]
        );
    }

    #[test]
    fn empty_and_climbing_paths_are_refused() {
        let options = LayerOptions {
            in_memory: true,
            ..LayerOptions::default()
        };
        for bad in ["./", "a/../../etc/passwd"] {
            let error = layer_from_entries(&[LayerEntry::dir(bad, 0o755)], &options).unwrap_err();
            assert!(
                matches!(error, Error::InvalidLayerEntry { ref path, .. } if path == bad),
                "{error}"
            );
        }
    }
}
