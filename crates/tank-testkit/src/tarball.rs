//! Deterministic tar layers: files, directories, links, whiteouts and odd entries, written
//! byte for byte as asked (paths are not cleaned, so hostile entries can be built too).

use std::io::Write as _;

use tar::{EntryType, Header};

const BLOCK: usize = 512;
const NAME_FIELD: usize = 100;

/// How a layer's tar stream is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Compression {
    /// A plain tar stream.
    None,
    /// gzip, deterministic (mtime 0, OS "unknown").
    Gzip,
    /// zstd at level 3, one frame, no dictionary: deterministic for a given zstd version.
    Zstd,
}

impl Compression {
    /// Compresses `tar` with this compression.
    pub fn apply(self, tar: &[u8]) -> Vec<u8> {
        match self {
            Compression::None => tar.to_vec(),
            Compression::Gzip => gzip(tar),
            Compression::Zstd => zstd_compress(tar),
        }
    }
}

/// gzip-compresses `bytes` deterministically: the same input always gives the same output.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), flate2::Compression::default());
    encoder
        .write_all(bytes)
        .expect("writing into an in-memory gzip encoder cannot fail");
    encoder
        .finish()
        .expect("finishing an in-memory gzip encoder cannot fail")
}

/// zstd-compresses `bytes` (level 3, checksum off, content size recorded): the same input
/// always gives the same output with the same zstd library.
pub fn zstd_compress(bytes: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(bytes, 3).expect("compressing an in-memory buffer with zstd cannot fail")
}

/// What a tar entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryKind {
    /// A regular file with this content.
    File(Vec<u8>),
    /// A directory.
    Dir,
    /// A symbolic link to this target, stored verbatim.
    Symlink(String),
    /// A hard link to this earlier path, stored verbatim.
    Hardlink(String),
    /// A character device.
    CharDevice {
        /// Device major number.
        major: u32,
        /// Device minor number.
        minor: u32,
    },
    /// A block device.
    BlockDevice {
        /// Device major number.
        major: u32,
        /// Device minor number.
        minor: u32,
    },
    /// A named pipe.
    Fifo,
    /// A GNU sparse file (type `S`, old GNU format): `size` bytes long, zeros except for the
    /// `(offset, data)` chunks, which must be in order and not overlap. Every chunk but the
    /// last must be a multiple of 512 bytes long (GNU tar stores whole blocks), and at most
    /// 4 chunks fit the header (no extension headers are written).
    Sparse {
        /// The file's apparent size.
        size: u64,
        /// The data chunks, by offset.
        chunks: Vec<(u64, Vec<u8>)>,
    },
}

/// How names longer than the 100-byte header field are stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LongNames {
    /// PAX `path` / `linkpath` records (the default).
    #[default]
    Pax,
    /// GNU `././@LongLink` entries of type `L` (path) and `K` (link target).
    Gnu,
}

/// One tar entry: a path, a kind and metadata. Owner 0:0 and mtime 0 unless set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TarEntry {
    path: Vec<u8>,
    kind: EntryKind,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    xattrs: Vec<(String, Vec<u8>)>,
    long_names: LongNames,
}

impl TarEntry {
    /// An entry of any kind with `mode`.
    pub fn new(path: impl Into<String>, kind: EntryKind, mode: u32) -> TarEntry {
        TarEntry::new_raw(path.into().into_bytes(), kind, mode)
    }

