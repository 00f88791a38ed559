//! OCI image layouts (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`): writing images and
//! indexes with their tags, and reading them back with every blob verified.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use tank_reference::{Digest, Hasher};

use crate::assemble::{
    Descriptor, Format, Image, ImageIndex, OCI_INDEX, REF_NAME_ANNOTATION, canonical_bytes,
    check_tag,
};
use crate::build::{BlobRef, Compression, LayerBlob};
use crate::{CONFIG_SIZE_LIMIT, Error, Platform};

/// The largest manifest or index (and `index.json`) read from a layout, as registries cap
/// manifests.
pub const MANIFEST_SIZE_LIMIT: u64 = 4 * 1024 * 1024;

/// The most `oci-layout` may hold (it is one small JSON object).
const LAYOUT_FILE_LIMIT: u64 = 64 * 1024;

const LAYOUT_FILE: &str = "oci-layout";
const LAYOUT_CONTENT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Something a layout can hold under a tag: an image or an index, borrowed.
#[derive(Clone, Copy, Debug)]
pub enum LayoutItem<'a> {
    /// One image.
    Image(&'a Image),
    /// An index and its images.
    Index(&'a ImageIndex),
}

impl<'a> From<&'a Image> for LayoutItem<'a> {
    fn from(image: &'a Image) -> LayoutItem<'a> {
        LayoutItem::Image(image)
    }
}

impl<'a> From<&'a ImageIndex> for LayoutItem<'a> {
    fn from(index: &'a ImageIndex) -> LayoutItem<'a> {
        LayoutItem::Index(index)
    }
}

impl<'a> From<&'a ImageOrIndex> for LayoutItem<'a> {
    fn from(item: &'a ImageOrIndex) -> LayoutItem<'a> {
        match item {
            ImageOrIndex::Image(image) => LayoutItem::Image(image),
            ImageOrIndex::Index(index) => LayoutItem::Index(index),
        }
    }
}

/// An image or an index read from a layout.
#[derive(Clone, Debug)]
pub enum ImageOrIndex {
    /// One image.
    Image(Image),
    /// An index and its images.
    Index(ImageIndex),
}

impl ImageOrIndex {
    /// The digest of the manifest or index.
    pub fn manifest_digest(&self) -> &Digest {
        match self {
            ImageOrIndex::Image(image) => image.manifest_digest(),
            ImageOrIndex::Index(index) => index.manifest_digest(),
        }
    }

    /// The bytes of the manifest or index.
    pub fn manifest_bytes(&self) -> &[u8] {
        match self {
            ImageOrIndex::Image(image) => image.manifest_bytes(),
            ImageOrIndex::Index(index) => index.manifest_bytes(),
        }
    }
}

/// Writes images and indexes into the OCI image layout at `dir` (created if missing; an
/// existing layout is added to): `oci-layout`, every blob under `blobs/<alg>/<hex>` (file
/// backed layers are streamed, and the bytes copied are checked against their digest), and
/// one `index.json` entry per item. A tag (`org.opencontainers.image.ref.name`) already in
/// `index.json` moves to the new item. An item given without a tag takes the image's own
/// [`Image::tag`], if any; otherwise it is stored untagged.
///
/// A blob file already present with the declared size is kept as it is (blobs are named by
/// their digest); [`Layout::read_entry`] verifies it when it is read.
///
/// Docker-format items are written with their Docker media types in `index.json`, which the
/// image-spec allows but skopeo 1.9's `oci:` transport refuses; OCI-format items suit every
/// reader.
pub fn write_layout(dir: &Path, entries: &[(Option<&str>, LayoutItem<'_>)]) -> Result<(), Error> {
    let mut new_entries = Vec::with_capacity(entries.len());
    let mut tags = BTreeSet::new();
    for (tag, item) in entries {
        let tag = tag.or(match item {
            LayoutItem::Image(image) => image.tag(),
            LayoutItem::Index(_) => None,
        });
        if let Some(tag) = tag {
            check_tag(tag)?;
            if !tags.insert(tag.to_owned()) {
                return Err(Error::InvalidTag {
                    tag: tag.to_owned(),
                    reason: "it is given to more than one item",
                });
            }
        }
        new_entries.push((tag, *item));
    }

    fs::create_dir_all(dir).map_err(|source| io_error("create", dir, source))?;
    let layout_file = dir.join(LAYOUT_FILE);
    fs::write(&layout_file, LAYOUT_CONTENT)
        .map_err(|source| io_error("write", &layout_file, source))?;

    let mut index_entries = Vec::with_capacity(new_entries.len());
    for (tag, item) in &new_entries {
        let (mut descriptor, platform) = match item {
            LayoutItem::Image(image) => {
                write_image_blobs(dir, image)?;
                (image.manifest_descriptor().to_json(), image.platform())
            }
            LayoutItem::Index(index) => {
                for image in index.images() {
                    write_image_blobs(dir, image)?;
                }
                let descriptor = index.manifest_descriptor();
                write_blob(dir, &descriptor, BlobRef::Bytes(index.manifest_bytes()))?;
                (descriptor.to_json(), None)
            }
        };
        if let Some(platform) = platform {
            let mut json = Map::new();
            json.insert("architecture".into(), platform.architecture().into());
            json.insert("os".into(), platform.os().into());
            if let Some(variant) = platform.variant() {
                json.insert("variant".into(), variant.into());
            }
            descriptor.insert("platform".into(), Value::Object(json));
        }
        if let Some(tag) = tag {
            let mut annotations = Map::new();
            annotations.insert(REF_NAME_ANNOTATION.into(), Value::from(*tag));
            descriptor.insert("annotations".into(), Value::Object(annotations));
        }
        index_entries.push(Value::Object(descriptor));
    }

    let index_path = dir.join("index.json");
    let mut index = match read_limited(&index_path, MANIFEST_SIZE_LIMIT) {
        Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err(invalid_layout(&index_path, "index.json is not an object")),
            Err(error) => return Err(invalid_layout(&index_path, error.to_string())),
        },
        Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            let mut map = Map::new();
            map.insert("schemaVersion".into(), Value::from(2));
            map.insert("mediaType".into(), Value::from(OCI_INDEX));
            map
        }
        Err(error) => return Err(error),
    };
    let mut manifests = match index.remove("manifests") {
        Some(Value::Array(manifests)) => manifests,
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return Err(invalid_layout(&index_path, "manifests is not an array")),
    };
    manifests.retain(|existing| {
        let existing_tag = existing["annotations"][REF_NAME_ANNOTATION].as_str();
        let replaced = match existing_tag {
            Some(tag) => tags.contains(tag),
            // An untagged entry for the same manifest is not kept twice.
            None => index_entries
                .iter()
                .any(|entry| entry["digest"] == existing["digest"]),
        };
        !replaced
    });
    manifests.extend(index_entries);
    index.insert("manifests".into(), Value::Array(manifests));
    let bytes = canonical_bytes(&Value::Object(index));
    write_atomically(dir, &index_path, &bytes)
}

fn write_image_blobs(dir: &Path, image: &Image) -> Result<(), Error> {
    for (descriptor, blob) in image.referenced_blobs() {
        write_blob(dir, descriptor, blob)?;
    }
    write_blob(
        dir,
        &image.manifest_descriptor(),
        BlobRef::Bytes(image.manifest_bytes()),
    )
}

fn blob_path(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join("blobs")
        .join(digest.algorithm().as_str())
        .join(digest.hex())
}

/// Writes one blob unless a file of its size is already there; the bytes are checked
/// against the descriptor on the way and the file appears under its name only when whole.
fn write_blob(dir: &Path, descriptor: &Descriptor, source: BlobRef<'_>) -> Result<(), Error> {
    let path = blob_path(dir, descriptor.digest());
    if fs::symlink_metadata(&path)
        .is_ok_and(|meta| meta.is_file() && meta.len() == descriptor.size())
    {
        return Ok(());
    }
    let folder = path
        .parent()
        .expect("a blob path always has blobs/<alg> as its parent");
    fs::create_dir_all(folder).map_err(|source| io_error("create", folder, source))?;
    let source_name = match source {
        BlobRef::Bytes(_) => PathBuf::from("<memory>"),
        BlobRef::File(file) => file.to_path_buf(),
    };
    let reader = source.open()?;
    persist_verified(reader, &source_name, descriptor, folder, &path, |_| {})
}

/// Copies `reader` into `path` through a temporary file in `folder` (on the same
/// filesystem), hashing as it goes: the file appears under `path` only whole, fsynced, and
/// matching `descriptor`'s size and digest. `progress` hears the bytes copied so far.
pub(crate) fn persist_verified(
    mut reader: impl Read,
    source_name: &Path,
    descriptor: &Descriptor,
    folder: &Path,
    path: &Path,
    progress: impl Fn(u64),
) -> Result<(), Error> {
    let mut temporary = tempfile::Builder::new()
        .prefix(".tank-blob-")
        .tempfile_in(folder)
        .map_err(|source| io_error("create temporary file in", folder, source))?;
    let mut hasher = Hasher::new(descriptor.digest().algorithm());
    let mut buffer = vec![0_u8; 256 * 1024];
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(io_error("read", source_name, source)),
        };
        hasher.update(&buffer[..read]);
        temporary
            .write_all(&buffer[..read])
            .map_err(|source| io_error("write", temporary.path(), source))?;
        progress(hasher.bytes());
    }
    let size = hasher.bytes();
    let actual = hasher.finish();
    if actual != *descriptor.digest() || size != descriptor.size() {
        return Err(Error::BlobMismatch {
            path: source_name.to_path_buf(),
            expected: descriptor.digest().to_string(),
            expected_size: descriptor.size(),
            actual: actual.to_string(),
            actual_size: size,
        });
    }
    temporary
        .as_file()
        .sync_all()
        .map_err(|source| io_error("sync", temporary.path(), source))?;
    temporary
        .persist(path)
        .map_err(|error| io_error("rename into", path, error.error))?;
    Ok(())
}

fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut temporary = tempfile::Builder::new()
        .prefix(".tank-index-")
        .tempfile_in(dir)
        .map_err(|source| io_error("create temporary file in", dir, source))?;
    temporary
        .write_all(bytes)
        .and_then(|()| temporary.as_file().sync_all())
        .map_err(|source| io_error("write", temporary.path(), source))?;
    temporary
        .persist(path)
        .map_err(|error| io_error("rename into", path, error.error))?;
    Ok(())
}

/// One entry of a layout's `index.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayoutEntry {
    tag: Option<String>,
    descriptor: Descriptor,
    platform: Option<Platform>,
}

impl LayoutEntry {
    /// The tag (`org.opencontainers.image.ref.name`), if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The manifest or index the entry points at.
    pub fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    /// The platform the entry declares, if any.
    pub fn platform(&self) -> Option<&Platform> {
        self.platform.as_ref()
    }
}

/// An OCI image layout on disk, its `index.json` read.
#[derive(Clone, Debug)]
pub struct Layout {
    dir: PathBuf,
    entries: Vec<LayoutEntry>,
}

/// Opens the OCI image layout at `dir`: checks `oci-layout` and reads `index.json`. Blobs
/// are read (and verified) only by [`Layout::read`] and [`Layout::read_entry`].
pub fn read_layout(dir: &Path) -> Result<Layout, Error> {
    let layout_file = dir.join(LAYOUT_FILE);
    let marker = read_limited(&layout_file, LAYOUT_FILE_LIMIT)?;
    let version = serde_json::from_slice::<Value>(&marker)
        .ok()
        .and_then(|value| value["imageLayoutVersion"].as_str().map(str::to_owned));
    match version {
        Some(version) if version.starts_with("1.") => {}
        _ => {
            return Err(invalid_layout(
                &layout_file,
                "it does not declare imageLayoutVersion 1.x",
            ));
        }
    }
    let index_path = dir.join("index.json");
    let bytes = read_limited(&index_path, MANIFEST_SIZE_LIMIT)?;
    let index: Value = serde_json::from_slice(&bytes)
        .map_err(|error| invalid_layout(&index_path, error.to_string()))?;
    let manifests = match &index["manifests"] {
        Value::Array(manifests) => manifests.as_slice(),
        Value::Null => &[],
        _ => return Err(invalid_layout(&index_path, "manifests is not an array")),
    };
    let mut entries = Vec::with_capacity(manifests.len());
    for manifest in manifests {
        let descriptor = parse_descriptor(manifest, &index_path)?;
        let tag = manifest["annotations"][REF_NAME_ANNOTATION]
            .as_str()
            .map(str::to_owned);
        let platform = match (
            manifest["platform"]["os"].as_str(),
            manifest["platform"]["architecture"].as_str(),
        ) {
            (Some(os), Some(architecture)) => Some(Platform::new(
                os,
                architecture,
                manifest["platform"]["variant"].as_str(),
            )),
            _ => None,
        };
        entries.push(LayoutEntry {
            tag,
            descriptor,
            platform,
        });
    }
    Ok(Layout {
        dir: dir.to_path_buf(),
        entries,
    })
}

