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

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::io::{self, Read as _};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

use oci_spec::image::ImageConfiguration;
use rustix::fs::{self as rfs, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};

use crate::Error;

/// The `PATH` a [`RunSpec`] gets when neither the image nor the overrides set one (Docker's).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The largest `/etc/passwd` or `/etc/group` read from a rootfs.
pub const USER_DB_SIZE_LIMIT: u64 = 4 * 1024 * 1024;

/// How many symlinks the fallback walk follows before giving up (Linux's `MAXSYMLINKS`).
const SYMLINK_LIMIT: usize = 40;

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

/// One `/etc/passwd` entry.
#[derive(Debug)]
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

/// One `/etc/group` entry.
#[derive(Debug)]
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Lines that are blank, comments, NIS `+`/`-` references or malformed are skipped.
fn useful_lines(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(str::trim_end)
        .filter(|line| !line.is_empty() && !line.starts_with(['#', '+', '-']))
        .map(|line| line.split(':').collect())
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    useful_lines(text)
        .filter_map(|fields| {
            let name = fields.first().filter(|name| !name.is_empty())?;
            Some(PasswdEntry {
                name: (*name).to_owned(),
                uid: parse_id(fields.get(2)?)?,
                gid: parse_id(fields.get(3)?)?,
                home: fields.get(5).copied().unwrap_or_default().to_owned(),
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry> {
    useful_lines(text)
        .filter_map(|fields| {
            let name = fields.first().filter(|name| !name.is_empty())?;
            Some(GroupEntry {
                name: (*name).to_owned(),
                gid: parse_id(fields.get(2)?)?,
                members: fields
                    .get(3)
                    .copied()
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|member| !member.is_empty())
                    .map(str::to_owned)
                    .collect(),
            })
        })
        .collect()
}

/// A decimal id; `None` for anything else, including `u32::MAX` (`(uid_t)-1`, "no id").
fn parse_id(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse::<u32>().ok().filter(|id| *id != u32::MAX)
}

/// An id as given by the user: `Ok(None)` when it is a name, an error when it is numeric
/// but out of range.
fn numeric_id(text: &str, user: &str) -> Result<Option<u32>, Error> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Ok(None);
    }
    match parse_id(text) {
        Some(id) => Ok(Some(id)),
        None => Err(Error::InvalidUser {
            user: user.to_owned(),
            reason: "numeric id out of range (0 to 4294967294)",
        }),
    }
}

fn resolve_user(spec: &str, rootfs: &Path) -> Result<RunUser, Error> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group).filter(|group| !group.is_empty())),
        None => (spec, None),
    };
    let passwd = read_user_database(rootfs, "etc/passwd")?;
    let entries = passwd.as_deref().map(parse_passwd).unwrap_or_default();

    let wanted_uid = if user_part.is_empty() {
        Some(0)
    } else {
        numeric_id(user_part, spec)?
    };
    let found = match wanted_uid {
        Some(uid) => entries.iter().find(|entry| entry.uid == uid),
        None => entries.iter().find(|entry| entry.name == user_part),
    };
    let mut user = match (found, wanted_uid) {
        (Some(entry), _) => RunUser {
            uid: entry.uid,
            gid: entry.gid,
            additional_gids: Vec::new(),
            username: Some(entry.name.clone()),
            home: if entry.home.is_empty() {
                "/".to_owned()
            } else {
                entry.home.clone()
            },
        },
        (None, Some(uid)) => RunUser {
            uid,
            gid: 0,
            additional_gids: Vec::new(),
            username: None,
            home: "/".to_owned(),
        },
        (None, None) => {
            return Err(Error::UnknownUser {
                user: user_part.to_owned(),
                rootfs: rootfs.to_owned(),
                passwd_found: passwd.is_some(),
            });
        }
    };

    if group_part.is_none() && user.username.is_none() {
        return Ok(user);
    }
    let group_text = read_user_database(rootfs, "etc/group")?;
    let groups = group_text.as_deref().map(parse_group).unwrap_or_default();
    match group_part {
        Some(group) => {
            user.gid = match numeric_id(group, spec)? {
                Some(gid) => gid,
                None => match groups.iter().find(|entry| entry.name == group) {
                    Some(entry) => entry.gid,
                    None => {
                        return Err(Error::UnknownGroup {
                            group: group.to_owned(),
                            rootfs: rootfs.to_owned(),
                            group_found: group_text.is_some(),
                        });
                    }
                },
            };
        }
        None => {
            let name = user.username.as_deref().unwrap_or_default();
            for entry in &groups {
                if entry.gid != user.gid
                    && !user.additional_gids.contains(&entry.gid)
                    && entry.members.iter().any(|member| member == name)
                {
                    user.additional_gids.push(entry.gid);
                }
            }
        }
    }
    Ok(user)
}

