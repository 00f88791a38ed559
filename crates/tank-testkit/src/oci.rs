//! Images, indexes and OCI image layouts built from layers and config settings, with every
//! size and digest computed here, in OCI or Docker media types.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde_json::{Map, Value, json};

use crate::json::canonical_json;
use crate::tarball::{Compression, TarBuilder};
use crate::{Error, sha256_digest};

/// The media types the builders write.
pub mod media_type {
    /// OCI image index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image config.
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// OCI uncompressed layer.
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    /// OCI gzip layer.
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// OCI zstd layer.
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    /// Docker manifest list.
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    /// Docker image manifest, schema 2.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker image config.
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// Docker uncompressed layer.
    pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
    /// Docker gzip layer.
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
}

/// The annotation that names a tag in an OCI layout's `index.json`.
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Which family of media types a manifest, index and its blobs use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MediaTypes {
    /// `application/vnd.oci.image.*`.
    #[default]
    Oci,
    /// `application/vnd.docker.*` (manifest v2 schema 2 and manifest lists).
    Docker,
}

impl MediaTypes {
    /// The image manifest media type.
    pub fn manifest(self) -> &'static str {
        match self {
            MediaTypes::Oci => media_type::OCI_MANIFEST,
            MediaTypes::Docker => media_type::DOCKER_MANIFEST,
        }
    }

    /// The index (manifest list) media type.
    pub fn index(self) -> &'static str {
        match self {
            MediaTypes::Oci => media_type::OCI_INDEX,
            MediaTypes::Docker => media_type::DOCKER_MANIFEST_LIST,
        }
    }

    /// The config media type.
    pub fn config(self) -> &'static str {
        match self {
            MediaTypes::Oci => media_type::OCI_CONFIG,
            MediaTypes::Docker => media_type::DOCKER_CONFIG,
        }
    }

    /// The layer media type for `compression`.
    pub fn layer(self, compression: Compression) -> &'static str {
        match (self, compression) {
            (MediaTypes::Oci, Compression::None) => media_type::OCI_LAYER,
            (MediaTypes::Oci, Compression::Gzip) => media_type::OCI_LAYER_GZIP,
            (MediaTypes::Docker, Compression::None) => media_type::DOCKER_LAYER,
            (MediaTypes::Docker, Compression::Gzip) => media_type::DOCKER_LAYER_GZIP,
            // Docker has no zstd layer type of its own; its engine accepts the OCI one.
            (_, Compression::Zstd) => media_type::OCI_LAYER_ZSTD,
        }
    }
}

/// An image platform: OS, architecture and optional variant.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Platform {
    os: String,
    architecture: String,
    variant: Option<String>,
}

impl Platform {
    /// A platform without variant, e.g. `Platform::new("linux", "amd64")`.
    pub fn new(os: impl Into<String>, architecture: impl Into<String>) -> Platform {
        Platform {
            os: os.into(),
            architecture: architecture.into(),
            variant: None,
        }
    }

    /// The same platform with a variant, e.g. `v8`.
    pub fn with_variant(mut self, variant: impl Into<String>) -> Platform {
        self.variant = Some(variant.into());
        self
    }

    /// The OS.
    pub fn os(&self) -> &str {
        &self.os
    }

    /// The architecture.
    pub fn architecture(&self) -> &str {
        &self.architecture
    }

    /// The variant, if any.
    pub fn variant(&self) -> Option<&str> {
        self.variant.as_deref()
    }

    /// The `platform` object of an index entry.
    pub fn to_json(&self) -> Value {
        let mut platform = json!({"architecture": self.architecture, "os": self.os});
        if let Some(variant) = &self.variant {
            platform["variant"] = json!(variant);
        }
        platform
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(formatter, "/{variant}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = Error;

    fn from_str(input: &str) -> Result<Platform, Error> {
        let parts: Vec<&str> = input.split('/').collect();
        if parts.iter().any(|part| part.is_empty()) {
            return Err(Error::InvalidPlatform {
                input: input.to_owned(),
            });
        }
        match parts.as_slice() {
            [os, architecture] => Ok(Platform::new(*os, *architecture)),
            [os, architecture, variant] => {
                Ok(Platform::new(*os, *architecture).with_variant(*variant))
            }
            _ => Err(Error::InvalidPlatform {
                input: input.to_owned(),
            }),
        }
    }
}

/// Content with its media type, digest and size: a layer, config, manifest or index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    media_type: String,
    digest: String,
    bytes: Vec<u8>,
}

impl Blob {
    /// A blob of `bytes`; the digest is computed.
    pub fn new(media_type: impl Into<String>, bytes: Vec<u8>) -> Blob {
        Blob {
            media_type: media_type.into(),
            digest: sha256_digest(&bytes),
            bytes,
        }
    }

