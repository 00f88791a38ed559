//! `tank pull`: pull an image into the cache and print its rootfs path; and the progress
//! display shared with `tank run-spec`.

use crate::board::{self, Board};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use indicatif::ProgressBar;
use tank_image::{ExtractOptions, LayerInfo, Platform, PullOptions, PullProgress, Pulled};
use tank_reference::{Digest, Reference};
use tank_registry::ClientConfig;

/// Flags of `tank pull`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The image: `alpine`, `ghcr.io/org/app:1.2`, `127.0.0.1:5000/app@sha256:…`.
    #[arg(value_name = "REF")]
    reference: String,

    #[command(flatten)]
    pub(crate) pull: PullFlags,

    /// Print one JSON object (rootfs, manifest digest, reference, config) instead of the
    /// rootfs path.
    #[arg(long)]
    json: bool,
}

/// The flags every command that pulls shares.
#[derive(Debug, clap::Args)]
pub(crate) struct PullFlags {
    /// The cache directory (default: $TANK_CACHE, else $XDG_CACHE_HOME/tank, else
    /// ~/.cache/tank).
    #[arg(long, value_name = "DIR")]
    pub(crate) cache: Option<PathBuf>,

    /// Use only the cache: no network access at all.
    #[arg(long, conflicts_with = "refresh")]
    pub(crate) offline: bool,

    /// Ignore cached blobs and rootfs: fetch everything again.
    #[arg(long)]
    pub(crate) refresh: bool,

    /// Which image of a multi-platform index to pull (default: this host's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub(crate) platform: Option<Platform>,

    /// Refuse images with more layers than this (`unlimited` for no limit).
    #[arg(long, value_name = "N", default_value = "500", value_parser = parse_count)]
    pub(crate) max_layers: Limit,

    /// Refuse a layer whose uncompressed tar (or one sparse file in it) is larger than
    /// this: bytes, or with a suffix K, M, G, T (powers of 1024); `unlimited` for no limit.
    #[arg(long, value_name = "SIZE", default_value = "64G", value_parser = parse_size)]
    pub(crate) max_layer_size: Limit,

    /// Refuse a layer with more tar entries than this (`unlimited` for no limit).
    #[arg(long, value_name = "N", default_value = "1000000", value_parser = parse_count)]
    pub(crate) max_layer_entries: Limit,
}

/// A limit from the command line; `None` is `unlimited`.
pub(crate) type Limit = Option<u64>;

/// `N` or `unlimited`.
fn parse_count(text: &str) -> Result<Limit, String> {
    if text == "unlimited" {
        return Ok(None);
    }
    text.parse::<u64>()
        .map(Some)
        .map_err(|_| format!("{text:?} is not a number or `unlimited`"))
}

/// `N`, `N` with a suffix K, M, G or T (also KiB… and KB…, all powers of 1024), or
/// `unlimited`.
pub(crate) fn parse_size(text: &str) -> Result<Limit, String> {
    if text == "unlimited" {
        return Ok(None);
    }
    let bad = || format!("{text:?} is not a size (e.g. 500M, 64G, 1048576) or `unlimited`");
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, suffix) = text.split_at(digits);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let shift = match suffix.trim_start().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err(bad()),
    };
    number
        .checked_mul(1 << shift)
        .map(Some)
        .ok_or_else(|| format!("{text:?} is too large"))
}

pub(crate) async fn run(
    client: ClientConfig,
    args: Args,
    allow_untrusted_cache: bool,
) -> anyhow::Result<()> {
    let reference = parse_reference(&args.reference)?;
    let pulled = pull(client, &args.pull, &reference, allow_untrusted_cache).await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let value = serde_json::json!({
            "rootfs": pulled.rootfs,
            "manifest_digest": pulled.manifest_digest.to_string(),
            "index_digest": pulled.index_digest.as_ref().map(ToString::to_string),
            "reference": pulled.reference.to_string(),
            "platform": pulled.platform.to_string(),
            "cached": pulled.cached,
            "config": pulled.config,
        });
        serde_json::to_writer_pretty(&mut out, &value)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{}", pulled.rootfs.display())?;
    }
    Ok(out.flush()?)
}

pub(crate) fn parse_reference(text: &str) -> anyhow::Result<Reference> {
    text.parse()
        .with_context(|| format!("bad image reference {text:?}"))
}

