//! Run parameters from an image config: the OCI image-spec conversion rules, with the
//! user resolved against the rootfs's own `/etc/passwd` and `/etc/group`.
//!
//! [`RunSpec::from_config`] applies, in this order:
//!
//! - **args**: the entrypoint (the override's, else the config's `Entrypoint`) followed by
//!   the command (the override's, else the config's `Cmd`). A non-empty entrypoint override
//!   drops the config's `Cmd`; an empty one (Docker's `--entrypoint ''`) clears the
//!   entrypoint and keeps it. Nothing to run at all is [`Error::NoCommand`].
//! - **env**: the config's `Env` in order; each override `KEY=VALUE` replaces the first
//!   entry with that key in place (dropping later duplicates) or is appended. When no
//!   `PATH` is set, [`DEFAULT_PATH`] is put first, as Docker does.
//! - **cwd**: the override, else the config's `WorkingDir`, else `/`; it must be absolute.
//! - **user**: `""`, `user`, `uid`, `user:group`, `uid:gid`, `uid:group`, `user:gid` (and
//!   `:group`, meaning uid 0). Names are looked up in the rootfs's `/etc/passwd` and
//!   `/etc/group`; a numeric uid is looked up too, for its primary group, home and name,
//!   and used as is (with gid 0) when absent. Without an explicit group, the primary gid
//!   comes from `/etc/passwd` and the supplementary gids are the groups of `/etc/group` that
//!   list the user's name (file order, without the primary gid and duplicates); with an
//!   explicit group there are none, as the image-spec says. The empty user is uid 0 looked
//!   up the same way, so root gets its supplementary groups as under Docker.
//!
//! The files are opened with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` below the
//! rootfs (or, on kernels without `openat2`, by a component walk that resolves symlinks
//! itself and clamps `..` at the root), so a symlinked `/etc/passwd` (absolute, `../..`,
//! `/proc/self/root/…`) resolves inside the rootfs and never reaches the host's files.
//! Only regular files of at most [`USER_DB_SIZE_LIMIT`] bytes are read.
//!
//! # JSON
//!
//! [`RunSpec`] serializes with these field names (a stability boundary, like the refs
//! sidecar):
//!
//! ```json
//! {
//!   "args": ["/bin/sh", "-c", "echo hi"],
//!   "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"],
//!   "cwd": "/",
//!   "user": { "uid": 1000, "gid": 1000, "additional_gids": [10, 27],
//!             "username": "app", "home": "/home/app" },
//!   "stop_signal": null
//! }
//! ```

mod user;

use std::path::Path;

use oci_spec::image::ImageConfiguration;
use serde::{Deserialize, Serialize};

use self::user::resolve_user;
use crate::{Error, Pulled};

/// The `PATH` a [`RunSpec`] gets when neither the image nor the overrides set one (Docker's).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The largest `/etc/passwd` or `/etc/group` read from a rootfs.
pub const USER_DB_SIZE_LIMIT: u64 = 4 * 1024 * 1024;

/// What a caller changes about how the image runs; `Default` changes nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunOverrides {
    /// Replaces the config's `Entrypoint`. Non-empty, it also drops the config's `Cmd`;
    /// empty, it clears the entrypoint and keeps the config's `Cmd`.
    pub entrypoint: Option<Vec<String>>,
    /// Replaces the config's `Cmd` (even when empty).
    pub cmd: Option<Vec<String>>,
    /// `KEY=VALUE` entries that replace or extend the config's `Env`, later ones winning.
    pub env: Vec<String>,
    /// Replaces the config's `WorkingDir`; must be absolute. Empty means not given.
    pub workdir: Option<String>,
    /// Replaces the config's `User` (same forms). Empty means root.
    pub user: Option<String>,
}

/// How to run an image's process: what a runtime needs to exec it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunSpec {
    /// The argument vector; `args[0]` is the program.
    pub args: Vec<String>,
    /// The environment, `KEY=VALUE` each, always with a `PATH`.
    pub env: Vec<String>,
    /// The absolute working directory inside the rootfs.
    pub cwd: String,
    /// The numeric identity to run as.
    pub user: RunUser,
    /// The config's `StopSignal` (e.g. `SIGTERM`, `SIGRTMIN+3`), when it sets one.
    pub stop_signal: Option<String>,
}

/// The numeric identity of a [`RunSpec`], resolved from the rootfs's user database.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunUser {
    /// The user id.
    pub uid: u32,
    /// The primary group id.
    pub gid: u32,
    /// Supplementary group ids, without the primary one, in `/etc/group` order.
    pub additional_gids: Vec<u32>,
    /// The user's name when `/etc/passwd` has an entry for it.
    pub username: Option<String>,
    /// The home directory from `/etc/passwd`, `/` when there is no entry (runc's default;
    /// runtimes set `HOME` from it when the environment has none).
    pub home: String,
}

