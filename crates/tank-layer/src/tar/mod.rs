//! tank-layer's own streaming tar reader.
//!
//! Why not the `tar` crate: it reads GNU long-name and long-link records (`L`, `K`) and
//! PAX headers (`x`, `g`) wholly into memory with no bound (a layer declaring an 8 GiB
//! long name makes it allocate 8 GiB), fills the holes of sparse files with zeros in
//! memory (a 104-byte layer can describe a petabyte of zeros that must all be produced),
//! and reads no PAX sparse format. Its entry iterator parses those records itself before
//! handing out an entry, so none of this can be capped or changed from outside; the
//! only fix is to read the headers ourselves. (The `tar` crate stays a dev-dependency,
//! to build test layers.)
//!
//! This reader knows v7, ustar (with its prefix field), star, GNU and PAX headers,
//! octal and base-256 numbers, GNU `L`/`K` records and every GNU sparse format (old GNU
//! type `S` with extension blocks, PAX 0.0, 0.1 and 1.0). Every metadata record is capped
//! at [`MAX_METADATA_RECORD`](crate::MAX_METADATA_RECORD) and refused before anything is
//! read into memory; sparse maps are capped at
//! [`MAX_SPARSE_SEGMENTS`](crate::MAX_SPARSE_SEGMENTS) segments. A sparse file comes out
//! as its map and the stored bytes of its segments: holes are never produced.
//!
//! As Go's `archive/tar` (used by containerd and Docker), header-only entry types (links,
//! devices, directories, fifos) have no data whatever their size field says, and a stream
//! that ends cleanly between entries, without the end-of-archive marker, is accepted (and
//! reported); a stream cut inside a header or an entry's data is an error.

mod header;
mod pax;
mod sparse;

use std::io::{self, Read};

pub(crate) use sparse::SparseMap;

use crate::{Error, MAX_METADATA_RECORD, printable};
use header::{BLOCK, Block};

/// What an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Regular,
    Hardlink,
    Symlink,
    CharDevice,
    BlockDevice,
    Directory,
    Fifo,
    /// A PAX global header (`g`): its records are not applied.
    GlobalHeader,
    /// An entry type this crate does not know; skipped.
    Unknown,
}

