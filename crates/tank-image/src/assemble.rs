//! Image assembly: a config plus layers become an [`Image`] whose every size and digest is
//! computed here (layers, config, manifest), never maintained by hand; several images become
//! an [`ImageIndex`].

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use tank_reference::{Algorithm, Digest};

use crate::build::{BlobRef, LayerBlob};
use crate::oci::canonical::canonical_bytes;
use crate::oci::{Descriptor, Format};
use crate::{Error, Platform};

/// What a caller may choose when assembling an image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AssembleOptions {
    /// The media types to use.
    pub format: Format,
    /// Manifest annotations (OCI only: Docker manifests have none, and asking is an error).
    pub annotations: BTreeMap<String, String>,
    /// The tag the image is meant for (an OCI layout `ref.name`); checked here.
    pub tag: Option<String>,
    /// Sets the config's `created` (RFC 3339) when given.
    pub created: Option<String>,
}

/// An assembled image: manifest, config, and ordered layers with the blobs backing them.
///
/// Every size and digest it declares was computed from the bytes it holds.
#[derive(Clone, Debug)]
pub struct Image {
    format: Format,
    manifest: Vec<u8>,
    manifest_digest: Digest,
    config: Vec<u8>,
    config_descriptor: Descriptor,
    layers: Vec<(Descriptor, LayerBlob)>,
    annotations: BTreeMap<String, String>,
    tag: Option<String>,
    platform: Option<Platform>,
}

/// Assembles `config` and `layers` (lowest first) into an image.
///
/// Sets `rootfs` to `{"type": "layers", "diff_ids": […]}` from the layers, checks that a
/// `history` has exactly as many entries without `empty_layer: true` as there are layers,
/// serialises the config with sorted keys, and computes every descriptor and the manifest
/// digest.
///
/// ```
/// use tank_image::{AssembleOptions, LayerEntry, LayerOptions, assemble, layer_from_entries};
///
/// let options = LayerOptions { in_memory: true, ..LayerOptions::default() };
/// let layer = layer_from_entries(&[LayerEntry::file("etc/motd", "hi\n", 0o644)], &options)?;
/// let config = serde_json::json!({"architecture": "amd64", "os": "linux", "config": {}});
/// let image = assemble(config, vec![layer], &AssembleOptions::default())?;
/// assert_eq!(image.layers().count(), 1);
/// assert!(image.manifest_digest().to_string().starts_with("sha256:"));
/// # Ok::<(), tank_image::Error>(())
/// ```
pub fn assemble(
    config: Value,
    layers: Vec<LayerBlob>,
    options: &AssembleOptions,
) -> Result<Image, Error> {
    let Value::Object(mut config) = config else {
        return Err(Error::InvalidImageConfig {
            reason: "it is not a JSON object".to_owned(),
        });
    };
    if let Some(tag) = &options.tag {
        check_tag(tag)?;
    }
    if options.format == Format::DockerV2 && !options.annotations.is_empty() {
        return Err(Error::UnsupportedByFormat {
            format: options.format,
            what: "manifest annotations".to_owned(),
        });
    }
    match config.get("history") {
        None | Some(Value::Null) => {}
        Some(Value::Array(history)) => {
            let non_empty = history
                .iter()
                .filter(|entry| entry.get("empty_layer") != Some(&Value::Bool(true)))
                .count();
            if non_empty != layers.len() {
                return Err(Error::HistoryMismatch {
                    history: non_empty,
                    layers: layers.len(),
                });
            }
        }
        Some(_) => {
            return Err(Error::InvalidImageConfig {
                reason: "history is not an array".to_owned(),
            });
        }
    }
    if let Some(created) = &options.created {
        config.insert("created".into(), Value::from(created.clone()));
    }
    let diff_ids: Vec<Value> = layers
        .iter()
        .map(|layer| Value::from(layer.diff_id().to_string()))
        .collect();
    let mut rootfs = Map::new();
    rootfs.insert("type".into(), Value::from("layers"));
    rootfs.insert("diff_ids".into(), Value::Array(diff_ids));
    config.insert("rootfs".into(), Value::Object(rootfs));
    let platform = platform_of(&config);
    let config_bytes = canonical_bytes(&Value::Object(config));
    let config_descriptor = Descriptor::new(
        options.format.config_media_type(),
        Digest::of(Algorithm::Sha256, &config_bytes),
        config_bytes.len() as u64,
    );

    let mut described = Vec::with_capacity(layers.len());
    for layer in layers {
        let media_type = options.format.layer_media_type(layer.compression())?;
        let descriptor = Descriptor::new(media_type, layer.digest().clone(), layer.size());
        described.push((descriptor, layer));
    }
    let mut manifest = Map::new();
    manifest.insert("schemaVersion".into(), Value::from(2));
    manifest.insert(
        "mediaType".into(),
        Value::from(options.format.manifest_media_type()),
    );
    manifest.insert("config".into(), Value::Object(config_descriptor.to_json()));
    manifest.insert(
        "layers".into(),
        Value::Array(
            described
                .iter()
                .map(|(descriptor, _)| Value::Object(descriptor.to_json()))
                .collect(),
        ),
    );
    if !options.annotations.is_empty() {
        manifest.insert("annotations".into(), annotations_json(&options.annotations));
    }
    let manifest = canonical_bytes(&Value::Object(manifest));
    Ok(Image {
        format: options.format,
        manifest_digest: Digest::of(Algorithm::Sha256, &manifest),
        manifest,
        config: config_bytes,
        config_descriptor,
        layers: described,
        annotations: options.annotations.clone(),
        tag: options.tag.clone(),
        platform,
    })
}

