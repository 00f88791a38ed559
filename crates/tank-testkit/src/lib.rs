//! Test support for tank: a real registry on a free loopback port (plain HTTP, or HTTPS with
//! a certificate from a CA made for the test: [`RegistryBuilder::tls`], [`TestCertificates`]),
//! and builders for tar layers and OCI image layouts whose sizes and digests are computed,
//! never hand-maintained.
//!
//! ```
//! use tank_testkit::{ImageBuilder, OciLayoutBuilder, Platform, TarBuilder};
//!
//! let layer = TarBuilder::new()
//!     .dir("etc", 0o755)
//!     .file("etc/motd", "hello\n", 0o644)
//!     .symlink("etc/greeting", "motd");
//! let image = ImageBuilder::new(Platform::new("linux", "amd64"))
//!     .layer(&layer)
//!     .entrypoint(&["/bin/sh"])
//!     .env("GREETING=hello");
//! let dir = tempfile::tempdir()?;
//! let summary = OciLayoutBuilder::new().image("latest", image).write(dir.path())?;
//! let digest = summary.get("latest").expect("tagged latest").digest();
//! assert!(dir.path().join("blobs/sha256").join(&digest["sha256:".len()..]).is_file());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! With `docker-registry` installed (Debian package `docker-registry`; another binary can be
//! named in `TANK_DOCKER_REGISTRY`), [`Registry::start`] runs CNCF Distribution on
//! `127.0.0.1:<free port>` with its own storage, and [`Registry::push_fixture`] copies one of
//! the checked-in `fixtures/` layouts into it with `skopeo` (`TANK_SKOPEO` likewise).
//!
//! This crate does not depend on any tank crate and never skips: when a tool it drives is
//! missing, it returns an error that says how to install it, and tests surface it with `expect`.
//!
//! # Limitations
//!
//! - Registries are stopped by `Drop`; a test process killed with SIGKILL leaves its registry
//!   running (it is in the same process group, so Ctrl-C stops both).
//! - zstd layers are deterministic only for a given zstd library version (pinned by Cargo.lock).
//! - Only sha256 digests are produced.
//! - Linux only: it looks for programs on `PATH` and for processes under `/proc`.

mod error;
mod fixtures;
mod json;
mod noise;
mod oci;
mod rawtar;
mod registry;
mod skopeo;
mod tarball;
mod tls;
mod tree;
mod usage;

pub use error::Error;
pub use fixtures::{
    FIXTURE_NAMES, LAYER_FIXTURE_NAMES, LAYER_FIXTURES_DIR, check_fixtures, fixture_layouts,
    fixtures_dir, layer_fixture_layouts, write_fixtures,
};
pub use json::canonical_json;
pub use noise::{Xorshift, noise};
pub use oci::{
    Blob, Built, BuiltImage, BuiltIndex, HistoryEntry, ImageBuilder, IndexBuilder, LayoutSummary,
    LayoutTag, MediaTypes, OciLayoutBuilder, Platform, media_type, read_layout_tags,
};
pub use rawtar::{
    Magic, RAW_BLOCK, RawHeader, SparseFile, end_of_archive, padded, pax_header, pax_record,
};
pub use registry::{
    ACCESS_LOG_MARKER, HttpResponse, LoggedRequest, Registry, RegistryBuilder, basic_auth_header,
    docker_config_json, parse_access_log, write_docker_config,
};
pub use skopeo::{CopyOptions, LayoutSource, skopeo_copy, skopeo_inspect_raw};
pub use tarball::{Compression, EntryKind, LongNames, TarBuilder, TarEntry, gzip, zstd_compress};
pub use tls::{TEST_TLS_HOST, TestCertificates};
pub use tree::{Entry, Kind, Tree, escape, umoci_unpack};
pub use usage::{Measured, Usage, output_with_usage, try_wait_with_usage, wait_with_usage};

use sha2::{Digest as _, Sha256};

/// The `sha256:<hex>` digest of `bytes`, as registries and OCI layouts write it.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

/// The lower-case hex sha256 of `bytes`, without the `sha256:` prefix.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for byte in hash {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty_input_is_the_well_known_value() {
        // The sha256 of nothing, as printed by `sha256sum </dev/null`.
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_ne!(sha256_digest(b"a"), sha256_digest(b""));
        assert_eq!(sha256_hex(b"abc").len(), 64);
    }
}
