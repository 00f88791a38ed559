//! The bench images, built without internet: a Debian userland made by `debootstrap` from
//! the machine's package mirror (cached in `target/bench/base/`), turned into layers by a
//! streaming tar writer, plus two generated images (many layers with whiteouts, many small
//! files). Each image is written as an OCI layout, its layers streamed to files (never held
//! in memory), and the uncompressed layer tars are kept for the limit measurements.

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use flate2::write::GzEncoder;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// The images the bench pulls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ImageName {
    /// The Debian userland as one gzip layer.
    Big1,
    /// The same userland split into five gzip layers.
    Big5,
    /// The same userland as one zstd layer.
    BigZstd,
    /// 32 small gzip layers with whiteouts and opaque directories between them.
    ManyLayers,
    /// About 100,000 small files in one gzip layer.
    ManyFiles,
}

impl ImageName {
    /// Every image, in the order the bench runs them.
    pub(crate) const ALL: [ImageName; 5] = [
        ImageName::Big1,
        ImageName::Big5,
        ImageName::BigZstd,
        ImageName::ManyLayers,
        ImageName::ManyFiles,
    ];

    /// The name used on the command line, in the registry and in the tables.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ImageName::Big1 => "big-1",
            ImageName::Big5 => "big-5",
            ImageName::BigZstd => "big-zstd",
            ImageName::ManyLayers => "many-layers",
            ImageName::ManyFiles => "many-files",
        }
    }

    /// The image called `name`.
    pub(crate) fn parse(name: &str) -> anyhow::Result<ImageName> {
        ImageName::ALL
            .into_iter()
            .find(|image| image.as_str() == name)
            .with_context(|| {
                let known: Vec<&str> = ImageName::ALL.iter().map(|image| image.as_str()).collect();
                format!("unknown image {name:?} (known: {})", known.join(", "))
            })
    }

    /// Whether the image is made from the Debian userland.
    pub(crate) fn needs_base(self) -> bool {
        matches!(self, ImageName::Big1 | ImageName::Big5 | ImageName::BigZstd)
    }
}

impl fmt::Display for ImageName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// The Debian release debootstrap installs.
const SUITE: &str = "bookworm";
/// Packages added to `--variant=minbase` to reach about 500 MB and 10,000+ files: what a
/// build or scripting base image holds.
const INCLUDE: &[&str] = &[
    "perl",
    "python3",
    "locales",
    "gcc",
    "g++",
    "libc6-dev",
    "git",
    "vim-tiny",
    "ca-certificates",
    "curl",
    "less",
    "procps",
    "iproute2",
    "openssl",
];
/// The mirror when the machine's apt sources name none.
const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";
/// Changes whenever what the generators produce changes, so cached images are rebuilt.
const GENERATOR_VERSION: &str = "bench-images-1";
/// The mtime of generated entries (2023-11-14).
const GENERATED_MTIME: u64 = 1_700_000_000;
/// How much of the userland the `--quick` big images keep (in file bytes).
const QUICK_BASE_BYTES: u64 = 48 * 1024 * 1024;

/// The debootstrap command line for `rootfs`, without the mirror (which may differ between
/// machines without changing the result).
fn debootstrap_description() -> String {
    format!(
        "debootstrap --variant=minbase --include={} {SUITE} <dir> <mirror>",
        INCLUDE.join(",")
    )
}

/// The Debian mirror apt uses on this machine: the first `URIs:` (deb822) or `deb` line
/// naming a non-security Debian archive.
pub(crate) fn debian_mirror() -> String {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(listing) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = listing.flatten().map(|entry| entry.path()).collect();
        more.sort();
        files.extend(more);
    }
    for file in files {
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        for line in text.lines() {
            let line = line.trim();
            let uri = if let Some(rest) = line.strip_prefix("URIs:") {
                rest.split_whitespace().next()
            } else if let Some(rest) = line.strip_prefix("deb ") {
                rest.split_whitespace().find(|word| word.contains("://"))
            } else {
                None
            };
            if let Some(uri) = uri
                && uri.contains("debian")
                && !uri.contains("security")
            {
                return uri.trim_end_matches('/').to_owned();
            }
        }
    }
    DEFAULT_MIRROR.to_owned()
}

