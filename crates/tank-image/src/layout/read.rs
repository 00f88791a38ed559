//! The one layout reader: [`read_layout`] opens a layout (`oci-layout`, `index.json`);
//! [`Layout::read_entry`] reads an image or index with every blob verified against its
//! descriptor (manifests, indexes and configs whole, layers streamed through the hash), and
//! [`Layout::read_image`] reads an image of a manifest held in memory from the layout's blobs.

use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::Path;

use serde_json::Value;
use tank_reference::{Digest, Hasher};
use tank_registry::{MANIFEST_LIMIT, ManifestKind};

use crate::assemble::{Image, ImageIndex};
use crate::build::LayerBlob;
use crate::layout::blob_file::blob_path;
use crate::layout::{
    ImageOrIndex, LAYOUT_FILE, LAYOUT_FILE_LIMIT, Layout, LayoutEntry, invalid_layout, io_error,
};
use crate::oci::document::{self, Document};
use crate::oci::{Descriptor, Format, REF_NAME_ANNOTATION, is_index_media_type};
use crate::{CONFIG_SIZE_LIMIT, Error, Platform};

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
    let bytes = read_limited(&index_path, MANIFEST_LIMIT)?;
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
        let document = self.read_document(entry.descriptor())?;
        let ManifestKind::Index(index) = document.kind() else {
            let image = self.read_image(&document, entry.tag.clone())?;
            return Ok(ImageOrIndex::Image(image));
        };
        let path = blob_path(&self.dir, document.digest());
        let mut children = Vec::with_capacity(index.manifests().len());
        for child in index.manifests() {
            let child = descriptor_of(child, &path)?;
            if is_index_media_type(child.media_type()) {
                return Err(invalid_layout(&path, "nested indexes are not supported"));
            }
            let child = self.read_document(&child)?;
            if matches!(child.kind(), ManifestKind::Index(_)) {
                return Err(invalid_layout(&path, "nested indexes are not supported"));
            }
            children.push(child);
        }
        Ok(ImageOrIndex::Index(self.read_index(&document, &children)?))
    }

    /// The index `index` of the images `images` (its entries, read already), each image's
    /// config and layers read from the layout's blobs and verified.
    pub(crate) fn read_index(
        &self,
        index: &Document,
        images: &[Document],
    ) -> Result<ImageIndex, Error> {
        let format = format_of(index, &blob_path(&self.dir, index.digest()))?;
        let images = images
            .iter()
            .map(|image| self.read_image(image, None))
            .collect::<Result<Vec<Image>, Error>>()?;
        Ok(ImageIndex::from_parts(
            format,
            index.raw().to_vec(),
            index.digest().clone(),
            images,
            index.annotations(),
        ))
    }

    /// The image of the manifest `manifest`, its config and layers read from the layout's
    /// blobs: the config verified whole, each layer file streamed through the hash of its
    /// descriptor. The image's layer blobs are the layout's files.
    pub(crate) fn read_image(
        &self,
        manifest: &Document,
        tag: Option<String>,
    ) -> Result<Image, Error> {
        let digest = manifest.digest();
        let path = blob_path(&self.dir, digest);
        let ManifestKind::Image(image) = manifest.kind() else {
            return Err(invalid_layout(
                &path,
                "it is an index, not an image manifest",
            ));
        };
        let format = format_of(manifest, &path)?;
        let config_descriptor = descriptor_of(image.config(), &path)?;
        let config = self.read_small_blob(&config_descriptor, CONFIG_SIZE_LIMIT)?;
        let config_path = blob_path(&self.dir, config_descriptor.digest());
        let config_json: Value = serde_json::from_slice(&config)
            .map_err(|error| invalid_layout(&config_path, error.to_string()))?;
        let reference = format!("{}@{digest}", self.dir.display());
        let diff_ids = document::diff_ids(&config_json, &reference, config_descriptor.digest())?;
        if image.layers().len() != diff_ids.len() {
            return Err(Error::LayerCountMismatch {
                reference,
                layers: image.layers().len(),
                diff_ids: diff_ids.len(),
            });
        }
        let mut layers = Vec::with_capacity(diff_ids.len());
        for (index, (layer, diff_id)) in image.layers().iter().zip(diff_ids).enumerate() {
            let descriptor = descriptor_of(layer, &path)?;
            let compression = document::layer_compression(&reference, index, &descriptor)?;
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
            manifest.raw().to_vec(),
            digest.clone(),
            config,
            config_descriptor,
            layers,
            manifest.annotations(),
            tag,
        ))
    }

    /// Reads a manifest or index blob (verified) and parses it.
    fn read_document(&self, descriptor: &Descriptor) -> Result<Document, Error> {
        let bytes = self.read_small_blob(descriptor, MANIFEST_LIMIT)?;
        Document::parse(bytes, descriptor.digest().clone(), descriptor.media_type())
            .map_err(|problem| invalid_layout(&blob_path(&self.dir, descriptor.digest()), problem))
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
        let mut hasher = Hasher::new(descriptor.digest().algorithm());
        hasher.update(&bytes);
        super::blob_file::check_hashed(hasher, &path, descriptor)?;
        Ok(bytes)
    }
}

/// Streams a file through the hash of its descriptor and checks digest and size.
fn verify_file(path: &Path, descriptor: &Descriptor) -> Result<(), Error> {
    let file = File::open(path).map_err(|source| io_error("open", path, source))?;
    let mut hasher = Hasher::new(descriptor.digest().algorithm());
    io::copy(
        &mut BufReader::with_capacity(crate::task::IO_BUFFER, file),
        &mut hasher,
    )
    .map_err(|source| io_error("read", path, source))?;
    super::blob_file::check_hashed(hasher, path, descriptor)
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

/// The format of a manifest or index read from `path`.
fn format_of(document: &Document, path: &Path) -> Result<Format, Error> {
    document.format().ok_or_else(|| {
        invalid_layout(
            path,
            format!(
                "unsupported manifest media type {:?}",
                document.media_type()
            ),
        )
    })
}

/// A descriptor of the document at `path`, its digest one tank can verify.
fn descriptor_of(
    descriptor: &oci_spec::image::Descriptor,
    path: &Path,
) -> Result<Descriptor, Error> {
    Descriptor::from_oci(descriptor).map_err(|error| {
        invalid_layout(
            path,
            format!(
                "descriptor digest {:?}: {error}",
                descriptor.digest().to_string()
            ),
        )
    })
}
