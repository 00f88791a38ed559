//! `cargo xtask registry`: a docker-registry on loopback in the foreground, seeded with
//! every fixture by tank's own push; and that seeding, which tests and the demo reuse.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::thread;

use anyhow::{Context as _, bail};
use tank_image::{CopyOptions, Endpoint};
use tank_registry::{Client, ClientConfig};
use tank_testkit::{FIXTURE_NAMES, Registry, fixtures_dir};

use crate::tools::ensure_tools;
use crate::{USAGE, workspace_root};

pub(crate) fn registry(options: &[String]) -> anyhow::Result<()> {
    let mut port = None;
    let mut seed = true;
    let mut options = options.iter();
    while let Some(option) = options.next() {
        match option.as_str() {
            "--port" => {
                let value = options.next().context("--port needs a number")?;
                port = Some(
                    value
                        .parse::<u16>()
                        .with_context(|| format!("--port {value:?} is not a port number"))?,
                );
            }
            "--no-seed" => seed = false,
            other => bail!("unknown option {other:?} for `registry`\n{USAGE}"),
        }
    }

    ensure_tools()?;
    // A kept directory under target/ rather than a temporary one: Ctrl-C ends this process
    // without running destructors, and the next start wipes what was left.
    let root = workspace_root().join("target").join("xtask-registry");
    stop_leftover_registry(&root);
    if root.exists() {
        fs::remove_dir_all(&root).with_context(|| format!("removing {}", root.display()))?;
    }
    let mut builder = Registry::builder().root_dir(&root);
    if let Some(port) = port {
        builder = builder.port(port);
    }
    let registry = builder.start()?;
    let pid_file = root.join("registry.pid");
    fs::write(&pid_file, registry.pid().to_string())
        .with_context(|| format!("writing {}", pid_file.display()))?;
    println!("registry: {} (pid {})", registry.url(), registry.pid());
    println!("storage:  {}", registry.storage_dir().display());
    println!("log:      {}", registry.log_path().display());
    if seed {
        for reference in seed_fixtures(&registry)? {
            println!("pushed    {reference}");
        }
    }
    println!("serving until Ctrl-C (the registry is in this process group and stops with it)");
    loop {
        thread::park();
    }
}

/// Stops the registry a previous `cargo xtask registry` left running if it died by a signal
/// that did not reach its process group: the pid in `registry.pid`, if that process is still
/// a `docker-registry` serving this directory's config.
fn stop_leftover_registry(root: &Path) {
    let Ok(pid) = fs::read_to_string(root.join("registry.pid")) else {
        return;
    };
    let pid = pid.trim();
    let Ok(command_line) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return;
    };
    let command_line = String::from_utf8_lossy(&command_line);
    let config = root.join("config.yml");
    if command_line.contains("docker-registry") && command_line.contains(&*config.to_string_lossy())
    {
        eprintln!("xtask: stopping the registry left running by an earlier run (pid {pid})");
        let _ = Command::new("kill").arg(pid).status();
        for _ in 0..100 {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                break;
            }
            thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}
/// Pushes every tag of every fixture to `registry` as `HOST/fixtures/<name>:<tag>` with
/// tank's own push (tank-image's `copy` from the OCI layout, digests unchanged); returns the
/// references.
pub(crate) fn seed_fixtures(registry: &Registry) -> anyhow::Result<Vec<String>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting an async runtime")?;
    let client = Client::new(ClientConfig::default())?;
    let mut references = Vec::new();
    for name in FIXTURE_NAMES {
        let dir = fixtures_dir().join(name);
        let layout = tank_image::read_layout(&dir)?;
        for tag in layout.tags() {
            let reference = format!("{}/fixtures/{name}:{tag}", registry.host());
            push_layout(&runtime, &client, &dir, tag, &reference)?;
            references.push(reference);
        }
    }
    Ok(references)
}

/// Pushes `tag` of the OCI layout `dir` to `reference` with tank's own push (tank-image's
/// `copy`, digests unchanged).
pub(crate) fn push_layout(
    runtime: &tokio::runtime::Runtime,
    client: &Client,
    dir: &Path,
    tag: &str,
    reference: &str,
) -> anyhow::Result<()> {
    let source = Endpoint::Layout {
        dir: dir.to_path_buf(),
        tag: tag.to_owned(),
    };
    let destination = Endpoint::Registry(reference.parse()?);
    runtime
        .block_on(tank_image::copy(
            client,
            &source,
            &destination,
            &CopyOptions::default(),
        ))
        .with_context(|| format!("pushing {source} to {reference}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_are_seeded_by_tank_with_their_digests() {
        let registry = Registry::start().unwrap();
        let references = seed_fixtures(&registry).unwrap();
        let mut expected = Vec::new();
        for name in FIXTURE_NAMES {
            for tagged in tank_testkit::read_layout_tags(&fixtures_dir().join(name)).unwrap() {
                expected.push((
                    format!("{}/fixtures/{name}:{}", registry.host(), tagged.tag),
                    tagged.digest,
                ));
            }
        }
        assert_eq!(
            references,
            expected
                .iter()
                .map(|(reference, _)| reference.clone())
                .collect::<Vec<_>>()
        );
        for (reference, digest) in expected {
            let raw =
                tank_testkit::skopeo_inspect_raw(&format!("docker://{reference}"), None).unwrap();
            assert_eq!(tank_testkit::sha256_digest(&raw), digest, "{reference}");
        }
    }
}
