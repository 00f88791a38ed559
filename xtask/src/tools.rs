//! What the tasks share: cargo, running a command whose failure is an error, the tools the
//! demo, the tests and the registry need (installed with apt-get as root), and making a
//! tree removable.

use std::env;
use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::workspace_root;

pub(crate) fn cargo() -> Command {
    // Cargo sets CARGO for the programs it runs; fall back to PATH.
    Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

pub(crate) fn run_command(mut command: Command) -> anyhow::Result<()> {
    let shown = format!("{command:?}");
    eprintln!("xtask: running {shown}");
    let status = command
        .current_dir(workspace_root())
        .status()
        .with_context(|| format!("starting {shown}"))?;
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    Ok(())
}

/// The programs the demo and the tests drive, each with the Debian package holding it.
const TOOLS: &[(&str, &str)] = &[
    ("docker-registry", "docker-registry"),
    ("skopeo", "skopeo"),
    ("umoci", "umoci"),
    // GNU time (/usr/bin/time) measures the hostile pulls' peak RSS; openssl makes the
    // TLS registry's CA; chattr pins an unremovable cache leftover; GNU tar writes the
    // reference sparse archives. Debian ships them by default.
    ("time", "time"),
    ("openssl", "openssl"),
    ("chattr", "e2fsprogs"),
    ("tar", "tar"),
];

pub(crate) fn on_path(program: &str) -> bool {
    env::var_os("PATH")
        .is_some_and(|path| env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

pub(crate) fn running_as_root() -> bool {
    fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().next())
            == Some("0")
    })
}

/// Makes sure the [`TOOLS`] are installed: as root, installs the missing ones with
/// apt-get; otherwise fails naming the command to run.
pub(crate) fn ensure_tools() -> anyhow::Result<()> {
    let missing: Vec<&str> = TOOLS
        .iter()
        .filter(|(program, _)| !on_path(program))
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let install = format!("apt-get install -y {}", missing.join(" "));
    if !running_as_root() || !on_path("apt-get") {
        bail!(
            "missing {}: install them first (as root: `{install}`)",
            missing.join(", ")
        );
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    let mut update = Command::new("apt-get");
    update.args(["update", "-qq"]);
    run_command(update)?;
    let mut apt = Command::new("apt-get");
    apt.args(["install", "-y", "-qq"]).args(&missing);
    apt.env("DEBIAN_FRONTEND", "noninteractive");
    run_command(apt)?;
    Ok(())
}

/// Makes every directory in `root` writable so it can be removed (a rootfs may hold
/// read-only directories).
pub(crate) fn make_tree_writable(root: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&dir) else {
            continue;
        };
        if !meta.is_dir() {
            continue;
        }
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755));
        if let Ok(entries) = std::fs::read_dir(&dir) {
            stack.extend(entries.flatten().map(|entry| entry.path()));
        }
    }
}