/// Reads `path` (relative, e.g. `etc/passwd`) inside `rootfs` as text; `None` when it does
/// not exist there (including a dangling symlink or a non-directory parent).
fn read_user_database(rootfs: &Path, path: &str) -> Result<Option<String>, Error> {
    read_in_root(rootfs, path, open_openat2).map_err(|source| Error::ReadUserDatabase {
        path: format!("/{path}"),
        rootfs: rootfs.to_owned(),
        source,
    })
}

/// Opens a path inside a root directory, given as a directory descriptor.
type InRootOpener = fn(&OwnedFd, &str) -> Result<OwnedFd, Errno>;

fn read_in_root(rootfs: &Path, path: &str, open: InRootOpener) -> io::Result<Option<String>> {
    let root = rfs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let file = match open(&root, path) {
        Ok(fd) => fd,
        Err(Errno::NOENT | Errno::NOTDIR) => return Ok(None),
        Err(errno) => return Err(errno.into()),
    };
    let stat = rfs::fstat(&file)?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    let mut bytes = Vec::new();
    std::fs::File::from(file)
        .take(USER_DB_SIZE_LIMIT + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > USER_DB_SIZE_LIMIT {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than the {USER_DB_SIZE_LIMIT}-byte limit"),
        ));
    }
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// Flags for the final open: never blocks on a FIFO, never becomes a controlling terminal.
fn read_flags() -> OFlags {
    OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY
}

fn open_openat2(root: &OwnedFd, path: &str) -> Result<OwnedFd, Errno> {
    // EAGAIN means a rename raced the lookup; retry a few times, then walk.
    for _ in 0..4 {
        match rfs::openat2(
            root,
            path,
            read_flags(),
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            Err(Errno::AGAIN) => continue,
            Err(Errno::NOSYS) => return open_walk(root, path),
            other => return other,
        }
    }
    open_walk(root, path)
}

/// Resolves `path` under `root` one component at a time with `O_NOFOLLOW`, following
/// symlinks itself: an absolute target restarts from `root`, `..` pops the directories
/// walked so far and stops at `root`. No lookup is ever handed to the kernel with a `/` or
/// `..` in it, so nothing outside `root` can be reached.
fn open_walk(root: &OwnedFd, path: &str) -> Result<OwnedFd, Errno> {
    let dir_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mut stack = vec![rfs::openat(root, ".", dir_flags, Mode::empty())?];
    let mut pending: VecDeque<Vec<u8>> = components(path.as_bytes()).collect();
    let mut symlinks = 0;
    while let Some(name) = pending.pop_front() {
        if name == b".." {
            if stack.len() > 1 {
                stack.pop();
            }
            continue;
        }
        let current = stack.last().expect("the root is never popped");
        let name = OsStr::from_bytes(&name);
        let fd = rfs::openat(
            current,
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        match FileType::from_raw_mode(rfs::fstat(&fd)?.st_mode) {
            FileType::Symlink => {
                symlinks += 1;
                if symlinks > SYMLINK_LIMIT {
                    return Err(Errno::LOOP);
                }
                let target = rfs::readlinkat(current, name, Vec::new())?;
                let target = target.as_bytes();
                if target.starts_with(b"/") {
                    stack.truncate(1);
                }
                for component in components(target).rev() {
                    pending.push_front(component);
                }
            }
            FileType::Directory => stack.push(fd),
            _ if pending.is_empty() => {
                return rfs::openat(
                    current,
                    name,
                    read_flags() | OFlags::NOFOLLOW,
                    Mode::empty(),
                );
            }
            _ => return Err(Errno::NOTDIR),
        }
    }
    // The path named a directory (or the root itself).
    Err(Errno::ISDIR)
}

/// The components of a path, without empty ones and `.`.
fn components(path: &[u8]) -> impl DoubleEndedIterator<Item = Vec<u8>> + '_ {
    path.split(|byte| *byte == b'/')
        .filter(|component| !component.is_empty() && *component != b".")
        .map(<[u8]>::to_vec)
}

#[cfg(test)]
mod tests;
