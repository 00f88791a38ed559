//! tank-image: pull orchestration, image config interpretation and image assembly, the
//! one crate that knows the pull policy (platform choice, offline and refresh, layer order).
//!
//! [`pull`] resolves a reference (the host's platform from an index, or the one asked for),
//! downloads the layers the cache lacks in parallel, verifies them, applies them in order as
//! each arrives, and returns the assembled rootfs; [`RunSpec`] turns the image config into
//! what a runtime executes (argv, env, cwd, numeric uid/gid read from the rootfs's own
//! `/etc/passwd` and `/etc/group`):
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tank_image::{PullOptions, RunOverrides, RunSpec, pull};
//!
//! let reference = "127.0.0.1:5000/app:1.0".parse()?;
//! let pulled = pull(&reference, &PullOptions::default()).await?;
//! let spec = RunSpec::for_pulled(&pulled, &RunOverrides::default())?;
//! println!("run {:?} as uid {} in {}", spec.args, spec.user.uid, pulled.rootfs.display());
//! # Ok(()) }
//! ```
//!
//! The crates whose types this API uses are re-exported ([`reference`](mod@reference) with [`Digest`] and
//! [`Reference`], [`registry`] with its [`registry::ClientConfig`], [`cache`],
//! [`oci_spec`]), so a runtime depends on tank-image alone and never on mismatched
//! versions of them.
//!
//! [`inspect`] resolves a reference to its platform manifest and config without
//! downloading layers.
//!
//! [`layer_from_dir`], [`layer_from_entries`] and [`layer_from_diff`] build deterministic
//! gzip, zstd or plain layers in one streaming pass; [`assemble`] turns a config and layers
//! into an [`Image`] whose every size and digest (diff_ids, layers, config, manifest) it
//! computed; [`write_layout`] and [`read_layout`] write and read OCI image layouts (images
//! and multi-platform [`ImageIndex`]es, tags as `ref.name` annotations), verifying each blob.
//!
//! [`push_image`] and [`push_index`] send an image or index to a registry (blobs the
//! repository lacks, several at once, then the manifests); [`copy`] moves an image or a whole
//! index between registries and OCI layouts ([`Endpoint`]), keeping every manifest's bytes
//! and so its digest, skipping blobs the destination has and mounting them between
//! repositories of one registry.
//!
//! This crate does not speak HTTP (tank-registry does), does not write into the cache
//! directory (tank-cache does) and does not parse tar streams (tank-layer does).
//!
//! # Limitations
//!
//! - [`copy`] refuses nested indexes, and copies into a layout only images whose layers have
//!   media types tank reads; from one registry to another each blob passes through a
//!   temporary file (on disk, not in memory) unless it is mounted or already there.
//! - Layers are built with sha256 digests only; a diff of two trees compares mtimes in whole
//!   seconds, and sockets are left out of layers (tar cannot hold them).
//! - [`read_layout`] reads one level of index (an index of indexes is refused) and takes
//!   diff_ids from the config without decompressing layers to check them.
//! - A layer is extracted while it downloads, from bytes that are verified only when its
//!   download ends: the rootfs is built in a temporary directory and published only after
//!   every layer verified, and extraction is contained in that directory either way.
//! - [`pull`] needs a tokio runtime (it spawns download tasks and blocking work).
//! - Platform matching knows the variants of `arm` and `arm64`; other architectures'
//!   variants (e.g. `amd64/v3`) must be asked for exactly.

// No unwrap() in library code; unit tests may (clippy.toml: allow-unwrap-in-tests).
#![deny(clippy::unwrap_used)]

mod assemble;
mod build;
mod copy;
mod error;
mod inspect;
mod layout;
mod oci;
mod platform;
mod pull;
mod run_spec;
mod task;

pub use oci_spec;
pub use tank_cache as cache;
pub use tank_reference::{self as reference, Digest, Reference};
pub use tank_registry as registry;

pub use assemble::{AssembleOptions, Image, ImageIndex, IndexOptions, assemble};
pub use build::{
    BlobRef, Compression, EntryKind, LayerBlob, LayerBuilder, LayerEntry, LayerOptions,
    layer_from_diff, layer_from_dir, layer_from_entries,
};
pub use copy::{
    BlobInfo, Copied, CopyOptions, DEFAULT_CONCURRENT_TRANSFERS, DEFAULT_LAYOUT_TAG, Endpoint,
    PushOptions, Transfer, TransferProgress, copy, push_image, push_index,
};
pub use error::Error;
pub use inspect::{CONFIG_SIZE_LIMIT, InspectOptions, Inspected, inspect};
pub use layout::{ImageOrIndex, Layout, LayoutEntry, LayoutItem, read_layout, write_layout};
pub use oci::{Descriptor, Format, REF_NAME_ANNOTATION};
pub use platform::Platform;
pub use pull::{
    DEFAULT_CONCURRENT_DOWNLOADS, DEFAULT_MAX_LAYERS, LayerInfo, PullOptions, PullProgress, Pulled,
    Puller, pull,
};
pub use run_spec::{DEFAULT_PATH, RunOverrides, RunSpec, RunUser, USER_DB_SIZE_LIMIT};
/// What [`Error::Layer`] carries: why a layer could not be applied.
pub use tank_layer::Error as LayerError;
/// Layer extraction options, as [`PullOptions::extract`] takes them.
pub use tank_layer::ExtractOptions;
/// The most manifest or index bytes tank reads, from a registry or an OCI layout (also the
/// cap on a layout's `index.json`).
pub use tank_registry::MANIFEST_LIMIT;
