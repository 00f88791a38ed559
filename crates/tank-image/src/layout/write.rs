//! The one layout writer: [`write_layout`] puts images and indexes (every blob through
//! `blob_file`) and their `index.json` entries into a layout, replacing `index.json` whole.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write as _};
use std::path::Path;

use serde_json::{Map, Value};
use tank_registry::MANIFEST_LIMIT;

use crate::Error;
use crate::assemble::{Image, check_tag};
use crate::build::BlobRef;
use crate::layout::blob_file::write_blob;
use crate::layout::read::read_limited;
use crate::layout::{LAYOUT_CONTENT, LAYOUT_FILE, LayoutItem, invalid_layout, io_error};
use crate::oci::canonical::canonical_bytes;
use crate::oci::{OCI_INDEX, REF_NAME_ANNOTATION};

/// Writes images and indexes into the OCI image layout at `dir` (created if missing; an
/// existing layout is added to): `oci-layout`, every blob under `blobs/<alg>/<hex>` (file
/// backed layers are streamed, and the bytes copied are checked against their digest), and
/// one `index.json` entry per item. A tag (`org.opencontainers.image.ref.name`) already in
/// `index.json` moves to the new item. An item given without a tag takes the image's own
/// [`Image::tag`], if any; otherwise it is stored untagged.
///
/// A blob file already present with the declared size is kept as it is (blobs are named by
/// their digest); [`Layout::read_entry`](crate::Layout::read_entry) verifies it when it is read.
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
    let mut index = match read_limited(&index_path, MANIFEST_LIMIT) {
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