/// The Debian userland in `dir/rootfs`, made by debootstrap unless a finished one is there
/// (and `rebuild` is false). Returns the rootfs path and whether it was (re)built.
pub(crate) fn ensure_base(dir: &Path, rebuild: bool) -> anyhow::Result<(PathBuf, bool)> {
    let rootfs = dir.join("rootfs");
    let marker = dir.join("complete");
    let description = debootstrap_description();
    if !rebuild && fs::read_to_string(&marker).is_ok_and(|text| text.trim() == description) {
        return Ok((rootfs, false));
    }
    if !crate::tools::running_as_root() {
        bail!("debootstrap needs root: run `cargo xtask bench` as root");
    }
    let _ = fs::remove_file(&marker);
    if rootfs.exists() {
        fs::remove_dir_all(&rootfs).with_context(|| format!("removing {}", rootfs.display()))?;
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mirror = debian_mirror();
    let mut debootstrap = Command::new("debootstrap");
    debootstrap
        .arg("--variant=minbase")
        .arg(format!("--include={}", INCLUDE.join(",")))
        .arg(SUITE)
        .arg(&rootfs)
        .arg(&mirror);
    eprintln!("xtask bench: building the Debian userland ({mirror}), about 2 minutes");
    crate::tools::run_command(debootstrap)?;
    // What `apt-get clean` removes, as Debian's own images do: the downloaded packages and
    // the package caches.
    for cache in ["var/cache/apt/archives", "var/cache/apt"] {
        let cache = rootfs.join(cache);
        for entry in fs::read_dir(&cache).with_context(|| format!("listing {}", cache.display()))? {
            let path = entry?.path();
            let name = path.file_name().map(|name| name.as_bytes()).unwrap_or(b"");
            if path.is_file() && (name.ends_with(b".deb") || name.ends_with(b".bin")) {
                fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            }
        }
    }
    fs::write(&marker, format!("{description}\n"))
        .with_context(|| format!("writing {}", marker.display()))?;
    Ok((rootfs, true))
}

/// One path of the userland, in tar order.
struct FsEntry {
    /// Relative to the root, never empty.
    relative: PathBuf,
    metadata: fs::Metadata,
    /// For the second and later paths of a hard-link group: the index of the first.
    link_to: Option<usize>,
}

/// Every path below `root` (not following symlinks), each directory before its contents and
/// siblings in byte order; the contents of `dev`, `proc` and `sys` are left out, as image
/// builders do (they are the runtime's business), and so are sockets.
fn walk(root: &Path) -> anyhow::Result<Vec<FsEntry>> {
    fn visit(
        root: &Path,
        relative: &Path,
        out: &mut Vec<FsEntry>,
        inodes: &mut HashMap<(u64, u64), usize>,
    ) -> anyhow::Result<()> {
        let dir = root.join(relative);
        let mut names: Vec<_> = fs::read_dir(&dir)
            .with_context(|| format!("listing {}", dir.display()))?
            .map(|entry| entry.map(|entry| entry.file_name()))
            .collect::<io::Result<_>>()
            .with_context(|| format!("listing {}", dir.display()))?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let child = relative.join(&name);
            let path = root.join(&child);
            let metadata =
                fs::symlink_metadata(&path).with_context(|| format!("lstat {}", path.display()))?;
            let kind = metadata.file_type();
            if std::os::unix::fs::FileTypeExt::is_socket(&kind) {
                continue;
            }
            let mut link_to = None;
            if !kind.is_dir() && metadata.nlink() > 1 {
                let key = (metadata.dev(), metadata.ino());
                match inodes.get(&key) {
                    Some(first) => link_to = Some(*first),
                    None => {
                        inodes.insert(key, out.len());
                    }
                }
            }
            let is_dir = kind.is_dir();
            out.push(FsEntry {
                relative: child.clone(),
                metadata,
                link_to,
            });
            let skip_contents = relative.as_os_str().is_empty()
                && matches!(name.as_bytes(), b"dev" | b"proc" | b"sys");
            if is_dir && !skip_contents {
                visit(root, &child, out, inodes)?;
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    visit(root, Path::new(""), &mut out, &mut HashMap::new())?;
    Ok(out)
}

/// Assigns each of `entries` (the first `count`) to one of `layers` layers of about equal
/// size, in order; every path of a hard-link group goes to the layer of its last path, so a
/// link never points into another layer and every parent directory comes first.
fn split_layers(entries: &[FsEntry], count: usize, layers: usize) -> Vec<Vec<usize>> {
    let weight = |entry: &FsEntry| -> u64 {
        512 + if entry.metadata.is_file() && entry.link_to.is_none() {
            entry.metadata.len()
        } else {
            0
        }
    };
    let total: u64 = entries[..count].iter().map(weight).sum::<u64>().max(1);
    let layers_u64 = layers as u64;
    let mut assigned = Vec::with_capacity(count);
    let mut before = 0_u64;
    for entry in &entries[..count] {
        let layer = usize::try_from((before * layers_u64 / total).min(layers_u64 - 1))
            .expect("a layer index below `layers` fits usize");
        assigned.push(layer);
        before += weight(entry);
    }
    // A group's paths all move to the layer of its last path.
    let mut group_layer: HashMap<usize, usize> = HashMap::new();
    for (index, entry) in entries[..count].iter().enumerate() {
        if let Some(first) = entry.link_to {
            let layer = group_layer.entry(first).or_insert(assigned[first]);
            *layer = (*layer).max(assigned[index]);
        }
    }
    for (index, entry) in entries[..count].iter().enumerate() {
        let first = entry.link_to.unwrap_or(index);
        if let Some(layer) = group_layer.get(&first) {
            assigned[index] = *layer;
        }
    }
    let mut out = vec![Vec::new(); layers];
    for (index, layer) in assigned.into_iter().enumerate() {
        out[layer].push(index);
    }
    out
}

/// Appends `entries[index]`, read from `root`, to `builder`.
fn append_fs_entry<W: Write>(
    builder: &mut tar::Builder<W>,
    root: &Path,
    entries: &[FsEntry],
    index: usize,
) -> anyhow::Result<()> {
    let entry = &entries[index];
    let path = root.join(&entry.relative);
    let mut header = tar::Header::new_gnu();
    header.set_metadata_in_mode(&entry.metadata, tar::HeaderMode::Complete);
    header.set_mode(entry.metadata.mode() & 0o7777);
    let kind = entry.metadata.file_type();
    let failed = || format!("adding {} to a layer", path.display());
    if let Some(first) = entry.link_to {
        header.set_entry_type(tar::EntryType::Link);
        header.set_size(0);
        builder
            .append_link(&mut header, &entry.relative, &entries[first].relative)
            .with_context(failed)?;
    } else if kind.is_symlink() {
        let target = fs::read_link(&path).with_context(failed)?;
        header.set_size(0);
        builder
            .append_link(&mut header, &entry.relative, target)
            .with_context(failed)?;
    } else if kind.is_file() {
        let file = File::open(&path).with_context(failed)?;
        builder
            .append_data(&mut header, &entry.relative, file)
            .with_context(failed)?;
    } else {
        header.set_size(0);
        builder
            .append_data(&mut header, &entry.relative, io::empty())
            .with_context(failed)?;
    }
    Ok(())
}

/// One generated path.
enum Generated {
    Dir(String),
    /// Path, size and the seed of its text.
    File(String, usize, u64),
    Symlink(String, String),
    Hardlink(String, String),
}

impl Generated {
    fn append<W: Write>(&self, builder: &mut tar::Builder<W>) -> io::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(GENERATED_MTIME);
        header.set_uid(0);
        header.set_gid(0);
        match self {
            Generated::Dir(path) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder.append_data(&mut header, path, io::empty())
            }
            Generated::File(path, size, seed) => {
                let content = text(*size, *seed);
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(if seed % 7 == 0 { 0o755 } else { 0o644 });
                header.set_size(content.len() as u64);
                builder.append_data(&mut header, path, &content[..])
            }
            Generated::Symlink(path, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                builder.append_link(&mut header, path, target)
            }
            Generated::Hardlink(path, target) => {
                header.set_entry_type(tar::EntryType::Link);
                header.set_mode(0o644);
                header.set_size(0);
                builder.append_link(&mut header, path, target)
            }
        }
    }

    fn file_bytes(&self) -> Option<u64> {
        match self {
            Generated::File(_, size, _) => Some(*size as u64),
            _ => None,
        }
    }
}

/// `size` bytes of word-like text (compressing like source code or configuration does),
/// the same for the same seed.
fn text(size: usize, seed: u64) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "the", "layer", "image", "file", "return", "value", "config", "struct", "impl", "for",
        "self", "error", "path", "while", "match", "data", "index", "static", "const", "let",
        "string", "digest", "manifest", "registry", "cache", "blob", "write", "read", "open",
    ];
    let mut words = tank_testkit::Xorshift::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut out = Vec::with_capacity(size + 16);
    let mut column = 0;
    while out.len() < size {
        let state = words.next().expect("xorshift never ends");
        let word = WORDS[(state % WORDS.len() as u64) as usize];
        if state.is_multiple_of(11) {
            out.extend_from_slice(format!("{:x}", state >> 40).as_bytes());
        } else {
            out.extend_from_slice(word.as_bytes());
        }
        column += word.len() + 1;
        if column > 72 {
            out.push(b'\n');
            column = 0;
        } else {
            out.push(b' ');
        }
    }
    out.truncate(size);
    out
}

