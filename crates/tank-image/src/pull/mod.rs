//! Pulling an image into the cache and assembling its root filesystem: the pull policy
//! (online, offline, refresh, when to start over) and what a pull returns. The plan of an
//! image is in [`plan`]; the download-while-extracting machinery in [`download`],
//! [`follow`] and [`extract`].

mod download;
mod extract;
mod follow;
mod plan;
mod progress;

use std::fmt;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use oci_spec::image::{ImageConfiguration, ImageManifest};
use tank_cache::{Cache, CacheDir, RefRecord, RootfsGuard};
use tank_layer::ExtractOptions;
use tank_reference::{Digest, Reference};
use tank_registry::{Client, ClientConfig};

use self::plan::ImagePlan;
use self::progress::DownloadStats;
pub use self::progress::{LayerInfo, PullProgress};
use crate::inspect::{descriptor_digest, resolve};
// Also reachable at its old path, `crate::pull::blocking`, for the push side.
use crate::task::blocking;
use crate::{Error, InspectOptions, Inspected, Platform};

/// How many layers download at once by default.
pub const DEFAULT_CONCURRENT_DOWNLOADS: usize = 3;

/// How many layers an image may have by default ([`PullOptions::max_layers`]): overlayfs's
/// own maximum stack depth (the kernel's `OVL_MAX_STACK`). No image beyond it can run on an
/// overlay-based runtime (Docker's overlay2 already stops at 125), so it refuses nothing a
/// runtime could use, while a manifest that lists thousands of layers (each one a request
/// and an extraction) is refused before anything is downloaded.
pub const DEFAULT_MAX_LAYERS: usize = 500;

/// How often a pull starts over after finding a corrupt blob in the cache (each time the
/// blob is removed first, so the next attempt fetches it).
const CORRUPT_BLOB_RETRIES: usize = 3;

/// What [`pull`] may be told. `Default` is an online pull for the host's platform into the
/// default cache directory.
#[derive(Clone, Default)]
pub struct PullOptions {
    /// The cache directory; `None` means `TANK_CACHE`, else `$XDG_CACHE_HOME/tank`, else
    /// `~/.cache/tank` ([`CacheDir::resolve`]).
    pub cache: Option<PathBuf>,
    /// Use a cache directory owned by another user, or one group or others may write that
    /// cannot be tightened to 0700 ([`tank_cache::CacheOptions::allow_untrusted_root`]).
    /// Off by default: whoever controls such a cache controls what the pull hands out.
    pub allow_untrusted_cache: bool,
    /// Touch no network: serve the reference from its ref sidecar, or fail with
    /// [`Error::NotCached`].
    pub offline: bool,
    /// Ignore cached blobs and rootfs: fetch every blob again and rebuild the rootfs.
    pub refresh: bool,
    /// The platform to pull from an index; the host's when `None`.
    pub platform: Option<Platform>,
    /// The registry client's settings (insecure registries, credentials, timeouts, retries).
    pub client: ClientConfig,
    /// How many layers download at once; 0 means [`DEFAULT_CONCURRENT_DOWNLOADS`].
    pub concurrent_downloads: usize,
    /// Refuse images whose manifest lists more layers than this ([`Error::TooManyLayers`]);
    /// 0 means [`DEFAULT_MAX_LAYERS`].
    pub max_layers: usize,
    /// Told about each layer's download and extraction, e.g. to draw progress bars.
    pub progress: Option<Arc<dyn PullProgress>>,
    /// How layers are applied. The default suits unprivileged use (files belong to the
    /// running user, device nodes skipped); a runtime running as root may ask for the
    /// image's ownership and device nodes. The rootfs is cached by manifest digest alone:
    /// use one setting per cache directory.
    pub extract: ExtractOptions,
}

impl fmt::Debug for PullOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PullOptions")
            .field("cache", &self.cache)
            .field("allow_untrusted_cache", &self.allow_untrusted_cache)
            .field("offline", &self.offline)
            .field("refresh", &self.refresh)
            .field("platform", &self.platform)
            .field("client", &self.client)
            .field("concurrent_downloads", &self.concurrent_downloads)
            .field("max_layers", &self.max_layers)
            .field("progress", &self.progress.as_ref().map(|_| "…"))
            .field("extract", &self.extract)
            .finish()
    }
}

