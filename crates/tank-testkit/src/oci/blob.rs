//! Content with its media type, digest and size, and a config `history` entry.

use super::*;

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
