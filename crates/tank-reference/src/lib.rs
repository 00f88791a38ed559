//! Container image references and content digests: parse, validate, normalise and print
//! them exactly as Docker does, and verify streamed bytes against a digest.
//!
//! ```
//! use tank_reference::{Algorithm, Digest, Reference};
//!
//! let reference: Reference = "alpine".parse()?;
//! assert_eq!(reference.registry(), "docker.io");
//! assert_eq!(reference.repository(), "library/alpine");
//! assert_eq!(reference.tag(), None); // no tag written; `latest` is what gets fetched
//! assert_eq!(reference.to_string(), "docker.io/library/alpine:latest");
//!
//! let reference: Reference = "ghcr.io/org/app:1.2".parse()?;
//! assert_eq!(reference.familiar(), "ghcr.io/org/app:1.2");
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
//! Reference parsing is `ParseNormalizedNamed` of Go's `github.com/distribution/reference`
//! (v0.5), written by hand from its grammar; that package's test tables run against this
//! crate as data. Digest parsing is go-digest's `Parse`, for sha256 and sha512.
//!
//! This crate does not do I/O: no files, no network, no environment, no clock. It knows
//! nothing of registries beyond Docker Hub's naming defaults (`docker.io`, `library/`,
//! `index.docker.io`); which host serves a registry, and how, is tank-registry's business.
//!
//! # Limitations
//!
//! - Digests are sha256 or sha512. go-digest's sha384, and algorithms the grammar allows
//!   but nobody ships, are refused with [`Error::UnsupportedDigestAlgorithm`].
//! - The 255-character limit counts the full normalised name with its registry, as
//!   distribution/reference v0.5 does (v0.6 counts only the path).
//! - A first component that Docker takes for a registry but that is no valid host
//!   (`foo_bar.com/app`) is refused; Go accepts it as a registry-less path.
//! - [`Reference::familiar_name`] keeps `docker.io/` where Go's `FamiliarName` drops it
//!   although the rest would then read as another registry (`docker.io/example.com/app`).
//! - `Display` and [`Reference::familiar`] print `:latest` when neither tag nor digest was
//!   written, while [`Reference::tag`] still says `None`; so such a reference parses back
//!   from its printed form tagged `latest`.

// No unwrap() in library code; unit tests may (clippy.toml: allow-unwrap-in-tests).
#![deny(clippy::unwrap_used)]

mod digest;
mod error;
#[doc(hidden)]
pub mod grammar;
mod pattern;
mod reference;

pub use digest::{Algorithm, Digest, Hasher, Verifier};
pub use error::Error;
pub use reference::{
    AnyReference, DEFAULT_REGISTRY, DEFAULT_TAG, LEGACY_DEFAULT_REGISTRY, NAME_TOTAL_LENGTH_MAX,
    OFFICIAL_REPOSITORY_PREFIX, Reference,
};