/// One entry, with every PAX and GNU record that came before it applied.
pub(crate) struct Entry {
    /// Offset of the entry's own header (after any `L`, `K` or `x` records).
    pub(crate) offset: u64,
    pub(crate) kind: Kind,
    pub(crate) path: Vec<u8>,
    pub(crate) link: Vec<u8>,
    /// The path as error messages show it (control characters escaped).
    pub(crate) display: String,
    /// `None` when the header's mode field is unreadable.
    pub(crate) mode: Option<u32>,
    pub(crate) uid: Option<u64>,
    pub(crate) gid: Option<u64>,
    /// Seconds and nanoseconds.
    pub(crate) mtime: Option<(i64, u32)>,
    pub(crate) dev_major: u64,
    pub(crate) dev_minor: u64,
    /// For a sparse file: its map; the data then holds the segments' bytes in order.
    pub(crate) sparse: Option<SparseMap>,
    /// `SCHILY.xattr.*` records: name and value.
    pub(crate) xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Reads entries one by one from a tar stream; the data of the current entry is read with
/// [`Reader::read_data`].
pub(crate) struct Reader<R> {
    inner: R,
    offset: u64,
    /// Data bytes of the current entry not read yet, and the padding after them.
    remaining: u64,
    padding: u64,
    /// Header offset and display name of the current entry, for errors while reading data.
    current: Option<(u64, String)>,
    last_entry: Option<String>,
    done: bool,
    /// The stream ended without (all of) the end-of-archive marker.
    pub(crate) end_of_archive_missing: bool,
}

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

fn padding_of(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

impl<R: Read> Reader<R> {
    pub(crate) fn new(inner: R) -> Reader<R> {
        Reader {
            inner,
            offset: 0,
            remaining: 0,
            padding: 0,
            current: None,
            last_entry: None,
            done: false,
            end_of_archive_missing: false,
        }
    }

    fn stream_error(&self, offset: u64, source: io::Error) -> Error {
        Error::Stream {
            offset,
            after_entry: self.last_entry.clone(),
            source,
        }
    }

    /// Reads until `buf` is full or the stream ends; the number of bytes read.
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => {
                    filled += n;
                    self.offset += n as u64;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(filled)
    }

    /// The next block; `None` when the stream ends exactly here.
    fn read_block(&mut self) -> Result<Option<Block>, Error> {
        let start = self.offset;
        let mut block = [0_u8; BLOCK];
        match self.fill(&mut block) {
            Ok(0) => Ok(None),
            Ok(BLOCK) => Ok(Some(block)),
            Ok(_) => Err(self.stream_error(
                start,
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the stream ends inside a header",
                ),
            )),
            Err(source) => Err(self.stream_error(start, source)),
        }
    }

    /// Discards `count` bytes that must be there.
    fn discard(&mut self, mut count: u64, at: u64) -> Result<(), Error> {
        let mut sink = [0_u8; 8192];
        while count > 0 {
            let want = usize::try_from(count).unwrap_or(usize::MAX).min(sink.len());
            match self.fill(&mut sink[..want]) {
                Ok(n) if n == want => count -= n as u64,
                Ok(_) => {
                    return Err(self.stream_error(
                        at,
                        io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the stream ends inside an entry",
                        ),
                    ));
                }
                Err(source) => return Err(self.stream_error(at, source)),
            }
        }
        Ok(())
    }

    /// Skips what is left of the current entry.
    fn skip_rest(&mut self) -> Result<(), Error> {
        let at = self
            .current
            .as_ref()
            .map_or(self.offset, |(offset, _)| *offset);
        let rest = self.remaining.saturating_add(self.padding);
        self.remaining = 0;
        self.padding = 0;
        self.discard(rest, at)
    }

