//! The pull policy's decisions, apart from any registry: when a failed pull starts over.

use tank_reference::{Algorithm, Digest};

use super::worth_retrying;
use crate::Error;

fn digest(bytes: &[u8]) -> Digest {
    Digest::of(Algorithm::Sha256, bytes)
}

fn digest_mismatch() -> Error {
    Error::Registry(tank_registry::Error::DigestMismatch {
        what: "blob from a mirror".to_owned(),
        expected: digest(b"expected"),
        actual: digest(b"actual"),
    })
}

fn size_mismatch() -> Error {
    Error::Registry(tank_registry::Error::SizeMismatch {
        what: "blob from a mirror".to_owned(),
        expected: 10,
        actual: 11,
    })
}

#[test]
fn a_corrupt_cached_blob_is_always_worth_a_retry() {
    let error = Error::CorruptCachedBlob {
        digest: digest(b"blob"),
        actual: "something else".to_owned(),
    };
    assert!(worth_retrying(&error, 0, 0));
    assert!(worth_retrying(&error, 2, 2));
}

#[test]
fn wrong_bytes_are_worth_a_retry_only_when_a_mirror_was_distrusted_meanwhile() {
    for error in [digest_mismatch(), size_mismatch()] {
        assert!(worth_retrying(&error, 0, 1), "{error}");
        assert!(worth_retrying(&error, 1, 3), "{error}");
        // The registry itself sent them (no mirror newly distrusted): nothing else to ask.
        assert!(!worth_retrying(&error, 0, 0), "{error}");
        assert!(!worth_retrying(&error, 2, 2), "{error}");
    }
}

#[test]
fn other_errors_are_not_worth_a_retry() {
    let errors = [
        Error::OfflineWithRefresh,
        Error::Internal("a task panicked".to_owned()),
        Error::LayerCountMismatch {
            reference: "example.com/app".to_owned(),
            layers: 2,
            diff_ids: 1,
        },
        Error::Registry(tank_registry::Error::Unauthorized {
            registry: "example.com".to_owned(),
            repository: "app".to_owned(),
            message: "denied".to_owned(),
        }),
    ];
    for error in errors {
        assert!(!worth_retrying(&error, 0, 1), "{error}");
    }
}