/// The layers of `many-layers`: `count` layers, each adding a directory of files, rewriting
/// a shared file, deleting a fifth of the previous layer's files with whiteouts, and every
/// eighth layer replacing an older directory with an opaque whiteout.
fn many_layers(count: usize) -> Vec<Vec<Generated>> {
    let files_per_layer = 40;
    let mut layers = Vec::new();
    for layer in 0..count {
        let mut entries = vec![Generated::Dir("data".into()), Generated::Dir("etc".into())];
        let dir = format!("data/l{layer:02}");
        entries.push(Generated::Dir(dir.clone()));
        for file in 0..files_per_layer {
            let seed = (layer * 1000 + file) as u64;
            entries.push(Generated::File(
                format!("{dir}/f{file:03}"),
                512 + (seed as usize * 97) % 6000,
                seed,
            ));
        }
        entries.push(Generated::Hardlink(
            format!("{dir}/f000.link"),
            format!("{dir}/f000"),
        ));
        entries.push(Generated::Symlink(
            format!("{dir}/latest"),
            format!("f{:03}", files_per_layer - 1),
        ));
        entries.push(Generated::File(
            "etc/config".into(),
            300 + layer * 10,
            layer as u64 + 1_000_000,
        ));
        if layer > 0 {
            let previous = format!("data/l{:02}", layer - 1);
            for file in (0..files_per_layer).step_by(5) {
                entries.push(Generated::File(format!("{previous}/.wh.f{file:03}"), 0, 0));
            }
        }
        if layer >= 4 && layer % 8 == 0 {
            let old = format!("data/l{:02}", layer - 4);
            entries.push(Generated::Dir(old.clone()));
            entries.push(Generated::File(format!("{old}/.wh..wh..opq"), 0, 0));
            entries.push(Generated::File(
                format!("{old}/replaced"),
                800,
                layer as u64 + 2_000_000,
            ));
        }
        layers.push(entries);
    }
    layers
}

