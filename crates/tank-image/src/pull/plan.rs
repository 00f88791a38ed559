//! The plan of one image's assembly: its manifest and config digests and, for each layer,
//! the blob, its compression and the diff_id the config declares, checked for consistency
//! before anything is downloaded.

use oci_spec::image::{Descriptor, ImageManifest};
use tank_layer::Compression;
use tank_reference::{Digest, Reference};

use crate::inspect::descriptor_digest;
use crate::oci::document;
use crate::{Error, Inspected};

/// One layer of the image being assembled.
#[derive(Clone, Debug)]
pub(super) struct LayerPlan {
    /// The layer blob's digest.
    pub(super) digest: Digest,
    /// Its size, as the manifest declares it.
    pub(super) size: u64,
    /// How its tar stream is compressed (from its media type).
    pub(super) compression: Compression,
    /// The diff_id the config declares for it (checked after extraction).
    pub(super) diff_id: Digest,
}

/// What assembling one image needs: its manifest digest, config digest and layers, checked
/// for consistency before anything is downloaded.
#[derive(Clone, Debug)]
pub(super) struct ImagePlan {
    /// The platform manifest's digest (the rootfs is cached under it).
    pub(super) manifest_digest: Digest,
    /// The config blob's digest.
    pub(super) config_digest: Digest,
    /// The layers, lowest first.
    pub(super) layers: Vec<LayerPlan>,
}

impl ImagePlan {
    /// The plan of an image resolved online.
    pub(super) fn from_inspected(
        reference: &Reference,
        inspected: &Inspected,
        max_layers: usize,
    ) -> Result<ImagePlan, Error> {
        ImagePlan::new(
            reference,
            inspected.manifest().digest().clone(),
            inspected.image_manifest(),
            inspected.config_json(),
            max_layers,
        )
    }

    /// The plan of `manifest` with its `config`; refuses more than `max_layers` layers,
    /// layers the config's diff_ids do not list one for one, and media types tank cannot
    /// read.
    pub(super) fn new(
        reference: &Reference,
        manifest_digest: Digest,
        manifest: &ImageManifest,
        config: &serde_json::Value,
        max_layers: usize,
    ) -> Result<ImagePlan, Error> {
        if manifest.layers().len() > max_layers {
            return Err(Error::TooManyLayers {
                reference: reference.to_string(),
                manifest: manifest_digest.clone(),
                layers: manifest.layers().len(),
                limit: max_layers,
            });
        }
        let config_digest = descriptor_digest(
            reference,
            manifest.config(),
            &format!("config of manifest {manifest_digest}"),
        )?;
        let diff_ids = document::diff_ids(config, &reference.to_string(), &config_digest)?;
        if diff_ids.len() != manifest.layers().len() {
            return Err(Error::LayerCountMismatch {
                reference: reference.to_string(),
                layers: manifest.layers().len(),
                diff_ids: diff_ids.len(),
            });
        }
        let layers = manifest
            .layers()
            .iter()
            .zip(diff_ids)
            .enumerate()
            .map(|(index, (descriptor, diff_id))| {
                LayerPlan::new(reference, &manifest_digest, index, descriptor, diff_id)
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(ImagePlan {
            manifest_digest,
            config_digest,
            layers,
        })
    }
}

impl LayerPlan {
    fn new(
        reference: &Reference,
        manifest: &Digest,
        index: usize,
        descriptor: &Descriptor,
        diff_id: Digest,
    ) -> Result<LayerPlan, Error> {
        let digest = descriptor_digest(
            reference,
            descriptor,
            &format!("layer {index} of manifest {manifest}"),
        )?;
        let media_type = descriptor.media_type().to_string();
        let compression =
            Compression::from_media_type(&media_type).map_err(|_| Error::UnsupportedLayer {
                reference: reference.to_string(),
                index,
                digest: digest.to_string(),
                media_type,
            })?;
        Ok(LayerPlan {
            digest,
            size: descriptor.size(),
            compression,
            diff_id,
        })
    }
}