    /// The media type.
    pub fn media_type(&self) -> &str {
        &self.media_type
    }

    /// `sha256:<hex>`.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The hex part of the digest, which is the blob's file name in a layout.
    pub fn hex(&self) -> &str {
        &self.digest["sha256:".len()..]
    }

    /// The size in bytes.
    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// The content.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The OCI descriptor `{mediaType, digest, size}`.
    pub fn descriptor(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size()})
    }
}

/// One `history` entry of an image config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The command that made the step.
    pub created_by: String,
    /// True when the step added no layer (e.g. `ENV`).
    pub empty_layer: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct LayerSource {
    tar: Vec<u8>,
    compression: Compression,
}

/// Builds one image: layers, a config and the manifest that ties them.
///
/// The config's `rootfs.diff_ids` come from the uncompressed layers and its `history` has one
/// entry per layer unless [`ImageBuilder::history`] is used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageBuilder {
    platform: Platform,
    media_types: MediaTypes,
    layers: Vec<LayerSource>,
    env: Vec<String>,
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    user: Option<String>,
    working_dir: Option<String>,
    labels: BTreeMap<String, String>,
    history: Vec<HistoryEntry>,
    created: Option<String>,
    annotations: BTreeMap<String, String>,
    raw_config: Option<Value>,
}

impl ImageBuilder {
    /// An image for `platform`, OCI media types, no layers yet.
    pub fn new(platform: Platform) -> ImageBuilder {
        ImageBuilder {
            platform,
            media_types: MediaTypes::Oci,
            layers: Vec::new(),
            env: Vec::new(),
            entrypoint: None,
            cmd: None,
            user: None,
            working_dir: None,
            labels: BTreeMap::new(),
            history: Vec::new(),
            created: None,
            annotations: BTreeMap::new(),
            raw_config: None,
        }
    }

    /// Uses Docker or OCI media types for the manifest, config and layers.
    pub fn media_types(mut self, media_types: MediaTypes) -> ImageBuilder {
        self.media_types = media_types;
        self
    }

    /// Adds a gzip layer built from `tar`.
    pub fn layer(self, tar: &TarBuilder) -> ImageBuilder {
        self.layer_tar(tar.build(), Compression::Gzip)
    }

    /// Adds a layer from raw tar bytes, compressed with `compression`.
    pub fn layer_tar(mut self, tar: Vec<u8>, compression: Compression) -> ImageBuilder {
        self.layers.push(LayerSource { tar, compression });
        self
    }

    /// Adds an `Env` entry (`KEY=value`).
    pub fn env(mut self, entry: impl Into<String>) -> ImageBuilder {
        self.env.push(entry.into());
        self
    }

    /// Sets `Entrypoint`.
    pub fn entrypoint(mut self, arguments: &[&str]) -> ImageBuilder {
        self.entrypoint = Some(
            arguments
                .iter()
                .map(|&argument| argument.to_owned())
                .collect(),
        );
        self
    }

    /// Sets `Cmd`.
    pub fn cmd(mut self, arguments: &[&str]) -> ImageBuilder {
        self.cmd = Some(
            arguments
                .iter()
                .map(|&argument| argument.to_owned())
                .collect(),
        );
        self
    }

    /// Sets `User`.
    pub fn user(mut self, user: impl Into<String>) -> ImageBuilder {
        self.user = Some(user.into());
        self
    }

    /// Sets `WorkingDir`.
    pub fn working_dir(mut self, dir: impl Into<String>) -> ImageBuilder {
        self.working_dir = Some(dir.into());
        self
    }

