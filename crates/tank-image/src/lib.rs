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
//! let config = serde_json::from_value(pulled.config.clone())?;
//! let spec = RunSpec::from_config(&config, &pulled.rootfs, &RunOverrides::default())?;
//! println!("run {:?} as uid {} in {}", spec.args, spec.user.uid, pulled.rootfs.display());
//! # Ok(()) }
//! ```
//!
//! [`inspect`] resolves a reference to its platform manifest and config without
//! downloading layers.
//!
//! This crate does not speak HTTP (tank-registry does), does not write into the cache
//! directory (tank-cache does) and does not parse tar streams (tank-layer does).
//!
//! # Limitations
//!
//! - Image assembly and push (issue 6) are not built yet.
//! - A layer is extracted while it downloads, from bytes that are verified only when its
//!   download ends: the rootfs is built in a temporary directory and published only after
//!   every layer verified, and extraction is contained in that directory either way.
//! - [`pull`] needs a tokio runtime (it spawns download tasks and blocking work).
//! - Platform matching knows the variants of `arm` and `arm64`; other architectures'
//!   variants (e.g. `amd64/v3`) must be asked for exactly.

mod error;
mod inspect;
mod platform;
mod pull;
mod runspec;

pub use error::Error;
pub use inspect::{CONFIG_SIZE_LIMIT, InspectOptions, Inspected, inspect};
pub use platform::Platform;
pub use pull::{
    DEFAULT_CONCURRENT_DOWNLOADS, LayerInfo, PullOptions, PullProgress, Pulled, Puller, pull,
};
pub use runspec::{DEFAULT_PATH, RunOverrides, RunSpec, RunUser, USER_DB_SIZE_LIMIT};
/// Layer extraction options, as [`PullOptions::extract`] takes them.
pub use tank_layer::ExtractOptions;
