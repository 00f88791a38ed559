//! The one model of OCI documents in tank-image: [`Descriptor`] (a typed digest), the media
//! type families ([`Format`], re-using tank-registry's manifest media types), the `ref.name`
//! annotation, manifests and indexes parsed once ([`document`]) and canonical JSON
//! ([`canonical`]).

pub(crate) mod canonical;
pub(crate) mod document;

use std::fmt;

use serde_json::{Map, Value};
use tank_reference::Digest;

use crate::Error;
use tank_layer::Compression;

pub(crate) use tank_registry::media_type::{
    DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST,
};

/// OCI image config media type.
pub(crate) const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Docker image config media type.
pub(crate) const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// The annotation that names a tag in an OCI layout's `index.json`.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// The family of media types an image or index is written with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Format {
    /// OCI image-spec media types.
    #[default]
    Oci,
    /// Docker image manifest v2 schema 2 and manifest list media types.
    DockerV2,
}

impl Format {
    /// The media type of an image manifest.
    pub fn manifest_media_type(self) -> &'static str {
        match self {
            Format::Oci => OCI_MANIFEST,
            Format::DockerV2 => DOCKER_MANIFEST,
        }
    }

    /// The media type of an index (Docker: manifest list).
    pub fn index_media_type(self) -> &'static str {
        match self {
            Format::Oci => OCI_INDEX,
            Format::DockerV2 => DOCKER_MANIFEST_LIST,
        }
    }

    /// The media type of an image config.
    pub fn config_media_type(self) -> &'static str {
        match self {
            Format::Oci => OCI_CONFIG,
            Format::DockerV2 => DOCKER_CONFIG,
        }
    }

    /// The media type of a layer with this compression; Docker has none for zstd.
    pub fn layer_media_type(self, compression: Compression) -> Result<&'static str, Error> {
        match (self, compression) {
            (Format::Oci, Compression::None) => Ok("application/vnd.oci.image.layer.v1.tar"),
            (Format::Oci, Compression::Gzip) => Ok("application/vnd.oci.image.layer.v1.tar+gzip"),
            (Format::Oci, Compression::Zstd) => Ok("application/vnd.oci.image.layer.v1.tar+zstd"),
            (Format::DockerV2, Compression::None) => {
                Ok("application/vnd.docker.image.rootfs.diff.tar")
            }
            (Format::DockerV2, Compression::Gzip) => {
                Ok("application/vnd.docker.image.rootfs.diff.tar.gzip")
            }
            (Format::DockerV2, Compression::Zstd) => Err(Error::UnsupportedByFormat {
                format: self,
                what: "zstd layers".to_owned(),
            }),
        }
    }

    /// The format whose manifest or index media type this is.
    pub fn of_media_type(media_type: &str) -> Option<Format> {
        match media_type {
            OCI_MANIFEST | OCI_INDEX => Some(Format::Oci),
            DOCKER_MANIFEST | DOCKER_MANIFEST_LIST => Some(Format::DockerV2),
            _ => None,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Oci => "OCI",
            Format::DockerV2 => "Docker v2 schema 2",
        })
    }
}

/// A content descriptor: media type, digest and size of a blob.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Descriptor {
    media_type: String,
    digest: Digest,
    size: u64,
}

impl Descriptor {
    /// A descriptor from its parts.
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_owned(),
            digest,
            size,
        }
    }

    /// The media type.
    pub fn media_type(&self) -> &str {
        &self.media_type
    }

    /// The digest of the blob.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The size of the blob in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The descriptor of an oci-spec descriptor (media type, digest and size; the rest is
    /// dropped), its digest parsed into a [`Digest`] tank can verify.
    pub(crate) fn from_oci(
        descriptor: &oci_spec::image::Descriptor,
    ) -> Result<Descriptor, tank_reference::Error> {
        Ok(Descriptor {
            media_type: descriptor.media_type().to_string(),
            digest: descriptor.digest().to_string().parse()?,
            size: descriptor.size(),
        })
    }

    /// The descriptor as JSON (`mediaType`, `digest`, `size`).
    pub(crate) fn to_json(&self) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("mediaType".into(), Value::from(self.media_type.clone()));
        map.insert("digest".into(), Value::from(self.digest.to_string()));
        map.insert("size".into(), Value::from(self.size));
        map
    }
}

/// Whether `media_type` is an index's (OCI index or Docker manifest list).
pub(crate) fn is_index_media_type(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}