    /// Reads the current entry's data; 0 at its end.
    pub(crate) fn read_data(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let (at, display) = self.current.clone().unwrap_or((self.offset, String::new()));
        loop {
            match self.inner.read(&mut buf[..want]) {
                Ok(0) => {
                    return Err(Error::Stream {
                        offset: at,
                        after_entry: Some(display),
                        source: io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the stream ends inside the entry's data",
                        ),
                    });
                }
                Ok(n) => {
                    self.offset += n as u64;
                    self.remaining -= n as u64;
                    return Ok(n);
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(Error::Stream {
                        offset: at,
                        after_entry: Some(display),
                        source,
                    });
                }
            }
        }
    }

    /// Reads a metadata record's data (at most [`MAX_METADATA_RECORD`] bytes, refused
    /// before reading anything when it declares more) and its padding.
    fn read_record(&mut self, size: u64, kind: &'static str, at: u64) -> Result<Vec<u8>, Error> {
        if size > MAX_METADATA_RECORD {
            return Err(Error::RecordTooLarge {
                kind,
                offset: at,
                size,
                max: MAX_METADATA_RECORD,
            });
        }
        let mut data = Vec::new();
        let read = (&mut self.inner).take(size).read_to_end(&mut data);
        self.offset += data.len() as u64;
        match read {
            Ok(_) if data.len() as u64 == size => {}
            Ok(_) => {
                return Err(self.stream_error(
                    at,
                    io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("the stream ends inside a {kind} record"),
                    ),
                ));
            }
            Err(source) => return Err(self.stream_error(at, source)),
        }
        self.discard(padding_of(size), at)?;
        Ok(data)
    }

    /// After the first zero block: only zeros may follow, to the end of the stream.
    fn read_trailer(&mut self) -> Result<(), Error> {
        let after_first = self.offset;
        let mut buffer = [0_u8; 8192];
        loop {
            let start = self.offset;
            let n = match self.fill(&mut buffer) {
                Ok(n) => n,
                Err(source) => return Err(self.stream_error(start, source)),
            };
            if let Some(position) = buffer[..n].iter().position(|byte| *byte != 0) {
                return Err(Error::TrailingGarbage {
                    offset: start + position as u64,
                });
            }
            if n < buffer.len() {
                break;
            }
        }
        if self.offset - after_first < BLOCK as u64 {
            self.end_of_archive_missing = true;
        }
        Ok(())
    }

    /// Reads headers up to the next entry; `None` at the end of the archive.
    pub(crate) fn next_entry(&mut self) -> Result<Option<Entry>, Error> {
        if self.done {
            return Ok(None);
        }
        self.skip_rest()?;
        self.current = None;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut pax: Option<pax::Pax> = None;
        loop {
            let at = self.offset;
            let Some(block) = self.read_block()? else {
                self.done = true;
                self.end_of_archive_missing = true;
                return Ok(None);
            };
            if header::is_zero(&block) {
                self.done = true;
                self.read_trailer()?;
                return Ok(None);
            }
            if !header::checksum_ok(&block) {
                return Err(self.stream_error(at, invalid("header checksum mismatch")));
            }
            let fields = header::fields(&block);
            let size = fields
                .size
                .map_err(|what| self.stream_error(at, invalid(format!("size field: {what}"))))?;
            match fields.typeflag {
                b'L' => {
                    let data = self.read_record(size, "GNU long name (L)", at)?;
                    long_name = Some(header::c_str(&data).to_vec());
                }
                b'K' => {
                    let data = self.read_record(size, "GNU long link (K)", at)?;
                    long_link = Some(header::c_str(&data).to_vec());
                }
                b'x' => {
                    let data = self.read_record(size, "PAX extended header (x)", at)?;
                    pax = Some(pax::parse(&data).map_err(|error| match error {
                        pax::PaxError::Malformed(what) => self.stream_error(at, invalid(what)),
                        pax::PaxError::Limit { limit, max } => Error::LimitExceeded {
                            limit,
                            max,
                            offset: at,
                        },
                    })?);
                }
                b'g' => {
                    if size > MAX_METADATA_RECORD {
                        return Err(Error::RecordTooLarge {
                            kind: "PAX global header (g)",
                            offset: at,
                            size,
                            max: MAX_METADATA_RECORD,
                        });
                    }
                    let entry = self.entry(fields, &block, at, size, None, None, None)?;
                    return Ok(Some(entry));
                }
                _ => {
                    let entry = self.entry(fields, &block, at, size, long_name, long_link, pax)?;
                    return Ok(Some(entry));
                }
            }
        }
    }

    /// Builds the entry of header `block` at `at`, reading its sparse map if it has one,
    /// and makes its data current.
    #[allow(
        clippy::too_many_arguments,
        reason = "the parts of one header record, read apart; a struct would only rename them"
    )]
    fn entry(
        &mut self,
        fields: header::Fields,
        block: &Block,
        at: u64,
        header_size: u64,
        long_name: Option<Vec<u8>>,
        long_link: Option<Vec<u8>>,
        pax: Option<pax::Pax>,
    ) -> Result<Entry, Error> {
        let pax = pax.unwrap_or_default();
        let mut path = pax.path.or(long_name).unwrap_or(fields.name);
        let link = pax.linkpath.or(long_link).unwrap_or(fields.link);
        let size = pax.size.unwrap_or(header_size);
        let kind = match fields.typeflag {
            0 if path.ends_with(b"/") => Kind::Directory,
            0 | b'0' | b'7' | b'S' => Kind::Regular,
            b'1' => Kind::Hardlink,
            b'2' => Kind::Symlink,
            b'3' => Kind::CharDevice,
            b'4' => Kind::BlockDevice,
            b'5' => Kind::Directory,
            b'6' => Kind::Fifo,
            b'g' => Kind::GlobalHeader,
            _ => Kind::Unknown,
        };
        let header_only = matches!(
            kind,
            Kind::Hardlink
                | Kind::Symlink
                | Kind::CharDevice
                | Kind::BlockDevice
                | Kind::Directory
                | Kind::Fifo
        );
        let mut sparse_keys = pax.sparse;
        if kind == Kind::Regular && sparse_keys.any {
            if let Some(name) = sparse_keys.name.take() {
                path = name;
            }
        }
        let display = printable(&path);
        self.remaining = if header_only { 0 } else { size };
        self.padding = padding_of(self.remaining);
        self.current = Some((at, display.clone()));
        self.last_entry = Some(display.clone());
        let sparse_error = |reason: String| Error::SparseMap {
            entry: display.clone(),
            offset: at,
            reason,
        };
        let mut sparse = None;
        if fields.typeflag == b'S' {
            let (mut map, mut extended) = sparse::old_gnu_header(block).map_err(&sparse_error)?;
            while extended {
                let extension_at = self.offset;
                let Some(extension) = self.read_block()? else {
                    return Err(self.stream_error(
                        extension_at,
                        io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the stream ends before a sparse extension header",
                        ),
                    ));
                };
                extended = sparse::old_gnu_extension(&extension, &mut map.segments)
                    .map_err(&sparse_error)?;
            }
            sparse = Some(map);
        } else if kind == Kind::Regular && sparse_keys.any {
            let real_size = sparse_keys.real_size.ok_or_else(|| {
                sparse_error("no GNU.sparse.realsize or GNU.sparse.size record".to_owned())
            })?;
            let segments = match (sparse_keys.major, sparse_keys.minor) {
                (Some(1), None | Some(0)) => self.data_map().map_err(&sparse_error)?,
                (None | Some(0), None | Some(0) | Some(1)) => match &sparse_keys.map {
                    Some(text) => sparse::parse_map_text(text).map_err(&sparse_error)?,
                    None => std::mem::take(&mut sparse_keys.pairs),
                },
                (major, minor) => {
                    return Err(sparse_error(format!(
                        "unknown GNU sparse format {}.{}",
                        major.unwrap_or(0),
                        minor.unwrap_or(0)
                    )));
                }
            };
            sparse = Some(SparseMap {
                real_size,
                segments,
            });
        }
        if let Some(map) = &sparse {
            sparse::validate(map, self.remaining).map_err(&sparse_error)?;
        }
        Ok(Entry {
            offset: at,
            kind,
            path,
            link,
            display,
            mode: fields.mode,
            uid: pax.uid.or(fields.uid),
            gid: pax.gid.or(fields.gid),
            mtime: pax.mtime.or(fields.mtime.map(|seconds| (seconds, 0))),
            dev_major: fields.dev_major.unwrap_or(0),
            dev_minor: fields.dev_minor.unwrap_or(0),
            sparse,
            xattrs: pax.xattrs,
        })
    }

    /// PAX 1.0: the map at the start of the data, in whole blocks, which are taken off the
    /// entry's data.
    fn data_map(&mut self) -> Result<Vec<(u64, u64)>, String> {
        let mut parser = sparse::MapParser::default();
        let mut block = [0_u8; BLOCK];
        loop {
            if self.remaining < BLOCK as u64 {
                return Err("the sparse map runs past the entry's data".to_owned());
            }
            let mut filled = 0;
            while filled < BLOCK {
                match self.read_data(&mut block[filled..]) {
                    Ok(0) | Err(_) => {
                        return Err("the stream ends inside the sparse map".to_owned());
                    }
                    Ok(n) => filled += n,
                }
            }
            if parser.feed(&block)? {
                return Ok(parser.segments);
            }
        }
    }
}
