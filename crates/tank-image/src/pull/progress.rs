//! What a pull reports as it goes: the [`PullProgress`] callbacks, the [`LayerInfo`] they
//! announce, and the download totals a [`super::Pulled`] carries.

use tank_reference::{Digest, Reference};

/// One layer as [`PullProgress::start`] announces it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LayerInfo {
    /// The layer blob's digest.
    pub digest: Digest,
    /// Its size in bytes, as the manifest declares it.
    pub size: u64,
    /// Whether it will not be downloaded: it is already in the cache, or a lower layer of
    /// the same image has the same digest (each digest is downloaded once per pull).
    pub cached: bool,
}

/// Receives the progress of a pull that builds a rootfs. Calls come from several tasks and
/// threads; every method has an empty default.
pub trait PullProgress: Send + Sync {
    /// The layers to apply, lowest first, before any download starts.
    fn start(&self, reference: &Reference, manifest: &Digest, layers: &[LayerInfo]) {
        let _ = (reference, manifest, layers);
    }
    /// `bytes` of layer `index` have been received so far (a retried download may restart
    /// from 0).
    fn downloading(&self, index: usize, bytes: u64) {
        let _ = (index, bytes);
    }
    /// Layer `index` is downloaded, verified and stored.
    fn downloaded(&self, index: usize) {
        let _ = index;
    }
    /// Layer `index` has been applied onto the rootfs.
    fn extracted(&self, index: usize) {
        let _ = index;
    }
}

/// What one pull downloaded.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct DownloadStats {
    pub(super) layers: usize,
    pub(super) bytes: u64,
}
