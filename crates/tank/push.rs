//! `tank push LAYOUT[:TAG] REF`: push an image or a multi-platform index from an OCI image
//! layout to a registry and print its digest.

use std::io::Write;

use anyhow::Context;
use tank_image::Endpoint;
use tank_registry::ClientConfig;

use crate::copy::TransferFlags;

/// Flags of `tank push`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The OCI image layout directory and the tag of the image or index in it (`latest` when
    /// none): `out`, `out:v1`, `oci:out:v1`. The tag is what follows the last `:` when that
    /// holds no `/`.
    #[arg(value_name = "LAYOUT[:TAG]")]
    layout: String,

    /// Where to: `127.0.0.1:5000/team/app:1.0` (the manifest is put under its tag, else its
    /// digest, else `latest`).
    #[arg(value_name = "REF")]
    reference: String,

    #[command(flatten)]
    transfer: TransferFlags,
}

pub(crate) async fn run(client: ClientConfig, args: Args) -> anyhow::Result<()> {
    let layout = args.layout.strip_prefix("oci:").unwrap_or(&args.layout);
    let source = Endpoint::layout(layout).with_context(|| format!("bad layout {layout:?}"))?;
    let reference = crate::pull::parse_reference(&args.reference)?;
    let destination = Endpoint::Registry(reference);
    let pushed = crate::copy::transfer(client, &source, &destination, &args.transfer).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", pushed.manifest_digest)?;
    Ok(out.flush()?)
}
