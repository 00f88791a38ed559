//! A destination directory opened once, with every path resolved inside it as if chrooted.
//!
//! Parents are opened with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, so `..`,
//! absolute symlinks and symlink chains all stay below the root. When the kernel lacks
//! `openat2` (`ENOSYS`), a component walk with `O_NOFOLLOW` is used instead, which refuses
//! symlinked parents rather than resolving them. Final components are never followed: they
//! are created, replaced or removed with `*at` calls on the parent's descriptor.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::rc::Rc;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;

/// A path inside the root, as cleaned components (no `.`, `..` or empty ones).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct InPath(pub(crate) Vec<Vec<u8>>);

impl InPath {
    /// Cleans a tar path as if chrooted at the root: absolute paths start at the root and
    /// `..` never climbs above it.
    pub(crate) fn clean(raw: &[u8]) -> InPath {
        let mut components: Vec<Vec<u8>> = Vec::new();
        for component in raw.split(|byte| *byte == b'/') {
            match component {
                b"" | b"." => {}
                b".." => {
                    components.pop();
                }
                other => components.push(other.to_vec()),
            }
        }
        InPath(components)
    }

    /// The path joined with `/`, relative to the root (empty for the root).
    pub(crate) fn joined(&self) -> Vec<u8> {
        self.0.join(&b'/')
    }

    pub(crate) fn split_last(&self) -> Option<(InPath, &[u8])> {
        let (last, parent) = self.0.split_last()?;
        Some((InPath(parent.to_vec()), last))
    }

    pub(crate) fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn depth(&self) -> usize {
        self.0.len()
    }
}

/// What [`Root::parent`] found for a path's parent.
pub(crate) enum ParentError {
    /// Some component is not a directory (or is a symlink when `openat2` is unavailable).
    NotADirectory,
    /// Any other error.
    Io(io::Error),
}

impl From<io::Error> for ParentError {
    fn from(error: io::Error) -> ParentError {
        ParentError::Io(error)
    }
}

impl From<Errno> for ParentError {
    fn from(errno: Errno) -> ParentError {
        ParentError::Io(errno.into())
    }
}

/// The opened destination and a one-entry cache of the last parent directory used.
pub(crate) struct Root {
    fd: OwnedFd,
    /// Shared with the entry being applied (no `dup` per entry); forgetting it here does not
    /// close a handle still in use.
    cached: Option<(InPath, Rc<OwnedFd>)>,
    have_openat2: bool,
    /// Directories whose mode (and mtime) are applied after their contents: lower layers'
    /// directories this layer made owner-writable, with their original mode, and this
    /// layer's directory entries.
    pub(crate) pending: crate::book::PathList,
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC);

impl Root {
    pub(crate) fn open(path: &std::path::Path) -> io::Result<Root> {
        let fd = rfs::open(path, DIR_FLAGS, Mode::empty())?;
        Ok(Root {
            fd,
            cached: None,
            have_openat2: true,
            pending: crate::book::PathList::default(),
        })
    }

    pub(crate) fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Forgets the cached parent; called whenever anything is removed or replaced.
    pub(crate) fn invalidate(&mut self) {
        self.cached = None;
    }

    /// Opens an existing directory in the root (following symlinks in-root).
    pub(crate) fn open_dir(&mut self, path: &InPath) -> io::Result<OwnedFd> {
        if path.is_root() {
            return Ok(rfs::openat(&self.fd, ".", DIR_FLAGS, Mode::empty())?);
        }
        let joined = path.joined();
        if self.have_openat2 {
            match rfs::openat2(
                &self.fd,
                OsStr::from_bytes(&joined),
                DIR_FLAGS,
                Mode::empty(),
                ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
            ) {
                Err(Errno::NOSYS) => self.have_openat2 = false,
                Err(Errno::AGAIN) => return self.open_dir_walk(path),
                other => return Ok(other?),
            }
        }
        self.open_dir_walk(path)
    }

