//! The error type of tank-reference.

use crate::{Algorithm, Digest};

/// Why a reference, digest or pattern was refused, or why streamed content failed
/// verification.
///
/// Every parse error carries the input as given (`input`) and the part of it that is wrong
/// (a repository, tag, digest or algorithm, or a `reason` naming it). When the wrong part is
/// the whole input (a digest parsed on its own), the message names it once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The reference is the empty string (Go's `ErrNameEmpty`).
    #[error("invalid reference \"\": repository name must have at least one component")]
    NameEmpty,

    /// The reference does not follow the grammar (Go's `ErrReferenceInvalidFormat`);
    /// `reason` names the offending part: the registry, a path component, or what is
    /// missing. Tags and digests that break the grammar have their own variants.
    #[error("invalid reference {input:?}: {reason}")]
    InvalidFormat {
        /// The reference as given.
        input: String,
        /// Which part is wrong and how.
        reason: String,
    },

    /// The repository part holds upper-case letters (Go's `ErrNameContainsUppercase`);
    /// registry host names may hold them.
    #[error("invalid reference {input:?}: repository name {repository:?} must be lowercase")]
    NameContainsUppercase {
        /// The reference as given.
        input: String,
        /// The repository part that is not lower-case.
        repository: String,
    },

    /// The full normalised name (registry and repository, e.g. `docker.io/library/x`) is
    /// longer than 255 characters (Go's `ErrNameTooLong`).
    #[error(
        "invalid reference {input:?}: repository name is {length} characters long, more than {max}"
    )]
    NameTooLong {
        /// The reference as given.
        input: String,
        /// The length of the normalised name.
        length: usize,
        /// The limit, [`NAME_TOTAL_LENGTH_MAX`](crate::NAME_TOTAL_LENGTH_MAX).
        max: usize,
    },

    /// A 64-character lower-case hexadecimal string was given where a name was expected:
    /// it would be mistaken for an image ID (Go: "cannot specify 64-byte hexadecimal
    /// strings").
    #[error(
        "invalid reference {input:?}: a 64-character hexadecimal string is an image ID, not a repository name"
    )]
    NameIsIdentifier {
        /// The reference as given.
        input: String,
    },

    /// [`Reference::parse_canonical`](crate::Reference::parse_canonical) was given a valid
    /// reference that is not written in its full normalised form (Go's
    /// `ErrNameNotCanonical`).
    #[error("reference {input:?} is not canonical: write it as {canonical:?}")]
    NameNotCanonical {
        /// The reference as given.
        input: String,
        /// Its canonical form.
        canonical: String,
    },

    /// A tag does not match `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}` (Go's
    /// `ErrTagInvalidFormat`, or `ErrReferenceInvalidFormat` inside a reference).
    #[error("invalid tag {tag:?}{}: {reason}", within(.input, .tag))]
    InvalidTag {
        /// The reference (or tag) as given.
        input: String,
        /// The tag.
        tag: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A digest is not `algorithm:hex`, or its hex part has characters its algorithm does
    /// not allow (go-digest's `ErrDigestInvalidFormat`).
    #[error("invalid digest {digest:?}{}: {reason}", within(.input, .digest))]
    InvalidDigestFormat {
        /// The reference or digest as given.
        input: String,
        /// The digest part.
        digest: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A well-formed digest uses an algorithm tank does not verify: only sha256 and sha512
    /// are supported (go-digest's `ErrDigestUnsupported`).
    #[error(
        "unsupported digest algorithm {algorithm:?}{}: only sha256 and sha512 are supported",
        within(.input, .algorithm)
    )]
    UnsupportedDigestAlgorithm {
        /// The reference, digest or algorithm name as given.
        input: String,
        /// The algorithm named.
        algorithm: String,
    },

    /// The hex part of a digest has the wrong length for its algorithm (go-digest's
    /// `ErrDigestInvalidLength`).
    #[error(
        "invalid digest length in {digest:?}{}: {algorithm} needs {expected} hex characters, got {actual}",
        within(.input, .digest)
    )]
    InvalidDigestLength {
        /// The reference or digest as given.
        input: String,
        /// The digest part.
        digest: String,
        /// The algorithm named.
        algorithm: Algorithm,
        /// The length the algorithm needs.
        expected: usize,
        /// The length given.
        actual: usize,
    },

    /// A pattern given to [`Reference::familiar_match`](crate::Reference::familiar_match) is
    /// malformed (Go's `path.ErrBadPattern`).
    #[error("invalid pattern {pattern:?}: {reason}")]
    InvalidPattern {
        /// The pattern as given.
        pattern: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// Streamed content did not have the expected size: reported by
    /// [`Verifier::update`](crate::Verifier::update) as soon as it overflows, or by
    /// [`Verifier::finish`](crate::Verifier::finish) when it is short.
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

/// `" in \"<input>\""` when the wrong part is only a piece of the input, else nothing.
fn within(input: &str, part: &str) -> String {
    if input == part {
        String::new()
    } else {
        format!(" in {input:?}")
    }
}
