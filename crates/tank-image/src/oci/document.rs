//! A manifest or index parsed once from its raw bytes ([`Document`]: oci-spec types, the bytes
//! exactly as their digest covers them, the digest), and the readings of a document every
//! part of tank-image shares: a config's `rootfs.diff_ids` ([`diff_ids`], the only parser of
//! them), annotations, and a layer's compression from its media type ([`layer_compression`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;
use tank_reference::Digest;
use tank_registry::{Manifest, ManifestKind};

use crate::Error;
use crate::oci::{Descriptor, Format};

/// A manifest or index: its bytes exactly as its digest covers them, its media type, and
/// what the bytes parse to.
#[derive(Clone, Debug)]
pub(crate) struct Document {
    digest: Digest,
    media_type: String,
    raw: Arc<[u8]>,
    kind: ManifestKind,
}

/// The fields that tell what a stored document is before it is parsed whole.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    media_type: Option<Value>,
    manifests: Option<IgnoredAny>,
}

impl Document {
    /// Parses `raw`, whose digest (`digest`) the caller verified. The media type is the
    /// document's own `mediaType`, else `declared` (the descriptor that pointed at it); the
    /// document is an index when it has `manifests`, else an image manifest. Returns what is
    /// wrong with the bytes when they are neither.
    pub(crate) fn parse(raw: Vec<u8>, digest: Digest, declared: &str) -> Result<Document, String> {
        let probe: Probe = serde_json::from_slice(&raw).map_err(|error| error.to_string())?;
        let media_type = probe
            .media_type
            .as_ref()
            .and_then(Value::as_str)
            .unwrap_or(declared)
            .to_owned();
        let kind = if probe.manifests.is_some() {
            ManifestKind::Index(
                serde_json::from_slice(&raw).map_err(|error| problem(&raw, "manifests", error))?,
            )
        } else {
            ManifestKind::Image(
                serde_json::from_slice(&raw).map_err(|error| problem(&raw, "layers", error))?,
            )
        };
        Ok(Document {
            digest,
            media_type,
            raw: Arc::from(raw),
            kind,
        })
    }

    /// The document of a manifest the registry client fetched (and parsed, and verified).
    pub(crate) fn from_manifest(manifest: &Manifest) -> Document {
        Document {
            digest: manifest.digest().clone(),
            media_type: manifest.media_type().to_owned(),
            raw: Arc::from(manifest.raw()),
            kind: manifest.kind().clone(),
        }
    }

    /// The digest of [`Document::raw`].
    pub(crate) fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The media type.
    pub(crate) fn media_type(&self) -> &str {
        &self.media_type
    }

    /// The bytes exactly as stored or served.
    pub(crate) fn raw(&self) -> &Arc<[u8]> {
        &self.raw
    }

    /// The parsed manifest or index.
    pub(crate) fn kind(&self) -> &ManifestKind {
        &self.kind
    }

    /// The media type family, when the media type is a manifest or index type tank writes.
    pub(crate) fn format(&self) -> Option<Format> {
        Format::of_media_type(&self.media_type)
    }

    /// The document's annotations, in key order.
    pub(crate) fn annotations(&self) -> BTreeMap<String, String> {
        let annotations = match &self.kind {
            ManifestKind::Image(image) => image.annotations(),
            ManifestKind::Index(index) => index.annotations(),
        };
        annotations_of(annotations.as_ref())
    }
}

/// What is wrong with a document that does not parse: its `list` (`layers` of a manifest,
/// `manifests` of an index) when that is not an array, else the parse error.
fn problem(raw: &[u8], list: &str, error: serde_json::Error) -> String {
    match serde_json::from_slice::<Value>(raw) {
        Ok(document) if !document[list].is_array() => format!("{list} is not an array"),
        _ => error.to_string(),
    }
}

