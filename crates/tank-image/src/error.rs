//! The error type of tank-image.

use crate::Platform;

/// Everything that can go wrong in tank-image.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A platform string is not `OS/ARCH` or `OS/ARCH/VARIANT`.
    #[error("invalid platform {input:?}: {reason}")]
    InvalidPlatform {
        /// The text given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No manifest of an image index (or the single manifest's config) fits the platform.
    #[error(
        "no image for platform {wanted}; available: {}",
        list_platforms(available)
    )]
    NoMatchingPlatform {
        /// The platform asked for (or the host's).
        wanted: Platform,
        /// The platforms the image offers.
        available: Vec<Platform>,
    },
    /// A descriptor in a manifest or index carries a digest tank does not accept.
    #[error("{reference}: {what} has digest {value:?}, which tank cannot verify")]
    InvalidDescriptorDigest {
        /// The image reference being resolved.
        reference: String,
        /// Which descriptor (e.g. "config of manifest sha256:…").
        what: String,
        /// The digest text found.
        value: String,
        /// Why it was refused (boxed: it is rare, and keeps `Error` small).
        #[source]
        source: Box<tank_reference::Error>,
    },
    /// The image config blob is not a valid JSON image configuration.
    #[error("{reference}: config {digest} is not a valid image configuration")]
    InvalidConfig {
        /// The image reference being resolved.
        reference: String,
        /// The config blob's digest.
        digest: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// An index points at another index more times than tank follows.
    #[error("{reference}: image indexes nest deeper than {limit} levels")]
    IndexTooDeep {
        /// The image reference being resolved.
        reference: String,
        /// How many levels tank follows.
        limit: usize,
    },
    /// A registry operation failed; the source says which and why.
    #[error(transparent)]
    Registry(#[from] tank_registry::Error),
}

fn list_platforms(platforms: &[Platform]) -> String {
    if platforms.is_empty() {
        return "none declared".to_owned();
    }
    platforms
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