/// A pulled image: its assembled root filesystem and what it was resolved to.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Pulled {
    /// The assembled root filesystem, `rootfs/<algo>/<hex>` in the cache.
    pub rootfs: PathBuf,
    /// The image config, as JSON; [`Pulled::image_config`] parses it.
    pub config: serde_json::Value,
    /// The config blob's digest.
    pub config_digest: Digest,
    /// The platform manifest's digest.
    pub manifest_digest: Digest,
    /// The index's digest, when the reference named a multi-platform image.
    pub index_digest: Option<Digest>,
    /// The reference as asked for.
    pub reference: Reference,
    /// The platform the pull was for (as asked, or the host's).
    pub platform: Platform,
    /// Whether the rootfs was already assembled (a cache hit); `false` when this pull built it.
    pub cached: bool,
    /// Layers downloaded by this pull.
    pub layers_downloaded: usize,
    /// Bytes of layers downloaded by this pull.
    pub bytes_downloaded: u64,
}

impl Pulled {
    /// The image config as the typed OCI image configuration (what
    /// [`crate::RunSpec::from_config`] takes).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] when the config is JSON but not an image configuration.
    pub fn image_config(&self) -> Result<ImageConfiguration, Error> {
        serde_json::from_value(self.config.clone()).map_err(|source| Error::InvalidConfig {
            reference: self.reference.to_string(),
            digest: self.config_digest.to_string(),
            source,
        })
    }
}

/// Pulls `reference` as `options` say and returns its assembled rootfs.
///
/// Online (the default), the manifest is always resolved (tags move), blobs the cache lacks
/// are downloaded in parallel and verified, and layers are applied in order as soon as each
/// is stored; a rootfs already assembled for the same manifest digest is reused. Offline,
/// no network is touched. Must run inside a multi-threaded or current-thread tokio runtime.
///
/// Logs (with `tracing`, at info) `pulling <ref>` when it builds and
/// `using cached <ref> (<digest>)` when the rootfs was there.
///
/// # Errors
///
/// [`Error::OfflineWithRefresh`]; offline, [`Error::NotCached`], and [`Error::BadCachedRecord`],
/// [`Error::CachedManifestInvalid`] or [`Error::LayerNotCached`] when the cache holds the
/// reference but not everything it needs; registry errors (unreachable,
/// unauthorised, unknown tag, digest mismatches); [`Error::NoMatchingPlatform`];
/// [`Error::DiffIdMismatch`] and [`Error::LayerCountMismatch`] for inconsistent images;
/// [`Error::Layer`] for layers that cannot be applied; [`Error::Cache`] for disk problems.
/// On error nothing unverified is kept, and blobs verified so far stay for the next pull.
pub async fn pull(reference: &Reference, options: &PullOptions) -> Result<Pulled, Error> {
    Puller::new(options)?.pull(reference).await
}

/// A reusable puller: one cache and one registry client (with its connection pool and
/// token cache) for many pulls.
#[derive(Clone)]
pub struct Puller {
    cache: Cache,
    client: Client,
    offline: bool,
    refresh: bool,
    platform: Option<Platform>,
    concurrent_downloads: usize,
    max_layers: usize,
    progress: Option<Arc<dyn PullProgress>>,
    extract: ExtractOptions,
}

impl fmt::Debug for Puller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Puller")
            .field("cache", &self.cache)
            .field("offline", &self.offline)
            .field("refresh", &self.refresh)
            .field("platform", &self.platform)
            .finish_non_exhaustive()
    }
}

