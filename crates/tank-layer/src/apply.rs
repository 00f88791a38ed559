//! The extraction loop: one tar entry at a time onto the root; whiteout-opaque clean-up
//! and directory modes at the end ([`finish`]).

mod finish;

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt as _;
use std::rc::Rc;

use rustix::fs::{self as rfs, AtFlags, FileType, Gid, Mode, OFlags, Uid};
use rustix::io::Errno;

use crate::book::{Created, Meta};
use crate::content::{copy_plain, finish_node, owner_ids, timestamps, write_sparse};
use crate::root::{
    InPath, ParentError, Root, kind_at, remove_any, remove_children_of, remove_dir_contents,
};
use crate::tar::{Entry, Kind, Reader};
use crate::{Error, ExtractOptions, LayerReport};

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";

/// The size of the buffer file contents are copied through.
const COPY_BUFFER: usize = 256 * 1024;

pub(crate) struct Extraction<'o> {
    options: &'o ExtractOptions,
    root: Root,
    report: LayerReport,
    /// Every node this layer created.
    created: Created,
    is_root_user: bool,
    /// The copy buffer, reused for every file.
    buffer: Vec<u8>,
}

fn not_dir(entry: &Entry) -> impl FnOnce(ParentError) -> Error + '_ {
    move |error| match error {
        ParentError::NotADirectory => Error::NotADirectory {
            entry: entry.display.clone(),
            offset: entry.offset,
        },
        ParentError::Io(source) => Error::Entry {
            entry: entry.display.clone(),
            offset: entry.offset,
            source,
        },
    }
}

fn io_error(entry: &Entry) -> impl Fn(io::Error) -> Error + '_ {
    move |source| Error::Entry {
        entry: entry.display.clone(),
        offset: entry.offset,
        source,
    }
}

fn errno_error(entry: &Entry) -> impl Fn(Errno) -> Error + '_ {
    move |errno| Error::Entry {
        entry: entry.display.clone(),
        offset: entry.offset,
        source: errno.into(),
    }
}

