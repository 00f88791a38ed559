//! The user a run spec names, resolved inside the rootfs: `/etc/passwd` and `/etc/group`
//! parsed, and read with `openat2(RESOLVE_IN_ROOT)` (or a component walk that clamps `..`
//! at the root) so that no symlink reaches the host's files.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::io::{self, Read as _};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

use rustix::fs::{self as rfs, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::{RunUser, USER_DB_SIZE_LIMIT};
use crate::Error;

/// How many symlinks the fallback walk follows before giving up (Linux's `MAXSYMLINKS`).
const SYMLINK_LIMIT: usize = 40;

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

pub(super) fn resolve_user(spec: &str, rootfs: &Path) -> Result<RunUser, Error> {
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
pub(super) type InRootOpener = fn(&OwnedFd, &str) -> Result<OwnedFd, Errno>;

pub(super) fn read_in_root(
    rootfs: &Path,
    path: &str,
    open: InRootOpener,
) -> io::Result<Option<String>> {
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

pub(super) fn open_openat2(root: &OwnedFd, path: &str) -> Result<OwnedFd, Errno> {
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
pub(super) fn open_walk(root: &OwnedFd, path: &str) -> Result<OwnedFd, Errno> {
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