impl Image {
    /// An image read back from stored parts whose digests the caller verified.
    #[expect(
        clippy::too_many_arguments,
        reason = "an internal constructor of every part"
    )]
    pub(crate) fn from_parts(
        format: Format,
        manifest: Vec<u8>,
        manifest_digest: Digest,
        config: Vec<u8>,
        config_descriptor: Descriptor,
        layers: Vec<(Descriptor, LayerBlob)>,
        annotations: BTreeMap<String, String>,
        tag: Option<String>,
    ) -> Image {
        let platform = match serde_json::from_slice::<Value>(&config) {
            Ok(Value::Object(map)) => platform_of(&map),
            _ => None,
        };
        Image {
            format,
            manifest,
            manifest_digest,
            config,
            config_descriptor,
            layers,
            annotations,
            tag,
            platform,
        }
    }

    /// The media type family.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The manifest's bytes, exactly as its digest covers them.
    pub fn manifest_bytes(&self) -> &[u8] {
        &self.manifest
    }

    /// The digest of [`Image::manifest_bytes`].
    pub fn manifest_digest(&self) -> &Digest {
        &self.manifest_digest
    }

    /// A descriptor of the manifest (for an index or an OCI layout).
    pub fn manifest_descriptor(&self) -> Descriptor {
        Descriptor::new(
            self.format.manifest_media_type(),
            self.manifest_digest.clone(),
            self.manifest.len() as u64,
        )
    }

    /// The config's bytes.
    pub fn config_bytes(&self) -> &[u8] {
        &self.config
    }

    /// The config's descriptor.
    pub fn config_descriptor(&self) -> &Descriptor {
        &self.config_descriptor
    }

    /// The manifest annotations.
    pub fn annotations(&self) -> &BTreeMap<String, String> {
        &self.annotations
    }

    /// The tag given when assembling, or found in an OCI layout.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The platform the config declares (`os`, `architecture`, `variant`), if it declares
    /// `os` and `architecture`.
    pub fn platform(&self) -> Option<&Platform> {
        self.platform.as_ref()
    }

    /// The layers, lowest first, as (descriptor, diff_id, blob).
    pub fn layers(&self) -> impl ExactSizeIterator<Item = (&Descriptor, &Digest, &LayerBlob)> {
        self.layers
            .iter()
            .map(|(descriptor, blob)| (descriptor, blob.diff_id(), blob))
    }

    /// The blob with this digest: the manifest, the config or a layer.
    pub fn blob(&self, digest: &Digest) -> Option<BlobRef<'_>> {
        if *digest == self.manifest_digest {
            return Some(BlobRef::Bytes(&self.manifest));
        }
        if *digest == *self.config_descriptor.digest() {
            return Some(BlobRef::Bytes(&self.config));
        }
        self.layers
            .iter()
            .find(|(descriptor, _)| descriptor.digest() == digest)
            .map(|(_, blob)| blob.blob())
    }

    /// Every blob the manifest references (config first, then layers), with its descriptor.
    pub(crate) fn referenced_blobs(&self) -> Vec<(&Descriptor, BlobRef<'_>)> {
        let mut blobs = vec![(&self.config_descriptor, BlobRef::Bytes(&self.config[..]))];
        blobs.extend(
            self.layers
                .iter()
                .map(|(descriptor, blob)| (descriptor, blob.blob())),
        );
        blobs
    }
}

