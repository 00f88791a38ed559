//! `tank copy SRC DST`: copy an image or a whole multi-platform index between registries and
//! OCI layouts, digests unchanged; and the transfer display shared with `tank push`.

use crate::board::{self, Board};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use indicatif::ProgressBar;
use tank_image::{BlobInfo, Copied, CopyOptions, Endpoint, Transfer, TransferProgress};
use tank_reference::Digest;
use tank_registry::{Client, ClientConfig};

/// Flags of `tank copy`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Where from: a registry reference (`127.0.0.1:5000/app:1`, optionally `docker://…`) or
    /// `oci:DIR[:TAG]` (an OCI image layout; tag `latest` when none).
    #[arg(value_name = "SRC")]
    source: String,

    /// Where to, in the same forms as SRC. A layout is created if missing; its tag moves to
    /// the copied image.
    #[arg(value_name = "DST")]
    destination: String,

    #[command(flatten)]
    transfer: TransferFlags,
}

/// The flags `tank push` and `tank copy` share.
#[derive(Debug, clap::Args)]
pub(crate) struct TransferFlags {
    /// Upload blobs larger than BYTES in chunks of BYTES (for registries or proxies that
    /// limit request sizes); default: one request per blob.
    #[arg(long, value_name = "BYTES")]
    pub(crate) chunk_size: Option<u64>,
}

pub(crate) async fn run(client: ClientConfig, args: Args) -> anyhow::Result<()> {
    let source: Endpoint = args
        .source
        .parse()
        .with_context(|| format!("bad source {:?}", args.source))?;
    let destination: Endpoint = args
        .destination
        .parse()
        .with_context(|| format!("bad destination {:?}", args.destination))?;
    let copied = transfer(client, &source, &destination, &args.transfer).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", copied.manifest_digest)?;
    Ok(out.flush()?)
}

/// Copies `source` to `destination` with a progress display, and logs what was sent.
pub(crate) async fn transfer(
    client: ClientConfig,
    source: &Endpoint,
    destination: &Endpoint,
    flags: &TransferFlags,
) -> anyhow::Result<Copied> {
    let client = Client::new(client)?;
    let progress = Arc::new(Bars::new());
    let options = CopyOptions {
        progress: Some(progress.clone()),
        chunk_size: flags.chunk_size,
        ..CopyOptions::default()
    };
    tracing::info!("copying {source} to {destination}");
    let result = tank_image::copy(&client, source, destination, &options).await;
    progress.finish();
    let copied = result.with_context(|| format!("cannot copy {source} to {destination}"))?;
    let mounted = match copied.blobs_mounted {
        0 => String::new(),
        n => format!(", mounted {n}"),
    };
    tracing::info!(
        "{} {}: copied {} blobs ({} bytes){mounted}, skipped {}",
        copied.media_type,
        copied.manifest_digest,
        copied.blobs_copied,
        copied.bytes_copied,
        copied.blobs_skipped,
    );
    Ok(copied)
}

/// Per-blob progress (see [`Board`]).
type Bars = Board<BlobInfo>;

impl TransferProgress for Board<BlobInfo> {
    fn start(&self, blobs: &[BlobInfo]) {
        let style = board::style(8);
        self.with_state(|state| {
            state.items = blobs.to_vec();
            if let Some(multi) = &self.bars {
                for (index, blob) in blobs.iter().enumerate() {
                    let bar = multi.add(ProgressBar::new(blob.size));
                    bar.set_style(style.clone());
                    bar.set_prefix(format!("{} {}", index + 1, board::short(&blob.digest)));
                    bar.set_message("waiting");
                    bar.enable_steady_tick(Duration::from_millis(200));
                    state.bars.push(bar);
                }
            }
        });
    }

    fn transferring(&self, index: usize, bytes: u64) {
        self.with_state(|state| {
            if let Some(bar) = state.bars.get(index) {
                if bar.position() == 0 && bytes > 0 {
                    bar.set_message("sending");
                }
                bar.set_position(bytes);
            }
        });
    }

    fn finished(&self, index: usize, transfer: Transfer) {
        let outcome = match transfer {
            Transfer::Skipped => "exists",
            Transfer::Mounted => "mounted",
            _ => "copied",
        };
        self.with_state(|state| {
            let total = state.items.len();
            if let Some(bar) = state.bars.get(index) {
                if let Some(blob) = state.items.get(index) {
                    bar.set_position(blob.size);
                }
                bar.finish_with_message(outcome);
            } else if let Some(blob) = state.items.get(index) {
                tracing::info!(
                    "blob {}/{total} {} ({} bytes): {outcome}",
                    index + 1,
                    blob.digest,
                    blob.size
                );
            }
        });
    }

    fn manifest_written(&self, digest: &Digest, media_type: &str) {
        tracing::debug!("wrote manifest {digest} ({media_type})");
    }
}