    /// An entry whose path is any bytes, such as a Latin-1 name that is not UTF-8.
    pub fn new_raw(path: impl Into<Vec<u8>>, kind: EntryKind, mode: u32) -> TarEntry {
        TarEntry {
            path: path.into(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime: 0,
            xattrs: Vec::new(),
            long_names: LongNames::Pax,
        }
    }

    /// A regular file, mode 0644.
    pub fn file(path: impl Into<String>, content: impl AsRef<[u8]>) -> TarEntry {
        TarEntry::new(path, EntryKind::File(content.as_ref().to_vec()), 0o644)
    }

    /// A directory, mode 0755; the path is stored as given (add a trailing `/` if wanted).
    pub fn dir(path: impl Into<String>) -> TarEntry {
        TarEntry::new(path, EntryKind::Dir, 0o755)
    }

    /// A symbolic link, mode 0777.
    pub fn symlink(path: impl Into<String>, target: impl Into<String>) -> TarEntry {
        TarEntry::new(path, EntryKind::Symlink(target.into()), 0o777)
    }

    /// A hard link to an earlier entry, mode 0644.
    pub fn hardlink(path: impl Into<String>, target: impl Into<String>) -> TarEntry {
        TarEntry::new(path, EntryKind::Hardlink(target.into()), 0o644)
    }

    /// Sets the permission bits, including setuid, setgid and sticky.
    pub fn mode(mut self, mode: u32) -> TarEntry {
        self.mode = mode;
        self
    }

    /// Sets the numeric owner.
    pub fn owner(mut self, uid: u64, gid: u64) -> TarEntry {
        self.uid = uid;
        self.gid = gid;
        self
    }

    /// Sets the modification time, in seconds since the epoch.
    pub fn mtime(mut self, mtime: u64) -> TarEntry {
        self.mtime = mtime;
        self
    }

    /// Adds an extended attribute, stored as a PAX `SCHILY.xattr.<name>` record.
    pub fn xattr(mut self, name: impl Into<String>, value: impl AsRef<[u8]>) -> TarEntry {
        self.xattrs.push((name.into(), value.as_ref().to_vec()));
        self
    }

    /// A GNU sparse file (see [`EntryKind::Sparse`]), mode 0644. Building a tar with more
    /// than 4 chunks panics (extension headers are not written).
    pub fn sparse(path: impl Into<String>, size: u64, chunks: Vec<(u64, Vec<u8>)>) -> TarEntry {
        TarEntry::new(path, EntryKind::Sparse { size, chunks }, 0o644)
    }

    /// Chooses how a path or link target longer than 100 bytes is stored.
    pub fn long_names(mut self, long_names: LongNames) -> TarEntry {
        self.long_names = long_names;
        self
    }

    /// The path as stored.
    pub fn path(&self) -> &[u8] {
        &self.path
    }

    /// The entry's kind.
    pub fn kind(&self) -> &EntryKind {
        &self.kind
    }

    fn write_to(&self, out: &mut Vec<u8>) {
        let link_target = match &self.kind {
            EntryKind::Symlink(target) | EntryKind::Hardlink(target) => Some(target.as_bytes()),
            _ => None,
        };
        let long_path = self.path.len() > NAME_FIELD;
        let long_target = link_target.is_some_and(|target| target.len() > NAME_FIELD);
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        match self.long_names {
            LongNames::Pax => {
                if long_path {
                    pax.push(("path".to_owned(), self.path.clone()));
                }
                if let Some(target) = link_target.filter(|_| long_target) {
                    pax.push(("linkpath".to_owned(), target.to_vec()));
                }
            }
            LongNames::Gnu => {
                if let Some(target) = link_target.filter(|_| long_target) {
                    write_gnu_long(out, EntryType::GNULongLink, target);
                }
                if long_path {
                    write_gnu_long(out, EntryType::GNULongName, &self.path);
                }
            }
        }
        for (name, value) in &self.xattrs {
            pax.push((format!("SCHILY.xattr.{name}"), value.clone()));
        }
        if !pax.is_empty() {
            let records = pax_records(&pax);
            let mut header = base_header(EntryType::XHeader, 0o644, 0, 0, self.mtime);
            set_bytes(&mut header.as_old_mut().name, b"PaxHeader");
            header.set_size(records.len() as u64);
            write_entry(out, &mut header, &records);
        }

        let sparse_data;
        let (entry_type, content): (EntryType, &[u8]) = match &self.kind {
            EntryKind::File(content) => (EntryType::Regular, content),
            EntryKind::Dir => (EntryType::Directory, &[]),
            EntryKind::Symlink(_) => (EntryType::Symlink, &[]),
            EntryKind::Hardlink(_) => (EntryType::Link, &[]),
            EntryKind::CharDevice { .. } => (EntryType::Char, &[]),
            EntryKind::BlockDevice { .. } => (EntryType::Block, &[]),
            EntryKind::Fifo => (EntryType::Fifo, &[]),
            EntryKind::Sparse { chunks, .. } => {
                sparse_data = chunks
                    .iter()
                    .flat_map(|(_, data)| data.iter().copied())
                    .collect::<Vec<u8>>();
                (EntryType::GNUSparse, &sparse_data)
            }
        };
        let mut header = if let EntryKind::Sparse { .. } = self.kind {
            let mut header = Header::new_gnu();
            header.set_entry_type(entry_type);
            header.set_mode(self.mode);
            header.set_uid(self.uid);
            header.set_gid(self.gid);
            header.set_mtime(self.mtime);
            header
        } else {
            base_header(entry_type, self.mode, self.uid, self.gid, self.mtime)
        };
        set_bytes(&mut header.as_old_mut().name, &self.path);
        if let Some(target) = link_target {
            set_bytes(&mut header.as_old_mut().linkname, target);
        }
        if let EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor } =
            &self.kind
        {
            header
                .set_device_major(*major)
                .expect("ustar headers have a device major field");
            header
                .set_device_minor(*minor)
                .expect("ustar headers have a device minor field");
        }
        header.set_size(content.len() as u64);
        if let EntryKind::Sparse { size, chunks } = &self.kind {
            assert!(
                chunks.len() <= 4,
                "at most 4 sparse chunks fit a GNU header"
            );
            let gnu = header
                .as_gnu_mut()
                .expect("sparse entries use a GNU header");
            for (slot, (offset, data)) in gnu.sparse.iter_mut().zip(chunks) {
                slot.set_offset(*offset);
                slot.set_length(data.len() as u64);
            }
            gnu.set_real_size(*size);
        }
        write_entry(out, &mut header, content);
    }
}

