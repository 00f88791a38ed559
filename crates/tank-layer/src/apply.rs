//! The extraction loop: one tar entry at a time onto the root, then whiteout-opaque
//! clean-up and directory modes at the end.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Seek as _, Write as _};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::rc::Rc;

use rustix::fs::{
    self as rfs, AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid, XattrFlags,
};
use rustix::io::Errno;
use tar::EntryType;

use crate::pipe::ChannelReader;
use crate::root::{InPath, ParentError, Root, kind_at, remove_any, remove_dir_contents};
use crate::{Error, ExtractOptions, LayerReport};

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";

/// The size of the buffer file contents are copied through.
const COPY_BUFFER: usize = 256 * 1024;
const BLOCK: u64 = 512;

/// A directory's mode and mtime from the tar, applied after all entries.
#[derive(Clone, Copy)]
struct DirMeta {
    mode: u32,
    mtime: Option<u64>,
}

pub(crate) struct Extraction<'o> {
    options: &'o ExtractOptions,
    root: Root,
    report: LayerReport,
    /// Every path this layer created, with all its ancestors.
    created: HashSet<InPath>,
    /// Directories holding an opaque marker.
    opaque: Vec<InPath>,
    /// Directories whose mode and mtime are applied at the end.
    dirs: HashMap<InPath, DirMeta>,
    is_root_user: bool,
    /// The copy buffer, reused for every file.
    buffer: Vec<u8>,
}

fn not_dir(entry: &str, offset: u64) -> impl FnOnce(ParentError) -> Error + '_ {
    move |error| match error {
        ParentError::NotADirectory => Error::NotADirectory {
            entry: entry.to_owned(),
            offset,
        },
        ParentError::Io(source) => Error::Entry {
            entry: entry.to_owned(),
            offset,
            source,
        },
    }
}

