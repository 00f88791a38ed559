//! tank-reference: container image references and content digests: parse, validate,
//! normalise and print them exactly as Docker does, and verify streamed bytes against a
//! digest.
//!
//! ```
//! use tank_reference::{Algorithm, Digest, Reference};
//!
//! let reference: Reference = "ghcr.io/org/app:1.2".parse()?;
//! assert_eq!(reference.registry(), "ghcr.io");
//! assert_eq!(reference.repository(), "org/app");
//! assert_eq!(reference.tag(), Some("1.2"));
//!
//! let blob = b"hello";
//! let digest = Digest::of(Algorithm::Sha256, blob);
//! let mut verifier = digest.verifier(Some(blob.len() as u64));
//! verifier.update(&blob[..2])?;
//! verifier.update(&blob[2..])?;
//! assert_eq!(verifier.finish()?, digest);
//! # Ok::<(), tank_reference::Error>(())
//! ```
//!
//! Reference parsing is Go's `github.com/distribution/reference` `ParseNormalizedNamed`,
//! whose test tables this crate's tests carry as data; digest parsing is go-digest's.
//!
//! This crate does no I/O: no files, no network, no environment. It knows nothing of
//! registries beyond Docker Hub's naming defaults (`docker.io`, `library/`); which host
//! serves a registry is tank-registry's business.
//!
//! # Limitations
//!
//! - Digests are sha256 or sha512: go-digest's sha384, and algorithms the OCI grammar
//!   allows but nobody ships, are refused with [`Error::UnsupportedDigestAlgorithm`].
//! - A reference's `Display` prints `:latest` when neither tag nor digest was written
//!   (what a pull fetches); [`Reference::tag`] still says `None`.

mod digest;
mod error;
#[doc(hidden)]
pub mod grammar;
mod reference;

pub use digest::{Algorithm, Digest, Hasher, Verifier};
pub use error::Error;
pub use reference::{
    DEFAULT_REGISTRY, DEFAULT_TAG, LEGACY_DEFAULT_REGISTRY, NAME_TOTAL_LENGTH_MAX,
    OFFICIAL_REPOSITORY_PREFIX, Reference,
};
