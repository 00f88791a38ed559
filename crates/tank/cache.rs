//! `tank cache`: list cached images, remove what nothing references, rehash blobs, and
//! print where the cache is.

use std::io::Write;
use std::path::PathBuf;
use tank_registry::printable::escape as printable;

use tank_cache::{Cache, CacheDir, CacheOptions};

/// Flags of `tank cache`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The cache directory (default: $TANK_CACHE, else $XDG_CACHE_HOME/tank, else
    /// ~/.cache/tank).
    #[arg(long, value_name = "DIR", global = true)]
    cache: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// List the cached references with their platform, manifest digest and sizes.
    Ls {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove blobs and rootfs that no cached reference reaches.
    Gc {
        /// Only list what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Rehash every cached blob; remove (and list) those whose bytes do not match.
    Verify,
    /// Print the cache directory.
    Path,
}

pub(crate) fn run(args: Args, allow_untrusted_cache: bool) -> anyhow::Result<()> {
    let dir = CacheDir::resolve(args.cache)?;
    let mut out = std::io::stdout().lock();
    if let Command::Path = args.command {
        writeln!(out, "{}", dir.display())?;
        return Ok(out.flush()?);
    }
    let cache = Cache::open_with(
        &dir,
        &CacheOptions::default().allow_untrusted_root(allow_untrusted_cache),
    )?;
    match args.command {
        Command::Ls { json } => {
            let refs = cache.list_refs()?;
            if json {
                let items: Vec<serde_json::Value> = refs
                    .iter()
                    .map(|cached| {
                        serde_json::json!({
                            "registry": cached.key.registry,
                            "repository": cached.key.repository,
                            "tag_or_digest": cached.key.tag_or_digest,
                            "platform": cached.key.platform,
                            "manifest_digest": cached.record.manifest_digest.to_string(),
                            "index_digest": cached.record.index_digest.as_ref().map(ToString::to_string),
                            "blob_bytes": cached.blob_bytes,
                            "rootfs_bytes": cached.rootfs_bytes,
                            "written_at": cached.record.written_at,
                        })
                    })
                    .collect();
                serde_json::to_writer_pretty(&mut out, &items)?;
                writeln!(out)?;
            } else {
                writeln!(
                    out,
                    "{:<50} {:<16} {:<19} {:>10} {:>10}",
                    "REFERENCE", "PLATFORM", "MANIFEST", "BLOBS", "ROOTFS"
                )?;
                for cached in &refs {
                    let separator = if cached.key.tag_or_digest.contains(':') {
                        '@'
                    } else {
                        ':'
                    };
                    let name = format!(
                        "{}/{}{separator}{}",
                        cached.key.registry, cached.key.repository, cached.key.tag_or_digest
                    );
                    let digest = cached.record.manifest_digest.to_string();
                    writeln!(
                        out,
                        "{:<50} {:<16} {:<19} {:>10} {:>10}",
                        printable(&name),
                        printable(&cached.key.platform),
                        &digest[..digest.len().min(19)],
                        human(cached.blob_bytes),
                        human(cached.rootfs_bytes)
                    )?;
                }
            }
        }
        Command::Gc { dry_run } => {
            let report = cache.gc(dry_run)?;
            let verb = if dry_run { "would remove" } else { "removed" };
            for digest in &report.blobs {
                writeln!(out, "{verb} blob {digest}")?;
            }
            for digest in &report.rootfs {
                writeln!(out, "{verb} rootfs {digest}")?;
            }
            writeln!(
                out,
                "{verb} {} blobs and {} rootfs, {}",
                report.blobs.len(),
                report.rootfs.len(),
                human(report.bytes)
            )?;
        }
        Command::Verify => {
            let report = cache.verify()?;
            for digest in &report.removed {
                writeln!(out, "removed corrupt blob {digest}")?;
            }
            writeln!(
                out,
                "checked {} blobs, {} corrupt",
                report.checked,
                report.removed.len()
            )?;
            if !report.removed.is_empty() {
                out.flush()?;
                anyhow::bail!(
                    "{} cached blobs were corrupt and have been removed; the next pull fetches them again",
                    report.removed.len()
                );
            }
        }
        Command::Path => {}
    }
    Ok(out.flush()?)
}

/// Bytes in binary units, e.g. `1.5 MiB`.
pub(crate) fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
