//! `tank inspect`: resolve a reference and show its platform manifest, layers and config.

use std::io::Write;
use tank_registry::printable::escape as printable;

use anyhow::Context;
use tank_image::{InspectOptions, Platform};
use tank_reference::Reference;
use tank_registry::Client;

/// Flags of `tank inspect`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The image: `alpine`, `ghcr.io/org/app:1.2`, `127.0.0.1:5000/app@sha256:…`.
    #[arg(value_name = "REF")]
    reference: String,

    /// Which image of a multi-platform index to show (default: this host's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<Platform>,

    /// Print the platform manifest exactly as the registry served it.
    #[arg(long, conflicts_with = "json")]
    raw: bool,

    /// Print one JSON object (reference, digests, platform, layers, config).
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(client: &Client, args: Args) -> anyhow::Result<()> {
    let reference: Reference = args
        .reference
        .parse()
        .with_context(|| format!("bad image reference {:?}", args.reference))?;
    let options = InspectOptions {
        platform: args.platform,
    };
    let image = tank_image::inspect(client, &reference, &options).await?;

    let mut out = std::io::stdout().lock();
    if args.raw {
        out.write_all(image.manifest().raw())?;
        if !image.manifest().raw().ends_with(b"\n") {
            out.write_all(b"\n")?;
        }
        return Ok(out.flush()?);
    }

    let layers: Vec<serde_json::Value> = image
        .layers()
        .iter()
        .map(|layer| {
            serde_json::json!({
                "digest": layer.digest().to_string(),
                "size": layer.size(),
                "mediaType": layer.media_type().to_string(),
            })
        })
        .collect();
    if args.json {
        let value = serde_json::json!({
            "reference": reference.to_string(),
            "indexDigest": image.index().map(|index| index.digest().to_string()),
            "platform": image.platform().map(ToString::to_string),
            "manifestDigest": image.manifest().digest().to_string(),
            "mediaType": image.manifest().media_type(),
            "config": {
                "digest": image.image_manifest().config().digest().to_string(),
                "size": image.image_manifest().config().size(),
                "mediaType": image.image_manifest().config().media_type().to_string(),
            },
            "layers": layers,
            "imageConfig": image.config_json(),
        });
        serde_json::to_writer_pretty(&mut out, &value)?;
        writeln!(out)?;
        return Ok(out.flush()?);
    }

    writeln!(out, "Reference:  {reference}")?;
    if let Some(index) = image.index() {
        writeln!(
            out,
            "Index:      {} ({})",
            index.digest(),
            printable(index.media_type())
        )?;
    }
    if let Some(platform) = image.platform() {
        writeln!(out, "Platform:   {}", printable(&platform.to_string()))?;
    }
    writeln!(out, "Digest:     {}", image.manifest().digest())?;
    writeln!(
        out,
        "Media type: {}",
        printable(image.manifest().media_type())
    )?;
    let config = image.image_manifest().config();
    writeln!(
        out,
        "Config:     {} ({} bytes)",
        config.digest(),
        config.size()
    )?;
    let total: u64 = image.layers().iter().map(|layer| layer.size()).sum();
    writeln!(out, "Layers:     {} ({total} bytes)", image.layers().len())?;
    for layer in image.layers() {
        writeln!(
            out,
            "  {}  {:>12}  {}",
            layer.digest(),
            layer.size(),
            printable(layer.media_type().as_ref())
        )?;
    }
    writeln!(out, "Image config:")?;
    serde_json::to_writer_pretty(&mut out, image.config_json())?;
    writeln!(out)?;
    Ok(out.flush()?)
}