    /// Adds a config label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> ImageBuilder {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Adds a `history` entry; once any is added, no per-layer entries are generated.
    pub fn history(mut self, created_by: impl Into<String>, empty_layer: bool) -> ImageBuilder {
        self.history.push(HistoryEntry {
            created_by: created_by.into(),
            empty_layer,
        });
        self
    }

    /// Sets the config's `created` timestamp (RFC 3339); none by default.
    pub fn created(mut self, created: impl Into<String>) -> ImageBuilder {
        self.created = Some(created.into());
        self
    }

    /// Adds a manifest annotation (OCI media types only; Docker manifests have none).
    pub fn annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> ImageBuilder {
        self.annotations.insert(key.into(), value.into());
        self
    }

    /// Replaces the generated config document with `config`, as is (for configs that lie).
    pub fn raw_config(mut self, config: Value) -> ImageBuilder {
        self.raw_config = Some(config);
        self
    }

    /// The platform.
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// Computes the layers, config and manifest.
    pub fn build(&self) -> BuiltImage {
        let layers: Vec<Blob> = self
            .layers
            .iter()
            .map(|layer| {
                Blob::new(
                    self.media_types.layer(layer.compression),
                    layer.compression.apply(&layer.tar),
                )
            })
            .collect();
        let diff_ids: Vec<String> = self
            .layers
            .iter()
            .map(|layer| sha256_digest(&layer.tar))
            .collect();
        let config_document = match &self.raw_config {
            Some(config) => config.clone(),
            None => self.config_document(&diff_ids),
        };
        let config = Blob::new(self.media_types.config(), canonical_json(&config_document));

        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": self.media_types.manifest(),
            "config": config.descriptor(),
            "layers": layers.iter().map(Blob::descriptor).collect::<Vec<_>>(),
        });
        if self.media_types == MediaTypes::Oci && !self.annotations.is_empty() {
            manifest["annotations"] = json!(self.annotations);
        }
        let manifest = Blob::new(self.media_types.manifest(), canonical_json(&manifest));
        BuiltImage {
            platform: self.platform.clone(),
            manifest,
            config,
            layers,
            diff_ids,
        }
    }

    fn config_document(&self, diff_ids: &[String]) -> Value {
        let mut run = Map::new();
        if !self.env.is_empty() {
            run.insert("Env".to_owned(), json!(self.env));
        }
        if let Some(entrypoint) = &self.entrypoint {
            run.insert("Entrypoint".to_owned(), json!(entrypoint));
        }
        if let Some(cmd) = &self.cmd {
            run.insert("Cmd".to_owned(), json!(cmd));
        }
        if let Some(user) = &self.user {
            run.insert("User".to_owned(), json!(user));
        }
        if let Some(working_dir) = &self.working_dir {
            run.insert("WorkingDir".to_owned(), json!(working_dir));
        }
        if !self.labels.is_empty() {
            run.insert("Labels".to_owned(), json!(self.labels));
        }

        let history: Vec<Value> = if self.history.is_empty() {
            (1..=diff_ids.len())
                .map(|layer_number| json!({"created_by": format!("tank-testkit layer {layer_number}")}))
                .collect()
        } else {
            self.history
                .iter()
                .map(|entry| {
                    let mut item = json!({"created_by": entry.created_by});
                    if entry.empty_layer {
                        item["empty_layer"] = json!(true);
                    }
                    item
                })
                .collect()
        };

        let mut config = json!({
            "architecture": self.platform.architecture,
            "os": self.platform.os,
            "config": run,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        });
        if let Some(variant) = &self.platform.variant {
            config["variant"] = json!(variant);
        }
        if let Some(created) = &self.created {
            config["created"] = json!(created);
        }
        config
    }
}

/// A built image: its manifest, config and layer blobs, and the layers' diff_ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltImage {
    platform: Platform,
    manifest: Blob,
    config: Blob,
    layers: Vec<Blob>,
    diff_ids: Vec<String>,
}

impl BuiltImage {
    /// The platform it was built for.
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// The manifest blob.
    pub fn manifest(&self) -> &Blob {
        &self.manifest
    }

    /// The config blob.
    pub fn config(&self) -> &Blob {
        &self.config
    }

    /// The layer blobs (compressed as in the manifest), in order.
    pub fn layers(&self) -> &[Blob] {
        &self.layers
    }

