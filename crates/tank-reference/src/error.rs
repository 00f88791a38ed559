//! The error type of tank-reference.

use crate::Digest;

/// Why a reference or digest was refused, or why streamed content failed verification.
///
/// Every parse error carries the input as given, and the part of it that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The reference is the empty string.
    #[error("invalid reference \"\": repository name must have at least one component")]
    NameEmpty,
    /// The reference does not follow the grammar; `reason` names the offending part.
    #[error("invalid reference format {input:?}: {reason}")]
    InvalidFormat {
        /// The reference as given.
        input: String,
        /// Which part is wrong and how.
        reason: String,
    },
    /// The repository part holds upper-case letters (registry host names may).
    #[error("invalid reference format {input:?}: repository name {repository:?} must be lowercase")]
    NameContainsUppercase {
        /// The reference as given.
        input: String,
        /// The repository part that is not lower-case.
        repository: String,
    },
    /// The full name (registry and repository) is longer than 255 characters.
    #[error(
        "invalid reference {input:?}: repository name is {length} characters long, more than {max}"
    )]
    NameTooLong {
        /// The reference as given.
        input: String,
        /// The length of the normalised name.
        length: usize,
        /// The limit, 255.
        max: usize,
    },
    /// A 64-character hexadecimal string was given where a name was expected (it would be
    /// mistaken for an image ID).
    #[error("invalid repository name {input:?}: cannot specify 64-byte hexadecimal strings")]
    NameIsIdentifier {
        /// The reference as given.
        input: String,
    },
    /// A tag does not match `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    #[error("invalid tag {tag:?}: {reason}")]
    InvalidTag {
        /// The tag as given.
        tag: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A digest is not `algorithm:hex`, or its hex part has the wrong characters.
    #[error("invalid digest {input:?}: {reason}")]
    InvalidDigestFormat {
        /// The digest as given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A well-formed digest uses an algorithm tank does not verify (only sha256 and sha512).
    #[error(
        "unsupported digest algorithm {algorithm:?} in {input:?}: tank verifies sha256 and sha512"
    )]
    UnsupportedDigestAlgorithm {
        /// The digest as given.
        input: String,
        /// The algorithm named.
        algorithm: String,
    },
    /// The hex part of a digest has the wrong length for its algorithm.
    #[error(
        "invalid digest length in {input:?}: {algorithm} needs {expected} hex characters, got {actual}"
    )]
    InvalidDigestLength {
        /// The digest as given.
        input: String,
        /// The algorithm named.
        algorithm: String,
        /// The length the algorithm needs.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// Streamed content did not have the expected size (reported as soon as it overflows,
    /// or at the end when it is short).
    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The digest the content was expected to have.
        digest: Digest,
        /// The size expected.
        expected: u64,
        /// The size seen (so far, when it overflowed).
        actual: u64,
    },
    /// Streamed content hashed to another digest than expected.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The digest expected.
        expected: Digest,
        /// The digest of the bytes seen.
        actual: Digest,
    },
}
