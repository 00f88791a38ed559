//! `tank run-spec`: pull an image (or take it from the cache) and print how to run it:
//! argv, environment, working directory and numeric user, as JSON.

use std::io::Write;

use anyhow::Context;
use tank_image::{RunOverrides, RunSpec};
use tank_registry::ClientConfig;

use crate::pull::{PullFlags, parse_reference};

/// Flags of `tank run-spec`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The image: `alpine`, `ghcr.io/org/app:1.2`, `127.0.0.1:5000/app@sha256:…`.
    #[arg(value_name = "REF")]
    reference: String,

    /// Replace the image's entrypoint (repeat for more words; `--entrypoint ''` clears
    /// it). A non-empty entrypoint drops the image's command.
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    entrypoint: Vec<String>,

    /// Run as USER, UID, USER:GROUP, UID:GID or UID:GROUP, resolved in the image's
    /// /etc/passwd and /etc/group.
    #[arg(long, short = 'u', value_name = "USER[:GROUP]")]
    user: Option<String>,

    /// Set an environment variable (KEY=VALUE); repeatable, wins over the image's.
    #[arg(long, short = 'e', value_name = "KEY=VALUE")]
    env: Vec<String>,

    /// The working directory (absolute).
    #[arg(long, short = 'w', value_name = "DIR")]
    workdir: Option<String>,

    #[command(flatten)]
    pub(crate) pull: PullFlags,

    /// Replace the image's command (after `--`).
    #[arg(last = true, value_name = "CMD")]
    cmd: Vec<String>,
}

pub(crate) async fn run(
    client: ClientConfig,
    args: Args,
    allow_untrusted_cache: bool,
) -> anyhow::Result<()> {
    let reference = parse_reference(&args.reference)?;
    let pulled = crate::pull::pull(client, &args.pull, &reference, allow_untrusted_cache).await?;
    // Not under the context below: the error names the reference and the config itself.
    let config = pulled.image_config()?;
    let overrides = RunOverrides {
        entrypoint: match args.entrypoint.as_slice() {
            [] => None,
            [only] if only.is_empty() => Some(Vec::new()),
            words => Some(words.to_vec()),
        },
        cmd: (!args.cmd.is_empty()).then_some(args.cmd),
        env: args.env,
        workdir: args.workdir,
        user: args.user,
    };
    let spec = RunSpec::from_config(&config, &pulled.rootfs, &overrides)
        .with_context(|| format!("{reference}: cannot derive the run parameters"))?;
    let value = serde_json::json!({
        "reference": pulled.reference.to_string(),
        "manifest_digest": pulled.manifest_digest.to_string(),
        "rootfs": pulled.rootfs,
        "process": spec,
    });
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &value)?;
    writeln!(out)?;
    Ok(out.flush()?)
}