/// The one layer of `many-files`: `count` files of 100 to 2,100 bytes, 100 to a directory.
fn many_files(count: usize) -> Vec<Generated> {
    let mut entries = vec![Generated::Dir("files".into())];
    for index in 0..count {
        if index % 100 == 0 {
            entries.push(Generated::Dir(format!("files/d{:04}", index / 100)));
        }
        let seed = index as u64;
        entries.push(Generated::File(
            format!("files/d{:04}/f{:03}.txt", index / 100, index % 100),
            100 + (index * 7919) % 2000,
            seed,
        ));
    }
    entries
}

/// How a layer is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Compression {
    /// gzip, level 6 (Docker's).
    Gzip,
    /// zstd, level 3 (the zstd default).
    Zstd,
}

impl Compression {
    fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// One layer as built.
#[derive(Clone, Debug)]
pub(crate) struct Layer {
    /// `sha256:<hex>` of the compressed blob.
    pub(crate) digest: String,
    /// The compressed size.
    pub(crate) size: u64,
    /// The blob in the layout.
    pub(crate) blob: PathBuf,
    /// The uncompressed tar.
    pub(crate) tar: PathBuf,
    /// The uncompressed tar's size.
    pub(crate) tar_size: u64,
    /// The compression.
    pub(crate) compression: Compression,
}

/// One image as built: an OCI layout tagged `latest` and what it holds.
#[derive(Clone, Debug)]
pub(crate) struct Image {
    /// Which image.
    pub(crate) name: ImageName,
    /// The OCI layout.
    pub(crate) layout: PathBuf,
    /// The layers, bottom first.
    pub(crate) layers: Vec<Layer>,
    /// Tar entries over all layers.
    pub(crate) entries: u64,
    /// Regular files (with content) over all layers.
    pub(crate) files: u64,
    /// Bytes of regular-file content over all layers.
    pub(crate) file_bytes: u64,
}

impl Image {
    /// The total compressed size.
    pub(crate) fn compressed(&self) -> u64 {
        self.layers.iter().map(|layer| layer.size).sum()
    }