impl<'o> Extraction<'o> {
    pub(crate) fn new(options: &'o ExtractOptions, root: Root) -> Extraction<'o> {
        Extraction {
            options,
            root,
            report: LayerReport::default(),
            created: HashSet::new(),
            opaque: Vec::new(),
            buffer: vec![0; COPY_BUFFER],
            dirs: HashMap::new(),
            is_root_user: rustix::process::geteuid().is_root(),
        }
    }

    pub(crate) fn into_report(self) -> LayerReport {
        self.report
    }

    /// Applies every entry of the archive.
    pub(crate) fn run<R: Read>(&mut self, archive: &mut tar::Archive<R>) -> Result<(), Error> {
        let entries = archive.entries().map_err(|source| Error::Stream {
            offset: 0,
            after_entry: None,
            source,
        })?;
        let mut next_offset = 0_u64;
        let mut last_entry: Option<String> = None;
        for entry in entries {
            let mut entry = entry.map_err(|source| Error::Stream {
                offset: next_offset,
                after_entry: last_entry.clone(),
                source,
            })?;
            let offset = entry.raw_header_position();
            let size = entry.header().entry_size().unwrap_or(0);
            next_offset = entry.raw_file_position() + size.div_ceil(BLOCK) * BLOCK;
            let display = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            last_entry = Some(display.clone());
            self.report.entries += 1;
            if let Some(max) = self.options.max_entries {
                if self.report.entries > max {
                    return Err(Error::LimitExceeded {
                        limit: "max_entries",
                        max,
                        offset,
                    });
                }
            }
            self.apply_entry(&mut entry, &display, offset)?;
        }
        Ok(())
    }

    fn apply_entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        display: &str,
        offset: u64,
    ) -> Result<(), Error> {
        let entry_type = entry.header().entry_type();
        if matches!(entry_type, EntryType::XGlobalHeader | EntryType::XHeader) {
            self.report.skipped_other += 1;
            return Ok(());
        }
        let path = InPath::clean(&entry.path_bytes());
        let io_error = |source: io::Error| Error::Entry {
            entry: display.to_owned(),
            offset,
            source,
        };
        let Some((parent, name)) = path.split_last() else {
            // The root itself: only a directory entry makes sense, and only its metadata.
            if entry_type == EntryType::Directory {
                let mode = entry.header().mode().map_err(io_error)?;
                let mtime = entry.header().mtime().ok();
                self.dirs.insert(path, DirMeta { mode, mtime });
                self.report.dirs += 1;
                return Ok(());
            }
            return Err(Error::InvalidPath {
                entry: display.to_owned(),
                offset,
            });
        };
        let name = name.to_vec();

        if name == OPAQUE_MARKER {
            self.opaque.push(parent);
            self.report.whiteouts += 1;
            return Ok(());
        }
        if let Some(target) = name.strip_prefix(WHITEOUT_PREFIX) {
            if target.is_empty() || target == b"." || target == b".." {
                return Err(Error::InvalidPath {
                    entry: display.to_owned(),
                    offset,
                });
            }
            self.report.whiteouts += 1;
            if self.root.open_dir(&parent).is_err() {
                // Nothing below a missing parent to delete.
                return Ok(());
            }
            let parent_fd = self.parent_fd(&parent, display, offset)?;
            remove_any(&parent_fd, target).map_err(io_error)?;
            self.root.invalidate();
            return Ok(());
        }

        let parent_fd = self.parent_fd(&parent, display, offset)?;
        let header = entry.header();
        let mode = header.mode().map_err(io_error)? & 0o7777;
        let mtime = header.mtime().ok();
        let owner = match (header.uid(), header.gid()) {
            (Ok(uid), Ok(gid)) if self.options.preserve_ownership && self.is_root_user => {
                Some(owner_ids(uid, gid).map_err(io_error)?)
            }
            _ => None,
        };
        match entry_type {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let create = || {
                    rfs::openat(
                        &parent_fd,
                        OsStr::from_bytes(&name),
                        OFlags::WRONLY
                            | OFlags::CREATE
                            | OFlags::EXCL
                            | OFlags::NOFOLLOW
                            | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o600),
                    )
                };
                // Most files are new: create first, and only when something stands there
                // (a lower layer's file, directory or symlink) remove it and create again.
                let fd = match create() {
                    Err(Errno::EXIST) => {
                        self.replace(&parent_fd, &name).map_err(io_error)?;
                        create()
                    }
                    other => other,
                }
                .map_err(|errno| io_error(errno.into()))?;
                let mut file = File::from(fd);
                let sparse = entry_type == EntryType::GNUSparse;
                if sparse && let Some(max) = self.options.max_bytes {
                    // A few header bytes can describe a huge file of holes: bound it too.
                    let size = entry.size();
                    if size > max {
                        return Err(Error::LimitExceeded {
                            limit: "max_bytes",
                            max,
                            offset,
                        });
                    }
                }
                copy_content(entry, &mut file, &mut self.buffer, sparse, display, offset)?;
                self.finish_node(entry, &file, owner, mode, mtime, display, offset)?;
                self.report.files += 1;
            }
            EntryType::Directory => {
                match kind_at(&parent_fd, &name).map_err(io_error)? {
                    Some(FileType::Directory) => {}
                    Some(_) => {
                        self.replace(&parent_fd, &name).map_err(io_error)?;
                        mkdir(&parent_fd, &name).map_err(io_error)?;
                    }
                    None => mkdir(&parent_fd, &name).map_err(io_error)?,
                }
                let fd = rfs::openat(
                    &parent_fd,
                    OsStr::from_bytes(&name),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|errno| io_error(errno.into()))?;
                // Owner-writable while extracting; the real mode is applied at the end.
                self.finish_node(entry, &fd, owner, mode | 0o700, None, display, offset)?;
                self.dirs.insert(path.clone(), DirMeta { mode, mtime });
                self.report.dirs += 1;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|target| target.into_owned())
                    .unwrap_or_default();
                self.replace(&parent_fd, &name).map_err(io_error)?;
                rfs::symlinkat(
                    OsStr::from_bytes(&target),
                    &parent_fd,
                    OsStr::from_bytes(&name),
                )
                .map_err(|errno| io_error(errno.into()))?;
                let name_os = OsStr::from_bytes(&name);
                owner_and_mtime_at(&parent_fd, name_os, owner, mtime).map_err(io_error)?;
                self.report.symlinks += 1;
            }
            EntryType::Link => {
                let raw_target = entry
                    .link_name_bytes()
                    .map(|target| target.into_owned())
                    .unwrap_or_default();
                self.hardlink(&path, &parent_fd, &name, &raw_target, display, offset)?;
                self.report.hardlinks += 1;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                // A fifo needs no privilege and is part of the image (the image-spec lists
                // FIFOs among layer file types): always created. Device nodes need root.
                if entry_type != EntryType::Fifo
                    && !(self.options.create_devices && self.is_root_user)
                {
                    self.report.skipped_devices += 1;
                    return Ok(());
                }
                let (file_type, dev) = match entry_type {
                    EntryType::Fifo => (FileType::Fifo, 0),
                    _ => {
                        let major = header.device_major().ok().flatten().unwrap_or(0);
                        let minor = header.device_minor().ok().flatten().unwrap_or(0);
                        let file_type = if entry_type == EntryType::Char {
                            FileType::CharacterDevice
                        } else {
                            FileType::BlockDevice
                        };
                        (file_type, rustix::fs::makedev(major, minor))
                    }
                };
                self.replace(&parent_fd, &name).map_err(io_error)?;
                rfs::mknodat(
                    &parent_fd,
                    OsStr::from_bytes(&name),
                    file_type,
                    Mode::from_raw_mode(mode),
                    dev,
                )
                .map_err(|errno| io_error(errno.into()))?;
                let name_os = OsStr::from_bytes(&name);
                // mknodat applies the umask: set the mode from the tar (just created by us,
                // not a symlink, so the by-name call cannot be redirected).
                rfs::chmodat(
                    &parent_fd,
                    name_os,
                    Mode::from_raw_mode(mode),
                    AtFlags::empty(),
                )
                .map_err(|errno| io_error(errno.into()))?;
                owner_and_mtime_at(&parent_fd, name_os, owner, mtime).map_err(io_error)?;
                self.report.devices += 1;
            }
            _ => {
                self.report.skipped_other += 1;
                return Ok(());
            }
        }
        self.mark_created(path);
        Ok(())
    }

    /// The parent's descriptor, shared with the root's cache (which may forget it meanwhile).
    fn parent_fd(
        &mut self,
        parent: &InPath,
        display: &str,
        offset: u64,
    ) -> Result<Rc<OwnedFd>, Error> {
        self.root.parent(parent).map_err(not_dir(display, offset))
    }

    /// Removes whatever stands at `name` (a whole tree for a directory) so a new entry can
    /// take its place.
    fn replace(&mut self, parent_fd: &OwnedFd, name: &[u8]) -> io::Result<()> {
        match kind_at(parent_fd, name)? {
            None => Ok(()),
            Some(kind) => {
                remove_any(parent_fd, name)?;
                if matches!(kind, FileType::Directory | FileType::Symlink) {
                    self.root.invalidate();
                }
                Ok(())
            }
        }
    }

    fn hardlink(
        &mut self,
        path: &InPath,
        parent_fd: &OwnedFd,
        name: &[u8],
        raw_target: &[u8],
        display: &str,
        offset: u64,
    ) -> Result<(), Error> {
        let invalid = || Error::InvalidHardlink {
            entry: display.to_owned(),
            target: String::from_utf8_lossy(raw_target).into_owned(),
            offset,
        };
        let target = InPath::clean(raw_target);
        if &target == path {
            return Ok(());
        }
        let (target_parent, target_name) = target.split_last().ok_or_else(invalid)?;
        let target_parent_fd = self.root.open_dir(&target_parent).map_err(|_| invalid())?;
        let target_stat = rfs::statat(
            &target_parent_fd,
            OsStr::from_bytes(target_name),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|_| invalid())?;
        if FileType::from_raw_mode(target_stat.st_mode) == FileType::Directory {
            return Err(invalid());
        }
        if let Ok(existing) = rfs::statat(
            parent_fd,
            OsStr::from_bytes(name),
            AtFlags::SYMLINK_NOFOLLOW,
        ) {
            if existing.st_ino == target_stat.st_ino && existing.st_dev == target_stat.st_dev {
                return Ok(());
            }
        }
        let io_error = |source: io::Error| Error::Entry {
            entry: display.to_owned(),
            offset,
            source,
        };
        self.replace(parent_fd, name).map_err(io_error)?;
        // Flags 0: a symlink target is linked itself, never followed.
        rfs::linkat(
            &target_parent_fd,
            OsStr::from_bytes(target_name),
            parent_fd,
            OsStr::from_bytes(name),
            AtFlags::empty(),
        )
        .map_err(|errno| match errno {
            Errno::NOENT => invalid(),
            errno => io_error(errno.into()),
        })
    }

    /// Ownership, mode, `user.*` xattrs and mtime of a file or directory through its fd.
    #[allow(clippy::too_many_arguments)]
    fn finish_node<R: Read, Fd: AsFd>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        fd: Fd,
        owner: Option<(Uid, Gid)>,
        mode: u32,
        mtime: Option<u64>,
        display: &str,
        offset: u64,
    ) -> Result<(), Error> {
        let fd = fd.as_fd();
        let io_error = |errno: Errno| Error::Entry {
            entry: display.to_owned(),
            offset,
            source: errno.into(),
        };
        if let Some((uid, gid)) = owner {
            rfs::fchown(fd, Some(uid), Some(gid)).map_err(io_error)?;
        }
        rfs::fchmod(fd, Mode::from_raw_mode(mode)).map_err(io_error)?;
        if let Ok(Some(extensions)) = entry.pax_extensions() {
            for extension in extensions {
                let Ok(extension) = extension else {
                    continue;
                };
                let Some(xattr) = extension.key_bytes().strip_prefix(b"SCHILY.xattr.") else {
                    continue;
                };
                if !xattr.starts_with(b"user.") {
                    self.report.skipped_xattrs += 1;
                    continue;
                }
                match rfs::fsetxattr(
                    fd,
                    OsStr::from_bytes(xattr),
                    extension.value_bytes(),
                    XattrFlags::empty(),
                ) {
                    Ok(()) => self.report.xattrs += 1,
                    Err(Errno::NOTSUP | Errno::PERM) => self.report.skipped_xattrs += 1,
                    Err(errno) => return Err(io_error(errno)),
                }
            }
        }
        if let Some(mtime) = mtime {
            rfs::futimens(fd, &timestamps(mtime)).map_err(io_error)?;
        }
        Ok(())
    }

    fn mark_created(&mut self, path: InPath) {
        let mut current = path;
        while !current.is_root() {
            if !self.created.insert(current.clone()) {
                break;
            }
            current.0.pop();
        }
    }

    /// Applies opaque markers, then directory modes and mtimes, deepest first.
    pub(crate) fn finish(&mut self) -> Result<(), Error> {
        let opaque = std::mem::take(&mut self.opaque);
        for dir in opaque {
            let finish_error = |source: io::Error| Error::Finish {
                path: String::from_utf8_lossy(&dir.joined()).into_owned(),
                source,
            };
            let created = &self.created;
            let mut keep = |relative: &[&[u8]]| {
                let mut path = dir.clone();
                path.0
                    .extend(relative.iter().map(|component| component.to_vec()));
                created.contains(&path)
            };
            match dir.split_last() {
                None => {
                    let root_fd = self.root.fd().try_clone().map_err(finish_error)?;
                    crate::root::remove_children_of(&root_fd, &mut keep).map_err(finish_error)?;
                }
                Some((parent, name)) => {
                    let Ok(parent_fd) = self.root.open_dir(&parent) else {
                        continue;
                    };
                    match remove_dir_contents(&parent_fd, name, &mut keep) {
                        // Already removed by an opaque marker of a directory above it.
                        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                        other => other.map_err(finish_error)?,
                    }
                }
            }
            self.root.invalidate();
        }

        let mut pending: Vec<(InPath, DirMeta)> = Vec::new();
        for (path, mode) in std::mem::take(&mut self.root.loosened) {
            if !self.dirs.contains_key(&path) {
                pending.push((path, DirMeta { mode, mtime: None }));
            }
        }
        pending.extend(self.dirs.drain());
        pending.sort_by(|a, b| b.0.depth().cmp(&a.0.depth()).then_with(|| a.0.cmp(&b.0)));
        for (path, meta) in pending {
            let Ok(fd) = self.root.open_dir(&path) else {
                // Replaced or whited out later in the layer.
                continue;
            };
            let finish_error = |errno: Errno| Error::Finish {
                path: String::from_utf8_lossy(&path.joined()).into_owned(),
                source: errno.into(),
            };
            rfs::fchmod(&fd, Mode::from_raw_mode(meta.mode)).map_err(finish_error)?;
            if let Some(mtime) = meta.mtime {
                rfs::futimens(&fd, &timestamps(mtime)).map_err(finish_error)?;
            }
        }
        Ok(())
    }
}

