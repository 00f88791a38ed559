//! Building a multi-platform index (OCI image index or Docker manifest list).

use super::*;

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
