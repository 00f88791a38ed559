//! tank-layer: apply one OCI image layer (a tar stream, plain, gzip or zstd) onto a
//! directory that already holds the layers below it, with whiteouts, and report the
//! diff_id it computed.
//!
//! This crate is a skeleton: nothing is implemented yet (see issue 3). It will know
//! nothing about registries or blob digests, and never touch a path outside the
//! directory it is given.