    /// The total uncompressed (tar) size.
    pub(crate) fn uncompressed(&self) -> u64 {
        self.layers.iter().map(|layer| layer.tar_size).sum()
    }

    fn to_json(&self) -> Value {
        json!({
            "generator": GENERATOR_VERSION,
            "name": self.name.as_str(),
            "entries": self.entries,
            "files": self.files,
            "file_bytes": self.file_bytes,
            "layers": self.layers.iter().map(|layer| json!({
                "digest": layer.digest,
                "size": layer.size,
                "blob": layer.blob,
                "tar": layer.tar,
                "tar_size": layer.tar_size,
                "compression": layer.compression.as_str(),
            })).collect::<Vec<_>>(),
        })
    }

    fn from_json(value: &Value, layout: PathBuf) -> Option<Image> {
        if value["generator"] != GENERATOR_VERSION {
            return None;
        }
        let mut layers = Vec::new();
        for layer in value["layers"].as_array()? {
            let layer = Layer {
                digest: layer["digest"].as_str()?.to_owned(),
                size: layer["size"].as_u64()?,
                blob: PathBuf::from(layer["blob"].as_str()?),
                tar: PathBuf::from(layer["tar"].as_str()?),
                tar_size: layer["tar_size"].as_u64()?,
                compression: match layer["compression"].as_str()? {
                    "gzip" => Compression::Gzip,
                    "zstd" => Compression::Zstd,
                    _ => return None,
                },
            };
            if !layer.blob.is_file() || !layer.tar.is_file() {
                return None;
            }
            layers.push(layer);
        }
        Some(Image {
            name: ImageName::parse(value["name"].as_str()?).ok()?,
            layout,
            layers,
            entries: value["entries"].as_u64()?,
            files: value["files"].as_u64()?,
            file_bytes: value["file_bytes"].as_u64()?,
        })
    }
}

/// `sha256:<hex>` of what went through, and how many bytes.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W> Hashing<W> {
    fn new(inner: W) -> Hashing<W> {
        Hashing {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    fn finish(self) -> (W, String, u64) {
        let hex: String = self
            .hasher
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        (self.inner, format!("sha256:{hex}"), self.count)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(bytes)?;
        self.hasher.update(&bytes[..written]);
        self.count += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

enum Encoder<W: Write> {
    Gzip(GzEncoder<W>),
    Zstd(zstd::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    fn new(compression: Compression, inner: W) -> io::Result<Encoder<W>> {
        Ok(match compression {
            Compression::Gzip => Encoder::Gzip(GzEncoder::new(inner, flate2::Compression::new(6))),
            Compression::Zstd => Encoder::Zstd(zstd::Encoder::new(inner, 3)?),
        })
    }

    fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Gzip(encoder) => encoder.finish(),
            Encoder::Zstd(encoder) => encoder.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(encoder) => encoder.write(bytes),
            Encoder::Zstd(encoder) => encoder.write(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(encoder) => encoder.flush(),
            Encoder::Zstd(encoder) => encoder.flush(),
        }
    }
}

/// Writes every byte to both the uncompressed tar file and the encoder.
struct Tee<A, B> {
    tar: A,
    encoder: B,
}

impl<A: Write, B: Write> Write for Tee<A, B> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.tar.write_all(bytes)?;
        self.encoder.write_all(bytes)?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tar.flush()?;
        self.encoder.flush()
    }
}

type LayerWriter = Hashing<Tee<BufWriter<File>, Encoder<Hashing<BufWriter<File>>>>>;

/// Streams one layer: `fill` appends the entries; the uncompressed tar goes to `tar_path`,
/// the compressed blob into the layout's blobs. Returns the layer and its diff_id.
fn write_layer(
    layout: &Path,
    tar_path: &Path,
    compression: Compression,
    fill: impl FnOnce(&mut tar::Builder<LayerWriter>) -> anyhow::Result<()>,
) -> anyhow::Result<(Layer, String)> {
    let blobs = layout.join("blobs/sha256");
    let partial = blobs.join("layer.partial");
    let create = |path: &Path| -> anyhow::Result<BufWriter<File>> {
        Ok(BufWriter::with_capacity(
            1 << 20,
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ))
    };
    let encoder = Encoder::new(compression, Hashing::new(create(&partial)?))?;
    let tee = Tee {
        tar: create(tar_path)?,
        encoder,
    };
    let mut builder = tar::Builder::new(Hashing::new(tee));
    builder.follow_symlinks(false);
    fill(&mut builder)?;
    builder.finish().context("finishing a layer tar")?;
    let (tee, diff_id, tar_size) = builder
        .into_inner()
        .context("finishing a layer tar")?
        .finish();
    let mut tar = tee.tar;
    tar.flush()
        .with_context(|| format!("writing {}", tar_path.display()))?;
    let (mut blob, digest, size) = tee
        .encoder
        .finish()
        .context("compressing a layer")?
        .finish();
    blob.flush()
        .with_context(|| format!("writing {}", partial.display()))?;
    let blob_path = blobs.join(&digest["sha256:".len()..]);
    fs::rename(&partial, &blob_path)
        .with_context(|| format!("renaming {} to {}", partial.display(), blob_path.display()))?;
    Ok((
        Layer {
            digest,
            size,
            blob: blob_path,
            tar: tar_path.to_path_buf(),
            tar_size,
            compression,
        },
        diff_id,
    ))
}

/// Writes `bytes` as a blob of `layout`; returns its descriptor.
fn write_blob(layout: &Path, media_type: &str, bytes: &[u8]) -> anyhow::Result<Value> {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let path = layout.join("blobs/sha256").join(&hex);
    fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(json!({"mediaType": media_type, "digest": format!("sha256:{hex}"), "size": bytes.len()}))
}

/// What a layer is made of.
enum Source<'a> {
    Userland(&'a Path, &'a [FsEntry], Vec<usize>),
    Generated(Vec<Generated>),
}

/// Where the bench keeps everything: `target/bench`.
pub(crate) struct Workspace {
    /// `target/bench`.
    pub(crate) root: PathBuf,
}

impl Workspace {
    /// The image `name` (quick or full size), built unless a finished one of the same
    /// generator is in `target/bench/images/` and neither `rebuild` nor `base_rebuilt`.
    pub(crate) fn image(
        &self,
        name: ImageName,
        quick: bool,
        rebuild: bool,
        base: Option<&Path>,
    ) -> anyhow::Result<Image> {
        let dir = self
            .root
            .join("images")
            .join(format!("{name}{}", if quick { "-quick" } else { "" }));
        let manifest = dir.join("image.json");
        let layout = dir.join("layout");
        if !rebuild
            && let Ok(bytes) = fs::read(&manifest)
            && let Ok(value) = serde_json::from_slice::<Value>(&bytes)
            && let Some(image) = Image::from_json(&value, layout.clone())
        {
            return Ok(image);
        }
        if dir.exists() {
            fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        eprintln!(
            "xtask bench: building image {name}{}",
            if quick { " (quick)" } else { "" }
        );
        let image = build(name, quick, &dir, base)?;
        fs::write(&manifest, serde_json::to_vec_pretty(&image.to_json())?)
            .with_context(|| format!("writing {}", manifest.display()))?;
        Ok(image)
    }
}

fn build(name: ImageName, quick: bool, dir: &Path, base: Option<&Path>) -> anyhow::Result<Image> {
    let layout = dir.join("layout");
    let tars = dir.join("tars");
    for path in [layout.join("blobs/sha256"), tars.clone()] {
        fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
    }
    let walked;
    let mut plan: Vec<(Source<'_>, Compression)> = Vec::new();
    if name.needs_base() {
        let root = base.context("the big images need the Debian userland")?;
        walked = walk(root)?;
        let count = if quick {
            let mut bytes = 0;
            walked
                .iter()
                .position(|entry| {
                    bytes += entry.metadata.len();
                    bytes > QUICK_BASE_BYTES
                })
                .unwrap_or(walked.len())
        } else {
            walked.len()
        };
        let (layers, compression) = match name {
            ImageName::Big5 => (5, Compression::Gzip),
            ImageName::BigZstd => (1, Compression::Zstd),
            _ => (1, Compression::Gzip),
        };
        for indices in split_layers(&walked, count, layers) {
            plan.push((Source::Userland(root, &walked, indices), compression));
        }
    } else if name == ImageName::ManyLayers {
        for layer in many_layers(32) {
            plan.push((Source::Generated(layer), Compression::Gzip));
        }
    } else {
        let count = if quick { 10_000 } else { 100_000 };
        plan.push((Source::Generated(many_files(count)), Compression::Gzip));
    }

    let (mut entries, mut files, mut file_bytes) = (0_u64, 0_u64, 0_u64);
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for (index, (source, compression)) in plan.into_iter().enumerate() {
        let tar_path = tars.join(format!("layer-{index:02}.tar"));
        let (layer, diff_id) = write_layer(&layout, &tar_path, compression, |builder| {
            match &source {
                Source::Userland(root, walked, indices) => {
                    for &index in indices {
                        append_fs_entry(builder, root, walked, index)?;
                        let entry = &walked[index];
                        entries += 1;
                        if entry.metadata.is_file() && entry.link_to.is_none() {
                            files += 1;
                            file_bytes += entry.metadata.len();
                        }
                    }
                }
                Source::Generated(generated) => {
                    for entry in generated {
                        entry.append(builder).context("writing a generated layer")?;
                        entries += 1;
                        if let Some(bytes) = entry.file_bytes()
                            && bytes > 0
                        {
                            files += 1;
                            file_bytes += bytes;
                        }
                    }
                }
            }
            Ok(())
        })?;
        layers.push(layer);
        diff_ids.push(diff_id);
    }

    write_manifest(&layout, &layers, &diff_ids)?;
    Ok(Image {
        name,
        layout,
        layers,
        entries,
        files,
        file_bytes,
    })
}

/// Writes the config, the manifest (tagged `latest`), `index.json` and `oci-layout` of an
/// image made of `layers` into `layout`.
fn write_manifest(layout: &Path, layers: &[Layer], diff_ids: &[String]) -> anyhow::Result<()> {
    let layout = layout.to_path_buf();
    let architecture = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        "x86_64" => "amd64",
        other => other,
    };
    let config = json!({
        "architecture": architecture,
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = write_blob(
        &layout,
        "application/vnd.oci.image.config.v1+json",
        &serde_json::to_vec(&config)?,
    )?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config,
        "layers": layers.iter().map(|layer| json!({
            "mediaType": layer.compression.media_type(),
            "digest": layer.digest,
            "size": layer.size,
        })).collect::<Vec<_>>(),
    });
    let mut manifest = write_blob(
        &layout,
        "application/vnd.oci.image.manifest.v1+json",
        &serde_json::to_vec(&manifest)?,
    )?;
    manifest["annotations"] = json!({"org.opencontainers.image.ref.name": "latest"});
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [manifest],
    });
    fs::write(layout.join("index.json"), serde_json::to_vec(&index)?)
        .context("writing index.json")?;
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .context("writing oci-layout")?;
    Ok(())
}