/// Pulls `reference` with the shared flags, drawing progress on stderr.
pub(crate) async fn pull(
    client: ClientConfig,
    flags: &PullFlags,
    reference: &Reference,
    allow_untrusted_cache: bool,
) -> anyhow::Result<Pulled> {
    let progress = Arc::new(Progress::new());
    let options = PullOptions {
        cache: flags.cache.clone(),
        allow_untrusted_cache,
        offline: flags.offline,
        refresh: flags.refresh,
        platform: flags.platform.clone(),
        client,
        progress: Some(progress.clone()),
        max_layers: flags.max_layers.map_or(usize::MAX, |n| {
            usize::try_from(n).unwrap_or(usize::MAX).max(1)
        }),
        extract: ExtractOptions {
            max_bytes: flags.max_layer_size,
            max_entries: flags.max_layer_entries,
            ..ExtractOptions::default()
        },
        ..PullOptions::default()
    };
    let result = tank_image::pull(reference, &options).await;
    progress.finish();
    result.map_err(|error| {
        let flag = limit_flag(&error);
        let error = anyhow::Error::new(error);
        match flag {
            Some(flag) => error.context(format!("refused by {flag}")),
            None => error,
        }
    })
}

/// The flag that sets the limit an error names, to tell the user how to raise it.
fn limit_flag(error: &tank_image::Error) -> Option<&'static str> {
    match error {
        tank_image::Error::TooManyLayers { .. } => Some("--max-layers"),
        tank_image::Error::Layer {
            source: tank_image::LayerError::LimitExceeded { limit, .. },
            ..
        } => match *limit {
            "max_bytes" => Some("--max-layer-size"),
            "max_entries" => Some("--max-layer-entries"),
            _ => None,
        },
        tank_image::Error::Registry(tank_registry::Error::Stalled { stall, .. }) => match stall {
            tank_registry::Stall::TooSlow { .. } => Some("--min-progress"),
            tank_registry::Stall::Headers { .. } => Some("--header-timeout"),
            tank_registry::Stall::Document { .. } => Some("--document-timeout"),
            _ => None,
        },
        _ => None,
    }
}

/// Per-layer progress (see [`Board`]).
type Progress = Board<LayerInfo>;

impl PullProgress for Board<LayerInfo> {
    fn start(&self, _: &Reference, _: &Digest, layers: &[LayerInfo]) {
        let style = board::style(11);
        self.with_state(|state| {
            state.items = layers.to_vec();
            if let Some(multi) = &self.bars {
                for (index, layer) in layers.iter().enumerate() {
                    let bar = multi.add(ProgressBar::new(layer.size));
                    bar.set_style(style.clone());
                    bar.set_prefix(format!("{} {}", index + 1, board::short(&layer.digest)));
                    if layer.cached {
                        bar.set_position(layer.size);
                        bar.set_message("cached");
                    } else {
                        bar.set_message("waiting");
                        bar.enable_steady_tick(Duration::from_millis(200));
                    }
                    state.bars.push(bar);
                }
            }
        });
    }

    fn downloading(&self, index: usize, bytes: u64) {
        self.with_state(|state| {
            if let Some(bar) = state.bars.get(index) {
                if bar.position() == 0 && bytes > 0 {
                    bar.set_message("downloading");
                }
                bar.set_position(bytes);
            }
        });
    }

    fn downloaded(&self, index: usize) {
        self.with_state(|state| {
            let total = state.items.len();
            if let Some(bar) = state.bars.get(index) {
                bar.set_message("downloaded");
            } else if let Some(layer) = state.items.get(index) {
                tracing::info!(
                    "downloaded layer {}/{total} {} ({} bytes)",
                    index + 1,
                    layer.digest,
                    layer.size
                );
            }
        });
    }

    fn extracted(&self, index: usize) {
        self.with_state(|state| {
            let total = state.items.len();
            if let Some(bar) = state.bars.get(index) {
                bar.finish_with_message("extracted");
            } else if let Some(layer) = state.items.get(index) {
                tracing::info!("extracted layer {}/{total} {}", index + 1, layer.digest);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_count, parse_size};

    #[test]
    fn sizes_and_counts_parse_with_suffixes_and_unlimited() {
        assert_eq!(parse_size("1048576"), Ok(Some(1 << 20)));
        assert_eq!(parse_size("64G"), Ok(Some(64 << 30)));
        assert_eq!(parse_size("500MiB"), Ok(Some(500 << 20)));
        assert_eq!(parse_size("16k"), Ok(Some(16 << 10)));
        assert_eq!(parse_size("2T"), Ok(Some(2 << 40)));
        assert_eq!(parse_size("unlimited"), Ok(None));
        assert!(parse_size("").is_err());
        assert!(parse_size("12X").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999999999999T").is_err());
        assert!(parse_size("20000000T").unwrap_err().contains("too large"));
        assert_eq!(parse_count("500"), Ok(Some(500)));
        assert_eq!(parse_count("unlimited"), Ok(None));
        assert!(parse_count("5k").is_err());
    }
}