/// oci-spec's optional annotations as a sorted map.
pub(crate) fn annotations_of(
    annotations: Option<&HashMap<String, String>>,
) -> BTreeMap<String, String> {
    annotations
        .map(|map| {
            map.iter()
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// The config's `rootfs.diff_ids`, in layer order. A config without them (or whose
/// `diff_ids` is not an array) has none; an entry that is not a digest tank can verify is
/// [`Error::InvalidDiffId`]. `reference` and `config_digest` name the config in errors.
pub(crate) fn diff_ids(
    config: &Value,
    reference: &str,
    config_digest: &Digest,
) -> Result<Vec<Digest>, Error> {
    let Some(ids) = config.pointer("/rootfs/diff_ids").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    ids.iter()
        .enumerate()
        .map(|(index, id)| {
            let invalid = |source| Error::InvalidDiffId {
                reference: reference.to_owned(),
                config: config_digest.clone(),
                index,
                value: id.to_string(),
                source,
            };
            let text = id.as_str().ok_or_else(|| invalid(None))?;
            text.parse::<Digest>()
                .map_err(|source| invalid(Some(Box::new(source))))
        })
        .collect()
}

/// The compression of layer `index` (of the image `reference` names), from its media type;
/// a media type naming none tank reads is [`Error::UnsupportedLayer`].
pub(crate) fn layer_compression(
    reference: &str,
    index: usize,
    descriptor: &Descriptor,
) -> Result<tank_layer::Compression, Error> {
    tank_layer::Compression::from_media_type(descriptor.media_type())
        .map_err(|_| unsupported_layer(reference, index, descriptor))
}

/// [`Error::UnsupportedLayer`] for layer `index` of the image `reference` names.
pub(crate) fn unsupported_layer(reference: &str, index: usize, descriptor: &Descriptor) -> Error {
    Error::UnsupportedLayer {
        reference: reference.to_owned(),
        index,
        digest: descriptor.digest().to_string(),
        media_type: descriptor.media_type().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tank_reference::Algorithm;

    use super::*;

    fn config_digest() -> Digest {
        Digest::of(Algorithm::Sha256, b"config")
    }

    #[test]
    fn diff_ids_are_read_in_order_and_absent_ones_are_none() {
        let first = Digest::of(Algorithm::Sha256, b"1");
        let second = Digest::of(Algorithm::Sha256, b"2");
        let config = json!({"rootfs": {"type": "layers", "diff_ids": [
            first.to_string(), second.to_string()
        ]}});
        assert_eq!(
            diff_ids(&config, "image", &config_digest()).unwrap(),
            vec![first, second]
        );
        for config in [
            json!({}),
            json!({"rootfs": {}}),
            json!({"rootfs": {"diff_ids": "x"}}),
        ] {
            assert!(
                diff_ids(&config, "image", &config_digest())
                    .unwrap()
                    .is_empty()
            );
        }
    }

    /// Decided once for every reader (a layout read, a copy, a pull): a diff_id that is not
    /// a digest, or not a string, is `InvalidDiffId` naming the config and the entry.
    #[test]
    fn a_bad_diff_id_is_invalid_diff_id_naming_the_entry() {
        for (value, has_source) in [(json!("sha256:zz"), true), (json!(42), false)] {
            let config = json!({"rootfs": {"diff_ids": [
                Digest::of(Algorithm::Sha256, b"1").to_string(), value
            ]}});
            match diff_ids(&config, "oci:out", &config_digest()) {
                Err(Error::InvalidDiffId {
                    reference,
                    config,
                    index,
                    source,
                    ..
                }) => {
                    assert_eq!(reference, "oci:out");
                    assert_eq!(config, config_digest());
                    assert_eq!(index, 1);
                    assert_eq!(source.is_some(), has_source);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn documents_are_images_or_indexes_by_their_shape() {
        let digest = config_digest();
        let image = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2},"layers":[]}"#;
        let document =
            Document::parse(image.to_vec(), digest.clone(), super::super::OCI_MANIFEST).unwrap();
        assert!(matches!(document.kind(), ManifestKind::Image(_)));
        assert_eq!(document.format(), Some(Format::Oci));
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}"#;
        let document =
            Document::parse(index.to_vec(), digest.clone(), super::super::OCI_INDEX).unwrap();
        assert!(matches!(document.kind(), ManifestKind::Index(_)));
        assert_eq!(document.format(), Some(Format::DockerV2));
        let layers_not_an_array = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2},"layers":{}}"#;
        assert!(
            Document::parse(
                layers_not_an_array.to_vec(),
                digest,
                super::super::OCI_MANIFEST
            )
            .is_err()
        );
    }
}