/// A copy of `image` with every layer gzip-compressed (from the kept uncompressed tars), as
/// an OCI layout in `dir`, tagged `latest`: umoci 0.4.7 cannot unpack zstd layers, so the
/// rootfs check of a zstd image unpacks this twin (same tars, so same diff_ids and rootfs).
pub(crate) fn gzip_twin(image: &Image, dir: &Path) -> anyhow::Result<PathBuf> {
    let layout = dir.join("layout");
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs).with_context(|| format!("creating {}", blobs.display()))?;
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for layer in &image.layers {
        let partial = blobs.join("layer.partial");
        let blob = BufWriter::with_capacity(
            1 << 20,
            File::create(&partial).with_context(|| format!("creating {}", partial.display()))?,
        );
        let mut writer = Hashing::new(GzEncoder::new(
            Hashing::new(blob),
            flate2::Compression::new(6),
        ));
        let mut tar =
            File::open(&layer.tar).with_context(|| format!("opening {}", layer.tar.display()))?;
        io::copy(&mut tar, &mut writer)
            .with_context(|| format!("compressing {}", layer.tar.display()))?;
        let (encoder, diff_id, tar_size) = writer.finish();
        let (mut blob, digest, size) = encoder.finish().context("compressing a layer")?.finish();
        blob.flush()
            .with_context(|| format!("writing {}", partial.display()))?;
        let blob_path = blobs.join(&digest["sha256:".len()..]);
        fs::rename(&partial, &blob_path)
            .with_context(|| format!("renaming {}", partial.display()))?;
        layers.push(Layer {
            digest,
            size,
            blob: blob_path,
            tar: layer.tar.clone(),
            tar_size,
            compression: Compression::Gzip,
        });
        diff_ids.push(diff_id);
    }
    write_manifest(&layout, &layers, &diff_ids)?;
    Ok(layout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_round_trip() {
        for image in ImageName::ALL {
            assert_eq!(ImageName::parse(image.as_str()).unwrap(), image);
        }
        assert!(ImageName::parse("big-2").is_err());
    }

    #[test]
    fn generated_text_is_deterministic_and_sized() {
        assert_eq!(text(1000, 5), text(1000, 5));
        assert_ne!(text(1000, 5), text(1000, 6));
        assert_eq!(text(1234, 1).len(), 1234);
    }

    #[test]
    fn a_split_keeps_hard_link_groups_and_parents_together() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for sub in ["a", "b", "c", "d"] {
            fs::create_dir(root.join(sub)).unwrap();
            fs::write(root.join(sub).join("big"), vec![b'x'; 10_000]).unwrap();
        }
        fs::hard_link(root.join("a/big"), root.join("d/link")).unwrap();
        fs::create_dir_all(root.join("dev/pts")).unwrap();
        let walked = walk(root).unwrap();
        let paths: Vec<String> = walked
            .iter()
            .map(|entry| entry.relative.display().to_string())
            .collect();
        // dev's contents are left out; directories come before their contents.
        assert_eq!(
            paths,
            [
                "a", "a/big", "b", "b/big", "c", "c/big", "d", "d/big", "d/link", "dev"
            ]
        );
        assert_eq!(walked[8].link_to, Some(1));
        let layers = split_layers(&walked, walked.len(), 4);
        assert_eq!(layers.len(), 4);
        assert!(layers.iter().all(|layer| !layer.is_empty()), "{layers:?}");
        // a/big moves to d/link's layer (the last), after d.
        let last = layers.iter().position(|layer| layer.contains(&8)).unwrap();
        assert!(layers[last].contains(&1), "{layers:?}");
        assert!(layers[..=last].iter().flatten().any(|index| *index == 6));
        let mut all: Vec<usize> = layers.concat();
        all.sort();
        assert_eq!(all, (0..walked.len()).collect::<Vec<_>>());
    }

    #[test]
    fn a_built_image_is_a_valid_layout_with_matching_digests() {
        let dir = tempfile::tempdir().unwrap();
        let image = build(ImageName::ManyLayers, true, dir.path(), None).unwrap();
        assert_eq!(image.layers.len(), 32);
        let index: Value =
            serde_json::from_slice(&fs::read(image.layout.join("index.json")).unwrap()).unwrap();
        let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap();
        let manifest: Value = serde_json::from_slice(
            &fs::read(
                image
                    .layout
                    .join("blobs/sha256")
                    .join(&manifest_digest[7..]),
            )
            .unwrap(),
        )
        .unwrap();
        for (layer, descriptor) in image
            .layers
            .iter()
            .zip(manifest["layers"].as_array().unwrap())
        {
            let blob = fs::read(&layer.blob).unwrap();
            assert_eq!(descriptor["digest"], layer.digest);
            assert_eq!(
                layer.digest,
                format!(
                    "sha256:{}",
                    Sha256::digest(&blob)
                        .iter()
                        .map(|byte| format!("{byte:02x}"))
                        .collect::<String>()
                )
            );
            let mut unpacked = Vec::new();
            io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&blob[..]), &mut unpacked)
                .unwrap();
            assert_eq!(unpacked, fs::read(&layer.tar).unwrap());
        }
        // Layer 1 deletes a fifth of layer 0's files.
        let mut archive = tar::Archive::new(File::open(&image.layers[1].tar).unwrap());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|entry| entry.unwrap().path().unwrap().display().to_string())
            .collect();
        assert!(names.contains(&"data/l00/.wh.f005".to_owned()), "{names:?}");
    }
}
