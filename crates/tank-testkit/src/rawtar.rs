//! Tar bytes built by hand, field by field, for the cases no tar library writes: headers
//! declaring huge metadata records without their data, every GNU sparse format (old GNU
//! with extension blocks, PAX 0.0, 0.1 and 1.0), v7 and star headers, base-256 numbers,
//! signed checksums.
//!
//! ```
//! use tank_testkit::{RawHeader, end_of_archive};
//! let mut layer = RawHeader::file("hello", 5).block().to_vec();
//! layer.extend_from_slice(&tank_testkit::padded(b"hello"));
//! layer.extend_from_slice(&end_of_archive());
//! assert_eq!(layer.len(), 512 * 4);
//! ```

/// A tar block.
pub const RAW_BLOCK: usize = 512;

/// Which magic a [`RawHeader`] carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Magic {
    /// No magic at all (v7): no prefix field, no device numbers.
    V7,
    /// POSIX ustar (`ustar\0` `00`), with a prefix field.
    Ustar,
    /// GNU (`ustar  \0`), no prefix field.
    Gnu,
}

/// One header block, field by field. Numbers are written in octal unless
/// [`RawHeader::base256_size`] is set.
#[derive(Clone, Debug)]
pub struct RawHeader {
    /// The name field (at most 100 bytes).
    pub name: Vec<u8>,
    /// The ustar prefix field (at most 155 bytes); written whatever the magic, so a test
    /// can check that only ustar headers read it.
    pub prefix: Vec<u8>,
    /// The link name field.
    pub link: Vec<u8>,
    /// The type flag.
    pub typeflag: u8,
    /// Mode bits.
    pub mode: u32,
    /// Size field.
    pub size: u64,
    /// Write the size in base-256 (GNU) instead of octal.
    pub base256_size: bool,
    /// Modification time, seconds.
    pub mtime: u64,
    /// The magic.
    pub magic: Magic,
    /// Old-GNU sparse slots `(offset, length)` in the header (at most 4).
    pub sparse: Vec<(u64, u64)>,
    /// Old-GNU: extension blocks follow.
    pub is_extended: bool,
    /// Old-GNU: the real size of a sparse file.
    pub real_size: u64,
    /// Compute the checksum over signed bytes, as some old tars did.
    pub signed_checksum: bool,
}

impl RawHeader {
    /// A ustar header of type `typeflag`, mode 0644, mtime 0.
    pub fn new(name: impl AsRef<[u8]>, typeflag: u8, size: u64) -> RawHeader {
        RawHeader {
            name: name.as_ref().to_vec(),
            prefix: Vec::new(),
            link: Vec::new(),
            typeflag,
            mode: 0o644,
            size,
            base256_size: false,
            mtime: 0,
            magic: Magic::Ustar,
            sparse: Vec::new(),
            is_extended: false,
            real_size: 0,
            signed_checksum: false,
        }
    }

    /// A regular file header (`0`) of `size` bytes.
    pub fn file(name: impl AsRef<[u8]>, size: u64) -> RawHeader {
        RawHeader::new(name, b'0', size)
    }

    /// The 512 bytes, checksum included.
    pub fn block(&self) -> [u8; RAW_BLOCK] {
        let mut block = [0_u8; RAW_BLOCK];
        put(&mut block[0..100], &self.name);
        octal(&mut block[100..108], u64::from(self.mode));
        octal(&mut block[108..116], 0);
        octal(&mut block[116..124], 0);
        if self.base256_size {
            block[124] = 0x80;
            block[128..136].copy_from_slice(&self.size.to_be_bytes());
        } else {
            octal(&mut block[124..136], self.size);
        }
        octal(&mut block[136..148], self.mtime);
        block[156] = self.typeflag;
        put(&mut block[157..257], &self.link);
        match self.magic {
            Magic::V7 => {}
            Magic::Ustar => {
                block[257..263].copy_from_slice(b"ustar\0");
                block[263..265].copy_from_slice(b"00");
            }
            Magic::Gnu => block[257..265].copy_from_slice(b"ustar  \0"),
        }
        put(&mut block[345..500], &self.prefix);
        assert!(self.sparse.len() <= 4, "4 sparse slots in a header");
        for (slot, (offset, length)) in self.sparse.iter().enumerate() {
            let at = 386 + slot * 24;
            octal(&mut block[at..at + 12], *offset);
            octal(&mut block[at + 12..at + 24], *length);
        }
        block[482] = u8::from(self.is_extended);
        if self.typeflag == b'S' {
            octal(&mut block[483..495], self.real_size);
        }
        block[148..156].fill(b' ');
        let sum: i64 = if self.signed_checksum {
            block.iter().map(|byte| i64::from(*byte as i8)).sum()
        } else {
            block.iter().map(|byte| i64::from(*byte)).sum()
        };
        let text = format!("{:06o}\0 ", sum.rem_euclid(1 << 18));
        block[148..156].copy_from_slice(text.as_bytes());
        block
    }
}

fn put(field: &mut [u8], value: &[u8]) {
    assert!(value.len() <= field.len(), "value too long for its field");
    field[..value.len()].copy_from_slice(value);
}

/// Octal, NUL-terminated; base-256 (as GNU tar writes) when the value does not fit.
fn octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let text = format!("{value:0width$o}");
    if text.len() <= width {
        field[..width].copy_from_slice(text.as_bytes());
        field[width] = 0;
    } else {
        assert!(field.len() > 8, "{value} does not fit a {width}-byte field");
        field.fill(0);
        field[0] = 0x80;
        let start = field.len() - 8;
        field[start..].copy_from_slice(&value.to_be_bytes());
    }
}