    /// `sha256:<hex>` of each uncompressed layer, in order.
    pub fn diff_ids(&self) -> &[String] {
        &self.diff_ids
    }

    /// The index entry for this image: the manifest descriptor with its platform.
    pub fn index_entry(&self) -> Value {
        let mut entry = self.manifest.descriptor();
        entry["platform"] = self.platform.to_json();
        entry
    }

    /// Every blob: config, layers, then the manifest.
    pub fn blobs(&self) -> Vec<&Blob> {
        let mut blobs = vec![&self.config];
        blobs.extend(self.layers.iter());
        blobs.push(&self.manifest);
        blobs
    }
}

/// Builds a multi-platform index (OCI image index or Docker manifest list).
///
/// The index's media types are set here; each image keeps the media types it was given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexBuilder {
    media_types: MediaTypes,
    images: Vec<ImageBuilder>,
    annotations: BTreeMap<String, String>,
}

impl IndexBuilder {
    /// An empty OCI index.
    pub fn new() -> IndexBuilder {
        IndexBuilder::default()
    }

    /// Writes an OCI index or a Docker manifest list.
    pub fn media_types(mut self, media_types: MediaTypes) -> IndexBuilder {
        self.media_types = media_types;
        self
    }

    /// Adds an image.
    pub fn image(mut self, image: ImageBuilder) -> IndexBuilder {
        self.images.push(image);
        self
    }

    /// Adds an index annotation (OCI media types only).
    pub fn annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> IndexBuilder {
        self.annotations.insert(key.into(), value.into());
        self
    }

    /// Builds every image and the index over them.
    pub fn build(&self) -> BuiltIndex {
        let images: Vec<BuiltImage> = self.images.iter().map(ImageBuilder::build).collect();
        let mut index = json!({
            "schemaVersion": 2,
            "mediaType": self.media_types.index(),
            "manifests": images.iter().map(BuiltImage::index_entry).collect::<Vec<_>>(),
        });
        if self.media_types == MediaTypes::Oci && !self.annotations.is_empty() {
            index["annotations"] = json!(self.annotations);
        }
        BuiltIndex {
            index: Blob::new(self.media_types.index(), canonical_json(&index)),
            images,
        }
    }
}

/// A built index and its images.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltIndex {
    index: Blob,
    images: Vec<BuiltImage>,
}

impl BuiltIndex {
    /// The index blob.
    pub fn index(&self) -> &Blob {
        &self.index
    }

    /// The images, in index order.
    pub fn images(&self) -> &[BuiltImage] {
        &self.images
    }

    /// Every blob: each image's blobs, then the index.
    pub fn blobs(&self) -> Vec<&Blob> {
        let mut blobs: Vec<&Blob> = self.images.iter().flat_map(BuiltImage::blobs).collect();
        blobs.push(&self.index);
        blobs
    }
}

/// What a layout tag points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Built {
    /// A single image manifest.
    Image(BuiltImage),
    /// An index over several images.
    Index(BuiltIndex),
}

impl Built {
    /// The top blob: the manifest or the index.
    pub fn top(&self) -> &Blob {
        match self {
            Built::Image(image) => image.manifest(),
            Built::Index(index) => index.index(),
        }
    }

    /// The top blob's digest.
    pub fn digest(&self) -> &str {
        self.top().digest()
    }

    /// The top blob's media type.
    pub fn media_type(&self) -> &str {
        self.top().media_type()
    }

    /// Every blob.
    pub fn blobs(&self) -> Vec<&Blob> {
        match self {
            Built::Image(image) => image.blobs(),
            Built::Index(index) => index.blobs(),
        }
    }

    /// The single image, or `None` for an index.
    pub fn as_image(&self) -> Option<&BuiltImage> {
        match self {
            Built::Image(image) => Some(image),
            Built::Index(_) => None,
        }
    }