/// What a caller may choose when building an index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexOptions {
    /// The media types to use; every image must have the same format.
    pub format: Format,
    /// Index annotations (OCI only).
    pub annotations: BTreeMap<String, String>,
}

/// Several images, one per platform, and the index (Docker: manifest list) naming them.
#[derive(Clone, Debug)]
pub struct ImageIndex {
    format: Format,
    bytes: Vec<u8>,
    digest: Digest,
    images: Vec<Image>,
    annotations: BTreeMap<String, String>,
}

impl ImageIndex {
    /// An index of `images`, in the order given; each must declare its platform in its
    /// config and have the index's format.
    pub fn new(images: Vec<Image>, options: &IndexOptions) -> Result<ImageIndex, Error> {
        if options.format == Format::DockerV2 && !options.annotations.is_empty() {
            return Err(Error::UnsupportedByFormat {
                format: options.format,
                what: "index annotations".to_owned(),
            });
        }
        let mut manifests = Vec::with_capacity(images.len());
        for image in &images {
            if image.format != options.format {
                return Err(Error::MixedFormats {
                    index: options.format,
                    image: image.format,
                    digest: image.manifest_digest.to_string(),
                });
            }
            let platform = image.platform().ok_or_else(|| Error::MissingPlatform {
                digest: image.manifest_digest.to_string(),
            })?;
            let mut entry = image.manifest_descriptor().to_json();
            entry.insert("platform".into(), platform_json(platform));
            manifests.push(Value::Object(entry));
        }
        let mut index = Map::new();
        index.insert("schemaVersion".into(), Value::from(2));
        index.insert(
            "mediaType".into(),
            Value::from(options.format.index_media_type()),
        );
        index.insert("manifests".into(), Value::Array(manifests));
        if !options.annotations.is_empty() {
            index.insert("annotations".into(), annotations_json(&options.annotations));
        }
        let bytes = canonical_bytes(&Value::Object(index));
        Ok(ImageIndex {
            format: options.format,
            digest: Digest::of(Algorithm::Sha256, &bytes),
            bytes,
            images,
            annotations: options.annotations.clone(),
        })
    }

    /// An index read back from stored bytes whose digest the caller verified.
    pub(crate) fn from_parts(
        format: Format,
        bytes: Vec<u8>,
        digest: Digest,
        images: Vec<Image>,
        annotations: BTreeMap<String, String>,
    ) -> ImageIndex {
        ImageIndex {
            format,
            bytes,
            digest,
            images,
            annotations,
        }
    }

    /// The media type family.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The index's bytes, exactly as its digest covers them.
    pub fn manifest_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The digest of [`ImageIndex::manifest_bytes`].
    pub fn manifest_digest(&self) -> &Digest {
        &self.digest
    }