/// A GNU `././@LongLink` entry carrying a long path (`L`) or link target (`K`), NUL-ended.
fn write_gnu_long(out: &mut Vec<u8>, entry_type: EntryType, value: &[u8]) {
    let mut header = Header::new_gnu();
    header.set_entry_type(entry_type);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    set_bytes(&mut header.as_old_mut().name, b"././@LongLink");
    let mut content = value.to_vec();
    content.push(0);
    header.set_size(content.len() as u64);
    write_entry(out, &mut header, &content);
}

fn base_header(entry_type: EntryType, mode: u32, uid: u64, gid: u64, mtime: u64) -> Header {
    let mut header = Header::new_ustar();
    header.set_entry_type(entry_type);
    header.set_mode(mode);
    header.set_uid(uid);
    header.set_gid(gid);
    header.set_mtime(mtime);
    header
}

/// Copies as much of `value` as fits into a NUL-padded header field; longer values travel in
/// a PAX record.
fn set_bytes(field: &mut [u8], value: &[u8]) {
    field.fill(0);
    let length = value.len().min(field.len());
    field[..length].copy_from_slice(&value[..length]);
}

fn write_entry(out: &mut Vec<u8>, header: &mut Header, content: &[u8]) {
    header.set_cksum();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(content);
    let padding = (BLOCK - content.len() % BLOCK) % BLOCK;
    out.resize(out.len() + padding, 0);
}

