//! Tree walks from directory fds: removing a tree (making its directories writable on the
//! way) and measuring one.
//!
//! Every step works relative to an open directory fd, by one name: `openat` with
//! `O_NOFOLLOW | O_DIRECTORY`, `unlinkat`, `fstatat(AT_SYMLINK_NOFOLLOW)`, `fchmod` on the
//! fd just opened. So a tree deeper than `PATH_MAX` is no harder than a shallow one, a
//! symlink is never followed (it is removed or measured as itself), and a process that
//! swaps a directory for a symlink while we walk can at worst make a step fail: it cannot
//! make us act on anything outside the tree. The walk does not descend into a directory of
//! another filesystem (a mount point) and never recurses: its depth is a work list.
//!
//! At most [`MAX_OPEN_DIRS`] directory fds are open at once, whatever the depth: deeper
//! frames close their ancestors' fds and reopen them on the way up through `..`, checking
//! device and inode, and continue reading where they stopped.

use std::collections::HashSet;
use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, Dir, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

/// How many directory fds one walk keeps open at most.
const MAX_OPEN_DIRS: usize = 32;

/// How often one entry may change between directory and non-directory under us before
/// the walk gives up on it.
const MAX_TYPE_CHANGES: usize = 4;

/// The flags every directory of a walk is opened with.
pub(crate) const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// A step of a walk that failed.
#[derive(Debug)]
pub(crate) struct TreeError {
    /// What was being done, e.g. `remove`.
    pub(crate) operation: &'static str,
    /// The entry it was done to (for messages only: it may be longer than `PATH_MAX`).
    pub(crate) path: PathBuf,
    /// The operating system's error.
    pub(crate) source: io::Error,
}

impl From<TreeError> for crate::Error {
    fn from(error: TreeError) -> crate::Error {
        crate::Error::Io {
            operation: error.operation,
            path: error.path,
            source: error.source,
        }
    }
}

/// Device and inode of a stat.
#[allow(
    clippy::useless_conversion,
    clippy::unnecessary_cast,
    reason = "st_dev and st_ino are u64 on some targets and narrower on others"
)]
pub(crate) fn dev_ino(stat: &Stat) -> (u64, u64) {
    (stat.st_dev as u64, stat.st_ino as u64)
}

/// Opens the directory `name` of `parent`, never following a symlink.
pub(crate) fn open_dir_at(parent: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    Ok(rfs::openat(parent, name, DIR_FLAGS, Mode::empty())?)
}