    /// Fallback: one component at a time with `O_NOFOLLOW`; symlinked parents are refused.
    fn open_dir_walk(&self, path: &InPath) -> io::Result<OwnedFd> {
        let mut current = rfs::openat(&self.fd, ".", DIR_FLAGS, Mode::empty())?;
        for component in &path.0 {
            current = rfs::openat(
                &current,
                OsStr::from_bytes(component),
                DIR_FLAGS | OFlags::NOFOLLOW,
                Mode::empty(),
            )?;
        }
        Ok(current)
    }

    /// The directory that holds `path`'s last component, created (mode 0755) where missing,
    /// and made owner-writable if a lower layer left it read-only.
    pub(crate) fn parent(&mut self, parent: &InPath) -> Result<Rc<OwnedFd>, ParentError> {
        let hit = matches!(&self.cached, Some((cached, _)) if cached == parent);
        if !hit {
            let fd = match self.open_dir(parent) {
                Ok(fd) => fd,
                Err(_) => self.create_parents(parent)?,
            };
            self.ensure_writable(parent, &fd)?;
            self.cached = Some((parent.clone(), Rc::new(fd)));
        }
        match &self.cached {
            Some((_, fd)) => Ok(Rc::clone(fd)),
            None => unreachable!("the cache was filled just above"),
        }
    }

    /// Walks `parent` prefix by prefix, creating missing directories and loosening
    /// read-only ones so the walk can go on.
    fn create_parents(&mut self, parent: &InPath) -> Result<OwnedFd, ParentError> {
        let mut current = self.open_dir(&InPath(Vec::new()))?;
        for depth in 1..=parent.depth() {
            let prefix = InPath(parent.0[..depth].to_vec());
            let name = OsStr::from_bytes(&parent.0[depth - 1]);
            self.ensure_writable(&InPath(parent.0[..depth - 1].to_vec()), &current)?;
            let next = match self.open_dir(&prefix) {
                Ok(fd) => fd,
                Err(error) => match error.raw_os_error().map(Errno::from_raw_os_error) {
                    Some(Errno::NOENT) => {
                        match rfs::mkdirat(&current, name, Mode::from_raw_mode(0o755)) {
                            Ok(()) | Err(Errno::EXIST) => {}
                            Err(errno) => return Err(errno.into()),
                        }
                        self.open_dir(&prefix).map_err(|error| {
                            if error.raw_os_error() == Some(Errno::NOENT.raw_os_error()) {
                                // A dangling symlink stands where the directory should be.
                                ParentError::NotADirectory
                            } else {
                                ParentError::Io(error)
                            }
                        })?
                    }
                    Some(Errno::ACCESS) => {
                        // A directory without search or read permission for its owner
                        // (us): loosen it by name, after checking it is not a symlink.
                        let stat = rfs::statat(&current, name, AtFlags::SYMLINK_NOFOLLOW)?;
                        if FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
                            return Err(ParentError::Io(error));
                        }
                        let original = stat.st_mode & 0o7777;
                        rfs::chmodat(
                            &current,
                            name,
                            Mode::from_raw_mode(original | 0o700),
                            AtFlags::empty(),
                        )?;
                        self.pending.push(
                            &prefix.0,
                            crate::book::Meta {
                                mode: original,
                                mtime: None,
                                loosened: true,
                            },
                        );
                        self.open_dir(&prefix).map_err(ParentError::Io)?
                    }
                    Some(Errno::NOTDIR | Errno::LOOP) => return Err(ParentError::NotADirectory),
                    _ => return Err(ParentError::Io(error)),
                },
            };
            current = next;
        }
        Ok(current)
    }

    /// Makes a directory owner-writable and searchable, remembering its mode to restore.
    fn ensure_writable(&mut self, path: &InPath, fd: &OwnedFd) -> Result<(), ParentError> {
        let stat = rfs::fstat(fd)?;
        if stat.st_mode & 0o300 != 0o300 {
            let original = stat.st_mode & 0o7777;
            rfs::fchmod(fd, Mode::from_raw_mode(original | 0o700))?;
            self.pending.push(
                &path.0,
                crate::book::Meta {
                    mode: original,
                    mtime: None,
                    loosened: true,
                },
            );
        }
        Ok(())
    }
}

