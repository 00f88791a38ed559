//! tank-cache: the on-disk, content-addressed store of verified blobs, assembled root
//! filesystems (`rootfs/<manifest-digest>`) and ref sidecars (`refs/…json`) that make
//! offline pulls possible.
//!
//! This crate is a skeleton: nothing is implemented yet (see issue 3). It will never talk
//! to a registry or know the pull policy; it only stores, verifies and hands out what
//! callers give it.