/// `data` followed by zeros up to a whole number of blocks.
pub fn padded(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    out.resize(data.len().div_ceil(RAW_BLOCK) * RAW_BLOCK, 0);
    out
}

/// The end-of-archive marker: two zero blocks.
pub fn end_of_archive() -> Vec<u8> {
    vec![0; 2 * RAW_BLOCK]
}

/// One PAX record, `"<length> <key>=<value>\n"`.
pub fn pax_record(key: &str, value: impl AsRef<[u8]>) -> Vec<u8> {
    let value = value.as_ref();
    let rest = key.len() + value.len() + 3;
    let mut length = rest + rest.to_string().len();
    if length.to_string().len() != rest.to_string().len() {
        length = rest + length.to_string().len();
    }
    let mut out = format!("{length} {key}=").into_bytes();
    out.extend_from_slice(value);
    out.push(b'\n');
    out
}

/// A PAX extended header (`x`) carrying `records`, with its data, padded.
pub fn pax_header(records: &[Vec<u8>]) -> Vec<u8> {
    let data: Vec<u8> = records.concat();
    let mut out = RawHeader::new("PaxHeader", b'x', data.len() as u64)
        .block()
        .to_vec();
    out.extend_from_slice(&padded(&data));
    out
}

/// A sparse file's real size and data segments `(offset, bytes)`, in order.
#[derive(Clone, Debug)]
pub struct SparseFile {
    /// The file's real (expanded) size.
    pub real_size: u64,
    /// The data segments.
    pub segments: Vec<(u64, Vec<u8>)>,
}

impl SparseFile {
    fn stored(&self) -> Vec<u8> {
        self.segments
            .iter()
            .flat_map(|(_, data)| data.clone())
            .collect()
    }

    fn map(&self) -> Vec<(u64, u64)> {
        self.segments
            .iter()
            .map(|(offset, data)| (*offset, data.len() as u64))
            .collect()
    }

    /// An old-GNU sparse entry (type `S`) at `name`, with as many extension blocks as the
    /// map needs (4 slots in the header, 21 per extension block).
    pub fn old_gnu(&self, name: &str) -> Vec<u8> {
        let map = self.map();
        let stored = self.stored();
        let mut header = RawHeader::new(name, b'S', stored.len() as u64);
        header.magic = Magic::Gnu;
        header.real_size = self.real_size;
        header.sparse = map.iter().take(4).copied().collect();
        let rest: Vec<(u64, u64)> = map.iter().skip(4).copied().collect();
        header.is_extended = !rest.is_empty();
        let mut out = header.block().to_vec();
        let chunks: Vec<&[(u64, u64)]> = rest.chunks(21).collect();
        for (index, chunk) in chunks.iter().enumerate() {
            let mut block = [0_u8; RAW_BLOCK];
            for (slot, (offset, length)) in chunk.iter().enumerate() {
                octal(&mut block[slot * 24..slot * 24 + 12], *offset);
                octal(&mut block[slot * 24 + 12..slot * 24 + 24], *length);
            }
            block[504] = u8::from(index + 1 < chunks.len());
            out.extend_from_slice(&block);
        }
        out.extend_from_slice(&padded(&stored));
        out
    }

    /// PAX sparse 0.0: repeated `GNU.sparse.offset` / `GNU.sparse.numbytes`, the real name
    /// in the header.
    pub fn pax_0_0(&self, name: &str) -> Vec<u8> {
        let mut records = vec![
            pax_record("GNU.sparse.size", self.real_size.to_string()),
            pax_record("GNU.sparse.numblocks", self.segments.len().to_string()),
        ];
        for (offset, length) in self.map() {
            records.push(pax_record("GNU.sparse.offset", offset.to_string()));
            records.push(pax_record("GNU.sparse.numbytes", length.to_string()));
        }
        self.pax_entry(&records, name, Vec::new())
    }

    /// PAX sparse 0.1: `GNU.sparse.map` and `GNU.sparse.name`, a made-up header name.
    pub fn pax_0_1(&self, name: &str) -> Vec<u8> {
        let map: Vec<String> = self
            .map()
            .iter()
            .flat_map(|(offset, length)| [offset.to_string(), length.to_string()])
            .collect();
        let records = vec![
            pax_record("GNU.sparse.size", self.real_size.to_string()),
            pax_record("GNU.sparse.numblocks", self.segments.len().to_string()),
            pax_record("GNU.sparse.name", name),
            pax_record("GNU.sparse.map", map.join(",")),
        ];
        self.pax_entry(&records, "GNUSparseFile.0/made-up", Vec::new())
    }

    /// PAX sparse 1.0: `GNU.sparse.major/minor/name/realsize`, the map at the start of the
    /// data (padded to a block), a made-up header name.
    pub fn pax_1_0(&self, name: &str) -> Vec<u8> {
        let records = vec![
            pax_record("GNU.sparse.major", "1"),
            pax_record("GNU.sparse.minor", "0"),
            pax_record("GNU.sparse.name", name),
            pax_record("GNU.sparse.realsize", self.real_size.to_string()),
        ];
        let mut map = format!("{}\n", self.segments.len());
        for (offset, length) in self.map() {
            map.push_str(&format!("{offset}\n{length}\n"));
        }
        self.pax_entry(&records, "GNUSparseFile.0/made-up", padded(map.as_bytes()))
    }

    fn pax_entry(&self, records: &[Vec<u8>], header_name: &str, map: Vec<u8>) -> Vec<u8> {
        let mut out = pax_header(records);
        let mut data = map;
        data.extend_from_slice(&self.stored());
        out.extend_from_slice(&RawHeader::file(header_name, data.len() as u64).block());
        out.extend_from_slice(&padded(&data));
        out
    }
}