impl Layout {
    /// The layout's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The entries of `index.json`, in its order.
    pub fn entries(&self) -> &[LayoutEntry] {
        &self.entries
    }

    /// The tags, in `index.json` order.
    pub fn tags(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().filter_map(LayoutEntry::tag)
    }

    /// The entry tagged `tag` (the last one, if a layout repeats a tag).
    pub fn resolve(&self, tag: &str) -> Option<&LayoutEntry> {
        self.entries
            .iter()
            .rev()
            .find(|entry| entry.tag() == Some(tag))
    }

    /// Reads the image or index tagged `tag`, verifying every blob.
    pub fn read(&self, tag: &str) -> Result<ImageOrIndex, Error> {
        let entry = self.resolve(tag).ok_or_else(|| Error::TagNotFound {
            tag: tag.to_owned(),
            layout: self.dir.clone(),
        })?;
        self.read_entry(entry)
    }

    /// Reads the image or index of one entry, verifying the size and digest of every blob
    /// (layers are streamed through the hash, not held in memory). Layer blobs of the
    /// returned image are the layout's files.
    pub fn read_entry(&self, entry: &LayoutEntry) -> Result<ImageOrIndex, Error> {
        let descriptor = entry.descriptor();
        let path = blob_path(&self.dir, descriptor.digest());
        let bytes = self.read_small_blob(descriptor, MANIFEST_SIZE_LIMIT)?;
        let document: Value = serde_json::from_slice(&bytes)
            .map_err(|error| invalid_layout(&path, error.to_string()))?;
        let media_type = document["mediaType"]
            .as_str()
            .unwrap_or(descriptor.media_type());
        let format = Format::of_media_type(media_type).ok_or_else(|| {
            invalid_layout(
                &path,
                format!("unsupported manifest media type {media_type:?}"),
            )
        })?;
        let tag = entry.tag.clone();
        if document.get("manifests").is_none() {
            let image = self.read_image(format, bytes, descriptor.digest(), &document, tag)?;
            return Ok(ImageOrIndex::Image(image));
        }
        let Some(children) = document["manifests"].as_array() else {
            return Err(invalid_layout(&path, "manifests is not an array"));
        };
        let mut images = Vec::with_capacity(children.len());
        for child in children {
            let child = parse_descriptor(child, &path)?;
            let child_path = blob_path(&self.dir, child.digest());
            let child_format = Format::of_media_type(child.media_type());
            if child.media_type() == OCI_INDEX
                || child.media_type() == crate::assemble::DOCKER_MANIFEST_LIST
            {
                return Err(invalid_layout(&path, "nested indexes are not supported"));
            }
            let child_bytes = self.read_small_blob(&child, MANIFEST_SIZE_LIMIT)?;
            let child_document: Value = serde_json::from_slice(&child_bytes)
                .map_err(|error| invalid_layout(&child_path, error.to_string()))?;
            let child_format = child_document["mediaType"]
                .as_str()
                .and_then(Format::of_media_type)
                .or(child_format)
                .ok_or_else(|| invalid_layout(&child_path, "unsupported manifest media type"))?;
            images.push(self.read_image(
                child_format,
                child_bytes,
                child.digest(),
                &child_document,
                None,
            )?);
        }
        Ok(ImageOrIndex::Index(ImageIndex::from_parts(
            format,
            bytes,
            descriptor.digest().clone(),
            images,
            annotations_of(&document),
        )))
    }

