//! Pulling an image into the cache and assembling its root filesystem: the pull policy
//! (online, offline, refresh), parallel layer downloads and in-order extraction.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write as _};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Context, Poll};

use oci_spec::image::{Descriptor, ImageManifest};
use tank_cache::{BlobWriter, Cache, CacheDir, RefRecord, RootfsBuilder, RootfsGuard};
use tank_layer::{Compression, ExtractOptions};
use tank_reference::{Digest, Reference, Verifier};
use tank_registry::{Client, ClientConfig};
use tokio::io::AsyncWrite;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::inspect::{descriptor_digest, resolve};
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

/// One layer as [`PullProgress::start`] announces it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LayerInfo {
    /// The layer blob's digest.
    pub digest: Digest,
    /// Its size in bytes, as the manifest declares it.
    pub size: u64,
    /// Whether it will not be downloaded: it is already in the cache, or a lower layer of
    /// the same image has the same digest (each digest is downloaded once per pull).
    pub cached: bool,
}

/// Receives the progress of a pull that builds a rootfs. Calls come from several tasks and
/// threads; every method has an empty default.
pub trait PullProgress: Send + Sync {
    /// The layers to apply, lowest first, before any download starts.
    fn start(&self, reference: &Reference, manifest: &Digest, layers: &[LayerInfo]) {
        let _ = (reference, manifest, layers);
    }
    /// `bytes` of layer `index` have been received so far (a retried download may restart
    /// from 0).
    fn downloading(&self, index: usize, bytes: u64) {
        let _ = (index, bytes);
    }
    /// Layer `index` is downloaded, verified and stored.
    fn downloaded(&self, index: usize) {
        let _ = index;
    }
    /// Layer `index` has been applied onto the rootfs.
    fn extracted(&self, index: usize) {
        let _ = index;
    }
}