/// The owner a tar header asks for, as ids `chown` can apply. Ids above 32 bits are refused
/// rather than truncated (2^32 would become root), and so is 2^32-1, which `chown` takes
/// as "leave unchanged" (rustix refuses to build it).
fn owner_ids(uid: u64, gid: u64) -> io::Result<(Uid, Gid)> {
    let valid = |id: u64, what: &str| {
        u32::try_from(id)
            .ok()
            .filter(|id| *id != u32::MAX)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{what} {id} is out of range"),
                )
            })
    };
    Ok((
        Uid::from_raw(valid(uid, "uid")?),
        Gid::from_raw(valid(gid, "gid")?),
    ))
}

/// Applies the owner (when asked) and mtime of a just-created node that is reached by name
/// and must not be followed (a symlink, a device node, a fifo).
fn owner_and_mtime_at(
    parent_fd: &OwnedFd,
    name: &OsStr,
    owner: Option<(Uid, Gid)>,
    mtime: Option<u64>,
) -> io::Result<()> {
    if let Some((uid, gid)) = owner {
        rfs::chownat(
            parent_fd,
            name,
            Some(uid),
            Some(gid),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
    }
    if let Some(mtime) = mtime {
        rfs::utimensat(
            parent_fd,
            name,
            &timestamps(mtime),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
    }
    Ok(())
}

fn mkdir(parent_fd: &OwnedFd, name: &[u8]) -> io::Result<()> {
    rfs::mkdirat(
        parent_fd,
        OsStr::from_bytes(name),
        Mode::from_raw_mode(0o700),
    )?;
    Ok(())
}

fn timestamps(mtime: u64) -> Timestamps {
    let time = Timespec {
        tv_sec: i64::try_from(mtime).unwrap_or(i64::MAX),
        tv_nsec: 0,
    };
    Timestamps {
        last_access: time,
        last_modification: time,
    }
}

/// Copies an entry's content; read errors are stream errors, write errors entry errors.
fn copy_content<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    file: &mut File,
    buffer: &mut [u8],
    sparse: bool,
    display: &str,
    offset: u64,
) -> Result<(), Error> {
    let entry_error = |source: io::Error| Error::Entry {
        entry: display.to_owned(),
        offset,
        source,
    };
    let mut length: u64 = 0;
    let mut hole_at_end = false;
    loop {
        let n = match entry.read(buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(Error::Stream {
                    offset,
                    after_entry: Some(display.to_owned()),
                    source,
                });
            }
        };
        let chunk = &buffer[..n];
        length += n as u64;
        // In a sparse file, zeros (the holes the tar reader fills in) are skipped over, so
        // holes stay holes on disk instead of being written out.
        if sparse && chunk.iter().all(|byte| *byte == 0) {
            file.seek(io::SeekFrom::Current(n as i64))
                .map_err(entry_error)?;
            hole_at_end = true;
        } else {
            file.write_all(chunk).map_err(entry_error)?;
            hole_at_end = false;
        }
    }
    if hole_at_end {
        file.set_len(length).map_err(entry_error)?;
    }
    Ok(())
}

/// Drains what follows the end-of-archive marker into the hasher; only zeros may follow.
pub(crate) fn drain_trailer(reader: &mut ChannelReader) -> Result<(), Error> {
    if reader.eof {
        return Err(Error::MissingEndOfArchive {
            offset: reader.passed(),
        });
    }
    let mut buffer = vec![0_u8; 64 * 1024];
    loop {
        let start = reader.passed();
        let n = match reader.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(Error::Stream {
                    offset: start,
                    after_entry: None,
                    source,
                });
            }
        };
        if let Some(position) = buffer[..n].iter().position(|byte| *byte != 0) {
            return Err(Error::TrailingGarbage {
                offset: start + position as u64,
            });
        }
    }
}