    fn read_image(
        &self,
        format: Format,
        bytes: Vec<u8>,
        digest: &Digest,
        document: &Value,
        tag: Option<String>,
    ) -> Result<Image, Error> {
        let path = blob_path(&self.dir, digest);
        let config_descriptor = parse_descriptor(&document["config"], &path)?;
        let config = self.read_small_blob(&config_descriptor, CONFIG_SIZE_LIMIT)?;
        let config_path = blob_path(&self.dir, config_descriptor.digest());
        let config_json: Value = serde_json::from_slice(&config)
            .map_err(|error| invalid_layout(&config_path, error.to_string()))?;
        let diff_ids = match config_json["rootfs"]["diff_ids"].as_array() {
            Some(ids) => ids
                .iter()
                .map(|id| {
                    id.as_str()
                        .and_then(|id| id.parse::<Digest>().ok())
                        .ok_or_else(|| {
                            invalid_layout(&config_path, format!("invalid diff_id {id}"))
                        })
                })
                .collect::<Result<Vec<Digest>, Error>>()?,
            None => Vec::new(),
        };
        let layer_values = match &document["layers"] {
            Value::Array(layers) => layers.as_slice(),
            Value::Null => &[],
            _ => return Err(invalid_layout(&path, "layers is not an array")),
        };
        let reference = format!("{}@{digest}", self.dir.display());
        if layer_values.len() != diff_ids.len() {
            return Err(Error::LayerCountMismatch {
                reference,
                layers: layer_values.len(),
                diff_ids: diff_ids.len(),
            });
        }
        let mut layers = Vec::with_capacity(layer_values.len());
        for (index, (value, diff_id)) in layer_values.iter().zip(diff_ids).enumerate() {
            let descriptor = parse_descriptor(value, &path)?;
            let compression =
                match tank_layer::Compression::from_media_type(descriptor.media_type()) {
                    Ok(tank_layer::Compression::None) => Compression::None,
                    Ok(tank_layer::Compression::Gzip) => Compression::Gzip,
                    Ok(tank_layer::Compression::Zstd) => Compression::Zstd,
                    _ => {
                        return Err(Error::UnsupportedLayer {
                            reference,
                            index,
                            digest: descriptor.digest().to_string(),
                            media_type: descriptor.media_type().to_owned(),
                        });
                    }
                };
            let layer_path = blob_path(&self.dir, descriptor.digest());
            verify_file(&layer_path, &descriptor)?;
            let blob = LayerBlob::from_verified_file(
                layer_path,
                compression,
                descriptor.digest().clone(),
                descriptor.size(),
                diff_id,
            );
            layers.push((descriptor, blob));
        }
        Ok(Image::from_parts(
            format,
            bytes,
            digest.clone(),
            config,
            config_descriptor,
            layers,
            annotations_of(document),
            tag,
        ))
    }