/// PAX records `"<length> <key>=<value>\n"`, where the length counts the whole record.
fn pax_records(records: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in records {
        let without_length = key.len() + value.len() + 3;
        let mut length = without_length + without_length.to_string().len();
        if length.to_string().len() != without_length.to_string().len() {
            length = without_length + length.to_string().len();
        }
        out.extend_from_slice(format!("{length} {key}=").as_bytes());
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

/// Builds a tar stream in memory from entries in the order given.
///
/// Every entry defaults to owner 0:0 and mtime 0, so the same builder always produces the
/// same bytes. Paths are stored exactly as given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TarBuilder {
    entries: Vec<TarEntry>,
}

impl TarBuilder {
    /// An empty tar.
    pub fn new() -> TarBuilder {
        TarBuilder::default()
    }

    /// Adds any entry.
    pub fn entry(mut self, entry: TarEntry) -> TarBuilder {
        self.entries.push(entry);
        self
    }

    /// Adds a regular file.
    pub fn file(self, path: impl Into<String>, content: impl AsRef<[u8]>, mode: u32) -> TarBuilder {
        self.entry(TarEntry::file(path, content).mode(mode))
    }

    /// Adds a directory; a trailing `/` is added to the stored name as tar tools do.
    pub fn dir(self, path: impl Into<String>, mode: u32) -> TarBuilder {
        let mut path = path.into();
        if !path.ends_with('/') {
            path.push('/');
        }
        self.entry(TarEntry::dir(path).mode(mode))
    }

    /// Adds a symbolic link.
    pub fn symlink(self, path: impl Into<String>, target: impl Into<String>) -> TarBuilder {
        self.entry(TarEntry::symlink(path, target))
    }

    /// Adds a hard link to an earlier entry (or a lower layer's file).
    pub fn hardlink(self, path: impl Into<String>, target: impl Into<String>) -> TarBuilder {
        self.entry(TarEntry::hardlink(path, target))
    }

    /// Adds the whiteout that deletes `path` from lower layers: `dir/.wh.name`.
    pub fn whiteout(self, path: &str) -> TarBuilder {
        let path = path.trim_end_matches('/');
        let whiteout = match path.rsplit_once('/') {
            Some((parent, name)) => format!("{parent}/.wh.{name}"),
            None => format!(".wh.{path}"),
        };
        self.entry(TarEntry::file(whiteout, b""))
    }

    /// Adds the opaque marker that hides what lower layers put in `dir`: `dir/.wh..wh..opq`.
    pub fn opaque(self, dir: &str) -> TarBuilder {
        let dir = dir.trim_end_matches('/');
        let marker = if dir.is_empty() {
            ".wh..wh..opq".to_owned()
        } else {
            format!("{dir}/.wh..wh..opq")
        };
        self.entry(TarEntry::file(marker, b""))
    }

    /// The entries added so far.
    pub fn entries(&self) -> &[TarEntry] {
        &self.entries
    }

    /// The uncompressed tar stream, ending with the two zero blocks.
    pub fn build(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for entry in &self.entries {
            entry.write_to(&mut out);
        }
        out.resize(out.len() + 2 * BLOCK, 0);
        out
    }

    /// The tar stream, gzip-compressed deterministically.
    pub fn build_gzip(&self) -> Vec<u8> {
        gzip(&self.build())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    /// What the `tar` crate reads back: (path, type, mode, uid, gid, mtime, link, content).
    type ReadEntry = (
        String,
        EntryType,
        u32,
        u64,
        u64,
        u64,
        Option<String>,
        Vec<u8>,
    );

    fn read_back(bytes: &[u8]) -> Vec<ReadEntry> {
        let mut archive = tar::Archive::new(bytes);
        let mut entries = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
            let header = entry.header().clone();
            let link = entry
                .link_name_bytes()
                .map(|link| String::from_utf8(link.into_owned()).unwrap());
            let mut content = Vec::new();
            entry.read_to_end(&mut content).unwrap();
            entries.push((
                path,
                header.entry_type(),
                header.mode().unwrap(),
                header.uid().unwrap(),
                header.gid().unwrap(),
                header.mtime().unwrap(),
                link,
                content,
            ));
        }
        entries
    }

    #[test]
    fn entries_read_back_with_their_kind_mode_and_content() {
        let tar = TarBuilder::new()
            .dir("etc", 0o755)
            .file("etc/motd", "hi\n", 0o640)
            .file("usr/bin/tool", "#!/bin/sh\n", 0o4755)
            .symlink("etc/link", "motd")
            .hardlink("etc/hard", "etc/motd")
            .whiteout("old/file")
            .whiteout("top")
            .opaque("var/cache/")
            .entry(TarEntry::file("owned", "x").owner(1000, 100).mtime(42))
            .build();
        let entries = read_back(&tar);
        let summary: Vec<(&str, EntryType, u32)> = entries
            .iter()
            .map(|entry| (entry.0.as_str(), entry.1, entry.2))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("etc/", EntryType::Directory, 0o755),
                ("etc/motd", EntryType::Regular, 0o640),
                ("usr/bin/tool", EntryType::Regular, 0o4755),
                ("etc/link", EntryType::Symlink, 0o777),
                ("etc/hard", EntryType::Link, 0o644),
                ("old/.wh.file", EntryType::Regular, 0o644),
                (".wh.top", EntryType::Regular, 0o644),
                ("var/cache/.wh..wh..opq", EntryType::Regular, 0o644),
                ("owned", EntryType::Regular, 0o644),
            ]
        );
        assert_eq!(entries[1].7, b"hi\n");
        assert_eq!(entries[3].6.as_deref(), Some("motd"));
        assert_eq!(entries[4].6.as_deref(), Some("etc/motd"));
        assert_eq!((entries[1].3, entries[1].4, entries[1].5), (0, 0, 0));
        assert_eq!((entries[8].3, entries[8].4, entries[8].5), (1000, 100, 42));
        assert_eq!(tar.len() % BLOCK, 0);
        assert!(tar.ends_with(&[0; 2 * BLOCK]));
    }

    #[test]
    fn long_paths_and_xattrs_travel_in_pax_records() {
        let long_name = format!("{}/file", "d".repeat(150));
        let long_target = "t".repeat(120);
        let tar = TarBuilder::new()
            .file(long_name.clone(), "content", 0o644)
            .symlink("short", long_target.clone())
            .entry(TarEntry::file("attr", "").xattr("user.note", "v1"))
            .build();
        let entries = read_back(&tar);
        assert_eq!(entries[0].0, long_name);
        assert_eq!(entries[0].7, b"content");
        assert_eq!(entries[1].6.as_deref(), Some(long_target.as_str()));

        let mut archive = tar::Archive::new(tar.as_slice());
        let mut attr = archive.entries().unwrap().nth(2).unwrap().unwrap();
        let records: Vec<(String, Vec<u8>)> = attr
            .pax_extensions()
            .unwrap()
            .unwrap()
            .map(|record| {
                let record = record.unwrap();
                (
                    record.key().unwrap().to_owned(),
                    record.value_bytes().to_vec(),
                )
            })
            .collect();
        assert_eq!(
            records,
            vec![("SCHILY.xattr.user.note".to_owned(), b"v1".to_vec())]
        );
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        // " a=bcdef\n" is 9 bytes; a 1-digit length would make 10, which needs 2 digits: 11.
        let records = pax_records(&[("a".to_owned(), b"bcdef".to_vec())]);
        assert_eq!(records, b"11 a=bcdef\n");
        let records = pax_records(&[("k".to_owned(), b"v".to_vec())]);
        assert_eq!(records, b"6 k=v\n");
    }

    #[test]
    fn hostile_paths_are_stored_verbatim() {
        let tar = TarBuilder::new()
            .file("../escape", "x", 0o644)
            .file("/abs", "y", 0o644)
            .symlink("link", "../../etc/passwd")
            .build();
        let names: Vec<String> = read_back(&tar).into_iter().map(|entry| entry.0).collect();
        assert_eq!(names, vec!["../escape", "/abs", "link"]);
    }

    #[test]
    fn devices_carry_their_numbers() {
        let tar = TarBuilder::new()
            .entry(TarEntry::new(
                "dev/null",
                EntryKind::CharDevice { major: 1, minor: 3 },
                0o666,
            ))
            .entry(TarEntry::new("dev/fifo", EntryKind::Fifo, 0o600))
            .build();
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut entries = archive.entries().unwrap();
        let null = entries.next().unwrap().unwrap();
        assert_eq!(null.header().entry_type(), EntryType::Char);
        assert_eq!(null.header().device_major().unwrap(), Some(1));
        assert_eq!(null.header().device_minor().unwrap(), Some(3));
        let fifo = entries.next().unwrap().unwrap();
        assert_eq!(fifo.header().entry_type(), EntryType::Fifo);
    }

    #[test]
    fn gnu_long_names_raw_paths_and_sparse_files_read_back() {
        let long_name = format!("{}/file", "g".repeat(150));
        let long_target = format!("/{}", "t".repeat(150));
        let tar = TarBuilder::new()
            .entry(TarEntry::file(long_name.clone(), "gnu").long_names(LongNames::Gnu))
            .entry(TarEntry::symlink("link", long_target.clone()).long_names(LongNames::Gnu))
            .entry(TarEntry::new_raw(
                &b"caf\xe9"[..],
                EntryKind::File(b"latin-1".to_vec()),
                0o600,
            ))
            .entry(TarEntry::sparse(
                "sparse",
                2000,
                vec![
                    (512, vec![b'a'; 512]),
                    (1500, b"end".to_vec()),
                    (2000, Vec::new()),
                ],
            ))
            .build();
        // No PAX header: the long names travel in `././@LongLink` entries.
        assert!(!tar.windows(4).any(|window| window == b"path"));
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut entries = archive.entries().unwrap();
        let mut next = || entries.next().unwrap().unwrap();
        let mut gnu = next();
        assert_eq!(gnu.path_bytes().as_ref(), long_name.as_bytes());
        let mut content = String::new();
        gnu.read_to_string(&mut content).unwrap();
        assert_eq!(content, "gnu");
        let link = next();
        assert_eq!(
            link.link_name_bytes().unwrap().as_ref(),
            long_target.as_bytes()
        );
        let mut raw = next();
        assert_eq!(raw.path_bytes().as_ref(), b"caf\xe9");
        assert_eq!(raw.header().mode().unwrap(), 0o600);
        let mut content = Vec::new();
        raw.read_to_end(&mut content).unwrap();
        assert_eq!(content, b"latin-1");
        let mut sparse = next();
        assert_eq!(sparse.header().entry_type(), EntryType::GNUSparse);
        assert_eq!(sparse.size(), 2000);
        let mut content = Vec::new();
        sparse.read_to_end(&mut content).unwrap();
        let mut expected = vec![0_u8; 2000];
        expected[512..1024].fill(b'a');
        expected[1500..1503].copy_from_slice(b"end");
        assert_eq!(content, expected);
    }

    #[test]
    fn zstd_is_deterministic_and_round_trips() {
        let tar = TarBuilder::new().file("a", "zstd content", 0o644).build();
        let compressed = Compression::Zstd.apply(&tar);
        assert_eq!(compressed, zstd_compress(&tar));
        assert_eq!(&compressed[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        assert_eq!(zstd::decode_all(compressed.as_slice()).unwrap(), tar);
    }

    #[test]
    fn output_is_deterministic_and_gzip_round_trips() {
        let builder = TarBuilder::new().file("a", "1", 0o644).dir("b", 0o700);
        assert_eq!(builder.build(), builder.build());
        assert_eq!(builder.build_gzip(), builder.build_gzip());
        assert_ne!(
            builder.build(),
            builder.clone().file("c", "", 0o644).build()
        );

        let compressed = builder.build_gzip();
        assert_eq!(&compressed[..2], &[0x1f, 0x8b]);
        // Bytes 4..8 are the gzip header's mtime.
        assert_eq!(&compressed[4..8], &[0, 0, 0, 0]);
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(compressed.as_slice())
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, builder.build());
        assert_eq!(Compression::None.apply(&decoded), decoded);
        assert_eq!(Compression::Gzip.apply(&decoded), compressed);
    }
}