impl Puller {
    /// Opens the cache and builds the registry client.
    ///
    /// # Errors
    ///
    /// [`Error::OfflineWithRefresh`], [`Error::Cache`] when the cache cannot be opened,
    /// [`Error::Registry`] when the client cannot be built.
    pub fn new(options: &PullOptions) -> Result<Puller, Error> {
        if options.offline && options.refresh {
            return Err(Error::OfflineWithRefresh);
        }
        let dir = CacheDir::resolve(options.cache.clone())?;
        let cache = Cache::open_with(
            dir,
            &tank_cache::CacheOptions::default()
                .allow_untrusted_root(options.allow_untrusted_cache),
        )?;
        let client = Client::new(options.client.clone())?;
        Ok(Puller {
            cache,
            client,
            offline: options.offline,
            refresh: options.refresh,
            platform: options.platform.clone(),
            concurrent_downloads: match options.concurrent_downloads {
                0 => DEFAULT_CONCURRENT_DOWNLOADS,
                n => n,
            },
            max_layers: match options.max_layers {
                0 => DEFAULT_MAX_LAYERS,
                n => n,
            },
            progress: options.progress.clone(),
            extract: options.extract.clone(),
        })
    }

    /// The cache this puller uses.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Pulls `reference`; see [`pull`].
    ///
    /// # Errors
    ///
    /// As [`pull`].
    pub async fn pull(&self, reference: &Reference) -> Result<Pulled, Error> {
        let wanted = self.platform.clone().unwrap_or_else(Platform::host);
        let cache = self.cache.clone();
        // Held from the first blob to the ref sidecar so a gc cannot remove what this pull
        // is about to reference.
        let _lock = blocking(move || cache.lock_shared().map_err(Error::from)).await?;
        if self.offline {
            return self.pull_offline(reference, wanted).await;
        }
        // The config comes from the cache when it is there (not on a refresh): a warm pull
        // then costs one manifest request.
        let cache = self.cache.clone();
        let refresh = self.refresh;
        let inspected = resolve(
            &self.client,
            reference,
            &InspectOptions {
                platform: self.platform.clone(),
            },
            move |digest| {
                if refresh {
                    return None;
                }
                let path = cache.blob_path(digest)?;
                let meta = std::fs::metadata(&path).ok()?;
                (meta.len() <= crate::CONFIG_SIZE_LIMIT)
                    .then(|| std::fs::read(&path).ok())
                    .flatten()
            },
        )
        .await?;
        let image = ImagePlan::from_inspected(reference, &inspected, self.max_layers)?;
        self.store_metadata(&inspected).await?;

        let mut attempt = 0;
        let pulled = loop {
            let distrusted_before = self.client.distrusted_mirrors();
            match self.assemble(reference, &image, !self.refresh).await {
                Err(error)
                    if attempt < CORRUPT_BLOB_RETRIES
                        && worth_retrying(
                            &error,
                            distrusted_before,
                            self.client.distrusted_mirrors(),
                        ) =>
                {
                    match error {
                        Error::CorruptCachedBlob { digest, actual } => tracing::warn!(
                            "cached blob {digest} was corrupt (hashes to {actual}); removed, fetching it again"
                        ),
                        error => tracing::warn!("{error}; fetching it again from the next source"),
                    }
                    attempt += 1;
                }
                other => break other?,
            }
        };
        let (rootfs, cached, stats) = pulled;

        let mut blobs = vec![image.config_digest.clone()];
        blobs.extend(image.layers.iter().map(|layer| layer.digest.clone()));
        let record = RefRecord::new(
            image.manifest_digest.clone(),
            inspected.index().map(|index| index.digest().clone()),
            inspected.config_json().clone(),
            blobs,
        );
        let cache = self.cache.clone();
        let (ref_reference, platform_key) = (reference.clone(), wanted.to_string());
        blocking(move || {
            // Unchanged since the last pull (a warm pull): keep it, sparing two fsyncs.
            let current = cache.read_ref(&ref_reference, &platform_key).ok().flatten();
            let unchanged = current.is_some_and(|current| {
                current.manifest_digest == record.manifest_digest
                    && current.index_digest == record.index_digest
                    && current.config == record.config
                    && current.blobs == record.blobs
            });
            if !unchanged {
                cache.write_ref(&ref_reference, &platform_key, &record)?;
            }
            Ok(())
        })
        .await?;
        Ok(Pulled {
            rootfs,
            config: inspected.config_json().clone(),
            config_digest: image.config_digest.clone(),
            manifest_digest: image.manifest_digest.clone(),
            index_digest: inspected.index().map(|index| index.digest().clone()),
            reference: reference.clone(),
            platform: wanted,
            cached,
            layers_downloaded: stats.layers,
            bytes_downloaded: stats.bytes,
        })
    }