/// A pulled image: its assembled root filesystem and what it was resolved to.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Pulled {
    /// The assembled root filesystem, `rootfs/<algo>/<hex>` in the cache.
    pub rootfs: PathBuf,
    /// The image config.
    pub config: serde_json::Value,
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
/// [`Error::OfflineWithRefresh`]; [`Error::NotCached`] offline; registry errors (unreachable,
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
                Err(Error::CorruptCachedBlob { digest, actual })
                    if attempt < CORRUPT_BLOB_RETRIES =>
                {
                    tracing::warn!(
                        "cached blob {digest} was corrupt (hashes to {actual}); removed, fetching it again"
                    );
                    attempt += 1;
                }
                // A mirror served wrong bytes for a layer: the client will not ask it for
                // that blob again, so the next attempt fetches it from the next source.
                Err(Error::Registry(
                    error @ (tank_registry::Error::DigestMismatch { .. }
                    | tank_registry::Error::SizeMismatch { .. }),
                )) if self.client.distrusted_mirrors() > distrusted_before
                    && attempt < CORRUPT_BLOB_RETRIES =>
                {
                    tracing::warn!("{error}; fetching it again from the next source");
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
        let config = self.cached_config(reference, &manifest_digest, &manifest)?;
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
        let raw = self.verified_blob(reference, digest, crate::MANIFEST_SIZE_LIMIT, "manifest")?;
        serde_json::from_slice(&raw).map_err(|error| Error::BadCachedRecord {
            what: format!("cached manifest {digest} of {reference} does not parse: {error}"),
        })
    }

    /// The config blob `manifest` names, read from the cache and checked against its digest.
    fn cached_config(
        &self,
        reference: &Reference,
        manifest_digest: &Digest,
        manifest: &ImageManifest,
    ) -> Result<serde_json::Value, Error> {
        let digest = descriptor_digest(
            reference,
            manifest.config(),
            &format!("config of manifest {manifest_digest}"),
        )?;
        let raw = self.verified_blob(reference, &digest, crate::CONFIG_SIZE_LIMIT, "config")?;
        serde_json::from_slice(&raw).map_err(|source| Error::InvalidConfig {
            reference: reference.to_string(),
            digest: digest.to_string(),
            source,
        })
    }

    /// A small cached blob (manifest, config) of at most `limit` bytes that hashes to its
    /// name; a missing, oversized or corrupt one (removed) is reported as not cached.
    fn verified_blob(
        &self,
        reference: &Reference,
        digest: &Digest,
        limit: u64,
        what: &str,
    ) -> Result<Vec<u8>, Error> {
        let not_cached = |why: &str| Error::BadCachedRecord {
            what: format!(
                "the {what} {digest} of {reference} is {why} in the cache; pull it online"
            ),
        };
        let file = match self.cache.open_blob(digest) {
            Ok(file) => file,
            Err(tank_cache::Error::BlobNotCached { .. }) => return Err(not_cached("missing")),
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
            return Err(not_cached("corrupt (removed)"));
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

    /// Downloads the layers the cache lacks (in parallel, bounded) and applies every layer
    /// in order as soon as it and the ones below it are ready.
    async fn build(
        &self,
        reference: &Reference,
        image: &ImagePlan,
        builder: RootfsBuilder,
        reuse: bool,
    ) -> Result<(PathBuf, DownloadStats), Error> {
        // A digest listed again is downloaded once: its later occurrences are applied from
        // the cache, after the first one's download verified (layers apply in order).
        let mut seen = std::collections::HashSet::new();
        let infos: Vec<LayerInfo> = image
            .layers
            .iter()
            .map(|layer| LayerInfo {
                digest: layer.digest.clone(),
                size: layer.size,
                cached: !seen.insert(&layer.digest)
                    || (reuse && self.cache.blob_path(&layer.digest).is_some()),
            })
            .collect();
        if let Some(progress) = &self.progress {
            progress.start(reference, &image.manifest_digest, &infos);
        }
        let semaphore = Arc::new(Semaphore::new(self.concurrent_downloads));
        let mut downloads: Vec<Option<JoinHandle<Result<u64, Error>>>> = Vec::new();
        let mut feeds: Vec<Option<Arc<Feed>>> = Vec::new();
        for (index, (layer, info)) in image.layers.iter().zip(&infos).enumerate() {
            if info.cached {
                downloads.push(None);
                feeds.push(None);
                continue;
            }
            if self.offline {
                abort_all(&downloads);
                return Err(Error::BadCachedRecord {
                    what: format!(
                        "layer {index} ({}) of {reference} is not cached; pull it online",
                        layer.digest
                    ),
                });
            }
            let feed = Arc::new(Feed::default());
            let task = Download {
                client: self.client.clone(),
                cache: self.cache.clone(),
                reference: reference.clone(),
                digest: layer.digest.clone(),
                size: layer.size,
                index,
                replace: !reuse,
                progress: self.progress.clone(),
                feed: Arc::clone(&feed),
            };
            let semaphore = Arc::clone(&semaphore);
            downloads.push(Some(tokio::spawn(async move {
                let _permit = semaphore
                    .acquire_owned()
                    .await
                    .map_err(|_| Error::Internal("download semaphore closed".to_owned()))?;
                task.run().await
            })));
            feeds.push(Some(feed));
        }

        // Layer by layer, in order: extract while the layer downloads (following its file
        // as it grows), then collect the download's verdict. Downloads of later layers go
        // on meanwhile; a layer that arrived early is read from its file.
        let mut stats = DownloadStats::default();
        let dest = builder.path().to_path_buf();
        for (index, layer) in image.layers.iter().enumerate() {
            let job = Extraction {
                cache: self.cache.clone(),
                reference: reference.to_string(),
                index,
                layer: layer.clone(),
                dest: dest.clone(),
                options: self.extract.clone(),
                feed: feeds[index].take(),
            };
            let extracted = blocking(move || job.run()).await;
            // The download's own error says more than the extraction's "download failed".
            if let Some(handle) = downloads[index].take() {
                let downloaded = match handle.await {
                    Ok(result) => result,
                    Err(error) => Err(Error::Internal(format!("layer download task: {error}"))),
                };
                match downloaded {
                    Ok(bytes) => {
                        stats.layers += 1;
                        stats.bytes += bytes;
                    }
                    Err(error) => {
                        abort_all(&downloads);
                        return Err(error);
                    }
                }
            }
            if let Err(error) = extracted {
                abort_all(&downloads);
                return Err(error);
            }
            if let Some(progress) = &self.progress {
                progress.extracted(index);
            }
        }
        let rootfs = blocking(move || builder.commit().map_err(Error::from)).await?;
        Ok((rootfs, stats))
    }
}

/// What one pull downloaded.
#[derive(Clone, Copy, Debug, Default)]
struct DownloadStats {
    layers: usize,
    bytes: u64,
}

/// One layer of the image being assembled.
#[derive(Clone, Debug)]
struct LayerPlan {
    digest: Digest,
    size: u64,
    compression: Compression,
    diff_id: String,
}

/// What assembling one image needs: its manifest digest, config digest and layers, checked
/// for consistency before anything is downloaded.
#[derive(Clone, Debug)]
struct ImagePlan {
    manifest_digest: Digest,
    config_digest: Digest,
    layers: Vec<LayerPlan>,
}

impl ImagePlan {
    fn from_inspected(
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

    fn new(
        reference: &Reference,
        manifest_digest: Digest,
        manifest: &ImageManifest,
        config: &serde_json::Value,
        max_layers: usize,
    ) -> Result<ImagePlan, Error> {
        if manifest.layers().len() > max_layers {
            return Err(Error::TooManyLayers {
                reference: reference.to_string(),
                manifest: manifest_digest.to_string(),
                layers: manifest.layers().len(),
                limit: max_layers,
            });
        }
        let config_digest = descriptor_digest(
            reference,
            manifest.config(),
            &format!("config of manifest {manifest_digest}"),
        )?;
        let diff_ids: Vec<String> = config
            .pointer("/rootfs/diff_ids")
            .and_then(serde_json::Value::as_array)
            .map(|ids| {
                ids.iter()
                    .map(|id| id.as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default();
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
        diff_id: String,
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

/// Downloads one layer blob into the cache.
struct Download {
    client: Client,
    cache: Cache,
    reference: Reference,
    digest: Digest,
    size: u64,
    index: usize,
    /// A refresh: replace the cached copy with the fresh one.
    replace: bool,
    progress: Option<Arc<dyn PullProgress>>,
    /// Tells the extraction how far the blob has been written, and whether it verified.
    feed: Arc<Feed>,
}

impl Download {
    /// Streams the blob through a verifying cache writer and commits it; returns its size.
    /// The feed ends verified only after the commit; on failure (or when the task is
    /// dropped) it ends failed.
    async fn run(self) -> Result<u64, Error> {
        let guard = FeedGuard(Arc::clone(&self.feed));
        let bytes = self.fetch().await?;
        guard.verified();
        if let Some(progress) = &self.progress {
            progress.downloaded(self.index);
        }
        Ok(bytes)
    }

    async fn fetch(&self) -> Result<u64, Error> {
        let (cache, digest, size) = (self.cache.clone(), self.digest.clone(), self.size);
        let writer =
            // The registry client hashes every byte it hands the sink and fails on a
            // mismatch, and the writer is committed only after it succeeded: no second hash.
            blocking(move || {
                cache
                    .blob_writer_checked_by_caller(&digest, size)
                    .map_err(Error::from)
            })
            .await?;
        // A second handle on the temporary file, opened now (the name goes at the commit),
        // for the extraction that follows the download.
        let path = writer.temp_path().to_path_buf();
        let follower = File::open(&path).map_err(|source| Error::Io {
            operation: "open",
            path,
            source,
        })?;
        self.feed.update(|state| state.file = Some(follower));
        let mut sink = ProgressSink {
            writer,
            index: self.index,
            progress: self.progress.clone(),
            feed: Arc::clone(&self.feed),
        };
        let bytes = self
            .client
            .fetch_blob(&self.reference, &self.digest, Some(self.size), &mut sink)
            .await?;
        let (cache, digest, replace) = (self.cache.clone(), self.digest.clone(), self.replace);
        blocking(move || {
            if replace {
                cache.remove_blob(&digest)?;
            }
            sink.writer.commit()?;
            Ok(())
        })
        .await?;
        Ok(bytes)
    }
}

/// An [`AsyncWrite`] over a cache [`BlobWriter`], reporting progress. Writes go straight to
/// the (buffered) file: page-cache writes of network-sized chunks do not block for long.
struct ProgressSink {
    writer: BlobWriter,
    index: usize,
    progress: Option<Arc<dyn PullProgress>>,
    feed: Arc<Feed>,
}

impl AsyncWrite for ProgressSink {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // Flushed at once, so the extraction following the file sees every byte accepted.
        let written = self
            .writer
            .write(buf)
            .and_then(|n| self.writer.flush().map(|()| n));
        if written.is_ok() {
            let readable = self.writer.bytes_written();
            self.feed.update(|state| state.readable = readable);
            if let Some(progress) = &self.progress {
                progress.downloading(self.index, readable);
            }
        }
        Poll::Ready(written)
    }

    fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.writer.flush())
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

/// Applies one cached layer blob onto the rootfs being built, verifying the blob's digest
/// as it is read.
struct Extraction {
    cache: Cache,
    reference: String,
    index: usize,
    layer: LayerPlan,
    dest: PathBuf,
    options: ExtractOptions,
    /// The download to follow; `None` for a blob already cached (read and rehashed).
    feed: Option<Arc<Feed>>,
}

impl Extraction {
    fn run(mut self) -> Result<(), Error> {
        let report = match self.feed.take() {
            Some(feed) => self.extract_downloading(feed)?,
            None => self.extract_cached()?,
        };
        if report.end_of_archive_missing {
            // Accepted as Go's archive/tar (so containerd, Docker, umoci) accepts it.
            tracing::debug!(
                "layer {} ({}) of {} ends without the end-of-archive blocks",
                self.index,
                self.layer.digest,
                self.reference
            );
        }
        if report.diff_id != self.layer.diff_id {
            return Err(Error::DiffIdMismatch {
                reference: self.reference,
                index: self.index,
                digest: self.layer.digest.to_string(),
                expected: self.layer.diff_id,
                actual: report.diff_id,
            });
        }
        Ok(())
    }

    /// Extracts a layer while it downloads. What it reads is unverified until the
    /// download commits the blob; the caller waits for that verdict before trusting the
    /// rootfs, and a failed download fails the whole build (the temporary rootfs goes).
    fn extract_downloading(&self, feed: Arc<Feed>) -> Result<tank_layer::LayerReport, Error> {
        let layer_error = |source| Error::Layer {
            reference: self.reference.clone(),
            index: self.index,
            digest: self.layer.digest.to_string(),
            source,
        };
        let reader = GrowingReader::open(feed).map_err(|source| Error::Io {
            operation: "follow the download of",
            path: PathBuf::from(self.layer.digest.to_string()),
            source,
        })?;
        tank_layer::extract(
            io::BufReader::with_capacity(256 * 1024, reader),
            self.layer.compression,
            &self.dest,
            &self.options,
        )
        .map_err(layer_error)
    }

    /// Extracts a cached blob, rehashing it on the way: a corrupt one is removed.
    fn extract_cached(&self) -> Result<tank_layer::LayerReport, Error> {
        let file = self.cache.open_blob(&self.layer.digest)?;
        let mut reader = VerifyingReader {
            inner: io::BufReader::with_capacity(256 * 1024, file),
            verifier: Some(self.layer.digest.verifier(None)),
        };
        let extracted = tank_layer::extract(
            &mut reader,
            self.layer.compression,
            &self.dest,
            &self.options,
        );
        // Hash what the extraction left unread (padding after the compressed stream), then
        // check the blob before trusting anything the extraction reported.
        let rest = io::copy(&mut reader, &mut io::sink());
        self.check_blob(reader.verifier.take(), rest)?;
        extracted.map_err(|source| Error::Layer {
            reference: self.reference.clone(),
            index: self.index,
            digest: self.layer.digest.to_string(),
            source,
        })
    }

    /// A cached blob that does not hash to its digest is removed and reported.
    fn check_blob(&self, verifier: Option<Verifier>, rest: io::Result<u64>) -> Result<(), Error> {
        let path = self.cache.blob_path(&self.layer.digest);
        if let Err(source) = rest {
            return Err(Error::Io {
                operation: "read",
                path: path.unwrap_or_default(),
                source,
            });
        }
        let verifier = verifier.expect("the verifier is taken once, after reading");
        let actual_size = verifier.bytes();
        match verifier.finish() {
            Ok(_) if actual_size == self.layer.size => Ok(()),
            outcome => {
                let actual = match outcome {
                    Ok(digest) => {
                        format!("{digest} with {actual_size} bytes, not {}", self.layer.size)
                    }
                    Err(error) => error.to_string(),
                };
                self.cache.remove_blob(&self.layer.digest)?;
                Err(Error::CorruptCachedBlob {
                    digest: self.layer.digest.to_string(),
                    actual,
                })
            }
        }
    }
}

/// How far a layer blob being downloaded has been written, shared between the download
/// task and the extraction that follows the file as it grows.
#[derive(Debug, Default)]
struct Feed {
    state: Mutex<FeedState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct FeedState {
    /// A read handle on the temporary file, once the download has created it; taken by
    /// the extraction.
    file: Option<File>,
    /// Bytes written and flushed to it.
    readable: u64,
    /// `Some(true)` once the blob verified and was stored, `Some(false)` if the download
    /// failed.
    outcome: Option<bool>,
}

impl Feed {
    fn update(&self, change: impl FnOnce(&mut FeedState)) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        change(&mut state);
        self.changed.notify_all();
    }

    /// Blocks until `ready` says something.
    fn wait<T>(&self, mut ready: impl FnMut(&FeedState) -> Option<T>) -> T {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(answer) = ready(&state) {
                return answer;
            }
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Ends a feed: failed unless [`FeedGuard::verified`] was called, also when the download
/// task is dropped mid-way.
struct FeedGuard(Arc<Feed>);

impl FeedGuard {
    fn verified(self) {
        self.0.update(|state| state.outcome = Some(true));
    }
}

impl Drop for FeedGuard {
    fn drop(&mut self) {
        self.0.update(|state| {
            state.outcome.get_or_insert(false);
        });
    }
}

/// Reads a blob file while it is being downloaded, waiting for more bytes; ends when the
/// download verified, fails when it failed.
struct GrowingReader {
    file: File,
    feed: Arc<Feed>,
    position: u64,
}

impl GrowingReader {
    /// Waits for the download to create its file and takes the handle on it.
    fn open(feed: Arc<Feed>) -> io::Result<GrowingReader> {
        let mut state = feed.state.lock().unwrap_or_else(PoisonError::into_inner);
        let file = loop {
            if let Some(file) = state.file.take() {
                break file;
            }
            if state.outcome == Some(false) {
                return Err(io::Error::other("the layer's download failed"));
            }
            state = feed
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        };
        drop(state);
        Ok(GrowingReader {
            file,
            feed,
            position: 0,
        })
    }
}

impl Read for GrowingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let position = self.position;
        let available = self.feed.wait(|state| {
            if state.readable > position {
                Some(Ok(state.readable - position))
            } else {
                match state.outcome {
                    Some(true) => Some(Ok(0)),
                    Some(false) => Some(Err(())),
                    None => None,
                }
            }
        });
        let available = available.map_err(|()| io::Error::other("the layer's download failed"))?;
        if available == 0 {
            return Ok(0);
        }
        let wanted = usize::try_from(available)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let read = self.file.read(&mut buf[..wanted])?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the blob file is shorter than the bytes written to it",
            ));
        }
        self.position += read as u64;
        Ok(read)
    }
}

/// Feeds every byte read through a digest verifier.
struct VerifyingReader<R> {
    inner: R,
    verifier: Option<Verifier>,
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        if let Some(verifier) = self.verifier.as_mut() {
            verifier
                .update(&buf[..read])
                .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
        }
        Ok(read)
    }
}

fn abort_all(downloads: &[Option<JoinHandle<Result<u64, Error>>>]) {
    for handle in downloads.iter().flatten() {
        handle.abort();
    }
}

/// Runs blocking filesystem work (locks, fsyncs, extraction, hashing, layout writes) on
/// tokio's blocking pool, off the async workers.
pub(crate) async fn blocking<T, F>(work: F) -> Result<T, Error>
where
    F: FnOnce() -> Result<T, Error> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| Error::Internal(format!("blocking task: {error}")))?
}
