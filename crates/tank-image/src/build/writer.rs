//! The deterministic tar writer: [`LayerBuilder`] writes entries (with PAX `SCHILY.xattr.*`
//! records, whiteouts and opaque markers) into the hashing and compressing pipeline.

use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::LayerOptions;
use super::blob::{BlobData, LayerBlob};
use super::entry::{EntryKind, LayerEntry, clean_path};
use super::pipeline::{Encoder, Hashing, Pipeline, Sink};
use crate::Error;
use crate::task::IO_BUFFER;

/// Writes a layer entry by entry, in the order given; [`LayerBuilder::finish`] yields the
/// blob. Prefer [`crate::layer_from_entries`], [`crate::layer_from_dir`] and
/// [`crate::layer_from_diff`], which order entries deterministically.
pub struct LayerBuilder {
    tar: Pipeline,
    pub(super) options: LayerOptions,
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
            (Sink::File(BufWriter::with_capacity(IO_BUFFER, file)), place)
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

    /// Writes a whiteout (or opaque marker) entry named `path`.
    pub(super) fn write_whiteout(&mut self, path: &[u8], mtime: u64) -> Result<(), Error> {
        let meta = Meta {
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime,
        };
        self.write(path, tar::EntryType::Regular, meta, &[], Content::None)
    }

    /// Writes one tar entry (with a PAX header first when there are xattrs).
    pub(super) fn write(
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
                    inner: BufReader::with_capacity(IO_BUFFER, file.take(size)),
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

/// The metadata of one tar entry before the options' overrides.
#[derive(Clone, Copy)]
pub(super) struct Meta {
    pub(super) mode: u32,
    pub(super) uid: u64,
    pub(super) gid: u64,
    pub(super) mtime: u64,
}

/// What follows a tar header.
pub(super) enum Content<'a> {
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