    /// A descriptor of the index.
    pub fn manifest_descriptor(&self) -> Descriptor {
        Descriptor::new(
            self.format.index_media_type(),
            self.digest.clone(),
            self.bytes.len() as u64,
        )
    }

    /// The images, in index order.
    pub fn images(&self) -> &[Image] {
        &self.images
    }

    /// The index annotations.
    pub fn annotations(&self) -> &BTreeMap<String, String> {
        &self.annotations
    }

    /// The image for exactly this platform, if the index has one.
    pub fn image_for(&self, platform: &Platform) -> Option<&Image> {
        self.images
            .iter()
            .find(|image| image.platform() == Some(platform))
    }

    /// The blob with this digest: the index itself or a blob of one of its images.
    pub fn blob(&self, digest: &Digest) -> Option<BlobRef<'_>> {
        if *digest == self.digest {
            return Some(BlobRef::Bytes(&self.bytes));
        }
        self.images.iter().find_map(|image| image.blob(digest))
    }
}

/// Checks a tag against the image-spec's `org.opencontainers.image.ref.name` grammar:
/// components of alphanumerics joined by `-`, `.`, `_`, `:`, `@`, `+` or `--`, separated by
/// `/`.
pub(crate) fn check_tag(tag: &str) -> Result<(), Error> {
    let invalid = |reason| Error::InvalidTag {
        tag: tag.to_owned(),
        reason,
    };
    if tag.is_empty() {
        return Err(invalid("it is empty"));
    }
    for component in tag.split('/') {
        let bytes = component.as_bytes();
        if bytes.is_empty() {
            return Err(invalid("it has an empty component"));
        }
        if !bytes[0].is_ascii_alphanumeric() || !bytes[bytes.len() - 1].is_ascii_alphanumeric() {
            return Err(invalid(
                "a component must start and end with a letter or digit",
            ));
        }
        let mut index = 0;
        while index < bytes.len() {
            let byte = bytes[index];
            if byte.is_ascii_alphanumeric() {
                index += 1;
                continue;
            }
            if !matches!(byte, b'-' | b'.' | b'_' | b':' | b'@' | b'+') {
                return Err(invalid(
                    "only letters, digits, '/' and the separators - . _ : @ + are allowed",
                ));
            }
            // One separator, or "--"; then an alphanumeric must follow.
            let next = bytes.get(index + 1).copied();
            let after = if byte == b'-' && next == Some(b'-') {
                index + 2
            } else {
                index + 1
            };
            if !bytes.get(after).is_some_and(u8::is_ascii_alphanumeric) {
                return Err(invalid("separators cannot follow one another"));
            }
            index = after;
        }
    }
    Ok(())
}

fn platform_of(config: &Map<String, Value>) -> Option<Platform> {
    let os = config.get("os")?.as_str()?;
    let architecture = config.get("architecture")?.as_str()?;
    let variant = config.get("variant").and_then(Value::as_str);
    Some(Platform::new(os, architecture, variant))
}

fn platform_json(platform: &Platform) -> Value {
    let mut map = Map::new();
    map.insert(
        "architecture".into(),
        Value::from(platform.architecture().to_owned()),
    );
    map.insert("os".into(), Value::from(platform.os().to_owned()));
    if let Some(variant) = platform.variant() {
        map.insert("variant".into(), Value::from(variant.to_owned()));
    }
    Value::Object(map)
}

fn annotations_json(annotations: &BTreeMap<String, String>) -> Value {
    Value::Object(
        annotations
            .iter()
            .map(|(key, value)| (key.clone(), Value::from(value.clone())))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_the_ref_name_grammar() {
        for good in ["latest", "v1.0", "a--b", "org/app:1.2+build", "x@y", "A_b"] {
            assert!(check_tag(good).is_ok(), "{good}");
        }
        for bad in ["", "-a", "a-", "a..b", "a/", "/a", "a b", "a---b", "é"] {
            assert!(
                matches!(check_tag(bad), Err(Error::InvalidTag { .. })),
                "{bad}"
            );
        }
    }
}
