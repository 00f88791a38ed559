//! Writing an entry's content (plain, or a sparse map applied by seeking) and metadata.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write as _};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::FileExt as _;

use rustix::fs::{self as rfs, Gid, Mode, Timespec, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;

use crate::tar::{Entry, Reader, SparseMap};
use crate::{Error, LayerReport};

fn entry_error<'a>(entry: &'a Entry) -> impl Fn(io::Error) -> Error + 'a {
    move |source| Error::Entry {
        entry: entry.display.clone(),
        offset: entry.offset,
        source,
    }
}

/// Copies the entry's data into `file`.
pub(crate) fn copy_plain<R: Read>(
    reader: &mut Reader<R>,
    entry: &Entry,
    mut file: &File,
    buffer: &mut [u8],
) -> Result<(), Error> {
    loop {
        let n = reader.read_data(buffer)?;
        if n == 0 {
            return Ok(());
        }
        file.write_all(&buffer[..n]).map_err(entry_error(entry))?;
    }
}

/// Writes each data segment of a sparse file at its offset and sets the real size: holes
/// are never written nor produced, so they cost neither time nor disk.
pub(crate) fn write_sparse<R: Read>(
    reader: &mut Reader<R>,
    entry: &Entry,
    map: &SparseMap,
    file: &File,
    buffer: &mut [u8],
) -> Result<(), Error> {
    for &(start, length) in &map.segments {
        let mut done: u64 = 0;
        while done < length {
            let want = usize::try_from(length - done)
                .unwrap_or(usize::MAX)
                .min(buffer.len());
            let n = reader.read_data(&mut buffer[..want])?;
            if n == 0 {
                // The map was checked against the stored size: the reader ends early only
                // on a truncated stream, which it reports itself.
                return Err(Error::SparseMap {
                    entry: entry.display.clone(),
                    offset: entry.offset,
                    reason: "the data ends before the map does".to_owned(),
                });
            }
            // `start + length` was checked not to overflow.
            file.write_all_at(&buffer[..n], start + done)
                .map_err(entry_error(entry))?;
            done += n as u64;
        }
    }
    file.set_len(map.real_size).map_err(entry_error(entry))
}

/// Ownership, mode, `user.*` xattrs and mtime of a file or directory through its fd.
pub(crate) fn finish_node<Fd: AsFd>(
    report: &mut LayerReport,
    entry: &Entry,
    fd: Fd,
    owner: Option<(Uid, Gid)>,
    mode: u32,
    mtime: Option<(i64, u32)>,
) -> Result<(), Error> {
    let fd = fd.as_fd();
    let io_error = |errno: Errno| Error::Entry {
        entry: entry.display.clone(),
        offset: entry.offset,
        source: errno.into(),
    };
    if let Some((uid, gid)) = owner {
        rfs::fchown(fd, Some(uid), Some(gid)).map_err(io_error)?;
    }
    rfs::fchmod(fd, Mode::from_raw_mode(mode)).map_err(io_error)?;
    for (name, value) in &entry.xattrs {
        if !name.starts_with(b"user.") {
            report.skipped_xattrs += 1;
            continue;
        }
        match rfs::fsetxattr(fd, OsStr::from_bytes(name), value, XattrFlags::empty()) {
            Ok(()) => report.xattrs += 1,
            Err(Errno::NOTSUP | Errno::PERM | Errno::RANGE | Errno::NOSPC | Errno::TOOBIG) => {
                report.skipped_xattrs += 1;
            }
            Err(errno) => return Err(io_error(errno)),
        }
    }
    if let Some(mtime) = mtime {
        rfs::futimens(fd, &timestamps(mtime)).map_err(io_error)?;
    }
    Ok(())
}

/// Access and modification time set to `mtime` (seconds, nanoseconds).
pub(crate) fn timestamps((seconds, nanos): (i64, u32)) -> Timestamps {
    let time = Timespec {
        tv_sec: seconds,
        tv_nsec: nanos.min(999_999_999).into(),
    };
    Timestamps {
        last_access: time,
        last_modification: time,
    }
}

/// The owner a tar header asks for, as ids `chown` can apply. Ids above 32 bits are refused
/// rather than truncated (2^32 would become root), and so is 2^32-1, which `chown` takes
/// as "leave unchanged" (rustix refuses to build it).
pub(crate) fn owner_ids(uid: u64, gid: u64) -> io::Result<(Uid, Gid)> {
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
