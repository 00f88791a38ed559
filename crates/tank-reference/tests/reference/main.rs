//! Integration tests of tank-reference: the test tables of Go's
//! `github.com/distribution/reference` (v0.5 and v0.6) as data, digests and streaming
//! verification, error messages, and a property test over the grammar.

mod behaviour;
mod digest;
mod errors;
mod fuzz_corpus;
mod fuzz_invariants;
mod go_normalize;
mod go_reference;
mod go_regexp;
mod property;

use tank_reference::Error;

/// Which error a row expects. Go's tables name Go's sentinel errors; each row's comment
/// says which, and [`Kind`] is the variant of ours that stands for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Go's `ErrNameEmpty`.
    NameEmpty,
    /// Go's `ErrReferenceInvalidFormat` for the name part.
    InvalidFormat,
    /// Go's `ErrNameContainsUppercase`.
    Uppercase,
    /// Go's `ErrNameTooLong`.
    TooLong,
    /// Go's "cannot specify 64-byte hexadecimal strings".
    Identifier,
    /// Go's `ErrNameNotCanonical`.
    NotCanonical,
    /// Go's `ErrTagInvalidFormat`, or `ErrReferenceInvalidFormat` for the tag part.
    InvalidTag,
    /// go-digest's `ErrDigestInvalidFormat`, or `ErrReferenceInvalidFormat` for the digest part.
    DigestFormat,
    /// go-digest's `ErrDigestUnsupported`.
    DigestUnsupported,
    /// go-digest's `ErrDigestInvalidLength`.
    DigestLength,
    /// Go's `path.ErrBadPattern`.
    Pattern,
}

/// The [`Kind`] of an error; fails the test on a variant this suite does not know.
pub fn kind(error: &Error) -> Kind {
    match error {
        Error::NameEmpty => Kind::NameEmpty,
        Error::InvalidFormat { .. } => Kind::InvalidFormat,
        Error::NameContainsUppercase { .. } => Kind::Uppercase,
        Error::NameTooLong { .. } => Kind::TooLong,
        Error::NameIsIdentifier { .. } => Kind::Identifier,
        Error::NameNotCanonical { .. } => Kind::NotCanonical,
        Error::InvalidTag { .. } => Kind::InvalidTag,
        Error::InvalidDigestFormat { .. } => Kind::DigestFormat,
        Error::UnsupportedDigestAlgorithm { .. } => Kind::DigestUnsupported,
        Error::InvalidDigestLength { .. } => Kind::DigestLength,
        Error::InvalidPattern { .. } => Kind::Pattern,
        other => panic!("unexpected error variant: {other:?}"),
    }
}

/// Asserts that `result` failed with an error of `expected` kind, and that its message
/// names the input (so every error says which input is wrong).
#[track_caller]
pub fn assert_error<T: std::fmt::Debug>(result: Result<T, Error>, expected: Kind, input: &str) {
    match result {
        Ok(value) => panic!("{input:?}: expected {expected:?}, parsed {value:?}"),
        Err(error) => {
            assert_eq!(kind(&error), expected, "{input:?}: {error}");
            let message = error.to_string();
            assert!(
                message.contains(&format!("{input:?}")),
                "{input:?}: the message does not name the input: {message}"
            );
        }
    }
}