    /// The index, or `None` for a single image.
    pub fn as_index(&self) -> Option<&BuiltIndex> {
        match self {
            Built::Image(_) => None,
            Built::Index(index) => Some(index),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum LayoutEntry {
    Image(Box<ImageBuilder>),
    Index(IndexBuilder),
}

/// Writes an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`) whose
/// `index.json` names each entry with an `org.opencontainers.image.ref.name` annotation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OciLayoutBuilder {
    entries: Vec<(String, LayoutEntry)>,
}

impl OciLayoutBuilder {
    /// An empty layout.
    pub fn new() -> OciLayoutBuilder {
        OciLayoutBuilder::default()
    }

    /// Tags a single image.
    pub fn image(mut self, tag: impl Into<String>, image: ImageBuilder) -> OciLayoutBuilder {
        self.entries
            .push((tag.into(), LayoutEntry::Image(Box::new(image))));
        self
    }

    /// Tags an index.
    pub fn index(mut self, tag: impl Into<String>, index: IndexBuilder) -> OciLayoutBuilder {
        self.entries.push((tag.into(), LayoutEntry::Index(index)));
        self
    }

    /// Builds everything without writing.
    pub fn build(&self) -> LayoutSummary {
        let entries = self
            .entries
            .iter()
            .map(|(tag, entry)| {
                let built = match entry {
                    LayoutEntry::Image(image) => Built::Image(image.build()),
                    LayoutEntry::Index(index) => Built::Index(index.build()),
                };
                (tag.clone(), built)
            })
            .collect();
        LayoutSummary { entries }
    }

    /// Writes the layout into `dir` (created if needed; files already there are kept).
    pub fn write(&self, dir: &Path) -> Result<LayoutSummary, Error> {
        let summary = self.build();
        let blobs_dir = dir.join("blobs").join("sha256");
        fs::create_dir_all(&blobs_dir).map_err(|source| Error::io(&blobs_dir, source))?;
        for (_, built) in &summary.entries {
            for blob in built.blobs() {
                let path = blobs_dir.join(blob.hex());
                fs::write(&path, blob.bytes()).map_err(|source| Error::io(&path, source))?;
            }
        }

        let manifests: Vec<Value> = summary
            .entries
            .iter()
            .map(|(tag, built)| {
                let mut entry = match built {
                    Built::Image(image) => image.index_entry(),
                    Built::Index(index) => index.index().descriptor(),
                };
                entry["annotations"] = json!({ REF_NAME: tag });
                entry
            })
            .collect();
        let index = json!({
            "schemaVersion": 2,
            "mediaType": media_type::OCI_INDEX,
            "manifests": manifests,
        });
        let layout_path = dir.join("oci-layout");
        fs::write(
            &layout_path,
            canonical_json(&json!({"imageLayoutVersion": "1.0.0"})),
        )
        .map_err(|source| Error::io(&layout_path, source))?;
        let index_path = dir.join("index.json");
        fs::write(&index_path, canonical_json(&index))
            .map_err(|source| Error::io(&index_path, source))?;
        Ok(summary)
    }
}

/// What [`OciLayoutBuilder`] built, by tag, in `index.json` order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayoutSummary {
    entries: Vec<(String, Built)>,
}

impl LayoutSummary {
    /// `(tag, built)` pairs in `index.json` order.
    pub fn entries(&self) -> &[(String, Built)] {
        &self.entries
    }

    /// What `tag` points at.
    pub fn get(&self, tag: &str) -> Option<&Built> {
        self.entries
            .iter()
            .find(|(entry_tag, _)| entry_tag == tag)
            .map(|(_, built)| built)
    }
}

/// One tagged entry of an OCI layout's `index.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayoutTag {
    /// The `org.opencontainers.image.ref.name` annotation.
    pub tag: String,
    /// The entry's media type.
    pub media_type: String,
    /// The entry's digest.
    pub digest: String,
    /// The entry's size.
    pub size: u64,
}

