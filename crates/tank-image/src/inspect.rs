//! Resolve a reference to its platform manifest and config, without downloading layers.

use oci_spec::image::{Descriptor, ImageManifest};
use tank_reference::{Digest, Reference};
use tank_registry::{Client, Manifest, ManifestKind};

use crate::{Error, Platform};

/// The largest image config tank reads (configs with long histories reach a few hundred KiB).
pub const CONFIG_SIZE_LIMIT: u64 = 16 * 1024 * 1024;

/// How many index levels (index of indexes) tank follows before giving up.
const INDEX_DEPTH_LIMIT: usize = 4;

/// What [`inspect`] may be told.
#[derive(Clone, Debug, Default)]
pub struct InspectOptions {
    /// The platform to pick from an index; the host's when `None`.
    pub platform: Option<Platform>,
}

/// A reference resolved down to one image: its manifest and config.
#[derive(Debug)]
pub struct Inspected {
    reference: Reference,
    index: Option<Manifest>,
    platform: Option<Platform>,
    manifest: Manifest,
    image_manifest: ImageManifest,
    config: Vec<u8>,
    config_json: serde_json::Value,
}

impl Inspected {
    /// The reference as given.
    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    /// The index the reference resolved to, when it named a multi-platform image.
    pub fn index(&self) -> Option<&Manifest> {
        self.index.as_ref()
    }

    /// The platform the chosen index entry declared (`None` for a single-manifest image).
    pub fn platform(&self) -> Option<&Platform> {
        self.platform.as_ref()
    }

    /// The platform image manifest, with its digest and media type.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The parsed image manifest (layers and config descriptors).
    pub fn image_manifest(&self) -> &ImageManifest {
        &self.image_manifest
    }

    /// The image config blob exactly as stored.
    pub fn config_bytes(&self) -> &[u8] {
        &self.config
    }

    /// The image config as JSON.
    pub fn config_json(&self) -> &serde_json::Value {
        &self.config_json
    }

    /// The layer descriptors, lowest first.
    pub fn layers(&self) -> &[Descriptor] {
        self.image_manifest.layers()
    }
}

/// Resolves `reference` to the manifest for the wanted platform and fetches its config.
///
/// A tag is resolved online every time (tags move). When the reference names an index, the
/// entry for `options.platform` (the host's by default) is chosen. When it names a single
/// image and a platform was asked for explicitly, the config's `os`/`architecture` must
/// match it.
///
/// # Errors
///
/// Registry errors (unreachable, unauthorised, unknown manifest, digest mismatches),
/// [`Error::NoMatchingPlatform`] listing what the image offers, [`Error::InvalidConfig`].
pub async fn inspect(
    client: &Client,
    reference: &Reference,
    options: &InspectOptions,
) -> Result<Inspected, Error> {
    resolve(client, reference, options, |_| None).await
}

/// [`inspect`], taking the config from `cached_config` when it has it (a pull's cache):
/// the bytes must hash to the config's digest, else they are ignored and fetched.
pub(crate) async fn resolve(
    client: &Client,
    reference: &Reference,
    options: &InspectOptions,
    cached_config: impl Fn(&Digest) -> Option<Vec<u8>>,
) -> Result<Inspected, Error> {
    let wanted = options.platform.clone().unwrap_or_else(Platform::host);
    let mut manifest = client.fetch_manifest(reference).await?;
    let mut index = None;
    let mut platform = None;
    let mut depth = 0;
    let image_manifest = loop {
        match manifest.kind() {
            ManifestKind::Image(image) => break image.clone(),
            ManifestKind::Index(image_index) => {
                depth += 1;
                if depth > INDEX_DEPTH_LIMIT {
                    return Err(Error::IndexTooDeep {
                        reference: reference.to_string(),
                        limit: INDEX_DEPTH_LIMIT,
                    });
                }
                let entry = wanted.select(image_index)?;
                platform = Platform::of_descriptor(entry);
                let digest = descriptor_digest(
                    reference,
                    entry,
                    &format!("entry of index {}", manifest.digest()),
                )?;
                let next = client.fetch_manifest_by_digest(reference, &digest).await?;
                index.get_or_insert(manifest);
                manifest = next;
            }
        }
    };

    let config_descriptor = image_manifest.config();
    let config_digest = descriptor_digest(
        reference,
        config_descriptor,
        &format!("config of manifest {}", manifest.digest()),
    )?;
    let cached = cached_config(&config_digest).filter(|bytes| {
        bytes.len() as u64 == config_descriptor.size()
            && Digest::of(config_digest.algorithm(), bytes) == config_digest
    });
    let config = match cached {
        Some(bytes) => bytes,
        None => {
            client
                .fetch_blob_bytes(
                    reference,
                    &config_digest,
                    Some(config_descriptor.size()),
                    CONFIG_SIZE_LIMIT,
                )
                .await?
        }
    };
    let config_json: serde_json::Value =
        serde_json::from_slice(&config).map_err(|source| Error::InvalidConfig {
            reference: reference.to_string(),
            digest: config_digest.to_string(),
            source,
        })?;

    if index.is_none() && options.platform.is_some() {
        let field = |name: &str| config_json.get(name).and_then(|v| v.as_str()).unwrap_or("");
        let declared = Platform::new(
            field("os"),
            field("architecture"),
            config_json.get("variant").and_then(|v| v.as_str()),
        );
        if declared.os() != wanted.os() || declared.architecture() != wanted.architecture() {
            return Err(Error::NoMatchingPlatform {
                wanted,
                available: vec![declared],
            });
        }
    }

    Ok(Inspected {
        reference: reference.clone(),
        index,
        platform,
        manifest,
        image_manifest,
        config,
        config_json,
    })
}

/// The descriptor's digest as a verifiable [`Digest`] (through
/// [`tank_registry::descriptor_digest`], the one place a descriptor's digest is parsed);
/// `reference` and `what` name the descriptor in the error.
pub(crate) fn descriptor_digest(
    reference: &Reference,
    descriptor: &Descriptor,
    what: &str,
) -> Result<Digest, Error> {
    tank_registry::descriptor_digest(descriptor).map_err(|error| match error {
        tank_registry::Error::InvalidDescriptorDigest { value, source } => {
            Error::InvalidDescriptorDigest {
                reference: reference.to_string(),
                what: what.to_owned(),
                value,
                source: Box::new(source),
            }
        }
        other => Error::Registry(other),
    })
}