impl RunSpec {
    /// Interprets `config` for the image whose root filesystem is `rootfs`, applying
    /// `overrides`. The rules are in the [module documentation](self).
    ///
    /// # Errors
    ///
    /// [`Error::NoCommand`], [`Error::InvalidEnv`], [`Error::RelativeWorkdir`],
    /// [`Error::InvalidUser`] (a numeric id out of range), [`Error::UnknownUser`],
    /// [`Error::UnknownGroup`], and [`Error::ReadUserDatabase`] when `rootfs` or its
    /// `/etc/passwd` or `/etc/group` cannot be read (a symlink loop, not a regular file,
    /// over [`USER_DB_SIZE_LIMIT`]); a missing file is not an error by itself.
    pub fn from_config(
        config: &ImageConfiguration,
        rootfs: &Path,
        overrides: &RunOverrides,
    ) -> Result<RunSpec, Error> {
        let image = config.config().clone().unwrap_or_default();
        let args = merge_args(image.entrypoint(), image.cmd(), overrides)?;
        let env = merge_env(image.env().as_deref().unwrap_or_default(), &overrides.env)?;
        let cwd = working_dir(image.working_dir().as_deref(), overrides.workdir.as_deref())?;
        let user_spec = match &overrides.user {
            Some(user) => user.as_str(),
            None => image.user().as_deref().unwrap_or_default(),
        };
        let user = resolve_user(user_spec, rootfs)?;
        Ok(RunSpec {
            args,
            env,
            cwd,
            user,
            stop_signal: image.stop_signal().clone(),
        })
    }

    /// Interprets the config of a pulled image for its rootfs: [`RunSpec::from_config`] with
    /// [`Pulled::image_config`] and [`Pulled::rootfs`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] when the config is not an image configuration, else as
    /// [`RunSpec::from_config`].
    pub fn for_pulled(pulled: &Pulled, overrides: &RunOverrides) -> Result<RunSpec, Error> {
        RunSpec::from_config(&pulled.image_config()?, &pulled.rootfs, overrides)
    }
}

fn merge_args(
    entrypoint: &Option<Vec<String>>,
    cmd: &Option<Vec<String>>,
    overrides: &RunOverrides,
) -> Result<Vec<String>, Error> {
    let (entrypoint, image_cmd_kept) = match &overrides.entrypoint {
        Some(entrypoint) => (entrypoint.as_slice(), entrypoint.is_empty()),
        None => (entrypoint.as_deref().unwrap_or_default(), true),
    };
    let cmd = match &overrides.cmd {
        Some(cmd) => cmd.as_slice(),
        None if image_cmd_kept => cmd.as_deref().unwrap_or_default(),
        None => &[],
    };
    let args: Vec<String> = entrypoint.iter().chain(cmd).cloned().collect();
    if args.is_empty() {
        return Err(Error::NoCommand);
    }
    Ok(args)
}

fn env_key<'a>(entry: &'a str, origin: &'static str) -> Result<&'a str, Error> {
    match entry.split_once('=') {
        Some((key, _)) if !key.is_empty() => Ok(key),
        _ => Err(Error::InvalidEnv {
            entry: entry.to_owned(),
            origin,
        }),
    }
}

fn merge_env(image: &[String], overrides: &[String]) -> Result<Vec<String>, Error> {
    let mut env = Vec::with_capacity(image.len() + overrides.len() + 1);
    for entry in image {
        env_key(entry, "the image config")?;
        env.push(entry.clone());
    }
    for entry in overrides {
        let key = env_key(entry, "the overrides")?;
        let mut replaced = false;
        env.retain_mut(|existing: &mut String| {
            if existing.split_once('=').map(|(k, _)| k) != Some(key) {
                return true;
            }
            if replaced {
                return false;
            }
            replaced = true;
            existing.clone_from(entry);
            true
        });
        if !replaced {
            env.push(entry.clone());
        }
    }
    if !env.iter().any(|entry| entry.starts_with("PATH=")) {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    Ok(env)
}

fn working_dir(image: Option<&str>, override_dir: Option<&str>) -> Result<String, Error> {
    let chosen = [override_dir, image]
        .into_iter()
        .flatten()
        .find(|dir| !dir.is_empty())
        .unwrap_or("/");
    if !chosen.starts_with('/') {
        return Err(Error::RelativeWorkdir {
            workdir: chosen.to_owned(),
        });
    }
    Ok(chosen.to_owned())
}

#[cfg(test)]
mod tests;
