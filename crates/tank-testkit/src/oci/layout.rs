//! Writing an OCI image layout with tagged entries, and reading its tags back.

use super::*;

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