    /// Reads a manifest, index or config blob whole, after checking its declared size
    /// against `limit`, and verifies it.
    fn read_small_blob(&self, descriptor: &Descriptor, limit: u64) -> Result<Vec<u8>, Error> {
        let path = blob_path(&self.dir, descriptor.digest());
        if descriptor.size() > limit {
            return Err(invalid_layout(
                &path,
                format!(
                    "declared size {} is above the limit of {limit} bytes",
                    descriptor.size()
                ),
            ));
        }
        let bytes = read_limited(&path, limit)?;
        let actual = Digest::of(descriptor.digest().algorithm(), &bytes);
        if actual != *descriptor.digest() || bytes.len() as u64 != descriptor.size() {
            return Err(Error::BlobMismatch {
                path,
                expected: descriptor.digest().to_string(),
                expected_size: descriptor.size(),
                actual: actual.to_string(),
                actual_size: bytes.len() as u64,
            });
        }
        Ok(bytes)
    }
}

/// Streams a file through the hash of its descriptor and checks digest and size.
fn verify_file(path: &Path, descriptor: &Descriptor) -> Result<(), Error> {
    let file = File::open(path).map_err(|source| io_error("open", path, source))?;
    let mut hasher = Hasher::new(descriptor.digest().algorithm());
    io::copy(&mut BufReader::with_capacity(256 * 1024, file), &mut hasher)
        .map_err(|source| io_error("read", path, source))?;
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

/// Reads a whole regular file of at most `limit` bytes. Opened non-blocking: a fifo in a
/// layout fails instead of hanging the command.
pub(crate) fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, Error> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(|source| io_error("open", path, source))?;
    let metadata = file
        .metadata()
        .map_err(|source| io_error("stat", path, source))?;
    if !metadata.is_file() {
        return Err(invalid_layout(path, "it is not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| io_error("read", path, source))?;
    if bytes.len() as u64 > limit {
        return Err(invalid_layout(
            path,
            format!("it is larger than the limit of {limit} bytes"),
        ));
    }
    Ok(bytes)
}

fn parse_descriptor(value: &Value, path: &Path) -> Result<Descriptor, Error> {
    let media_type = value["mediaType"]
        .as_str()
        .ok_or_else(|| invalid_layout(path, format!("descriptor without mediaType: {value}")))?;
    let digest_text = value["digest"]
        .as_str()
        .ok_or_else(|| invalid_layout(path, format!("descriptor without digest: {value}")))?;
    let digest = digest_text.parse::<Digest>().map_err(|error| {
        invalid_layout(path, format!("descriptor digest {digest_text:?}: {error}"))
    })?;
    let size = value["size"]
        .as_u64()
        .ok_or_else(|| invalid_layout(path, format!("descriptor without size: {value}")))?;
    Ok(Descriptor::new(media_type, digest, size))
}

fn annotations_of(document: &Value) -> BTreeMap<String, String> {
    document["annotations"]
        .as_object()
        .map(|map| {
            map.iter()
                .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

fn io_error(operation: &'static str, path: &Path, source: io::Error) -> Error {
    Error::Io {
        operation,
        path: path.to_path_buf(),
        source,
    }
}

fn invalid_layout(path: &Path, problem: impl Into<String>) -> Error {
    Error::InvalidLayout {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}
