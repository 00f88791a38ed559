//! Images, indexes and OCI image layouts built from layers and config settings, with every
//! size and digest computed here, in OCI or Docker media types.
//!
//! One file per document: [`media_type`] (the constants), `platform.rs`, `blob.rs` (content
//! with its digest), `image.rs`, `index.rs` and `layout.rs` (writing and reading a layout).
//! The media-type constants are this crate's own on purpose: it is the independent oracle
//! tank's code is tested against.

mod blob;
mod image;
mod index;
mod layout;
pub mod media_type;
mod platform;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde_json::{Map, Value, json};

use crate::json::canonical_json;
use crate::tarball::{Compression, TarBuilder};
use crate::{Error, sha256_digest};

pub use blob::{Blob, HistoryEntry};
pub use image::{BuiltImage, ImageBuilder};
pub use index::{BuiltIndex, IndexBuilder};
pub use layout::{Built, LayoutSummary, LayoutTag, OciLayoutBuilder, read_layout_tags};
pub use platform::Platform;

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
