//! tank-image: pull orchestration, image config interpretation and image assembly, the
//! one crate that knows the pull policy (platform choice, offline and refresh, layer order).
//!
//! Today it resolves a reference to the manifest for a platform and fetches its config
//! ([`inspect`]), choosing from image indexes by [`Platform`]:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tank_image::{InspectOptions, Platform, inspect};
//! use tank_registry::{Client, ClientConfig};
//!
//! let client = Client::new(ClientConfig::default())?;
//! let reference = "127.0.0.1:5000/app:1.0".parse()?;
//! let options = InspectOptions { platform: Some("linux/arm64".parse::<Platform>()?) };
//! let image = inspect(&client, &reference, &options).await?;
//! println!("{} has {} layers", image.manifest().digest(), image.layers().len());
//! # Ok(()) }
//! ```
//!
//! This crate does not speak HTTP (tank-registry does), does not write into the cache
//! directory (tank-cache does) and does not parse tar streams (tank-layer does).
//!
//! # Limitations
//!
//! - Pulling into a root filesystem, run parameters (`RunSpec`) and image assembly are not
//!   built yet (issues 4 and 6); only [`inspect`] and platform selection are.
//! - Platform matching knows the variants of `arm` and `arm64`; other architectures'
//!   variants (e.g. `amd64/v3`) must be asked for exactly.

mod error;
mod inspect;
mod platform;

pub use error::Error;
pub use inspect::{CONFIG_SIZE_LIMIT, InspectOptions, Inspected, inspect};
pub use platform::Platform;