/// Reads the tagged entries of the OCI layout in `dir`, in `index.json` order.
pub fn read_layout_tags(dir: &Path) -> Result<Vec<LayoutTag>, Error> {
    let path = dir.join("index.json");
    let bytes = fs::read(&path).map_err(|source| Error::io(&path, source))?;
    let index: Value = serde_json::from_slice(&bytes).map_err(|source| Error::Json {
        path: path.clone(),
        source,
    })?;
    let invalid = |problem: &str| Error::InvalidLayout {
        path: PathBuf::from(&path),
        problem: problem.to_owned(),
    };
    let manifests = index["manifests"]
        .as_array()
        .ok_or_else(|| invalid("no manifests array"))?;
    let mut tags = Vec::new();
    for entry in manifests {
        let Some(tag) = entry["annotations"][REF_NAME].as_str() else {
            continue;
        };
        tags.push(LayoutTag {
            tag: tag.to_owned(),
            media_type: entry["mediaType"]
                .as_str()
                .ok_or_else(|| invalid("an entry has no mediaType"))?
                .to_owned(),
            digest: entry["digest"]
                .as_str()
                .ok_or_else(|| invalid("an entry has no digest"))?
                .to_owned(),
            size: entry["size"]
                .as_u64()
                .ok_or_else(|| invalid("an entry has no size"))?,
        });
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;
    use crate::sha256_hex;

    fn small_image(platform: Platform, content: &str) -> ImageBuilder {
        ImageBuilder::new(platform)
            .layer(&TarBuilder::new().file("etc/content", content, 0o644))
            .cmd(&["/bin/true"])
    }

    fn parse(blob: &Blob) -> Value {
        serde_json::from_slice(blob.bytes()).unwrap()
    }

    #[test]
    fn platform_parses_and_prints() {
        let platform: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(platform, Platform::new("linux", "arm64").with_variant("v8"));
        assert_eq!(platform.to_string(), "linux/arm64/v8");
        assert_eq!(
            platform.to_json(),
            json!({"os": "linux", "architecture": "arm64", "variant": "v8"})
        );
        assert_eq!("linux/amd64".parse::<Platform>().unwrap().variant(), None);
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d", ""] {
            assert!(
                matches!(bad.parse::<Platform>(), Err(Error::InvalidPlatform { input }) if input == bad),
                "{bad:?} parsed"
            );
        }
    }

    #[test]
    fn image_digests_sizes_and_diff_ids_match_the_bytes() {
        let tar = TarBuilder::new().file("a", "alpha", 0o644);
        let built = ImageBuilder::new(Platform::new("linux", "amd64"))
            .layer(&tar)
            .layer_tar(
                TarBuilder::new().file("b", "beta", 0o600).build(),
                Compression::None,
            )
            .env("A=1")
            .entrypoint(&["/entry"])
            .cmd(&["arg"])
            .user("1000:1000")
            .working_dir("/work")
            .label("k", "v")
            .build();

        let manifest = parse(built.manifest());
        assert_eq!(manifest["mediaType"], media_type::OCI_MANIFEST);
        assert_eq!(manifest["config"]["digest"], built.config().digest());
        assert_eq!(manifest["config"]["size"], built.config().size());
        assert_eq!(manifest["config"]["mediaType"], media_type::OCI_CONFIG);
        let layers = manifest["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 2);
        for (descriptor, blob) in layers.iter().zip(built.layers()) {
            assert_eq!(descriptor["digest"], sha256_digest(blob.bytes()));
            assert_eq!(descriptor["size"], blob.bytes().len() as u64);
        }
        assert_eq!(layers[0]["mediaType"], media_type::OCI_LAYER_GZIP);
        assert_eq!(layers[1]["mediaType"], media_type::OCI_LAYER);
        assert_eq!(
            built.manifest().digest(),
            sha256_digest(built.manifest().bytes())
        );
        assert_eq!(built.manifest().hex(), sha256_hex(built.manifest().bytes()));

        let config = parse(built.config());
        assert_eq!(config["rootfs"]["diff_ids"][0], sha256_digest(&tar.build()));
        assert_ne!(config["rootfs"]["diff_ids"][0], layers[0]["digest"]);
        assert_eq!(config["rootfs"]["diff_ids"][1], layers[1]["digest"]);
        assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
        assert_eq!(
            built.diff_ids(),
            config["rootfs"]["diff_ids"].as_array().unwrap().as_slice()
        );
        assert_eq!(config["config"]["Env"], json!(["A=1"]));
        assert_eq!(config["config"]["Entrypoint"], json!(["/entry"]));
        assert_eq!(config["config"]["Cmd"], json!(["arg"]));
        assert_eq!(config["config"]["User"], "1000:1000");
        assert_eq!(config["config"]["WorkingDir"], "/work");
        assert_eq!(config["config"]["Labels"], json!({"k": "v"}));
        assert_eq!(config["history"].as_array().unwrap().len(), 2);
        assert_eq!(
            (config["os"].as_str(), config["architecture"].as_str()),
            (Some("linux"), Some("amd64"))
        );
        assert!(config.get("variant").is_none());
    }

    #[test]
    fn explicit_history_replaces_the_generated_one() {
        let built = small_image(Platform::new("linux", "amd64"), "x")
            .history("ADD etc /etc", false)
            .history("ENV A=1", true)
            .build();
        let config = parse(built.config());
        assert_eq!(
            config["history"],
            json!([{"created_by": "ADD etc /etc"}, {"created_by": "ENV A=1", "empty_layer": true}])
        );
    }

    #[test]
    fn raw_config_is_used_verbatim() {
        let lying = json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}});
        let built = small_image(Platform::new("linux", "amd64"), "x")
            .raw_config(lying.clone())
            .build();
        assert_eq!(parse(built.config()), lying);
        assert_eq!(built.diff_ids().len(), 1);
    }

    #[test]
    fn docker_media_types_are_used_throughout() {
        let built = small_image(Platform::new("linux", "amd64"), "x")
            .media_types(MediaTypes::Docker)
            .annotation("ignored", "docker manifests have no annotations")
            .build();
        let manifest = parse(built.manifest());
        assert_eq!(manifest["mediaType"], media_type::DOCKER_MANIFEST);
        assert_eq!(manifest["config"]["mediaType"], media_type::DOCKER_CONFIG);
        assert_eq!(
            manifest["layers"][0]["mediaType"],
            media_type::DOCKER_LAYER_GZIP
        );
        assert!(manifest.get("annotations").is_none());
        assert_eq!(built.manifest().media_type(), media_type::DOCKER_MANIFEST);

        let oci = small_image(Platform::new("linux", "amd64"), "x")
            .annotation("k", "v")
            .build();
        assert_eq!(parse(oci.manifest())["annotations"], json!({"k": "v"}));
    }

    #[test]
    fn index_lists_each_image_with_its_platform() {
        let index = IndexBuilder::new()
            .image(small_image(Platform::new("linux", "amd64"), "amd64"))
            .image(small_image(
                Platform::new("linux", "arm64").with_variant("v8"),
                "arm64",
            ))
            .build();
        let document = parse(index.index());
        assert_eq!(document["mediaType"], media_type::OCI_INDEX);
        let entries = document["manifests"].as_array().unwrap();
        assert_eq!(entries.len(), 2);
        for (entry, image) in entries.iter().zip(index.images()) {
            assert_eq!(entry["digest"], image.manifest().digest());
            assert_eq!(entry["size"], image.manifest().size());
            assert_eq!(entry["mediaType"], media_type::OCI_MANIFEST);
        }
        assert_eq!(
            entries[1]["platform"],
            json!({"os": "linux", "architecture": "arm64", "variant": "v8"})
        );
        assert_ne!(index.images()[0].layers()[0], index.images()[1].layers()[0]);
        assert_eq!(parse(index.images()[1].config())["variant"], "v8");

        let list = IndexBuilder::new()
            .media_types(MediaTypes::Docker)
            .image(
                small_image(Platform::new("linux", "amd64"), "a").media_types(MediaTypes::Docker),
            )
            .build();
        let document = parse(list.index());
        assert_eq!(document["mediaType"], media_type::DOCKER_MANIFEST_LIST);
        assert_eq!(
            document["manifests"][0]["mediaType"],
            media_type::DOCKER_MANIFEST
        );
    }

    #[test]
    fn layout_files_are_named_by_the_digest_of_their_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let summary = OciLayoutBuilder::new()
            .image("one", small_image(Platform::new("linux", "amd64"), "1"))
            .index(
                "many",
                IndexBuilder::new()
                    .image(small_image(Platform::new("linux", "amd64"), "2"))
                    .image(small_image(
                        Platform::new("linux", "arm").with_variant("v7"),
                        "3",
                    )),
            )
            .write(dir.path())
            .unwrap();

        let mut blob_count = 0;
        for entry in fs::read_dir(dir.path().join("blobs/sha256")).unwrap() {
            let entry = entry.unwrap();
            let bytes = fs::read(entry.path()).unwrap();
            assert_eq!(entry.file_name().to_str().unwrap(), sha256_hex(&bytes));
            blob_count += 1;
        }
        // One image (config, layer, manifest) plus two images and their index.
        assert_eq!(blob_count, 3 + 3 * 2 + 1);

        let layout: Value =
            serde_json::from_slice(&fs::read(dir.path().join("oci-layout")).unwrap()).unwrap();
        assert_eq!(layout, json!({"imageLayoutVersion": "1.0.0"}));
        let tags = read_layout_tags(dir.path()).unwrap();
        let names: Vec<&str> = tags.iter().map(|tag| tag.tag.as_str()).collect();
        assert_eq!(names, vec!["one", "many"]);
        assert_eq!(tags[0].digest, summary.get("one").unwrap().digest());
        assert_eq!(tags[0].media_type, media_type::OCI_MANIFEST);
        assert_eq!(tags[1].digest, summary.get("many").unwrap().digest());
        assert_eq!(tags[1].media_type, media_type::OCI_INDEX);
        assert_eq!(tags[1].size, summary.get("many").unwrap().top().size());
        assert!(summary.get("missing").is_none());
    }

    #[test]
    fn reading_a_directory_without_a_layout_fails() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            read_layout_tags(dir.path()),
            Err(Error::Io { .. })
        ));
        fs::write(dir.path().join("index.json"), "{}").unwrap();
        assert!(matches!(
            read_layout_tags(dir.path()),
            Err(Error::InvalidLayout { .. })
        ));
        fs::write(dir.path().join("index.json"), "not json").unwrap();
        assert!(matches!(
            read_layout_tags(dir.path()),
            Err(Error::Json { .. })
        ));
    }

    fn skopeo_inspect(dir: &Path, tag: &str, extra: &[&str]) -> std::process::Output {
        Command::new("skopeo")
            .arg("inspect")
            .args(extra)
            .arg(format!("oci:{}:{tag}", dir.display()))
            .output()
            .expect("skopeo must be installed (apt-get install skopeo)")
    }

    #[test]
    fn skopeo_reads_images_and_indexes_from_the_layout() {
        let dir = tempfile::tempdir().unwrap();
        let summary = OciLayoutBuilder::new()
            .image(
                "single",
                small_image(Platform::new("linux", "amd64"), "s").env("GREETING=hi"),
            )
            .index(
                "multi",
                IndexBuilder::new()
                    .image(small_image(Platform::new("linux", "amd64"), "a"))
                    .image(small_image(
                        Platform::new("linux", "arm64").with_variant("v8"),
                        "b",
                    )),
            )
            .image(
                "docker",
                small_image(Platform::new("linux", "amd64"), "d").media_types(MediaTypes::Docker),
            )
            .write(dir.path())
            .unwrap();

        let output = skopeo_inspect(dir.path(), "single", &[]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let inspected: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(inspected["Digest"], summary.get("single").unwrap().digest());
        assert_eq!(inspected["Env"], json!(["GREETING=hi"]));
        assert_eq!(inspected["Architecture"], "amd64");

        let output = skopeo_inspect(dir.path(), "multi", &["--raw"]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(output.stdout, summary.get("multi").unwrap().top().bytes());

        // skopeo 1.9's `oci:` transport refuses Docker media types in index.json, so the
        // Docker image is read through the `dir:` copy that pushes use.
        let source = crate::skopeo::LayoutSource::new(dir.path(), "docker").unwrap();
        assert!(
            source.reference().starts_with("dir:"),
            "{}",
            source.reference()
        );
        let raw = crate::skopeo::skopeo_inspect_raw(source.reference(), None).unwrap();
        assert_eq!(raw, summary.get("docker").unwrap().top().bytes());
        let oci_source = crate::skopeo::LayoutSource::new(dir.path(), "multi").unwrap();
        assert!(
            oci_source.reference().starts_with("oci:"),
            "{}",
            oci_source.reference()
        );

        let output = skopeo_inspect(dir.path(), "absent", &[]);
        assert!(!output.status.success());
    }

    #[test]
    fn building_twice_gives_identical_bytes() {
        let layout = OciLayoutBuilder::new().index(
            "latest",
            IndexBuilder::new()
                .image(small_image(Platform::new("linux", "amd64"), "a"))
                .image(small_image(Platform::new("linux", "arm64"), "b")),
        );
        assert_eq!(layout.build(), layout.build());
    }
}