impl<'o> Extraction<'o> {
    pub(crate) fn new(
        options: &'o ExtractOptions,
        root: Root,
    ) -> Result<Extraction<'o>, io::Error> {
        let device = rfs::fstat(root.fd())?.st_dev;
        Ok(Extraction {
            options,
            root,
            report: LayerReport::default(),
            created: Created::new(device),
            buffer: vec![0; COPY_BUFFER],
            is_root_user: rustix::process::geteuid().is_root(),
        })
    }

    pub(crate) fn into_report(self) -> LayerReport {
        self.report
    }

    /// Applies every entry of the archive.
    pub(crate) fn run<R: Read>(&mut self, reader: &mut Reader<R>) -> Result<(), Error> {
        while let Some(entry) = reader.next_entry()? {
            self.report.entries += 1;
            if let Some(max) = self.options.max_entries {
                if self.report.entries > max {
                    return Err(Error::LimitExceeded {
                        limit: "max_entries",
                        max,
                        offset: entry.offset,
                    });
                }
            }
            self.apply_entry(reader, &entry)?;
            if self.root.pending.over_budget() {
                self.apply_pending()?;
            }
        }
        Ok(())
    }

    fn apply_entry<R: Read>(&mut self, reader: &mut Reader<R>, entry: &Entry) -> Result<(), Error> {
        if matches!(entry.kind, Kind::GlobalHeader | Kind::Unknown) {
            self.report.skipped_other += 1;
            return Ok(());
        }
        let path = InPath::clean(&entry.path);
        let Some((parent, name)) = path.split_last() else {
            // The root itself: only a directory entry makes sense, and only its metadata.
            if entry.kind == Kind::Directory {
                let mode = self.mode(entry)?;
                self.root.pending.push(
                    &path.0,
                    Meta {
                        mode,
                        mtime: entry.mtime,
                        loosened: false,
                    },
                );
                self.report.dirs += 1;
                return Ok(());
            }
            return Err(Error::InvalidPath {
                entry: entry.display.clone(),
                offset: entry.offset,
            });
        };
        let name = name.to_vec();

        if name == OPAQUE_MARKER {
            self.report.whiteouts += 1;
            return self.opaque(entry, &parent);
        }
        if let Some(target) = name.strip_prefix(WHITEOUT_PREFIX) {
            return self.whiteout(entry, &parent, target);
        }

        let parent_fd = self.root.parent(&parent).map_err(not_dir(entry))?;
        let mode = self.mode(entry)? & 0o7777;
        let mtime = entry.mtime;
        let owner = match (entry.uid, entry.gid) {
            (Some(uid), Some(gid)) if self.options.preserve_ownership && self.is_root_user => {
                Some(owner_ids(uid, gid).map_err(io_error(entry))?)
            }
            _ => None,
        };
        let name_os = OsStr::from_bytes(&name);
        match entry.kind {
            Kind::Regular => {
                if let (Some(map), Some(max)) = (&entry.sparse, self.options.max_bytes) {
                    // A few header bytes can describe a huge file of holes: bound it too.
                    if map.real_size > max {
                        return Err(Error::LimitExceeded {
                            limit: "max_bytes",
                            max,
                            offset: entry.offset,
                        });
                    }
                }
                let create = || {
                    rfs::openat(
                        &parent_fd,
                        name_os,
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
                        self.replace(&parent_fd, &name).map_err(io_error(entry))?;
                        create()
                    }
                    other => other,
                }
                .map_err(errno_error(entry))?;
                let file = File::from(fd);
                match &entry.sparse {
                    Some(map) => write_sparse(reader, entry, map, &file, &mut self.buffer)?,
                    None => copy_plain(reader, entry, &file, &mut self.buffer)?,
                }
                finish_node(&mut self.report, entry, &file, owner, mode, mtime)?;
                let stat = rfs::fstat(&file).map_err(errno_error(entry))?;
                self.created
                    .insert_node(&stat, &parent_fd, &name)
                    .map_err(io_error(entry))?;
                self.report.files += 1;
            }
            Kind::Directory => {
                match kind_at(&*parent_fd, &name).map_err(io_error(entry))? {
                    Some(FileType::Directory) => {}
                    Some(_) => {
                        self.replace(&parent_fd, &name).map_err(io_error(entry))?;
                        mkdir(&parent_fd, &name).map_err(io_error(entry))?;
                    }
                    None => mkdir(&parent_fd, &name).map_err(io_error(entry))?,
                }
                let fd = rfs::openat(
                    &parent_fd,
                    name_os,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(errno_error(entry))?;
                // Owner-writable while extracting; the real mode is applied at the end.
                finish_node(&mut self.report, entry, &fd, owner, mode | 0o700, None)?;
                let stat = rfs::fstat(&fd).map_err(errno_error(entry))?;
                self.created
                    .insert_node(&stat, &parent_fd, &name)
                    .map_err(io_error(entry))?;
                self.root.pending.push(
                    &path.0,
                    Meta {
                        mode,
                        mtime,
                        loosened: false,
                    },
                );
                self.report.dirs += 1;
            }
            Kind::Symlink => {
                self.replace(&parent_fd, &name).map_err(io_error(entry))?;
                rfs::symlinkat(OsStr::from_bytes(&entry.link), &parent_fd, name_os)
                    .map_err(errno_error(entry))?;
                owner_and_mtime_at(&parent_fd, name_os, owner, mtime).map_err(io_error(entry))?;
                self.mark_at(&parent_fd, &name, entry)?;
                self.report.symlinks += 1;
            }
            Kind::Hardlink => {
                self.hardlink(&path, &parent_fd, &name, entry)?;
                self.report.hardlinks += 1;
            }
            Kind::CharDevice | Kind::BlockDevice | Kind::Fifo => {
                // A fifo needs no privilege and is part of the image (the image-spec lists
                // FIFOs among layer file types): always created. Device nodes need root.
                if entry.kind != Kind::Fifo && !(self.options.create_devices && self.is_root_user) {
                    self.report.skipped_devices += 1;
                    return Ok(());
                }
                let (file_type, dev) = match entry.kind {
                    Kind::Fifo => (FileType::Fifo, 0),
                    kind => {
                        let major = u32::try_from(entry.dev_major).unwrap_or(0);
                        let minor = u32::try_from(entry.dev_minor).unwrap_or(0);
                        let file_type = if kind == Kind::CharDevice {
                            FileType::CharacterDevice
                        } else {
                            FileType::BlockDevice
                        };
                        (file_type, rfs::makedev(major, minor))
                    }
                };
                self.replace(&parent_fd, &name).map_err(io_error(entry))?;
                rfs::mknodat(
                    &parent_fd,
                    name_os,
                    file_type,
                    Mode::from_raw_mode(mode),
                    dev,
                )
                .map_err(errno_error(entry))?;
                // mknodat applies the umask: set the mode from the tar (just created by us,
                // not a symlink, so the by-name call cannot be redirected).
                rfs::chmodat(
                    &parent_fd,
                    name_os,
                    Mode::from_raw_mode(mode),
                    AtFlags::empty(),
                )
                .map_err(errno_error(entry))?;
                owner_and_mtime_at(&parent_fd, name_os, owner, mtime).map_err(io_error(entry))?;
                self.mark_at(&parent_fd, &name, entry)?;
                self.report.devices += 1;
            }
            Kind::GlobalHeader | Kind::Unknown => unreachable!("skipped above"),
        }
        Ok(())
    }

    /// The entry's mode; an unreadable mode field is an error for entries that need it.
    fn mode(&self, entry: &Entry) -> Result<u32, Error> {
        entry.mode.ok_or_else(|| Error::Entry {
            entry: entry.display.clone(),
            offset: entry.offset,
            source: io::Error::new(io::ErrorKind::InvalidData, "unreadable mode field"),
        })
    }

    /// Records the node just created at `name` as this layer's.
    fn mark_at(&mut self, parent_fd: &OwnedFd, name: &[u8], entry: &Entry) -> Result<(), Error> {
        let stat = rfs::statat(
            parent_fd,
            OsStr::from_bytes(name),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(errno_error(entry))?;
        self.created
            .insert_node(&stat, parent_fd, name)
            .map_err(io_error(entry))
    }

    /// An opaque marker in `dir`: empties it of what lower layers put there, at once (as
    /// containerd and Docker do). What this layer created so far stays, and what it adds
    /// later is added after.
    fn opaque(&mut self, entry: &Entry, dir: &InPath) -> Result<(), Error> {
        let keep = &mut self.created.keeper();
        let emptied = match dir.split_last() {
            None => remove_children_of(self.root.fd(), keep),
            Some((parent, name)) => {
                let Ok(parent_fd) = self.root.open_dir(&parent) else {
                    return Ok(());
                };
                match remove_dir_contents(&parent_fd, name, keep) {
                    // No such directory (yet): nothing of lower layers to hide.
                    Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
                    other => other,
                }
            }
        };
        self.root.invalidate();
        emptied.map_err(io_error(entry))
    }

    /// `.wh.<target>` in `parent`: removes what lower layers put at `target`. What this
    /// layer created there (before the whiteout; later entries come after it anyway)
    /// stays: a file as it is, a directory with only this layer's contents, as if it held
    /// an opaque marker.
    fn whiteout(&mut self, entry: &Entry, parent: &InPath, target: &[u8]) -> Result<(), Error> {
        if target.is_empty() || target == b"." || target == b".." {
            return Err(Error::InvalidPath {
                entry: entry.display.clone(),
                offset: entry.offset,
            });
        }
        self.report.whiteouts += 1;
        if self.root.open_dir(parent).is_err() {
            // Nothing below a missing parent to delete.
            return Ok(());
        }
        let parent_fd = self.root.parent(parent).map_err(not_dir(entry))?;
        let stat = match rfs::statat(
            &parent_fd,
            OsStr::from_bytes(target),
            AtFlags::SYMLINK_NOFOLLOW,
        ) {
            Ok(stat) => stat,
            Err(Errno::NOENT) => return Ok(()),
            Err(errno) => return Err(errno_error(entry)(errno)),
        };
        let parent_stat = rfs::fstat(&*parent_fd).map_err(errno_error(entry))?;
        let created = self.created.contains(&parent_stat, target, &stat);
        let io_error = io_error(entry);
        if FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
            if !created {
                rfs::unlinkat(&*parent_fd, OsStr::from_bytes(target), AtFlags::empty())
                    .map_err(errno_error(entry))?;
            }
            return Ok(());
        }
        // A directory: what lower layers put in it goes, what this layer created stays, and
        // so does the directory itself if this layer created it or something inside it.
        remove_dir_contents(&*parent_fd, target, &mut self.created.keeper()).map_err(&io_error)?;
        if !created {
            match rfs::unlinkat(&*parent_fd, OsStr::from_bytes(target), AtFlags::REMOVEDIR) {
                Ok(()) | Err(Errno::NOTEMPTY | Errno::EXIST) => {}
                Err(errno) => return Err(io_error(errno.into())),
            }
        }
        self.root.invalidate();
        Ok(())
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
        parent_fd: &Rc<OwnedFd>,
        name: &[u8],
        entry: &Entry,
    ) -> Result<(), Error> {
        let invalid = || Error::InvalidHardlink {
            entry: entry.display.clone(),
            target: crate::printable(&entry.link),
            offset: entry.offset,
        };
        let target = InPath::clean(&entry.link);
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
        let mark = |created: &mut Created| {
            created
                .insert_link(&target_stat, parent_fd, name)
                .map_err(io_error(entry))
        };
        if let Ok(existing) = rfs::statat(
            &**parent_fd,
            OsStr::from_bytes(name),
            AtFlags::SYMLINK_NOFOLLOW,
        ) {
            if existing.st_ino == target_stat.st_ino && existing.st_dev == target_stat.st_dev {
                return mark(&mut self.created);
            }
        }
        self.replace(parent_fd, name).map_err(io_error(entry))?;
        // Flags 0: a symlink target is linked itself, never followed.
        rfs::linkat(
            &target_parent_fd,
            OsStr::from_bytes(target_name),
            &**parent_fd,
            OsStr::from_bytes(name),
            AtFlags::empty(),
        )
        .map_err(|errno| match errno {
            Errno::NOENT => invalid(),
            errno => errno_error(entry)(errno),
        })?;
        mark(&mut self.created)
    }
}

/// Applies the owner (when asked) and mtime of a just-created node that is reached by name
/// and must not be followed (a symlink, a device node, a fifo).
fn owner_and_mtime_at(
    parent_fd: &OwnedFd,
    name: &OsStr,
    owner: Option<(Uid, Gid)>,
    mtime: Option<(i64, u32)>,
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
