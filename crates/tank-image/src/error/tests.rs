//! Each error's message says its own level only: what caused it is left to `source()`, so
//! a caller printing the chain says each thing once.

use std::error::Error as _;
use std::io;
use std::path::PathBuf;

use tank_reference::{Algorithm, Digest};

use super::Error;

#[test]
fn no_message_repeats_its_source() {
    let digest = Digest::of(Algorithm::Sha256, b"layer");
    let errors = [
        Error::Cache(tank_cache::Error::BlobNotCached {
            digest: digest.clone(),
        }),
        Error::Layer {
            reference: "example.com/app:1".to_owned(),
            index: 0,
            digest: digest.to_string(),
            source: tank_layer::Error::UnsupportedMediaType {
                media_type: "application/x-unknown".to_owned(),
            },
        },
        Error::Io {
            operation: "read",
            path: PathBuf::from("/cache/blobs/sha256/ab"),
            source: io::Error::other("the disk is on fire"),
        },
        Error::CachedManifestInvalid {
            reference: "example.com/app:1".to_owned(),
            digest,
            source: serde_json::from_str::<serde_json::Value>("{").expect_err("not JSON"),
        },
    ];
    for error in errors {
        let message = error.to_string();
        let source = error
            .source()
            .expect("these errors have a source")
            .to_string();
        assert!(
            !message.contains(&source),
            "{message:?} repeats its source {source:?}"
        );
    }
}

#[test]
fn the_chain_reads_as_one_line() {
    let error = Error::Io {
        operation: "read",
        path: PathBuf::from("/cache/blobs/sha256/ab"),
        source: io::Error::other("the disk is on fire"),
    };
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        line.push_str(": ");
        line.push_str(&error.to_string());
        cause = error.source();
    }
    assert_eq!(line, "read /cache/blobs/sha256/ab: the disk is on fire");
}