/// What is at `name` in `dir`, without following a symlink.
pub(crate) fn kind_at<Fd: AsFd>(dir: Fd, name: &[u8]) -> io::Result<Option<FileType>> {
    match rfs::statat(dir, OsStr::from_bytes(name), AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => Ok(Some(FileType::from_raw_mode(stat.st_mode))),
        Err(Errno::NOENT) => Ok(None),
        Err(errno) => Err(errno.into()),
    }
}

/// Decides, for a child met while emptying a directory, whether it stays: given the
/// `fstat` of the directory it is in, its name and its `lstat`.
pub(crate) type Keep<'a> = dyn FnMut(&Stat, &[u8], &Stat) -> bool + 'a;

/// Removes `name` from `dir`: a file, a symlink, or a whole directory tree. Never follows
/// symlinks; a missing name is not an error.
pub(crate) fn remove_any<Fd: AsFd>(dir: Fd, name: &[u8]) -> io::Result<()> {
    let dir = dir.as_fd();
    match kind_at(dir, name)? {
        None => Ok(()),
        Some(FileType::Directory) => {
            remove_dir_contents(dir, name, &mut |_, _, _| false)?;
            rfs::unlinkat(dir, OsStr::from_bytes(name), AtFlags::REMOVEDIR)?;
            Ok(())
        }
        Some(_) => {
            rfs::unlinkat(dir, OsStr::from_bytes(name), AtFlags::empty())?;
            Ok(())
        }
    }
}

/// Removes what `keep` does not keep below directory `name` in `dir`. Every directory is
/// descended into; one that is not kept is removed once emptied, unless kept descendants
/// remain in it.
pub(crate) fn remove_dir_contents<Fd: AsFd>(
    dir: Fd,
    name: &[u8],
    keep: &mut Keep<'_>,
) -> io::Result<()> {
    let dir = dir.as_fd();
    let stat = rfs::statat(dir, OsStr::from_bytes(name), AtFlags::SYMLINK_NOFOLLOW)?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
        return Ok(());
    }
    remove_dir_contents_at(dir, name, &stat, keep)
}

/// Removes the children of an open directory that `keep` does not keep.
pub(crate) fn remove_children_of(dir: &OwnedFd, keep: &mut Keep<'_>) -> io::Result<()> {
    let stat = rfs::fstat(dir)?;
    remove_children(dir, &stat, keep)
}

fn remove_children(dir: &OwnedFd, dir_stat: &Stat, keep: &mut Keep<'_>) -> io::Result<()> {
    let mut names = Vec::new();
    for entry in rfs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    for name in names {
        let name_os = OsStr::from_bytes(&name);
        let stat = match rfs::statat(dir, name_os, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(Errno::NOENT) => continue,
            Err(errno) => return Err(errno.into()),
        };
        let kept = keep(dir_stat, &name, &stat);
        if FileType::from_raw_mode(stat.st_mode) == FileType::Directory {
            remove_dir_contents_at(dir.as_fd(), &name, &stat, keep)?;
            if !kept {
                match rfs::unlinkat(dir, name_os, AtFlags::REMOVEDIR) {
                    // Something this layer created is inside: the directory stays.
                    Ok(()) | Err(Errno::NOTEMPTY | Errno::EXIST) => {}
                    Err(errno) => return Err(errno.into()),
                }
            }
        } else if !kept {
            rfs::unlinkat(dir, name_os, AtFlags::empty())?;
        }
    }
    Ok(())
}

/// Empties (per `keep`) the directory `name` in `dir`, whose `lstat` is `stat`, making it
/// owner-accessible first.
fn remove_dir_contents_at(
    dir: BorrowedFd<'_>,
    name: &[u8],
    stat: &Stat,
    keep: &mut Keep<'_>,
) -> io::Result<()> {
    let name_os = OsStr::from_bytes(name);
    if stat.st_mode & 0o700 != 0o700 {
        // Checked by the caller that this is a directory, not a symlink.
        rfs::chmodat(
            dir,
            name_os,
            Mode::from_raw_mode((stat.st_mode & 0o7777) | 0o700),
            AtFlags::empty(),
        )?;
    }
    let child_fd = rfs::openat(dir, name_os, DIR_FLAGS | OFlags::NOFOLLOW, Mode::empty())?;
    remove_children(&child_fd, stat, keep)
}