    /// Serves `reference` from its ref sidecar, rebuilding the rootfs from cached blobs when
    /// it was removed.
    async fn pull_offline(&self, reference: &Reference, wanted: Platform) -> Result<Pulled, Error> {
        let cache = self.cache.clone();
        let (key_reference, platform_key) = (reference.clone(), wanted.to_string());
        let record = blocking(move || {
            cache
                .read_ref(&key_reference, &platform_key)
                .map_err(Error::from)
        })
        .await?;
        let Some(record) = record else {
            return Err(Error::NotCached {
                reference: reference.to_string(),
                platform: wanted,
                cache: self.cache.root().to_path_buf(),
            });
        };
        let manifest_digest = record.manifest_digest.clone();
        // The sidecar's copy of the config is a convenience for listing; what a pull hands
        // out (run parameters come from it) is the config blob the manifest names, read
        // and checked against its digest.
        let manifest = self.cached_manifest(reference, &record)?;
        let (config_digest, config) = self.cached_config(reference, &manifest_digest, &manifest)?;
        let (rootfs, cached) = match self.cache.rootfs_path(&manifest_digest) {
            Some(rootfs) => (rootfs, true),
            None => {
                let image = ImagePlan::new(
                    reference,
                    manifest_digest.clone(),
                    &manifest,
                    &config,
                    self.max_layers,
                )?;
                let (rootfs, cached, _) = self.assemble(reference, &image, true).await?;
                (rootfs, cached)
            }
        };
        tracing::info!("using cached {} ({manifest_digest})", reference.familiar());
        Ok(Pulled {
            rootfs,
            config,
            config_digest,
            manifest_digest,
            index_digest: record.index_digest,
            reference: reference.clone(),
            platform: wanted,
            cached,
            layers_downloaded: 0,
            bytes_downloaded: 0,
        })
    }

    /// The manifest the online pull stored, checked against its digest.
    fn cached_manifest(
        &self,
        reference: &Reference,
        record: &RefRecord,
    ) -> Result<ImageManifest, Error> {
        let digest = &record.manifest_digest;
        let raw = self.verified_blob(reference, digest, crate::MANIFEST_LIMIT, "manifest")?;
        serde_json::from_slice(&raw).map_err(|source| Error::CachedManifestInvalid {
            reference: reference.to_string(),
            digest: digest.clone(),
            source,
        })
    }

    /// The config blob `manifest` names, read from the cache and checked against its digest;
    /// returns its digest and its JSON.
    fn cached_config(
        &self,
        reference: &Reference,
        manifest_digest: &Digest,
        manifest: &ImageManifest,
    ) -> Result<(Digest, serde_json::Value), Error> {
        let digest = descriptor_digest(
            reference,
            manifest.config(),
            &format!("config of manifest {manifest_digest}"),
        )?;
        let raw = self.verified_blob(reference, &digest, crate::CONFIG_SIZE_LIMIT, "config")?;
        let config = serde_json::from_slice(&raw).map_err(|source| Error::InvalidConfig {
            reference: reference.to_string(),
            digest: digest.to_string(),
            source,
        })?;
        Ok((digest, config))
    }