/// Opens a directory by path (following symlinks in it): the starting point of walks
/// inside tank's own layout.
pub(crate) fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(rfs::openat(
        rfs::CWD,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Removes the tree at `path` (a file, a symlink or a directory with everything in it),
/// working from the fd of its parent directory. A missing tree is not an error. On an
/// entry that cannot be removed it goes on with the others and returns the first error.
pub(crate) fn remove_tree(path: &Path) -> Result<(), TreeError> {
    let (parent, name) = split(path)?;
    remove_tree_at(parent.as_fd(), name, path)
}

/// Removes the entry `name` of `parent` and, when it is a directory, everything in it;
/// `display` names it in errors.
pub(crate) fn remove_tree_at(
    parent: BorrowedFd<'_>,
    name: &OsStr,
    display: &Path,
) -> Result<(), TreeError> {
    let mut walk = Walk::new(true, display);
    walk.run(parent, name);
    match walk.first_error {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// The bytes held by the tree at `path`: the sizes of its files and symlinks, each inode
/// counted once. Entries that cannot be read are left out; the first such error is
/// returned beside the total.
pub(crate) fn tree_size(path: &Path) -> (u64, Option<TreeError>) {
    match split(path) {
        Ok((parent, name)) => tree_size_at(parent.as_fd(), name, path),
        Err(error) => (0, Some(error)),
    }
}

/// [`tree_size`] of the entry `name` of `parent`.
pub(crate) fn tree_size_at(
    parent: BorrowedFd<'_>,
    name: &OsStr,
    display: &Path,
) -> (u64, Option<TreeError>) {
    let mut walk = Walk::new(false, display);
    walk.run(parent, name);
    (walk.total, walk.first_error)
}

/// The parent directory (opened) and the last component of `path`.
fn split(path: &Path) -> Result<(OwnedFd, &OsStr), TreeError> {
    let failed = |source: io::Error| TreeError {
        operation: "open the parent directory of",
        path: path.to_path_buf(),
        source,
    };
    let name = path
        .file_name()
        .ok_or_else(|| failed(io::Error::from(io::ErrorKind::InvalidInput)))?;
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    Ok((open_dir(parent).map_err(failed)?, name))
}

/// One directory being walked. Kept small (its name lives in [`Stack::names`], its
/// stream is boxed and present only near the top): a tree as deep as a 1 MiB path allows
/// (half a million levels) costs 25 to 50 MiB of frames (about 50 bytes a level, and
/// the vector's spare capacity).
struct Frame {
    /// Where its NUL-terminated name in its parent starts in [`Stack::names`].
    name_at: usize,
    dev: u64,
    ino: u64,
    /// Its open directory stream; `None` while closed to keep the fd count bounded.
    dir: Option<Box<Dir>>,
    /// The position after the last entry taken, to continue from after a reopen.
    offset: i64,
    /// Whether it is being read a second time (removal found it not empty).
    second_pass: bool,
    /// Whether something in it could not be removed (so a second pass is pointless).
    failed: bool,
}

impl Frame {
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.dir.as_ref().and_then(|dir| dir.fd().ok())
    }
}

/// The directories from the tree's top down to the one being read, and their names.
#[derive(Default)]
struct Stack {
    frames: Vec<Frame>,
    /// The frames' names, each NUL-terminated, one after the other.
    names: Vec<u8>,
}

impl Stack {
    fn push(&mut self, mut frame: Frame, name: &CStr) {
        frame.name_at = self.names.len();
        self.names.extend_from_slice(name.to_bytes_with_nul());
        self.frames.push(frame);
        let open = self.frames.len();
        if open > MAX_OPEN_DIRS {
            self.frames[open - MAX_OPEN_DIRS - 1].dir = None;
        }
    }

    fn pop(&mut self) -> Option<(Frame, CString)> {
        let frame = self.frames.pop()?;
        let name = CStr::from_bytes_with_nul(&self.names[frame.name_at..])
            .map(CStr::to_owned)
            .unwrap_or_default();
        self.names.truncate(frame.name_at);
        Some((frame, name))
    }

    /// The path of the entry `name` of the top frame (or of the top frame), for messages.
    fn path(&self, top: &Path, name: Option<&CStr>) -> PathBuf {
        let mut path = top.to_path_buf();
        for (index, frame) in self.frames.iter().enumerate().skip(1) {
            let end = self
                .frames
                .get(index + 1)
                .map_or(self.names.len(), |next| next.name_at);
            let bytes = self.names.get(frame.name_at..end).unwrap_or_default();
            path.push(OsStr::from_bytes(
                bytes.strip_suffix(b"\0").unwrap_or(bytes),
            ));
        }
        if let Some(name) = name {
            path.push(OsStr::from_bytes(name.to_bytes()));
        }
        path
    }
}

/// What to do with an entry, once looked at.
enum Step {
    /// Nothing more (removed, measured, gone, or failed and recorded).
    Done,
    /// Descend into this directory.
    Descend(Frame),
}

struct Walk<'a> {
    remove: bool,
    display: &'a Path,
    /// The device of the tree's top directory; other devices are not entered.
    dev: Option<u64>,
    seen: HashSet<(u64, u64)>,
    total: u64,
    first_error: Option<TreeError>,
}

impl<'a> Walk<'a> {
    fn new(remove: bool, display: &'a Path) -> Walk<'a> {
        Walk {
            remove,
            display,
            dev: None,
            seen: HashSet::new(),
            total: 0,
            first_error: None,
        }
    }

    fn record(
        &mut self,
        stack: &Stack,
        name: Option<&CStr>,
        operation: &'static str,
        source: io::Error,
    ) {
        if self.first_error.is_none() {
            self.first_error = Some(TreeError {
                operation,
                path: stack.path(self.display, name),
                source,
            });
        }
    }

    fn run(&mut self, parent: BorrowedFd<'_>, name: &OsStr) {
        let mut stack = Stack::default();
        let Ok(name) = CString::new(name.as_bytes()) else {
            let error = io::Error::from(io::ErrorKind::InvalidInput);
            self.record(&stack, None, "open", error);
            return;
        };
        match self.entry(parent, &name, FileType::Unknown) {
            Ok(Step::Done) => return,
            Ok(Step::Descend(frame)) => stack.push(frame, &name),
            Err((operation, error)) => {
                self.record(&stack, None, operation, error);
                return;
            }
        }
        while let Some(top) = stack.frames.last_mut() {
            let next = top.dir.as_mut().and_then(|dir| dir.read());
            match next {
                Some(Ok(entry)) => {
                    top.offset = entry.offset();
                    let name = entry.file_name();
                    if name.to_bytes() == b"." || name.to_bytes() == b".." {
                        continue;
                    }
                    let Some(fd) = top.fd() else { continue };
                    match self.entry(fd, name, entry.file_type()) {
                        Ok(Step::Done) => {}
                        Ok(Step::Descend(frame)) => stack.push(frame, name),
                        Err((operation, error)) => {
                            if let Some(top) = stack.frames.last_mut() {
                                top.failed = true;
                            }
                            self.record(&stack, Some(name), operation, error);
                        }
                    }
                }
                Some(Err(error)) => {
                    // The stream reports its end from now on; the frame is finished next.
                    top.failed = true;
                    self.record(&stack, None, "read directory", error.into());
                }
                None => self.finish(&mut stack, parent),
            }
        }
    }

    /// The top frame is read to its end: remove it (from its reopened parent).
    fn finish(&mut self, stack: &mut Stack, parent: BorrowedFd<'_>) {
        let Some((mut done, name)) = stack.pop() else {
            return;
        };
        if let Some(above) = stack.frames.last_mut()
            && above.dir.is_none()
            && let Err(error) = reopen(above, &done)
        {
            // Without its parent we cannot go on safely: stop the whole walk.
            self.record(stack, None, "reopen directory", error);
            stack.frames.clear();
            return;
        }
        if !self.remove {
            return;
        }
        let result = {
            let fd = match stack.frames.last() {
                Some(above) => above.fd(),
                None => Some(parent),
            };
            match fd {
                Some(fd) => rfs::unlinkat(fd, &name, AtFlags::REMOVEDIR),
                None => Err(Errno::BADF),
            }
        };
        let removed = matches!(result, Ok(()) | Err(Errno::NOENT));
        match result {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(Errno::NOTEMPTY) if !done.failed && !done.second_pass && done.dir.is_some() => {
                // Entries removed while we read may have hidden others: read it once more.
                done.second_pass = true;
                done.offset = 0;
                if let Some(dir) = done.dir.as_mut() {
                    dir.rewind();
                }
                stack.push(done, &name);
                return;
            }
            Err(error) => self.record(stack, Some(&name), "remove", error.into()),
        }
        if (done.failed || !removed)
            && let Some(above) = stack.frames.last_mut()
        {
            above.failed = true;
        }
    }

    /// Looks at the entry `name` of the directory `fd` and removes or measures it, or
    /// opens it to descend into.
    fn entry(
        &mut self,
        fd: BorrowedFd<'_>,
        name: &CStr,
        mut kind: FileType,
    ) -> Result<Step, (&'static str, io::Error)> {
        for _ in 0..MAX_TYPE_CHANGES {
            if kind == FileType::Unknown || !self.remove {
                let stat = match rfs::statat(fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(stat) => stat,
                    Err(Errno::NOENT) => return Ok(Step::Done),
                    Err(error) => return Err(("inspect", error.into())),
                };
                kind = FileType::from_raw_mode(stat.st_mode);
                if !self.remove && kind != FileType::Directory {
                    if self.seen.insert(dev_ino(&stat)) {
                        let size = u64::try_from(stat.st_size).unwrap_or(0);
                        self.total = self.total.saturating_add(size);
                    }
                    return Ok(Step::Done);
                }
            }
            if kind != FileType::Directory {
                match rfs::unlinkat(fd, name, AtFlags::empty()) {
                    Ok(()) | Err(Errno::NOENT) => return Ok(Step::Done),
                    // It is a directory now (or always was, and the type was a guess).
                    Err(Errno::ISDIR) => kind = FileType::Directory,
                    Err(error) => return Err(("remove", error.into())),
                }
                continue;
            }
            match self.open_child(fd, name) {
                Ok(Some(frame)) => return Ok(Step::Descend(frame)),
                Ok(None) => return Ok(Step::Done),
                // Not a directory any more: a symlink or file swapped in; take it as one.
                Err(Errno::LOOP | Errno::NOTDIR) => kind = FileType::Unknown,
                Err(Errno::NOENT) => return Ok(Step::Done),
                Err(error) => return Err(("open directory", error.into())),
            }
        }
        Err((
            "inspect",
            io::Error::other("the entry keeps changing between directory and non-directory"),
        ))
    }

    /// Opens the directory `name` of `fd` to descend into; makes it writable and
    /// searchable by its owner when removing. `None` for a mount point, which is not
    /// entered (removing it then fails with EBUSY, recorded).
    fn open_child(&mut self, fd: BorrowedFd<'_>, name: &CStr) -> Result<Option<Frame>, Errno> {
        let owned = match rfs::openat(fd, name, DIR_FLAGS, Mode::empty()) {
            Ok(owned) => owned,
            Err(Errno::ACCESS) if self.remove => open_unreadable_dir(fd, name)?,
            Err(error) => return Err(error),
        };
        let stat = rfs::fstat(&owned)?;
        let (dev, ino) = dev_ino(&stat);
        if *self.dev.get_or_insert(dev) != dev {
            // Another filesystem is mounted here: never entered, never removed.
            return if self.remove {
                Err(Errno::XDEV)
            } else {
                Ok(None)
            };
        }
        if self.remove && stat.st_mode & 0o700 != 0o700 {
            rfs::fchmod(&owned, Mode::from_raw_mode((stat.st_mode & 0o7777) | 0o700))?;
        }
        Ok(Some(Frame {
            name_at: 0,
            dev,
            ino,
            dir: Some(Box::new(Dir::new(owned)?)),
            offset: 0,
            second_pass: false,
            failed: false,
        }))
    }
}

/// Opens a directory its owner may not read (mode 0o000 in an image, when tank is not
/// root): opens it with `O_PATH` (no permission needed), gives the owner `rwx` through
/// that very inode (`/proc/self/fd/N` names the open file, not a path a racer could
/// redirect), then opens it for reading and checks it is still the same inode.
fn open_unreadable_dir(fd: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
    let handle = rfs::openat(fd, name, DIR_FLAGS | OFlags::PATH, Mode::empty())?;
    let stat = rfs::fstat(&handle)?;
    let magic = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&handle));
    rfs::chmod(
        magic.as_str(),
        Mode::from_raw_mode((stat.st_mode & 0o7777) | 0o700),
    )?;
    let owned = rfs::openat(fd, name, DIR_FLAGS, Mode::empty())?;
    if dev_ino(&rfs::fstat(&owned)?) != dev_ino(&stat) {
        return Err(Errno::AGAIN);
    }
    Ok(owned)
}

/// Reopens the closed frame `above` through `..` of its child `done`, checks it is the
/// same directory, and positions it after the last entry it handed out.
fn reopen(above: &mut Frame, done: &Frame) -> io::Result<()> {
    let child = done
        .fd()
        .ok_or_else(|| io::Error::other("the directory was closed after a read error"))?;
    let owned = rfs::openat(child, c"..", DIR_FLAGS, Mode::empty())?;
    if dev_ino(&rfs::fstat(&owned)?) != (above.dev, above.ino) {
        return Err(io::Error::other(
            "the directory was moved while it was walked",
        ));
    }
    let mut dir = Dir::new(owned)?;
    if above.offset != 0 {
        dir.seek(above.offset)?;
    }
    above.dir = Some(Box::new(dir));
    Ok(())
}

/// The entries of the open directory `fd` (without `.` and `..`), with the types the
/// directory reports (`FileType::Unknown` where the filesystem does not say).
pub(crate) fn list(fd: BorrowedFd<'_>) -> io::Result<Vec<(std::ffi::OsString, FileType)>> {
    let mut dir = Dir::read_from(fd)?;
    let mut found = Vec::new();
    while let Some(entry) = dir.read() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            found.push((OsStr::from_bytes(name).to_os_string(), entry.file_type()));
        }
    }
    Ok(found)
}