    /// A small cached blob (manifest, config) of at most `limit` bytes that hashes to its
    /// name; a missing, oversized or corrupt one (removed) is reported as not cached.
    fn verified_blob(
        &self,
        reference: &Reference,
        digest: &Digest,
        limit: u64,
        blob: &'static str,
    ) -> Result<Vec<u8>, Error> {
        let not_cached = |removed: bool| Error::BadCachedRecord {
            reference: reference.to_string(),
            blob,
            digest: digest.clone(),
            removed,
        };
        let file = match self.cache.open_blob(digest) {
            Ok(file) => file,
            Err(tank_cache::Error::BlobNotCached { .. }) => return Err(not_cached(false)),
            Err(error) => return Err(error.into()),
        };
        let mut raw = Vec::new();
        file.take(limit.saturating_add(1))
            .read_to_end(&mut raw)
            .map_err(|source| Error::Io {
                operation: "read",
                path: self.cache.blob_path(digest).unwrap_or_default(),
                source,
            })?;
        if raw.len() as u64 > limit || Digest::of(digest.algorithm(), &raw) != *digest {
            self.cache.remove_blob(digest)?;
            return Err(not_cached(true));
        }
        Ok(raw)
    }

    /// Stores the manifest, the index and the config (all verified by the registry client)
    /// so an offline pull can rebuild the rootfs and gc knows them.
    async fn store_metadata(&self, inspected: &Inspected) -> Result<(), Error> {
        let mut small: Vec<(Digest, Vec<u8>)> = vec![(
            inspected.manifest().digest().clone(),
            inspected.manifest().raw().to_vec(),
        )];
        if let Some(index) = inspected.index() {
            small.push((index.digest().clone(), index.raw().to_vec()));
        }
        let config_digest = descriptor_digest(
            inspected.reference(),
            inspected.image_manifest().config(),
            "config",
        )?;
        small.push((config_digest, inspected.config_bytes().to_vec()));
        let cache = self.cache.clone();
        let refresh = self.refresh;
        blocking(move || {
            for (digest, bytes) in small {
                if refresh {
                    cache.remove_blob(&digest)?;
                }
                cache.put_blob_bytes(&digest, &bytes)?;
            }
            Ok(())
        })
        .await
    }

    /// Finds or builds the rootfs of `image`; returns it, whether it was found, and what was
    /// downloaded. With `reuse` false (a refresh) every blob is fetched and the rootfs rebuilt.
    async fn assemble(
        &self,
        reference: &Reference,
        image: &ImagePlan,
        reuse: bool,
    ) -> Result<(PathBuf, bool, DownloadStats), Error> {
        let cache = self.cache.clone();
        let manifest = image.manifest_digest.clone();
        // Waits while another thread or process builds the same rootfs, then reuses it.
        let guard = blocking(move || {
            if reuse {
                cache.build_rootfs(&manifest).map_err(Error::from)
            } else {
                cache
                    .rebuild_rootfs(&manifest)
                    .map(RootfsGuard::Build)
                    .map_err(Error::from)
            }
        })
        .await?;
        let builder = match guard {
            RootfsGuard::Ready(rootfs) => {
                tracing::info!(
                    "using cached {} ({})",
                    reference.familiar(),
                    image.manifest_digest
                );
                return Ok((rootfs, true, DownloadStats::default()));
            }
            RootfsGuard::Build(builder) => builder,
        };
        if self.offline {
            tracing::info!(
                "rebuilding the rootfs of {} ({}) from cached blobs",
                reference.familiar(),
                image.manifest_digest
            );
        } else {
            tracing::info!("pulling {}", reference.familiar());
        }
        let (rootfs, stats) = self.build(reference, image, builder, reuse).await?;
        Ok((rootfs, false, stats))
    }
}

/// Whether a pull that failed with `error` should start over: a corrupt cached blob (it was
/// removed, so the next attempt fetches it), or a layer a mirror served with the wrong digest
/// or size, once the client has distrusted that mirror (`distrusted_now` above
/// `distrusted_before`, the client's count before the attempt), so the next attempt fetches
/// the blob from the next source. The caller bounds the attempts.
fn worth_retrying(error: &Error, distrusted_before: usize, distrusted_now: usize) -> bool {
    match error {
        Error::CorruptCachedBlob { .. } => true,
        Error::Registry(
            tank_registry::Error::DigestMismatch { .. } | tank_registry::Error::SizeMismatch { .. },
        ) => distrusted_now > distrusted_before,
        _ => false,
    }
}

#[cfg(test)]
mod tests;
